//! `q` through the trigram index (3+ characters) and the scan (shorter terms) returns exactly what a plain
//! case-insensitive substring match returns, on generated texts and terms: Unicode, NUL, quotes, LIKE
//! wildcards and FTS syntax characters included.

mod common;

use std::time::Duration;

use common::{eventually, TempDb};
use webhook_ingest::config::{Database, Server};
use webhook_ingest::message::Message;
use webhook_ingest::query::{fold_case, ListParams};
use webhook_ingest::store::Store;

/// Characters chosen to collide: cases, accents, a NUL, quotes, wildcards, FTS operators, spaces.
const ALPHABET: &[char] = &[
    'a', 'b', 'A', 'B', 'é', 'É', 'ß', 'İ', 'i', '\0', '"', '\'', '%', '_', '*', '-', ' ', ' ', 'x', 'ö', 'Ö', 'Σ',
    'σ', 'ς', '😀', '(', ')', ':', '^',
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn text(&mut self, max: u64) -> String {
        (0..self.next() % max).map(|_| ALPHABET[(self.next() % ALPHABET.len() as u64) as usize]).collect()
    }
}

#[tokio::test]
async fn search_equals_a_plain_substring_match() {
    let db = TempDb::new();
    let store = Store::open(&Database::Local(db.path.clone())).await.unwrap();
    let conn = libsql::Builder::new_local(&db.path).build().await.unwrap().connect().unwrap();
    search_equals_reference(&store, &conn).await;
}

/// The same on a libSQL server, where a task of the instance feeds the index and text crosses HTTP as JSON.
#[tokio::test]
async fn search_on_a_libsql_server_equals_a_plain_substring_match() {
    let Some(url) = common::test_server() else {
        eprintln!("SKIPPED search_on_a_libsql_server…: LIBSQL_TEST_URL is not set");
        return;
    };
    let target = common::Target::Server(url.clone());
    common::empty_server_database(&url).await;
    let auth_token = std::env::var("LIBSQL_TEST_AUTH_TOKEN").unwrap_or_default();
    let store = Store::open(&Database::Remote(Server { url, auth_token })).await.unwrap();
    search_equals_reference(&store, &common::connect(&target).await).await;
}

/// Stores 400 generated texts through `store` and compares `q` with a plain match for ~450 terms, before and
/// after the text index has caught up (`conn` watches it).
async fn search_equals_reference(store: &Store, conn: &libsql::Connection) {
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let mut texts = Vec::new();
    for i in 0..400 {
        let text = if i % 17 == 0 { None } else { Some(rng.text(24)) };
        let body = serde_json::json!({
            "message_id": format!("m{i:03}"), "from": "+1", "to": "+2", "ts": "2025-01-15T10:00:00Z", "text": text
        });
        store.insert(Message::parse(body.to_string().as_bytes()).unwrap()).await.unwrap();
        texts.push((format!("m{i:03}"), text));
    }

    let mut terms: Vec<String> = (0..300).map(|_| rng.text(6)).filter(|t| !t.is_empty()).collect();
    // Substrings of stored texts, so that many terms do match.
    for (_, text) in texts.iter().filter_map(|(id, t)| t.as_ref().map(|t| (id, t))).take(150) {
        let chars: Vec<char> = text.chars().collect();
        if chars.len() >= 2 {
            let start = (rng.next() % (chars.len() as u64 - 1)) as usize;
            let len = 1 + (rng.next() % (chars.len() - start) as u64) as usize;
            terms.push(chars[start..start + len].iter().collect());
        }
    }

    // Right after the inserts part of the table is past the text index's watermark; then all of it is in.
    check(store, &texts, &terms).await;
    let caught_up = || {
        query_bool(conn, "SELECT (SELECT indexed_through FROM text_index_state) = (SELECT max(rowid) FROM messages)")
    };
    eventually("the text index never caught up", Duration::from_secs(30), Duration::from_millis(20), caught_up).await;
    check(store, &texts, &terms).await;
}

async fn check(store: &Store, texts: &[(String, Option<String>)], terms: &[String]) {
    let mut matched_terms = 0;
    for term in terms {
        let query: String =
            form_urlencoded::Serializer::new(String::new()).append_pair("q", term).append_pair("limit", "100").finish();
        let params = ListParams::parse(Some(&query)).unwrap();
        let folded = fold_case(term);
        let expected: Vec<&str> = texts
            .iter()
            .filter(|(_, t)| t.as_deref().is_some_and(|t| fold_case(t).contains(&folded)))
            .map(|(id, _)| id.as_str())
            .collect();
        let page = store.list(&params).await.unwrap();
        let got: Vec<&str> = page.data.iter().map(|m| m.message_id.as_str()).collect();
        assert_eq!(page.total as usize, expected.len(), "total for {term:?}");
        assert_eq!(got, expected[..expected.len().min(100)], "matches for {term:?}");
        matched_terms += usize::from(!expected.is_empty());
    }
    assert!(matched_terms > 100, "too few terms matched anything ({matched_terms}) to prove much");
}

#[tokio::test]
async fn rows_not_yet_in_the_text_index_are_still_found() {
    let db = TempDb::new();
    let store = Store::open(&Database::Local(db.path.clone())).await.unwrap();
    let first = r#"{"message_id":"a","from":"+1","to":"+2","ts":"2025-01-15T10:00:00Z","text":"indexed needle"}"#;
    store.insert(Message::parse(first.as_bytes()).unwrap()).await.unwrap();
    // Written by another connection: the writer, idle, has not indexed these (it indexes when it next runs).
    // First wait until it has indexed the row above, so it is idle and its last chunk cannot take these.
    let conn = libsql::Builder::new_local(&db.path).build().await.unwrap().connect().unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    let indexed = || query_bool(&conn, "SELECT indexed_through >= 1 FROM text_index_state");
    eventually("the first row was never indexed", Duration::from_secs(30), Duration::from_millis(10), indexed).await;
    for (id, text) in [("b", "fresh needle"), ("c", "no match here"), ("d", "NEEDLE again")] {
        conn.execute(
            "INSERT INTO messages (message_id, from_msisdn, to_msisdn, ts, text, created_at, ts_key, text_folded) \
             VALUES (?, '+1', '+2', '2025-01-15T11:00:00Z', ?, '2025-01-15T11:00:00Z', '2025-01-15T11:00:00.000000000', ?)",
            (id, text, fold_case(text)),
        )
        .await
        .unwrap();
    }
    let past = query_bool(&conn, "SELECT indexed_through < (SELECT max(rowid) FROM messages) FROM text_index_state");
    assert!(past.await, "the new rows should be past the watermark");
    let page = store.list(&ListParams::parse(Some("q=needle")).unwrap()).await.unwrap();
    let ids: Vec<&str> = page.data.iter().map(|m| m.message_id.as_str()).collect();
    assert_eq!((ids, page.total), (vec!["a", "b", "d"], 3));
}

/// The one boolean a query selects.
async fn query_bool(conn: &libsql::Connection, sql: &str) -> bool {
    let mut rows = conn.query(sql, ()).await.unwrap();
    rows.next().await.unwrap().unwrap().get::<bool>(0).unwrap()
}
