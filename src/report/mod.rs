//! What a sweep found and did: the report model, serialized as the JSON of docs/contract.md. The
//! types are typed data (times are `DateTime<Utc>`, outcomes enums): the sweep fills them through
//! [`TargetReport::record`], the one place an upload's outcome becomes counters; metrics, the CLI
//! and the text view ([`text`]) read them.

mod text;

pub use text::{human_age, human_bytes, render_plan_text, render_run_text};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::exit::Exit;
use crate::policy::{ClockSource, KeepReason};
use crate::store::{ErrorKind, Operation};

/// What happened to one upload the report lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Aborted and verified empty by ListParts.
    Aborted,
    /// Still listed parts after `max_abort_attempts` aborts.
    Unverified,
    /// An S3 call failed (after retries); the upload may still exist.
    Failed,
    /// Dry run or plan: would be aborted.
    WouldAbort,
    /// Stale, but `max_aborts_per_run` was reached: left for the next sweep.
    Capped,
    /// Stale, but a shutdown began before its abort started: left for the next sweep.
    Interrupted,
    /// Kept although old enough, because something about it cannot be trusted (see `reason`).
    Kept,
    /// Stale by listing, but gone by the time its parts were listed (completed or aborted
    /// elsewhere). Counted in `vanished`, never listed.
    Vanished,
    /// Stale, but its first abort by this process answered NoSuchUpload (and ListParts agreed it
    /// is gone): another process aborted it or its writer completed it after its parts were
    /// listed. Nothing reclaimed by this process; counted in `gone_before_abort`.
    GoneBeforeAbort,
}

impl Outcome {
    /// The outcome of an upload the policy kept: the run's gates have their own outcomes, every
    /// other reason is `kept`.
    pub fn of_keep(reason: KeepReason) -> Outcome {
        match reason {
            KeepReason::DryRun => Outcome::WouldAbort,
            KeepReason::Capped => Outcome::Capped,
            KeepReason::ShuttingDown => Outcome::Interrupted,
            _ => Outcome::Kept,
        }
    }
}

/// One upload in the report.
#[derive(Clone, Debug, Serialize)]
pub struct UploadReport {
    /// Object key.
    pub key: String,
    /// Upload id.
    pub upload_id: String,
    /// Initiation time (RFC 3339 in UTC, to the second), when known.
    #[serde(serialize_with = "rfc3339_opt")]
    pub initiated: Option<DateTime<Utc>>,
    /// Seconds since initiation at the start of the sweep.
    pub age_seconds: u64,
    /// Distinct parts seen.
    pub parts: u64,
    /// Bytes of the distinct parts seen.
    pub bytes: u64,
    /// What happened.
    pub outcome: Outcome,
    /// AbortMultipartUpload calls made for it.
    pub abort_attempts: u32,
    /// Parts still listed after the last abort (unverified uploads only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parts_remaining: Option<u64>,
    /// Why it was kept (outcome `kept`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<KeepReason>,
    /// The error (outcome `failed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What could not be read (reason `unreadable_entry`: the field and what it held).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The size of its parts, where the store fixes one (a Glacier vault's uploads).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub part_size: Option<u64>,
}

impl UploadReport {
    /// The entry of a listed upload, not yet acted on (outcome `failed` until something better is
    /// known: a call that fails leaves it so).
    pub fn new(u: crate::store::Upload, now: DateTime<Utc>) -> Self {
        UploadReport {
            age_seconds: u
                .initiated
                .map(|t| crate::policy::age_seconds(t, now))
                .unwrap_or(0),
            initiated: u.initiated,
            part_size: u.part_size,
            key: u.key,
            upload_id: u.upload_id,
            parts: 0,
            bytes: 0,
            outcome: Outcome::Failed,
            abort_attempts: 0,
            parts_remaining: None,
            reason: None,
            error: None,
            detail: None,
        }
    }

