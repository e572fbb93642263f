//! Load generator for webhook-ingest.
//!
//! Starts the release server (local listener, durable SQLite in a temporary directory) pinned to one core,
//! preloads N signed messages through `POST /webhook`, then runs each scenario for a fixed time from this
//! process (pin it to another core) over keep-alive connections, and prints req/s, p50, p99 and errors per
//! scenario, the server's peak RSS, the database size, and the time from process start to ready.
//!
//! With `--soak S` it runs one mixed load instead for S seconds (ingest, duplicates, every read, and bad
//! requests that must be refused), printing throughput, unexpected answers and the server's RSS every 10 s.
//!
//! Usage: webhook-bench [--server PATH] [--messages N] [--seconds S] [--connections C] [--server-cpu K] [--db PATH]
//!                      [--soak S]

use std::io::Write as _;
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const SECRET: &str = "bench-secret";
const SENDERS: u64 = 1000;
/// Text is 3 to 6 words, each a stem and a digit (`order7`): 400 words, so a searched word is in about 1.1%
/// of messages.
const VARIANTS: u64 = 10;
const WORDS: [&str; 40] = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
    "november",
    "oscar",
    "papa",
    "quebec",
    "romeo",
    "sierra",
    "tango",
    "uniform",
    "victor",
    "whiskey",
    "xray",
    "yankee",
    "zulu",
    "order",
    "invoice",
    "shipped",
    "delivered",
    "payment",
    "refund",
    "hello",
    "thanks",
    "please",
    "confirm",
    "tomorrow",
    "today",
    "meeting",
    "call",
];

struct Options {
    server: String,
    messages: u64,
    seconds: u64,
    connections: usize,
    server_cpu: String,
    /// Keep the database here instead of a temporary directory (for inspecting it afterwards).
    db: Option<std::path::PathBuf>,
    /// Run the mixed soak load for this many seconds instead of the scenarios.
    soak: Option<u64>,
}

fn options() -> Options {
    let mut o = Options {
        server: "target/release/webhook-ingest".into(),
        messages: 100_000,
        seconds: 10,
        connections: 32,
        server_cpu: "0".into(),
        db: None,
        soak: None,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let value = pair.get(1).cloned().unwrap_or_default();
        match pair[0].as_str() {
            "--server" => o.server = value,
            "--messages" => o.messages = value.parse().expect("--messages N"),
            "--seconds" => o.seconds = value.parse().expect("--seconds S"),
            "--connections" => o.connections = value.parse().expect("--connections C"),
            "--server-cpu" => o.server_cpu = value,
            "--db" => o.db = Some(value.into()),
            "--soak" => o.soak = Some(value.parse().expect("--soak SECONDS")),
            other => panic!("unknown option {other}"),
        }
    }
    o
}

