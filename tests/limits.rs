//! The local listener's abuse limits (slow headers, slow bodies, too many or too large headers, oversized
//! bodies, a connection cap) and the optional read token. Each limit is shown to hold while an ordinary
//! client is still served.

mod common;

use std::time::{Duration, Instant};

use common::{message, raw_http, spawn_app, Setup, TestApp};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use webhook_ingest::local::{
    BODY_READ_TIMEOUT, HEADER_READ_TIMEOUT, LINGER_BYTES, LINGER_TIME, MAX_HEADERS, MAX_HEADER_BYTES,
};

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.addr.trim_start_matches("http://")).await.unwrap()
}

/// Reads until the server closes the connection (or `limit` passes) and returns what it sent.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<String> {
    let mut answer = Vec::new();
    match tokio::time::timeout(limit, stream.read_to_end(&mut answer)).await {
        Ok(_) => Some(String::from_utf8_lossy(&answer).into_owned()),
        Err(_) => None,
    }
}

/// An ordinary client is answered normally, and promptly: well inside the limits the other tests wait on.
async fn assert_others_are_served(app: &TestApp, id: &str) {
    let started = Instant::now();
    let body = message(id, "+1", "2025-01-15T10:00:00Z", Some("ordinary"));
    assert_eq!(app.deliver(&body).await, (200, json!({"status": "ok"})));
    assert_eq!(app.get("/health/live").await.0, 200);
    assert!(started.elapsed() < HEADER_READ_TIMEOUT / 2, "an ordinary client waited {:?}", started.elapsed());
}

