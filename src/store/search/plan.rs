//! How a search finds its page ([`Plan`]): by asking the trigram index ([`super::search_index`]) for
//! candidates, by reading rows in the listing's own order and testing each, or by looking up the rows
//! remembered to match ([`super::counts`]); and, when it asks the index, which trigrams it asks for.
//!
//! Whichever it is, `instr` on the folded text decides, so the plan changes the cost of a search, never its
//! answer. The choice rests on what earlier searches learned: how many rows match the filters, which ones
//! if they were asked often enough to remember ([`super::counts`]), and how many indexed rows hold
//! each trigram ([`TrigramFrequencies`]).
//!
//! - Reading in order costs about `wanted × rows / matches` rows (the page's rows come after that many, if
//!   matches are spread over time), and never more than the rows in scope: a common term's first pages are
//!   near the start, and a sender's own rows are few.
//! - Asking the index costs a lookup and a sort for every candidate it proposes, and reading the lists of
//!   the trigrams asked for. Rows hold all of a term's trigrams only if they hold its rarest ones, so only the
//!   few rarest are asked for: a common trigram's list is long and narrows the candidates little.
//! - Remembered matches cost a lookup and a sort for each of the page's own rows and, before them, as many
//!   as there may be matches past their watermark (their rows may sort anywhere), and a test of every row
//!   past their watermark; so a deep page costs what a first one does. Finding them costs what counting them
//!   did, so only a search asked again gets them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use libsql::Value;

use super::counts::{Count, Known, Matches, MOST_MATCHES};
use crate::cursor::Ordinal;
use crate::store::rows::{self, Table};
use crate::store::types::StoreError;

/// How much more a candidate from the index costs than a row read in the listing's order (a lookup by
/// rowid, then a sort, against the next row of an index walk), as measured on the bench data.
const CANDIDATE_COST: u64 = 8;
/// Trigrams asked for at most: the rarest ones. More would read longer lists than they save in candidates.
const TRIGRAMS_ASKED: usize = 3;
/// Trigram frequencies remembered at most (about 1.5 MB); past this, those not used for longest are
/// forgotten, so any term's may be learned, and no term grows memory.
const FREQUENCIES_KEPT: usize = 20_000;
/// Listings a search's matches are expected to serve before they are found again: finding them costs about
/// what counting them did, so it is done when that many pages read from them save at least as much.
const PAGES_TO_REPAY: u64 = 1024;
/// Matches a page from remembered ones allows for past the latest count, beyond those the count knew of:
/// rows stored since. More than this, and the page is listed again without skipping ([`Plan::Remembered`]).
const ARRIVED_SINCE_COUNT: u64 = 64;

/// How far into a listing a page reaches: the rows before it, and those it needs (its own, and one more); or,
/// after a cursor, those it needs after the matches the cursor counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reach {
    pub offset: u64,
    pub wanted: u64,
    pub after: Option<Ordinal>,
}

/// How a search finds its page. Whichever it is, `instr` on the folded text decides what matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Read rows in the listing's order, testing each, until the page is full.
    InOrder,
    /// Test the candidates the trigram index proposes for this FTS5 query (the term's rarest trigrams), and
    /// the rows past the index's watermark, which it does not hold yet.
    Index(String),
    /// Look up `take` rows remembered to match after the first `skip`, by rowid, and test the rows past their
    /// watermark. Those rows may sort before any remembered one, so a page by offset starts `offset - skip`
    /// rows into these, which holds while at most `past` matches are past the remembered ones: the listing
    /// checks that against its total ([`Plan::holds`]). After a cursor (`past` none) the page starts after
    /// the cursor's row, and the rows looked up hold every remembered one that can follow it.
    Remembered { matches: Arc<Matches>, skip: u64, take: u64, past: Option<u64> },
}

