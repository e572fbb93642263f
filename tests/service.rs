//! The service around the endpoints: health, metrics, logs, request ids, unknown routes, configuration
//! errors, shutdown, adopting an older database file, and database faults.

mod common;

use std::time::Duration;

use common::{message, run_binary, spawn_app, Setup, TempDb, TestApp, SECRET};
use serde_json::{json, Value};

#[tokio::test]
async fn health_probes() {
    let app = spawn_app().await;
    assert_eq!(app.get("/health/live").await, (200, json!({"status": "ok"})));
    assert_eq!(app.get("/health/ready").await, (200, json!({"status": "ready"})));
    let response = app.client.post(app.url("/health/live")).send().await.unwrap();
    assert_eq!((response.status().as_u16(), response.headers()["allow"].to_str().unwrap()), (405, "GET, HEAD"));
}

#[tokio::test]
async fn head_answers_like_get_without_a_body() {
    let app = spawn_app().await;
    app.deliver(&message("m1", "+1", "2025-01-15T10:00:00Z", Some("hi"))).await;
    let paths = [
        "/messages",
        "/messages?limit=0",
        "/messages/m1",
        "/messages/unknown",
        "/statuses",
        "/statuses?offset=-1",
        "/stats",
        "/health/live",
        "/health/ready",
        "/openapi.yaml",
        "/nope",
    ];
    for path in paths {
        let get = app.client.get(app.url(path)).send().await.unwrap();
        let head = app.client.head(app.url(path)).send().await.unwrap();
        assert_eq!(head.status(), get.status(), "{path}");
        assert_eq!(head.headers()["content-type"], get.headers()["content-type"], "{path}");
        assert!(head.headers().contains_key("x-request-id"), "{path}");
        let length: usize = head.headers()["content-length"].to_str().unwrap().parse().unwrap();
        assert_eq!(length, get.bytes().await.unwrap().len(), "{path}");
        assert!(head.bytes().await.unwrap().is_empty(), "{path}");
    }
    // HEAD reads data like GET, so the read token guards it alike.
    let guarded = TestApp::start(Setup::new().same_store_as(&app).env("READ_API_TOKEN", "t0ken")).await;
    for path in ["/messages", "/messages/m1", "/statuses"] {
        assert_eq!(guarded.client.head(guarded.url(path)).send().await.unwrap().status(), 401, "{path}");
        assert_eq!(guarded.client.get(guarded.url(path)).send().await.unwrap().status(), 401, "{path}");
        let get = guarded.client.get(guarded.url(path)).bearer_auth("t0ken").send().await.unwrap();
        assert_eq!(get.status(), 200, "{path}");
    }
    let head = guarded.client.head(guarded.url("/messages")).bearer_auth("t0ken").send().await.unwrap();
    assert_eq!(head.status(), 200);
    let (_, metrics) = app.get_text("/metrics").await;
    assert!(metrics.contains(r#"http_requests_total{method="HEAD",path="/messages",status="200"}"#), "{metrics}");
}

/// The inbox page and its assets, from the binary: their types, a policy that allows this host's own script,
/// style and API only, caching by name for the assets and revalidation for the page, and HEAD.
#[tokio::test]
async fn the_inbox_page_and_its_assets_are_served_with_their_types_and_a_strict_policy() {
    let app = spawn_app().await;
    let page = app.client.get(app.url("/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["cache-control"], "no-cache");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let policy = headers["content-security-policy"].to_str().unwrap();
    assert!(policy.starts_with("default-src 'none'; script-src 'self'; style-src 'self'"), "{policy}");
    assert!(!policy.contains("unsafe"), "{policy}");
    let html = page.text().await.unwrap();
    let asset = |name: &str| {
        let start = html.find(&format!("ui/inbox.{name}?v=")).unwrap_or_else(|| panic!("{name} in {html}"));
        html[start..].split('"').next().unwrap().to_owned()
    };
    for (path, content_type) in
        [(asset("js"), "text/javascript; charset=utf-8"), (asset("css"), "text/css; charset=utf-8")]
    {
        let response = app.client.get(app.url(&format!("/{path}"))).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.headers()["content-type"], content_type, "{path}");
        assert_eq!(response.headers()["cache-control"], "public, max-age=31536000, immutable", "{path}");
        assert!(response.text().await.unwrap().len() > 1000, "{path}");
    }
    let head = app.client.head(app.url("/")).send().await.unwrap();
    assert_eq!(head.headers()["content-length"].to_str().unwrap(), html.len().to_string());
    assert_eq!(app.client.post(app.url("/")).send().await.unwrap().status(), 405);
    // A read token guards the data the page asks for, not the page.
    let guarded = TestApp::start(Setup::new().same_store_as(&app).env("READ_API_TOKEN", "t0ken")).await;
    assert_eq!(guarded.client.get(guarded.url("/")).send().await.unwrap().status(), 200);
    let (_, metrics) = app.get_text("/metrics").await;
    assert!(metrics.contains(r#"http_requests_total{method="GET",path="/",status="200"} 1"#), "{metrics}");
}

#[tokio::test]
async fn unknown_paths_are_json_404() {
    let app = spawn_app().await;
    for path in ["/ui/", "/nope", "/webhook/", "/messages/", "/health", "/../etc/passwd", "/%00"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(response.headers()["content-type"], "application/json");
        assert_eq!(response.json::<Value>().await.unwrap(), json!({"detail": "not found"}), "{path}");
    }
    let (_, metrics) = app.get_text("/metrics").await;
    assert!(metrics.contains(r#"http_requests_total{method="GET",path="unmatched",status="404"} 7"#), "{metrics}");
    assert!(!metrics.contains("/nope"), "raw paths must not become labels");
}

#[tokio::test]
async fn metrics_use_stable_names_and_bounded_labels() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.headers()["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    let fresh = response.text().await.unwrap();
    for result in ["created", "duplicate", "invalid_signature", "validation_error"] {
        assert!(fresh.contains(&format!("webhook_requests_total{{result=\"{result}\"}} 0")), "{result}: {fresh}");
    }

    let body = message("m1", "+1", "2025-01-15T10:00:00Z", Some("hi"));
    app.deliver(&body).await;
    app.deliver(&body).await;
    app.post_webhook(body.as_bytes(), Some("00")).await;
    app.get("/messages").await;
    app.client.request(reqwest::Method::from_bytes(b"BREW").unwrap(), app.url("/stats")).send().await.unwrap();
    let (_, metrics) = app.get_text("/metrics").await;
    for line in [
        r#"webhook_requests_total{result="created"} 1"#,
        r#"webhook_requests_total{result="duplicate"} 1"#,
        r#"webhook_requests_total{result="invalid_signature"} 1"#,
        r#"http_requests_total{method="POST",path="/webhook",status="200"} 2"#,
        r#"http_requests_total{method="POST",path="/webhook",status="401"} 1"#,
        r#"http_requests_total{method="GET",path="/messages",status="200"} 1"#,
        r#"http_requests_total{method="other",path="/stats",status="405"} 1"#,
        r#"request_latency_ms_count{path="/webhook"} 3"#,
    ] {
        assert!(metrics.lines().any(|l| l == line), "missing {line}\n{metrics}");
    }
    // The first ten lines (what `curl … | head` shows) hold samples of both request counters.
    let head: Vec<&str> = metrics.lines().take(10).collect();
    for family in ["webhook_requests_total{", "http_requests_total{"] {
        assert!(head.iter().any(|l| l.starts_with(family)), "{family} not in the first lines:\n{}", head.join("\n"));
    }
    // Stable from one scrape to the next.
    let again = app.get_text("/metrics").await.1;
    let samples = |text: &str| {
        text.lines().filter(|l| l.starts_with("webhook_requests_total")).map(str::to_owned).collect::<Vec<_>>()
    };
    assert_eq!(samples(&metrics), samples(&again));
    for le in ["1", "5", "10", "25", "50", "100", "250", "500", "1000", "+Inf"] {
        assert!(metrics.contains(&format!("request_latency_ms_bucket{{path=\"/webhook\",le=\"{le}\"}}")), "le={le}");
    }
}

#[tokio::test]
async fn every_stdout_line_is_json_and_each_request_logs_one_line() {
    let app = spawn_app().await;
    let body = message("log-1", "+1", "2025-01-15T10:00:00Z", None);
    let mut ids = Vec::new();
    for signature in [Some(webhook_ingest::signature::sign(SECRET, body.as_bytes())), Some("bad".into()), None] {
        let mut request = app.client.post(app.url("/webhook")).body(body.clone());
        if let Some(signature) = signature {
            request = request.header("X-Signature", signature);
        }
        let response = request.send().await.unwrap();
        ids.push(response.headers()["x-request-id"].to_str().unwrap().to_owned());
    }
    let response = app.client.get(app.url("/messages?limit=5")).send().await.unwrap();
    ids.push(response.headers()["x-request-id"].to_str().unwrap().to_owned());
    ids.push(
        app.client.get(app.url("/missing")).send().await.unwrap().headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned(),
    );
    // An incoming id is not trusted: every response carries a fresh one.
    let echoed = app.client.get(app.url("/health/live")).header("X-Request-ID", "client-id").send().await.unwrap();
    ids.push(echoed.headers()["x-request-id"].to_str().unwrap().to_owned());

    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "{ids:?}");
    assert!(ids.iter().all(|id| uuid::Uuid::parse_str(id).is_ok()), "{ids:?}");

    let created = app.request_log(&ids[0]).await;
    assert_eq!(created["level"], "INFO");
    assert_eq!(
        (created["method"].as_str(), created["path"].as_str(), created["status"].as_u64()),
        (Some("POST"), Some("/webhook"), Some(200))
    );
    assert_eq!(
        (created["result"].as_str(), created["dup"].as_bool(), created["message_id"].as_str()),
        (Some("created"), Some(false), Some("log-1"))
    );
    assert!(created["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0));
    let ts = created["ts"].as_str().unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(ts).is_ok() && ts.ends_with('Z') && ts.len() == 24, "{ts}");

    for id in &ids[1..3] {
        let rejected = app.request_log(id).await;
        assert_eq!(
            (rejected["level"].as_str(), rejected["result"].as_str(), rejected["status"].as_u64()),
            (Some("ERROR"), Some("invalid_signature"), Some(401))
        );
        assert_eq!(rejected["dup"], false);
    }
    let listing = app.request_log(&ids[3]).await;
    assert_eq!((listing["path"].as_str(), listing["status"].as_u64()), (Some("/messages"), Some(200)));
    assert!(listing.get("result").is_none() && listing.get("dup").is_none());
    assert_eq!(app.request_log(&ids[4]).await["status"], 404);

    let duplicate = app.deliver(&body).await;
    assert_eq!(duplicate.0, 200);
    let dup = app.wait_for_log(|l| l["result"] == "duplicate").await;
    assert_eq!((dup["dup"].as_bool(), dup["message_id"].as_str()), (Some(true), Some("log-1")));

    let logs = app.logs();
    let requests = logs.iter().filter(|l| l["msg"] == "request").count();
    assert_eq!(requests, ids.len() + 1);
    for line in &logs {
        for key in ["ts", "level", "msg"] {
            assert!(line.get(key).is_some(), "{key} missing: {line}");
        }
    }
    let everything = logs.iter().map(Value::to_string).collect::<String>();
    assert!(!everything.contains(SECRET), "the secret leaked into the log");
    assert!(app.stderr().is_empty(), "{:?}", app.stderr());
}

#[tokio::test]
async fn log_level_filters_lines() {
    let app = TestApp::start(Setup::new().env("LOG_LEVEL", "ERROR")).await;
    app.get("/health/live").await;
    app.post_webhook(b"{}", Some("00")).await;
    let _ = app.wait_for_log(|l| l["result"] == "invalid_signature").await;
    assert!(app.logs().iter().all(|l| l["level"] == "ERROR"), "{:?}", app.logs());
}

#[tokio::test]
async fn malformed_configuration_stops_startup_naming_the_variable() {
    for (var, value) in [
        ("MAX_BODY_BYTES", "abc"),
        ("LISTEN_ADDR", "nowhere"),
        ("LOG_LEVEL", "chatty"),
        ("DATABASE_URL", "postgres://db/x"),
    ] {
        let env = vec![("WEBHOOK_SECRET".to_owned(), "s3cr3t-value".to_owned()), (var.to_owned(), value.to_owned())];
        let (mut child, stdout, stderr) = run_binary(&env);
        let status = child.wait().unwrap();
        assert!(!status.success(), "{var}");
        // The reader thread collects what the process printed before it exited.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while stdout.lock().unwrap().is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        let lines = stdout.lock().unwrap().clone();
        let line: Value = serde_json::from_str(lines.first().unwrap_or_else(|| panic!("{var}: no output"))).unwrap();
        assert_eq!((line["level"].as_str(), line["variable"].as_str()), (Some("ERROR"), Some(var)), "{line}");
        assert!(line["error"].as_str().unwrap().contains(var));
        assert!(!lines.concat().contains("s3cr3t-value"));
        assert!(stderr.lock().unwrap().is_empty());
    }
}

#[tokio::test]
async fn sigterm_and_sigint_stop_the_listener_cleanly() {
    for signal in ["TERM", "INT"] {
        let app = spawn_app().await;
        assert_eq!(app.deliver(&message("before", "+1", "2025-01-15T10:00:00Z", None)).await.0, 200);
        app.signal(signal);
        let status = app.wait_exit(Duration::from_secs(10)).await;
        assert_eq!(status.code(), Some(0), "SIG{signal}");
        app.wait_for_log(|l| l["msg"] == "stopped").await;
        assert!(app.client.get(app.url("/health/live")).send().await.is_err(), "still accepting after SIG{signal}");
        assert_eq!(app.stored_count().await, 1);
    }
}

#[tokio::test]
async fn an_acknowledged_message_survives_sigkill() {
    let app = spawn_app().await;
    assert_eq!(app.deliver(&message("durable", "+1", "2025-01-15T10:00:00Z", Some("kept"))).await.0, 200);
    app.signal("KILL");
    app.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(app.stored_rows().await[0].text.as_deref(), Some("kept"));
    let again = TestApp::start(Setup::new().same_store_as(&app)).await;
    let (_, listing) = again.get("/messages").await;
    assert_eq!(listing["total"], 1);
}

#[tokio::test]
async fn a_database_from_an_earlier_implementation_is_migrated_in_place() {
    let db = TempDb::at("legacy.db");
    let path = db.path.clone();
    {
        let db = libsql::Builder::new_local(&path).build().await.unwrap();
        let conn = db.connect().unwrap();
        conn.execute(
            "CREATE TABLE messages (message_id TEXT PRIMARY KEY, from_msisdn TEXT NOT NULL, to_msisdn TEXT NOT NULL, \
             ts TEXT NOT NULL, text TEXT, created_at TEXT NOT NULL)",
            (),
        )
        .await
        .unwrap();
        for (id, ts, text) in [
            ("old-2", "2025-01-15T10:00:00.5Z", Some("Second")),
            ("old-1", "2025-01-15T10:00:00Z", None),
            ("old-3", "2025-01-15T12:00:01+02:00", Some("third")),
        ] {
            conn.execute(
                "INSERT INTO messages VALUES (?, '+919876543210', '+14155550100', ?, ?, '2025-01-15T10:00:00Z')",
                (id, ts, text),
            )
            .await
            .unwrap();
        }
    }
    let app = TestApp::start(Setup::new().db(&path)).await;
    let (_, listing) = app.get("/messages").await;
    let ids: Vec<&str> =
        listing["data"].as_array().unwrap().iter().map(|m| m["message_id"].as_str().unwrap()).collect();
    // old-3 is 10:00:01Z once its offset is applied.
    assert_eq!(ids, ["old-1", "old-2", "old-3"]);
    assert_eq!(listing["data"][2]["ts"], "2025-01-15T12:00:01+02:00", "stored text is returned as it is");
    assert_eq!(app.get("/messages?q=SECOND").await.1["total"], 1);
    // Old ids still deduplicate; new ones are added.
    assert_eq!(app.deliver(&message("old-1", "+1", "2026-01-01T00:00:00Z", Some("replaced?"))).await.0, 200);
    assert_eq!(app.deliver(&message("new-1", "+1", "2026-01-01T00:00:00Z", None)).await.0, 200);
    assert_eq!(app.stored_count().await, 4);
    assert_eq!(app.get("/stats").await.1["total_messages"], 4);
    assert_eq!(app.get("/health/ready").await.0, 200);
    drop(app);

    // Opening again finds the schema current and changes nothing.
    let again = TestApp::start(Setup::new().db(&path)).await;
    assert_eq!(again.get("/messages").await.1["total"], 4);
}

/// A libSQL server's database (or a replica's copy) opened as a file may hold rows in its inbox, where the
/// server's deliveries land first; a file's reads leave the inbox out, so it takes them in when it opens.
#[tokio::test]
async fn a_file_holding_rows_in_its_inbox_takes_them_in_when_it_opens() {
    let db = TempDb::new();
    let path = db.path.clone();
    drop(TestApp::start(Setup::new().db(&path)).await);
    {
        let conn = libsql::Builder::new_local(&path).build().await.unwrap().connect().unwrap();
        for (id, text) in [("arrived-1", "Alpha\0beta"), ("arrived-2", "gamma")] {
            conn.execute(
                "INSERT INTO inbox (message_id, from_msisdn, to_msisdn, ts, text, created_at, ts_key, text_folded) \
                 VALUES (?1, '+1', '+2', '2025-01-15T10:00:00Z', ?2, '', X'0EDF197E2000000000', lower(?2))",
                (id, text),
            )
            .await
            .unwrap();
        }
    }
    let app = TestApp::start(Setup::new().db(&path)).await;
    assert_eq!(app.get("/messages").await.1["total"], 2);
    assert_eq!(app.get("/stats").await.1["total_messages"], 2);
    let found = || async { app.get("/messages?q=beta").await.1["total"] == 1 };
    common::eventually("not found by its text", Duration::from_secs(5), Duration::from_millis(20), found).await;
    let conn = app.connect_store().await;
    let mut left = conn.query("SELECT count(*) FROM inbox", ()).await.unwrap();
    assert_eq!(left.next().await.unwrap().unwrap().get::<i64>(0).unwrap(), 0);
    assert_eq!(app.deliver(&message("arrived-1", "+1", "2025-01-15T10:00:00Z", None)).await.0, 200);
    assert_eq!(app.stored_count().await, 2, "a redelivery is a duplicate");
}

#[tokio::test]
async fn an_unusable_database_path_answers_503_and_recovers_on_its_own() {
    let dir = tempfile::tempdir().unwrap();
    // A regular file where the directory should be: not even root can create the database there.
    let blocker = dir.path().join("data");
    std::fs::write(&blocker, "not a directory").unwrap();
    let app = TestApp::start(Setup::new().db(&blocker.join("app.db"))).await;

    let body = message("m1", "+1", "2025-01-15T10:00:00Z", Some("hi"));
    assert_eq!(app.deliver(&body).await, (503, json!({"detail": "internal error"})));
    assert_eq!(app.get("/messages").await, (503, json!({"detail": "internal error"})));
    assert_eq!(app.get("/stats").await.0, 503);
    // The reason says what kind of failure, never the path or the error's text (the log has those).
    common::assert_not_ready(&app, &["database unavailable"]).await;
    assert_eq!(app.get("/health/live").await.0, 200);
    // Bad input is still judged before storage is needed.
    assert_eq!(app.post_webhook(body.as_bytes(), None).await.0, 401);
    let failed = app.wait_for_log(|l| l["msg"] == "request" && l["status"] == 503 && l["path"] == "/webhook").await;
    assert_eq!(failed["level"], "ERROR");
    assert!(failed["error"].as_str().is_some_and(|e| !e.is_empty()), "{failed}");

    // Clear the fault; within the retry interval the service opens the database by itself.
    std::fs::remove_file(&blocker).unwrap();
    std::fs::create_dir(&blocker).unwrap();
    app.wait_ready(Duration::from_secs(10)).await;
    assert_eq!(app.deliver(&body).await.0, 200);
    assert_eq!(app.stored_count().await, 1);
}

#[tokio::test]
async fn the_database_directory_is_created() {
    let db = TempDb::at("nested/deeper/app.db");
    let app = TestApp::start(Setup::new().db(&db.path)).await;
    assert_eq!(app.get("/health/ready").await.0, 200);
    assert!(db.path.exists());
}

#[tokio::test]
async fn emf_lines_carry_the_same_metrics_when_enabled() {
    let app = TestApp::start(Setup::new().env("METRICS_EMF", "true")).await;
    let body = message("emf-1", "+1", "2025-01-15T10:00:00Z", None);
    app.deliver(&body).await;
    app.deliver(&body).await;
    app.get("/nowhere").await;
    let lines = app.wait_for_logs(3, |l| l.get("_aws").is_some()).await;
    assert_eq!(lines.len(), 3, "one EMF line per request");
    for line in &lines {
        let aws = &line["_aws"];
        assert!(aws["Timestamp"].as_i64().is_some_and(|t| t > 1_700_000_000_000), "{line}");
        for directive in aws["CloudWatchMetrics"].as_array().unwrap() {
            assert_eq!(directive["Namespace"], "webhook-ingest");
            // Every dimension and metric a directive names is a member of the line, as EMF requires.
            for dimension in directive["Dimensions"][0].as_array().unwrap() {
                assert!(line[dimension.as_str().unwrap()].is_string(), "{dimension} in {line}");
            }
            for metric in directive["Metrics"].as_array().unwrap() {
                assert!(line[metric["Name"].as_str().unwrap()].is_number(), "{metric} in {line}");
            }
        }
        assert_eq!(line["http_requests_total"], 1);
        assert!(line["request_latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0));
    }
    let summary: Vec<(String, String, Option<String>)> = lines
        .iter()
        .map(|l| {
            (
                l["path"].as_str().unwrap().into(),
                l["status"].as_str().unwrap().into(),
                l["result"].as_str().map(Into::into),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("/webhook".into(), "200".into(), Some("created".into())),
            ("/webhook".into(), "200".into(), Some("duplicate".into())),
            ("unmatched".into(), "404".into(), None),
        ]
    );
}

#[tokio::test]
async fn emf_is_off_locally_by_default() {
    let app = spawn_app().await;
    app.get("/health/live").await;
    app.get("/health/live").await;
    // An EMF line would follow its request's line, so by the second request's line it would have arrived.
    app.wait_for_logs(2, |l| l["msg"] == "request").await;
    assert!(app.logs().iter().all(|l| l.get("_aws").is_none()));
}

#[tokio::test]
async fn the_healthcheck_subcommand_reports_through_its_exit_code() {
    let app = spawn_app().await;
    let port = app.addr.rsplit(':').next().unwrap().to_owned();
    let check = |addr: String| {
        std::process::Command::new(env!("CARGO_BIN_EXE_webhook-ingest"))
            .arg("healthcheck")
            .env_clear()
            .env("LISTEN_ADDR", addr)
            .output()
            .unwrap()
    };
    // As in the container: the listener binds 0.0.0.0, the check goes over loopback.
    let up = check(format!("0.0.0.0:{port}"));
    assert!(up.status.success() && up.stdout.is_empty(), "{up:?}");
    drop(app);
    assert!(!check(format!("127.0.0.1:{port}")).status.success());
}

#[tokio::test]
async fn the_container_configuration_binds_all_interfaces_and_uses_data_app_db() {
    // What local/Dockerfile sets; /data is replaced by a temporary directory.
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(
        Setup::new()
            .env("LISTEN_ADDR", "0.0.0.0:0")
            .env("DATABASE_URL", &format!("sqlite:///{}/data/app.db", dir.path().display())),
    )
    .await;
    assert_eq!(app.deliver(&message("c1", "+1", "2025-01-15T10:00:00Z", None)).await.0, 200);
    assert!(dir.path().join("data/app.db").exists());
    app.signal("TERM");
    assert_eq!(app.wait_exit(Duration::from_secs(10)).await.code(), Some(0));
}
