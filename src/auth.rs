//! Optional bearer-token protection of the read endpoints (`READ_API_TOKEN`).

use lambda_http::http::HeaderValue;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The configured token, kept only as its SHA-256 digest.
///
/// Presented tokens are hashed and the digests compared in constant time, so neither the comparison
/// nor the token's length can be learnt from how long a refusal takes.
pub struct ReadToken {
    digest: [u8; 32],
}

impl ReadToken {
    pub fn new(token: &str) -> ReadToken {
        ReadToken { digest: Sha256::digest(token.as_bytes()).into() }
    }

    /// Whether an `Authorization` header carries this token as `Bearer <token>` (the scheme in any case).
    pub fn admits(&self, authorization: Option<&HeaderValue>) -> bool {
        let Some(value) = authorization else { return false };
        let Some((scheme, token)) = value.as_bytes().split_first_chunk::<7>() else { return false };
        if !scheme.eq_ignore_ascii_case(b"bearer ") {
            return false;
        }
        let presented: [u8; 32] = Sha256::digest(token.trim_ascii()).into();
        presented.ct_eq(&self.digest).into()
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
