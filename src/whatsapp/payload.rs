//! A Cloud API delivery's body mapped onto [`Message`]s and [`Status`]es: every message and every status of
//! every entry and change, in order, each with its JSON exactly as it arrived.
//!
//! A body that is not a delivery at all is refused whole (422). A message or status that cannot be mapped
//! (no id, a sender that is not digits, an absurd timestamp) is only skipped, with its reason: Meta would
//! retry the whole delivery for days, and no retry could fix it. Changes of other fields carry nothing to
//! store.
//!
//! The body is read twice: once as values, which decide what is valid, and once for the exact bytes of each
//! object that is kept ([`RawDelivery`]), which a value would not give back (key order, number forms,
//! escapes).

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::delivery::Skipped;
use crate::message::{FieldError, Message, Msisdn, Received, Timestamp, MAX_TEXT_CHARS};
use crate::status::Status;
use crate::strict_json;

/// The `object` of a WhatsApp Business Account's deliveries.
const OBJECT: &str = "whatsapp_business_account";
/// The delivery's own keys, where a duplicate-key error is located.
const FIELDS: [&str; 2] = ["object", "entry"];

/// Where a change's lists are, each of which must be a list when it is there.
const LISTS: [[&str; 4]; 2] = [["entry", "changes", "value", "messages"], ["entry", "changes", "value", "statuses"]];

/// A delivery's messages and statuses that can be stored, and those that cannot.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Mapped {
    pub messages: Vec<Message>,
    pub skipped: Vec<Skipped>,
    pub statuses: Vec<Status>,
    pub skipped_statuses: Vec<Skipped>,
}

/// Maps a delivery's body, or names what makes it no delivery.
pub fn map(body: &[u8]) -> Result<Mapped, Vec<FieldError>> {
    let value = strict_json::parse(body).map_err(|e| vec![FieldError::of_json(e, &FIELDS)])?;
    deliveries(&value, body).map_err(|e| vec![e])
}

/// The parts of a delivery whose bytes are kept, borrowed from the body. Read only once the values passed,
/// so that its shape is known to hold.
#[derive(Deserialize)]
struct RawDelivery<'a> {
    #[serde(borrow)]
    entry: Vec<RawEntry<'a>>,
}

#[derive(Deserialize)]
struct RawEntry<'a> {
    #[serde(borrow)]
    changes: Vec<RawChange<'a>>,
}

#[derive(Deserialize)]
struct RawChange<'a> {
    #[serde(borrow, default)]
    value: Option<&'a RawValue>,
}

#[derive(Deserialize, Default)]
struct RawChangeValue<'a> {
    #[serde(borrow, default)]
    metadata: Option<&'a RawValue>,
    #[serde(borrow, default)]
    contacts: Option<&'a RawValue>,
    #[serde(borrow, default)]
    messages: Option<&'a RawValue>,
    #[serde(borrow, default)]
    statuses: Option<&'a RawValue>,
}

/// The parts of a status entry kept beside it, as their bytes (null is none).
#[derive(Deserialize, Default)]
struct RawStatusParts<'a> {
    #[serde(borrow, default)]
    errors: Option<&'a RawValue>,
    #[serde(borrow, default)]
    conversation: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pricing: Option<&'a RawValue>,
}

/// The items of a JSON array's bytes, each as its own bytes; none when it is no array.
fn raw_items(list: Option<&RawValue>) -> Vec<&RawValue> {
    list.and_then(|list| serde_json::from_str(list.get()).ok()).unwrap_or_default()
}

