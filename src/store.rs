//! Message storage on libSQL: schema, the write path and the read queries (SPEC §3).
//!
//! Writes go through one writer that owns its connection: concurrent deliveries queue on a channel and
//! every batch the writer finds waiting is committed in one durable transaction before any of them is
//! answered. Idempotency is the primary key's (`INSERT … ON CONFLICT DO NOTHING`), never a read-then-write.
//! Reads use a small pool of read-only connections, each query set in one snapshot.
//!
//! On a libSQL server ([`remote`]) the server serializes and commits writes itself: each delivery is one
//! statement from the same pool, and every call is bounded in time.

mod remote;
mod schema;
mod session;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use libsql::{params::IntoParams, Connection, Value};
use serde::Serialize;
use thiserror::Error;
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::config::Database;
use crate::message::Message;
use crate::query::{fold_case, ListParams};
use session::Session;

/// How many queued deliveries one transaction takes at most.
const MAX_BATCH: usize = 256;
/// How many deliveries may wait for the writer before callers wait to enqueue.
const QUEUE_DEPTH: usize = 4096;
/// How long a statement waits for another process's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

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

/// Where the writer sends a job's outcome.
type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// What the writer is asked to do.
enum Job {
    Insert {
        message: Message,
        reply: Reply<Inserted>,
    },
    /// Readiness: the file is still the one opened, and a write commits.
    Probe(Reply<()>),
}

impl Job {
    fn fail(self, error: StoreError) {
        match self {
            Job::Insert { reply, .. } => drop(reply.send(Err(error))),
            Job::Probe(reply) => drop(reply.send(Err(error))),
        }
    }
}

pub struct Store {
    writer: Writer,
    /// Read connections; on a server, write ones too.
    pool: Pool,
}

enum Writer {
    /// The local file's writer thread, committing deliveries in batches.
    Thread(mpsc::Sender<Job>),
    /// A libSQL server, fed one statement per delivery.
    Server(remote::Writer),
}

/// The bound on every call to a libSQL server, so a slow or unreachable one gets a 503 in bounded time.
pub const SERVER_DEADLINE: Duration = Duration::from_secs(5);
/// The bound on opening an embedded replica before the process serves anything. A new replica first copies
/// the server's history, which can take longer than a request may wait; an open cut short by a deadline
/// keeps what it synced, and the next attempt goes on from there.
pub const STARTUP_DEADLINE: Duration = Duration::from_secs(60);

/// How long `/health/ready` waits for the writer's probe (it queues behind deliveries, and a lock held by
/// another process makes it wait for the busy timeout).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

impl Store {
    /// Opens (creating if needed) the database, applies migrations and starts the writer.
    pub async fn open(database: &Database) -> Result<Store, StoreError> {
        Store::open_file(database, true, SERVER_DEADLINE).await
    }

    /// [`Store::open`], or with `create` false only a file that exists. A replica's open (its first sync)
    /// gets `deadline`; a server's, [`SERVER_DEADLINE`].
    async fn open_file(database: &Database, create: bool, deadline: Duration) -> Result<Store, StoreError> {
        let path = match database {
            Database::Local(path) => path,
            Database::Remote(server) => return Store::on_server(remote::connect(server), SERVER_DEADLINE).await,
            Database::Replica(replica) => return Store::on_server(remote::open_replica(replica), deadline).await,
        };
        let db = open_local(path, create).await?;
        let writer_conn = db.connect()?;
        configure(&writer_conn, false).await?;
        schema::migrate(&writer_conn).await?;
        // Taken after opening: the file the connections now hold.
        let file = FileIdentity::of(path)?;

        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        // libsql runs local SQLite calls synchronously inside its futures, so the writer, which waits on
        // fsync, gets a thread of its own instead of blocking a runtime worker.
        std::thread::Builder::new()
            .name("db-writer".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().build().expect("writer runtime");
                runtime.block_on(write_loop(Session::new(writer_conn), file, rx));
            })
            .map_err(|e| StoreError::Open(format!("cannot start the writer thread: {e}")))?;

