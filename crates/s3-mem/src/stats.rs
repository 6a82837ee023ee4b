//! The counters the three endpoints share: one [`Stats`], one meaning a word. A counter an
//! endpoint does not keep stays 0 there (each field says which endpoints keep it).

use std::collections::{BTreeMap, HashMap};

/// Counters for assertions; see [`Handle::stats`](crate::handle::Handle::stats).
///
/// Operation counters count every call that passed authentication and reached its operation,
/// whether it succeeded or not.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// HTTP requests received, faulted and rejected ones included.
    pub requests: u64,
    /// Requests refused by authentication: signatures (missing, malformed, expired, wrong,
    /// unknown keys) and, on the directory-bucket endpoint, sessions (none, unknown, forged
    /// token, another bucket's, expired). Directory and Glacier endpoints (the S3 endpoint's
    /// are refused by s3s, uncounted).
    pub rejected: u64,
    /// Of `rejected`, those refused `ExpiredToken` (a session past its expiration).
    /// Directory-bucket endpoint.
    pub expired_session_rejections: u64,
    /// `CreateSession` calls answered with credentials. Directory-bucket endpoint.
    pub sessions_created: u64,
    /// `CreateMultipartUpload` calls. S3 endpoint.
    pub create_multipart_upload: u64,
    /// `UploadPart` calls. S3 endpoint.
    pub upload_part: u64,
    /// `ListMultipartUploads` calls (one per page).
    pub list_multipart_uploads: u64,
    /// `ListParts` calls (one per page).
    pub list_parts: u64,
    /// `AbortMultipartUpload` calls, refused ones included (no such upload, 412).
    pub abort_multipart_upload: u64,
    /// Aborts that really removed an upload.
    pub aborts_removed: u64,
    /// Aborts that answered 204 but kept the upload (the abort faults of
    /// [`crate::faults`]).
    pub aborts_swallowed: u64,
    /// Aborts refused `412 PreconditionFailed` (`If-Match-Initiated-Time` not the upload's).
    /// Directory-bucket endpoint.
    pub aborts_precondition_failed: u64,
    /// `AbortMultipartUpload` calls by object key. S3 endpoint.
    pub aborts_by_key: HashMap<String, u64>,
    /// `AbortMultipartUpload` calls by upload id. S3 and Glacier endpoints.
    pub aborts_by_upload_id: HashMap<String, u64>,
    /// Requests answered `503 SlowDown` by the fault plan. S3 endpoint.
    pub slowdown_faults: u64,
    /// Requests whose connection was reset by the fault plan. S3 endpoint.
    pub reset_faults: u64,
    /// Requests answered `403 AccessDenied` because of
    /// [`Faults::fail_buckets`](crate::Faults::fail_buckets). S3 endpoint.
    pub access_denied_faults: u64,
    /// Requests answered `403 RequestTimeTooSkewed` because of
    /// [`Faults::clock_ahead`](crate::Faults::clock_ahead). S3 endpoint.
    pub skewed_faults: u64,
    /// Requests answered `503 SlowDown` by [`Faults::throttle`](crate::Faults::throttle).
    /// S3 endpoint.
    pub throttled: u64,
    /// Requests let through by [`Faults::throttle`](crate::Faults::throttle) while it was
    /// set. S3 endpoint.
    pub throttle_admitted: u64,
    /// `ListBuckets` calls (one per page). S3 endpoint.
    pub list_buckets: u64,
    /// `GetBucketTagging` calls (denied ones and those answered `NoSuchTagSet` included). S3
    /// endpoint.
    pub get_bucket_tagging: u64,
    /// Authenticated requests that reached an operation, by the access key that signed them.
    /// S3 endpoint.
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
