//! `SigV4` verification for the hand-written endpoints ([`crate::glacier`], [`crate::express`]),
//! independent of any client's signer, and the encoding helpers it (and they) rely on.
//!
//! [`verify`] checks, in this order: an `Authorization: AWS4-HMAC-SHA256 Credential=...,
//! SignedHeaders=..., Signature=...` header, an `x-amz-date` within 15 minutes of the real clock,
//! the credential scope (the expected service, any region, the date of `x-amz-date`), a known
//! access key (asked of the caller's lookup), `host` and `x-amz-date` among the signed headers,
//! the payload hash, then the signature recomputed from the request as received (method, path,
//! canonical query, signed headers, payload hash) and compared in constant time. What differs
//! between services is a [`Rules`] value: the service name, how the path enters the canonical
//! request (Glacier: normalised and encoded a second time; S3 and S3 Express: as sent) and
//! which payload hashes are accepted. A failure is a [`Failure`], which each endpoint renders
//! as its own error document.

use std::fmt::Write as _;

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use hmac::{Hmac, KeyInit as _, Mac as _};
use hyper::Method;
use hyper::header::HeaderMap;
use sha2::{Digest as _, Sha256};

/// How far `x-amz-date` may be from the real clock, as in AWS.
pub(crate) const MAX_SKEW: TimeDelta = TimeDelta::minutes(15);

/// `x-amz-content-sha256` of a request whose body is not signed (S3 only).
pub(crate) const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// What differs between the services verified.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rules {
    /// The service the credential scope must name (`glacier`, `s3express`).
    pub(crate) service: &'static str,
    /// Whether the canonical path is the path as sent normalised (dot and empty segments
    /// removed) and percent-encoded a second time, as every service but S3 signs it; else the
    /// path exactly as sent.
    pub(crate) double_encode_path: bool,
    /// S3's payload rules: `x-amz-content-sha256` is required and may be `UNSIGNED-PAYLOAD`;
    /// otherwise it is optional (the SHA-256 of the body when absent) and must be that hash.
    pub(crate) s3_payload: bool,
}

/// Who signed a request that passed verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Signer {
    pub(crate) access_key: String,
    pub(crate) region: String,
    pub(crate) service: String,
    /// Signed header names, lowercase, as listed in `SignedHeaders`.
    pub(crate) signed_headers: Vec<String>,
}

impl Signer {
    /// Whether `name` (lowercase) is among the signed headers.
    pub(crate) fn signed(&self, name: &str) -> bool {
        self.signed_headers.iter().any(|h| h == name)
    }
}

/// Why a request failed verification, in the order the checks are made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// No `Authorization` header.
    Missing,
    /// An `Authorization` header that is not a `SigV4` one with a full credential scope.
    Malformed,
    /// No `x-amz-date` header.
    MissingDate,
    /// An `x-amz-date` that is not `YYYYMMDDTHHMMSSZ` (the value as sent).
    BadDate(String),
    /// The credential scope names another service (the one it names).
    WrongService(String),
    /// The scope's date is not the date of `x-amz-date`.
    ScopeDate {
        scope_date: String,
        header_date: String,
    },
    /// `x-amz-date` is more than 15 minutes from `now`.
    Expired {
        amz_date: String,
        now: DateTime<Utc>,
    },
    /// The lookup knows no secret for this access key.
    UnknownKey(String),
    /// `host` or `x-amz-date` is not a signed header.
    HostOrDateUnsigned,
    /// No `x-amz-content-sha256` (S3 rules).
    MissingContentSha256,
    /// `x-amz-content-sha256` is neither the body's hash nor an accepted placeholder.
    ContentSha256Mismatch,
    /// The signature does not match (or a signed header is missing or not text).
    SignatureMismatch,
}

/// The parts of an `Authorization: AWS4-HMAC-SHA256 ...` header.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Authorization<'a> {
    pub(crate) access_key: &'a str,
    pub(crate) date: &'a str,
    pub(crate) region: &'a str,
    pub(crate) service: &'a str,
    pub(crate) signed_headers: &'a str,
    pub(crate) signature: &'a str,
}

/// Parses an `Authorization` header value; `None` unless it is a `SigV4` one with a full
/// credential scope.
pub(crate) fn parse_authorization(value: &str) -> Option<Authorization<'_>> {
    let rest = value.strip_prefix("AWS4-HMAC-SHA256 ")?;
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k {
            "Credential" => credential = Some(v),
            "SignedHeaders" => signed_headers = Some(v),
            "Signature" => signature = Some(v),
            _ => {}
        }
    }
    let mut scope = credential?.splitn(5, '/');
    let auth = Authorization {
        access_key: scope.next()?,
        date: scope.next()?,
        region: scope.next()?,
        service: scope.next()?,
        signed_headers: signed_headers?,
        signature: signature?,
    };
    (scope.next()? == "aws4_request").then_some(auth)
}

/// A request as verified: the path and query exactly as sent (for an absolute-form target,
/// its path and query).
pub(crate) struct Signed<'a> {
    pub(crate) method: &'a Method,
    pub(crate) path: &'a str,
    pub(crate) query: Option<&'a str>,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) body: &'a [u8],
}

