//! The one module that talks to S3. It turns ListMultipartUploads, ListParts and
//! AbortMultipartUpload into our own small types and classifies every failure into a fixed set of
//! kinds. Nothing here decides anything: the sweep does, through [`UploadStore`], so a second kind of
//! store (Glacier vaults, a fault-injecting fake) is an addition, not a rewrite.

mod direct;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::endpoint::{DefaultResolver, Params, ResolveEndpoint as _};
use aws_sdk_s3::config::{
    Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
    StalledStreamProtectionConfig,
};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::types::RequestPayer;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::http::Response as HttpResponse;
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::Mutex;

use crate::config::Settings;

/// An incomplete multipart upload as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upload {
    /// Object key.
    pub key: String,
    /// Upload id.
    pub upload_id: String,
    /// When the upload was initiated; `None` when the server gave no readable time.
    pub initiated: Option<DateTime<Utc>>,
}

/// Where the next ListMultipartUploads page starts, exactly as the server returned it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Marker {
    /// `NextKeyMarker`.
    pub key: String,
    /// `NextUploadIdMarker`, absent when the server omitted it (Garage does at key boundaries).
    pub upload_id: Option<String>,
}

/// One page of ListMultipartUploads.
#[derive(Clone, Debug)]
pub struct UploadPage {
    /// The uploads of this page, in the server's order (not necessarily by key).
    pub uploads: Vec<Upload>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Marker>,
}

/// One part of an upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// Part number, 1..=10000.
    pub number: i32,
    /// ETag as returned (quotes included).
    pub etag: String,
    /// Size in bytes.
    pub size: u64,
    /// When the part was uploaded.
    pub last_modified: Option<DateTime<Utc>>,
}

/// What ListParts found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parts {
    /// The server answered NoSuchUpload: the upload and its parts are gone.
    Gone,
    /// The upload exists with these parts (possibly none).
    Listed(Vec<Part>),
}

/// What AbortMultipartUpload answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aborted {
    /// 204: the server accepted the abort.
    Accepted,
    /// NoSuchUpload: someone else completed or aborted it, or an earlier abort of ours took effect.
    NoSuchUpload,
}

/// The S3 call that failed; a metrics label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// ListMultipartUploads
    ListUploads,
    /// ListParts
    ListParts,
    /// AbortMultipartUpload
    Abort,
    /// Building the client (credentials, CA bundle)
    Connect,
}

impl Operation {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::ListUploads => "list_uploads",
            Operation::ListParts => "list_parts",
            Operation::Abort => "abort",
            Operation::Connect => "connect",
        }
    }
}

/// Why a call failed, from a small fixed set (a metrics label).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// 503 SlowDown and friends, after the SDK's retries.
    Throttled,
    /// AccessDenied: the credentials lack a permission.
    AccessDenied,
    /// Missing, expired or invalid credentials, bad signature.
    Credentials,
    /// The bucket does not exist.
    NoSuchBucket,
    /// Connect or read timeout.
    Timeout,
    /// Connection refused, reset, DNS, TLS.
    Network,
    /// Any other 5xx.
    Server,
    /// Any other 4xx.
    Client,
    /// The server broke the protocol (e.g. a listing that does not advance).
    Protocol,
    /// Anything else.
    Other,
}

impl ErrorKind {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Throttled => "throttled",
            ErrorKind::AccessDenied => "access_denied",
            ErrorKind::Credentials => "credentials",
            ErrorKind::NoSuchBucket => "no_such_bucket",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Network => "network",
            ErrorKind::Server => "server",
            ErrorKind::Client => "client",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Other => "other",
        }
    }
}

/// A failed S3 call, after the SDK's retries.
#[derive(Debug, thiserror::Error)]
#[error("{operation} failed ({kind}): {message}", operation = .operation.as_str(), kind = .kind.as_str())]
pub struct StoreError {
    /// Which call.
    pub operation: Operation,
    /// Why, in a word.
    pub kind: ErrorKind,
    /// What the server or the SDK said, with a hint where one helps.
    pub message: String,
}

impl StoreError {
    /// A protocol violation noticed by the caller (e.g. a listing that does not advance).
    pub fn protocol(operation: Operation, message: impl Into<String>) -> Self {
        StoreError {
            operation,
            kind: ErrorKind::Protocol,
            message: message.into(),
        }
    }
}

