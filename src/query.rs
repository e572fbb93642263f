//! Query parameters of `GET /messages` (SPEC §2) and `GET /statuses`.

use crate::cursor::{Cursors, Filters, Order, Ordinal, Position};
use crate::message::{fold_case, FieldError, Timestamp};

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 100;
/// The longest search term, in characters (Unicode scalar values): longer than any word or phrase a person
/// looks for, and short enough that no term costs a search much more than another does.
pub const MAX_Q_CHARS: usize = 256;

/// Validated filters and page of a message listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListParams {
    pub limit: u32,
    pub offset: u64,
    /// Exact sender.
    pub from: Option<String>,
    /// Only messages at or after this instant.
    pub since: Option<Timestamp>,
    /// Case-insensitive literal substring of `text`, already folded by [`fold_case`].
    pub q: Option<String>,
    pub order: Order,
    /// Where the page starts, from a cursor: after this row (instead of after `offset` rows),
    pub after: Option<Position>,
    /// and, when the cursor's page was counted, how many matches came before that.
    pub ordinal: Option<Ordinal>,
}

impl ListParams {
    /// Parses a raw (form-encoded) query string, opening its cursor with `cursors`. A repeated parameter takes
    /// its last value, as FastAPI does; unknown parameters are ignored; an empty `from`, `since`, `q` or
    /// `cursor` means "none" (an empty `order`, like an empty `limit`, is no choice, and refused).
    pub fn parse(query: Option<&str>, cursors: &Cursors) -> Result<ListParams, Vec<FieldError>> {
        let [limit, offset, from, since, q, order, cursor] =
            last_values(query, ["limit", "offset", "from", "since", "q", "order", "cursor"]);
        let mut errors = Vec::new();
        let cursor = cursor.filter(|s| !s.is_empty());
        if cursor.is_some() && offset.is_some() {
            errors.push(FieldError::new(
                ["query", "offset"],
                "value_error",
                "Value error, offset and cursor cannot be used together: a cursor already says where the page starts",
            ));
        }
        let (limit, offset) = page(limit, offset, &mut errors);
        let order = match order.as_deref() {
            None | Some("time") => Order::Time,
            Some("arrival") => Order::Arrival,
            _ => {
                errors.push(FieldError::new(["query", "order"], "enum", "Input should be 'time' or 'arrival'"));
                Order::Time
            }
        };
        let since = match since.filter(|s| !s.is_empty()) {
            None => Some(None),
            Some(raw) => match Timestamp::parse(&raw) {
                Some(ts) => Some(Some(ts)),
                None => {
                    errors.push(FieldError::new(
                        ["query", "since"],
                        "value_error",
                        "Value error, since must be an RFC 3339 UTC timestamp such as 2025-01-15T10:00:00Z",
                    ));
                    None
                }
            },
        };
        let from = from.filter(|s| !s.is_empty()).map(unmangle_plus);
        let q = q.filter(|s| !s.is_empty());
        if q.as_ref().is_some_and(|q| q.chars().count() > MAX_Q_CHARS) {
            errors.push(FieldError::new(
                ["query", "q"],
                "string_too_long",
                format!("String should have at most {MAX_Q_CHARS} characters"),
            ));
        }
        let q = q.map(|raw| fold_case(&raw));

        let (Some(limit), Some(offset), Some(since)) = (limit, offset, since) else { return Err(errors) };
        let mut params = ListParams { limit, offset, from, since, q, order, after: None, ordinal: None };
        if let Some(cursor) = cursor {
            match cursors.open(&cursor, &params.filters()) {
                Ok((position, ordinal)) => (params.after, params.ordinal) = (Some(position), ordinal),
                Err(refused) => errors.push(refused.field_error()),
            }
        }
        match errors.is_empty() {
            true => Ok(params),
            false => Err(errors),
        }
    }

    /// The filters and order a cursor of this listing belongs to.
    pub fn filters(&self) -> Filters<'_> {
        Filters {
            order: self.order,
            from: self.from.as_deref(),
            since: self.since.as_ref().map(Timestamp::sort_key),
            q: self.q.as_deref(),
        }
    }
}

/// Validated filters and page of `GET /statuses`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusParams {
    pub limit: u32,
    pub offset: u64,
    /// The business's outgoing message the statuses are about.
    pub message_id: Option<String>,
    /// `sent`, `delivered`, `read`, `failed`, or any other status Meta sends.
    pub status: Option<String>,
}

