//! Replays the recorded event corpus (`events/`, made by `make events`) through the same path the Lambda
//! runtime uses, in file order on a fresh database, and checks each reply against its `.expected.json`.

mod common;

use std::path::PathBuf;

use lambda_http::Context;
use serde_json::Value;
use webhook_ingest::lambda::{self, Event};

/// What `scripts/make-events.py` signs the corpus with: the webhook secret, the WhatsApp app secret, and
/// the WhatsApp handshake's verify token.
const EVENTS_SECRET: &str = "events-test-secret";
const EVENTS_WHATSAPP_SECRET: &str = "events-whatsapp-secret";
const EVENTS_VERIFY_TOKEN: &str = "events-verify-token";

fn corpus() -> Vec<(String, Value, Value)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("events");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json") && !n.ends_with(".expected.json"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let read = |file: &str| -> Value {
                serde_json::from_str(&std::fs::read_to_string(dir.join(file)).unwrap())
                    .unwrap_or_else(|e| panic!("{file}: {e}"))
            };
            let expected = read(&name.replace(".json", ".expected.json"));
            (name.clone(), read(&name), expected)
        })
        .collect()
}

#[tokio::test]
async fn every_event_gets_its_expected_reply() {
    let (app, _dir) = common::in_process_app(&[
        ("WEBHOOK_SECRET", EVENTS_SECRET),
        ("WHATSAPP_APP_SECRET", EVENTS_WHATSAPP_SECRET),
        ("WHATSAPP_VERIFY_TOKEN", EVENTS_VERIFY_TOKEN),
    ])
    .await;

    let corpus = corpus();
    assert!(corpus.len() >= 20, "the corpus is missing: {} events", corpus.len());
    for (name, event, expected) in corpus {
        let event: Event = serde_json::from_value(event).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut context = Context::default();
        context.request_id = format!("replay-{name}");
        let reply = serde_json::to_value(lambda::invoke(&app, event, context).await).unwrap();

        assert_eq!(reply["statusCode"], expected["status"], "{name}: {reply}");
        if let Some(body) = expected.get("body") {
            let got: Value = serde_json::from_str(reply["body"].as_str().unwrap()).unwrap();
            assert_eq!(&got, body, "{name}");
        }
        // A plain-text answer (the WhatsApp handshake's challenge), byte for byte.
        if let Some(text) = expected.get("text") {
            assert_eq!(&reply["body"], text, "{name}");
        }
        // The id header is where every source's reply keeps it.
        let headers =
            if reply["multiValueHeaders"].is_object() && reply["headers"].as_object().is_none_or(|h| h.is_empty()) {
                reply["multiValueHeaders"]["x-request-id"][0].clone()
            } else {
                reply["headers"]["x-request-id"].clone()
            };
        assert_eq!(headers, format!("replay-{name}"), "{name}: {reply}");
    }
}
