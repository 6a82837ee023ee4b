//! The daemon's HTTP side: `/metrics` (Prometheus text format), `/healthz` (the process is alive) and
//! `/readyz` (configuration loaded and every target swept recently enough). Everything else is 404.
//! Handlers only read shared state, so a scrape never waits for a sweep.
//!
//! The accept loop is written out (hyper's HTTP/1 connection, no framework) because it has to stay
//! bounded whatever clients do: headers must arrive within [`HEADER_READ_TIMEOUT`] (this also closes
//! idle keep-alive connections), at most [`MAX_CONNECTIONS`] connections are open (fewer when the
//! descriptor limit is low), and at that cap, or when `accept` runs out of descriptors, the
//! connection idle the longest is closed to make room, so `/healthz` keeps answering. Accept errors
//! never stop the server, and never spin.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::metrics::Metrics;

/// Says whether the daemon is ready, and if not, why.
pub type ReadyCheck = Arc<dyn Fn() -> Result<String, String> + Send + Sync>;

/// A request's headers must be complete this long after the connection opened or its previous
/// response was sent; otherwise the connection is closed (slow clients, idle keep-alives).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The most connections open at once. Scrapers and probes need a handful.
pub const MAX_CONNECTIONS: usize = 256;

/// How long the accept loop pauses when the process is out of descriptors and no connection of
/// ours can be closed to free one.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// After the server is told to stop, how long open requests may take.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// Connections the kernel queues before they are accepted: room for a burst of clients (tokio's
/// default of 128 drops SYNs under one, which clients feel as a one-second retransmit).
const LISTEN_BACKLOG: u32 = 1024;

/// Binds `addr` (an `IP:port` literal) for [`serve`].
pub fn bind(addr: &str) -> std::io::Result<TcpListener> {
    let addr: std::net::SocketAddr = addr
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Serves until `cancel` fires, then finishes the requests in flight (up to 2 s).
pub async fn serve(
    listener: TcpListener,
    metrics: Metrics,
    ready: ReadyCheck,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let (soft, hard) = raise_descriptor_limit();
    let max = connection_cap(soft);
    tracing::debug!(
        max_connections = max,
        header_read_timeout_seconds = HEADER_READ_TIMEOUT.as_secs(),
        nofile_soft = soft,
        nofile_hard = hard,
        "HTTP server limits"
    );
    let app = App { metrics, ready };
    let table = Arc::new(Table::default());
    let permits = Arc::new(Semaphore::new(max));
    let tasks = TaskTracker::new();
    let mut last_warning: Option<Instant> = None;
    loop {
        // One permit per open connection, taken before accepting: at the cap, close the
        // connection idle the longest (a slowloris or an idle keep-alive) rather than let probes wait.
        let permit = match permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                table.shed_oldest();
                tokio::select! {
                    p = permits.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                    () = cancel.cancelled() => break,
                }
            }
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors: the pending connection stays queued and accept would
                    // fail again at once. Free one of ours if we can, else pause.
                    let exhausted = matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE));
                    if last_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                        tracing::warn!(error = %e, open_connections = table.len(), "Accepting an HTTP connection failed");
                        last_warning = Some(Instant::now());
                    }
                    if exhausted && table.shed_oldest() {
                        // Let the shed connection's task run and release its descriptor.
                        tokio::task::yield_now().await;
                    } else {
                        tokio::select! {
                            () = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                            () = cancel.cancelled() => break,
                        }
                    }
                    continue;
                }
            },
            () = cancel.cancelled() => break,
        };
        let (id, state) = table.open();
        let (app, table, stop) = (app.clone(), table.clone(), cancel.clone());
        tasks.spawn(async move {
            serve_connection(stream, app, &state, stop).await;
            table.close(id);
            drop(permit);
        });
    }
    tasks.close();
    let _ = tokio::time::timeout(STOP_GRACE, tasks.wait()).await;
    Ok(())
}

/// One connection, until the client closes it, a timeout closes it, it is shed, or the server stops.
async fn serve_connection(
    stream: tokio::net::TcpStream,
    app: App,
    state: &Arc<ConnState>,
    stop: CancellationToken,
) {
    let touched = state.clone();
    let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
        touched.touch();
        let response = app.respond(&req);
        async move { Ok::<_, Infallible>(response) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        // Shed: dropping the connection closes its socket.
        () = state.shed.cancelled() => {}
        () = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(STOP_GRACE, conn).await;
        }
    }
}

/// The routes.
#[derive(Clone)]
struct App {
    metrics: Metrics,
    ready: ReadyCheck,
}