/// A deterministic stream of pseudo-random numbers (xorshift), so every run loads the same data.
fn mix(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

fn sign(body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn sender(i: u64) -> String {
    format!("+1555{:07}", mix(i + 1) % SENDERS)
}

/// Message `i` of the preload: one of 1000 senders, a timestamp i seconds (and some milliseconds) into 2025,
/// 3 to 6 words of text.
fn message(id: &str, i: u64) -> String {
    let r = mix(i.wrapping_mul(2654435761) + 7);
    let ts = chrono::DateTime::from_timestamp(1_735_689_600 + i as i64, ((r % 1000) * 1_000_000) as u32).unwrap();
    let words: Vec<String> = (0..3 + r % 4).map(|k| word(mix(r + k))).collect();
    format!(
        r#"{{"message_id":"{id}","from":"{}","to":"+14155550100","ts":"{}","text":"{}"}}"#,
        sender(i),
        ts.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
        words.join(" ")
    )
}

fn word(n: u64) -> String {
    format!("{}{}", WORDS[(n % WORDS.len() as u64) as usize], (n / WORDS.len() as u64) % VARIANTS)
}

fn post(body: &str) -> Vec<u8> {
    format!(
        "POST /webhook HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nX-Signature: {}\r\nContent-Length: {}\r\n\r\n{body}",
        sign(body),
        body.len()
    )
    .into_bytes()
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n").into_bytes()
}

/// One keep-alive HTTP/1.1 connection; answers are read by Content-Length.
struct Connection {
    stream: BufReader<TcpStream>,
    line: String,
    body: Vec<u8>,
}

impl Connection {
    async fn open(addr: &str) -> std::io::Result<Connection> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Connection { stream: BufReader::new(stream), line: String::new(), body: Vec::new() })
    }

    /// Sends one request and returns the status code.
    async fn call(&mut self, request: &[u8]) -> std::io::Result<u16> {
        self.stream.get_mut().write_all(request).await?;
        self.line.clear();
        self.stream.read_line(&mut self.line).await?;
        let status = self.line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let mut length = 0;
        loop {
            self.line.clear();
            if self.stream.read_line(&mut self.line).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let header = self.line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        self.body.resize(length, 0);
        self.stream.read_exact(&mut self.body).await?;
        Ok(status)
    }
}

/// Builds request number n of a scenario.
type RequestMaker = Rc<dyn Fn(u64) -> Vec<u8>>;
/// The status request number n must get; any other answer counts as an error.
type Expected = fn(u64) -> u16;

fn always_ok(_: u64) -> u16 {
    200
}

struct Outcome {
    requests: u64,
    errors: u64,
    elapsed: Duration,
    latency_us: Histogram<u64>,
}

/// Runs `connections` closed loops until `deadline` (or until `limit` requests were sent in all); request `n`
/// is `make(n)`.
async fn drive(
    addr: &str,
    connections: usize,
    time: Option<Duration>,
    limit: Option<u64>,
    make: RequestMaker,
    expected: Expected,
) -> Outcome {
    let started = Instant::now();
    let next = Rc::new(std::cell::Cell::new(0u64));
    let mut tasks = Vec::new();
    let local = tokio::task::LocalSet::new();
    for _ in 0..connections {
        let (make, next, addr) = (Rc::clone(&make), Rc::clone(&next), addr.to_owned());
        tasks.push(local.spawn_local(async move {
            let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
            let (mut done, mut errors) = (0u64, 0u64);
            let mut conn = Connection::open(&addr).await.expect("connect");
            loop {
                let n = next.get();
                if limit.is_some_and(|l| n >= l) || time.is_some_and(|t| started.elapsed() >= t) {
                    break;
                }
                next.set(n + 1);
                let request = make(n);
                let sent = Instant::now();
                match conn.call(&request).await {
                    Ok(status) if status == expected(n) => {}
                    Ok(_) => errors += 1,
                    Err(_) => {
                        errors += 1;
                        conn = Connection::open(&addr).await.expect("reconnect");
                    }
                }
                histogram.record(sent.elapsed().as_micros().max(1) as u64).unwrap();
                done += 1;
            }
            (done, errors, histogram)
        }));
    }
    let results = local
        .run_until(async {
            let mut all = Vec::new();
            for task in tasks {
                all.push(task.await.unwrap());
            }
            all
        })
        .await;
    let mut outcome = Outcome {
        requests: 0,
        errors: 0,
        elapsed: started.elapsed(),
        latency_us: Histogram::new_with_bounds(1, 60_000_000, 3).unwrap(),
    };
    for (done, errors, histogram) in results {
        outcome.requests += done;
        outcome.errors += errors;
        outcome.latency_us.add(histogram).unwrap();
    }
    outcome
}

/// A memory figure of the server from /proc: `VmHWM` (peak) or `VmRSS` (now).
fn rss_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The server process; stopped and reaped when dropped, also when the bench panics.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_server(o: &Options, db: &std::path::Path, port: u16) -> (Server, Duration) {
    let started = Instant::now();
    let server = Server(
        Command::new("taskset")
            .args(["-c", &o.server_cpu, &o.server])
            .env("WEBHOOK_SECRET", SECRET)
            .env("DATABASE_URL", format!("sqlite:///{}", db.display()))
            .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the server (build it: cargo build --release --features local)"),
    );
    // Ready = /health/ready answers 200: the port is bound and the database migrated.
    loop {
        let ready = std::net::TcpStream::connect(("127.0.0.1", port)).ok().and_then(|mut s| {
            use std::io::Read;
            s.write_all(b"GET /health/ready HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n").ok()?;
            let mut head = [0u8; 12];
            s.read_exact(&mut head).ok()?;
            Some(head.starts_with(b"HTTP/1.1 200"))
        });
        if ready == Some(true) {
            return (server, started.elapsed());
        }
        assert!(started.elapsed() < Duration::from_secs(30), "the server did not become ready");
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn row(name: &str, o: &Outcome) {
    let rate = o.requests as f64 / o.elapsed.as_secs_f64();
    println!(
        "| {name:<44} | {rate:>9.0} | {:>8.2} | {:>8.2} | {:>6} |",
        o.latency_us.value_at_quantile(0.50) as f64 / 1000.0,
        o.latency_us.value_at_quantile(0.99) as f64 / 1000.0,
        o.errors
    );
}

fn main() {
    let o = options();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = o.db.clone().unwrap_or_else(|| dir.path().join("bench.db"));
    let port = free_port();
    let (server, ready_after) = start_server(&o, &db, port);
    let addr = format!("127.0.0.1:{port}");
    let time = Some(Duration::from_secs(o.seconds));
    let c = o.connections;

    // This process may be pinned itself, so count the machine's cores rather than the ones it may use.
    let cores = std::fs::read_to_string("/proc/cpuinfo").map(|s| s.matches("\nprocessor").count() + 1).unwrap_or(0);
    println!(
        "webhook-bench: {} messages, {} connections, {} s per scenario, server pinned to cpu {}, {cores} cores",
        o.messages, c, o.seconds, o.server_cpu
    );
    let preload = runtime.block_on(drive(
        &addr,
        c,
        None,
        Some(o.messages),
        Rc::new(|n| post(&message(&format!("pre-{n}"), n))),
        always_ok,
    ));
    assert_eq!(preload.errors, 0, "preload failed");
    println!(
        "preloaded {} messages in {:.1} s ({:.0} msg/s)\n",
        preload.requests,
        preload.elapsed.as_secs_f64(),
        preload.requests as f64 / preload.elapsed.as_secs_f64()
    );

    if let Some(seconds) = o.soak {
        soak(&runtime, &addr, &o, server.0.id(), seconds);
        return;
    }

    // Requests are built ahead where building them would cost the client more than the server spends.
    let duplicates: Rc<Vec<Vec<u8>>> =
        Rc::new((0..10_000.min(o.messages)).map(|n| post(&message(&format!("pre-{n}"), n))).collect());
    let by_sender: Rc<Vec<Vec<u8>>> =
        Rc::new((0..SENDERS).map(|s| get(&format!("/messages?from=%2B1555{s:07}&limit=20"))).collect());
    let run = o.messages;
    // Reads first, so they see exactly the N preloaded messages; the ingest scenarios add rows, so they run last.
    let scenarios: Vec<(&str, RequestMaker)> = vec![
        ("GET /messages?limit=50", Rc::new(|_| get("/messages?limit=50"))),
        ("GET /messages?from=…&limit=20", {
            let s = Rc::clone(&by_sender);
            Rc::new(move |n| s[(n % s.len() as u64) as usize].clone())
        }),
        (
            "GET /messages?q=word&limit=50&offset=100",
            Rc::new(|n| get(&format!("/messages?q={}&limit=50&offset=100", word(n)))),
        ),
        ("GET /stats", Rc::new(|_| get("/stats"))),
        ("ingest unique signed messages", Rc::new(move |n| post(&message(&format!("new-{n}"), run + n)))),
        ("ingest duplicates", {
            let d = Rc::clone(&duplicates);
            Rc::new(move |n| d[(n % d.len() as u64) as usize].clone())
        }),
    ];
    println!("| scenario                                     |     req/s |  p50 ms |  p99 ms | errors |");
    println!("|----------------------------------------------|----------:|---------:|---------:|-------:|");
    let mut errors = 0;
    for (name, make) in scenarios {
        let outcome = runtime.block_on(drive(&addr, c, time, None, make, always_ok));
        row(name, &outcome);
        errors += outcome.errors;
    }
    let rss = rss_kib(server.0.id(), "VmHWM:");
    let db_bytes: u64 = ["", "-wal"]
        .iter()
        .filter_map(|suffix| std::fs::metadata(format!("{}{suffix}", db.display())).ok())
        .map(|m| m.len())
        .sum();
    println!(
        "\npeak RSS {:.1} MB | database {:.1} MB (with WAL) | N = {} | start to ready {:.1} ms",
        rss as f64 / 1024.0,
        db_bytes as f64 / 1e6,
        o.messages,
        ready_after.as_secs_f64() * 1000.0
    );
    drop(server);
    // Speed is reported, never judged; a request that failed is a defect, whatever the speed.
    if errors > 0 {
        eprintln!("webhook-bench: {errors} requests failed");
        std::process::exit(1);
    }
}

/// The soak mix, by request number modulo 10: ingest (4), a duplicate, a page, a sender's page, a search,
/// stats, and a bad request (a forged signature, an invalid body, an unknown path in turn). `round` keeps
/// the ingested ids of each round new.
fn soak_request(preloaded: u64, round: u64) -> RequestMaker {
    Rc::new(move |n| match n % 10 {
        0..=3 => post(&message(&format!("soak-{round}-{n}"), preloaded + n)),
        4 => post(&message(&format!("pre-{}", n % preloaded), n % preloaded)),
        5 => get(&format!("/messages?limit=50&offset={}", n % 1000)),
        6 => get(&format!("/messages?from=%2B1555{:07}&limit=20", n % SENDERS)),
        7 => get(&format!("/messages?q={}&limit=20", word(n))),
        8 => get("/stats"),
        _ => match (n / 10) % 3 {
            0 => {
                let body = message(&format!("forged-{n}"), n);
                format!(
                    "POST /webhook HTTP/1.1\r\nHost: bench\r\nX-Signature: {}\r\nContent-Length: {}\r\n\r\n{body}",
                    "0".repeat(64),
                    body.len()
                )
                .into_bytes()
            }
            1 => post(r#"{"message_id":"","from":"0","to":"+1","ts":"yesterday"}"#),
            _ => get("/wp-login.php"),
        },
    })
}

fn soak_expected(n: u64) -> u16 {
    match (n % 10, (n / 10) % 3) {
        (9, 0) => 401,
        (9, 1) => 422,
        (9, _) => 404,
        _ => 200,
    }
}

/// Runs the soak mix in 10-second rounds, printing each round with the server's RSS after it. Fails on any
/// unexpected answer, and when the RSS of the last round is far above the first's.
fn soak(runtime: &tokio::runtime::Runtime, addr: &str, o: &Options, pid: u32, seconds: u64) {
    println!(
        "soak: {seconds} s of mixed load, server RSS after preload {:.1} MB\n",
        rss_kib(pid, "VmRSS:") as f64 / 1024.0
    );
    println!("| round |     req/s |  p50 ms |  p99 ms | unexpected | RSS MB |");
    println!("|------:|----------:|---------:|---------:|-----------:|-------:|");
    let mut errors = 0;
    let mut rss = Vec::new();
    for round in 0..seconds.div_ceil(10) {
        let round_time = Some(Duration::from_secs(seconds.min(10)));
        let outcome = runtime.block_on(drive(
            addr,
            o.connections,
            round_time,
            None,
            soak_request(o.messages, round),
            soak_expected,
        ));
        rss.push(rss_kib(pid, "VmRSS:"));
        println!(
            "| {:>5} | {:>9.0} | {:>8.2} | {:>8.2} | {:>10} | {:>6.1} |",
            round + 1,
            outcome.requests as f64 / outcome.elapsed.as_secs_f64(),
            outcome.latency_us.value_at_quantile(0.50) as f64 / 1000.0,
            outcome.latency_us.value_at_quantile(0.99) as f64 / 1000.0,
            outcome.errors,
            *rss.last().unwrap() as f64 / 1024.0
        );
        errors += outcome.errors;
    }
    let (first, last) = (rss[0], *rss.last().unwrap());
    println!(
        "\nRSS after the first round {:.1} MB, after the last {:.1} MB, peak {:.1} MB; {errors} unexpected answers",
        first as f64 / 1024.0,
        last as f64 / 1024.0,
        rss_kib(pid, "VmHWM:") as f64 / 1024.0
    );
    // Flat means no growth with time: what the first round settles at (caches filled) is what the last holds,
    // give or take allocator noise.
    let flat = last <= first + first / 4 + 4096;
    if errors > 0 || !flat {
        eprintln!("webhook-bench soak: {errors} unexpected answers; RSS flat: {flat}");
        std::process::exit(1);
    }
}
