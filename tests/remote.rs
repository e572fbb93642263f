//! Storing on a libSQL server. A server that is down, never answers, or answers errors is simulated here,
//! so those tests always run: `/webhook` gets a 5xx JSON answer within a bounded time, `/health/ready` is
//! 503 with a reason, and the token never reaches the logs. With a real server in `LIBSQL_TEST_URL`, the
//! tests after them cut it off and restore it behind a proxy, and run several service processes on it at
//! once (directly, or with `LIBSQL_TEST_MODE=replica` each through its own embedded replica). Those need
//! one, so they are `#[ignore]`d: a run without a server reports them ignored, and `make remote-test` runs
//! them with `--include-ignored` (and they fail, not pass, if no server is set then). Tests of what only
//! direct mode or only a replica does choose theirs, whatever the mode.

mod common;
#[path = "common/proxy.rs"]
mod proxy;

use std::time::{Duration, Instant};

use common::{body, eventually, message, required_server, whatsapp_delivery, whatsapp_text, Setup, Target, TestApp};
use proxy::{host_and_port, Proxy};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use webhook_ingest::store::{DEADLINE, PROBE_TIMEOUT, SCHEMA_VERSION};

const TOKEN: &str = "token-that-must-never-be-logged-5b9e";

/// An app whose database is the (fake) server at `url`.
async fn start_on(url: &str) -> TestApp {
    TestApp::start(Setup::new().local_file().env("DATABASE_URL", url).env("LIBSQL_AUTH_TOKEN", TOKEN)).await
}

/// Delivers `id` and checks the answer is the JSON 5xx of a database fault, within the server deadline.
async fn assert_delivery_fails(app: &TestApp, id: &str) {
    let started = Instant::now();
    let (status, answer) = app.deliver(&body(id)).await;
    assert!(status == 503 || status == 500, "{id}: {status} {answer}");
    assert_eq!(answer, json!({"detail": "internal error"}));
    assert!(started.elapsed() < DEADLINE + Duration::from_secs(2), "{id} took {:?}", started.elapsed());
}

async fn assert_not_ready(app: &TestApp) {
    let started = Instant::now();
    common::assert_not_ready(app, &["database unavailable", "database did not answer in time"]).await;
    assert!(started.elapsed() < DEADLINE + PROBE_TIMEOUT * 2, "readiness took {:?}", started.elapsed());
}

fn assert_token_not_logged(app: &TestApp) {
    let logs = app.logs().iter().map(|line| line.to_string()).chain(app.stderr()).collect::<Vec<_>>();
    assert!(!logs.iter().any(|line| line.contains(TOKEN)), "the token was logged: {logs:?}");
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A server that takes connections and never answers.
async fn silent_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    port
}

