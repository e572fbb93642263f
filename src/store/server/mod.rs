//! The libSQL server back end (sqld, or Turso as a service), spoken to over HTTP with [`hrana`]: every
//! request is one round trip, and so is opening a database whose schema is current (a Lambda cold start).
//!
//! The server commits and serializes writes itself, so there is no writer thread: a delivery is one
//! transaction that inserts the row (`INSERT … ON CONFLICT DO NOTHING`, so the primary key on the server
//! keeps it exactly once however many instances share the server) and adds it to the text index in the same
//! commit: a Lambda instance is frozen between invocations, so a background indexer would not keep up. Only
//! rows stored before that (by an older version) are indexed by a task, when the watermark is seen behind.

mod hrana;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use libsql::Value;
use tokio::sync::Semaphore;

use super::read::Query;
use super::rows::Table;
use super::search_index::{self, INDEX_CHUNK};
use super::write::{insert_args, now, INSERT_MESSAGE, WRITE_PROBE};
use super::{schema, Inserted, StoreError};
use crate::config;
use crate::message::Message;
use crate::query::fold_case;
use hrana::{Hrana, Statement};

pub use hrana::HranaError;

/// Calls one instance makes to a libSQL server at once. Each holds one of the server's connections (sqld has
/// 128 by default, shared by every instance) while it runs; beyond this, more in flight only makes a
/// shared server refuse connections (429) instead of answering a little later.
const SERVER_CALLS_IN_FLIGHT: usize = 16;

/// Write transactions one instance has open on a libSQL server at once. The server commits one at a time
/// whatever the number waiting, so more only wait there instead of here; and under many concurrent
/// `BEGIN IMMEDIATE` batches sqld answers some with SQLITE_BUSY and, at 16, was seen to stop answering
/// writes altogether.
const SERVER_WRITES_IN_FLIGHT: usize = 2;

/// How long a migration waits for another instance's before trying again.
const MIGRATION_RETRY: Duration = Duration::from_millis(200);

pub struct Server {
    hrana: Arc<Hrana>,
    config: config::Server,
    in_flight: Semaphore,
    writes_in_flight: Semaphore,
    /// Whether rows stored before the index was kept in each delivery's commit are being indexed.
    catching_up: Arc<AtomicBool>,
}

impl Server {
    /// Connects to the server and makes sure its schema is current: one round trip when it is.
    pub async fn open(config: &config::Server) -> Result<Server, StoreError> {
        let hrana = Arc::new(Hrana::new(&config.url, &config.auth_token)?);
        let server = Server {
            hrana,
            config: config.clone(),
            in_flight: Semaphore::new(SERVER_CALLS_IN_FLIGHT),
            writes_in_flight: Semaphore::new(SERVER_WRITES_IN_FLIGHT),
            catching_up: Arc::new(AtomicBool::new(false)),
        };
        let version = server.execute(&Statement::new("PRAGMA user_version", Vec::new())).await?;
        match version.rows.first().and_then(|row| row.first()) {
            Some(Value::Integer(version)) if *version == i64::from(schema::LATEST) => {}
            _ => server.migrate().await?,
        }
        Ok(server)
    }

    /// Applies the migrations through a libsql connection (they run once per database, so their round trips
    /// do not matter). Instances starting at once on an empty server take turns: a migration that meets
    /// another's lock tries again until the caller's deadline, and then finds the schema current.
    async fn migrate(&self) -> Result<(), StoreError> {
        let conn = connect(&self.config).await?.connect()?;
        loop {
            match schema::migrate(&conn).await {
                Err(e) if is_lock_conflict(&e) => {
                    tracing::info!(error = %e, "another instance is migrating the server's database; waiting");
                    tokio::time::sleep(MIGRATION_RETRY).await;
                }
                result => return result,
            }
        }
    }

    /// Inserts `messages` and indexes their text in one transaction, one round trip.
    ///
    /// The index takes the stored row of an id only if its text is this delivery's (a duplicate with other
    /// text leaves the first write's row alone), and the watermark moves past it only when it is the next
    /// row, so every row at or below the watermark is indexed. Safe to run again if an answer was lost: the
    /// rows then exist, and the retry answers them as duplicates: stored once and acknowledged, only the
    /// log's `created`/`duplicate` is off (`created_at` cannot tell attempts apart, since concurrent
    /// deliveries of one id can share its millisecond).
    pub async fn insert_all(&self, messages: &[Message]) -> Result<Vec<Inserted>, StoreError> {
        let created_at = now();
        let statements: Vec<Statement> =
            messages.iter().flat_map(|message| insert_and_index(&created_at, message)).collect();
        let outcomes = {
            let _write = self.writes_in_flight.acquire().await;
            let _turn = self.in_flight.acquire().await;
            self.hrana.transaction(&statements).await?
        };
        let mut inserted = Vec::with_capacity(messages.len());
        let mut behind = false;
        for steps in outcomes.chunks(STATEMENTS_PER_MESSAGE) {
            let created = !steps[0].rows.is_empty();
            // A new row the watermark could not move onto sits above rows stored before the index was kept here.
            behind |= created && steps[2].affected_row_count == 0;
            inserted.push(if created { Inserted::Created } else { Inserted::Duplicate });
        }
        if behind {
            self.catch_up();
        }
        Ok(inserted)
    }

