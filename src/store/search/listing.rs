//! A listing as SQL: its filters, the page, its total, and both in one statement; what a search's plan
//! ([`super::plan`]) and what is remembered of its filters ([`super::counts`]) make of them.
//!
//! One statement is one snapshot, so a page agrees with its total without a transaction around it; and on a
//! libSQL server one statement is one round trip.

use libsql::Value;

use super::counts::{Count, Known, Matches};
use super::plan::{self, Plan, Reach, TrigramFrequencies};
use crate::cursor::{Order, Ordinal, Position, SortKey};
use crate::query::ListParams;
use crate::store::rows::{self, Table};
use crate::store::schema::folded_text;
use crate::store::types::{Listing, Page, Query, StoreError, StoredMessage, Tables};

/// A listing's filters as SQL.
struct ListQuery {
    /// ` WHERE …` with the conditions that decide which rows match, or empty.
    filter: String,
    /// ` AND …` narrowing a search to the text index's candidates, when the planner asks the index.
    candidates: String,
    args: Vec<Value>,
    /// How a search finds its page ([`Plan::InOrder`] for any other listing).
    plan: Plan,
}

/// How a listing learns how many messages match its filters.
enum Total {
    /// Without filters, or by sender alone: from the aggregates the insert trigger keeps.
    Aggregate(&'static str),
    /// Every candidate the index proposes is tested in the page's own pass (a window over the whole result),
    /// and a page past the end, which has no row to carry that count, counts in a subquery that runs only then.
    Counted,
    /// The page reads rows in order and stops at its end, so every row of the filters is tested in a
    /// subquery of its own: over the index of the listing's order, which holds the folded text.
    Scanned,
    /// Counted before through a watermark ([`super::counts`]): only the rows past it are counted.
    Known(Count),
}

/// After the total, every row of a counted listing carries the watermark it was counted through and the
/// deletions so far, and how many of its matches are in the inbox, past that watermark: with the total they
/// become the next [`Count`],
const WATERMARK: &str = "(SELECT coalesce(max(rowid), 0) FROM messages), (SELECT removed FROM totals)";
/// and, when it is filtered to a sender (`from` is ?1), that sender's rows.
const SENDER_ROWS: &str = "(SELECT count FROM sender_counts WHERE from_msisdn = ?1)";
/// What the other listings carry in those four columns.
const NOT_COUNTED: &str = "NULL, NULL, NULL, NULL";
/// The columns of a page's rows after the message's: its position in the listing's order ([`Position`]), and
/// its rowid (for a row of `inbox`, the rowid it will get).
const POSITION: usize = 10;
const ROWID: usize = 11;
/// What a listing reads of each row of `messages`: the message, and its place in either order. A row's
/// arrival number is its rowid: rows get increasing rowids in the order they are committed (one writer at a
/// time, on a file and on a server alike).
#[cfg(feature = "remote")]
const LISTED: &str = "message_id, from_msisdn, to_msisdn, ts, text, ts_key, rowid AS arrival";
/// The same of each row of `inbox`, whose arrival number is the rowid it will get in `messages`: its rows move
/// there in their order, numbered on from the last ([`crate::store::inbox`]), and only ever all at once, so
/// the inbox's own rowids count from 1.
#[cfg(feature = "remote")]
const LISTED_ARRIVING: &str =
    "message_id, from_msisdn, to_msisdn, ts, text, ts_key, (SELECT coalesce(max(rowid), 0) FROM messages) + rowid";
/// The end of the feed: the arrival number of the latest row, where a feed with nothing new goes on from.
const FEED_END: &str = "(SELECT coalesce(max(rowid), 0) FROM messages)";

impl ListQuery {
    fn new(params: &ListParams, known: Option<&Known>, frequencies: &TrigramFrequencies) -> ListQuery {
        let mut query =
            ListQuery { filter: String::new(), candidates: String::new(), args: Vec::new(), plan: Plan::InOrder };
        if let Some(from) = &params.from {
            query.and("from_msisdn = ?", from.clone().into());
        }
        if let Some(since) = &params.since {
            query.and("ts_key >= ?", Value::Blob(since.sort_key().to_vec()));
        }
        if let Some(q) = &params.q {
            // Remembered matches are in time order from the first: of no use to a page in arrival order or
            // after a cursor.
            let without_matches;
            let known = match known {
                Some(known) if !reads_remembered_matches(params) => {
                    without_matches = Known { count: known.count, matches: None };
                    Some(&without_matches)
                }
                known => known,
            };
            query.plan = plan::plan(q, known, reach(params), frequencies);
            if let Some((clause, args)) = query.plan.candidates() {
                query.candidates = format!(" AND {}", numbered(clause, query.args.len() + 1));
                query.args.extend(args);
            }
            // instr() decides, comparing literally: %, _ and quotes are plain characters.
            query.and(concat!("instr(", folded_text!(), ", ?) > 0"), q.clone().into());
        }
        query
    }

