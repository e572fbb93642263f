//! The query-parameter parser of `GET /messages` on arbitrary query strings: it must never panic, what it
//! accepts must be within SPEC §2's bounds, and a cursor opens only for the filters it was sealed for.
#![no_main]

use libfuzzer_sys::fuzz_target;
use webhook_ingest::cursor::{Cursors, Order, Ordinal, Position, SortKey};
use webhook_ingest::query::{ListParams, MAX_LIMIT};

fuzz_target!(|input: &[u8]| {
    let query = String::from_utf8_lossy(input);
    let cursors = Cursors::new(["fuzz"]);
    match ListParams::parse(Some(&query), &cursors) {
        Ok(params) => {
            assert!((1..=MAX_LIMIT).contains(&params.limit));
            assert!(params.offset <= i64::MAX as u64, "an offset SQLite cannot bind");
            assert!(params.q.as_ref().is_none_or(|q| !q.is_empty()));
            assert!(params.from.as_ref().is_none_or(|from| !from.is_empty()));
            assert!(params.after.is_none() || params.offset == 0, "a cursor and an offset at once");
            // The next page's cursor, sealed from these filters, opens for them: the position it holds, or a
            // refusal of the offset this query also gives.
            let position = match params.order {
                Order::Time => {
                    Position::Time { sort_key: SortKey::Bytes(input.to_vec()), message_id: query.to_string() }
                }
                Order::Arrival => Position::Arrival(input.len() as i64),
            };
            let ordinal = Some(Ordinal { rows_before: input.len() as u64, through: params.limit.into() });
            let next = format!("{query}&cursor={}", cursors.seal(&params.filters(), &position, ordinal));
            match ListParams::parse(Some(&next), &cursors) {
                Ok(next) => assert_eq!((next.after, next.ordinal), (Some(position), ordinal)),
                Err(errors) => assert!(errors.iter().all(|e| e.loc == ["query", "offset"]), "{errors:?}"),
            }
        }
        Err(errors) => assert!(!errors.is_empty(), "a rejection that names no parameter"),
    }
});
