//! An embedded in-memory endpoint for S3 directory buckets (S3 Express One Zone): the
//! session authentication and multipart-upload operations the janitor sweeps directory buckets
//! with, over real HTTP, with real `SigV4` verification.
//!
//! It serves, shaped as `aws-sdk-s3` 1.157.0 sends and parses them (XML in the S3 namespace,
//! errors as `<Error><Code/><Message/><RequestId/></Error>`):
//!
//! - `CreateSession`: `GET /?session` on a bucket, signed with a base key; answers fresh random
//!   session credentials bound to that bucket, expiring after the session TTL
//!   ([`DirFaults::session_ttl`], 300 s by default). An unknown bucket answers `NoSuchBucket`;
//! - `ListMultipartUploads`: `GET /?uploads`, with directory-bucket semantics: a non-empty
//!   `prefix` must end in `/` (else `InvalidArgument`), `key-marker` is an opaque token this
//!   endpoint gave (never a key), `upload-id-marker` is refused, entries come in a fixed order
//!   that is neither by key, id nor initiation (by a hash of the upload id), `max-uploads`
//!   1..=1000 (default 1000, further capped by [`DirFaults::page_size`]), `NextKeyMarker` only
//!   when truncated, no upload-id markers, storage class `EXPRESS_ONEZONE`, `encoding-type=url`
//!   served;
//! - `ListParts`: `GET /{key}?uploadId=ID` (`part-number-marker`, `max-parts` 1..=1000), parts
//!   by number;
//! - `AbortMultipartUpload`: `DELETE /{key}?uploadId=ID`, answering 204; with
//!   `If-Match-Initiated-Time` (header `x-amz-if-match-initiated-time`, an HTTP date, as the SDK
//!   sends `if_match_initiated_time`) that is not the upload's initiation time (to the second),
//!   `412 PreconditionFailed` and nothing removed;
//! - `GetBucketLifecycleConfiguration`: `GET /?lifecycle`, `NoSuchLifecycleConfiguration`
//!   unless set with [`DirectoryEndpoint::set_lifecycle_abort_days`];
//! - anything else answers `501 NotImplemented` (once authenticated).
//!
//! Addressing: the bucket is the first label of the `Host` header when that label ends in
//! `--x-s3` (virtual-hosted style, `logs--usw2-az1--x-s3.s3express.test:PORT`), else the first
//! path segment (path style, as the SDK addresses an IP endpoint). Requests in absolute form
//! (`GET http://bucket.host:PORT/?uploads`, as sent to an HTTP proxy) are served like
//! origin-form ones, so a test can make the endpoint its client's proxy and need no DNS. Keys
//! in paths are percent-decoded (`+` is not a space).
//!
//! Authentication is `SigV4` for service `s3express`, any region (the verifier of `sigv4.rs`,
//! shared with the Glacier endpoint): the path exactly as sent (no normalisation, no second
//! encoding), `x-amz-content-sha256` required (`UNSIGNED-PAYLOAD` or the body's SHA-256).
//! `CreateSession` must be signed with a base key ([`DirectoryEndpoint::start`],
//! [`DirectoryEndpoint::add_key`]); the data-plane operations with a session's key, carrying its
//! token in a signed `x-amz-s3session-token` header, for the session's own bucket, before it
//! expires (else `403 AccessDenied`, or `400 ExpiredToken` for an expired session);
//! `GetBucketLifecycleConfiguration` with either. Keys are never checked against a bucket
//! owner: any base key may open a session on any bucket.
//!
//! Simplified: no objects (uploads are seeded in memory, [`DirectoryEndpoint::seed_upload`]),
//! no `CreateMultipartUpload`/`UploadPart`, no `delimiter` (refused), no `Owner`/`Initiator`,
//! no `ListDirectoryBuckets`; `x-amz-create-session-mode` is accepted and ignored; sessions are
//! never revoked.
//!
//! State lives in ordered maps behind one mutex; a bucket's uploads are keyed by
//! `(hash of upload id, upload id)`, so a listing page is a range query after its marker. The
//! requests received are logged, in arrival order, for assertions
//!
//! Its parts: `endpoint` (the handle), `model` (the fault plan, counters, snapshots and
//! request records it hands out), `state` (buckets, uploads, sessions), `route` (addressing
//! and operations), `auth` (sessions over `SigV4`), `ops` (the operations), `errors` (S3's
//! error documents and XML), `http` (one request from arrival to answer); `tests` beside them.

mod auth;
mod endpoint;
mod errors;
mod http;
mod model;
mod ops;
mod route;
mod state;
#[cfg(test)]
mod tests;

use std::time::Duration;

use chrono::TimeDelta;

use crate::sigv4::Rules;

pub use endpoint::DirectoryEndpoint;
pub use model::{DirFaults, DirRequest, DirStats, DirUploadSnapshot};

/// The XML namespace of every S3 document.
pub const S3_NAMESPACE: &str = "http://s3.amazonaws.com/doc/2006-03-01/";
/// How long a session lasts unless [`DirFaults::session_ttl`] says otherwise.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(300);
/// What every directory bucket's name ends with.
pub const BUCKET_SUFFIX: &str = "--x-s3";
/// The header carrying a session's token on data-plane requests.
pub const SESSION_TOKEN_HEADER: &str = "x-amz-s3session-token";
/// The header of an abort's `If-Match-Initiated-Time` condition (`if_match_initiated_time` in
/// aws-sdk-s3).
pub const IF_MATCH_INITIATED_TIME: &str = "x-amz-if-match-initiated-time";

/// Page size of a listing without `max-uploads` / `max-parts`, and the largest accepted.
const MAX_PAGE: usize = 1000;
/// Largest request body read (the operations served take none).
const MAX_BODY: usize = 1 << 20;
/// Storage class of every upload.
const STORAGE_CLASS: &str = "EXPRESS_ONEZONE";
/// Size of a part that lands after an abort when the upload has no part to copy the size of.
const LATE_PART_SIZE: u64 = 5 * 1024 * 1024;
/// Length of an upload id.
const UPLOAD_ID_LEN: usize = 64;
/// What upload ids are made of (URL-safe).
const ID_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/// What session secrets and tokens are made of.
const TOKEN_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
/// How long an expired session is remembered (to answer `ExpiredToken` rather than
/// `AccessDenied`).
const EXPIRED_SESSION_MEMORY: TimeDelta = TimeDelta::hours(1);

/// How this module verifies `SigV4`: service `s3express`, the path as sent, S3's payload rules.
const SIGV4_RULES: Rules = Rules {
    service: "s3express",
    double_encode_path: false,
    s3_payload: true,
};
