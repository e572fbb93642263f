//! Message storage on libSQL (SPEC §3): the one interface the endpoints use.
//!
//! A [`Store`] has a back end, chosen once when it opens ([`backend`]): a local SQLite file ([`file`]), whose
//! writer thread commits concurrent deliveries in batches; a libSQL server (`server`), which commits each
//! delivery itself, one round trip per call; or an embedded replica of one (`replica`). Either way
//! idempotency is the primary key's (`INSERT … ON CONFLICT DO NOTHING`, [`write`]), never a read-then-write,
//! and a delivery is answered only after its commit is durable.
//!
//! Every back end runs the one-statement queries of [`read`] and keeps the schema of [`schema`]. Rows reach
//! the trigram index of [`search_index`] from the file's writer between batches, and on a server through the
//! inbox's trigger as they move into `messages`. [`LazyStore`] opens a store on first need and again after
//! its file was replaced.

mod backend;
mod file;
#[cfg(feature = "remote")]
mod inbox;
mod lazy;
mod pool;
mod read;
#[cfg(feature = "remote")]
mod replica;
mod rows;
mod schema;
mod search_counts;
mod search_index;
mod search_plan;
#[cfg(feature = "remote")]
mod server;
mod session;
mod write;

use std::future::Future;
use std::time::Duration;

use serde::Serialize;
use thiserror::Error;

use crate::config::Database;
use crate::message::Message;
use crate::query::ListParams;
use backend::Backend;
use search_counts::{Count, Filters, Known, SearchCounts};
use search_plan::TrigramFrequencies;

pub use lazy::LazyStore;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] libsql::Error),
    #[error("cannot open database: {0}")]
    Open(String),
    #[error("write failed: {0}")]
    Write(String),
    #[error("the database writer has stopped")]
    WriterStopped,
    /// The file the store opened is no longer at its path (deleted, moved away, or replaced).
    #[error("{0}")]
    Displaced(String),
    #[error("the database did not answer within {0:?}")]
    TimedOut(Duration),
    #[error("unexpected database answer: {0}")]
    Unexpected(&'static str),
    #[cfg(feature = "remote")]
    #[error(transparent)]
    Server(#[from] server::HranaError),
}

/// What storing a delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    Created,
    /// The `message_id` was already stored; nothing was written (first write wins).
    Duplicate,
}

/// A stored message as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredMessage {
    pub message_id: String,
    pub from: String,
    pub to: String,
    pub ts: String,
    pub text: Option<String>,
}

/// One page of a listing and the number of messages matching its filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub data: Vec<StoredMessage>,
    pub total: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SenderCount {
    pub from: String,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub total_messages: u64,
    pub senders_count: u64,
    pub messages_per_sender: Vec<SenderCount>,
    pub first_message_ts: Option<String>,
    pub last_message_ts: Option<String>,
}

/// The bound on every read, whatever the back end, and on every call to a libSQL server: a slow read or an
/// unreachable server gets a 503 in bounded time.
pub const DEADLINE: Duration = Duration::from_secs(5);
/// The bound on opening an embedded replica before the process serves anything. A new replica first copies
/// the server's history, which can take longer than a request may wait; an open cut short by a deadline
/// keeps what it synced, and the next attempt goes on from there.
pub const STARTUP_DEADLINE: Duration = Duration::from_secs(60);
/// How long `/health/ready` waits for the back end's probe (on a file it queues behind deliveries, and a
/// lock held by another process makes it wait for the busy timeout).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

