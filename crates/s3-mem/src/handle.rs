//! The handle the three endpoints share: [`Handle`], generic over an endpoint's state
//! ([`Core`]), holds the running server and answers what every endpoint answers alike
//! (starting, its address, the fault plan, counters, the request log, shutdown). What only one
//! endpoint does (buckets, vaults, sessions, seeding) is in that endpoint's own `impl` of its
//! handle: [`crate::Endpoint`], [`crate::express::DirectoryEndpoint`],
//! [`crate::glacier::GlacierEndpoint`].

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use hyper::Request;
use hyper::body::Incoming;

use crate::Stats;
use crate::faults::FaultPlan;
use crate::serve::{HttpResponse, Server};

/// An endpoint's state, as its [`Handle`] reaches it.
///
/// Each endpoint implements it on its own state, which is not nameable outside this crate: the
/// trait is public because [`Handle`] is generic over it, not to be implemented elsewhere.
pub trait Core: Send + Sync + Sized + 'static {
    /// The endpoint's fault plan.
    type Faults: FaultPlan;
    /// One request of the endpoint's request log.
    type Request: Clone;
    /// The handle's name in `Debug` output.
    const NAME: &'static str;

    /// Binds `addr` (port 0 picks a free port) and serves, accepting requests signed with
    /// this key pair.
    fn launch(
        addr: SocketAddr,
        access_key: &str,
        secret_key: &str,
    ) -> impl Future<Output = io::Result<Handle<Self>>> + Send;

    /// Runs `edit` on the fault plan, under its lock.
    fn with_faults<R>(&self, edit: impl FnOnce(&mut Self::Faults) -> R) -> R;

    /// A snapshot of the counters.
    fn stats(&self) -> Stats;

    /// The requests logged, in arrival order.
    fn requests(&self) -> Vec<Self::Request>;
}

/// Handle of a running in-memory endpoint.
///
/// Dropping the handle stops the endpoint in the background; [`Handle::shutdown`] stops it and
/// waits. All control methods take `&self`, so the handle can be shared in an `Arc`.
pub struct Handle<C: Core> {
    pub(crate) server: Server,
    pub(crate) shared: Arc<C>,
}

impl<C: Core> fmt::Debug for Handle<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(C::NAME)
            .field("addr", &self.server.addr())
            .finish_non_exhaustive()
    }
}

impl<C: Core> Handle<C> {
    /// Starts an endpoint on `127.0.0.1` with an ephemeral port, accepting requests signed
    /// with this access key / secret key pair (the directory-bucket endpoint: `CreateSession`
    /// signed with it; the Glacier endpoint: as a key of
    /// [`DEFAULT_ACCOUNT_ID`](crate::glacier::DEFAULT_ACCOUNT_ID)). Each endpoint can accept
    /// more keys (its `add_key`).
    ///
    /// Must be called inside a tokio runtime; the server runs on spawned tasks.
    ///
    /// # Errors
    /// Fails if the listener cannot be bound.
    pub async fn start(access_key: &str, secret_key: &str) -> io::Result<Self> {
        Self::start_on(
            SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            access_key,
            secret_key,
        )
        .await
    }

    /// Starts an endpoint listening on `addr` (port 0 picks a free port).
    ///
    /// # Errors
    /// Fails if the listener cannot be bound.
    pub async fn start_on(
        addr: SocketAddr,
        access_key: &str,
        secret_key: &str,
    ) -> io::Result<Self> {
        C::launch(addr, access_key, secret_key).await
    }

    /// Address the endpoint listens on.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Base URL for clients (`endpoint_url`), e.g. `http://127.0.0.1:40123`: with an IP,
    /// clients address buckets in path style. For an S3 endpoint with a domain, also the proxy
    /// URL to reach [`crate::Endpoint::domain_url`] through.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// Replaces the fault plan; `Default::default()` turns every fault off.
    pub fn set_faults(&self, faults: C::Faults) {
        self.shared.with_faults(|plan| *plan = faults);
    }

    /// Edits the fault plan in place.
    pub fn update_faults(&self, edit: impl FnOnce(&mut C::Faults)) {
        self.shared.with_faults(edit);
    }

    /// Current fault plan.
    #[must_use]
    pub fn faults(&self) -> C::Faults {
        self.shared.with_faults(|plan| plan.clone())
    }

    /// Snapshot of the counters.
    #[must_use]
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// The requests logged, in arrival order, since the start (the S3 endpoint: since its log
    /// was turned on) or the last `reset_requests`, authenticated or not.
    #[must_use]
    pub fn requests(&self) -> Vec<C::Request> {
        self.shared.requests()
    }

    /// Binds `addr` and serves every request with `handler`, given the endpoint's state: the
    /// launch of the endpoints answered by one handler function (`name` labels the debug logs).
    pub(crate) async fn serve<H, F>(
        addr: SocketAddr,
        name: &'static str,
        shared: Arc<C>,
        handler: H,
    ) -> io::Result<Self>
    where
        H: Fn(Arc<C>, Request<Incoming>) -> F + Clone + Send + Sync + 'static,
        F: Future<Output = HttpResponse> + Send + 'static,
    {
        let handler_shared = Arc::clone(&shared);
        let server = Server::start(addr, name, move |req| {
            handler(Arc::clone(&handler_shared), req)
        })
        .await?;
        Ok(Handle { server, shared })
    }

    /// Stops accepting connections, lets in-flight requests finish (up to 2 s), closes every
    /// connection and ends the accept loop.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}
