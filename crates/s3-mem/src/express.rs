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
//! ([`DirectoryEndpoint::requests`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, TimeDelta, Utc};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue};
use hyper::http::request::Parts;
use hyper::{Method, Request, Response, StatusCode, Uri};
use md5::{Digest as _, Md5};
use parking_lot::Mutex;

use crate::serve::{HttpResponse, Rng, Server, clamp_time, iso8601};
use crate::sigv4::{
    self, Failure, Rules, aws_encode, form_decode, header_str, hex, percent_decode, sha256, unhex,
};

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

/// Fault plan applied to requests; change it at runtime with [`DirectoryEndpoint::set_faults`].
///
/// The default plan injects nothing (sessions last [`DEFAULT_SESSION_TTL`]).
#[derive(Clone, Debug)]
pub struct DirFaults {
    /// Straggling uploads, by exact key: for an upload with that key, the first `N`
    /// `AbortMultipartUpload` calls answer 204 but leave the upload listed with one new part
    /// (a part that landed after the abort: a new number, a new `ETag`); abort number `N + 1`
    /// really removes it. The count is kept per upload.
    pub stragglers: HashMap<String, u32>,
    /// Keys whose uploads never go away: every abort answers 204 and a new part lands.
    pub never_empty: HashSet<String>,
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
            stragglers: HashMap::new(),
            never_empty: HashSet::new(),
            replace_on_list_parts: HashSet::new(),
            page_size: None,
            session_ttl: DEFAULT_SESSION_TTL,
            latency: Duration::ZERO,
        }
    }
}

/// Counters for assertions; see [`DirectoryEndpoint::stats`].
///
/// Operation counters count every call that passed authentication and reached its operation,
/// whether it succeeded or not.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DirStats {
    /// HTTP requests received, rejected ones included.
    pub requests: u64,
    /// Requests refused by authentication: signatures (missing, malformed, expired, wrong,
    /// unknown keys) and sessions (none, unknown, forged token, another bucket's, expired).
    pub rejected: u64,
    /// Of `rejected`, those refused `ExpiredToken` (a session past its expiration).
    pub expired_session_rejections: u64,
    /// `CreateSession` calls answered with credentials.
    pub sessions_created: u64,
    /// `ListMultipartUploads` calls (one per page).
    pub list_multipart_uploads: u64,
    /// `ListParts` calls (one per page).
    pub list_parts: u64,
    /// `AbortMultipartUpload` calls (including ones answered `NoSuchUpload` or 412).
    pub abort_multipart_upload: u64,
    /// Aborts that really removed an upload.
    pub aborts_removed: u64,
    /// Aborts that answered 204 but kept the upload (stragglers, never-empty keys).
    pub aborts_swallowed: u64,
    /// Aborts refused `412 PreconditionFailed` (`If-Match-Initiated-Time` not the upload's).
    pub aborts_precondition_failed: u64,
}

/// One multipart upload of a directory bucket as currently stored; see
/// [`DirectoryEndpoint::uploads`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirUploadSnapshot {
    pub key: String,
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
    pub method: String,
    /// The `Host` header as sent (the target's authority if there was none).
    pub host: String,
    /// The request target as sent: path and query, or the absolute URI.
    pub target: String,
    /// Whether the bucket came from the path (not from the host).
    pub path_style: bool,
    pub bucket: String,
    /// `CreateSession`, `ListMultipartUploads`, `ListParts`, `AbortMultipartUpload`,
    /// `GetBucketLifecycleConfiguration` or `Unknown`.
    pub operation: &'static str,
    /// From the `Authorization` header's credential scope.
    pub access_key: String,
    pub region: String,
    pub service: String,
    /// The `x-amz-s3session-token` header.
    pub session_token: Option<String>,
    /// The `x-amz-if-match-initiated-time` header as sent.
    pub if_match_initiated_time: Option<String>,
    /// Status answered (0 while the request is in flight).
    pub status: u16,
}

/// Handle of a running in-memory directory-bucket endpoint.
///
/// Dropping the handle stops the endpoint in the background; [`DirectoryEndpoint::shutdown`]
/// stops it and waits. All control methods take `&self`, so the handle can be shared in an
/// `Arc`.
pub struct DirectoryEndpoint {
    server: Server,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for DirectoryEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectoryEndpoint")
            .field("addr", &self.server.addr())
            .finish_non_exhaustive()
    }
}

impl DirectoryEndpoint {
    /// Starts an endpoint on `127.0.0.1` with an ephemeral port, accepting `CreateSession`
    /// signed with this base access key / secret key pair (more keys:
    /// [`DirectoryEndpoint::add_key`]).
    ///
    /// Must be called inside a tokio runtime; the server runs on spawned tasks.
    ///
    /// # Errors
    /// Fails if the listener cannot be bound.
    pub async fn start(access_key: &str, secret_key: &str) -> io::Result<DirectoryEndpoint> {
        Self::start_on(
            SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            access_key,
            secret_key,
        )
        .await
    }

    /// Starts an endpoint listening on `addr` (port 0 picks a free port).
    ///
    /// # Errors
    /// Fails if the listener cannot be bound.
    pub async fn start_on(
        addr: SocketAddr,
        access_key: &str,
        secret_key: &str,
    ) -> io::Result<DirectoryEndpoint> {
        let shared = Arc::new(Shared::new());
        shared
            .keys
            .lock()
            .insert(access_key.to_owned(), secret_key.to_owned());
        let handler_shared = Arc::clone(&shared);
        let server = Server::start(addr, "directory endpoint", move |req| {
            handle(Arc::clone(&handler_shared), req)
        })
        .await?;
        Ok(DirectoryEndpoint { server, shared })
    }

    /// Address the endpoint listens on.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Base URL for clients (`endpoint_url`), e.g. `http://127.0.0.1:40123`: with an IP the SDK
    /// addresses directory buckets in path style.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// Accepts requests signed with this base key pair too, from now on; replaces a known
    /// access key's secret.
    pub fn add_key(&self, access_key: &str, secret_key: &str) {
        self.shared
            .keys
            .lock()
            .insert(access_key.to_owned(), secret_key.to_owned());
    }

    /// Creates an empty directory bucket directly in memory; does nothing if it exists.
    ///
    /// # Panics
    /// If `name` does not end in `--x-s3`.
    pub fn create_bucket(&self, name: &str) {
        assert_directory_bucket(name);
        self.shared
            .state
            .lock()
            .buckets
            .entry(name.to_owned())
            .or_default();
    }

    /// Names of the buckets, in order.
    #[must_use]
    pub fn buckets(&self) -> Vec<String> {
        self.shared.state.lock().buckets.keys().cloned().collect()
    }

    /// Inserts a multipart upload directly in memory (no HTTP), creating the bucket if
    /// needed, and returns its upload id (64 random URL-safe characters).
    ///
    /// `parts` are `(part number, size)`; each part's `LastModified` is `initiated` and its
    /// `ETag` a deterministic stand-in (no bytes exist).
    ///
    /// # Panics
    /// If `bucket` does not end in `--x-s3`.
    pub fn seed_upload(
        &self,
        bucket: &str,
        key: &str,
        initiated: DateTime<Utc>,
        parts: &[(u32, u64)],
    ) -> String {
        assert_directory_bucket(bucket);
        let initiated = clamp_time(initiated);
        let mut st = self.shared.state.lock();
        let rec = st.buckets.entry(bucket.to_owned()).or_default();
        let upload_id = loop {
            let id = self.shared.rng.string(UPLOAD_ID_LEN, ID_ALPHABET);
            if !rec.uploads.contains_key(&position(&id)) {
                break id;
            }
        };
        let parts = parts
            .iter()
            .map(|&(number, size)| {
                (
                    number,
                    PartRec {
                        size,
                        etag: etag(&upload_id, number),
                        last_modified: initiated,
                    },
                )
            })
            .collect();
        rec.uploads.insert(
            position(&upload_id),
            UploadRec {
                key: key.to_owned(),
                initiated,
                parts,
                swallowed_aborts: 0,
                replaced_on_list: false,
            },
        );
        upload_id
    }

