//! Test harness: runs the real `webhook-ingest` binary (built with `--features local`) on an ephemeral
//! port with a SQLite file in a temporary directory, and talks to it over HTTP like a client would.
//!
//! With `LIBSQL_TEST_URL` set (and the `remote` feature), apps store on that libSQL server instead, except
//! where a test asks for a local file ([`Setup::db`], [`Setup::local_file`]): directly, or with
//! `LIBSQL_TEST_MODE=replica` through an embedded replica in a temporary file. The server's database is
//! emptied before each such app starts, and apps of one test binary take turns on it.
#![allow(dead_code)] // each test file uses a different part of the harness

mod listening;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;
use webhook_ingest::signature::sign;

pub const SECRET: &str = "test-secret";
/// The WhatsApp app secret and handshake verify token every app under test has.
pub const WHATSAPP_SECRET: &str = "test-whatsapp-secret";
pub const VERIFY_TOKEN: &str = "test-verify-token";

/// A database path in a fresh temporary directory, which goes when this is dropped.
pub struct TempDb {
    pub path: PathBuf,
    dir: TempDir,
}

impl TempDb {
    /// `app.db` in a new directory.
    pub fn new() -> TempDb {
        TempDb::at("app.db")
    }

    /// `relative` (which may name subdirectories that do not exist yet) in a new directory.
    pub fn at(relative: &str) -> TempDb {
        let dir = tempfile::tempdir().unwrap();
        TempDb { path: dir.path().join(relative), dir }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Keeps the directory after this is dropped (for an app that outlives the test's scope).
    pub fn keep(self) -> PathBuf {
        let _ = self.dir.keep();
        self.path
    }
}

/// Polls `condition` every `interval` until it holds; fails with `what` after `timeout`.
pub async fn eventually<F, Fut>(what: &str, timeout: Duration, interval: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !condition().await {
        assert!(Instant::now() < deadline, "{what} (waited {timeout:?})");
        tokio::time::sleep(interval).await;
    }
}

pub struct TestApp {
    pub addr: String,
    pub client: reqwest::Client,
    pub target: Target,
    child: Mutex<Child>,
    stdout: Lines,
    stderr: Lines,
    _db: Option<TempDb>,
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

/// Where an app under test stores messages.
#[derive(Clone, Debug)]
pub enum Target {
    File(PathBuf),
    Server(String),
    /// A replica (its file made per app) of this server.
    Replica(String),
}

impl Target {
    /// The server behind it, if any.
    fn server(&self) -> Option<&str> {
        match self {
            Target::File(_) => None,
            Target::Server(url) | Target::Replica(url) => Some(url),
        }
    }
}

/// The libSQL server the suite runs against, if `LIBSQL_TEST_URL` names one.
pub fn test_server() -> Option<String> {
    std::env::var("LIBSQL_TEST_URL").ok().filter(|url| !url.is_empty())
}

/// The libSQL server of a test that needs one: such a test is `#[ignore]`d, so that a run without a server
/// reports it as not run, and `make remote-test` runs it with `--include-ignored`; run so without a server,
/// it fails rather than pass without testing anything.
pub fn required_server() -> String {
    test_server().expect("this test needs a libSQL server: set LIBSQL_TEST_URL (make server-test SQLD=path/to/sqld)")
}

/// Apps on the test server take turns, since each empties its database.
static SERVER_TURN: std::sync::LazyLock<Arc<tokio::sync::Mutex<()>>> = std::sync::LazyLock::new(Default::default);

/// A configuration for [`TestApp::start`]; `spawn_app()` covers the common case.
pub struct Setup {
    pub env: Vec<(String, String)>,
    pub target: Option<Target>,
    /// Start on the server as it is: another app of the same test is using it.
    pub shared: bool,
    /// The app reaches the test server through this URL instead (a proxy in front of it).
    pub server_via: Option<String>,
}

impl Setup {
    pub fn new() -> Setup {
        let env = [
            ("WEBHOOK_SECRET", SECRET),
            ("WHATSAPP_APP_SECRET", WHATSAPP_SECRET),
            ("WHATSAPP_VERIFY_TOKEN", VERIFY_TOKEN),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .to_vec();
        Setup { env, target: None, shared: false, server_via: None }
    }

    /// A fresh local file even when the suite runs against a server: for what only a file has.
    pub fn local_file(mut self) -> Setup {
        self.target = Some(Target::File(TempDb::new().keep()));
        self
    }

    /// Reaches the test server, directly or from a replica, through `url`.
    pub fn server_via(mut self, url: &str) -> Setup {
        self.server_via = Some(url.to_owned());
        self
    }

    /// The same store as `app`, as it is now.
    pub fn same_store_as(mut self, app: &TestApp) -> Setup {
        self.target = Some(app.target.clone());
        self.shared = true;
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Setup {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn without(mut self, key: &str) -> Setup {
        self.env.retain(|(k, _)| k != key);
        self
    }

    /// Stores on `target` whatever the suite's mode (a test of what only direct mode, or only a replica, does).
    pub fn on(mut self, target: Target) -> Setup {
        self.target = Some(target);
        self
    }

    /// Uses this database file instead of a fresh one.
    pub fn db(mut self, path: &Path) -> Setup {
        self.target = Some(Target::File(path.to_owned()));
        self
    }
}

pub async fn spawn_app() -> TestApp {
    TestApp::start(Setup::new()).await
}

/// Lines a process printed, collected as they arrive.
pub type Lines = Arc<Mutex<Vec<String>>>;

/// The binary under test: the one cargo built for these tests, or `WEBHOOK_INGEST_BIN` (`make crash` points
/// it at the release build).
pub fn binary() -> PathBuf {
    // Build-time, not run-time: a suite against a server needs a binary that can reach one.
    if test_server().is_some() && !cfg!(feature = "remote") {
        panic!("LIBSQL_TEST_URL is set: build the tests with the `remote` feature (on by default)");
    }
    std::env::var_os("WEBHOOK_INGEST_BIN").map_or_else(|| env!("CARGO_BIN_EXE_webhook-ingest").into(), PathBuf::from)
}

/// Starts the binary with exactly `env` (nothing inherited but PATH) and returns it with its stdout and stderr.
pub fn run_binary(env: &[(String, String)]) -> (Child, Lines, Lines) {
    let mut command = Command::new(binary());
    command.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start the binary");
    let stdout = collect_lines(child.stdout.take().unwrap());
    let stderr = collect_lines(child.stderr.take().unwrap());
    (child, stdout, stderr)
}

fn collect_lines(stream: impl std::io::Read + Send + 'static) -> Lines {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            sink.lock().unwrap().push(line);
        }
    });
    lines
}

impl TestApp {
    pub async fn start(setup: Setup) -> TestApp {
        let (db, target) = match setup.target {
            Some(target) => (None, target),
            None => match test_server() {
                Some(url) if std::env::var("LIBSQL_TEST_MODE").as_deref() == Ok("replica") => {
                    (None, Target::Replica(url))
                }
                Some(url) => (None, Target::Server(url)),
                None => {
                    let db = TempDb::new();
                    let path = db.path.clone();
                    (Some(db), Target::File(path))
                }
            },
        };
        let turn = match target.server() {
            Some(url) if !setup.shared => {
                let turn = Arc::clone(&SERVER_TURN).lock_owned().await;
                empty_server_database(url).await;
                Some(turn)
            }
            _ => None,
        };
        let mut env = vec![("LISTEN_ADDR".to_owned(), "127.0.0.1:0".to_owned())];
        let mut db = db;
        match &target {
            Target::File(path) => env.push(("DATABASE_URL".to_owned(), format!("sqlite:///{}", path.display()))),
            Target::Server(url) => {
                env.push(("DATABASE_URL".to_owned(), setup.server_via.clone().unwrap_or_else(|| url.clone())))
            }
            Target::Replica(url) => {
                let replica = TempDb::at("replica.db");
                env.push(("DATABASE_URL".to_owned(), replica.path.display().to_string()));
                env.push(("LIBSQL_SYNC_URL".to_owned(), setup.server_via.clone().unwrap_or_else(|| url.clone())));
                db = Some(replica);
            }
        }
        env.extend(setup.env);
        let (child, stdout, stderr) = run_binary(&env);
        let mut app = TestApp {
            addr: String::new(),
            client: reqwest::Client::new(),
            target,
            child: Mutex::new(child),
            stdout,
            stderr,
            _db: db,
            _turn: turn,
        };
        // Every app listens on a port the operating system picks (LISTEN_ADDR ends in :0), read from /proc
        // once it listens, whatever its log level: no port is chosen ahead, so none can be taken meanwhile.
        let pid = app.child.lock().unwrap().id();
        // Longer than the service allows a new replica's first sync before it listens (60 s).
        let deadline = Instant::now() + Duration::from_secs(75);
        let port = loop {
            if let Some(port) = listening::listening_port(pid) {
                break port;
            }
            assert!(app.exit_status().is_none(), "the server exited: {:?} {:?}", app.logs(), app.stderr());
            assert!(Instant::now() < deadline, "the server never listened: {:?}", app.logs());
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        app.addr = format!("http://127.0.0.1:{port}");
        app
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.addr, path)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self.client.get(self.url(path)).send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text:?}")))
    }

    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let response = self.client.get(self.url(path)).send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// POSTs `body` to /webhook with a valid signature.
    pub async fn deliver(&self, body: &str) -> (u16, Value) {
        self.post_webhook(body.as_bytes(), Some(&sign(SECRET, body.as_bytes()))).await
    }

    pub async fn post_webhook(&self, body: &[u8], signature: Option<&str>) -> (u16, Value) {
        self.post_signed("/webhook", "X-Signature", body, signature).await
    }

    /// POSTs `body` to /webhook/whatsapp signed as Meta signs it, with the app secret.
    pub async fn deliver_whatsapp(&self, body: &str) -> (u16, Value) {
        self.post_whatsapp(body.as_bytes(), Some(&whatsapp_signature(WHATSAPP_SECRET, body.as_bytes()))).await
    }

    pub async fn post_whatsapp(&self, body: &[u8], signature: Option<&str>) -> (u16, Value) {
        self.post_signed("/webhook/whatsapp", "X-Hub-Signature-256", body, signature).await
    }

    async fn post_signed(&self, path: &str, header: &str, body: &[u8], signature: Option<&str>) -> (u16, Value) {
        let mut request =
            self.client.post(self.url(path)).header("Content-Type", "application/json").body(body.to_vec());
        if let Some(signature) = signature {
            request = request.header(header, signature);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text:?}")))
    }

    /// Every stdout line so far, each parsed as JSON (the test fails on any line that is not).
    pub fn logs(&self) -> Vec<Value> {
        self.stdout
            .lock()
            .unwrap()
            .iter()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}")))
            .collect()
    }

    pub fn stderr(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    pub async fn wait_for_log(&self, matches: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(line) = self.logs().into_iter().find(&matches) {
                return line;
            }
            if let Some(status) = self.exit_status() {
                panic!("the server exited ({status}); stdout: {:?} stderr: {:?}", self.logs(), self.stderr());
            }
            assert!(Instant::now() < deadline, "no such log line; stdout: {:?}", self.logs());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until `count` log lines match (the pipe from the server is read by a thread that may lag
    /// behind the responses), and returns them.
    pub async fn wait_for_logs(&self, count: usize, matches: impl Fn(&Value) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let found: Vec<Value> = self.logs().into_iter().filter(&matches).collect();
            if found.len() >= count {
                return found;
            }
            assert!(Instant::now() < deadline, "{} of {count} log lines: {found:?}", found.len());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The access-log line of the request that got this `X-Request-ID`.
    pub async fn request_log(&self, request_id: &str) -> Value {
        self.wait_for_log(|line| line["request_id"] == request_id).await
    }

    fn exit_status(&self) -> Option<ExitStatus> {
        self.child.lock().unwrap().try_wait().ok().flatten()
    }

    /// The process's own resident memory now (heap, stacks), in KiB. The pages of the database it maps are
    /// left out: they are the kernel's page cache, shared, and dropped under pressure.
    pub fn anonymous_rss_kib(&self) -> u64 {
        let pid = self.child.lock().unwrap().id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let rss = status.lines().find_map(|l| l.strip_prefix("RssAnon:")).unwrap_or_default();
        rss.trim().trim_end_matches("kB").trim().parse().unwrap_or(0)
    }

    /// Sends `signal` (e.g. "TERM") without waiting.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.lock().unwrap().id().to_string();
        Command::new("kill").args([&format!("-{signal}"), &pid]).status().unwrap();
    }

    /// Waits for the process to exit, at most `timeout`.
    pub async fn wait_exit(&self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exit_status() {
                return status;
            }
            assert!(Instant::now() < deadline, "the server did not exit within {timeout:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits for `/health/ready` to answer 200, at most `timeout`.
    pub async fn wait_ready(&self, timeout: Duration) {
        let ready = || async { self.get("/health/ready").await.0 == 200 };
        eventually("not ready", timeout, Duration::from_millis(100), ready).await;
    }

    /// The database file; for tests about what only a local file has.
    pub fn db_path(&self) -> &Path {
        match &self.target {
            Target::File(path) => path,
            Target::Server(_) | Target::Replica(_) => {
                panic!("this test needs a local file: start it with Setup::local_file()")
            }
        }
    }

    /// A connection to the app's store, file or server, beside the app.
    pub async fn connect_store(&self) -> libsql::Connection {
        connect(&self.target).await
    }

    /// Rows stored in the database, by id, read directly rather than through the API: in `messages`, or on a
    /// server still in `inbox`, where its deliveries land first.
    pub async fn stored_rows(&self) -> Vec<StoredRow> {
        let conn = self.connect_store().await;
        let mut rows = conn
            .query(
                "SELECT message_id, from_msisdn, to_msisdn, ts, text FROM messages \
                 UNION ALL SELECT message_id, from_msisdn, to_msisdn, ts, text FROM inbox ORDER BY message_id",
                (),
            )
            .await
            .unwrap();
        let mut out = Vec::new();
        while let Some(row) = rows.next().await.unwrap() {
            out.push(StoredRow {
                message_id: row.get(0).unwrap(),
                from: row.get(1).unwrap(),
                to: row.get(2).unwrap(),
                ts: row.get(3).unwrap(),
                text: row.get(4).unwrap(),
            });
        }
        out
    }

    /// The ids of [`TestApp::stored_rows`].
    pub async fn stored_ids(&self) -> Vec<String> {
        self.stored_rows().await.into_iter().map(|row| row.message_id).collect()
    }

    pub async fn stored_count(&self) -> usize {
        self.stored_rows().await.len()
    }
}

/// A row of `messages` as stored.
#[derive(Debug, PartialEq, Eq)]
pub struct StoredRow {
    pub message_id: String,
    pub from: String,
    pub to: String,
    pub ts: String,
    pub text: Option<String>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|p| p.into_inner());
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A connection to a store, file or server.
pub async fn connect(target: &Target) -> libsql::Connection {
    match target {
        Target::File(path) => {
            let conn = libsql::Builder::new_local(path).build().await.unwrap().connect().unwrap();
            // The app's writer may hold the file's write lock (a batch, an indexing chunk): wait for it, as
            // the app's own connections do, rather than fail at once.
            conn.busy_timeout(Duration::from_secs(5)).unwrap();
            conn
        }
        Target::Server(url) | Target::Replica(url) => remote_database(url).await.connect().unwrap(),
    }
}

/// What `PRAGMA integrity_check` says of a database file: "ok" when it is sound.
pub async fn integrity_check(path: &Path) -> String {
    let conn = connect(&Target::File(path.to_owned())).await;
    let mut rows = conn.query("PRAGMA integrity_check", ()).await.unwrap();
    rows.next().await.unwrap().unwrap().get(0).unwrap()
}

#[cfg(feature = "remote")]
async fn remote_database(url: &str) -> libsql::Database {
    let token = std::env::var("LIBSQL_TEST_AUTH_TOKEN").unwrap_or_default();
    libsql::Builder::new_remote(url.to_owned(), token).build().await.unwrap()
}

#[cfg(not(feature = "remote"))]
async fn remote_database(url: &str) -> libsql::Database {
    panic!("LIBSQL_TEST_URL={url} needs the tests built with the `remote` feature (on by default)")
}

/// Drops every table of the server's database and resets its schema version, so the next app starts on an
/// empty database as it would on a fresh file. Virtual tables go first: their shadow tables go with them.
pub async fn empty_server_database(url: &str) {
    let conn = connect(&Target::Server(url.to_owned())).await;
    for kind in ["sql LIKE 'CREATE VIRTUAL TABLE%'", "1"] {
        let mut rows = conn
            .query(
                &format!(
                    "SELECT name FROM sqlite_schema WHERE type = 'table' AND {kind} AND name NOT LIKE 'sqlite_%' \
                     AND name NOT LIKE 'libsql_%' AND name NOT LIKE '_litestream%'"
                ),
                (),
            )
            .await
            .unwrap();
        let mut tables = Vec::new();
        while let Some(row) = rows.next().await.unwrap() {
            tables.push(row.get::<String>(0).unwrap());
        }
        for table in tables {
            conn.execute(&format!("DROP TABLE IF EXISTS \"{table}\""), ()).await.unwrap();
        }
    }
    conn.execute("PRAGMA user_version = 0", ()).await.unwrap();
}

/// A valid delivery of `id` (the same sender, time and text for every id).
pub fn body(id: &str) -> String {
    message(id, "+1", "2025-01-15T10:00:00Z", Some("test delivery"))
}

/// Asserts `/health/ready` is 503 with a reason containing `reason`.
/// Asserts `/health/ready` is 503 with exactly one of `reasons` (fixed texts: the detail goes to the log
/// only), and that its access-log line carries the detail.
pub async fn assert_not_ready(app: &TestApp, reasons: &[&str]) {
    let response = app.client.get(app.url("/health/ready")).send().await.unwrap();
    let request_id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    let status = response.status().as_u16();
    let ready: Value = response.json().await.unwrap();
    assert_eq!((status, ready["status"].as_str()), (503, Some("not_ready")), "{ready}");
    assert!(ready["reason"].as_str().is_some_and(|r| reasons.contains(&r)), "{ready}");
    assert_eq!(ready.as_object().map(|o| o.len()), Some(2), "{ready}");
    let line = app.request_log(&request_id).await;
    assert!(line["error"].as_str().is_some_and(|e| !e.is_empty()), "the cause is not logged: {line}");
}

/// `X-Hub-Signature-256` of `body` under `secret`: `sha256=` and the hex HMAC.
pub fn whatsapp_signature(secret: &str, body: &[u8]) -> String {
    format!("sha256={}", sign(secret, body))
}

/// A Cloud API delivery of `messages` (one entry, one `messages` change) to the business number
/// +1 555 000 1234.
pub fn whatsapp_delivery(messages: Value) -> String {
    serde_json::json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [
        {"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550001234", "phone_number_id": "123456"},
            "contacts": [{"profile": {"name": "Kerry Fisher"}, "wa_id": "16315551234"}],
            "messages": messages,
        }}
    ]}]})
    .to_string()
}