    /// Adds `clause`, whose one `?` is `arg`.
    fn and(&mut self, clause: &str, arg: Value) {
        self.filter.push_str(if self.filter.is_empty() { " WHERE " } else { " AND " });
        self.filter.push_str(&numbered(clause, self.args.len() + 1));
        self.args.push(arg);
    }

    /// The statements of a listing: its page, chronological then by id, each row led by the total, and the
    /// total alone, for a page past the end. Both read `inbox` as well, whose rows are past every watermark
    /// ([`super::inbox`]): they are never candidates of the index, and every count adds its matches there.
    fn into_queries(mut self, params: &ListParams, known: Option<Count>, tables: Tables) -> Listing {
        let total = match (counted(params), &params.from, known) {
            (false, None, _) => Total::Aggregate("(SELECT messages FROM totals)"),
            // `from` is the only filter, so it is ?1.
            (false, Some(_), _) => {
                Total::Aggregate("coalesce((SELECT count FROM sender_counts WHERE from_msisdn = ?1), 0)")
            }
            (true, _, Some(count)) => Total::Known(count),
            _ if self.candidates.is_empty() => Total::Scanned,
            _ => Total::Counted,
        };
        let (filter, candidates) = (&self.filter, &self.candidates);
        // The inbox's matches, added to every total; and, for a counted total, told apart from the rest.
        let (plus_inbox, arriving) = match tables {
            Tables::Messages => (String::new(), "0".to_owned()),
            #[cfg(feature = "remote")]
            Tables::WithInbox => {
                let arriving = format!("(SELECT count(*) FROM inbox{filter})");
                (format!(" + {arriving}"), arriving)
            }
        };
        let scope = if params.from.is_some() { SENDER_ROWS } else { "NULL" };
        let counted_through = format!("{WATERMARK}, {arriving}, {scope}");
        let (in_page, past_end) = match total {
            Total::Aggregate(total) => {
                let total = format!("{total}{plus_inbox}, {NOT_COUNTED}");
                (total.clone(), total)
            }
            Total::Counted => {
                let total =
                    format!("(SELECT count(*) FROM messages{filter}{candidates}){plus_inbox}, {counted_through}");
                // After a cursor the page's pass sees only the rows past it, so it cannot count them all.
                match params.after {
                    None => (format!("count(*) OVER (), {counted_through}"), total),
                    Some(_) => (total.clone(), total),
                }
            }
            Total::Scanned => {
                let total = format!("(SELECT count(*) FROM messages{filter}){plus_inbox}, {counted_through}");
                (total.clone(), total)
            }
            // The rows past the watermark, found by rowid: few, where an index over the filters may hold many.
            Total::Known(count) => {
                self.args.push(i64::try_from(count.matches).unwrap_or(i64::MAX).into());
                self.args.push(count.through.into());
                let (matches, through) = (self.args.len() - 1, self.args.len());
                let after = if filter.is_empty() { " WHERE" } else { " AND" };
                let total = format!(
                    "?{matches} + (SELECT count(*) FROM messages NOT INDEXED{filter}{after} rowid > ?{through})\
                     {plus_inbox}, {counted_through}"
                );
                (total.clone(), total)
            }
        };
        let total_args = self.args.clone();
        // The page starts after the cursor's row: a condition of the page's rows alone, never of the total.
        let (after, after_arriving) = match &params.after {
            None => (String::new(), String::new()),
            Some(position) => {
                let first = self.args.len() + 1;
                let and = if filter.is_empty() { " WHERE" } else { " AND" };
                match position {
                    Position::Time { sort_key, message_id } => {
                        self.args.push(match sort_key {
                            SortKey::Bytes(bytes) => Value::Blob(bytes.clone()),
                            SortKey::Text(text) => Value::Text(text.clone()),
                        });
                        self.args.push(Value::Text(message_id.clone()));
                        let after = format!("{and} (ts_key, message_id) > (?{first}, ?{})", first + 1);
                        (after.clone(), after)
                    }
                    Position::Arrival(number) => {
                        self.args.push(Value::Integer(*number));
                        (format!("{and} rowid > ?{first}"), format!("{and} rowid > ?{first} - {FEED_END}"))
                    }
                }
            }
        };
        #[cfg(not(feature = "remote"))]
        let _ = &after_arriving;
        let (limit, offset) = (self.args.len() + 1, self.args.len() + 2);
        let page = format!("LIMIT ?{limit} OFFSET ?{offset}");
        let columns = rows::MESSAGE_COLUMNS;
        let (order, order_of_candidates, position) = match params.order {
            Order::Time => ("ts_key, message_id", "+ts_key, +message_id", "ts_key"),
            Order::Arrival => ("rowid", "+rowid", "rowid"),
        };
        // Without candidates, the page's rows come first walking the time index. Asking the index yields
        // candidates in rowid order, so they are all sorted instead: `+` (or, with the inbox, ordering outside
        // the subquery) keeps SQLite from walking the time index and testing each row against them, which
        // reads every row for a rare term.
        let page = match (tables, candidates.is_empty()) {
            (Tables::Messages, true) => format!(
                "SELECT {in_page}, {columns}, {position}, rowid FROM messages{filter}{after} ORDER BY {order} {page}"
            ),
            (Tables::Messages, false) => format!(
                "SELECT {in_page}, {columns}, {position}, rowid FROM messages{filter}{candidates}{after} \
                 ORDER BY {order_of_candidates} {page}"
            ),
            // The inbox's rows merged in order with the rest (the rows of a subquery keep its order).
            #[cfg(feature = "remote")]
            (Tables::WithInbox, in_order) => {
                let rows = format!(
                    "SELECT {LISTED} FROM messages{filter}{candidates}{after} \
                     UNION ALL SELECT {LISTED_ARRIVING} FROM inbox{filter}{after_arriving}"
                );
                let (order, position) = match params.order {
                    Order::Time => (order, position),
                    Order::Arrival => ("arrival", "arrival"),
                };
                let order = format!("ORDER BY {order} {page}");
                match in_order {
                    true => format!("SELECT {in_page}, {columns}, {position}, arrival FROM ({rows} {order})"),
                    false => format!("SELECT {in_page}, {columns}, {position}, arrival FROM ({rows}) {order}"),
                }
            }
        };
        // Past the end, a feed goes on from its end, which `inbox`'s rows move on.
        let end = match (params.order, tables) {
            (Order::Time, _) => "NULL".to_owned(),
            (Order::Arrival, Tables::Messages) => FEED_END.to_owned(),
            #[cfg(feature = "remote")]
            (Order::Arrival, Tables::WithInbox) => {
                format!("{FEED_END} + (SELECT coalesce(max(rowid), 0) FROM inbox)")
            }
        };
        let only_total = format!("SELECT {past_end}, NULL, NULL, NULL, NULL, NULL, {end}, NULL");
        let total = Query { sql: only_total, args: total_args };
        let mut args = self.args;
        // One row more than the page, to tell whether another page follows it.
        args.push((i64::from(params.limit) + 1).into());
        // The plan may skip rows itself.
        let offset = params.offset - self.plan.skipped();
        args.push(i64::try_from(offset).unwrap_or(i64::MAX).into());
        Listing { page: Query { sql: page, args }, total }
    }
}

/// `clause` with its `?`s numbered in order from `first`.
fn numbered(clause: &str, first: usize) -> String {
    let mut parts = clause.split('?');
    let mut sql = parts.next().unwrap_or_default().to_owned();
    for (n, part) in (first..).zip(parts) {
        sql.push_str(&format!("?{n}{part}"));
    }
    sql
}
/// Whether a listing's page may be read from the matches remembered of its filters, which are in time order
/// from the first: a page in time order by offset, or after a cursor that counted the matches before it.
pub fn reads_remembered_matches(params: &ListParams) -> bool {
    params.order == Order::Time && (params.after.is_none() || params.ordinal.is_some())
}

/// Whether a listing's total is counted from its rows (with `since` or `q`), rather than read from the
/// aggregates; only a counted total can be remembered.
pub fn counted(params: &ListParams) -> bool {
    params.since.is_some() || params.q.is_some()
}

/// How far into its listing the page `params` asks for reaches.
pub fn reach(params: &ListParams) -> Reach {
    let wanted = params.offset.saturating_add(u64::from(params.limit) + 1);
    Reach { offset: params.offset, wanted, after: params.after.as_ref().and(params.ordinal) }
}

/// The statements that list the page `params` asks for, and the plan they follow; `known`, what earlier
/// listings learned of the same filters, and `frequencies`, what is known of the index, choose how a search
/// finds it.
pub fn list(
    params: &ListParams,
    known: Option<&Known>,
    frequencies: &TrigramFrequencies,
    tables: Tables,
) -> (Listing, Plan) {
    let query = ListQuery::new(params, known, frequencies);
    let plan = query.plan.clone();
    (query.into_queries(params, known.map(|known| known.count), tables), plan)
}

/// The statement that finds every match of a listing's filters, in its order, for [`matches_of`]: each
/// row's rowid, then the watermark and deletions so far.
pub fn matches(params: &ListParams, frequencies: &TrigramFrequencies) -> Query {
    let ListQuery { filter, candidates, args, .. } = ListQuery::new(params, None, frequencies);
    let order = if candidates.is_empty() { "ts_key, message_id" } else { "+ts_key, +message_id" };
    let sql = format!("SELECT rowid, {WATERMARK} FROM messages{filter}{candidates} ORDER BY {order}");
    Query { sql, args }
}

/// The matches in the rows of [`matches`]; none when there are none.
pub fn matches_of(mut rows: Table) -> Result<Option<Matches>, StoreError> {
    let (mut through, mut removed, mut rowids) = (0, 0, Vec::new());
    for row in rows.rows_mut() {
        rowids.push(rows::integer(row, 0)?);
        (through, removed) = (rows::integer(row, 1)?, rows::count(row, 2)?);
    }
    Ok((!rowids.is_empty()).then_some(Matches { through, removed, rowids }))
}

/// The page and total in the rows of the statements of the listing `params` asks for in `tables`, and for a
/// counted listing the count it took.
pub fn page(mut rows: Table, params: &ListParams, tables: Tables) -> Result<(Page, Option<Count>), StoreError> {
    let (mut total, mut counted) = (0, None);
    let (mut data, mut positions, mut rowids) = (Vec::new(), Vec::new(), Vec::new());
    let mut feed_end = None;
    for row in rows.rows_mut() {
        total = rows::count(row, 0)?;
        if !rows::is_null(row, 1)? {
            let (through, removed, arriving) = (rows::integer(row, 1)?, rows::count(row, 2)?, rows::count(row, 3)?);
            let scope = if rows::is_null(row, 4)? { None } else { Some(rows::count(row, 4)?) };
            let matches =
                total.checked_sub(arriving).ok_or(StoreError::Unexpected("more matches arriving than in all"))?;
            counted = Some(Count { through, matches, removed, scope });
        }
        if !rows::is_null(row, 5)? {
            data.push(rows::stored_message(row, 5)?);
            positions.push(std::mem::replace(&mut row[POSITION], Value::Null));
            rowids.push(rows::integer(row, ROWID)?);
        } else if params.order == Order::Arrival {
            feed_end = Some(rows::integer(row, POSITION)?);
        }
    }
    let limit = params.limit as usize;
    let more = data.len() > limit;
    data.truncate(limit);
    let next = match (data.last(), params.order) {
        (None, Order::Time) => None,
        (Some(_), Order::Time) if !more => None,
        (Some(last), _) => Some(position(params.order, positions.swap_remove(data.len() - 1), last)?),
        // A feed with nothing new goes on from where it was asked for, or from its end, whichever is later:
        // every row up to its end was in the snapshot the page was read from.
        (None, Order::Arrival) => {
            let asked = match params.after {
                Some(Position::Arrival(number)) => number,
                _ => 0,
            };
            Some(Position::Arrival(asked.max(feed_end.unwrap_or(0))))
        }
    };
    let next_ordinal = match (&next, params.order, tables) {
        (Some(_), Order::Time, Tables::Messages) => ordinal(params, counted.as_ref(), &rowids[..data.len()]),
        _ => None,
    };
    Ok((Page { data, total, next, next_ordinal }, counted))
}

/// How many matches up to a watermark come before the page after this one: those before this page (its
/// offset, all up to the watermark its count took, or what its cursor counted), and this page's rows up to
/// that watermark. Only a file's pages say: on a server, rows in the inbox may be among those before a page
/// by offset, and are past every watermark.
fn ordinal(params: &ListParams, counted: Option<&Count>, rowids: &[i64]) -> Option<Ordinal> {
    let (before, through) = match (&params.after, params.ordinal, counted) {
        (None, _, Some(count)) => (params.offset, count.through),
        (Some(_), Some(ordinal), _) => (ordinal.rows_before, ordinal.through),
        _ => return None,
    };
    let on_this_page = rowids.iter().filter(|rowid| **rowid <= through).count() as u64;
    Some(Ordinal { rows_before: before.saturating_add(on_this_page), through })
}

/// The position of the row `message` in the listing's `order`, from its position column.
fn position(order: Order, column: Value, message: &StoredMessage) -> Result<Position, StoreError> {
    Ok(match (order, column) {
        (Order::Time, Value::Blob(bytes)) => {
            Position::Time { sort_key: SortKey::Bytes(bytes), message_id: message.message_id.clone() }
        }
        (Order::Time, Value::Text(text)) => {
            Position::Time { sort_key: SortKey::Text(text), message_id: message.message_id.clone() }
        }
        (Order::Arrival, Value::Integer(number)) => Position::Arrival(number),
        _ => return Err(StoreError::Unexpected("a row's position in its listing is neither a key nor a number")),
    })
}

/// The statement that reads how many indexed rows hold each of `trigrams`, and how many rows there are, for
/// [`TrigramFrequencies::learn`]: one statement whatever their number (a JSON array), so a connection
/// prepares it once.
pub fn trigram_frequencies(trigrams: &[String]) -> Query {
    Query {
        sql: "SELECT CAST(term AS BLOB), doc, (SELECT messages FROM totals) FROM messages_text_vocab \
             WHERE term IN (SELECT value FROM json_each(?1))"
            .to_owned(),
        args: vec![Value::from(serde_json::to_string(trigrams).expect("strings are JSON"))],
    }
}

/// What a libSQL server or a replica runs, [`Listing::combined`], on the same engine locally: it answers
/// every kind of listing (totals counted, known through a watermark, or scanned; pages read from remembered
/// matches; pages inside and past the end) as the page-then-total pair a file runs does; and the stats of a
/// database whose latest rows are in the inbox are those of one that stored them.
#[cfg(all(test, feature = "remote"))]
mod tests {
    use super::*;
    use crate::cursor::Cursors;
    use crate::message::Timestamp;
    use crate::store::read::{stats, stats_of};
    use crate::store::schema;
    use std::sync::Arc;

