//! A minimal Hrana-over-HTTP client: one statement, or one batch of statements, per HTTP request.
//!
//! libsql's remote connection describes every statement it has not prepared on that connection (a round trip
//! of its own) and cannot return rows from a batch; against a server across a network every trip is the
//! request's latency, so the server back end speaks the protocol itself. Each call is one `POST
//! …/v3/pipeline` holding the work and the stream's close: one round trip, no server-side state left behind.
//! The messages are `libsql-hrana`'s types, the ones sqld itself reads and writes.

use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper_client::client::HttpConnector;
use hyper_client::{Body, Client, Request, StatusCode, Uri};
use hyper_rustls::HttpsConnector;
use libsql::Value;
use libsql_hrana::proto;
use thiserror::Error;

/// How long one call goes on retrying a failure a retry can fix (a server checkpointing holds every writer
/// off for a moment, and many instances may be waiting): inside a request's deadline, so its answer names
/// the server's failure. Every call is retried, so every statement sent must be safe to run again.
const RETRY_FOR: Duration = Duration::from_secs(4);
/// The wait before the first retry, doubled before each next one up to [`LONGEST_BACKOFF`], each time
/// [`jittered`].
const FIRST_BACKOFF: Duration = Duration::from_millis(10);
const LONGEST_BACKOFF: Duration = Duration::from_millis(200);

#[derive(Debug, Error)]
pub enum HranaError {
    /// The server could not be reached, or the connection broke.
    #[error("libSQL server unreachable: {0}")]
    Transport(String),
    /// The server answered the HTTP request with an error status.
    #[error("libSQL server answered HTTP {0}: {1}")]
    Status(u16, String),
    /// The server ran the statement and it failed.
    #[error("libSQL server: {message} ({code})")]
    Statement { code: String, message: String },
    #[error("unexpected answer from the libSQL server: {0}")]
    Protocol(String),
}

impl HranaError {
    /// Failures of the server or the way to it, not of the statement: a retry may succeed.
    fn is_transient(&self) -> bool {
        match self {
            HranaError::Transport(_) => true,
            HranaError::Status(status, _) => *status >= 500 || *status == 429,
            HranaError::Statement { code, .. } => is_busy(code),
            HranaError::Protocol(_) => false,
        }
    }

    /// Whether the server is unreachable, overloaded or busy (a 503), rather than failing the statement.
    pub fn is_unavailable(&self) -> bool {
        match self {
            HranaError::Statement { code, .. } => is_busy(code),
            other => other.is_transient(),
        }
    }
}

/// One statement and its arguments.
pub struct Statement {
    pub sql: String,
    pub args: Vec<Value>,
}

impl Statement {
    pub fn new(sql: impl Into<String>, args: Vec<Value>) -> Statement {
        Statement { sql: sql.into(), args }
    }
}

/// What a statement returned.
pub struct Outcome {
    pub rows: Vec<Vec<Value>>,
}

pub struct Hrana {
    client: Client<HttpsConnector<HttpConnector>>,
    pipeline: Uri,
    authorization: Option<String>,
}

