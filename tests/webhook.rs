//! POST /webhook against the real server: the order of checks, every rejection (status, body, nothing
//! stored), exactly-once storage under concurrency, and secret rotation.

mod common;

use common::{message, raw_http, spawn_app, Setup, StoredRow, TestApp, SECRET};
use futures::future::join_all;
use serde_json::{json, Value};
use webhook_ingest::signature::sign;

const BODY: &str =
    r#"{"message_id":"m1","from":"+919876543210","to":"+14155550100","ts":"2025-01-15T10:00:00Z","text":"Hello"}"#;

#[tokio::test]
async fn valid_delivery_is_stored_once_and_first_write_wins() {
    let app = spawn_app().await;
    assert_eq!(app.deliver(BODY).await, (200, json!({"status": "ok"})));
    assert_eq!(app.deliver(BODY).await, (200, json!({"status": "ok"})));
    // Same id, different content: acknowledged, but the first stored version stays.
    let changed = message("m1", "+1", "2030-01-01T00:00:00Z", Some("changed"));
    assert_eq!(app.deliver(&changed).await, (200, json!({"status": "ok"})));
    assert_eq!(
        app.stored_rows().await,
        [StoredRow {
            message_id: "m1".to_owned(),
            from: "+919876543210".to_owned(),
            to: "+14155550100".to_owned(),
            ts: "2025-01-15T10:00:00Z".to_owned(),
            text: Some("Hello".to_owned())
        }]
    );
}

#[tokio::test]
async fn bad_signatures_are_401_and_store_nothing() {
    let app = spawn_app().await;
    let valid = sign(SECRET, BODY.as_bytes());
    let mut flipped = valid.clone().into_bytes();
    flipped[10] = if flipped[10] == b'a' { b'b' } else { b'a' };
    let cases: Vec<(&str, Option<String>)> = vec![
        ("missing", None),
        ("empty", Some(String::new())),
        ("graders' 123", Some("123".into())),
        ("not hex", Some("zz".repeat(32))),
        ("too short", Some(valid[..63].to_owned())),
        ("too long", Some(format!("{valid}0"))),
        ("one digit off", Some(String::from_utf8(flipped).unwrap())),
        ("other secret", Some(sign("not-the-secret", BODY.as_bytes()))),
        ("sha256= prefix", Some(format!("sha256={valid}"))),
    ];
    for (name, signature) in cases {
        let (status, body) = app.post_webhook(BODY.as_bytes(), signature.as_deref()).await;
        assert_eq!((status, &body), (401, &json!({"detail": "invalid signature"})), "{name}");
    }
    // A signature over the JSON re-serialised differently is not a signature over the bytes sent.
    let spaced = BODY.replace(",", ", ");
    assert_eq!(app.post_webhook(spaced.as_bytes(), Some(&valid)).await.0, 401);
    assert_eq!(app.stored_count().await, 0);

    // Hex is case-insensitive; the exact bytes, whitespace included, are what is signed.
    assert_eq!(app.post_webhook(BODY.as_bytes(), Some(&valid.to_uppercase())).await.0, 200);
    assert_eq!(app.deliver(&spaced).await.0, 200);
}

#[tokio::test]
async fn the_signature_is_checked_before_the_body_is_parsed() {
    let app = spawn_app().await;
    for body in [&b"not json"[..], b"", b"{\"message_id\":1}"] {
        let (status, answer) = app.post_webhook(body, Some("00")).await;
        assert_eq!((status, answer), (401, json!({"detail": "invalid signature"})));
    }
    let log = app.wait_for_log(|l| l["result"] == "invalid_signature").await;
    assert_eq!(log["level"], "ERROR");
    assert!(log.get("message_id").is_none(), "nothing was parsed, so no message_id: {log}");
}

