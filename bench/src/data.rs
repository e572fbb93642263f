//! The generated messages: deterministic, so every run loads the same data.

/// Distinct senders of the preload.
pub const SENDERS: u64 = 1000;
/// Text is 3 to 6 words, each a stem and a digit (`order7`): 400 words, so a searched word is in about 1.1%
/// of messages.
const VARIANTS: u64 = 10;
const WORDS: [&str; 40] = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
    "november",
    "oscar",
    "papa",
    "quebec",
    "romeo",
    "sierra",
    "tango",
    "uniform",
    "victor",
    "whiskey",
    "xray",
    "yankee",
    "zulu",
    "order",
    "invoice",
    "shipped",
    "delivered",
    "payment",
    "refund",
    "hello",
    "thanks",
    "please",
    "confirm",
    "tomorrow",
    "today",
    "meeting",
    "call",
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

/// Message `i`, with id `id`: one of [`SENDERS`] senders, a timestamp i seconds (and some milliseconds)
/// into 2025, 3 to 6 words of text.
pub fn message(id: &str, i: u64) -> String {
    let r = mix(i.wrapping_mul(2654435761) + 7);
    let ts = chrono::DateTime::from_timestamp(1_735_689_600 + i as i64, ((r % 1000) * 1_000_000) as u32).unwrap();
    let words: Vec<String> = (0..3 + r % 4).map(|k| word(mix(r + k))).collect();
    format!(
        r#"{{"message_id":"{id}","from":"{}","to":"+14155550100","ts":"{}","text":"{}"}}"#,
        sender(i),
        ts.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
        words.join(" ")
    )
}

/// Word `n` of the vocabulary.
pub fn word(n: u64) -> String {
    format!("{}{}", WORDS[(n % WORDS.len() as u64) as usize], (n / WORDS.len() as u64) % VARIANTS)
}