    /// Uploads of a bucket in listing order; empty if the bucket does not exist.
    #[must_use]
    pub fn uploads(&self, bucket: &str) -> Vec<DirUploadSnapshot> {
        let st = self.shared.state.lock();
        let Some(rec) = st.buckets.get(bucket) else {
            return Vec::new();
        };
        rec.uploads
            .iter()
            .map(|((_, upload_id), up)| DirUploadSnapshot {
                key: up.key.clone(),
                upload_id: upload_id.clone(),
                initiated: up.initiated,
                parts: u32::try_from(up.parts.len()).unwrap_or(u32::MAX),
                bytes: up.parts.values().map(|p| p.size).sum(),
            })
            .collect()
    }

    /// Number of uploads in a bucket (0 if it does not exist).
    #[must_use]
    pub fn upload_count(&self, bucket: &str) -> usize {
        self.shared
            .state
            .lock()
            .buckets
            .get(bucket)
            .map_or(0, |b| b.uploads.len())
    }

    /// Gives the upload under `upload_id` this initiation time, as if it had been replaced by
    /// a newer upload under the same id (its parts are kept). Returns whether it exists.
    pub fn replace_upload(&self, bucket: &str, upload_id: &str, initiated: DateTime<Utc>) -> bool {
        let mut st = self.shared.state.lock();
        st.buckets
            .get_mut(bucket)
            .and_then(|b| b.uploads.get_mut(&position(upload_id)))
            .map(|up| replace_initiated(up, initiated))
            .is_some()
    }

    /// Sets the bucket's lifecycle configuration (creating the bucket if needed): `Some(days)`
    /// is one enabled rule, `abort-mpu`, aborting incomplete uploads `days` after initiation;
    /// `None` is no configuration at all.
    ///
    /// # Panics
    /// If `bucket` does not end in `--x-s3`.
    pub fn set_lifecycle_abort_days(&self, bucket: &str, days: Option<u32>) {
        assert_directory_bucket(bucket);
        self.shared
            .state
            .lock()
            .buckets
            .entry(bucket.to_owned())
            .or_default()
            .lifecycle_abort_days = days;
    }

    /// Replaces the fault plan; `DirFaults::default()` turns every fault off.
    pub fn set_faults(&self, faults: DirFaults) {
        *self.shared.faults.lock() = faults;
    }

    /// Edits the fault plan in place.
    pub fn update_faults(&self, edit: impl FnOnce(&mut DirFaults)) {
        edit(&mut self.shared.faults.lock());
    }

    /// Current fault plan.
    #[must_use]
    pub fn faults(&self) -> DirFaults {
        self.shared.faults.lock().clone()
    }

    /// Every request received since the start or [`DirectoryEndpoint::reset_requests`], in
    /// arrival order, authenticated or not.
    #[must_use]
    pub fn requests(&self) -> Vec<DirRequest> {
        self.shared.state.lock().log.clone()
    }

    /// Snapshot of the counters.
    #[must_use]
    pub fn stats(&self) -> DirStats {
        self.shared.state.lock().stats.clone()
    }

    /// Forgets the requests logged and sets every counter back to zero (buckets, uploads,
    /// sessions and faults are untouched).
    pub fn reset_requests(&self) {
        let mut st = self.shared.state.lock();
        st.log_start += st.log.len();
        st.log.clear();
        st.stats = DirStats::default();
    }

    /// Stops accepting connections, lets in-flight requests finish (up to 2 s), closes every
    /// connection and ends the accept loop.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

fn assert_directory_bucket(name: &str) {
    assert!(
        name.len() > BUCKET_SUFFIX.len() && name.ends_with(BUCKET_SUFFIX),
        "not a directory bucket name (it must end in {BUCKET_SUFFIX}): {name:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Shared state

struct PartRec {
    size: u64,
    etag: String,
    last_modified: DateTime<Utc>,
}

struct UploadRec {
    key: String,
    initiated: DateTime<Utc>,
    parts: BTreeMap<u32, PartRec>,
    /// Aborts answered 204 without removing this upload.
    swallowed_aborts: u32,
    /// Whether the `replace_on_list_parts` fault already replaced it.
    replaced_on_list: bool,
}

/// Where an upload sits in its bucket's listing order: (hash of the id, id).
type Position = (u64, String);

fn position(upload_id: &str) -> Position {
    let digest = sha256(upload_id.as_bytes());
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(head), upload_id.to_owned())
}

/// The deterministic `ETag` (quoted) of part `number` of an upload.
fn etag(upload_id: &str, number: u32) -> String {
    let digest = Md5::digest(format!("{upload_id}/{number}").as_bytes());
    format!("\"{}\"", hex(&digest))
}

/// What [`DirectoryEndpoint::replace_upload`] and the `replace_on_list_parts` fault do.
fn replace_initiated(up: &mut UploadRec, initiated: DateTime<Utc>) {
    up.initiated = clamp_time(initiated);
}

#[derive(Default)]
struct BucketRec {
    /// Keyed by [`Position`]: listing order, and range queries for markers.
    uploads: BTreeMap<Position, UploadRec>,
    lifecycle_abort_days: Option<u32>,
}

impl BucketRec {
    /// The upload under `upload_id`, if it has this key.
    fn upload_mut(&mut self, key: &str, upload_id: &str) -> Option<&mut UploadRec> {
        self.uploads
            .get_mut(&position(upload_id))
            .filter(|up| up.key == key)
    }
}

struct SessionRec {
    bucket: String,
    token: String,
    secret: String,
    expires: DateTime<Utc>,
}

#[derive(Default)]
struct State {
    buckets: BTreeMap<String, BucketRec>,
    /// Sessions by their access key.
    sessions: HashMap<String, SessionRec>,
    log: Vec<DirRequest>,
    /// Requests forgotten by `reset_requests` (the sequence number of `log[0]`).
    log_start: usize,
    stats: DirStats,
}

struct Shared {
    state: Mutex<State>,
    /// Base keys: secrets by access key.
    keys: Mutex<HashMap<String, String>>,
    faults: Mutex<DirFaults>,
    rng: Rng,
}

impl Shared {
    fn new() -> Self {
        Self {
            state: Mutex::new(State::default()),
            keys: Mutex::new(HashMap::new()),
            faults: Mutex::new(DirFaults::default()),
            rng: Rng::new(),
        }
    }

    /// Counts an authentication refusal.
    fn reject(&self, expired: bool) {
        let mut st = self.state.lock();
        st.stats.rejected += 1;
        if expired {
            st.stats.expired_session_rejections += 1;
        }
    }
}

// ---------------------------------------------------------------------------------------
// Errors, as S3 sends them

#[derive(Debug)]
struct S3Error {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl S3Error {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    fn access_denied(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "AccessDenied", message)
    }

    fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidArgument", message)
    }

    fn no_such_bucket() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NoSuchBucket",
            "The specified bucket does not exist",
        )
    }

    fn no_such_upload() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NoSuchUpload",
            "The specified multipart upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
        )
    }

    fn into_response(self, request_id: &str) -> HttpResponse {
        let mut body = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>");
        element(&mut body, "Code", self.code);
        element(&mut body, "Message", &self.message);
        element(&mut body, "RequestId", request_id);
        body.push_str("</Error>");
        xml_response(self.status, body)
    }
}

