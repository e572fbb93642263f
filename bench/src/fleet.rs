//! A fleet on one libSQL server, as Lambda runs the service: `instances` separate processes of it, each sent
//! `connections` requests at a time (one, as a Lambda instance serves), all storing on one fresh sqld; and,
//! side by side on another fresh sqld started alike, the same load as plain one-row inserts into the
//! assignment's bare table, sent straight to the server. Both run for the same time, 10% of them
//! redeliveries; each prints its deliveries a second, latency, failures, whether every acknowledged message
//! is stored exactly once and the server still answers a write afterwards, and what the server wrote to
//! storage (`write_bytes` of `/proc/PID/io`) and kept on disk per stored message.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{json, Value};

use crate::client::{post, Connection};
use crate::data::{message, mix, sender, text, timestamp};
use crate::hrana::{Hrana, ANSWER_WITHIN};
use crate::server::{cpu_time, wait_for_port, Server};

/// One fleet's shape.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub instances: usize,
    pub connections: usize,
}

impl std::str::FromStr for Shape {
    type Err = String;

    /// `8x1`: eight instances, one request at a time each.
    fn from_str(s: &str) -> Result<Shape, String> {
        let (instances, connections) = s.split_once('x').ok_or_else(|| format!("{s}: not INSTANCESxCONNECTIONS"))?;
        let number =
            |n: &str| n.parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| format!("{s}: {n} is no count"));
        Ok(Shape { instances: number(instances)?, connections: number(connections)? })
    }
}

/// What one side of a run did.
struct Tally {
    failed: u64,
    acknowledged: HashSet<String>,
    latency_us: Histogram<u64>,
    elapsed: Duration,
}

impl Tally {
    fn ms(&self, quantile: f64) -> f64 {
        self.latency_us.value_at_quantile(quantile) as f64 / 1000.0
    }
}

/// What the server holds and did after one side's load.
struct Check {
    stored: u64,
    once: bool,
    answers: bool,
    used: Usage,
    disk: u64,
}

/// Runs each shape for `seconds`, both sides; false if anything failed or was lost.
pub async fn run(binary: &Path, sqld: &Path, sqld_args: &[String], shapes: &[Shape], seconds: u64) -> bool {
    // This process may be pinned itself, so count the machine's cores rather than the ones it may use.
    let cores = std::fs::read_to_string("/proc/cpuinfo").map_or(1, |s| s.matches("\nprocessor").count() + 1);
    println!(
        "webhook-bench --fleet: a fresh `{} {}` per side on cpu 0, {seconds} s each, {cores} cores, 10% \
         redeliveries\n",
        sqld.display(),
        sqld_args.join(" "),
    );
    println!(
        "| fleet | side | deliveries/s | p50 ms | p99 ms | max ms | failed | acknowledged | stored once | answers after \
         | written KiB/msg | disk KiB/msg | CPU s: server, instances |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---|");
    let mut passed = true;
    for shape in shapes {
        let time = Duration::from_secs(seconds);
        let name = format!("{}×{}", shape.instances, shape.connections);
        let plain = {
            let server = Sqld::start(sqld, sqld_args);
            if let Err(e) = Hrana::new(&server.addr).execute(PLAIN_TABLE, vec![]).await {
                panic!("sqld did not create the plain table: {}", e.message);
            }
            let before = server.usage();
            let tally = fleet(&Side::Plain(server.addr.clone()), shape.instances * shape.connections, time).await;
            let used = server.usage() - before;
            Side::report(
                &name,
                "plain one-row inserts",
                &tally,
                &server.check("plain", &tally, Probe::Plain, used).await,
            )
        };
        let ours = {
            let server = Sqld::start(sqld, sqld_args);
            let instances = start_instances(binary, &server.url(), shape.instances, cores);
            let (before, instances_before) = (server.usage(), instances.iter().map(Server::cpu).sum::<Duration>());
            let addrs: Vec<String> = instances.iter().map(|i| i.addr.clone()).collect();
            let tally = fleet(&Side::Service(addrs.clone()), shape.instances * shape.connections, time).await;
            let mut used = server.usage() - before;
            used.instances_cpu = instances.iter().map(Server::cpu).sum::<Duration>() - instances_before;
            let check = server.check("messages", &tally, Probe::Service(addrs[0].clone()), used).await;
            Side::report(&name, "webhook-ingest", &tally, &check)
        };
        passed &= plain.passed && ours.passed;
        println!(
            "| {name} | ours ÷ plain | {:.2} | | | | | | | | {:.2} | | |",
            ours.rate / plain.rate.max(f64::MIN_POSITIVE),
            ours.cost / plain.cost.max(f64::MIN_POSITIVE)
        );
    }
    passed
}

/// One side's figures, as compared with the other's.
struct Reported {
    passed: bool,
    rate: f64,
    cost: f64,
}

