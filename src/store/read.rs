//! The read queries: a listing (filters, search, page and total) and the stats, each in one snapshot.

use libsql::params::IntoParams;
use libsql::Value;

use super::pool::Pool;
use super::session::Session;
use super::{rows, search_index, Page, SenderCount, Stats, StoreError};
use crate::query::ListParams;

/// A listing's filters as SQL, and where its total comes from.
struct ListQuery {
    /// ` WHERE …`, or empty.
    filter: String,
    args: Vec<Value>,
    total: Total,
}

/// How a listing learns how many messages match its filters.
enum Total {
    /// Without filters, or by sender alone: from the aggregates the insert trigger keeps.
    Aggregate(&'static str, Vec<Value>),
    /// Otherwise the page query counts every match in the same pass (a window over the whole result); only a
    /// page past the end, which has no row to carry that count, needs a count of its own.
    Counted,
}

impl ListQuery {
    fn new(params: &ListParams) -> ListQuery {
        let mut query = ListQuery { filter: String::new(), args: Vec::new(), total: Total::Counted };
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
        query.total = match (&params.from, &params.since, &params.q) {
            (None, None, None) => Total::Aggregate("SELECT messages FROM totals", Vec::new()),
            (Some(from), None, None) => Total::Aggregate(
                "SELECT coalesce((SELECT count FROM sender_counts WHERE from_msisdn = ?), 0)",
                vec![from.clone().into()],
            ),
            _ => Total::Counted,
        };
        query
    }

    fn and(&mut self, clause: &str, arg: Value) {
        self.filter.push_str(if self.filter.is_empty() { " WHERE " } else { " AND " });
        self.filter.push_str(clause);
        self.args.push(arg);
    }

    /// The page, chronological then by id; with [`Total::Counted`] each row carries the total in column 5.
    fn page_sql(&self) -> String {
        let window = if matches!(self.total, Total::Counted) { ", count(*) OVER ()" } else { "" };
        format!(
            "SELECT {}{window} FROM messages{} ORDER BY ts_key, message_id LIMIT ? OFFSET ?",
            rows::MESSAGE_COLUMNS,
            self.filter
        )
    }

    fn page_args(&self, params: &ListParams) -> Vec<Value> {
        let mut args = self.args.clone();
        args.push(i64::from(params.limit).into());
        args.push(i64::try_from(params.offset).unwrap_or(i64::MAX).into());
        args
    }

    fn count_sql(&self) -> String {
        format!("SELECT count(*) FROM messages{}", self.filter)
    }
}

pub async fn list(pool: &Pool, params: &ListParams) -> Result<Page, StoreError> {
    let query = ListQuery::new(params);
    let (page_sql, page_args, count_sql) = (query.page_sql(), query.page_args(params), query.count_sql());
    pool.snapshot(|conn| async move {
        let mut rows = conn.query(&page_sql, page_args).await?;
        let mut data = Vec::with_capacity(params.limit as usize);
        let mut counted = None;
        while let Some(row) = rows.next().await? {
            data.push(rows::stored_message(&row)?);
            if let Total::Counted = query.total {
                counted = Some(rows::count(&row, 5)?);
            }
        }
        drop(rows);
        let total = match (query.total, counted) {
            (Total::Aggregate(sql, args), _) => count(&conn, sql, args).await?,
            (Total::Counted, Some(total)) => total,
            (Total::Counted, None) => count(&conn, &count_sql, query.args).await?,
        };
        Ok(Page { data, total })
    })
    .await
}

pub async fn stats(pool: &Pool) -> Result<Stats, StoreError> {
    pool.snapshot(|conn| async move {
        let mut rows = conn.query("SELECT messages, senders FROM totals", ()).await?;
        let row = rows.next().await?.ok_or(StoreError::Unexpected("the totals row is missing"))?;
        let (total_messages, senders_count) = (rows::count(&row, 0)?, rows::count(&row, 1)?);
        let mut rows = conn
            .query(
                "SELECT CAST(from_msisdn AS BLOB), count FROM sender_counts \
                 ORDER BY count DESC, from_msisdn ASC LIMIT 10",
                (),
            )
            .await?;
        let mut messages_per_sender = Vec::new();
        while let Some(row) = rows.next().await? {
            messages_per_sender.push(SenderCount { from: rows::text(&row, 0)?, count: rows::count(&row, 1)? });
        }
        let first_message_ts =
            optional_text(&conn, "SELECT CAST(ts AS BLOB) FROM messages ORDER BY ts_key, message_id LIMIT 1").await?;
        let last_message_ts =
            optional_text(&conn, "SELECT CAST(ts AS BLOB) FROM messages ORDER BY ts_key DESC, message_id DESC LIMIT 1")
                .await?;
        Ok(Stats { total_messages, senders_count, messages_per_sender, first_message_ts, last_message_ts })
    })
    .await
}

async fn count(conn: &Session, sql: &str, args: impl IntoParams) -> Result<u64, StoreError> {
    let mut rows = conn.query(sql, args).await?;
    let row = rows.next().await?.ok_or(StoreError::Unexpected("count(*) returned no row"))?;
    rows::count(&row, 0)
}

/// The first column of the first row, if there is one.
async fn optional_text(conn: &Session, sql: &str) -> Result<Option<String>, StoreError> {
    let mut rows = conn.query(sql, ()).await?;
    Ok(match rows.next().await? {
        Some(row) => Some(rows::text(&row, 0)?),
        None => None,
    })
}
