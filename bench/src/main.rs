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
//! With `--remote URL` the server stores on that libSQL server through a proxy of the bench's, which counts
//! round trips and can add a delay to each; it prints round trips and latency per endpoint.
//!
//! With `--write-costs` it times each part of a delivery's write in the service's schema (see
//! `write_costs.rs`).
//!
//! With `--fleet 16x1 --sqld PATH` it runs a fleet of the service's instances on one fresh sqld against plain
//! one-row inserts on another (see `fleet.rs`).

mod client;
mod data;
mod disk;
mod fleet;
mod hrana;
#[path = "../../tests/common/listening.rs"]
mod listening;
mod pages;
#[path = "../../tests/common/proxy.rs"]
mod proxy;
mod remote;
mod scenarios;
mod server;
mod soak;
mod write_costs;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use client::{all_ok, drive, post, Until};
use data::message;
use server::Server;

#[derive(Parser)]
#[command(about = "Load generator for webhook-ingest: req/s and latency percentiles per scenario")]
struct Options {
    /// The server binary (built with --features local).
    #[arg(long, default_value = "target/release/webhook-ingest")]
    server: PathBuf,
    /// Messages preloaded before the scenarios.
    #[arg(long, default_value_t = 100_000)]
    messages: u64,
    /// Seconds each scenario runs.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// The CPU list the server is pinned to (taskset -c).
    #[arg(long, default_value = "0")]
    server_cpu: String,
    /// Keep the database here instead of a temporary directory (for inspecting it afterwards).
    #[arg(long)]
    db: Option<PathBuf>,
    /// Run only the scenarios whose name contains this text (repeat it for several).
    #[arg(long, value_name = "TEXT")]
    only: Vec<String>,
    /// Time each part of a delivery's write (the insert, each index, the triggers, the fsync, the text
    /// index) in the service's schema instead of running the scenarios.
    #[arg(long)]
    write_costs: bool,
    /// Run the mixed soak load for this many seconds instead of the scenarios.
    #[arg(long, value_name = "SECONDS")]
    soak: Option<u64>,
    /// Store on this libSQL server instead of a local file, and count round trips to it per request.
    #[arg(long, value_name = "URL")]
    remote: Option<String>,
    /// With --remote: milliseconds the bench's proxy adds to every round trip, as a network would.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Run fleets of these shapes (INSTANCESxCONNECTIONS, comma-separated) on fresh sqld servers, each
    /// `--seconds` long, against plain one-row inserts.
    #[arg(long, value_delimiter = ',', requires = "sqld")]
    fleet: Vec<fleet::Shape>,
    /// With --fleet: the sqld binary.
    #[arg(long)]
    sqld: Option<PathBuf>,
    /// With --fleet: an argument for every sqld started (repeat it for several).
    #[arg(long, allow_hyphen_values = true)]
    sqld_arg: Vec<String>,
}

fn main() -> ExitCode {
    let o = Options::parse();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = o.db.clone().unwrap_or_else(|| dir.path().join("bench.db"));
    if let Some(sqld) = o.sqld.as_deref().filter(|_| !o.fleet.is_empty()) {
        let passed = runtime.block_on(fleet::run(&o.server, sqld, &o.sqld_arg, &o.fleet, o.seconds));
        return if passed { ExitCode::SUCCESS } else { ExitCode::FAILURE };
    }
    if let Some(url) = &o.remote {
        let passed = runtime.block_on(remote::run(&o.server, &o.server_cpu, url, o.delay_ms, o.messages));
        return if passed { ExitCode::SUCCESS } else { ExitCode::FAILURE };
    }
    if o.write_costs {
        runtime.block_on(write_costs::run(&o.server, &o.server_cpu, dir.path()));
        return ExitCode::SUCCESS;
    }
    let server = Server::start(&o.server, &o.server_cpu, &format!("sqlite:///{}", db.display()));

    // This process may be pinned itself, so count the machine's cores rather than the ones it may use.
    let cores = std::fs::read_to_string("/proc/cpuinfo").map(|s| s.matches("\nprocessor").count() + 1).unwrap_or(0);
    println!(
        "webhook-bench: {} messages, {} connections, {} s per scenario, server pinned to cpu {}, {cores} cores",
        o.messages, o.connections, o.seconds, o.server_cpu
    );
    let preload = all_ok(|n| post(&message(&format!("pre-{n}"), n)));
    let preload = runtime.block_on(drive(&server.addr, o.connections, Until::Sent(o.messages), preload));
    assert_eq!(preload.errors, 0, "preload failed");
    println!(
        "preloaded {} messages in {:.1} s ({:.0} msg/s); the server settled {:.1} s later\n",
        preload.requests,
        preload.elapsed.as_secs_f64(),
        preload.rate(),
        server.settle().as_secs_f64()
    );

    let footprint = runtime.block_on(disk::measure(&db, dir.path()));
    println!(
        "disk at {} messages (VACUUMed): {:.0} bytes/message, the plain table {:.0} ({:.2}x)\n",
        footprint.messages,
        footprint.ours,
        footprint.plain,
        footprint.ours / footprint.plain
    );

    if let Some(seconds) = o.soak {
        let passed = runtime.block_on(soak::run(&server, o.connections, o.messages, seconds));
        return if passed { ExitCode::SUCCESS } else { ExitCode::FAILURE };
    }

    let time = Duration::from_secs(o.seconds);
    // The pages first: the scenarios' ingest adds rows.
    let mut errors = runtime.block_on(pages::run(&server.addr, o.connections, time, o.messages, &o.only));
    errors += runtime.block_on(scenarios::run(&server.addr, o.connections, time, o.messages, &o.only));
    if o.only.is_empty() || o.only.iter().any(|part| "abuse".contains(part.as_str())) {
        errors += runtime.block_on(scenarios::abuse(&server, time));
    }
    let db_bytes: u64 = ["", "-wal"]
        .iter()
        .filter_map(|suffix| std::fs::metadata(format!("{}{suffix}", db.display())).ok())
        .map(|m| m.len())
        .sum();
    println!(
        "\npeak RSS {:.1} MB ({:.1} MB of it anonymous at the end; the rest is mapped files: the binary, the database) | database \
         {:.1} MB (with WAL) | N = {} | start to ready {:.1} ms",
        server.peak_rss_kib() as f64 / 1024.0,
        server.anonymous_rss_kib() as f64 / 1024.0,
        db_bytes as f64 / 1e6,
        o.messages,
        server.ready_after.as_secs_f64() * 1000.0
    );
    // Speed is reported, never judged; a request that failed is a defect, whatever the speed.
    if errors > 0 {
        eprintln!("webhook-bench: {errors} requests failed");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
