//! Crash safety under load. SIGKILL in the middle of concurrent ingest (generic messages and multi-message
//! WhatsApp deliveries) loses no acknowledged message, stores no delivery by halves, and leaves a sound
//! database; SIGTERM lets every request already being served finish, then exits 0.
//!
//! `make crash` runs these against the release binary (`WEBHOOK_INGEST_BIN`); `cargo test` against the
//! test build.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{
    connect, integrity_check, message, whatsapp_delivery, whatsapp_signature, Setup, Target, TempDb, TestApp, SECRET,
    WHATSAPP_SECRET,
};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use webhook_ingest::signature::sign;

/// How each delivery the load sent ended, by message id.
#[derive(Default)]
struct Outcomes {
    acknowledged: BTreeSet<String>,
    /// No answer: the connection broke or was refused.
    unanswered: BTreeSet<String>,
    /// Any answer but 200, with its status.
    refused: BTreeMap<String, u16>,
    /// The message ids of each WhatsApp delivery sent, which must be stored all or none.
    deliveries: Vec<Vec<String>>,
}

/// How many messages each WhatsApp delivery of the load carries.
const MESSAGES_PER_DELIVERY: usize = 3;

fn text_of(id: &str) -> String {
    format!("text of {id}")
}

/// `workers` clients delivering distinct ids (and, every fourth request, a repeat of an earlier one) until
/// the server stops answering: each ends with the first delivery that gets no answer. Every fourth worker
/// sends WhatsApp deliveries of [`MESSAGES_PER_DELIVERY`] messages instead of single messages.
async fn ingest(app: &TestApp, workers: usize, round: usize) -> Outcomes {
    let outcomes = Arc::new(Mutex::new(Outcomes::default()));
    let tasks = (0..workers).map(|w| {
        let (client, outcomes) = (reqwest::Client::new(), Arc::clone(&outcomes));
        let (webhook, whatsapp) = (app.url("/webhook"), app.url("/webhook/whatsapp"));
        tokio::spawn(async move {
            for n in 0.. {
                let id = if n % 4 == 3 { format!("r{round}-w{w}-{}", n - 3) } else { format!("r{round}-w{w}-{n}") };
                let sender = 100 + w;
                let (ids, request) = if w % 4 == 0 {
                    let ids: Vec<String> = (0..MESSAGES_PER_DELIVERY).map(|k| format!("{id}-{k}")).collect();
                    let messages = ids.iter().map(|id| {
                        json!({"from": sender.to_string(), "id": id, "timestamp": "1736935200", "type": "text",
                               "text": {"body": text_of(id)}})
                    });
                    let body = whatsapp_delivery(Value::Array(messages.collect()));
                    let signature = whatsapp_signature(WHATSAPP_SECRET, body.as_bytes());
                    (ids, client.post(&whatsapp).header("X-Hub-Signature-256", signature).body(body))
                } else {
                    let body = message(&id, &format!("+{sender}"), "2025-01-15T10:00:00Z", Some(&text_of(&id)));
                    (vec![id], client.post(&webhook).header("X-Signature", sign(SECRET, body.as_bytes())).body(body))
                };
                let answer = request.timeout(Duration::from_secs(10)).send().await;
                let mut outcomes = outcomes.lock().unwrap();
                if ids.len() > 1 {
                    outcomes.deliveries.push(ids.clone());
                }
                match answer.map(|r| r.status().as_u16()) {
                    Ok(200) => outcomes.acknowledged.extend(ids),
                    Ok(status) => outcomes.refused.extend(ids.into_iter().map(|id| (id, status))),
                    Err(_) => {
                        outcomes.unanswered.extend(ids);
                        // The server is gone; there is nothing more to send.
                        break;
                    }
                }
            }
        })
    });
    futures::future::join_all(tasks.collect::<Vec<_>>()).await;
    Arc::try_unwrap(outcomes).ok().unwrap().into_inner().unwrap()
}

/// Every row by id with how many times it is stored, read directly from the file.
async fn stored(path: &Path) -> BTreeMap<String, (u32, Option<String>)> {
    let conn = connect(&Target::File(path.to_owned())).await;
    let mut rows =
        conn.query("SELECT message_id, count(*), max(text) FROM messages GROUP BY message_id", ()).await.unwrap();
    let mut out = BTreeMap::new();
    while let Some(row) = rows.next().await.unwrap() {
        out.insert(row.get::<String>(0).unwrap(), (row.get::<u32>(1).unwrap(), row.get(2).unwrap()));
    }
    out
}

