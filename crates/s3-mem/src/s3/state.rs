//! The S3 endpoint's state: buckets and their uploads behind one mutex, the keys it accepts,
//! its counters, clock, random numbers and request log, and the byte helpers its records use.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::SystemTime;

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
    pub(super) rng: AtomicU64,
    /// Base domain of virtual-hosted-style requests (lowercase); see
    /// [`Endpoint::start_with_domain`].
    pub(super) domain: Option<String>,
    /// Whether requests are logged; see [`Endpoint::record_requests`].
    pub(super) recording: AtomicBool,
    pub(super) log: Mutex<RequestLog>,
}

/// See [`Endpoint::requests`].
#[derive(Default)]
pub(super) struct RequestLog {
    pub(super) records: Vec<RequestRecord>,
    /// Bumped by [`Endpoint::reset_requests`], so a request in flight across a reset does
    /// not fill in the status of another.
    pub(super) epoch: u64,
}

/// Where a request in flight was recorded: the log's epoch and its index.
pub(super) type LogSlot = (u64, usize);

impl Shared {
    pub(super) fn new() -> Self {
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
    pub(super) fn log_arrival<B>(&self, req: &hyper::Request<B>) -> LogSlot {
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
    pub(super) fn log_status(&self, (epoch, index): LogSlot, status: u16) {
        let mut log = self.log.lock();
        if log.epoch == epoch
            && let Some(record) = log.records.get_mut(index)
        {
            record.status = status;
        }
    }

    pub(super) fn now(&self) -> DateTime<Utc> {
        let ms = self.clock_offset_ms.load(Ordering::Relaxed);
        let now = Utc::now();
        let shifted = TimeDelta::try_milliseconds(ms).and_then(|d| now.checked_add_signed(d));
        clamp_time(shifted.unwrap_or(now))
    }

    /// `SplitMix64` over an atomic counter: cheap, lock-free, good enough for sampling.
    pub(super) fn next_u64(&self) -> u64 {
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
    pub(super) fn next_f64(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let v = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        v
    }

    /// 32 lowercase hex chars: a fixed-width creation counter then a random suffix, so
    /// ids are URL-safe, opaque, and sort in creation order.
    pub(super) fn new_upload_id(&self) -> String {
        let n = self.next_upload.fetch_add(1, Ordering::Relaxed);
        format!("{n:016x}{:016x}", self.next_u64())
    }

    pub(super) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Keeps timestamps within what every timestamp renderer accepts.
pub(super) fn clamp_time(t: DateTime<Utc>) -> DateTime<Utc> {
    let lo = DateTime::<Utc>::UNIX_EPOCH;
    let hi = DateTime::from_timestamp(253_402_300_799, 0).unwrap_or(t); // 9999-12-31T23:59:59Z
    t.clamp(lo, hi)
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

pub(super) fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The bytes of lowercase or uppercase hex `s`, as UTF-8; `None` if it is not that.
pub(super) fn unhex(s: &str) -> Option<String> {
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let bytes = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(bytes).ok()
}
