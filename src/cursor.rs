//! Where a listing's next page starts: a [`Position`] in one of its two [`Order`]s, sealed into an opaque,
//! URL-safe cursor that names the filters it belongs to and is signed, so a cursor the service did not issue
//! for these filters is refused rather than read.
//!
//! A cursor is `base64url(version, order, filters' fingerprint, ordinal, position, tag)`: the tag is a truncated
//! HMAC-SHA256 under a key derived from the webhook secrets, which every instance of a fleet shares, so any
//! instance reads another's cursors, and a cursor issued before a rotation is read with the previous secret.
//! The position is what the next page's statement compares with: a row's sort key and id, or its arrival
//! number. It is never a row's content, and the filters still come from the request, so even a forged
//! position could only ever skip within the client's own listing.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::message::FieldError;

type HmacSha256 = Hmac<Sha256>;

const VERSION: u8 = 1;
/// Bytes of the filters' fingerprint: enough that two filters a client uses never share one by chance.
const FINGERPRINT: usize = 8;
/// Bytes of the signature kept: forging one takes 2^128 tries.
const TAG: usize = 16;
/// What the key is derived for, so no cursor's tag is ever a valid signature of a webhook body.
const KEY_PURPOSE: &[u8] = b"webhook-ingest listing cursor v1";
/// The key when no secret is configured (reads still work): tampering is still detected, forgery is not.
const UNCONFIGURED: &str = "webhook-ingest: no secret configured";

/// The order of a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// By the sender's `ts`, then by id: the default.
    #[default]
    Time,
    /// In the order messages were stored: a feed a consumer follows.
    Arrival,
}

/// The last row a page returned, in its listing's order: the next page starts after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    /// A row's sort key as stored (bytes, or the text of a legacy key that is no timestamp), and its id.
    Time { sort_key: SortKey, message_id: String },
    /// A row's arrival number: increasing in commit order ([`crate::store`] says how each back end keeps it).
    Arrival(i64),
}

/// Where a time-ordered page of a search ended, counted: the first `rows_before` matches among the rows up to
/// rowid `through` are at or before its last row. Rows up to a rowid never change, so this stays true, and a
/// page after it can start from the matches remembered of its filters ([`crate::store`]'s search) instead of
/// finding its place again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ordinal {
    pub rows_before: u64,
    pub through: i64,
}

/// A stored sort key: nine bytes for every timestamp, text for a legacy key that is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortKey {
    Bytes(Vec<u8>),
    Text(String),
}

/// The filters a cursor belongs to, as [`Cursors::seal`] and [`Cursors::open`] compare them.
pub struct Filters<'a> {
    pub order: Order,
    pub from: Option<&'a str>,
    /// The `since` instant's sort key.
    pub since: Option<&'a [u8]>,
    /// The folded search term.
    pub q: Option<&'a str>,
}

impl Filters<'_> {
    fn fingerprint(&self) -> [u8; FINGERPRINT] {
        let mut hash = Sha256::new();
        for part in [self.from.map(str::as_bytes), self.since, self.q.map(str::as_bytes)] {
            // Each part is framed, so no two filters hash the same bytes.
            match part {
                None => hash.update([0]),
                Some(bytes) => {
                    hash.update([1]);
                    hash.update((bytes.len() as u64).to_be_bytes());
                    hash.update(bytes);
                }
            }
        }
        hash.update([order_byte(self.order)]);
        hash.finalize()[..FINGERPRINT].try_into().expect("a SHA-256 digest is longer")
    }
}

/// Why a cursor was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Not one the service issued: malformed, truncated or altered.
    Unreadable,
    /// Issued for other filters or another order.
    OtherFilters,
}

impl Refused {
    pub fn field_error(&self) -> FieldError {
        let msg = match self {
            Refused::Unreadable => {
                "Value error, cursor is not one this service issued (malformed, truncated or altered); \
                 start again without it"
            }
            Refused::OtherFilters => {
                "Value error, cursor belongs to a listing with other filters; ask with the same from, since, q \
                 and order it was issued for"
            }
        };
        FieldError::new(["query", "cursor"], "value_error", msg)
    }
}

/// Seals positions into cursors and opens them, under keys derived from the configured secrets.
#[derive(Clone)]
pub struct Cursors {
    /// The first seals; any opens (a rotation's previous secret still reads cursors it sealed).
    keys: Vec<HmacSha256>,
}

impl Cursors {
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Cursors {
        let mut keys: Vec<HmacSha256> =
            secrets.into_iter().filter(|secret| !secret.is_empty()).map(derived_key).collect();
        if keys.is_empty() {
            keys.push(derived_key(UNCONFIGURED));
        }
        Cursors { keys }
    }

