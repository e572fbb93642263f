//! A connection that keeps its prepared statements.
//!
//! libsql prepares a statement anew on every `query`/`execute` call. For the short statements this service
//! runs, preparing costs more than running — an INSERT into a table with triggers even compiles the trigger
//! programs each time — so each connection keeps every statement it has prepared, keyed by its SQL.
//!
//! Sessions serve the local file (and the migrations, whichever the database); a libSQL server is otherwise
//! spoken to by `super::server` itself, one round trip per call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use libsql::params::IntoParams;
use libsql::{Connection, Rows, Statement};

pub struct Session {
    pub conn: Connection,
    statements: Mutex<HashMap<String, Arc<Statement>>>,
}

impl Session {
    pub fn new(conn: Connection) -> Session {
        Session { conn, statements: Mutex::new(HashMap::new()) }
    }

    /// The prepared statement for `sql`, reset so it can be bound afresh.
    async fn statement(&self, sql: &str) -> Result<Arc<Statement>, libsql::Error> {
        let cached = self.statements.lock().unwrap_or_else(|p| p.into_inner()).get(sql).cloned();
        let statement = match cached {
            Some(statement) => statement,
            None => {
                let statement = Arc::new(self.conn.prepare(sql).await?);
                self.statements
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(sql.to_owned(), Arc::clone(&statement));
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
        for statement in self.statements.lock().unwrap_or_else(|p| p.into_inner()).values() {
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
