//! The reads that are no listing, each one statement (one snapshot, and on a libSQL server one round trip):
//! the stats, from the aggregates the schema's triggers keep, and one message by its id.

use libsql::Value;
use serde_json::value::RawValue;

use super::rows::{self, Table, MESSAGE_COLUMNS};
use super::types::{Query, ReceivedMessage, SenderCount, Stats, StoreError, Tables};
use crate::message::canonical_json;

/// The columns of a message with what arrived, as [`message_of`] decodes them.
const RECEIVED_COLUMNS: &str = "CAST(message_type AS BLOB), CAST(raw AS BLOB), CAST(contact AS BLOB), \
     CAST(metadata AS BLOB)";

/// The statement that reads the message stored under `message_id`, where it may be.
pub fn message(tables: Tables, message_id: &str) -> Query {
    let one = |table: &str| format!("SELECT {MESSAGE_COLUMNS}, {RECEIVED_COLUMNS} FROM {table} WHERE message_id = ?1");
    let sql = match tables {
        Tables::Messages => one("messages"),
        #[cfg(feature = "remote")]
        Tables::WithInbox => format!("{} UNION ALL {} LIMIT 1", one("messages"), one("inbox")),
    };
    Query { sql, args: vec![Value::Text(message_id.to_owned())] }
}

/// The message in the rows of [`message`], if there is one. A `raw` of NULL is the message's canonical JSON,
/// rebuilt; `''` is not known.
pub fn message_of(mut rows: Table) -> Result<Option<ReceivedMessage>, StoreError> {
    let Some(row) = rows.rows_mut().next() else { return Ok(None) };
    let message = rows::stored_message(row, 0)?;
    let raw = match rows::optional_text(row, 6)? {
        None => {
            let m = &message;
            RawValue::from_string(canonical_json(&m.message_id, &m.from, &m.to, &m.ts, m.text.as_deref())).ok()
        }
        Some(raw) => RawValue::from_string(raw).ok(),
    };
    Ok(Some(ReceivedMessage {
        message_type: rows::optional_text(row, 5)?,
        raw,
        contact: rows::optional_json(row, 7)?,
        metadata: rows::optional_json(row, 8)?,
        message,
    }))
}

/// The statement that reads everything `/stats` says, from the aggregates the insert trigger keeps (no scan
/// of messages): totals, the top ten senders as a JSON array, the first and last timestamps. With the inbox,
/// its few rows are added, which the aggregates do not count yet: a sender among the top ten is in the
/// inbox, or among the top ten of those who are not, and so among the top `10 + (senders in the inbox)` of
/// the aggregates.
pub fn stats(tables: Tables) -> Query {
    let sql = match tables {
        Tables::Messages => {
            "SELECT messages, senders, \
             CAST((SELECT json_group_array(json_array(from_msisdn, count)) FROM (SELECT from_msisdn, count \
                FROM sender_counts ORDER BY count DESC, from_msisdn ASC LIMIT 10)) AS BLOB), \
             (SELECT CAST(ts AS BLOB) FROM messages ORDER BY ts_key, message_id LIMIT 1), \
             (SELECT CAST(ts AS BLOB) FROM messages ORDER BY ts_key DESC, message_id DESC LIMIT 1), \
             (SELECT CAST(json_group_object(status, count) AS BLOB) FROM status_counts) \
             FROM totals"
        }
        #[cfg(feature = "remote")]
        Tables::WithInbox => {
            "WITH arriving AS (SELECT from_msisdn, count(*) AS count FROM inbox GROUP BY from_msisdn), \
             contenders AS (SELECT from_msisdn FROM (SELECT from_msisdn FROM sender_counts \
                ORDER BY count DESC, from_msisdn LIMIT 10 + (SELECT count(*) FROM arriving)) \
                UNION SELECT from_msisdn FROM arriving), \
             top AS (SELECT from_msisdn, \
                coalesce((SELECT count FROM sender_counts AS s WHERE s.from_msisdn = c.from_msisdn), 0) \
                + coalesce((SELECT count FROM arriving AS a WHERE a.from_msisdn = c.from_msisdn), 0) AS count \
                FROM contenders AS c ORDER BY count DESC, from_msisdn LIMIT 10) \
             SELECT messages + (SELECT count(*) FROM inbox), \
             senders + (SELECT count(*) FROM arriving AS a \
                WHERE NOT EXISTS (SELECT 1 FROM sender_counts AS s WHERE s.from_msisdn = a.from_msisdn)), \
             CAST((SELECT json_group_array(json_array(from_msisdn, count)) FROM top) AS BLOB), \
             (SELECT CAST(ts AS BLOB) FROM (SELECT ts, ts_key, message_id FROM \
                (SELECT ts, ts_key, message_id FROM messages ORDER BY ts_key, message_id LIMIT 1) \
                UNION ALL SELECT ts, ts_key, message_id FROM inbox ORDER BY ts_key, message_id LIMIT 1)), \
             (SELECT CAST(ts AS BLOB) FROM (SELECT ts, ts_key, message_id FROM \
                (SELECT ts, ts_key, message_id FROM messages ORDER BY ts_key DESC, message_id DESC LIMIT 1) \
                UNION ALL SELECT ts, ts_key, message_id FROM inbox ORDER BY ts_key DESC, message_id DESC LIMIT 1)), \
             (SELECT CAST(json_group_object(status, count) AS BLOB) FROM status_counts) \
             FROM totals"
        }
    };
    Query { sql: sql.to_owned(), args: Vec::new() }
}

/// The stats in the row of [`stats`].
pub fn stats_of(mut rows: Table) -> Result<Stats, StoreError> {
    let row = rows.rows_mut().next().ok_or(StoreError::Unexpected("the totals row is missing"))?;
    let senders = rows::text(row, 2)?;
    let mut senders: Vec<(String, u64)> =
        serde_json::from_str(&senders).map_err(|_| StoreError::Unexpected("the top senders are not a JSON array"))?;
    // An aggregate's order is SQLite's to choose; the contract's is most messages first, then by sender.
    senders.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(Stats {
        total_messages: rows::count(row, 0)?,
        senders_count: rows::count(row, 1)?,
        messages_per_sender: senders.into_iter().map(|(from, count)| SenderCount { from, count }).collect(),
        first_message_ts: rows::optional_text(row, 3)?,
        last_message_ts: rows::optional_text(row, 4)?,
        statuses_by_status: serde_json::from_str(&rows::text(row, 5)?)
            .map_err(|_| StoreError::Unexpected("the status counts are not a JSON object"))?,
    })
}