/// What the sweep needs from a store of multipart uploads.
pub trait UploadStore: Send + Sync + 'static {
    /// The bucket (or vault) this store addresses.
    fn bucket(&self) -> &str;

    /// One page of incomplete uploads under `prefix`, starting after `marker`.
    fn list_uploads(
        &self,
        prefix: &str,
        marker: Option<&Marker>,
    ) -> impl Future<Output = Result<UploadPage, StoreError>> + Send;

    /// Every part of an upload (all pages), or [`Parts::Gone`].
    fn list_parts(
        &self,
        key: &str,
        upload_id: &str,
    ) -> impl Future<Output = Result<Parts, StoreError>> + Send;

    /// Aborts an upload.
    fn abort(
        &self,
        key: &str,
        upload_id: &str,
    ) -> impl Future<Output = Result<Aborted, StoreError>> + Send;
}

/// An S3 bucket: ListMultipartUploads through aws-sdk-s3, ListParts and AbortMultipartUpload
/// through the lean signed path of [`direct`] where the bucket's endpoint allows it (else the SDK).
pub struct S3Store {
    client: Client,
    bucket: String,
    expected_owner: Option<String>,
    request_payer: Option<RequestPayer>,
    direct: Option<direct::Route>,
}

impl S3Store {
    /// Whether ListParts and AbortMultipartUpload take the lean path (see [`direct`]).
    pub fn is_direct(&self) -> bool {
        self.direct.is_some()
    }

    /// One ListParts page through the SDK; `None` for NoSuchUpload.
    async fn sdk_parts_page(
        &self,
        key: &str,
        upload_id: &str,
        marker: Option<String>,
    ) -> Result<Option<PartsPage>, StoreError> {
        let result = self
            .client
            .list_parts()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .set_part_number_marker(marker)
            .set_expected_bucket_owner(self.expected_owner.clone())
            .set_request_payer(self.request_payer.clone())
            .send()
            .await;
        let out = match result {
            Ok(out) => out,
            Err(e) if is_no_such_upload(&e) => return Ok(None),
            Err(e) => return Err(classify(Operation::ListParts, &self.bucket, e)),
        };
        Ok(Some(PartsPage {
            parts: out
                .parts()
                .iter()
                .map(|p| Part {
                    number: p.part_number().unwrap_or(0),
                    etag: p.e_tag().unwrap_or_default().to_string(),
                    size: p.size().unwrap_or(0).max(0) as u64,
                    last_modified: p.last_modified().and_then(to_chrono),
                })
                .collect(),
            truncated: out.is_truncated().unwrap_or(false),
            next: out.next_part_number_marker().map(str::to_string),
        }))
    }
}

/// One page of ListParts.
#[derive(Debug, Default)]
struct PartsPage {
    parts: Vec<Part>,
    truncated: bool,
    next: Option<String>,
}

/// Every part of an upload, following `NextPartNumberMarker` from page to page; `page(marker)`
/// answers `None` for NoSuchUpload. A truncated page that does not advance is a protocol error.
async fn all_parts<F, Fut>(key: &str, upload_id: &str, mut page: F) -> Result<Parts, StoreError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<Option<PartsPage>, StoreError>>,
{
    let mut parts = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let Some(p) = page(marker.clone()).await? else {
            return Ok(Parts::Gone);
        };
        parts.extend(p.parts);
        if !p.truncated {
            return Ok(Parts::Listed(parts));
        }
        if p.next.is_none() || p.next == marker {
            return Err(StoreError::protocol(
                Operation::ListParts,
                format!(
                    "ListParts of {key:?} (upload {upload_id}) is truncated but does not advance past part marker {marker:?}"
                ),
            ));
        }
        marker = p.next;
    }
}

impl UploadStore for S3Store {
    fn bucket(&self) -> &str {
        &self.bucket
    }