    /// Marks it kept by the policy for `reason`.
    pub fn keep(&mut self, reason: KeepReason) {
        self.outcome = Outcome::of_keep(reason);
        self.reason = (self.outcome == Outcome::Kept).then_some(reason);
    }
}

/// Failed calls of one operation and kind.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ErrorCount {
    /// Which call.
    pub operation: Operation,
    /// Why.
    pub kind: ErrorKind,
    /// How many.
    pub count: u64,
}

/// Stale bytes by how long ago their uploads were initiated (on the clock the ages were measured
/// on): the report's `stale_bytes_by_age` and the `age` label of `mpu_janitor_stale_bytes_by_age`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AgeBands {
    #[serde(rename = "under_1d")]
    under_1d: u64,
    #[serde(rename = "1d_to_7d")]
    d1_to_7d: u64,
    #[serde(rename = "7d_to_30d")]
    d7_to_30d: u64,
    #[serde(rename = "30d_to_90d")]
    d30_to_90d: u64,
    #[serde(rename = "90d_and_over")]
    d90_and_over: u64,
}

impl AgeBands {
    /// Counts `bytes` of an upload `age_seconds` old.
    pub fn add(&mut self, age_seconds: u64, bytes: u64) {
        const DAY: u64 = 86_400;
        let band = match age_seconds / DAY {
            0 => &mut self.under_1d,
            1..7 => &mut self.d1_to_7d,
            7..30 => &mut self.d7_to_30d,
            30..90 => &mut self.d30_to_90d,
            _ => &mut self.d90_and_over,
        };
        *band += bytes;
    }

