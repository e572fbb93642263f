//! Cursors and the arrival feed of `GET /messages`, against the real server (on a libSQL server too, with
//! `LIBSQL_TEST_URL`): cursor pages are the offset pages, for every filter, while rows arrive; the feed
//! gives every message stored after a cursor exactly once, however many processes write at once; and every
//! cursor that is not the service's, or not for these filters, is a 422 that names it.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{message, spawn_app, Setup, Target, TestApp};
use serde_json::Value;

fn ids(listing: &Value) -> Vec<String> {
    listing["data"].as_array().unwrap().iter().map(|m| m["message_id"].as_str().unwrap().to_owned()).collect()
}

fn encoded(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// A day's worth of instants, spread so that many share a second and some share an instant exactly.
fn ts(n: u32) -> String {
    format!("2025-01-15T{:02}:{:02}:{:02}.{}Z", n * 7 % 24, n * 13 % 60, n % 3 * 20, n % 2 * 5)
}

fn sender(n: u32) -> &'static str {
    ["+15550001", "+15550002", "+15550003"][(n % 3) as usize]
}

fn text(n: u32) -> Option<String> {
    match n % 5 {
        0 => None,
        1 | 2 => Some(format!("Kaka number {n}")),
        3 => Some(format!("rika {n} KAKA")),
        _ => Some(format!("other {n}")),
    }
}

async fn deliver(app: &TestApp, n: u32, ts: &str) {
    let id = format!("p{n:04}");
    let body = message(&id, sender(n), ts, text(n).as_deref());
    assert_eq!(app.deliver(&body).await.0, 200, "{id}");
}

/// Every filter combination the listing tells apart, in both orders.
fn listings() -> Vec<String> {
    let filters = ["", "from=%2B15550002", "since=2025-01-15T12:00:00Z", "q=kaka", "q=rika&from=%2B15550001"];
    let filters = filters.into_iter().chain(["q=kaka&since=2025-01-15T06:00:00Z", "q=zzz", "q=ka"]);
    filters.flat_map(|f| [f.to_owned(), format!("{f}&order=arrival")]).collect()
}

/// Walks `listing` page by page with cursors and with offsets side by side while `during` adds rows after
/// each page (told its number), and checks every page of one is the page of the other, and the walk ends when
/// the rows do.
async fn walk(app: &TestApp, listing: &str, limit: u32, during: &mut impl AsyncFnMut(u32)) {
    let (mut cursor, mut offset) = (None::<String>, 0);
    for page in 0.. {
        let by_offset = app.get(&format!("/messages?{listing}&limit={limit}&offset={offset}")).await.1;
        let after = cursor.as_deref().map(|c| format!("&cursor={c}")).unwrap_or_default();
        let (status, by_cursor) = app.get(&format!("/messages?{listing}&limit={limit}{after}")).await;
        assert_eq!(status, 200, "{listing}, page {page}: {by_cursor}");
        assert_eq!(ids(&by_cursor), ids(&by_offset), "{listing}, page {page}");
        assert_eq!(by_cursor["total"], by_offset["total"], "{listing}, page {page}");
        assert_eq!((&by_cursor["offset"], &by_cursor["limit"]), (&0.into(), &limit.into()));
        let arrival = listing.contains("order=arrival");
        let last = ids(&by_cursor).len() < limit as usize;
        match by_cursor["next_cursor"].as_str() {
            // A feed goes on from its last row; in time order there is no cursor after the last page.
            Some(_) => assert!(arrival || !last, "{listing}, page {page}: a cursor after the last page"),
            None => {
                assert!(!arrival, "{listing}, page {page}: a feed page without a cursor");
                break;
            }
        }
        if last {
            break;
        }
        cursor = by_cursor["next_cursor"].as_str().map(str::to_owned);
        offset += limit;
        during(page).await;
    }
}

