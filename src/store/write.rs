//! The statements that write, the same on every back end: a delivery's insert and the readiness probe.

use libsql::Value;

use super::session::Session;
use crate::message::fold_case;
use crate::message::Message;

/// `INSERT … ON CONFLICT (message_id) DO NOTHING`: idempotent through the primary key, whoever else writes
/// the same id at the same moment. A row back means created, none means duplicate. (Read as a query: on a
/// local connection libsql's `execute` of a cached statement costs more than stepping it as a query.)
pub const INSERT_MESSAGE: &str = "INSERT INTO messages \
     (message_id, from_msisdn, to_msisdn, ts, text, created_at, ts_key, text_folded, message_type, raw, contact, \
     metadata) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) ON CONFLICT (message_id) DO NOTHING RETURNING rowid";

/// The arguments of [`INSERT_MESSAGE`] for `m`, stored at `created_at`.
pub fn insert_args(created_at: &str, m: &Message) -> Vec<Value> {
    let text = |s: Option<&str>| s.map_or(Value::Null, |s| Value::Text(s.to_owned()));
    vec![
        m.message_id.clone().into(),
        m.from.as_str().to_owned().into(),
        m.to.as_str().to_owned().into(),
        m.ts.as_str().to_owned().into(),
        text(m.text.as_deref()),
        created_at.to_owned().into(),
        Value::Blob(m.ts.sort_key().to_vec()),
        text(m.text.as_deref().and_then(|t| folded_apart(t, fold_case(t))).as_deref()),
        text(m.message_type.as_deref()),
        text(m.received.raw.as_deref()),
        text(m.received.contact.as_deref()),
        text(m.received.metadata.as_deref()),
    ]
}

/// What a row's `text_folded` holds for `text`, whose folded text is `folded`: nothing where SQL's `lower()`,
/// which folds ASCII letters only, gives it ([`super::schema::folded_text!`] reads it back either way).
pub fn folded_apart(text: &str, folded: String) -> Option<String> {
    let lower =
        folded.len() == text.len() && folded.bytes().zip(text.bytes()).all(|(f, t)| f == t.to_ascii_lowercase());
    (!lower).then_some(folded)
}

/// The probe row's update: a write that must commit for the service to call itself ready.
pub const WRITE_PROBE: &str = "UPDATE write_probe SET checked_at = ?1 WHERE id = 1";

/// Rewrites the probe row in a transaction of its own.
pub async fn write_probe(conn: &Session) -> Result<(), libsql::Error> {
    conn.write_transaction(|| conn.run(WRITE_PROBE, [now()])).await
}

/// `created_at`: the current UTC time with milliseconds.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::schema::folded_text;

    /// What a row keeps, read back as every search reads it, is the text's folded text, whatever its letters:
    /// SQL's `lower()` folds what the row leaves out.
    #[tokio::test]
    async fn every_texts_folded_text_reads_back() {
        let conn = libsql::Builder::new_local(":memory:").build().await.unwrap().connect().unwrap();
        let texts = ["plain", "MiXeD ASCII", "ÉTÉ", "été", "\u{212A} kelvin", "İstanbul", "ǅ", "ΣΑΣ", "NUL\0In", ""];
        for text in texts {
            let kept = folded_apart(text, fold_case(text));
            let args = vec![kept.map_or(Value::Null, Value::Text), Value::Text(text.to_owned())];
            // As a blob, which a text with a NUL arrives whole as.
            let read = folded_text!().replace("text_folded", "?1").replace("(text)", "(?2)");
            let mut rows = conn.query(&format!("SELECT CAST({read} AS BLOB)"), args).await.unwrap();
            let read = rows.next().await.unwrap().unwrap().get::<Vec<u8>>(0).unwrap();
            assert_eq!(read, fold_case(text).into_bytes(), "{text:?}");
        }
        let kept: Vec<bool> = texts.iter().map(|text| folded_apart(text, fold_case(text)).is_some()).collect();
        assert_eq!(kept, [false, false, true, false, true, true, true, true, false, false]);
    }
}