    /// (label, bytes) for every band, youngest first.
    pub fn bands(&self) -> [(&'static str, u64); 5] {
        [
            ("under_1d", self.under_1d),
            ("1d_to_7d", self.d1_to_7d),
            ("7d_to_30d", self.d7_to_30d),
            ("30d_to_90d", self.d30_to_90d),
            ("90d_and_over", self.d90_and_over),
        ]
    }
}

/// One target's sweep.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TargetReport {
    /// Bucket (or a vault's label).
    pub bucket: String,
    /// The target is a Glacier vault (its uploads have descriptions, not keys).
    #[serde(skip)]
    pub vault: bool,
    /// Prefix swept.
    pub prefix: String,
    /// Incomplete uploads listed under the prefix.
    pub uploads_seen: u64,
    /// Uploads old enough, not excluded, not idle-protected: aborted, unverified, failed, would_abort, capped or interrupted.
    pub stale: u64,
    /// Aborted and verified empty.
    pub aborted: u64,
    /// Still holding parts after `max_abort_attempts`.
    pub unverified: u64,
    /// An S3 call on the upload failed.
    pub failed: u64,
    /// Kept because a part arrived less than `idle_for` ago.
    pub skipped_idle: u64,
    /// Kept because under `exclude_prefixes` (or, defensively, outside `prefix`).
    pub skipped_excluded: u64,
    /// AbortMultipartUpload calls.
    pub abort_attempts: u64,
    /// Bytes of verified uploads' distinct parts.
    pub reclaimed_bytes: u64,
    /// The target-level error, if the sweep could not complete (listing failed, bucket missing...).
    pub error: Option<String>,
    /// Kept because initiated less than `older_than` ago.
    pub skipped_fresh: u64,
    /// Kept because the initiation time is missing or in the future.
    pub skipped_suspicious: u64,
    /// Stale by listing, but gone by the time its parts were listed (completed or aborted elsewhere).
    pub vanished: u64,
    /// Stale uploads whose first abort by this process found them already gone (another process
    /// aborted them, or their writers completed them): nothing reclaimed here.
    pub gone_before_abort: u64,
    /// Listing entries skipped because the listing had already given the same upload (a store
    /// whose marker is inclusive, or that repeats a page): each upload is processed once.
    pub listing_repeats: u64,
    /// Would be aborted (dry run / plan).
    pub would_abort: u64,
    /// Stale but left alone because `max_aborts_per_run` was reached.
    pub capped: u64,
    /// True when `max_aborts_per_run` stopped the sweep from aborting more.
    pub cap_reached: bool,
    /// Stale but not started because a shutdown began.
    pub interrupted: u64,
    /// The highest concurrency limit of the sweep.
    pub concurrency_peak: u64,
    /// Times throttling (`503 SlowDown`, from any target on the same endpoint) cut the limit.
    pub throttle_backoffs: u64,
    /// Bytes held by the stale uploads.
    pub stale_bytes: u64,
    /// `stale_bytes` by the age of their uploads.
    pub stale_bytes_by_age: AgeBands,
    /// The age of the oldest stale upload, in seconds; absent when none is stale.
    pub oldest_stale_age_seconds: Option<u64>,
    /// What `stale_bytes` costs a month at `price_per_gib_month` (an estimate).
    pub stale_monthly_cost_estimate: f64,
    /// Wall time of the sweep.
    pub duration_seconds: f64,
    /// When it ended.
    #[serde(serialize_with = "rfc3339")]
    pub finished_at: DateTime<Utc>,
    /// Whose clock the ages were measured on (`host` or `server`); absent when the listing failed
    /// before the store answered.
    pub clock: Option<ClockSource>,
    /// The store's clock minus this host's, in seconds, from the store's `Date` header.
    pub clock_skew_seconds: Option<i64>,
    /// When the bucket was created, as the store's ListBuckets says, where that date is trusted
    /// (an S3-compatible store's general-purpose bucket): no upload is believed to be older.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket_created: Option<DateTime<Utc>>,
    /// Whether the bucket's own lifecycle rules abort the target's incomplete uploads (the
    /// lifecycle audit, after the sweep); absent when the listing failed or a shutdown stopped it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<crate::lifecycle::Audit>,
    /// Failed S3 calls by operation and kind, after retries.
    pub errors: Vec<ErrorCount>,
    /// The stale (and suspicious) uploads, up to the listing limit.
    pub uploads: Vec<UploadReport>,
    /// Uploads left out of `uploads` because of the listing limit.
    pub uploads_omitted: u64,
    /// Each of the target's `exclude_prefixes` and how many listed uploads it kept (the first
    /// that matches counts): a prefix that matches nothing may be a typo.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exclusions: Vec<Exclusion>,
    /// The discovery rule that found this bucket (`targets[N]`, with the account for a fan-out);
    /// absent for a bucket the configuration names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discovered_by: Option<String>,
    /// The bucket was discovered, then deleted before or during its sweep: reported, not a failure.
    pub bucket_deleted: bool,
    /// A shutdown left work undone on this target: its listing stopped before the last page
    /// (uploads beyond it were not seen), or stale uploads were left `interrupted`. Set by the sweep.
    pub stopped_by_shutdown: bool,
    /// What the replicas' lease said, when `[coordination]` is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease: Option<LeaseReport>,
}

/// One exclusion of a target and the uploads it kept in a sweep.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Exclusion {
    /// The prefix, as configured.
    pub prefix: String,
    /// Listed uploads it kept.
    pub uploads: u64,
}

impl TargetReport {
    /// True when the target needs attention: an error, a failed or an unverified upload.
    pub fn is_failure(&self) -> bool {
        self.error.is_some() || self.failed > 0 || self.unverified > 0
    }

    /// True when another holder of the lease swept (or sweeps) the target: this process did not.
    pub fn swept_elsewhere(&self) -> bool {
        self.lease.as_ref().is_some_and(|l| {
            matches!(
                l.status,
                LeaseStatus::SweptByOther | LeaseStatus::HeldByOther
            )
        })
    }

    /// True when a shutdown left work undone on this target.
    pub fn is_interrupted(&self) -> bool {
        self.stopped_by_shutdown || self.interrupted > 0
    }