impl Hrana {
    /// A client of the server at `url` (`libsql://` is HTTPS), authenticated by `token` when one is given.
    pub fn new(url: &str, token: &str) -> Result<Hrana, HranaError> {
        let url = match url.strip_prefix("libsql://") {
            Some(rest) => format!("https://{rest}"),
            None => url.to_owned(),
        };
        let (base, query) = url.split_at(url.find('?').unwrap_or(url.len()));
        let pipeline = format!("{}/v3/pipeline{query}", base.trim_end_matches('/'))
            .parse()
            .map_err(|e| HranaError::Protocol(format!("not a server URL: {e}")))?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        // The system's roots, as libsql's own connections (migrations, replicas) use.
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| HranaError::Transport(format!("no TLS root certificates: {e}")))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder().pool_idle_timeout(Duration::from_secs(30)).build(connector);
        let authorization = Some(token).filter(|t| !t.is_empty()).map(|t| format!("Bearer {t}"));
        Ok(Hrana { client, pipeline, authorization })
    }

    /// Runs one statement in a stream of its own (autocommit), retrying transient failures.
    pub async fn execute(&self, statement: &Statement) -> Result<Outcome, HranaError> {
        self.pipeline(std::slice::from_ref(statement)).await?.pop().ok_or_else(|| missing("result"))?
    }

    /// Runs `statements` one after another in one round trip, each in autocommit, and returns each one's
    /// outcome: one failing does not stop the next. Retried while the round trip, or the last statement (the
    /// one the caller waits on), fails in a way a retry can fix.
    pub async fn pipeline(&self, statements: &[Statement]) -> Result<Vec<Result<Outcome, HranaError>>, HranaError> {
        let requests = statements
            .iter()
            .map(|statement| proto::StreamRequest::Execute(proto::ExecuteStreamReq { stmt: encode(statement) }))
            .collect();
        let responses = self.call(requests).await?;
        Ok(responses
            .into_iter()
            .map(|response| match response? {
                proto::StreamResponse::Execute(executed) => decode(executed.result),
                _ => Err(missing("execute result")),
            })
            .collect())
    }

    /// Runs `statements` in order inside one `BEGIN IMMEDIATE` transaction: all commit or none does. Returns
    /// each statement's outcome. Retried like [`Hrana::execute`], so the statements must be safe to run again
    /// after a commit whose answer was lost.
    pub async fn transaction(&self, statements: &[Statement]) -> Result<Vec<Outcome>, HranaError> {
        // BEGIN, the statements each on the success of the one before, COMMIT on the last; a ROLLBACK runs if
        // the COMMIT did not.
        let step = |stmt, condition| proto::BatchStep { condition, stmt };
        let ok = |step: usize| proto::BatchCond::Ok { step: step as u32 };
        let last = statements.len();
        let mut steps = vec![step(proto::Stmt::new("BEGIN IMMEDIATE", false), None)];
        steps.extend(statements.iter().enumerate().map(|(index, statement)| step(encode(statement), Some(ok(index)))));
        steps.push(step(proto::Stmt::new("COMMIT", false), Some(ok(last))));
        steps.push(step(
            proto::Stmt::new("ROLLBACK", false),
            Some(proto::BatchCond::Not { cond: Box::new(ok(last + 1)) }),
        ));
        let batch = proto::Batch { steps, replication_index: None };
        let request = proto::StreamRequest::Batch(proto::BatchStreamReq { batch });
        let response = self.call(vec![request]).await?.pop().ok_or_else(|| missing("result"))??;
        let proto::StreamResponse::Batch(proto::BatchStreamResp { result }) = response else {
            return Err(missing("batch result"));
        };
        if let Some(error) = result.step_errors.into_iter().flatten().next() {
            return Err(statement_error(error));
        }
        let mut results = result.step_results;
        // Nothing is acknowledged unless the COMMIT itself reports success.
        if results.get(last + 1).is_none_or(Option::is_none) {
            return Err(missing("COMMIT result"));
        }
        results.truncate(last + 1);
        results.drain(1..).map(|result| decode(result.ok_or_else(|| missing("step result"))?)).collect()
    }

    /// Sends `requests` with the stream's close in one round trip, retrying while the round trip, or the last
    /// request, fails in a way a retry can fix; returns each request's response, or its error.
    async fn call(
        &self,
        mut requests: Vec<proto::StreamRequest>,
    ) -> Result<Vec<Result<proto::StreamResponse, HranaError>>, HranaError> {
        let count = requests.len();
        requests.push(proto::StreamRequest::Close(proto::CloseStreamReq {}));
        let body = Bytes::from(
            serde_json::to_vec(&proto::PipelineReqBody { baton: None, requests })
                .map_err(|e| HranaError::Protocol(e.to_string()))?,
        );
        let started = Instant::now();
        let (mut backoff, mut attempt) = (FIRST_BACKOFF, 1);
        loop {
            let responses = self.send(body.clone(), count).await;
            let transient = match &responses {
                Ok(responses) => responses.last().and_then(|last| last.as_ref().err()).filter(|e| e.is_transient()),
                Err(e) => Some(e).filter(|e| e.is_transient()),
            };
            match transient {
                Some(e) if started.elapsed() + backoff < RETRY_FOR => {
                    tracing::warn!(error = %e, attempt, "libSQL server call failed; retrying");
                    tokio::time::sleep(jittered(backoff)).await;
                    (backoff, attempt) = ((backoff * 2).min(LONGEST_BACKOFF), attempt + 1);
                }
                _ => return responses,
            }
        }
    }

    /// One HTTP round trip; the first `count` results of the pipeline, each a response or its error.
    async fn send(
        &self,
        body: Bytes,
        count: usize,
    ) -> Result<Vec<Result<proto::StreamResponse, HranaError>>, HranaError> {
        let mut request = Request::post(&self.pipeline).header("content-type", "application/json");
        if let Some(authorization) = &self.authorization {
            request = request.header("authorization", authorization);
        }
        let request = request.body(Body::from(body)).map_err(|e| HranaError::Protocol(e.to_string()))?;
        let response = self.client.request(request).await.map_err(|e| HranaError::Transport(e.to_string()))?;
        let status = response.status();
        let bytes = hyper_client::body::to_bytes(response.into_body())
            .await
            .map_err(|e| HranaError::Transport(e.to_string()))?;
        if status != StatusCode::OK {
            let text = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned();
            return Err(HranaError::Status(status.as_u16(), text));
        }
        let answer: proto::PipelineRespBody =
            serde_json::from_slice(&bytes).map_err(|e| HranaError::Protocol(e.to_string()))?;
        if answer.results.len() < count {
            return Err(missing("results"));
        }
        Ok(answer.results.into_iter().take(count).map(response_of).collect())
    }
}

