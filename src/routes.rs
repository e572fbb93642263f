//! Routing on method + path, and the read endpoints.

use lambda_http::http::{header, HeaderValue, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::Serialize;

use crate::error::{json, json_response, ApiError};
use crate::query::ListParams;
use crate::store::StoredMessage;
use crate::{telemetry, App};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Webhook,
    Messages,
    Stats,
    Live,
    Ready,
    Metrics,
    OpenApi,
}

impl Route {
    pub fn of(path: &str) -> Option<Route> {
        Some(match path {
            "/webhook" => Route::Webhook,
            "/messages" => Route::Messages,
            "/stats" => Route::Stats,
            "/health/live" => Route::Live,
            "/health/ready" => Route::Ready,
            "/metrics" => Route::Metrics,
            "/openapi.yaml" => Route::OpenApi,
            _ => return None,
        })
    }

    /// The `path` label of metrics: the route itself, never what a client typed.
    pub fn label(route: Option<Route>) -> &'static str {
        match route {
            Some(Route::Webhook) => "/webhook",
            Some(Route::Messages) => "/messages",
            Some(Route::Stats) => "/stats",
            Some(Route::Live) => "/health/live",
            Some(Route::Ready) => "/health/ready",
            Some(Route::Metrics) => "/metrics",
            Some(Route::OpenApi) => "/openapi.yaml",
            None => "unmatched",
        }
    }

    /// The routes `READ_API_TOKEN` protects: the stored messages and what can be learnt about them.
    /// Health stays open for probes, the webhook has its own signature.
    pub fn reads_data(self) -> bool {
        matches!(self, Route::Messages | Route::Stats | Route::Metrics)
    }

    /// The one method the route answers; also the `Allow` header of its 405.
    pub fn method(self) -> &'static str {
        if self == Route::Webhook {
            "POST"
        } else {
            "GET"
        }
    }
}

pub async fn messages(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    #[derive(Serialize)]
    struct Listing<'a> {
        data: &'a [StoredMessage],
        total: u64,
        limit: u32,
        offset: u64,
    }
    let params = ListParams::parse(req.uri().query()).map_err(ApiError::Validation)?;
    let page = app.store().await?.list(&params).await?;
    let body = json(&Listing { data: &page.data, total: page.total, limit: params.limit, offset: params.offset });
    Ok(json_response(StatusCode::OK, body))
}

pub async fn stats(app: &App) -> Result<Response<Body>, ApiError> {
    let stats = app.store().await?.stats().await?;
    Ok(json_response(StatusCode::OK, json(&stats)))
}

pub fn live() -> Response<Body> {
    json_response(StatusCode::OK, r#"{"status":"ok"}"#.to_owned())
}

/// Ready only when a delivery could be accepted: a secret to verify it and a database that answers.
pub async fn ready(app: &App) -> Response<Body> {
    #[derive(Serialize)]
    struct NotReady<'a> {
        status: &'static str,
        reason: &'a str,
    }
    let reason = if app.verifier.is_empty() {
        Some("webhook secret not configured".to_owned())
    } else {
        match app.store().await {
            Ok(store) => store.check().await.err().map(|e| format!("database unavailable: {e}")),
            Err(e) => Some(format!("database unavailable: {e}")),
        }
    };
    match reason {
        None => json_response(StatusCode::OK, r#"{"status":"ready"}"#.to_owned()),
        Some(reason) => {
            json_response(StatusCode::SERVICE_UNAVAILABLE, json(&NotReady { status: "not_ready", reason: &reason }))
        }
    }
}

pub fn metrics(app: &App) -> Response<Body> {
    let mut response = Response::new(Body::Text(telemetry::render_metrics(&app.metrics)));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    response
}

/// The API description, compiled in so the binary always serves the one it was built with.
pub fn openapi() -> Response<Body> {
    let mut response = Response::new(Body::Text(include_str!("../openapi.yaml").to_owned()));
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/yaml"));
    response
}
