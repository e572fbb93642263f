//! `/webhook/whatsapp` against the real server: Meta's subscription handshake, signed Cloud API deliveries
//! of every shape stored exactly once (also under concurrent redelivery), every rejection with nothing
//! stored, and what the logs, metrics, listings, search and stats make of these messages.

mod common;

use common::{
    whatsapp_delivery, whatsapp_signature, whatsapp_text, Setup, StoredRow, TestApp, VERIFY_TOKEN, WHATSAPP_SECRET,
};
use futures::future::join_all;
use serde_json::{json, Value};

async fn spawn_app() -> TestApp {
    common::spawn_app().await
}

fn stored(id: &str, text: Option<&str>) -> StoredRow {
    StoredRow {
        message_id: id.to_owned(),
        from: "+16315551234".to_owned(),
        to: "+15550001234".to_owned(),
        ts: "2025-01-15T10:00:00Z".to_owned(),
        text: text.map(str::to_owned),
    }
}

fn counts(created: u64, duplicate: u64, skipped: u64) -> Value {
    json!({"status": "ok", "created": created, "duplicate": duplicate, "skipped": skipped})
}

/// A Cloud API message of `kind` from +1 631 555 1234, with `part` as its type's object.
fn typed(id: &str, kind: &str, part: Value) -> Value {
    json!({"from": "16315551234", "id": id, "timestamp": "1736935200", "type": kind, kind: part})
}

async fn message_types(app: &TestApp) -> Vec<(String, Option<String>)> {
    let conn = app.connect_store().await;
    let stored = "SELECT message_id, message_type FROM messages \
         UNION ALL SELECT message_id, message_type FROM inbox ORDER BY message_id";
    let mut rows = conn.query(stored, ()).await.unwrap();
    let mut out = Vec::new();
    while let Some(row) = rows.next().await.unwrap() {
        out.push((row.get(0).unwrap(), row.get(1).unwrap()));
    }
    out
}

#[tokio::test]
async fn the_handshake_echoes_exactly_the_challenge_for_the_verify_token() {
    let app = spawn_app().await;
    let query = |mode: &str, token: &str, challenge: &str| {
        format!("/webhook/whatsapp?hub.mode={mode}&hub.verify_token={token}&hub.challenge={challenge}")
    };
    let response = app.client.get(app.url(&query("subscribe", VERIFY_TOKEN, "1158201444"))).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(response.text().await.unwrap(), "1158201444");
    // Percent-encoded parameters are decoded as Meta encodes them.
    let encoded = format!(
        "/webhook/whatsapp?hub.mode=subscribe&hub.verify_token={}&hub.challenge=a.b-c_9",
        "test%2Dverify%2Dtoken"
    );
    assert_eq!(app.get_text(&encoded).await, (200, "a.b-c_9".to_owned()));

    let refused = json!({"detail": "verification failed"});
    for path in [
        query("subscribe", "wrong-token", "1"),
        query("subscribe", &VERIFY_TOKEN[..VERIFY_TOKEN.len() - 1], "1"),
        query("unsubscribe", VERIFY_TOKEN, "1"),
        format!("/webhook/whatsapp?hub.verify_token={VERIFY_TOKEN}&hub.challenge=1"),
        "/webhook/whatsapp?hub.mode=subscribe&hub.challenge=1".to_owned(),
        "/webhook/whatsapp".to_owned(),
    ] {
        assert_eq!(app.get(&path).await, (403, refused.clone()), "{path}");
    }
    let bad_challenge = json!({"detail": "hub.challenge must be 1 to 128 letters, digits, '-', '_' or '.'"});
    for challenge in ["%3Cscript%3Ealert(1)%3C%2Fscript%3E", "", "a%0D%0ASet-Cookie:%20x=1", &"9".repeat(129)] {
        assert_eq!(app.get(&query("subscribe", VERIFY_TOKEN, challenge)).await, (400, bad_challenge.clone()));
    }
    assert_eq!(app.get(&format!("/webhook/whatsapp?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}")).await.0, 400);

    let head = app.client.head(app.url(&query("subscribe", VERIFY_TOKEN, "42"))).send().await.unwrap();
    assert_eq!((head.status().as_u16(), head.headers()["content-length"].to_str().unwrap()), (200, "2"));
    assert_eq!(app.stored_count().await, 0);
}

