//! The Lambda runtime: API Gateway (REST and HTTP API), ALB and Function URL events in, [`handle`] in the
//! middle, the matching response shape out.
//!
//! Events are converted here rather than by lambda_http's adapter, whose conversion panics on inputs an
//! event can carry (a body flagged base64 that is not, a `Host` or query string its URL parser rejects).
//! With `panic = "abort"` that would take the process down; this conversion has no failure path at all:
//! a broken base64 body becomes a 400 answer, odd paths and queries are percent-encoded.

use std::convert::Infallible;
use std::sync::Arc;

use base64::Engine;
use lambda_http::aws_lambda_events::alb::{AlbTargetGroupRequest, AlbTargetGroupResponse};
use lambda_http::aws_lambda_events::apigw::{
    ApiGatewayProxyRequest, ApiGatewayProxyResponse, ApiGatewayV2httpRequest, ApiGatewayV2httpResponse,
};
use lambda_http::aws_lambda_events::query_map::QueryMap;
use lambda_http::http::{HeaderMap, Method, Request, Response, Uri};
use lambda_http::{Body, Context, RequestExt};
use lambda_runtime::{service_fn, LambdaEvent};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::app::App;
use crate::handler::handle;
use crate::transport::BodyFault;

/// The event sources this function serves.
#[derive(Debug)]
pub enum Event {
    /// API Gateway HTTP API (payload 2.0); Function URLs send the same shape.
    HttpApi(Box<ApiGatewayV2httpRequest>),
    /// API Gateway REST API proxy integration (payload 1.0).
    Rest(Box<ApiGatewayProxyRequest>),
    Alb(Box<AlbTargetGroupRequest>),
}

impl<'de> Deserialize<'de> for Event {
    /// Picks the source by its marks (`requestContext.elb`, `version: "2.0"`) rather than by which type
    /// happens to parse first: an ALB event also parses as a REST event, but wants an ALB response.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut value = Value::deserialize(deserializer)?;
        drop_empty_query_lists(&mut value);
        let event = if value.pointer("/requestContext/elb").is_some() {
            serde_json::from_value(value).map(|e| Event::Alb(Box::new(e)))
        } else if value.get("version").and_then(Value::as_str) == Some("2.0") {
            serde_json::from_value(value).map(|e| Event::HttpApi(Box::new(e)))
        } else if value.get("httpMethod").is_some() {
            serde_json::from_value(value).map(|e| Event::Rest(Box::new(e)))
        } else {
            return Err(D::Error::custom("not an API Gateway, ALB or Function URL HTTP event"));
        };
        event.map_err(D::Error::custom)
    }
}

/// query_map's iterator indexes the first value of every key, so a key with an empty list of values
/// would panic; such a key carries no parameter and is dropped.
fn drop_empty_query_lists(event: &mut Value) {
    for field in ["queryStringParameters", "multiValueQueryStringParameters"] {
        if let Some(Value::Object(params)) = event.get_mut(field) {
            params.retain(|_, values| !matches!(values, Value::Array(list) if list.is_empty()));
        }
    }
}

/// The response, in the shape the event's source expects.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Reply {
    HttpApi(ApiGatewayV2httpResponse),
    Rest(ApiGatewayProxyResponse),
    Alb(AlbTargetGroupResponse),
}

/// Serves Lambda invocations until the runtime stops. An event that is not an HTTP event fails its own
/// invocation (the runtime reports the deserialisation error) and the process carries on.
pub async fn run(app: Arc<App>) -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| {
        let app = Arc::clone(&app);
        async move { Ok::<_, Infallible>(invoke(&app, event.payload, event.context).await) }
    }))
    .await
}

/// Answers one event.
pub async fn invoke(app: &App, event: Event, context: Context) -> Reply {
    let (source, request) = into_request(event);
    let response = handle(app, request.with_lambda_context(context)).await;
    into_reply(source, response)
}

#[derive(Debug, Clone, Copy)]
enum Source {
    HttpApi,
    Rest,
    Alb,
}

struct Parts {
    method: Method,
    path: String,
    query: String,
    headers: HeaderMap,
    body: Option<String>,
    base64: bool,
}

fn into_request(event: Event) -> (Source, Request<Body>) {
    let (source, parts) = match event {
        Event::HttpApi(e) => {
            // rawPath carries a named stage (`/prod/webhook`); the route does not.
            let raw_path = e.raw_path.unwrap_or_default();
            let path = match e.request_context.stage.as_deref().filter(|s| *s != "$default") {
                Some(stage) => strip_stage(&raw_path, stage).to_owned(),
                None => raw_path,
            };
            let query = e.raw_query_string.unwrap_or_default();
            (
                Source::HttpApi,
                Parts {
                    method: e.request_context.http.method,
                    path,
                    query,
                    headers: e.headers,
                    body: e.body,
                    base64: e.is_base64_encoded,
                },
            )
        }
        // REST's `path` never includes the stage. Its query values arrive decoded, so they are encoded again.
        Event::Rest(e) => {
            let headers = merged(e.multi_value_headers, e.headers);
            let query = encode_query(pick(&e.multi_value_query_string_parameters, &e.query_string_parameters));
            let path = e.path.unwrap_or_default();
            (
                Source::Rest,
                Parts { method: e.http_method, path, query, headers, body: e.body, base64: e.is_base64_encoded },
            )
        }
        // ALB passes query keys and values exactly as the client encoded them.
        Event::Alb(e) => {
            let headers = merged(e.multi_value_headers, e.headers);
            let query = pick(&e.multi_value_query_string_parameters, &e.query_string_parameters)
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("&");
            let path = e.path.unwrap_or_default();
            (
                Source::Alb,
                Parts { method: e.http_method, path, query, headers, body: e.body, base64: e.is_base64_encoded },
            )
        }
    };
    (source, build_request(parts))
}

