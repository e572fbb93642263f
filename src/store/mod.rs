//! Message storage on libSQL (SPEC §3): the one interface the endpoints use.
//!
//! A [`Store`] has a back end, chosen once when it opens ([`backend`]): a local SQLite file ([`file`]), whose
//! writer thread commits concurrent deliveries in batches; a libSQL server (`server`), which commits each
//! delivery itself, one round trip per call; or an embedded replica of one (`replica`). Either way
//! idempotency is the primary key's (`INSERT … ON CONFLICT DO NOTHING`, [`write`]), never a read-then-write,
//! and a delivery is answered only after its commit is durable.
//!
//! A listing is answered by [`search`], the stats and one message by [`read`], WhatsApp's delivery
//! statuses by [`statuses`] (which also stores them); every back end keeps the schema of
//! [`schema`]. Rows reach the trigram index of [`search_index`] from the file's writer between batches, and
//! on a server through the inbox's trigger as they move into `messages`. What the parts share (errors,
//! answers, deadlines, statements) is in [`types`].
//!
//! [`LazyStore`] is a [`Store`] opened on first need, reopened when its file was replaced, and after a
//! failure retried at most once per [`RETRY_AFTER`]. A database that cannot be opened at start (a missing
//! volume, a server not up yet) therefore does not stop the process: requests answer 503 and
//! `/health/ready` says why until it can be opened. Only the first open creates the file; once one was
//! opened, a file that vanished is waited for, not recreated empty in its place.

mod backend;
mod file;
#[cfg(feature = "remote")]
mod hrana;
#[cfg(feature = "remote")]
mod inbox;
mod pool;
mod read;
#[cfg(feature = "remote")]
mod replica;
mod rows;
mod schema;
mod search;
mod search_index;
#[cfg(feature = "remote")]
mod server;
mod session;
mod statuses;
mod types;
mod write;

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::config::Database;
use crate::message::Message;
use crate::query::{ListParams, StatusParams};
use backend::Backend;
use search::Search;
use types::within;

/// The schema version this build writes and reads.
pub use schema::LATEST as SCHEMA_VERSION;
pub use types::{
    Delivery, Inserted, Page, ReceivedMessage, SenderCount, Stats, StatusPage, StoreError, Stored, StoredMessage,
    StoredStatus, DEADLINE, PROBE_TIMEOUT, STARTUP_DEADLINE,
};

pub struct Store {
    backend: Backend,
    /// What its listings learn, for the next ones.
    search: Search,
}

impl Store {
    /// Opens (creating if needed) the database, applies migrations and starts the back end.
    pub async fn open(database: &Database) -> Result<Store, StoreError> {
        Store::open_with(database, true, DEADLINE).await
    }

    /// [`Store::open`], or with `create` false only a file that exists. A replica's open (its first sync)
    /// gets `deadline`; a server's, [`DEADLINE`].
    async fn open_with(database: &Database, create: bool, deadline: Duration) -> Result<Store, StoreError> {
        let store = match database {
            Database::Local(path) => Store::with(Backend::File(file::File::open(path, create).await?)),
            #[cfg(feature = "remote")]
            Database::Remote(server) => {
                // The totals the other instances shared, read in the same round trip.
                let shared_totals = Search::shared_totals();
                let (server, shared) = within(DEADLINE, server::Server::open(server, Some(&shared_totals))).await?;
                let store = Store::with(Backend::Server(server));
                store.search.take_shared(shared)?;
                store
            }
            #[cfg(feature = "remote")]
            Database::Replica(replica) => {
                Store::with(Backend::Replica(within(deadline, replica::Replica::open(replica)).await?))
            }
            #[cfg(not(feature = "remote"))]
            Database::Remote(_) | Database::Replica(_) => {
                let _ = deadline;
                return Err(StoreError::Open("this build has no libSQL server support".into()));
            }
        };
        Ok(store)
    }

    fn with(backend: Backend) -> Store {
        Store { backend, search: Search::default() }
    }

    /// Stores `message` unless its id is already stored. Returns only after the commit is durable.
    pub async fn insert(&self, message: Message) -> Result<Inserted, StoreError> {
        let stored = self.store(Delivery { messages: vec![message], statuses: Vec::new() }).await?;
        stored.messages.first().copied().ok_or(StoreError::Unexpected("no outcome for the delivery"))
    }

