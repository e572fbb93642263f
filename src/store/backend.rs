//! The one interface over the back ends, chosen when a store opens: what differs between a local file, a
//! libSQL server and an embedded replica of one is how a delivery is committed, how readiness is proven,
//! where a read runs, whether calls need a deadline, and whether the back end can stop serving.

use std::time::Duration;

use super::file::File;
use super::rows::Table;
#[cfg(feature = "remote")]
use super::types::DEADLINE;
use super::types::{Delivery, Listing, Query, StoreError, Stored, Tables};
#[cfg(feature = "remote")]
use super::{replica::Replica, server::Server};

// One per store, which lives behind an Arc: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub enum Backend {
    /// A local SQLite file and the writer thread that commits to it.
    File(File),
    /// A libSQL server, one round trip per call.
    #[cfg(feature = "remote")]
    Server(Server),
    /// A local copy of a libSQL server's database, written through the server.
    #[cfg(feature = "remote")]
    Replica(Replica),
}

impl Backend {
    /// Commits what of `delivery` is not stored, together; returns once the commit is durable.
    pub async fn store(&self, delivery: Delivery) -> Result<Stored, StoreError> {
        match self {
            Backend::File(file) => file.store(delivery).await,
            #[cfg(feature = "remote")]
            Backend::Server(server) => server.store(&delivery).await,
            #[cfg(feature = "remote")]
            Backend::Replica(replica) => replica.store(&delivery).await,
        }
    }

    /// Commits the readiness probe's write, and checks the schema is current.
    pub async fn probe(&self) -> Result<(), StoreError> {
        match self {
            Backend::File(file) => file.probe().await,
            #[cfg(feature = "remote")]
            Backend::Server(server) => server.probe().await,
            #[cfg(feature = "remote")]
            Backend::Replica(replica) => replica.probe().await,
        }
    }

    /// The rows of one read statement.
    pub async fn fetch(&self, query: &Query) -> Result<Table, StoreError> {
        match self {
            Backend::File(file) => file.fetch(query).await,
            #[cfg(feature = "remote")]
            Backend::Server(server) => server.fetch(query).await,
            #[cfg(feature = "remote")]
            Backend::Replica(replica) => replica.fetch(query).await,
        }
    }

    /// The rows of a listing: its page led by the total, or one row of the total past the end.
    pub async fn list(&self, listing: &Listing) -> Result<Table, StoreError> {
        match self {
            Backend::File(file) => file.list(listing).await,
            #[cfg(feature = "remote")]
            Backend::Server(_) | Backend::Replica(_) => self.fetch(&listing.combined()).await,
        }
    }

    /// The bound on a delivery: a server may be slow or unreachable; a local file's writer answers or fails,
    /// a lock held by another process within its busy timeout.
    pub fn write_deadline(&self) -> Option<Duration> {
        match self {
            Backend::File(_) => None,
            #[cfg(feature = "remote")]
            Backend::Server(_) | Backend::Replica(_) => Some(DEADLINE),
        }
    }

    /// The tables that hold its messages: a local file's writer stores in `messages` directly, and a server's
    /// deliveries land in the inbox first.
    pub fn tables(&self) -> Tables {
        match self {
            Backend::File(_) => Tables::Messages,
            #[cfg(feature = "remote")]
            Backend::Server(_) | Backend::Replica(_) => Tables::WithInbox,
        }
    }

    /// Whether what one instance counts is worth sharing with others: where a fleet shares a server. (A file
    /// has no other instances, and a replica reads a copy that may not hold the rows another counted.)
    pub fn shares_counts(&self) -> bool {
        match self {
            Backend::File(_) => false,
            #[cfg(feature = "remote")]
            Backend::Server(_) => true,
            #[cfg(feature = "remote")]
            Backend::Replica(_) => false,
        }
    }

    /// Sends `statements` (a count to share) to the server with this instance's next call.
    pub fn share(&self, statements: [Query; 2]) {
        #[cfg(feature = "remote")]
        if let Backend::Server(server) = self {
            server.share(statements);
        }
        #[cfg(not(feature = "remote"))]
        let _ = statements;
    }

    /// Whether reads run on a local file (a file's, or a replica's copy): a statement there costs no round
    /// trip.
    pub fn reads_locally(&self) -> bool {
        match self {
            Backend::File(_) => true,
            #[cfg(feature = "remote")]
            Backend::Replica(_) => true,
            #[cfg(feature = "remote")]
            Backend::Server(_) => false,
        }
    }

    /// False once a file's writer stopped for good (its file was replaced); the store is then reopened.
    pub fn is_serving(&self) -> bool {
        match self {
            Backend::File(file) => file.is_serving(),
            #[cfg(feature = "remote")]
            Backend::Server(_) | Backend::Replica(_) => true,
        }
    }
}