    async fn list_uploads(
        &self,
        prefix: &str,
        marker: Option<&Marker>,
    ) -> Result<UploadPage, StoreError> {
        let out = self
            .client
            .list_multipart_uploads()
            .bucket(&self.bucket)
            .set_prefix(Some(prefix.to_string()).filter(|p| !p.is_empty()))
            .set_key_marker(marker.map(|m| m.key.clone()))
            .set_upload_id_marker(marker.and_then(|m| m.upload_id.clone()))
            .set_expected_bucket_owner(self.expected_owner.clone())
            .set_request_payer(self.request_payer.clone())
            .send()
            .await
            .map_err(|e| classify(Operation::ListUploads, &self.bucket, e))?;
        let uploads = out
            .uploads()
            .iter()
            .filter_map(|u| {
                Some(Upload {
                    key: u.key()?.to_string(),
                    upload_id: u.upload_id()?.to_string(),
                    initiated: u.initiated().and_then(to_chrono),
                })
            })
            .collect();
        let next = if out.is_truncated().unwrap_or(false) {
            let key = out
                .next_key_marker()
                .filter(|k| !k.is_empty())
                .ok_or_else(|| {
                    StoreError::protocol(
                        Operation::ListUploads,
                        "the server said the listing is truncated but gave no NextKeyMarker",
                    )
                })?;
            Some(Marker {
                key: key.to_string(),
                upload_id: out
                    .next_upload_id_marker()
                    .filter(|u| !u.is_empty())
                    .map(str::to_string),
            })
        } else {
            None
        };
        Ok(UploadPage { uploads, next })
    }

    async fn list_parts(&self, key: &str, upload_id: &str) -> Result<Parts, StoreError> {
        all_parts(key, upload_id, |marker| async move {
            match &self.direct {
                Some(route) => route.parts_page(key, upload_id, marker.as_deref()).await,
                None => self.sdk_parts_page(key, upload_id, marker).await,
            }
        })
        .await
    }

    async fn abort(&self, key: &str, upload_id: &str) -> Result<Aborted, StoreError> {
        if let Some(route) = &self.direct {
            return route.abort(key, upload_id).await;
        }
        let result = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .set_expected_bucket_owner(self.expected_owner.clone())
            .set_request_payer(self.request_payer.clone())
            .send()
            .await;
        match result {
            Ok(_) => Ok(Aborted::Accepted),
            Err(e) if is_no_such_upload(&e) => Ok(Aborted::NoSuchUpload),
            Err(e) => Err(classify(Operation::Abort, &self.bucket, e)),
        }
    }
}

fn to_chrono(t: &aws_sdk_s3::primitives::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

fn is_no_such_upload<E, R>(e: &SdkError<E, R>) -> bool
where
    E: ProvideErrorMetadata,
{
    matches!(e, SdkError::ServiceError(s) if s.err().code() == Some("NoSuchUpload"))
}

/// Our kind and a one-line message that says what to fix, for an error answer of the server.
fn service_error(
    operation: Operation,
    bucket: &str,
    status: u16,
    code: &str,
    text: &str,
) -> StoreError {
    let kind = match code {
        "SlowDown"
        | "Throttling"
        | "ThrottlingException"
        | "TooManyRequests"
        | "RequestLimitExceeded"
        | "TooManyRequestsException" => ErrorKind::Throttled,
        // Some stores (Garage) answer a bad signature with AccessDenied.
        "AccessDenied" if text.to_ascii_lowercase().contains("signature") => ErrorKind::Credentials,
        "AccessDenied" | "AllAccessDisabled" | "AccountProblem" => ErrorKind::AccessDenied,
        "InvalidAccessKeyId"
        | "SignatureDoesNotMatch"
        | "ExpiredToken"
        | "InvalidToken"
        | "TokenRefreshRequired"
        | "InvalidSecurity" => ErrorKind::Credentials,
        "NoSuchBucket" => ErrorKind::NoSuchBucket,
        _ if status == 429 => ErrorKind::Throttled,
        _ if status >= 500 => ErrorKind::Server,
        _ => ErrorKind::Client,
    };
    let hint = match kind {
        ErrorKind::NoSuchBucket => {
            format!(" (bucket {bucket:?} does not exist: check the name and the region)")
        }
        ErrorKind::AccessDenied => format!(
            " (the credentials lack s3:ListBucketMultipartUploads / s3:ListMultipartUploadParts / s3:AbortMultipartUpload on {bucket:?})"
        ),
        ErrorKind::Credentials => {
            " (check the access key, secret and session token the credential chain found)"
                .to_string()
        }
        _ => String::new(),
    };
    let code = if code.is_empty() {
        format!("HTTP {status}")
    } else {
        code.to_string()
    };
    let text = if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    };
    StoreError {
        operation,
        kind,
        message: format!("{code}{text}{hint}"),
    }
}

