//! s3-mem: an embedded in-memory S3 endpoint for mpu-janitor's `demo` command and its tests.
//!
//! This crate is responsible for serving a small, fast, *honest* subset of the S3 REST
//! protocol on a local TCP port, so that the janitor can be exercised end to end with
//! real SigV4-signed requests and no external service:
//!
//! - protocol parsing, XML rendering and `SigV4` verification are delegated to [`s3s`];
//!   requests are served by hyper 1 (HTTP/1.1) on a tokio listener, path-style addressing
//!   (and virtual-hosted style under a base domain: [`Endpoint::start_with_domain`]; requests
//!   in absolute form, as sent to an HTTP proxy, are served like origin-form ones, so a test
//!   can make the endpoint its client's proxy and need no DNS), an optional log of every
//!   request ([`Endpoint::record_requests`]), any signing region (a request signed for
//!   another region than its bucket's is served, and the region recorded:
//!   [`Endpoint::signing_regions`]);
//! - keys: the start key, keys added at runtime ([`Endpoint::add_key`]) and secrets asked
//!   of a lookup for unknown access keys ([`Endpoint::set_key_lookup`], e.g. temporary
//!   keys issued by a real STS; `x-amz-security-token` is accepted as a signed header and
//!   not checked itself);
//! - operations: `CreateBucket`, `HeadBucket` (with `x-amz-bucket-region`),
//!   `GetBucketLocation`, `ListBuckets` (`max-buckets`, `continuation-token`, `prefix`,
//!   `bucket-region`, a `BucketRegion` per bucket), `GetBucketTagging`,
//!   `GetBucketLifecycleConfiguration` (always none), `CreateMultipartUpload`,
//!   `UploadPart` (only the size and the MD5 `ETag` of each part are kept, never the
//!   bytes), `ListMultipartUploads`, `ListParts` and `AbortMultipartUpload`; anything
//!   else answers `NotImplemented`;
//! - buckets live in a region ([`Endpoint::create_bucket_in`]), carry tags
//!   ([`Endpoint::set_bucket_tags`]) and can vanish mid-run ([`Endpoint::delete_bucket`]);
//! - a controllable clock ([`Endpoint::set_clock_offset`]) that stamps `Initiated` and
//!   part `LastModified`, so old uploads can be seeded honestly through the protocol;
//! - runtime fault plans ([`Faults`]): straggling or never-emptying aborts, random
//!   `503 SlowDown`, an S3-like request rate limit per prefix partition ([`Throttle`]),
//!   random connection resets, added latency, clock skew, `AccessDenied` buckets, a denied
//!   lifecycle read, denied bucket tagging reads, short `ListBuckets` pages;
//! - counters ([`Stats`], requests per access key included) and state inspection
//!   ([`Endpoint::uploads`]) for assertions, plus direct in-memory seeding
//!   ([`Endpoint::seed_upload`]) for large scenes.
//!
//! State lives in ordered maps behind one mutex; uploads of a bucket are keyed by
//! `(key, upload id)` so every `ListMultipartUploads` page is a range query.
//!
//! [`glacier`] is an S3 Glacier (vaults) endpoint on the same lines, for vault sweeps.

pub mod express;
pub mod glacier;
mod serve;
mod sigv4;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::hash::BuildHasher;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::ops::Bound;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, TimeDelta, Utc};
use futures::StreamExt;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use md5::{Digest, Md5};
use parking_lot::Mutex;
use s3s::auth::{S3Auth, SecretKey};
use s3s::dto;
use s3s::host::{S3Host, SingleDomain, VirtualHost};
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::{S3, S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::serve::{Server, wait_shutdown};

/// Largest page S3 returns for `ListMultipartUploads` and `ListParts`.
const MAX_PAGE: i32 = 1000;
/// Largest clock offset accepted by [`Endpoint::set_clock_offset`] (about 100 years).
const MAX_OFFSET_MS: i64 = 100 * 366 * 24 * 3600 * 1000;
/// Region of buckets created without one.
const DEFAULT_REGION: &str = "us-east-1";
/// Largest `max-buckets` S3 accepts, and its page size when a `ListBuckets` parameter is given
/// without `max-buckets`.
const MAX_BUCKETS: usize = 10_000;

type StdError = Box<dyn std::error::Error + Send + Sync + 'static>;
type HttpResponse = hyper::Response<s3s::Body>;
/// See [`Endpoint::set_key_lookup`].
type KeyLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync + 'static>;

/// Fault plan applied to requests; change it at runtime with [`Endpoint::set_faults`].
///
/// The default plan injects nothing. Faults only apply while set, so a test seeds its
/// scene first and then sets the plan.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Straggling uploads, by exact object key: for an upload with that key, the first
    /// `N` `AbortMultipartUpload` calls answer 204 but leave the upload listed with all
    /// its parts (as if a racing part upload had landed); abort number `N + 1` really
    /// removes it. The count is kept per upload, over the aborts it has swallowed so far.
    pub stragglers: HashMap<String, u32>,
    /// Object keys whose uploads never go away: every abort answers 204 and removes
    /// nothing.
    pub never_empty: HashSet<String>,
    /// Fraction (0.0..=1.0) of all HTTP requests answered `503 SlowDown` before anything
    /// else is done (no authentication, no state change).
    pub slowdown_fraction: f64,
    /// Fraction (0.0..=1.0) of all HTTP requests whose TCP connection is closed with a
    /// reset (`SO_LINGER` 0) and no response at all.
    ///
    /// A single random draw decides per request: the first `reset_fraction` of the unit
    /// interval resets, the next `slowdown_fraction` answers `SlowDown`.
    pub reset_fraction: f64,
    /// Delay added before every request is handled (faulted ones included).
    pub latency: Duration,
    /// Buckets for which every request answers `403 AccessDenied` (checked after the
    /// random faults, before authentication).
    pub fail_buckets: HashSet<String>,
    /// How far the endpoint's clock runs ahead of the real one. Like AWS, the endpoint answers
    /// `403 RequestTimeTooSkewed`, with its own time in the `Date` header, to every request whose
    /// `x-amz-date` is more than 15 minutes away from its clock (checked before authentication).
    pub clock_ahead: Duration,
    /// Answer without a `Date` header (hyper's automatic one is turned off for connections
    /// accepted while this is set), as a server with no usable clock would.
    pub no_date: bool,
    /// An S3-like request rate limit: beyond it, requests answer `503 SlowDown` (checked
    /// after the random faults, before authentication).
    pub throttle: Option<Throttle>,
    /// GetBucketLifecycleConfiguration answers `403 AccessDenied` (a janitor without the optional
    /// `s3:GetLifecycleConfiguration` permission); every other call is unaffected.
    pub deny_lifecycle: bool,
    /// Buckets whose `GetBucketTagging` answers `403 AccessDenied` (a janitor without
    /// `s3:GetBucketTagging` on them, checked before the bucket's existence); every other call
    /// on them is unaffected.
    pub deny_tagging: HashSet<String>,
    /// Largest `ListBuckets` page, whatever `max-buckets` the client asks for (`Some(0)`
    /// counts as 1), so a test can force several pages.
    pub list_buckets_page: Option<usize>,
}

/// A token bucket per prefix partition, as S3 limits request rates per prefix: each partition
/// sustains `rate` requests a second and takes up to `burst` at once after being idle. A
/// partition is the bucket and the first segment of the key (up to its first `/`); requests
/// without a key (a listing), and keys without a `/`, count against the bucket's own partition.
#[derive(Clone, Debug)]
pub struct Throttle {
    /// Requests per second each partition sustains.
    pub rate: f64,
    /// Requests a partition takes at once after being idle.
    pub burst: f64,
}

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

/// Handle of a running in-memory S3 endpoint.
///
/// Dropping the handle stops the endpoint in the background; [`Endpoint::shutdown`] stops it
/// and waits. All control methods take `&self`, so the handle can be shared in an `Arc`.
pub struct Endpoint {
    shared: Arc<Shared>,
    server: Server,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("addr", &self.server.addr())
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// Starts an endpoint on `127.0.0.1` with an ephemeral port, accepting requests signed
    /// with this access key / secret key pair (more: [`Endpoint::add_key`],
    /// [`Endpoint::set_key_lookup`]).
    ///
    /// Must be called inside a tokio runtime; the server runs on spawned tasks.
    ///
    /// # Errors
    /// Fails if the listener cannot be bound.
    pub async fn start(access_key: &str, secret_key: &str) -> io::Result<Endpoint> {
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
    ) -> io::Result<Endpoint> {
        Self::launch(addr, access_key, secret_key, None).await
    }

    /// Like [`Endpoint::start`], and also serves virtual-hosted-style requests under the base
    /// domain `domain` (e.g. `s3.test`): a request whose `Host` is
    /// `reports-123456789012.s3.test:PORT` addresses bucket `reports-123456789012` (the port,
    /// and the case of the domain, do not matter). A `Host` equal to the domain, an IP address
    /// or any other name is path style, as on [`Endpoint::start`]'s endpoints.
    ///
    /// No name resolves to the endpoint: give its [`Endpoint::url`] to the client as its HTTP
    /// proxy (requests then come in absolute form, which is served like origin form, and
    /// `Proxy-Authorization` is ignored) and [`Endpoint::domain_url`] as its S3 endpoint.
    ///
    /// # Errors
    /// Fails if `domain` is not a domain name (a port in it included) or if the listener
    /// cannot be bound.
    pub async fn start_with_domain(
        access_key: &str,
        secret_key: &str,
        domain: &str,
    ) -> io::Result<Endpoint> {
        Self::start_on_with_domain(
            SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            access_key,
            secret_key,
            domain,
        )
        .await
    }

    /// [`Endpoint::start_with_domain`] listening on `addr` (port 0 picks a free port).
    ///
    /// # Errors
    /// Fails if `domain` is not a domain name or if the listener cannot be bound.
    pub async fn start_on_with_domain(
        addr: SocketAddr,
        access_key: &str,
        secret_key: &str,
        domain: &str,
    ) -> io::Result<Endpoint> {
        Self::launch(addr, access_key, secret_key, Some(domain)).await
    }

