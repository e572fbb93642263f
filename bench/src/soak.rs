//! The soak: one mixed load in 10-second rounds, with the server's RSS after each.

use std::rc::Rc;
use std::time::Duration;

use crate::client::{drive, get, post, post_signed, Load, Until};
use crate::data::{message, word, SENDERS};
use crate::server::Server;

/// The kinds of request in the mix, each with the one status it must get.
#[derive(Clone, Copy)]
enum Kind {
    Ingest,
    Duplicate,
    Page,
    SenderPage,
    Search,
    Stats,
    Forged,
    Invalid,
    UnknownPath,
}

impl Kind {
    /// Request `n`'s kind. Of every ten: four ingests, a duplicate, a page, a sender's page, a search, the
    /// stats, and a bad request (a forged signature, an invalid body, an unknown path in turn).
    fn of(n: u64) -> Kind {
        const BAD: [Kind; 3] = [Kind::Forged, Kind::Invalid, Kind::UnknownPath];
        match n % 10 {
            0..=3 => Kind::Ingest,
            4 => Kind::Duplicate,
            5 => Kind::Page,
            6 => Kind::SenderPage,
            7 => Kind::Search,
            8 => Kind::Stats,
            _ => BAD[((n / 10) % 3) as usize],
        }
    }

    /// Request `n` of this kind; `round` keeps the ingested ids of each round new.
    fn request(self, n: u64, preloaded: u64, round: u64) -> Vec<u8> {
        match self {
            Kind::Ingest => post(&message(&format!("soak-{round}-{n}"), preloaded + n)),
            Kind::Duplicate => post(&message(&format!("pre-{}", n % preloaded), n % preloaded)),
            Kind::Page => get(&format!("/messages?limit=50&offset={}", n % 1000)),
            Kind::SenderPage => get(&format!("/messages?from=%2B1555{:07}&limit=20", n % SENDERS)),
            Kind::Search => get(&format!("/messages?q={}&limit=20", word(n))),
            Kind::Stats => get("/stats"),
            Kind::Forged => post_signed(&message(&format!("forged-{n}"), n), &"0".repeat(64)),
            Kind::Invalid => post(r#"{"message_id":"","from":"0","to":"+1","ts":"yesterday"}"#),
            Kind::UnknownPath => get("/wp-login.php"),
        }
    }

    fn expected(self) -> u16 {
        match self {
            Kind::Forged => 401,
            Kind::Invalid => 422,
            Kind::UnknownPath => 404,
            _ => 200,
        }
    }
}

fn load(preloaded: u64, round: u64) -> Load {
    Rc::new(move |n| {
        let kind = Kind::of(n);
        (kind.request(n, preloaded, round), kind.expected())
    })
}

/// Runs the mix for `seconds`, printing each round; false on any unexpected answer, or when the server's own
/// memory (anonymous RSS: the database's mapped pages grow with the file, and are the page cache's) after the
/// last round is far above the first's.
pub async fn run(server: &Server, connections: usize, preloaded: u64, seconds: u64) -> bool {
    println!(
        "soak: {seconds} s of mixed load, server's own (anonymous) RSS after preload {:.1} MB\n",
        mb(server.anonymous_rss_kib())
    );
    println!("| round |     req/s |  p50 ms |  p99 ms | unexpected | RSS MB |");
    println!("|------:|----------:|---------:|---------:|-----------:|-------:|");
    let mut errors = 0;
    let mut rss = Vec::new();
    for round in 0..seconds.div_ceil(10) {
        let until = Until::Elapsed(Duration::from_secs(seconds.min(10)));
        let outcome = drive(&server.addr, connections, until, load(preloaded, round)).await;
        rss.push(server.anonymous_rss_kib());
        println!(
            "| {:>5} | {:>9.0} | {:>8.2} | {:>8.2} | {:>10} | {:>6.1} |",
            round + 1,
            outcome.rate(),
            outcome.ms(0.50),
            outcome.ms(0.99),
            outcome.errors,
            mb(*rss.last().unwrap())
        );
        errors += outcome.errors;
    }
    let (first, last) = (rss[0], *rss.last().unwrap());
    println!(
        "\nanonymous RSS after the first round {:.1} MB, after the last {:.1} MB; peak RSS {:.1} MB (mapped \
         database included); {errors} unexpected answers",
        mb(first),
        mb(last),
        mb(server.peak_rss_kib())
    );
    // Flat means no growth with time: what the first round settles at (caches filled) is what the last holds,
    // give or take allocator noise.
    let flat = last <= first + first / 4 + 4096;
    if errors > 0 || !flat {
        eprintln!("webhook-bench soak: {errors} unexpected answers; RSS flat: {flat}");
    }
    errors == 0 && flat
}

fn mb(kib: u64) -> f64 {
    kib as f64 / 1024.0
}
