//! What the directory-bucket endpoint's tests share: the real S3 client pointed at it, and a
//! raw client signed with aws-sigv4 for sessions the SDK would never misuse.

use std::fmt::Write as _;
use std::time::SystemTime;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::ProvideErrorMetadata as _;
use aws_sdk_s3::primitives::DateTime as SdkDateTime;
use chrono::{DateTime, Utc};
use tokio::net::TcpStream;

use super::super::{DirectoryEndpoint, S3_NAMESPACE, SESSION_TOKEN_HEADER};

pub(super) const AK: &str = "AKIAEXPRESSUNITTEST1";
pub(super) const SK: &str = "express-unit-test-secret";
pub(super) const BUCKET: &str = "logs--usw2-az1--x-s3";
pub(super) const MIB: u64 = 1024 * 1024;

pub(super) async fn started() -> DirectoryEndpoint {
    DirectoryEndpoint::start(AK, SK).await.expect("endpoint")
}

pub(super) fn config(endpoint_url: String) -> aws_sdk_s3::config::Builder {
    aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint_url)
        .region(Region::new("us-west-2"))
        .credentials_provider(Credentials::new(AK, SK, None, None, "test"))
}

/// The real SDK client, pointed at the endpoint's IP: path style.
pub(super) fn client(ep: &DirectoryEndpoint) -> Client {
    Client::from_conf(config(ep.url()).build())
}

/// The real SDK client, pointed at `s3express.test` through the endpoint as its HTTP
/// proxy: virtual-hosted style, no DNS.
pub(super) fn virtual_client(ep: &DirectoryEndpoint) -> Client {
    use aws_smithy_http_client::proxy::ProxyConfig;

    let proxy = ProxyConfig::http(ep.url()).expect("a proxy");
    let http = aws_smithy_http_client::Builder::new().build_with_connector_fn(
        move |settings, components| {
            let mut c = aws_smithy_http_client::Connector::builder().proxy_config(proxy.clone());
            c.set_connector_settings(settings.cloned());
            if let Some(components) = components {
                c.set_sleep_impl(components.sleep_impl());
            }
            c.build_http()
        },
    );
    let url = format!("http://s3express.test:{}", ep.addr().port());
    Client::from_conf(config(url).http_client(http).build())
}

pub(super) fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("a timestamp")
        .with_timezone(&Utc)
}

pub(super) fn to_chrono(t: &SdkDateTime) -> DateTime<Utc> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos()).expect("a time")
}

pub(super) fn status_and_code<E: aws_sdk_s3::error::ProvideErrorMetadata>(
    err: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> (Option<u16>, Option<String>) {
    (
        err.raw_response().map(|r| r.status().as_u16()),
        err.code().map(str::to_owned),
    )
}

// -----------------------------------------------------------------------------------
// Through raw HTTP: sessions the SDK would never misuse.

pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) body: String,
}

impl Reply {
    pub(super) fn element(&self, name: &str) -> Option<&str> {
        let open = format!("<{name}>");
        let start = self.body.find(&open)? + open.len();
        let len = self.body[start..].find(&format!("</{name}>"))?;
        Some(&self.body[start..start + len])
    }
}

/// Signs a request for `s3express` with aws-sigv4 (the session token, if any, in
/// `x-amz-s3session-token`, an unsigned payload) and sends it on a new connection.
pub(super) async fn send_signed(
    ep: &DirectoryEndpoint,
    method: &str,
    target: &str,
    creds: Option<(&str, &str, Option<&str>)>,
) -> Reply {
    use aws_sigv4::http_request::{
        PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
        UriPathNormalizationMode, sign,
    };
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let host = ep.addr().to_string();
    let mut headers: Vec<(String, String)> = vec![("host".into(), host.clone())];
    if let Some((ak, sk, token)) = creds {
        let identity = Credentials::new(ak, sk, token.map(str::to_owned), None, "test").into();
        let mut settings = SigningSettings::default();
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.session_token_name_override = Some(SESSION_TOKEN_HEADER);
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region("us-west-2")
            .name("s3express")
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .expect("params")
            .into();
        let url = format!("http://{host}{target}");
        let signable = SignableRequest::new(
            method,
            url.as_str(),
            std::iter::empty(),
            SignableBody::UnsignedPayload,
        )
        .expect("signable");
        let (instructions, _) = sign(signable, &params).expect("signed").into_parts();
        headers.extend(
            instructions
                .headers()
                .map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
    }
    let mut request = format!("{method} {target} HTTP/1.1\r\n");
    for (k, v) in &headers {
        let _ = write!(request, "{k}: {v}\r\n");
    }
    request.push_str("connection: close\r\n\r\n");
    let mut stream = TcpStream::connect(ep.addr()).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("a reply");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    Reply {
        status,
        body: body.to_owned(),
    }
}

/// A session for `bucket` through raw `CreateSession`: (access key, secret, token).
pub(super) async fn session(ep: &DirectoryEndpoint, bucket: &str) -> (String, String, String) {
    let reply = send_signed(
        ep,
        "GET",
        &format!("/{bucket}?session"),
        Some((AK, SK, None)),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.body.contains(S3_NAMESPACE), "{}", reply.body);
    let field = |name| reply.element(name).expect(name).to_owned();
    (
        field("AccessKeyId"),
        field("SecretAccessKey"),
        field("SessionToken"),
    )
}
