//! What the directory-bucket endpoint's handle takes and hands out: its fault plan,
//! counters, upload snapshots and request records.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::DEFAULT_SESSION_TTL;
#[allow(unused_imports)] // doc links
use super::DirectoryEndpoint;
use crate::Stats;
use crate::faults::{AbortFate, FaultPlan, fate};

/// Fault plan applied to requests; change it at runtime with [`DirectoryEndpoint::set_faults`].
///
/// The default plan injects nothing (sessions last [`DEFAULT_SESSION_TTL`]).
#[derive(Clone, Debug)]
pub struct DirFaults {
    /// Object key → `N`: a new part lands on its upload after each of the first `N` aborts,
    /// which are swallowed ([`crate::faults`]' `late_parts`).
    pub late_parts: HashMap<String, u32>,
    /// Object keys whose uploads no abort removes, a new part landing after each
    /// ([`crate::faults`]' `endless_late_parts`).
    pub endless_late_parts: HashSet<String>,
    /// Keys whose upload is replaced by a newer one under the same id at its first
    /// `ListParts`: its initiation time moves one hour forward (as
    /// [`DirectoryEndpoint::replace_upload`] does) before the parts are answered, so an abort
    /// carrying the listed time gets `412 PreconditionFailed`.
    pub replace_on_list_parts: HashSet<String>,
    /// Largest `ListMultipartUploads` page, whatever `max-uploads` asks (0 counts as 1).
    pub page_size: Option<usize>,
    /// Lifetime of the sessions created from now on.
    pub session_ttl: Duration,
    /// Delay added before every request is handled (rejected ones included).
    pub latency: Duration,
}

impl Default for DirFaults {
    fn default() -> Self {
        DirFaults {
            late_parts: HashMap::new(),
            endless_late_parts: HashSet::new(),
            replace_on_list_parts: HashSet::new(),
            page_size: None,
            session_ttl: DEFAULT_SESSION_TTL,
            latency: Duration::ZERO,
        }
    }
}

impl FaultPlan for DirFaults {
    fn latency(&self) -> Duration {
        self.latency
    }

    fn abort_fate(&self, name: &str, swallowed: u32) -> AbortFate {
        fate(
            &self.late_parts,
            &self.endless_late_parts,
            AbortFate::LatePart,
            name,
            swallowed,
        )
    }
}

/// The directory-bucket endpoint's counters: the shared [`Stats`], under the name its callers
/// know.
pub type DirStats = Stats;

/// One multipart upload of a directory bucket as currently stored; see
/// [`DirectoryEndpoint::uploads`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirUploadSnapshot {
    /// Object key.
    pub key: String,
    /// Upload id (64 URL-safe characters).
    pub upload_id: String,
    /// Initiation time (what `Initiated` lists).
    pub initiated: DateTime<Utc>,
    /// Number of parts.
    pub parts: u32,
    /// Sum of the parts' sizes.
    pub bytes: u64,
}

/// One request as received; see [`DirectoryEndpoint::requests`].
///
/// Fields are filled from the request as far as it could be read, rejected requests included;
/// strings are empty where absent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DirRequest {
    /// HTTP method, e.g. `GET`.
    pub method: String,
    /// The `Host` header as sent (the target's authority if there was none).
    pub host: String,
    /// The request target as sent: path and query, or the absolute URI.
    pub target: String,
    /// Whether the bucket came from the path (not from the host).
    pub path_style: bool,
    /// The bucket addressed (from the host or the path).
    pub bucket: String,
    /// `CreateSession`, `ListMultipartUploads`, `ListParts`, `AbortMultipartUpload`,
    /// `GetBucketLifecycleConfiguration` or `Unknown`.
    pub operation: &'static str,
    /// Access key of the `Authorization` header's credential scope.
    pub access_key: String,
    /// Region of the credential scope.
    pub region: String,
    /// Service of the credential scope (`s3express`).
    pub service: String,
    /// The `x-amz-s3session-token` header.
    pub session_token: Option<String>,
    /// The `x-amz-if-match-initiated-time` header as sent.
    pub if_match_initiated_time: Option<String>,
    /// Status answered (0 while the request is in flight).
    pub status: u16,
}