        Ok(Store { writer: Writer::Thread(tx), pool: Pool::new(db, Kind::LocalReader) })
    }

    /// A store whose writes go to a libSQL server: directly, or from an embedded replica that reads locally.
    async fn on_server(
        database: impl std::future::Future<Output = Result<libsql::Database, StoreError>>,
        deadline: Duration,
    ) -> Result<Store, StoreError> {
        let opened = async {
            let db = database.await?;
            schema::migrate(&db.connect()?).await?;
            let pool = Pool::new(db, Kind::Server);
            let writer = remote::Writer::start(&pool).await?;
            Ok(Store { writer: Writer::Server(writer), pool })
        };
        tokio::time::timeout(deadline, opened).await.map_err(|_| StoreError::TimedOut(deadline))?
    }

    /// Stores `message` unless its id is already stored. Returns only after the commit is durable.
    pub async fn insert(&self, message: Message) -> Result<Inserted, StoreError> {
        match &self.writer {
            Writer::Thread(writer) => {
                let (reply, outcome) = oneshot::channel();
                writer.send(Job::Insert { message, reply }).await.map_err(|_| StoreError::WriterStopped)?;
                outcome.await.map_err(|_| StoreError::WriterStopped)?
            }
            Writer::Server(writer) => self.bounded(writer.insert(&self.pool, &message)).await,
        }
    }

    /// Whether the writer still runs; a local one stops for good only when its file was replaced.
    fn is_serving(&self) -> bool {
        match &self.writer {
            Writer::Thread(writer) => !writer.is_closed(),
            Writer::Server(_) => true,
        }
    }

    /// `work`, bounded by [`SERVER_DEADLINE`] when a server, which may be slow or unreachable, is involved.
    async fn bounded<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        match self.writer {
            Writer::Thread(_) => work.await,
            Writer::Server(_) => {
                tokio::time::timeout(SERVER_DEADLINE, work).await.map_err(|_| StoreError::TimedOut(SERVER_DEADLINE))?
            }
        }
    }

    /// One page of messages matching `params`, chronological then by id, and the count of all matches.
    pub async fn list(&self, params: &ListParams) -> Result<Page, StoreError> {
        self.bounded(self.list_unbounded(params)).await
    }

    async fn list_unbounded(&self, params: &ListParams) -> Result<Page, StoreError> {
        let mut filter = String::new();
        let mut args: Vec<Value> = Vec::new();
        let mut and = |clause: &str, arg: Value| {
            filter.push_str(if filter.is_empty() { " WHERE " } else { " AND " });
            filter.push_str(clause);
            args.push(arg);
        };
        if let Some(from) = &params.from {
            and("from_msisdn = ?", from.clone().into());
        }
        if let Some(since) = &params.since {
            and("ts_key >= ?", since.sort_key().to_owned().into());
        }
        if let Some(q) = &params.q {
            // The trigram index finds candidates for terms of three characters or more (shorter ones have
            // no trigram); rows past its watermark are not in it yet and are always candidates. instr() then
            // decides, comparing literally: %, _ and quotes are plain characters.
            if q.chars().count() >= 3 {
                and(
                    "(rowid > (SELECT indexed_through FROM text_index_state) \
                     OR rowid IN (SELECT rowid FROM messages_text WHERE messages_text MATCH ?))",
                    trigram_query(q).into(),
                );
            }
            and("instr(text_folded, ?) > 0", q.clone().into());
        }
        // Totals without filters, or by sender alone, come from the aggregates. Otherwise the page query counts
        // every match in the same pass (a window over the whole result), and only a page past the end, which
        // has no row to carry that count, needs a count of its own.
        let aggregate_total = match (&params.from, &params.since, &params.q) {
            (None, None, None) => Some(("SELECT messages FROM totals", Vec::new())),
            (Some(from), None, None) => Some((
                "SELECT coalesce((SELECT count FROM sender_counts WHERE from_msisdn = ?), 0)",
                vec![Value::from(from.clone())],
            )),
            _ => None,
        };
        let window = if aggregate_total.is_some() { "" } else { ", count(*) OVER ()" };
        let page_sql = format!(
            "SELECT CAST(message_id AS BLOB), CAST(from_msisdn AS BLOB), CAST(to_msisdn AS BLOB), CAST(ts AS BLOB), \
             CAST(text AS BLOB){window} FROM messages{filter} ORDER BY ts_key, message_id LIMIT ? OFFSET ?"
        );
        let count_sql = format!("SELECT count(*) FROM messages{filter}");
        let count_args = args.clone();
        let mut page_args = args;
        page_args.push(i64::from(params.limit).into());
        page_args.push(i64::try_from(params.offset).unwrap_or(i64::MAX).into());

        self.pool
            .snapshot(|conn| async move {
                let mut rows = conn.query(&page_sql, page_args).await?;
                let mut data = Vec::with_capacity(params.limit as usize);
                let mut counted = None;
                while let Some(row) = rows.next().await? {
                    data.push(StoredMessage {
                        message_id: text(&row, 0)?,
                        from: text(&row, 1)?,
                        to: text(&row, 2)?,
                        ts: text(&row, 3)?,
                        text: optional(&row, 4)?,
                    });
                    if aggregate_total.is_none() {
                        counted = Some(row.get::<u64>(5)?);
                    }
                }
                drop(rows);
                let total = match (aggregate_total, counted) {
                    (Some((sql, args)), _) => count(&conn, sql, args).await?,
                    (None, Some(total)) => total,
                    (None, None) => count(&conn, &count_sql, count_args).await?,
                };
                Ok(Page { data, total })
            })
            .await
    }

    /// Everything `/stats` says, from the aggregates the insert trigger keeps (no scan of messages).
    pub async fn stats(&self) -> Result<Stats, StoreError> {
        self.bounded(self.stats_unbounded()).await
    }

    async fn stats_unbounded(&self) -> Result<Stats, StoreError> {
        self.pool
            .snapshot(|conn| async move {
                let mut rows = conn.query("SELECT messages, senders FROM totals", ()).await?;
                let row = rows.next().await?.ok_or(StoreError::Unexpected("the totals row is missing"))?;
                let (total_messages, senders_count) = (row.get::<u64>(0)?, row.get::<u64>(1)?);
                let mut rows = conn
                    .query(
                        "SELECT CAST(from_msisdn AS BLOB), count FROM sender_counts \
                         ORDER BY count DESC, from_msisdn ASC LIMIT 10",
                        (),
                    )
                    .await?;
                let mut messages_per_sender = Vec::new();
                while let Some(row) = rows.next().await? {
                    messages_per_sender.push(SenderCount { from: text(&row, 0)?, count: row.get::<u64>(1)? });
                }
                let first_message_ts =
                    optional_text(&conn, "SELECT CAST(ts AS BLOB) FROM messages ORDER BY ts_key, message_id LIMIT 1")
                        .await?;
                let last_message_ts = optional_text(
                    &conn,
                    "SELECT CAST(ts AS BLOB) FROM messages ORDER BY ts_key DESC, message_id DESC LIMIT 1",
                )
                .await?;
                Ok(Stats { total_messages, senders_count, messages_per_sender, first_message_ts, last_message_ts })
            })
            .await
    }

    /// Succeeds when the database answers a query that needs the current schema, and the writer commits
    /// a write to the file it opened within [`PROBE_TIMEOUT`].
    pub async fn check(&self) -> Result<(), StoreError> {
        let probe = async {
            match &self.writer {
                Writer::Thread(writer) => {
                    let (reply, outcome) = oneshot::channel();
                    writer.send(Job::Probe(reply)).await.map_err(|_| StoreError::WriterStopped)?;
                    outcome.await.map_err(|_| StoreError::WriterStopped)?
                }
                Writer::Server(_) => self.pool.with(|session| async move { probe(&session).await }).await,
            }
        };
        tokio::time::timeout(PROBE_TIMEOUT, probe).await.map_err(|_| StoreError::TimedOut(PROBE_TIMEOUT))??;
        let schema = self.pool.snapshot(|session| async move { schema::check(&session.conn).await });
        tokio::time::timeout(PROBE_TIMEOUT, schema).await.map_err(|_| StoreError::TimedOut(PROBE_TIMEOUT))?
    }
}

