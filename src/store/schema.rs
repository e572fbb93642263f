//! Versioned schema migrations, tracked in `PRAGMA user_version` and applied at start.
//!
//! Version 1 is the assignment's data model exactly, so a database file written by an earlier
//! implementation of this contract (user_version 0, that table, possibly rows) is adopted as it is and
//! migrated in place. Later versions only add.

use libsql::{Connection, Value};

use super::pool::BoxFuture;
use super::rows;
use super::types::StoreError;
use crate::message::fold_case;

/// The schema version this build writes and reads.
pub const LATEST: u32 = 13;

/// One version's change: what it does, for the log; its statements in order; then, where rows exist
/// already, what only code can fill in (version 2's sort keys).
struct Migration {
    does: &'static str,
    statements: &'static [&'static str],
    fill: Option<Fill>,
}

/// Fills in what a migration's statements cannot, for the rows that exist.
type Fill = for<'c> fn(&'c Connection) -> BoxFuture<'c, Result<(), StoreError>>;

/// Version `n + 1` is `MIGRATIONS[n]`.
const MIGRATIONS: [Migration; LATEST as usize] = [
    Migration { does: "the assignment's messages table", statements: V1_MESSAGES, fill: None },
    Migration {
        does: "sort keys, folded text and the two ordering indexes",
        statements: V2_SORT_AND_SEARCH_KEYS,
        fill: Some(fill_sort_and_search_keys),
    },
    Migration { does: "aggregates and the text index", statements: V3_AGGREGATES_AND_TEXT_INDEX, fill: None },
    Migration { does: "the readiness probe's row", statements: V4_WRITE_PROBE, fill: None },
    Migration { does: "message types", statements: V5_MESSAGE_TYPE, fill: None },
    Migration { does: "a count of removed rows", statements: V6_REMOVAL_COUNT, fill: None },
    Migration { does: "trigram frequencies", statements: V7_TRIGRAM_FREQUENCIES, fill: None },
    Migration { does: "folded text in the ordering indexes", statements: V8_FOLDED_TEXT_IN_THE_ORDERINGS, fill: None },
    Migration { does: "the server's inbox", statements: V9_INBOX, fill: None },
    Migration { does: "shared search totals", statements: V10_SHARED_TOTALS, fill: None },
    Migration { does: "messages as received, and statuses", statements: V11_AS_RECEIVED_AND_STATUSES, fill: None },
    Migration {
        does: "every sort key rewritten in nine bytes (free pages are reused; VACUUM returns them)",
        statements: V12_NINE_BYTE_SORT_KEYS,
        fill: None,
    },
    Migration {
        does: "folded text kept in the row only where lower(text) is not it",
        statements: V13_FOLDED_TEXT_WHERE_LOWER_IS_NOT_IT,
        fill: None,
    },
];

pub async fn migrate(conn: &Connection) -> Result<(), StoreError> {
    // IMMEDIATE: two processes starting on one file cannot both migrate.
    conn.execute("BEGIN IMMEDIATE", ()).await?;
    let result = migrate_in_transaction(conn, LATEST).await;
    match result {
        Ok(()) => conn.execute("COMMIT", ()).await.map(|_| ()).map_err(StoreError::from),
        Err(e) => {
            let _ = conn.execute("ROLLBACK", ()).await;
            Err(e)
        }
    }
}

/// Applies the migrations past the database's version, up to version `through`.
async fn migrate_in_transaction(conn: &Connection, through: u32) -> Result<(), StoreError> {
    let version = user_version(conn).await?;
    if version > LATEST {
        return Err(StoreError::Open(format!(
            "database schema version {version} is newer than this build understands ({LATEST})"
        )));
    }
    let pending = MIGRATIONS.get(version as usize..through as usize).unwrap_or_default();
    for (done, migration) in (version..).zip(pending) {
        let started = std::time::Instant::now();
        for statement in migration.statements {
            conn.execute(statement, ()).await?;
        }
        if let Some(fill) = migration.fill {
            fill(conn).await?;
        }
        // user_version lives in the database header, so it commits or rolls back with the rest.
        conn.execute(&format!("PRAGMA user_version = {}", done + 1), ()).await?;
        if version > 0 {
            let ms = started.elapsed().as_millis() as u64;
            tracing::info!(version = done + 1, ms, "schema migrated: {}", migration.does);
        }
    }
    if version == 0 {
        tracing::info!(version = through, "schema created");
    }
    Ok(())
}

/// Every statement that takes an empty database to the current schema, the version last: what the
/// migrations do when there is no row to fill, for a server to run in one batch.
#[cfg(feature = "remote")]
pub fn from_empty() -> impl Iterator<Item = String> {
    let statements = MIGRATIONS.iter().flat_map(|migration| migration.statements.iter().map(|s| s.to_string()));
    statements.chain([format!("PRAGMA user_version = {LATEST}")])
}