    async fn launch(
        addr: SocketAddr,
        access_key: &str,
        secret_key: &str,
        domain: Option<&str>,
    ) -> io::Result<Endpoint> {
        let domain = domain.map(base_domain).transpose()?;
        let listener = TcpListener::bind(addr).await?;
        let mut shared = Shared::new();
        shared.domain.clone_from(&domain);
        let shared = Arc::new(shared);
        shared
            .keys
            .secrets
            .lock()
            .insert(access_key.to_owned(), secret_key.to_owned());

        let mut builder = S3ServiceBuilder::new(MemS3 {
            shared: Arc::clone(&shared),
        });
        builder.set_auth(MemAuth {
            keys: Arc::clone(&shared.keys),
        });
        if let Some(domain) = domain {
            builder.set_host(VirtualHosts { domain });
        }
        // The 15-minute window is checked in `handle` against the endpoint's own clock, which
        // `Faults::clock_ahead` can move.
        let mut config = s3s::config::S3Config::default();
        config.presigned_url_max_skew_time_secs = u32::MAX;
        builder.set_config(Arc::new(s3s::config::StaticConfigProvider::new(Arc::new(
            config,
        ))));
        let service = builder.build();

        let conn_shared = Arc::clone(&shared);
        let server = Server::serve(listener, "s3 endpoint", move |stream, shutdown| {
            serve_connection(stream, Arc::clone(&conn_shared), service.clone(), shutdown)
        })?;
        Ok(Endpoint { shared, server })
    }

    /// Address the endpoint listens on.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Base URL for clients, e.g. `http://127.0.0.1:40123` (use path-style addressing); for an
    /// endpoint with a domain, also the proxy URL to reach [`Endpoint::domain_url`] through.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// Base domain of virtual-hosted-style requests (lowercase), for an endpoint started with
    /// [`Endpoint::start_with_domain`].
    #[must_use]
    pub fn domain(&self) -> Option<&str> {
        self.shared.domain.as_deref()
    }

    /// S3 endpoint URL under the base domain, e.g. `http://s3.test:40123`, for a client that
    /// reaches the endpoint through [`Endpoint::url`] as its proxy; `None` without a domain.
    #[must_use]
    pub fn domain_url(&self) -> Option<String> {
        let domain = self.shared.domain.as_deref()?;
        Some(format!("http://{domain}:{}", self.server.addr().port()))
    }

    /// Turns the request log on or off (it starts off): while on, every HTTP request that
    /// reaches the endpoint's handler is recorded on arrival, faulted and rejected ones
    /// included, and its status filled in once answered; see [`Endpoint::requests`].
    /// Turning it off keeps what was recorded.
    pub fn record_requests(&self, on: bool) {
        self.shared.recording.store(on, Ordering::Relaxed);
    }

    /// The recorded requests in arrival order, since the log was turned on or last
    /// [`Endpoint::reset_requests`].
    #[must_use]
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.log.lock().records.clone()
    }

    /// Forgets the recorded requests (recording stays as it was; a request in flight is not
    /// recorded again when answered).
    pub fn reset_requests(&self) {
        let mut log = self.shared.log.lock();
        log.records = Vec::new();
        log.epoch += 1;
    }

    /// Sets the offset added to the real clock when stamping `Initiated` and part
    /// `LastModified` (negative backdates). Clamped to about ±100 years, millisecond
    /// precision. Does not affect signature time checks.
    pub fn set_clock_offset(&self, offset: TimeDelta) {
        let ms = offset
            .num_milliseconds()
            .clamp(-MAX_OFFSET_MS, MAX_OFFSET_MS);
        self.shared.clock_offset_ms.store(ms, Ordering::Relaxed);
    }

    /// Current clock offset.
    #[must_use]
    pub fn clock_offset(&self) -> TimeDelta {
        TimeDelta::milliseconds(self.shared.clock_offset_ms.load(Ordering::Relaxed))
    }

    /// The endpoint's notion of "now" (real clock plus offset).
    #[must_use]
    pub fn now(&self) -> DateTime<Utc> {
        self.shared.now()
    }

    /// Replaces the fault plan; `Faults::default()` turns every fault off.
    pub fn set_faults(&self, faults: Faults) {
        *self.shared.faults.lock() = faults;
    }

    /// Edits the fault plan in place.
    pub fn update_faults(&self, edit: impl FnOnce(&mut Faults)) {
        edit(&mut self.shared.faults.lock());
    }

    /// Current fault plan.
    #[must_use]
    pub fn faults(&self) -> Faults {
        self.shared.faults.lock().clone()
    }

    /// Accepts requests signed with this key pair too, from now on (replaces the secret of a
    /// known access key).
    pub fn add_key(&self, access_key: &str, secret_key: &str) {
        self.shared
            .keys
            .secrets
            .lock()
            .insert(access_key.to_owned(), secret_key.to_owned());
    }

    /// Sets the lookup asked for the secret of an access key the endpoint does not know yet
    /// (replacing any previous one), e.g. the temporary keys a real STS issued.
    ///
    /// It runs on tokio's blocking pool, so it may block (a lookup over HTTP). A secret it
    /// finds is kept, so it is asked once per key; a key it does not find (`None`) is asked
    /// again next time, and the request answers `403 NotSignedUp`, as for any unknown key.
    pub fn set_key_lookup(&self, lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static) {
        *self.shared.keys.lookup.lock() = Some(Arc::new(lookup));
    }

    /// Creates a bucket in `us-east-1` directly in memory (no name validation); does nothing
    /// if it already exists.
    pub fn create_bucket(&self, name: &str) {
        self.create_bucket_in(name, DEFAULT_REGION);
    }

    /// Creates a bucket in `region` directly in memory (no validation); does nothing if it
    /// already exists (its region stays).
    pub fn create_bucket_in(&self, name: &str, region: &str) {
        let now = self.shared.now();
        self.shared
            .state
            .lock()
            .buckets
            .entry(name.to_owned())
            .or_insert_with(|| BucketRec::new(now, region));
    }

    /// Replaces the tag set of `bucket` with `tags` (key, value); an empty slice removes it,
    /// so `GetBucketTagging` answers `NoSuchTagSet`. Does nothing if the bucket does not exist.
    pub fn set_bucket_tags(&self, bucket: &str, tags: &[(&str, &str)]) {
        if let Some(rec) = self.shared.state.lock().buckets.get_mut(bucket) {
            rec.tags = tags
                .iter()
                .map(|&(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
        }
    }

    /// Deletes `bucket` and all its uploads at once (as if another client had emptied and
    /// deleted it); later requests on it answer `NoSuchBucket`. Returns whether it existed.
    pub fn delete_bucket(&self, name: &str) -> bool {
        self.shared.state.lock().buckets.remove(name).is_some()
    }

    /// Regions of the `SigV4` credential scopes of the authenticated requests made on `bucket`
    /// (whether it exists or not), since the start or [`Endpoint::reset_stats`]; `ListBuckets`
    /// is on no bucket and not counted. A janitor that signs for each bucket's own region
    /// leaves exactly that region here.
    #[must_use]
    pub fn signing_regions(&self, bucket: &str) -> BTreeSet<String> {
        self.shared
            .state
            .lock()
            .signing_regions
            .get(bucket)
            .cloned()
            .unwrap_or_default()
    }

    /// Inserts a multipart upload directly in memory (no HTTP), creating the bucket (in
    /// `us-east-1`) if needed, and returns its upload id.
    ///
    /// `parts` are `(part number, size)`; each part gets `LastModified = initiated` and a
    /// deterministic stand-in `ETag` (the MD5 of `"{upload_id}/{number}/{size}"`, as no
    /// body exists). Part numbers outside 1..=10000 are ignored.
    pub fn seed_upload(
        &self,
        bucket: &str,
        key: &str,
        initiated: DateTime<Utc>,
        parts: &[(u32, u64)],
    ) -> String {
        let initiated = clamp_time(initiated);
        let upload_id = self.shared.new_upload_id();
        let mut upload = UploadRec::new(initiated);
        for &(number, size) in parts {
            if !(1..=10_000).contains(&number) {
                continue;
            }
            let etag = md5_of(format!("{upload_id}/{number}/{size}").as_bytes());
            upload.parts.insert(
                number,
                PartRec {
                    size,
                    etag,
                    last_modified: initiated,
                },
            );
        }
        let now = self.shared.now();
        let mut st = self.shared.state.lock();
        let rec = st
            .buckets
            .entry(bucket.to_owned())
            .or_insert_with(|| BucketRec::new(now, DEFAULT_REGION));
        rec.uploads
            .insert((key.to_owned(), upload_id.clone()), upload);
        upload_id
    }

    /// Snapshot of the counters.
    #[must_use]
    pub fn stats(&self) -> Stats {
        let c = &self.shared.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let st = self.shared.state.lock();
        Stats {
            requests: get(&c.requests),
            create_multipart_upload: get(&c.create_multipart_upload),
            upload_part: get(&c.upload_part),
            list_multipart_uploads: get(&c.list_multipart_uploads),
            list_parts: get(&c.list_parts),
            abort_multipart_upload: get(&c.abort_multipart_upload),
            aborts_removed: get(&c.aborts_removed),
            aborts_swallowed: get(&c.aborts_swallowed),
            aborts_by_key: st.aborts_by_key.clone(),
            aborts_by_upload_id: st.aborts_by_upload_id.clone(),
            slowdown_faults: get(&c.slowdown_faults),
            reset_faults: get(&c.reset_faults),
            access_denied_faults: get(&c.access_denied_faults),
            skewed_faults: get(&c.skewed_faults),
            throttled: get(&c.throttled),
            throttle_admitted: get(&c.throttle_admitted),
            list_buckets: get(&c.list_buckets),
            get_bucket_tagging: get(&c.get_bucket_tagging),
            requests_by_access_key: st.requests_by_access_key.clone(),
        }
    }

    /// Sets every counter back to zero and forgets the [`Endpoint::signing_regions`] seen
    /// (state and faults are untouched).
    pub fn reset_stats(&self) {
        let c = &self.shared.counters;
        for a in [
            &c.requests,
            &c.create_multipart_upload,
            &c.upload_part,
            &c.list_multipart_uploads,
            &c.list_parts,
            &c.abort_multipart_upload,
            &c.aborts_removed,
            &c.aborts_swallowed,
            &c.slowdown_faults,
            &c.reset_faults,
            &c.access_denied_faults,
            &c.skewed_faults,
            &c.throttled,
            &c.throttle_admitted,
            &c.list_buckets,
            &c.get_bucket_tagging,
        ] {
            a.store(0, Ordering::Relaxed);
        }
        let mut st = self.shared.state.lock();
        st.aborts_by_key.clear();
        st.aborts_by_upload_id.clear();
        st.requests_by_access_key.clear();
        st.signing_regions.clear();
    }

    /// Names of the existing buckets, sorted.
    #[must_use]
    pub fn buckets(&self) -> Vec<String> {
        self.shared.state.lock().buckets.keys().cloned().collect()
    }

    /// Uploads of `bucket` in listing order (key, then upload id); empty if the bucket
    /// does not exist.
    #[must_use]
    pub fn uploads(&self, bucket: &str) -> Vec<UploadSnapshot> {
        let st = self.shared.state.lock();
        let Some(rec) = st.buckets.get(bucket) else {
            return Vec::new();
        };
        rec.uploads
            .iter()
            .map(|((key, upload_id), up)| UploadSnapshot {
                key: key.clone(),
                upload_id: upload_id.clone(),
                initiated: up.initiated,
                parts: up
                    .parts
                    .iter()
                    .map(|(&part_number, p)| PartSnapshot {
                        part_number,
                        size: p.size,
                        etag: format!("\"{}\"", hex(&p.etag)),
                        last_modified: p.last_modified,
                    })
                    .collect(),
            })
            .collect()
    }

    /// Number of uploads in `bucket` (0 if it does not exist).
    #[must_use]
    pub fn upload_count(&self, bucket: &str) -> usize {
        self.shared
            .state
            .lock()
            .buckets
            .get(bucket)
            .map_or(0, |b| b.uploads.len())
    }

    /// Total number of parts over all uploads of `bucket`.
    #[must_use]
    pub fn part_count(&self, bucket: &str) -> usize {
        let st = self.shared.state.lock();
        st.buckets
            .get(bucket)
            .map_or(0, |b| b.uploads.values().map(|u| u.parts.len()).sum())
    }

    /// Stops accepting connections, lets in-flight requests finish (up to 2 s), closes
    /// every connection and ends the accept loop.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

// ---------------------------------------------------------------------------------------
// Shared state

struct PartRec {
    size: u64,
    etag: [u8; 16],
    last_modified: DateTime<Utc>,
}

struct UploadRec {
    initiated: DateTime<Utc>,
    parts: BTreeMap<u32, PartRec>,
    /// Aborts answered 204 without removing this upload.
    swallowed_aborts: u32,
}

impl UploadRec {
    fn new(initiated: DateTime<Utc>) -> Self {
        Self {
            initiated,
            parts: BTreeMap::new(),
            swallowed_aborts: 0,
        }
    }
}

struct BucketRec {
    created: DateTime<Utc>,
    region: String,
    /// The tag set, in the order set; empty means none (`NoSuchTagSet`).
    tags: Vec<(String, String)>,
    /// Keyed by (object key, upload id): listing order, and range queries for markers.
    uploads: BTreeMap<(String, String), UploadRec>,
}

impl BucketRec {
    fn new(created: DateTime<Utc>, region: &str) -> Self {
        Self {
            created,
            region: region.to_owned(),
            tags: Vec::new(),
            uploads: BTreeMap::new(),
        }
    }
}

#[derive(Default)]
struct State {
    buckets: BTreeMap<String, BucketRec>,
    aborts_by_key: HashMap<String, u64>,
    aborts_by_upload_id: HashMap<String, u64>,
    requests_by_access_key: BTreeMap<String, u64>,
    /// Signing regions seen per bucket name; see [`Endpoint::signing_regions`].
    signing_regions: BTreeMap<String, BTreeSet<String>>,
}

/// The secrets the endpoint knows and the lookup for the others; shared with [`MemAuth`].
#[derive(Default)]
struct Keys {
    secrets: Mutex<HashMap<String, String>>,
    lookup: Mutex<Option<KeyLookup>>,
}

/// `SigV4` secrets for s3s: like `SimpleAuth`, plus keys added at runtime and the lookup.
struct MemAuth {
    keys: Arc<Keys>,
}

#[async_trait::async_trait]
impl S3Auth for MemAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        if let Some(secret) = self.keys.secrets.lock().get(access_key) {
            return Ok(SecretKey::from(secret.clone()));
        }
        let lookup = self.keys.lookup.lock().clone();
        if let Some(lookup) = lookup {
            let key = access_key.to_owned();
            // The lookup may block (the tests ask a real STS over HTTP).
            let found = tokio::task::spawn_blocking(move || lookup(&key))
                .await
                .map_err(|e| s3_error!(InternalError, "the access key lookup failed: {e}"))?;
            if let Some(secret) = found {
                self.keys
                    .secrets
                    .lock()
                    .insert(access_key.to_owned(), secret.clone());
                return Ok(SecretKey::from(secret));
            }
        }
        // What s3s's SimpleAuth answers for an unknown access key.
        Err(s3_error!(NotSignedUp, "Your account is not signed up"))
    }
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    create_multipart_upload: AtomicU64,
    upload_part: AtomicU64,
    list_multipart_uploads: AtomicU64,
    list_parts: AtomicU64,
    abort_multipart_upload: AtomicU64,
    aborts_removed: AtomicU64,
    aborts_swallowed: AtomicU64,
    slowdown_faults: AtomicU64,
    reset_faults: AtomicU64,
    access_denied_faults: AtomicU64,
    skewed_faults: AtomicU64,
    throttled: AtomicU64,
    throttle_admitted: AtomicU64,
    list_buckets: AtomicU64,
    get_bucket_tagging: AtomicU64,
}

