//! What a runtime could not hand over intact: faults found in transport, before any route looks at the
//! request. They travel as request extensions, and [`crate::handler`] and [`crate::webhook`] answer them.

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
