//! The S3 endpoint's state: buckets and their uploads behind one mutex, the keys it accepts,
//! its counters, clock, random numbers and request log, and the digests its records use.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use chrono::{DateTime, TimeDelta, Utc};
use md5::{Digest, Md5};
use parking_lot::Mutex;
use s3s::S3Result;
use s3s::auth::{S3Auth, SecretKey};
use s3s::s3_error;

#[allow(unused_imports)] // doc links
use super::Endpoint;
use super::addressing::credential_scope;
use super::{Faults, KeyLookup, RequestRecord};
use crate::log::{RequestLog, Slot};
use crate::serve::{Rng, clamp_time};
use crate::sigv4;
pub(super) use crate::sigv4::hex;

pub(super) struct PartRec {
    pub(super) size: u64,
    pub(super) etag: [u8; 16],
    pub(super) last_modified: DateTime<Utc>,
}

pub(super) struct UploadRec {
    pub(super) initiated: DateTime<Utc>,
    pub(super) parts: BTreeMap<u32, PartRec>,
    /// Aborts answered 204 without removing this upload.
    pub(super) swallowed_aborts: u32,
}

impl UploadRec {
    pub(super) fn new(initiated: DateTime<Utc>) -> Self {
        Self {
            initiated,
            parts: BTreeMap::new(),
            swallowed_aborts: 0,
        }
    }
}

pub(super) struct BucketRec {
    pub(super) created: DateTime<Utc>,
    pub(super) region: String,
    /// The tag set, in the order set; empty means none (`NoSuchTagSet`).
    pub(super) tags: Vec<(String, String)>,
    /// Keyed by (object key, upload id): listing order, and range queries for markers.
    pub(super) uploads: BTreeMap<(String, String), UploadRec>,
}

impl BucketRec {
    pub(super) fn new(created: DateTime<Utc>, region: &str) -> Self {
        Self {
            created,
            region: region.to_owned(),
            tags: Vec::new(),
            uploads: BTreeMap::new(),
        }
    }
}

#[derive(Default)]
pub(super) struct State {
    pub(super) buckets: BTreeMap<String, BucketRec>,
    pub(super) aborts_by_key: HashMap<String, u64>,
    pub(super) aborts_by_upload_id: HashMap<String, u64>,
    pub(super) requests_by_access_key: BTreeMap<String, u64>,
    /// Signing regions seen per bucket name; see [`Endpoint::signing_regions`].
    pub(super) signing_regions: BTreeMap<String, BTreeSet<String>>,
}

/// The secrets the endpoint knows and the lookup for the others; shared with [`MemAuth`].
#[derive(Default)]
pub(super) struct Keys {
    pub(super) secrets: Mutex<HashMap<String, String>>,
    pub(super) lookup: Mutex<Option<KeyLookup>>,
}

/// `SigV4` secrets for s3s: like `SimpleAuth`, plus keys added at runtime and the lookup.
pub(super) struct MemAuth {
    pub(super) keys: Arc<Keys>,
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
pub(super) struct Counters {
    pub(super) requests: AtomicU64,
    pub(super) create_multipart_upload: AtomicU64,
    pub(super) upload_part: AtomicU64,
    pub(super) list_multipart_uploads: AtomicU64,
    pub(super) list_parts: AtomicU64,
    pub(super) abort_multipart_upload: AtomicU64,
    pub(super) aborts_removed: AtomicU64,
    pub(super) aborts_swallowed: AtomicU64,
    pub(super) slowdown_faults: AtomicU64,
    pub(super) reset_faults: AtomicU64,
    pub(super) access_denied_faults: AtomicU64,
    pub(super) skewed_faults: AtomicU64,
    pub(super) throttled: AtomicU64,
    pub(super) throttle_admitted: AtomicU64,
    pub(super) list_buckets: AtomicU64,
    pub(super) get_bucket_tagging: AtomicU64,
}

pub struct Shared {
    pub(super) state: Mutex<State>,
    pub(super) keys: Arc<Keys>,
    pub(super) faults: Mutex<Faults>,
    /// Tokens left per partition of [`Faults::throttle`], and when they were counted.
    pub(super) tokens: Mutex<HashMap<String, (f64, std::time::Instant)>>,
    pub(super) counters: Counters,
    pub(super) clock_offset_ms: AtomicI64,
    pub(super) next_upload: AtomicU64,
    pub(super) rng: Rng,
    /// Base domain of virtual-hosted-style requests (lowercase); see
    /// [`Endpoint::start_with_domain`].
    pub(super) domain: Option<String>,
    /// Whether requests are logged; see [`Endpoint::record_requests`].
    pub(super) recording: AtomicBool,
    pub(super) log: Mutex<RequestLog<RequestRecord>>,
}

impl Shared {
    pub(super) fn new() -> Self {
        Self {
            state: Mutex::new(State::default()),
            keys: Arc::new(Keys::default()),
            faults: Mutex::new(Faults::default()),
            tokens: Mutex::new(HashMap::new()),
            counters: Counters::default(),
            clock_offset_ms: AtomicI64::new(0),
            next_upload: AtomicU64::new(1),
            rng: Rng::new(),
            domain: None,
            recording: AtomicBool::new(false),
            log: Mutex::new(RequestLog::default()),
        }
    }

    /// Records a request on arrival (target as sent), with no status yet.
    pub(super) fn log_arrival<B>(&self, req: &hyper::Request<B>) -> Slot {
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
        self.log.lock().push(record)
    }

    /// Fills in the status of a request recorded by [`Shared::log_arrival`].
    pub(super) fn log_status(&self, slot: Slot, status: u16) {
        if let Some(record) = self.log.lock().get_mut(slot) {
            record.status = status;
        }
    }

    pub(super) fn now(&self) -> DateTime<Utc> {
        let ms = self.clock_offset_ms.load(Ordering::Relaxed);
        let now = Utc::now();
        let shifted = TimeDelta::try_milliseconds(ms).and_then(|d| now.checked_add_signed(d));
        clamp_time(shifted.unwrap_or(now))
    }

    /// 32 lowercase hex chars: a fixed-width creation counter then a random suffix, so
    /// ids are URL-safe, opaque, and sort in creation order.
    pub(super) fn new_upload_id(&self) -> String {
        let n = self.next_upload.fetch_add(1, Ordering::Relaxed);
        format!("{n:016x}{:016x}", self.rng.next_u64())
    }

    pub(super) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

pub(super) fn md5_of(data: &[u8]) -> [u8; 16] {
    let mut hasher = Md5::new();
    hasher.update(data);
    digest16(hasher)
}

pub(super) fn digest16(hasher: Md5) -> [u8; 16] {
    let out = hasher.finalize();
    let mut etag = [0u8; 16];
    for (dst, src) in etag.iter_mut().zip(out.iter()) {
        *dst = *src;
    }
    etag
}

/// The bytes of lowercase or uppercase hex `s`, as UTF-8; `None` if it is not that.
pub(super) fn unhex(s: &str) -> Option<String> {
    // `sigv4::unhex` alone would take a sign (`+f`).
    if !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    String::from_utf8(sigv4::unhex(s)?).ok()
}
