//! `POST /webhook`: the checks of SPEC §2 in their fixed order, then the exactly-once store.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};

use crate::app::App;
use crate::error::{json_response, ApiError};
use crate::message::Message;
use crate::signature::Verifier;
use crate::store::Inserted;
use crate::telemetry::WebhookResult;
use crate::transport::intact_body;

/// What a delivery came to, for the response, the access log and the metrics.
pub struct Delivery {
    pub outcome: Result<Inserted, ApiError>,
    /// Present once the body parsed as a valid message.
    pub message_id: Option<String>,
}

impl Delivery {
    fn failed(error: ApiError) -> Delivery {
        Delivery { outcome: Err(error), message_id: None }
    }

    pub fn result(&self) -> Option<WebhookResult> {
        match &self.outcome {
            Ok(Inserted::Created) => Some(WebhookResult::Created),
            Ok(Inserted::Duplicate) => Some(WebhookResult::Duplicate),
            Err(e) => e.webhook_result(),
        }
    }

    pub fn into_response(self) -> Response<Body> {
        match self.outcome {
            // Created and duplicate answer alike: a provider retrying a delivery must not see an error.
            Ok(_) => json_response(StatusCode::OK, r#"{"status":"ok"}"#.to_owned()),
            Err(e) => e.into_response(),
        }
    }
}

pub async fn receive(app: &App, req: &Request) -> Delivery {
    let body = match intact_body(req, app.max_body_bytes) {
        Ok(body) => body,
        Err(error) => return Delivery::failed(error),
    };
    // 2 to 4. Secret, signature, then parse and validate.
    let signature = req.headers().get("x-signature").map(|v| v.as_bytes()).unwrap_or_default();
    let message = match admit(&app.verifier, signature, body) {
        Ok(message) => message,
        Err(error) => return Delivery::failed(error),
    };
    // 5. Store; answered only after the commit is durable.
    let message_id = Some(message.message_id.clone());
    let outcome = match app.store().await {
        Ok(store) => store.insert(message).await.map_err(ApiError::from),
        Err(e) => Err(ApiError::from(e)),
    };
    Delivery { outcome, message_id }
}

/// Checks 2 to 4 of SPEC §2 on a body of acceptable size: a secret is configured, `signature` is the
/// HMAC of the exact raw bytes, and the bytes are a valid message. Pure, so the fuzzer can drive it.
pub fn admit(verifier: &Verifier, signature: &[u8], body: &[u8]) -> Result<Message, ApiError> {
    // A service without a secret cannot tell real deliveries from forged ones.
    if verifier.is_empty() {
        return Err(ApiError::NotConfigured("webhook secret not configured"));
    }
    // The signature is checked before anything is parsed.
    if !verifier.verify(signature, body) {
        return Err(ApiError::InvalidSignature);
    }
    Message::parse(body).map_err(ApiError::Validation)
}