fn deliveries(value: &Value, body: &[u8]) -> Result<Mapped, FieldError> {
    let delivery = object(value, &[], "the delivery")?;
    match delivery.get("object") {
        Some(Value::String(object)) if object == OBJECT => {}
        None => return Err(FieldError::body_at(&["object"], "missing", "Field required")),
        Some(_) => {
            return Err(FieldError::body_at(&["object"], "literal_error", format!("Input should be '{OBJECT}'")));
        }
    }
    let entries = list(delivery, "entry", &["entry"], "entry")?;
    let mut changes_of = Vec::with_capacity(entries.len());
    for (e, entry) in entries.iter().enumerate() {
        let entry = object(entry, &["entry"], &format!("entry[{e}]"))?;
        let changes = list(entry, "changes", &["entry", "changes"], &format!("entry[{e}].changes"))?;
        for (c, change) in changes.iter().enumerate() {
            let at = format!("entry[{e}].changes[{c}]");
            let change = object(change, &["entry", "changes"], &at)?;
            match change.get("field") {
                Some(Value::String(field)) if field == "messages" => {}
                Some(Value::String(_)) => continue,
                _ => {
                    let msg = format!("{at}.field: Input should be a valid string");
                    return Err(FieldError::body_at(&["entry", "changes", "field"], "string_type", msg));
                }
            }
            let value = change.get("value").unwrap_or(&Value::Null);
            let value = object(value, &["entry", "changes", "value"], &format!("{at}.value"))?;
            for loc in LISTS {
                let part = loc[3];
                if !matches!(value.get(part), None | Some(Value::Null | Value::Array(_))) {
                    let msg = format!("{at}.value.{part}: Input should be a valid list");
                    return Err(FieldError::body_at(&loc, "list_type", msg));
                }
            }
            changes_of.push((e, c, value));
        }
    }
    // The values passed, so the bytes have the shape read here.
    let raw: RawDelivery = serde_json::from_slice(body)
        .map_err(|e| FieldError::body_at(&[], "json_invalid", format!("JSON decode error: {e}")))?;
    let mut mapped = Mapped::default();
    for (e, c, value) in changes_of {
        let raw_value = raw.entry.get(e).and_then(|entry| entry.changes.get(c)).and_then(|change| change.value);
        let raw_value: RawChangeValue =
            raw_value.and_then(|value| serde_json::from_str(value.get()).ok()).unwrap_or_default();
        mapped.add(value, &raw_value);
    }
    Ok(mapped)
}

impl Mapped {
    /// The messages and statuses of one `messages` change's value, all of one business number.
    fn add(&mut self, value: &Map<String, Value>, raw: &RawChangeValue) {
        let to = value
            .get("metadata")
            .and_then(|metadata| metadata.get("display_phone_number"))
            .and_then(Value::as_str)
            .and_then(|number| Msisdn::parse(&format!("+{}", number.replace(|c: char| !c.is_ascii_digit(), ""))));
        let metadata = raw.metadata.map(|metadata| metadata.get().to_owned());
        let contacts = Contacts { values: items(value, "contacts"), raw: raw_items(raw.contacts) };
        for (message, raw_message) in items(value, "messages").iter().zip(raw_items(raw.messages)) {
            match one(message, to.as_ref()) {
                Ok(mut message) => {
                    message.received = Received {
                        raw: Some(raw_message.get().to_owned()),
                        contact: contacts.of(message.from.as_str()),
                        metadata: metadata.clone(),
                    };
                    self.messages.push(message)
                }
                Err(skipped) => self.skipped.push(skipped),
            }
        }
        for (status, raw_status) in items(value, "statuses").iter().zip(raw_items(raw.statuses)) {
            match one_status(status, raw_status.get()) {
                Ok(status) => self.statuses.push(status),
                Err(skipped) => self.skipped_statuses.push(skipped),
            }
        }
    }
}

/// The items of an array under `key`; none when it is missing or null (anything else was refused).
fn items<'v>(value: &'v Map<String, Value>, key: &str) -> &'v [Value] {
    value.get(key).and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

/// A change's `contacts[]`: the profiles of the senders of its messages.
struct Contacts<'v, 'r> {
    values: &'v [Value],
    raw: Vec<&'r RawValue>,
}

impl Contacts<'_, '_> {
    /// The bytes of the sender's entry: the one whose `wa_id` is the sender's number, or the only one.
    fn of(&self, from: &str) -> Option<String> {
        let digits = from.trim_start_matches('+');
        let matching = self.values.iter().position(|c| c.get("wa_id").and_then(Value::as_str) == Some(digits));
        let index = matching.or((self.values.len() == 1).then_some(0))?;
        self.raw.get(index).map(|raw| raw.get().to_owned())
    }
}