/// A signature failure as S3 answers it; `session` when the request carried a session token.
fn auth_error(failure: Failure, session: bool) -> S3Error {
    const MALFORMED: &str = "AuthorizationHeaderMalformed";
    match failure {
        Failure::Missing => S3Error::access_denied("Access Denied"),
        Failure::Malformed => S3Error::new(
            StatusCode::BAD_REQUEST,
            MALFORMED,
            "The authorization header is malformed; it must be AWS4-HMAC-SHA256 with Credential, SignedHeaders and Signature.",
        ),
        Failure::MissingDate | Failure::BadDate(_) => {
            S3Error::access_denied("AWS authentication requires a valid Date or x-amz-date header")
        }
        Failure::WrongService(service) => S3Error::new(
            StatusCode::BAD_REQUEST,
            MALFORMED,
            format!(
                "The authorization header is malformed; incorrect service '{service}'. This endpoint belongs to '{}'.",
                SIGV4_RULES.service
            ),
        ),
        Failure::ScopeDate { .. } => S3Error::new(
            StatusCode::BAD_REQUEST,
            MALFORMED,
            "The authorization header is malformed; Invalid credential date. Date is not the same as X-Amz-Date.",
        ),
        Failure::Expired { .. } => S3Error::new(
            StatusCode::FORBIDDEN,
            "RequestTimeTooSkewed",
            "The difference between the request time and the current time is too large.",
        ),
        Failure::UnknownKey(_) if session => {
            S3Error::access_denied("The session of this request does not exist")
        }
        Failure::UnknownKey(_) => S3Error::new(
            StatusCode::FORBIDDEN,
            "InvalidAccessKeyId",
            "The AWS Access Key Id you provided does not exist in our records.",
        ),
        Failure::HostOrDateUnsigned => S3Error::access_denied(
            "'Host' and 'X-Amz-Date' must be signed headers in the AWS Authorization.",
        ),
        Failure::MissingContentSha256 => S3Error::new(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "Missing required header for this request: x-amz-content-sha256",
        ),
        Failure::ContentSha256Mismatch => S3Error::new(
            StatusCode::BAD_REQUEST,
            "XAmzContentSHA256Mismatch",
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        ),
        Failure::SignatureMismatch => S3Error::new(
            StatusCode::FORBIDDEN,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
        ),
    }
}

fn xml_response(status: StatusCode, body: String) -> HttpResponse {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    resp
}

/// Appends `<name>text</name>`, the text escaped.
fn element(out: &mut String, name: &str, text: &str) {
    let _ = write!(out, "<{name}>");
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    let _ = write!(out, "</{name}>");
}

/// The opening of a document: the XML declaration and `<root xmlns=...>`.
fn document(root: &str) -> String {
    format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{root} xmlns=\"{S3_NAMESPACE}\">")
}

// ---------------------------------------------------------------------------------------
// Addressing and routing

/// Where a request goes, as read from its target and `Host`.
struct Target {
    /// The `Host` header as sent, else the target's authority.
    host: String,
    /// The request target as sent.
    target: String,
    path: String,
    query: Option<String>,
    path_style: bool,
    /// Empty when none is addressed.
    bucket: String,
    /// Decoded; `None` when the request addresses the bucket itself.
    key: Option<String>,
}

