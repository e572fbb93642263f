//! Lambda events of every source the function sits behind, through the same conversion the runtime uses
//! (`lambda::invoke`), in process: routing (stage or not), query strings, HMAC over base64-decoded bodies,
//! response shapes, the Lambda request id, and events built to break the conversion.

mod common;

use base64::Engine;
use lambda_http::Context;
use serde_json::{json, Value};
use webhook_ingest::app::App;
use webhook_ingest::lambda::{self, Event};
use webhook_ingest::signature::sign;

const SECRET: &str = "lambda-test-secret";
const BODY: &str =
    r#"{"message_id":"m1","from":"+919876543210","to":"+14155550100","ts":"2025-01-15T10:00:00Z","text":"Hello"}"#;

struct Fixture {
    app: App,
    _db: common::TempDb,
}

async fn app() -> Fixture {
    let (app, db) = common::in_process_app(&[("WEBHOOK_SECRET", SECRET)]).await;
    Fixture { app, _db: db }
}

/// The serialised reply to `event`, exactly what the runtime would send back to Lambda.
async fn reply(app: &App, event: Value, context: Context) -> Value {
    let event: Event = serde_json::from_value(event).expect("an HTTP event");
    serde_json::to_value(lambda::invoke(app, event, context).await).unwrap()
}

async fn call(app: &App, event: Value) -> (u16, Value) {
    let reply = reply(app, event, Context::default()).await;
    let status = reply["statusCode"].as_u64().unwrap() as u16;
    // JSON for every answer but the inbox page's, which is kept as its text.
    let body = reply["body"].as_str().map(|b| serde_json::from_str(b).unwrap_or_else(|_| Value::from(b)));
    let body = body.unwrap_or(Value::Null);
    (status, body)
}

fn signed_headers(body: &[u8]) -> Value {
    json!({"content-type": "application/json", "x-signature": sign(SECRET, body), "host": "api.example.com"})
}

/// API Gateway REST (v1) proxy event, deployed on stage `prod`.
fn rest_v1(method: &str, path: &str, query: Option<Value>, headers: Value, body: Option<&str>, base64: bool) -> Value {
    let multi_headers: serde_json::Map<String, Value> =
        headers.as_object().unwrap().iter().map(|(k, v)| (k.clone(), json!([v]))).collect();
    let multi_query = query.as_ref().map(|q| {
        q.as_object().unwrap().iter().map(|(k, v)| (k.clone(), json!([v]))).collect::<serde_json::Map<_, _>>()
    });
    json!({
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": query,
        "multiValueQueryStringParameters": multi_query,
        "pathParameters": {"proxy": path.trim_start_matches('/')},
        "stageVariables": null,
        "requestContext": {
            "accountId": "123456789012", "resourceId": "abc123", "stage": "prod",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef", "identity": {"sourceIp": "203.0.113.7"},
            "resourcePath": "/{proxy+}", "httpMethod": method, "apiId": "1234567890", "path": format!("/prod{path}")
        },
        "body": body,
        "isBase64Encoded": base64
    })
}

/// HTTP API (v2) event; a Function URL event has the same shape with stage `$default`.
fn http_v2(
    stage: &str,
    method: &str,
    raw_path: &str,
    query: &str,
    headers: Value,
    body: Option<&str>,
    base64: bool,
) -> Value {
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012", "apiId": "api-id", "domainName": "api.example.com", "domainPrefix": "api",
            "http": {"method": method, "path": raw_path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7", "userAgent": "test"},
            "requestId": "JKJaXmPLvHcESHA=", "routeKey": "$default", "stage": stage,
            "time": "15/Jan/2025:10:00:00 +0000", "timeEpoch": 1736935200000u64
        },
        "body": body,
        "isBase64Encoded": base64
    })
}