#[tokio::test]
async fn without_a_verify_token_or_an_app_secret_the_route_is_503() {
    let app = TestApp::start(Setup::new().without("WHATSAPP_VERIFY_TOKEN").without("WHATSAPP_APP_SECRET")).await;
    let path = format!("/webhook/whatsapp?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1");
    assert_eq!(app.get(&path).await, (503, json!({"detail": "whatsapp verify token not configured"})));
    let body = whatsapp_delivery(json!([whatsapp_text("wamid.1", "Hello")]));
    assert_eq!(app.deliver_whatsapp(&body).await, (503, json!({"detail": "whatsapp app secret not configured"})));
    // The generic webhook and readiness do not depend on WhatsApp.
    assert_eq!(app.get("/health/ready").await.0, 200);
    assert_eq!(app.stored_count().await, 0);
}

#[tokio::test]
async fn every_kind_of_message_is_stored_with_its_text_and_type() {
    let app = spawn_app().await;
    let messages = json!([
        whatsapp_text("wamid.text", "Hello from WhatsApp"),
        typed("wamid.image", "image", json!({"id": "m1", "mime_type": "image/jpeg", "caption": "A Cat"})),
        typed("wamid.video", "video", json!({"id": "m2", "mime_type": "video/mp4"})),
        typed("wamid.doc", "document", json!({"id": "m3", "filename": "invoice.pdf", "caption": "Invoice"})),
        typed("wamid.react", "reaction", json!({"message_id": "wamid.text", "emoji": "👍"})),
        typed("wamid.sticker", "sticker", json!({"id": "m4", "mime_type": "image/webp"})),
    ]);
    assert_eq!(app.deliver_whatsapp(&whatsapp_delivery(messages)).await, (200, counts(6, 0, 0)));
    assert_eq!(
        app.stored_rows().await,
        [
            stored("wamid.doc", Some("Invoice")),
            stored("wamid.image", Some("A Cat")),
            stored("wamid.react", None),
            stored("wamid.sticker", None),
            stored("wamid.text", Some("Hello from WhatsApp")),
            stored("wamid.video", None),
        ]
    );
    let types: Vec<(String, Option<String>)> = message_types(&app).await;
    let kinds: Vec<&str> = types.iter().map(|(_, kind)| kind.as_deref().unwrap()).collect();
    assert_eq!(kinds, ["document", "image", "reaction", "sticker", "text", "video"]);

    // Listings, search and stats cover them like any message.
    let (_, page) = app.get("/messages?q=cat").await;
    assert_eq!(page["total"], 1);
    assert_eq!(
        page["data"][0],
        json!({"message_id": "wamid.image", "from": "+16315551234", "to": "+15550001234", "ts": "2025-01-15T10:00:00Z", "text": "A Cat"})
    );
    assert_eq!(app.get("/messages?from=%2B16315551234").await.1["total"], 6);
    let (_, stats) = app.get("/stats").await;
    assert_eq!(stats["total_messages"], 6);
    assert_eq!(stats["messages_per_sender"], json!([{"from": "+16315551234", "count": 6}]));
    assert_eq!(stats["first_message_ts"], "2025-01-15T10:00:00Z");
}

