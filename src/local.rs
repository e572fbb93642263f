//! The local runtime: an HTTP/1.1 listener feeding the same [`handle`] as Lambda (SPEC §1).
//!
//! It guards the process against what a Lambda front door would:
//! - headers must arrive whole within [`HEADER_READ_TIMEOUT`] (an idle keep-alive connection waiting for
//!   its next request is on the same clock), and bodies within [`BODY_READ_TIMEOUT`] (408);
//! - more than [`MAX_HEADERS`] headers or [`MAX_HEADER_BYTES`] of them get 431;
//! - bodies over the limit get 413 on their declared length, or as soon as the limit is crossed, and the
//!   rest is read and discarded for a bounded time and size so the client can read that answer;
//! - at most `MAX_CONNECTIONS` connections are served at once; one more is answered 503 and closed, so
//!   slow or idle clients cannot take every slot for longer than the timeouts above;
//! - SIGTERM or SIGINT stops accepting, lets in-flight requests finish (up to [`DRAIN_TIMEOUT`]), exits 0.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use lambda_http::http::{header, HeaderMap, HeaderValue, Request, Response};
use lambda_http::Body;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::app::App;
use crate::handler::handle;
use crate::transport::{BodyFault, HeadersTooLarge};

pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How much of a refused body is read and discarded after its early 413, and for how long at most.
pub const LINGER_BYTES: usize = 16 * 1024 * 1024;
pub const LINGER_TIME: Duration = Duration::from_secs(10);
/// Limits answered with a JSON 431. hyper's own parser stops at twice these, with a bare 431.
pub const MAX_HEADERS: usize = 64;
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Binds `addr` and serves until SIGTERM or SIGINT. Logs the bound address (useful with port 0).
pub async fn serve(app: Arc<App>, addr: SocketAddr) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "listening");
    let graceful = GracefulShutdown::new();
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    let mut cap = ConnectionCap::new(app.max_connections);

    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors and the like: back off instead of spinning.
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            signal = &mut shutdown => {
                tracing::info!(signal, "shutting down: draining in-flight requests");
                break;
            }
        };
        let Some(slot) = cap.admit(&stream) else { continue };
        let connection = graceful.watch(serve_connection(Arc::clone(&app), stream));
        tokio::spawn(async move {
            // A client that vanishes or sends garbage ends only its own connection.
            let _ = connection.await;
            drop(slot);
        });
    }

    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
        tracing::warn!("in-flight requests did not finish in time");
    }
    tracing::info!("stopped");
    Ok(())
}

/// HTTP/1.1 on one accepted connection, with the header limits and timeouts above.
fn serve_connection(app: Arc<App>, stream: TcpStream) -> impl hyper_util::server::graceful::GracefulConnection {
    let _ = stream.set_nodelay(true);
    http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_headers(2 * MAX_HEADERS)
        .max_header_size(2 * MAX_HEADER_BYTES)
        .serve_connection(
            TokioIo::new(stream),
            service_fn(move |req| {
                let app = Arc::clone(&app);
                async move { Ok::<_, Infallible>(serve_request(&app, req).await) }
            }),
        )
}

/// At most `MAX_CONNECTIONS` connections at once; one more is refused with a 503, logged at most once a
/// second however many arrive.
struct ConnectionCap {
    slots: Arc<Semaphore>,
    max: usize,
    last_refusal_logged: Option<Instant>,
}

impl ConnectionCap {
    fn new(max: usize) -> ConnectionCap {
        ConnectionCap { slots: Arc::new(Semaphore::new(max)), max, last_refusal_logged: None }
    }

    /// A slot for `stream`, held as long as its connection lives; none, after refusing it, when all are taken.
    fn admit(&mut self, stream: &TcpStream) -> Option<OwnedSemaphorePermit> {
        let slot = Arc::clone(&self.slots).try_acquire_owned().ok();
        if slot.is_none() {
            refuse(stream);
            if self.last_refusal_logged.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
                tracing::warn!(max_connections = self.max, "connection cap reached; refusing with 503");
                self.last_refusal_logged = Some(Instant::now());
            }
        }
        slot
    }
}

/// Answers a connection over the cap without reading its request, and closes it. The answer is written
/// here rather than by [`handle`], so a flood of connections costs no more than this.
fn refuse(stream: &TcpStream) {
    // Whatever of the request has already arrived is read first: closing on unread data would reset
    // the connection and could destroy the answer before the client reads it.
    let _ = stream.try_read(&mut [0u8; 4096]);
    let body = r#"{"detail":"too many connections"}"#;
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         x-request-id: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len(),
        uuid::Uuid::new_v4()
    );
    let _ = stream.try_write(answer.as_bytes());
}