async fn user_version(conn: &Connection) -> Result<u32, StoreError> {
    let mut rows = conn.query("PRAGMA user_version", ()).await?;
    let row = rows.next().await?.ok_or(StoreError::Unexpected("PRAGMA user_version returned no row"))?;
    Ok(row.get::<u32>(0)?)
}

/// The assignment's table. `IF NOT EXISTS` adopts one an earlier implementation created.
const V1_MESSAGES: &[&str] = &["CREATE TABLE IF NOT EXISTS messages (
        message_id  TEXT PRIMARY KEY,
        from_msisdn TEXT NOT NULL,
        to_msisdn   TEXT NOT NULL,
        ts          TEXT NOT NULL,
        text        TEXT,
        created_at  TEXT NOT NULL
    )"];

/// Adds a chronological sort key (the raw `ts` text does not sort chronologically when fractions
/// differ) and case-folded text for search, and indexes the orderings the API reads: everything by time,
/// and one sender by time. [`fill_sort_and_search_keys`] fills both for existing rows.
const V2_SORT_AND_SEARCH_KEYS: &[&str] = &[
    "ALTER TABLE messages ADD COLUMN ts_key TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE messages ADD COLUMN text_folded TEXT",
    "CREATE INDEX messages_by_time ON messages (ts_key, message_id)",
    "CREATE INDEX messages_by_sender ON messages (from_msisdn, ts_key, message_id)",
];

fn fill_sort_and_search_keys(conn: &Connection) -> BoxFuture<'_, Result<(), StoreError>> {
    Box::pin(async move {
        let mut rows = conn.query("SELECT rowid, CAST(ts AS BLOB), CAST(text AS BLOB) FROM messages", ()).await?;
        let mut updates = Vec::new();
        while let Some(row) = rows.next().await? {
            let mut values = vec![row.get_value(1)?, row.get_value(2)?];
            let (rowid, ts, text) =
                (row.get::<i64>(0)?, rows::text(&mut values, 0)?, rows::optional_text(&mut values, 1)?);
            updates.push((rowid, legacy_sort_key(&ts), text.as_deref().map(fold_case)));
        }
        drop(rows);
        for (rowid, ts_key, text_folded) in updates {
            conn.execute(
                "UPDATE messages SET ts_key = ?, text_folded = ? WHERE rowid = ?",
                (ts_key, text_folded, rowid),
            )
            .await?;
        }
        Ok(())
    })
}

/// Keeps what `/stats` and unfiltered totals need up to date in the inserting transaction itself (per-sender
/// counts, message and sender totals), and adds the trigram full-text index over the folded text for `q`
/// with its watermark ([`super::search_index`] says how it is filled and asked). Triggers do the upkeep, so
/// every insert — the writer's, or any other program's — keeps the aggregates exact; a duplicate
/// (`ON CONFLICT DO NOTHING`) inserts nothing and fires nothing.
const V3_AGGREGATES_AND_TEXT_INDEX: &[&str] = &[
    "CREATE TABLE sender_counts (
        from_msisdn TEXT PRIMARY KEY,
        count       INTEGER NOT NULL
     ) WITHOUT ROWID",
    "CREATE INDEX sender_counts_top ON sender_counts (count DESC, from_msisdn)",
    "INSERT INTO sender_counts SELECT from_msisdn, count(*) FROM messages GROUP BY from_msisdn",
    "CREATE TABLE totals (
        id       INTEGER PRIMARY KEY CHECK (id = 1),
        messages INTEGER NOT NULL,
        senders  INTEGER NOT NULL
     )",
    "INSERT INTO totals VALUES (1, (SELECT count(*) FROM messages), (SELECT count(*) FROM sender_counts))",
    "CREATE VIRTUAL TABLE messages_text USING fts5(
        text_folded, content = '', contentless_delete = 1, tokenize = 'trigram', detail = 'none'
     )",
    "CREATE TABLE text_index_state (
        id               INTEGER PRIMARY KEY CHECK (id = 1),
        indexed_through  INTEGER NOT NULL
     )",
    "INSERT INTO text_index_state VALUES (1, 0)",
    "CREATE TRIGGER messages_added AFTER INSERT ON messages BEGIN
        INSERT INTO sender_counts VALUES (NEW.from_msisdn, 1)
            ON CONFLICT (from_msisdn) DO UPDATE SET count = count + 1;
        UPDATE totals SET messages = messages + 1,
            senders = senders + (SELECT count = 1 FROM sender_counts WHERE from_msisdn = NEW.from_msisdn);
     END",
    "CREATE TRIGGER messages_removed AFTER DELETE ON messages BEGIN
        UPDATE sender_counts SET count = count - 1 WHERE from_msisdn = OLD.from_msisdn;
        UPDATE totals SET messages = messages - 1,
            senders = senders - (SELECT count = 0 FROM sender_counts WHERE from_msisdn = OLD.from_msisdn);
        DELETE FROM sender_counts WHERE from_msisdn = OLD.from_msisdn AND count = 0;
        DELETE FROM messages_text WHERE rowid = OLD.rowid;
        UPDATE text_index_state SET indexed_through = min(indexed_through, OLD.rowid - 1);
     END",
];