/// Rows the text indexer takes in one transaction: enough to spread the index's per-commit cost, few enough
/// that a delivery arriving meanwhile waits only a few milliseconds.
const INDEX_CHUNK: usize = 512;

/// Adds the next rows past the watermark to the trigram index and moves the watermark, in one transaction;
/// returns how many rows it took. Text goes in with NUL as a space: FTS5 stops reading at NUL, and SQL's
/// replace() cannot replace it. `OR REPLACE`, because a row whose rowid was reused after a deletion may
/// already be there.
async fn index_pending_text(conn: &Session) -> Result<usize, libsql::Error> {
    conn.write_transaction(|| async {
        let mut rows = conn
            .query(
                "SELECT rowid, CAST(text_folded AS BLOB) FROM messages \
                 WHERE rowid > (SELECT indexed_through FROM text_index_state) ORDER BY rowid LIMIT ?",
                [INDEX_CHUNK as i64],
            )
            .await?;
        let mut pending = Vec::with_capacity(INDEX_CHUNK);
        while let Some(row) = rows.next().await? {
            let text = match row.get_value(1)? {
                Value::Blob(bytes) => Some(String::from_utf8_lossy(&bytes).replace('\0', " ")),
                _ => None,
            };
            pending.push((row.get::<i64>(0)?, text));
        }
        drop(rows);
        for (rowid, text) in &pending {
            if let Some(text) = text {
                conn.run(
                    "INSERT OR REPLACE INTO messages_text (rowid, text_folded) VALUES (?, ?)",
                    (*rowid, text.as_str()),
                )
                .await?;
            }
        }
        if let Some((last, _)) = pending.last() {
            conn.run("UPDATE text_index_state SET indexed_through = ?", [*last]).await?;
        }
        Ok(pending.len())
    })
    .await
}

