//! The trigram index behind `q` (SPEC §2 search): how rows get into it, when, and how a search asks it.
//!
//! `messages_text` (an FTS5 trigram table over the case-folded text) only proposes candidates; `instr` on
//! the stored text decides, so it keeps no positions (`detail = 'none'`: a far smaller index, cheaper to
//! write) and is asked for rows holding all of the term's trigrams.
//!
//! Every row at or below the watermark `text_index_state.indexed_through` is in the index; a search treats
//! every row past it as a candidate, so results never depend on how far indexing got. A deleted row lowers
//! the watermark (a trigger), so a reused rowid is indexed again.
//!
//! In a local file rows enter the index after their delivery was acknowledged, in chunks, when [`Indexer`]
//! (the file's writer thread asks it between batches) says so; rows that exist when a file opens are indexed
//! the same way. On a libSQL server each delivery indexes its own row in its own commit
//! ([`super::server`]), where the round trip dwarfs the extra work and no background task is needed; the
//! [`Indexer`] only catches up with rows stored before that.

use libsql::Value;

use super::search_counts::Count;
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

/// Folded text as the index holds it: NUL as a space, since FTS5 stops reading at NUL (and SQL's replace()
/// cannot replace it, so this is done here rather than in a statement).
pub fn indexable(folded: &str) -> String {
    folded.replace('\0', " ")
}

/// Adds the next rows past the watermark to the index and moves the watermark, in one transaction; returns
/// how many rows it took. `OR REPLACE`, because a row whose rowid was reused after a deletion may already be
/// there.
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
                Value::Blob(bytes) => Some(indexable(&String::from_utf8_lossy(&bytes))),
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

/// How much more a candidate from the index costs than a row read in the listing's order (a lookup by
/// rowid, then a sort, against the next row of an index walk), as measured on the bench data.
const CANDIDATE_COST: u64 = 8;

/// The condition that narrows a search for the folded term `q` to the index's candidates, and its argument;
/// none when the listing is cheaper found by reading rows in its own order and testing each: for terms under
/// three characters, which have no trigram, and for a term `known` to be so common that the `wanted` first
/// matches (offset and limit) come after fewer rows than the index would propose. A term never counted
/// asks the index, which bounds the work by its matches. Rows past the watermark are not in the index yet
/// and are always candidates.
pub fn candidates(q: &str, known: Option<&Count>, wanted: u64) -> Option<(&'static str, Value)> {
    if q.chars().count() < 3 || known.is_some_and(|count| walking_is_cheaper(count, wanted)) {
        return None;
    }
    Some((
        "(rowid > (SELECT indexed_through FROM text_index_state) \
         OR rowid IN (SELECT rowid FROM messages_text WHERE messages_text MATCH ?))",
        Value::from(trigram_query(q)),
    ))
}

/// Whether `wanted` matches come, in the listing's order, after fewer rows than the candidates cost. Rowids
/// stand for the number of rows (they are dense in an append-only table).
fn walking_is_cheaper(count: &Count, wanted: u64) -> bool {
    let rows = u64::try_from(count.through).unwrap_or(0);
    let rows_to_read = wanted.saturating_mul(rows) / count.matches.max(1);
    count.matches > 0 && rows_to_read < count.matches.saturating_mul(CANDIDATE_COST)
}

/// The index query for `q`: every trigram of it, each quoted so its characters are text and never query
/// syntax, NUL as a space as the index holds it. Rows holding all of them are the candidates.
fn trigram_query(q: &str) -> String {
    let chars: Vec<char> = q.chars().map(|c| if c == '\0' { ' ' } else { c }).collect();
    let mut trigrams: Vec<String> =
        chars.windows(3).map(|w| format!("\"{}\"", w.iter().collect::<String>().replace('"', "\"\""))).collect();
    trigrams.sort_unstable();
    trigrams.dedup();
    trigrams.join(" AND ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(through: i64, matches: u64) -> Count {
        Count { through, matches, removed: 0 }
    }

    #[test]
    fn a_term_never_counted_asks_the_index_and_a_short_one_cannot() {
        assert!(candidates("kaka", None, 150).is_some());
        assert!(candidates("ka", None, 150).is_none());
        assert!(candidates("ka", Some(&known(100_000, 0)), 150).is_none());
    }

    #[test]
    fn a_common_term_reads_in_order_and_a_rare_or_absent_one_asks_the_index() {
        // In 71% of 100,000 rows, the first 150 matches come after ~211 rows.
        assert!(candidates("kaka", Some(&known(100_000, 71_000)), 150).is_none());
        // In 1%, they would come after ~15,000 rows; the index proposes ~1,000.
        assert!(candidates("risu", Some(&known(100_000, 1_000)), 150).is_some());
        assert!(candidates("zzyzx", Some(&known(100_000, 0)), 50).is_some());
        // A page deep enough makes even a common term cheaper through the index.
        assert!(candidates("kaka", Some(&known(100_000, 2_000)), 100_000).is_some());
    }

    #[test]
    fn every_trigram_is_quoted_once() {
        assert_eq!(trigram_query("a\"b\"a\"b"), r#""""a""" AND """b""" AND "a""b" AND "b""a""#);
        assert_eq!(trigram_query("n\0b"), "\"n b\"");
    }
}
