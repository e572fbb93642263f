//! The local runtime: an HTTP/1.1 listener feeding the same [`handle`] as Lambda (SPEC §1).
//!
//! It guards the process against what a Lambda front door would: slow headers are cut off after
//! [`HEADER_READ_TIMEOUT`], bodies over the limit are refused without being read whole, and SIGTERM or
//! SIGINT stops accepting, lets in-flight requests finish (up to [`DRAIN_TIMEOUT`]) and exits 0.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use lambda_http::http::{header, Request, Response};
use lambda_http::Body;
use tokio::net::TcpListener;

use crate::webhook::Oversized;
use crate::{handle, App};

pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Binds `addr` and serves until SIGTERM or SIGINT. Logs the bound address (useful with port 0).
pub async fn serve(app: Arc<App>, addr: SocketAddr) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "listening");
    let graceful = GracefulShutdown::new();
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);

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
        let _ = stream.set_nodelay(true);
        let app = Arc::clone(&app);
        let connection =
            http1::Builder::new().timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT).serve_connection(
                TokioIo::new(stream),
                service_fn(move |req| {
                    let app = Arc::clone(&app);
                    async move { Ok::<_, Infallible>(serve_request(&app, req).await) }
                }),
            );
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // A client that vanishes or sends garbage ends only its own connection.
            let _ = connection.await;
        });
    }

    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
        tracing::warn!("in-flight requests did not finish in time");
    }
    tracing::info!("stopped");
    Ok(())
}

async fn serve_request(app: &App, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (mut parts, incoming) = req.into_parts();
    let limit = app.max_body_bytes;
    let declared = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let body = if declared.is_some_and(|n| n > limit as u64) {
        // Refused on the declared length alone, before a byte of it is read.
        None
    } else {
        match Limited::new(incoming, limit).collect().await {
            Ok(collected) => Some(collected.to_bytes()),
            Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => None,
            // The client went away mid-body; it will never read an answer.
            Err(_) => Some(Bytes::new()),
        }
    };
    let body = match body {
        Some(bytes) if bytes.is_empty() => Body::Empty,
        Some(bytes) => Body::Binary(bytes.into()),
        None => {
            parts.extensions.insert(Oversized);
            Body::Empty
        }
    };

    let (parts, body) = handle(app, Request::from_parts(parts, body)).await.into_parts();
    let bytes = match body {
        Body::Empty => Bytes::new(),
        Body::Text(text) => Bytes::from(text),
        Body::Binary(bytes) => Bytes::from(bytes),
        // lambda_http's Body is non-exhaustive; our handler only builds the variants above.
        _ => Bytes::new(),
    };
    Response::from_parts(parts, Full::new(bytes))
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