/// The text-index query for `q`: every trigram of it, each quoted so its characters are text and never
/// query syntax, NUL as a space as the index holds it. Rows holding all of them are the candidates.
fn trigram_query(q: &str) -> String {
    let chars: Vec<char> = q.chars().map(|c| if c == '\0' { ' ' } else { c }).collect();
    let mut trigrams: Vec<String> =
        chars.windows(3).map(|w| format!("\"{}\"", w.iter().collect::<String>().replace('"', "\"\""))).collect();
    trigrams.sort_unstable();
    trigrams.dedup();
    trigrams.join(" AND ")
}

async fn count(conn: &Session, sql: &str, args: impl IntoParams) -> Result<u64, StoreError> {
    let mut rows = conn.query(sql, args).await?;
    let row = rows.next().await?.ok_or_else(|| StoreError::Unexpected("count(*) returned no row"))?;
    Ok(row.get::<u64>(0)?)
}

/// A text column selected as `CAST(column AS BLOB)`.
///
/// libsql converts TEXT values through a C string: it cuts them at the first NUL character (which a
/// message may legitimately contain) and panics on invalid UTF-8 (which a database written by another
/// program may hold). As a BLOB the value arrives with its exact length.
pub(crate) fn optional(row: &libsql::Row, idx: i32) -> Result<Option<String>, StoreError> {
    match row.get_value(idx)? {
        Value::Blob(bytes) => {
            Ok(Some(String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())))
        }
        Value::Text(s) => Ok(Some(s)),
        Value::Null => Ok(None),
        _ => Err(StoreError::Unexpected("a text column holds another type")),
    }
}

pub(crate) fn text(row: &libsql::Row, idx: i32) -> Result<String, StoreError> {
    optional(row, idx)?.ok_or(StoreError::Unexpected("a NOT NULL text column is NULL"))
}

async fn optional_text(conn: &Session, sql: &str) -> Result<Option<String>, StoreError> {
    let mut rows = conn.query(sql, ()).await?;
    Ok(match rows.next().await? {
        Some(row) => Some(text(&row, 0)?),
        None => None,
    })
}

/// Creates the directory a database file goes in, if it is missing (SPEC §3).
fn create_parent_dir(path: &Path) -> Result<(), StoreError> {
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => std::fs::create_dir_all(parent)
            .map_err(|e| StoreError::Open(format!("cannot create directory {}: {e}", parent.display()))),
        None => Ok(()),
    }
}