async fn serve_request(app: &App, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (mut parts, incoming) = req.into_parts();
    // The request target as sent: a path and query, or for the absolute form an authority before them.
    let target_bytes = parts.uri.authority().map_or(0, |a| a.as_str().len())
        + parts.uri.path_and_query().map_or(0, |pq| pq.as_str().len());
    let header_bytes =
        target_bytes + parts.headers.iter().map(|(name, value)| name.as_str().len() + value.len() + 4).sum::<usize>();
    if parts.headers.len() > MAX_HEADERS || header_bytes > MAX_HEADER_BYTES {
        parts.extensions.insert(HeadersTooLarge);
    }
    let read = read_body(incoming, &parts.headers, app.max_body_bytes).await;
    if let Some(fault) = read.fault {
        parts.extensions.insert(fault);
    }
    let body = if read.bytes.is_empty() { Body::Empty } else { Body::Binary(read.bytes.into()) };

    let (mut parts, body) = handle(app, Request::from_parts(parts, body)).await.into_parts();
    if let Some(unread) = read.unread {
        tokio::spawn(linger(unread));
        parts.headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    let bytes = match body {
        Body::Empty => Bytes::new(),
        Body::Text(text) => Bytes::from(text),
        Body::Binary(bytes) => Bytes::from(bytes),
        // lambda_http's Body is non-exhaustive; our handler only builds the variants above.
        _ => Bytes::new(),
    };
    Response::from_parts(parts, Full::new(bytes))
}

/// What reading a request's body came to.
struct ReadBody {
    bytes: Bytes,
    fault: Option<BodyFault>,
    /// The rest of a body refused for its size, still arriving.
    unread: Option<Incoming>,
}

/// Reads a body of at most `limit` bytes within [`BODY_READ_TIMEOUT`], or says why it could not.
async fn read_body(mut incoming: Incoming, headers: &HeaderMap, limit: usize) -> ReadBody {
    let refused = |unread| ReadBody { bytes: Bytes::new(), fault: Some(BodyFault::TooLarge), unread: Some(unread) };
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        // Refused on the declared length alone, before a byte of it is read.
        return refused(incoming);
    }
    let mut body = BytesMut::new();
    let within_limit = tokio::time::timeout(BODY_READ_TIMEOUT, async {
        while let Some(frame) = incoming.frame().await {
            // Trailers carry no body bytes.
            let Ok(data) = frame?.into_data() else { continue };
            if body.len() + data.len() > limit {
                return Ok(false);
            }
            body.extend_from_slice(&data);
        }
        Ok::<_, hyper::Error>(true)
    })
    .await;
    match within_limit {
        Ok(Ok(true)) => ReadBody { bytes: body.freeze(), fault: None, unread: None },
        Ok(Ok(false)) => refused(incoming),
        // The client went away mid-body; it will never read an answer.
        Ok(Err(_)) => ReadBody { bytes: Bytes::new(), fault: None, unread: None },
        Err(_) => ReadBody { bytes: Bytes::new(), fault: Some(BodyFault::TimedOut), unread: None },
    }
}

/// Reads and throws away the rest of a body refused for its size, at most [`LINGER_BYTES`] within
/// [`LINGER_TIME`], while its 413 goes out. Many clients write their whole request before they read the
/// answer, and closing with their data unread would reset the connection under them (nginx's lingering
/// close); past the bounds the connection is closed all the same.
async fn linger(mut unread: Incoming) {
    let mut discarded = 0;
    let _ = tokio::time::timeout(LINGER_TIME, async {
        while let Some(Ok(frame)) = unread.frame().await {
            discarded += frame.data_ref().map_or(0, Bytes::len);
            if discarded > LINGER_BYTES {
                break;
            }
        }
    })
    .await;
}

async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        tracing::warn!("cannot listen for signals; stop the process with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

/// `webhook-ingest healthcheck`: asks the listener on `addr` for `/health/live` and reports through the exit
/// code, so a container image without a shell or curl can still have a HEALTHCHECK.
pub fn healthcheck(addr: SocketAddr) -> bool {
    use std::io::{Read, Write};
    // A wildcard bind address is reached over loopback.
    let target = match addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => SocketAddr::from(([127, 0, 0, 1], addr.port())),
        ip if ip.is_unspecified() => SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, addr.port())),
        _ => addr,
    };
    let timeout = Duration::from_secs(3);
    let Ok(mut stream) = std::net::TcpStream::connect_timeout(&target, timeout) else { return false };
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(timeout));
    let mut answer = [0u8; 12];
    stream.write_all(b"GET /health/live HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").is_ok()
        && stream.read_exact(&mut answer).is_ok()
        && answer.starts_with(b"HTTP/1.1 200")
}
