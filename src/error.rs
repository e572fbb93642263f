//! Every failure a request can meet, and the one place that turns each into its HTTP answer.

use lambda_http::http::{header, StatusCode};
use lambda_http::{Body, Response};
use serde::Serialize;

use crate::message::FieldError;
use crate::store::StoreError;

#[derive(Debug)]
pub enum ApiError {
    /// The request itself is malformed in transport (not in content), e.g. an undecodable base64 body.
    BadRequest(&'static str),
    NotFound,
    /// The path exists but not for this method; carries the `Allow` header value.
    MethodNotAllowed(&'static str),
    PayloadTooLarge,
    /// The body did not arrive within the local listener's time limit.
    BodyTimeout,
    /// A key or token a route needs is not configured; says which.
    NotConfigured(&'static str),
    InvalidSignature,
    /// A WhatsApp subscription handshake with the wrong (or no) verify token or mode.
    VerificationFailed,
    /// `READ_API_TOKEN` is set and the request does not carry it.
    Unauthorized,
    /// More or larger request headers than the local listener accepts.
    HeadersTooLarge,
    Validation(Vec<FieldError>),
    /// The database could not be opened or reached.
    StoreUnavailable(StoreError),
    /// Any other database fault.
    Store(StoreError),
    /// `/health/ready` is not: a fixed reason per kind of failure, anyone may read; the cause, for the log.
    NotReady {
        reason: &'static str,
        cause: Option<String>,
    },
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Open(_) | StoreError::WriterStopped | StoreError::Displaced(_) | StoreError::TimedOut(_) => {
                ApiError::StoreUnavailable(e)
            }
            #[cfg(feature = "remote")]
            StoreError::Server(ref server) if server.is_unavailable() => ApiError::StoreUnavailable(e),
            _ => ApiError::Store(e),
        }
    }
}

impl ApiError {
    /// Not ready because the store failed as `e`. The reason names the kind of failure only: readiness is
    /// open to anyone, and the error's text may hold a file path, a server's host or its reply.
    pub fn not_ready(e: StoreError) -> ApiError {
        let reason = match &e {
            StoreError::Open(_) | StoreError::WriterStopped => "database unavailable",
            StoreError::Displaced(_) => "database file missing or replaced",
            StoreError::TimedOut(_) => "database did not answer in time",
            StoreError::Write(_) => "database write failed",
            #[cfg(feature = "remote")]
            StoreError::Server(server) if server.is_unavailable() => "database unavailable",
            _ => "database error",
        };
        ApiError::NotReady { reason, cause: Some(e.to_string()) }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::NotConfigured(_) | ApiError::StoreUnavailable(_) | ApiError::NotReady { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::VerificationFailed => StatusCode::FORBIDDEN,
            ApiError::InvalidSignature | ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The server-side cause, for the log only: clients see just "internal error".
    pub fn cause(&self) -> Option<String> {
        match self {
            ApiError::StoreUnavailable(e) | ApiError::Store(e) => Some(e.to_string()),
            ApiError::NotReady { cause, .. } => cause.clone(),
            _ => None,
        }
    }

    pub fn into_response(self) -> Response<Body> {
        #[derive(Serialize)]
        struct Detail<T> {
            detail: T,
        }
        #[derive(Serialize)]
        struct NotReady {
            status: &'static str,
            reason: &'static str,
        }
        let status = self.status();
        let body = match &self {
            ApiError::BadRequest(detail) => json(&Detail { detail }),
            ApiError::NotFound => json(&Detail { detail: "not found" }),
            ApiError::MethodNotAllowed(_) => json(&Detail { detail: "method not allowed" }),
            ApiError::PayloadTooLarge => json(&Detail { detail: "payload too large" }),
            ApiError::BodyTimeout => json(&Detail { detail: "request body not received in time" }),
            ApiError::NotConfigured(detail) => json(&Detail { detail }),
            ApiError::InvalidSignature => json(&Detail { detail: "invalid signature" }),
            ApiError::VerificationFailed => json(&Detail { detail: "verification failed" }),
            ApiError::Unauthorized => json(&Detail { detail: "missing or invalid bearer token" }),
            ApiError::HeadersTooLarge => json(&Detail { detail: "request headers too large" }),
            ApiError::Validation(errors) => json(&Detail { detail: errors }),
            ApiError::StoreUnavailable(_) | ApiError::Store(_) => json(&Detail { detail: "internal error" }),
            ApiError::NotReady { reason, .. } => json(&NotReady { status: "not_ready", reason }),
        };
        let mut response = json_response(status, body);
        match self {
            ApiError::MethodNotAllowed(allow) => {
                response.headers_mut().insert(header::ALLOW, header::HeaderValue::from_static(allow));
            }
            ApiError::Unauthorized => {
                response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}

/// Serialises a response body. Our bodies are plain data, so this cannot fail.
pub fn json(value: &impl Serialize) -> String {
    serde_json::to_string(value).expect("response bodies serialise")
}

pub fn json_response(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(Body::Text(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    response
}