async fn open_local(path: &Path, create: bool) -> Result<libsql::Database, StoreError> {
    if !create && !path.exists() {
        return Err(StoreError::Displaced(format!("database file {} is missing", path.display())));
    }
    create_parent_dir(path)?;
    // Multi-thread mode (NOMUTEX): SQLite skips its per-call connection mutex. Each connection here is used by
    // one thread or task at a time (the writer's own thread; readers checked out of the pool), so serialized
    // mode's locking protected nothing and cost ~9% of a list request.
    let flags = libsql::OpenFlags::SQLITE_OPEN_READ_WRITE
        | libsql::OpenFlags::SQLITE_OPEN_CREATE
        | libsql::OpenFlags::from_bits_retain(libsql::ffi::SQLITE_OPEN_NOMUTEX);
    libsql::Builder::new_local(path)
        .flags(flags)
        .build()
        .await
        .map_err(|e| StoreError::Open(format!("{}: {e}", path.display())))
}

/// Per-connection settings: WAL with a full fsync at every commit, so an acknowledged message survives
/// `kill -9` and power loss; a busy timeout for other processes sharing the file.
async fn configure(conn: &Connection, read_only: bool) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // journal_mode answers with a row, so it is a query, not an execute.
    conn.query("PRAGMA journal_mode = WAL", ()).await?;
    conn.execute("PRAGMA synchronous = FULL", ()).await?;
    if read_only {
        conn.execute("PRAGMA query_only = 1", ()).await?;
    }
    Ok(())
}

async fn write_loop(conn: Session, file: FileIdentity, mut queue: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    // Whether rows may be waiting for the text index (unknown at start), and how many arrived since the
    // indexer last ran.
    let (mut backlog, mut unindexed) = (true, 0);
    loop {
        // The text index never delays an acknowledgement: it catches up while no delivery waits, and under
        // steady load one chunk runs per chunk of new rows, so it keeps pace.
        while backlog && (queue.is_empty() || unindexed >= INDEX_CHUNK) {
            backlog = index_text_chunk(&conn).await == INDEX_CHUNK;
            unindexed = 0;
        }
        if queue.recv_many(&mut jobs, MAX_BATCH).await == 0 {
            return;
        }
        // A file deleted or moved away would still take writes through the open handle, and they would be
        // lost with it: nothing is written unless the path still leads to the file opened.
        match file.placement() {
            Placement::InPlace => {}
            Placement::Missing => {
                let reason = format!("database file {} is missing", file.path.display());
                jobs.drain(..).for_each(|job| job.fail(StoreError::Displaced(reason.clone())));
                continue;
            }
            Placement::Replaced => {
                let reason = format!("database file {} was replaced; reopening", file.path.display());
                tracing::error!(reason, "database file replaced");
                jobs.drain(..).for_each(|job| job.fail(StoreError::Displaced(reason.clone())));
                // Stopping makes the store reopen the file now at the path, without the old file's journal.
                file.discard_journal();
                return;
            }
        }
        let (mut deliveries, mut probes) = (Vec::new(), Vec::new());
        for job in jobs.drain(..) {
            match job {
                Job::Insert { message, reply } => deliveries.push((message, reply)),
                Job::Probe(reply) => probes.push(reply),
            }
        }
        let committed = if deliveries.is_empty() {
            probe(&conn).await.map_err(|e| e.to_string())
        } else {
            commit_deliveries(&conn, deliveries).await.map(|created| {
                (backlog, unindexed) = (backlog || created > 0, unindexed + created);
            })
        };
        // A probe passes when a write committed in its batch, be it its own or the deliveries'.
        for reply in probes {
            let _ = reply.send(committed.clone().map_err(StoreError::Write));
        }
    }
}

/// Stores a batch of deliveries in one transaction and answers each with its own outcome; returns how many
/// rows were created, or why nothing was.
async fn commit_deliveries(conn: &Session, deliveries: Vec<(Message, Reply<Inserted>)>) -> Result<usize, String> {
    let messages: Vec<&Message> = deliveries.iter().map(|(message, _)| message).collect();
    match insert_batch(conn, &messages).await {
        Ok(outcomes) => {
            let created = outcomes.iter().filter(|o| **o == Inserted::Created).count();
            for ((_, reply), outcome) in deliveries.into_iter().zip(outcomes) {
                let _ = reply.send(Ok(outcome));
            }
            Ok(created)
        }
        Err(e) => {
            // Nothing of the batch is committed, so no delivery in it may be acknowledged.
            let reason = e.to_string();
            for (_, reply) in deliveries {
                let _ = reply.send(Err(StoreError::Write(reason.clone())));
            }
            Err(reason)
        }
    }
}

