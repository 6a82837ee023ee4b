//! Connecting: building the SDK client and the lean path's transport for a set of connection
//! settings (shared by every target with the same settings, so one connection pool each), and
//! choosing, once per store, the request path of its ListParts and AbortMultipartUpload calls.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::{RetryPartition, TokenBucket};
use aws_sdk_s3::config::{
    Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
    StalledStreamProtectionConfig,
};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use tokio::sync::Mutex;

use aws_credential_types::provider::ProvideCredentials as _;

use super::credentials::{Cached, assume_role};
use super::error::{Service, chain, classify, credentials_error};
use super::lean::{Route, Transport};
use super::proxy::Proxies;
use super::s3::{RequestPath, S3Store};
use super::sdk::{SdkBucket, ThrottleCount};
use super::tls::Trust;
use super::{Operation, StoreError};
use crate::address::{self, Address};
use crate::config::{
    ClientSettings, HttpUrl, HumanDuration, RequestPathSetting, RetryMode, RoleArn, Secret,
};

/// What targets with the same connection settings share.
#[derive(Clone)]
struct Shared {
    /// The loaded configuration (credentials cached, HTTP client, retries, timeouts), from which
    /// the clients of other services (Glacier) are built.
    sdk: aws_config::SdkConfig,
    client: Client,
    /// The SDK client's throttling answers.
    throttled: ThrottleCount,
    /// `Err(why)` when the lean path cannot be used with these settings.
    transport: Result<Arc<Transport>, &'static str>,
    /// The proxies of these settings (the lean path's route checks it can speak to them).
    proxies: Proxies,
    /// What the SDK's endpoint resolver needs beside the bucket and the settings.
    endpoint_url: Option<String>,
    use_fips: bool,
    use_dual_stack: bool,
    /// The Glacier client of these settings, built at the first vault's sweep.
    glacier: Arc<std::sync::OnceLock<aws_sdk_glacier::Client>>,
}

/// What a connector has built so far.
#[derive(Default)]
struct Built {
    /// By connection settings.
    clients: HashMap<ClientSettings, Shared>,
    /// Assumed roles by role, external id, session and STS: one provider (and one cache) per role
    /// for the whole process, whatever the region or endpoint of the targets on it.
    roles: HashMap<RoleKey, SharedCredentialsProvider>,
}

/// Builds and shares clients: targets with the same connection settings share them.
#[derive(Default)]
pub struct Connector {
    built: Mutex<Built>,
    /// Fixed credentials instead of the default chain (the demo's embedded endpoint, tests).
    credentials: Option<Credentials>,
}

impl Connector {
    /// A connector using aws-config's default credential chain (or each target's `profile`).
    pub fn new() -> Self {
        Self::default()
    }

    /// A connector that signs with these keys instead of looking for credentials.
    pub fn with_static_credentials(access_key: &str, secret_key: &str) -> Self {
        Connector {
            built: Mutex::default(),
            credentials: Some(Credentials::new(
                access_key, secret_key, None, None, "static",
            )),
        }
    }

    /// The SDK client for these settings, built on first use.
    pub async fn client(&self, s: &ClientSettings) -> Result<Client, StoreError> {
        Ok(self.shared(s).await?.client)
    }

    /// The account-level calls (discovery) with these settings.
    pub async fn buckets(&self, s: &ClientSettings) -> Result<super::buckets::Buckets, StoreError> {
        Ok(super::buckets::Buckets {
            client: self.shared(s).await?.client,
        })
    }

    /// The credentials these settings sign with (the chain's, the profile's or the assumed
    /// role's), fetched now through the cache every call uses: `doctor`'s first check.
    pub async fn credentials(&self, s: &ClientSettings) -> Result<Credentials, StoreError> {
        let shared = self.shared(s).await?;
        let provider = shared.sdk.credentials_provider().ok_or_else(|| {
            credentials_error(Operation::Connect, "no credentials provider was configured")
        })?;
        provider
            .provide_credentials()
            .await
            .map_err(|e| credentials_error(Operation::Connect, &chain(&e)))
    }