    /// Counts one upload's outcome: the one place outcomes and keep reasons become the report's
    /// figures. Returns false for outcomes that are counted but never listed (fresh, excluded,
    /// idle-protected, vanished).
    pub fn record(&mut self, u: &UploadReport) -> bool {
        // Every abort sent counts, whatever came of it (the refused one that kept a replaced
        // upload too); uploads never aborted have none.
        self.abort_attempts += u64::from(u.abort_attempts);
        match (u.outcome, u.reason) {
            (Outcome::Vanished, _) => {
                self.vanished += 1;
                return false;
            }
            (Outcome::GoneBeforeAbort, _) => {
                self.gone_before_abort += 1;
                return true;
            }
            (Outcome::Kept, Some(KeepReason::Fresh)) => {
                self.skipped_fresh += 1;
                return false;
            }
            (Outcome::Kept, Some(KeepReason::Excluded | KeepReason::OutsidePrefix)) => {
                self.skipped_excluded += 1;
                return false;
            }
            (Outcome::Kept, Some(KeepReason::RecentPart)) => {
                self.skipped_idle += 1;
                return false;
            }
            (Outcome::Kept, _) => {
                // Untrustworthy initiation times, or replaced under the id: listed, never stale.
                self.skipped_suspicious += 1;
                return true;
            }
            _ => {}
        }
        self.stale += 1;
        self.stale_bytes += u.bytes;
        self.stale_bytes_by_age.add(u.age_seconds, u.bytes);
        self.oldest_stale_age_seconds = self.oldest_stale_age_seconds.max(Some(u.age_seconds));
        match u.outcome {
            Outcome::Aborted => {
                self.aborted += 1;
                self.reclaimed_bytes += u.bytes;
            }
            Outcome::Unverified => self.unverified += 1,
            Outcome::Failed => self.failed += 1,
            Outcome::WouldAbort => self.would_abort += 1,
            Outcome::Capped => {
                self.capped += 1;
                self.cap_reached = true;
            }
            Outcome::Interrupted => self.interrupted += 1,
            Outcome::Kept | Outcome::Vanished | Outcome::GoneBeforeAbort => {}
        }
        true
    }

    /// Adds one failed call to the error counts.
    pub fn count_error(&mut self, operation: Operation, kind: ErrorKind) {
        match self
            .errors
            .iter_mut()
            .find(|e| e.operation == operation && e.kind == kind)
        {
            Some(e) => e.count += 1,
            None => self.errors.push(ErrorCount {
                operation,
                kind,
                count: 1,
            }),
        }
    }
}

/// A whole run: every target.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RunReport {
    /// The run's id, as in every record of its audit trail; empty outside the run layer.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub run_id: String,
    /// Start.
    #[serde(serialize_with = "rfc3339")]
    pub started_at: DateTime<Utc>,
    /// End.
    #[serde(serialize_with = "rfc3339")]
    pub finished_at: DateTime<Utc>,
    /// True when every target ran in dry-run mode.
    pub dry_run: bool,
    /// One entry per target, in configuration order.
    pub targets: Vec<TargetReport>,
    /// A shutdown signal stopped the run before every target was swept to its end, or left an
    /// upload `interrupted`: run it again to finish.
    pub interrupted: bool,
    /// What each discovery target (`bucket = "*"`) found; absent when there is none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub discovery: Vec<DiscoveryReport>,
    /// Exports of the run's metrics that failed (the textfile, the Pushgateway), each saying
    /// where and why; absent when none did. A failed export fails the run (exit 1).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub export_errors: Vec<String>,
}

/// What one discovery rule found in one run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DiscoveryReport {
    /// The rule: `targets[N]`, with the account for one account of a fan-out.
    pub rule: String,
    /// What it matches, in the configuration's words.
    pub matching: String,
    /// The role its calls were made as, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// Buckets ListBuckets gave.
    pub buckets_listed: u64,
    /// Buckets it sweeps in this run.
    pub buckets_matched: u64,
    /// Buckets its globs or tags leave out.
    pub buckets_not_matched: u64,
    /// Buckets of another shard (`[sharding]`).
    pub buckets_other_shard: u64,
    /// Buckets it matched but does not sweep, each with the reason: tags that cannot be read
    /// (never guessed), or a bucket another target sweeps in this run.
    pub skipped: Vec<SkippedBucket>,
    /// Why the buckets could not be listed; the rule swept nothing.
    pub error: Option<String>,
}

