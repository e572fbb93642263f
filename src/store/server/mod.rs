//! The libSQL server back end (sqld, or Turso as a service), spoken to over HTTP with [`hrana`]: every
//! request is one round trip, and so is opening a database whose schema is current (a Lambda cold start).
//!
//! The server commits and serializes writes itself, so there is no writer thread: a delivery is one
//! transaction that inserts the row (`INSERT … ON CONFLICT DO NOTHING`, so the primary key on the server
//! keeps it exactly once however many instances share the server) and adds it to the text index in the same
//! commit. No background task keeps the index current, since a Lambda instance is frozen between
//! invocations and its tasks would not run.

mod hrana;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use libsql::Value;
use tokio::sync::Semaphore;

use super::read::Query;
use super::rows::Row;
use super::search_index::{self, Indexer};
use super::session::Session;
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

/// How long a migration waits for another instance's before trying again.
const MIGRATION_RETRY: Duration = Duration::from_millis(200);

pub struct Server {
    hrana: Hrana,
    config: config::Server,
    in_flight: Semaphore,
    /// Whether rows from before the index was kept in each delivery's commit are being indexed.
    catching_up: Arc<AtomicBool>,
}

impl Server {
    /// Connects to the server and makes sure its schema is current: one round trip when it is.
    pub async fn open(config: &config::Server) -> Result<Server, StoreError> {
        let hrana = Hrana::new(&config.url, &config.auth_token)?;
        let server = Server {
            hrana,
            config: config.clone(),
            in_flight: Semaphore::new(SERVER_CALLS_IN_FLIGHT),
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

    /// Inserts `message` and indexes its text in one transaction, one round trip. Created when the insert
    /// changed a row.
    ///
    /// The index takes the stored row of this id only if its text is this delivery's (a duplicate with other
    /// text leaves the first write's row alone), and the watermark moves past it only when it is the next
    /// row, so every row at or below the watermark is indexed. Safe to run again if an answer was lost.
    pub async fn insert(&self, message: &Message) -> Result<Inserted, StoreError> {
        let folded = message.text.as_deref().map(fold_case);
        let this_row = || -> Vec<Value> {
            vec![message.message_id.clone().into(), folded.clone().map_or(Value::Null, Value::Text)]
        };
        let indexed = folded.as_deref().map_or(Value::Null, |text| Value::Text(search_index::indexable(text)));
        let statements = [
            Statement::new(INSERT_MESSAGE, insert_args(&now(), message)),
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
        ];
        let _turn = self.in_flight.acquire().await;
        let outcomes = self.hrana.transaction(&statements).await?;
        let changed = outcomes.first().map_or(0, |outcome| outcome.affected_row_count);
        Ok(if changed == 1 { Inserted::Created } else { Inserted::Duplicate })
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

    pub async fn fetch(&self, query: &Query) -> Result<Vec<Row>, StoreError> {
        // The arguments are cloned only because a statement owns its own; they are few and small.
        let statement = Statement::new(query.sql.clone(), query.args.clone());
        Ok(self.execute(&statement).await?.rows)
    }

    async fn execute(&self, statement: &Statement) -> Result<hrana::Outcome, StoreError> {
        let _turn = self.in_flight.acquire().await;
        Ok(self.hrana.execute(statement).await?)
    }

    /// Indexes the rows past the watermark in the background, once at a time.
    fn catch_up(&self) {
        if self.catching_up.swap(true, Ordering::AcqRel) {
            return;
        }
        let (config, catching_up) = (self.config.clone(), Arc::clone(&self.catching_up));
        tokio::spawn(async move {
            match connect(&config).await.and_then(|db| Ok(db.connect()?)) {
                Ok(conn) => Indexer::new().catch_up(&Session::new(conn)).await,
                Err(e) => tracing::warn!(error = %e, "cannot index older rows now; will retry"),
            }
            catching_up.store(false, Ordering::Release);
        });
    }
}

/// Whether a migration failed only because another instance holds the database's write lock.
fn is_lock_conflict(error: &StoreError) -> bool {
    let text = error.to_string();
    text.contains("SQLITE_BUSY") || text.contains("database is locked") || text.contains("SQLITE_LOCKED")
}

/// A libsql connection to the server, for what runs once per database or in the background.
#[cfg(feature = "remote")]
pub async fn connect(server: &config::Server) -> Result<libsql::Database, StoreError> {
    libsql::Builder::new_remote(server.url.clone(), server.auth_token.clone())
        .build()
        .await
        .map_err(|e| StoreError::Open(format!("{server:?}: {e}")))
}