impl Side {
    /// Prints one side's row.
    fn report(name: &str, side: &str, tally: &Tally, check: &Check) -> Reported {
        let per_message = |bytes: u64| bytes as f64 / 1024.0 / check.stored.max(1) as f64;
        let rate = tally.acknowledged.len() as f64 / tally.elapsed.as_secs_f64();
        println!(
            "| {name} | {side} | {rate:.0} | {:.1} | {:.1} | {:.1} | {} | {} | {} | {} | {:.1} | {:.1} | {:.1}, {:.1} |",
            tally.ms(0.5),
            tally.ms(0.99),
            tally.ms(1.0),
            tally.failed,
            tally.acknowledged.len(),
            if check.once { "yes" } else { "NO" },
            if check.answers { "yes" } else { "NO" },
            per_message(check.used.written),
            per_message(check.disk),
            check.used.server_cpu.as_secs_f64(),
            check.used.instances_cpu.as_secs_f64(),
        );
        Reported {
            passed: tally.failed == 0 && check.once && check.answers,
            rate,
            cost: check.used.written as f64 / check.stored.max(1) as f64,
        }
    }
}

/// What the server (and the instances) used during a run.
#[derive(Clone, Copy, Default)]
struct Usage {
    written: u64,
    server_cpu: Duration,
    instances_cpu: Duration,
}

impl std::ops::Sub for Usage {
    type Output = Usage;

    fn sub(self, before: Usage) -> Usage {
        Usage {
            written: self.written.saturating_sub(before.written),
            server_cpu: self.server_cpu.saturating_sub(before.server_cpu),
            instances_cpu: self.instances_cpu.saturating_sub(before.instances_cpu),
        }
    }
}

/// The assignment's table, bare: what a plain one-row insert writes into.
const PLAIN_TABLE: &str = "CREATE TABLE plain (message_id TEXT PRIMARY KEY, from_msisdn TEXT NOT NULL, \
     to_msisdn TEXT NOT NULL, ts TEXT NOT NULL, text TEXT, created_at TEXT NOT NULL)";

/// Message `n`'s id: random-looking, as a provider's are, and new on every run of the bench.
fn id(run: u64, client: usize, n: u64) -> String {
    format!("wamid.{:016x}{:04x}", mix(run ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15)), client)
}

/// The message a client sends as its `n`th: every tenth a redelivery of one it was answered 200 for.
fn next_id(run: u64, client: usize, n: u64, acknowledged: &[String]) -> String {
    match (n % 10 == 9, acknowledged.len()) {
        (true, len) if len > 0 => acknowledged[(mix(n) % len as u64) as usize].clone(),
        _ => id(run, client, n),
    }
}

fn run_id() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// Who the loops send to: plain inserts straight to the server, or deliveries to the service's instances.
enum Side {
    Plain(String),
    Service(Vec<String>),
}

/// `clients` closed loops, each one request at a time, for `time`; client `k` of the service sends to
/// instance `k mod instances`.
async fn fleet(side: &Side, clients: usize, time: Duration) -> Tally {
    let (run, started) = (run_id(), Instant::now());
    let loops = (0..clients).map(|client| client_loop(side, client, run, started + time));
    let results = futures::future::join_all(loops).await;
    let mut tally = Tally {
        failed: 0,
        acknowledged: HashSet::new(),
        latency_us: Histogram::new_with_bounds(1, 60_000_000, 3).unwrap(),
        elapsed: started.elapsed(),
    };
    for (failed, acknowledged, latency) in results {
        tally.failed += failed;
        tally.acknowledged.extend(acknowledged);
        tally.latency_us.add(latency).unwrap();
    }
    tally
}

/// One client: requests until `until`, one at a time; its failures, the ids answered 200, and latencies.
async fn client_loop(side: &Side, client: usize, run: u64, until: Instant) -> (u64, Vec<String>, Histogram<u64>) {
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    let (mut acknowledged, mut failed, mut n) = (Vec::new(), 0, 0);
    let mut plain = match side {
        Side::Plain(addr) => Some(Hrana::new(addr)),
        Side::Service(_) => None,
    };
    let instance = match side {
        Side::Service(addrs) => Some(addrs[client % addrs.len()].clone()),
        Side::Plain(_) => None,
    };
    let mut conn = None;
    while Instant::now() < until {
        let id = next_id(run, client, n, &acknowledged);
        let started = Instant::now();
        let ok = match (&mut plain, &instance) {
            (Some(server), _) => server.execute_with_retries(PLAIN_INSERT, plain_insert(&id, n)).await.is_ok(),
            (None, Some(addr)) => deliver(&mut conn, addr, &message(&id, n)).await,
            (None, None) => unreachable!("every side sends somewhere"),
        };
        latency.record(started.elapsed().as_micros().max(1) as u64).unwrap();
        match ok {
            true => acknowledged.push(id),
            false => failed += 1,
        }
        n += 1;
    }
    (failed, acknowledged, latency)
}

/// Sends one signed delivery over `conn` (opened on first use, again after a broken one); true on 200.
async fn deliver(conn: &mut Option<Connection>, addr: &str, body: &str) -> bool {
    if conn.is_none() {
        *conn = Connection::open(addr).await.ok();
    }
    let Some(open) = conn.as_mut() else { return false };
    match tokio::time::timeout(ANSWER_WITHIN, open.call(&post(body))).await {
        Ok(Ok(status)) => status == 200,
        _ => {
            *conn = None;
            false
        }
    }
}

