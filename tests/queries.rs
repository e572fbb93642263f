//! GET /messages and GET /stats against the real server: filters, ordering, pagination, totals,
//! literal search, and every rejected parameter.

mod common;

use common::{message, spawn_app, TestApp};
use serde_json::{json, Value};

/// Delivers a fixed set of messages, out of order, and returns the app.
async fn seeded() -> TestApp {
    let app = spawn_app().await;
    let messages = [
        message("m5", "+919876543210", "2025-01-15T10:00:01Z", Some("later")),
        message("m3", "+919876543210", "2025-01-15T10:00:00.5Z", Some("Hello half")),
        message("m2", "+14155550100", "2025-01-15T10:00:00Z", Some("hello WORLD")),
        message("m1", "+919876543210", "2025-01-15T10:00:00Z", Some("Hello")),
        message("m4", "+447700900000", "2025-01-15T09:00:00Z", None),
        message("m6", "+447700900000", "2025-01-14T23:59:59.999999999Z", Some("100% _done_ 'quoted' \"double\"")),
        message("m7", "+15551234567", "2025-01-16T00:00:00Z", Some("ÉCOLE ÜBER straße")),
    ];
    for body in &messages {
        assert_eq!(app.deliver(body).await.0, 200);
    }
    app
}

fn ids(listing: &Value) -> Vec<&str> {
    listing["data"].as_array().unwrap().iter().map(|m| m["message_id"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn lists_chronologically_then_by_id_with_the_page_contract() {
    let app = seeded().await;
    let (status, listing) = app.get("/messages").await;
    assert_eq!(status, 200);
    // 10:00:00.5Z comes after 10:00:00Z even though it sorts before it as text; ties go by id.
    assert_eq!(ids(&listing), ["m6", "m4", "m1", "m2", "m3", "m5", "m7"]);
    assert_eq!(
        (listing["total"].clone(), listing["limit"].clone(), listing["offset"].clone()),
        (json!(7), json!(50), json!(0))
    );
    // ts exactly as received; text null when absent.
    let m4 = &listing["data"][1];
    assert_eq!(
        m4,
        &json!({"message_id": "m4", "from": "+447700900000", "to": "+14155550100", "ts": "2025-01-15T09:00:00Z", "text": null})
    );
    assert_eq!(listing["data"][0]["ts"], "2025-01-14T23:59:59.999999999Z");

    let (_, page) = app.get("/messages?limit=2&offset=0").await;
    assert_eq!((ids(&page), page["total"].clone(), page["limit"].clone()), (vec!["m6", "m4"], json!(7), json!(2)));
    let (_, page) = app.get("/messages?limit=2&offset=2").await;
    assert_eq!(ids(&page), ["m1", "m2"]);
    let (_, page) = app.get("/messages?limit=100&offset=6").await;
    assert_eq!((ids(&page), page["total"].clone()), (vec!["m7"], json!(7)));
    let (_, page) = app.get("/messages?offset=1000").await;
    assert_eq!((ids(&page).len(), page["total"].clone(), page["offset"].clone()), (0, json!(7), json!(1000)));
}

#[tokio::test]
async fn from_matches_exactly_including_an_unencoded_plus() {
    let app = seeded().await;
    for query in ["from=+919876543210", "from=%2B919876543210", "from=%20919876543210"] {
        let (_, listing) = app.get(&format!("/messages?{query}")).await;
        assert_eq!(ids(&listing), ["m1", "m3", "m5"], "{query}");
        assert_eq!(listing["total"], 3);
    }
    let (_, none) = app.get("/messages?from=919876543210").await;
    assert_eq!((ids(&none).len(), none["total"].clone()), (0, json!(0)));
    let (_, prefix) = app.get("/messages?from=+91987654321").await;
    assert_eq!(prefix["total"], 0, "exact match, not a prefix");
}

#[tokio::test]
async fn since_is_chronological_and_inclusive() {
    let app = seeded().await;
    let (_, listing) = app.get("/messages?since=2025-01-15T10:00:00Z").await;
    assert_eq!(ids(&listing), ["m1", "m2", "m3", "m5", "m7"]);
    let (_, listing) = app.get("/messages?since=2025-01-15T10:00:00.5Z").await;
    assert_eq!(ids(&listing), ["m3", "m5", "m7"]);
    let (_, listing) = app.get("/messages?since=2025-01-15T10:00:00.500000001Z").await;
    assert_eq!(ids(&listing), ["m5", "m7"]);
    let (_, listing) = app.get("/messages?since=2025-01-15T09:30:00Z").await;
    assert_eq!(listing["total"], 5);
}

#[tokio::test]
async fn q_is_a_literal_case_insensitive_substring() {
    let app = seeded().await;
    let search = |q: &'static str| {
        let app = &app;
        async move {
            let (status, listing) = app.get(&format!("/messages?q={q}")).await;
            assert_eq!(status, 200, "{q}");
            ids(&listing).into_iter().map(str::to_owned).collect::<Vec<_>>()
        }
    };
    assert_eq!(search("Hello").await, ["m1", "m2", "m3"]);
    assert_eq!(search("hELLO%20world").await, ["m2"]);
    // LIKE wildcards and quotes are plain characters.
    assert_eq!(search("%25").await, ["m6"]);
    assert_eq!(search("_").await, ["m6"]);
    assert_eq!(search("_done_").await, ["m6"]);
    assert_eq!(search("'quoted'").await, ["m6"]);
    assert_eq!(search("%22double%22").await, ["m6"]);
    assert_eq!(search("h_llo").await, Vec::<String>::new());
    assert_eq!(search("%25hello").await, Vec::<String>::new());
    // Case-insensitive beyond ASCII.
    assert_eq!(search("%C3%A9cole").await, ["m7"]);
    assert_eq!(search("%C3%BCBER").await, ["m7"]);
    // Messages without text never match.
    assert!(!search("l").await.contains(&"m4".to_owned()));
}

#[tokio::test]
async fn filters_combine_with_and() {
    let app = seeded().await;
    let (_, listing) = app.get("/messages?from=+919876543210&since=2025-01-15T10:00:00.1Z&q=hello").await;
    assert_eq!((ids(&listing), listing["total"].clone()), (vec!["m3"], json!(1)));
    let (_, listing) = app.get("/messages?from=+919876543210&q=hello&limit=1&offset=1").await;
    assert_eq!((ids(&listing), listing["total"].clone()), (vec!["m3"], json!(2)));
}

#[tokio::test]
async fn bad_parameters_are_422_naming_each() {
    let app = seeded().await;
    let cases: [(&str, &[&str]); 13] = [
        ("limit=0", &["query.limit"]),
        ("limit=101", &["query.limit"]),
        ("limit=-1", &["query.limit"]),
        ("limit=abc", &["query.limit"]),
        ("limit=", &["query.limit"]),
        ("limit=2.5", &["query.limit"]),
        ("limit=99999999999999999999999999", &["query.limit"]),
        ("offset=-1", &["query.offset"]),
        ("offset=x", &["query.offset"]),
        ("since=yesterday", &["query.since"]),
        ("since=2025-01-15T09:30:00", &["query.since"]),
        ("since=2025-02-30T00:00:00Z", &["query.since"]),
        ("limit=0&offset=-5&since=x", &["query.limit", "query.offset", "query.since"]),
    ];
    for (query, expected) in cases {
        let (status, answer) = app.get(&format!("/messages?{query}")).await;
        assert_eq!(status, 422, "{query}: {answer}");
        let locs: Vec<String> = answer["detail"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["loc"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect::<Vec<_>>().join("."))
            .collect();
        assert_eq!(locs, expected, "{query}");
    }
}

#[tokio::test]
async fn stats_of_an_empty_store() {
    let app = spawn_app().await;
    assert_eq!(
        app.get("/stats").await,
        (
            200,
            json!({"total_messages": 0, "senders_count": 0, "messages_per_sender": [], "first_message_ts": null, "last_message_ts": null, "statuses_by_status": {}})
        )
    );
    let (_, listing) = app.get("/messages").await;
    assert_eq!(listing, json!({"data": [], "total": 0, "limit": 50, "offset": 0, "next_cursor": null}));
}

#[tokio::test]
async fn stats_count_top_senders_and_chronological_bounds() {
    let app = seeded().await;
    // Twelve more senders with one message each, so the top-10 cut and the tie order both matter.
    for i in 0..12 {
        let body = message(&format!("x{i}"), &format!("+1000000{i:02}"), "2025-01-15T12:00:00Z", None);
        assert_eq!(app.deliver(&body).await.0, 200);
    }
    let (status, stats) = app.get("/stats").await;
    assert_eq!(status, 200);
    assert_eq!(stats["total_messages"], 19);
    assert_eq!(stats["senders_count"], 16);
    let top: Vec<(String, u64)> = stats["messages_per_sender"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["from"].as_str().unwrap().to_owned(), s["count"].as_u64().unwrap()))
        .collect();
    let expected: Vec<(String, u64)> = [("+919876543210", 3), ("+447700900000", 2)]
        .into_iter()
        .map(|(f, c)| (f.to_owned(), c))
        .chain(
            // Ties by `from` ascending: "+100000000"… sort before "+14155550100" and "+15551234567".
            (0..8).map(|i| (format!("+1000000{i:02}"), 1)),
        )
        .collect();
    assert_eq!(top, expected);
    assert_eq!(stats["first_message_ts"], "2025-01-14T23:59:59.999999999Z");
    assert_eq!(stats["last_message_ts"], "2025-01-16T00:00:00Z");
}

#[tokio::test]
async fn text_round_trips_exactly() {
    let app = spawn_app().await;
    let texts =
        ["", "nul\u{0}inside", "tab\tnew\nline", "emoji 😀 and RTL שלום", "\u{feff}bom", "back\\slash \"quote\""];
    for (i, text) in texts.iter().enumerate() {
        assert_eq!(app.deliver(&message(&format!("t{i}"), "+1", "2025-01-15T10:00:00Z", Some(text))).await.0, 200);
    }
    let (_, listing) = app.get("/messages").await;
    let got: Vec<&str> = listing["data"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(got, texts);
    let (_, found) = app.get("/messages?q=inside").await;
    assert_eq!(ids(&found), ["t1"]);
}
