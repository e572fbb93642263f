//! The local SQLite file back end: opening the file with the pragmas that make a commit durable, a writer
//! thread that commits deliveries in batches ([`writer`]), and the watch over the file's place on disk
//! ([`identity`]).

mod identity;
mod writer;

use std::path::Path;
use std::time::Duration;

use libsql::Connection;

use super::pool::{BoxFuture, Pool};
use super::rows::Table;
use super::schema;
use super::session::Session;
use super::types::{Delivery, Listing, Query, StoreError, Stored};
use identity::FileIdentity;
use writer::Writer;

/// How much of the file each connection maps into memory (it maps no more than the file holds).
const MMAP_BYTES: u64 = 1 << 30;
/// How long a statement waits for another process's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A local file: its writer, and a pool of read-only connections.
pub struct File {
    writer: Writer,
    readers: Pool,
}

impl File {
    /// Opens (with `create`, creating if needed) the file, migrates it and starts its writer.
    pub async fn open(path: &Path, create: bool) -> Result<File, StoreError> {
        let db = open_database(path, create).await?;
        let writer_conn = db.connect()?;
        configure(&writer_conn, false).await?;
        schema::migrate(&writer_conn).await?;
        take_in_the_inbox(&writer_conn).await?;
        // Taken after opening: the file the connections now hold.
        let file = FileIdentity::of(path)?;
        let writer = Writer::start(Session::new(writer_conn), file)?;
        Ok(File { writer, readers: Pool::new(db, Some(configure_reader)) })
    }

    pub async fn store(&self, delivery: Delivery) -> Result<Stored, StoreError> {
        self.writer.store(delivery).await
    }

    /// The writer commits a write to the file it opened, and the file has the current schema.
    pub async fn probe(&self) -> Result<(), StoreError> {
        self.writer.probe().await?;
        let query = Query { sql: format!("SELECT {}", schema::CURRENT_SCHEMA), args: Vec::new() };
        let rows = self.readers.fetch(&query).await?;
        schema::check(rows.first().unwrap_or_default())
    }

    pub async fn fetch(&self, query: &Query) -> Result<Table, StoreError> {
        self.readers.fetch(query).await
    }

    /// A listing's page, and its total when the page is past the end, in one snapshot.
    pub async fn list(&self, listing: &Listing) -> Result<Table, StoreError> {
        self.readers.fetch_or(&listing.page, &listing.total).await
    }

    /// False once the writer stopped for good (its file was replaced).
    pub fn is_serving(&self) -> bool {
        self.writer.is_serving()
    }
}

/// Moves any rows of the inbox into `messages`: a file's reads leave the inbox out, since its writer never
/// stores there, but a libSQL server's database (or a replica's copy) opened as a file may hold some. Rows
/// moved are past the text index's watermark, where the indexer finds them.
async fn take_in_the_inbox(conn: &Connection) -> Result<(), StoreError> {
    let mut rows = conn.query("SELECT count(*) FROM inbox", ()).await?;
    let waiting = rows.next().await?.map_or(Ok(0), |row| row.get::<i64>(0))?;
    drop(rows);
    if waiting == 0 {
        return Ok(());
    }
    conn.execute("BEGIN IMMEDIATE", ()).await?;
    let moved = conn
        .execute_batch(
            "INSERT OR IGNORE INTO messages (message_id, from_msisdn, to_msisdn, ts, text, created_at, ts_key, \
                text_folded, message_type, raw, contact, metadata) \
             SELECT message_id, from_msisdn, to_msisdn, ts, text, created_at, ts_key, text_folded, message_type, \
                raw, contact, metadata FROM inbox ORDER BY rowid; \
             DELETE FROM inbox;",
        )
        .await;
    match moved {
        Ok(_) => conn.execute("COMMIT", ()).await.map(|_| ()).map_err(StoreError::from),
        Err(e) => {
            let _ = conn.execute("ROLLBACK", ()).await;
            Err(e.into())
        }
    }
}