#[tokio::test]
async fn a_client_sending_headers_slowly_is_cut_off() {
    let app = spawn_app().await;
    let mut slow = connect(&app).await;
    slow.write_all(b"POST /webhook HTTP/1.1\r\nHost: t\r\n").await.unwrap();
    let started = Instant::now();
    // One header byte every 200 ms would take minutes to finish; the server must not wait for it.
    let trickle = async {
        for byte in b"X-Padding: ".iter().chain(&[b'a'; 1000]).cycle() {
            if slow.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    // Well before hyper's own default of 30 s, so this fails if our limit is not applied.
    let cut_off = tokio::time::timeout(HEADER_READ_TIMEOUT * 2, trickle).await.is_ok();
    assert!(cut_off, "still connected after {:?}", started.elapsed());
    assert!(started.elapsed() >= HEADER_READ_TIMEOUT / 2, "cut off too early: {:?}", started.elapsed());
    assert_others_are_served(&app, "after-slow-headers").await;
}

#[tokio::test]
async fn an_idle_connection_is_closed_and_frees_its_slot() {
    let app = TestApp::start(Setup::new().env("MAX_CONNECTIONS", "1")).await;
    let mut idle = connect(&app).await;
    // Nothing is ever sent; the header clock runs from the connection's start.
    let closed = read_until_closed(&mut idle, HEADER_READ_TIMEOUT * 2).await;
    assert!(closed.is_some(), "an idle connection was kept open");
    assert_others_are_served(&app, "after-idle").await;
}

#[tokio::test]
async fn a_body_that_never_arrives_gets_408_and_stores_nothing() {
    let app = spawn_app().await;
    let body = message("slow-body", "+1", "2025-01-15T10:00:00Z", None);
    let signature = webhook_ingest::signature::sign(common::SECRET, body.as_bytes());
    let mut slow = connect(&app).await;
    let head = format!(
        "POST /webhook HTTP/1.1\r\nHost: t\r\nX-Signature: {signature}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    slow.write_all(&body.as_bytes()[..10]).await.unwrap();
    let during = tokio::spawn({
        let addr = app.addr.clone();
        async move {
            let client = reqwest::Client::new();
            client.get(format!("{addr}/health/live")).send().await.unwrap().status().as_u16()
        }
    });
    let answer = read_until_closed(&mut slow, BODY_READ_TIMEOUT * 2).await.expect("the server kept waiting");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let detail: Value = serde_json::from_str(answer.split_once("\r\n\r\n").unwrap().1).unwrap();
    assert_eq!(detail, json!({"detail": "request body not received in time"}));
    assert_eq!(during.await.unwrap(), 200);
    assert_eq!(app.stored_count().await, 0);
    assert_others_are_served(&app, "after-slow-body").await;
}

/// A correctly signed delivery sent with `extra` headers.
async fn deliver_with_headers(app: &TestApp, id: &str, extra: &[(String, String)]) -> (u16, String) {
    let body = message(id, "+1", "2025-01-15T10:00:00Z", None);
    let signature = webhook_ingest::signature::sign(common::SECRET, body.as_bytes());
    let mut request = format!(
        "POST /webhook HTTP/1.1\r\nHost: t\r\nConnection: close\r\nX-Signature: {signature}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in extra {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(&body);
    raw_http(&app.addr, request.as_bytes()).await
}

#[tokio::test]
async fn too_many_or_too_large_headers_get_431_and_store_nothing() {
    let app = spawn_app().await;
    let many = |n: usize| (0..n).map(|i| (format!("x-extra-{i}"), "1".to_owned())).collect::<Vec<_>>();
    let large = |bytes: usize| vec![("x-large".to_owned(), "a".repeat(bytes))];
    let too_large = json!({"detail": "request headers too large"});

    // Within the limits: stored.
    assert_eq!(deliver_with_headers(&app, "fits", &many(MAX_HEADERS - 8)).await.0, 200);
    // Past our limits: a JSON 431.
    for (id, extra) in [("many", many(MAX_HEADERS + 1)), ("large", large(MAX_HEADER_BYTES))] {
        let (status, body) = deliver_with_headers(&app, id, &extra).await;
        assert_eq!((status, serde_json::from_str::<Value>(&body).ok()), (431, Some(too_large.clone())), "{id}");
    }
    // Past the parser's hard limits: a bare 431 from the parser itself, and the connection is closed.
    for (id, extra) in [("very-many", many(4 * MAX_HEADERS)), ("very-large", large(4 * MAX_HEADER_BYTES))] {
        assert_eq!(deliver_with_headers(&app, id, &extra).await.0, 431, "{id}");
    }
    assert_eq!(app.stored_ids().await, ["fits"]);
    assert_others_are_served(&app, "after-headers").await;
}

#[tokio::test]
async fn an_oversized_body_is_refused_before_it_is_sent() {
    let app = TestApp::start(Setup::new().env("MAX_BODY_BYTES", "1024")).await;
    let mut stream = connect(&app).await;
    // A declared length far past the limit, and not one byte of the body: the answer must not wait for it.
    stream
        .write_all(b"POST /webhook HTTP/1.1\r\nHost: t\r\nX-Signature: 00\r\nContent-Length: 1000000000\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 12];
    tokio::time::timeout(HEADER_READ_TIMEOUT / 2, stream.read_exact(&mut head)).await.expect("no answer").unwrap();
    assert_eq!(&head, b"HTTP/1.1 413");
    assert_eq!(app.stored_count().await, 0);
    assert_others_are_served(&app, "after-oversized").await;
}

/// Sends `head` and then all of `body` before reading anything, as most HTTP libraries do without
/// `Expect: 100-continue`, and returns the whole answer.
async fn send_all_then_read(app: &TestApp, head: String, body: &[u8]) -> String {
    let mut stream = connect(app).await;
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.expect("the server stopped reading before the body was sent");
    read_until_closed(&mut stream, LINGER_TIME * 2).await.expect("the connection was kept open")
}

fn assert_readable_413(answer: &str) {
    assert!(answer.starts_with("HTTP/1.1 413"), "{:?}", &answer[..answer.len().min(200)]);
    assert!(answer.to_ascii_lowercase().contains("\r\nx-request-id: "), "{answer}");
    let detail: Value = serde_json::from_str(answer.split_once("\r\n\r\n").unwrap().1).unwrap();
    assert_eq!(detail, json!({"detail": "payload too large"}));
}

#[tokio::test]
async fn a_client_that_sends_its_whole_oversized_body_first_reads_the_413() {
    let app = spawn_app().await;
    for size in [1 << 20, 8 << 20] {
        let body = vec![b'x'; size];
        let head = format!("POST /webhook HTTP/1.1\r\nHost: t\r\nX-Signature: 00\r\nContent-Length: {size}\r\n\r\n");
        assert_readable_413(&send_all_then_read(&app, head, &body).await);
        // Chunked: refused once the limit is crossed, the rest read all the same.
        let chunked: Vec<u8> = body
            .chunks(64 * 1024)
            .flat_map(|chunk| {
                [format!("{:x}\r\n", chunk.len()).into_bytes(), chunk.to_vec(), b"\r\n".to_vec()].concat()
            })
            .chain(b"0\r\n\r\n".iter().copied())
            .collect();
        let head =
            "POST /webhook HTTP/1.1\r\nHost: t\r\nX-Signature: 00\r\nTransfer-Encoding: chunked\r\n\r\n".to_owned();
        assert_readable_413(&send_all_then_read(&app, head, &chunked).await);
    }
    assert_eq!(app.stored_count().await, 0);
    assert_others_are_served(&app, "after-lingering").await;
}

#[tokio::test]
async fn a_client_that_never_stops_sending_is_cut_off_at_the_bound() {
    let app = spawn_app().await;
    let stream = connect(&app).await;
    let (mut reader, mut writer) = stream.into_split();
    writer
        .write_all(b"POST /webhook HTTP/1.1\r\nHost: t\r\nX-Signature: 00\r\nContent-Length: 100000000000\r\n\r\n")
        .await
        .unwrap();
    let answer = tokio::spawn(async move {
        let mut answer = Vec::new();
        let _ = reader.read_to_end(&mut answer).await;
        String::from_utf8_lossy(&answer).into_owned()
    });
    let started = Instant::now();
    let mut sent = 0;
    let block = vec![b'x'; 64 * 1024];
    let endless = async {
        while writer.write_all(&block).await.is_ok() {
            sent += block.len();
        }
    };
    let cut_off = tokio::time::timeout(LINGER_TIME * 3, endless).await.is_ok();
    assert!(cut_off, "still accepting after {sent} bytes and {:?}", started.elapsed());
    assert!(sent <= 4 * LINGER_BYTES, "cut off only after {sent} bytes");
    assert_readable_413(&answer.await.unwrap());
    assert_others_are_served(&app, "after-endless").await;
}

#[tokio::test]
async fn connections_over_the_cap_get_503_and_a_freed_slot_is_reused() {
    let app = TestApp::start(Setup::new().env("MAX_CONNECTIONS", "3")).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut stream = connect(&app).await;
        // Each holder is served once, so its connection is certainly counted before the next one opens.
        stream.write_all(b"GET /health/live HTTP/1.1\r\nHost: t\r\n\r\n").await.unwrap();
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await.unwrap();
        assert_eq!(&head, b"HTTP/1.1 200");
        held.push(stream);
    }

    let mut over = connect(&app).await;
    let answer = read_until_closed(&mut over, HEADER_READ_TIMEOUT).await.expect("the extra connection was kept");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    let head = answer.to_ascii_lowercase();
    assert!(head.contains("retry-after: 1") && head.contains("x-request-id: "), "{answer}");
    let detail: Value = serde_json::from_str(answer.split_once("\r\n\r\n").unwrap().1).unwrap();
    assert_eq!(detail, json!({"detail": "too many connections"}));
    let logged = app.wait_for_log(|line| line["msg"].as_str().is_some_and(|m| m.contains("connection cap"))).await;
    assert_eq!(logged["level"], "WARN");

    // Closing one holder frees its slot for the next client, once the server has seen it close; until then
    // a new connection is still refused (as a 503, or as a reset if the 503 crosses the request).
    drop(held.pop());
    let deadline = Instant::now() + HEADER_READ_TIMEOUT;
    let body = message("after-cap", "+1", "2025-01-15T10:00:00Z", None);
    let signature = webhook_ingest::signature::sign(common::SECRET, body.as_bytes());
    loop {
        let request = app.client.post(app.url("/webhook")).header("X-Signature", &signature).body(body.clone());
        match tokio::time::timeout(Duration::from_secs(2), request.send()).await {
            Ok(Ok(response)) if response.status() == 200 => break,
            other => assert!(Instant::now() < deadline, "the freed slot was not reused: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(app.stored_count().await, 1);
}

#[tokio::test]
async fn with_a_read_token_the_read_endpoints_need_it() {
    let token = "read-token-for-tests";
    let app = TestApp::start(Setup::new().env("READ_API_TOKEN", token)).await;
    assert_eq!(app.deliver(&message("m1", "+1", "2025-01-15T10:00:00Z", None)).await.0, 200, "webhook stays open");
    let refused = json!({"detail": "missing or invalid bearer token"});
    for path in ["/messages", "/messages?limit=1", "/stats", "/metrics"] {
        for authorization in [None, Some("Bearer wrong"), Some(token), Some("Basic cmVhZDp0b2tlbg=="), Some("Bearer ")]
        {
            let mut request = app.client.get(app.url(path));
            if let Some(value) = authorization {
                request = request.header("Authorization", value);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status().as_u16(), 401, "{path} {authorization:?}");
            assert_eq!(response.headers()["www-authenticate"], "Bearer");
            assert!(response.headers().contains_key("x-request-id"));
            assert_eq!(response.json::<Value>().await.unwrap(), refused, "{path}");
        }
        let response =
            app.client.get(app.url(path)).header("Authorization", format!("Bearer {token}")).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200, "{path}");
    }
    let listing: Value =
        app.client.get(app.url("/messages")).bearer_auth(token).send().await.unwrap().json().await.unwrap();
    assert_eq!(listing["total"], 1);
    for open in ["/health/live", "/health/ready", "/openapi.yaml"] {
        assert_eq!(app.get_text(open).await.0, 200, "{open}");
    }
    // Unknown paths and wrong methods answer as before, without revealing what needs a token.
    assert_eq!(app.get("/nope").await.0, 404);
    assert_eq!(app.client.post(app.url("/stats")).send().await.unwrap().status().as_u16(), 405);
    // Refusals are logged like any request, and the token never appears in the logs.
    let refusals = app.wait_for_logs(20, |line| line["msg"] == "request" && line["status"] == 401).await;
    assert!(refusals.iter().all(|line| line["level"] == "WARN"), "{refusals:?}");
    assert!(!app.logs().iter().any(|line| line.to_string().contains(token)));
}

#[tokio::test]
async fn without_a_read_token_reads_are_open() {
    let app = spawn_app().await;
    for path in ["/messages", "/stats", "/metrics"] {
        assert_eq!(app.get_text(path).await.0, 200, "{path}");
    }
}

#[tokio::test]
async fn the_service_serves_its_openapi_document() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/openapi.yaml")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["content-type"], "application/yaml");
    let text = response.text().await.unwrap();
    assert_eq!(text, include_str!("../openapi.yaml"));
    for path in ["/webhook:", "/messages:", "/stats:", "/health/live:", "/health/ready:", "/metrics:", "/openapi.yaml:"]
    {
        assert!(text.contains(path), "the document does not describe {path}");
    }
}

/// A term of `chars` characters from a block of 20,000 CJK ideographs, different for every `seed`: as long as
/// `q` may be, and with as many trigrams never seen before.
fn hostile_term(seed: u64, chars: usize) -> String {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..chars)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from_u32(0x4E00 + (x % 20_000) as u32).unwrap()
        })
        .collect()
}

/// Percent-encodes every byte of `s`.
fn encoded(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

/// The latency at `quantile` of `samples`.
fn quantile(samples: &mut [Duration], quantile: f64) -> Duration {
    samples.sort();
    samples[((samples.len() - 1) as f64 * quantile) as usize]
}

#[tokio::test]
async fn a_term_longer_than_256_characters_gets_422() {
    let app = spawn_app().await;
    let (status, answer) = app.get(&format!("/messages?q={}", encoded(&hostile_term(1, 257)))).await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["detail"][0]["loc"], json!(["query", "q"]));
    assert_eq!(answer["detail"][0]["type"], "string_too_long");
    assert_eq!(app.get(&format!("/messages?q={}", encoded(&hostile_term(1, 256)))).await.0, 200);
}

/// Four clients search, for ten seconds each time, terms made of trigrams never asked before. Terms of every
/// length up to the bound of `q` (as many trigrams not seen before are looked up at once): what the service
/// learns of trigrams and keeps prepared stays within its bounds, so memory stays flat. Terms as long as
/// `q` may be (the slowest searches): reads run off the workers that answer everything else, so the
/// liveness probe is never held behind them (it is answered faster than a search, which it would not be if
/// it waited for one).
#[tokio::test]
async fn hostile_searches_grow_no_memory_and_hold_up_no_other_request() {
    let app = spawn_app().await;
    for hundred in 0..10 {
        let deliveries = (hundred * 100..hundred * 100 + 100).map(|n| {
            let text = hostile_term(1_000_000 + n, 40);
            let app = &app;
            async move { app.deliver(&message(&format!("m{n}"), "+1", "2025-01-15T10:00:00Z", Some(&text))).await.0 }
        });
        assert!(futures::future::join_all(deliveries).await.iter().all(|status| *status == 200));
    }
    let every_length = |seed: u64| hostile_term(seed, 3 + (seed % 254) as usize);
    for seed in 0..200 {
        search(&app, &every_length(seed)).await;
    }
    let before = app.anonymous_rss_kib();
    let (searches, _) = attack(&app, every_length).await;
    let grown = app.anonymous_rss_kib().saturating_sub(before);
    eprintln!("{} searches of every length: RSS {before} KiB, grown by {grown} KiB", searches.len());
    assert!(grown < 8 * 1024, "RSS grew by {grown} KiB under hostile searches");

    let (mut searches, mut live) = attack(&app, |seed| hostile_term(seed, 256)).await;
    let (search_p50, live_p99) = (quantile(&mut searches, 0.5), quantile(&mut live, 0.99));
    eprintln!("{} searches of 256 characters, p50 {search_p50:?}; liveness p99 {live_p99:?}", searches.len());
    assert!(live_p99 < search_p50, "liveness p99 {live_p99:?} against searches' p50 {search_p50:?}");
}

/// Searches `term` and returns how long it took.
async fn search(app: &TestApp, term: &str) -> Duration {
    let started = Instant::now();
    let (status, answer) = app.get(&format!("/messages?q={}", encoded(term))).await;
    assert_eq!(status, 200, "{answer}");
    started.elapsed()
}

/// Four clients search a new `term(seed)` at a time for ten seconds while another asks `/health/live` every
/// 20 ms; the latencies of both.
async fn attack(app: &TestApp, term: impl Fn(u64) -> String + Copy) -> (Vec<Duration>, Vec<Duration>) {
    static SEEDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1_000);
    let until = Instant::now() + Duration::from_secs(10);
    let attackers = (0..4).map(|_| async move {
        let mut latencies = Vec::new();
        while Instant::now() < until {
            let seed = SEEDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            latencies.push(search(app, &term(seed)).await);
        }
        latencies
    });
    let prober = async {
        let mut latencies = Vec::new();
        while Instant::now() < until {
            let started = Instant::now();
            assert_eq!(app.get("/health/live").await.0, 200);
            latencies.push(started.elapsed());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        latencies
    };
    let (searches, live) = tokio::join!(futures::future::join_all(attackers), prober);
    (searches.into_iter().flatten().collect(), live)
}
