//! Credentials: one cache in front of each provider, shared by the SDK client and the lean path
//! of every store on the same settings ([`Cached`]), and the assumed roles (STS AssumeRole on top
//! of the credential chain, [`assume_role`]), one provider per role for the whole process.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_config::SdkConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{self, ProvideCredentials, SharedCredentialsProvider};

use crate::config::ClientSettings;
use crate::store::error::chain;

/// Credentials are refreshed this long before they expire.
const REFRESH_BEFORE: Duration = Duration::from_secs(300);
/// ...but are used for at least this long after they were fetched, while they have not expired,
/// so a provider that hands out short-lived credentials is not asked on every request.
const MIN_REUSE: Duration = Duration::from_secs(10);

/// A provider whose answer is kept until shortly before it expires (one refresh at a time).
#[derive(Debug)]
pub(crate) struct Cached {
    inner: SharedCredentialsProvider,
    /// The role, for the log line of each refresh; `None` for the credential chain itself.
    role: Option<String>,
    slot: parking_lot::Mutex<Option<(Credentials, Instant)>>,
    refresh: tokio::sync::Mutex<()>,
}

impl Cached {
    /// `inner`, cached, ready to share; `role` names the role it assumes, if any.
    pub(crate) fn shared(
        inner: SharedCredentialsProvider,
        role: Option<String>,
    ) -> SharedCredentialsProvider {
        SharedCredentialsProvider::new(Cached {
            inner,
            role,
            slot: parking_lot::Mutex::new(None),
            refresh: tokio::sync::Mutex::new(()),
        })
    }

    fn usable(&self) -> Option<Credentials> {
        let slot = self.slot.lock();
        let (c, fetched) = slot.as_ref()?;
        let left = |margin| c.expiry().is_none_or(|e| e > SystemTime::now() + margin);
        (left(REFRESH_BEFORE) || (fetched.elapsed() < MIN_REUSE && left(Duration::ZERO)))
            .then(|| c.clone())
    }

    async fn get(&self) -> provider::Result {
        if let Some(c) = self.usable() {
            return Ok(c);
        }
        let _one = self.refresh.lock().await;
        if let Some(c) = self.usable() {
            return Ok(c);
        }
        let c = self.inner.provide_credentials().await?;
        if let Some(role) = &self.role {
            let expires = c
                .expiry()
                .map(|e| chrono::DateTime::<chrono::Utc>::from(e).to_rfc3339());
            tracing::info!(role = %role, expires = expires.as_deref().unwrap_or("never"), "Assumed the role");
        }
        *self.slot.lock() = Some((c.clone(), Instant::now()));
        Ok(c)
    }
}

impl ProvideCredentials for Cached {
    fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        provider::future::ProvideCredentials::new(self.get())
    }
}

/// The role of `s` (`role_arn`, `external_id`, `session_name`, `duration`), assumed with the
/// credentials of `base` through its STS (`sts_endpoint_url`, else the region's), over the same
/// HTTP client (so through the same proxy and trust store). Its failures name the role.
pub(crate) async fn assume_role(base: &SdkConfig, s: &ClientSettings) -> SharedCredentialsProvider {
    let conf = if s.sts_endpoint_url.is_set() {
        base.to_builder()
            .endpoint_url(s.sts_endpoint_url.as_str())
            .build()
    } else {
        base.clone()
    };
    let mut builder = AssumeRoleProvider::builder(s.role_arn.as_str())
        .session_name(&s.session_name)
        .session_length(s.duration.0)
        .configure(&conf);
    if !s.external_id.is_empty() {
        builder = builder.external_id(s.external_id.expose());
    }
    let role = Role {
        arn: s.role_arn.to_string(),
        inner: Arc::new(builder.build().await),
    };
    Cached::shared(
        SharedCredentialsProvider::new(role),
        Some(s.role_arn.to_string()),
    )
}

/// An assumed role whose errors say which role could not be assumed, and why.
#[derive(Debug)]
struct Role {
    arn: String,
    inner: Arc<AssumeRoleProvider>,
}

impl ProvideCredentials for Role {
    fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        provider::future::ProvideCredentials::new(async move {
            self.inner.provide_credentials().await.map_err(|e| {
                CredentialsError::provider_error(format!(
                    "AssumeRole of {} failed: {}",
                    self.arn,
                    refusal(&e).unwrap_or_else(|| chain(&e))
                ))
            })
        })
    }
}

/// STS's answer to a refused AssumeRole: its status, code and message, or the start of its body
/// when the SDK could not read an error code from it.
fn refusal(e: &CredentialsError) -> Option<String> {
    use aws_sdk_sts::error::ProvideErrorMetadata as _;
    let sdk = std::error::Error::source(e)?.downcast_ref::<aws_sdk_sts::error::SdkError<
        aws_sdk_sts::operation::assume_role::AssumeRoleError,
        aws_smithy_runtime_api::http::Response,
    >>()?;
    let service = sdk.as_service_error()?;
    let status = sdk.raw_response()?.status().as_u16();
    Some(match (service.code(), service.message()) {
        (Some(code), message) => {
            format!("HTTP {status} {code}: {}", message.unwrap_or_default())
        }
        (None, _) => format!(
            "HTTP {status}: {}",
            sdk.raw_response()
                .and_then(|r| r.body().bytes())
                .map(crate::store::xml::snippet)
                .unwrap_or_default()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Hands out credentials that expire `ttl` after each call, and counts the calls.
    #[derive(Debug)]
    struct Counting {
        calls: Arc<AtomicU32>,
        ttl: Duration,
    }

    impl ProvideCredentials for Counting {
        fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            self.calls.fetch_add(1, Ordering::SeqCst);
            provider::future::ProvideCredentials::ready(Ok(Credentials::new(
                "AK",
                "SK",
                None,
                Some(SystemTime::now() + self.ttl),
                "test",
            )))
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
            let cached = Cached::shared(
                SharedCredentialsProvider::new(Counting {
                    calls: counter.clone(),
                    ttl,
                }),
                None,
            );
            for _ in 0..5 {
                cached.provide_credentials().await.unwrap();
            }
            assert_eq!(counter.load(Ordering::SeqCst), calls, "ttl {ttl:?}");
        }
    }
}