    async fn database() -> libsql::Connection {
        let conn = libsql::Builder::new_local(":memory:").build().await.unwrap().connect().unwrap();
        schema::migrate(&conn).await.unwrap();
        conn
    }

    /// Stores messages `range`: most say "kaka", a few "rika", from three senders, out of time order.
    async fn add(conn: &libsql::Connection, range: std::ops::Range<u32>) {
        for i in range {
            let text = if i % 10 < 7 { format!("Kaka {i}") } else { format!("rika {i}") };
            let ts = format!("2025-01-15T10:{:02}:{:02}Z", i * 7 % 60, i % 60);
            conn.execute(
                "INSERT INTO messages (message_id, from_msisdn, to_msisdn, ts, text, created_at, ts_key, text_folded) \
                 VALUES (?, ?, '+2', ?, ?, '', ?, ?)",
                (
                    format!("m{i:03}"),
                    format!("+155500000{}", i % 3),
                    ts.clone(),
                    text.clone(),
                    crate::message::Timestamp::parse(&ts).unwrap().sort_key().to_vec(),
                    text.to_lowercase(),
                ),
            )
            .await
            .unwrap();
        }
    }

    /// Puts messages `range` of [`add`] in the inbox instead, as a server's deliveries do before it is full.
    async fn arrive(conn: &libsql::Connection, range: std::ops::Range<u32>) {
        add(conn, range.clone()).await;
        conn.execute_batch(&format!(
            "INSERT INTO inbox (message_id, from_msisdn, to_msisdn, ts, text, created_at, ts_key, text_folded) \
             SELECT message_id, from_msisdn, to_msisdn, ts, text, created_at, ts_key, text_folded FROM messages \
             WHERE rowid > (SELECT max(rowid) FROM messages) - {n} ORDER BY rowid; \
             DELETE FROM messages WHERE rowid > (SELECT max(rowid) FROM messages) - {n};",
            n = range.len()
        ))
        .await
        .unwrap();
    }