const PLAIN_INSERT: &str = "INSERT INTO plain VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (message_id) DO NOTHING";

fn plain_insert(id: &str, n: u64) -> Vec<Value> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let created_at = chrono::DateTime::from_timestamp(now.as_secs() as i64, now.subsec_nanos())
        .map_or_else(String::new, |t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string());
    [id.to_owned(), sender(n), "+14155550100".to_owned(), timestamp(n), text(n), created_at]
        .into_iter()
        .map(|v| json!({"type": "text", "value": v}))
        .collect()
}

/// Starts `count` instances of the service on the server at `url`, all at once, as a fleet scales out, on
/// every core but the server's.
fn start_instances(binary: &Path, url: &str, count: usize, cores: usize) -> Vec<Server> {
    let cpus = format!("1-{}", cores.saturating_sub(1).max(1));
    std::thread::scope(|scope| {
        let starting: Vec<_> = (0..count).map(|_| scope.spawn(|| Server::start(binary, &cpus, url))).collect();
        starting.into_iter().map(|s| s.join().expect("an instance did not start")).collect()
    })
}

/// A fresh sqld in a directory of its own, on a port the operating system picks; killed when dropped.
struct Sqld {
    process: Child,
    addr: String,
    dir: tempfile::TempDir,
}

impl Sqld {
    fn start(binary: &Path, args: &[String]) -> Sqld {
        let dir = tempfile::tempdir().unwrap();
        let started = Instant::now();
        // The server gets a core of its own, as a shared server has its own machine.
        let process = Command::new("taskset")
            .args(["-c", "0"])
            .arg(binary)
            .arg("--db-path")
            .arg(dir.path().join("data.sqld"))
            .args(["--http-listen-addr", "127.0.0.1:0", "--no-welcome"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
        // On a port the operating system picks, read once it listens.
        let addr = format!("127.0.0.1:{}", wait_for_port(process.id(), started));
        Sqld { process, addr, dir }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What the server has used so far: bytes it caused to be written to storage, and CPU time.
    fn usage(&self) -> Usage {
        let io = std::fs::read_to_string(format!("/proc/{}/io", self.process.id())).unwrap_or_default();
        let written = io.lines().find_map(|l| l.strip_prefix("write_bytes:")).and_then(|v| v.trim().parse().ok());
        Usage { written: written.unwrap_or(0), server_cpu: cpu_time(self.process.id()), ..Usage::default() }
    }

    /// Bytes its data directory holds.
    fn disk(&self) -> u64 {
        fn size(path: &Path) -> u64 {
            match std::fs::read_dir(path) {
                Ok(entries) => entries.flatten().map(|e| size(&e.path())).sum(),
                Err(_) => std::fs::metadata(path).map_or(0, |m| m.len()),
            }
        }
        size(self.dir.path())
    }

    /// Whether every id `tally` was answered 200 for is stored in `table` (and, for the service, its inbox),
    /// each once; whether a write still commits; and what the server wrote and holds.
    async fn check(&self, table: &str, tally: &Tally, probe: Probe, used: Usage) -> Check {
        let mut server = Hrana::new(&self.addr);
        // The service's messages are in `messages` and, on a schema that has it, the inbox.
        let with_inbox = "SELECT message_id FROM messages UNION ALL SELECT message_id FROM inbox";
        let rows = match table {
            "messages" => match server.execute_with_retries(with_inbox, vec![]).await {
                Err(e) if e.message.contains("no such table: inbox") => {
                    server.execute_with_retries("SELECT message_id FROM messages", vec![]).await
                }
                rows => rows,
            },
            _ => server.execute_with_retries("SELECT message_id FROM plain", vec![]).await,
        };
        let ids: Vec<String> = rows
            .unwrap_or_default()
            .iter()
            .filter_map(|row| row.first().and_then(|v| v["value"].as_str()).map(str::to_owned))
            .collect();
        let distinct: HashSet<&str> = ids.iter().map(String::as_str).collect();
        let once = distinct.len() == ids.len() && tally.acknowledged.iter().all(|id| distinct.contains(id.as_str()));
        let disk = self.disk();
        let answers = match probe {
            Probe::Plain => {
                let args = plain_insert("after-the-run", 0);
                tokio::time::timeout(Duration::from_secs(10), server.execute_with_retries(PLAIN_INSERT, args))
                    .await
                    .is_ok_and(|r| r.is_ok())
            }
            Probe::Service(addr) => {
                let mut conn = None;
                let body = message("after-the-run", 0);
                let delivery = deliver(&mut conn, &addr, &body);
                tokio::time::timeout(Duration::from_secs(10), delivery).await.unwrap_or(false)
            }
        };
        Check { stored: ids.len() as u64, once, answers, used, disk }
    }
}

/// How a run proves the server still commits a write after it.
enum Probe {
    Plain,
    Service(String),
}

impl Drop for Sqld {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}
