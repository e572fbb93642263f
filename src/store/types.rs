//! What every part of the store shares: its errors, what it answers, the deadlines, and statements as they
//! travel to a back end.

use std::future::Future;
use std::time::Duration;

use std::collections::BTreeMap;

use libsql::Value;
use serde::Serialize;
use serde_json::value::RawValue;
use thiserror::Error;

#[cfg(feature = "remote")]
use super::hrana::HranaError;
use crate::cursor::{Ordinal, Position};
use crate::message::Message;
use crate::status::Status;

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
    Server(#[from] HranaError),
}

/// What storing a delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    Created,
    /// The `message_id` was already stored; nothing was written (first write wins).
    Duplicate,
}

/// What one delivery stores, in one commit: its messages and (from WhatsApp) delivery statuses.
#[derive(Debug, Default)]
pub struct Delivery {
    pub messages: Vec<Message>,
    pub statuses: Vec<Status>,
}

/// Each message's and each status's outcome, in the delivery's order.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Stored {
    pub messages: Vec<Inserted>,
    pub statuses: Vec<Inserted>,
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

/// One stored message with what arrived: `GET /messages/{message_id}`.
#[derive(Debug, Serialize)]
pub struct ReceivedMessage {
    #[serde(flatten)]
    pub message: StoredMessage,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub message_type: Option<String>,
    /// The object as received; null when that is not known (a row stored before it was kept).
    pub raw: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Box<RawValue>>,
}

/// A stored delivery status as `GET /statuses` returns it.
#[derive(Debug, Serialize)]
pub struct StoredStatus {
    pub message_id: String,
    pub status: String,
    pub ts: String,
    pub recipient_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pricing: Option<Box<RawValue>>,
    pub raw: Option<Box<RawValue>>,
}

/// One page of statuses and the number matching its filters.
#[derive(Debug)]
pub struct StatusPage {
    pub data: Vec<StoredStatus>,
    pub total: u64,
}

/// One page of a listing, the number of messages matching its filters, and where the next page starts:
/// none after the last page in time order; in arrival order always somewhere, since a feed has no last page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub data: Vec<StoredMessage>,
    pub total: u64,
    pub next: Option<Position>,
    /// With `next` on a counted page in time order: how many matches come before the next page.
    pub next_ordinal: Option<Ordinal>,
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
    /// How many delivery statuses are stored of each status.
    pub statuses_by_status: BTreeMap<String, u64>,
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

/// One statement and its arguments (numbered: `?1` is `args[0]`).
pub struct Query {
    pub sql: String,
    pub args: Vec<Value>,
}

/// The tables that hold a database's messages: `messages` alone (a local file, whose writer stores there
/// directly, so its inbox stays empty and reads leave it out), or with the inbox a libSQL server's deliveries
/// land in first (`super::inbox`): a server's database, and a replica's copy of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tables {
    Messages,
    #[cfg(feature = "remote")]
    WithInbox,
}

/// The statements of one listing. A back end runs [`Listing::combined`] where a statement costs a round
/// trip, or `page` and, only when it is empty, `total` in one snapshot where it costs nothing (materializing
/// the page for the combined statement would cost a local read more than the second statement does).
pub struct Listing {
    pub page: Query,
    /// Its arguments are the page's first ones: the same numbers name the same filters.
    pub total: Query,
}

impl Listing {
    /// The page, or past the end one row of the total, in one statement. SQLite materializes a CTE that is
    /// read twice, so the page is computed once.
    #[cfg(feature = "remote")]
    pub fn combined(&self) -> Query {
        let (page, total) = (&self.page.sql, &self.total.sql);
        let sql =
            format!("WITH page AS ({page}) SELECT * FROM page UNION ALL {total} WHERE NOT EXISTS (SELECT 1 FROM page)");
        Query { sql, args: self.page.args.clone() }
    }
}

/// `work`, or [`StoreError::TimedOut`] once `deadline` has passed.
pub async fn within<T>(deadline: Duration, work: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
    tokio::time::timeout(deadline, work).await.map_err(|_| StoreError::TimedOut(deadline))?
}
