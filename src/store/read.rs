//! The read queries: a listing (filters, search, page and total) and the stats, each one statement.
//!
//! One statement is one snapshot, so a page agrees with its total and the stats with each other without a
//! transaction around them; and on a libSQL server one statement is one round trip.

use libsql::Value;

use super::rows::{self, Table};
use super::{search_index, Page, SenderCount, Stats, StoreError};
use crate::query::ListParams;

/// One statement and its arguments (numbered: `?1` is `args[0]`).
pub struct Query {
    pub sql: String,
    pub args: Vec<Value>,
}

/// A listing's filters as SQL.
struct ListQuery {
    /// ` WHERE …`, or empty.
    filter: String,
    args: Vec<Value>,
}

/// How a listing learns how many messages match its filters.
enum Total {
    /// Without filters, or by sender alone: from the aggregates the insert trigger keeps.
    Aggregate(&'static str),
    /// Otherwise every match is counted in the page's own pass (a window over the whole result), and a page
    /// past the end, which has no row to carry that count, counts in a subquery that runs only then.
    Counted,
}

impl ListQuery {
    fn new(params: &ListParams) -> ListQuery {
        let mut query = ListQuery { filter: String::new(), args: Vec::new() };
        if let Some(from) = &params.from {
            query.and("from_msisdn = ?", from.clone().into());
        }
        if let Some(since) = &params.since {
            query.and("ts_key >= ?", since.sort_key().to_owned().into());
        }
        if let Some(q) = &params.q {
            if let Some((clause, arg)) = search_index::candidates(q) {
                query.and(clause, arg);
            }
            // instr() decides, comparing literally: %, _ and quotes are plain characters.
            query.and("instr(text_folded, ?) > 0", q.clone().into());
        }
        query
    }

    /// Adds `clause`, whose one `?` is `arg`.
    fn and(&mut self, clause: &str, arg: Value) {
        self.filter.push_str(if self.filter.is_empty() { " WHERE " } else { " AND " });
        self.args.push(arg);
        self.filter.push_str(&clause.replacen('?', &format!("?{}", self.args.len()), 1));
    }

    /// The statements of a listing: its page, chronological then by id, each row led by the total, and the
    /// total alone, for a page past the end.
    fn into_queries(self, params: &ListParams) -> Listing {
        let total = match (&params.from, &params.since, &params.q) {
            (None, None, None) => Total::Aggregate("(SELECT messages FROM totals)"),
            // `from` is the only filter, so it is ?1.
            (Some(_), None, None) => {
                Total::Aggregate("coalesce((SELECT count FROM sender_counts WHERE from_msisdn = ?1), 0)")
            }
            _ => Total::Counted,
        };
        let filter = &self.filter;
        let (in_page, past_end) = match total {
            Total::Aggregate(total) => (total.to_owned(), total.to_owned()),
            Total::Counted => ("count(*) OVER ()".to_owned(), format!("(SELECT count(*) FROM messages{filter})")),
        };
        let (limit, offset) = (self.args.len() + 1, self.args.len() + 2);
        let page = format!(
            "SELECT {in_page}, {} FROM messages{filter} ORDER BY ts_key, message_id LIMIT ?{limit} OFFSET ?{offset}",
            rows::MESSAGE_COLUMNS
        );
        let only_total = format!("SELECT {past_end}, NULL, NULL, NULL, NULL, NULL");
        let total = Query { sql: only_total, args: self.args.clone() };
        let mut args = self.args;
        args.push(i64::from(params.limit).into());
        args.push(i64::try_from(params.offset).unwrap_or(i64::MAX).into());
        Listing { page: Query { sql: page, args }, total }
    }
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

/// The statements that list the page `params` asks for.
pub fn list(params: &ListParams) -> Listing {
    ListQuery::new(params).into_queries(params)
}

/// The page and total in the rows of a [`Listing`]'s statements.
pub fn page(mut rows: Table) -> Result<Page, StoreError> {
    let mut total = 0;
    let mut data = Vec::new();
    for row in rows.rows_mut() {
        total = rows::count(row, 0)?;
        if !rows::is_null(row, 1)? {
            data.push(rows::stored_message(row, 1)?);
        }
    }
    Ok(Page { data, total })
}

/// The statement that reads everything `/stats` says, from the aggregates the insert trigger keeps (no scan
/// of messages): totals, the top ten senders as a JSON array, the first and last timestamps.
pub fn stats() -> Query {
    let sql = "SELECT messages, senders, \
         CAST((SELECT json_group_array(json_array(from_msisdn, count)) FROM (SELECT from_msisdn, count \
            FROM sender_counts ORDER BY count DESC, from_msisdn ASC LIMIT 10)) AS BLOB), \
         (SELECT CAST(ts AS BLOB) FROM messages ORDER BY ts_key, message_id LIMIT 1), \
         (SELECT CAST(ts AS BLOB) FROM messages ORDER BY ts_key DESC, message_id DESC LIMIT 1) \
         FROM totals";
    Query { sql: sql.to_owned(), args: Vec::new() }
}

/// The stats in the row of [`stats`].
pub fn stats_of(mut rows: Table) -> Result<Stats, StoreError> {
    let row = rows.rows_mut().next().ok_or(StoreError::Unexpected("the totals row is missing"))?;
    let senders = rows::text(row, 2)?;
    let mut senders: Vec<(String, u64)> =
        serde_json::from_str(&senders).map_err(|_| StoreError::Unexpected("the top senders are not a JSON array"))?;
    // An aggregate's order is SQLite's to choose; the contract's is most messages first, then by sender.
    senders.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(Stats {
        total_messages: rows::count(row, 0)?,
        senders_count: rows::count(row, 1)?,
        messages_per_sender: senders.into_iter().map(|(from, count)| SenderCount { from, count }).collect(),
        first_message_ts: rows::optional_text(row, 3)?,
        last_message_ts: rows::optional_text(row, 4)?,
    })
}
