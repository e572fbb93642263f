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

/// The answer to a delivery of messages only.
fn counts(created: u64, duplicate: u64, skipped: u64) -> Value {
    with_statuses([created, duplicate, skipped], [0, 0, 0])
}

/// The answer to a delivery: how many messages, and how many statuses, were created, duplicates, skipped.
fn with_statuses(messages: [u64; 3], statuses: [u64; 3]) -> Value {
    let [created, duplicate, skipped] = messages;
    let [s_created, s_duplicate, s_skipped] = statuses;
    json!({"status": "ok", "created": created, "duplicate": duplicate, "skipped": skipped,
        "statuses": {"created": s_created, "duplicate": s_duplicate, "skipped": s_skipped}})
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
async fn several_entries_changes_and_repeats_are_each_stored_once() {
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
    assert_eq!(app.deliver_whatsapp(&body).await, (200, with_statuses([3, 1, 0], [1, 0, 0])));
    assert_eq!(app.deliver_whatsapp(&body).await, (200, with_statuses([0, 4, 0], [0, 1, 0])));
    assert_eq!(
        app.stored_rows().await,
        [stored("a", Some("one")), stored("b", Some("two")), stored("c", Some("three"))]
    );

    let only_statuses =
        json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [statuses]}]}).to_string();
    assert_eq!(app.deliver_whatsapp(&only_statuses).await, (200, with_statuses([0, 0, 0], [0, 1, 0])));
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
        [("created", 3, 1, 0), ("duplicate", 0, 4, 0), ("duplicate", 0, 0, 0), ("no_messages", 0, 0, 0)]
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
    let (_, statuses) = app.get("/statuses").await;
    let kept: Vec<&str> = statuses["data"].as_array().unwrap().iter().map(|s| s["status"].as_str().unwrap()).collect();
    assert_eq!(kept, ["sent", "delivered"], "{statuses}");
}

/// A change's value with the business number's metadata, the sender's contact, `messages` and `statuses`.
fn delivery_with(messages: Value, statuses: Value) -> String {
    json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [
        {"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550001234", "phone_number_id": "123456"},
            "contacts": [{"profile": {"name": "Kerry Fisher"}, "wa_id": "16315551234"}],
            "messages": messages,
            "statuses": statuses,
        }}
    ]}]})
    .to_string()
}

/// A status of the business's outgoing message `id`, at `seconds` past 2025-01-15T10:00:00Z.
fn status(id: &str, status: &str, seconds: u64) -> Value {
    json!({"id": id, "status": status, "timestamp": (1_736_935_200 + seconds).to_string(), "recipient_id": "16315551234"})
}

/// The path of the message `id`, percent-encoded.
fn by_id(id: &str) -> String {
    format!("/messages/{}", percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC))
}