async fn open_database(path: &Path, create: bool) -> Result<libsql::Database, StoreError> {
    if !create && !path.exists() {
        return Err(StoreError::Displaced(format!("database file {} is missing", path.display())));
    }
    create_parent_dir(path)?;
    // Multi-thread mode (NOMUTEX): SQLite skips its per-call connection mutex. Each connection here is used by
    // one thread or task at a time (the writer's own thread; readers checked out of the pool), so serialized
    // mode's locking protects nothing.
    let flags = libsql::OpenFlags::SQLITE_OPEN_READ_WRITE
        | libsql::OpenFlags::SQLITE_OPEN_CREATE
        | libsql::OpenFlags::from_bits_retain(libsql::ffi::SQLITE_OPEN_NOMUTEX);
    libsql::Builder::new_local(path)
        .flags(flags)
        .build()
        .await
        .map_err(|e| StoreError::Open(format!("{}: {e}", path.display())))
}

/// Per-connection settings: WAL with a full fsync at every commit, so an acknowledged message survives
/// `kill -9` and power loss; the file read through a memory map; a busy timeout for other processes sharing
/// the file.
async fn configure(conn: &Connection, read_only: bool) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // journal_mode answers with a row, so it is a query, not an execute.
    conn.query("PRAGMA journal_mode = WAL", ()).await?;
    conn.execute("PRAGMA synchronous = FULL", ()).await?;
    // Pages are read from the mapped file instead of copied in by a system call each: reads and the writer's
    // index lookups cost less. Writes still go through the WAL, so durability is the same.
    conn.query(&format!("PRAGMA mmap_size = {MMAP_BYTES}"), ()).await?;
    if read_only {
        conn.execute("PRAGMA query_only = 1", ()).await?;
    }
    Ok(())
}

/// The pool's [`Setup`](super::pool::Setup) for readers.
fn configure_reader(conn: &Connection) -> BoxFuture<'_, Result<(), StoreError>> {
    Box::pin(configure(conn, true))
}

/// Creates the directory a database file goes in, if it is missing (SPEC §3).
pub fn create_parent_dir(path: &Path) -> Result<(), StoreError> {
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => std::fs::create_dir_all(parent)
            .map_err(|e| StoreError::Open(format!("cannot create directory {}: {e}", parent.display()))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn pragma(conn: &Connection, name: &str) -> String {
        let mut rows = conn.query(&format!("PRAGMA {name}"), ()).await.unwrap();
        let value = rows.next().await.unwrap().unwrap().get_value(0).unwrap();
        match value {
            libsql::Value::Integer(n) => n.to_string(),
            libsql::Value::Text(s) => s,
            other => format!("{other:?}"),
        }
    }

    /// What makes a commit durable before it is acknowledged: the write-ahead log, synced in full at every
    /// commit (`synchronous=FULL` is 2), and a wait for another process's lock rather than a failure.
    #[tokio::test]
    async fn the_writer_commits_through_a_wal_synced_in_full_and_readers_only_read() {
        let dir = tempfile::tempdir().unwrap();
        let db = open_database(&dir.path().join("app.db"), true).await.unwrap();
        let writer = db.connect().unwrap();
        configure(&writer, false).await.unwrap();
        assert_eq!(pragma(&writer, "journal_mode").await, "wal");
        assert_eq!(pragma(&writer, "synchronous").await, "2");
        assert_eq!(pragma(&writer, "query_only").await, "0");
        assert_eq!(pragma(&writer, "busy_timeout").await, BUSY_TIMEOUT.as_millis().to_string());
        assert_eq!(pragma(&writer, "mmap_size").await, MMAP_BYTES.to_string());
        let reader = db.connect().unwrap();
        configure(&reader, true).await.unwrap();
        assert_eq!(pragma(&reader, "query_only").await, "1");
        assert_eq!(pragma(&reader, "mmap_size").await, MMAP_BYTES.to_string());
    }
}