    async fn run(conn: &libsql::Connection, query: &Query) -> Table {
        rows::collect(conn.query(&query.sql, query.args.clone()).await.unwrap()).await.unwrap()
    }

    /// The page and count of `listing` as a file gets them, and as a server does.
    async fn both_ways(
        conn: &libsql::Connection,
        params: &ListParams,
        listed: &(Listing, Plan),
        tables: Tables,
    ) -> (Page, Option<Count>) {
        let (listing, plan) = listed;
        let mut local = run(conn, &listing.page).await;
        if local.is_empty() {
            local = run(conn, &listing.total).await;
        }
        let local = page(local, params, tables).unwrap();
        let combined = page(run(conn, &listing.combined()).await, params, tables).unwrap();
        assert_eq!(combined, local, "{}", listing.page.sql);
        assert!(plan.holds(local.0.total), "{plan:?}: {}", listing.page.sql);
        local
    }

    /// Listings every back end runs, each in the cases the planner tells apart.
    const LISTINGS: [&str; 9] = [
        "q=kaka",
        "q=kaka&limit=20&offset=100",
        "q=rika&offset=10000",
        "q=zzz",
        "q=ka&limit=5",
        "q=rika&from=%2B1555000001",
        "from=%2B1555000002&since=2025-01-15T10:30:00Z",
        "limit=3",
        "from=%2B1555000000&offset=500",
    ];

