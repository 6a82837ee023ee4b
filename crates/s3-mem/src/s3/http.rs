//! How the S3 endpoint serves a connection: hyper HTTP/1.1 with the connection-level faults
//! (resets, no `Date` header), the request log, then the fault plan's answers or s3s.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use s3s::service::S3Service;
use s3s::{S3Error, S3ErrorCode};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::addressing::{host_bucket, to_origin_form};
use super::faults::Injected;
use super::state::Shared;
use super::{HttpResponse, StdError};
use crate::serve::wait_shutdown;

pub(super) async fn serve_connection(
    stream: TcpStream,
    shared: Arc<Shared>,
    service: S3Service,
    mut shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let shared_no_date = shared.faults.lock().no_date;
    let reset = Arc::new(AtomicBool::new(false));
    let io = FaultIo {
        io: TokioIo::new(stream),
        reset: Arc::clone(&reset),
    };
    let svc = service_fn(move |req| {
        handle(
            Arc::clone(&shared),
            service.clone(),
            Arc::clone(&reset),
            req,
        )
    });
    let no_date = shared_no_date;
    let conn = http1::Builder::new()
        .auto_date_header(!no_date)
        .serve_connection(io, svc);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        res = conn.as_mut() => {
            if let Err(err) = res {
                tracing::debug!(%err, "s3 endpoint: connection ended with an error");
            }
        }
        () = wait_shutdown(&mut shutdown) => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// Error returned to hyper to drop a connection without answering.
#[derive(Debug)]
pub(super) struct InjectedReset;

impl std::fmt::Display for InjectedReset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("injected connection reset")
    }
}

impl std::error::Error for InjectedReset {}

pub(super) async fn handle(
    shared: Arc<Shared>,
    service: S3Service,
    reset: Arc<AtomicBool>,
    mut req: hyper::Request<Incoming>,
) -> Result<HttpResponse, StdError> {
    let slot = shared
        .recording
        .load(Ordering::Relaxed)
        .then(|| shared.log_arrival(&req));
    to_origin_form(&mut req);
    let answer = answer(&shared, service, &reset, req).await;
    if let Some(slot) = slot {
        let status = answer.as_ref().map_or(0, |resp| resp.status().as_u16());
        shared.log_status(slot, status);
    }
    answer
}

/// Answers one request in origin form: the fault plan, then s3s.
pub(super) async fn answer(
    shared: &Shared,
    service: S3Service,
    reset: &AtomicBool,
    req: hyper::Request<Incoming>,
) -> Result<HttpResponse, StdError> {
    Shared::bump(&shared.counters.requests);
    let amz_date = req
        .headers()
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok());
    // The fault plan reads buckets and partitions from a path-style path.
    let bucket = shared.domain.as_deref().and_then(|domain| {
        let host = req.headers().get(hyper::header::HOST)?.to_str().ok()?;
        host_bucket(host, domain)
    });
    let (latency, injected) = match bucket {
        Some(bucket) => shared.plan(&format!("/{bucket}{}", req.uri().path()), amz_date),
        None => shared.plan(req.uri().path(), amz_date),
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match injected {
        Injected::None => {}
        Injected::Reset => {
            Shared::bump(&shared.counters.reset_faults);
            // The flag makes the socket close with RST once hyper drops the connection,
            // which it does, without writing anything, when the service fails.
            reset.store(true, Ordering::Relaxed);
            return Err(Box::new(InjectedReset));
        }
        Injected::SlowDown | Injected::Throttled => {
            if matches!(injected, Injected::SlowDown) {
                Shared::bump(&shared.counters.slowdown_faults);
            }
            return Ok(error_response(
                S3ErrorCode::SlowDown,
                "Please reduce your request rate.",
            ));
        }
        Injected::AccessDenied => {
            Shared::bump(&shared.counters.access_denied_faults);
            return Ok(error_response(S3ErrorCode::AccessDenied, "Access Denied"));
        }
        Injected::Skewed(clock) => {
            Shared::bump(&shared.counters.skewed_faults);
            let mut resp = error_response(
                S3ErrorCode::RequestTimeTooSkewed,
                "The difference between the request time and the current time is too large.",
            );
            let date = clock.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
            if let Ok(v) = hyper::header::HeaderValue::from_str(&date) {
                resp.headers_mut().insert(hyper::header::DATE, v);
            }
            return Ok(resp);
        }
    }
    service
        .call(req.map(s3s::Body::from))
        .await
        .map_err(StdError::from)
}

pub(super) fn error_response(code: S3ErrorCode, message: &'static str) -> HttpResponse {
    let status = code
        .status_code()
        .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    S3Error::with_message(code, message)
        .to_http_response()
        .unwrap_or_else(|_| {
            let mut resp = hyper::Response::new(s3s::Body::empty());
            *resp.status_mut() = status;
            resp
        })
}

/// The TCP stream, plus a flag that turns its close into a reset (`SO_LINGER` 0).
pub(super) struct FaultIo {
    pub(super) io: TokioIo<TcpStream>,
    pub(super) reset: Arc<AtomicBool>,
}

impl Drop for FaultIo {
    fn drop(&mut self) {
        if self.reset.load(Ordering::Relaxed) {
            let _ = self.io.inner().set_zero_linger();
        }
    }
}

impl hyper::rt::Read for FaultIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        hyper::rt::Read::poll_read(Pin::new(&mut self.get_mut().io), cx, buf)
    }
}

impl hyper::rt::Write for FaultIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        hyper::rt::Write::poll_write(Pin::new(&mut self.get_mut().io), cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        hyper::rt::Write::poll_flush(Pin::new(&mut self.get_mut().io), cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        hyper::rt::Write::poll_shutdown(Pin::new(&mut self.get_mut().io), cx)
    }

    fn is_write_vectored(&self) -> bool {
        hyper::rt::Write::is_write_vectored(&self.io)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        hyper::rt::Write::poll_write_vectored(Pin::new(&mut self.get_mut().io), cx, bufs)
    }
}
