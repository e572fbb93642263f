//! Decoding columns into values, in one place.
//!
//! Text columns are selected as `CAST(column AS BLOB)`: libsql converts TEXT values through a C string, so
//! it cuts them at the first NUL character (which a message may legitimately contain) and panics on invalid
//! UTF-8 (which a database written by another program may hold). As a BLOB the value arrives with its exact
//! length.

use libsql::Value;
use serde_json::value::RawValue;

use super::types::{StoreError, StoredMessage};

/// The rows a statement returned, as their column values, in one vector (one allocation for a page rather
/// than one per row).
pub struct Table {
    columns: usize,
    values: Vec<Value>,
}

impl Table {
    /// Rows of equal length, as a server's answer holds them.
    #[cfg(feature = "remote")]
    pub fn from_rows(rows: Vec<Vec<Value>>) -> Table {
        let columns = rows.first().map_or(0, Vec::len);
        Table { columns, values: rows.into_iter().flatten().collect() }
    }

    /// Rows of `columns` values each, in one vector.
    #[cfg(test)]
    pub fn from_values(columns: usize, values: Vec<Value>) -> Table {
        Table { columns, values }
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub fn first(&self) -> Option<&[Value]> {
        self.rows().next()
    }

    pub fn rows(&self) -> impl Iterator<Item = &[Value]> {
        self.values.chunks_exact(self.columns.max(1))
    }

    pub fn rows_mut(&mut self) -> impl Iterator<Item = &mut [Value]> {
        self.values.chunks_exact_mut(self.columns.max(1))
    }
}

/// Every row of a local query.
pub async fn collect(mut rows: libsql::Rows) -> Result<Table, libsql::Error> {
    let columns = rows.column_count();
    let mut values = Vec::new();
    while let Some(row) = rows.next().await? {
        for i in 0..columns {
            values.push(row.get_value(i)?);
        }
    }
    Ok(Table { columns: columns.max(0) as usize, values })
}

/// The columns [`stored_message`] decodes, in its order.
pub const MESSAGE_COLUMNS: &str = "CAST(message_id AS BLOB), CAST(from_msisdn AS BLOB), CAST(to_msisdn AS BLOB), \
     CAST(ts AS BLOB), CAST(text AS BLOB)";

/// The message in `row[at..]`, selected with [`MESSAGE_COLUMNS`] (taken out of the row).
pub fn stored_message(row: &mut [Value], at: usize) -> Result<StoredMessage, StoreError> {
    Ok(StoredMessage {
        message_id: text(row, at)?,
        from: text(row, at + 1)?,
        to: text(row, at + 2)?,
        ts: text(row, at + 3)?,
        text: optional_text(row, at + 4)?,
    })
}

/// A nullable text column selected as a BLOB (taken out of the row).
pub fn optional_text(row: &mut [Value], idx: usize) -> Result<Option<String>, StoreError> {
    let slot = row.get_mut(idx).ok_or_else(|| StoreError::Unexpected("a row has fewer columns than selected"))?;
    let value = std::mem::replace(slot, Value::Null);
    match value {
        Value::Blob(bytes) => {
            Ok(Some(String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())))
        }
        Value::Text(s) => Ok(Some(s)),
        Value::Null => Ok(None),
        _ => Err(StoreError::Unexpected("a text column holds another type")),
    }
}

/// A nullable column of JSON text selected as a BLOB (taken out of the row); none for NULL, for `''` and for
/// text that is not JSON (a row another program wrote).
pub fn optional_json(row: &mut [Value], idx: usize) -> Result<Option<Box<RawValue>>, StoreError> {
    Ok(optional_text(row, idx)?.and_then(|json| RawValue::from_string(json).ok()))
}

/// A NOT NULL text column selected as a BLOB (taken out of the row).
pub fn text(row: &mut [Value], idx: usize) -> Result<String, StoreError> {
    optional_text(row, idx)?.ok_or_else(|| StoreError::Unexpected("a NOT NULL text column is NULL"))
}

/// A count or other non-negative integer column.
pub fn count(row: &[Value], idx: usize) -> Result<u64, StoreError> {
    u64::try_from(integer(row, idx)?).map_err(|_| StoreError::Unexpected("a count is negative"))
}

/// An integer column.
pub fn integer(row: &[Value], idx: usize) -> Result<i64, StoreError> {
    match column(row, idx)? {
        Value::Integer(n) => Ok(*n),
        _ => Err(StoreError::Unexpected("an integer column holds another type")),
    }
}

/// Whether the column is NULL.
pub fn is_null(row: &[Value], idx: usize) -> Result<bool, StoreError> {
    Ok(matches!(column(row, idx)?, Value::Null))
}

fn column(row: &[Value], idx: usize) -> Result<&Value, StoreError> {
    row.get(idx).ok_or_else(|| StoreError::Unexpected("a row has fewer columns than selected"))
}
