//! `q` returns exactly what a plain case-insensitive substring match returns, with an exact total, whichever
//! way it is found: through the trigram index (3+ characters), by reading rows in time order (shorter terms,
//! and terms known to be common), before its total is known and after, with rows past the watermark that
//! total was counted through, with rows deleted or written meanwhile. On generated texts and terms: Unicode,
//! NUL, quotes, LIKE wildcards and FTS syntax characters included.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{connect, eventually, Target, TempDb};
use webhook_ingest::config::{Database, Server};
use webhook_ingest::cursor::Cursors;
use webhook_ingest::message::fold_case;
use webhook_ingest::message::{Message, Timestamp};
use webhook_ingest::query::ListParams;
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
    let conn = connect(&Target::File(db.path.clone())).await;
    search_equals_reference(&store, &conn).await;
}

/// The same on a libSQL server, where a task of the instance feeds the index and text crosses HTTP as JSON.
#[tokio::test]
#[ignore = "needs a libSQL server: LIBSQL_TEST_URL (make server-test SQLD=path)"]
async fn search_on_a_libsql_server_equals_a_plain_substring_match() {
    let url = common::required_server();
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
    wait_until_indexed(conn).await;
    check(store, &texts, &terms).await;
}

async fn check(store: &Store, texts: &[(String, Option<String>)], terms: &[String]) {
    let mut matched_terms = 0;
    for term in terms {
        let query: String =
            form_urlencoded::Serializer::new(String::new()).append_pair("q", term).append_pair("limit", "100").finish();
        let params = ListParams::parse(Some(&query), &Cursors::default()).unwrap();
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
    let conn = connect(&Target::File(db.path.clone())).await;
    let indexed = || query_bool(&conn, "SELECT indexed_through >= 1 FROM text_index_state");
    eventually("the first row was never indexed", Duration::from_secs(30), Duration::from_millis(10), indexed).await;
    for (id, text) in [("b", "fresh needle"), ("c", "no match here"), ("d", "NEEDLE again")] {
        conn.execute(
            "INSERT INTO messages (message_id, from_msisdn, to_msisdn, ts, text, created_at, ts_key, text_folded) \
             VALUES (?, '+1', '+2', '2025-01-15T11:00:00Z', ?, '2025-01-15T11:00:00Z', X'0EDF198C3000000000', ?)",
            (id, text, fold_case(text)),
        )
        .await
        .unwrap();
    }
    let past = query_bool(&conn, "SELECT indexed_through < (SELECT max(rowid) FROM messages) FROM text_index_state");
    assert!(past.await, "the new rows should be past the watermark");
    let page = store.list(&ListParams::parse(Some("q=needle"), &Cursors::default()).unwrap()).await.unwrap();
    let ids: Vec<&str> = page.data.iter().map(|m| m.message_id.as_str()).collect();
    assert_eq!((ids, page.total), (vec!["a", "b", "d"], 3));
}

/// Messages with a skewed vocabulary, as chat has: one word in 70% of them, one in about 11%, one in a few,
/// and fragments that are hard to search for. Timestamps are out of insertion order, and pairs share one, so
/// reading in time order is not reading in rowid order and ties fall to the id.
#[derive(Default)]
struct Corpus {
    /// Each message: id, sender, ts, text.
    messages: Vec<(String, String, String, Option<String>)>,
}

const FRAGMENTS: &[&str] = &[
    "100% sure",
    "snake_case",
    "\"quoted\"",
    "it's",
    "NEAR(a b)",
    "a* OR b",
    "ÉCOLE",
    "Straße",
    "ΣΊΣΥΦΟΣ",
    "nul\0byte",
];

impl Corpus {
    fn message(i: u64) -> (String, String, String, Option<String>) {
        let mut words = Vec::new();
        if i % 10 < 7 {
            words.push("Kaka");
        }
        if i % 9 == 0 {
            words.push("rika");
        }
        if i % 97 == 5 {
            words.push("zoka");
        }
        if let Some(fragment) = FRAGMENTS.get((i % 13) as usize) {
            words.push(fragment);
        }
        words.push(["lo", "mi", "ne"][(i % 3) as usize]);
        let ts = format!("2025-01-15T{:02}:{:02}:00Z", 10 + (i * 7919 % 600) / 60 % 10, (i * 7919 % 600) % 60);
        let text = (i % 31 != 0).then(|| words.join(" "));
        (format!("m{i:04}"), format!("+155500000{}", i % 3), ts, text)
    }

    /// Stores messages `range` through `store`, each acknowledged before the next.
    async fn add(&mut self, store: &Store, range: std::ops::Range<u64>) {
        for i in range {
            let (id, from, ts, text) = Corpus::message(i);
            let body = serde_json::json!({ "message_id": id, "from": from, "to": "+2", "ts": ts, "text": text });
            store.insert(Message::parse(body.to_string().as_bytes()).unwrap()).await.unwrap();
            self.messages.push((id, from, ts, text));
        }
    }

    /// The ids a plain match of `params` returns in order, and how many there are.
    fn expected(&self, params: &ListParams) -> (Vec<String>, u64) {
        let mut matches: Vec<&(String, String, String, Option<String>)> = self
            .messages
            .iter()
            .filter(|(_, from, ts, text)| {
                params.from.as_ref().is_none_or(|f| f == from)
                    && params
                        .since
                        .as_ref()
                        .is_none_or(|since| Timestamp::parse(ts).unwrap().sort_key() >= since.sort_key())
                    && params.q.as_ref().is_none_or(|q| text.as_deref().is_some_and(|t| fold_case(t).contains(q)))
            })
            .collect();
        matches.sort_by(|a, b| (&a.2, &a.0).cmp(&(&b.2, &b.0)));
        let page = matches.iter().skip(params.offset as usize).take(params.limit as usize);
        (page.map(|m| m.0.clone()).collect(), matches.len() as u64)
    }

    /// Lists `query` and compares page and total with [`Corpus::expected`].
    async fn check(&self, store: &Store, query: &str) {
        let params = ListParams::parse(Some(query), &Cursors::default()).unwrap();
        let page = store.list(&params).await.unwrap();
        let got: Vec<String> = page.data.iter().map(|m| m.message_id.clone()).collect();
        assert_eq!((got, page.total), self.expected(&params), "{query}");
    }

    /// Walks `query` to its end with the cursors of its pages (their positions and ordinals, as a cursor
    /// carries them) and compares the rows with every match, in order.
    async fn check_walk(&self, store: &Store, query: &str) {
        let mut params = ListParams::parse(Some(query), &Cursors::default()).unwrap();
        let (mut walked, mut pages) = (Vec::new(), 0);
        loop {
            let page = store.list(&params).await.unwrap();
            walked.extend(page.data.iter().map(|m| m.message_id.clone()));
            pages += 1;
            match page.next {
                Some(next) => (params.after, params.ordinal) = (Some(next), page.next_ordinal),
                None => break,
            }
        }
        let all = ListParams { limit: u32::MAX, ..ListParams::parse(Some(query), &Cursors::default()).unwrap() };
        assert_eq!(walked, self.expected(&all).0, "{query}, walked in {pages} pages");
    }

    async fn check_each(&self, store: &Store, queries: &[impl AsRef<str>]) {
        for query in queries {
            self.check(store, query.as_ref()).await;
        }
    }
}

/// Every term and page to ask: broad, medium, rare and absent terms, short ones, folding and syntax, each
/// plain, deep in the results, past their end, and with `since` or `from`.
fn listings() -> Vec<String> {
    let terms = [
        "kaka",
        "KAKA",
        "rika",
        "zoka",
        "zzyzx",
        "ka",
        "k",
        "%",
        "_case",
        "\"quoted\"",
        "it's",
        "near(",
        "a*",
        "école",
        "STRASSE",
        "straße",
        "σίσυφος",
        "nul\0",
        "\0",
        "lo",
    ];
    let pages = ["", "&limit=50&offset=100", "&limit=7&offset=3", "&offset=10000", "&since=2025-01-15T14:00:00Z"];
    let mut listings = Vec::new();
    for term in terms {
        let q: String = form_urlencoded::Serializer::new(String::new()).append_pair("q", term).finish();
        for page in pages {
            listings.push(format!("{q}{page}"));
        }
        listings.push(format!("{q}&from=%2B1555000001&limit=20&offset=5"));
    }
    listings.push("from=%2B1555000002&since=2025-01-15T12:00:00Z".to_owned());
    listings
}

/// Each listing three times: before its total is known (counted in full), once known (the broad terms,
/// in 70% of rows, then read rows in time order; the rest still ask the index), and after more rows came
/// past the watermark it was counted through. Then each again after the text index has caught up.
#[tokio::test]
async fn every_search_plan_equals_a_plain_substring_match_across_watermarks() {
    let db = TempDb::new();
    let store = Store::open(&Database::Local(db.path.clone())).await.unwrap();
    let mut corpus = Corpus::default();
    corpus.add(&store, 0..600).await;
    let listings = listings();
    for _ in 0..2 {
        corpus.check_each(&store, &listings).await;
    }
    corpus.add(&store, 600..800).await;
    corpus.check_each(&store, &listings).await;
    let conn = connect(&Target::File(db.path.clone())).await;
    wait_until_indexed(&conn).await;
    corpus.check_each(&store, &listings).await;
}

/// Messages are append-only for this service, but another program may delete some: a total counted before
/// that is not reused. Deleting the last row lets SQLite give its rowid to the next one, which a count
/// through that watermark would otherwise never look at.
#[tokio::test]
async fn a_deletion_by_another_program_is_counted_in_the_next_total() {
    let db = TempDb::new();
    let store = Store::open(&Database::Local(db.path.clone())).await.unwrap();
    let mut corpus = Corpus::default();
    corpus.add(&store, 0..197).await;
    let query = "q=kaka&limit=10&offset=20";
    corpus.check(&store, query).await;
    corpus.check(&store, query).await;

    let conn = connect(&Target::File(db.path.clone())).await;
    let last = corpus.messages.pop().unwrap();
    assert!(last.3.as_deref().is_some_and(|t| t.contains("Kaka")), "the last row matches");
    conn.execute("DELETE FROM messages WHERE message_id IN ('m0001', ?)", [last.0.as_str()]).await.unwrap();
    corpus.messages.remove(1);
    corpus.check(&store, query).await;

    // The next row takes the deleted one's rowid, at the old watermark; it does not match.
    let quiet = r#"{"message_id":"quiet","from":"+1","to":"+2","ts":"2025-01-15T10:00:00Z","text":"nothing"}"#;
    store.insert(Message::parse(quiet.as_bytes()).unwrap()).await.unwrap();
    corpus.messages.push(("quiet".into(), "+1".into(), "2025-01-15T10:00:00Z".into(), Some("nothing".into())));
    corpus.check(&store, query).await;
}

/// A search asked again whose matches are few enough reads its pages from its remembered matches, plus the
/// rows past their watermark: rows that sort before, inside and after the page, whether they match or not,
/// many rows later (found again), and a deletion by another program (forgotten, found again).
#[tokio::test]
async fn a_search_asked_again_is_exact_when_read_from_its_remembered_matches() {
    let db = TempDb::new();
    let store = Store::open(&Database::Local(db.path.clone())).await.unwrap();
    let mut corpus = Corpus::default();
    corpus.add(&store, 0..900).await;
    let conn = connect(&Target::File(db.path.clone())).await;
    wait_until_indexed(&conn).await;
    // "rika" is in one row in nine: a page of 50 reads ~450 rows in order, or looks up 50 remembered ones.
    let listings = [
        "q=rika",
        "q=RIKA&limit=7&offset=3",
        "q=rika&limit=50&offset=60",
        "q=rika&limit=5&offset=90",
        "q=rika&limit=10&offset=150",
        "q=rika&offset=10000",
        "q=rika&limit=20&since=2025-01-15T14:00:00Z",
        "q=rika&from=%2B1555000001&limit=5&offset=2",
    ];
    for _ in 0..3 {
        corpus.check_each(&store, &listings).await;
    }
    corpus.check_walk(&store, "q=rika&limit=7").await;
    corpus.add(&store, 900..930).await;
    corpus.check_each(&store, &listings).await;
    corpus.check_each(&store, &listings).await;
    // Cursors after pages of remembered matches, with matches past their watermark sorting among them.
    corpus.check_walk(&store, "q=rika&limit=7").await;
    corpus.check_walk(&store, "q=rika&limit=1&from=%2B1555000001").await;
    corpus.add(&store, 930..2000).await;
    corpus.check_each(&store, &listings).await;
    corpus.check_each(&store, &listings).await;
    corpus.check_walk(&store, "q=rika&limit=13").await;

    let first = corpus.expected(&ListParams::parse(Some("q=rika"), &Cursors::default()).unwrap()).0[0].clone();
    conn.execute("DELETE FROM messages WHERE message_id = ?", [first.as_str()]).await.unwrap();
    corpus.messages.retain(|m| m.0 != first);
    corpus.check_each(&store, &listings).await;
    corpus.check_each(&store, &listings).await;
}

/// A store opened again (as after a restart or a crash) counts afresh, then adds rows past its watermark.
#[tokio::test]
async fn totals_stay_exact_when_the_store_is_opened_again() {
    let db = TempDb::new();
    let mut corpus = Corpus::default();
    {
        let store = Store::open(&Database::Local(db.path.clone())).await.unwrap();
        corpus.add(&store, 0..150).await;
        corpus.check(&store, "q=kaka&offset=30").await;
    }
    let store = Store::open(&Database::Local(db.path.clone())).await.unwrap();
    corpus.check(&store, "q=kaka&offset=30").await;
    corpus.add(&store, 150..220).await;
    corpus.check(&store, "q=kaka&offset=30").await;
    corpus.check(&store, "q=rika&offset=3").await;
}

/// Searches while rows are written: each answer counts every row acknowledged before it was asked and none
/// that was not yet written, and its page holds as many rows as that total leaves; a search the new rows
/// do not match answers as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totals_stay_exact_while_rows_are_written() {
    let db = TempDb::new();
    let store = Arc::new(Store::open(&Database::Local(db.path.clone())).await.unwrap());
    let mut corpus = Corpus::default();
    corpus.add(&store, 0..300).await;
    let matching =
        |corpus: &Corpus| corpus.expected(&ListParams::parse(Some("q=kaka"), &Cursors::default()).unwrap()).1;
    let before = matching(&corpus);

    let acknowledged = Arc::new(AtomicU64::new(0));
    let writer = {
        let (store, acknowledged) = (store.clone(), acknowledged.clone());
        tokio::spawn(async move {
            for n in 0..300 {
                let body = format!(
                    r#"{{"message_id":"new{n}","from":"+1","to":"+2","ts":"2025-01-15T1{}:30:00Z","text":"KAKA {n}"}}"#,
                    n % 10
                );
                store.insert(Message::parse(body.as_bytes()).unwrap()).await.unwrap();
                acknowledged.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    let params = ListParams::parse(Some("q=kaka&limit=50&offset=200"), &Cursors::default()).unwrap();
    let mut searches = 0;
    while !writer.is_finished() {
        let floor = acknowledged.load(Ordering::SeqCst);
        let page = store.list(&params).await.unwrap();
        let ceiling = acknowledged.load(Ordering::SeqCst) + 1;
        assert!(
            (before + floor..=before + ceiling).contains(&page.total),
            "total {} outside {}..={}",
            page.total,
            before + floor,
            before + ceiling
        );
        assert_eq!(page.data.len() as u64, page.total.saturating_sub(200).min(50));
        // The rows written do not hold this term: they are tested past its remembered matches, and left out.
        corpus.check(&store, "q=rika&limit=20&offset=5").await;
        searches += 1;
    }
    writer.await.unwrap();
    assert!(searches > 10, "only {searches} searches ran while rows were written");
    let page = store.list(&params).await.unwrap();
    assert_eq!(page.total, before + 300);
}

/// Waits until every row is in the text index.
async fn wait_until_indexed(conn: &libsql::Connection) {
    let caught_up = || {
        query_bool(conn, "SELECT (SELECT indexed_through FROM text_index_state) = (SELECT max(rowid) FROM messages)")
    };
    eventually("the text index never caught up", Duration::from_secs(30), Duration::from_millis(20), caught_up).await;
}

/// The one boolean a query selects.
async fn query_bool(conn: &libsql::Connection, sql: &str) -> bool {
    let mut rows = conn.query(sql, ()).await.unwrap();
    rows.next().await.unwrap().unwrap().get::<bool>(0).unwrap()
}