    #[tokio::test]
    async fn rows_in_the_inbox_are_listed_counted_and_searched_as_stored_ones() {
        let (stored, arriving) = (database().await, database().await);
        add(&stored, 0..200).await;
        add(&arriving, 0..150).await;
        arrive(&arriving, 150..200).await;
        let frequencies = TrigramFrequencies::default();
        for query in LISTINGS.iter().chain(&["limit=100&offset=120", "q=kaka&since=2025-01-15T10:20:00Z"]) {
            let params = ListParams::parse(Some(query), &Cursors::default()).unwrap();
            let (expected, _) =
                both_ways(&stored, &params, &list(&params, None, &frequencies, Tables::Messages), Tables::Messages)
                    .await;
            let (found, counted) =
                both_ways(&arriving, &params, &list(&params, None, &frequencies, Tables::WithInbox), Tables::WithInbox)
                    .await;
            // A server's page says nothing of how many came before the next one (`ordinal`).
            assert_eq!(found, Page { next_ordinal: None, ..expected }, "{query}");
            assert!(counted.is_none_or(|count| count.through == 150), "{query}: counted through the stored rows");
        }
        // A count remembered through a watermark holds while more rows arrive and after they move.
        for query in LISTINGS {
            let params = ListParams::parse(Some(query), &Cursors::default()).unwrap();
            let Some(count) =
                both_ways(&arriving, &params, &list(&params, None, &frequencies, Tables::WithInbox), Tables::WithInbox)
                    .await
                    .1
            else {
                continue;
            };
            let known = Known { count, matches: None };
            for (arrived, step) in [(200..210, "arrive"), (210..220, "move")] {
                arrive(&arriving, arrived).await;
                if step == "move" {
                    arriving
                        .execute_batch(
                            "INSERT INTO messages (message_id, from_msisdn, to_msisdn, ts, text, created_at, ts_key, \
                             text_folded) SELECT message_id, from_msisdn, to_msisdn, ts, text, created_at, ts_key, \
                             text_folded FROM inbox ORDER BY rowid; DELETE FROM inbox;",
                        )
                        .await
                        .unwrap();
                }
                let (again, _) = both_ways(
                    &arriving,
                    &params,
                    &list(&params, Some(&known), &frequencies, Tables::WithInbox),
                    Tables::WithInbox,
                )
                .await;
                let (fresh, _) = both_ways(
                    &arriving,
                    &params,
                    &list(&params, None, &frequencies, Tables::WithInbox),
                    Tables::WithInbox,
                )
                .await;
                assert_eq!(again, fresh, "{query}: after the rows {step}");
            }
            arriving.execute_batch("DELETE FROM inbox; DELETE FROM messages WHERE rowid > 150;").await.unwrap();
            arrive(&arriving, 150..200).await;
        }
        let (arrived, stored) =
            (run(&arriving, &stats(Tables::WithInbox)).await, run(&stored, &stats(Tables::Messages)).await);
        assert_eq!(stats_of(arrived).unwrap(), stats_of(stored).unwrap());
    }

