//! A delivery status of a message the business sent (`sent`, `delivered`, `read`, `failed`, or whatever
//! else Meta reports), as a WhatsApp delivery's `statuses[]` entry carries it. It is kept once per
//! (`message_id`, `status`, `ts`), however often Meta redelivers it.

use crate::message::Timestamp;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The id of the business's outgoing message the status is about (the entry's `id`).
    pub message_id: String,
    pub status: String,
    pub ts: Timestamp,
    pub recipient_id: Option<String>,
    /// The entry's `errors`, `conversation` and `pricing`, as JSON, when it has them.
    pub errors: Option<String>,
    pub conversation: Option<String>,
    pub pricing: Option<String>,
    /// The entry as it arrived, byte for byte.
    pub raw: String,
}