/// The readiness probe's own write (locally, for a batch that has no deliveries to commit).
async fn probe(conn: &Session) -> Result<(), libsql::Error> {
    conn.write_transaction(|| conn.run("UPDATE write_probe SET checked_at = ? WHERE id = 1", [now()])).await
}

/// The database file as opened: its path, and the device and inode of it and of its WAL.
struct FileIdentity {
    path: PathBuf,
    file: (u64, u64),
    wal: Option<(u64, u64)>,
}

enum Placement {
    InPlace,
    Missing,
    Replaced,
}

fn inode(path: &Path) -> std::io::Result<(u64, u64)> {
    std::fs::metadata(path).map(|meta| (meta.dev(), meta.ino()))
}

/// `app.db` → `app.db-wal`, `app.db-shm`.
fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

impl FileIdentity {
    /// Taken once the connections are open, so the WAL exists and stays while they do.
    fn of(path: &Path) -> Result<FileIdentity, StoreError> {
        let file = inode(path).map_err(|e| StoreError::Open(format!("{}: {e}", path.display())))?;
        Ok(FileIdentity { path: path.to_owned(), file, wal: inode(&sidecar(path, "-wal")).ok() })
    }

    /// Where the path leads now. One `stat` per batch, far below the cost of its commit.
    fn placement(&self) -> Placement {
        match inode(&self.path) {
            Ok(found) if found == self.file => Placement::InPlace,
            Ok(_) => Placement::Replaced,
            Err(_) => Placement::Missing,
        }
    }

    /// Removes the old file's WAL and shared-memory index if they are still beside the new file. SQLite does
    /// not checkpoint a WAL whose database was moved, and would otherwise replay it into the replacement.
    fn discard_journal(&self) {
        let wal = sidecar(&self.path, "-wal");
        if self.wal.is_some() && inode(&wal).ok() == self.wal {
            let _ = std::fs::remove_file(&wal);
            let _ = std::fs::remove_file(sidecar(&self.path, "-shm"));
        }
    }
}

/// One indexing chunk; a failure is logged and leaves the rows to the next attempt (searches scan them).
async fn index_text_chunk(conn: &Session) -> usize {
    index_pending_text(conn).await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "text indexing failed; will retry");
        0
    })
}

/// Inserts `messages` in one transaction; each outcome in their order.
async fn insert_batch(conn: &Session, messages: &[&Message]) -> Result<Vec<Inserted>, libsql::Error> {
    conn.write_transaction(|| async {
        let created_at = now();
        let mut outcomes = Vec::with_capacity(messages.len());
        for message in messages {
            outcomes.push(insert_row(conn, &created_at, message).await?);
        }
        Ok(outcomes)
    })
    .await
}

/// One `INSERT … ON CONFLICT (message_id) DO NOTHING`: idempotent through the primary key, whoever else
/// writes the same id at the same moment.
async fn insert_row(conn: &Session, created_at: &str, m: &Message) -> Result<Inserted, libsql::Error> {
    let folded = m.text.as_deref().map(fold_case);
    let mut inserted = conn
        .query(
            "INSERT INTO messages (message_id, from_msisdn, to_msisdn, ts, text, created_at, ts_key, text_folded) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (message_id) DO NOTHING RETURNING rowid",
            (
                m.message_id.as_str(),
                m.from.as_str(),
                m.to.as_str(),
                m.ts.as_str(),
                m.text.as_deref(),
                created_at,
                m.ts.sort_key(),
                folded.as_deref(),
            ),
        )
        .await?;
    // A row comes back only when one was inserted; a duplicate returns none.
    let rowid = inserted.next().await?.map(|row| row.get::<i64>(0)).transpose()?;
    Ok(if rowid.is_some() { Inserted::Created } else { Inserted::Duplicate })
}

