//! HMAC-SHA256 request signatures (SPEC §2, check 3).

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Checks `X-Signature` against the current secret and, during a rotation, the previous one.
///
/// The keyed MAC states are prepared once; each check clones one, which skips re-hashing the key.
#[derive(Clone)]
pub struct Verifier {
    keys: Vec<HmacSha256>,
}

impl Verifier {
    /// Builds a verifier for the given secrets; empty secrets are ignored.
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Verifier {
        let keys = secrets
            .into_iter()
            .filter(|s| !s.is_empty())
            .map(|s| HmacSha256::new_from_slice(s.as_bytes()).expect("HMAC accepts keys of any length"))
            .collect();
        Verifier { keys }
    }

    /// True when no secret is configured: nothing can be verified, so nothing may be accepted.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether `signature` (hex, either case) is the HMAC of exactly these `body` bytes under any key.
    /// The digest comparison is constant-time; a malformed signature fails before any MAC is computed.
    pub fn verify(&self, signature: &[u8], body: &[u8]) -> bool {
        let mut expected = [0u8; 32];
        if hex::decode_to_slice(signature, &mut expected).is_err() {
            return false;
        }
        // Every key is tried, so the time taken does not reveal which one matched.
        self.keys.iter().fold(false, |matched, key| {
            let mut mac = key.clone();
            mac.update(body);
            mac.verify_slice(&expected).is_ok() | matched
        })
    }
}

/// The lowercase hex signature of `body` under `secret`, as a provider would send it.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] =
        br#"{"message_id":"m1","from":"+919876543210","to":"+14155550100","ts":"2025-01-15T10:00:00Z","text":"Hello"}"#;

    #[test]
    fn matches_a_known_vector() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign("Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn accepts_either_hex_case_and_rejects_everything_else() {
        let v = Verifier::new(["testsecret"]);
        let sig = sign("testsecret", BODY);
        assert!(v.verify(sig.as_bytes(), BODY));
        assert!(v.verify(sig.to_uppercase().as_bytes(), BODY));
        let mut flipped = sig.clone().into_bytes();
        flipped[0] = if flipped[0] == b'0' { b'1' } else { b'0' };
        for bad in [
            &b""[..],
            b"123",
            &sig.as_bytes()[..62],
            format!("{sig}00").as_bytes(),
            format!(" {sig}").as_bytes(),
            sig.replace(|c: char| c.is_ascii_digit(), "g").as_bytes(),
            &flipped,
            sign("othersecret", BODY).as_bytes(),
        ] {
            assert!(!v.verify(bad, BODY), "{:?}", String::from_utf8_lossy(bad));
        }
        // The signature covers the exact bytes: re-serialised JSON does not verify.
        let reserialised = serde_json::to_vec(&serde_json::from_slice::<serde_json::Value>(BODY).unwrap()).unwrap();
        assert_ne!(reserialised, BODY);
        assert!(!v.verify(sig.as_bytes(), &reserialised));
    }

    #[test]
    fn previous_secret_is_accepted_during_rotation() {
        let v = Verifier::new(["new", "old"]);
        assert!(v.verify(sign("new", BODY).as_bytes(), BODY));
        assert!(v.verify(sign("old", BODY).as_bytes(), BODY));
        assert!(!v.verify(sign("other", BODY).as_bytes(), BODY));
    }

    #[test]
    fn no_secret_verifies_nothing() {
        let v = Verifier::new([""]);
        assert!(v.is_empty());
        assert!(!v.verify(sign("", BODY).as_bytes(), BODY));
    }
}
