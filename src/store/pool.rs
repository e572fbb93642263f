//! The local file's read connections with their prepared statements, opened on demand and reused; and the
//! turns local reads take (the file's and an embedded replica's), so that a long one holds up nothing else.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use libsql::Connection;
use tokio::sync::{Semaphore, SemaphorePermit};

use super::rows::Table;
use super::session::Session;
use super::types::{Query, StoreError, DEADLINE};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Prepares a connection the pool has just opened (its pragmas), before its first use.
pub type Setup = for<'c> fn(&'c Connection) -> BoxFuture<'c, Result<(), StoreError>>;

pub struct Pool {
    db: libsql::Database,
    setup: Option<Setup>,
    idle: Mutex<Vec<Arc<Session>>>,
    turns: Turns,
}

impl Pool {
    pub fn new(db: libsql::Database, setup: Option<Setup>) -> Pool {
        Pool { db, setup, idle: Mutex::new(Vec::new()), turns: Turns::new() }
    }

    /// The rows of `query`.
    pub async fn fetch(&self, query: &Query) -> Result<Table, StoreError> {
        self.with(|session| async move { Ok(session.fetch(&query.sql, query.args.clone()).await?) }).await
    }

    /// The rows of `first`, or if it has none those of `otherwise`, both in one read snapshot.
    pub async fn fetch_or(&self, first: &Query, otherwise: &Query) -> Result<Table, StoreError> {
        self.with(|session| async move {
            session.run("BEGIN", ()).await?;
            let rows = async {
                let rows = session.fetch(&first.sql, first.args.clone()).await?;
                match rows.is_empty() {
                    true => session.fetch(&otherwise.sql, otherwise.args.clone()).await,
                    false => Ok(rows),
                }
            }
            .await;
            let ended = session.end_transaction(if rows.is_ok() { "COMMIT" } else { "ROLLBACK" }).await;
            let rows = rows?;
            ended?;
            Ok(rows)
        })
        .await
    }

    /// Runs `work` on a connection of the pool, outside any transaction of ours, in its turn ([`Turns`]).
    async fn with<T, F, Fut>(&self, work: F) -> Result<T, StoreError>
    where
        F: FnOnce(Arc<Session>) -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let turn = self.turns.turn().await?;
        let session = self.take().await?;
        let value = turn.read(&session.conn, work(Arc::clone(&session))).await?;
        // A connection left inside a transaction would pin an old snapshot.
        if session.conn.is_autocommit() {
            self.idle.lock().unwrap_or_else(|p| p.into_inner()).push(session);
        }
        Ok(value)
    }

    /// An idle connection, or a new one.
    async fn take(&self) -> Result<Arc<Session>, StoreError> {
        if let Some(session) = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop() {
            return Ok(session);
        }
        let conn = self.db.connect()?;
        if let Some(setup) = self.setup {
            setup(&conn).await?;
        }
        Ok(Arc::new(Session::new(conn)))
    }
}

/// Local reads take turns on the async workers: at most one fewer at once than there are workers, so one is
/// always free for everything else (the liveness probe above all) however long a read takes, and each is
/// interrupted at [`DEADLINE`]. libsql runs a local file's statements synchronously inside its futures;
/// handing each read to a thread of its own instead cost up to half the throughput of short reads.
pub struct Turns(Semaphore);

impl Turns {
    /// Turns for the runtime this is called on.
    pub fn new() -> Turns {
        let workers = tokio::runtime::Handle::try_current().map_or(1, |runtime| runtime.metrics().num_workers());
        Turns(Semaphore::new(workers.saturating_sub(1).max(1)))
    }

    /// Waits for a turn, which lasts until it is dropped. Taken before a connection, so no more connections
    /// are in use than there are turns.
    pub async fn turn(&self) -> Result<Turn<'_>, StoreError> {
        let permit = self.0.acquire().await.map_err(|_| StoreError::Unexpected("the read turns were closed"))?;
        Ok(Turn { _permit: permit })
    }
}

/// One read's turn on the workers, given back when dropped.
pub struct Turn<'a> {
    _permit: SemaphorePermit<'a>,
}

impl Turn<'_> {
    /// Runs `read` on `conn`; if it is still running at [`DEADLINE`], `conn` is interrupted and the read fails
    /// as timed out.
    pub async fn read<T>(
        self,
        conn: &Connection,
        read: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let fired = Arc::new(AtomicBool::new(false));
        let watchdog = {
            let (conn, fired) = (conn.clone(), Arc::clone(&fired));
            tokio::spawn(async move {
                tokio::time::sleep(DEADLINE).await;
                fired.store(true, Ordering::Release);
                let _ = conn.interrupt();
            })
        };
        let result = read.await;
        watchdog.abort();
        match fired.load(Ordering::Acquire) {
            true => Err(StoreError::TimedOut(DEADLINE)),
            false => result,
        }
    }
}
