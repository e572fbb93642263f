//! The file's writer: one thread owns the write connection, and deliveries reach it through a queue.
//!
//! [`Writer::store`] sends a [`Job`] and waits for its reply; [`write_loop`] takes every job waiting (up
//! to [`MAX_BATCH`]), commits the deliveries among them in one durable transaction ([`commit_deliveries`]),
//! and only then answers each. Concurrent deliveries so share one fsync (group commit). Between batches it
//! feeds the text index, never ahead of an acknowledgement.

use tokio::sync::{mpsc, oneshot};

use super::identity::FileIdentity;
use crate::store::search_index::Indexer;
use crate::store::session::Session;
use crate::store::statuses;
use crate::store::types::{Delivery, Inserted, StoreError, Stored};
use crate::store::write::{insert_args, now, write_probe, INSERT_MESSAGE};

/// How many queued deliveries one transaction takes at most.
const MAX_BATCH: usize = 256;
/// How many deliveries may wait for the writer before callers wait to enqueue.
const QUEUE_DEPTH: usize = 4096;

/// Where the writer sends a job's outcome.
type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// What the writer is asked to do.
enum Job {
    /// One delivery: its messages and statuses are committed together, in the same transaction.
    Insert { delivery: Delivery, reply: Reply<Stored> },
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

/// The sending end of the writer's queue.
pub struct Writer {
    queue: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer thread on `conn`, the store's one write connection.
    pub fn start(conn: Session, file: FileIdentity) -> Result<Writer, StoreError> {
        let (queue, jobs) = mpsc::channel(QUEUE_DEPTH);
        // libsql runs local SQLite calls synchronously inside its futures, so the writer, which waits on
        // fsync, gets a thread of its own instead of blocking a runtime worker.
        std::thread::Builder::new()
            .name("db-writer".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().build().expect("writer runtime");
                runtime.block_on(write_loop(conn, file, jobs));
            })
            .map_err(|e| StoreError::Open(format!("cannot start the writer thread: {e}")))?;
        Ok(Writer { queue })
    }

    pub async fn store(&self, delivery: Delivery) -> Result<Stored, StoreError> {
        self.ask(|reply| Job::Insert { delivery, reply }).await
    }

    /// Passes when a write commits in the probe's batch, be it its own or the deliveries'.
    pub async fn probe(&self) -> Result<(), StoreError> {
        self.ask(Job::Probe).await
    }

    /// False once the writer stopped for good (its file was replaced).
    pub fn is_serving(&self) -> bool {
        !self.queue.is_closed()
    }

    async fn ask<T>(&self, job: impl FnOnce(Reply<T>) -> Job) -> Result<T, StoreError> {
        let (reply, outcome) = oneshot::channel();
        self.queue.send(job(reply)).await.map_err(|_| StoreError::WriterStopped)?;
        outcome.await.map_err(|_| StoreError::WriterStopped)?
    }
}

async fn write_loop(conn: Session, file: FileIdentity, mut queue: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    let mut indexer = Indexer::new();
    loop {
        while indexer.due(!queue.is_empty()) {
            indexer.run_chunk(&conn).await;
        }
        if queue.recv_many(&mut jobs, MAX_BATCH).await == 0 {
            return;
        }
        if let Err(displaced) = file.check() {
            jobs.drain(..).for_each(|job| job.fail(StoreError::Displaced(displaced.reason.clone())));
            if displaced.replaced {
                return;
            }
            continue;
        }
        let (mut deliveries, mut probes) = (Vec::new(), Vec::new());
        for job in jobs.drain(..) {
            match job {
                Job::Insert { delivery, reply } => deliveries.push((delivery, reply)),
                Job::Probe(reply) => probes.push(reply),
            }
        }
        let committed = if deliveries.is_empty() {
            write_probe(&conn).await.map_err(|e| e.to_string())
        } else {
            commit_deliveries(&conn, deliveries).await.map(|created| indexer.rows_added(created))
        };
        for reply in probes {
            let _ = reply.send(committed.clone().map_err(StoreError::Write));
        }
    }
}

/// Stores a batch of deliveries in one transaction and answers each with its own outcome; returns how many
/// rows were created, or why nothing was.
async fn commit_deliveries(conn: &Session, deliveries: Vec<(Delivery, Reply<Stored>)>) -> Result<usize, String> {
    let committed = conn
        .write_transaction(|| async {
            let created_at = now();
            let mut outcomes = Vec::with_capacity(deliveries.len());
            for (delivery, _) in &deliveries {
                let mut messages = Vec::with_capacity(delivery.messages.len());
                for message in &delivery.messages {
                    let created =
                        conn.query(INSERT_MESSAGE, insert_args(&created_at, message)).await?.next().await?.is_some();
                    messages.push(if created { Inserted::Created } else { Inserted::Duplicate });
                }
                let statuses_added = match delivery.statuses.is_empty() {
                    true => None,
                    false => {
                        let query = statuses::delivery(&created_at, &delivery.statuses);
                        Some(conn.fetch(&query.sql, query.args).await?)
                    }
                };
                outcomes.push((messages, statuses_added));
            }
            Ok(outcomes)
        })
        .await;
    let committed = committed.map_err(|e| e.to_string()).and_then(|outcomes| {
        let stored = deliveries.iter().zip(outcomes).map(|((delivery, _), (messages, statuses_added))| {
            let statuses = match statuses_added {
                Some(added) => statuses::outcomes(&delivery.statuses, added).map_err(|e| e.to_string())?,
                None => Vec::new(),
            };
            Ok(Stored { messages, statuses })
        });
        stored.collect::<Result<Vec<Stored>, String>>()
    });
    match committed {
        Ok(outcomes) => {
            // Rows of messages, for the indexer.
            let created = outcomes.iter().flat_map(|o| &o.messages).filter(|o| **o == Inserted::Created).count();
            for ((_, reply), outcome) in deliveries.into_iter().zip(outcomes) {
                let _ = reply.send(Ok(outcome));
            }
            Ok(created)
        }
        Err(reason) => {
            // Nothing of the batch is committed (or its outcome cannot be read), so no delivery in it may be
            // acknowledged.
            for (_, reply) in deliveries {
                let _ = reply.send(Err(StoreError::Write(reason.clone())));
            }
            Err(reason)
        }
    }
}
