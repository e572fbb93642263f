//! The read, health, metrics and API-description endpoints. (`POST /webhook` has its own module.)

use lambda_http::http::{header, HeaderValue, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::Serialize;

use crate::app::App;
use crate::error::{json, json_response, ApiError};
use crate::query::{ListParams, StatusParams};
use crate::routes;
use crate::store::StoredMessage;
use crate::telemetry;

/// A page of a listing as `/messages` and `/statuses` answer it.
#[derive(Serialize)]
struct Listing<'a, T> {
    data: &'a [T],
    total: u64,
    limit: u32,
    offset: u64,
}

/// A page of `/messages`: a listing, and the cursor of the page after it.
#[derive(Serialize)]
struct MessagesPage<'a> {
    #[serde(flatten)]
    listing: Listing<'a, StoredMessage>,
    next_cursor: Option<String>,
}

pub async fn messages(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let params = ListParams::parse(req.uri().query(), &app.cursors).map_err(ApiError::Validation)?;
    let page = app.store().await?.list(&params).await?;
    let listing = Listing { data: &page.data, total: page.total, limit: params.limit, offset: params.offset };
    let next_cursor = page.next.map(|next| app.cursors.seal(&params.filters(), &next, page.next_ordinal));
    Ok(json_response(StatusCode::OK, json(&MessagesPage { listing, next_cursor })))
}

/// `GET /messages/{message_id}`: one message with what arrived, or 404.
pub async fn message(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let message_id = routes::message_id(req.uri().path()).ok_or(ApiError::NotFound)?;
    let message = app.store().await?.message(&message_id).await?.ok_or(ApiError::NotFound)?;
    Ok(json_response(StatusCode::OK, json(&message)))
}

/// `GET /statuses`: WhatsApp delivery statuses by time, then arrival.
pub async fn statuses(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let params = StatusParams::parse(req.uri().query()).map_err(ApiError::Validation)?;
    let page = app.store().await?.statuses(&params).await?;
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
pub async fn ready(app: &App) -> Result<Response<Body>, ApiError> {
    if app.verifier.is_empty() {
        return Err(ApiError::NotReady { reason: "webhook secret not configured", cause: None });
    }
    app.store().await.map_err(ApiError::not_ready)?.check().await.map_err(ApiError::not_ready)?;
    Ok(json_response(StatusCode::OK, r#"{"status":"ready"}"#.to_owned()))
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