/// A bucket a discovery rule matched but does not sweep.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SkippedBucket {
    /// The bucket.
    pub bucket: String,
    /// Why.
    pub reason: String,
}

/// What the replicas' lease (`[coordination]`) said for a target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LeaseReport {
    /// What it said.
    pub status: LeaseStatus,
    /// The holder it names: this process's when it held the lease, the other's when it did not.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub holder: String,
    /// On the store's clock: until when the lease is held (`held`, `held_by_other`), or when the
    /// other holder finished the period's sweep (`swept_by_other`).
    #[serde(
        serialize_with = "rfc3339_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub at: Option<DateTime<Utc>>,
    /// Why, for `lost`, `unsupported` and `error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// What the lease said for a target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaseStatus {
    /// This process held it for the sweep (and released it after).
    Held,
    /// This process held it, and lost it mid-sweep: no new abort started after the loss.
    Lost,
    /// Another holder swept the target in this schedule period: skipped.
    SweptByOther,
    /// Another holder holds it now: skipped.
    HeldByOther,
    /// The lease store ignores conditional writes: coordination is off, swept without a lease.
    Unsupported,
    /// The lease could not be read or taken: swept without it.
    Error,
    /// `plan`: nobody holds it (plan only reads the lease).
    Free,
}

impl LeaseStatus {
    /// The snake_case name, as in the JSON and the metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            LeaseStatus::Held => "held",
            LeaseStatus::Lost => "lost",
            LeaseStatus::SweptByOther => "swept_by_other",
            LeaseStatus::HeldByOther => "held_by_other",
            LeaseStatus::Unsupported => "unsupported",
            LeaseStatus::Error => "error",
            LeaseStatus::Free => "free",
        }
    }
}

/// A run's figures summed over its targets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Targets swept.
    pub targets: u64,
    /// Uploads aborted and verified.
    pub aborted: u64,
    /// Bytes reclaimed.
    pub reclaimed_bytes: u64,
    /// Uploads unverified.
    pub unverified: u64,
    /// Uploads failed.
    pub failed: u64,
    /// Targets whose sweep failed.
    pub failed_targets: u64,
}

impl RunReport {
    /// Exit code as docs/contract.md defines it: 0 all clean; 1 a target failed or an upload stayed
    /// unverified (it needs a person, so it wins); 3 a shutdown left work undone (it needs a
    /// rerun).
    pub fn exit_code(&self) -> Exit {
        if self.targets.iter().any(TargetReport::is_failure)
            || self.discovery.iter().any(|d| d.error.is_some())
            || !self.export_errors.is_empty()
        {
            Exit::Failed
        } else if self.interrupted {
            Exit::Interrupted
        } else {
            Exit::Clean
        }
    }

    /// The run's totals over every target.
    pub fn totals(&self) -> Totals {
        let mut t = Totals {
            targets: self.targets.len() as u64,
            ..Totals::default()
        };
        for r in &self.targets {
            t.aborted += r.aborted;
            t.reclaimed_bytes += r.reclaimed_bytes;
            t.unverified += r.unverified;
            t.failed += r.failed;
            t.failed_targets += u64::from(r.error.is_some());
        }
        t
    }

    /// Marks the run interrupted when a shutdown left work undone on any target.
    pub fn mark_interrupted(&mut self) {
        self.interrupted |= self.targets.iter().any(TargetReport::is_interrupted);
    }
}

/// RFC 3339 with a `Z`, to the second.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn rfc3339<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&timestamp(*t))
}

fn rfc3339_opt<S: serde::Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => rfc3339(t, s),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests;