/// One row the readiness probe rewrites: a write that must commit for the service to call itself ready.
const V4_WRITE_PROBE: &[&str] = &[
    "CREATE TABLE write_probe (id INTEGER PRIMARY KEY CHECK (id = 1), checked_at TEXT NOT NULL)",
    "INSERT INTO write_probe VALUES (1, '')",
];

/// A provider's kind of message (WhatsApp's `text`, `image`, …); rows of the contract's own messages have none.
const V5_MESSAGE_TYPE: &[&str] = &["ALTER TABLE messages ADD COLUMN message_type TEXT"];

/// Counts rows ever deleted (messages are append-only, but another program may delete some): a search total
/// remembered at a watermark stays exact only while no row at or below it has gone ([`super::search::counts`]).
const V6_REMOVAL_COUNT: &[&str] = &[
    "ALTER TABLE totals ADD COLUMN removed INTEGER NOT NULL DEFAULT 0",
    "CREATE TRIGGER messages_removed_counted AFTER DELETE ON messages BEGIN
        UPDATE totals SET removed = removed + 1;
     END",
];

/// How many indexed rows hold each trigram, read by the search planner ([`super::search::plan`]) to ask the
/// index for a term's rarest trigrams only. A view of the index itself: nothing to keep up to date.
const V7_TRIGRAM_FREQUENCIES: &[&str] =
    &["CREATE VIRTUAL TABLE messages_text_vocab USING fts5vocab(messages_text, 'row')"];

/// The folded text joins the indexes of both orderings, so a search that reads rows in time order, or
/// through one sender's rows, tests each from the index alone and looks up only the page's rows in the
/// table, whose rows lie far apart.
const V8_FOLDED_TEXT_IN_THE_ORDERINGS: &[&str] =
    &["DROP INDEX messages_by_time", MESSAGES_BY_TIME, "DROP INDEX messages_by_sender", MESSAGES_BY_SENDER];

/// The two orderings' indexes since version 8.
const MESSAGES_BY_TIME: &str = "CREATE INDEX messages_by_time ON messages (ts_key, message_id, text_folded)";
const MESSAGES_BY_SENDER: &str =
    "CREATE INDEX messages_by_sender ON messages (from_msisdn, ts_key, message_id, text_folded)";

/// Where a libSQL server's deliveries land first ([`super::inbox`] says why): `inbox` holds the rows of
/// `messages` (and, for text holding a NUL, the text as the index takes it), and the delivery that fills it
/// to 256 rows moves them all into `messages`, the aggregates and the text index in its
/// own statement. The text index's watermark moves over them when every row before them was indexed and
/// none of them is already stored (another program may write `messages` directly).
const V9_INBOX: &[&str] = &[
    "CREATE TABLE inbox (
        message_id   TEXT PRIMARY KEY,
        from_msisdn  TEXT NOT NULL,
        to_msisdn    TEXT NOT NULL,
        ts           TEXT NOT NULL,
        text         TEXT,
        created_at   TEXT NOT NULL,
        ts_key       TEXT NOT NULL,
        text_folded  TEXT,
        message_type TEXT,
        text_indexed TEXT
     )",
    "CREATE TRIGGER inbox_full AFTER INSERT ON inbox WHEN NEW.rowid >= 256 BEGIN
        UPDATE text_index_state SET indexed_through = indexed_through + (SELECT count(*) FROM inbox)
            WHERE indexed_through = (SELECT coalesce(max(rowid), 0) FROM messages)
            AND NOT EXISTS (SELECT 1 FROM inbox JOIN messages USING (message_id));
        INSERT OR IGNORE INTO messages
            (message_id, from_msisdn, to_msisdn, ts, text, created_at, ts_key, text_folded, message_type)
            SELECT message_id, from_msisdn, to_msisdn, ts, text, created_at, ts_key, text_folded, message_type
            FROM inbox ORDER BY rowid;
        INSERT OR REPLACE INTO messages_text (rowid, text_folded)
            SELECT m.rowid, coalesce(i.text_indexed, i.text_folded) FROM inbox AS i JOIN messages AS m USING (message_id)
            WHERE i.text_folded IS NOT NULL AND m.created_at = i.created_at;
        DELETE FROM inbox;
     END",
];