struct Shared {
    state: Mutex<State>,
    keys: Arc<Keys>,
    faults: Mutex<Faults>,
    /// Tokens left per partition of [`Faults::throttle`], and when they were counted.
    tokens: Mutex<HashMap<String, (f64, std::time::Instant)>>,
    counters: Counters,
    clock_offset_ms: AtomicI64,
    next_upload: AtomicU64,
    rng: AtomicU64,
    /// Base domain of virtual-hosted-style requests (lowercase); see
    /// [`Endpoint::start_with_domain`].
    domain: Option<String>,
    /// Whether requests are logged; see [`Endpoint::record_requests`].
    recording: AtomicBool,
    log: Mutex<RequestLog>,
}

/// See [`Endpoint::requests`].
#[derive(Default)]
struct RequestLog {
    records: Vec<RequestRecord>,
    /// Bumped by [`Endpoint::reset_requests`], so a request in flight across a reset does
    /// not fill in the status of another.
    epoch: u64,
}

/// Where a request in flight was recorded: the log's epoch and its index.
type LogSlot = (u64, usize);

impl Shared {
    fn new() -> Self {
        let seed = std::collections::hash_map::RandomState::new().hash_one(SystemTime::now());
        Self {
            state: Mutex::new(State::default()),
            keys: Arc::new(Keys::default()),
            faults: Mutex::new(Faults::default()),
            tokens: Mutex::new(HashMap::new()),
            counters: Counters::default(),
            clock_offset_ms: AtomicI64::new(0),
            next_upload: AtomicU64::new(1),
            rng: AtomicU64::new(seed),
            domain: None,
            recording: AtomicBool::new(false),
            log: Mutex::new(RequestLog::default()),
        }
    }

    /// Records a request on arrival (target as sent), with no status yet.
    fn log_arrival<B>(&self, req: &hyper::Request<B>) -> LogSlot {
        let headers = req.headers();
        let text = |name: hyper::header::HeaderName| {
            headers
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .unwrap_or_default()
        };
        let authorization = text(hyper::header::AUTHORIZATION);
        let (access_key, region, service) = credential_scope(&authorization);
        let uri = req.uri();
        let record = RequestRecord {
            method: req.method().as_str().to_owned(),
            host: text(hyper::header::HOST),
            target: uri.to_string(),
            path: uri.path().to_owned(),
            query: uri.query().unwrap_or("").to_owned(),
            access_key: access_key.to_owned(),
            region: region.to_owned(),
            service: service.to_owned(),
            status: 0,
        };
        let mut log = self.log.lock();
        log.records.push(record);
        (log.epoch, log.records.len() - 1)
    }

    /// Fills in the status of a request recorded by [`Shared::log_arrival`].
    fn log_status(&self, (epoch, index): LogSlot, status: u16) {
        let mut log = self.log.lock();
        if log.epoch == epoch
            && let Some(record) = log.records.get_mut(index)
        {
            record.status = status;
        }
    }

    fn now(&self) -> DateTime<Utc> {
        let ms = self.clock_offset_ms.load(Ordering::Relaxed);
        let now = Utc::now();
        let shifted = TimeDelta::try_milliseconds(ms).and_then(|d| now.checked_add_signed(d));
        clamp_time(shifted.unwrap_or(now))
    }