#[tokio::test]
async fn every_message_type_meta_documents_comes_back_by_id_exactly_as_received() {
    let app = spawn_app().await;
    let location =
        json!({"latitude": 37.483307, "longitude": 122.148981, "name": "Pablo Morales", "address": "1 Hacker Way"});
    let contacts = json!([{"name": {"formatted_name": "Ann", "first_name": "Ann"}, "phones": [{"phone": "+1 555 0100", "wa_id": "15550100", "type": "CELL"}]}]);
    let mut reply = whatsapp_text("wamid.reply", "Replying");
    reply["context"] = json!({"from": "15550001234", "id": "wamid.original"});
    let messages = json!([
        whatsapp_text("wamid.text", "Héllo"),
        typed(
            "wamid.image",
            "image",
            json!({"id": "media-1", "mime_type": "image/jpeg", "sha256": "abc", "caption": "A cat"})
        ),
        typed("wamid.video", "video", json!({"id": "media-2", "mime_type": "video/mp4"})),
        typed("wamid.audio", "audio", json!({"id": "media-3", "mime_type": "audio/ogg; codecs=opus", "voice": true})),
        typed(
            "wamid.document",
            "document",
            json!({"id": "media-4", "filename": "a.pdf", "mime_type": "application/pdf", "caption": "Invoice"})
        ),
        typed("wamid.sticker", "sticker", json!({"id": "media-5", "mime_type": "image/webp", "animated": false})),
        typed("wamid.location", "location", location),
        typed("wamid.contacts", "contacts", contacts),
        typed(
            "wamid.button-reply",
            "interactive",
            json!({"type": "button_reply", "button_reply": {"id": "yes", "title": "Yes"}})
        ),
        typed(
            "wamid.list-reply",
            "interactive",
            json!({"type": "list_reply", "list_reply": {"id": "row-1", "title": "Row", "description": "One"}})
        ),
        typed("wamid.button", "button", json!({"payload": "STOP", "text": "Stop promotions"})),
        typed("wamid.reaction", "reaction", json!({"message_id": "wamid.text", "emoji": "👍"})),
        json!({"from": "16315551234", "id": "wamid.unsupported", "timestamp": "1736935200", "type": "unsupported",
            "errors": [{"code": 131051, "title": "Message type unknown"}]}),
        reply,
    ]);
    // Sent with spacing and escapes a re-serialization would not keep.
    let as_sent = |json: String| json.replace("\"from\":", "\"from\" : ").replace('é', "\\u00e9");
    let body = as_sent(whatsapp_delivery(messages.clone()));
    assert_eq!(app.deliver_whatsapp(&body).await, (200, counts(14, 0, 0)));
    for sent in messages.as_array().unwrap() {
        let id = sent["id"].as_str().unwrap();
        let (status, text) = app.get_text(&by_id(id)).await;
        assert_eq!(status, 200, "{id}: {text}");
        let got: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(got["raw"], *sent, "{id}");
        assert_eq!(got["message_id"], id);
        assert_eq!(got["type"], sent["type"], "{id}");
        assert_eq!(got["contact"], json!({"profile": {"name": "Kerry Fisher"}, "wa_id": "16315551234"}));
        assert_eq!(got["metadata"], json!({"display_phone_number": "15550001234", "phone_number_id": "123456"}));
        // The bytes as sent, not a value written again.
        let bytes = as_sent(sent.to_string());
        assert!(body.contains(&bytes) && text.contains(&format!("\"raw\":{bytes}")), "{id}: {text}");
    }
    let (_, image) = app.get(&by_id("wamid.image")).await;
    assert_eq!(
        (image["from"].as_str(), image["to"].as_str(), image["ts"].as_str(), image["text"].as_str()),
        (Some("+16315551234"), Some("+15550001234"), Some("2025-01-15T10:00:00Z"), Some("A cat"))
    );
}

#[tokio::test]
async fn a_redelivery_never_changes_what_was_stored_first() {
    let app = spawn_app().await;
    let first = whatsapp_text("wamid.once", "first words");
    let mut second = whatsapp_text("wamid.once", "other words");
    second["extra"] = json!(true);
    assert_eq!(app.deliver_whatsapp(&whatsapp_delivery(json!([first.clone()]))).await, (200, counts(1, 0, 0)));
    assert_eq!(app.deliver_whatsapp(&whatsapp_delivery(json!([second]))).await, (200, counts(0, 1, 0)));
    let (_, got) = app.get(&by_id("wamid.once")).await;
    assert_eq!((got["raw"].clone(), got["text"].clone()), (first, json!("first words")));
}

