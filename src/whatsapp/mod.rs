//! Meta's WhatsApp Business Cloud API, received directly: `GET /webhook/whatsapp` answers the subscription
//! handshake ([`handshake`]); `POST /webhook/whatsapp` stores every message and delivery status of a signed
//! delivery ([`payload`] maps them) exactly once, all in one commit, with `POST /webhook`'s order of checks.

mod handshake;
pub mod payload;

use lambda_http::http::StatusCode;
use lambda_http::Request;
use serde::Serialize;

use crate::app::App;
use crate::delivery::{Counts, Outcome, Tally};
use crate::error::{json, json_response, ApiError};
use crate::signature::Verifier;
use crate::store::{Delivery, Stored};
use crate::transport::intact_body;
use payload::Mapped;

pub use handshake::handshake;

/// Skipped messages (and statuses) whose reasons the log line lists, at most: one delivery may hold thousands, and the line
/// must stay a line. `skipped` counts them all.
const SKIPS_LOGGED: usize = 10;

/// Answers one delivery, and says what it came to for the access log and the metrics ([`Tally::result`]).
pub async fn receive(app: &App, req: &Request) -> Outcome {
    #[derive(Serialize)]
    struct Answer<'a> {
        status: &'static str,
        #[serde(flatten)]
        messages: &'a Counts,
        statuses: &'a Counts,
    }
    match store(app, req).await {
        Ok(tally) => {
            let answer = Answer { status: "ok", messages: &tally.messages, statuses: &tally.statuses };
            let response = json_response(StatusCode::OK, json(&answer));
            Outcome {
                response,
                result: tally.result(),
                dup: None,
                message_id: None,
                messages: Some(tally),
                cause: None,
            }
        }
        Err(error) => Outcome::failed(error),
    }
}

async fn store(app: &App, req: &Request) -> Result<Tally, ApiError> {
    let body = intact_body(req, app.max_body_bytes)?;
    let signature = req.headers().get("x-hub-signature-256").map(|v| v.as_bytes()).unwrap_or_default();
    let Mapped { messages, skipped, statuses, skipped_statuses } = admit(&app.whatsapp, signature, body)?;
    // Other changes carry nothing: nothing to commit, and nothing to wait for.
    let stored = match messages.is_empty() && statuses.is_empty() {
        true => Stored::default(),
        false => app.store().await?.store(Delivery { messages, statuses }).await?,
    };
    Ok(Tally {
        messages: Counts::of(&stored.messages, skipped.len()),
        statuses: Counts::of(&stored.statuses, skipped_statuses.len()),
        skips: skipped.into_iter().take(SKIPS_LOGGED).collect(),
        status_skips: skipped_statuses.into_iter().take(SKIPS_LOGGED).collect(),
    })
}

/// `POST /webhook`'s checks 2 to 4 for a Cloud API delivery: an app secret is configured, the
/// `X-Hub-Signature-256` header is `sha256=` and the HMAC of the exact raw bytes, and the bytes are a
/// delivery. Pure, so the fuzzer can drive it.
pub fn admit(verifier: &Verifier, signature: &[u8], body: &[u8]) -> Result<Mapped, ApiError> {
    if verifier.is_empty() {
        return Err(ApiError::NotConfigured("whatsapp app secret not configured"));
    }
    match signature.strip_prefix(b"sha256=") {
        Some(hex) if verifier.verify(hex, body) => payload::map(body).map_err(ApiError::Validation),
        _ => Err(ApiError::InvalidSignature),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::sign;

    const BODY: &[u8] = br#"{"object":"whatsapp_business_account","entry":[]}"#;

    #[test]
    fn the_signature_is_sha256_prefixed_hex_of_the_raw_body_under_either_secret() {
        let verifier = Verifier::new(["app-secret", "old-secret"]);
        let signed = |secret: &str| format!("sha256={}", sign(secret, BODY));
        for good in [
            signed("app-secret"),
            signed("old-secret"),
            signed("app-secret").to_uppercase().replace("SHA256=", "sha256="),
        ] {
            assert!(admit(&verifier, good.as_bytes(), BODY).is_ok(), "{good}");
        }
        for bad in [
            String::new(),
            sign("app-secret", BODY),
            format!("SHA256={}", sign("app-secret", BODY)),
            format!("sha1={}", sign("app-secret", BODY)),
            signed("wrong-secret"),
            format!("sha256= {}", sign("app-secret", BODY)),
        ] {
            assert!(matches!(admit(&verifier, bad.as_bytes(), BODY), Err(ApiError::InvalidSignature)), "{bad}");
        }
        assert!(matches!(admit(&Verifier::new([""]), signed("").as_bytes(), BODY), Err(ApiError::NotConfigured(_))));
        // Signed, but not a delivery: refused as the body's fault, after the signature.
        let junk = br#"{"object":"page"}"#;
        let signature = format!("sha256={}", sign("app-secret", junk));
        assert!(matches!(admit(&verifier, signature.as_bytes(), junk), Err(ApiError::Validation(_))));
    }
}
