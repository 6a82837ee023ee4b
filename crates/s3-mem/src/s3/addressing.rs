//! How the S3 endpoint reads where a request goes: virtual-hosted-style buckets under a base
//! domain, absolute-form (proxy) targets turned into origin form, and the credential scope of
//! an `Authorization` header (for the request log).

use std::io;

use s3s::S3Result;
use s3s::host::{S3Host, SingleDomain, VirtualHost};

#[allow(unused_imports)] // doc links
use super::Endpoint;

/// The access key, region and service of an `Authorization` header's credential (`SigV4`:
/// `Credential=AK/date/region/service/aws4_request`; `SigV2`: `AWS AK:signature`, no scope);
/// empty strings for what is absent.
pub(super) fn credential_scope(authorization: &str) -> (&str, &str, &str) {
    if let Some(v2) = authorization.strip_prefix("AWS ") {
        let access_key = v2.split_once(':').map_or(v2, |(key, _)| key);
        return (access_key.trim(), "", "");
    }
    let Some(credential) = authorization
        .strip_prefix("AWS4-HMAC-SHA256")
        .and_then(|rest| {
            rest.split(',')
                .find_map(|part| part.trim().strip_prefix("Credential="))
        })
    else {
        return ("", "", "");
    };
    let mut scope = credential.trim().split('/');
    let access_key = scope.next().unwrap_or("");
    let _date = scope.next();
    let region = scope.next().unwrap_or("");
    let service = scope.next().unwrap_or("");
    (access_key, region, service)
}

/// A `Host` header without its port (`name:digits`; IPv6 literals keep their brackets).
pub(super) fn strip_port(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((name, port))
            if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && !name.is_empty() =>
        {
            name
        }
        _ => host,
    }
}

/// The bucket a virtual-hosted-style `Host` header addresses under the base domain `domain`
/// (lowercase): everything before `.{domain}`, the port and the domain's case ignored. `None`
/// for the domain itself (path style), for an IP address and for any other name.
pub(super) fn host_bucket<'a>(host: &'a str, domain: &str) -> Option<&'a str> {
    let name = strip_port(host);
    let cut = name.len().checked_sub(domain.len() + 1)?;
    let (bucket, dot_domain) = (name.get(..cut)?, name.get(cut..)?);
    let under = dot_domain
        .strip_prefix('.')
        .is_some_and(|d| d.eq_ignore_ascii_case(domain));
    (under && !bucket.is_empty()).then_some(bucket)
}

/// Checks a base domain for [`Endpoint::start_with_domain`] (as s3s's [`SingleDomain`]
/// does, a port excluded) and lowercases it.
pub(super) fn base_domain(domain: &str) -> io::Result<String> {
    let invalid = |why: String| io::Error::new(io::ErrorKind::InvalidInput, why);
    if domain.contains(':') {
        return Err(invalid(format!(
            "base domain {domain:?}: no port (any port is accepted)"
        )));
    }
    SingleDomain::new(domain).map_err(|e| invalid(format!("base domain {domain:?}: {e}")))?;
    Ok(domain.to_ascii_lowercase())
}

/// Virtual-hosted-style addressing for s3s. Not s3s's [`SingleDomain`] itself: it compares the
/// whole `Host` header, port included, with the domain, and takes any other host for a bucket
/// name (a CNAME), where this endpoint takes it for path style.
pub(super) struct VirtualHosts {
    pub(super) domain: String,
}

impl S3Host for VirtualHosts {
    fn parse_host_header<'a>(&'a self, host: &'a str) -> S3Result<VirtualHost<'a>> {
        let vh = VirtualHost::new(self.domain.as_str());
        Ok(match host_bucket(host, &self.domain) {
            Some(bucket) => vh.with_bucket(bucket),
            None => vh,
        })
    }
}

/// Turns an absolute-form request target (`http://host:port/path?query`, as sent to a proxy)
/// into origin form (`/path?query`), which is what s3s and the `SigV4` canonical request
/// use. The `Host` header stays as sent (taken from the target only when absent).
pub(super) fn to_origin_form<B>(req: &mut hyper::Request<B>) {
    let uri = req.uri();
    if uri.scheme().is_none() && uri.authority().is_none() {
        return;
    }
    let authority = uri.authority().cloned();
    let path_and_query = uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| hyper::http::uri::PathAndQuery::from_static("/"));
    *req.uri_mut() = hyper::Uri::from(path_and_query);
    if !req.headers().contains_key(hyper::header::HOST)
        && let Some(value) =
            authority.and_then(|a| hyper::header::HeaderValue::from_str(a.as_str()).ok())
    {
        req.headers_mut().insert(hyper::header::HOST, value);
    }
}

/// First path segment of a path-style request.
pub(super) fn bucket_of(path: &str) -> &str {
    let path = path.strip_prefix('/').unwrap_or(path);
    path.split('/').next().unwrap_or("")
}
