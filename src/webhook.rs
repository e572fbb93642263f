//! `POST /webhook`: the checks of SPEC §2 in their fixed order, then the exactly-once store.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};

use crate::error::{json_response, ApiError};
use crate::lambda::UndecodableBody;
use crate::message::Message;
use crate::store::Inserted;
use crate::App;

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

    pub fn result(&self) -> Option<&'static str> {
        match &self.outcome {
            Ok(Inserted::Created) => Some("created"),
            Ok(Inserted::Duplicate) => Some("duplicate"),
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

/// Marks a request whose body the local listener refused to read because it exceeds the limit.
#[derive(Debug, Clone, Copy)]
pub struct Oversized;

pub async fn receive(app: &App, req: &Request) -> Delivery {
    // 0. A body flagged base64 that does not decode never reached us intact (Lambda only).
    if req.extensions().get::<UndecodableBody>().is_some() {
        return Delivery::failed(ApiError::BadRequest("body is not valid base64"));
    }
    let body: &[u8] = req.body().as_ref();
    // 1. Size. The local listener stops reading at the limit and marks the request; on Lambda the event
    //    arrives whole, so the length is checked here.
    if body.len() > app.max_body_bytes || req.extensions().get::<Oversized>().is_some() {
        return Delivery::failed(ApiError::PayloadTooLarge);
    }
    // 2. A service without a secret cannot tell real deliveries from forged ones.
    if app.verifier.is_empty() {
        return Delivery::failed(ApiError::SecretNotConfigured);
    }
    // 3. The signature, over the exact raw bytes, before anything is parsed.
    let signature = req.headers().get("x-signature").map(|v| v.as_bytes()).unwrap_or_default();
    if !app.verifier.verify(signature, body) {
        return Delivery::failed(ApiError::InvalidSignature);
    }
    // 4. Parse and validate.
    let message = match Message::parse(body) {
        Ok(message) => message,
        Err(errors) => return Delivery::failed(ApiError::Validation(errors)),
    };
    // 5. Store; answered only after the commit is durable.
    let message_id = Some(message.message_id.clone());
    let outcome = match app.store().await {
        Ok(store) => store.insert(message).await.map_err(ApiError::from),
        Err(e) => Err(ApiError::from(e)),
    };
    Delivery { outcome, message_id }
}
