//! WhatsApp delivery statuses: the statement that stores a delivery's statuses, the same on every back end,
//! and the listing of `GET /statuses`.
//!
//! Statuses go straight into their table (a server's deliveries of messages go through the inbox instead, to
//! keep the indexes of `messages` out of each commit): they are fewer pages, and no read has to look in two
//! places for them.

use std::collections::HashSet;

use libsql::Value;

use super::rows::{self, Table};
use super::types::{Inserted, Query, StatusPage, StoreError, StoredStatus};
use crate::query::StatusParams;
use crate::status::Status;

/// Stores each status of a JSON array of [`row`]s in ?1, stored at ?2, in order, unless one with its
/// (`message_id`, `status`, `ts`) is stored: one statement whatever their number. Returns the keys it added.
const INSERT: &str = "INSERT INTO statuses \
     (message_id, status, ts, recipient_id, errors, conversation, pricing, raw, created_at) \
     SELECT s.value ->> 0, s.value ->> 1, s.value ->> 2, s.value ->> 3, s.value ->> 4, s.value ->> 5, \
     s.value ->> 6, s.value ->> 7, ?2 FROM json_each(?1) AS s WHERE true \
     ON CONFLICT (message_id, status, ts) DO NOTHING \
     RETURNING CAST(message_id AS BLOB), CAST(status AS BLOB), CAST(ts AS BLOB)";

/// The statement that stores `statuses`, stored at `created_at`.
pub fn delivery(created_at: &str, statuses: &[Status]) -> Query {
    let rows: Vec<serde_json::Value> = statuses.iter().map(|s| serde_json::Value::from(row(s).to_vec())).collect();
    let json = serde_json::Value::Array(rows).to_string();
    Query { sql: INSERT.to_owned(), args: vec![Value::Text(json), Value::Text(created_at.to_owned())] }
}

fn row(status: &Status) -> [Option<String>; 8] {
    [
        Some(status.message_id.clone()),
        Some(status.status.clone()),
        Some(status.ts.as_str().to_owned()),
        status.recipient_id.clone(),
        status.errors.clone(),
        status.conversation.clone(),
        status.pricing.clone(),
        Some(status.raw.clone()),
    ]
}

/// Each status's outcome, from the keys [`delivery`] returned: created for the first of a key it added,
/// duplicate for the rest (stored before, or earlier in the same delivery).
pub fn outcomes(statuses: &[Status], mut added: Table) -> Result<Vec<Inserted>, StoreError> {
    let mut created = HashSet::new();
    for row in added.rows_mut() {
        created.insert((rows::text(row, 0)?, rows::text(row, 1)?, rows::text(row, 2)?));
    }
    Ok(statuses
        .iter()
        .map(|s| match created.remove(&(s.message_id.clone(), s.status.clone(), s.ts.as_str().to_owned())) {
            true => Inserted::Created,
            false => Inserted::Duplicate,
        })
        .collect())
}

/// The page `params` asks for, led by the number of statuses matching its filters, in one statement: one
/// row per status, or one row of the total alone past the end. ?1 is the message id, ?2 the status, ?3 and
/// ?4 the limit and offset. Totals come from the counts the triggers keep, but for one message's statuses,
/// which are few.
pub fn page(params: &StatusParams) -> Query {
    let (filter, total) = match (&params.message_id, &params.status) {
        (None, None) => ("", "(SELECT coalesce(sum(count), 0) FROM status_counts)"),
        (None, Some(_)) => ("WHERE status = ?2", "coalesce((SELECT count FROM status_counts WHERE status = ?2), 0)"),
        (Some(_), None) => ("WHERE message_id = ?1", "(SELECT count(*) FROM statuses WHERE message_id = ?1)"),
        (Some(_), Some(_)) => (
            "WHERE message_id = ?1 AND status = ?2",
            "(SELECT count(*) FROM statuses WHERE message_id = ?1 AND status = ?2)",
        ),
    };
    let sql = format!(
        "SELECT t.total, p.* FROM (SELECT {total} AS total) AS t LEFT JOIN (SELECT ts AS sort_ts, rowid AS seq, \
         CAST(message_id AS BLOB), CAST(status AS BLOB), CAST(ts AS BLOB), CAST(recipient_id AS BLOB), \
         CAST(errors AS BLOB), CAST(conversation AS BLOB), CAST(pricing AS BLOB), CAST(raw AS BLOB) \
         FROM statuses {filter} ORDER BY ts, rowid LIMIT ?3 OFFSET ?4) AS p ORDER BY p.sort_ts, p.seq"
    );
    let text = |value: &Option<String>| value.clone().map_or(Value::Null, Value::Text);
    let args = vec![
        text(&params.message_id),
        text(&params.status),
        Value::Integer(i64::from(params.limit)),
        Value::Integer(i64::try_from(params.offset).unwrap_or(i64::MAX)),
    ];
    Query { sql, args }
}

/// The page in the rows of [`page`].
pub fn page_of(mut table: Table) -> Result<StatusPage, StoreError> {
    let mut total = 0;
    let mut data = Vec::new();
    for row in table.rows_mut() {
        total = rows::count(row, 0)?;
        // The row of the total alone, past the end: the join found no status.
        if rows::is_null(row, 2)? {
            continue;
        }
        data.push(StoredStatus {
            message_id: rows::text(row, 3)?,
            status: rows::text(row, 4)?,
            ts: rows::text(row, 5)?,
            recipient_id: rows::optional_text(row, 6)?,
            errors: rows::optional_json(row, 7)?,
            conversation: rows::optional_json(row, 8)?,
            pricing: rows::optional_json(row, 9)?,
            raw: rows::optional_json(row, 10)?,
        });
    }
    Ok(StatusPage { data, total })
}
