//! Connections with their prepared statements, opened on demand and reused, and the two ways queries run on
//! one: inside a read snapshot, or on their own.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use libsql::Connection;
use tokio::sync::{Semaphore, SemaphorePermit};

use super::session::Session;
use super::StoreError;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Prepares a connection the pool has just opened (its pragmas), before its first use.
pub type Setup = for<'c> fn(&'c Connection) -> BoxFuture<'c, Result<(), StoreError>>;

pub struct Pool {
    db: libsql::Database,
    setup: Option<Setup>,
    idle: Mutex<Vec<Arc<Session>>>,
    /// How many calls may be in flight at once, where that is capped; the others queue here, within their
    /// deadline.
    in_flight: Option<Semaphore>,
}

impl Pool {
    pub fn new(db: libsql::Database, setup: Option<Setup>, in_flight: Option<usize>) -> Pool {
        Pool { db, setup, idle: Mutex::new(Vec::new()), in_flight: in_flight.map(Semaphore::new) }
    }

    /// A turn to call the database, where the number of calls in flight is capped.
    async fn turn(&self) -> Option<SemaphorePermit<'_>> {
        match &self.in_flight {
            Some(semaphore) => semaphore.acquire().await.ok(),
            None => None,
        }
    }

    /// Runs `work` inside one read transaction, so its queries see one consistent snapshot.
    pub async fn snapshot<T, F, Fut>(&self, work: F) -> Result<T, StoreError>
    where
        F: FnOnce(Arc<Session>) -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let _turn = self.turn().await;
        let session = self.take().await?;
        session.run("BEGIN", ()).await?;
        let result = work(Arc::clone(&session)).await;
        let ended = session.end_transaction(if result.is_ok() { "COMMIT" } else { "ROLLBACK" }).await;
        if ended.is_ok() {
            self.give_back(session);
        }
        let value = result?;
        ended?;
        Ok(value)
    }

    /// Runs `work` on a connection of the pool, outside any transaction of ours.
    pub async fn with<T, F, Fut>(&self, work: F) -> Result<T, StoreError>
    where
        F: FnOnce(Arc<Session>) -> Fut,
        Fut: Future<Output = Result<T, libsql::Error>>,
    {
        let _turn = self.turn().await;
        let session = self.take().await?;
        let value = work(Arc::clone(&session)).await?;
        self.give_back(session);
        Ok(value)
    }

    /// An idle connection, or a new one.
    pub async fn take(&self) -> Result<Arc<Session>, StoreError> {
        if let Some(session) = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop() {
            return Ok(session);
        }
        let conn = self.db.connect()?;
        if let Some(setup) = self.setup {
            setup(&conn).await?;
        }
        Ok(Arc::new(Session::new(conn)))
    }

    /// Returns a connection for reuse, unless it was left inside a transaction: that would pin an old
    /// snapshot (or, on a server, a stream the server has abandoned).
    fn give_back(&self, session: Arc<Session>) {
        if session.conn.is_autocommit() {
            self.idle.lock().unwrap_or_else(|p| p.into_inner()).push(session);
        }
    }
}