#[tokio::test]
async fn several_entries_changes_and_repeats_are_each_stored_once_and_statuses_store_nothing() {
    let app = spawn_app().await;
    let change = |messages: Value| {
        json!({"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "+1 (555) 000-1234", "phone_number_id": "123456"},
            "messages": messages,
        }})
    };
    let statuses = json!({"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001234", "phone_number_id": "123456"},
        "statuses": [{"id": "wamid.out", "status": "read", "timestamp": "1736935300", "recipient_id": "16315551234"}],
    }});
    let body = json!({"object": "whatsapp_business_account", "entry": [
        {"id": "1", "changes": [change(json!([whatsapp_text("a", "one"), whatsapp_text("b", "two")])), statuses.clone()]},
        {"id": "2", "changes": [
            {"field": "account_update", "value": {"event": "VERIFIED_ACCOUNT"}},
            change(json!([whatsapp_text("c", "three"), whatsapp_text("a", "one, repeated with other text")])),
        ]},
    ]})
    .to_string();
    assert_eq!(app.deliver_whatsapp(&body).await, (200, counts(3, 1, 0)));
    assert_eq!(app.deliver_whatsapp(&body).await, (200, counts(0, 4, 0)));
    assert_eq!(
        app.stored_rows().await,
        [stored("a", Some("one")), stored("b", Some("two")), stored("c", Some("three"))]
    );

    let only_statuses =
        json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [statuses]}]}).to_string();
    assert_eq!(app.deliver_whatsapp(&only_statuses).await, (200, counts(0, 0, 0)));
    let empty = r#"{"object":"whatsapp_business_account","entry":[]}"#;
    assert_eq!(app.deliver_whatsapp(empty).await, (200, counts(0, 0, 0)));
    assert_eq!(app.stored_count().await, 3);

    let lines = app.wait_for_logs(4, |l| l["path"] == "/webhook/whatsapp").await;
    let summary: Vec<(&str, u64, u64, u64)> = lines
        .iter()
        .map(|l| {
            let n = |k: &str| l[k].as_u64().unwrap();
            (l["result"].as_str().unwrap(), n("created"), n("duplicate"), n("skipped"))
        })
        .collect();
    assert_eq!(
        summary,
        [("created", 3, 1, 0), ("duplicate", 0, 4, 0), ("no_messages", 0, 0, 0), ("no_messages", 0, 0, 0)]
    );
    assert!(lines.iter().all(|l| l["level"] == "INFO" && l["status"] == 200), "{lines:?}");
}

#[tokio::test]
async fn unmappable_messages_are_skipped_and_logged_and_the_rest_stored() {
    let app = spawn_app().await;
    let mut bad_sender = whatsapp_text("wamid.bad-sender", "x");
    bad_sender["from"] = json!("+16315551234");
    let mut bad_time = whatsapp_text("wamid.bad-time", "x");
    bad_time["timestamp"] = json!("99999999999999999999");
    let no_id = json!({"from": "16315551234", "timestamp": "1736935200", "type": "text", "text": {"body": "x"}});
    let body = whatsapp_delivery(json!([bad_sender, whatsapp_text("wamid.good", "kept"), bad_time, no_id]));
    assert_eq!(app.deliver_whatsapp(&body).await, (200, counts(1, 0, 3)));
    assert_eq!(app.stored_rows().await, [stored("wamid.good", Some("kept"))]);

    let line = app.wait_for_log(|l| l["path"] == "/webhook/whatsapp").await;
    assert_eq!(line["level"], "WARN", "{line}");
    assert_eq!(line["result"], "created");
    assert_eq!(
        line["skips"],
        json!([
            {"message_id": "wamid.bad-sender", "reason": "from is not a phone number of digits"},
            {"message_id": "wamid.bad-time", "reason": "timestamp is not a Unix time in seconds before year 10000"},
            {"reason": "no message id"},
        ])
    );
    // Only skipped messages: nothing to store, still 200 (a retry could not fix them).
    let mut only_bad = whatsapp_text("wamid.only-bad", "x");
    only_bad["from"] = json!("sender");
    assert_eq!(app.deliver_whatsapp(&whatsapp_delivery(json!([only_bad]))).await, (200, counts(0, 0, 1)));
    assert_eq!(app.stored_count().await, 1);
}

/// Thousands of junk messages in one signed delivery: every one counted, the first ten's reasons listed, and
/// the log line stays short.
#[tokio::test]
async fn a_delivery_of_thousands_of_junk_messages_logs_one_short_line() {
    let app = spawn_app().await;
    let junk: Vec<serde_json::Value> = (0..20_000).map(|_| json!({})).collect();
    let body = whatsapp_delivery(json!(junk));
    assert!(body.len() < 262_144, "within the body limit: {} bytes", body.len());
    assert_eq!(app.deliver_whatsapp(&body).await, (200, counts(0, 0, 20_000)));
    let line = app.wait_for_log(|l| l["path"] == "/webhook/whatsapp").await;
    assert_eq!(line["skipped"], 20_000);
    assert_eq!(line["skips"].as_array().map(Vec::len), Some(10), "{line}");
    assert!(line.to_string().len() < 2_000, "{} bytes", line.to_string().len());
}

