//! The hot path: ListParts and AbortMultipartUpload, two of the three or more requests a sweep sends
//! for every upload, over a plain hyper connection pool and signed with aws-sigv4 the way the SDK
//! signs S3 requests (SigV4 with `x-amz-content-sha256`, single percent-encoding, no path
//! normalisation). The SDK's pipeline around the same request (interceptors, per-call config
//! layering, endpoint rules, user-agent assembly, type-erased orchestration) costs more CPU than the
//! request itself; scripts/bench.sh measures the difference.
//!
//! What the SDK would have done and this path does too: the SDK's own endpoint resolver, run once
//! per bucket (an endpoint that is not plain SigV4 keeps the SDK path, see [`Route::resolve`]); the
//! SDK's credential provider, cached until five minutes before expiry; the standard retry policy
//! (`retry_max_attempts`, exponential backoff with full jitter from 50 ms, retries on throttling,
//! 5xx, timeouts and broken connections); clock-skew correction from the server's `Date` header;
//! `connect_timeout` for a new connection and `read_timeout` for each attempt, from sending the
//! request to the last byte of the answer; the same trust store (system roots plus `ca_bundle`); and the same
//! error classification as every other call ([`super::service_error`]). Not done here: the adaptive
//! retry mode's client-side rate limiter (`retry_mode = "adaptive"` keeps the SDK path) and the
//! retry quota.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use aws_smithy_types::Document;
use aws_smithy_types::date_time::Format;
use aws_smithy_types::endpoint::Endpoint;
use aws_smithy_xml::decode::{Document as Xml, ScopedDecoder, try_data};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Request};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::{Aborted, ErrorKind, Operation, Part, PartsPage, StoreError, service_error, to_chrono};
use crate::config::Settings;

/// Characters of a key left as they are in the path: RFC 3986 unreserved, and `/`.
const KEY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');
/// Characters of a query value left as they are: RFC 3986 unreserved.
const QUERY: &AsciiSet = &KEY.add(b'/');
/// SHA-256 of the empty body: every request here has one.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// The first backoff; it doubles each retry, up to [`MAX_BACKOFF`], times a random factor in 0..1.
const INITIAL_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(20);
/// Credentials are refreshed this long before they expire.
const REFRESH_BEFORE: Duration = Duration::from_secs(300);
/// ...but an identity is used for at least this long after it was fetched.
const MIN_REUSE: Duration = Duration::from_secs(10);

/// What targets with the same connection settings share: the connection pool, the credentials,
/// the retry policy and the clock skew.
pub(super) struct Transport {
    http: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    provider: SharedCredentialsProvider,
    identity: parking_lot::Mutex<Option<(Identity, Instant)>>,
    refresh: tokio::sync::Mutex<()>,
    max_attempts: u32,
    attempt_timeout: Duration,
    /// Server time minus our time, in milliseconds, learnt from RequestTimeTooSkewed answers.
    skew_ms: AtomicI64,
}

impl Transport {
    /// A transport for these settings; `ca_pem` is the content of the CA bundle, if any.
    pub(super) fn new(
        s: &Settings,
        provider: SharedCredentialsProvider,
        ca_pem: Option<&[u8]>,
    ) -> Result<Transport, String> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        if let Some(pem) = ca_pem {
            use rustls_pki_types::pem::PemObject as _;
            for cert in rustls_pki_types::CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| format!("cannot read the CA bundle: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("cannot use a certificate of the CA bundle: {e}"))?;
            }
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(s.connect_timeout.0));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        let http = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(https);
        Ok(Transport {
            http,
            provider,
            identity: parking_lot::Mutex::new(None),
            refresh: tokio::sync::Mutex::new(()),
            max_attempts: s.retry_max_attempts.max(1),
            attempt_timeout: s.read_timeout.0,
            skew_ms: AtomicI64::new(0),
        })
    }

    /// The cached identity, or a fresh one from the provider (one refresh at a time). An identity
    /// is refreshed [`REFRESH_BEFORE`] its expiry, but never sooner than [`MIN_REUSE`] after it was
    /// fetched, so a provider that hands out short-lived credentials is not asked on every request.
    async fn identity(&self, op: Operation) -> Result<Identity, StoreError> {
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
            .map_err(|e| super::credentials_error(op, &super::chain(&e)))?;
        let identity = Identity::from(creds);
        *self.identity.lock() = Some((identity.clone(), Instant::now()));
        Ok(identity)
    }

    /// Takes the server's time from a `Date` header; false when there is none to read.
    fn learn_skew(&self, date: Option<&HeaderValue>) -> bool {
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

    fn now(&self) -> SystemTime {
        let skew = self.skew_ms.load(Ordering::Relaxed);
        let now = SystemTime::now();
        if skew >= 0 {
            now + Duration::from_millis(skew as u64)
        } else {
            now - Duration::from_millis(skew.unsigned_abs())
        }
    }
}

