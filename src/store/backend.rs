//! The one interface over the two back ends, chosen when a store opens: what differs between a local file
//! and a libSQL server is how a delivery is committed, how readiness is proven, whether calls need a
//! deadline, and whether the back end can stop serving.

use std::time::Duration;

use super::pool::Pool;
use super::{file, server, Inserted, StoreError, SERVER_DEADLINE};
use crate::message::Message;

pub enum Backend {
    /// A local SQLite file and the writer thread that commits to it.
    File(file::Writer),
    /// A libSQL server, directly or through an embedded replica.
    Server(server::Writer),
}

impl Backend {
    /// Commits `message` unless its id is stored; returns once the commit is durable.
    pub async fn insert(&self, pool: &Pool, message: Message) -> Result<Inserted, StoreError> {
        match self {
            Backend::File(writer) => writer.insert(message).await,
            Backend::Server(writer) => writer.insert(pool, &message).await,
        }
    }

    /// Commits the readiness probe's write.
    pub async fn probe(&self, pool: &Pool) -> Result<(), StoreError> {
        match self {
            Backend::File(writer) => writer.probe().await,
            Backend::Server(_) => server::probe(pool).await,
        }
    }

    /// The bound on each call: a server may be slow or unreachable; a local file answers or fails.
    pub fn deadline(&self) -> Option<Duration> {
        match self {
            Backend::File(_) => None,
            Backend::Server(_) => Some(SERVER_DEADLINE),
        }
    }

    /// False once a file's writer stopped for good (its file was replaced); the store is then reopened.
    pub fn is_serving(&self) -> bool {
        match self {
            Backend::File(writer) => writer.is_serving(),
            Backend::Server(_) => true,
        }
    }
}