/// Verifies the request's `SigV4` signature under `rules`. `lookup` maps an access key to its
/// secret and whatever the caller keeps with it (an account, a session), returned beside the
/// signer.
pub(crate) fn verify<T>(
    rules: &Rules,
    req: &Signed<'_>,
    lookup: impl FnOnce(&str) -> Option<(String, T)>,
) -> Result<(Signer, T), Failure> {
    let headers = req.headers;
    let value = headers
        .get(hyper::header::AUTHORIZATION)
        .ok_or(Failure::Missing)?;
    let auth = value
        .to_str()
        .ok()
        .and_then(parse_authorization)
        .ok_or(Failure::Malformed)?;
    let amz_date = header_str(headers, "x-amz-date").ok_or(Failure::MissingDate)?;
    let signed_at = NaiveDateTime::parse_from_str(amz_date, "%Y%m%dT%H%M%SZ")
        .map_err(|_| Failure::BadDate(amz_date.to_owned()))?
        .and_utc();
    if auth.service != rules.service {
        return Err(Failure::WrongService(auth.service.to_owned()));
    }
    if amz_date.get(..8) != Some(auth.date) {
        return Err(Failure::ScopeDate {
            scope_date: auth.date.to_owned(),
            header_date: amz_date.get(..8).unwrap_or_default().to_owned(),
        });
    }
    let now = Utc::now();
    if (now - signed_at).abs() > MAX_SKEW {
        return Err(Failure::Expired {
            amz_date: amz_date.to_owned(),
            now,
        });
    }
    let (secret, extra) =
        lookup(auth.access_key).ok_or_else(|| Failure::UnknownKey(auth.access_key.to_owned()))?;

    let names: Vec<&str> = auth.signed_headers.split(';').collect();
    if !names.contains(&"host") || !names.contains(&"x-amz-date") {
        return Err(Failure::HostOrDateUnsigned);
    }
    let body_hash = hex(&sha256(req.body));
    let payload_hash = match header_str(headers, "x-amz-content-sha256") {
        Some(claimed) if claimed.eq_ignore_ascii_case(&body_hash) => claimed,
        Some(claimed) if rules.s3_payload && claimed == UNSIGNED_PAYLOAD => claimed,
        Some(_) => return Err(Failure::ContentSha256Mismatch),
        None if rules.s3_payload => return Err(Failure::MissingContentSha256),
        None => body_hash.as_str(),
    };
    let canonical =
        canonical_request(rules, req, &names, payload_hash).ok_or(Failure::SignatureMismatch)?;
    let scope = format!(
        "{}/{}/{}/aws4_request",
        auth.date, auth.region, auth.service
    );
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(&sha256(canonical.as_bytes()))
    );
    let mut key = hmac_sha256(format!("AWS4{secret}").as_bytes(), auth.date.as_bytes());
    for part in [auth.region, auth.service, "aws4_request"] {
        key = hmac_sha256(&key, part.as_bytes());
    }
    let expected = unhex(auth.signature).ok_or(Failure::SignatureMismatch)?;
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&key) else {
        return Err(Failure::SignatureMismatch);
    };
    mac.update(to_sign.as_bytes());
    // A constant-time comparison, as a real service does.
    mac.verify_slice(&expected)
        .map_err(|_| Failure::SignatureMismatch)?;
    let signer = Signer {
        access_key: auth.access_key.to_owned(),
        region: auth.region.to_owned(),
        service: auth.service.to_owned(),
        signed_headers: names.iter().map(|&n| n.to_owned()).collect(),
    };
    Ok((signer, extra))
}

/// The `SigV4` canonical request; `None` if a signed header is missing or not text.
fn canonical_request(
    rules: &Rules,
    req: &Signed<'_>,
    signed: &[&str],
    payload_hash: &str,
) -> Option<String> {
    // The path as sent is already encoded once; services other than S3 sign it encoded twice.
    let path = if rules.double_encode_path {
        aws_encode(&normalize_path(req.path), false)
    } else if req.path.is_empty() {
        "/".to_owned()
    } else {
        req.path.to_owned()
    };
    let mut pairs: Vec<(String, String)> = req
        .query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                aws_encode(&form_decode(k), true),
                aws_encode(&form_decode(v), true),
            )
        })
        .collect();
    pairs.sort();
    let query = pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let mut canonical_headers = String::new();
    for name in signed {
        let values = req
            .headers
            .get_all(*name)
            .iter()
            .map(|v| v.to_str().ok().map(trim_all))
            .collect::<Option<Vec<_>>>()?;
        if values.is_empty() {
            return None;
        }
        let _ = writeln!(canonical_headers, "{name}:{}", values.join(","));
    }
    Some(format!(
        "{}\n{path}\n{query}\n{canonical_headers}\n{}\n{payload_hash}",
        req.method,
        signed.join(";")
    ))
}

// ---------------------------------------------------------------------------------------
// Helpers

pub(crate) fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

pub(crate) fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length: this never fails.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return [0; 32];
    };
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

/// Trims spaces and collapses runs of them, as `SigV4` canonical header values.
fn trim_all(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for word in value.split(' ').filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Removes `.` and `..` segments and empty ones (RFC 3986 5.2.4, as `SigV4` does).
pub(crate) fn normalize_path(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = format!("/{}", segments.join("/"));
    let trailing = ["/", "/.", "/./", "/..", "/../"]
        .iter()
        .any(|s| path.ends_with(s));
    if trailing && !out.ends_with('/') {
        out.push('/');
    }
    out
}

/// AWS URI encoding: every byte but unreserved characters (and `/` unless `slash`) as `%XX`.
pub(crate) fn aws_encode(s: &str, slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (b == b'/' && !slash)
        {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Percent-decoding; `+` is a space when `plus` (a query component).
pub(crate) fn percent_decode(s: &str, plus: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => match s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                Some(b) => {
                    out.push(b);
                    i += 3;
                    continue;
                }
                None => out.push(b'%'),
            },
            b'+' if plus => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A query component decoded as `application/x-www-form-urlencoded` (as the SDK's signer
/// reads the query it signs).
pub(crate) fn form_decode(s: &str) -> String {
    percent_decode(s, true)
}
