//! The lean path: ListMultipartUploads, ListParts and AbortMultipartUpload, the requests a sweep
//! sends, over a plain hyper connection pool and signed with aws-sigv4 the way the
//! SDK signs S3 requests ([`sign`]). The SDK's pipeline around the same request (interceptors,
//! per-call config layering, endpoint rules, user-agent assembly, type-erased orchestration) costs
//! more CPU than the request itself: `scripts/bench.sh --paths` runs the same sweep on both paths
//! from one build and prints the CPU per upload and the rate of each (bench/results.md).
//!
//! What the SDK would have done and the lean path does too: the SDK's own endpoint resolver, run
//! once per bucket (an endpoint that is not plain SigV4 keeps the SDK path, see [`Route::resolve`]);
//! the SDK's credential provider, cached until five minutes before expiry ([`transport`]); the
//! standard retry policy ([`retry`]); clock-skew correction from the server's `Date` header;
//! `connect_timeout` for a new connection and `read_timeout` for each attempt, from sending the
//! request to the last byte of the answer; the product's one trust store ([`crate::store::tls`]);
//! and the same error classification as every other call. Not done here: the SDK's retry quota and
//! its token-bucket rate limiter (not public in aws-smithy-runtime); the adaptive retry mode is the
//! sweep's concurrency limit backing off on throttling ([`crate::limit`]), counted per transport.

mod retry;
mod sign;
mod transport;

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, LengthLimitError, Limited};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Request};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use self::retry::{Failure, with_retries};
use self::sign::{EMPTY_SHA256, Signer};
pub(crate) use self::transport::Transport;
use super::error::{NETWORK_HINT, Service, chain, means_gone, redirect_hint, service_error};
use super::xml;
use super::{
    Aborted, ErrorKind, Marker, Operation, PartsPage, StoreError, UploadPage, read_parts_page,
    read_uploads_page, server_named,
};
use crate::address::Address;
use crate::config::ClientSettings;

/// Characters of a key left as they are in the path: RFC 3986 unreserved, and `/`.
const KEY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');
/// Characters of a query value left as they are: RFC 3986 unreserved.
const QUERY: &AsciiSet = &KEY.add(b'/');

/// One bucket's address on a [`Transport`].
pub(crate) struct Route {
    transport: Arc<Transport>,
    bucket: String,
    /// The endpoint with the bucket in it, without a trailing `/`.
    base: String,
    signer: Signer,
    headers: Vec<(HeaderName, HeaderValue)>,
    /// `Proxy-Authorization` for a forward proxy, added after signing (never signed).
    proxy_auth: Option<HeaderValue>,
}

/// The largest answer read, by operation: a ListMultipartUploads page of 1,000 uploads with
/// 1,024-byte keys escaped is under 8 MiB, a ListParts page of 1,000 parts under 1 MiB, an error
/// document a few hundred bytes. A larger answer is a protocol error, never buffered whole.
fn max_body(op: Operation, success: bool) -> usize {
    match (op, success) {
        (Operation::ListUploads, true) => 16 << 20,
        (Operation::ListParts, true) => 4 << 20,
        _ => 64 << 10,
    }
}

/// A response worth reading: a 2xx (its body and `Date` header), or NoSuchUpload.
enum Reply {
    /// The body, the `Date` header, and (for a listing) the store as its headers name it
    /// ([`server_named`]).
    Ok(Bytes, Option<HeaderValue>, Option<String>),
    NoSuchUpload,
}

impl Route {
    /// The route for the endpoint the SDK's resolver gave for this bucket, when that endpoint is
    /// signed with plain SigV4; otherwise the reason it is not (SigV4a, S3 Express sessions...),
    /// and the SDK keeps those requests.
    pub(crate) fn resolve(
        transport: Arc<Transport>,
        bucket: &str,
        address: &Address,
        s: &ClientSettings,
    ) -> Result<Route, String> {
        if let Some(why) = address.not_plain_sigv4() {
            return Err(why);
        }
        let signing_region = address.signing_region.clone();
        let mut headers = vec![(
            hyper::header::USER_AGENT,
            HeaderValue::from_static(concat!("mpu-janitor/", env!("CARGO_PKG_VERSION"))),
        )];
        if !s.expected_bucket_owner.is_empty() {
            headers.push((
                HeaderName::from_static("x-amz-expected-bucket-owner"),
                HeaderValue::from_str(&s.expected_bucket_owner)
                    .map_err(|_| "expected_bucket_owner is not a valid header value")?,
            ));
        }
        if s.request_payer {
            headers.push((
                HeaderName::from_static("x-amz-request-payer"),
                HeaderValue::from_static("requester"),
            ));
        }
        let base = address.endpoint.url().trim_end_matches('/').to_string();
        Ok(Route {
            proxy_auth: transport.proxies.forward_auth(&base),
            transport,
            bucket: bucket.to_string(),
            base,
            signer: Signer {
                name: address.signing_name.clone(),
                region: signing_region,
            },
            headers,
        })
    }