/// One Cloud API message as ours, or why it cannot be one.
fn one(raw: &Value, to: Option<&Msisdn>) -> Result<Message, Skipped> {
    let Some(m) = raw.as_object() else { return Err(Skipped { message_id: None, reason: "not an object" }) };
    let message_id = match m.get("id") {
        Some(Value::String(id)) if !id.is_empty() => id.clone(),
        _ => return Err(Skipped { message_id: None, reason: "no message id" }),
    };
    let skip = |reason| Skipped { message_id: Some(message_id.clone()), reason };
    let from = m
        .get("from")
        .and_then(Value::as_str)
        .and_then(|digits| Msisdn::parse(&format!("+{digits}")))
        .ok_or_else(|| skip("from is not a phone number of digits"))?;
    let to = to.cloned().ok_or_else(|| skip("metadata.display_phone_number holds no phone number"))?;
    let ts =
        unix_seconds(m.get("timestamp")).and_then(Timestamp::from_unix_seconds).ok_or_else(|| skip(BAD_TIMESTAMP))?;
    let message_type = m.get("type").and_then(Value::as_str).map(str::to_owned);
    let text = text_of(m, message_type.as_deref()).map_err(skip)?;
    Ok(Message { message_id, from, to, ts, text, message_type, received: Received::default() })
}

const BAD_TIMESTAMP: &str = "timestamp is not a Unix time in seconds before year 10000";

/// One `statuses[]` entry, or why it cannot be kept.
fn one_status(value: &Value, raw: &str) -> Result<Status, Skipped> {
    let Some(s) = value.as_object() else { return Err(Skipped { message_id: None, reason: "not an object" }) };
    let message_id = match s.get("id") {
        Some(Value::String(id)) if !id.is_empty() => id.clone(),
        _ => return Err(Skipped { message_id: None, reason: "no status id" }),
    };
    let skip = |reason| Skipped { message_id: Some(message_id.clone()), reason };
    let status = match s.get("status") {
        Some(Value::String(status)) if !status.is_empty() => status.clone(),
        _ => return Err(skip("no status")),
    };
    let ts =
        unix_seconds(s.get("timestamp")).and_then(Timestamp::from_unix_seconds).ok_or_else(|| skip(BAD_TIMESTAMP))?;
    let parts: RawStatusParts = serde_json::from_str(raw).unwrap_or_default();
    let kept = |part: Option<&RawValue>| part.map(|part| part.get().to_owned());
    Ok(Status {
        message_id,
        status,
        ts,
        recipient_id: s.get("recipient_id").and_then(Value::as_str).map(str::to_owned),
        errors: kept(parts.errors),
        conversation: kept(parts.conversation),
        pricing: kept(parts.pricing),
        raw: raw.to_owned(),
    })
}

/// Meta sends the time as a string of digits; a plain number is taken too.
fn unix_seconds(value: Option<&Value>) -> Option<u64> {
    match value? {
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

/// A text message's `text.body`; another type's `caption` (`image`, `video` and `document` may carry one);
/// none for types without text (`reaction`, `location`, `sticker`, …).
fn text_of(m: &Map<String, Value>, message_type: Option<&str>) -> Result<Option<String>, &'static str> {
    let (part, field) = match message_type {
        Some("text") => ("text", "body"),
        Some(media) => (media, "caption"),
        None => return Ok(None),
    };
    match m.get(part).and_then(|part| part.get(field)) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.chars().count() <= MAX_TEXT_CHARS => Ok(Some(text.clone())),
        Some(Value::String(_)) => Err("text is longer than 4096 characters"),
        Some(_) => Err("text is not a string"),
    }
}