impl Plan {
    /// The condition narrowing the rows tested to the plan's candidates, its arguments in order, none when
    /// reading in order.
    pub fn candidates(&self) -> Option<(&'static str, Vec<Value>)> {
        match self {
            Plan::InOrder => None,
            Plan::Index(trigrams) => Some((
                "(rowid > (SELECT indexed_through FROM text_index_state) \
                 OR rowid IN (SELECT rowid FROM messages_text WHERE messages_text MATCH ?))",
                vec![Value::from(trigrams.clone())],
            )),
            Plan::Remembered { matches, skip, take, .. } => {
                let (skip, take) =
                    (usize::try_from(*skip).unwrap_or(usize::MAX), usize::try_from(*take).unwrap_or(usize::MAX));
                let rowids = matches.rowids.iter().skip(skip).take(take).collect::<Vec<_>>();
                let rowids = serde_json::to_string(&rowids).expect("integers are JSON");
                Some((
                    "(rowid > ? OR rowid IN (SELECT value FROM json_each(?)))",
                    vec![Value::from(matches.through), Value::from(rowids)],
                ))
            }
        }
    }

    /// The rows of the listing the page skips by itself: those before the rows it looks up.
    pub fn skipped(&self) -> u64 {
        match self {
            Plan::Remembered { skip, past: Some(_), .. } => *skip,
            _ => 0,
        }
    }

    /// Whether the page listed with this plan is right, given the listing's `total`: always, but for a page
    /// of remembered matches that skipped some, which holds while the matches past them are as few as it
    /// allowed for.
    pub fn holds(&self, total: u64) -> bool {
        match self {
            Plan::Remembered { matches, skip, past: Some(past), .. } if *skip > 0 => {
                total.saturating_sub(matches.rowids.len() as u64) <= *past
            }
            _ => true,
        }
    }
}

/// The cheapest way to find the matches of the folded term `q` a page reaches. A listing never counted asks
/// the index unless its term is known to be common (it must test every match to count them); terms under
/// three characters have no trigram, so the index cannot propose any.
pub fn plan(q: &str, known: Option<&Known>, reach: Reach, frequencies: &TrigramFrequencies) -> Plan {
    let trigrams = frequencies.rarest(&trigrams(q));
    let Some(known) = known else {
        return match trigrams.is_empty() || common(&trigrams, frequencies) {
            true => Plan::InOrder,
            false => index(trigrams),
        };
    };
    let costs = Costs::of(&trigrams, &known.count, reach);
    let remembered = known.matches.as_ref().map_or(u64::MAX, |matches| costs.remembered(matches));
    if let Some(matches) = known.matches.as_ref().filter(|_| remembered <= costs.in_order.min(costs.index)) {
        let matches = Arc::clone(matches);
        return match reach.after {
            None => {
                let past = past_remembered(&known.count, &matches);
                let skip = reach.offset.saturating_sub(past);
                Plan::Remembered { matches, skip, take: reach.wanted - skip, past: Some(past) }
            }
            Some(after) => {
                let (skip, take) = after_cursor(&known.count, &matches, after, reach.wanted).expect("costed");
                Plan::Remembered { matches, skip, take, past: None }
            }
        };
    }
    match costs.in_order <= costs.index {
        true => Plan::InOrder,
        false => index(trigrams),
    }
}

/// Whether finding every match of a search asked again, and reading its pages from them, repays itself
/// within [`PAGES_TO_REPAY`] pages: its matches are few enough to remember, and a page read from fresh ones
/// costs that much less than the plan it gets otherwise.
pub fn worth_remembering(q: &str, known: &Known, reach: Reach, frequencies: &TrigramFrequencies) -> bool {
    let count = &known.count;
    if count.matches == 0 || count.matches > MOST_MATCHES {
        return false;
    }
    let trigrams = frequencies.rarest(&trigrams(q));
    let costs = Costs::of(&trigrams, count, reach);
    let now = known.matches.as_ref().map_or(u64::MAX, |matches| costs.remembered(matches));
    let now = now.min(costs.in_order).min(costs.index);
    // Finding them is what counting them cost: every candidate, or every row when the term is common.
    let finding = costs.index.min(u64::try_from(count.through).unwrap_or(0));
    let fresh = costs.fresh(ARRIVED_SINCE_COUNT);
    fresh < now && (now - fresh).saturating_mul(PAGES_TO_REPAY) >= finding
}

/// What each plan would cost a listing whose count is known, in rows read in order.
struct Costs {
    in_order: u64,
    index: u64,
    /// The count the costs are of.
    count: Count,
    reach: Reach,
}

