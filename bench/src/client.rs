//! The HTTP side: requests as bytes, keep-alive connections, and closed loops of them that measure.

use std::rc::Rc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

pub const SECRET: &str = "bench-secret";

fn sign(body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// `POST /webhook` of `body` with the signature `signature`.
pub fn post_signed(body: &str, signature: &str) -> Vec<u8> {
    format!(
        "POST /webhook HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nX-Signature: {signature}\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// `POST /webhook` of `body`, correctly signed.
pub fn post(body: &str) -> Vec<u8> {
    post_signed(body, &sign(body))
}

pub fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n").into_bytes()
}

/// One keep-alive HTTP/1.1 connection; answers are read by Content-Length.
pub struct Connection {
    stream: BufReader<TcpStream>,
    line: String,
    body: Vec<u8>,
}

impl Connection {
    pub async fn open(addr: &str) -> std::io::Result<Connection> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Connection { stream: BufReader::new(stream), line: String::new(), body: Vec::new() })
    }

    /// Sends one request and returns the status code ([`Connection::body`] holds the answer's body).
    pub async fn call(&mut self, request: &[u8]) -> std::io::Result<u16> {
        self.stream.get_mut().write_all(request).await?;
        self.line.clear();
        self.stream.read_line(&mut self.line).await?;
        let status = self.line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let mut length = 0;
        loop {
            self.line.clear();
            if self.stream.read_line(&mut self.line).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let header = self.line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        self.body.resize(length, 0);
        self.stream.read_exact(&mut self.body).await?;
        Ok(status)
    }

    /// The body of the last answer.
    pub fn body(&self) -> &[u8] {
        &self.body
    }
}

/// Request number n of a load, and the one status it must get; any other answer counts as an error.
pub type Load = Rc<dyn Fn(u64) -> (Vec<u8>, u16)>;

/// A load whose every request must get 200.
pub fn all_ok(make: impl Fn(u64) -> Vec<u8> + 'static) -> Load {
    Rc::new(move |n| (make(n), 200))
}

/// When a load stops: after a time, or after a number of requests in all.
#[derive(Clone, Copy)]
pub enum Until {
    Elapsed(Duration),
    Sent(u64),
}

pub struct Outcome {
    pub requests: u64,
    pub errors: u64,
    pub elapsed: Duration,
    pub latency_us: Histogram<u64>,
}

impl Outcome {
    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    /// A latency quantile in milliseconds.
    pub fn ms(&self, quantile: f64) -> f64 {
        self.latency_us.value_at_quantile(quantile) as f64 / 1000.0
    }
}

/// Runs `connections` closed loops of `load` until `until`.
pub async fn drive(addr: &str, connections: usize, until: Until, load: Load) -> Outcome {
    let started = Instant::now();
    let next = Rc::new(std::cell::Cell::new(0u64));
    let done = move |n: u64| match until {
        Until::Elapsed(time) => started.elapsed() >= time,
        Until::Sent(limit) => n >= limit,
    };
    let local = tokio::task::LocalSet::new();
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let (load, next, addr) = (Rc::clone(&load), Rc::clone(&next), addr.to_owned());
            local.spawn_local(async move {
                let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
                let (mut sent, mut errors) = (0u64, 0u64);
                let mut conn = Connection::open(&addr).await.expect("connect");
                loop {
                    let n = next.get();
                    if done(n) {
                        break;
                    }
                    next.set(n + 1);
                    let (request, expected) = load(n);
                    let started = Instant::now();
                    match conn.call(&request).await {
                        Ok(status) if status == expected => {}
                        Ok(_) => errors += 1,
                        Err(_) => {
                            errors += 1;
                            conn = Connection::open(&addr).await.expect("reconnect");
                        }
                    }
                    histogram.record(started.elapsed().as_micros().max(1) as u64).unwrap();
                    sent += 1;
                }
                (sent, errors, histogram)
            })
        })
        .collect();
    let results = local
        .run_until(async {
            let mut all = Vec::new();
            for task in tasks {
                all.push(task.await.unwrap());
            }
            all
        })
        .await;
    let mut outcome = Outcome {
        requests: 0,
        errors: 0,
        elapsed: started.elapsed(),
        latency_us: Histogram::new_with_bounds(1, 60_000_000, 3).unwrap(),
    };
    for (sent, errors, histogram) in results {
        outcome.requests += sent;
        outcome.errors += errors;
        outcome.latency_us.add(histogram).unwrap();
    }
    outcome
}