#[tokio::test]
async fn signatures_are_checked_over_the_raw_bytes_with_the_sha256_prefix() {
    let app = spawn_app().await;
    let body = whatsapp_delivery(json!([whatsapp_text("wamid.sig", "signed")]));
    let hex = common::whatsapp_signature(WHATSAPP_SECRET, body.as_bytes()).trim_start_matches("sha256=").to_owned();
    let refused = json!({"detail": "invalid signature"});
    for (name, signature) in [
        ("missing", None),
        ("empty", Some(String::new())),
        ("no sha256= prefix", Some(hex.clone())),
        ("upper-case prefix", Some(format!("SHA256={hex}"))),
        ("sha1 prefix", Some(format!("sha1={hex}"))),
        ("wrong secret", Some(whatsapp_signature("not-the-app-secret", body.as_bytes()))),
        ("the generic webhook's secret", Some(whatsapp_signature(common::SECRET, body.as_bytes()))),
        ("truncated", Some(format!("sha256={}", &hex[..63]))),
    ] {
        assert_eq!(app.post_whatsapp(body.as_bytes(), signature.as_deref()).await, (401, refused.clone()), "{name}");
    }
    // The exact bytes are signed: the same JSON spaced differently is not.
    let spaced = body.replace(',', ", ");
    let signature = whatsapp_signature(WHATSAPP_SECRET, body.as_bytes());
    assert_eq!(app.post_whatsapp(spaced.as_bytes(), Some(&signature)).await.0, 401);
    assert_eq!(app.stored_count().await, 0);
    let line = app.wait_for_log(|l| l["path"] == "/webhook/whatsapp").await;
    assert_eq!((line["level"].as_str(), line["result"].as_str()), (Some("ERROR"), Some("invalid_signature")));

    // Upper-case hex is the same signature.
    let upper = format!("sha256={}", hex.to_uppercase());
    assert_eq!(app.post_whatsapp(body.as_bytes(), Some(&upper)).await, (200, counts(1, 0, 0)));
    assert_eq!(app.stored_ids().await, ["wamid.sig"]);
}

#[tokio::test]
async fn the_previous_app_secret_is_accepted_during_a_rotation() {
    let app = TestApp::start(
        Setup::new().env("WHATSAPP_APP_SECRET", "new-app-secret").env("WHATSAPP_APP_SECRET_PREVIOUS", WHATSAPP_SECRET),
    )
    .await;
    let old = whatsapp_delivery(json!([whatsapp_text("wamid.old", "old key")]));
    assert_eq!(app.deliver_whatsapp(&old).await, (200, counts(1, 0, 0)));
    let new = whatsapp_delivery(json!([whatsapp_text("wamid.new", "new key")]));
    let signature = whatsapp_signature("new-app-secret", new.as_bytes());
    assert_eq!(app.post_whatsapp(new.as_bytes(), Some(&signature)).await, (200, counts(1, 0, 0)));
    let other = whatsapp_signature("retired-long-ago", new.as_bytes());
    assert_eq!(app.post_whatsapp(new.as_bytes(), Some(&other)).await.0, 401);
    assert_eq!(app.stored_ids().await, ["wamid.new", "wamid.old"]);
}

