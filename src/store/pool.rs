//! Connections to a local file (the file's, or an embedded replica's) with their prepared statements, opened
//! on demand and reused.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use libsql::Connection;

use super::read::Query;
use super::rows::Table;
use super::session::Session;
use super::StoreError;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Prepares a connection the pool has just opened (its pragmas), before its first use.
pub type Setup = for<'c> fn(&'c Connection) -> BoxFuture<'c, Result<(), StoreError>>;

pub struct Pool {
    db: libsql::Database,
    setup: Option<Setup>,
    idle: Mutex<Vec<Arc<Session>>>,
}

impl Pool {
    pub fn new(db: libsql::Database, setup: Option<Setup>) -> Pool {
        Pool { db, setup, idle: Mutex::new(Vec::new()) }
    }

    /// The rows of `query`.
    pub async fn fetch(&self, query: &Query) -> Result<Table, StoreError> {
        self.with(|session| async move { session.fetch(&query.sql, query.args.clone()).await }).await
    }

    /// The rows of `first`, or if it has none those of `otherwise`, both in one read snapshot.
    pub async fn fetch_or(&self, first: &Query, otherwise: &Query) -> Result<Table, StoreError> {
        let session = self.take().await?;
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
        if ended.is_ok() {
            self.give_back(session);
        }
        let rows = rows?;
        ended?;
        Ok(rows)
    }

    /// Runs `work` on a connection of the pool, outside any transaction of ours.
    pub async fn with<T, F, Fut>(&self, work: F) -> Result<T, StoreError>
    where
        F: FnOnce(Arc<Session>) -> Fut,
        Fut: Future<Output = Result<T, libsql::Error>>,
    {
        let session = self.take().await?;
        let value = work(Arc::clone(&session)).await?;
        self.give_back(session);
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

    /// Returns a connection for reuse, unless it was left inside a transaction: that would pin an old
    /// snapshot.
    fn give_back(&self, session: Arc<Session>) {
        if session.conn.is_autocommit() {
            self.idle.lock().unwrap_or_else(|p| p.into_inner()).push(session);
        }
    }
}