/// Half to all of `backoff`, so that instances refused at the same moment do not all come back at once.
fn jittered(backoff: Duration) -> Duration {
    let noise = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    backoff / 2 + backoff.mul_f64(f64::from(noise % 1024) / 2048.0)
}

/// One request's result in a pipeline's answer: its response, or its error.
fn response_of(result: proto::StreamResult) -> Result<proto::StreamResponse, HranaError> {
    match result {
        proto::StreamResult::Ok { response } => Ok(response),
        proto::StreamResult::Error { error } => Err(statement_error(error)),
        proto::StreamResult::None => Err(missing("result")),
    }
}

/// A statement as Hrana sends it: rows wanted, arguments positional.
fn encode(statement: &Statement) -> proto::Stmt {
    let mut stmt = proto::Stmt::new(statement.sql.as_str(), true);
    stmt.args = statement.args.iter().map(encode_value).collect();
    stmt
}

fn encode_value(value: &Value) -> proto::Value {
    match value {
        Value::Null => proto::Value::Null,
        Value::Integer(value) => proto::Value::Integer { value: *value },
        Value::Real(value) => proto::Value::Float { value: *value },
        Value::Text(text) => proto::Value::Text { value: text.as_str().into() },
        Value::Blob(bytes) => proto::Value::Blob { value: Bytes::copy_from_slice(bytes) },
    }
}

fn decode_value(value: proto::Value) -> Result<Value, HranaError> {
    Ok(match value {
        proto::Value::Null => Value::Null,
        proto::Value::Integer { value } => Value::Integer(value),
        proto::Value::Float { value } => Value::Real(value),
        proto::Value::Text { value } => Value::Text(value.to_string()),
        proto::Value::Blob { value } => Value::Blob(value.to_vec()),
        proto::Value::None => return Err(missing("value")),
    })
}

fn decode(result: proto::StmtResult) -> Result<Outcome, HranaError> {
    let rows = result
        .rows
        .into_iter()
        .map(|row| row.values.into_iter().map(decode_value).collect())
        .collect::<Result<_, _>>()?;
    Ok(Outcome { rows })
}

/// SQLite's and sqld's codes for a statement that met another's lock or was cut short, not a fault of its own.
fn is_busy(code: &str) -> bool {
    matches!(code, "SQLITE_INTERRUPT" | "SQLITE_BUSY" | "TRANSACTION_BUSY" | "TRANSACTION_TIMEOUT")
}

fn statement_error(error: proto::Error) -> HranaError {
    HranaError::Statement { code: error.code, message: error.message }
}

fn missing(what: &str) -> HranaError {
    HranaError::Protocol(format!("no {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_survive_the_round_trip_through_json() {
        let values = [
            Value::Null,
            Value::Integer(i64::MIN),
            Value::Integer(9_007_199_254_740_993),
            Value::Real(1.5),
            Value::Text("a\0b \"é\" 😀".into()),
            Value::Blob(vec![0, 1, 2, 255, 254]),
        ];
        for value in values {
            let json = serde_json::to_string(&encode_value(&value)).unwrap();
            assert_eq!(decode_value(serde_json::from_str(&json).unwrap()).unwrap(), value, "{json}");
        }
    }

    #[test]
    fn server_urls_become_pipeline_urls() {
        let pipeline = |url: &str| Hrana::new(url, "").unwrap().pipeline.to_string();
        assert_eq!(pipeline("libsql://db-org.turso.io"), "https://db-org.turso.io/v3/pipeline");
        assert_eq!(pipeline("http://127.0.0.1:8080/"), "http://127.0.0.1:8080/v3/pipeline");
        assert_eq!(pipeline("https://h.example/x?tls=1"), "https://h.example/x/v3/pipeline?tls=1");
    }

    #[test]
    fn only_server_side_failures_are_retried() {
        assert!(HranaError::Transport("reset".into()).is_transient());
        assert!(HranaError::Status(502, String::new()).is_transient());
        assert!(!HranaError::Status(400, String::new()).is_transient());
        let statement = |code: &str| HranaError::Statement { code: code.into(), message: String::new() };
        assert!(statement("SQLITE_INTERRUPT").is_transient());
        assert!(!statement("SQLITE_CONSTRAINT").is_transient());
    }
}
