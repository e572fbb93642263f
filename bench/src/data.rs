//! The generated messages: deterministic, so every run loads the same data.
//!
//! Text is 3 to 8 words drawn from a vocabulary of [`VOCABULARY`] made-up words with a Zipf-like
//! distribution (the word of rank k is drawn with weight 1/k^1.1), as in real chat: a few words are in most
//! messages, a long tail in few. So one run has broad, medium, rare and absent search terms; [`Terms`]
//! picks them by their measured share of the preloaded messages.

use std::sync::OnceLock;

/// Distinct senders of the preload.
pub const SENDERS: u64 = 1000;
/// Words in the vocabulary.
pub const VOCABULARY: u64 = 20_000;
/// The Zipf exponent of the word distribution.
const EXPONENT: f64 = 1.1;
/// The syllables words are made of; each word is a distinct sequence of them.
const SYLLABLES: [&str; 24] = [
    "ka", "lo", "mi", "ne", "su", "ta", "ri", "po", "de", "gu", "fa", "be", "zo", "chi", "wa", "ye", "hu", "xe", "qua",
    "vo", "ji", "sa", "ko", "ru",
];

/// A stream of pseudo-random numbers (xorshift).
pub fn mix(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

/// The sender of message `i`.
pub fn sender(i: u64) -> String {
    format!("+1555{:07}", mix(i + 1) % SENDERS)
}

/// The instant of message `i`: i seconds (and some milliseconds) into 2025.
pub fn timestamp(i: u64) -> String {
    let r = mix(i.wrapping_mul(2654435761) + 7);
    let ts = chrono::DateTime::from_timestamp(1_735_689_600 + i as i64, ((r % 1000) * 1_000_000) as u32).unwrap();
    ts.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The service's sort key of `ts`: seconds since 0001-01-01T00:00:00Z in five bytes, nanoseconds in four,
/// big-endian.
pub fn sort_key(ts: &str) -> Vec<u8> {
    let at = chrono::DateTime::parse_from_rfc3339(ts).expect("the bench's timestamps are valid");
    let seconds = (at.timestamp() + 62_135_596_800).to_be_bytes();
    [&seconds[3..], &at.timestamp_subsec_nanos().to_be_bytes()].concat()
}

/// The text of message `i`: 3 to 8 words of the Zipf-distributed vocabulary.
pub fn text(i: u64) -> String {
    let r = mix(i.wrapping_mul(2654435761) + 7);
    let words: Vec<String> =
        (0..3 + r % 6).map(|k| word(zipf_rank(mix(r ^ (k + 1).wrapping_mul(0x9E37_79B9))))).collect();
    words.join(" ")
}

/// Message `i`, with id `id`: one of [`SENDERS`] senders, [`timestamp`] and [`text`].
pub fn message(id: &str, i: u64) -> String {
    format!(
        r#"{{"message_id":"{id}","from":"{}","to":"+14155550100","ts":"{}","text":"{}"}}"#,
        sender(i),
        timestamp(i),
        text(i)
    )
}

/// The word of rank `rank` (0 is the most frequent): the rank written in base 24 with syllables for digits,
/// at least two of them (so at least four letters, as search terms are), so every word is distinct.
pub fn word(rank: u64) -> String {
    let mut n = rank + SYLLABLES.len() as u64;
    let mut word = String::new();
    loop {
        word.push_str(SYLLABLES[(n % SYLLABLES.len() as u64) as usize]);
        n /= SYLLABLES.len() as u64;
        if n == 0 {
            return word;
        }
        n -= 1;
    }
}

/// A rank drawn with the Zipf weights, from the random `r`.
fn zipf_rank(r: u64) -> u64 {
    static CUMULATIVE: OnceLock<Vec<f64>> = OnceLock::new();
    let cumulative = CUMULATIVE.get_or_init(|| {
        let mut sum = 0.0;
        (1..=VOCABULARY)
            .map(|k| {
                sum += 1.0 / (k as f64).powf(EXPONENT);
                sum
            })
            .collect()
    });
    let target = (r >> 11) as f64 / (1u64 << 53) as f64 * cumulative[cumulative.len() - 1];
    cumulative.partition_point(|c| *c < target) as u64
}

/// Search terms of known selectivity over the first `n` messages, each with the share of messages whose
/// text contains it (what `q` matches: a case-insensitive substring).
pub struct Terms {
    /// The most frequent word: in about half the messages or more.
    pub broad: (String, f64),
    /// The word whose share is closest to 1%.
    pub one_percent: (String, f64),
    /// The words whose shares are closest to 25%, 7% and 0.5%: a common, a medium and a rare term for deep
    /// pages.
    pub quarter: (String, f64),
    pub seven_percent: (String, f64),
    pub half_percent: (String, f64),
    /// A word in no message.
    pub absent: String,
}

impl Terms {
    pub fn measure(n: u64) -> Terms {
        let texts: Vec<String> = (0..n).map(text).collect();
        let share = |term: &str| texts.iter().filter(|t| t.contains(term)).count() as f64 / n.max(1) as f64;
        let broad = word(0);
        // Shares fall with rank; the first rank at or under 1% is the closest from above or below.
        let one_percent = (1..200)
            .map(|rank| (word(rank), share(&word(rank))))
            .min_by(|a, b| (a.1 - 0.01).abs().total_cmp(&(b.1 - 0.01).abs()))
            .expect("ranks to measure");
        // Shares fall with rank (nearly: a word may be inside a longer one), so a search by halves finds the
        // first rank at or under the share wanted; it or the rank before is the closest.
        let near = |wanted: f64| {
            let (mut below, mut above) = (1, VOCABULARY);
            while below < above {
                let middle = (below + above) / 2;
                match share(&word(middle)) > wanted {
                    true => below = middle + 1,
                    false => above = middle,
                }
            }
            let candidates = [below.saturating_sub(1).max(1), below];
            let closest = candidates.into_iter().map(|rank| (word(rank), share(&word(rank))));
            closest.min_by(|a, b| (a.1 - wanted).abs().total_cmp(&(b.1 - wanted).abs())).expect("two ranks")
        };
        Terms {
            broad: (broad.clone(), share(&broad)),
            one_percent,
            quarter: near(0.25),
            seven_percent: near(0.07),
            half_percent: near(0.005),
            absent: "zzyzx".to_owned(),
        }
    }
}

/// Request `n`'s term of an abuse run, percent-encoded: CJK ideographs never seen together, of every length
/// from 3 to the 256 characters `q` may have, so each search looks up as many trigrams not seen before.
pub fn hostile_term(n: u64) -> String {
    let mut x = mix(n.wrapping_add(0xABCD)) | 1;
    let term: String = (0..3 + n % 254)
        .map(|_| {
            x = mix(x);
            char::from_u32(0x4E00 + (x % 20_000) as u32).expect("a CJK ideograph")
        })
        .collect();
    term.bytes().map(|b| format!("%{b:02X}")).collect()
}

/// A term for request `n` of a run that must never repeat one: a different tail word each time (ranks
/// from 1,000 up, each in a handful of messages at most), then made-up strings no message holds.
pub fn unique_term(n: u64) -> String {
    if n < VOCABULARY - 1000 {
        word(1000 + n)
    } else {
        format!("nq{n}x")
    }
}
