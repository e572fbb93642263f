//! The server on a libSQL server: round trips and latency per endpoint, through a proxy that counts every
//! HTTP request to the libSQL server and delays each by a chosen time, as a network between them would.

use std::path::Path;
use std::time::Duration;

use crate::client::{all_ok, drive, get, post, Until};
use crate::data::{message, sender, timestamp, unique_term};
use crate::proxy::{host_and_port, Proxy};
use crate::server::Server;

/// Requests per endpoint, one at a time, so each one's trips and latency are its own.
const REQUESTS: u64 = 100;

/// Connections that preload, with no delay added: the preload only sets the scene.
const PRELOAD_CONNECTIONS: usize = 16;

/// Runs the endpoints against a server at `url` behind a proxy adding `delay_ms`, after preloading `preload`
/// messages; false if a request failed.
pub async fn run(binary: &Path, cpu: &str, url: &str, delay_ms: u64, preload: u64) -> bool {
    let proxy = Proxy::start(&host_and_port(url), b"");
    proxy.set_delay(Duration::from_millis(delay_ms));
    let server = Server::start(binary, cpu, &format!("http://{}", proxy.addr));
    println!(
        "webhook-bench --remote: a libSQL server at {url} behind a proxy adding {delay_ms} ms per round trip; \
         {preload} messages preloaded, then {REQUESTS} requests per endpoint, one at a time\n"
    );
    println!(
        "process start until /health/ready answers 200: {} round trips, {:.1} ms (the start's schema check, \
         one on a current schema, and the readiness probe; an empty database is migrated first)\n",
        proxy.take_requests(),
        server.ready_after.as_secs_f64() * 1000.0
    );
    // Ids new on every run, so a server that keeps its data between runs still sees first deliveries.
    let run = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let fill = all_ok(move |n| post(&message(&format!("remote-{run}-pre-{n}"), n)));
    proxy.set_delay(Duration::ZERO);
    let filled = drive(&server.addr, PRELOAD_CONNECTIONS, Until::Sent(preload), fill).await;
    println!(
        "preloaded {} messages in {:.1} s ({:.0} msg/s, no delay added)\n",
        filled.requests,
        filled.elapsed.as_secs_f64(),
        filled.rate()
    );
    proxy.set_delay(Duration::from_millis(delay_ms));
    proxy.take_requests();
    println!("| request                                      | round trips | p50 ms | p99 ms | errors |");
    println!("|----------------------------------------------|------------:|-------:|-------:|-------:|");
    let terms = crate::data::Terms::measure(preload);
    let (broad, rare, absent) = (terms.broad.0, terms.one_percent.0, terms.absent);
    let one_sender = sender(0).replace('+', "%2B");
    let middle = timestamp(preload / 2).replace(':', "%3A");
    let fixed = |path: String| all_ok(move |_| get(&path));
    let endpoints: [(&str, crate::client::Load); 13] = [
        ("POST /webhook (created)", all_ok(move |n| post(&message(&format!("remote-{run}-new-{n}"), n)))),
        ("POST /webhook (duplicate)", all_ok(move |n| post(&message(&format!("remote-{run}-new-{n}"), n)))),
        ("GET /messages?limit=50", all_ok(|_| get("/messages?limit=50"))),
        ("GET /messages?from=…&limit=20", all_ok(|n| get(&format!("/messages?from=%2B1555{:07}&limit=20", n % 1000)))),
        ("GET /messages?q=broad&limit=50&offset=100", fixed(format!("/messages?q={broad}&limit=50&offset=100"))),
        ("GET /messages?q=broad&since=…", fixed(format!("/messages?q={broad}&since={middle}"))),
        ("GET /messages?q=medium", fixed(format!("/messages?q={rare}"))),
        ("GET /messages?q=medium&from=…", fixed(format!("/messages?q={rare}&from={one_sender}"))),
        ("GET /messages?q=absent", fixed(format!("/messages?q={absent}"))),
        ("GET /messages?q=a new term every request", all_ok(|n| get(&format!("/messages?q={}", unique_term(n))))),
        ("GET /messages?q=medium&offset past the end", fixed(format!("/messages?q={rare}&offset=100000"))),
        ("GET /stats", all_ok(|_| get("/stats"))),
        ("GET /health/ready", all_ok(|_| get("/health/ready"))),
    ];
    let mut errors = filled.errors;
    for (name, load) in endpoints {
        let outcome = drive(&server.addr, 1, Until::Sent(REQUESTS), load).await;
        let trips = proxy.take_requests() as f64 / outcome.requests as f64;
        println!(
            "| {name:<44} | {trips:>11.2} | {:>6.1} | {:>6.1} | {:>6} |",
            outcome.ms(0.50),
            outcome.ms(0.99),
            outcome.errors
        );
        errors += outcome.errors;
    }
    if errors > 0 {
        eprintln!("webhook-bench --remote: {errors} requests failed");
    }
    errors == 0
}
