//! Where a libSQL server's deliveries land: `inbox`, a small table that every read also reads.
//!
//! Many instances share one server, so every delivery is a commit of its own, and what a commit costs the
//! server is the pages it changes: each goes to the server's log and its write-ahead log, and later into the
//! database file. A row of `messages` changes a page of the table, of the primary key, of both ordering
//! indexes, of the aggregates and of the text index, most of them in random places. A row of `inbox` changes
//! two pages, the same two as the delivery before. So a delivery is one statement that adds its messages
//! to `inbox` (unless their ids are stored already, in either table), and the delivery that fills it to
//! 256 rows moves all of them into `messages`, the aggregates and the text index, inside its own
//! statement (the schema's trigger `inbox_full`): their pages are written once for the lot, and nothing
//! runs in the background, which a Lambda instance, frozen between requests, would never run.
//!
//! One statement, not a transaction of several: it holds the server's write lock for the shortest time, and
//! a retry after a lost answer finds its rows and answers them as duplicates.
//!
//! Rows in `inbox` are newer than every row of `messages`, and they get the next rowids when they move, in
//! the order they arrived. So every watermark over `messages` (the text index's, a remembered count's) has
//! every inbox row past it, and reads add them as rows past every watermark (the listings of
//! `search/listing.rs` and the stats of `read.rs`). A local file's writer commits many deliveries at once and
//! writes `messages` directly, so its inbox stays empty.

use libsql::Value;

use super::rows::{self, Table};
use super::search_index;
use super::types::{Inserted, Query};
use super::write::folded_apart;
use crate::message::fold_case;
use crate::message::Message;

/// Adds the message in ?1 to ?13 (the columns of [`row`], in order) unless its id is stored in either table.
/// The check and the insert are one statement under the server's write lock, and the primary keys decide:
/// inbox's against a concurrent delivery of the same id, messages' when the rows move. Returns the id it
/// added, if it did.
const ONE: &str = "INSERT INTO inbox \
     (message_id, from_msisdn, to_msisdn, ts, text, created_at, ts_key, text_folded, message_type, text_indexed, \
     raw, contact, metadata) \
     SELECT ?1, ?2, ?3, ?4, ?5, ?6, unhex(?7), ?8, ?9, ?10, ?11, ?12, ?13 WHERE NOT EXISTS (SELECT 1 FROM messages WHERE message_id = ?1) \
     ON CONFLICT (message_id) DO NOTHING RETURNING CAST(message_id AS BLOB)";

/// [`ONE`] for each message of a JSON array of [`row`]s in ?1, stored at ?2, in order: one statement whatever
/// their number (a WhatsApp delivery may hold many).
const MANY: &str = "INSERT INTO inbox \
     (message_id, from_msisdn, to_msisdn, ts, text, created_at, ts_key, text_folded, message_type, text_indexed, \
     raw, contact, metadata) \
     SELECT m.value ->> 0, m.value ->> 1, m.value ->> 2, m.value ->> 3, m.value ->> 4, ?2, unhex(m.value ->> 5), \
     m.value ->> 6, m.value ->> 7, m.value ->> 8, m.value ->> 9, m.value ->> 10, m.value ->> 11 FROM json_each(?1) AS m \
     WHERE NOT EXISTS (SELECT 1 FROM messages WHERE message_id = m.value ->> 0) \
     ON CONFLICT (message_id) DO NOTHING RETURNING CAST(message_id AS BLOB)";

/// The statement that stores `messages`, stored at `created_at`: one statement, whatever their number. One
/// message (every `POST /webhook`) takes plain arguments, which a server prepares and runs for less than a
/// JSON array.
pub fn delivery(created_at: &str, messages: &[Message]) -> Query {
    if let [message] = messages {
        let mut args: Vec<Value> = row(message).into_iter().map(value).collect();
        args.insert(5, Value::Text(created_at.to_owned()));
        return Query { sql: ONE.to_owned(), args };
    }
    let rows: Vec<serde_json::Value> = messages.iter().map(|m| serde_json::Value::from(row(m).to_vec())).collect();
    let json = serde_json::Value::Array(rows).to_string();
    Query { sql: MANY.to_owned(), args: vec![Value::Text(json), Value::Text(created_at.to_owned())] }
}

