//! Configured tokens a request must present: the read endpoints' bearer token (`READ_API_TOKEN`) and the
//! WhatsApp handshake's verify token (`WHATSAPP_VERIFY_TOKEN`).

use lambda_http::http::HeaderValue;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A configured token, kept only as its SHA-256 digest.
///
/// Presented tokens are hashed and the digests compared in constant time, so neither the comparison
/// nor the token's length can be learnt from how long a refusal takes.
pub struct Token {
    digest: [u8; 32],
}

impl Token {
    pub fn new(token: &str) -> Token {
        Token { digest: Sha256::digest(token.as_bytes()).into() }
    }

    /// Whether `presented` is exactly this token.
    pub fn matches(&self, presented: &[u8]) -> bool {
        let presented: [u8; 32] = Sha256::digest(presented).into();
        presented.ct_eq(&self.digest).into()
    }
}

/// The read endpoints' token, presented as `Authorization: Bearer <token>`.
pub struct ReadToken(Token);

impl ReadToken {
    pub fn new(token: &str) -> ReadToken {
        ReadToken(Token::new(token))
    }

    /// Whether an `Authorization` header carries this token as `Bearer <token>` (the scheme in any case).
    pub fn admits(&self, authorization: Option<&HeaderValue>) -> bool {
        let Some(value) = authorization else { return false };
        let Some((scheme, token)) = value.as_bytes().split_first_chunk::<7>() else { return false };
        scheme.eq_ignore_ascii_case(b"bearer ") && self.0.matches(token.trim_ascii())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admits(token: &ReadToken, header: &str) -> bool {
        token.admits(Some(&HeaderValue::from_str(header).unwrap()))
    }

    #[test]
    fn admits_exactly_the_bearer_token() {
        let token = ReadToken::new("s3cret-token");
        assert!(admits(&token, "Bearer s3cret-token"));
        assert!(admits(&token, "bearer s3cret-token"));
        assert!(admits(&token, "BEARER  s3cret-token "));
        assert!(!token.admits(None));
        for bad in [
            "",
            "Bearer",
            "Bearer ",
            "s3cret-token",
            "Basic s3cret-token",
            "Bearer s3cret-toke",
            "Bearer s3cret-token2",
            "Bearer S3CRET-TOKEN",
            "Bearers3cret-token",
        ] {
            assert!(!admits(&token, bad), "{bad:?}");
        }
    }
}