/// Totals of counted listings, kept where every instance of a fleet on one server finds them
/// ([`super::search::counts`]): a new instance reads the newest when it starts instead of counting anew, and
/// an instance adds those it counted with its next call. `shared` numbers them in the order they were shared,
/// and the oldest go first.
const V10_SHARED_TOTALS: &[&str] = &[
    "CREATE TABLE search_totals (
        filters TEXT PRIMARY KEY,
        through INTEGER NOT NULL,
        matches INTEGER NOT NULL,
        removed INTEGER NOT NULL,
        scope   INTEGER,
        shared  INTEGER NOT NULL
     ) WITHOUT ROWID",
    "CREATE INDEX search_totals_by_age ON search_totals (shared)",
];

/// The trigger `inbox_full` since version 11, indexing the text `$indexed` of each moved row where `$has_text`.
macro_rules! inbox_full {
    ($indexed:literal, $has_text:literal) => {
        concat!(
            "CREATE TRIGGER inbox_full AFTER INSERT ON inbox WHEN NEW.rowid >= 256 BEGIN
        UPDATE text_index_state SET indexed_through = indexed_through + (SELECT count(*) FROM inbox)
            WHERE indexed_through = (SELECT coalesce(max(rowid), 0) FROM messages)
            AND NOT EXISTS (SELECT 1 FROM inbox JOIN messages USING (message_id));
        INSERT OR IGNORE INTO messages (message_id, from_msisdn, to_msisdn, ts, text, created_at, ts_key,
                text_folded, message_type, raw, contact, metadata)
            SELECT message_id, from_msisdn, to_msisdn, ts, text, created_at, ts_key, text_folded, message_type,
                raw, contact, metadata
            FROM inbox ORDER BY rowid;
        INSERT OR REPLACE INTO messages_text (rowid, text_folded)
            SELECT m.rowid, ",
            $indexed,
            " FROM inbox AS i JOIN messages AS m USING (message_id)
            WHERE ",
            $has_text,
            " AND m.created_at = i.created_at;
        DELETE FROM inbox;
     END"
        )
    };
}

/// What arrived, as it arrived, and WhatsApp's delivery statuses.
///
/// `raw` is a message's JSON as received; NULL when it was exactly the message's canonical JSON, which a
/// read rebuilds ([`crate::message::Message::canonical_json`]), and `''` when it is not known: the default
/// gives every row stored before this version (and any row another program writes) that value without
/// rewriting a page. `contact` and `metadata` are a WhatsApp message's sender entry and change metadata.
///
/// `statuses` keeps each status once per (`message_id`, `status`, `ts`), in arrival order (its rowid), with
/// both orderings `GET /statuses` reads indexed and, for `/stats` and its totals, a count per status kept by
/// triggers like the messages' own.
const V11_AS_RECEIVED_AND_STATUSES: &[&str] = &[
    "ALTER TABLE messages ADD COLUMN raw TEXT DEFAULT ''",
    "ALTER TABLE messages ADD COLUMN contact TEXT",
    "ALTER TABLE messages ADD COLUMN metadata TEXT",
    "ALTER TABLE inbox ADD COLUMN raw TEXT DEFAULT ''",
    "ALTER TABLE inbox ADD COLUMN contact TEXT",
    "ALTER TABLE inbox ADD COLUMN metadata TEXT",
    "DROP TRIGGER inbox_full",
    inbox_full!("coalesce(i.text_indexed, i.text_folded)", "i.text_folded IS NOT NULL"),
    "CREATE TABLE statuses (
        message_id   TEXT NOT NULL,
        status       TEXT NOT NULL,
        ts           TEXT NOT NULL,
        recipient_id TEXT,
        errors       TEXT,
        conversation TEXT,
        pricing      TEXT,
        raw          TEXT NOT NULL,
        created_at   TEXT NOT NULL,
        UNIQUE (message_id, status, ts)
     )",
    "CREATE INDEX statuses_by_time ON statuses (ts)",
    "CREATE INDEX statuses_by_status ON statuses (status, ts)",
    "CREATE TABLE status_counts (
        status TEXT PRIMARY KEY,
        count  INTEGER NOT NULL
     ) WITHOUT ROWID",
    "CREATE TRIGGER statuses_added AFTER INSERT ON statuses BEGIN
        INSERT INTO status_counts VALUES (NEW.status, 1) ON CONFLICT (status) DO UPDATE SET count = count + 1;
     END",
    "CREATE TRIGGER statuses_removed AFTER DELETE ON statuses BEGIN
        UPDATE status_counts SET count = count - 1 WHERE status = OLD.status;
        DELETE FROM status_counts WHERE status = OLD.status AND count = 0;
     END",
];