/// An HTTP server that answers every request 500.
async fn failing_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = [0u8; 65536];
                while let Ok(n) = stream.read(&mut request).await {
                    if n == 0 {
                        break;
                    }
                    let body = r#"{"message":"internal error"}"#;
                    let answer = format!(
                        "HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if stream.write_all(answer.as_bytes()).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

#[tokio::test]
async fn an_unreachable_server_gets_5xx_and_not_ready() {
    let app = start_on(&format!("http://127.0.0.1:{}", closed_port())).await;
    assert_delivery_fails(&app, "m1").await;
    assert_eq!(app.get("/messages").await, (503, json!({"detail": "internal error"})));
    assert_not_ready(&app).await;
    assert_eq!(app.get("/health/live").await.0, 200);
    app.wait_for_log(|l| l["msg"] == "database unavailable").await;
    assert_token_not_logged(&app);
}

#[tokio::test]
async fn a_server_that_never_answers_gets_5xx_within_the_deadline() {
    let app = start_on(&format!("http://127.0.0.1:{}", silent_server().await)).await;
    for id in ["m1", "m2"] {
        assert_delivery_fails(&app, id).await;
        // Past the retry interval, so the next delivery waits on the server again.
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    assert_not_ready(&app).await;
    assert_token_not_logged(&app);
}

#[tokio::test]
async fn a_server_answering_errors_gets_5xx() {
    let app = start_on(&format!("http://127.0.0.1:{}", failing_server().await)).await;
    assert_delivery_fails(&app, "m1").await;
    assert_eq!(app.get("/stats").await.1, json!({"detail": "internal error"}));
    assert_not_ready(&app).await;
    assert_token_not_logged(&app);
}

/// What a delivery's statement starts with: the proxy watches those in flight.
const DELIVERY: &[u8] = b"INSERT INTO inbox";

/// A proxy in front of the test server, watching deliveries.
fn proxy_to(server: &str) -> Proxy {
    Proxy::start(&host_and_port(server), DELIVERY)
}

#[tokio::test]
#[ignore = "needs a libSQL server: LIBSQL_TEST_URL (make server-test SQLD=path)"]
async fn losing_the_server_fails_deliveries_and_readiness_until_it_is_back() {
    let server = required_server();
    // The app reaches the server only through the proxy; the harness reads the server directly.
    let proxy = proxy_to(&server);
    let app = TestApp::start(Setup::new().server_via(&proxy.url())).await;
    assert_eq!(app.deliver(&body("before")).await.0, 200);

    proxy.set_open(false);
    let cut = || async { proxy.connections() == 0 };
    eventually("the proxy never cut its connections", Duration::from_secs(5), Duration::from_millis(5), cut).await;
    assert_delivery_fails(&app, "during").await;
    assert_not_ready(&app).await;

    proxy.set_open(true);
    app.wait_ready(Duration::from_secs(20)).await;
    assert_eq!(app.deliver(&body("during")).await.0, 200);
    assert_eq!(app.stored_ids().await, ["before", "during"]);
}

#[tokio::test]
#[ignore = "needs a libSQL server: LIBSQL_TEST_URL (make server-test SQLD=path)"]
async fn several_instances_on_one_server_store_each_message_once() {
    required_server();
    let first = TestApp::start(Setup::new()).await;
    let mut apps = vec![first];
    for _ in 0..2 {
        apps.push(TestApp::start(Setup::new().same_store_as(&apps[0])).await);
    }
    // 48 deliveries of each of 4 ids, spread over the three processes, all at once.
    let deliveries = (0..192).map(|n| {
        let app = &apps[n % 3];
        let id = format!("shared-{}", n % 4);
        async move { app.deliver(&body(&id)).await }
    });
    let answers = futures::future::join_all(deliveries).await;
    let failed: Vec<_> =
        apps.iter().flat_map(|app| app.logs()).filter(|line| line["status"].as_u64() >= Some(500)).collect();
    assert!(answers.iter().all(|(status, _)| *status == 200) && failed.is_empty(), "{failed:?}");
    let ids = apps[0].stored_ids().await;
    assert_eq!(ids, ["shared-0", "shared-1", "shared-2", "shared-3"]);
    for app in &apps {
        let (_, stats) = app.get("/stats").await;
        assert_eq!(stats["total_messages"], 4);
    }
}

#[tokio::test]
#[ignore = "needs a libSQL server: LIBSQL_TEST_URL (make server-test SQLD=path)"]
async fn a_replica_reads_its_own_writes_at_once_and_others_after_a_sync() {
    // Replicas whatever the suite's mode.
    let replica = Target::Replica(required_server());
    let writer = TestApp::start(Setup::new().on(replica).env("LIBSQL_SYNC_INTERVAL", "0.2")).await;
    let reader = TestApp::start(Setup::new().same_store_as(&writer).env("LIBSQL_SYNC_INTERVAL", "0.2")).await;
    for n in 0..5 {
        let id = format!("ryw-{n}");
        assert_eq!(writer.deliver(&body(&id)).await.0, 200);
        // The instance that wrote reads it back at once, from its own replica.
        let (_, listing) = writer.get("/messages?limit=100").await;
        assert_eq!(listing["total"], n + 1, "{id} not read back by its writer: {listing}");
    }
    // Another instance sees them once its replica has synced.
    let caught_up = || async { reader.get("/stats").await.1["total_messages"] == 5 };
    eventually("the other replica never caught up", Duration::from_secs(10), Duration::from_millis(100), caught_up)
        .await;
    assert_eq!(reader.get("/messages?q=DELIVERY").await.1["total"], 5);
}

#[tokio::test]
#[ignore = "needs a libSQL server: LIBSQL_TEST_URL (make server-test SQLD=path)"]
async fn every_request_is_one_round_trip_to_the_server() {
    // Directly whatever the suite's mode: replicas read locally and sync after writes.
    let server = required_server();
    // A first instance migrates the empty database; the one counted starts on a current schema, as a Lambda
    // cold start does.
    let first = TestApp::start(Setup::new().on(Target::Server(server.clone()))).await;
    assert_eq!(first.deliver(&body("before")).await.0, 200);
    let proxy = proxy_to(&server);
    let app = TestApp::start(Setup::new().same_store_as(&first).server_via(&proxy.url())).await;
    assert_eq!(proxy.take_requests(), 1, "cold start with a current schema");

    let post = |id: &'static str, text: &'static str| {
        let app = &app;
        async move { app.deliver(&message(id, "+15550001", "2025-01-15T10:00:00Z", Some(text))).await.0 }
    };
    assert_eq!((post("m1", "hello world").await, proxy.take_requests()), (200, 1), "first delivery after the start");
    assert_eq!((post("m2", "another hello").await, proxy.take_requests()), (200, 1), "delivery");
    assert_eq!((post("m2", "another hello").await, proxy.take_requests()), (200, 1), "duplicate");
    // A WhatsApp delivery of messages and statuses together commits both in one transaction, one round trip.
    let statuses = json!([{"id": "wamid.out", "status": "sent", "timestamp": "1736935200"},
        {"id": "wamid.out", "status": "read", "timestamp": "1736935300"}]);
    let mut mixed: Value =
        serde_json::from_str(&whatsapp_delivery(json!([whatsapp_text("wamid.in", "hello")]))).unwrap();
    mixed["entry"][0]["changes"][0]["value"]["statuses"] = statuses.clone();
    let only_statuses = json!({"object": "whatsapp_business_account", "entry": [{"changes": [
        {"field": "messages", "value": {"statuses": statuses}}]}]});
    for (what, body) in [("messages and statuses", &mixed), ("statuses", &only_statuses)] {
        let (status, answer) = app.deliver_whatsapp(&body.to_string()).await;
        assert_eq!((status, proxy.take_requests()), (200, 1), "{what}: {answer}");
    }
    for path in [
        "/messages",
        "/messages?limit=1&offset=1",
        "/messages?from=%2B15550001",
        "/messages?since=2025-01-15T09:00:00Z",
        "/messages?q=hello",
        "/messages?q=hello&offset=100",
        "/messages?q=he&from=%2B15550001",
        "/messages?order=arrival",
        "/stats",
        "/health/ready",
        "/messages/m1",
        "/messages/wamid.in",
        "/statuses",
        "/statuses?status=read",
        "/statuses?message_id=wamid.out&status=sent&offset=1",
    ] {
        let (status, answer) = app.get(path).await;
        assert_eq!((status, proxy.take_requests()), (200, 1), "{path}: {answer}");
    }
    assert_eq!((app.get("/messages/unknown").await.0, proxy.take_requests()), (404, 1), "an unknown id");
    // The page after a cursor, in either order and of a search, is one round trip too.
    for first in ["/messages?limit=1", "/messages?limit=1&order=arrival", "/messages?q=hello&limit=1"] {
        let (_, page) = app.get(first).await;
        proxy.take_requests();
        let next = format!("{first}&cursor={}", page["next_cursor"].as_str().unwrap());
        let (status, answer) = app.get(&next).await;
        assert_eq!((status, proxy.take_requests()), (200, 1), "{next}: {answer}");
        assert_eq!(answer["data"].as_array().map(Vec::len), Some(1), "{next}: {answer}");
    }
    let (_, by_status) = app.get("/statuses?status=read").await;
    assert_eq!(by_status["total"], 1);
    assert_eq!(app.get("/messages/wamid.in").await.1["contact"]["wa_id"], "16315551234");
    let (_, search) = app.get("/messages?q=hello&offset=100").await;
    assert_eq!((search["total"].as_u64(), search["data"].as_array().map(Vec::len)), (Some(3), Some(0)));
}

/// However many deliveries arrive at once, one instance sends at most two at a time: the server commits one
/// at a time anyway, and every writer waiting there lengthens its queue.
#[tokio::test]
#[ignore = "needs a libSQL server: LIBSQL_TEST_URL (make server-test SQLD=path)"]
async fn an_instance_sends_at_most_two_deliveries_at_a_time() {
    // Directly whatever the suite's mode: a replica writes through the same code.
    let server = required_server();
    let first = TestApp::start(Setup::new().on(Target::Server(server.clone()))).await;
    let proxy = proxy_to(&server);
    let app = TestApp::start(Setup::new().same_store_as(&first).server_via(&proxy.url())).await;
    let bodies: Vec<String> = (0..64)
        .map(|n| message(&format!("burst-{n}"), "+15550001", "2025-01-15T10:00:00Z", Some("one of a burst")))
        .collect();
    let answers = futures::future::join_all(bodies.iter().map(|body| app.deliver(body))).await;
    assert!(answers.iter().all(|(status, _)| *status == 200), "{answers:?}");
    assert_eq!(app.stored_count().await, 64);
    assert!((1..=2).contains(&proxy.most_watched_at_once()), "{} at once", proxy.most_watched_at_once());
}

#[tokio::test]
#[ignore = "needs a libSQL server: LIBSQL_TEST_URL (make server-test SQLD=path)"]
async fn instances_starting_at_once_on_an_empty_server_all_become_ready() {
    let server = required_server();
    // The first empties the database and keeps the others' turn; the rest start on it as it is, all at once.
    let mut first = Setup::new();
    first.target = Some(common::Target::Server(server.clone()));
    let _holder = TestApp::start(first).await;
    common::empty_server_database(&server).await;
    let starts = (0..64).map(|_| {
        let mut setup = Setup::new();
        setup.target = Some(common::Target::Server(server.clone()));
        setup.shared = true;
        TestApp::start(setup)
    });
    let apps = futures::future::join_all(starts).await;
    for (n, app) in apps.iter().enumerate() {
        app.wait_ready(Duration::from_secs(20)).await;
        assert_eq!(app.deliver(&body(&format!("started-{n}"))).await.0, 200);
    }
    let failed: Vec<_> = apps.iter().flat_map(|app| app.logs()).filter(|l| l["level"] == "ERROR").collect();
    assert!(failed.is_empty(), "{failed:?}");
    let conn = common::connect(&common::Target::Server(server)).await;
    let mut rows = conn.query("PRAGMA user_version", ()).await.unwrap();
    assert_eq!(rows.next().await.unwrap().unwrap().get::<u32>(0).unwrap(), SCHEMA_VERSION);
    assert_eq!(apps[0].get("/stats").await.1["total_messages"], 64);
}

#[tokio::test]
#[ignore = "needs a libSQL server: LIBSQL_TEST_URL (make server-test SQLD=path)"]
async fn a_start_on_an_empty_server_creates_the_schema_in_two_round_trips() {
    // Directly whatever the suite's mode: a replica's first sync is libsql's own.
    let server = required_server();
    // The first empties the database and keeps the others' turn.
    let holder = TestApp::start(Setup::new().on(Target::Server(server.clone()))).await;
    common::empty_server_database(&server).await;
    let proxy = proxy_to(&server);
    let mut setup = Setup::new().on(Target::Server(server.clone())).server_via(&proxy.url());
    setup.shared = true;
    let app = TestApp::start(setup).await;
    assert_eq!(proxy.take_requests(), 2, "the schema's state, then the schema in one transaction");
    assert_eq!(app.deliver(&body("first")).await.0, 200);
    assert_eq!(holder.stored_ids().await, ["first"]);
}

#[tokio::test]
#[ignore = "needs a libSQL server: LIBSQL_TEST_URL (make server-test SQLD=path)"]
async fn on_a_server_deliveries_are_found_at_once_and_indexed_with_no_background_work() {
    let server = required_server();
    let app = TestApp::start(Setup::new()).await;
    // As on a frozen Lambda instance: nothing runs between requests. Each delivery is found by the next
    // search, from the inbox; the one that fills it moves every row into the index.
    let conn = common::connect(&common::Target::Server(server)).await;
    for (n, (text, beta)) in
        [("Alpha beta", 1), ("gamma\0delta", 1), ("beta again", 2), ("", 2)].into_iter().enumerate()
    {
        let id = format!("idx-{n}");
        assert_eq!(app.deliver(&message(&id, "+1", "2025-01-15T10:00:00Z", Some(text))).await.0, 200);
        assert_eq!(app.get("/messages?q=beta").await.1["total"], beta, "after {id}");
    }
    // A redelivery with other text keeps the first write.
    assert_eq!(app.deliver(&message("idx-0", "+1", "2025-01-15T10:00:00Z", Some("zeta"))).await.0, 200);
    assert_eq!(app.get("/messages?q=zeta").await.1["total"], 0);
    assert_eq!(app.get("/messages?q=delta").await.1["total"], 1, "text after a NUL is found");
    for n in 4..300 {
        let text = format!("filler {n} beta");
        assert_eq!(app.deliver(&message(&format!("idx-{n}"), "+1", "2025-01-15T11:00:00Z", Some(&text))).await.0, 200);
    }
    let indexed = "SELECT (SELECT indexed_through FROM text_index_state), (SELECT count(*) FROM messages), \
         (SELECT count(*) FROM inbox)";
    let row = conn.query(indexed, ()).await.unwrap().next().await.unwrap().unwrap();
    assert_eq!((row.get::<i64>(0).unwrap(), row.get::<i64>(1).unwrap(), row.get::<i64>(2).unwrap()), (256, 256, 44));
    let found = "SELECT count(*) FROM messages_text WHERE messages_text MATCH 'elt'";
    let row = conn.query(found, ()).await.unwrap().next().await.unwrap().unwrap();
    assert_eq!(row.get::<i64>(0).unwrap(), 1, "the index holds the text after the NUL");
    assert_eq!(app.get("/messages?q=beta").await.1["total"], 298);
    assert_eq!(app.get("/messages?q=delta").await.1["total"], 1);

    // Rows stored directly (another program) hold the watermark back; readiness notices and a task indexes
    // them.
    for (id, text) in [("old-1", "legacy epsilon"), ("old-2", "legacy eta\0theta")] {
        conn.execute(
            "INSERT INTO messages (message_id, from_msisdn, to_msisdn, ts, text, created_at, ts_key, text_folded) \
             VALUES (?1, '+1', '+2', '2025-01-15T11:00:00Z', ?2, '2025-01-15T11:00:00Z', \
             X'0EDF198C3000000000', ?2)",
            (id, text),
        )
        .await
        .unwrap();
    }
    assert_eq!(app.get("/health/ready").await.0, 200);
    let current = || async {
        let mut rows = conn
            .query("SELECT indexed_through = (SELECT max(rowid) FROM messages) FROM text_index_state", ())
            .await
            .unwrap();
        rows.next().await.unwrap().unwrap().get::<bool>(0).unwrap()
    };
    eventually("the older rows were never indexed", Duration::from_secs(10), Duration::from_millis(50), current).await;
    // A replica reads them once it has synced.
    let found = || async {
        app.get("/messages?q=legacy").await.1["total"] == 2 && app.get("/messages?q=theta").await.1["total"] == 1
    };
    eventually("the older rows are not found", Duration::from_secs(10), Duration::from_millis(50), found).await;
}

/// A fleet as Lambda runs one: eight instances, each sent one delivery at a time for a few seconds, a tenth
/// of them redeliveries of what it was answered for. Every delivery is answered 200, every message is stored
/// exactly once, and the server still commits afterwards. (`make bench-fleet` runs the same for minutes, at
/// 64 instances too, against plain inserts.)
#[tokio::test]
#[ignore = "needs a libSQL server: LIBSQL_TEST_URL (make server-test SQLD=path)"]
async fn a_fleet_of_instances_stores_every_acknowledged_message_once() {
    let server = required_server();
    let first = TestApp::start(Setup::new().on(Target::Server(server.clone()))).await;
    let mut fleet = vec![first];
    let starts = (1..8).map(|_| TestApp::start(Setup::new().same_store_as(&fleet[0])));
    fleet.extend(futures::future::join_all(starts).await);
    let until = Instant::now() + Duration::from_secs(5);
    let instances = fleet.iter().enumerate().map(|(instance, app)| async move {
        let (mut acknowledged, mut failed): (Vec<String>, Vec<_>) = (Vec::new(), Vec::new());
        for n in 0.. {
            if Instant::now() >= until {
                break;
            }
            let id = match n % 10 {
                9 if !acknowledged.is_empty() => acknowledged[n / 2 % acknowledged.len()].clone(),
                _ => format!("fleet-{instance}-{n}"),
            };
            match app.deliver(&message(&id, "+15550001", "2025-01-15T10:00:00Z", Some("in a fleet"))).await {
                (200, _) => acknowledged.push(id),
                answer => failed.push((id, answer)),
            }
        }
        (acknowledged, failed)
    });
    let answers = futures::future::join_all(instances).await;
    let failed: Vec<_> = answers.iter().flat_map(|(_, failed)| failed).collect();
    assert!(failed.is_empty(), "{failed:?}");
    let acknowledged: std::collections::HashSet<&String> = answers.iter().flat_map(|(ids, _)| ids).collect();
    let stored = fleet[0].stored_ids().await;
    let unique: std::collections::HashSet<&String> = stored.iter().collect();
    assert_eq!(unique.len(), stored.len(), "a message was stored twice");
    assert!(acknowledged.iter().all(|id| unique.contains(id)), "an acknowledged message is missing");
    assert_eq!(stored.len(), acknowledged.len(), "stored what no one was answered for");
    assert!(acknowledged.len() > 100, "only {} deliveries in 5 s", acknowledged.len());
    assert_eq!(fleet[7].deliver(&body("after the fleet")).await.0, 200);
}

/// What one instance counted, the next finds: the first search of a new instance (a Lambda cold start) of a
/// term another instance counted counts only the rows past that count, as a warm instance would.
#[tokio::test]
#[ignore = "needs a libSQL server: LIBSQL_TEST_URL (make server-test SQLD=path)"]
async fn a_new_instance_finds_the_totals_others_counted() {
    // Directly whatever the suite's mode: a replica counts on its own copy.
    let server = required_server();
    let first = TestApp::start(Setup::new().on(Target::Server(server.clone()))).await;
    for n in 0..30 {
        let text = if n % 2 == 0 { "a shared word" } else { "something else" };
        assert_eq!(first.deliver(&message(&format!("s{n}"), "+1", "2025-01-15T10:00:00Z", Some(text))).await.0, 200);
    }
    assert_eq!(first.get("/messages?q=shared").await.1["total"], 15, "counted from scratch");
    // The count goes to the server with this instance's next call.
    assert_eq!(first.get("/stats").await.0, 200);
    assert_eq!(first.deliver(&message("s30", "+1", "2025-01-15T10:00:00Z", Some("shared again"))).await.0, 200);

    // A new instance, through a proxy that watches for a total counted past a known one (by rowid).
    let proxy = Proxy::start(&host_and_port(&server), b"NOT INDEXED");
    let second = TestApp::start(Setup::new().same_store_as(&first).server_via(&proxy.url())).await;
    assert_eq!(second.get("/messages?q=shared").await.1["total"], 16);
    assert_eq!(proxy.most_watched_at_once(), 1, "the new instance counted from scratch");
    assert_eq!(second.get("/messages?q=else").await.1["total"], 15, "a term no one counted is counted here");
}

#[tokio::test]
#[ignore = "needs a libSQL server: LIBSQL_TEST_URL (make server-test SQLD=path)"]
async fn transient_server_failures_are_retried_within_the_deadline() {
    // Directly whatever the suite's mode: a replica's own sync does not retry.
    let server = required_server();
    let proxy = proxy_to(&server);
    let app = TestApp::start(Setup::new().on(Target::Server(server.clone())).server_via(&proxy.url())).await;
    for (n, injected) in [1, 2, 3].into_iter().enumerate() {
        proxy.fail_next(injected);
        let id = format!("retried-{n}");
        assert_eq!(app.deliver(&body(&id)).await, (200, json!({"status": "ok"})), "after {injected} failures");
        assert_eq!(proxy.failures_left(), 0, "the failures were not all met");
    }
    // Reads are retried alike.
    proxy.fail_next(2);
    assert_eq!(app.get("/stats").await.1["total_messages"], 3);
    assert_eq!(proxy.failures_left(), 0);
    assert_eq!(app.stored_ids().await, ["retried-0", "retried-1", "retried-2"]);
    let retried = app.wait_for_logs(6, |l| l["msg"] == "libSQL server call failed; retrying").await;
    assert!(retried.iter().all(|l| l["level"] == "WARN"), "{retried:?}");
}
