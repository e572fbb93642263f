//! Exact totals for counted listings (any `q` or `since`, with or without `from`) without counting every match
//! again.
//!
//! Messages are append-only and the first write wins: a stored row never changes. So the number of rows at
//! or below a rowid that match a listing's filters never changes either, and a count taken once stays exact
//! for those rows. A later listing with the same filters counts only the rows past that watermark, inside
//! its own statement (on a server, still one round trip), and adds. Another program may delete rows; the
//! schema counts deletions (`totals.removed`), and a count taken before one is dropped and taken again.
//!
//! The same holds for which rows match: for filters asked again whose matches are few enough, the rowids of
//! every match through a watermark are remembered too ([`Matches`]), in the listing's order, so a page is
//! those rows looked up by rowid, plus the rows past that watermark tested as they come.
//!
//! The counts live in this process, and on a libSQL server also in the table `search_totals`, where every
//! instance of a fleet finds them: an instance adds the counts it took from scratch (or that moved far past
//! the one it had) with its next call, and a new instance reads the newest when it starts, so its first
//! search of a term another instance counted costs what a warm one's does (on Lambda, where instances come
//! and go, most are new). Nothing needs keeping consistent between instances: rows any of them adds land past
//! every watermark, and a count is only ever replaced by one through a later one. The counts also tell the
//! planner ([`super::plan`]) how common a term is, before it chooses how to find a page.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use libsql::Value;

use crate::query::ListParams;
#[cfg(feature = "remote")]
use crate::store::rows::{self, Table};
use crate::store::types::Query;
#[cfg(feature = "remote")]
use crate::store::types::StoreError;

/// Filter combinations remembered at most; past this the least recently used is forgotten.
const CAPACITY: usize = 1024;
/// Filters longer than this in all (the search term and the sender, in bytes) are not remembered, so a client
/// cannot fill memory with long ones; searches that long are rare, and their candidates few.
const LONGEST_FILTERS: usize = 256;
/// Rowids of matches remembered at most for one listing's filters (8 MiB): as many as a table of a million
/// rows holds, so that no term of one has a deep page that reads rows in order, which costs about as many rows
/// per match as the term is rare. Past it (tables past twice this), a term in fewer than half the rows does.
pub const MOST_MATCHES: u64 = 1 << 20;
/// Rowids of matches remembered at most in all (32 MiB); past this, those used least recently are forgotten.
const MATCHES_KEPT: usize = 1 << 22;
/// Shared totals an instance reads when it starts, the newest; and kept on the server at most.
#[cfg(feature = "remote")]
const SHARED_READ: usize = 256;
const SHARED_KEPT: usize = 1024;
/// A count is shared again once its watermark has moved this many rows past the one shared, so that the
/// rows a new instance counts past it stay few.
pub const SHARE_AGAIN_AFTER: i64 = 10_000;

/// Matches of one listing's filters among the rows at or below a watermark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    /// The highest rowid when counted: every row at or below it was looked at.
    pub through: i64,
    /// Rows at or below `through` that match.
    pub matches: u64,
    /// Rows ever deleted (`totals.removed`) when counted.
    pub removed: u64,
    /// Rows of the sender the listing is filtered to, when it is: how many a search reading in order reads
    /// at most.
    pub scope: Option<u64>,
}

/// Every row at or below a watermark that matches a listing's filters, in the listing's order.
#[derive(Debug, PartialEq, Eq)]
pub struct Matches {
    /// The highest rowid when they were found.
    pub through: i64,
    /// Rows ever deleted (`totals.removed`) when they were found.
    pub removed: u64,
    pub rowids: Vec<i64>,
}

/// What is remembered of one listing's filters: always a count, and, once asked for, their matches, found
/// with no deletion since the count (a listing checks that the count still holds, and so they do too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    pub count: Count,
    pub matches: Option<Arc<Matches>>,
}

/// What a count is of: the filters of a listing, without its page.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Filters {
    from: Option<String>,
    since: Option<String>,
    q: Option<String>,
}