/// One bucket's address on a [`Transport`].
pub(super) struct Route {
    transport: Arc<Transport>,
    bucket: String,
    /// The endpoint with the bucket in it, without a trailing `/`.
    base: String,
    signing_name: String,
    signing_region: String,
    headers: Vec<(HeaderName, HeaderValue)>,
}

/// A response worth reading: a 2xx, or NoSuchUpload.
enum Reply {
    Ok(Bytes),
    NoSuchUpload,
}

impl Route {
    /// The route for the endpoint the SDK's resolver gave for this bucket, when that endpoint is
    /// signed with plain SigV4; `None` otherwise (SigV4a, S3 Express sessions...), and the SDK
    /// keeps those requests.
    pub(super) fn resolve(
        transport: Arc<Transport>,
        bucket: &str,
        region: &str,
        endpoint: &Endpoint,
        s: &Settings,
    ) -> Option<Route> {
        if endpoint.headers().count() > 0 {
            return None;
        }
        let (mut name, mut signing_region, mut single_encoding) =
            ("s3".to_string(), region.to_string(), true);
        if let Some(Document::Array(schemes)) = endpoint.properties().get("authSchemes") {
            let Some(Document::Object(scheme)) = schemes.first() else {
                return None;
            };
            if !matches!(scheme.get("name"), Some(Document::String(n)) if n == "sigv4") {
                return None;
            }
            if let Some(Document::String(n)) = scheme.get("signingName") {
                name = n.clone();
            }
            if let Some(Document::String(r)) = scheme.get("signingRegion") {
                signing_region = r.clone();
            }
            if let Some(Document::Bool(d)) = scheme.get("disableDoubleEncoding") {
                single_encoding = *d;
            }
        }
        if !single_encoding || name != "s3" {
            return None;
        }
        let mut headers = vec![(
            hyper::header::USER_AGENT,
            HeaderValue::from_static(concat!("mpu-janitor/", env!("CARGO_PKG_VERSION"))),
        )];
        if !s.expected_bucket_owner.is_empty() {
            headers.push((
                HeaderName::from_static("x-amz-expected-bucket-owner"),
                HeaderValue::from_str(&s.expected_bucket_owner).ok()?,
            ));
        }
        if s.request_payer {
            headers.push((
                HeaderName::from_static("x-amz-request-payer"),
                HeaderValue::from_static("requester"),
            ));
        }
        Some(Route {
            transport,
            bucket: bucket.to_string(),
            base: endpoint.url().trim_end_matches('/').to_string(),
            signing_name: name,
            signing_region,
            headers,
        })
    }

    /// One ListParts page; `None` for NoSuchUpload.
    pub(super) async fn parts_page(
        &self,
        key: &str,
        upload_id: &str,
        marker: Option<&str>,
    ) -> Result<Option<PartsPage>, StoreError> {
        let op = Operation::ListParts;
        let mut url = self.url(key, upload_id);
        if let Some(m) = marker {
            url.push_str("&part-number-marker=");
            url.extend(utf8_percent_encode(m, QUERY));
        }
        let body = match self.send(op, Method::GET, &url).await? {
            Reply::NoSuchUpload => return Ok(None),
            Reply::Ok(body) => body,
        };
        parse_list_parts(&body)
            .map(Some)
            .map_err(|e| StoreError::protocol(op, format!("unreadable ListParts answer: {e}")))
    }

    /// Aborts an upload.
    pub(super) async fn abort(&self, key: &str, upload_id: &str) -> Result<Aborted, StoreError> {
        let url = self.url(key, upload_id);
        Ok(
            match self.send(Operation::Abort, Method::DELETE, &url).await? {
                Reply::Ok(_) => Aborted::Accepted,
                Reply::NoSuchUpload => Aborted::NoSuchUpload,
            },
        )
    }

    fn url(&self, key: &str, upload_id: &str) -> String {
        let mut url = String::with_capacity(self.base.len() + key.len() + upload_id.len() + 40);
        url.push_str(&self.base);
        url.push('/');
        url.extend(utf8_percent_encode(key, KEY));
        url.push_str("?uploadId=");
        url.extend(utf8_percent_encode(upload_id, QUERY));
        url
    }