#[tokio::test]
async fn signed_bodies_that_are_no_delivery_are_422_and_store_nothing() {
    let app = spawn_app().await;
    for (body, loc, kind) in [
        ("not json", json!(["body"]), "json_invalid"),
        ("[]", json!(["body"]), "model_attributes_type"),
        (
            r#"{"message_id":"m1","from":"+1","to":"+2","ts":"2025-01-15T10:00:00Z"}"#,
            json!(["body", "object"]),
            "missing",
        ),
        (r#"{"object":"page","entry":[]}"#, json!(["body", "object"]), "literal_error"),
        (r#"{"object":"whatsapp_business_account"}"#, json!(["body", "entry"]), "missing"),
        (
            r#"{"object":"whatsapp_business_account","entry":[{"changes":{}}]}"#,
            json!(["body", "entry", "changes"]),
            "list_type",
        ),
        (
            r#"{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"messages":{"id":"x"}}}]}]}"#,
            json!(["body", "entry", "changes", "value", "messages"]),
            "list_type",
        ),
        (r#"{"object":"whatsapp_business_account","entry":[],"entry":[]}"#, json!(["body", "entry"]), "duplicate_key"),
    ] {
        let signature = whatsapp_signature(WHATSAPP_SECRET, body.as_bytes());
        let (status, answer) = app.post_whatsapp(body.as_bytes(), Some(&signature)).await;
        assert_eq!(status, 422, "{body}: {answer}");
        assert_eq!((&answer["detail"][0]["loc"], answer["detail"][0]["type"].as_str()), (&loc, Some(kind)), "{body}");
    }
    assert_eq!(app.stored_count().await, 0);
    let line = app.wait_for_log(|l| l["path"] == "/webhook/whatsapp").await;
    assert_eq!(line["result"], "validation_error");
}

#[tokio::test]
async fn size_is_checked_before_the_secret() {
    let app = TestApp::start(Setup::new().without("WHATSAPP_APP_SECRET").env("MAX_BODY_BYTES", "64")).await;
    let body = whatsapp_delivery(json!([whatsapp_text("wamid.big", "too big")]));
    assert_eq!(app.deliver_whatsapp(&body).await, (413, json!({"detail": "payload too large"})));
    assert_eq!(app.stored_count().await, 0);
}

#[tokio::test]
async fn concurrent_redeliveries_store_each_message_once() {
    let app = spawn_app().await;
    let ids: Vec<String> = (0..10).map(|n| format!("wamid.burst-{n}")).collect();
    let body = whatsapp_delivery(Value::Array(ids.iter().map(|id| whatsapp_text(id, "burst")).collect()));
    let answers = join_all((0..32).map(|_| app.deliver_whatsapp(&body))).await;
    let mut created = 0;
    for (status, answer) in answers {
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["created"].as_u64().unwrap() + answer["duplicate"].as_u64().unwrap(), 10, "{answer}");
        created += answer["created"].as_u64().unwrap();
    }
    assert_eq!(created, 10);
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(app.stored_ids().await, expected);
    assert_eq!(app.get("/stats").await.1["total_messages"], 10);
}

#[tokio::test]
async fn metrics_count_requests_by_result_and_messages_by_outcome() {
    let app = spawn_app().await;
    let (_, before) = app.get_text("/metrics").await;
    for outcome in ["created", "duplicate", "skipped"] {
        assert!(before.contains(&format!("whatsapp_messages_total{{outcome=\"{outcome}\"}} 0")), "{before}");
    }
    let mut skipped = whatsapp_text("wamid.skip", "x");
    skipped["from"] = json!("nobody");
    let body = whatsapp_delivery(json!([whatsapp_text("wamid.m1", "a"), whatsapp_text("wamid.m1", "a"), skipped]));
    assert_eq!(app.deliver_whatsapp(&body).await, (200, counts(1, 1, 1)));
    assert_eq!(app.deliver_whatsapp(r#"{"object":"whatsapp_business_account","entry":[]}"#).await.0, 200);
    app.get_text(&format!("/webhook/whatsapp?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1"))
        .await;
    let (_, metrics) = app.get_text("/metrics").await;
    for line in [
        "whatsapp_messages_total{outcome=\"created\"} 1",
        "whatsapp_messages_total{outcome=\"duplicate\"} 1",
        "whatsapp_messages_total{outcome=\"skipped\"} 1",
        "webhook_requests_total{result=\"created\"} 1",
        "webhook_requests_total{result=\"no_messages\"} 1",
        "http_requests_total{method=\"POST\",path=\"/webhook/whatsapp\",status=\"200\"} 2",
        "http_requests_total{method=\"GET\",path=\"/webhook/whatsapp\",status=\"200\"} 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "missing {line}:\n{metrics}");
    }
}

#[tokio::test]
async fn the_readmes_sample_delivery_shows_up_in_the_listing() {
    let app = spawn_app().await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/send-whatsapp.sh");
    let sent = tokio::process::Command::new(script)
        .env("WHATSAPP_APP_SECRET", WHATSAPP_SECRET)
        .env("URL", &app.addr)
        .output()
        .await
        .expect("run scripts/send-whatsapp.sh (it needs curl and openssl)");
    let printed = String::from_utf8_lossy(&sent.stdout);
    assert!(
        sent.status.success() && printed.contains("HTTP 200"),
        "{printed} {}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let (_, page) = app.get("/messages?q=send-whatsapp").await;
    assert_eq!(page["total"], 1, "{page}");
    assert_eq!(page["data"][0]["from"], "+16315551234");
    assert_eq!(page["data"][0]["text"], "Hello from scripts/send-whatsapp.sh");
}