impl Filters {
    pub fn of(params: &ListParams) -> Filters {
        Filters {
            from: params.from.clone(),
            since: params.since.as_ref().map(|ts| hex::encode(ts.sort_key())),
            q: params.q.clone(),
        }
    }

    /// The filters as a shared total's key: a JSON array of the sender, the chronological key and the term.
    fn key(&self) -> String {
        serde_json::json!([self.from, self.since, self.q]).to_string()
    }

    #[cfg(feature = "remote")]
    fn from_key(key: &str) -> Option<Filters> {
        let (from, since, q) = serde_json::from_str(key).ok()?;
        Some(Filters { from, since, q })
    }

    /// Whether they are short enough to remember ([`LONGEST_FILTERS`]).
    fn rememberable(&self) -> bool {
        self.q.as_ref().map_or(0, String::len) + self.from.as_ref().map_or(0, String::len) <= LONGEST_FILTERS
    }
}

/// The statement that reads the newest shared totals, for [`SearchCounts::take_shared`]; it fails on a
/// database without them (an older schema), which is read as none.
#[cfg(feature = "remote")]
pub fn shared_totals() -> Query {
    Query {
        sql: format!(
            "SELECT CAST(filters AS BLOB), through, matches, removed, scope FROM search_totals \
             ORDER BY shared DESC LIMIT {SHARED_READ}"
        ),
        args: Vec::new(),
    }
}

/// The statements that share `count` of `filters` on the server (unless one through a later watermark is
/// there), and keep the newest [`SHARED_KEPT`]: what a call sends before its own.
pub fn sharing(filters: &Filters, count: &Count) -> Option<[Query; 2]> {
    if !filters.rememberable() {
        return None;
    }
    let int = |n: u64| Value::Integer(i64::try_from(n).unwrap_or(i64::MAX));
    let share = Query {
        sql: "INSERT INTO search_totals (filters, through, matches, removed, scope, shared) \
              VALUES (?1, ?2, ?3, ?4, ?5, (SELECT coalesce(max(shared), 0) + 1 FROM search_totals)) \
              ON CONFLICT (filters) DO UPDATE SET through = excluded.through, matches = excluded.matches, \
              removed = excluded.removed, scope = excluded.scope, shared = excluded.shared \
              WHERE excluded.through > through OR excluded.removed != removed"
            .to_owned(),
        args: vec![
            Value::Text(filters.key()),
            Value::Integer(count.through),
            int(count.matches),
            int(count.removed),
            count.scope.map_or(Value::Null, int),
        ],
    };
    let keep = Query {
        sql: format!(
            "DELETE FROM search_totals WHERE shared <= (SELECT max(shared) FROM search_totals) - {SHARED_KEPT}"
        ),
        args: Vec::new(),
    };
    Some([share, keep])
}

/// The counts and matches taken so far, shared by every request to one store.
#[derive(Default)]
pub struct SearchCounts {
    entries: Mutex<Entries>,
    /// Ticks once per use, to tell which entry was used least recently.
    clock: AtomicU64,
}

#[derive(Default)]
struct Entries {
    by_filters: HashMap<Filters, Entry>,
    /// Rowids held by every entry's matches.
    rowids: usize,
}

struct Entry {
    known: Known,
    used: u64,
    /// Whether a listing is finding the matches: others meanwhile go on without them.
    finding: bool,
}

impl SearchCounts {
    /// What is remembered of `filters`, if anything.
    pub fn get(&self, filters: &Filters) -> Option<Known> {
        let now = self.clock.fetch_add(1, Ordering::Relaxed);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let entry = entries.by_filters.get_mut(filters)?;
        entry.used = now;
        let mut known = entry.known.clone();
        known.matches = known.matches.filter(|matches| matches.removed == known.count.removed);
        Some(known)
    }