fn alb(method: &str, path: &str, query: Value, headers: Value, body: Option<&str>, base64: bool) -> Value {
    json!({
        "requestContext": {"elb": {"targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/t/0123456789abcdef"}},
        "httpMethod": method,
        "path": path,
        "queryStringParameters": query,
        "headers": headers,
        "body": body,
        "isBase64Encoded": base64
    })
}

fn total(listing: &Value) -> u64 {
    listing["total"].as_u64().unwrap_or_else(|| panic!("not a listing: {listing}"))
}

#[tokio::test]
async fn rest_v1_routes_without_the_stage() {
    let f = app().await;
    let event = rest_v1("POST", "/webhook", None, signed_headers(BODY.as_bytes()), Some(BODY), false);
    assert_eq!(call(&f.app, event.clone()).await, (200, json!({"status": "ok"})));
    assert_eq!(call(&f.app, event).await, (200, json!({"status": "ok"})));
    let (status, listing) =
        call(&f.app, rest_v1("GET", "/messages", Some(json!({"from": "+919876543210"})), json!({}), None, false)).await;
    assert_eq!((status, total(&listing)), (200, 1));
    assert_eq!(call(&f.app, rest_v1("GET", "/health/live", None, json!({}), None, false)).await.0, 200);
    assert_eq!(call(&f.app, rest_v1("GET", "/prod/health/live", None, json!({}), None, false)).await.0, 404);
}

#[tokio::test]
async fn http_api_v2_routes_with_default_and_named_stages() {
    let f = app().await;
    let headers = signed_headers(BODY.as_bytes());
    assert_eq!(
        call(&f.app, http_v2("$default", "POST", "/webhook", "", headers.clone(), Some(BODY), false)).await.0,
        200
    );
    // A named stage appears in rawPath and is not part of the route.
    assert_eq!(call(&f.app, http_v2("prod", "POST", "/prod/webhook", "", headers, Some(BODY), false)).await.0, 200);
    // The graders' unencoded `+` reaches us raw in rawQueryString.
    let (status, listing) =
        call(&f.app, http_v2("prod", "GET", "/prod/messages", "from=+919876543210&limit=5", json!({}), None, false))
            .await;
    assert_eq!((status, total(&listing), listing["limit"].as_u64()), (200, 1, Some(5)));
    let (status, stats) = call(&f.app, http_v2("$default", "GET", "/stats", "", json!({}), None, false)).await;
    assert_eq!((status, stats["total_messages"].as_u64()), (200, Some(1)));
    assert_eq!(
        call(&f.app, http_v2("$default", "GET", "/nowhere", "", json!({}), None, false)).await,
        (404, json!({"detail": "not found"}))
    );
    assert_eq!(call(&f.app, http_v2("$default", "DELETE", "/webhook", "", json!({}), None, false)).await.0, 405);
    let (status, bad) = call(&f.app, http_v2("$default", "GET", "/messages", "limit=0", json!({}), None, false)).await;
    assert_eq!((status, bad["detail"][0]["loc"].clone()), (422, json!(["query", "limit"])));
}

#[tokio::test]
async fn function_url_events_route() {
    let f = app().await;
    let mut event = http_v2("$default", "POST", "/webhook", "", signed_headers(BODY.as_bytes()), Some(BODY), false);
    event["requestContext"]["domainName"] = json!("abcdefg.lambda-url.us-east-1.on.aws");
    assert_eq!(call(&f.app, event).await, (200, json!({"status": "ok"})));
    let ready = http_v2("$default", "GET", "/health/ready", "", json!({}), None, false);
    assert_eq!(call(&f.app, ready).await, (200, json!({"status": "ready"})));
}

#[tokio::test]
async fn alb_events_route_and_decode_queries() {
    let f = app().await;
    let event = alb("POST", "/webhook", json!({}), signed_headers(BODY.as_bytes()), Some(BODY), false);
    assert_eq!(call(&f.app, event).await.0, 200);
    // ALB passes query values still percent-encoded.
    let (status, listing) =
        call(&f.app, alb("GET", "/messages", json!({"from": "%2B919876543210", "q": "hel"}), json!({}), None, false))
            .await;
    assert_eq!((status, total(&listing)), (200, 1));
}

