//! What each part of a delivery's write costs: the service's insert, timed in the service's own schema with
//! one part taken away at a time, so the difference is that part's share.
//!
//! Each variant starts from a copy of a database the service created, preloads [`PRELOAD`] messages, then
//! stores [`TIMED`] more in transactions of [`BATCH`] rows (the writer's batch under the bench's 32
//! connections), committed as the writer commits them; the text index, which the writer fills after
//! acknowledging, is timed on its own, in the indexer's chunks.

use std::path::Path;
use std::time::{Duration, Instant};

use libsql::{Builder, Connection, Value};

use crate::data::{sender, sort_key, text, timestamp};
use crate::server::Server;

const PRELOAD: u64 = 100_000;
const TIMED: u64 = 30_000;
const BATCH: u64 = 18;
/// Rows the service's indexer takes in one transaction.
const INDEX_CHUNK: u64 = 512;

/// The service's insert (`src/store/write.rs`), for the bench's lower-case ASCII texts: no folded copy.
const INSERT: &str = "INSERT INTO messages (message_id, from_msisdn, to_msisdn, ts, text, created_at, ts_key, \
     text_folded, message_type, raw, contact, metadata) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL, NULL, NULL, NULL, \
     NULL) ON CONFLICT (message_id) DO NOTHING RETURNING rowid";

/// The variants: a name, and what is taken away from the service's schema and settings.
const VARIANTS: [(&str, &[&str]); 6] = [
    ("as the service writes", &[]),
    ("without messages_by_sender", &["DROP INDEX messages_by_sender"]),
    ("without messages_by_time", &["DROP INDEX messages_by_time"]),
    ("without the aggregate triggers", &["DROP TRIGGER messages_added"]),
    ("without fsync (synchronous=OFF)", &["PRAGMA synchronous = OFF"]),
    (
        "the plain table's indexes only",
        &["DROP INDEX messages_by_sender", "DROP INDEX messages_by_time", "DROP TRIGGER messages_added"],
    ),
];

/// Prints µs per message for each variant and the text index.
pub async fn run(binary: &Path, cpu: &str, dir: &Path) {
    let created = dir.join("created.db");
    drop(Server::start(binary, cpu, &format!("sqlite:///{}", created.display())));
    println!("| write path ({TIMED} messages after {PRELOAD}, {BATCH} a transaction) | µs/message | difference |");
    println!("|---|---:|---:|");
    let mut whole = None;
    for (name, changes) in VARIANTS {
        let file = dir.join("variant.db");
        // The server was stopped, not closed: its last commits may still be in its WAL only.
        for suffix in ["", "-wal"] {
            let (from, to) = (format!("{}{suffix}", created.display()), format!("{}{suffix}", file.display()));
            let _ = std::fs::remove_file(&to);
            let _ = std::fs::copy(from, to);
        }
        let conn = open(&file, changes).await;
        let micros = per_message(time_inserts(&conn).await);
        let whole = *whole.get_or_insert(micros);
        println!("| {name} | {micros:.1} | {:+.1} |", micros - whole);
    }
    let conn = open(&dir.join("variant.db"), &[]).await;
    let indexing = time_text_index(&conn).await;
    println!("| the text index, afterwards, {INDEX_CHUNK} rows a transaction | {:.1} | |", per_message(indexing));
}

async fn open(file: &Path, changes: &[&str]) -> Connection {
    let conn = Builder::new_local(file).build().await.unwrap().connect().unwrap();
    conn.query("PRAGMA journal_mode = WAL", ()).await.unwrap();
    for statement in ["PRAGMA synchronous = FULL", "PRAGMA mmap_size = 1073741824"].iter().chain(changes) {
        conn.query(statement, ()).await.unwrap();
    }
    conn
}

fn per_message(elapsed: Duration) -> f64 {
    elapsed.as_secs_f64() * 1e6 / TIMED as f64
}

/// Preloads, then times the timed messages.
async fn time_inserts(conn: &Connection) -> Duration {
    insert(conn, 0..PRELOAD, 10_000).await;
    let started = Instant::now();
    insert(conn, PRELOAD..PRELOAD + TIMED, BATCH).await;
    started.elapsed()
}

async fn insert(conn: &Connection, range: std::ops::Range<u64>, per_transaction: u64) {
    let created_at = "2026-12-05T00:00:00.000Z";
    let statement = conn.prepare(INSERT).await.unwrap();
    for start in range.clone().step_by(per_transaction as usize) {
        conn.execute("BEGIN IMMEDIATE", ()).await.unwrap();
        for n in start..(start + per_transaction).min(range.end) {
            let (ts, text) = (timestamp(n), text(n));
            let args: Vec<Value> = vec![
                format!("cost-{n}").into(),
                sender(n).into(),
                "+14155550100".into(),
                ts.clone().into(),
                text.into(),
                created_at.into(),
                Value::Blob(sort_key(&ts)),
            ];
            statement.query(args).await.unwrap().next().await.unwrap().expect("a new row");
            statement.reset();
        }
        conn.execute("COMMIT", ()).await.unwrap();
    }
}

/// Indexes the timed messages' text as the service's indexer does.
async fn time_text_index(conn: &Connection) -> Duration {
    conn.execute(
        "INSERT INTO messages_text (rowid, text_folded) SELECT rowid, coalesce(text_folded, lower(text)) \
         FROM messages WHERE rowid <= ?1",
        [PRELOAD as i64],
    )
    .await
    .unwrap();
    let started = Instant::now();
    for start in (PRELOAD..PRELOAD + TIMED).step_by(INDEX_CHUNK as usize) {
        conn.execute("BEGIN IMMEDIATE", ()).await.unwrap();
        conn.execute(
            "INSERT INTO messages_text (rowid, text_folded) SELECT rowid, coalesce(text_folded, lower(text)) \
             FROM messages WHERE rowid > ?1 AND rowid <= ?2",
            [start as i64, (start + INDEX_CHUNK).min(PRELOAD + TIMED) as i64],
        )
        .await
        .unwrap();
        conn.execute("COMMIT", ()).await.unwrap();
    }
    started.elapsed()
}