    /// One ListMultipartUploads page, markers exactly as the server returned them.
    pub(crate) async fn list_uploads(
        &self,
        prefix: &str,
        marker: Option<&Marker>,
    ) -> Result<UploadPage, StoreError> {
        let op = Operation::ListUploads;
        let mut url = format!("{}/?uploads", self.base);
        for (name, value) in [
            ("key-marker", marker.map(|m| m.key.as_str())),
            ("prefix", Some(prefix).filter(|p| !p.is_empty())),
            (
                "upload-id-marker",
                marker.and_then(|m| m.upload_id.as_deref()),
            ),
        ] {
            if let Some(v) = value {
                url.push('&');
                url.push_str(name);
                url.push('=');
                url.extend(utf8_percent_encode(v, QUERY));
            }
        }
        let (body, date, server) = match self.send(op, Method::GET, &url).await? {
            Reply::Ok(body, date, server) => (body, date, server),
            Reply::NoSuchUpload => {
                return Err(StoreError::protocol(op, "NoSuchUpload to a listing"));
            }
        };
        read_uploads_page(
            &body,
            date.as_ref().and_then(|d| d.to_str().ok()),
            server.as_deref(),
        )
    }

    /// One ListParts page; `None` for NoSuchUpload.
    pub(crate) async fn parts_page(
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
            Reply::Ok(body, ..) => body,
        };
        read_parts_page(&body).map(Some)
    }

    /// Throttling answers received on this route's transport, by every route sharing it.
    pub(crate) fn throttled(&self) -> u64 {
        self.transport
            .throttled
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Aborts an upload.
    pub(crate) async fn abort(&self, key: &str, upload_id: &str) -> Result<Aborted, StoreError> {
        let url = self.url(key, upload_id);
        Ok(
            match self.send(Operation::Abort, Method::DELETE, &url).await? {
                Reply::Ok(..) => Aborted::Accepted,
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
        with_retries(op, t.max_attempts, t.attempt_timeout, || {
            self.attempt(op, &method, url)
        })
        .await
    }

    /// One attempt: sign, send, read the whole answer, classify it.
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
        self.signer
            .sign(&mut req, url, &identity, t.now())
            .map_err(|e| Failure::fatal(StoreError::protocol(op, format!("cannot sign: {e}"))))?;
        if let Some(auth) = &self.proxy_auth {
            req.headers_mut()
                .insert(hyper::header::PROXY_AUTHORIZATION, auth.clone());
        }
        let resp = t.http.request(req).await.map_err(|e| Failure {
            retry: true,
            error: StoreError {
                operation: op,
                kind: if chain(&e).contains("timed out") {
                    ErrorKind::Timeout
                } else {
                    ErrorKind::Network
                },
                message: format!("{} {NETWORK_HINT}", chain(&e)),
            },
        })?;
        let status = resp.status();
        let date = resp.headers().get(hyper::header::DATE).cloned();
        // Read for listings only, where it may say the store cannot list ([`server_named`]).
        let server = if op == Operation::ListUploads {
            server_named(
                resp.headers()
                    .get(hyper::header::SERVER)
                    .and_then(|v| v.to_str().ok()),
                resp.headers().contains_key("x-content-type-options"),
            )
        } else {
            None
        };
        let region = resp.headers().get("x-amz-bucket-region").cloned();
        let limit = max_body(op, status.is_success());
        let body = match Limited::new(resp.into_body(), limit).collect().await {
            Ok(body) => body.to_bytes(),
            Err(e) if e.is::<LengthLimitError>() => {
                return Err(Failure::fatal(StoreError::protocol(
                    op,
                    format!(
                        "HTTP {status} with an answer larger than {} MiB, more than the protocol allows",
                        limit as f64 / f64::from(1 << 20)
                    ),
                )));
            }
            Err(e) => {
                return Err(Failure {
                    retry: true,
                    error: StoreError {
                        operation: op,
                        kind: ErrorKind::Network,
                        message: format!("the answer broke off: {}", chain(&*e)),
                    },
                });
            }
        };
        if status.is_success() {
            return Ok(Reply::Ok(body, date, server));
        }
        let (code, message) = match xml::parse_error(&body) {
            Some(parsed) => parsed,
            None => (String::new(), xml::snippet(&body)),
        };
        if means_gone(op, status.as_u16(), &code) {
            return Ok(Reply::NoSuchUpload);
        }
        // A refused clock is worth another attempt once the server's time is known.
        let skew_learnt = code == "RequestTimeTooSkewed" && t.learn_skew(date.as_ref());
        let mut error = service_error(
            op,
            Service::S3,
            &self.bucket,
            status.as_u16(),
            &code,
            &message,
        );
        error.message.push_str(&redirect_hint(
            status.as_u16(),
            region.as_ref().and_then(|r| r.to_str().ok()),
        ));
        if error.kind == ErrorKind::Throttled {
            t.throttled
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let retry = skew_learnt
            || matches!(error.kind, ErrorKind::Throttled | ErrorKind::Server)
            || matches!(code.as_str(), "RequestTimeout" | "InternalError");
        Err(Failure { retry, error })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