/// A Cloud API text message from +1 631 555 1234, at 2025-01-15T10:00:00Z.
pub fn whatsapp_text(id: &str, body: &str) -> Value {
    serde_json::json!({"from": "16315551234", "id": id, "timestamp": "1736935200", "type": "text", "text": {"body": body}})
}

/// A valid message body with the given id, sender, timestamp and text.
pub fn message(id: &str, from: &str, ts: &str, text: Option<&str>) -> String {
    serde_json::json!({"message_id": id, "from": from, "to": "+14155550100", "ts": ts, "text": text}).to_string()
}

/// Sends raw bytes on a fresh connection and returns the status code and the response body, for requests
/// an HTTP client library would refuse to make (chunked oversize bodies, odd framing).
pub async fn raw_http(addr: &str, request: &[u8]) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = addr.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    // The server may answer and close before it has read everything; a failed write is then expected.
    let _ = stream.write_all(request).await;
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response)).await;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

/// An `App` in this process (for feeding Lambda events to the handler), configured by `env` on a fresh
/// database. Keep the returned directory alive as long as the app.
pub async fn in_process_app(env: &[(&str, &str)]) -> (webhook_ingest::app::App, TempDb) {
    use webhook_ingest::config::{Config, LogLevel};
    webhook_ingest::telemetry::init_logging(LogLevel::Error);
    let db = TempDb::new();
    let url = format!("sqlite:///{}", db.path.display());
    let config = Config::from_lookup(|name| match name {
        "DATABASE_URL" => Some(url.clone()),
        _ => env.iter().find(|(key, _)| *key == name).map(|(_, value)| (*value).to_owned()),
    })
    .unwrap();
    (webhook_ingest::app::App::new(&config).await, db)
}
