//! The libSQL server back end (sqld, or Turso as a service), spoken to over HTTP with [`hrana`]: every
//! request is one round trip, and so is opening a database whose schema is current (a Lambda cold start);
//! an empty one takes two.
//!
//! The server commits and serializes writes itself, so there is no writer thread: a delivery is one
//! statement into the inbox ([`inbox`]), which keeps it exactly once however many instances share the
//! server, and whose trigger moves rows into `messages` and the text index in bulk, with no background
//! task: a Lambda instance is frozen between invocations. Only rows written into `messages` some other way
//! (another program, an older version) are indexed by a task, when readiness sees the watermark behind.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libsql::Value;
use tokio::sync::Semaphore;

use super::hrana::{self, Hrana, HranaError, Statement};
use super::rows::Table;
use super::search_index::{self, INDEX_CHUNK};
use super::types::{Delivery, Query, StoreError, Stored};
use super::write::{now, WRITE_PROBE};
use super::{inbox, schema, statuses};
use crate::config;

/// Calls one instance makes to a libSQL server at once. Each holds one of the server's connections (sqld has
/// 128 by default, shared by every instance) while it runs; beyond this, more in flight only makes a
/// shared server refuse connections (429) instead of answering a little later.
const SERVER_CALLS_IN_FLIGHT: usize = 16;

/// Deliveries one instance has in flight to a libSQL server at once. The server commits one at a time
/// whatever the number waiting, so more only wait there instead of here, and every writer waiting there
/// lengthens its queue (and sqld's queue can break under many; see docs/storage.md).
const SERVER_WRITES_IN_FLIGHT: usize = 2;

/// The schema version, and how many tables, indexes and triggers there are: none on an empty database.
const SCHEMA_STATE: &str =
    "SELECT (SELECT user_version FROM pragma_user_version), (SELECT count(*) FROM sqlite_schema)";

/// Statements of counts to share that wait for the next call, at most.
const STATEMENTS_TO_SHARE: usize = 16;

/// How long a migration waits for another instance's before trying again.
const MIGRATION_RETRY: Duration = Duration::from_millis(200);

pub struct Server {
    hrana: Arc<Hrana>,
    config: config::Server,
    in_flight: Semaphore,
    writes_in_flight: Semaphore,
    /// Whether rows written into `messages` some other way than through the inbox are being indexed.
    catching_up: Arc<AtomicBool>,
    /// What goes to the server before the next call: counts taken here, for the other instances.
    to_share: Mutex<Vec<Statement>>,
}

impl Server {
    /// Connects to the server and makes sure its schema is current: one round trip when it is, which also
    /// runs `also` (the search totals other instances shared) and returns its rows (none when it failed, as
    /// on a schema without them).
    pub async fn open(config: &config::Server, also: Option<&Query>) -> Result<(Server, Table), StoreError> {
        let hrana = Arc::new(Hrana::new(&config.url, &config.auth_token)?);
        let server = Server {
            hrana,
            config: config.clone(),
            in_flight: Semaphore::new(SERVER_CALLS_IN_FLIGHT),
            writes_in_flight: Semaphore::new(SERVER_WRITES_IN_FLIGHT),
            catching_up: Arc::new(AtomicBool::new(false)),
            to_share: Mutex::new(Vec::new()),
        };
        let mut start = vec![Statement::new(SCHEMA_STATE, Vec::new())];
        start.extend(also.map(|query| Statement::new(query.sql.clone(), query.args.clone())));
        let mut answers = server.hrana.pipeline(&start).await?.into_iter();
        let state = answers.next().ok_or(StoreError::Unexpected("no schema state"))??;
        let also_rows =
            answers.next().and_then(Result::ok).map_or(Table::from_rows(Vec::new()), |o| Table::from_rows(o.rows));
        match state.rows.first().map(Vec::as_slice) {
            Some([Value::Integer(version), _]) if *version == i64::from(schema::LATEST) => {}
            Some([Value::Integer(0), Value::Integer(0)]) => server.create_schema().await?,
            _ => server.migrate().await?,
        }
        Ok((server, also_rows))
    }

    /// Sends `statements` (a count to share with the fleet's other instances) before this instance's next call,
    /// in its round trip. A few at most wait: more are dropped, as a count not shared is only taken again.
    pub fn share(&self, statements: [Query; 2]) {
        let mut waiting = self.to_share.lock().unwrap_or_else(|p| p.into_inner());
        if waiting.len() < STATEMENTS_TO_SHARE {
            waiting.extend(statements.into_iter().map(|query| Statement::new(query.sql, query.args)));
        }
    }