/// An event's multi-value headers with its single-value ones over them.
fn merged(mut multi: HeaderMap, single: HeaderMap) -> HeaderMap {
    multi.extend(single);
    multi
}

fn pick<'a>(multi: &'a QueryMap, single: &'a QueryMap) -> &'a QueryMap {
    if multi.is_empty() {
        single
    } else {
        multi
    }
}

fn encode_query(params: &QueryMap) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params.iter() {
        query.append_pair(k, v);
    }
    query.finish()
}

fn strip_stage<'a>(path: &'a str, stage: &str) -> &'a str {
    match path.strip_prefix('/').and_then(|p| p.strip_prefix(stage)) {
        Some("") => "/",
        Some(rest) if rest.starts_with('/') => rest,
        _ => path,
    }
}

/// Everything but unreserved characters, `/` and `%` (paths) or `=&+%` (queries) is percent-encoded when
/// the text as given is not a valid URI part, so any string an event carries becomes a URI.
const PATH_ESCAPES: &AsciiSet = &NON_ALPHANUMERIC.remove(b'/').remove(b'-').remove(b'.').remove(b'_').remove(b'~');
const QUERY_ESCAPES: &AsciiSet = &PATH_ESCAPES.remove(b'=').remove(b'&').remove(b'+').remove(b'%');

fn build_uri(path: &str, query: &str) -> Uri {
    let path = if path.starts_with('/') { path.to_owned() } else { format!("/{path}") };
    let joined = |path: &str, query: &str| {
        if query.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{query}")
        }
    };
    Uri::try_from(joined(&path, query)).unwrap_or_else(|_| {
        let path = utf8_percent_encode(&path, PATH_ESCAPES).to_string();
        let query = utf8_percent_encode(query, QUERY_ESCAPES).to_string();
        // Only unreserved characters and delimiters remain, which always form a URI.
        Uri::try_from(joined(&path, &query)).unwrap_or_default()
    })
}

fn build_request(parts: Parts) -> Request<Body> {
    let mut undecodable = false;
    let body = match (parts.body, parts.base64) {
        (None, _) => Body::Empty,
        (Some(text), false) if text.is_empty() => Body::Empty,
        (Some(text), false) => Body::Text(text),
        (Some(encoded), true) => match base64::engine::general_purpose::STANDARD.decode(encoded) {
            Ok(bytes) => Body::Binary(bytes),
            Err(_) => {
                undecodable = true;
                Body::Empty
            }
        },
    };
    let mut request = Request::new(body);
    *request.method_mut() = parts.method;
    *request.uri_mut() = build_uri(&parts.path, &parts.query);
    *request.headers_mut() = parts.headers;
    if undecodable {
        request.extensions_mut().insert(BodyFault::NotBase64);
    }
    request
}

/// A reply of the event's shape with the fields every shape shares set; `$headers` names the headers field.
macro_rules! reply {
    ($shape:ident, $headers:ident, $status:expr, $headers_value:expr, $body:expr, $base64:expr) => {{
        let mut reply = $shape::default();
        reply.status_code = i64::from($status.as_u16());
        reply.$headers = $headers_value;
        reply.body = $body;
        reply.is_base64_encoded = $base64;
        reply
    }};
}

fn into_reply(source: Source, response: Response<Body>) -> Reply {
    let (parts, body) = response.into_parts();
    let (base64, body) = match body {
        Body::Empty => (false, None),
        Body::Text(text) => (false, Some(Body::Text(text))),
        // Binary bodies are base64-encoded by aws_lambda_events' serialiser.
        other => (true, Some(other)),
    };
    let status = parts.status;
    match source {
        Source::HttpApi => {
            Reply::HttpApi(reply!(ApiGatewayV2httpResponse, headers, status, parts.headers, body, base64))
        }
        // REST merges `headers` into `multiValueHeaders`; setting only the latter avoids duplicates.
        Source::Rest => {
            Reply::Rest(reply!(ApiGatewayProxyResponse, multi_value_headers, status, parts.headers, body, base64))
        }
        // `headers` works whether or not the target group has multi-value headers switched on.
        Source::Alb => {
            let mut reply = reply!(AlbTargetGroupResponse, headers, status, parts.headers, body, base64);
            reply.status_description =
                Some(format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or_default()));
            Reply::Alb(reply)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_are_stripped_only_as_a_whole_segment() {
        assert_eq!(strip_stage("/prod/webhook", "prod"), "/webhook");
        assert_eq!(strip_stage("/prod", "prod"), "/");
        assert_eq!(strip_stage("/production/webhook", "prod"), "/production/webhook");
        assert_eq!(strip_stage("/webhook", "prod"), "/webhook");
    }

    #[test]
    fn any_path_and_query_become_a_uri() {
        assert_eq!(build_uri("/messages", "from=+1&q=a%20b"), "/messages?from=+1&q=a%20b");
        assert_eq!(build_uri("webhook", ""), "/webhook");
        let odd = build_uri("/a b/ü\"<>", "q=x y&z=\u{7f}#frag");
        assert_eq!(odd.path(), "/a%20b/%C3%BC%22%3C%3E");
        assert_eq!(odd.query(), Some("q=x%20y&z=%7F%23frag"));
        assert_eq!(build_uri("", "").path(), "/");
    }
}
