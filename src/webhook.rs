//! `POST /webhook`: the checks of SPEC §2 in their fixed order, then the exactly-once store.

use lambda_http::http::StatusCode;
use lambda_http::Request;

use crate::app::App;
use crate::delivery::{Outcome, WebhookResult};
use crate::error::{json_response, ApiError};
use crate::message::Message;
use crate::signature::Verifier;
use crate::store::Inserted;
use crate::transport::intact_body;

/// Answers one delivery, and says what it came to for the access log and the metrics.
pub async fn receive(app: &App, req: &Request) -> Outcome {
    // Every line of this route says whether the message was a duplicate, a refused one too.
    let failed = |error| Outcome { dup: Some(false), ..Outcome::failed(error) };
    let body = match intact_body(req, app.max_body_bytes) {
        Ok(body) => body,
        Err(error) => return failed(error),
    };
    // 2 to 4. Secret, signature, then parse and validate.
    let signature = req.headers().get("x-signature").map(|v| v.as_bytes()).unwrap_or_default();
    let message = match admit(&app.verifier, signature, body) {
        Ok(message) => message,
        Err(error) => return failed(error),
    };
    // 5. Store; answered only after the commit is durable.
    let message_id = Some(message.message_id.clone());
    let stored = match app.store().await {
        Ok(store) => store.insert(message).await.map_err(ApiError::from),
        Err(e) => Err(ApiError::from(e)),
    };
    match stored {
        // Created and duplicate answer alike: a provider retrying a delivery must not see an error.
        Ok(inserted) => Outcome {
            response: json_response(StatusCode::OK, r#"{"status":"ok"}"#.to_owned()),
            result: match inserted {
                Inserted::Created => WebhookResult::Created,
                Inserted::Duplicate => WebhookResult::Duplicate,
            },
            dup: Some(inserted == Inserted::Duplicate),
            message_id,
            messages: None,
            cause: None,
        },
        Err(error) => Outcome { message_id, ..failed(error) },
    }
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