    /// Sends one request with the standard retry policy.
    async fn send(&self, op: Operation, method: Method, url: &str) -> Result<Reply, StoreError> {
        let t = &self.transport;
        let mut attempt = 1;
        loop {
            let result =
                match tokio::time::timeout(t.attempt_timeout, self.attempt(op, &method, url)).await
                {
                    Ok(result) => result,
                    Err(_) => Err(Failure {
                        retry: true,
                        error: StoreError {
                            operation: op,
                            kind: ErrorKind::Timeout,
                            message: format!(
                                "timed out: no complete answer within {}",
                                humantime::format_duration(t.attempt_timeout)
                            ),
                        },
                    }),
                };
            match result {
                Ok(reply) => return Ok(reply),
                Err(f) if !f.retry || attempt >= t.max_attempts => return Err(f.error),
                Err(_) => {
                    let cap = INITIAL_BACKOFF
                        .saturating_mul(1 << (attempt - 1).min(16))
                        .min(MAX_BACKOFF);
                    tokio::time::sleep(cap.mul_f64(rand::random_range(0.0..1.0))).await;
                    attempt += 1;
                }
            }
        }
    }

    async fn attempt(&self, op: Operation, method: &Method, url: &str) -> Result<Reply, Failure> {
        let t = &self.transport;
        let identity = t.identity(op).await.map_err(Failure::fatal)?;
        let mut req = Request::builder()
            .method(method.clone())
            .uri(url)
            .header("x-amz-content-sha256", EMPTY_SHA256)
            .body(Empty::<Bytes>::new())
            .map_err(|e| Failure::fatal(StoreError::protocol(op, format!("bad request: {e}"))))?;
        req.headers_mut().extend(self.headers.iter().cloned());
        self.sign(&mut req, url, &identity)
            .map_err(|e| Failure::fatal(StoreError::protocol(op, format!("cannot sign: {e}"))))?;
        let resp = t.http.request(req).await.map_err(|e| Failure {
            retry: true,
            error: StoreError {
                operation: op,
                kind: if super::chain(&e).contains("timed out") {
                    ErrorKind::Timeout
                } else {
                    ErrorKind::Network
                },
                message: format!("{} {}", super::chain(&e), super::NETWORK_HINT),
            },
        })?;
        let status = resp.status();
        let date = resp.headers().get(hyper::header::DATE).cloned();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| Failure {
                retry: true,
                error: StoreError {
                    operation: op,
                    kind: ErrorKind::Network,
                    message: format!("the answer broke off: {}", super::chain(&e)),
                },
            })?
            .to_bytes();
        if status.is_success() {
            return Ok(Reply::Ok(body));
        }
        let (code, message) = parse_error(&body);
        if code == "NoSuchUpload" {
            return Ok(Reply::NoSuchUpload);
        }
        // A refused clock is worth another attempt once the server's time is known.
        let skew_learnt = code == "RequestTimeTooSkewed" && t.learn_skew(date.as_ref());
        let error = service_error(op, &self.bucket, status.as_u16(), &code, &message);
        let retry = skew_learnt
            || matches!(error.kind, ErrorKind::Throttled | ErrorKind::Server)
            || matches!(code.as_str(), "RequestTimeout" | "InternalError");
        Err(Failure { retry, error })
    }

    fn sign(
        &self,
        req: &mut Request<Empty<Bytes>>,
        url: &str,
        identity: &Identity,
    ) -> Result<(), String> {
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        let params = v4::SigningParams::builder()
            .identity(identity)
            .region(&self.signing_region)
            .name(&self.signing_name)
            .time(self.transport.now())
            .settings(settings)
            .build()
            .map_err(|e| e.to_string())?
            .into();
        let headers = req
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)));
        let signable = SignableRequest::new(
            req.method().as_str(),
            url,
            headers,
            SignableBody::Precomputed(EMPTY_SHA256.to_string()),
        )
        .map_err(|e| e.to_string())?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| e.to_string())?
            .into_parts();
        instructions.apply_to_request_http1x(req);
        Ok(())
    }
}

/// A failed attempt, and whether another is worth it.
struct Failure {
    retry: bool,
    error: StoreError,
}

impl Failure {
    fn fatal(error: StoreError) -> Failure {
        Failure {
            retry: false,
            error,
        }
    }
}

fn parse_list_parts(body: &[u8]) -> Result<PartsPage, String> {
    let mut doc = Xml::try_from(body).map_err(|e| e.to_string())?;
    let mut root = doc.root_element().map_err(|e| e.to_string())?;
    if !root.start_el().matches("ListPartsResult") {
        return Err(format!("root element {:?}", root.start_el().local()));
    }
    let mut page = PartsPage::default();
    while let Some(mut tag) = root.next_tag() {
        match tag.start_el().local() {
            "IsTruncated" => page.truncated = text(&mut tag)? == "true",
            "NextPartNumberMarker" => page.next = Some(text(&mut tag)?).filter(|m| !m.is_empty()),
            "Part" => {
                let mut part = Part {
                    number: 0,
                    etag: String::new(),
                    size: 0,
                    last_modified: None,
                };
                while let Some(mut field) = tag.next_tag() {
                    match field.start_el().local() {
                        "PartNumber" => part.number = number(&text(&mut field)?)?,
                        "ETag" => part.etag = text(&mut field)?,
                        "Size" => part.size = number::<i64>(&text(&mut field)?)?.max(0) as u64,
                        "LastModified" => {
                            part.last_modified = aws_smithy_types::DateTime::from_str(
                                &text(&mut field)?,
                                Format::DateTime,
                            )
                            .ok()
                            .as_ref()
                            .and_then(to_chrono)
                        }
                        _ => {}
                    }
                }
                page.parts.push(part);
            }
            _ => {}
        }
    }
    Ok(page)
}