impl StatusParams {
    /// Parses a raw query string as [`ListParams::parse`] does: the last value of a repeated parameter, unknown
    /// ones ignored, an empty filter none.
    pub fn parse(query: Option<&str>) -> Result<StatusParams, Vec<FieldError>> {
        let [limit, offset, message_id, status] = last_values(query, ["limit", "offset", "message_id", "status"]);
        let mut errors = Vec::new();
        let (limit, offset) = page(limit, offset, &mut errors);
        match (limit, offset) {
            (Some(limit), Some(offset)) if errors.is_empty() => Ok(StatusParams {
                limit,
                offset,
                message_id: message_id.filter(|s| !s.is_empty()),
                status: status.filter(|s| !s.is_empty()),
            }),
            _ => Err(errors),
        }
    }
}

/// The last value of each of the parameters `names` in a raw (form-encoded) query string; others are ignored.
fn last_values<const N: usize>(query: Option<&str>, names: [&str; N]) -> [Option<String>; N] {
    let mut values = [const { None }; N];
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if let Some(at) = names.iter().position(|name| *name == key) {
            values[at] = Some(value.into_owned());
        }
    }
    values
}

/// `limit` (default [`DEFAULT_LIMIT`], 1 to [`MAX_LIMIT`]) and `offset` (default 0), or their errors.
fn page(limit: Option<String>, offset: Option<String>, errors: &mut Vec<FieldError>) -> (Option<u32>, Option<u64>) {
    let limit = match limit {
        None => Some(DEFAULT_LIMIT),
        Some(raw) => bounded_integer(&raw, "limit", 1, u64::from(MAX_LIMIT), errors).map(|n| n as u32),
    };
    let offset = match offset {
        None => Some(0),
        Some(raw) => bounded_integer(&raw, "offset", 0, i64::MAX as u64, errors),
    };
    (limit, offset)
}

/// Form decoding turns an unencoded `+` into a space, so `?from=+9198…` arrives as ` 9198…`;
/// a leading space followed by digits only is read back as the `+` the client meant.
fn unmangle_plus(raw: String) -> String {
    match raw.strip_prefix(' ') {
        Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => format!("+{digits}"),
        _ => raw,
    }
}