#[tokio::test]
async fn statuses_are_stored_once_each_and_listed_by_message_and_status() {
    let app = spawn_app().await;
    let failed = json!({"id": "wamid.out2", "status": "failed", "timestamp": "1736935300", "recipient_id": "16315551234",
        "errors": [{"code": 131026, "title": "Message undeliverable", "error_data": {"details": "Receiver is incapable"}}]});
    let priced = json!({"id": "wamid.out1", "status": "sent", "timestamp": "1736935210", "recipient_id": "16315551234",
        "conversation": {"id": "conv-1", "origin": {"type": "service"}},
        "pricing": {"billable": true, "pricing_model": "CBP", "category": "service"}});
    // A delivery mixing a message and statuses, one of them for an id never seen as a message.
    let mixed = delivery_with(
        json!([whatsapp_text("wamid.in", "Thanks!")]),
        json!([priced, status("wamid.out1", "delivered", 20)]),
    );
    assert_eq!(app.deliver_whatsapp(&mixed).await, (200, with_statuses([1, 0, 0], [2, 0, 0])));
    let later = delivery_with(json!([]), json!([status("wamid.out1", "read", 30), failed.clone()]));
    assert_eq!(app.deliver_whatsapp(&later).await, (200, with_statuses([0, 0, 0], [2, 0, 0])));
    // Meta redelivers: nothing new, and a status repeated within one delivery counts once.
    let again = delivery_with(json!([]), json!([status("wamid.out1", "read", 30), status("wamid.out1", "read", 30)]));
    assert_eq!(app.deliver_whatsapp(&again).await, (200, with_statuses([0, 0, 0], [0, 2, 0])));
    assert_eq!(app.deliver_whatsapp(&mixed).await, (200, with_statuses([0, 1, 0], [0, 2, 0])));

    let (status_code, all) = app.get("/statuses").await;
    assert_eq!(status_code, 200);
    let order: Vec<(&str, &str, &str)> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["message_id"].as_str().unwrap(), s["status"].as_str().unwrap(), s["ts"].as_str().unwrap()))
        .collect();
    assert_eq!(
        order,
        [
            ("wamid.out1", "sent", "2025-01-15T10:00:10Z"),
            ("wamid.out1", "delivered", "2025-01-15T10:00:20Z"),
            ("wamid.out1", "read", "2025-01-15T10:00:30Z"),
            ("wamid.out2", "failed", "2025-01-15T10:01:40Z"),
        ]
    );
    assert_eq!((all["total"].clone(), all["limit"].clone(), all["offset"].clone()), (json!(4), json!(50), json!(0)));
    let (_, failures) = app.get("/statuses?status=failed").await;
    assert_eq!(
        failures,
        json!({"data": [{"message_id": "wamid.out2", "status": "failed", "ts": "2025-01-15T10:01:40Z",
            "recipient_id": "16315551234", "errors": failed["errors"], "raw": failed}],
            "total": 1, "limit": 50, "offset": 0})
    );
    let (_, sent) = app.get("/statuses?message_id=wamid.out1&status=sent").await;
    assert_eq!(sent["data"][0]["conversation"]["id"], "conv-1");
    assert_eq!(sent["data"][0]["pricing"]["category"], "service");
    let (_, page) = app.get("/statuses?message_id=wamid.out1&limit=1&offset=1").await;
    assert_eq!((page["data"][0]["status"].clone(), page["total"].clone()), (json!("delivered"), json!(3)));
    let (_, past) = app.get("/statuses?status=read&offset=5").await;
    assert_eq!((past["data"].clone(), past["total"].clone()), (json!([]), json!(1)));
    assert_eq!(app.get("/statuses?message_id=wamid.nothing").await.1["total"], 0);
    assert_eq!(app.get("/statuses?status=").await.1["total"], 4, "an empty filter is none");
    assert_eq!(app.get("/statuses?limit=0").await.0, 422);
    assert_eq!(app.get("/statuses?offset=x").await.0, 422);

    let (_, stats) = app.get("/stats").await;
    assert_eq!(stats["statuses_by_status"], json!({"delivered": 1, "failed": 1, "read": 1, "sent": 1}));
    assert_eq!(stats["total_messages"], 1, "statuses are no messages");
    assert_eq!(app.get("/messages/wamid.out1").await, (404, json!({"detail": "not found"})));

    let lines = app.wait_for_logs(4, |l| l["path"] == "/webhook/whatsapp").await;
    let results: Vec<(&str, Value)> =
        lines.iter().map(|l| (l["result"].as_str().unwrap(), l["statuses"].clone())).collect();
    let statuses = |created, duplicate| json!({"created": created, "duplicate": duplicate, "skipped": 0});
    assert_eq!(
        results,
        [
            ("created", statuses(2, 0)),
            ("created", statuses(2, 0)),
            ("duplicate", statuses(0, 2)),
            ("duplicate", statuses(0, 2))
        ]
    );
    let (_, metrics) = app.get_text("/metrics").await;
    for line in ["whatsapp_statuses_total{outcome=\"created\"} 4", "whatsapp_statuses_total{outcome=\"duplicate\"} 4"] {
        assert!(metrics.lines().any(|l| l == line), "missing {line}:\n{metrics}");
    }
}