    /// The cursor of the page after `position` (and `ordinal`, when counted) in the listing of `filters`.
    pub fn seal(&self, filters: &Filters, position: &Position, ordinal: Option<Ordinal>) -> String {
        let mut bytes = vec![VERSION, order_byte(filters.order)];
        bytes.extend(filters.fingerprint());
        match ordinal {
            None => bytes.push(0),
            Some(Ordinal { rows_before, through }) => {
                bytes.push(1);
                bytes.extend(rows_before.to_be_bytes());
                bytes.extend(through.to_be_bytes());
            }
        }
        match position {
            Position::Time { sort_key, message_id } => {
                let (kind, key) = match sort_key {
                    SortKey::Bytes(bytes) => (0, bytes.as_slice()),
                    SortKey::Text(text) => (1, text.as_bytes()),
                };
                bytes.push(kind);
                bytes.extend((key.len() as u32).to_be_bytes());
                bytes.extend(key);
                bytes.extend(message_id.as_bytes());
            }
            Position::Arrival(number) => bytes.extend(number.to_be_bytes()),
        }
        let mut mac = self.keys[0].clone();
        mac.update(&bytes);
        bytes.extend(&mac.finalize().into_bytes()[..TAG]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The position (and ordinal) `cursor` holds, if this service sealed it for `filters`.
    pub fn open(&self, cursor: &str, filters: &Filters) -> Result<(Position, Option<Ordinal>), Refused> {
        let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| Refused::Unreadable)?;
        let signed = bytes.len().checked_sub(TAG).ok_or(Refused::Unreadable)?;
        let (content, tag) = bytes.split_at(signed);
        // Every key is tried, so the time taken does not reveal which one matched.
        let genuine = self.keys.iter().fold(false, |genuine, key| {
            let mut mac = key.clone();
            mac.update(content);
            mac.verify_truncated_left(tag).is_ok() | genuine
        });
        if !genuine {
            return Err(Refused::Unreadable);
        }
        let [version, order, rest @ ..] = content else { return Err(Refused::Unreadable) };
        if *version != VERSION || *order != order_byte(filters.order) {
            return Err(if *version == VERSION { Refused::OtherFilters } else { Refused::Unreadable });
        }
        let (fingerprint, rest) = rest.split_at_checked(FINGERPRINT).ok_or(Refused::Unreadable)?;
        if fingerprint != filters.fingerprint() {
            return Err(Refused::OtherFilters);
        }
        let (ordinal, position) = ordinal_of(rest).ok_or(Refused::Unreadable)?;
        Ok((position_of(filters.order, position).ok_or(Refused::Unreadable)?, ordinal))
    }
}

/// Cursors under no configured secret.
impl Default for Cursors {
    fn default() -> Cursors {
        Cursors::new([])
    }
}

fn derived_key(secret: &str) -> HmacSha256 {
    let mut derive = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    derive.update(KEY_PURPOSE);
    HmacSha256::new_from_slice(&derive.finalize().into_bytes()).expect("HMAC accepts keys of any length")
}

fn order_byte(order: Order) -> u8 {
    match order {
        Order::Time => 0,
        Order::Arrival => 1,
    }
}

/// The ordinal at the start of `bytes`, and the bytes after it, in the layout [`Cursors::seal`] writes.
fn ordinal_of(bytes: &[u8]) -> Option<(Option<Ordinal>, &[u8])> {
    let (&present, rest) = bytes.split_first()?;
    match present {
        0 => Some((None, rest)),
        1 => {
            let (rows_before, rest) = rest.split_first_chunk::<8>()?;
            let (through, rest) = rest.split_first_chunk::<8>()?;
            let ordinal =
                Ordinal { rows_before: u64::from_be_bytes(*rows_before), through: i64::from_be_bytes(*through) };
            Some((Some(ordinal), rest))
        }
        _ => None,
    }
}

/// The position in a cursor's signed bytes, in the layout [`Cursors::seal`] writes.
fn position_of(order: Order, bytes: &[u8]) -> Option<Position> {
    match order {
        Order::Arrival => Some(Position::Arrival(i64::from_be_bytes(bytes.try_into().ok()?))),
        Order::Time => {
            let (&kind, rest) = bytes.split_first()?;
            let (length, rest) = rest.split_first_chunk::<4>()?;
            let (key, id) = rest.split_at_checked(usize::try_from(u32::from_be_bytes(*length)).ok()?)?;
            let sort_key = match kind {
                0 => SortKey::Bytes(key.to_vec()),
                1 => SortKey::Text(String::from_utf8(key.to_vec()).ok()?),
                _ => return None,
            };
            Some(Position::Time { sort_key, message_id: String::from_utf8(id.to_vec()).ok()? })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIME: Filters = Filters { order: Order::Time, from: Some("+1555"), since: None, q: Some("kaka") };

    fn position() -> Position {
        Position::Time { sort_key: SortKey::Bytes(vec![0, 14, 223, 25, 140, 48, 0, 0, 0]), message_id: "m-7".into() }
    }

    #[test]
    fn a_sealed_position_opens_under_the_same_filters_and_any_configured_secret() {
        let cursors = Cursors::new(["new", "old"]);
        let ordinal = Some(Ordinal { rows_before: 1_000, through: 90_210 });
        for position in [position(), Position::Time { sort_key: SortKey::Text("legacy".into()), message_id: "".into() }]
        {
            for ordinal in [None, ordinal] {
                let cursor = cursors.seal(&TIME, &position, ordinal);
                assert!(cursor.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{cursor}");
                assert_eq!(cursors.open(&cursor, &TIME), Ok((position.clone(), ordinal)));
            }
        }
        let arrival = Filters { order: Order::Arrival, from: None, since: None, q: None };
        let cursor = cursors.seal(&arrival, &Position::Arrival(42), None);
        assert_eq!(cursors.open(&cursor, &arrival), Ok((Position::Arrival(42), None)));
        // Sealed before a rotation, with what is now the previous secret.
        let before = Cursors::new(["old"]).seal(&TIME, &position(), ordinal);
        assert_eq!(cursors.open(&before, &TIME), Ok((position(), ordinal)));
    }

    #[test]
    fn a_cursor_for_other_filters_or_another_order_is_refused() {
        let cursors = Cursors::new(["s"]);
        let cursor = cursors.seal(&TIME, &position(), None);
        for other in [
            Filters { from: None, ..TIME },
            Filters { from: Some("+1556"), ..TIME },
            Filters { q: Some("kak"), ..TIME },
            Filters { since: Some(&[0]), ..TIME },
            Filters { order: Order::Arrival, ..TIME },
            // The same bytes, moved from one filter to another.
            Filters { from: Some("kaka"), q: Some("+1555"), ..TIME },
        ] {
            assert_eq!(cursors.open(&cursor, &other), Err(Refused::OtherFilters));
        }
    }

    #[test]
    fn a_forged_truncated_or_altered_cursor_is_unreadable() {
        let cursors = Cursors::new(["s"]);
        let cursor = cursors.seal(&TIME, &position(), Some(Ordinal { rows_before: 7, through: 9 }));
        let unreadable = |cursor: &str| assert_eq!(cursors.open(cursor, &TIME), Err(Refused::Unreadable), "{cursor}");
        unreadable("");
        unreadable("not base64!");
        unreadable(&cursor[..cursor.len() - 1]);
        unreadable(&cursor[1..]);
        unreadable(&format!("{cursor}A"));
        for at in 0..cursor.len() {
            let mut altered = cursor.clone().into_bytes();
            altered[at] = if altered[at] == b'A' { b'B' } else { b'A' };
            unreadable(&String::from_utf8(altered).unwrap());
        }
        // Sealed under another secret: what a client forging one has.
        unreadable(&Cursors::new(["guess"]).seal(&TIME, &position(), None));
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn no_string_panics_opening_or_opens_unless_sealed(cursor in "\\PC{0,120}") {
            let cursors = Cursors::new(["s"]);
            let filters = Filters { order: Order::Time, from: None, since: None, q: None };
            prop_assert!(cursors.open(&cursor, &filters).is_err());
        }

        #[test]
        fn every_position_survives_sealing(key in proptest::collection::vec(any::<u8>(), 0..40), id in "\\PC{0,80}",
                                           number in any::<i64>(), rows_before in any::<u64>()) {
            let cursors = Cursors::new(["s"]);
            let time = Filters { order: Order::Time, from: None, since: None, q: Some(&id) };
            let position = Position::Time { sort_key: SortKey::Bytes(key), message_id: id.clone() };
            let ordinal = Some(Ordinal { rows_before, through: number });
            prop_assert_eq!(cursors.open(&cursors.seal(&time, &position, ordinal), &time), Ok((position, ordinal)));
            let arrival = Filters { order: Order::Arrival, ..time };
            let position = Position::Arrival(number);
            prop_assert_eq!(cursors.open(&cursors.seal(&arrival, &position, None), &arrival), Ok((position, None)));
        }
    }
}