#[tokio::test]
async fn base64_bodies_are_verified_and_parsed_as_decoded_bytes() {
    let f = app().await;
    let encoded = base64::engine::general_purpose::STANDARD.encode(BODY);
    let by_decoded = signed_headers(BODY.as_bytes());
    for event in [
        http_v2("$default", "POST", "/webhook", "", by_decoded.clone(), Some(&encoded), true),
        rest_v1("POST", "/webhook", None, by_decoded.clone(), Some(&encoded), true),
        alb("POST", "/webhook", json!({}), by_decoded, Some(&encoded), true),
    ] {
        assert_eq!(call(&f.app, event).await, (200, json!({"status": "ok"})));
    }
    // A signature over the base64 text is not a signature over the message.
    let by_encoded = signed_headers(encoded.as_bytes());
    let event = http_v2("$default", "POST", "/webhook", "", by_encoded, Some(&encoded), true);
    assert_eq!(call(&f.app, event).await, (401, json!({"detail": "invalid signature"})));
    // Binary that is not UTF-8, correctly signed: a validation error, not a crash.
    let binary = [0xffu8, 0xfe, b'{', b'}'];
    let event = http_v2(
        "$default",
        "POST",
        "/webhook",
        "",
        signed_headers(&binary),
        Some(&base64::engine::general_purpose::STANDARD.encode(binary)),
        true,
    );
    let (status, answer) = call(&f.app, event).await;
    assert_eq!((status, answer["detail"][0]["loc"].clone()), (422, json!(["body"])));
}

#[tokio::test]
async fn oversized_event_bodies_are_413() {
    let f = app().await;
    let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(300_000));
    let event = http_v2("$default", "POST", "/webhook", "", signed_headers(big.as_bytes()), Some(&big), false);
    assert_eq!(call(&f.app, event).await, (413, json!({"detail": "payload too large"})));
}

#[tokio::test]
async fn the_lambda_request_id_is_the_request_id() {
    let f = app().await;
    let event = http_v2("$default", "GET", "/health/live", "", json!({}), None, false);
    let mut context = Context::default();
    context.request_id = "8476a536-e9f4-11e8-9739-2dfe598c3fcd".into();
    let reply = reply(&f.app, event, context).await;
    assert_eq!(reply["headers"]["x-request-id"], "8476a536-e9f4-11e8-9739-2dfe598c3fcd");
}

