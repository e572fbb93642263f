//! Exact totals for counted listings (any `q`, or `from` with `since`) without counting every match again.
//!
//! Messages are append-only and the first write wins: a stored row never changes. So the number of rows at
//! or below a rowid that match a listing's filters never changes either, and a count taken once stays exact
//! for those rows. A later listing with the same filters counts only the rows past that watermark, inside
//! its own statement (on a server, still one round trip), and adds. Another program may delete rows; the
//! schema counts deletions (`totals.removed`), and a count taken before one is dropped and taken again.
//!
//! The counts live in this process: nothing to keep consistent between instances, since rows any instance
//! adds land past every watermark. They also tell the planner ([`super::search_plan`]) how common a term
//! is, before it chooses how to find a page.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::query::ListParams;

/// Filter combinations remembered at most; past this the least recently used is forgotten.
const CAPACITY: usize = 1024;
/// Longer search terms are not remembered, so a client cannot fill memory with long ones; terms that long
/// are rare, and their candidates few.
const LONGEST_TERM: usize = 256;

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
            since: params.since.as_ref().map(|ts| ts.sort_key().to_owned()),
            q: params.q.clone(),
        }
    }
}

/// The counts taken so far, shared by every request to one store.
#[derive(Default)]
pub struct SearchCounts {
    entries: Mutex<HashMap<Filters, (Count, u64)>>,
    /// Ticks once per use, to tell which entry was used least recently.
    clock: AtomicU64,
}

impl SearchCounts {
    /// The count taken for `filters`, if one is remembered.
    pub fn get(&self, filters: &Filters) -> Option<Count> {
        let now = self.clock.fetch_add(1, Ordering::Relaxed);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (count, used) = entries.get_mut(filters)?;
        *used = now;
        Some(*count)
    }

    /// Remembers `count` for `filters`, unless a later one is remembered already or the term is too long.
    pub fn remember(&self, filters: Filters, count: Count) {
        if filters.q.as_ref().is_some_and(|q| q.len() > LONGEST_TERM) {
            return;
        }
        let now = self.clock.fetch_add(1, Ordering::Relaxed);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= CAPACITY && !entries.contains_key(&filters) {
            let oldest = entries.iter().min_by_key(|(_, (_, used))| *used).map(|(filters, _)| filters.clone());
            if let Some(oldest) = oldest {
                entries.remove(&oldest);
            }
        }
        let entry = entries.entry(filters).or_insert((count, now));
        if count.through >= entry.0.through {
            *entry = (count, now);
        }
    }

    /// Forgets every count: rows were deleted since they were taken.
    pub fn forget_all(&self) {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).clear();
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

    #[test]
    fn a_later_count_replaces_an_earlier_one_and_never_the_reverse() {
        let counts = SearchCounts::default();
        counts.remember(filters("kaka"), count(10, 4));
        counts.remember(filters("kaka"), count(20, 9));
        counts.remember(filters("kaka"), count(15, 6));
        assert_eq!(counts.get(&filters("kaka")), Some(count(20, 9)));
        assert_eq!(counts.get(&filters("other")), None);
    }

    #[test]
    fn past_capacity_the_least_recently_used_is_forgotten() {
        let counts = SearchCounts::default();
        for n in 0..CAPACITY {
            counts.remember(filters(&format!("term {n}")), count(1, 1));
        }
        assert!(counts.get(&filters("term 0")).is_some(), "used again, so no longer the oldest");
        counts.remember(filters("one more"), count(1, 1));
        assert_eq!(counts.entries.lock().unwrap().len(), CAPACITY);
        assert!(counts.get(&filters("term 0")).is_some());
        assert!(counts.get(&filters("term 1")).is_none(), "the least recently used went");
        assert!(counts.get(&filters("one more")).is_some());
    }

    #[test]
    fn a_long_term_is_not_remembered() {
        let counts = SearchCounts::default();
        let long = "x".repeat(LONGEST_TERM + 1);
        counts.remember(filters(&long), count(10, 4));
        assert_eq!(counts.get(&filters(&long)), None);
        counts.remember(filters(&long[1..]), count(10, 4));
        assert_eq!(counts.get(&filters(&long[1..])), Some(count(10, 4)));
    }

    #[test]
    fn forgetting_drops_every_count() {
        let counts = SearchCounts::default();
        counts.remember(filters("kaka"), count(10, 4));
        counts.forget_all();
        assert_eq!(counts.get(&filters("kaka")), None);
    }
}
