//! A connection that keeps its prepared statements.
//!
//! libsql prepares a statement anew on every `query`/`execute` call. For the short statements this service
//! runs, preparing costs more than running — an INSERT into a table with triggers even compiles the trigger
//! programs each time — so each connection keeps every statement it has prepared, keyed by its SQL.
//!
//! Sessions serve the local file: its writer and its readers. Migrations run on a plain connection, and a
//! libSQL server is spoken to by `super::server` itself, one round trip per call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use libsql::params::IntoParams;
use libsql::{Connection, Rows, Statement};

pub struct Session {
    pub conn: Connection,
    statements: Mutex<Statements>,
}

/// Statements a connection keeps prepared at most. The service runs a few dozen distinct ones; past this,
/// the one used least recently is finalized, so no sequence of requests grows a connection's memory.
const STATEMENTS_KEPT: usize = 64;

/// Prepared statements by their SQL, each with when it was last used.
#[derive(Default)]
struct Statements {
    by_sql: HashMap<String, (Arc<Statement>, u64)>,
    clock: u64,
}

impl Session {
    pub fn new(conn: Connection) -> Session {
        Session { conn, statements: Mutex::new(Statements::default()) }
    }

    /// The prepared statement for `sql`, reset so it can be bound afresh.
    async fn statement(&self, sql: &str) -> Result<Arc<Statement>, libsql::Error> {
        let cached = self.statements.lock().unwrap_or_else(|p| p.into_inner()).get(sql);
        let statement = match cached {
            Some(statement) => statement,
            None => {
                let statement = Arc::new(self.conn.prepare(sql).await?);
                self.statements.lock().unwrap_or_else(|p| p.into_inner()).insert(sql, Arc::clone(&statement));
                statement
            }
        };
        statement.reset();
        Ok(statement)
    }

    pub async fn query(&self, sql: &str, params: impl IntoParams) -> Result<Rows, libsql::Error> {
        self.statement(sql).await?.query(params).await
    }

    /// Ends the current transaction (`COMMIT` or `ROLLBACK`). Every statement is reset first: one read only
    /// partly (a `RETURNING` row, a `LIMIT 1`) is still active and would make `COMMIT` fail.
    pub async fn end_transaction(&self, sql: &str) -> Result<(), libsql::Error> {
        for (statement, _) in self.statements.lock().unwrap_or_else(|p| p.into_inner()).by_sql.values() {
            statement.reset();
        }
        self.run(sql, ()).await
    }

    /// Runs `work` in one `BEGIN IMMEDIATE` transaction: committed if it succeeds, rolled back if anything,
    /// the commit included, fails.
    pub async fn write_transaction<T, Fut>(&self, work: impl FnOnce() -> Fut) -> Result<T, libsql::Error>
    where
        Fut: std::future::Future<Output = Result<T, libsql::Error>>,
    {
        self.run("BEGIN IMMEDIATE", ()).await?;
        let result = async {
            let value = work().await?;
            self.end_transaction("COMMIT").await?;
            Ok(value)
        }
        .await;
        if result.is_err() && !self.conn.is_autocommit() {
            let _ = self.end_transaction("ROLLBACK").await;
        }
        result
    }

    /// Runs a statement that returns no rows.
    pub async fn run(&self, sql: &str, params: impl IntoParams) -> Result<(), libsql::Error> {
        self.statement(sql).await?.run(params).await
    }

    /// Every row of a query, each as its column values.
    pub async fn fetch(&self, sql: &str, params: impl IntoParams) -> Result<super::rows::Table, libsql::Error> {
        super::rows::collect(self.query(sql, params).await?).await
    }
}

impl Statements {
    fn get(&mut self, sql: &str) -> Option<Arc<Statement>> {
        self.clock += 1;
        let (statement, used) = self.by_sql.get_mut(sql)?;
        *used = self.clock;
        Some(Arc::clone(statement))
    }

    fn insert(&mut self, sql: &str, statement: Arc<Statement>) {
        if self.by_sql.len() >= STATEMENTS_KEPT {
            let oldest = self.by_sql.iter().min_by_key(|(_, (_, used))| *used).map(|(sql, _)| sql.clone());
            if let Some(oldest) = oldest {
                self.by_sql.remove(&oldest);
            }
        }
        self.clock += 1;
        self.by_sql.insert(sql.to_owned(), (statement, self.clock));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_connection_keeps_its_statements_used_most_recently_and_no_more() {
        let conn = libsql::Builder::new_local(":memory:").build().await.unwrap().connect().unwrap();
        let session = Session::new(conn);
        for n in 0..3 * STATEMENTS_KEPT {
            session.fetch("SELECT 1", ()).await.unwrap();
            session.fetch(&format!("SELECT {n}"), ()).await.unwrap();
        }
        let statements = session.statements.lock().unwrap();
        assert_eq!(statements.by_sql.len(), STATEMENTS_KEPT);
        assert!(statements.by_sql.contains_key("SELECT 1"), "used all along");
        assert!(!statements.by_sql.contains_key("SELECT 5"), "used long ago");
    }
}