    /// STS GetCallerIdentity with these settings' credentials: the account and the ARN they
    /// belong to (`doctor`). `None` when S3 is not AWS's here (`endpoint_url`, or
    /// `AWS_ENDPOINT_URL[_S3]`) and no `sts_endpoint_url` names an STS: most S3-compatible
    /// stores have none.
    pub async fn caller_identity(
        &self,
        s: &ClientSettings,
    ) -> Option<Result<(String, String), StoreError>> {
        let shared = match self.shared(s).await {
            Ok(shared) => shared,
            Err(e) => return Some(Err(e)),
        };
        if shared.endpoint_url.is_some() && !s.sts_endpoint_url.is_set() {
            return None;
        }
        let conf = if s.sts_endpoint_url.is_set() {
            shared
                .sdk
                .to_builder()
                .endpoint_url(s.sts_endpoint_url.as_str())
                .build()
        } else {
            shared.sdk.clone()
        };
        let answer = aws_sdk_sts::Client::new(&conf)
            .get_caller_identity()
            .send()
            .await;
        Some(
            answer
                .map(|out| {
                    (
                        out.account().unwrap_or_default().to_string(),
                        out.arn().unwrap_or_default().to_string(),
                    )
                })
                .map_err(|e| classify(Operation::Connect, Service::S3, "", e)),
        )
    }

    /// The store of a Glacier vault with these settings (`endpoint_url` is Glacier's).
    pub async fn vault(
        &self,
        label: &str,
        vault: &crate::config::Vault,
        s: &ClientSettings,
    ) -> Result<super::GlacierStore, StoreError> {
        let shared = self.shared(s).await?;
        let client = shared
            .glacier
            .get_or_init(|| glacier_client(&shared, s))
            .clone();
        Ok(super::GlacierStore::new(
            client,
            shared.throttled,
            label.to_string(),
            vault,
        ))
    }

    /// The store for `bucket` with these settings, its request path chosen here, once.
    pub async fn store(&self, bucket: &str, s: &ClientSettings) -> Result<S3Store, StoreError> {
        let shared = self.shared(s).await?;
        let address = address::resolve(
            bucket,
            address::Where {
                region: &s.region,
                endpoint_url: shared.endpoint_url.as_deref(),
                force_path_style: s.force_path_style,
                use_fips: shared.use_fips,
                use_dual_stack: shared.use_dual_stack,
            },
        );
        let path = match choose_lean(&shared, bucket, address.as_ref(), s).await {
            Ok(route) => RequestPath::Lean(route),
            Err(why) => {
                tracing::debug!(bucket = %bucket, reason = %why, "ListParts and aborts take the SDK request path");
                RequestPath::Sdk
            }
        };
        let directory = address.as_ref().is_ok_and(Address::is_directory);
        let dated = shared.endpoint_url.is_some()
            && address
                .as_ref()
                .is_ok_and(|a| a.kind == address::Kind::Bucket && !a.is_directory());
        let virtual_host = address
            .as_ref()
            .ok()
            .filter(|a| shared.endpoint_url.is_some() && !a.path_style)
            .and_then(|a| url::Url::parse(a.endpoint.url()).ok())
            .and_then(|u| u.host_str().map(str::to_string));
        let sdk = SdkBucket::new(shared.client, shared.throttled, bucket, s);
        Ok(S3Store::new(
            bucket,
            sdk,
            path,
            directory,
            dated,
            virtual_host,
        ))
    }

    async fn shared(&self, s: &ClientSettings) -> Result<Shared, StoreError> {
        let mut built = self.built.lock().await;
        if let Some(c) = built.clients.get(s) {
            return Ok(c.clone());
        }
        let shared = build(s, self.credentials.clone(), &mut built.roles).await?;
        built.clients.insert(s.clone(), shared.clone());
        Ok(shared)
    }
}

