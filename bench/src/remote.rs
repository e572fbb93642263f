//! The server on a libSQL server: round trips and latency per endpoint, through a proxy that counts every
//! HTTP request to the libSQL server and delays each by a chosen time, as a network between them would.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::client::{all_ok, drive, get, post, Until};
use crate::data::{message, sender, timestamp, unique_term};
use crate::server::Server;

/// Requests per endpoint, one at a time, so each one's trips and latency are its own.
const REQUESTS: u64 = 100;

/// Connections that preload, with no delay added: the preload only sets the scene.
const PRELOAD_CONNECTIONS: usize = 16;

/// Runs the endpoints against a server at `url` behind a proxy adding `delay_ms`, after preloading `preload`
/// messages; false if a request failed.
pub async fn run(binary: &Path, cpu: &str, url: &str, delay_ms: u64, preload: u64) -> bool {
    let upstream = host_and_port(url);
    let proxy = Proxy::start(upstream, Duration::from_millis(delay_ms));
    let server = Server::start(binary, cpu, &format!("http://{}", proxy.addr));
    println!(
        "webhook-bench --remote: a libSQL server at {url} behind a proxy adding {delay_ms} ms per round trip; \
         {preload} messages preloaded, then {REQUESTS} requests per endpoint, one at a time\n"
    );
    println!(
        "process start until /health/ready answers 200: {} round trips, {:.1} ms (the start's schema check, \
         one on a current schema, and the readiness probe; an empty database is migrated first)\n",
        proxy.take(),
        server.ready_after.as_secs_f64() * 1000.0
    );
    // Ids new on every run, so a server that keeps its data between runs still sees first deliveries.
    let run = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let fill = all_ok(move |n| post(&message(&format!("remote-{run}-pre-{n}"), n)));
    proxy.set_delay(Duration::ZERO);
    let filled = drive(&server.addr, PRELOAD_CONNECTIONS, Until::Sent(preload), fill).await;
    println!(
        "preloaded {} messages in {:.1} s ({:.0} msg/s, no delay added)\n",
        filled.requests,
        filled.elapsed.as_secs_f64(),
        filled.rate()
    );
    proxy.set_delay(Duration::from_millis(delay_ms));
    proxy.take();
    println!("| request                                      | round trips | p50 ms | p99 ms | errors |");
    println!("|----------------------------------------------|------------:|-------:|-------:|-------:|");
    let terms = crate::data::Terms::measure(preload);
    let (broad, rare, absent) = (terms.broad.0, terms.one_percent.0, terms.absent);
    let one_sender = sender(0).replace('+', "%2B");
    let middle = timestamp(preload / 2).replace(':', "%3A");
    let fixed = |path: String| all_ok(move |_| get(&path));
    let endpoints: [(&str, crate::client::Load); 13] = [
        ("POST /webhook (created)", all_ok(move |n| post(&message(&format!("remote-{run}-new-{n}"), n)))),
        ("POST /webhook (duplicate)", all_ok(move |n| post(&message(&format!("remote-{run}-new-{n}"), n)))),
        ("GET /messages?limit=50", all_ok(|_| get("/messages?limit=50"))),
        ("GET /messages?from=…&limit=20", all_ok(|n| get(&format!("/messages?from=%2B1555{:07}&limit=20", n % 1000)))),
        ("GET /messages?q=broad&limit=50&offset=100", fixed(format!("/messages?q={broad}&limit=50&offset=100"))),
        ("GET /messages?q=broad&since=…", fixed(format!("/messages?q={broad}&since={middle}"))),
        ("GET /messages?q=medium", fixed(format!("/messages?q={rare}"))),
        ("GET /messages?q=medium&from=…", fixed(format!("/messages?q={rare}&from={one_sender}"))),
        ("GET /messages?q=absent", fixed(format!("/messages?q={absent}"))),
        ("GET /messages?q=a new term every request", all_ok(|n| get(&format!("/messages?q={}", unique_term(n))))),
        ("GET /messages?q=medium&offset past the end", fixed(format!("/messages?q={rare}&offset=100000"))),
        ("GET /stats", all_ok(|_| get("/stats"))),
        ("GET /health/ready", all_ok(|_| get("/health/ready"))),
    ];
    let mut errors = filled.errors;
    for (name, load) in endpoints {
        let outcome = drive(&server.addr, 1, Until::Sent(REQUESTS), load).await;
        let trips = proxy.take() as f64 / outcome.requests as f64;
        println!(
            "| {name:<44} | {trips:>11.2} | {:>6.1} | {:>6.1} | {:>6} |",
            outcome.ms(0.50),
            outcome.ms(0.99),
            outcome.errors
        );
        errors += outcome.errors;
    }
    if errors > 0 {
        eprintln!("webhook-bench --remote: {errors} requests failed");
    }
    errors == 0
}

/// `host:port` of a server URL.
fn host_and_port(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let host = rest.split(['/', '?']).next().unwrap_or_default();
    if host.contains(':') {
        host.to_owned()
    } else if url.starts_with("http://") {
        format!("{host}:80")
    } else {
        format!("{host}:443")
    }
}

/// Forwards connections to the libSQL server, counting requests and holding each back by a delay.
struct Proxy {
    addr: String,
    requests: Arc<AtomicU64>,
    delay_ms: Arc<AtomicU64>,
}

/// What ends an HTTP/1.1 request line; a JSON body escapes its line breaks, so it appears nowhere else.
const REQUEST_LINE_END: &[u8] = b" HTTP/1.1\r\n";

impl Proxy {
    /// Listens on a port of its own, served by a thread of its own: the bench's runtime is not driven while
    /// it waits for the server to become ready, and the server needs the proxy to get there.
    fn start(upstream: String, delay: Duration) -> Proxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        listener.set_nonblocking(true).unwrap();
        let requests = Arc::new(AtomicU64::new(0));
        let delay_ms = Arc::new(AtomicU64::new(delay.as_millis() as u64));
        let (counter, delay) = (Arc::clone(&requests), Arc::clone(&delay_ms));
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener).unwrap();
                while let Ok((client, _)) = listener.accept().await {
                    let Ok(server) = TcpStream::connect(&upstream).await else { continue };
                    tokio::spawn(forward(client, server, Arc::clone(&delay), Arc::clone(&counter)));
                }
            });
        });
        Proxy { addr, requests, delay_ms }
    }

    /// The delay added to each request from now on.
    fn set_delay(&self, delay: Duration) {
        self.delay_ms.store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// Requests since the last call.
    fn take(&self) -> u64 {
        self.requests.swap(0, Ordering::SeqCst)
    }
}

async fn forward(client: TcpStream, server: TcpStream, delay_ms: Arc<AtomicU64>, requests: Arc<AtomicU64>) {
    let _ = (client.set_nodelay(true), server.set_nodelay(true));
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upward = async {
        let (mut buffer, mut tail) = (vec![0u8; 65536], Vec::new());
        loop {
            let n = match client_read.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            tail.extend_from_slice(&buffer[..n]);
            let found = tail.windows(REQUEST_LINE_END.len()).filter(|w| *w == REQUEST_LINE_END).count() as u64;
            tail.drain(..tail.len().saturating_sub(REQUEST_LINE_END.len() - 1));
            if found > 0 {
                requests.fetch_add(found, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(delay_ms.load(Ordering::SeqCst))).await;
            }
            if server_write.write_all(&buffer[..n]).await.is_err() {
                return;
            }
        }
    };
    let downward = tokio::io::copy(&mut server_read, &mut client_write);
    tokio::select! { _ = upward => {}, _ = downward => {} }
}
