//! The query-parameter parser of `GET /messages` on arbitrary query strings: it must never panic, and what
//! it accepts must be within SPEC §2's bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use webhook_ingest::query::{ListParams, MAX_LIMIT};

fuzz_target!(|input: &[u8]| {
    let query = String::from_utf8_lossy(input);
    match ListParams::parse(Some(&query)) {
        Ok(params) => {
            assert!((1..=MAX_LIMIT).contains(&params.limit));
            assert!(params.offset <= i64::MAX as u64, "an offset SQLite cannot bind");
            assert!(params.q.as_ref().is_none_or(|q| !q.is_empty()));
            assert!(params.from.as_ref().is_none_or(|from| !from.is_empty()));
        }
        Err(errors) => assert!(!errors.is_empty(), "a rejection that names no parameter"),
    }
});
