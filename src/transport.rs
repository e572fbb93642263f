//! What a runtime could not hand over intact: faults found in transport, before any route looks at the
//! request. They travel as request extensions; [`crate::handler`] answers the headers' and [`intact_body`],
//! for the signed routes, the body's.

use lambda_http::Request;

use crate::error::ApiError;

/// The request's headers exceed the local listener's limits; it is answered 431 whatever its route.
#[derive(Debug, Clone, Copy)]
pub struct HeadersTooLarge;

/// Why a runtime could not hand over a request's body intact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFault {
    /// Flagged base64 in a Lambda event, but does not decode.
    NotBase64,
    /// Over the limit; the local listener stopped reading it.
    TooLarge,
    /// The local listener gave up waiting for the rest of it.
    TimedOut,
}

/// Checks 0 and 1 of SPEC §2, for every signed route: the body arrived whole, and within `max_bytes`. The
/// local listener stops reading at the limit and marks the request; on Lambda the event arrives whole, so
/// the length is checked here.
pub fn intact_body(req: &Request, max_bytes: usize) -> Result<&[u8], ApiError> {
    let body: &[u8] = req.body().as_ref();
    let fault = req.extensions().get::<BodyFault>().copied();
    if fault == Some(BodyFault::TooLarge) || body.len() > max_bytes {
        return Err(ApiError::PayloadTooLarge);
    }
    match fault {
        Some(BodyFault::NotBase64) => Err(ApiError::BadRequest("body is not valid base64")),
        Some(BodyFault::TimedOut) => Err(ApiError::BodyTimeout),
        Some(BodyFault::TooLarge) | None => Ok(body),
    }
}