pub struct Store {
    backend: Backend,
    /// Totals of counted listings taken so far, so later ones count only newer rows.
    counts: SearchCounts,
    /// How common each trigram searched for is, so a search asks the index for the rarest ones.
    frequencies: TrigramFrequencies,
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
                let (server, shared) = within(DEADLINE, server::Server::open(server)).await?;
                let store = Store::with(Backend::Server(server));
                store.counts.take_shared(shared)?;
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
        Store { backend, counts: SearchCounts::default(), frequencies: TrigramFrequencies::default() }
    }

    /// Stores `message` unless its id is already stored. Returns only after the commit is durable.
    pub async fn insert(&self, message: Message) -> Result<Inserted, StoreError> {
        let outcomes = self.insert_all(vec![message]).await?;
        outcomes.first().copied().ok_or(StoreError::Unexpected("no outcome for the delivery"))
    }

    /// Stores every message whose id is not already stored (nor earlier in `messages`), all in one commit,
    /// and returns each one's outcome in order. Returns only after the commit is durable.
    pub async fn insert_all(&self, messages: Vec<Message>) -> Result<Vec<Inserted>, StoreError> {
        match self.backend.write_deadline() {
            Some(deadline) => within(deadline, self.backend.insert_all(messages)).await,
            None => self.backend.insert_all(messages).await,
        }
    }

    /// One page of messages matching `params`, chronological then by id, and the count of all matches.
    pub async fn list(&self, params: &ListParams) -> Result<Page, StoreError> {
        within(DEADLINE, async {
            if let Some(q) = params.q.as_deref() {
                self.learn_frequencies(q).await?;
            }
            let filters = read::counted(params).then(|| Filters::of(params));
            let mut known = filters.as_ref().and_then(|filters| self.counts.get(filters));
            if let (Some(filters), Some(known)) = (&filters, &mut known) {
                self.remember_matches_if_worth(params, filters, known).await?;
            }
            let (mut page, mut counted) = self.list_with(params, known.as_ref()).await?;
            let mut shared_through = known.as_ref().map(|known| known.count.through);
            if let (Some(known), Some(now)) = (known, counted) {
                if known.count.removed != now.removed {
                    // Rows were deleted since that count was taken, so it no longer holds: count from scratch.
                    self.counts.forget_all();
                    (page, counted) = self.list_with(params, None).await?;
                    shared_through = None;
                }
            }
            if let Some((filters, counted)) = filters.zip(counted) {
                // A count taken from scratch, or far past the one known, is worth the other instances'.
                if shared_through.is_none_or(|through| counted.through - through >= search_counts::SHARE_AGAIN_AFTER) {
                    self.backend.share(&filters, &counted);
                }
                self.counts.remember(filters, counted);
            }
            Ok(page)
        })
        .await
    }

    /// One listing, given what is `known` of its filters, and the count it took if it counted.
    async fn list_with(&self, params: &ListParams, known: Option<&Known>) -> Result<(Page, Option<Count>), StoreError> {
        let listing = read::list(params, known, &self.frequencies, self.backend.tables());
        read::page(self.backend.list(&listing).await?)
    }

    /// Finds and remembers every match of a search asked again, where reading its pages from them is worth
    /// finding them ([`search_plan::worth_remembering`]) and a statement costs no round trip.
    async fn remember_matches_if_worth(
        &self,
        params: &ListParams,
        filters: &Filters,
        known: &mut Known,
    ) -> Result<(), StoreError> {
        let Some(q) = params.q.as_deref() else { return Ok(()) };
        let wanted = params.offset.saturating_add(u64::from(params.limit));
        if !self.backend.reads_locally() || !search_plan::worth_remembering(q, known, wanted, &self.frequencies) {
            return Ok(());
        }
        // Listings asking at once leave it to the first; the rest read as they would have.
        let Some(_finding) = self.counts.start_finding(filters) else { return Ok(()) };
        let matches = read::matches_of(self.backend.fetch(&read::matches(params, &self.frequencies)).await?)?;
        if let Some(matches) = matches {
            known.matches = self.counts.remember_matches(filters, matches).or(known.matches.take());
        }
        Ok(())
    }

    /// Learns how common the trigrams of `q` not seen before are, where a statement costs no round trip (on
    /// a server the search asks the index for every trigram instead).
    async fn learn_frequencies(&self, q: &str) -> Result<(), StoreError> {
        let unknown = self.frequencies.unknown(q);
        if unknown.is_empty() || !self.backend.reads_locally() {
            return Ok(());
        }
        let rows = self.backend.fetch(&read::trigram_frequencies(&unknown)).await?;
        self.frequencies.learn(&unknown, rows)
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

/// `work`, or [`StoreError::TimedOut`] once `deadline` has passed.
async fn within<T>(deadline: Duration, work: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
    tokio::time::timeout(deadline, work).await.map_err(|_| StoreError::TimedOut(deadline))?
}
