//! Storage on a libSQL server (sqld, or Turso as a service), spoken to over HTTP (Hrana), directly or
//! through an embedded replica.
//!
//! The server commits and serializes writes itself, so there is no writer thread: each delivery is one
//! `INSERT … ON CONFLICT DO NOTHING RETURNING rowid` that the server commits before it answers, and the
//! primary key on the server keeps it exactly once however many instances share the server. The schema and
//! its migrations are the local file's; the trigram index is fed by a task of each instance, in the same
//! chunks as locally. Instances indexing at once take turns on the server's write lock, and each skips what
//! another has done.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use super::{index_text_chunk, insert_row, now, Inserted, Pool, Session, StoreError, INDEX_CHUNK};
use crate::config::{Replica, Server};
use crate::message::Message;

/// How long new rows wait before the indexer takes them, so that a steady trickle of deliveries is indexed
/// in chunks rather than one transaction per row.
const INDEX_DELAY: Duration = Duration::from_millis(500);

pub(super) struct Writer {
    indexer: Arc<Notify>,
}

impl Writer {
    /// Starts the indexer on a connection of its own, and has it catch up with what is already stored.
    pub(super) async fn start(pool: &Pool) -> Result<Writer, StoreError> {
        let session = pool.take().await?;
        let indexer = Arc::new(Notify::new());
        tokio::spawn(index_loop(session, Arc::clone(&indexer)));
        indexer.notify_one();
        Ok(Writer { indexer })
    }

    pub(super) async fn insert(&self, pool: &Pool, message: &Message) -> Result<Inserted, StoreError> {
        let created_at = now();
        let inserted = pool.with(|session| async move { insert_row(&session, &created_at, message).await }).await?;
        if inserted == Inserted::Created {
            self.indexer.notify_one();
        }
        Ok(inserted)
    }
}

async fn index_loop(session: Arc<Session>, wake: Arc<Notify>) {
    loop {
        wake.notified().await;
        tokio::time::sleep(INDEX_DELAY).await;
        while index_text_chunk(&session).await == INDEX_CHUNK {}
    }
}

/// Opens the server's database. Nothing is sent until the first statement.
#[cfg(feature = "remote")]
pub(super) async fn connect(server: &Server) -> Result<libsql::Database, StoreError> {
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
pub(super) async fn open_replica(replica: &Replica) -> Result<libsql::Database, StoreError> {
    let Replica { path, server, sync_interval } = replica;
    super::create_parent_dir(path)?;
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
pub(super) async fn connect(server: &Server) -> Result<libsql::Database, StoreError> {
    Err(StoreError::Open(format!("{server:?}: this build has no libSQL server support")))
}

#[cfg(not(feature = "remote"))]
pub(super) async fn open_replica(replica: &Replica) -> Result<libsql::Database, StoreError> {
    Err(StoreError::Open(format!("{:?}: this build has no libSQL server support", replica.server)))
}