/// What identifies an assumed role's provider: the role, its external id, session name and
/// duration, the STS endpoint and the profile the base credentials come from.
type RoleKey = (RoleArn, Secret, String, HumanDuration, HttpUrl, String);

fn role_key(s: &ClientSettings) -> RoleKey {
    (
        s.role_arn.clone(),
        s.external_id.clone(),
        s.session_name.clone(),
        s.duration,
        s.sts_endpoint_url.clone(),
        s.profile.clone(),
    )
}

/// The lean route of a bucket, or why its calls keep the SDK path.
async fn choose_lean(
    shared: &Shared,
    bucket: &str,
    address: Result<&Address, &String>,
    s: &ClientSettings,
) -> Result<Route, String> {
    if s.request_path == RequestPathSetting::Sdk {
        return Err("request_path = \"sdk\"".to_string());
    }
    let transport = shared.transport.clone().map_err(str::to_string)?;
    // An endpoint the resolver refuses keeps the SDK path, which reports the same error.
    let address = address.map_err(|e| format!("the endpoint resolver refused the bucket: {e}"))?;
    let endpoint = &address.endpoint;
    if let Some(why) = shared.proxies.unsupported(endpoint.url()) {
        return Err(why);
    }
    if let Some(via) = shared.proxies.describe(endpoint.url()) {
        tracing::debug!(bucket = %bucket, proxy = %via, "Requests go through a proxy");
    }
    Route::resolve(transport, bucket, address, s)
}