/// `created_at`: the current UTC time with milliseconds.
fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// How a pooled connection is set up when it is opened.
#[derive(Clone, Copy)]
enum Kind {
    /// A read-only connection to the local file.
    LocalReader,
    /// A connection to a libSQL server: nothing to set, the server runs its own pragmas.
    Server,
}

/// Connections with their statements, opened on demand and reused.
struct Pool {
    db: libsql::Database,
    kind: Kind,
    idle: Mutex<Vec<Arc<Session>>>,
    /// On a server, how many calls may be in flight at once; the others queue here, within their deadline.
    in_flight: Option<Semaphore>,
}

/// Calls one instance makes to a libSQL server at once. Each holds one of the server's connections (sqld has
/// 128 by default, shared by every instance) while it runs; beyond this, more in flight only makes a
/// shared server refuse connections (429) instead of answering a little later.
const SERVER_CALLS_IN_FLIGHT: usize = 16;

impl Pool {
    fn new(db: libsql::Database, kind: Kind) -> Pool {
        let in_flight = matches!(kind, Kind::Server).then(|| Semaphore::new(SERVER_CALLS_IN_FLIGHT));
        Pool { db, kind, idle: Mutex::new(Vec::new()), in_flight }
    }

    /// A turn to call the server, where the number of calls in flight is capped.
    async fn turn(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        match &self.in_flight {
            Some(semaphore) => semaphore.acquire().await.ok(),
            None => None,
        }
    }

    /// Runs `work` inside one read transaction, so its queries see one consistent snapshot.
    async fn snapshot<T, F, Fut>(&self, work: F) -> Result<T, StoreError>
    where
        F: FnOnce(Arc<Session>) -> Fut,
        Fut: std::future::Future<Output = Result<T, StoreError>>,
    {
        let _turn = self.turn().await;
        let session = self.take().await?;
        session.run("BEGIN", ()).await?;
        let result = work(Arc::clone(&session)).await;
        let ended = session.end_transaction(if result.is_ok() { "COMMIT" } else { "ROLLBACK" }).await;
        if ended.is_ok() {
            self.give_back(session);
        }
        let value = result?;
        ended?;
        Ok(value)
    }

    /// Runs `work` on a connection of the pool, outside any transaction of ours.
    async fn with<T, F, Fut>(&self, work: F) -> Result<T, StoreError>
    where
        F: FnOnce(Arc<Session>) -> Fut,
        Fut: std::future::Future<Output = Result<T, libsql::Error>>,
    {
        let _turn = self.turn().await;
        let session = self.take().await?;
        let value = work(Arc::clone(&session)).await?;
        self.give_back(session);
        Ok(value)
    }

    async fn take(&self) -> Result<Arc<Session>, StoreError> {
        if let Some(session) = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop() {
            return Ok(session);
        }
        let conn = self.db.connect()?;
        if let Kind::LocalReader = self.kind {
            configure(&conn, true).await?;
        }
        Ok(Arc::new(Session::new(conn)))
    }

    /// Returns a connection for reuse, unless it was left inside a transaction: that would pin an old
    /// snapshot (or, on a server, a stream the server has abandoned).
    fn give_back(&self, session: Arc<Session>) {
        if session.conn.is_autocommit() {
            self.idle.lock().unwrap_or_else(|p| p.into_inner()).push(session);
        }
    }
}

/// A [`Store`] opened on first need, reopened when its file was replaced, and after a failure retried at
/// most once per [`RETRY_AFTER`].
///
/// A database that cannot be opened at start (a missing volume, a server not up yet) therefore does not
/// stop the process: requests answer 503 and `/health/ready` says why until it can be opened. Only the
/// first open creates the file; once one was opened, a file that vanished is waited for, not recreated
/// empty in its place.
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

/// How long a failed open is remembered before the next request tries again.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

impl LazyStore {
    pub fn new(database: Database) -> LazyStore {
        LazyStore { database, current: RwLock::new(None), opening: tokio::sync::Mutex::new(Opening::default()) }
    }

    /// The store, opening it if needed within [`SERVER_DEADLINE`].
    pub async fn get(&self) -> Result<Arc<Store>, StoreError> {
        self.get_within(SERVER_DEADLINE).await
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
        let store = Arc::new(Store::open_file(&self.database, create, deadline).await?);
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::clone(&store));
        Ok(store)
    }
}