    /// Creates the current schema on an empty database in one round trip. If another instance starting at
    /// the same moment created it first, this one's transaction fails, and the migrations find the schema
    /// current.
    async fn create_schema(&self) -> Result<(), StoreError> {
        let statements: Vec<Statement> = schema::from_empty().map(|sql| Statement::new(sql, Vec::new())).collect();
        if let Err(e) = self.hrana.transaction(&statements).await {
            tracing::info!(error = %e, "the schema was not created here; another instance may have created it");
            self.migrate().await?;
        }
        Ok(())
    }

    /// Applies the migrations through a libsql connection (they run once per database, so their round trips
    /// do not matter). Instances starting at once take turns: a migration that meets another's lock tries
    /// again until the caller's deadline, and then finds the schema current.
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

    /// Stores `delivery` in one round trip: its messages in one statement ([`inbox`] says where and why), its
    /// statuses in another, and both in one transaction when it has both. Safe to run again if an answer was
    /// lost: the rows then exist, and the retry answers them as duplicates: stored once and acknowledged,
    /// only the log's `created`/`duplicate` is off.
    pub async fn store(&self, delivery: &Delivery) -> Result<Stored, StoreError> {
        let Delivery { messages, statuses } = delivery;
        let created_at = now();
        let _write = self.writes_in_flight.acquire().await;
        let (added_messages, added_statuses) = match (messages.is_empty(), statuses.is_empty()) {
            (_, true) => (self.fetch(&inbox::delivery(&created_at, messages)).await?, Table::from_rows(Vec::new())),
            (true, false) => {
                (Table::from_rows(Vec::new()), self.fetch(&statuses::delivery(&created_at, statuses)).await?)
            }
            (false, false) => {
                let both = [inbox::delivery(&created_at, messages), statuses::delivery(&created_at, statuses)]
                    .map(|query| Statement::new(query.sql, query.args));
                let _turn = self.in_flight.acquire().await;
                let mut outcomes = self.hrana.transaction(&both).await?.into_iter().map(|o| Table::from_rows(o.rows));
                let mut next = || outcomes.next().ok_or(StoreError::Unexpected("a statement's outcome is missing"));
                (next()?, next()?)
            }
        };
        Ok(Stored {
            messages: inbox::outcomes(messages, added_messages)?,
            statuses: statuses::outcomes(statuses, added_statuses)?,
        })
    }

    /// Readiness in one round trip: the probe row's update commits, and returns the schema version and the
    /// index's watermark. A watermark behind the last row of `messages` (rows written there some other way
    /// than through the inbox) starts a catch-up.
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

    /// Runs `statement`, after whatever counts wait to be shared, in one round trip.
    async fn execute(&self, statement: &Statement) -> Result<hrana::Outcome, StoreError> {
        let mut statements = std::mem::take(&mut *self.to_share.lock().unwrap_or_else(|p| p.into_inner()));
        let _turn = self.in_flight.acquire().await;
        if statements.is_empty() {
            return Ok(self.hrana.execute(statement).await?);
        }
        statements.push(Statement::new(statement.sql.clone(), statement.args.clone()));
        let mut outcomes = self.hrana.pipeline(&statements).await?;
        let outcome = outcomes.pop().ok_or(StoreError::Unexpected("no outcome"))?;
        for failed in outcomes.iter().filter_map(|outcome| outcome.as_ref().err()) {
            tracing::warn!(error = %failed, "sharing a search total failed");
        }
        Ok(outcome?)
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
        .execute(&Statement::new(search_index::PENDING_ROWS, vec![Value::Integer(INDEX_CHUNK as i64)]))
        .await?
        .rows;
    let (Some(first), Some(last)) = (pending.first(), pending.last()) else { return Ok(0) };
    let (watermark, last) = (first[0].clone(), last[1].clone());
    let mut statements: Vec<Statement> = pending
        .iter()
        .filter_map(|row| {
            let text = search_index::indexable_text(&row[2])?;
            Some(Statement::new(search_index::INDEX_ROW, vec![row[1].clone(), Value::Text(text)]))
        })
        .collect();
    statements.push(Statement::new(search_index::ADVANCE_WATERMARK, vec![last, watermark]));
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