async fn build(
    s: &ClientSettings,
    credentials: Option<Credentials>,
    roles: &mut HashMap<RoleKey, SharedCredentialsProvider>,
) -> Result<Shared, StoreError> {
    let trust = Trust::load(s.ca_bundle()).map_err(StoreError::connect)?;
    let proxies = Proxies::new(&s.proxy);
    let (tls_context, proxy) = (
        trust.smithy_tls().map_err(StoreError::connect)?,
        proxies.sdk_config().map_err(StoreError::connect)?,
    );
    // Builder's own build_https() takes no proxy: the connector is built as the SDK's default
    // client builds its own, with our trust and proxies.
    let http = aws_smithy_http_client::Builder::new().build_with_connector_fn(
        move |settings, components| {
            let mut c = aws_smithy_http_client::Connector::builder()
                .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
                .tls_context(tls_context.clone())
                .proxy_config(proxy.clone())
                .pool_idle_timeout(Duration::from_secs(30));
            c.set_connector_settings(settings.cloned());
            if let Some(components) = components {
                c.set_sleep_impl(components.sleep_impl());
            }
            c.build()
        },
    );
    // On the SDK path, adaptive also means the SDK's own client-side rate limiter; on both paths
    // the sweep's concurrency limit backs off on throttling (crate::limit).
    let retry = if s.retry_mode == RetryMode::Adaptive {
        RetryConfig::adaptive()
    } else {
        RetryConfig::standard()
    }
    .with_max_attempts(s.retry_max_attempts)
    .with_initial_backoff(Duration::from_millis(500));
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(s.region.clone()))
        .http_client(http)
        .retry_config(retry)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(s.connect_timeout.0)
                .read_timeout(s.read_timeout.0)
                // read_timeout bounds each attempt from sending to the last byte, on this path as
                // on the lean one: a body that trickles in a byte at a time cannot hold a sweep.
                .operation_attempt_timeout(s.read_timeout.0)
                .build(),
        );
    if !s.profile.is_empty() {
        loader = loader.profile_name(&s.profile);
    }
    if let Some(c) = credentials {
        loader = loader.credentials_provider(c);
    }
    let sdk = loader.load().await;
    // One cache in front of the credentials, shared by the SDK client and the lean path: the
    // assumed role's when the target names one (on top of the chain), else the chain's.
    let provider = if s.role_arn.is_set() {
        let key = role_key(s);
        match roles.get(&key) {
            Some(p) => Some(p.clone()),
            None => {
                let p = assume_role(&sdk, s).await;
                roles.insert(key, p.clone());
                Some(p)
            }
        }
    } else {
        sdk.credentials_provider().map(|p| Cached::shared(p, None))
    };
    let mut with_provider = sdk.into_builder();
    with_provider.set_credentials_provider(provider.clone());
    let sdk = with_provider.build();
    let throttled = ThrottleCount::default();
    let mut conf = aws_sdk_s3::config::Builder::from(&sdk)
        .interceptor(throttled.clone())
        // No retry quota, as on the lean path: under a SlowDown storm the sweep's concurrency
        // limit backs off (crate::limit) and retry_max_attempts bounds each call, while the SDK's
        // quota (500 tokens, 5 a throttled retry) ran dry within a second of a prefix throttled
        // at 3,500 requests/s and failed 141 of 10,000 uploads (kept, but not swept).
        .retry_partition(
            RetryPartition::custom("mpu-janitor")
                .token_bucket(TokenBucket::unlimited())
                .build(),
        )
        .force_path_style(s.force_path_style)
        // Responses here are a few KiB of XML: read_timeout already catches a stalled one, and the
        // stream-throughput monitor costs about 2% of the CPU per request.
        .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
        // Checksums only when an operation requires them: S3-compatible stores reject the rest.
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
    if s.endpoint_url.is_set() {
        conf = conf.endpoint_url(s.endpoint_url.as_str());
    }
    // The endpoint the S3 client itself uses: ours, else AWS_ENDPOINT_URL_S3 / the profile's s3
    // endpoint_url, else AWS_ENDPOINT_URL (as aws_sdk_s3::config::Builder::from does).
    let endpoint_url = Some(s.endpoint_url.as_str().to_string())
        .filter(|u| !u.is_empty())
        .or_else(|| {
            sdk.service_config().and_then(|c| {
                c.load_config(
                    aws_types::service_config::ServiceConfigKey::builder()
                        .service_id("S3")
                        .env("AWS_ENDPOINT_URL")
                        .profile("endpoint_url")
                        .build()
                        .ok()?,
                )
            })
        })
        .or_else(|| sdk.endpoint_url().map(str::to_string));
    let transport = match provider {
        None => Err("no credentials provider"),
        Some(provider) => Ok(Arc::new(
            Transport::new(s, provider, &trust, &proxies).map_err(StoreError::connect)?,
        )),
    };
    Ok(Shared {
        sdk: sdk.clone(),
        client: Client::from_conf(conf.build()),
        throttled,
        transport,
        proxies,
        endpoint_url,
        use_fips: sdk.use_fips().unwrap_or(false),
        use_dual_stack: sdk.use_dual_stack().unwrap_or(false),
        glacier: Arc::default(),
    })
}

/// The Glacier client of these settings: the same credentials, HTTP client, retries and timeouts,
/// and `endpoint_url` (Glacier's, on a vault's target).
fn glacier_client(shared: &Shared, s: &ClientSettings) -> aws_sdk_glacier::Client {
    let mut conf = aws_sdk_glacier::config::Builder::from(&shared.sdk)
        .interceptor(shared.throttled.clone())
        .retry_partition(
            aws_sdk_glacier::config::retry::RetryPartition::custom("mpu-janitor-glacier")
                .token_bucket(aws_sdk_glacier::config::retry::TokenBucket::unlimited())
                .build(),
        )
        .stalled_stream_protection(
            aws_sdk_glacier::config::StalledStreamProtectionConfig::disabled(),
        );
    if s.endpoint_url.is_set() {
        conf = conf.endpoint_url(s.endpoint_url.as_str());
    }
    aws_sdk_glacier::Client::from_conf(conf.build())
}