    #[tokio::test]
    async fn the_inbox_changes_the_top_senders_as_stored_rows_would() {
        let (stored, arriving) = (database().await, database().await);
        for conn in [&stored, &arriving] {
            conn.execute_batch(
                "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 209) \
                 INSERT INTO messages (message_id, from_msisdn, to_msisdn, ts, text, created_at, ts_key) \
                 SELECT 'm' || i, '+1' || (i % 20), '+2', 't' || i, NULL, '', 't' || printf('%04d', i) FROM n \
                 WHERE i % 20 <= i / 20",
            )
            .await
            .unwrap();
        }
        let late = "SELECT 'late' || i, '+1' || (19 - i % 3), '+2', 't9' || i, NULL, '', 't9' || i FROM n";
        for (conn, table) in [(&stored, "messages"), (&arriving, "inbox")] {
            conn.execute_batch(&format!(
                "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 17) \
                 INSERT INTO {table} (message_id, from_msisdn, to_msisdn, ts, text, created_at, ts_key) {late}; \
                 INSERT INTO {table} (message_id, from_msisdn, to_msisdn, ts, text, created_at, ts_key) \
                 VALUES ('new', '+199', '+2', 't0', NULL, '', 't0000')"
            ))
            .await
            .unwrap();
        }
        let expected = stats_of(run(&stored, &stats(Tables::Messages)).await).unwrap();
        assert!(expected.messages_per_sender.iter().any(|s| s.from == "+119"), "{expected:?}");
        assert_eq!(expected.first_message_ts.as_deref(), Some("t0"));
        assert_eq!(stats_of(run(&arriving, &stats(Tables::WithInbox)).await).unwrap(), expected);
    }