    /// `SplitMix64` over an atomic counter: cheap, lock-free, good enough for sampling.
    fn next_u64(&self) -> u64 {
        const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut z = self
            .rng
            .fetch_add(GAMMA, Ordering::Relaxed)
            .wrapping_add(GAMMA);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn next_f64(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let v = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        v
    }

    /// 32 lowercase hex chars: a fixed-width creation counter then a random suffix, so
    /// ids are URL-safe, opaque, and sort in creation order.
    fn new_upload_id(&self) -> String {
        let n = self.next_upload.fetch_add(1, Ordering::Relaxed);
        format!("{n:016x}{:016x}", self.next_u64())
    }

    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes a token of `partition`'s bucket; false when it is empty.
    fn take_token(&self, partition: &str, t: &Throttle) -> bool {
        let now = std::time::Instant::now();
        let mut tokens = self.tokens.lock();
        let (left, at) = tokens.entry(partition.to_owned()).or_insert((t.burst, now));
        *left = (*left + now.duration_since(*at).as_secs_f64() * t.rate).min(t.burst.max(1.0));
        *at = now;
        if *left >= 1.0 {
            *left -= 1.0;
            true
        } else {
            false
        }
    }

    /// Decides the fault for one request.
    fn plan(&self, path: &str, amz_date: Option<&str>) -> (Duration, Injected) {
        let faults = self.faults.lock();
        let latency = faults.latency;
        let clock = Utc::now() + faults.clock_ahead;
        let (reset, slow) = (faults.reset_fraction, faults.slowdown_fraction);
        let denied =
            !faults.fail_buckets.is_empty() && faults.fail_buckets.contains(bucket_of(path));
        let throttle = faults.throttle.clone();
        drop(faults);

        let mut injected = Injected::None;
        if reset > 0.0 || slow > 0.0 {
            let r = self.next_f64();
            if r < reset {
                injected = Injected::Reset;
            } else if r < reset + slow {
                injected = Injected::SlowDown;
            }
        }
        if let (Injected::None, Some(t)) = (&injected, throttle) {
            if self.take_token(partition_of(path), &t) {
                Self::bump(&self.counters.throttle_admitted);
            } else {
                Self::bump(&self.counters.throttled);
                injected = Injected::Throttled;
            }
        }
        if matches!(injected, Injected::None) && denied {
            injected = Injected::AccessDenied;
        }
        let signed_at = amz_date
            .and_then(|d| chrono::NaiveDateTime::parse_from_str(d, "%Y%m%dT%H%M%SZ").ok())
            .map(|t| t.and_utc());
        if matches!(injected, Injected::None)
            && signed_at.is_some_and(|t| (clock - t).num_seconds().abs() > 15 * 60)
        {
            injected = Injected::Skewed(clock);
        }
        (latency, injected)
    }
}

enum Injected {
    None,
    Reset,
    SlowDown,
    Throttled,
    AccessDenied,
    Skewed(DateTime<Utc>),
}

/// The throttle partition of a path-style request: its bucket and the first segment of its key.
fn partition_of(path: &str) -> &str {
    let path = path.strip_prefix('/').unwrap_or(path);
    let bucket = path.find('/').unwrap_or(path.len());
    match path[bucket..].get(1..).and_then(|key| key.find('/')) {
        Some(end) => &path[..bucket + 1 + end],
        None => &path[..bucket],
    }
}

/// The access key, region and service of an `Authorization` header's credential (`SigV4`:
/// `Credential=AK/date/region/service/aws4_request`; `SigV2`: `AWS AK:signature`, no scope);
/// empty strings for what is absent.
fn credential_scope(authorization: &str) -> (&str, &str, &str) {
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
fn strip_port(host: &str) -> &str {
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
fn host_bucket<'a>(host: &'a str, domain: &str) -> Option<&'a str> {
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
fn base_domain(domain: &str) -> io::Result<String> {
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
struct VirtualHosts {
    domain: String,
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
fn to_origin_form<B>(req: &mut hyper::Request<B>) {
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
fn bucket_of(path: &str) -> &str {
    let path = path.strip_prefix('/').unwrap_or(path);
    path.split('/').next().unwrap_or("")
}

/// Keeps timestamps within what every timestamp renderer accepts.
fn clamp_time(t: DateTime<Utc>) -> DateTime<Utc> {
    let lo = DateTime::<Utc>::UNIX_EPOCH;
    let hi = DateTime::from_timestamp(253_402_300_799, 0).unwrap_or(t); // 9999-12-31T23:59:59Z
    t.clamp(lo, hi)
}

fn ts(t: DateTime<Utc>) -> dto::Timestamp {
    dto::Timestamp::from(SystemTime::from(t))
}

fn md5_of(data: &[u8]) -> [u8; 16] {
    let mut hasher = Md5::new();
    hasher.update(data);
    digest16(hasher)
}

fn digest16(hasher: Md5) -> [u8; 16] {
    let out = hasher.finalize();
    let mut etag = [0u8; 16];
    for (dst, src) in etag.iter_mut().zip(out.iter()) {
        *dst = *src;
    }
    etag
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The bytes of lowercase or uppercase hex `s`, as UTF-8; `None` if it is not that.
fn unhex(s: &str) -> Option<String> {
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let bytes = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(bytes).ok()
}

/// Percent-encodes everything but unreserved characters and `/` (for `encoding-type=url`).
fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn no_such_bucket() -> S3Error {
    s3_error!(NoSuchBucket, "The specified bucket does not exist")
}

fn no_such_upload() -> S3Error {
    s3_error!(
        NoSuchUpload,
        "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed."
    )
}

/// Clamps an optional page size from the request to `0..=1000` (default 1000).
fn page_size(requested: Option<i32>) -> usize {
    usize::try_from(requested.unwrap_or(MAX_PAGE).clamp(0, MAX_PAGE)).unwrap_or(0)
}

// ---------------------------------------------------------------------------------------
// S3 operations

struct MemS3 {
    shared: Arc<Shared>,
}

impl MemS3 {
    fn has_bucket(&self, name: &str) -> bool {
        self.shared.state.lock().buckets.contains_key(name)
    }

    /// Records who signed a request that reached an operation, and for a request on `bucket`
    /// the region it was signed for.
    fn note<T>(&self, req: &S3Request<T>, bucket: Option<&str>) {
        let Some(cred) = &req.credentials else {
            return;
        };
        let mut st = self.shared.state.lock();
        *st.requests_by_access_key
            .entry(cred.access_key.clone())
            .or_default() += 1;
        if let (Some(bucket), Some(region)) = (bucket, &req.region) {
            st.signing_regions
                .entry(bucket.to_owned())
                .or_default()
                .insert(region.as_str().to_owned());
        }
    }
}

#[async_trait::async_trait]
impl S3 for MemS3 {
    async fn create_bucket(
        &self,
        req: S3Request<dto::CreateBucketInput>,
    ) -> S3Result<S3Response<dto::CreateBucketOutput>> {
        self.note(&req, Some(&req.input.bucket));
        let dto::CreateBucketInput {
            bucket: name,
            create_bucket_configuration,
            ..
        } = req.input;
        // As in S3: no location constraint is us-east-1, and `EU` is eu-west-1.
        let region = match create_bucket_configuration.and_then(|c| c.location_constraint) {
            Some(c) if c.as_str() == dto::BucketLocationConstraint::EU => "eu-west-1".to_owned(),
            Some(c) if !c.as_str().is_empty() => c.as_str().to_owned(),
            _ => DEFAULT_REGION.to_owned(),
        };
        let now = self.shared.now();
        let mut st = self.shared.state.lock();
        if st.buckets.contains_key(&name) {
            return Err(s3_error!(
                BucketAlreadyOwnedByYou,
                "Your previous request to create the named bucket succeeded and you already own it."
            ));
        }
        st.buckets
            .insert(name.clone(), BucketRec::new(now, &region));
        Ok(S3Response::new(dto::CreateBucketOutput {
            location: Some(format!("/{name}")),
        }))
    }

    /// A bucket here has no lifecycle configuration (or, with [`Faults::deny_lifecycle`], the
    /// caller may not read it).
    async fn get_bucket_lifecycle_configuration(
        &self,
        req: S3Request<dto::GetBucketLifecycleConfigurationInput>,
    ) -> S3Result<S3Response<dto::GetBucketLifecycleConfigurationOutput>> {
        self.note(&req, Some(&req.input.bucket));
        if self.shared.faults.lock().deny_lifecycle {
            return Err(s3_error!(AccessDenied, "Access Denied"));
        }
        if self.has_bucket(&req.input.bucket) {
            Err(s3_error!(
                NoSuchLifecycleConfiguration,
                "The lifecycle configuration does not exist"
            ))
        } else {
            Err(no_such_bucket())
        }
    }

    /// Answers the bucket's region in `x-amz-bucket-region`, as S3 does.
    async fn head_bucket(
        &self,
        req: S3Request<dto::HeadBucketInput>,
    ) -> S3Result<S3Response<dto::HeadBucketOutput>> {
        self.note(&req, Some(&req.input.bucket));
        let st = self.shared.state.lock();
        let rec = st
            .buckets
            .get(&req.input.bucket)
            .ok_or_else(no_such_bucket)?;
        Ok(S3Response::new(dto::HeadBucketOutput {
            bucket_region: Some(rec.region.clone()),
            ..Default::default()
        }))
    }

    /// As S3: an empty `LocationConstraint` for us-east-1, else the region.
    async fn get_bucket_location(
        &self,
        req: S3Request<dto::GetBucketLocationInput>,
    ) -> S3Result<S3Response<dto::GetBucketLocationOutput>> {
        self.note(&req, Some(&req.input.bucket));
        let st = self.shared.state.lock();
        let rec = st
            .buckets
            .get(&req.input.bucket)
            .ok_or_else(no_such_bucket)?;
        let location_constraint = (rec.region != DEFAULT_REGION)
            .then(|| dto::BucketLocationConstraint::from(rec.region.clone()));
        Ok(S3Response::new(dto::GetBucketLocationOutput {
            location_constraint,
        }))
    }

    /// Pages as S3 does: `max-buckets` (1..=10000) per page, capped by
    /// [`Faults::list_buckets_page`]; without it, every bucket, unless another parameter is
    /// given (then 10000). The continuation token is opaque (the hex of the last name given).
    async fn list_buckets(
        &self,
        req: S3Request<dto::ListBucketsInput>,
    ) -> S3Result<S3Response<dto::ListBucketsOutput>> {
        self.note(&req, None);
        Shared::bump(&self.shared.counters.list_buckets);
        let input = req.input;
        let any_param = input.continuation_token.is_some()
            || input.prefix.is_some()
            || input.bucket_region.is_some();
        let mut max = match input.max_buckets {
            Some(n) => usize::try_from(n)
                .ok()
                .filter(|n| (1..=MAX_BUCKETS).contains(n))
                .ok_or_else(|| {
                    s3_error!(
                        InvalidArgument,
                        "max-buckets must be an integer between 1 and 10000"
                    )
                })?,
            None if any_param => MAX_BUCKETS,
            None => usize::MAX,
        };
        if let Some(cap) = self.shared.faults.lock().list_buckets_page {
            max = max.min(cap.max(1));
        }
        let after = match input.continuation_token.as_deref() {
            None | Some("") => None,
            Some(token) => Some(unhex(token).ok_or_else(|| {
                s3_error!(
                    InvalidArgument,
                    "The continuation token provided is incorrect"
                )
            })?),
        };
        let prefix = input.prefix.clone().unwrap_or_default();
        let lower = match after {
            Some(after) if after >= prefix => Bound::Excluded(after),
            _ => Bound::Included(prefix.clone()),
        };

        let st = self.shared.state.lock();
        let mut page: Vec<(&String, &BucketRec)> = st
            .buckets
            .range::<String, _>((lower, Bound::Unbounded))
            .take_while(|(name, _)| name.starts_with(&prefix))
            .filter(|(_, b)| input.bucket_region.as_ref().is_none_or(|r| *r == b.region))
            .take(max.saturating_add(1))
            .collect();
        let continuation_token = if page.len() > max {
            page.truncate(max);
            page.last().map(|(name, _)| hex(name.as_bytes()))
        } else {
            None
        };
        let buckets = page
            .into_iter()
            .map(|(name, b)| dto::Bucket {
                name: Some(name.clone()),
                creation_date: Some(ts(b.created)),
                bucket_region: Some(b.region.clone()),
            })
            .collect();
        drop(st);
        Ok(S3Response::new(dto::ListBucketsOutput {
            buckets: Some(buckets),
            continuation_token,
            prefix: input.prefix,
            ..Default::default()
        }))
    }

    /// The tag set, `NoSuchTagSet` when there is none, `AccessDenied` for the buckets of
    /// [`Faults::deny_tagging`].
    async fn get_bucket_tagging(
        &self,
        req: S3Request<dto::GetBucketTaggingInput>,
    ) -> S3Result<S3Response<dto::GetBucketTaggingOutput>> {
        self.note(&req, Some(&req.input.bucket));
        Shared::bump(&self.shared.counters.get_bucket_tagging);
        let bucket = req.input.bucket;
        if self.shared.faults.lock().deny_tagging.contains(&bucket) {
            return Err(s3_error!(AccessDenied, "Access Denied"));
        }
        let st = self.shared.state.lock();
        let rec = st.buckets.get(&bucket).ok_or_else(no_such_bucket)?;
        if rec.tags.is_empty() {
            return Err(s3_error!(NoSuchTagSet, "The TagSet does not exist"));
        }
        let tag_set = rec
            .tags
            .iter()
            .map(|(k, v)| dto::Tag {
                key: Some(k.clone()),
                value: Some(v.clone()),
            })
            .collect();
        Ok(S3Response::new(dto::GetBucketTaggingOutput { tag_set }))
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<dto::CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<dto::CreateMultipartUploadOutput>> {
        self.note(&req, Some(&req.input.bucket));
        Shared::bump(&self.shared.counters.create_multipart_upload);
        let dto::CreateMultipartUploadInput { bucket, key, .. } = req.input;
        let now = self.shared.now();
        let upload_id = self.shared.new_upload_id();
        {
            let mut st = self.shared.state.lock();
            let rec = st.buckets.get_mut(&bucket).ok_or_else(no_such_bucket)?;
            rec.uploads
                .insert((key.clone(), upload_id.clone()), UploadRec::new(now));
        }
        Ok(S3Response::new(dto::CreateMultipartUploadOutput {
            bucket: Some(bucket),
            key: Some(key),
            upload_id: Some(upload_id),
            ..Default::default()
        }))
    }

    async fn upload_part(
        &self,
        req: S3Request<dto::UploadPartInput>,
    ) -> S3Result<S3Response<dto::UploadPartOutput>> {
        self.note(&req, Some(&req.input.bucket));
        Shared::bump(&self.shared.counters.upload_part);
        let dto::UploadPartInput {
            body,
            bucket,
            key,
            part_number,
            upload_id,
            checksum_crc32,
            checksum_crc32c,
            checksum_crc64nvme,
            checksum_sha1,
            checksum_sha256,
            ..
        } = req.input;
        let part_number = u32::try_from(part_number)
            .ok()
            .filter(|n| (1..=10_000).contains(n))
            .ok_or_else(|| {
                s3_error!(
                    InvalidArgument,
                    "Part number must be an integer between 1 and 10000, inclusive"
                )
            })?;
        let id = (key, upload_id);
        {
            let st = self.shared.state.lock();
            let rec = st.buckets.get(&bucket).ok_or_else(no_such_bucket)?;
            if !rec.uploads.contains_key(&id) {
                return Err(no_such_upload());
            }
        }

        // Hash and count the body without keeping it.
        let mut hasher = Md5::new();
        let mut size: u64 = 0;
        if let Some(mut body) = body {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| {
                    let msg = e.to_string();
                    if msg.contains("SignatureMismatch") {
                        s3_error!(SignatureDoesNotMatch, "chunk signature mismatch")
                    } else {
                        s3_error!(IncompleteBody, "cannot read the request body: {msg}")
                    }
                })?;
                hasher.update(&chunk);
                size += chunk.len() as u64;
            }
        }
        let etag = digest16(hasher);

        let now = self.shared.now();
        {
            let mut st = self.shared.state.lock();
            let rec = st.buckets.get_mut(&bucket).ok_or_else(no_such_bucket)?;
            // The upload may have been aborted while the body was streaming.
            let upload = rec.uploads.get_mut(&id).ok_or_else(no_such_upload)?;
            upload.parts.insert(
                part_number,
                PartRec {
                    size,
                    etag,
                    last_modified: now,
                },
            );
        }
        Ok(S3Response::new(dto::UploadPartOutput {
            e_tag: Some(dto::ETag::Strong(hex(&etag))),
            checksum_crc32,
            checksum_crc32c,
            checksum_crc64nvme,
            checksum_sha1,
            checksum_sha256,
            ..Default::default()
        }))
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<dto::ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<dto::ListMultipartUploadsOutput>> {
        self.note(&req, Some(&req.input.bucket));
        Shared::bump(&self.shared.counters.list_multipart_uploads);
        let input = req.input;
        if input.delimiter.as_deref().is_some_and(|d| !d.is_empty()) {
            return Err(s3_error!(
                NotImplemented,
                "delimiter is not supported by this endpoint"
            ));
        }
        let max = page_size(input.max_uploads);
        let url = input
            .encoding_type
            .as_ref()
            .is_some_and(|e| e.as_str() == dto::EncodingType::URL);
        let enc = |s: String| if url { url_encode(&s) } else { s };
        let prefix = input.prefix.clone().unwrap_or_default();
        let key_marker = input.key_marker.clone().filter(|s| !s.is_empty());
        // As in S3, the upload-id marker only counts together with a key marker.
        let upload_id_marker = input
            .upload_id_marker
            .clone()
            .filter(|s| !s.is_empty() && key_marker.is_some());

        // Lower bound of the page: after the markers, and not before the prefix.
        let from_prefix = (prefix.clone(), String::new());
        let lower = match (key_marker, upload_id_marker) {
            // Same key and a later upload id, or any later key.
            (Some(k), Some(u)) => {
                let after = (k, u);
                if from_prefix > after {
                    Bound::Included(from_prefix)
                } else {
                    Bound::Excluded(after)
                }
            }
            // Keys strictly after the marker: the smallest such key is `marker + "\0"`.
            (Some(k), None) => Bound::Included((format!("{k}\0"), String::new()).max(from_prefix)),
            (None, _) => Bound::Included(from_prefix),
        };

        let st = self.shared.state.lock();
        let rec = st.buckets.get(&input.bucket).ok_or_else(no_such_bucket)?;
        let mut page: Vec<(&(String, String), &UploadRec)> = rec
            .uploads
            .range((lower, Bound::Unbounded))
            .take_while(|((key, _), _)| key.starts_with(&prefix))
            .take(max + 1)
            .collect();
        let is_truncated = max > 0 && page.len() > max;
        page.truncate(max);
        let last = page.last().map(|((k, u), _)| (k.clone(), u.clone()));
        let uploads = page
            .into_iter()
            .map(|((key, upload_id), up)| dto::MultipartUpload {
                key: Some(enc(key.clone())),
                upload_id: Some(upload_id.clone()),
                initiated: Some(ts(up.initiated)),
                storage_class: Some(dto::StorageClass::from_static(dto::StorageClass::STANDARD)),
                ..Default::default()
            })
            .collect();
        drop(st);

        let (next_key_marker, next_upload_id_marker) = match last {
            Some((k, u)) => (Some(enc(k)), Some(u)),
            None => (None, None),
        };
        Ok(S3Response::new(dto::ListMultipartUploadsOutput {
            bucket: Some(input.bucket),
            prefix: input.prefix.map(&enc),
            key_marker: Some(enc(input.key_marker.unwrap_or_default())),
            upload_id_marker: Some(input.upload_id_marker.unwrap_or_default()),
            max_uploads: Some(i32::try_from(max).unwrap_or(MAX_PAGE)),
            is_truncated: Some(is_truncated),
            next_key_marker,
            next_upload_id_marker,
            encoding_type: input.encoding_type,
            uploads: Some(uploads),
            ..Default::default()
        }))
    }

    async fn list_parts(
        &self,
        req: S3Request<dto::ListPartsInput>,
    ) -> S3Result<S3Response<dto::ListPartsOutput>> {
        self.note(&req, Some(&req.input.bucket));
        Shared::bump(&self.shared.counters.list_parts);
        let dto::ListPartsInput {
            bucket,
            key,
            upload_id,
            max_parts,
            part_number_marker,
            ..
        } = req.input;
        let max = page_size(max_parts);
        let after = part_number_marker
            .and_then(|m| u32::try_from(m).ok())
            .unwrap_or(0);

        let id = (key, upload_id);
        let st = self.shared.state.lock();
        let rec = st.buckets.get(&bucket).ok_or_else(no_such_bucket)?;
        let upload = rec.uploads.get(&id).ok_or_else(no_such_upload)?;
        let mut page: Vec<(u32, &PartRec)> = upload
            .parts
            .range((Bound::Excluded(after), Bound::Unbounded))
            .take(max + 1)
            .map(|(&n, p)| (n, p))
            .collect();
        let is_truncated = max > 0 && page.len() > max;
        page.truncate(max);
        let next_marker = page.last().and_then(|&(n, _)| i32::try_from(n).ok());
        let parts = page
            .into_iter()
            .map(|(n, p)| dto::Part {
                part_number: i32::try_from(n).ok(),
                size: i64::try_from(p.size).ok(),
                e_tag: Some(dto::ETag::Strong(hex(&p.etag))),
                last_modified: Some(ts(p.last_modified)),
                ..Default::default()
            })
            .collect();
        drop(st);

        let (key, upload_id) = id;
        Ok(S3Response::new(dto::ListPartsOutput {
            bucket: Some(bucket),
            key: Some(key),
            upload_id: Some(upload_id),
            part_number_marker: Some(part_number_marker.unwrap_or(0)),
            next_part_number_marker: next_marker,
            max_parts: Some(i32::try_from(max).unwrap_or(MAX_PAGE)),
            is_truncated: Some(is_truncated),
            parts: Some(parts),
            storage_class: Some(dto::StorageClass::from_static(dto::StorageClass::STANDARD)),
            ..Default::default()
        }))
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<dto::AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<dto::AbortMultipartUploadOutput>> {
        self.note(&req, Some(&req.input.bucket));
        let counters = &self.shared.counters;
        Shared::bump(&counters.abort_multipart_upload);
        let dto::AbortMultipartUploadInput {
            bucket,
            key,
            upload_id,
            ..
        } = req.input;
        let (straggle, never_empty) = {
            let f = self.shared.faults.lock();
            (
                f.stragglers.get(&key).copied(),
                f.never_empty.contains(&key),
            )
        };

        let mut guard = self.shared.state.lock();
        let st = &mut *guard;
        *st.aborts_by_key.entry(key.clone()).or_default() += 1;
        *st.aborts_by_upload_id.entry(upload_id.clone()).or_default() += 1;
        let rec = st.buckets.get_mut(&bucket).ok_or_else(no_such_bucket)?;
        let id = (key, upload_id);
        let upload = rec.uploads.get_mut(&id).ok_or_else(no_such_upload)?;
        if never_empty || straggle.is_some_and(|n| upload.swallowed_aborts < n) {
            upload.swallowed_aborts += 1;
            Shared::bump(&counters.aborts_swallowed);
        } else {
            rec.uploads.remove(&id);
            Shared::bump(&counters.aborts_removed);
        }
        Ok(S3Response::new(dto::AbortMultipartUploadOutput::default()))
    }
}

// ---------------------------------------------------------------------------------------
// HTTP serving and connection-level faults

async fn serve_connection(
    stream: TcpStream,
    shared: Arc<Shared>,
    service: S3Service,
    mut shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let shared_no_date = shared.faults.lock().no_date;
    let reset = Arc::new(AtomicBool::new(false));
    let io = FaultIo {
        io: TokioIo::new(stream),
        reset: Arc::clone(&reset),
    };
    let svc = service_fn(move |req| {
        handle(
            Arc::clone(&shared),
            service.clone(),
            Arc::clone(&reset),
            req,
        )
    });
    let no_date = shared_no_date;
    let conn = http1::Builder::new()
        .auto_date_header(!no_date)
        .serve_connection(io, svc);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        res = conn.as_mut() => {
            if let Err(err) = res {
                tracing::debug!(%err, "s3 endpoint: connection ended with an error");
            }
        }
        () = wait_shutdown(&mut shutdown) => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// Error returned to hyper to drop a connection without answering.
#[derive(Debug)]
struct InjectedReset;

impl std::fmt::Display for InjectedReset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("injected connection reset")
    }
}

impl std::error::Error for InjectedReset {}

async fn handle(
    shared: Arc<Shared>,
    service: S3Service,
    reset: Arc<AtomicBool>,
    mut req: hyper::Request<Incoming>,
) -> Result<HttpResponse, StdError> {
    let slot = shared
        .recording
        .load(Ordering::Relaxed)
        .then(|| shared.log_arrival(&req));
    to_origin_form(&mut req);
    let answer = answer(&shared, service, &reset, req).await;
    if let Some(slot) = slot {
        let status = answer.as_ref().map_or(0, |resp| resp.status().as_u16());
        shared.log_status(slot, status);
    }
    answer
}

/// Answers one request in origin form: the fault plan, then s3s.
async fn answer(
    shared: &Shared,
    service: S3Service,
    reset: &AtomicBool,
    req: hyper::Request<Incoming>,
) -> Result<HttpResponse, StdError> {
    Shared::bump(&shared.counters.requests);
    let amz_date = req
        .headers()
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok());
    // The fault plan reads buckets and partitions from a path-style path.
    let bucket = shared.domain.as_deref().and_then(|domain| {
        let host = req.headers().get(hyper::header::HOST)?.to_str().ok()?;
        host_bucket(host, domain)
    });
    let (latency, injected) = match bucket {
        Some(bucket) => shared.plan(&format!("/{bucket}{}", req.uri().path()), amz_date),
        None => shared.plan(req.uri().path(), amz_date),
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match injected {
        Injected::None => {}
        Injected::Reset => {
            Shared::bump(&shared.counters.reset_faults);
            // The flag makes the socket close with RST once hyper drops the connection,
            // which it does, without writing anything, when the service fails.
            reset.store(true, Ordering::Relaxed);
            return Err(Box::new(InjectedReset));
        }
        Injected::SlowDown | Injected::Throttled => {
            if matches!(injected, Injected::SlowDown) {
                Shared::bump(&shared.counters.slowdown_faults);
            }
            return Ok(error_response(
                S3ErrorCode::SlowDown,
                "Please reduce your request rate.",
            ));
        }
        Injected::AccessDenied => {
            Shared::bump(&shared.counters.access_denied_faults);
            return Ok(error_response(S3ErrorCode::AccessDenied, "Access Denied"));
        }
        Injected::Skewed(clock) => {
            Shared::bump(&shared.counters.skewed_faults);
            let mut resp = error_response(
                S3ErrorCode::RequestTimeTooSkewed,
                "The difference between the request time and the current time is too large.",
            );
            let date = clock.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
            if let Ok(v) = hyper::header::HeaderValue::from_str(&date) {
                resp.headers_mut().insert(hyper::header::DATE, v);
            }
            return Ok(resp);
        }
    }
    service
        .call(req.map(s3s::Body::from))
        .await
        .map_err(StdError::from)
}

fn error_response(code: S3ErrorCode, message: &'static str) -> HttpResponse {
    let status = code
        .status_code()
        .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    S3Error::with_message(code, message)
        .to_http_response()
        .unwrap_or_else(|_| {
            let mut resp = hyper::Response::new(s3s::Body::empty());
            *resp.status_mut() = status;
            resp
        })
}

/// The TCP stream, plus a flag that turns its close into a reset (`SO_LINGER` 0).
struct FaultIo {
    io: TokioIo<TcpStream>,
    reset: Arc<AtomicBool>,
}

impl Drop for FaultIo {
    fn drop(&mut self) {
        if self.reset.load(Ordering::Relaxed) {
            let _ = self.io.inner().set_zero_linger();
        }
    }
}

impl hyper::rt::Read for FaultIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        hyper::rt::Read::poll_read(Pin::new(&mut self.get_mut().io), cx, buf)
    }
}

impl hyper::rt::Write for FaultIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        hyper::rt::Write::poll_write(Pin::new(&mut self.get_mut().io), cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        hyper::rt::Write::poll_flush(Pin::new(&mut self.get_mut().io), cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        hyper::rt::Write::poll_shutdown(Pin::new(&mut self.get_mut().io), cx)
    }

    fn is_write_vectored(&self) -> bool {
        hyper::rt::Write::is_write_vectored(&self.io)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        hyper::rt::Write::poll_write_vectored(Pin::new(&mut self.get_mut().io), cx, bufs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_is_the_bucket_and_the_first_key_segment() {
        assert_eq!(partition_of("/b"), "b");
        assert_eq!(partition_of("/b/"), "b");
        assert_eq!(partition_of("/b/flat-key"), "b");
        assert_eq!(partition_of("/b/p001/x/y.bin"), "b/p001");
        assert_eq!(partition_of("/b//x"), "b/");
    }

    #[test]
    fn a_partition_takes_its_burst_then_its_rate() {
        let shared = Shared::new();
        let t = Throttle {
            rate: 1.0,
            burst: 3.0,
        };
        let taken = (0..10).filter(|_| shared.take_token("b/p", &t)).count();
        assert_eq!(taken, 3, "the burst, then nothing within the same instant");
        assert!(
            shared.take_token("b/q", &t),
            "another partition has its own bucket"
        );
    }

    #[test]
    fn a_continuation_token_decodes_only_from_hex() {
        assert_eq!(unhex(&hex(b"bucket-9")).as_deref(), Some("bucket-9"));
        assert_eq!(unhex("").as_deref(), Some(""));
        for bad in ["abc", "zz", "+f", "ff"] {
            assert_eq!(unhex(bad), None, "{bad:?}");
        }
    }

    // -----------------------------------------------------------------------------------
    // Through real HTTP: a minimal SigV4 signer (GET and HEAD, empty bodies), so the custom
    // S3Auth and what s3s hands the operations are tested as a client meets them.

    const AK: &str = "AKIAS3MEMUNITTEST001";
    const SK: &str = "unit-test-secret";
    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn sha256(data: &[u8]) -> [u8; 32] {
        <s3s::crypto::Sha256 as s3s::crypto::Checksum>::checksum(data)
    }

    fn hmac(key: &[u8], msg: &[u8]) -> [u8; 32] {
        let mut k = [0u8; 64];
        if key.len() > 64 {
            k[..32].copy_from_slice(&sha256(key));
        } else {
            k[..key.len()].copy_from_slice(key);
        }
        let mut inner: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
        inner.extend_from_slice(msg);
        let mut outer: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
        outer.extend_from_slice(&sha256(&inner));
        sha256(&outer)
    }

    /// AWS URI encoding of a query component: everything but unreserved characters.
    fn enc(s: &str) -> String {
        url_encode(s).replace('/', "%2F")
    }

    /// Who signs a request, and for which region.
    struct Signer<'a> {
        access_key: &'a str,
        secret_key: &'a str,
        region: &'a str,
        token: Option<&'a str>,
    }

    const START_KEY: Signer<'static> = Signer {
        access_key: AK,
        secret_key: SK,
        region: "us-east-1",
        token: None,
    };

    struct Reply {
        status: u16,
        head: String,
        body: String,
    }

    impl Reply {
        fn header(&self, name: &str) -> Option<&str> {
            self.head.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim())
            })
        }

        /// Texts of every `<tag>` element of the body, in order.
        fn all(&self, tag: &str) -> Vec<String> {
            let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
            self.body
                .split(&open)
                .skip(1)
                .filter_map(|s| s.split_once(&close).map(|(v, _)| v.to_owned()))
                .collect()
        }
    }

    /// Sends a signed request with an empty body on a new connection and reads the reply.
    async fn send(
        ep: &Endpoint,
        who: &Signer<'_>,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
    ) -> Reply {
        let host = ep.addr().to_string();
        send_via(ep, who, &host, Form::Origin, method, path, query).await
    }

    /// The request target's form.
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Form {
        /// `/path?query`.
        Origin,
        /// `http://{host}/path?query` with an (unsigned) `Proxy-Authorization`, as a client
        /// sends it to its HTTP proxy.
        Proxy,
    }

    /// [`send`] with this `Host` header (signed), in this form, still to the endpoint's
    /// address.
    async fn send_via(
        ep: &Endpoint,
        who: &Signer<'_>,
        host: &str,
        form: Form,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
    ) -> Reply {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

        let host = host.to_owned();
        let now = Utc::now();
        let (amz_date, date) = (
            now.format("%Y%m%dT%H%M%SZ").to_string(),
            now.format("%Y%m%d").to_string(),
        );
        let mut pairs: Vec<(String, String)> =
            query.iter().map(|&(k, v)| (enc(k), enc(v))).collect();
        pairs.sort();
        let query = pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let mut headers = vec![
            ("host", host.clone()),
            ("x-amz-content-sha256", EMPTY_SHA256.to_owned()),
            ("x-amz-date", amz_date.clone()),
        ];
        if let Some(token) = who.token {
            headers.push(("x-amz-security-token", token.to_owned()));
        }
        let signed = headers
            .iter()
            .map(|(k, _)| *k)
            .collect::<Vec<_>>()
            .join(";");
        let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
        let canonical =
            format!("{method}\n{path}\n{query}\n{canonical_headers}\n{signed}\n{EMPTY_SHA256}");
        let scope = format!("{date}/{}/s3/aws4_request", who.region);
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
            hex(&sha256(canonical.as_bytes()))
        );
        let mut key = hmac(
            format!("AWS4{}", who.secret_key).as_bytes(),
            date.as_bytes(),
        );
        for part in [who.region, "s3", "aws4_request"] {
            key = hmac(&key, part.as_bytes());
        }
        let signature = hex(&hmac(&key, to_sign.as_bytes()));

        let mut target = if query.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{query}")
        };
        if form == Form::Proxy {
            target = format!("http://{host}{target}");
        }
        let mut request = format!("{method} {target} HTTP/1.1\r\n");
        for (k, v) in &headers {
            let _ = write!(request, "{k}: {v}\r\n");
        }
        if form == Form::Proxy {
            request.push_str("proxy-authorization: Basic dXNlcjpwYXNz\r\n");
        }
        let _ = write!(
            request,
            "authorization: AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, Signature={signature}\r\nconnection: close\r\n\r\n",
            who.access_key
        );
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
            head: head.to_owned(),
            body: body.to_owned(),
        }
    }

    async fn started() -> Endpoint {
        Endpoint::start(AK, SK).await.expect("endpoint")
    }

    /// Follows continuation tokens from the first page: the names listed, page by page.
    async fn list_all(ep: &Endpoint, max: Option<&str>) -> Vec<Vec<String>> {
        let mut pages = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut query = Vec::new();
            if let Some(m) = max {
                query.push(("max-buckets", m));
            }
            if let Some(t) = &token {
                query.push(("continuation-token", t.as_str()));
            }
            let reply = send(ep, &START_KEY, "GET", "/", &query).await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            pages.push(reply.all("Name"));
            token = reply.all("ContinuationToken").into_iter().next();
            if token.is_none() {
                return pages;
            }
            assert!(pages.len() < 100, "the listing never ends");
        }
    }

    #[tokio::test]
    async fn list_buckets_pages_return_every_bucket_exactly_once() {
        // Seven buckets; pages of two asked, then pages capped at three by the fault plan.
        let ep = started().await;
        let names: Vec<String> = (0..7).map(|i| format!("bucket-{i}")).collect();
        for n in &names {
            ep.create_bucket(n);
        }

        let pages = list_all(&ep, Some("2")).await;
        assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 2, 1]);
        assert_eq!(pages.concat(), names);

        ep.update_faults(|f| f.list_buckets_page = Some(3));
        let pages = list_all(&ep, Some("1000")).await;
        assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 1]);
        assert_eq!(pages.concat(), names);
        let pages = list_all(&ep, None).await;
        assert_eq!(
            pages.concat(),
            names,
            "no max-buckets: still every bucket, in pages"
        );
        assert_eq!(pages.len(), 3);

        ep.set_faults(Faults::default());
        let pages = list_all(&ep, None).await;
        assert_eq!(pages.len(), 1, "no max-buckets: all at once");
        assert_eq!(pages.concat(), names);
        assert_eq!(ep.stats().list_buckets, 4 + 3 + 3 + 1);
    }

    #[tokio::test]
    async fn list_buckets_filters_by_prefix_and_shows_each_region() {
        // Buckets in two regions; a prefix listing, a region listing, a bad argument.
        let ep = started().await;
        ep.create_bucket("logs-a");
        ep.create_bucket_in("logs-b", "eu-west-1");
        ep.create_bucket("media");

        let reply = send(&ep, &START_KEY, "GET", "/", &[("prefix", "logs-")]).await;
        assert_eq!(reply.all("Name"), ["logs-a", "logs-b"]);
        assert_eq!(reply.all("BucketRegion"), ["us-east-1", "eu-west-1"]);
        assert_eq!(reply.all("Prefix"), ["logs-"]);
        assert!(reply.all("ContinuationToken").is_empty());

        let reply = send(
            &ep,
            &START_KEY,
            "GET",
            "/",
            &[("bucket-region", "us-east-1")],
        )
        .await;
        assert_eq!(reply.all("Name"), ["logs-a", "media"]);

        for bad in [("max-buckets", "0"), ("continuation-token", "not-hex")] {
            let reply = send(&ep, &START_KEY, "GET", "/", &[bad]).await;
            assert_eq!(reply.status, 400, "{bad:?}");
            assert_eq!(reply.all("Code"), ["InvalidArgument"], "{bad:?}");
        }
    }

    #[tokio::test]
    async fn head_bucket_answers_its_region_and_signing_regions_are_recorded() {
        // A bucket in eu-west-1 reached with a us-east-1 signature, then its own region's.
        let ep = started().await;
        ep.create_bucket_in("eu-bucket", "eu-west-1");

        let reply = send(&ep, &START_KEY, "HEAD", "/eu-bucket", &[]).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("x-amz-bucket-region"), Some("eu-west-1"));
        assert_eq!(
            ep.signing_regions("eu-bucket"),
            BTreeSet::from(["us-east-1".to_owned()])
        );

        let eu = Signer {
            region: "eu-west-1",
            ..START_KEY
        };
        let reply = send(&ep, &eu, "GET", "/eu-bucket", &[("location", "")]).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert!(
            reply.body.contains(">eu-west-1</LocationConstraint>"),
            "{}",
            reply.body
        );
        assert_eq!(
            ep.signing_regions("eu-bucket"),
            BTreeSet::from(["eu-west-1".to_owned(), "us-east-1".to_owned()])
        );
        assert!(ep.signing_regions("other").is_empty());

        ep.reset_stats();
        assert!(ep.signing_regions("eu-bucket").is_empty());
    }

    #[tokio::test]
    async fn bucket_tagging_answers_the_tags_none_denied_or_no_bucket() {
        // One tagged bucket, one untagged, one denied, one missing.
        let ep = started().await;
        for b in ["tagged", "plain", "secret"] {
            ep.create_bucket(b);
        }
        ep.set_bucket_tags("tagged", &[("team", "data"), ("janitor", "on")]);
        ep.set_bucket_tags("secret", &[("team", "x")]);
        ep.update_faults(|f| {
            f.deny_tagging.insert("secret".to_owned());
        });

        let reply = send(&ep, &START_KEY, "GET", "/tagged", &[("tagging", "")]).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.all("Key"), ["team", "janitor"]);
        assert_eq!(reply.all("Value"), ["data", "on"]);

        let cases = [
            ("/plain", 404, "NoSuchTagSet"),
            ("/secret", 403, "AccessDenied"),
            ("/missing", 404, "NoSuchBucket"),
        ];
        for (path, status, code) in cases {
            let reply = send(&ep, &START_KEY, "GET", path, &[("tagging", "")]).await;
            assert_eq!(
                (reply.status, reply.all("Code")),
                (status, vec![code.to_owned()])
            );
        }

        ep.set_bucket_tags("tagged", &[]);
        let reply = send(&ep, &START_KEY, "GET", "/tagged", &[("tagging", "")]).await;
        assert_eq!(
            reply.all("Code"),
            ["NoSuchTagSet"],
            "an empty set removes the tags"
        );
        assert_eq!(ep.stats().get_bucket_tagging, 5);
    }

    #[tokio::test]
    async fn a_deleted_bucket_answers_no_such_bucket_with_its_uploads_gone() {
        // A bucket with uploads deleted from the test between two requests.
        let ep = started().await;
        ep.create_bucket("gone");
        ep.seed_upload("gone", "k", Utc::now(), &[(1, 10)]);
        assert_eq!(
            send(&ep, &START_KEY, "HEAD", "/gone", &[]).await.status,
            200
        );

        assert!(ep.delete_bucket("gone"));
        assert!(!ep.delete_bucket("gone"));
        assert_eq!(ep.upload_count("gone"), 0);
        assert!(ep.buckets().is_empty());
        assert_eq!(
            send(&ep, &START_KEY, "HEAD", "/gone", &[]).await.status,
            404
        );
        let reply = send(&ep, &START_KEY, "GET", "/gone", &[("uploads", "")]).await;
        assert_eq!(reply.all("Code"), ["NoSuchBucket"]);
    }

    #[tokio::test]
    async fn added_and_looked_up_keys_are_accepted_and_counted_per_key() {
        // An unknown key, then the same key added; a temporary key (with a session token)
        // found by the lookup once, then from the cache; a wrong secret for a found key.
        let ep = started().await;
        let other = Signer {
            access_key: "AKIAOTHER",
            secret_key: "other-secret",
            ..START_KEY
        };
        let reply = send(&ep, &other, "GET", "/", &[]).await;
        assert_eq!(
            (reply.status, reply.all("Code")),
            (403, vec!["NotSignedUp".to_owned()])
        );
        ep.add_key("AKIAOTHER", "other-secret");
        assert_eq!(send(&ep, &other, "GET", "/", &[]).await.status, 200);

        let asked = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&asked);
        ep.set_key_lookup(move |key| {
            counter.fetch_add(1, Ordering::Relaxed);
            (key == "ASIATEMP").then(|| "temp-secret".to_owned())
        });
        let temp = Signer {
            access_key: "ASIATEMP",
            secret_key: "temp-secret",
            region: "eu-west-1",
            token: Some("FQoGZXIvYXdzEBYaD+some/session=token"),
        };
        for _ in 0..2 {
            let reply = send(&ep, &temp, "GET", "/", &[]).await;
            assert_eq!(reply.status, 200, "{}", reply.body);
        }
        assert_eq!(asked.load(Ordering::Relaxed), 1, "a found secret is kept");

        let forged = Signer {
            secret_key: "guess",
            ..temp
        };
        let reply = send(&ep, &forged, "GET", "/", &[]).await;
        assert_eq!(reply.all("Code"), ["SignatureDoesNotMatch"]);
        let unknown = Signer {
            access_key: "ASIAUNKNOWN",
            ..temp
        };
        let reply = send(&ep, &unknown, "GET", "/", &[]).await;
        assert_eq!(reply.all("Code"), ["NotSignedUp"]);
        assert_eq!(asked.load(Ordering::Relaxed), 2, "a missing key is asked");

        assert_eq!(send(&ep, &START_KEY, "GET", "/", &[]).await.status, 200);
        let stats = ep.stats();
        assert_eq!(
            stats.requests_by_access_key,
            BTreeMap::from([
                (AK.to_owned(), 1),
                ("AKIAOTHER".to_owned(), 1),
                ("ASIATEMP".to_owned(), 2),
            ]),
            "only authenticated requests count"
        );
        assert_eq!(stats.requests_for_access_key("ASIATEMP"), 2);
        assert_eq!(stats.requests_for_access_key("ASIAUNKNOWN"), 0);
    }

    // -----------------------------------------------------------------------------------
    // Virtual-hosted style, absolute-form targets, the request log

    const REPORTS: &str = "reports-123456789012";

    #[test]
    fn a_virtual_host_is_a_bucket_under_the_base_domain_whatever_the_port() {
        let cases = [
            ("reports-123456789012.s3.test:40000", Some(REPORTS)),
            ("reports-123456789012.s3.test", Some(REPORTS)),
            ("a.b.S3.Test:1", Some("a.b")),
            ("s3.test:40000", None),
            ("S3.TEST", None),
            (".s3.test", None),
            ("xs3.test:80", None),
            ("s3.test.example:80", None),
            ("127.0.0.1:40000", None),
            ("[::1]:40000", None),
            ("localhost:40000", None),
            ("", None),
        ];
        for (host, bucket) in cases {
            assert_eq!(host_bucket(host, "s3.test"), bucket, "{host:?}");
        }
        assert_eq!(base_domain("S3.Test").expect("a domain"), "s3.test");
        for bad in ["s3.test:80", "s3..test", "", "s3 test"] {
            assert!(base_domain(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_credential_scope_is_read_from_the_authorization_header() {
        let cases = [
            (
                "AWS4-HMAC-SHA256 Credential=AK1/20250101/eu-west-1/s3/aws4_request, SignedHeaders=host, Signature=00",
                ("AK1", "eu-west-1", "s3"),
            ),
            (
                "AWS4-HMAC-SHA256 SignedHeaders=host,Credential=AK2/20250101/us-east-1/s3-outposts/aws4_request,Signature=00",
                ("AK2", "us-east-1", "s3-outposts"),
            ),
            ("AWS AK3:c2lnbmF0dXJl", ("AK3", "", "")),
            ("AWS4-HMAC-SHA256 Credential=AK4", ("AK4", "", "")),
            ("Bearer token", ("", "", "")),
            ("", ("", "", "")),
        ];
        for (header, scope) in cases {
            assert_eq!(credential_scope(header), scope, "{header:?}");
        }
    }

    #[test]
    fn an_absolute_form_target_becomes_origin_form_and_keeps_its_host() {
        let mut req = hyper::Request::get("http://b.s3.test:4000/k/x%20y?uploadId=1&a=%2F")
            .header("host", "b.s3.test:4000")
            .body(())
            .expect("a request");
        to_origin_form(&mut req);
        assert_eq!(req.uri().to_string(), "/k/x%20y?uploadId=1&a=%2F");
        assert_eq!(req.headers()["host"], "b.s3.test:4000");

        let mut req = hyper::Request::get("http://b.s3.test:4000")
            .body(())
            .expect("a request");
        to_origin_form(&mut req);
        assert_eq!(req.uri().to_string(), "/");
        assert_eq!(
            req.headers()["host"],
            "b.s3.test:4000",
            "taken from the target"
        );

        let mut req = hyper::Request::get("/b?uploads")
            .body(())
            .expect("a request");
        to_origin_form(&mut req);
        assert_eq!(req.uri().to_string(), "/b?uploads");
        assert!(!req.headers().contains_key("host"));
    }

    #[tokio::test]
    async fn virtual_hosted_requests_through_a_proxy_target_are_served_and_logged() {
        // A bucket reached by its virtual host in absolute form (as through a proxy) and in
        // origin form, the same bucket path style under the domain and by IP, then a missing
        // bucket, a forged signature and a faulted bucket, all by virtual host.
        let ep = Endpoint::start_with_domain(AK, SK, "S3.Test")
            .await
            .expect("endpoint");
        let port = ep.addr().port();
        assert_eq!(ep.domain(), Some("s3.test"));
        assert_eq!(ep.domain_url(), Some(format!("http://s3.test:{port}")));
        let key = "daily/2024-01-01.csv";
        let upload_id = ep.seed_upload(REPORTS, key, Utc::now(), &[(1, 5)]);
        ep.create_bucket("denied-bucket");
        ep.record_requests(true);

        let vhost = format!("{REPORTS}.s3.test:{port}");
        let uploads = [("uploads", "")];
        let reply = send_via(&ep, &START_KEY, &vhost, Form::Proxy, "GET", "/", &uploads).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.all("Bucket"), [REPORTS]);
        assert_eq!(reply.all("Key"), [key]);
        assert_eq!(reply.all("UploadId"), [upload_id.as_str()]);

        let reply = send_via(&ep, &START_KEY, &vhost, Form::Origin, "GET", "/", &uploads).await;
        assert_eq!(
            reply.all("UploadId"),
            [upload_id.as_str()],
            "{}",
            reply.body
        );
        let object = format!("/{key}");
        let by_id = [("uploadId", upload_id.as_str())];
        let reply = send_via(&ep, &START_KEY, &vhost, Form::Proxy, "GET", &object, &by_id).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.all("PartNumber"), ["1"]);

        let bucket_path = format!("/{REPORTS}");
        let domain_host = format!("s3.test:{port}");
        let ip_host = ep.addr().to_string();
        for (host, form) in [(&domain_host, Form::Proxy), (&ip_host, Form::Origin)] {
            let reply = send_via(&ep, &START_KEY, host, form, "GET", &bucket_path, &uploads).await;
            assert_eq!(reply.all("UploadId"), [upload_id.as_str()], "{host}");
        }

        let eu = Signer {
            region: "eu-west-1",
            ..START_KEY
        };
        let reply = send_via(&ep, &eu, &vhost, Form::Proxy, "HEAD", "/", &[]).await;
        assert_eq!(reply.status, 200);
        assert_eq!(
            ep.signing_regions(REPORTS),
            BTreeSet::from(["eu-west-1".to_owned(), "us-east-1".to_owned()])
        );

        let missing = format!("missing-bucket.s3.test:{port}");
        let reply = send_via(&ep, &START_KEY, &missing, Form::Proxy, "GET", "/", &uploads).await;
        assert_eq!(reply.all("Code"), ["NoSuchBucket"]);
        let forged = Signer {
            secret_key: "guess",
            ..START_KEY
        };
        let reply = send_via(&ep, &forged, &vhost, Form::Proxy, "GET", "/", &uploads).await;
        assert_eq!(reply.all("Code"), ["SignatureDoesNotMatch"]);
        ep.update_faults(|f| {
            f.fail_buckets.insert("denied-bucket".to_owned());
        });
        let denied = format!("denied-bucket.s3.test:{port}");
        let reply = send_via(&ep, &START_KEY, &denied, Form::Proxy, "GET", "/", &uploads).await;
        assert_eq!(reply.all("Code"), ["AccessDenied"]);
        assert_eq!(
            ep.stats().access_denied_faults,
            1,
            "the plan sees the bucket"
        );

        let log = ep.requests();
        assert_eq!(
            log[0],
            RequestRecord {
                method: "GET".to_owned(),
                host: vhost.clone(),
                target: format!("http://{vhost}/?uploads="),
                path: "/".to_owned(),
                query: "uploads=".to_owned(),
                access_key: AK.to_owned(),
                region: "us-east-1".to_owned(),
                service: "s3".to_owned(),
                status: 200,
            }
        );
        let seen: Vec<(&str, &str, &str, u16)> = log
            .iter()
            .map(|r| {
                (
                    r.host.as_str(),
                    r.target.as_str(),
                    r.region.as_str(),
                    r.status,
                )
            })
            .collect();
        let origin_target = format!("{bucket_path}?uploads=");
        let expected: Vec<(String, String, &str, u16)> = vec![
            (
                vhost.clone(),
                format!("http://{vhost}/?uploads="),
                "us-east-1",
                200,
            ),
            (vhost.clone(), "/?uploads=".to_owned(), "us-east-1", 200),
            (
                vhost.clone(),
                format!("http://{vhost}{object}?uploadId={upload_id}"),
                "us-east-1",
                200,
            ),
            (
                domain_host.clone(),
                format!("http://{domain_host}{origin_target}"),
                "us-east-1",
                200,
            ),
            (ip_host.clone(), origin_target.clone(), "us-east-1", 200),
            (vhost.clone(), format!("http://{vhost}/"), "eu-west-1", 200),
            (
                missing.clone(),
                format!("http://{missing}/?uploads="),
                "us-east-1",
                404,
            ),
            (
                vhost.clone(),
                format!("http://{vhost}/?uploads="),
                "us-east-1",
                403,
            ),
            (
                denied.clone(),
                format!("http://{denied}/?uploads="),
                "us-east-1",
                403,
            ),
        ];
        let expected: Vec<(&str, &str, &str, u16)> = expected
            .iter()
            .map(|(h, t, r, s)| (h.as_str(), t.as_str(), *r, *s))
            .collect();
        assert_eq!(seen, expected);
        assert!(log.iter().all(|r| r.service == "s3" && r.access_key == AK));
        assert_eq!(log[5].method, "HEAD");
        assert_eq!(
            (log[2].path.as_str(), log[2].query.as_str()),
            (object.as_str(), format!("uploadId={upload_id}").as_str())
        );

        ep.reset_requests();
        assert!(ep.requests().is_empty());
        ep.record_requests(false);
        let reply = send_via(&ep, &START_KEY, &vhost, Form::Proxy, "GET", "/", &uploads).await;
        assert_eq!(reply.status, 200);
        assert!(ep.requests().is_empty(), "recording is off again");
    }

    #[tokio::test]
    async fn a_path_style_endpoint_serves_proxy_targets_and_logs_only_when_asked() {
        // Without a domain: path style by IP as before, in origin then absolute form; the log
        // starts off; a faulted request is logged with its status.
        let ep = started().await;
        assert_eq!((ep.domain(), ep.domain_url()), (None, None));
        let upload_id = ep.seed_upload(REPORTS, "k", Utc::now(), &[]);
        let host = ep.addr().to_string();
        let path = format!("/{REPORTS}");
        let uploads = [("uploads", "")];
        let reply = send(&ep, &START_KEY, "GET", &path, &uploads).await;
        assert_eq!(
            reply.all("UploadId"),
            [upload_id.as_str()],
            "{}",
            reply.body
        );
        assert!(ep.requests().is_empty(), "recording starts off");

        ep.record_requests(true);
        let reply = send_via(&ep, &START_KEY, &host, Form::Proxy, "GET", &path, &uploads).await;
        assert_eq!(
            reply.all("UploadId"),
            [upload_id.as_str()],
            "{}",
            reply.body
        );
        ep.update_faults(|f| f.slowdown_fraction = 1.0);
        let reply = send(&ep, &START_KEY, "GET", &path, &uploads).await;
        assert_eq!(reply.status, 503);

        let log = ep.requests();
        let seen: Vec<(&str, u16)> = log.iter().map(|r| (r.target.as_str(), r.status)).collect();
        let absolute = format!("http://{host}{path}?uploads=");
        let origin = format!("{path}?uploads=");
        assert_eq!(seen, [(absolute.as_str(), 200), (origin.as_str(), 503)]);
        assert!(
            log.iter()
                .all(|r| r.host == host && r.region == "us-east-1")
        );
        assert_eq!(ep.stats().requests, 3);
    }
}
