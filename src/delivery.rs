//! What a delivery (`POST /webhook`, `POST /webhook/whatsapp`) came to, in one place: each kind of delivery
//! makes its [`Outcome`] (the response, and what the access log and the metrics say of it), and the handler
//! records it without knowing how messages are stored.

use lambda_http::{Body, Response};
use serde::Serialize;

use crate::config::LogLevel;
use crate::error::ApiError;
use crate::store::Inserted;

/// A delivery's answer and how it came about.
pub struct Outcome {
    pub response: Response<Body>,
    pub result: WebhookResult,
    /// `POST /webhook`: whether the message was stored before.
    pub dup: Option<bool>,
    /// `POST /webhook`: the message's id, once its body parsed as a valid message.
    pub message_id: Option<String>,
    /// `POST /webhook/whatsapp`: what became of the delivery's messages and statuses.
    pub messages: Option<Tally>,
    /// Why it failed on the server side (5xx), for the log only.
    pub cause: Option<String>,
}

impl Outcome {
    /// A delivery refused or failed with `error`, before anything of it is known.
    pub fn failed(error: ApiError) -> Outcome {
        Outcome {
            result: WebhookResult::of(&error),
            cause: error.cause(),
            response: error.into_response(),
            dup: None,
            message_id: None,
            messages: None,
        }
    }

    /// Its access-log line's level: an invalid signature (SPEC §5: it may be an attack, or a misconfigured
    /// secret) and a server error at ERROR, skipped WhatsApp messages or statuses at WARN, the rest at INFO.
    pub fn level(&self) -> LogLevel {
        if self.response.status().is_server_error() || self.result == WebhookResult::InvalidSignature {
            LogLevel::Error
        } else if self.messages.as_ref().is_some_and(|tally| tally.messages.skipped + tally.statuses.skipped > 0) {
            LogLevel::Warn
        } else {
            LogLevel::Info
        }
    }
}

/// What a `POST /webhook` came to: the `result` of its access-log line and of `webhook_requests_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookResult {
    Created,
    Duplicate,
    InvalidSignature,
    ValidationError,
    PayloadTooLarge,
    NotConfigured,
    /// Broken in transport: an undecodable base64 body, or one not received in time.
    BadRequest,
    /// A database fault.
    Error,
    /// A WhatsApp delivery with nothing to store: other fields, or only skipped messages and statuses.
    NoMessages,
}

impl WebhookResult {
    /// The result a delivery that failed with `error` counts as.
    fn of(error: &ApiError) -> WebhookResult {
        match error {
            ApiError::BadRequest(_) | ApiError::BodyTimeout => WebhookResult::BadRequest,
            ApiError::PayloadTooLarge => WebhookResult::PayloadTooLarge,
            ApiError::NotConfigured(_) => WebhookResult::NotConfigured,
            ApiError::InvalidSignature => WebhookResult::InvalidSignature,
            ApiError::Validation(_) => WebhookResult::ValidationError,
            ApiError::StoreUnavailable(_) | ApiError::Store(_) => WebhookResult::Error,
            // No delivery ends in these (they are answered before a route, or on other routes); were one
            // to, a fault is the safe reading.
            ApiError::NotFound
            | ApiError::MethodNotAllowed(_)
            | ApiError::Unauthorized
            | ApiError::HeadersTooLarge
            | ApiError::VerificationFailed
            | ApiError::NotReady { .. } => WebhookResult::Error,
        }
    }

    pub const ALL: [WebhookResult; 9] = [
        WebhookResult::Created,
        WebhookResult::Duplicate,
        WebhookResult::InvalidSignature,
        WebhookResult::ValidationError,
        WebhookResult::PayloadTooLarge,
        WebhookResult::NotConfigured,
        WebhookResult::BadRequest,
        WebhookResult::Error,
        WebhookResult::NoMessages,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WebhookResult::Created => "created",
            WebhookResult::Duplicate => "duplicate",
            WebhookResult::InvalidSignature => "invalid_signature",
            WebhookResult::ValidationError => "validation_error",
            WebhookResult::PayloadTooLarge => "payload_too_large",
            WebhookResult::NotConfigured => "not_configured",
            WebhookResult::BadRequest => "bad_request",
            WebhookResult::Error => "error",
            WebhookResult::NoMessages => "no_messages",
        }
    }

    /// Counted from the start, at zero, so a dashboard sees them before the first delivery; the rarer
    /// transport and database outcomes, and WhatsApp's own, appear when they first happen.
    pub fn counted_from_start(self) -> bool {
        !matches!(self, WebhookResult::BadRequest | WebhookResult::Error | WebhookResult::NoMessages)
    }
}

/// What a WhatsApp delivery's messages and statuses came to: the answer's counts, and the access log's and
/// metrics'.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    #[serde(flatten)]
    pub messages: Counts,
    pub statuses: Counts,
    /// Why the first few skipped messages were skipped.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skips: Vec<Skipped>,
    /// Why the first few skipped statuses were skipped.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub status_skips: Vec<Skipped>,
}

impl Tally {
    /// `created` when anything was stored, `duplicate` when all of it was stored before, and `no_messages`
    /// when there was nothing to store.
    pub fn result(&self) -> WebhookResult {
        let (messages, statuses) = (&self.messages, &self.statuses);
        if messages.created + statuses.created > 0 {
            WebhookResult::Created
        } else if messages.duplicate + statuses.duplicate > 0 {
            WebhookResult::Duplicate
        } else {
            WebhookResult::NoMessages
        }
    }
}

/// How many of a delivery's messages (or statuses) were stored, had been stored before, or were skipped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub created: u64,
    pub duplicate: u64,
    pub skipped: u64,
}

impl Counts {
    /// The counts of `outcomes`, and of `skipped` left out before storing.
    pub fn of(outcomes: &[Inserted], skipped: usize) -> Counts {
        let created = outcomes.iter().filter(|o| **o == Inserted::Created).count() as u64;
        Counts { created, duplicate: outcomes.len() as u64 - created, skipped: skipped as u64 }
    }
}

/// A message left out of a delivery because no retry could make it storable, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    pub reason: &'static str,
}

impl Serialize for WebhookResult {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::FieldError;
    use crate::store::StoreError;

    #[test]
    fn a_delivery_is_logged_at_error_only_for_a_forged_signature_or_a_fault() {
        let invalid = FieldError::new(["body", "ts"], "value_error", "bad");
        let failed = |error| Outcome::failed(error).level();
        assert_eq!(failed(ApiError::InvalidSignature), LogLevel::Error);
        assert_eq!(failed(ApiError::Store(StoreError::WriterStopped)), LogLevel::Error);
        assert_eq!(failed(ApiError::Validation(vec![invalid])), LogLevel::Info);
        assert_eq!(failed(ApiError::PayloadTooLarge), LogLevel::Info);
        let delivered = |skipped| Outcome {
            messages: Some(Tally { statuses: Counts { skipped, ..Counts::default() }, ..Tally::default() }),
            ..Outcome::failed(ApiError::PayloadTooLarge)
        };
        assert_eq!(delivered(1).level(), LogLevel::Warn);
        assert_eq!(delivered(0).level(), LogLevel::Info);
    }
}
