//! A proxy in front of a libSQL server, shared by the tests (`tests/remote.rs`) and the bench (`make
//! bench-remote`, which includes this file). It counts the HTTP requests it forwards — exactly: each is read
//! whole (its head, then `Content-Length` bytes of body), so a request split across reads, or two in one
//! read, counts once each — and the requests whose body holds a pattern that are sent and not yet answered.
//! It can hold each request back by a delay, as a network would; fail the next few (HTTP 503, or every other
//! one by dropping the connection), as a server restarting or overloaded would; and, closed, drop every
//! connection within 20 ms and refuse new ones.
//!
//! It serves on a thread of its own, so it forwards even while the caller's runtime is not being driven (the
//! bench waits for the server to become ready, which needs the proxy).
#![allow(dead_code)] // the tests and the bench each use a part of it

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub struct Proxy {
    /// `127.0.0.1:port`, where it listens.
    pub addr: String,
    state: Arc<State>,
}

#[derive(Default)]
struct State {
    closed: AtomicBool,
    /// Connections it carries now.
    connections: AtomicUsize,
    requests: AtomicU64,
    failures: AtomicUsize,
    delay_ms: AtomicU64,
    /// Requests whose body holds `watched` sent and not yet answered, and the most seen at once.
    watched: Vec<u8>,
    watched_open: AtomicUsize,
    watched_most: AtomicUsize,
}

impl Proxy {
    /// Forwards to `upstream` (`host:port`), watching the requests whose body holds `watched`.
    pub fn start(upstream: &str, watched: &[u8]) -> Proxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port for the proxy");
        let addr = listener.local_addr().expect("its address").to_string();
        listener.set_nonblocking(true).expect("a non-blocking listener");
        let state = Arc::new(State { watched: watched.to_vec(), ..State::default() });
        let (shared, upstream) = (Arc::clone(&state), upstream.to_owned());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener).expect("the listener");
                while let Ok((client, _)) = listener.accept().await {
                    if !shared.closed.load(Ordering::SeqCst) {
                        tokio::spawn(forward(client, upstream.clone(), Arc::clone(&shared)));
                    }
                }
            });
        });
        Proxy { addr, state }
    }

    /// `http://` and its address.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests forwarded since the last call.
    pub fn take_requests(&self) -> u64 {
        self.state.requests.swap(0, Ordering::SeqCst)
    }

    /// Holds every request back by `delay` from now on.
    pub fn set_delay(&self, delay: Duration) {
        self.state.delay_ms.store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// Fails the next `requests` requests.
    pub fn fail_next(&self, requests: usize) {
        self.state.failures.store(requests, Ordering::SeqCst);
    }

    pub fn failures_left(&self) -> usize {
        self.state.failures.load(Ordering::SeqCst)
    }

    /// Closed, it drops every connection it carries within 20 ms and refuses new ones.
    pub fn set_open(&self, open: bool) {
        self.state.closed.store(!open, Ordering::SeqCst);
    }

    /// The connections it carries now.
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// The most requests holding the watched pattern that were sent and not yet answered at once.
    pub fn most_watched_at_once(&self) -> usize {
        self.state.watched_most.load(Ordering::SeqCst)
    }
}

/// Where a request read so far ends: its head's length, and then its whole length.
fn request_length(bytes: &[u8]) -> Option<usize> {
    let head = bytes.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let text = String::from_utf8_lossy(&bytes[..head]);
    let length = text
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse::<usize>().ok())
        .unwrap_or(0);
    Some(head + length)
}

async fn forward(client: TcpStream, upstream: String, state: Arc<State>) {
    let Ok(server) = TcpStream::connect(&upstream).await else { return };
    state.connections.fetch_add(1, Ordering::SeqCst);
    let _carried = Carried(&state);
    let _ = (client.set_nodelay(true), server.set_nodelay(true));
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let answering = AtomicBool::new(false);
    // Ends with Some(answer 503 or not) when a request was failed.
    let upward = async {
        let (mut buffer, mut pending) = (vec![0u8; 65536], Vec::new());
        loop {
            let n = match client_read.read(&mut buffer).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => n,
            };
            pending.extend_from_slice(&buffer[..n]);
            // Forward every whole request read so far, one at a time, as it was sent.
            while let Some(length) = request_length(&pending).filter(|length| *length <= pending.len()) {
                let request: Vec<u8> = pending.drain(..length).collect();
                let failures = &state.failures;
                if failures.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |f| f.checked_sub(1)).is_ok() {
                    // Every other failure answers 503; the rest drop the connection.
                    return Some(failures.load(Ordering::SeqCst) & 1 == 0);
                }
                state.requests.fetch_add(1, Ordering::SeqCst);
                if !state.watched.is_empty() && request.windows(state.watched.len()).any(|w| w == state.watched) {
                    answering.store(true, Ordering::SeqCst);
                    let open = state.watched_open.fetch_add(1, Ordering::SeqCst) + 1;
                    state.watched_most.fetch_max(open, Ordering::SeqCst);
                }
                let delay = state.delay_ms.load(Ordering::SeqCst);
                if delay > 0 {
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                }
                if server_write.write_all(&request).await.is_err() {
                    return None;
                }
            }
        }
    };
    // An answer's first bytes close the watched request it answers (one request at a time per connection).
    let downward = async {
        let mut buffer = vec![0u8; 65536];
        loop {
            let n = match server_read.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if answering.swap(false, Ordering::SeqCst) {
                state.watched_open.fetch_sub(1, Ordering::SeqCst);
            }
            if client_write.write_all(&buffer[..n]).await.is_err() {
                return;
            }
        }
    };
    let cut = async {
        while !state.closed.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let failed = tokio::select! { failed = upward => failed, _ = downward => None, _ = cut => None };
    if failed == Some(true) {
        let refusal = "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
        let _ = client_write.write_all(refusal.as_bytes()).await;
    }
}

/// Counts a connection off when it ends, however it ends.
struct Carried<'a>(&'a State);

impl Drop for Carried<'_> {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::SeqCst);
    }
}

/// `host:port` of a server URL, for the proxy to forward to.
pub fn host_and_port(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let host = rest.split('/').next().unwrap_or_default();
    match (host.contains(':'), url.starts_with("https://") || url.starts_with("libsql://")) {
        (true, _) => host.to_owned(),
        (false, true) => format!("{host}:443"),
        (false, false) => format!("{host}:80"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_whole_at_its_head_and_content_length() {
        let request = b"POST /v3/pipeline HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
        assert_eq!(request_length(request), Some(request.len()));
        assert_eq!(request_length(&request[..20]), None, "the head is not whole");
        assert_eq!(request_length(&request[..request.len() - 1]), Some(request.len()), "the body is not whole");
        assert_eq!(request_length(b"GET / HTTP/1.1\r\nhost: x\r\n\r\nGET"), Some(27));
    }
}
