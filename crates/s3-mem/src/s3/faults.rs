//! The S3 endpoint's fault plan: what it is ([`Faults`], [`Throttle`]) and how one request's
//! fault is decided (the random draws, the token bucket per prefix partition, the denied
//! buckets and the skewed clock), before the request reaches s3s.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::addressing::bucket_of;
use super::state::Shared;
#[allow(unused_imports)] // doc links
use super::{Endpoint, Stats};
use crate::faults::{AbortFate, FaultPlan, fate};

/// Fault plan applied to requests; change it at runtime with [`Endpoint::set_faults`].
///
/// The default plan injects nothing. Faults only apply while set, so a test seeds its
/// scene first and then sets the plan.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Object key → `N`: the first `N` aborts of its uploads are swallowed, the upload left
    /// as it was ([`crate::faults`]' `stragglers`).
    pub stragglers: HashMap<String, u32>,
    /// Object keys whose uploads no abort removes ([`crate::faults`]' `never_empty`).
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

impl FaultPlan for Faults {
    fn latency(&self) -> Duration {
        self.latency
    }

    fn abort_fate(&self, name: &str, swallowed: u32) -> AbortFate {
        fate(
            &self.stragglers,
            &self.never_empty,
            AbortFate::Swallow,
            name,
            swallowed,
        )
    }
}

impl Shared {
    /// Takes a token of `partition`'s bucket; false when it is empty.
    pub(super) fn take_token(&self, partition: &str, t: &Throttle) -> bool {
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
    pub(super) fn plan(&self, path: &str, amz_date: Option<&str>) -> (Duration, Injected) {
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
            let r = self.rng.next_f64();
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

pub(super) enum Injected {
    None,
    Reset,
    SlowDown,
    Throttled,
    AccessDenied,
    Skewed(DateTime<Utc>),
}

/// The throttle partition of a path-style request: its bucket and the first segment of its key.
pub(super) fn partition_of(path: &str) -> &str {
    let path = path.strip_prefix('/').unwrap_or(path);
    let bucket = path.find('/').unwrap_or(path.len());
    match path[bucket..].get(1..).and_then(|key| key.find('/')) {
        Some(end) => &path[..bucket + 1 + end],
        None => &path[..bucket],
    }
}