fn bounded_integer(raw: &str, field: &'static str, min: u64, max: u64, errors: &mut Vec<FieldError>) -> Option<u64> {
    let loc = ["query", field];
    let parsed = (!raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()))
        // All digits: anything that does not fit in u64 is certainly above `max`.
        .then(|| raw.parse::<u64>().unwrap_or(u64::MAX));
    match parsed {
        None => errors.push(FieldError::new(
            loc,
            "int_parsing",
            "Input should be a valid integer, unable to parse string as an integer",
        )),
        Some(n) if n < min => errors.push(FieldError::new(
            loc,
            "greater_than_equal",
            format!("Input should be greater than or equal to {min}"),
        )),
        Some(n) if n > max => {
            errors.push(FieldError::new(loc, "less_than_equal", format!("Input should be less than or equal to {max}")))
        }
        Some(n) => return Some(n),
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &str) -> Result<ListParams, Vec<FieldError>> {
        ListParams::parse(Some(q), &Cursors::default())
    }

    fn failing(q: &str) -> Vec<(String, &'static str)> {
        parse(q).unwrap_err().into_iter().map(|e| (e.loc.join("."), e.kind)).collect()
    }

    #[test]
    fn defaults_and_bounds() {
        let p = ListParams::parse(None, &Cursors::default()).unwrap();
        assert_eq!((p.limit, p.offset, p.from, p.since, p.q), (50, 0, None, None, None));
        assert_eq!((p.order, p.after), (Order::Time, None));
        assert_eq!(parse("limit=1").unwrap().limit, 1);
        assert_eq!(parse("limit=100&offset=7").unwrap().offset, 7);
        assert_eq!(failing("limit=0"), [("query.limit".to_owned(), "greater_than_equal")]);
        assert_eq!(failing("limit=101"), [("query.limit".to_owned(), "less_than_equal")]);
        assert_eq!(failing("limit=99999999999999999999999"), [("query.limit".to_owned(), "less_than_equal")]);
        for bad in ["limit=", "limit=abc", "limit=-1", "limit=1.0", "limit=%201", "limit=1e1"] {
            assert_eq!(failing(bad), [("query.limit".to_owned(), "int_parsing")], "{bad}");
        }
        assert_eq!(failing("offset=-1"), [("query.offset".to_owned(), "int_parsing")]);
        assert_eq!(failing("offset=99999999999999999999"), [("query.offset".to_owned(), "less_than_equal")]);
        assert_eq!(failing("limit=0&offset=x").len(), 2);
    }

    #[test]
    fn from_reads_an_unencoded_plus_back() {
        assert_eq!(parse("from=+919876543210").unwrap().from.as_deref(), Some("+919876543210"));
        assert_eq!(parse("from=%2B919876543210").unwrap().from.as_deref(), Some("+919876543210"));
        assert_eq!(parse("from=%20919876543210").unwrap().from.as_deref(), Some("+919876543210"));
        // Only a space followed by digits is rewritten; anything else stays as it is (and matches nothing).
        assert_eq!(parse("from=+91+98").unwrap().from.as_deref(), Some(" 91 98"));
        assert_eq!(parse("from=").unwrap().from, None);
    }

    #[test]
    fn since_is_validated_and_q_is_folded() {
        assert_eq!(parse("since=2025-01-15T09:30:00Z").unwrap().since.unwrap().as_str(), "2025-01-15T09:30:00Z");
        assert_eq!(failing("since=yesterday"), [("query.since".to_owned(), "value_error")]);
        assert_eq!(failing("since=2025-01-15T09:30:00+00:00"), [("query.since".to_owned(), "value_error")]);
        assert_eq!(parse("q=HeLLo%25_").unwrap().q.as_deref(), Some("hello%_"));
        assert_eq!(parse("q=").unwrap().q, None);
    }

    #[test]
    fn q_is_at_most_256_characters_counted_before_folding() {
        // Four bytes each, percent-encoded: the bound is on characters, not bytes.
        let at_most = "%F0%9F%98%80".repeat(MAX_Q_CHARS);
        assert_eq!(parse(&format!("q={at_most}")).unwrap().q.unwrap().chars().count(), MAX_Q_CHARS);
        assert_eq!(failing(&format!("q={at_most}x")), [("query.q".to_owned(), "string_too_long")]);
        // U+0130 lowercases to two characters: the client's term is what is bounded.
        assert!(parse(&format!("q={}", "%C4%B0".repeat(MAX_Q_CHARS))).is_ok());
    }

    #[test]
    fn order_is_time_or_arrival_and_a_cursor_opens_only_for_its_own_filters() {
        assert_eq!(parse("order=arrival").unwrap().order, Order::Arrival);
        assert_eq!(parse("order=time").unwrap().order, Order::Time);
        assert_eq!(failing("order=newest"), [("query.order".to_owned(), "enum")]);
        assert_eq!(failing("order="), [("query.order".to_owned(), "enum")]);
        let cursors = Cursors::default();
        let params = parse("from=+1555&q=Kaka&order=arrival").unwrap();
        let cursor = cursors.seal(&params.filters(), &Position::Arrival(9), None);
        let next = parse(&format!("q=kaka&from=%2B1555&order=arrival&limit=3&cursor={cursor}")).unwrap();
        assert_eq!((next.after, next.limit, next.offset), (Some(Position::Arrival(9)), 3, 0));
        assert_eq!(
            failing(&format!("q=kaka&order=arrival&cursor={cursor}")),
            [("query.cursor".to_owned(), "value_error")]
        );
        assert_eq!(
            failing(&format!("q=kaka&from=%2B1555&cursor={cursor}")),
            [("query.cursor".to_owned(), "value_error")]
        );
        assert_eq!(failing("cursor=AAAA"), [("query.cursor".to_owned(), "value_error")]);
        assert_eq!(
            failing(&format!("q=kaka&from=%2B1555&order=arrival&offset=0&cursor={cursor}")),
            [("query.offset".to_owned(), "value_error")]
        );
        assert!(parse("cursor=").unwrap().after.is_none());
    }

    #[test]
    fn last_value_wins_and_unknown_parameters_are_ignored() {
        let p = parse("limit=5&limit=7&page=3").unwrap();
        assert_eq!(p.limit, 7);
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn no_query_string_panics_the_parser(query in "\\PC{0,200}") {
            let _ = ListParams::parse(Some(&query), &Cursors::default());
        }

        #[test]
        fn accepted_limits_are_always_in_range(limit in any::<i64>(), offset in any::<i64>()) {
            if let Ok(p) = ListParams::parse(Some(&format!("limit={limit}&offset={offset}")), &Cursors::default()) {
                prop_assert!((1..=MAX_LIMIT).contains(&p.limit));
                prop_assert_eq!(p.limit as i64, limit);
                prop_assert_eq!(p.offset as i64, offset);
            } else {
                prop_assert!(!(1..=100).contains(&limit) || offset < 0);
            }
        }
    }
}