    /// A deep page read from remembered matches looks up only its own rows and those before it that may have
    /// come past them; it is the page counted afresh while few have, and says it no longer holds once more have.
    #[tokio::test]
    async fn a_deep_page_from_remembered_matches_holds_while_few_matches_came_past_them() {
        let conn = database().await;
        add(&conn, 0..2000).await;
        let frequencies = TrigramFrequencies::default();
        let params = ListParams::parse(Some("q=rika&limit=5&offset=500"), &Cursors::default()).unwrap();
        let (fresh, counted) =
            both_ways(&conn, &params, &list(&params, None, &frequencies, Tables::Messages), Tables::Messages).await;
        let matches = matches_of(run(&conn, &matches(&params, &frequencies)).await).unwrap().map(Arc::new);
        let known = Known { count: counted.unwrap(), matches };
        for tables in [Tables::Messages, Tables::WithInbox] {
            let listed = list(&params, Some(&known), &frequencies, tables);
            assert!(listed.1.skipped() > 400, "{:?}", listed.1);
            let (page, _) = both_ways(&conn, &params, &listed, tables).await;
            let ordinal = if tables == Tables::Messages { fresh.next_ordinal } else { None };
            assert_eq!(page, Page { next_ordinal: ordinal, ..fresh.clone() });
        }
        // 90 matching rows more, spread over the day, with the count as it was: more than the page allows for.
        add(&conn, 2000..2300).await;
        let (listing, plan) = list(&params, Some(&known), &frequencies, Tables::Messages);
        let (stale, _) = page(run(&conn, &listing.page).await, &params, Tables::Messages).unwrap();
        assert!(!plan.holds(stale.total), "{} matches", stale.total);
    }