#[tokio::test]
async fn cursor_pages_are_the_offset_pages_for_every_filter_while_rows_arrive() {
    let app = spawn_app().await;
    for n in 0..120 {
        deliver(&app, n, &ts(n)).await;
    }
    let mut next = 1000;
    for listing in listings() {
        let arrival = listing.contains("order=arrival");
        // Rows added after each of a walk's first pages land after it, where both walks find them: in arrival
        // order whatever their `ts`, in time order with a later one.
        let mut during = async |page: u32| {
            for _ in 0..if page < 4 { 3 } else { 0 } {
                next += 1;
                let later = format!("2025-01-16T{:02}:{:02}:{:02}Z", next / 3600, next / 60 % 60, next % 60);
                deliver(&app, next, &if arrival { ts(next) } else { later }).await;
            }
        };
        for limit in [1, 7, 50] {
            walk(&app, &listing, limit, &mut during).await;
        }
    }
}

#[tokio::test]
async fn a_cursor_that_is_not_the_services_or_not_for_these_filters_is_a_422_naming_it() {
    let app = spawn_app().await;
    for n in 0..5 {
        deliver(&app, n, &ts(n)).await;
    }
    let (_, first) = app.get("/messages?q=kaka&limit=1").await;
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    assert_eq!(app.get(&format!("/messages?q=KAKA&limit=1&cursor={cursor}")).await.0, 200, "the same filters");
    let mut altered = cursor.clone().into_bytes();
    altered[cursor.len() / 2] ^= 1;
    let altered = String::from_utf8(altered).unwrap();
    let forged = "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let unreadable = "Value error, cursor is not one this service issued (malformed, truncated or altered); \
                      start again without it";
    let other = "Value error, cursor belongs to a listing with other filters; ask with the same from, since, q and \
                 order it was issued for";
    let together =
        "Value error, offset and cursor cannot be used together: a cursor already says where the page starts";
    let cases = [
        (format!("q=kaka&cursor={}", &cursor[..cursor.len() - 3]), "cursor", unreadable),
        (format!("q=kaka&cursor={altered}"), "cursor", unreadable),
        (format!("q=kaka&cursor={forged}"), "cursor", unreadable),
        (format!("q=kaka&cursor={}", encoded("$%^&*")), "cursor", unreadable),
        (format!("q=rika&cursor={cursor}"), "cursor", other),
        (format!("cursor={cursor}"), "cursor", other),
        (format!("q=kaka&from=%2B15550001&cursor={cursor}"), "cursor", other),
        (format!("q=kaka&order=arrival&cursor={cursor}"), "cursor", other),
        (format!("q=kaka&offset=0&cursor={cursor}"), "offset", together),
        ("order=newest".to_owned(), "order", "Input should be 'time' or 'arrival'"),
    ];
    for (query, field, msg) in cases {
        let (status, body) = app.get(&format!("/messages?{query}")).await;
        assert_eq!(status, 422, "{query}: {body}");
        assert_eq!(body["detail"][0]["loc"], serde_json::json!(["query", field]), "{query}");
        assert_eq!(body["detail"][0]["msg"], msg, "{query}");
        assert_eq!(body["detail"].as_array().unwrap().len(), 1, "{query}: {body}");
    }
    // A cursor sealed under another secret: what a client that forges one has.
    let elsewhere = TestApp::start(Setup::new().local_file().env("WEBHOOK_SECRET", "another-secret")).await;
    let theirs = elsewhere.get("/messages?order=arrival").await.1["next_cursor"].as_str().unwrap().to_owned();
    let (status, body) = app.get(&format!("/messages?order=arrival&cursor={theirs}")).await;
    assert_eq!((status, &body["detail"][0]["msg"]), (422, &unreadable.into()), "{body}");
}