/// The statement that rewrites every text sort key of `$table` that is a timestamp as its nine bytes.
macro_rules! nine_byte_sort_keys {
    ($table:literal) => {
        concat!(
            "UPDATE ",
            $table,
            " SET ts_key = CASE WHEN unixepoch(substr(ts_key, 1, 19)) IS NULL THEN ts_key
                ELSE unhex(printf('%010X%08X', unixepoch(substr(ts_key, 1, 19)) + 62135596800,
                    CAST(substr(substr(ts_key, 21) || '000000000', 1, 9) AS INTEGER))) END
                WHERE typeof(ts_key) = 'text'"
        )
    };
}

/// Sort keys as nine bytes ([`crate::message::Timestamp`] says which), where version 2 wrote 29 characters:
/// the key is in the row and in both ordering indexes, so this is 60 bytes less per message. A key that is
/// no timestamp (a legacy row's text, see [`legacy_sort_key`]) is kept as it is. The indexes are built
/// again after the rows change rather than changed entry by entry: faster, and packed.
const V12_NINE_BYTE_SORT_KEYS: &[&str] = &[
    "DROP INDEX messages_by_time",
    "DROP INDEX messages_by_sender",
    nine_byte_sort_keys!("messages"),
    nine_byte_sort_keys!("inbox"),
    MESSAGES_BY_TIME,
    MESSAGES_BY_SENDER,
];

/// The folded text of a row as searches read it and both orderings index it: `text_folded` where folding
/// changes more than SQL's `lower()` does (it folds ASCII letters only), else `lower(text)`. The planner
/// matches the expression in a query to the indexes' own, so it must be written this way everywhere.
macro_rules! folded_text {
    () => {
        "coalesce(text_folded, lower(text))"
    };
}
pub(crate) use folded_text;

/// The folded copy of a text leaves the row wherever `lower(text)` gives it, which is every text without
/// an upper-case letter outside ASCII: the orderings' indexes hold the folded text ([`folded_text!`]) as
/// before, and the row holds the text once. The indexes are built again after the rows change.
const V13_FOLDED_TEXT_WHERE_LOWER_IS_NOT_IT: &[&str] = &[
    "DROP INDEX messages_by_time",
    "DROP INDEX messages_by_sender",
    "UPDATE messages SET text_folded = NULL WHERE text_folded = lower(text)",
    "UPDATE inbox SET text_folded = NULL WHERE text_folded = lower(text)",
    concat!("CREATE INDEX messages_by_time ON messages (ts_key, message_id, ", folded_text!(), ")"),
    concat!("CREATE INDEX messages_by_sender ON messages (from_msisdn, ts_key, message_id, ", folded_text!(), ")"),
    "DROP TRIGGER inbox_full",
    inbox_full!("coalesce(i.text_indexed, i.text_folded, lower(i.text))", "i.text IS NOT NULL"),
];

/// Version 2's sort key, `YYYY-MM-DDTHH:MM:SS.fffffffff` (version 12 turns it into bytes). Rows written by
/// another implementation may hold timestamps with offsets; those are converted to UTC so they still sort
/// chronologically. Text that is no timestamp at all keeps itself as its key.
fn legacy_sort_key(ts: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(ts) {
        Ok(t) => t.with_timezone(&chrono::Utc).format("%Y-%m-%dT%H:%M:%S%.9f").to_string(),
        Err(_) => ts.to_owned(),
    }
}

/// Columns a statement can select (or return) that exist only in the current schema: the schema version,
/// then values of the tables and columns it added, the text index's watermark (at index 3) and the last
/// rowid (at 5). Selecting them fails on an older schema; [`check`] reads the version.
pub const CURRENT_SCHEMA: &str = "(SELECT user_version FROM pragma_user_version), \
     (SELECT ts_key IS NULL AND text_folded IS NULL FROM messages LIMIT 1), (SELECT messages FROM totals), \
     (SELECT indexed_through FROM text_index_state), (SELECT checked_at FROM write_probe), \
     (SELECT coalesce(max(rowid), 0) FROM messages), (SELECT message_type IS NULL FROM messages LIMIT 1), \
     (SELECT removed FROM totals), (SELECT count(*) FROM messages_text_vocab WHERE term = ''), \
     (SELECT count(*) FROM inbox), (SELECT count(*) FROM search_totals), \
     (SELECT raw IS NULL FROM messages LIMIT 1), (SELECT count(*) FROM status_counts)";