    /// Stores every message whose id is not already stored (nor earlier in the delivery), and every status
    /// not already stored, all in one commit, and returns each one's outcome in order. Returns only after
    /// the commit is durable.
    pub async fn store(&self, delivery: Delivery) -> Result<Stored, StoreError> {
        if delivery.messages.is_empty() && delivery.statuses.is_empty() {
            return Ok(Stored::default());
        }
        match self.backend.write_deadline() {
            Some(deadline) => within(deadline, self.backend.store(delivery)).await,
            None => self.backend.store(delivery).await,
        }
    }

    /// The message stored under `message_id`, with what arrived, if there is one.
    pub async fn message(&self, message_id: &str) -> Result<Option<ReceivedMessage>, StoreError> {
        let query = read::message(self.backend.tables(), message_id);
        within(DEADLINE, async { read::message_of(self.backend.fetch(&query).await?) }).await
    }

    /// One page of delivery statuses matching `params`, by time then arrival, and the count of all matches.
    pub async fn statuses(&self, params: &StatusParams) -> Result<StatusPage, StoreError> {
        within(DEADLINE, async { statuses::page_of(self.backend.fetch(&statuses::page(params)).await?) }).await
    }

    /// One page of messages matching `params`, chronological then by id, and the count of all matches.
    pub async fn list(&self, params: &ListParams) -> Result<Page, StoreError> {
        within(DEADLINE, self.search.list(&self.backend, params)).await
    }

    /// Everything `/stats` says, from the aggregates the insert trigger keeps (no scan of messages).
    pub async fn stats(&self) -> Result<Stats, StoreError> {
        within(DEADLINE, async { read::stats_of(self.backend.fetch(&read::stats(self.backend.tables())).await?) }).await
    }

    /// Succeeds when the back end commits a write to the database it opened, and the database has the
    /// current schema, within [`PROBE_TIMEOUT`].
    pub async fn check(&self) -> Result<(), StoreError> {
        within(PROBE_TIMEOUT, self.backend.probe()).await
    }

    /// Whether the back end still serves; a file's stops for good only when its file was replaced.
    fn is_serving(&self) -> bool {
        self.backend.is_serving()
    }
}

/// How long a failed open is remembered before the next request tries again.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

pub struct LazyStore {
    database: Database,
    current: RwLock<Option<Arc<Store>>>,
    /// Held while opening.
    opening: tokio::sync::Mutex<Opening>,
}

#[derive(Default)]
struct Opening {
    last_failure: Option<(Instant, String)>,
    opened_before: bool,
}

impl LazyStore {
    pub fn new(database: Database) -> LazyStore {
        LazyStore { database, current: RwLock::new(None), opening: tokio::sync::Mutex::new(Opening::default()) }
    }

    /// The store, opening it if needed within [`DEADLINE`].
    pub async fn get(&self) -> Result<Arc<Store>, StoreError> {
        self.get_within(DEADLINE).await
    }

    /// Opens the store before the process serves, allowing it [`STARTUP_DEADLINE`].
    pub async fn open_at_start(&self) -> Result<Arc<Store>, StoreError> {
        self.get_within(STARTUP_DEADLINE).await
    }

    async fn get_within(&self, deadline: Duration) -> Result<Arc<Store>, StoreError> {
        if let Some(store) = self.serving() {
            return Ok(store);
        }
        let mut opening = self.opening.lock().await;
        // Another request may have opened it while this one waited.
        if let Some(store) = self.serving() {
            return Ok(store);
        }
        if let Some((at, reason)) = &opening.last_failure {
            if at.elapsed() < RETRY_AFTER {
                return Err(StoreError::Open(reason.clone()));
            }
        }
        let result = self.reopen(!opening.opened_before, deadline).await;
        match &result {
            Ok(_) => *opening = Opening { last_failure: None, opened_before: true },
            Err(e) => {
                tracing::error!(error = %e, "database unavailable");
                opening.last_failure = Some((Instant::now(), e.to_string()));
            }
        }
        result
    }

    fn serving(&self) -> Option<Arc<Store>> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).as_ref().filter(|s| s.is_serving()).cloned()
    }

    async fn reopen(&self, create: bool, deadline: Duration) -> Result<Arc<Store>, StoreError> {
        // Boxed: opening is rare, and its future (every back end's open inline) is large enough to strain the
        // stack of a runtime worker in an unoptimised build.
        let store = Arc::new(Box::pin(Store::open_with(&self.database, create, deadline)).await?);
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::clone(&store));
        Ok(store)
    }
}
