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
        text(m.text.as_deref().map(fold_case).as_deref()),
        text(m.message_type.as_deref()),
        text(m.received.raw.as_deref()),
        text(m.received.contact.as_deref()),
        text(m.received.metadata.as_deref()),
    ]
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
