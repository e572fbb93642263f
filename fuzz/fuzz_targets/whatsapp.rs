//! The WhatsApp pipeline on arbitrary input: `sha256=` signature check, then the payload mapper. It must never
//! panic, never accept what the signature does not cover, and map only messages that obey SPEC §2's rules.
#![no_main]

use libfuzzer_sys::fuzz_target;
use webhook_ingest::error::ApiError;
use webhook_ingest::message::{Msisdn, Timestamp, MAX_TEXT_CHARS};
use webhook_ingest::signature::{sign, Verifier};
use webhook_ingest::whatsapp::admit;

const SECRET: &str = "fuzz-app-secret";

fuzz_target!(|input: &[u8]| {
    let verifier = Verifier::new([SECRET]);
    // The first byte chooses the signature: a correct one, so that the mapper is reached, or up to 71 bytes
    // of the input as it is.
    let Some((&mode, rest)) = input.split_first() else { return };
    let (signature, body) = if mode % 2 == 0 {
        (format!("sha256={}", sign(SECRET, rest)).into_bytes(), rest)
    } else {
        let n = rest.len().min(71);
        (rest[..n].to_vec(), &rest[n..])
    };
    let signed = signature.strip_prefix(b"sha256=").is_some_and(|hex| verifier.verify(hex, body));
    match admit(&verifier, &signature, body) {
        Ok(mapped) => {
            assert!(signed, "accepted without a valid signature");
            for message in &mapped.messages {
                assert!(!message.message_id.is_empty());
                assert!(Msisdn::parse(message.from.as_str()).is_some());
                assert!(Msisdn::parse(message.to.as_str()).is_some());
                assert_eq!(Timestamp::parse(message.ts.as_str()).as_ref(), Some(&message.ts));
                assert!(message.text.as_ref().is_none_or(|t| t.chars().count() <= MAX_TEXT_CHARS));
            }
            assert!(mapped.skipped.iter().all(|skipped| !skipped.reason.is_empty()));
        }
        Err(ApiError::InvalidSignature) => assert!(!signed),
        Err(ApiError::Validation(errors)) => {
            assert!(signed && !errors.is_empty(), "a rejection that names no field");
            assert_eq!(ApiError::Validation(errors).into_response().status().as_u16(), 422);
        }
        Err(other) => panic!("unexpected rejection {other:?}"),
    }
});
