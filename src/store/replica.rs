//! An embedded replica of a libSQL server's database: reads come from a local copy, writes go to the server
//! as on the [`server`](super::server) back end, and the copy is brought up to date after each of this
//! instance's own writes (read your writes) and every sync interval (everyone else's). A new replica first
//! copies the server's whole history, so this is for long-lived instances, not for Lambda.

use super::file;
use super::pool::Turns;
use super::rows::{self, Table};
use super::server::Server;
use super::types::{Delivery, Query, StoreError, Stored};
use crate::config;

pub struct Replica {
    server: Server,
    /// The local copy.
    copy: libsql::Database,
    turns: Turns,
}

impl Replica {
    /// Opens (creating if needed) the local copy and brings it up to date, with the server's schema current.
    pub async fn open(replica: &config::Replica) -> Result<Replica, StoreError> {
        let config::Replica { path, server, sync_interval } = replica;
        file::create_parent_dir(path)?;
        let failed = |e: libsql::Error| StoreError::Open(format!("replica {} of {server:?}: {e}", path.display()));
        let db = libsql::Builder::new_remote_replica(path, server.url.clone(), server.auth_token.clone())
            .sync_interval(*sync_interval)
            .build()
            .await
            .map_err(failed)?;
        let (server_side, _) = Server::open(server, None).await?;
        db.sync().await.map_err(failed)?;
        Ok(Replica { server: server_side, copy: db, turns: Turns::new() })
    }

    /// Stores `delivery` on the server, then brings the local copy up to date so the next read sees it.
    pub async fn store(&self, delivery: &Delivery) -> Result<Stored, StoreError> {
        let inserted = self.server.store(delivery).await?;
        // The delivery is stored: a failed sync only delays this instance's reads of it, to the next one.
        if let Err(e) = self.copy.sync().await {
            tracing::warn!(error = %e, "replica sync after a write failed");
        }
        Ok(inserted)
    }

    /// The server commits the probe's write, with its schema current.
    pub async fn probe(&self) -> Result<(), StoreError> {
        self.server.probe().await
    }

    /// Prepared afresh on each call: a statement of a replica's connection that is run again returns its
    /// first run's rows. In its turn, as every read of a local file.
    pub async fn fetch(&self, query: &Query) -> Result<Table, StoreError> {
        let turn = self.turns.turn().await?;
        let conn = self.copy.connect()?;
        let read = async { Ok(rows::collect(conn.query(&query.sql, query.args.clone()).await?).await?) };
        turn.read(&conn, read).await
    }
}
