//! A minimal raw `SigV4` client for the S3 endpoint's tests (GET and HEAD, empty bodies), so
//! the custom `S3Auth` and what s3s hands the operations are tested as a client meets them.

use std::fmt::Write as _;

use chrono::Utc;
use tokio::net::TcpStream;

use super::super::Endpoint;
use super::super::ops::url_encode;
use super::super::state::hex;

// -----------------------------------------------------------------------------------
// Through real HTTP: a minimal SigV4 signer (GET and HEAD, empty bodies), so the custom
// S3Auth and what s3s hands the operations are tested as a client meets them.

pub(super) const AK: &str = "AKIAS3MEMUNITTEST001";
pub(super) const SK: &str = "unit-test-secret";
pub(super) const EMPTY_SHA256: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

pub(super) fn sha256(data: &[u8]) -> [u8; 32] {
    <s3s::crypto::Sha256 as s3s::crypto::Checksum>::checksum(data)
}

pub(super) fn hmac(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&sha256(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    inner.extend_from_slice(msg);
    let mut outer: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    outer.extend_from_slice(&sha256(&inner));
    sha256(&outer)
}

/// AWS URI encoding of a query component: everything but unreserved characters.
pub(super) fn enc(s: &str) -> String {
    url_encode(s).replace('/', "%2F")
}

/// Who signs a request, and for which region.
pub(super) struct Signer<'a> {
    pub(super) access_key: &'a str,
    pub(super) secret_key: &'a str,
    pub(super) region: &'a str,
    pub(super) token: Option<&'a str>,
}

pub(super) const START_KEY: Signer<'static> = Signer {
    access_key: AK,
    secret_key: SK,
    region: "us-east-1",
    token: None,
};

pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) head: String,
    pub(super) body: String,
}

impl Reply {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// Texts of every `<tag>` element of the body, in order.
    pub(super) fn all(&self, tag: &str) -> Vec<String> {
        let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
        self.body
            .split(&open)
            .skip(1)
            .filter_map(|s| s.split_once(&close).map(|(v, _)| v.to_owned()))
            .collect()
    }
}

/// Sends a signed request with an empty body on a new connection and reads the reply.
pub(super) async fn send(
    ep: &Endpoint,
    who: &Signer<'_>,
    method: &str,
    path: &str,
    query: &[(&str, &str)],
) -> Reply {
    let host = ep.addr().to_string();
    send_via(ep, who, &host, Form::Origin, method, path, query).await
}

/// The request target's form.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Form {
    /// `/path?query`.
    Origin,
    /// `http://{host}/path?query` with an (unsigned) `Proxy-Authorization`, as a client
    /// sends it to its HTTP proxy.
    Proxy,
}

/// [`send`] with this `Host` header (signed), in this form, still to the endpoint's
/// address.
pub(super) async fn send_via(
    ep: &Endpoint,
    who: &Signer<'_>,
    host: &str,
    form: Form,
    method: &str,
    path: &str,
    query: &[(&str, &str)],
) -> Reply {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let host = host.to_owned();
    let now = Utc::now();
    let (amz_date, date) = (
        now.format("%Y%m%dT%H%M%SZ").to_string(),
        now.format("%Y%m%d").to_string(),
    );
    let mut pairs: Vec<(String, String)> = query.iter().map(|&(k, v)| (enc(k), enc(v))).collect();
    pairs.sort();
    let query = pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let mut headers = vec![
        ("host", host.clone()),
        ("x-amz-content-sha256", EMPTY_SHA256.to_owned()),
        ("x-amz-date", amz_date.clone()),
    ];
    if let Some(token) = who.token {
        headers.push(("x-amz-security-token", token.to_owned()));
    }
    let signed = headers
        .iter()
        .map(|(k, _)| *k)
        .collect::<Vec<_>>()
        .join(";");
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let canonical =
        format!("{method}\n{path}\n{query}\n{canonical_headers}\n{signed}\n{EMPTY_SHA256}");
    let scope = format!("{date}/{}/s3/aws4_request", who.region);
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(&sha256(canonical.as_bytes()))
    );
    let mut key = hmac(
        format!("AWS4{}", who.secret_key).as_bytes(),
        date.as_bytes(),
    );
    for part in [who.region, "s3", "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    let signature = hex(&hmac(&key, to_sign.as_bytes()));

    let mut target = if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
    };
    if form == Form::Proxy {
        target = format!("http://{host}{target}");
    }
    let mut request = format!("{method} {target} HTTP/1.1\r\n");
    for (k, v) in &headers {
        let _ = write!(request, "{k}: {v}\r\n");
    }
    if form == Form::Proxy {
        request.push_str("proxy-authorization: Basic dXNlcjpwYXNz\r\n");
    }
    let _ = write!(
        request,
        "authorization: AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, Signature={signature}\r\nconnection: close\r\n\r\n",
        who.access_key
    );
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
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

pub(super) async fn started() -> Endpoint {
    Endpoint::start(AK, SK).await.expect("endpoint")
}

/// Follows continuation tokens from the first page: the names listed, page by page.
pub(super) async fn list_all(ep: &Endpoint, max: Option<&str>) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut query = Vec::new();
        if let Some(m) = max {
            query.push(("max-buckets", m));
        }
        if let Some(t) = &token {
            query.push(("continuation-token", t.as_str()));
        }
        let reply = send(ep, &START_KEY, "GET", "/", &query).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        pages.push(reply.all("Name"));
        token = reply.all("ContinuationToken").into_iter().next();
        if token.is_none() {
            return pages;
        }
        assert!(pages.len() < 100, "the listing never ends");
    }
}
