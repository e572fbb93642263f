//! Decoding columns and rows into values, in one place.
//!
//! Text columns are selected as `CAST(column AS BLOB)`: libsql converts TEXT values through a C string, so
//! it cuts them at the first NUL character (which a message may legitimately contain) and panics on invalid
//! UTF-8 (which a database written by another program may hold). As a BLOB the value arrives with its exact
//! length.

use libsql::{Row, Value};

use super::{StoreError, StoredMessage};

/// The columns [`stored_message`] decodes, in its order; a query may select more after them.
pub const MESSAGE_COLUMNS: &str = "CAST(message_id AS BLOB), CAST(from_msisdn AS BLOB), CAST(to_msisdn AS BLOB), \
     CAST(ts AS BLOB), CAST(text AS BLOB)";

/// A row selected with [`MESSAGE_COLUMNS`] first.
pub fn stored_message(row: &Row) -> Result<StoredMessage, StoreError> {
    Ok(StoredMessage {
        message_id: text(row, 0)?,
        from: text(row, 1)?,
        to: text(row, 2)?,
        ts: text(row, 3)?,
        text: optional_text(row, 4)?,
    })
}

/// A nullable text column selected as a BLOB.
pub fn optional_text(row: &Row, idx: i32) -> Result<Option<String>, StoreError> {
    match row.get_value(idx)? {
        Value::Blob(bytes) => {
            Ok(Some(String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())))
        }
        Value::Text(s) => Ok(Some(s)),
        Value::Null => Ok(None),
        _ => Err(StoreError::Unexpected("a text column holds another type")),
    }
}

/// A NOT NULL text column selected as a BLOB.
pub fn text(row: &Row, idx: i32) -> Result<String, StoreError> {
    optional_text(row, idx)?.ok_or(StoreError::Unexpected("a NOT NULL text column is NULL"))
}

/// A count or other non-negative integer column.
pub fn count(row: &Row, idx: i32) -> Result<u64, StoreError> {
    Ok(row.get::<u64>(idx)?)
}
