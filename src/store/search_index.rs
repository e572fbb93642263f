//! The trigram index behind `q` (SPEC §2 search): how rows get into it, and when ([`super::search::plan`]
//! says how a search asks it).
//!
//! `messages_text` (an FTS5 trigram table over the case-folded text) only proposes candidates; `instr` on
//! the stored text decides, so it keeps no positions (`detail = 'none'`: a far smaller index, cheaper to
//! write) and is asked for rows holding the term's rarest trigrams.
//!
//! Every row at or below the watermark `text_index_state.indexed_through` is in the index; a search treats
//! every row past it as a candidate, so results never depend on how far indexing got. A deleted row lowers
//! the watermark (a trigger), so a reused rowid is indexed again.
//!
//! In a local file rows enter the index after their delivery was acknowledged, in chunks, when [`Indexer`]
//! (the file's writer thread asks it between batches) says so; rows that exist when a file opens are indexed
//! the same way. On a libSQL server rows enter it with the inbox's rows when they move into `messages`, in
//! the statement of the delivery that fills the inbox (the schema's trigger, see `super::inbox`), and rows
//! written into `messages` some other way are caught up by `super::server`, in [`INDEX_CHUNK`]s too. Both
//! take rows in with the one statement set below ([`PENDING_ROWS`], [`INDEX_ROW`], [`ADVANCE_WATERMARK`]).

use libsql::Value;

use super::schema::folded_text;
use super::session::Session;

/// Rows the indexer takes in one transaction: enough to spread the index's per-commit cost, few enough
/// that a delivery arriving meanwhile waits only a few milliseconds.
pub const INDEX_CHUNK: usize = 512;

/// When indexing runs.
pub struct Indexer {
    /// Whether rows may be waiting past the watermark (unknown at start, so assumed).
    behind: bool,
    /// Rows committed since the last chunk ran.
    unindexed: usize,
}

impl Indexer {
    pub fn new() -> Indexer {
        Indexer { behind: true, unindexed: 0 }
    }

    /// `rows` new rows were committed.
    pub fn rows_added(&mut self, rows: usize) {
        if rows > 0 {
            self.behind = true;
            self.unindexed += rows;
        }
    }

    /// Whether a chunk should run now. Indexing never delays an acknowledgement: it runs while no delivery
    /// waits, and under steady load one chunk per chunk of new rows, so it keeps pace.
    pub fn due(&self, deliveries_waiting: bool) -> bool {
        self.behind && (!deliveries_waiting || self.unindexed >= INDEX_CHUNK)
    }

    /// Indexes one chunk. A failure is logged and leaves the rows to the next attempt (searches scan them).
    pub async fn run_chunk(&mut self, conn: &Session) {
        let indexed = index_pending_text(conn).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "text indexing failed; will retry");
            0
        });
        (self.behind, self.unindexed) = (indexed == INDEX_CHUNK, 0);
    }
}

/// The rows past the watermark, oldest first, at most `?1` of them: each with the watermark, its rowid and
/// its folded text (as a blob, so text with a NUL arrives whole).
pub const PENDING_ROWS: &str = concat!(
    "SELECT (SELECT indexed_through FROM text_index_state), rowid, CAST(",
    folded_text!(),
    " AS BLOB) FROM messages WHERE rowid > (SELECT indexed_through FROM text_index_state) ORDER BY rowid LIMIT ?1"
);

/// Indexes row `?1` with text `?2` ([`indexable`]). `OR REPLACE`, because a row whose rowid was reused after
/// a deletion may already be there.
pub const INDEX_ROW: &str = "INSERT OR REPLACE INTO messages_text (rowid, text_folded) VALUES (?1, ?2)";

/// Moves the watermark to `?1`, unless another writer moved it from `?2` meanwhile.
pub const ADVANCE_WATERMARK: &str = "UPDATE text_index_state SET indexed_through = ?1 WHERE indexed_through = ?2";

/// Folded text as the index holds it: NUL as a space, since FTS5 stops reading at NUL (and SQL's replace()
/// cannot replace it, so this is done here rather than in a statement).
pub fn indexable(folded: &str) -> String {
    folded.replace('\0', " ")
}

/// A [`PENDING_ROWS`] row's text as [`INDEX_ROW`] takes it; none for a row without text.
pub fn indexable_text(folded: &Value) -> Option<String> {
    match folded {
        Value::Blob(bytes) => Some(indexable(&String::from_utf8_lossy(bytes))),
        _ => None,
    }
}

/// Adds the next rows past the watermark to the index and moves the watermark, in one transaction; returns
/// how many rows it took.
async fn index_pending_text(conn: &Session) -> Result<usize, libsql::Error> {
    conn.write_transaction(|| async {
        let mut rows = conn.query(PENDING_ROWS, [INDEX_CHUNK as i64]).await?;
        let (mut watermark, mut pending) = (0, Vec::with_capacity(INDEX_CHUNK));
        while let Some(row) = rows.next().await? {
            watermark = row.get::<i64>(0)?;
            pending.push((row.get::<i64>(1)?, indexable_text(&row.get_value(2)?)));
        }
        drop(rows);
        for (rowid, text) in &pending {
            if let Some(text) = text {
                conn.run(INDEX_ROW, (*rowid, text.as_str())).await?;
            }
        }
        if let Some((last, _)) = pending.last() {
            conn.run(ADVANCE_WATERMARK, [*last, watermark]).await?;
        }
        Ok(pending.len())
    })
    .await
}