/// Maps an SDK error to our kind and a one-line message that says what to fix.
fn classify<E>(operation: Operation, bucket: &str, e: SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let (kind, message) = match &e {
        SdkError::ServiceError(s) => {
            let err = s.err();
            return service_error(
                operation,
                bucket,
                s.raw().status().as_u16(),
                err.code().unwrap_or(""),
                err.message().unwrap_or(""),
            );
        }
        SdkError::TimeoutError(_) => (ErrorKind::Timeout, format!("timed out: {}", chain(&e))),
        SdkError::DispatchFailure(_) if chain(&e).contains("credential") => (
            ErrorKind::Credentials,
            "no AWS credentials found by the default chain (environment, profile, SSO, web identity, container, instance metadata): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile, or a role".to_string(),
        ),
        SdkError::DispatchFailure(d) => {
            let kind = if d.is_timeout() {
                ErrorKind::Timeout
            } else if d.is_user() {
                ErrorKind::Other
            } else {
                ErrorKind::Network
            };
            (kind, format!("{} {NETWORK_HINT}", chain(&e)))
        }
        SdkError::ResponseError(_) => (ErrorKind::Network, chain(&e)),
        SdkError::ConstructionFailure(_) => {
            let text = chain(&e);
            if text.to_ascii_lowercase().contains("credential") {
                return credentials_error(operation, &text);
            }
            (ErrorKind::Other, text)
        }
        _ => (ErrorKind::Other, chain(&e)),
    };
    StoreError {
        operation,
        kind,
        message,
    }
}

/// Appended to a failure to reach the store.
const NETWORK_HINT: &str = "(check endpoint_url, region and the network path to the store)";

/// The credential chain found nothing usable.
fn credentials_error(operation: Operation, text: &str) -> StoreError {
    StoreError {
        operation,
        kind: ErrorKind::Credentials,
        message: format!(
            "no usable AWS credentials: {text} (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile, or a role)"
        ),
    }
}

/// An error and its sources on one line ("a: b: c"), without the Debug dumps the SDK's own
/// `DisplayErrorContext` appends, and without repeating a cause that its wrapper already printed.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string().replace('\n', "; ");
    let mut next = e.source();
    while let Some(cause) = next {
        let text = cause.to_string().replace('\n', "; ");
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = cause.source();
    }
    out
}

/// What targets with the same connection settings share: one SDK client and one lean transport,
/// and therefore one connection pool each.
#[derive(Clone)]
struct Shared {
    client: Client,
    /// `None` with `retry_mode = "adaptive"`: every call keeps the SDK's rate limiter.
    transport: Option<Arc<direct::Transport>>,
    /// What the SDK's endpoint resolver needs beside the bucket and the settings.
    endpoint_url: Option<String>,
    use_fips: bool,
    use_dual_stack: bool,
}

/// Builds and shares clients: targets with the same connection settings share them.
#[derive(Default)]
pub struct Connector {
    shared: Mutex<HashMap<String, Shared>>,
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
            shared: Mutex::default(),
            credentials: Some(Credentials::new(
                access_key, secret_key, None, None, "static",
            )),
        }
    }

    /// The SDK client for these settings, built on first use.
    pub async fn client(&self, s: &Settings) -> Result<Client, StoreError> {
        Ok(self.shared(s).await?.client)
    }

    /// The store for `bucket` with these settings.
    pub async fn store(&self, bucket: &str, s: &Settings) -> Result<S3Store, StoreError> {
        let shared = self.shared(s).await?;
        let mut direct = None;
        if let Some(transport) = shared.transport {
            let params = Params::builder()
                .bucket(bucket)
                .region(&s.region)
                .use_fips(shared.use_fips)
                .use_dual_stack(shared.use_dual_stack)
                .force_path_style(s.force_path_style)
                .set_endpoint(shared.endpoint_url)
                .build();
            // An endpoint the resolver refuses keeps the SDK path, which reports the same error.
            if let Ok(params) = params
                && let Ok(endpoint) = DefaultResolver::new().resolve_endpoint(&params).await
            {
                direct = direct::Route::resolve(transport, bucket, &s.region, &endpoint, s);
            }
        }
        Ok(S3Store {
            client: shared.client,
            bucket: bucket.to_string(),
            expected_owner: Some(s.expected_bucket_owner.clone()).filter(|s| !s.is_empty()),
            request_payer: s.request_payer.then_some(RequestPayer::Requester),
            direct,
        })
    }

    async fn shared(&self, s: &Settings) -> Result<Shared, StoreError> {
        let ca_bundle = ca_bundle_path(s);
        let key = format!(
            "{}|{}|{}|{}|{:?}|{:?}|{:?}|{}|{}",
            s.region,
            s.endpoint_url,
            s.force_path_style,
            s.profile,
            ca_bundle,
            s.connect_timeout,
            s.read_timeout,
            s.retry_max_attempts,
            s.retry_mode
        );
        let mut shared = self.shared.lock().await;
        if let Some(c) = shared.get(&key) {
            return Ok(c.clone());
        }
        let built = build(s, ca_bundle.as_deref(), self.credentials.clone()).await?;
        shared.insert(key, built.clone());
        Ok(built)
    }
}