impl Costs {
    fn of(trigrams: &[(String, Option<u64>)], count: &Count, reach: Reach) -> Costs {
        let wanted = reach.wanted;
        // Candidates hold the rarest trigram asked for, and every match is one.
        let index = match trigrams.is_empty() {
            true => u64::MAX,
            false => rarest(trigrams).unwrap_or(0).max(count.matches).saturating_mul(CANDIDATE_COST),
        };
        Costs { in_order: rows_to_read(count, wanted), index, count: *count, reach }
    }

    /// Looking up the page's rows from `matches`, and testing every row past their watermark.
    fn remembered(&self, matches: &Matches) -> u64 {
        let past = u64::try_from(self.count.through.saturating_sub(matches.through)).unwrap_or(0);
        let looked_up = match self.reach.after {
            None => self.fresh(past_remembered(&self.count, matches)),
            Some(after) => match after_cursor(&self.count, matches, after, self.reach.wanted) {
                Some((_, take)) => take.saturating_mul(CANDIDATE_COST),
                None => return u64::MAX,
            },
        };
        past.saturating_add(looked_up)
    }

    /// Looking up the page's rows from matches remembered with `past` matches after them.
    fn fresh(&self, past: u64) -> u64 {
        let looked_up = self.reach.wanted - self.reach.offset.saturating_sub(past);
        looked_up.min(self.count.matches).saturating_mul(CANDIDATE_COST)
    }
}

/// The remembered matches a page of `wanted` rows after a cursor's `after` looks up, as (skipped, taken), if
/// the cursor counted through a watermark between theirs and the latest count's: the cursor's page ended after
/// `rows_before` of the matches up to its watermark, which are these and at most `count.matches - |matches|`
/// others, so the first remembered match after it is among those from `rows_before` minus those others on.
fn after_cursor(count: &Count, matches: &Matches, after: Ordinal, wanted: u64) -> Option<(u64, u64)> {
    if !(matches.through..=count.through).contains(&after.through) {
        return None;
    }
    let others = count.matches.saturating_sub(matches.rowids.len() as u64);
    let skip = after.rows_before.saturating_sub(others);
    Some((skip, after.rows_before - skip + wanted))
}

/// How many matches a page from `matches` allows for past them: those the latest count found past their
/// watermark, and a few stored since ([`ARRIVED_SINCE_COUNT`]).
fn past_remembered(count: &Count, matches: &Matches) -> u64 {
    count.matches.saturating_sub(matches.rowids.len() as u64).saturating_add(ARRIVED_SINCE_COUNT)
}

/// Whether the rarest of `trigrams` (all known) is in more than one row in eight: testing every row in order
/// then costs less than testing every candidate.
fn common(trigrams: &[(String, Option<u64>)], frequencies: &TrigramFrequencies) -> bool {
    let rarest = rarest(trigrams);
    rarest.zip(frequencies.table_rows()).is_some_and(|(rarest, rows)| rarest.saturating_mul(CANDIDATE_COST) > rows)
}

/// The rows of the rarest of `trigrams` whose frequency is known.
fn rarest(trigrams: &[(String, Option<u64>)]) -> Option<u64> {
    trigrams.iter().filter_map(|(_, rows)| *rows).min()
}

/// Asking the index for `trigrams`.
fn index(trigrams: Vec<(String, Option<u64>)>) -> Plan {
    let asked: Vec<String> = trigrams.into_iter().map(|(trigram, _)| quoted(&trigram)).collect();
    Plan::Index(asked.join(" AND "))
}

/// Rows read in the listing's order before `wanted` matches have come, if matches are spread evenly: at
/// most all the rows in scope. With no match every row in scope is read.
fn rows_to_read(count: &Count, wanted: u64) -> u64 {
    let scope = count.scope.unwrap_or_else(|| u64::try_from(count.through).unwrap_or(0));
    (wanted.saturating_mul(scope) / count.matches.max(1)).min(scope)
}

/// The distinct trigrams of `q` as the index holds text (NUL as a space).
fn trigrams(q: &str) -> Vec<String> {
    let chars: Vec<char> = q.chars().map(|c| if c == '\0' { ' ' } else { c }).collect();
    let mut trigrams: Vec<String> = chars.windows(3).map(|w| w.iter().collect()).collect();
    trigrams.sort_unstable();
    trigrams.dedup();
    trigrams
}