fn object<'v>(value: &'v Value, loc: &[&'static str], what: &str) -> Result<&'v Map<String, Value>, FieldError> {
    value.as_object().ok_or_else(|| {
        let msg = format!("{what}: Input should be a valid dictionary or object to extract fields from");
        FieldError::body_at(loc, "model_attributes_type", msg)
    })
}

fn list<'v>(
    parent: &'v Map<String, Value>,
    key: &str,
    loc: &[&'static str],
    what: &str,
) -> Result<&'v [Value], FieldError> {
    match parent.get(key) {
        Some(Value::Array(items)) => Ok(items),
        None => Err(FieldError::body_at(loc, "missing", format!("{what}: Field required"))),
        Some(_) => Err(FieldError::body_at(loc, "list_type", format!("{what}: Input should be a valid list"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn delivery(changes: Value) -> Vec<u8> {
        json!({"object": OBJECT, "entry": [{"id": "102290129340398", "changes": changes}]}).to_string().into_bytes()
    }

    fn messages_change(messages: Value) -> Value {
        json!([{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "1 555-000-1234", "phone_number_id": "123456"},
            "contacts": [{"profile": {"name": "Kerry"}, "wa_id": "16315551234"}],
            "messages": messages,
        }}])
    }

    fn text(id: &str, body: &str) -> Value {
        json!({"from": "16315551234", "id": id, "timestamp": "1736935200", "type": "text", "text": {"body": body}})
    }

    #[test]
    fn a_text_message_maps_onto_the_contracts_fields() {
        let mapped = map(&delivery(messages_change(json!([text("wamid.A", "Hello")])))).unwrap();
        assert_eq!(mapped.skipped, []);
        let m = &mapped.messages[0];
        assert_eq!(m.message_id, "wamid.A");
        assert_eq!(m.from.as_str(), "+16315551234");
        assert_eq!(m.to.as_str(), "+15550001234");
        assert_eq!(m.ts.as_str(), "2025-01-15T10:00:00Z");
        assert_eq!(m.text.as_deref(), Some("Hello"));
        assert_eq!(m.message_type.as_deref(), Some("text"));
    }

    #[test]
    fn media_keep_their_caption_and_other_types_have_no_text() {
        let base = |id: &str, kind: &str, part: Value| json!({"from": "16315551234", "id": id, "timestamp": 1736935200, "type": kind, kind: part});
        let messages = json!([
            base("img", "image", json!({"id": "media-1", "mime_type": "image/jpeg", "caption": "A cat"})),
            base("img-bare", "image", json!({"id": "media-2", "mime_type": "image/jpeg"})),
            base("doc", "document", json!({"id": "media-3", "filename": "a.pdf", "caption": "Invoice"})),
            base("react", "reaction", json!({"message_id": "img", "emoji": "👍"})),
            base("loc", "location", json!({"latitude": 1.0, "longitude": 2.0})),
        ]);
        let mapped = map(&delivery(messages_change(messages))).unwrap();
        let got: Vec<(&str, Option<&str>, Option<&str>)> = mapped
            .messages
            .iter()
            .map(|m| (m.message_id.as_str(), m.text.as_deref(), m.message_type.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("img", Some("A cat"), Some("image")),
                ("img-bare", None, Some("image")),
                ("doc", Some("Invoice"), Some("document")),
                ("react", None, Some("reaction")),
                ("loc", None, Some("location")),
            ]
        );
    }

    #[test]
    fn unmappable_messages_are_skipped_with_their_reason_and_the_rest_kept() {
        let mut no_id = text("", "x");
        no_id.as_object_mut().unwrap().remove("id");
        let mut plus_sender = text("plus", "x");
        plus_sender["from"] = json!("+16315551234");
        let mut year_10000 = text("far", "x");
        year_10000["timestamp"] = json!("253402300800");
        let mut negative = text("neg", "x");
        negative["timestamp"] = json!(-5);
        let mut long = text("long", "x");
        long["text"]["body"] = json!("a".repeat(MAX_TEXT_CHARS + 1));
        let mut number_body = text("num", "x");
        number_body["text"]["body"] = json!(5);
        let messages =
            json!([no_id, "not an object", plus_sender, text("ok", "kept"), year_10000, negative, long, number_body]);
        let mapped = map(&delivery(messages_change(messages))).unwrap();
        assert_eq!(mapped.messages.iter().map(|m| m.message_id.as_str()).collect::<Vec<_>>(), ["ok"]);
        let reasons: Vec<(Option<&str>, &str)> =
            mapped.skipped.iter().map(|s| (s.message_id.as_deref(), s.reason)).collect();
        assert_eq!(
            reasons,
            [
                (None, "no message id"),
                (None, "not an object"),
                (Some("plus"), "from is not a phone number of digits"),
                (Some("far"), "timestamp is not a Unix time in seconds before year 10000"),
                (Some("neg"), "timestamp is not a Unix time in seconds before year 10000"),
                (Some("long"), "text is longer than 4096 characters"),
                (Some("num"), "text is not a string"),
            ]
        );
    }

    #[test]
    fn a_business_number_without_digits_skips_the_changes_messages() {
        let mut change = messages_change(json!([text("a", "x")]));
        change[0]["value"]["metadata"]["display_phone_number"] = json!("n/a");
        let mapped = map(&delivery(change)).unwrap();
        assert_eq!(mapped.messages, []);
        assert_eq!(mapped.skipped[0].reason, "metadata.display_phone_number holds no phone number");
    }

    #[test]
    fn every_message_and_status_of_every_entry_and_change_in_order_and_nothing_from_other_fields() {
        let statuses = json!({"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550001234", "phone_number_id": "123456"},
            "statuses": [{"id": "wamid.S", "status": "delivered", "timestamp": "1736935300", "recipient_id": "1"}],
        }});
        let other = json!({"field": "account_update", "value": {"event": "VERIFIED_ACCOUNT"}});
        let body = json!({"object": OBJECT, "entry": [
            {"id": "1", "changes": [messages_change(json!([text("a", "1"), text("b", "2")]))[0].clone(), statuses]},
            {"id": "2", "changes": [other, messages_change(json!([text("c", "3"), text("a", "again")]))[0].clone()]},
        ]});
        let mapped = map(body.to_string().as_bytes()).unwrap();
        let ids: Vec<&str> = mapped.messages.iter().map(|m| m.message_id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c", "a"]);
        let statuses: Vec<(&str, &str)> =
            mapped.statuses.iter().map(|s| (s.message_id.as_str(), s.status.as_str())).collect();
        assert_eq!(statuses, [("wamid.S", "delivered")]);
        let only_other = json!({"object": OBJECT, "entry": [{"id": "1", "changes": [body["entry"][1]["changes"][0]]}]});
        assert_eq!(map(only_other.to_string().as_bytes()).unwrap(), Mapped::default());
    }

    #[test]
    fn every_object_kept_is_its_bytes_as_received() {
        // Key order, spacing, escapes and number forms a value would not give back.
        let message = r#"{ "type":"text", "id" : "wamid.\u0041", "timestamp":"1736935200","from":"16315551234","text":{"body":"caf\u00e9"},"n":1.50 }"#;
        let contact = r#"{"wa_id": "16315551234", "profile": {"name": "K\u00e9rry"}}"#;
        let other_contact = r#"{"wa_id":"19995550000","profile":{"name":"Someone else"}}"#;
        let metadata = r#"{"phone_number_id":"1","display_phone_number":"15550001234"}"#;
        let status = r#"{"status":"failed","id":"wamid.OUT","timestamp":"1736935300","recipient_id":"16315551234","errors":[{"title": "Message undeliverable","code":131026}],"x":1e2}"#;
        let body = format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"changes":[{{"field":"messages","value":{{
                "metadata":{metadata},"contacts":[{other_contact}, {contact}],"messages":[{message}],"statuses":[{status}]}}}}]}}]}}"#
        );
        let mapped = map(body.as_bytes()).unwrap();
        let received = &mapped.messages[0].received;
        assert_eq!(mapped.messages[0].message_id, "wamid.A");
        assert_eq!(mapped.messages[0].text.as_deref(), Some("café"));
        assert_eq!(received.raw.as_deref(), Some(message));
        assert_eq!(received.contact.as_deref(), Some(contact), "the sender's entry, not the first");
        assert_eq!(received.metadata.as_deref(), Some(metadata));
        let kept = &mapped.statuses[0];
        assert_eq!(kept.raw, status);
        assert_eq!(
            (kept.message_id.as_str(), kept.status.as_str(), kept.ts.as_str()),
            ("wamid.OUT", "failed", "2025-01-15T10:01:40Z")
        );
        assert_eq!(kept.recipient_id.as_deref(), Some("16315551234"));
        assert_eq!(kept.errors.as_deref(), Some(r#"[{"title": "Message undeliverable","code":131026}]"#));
        assert_eq!((kept.conversation.as_deref(), kept.pricing.as_deref()), (None, None));
    }

    #[test]
    fn a_status_that_cannot_be_kept_is_skipped_with_its_reason_and_the_rest_kept() {
        let statuses = json!([
            {"id": "ok", "status": "read", "timestamp": "1736935300"},
            "not an object",
            {"status": "sent", "timestamp": "1736935300"},
            {"id": "", "status": "sent", "timestamp": "1736935300"},
            {"id": "no-status", "timestamp": "1736935300"},
            {"id": "empty-status", "status": "", "timestamp": "1736935300"},
            {"id": "absurd", "status": "sent", "timestamp": "999999999999999"},
            {"id": "no-time", "status": "sent"},
        ]);
        let body =
            json!({"object": OBJECT, "entry": [{"changes": [{"field": "messages", "value": {"statuses": statuses}}]}]});
        let mapped = map(body.to_string().as_bytes()).unwrap();
        assert_eq!(mapped.statuses.len(), 1);
        assert_eq!(mapped.statuses[0].recipient_id, None);
        let reasons: Vec<(Option<&str>, &str)> =
            mapped.skipped_statuses.iter().map(|s| (s.message_id.as_deref(), s.reason)).collect();
        assert_eq!(
            reasons,
            [
                (None, "not an object"),
                (None, "no status id"),
                (None, "no status id"),
                (Some("no-status"), "no status"),
                (Some("empty-status"), "no status"),
                (Some("absurd"), BAD_TIMESTAMP),
                (Some("no-time"), BAD_TIMESTAMP),
            ]
        );
        let not_a_list =
            json!({"object": OBJECT, "entry": [{"changes": [{"field": "messages", "value": {"statuses": {}}}]}]});
        let refused = map(not_a_list.to_string().as_bytes()).unwrap_err();
        assert_eq!(
            (refused[0].loc.join("."), refused[0].kind),
            ("body.entry.changes.value.statuses".into(), "list_type")
        );
    }

    #[test]
    fn bodies_that_are_no_delivery_are_refused_whole() {
        let refused = |body: Value| map(body.to_string().as_bytes()).unwrap_err()[0].clone();
        let loc = |e: FieldError| (e.loc.join("."), e.kind);
        assert_eq!(loc(refused(json!([]))), ("body".into(), "model_attributes_type"));
        assert_eq!(loc(refused(json!({"entry": []}))), ("body.object".into(), "missing"));
        assert_eq!(loc(refused(json!({"object": "page", "entry": []}))), ("body.object".into(), "literal_error"));
        assert_eq!(loc(refused(json!({"object": OBJECT}))), ("body.entry".into(), "missing"));
        assert_eq!(loc(refused(json!({"object": OBJECT, "entry": {}}))), ("body.entry".into(), "list_type"));
        assert_eq!(
            loc(refused(json!({"object": OBJECT, "entry": [1]}))),
            ("body.entry".into(), "model_attributes_type")
        );
        assert_eq!(loc(refused(json!({"object": OBJECT, "entry": [{}]}))), ("body.entry.changes".into(), "missing"));
        let change = |c: Value| json!({"object": OBJECT, "entry": [{"changes": [c]}]});
        assert_eq!(loc(refused(change(json!({"value": {}})))), ("body.entry.changes.field".into(), "string_type"));
        assert_eq!(
            loc(refused(change(json!({"field": "messages"})))),
            ("body.entry.changes.value".into(), "model_attributes_type")
        );
        assert_eq!(
            loc(refused(change(json!({"field": "messages", "value": {"messages": "hi"}})))),
            ("body.entry.changes.value.messages".into(), "list_type")
        );
        let errors = map(br#"{"object":"x","object":"whatsapp_business_account","entry":[]}"#).unwrap_err();
        assert_eq!(loc(errors[0].clone()), ("body.object".into(), "duplicate_key"));
        assert_eq!(map(b"{").unwrap_err()[0].kind, "json_invalid");
        assert_eq!(map(&[0xff]).unwrap_err()[0].kind, "json_invalid");
    }

    #[test]
    fn an_empty_entry_list_is_a_delivery_with_nothing_in_it() {
        assert_eq!(map(br#"{"object":"whatsapp_business_account","entry":[]}"#).unwrap(), Mapped::default());
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn no_byte_sequence_panics_the_mapper(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = map(&body);
        }

        #[test]
        fn every_message_is_either_mapped_or_skipped(
            ids in proptest::collection::vec(proptest::option::of("[a-z.]{0,6}"), 0..8),
            senders in proptest::collection::vec("\\+?[0-9a]{0,4}", 8),
            times in proptest::collection::vec(prop_oneof![Just(serde_json::json!("1736935200")), any::<i64>().prop_map(serde_json::Value::from), "[0-9 ]{0,13}".prop_map(serde_json::Value::from)], 8),
        ) {
            let messages: Vec<Value> = ids.iter().enumerate().map(|(i, id)| {
                let mut m = serde_json::json!({"from": senders[i], "timestamp": times[i], "type": "text", "text": {"body": "x"}});
                if let Some(id) = id { m["id"] = Value::from(id.clone()); }
                m
            }).collect();
            let body = serde_json::json!({"object": OBJECT, "entry": [{"changes": [{"field": "messages", "value": {
                "metadata": {"display_phone_number": "15550001234"}, "messages": messages}}]}]});
            let mapped = map(body.to_string().as_bytes()).unwrap();
            prop_assert_eq!(mapped.messages.len() + mapped.skipped.len(), ids.len());
            for m in &mapped.messages {
                prop_assert!(m.from.as_str()[1..].bytes().all(|b| b.is_ascii_digit()));
                prop_assert!(Timestamp::parse(m.ts.as_str()).is_some());
            }
        }
    }
}
