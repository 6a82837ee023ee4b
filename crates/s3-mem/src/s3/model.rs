//! What the S3 endpoint's handle hands out for assertions: counters, the request log's
//! records and snapshots of the stored uploads.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

#[allow(unused_imports)] // doc links
use super::{Endpoint, Faults};

/// Counters for assertions; see [`Endpoint::stats`].
///
/// Operation counters count every call that passed authentication and reached the
/// handler, whether it succeeded or not.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// HTTP requests received, faulted ones included.
    pub requests: u64,
    /// `CreateMultipartUpload` calls.
    pub create_multipart_upload: u64,
    /// `UploadPart` calls.
    pub upload_part: u64,
    /// `ListMultipartUploads` calls.
    pub list_multipart_uploads: u64,
    /// `ListParts` calls.
    pub list_parts: u64,
    /// `AbortMultipartUpload` calls (including ones answered `NoSuchUpload`).
    pub abort_multipart_upload: u64,
    /// Aborts that really removed an upload.
    pub aborts_removed: u64,
    /// Aborts that answered 204 but kept the upload (stragglers, never-empty keys).
    pub aborts_swallowed: u64,
    /// `AbortMultipartUpload` calls by object key.
    pub aborts_by_key: HashMap<String, u64>,
    /// `AbortMultipartUpload` calls by upload id.
    pub aborts_by_upload_id: HashMap<String, u64>,
    /// Requests answered `503 SlowDown` by the fault plan.
    pub slowdown_faults: u64,
    /// Requests whose connection was reset by the fault plan.
    pub reset_faults: u64,
    /// Requests answered `403 AccessDenied` because of [`Faults::fail_buckets`].
    pub access_denied_faults: u64,
    /// Requests answered `403 RequestTimeTooSkewed` because of [`Faults::clock_ahead`].
    pub skewed_faults: u64,
    /// Requests answered `503 SlowDown` by [`Faults::throttle`].
    pub throttled: u64,
    /// Requests let through by [`Faults::throttle`] while it was set.
    pub throttle_admitted: u64,
    /// `ListBuckets` calls (one per page).
    pub list_buckets: u64,
    /// `GetBucketTagging` calls (denied ones and those answered `NoSuchTagSet` included).
    pub get_bucket_tagging: u64,
    /// Authenticated requests that reached an operation, by the access key that signed them.
    pub requests_by_access_key: BTreeMap<String, u64>,
}

impl Stats {
    /// Number of `AbortMultipartUpload` calls made for `key`.
    #[must_use]
    pub fn aborts_for_key(&self, key: &str) -> u64 {
        self.aborts_by_key.get(key).copied().unwrap_or(0)
    }

    /// Number of `AbortMultipartUpload` calls made for `upload_id`.
    #[must_use]
    pub fn aborts_for_upload(&self, upload_id: &str) -> u64 {
        self.aborts_by_upload_id
            .get(upload_id)
            .copied()
            .unwrap_or(0)
    }

    /// Number of authenticated requests signed with `access_key` that reached an operation.
    #[must_use]
    pub fn requests_for_access_key(&self, access_key: &str) -> u64 {
        self.requests_by_access_key
            .get(access_key)
            .copied()
            .unwrap_or(0)
    }
}

/// One HTTP request as the endpoint received it; see [`Endpoint::requests`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestRecord {
    /// HTTP method, e.g. `GET`.
    pub method: String,
    /// The `Host` header as sent (port included); empty when absent.
    pub host: String,
    /// The request target as sent: absolute form (`http://host:port/path?query`, as a client
    /// sends it to its proxy) or origin form (`/path?query`).
    pub target: String,
    /// Path of the target, still percent-encoded (for a virtual-hosted-style request, without
    /// the bucket).
    pub path: String,
    /// Query of the target without the `?`, still percent-encoded; empty when none.
    pub query: String,
    /// Access key of the `Authorization` header's credential (`SigV4`, or `SigV2`); empty when
    /// there is none. Recorded whether the signature is good or not.
    pub access_key: String,
    /// Region of the `SigV4` credential scope; empty when absent.
    pub region: String,
    /// Service of the `SigV4` credential scope (`s3`); empty when absent.
    pub service: String,
    /// Status answered; 0 while the request is in flight, and for a request answered by no
    /// response at all (an injected connection reset, a dropped connection).
    pub status: u16,
}

/// One multipart upload as currently stored; see [`Endpoint::uploads`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadSnapshot {
    /// Object key.
    pub key: String,
    /// Upload id.
    pub upload_id: String,
    /// `Initiated` timestamp (server clock, offset included, when created).
    pub initiated: DateTime<Utc>,
    /// Parts in part-number order.
    pub parts: Vec<PartSnapshot>,
}

/// One stored part; see [`UploadSnapshot`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartSnapshot {
    /// Part number (1..=10000).
    pub part_number: u32,
    /// Size of the body in bytes.
    pub size: u64,
    /// Quoted MD5 hex of the body, as in the `ETag` header (seeded parts get a
    /// deterministic stand-in digest).
    pub etag: String,
    /// `LastModified` timestamp.
    pub last_modified: DateTime<Utc>,
}
