//! Deep pages, each on exactly the preloaded messages: a page far into a listing against the plain listing's
//! page at the same offset, and a page reached by cursors against the first page.

use std::time::Duration;

use crate::client::{all_ok, drive, get, Connection, Outcome, Until};
use crate::data::Terms;

/// The page size of every request here.
const LIMIT: u64 = 50;
/// The offsets of the deep pages.
const OFFSETS: [u64; 2] = [1_000, 20_000];
/// The page cursors walk to (or the last page, when a listing has fewer).
const CURSOR_PAGE: u64 = 1_000;

/// Runs the deep-offset table (scenario name "deep") and the cursor table ("cursor") for `time` a row, or
/// those of them whose name contains one of `only`; returns how many requests failed.
pub async fn run(addr: &str, connections: usize, time: Duration, preloaded: u64, only: &[String]) -> u64 {
    let chosen = |name: &str| only.is_empty() || only.iter().any(|part| name.contains(part.as_str()));
    let listings = listings(preloaded);
    let mut errors = 0;
    // Each after one request alone: what a listing asked again costs, not the first count of its filters.
    let measure = async |path: String| -> Outcome {
        let warm = drive(
            addr,
            1,
            Until::Sent(1),
            all_ok({
                let path = path.clone();
                move |_| get(&path)
            }),
        )
        .await;
        let mut outcome = drive(addr, connections, Until::Elapsed(time), all_ok(move |_| get(&path))).await;
        outcome.errors += warm.errors;
        outcome
    };
    if chosen("deep") {
        println!(
            "| deep offsets (limit {LIMIT})                   |  1,000: req/s | × plain | 20,000: req/s | × plain |"
        );
        println!(
            "|----------------------------------------------|--------------:|--------:|--------------:|--------:|"
        );
        let mut plain = Vec::new();
        for (name, filters) in &listings {
            let mut cells = Vec::new();
            for (at, offset) in OFFSETS.into_iter().enumerate() {
                let outcome = measure(format!("/messages?{filters}limit={LIMIT}&offset={offset}")).await;
                errors += outcome.errors;
                if filters.is_empty() {
                    plain.push(outcome.rate());
                }
                cells.push(format!("{:>13.0} | {:>6.1}×", outcome.rate(), plain[at] / outcome.rate()));
            }
            println!("| {name:<44} | {} |", cells.join(" | "));
        }
        println!();
    }
    if chosen("cursor") {
        println!("| cursors (limit {LIMIT})                         | page 1: req/s | page N: req/s |  N    | page N ÷ page 1 |");
        println!("|----------------------------------------------|--------------:|--------------:|------:|----------------:|");
        for (name, filters) in &listings {
            let first = measure(format!("/messages?{filters}limit={LIMIT}")).await;
            let (page, cursor) = walk(addr, filters).await;
            let deep = measure(format!("/messages?{filters}limit={LIMIT}&cursor={cursor}")).await;
            errors += first.errors + deep.errors;
            println!(
                "| {name:<44} | {:>13.0} | {:>13.0} | {page:>5} | {:>14.2}× |",
                first.rate(),
                deep.rate(),
                first.rate() / deep.rate()
            );
        }
        println!();
    }
    errors
}

/// The listings compared: plain, and a broad, a common, a medium and a rare search.
fn listings(preloaded: u64) -> Vec<(String, String)> {
    let terms = Terms::measure(preloaded);
    let percent = |share: f64| format!("{:.1}%", share * 100.0);
    let search =
        |(term, share): &(String, f64), kind: &str| (format!("q={kind} ({})", percent(*share)), format!("q={term}&"));
    vec![
        ("plain".to_owned(), String::new()),
        search(&terms.broad, "broad"),
        search(&terms.quarter, "common"),
        search(&terms.seven_percent, "medium"),
        search(&terms.half_percent, "rare"),
    ]
}

/// Follows a listing's cursors from its first page to page [`CURSOR_PAGE`] or its last page with a next one;
/// returns that page's number and the cursor that reads it.
async fn walk(addr: &str, filters: &str) -> (u64, String) {
    let mut conn = Connection::open(addr).await.expect("connect");
    let (mut page, mut cursor) = (1, String::new());
    while page < CURSOR_PAGE {
        let status =
            conn.call(&get(&format!("/messages?{filters}limit={LIMIT}&cursor={cursor}"))).await.expect("a page");
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(conn.body()));
        let answer: serde_json::Value = serde_json::from_slice(conn.body()).expect("a JSON page");
        let Some(next) = answer["next_cursor"].as_str() else { break };
        (page, cursor) = (page + 1, next.to_owned());
    }
    (page, cursor)
}
