//! The statements that write, the same on both back ends: a delivery's insert and the readiness probe.

use super::session::Session;
use super::Inserted;
use crate::message::Message;
use crate::query::fold_case;

/// One `INSERT … ON CONFLICT (message_id) DO NOTHING`: idempotent through the primary key, whoever else
/// writes the same id at the same moment.
pub async fn insert_row(conn: &Session, created_at: &str, m: &Message) -> Result<Inserted, libsql::Error> {
    let folded = m.text.as_deref().map(fold_case);
    let mut inserted = conn
        .query(
            "INSERT INTO messages (message_id, from_msisdn, to_msisdn, ts, text, created_at, ts_key, text_folded) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (message_id) DO NOTHING RETURNING rowid",
            (
                m.message_id.as_str(),
                m.from.as_str(),
                m.to.as_str(),
                m.ts.as_str(),
                m.text.as_deref(),
                created_at,
                m.ts.sort_key(),
                folded.as_deref(),
            ),
        )
        .await?;
    // A row comes back only when one was inserted; a duplicate returns none.
    let rowid = inserted.next().await?.map(|row| row.get::<i64>(0)).transpose()?;
    Ok(if rowid.is_some() { Inserted::Created } else { Inserted::Duplicate })
}

/// Rewrites the probe row in a transaction of its own: a write that must commit for the service to call
/// itself ready.
pub async fn write_probe(conn: &Session) -> Result<(), libsql::Error> {
    conn.write_transaction(|| conn.run("UPDATE write_probe SET checked_at = ? WHERE id = 1", [now()])).await
}

/// `created_at`: the current UTC time with milliseconds.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
