//! The libSQL server back end (sqld, or Turso as a service), spoken to over HTTP (Hrana), directly or
//! through an embedded replica.
//!
//! The server commits and serializes writes itself, so there is no writer thread: each delivery is one
//! `INSERT … ON CONFLICT DO NOTHING RETURNING rowid` that the server commits before it answers, and the
//! primary key on the server keeps it exactly once however many instances share the server. Calls go
//! through the pool, at most [`SERVER_CALLS_IN_FLIGHT`] at once. The trigram index is fed by a task of each
//! instance; instances indexing at once take turns on the server's write lock, and each skips what another
//! has done.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use super::pool::Pool;
use super::search_index::Indexer;
use super::session::Session;
use super::write::{insert_row, now, write_probe};
use super::{schema, within, Inserted, StoreError};
use crate::config::{Replica, Server};
use crate::message::Message;

/// Calls one instance makes to a libSQL server at once. Each holds one of the server's connections (sqld has
/// 128 by default, shared by every instance) while it runs; beyond this, more in flight only makes a
/// shared server refuse connections (429) instead of answering a little later.
const SERVER_CALLS_IN_FLIGHT: usize = 16;

/// How long new rows wait before the indexer takes them, so that a steady trickle of deliveries is indexed
/// in chunks rather than one transaction per row.
const INDEX_DELAY: Duration = Duration::from_millis(500);

pub struct Writer {
    /// Rows this instance created since the indexer last looked, and the indexer's wake-up.
    created: Arc<AtomicUsize>,
    indexer: Arc<Notify>,
}

/// Opens `database` within `deadline`, migrates it, and starts the indexer.
pub async fn open(
    database: impl Future<Output = Result<libsql::Database, StoreError>>,
    deadline: Duration,
) -> Result<(Writer, Pool), StoreError> {
    within(deadline, async {
        let db = database.await?;
        schema::migrate(&db.connect()?).await?;
        let pool = Pool::new(db, None, Some(SERVER_CALLS_IN_FLIGHT));
        let writer = Writer::start(&pool).await?;
        Ok((writer, pool))
    })
    .await
}

impl Writer {
    /// Starts the indexer on a connection of its own, and has it catch up with what is already stored.
    async fn start(pool: &Pool) -> Result<Writer, StoreError> {
        let session = pool.take().await?;
        let (created, indexer) = (Arc::new(AtomicUsize::new(0)), Arc::new(Notify::new()));
        tokio::spawn(index_loop(session, Arc::clone(&created), Arc::clone(&indexer)));
        indexer.notify_one();
        Ok(Writer { created, indexer })
    }

    pub async fn insert(&self, pool: &Pool, message: &Message) -> Result<Inserted, StoreError> {
        let created_at = now();
        let inserted = pool.with(|session| async move { insert_row(&session, &created_at, message).await }).await?;
        if inserted == Inserted::Created {
            self.created.fetch_add(1, Ordering::Relaxed);
            self.indexer.notify_one();
        }
        Ok(inserted)
    }
}

/// The readiness probe's write, committed by the server.
pub async fn probe(pool: &Pool) -> Result<(), StoreError> {
    pool.with(|session| async move { write_probe(&session).await }).await
}

async fn index_loop(session: Arc<Session>, created: Arc<AtomicUsize>, wake: Arc<Notify>) {
    let mut indexer = Indexer::new();
    loop {
        wake.notified().await;
        tokio::time::sleep(INDEX_DELAY).await;
        indexer.rows_added(created.swap(0, Ordering::Relaxed));
        indexer.catch_up(&session).await;
    }
}

/// Opens the server's database. Nothing is sent until the first statement.
#[cfg(feature = "remote")]
pub async fn connect(server: &Server) -> Result<libsql::Database, StoreError> {
    libsql::Builder::new_remote(server.url.clone(), server.auth_token.clone())
        .build()
        .await
        .map_err(|e| StoreError::Open(format!("{server:?}: {e}")))
}

/// Opens (creating if needed) an embedded replica of the server's database and brings it up to date. Reads
/// are served from the local file; writes go to the server, and the replica waits for each of this
/// instance's own writes to come back before the next read (read your writes). Other instances' writes
/// arrive with the periodic sync.
#[cfg(feature = "remote")]
pub async fn open_replica(replica: &Replica) -> Result<libsql::Database, StoreError> {
    let Replica { path, server, sync_interval } = replica;
    super::file::create_parent_dir(path)?;
    let failed = |e: libsql::Error| StoreError::Open(format!("replica {} of {server:?}: {e}", path.display()));
    let db = libsql::Builder::new_remote_replica(path, server.url.clone(), server.auth_token.clone())
        .sync_interval(*sync_interval)
        .read_your_writes(true)
        .build()
        .await
        .map_err(failed)?;
    // Migrations read the schema version from the replica, so it must have the server's first.
    db.sync().await.map_err(failed)?;
    Ok(db)
}

/// Without the `remote` feature the configuration refuses server URLs, so this is never reached.
#[cfg(not(feature = "remote"))]
pub async fn connect(server: &Server) -> Result<libsql::Database, StoreError> {
    Err(StoreError::Open(format!("{server:?}: this build has no libSQL server support")))
}

#[cfg(not(feature = "remote"))]
pub async fn open_replica(replica: &Replica) -> Result<libsql::Database, StoreError> {
    Err(StoreError::Open(format!("{:?}: this build has no libSQL server support", replica.server)))
}
