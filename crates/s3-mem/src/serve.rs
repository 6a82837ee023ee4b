//! What the endpoints share: a tokio listener's accept loop with graceful shutdown (a grace
//! period, stop on drop), used by all three ([`crate::Endpoint`] serves each connection itself,
//! for its connection-level faults); for the hand-written ones ([`crate::glacier`],
//! [`crate::express`]), beside `SigV4` ([`crate::sigv4`]), per-connection hyper HTTP/1.1 serving;
//! and the small helpers the endpoints use (random numbers and ids, timestamps, query strings).

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::hash::BuildHasher;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::sigv4::form_decode;

/// What every handler answers.
pub(crate) type HttpResponse = Response<Full<Bytes>>;

/// How long [`Server::shutdown`] lets in-flight requests finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// A running HTTP/1.1 server: every request of every connection goes to one handler.
///
/// Dropping it stops it in the background (the listener closes, connections finish their
/// in-flight request); [`Server::shutdown`] stops it and waits.
pub(crate) struct Server {
    addr: SocketAddr,
    shutdown_tx: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds `addr` (port 0 picks a free port) and serves every request with `handler`;
    /// `name` labels the debug logs (e.g. `glacier endpoint`).
    ///
    /// Must be called inside a tokio runtime; the server runs on spawned tasks.
    ///
    /// # Errors
    /// Fails if the listener cannot be bound.
    pub(crate) async fn start<H, F>(
        addr: SocketAddr,
        name: &'static str,
        handler: H,
    ) -> io::Result<Server>
    where
        H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
        F: Future<Output = HttpResponse> + Send + 'static,
    {
        let listener = TcpListener::bind(addr).await?;
        Self::serve(listener, name, move |stream, shutdown| {
            serve_connection(stream, name, handler.clone(), shutdown)
        })
    }

    /// Serves every connection accepted on `listener` with `connection` (given the stream and
    /// the shutdown signal, which it must heed by finishing its in-flight request and closing);
    /// `name` labels the debug logs.
    ///
    /// # Errors
    /// Fails if the listener's address cannot be read.
    pub(crate) fn serve<C, F>(
        listener: TcpListener,
        name: &'static str,
        connection: C,
    ) -> io::Result<Server>
    where
        C: Fn(TcpStream, watch::Receiver<bool>) -> F + Send + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let addr = listener.local_addr()?;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, name, connection, shutdown_rx));
        Ok(Server {
            addr,
            shutdown_tx,
            task: Some(task),
        })
    }

    /// Address the server listens on.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting connections, lets in-flight requests finish (up to 2 s), closes every
    /// connection and ends the accept loop.
    pub(crate) async fn shutdown(mut self) {
        self.shutdown_tx.send_replace(true);
        if let Some(task) = self.task.take() {
            // A panicked or cancelled accept task is already stopped.
            let _ = task.await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown_tx.send_replace(true);
    }
}

/// Returns once shutdown is signalled.
pub(crate) async fn wait_shutdown(rx: &mut watch::Receiver<bool>) {
    // A dropped sender also means shutdown.
    let _ = rx.wait_for(|stop| *stop).await;
}

async fn accept_loop<C, F>(
    listener: TcpListener,
    name: &'static str,
    connection: C,
    mut shutdown: watch::Receiver<bool>,
) where
    C: Fn(TcpStream, watch::Receiver<bool>) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let conn_shutdown = shutdown.clone();
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            () = wait_shutdown(&mut shutdown) => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    conns.spawn(connection(stream, conn_shutdown.clone()));
                }
                Err(err) => {
                    // E.g. out of file descriptors: back off instead of spinning.
                    tracing::debug!(%err, "{name}: accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
        }
    }
    drop(listener);
    let drain = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        conns.abort_all();
        while conns.join_next().await.is_some() {}
    }
}

async fn serve_connection<H, F>(
    stream: TcpStream,
    name: &'static str,
    handler: H,
    mut shutdown: watch::Receiver<bool>,
) where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = HttpResponse> + Send + 'static,
{
    let _ = stream.set_nodelay(true);
    let svc = service_fn(move |req| {
        let answer = handler(req);
        async move { Ok::<_, Infallible>(answer.await) }
    });
    // hyper sends a `Date` header on every response: the janitor compares its clock with it.
    let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        res = conn.as_mut() => {
            if let Err(err) = res {
                tracing::debug!(%err, "{name}: connection ended with an error");
            }
        }
        () = wait_shutdown(&mut shutdown) => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

// ---------------------------------------------------------------------------------------
// Helpers the endpoints render with

/// `SplitMix64` over an atomic counter, seeded from the clock: cheap, lock-free, good enough
/// for ids, tokens, secrets and fault draws of a test endpoint (not for real secrets).
pub(crate) struct Rng(AtomicU64);

impl Rng {
    pub(crate) fn new() -> Self {
        let seed = std::collections::hash_map::RandomState::new().hash_one(SystemTime::now());
        Rng(AtomicU64::new(seed))
    }

    pub(crate) fn next_u64(&self) -> u64 {
        const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut z = self
            .0
            .fetch_add(GAMMA, Ordering::Relaxed)
            .wrapping_add(GAMMA);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn next_f64(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let v = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        v
    }

    /// `len` characters drawn from a 64-character alphabet.
    pub(crate) fn string(&self, len: usize, alphabet: &[u8; 64]) -> String {
        let mut out = String::with_capacity(len);
        let mut bits = 0u64;
        for i in 0..len {
            // Ten 6-bit characters per 64-bit draw.
            if i % 10 == 0 {
                bits = self.next_u64();
            }
            out.push(char::from(
                alphabet[usize::try_from(bits & 63).unwrap_or(0)],
            ));
            bits >>= 6;
        }
        out
    }

    /// A request id: 32 uppercase hex digits.
    pub(crate) fn request_id(&self) -> String {
        format!("{:016X}{:016X}", self.next_u64(), self.next_u64())
    }
}

/// The parameters of a query string, decoded as a form (`+` is a space).
pub(crate) fn parse_query(query: Option<&str>) -> HashMap<String, String> {
    query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (form_decode(k), form_decode(v))
        })
        .collect()
}

/// Keeps timestamps within what markers and ISO 8601 dates render (1970 to 9999).
pub(crate) fn clamp_time(t: DateTime<Utc>) -> DateTime<Utc> {
    let lo = DateTime::<Utc>::UNIX_EPOCH;
    let hi = DateTime::from_timestamp(253_402_300_799, 0).unwrap_or(t); // 9999-12-31T23:59:59Z
    t.clamp(lo, hi)
}

/// ISO 8601 with milliseconds, as AWS renders dates in documents: `2026-12-01T10:00:00.000Z`.
pub(crate) fn iso8601(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}