/// A trigram as an FTS5 string: quoted, so its characters are text and never query syntax.
fn quoted(trigram: &str) -> String {
    format!("\"{}\"", trigram.replace('"', "\"\""))
}

/// How many indexed rows hold each trigram, for the trigrams searches have asked about, and how many rows
/// the table had then. Estimates: rows keep arriving after a frequency is learned. That is enough to tell a
/// rare trigram from a common one, and an estimate only ever chooses how a search is found, never what
/// matches.
#[derive(Default)]
pub struct TrigramFrequencies {
    rows: Mutex<Generations>,
    /// The table's rows when a frequency was last learned (0 before).
    table_rows: AtomicU64,
}

/// Frequencies in two generations: one learned or used goes into the current one, and when that holds half
/// of [`FREQUENCIES_KEPT`] it becomes the previous one, and the previous one is forgotten. So those in use
/// stay, and the rest go in bulk, without a clock per entry.
#[derive(Default)]
struct Generations {
    current: HashMap<String, u64>,
    previous: HashMap<String, u64>,
}

impl Generations {
    fn get(&mut self, trigram: &str) -> Option<u64> {
        if let Some(rows) = self.current.get(trigram) {
            return Some(*rows);
        }
        let rows = self.previous.remove(trigram)?;
        self.insert(trigram.to_owned(), rows);
        Some(rows)
    }

    fn insert(&mut self, trigram: String, rows: u64) {
        if self.current.len() >= FREQUENCIES_KEPT / 2 {
            self.previous = std::mem::take(&mut self.current);
        }
        self.current.insert(trigram, rows);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }
}

impl TrigramFrequencies {
    /// The trigrams of `q` whose frequency is not known yet.
    pub fn unknown(&self, q: &str) -> Vec<String> {
        let mut known = self.rows.lock().unwrap_or_else(|e| e.into_inner());
        trigrams(q).into_iter().filter(|t| known.get(t).is_none()).collect()
    }

    /// `trigrams` with their frequencies, the rarest first, and only the [`TRIGRAMS_ASKED`] rarest when
    /// every one is known (otherwise all, each with what is known of it).
    fn rarest(&self, trigrams: &[String]) -> Vec<(String, Option<u64>)> {
        let mut known = self.rows.lock().unwrap_or_else(|e| e.into_inner());
        let mut trigrams: Vec<(String, Option<u64>)> = trigrams.iter().map(|t| (t.clone(), known.get(t))).collect();
        if trigrams.iter().all(|(_, rows)| rows.is_some()) {
            trigrams.sort_by_key(|(_, rows)| *rows);
            trigrams.truncate(TRIGRAMS_ASKED);
        }
        trigrams
    }

    /// The table's rows when a frequency was last learned, if one was.
    fn table_rows(&self) -> Option<u64> {
        Some(self.table_rows.load(Ordering::Relaxed)).filter(|rows| *rows > 0)
    }