/// Lets the load run until at least `count` deliveries were acknowledged.
async fn run_until_acknowledged(app: &TestApp, count: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, metrics) = app.get_text("/metrics").await;
        let created = metrics
            .lines()
            .find_map(|l| l.strip_prefix("webhook_requests_total{result=\"created\"} "))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        if created as usize >= count {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "the load did not get going");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn sigkill_under_load_loses_no_acknowledged_message() {
    let db = TempDb::new();
    let path = db.path.as_path();
    let mut acknowledged = BTreeSet::new();
    for round in 0..3 {
        let app = TestApp::start(Setup::new().db(path)).await;
        let load = ingest(&app, 16, round);
        let kill = async {
            run_until_acknowledged(&app, 300).await;
            app.signal("KILL");
            app.wait_exit(Duration::from_secs(10)).await;
        };
        let (outcomes, ()) = tokio::join!(load, kill);
        assert!(outcomes.refused.is_empty(), "round {round}: refused {:?}", outcomes.refused);
        acknowledged.extend(outcomes.acknowledged);
        drop(app);

        assert_eq!(integrity_check(path).await, "ok", "round {round}");
        let rows = stored(path).await;
        for id in &acknowledged {
            assert_eq!(rows.get(id), Some(&(1, Some(text_of(id)))), "round {round}: acknowledged {id}");
        }
        // A row the client never heard about may exist (it was committed as the process died), but only
        // once, and only for an id that was sent.
        assert!(rows.values().all(|(count, _)| *count == 1));
        for ids in &outcomes.deliveries {
            let kept = ids.iter().filter(|id| rows.contains_key(*id)).count();
            assert!(kept == 0 || kept == ids.len(), "round {round}: {kept} of the delivery {ids:?} stored");
        }
        let sent = outcomes.deliveries.len();
        assert!(sent >= 10, "round {round}: only {sent} WhatsApp deliveries");

        // The restarted service agrees with the file, aggregates included.
        let again = TestApp::start(Setup::new().db(path)).await;
        assert_eq!(again.get("/stats").await.1["total_messages"], rows.len());
        assert_eq!(again.get("/messages?limit=1").await.1["total"], rows.len());
        let (_, found) = again.get("/messages?q=TEXT%20OF&limit=1").await;
        assert_eq!(found["total"], rows.len(), "every stored text is searchable");
        // That total is now known through a watermark; rows past it are added to it exactly.
        for n in 0..3 {
            let id = format!("after-restart-{round}-{n}");
            let body = format!(
                r#"{{"message_id":"{id}","from":"+15550001111","to":"+2","ts":"2025-01-15T10:00:00Z","text":"{}"}}"#,
                text_of(&id)
            );
            assert_eq!(again.deliver(&body).await.0, 200);
        }
        let (_, found) = again.get("/messages?q=TEXT%20OF&limit=1&offset=2").await;
        assert_eq!(found["total"], rows.len() + 3, "round {round}: the total past the counted watermark");
    }
    assert!(acknowledged.len() >= 900);
}

#[tokio::test]
async fn sigterm_under_load_finishes_in_flight_requests_and_exits_0() {
    let app = TestApp::start(Setup::new().local_file()).await;

    // Requests certainly in flight when the signal arrives: their headers are read, their bodies not yet sent.
    // Each asks to be told when the server wants its body (100 Continue), which says it read the head.
    let mut pending = Vec::new();
    for i in 0..4 {
        let id = format!("in-flight-{i}");
        let body = message(&id, "+1", "2025-01-15T10:00:00Z", Some(&text_of(&id)));
        let mut stream = tokio::net::TcpStream::connect(app.addr.trim_start_matches("http://")).await.unwrap();
        let head = format!(
            "POST /webhook HTTP/1.1\r\nHost: t\r\nX-Signature: {}\r\nContent-Length: {}\r\n\
             Expect: 100-continue\r\n\r\n",
            sign(SECRET, body.as_bytes()),
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut interim = Vec::new();
        while !interim.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            let read = tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut byte)).await;
            assert!(read.is_ok_and(|r| r.is_ok()), "{id}: no 100 Continue: {:?}", String::from_utf8_lossy(&interim));
            interim.push(byte[0]);
        }
        assert!(interim.starts_with(b"HTTP/1.1 100"), "{id}: {:?}", String::from_utf8_lossy(&interim));
        pending.push((id, body, stream));
    }

    let load = ingest(&app, 16, 0);
    let terminate = async {
        run_until_acknowledged(&app, 200).await;
        app.signal("TERM");
        app.wait_for_log(|l| l["msg"].as_str().is_some_and(|m| m.starts_with("shutting down"))).await;
        let mut answers = Vec::new();
        for (id, body, mut stream) in pending.drain(..) {
            stream.write_all(body.as_bytes()).await.unwrap();
            let mut answer = String::new();
            tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut answer)).await.ok();
            answers.push((id, answer));
        }
        let status = app.wait_exit(Duration::from_secs(30)).await;
        (answers, status)
    };
    let (outcomes, (answers, status)) = tokio::join!(load, terminate);

    assert_eq!(status.code(), Some(0));
    for (id, answer) in &answers {
        assert!(answer.starts_with("HTTP/1.1 200"), "{id} was cut off: {answer:?}");
    }
    assert!(outcomes.refused.is_empty(), "refused {:?}", outcomes.refused);
    let rows = stored(app.db_path()).await;
    for id in outcomes.acknowledged.iter().chain(answers.iter().map(|(id, _)| id)) {
        assert_eq!(rows.get(id), Some(&(1, Some(text_of(id)))), "acknowledged {id}");
    }
    // A request that got no answer was never taken in: had the server read it, it would have finished it.
    for id in outcomes.unanswered.difference(&outcomes.acknowledged) {
        assert!(!rows.contains_key(id), "{id} was stored but its client got no answer");
    }
    assert_eq!(integrity_check(app.db_path()).await, "ok");
}
