//! `q` through the trigram index (3+ characters) and the scan (shorter terms) returns exactly what a plain
//! case-insensitive substring match returns, on generated texts and terms: Unicode, NUL, quotes, LIKE
//! wildcards and FTS syntax characters included.

use webhook_ingest::config::Database;
use webhook_ingest::message::Message;
use webhook_ingest::query::{fold_case, ListParams};
use webhook_ingest::store::Store;

/// Characters chosen to collide: cases, accents, a NUL, quotes, wildcards, FTS operators, spaces.
const ALPHABET: &[char] = &[
    'a', 'b', 'A', 'B', 'é', 'É', 'ß', 'İ', 'i', '\0', '"', '\'', '%', '_', '*', '-', ' ', ' ', 'x', 'ö', 'Ö', 'Σ',
    'σ', 'ς', '😀', '(', ')', ':', '^',
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn text(&mut self, max: u64) -> String {
        (0..self.next() % max).map(|_| ALPHABET[(self.next() % ALPHABET.len() as u64) as usize]).collect()
    }
}

#[tokio::test]
async fn search_equals_a_plain_substring_match() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&Database::Local(dir.path().join("search.db"))).await.unwrap();
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let mut texts = Vec::new();
    for i in 0..400 {
        let text = if i % 17 == 0 { None } else { Some(rng.text(24)) };
        let body = serde_json::json!({
            "message_id": format!("m{i:03}"), "from": "+1", "to": "+2", "ts": "2025-01-15T10:00:00Z", "text": text
        });
        store.insert(Message::parse(body.to_string().as_bytes()).unwrap()).await.unwrap();
        texts.push((format!("m{i:03}"), text));
    }

    let mut terms: Vec<String> = (0..300).map(|_| rng.text(6)).filter(|t| !t.is_empty()).collect();
    // Substrings of stored texts, so that many terms do match.
    for (_, text) in texts.iter().filter_map(|(id, t)| t.as_ref().map(|t| (id, t))).take(150) {
        let chars: Vec<char> = text.chars().collect();
        if chars.len() >= 2 {
            let start = (rng.next() % (chars.len() as u64 - 1)) as usize;
            let len = 1 + (rng.next() % (chars.len() - start) as u64) as usize;
            terms.push(chars[start..start + len].iter().collect());
        }
    }

    let mut matched_terms = 0;
    for term in &terms {
        let query: String =
            form_urlencoded::Serializer::new(String::new()).append_pair("q", term).append_pair("limit", "100").finish();
        let params = ListParams::parse(Some(&query)).unwrap();
        let folded = fold_case(term);
        let expected: Vec<&str> = texts
            .iter()
            .filter(|(_, t)| t.as_deref().is_some_and(|t| fold_case(t).contains(&folded)))
            .map(|(id, _)| id.as_str())
            .collect();
        let page = store.list(&params).await.unwrap();
        let got: Vec<&str> = page.data.iter().map(|m| m.message_id.as_str()).collect();
        assert_eq!(page.total as usize, expected.len(), "total for {term:?}");
        assert_eq!(got, expected[..expected.len().min(100)], "matches for {term:?}");
        matched_terms += usize::from(!expected.is_empty());
    }
    assert!(matched_terms > 100, "too few terms matched anything ({matched_terms}) to prove much");
}