/// `ca_bundle`, else `$AWS_CA_BUNDLE` (which aws-config does not read by itself).
fn ca_bundle_path(s: &Settings) -> Option<String> {
    if !s.ca_bundle.is_empty() {
        return Some(s.ca_bundle.clone());
    }
    std::env::var("AWS_CA_BUNDLE")
        .ok()
        .filter(|v| !v.is_empty())
}

async fn build(
    s: &Settings,
    ca_bundle: Option<&str>,
    credentials: Option<Credentials>,
) -> Result<Shared, StoreError> {
    let connect_err = |message: String| StoreError {
        operation: Operation::Connect,
        kind: ErrorKind::Other,
        message,
    };
    let mut trust = TrustStore::default();
    let mut ca_pem = None;
    if let Some(path) = ca_bundle {
        let pem = std::fs::read(path)
            .map_err(|e| connect_err(format!("cannot read CA bundle {path:?}: {e}")))?;
        if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
            return Err(connect_err(format!(
                "CA bundle {path:?} holds no PEM certificate"
            )));
        }
        trust = trust.with_pem_certificate(pem.clone());
        ca_pem = Some(pem);
    }
    let tls = TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .map_err(|e| connect_err(format!("cannot set up TLS: {e}")))?;
    let http = aws_smithy_http_client::Builder::new()
        .pool_idle_timeout(Duration::from_secs(30))
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(tls)
        .build_https();
    let adaptive = s.retry_mode == "adaptive";
    let retry = if adaptive {
        RetryConfig::adaptive()
    } else {
        RetryConfig::standard()
    }
    .with_max_attempts(s.retry_max_attempts)
    .with_initial_backoff(Duration::from_millis(50));
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(s.region.clone()))
        .http_client(http)
        .retry_config(retry)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(s.connect_timeout.0)
                .read_timeout(s.read_timeout.0)
                .build(),
        );
    if !s.profile.is_empty() {
        loader = loader.profile_name(&s.profile);
    }
    if let Some(c) = credentials {
        loader = loader.credentials_provider(c);
    }
    let sdk = loader.load().await;
    let mut conf = aws_sdk_s3::config::Builder::from(&sdk)
        .force_path_style(s.force_path_style)
        // Responses here are a few KiB of XML: read_timeout already catches a stalled one, and the
        // stream-throughput monitor costs about 2% of the CPU per request.
        .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
        // Checksums only when an operation requires them: S3-compatible stores reject the rest.
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
    if !s.endpoint_url.is_empty() {
        conf = conf.endpoint_url(&s.endpoint_url);
    }
    // The endpoint the S3 client itself uses: ours, else AWS_ENDPOINT_URL_S3 / the profile's s3
    // endpoint_url, else AWS_ENDPOINT_URL (as aws_sdk_s3::config::Builder::from does).
    let endpoint_url = Some(s.endpoint_url.clone())
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
    let transport = match sdk.credentials_provider() {
        Some(provider) if !adaptive => Some(Arc::new(
            direct::Transport::new(s, provider, ca_pem.as_deref()).map_err(connect_err)?,
        )),
        _ => None,
    };
    Ok(Shared {
        client: Client::from_conf(conf.build()),
        transport,
        endpoint_url,
        use_fips: sdk.use_fips().unwrap_or(false),
        use_dual_stack: sdk.use_dual_stack().unwrap_or(false),
    })
}
