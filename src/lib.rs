//! webhook-ingest: receives HMAC-signed webhook messages, stores each exactly once in libSQL, and serves
//! list, search, stats, health and metrics endpoints.
//!
//! Everything happens in [`handle`], a plain async function of a `lambda_http` request; `main` only
//! chooses the runtime that feeds it (the Lambda runtime, or with the `local` feature an HTTP listener).

pub mod auth;
pub mod config;
pub mod error;
pub mod lambda;
pub mod message;
pub mod query;
pub mod routes;
pub mod signature;
pub mod store;
pub mod telemetry;
pub mod webhook;

#[cfg(feature = "local")]
pub mod local;

use std::sync::Arc;
use std::time::Instant;

use lambda_http::http::{header, HeaderValue, Method};
use lambda_http::{Body, Request, RequestExt, Response};
use metrics_exporter_prometheus::PrometheusHandle;

use crate::auth::ReadToken;
use crate::config::Config;
use crate::error::ApiError;
use crate::routes::Route;
use crate::signature::Verifier;
use crate::store::{Inserted, LazyStore, Store, StoreError};
use crate::telemetry::RequestLog;

/// State built once per process (a Lambda cold start or the listener's start) and shared by all requests.
pub struct App {
    pub verifier: Verifier,
    pub max_body_bytes: usize,
    pub metrics: PrometheusHandle,
    pub metrics_emf: bool,
    pub read_token: Option<ReadToken>,
    pub max_connections: usize,
    store: LazyStore,
}

impl App {
    /// Builds the state and tries to open the database; a database that cannot be opened yet is retried
    /// by later requests rather than stopping the process. Must run inside a Tokio runtime.
    pub async fn new(config: &Config) -> App {
        let app = App {
            verifier: Verifier::new(config.secrets.iter().map(String::as_str)),
            max_body_bytes: config.max_body_bytes,
            metrics: telemetry::install_metrics(),
            metrics_emf: config.metrics_emf,
            read_token: config.read_api_token.as_deref().map(ReadToken::new),
            max_connections: config.max_connections,
            store: LazyStore::new(config.database.clone()),
        };
        let _ = app.store.open_at_start().await;
        app
    }

    pub async fn store(&self) -> Result<Arc<Store>, StoreError> {
        self.store.get().await
    }

    /// Whether a request may use the read endpoints: always, unless `READ_API_TOKEN` is set.
    fn admits_reader(&self, req: &Request) -> bool {
        self.read_token.as_ref().is_none_or(|token| token.admits(req.headers().get(header::AUTHORIZATION)))
    }
}

/// Marks a request whose headers exceed the local listener's limits; it is answered 431 whatever its route.
#[derive(Debug, Clone, Copy)]
pub struct HeadersTooLarge;

/// Answers one request. Never fails: every error becomes its JSON response here.
pub async fn handle(app: &App, req: Request) -> Response<Body> {
    let started = Instant::now();
    let request_id = match req.lambda_context_ref() {
        Some(context) if !context.request_id.is_empty() => context.request_id.clone(),
        _ => uuid::Uuid::new_v4().to_string(),
    };
    let path = req.uri().path();
    let route = Route::of(path);

    let mut answer: Answer = match route {
        _ if req.extensions().get::<HeadersTooLarge>().is_some() => ApiError::HeadersTooLarge.into(),
        None => ApiError::NotFound.into(),
        Some(route) if req.method().as_str() != route.method() => ApiError::MethodNotAllowed(route.method()).into(),
        Some(route) if route.reads_data() && !app.admits_reader(&req) => ApiError::Unauthorized.into(),
        Some(Route::Webhook) => webhook::receive(app, &req).await.into(),
        Some(Route::Messages) => routes::messages(app, &req).await.into(),
        Some(Route::Stats) => routes::stats(app).await.into(),
        Some(Route::Live) => routes::live().into(),
        Some(Route::Ready) => routes::ready(app).await.into(),
        Some(Route::Metrics) => routes::metrics(app).into(),
        Some(Route::OpenApi) => routes::openapi().into(),
    };

    let latency = started.elapsed();
    let status = answer.response.status().as_u16();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        answer.response.headers_mut().insert("x-request-id", value);
    }
    RequestLog {
        request_id: &request_id,
        method: req.method().as_str(),
        path,
        status,
        latency_ms: (latency.as_secs_f64() * 1e6).round() / 1e3,
        result: answer.result,
        dup: answer.dup,
        message_id: answer.message_id.as_deref(),
        error: answer.cause.as_deref(),
    }
    .write();
    let sample = telemetry::Sample {
        method: method_label(req.method()),
        route: Route::label(route),
        status,
        latency,
        result: answer.result,
    };
    sample.record();
    if app.metrics_emf {
        sample.write_emf();
    }
    answer.response
}

/// A response and what the access log and metrics need to know about how it came about.
struct Answer {
    response: Response<Body>,
    result: Option<&'static str>,
    dup: Option<bool>,
    message_id: Option<String>,
    cause: Option<String>,
}

impl From<Response<Body>> for Answer {
    fn from(response: Response<Body>) -> Self {
        Answer { response, result: None, dup: None, message_id: None, cause: None }
    }
}

impl From<ApiError> for Answer {
    fn from(error: ApiError) -> Self {
        let cause = error.cause();
        Answer { cause, ..Answer::from(error.into_response()) }
    }
}

impl From<Result<Response<Body>, ApiError>> for Answer {
    fn from(result: Result<Response<Body>, ApiError>) -> Self {
        result.map_or_else(Answer::from, Answer::from)
    }
}

impl From<webhook::Delivery> for Answer {
    fn from(mut delivery: webhook::Delivery) -> Self {
        let result = delivery.result();
        let dup = Some(matches!(delivery.outcome, Ok(Inserted::Duplicate)));
        let cause = delivery.outcome.as_ref().err().and_then(ApiError::cause);
        let message_id = delivery.message_id.take();
        Answer { result, dup, message_id, cause, response: delivery.into_response() }
    }
}

/// Methods as a bounded label set, so odd methods cannot grow the metrics without limit.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}