    /// Readiness in one round trip: the probe row's update commits, and returns the schema version and the
    /// index's watermark. A watermark behind the last row (rows stored before the index was kept in each
    /// commit) starts a catch-up.
    pub async fn probe(&self) -> Result<(), StoreError> {
        let probe = Statement::new(format!("{WRITE_PROBE} RETURNING {}", schema::CURRENT_SCHEMA), vec![now().into()]);
        let answer = self.execute(&probe).await?;
        let row = answer.rows.first().ok_or(StoreError::Unexpected("the probe row is missing"))?;
        schema::check(row)?;
        if let (Some(Value::Integer(watermark)), Some(Value::Integer(last))) = (row.get(3), row.get(5)) {
            if watermark < last {
                self.catch_up();
            }
        }
        Ok(())
    }

    pub async fn fetch(&self, query: &Query) -> Result<Table, StoreError> {
        // The arguments are cloned only because a statement owns its own; they are few and small.
        let statement = Statement::new(query.sql.clone(), query.args.clone());
        Ok(Table::from_rows(self.execute(&statement).await?.rows))
    }

    async fn execute(&self, statement: &Statement) -> Result<hrana::Outcome, StoreError> {
        let _turn = self.in_flight.acquire().await;
        Ok(self.hrana.execute(statement).await?)
    }

    /// Indexes the rows past the watermark in the background, one task at a time.
    fn catch_up(&self) {
        if self.catching_up.swap(true, Ordering::AcqRel) {
            return;
        }
        let (hrana, catching_up) = (Arc::clone(&self.hrana), Arc::clone(&self.catching_up));
        tokio::spawn(async move {
            let _done = Reset(catching_up);
            loop {
                match index_chunk(&hrana).await {
                    Ok(indexed) if indexed == INDEX_CHUNK => {}
                    Ok(_) => return,
                    Err(e) => {
                        tracing::warn!(error = %e, "indexing older rows failed; will retry");
                        return;
                    }
                }
            }
        });
    }
}

/// How many statements [`insert_and_index`] makes of one message.
const STATEMENTS_PER_MESSAGE: usize = 3;

/// One message's part of a delivery's transaction: insert it, index its text, move the watermark onto it.
fn insert_and_index(created_at: &str, message: &Message) -> [Statement; STATEMENTS_PER_MESSAGE] {
    let folded = message.text.as_deref().map(fold_case);
    let this_row =
        || -> Vec<Value> { vec![message.message_id.clone().into(), folded.clone().map_or(Value::Null, Value::Text)] };
    let indexed = folded.as_deref().map_or(Value::Null, |text| Value::Text(search_index::indexable(text)));
    [
        Statement::new(INSERT_MESSAGE, insert_args(created_at, message)),
        Statement::new(
            "INSERT OR REPLACE INTO messages_text (rowid, text_folded) SELECT rowid, ?3 FROM messages \
             WHERE message_id = ?1 AND text_folded IS ?2 AND ?3 IS NOT NULL \
             AND rowid > (SELECT indexed_through FROM text_index_state)",
            [this_row(), vec![indexed]].concat(),
        ),
        Statement::new(
            "UPDATE text_index_state SET indexed_through = indexed_through + 1 WHERE indexed_through + 1 = \
             (SELECT rowid FROM messages WHERE message_id = ?1 AND text_folded IS ?2)",
            this_row(),
        ),
    ]
}

/// Clears the flag when the catch-up ends, however it ends.
struct Reset(Arc<AtomicBool>);

impl Drop for Reset {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// Indexes the next chunk of rows past the watermark in two round trips: one to read them, one transaction
/// that indexes them and moves the watermark, unless another instance moved it meanwhile. Returns how many
/// rows it read.
async fn index_chunk(hrana: &Hrana) -> Result<usize, HranaError> {
    let pending = hrana
        .execute(&Statement::new(
            "SELECT (SELECT indexed_through FROM text_index_state), rowid, CAST(text_folded AS BLOB) FROM messages \
             WHERE rowid > (SELECT indexed_through FROM text_index_state) ORDER BY rowid LIMIT ?1",
            vec![Value::Integer(INDEX_CHUNK as i64)],
        ))
        .await?
        .rows;
    let (Some(first), Some(last)) = (pending.first(), pending.last()) else { return Ok(0) };
    let (watermark, last) = (first[0].clone(), last[1].clone());
    let mut statements: Vec<Statement> = pending
        .iter()
        .filter_map(|row| match (&row[1], &row[2]) {
            (rowid, Value::Blob(text)) => Some(Statement::new(
                "INSERT OR REPLACE INTO messages_text (rowid, text_folded) VALUES (?1, ?2)",
                vec![rowid.clone(), Value::Text(search_index::indexable(&String::from_utf8_lossy(text)))],
            )),
            _ => None,
        })
        .collect();
    statements.push(Statement::new(
        "UPDATE text_index_state SET indexed_through = ?1 WHERE indexed_through = ?2",
        vec![last, watermark],
    ));
    hrana.transaction(&statements).await?;
    Ok(pending.len())
}

/// Whether a migration failed only because another instance holds the database's write lock.
fn is_lock_conflict(error: &StoreError) -> bool {
    let text = error.to_string();
    text.contains("SQLITE_BUSY") || text.contains("database is locked") || text.contains("SQLITE_LOCKED")
}

/// A libsql connection to the server, for the migrations, which run once per database.
async fn connect(server: &config::Server) -> Result<libsql::Database, StoreError> {
    libsql::Builder::new_remote(server.url.clone(), server.auth_token.clone())
        .build()
        .await
        .map_err(|e| StoreError::Open(format!("{server:?}: {e}")))
}