impl App {
    fn respond<B>(&self, req: &Request<B>) -> Response<Full<Bytes>> {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return text(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed\n".into(),
            );
        }
        match req.uri().path() {
            "/metrics" => {
                let mut r = text(StatusCode::OK, self.metrics.render());
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                );
                r
            }
            "/healthz" => text(StatusCode::OK, "ok\n".into()),
            "/readyz" => match (self.ready)() {
                Ok(msg) => text(StatusCode::OK, format!("ready: {msg}\n")),
                Err(why) => text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("not ready: {why}\n"),
                ),
            },
            _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
        }
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// One open connection: when it last did something, and how to close it from outside.
struct ConnState {
    /// Milliseconds since the table was created: at accept, then at each request.
    last_active: AtomicU64,
    shed: CancellationToken,
    epoch: Instant,
}

impl ConnState {
    fn touch(&self) {
        let ms = self.epoch.elapsed().as_millis() as u64;
        self.last_active.store(ms, Ordering::Relaxed);
    }
}

/// The open connections.
struct Table {
    epoch: Instant,
    next: AtomicU64,
    open: parking_lot::Mutex<HashMap<u64, Arc<ConnState>>>,
}

impl Default for Table {
    fn default() -> Self {
        Table {
            epoch: Instant::now(),
            next: AtomicU64::new(0),
            open: parking_lot::Mutex::default(),
        }
    }
}

impl Table {
    fn open(&self) -> (u64, Arc<ConnState>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(ConnState {
            last_active: AtomicU64::new(0),
            shed: CancellationToken::new(),
            epoch: self.epoch,
        });
        state.touch();
        self.open.lock().insert(id, state.clone());
        (id, state)
    }

    fn close(&self, id: u64) {
        self.open.lock().remove(&id);
    }

    fn len(&self) -> usize {
        self.open.lock().len()
    }

    /// Closes the connection that has been idle the longest; false when there is none.
    fn shed_oldest(&self) -> bool {
        let mut open = self.open.lock();
        let oldest = open
            .iter()
            .min_by_key(|(_, s)| s.last_active.load(Ordering::Relaxed))
            .map(|(id, _)| *id);
        match oldest.and_then(|id| open.remove(&id)) {
            Some(s) => {
                s.shed.cancel();
                true
            }
            None => false,
        }
    }
}

/// At most [`MAX_CONNECTIONS`], and never more than a quarter of the descriptors: the sweeps need
/// the rest for their S3 connections.
fn connection_cap(nofile: u64) -> usize {
    (nofile / 4).clamp(4, MAX_CONNECTIONS as u64) as usize
}

/// Raises the soft limit on open descriptors to the hard limit (a service manager's default soft
/// limit is often 1024). Returns the (soft, hard) limits in force afterwards.
pub fn raise_descriptor_limit() -> (u64, u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed by pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return (1024, 1024);
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            } else {
                tracing::debug!(error = %std::io::Error::last_os_error(), "Cannot raise the descriptor limit");
            }
        }
    }
    (lim.rlim_cur, lim.rlim_max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_three_quarters_of_the_descriptors_to_the_sweeps() {
        assert_eq!(connection_cap(64), 16);
        assert_eq!(connection_cap(1024), 256);
        assert_eq!(connection_cap(1 << 20), MAX_CONNECTIONS);
        assert_eq!(connection_cap(8), 4);
    }

    #[test]
    fn shedding_closes_the_connection_idle_the_longest() {
        let t = Table::default();
        let (a, sa) = t.open();
        let (_, sb) = t.open();
        sa.last_active.store(5, Ordering::Relaxed);
        sb.last_active.store(1, Ordering::Relaxed);
        assert!(t.shed_oldest());
        assert!(sb.shed.is_cancelled() && !sa.shed.is_cancelled());
        assert_eq!(t.len(), 1);
        t.close(a);
        assert!(!t.shed_oldest(), "nothing left to shed");
    }

    #[test]
    fn routes() {
        let app = App {
            metrics: Metrics::new(),
            ready: Arc::new(|| Err("overdue: b".into())),
        };
        let get = |path: &str| {
            let req = Request::get(path).body(()).unwrap();
            app.respond(&req).status()
        };
        assert_eq!(get("/healthz"), StatusCode::OK);
        assert_eq!(get("/metrics"), StatusCode::OK);
        assert_eq!(get("/readyz"), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(get("/nope"), StatusCode::NOT_FOUND);
        let post = Request::post("/healthz").body(()).unwrap();
        assert_eq!(app.respond(&post).status(), StatusCode::METHOD_NOT_ALLOWED);
    }
}