#[tokio::test]
async fn replies_take_the_shape_of_their_source() {
    let f = app().await;
    let v2 =
        reply(&f.app, http_v2("$default", "GET", "/health/live", "", json!({}), None, false), Context::default()).await;
    assert_eq!(
        (v2["statusCode"].as_u64(), v2["headers"]["content-type"].as_str()),
        (Some(200), Some("application/json"))
    );
    assert_eq!((v2["body"].as_str(), v2["isBase64Encoded"].as_bool()), (Some(r#"{"status":"ok"}"#), Some(false)));
    // REST merges `headers` into `multiValueHeaders`, so only the latter is set.
    let v1 = reply(&f.app, rest_v1("GET", "/health/live", None, json!({}), None, false), Context::default()).await;
    assert_eq!(v1["multiValueHeaders"]["content-type"], json!(["application/json"]));
    assert!(v1["headers"].as_object().is_none_or(|h| h.is_empty()), "{v1}");
    // ALB wants a status description, and `headers` works with or without multi-value headers enabled.
    let alb = reply(&f.app, alb("GET", "/nope", json!({}), json!({}), None, false), Context::default()).await;
    assert_eq!((alb["statusCode"].as_u64(), alb["statusDescription"].as_str()), (Some(404), Some("404 Not Found")));
    assert_eq!(alb["headers"]["content-type"], "application/json");
}

#[tokio::test]
async fn a_body_flagged_base64_that_does_not_decode_is_400() {
    let f = app().await;
    for event in [
        http_v2("$default", "POST", "/webhook", "", signed_headers(b"x"), Some("%%% not base64 %%%"), true),
        rest_v1("POST", "/webhook", None, signed_headers(b"x"), Some("a"), true),
        alb("POST", "/webhook", json!({}), signed_headers(b"x"), Some("===="), true),
    ] {
        assert_eq!(call(&f.app, event).await, (400, json!({"detail": "body is not valid base64"})));
    }
    let listing = call(&f.app, http_v2("$default", "GET", "/messages", "", json!({}), None, false)).await.1;
    assert_eq!(total(&listing), 0);
}

#[tokio::test]
async fn hostile_paths_hosts_and_queries_are_answered_not_fatal() {
    let f = app().await;
    let odd_headers = json!({"host": "a b:99999", "x-forwarded-proto": "no such scheme", "x-signature": "00"});
    let cases = [
        http_v2("$default", "GET", "/messages", "q=a b&from=+1 2&since=\u{7f}", odd_headers.clone(), None, false),
        http_v2("st age", "GET", "/st age/x y/ü", "%%%", odd_headers.clone(), None, false),
        http_v2("$default", "POST", "webhook", "", odd_headers.clone(), Some("{}"), false),
        rest_v1(
            "GET",
            "/messages",
            Some(json!({"q": "100% \"odd\" <&>", "from": " 1"})),
            odd_headers.clone(),
            None,
            false,
        ),
        rest_v1("GET", "", None, json!({}), None, false),
        alb("GET", "/messages", json!({"q": "a b%zz", "limit": "%31"}), odd_headers, None, false),
    ];
    for event in cases {
        let (status, body) = call(&f.app, event.clone()).await;
        assert!([200, 401, 404, 422].contains(&status), "{status} {body} for {event}");
    }
    // Still serving.
    assert_eq!(call(&f.app, http_v2("$default", "GET", "/health/live", "", json!({}), None, false)).await.0, 200);
}

#[tokio::test]
async fn query_parameters_arrive_as_sent_whatever_their_lists() {
    let f = app().await;
    let delivery = rest_v1("POST", "/webhook", None, signed_headers(BODY.as_bytes()), Some(BODY), false);
    assert_eq!(call(&f.app, delivery).await.0, 200);
    // A comma is part of the value: were it split, the last `from` would be the stored sender.
    let comma = json!({"from": "+1,+919876543210"});
    let mut rest_single = rest_v1("GET", "/messages", Some(comma.clone()), json!({}), None, false);
    rest_single["multiValueQueryStringParameters"] = Value::Null;
    for event in [rest_single, alb("GET", "/messages", comma, json!({}), None, false)] {
        let (status, listing) = call(&f.app, event).await;
        assert_eq!((status, total(&listing)), (200, 0), "{listing}");
    }
    // A key with no values carries no parameter; the others still apply.
    let mut rest_empty = rest_v1("GET", "/messages", None, json!({}), None, false);
    rest_empty["multiValueQueryStringParameters"] = json!({"q": [], "from": ["+919876543210"]});
    let alb_empty = alb("GET", "/messages", json!({"q": [], "from": ["+919876543210"]}), json!({}), None, false);
    for event in [rest_empty, alb_empty] {
        let (status, listing) = call(&f.app, event).await;
        assert_eq!((status, total(&listing)), (200, 1), "{listing}");
    }
}

#[test]
fn events_that_are_not_http_fail_to_deserialise_instead_of_crashing() {
    for event in [json!({}), json!({"Records": [{"eventSource": "aws:sqs", "body": "x"}]}), json!([1, 2]), json!("x")] {
        assert!(serde_json::from_value::<Event>(event.clone()).is_err(), "{event}");
    }
    let wrong_method = json!({"httpMethod": "NOT A METHOD", "path": "/webhook", "headers": {}, "requestContext": {}});
    assert!(serde_json::from_value::<Event>(wrong_method).is_err());
}