#[tokio::test]
async fn every_validation_failure_is_422_naming_each_field_and_stores_nothing() {
    let app = spawn_app().await;
    let base: Value = serde_json::from_str(BODY).unwrap();
    let with = |key: &str, value: Value| {
        let mut v = base.clone();
        v[key] = value;
        v.to_string()
    };
    let without = |key: &str| {
        let mut v = base.clone();
        v.as_object_mut().unwrap().remove(key);
        v.to_string()
    };
    let cases: Vec<(String, Vec<&str>)> = vec![
        ("".into(), vec!["body"]),
        ("{".into(), vec!["body"]),
        ("[]".into(), vec!["body"]),
        ("[1,2,3]".into(), vec!["body"]),
        ("\"text\"".into(), vec!["body"]),
        ("null".into(), vec!["body"]),
        (format!("{}{}", "[".repeat(5000), "]".repeat(5000)), vec!["body"]),
        (format!("{{\"a\":{}1{}}}", "{\"a\":".repeat(3000), "}".repeat(3000)), vec!["body"]),
        ("{}".into(), vec!["body.message_id", "body.from", "body.to", "body.ts"]),
        (without("message_id"), vec!["body.message_id"]),
        (with("message_id", json!("")), vec!["body.message_id"]),
        (with("message_id", json!(1)), vec!["body.message_id"]),
        (with("message_id", Value::Null), vec!["body.message_id"]),
        (with("from", json!("919876543210")), vec!["body.from"]),
        (with("from", json!("+91 98765")), vec!["body.from"]),
        (with("from", json!("+919876543210\n")), vec!["body.from"]),
        (with("from", json!("+")), vec!["body.from"]),
        (with("from", json!(919876543210u64)), vec!["body.from"]),
        (with("to", json!("+1415555010a")), vec!["body.to"]),
        (with("to", json!(["+1"])), vec!["body.to"]),
        (with("ts", json!("2025-01-15T10:00:00")), vec!["body.ts"]),
        (with("ts", json!("2025-01-15T10:00:00+00:00")), vec!["body.ts"]),
        (with("ts", json!("2025-01-15 10:00:00Z")), vec!["body.ts"]),
        (with("ts", json!("2025-02-30T10:00:00Z")), vec!["body.ts"]),
        (with("ts", json!("2025-01-15T10:00:00.1234567890Z")), vec!["body.ts"]),
        (with("ts", json!(1736935200)), vec!["body.ts"]),
        (with("text", json!("é".repeat(4097))), vec!["body.text"]),
        (with("text", json!(42)), vec!["body.text"]),
        (with("text", json!({"a": 1})), vec!["body.text"]),
        (
            json!({"message_id": "", "from": "x", "to": 1, "ts": "now", "text": false}).to_string(),
            vec!["body.message_id", "body.from", "body.to", "body.ts", "body.text"],
        ),
    ];
    for (body, expected) in &cases {
        let (status, answer) = app.deliver(body).await;
        assert_eq!(status, 422, "{body:.80}: {answer}");
        let detail = answer["detail"].as_array().unwrap_or_else(|| panic!("list-shaped detail: {answer}"));
        let locs: Vec<String> = detail
            .iter()
            .map(|e| {
                assert!(e["msg"].as_str().is_some_and(|m| !m.is_empty()) && e["type"].is_string(), "{e}");
                e["loc"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect::<Vec<_>>().join(".")
            })
            .collect();
        assert_eq!(&locs, expected, "{body:.80}");
    }
    // Non-UTF-8 bytes, signed as they are.
    let mut invalid_utf8 = BODY.as_bytes().to_vec();
    invalid_utf8[BODY.find("Hello").unwrap()] = 0xff;
    let (status, answer) = app.post_webhook(&invalid_utf8, Some(&sign(SECRET, &invalid_utf8))).await;
    assert_eq!((status, answer["detail"][0]["loc"].clone()), (422, json!(["body"])));

    assert_eq!(app.stored_count().await, 0);
    let (_, metrics) = app.get_text("/metrics").await;
    assert!(
        metrics.contains(&format!("webhook_requests_total{{result=\"validation_error\"}} {}", cases.len() + 1)),
        "{metrics}"
    );
}

#[tokio::test]
async fn text_limit_is_4096_characters_not_bytes() {
    let app = spawn_app().await;
    let emoji = "😀".repeat(4096);
    assert_eq!(app.deliver(&message("long", "+1", "2025-01-15T10:00:00Z", Some(&emoji))).await.0, 200);
    let (_, listing) = app.get("/messages").await;
    assert_eq!(listing["data"][0]["text"], emoji);
    let too_long = format!("{emoji}a");
    assert_eq!(app.deliver(&message("longer", "+1", "2025-01-15T10:00:00Z", Some(&too_long))).await.0, 422);
    assert_eq!(app.stored_count().await, 1);
}

#[tokio::test]
async fn oversized_bodies_are_413_before_anything_else() {
    let app = TestApp::start(Setup::new().env("MAX_BODY_BYTES", "1024")).await;
    let big = message("big", "+1", "2025-01-15T10:00:00Z", Some(&"x".repeat(2000)));
    // Even a correctly signed body is refused, and the size check precedes the signature check.
    assert_eq!(app.deliver(&big).await, (413, json!({"detail": "payload too large"})));
    assert_eq!(app.post_webhook(big.as_bytes(), None).await, (413, json!({"detail": "payload too large"})));
    // A chunked body has no declared length; reading stops at the limit.
    let chunk = "y".repeat(1500);
    let request = format!(
        "POST /webhook HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nX-Signature: 00\r\nConnection: close\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    let (status, body) = raw_http(&app.addr, request.as_bytes()).await;
    assert_eq!((status, serde_json::from_str::<Value>(&body).unwrap()), (413, json!({"detail": "payload too large"})));
    // Exactly at the limit is fine.
    let fits = message("fits", "+1", "2025-01-15T10:00:00Z", Some(""));
    let fits = format!("{fits}{}", " ".repeat(1024 - fits.len()));
    assert_eq!(app.deliver(&fits).await.0, 200);
    assert_eq!(app.stored_count().await, 1);
    let (_, metrics) = app.get_text("/metrics").await;
    assert!(metrics.contains("webhook_requests_total{result=\"payload_too_large\"} 3"), "{metrics}");
}

#[tokio::test]
async fn without_a_secret_nothing_is_accepted() {
    let app = TestApp::start(Setup::new().without("WEBHOOK_SECRET").env("WEBHOOK_SECRET_PREVIOUS", SECRET)).await;
    assert_eq!(app.deliver(BODY).await, (503, json!({"detail": "webhook secret not configured"})));
    assert_eq!(app.post_webhook(BODY.as_bytes(), None).await.0, 503);
    assert_eq!(app.stored_count().await, 0);
    let (status, ready) = app.get("/health/ready").await;
    assert_eq!((status, ready), (503, json!({"status": "not_ready", "reason": "webhook secret not configured"})));
    // The size check comes first (SPEC §2, step 1 before step 2): too large is 413 even without a secret.
    let oversized = vec![b'x'; 262_145];
    assert_eq!(app.post_webhook(&oversized, None).await, (413, json!({"detail": "payload too large"})));
    assert_eq!(app.stored_count().await, 0);
}

#[tokio::test]
async fn the_previous_secret_is_accepted_during_rotation() {
    let app = TestApp::start(Setup::new().env("WEBHOOK_SECRET", "new").env("WEBHOOK_SECRET_PREVIOUS", "old")).await;
    let one = message("r1", "+1", "2025-01-15T10:00:00Z", None);
    let two = message("r2", "+1", "2025-01-15T10:00:00Z", None);
    assert_eq!(app.post_webhook(one.as_bytes(), Some(&sign("new", one.as_bytes()))).await.0, 200);
    assert_eq!(app.post_webhook(two.as_bytes(), Some(&sign("old", two.as_bytes()))).await.0, 200);
    assert_eq!(app.post_webhook(two.as_bytes(), Some(&sign("older", two.as_bytes()))).await.0, 401);
    assert_eq!(app.stored_count().await, 2);
}

#[tokio::test]
async fn concurrent_deliveries_of_one_message_store_exactly_one_row() {
    let app = spawn_app().await;
    let body = message("same", "+15550001", "2025-01-15T10:00:00Z", Some("once"));
    let deliveries = (0..48).map(|_| app.deliver(&body));
    let answers = join_all(deliveries).await;
    assert!(answers.iter().all(|a| *a == (200, json!({"status": "ok"}))), "{answers:?}");
    assert_eq!(app.stored_count().await, 1);
    let logs = app.wait_for_logs(48, |l| l["message_id"] == "same").await;
    let results: Vec<&str> = logs.iter().map(|l| l["result"].as_str().unwrap()).collect();
    assert_eq!(results.len(), 48);
    assert_eq!(results.iter().filter(|r| **r == "created").count(), 1, "{results:?}");
    assert_eq!(results.iter().filter(|r| **r == "duplicate").count(), 47);
}

#[tokio::test]
async fn a_burst_of_distinct_and_duplicate_deliveries_gets_the_right_outcome_each() {
    let app = spawn_app().await;
    // 40 distinct ids, each delivered three times, all at once.
    let bodies: Vec<String> =
        (0..120).map(|i| message(&format!("b{}", i % 40), "+1555", "2025-01-15T10:00:00Z", Some("x"))).collect();
    let answers = join_all(bodies.iter().map(|b| app.deliver(b))).await;
    assert!(answers.iter().all(|(status, _)| *status == 200), "{answers:?}");
    assert_eq!(app.stored_count().await, 40);
    let logs = app.wait_for_logs(120, |l| l["path"] == "/webhook").await;
    for i in 0..40 {
        let id = format!("b{i}");
        let mut results: Vec<&str> =
            logs.iter().filter(|l| l["message_id"] == id.as_str()).map(|l| l["result"].as_str().unwrap()).collect();
        results.sort();
        assert_eq!(results, ["created", "duplicate", "duplicate"], "{id}");
    }
}

#[tokio::test]
async fn other_methods_on_webhook_are_405_with_allow() {
    let app = spawn_app().await;
    for method in [
        reqwest::Method::GET,
        reqwest::Method::HEAD,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
        reqwest::Method::PATCH,
    ] {
        let response = app.client.request(method.clone(), app.url("/webhook")).body(BODY).send().await.unwrap();
        assert_eq!(response.status(), 405, "{method}");
        assert_eq!(response.headers()["allow"], "POST");
        assert_eq!(response.headers()["content-type"], "application/json");
        if method != reqwest::Method::HEAD {
            assert_eq!(response.json::<Value>().await.unwrap(), json!({"detail": "method not allowed"}));
        }
    }
    assert_eq!(app.stored_count().await, 0);
}

#[tokio::test]
async fn a_key_named_twice_is_422_naming_it_and_stores_nothing() {
    let app = spawn_app().await;
    // `key` given `first` before its own value.
    let twice =
        |key: &str, first: &str| BODY.replacen(&format!("\"{key}\":"), &format!("\"{key}\":{first},\"{key}\":"), 1);
    for (body, loc) in [
        (twice("message_id", "\"m2\""), json!(["body", "message_id"])),
        (twice("text", "null"), json!(["body", "text"])),
        (BODY.replacen('{', r#"{"extra":1,"extra":2,"#, 1), json!(["body"])),
        // Escapes spell the same key; the second one would win in most parsers.
        (BODY.replacen('{', r#"{"\u006dessage_id":"forged","#, 1), json!(["body", "message_id"])),
    ] {
        let (status, answer) = app.deliver(&body).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(answer["detail"][0]["type"], "duplicate_key", "{body}: {answer}");
        assert_eq!(answer["detail"][0]["loc"], loc, "{body}: {answer}");
    }
    assert_eq!(app.stored_count().await, 0);
}

/// Makes inserts whose id matches `pattern` fail, from a second connection, while the server runs: into
/// `messages`, and into `inbox`, where a libSQL server's deliveries land first.
async fn inject_fault(app: &TestApp, pattern: &str) {
    let conn = app.connect_store().await;
    for table in ["messages", "inbox"] {
        conn.execute(&format!("DROP TRIGGER IF EXISTS injected_fault_{table}"), ()).await.unwrap();
        conn.execute(
            &format!(
                "CREATE TRIGGER injected_fault_{table} BEFORE INSERT ON {table} WHEN NEW.message_id GLOB '{pattern}' \
                 BEGIN SELECT RAISE(ABORT, 'injected fault'); END"
            ),
            (),
        )
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn a_failed_batch_acknowledges_nothing_it_did_not_store() {
    let app = spawn_app().await;
    inject_fault(&app, "poison-*").await;
    // Concurrent deliveries share batches; any batch holding a poisoned message fails as a whole.
    let ids: Vec<String> =
        (0..90).map(|i| if i % 9 == 4 { format!("poison-{i}") } else { format!("good-{i}") }).collect();
    let bodies: Vec<String> = ids.iter().map(|id| message(id, "+1555", "2025-01-15T10:00:00Z", None)).collect();
    let answers = join_all(bodies.iter().map(|b| app.deliver(b))).await;
    let stored: std::collections::HashSet<String> = app.stored_ids().await.into_iter().collect();
    for (id, (status, body)) in ids.iter().zip(&answers) {
        match status {
            200 => assert!(stored.contains(id), "{id} was acknowledged but not stored"),
            500 => {
                assert_eq!(body, &json!({"detail": "internal error"}));
                assert!(!stored.contains(id), "{id} was stored but answered 500");
            }
            other => panic!("{id}: unexpected {other} {body}"),
        }
        if id.starts_with("poison") {
            assert_eq!(*status, 500, "{id}");
        }
    }
    assert_eq!(stored.len(), answers.iter().filter(|(s, _)| *s == 200).count());

    // Every insert failing: every delivery is a 5xx and nothing is stored; clearing the fault recovers.
    inject_fault(&app, "*").await;
    let more: Vec<String> =
        (0..20).map(|i| message(&format!("later-{i}"), "+1555", "2025-01-15T10:00:00Z", None)).collect();
    let answers = join_all(more.iter().map(|b| app.deliver(b))).await;
    assert!(answers.iter().all(|(status, _)| *status == 500), "{answers:?}");
    assert_eq!(app.stored_count().await, stored.len());
    let log = app.wait_for_log(|l| l["status"] == 500 && l["path"] == "/webhook").await;
    assert!(log["error"].as_str().unwrap().contains("injected fault"), "{log}");

    inject_fault(&app, "nothing-matches").await;
    assert_eq!(app.deliver(&more[0]).await.0, 200);
    assert_eq!(app.stored_count().await, stored.len() + 1);
}

/// `GET /messages/{message_id}` answers the body exactly as it was posted: spacing, key order, escapes,
/// unknown keys and an explicit `null` kept; a redelivery with other bytes changes nothing.
#[tokio::test]
async fn a_message_comes_back_by_id_with_its_body_as_received() {
    let app = spawn_app().await;
    let bodies = [
        // What most clients send: the fields in order, compact. Stored once, rebuilt on the way out.
        r#"{"message_id":"plain","from":"+1","to":"+2","ts":"2025-01-15T10:00:00Z","text":"hi"}"#,
        r#"{"message_id":"no-text","from":"+1","to":"+2","ts":"2025-01-15T10:00:00Z"}"#,
        "{\n  \"ts\": \"2025-01-15T10:00:00.5Z\",\n  \"text\": \"caf\\u00e9 \\ud83d\\ude00\",\n  \"message_id\": \"spaced\",\n  \"from\": \"+1\", \"to\": \"+2\", \"extra\": [1.50, 1e3]\n}",
        r#"{"message_id":"null-text","from":"+1","to":"+2","ts":"2025-01-15T10:00:00Z","text":null}"#,
        r#"{"message_id":"a/b c+é","from":"+1","to":"+2","ts":"2025-01-15T10:00:00Z"}"#,
    ];
    for body in bodies {
        assert_eq!(app.post_webhook(body.as_bytes(), Some(&sign(SECRET, body.as_bytes()))).await.0, 200, "{body}");
    }
    for body in bodies {
        let sent: Value = serde_json::from_str(body).unwrap();
        let id = sent["message_id"].as_str().unwrap();
        let path =
            format!("/messages/{}", percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC));
        let (status, text) = app.get_text(&path).await;
        assert_eq!(status, 200, "{id}: {text}");
        assert!(text.ends_with(&format!(",\"raw\":{body}}}")), "{id}: {text}");
        let got: Value = serde_json::from_str(&text).unwrap();
        assert_eq!((got["message_id"].as_str(), got.get("type"), got.get("contact")), (Some(id), None, None));
        assert_eq!(got["text"], if sent["text"].is_string() { sent["text"].clone() } else { Value::Null });
    }
    let redelivered = r#"{"message_id":"plain","from":"+1","to":"+2","ts":"2025-01-15T10:00:00Z","text":"changed"}"#;
    assert_eq!(app.post_webhook(redelivered.as_bytes(), Some(&sign(SECRET, redelivered.as_bytes()))).await.0, 200);
    assert_eq!(app.get("/messages/plain").await.1["raw"]["text"], "hi");
    // Unknown ids, and paths that can name none, are 404 and store nothing.
    for path in ["/messages/unknown", "/messages/%FF", "/messages/plain%2F"] {
        assert_eq!(app.get(path).await, (404, json!({"detail": "not found"})), "{path}");
    }
    assert_eq!(app.stored_count().await, bodies.len());
}
