//! [`handle`]: one request in, one response out, whichever runtime delivered it. Routes the request, and
//! writes its access-log line and metrics sample.

use std::time::Instant;

use lambda_http::http::{header, HeaderValue, Method};
use lambda_http::{Body, Request, RequestExt, Response};

use crate::app::App;
use crate::config::LogLevel;
use crate::delivery::{Outcome, Tally, WebhookResult};
use crate::error::ApiError;
use crate::routes::Route;
use crate::telemetry::{self, RequestLog};
use crate::transport::HeadersTooLarge;
use crate::{endpoints, ui, webhook, whatsapp};

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
        Some(route) if !route.answers(req.method()) => ApiError::MethodNotAllowed(route.allow()).into(),
        Some(route) if route.reads_data() && !app.admits_reader(&req) => ApiError::Unauthorized.into(),
        Some(Route::Webhook) => webhook::receive(app, &req).await.into(),
        Some(Route::WhatsApp) if req.method() == Method::POST => whatsapp::receive(app, &req).await.into(),
        Some(Route::WhatsApp) => whatsapp::handshake(app, req.uri().query()).into(),
        Some(Route::Messages) => endpoints::messages(app, &req).await.into(),
        Some(Route::Message) => endpoints::message(app, &req).await.into(),
        Some(Route::Statuses) => endpoints::statuses(app, &req).await.into(),
        Some(Route::Stats) => endpoints::stats(app).await.into(),
        Some(Route::Live) => endpoints::live().into(),
        Some(Route::Ready) => endpoints::ready(app).await.into(),
        Some(Route::Metrics) => endpoints::metrics(app).into(),
        Some(Route::OpenApi) => endpoints::openapi().into(),
        Some(route @ (Route::Inbox | Route::InboxScript | Route::InboxStyle)) => ui::serve(route).into(),
    };

    if req.method() == Method::HEAD {
        without_body(&mut answer.response);
    }
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
        messages: answer.messages.as_ref(),
        error: answer.cause.as_deref(),
    }
    .write(answer.level);
    let sample = telemetry::Sample {
        method: method_label(req.method()),
        route: Route::label(route),
        status,
        latency,
        result: answer.result,
        messages: answer.messages.as_ref(),
    };
    sample.record();
    if app.metrics_emf {
        sample.write_emf();
    }
    answer.response
}

/// A HEAD answer: the GET answer's status and headers, its length, and no body.
fn without_body(response: &mut Response<Body>) {
    let length = match std::mem::replace(response.body_mut(), Body::Empty) {
        Body::Text(text) => text.len(),
        Body::Binary(bytes) => bytes.len(),
        _ => 0,
    };
    response.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(length));
}

/// A response and what the access log and metrics need to know about how it came about.
struct Answer {
    response: Response<Body>,
    level: LogLevel,
    result: Option<WebhookResult>,
    dup: Option<bool>,
    message_id: Option<String>,
    /// What became of a WhatsApp delivery's messages.
    messages: Option<Tally>,
    cause: Option<String>,
}

impl From<Response<Body>> for Answer {
    /// Server errors are logged at ERROR, refused read tokens at WARN, the rest at INFO (a delivery's line
    /// takes its [`Outcome::level`]).
    fn from(response: Response<Body>) -> Self {
        let level = match response.status().as_u16() {
            500.. => LogLevel::Error,
            401 => LogLevel::Warn,
            _ => LogLevel::Info,
        };
        Answer { response, level, result: None, dup: None, message_id: None, messages: None, cause: None }
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

impl From<Outcome> for Answer {
    fn from(outcome: Outcome) -> Self {
        let level = outcome.level();
        let Outcome { response, result, dup, message_id, messages, cause } = outcome;
        Answer { response, level, result: Some(result), dup, message_id, messages, cause }
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