/// One message's columns as the statements take them, but for when it is stored, with the sort key in hex (a
/// JSON array holds no bytes; the statements turn it back) and the folded text only where `lower()` does not
/// give it ([`folded_apart`]). The text the index takes is given only when it differs from the folded text
/// (a NUL in it, which the index cannot read), so the trigger cannot make it itself.
fn row(message: &Message) -> [Option<String>; 12] {
    let folded = message.text.as_deref().map(fold_case);
    let indexed = folded.as_deref().map(search_index::indexable).filter(|indexed| Some(indexed) != folded.as_ref());
    [
        Some(message.message_id.clone()),
        Some(message.from.as_str().to_owned()),
        Some(message.to.as_str().to_owned()),
        Some(message.ts.as_str().to_owned()),
        message.text.clone(),
        Some(hex::encode(message.ts.sort_key())),
        message.text.as_deref().zip(folded).and_then(|(text, folded)| folded_apart(text, folded)),
        message.message_type.clone(),
        indexed,
        message.received.raw.clone(),
        message.received.contact.clone(),
        message.received.metadata.clone(),
    ]
}

fn value(column: Option<String>) -> Value {
    column.map_or(Value::Null, Value::Text)
}

/// Each message's outcome, from the ids [`delivery`] returned: created for the first of an id it added,
/// duplicate for the rest (stored before, or earlier in the same delivery).
pub fn outcomes(messages: &[Message], mut added: Table) -> Result<Vec<Inserted>, super::StoreError> {
    let mut created = std::collections::HashSet::new();
    for row in added.rows_mut() {
        created.insert(rows::text(row, 0)?);
    }
    Ok(messages
        .iter()
        .map(|message| match created.remove(&message.message_id) {
            true => Inserted::Created,
            false => Inserted::Duplicate,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{rows, schema};

    /// Rows the inbox holds before the delivery that adds the last of them moves them all.
    const ROWS: i64 = 256;

    async fn database() -> libsql::Connection {
        let conn = libsql::Builder::new_local(":memory:").build().await.unwrap().connect().unwrap();
        schema::migrate(&conn).await.unwrap();
        conn
    }

    fn message(id: &str, text: &str) -> Message {
        let body = serde_json::json!({
            "message_id": id, "from": "+15550001", "to": "+15550002", "ts": "2025-01-15T10:00:00Z", "text": text
        });
        Message::parse(body.to_string().as_bytes()).unwrap()
    }

    async fn deliver(conn: &libsql::Connection, messages: &[Message]) -> Vec<Inserted> {
        let query = delivery("2026-01-01T00:00:00.000Z", messages);
        let added = rows::collect(conn.query(&query.sql, query.args).await.unwrap()).await.unwrap();
        outcomes(messages, added).unwrap()
    }

    async fn number(conn: &libsql::Connection, sql: &str) -> i64 {
        conn.query(sql, ()).await.unwrap().next().await.unwrap().unwrap().get::<i64>(0).unwrap()
    }

    #[tokio::test]
    async fn an_id_stored_in_either_table_or_earlier_in_the_delivery_is_a_duplicate() {
        use Inserted::{Created, Duplicate};
        let conn = database().await;
        assert_eq!(
            deliver(&conn, &[message("a", "one"), message("b", "two"), message("a", "again")]).await,
            [Created, Created, Duplicate]
        );
        assert_eq!(deliver(&conn, &[message("b", "other"), message("c", "three")]).await, [Duplicate, Created]);
        conn.execute(
            "INSERT INTO messages (message_id, from_msisdn, to_msisdn, ts, text, created_at, ts_key) \
             VALUES ('d', '+1', '+2', 't', 'stored', '', 't')",
            (),
        )
        .await
        .unwrap();
        assert_eq!(deliver(&conn, &[message("d", "four")]).await, [Duplicate]);
        assert_eq!(number(&conn, "SELECT count(*) FROM inbox").await, 3);
        let first: String = conn
            .query("SELECT text FROM inbox WHERE message_id = 'a'", ())
            .await
            .unwrap()
            .next()
            .await
            .unwrap()
            .unwrap()
            .get(0)
            .unwrap();
        assert_eq!(first, "one", "the first write wins");
    }

    #[tokio::test]
    async fn the_delivery_that_fills_the_inbox_moves_every_row_into_messages_and_the_index() {
        let conn = database().await;
        let texts: Vec<String> = (0..ROWS + 10).map(|n| format!("Row {n} kaka")).collect();
        let mut messages: Vec<Message> =
            texts.iter().enumerate().map(|(n, text)| message(&format!("m{n:04}"), text)).collect();
        messages[0] = message("m0000", "alpha\0omega");
        messages[7] = message("m0007", "gamma\0delta");
        // The first alone (one message's statement), the rest a hundred at a time (many messages').
        deliver(&conn, &messages[..1]).await;
        for chunk in messages[1..ROWS as usize - 1].chunks(100) {
            deliver(&conn, chunk).await;
        }
        assert_eq!(number(&conn, "SELECT count(*) FROM inbox").await, ROWS - 1);
        assert_eq!(number(&conn, "SELECT count(*) FROM messages").await, 0);
        // The rest in one delivery: its first row fills the inbox, the others start it again.
        let outcomes = deliver(&conn, &messages[ROWS as usize - 1..]).await;
        assert!(outcomes.iter().all(|o| *o == Inserted::Created));
        assert_eq!(number(&conn, "SELECT count(*) FROM messages").await, ROWS);
        assert_eq!(number(&conn, "SELECT count(*) FROM inbox").await, 10);
        // In arrival order, indexed, counted.
        let order = "SELECT count(*) FROM messages WHERE rowid != 1 + CAST(substr(message_id, 2) AS INTEGER)";
        assert_eq!(number(&conn, order).await, 0);
        assert_eq!(number(&conn, "SELECT indexed_through FROM text_index_state").await, ROWS);
        assert_eq!(number(&conn, "SELECT messages FROM totals").await, ROWS);
        assert_eq!(number(&conn, "SELECT count FROM sender_counts").await, ROWS);
        let found = "SELECT count(*) FROM messages_text WHERE messages_text MATCH 'kak'";
        assert_eq!(number(&conn, found).await, ROWS - 2);
        assert_eq!(number(&conn, "SELECT rowid FROM messages_text WHERE messages_text MATCH 'elt'").await, 8);
        assert_eq!(number(&conn, "SELECT rowid FROM messages_text WHERE messages_text MATCH 'meg'").await, 1);
        // A redelivery of a moved row is a duplicate.
        assert_eq!(deliver(&conn, &[message("m0003", "other")]).await, [Inserted::Duplicate]);
    }

    #[tokio::test]
    async fn the_index_watermark_stays_behind_rows_stored_some_other_way() {
        let conn = database().await;
        conn.execute(
            "INSERT INTO messages (message_id, from_msisdn, to_msisdn, ts, text, created_at, ts_key, text_folded) \
             VALUES ('direct', '+1', '+2', 't', 'kaka', '', 't', 'kaka')",
            (),
        )
        .await
        .unwrap();
        let messages: Vec<Message> = (0..ROWS).map(|n| message(&format!("m{n:04}"), "kaka")).collect();
        deliver(&conn, &messages).await;
        assert_eq!(number(&conn, "SELECT count(*) FROM messages").await, ROWS + 1);
        assert_eq!(
            number(&conn, "SELECT indexed_through FROM text_index_state").await,
            0,
            "the direct row is not indexed"
        );
        let found = "SELECT count(*) FROM messages_text WHERE messages_text MATCH 'kak'";
        assert_eq!(number(&conn, found).await, ROWS, "the moved rows are");
    }

    #[test]
    fn the_trigger_moves_the_rows_at_that_number() {
        let trigger = schema::from_empty().find(|sql| sql.contains("TRIGGER inbox_full")).unwrap();
        assert!(trigger.contains(&format!("WHEN NEW.rowid >= {ROWS} ")), "{trigger}");
    }
}
