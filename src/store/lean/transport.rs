//! What the lean path's routes on one set of connection settings share: the connection pool, the
//! credentials, the retry limits and the clock skew learnt from the server.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http_body_util::Empty;
use hyper::header::HeaderValue;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::config::ClientSettings;
use crate::store::error::{chain, credentials_error};
use crate::store::proxy::{Proxies, ProxyConnector};
use crate::store::tls::Trust;
use crate::store::{Operation, StoreError};

/// The shared part of the lean path for one set of connection settings.
pub(crate) struct Transport {
    pub(super) http: Client<ProxyConnector, Empty<Bytes>>,
    /// Which proxy each request goes through.
    pub(super) proxies: Proxies,
    /// Cached by [`crate::store::credentials::Cached`], shared with the SDK client.
    provider: SharedCredentialsProvider,
    /// The identity signed with and the credentials it was made from: one made a request (a
    /// layer, a map and three allocations, freed on another thread) cost more than comparing
    /// the provider's answer with these.
    identity: parking_lot::Mutex<Option<(Credentials, Arc<Identity>)>>,
    pub(super) max_attempts: u32,
    pub(super) attempt_timeout: Duration,
    /// Server time minus our time, in milliseconds, learnt from RequestTimeTooSkewed answers.
    skew_ms: AtomicI64,
    /// Throttling answers received, retried or not (see `UploadStore::throttled`).
    pub(super) throttled: AtomicU64,
}

impl Transport {
    /// A transport for these settings and this trust.
    pub(crate) fn new(
        s: &ClientSettings,
        provider: SharedCredentialsProvider,
        trust: &Trust,
        proxies: &Proxies,
    ) -> Result<Transport, String> {
        let http = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(proxies.connector(trust, s.connect_timeout.0)?);
        Ok(Transport {
            http,
            proxies: proxies.clone(),
            provider,
            identity: parking_lot::Mutex::new(None),
            max_attempts: s.retry_max_attempts.max(1),
            attempt_timeout: s.read_timeout.0,
            skew_ms: AtomicI64::new(0),
            throttled: AtomicU64::new(0),
        })
    }

    /// The identity to sign with: the provider's credentials (it caches them), as an identity
    /// made once for each credentials it hands out.
    pub(super) async fn identity(&self, op: Operation) -> Result<Arc<Identity>, StoreError> {
        let credentials = self
            .provider
            .provide_credentials()
            .await
            .map_err(|e| credentials_error(op, &chain(&e)))?;
        let mut slot = self.identity.lock();
        if let Some((made_from, identity)) = slot.as_ref()
            && *made_from == credentials
        {
            return Ok(identity.clone());
        }
        let identity = Arc::new(Identity::from(credentials.clone()));
        *slot = Some((credentials, identity.clone()));
        Ok(identity)
    }

    /// Takes the server's time from a `Date` header; false when there is none to read.
    pub(super) fn learn_skew(&self, date: Option<&HeaderValue>) -> bool {
        let Some(server) = date.and_then(|d| httpdate::parse_http_date(d.to_str().ok()?).ok())
        else {
            return false;
        };
        let skew = match server.duration_since(SystemTime::now()) {
            Ok(ahead) => ahead.as_millis() as i64,
            Err(behind) => -(behind.duration().as_millis() as i64),
        };
        self.skew_ms.store(skew, Ordering::Relaxed);
        tracing::warn!(skew_ms = skew, "Clock skew: signing with the server's time");
        true
    }

    /// Our time corrected by the skew learnt, for signing.
    pub(super) fn now(&self) -> SystemTime {
        let skew = self.skew_ms.load(Ordering::Relaxed);
        let now = SystemTime::now();
        if skew >= 0 {
            now + Duration::from_millis(skew as u64)
        } else {
            now - Duration::from_millis(skew.unsigned_abs())
        }
    }
}
