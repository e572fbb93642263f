//! A Hrana-over-HTTP client for the bench: one statement per pipeline on one keep-alive connection, as the
//! service sends them, retried as the service retries. The fleet sends plain inserts with it, and the
//! remote bench loads its preload in bulk.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::client::Connection;

/// How long one request goes on retrying what a retry can fix (the server busy checkpointing), and how, as
/// the service does.
const RETRY_FOR: Duration = Duration::from_secs(4);
/// How long a client waits for one answer before it counts the request failed: a stalled server never
/// answers.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// A Hrana-over-HTTP client of one connection: one statement per pipeline, as the service sends them.
pub struct Hrana {
    addr: String,
    conn: Option<Connection>,
}

/// Why a statement failed, and whether a retry may succeed.
#[derive(Debug)]
pub struct Failure {
    pub transient: bool,
    pub message: String,
}

impl Hrana {
    pub fn new(addr: &str) -> Hrana {
        Hrana { addr: addr.to_owned(), conn: None }
    }

    /// Runs `sql`; its rows, each a list of Hrana values.
    pub async fn execute(&mut self, sql: &str, args: Vec<Value>) -> Result<Vec<Vec<Value>>, Failure> {
        let transport = |e: std::io::Error| Failure { transient: true, message: e.to_string() };
        if self.conn.is_none() {
            self.conn = Some(Connection::open(&self.addr).await.map_err(transport)?);
        }
        let conn = self.conn.as_mut().expect("opened");
        let body = json!({"baton": null, "requests": [
            {"type": "execute", "stmt": {"sql": sql, "args": args, "want_rows": true}}, {"type": "close"}]})
        .to_string();
        let request = format!(
            "POST /v3/pipeline HTTP/1.1\r\nHost: sqld\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let answer = tokio::time::timeout(ANSWER_WITHIN, conn.call(request.as_bytes())).await;
        let status = match answer {
            Ok(Ok(status)) => status,
            Ok(Err(e)) => {
                self.conn = None;
                return Err(transport(e));
            }
            Err(_) => {
                self.conn = None;
                return Err(Failure { transient: false, message: format!("no answer within {ANSWER_WITHIN:?}") });
            }
        };
        let answer: Value = serde_json::from_slice(conn.body()).unwrap_or(Value::Null);
        if status != 200 {
            return Err(Failure { transient: status >= 500 || status == 429, message: format!("HTTP {status}") });
        }
        let result = &answer["results"][0];
        if result["type"] != "ok" {
            let code = result["error"]["code"].as_str().unwrap_or_default();
            let transient = matches!(code, "SQLITE_BUSY" | "SQLITE_INTERRUPT");
            return Err(Failure { transient, message: result["error"].to_string() });
        }
        let rows = result["response"]["result"]["rows"].as_array().cloned().unwrap_or_default();
        Ok(rows.into_iter().map(|row| row.as_array().cloned().unwrap_or_default()).collect())
    }

    /// [`Hrana::execute`], retried as the service retries.
    pub async fn execute_with_retries(&mut self, sql: &str, args: Vec<Value>) -> Result<Vec<Vec<Value>>, Failure> {
        let (started, mut backoff) = (Instant::now(), Duration::from_millis(10));
        loop {
            match self.execute(sql, args.clone()).await {
                Err(e) if e.transient && started.elapsed() + backoff < RETRY_FOR => {
                    let noise = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.subsec_nanos())
                        % 1024;
                    tokio::time::sleep(backoff / 2 + backoff.mul_f64(noise as f64 / 2048.0)).await;
                    backoff = (backoff * 2).min(Duration::from_millis(200));
                }
                result => return result,
            }
        }
    }
}