/// Fails unless `row`, selected with [`CURRENT_SCHEMA`], shows the current version.
pub fn check(row: &[Value]) -> Result<(), StoreError> {
    match row.first() {
        Some(Value::Integer(version)) if *version == i64::from(LATEST) => Ok(()),
        Some(Value::Integer(version)) => {
            Err(StoreError::Open(format!("schema version is {version}, expected {LATEST}")))
        }
        _ => Err(StoreError::Unexpected("no schema version")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every table, index, trigger and view, with its SQL.
    #[cfg(feature = "remote")]
    async fn schema_of(conn: &Connection) -> Vec<(String, Option<String>)> {
        let mut rows = conn.query("SELECT name, sql FROM sqlite_schema ORDER BY name", ()).await.unwrap();
        let mut schema = Vec::new();
        while let Some(row) = rows.next().await.unwrap() {
            schema.push((row.get(0).unwrap(), row.get(1).unwrap()));
        }
        schema
    }

    #[cfg(feature = "remote")]
    #[tokio::test]
    async fn an_empty_database_gets_in_one_batch_the_schema_the_migrations_make() {
        let open = || async { libsql::Builder::new_local(":memory:").build().await.unwrap().connect().unwrap() };
        let (migrated, created) = (open().await, open().await);
        migrate(&migrated).await.unwrap();
        created.execute("BEGIN IMMEDIATE", ()).await.unwrap();
        for statement in from_empty() {
            created.execute(&statement, ()).await.unwrap();
        }
        created.execute("COMMIT", ()).await.unwrap();
        assert_eq!(schema_of(&created).await, schema_of(&migrated).await);
        assert_eq!(user_version(&created).await.unwrap(), LATEST);
    }

    /// A database the previous version wrote: its rows keep everything they had, and read as having no
    /// object as received (it was not kept), where a new row rebuilds or returns its own.
    #[tokio::test]
    async fn the_previous_versions_rows_are_kept_and_read_as_received_unknown() {
        use crate::store::read::{message, message_of, stats, stats_of};
        use crate::store::types::Tables;
        let conn = libsql::Builder::new_local(":memory:").build().await.unwrap().connect().unwrap();
        conn.execute("BEGIN IMMEDIATE", ()).await.unwrap();
        migrate_in_transaction(&conn, LATEST - 1).await.unwrap();
        conn.execute("COMMIT", ()).await.unwrap();
        assert_eq!(user_version(&conn).await.unwrap(), LATEST - 1);
        conn.execute(
            "INSERT INTO messages (message_id, from_msisdn, to_msisdn, ts, text, created_at, ts_key, message_type) \
             VALUES ('old', '+1', '+2', '2025-01-15T10:00:00Z', 'kept', '', '2025-01-15T10:00:00.000000000', 'text')",
            (),
        )
        .await
        .unwrap();
        migrate(&conn).await.unwrap();
        assert_eq!(user_version(&conn).await.unwrap(), LATEST);
        migrate(&conn).await.unwrap();
        let run = |query: super::super::types::Query| {
            let conn = conn.clone();
            async move { rows::collect(conn.query(&query.sql, query.args).await.unwrap()).await.unwrap() }
        };
        let old = message_of(run(message(Tables::Messages, "old")).await).unwrap().unwrap();
        assert_eq!((old.message.text.as_deref(), old.message_type.as_deref()), (Some("kept"), Some("text")));
        assert!(old.raw.is_none() && old.contact.is_none() && old.metadata.is_none());
        let stats = stats_of(run(stats(Tables::Messages)).await).unwrap();
        assert_eq!((stats.total_messages, stats.statuses_by_status.len()), (1, 0));
    }

    /// What `work` logs, one `name=value` list per line (on this thread, which a `tokio::test` runs on).
    async fn logged(work: impl std::future::Future<Output = Result<(), StoreError>>) -> String {
        use std::fmt::Write;
        use std::sync::{Arc, Mutex};
        use tracing::field::{Field, Visit};
        use tracing_subscriber::layer::{Context, SubscriberExt};
        struct Lines(Arc<Mutex<String>>);
        struct Fields<'a>(&'a mut String);
        impl Visit for Fields<'_> {
            fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
                let _ = write!(self.0, "{}={value:?} ", field.name());
            }
        }
        impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Lines {
            fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
                if !event.metadata().target().starts_with(env!("CARGO_CRATE_NAME")) {
                    return;
                }
                let mut lines = self.0.lock().unwrap();
                event.record(&mut Fields(&mut lines));
                lines.push('\n');
            }
        }
        let lines = Arc::new(Mutex::new(String::new()));
        let subscriber = tracing_subscriber::registry().with(Lines(Arc::clone(&lines)));
        let guard = tracing::subscriber::set_default(subscriber);
        work.await.unwrap();
        drop(guard);
        let logged = lines.lock().unwrap().clone();
        logged
    }

    /// A database of version 11 with `rows` messages stored the way its writer stored them (the 29-character
    /// sort key, every text's folded copy beside it), one legacy row whose key is no timestamp, and the text
    /// index filled.
    async fn version_11_database(rows: usize) -> Connection {
        let conn = libsql::Builder::new_local(":memory:").build().await.unwrap().connect().unwrap();
        conn.execute("BEGIN IMMEDIATE", ()).await.unwrap();
        migrate_in_transaction(&conn, 11).await.unwrap();
        let insert = "INSERT INTO messages (message_id, from_msisdn, to_msisdn, ts, text, created_at, ts_key, \
             text_folded) VALUES (?1, ?2, '+14155550100', ?3, ?4, '2026-12-01T00:00:00.000Z', ?5, ?6)";
        for n in 0..rows {
            let ts = instant(n as u64);
            let key = legacy_sort_key(&ts);
            let text = text(n);
            let args = (format!("m{n}"), format!("+1555{:07}", n % 1000), ts, text.clone(), key, fold_case(&text));
            conn.execute(insert, args).await.unwrap();
        }
        let legacy = ("legacy", "+1555", "not a time", "old", "not a time", "old");
        conn.execute(insert, legacy).await.unwrap();
        conn.execute("INSERT INTO messages_text (rowid, text_folded) SELECT rowid, text_folded FROM messages", ())
            .await
            .unwrap();
        conn.execute("UPDATE text_index_state SET indexed_through = (SELECT max(rowid) FROM messages)", ())
            .await
            .unwrap();
        conn.execute("COMMIT", ()).await.unwrap();
        conn
    }

    /// The `n`th message's text: lower case, upper case in ASCII, or upper case beyond it.
    fn text(n: usize) -> String {
        match n % 3 {
            0 => format!("text {n}"),
            1 => format!("Text {n}"),
            _ => format!("ÉTÉ {n}"),
        }
    }

    /// The `n`th of a spread of instants: every year from 1 to 9999 reached, fractions of every length.
    fn instant(n: u64) -> String {
        let seconds =
            (n.wrapping_mul(2_654_435_761) % 315_537_897_600) as i64 + crate::message::FIRST_INSTANT_UNIX_SECONDS;
        let at = chrono::DateTime::from_timestamp(seconds, 0).unwrap().format("%Y-%m-%dT%H:%M:%S").to_string();
        let digits = (n % 10) as usize;
        let fraction = format!("{:09}", n.wrapping_mul(40_503) % 1_000_000_000);
        match digits {
            0 => format!("{at}Z"),
            d => format!("{at}.{}Z", &fraction[..d]),
        }
    }

    /// Version 12 rewrites every key in SQL; each must be the key the code gives the same `ts` now, in the
    /// same order, and a key that is no timestamp stays as it was.
    #[tokio::test]
    async fn version_12_gives_every_stored_row_the_key_the_code_computes() {
        use crate::message::Timestamp;
        let conn = version_11_database(2_000).await;
        migrate(&conn).await.unwrap();
        let mut rows = conn.query("SELECT ts, ts_key FROM messages ORDER BY rowid", ()).await.unwrap();
        let mut checked = 0;
        while let Some(row) = rows.next().await.unwrap() {
            let (ts, key) = (row.get::<String>(0).unwrap(), row.get_value(1).unwrap());
            match Timestamp::parse(&ts) {
                Some(parsed) => assert_eq!(key, Value::Blob(parsed.sort_key().to_vec()), "{ts}"),
                None => assert_eq!(key, Value::Text(ts.clone())),
            }
            checked += 1;
        }
        assert_eq!(checked, 2_001);
    }

    /// A database of the previous version at 100k messages is migrated once: the rows keep their order, a
    /// `since` filter and a search find what they found, the folded copies `lower()` gives are gone, the log
    /// says what was done, and opening it again does nothing.
    #[tokio::test]
    async fn a_hundred_thousand_rows_of_the_previous_version_migrate_once() {
        let conn = version_11_database(100_000).await;
        conn.execute("BEGIN IMMEDIATE", ()).await.unwrap();
        migrate_in_transaction(&conn, LATEST - 1).await.unwrap();
        conn.execute("COMMIT", ()).await.unwrap();
        // A server's deliveries waiting in its inbox, as that version stored them.
        for n in 0..6 {
            conn.execute(
                "INSERT INTO inbox (message_id, from_msisdn, to_msisdn, ts, text, created_at, ts_key, text_folded) \
                 VALUES (?1, '+1', '+2', '2026-12-01T00:00:00Z', ?2, '', x'00', ?3)",
                (format!("waiting{n}"), text(n), fold_case(&text(n))),
            )
            .await
            .unwrap();
        }
        let text = |conn: &Connection, sql: String| {
            let conn = conn.clone();
            async move { conn.query(&sql, ()).await.unwrap().next().await.unwrap().unwrap().get::<String>(0).unwrap() }
        };
        let order =
            "SELECT group_concat(message_id) FROM (SELECT message_id FROM messages ORDER BY ts_key, message_id)";
        let found = |folded: &str| {
            let terms = ["text 1", "xt 99", "été 2", "t 3"];
            terms.map(|term| {
                format!(
                    "SELECT group_concat(message_id) FROM (SELECT message_id FROM messages \
                     WHERE instr({folded}, '{term}') > 0 ORDER BY rowid)"
                )
            })
        };
        let before = text(&conn, order.to_owned()).await;
        let mut found_before = Vec::new();
        for search in found("text_folded") {
            found_before.push(text(&conn, search).await);
        }
        let logs = logged(migrate(&conn)).await;
        assert_eq!(user_version(&conn).await.unwrap(), LATEST);
        let does = MIGRATIONS[LATEST as usize - 1].does;
        assert!(logs.contains(&format!("schema migrated: {does}")), "{logs}");
        assert!(logs.contains(&format!("version={LATEST} ")), "{logs}");
        // The legacy row's text key sorts before every byte key, as text sorts before blobs.
        let after = text(&conn, order.to_owned()).await;
        assert_eq!(after.strip_prefix("legacy,").unwrap(), before.replace("legacy,", "").trim_end_matches(",legacy"));
        let since = crate::message::Timestamp::parse("5000-01-01T00:00:00Z").unwrap();
        let mut rows = conn
            .query("SELECT count(*) FROM messages WHERE ts_key >= ?1", [Value::Blob(since.sort_key().to_vec())])
            .await
            .unwrap();
        let found_since = rows.next().await.unwrap().unwrap().get::<i64>(0).unwrap();
        let expected = (0..100_000).filter(|n| instant(*n).as_str() >= "5000").count() as i64;
        assert_eq!(found_since, expected);
        for (search, before) in found(folded_text!()).into_iter().zip(found_before) {
            assert_eq!(text(&conn, search).await, before);
        }
        let kept = "SELECT count(*) || ' ' || sum(text LIKE 'ÉTÉ %') FROM messages WHERE text_folded IS NOT NULL";
        assert_eq!(text(&conn, kept.to_owned()).await, "33333 33333");
        let waiting = "SELECT group_concat(message_id) FROM inbox WHERE text_folded IS NOT NULL";
        assert_eq!(text(&conn, waiting.to_owned()).await, "waiting2,waiting5");
        let again = logged(migrate(&conn)).await;
        assert!(!again.contains("schema migrated"), "{again}");
    }

    /// Both orderings' indexes hold the folded text, so a search through either tests rows from the index
    /// alone: the table is opened (for a page's rows) but no column of it is read.
    #[tokio::test]
    async fn a_search_reads_the_folded_text_from_either_ordering_index() {
        let conn = libsql::Builder::new_local(":memory:").build().await.unwrap().connect().unwrap();
        migrate(&conn).await.unwrap();
        let table_root = "SELECT rootpage FROM sqlite_schema WHERE name = 'messages'";
        let root = conn.query(table_root, ()).await.unwrap().next().await.unwrap().unwrap().get::<i64>(0).unwrap();
        let filters = ["", "from_msisdn = '+1' AND "];
        for filter in filters {
            let search = format!(
                "EXPLAIN SELECT message_id FROM messages WHERE {filter}instr({}, 'ab') > 0 \
                 ORDER BY ts_key, message_id LIMIT 5",
                folded_text!()
            );
            let program = rows::collect(conn.query(&search, ()).await.unwrap()).await.unwrap();
            let op = |row: &[Value]| match (&row[1], &row[2], &row[3]) {
                (Value::Text(op), Value::Integer(p1), Value::Integer(p2)) => (op.clone(), *p1, *p2),
                _ => panic!("not an instruction: {row:?}"),
            };
            let ops: Vec<(String, i64, i64)> = program.rows().map(op).collect();
            let table = ops.iter().find(|(op, _, p2)| op == "OpenRead" && *p2 == root).map(|(_, cursor, _)| *cursor);
            let index = ops.iter().find(|(op, cursor, _)| op == "OpenRead" && Some(*cursor) != table);
            assert!(index.is_some(), "{filter}: no index opened: {ops:?}");
            let reads_table = ops.iter().any(|(op, cursor, _)| op == "Column" && Some(*cursor) == table);
            assert!(!reads_table, "{filter}: reads the table: {ops:?}");
        }
    }

    #[test]
    fn legacy_timestamps_get_chronological_keys() {
        assert_eq!(legacy_sort_key("2025-01-15T10:00:00.5Z"), "2025-01-15T10:00:00.500000000");
        assert_eq!(legacy_sort_key("2025-01-15T12:00:00+02:00"), "2025-01-15T10:00:00.000000000");
        assert_eq!(legacy_sort_key("not a time"), "not a time");
    }
}
