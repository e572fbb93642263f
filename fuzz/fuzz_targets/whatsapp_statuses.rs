//! The statuses mapping on arbitrary input: the bytes are a change's `statuses`, inside a delivery that is
//! otherwise well formed. It must never panic; a list maps each entry to a kept status or a skipped one; a
//! kept status obeys the rules and its raw bytes are the entry itself; anything else refuses the delivery.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use webhook_ingest::message::Timestamp;
use webhook_ingest::whatsapp::payload::map;

fuzz_target!(|statuses: &[u8]| {
    let Ok(statuses_text) = std::str::from_utf8(statuses) else { return };
    let body = format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"changes":[{{"field":"messages","value":{{"statuses":{statuses_text}}}}}]}}]}}"#
    );
    let mapped = map(body.as_bytes());
    // Bytes that are no JSON value of their own can only be refused, or close the envelope early and change
    // its shape: no panic is all there is to check.
    let Ok(parsed) = serde_json::from_str::<Value>(statuses_text) else { return };
    match mapped {
        Ok(mapped) => {
            assert!(mapped.messages.is_empty() && mapped.skipped.is_empty());
            let entries = match parsed {
                Value::Array(entries) => entries,
                Value::Null => Vec::new(),
                other => panic!("accepted statuses that are no list: {other:?}"),
            };
            assert_eq!(mapped.statuses.len() + mapped.skipped_statuses.len(), entries.len());
            for status in &mapped.statuses {
                assert!(!status.message_id.is_empty() && !status.status.is_empty());
                assert_eq!(Timestamp::parse(status.ts.as_str()).as_ref(), Some(&status.ts));
                let raw: Value = serde_json::from_str(&status.raw).expect("a kept status's bytes are JSON");
                assert!(entries.contains(&raw), "the bytes kept are no entry of the list");
                assert_eq!(raw["id"].as_str(), Some(status.message_id.as_str()));
                assert_eq!(raw["status"].as_str(), Some(status.status.as_str()));
                for (kept, key) in
                    [(&status.errors, "errors"), (&status.conversation, "conversation"), (&status.pricing, "pricing")]
                {
                    let kept: Option<Value> = kept.as_deref().map(|json| serde_json::from_str(json).unwrap());
                    assert_eq!(kept.as_ref(), raw.get(key).filter(|v| !v.is_null()), "{key}");
                }
            }
            assert!(mapped.skipped_statuses.iter().all(|skipped| !skipped.reason.is_empty()));
        }
        Err(errors) => {
            assert!(!errors.is_empty());
            // Refused only when the list is no list, or names a key twice.
            assert!(!matches!(parsed, Value::Array(_) | Value::Null) || errors[0].kind == "duplicate_key");
        }
    }
});