impl Target {
    fn read(uri: &Uri, headers: &HeaderMap) -> Target {
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
fn virtual_bucket(host: &str) -> Option<&str> {
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

fn parse_query(query: Option<&str>) -> HashMap<String, String> {
    query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (form_decode(k), form_decode(v))
        })
        .collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Operation {
    CreateSession,
    ListMultipartUploads,
    ListParts,
    AbortMultipartUpload,
    GetBucketLifecycleConfiguration,
    Unknown,
}

impl Operation {
    fn route(method: &Method, target: &Target, query: &HashMap<String, String>) -> Operation {
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

    fn name(self) -> &'static str {
        match self {
            Operation::CreateSession => "CreateSession",
            Operation::ListMultipartUploads => "ListMultipartUploads",
            Operation::ListParts => "ListParts",
            Operation::AbortMultipartUpload => "AbortMultipartUpload",
            Operation::GetBucketLifecycleConfiguration => "GetBucketLifecycleConfiguration",
            Operation::Unknown => "Unknown",
        }
    }

    fn data_plane(self) -> bool {
        matches!(
            self,
            Operation::ListMultipartUploads
                | Operation::ListParts
                | Operation::AbortMultipartUpload
        )
    }
}

// ---------------------------------------------------------------------------------------
// Authentication

/// What signed a request: a base key, or a session's key.
enum Credential {
    Base,
    Session {
        bucket: String,
        token: String,
        expires: DateTime<Utc>,
    },
}

/// Verifies the signature, then what the operation asks of the credential.
fn authenticate(
    shared: &Shared,
    parts: &Parts,
    target: &Target,
    op: Operation,
    body: &[u8],
) -> Result<(), S3Error> {
    let token = header_str(&parts.headers, SESSION_TOKEN_HEADER);
    let req = sigv4::Signed {
        method: &parts.method,
        path: &target.path,
        query: target.query.as_deref(),
        headers: &parts.headers,
        body,
    };
    let lookup = |access_key: &str| {
        if let Some(secret) = shared.keys.lock().get(access_key) {
            return Some((secret.clone(), Credential::Base));
        }
        let st = shared.state.lock();
        st.sessions.get(access_key).map(|s| {
            (
                s.secret.clone(),
                Credential::Session {
                    bucket: s.bucket.clone(),
                    token: s.token.clone(),
                    expires: s.expires,
                },
            )
        })
    };
    let (signer, credential) = sigv4::verify(&SIGV4_RULES, &req, lookup).map_err(|f| {
        shared.reject(false);
        auth_error(f, token.is_some())
    })?;
    let refused = |message: &str| {
        shared.reject(false);
        S3Error::access_denied(message)
    };
    match credential {
        Credential::Base if op == Operation::CreateSession => Ok(()),
        Credential::Base if op.data_plane() => Err(refused(
            "Directory bucket data-plane requests must be signed with session credentials (CreateSession) and carry x-amz-s3session-token",
        )),
        Credential::Base => Ok(()),
        Credential::Session { .. } if op == Operation::CreateSession => Err(refused(
            "CreateSession must be signed with the bucket owner's credentials, not a session's",
        )),
        Credential::Session {
            bucket,
            token: expected,
            expires,
        } => {
            let Some(token) = token else {
                return Err(refused(
                    "Session credentials require the x-amz-s3session-token header",
                ));
            };
            if !signer.signed(SESSION_TOKEN_HEADER) {
                return Err(refused("x-amz-s3session-token must be a signed header"));
            }
            if token != expected {
                return Err(refused("The provided session token is invalid"));
            }
            if Utc::now() >= expires {
                shared.reject(true);
                return Err(S3Error::new(
                    StatusCode::BAD_REQUEST,
                    "ExpiredToken",
                    "The provided token has expired.",
                ));
            }
            if bucket != target.bucket {
                return Err(refused(
                    "The session of this request was created for another bucket",
                ));
            }
            Ok(())
        }
    }
}

// ---------------------------------------------------------------------------------------
// Operations

/// Reads, authenticates, routes and serves one request.
async fn serve(
    shared: &Shared,
    parts: &Parts,
    body: Incoming,
    target: &Target,
    op: Operation,
    query: &HashMap<String, String>,
) -> Result<HttpResponse, S3Error> {
    let body = Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map_err(|e| {
            S3Error::new(
                StatusCode::BAD_REQUEST,
                "IncompleteBody",
                format!("Cannot read the request body: {e}"),
            )
        })?
        .to_bytes();
    authenticate(shared, parts, target, op, &body)?;
    let bucket = target.bucket.as_str();
    let key = target.key.as_deref().unwrap_or_default();
    let upload_id = query.get("uploadId").map_or("", String::as_str);
    match op {
        Operation::CreateSession => create_session(shared, bucket),
        Operation::ListMultipartUploads => list_multipart_uploads(shared, bucket, query),
        Operation::ListParts => list_parts(shared, bucket, key, upload_id, query),
        Operation::AbortMultipartUpload => abort_multipart_upload(
            shared,
            bucket,
            key,
            upload_id,
            header_str(&parts.headers, IF_MATCH_INITIATED_TIME),
        ),
        Operation::GetBucketLifecycleConfiguration => lifecycle(shared, bucket),
        Operation::Unknown => Err(S3Error::new(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            format!(
                "This endpoint does not serve {} {}",
                parts.method, target.target
            ),
        )),
    }
}

fn create_session(shared: &Shared, bucket: &str) -> Result<HttpResponse, S3Error> {
    let ttl = shared.faults.lock().session_ttl;
    let now = Utc::now();
    let ttl = TimeDelta::from_std(ttl).unwrap_or(TimeDelta::MAX);
    // To the second, as `Expiration` renders it: the client and this endpoint agree.
    let expires = now
        .checked_add_signed(ttl)
        .map_or_else(|| clamp_time(DateTime::<Utc>::MAX_UTC), clamp_time);
    let expires = DateTime::from_timestamp(expires.timestamp(), 0).unwrap_or(expires);
    let access_key = format!("ASIA{:016X}", shared.rng.next_u64());
    let secret = shared.rng.string(40, TOKEN_ALPHABET);
    let token = shared.rng.string(256, TOKEN_ALPHABET);

    let mut st = shared.state.lock();
    if !st.buckets.contains_key(bucket) {
        return Err(S3Error::no_such_bucket());
    }
    st.sessions
        .retain(|_, s| s.expires + EXPIRED_SESSION_MEMORY > now);
    st.sessions.insert(
        access_key.clone(),
        SessionRec {
            bucket: bucket.to_owned(),
            token: token.clone(),
            secret: secret.clone(),
            expires,
        },
    );
    st.stats.sessions_created += 1;
    drop(st);

    let mut body = document("CreateSessionResult");
    body.push_str("<Credentials>");
    element(&mut body, "SessionToken", &token);
    element(&mut body, "SecretAccessKey", &secret);
    element(&mut body, "AccessKeyId", &access_key);
    element(
        &mut body,
        "Expiration",
        &expires.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    );
    body.push_str("</Credentials></CreateSessionResult>");
    Ok(xml_response(StatusCode::OK, body))
}

/// A `max-uploads` / `max-parts`: 1..=1000, 1000 when absent.
fn parse_max(query: &HashMap<String, String>, name: &str) -> Result<usize, S3Error> {
    match query.get(name) {
        None => Ok(MAX_PAGE),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| {
                S3Error::invalid_argument(format!(
                    "Argument {name} must be an integer between 1 and {MAX_PAGE}: {v}"
                ))
            }),
    }
}

/// Key marker of a listing continuing after the upload at `pos`: opaque, never a key.
fn key_marker(pos: &Position) -> String {
    hex(format!("x1:{:016x}:{}", pos.0, pos.1).as_bytes())
}

fn parse_key_marker(marker: &str) -> Option<Position> {
    let text = String::from_utf8(unhex(marker)?).ok()?;
    let (hash, id) = text.strip_prefix("x1:")?.split_once(':')?;
    let hash = u64::from_str_radix(hash, 16).ok()?;
    // Only positions this endpoint could have given.
    let pos = position(id);
    (pos.0 == hash).then_some(pos)
}

fn list_multipart_uploads(
    shared: &Shared,
    bucket: &str,
    query: &HashMap<String, String>,
) -> Result<HttpResponse, S3Error> {
    shared.state.lock().stats.list_multipart_uploads += 1;
    if query.contains_key("upload-id-marker") {
        return Err(S3Error::invalid_argument(
            "Directory buckets do not support upload-id-marker; continue a listing with key-marker only",
        ));
    }
    let prefix = query.get("prefix").map_or("", String::as_str);
    if !prefix.is_empty() && !prefix.ends_with('/') {
        return Err(S3Error::invalid_argument(
            "Directory buckets only support prefixes that end in the delimiter '/'. Specify a prefix ending in '/' and try again.",
        ));
    }
    match query.get("delimiter").map(String::as_str) {
        None => {}
        Some("/") => {
            return Err(S3Error::new(
                StatusCode::NOT_IMPLEMENTED,
                "NotImplemented",
                "This endpoint does not serve delimiter",
            ));
        }
        Some(_) => {
            return Err(S3Error::invalid_argument(
                "Directory buckets only support the delimiter '/'",
            ));
        }
    }
    let url_encoded = match query.get("encoding-type").map(String::as_str) {
        None => false,
        Some("url") => true,
        Some(other) => {
            return Err(S3Error::invalid_argument(format!(
                "Invalid Encoding Method specified in Request: {other}"
            )));
        }
    };
    let max = parse_max(query, "max-uploads")?;
    let limit = match shared.faults.lock().page_size {
        Some(size) => max.min(size.max(1)),
        None => max,
    };
    let marker = query.get("key-marker").map_or("", String::as_str);
    let lower =
        if marker.is_empty() {
            Bound::Unbounded
        } else {
            Bound::Excluded(parse_key_marker(marker).ok_or_else(|| {
                S3Error::invalid_argument(format!("Invalid key-marker: {marker}"))
            })?)
        };

    let st = shared.state.lock();
    let rec = st.buckets.get(bucket).ok_or_else(S3Error::no_such_bucket)?;
    let mut page: Vec<_> = rec
        .uploads
        .range((lower, Bound::Unbounded))
        .filter(|(_, up)| up.key.starts_with(prefix))
        .take(limit + 1)
        .collect();
    let next = if page.len() > limit {
        page.truncate(limit);
        page.last().map(|(pos, _)| key_marker(pos))
    } else {
        None
    };
    let encode = |s: &str| {
        if url_encoded {
            aws_encode(s, false)
        } else {
            s.to_owned()
        }
    };
    let mut body = document("ListMultipartUploadsResult");
    element(&mut body, "Bucket", bucket);
    if !marker.is_empty() {
        element(&mut body, "KeyMarker", marker);
    }
    element(&mut body, "Prefix", &encode(prefix));
    if let Some(next) = &next {
        element(&mut body, "NextKeyMarker", next);
    }
    if url_encoded {
        element(&mut body, "EncodingType", "url");
    }
    element(&mut body, "MaxUploads", &max.to_string());
    element(
        &mut body,
        "IsTruncated",
        if next.is_some() { "true" } else { "false" },
    );
    for ((_, upload_id), up) in page {
        body.push_str("<Upload>");
        element(&mut body, "Key", &encode(&up.key));
        element(&mut body, "UploadId", upload_id);
        element(&mut body, "Initiated", &iso8601(up.initiated));
        element(&mut body, "StorageClass", STORAGE_CLASS);
        body.push_str("</Upload>");
    }
    drop(st);
    body.push_str("</ListMultipartUploadsResult>");
    Ok(xml_response(StatusCode::OK, body))
}

fn list_parts(
    shared: &Shared,
    bucket: &str,
    key: &str,
    upload_id: &str,
    query: &HashMap<String, String>,
) -> Result<HttpResponse, S3Error> {
    shared.state.lock().stats.list_parts += 1;
    let max = parse_max(query, "max-parts")?;
    let marker = match query.get("part-number-marker").map(String::as_str) {
        None | Some("") => 0,
        Some(m) => m
            .parse::<u32>()
            .map_err(|_| S3Error::invalid_argument(format!("Invalid part-number-marker: {m}")))?,
    };
    let mut guard = shared.state.lock();
    let rec = guard
        .buckets
        .get_mut(bucket)
        .ok_or_else(S3Error::no_such_bucket)?;
    let up = rec
        .upload_mut(key, upload_id)
        .ok_or_else(S3Error::no_such_upload)?;
    // Lock order: state, then faults (nothing takes them the other way round).
    if !up.replaced_on_list && shared.faults.lock().replace_on_list_parts.contains(key) {
        up.replaced_on_list = true;
        let later = up.initiated + TimeDelta::hours(1);
        replace_initiated(up, later);
    }
    let mut page: Vec<_> = up
        .parts
        .range((Bound::Excluded(marker), Bound::Unbounded))
        .take(max + 1)
        .collect();
    let truncated = page.len() > max;
    page.truncate(max);
    let next = page.last().map_or(marker, |(n, _)| **n);

    let mut body = document("ListPartsResult");
    element(&mut body, "Bucket", bucket);
    element(&mut body, "Key", key);
    element(&mut body, "UploadId", upload_id);
    element(&mut body, "PartNumberMarker", &marker.to_string());
    element(&mut body, "NextPartNumberMarker", &next.to_string());
    element(&mut body, "MaxParts", &max.to_string());
    element(
        &mut body,
        "IsTruncated",
        if truncated { "true" } else { "false" },
    );
    element(&mut body, "StorageClass", STORAGE_CLASS);
    for (number, part) in page {
        body.push_str("<Part>");
        element(&mut body, "PartNumber", &number.to_string());
        element(&mut body, "LastModified", &iso8601(part.last_modified));
        element(&mut body, "ETag", &part.etag);
        element(&mut body, "Size", &part.size.to_string());
        body.push_str("</Part>");
    }
    drop(guard);
    body.push_str("</ListPartsResult>");
    Ok(xml_response(StatusCode::OK, body))
}

fn abort_multipart_upload(
    shared: &Shared,
    bucket: &str,
    key: &str,
    upload_id: &str,
    if_match_initiated_time: Option<&str>,
) -> Result<HttpResponse, S3Error> {
    let expected = if_match_initiated_time
        .map(|raw| {
            DateTime::parse_from_rfc2822(raw)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    S3Error::invalid_argument(format!(
                        "Invalid If-Match-Initiated-Time (an HTTP date): {raw}"
                    ))
                })
        })
        .transpose();
    let mut guard = shared.state.lock();
    let st = &mut *guard;
    st.stats.abort_multipart_upload += 1;
    let expected = expected?;
    let rec = st
        .buckets
        .get_mut(bucket)
        .ok_or_else(S3Error::no_such_bucket)?;
    let up = rec
        .upload_mut(key, upload_id)
        .ok_or_else(S3Error::no_such_upload)?;
    if let Some(expected) = expected
        && expected.timestamp() != up.initiated.timestamp()
    {
        st.stats.aborts_precondition_failed += 1;
        return Err(S3Error::new(
            StatusCode::PRECONDITION_FAILED,
            "PreconditionFailed",
            "At least one of the pre-conditions you specified did not hold: If-Match-Initiated-Time",
        ));
    }
    // Lock order: state, then faults (nothing takes them the other way round).
    let keep = {
        let faults = shared.faults.lock();
        faults.never_empty.contains(key)
            || faults
                .stragglers
                .get(key)
                .is_some_and(|&n| up.swallowed_aborts < n)
    };
    if keep {
        // A part that landed after the abort: the next number, a new ETag.
        up.swallowed_aborts += 1;
        let (number, size) = up
            .parts
            .last_key_value()
            .map_or((1, LATE_PART_SIZE), |(n, p)| (n.saturating_add(1), p.size));
        up.parts.insert(
            number,
            PartRec {
                size,
                etag: etag(upload_id, number),
                last_modified: Utc::now(),
            },
        );
        st.stats.aborts_swallowed += 1;
    } else {
        rec.uploads.remove(&position(upload_id));
        st.stats.aborts_removed += 1;
    }
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::NO_CONTENT;
    Ok(resp)
}