    /// Remembers `count` for `filters`, unless a later one is remembered already or the filters are too long.
    pub fn remember(&self, filters: Filters, count: Count) {
        if !filters.rememberable() {
            return;
        }
        let now = self.clock.fetch_add(1, Ordering::Relaxed);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.by_filters.len() >= CAPACITY && !entries.by_filters.contains_key(&filters) {
            if let Some(oldest) = entries.least_recent(|_| true) {
                entries.forget(&oldest, true);
            }
        }
        let entry = entries.by_filters.entry(filters).or_insert(Entry {
            known: Known { count, matches: None },
            used: now,
            finding: false,
        });
        if count.through >= entry.known.count.through {
            (entry.known.count, entry.used) = (count, now);
        }
    }

    /// Claims the finding of `filters`' matches, unless another listing is finding them: while the guard
    /// lives, others meanwhile go on without.
    pub fn start_finding<'a>(&'a self, filters: &'a Filters) -> Option<Finding<'a>> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let entry = entries.by_filters.get_mut(filters)?;
        if entry.finding {
            return None;
        }
        entry.finding = true;
        Some(Finding { counts: self, filters })
    }

    /// Remembers the matches of `filters`, whose count is remembered, in place of any found before, and
    /// returns them as remembered; those of other filters used least recently are forgotten to make room.
    pub fn remember_matches(&self, filters: &Filters, matches: Matches) -> Option<Arc<Matches>> {
        if matches.rowids.len() as u64 > MOST_MATCHES {
            return None;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match entries.by_filters.get(filters) {
            Some(entry) if entry.known.count.removed == matches.removed => entries.forget(filters, false),
            _ => return None,
        }
        while entries.rowids + matches.rowids.len() > MATCHES_KEPT {
            let Some(oldest) = entries.least_recent(|entry| entry.known.matches.is_some()) else { break };
            entries.forget(&oldest, false);
        }
        entries.rowids += matches.rowids.len();
        let matches = Arc::new(matches);
        let entry = entries.by_filters.get_mut(filters)?;
        entry.known.matches = Some(Arc::clone(&matches));
        Some(matches)
    }

    /// Remembers the shared totals in the rows of [`shared_totals`] (those whose filters it cannot read, or
    /// which a later count here replaced, are left).
    #[cfg(feature = "remote")]
    pub fn take_shared(&self, mut rows: Table) -> Result<(), StoreError> {
        for row in rows.rows_mut() {
            let Some(filters) = Filters::from_key(&rows::text(row, 0)?) else { continue };
            let scope = if rows::is_null(row, 4)? { None } else { Some(rows::count(row, 4)?) };
            let count = Count {
                through: rows::integer(row, 1)?,
                matches: rows::count(row, 2)?,
                removed: rows::count(row, 3)?,
                scope,
            };
            self.remember(filters, count);
        }
        Ok(())
    }

    /// Forgets every count and match: rows were deleted since they were taken.
    pub fn forget_all(&self) {
        *self.entries.lock().unwrap_or_else(|e| e.into_inner()) = Entries::default();
    }
}

/// A listing's claim on finding one filter set's matches, released when dropped, however the finding ends.
pub struct Finding<'a> {
    counts: &'a SearchCounts,
    filters: &'a Filters,
}

impl Drop for Finding<'_> {
    fn drop(&mut self) {
        let mut entries = self.counts.entries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = entries.by_filters.get_mut(self.filters) {
            entry.finding = false;
        }
    }
}

impl Entries {
    /// The filters used least recently of those whose entry is `eligible`.
    fn least_recent(&self, eligible: impl Fn(&Entry) -> bool) -> Option<Filters> {
        let entries = self.by_filters.iter().filter(|(_, entry)| eligible(entry));
        entries.min_by_key(|(_, entry)| entry.used).map(|(filters, _)| filters.clone())
    }

