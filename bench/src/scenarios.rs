//! The fixed-time scenarios, each on exactly the N preloaded messages where it reads, and their table.

use std::rc::Rc;
use std::time::Duration;

use crate::client::{all_ok, drive, get, post, Load, Outcome, Until};
use crate::data::{hostile_term, message, sender, timestamp, unique_term, Terms, SENDERS};
use crate::server::Server;

/// Runs every scenario (or those whose name contains one of `only`) for `time` and prints a row each; returns
/// how many requests failed.
pub async fn run(addr: &str, connections: usize, time: Duration, preloaded: u64, only: &[String]) -> u64 {
    println!("| scenario                                     |     req/s |  p50 ms |  p99 ms | errors |");
    println!("|----------------------------------------------|----------:|---------:|---------:|-------:|");
    let mut errors = 0;
    let chosen = |name: &String| only.is_empty() || only.iter().any(|part| name.contains(part.as_str()));
    for (name, load) in scenarios(preloaded).into_iter().filter(|(name, _)| chosen(name)) {
        let outcome = drive(addr, connections, Until::Elapsed(time), load).await;
        row(&name, &outcome);
        errors += outcome.errors;
    }
    errors
}

/// Reads first, so they see exactly the preloaded messages; the ingest scenarios add rows, so they run last.
/// Requests are built ahead where building them would cost the client more than the server spends.
fn scenarios(preloaded: u64) -> Vec<(String, Load)> {
    let terms = Terms::measure(preloaded);
    let (broad, broad_share) = terms.broad.clone();
    let (rare, rare_share) = terms.one_percent.clone();
    let absent = terms.absent.clone();
    let percent = |share: f64| format!("{:.1}%", share * 100.0);
    let middle = timestamp(preloaded / 2).replace(':', "%3A");
    let one_sender = sender(0).replace('+', "%2B");
    let fixed = |path: String| all_ok(move |_| get(&path));
    let duplicates: Rc<Vec<Vec<u8>>> =
        Rc::new((0..10_000.min(preloaded)).map(|n| post(&message(&format!("pre-{n}"), n))).collect());
    let by_sender: Rc<Vec<Vec<u8>>> =
        Rc::new((0..SENDERS).map(|s| get(&format!("/messages?from=%2B1555{s:07}&limit=20"))).collect());
    let cycle = |requests: Rc<Vec<Vec<u8>>>| all_ok(move |n| requests[(n % requests.len() as u64) as usize].clone());
    vec![
        ("GET /messages?limit=50".into(), all_ok(|_| get("/messages?limit=50"))),
        ("GET /messages?from=…&limit=20".into(), cycle(by_sender)),
        (
            format!("q=broad ({}) &limit=50&offset=100", percent(broad_share)),
            fixed(format!("/messages?q={broad}&limit=50&offset=100")),
        ),
        (format!("q=medium ({})", percent(rare_share)), fixed(format!("/messages?q={rare}"))),
        ("q=absent (0%)".into(), fixed(format!("/messages?q={absent}"))),
        ("q=a new term every request".into(), all_ok(|n| get(&format!("/messages?q={}", unique_term(n))))),
        (format!("q=medium ({}) &from=…", percent(rare_share)), fixed(format!("/messages?q={rare}&from={one_sender}"))),
        (
            format!("q=broad ({}) &since=middle", percent(broad_share)),
            fixed(format!("/messages?q={broad}&since={middle}")),
        ),
        ("GET /stats".into(), all_ok(|_| get("/stats"))),
        ("ingest unique signed messages".into(), all_ok(move |n| post(&message(&format!("new-{n}"), preloaded + n)))),
        ("ingest duplicates".into(), cycle(duplicates)),
    ]
}

/// Four clients search hostile terms (every length up to the bound, trigrams never seen before) for `time`
/// while one asks `/health/live`; prints both rows and the server's own memory before and after. Returns how
/// many requests failed.
pub async fn abuse(server: &Server, time: Duration) -> u64 {
    let before = server.anonymous_rss_kib();
    let hostile = all_ok(|n| get(&format!("/messages?q={}", hostile_term(n))));
    let (searches, live) = tokio::join!(
        drive(&server.addr, 4, Until::Elapsed(time), hostile),
        drive(&server.addr, 1, Until::Elapsed(time), all_ok(|_| get("/health/live"))),
    );
    row("abuse: hostile q, 4 clients", &searches);
    row("abuse: GET /health/live meanwhile", &live);
    let after = server.anonymous_rss_kib();
    println!("abuse: anonymous RSS {:.1} MB before, {:.1} MB after", before as f64 / 1024.0, after as f64 / 1024.0);
    searches.errors + live.errors
}

fn row(name: &str, o: &Outcome) {
    println!("| {name:<44} | {:>9.0} | {:>8.2} | {:>8.2} | {:>6} |", o.rate(), o.ms(0.50), o.ms(0.99), o.errors);
}
