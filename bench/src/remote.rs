//! The server on a libSQL server: round trips and latency per endpoint, through a proxy that counts every
//! HTTP request to the libSQL server and delays each by a chosen time, as a network between them would;
//! then the first searches of a new instance (a Lambda cold start) against the warm one's.

use std::path::Path;
use std::time::Duration;

use crate::client::{all_ok, drive, get, post, Until};
use crate::data::{message, sender, sort_key, timestamp, unique_term};
use crate::hrana::Hrana;
use crate::proxy::{host_and_port, Proxy};
use crate::server::Server;

/// Requests per endpoint, one at a time, so each one's trips and latency are its own.
const REQUESTS: u64 = 100;

/// Messages per statement of the bulk preload.
const LOAD_CHUNK: u64 = 5_000;

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
    let started = std::time::Instant::now();
    if let Err(e) = bulk_load(&host_and_port(url), run, preload).await {
        eprintln!("webhook-bench --remote: the preload failed: {e}");
        return false;
    }
    println!(
        "preloaded {preload} messages in {:.1} s, in bulk straight into the server (the scene, not a measure)\n",
        started.elapsed().as_secs_f64()
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
    let mut errors = 0;
    let mut warm = Vec::new();
    for (name, load) in endpoints {
        let outcome = drive(&server.addr, 1, Until::Sent(REQUESTS), load).await;
        let trips = proxy.take_requests() as f64 / outcome.requests as f64;
        println!(
            "| {name:<44} | {trips:>11.2} | {:>6.1} | {:>6.1} | {:>6} |",
            outcome.ms(0.50),
            outcome.ms(0.99),
            outcome.errors
        );
        warm.push((name, outcome.ms(0.50)));
        errors += outcome.errors;
    }
    // A new instance reads the totals the first one counted and shared, in its start's round trip; its first
    // search of each term is timed against the warm instance's median.
    let fresh = Server::start(binary, cpu, &format!("http://{}", proxy.addr));
    println!("\n| first request of a new instance                | ms     | the warm one's p50 ms | ratio |");
    println!("|-----------------------------------------------|-------:|----------------------:|------:|");
    let firsts = [
        ("GET /messages?q=broad&limit=50&offset=100", format!("/messages?q={broad}&limit=50&offset=100")),
        ("GET /messages?q=broad&since=…", format!("/messages?q={broad}&since={middle}")),
        ("GET /messages?q=medium", format!("/messages?q={rare}")),
        ("GET /messages?q=medium&from=…", format!("/messages?q={rare}&from={one_sender}")),
    ];
    for (name, path) in firsts {
        let path = path.clone();
        let outcome = drive(&fresh.addr, 1, Until::Sent(1), all_ok(move |_| get(&path))).await;
        let warm_p50 = warm.iter().find(|(warm, _)| *warm == name).map_or(f64::NAN, |(_, ms)| *ms);
        println!("| {name:<45} | {:>6.1} | {warm_p50:>21.1} | {:>5.2} |", outcome.ms(1.0), outcome.ms(1.0) / warm_p50);
        errors += outcome.errors;
    }
    if errors > 0 {
        eprintln!("webhook-bench --remote: {errors} requests failed");
    }
    errors == 0
}

/// Loads messages `0..count` of the bench's data straight into the server's `messages` and text index, a
/// chunk a statement: a million through the service would take the better part of an hour, and the
/// preload only sets the scene. The schema is the service's, which created it when it started; `text_folded`
/// stays NULL, as the service leaves it for these lower-case ASCII texts.
async fn bulk_load(addr: &str, run: u64, count: u64) -> Result<(), String> {
    let mut server = Hrana::new(addr);
    for start in (0..count).step_by(LOAD_CHUNK as usize) {
        let rows: Vec<serde_json::Value> = (start..(start + LOAD_CHUNK).min(count))
            .map(|n| {
                let (ts, text) = (timestamp(n), crate::data::text(n));
                let key = hex::encode(sort_key(&ts));
                serde_json::json!([format!("remote-{run}-pre-{n}"), sender(n), ts, text, key])
            })
            .collect();
        let rows = serde_json::json!({"type": "text", "value": serde_json::Value::Array(rows).to_string()});
        for (sql, args) in [
            (
                "INSERT INTO messages (message_id, from_msisdn, to_msisdn, ts, text, created_at, ts_key) \
                 SELECT value ->> 0, value ->> 1, '+14155550100', value ->> 2, value ->> 3, \
                 '2026-01-01T00:00:00.000Z', unhex(value ->> 4) FROM json_each(?1)",
                vec![rows],
            ),
            (
                "INSERT INTO messages_text (rowid, text_folded) SELECT rowid, coalesce(text_folded, lower(text)) \
                 FROM messages WHERE rowid > (SELECT indexed_through FROM text_index_state)",
                Vec::new(),
            ),
            ("UPDATE text_index_state SET indexed_through = (SELECT max(rowid) FROM messages)", Vec::new()),
        ] {
            server.execute_with_retries(sql, args).await.map_err(|e| e.message)?;
        }
    }
    Ok(())
}