    /// Forgets the matches of `filters`, and with `everything` their count too.
    fn forget(&mut self, filters: &Filters, everything: bool) {
        let matches = match everything {
            true => self.by_filters.remove(filters).and_then(|entry| entry.known.matches),
            false => self.by_filters.get_mut(filters).and_then(|entry| entry.known.matches.take()),
        };
        self.rowids -= matches.map_or(0, |m| m.rowids.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filters(q: &str) -> Filters {
        Filters { from: None, since: None, q: Some(q.to_owned()) }
    }

    fn count(through: i64, matches: u64) -> Count {
        Count { through, matches, removed: 0, scope: None }
    }

    fn counted(counts: &SearchCounts, q: &str) -> Option<Count> {
        counts.get(&filters(q)).map(|known| known.count)
    }

    fn matches(through: i64, removed: u64, n: usize) -> Matches {
        Matches { through, removed, rowids: vec![7; n] }
    }

    fn has_matches(counts: &SearchCounts, q: &str) -> bool {
        counts.get(&filters(q)).is_some_and(|known| known.matches.is_some())
    }

    #[test]
    fn a_later_count_replaces_an_earlier_one_and_never_the_reverse() {
        let counts = SearchCounts::default();
        counts.remember(filters("kaka"), count(10, 4));
        counts.remember(filters("kaka"), count(20, 9));
        counts.remember(filters("kaka"), count(15, 6));
        assert_eq!(counted(&counts, "kaka"), Some(count(20, 9)));
        assert_eq!(counted(&counts, "other"), None);
    }

    #[test]
    fn past_capacity_the_least_recently_used_is_forgotten() {
        let counts = SearchCounts::default();
        for n in 0..CAPACITY {
            counts.remember(filters(&format!("term {n}")), count(1, 1));
        }
        assert!(counts.get(&filters("term 0")).is_some(), "used again, so no longer the oldest");
        counts.remember(filters("one more"), count(1, 1));
        assert_eq!(counts.entries.lock().unwrap().by_filters.len(), CAPACITY);
        assert!(counts.get(&filters("term 0")).is_some());
        assert!(counts.get(&filters("term 1")).is_none(), "the least recently used went");
        assert!(counts.get(&filters("one more")).is_some());
    }

    #[test]
    fn long_filters_are_not_remembered() {
        let counts = SearchCounts::default();
        let long = "x".repeat(LONGEST_FILTERS + 1);
        counts.remember(filters(&long), count(10, 4));
        assert_eq!(counted(&counts, &long), None);
        counts.remember(filters(&long[1..]), count(10, 4));
        assert_eq!(counted(&counts, &long[1..]), Some(count(10, 4)));
        // A long sender counts too: `from` with `since` is a counted listing, and any string is a `from`.
        let sender =
            Filters { from: Some(format!("+{}", "1".repeat(LONGEST_FILTERS))), since: Some("t".into()), q: None };
        counts.remember(sender.clone(), count(10, 4));
        assert!(counts.get(&sender).is_none());
    }

    #[test]
    fn matches_are_remembered_only_beside_their_count_and_only_with_no_deletion_between() {
        let counts = SearchCounts::default();
        counts.remember_matches(&filters("nemi"), matches(10, 0, 3));
        assert!(!has_matches(&counts, "nemi"), "no count to go with");
        counts.remember(filters("nemi"), count(10, 3));
        counts.remember_matches(&filters("nemi"), matches(10, 1, 3));
        assert!(!has_matches(&counts, "nemi"), "found after a deletion the count predates");
        counts.remember_matches(&filters("nemi"), matches(10, 0, 3));
        assert!(has_matches(&counts, "nemi"));
        // A later count taken after a deletion (the listing then forgot everything, and counted again).
        counts.remember(filters("nemi"), Count { removed: 1, ..count(12, 3) });
        assert!(!has_matches(&counts, "nemi"), "the matches predate the deletion");
        counts.remember_matches(&filters("nemi"), matches(10, 0, MOST_MATCHES as usize + 1));
        assert!(!has_matches(&counts, "nemi"), "too many to remember");
    }

    #[test]
    fn one_listing_at_a_time_finds_the_matches_of_a_filter_set() {
        let counts = SearchCounts::default();
        assert!(counts.start_finding(&filters("nemi")).is_none(), "nothing counted to find them for");
        counts.remember(filters("nemi"), count(10, 3));
        let nemi = filters("nemi");
        let finding = counts.start_finding(&nemi);
        assert!(finding.is_some());
        assert!(counts.start_finding(&nemi).is_none(), "another is finding them");
        drop(finding);
        assert!(counts.start_finding(&nemi).is_some(), "released, however it ended");
    }

    #[test]
    fn past_the_budget_the_matches_used_least_recently_are_forgotten_and_their_counts_kept() {
        let counts = SearchCounts::default();
        let each = MOST_MATCHES as usize;
        let terms: Vec<String> = (0..=MATCHES_KEPT / each).map(|n| format!("term {n}")).collect();
        for term in &terms {
            counts.remember(filters(term), count(10, each as u64));
            counts.remember_matches(&filters(term), matches(10, 0, each));
        }
        assert!(!has_matches(&counts, &terms[0]), "the oldest made room");
        assert_eq!(counted(&counts, &terms[0]), Some(count(10, each as u64)));
        assert!(terms[1..].iter().all(|term| has_matches(&counts, term)));
        assert_eq!(counts.entries.lock().unwrap().rowids, MATCHES_KEPT);
        // Replacing one's matches frees what they held first.
        counts.remember_matches(&filters(&terms[1]), matches(11, 0, 5));
        assert_eq!(counts.entries.lock().unwrap().rowids, MATCHES_KEPT - each + 5);
    }

    /// What instances share on a server, another reads when it starts: the newest, each replaced only by a
    /// count through a later watermark, and no more than the server keeps.
    #[cfg(feature = "remote")]
    #[tokio::test]
    async fn totals_shared_by_one_instance_are_known_to_the_next() {
        let conn = libsql::Builder::new_local(":memory:").build().await.unwrap().connect().unwrap();
        crate::store::schema::migrate(&conn).await.unwrap();
        let share = |filters: Filters, count: Count| {
            let conn = &conn;
            async move {
                for query in sharing(&filters, &count).unwrap() {
                    conn.execute(&query.sql, query.args).await.unwrap();
                }
            }
        };
        let sender =
            Filters { from: Some("+1555".into()), since: Some("2025-01-15T10:00:00.000000000".into()), q: None };
        share(filters("kaka"), count(100, 40)).await;
        share(filters("kaka"), count(90, 35)).await;
        share(sender.clone(), Count { scope: Some(12), ..count(100, 7) }).await;
        let read = |conn: &libsql::Connection| {
            let conn = conn.clone();
            async move {
                let query = shared_totals();
                rows::collect(conn.query(&query.sql, query.args).await.unwrap()).await.unwrap()
            }
        };
        let next = SearchCounts::default();
        next.take_shared(read(&conn).await).unwrap();
        assert_eq!(counted(&next, "kaka"), Some(count(100, 40)), "an earlier count replaces no later one");
        assert_eq!(next.get(&sender).map(|k| k.count), Some(Count { scope: Some(12), ..count(100, 7) }));
        assert!(sharing(&filters(&"x".repeat(LONGEST_FILTERS + 1)), &count(1, 1)).is_none(), "too long to share");
        for n in 0..SHARED_KEPT + 10 {
            share(filters(&format!("term {n}")), count(100, 1)).await;
        }
        let mut kept = conn.query("SELECT count(*) FROM search_totals", ()).await.unwrap();
        assert_eq!(kept.next().await.unwrap().unwrap().get::<i64>(0).unwrap(), SHARED_KEPT as i64);
        let newest = SearchCounts::default();
        newest.take_shared(read(&conn).await).unwrap();
        assert_eq!(newest.entries.lock().unwrap().by_filters.len(), SHARED_READ);
        assert!(counted(&newest, &format!("term {}", SHARED_KEPT + 9)).is_some(), "the newest are read");
    }

    #[test]
    fn forgetting_drops_every_count() {
        let counts = SearchCounts::default();
        counts.remember(filters("kaka"), count(10, 4));
        counts.remember_matches(&filters("kaka"), matches(10, 0, 4));
        counts.forget_all();
        assert_eq!(counted(&counts, "kaka"), None);
        assert_eq!(counts.entries.lock().unwrap().rowids, 0);
    }
}