/// Code and message of an S3 error document; empty when the body is not one.
fn parse_error(body: &[u8]) -> (String, String) {
    let (mut code, mut message) = (String::new(), String::new());
    let Ok(mut doc) = Xml::try_from(body) else {
        return (code, message);
    };
    let Ok(mut root) = doc.root_element() else {
        return (code, message);
    };
    while let Some(mut tag) = root.next_tag() {
        match tag.start_el().local() {
            "Code" => code = text(&mut tag).unwrap_or_default(),
            "Message" => message = text(&mut tag).unwrap_or_default(),
            _ => {}
        }
    }
    (code, message)
}

fn text(tag: &mut ScopedDecoder) -> Result<String, String> {
    try_data(tag)
        .map(|t| t.trim().to_string())
        .map_err(|e| e.to_string())
}

fn number<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    s.parse().map_err(|_| format!("not a number: {s:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_list_parts_page_with_escaped_etags() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<ListPartsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Bucket>b</Bucket><Key>k</Key><UploadId>u</UploadId>
  <PartNumberMarker>0</PartNumberMarker><NextPartNumberMarker>2</NextPartNumberMarker>
  <MaxParts>2</MaxParts><IsTruncated>true</IsTruncated>
  <Part><PartNumber>1</PartNumber><LastModified>2026-11-20T10:00:00.000Z</LastModified>
    <ETag>&quot;abc&quot;</ETag><Size>5242880</Size></Part>
  <Part><PartNumber>2</PartNumber><ETag>"def"</ETag><Size>7</Size></Part>
</ListPartsResult>"#;
        let page = parse_list_parts(body).unwrap();
        assert!(page.truncated);
        assert_eq!(page.next.as_deref(), Some("2"));
        assert_eq!(page.parts.len(), 2);
        assert_eq!(page.parts[0].etag, "\"abc\"");
        assert_eq!(page.parts[0].size, 5_242_880);
        assert_eq!(
            page.parts[0].last_modified.map(|t| t.to_rfc3339()),
            Some("2026-11-20T10:00:00+00:00".to_string())
        );
        assert_eq!((page.parts[1].number, page.parts[1].size), (2, 7));
        assert!(parse_list_parts(b"<Error><Code>x</Code></Error>").is_err());
        assert!(parse_list_parts(b"not xml").is_err());
    }

    #[test]
    fn reads_error_documents_and_tolerates_garbage() {
        let (code, message) = parse_error(
            b"<?xml version=\"1.0\"?><Error><Code>NoSuchUpload</Code><Message>gone &amp; done</Message></Error>",
        );
        assert_eq!(
            (code.as_str(), message.as_str()),
            ("NoSuchUpload", "gone & done")
        );
        assert_eq!(parse_error(b""), (String::new(), String::new()));
        assert_eq!(parse_error(b"<html>"), (String::new(), String::new()));
    }

    /// Hands out credentials that expire `ttl` after each call, and counts the calls.
    #[derive(Debug)]
    struct Counting {
        calls: std::sync::atomic::AtomicU32,
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
            let provider = Arc::new(Counting {
                calls: Default::default(),
                ttl,
            });
            let t = Transport::new(
                &Settings::default(),
                SharedCredentialsProvider::new(ArcProvider(provider.clone())),
                None,
            )
            .unwrap();
            for _ in 0..5 {
                t.identity(Operation::ListParts).await.unwrap();
            }
            assert_eq!(provider.calls.load(Ordering::SeqCst), calls, "ttl {ttl:?}");
        }
    }

    #[derive(Debug)]
    struct ArcProvider(Arc<Counting>);

    impl ProvideCredentials for ArcProvider {
        fn provide_credentials<'a>(
            &'a self,
        ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            self.0.provide_credentials()
        }
    }

    #[test]
    fn encodes_keys_like_the_sdk() {
        let enc = |k: &str| utf8_percent_encode(k, KEY).to_string();
        assert_eq!(enc("a/b c+d=é~_.-"), "a/b%20c%2Bd%3D%C3%A9~_.-");
        assert_eq!(
            utf8_percent_encode("x/y+z=", QUERY).to_string(),
            "x%2Fy%2Bz%3D"
        );
    }
}
