//! What the S3 endpoint's handle hands out for assertions besides its counters: the request
//! log's records and snapshots of the stored uploads.

use chrono::{DateTime, Utc};

#[allow(unused_imports)] // doc links
use super::Endpoint;

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
