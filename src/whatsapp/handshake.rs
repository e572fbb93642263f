//! `GET /webhook/whatsapp`: the subscription handshake Meta runs when a callback URL is configured,
//! `?hub.mode=subscribe&hub.verify_token=<token>&hub.challenge=<random>`, answered with exactly the challenge.

use lambda_http::http::{header, HeaderValue, StatusCode};
use lambda_http::{Body, Response};

use crate::app::App;
use crate::error::ApiError;

/// Longest challenge echoed. Meta's are short numbers; anything long or odd is not Meta's.
const MAX_CHALLENGE: usize = 128;

/// Answers the handshake in `query`: 200 with the challenge as plain text when the mode is `subscribe` and
/// the token is `WHATSAPP_VERIFY_TOKEN`.
pub fn handshake(app: &App, query: Option<&str>) -> Result<Response<Body>, ApiError> {
    let Some(token) = &app.whatsapp_verify_token else {
        return Err(ApiError::NotConfigured("whatsapp verify token not configured"));
    };
    let (mut mode, mut presented, mut challenge) = (None, None, None);
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let slot = match key.as_ref() {
            "hub.mode" => &mut mode,
            "hub.verify_token" => &mut presented,
            "hub.challenge" => &mut challenge,
            _ => continue,
        };
        *slot = Some(value);
    }
    // The token is compared whatever the mode, so a refusal takes as long either way.
    let token_matches = presented.is_some_and(|presented| token.matches(presented.as_bytes()));
    if !(token_matches && mode.as_deref() == Some("subscribe")) {
        return Err(ApiError::VerificationFailed);
    }
    // Echoed only when it cannot be markup or a header trick: the answer repeats what the query said.
    let challenge = challenge
        .filter(|c| is_safe_challenge(c))
        .ok_or(ApiError::BadRequest("hub.challenge must be 1 to 128 letters, digits, '-', '_' or '.'"))?;
    let mut response = Response::new(Body::Text(challenge.into_owned()));
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    Ok(response)
}

fn is_safe_challenge(challenge: &str) -> bool {
    (1..=MAX_CHALLENGE).contains(&challenge.len())
        && challenge.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_tokens_of_safe_characters_are_echoed() {
        for ok in ["1158201444", "a", "A-b_c.9", &"7".repeat(MAX_CHALLENGE)] {
            assert!(is_safe_challenge(ok), "{ok}");
        }
        for bad in ["", "<script>alert(1)</script>", "a b", "a\r\nSet-Cookie: x=1", "é", &"7".repeat(MAX_CHALLENGE + 1)]
        {
            assert!(!is_safe_challenge(bad), "{bad:?}");
        }
    }
}