#[tokio::test]
async fn the_feed_follows_messages_in_arrival_order_whatever_their_ts() {
    let app = spawn_app().await;
    let (_, empty) = app.get("/messages?order=arrival").await;
    assert_eq!((ids(&empty).len(), empty["total"].as_u64()), (0, Some(0)));
    let mut cursor = empty["next_cursor"].as_str().expect("a feed has a cursor even when empty").to_owned();
    let mut expected = Vec::new();
    for round in 0..4u32 {
        // Each round older than the one before: in time order every one lands before what was read.
        for n in round * 10..round * 10 + 10 {
            deliver(&app, n, &format!("2025-01-{:02}T10:00:{:02}Z", 20 - round, n % 60)).await;
            expected.push(format!("p{n:04}"));
        }
        let (status, page) = app.get(&format!("/messages?order=arrival&limit=100&cursor={cursor}")).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(ids(&page), expected[round as usize * 10..], "round {round}");
        assert_eq!(page["total"], expected.len(), "the total is of every match, not of those after the cursor");
        cursor = page["next_cursor"].as_str().unwrap().to_owned();
        // Asked again with nothing new: nothing, and the same place to go on from.
        let (_, again) = app.get(&format!("/messages?order=arrival&limit=100&cursor={cursor}")).await;
        assert_eq!((ids(&again).len(), again["next_cursor"].as_str()), (0, Some(cursor.as_str())));
    }
    // With a filter, offsets work as in time order, and the rows are in arrival order.
    let (_, page) = app.get("/messages?order=arrival&from=%2B15550002&offset=2&limit=3").await;
    let theirs: Vec<&String> = expected.iter().filter(|id| id[1..].parse::<u32>().unwrap() % 3 == 1).collect();
    assert_eq!(ids(&page), theirs[2..5].iter().map(|id| id.to_string()).collect::<Vec<_>>());
}

/// The feed under several processes writing at once (on a server, a fleet of instances): a consumer that
/// follows it with its cursors gets every acknowledged message exactly once, and nothing else. In replica
/// mode the consumer reads from its replica and the other writers store on the server directly, as a fleet
/// of Lambda instances does (a new replica first copies the server's whole history: several at once would
/// test how fast that is).
#[tokio::test]
async fn a_consumer_of_the_feed_gets_every_message_exactly_once_while_several_processes_write() {
    let first = TestApp::start(Setup::new().env("LIBSQL_SYNC_INTERVAL", "0.2")).await;
    let beside_first = || match &first.target {
        Target::Replica(server) => Setup::new().same_store_as(&first).on(Target::Server(server.clone())),
        _ => Setup::new().same_store_as(&first),
    };
    let more = (1..4).map(|_| TestApp::start(beside_first()));
    let more = futures::future::join_all(more).await;
    let mut writers = vec![first];
    writers.extend(more);
    let until = Instant::now() + Duration::from_secs(4);
    let writing = writers.iter().enumerate().map(|(instance, app)| async move {
        let mut acknowledged = Vec::new();
        for n in 0u32.. {
            if Instant::now() >= until {
                break;
            }
            // Out of time order on purpose: every instance writes ever older messages.
            let id = format!("w{instance}-{n}");
            let ts = format!("2025-01-15T{:02}:{:02}:{:02}Z", 23 - n / 3600 % 24, 59 - n / 60 % 60, 59 - n % 60);
            let (status, body) = app.deliver(&message(&id, sender(n), &ts, Some("feed"))).await;
            assert_eq!(status, 200, "{id}: {body}");
            acknowledged.push(id);
        }
        acknowledged
    });
    let reader = &writers[0];
    let following = async {
        let (mut seen, mut cursor) = (Vec::new(), String::new());
        while Instant::now() < until {
            let (status, page) = reader.get(&format!("/messages?order=arrival&limit=37&cursor={cursor}")).await;
            assert_eq!(status, 200, "{page}");
            seen.extend(ids(&page));
            cursor = page["next_cursor"].as_str().unwrap().to_owned();
        }
        (seen, cursor)
    };
    let (acknowledged, (mut seen, mut cursor)) = tokio::join!(futures::future::join_all(writing), following);
    let acknowledged: HashSet<String> = acknowledged.into_iter().flatten().collect();
    // Every write is acknowledged, so committed: the rest of the feed has them (a replica's after a sync).
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.len() < acknowledged.len() && Instant::now() < deadline {
        let (_, page) = reader.get(&format!("/messages?order=arrival&limit=100&cursor={cursor}")).await;
        if ids(&page).is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        seen.extend(ids(&page));
        cursor = page["next_cursor"].as_str().unwrap().to_owned();
    }
    let unique: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "the feed gave a message twice");
    assert_eq!(unique, acknowledged, "the feed and the acknowledged deliveries differ");
    assert!(acknowledged.len() > 100, "only {} deliveries in 4 s", acknowledged.len());
}
