//! JSON as this service accepts it: I-JSON (RFC 7493), so an object may name each key once.
//!
//! Parsers disagree on which of two equal keys wins, and a signed body that two systems read differently
//! is a known source of security bugs, so a duplicate is refused rather than resolved.

use std::cell::RefCell;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

#[derive(Debug)]
pub enum JsonError {
    /// Not JSON at all.
    Syntax(serde_json::Error),
    /// An object names this key twice.
    DuplicateKey(String),
}

/// Parses `body` as one JSON value, refusing duplicate keys in any object at any depth.
pub fn parse(body: &[u8]) -> Result<Value, JsonError> {
    let duplicate = RefCell::new(None);
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let parsed = Strict(&duplicate).deserialize(&mut deserializer).and_then(|value| {
        deserializer.end()?;
        Ok(value)
    });
    match (parsed, duplicate.into_inner()) {
        (_, Some(key)) => Err(JsonError::DuplicateKey(key)),
        (Ok(value), None) => Ok(value),
        (Err(e), None) => Err(JsonError::Syntax(e)),
    }
}

/// Builds a [`Value`] as serde_json would, and records the first duplicate key it meets.
#[derive(Clone, Copy)]
struct Strict<'a>(&'a RefCell<Option<String>>);

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(n.into())
    }

    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(n.into())
    }

    fn visit_f64<E>(self, n: f64) -> Result<Value, E> {
        Ok(n.into())
    }

    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                *self.0.borrow_mut() = Some(key);
                return Err(de::Error::custom("duplicate key"));
            }
            let value = map.next_value_seed(self)?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn duplicate(body: &str) -> Option<String> {
        match parse(body.as_bytes()) {
            Err(JsonError::DuplicateKey(key)) => Some(key),
            _ => None,
        }
    }

    #[test]
    fn duplicates_are_found_at_any_depth() {
        assert_eq!(duplicate(r#"{"message_id":"a","message_id":"b"}"#).as_deref(), Some("message_id"));
        assert_eq!(duplicate(r#"{"a":[{"x":1,"y":2,"x":3}]}"#).as_deref(), Some("x"));
        // Escapes name the same key.
        assert_eq!(duplicate(r#"{"to":1,"\u0074o":2}"#).as_deref(), Some("to"));
        assert_eq!(duplicate(r#"{"a":{"b":1},"b":{"a":1}}"#), None);
    }

    #[test]
    fn everything_else_parses_as_serde_json_does() {
        for body in [r#"{"a":1.5,"b":[null,true,-3,18446744073709551615],"c":"\u00e9"}"#, "[]", "\"x\"", " 7 "] {
            let expected: Value = serde_json::from_str(body).unwrap();
            assert_eq!(parse(body.as_bytes()).unwrap(), expected, "{body}");
        }
        for bad in ["", "{", r#"{"a":1}x"#, "[1,]", "\"\\ud800\""] {
            let theirs = serde_json::from_str::<Value>(bad).unwrap_err().to_string();
            match parse(bad.as_bytes()) {
                Err(JsonError::Syntax(ours)) => assert_eq!(ours.to_string(), theirs, "{bad:?}"),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }
}