#[tokio::test]
async fn statuses_that_cannot_be_kept_are_skipped_with_their_reasons_and_the_rest_stored() {
    let app = spawn_app().await;
    let statuses = json!([
        {"status": "sent", "timestamp": "1736935200"},
        {"id": "wamid.no-status", "timestamp": "1736935200"},
        {"id": "wamid.absurd", "status": "sent", "timestamp": "99999999999999999999"},
        status("wamid.kept", "sent", 0),
    ]);
    assert_eq!(
        app.deliver_whatsapp(&delivery_with(json!([]), statuses)).await,
        (200, with_statuses([0, 0, 0], [1, 0, 3]))
    );
    let (_, all) = app.get("/statuses").await;
    assert_eq!((all["total"].clone(), all["data"][0]["message_id"].clone()), (json!(1), json!("wamid.kept")));
    let line = app.wait_for_log(|l| l["path"] == "/webhook/whatsapp").await;
    assert_eq!((line["level"].as_str(), line["result"].as_str()), (Some("WARN"), Some("created")), "{line}");
    assert_eq!(
        line["status_skips"],
        json!([
            {"reason": "no status id"},
            {"message_id": "wamid.no-status", "reason": "no status"},
            {"message_id": "wamid.absurd", "reason": "timestamp is not a Unix time in seconds before year 10000"},
        ])
    );
    // Only the statuses' bytes are ever stored, never logged.
    assert!(!line.to_string().contains("1736935200"), "{line}");
    // A `statuses` that is no list refuses the delivery whole, and stores nothing of it.
    let not_a_list = delivery_with(json!([whatsapp_text("wamid.never", "x")]), json!({"id": "x"}));
    let (code, answer) = app.deliver_whatsapp(&not_a_list).await;
    assert_eq!(
        (code, answer["detail"][0]["loc"].clone()),
        (422, json!(["body", "entry", "changes", "value", "statuses"]))
    );
    assert_eq!(app.stored_count().await, 0);
}

#[tokio::test]
async fn ids_and_statuses_of_any_unicode_are_stored_and_returned_byte_for_byte() {
    let app = spawn_app().await;
    let odd = ["wamid.a/b c+d%e?f#g", "ünï©ødé ✓ 😀", "\u{0}nul\u{7f}", "x".repeat(2_000).as_str()].map(str::to_owned);
    let messages: Vec<Value> = odd.iter().map(|id| whatsapp_text(id, "odd")).collect();
    let statuses: Vec<Value> = odd.iter().map(|id| status(id, &format!("état {id}"), 1)).collect();
    assert_eq!(
        app.deliver_whatsapp(&delivery_with(json!(messages), json!(statuses))).await,
        (200, with_statuses([4, 0, 0], [4, 0, 0]))
    );
    for id in &odd {
        let (code, got) = app.get(&by_id(id)).await;
        assert_eq!((code, got["message_id"].as_str()), (200, Some(id.as_str())), "{id:?}");
        let query = format!(
            "/statuses?message_id={}",
            percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC)
        );
        let (_, found) = app.get(&query).await;
        assert_eq!(found["total"], 1, "{id:?}: {found}");
        assert_eq!(found["data"][0]["message_id"].as_str(), Some(id.as_str()));
        assert_eq!(found["data"][0]["status"].as_str(), Some(format!("état {id}").as_str()));
    }
}

/// The README's WhatsApp section, replayed: the sample file sent as `make send-whatsapp FILE=…` sends it, and
/// every answer the section prints is what the service answers, byte for byte.
#[tokio::test]
async fn the_readmes_whatsapp_sample_answers_as_the_readme_shows() {
    let app = spawn_app().await;
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let sample = std::fs::read_to_string(format!("{root}/scripts/whatsapp-sample.json")).unwrap();
    let start = readme.find("make send-whatsapp FILE=scripts/whatsapp-sample.json\n").expect("the README's sample");
    let block: Vec<&str> = readme[start..].lines().take_while(|line| *line != "```").collect();
    // `$(cat FILE)` drops the file's final newline.
    let body = sample.trim_end();
    let sent = app.client.post(app.url("/webhook/whatsapp"));
    let sent =
        sent.header("X-Hub-Signature-256", whatsapp_signature(WHATSAPP_SECRET, body.as_bytes())).body(body.to_owned());
    let answer = sent.send().await.unwrap().text().await.unwrap();
    assert_eq!(format!("# {answer}"), block[1]);
    let mut checked = 0;
    for pair in block[2..].chunks(2) {
        let url = pair[0].trim_start_matches("curl -s ").trim_matches('\'');
        let path = url.strip_prefix("http://127.0.0.1:8000").expect(url);
        let (status, text) = app.get_text(path).await;
        assert_eq!((status, format!("# {text}")), (200, pair[1].to_owned()), "{path}");
        checked += 1;
    }
    assert_eq!(checked, 5);
}
