//! The webhook pipeline on arbitrary input: signature check, parse, validation. It must never panic, never
//! accept what the signature does not cover, and accept only messages that obey SPEC §2.
#![no_main]

use libfuzzer_sys::fuzz_target;
use webhook_ingest::error::ApiError;
use webhook_ingest::message::{Msisdn, Timestamp, MAX_TEXT_CHARS};
use webhook_ingest::signature::{sign, Verifier};
use webhook_ingest::webhook::admit;

const SECRET: &str = "fuzz-secret";

fuzz_target!(|input: &[u8]| {
    let verifier = Verifier::new([SECRET]);
    // The first byte chooses the signature: a correct one, so that parsing and validation are reached, or
    // up to 64 bytes of the input as it is.
    let Some((&mode, rest)) = input.split_first() else { return };
    let (signature, body) = if mode % 2 == 0 {
        (sign(SECRET, rest).into_bytes(), rest)
    } else {
        let n = rest.len().min(64);
        (rest[..n].to_vec(), &rest[n..])
    };
    match admit(&verifier, &signature, body) {
        Ok(message) => {
            assert!(verifier.verify(&signature, body), "accepted without a valid signature");
            assert!(!message.message_id.is_empty());
            assert!(Msisdn::parse(message.from.as_str()).is_some());
            assert!(Msisdn::parse(message.to.as_str()).is_some());
            assert_eq!(Timestamp::parse(message.ts.as_str()).as_ref(), Some(&message.ts));
            assert!(message.text.as_ref().is_none_or(|t| t.chars().count() <= MAX_TEXT_CHARS));
        }
        Err(ApiError::InvalidSignature) => assert!(!verifier.verify(&signature, body)),
        Err(ApiError::Validation(errors)) => {
            assert!(!errors.is_empty(), "a rejection that names no field");
            // The 422 body is built from the errors; that must not fail either.
            assert_eq!(ApiError::Validation(errors).into_response().status().as_u16(), 422);
        }
        Err(other) => panic!("unexpected rejection {other:?}"),
    }
});
