//! What the lean path's routes on one set of connection settings share: the connection pool, the
//! credentials (cached), the retry limits and the clock skew learnt from the server.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http_body_util::Empty;
use hyper::header::HeaderValue;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::config::Settings;
use crate::store::error::{chain, credentials_error};
use crate::store::proxy::{Proxies, ProxyConnector};
use crate::store::tls::Trust;
use crate::store::{Operation, StoreError};

/// Credentials are refreshed this long before they expire.
const REFRESH_BEFORE: Duration = Duration::from_secs(300);
/// ...but an identity is used for at least this long after it was fetched.
const MIN_REUSE: Duration = Duration::from_secs(10);

/// The shared part of the lean path for one set of connection settings.
pub(crate) struct Transport {
    pub(super) http: Client<ProxyConnector, Empty<Bytes>>,
    /// Which proxy each request goes through.
    pub(super) proxies: Proxies,
    provider: SharedCredentialsProvider,
    identity: parking_lot::Mutex<Option<(Identity, Instant)>>,
    refresh: tokio::sync::Mutex<()>,
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
        s: &Settings,
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
            refresh: tokio::sync::Mutex::new(()),
            max_attempts: s.retry_max_attempts.max(1),
            attempt_timeout: s.read_timeout.0,
            skew_ms: AtomicI64::new(0),
            throttled: AtomicU64::new(0),
        })
    }

    /// The cached identity, or a fresh one from the provider (one refresh at a time). An identity
    /// is refreshed [`REFRESH_BEFORE`] its expiry, but never sooner than [`MIN_REUSE`] after it was
    /// fetched, so a provider that hands out short-lived credentials is not asked on every request.
    pub(super) async fn identity(&self, op: Operation) -> Result<Identity, StoreError> {
        let usable = |cached: &Option<(Identity, Instant)>| {
            cached
                .as_ref()
                .filter(|(i, fetched)| {
                    let left = |margin| {
                        i.expiration()
                            .is_none_or(|e| e > SystemTime::now() + margin)
                    };
                    left(REFRESH_BEFORE) || (fetched.elapsed() < MIN_REUSE && left(Duration::ZERO))
                })
                .map(|(i, _)| i.clone())
        };
        if let Some(i) = usable(&self.identity.lock()) {
            return Ok(i);
        }
        let _one = self.refresh.lock().await;
        if let Some(i) = usable(&self.identity.lock()) {
            return Ok(i);
        }
        let creds = self
            .provider
            .provide_credentials()
            .await
            .map_err(|e| credentials_error(op, &chain(&e)))?;
        let identity = Identity::from(creds);
        *self.identity.lock() = Some((identity.clone(), Instant::now()));
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicU32;

    /// Hands out credentials that expire `ttl` after each call, and counts the calls.
    #[derive(Debug)]
    struct Counting {
        calls: Arc<AtomicU32>,
        ttl: Duration,
    }

    impl ProvideCredentials for Counting {
        fn provide_credentials<'a>(
            &'a self,
        ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            self.calls.fetch_add(1, Ordering::SeqCst);
            aws_credential_types::provider::future::ProvideCredentials::ready(Ok(
                aws_credential_types::Credentials::new(
                    "AK",
                    "SK",
                    None,
                    Some(SystemTime::now() + self.ttl),
                    "test",
                ),
            ))
        }
    }

    #[tokio::test]
    async fn credentials_are_cached_until_shortly_before_they_expire() {
        // (lifetime of the credentials, provider calls for 5 requests)
        for (ttl, calls) in [
            (Duration::from_secs(3_600), 1), // long-lived: fetched once
            (Duration::from_secs(120), 1),   // inside the refresh margin: reused for MIN_REUSE
            (Duration::ZERO, 5),             // already expired: never reused
        ] {
            let counter = Arc::new(AtomicU32::new(0));
            let provider = Counting {
                calls: counter.clone(),
                ttl,
            };
            let t = Transport::new(
                &Settings::default(),
                SharedCredentialsProvider::new(provider),
                &Trust::default(),
                &Proxies::new(&Default::default()),
            )
            .unwrap();
            for _ in 0..5 {
                t.identity(Operation::ListParts).await.unwrap();
            }
            assert_eq!(counter.load(Ordering::SeqCst), calls, "ttl {ttl:?}");
        }
    }
}