fn lifecycle(shared: &Shared, bucket: &str) -> Result<HttpResponse, S3Error> {
    let days = shared
        .state
        .lock()
        .buckets
        .get(bucket)
        .ok_or_else(S3Error::no_such_bucket)?
        .lifecycle_abort_days;
    let Some(days) = days else {
        return Err(S3Error::new(
            StatusCode::NOT_FOUND,
            "NoSuchLifecycleConfiguration",
            "The lifecycle configuration does not exist",
        ));
    };
    let mut body = document("LifecycleConfiguration");
    body.push_str("<Rule>");
    element(&mut body, "ID", "abort-mpu");
    body.push_str("<Filter><Prefix></Prefix></Filter>");
    element(&mut body, "Status", "Enabled");
    body.push_str("<AbortIncompleteMultipartUpload>");
    element(&mut body, "DaysAfterInitiation", &days.to_string());
    body.push_str("</AbortIncompleteMultipartUpload></Rule></LifecycleConfiguration>");
    Ok(xml_response(StatusCode::OK, body))
}

// ---------------------------------------------------------------------------------------
// HTTP serving

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> HttpResponse {
    let (parts, body) = req.into_parts();
    let target = Target::read(&parts.uri, &parts.headers);
    let query = parse_query(target.query.as_deref());
    let op = Operation::route(&parts.method, &target, &query);
    let auth = header_str(&parts.headers, "authorization").and_then(sigv4::parse_authorization);
    let record = DirRequest {
        method: parts.method.to_string(),
        host: target.host.clone(),
        target: target.target.clone(),
        path_style: target.path_style,
        bucket: target.bucket.clone(),
        operation: op.name(),
        access_key: auth.map(|a| a.access_key.to_owned()).unwrap_or_default(),
        region: auth.map(|a| a.region.to_owned()).unwrap_or_default(),
        service: auth.map(|a| a.service.to_owned()).unwrap_or_default(),
        session_token: header_str(&parts.headers, SESSION_TOKEN_HEADER).map(str::to_owned),
        if_match_initiated_time: header_str(&parts.headers, IF_MATCH_INITIATED_TIME)
            .map(str::to_owned),
        status: 0,
    };
    let seq = {
        let mut st = shared.state.lock();
        st.stats.requests += 1;
        st.log.push(record);
        st.log_start + st.log.len() - 1
    };
    let latency = shared.faults.lock().latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let request_id = shared.rng.request_id();
    let mut resp = serve(&shared, &parts, body, &target, op, &query)
        .await
        .unwrap_or_else(|e| e.into_response(&request_id));
    {
        let mut st = shared.state.lock();
        let status = resp.status().as_u16();
        if let Some(index) = seq.checked_sub(st.log_start)
            && let Some(entry) = st.log.get_mut(index)
        {
            entry.status = status;
        }
    }
    if let Ok(id) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-amz-request-id", id);
    }
    if let Ok(id) = HeaderValue::from_str(&shared.rng.request_id()) {
        resp.headers_mut().insert("x-amz-id-2", id);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::time::{Instant, SystemTime};

    use aws_sdk_s3::Client;
    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
    use aws_sdk_s3::error::ProvideErrorMetadata as _;
    use aws_sdk_s3::primitives::DateTime as SdkDateTime;
    use tokio::net::TcpStream;

    const AK: &str = "AKIAEXPRESSUNITTEST1";
    const SK: &str = "express-unit-test-secret";
    const BUCKET: &str = "logs--usw2-az1--x-s3";
    const MIB: u64 = 1024 * 1024;

    async fn started() -> DirectoryEndpoint {
        DirectoryEndpoint::start(AK, SK).await.expect("endpoint")
    }

    fn config(endpoint_url: String) -> aws_sdk_s3::config::Builder {
        aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(endpoint_url)
            .region(Region::new("us-west-2"))
            .credentials_provider(Credentials::new(AK, SK, None, None, "test"))
    }

    /// The real SDK client, pointed at the endpoint's IP: path style.
    fn client(ep: &DirectoryEndpoint) -> Client {
        Client::from_conf(config(ep.url()).build())
    }

    /// The real SDK client, pointed at `s3express.test` through the endpoint as its HTTP
    /// proxy: virtual-hosted style, no DNS.
    fn virtual_client(ep: &DirectoryEndpoint) -> Client {
        use aws_smithy_http_client::proxy::ProxyConfig;

        let proxy = ProxyConfig::http(ep.url()).expect("a proxy");
        let http = aws_smithy_http_client::Builder::new().build_with_connector_fn(
            move |settings, components| {
                let mut c =
                    aws_smithy_http_client::Connector::builder().proxy_config(proxy.clone());
                c.set_connector_settings(settings.cloned());
                if let Some(components) = components {
                    c.set_sleep_impl(components.sleep_impl());
                }
                c.build_http()
            },
        );
        let url = format!("http://s3express.test:{}", ep.addr().port());
        Client::from_conf(config(url).http_client(http).build())
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("a timestamp")
            .with_timezone(&Utc)
    }

    fn to_chrono(t: &SdkDateTime) -> DateTime<Utc> {
        DateTime::from_timestamp(t.secs(), t.subsec_nanos()).expect("a time")
    }

    fn status_and_code<E: aws_sdk_s3::error::ProvideErrorMetadata>(
        err: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    ) -> (Option<u16>, Option<String>) {
        (
            err.raw_response().map(|r| r.status().as_u16()),
            err.code().map(str::to_owned),
        )
    }

    #[tokio::test]
    async fn the_sdk_creates_a_session_and_lists_2500_uploads_in_three_unsorted_pages() {
        // 2,500 uploads, listed by the SDK from key marker to key marker, path style.
        let ep = started().await;
        let base = at("2026-01-01T00:00:00Z");
        let seeded: Vec<(String, String)> = (0..2500)
            .map(|i| {
                let key = format!("logs/{i:04}.gz");
                let id = ep.seed_upload(BUCKET, &key, base + TimeDelta::seconds(i), &[(1, MIB)]);
                (key, id)
            })
            .collect();
        let s3 = client(&ep);
        let (mut pages, mut listed, mut marker) = (Vec::new(), Vec::new(), None::<String>);
        loop {
            let out = s3
                .list_multipart_uploads()
                .bucket(BUCKET)
                .set_key_marker(marker.clone())
                .send()
                .await
                .expect("a page");
            pages.push(out.uploads().len());
            assert_eq!(out.max_uploads(), Some(1000));
            assert_eq!(out.next_upload_id_marker(), None);
            listed.extend(out.uploads().iter().map(|u| {
                assert_eq!(u.storage_class().map(|s| s.as_str()), Some(STORAGE_CLASS));
                (
                    u.key().unwrap_or_default().to_owned(),
                    u.upload_id().unwrap_or_default().to_owned(),
                    to_chrono(u.initiated().expect("initiated")),
                )
            }));
            marker = out.next_key_marker().map(str::to_owned);
            assert_eq!(out.is_truncated(), Some(marker.is_some()));
            let Some(m) = &marker else { break };
            assert!(
                !seeded.iter().any(|(k, id)| k == m || id == m),
                "the marker is opaque"
            );
            assert!(pages.len() < 10, "the listing never ends");
        }
        assert_eq!(pages, [1000, 1000, 500]);
        let ids: Vec<&str> = listed.iter().map(|(_, id, _)| id.as_str()).collect();
        let snapshot: Vec<String> = ep
            .uploads(BUCKET)
            .into_iter()
            .map(|u| u.upload_id)
            .collect();
        assert_eq!(ids, snapshot, "the endpoint's own order");
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 2500, "every upload exactly once");
        assert_ne!(ids, sorted, "not by upload id");
        assert!(
            !listed.windows(2).all(|w| w[0].0 <= w[1].0),
            "not by key (nor by initiation: keys follow it)"
        );
        let (key, id, initiated) = &listed[0];
        let i: i64 = key[5..9].parse().expect("a number");
        assert_eq!(*initiated, base + TimeDelta::seconds(i));
        assert!(seeded.contains(&(key.clone(), id.clone())));

        let requests = ep.requests();
        assert_eq!(requests.len(), 4, "{requests:#?}");
        let session = &requests[0];
        assert_eq!(
            (session.operation, session.method.as_str(), session.status),
            ("CreateSession", "GET", 200)
        );
        assert!(
            session.target.starts_with(&format!("/{BUCKET}")),
            "{session:?}"
        );
        assert!(session.target.contains("session"), "{session:?}");
        assert_eq!(session.host, ep.addr().to_string());
        assert!(session.path_style);
        assert_eq!(session.bucket, BUCKET);
        assert_eq!(
            (session.access_key.as_str(), session.region.as_str()),
            (AK, "us-west-2")
        );
        assert_eq!(session.service, "s3express");
        assert_eq!(session.session_token, None);
        for r in &requests[1..] {
            assert_eq!((r.operation, r.status), ("ListMultipartUploads", 200));
            assert!(r.access_key.starts_with("ASIA"), "{r:?}");
            assert!(r.session_token.is_some(), "{r:?}");
        }
        let stats = ep.stats();
        assert_eq!(
            (stats.sessions_created, stats.list_multipart_uploads),
            (1, 3)
        );
        assert_eq!((stats.requests, stats.rejected), (4, 0));
    }

    #[tokio::test]
    async fn prefixes_markers_page_sizes_and_lifecycle_answer_as_a_directory_bucket() {
        // Refused prefixes and markers, a capped page, and the lifecycle rule read both ways.
        let ep = started().await;
        for i in 0..10 {
            ep.seed_upload(BUCKET, &format!("logs/{i}"), Utc::now(), &[(1, MIB)]);
        }
        ep.seed_upload(BUCKET, "other/x", Utc::now(), &[]);
        let s3 = client(&ep);

        let err = s3
            .list_multipart_uploads()
            .bucket(BUCKET)
            .prefix("logs")
            .send()
            .await
            .expect_err("no slash");
        assert_eq!(
            status_and_code(&err),
            (Some(400), Some("InvalidArgument".to_owned()))
        );
        assert!(
            err.message().is_some_and(|m| m.contains("delimiter '/'")),
            "{err:?}"
        );
        for (marker, id_marker) in [("logs/0", None), ("", Some("an-id"))] {
            let err = s3
                .list_multipart_uploads()
                .bucket(BUCKET)
                .key_marker(marker)
                .set_upload_id_marker(id_marker.map(str::to_owned))
                .send()
                .await
                .expect_err("refused");
            assert_eq!(
                status_and_code(&err),
                (Some(400), Some("InvalidArgument".to_owned())),
                "{marker:?} {id_marker:?}"
            );
        }

        ep.update_faults(|f| f.page_size = Some(4));
        let (mut pages, mut marker) = (Vec::new(), None::<String>);
        loop {
            let out = s3
                .list_multipart_uploads()
                .bucket(BUCKET)
                .prefix("logs/")
                .max_uploads(10)
                .set_key_marker(marker.clone())
                .send()
                .await
                .expect("a page");
            assert_eq!((out.max_uploads(), out.prefix()), (Some(10), Some("logs/")));
            assert!(
                out.uploads()
                    .iter()
                    .all(|u| u.key().is_some_and(|k| k.starts_with("logs/")))
            );
            pages.push(out.uploads().len());
            marker = out.next_key_marker().map(str::to_owned);
            if marker.is_none() {
                break;
            }
        }
        assert_eq!(pages, [4, 4, 2], "capped by the fault, the prefix filtered");

        let err = s3
            .get_bucket_lifecycle_configuration()
            .bucket(BUCKET)
            .send()
            .await
            .expect_err("no rules");
        assert_eq!(
            status_and_code(&err),
            (Some(404), Some("NoSuchLifecycleConfiguration".to_owned()))
        );
        ep.set_lifecycle_abort_days(BUCKET, Some(7));
        let out = s3
            .get_bucket_lifecycle_configuration()
            .bucket(BUCKET)
            .send()
            .await
            .expect("rules");
        let [rule] = out.rules() else {
            panic!("one rule: {out:?}");
        };
        assert_eq!(rule.id(), Some("abort-mpu"));
        assert_eq!(rule.status().as_str(), "Enabled");
        assert_eq!(
            rule.abort_incomplete_multipart_upload()
                .and_then(|a| a.days_after_initiation()),
            Some(7)
        );
        let lifecycle = ep
            .requests()
            .into_iter()
            .filter(|r| r.operation == "GetBucketLifecycleConfiguration")
            .collect::<Vec<_>>();
        assert_eq!(lifecycle.len(), 2);
        assert_eq!(lifecycle[1].status, 200);
    }

    #[tokio::test]
    async fn list_parts_and_conditional_aborts_follow_initiation_times_and_faults() {
        // Parts paged two at a time; aborts with a wrong and the listed time; a straggler, a
        // never-empty key, an upload replaced at its first ListParts.
        let ep = started().await;
        let t0 = at("2026-12-03T10:00:00.250Z");
        let key = "logs/a b+c.txt";
        let id = ep.seed_upload(BUCKET, key, t0, &[(1, 5 * MIB), (2, 5 * MIB), (3, MIB)]);
        let s3 = client(&ep);

        let first = s3
            .list_parts()
            .bucket(BUCKET)
            .key(key)
            .upload_id(&id)
            .max_parts(2)
            .send()
            .await
            .expect("parts");
        let numbers: Vec<i32> = first
            .parts()
            .iter()
            .filter_map(|p| p.part_number())
            .collect();
        assert_eq!(numbers, [1, 2]);
        assert_eq!(first.is_truncated(), Some(true));
        assert_eq!(first.next_part_number_marker(), Some("2"));
        let part = &first.parts()[0];
        assert_eq!(part.size(), Some(5 * 1024 * 1024));
        assert_eq!(part.last_modified().map(to_chrono), Some(t0));
        assert!(
            part.e_tag()
                .is_some_and(|e| e.len() == 34 && e.starts_with('"') && e.ends_with('"')),
            "{part:?}"
        );
        let second = s3
            .list_parts()
            .bucket(BUCKET)
            .key(key)
            .upload_id(&id)
            .part_number_marker("2")
            .send()
            .await
            .expect("parts");
        let numbers: Vec<i32> = second
            .parts()
            .iter()
            .filter_map(|p| p.part_number())
            .collect();
        assert_eq!((numbers, second.is_truncated()), (vec![3], Some(false)));

        let listed = s3
            .list_multipart_uploads()
            .bucket(BUCKET)
            .send()
            .await
            .expect("a page");
        let initiated = *listed.uploads()[0].initiated().expect("initiated");
        let abort = |key: &'static str, id: String, time: Option<SdkDateTime>| {
            s3.abort_multipart_upload()
                .bucket(BUCKET)
                .key(key)
                .upload_id(id)
                .set_if_match_initiated_time(time)
                .send()
        };
        let err = abort(
            key,
            id.clone(),
            Some(SdkDateTime::from_secs(t0.timestamp() + 1)),
        )
        .await
        .expect_err("another time");
        assert_eq!(
            status_and_code(&err),
            (Some(412), Some("PreconditionFailed".to_owned()))
        );
        assert_eq!(ep.upload_count(BUCKET), 1, "nothing removed");
        abort(key, id.clone(), Some(initiated)).await.expect("204");
        assert_eq!(ep.upload_count(BUCKET), 0);
        let err = abort(key, id.clone(), None).await.expect_err("gone");
        assert!(
            err.as_service_error()
                .is_some_and(|e| e.is_no_such_upload()),
            "{err:?}"
        );
        let sent = ep.requests();
        let aborts: Vec<_> = sent
            .iter()
            .filter(|r| r.operation == "AbortMultipartUpload")
            .collect();
        assert_eq!(
            aborts[1].if_match_initiated_time.as_deref(),
            Some("Thu, 03 Dec 2026 10:00:00 GMT")
        );
        assert_eq!(
            aborts.iter().map(|r| r.status).collect::<Vec<_>>(),
            [412, 204, 404]
        );
        assert!(
            aborts[0].target.contains("/logs/a%20b%2Bc.txt?"),
            "{:?}",
            aborts[0]
        );

        ep.update_faults(|f| {
            f.stragglers.insert("logs/late".to_owned(), 1);
            f.never_empty.insert("logs/stuck".to_owned());
            f.replace_on_list_parts.insert("logs/moved".to_owned());
        });
        let late = ep.seed_upload(BUCKET, "logs/late", t0, &[(1, MIB)]);
        let stuck = ep.seed_upload(BUCKET, "logs/stuck", t0, &[(1, MIB)]);
        let moved = ep.seed_upload(BUCKET, "logs/moved", t0, &[(1, MIB)]);
        let parts_of = |key: &'static str, id: String| {
            let s3 = s3.clone();
            async move {
                s3.list_parts()
                    .bucket(BUCKET)
                    .key(key)
                    .upload_id(id)
                    .send()
                    .await
                    .map(|out| {
                        out.parts()
                            .iter()
                            .map(|p| (p.part_number(), p.e_tag().map(str::to_owned)))
                            .collect::<Vec<_>>()
                    })
            }
        };
        abort("logs/late", late.clone(), None).await.expect("204");
        let parts = parts_of("logs/late", late.clone())
            .await
            .expect("still there");
        assert_eq!(parts.len(), 2, "a part landed after the abort");
        assert_ne!(parts[0].1, parts[1].1);
        abort("logs/late", late.clone(), None).await.expect("204");
        assert!(parts_of("logs/late", late).await.is_err(), "then removed");
        for _ in 0..3 {
            abort("logs/stuck", stuck.clone(), None).await.expect("204");
        }
        assert_eq!(
            parts_of("logs/stuck", stuck)
                .await
                .expect("never empty")
                .len(),
            4
        );

        let listed_time = SdkDateTime::from_secs(t0.timestamp());
        parts_of("logs/moved", moved.clone()).await.expect("parts");
        let err = abort("logs/moved", moved.clone(), Some(listed_time))
            .await
            .expect_err("replaced");
        assert_eq!(status_and_code(&err).0, Some(412));
        let now_initiated = ep
            .uploads(BUCKET)
            .into_iter()
            .find(|u| u.upload_id == moved)
            .expect("kept")
            .initiated;
        assert_eq!(now_initiated, t0 + TimeDelta::hours(1));
        parts_of("logs/moved", moved.clone()).await.expect("parts");
        assert!(
            ep.replace_upload(BUCKET, &moved, t0),
            "replaced back by hand"
        );
        abort("logs/moved", moved, Some(listed_time))
            .await
            .expect("204");

        let stats = ep.stats();
        assert_eq!(
            (
                stats.aborts_removed,
                stats.aborts_swallowed,
                stats.aborts_precondition_failed
            ),
            (3, 4, 2)
        );
        assert_eq!(stats.abort_multipart_upload, 10);
        assert_eq!(stats.rejected, 0);
    }

    #[tokio::test]
    async fn the_sdk_renews_a_short_session_before_it_expires() {
        // A session TTL of 11 s: the SDK renews sessions 10 s before they expire.
        let ep = started().await;
        ep.create_bucket(BUCKET);
        ep.update_faults(|f| f.session_ttl = Duration::from_secs(11));
        let s3 = client(&ep);
        let started_at = Instant::now();
        while ep.stats().sessions_created < 2 {
            assert!(
                started_at.elapsed() < Duration::from_secs(5),
                "no new session: {:?}",
                ep.stats()
            );
            s3.list_multipart_uploads()
                .bucket(BUCKET)
                .send()
                .await
                .expect("a page");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let stats = ep.stats();
        assert_eq!(stats.rejected, 0, "renewed before the endpoint refused it");
        let keys: HashSet<String> = ep
            .requests()
            .into_iter()
            .filter(|r| r.operation == "ListMultipartUploads")
            .map(|r| r.access_key)
            .collect();
        assert_eq!(keys.len(), 2, "the new session signs the later requests");
    }

    #[tokio::test]
    async fn virtual_hosted_requests_through_the_endpoint_as_a_proxy() {
        // endpoint_url http://s3express.test:PORT, the endpoint as the client's HTTP proxy.
        let ep = started().await;
        let id = ep.seed_upload(BUCKET, "logs/v", Utc::now(), &[(1, MIB)]);
        ep.seed_upload(BUCKET, "logs/w", Utc::now(), &[(1, MIB)]);
        let s3 = virtual_client(&ep);
        let out = s3
            .list_multipart_uploads()
            .bucket(BUCKET)
            .send()
            .await
            .expect("a page");
        assert_eq!(out.uploads().len(), 2);
        s3.abort_multipart_upload()
            .bucket(BUCKET)
            .key("logs/v")
            .upload_id(&id)
            .send()
            .await
            .expect("204");
        assert_eq!(ep.upload_count(BUCKET), 1);

        let host = format!("{BUCKET}.s3express.test:{}", ep.addr().port());
        let requests = ep.requests();
        let ops: Vec<&str> = requests.iter().map(|r| r.operation).collect();
        assert_eq!(
            ops,
            [
                "CreateSession",
                "ListMultipartUploads",
                "AbortMultipartUpload"
            ]
        );
        for r in &requests {
            assert_eq!(r.host, host, "{r:?}");
            assert!(!r.path_style, "{r:?}");
            assert_eq!(r.bucket, BUCKET);
            assert!(
                r.target.starts_with(&format!("http://{host}/")),
                "absolute form: {r:?}"
            );
        }
        assert!(requests[2].target.contains("/logs/v?"), "{:?}", requests[2]);
        assert_eq!(ep.stats().rejected, 0);

        let addr = ep.addr();
        ep.shutdown().await;
        assert!(
            TcpStream::connect(addr).await.is_err(),
            "the port is closed"
        );
    }

    // -----------------------------------------------------------------------------------
    // Through raw HTTP: sessions the SDK would never misuse.

    struct Reply {
        status: u16,
        body: String,
    }

    impl Reply {
        fn element(&self, name: &str) -> Option<&str> {
            let open = format!("<{name}>");
            let start = self.body.find(&open)? + open.len();
            let len = self.body[start..].find(&format!("</{name}>"))?;
            Some(&self.body[start..start + len])
        }
    }

    /// Signs a request for `s3express` with aws-sigv4 (the session token, if any, in
    /// `x-amz-s3session-token`, an unsigned payload) and sends it on a new connection.
    async fn send_signed(
        ep: &DirectoryEndpoint,
        method: &str,
        target: &str,
        creds: Option<(&str, &str, Option<&str>)>,
    ) -> Reply {
        use aws_sigv4::http_request::{
            PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest,
            SigningSettings, UriPathNormalizationMode, sign,
        };
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

        let host = ep.addr().to_string();
        let mut headers: Vec<(String, String)> = vec![("host".into(), host.clone())];
        if let Some((ak, sk, token)) = creds {
            let identity = Credentials::new(ak, sk, token.map(str::to_owned), None, "test").into();
            let mut settings = SigningSettings::default();
            settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
            settings.percent_encoding_mode = PercentEncodingMode::Single;
            settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
            settings.session_token_name_override = Some(SESSION_TOKEN_HEADER);
            let params = aws_sigv4::sign::v4::SigningParams::builder()
                .identity(&identity)
                .region("us-west-2")
                .name("s3express")
                .time(SystemTime::now())
                .settings(settings)
                .build()
                .expect("params")
                .into();
            let url = format!("http://{host}{target}");
            let signable = SignableRequest::new(
                method,
                url.as_str(),
                std::iter::empty(),
                SignableBody::UnsignedPayload,
            )
            .expect("signable");
            let (instructions, _) = sign(signable, &params).expect("signed").into_parts();
            headers.extend(
                instructions
                    .headers()
                    .map(|(k, v)| (k.to_owned(), v.to_owned())),
            );
        }
        let mut request = format!("{method} {target} HTTP/1.1\r\n");
        for (k, v) in &headers {
            let _ = write!(request, "{k}: {v}\r\n");
        }
        request.push_str("connection: close\r\n\r\n");
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
            body: body.to_owned(),
        }
    }

    /// A session for `bucket` through raw `CreateSession`: (access key, secret, token).
    async fn session(ep: &DirectoryEndpoint, bucket: &str) -> (String, String, String) {
        let reply = send_signed(
            ep,
            "GET",
            &format!("/{bucket}?session"),
            Some((AK, SK, None)),
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert!(reply.body.contains(S3_NAMESPACE), "{}", reply.body);
        let field = |name| reply.element(name).expect(name).to_owned();
        (
            field("AccessKeyId"),
            field("SecretAccessKey"),
            field("SessionToken"),
        )
    }

    #[tokio::test]
    async fn forged_foreign_missing_and_expired_sessions_are_refused() {
        // A session used rightly, with a forged token, on another bucket, with no token at
        // all, unsigned, and after it expired.
        let ep = started().await;
        let other = "other--usw2-az1--x-s3";
        ep.create_bucket(BUCKET);
        ep.create_bucket(other);
        assert_eq!(ep.buckets(), [BUCKET, other]);
        let list = format!("/{BUCKET}?uploads");
        let (ak, sk, token) = session(&ep, BUCKET).await;
        let first_key = ak.clone();

        let ok = send_signed(&ep, "GET", &list, Some((&ak, &sk, Some(&token)))).await;
        assert_eq!(ok.status, 200, "{}", ok.body);
        assert_eq!(ok.element("IsTruncated"), Some("false"));
        let cases = [
            (
                Some((ak.as_str(), sk.as_str(), Some("forged-token"))),
                403,
                "AccessDenied",
            ),
            (
                Some(("ASIAUNKNOWN", "x", Some(token.as_str()))),
                403,
                "AccessDenied",
            ),
            (Some((AK, SK, None)), 403, "AccessDenied"),
            (Some((AK, "guess", None)), 403, "SignatureDoesNotMatch"),
            (None, 403, "AccessDenied"),
        ];
        for (creds, status, code) in cases {
            let reply = send_signed(&ep, "GET", &list, creds).await;
            assert_eq!(
                (reply.status, reply.element("Code")),
                (status, Some(code)),
                "{creds:?}: {}",
                reply.body
            );
            assert!(reply.element("RequestId").is_some(), "{}", reply.body);
        }
        let foreign = send_signed(
            &ep,
            "GET",
            &format!("/{other}?uploads"),
            Some((&ak, &sk, Some(&token))),
        )
        .await;
        assert_eq!(
            (foreign.status, foreign.element("Code")),
            (403, Some("AccessDenied"))
        );
        let by_session = send_signed(
            &ep,
            "GET",
            &format!("/{BUCKET}?session"),
            Some((&ak, &sk, Some(&token))),
        )
        .await;
        assert_eq!(by_session.status, 403, "CreateSession takes a base key");
        let unknown = send_signed(
            &ep,
            "GET",
            "/nope--usw2-az1--x-s3?session",
            Some((AK, SK, None)),
        )
        .await;
        assert_eq!(
            (unknown.status, unknown.element("Code")),
            (404, Some("NoSuchBucket"))
        );

        ep.update_faults(|f| f.session_ttl = Duration::from_secs(1));
        let (ak, sk, token) = session(&ep, BUCKET).await;
        let started_at = Instant::now();
        let expired = loop {
            let reply = send_signed(&ep, "GET", &list, Some((&ak, &sk, Some(&token)))).await;
            if reply.status != 200 {
                break reply;
            }
            assert!(
                started_at.elapsed() < Duration::from_secs(3),
                "never expires"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(
            (expired.status, expired.element("Code")),
            (400, Some("ExpiredToken"))
        );

        let stats = ep.stats();
        assert_eq!((stats.rejected, stats.expired_session_rejections), (8, 1));
        assert_eq!(stats.sessions_created, 2);
        let requests = ep.requests();
        let forged = &requests[2];
        assert_eq!(forged.session_token.as_deref(), Some("forged-token"));
        assert_eq!(
            (forged.access_key.as_str(), forged.status),
            (first_key.as_str(), 403)
        );
        assert_eq!(
            (forged.operation, forged.region.as_str()),
            ("ListMultipartUploads", "us-west-2")
        );
    }
}
