//! The validated webhook message and the field rules of SPEC §2.
//!
//! A [`Message`] can only be built by [`Message::parse`], so everything downstream (storage, queries) may
//! assume the rules hold.

use chrono::{NaiveDate, NaiveTime};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::strict_json::{self, JsonError};

/// Longest accepted `text`, counted in Unicode scalar values.
pub const MAX_TEXT_CHARS: usize = 4096;

/// One failing field, in FastAPI's validation-error shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub loc: Vec<&'static str>,
    pub msg: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
}

impl FieldError {
    pub fn new(loc: [&'static str; 2], kind: &'static str, msg: impl Into<String>) -> Self {
        FieldError { loc: loc.to_vec(), msg: msg.into(), kind }
    }

    /// A failure of the body as a whole, or of a field `loc` names below it.
    pub fn body_at(loc: &[&'static str], kind: &'static str, msg: impl Into<String>) -> Self {
        let loc = std::iter::once("body").chain(loc.iter().copied()).collect();
        FieldError { loc, msg: msg.into(), kind }
    }

    fn body(kind: &'static str, msg: impl Into<String>) -> Self {
        FieldError::body_at(&[], kind, msg)
    }

    /// A body that is not JSON, or names a key twice (located at that field when it is one of `fields`).
    pub fn of_json(error: JsonError, fields: &[&'static str]) -> Self {
        match error {
            JsonError::Syntax(e) => FieldError::body("json_invalid", format!("JSON decode error: {e}")),
            JsonError::DuplicateKey(key) => {
                let msg = format!("Duplicate key {:?}: an object may name each key once", truncated(&key));
                match fields.iter().find(|field| **field == key) {
                    Some(field) => FieldError::new(["body", field], "duplicate_key", msg),
                    None => FieldError::body("duplicate_key", msg),
                }
            }
        }
    }
}

/// The message's fields, in the order of SPEC §2.
const FIELDS: [&str; 5] = ["message_id", "from", "to", "ts", "text"];

/// A client's key as echoed in an error: at most 64 characters.
fn truncated(key: &str) -> &str {
    key.char_indices().nth(64).map_or(key, |(end, _)| &key[..end])
}

/// A phone number in the form `+` followed by one or more ASCII digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msisdn(String);

impl Msisdn {
    pub fn parse(s: &str) -> Option<Msisdn> {
        let digits = s.strip_prefix('+')?;
        (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then(|| Msisdn(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An RFC 3339 UTC timestamp (`YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z`) that names a real calendar instant.
///
/// Keeps the text exactly as received (that is what the API returns) and a sort key whose byte order is
/// chronological order, which the raw text's is not (`…:00.5Z` sorts before `…:00Z` as bytes): nine bytes,
/// the seconds since 0001-01-01T00:00:00Z in five and the nanoseconds in four, both big-endian. Stored in
/// the row and in both ordering indexes, it is a third the size of the text it orders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timestamp {
    raw: String,
    key: [u8; 9],
}

impl Timestamp {
    pub fn parse(s: &str) -> Option<Timestamp> {
        let b = s.as_bytes();
        // Fixed part: YYYY-MM-DDTHH:MM:SS, then an optional fraction, then Z.
        if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
            return None;
        }
        let num = |range: std::ops::Range<usize>| -> Option<u32> {
            let part = &b[range];
            part.iter().all(u8::is_ascii_digit).then(|| part.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
        };
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
        let rest = &b[19..];
        let fraction: &[u8] = match rest {
            [b'Z'] => &[],
            [b'.', digits @ .., b'Z'] if (1..=9).contains(&digits.len()) && digits.iter().all(u8::is_ascii_digit) => {
                digits
            }
            _ => return None,
        };
        // Year 0 does not exist in the calendar clients use; leap seconds are not instants chrono can name.
        if year == 0 {
            return None;
        }
        let date = NaiveDate::from_ymd_opt(year as i32, month, day)?;
        let time = NaiveTime::from_hms_opt(hour, minute, second)?;
        let seconds = date.and_time(time).and_utc().timestamp() - FIRST_INSTANT_UNIX_SECONDS;
        let nanos =
            fraction.iter().chain(std::iter::repeat(&b'0')).take(9).fold(0, |n, d| n * 10 + u32::from(d - b'0'));
        let mut key = [0; 9];
        key[..5].copy_from_slice(&seconds.to_be_bytes()[3..]);
        key[5..].copy_from_slice(&nanos.to_be_bytes());
        Some(Timestamp { raw: s.to_owned(), key })
    }

    /// The instant `seconds` after the Unix epoch, in the `YYYY-MM-DDTHH:MM:SSZ` form; none past year 9999.
    pub fn from_unix_seconds(seconds: u64) -> Option<Timestamp> {
        let instant = chrono::DateTime::from_timestamp(i64::try_from(seconds).ok()?, 0)?;
        Timestamp::parse(&instant.format("%Y-%m-%dT%H:%M:%SZ").to_string())
    }

    /// The text as the client sent it.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The chronological sort key stored beside the raw text.
    pub fn sort_key(&self) -> &[u8] {
        &self.key
    }
}

/// 0001-01-01T00:00:00Z, the first instant a [`Timestamp`] names, where its sort key counts from.
pub const FIRST_INSTANT_UNIX_SECONDS: i64 = -62_135_596_800;

/// The case folding shared by stored text and search terms, so both sides compare alike.
pub fn fold_case(s: &str) -> String {
    s.to_lowercase()
}

/// A webhook message that passed every rule of SPEC §2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub message_id: String,
    pub from: Msisdn,
    pub to: Msisdn,
    pub ts: Timestamp,
    pub text: Option<String>,
    /// What kind of message a provider says this is (WhatsApp's `text`, `image`, `reaction`, …); none for
    /// the contract's own messages, which have no kinds. Stored, and returned with the message by id.
    pub message_type: Option<String>,
    /// What arrived, kept as it arrived ([`Received`]).
    pub received: Received,
}

/// A message's JSON as it arrived, byte for byte: the `POST /webhook` body, or a WhatsApp message's object
/// with the sender's `contacts[]` entry and the change's `metadata`. Never logged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Received {
    /// None when the object is exactly [`Message::canonical_json`], which rebuilds it: most clients send
    /// that, and the row need not hold every field twice.
    pub raw: Option<String>,
    pub contact: Option<String>,
    pub metadata: Option<String>,
}

impl Message {
    /// Parses and validates a raw request body, naming every failing field.
    pub fn parse(body: &[u8]) -> Result<Message, Vec<FieldError>> {
        let value = strict_json::parse(body).map_err(|e| vec![FieldError::of_json(e, &FIELDS)])?;
        let Value::Object(mut object) = value else {
            return Err(vec![FieldError::body(
                "model_attributes_type",
                "Input should be a valid dictionary or object to extract fields from",
            )]);
        };

        let mut errors = Vec::new();
        let message_id = required_string(&mut object, "message_id", &mut errors).and_then(|id| {
            if id.is_empty() {
                errors.push(FieldError::new(
                    ["body", "message_id"],
                    "string_too_short",
                    "String should have at least 1 character",
                ));
                None
            } else {
                Some(id)
            }
        });
        let from = msisdn_field(&mut object, "from", &mut errors);
        let to = msisdn_field(&mut object, "to", &mut errors);
        let ts = required_string(&mut object, "ts", &mut errors).and_then(|raw| {
            let parsed = Timestamp::parse(&raw);
            if parsed.is_none() {
                errors.push(FieldError::new(
                    ["body", "ts"],
                    "value_error",
                    "Value error, ts must be an RFC 3339 UTC timestamp such as 2025-01-15T10:00:00Z",
                ));
            }
            parsed
        });
        let text = match object.remove("text") {
            None | Some(Value::Null) => Some(None),
            Some(Value::String(text)) if text.chars().count() <= MAX_TEXT_CHARS => Some(Some(text)),
            Some(Value::String(_)) => {
                errors.push(FieldError::new(
                    ["body", "text"],
                    "string_too_long",
                    format!("String should have at most {MAX_TEXT_CHARS} characters"),
                ));
                None
            }
            Some(_) => {
                errors.push(not_a_string("text"));
                None
            }
        };

        match (message_id, from, to, ts, text) {
            (Some(message_id), Some(from), Some(to), Some(ts), Some(text)) if errors.is_empty() => {
                let mut message =
                    Message { message_id, from, to, ts, text, message_type: None, received: Received::default() };
                // Valid JSON is UTF-8, so the body is the text it parsed from.
                let body = String::from_utf8_lossy(body);
                if body != message.canonical_json() {
                    message.received.raw = Some(body.into_owned());
                }
                Ok(message)
            }
            _ => Err(errors),
        }
    }

    /// [`canonical_json`] of the message's fields.
    pub fn canonical_json(&self) -> String {
        let Message { message_id, from, to, ts, text, .. } = self;
        canonical_json(message_id, from.as_str(), to.as_str(), ts.as_str(), text.as_deref())
    }
}

/// A message's fields as one compact JSON object in SPEC §2's order, `text` left out when it has none: what a
/// `POST /webhook` body most often is, byte for byte.
pub fn canonical_json(message_id: &str, from: &str, to: &str, ts: &str, text: Option<&str>) -> String {
    #[derive(Serialize)]
    struct Canonical<'a> {
        message_id: &'a str,
        from: &'a str,
        to: &'a str,
        ts: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        text: Option<&'a str>,
    }
    serde_json::to_string(&Canonical { message_id, from, to, ts, text }).unwrap_or_default()
}

fn not_a_string(field: &'static str) -> FieldError {
    FieldError::new(["body", field], "string_type", "Input should be a valid string")
}

fn required_string(
    object: &mut Map<String, Value>,
    field: &'static str,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    match object.remove(field) {
        Some(Value::String(s)) => Some(s),
        None => {
            errors.push(FieldError::new(["body", field], "missing", "Field required"));
            None
        }
        Some(_) => {
            errors.push(not_a_string(field));
            None
        }
    }
}

fn msisdn_field(object: &mut Map<String, Value>, field: &'static str, errors: &mut Vec<FieldError>) -> Option<Msisdn> {
    let raw = required_string(object, field, errors)?;
    let parsed = Msisdn::parse(&raw);
    if parsed.is_none() {
        errors.push(FieldError::new(
            ["body", field],
            "string_pattern_mismatch",
            "String should match pattern '^\\+[0-9]+$'",
        ));
    }
    parsed
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Message, Vec<FieldError>> {
        Message::parse(v.to_string().as_bytes())
    }

    fn valid() -> Value {
        json!({"message_id":"m1","from":"+919876543210","to":"+14155550100","ts":"2025-01-15T10:00:00Z","text":"Hello"})
    }

    fn failing_fields(result: Result<Message, Vec<FieldError>>) -> Vec<(String, &'static str)> {
        result.unwrap_err().into_iter().map(|e| (e.loc.join("."), e.kind)).collect()
    }

    #[test]
    fn accepts_the_reference_message() {
        let m = parse(valid()).unwrap();
        assert_eq!(m.message_id, "m1");
        assert_eq!(m.from.as_str(), "+919876543210");
        assert_eq!(m.to.as_str(), "+14155550100");
        assert_eq!(m.ts.as_str(), "2025-01-15T10:00:00Z");
        assert_eq!(hex::encode(m.ts.sort_key()), "0edf197e2000000000");
        assert_eq!(m.text.as_deref(), Some("Hello"));
    }

    #[test]
    fn text_is_optional_and_may_be_null_and_unknown_keys_are_ignored() {
        let mut v = valid();
        v.as_object_mut().unwrap().remove("text");
        v["extra"] = json!({"nested": [1, 2, 3]});
        assert_eq!(parse(v.clone()).unwrap().text, None);
        v["text"] = Value::Null;
        assert_eq!(parse(v).unwrap().text, None);
    }

    #[test]
    fn text_limit_counts_characters_not_bytes() {
        let mut v = valid();
        // 4096 four-byte characters: 16 KiB of UTF-8, still exactly at the limit.
        v["text"] = json!("😀".repeat(MAX_TEXT_CHARS));
        assert_eq!(parse(v.clone()).unwrap().text.unwrap().chars().count(), MAX_TEXT_CHARS);
        v["text"] = json!("é".repeat(MAX_TEXT_CHARS + 1));
        assert_eq!(failing_fields(parse(v)), [("body.text".to_owned(), "string_too_long")]);
        let mut v = valid();
        v["text"] = json!("a".repeat(MAX_TEXT_CHARS));
        assert!(parse(v).is_ok());
    }

    #[test]
    fn every_failing_field_is_named() {
        let v = json!({"message_id": "", "from": "919876543210", "to": 14155550100u64, "ts": "2025-01-15 10:00:00", "text": 5});
        assert_eq!(
            failing_fields(parse(v)),
            [
                ("body.message_id".to_owned(), "string_too_short"),
                ("body.from".to_owned(), "string_pattern_mismatch"),
                ("body.to".to_owned(), "string_type"),
                ("body.ts".to_owned(), "value_error"),
                ("body.text".to_owned(), "string_type"),
            ]
        );
        assert_eq!(
            failing_fields(parse(json!({}))),
            [
                ("body.message_id".to_owned(), "missing"),
                ("body.from".to_owned(), "missing"),
                ("body.to".to_owned(), "missing"),
                ("body.ts".to_owned(), "missing"),
            ]
        );
    }

    #[test]
    fn null_is_not_a_string_for_required_fields() {
        let mut v = valid();
        v["message_id"] = Value::Null;
        assert_eq!(failing_fields(parse(v)), [("body.message_id".to_owned(), "string_type")]);
    }

    #[test]
    fn bodies_that_are_not_json_objects_are_rejected() {
        for body in [&b""[..], b"{", b"[1,2]", b"\"s\"", b"null", b"42", b"\xff\xfe{}", b"{\"message_id\":\"\xff\"}"] {
            let errors = Message::parse(body).unwrap_err();
            assert_eq!(errors.len(), 1, "{body:?}");
            assert_eq!(errors[0].loc, ["body"], "{body:?}");
        }
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(Message::parse(deep.as_bytes()).unwrap_err()[0].kind, "json_invalid");
    }

    #[test]
    fn msisdn_is_plus_and_ascii_digits_only() {
        for ok in ["+1", "+919876543210"] {
            assert!(Msisdn::parse(ok).is_some(), "{ok}");
        }
        for bad in ["", "+", "1", "++1", "+1 ", " +1", "+1\n", "+１２", "+12a", "+-1"] {
            assert!(Msisdn::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn timestamps_follow_the_strict_utc_form() {
        for ok in [
            "2025-01-15T10:00:00Z",
            "2025-01-15T10:00:00.5Z",
            "2025-01-15T10:00:00.123456789Z",
            "2024-02-29T23:59:59Z",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999999Z",
        ] {
            assert!(Timestamp::parse(ok).is_some(), "{ok}");
        }
        for bad in [
            "",
            "2025-01-15T10:00:00",
            "2025-01-15T10:00:00z",
            "2025-01-15 10:00:00Z",
            "2025-01-15t10:00:00Z",
            "2025-01-15T10:00:00+00:00",
            "2025-01-15T10:00:00.Z",
            "2025-01-15T10:00:00.1234567890Z",
            "2025-02-30T10:00:00Z",
            "2023-02-29T10:00:00Z",
            "2025-13-01T10:00:00Z",
            "2025-01-15T24:00:00Z",
            "2025-01-15T10:60:00Z",
            "2025-01-15T23:59:60Z",
            "0000-01-01T00:00:00Z",
            "2025-1-15T10:00:00Z",
            "+025-01-15T10:00:00Z",
            " 2025-01-15T10:00:00Z",
            "2025-01-15T10:00:00Z ",
            "2025-01-15T10:00:00ZZ",
            "2025-01-15T10:00:0٣Z",
        ] {
            assert!(Timestamp::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn unix_seconds_become_utc_timestamps_up_to_year_9999() {
        let at = |s: u64| Timestamp::from_unix_seconds(s).map(|t| t.as_str().to_owned());
        assert_eq!(at(0).as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(at(1_736_935_200).as_deref(), Some("2025-01-15T10:00:00Z"));
        assert_eq!(at(253_402_300_799).as_deref(), Some("9999-12-31T23:59:59Z"));
        assert_eq!(at(253_402_300_800), None);
        assert_eq!(at(u64::MAX), None);
    }

    #[test]
    fn sort_key_orders_chronologically() {
        let key = |s: &str| Timestamp::parse(s).unwrap().sort_key().to_owned();
        let keys: Vec<Vec<u8>> = [
            "0001-01-01T00:00:00Z",
            "1969-12-31T23:59:59.999999999Z",
            "2025-01-15T10:00:00Z",
            "2025-01-15T10:00:00.05Z",
            "2025-01-15T10:00:00.5Z",
            "2025-01-15T10:00:01Z",
            "9999-12-31T23:59:59.999999999Z",
        ]
        .into_iter()
        .map(key)
        .collect();
        assert!(keys.windows(2).all(|pair| pair[0] < pair[1]), "{keys:?}");
        assert_eq!(keys[0], [0; 9]);
        assert_eq!(key("2025-01-15T10:00:00.5Z"), key("2025-01-15T10:00:00.500000000Z"));
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// An independent statement of the `ts` rule: the strict shape, then chrono's calendar.
    fn reference_accepts(s: &str) -> bool {
        let Some(body) = s.strip_suffix('Z') else { return false };
        let (main, fraction) = body.split_once('.').unwrap_or((body, ""));
        let shape_ok = main.len() == 19
            && main.bytes().enumerate().all(|(i, b)| match i {
                4 | 7 => b == b'-',
                10 => b == b'T',
                13 | 16 => b == b':',
                _ => b.is_ascii_digit(),
            })
            && (body.len() == 19 || (1..=9).contains(&fraction.len()) && fraction.bytes().all(|b| b.is_ascii_digit()));
        shape_ok
            && !main.starts_with("0000")
            && chrono::NaiveDateTime::parse_from_str(main, "%Y-%m-%dT%H:%M:%S").is_ok_and(|t| {
                use chrono::Timelike;
                t.nanosecond() < 1_000_000_000
            })
    }

    /// A valid `ts` anywhere in years 1 to 9999, with a fraction of any length or none.
    fn instant() -> impl Strategy<Value = String> {
        let date = (1u32..=9999, 1u32..=12, 1u32..=28, 0u32..24, 0u32..60, 0u32..60);
        (date, proptest::option::of("[0-9]{1,9}")).prop_map(|((y, mo, d, h, mi, s), fraction)| {
            let fraction = fraction.map(|f| format!(".{f}")).unwrap_or_default();
            format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{fraction}Z")
        })
    }

    proptest! {
        #[test]
        fn no_byte_sequence_panics_the_parser(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Message::parse(&body);
        }

        #[test]
        fn timestamps_are_accepted_exactly_when_the_rule_says(
            s in "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,10})?Z?|.{0,30}"
        ) {
            prop_assert_eq!(Timestamp::parse(&s).is_some(), reference_accepts(&s), "{:?}", s);
        }

        /// Keys compare as the instants do, by chrono's reckoning.
        #[test]
        fn sort_keys_order_as_the_instants(a in instant(), b in instant()) {
            let (ka, kb) = (Timestamp::parse(&a).unwrap(), Timestamp::parse(&b).unwrap());
            let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap();
            prop_assert_eq!(ka.sort_key().cmp(kb.sort_key()), at(&a).cmp(&at(&b)), "{:?} {:?}", a, b);
        }

        #[test]
        fn valid_messages_round_trip(
            id in "\\PC{1,40}",
            from in "\\+[0-9]{1,15}",
            text in proptest::option::of("\\PC{0,200}"),
        ) {
            let body = serde_json::json!({"message_id": id, "from": from, "to": "+1", "ts": "2025-01-15T10:00:00Z", "text": text});
            let m = Message::parse(body.to_string().as_bytes()).unwrap();
            prop_assert_eq!((m.message_id, m.from.as_str().to_owned(), m.text), (id, from, text));
        }

        #[test]
        fn messages_are_accepted_exactly_when_spec_section_2_says(
            id in field_value(),
            from in field_value(),
            to in field_value(),
            ts in field_value(),
            text in field_value(),
        ) {
            let mut object = serde_json::Map::new();
            for (name, value) in [("message_id", &id), ("from", &from), ("to", &to), ("ts", &ts), ("text", &text)] {
                if let Some(value) = value {
                    object.insert(name.to_owned(), value.clone());
                }
            }
            let string = |v: &Option<Value>| v.as_ref().and_then(Value::as_str).map(str::to_owned);
            let msisdn = |v: &Option<Value>| string(v).is_some_and(|s| {
                s.strip_prefix('+').is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
            });
            let mut rejected = Vec::new();
            if string(&id).is_none_or(|s| s.is_empty()) { rejected.push("message_id") }
            if !msisdn(&from) { rejected.push("from") }
            if !msisdn(&to) { rejected.push("to") }
            if !string(&ts).is_some_and(|s| reference_accepts(&s)) { rejected.push("ts") }
            let text_ok = match &text {
                None | Some(Value::Null) => true,
                Some(Value::String(s)) => s.chars().count() <= MAX_TEXT_CHARS,
                Some(_) => false,
            };
            if !text_ok { rejected.push("text") }

            match Message::parse(Value::Object(object).to_string().as_bytes()) {
                Ok(_) => prop_assert!(rejected.is_empty(), "accepted, but {:?} break the rules", rejected),
                Err(errors) => {
                    let named: Vec<&str> = errors.iter().map(|e| e.loc[1]).collect();
                    prop_assert_eq!(named, rejected);
                }
            }
        }
    }

    /// A field's value: missing, or valid, or broken in one of the ways a client breaks it.
    fn field_value() -> impl Strategy<Value = Option<Value>> {
        prop_oneof![
            Just(None),
            Just(Some(Value::Null)),
            any::<i64>().prop_map(|n| Some(Value::from(n))),
            Just(Some(serde_json::json!(["+1"]))),
            "\\+[0-9]{1,15}".prop_map(|s| Some(Value::from(s))),
            "\\+?[0-9 a\n]{0,6}".prop_map(|s| Some(Value::from(s))),
            "20[0-9]{2}-(0[1-9]|1[0-2])-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9](\\.[0-9]{1,10})?(Z|z|\\+01:00)?"
                .prop_map(|s| Some(Value::from(s))),
            "\\PC{0,20}".prop_map(|s| Some(Value::from(s))),
            (4090usize..4100).prop_map(|n| Some(Value::from("é".repeat(n)))),
        ]
    }
}
