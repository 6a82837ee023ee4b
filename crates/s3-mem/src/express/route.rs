//! Where a directory-bucket request goes: its bucket (virtual-hosted or path style), its key,
//! its query and the operation it asks for.

use std::collections::HashMap;

use hyper::header::HeaderMap;
use hyper::{Method, Uri};

use super::BUCKET_SUFFIX;
use crate::sigv4::{header_str, percent_decode};

pub(super) struct Target {
    /// The `Host` header as sent, else the target's authority.
    pub(super) host: String,
    /// The request target as sent.
    pub(super) target: String,
    pub(super) path: String,
    pub(super) query: Option<String>,
    pub(super) path_style: bool,
    /// Empty when none is addressed.
    pub(super) bucket: String,
    /// Decoded; `None` when the request addresses the bucket itself.
    pub(super) key: Option<String>,
}

impl Target {
    pub(super) fn read(uri: &Uri, headers: &HeaderMap) -> Target {
        let host = header_str(headers, "host")
            .map(str::to_owned)
            .or_else(|| uri.authority().map(|a| a.as_str().to_owned()))
            .unwrap_or_default();
        let path = uri.path().to_owned();
        let rest = path.strip_prefix('/').unwrap_or(&path);
        let (path_style, bucket, key) = match virtual_bucket(&host) {
            Some(bucket) => (false, bucket.to_owned(), rest),
            None => {
                let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
                (true, percent_decode(bucket, false), key)
            }
        };
        let key = (!key.is_empty()).then(|| percent_decode(key, false));
        Target {
            host,
            target: uri.to_string(),
            query: uri.query().map(str::to_owned),
            path,
            path_style,
            bucket,
            key,
        }
    }
}

/// The bucket a `Host` names: its first label, when that ends in `--x-s3`.
pub(super) fn virtual_bucket(host: &str) -> Option<&str> {
    if host.starts_with('[') {
        return None; // An IPv6 literal.
    }
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    let label = name.split('.').next()?;
    (label.len() > BUCKET_SUFFIX.len() && label.ends_with(BUCKET_SUFFIX)).then_some(label)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Operation {
    CreateSession,
    ListMultipartUploads,
    ListParts,
    AbortMultipartUpload,
    GetBucketLifecycleConfiguration,
    Unknown,
}

impl Operation {
    pub(super) fn route(
        method: &Method,
        target: &Target,
        query: &HashMap<String, String>,
    ) -> Operation {
        if target.bucket.is_empty() {
            return Operation::Unknown;
        }
        let has = |name: &str| query.contains_key(name);
        match (method, target.key.is_some()) {
            (&Method::GET, false) if has("session") => Operation::CreateSession,
            (&Method::GET, false) if has("uploads") => Operation::ListMultipartUploads,
            (&Method::GET, false) if has("lifecycle") => Operation::GetBucketLifecycleConfiguration,
            (&Method::GET, true) if has("uploadId") => Operation::ListParts,
            (&Method::DELETE, true) if has("uploadId") => Operation::AbortMultipartUpload,
            _ => Operation::Unknown,
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Operation::CreateSession => "CreateSession",
            Operation::ListMultipartUploads => "ListMultipartUploads",
            Operation::ListParts => "ListParts",
            Operation::AbortMultipartUpload => "AbortMultipartUpload",
            Operation::GetBucketLifecycleConfiguration => "GetBucketLifecycleConfiguration",
            Operation::Unknown => "Unknown",
        }
    }

    pub(super) fn data_plane(self) -> bool {
        matches!(
            self,
            Operation::ListMultipartUploads
                | Operation::ListParts
                | Operation::AbortMultipartUpload
        )
    }
}