    /// Learns the frequencies of `asked` from the rows of [`super::listing::trigram_frequencies`]; a trigram
    /// without a row is in no indexed row.
    pub fn learn(&self, asked: &[String], mut rows: Table) -> Result<(), StoreError> {
        let mut learned: HashMap<String, u64> = asked.iter().map(|t| (t.clone(), 0)).collect();
        for row in rows.rows_mut() {
            let count = rows::count(row, 1)?;
            learned.insert(rows::text(row, 0)?, count);
            self.table_rows.store(rows::count(row, 2)?, Ordering::Relaxed);
        }
        let mut known = self.rows.lock().unwrap_or_else(|e| e.into_inner());
        for (trigram, rows) in learned {
            known.insert(trigram, rows);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first `wanted` rows of a listing.
    fn first(wanted: u64) -> Reach {
        Reach { offset: 0, wanted, after: None }
    }

    fn known(through: i64, matches: u64) -> Count {
        Count { through, matches, removed: 0, scope: None }
    }

    /// Frequencies for every trigram of `terms`, each `rows`.
    fn frequencies(learned: &[(&str, u64)]) -> TrigramFrequencies {
        let frequencies = TrigramFrequencies::default();
        let mut rows = frequencies.rows.lock().unwrap();
        learned.iter().for_each(|(t, n)| rows.insert(t.to_string(), *n));
        drop(rows);
        frequencies
    }

    /// What a listing asks the index for, none when it reads in order.
    fn asked(q: &str, count: Option<&Count>, wanted: u64, frequencies: &TrigramFrequencies) -> Option<String> {
        let known = count.map(|count| Known { count: *count, matches: None });
        match plan(q, known.as_ref(), first(wanted), frequencies) {
            Plan::Index(trigrams) => Some(trigrams),
            Plan::InOrder => None,
            other => panic!("{other:?}"),
        }
    }

    /// Matches through `through`: `n` rowids.
    fn matches(through: i64, n: i64) -> Arc<Matches> {
        Arc::new(Matches { through, removed: 0, rowids: (1..=n).collect() })
    }

    #[test]
    fn a_listing_never_counted_asks_the_index_for_every_trigram_and_a_short_term_cannot() {
        let nothing = TrigramFrequencies::default();
        assert_eq!(asked("kaka", None, 150, &nothing).as_deref(), Some(r#""aka" AND "kak""#));
        assert_eq!(asked("ka", None, 150, &nothing), None);
        assert_eq!(asked("ka", Some(&known(100_000, 0)), 150, &nothing), None);
    }

    #[test]
    fn a_common_term_reads_in_order_and_a_rare_or_absent_one_asks_the_index() {
        let nothing = TrigramFrequencies::default();
        // In 71% of 100,000 rows, the first 150 matches come after ~211 rows.
        assert_eq!(asked("kaka", Some(&known(100_000, 71_000)), 150, &nothing), None);
        // In 0.1%, they would come after ~150,000 rows, which is every row; the index proposes ~100.
        assert!(asked("risu", Some(&known(100_000, 100)), 150, &nothing).is_some());
        assert!(asked("zzyzx", Some(&known(100_000, 0)), 50, &nothing).is_some());
        // A page deep enough makes even a common term cheaper through the index.
        assert!(asked("kaka", Some(&known(100_000, 2_000)), 100_000, &nothing).is_some());
    }

    #[test]
    fn a_senders_few_rows_are_read_in_order_when_the_term_is_common_elsewhere() {
        let common = frequencies(&[("ris", 15_000), ("isu", 12_000)]);
        let sender = Count { scope: Some(1_000), ..known(1_000_000, 10) };
        assert_eq!(asked("risu", Some(&sender), 50, &common), None);
        // The same term in a sender with a long history is found through the index.
        let busy = Count { scope: Some(900_000), ..known(1_000_000, 10) };
        assert!(asked("risu", Some(&busy), 50, &common).is_some());
    }

    #[test]
    fn a_term_never_counted_is_tested_row_by_row_only_when_its_rarest_trigram_is_in_most_rows() {
        let learned = frequencies(&[("kak", 80_000), ("aka", 75_000), ("ris", 1_200), ("isu", 1_100)]);
        learned.table_rows.store(100_000, Ordering::Relaxed);
        assert_eq!(asked("kaka", None, 150, &learned), None);
        assert_eq!(asked("risu", None, 150, &learned).as_deref(), Some(r#""isu" AND "ris""#));
        // Without the table's size nothing is known to be common.
        let sizeless = frequencies(&[("kak", 80_000), ("aka", 75_000)]);
        assert!(asked("kaka", None, 150, &sizeless).is_some());
    }

    #[test]
    fn only_the_rarest_trigrams_are_asked_for_once_all_are_known() {
        let learned = frequencies(&[("hux", 40), ("uxe", 900), ("xek", 5_000), ("eka", 400_000)]);
        assert_eq!(asked("huxeka", None, 50, &learned).as_deref(), Some(r#""hux" AND "uxe" AND "xek""#));
        // One unknown trigram: every trigram is asked for.
        assert_eq!(learned.unknown("huxekab"), vec!["kab".to_owned()]);
        assert_eq!(asked("huxekab", None, 50, &learned).map(|q| q.matches(" AND ").count()), Some(4));
    }

    #[test]
    fn a_term_in_one_row_in_a_hundred_asked_again_is_worth_remembering_and_then_read_from_its_matches() {
        let learned = frequencies(&[("nem", 1_500), ("emi", 1_400)]);
        let count = known(100_000, 1_000);
        let mut known = Known { count, matches: None };
        // The walk reads ~5,000 rows for 50 matches; 50 lookups are ~400.
        assert!(worth_remembering("nemi", &known, first(50), &learned));
        known.matches = Some(matches(100_000, 1_000));
        assert!(matches!(plan("nemi", Some(&known), first(50), &learned), Plan::Remembered { skip: 0, take: 50, .. }));
        assert!(!worth_remembering("nemi", &known, first(50), &learned), "fresh already");
        // A few rows past their watermark are tested as they are; many make finding them again worth it.
        known.count.through = 100_010;
        assert!(matches!(plan("nemi", Some(&known), first(50), &learned), Plan::Remembered { .. }));
        assert!(!worth_remembering("nemi", &known, first(50), &learned));
        known.count.through = 104_000;
        assert!(worth_remembering("nemi", &known, first(50), &learned));
        known.count.through = 200_000;
        assert_eq!(plan("nemi", Some(&known), first(50), &learned), Plan::InOrder, "100,000 rows past them");
    }

    #[test]
    fn a_common_term_or_a_deep_page_is_not_worth_remembering() {
        let nothing = TrigramFrequencies::default();
        let broad = Known { count: known(100_000, 71_000), matches: None };
        assert!(!worth_remembering("kaka", &broad, first(150), &nothing), "the walk reads ~211 rows");
        let too_many = Known { count: known(1_000_000, MOST_MATCHES + 1), matches: None };
        assert!(!worth_remembering("kaka", &too_many, first(50_000), &nothing));
        let medium = Known { count: known(100_000, 1_000), matches: None };
        assert!(!worth_remembering("nemi", &medium, first(1_000), &nothing), "every match is on the way to the page");
        let none = Known { count: known(100_000, 0), matches: None };
        assert!(!worth_remembering("zzyzx", &none, first(50), &nothing));
    }

    #[test]
    fn remembered_matches_narrow_a_page_to_its_first_rows_and_those_past_their_watermark() {
        let plan = Plan::Remembered { matches: matches(900, 300), skip: 0, take: 150, past: Some(64) };
        let (clause, args) = plan.candidates().unwrap();
        assert_eq!(clause, "(rowid > ? OR rowid IN (SELECT value FROM json_each(?)))");
        let first: Vec<i64> = (1..=150).collect();
        assert_eq!(args, vec![Value::Integer(900), Value::Text(serde_json::to_string(&first).unwrap())]);
        let (_, args) =
            Plan::Remembered { matches: matches(900, 3), skip: 0, take: 150, past: Some(64) }.candidates().unwrap();
        assert_eq!(args[1], Value::Text("[1,2,3]".to_owned()));
    }

    #[test]
    fn a_deep_page_from_remembered_matches_looks_up_its_own_rows_and_as_many_before_as_may_have_come_since() {
        let learned = frequencies(&[("nem", 30_000), ("emi", 29_000)]);
        // 20,000 matches remembered through row 100,000, 100 more counted through row 101,000.
        let count = known(101_000, 20_100);
        let known = Known { count, matches: Some(matches(100_000, 20_000)) };
        let deep = Reach { offset: 15_000, wanted: 15_051, after: None };
        let plan = plan("nemi", Some(&known), deep, &learned);
        let past = 100 + ARRIVED_SINCE_COUNT;
        let expected = Plan::Remembered {
            matches: matches(100_000, 20_000),
            skip: 15_000 - past,
            take: past + 51,
            past: Some(past),
        };
        assert_eq!(plan, expected);
        assert_eq!(plan.skipped(), 15_000 - past);
        let (_, args) = plan.candidates().unwrap();
        let Value::Text(looked_up) = &args[1] else { panic!("{args:?}") };
        let looked_up: Vec<i64> = serde_json::from_str(looked_up).unwrap();
        assert_eq!(looked_up, ((15_000 - past as i64 + 1)..=15_051).collect::<Vec<_>>());
        // It holds while the matches past the remembered ones are as many as it allowed for.
        assert!(plan.holds(20_000 + past));
        assert!(!plan.holds(20_000 + past + 1));
        // A page near the start skips nothing, and always holds.
        let near = Reach { offset: 100, wanted: 151, after: None };
        let plan = super::plan("nemi", Some(&known), near, &learned);
        assert_eq!((plan.skipped(), plan.holds(u64::MAX)), (0, true));
        assert!(worth_remembering("nemi", &Known { matches: None, ..known.clone() }, deep, &learned));
    }

    #[test]
    fn a_page_after_a_cursor_that_counted_looks_up_the_remembered_matches_that_can_follow_it() {
        let learned = frequencies(&[("nem", 30_000), ("emi", 29_000)]);
        // 1,000 matches remembered through row 100,000; 100 more counted through row 100,100.
        let known = Known { count: known(100_100, 1_100), matches: Some(matches(100_000, 1_000)) };
        // The cursor's page ended after 500 matches up to row 100,050: up to 100 of them may be the others.
        let after = Reach { offset: 0, wanted: 51, after: Some(Ordinal { rows_before: 500, through: 100_050 }) };
        let plan = plan("nemi", Some(&known), after, &learned);
        let expected = Plan::Remembered { matches: matches(100_000, 1_000), skip: 400, take: 151, past: None };
        assert_eq!(plan, expected);
        assert_eq!((plan.skipped(), plan.holds(u64::MAX)), (0, true), "the cursor's row says where the page starts");
        // A cursor counted through a watermark before the matches', or after the latest count, cannot say.
        for through in [99_999, 100_101] {
            let after = Reach { after: Some(Ordinal { rows_before: 500, through }), ..after };
            let plan = super::plan("nemi", Some(&known), after, &learned);
            assert!(!matches!(plan, Plan::Remembered { .. }), "{through}");
        }
    }

    #[test]
    fn trigrams_are_quoted_and_hold_nul_as_a_space() {
        let nothing = TrigramFrequencies::default();
        assert_eq!(
            asked("a\"b\"a\"b", None, 50, &nothing).as_deref(),
            Some(r#""""a""" AND """b""" AND "a""b" AND "b""a""#)
        );
        assert_eq!(asked("n\0b", None, 50, &nothing).as_deref(), Some("\"n b\""));
    }

    #[test]
    fn past_the_budget_the_frequencies_used_least_recently_are_forgotten_and_learning_goes_on() {
        let frequencies = TrigramFrequencies::default();
        let learn = |trigrams: Vec<String>| {
            let rows = Table::from_values(3, Vec::new());
            frequencies.learn(&trigrams, rows).unwrap();
        };
        let many = |from: usize, n: usize| (from..from + n).map(|k| format!("{k:03x}")).collect::<Vec<_>>();
        let popular = many(0, 10);
        learn(popular.clone());
        // Four budgets' worth of trigrams, a search's worth at a time, while a popular search is asked too.
        for search in 0..4 * FREQUENCIES_KEPT / 200 {
            learn(many(10 + search * 200, 200));
            assert!(popular.iter().all(|t| frequencies.unknown(t).is_empty()), "search {search}");
            assert!(frequencies.rows.lock().unwrap().len() <= FREQUENCIES_KEPT);
        }
        assert_eq!(frequencies.unknown("zz0"), vec!["zz0".to_owned()], "forgotten, or never learned");
        learn(vec!["zz0".to_owned()]);
        assert!(frequencies.unknown("zz0").is_empty(), "learning never stops");
    }

    #[test]
    fn learning_counts_a_trigram_without_a_row_as_in_none() {
        let frequencies = TrigramFrequencies::default();
        let asked = vec!["abc".to_owned(), "zzz".to_owned()];
        let rows = Table::from_values(3, vec![Value::Blob(b"abc".to_vec()), Value::Integer(7), Value::Integer(90)]);
        frequencies.learn(&asked, rows).unwrap();
        assert!(frequencies.unknown("abczzz").iter().all(|t| !asked.contains(t)));
        assert_eq!(frequencies.rarest(&asked), vec![("zzz".to_owned(), Some(0)), ("abc".to_owned(), Some(7))]);
        assert_eq!(frequencies.table_rows(), Some(90));
    }
}