    /// A page after a cursor whose page was counted reads the remembered matches that can follow it, and is
    /// the page found afresh, with matches past their watermark sorting before, among and after them.
    #[tokio::test]
    async fn a_page_after_a_counted_cursor_read_from_remembered_matches_is_the_page_found_afresh() {
        let conn = database().await;
        let insert = async |range: std::ops::Range<u32>| {
            for i in range {
                let text = if i % 50 == 0 { format!("nemo {i}") } else { format!("other {i}") };
                let ts = format!("2025-01-15T{:02}:{:02}:00Z", i * 7 % 24, i % 60);
                conn.execute(
                    "INSERT INTO messages (message_id, from_msisdn, to_msisdn, ts, text, created_at, ts_key, \
                     text_folded) VALUES (?, '+1', '+2', ?, ?, '', ?, ?)",
                    (
                        format!("n{i:04}"),
                        ts.clone(),
                        text.clone(),
                        Timestamp::parse(&ts).unwrap().sort_key().to_vec(),
                        text,
                    ),
                )
                .await
                .unwrap();
            }
        };
        insert(0..2000).await;
        let frequencies = TrigramFrequencies::default();
        let mut params = ListParams::parse(Some("q=nemo&limit=5&offset=10"), &Cursors::default()).unwrap();
        let matches = matches_of(run(&conn, &matches(&params, &frequencies)).await).unwrap().map(Arc::new);
        insert(2000..2150).await;
        let first = list(&params, None, &frequencies, Tables::Messages);
        let (page, counted) = both_ways(&conn, &params, &first, Tables::Messages).await;
        let known = Known { count: counted.unwrap(), matches };
        (params.offset, params.after, params.ordinal) = (0, page.next, page.next_ordinal);
        let mut pages = 0;
        while params.after.is_some() {
            let listed = list(&params, Some(&known), &frequencies, Tables::Messages);
            assert!(matches!(listed.1, Plan::Remembered { past: None, .. }), "{:?}", listed.1);
            let (remembered, _) = both_ways(&conn, &params, &listed, Tables::Messages).await;
            let fresh = list(&params, None, &frequencies, Tables::Messages);
            assert_eq!(remembered, both_ways(&conn, &params, &fresh, Tables::Messages).await.0, "page {pages}");
            (params.after, params.ordinal, pages) = (remembered.next, remembered.next_ordinal, pages + 1);
        }
        assert_eq!(pages, 6, "43 matches, 15 before the cursor, 5 a page");
    }

    #[tokio::test]
    async fn the_one_statement_a_server_runs_answers_as_the_local_pair_does() {
        let conn = database().await;
        add(&conn, 0..200).await;
        let frequencies = TrigramFrequencies::default();
        for (query, tables) in LISTINGS.iter().flat_map(|q| [(q, Tables::Messages), (q, Tables::WithInbox)]) {
            let list = |params: &ListParams, known: Option<&Known>| list(params, known, &frequencies, tables);
            let params = ListParams::parse(Some(query), &Cursors::default()).unwrap();
            let (first, counted) = both_ways(&conn, &params, &list(&params, None), tables).await;
            let matches = matches_of(run(&conn, &matches(&params, &frequencies)).await).unwrap().map(Arc::new);
            add(&conn, 1000..1010).await;
            let known = counted.map(|count| Known { count, matches: None });
            let (again, _) = both_ways(&conn, &params, &list(&params, known.as_ref()), tables).await;
            let (fresh, _) = both_ways(&conn, &params, &list(&params, None), tables).await;
            assert_eq!(again, fresh, "{query}: a total known through a watermark, and rows after it");
            assert!(counted.is_none() || first.total <= again.total, "{query}");
            if let (Some(count), Some(matches), Some(_)) = (counted, matches, &params.q) {
                assert_eq!(matches.rowids.len() as u64, count.matches, "{query}");
                let known = Known { count, matches: Some(matches) };
                let (remembered, _) = both_ways(&conn, &params, &list(&params, Some(&known)), tables).await;
                assert_eq!(remembered, fresh, "{query}: matches remembered through a watermark, and rows after it");
            }
            conn.execute("DELETE FROM messages WHERE message_id >= 'm1000'", ()).await.unwrap();
        }
    }
}
