//! What a sweep found and did, and its rendering as text or JSON (the schema of docs/contract.md).
//! The types here are typed data (times are `DateTime<Utc>`, outcomes enums): the sweep fills them
//! through [`TargetReport::record`], the one place an upload's outcome becomes counters; metrics and
//! the CLI read them.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

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
    /// Bucket.
    pub bucket: String,
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
    /// The discovery rule that found this bucket (`targets[N]`, with the account for a fan-out);
    /// absent for a bucket the configuration names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discovered_by: Option<String>,
    /// The bucket was discovered, then deleted before or during its sweep: reported, not a failure.
    pub bucket_deleted: bool,
    /// A shutdown left work undone on this target: its listing stopped before the last page
    /// (uploads beyond it were not seen), or stale uploads were left `interrupted`. Set by the sweep.
    pub stopped_by_shutdown: bool,
}

impl TargetReport {
    /// True when the target needs attention: an error, a failed or an unverified upload.
    pub fn is_failure(&self) -> bool {
        self.error.is_some() || self.failed > 0 || self.unverified > 0
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
            Outcome::Kept | Outcome::Vanished => {}
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

/// The exit code of a `once` or `plan` that a shutdown signal (SIGTERM, SIGINT, SIGHUP) cut short,
/// with its report printed and nothing failed (docs/contract.md §2).
pub const EXIT_INTERRUPTED: u8 = 3;

impl RunReport {
    /// Exit code as docs/contract.md defines it: 0 all clean; 1 a target failed or an upload stayed
    /// unverified (it needs a person, so it wins); 3 ([`EXIT_INTERRUPTED`]) a shutdown left work
    /// undone (it needs a rerun).
    pub fn exit_code(&self) -> u8 {
        if self.targets.iter().any(TargetReport::is_failure)
            || self.discovery.iter().any(|d| d.error.is_some())
        {
            1
        } else if self.interrupted {
            EXIT_INTERRUPTED
        } else {
            0
        }
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

/// Human-readable byte count (binary units).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Human-readable age: the largest unit or two.
pub fn human_age(secs: u64) -> String {
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3_600, secs % 3_600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{secs}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h{m:02}m"),
        (d, h, _) => format!("{d}d{h:02}h"),
    }
}

/// The plan as a table per target.
pub fn render_plan_text(run: &RunReport) -> String {
    let mut out = render_discovery(run);
    for t in &run.targets {
        let _ = writeln!(
            out,
            "{}: {} stale of {} incomplete uploads, {} ({} kept: {} fresh, {} excluded, {} idle, {} suspicious)",
            target_name(t),
            t.would_abort,
            t.uploads_seen,
            human_bytes(t.stale_bytes),
            t.skipped_fresh + t.skipped_excluded + t.skipped_idle + t.skipped_suspicious,
            t.skipped_fresh,
            t.skipped_excluded,
            t.skipped_idle,
            t.skipped_suspicious,
        );
        if let Some(e) = &t.error {
            let _ = writeln!(out, "  ERROR: {e}");
        }
        if let Some(line) = discovered_line(t) {
            let _ = writeln!(out, "  {line}");
        }
        if let Some(line) = clock_line(t) {
            let _ = writeln!(out, "  {line}");
        }
        if t.stale_bytes > 0 {
            let _ = writeln!(
                out,
                "  cost: the stale uploads hold {}, about ${:.2} a month (an estimate at price_per_gib_month); the oldest is {} old",
                human_bytes(t.stale_bytes),
                t.stale_monthly_cost_estimate,
                human_age(t.oldest_stale_age_seconds.unwrap_or(0))
            );
        }
        if let Some(audit) = &t.lifecycle {
            let _ = writeln!(out, "  lifecycle: {}", audit.describe());
        }
        if !t.uploads.is_empty() {
            let action = |u: &UploadReport| match (u.outcome, u.reason) {
                (Outcome::Kept, Some(r)) => format!("keep:{}", keep_word(r)),
                (o, _) => outcome_word(o).to_string(),
            };
            // Columns as wide as their widest entry (AWS upload ids are 60 to 100+ characters).
            let id_width = t
                .uploads
                .iter()
                .map(|u| u.upload_id.len())
                .max()
                .unwrap_or(0)
                .max(9);
            let action_width = t
                .uploads
                .iter()
                .map(|u| action(u).len())
                .max()
                .unwrap_or(0)
                .max(6);
            // A vault's uploads have no key: their archive description, creation date and part
            // size instead.
            let vault = t.uploads.iter().any(|u| u.part_size.is_some());
            let (extra, name) = if vault {
                (
                    format!(" {:<20} {:>10}", "CREATED", "PART SIZE"),
                    "DESCRIPTION",
                )
            } else {
                (String::new(), "KEY")
            };
            let _ = writeln!(
                out,
                "  {:<10}{extra} {:>6} {:>10}  {:<action_width$} {:<id_width$} {name}",
                "AGE", "PARTS", "BYTES", "ACTION", "UPLOAD ID"
            );
            for u in &t.uploads {
                let extra = if vault {
                    format!(
                        " {:<20} {:>10}",
                        u.initiated
                            .map(|i| i.format("%Y-%m-%dT%H:%M:%SZ").to_string())
                            .unwrap_or_else(|| "?".into()),
                        u.part_size.map(human_bytes).unwrap_or_default()
                    )
                } else {
                    String::new()
                };
                let _ = writeln!(
                    out,
                    "  {:<10}{extra} {:>6} {:>10}  {:<action_width$} {:<id_width$} {:?}",
                    human_age(u.age_seconds),
                    u.parts,
                    human_bytes(u.bytes),
                    action(u),
                    u.upload_id,
                    u.key
                );
            }
        }
        if t.uploads_omitted > 0 {
            let _ = writeln!(out, "  ... and {} more", t.uploads_omitted);
        }
        if t.stopped_by_shutdown {
            let _ = writeln!(
                out,
                "  INTERRUPTED: a shutdown began before this target was listed to its end"
            );
        }
    }
    if run.interrupted {
        out.push_str(INTERRUPTED_LINE);
    }
    out
}

/// The report of a sweep as text: one block per target and a total line.
pub fn render_run_text(run: &RunReport) -> String {
    let mut out = render_discovery(run);
    let mut total = BTreeMap::<&str, u64>::new();
    for t in &run.targets {
        let status = if t.error.is_some() {
            "FAILED"
        } else if t.unverified > 0 || t.failed > 0 {
            "ATTENTION"
        } else if t.is_interrupted() {
            "INTERRUPTED"
        } else {
            "ok"
        };
        let _ = writeln!(
            out,
            "{} [{status}] in {:.2}s",
            target_name(t),
            t.duration_seconds
        );
        let _ = writeln!(
            out,
            "  seen {}  stale {}  aborted {}  unverified {}  failed {}  would-abort {}  abort calls {}  reclaimed {} ({} bytes)",
            t.uploads_seen,
            t.stale,
            t.aborted,
            t.unverified,
            t.failed,
            t.would_abort,
            t.abort_attempts,
            human_bytes(t.reclaimed_bytes),
            t.reclaimed_bytes
        );
        let _ = writeln!(
            out,
            "  kept: fresh {}  excluded {}  idle {}  suspicious {}  vanished {}  capped {}{}  interrupted {}",
            t.skipped_fresh,
            t.skipped_excluded,
            t.skipped_idle,
            t.skipped_suspicious,
            t.vanished,
            t.capped,
            if t.cap_reached {
                " (max_aborts_per_run reached)"
            } else {
                ""
            },
            t.interrupted
        );
        if let Some(e) = &t.error {
            let _ = writeln!(out, "  error: {e}");
        }
        if let Some(line) = discovered_line(t) {
            let _ = writeln!(out, "  {line}");
        }
        if t.stopped_by_shutdown {
            let _ = writeln!(
                out,
                "  interrupted: a shutdown began before this target's sweep ended; stale uploads may be left"
            );
        }
        if t.clock == Some(ClockSource::Server)
            && let Some(line) = clock_line(t)
        {
            let _ = writeln!(out, "  {line}");
        }
        for u in t.uploads.iter().filter(|u| {
            matches!(
                u.outcome,
                Outcome::Unverified | Outcome::Failed | Outcome::Kept
            )
        }) {
            let detail = match u.outcome {
                Outcome::Unverified => format!(
                    "{} still listed after {}",
                    plural(u.parts_remaining.unwrap_or(0), "part"),
                    plural(u64::from(u.abort_attempts), "abort")
                ),
                Outcome::Kept => format!(
                    "kept: {}{}",
                    u.reason.map(keep_word).unwrap_or("?"),
                    u.detail
                        .as_ref()
                        .map(|d| format!(" ({d})"))
                        .unwrap_or_default()
                ),
                _ => u.error.clone().unwrap_or_default(),
            };
            let _ = writeln!(
                out,
                "  {} {:?} upload {}: {detail}",
                outcome_word(u.outcome),
                u.key,
                u.upload_id
            );
        }
        *total.entry("aborted").or_default() += t.aborted;
        *total.entry("bytes").or_default() += t.reclaimed_bytes;
        *total.entry("unverified").or_default() += t.unverified;
        *total.entry("failed").or_default() += t.failed;
        *total.entry("failed_targets").or_default() += u64::from(t.error.is_some());
    }
    let _ = writeln!(
        out,
        "total: {} targets, {} uploads aborted, {} reclaimed, {} unverified, {} failed uploads, {} failed targets{}",
        run.targets.len(),
        total["aborted"],
        human_bytes(total["bytes"]),
        total["unverified"],
        total["failed"],
        total["failed_targets"],
        if run.dry_run {
            " (dry run: nothing changed)"
        } else {
            ""
        }
    );
    if run.interrupted {
        out.push_str(INTERRUPTED_LINE);
    }
    out
}

const INTERRUPTED_LINE: &str =
    "INTERRUPTED: a shutdown signal stopped the run before every target was swept; run it again\n";

/// What the plan says about the clock the ages were measured on.
fn clock_line(t: &TargetReport) -> Option<String> {
    let skew = t.clock_skew_seconds?;
    let (dir, secs) = if skew >= 0 {
        ("ahead of", skew as u64)
    } else {
        ("behind", skew.unsigned_abs())
    };
    Some(match t.clock {
        Some(ClockSource::Server) => format!(
            "clock: the store's clock is {} {dir} this host's, more than max_clock_skew: ages measured on the store's clock",
            human_age(secs)
        ),
        _ => format!(
            "clock: the store's clock is {} {dir} this host's (within max_clock_skew)",
            human_age(secs)
        ),
    })
}

/// One block per discovery rule: what it listed and matched, what it skipped and why.
fn render_discovery(run: &RunReport) -> String {
    let mut out = String::new();
    for d in &run.discovery {
        let _ = writeln!(
            out,
            "discovery {} ({}{}): {} listed, {} matched, {} not matched, {} in other shards, {} skipped",
            d.rule,
            d.matching,
            d.role_arn
                .as_ref()
                .map(|r| format!(", as {r}"))
                .unwrap_or_default(),
            plural(d.buckets_listed, "bucket"),
            d.buckets_matched,
            d.buckets_not_matched,
            d.buckets_other_shard,
            d.skipped.len()
        );
        if let Some(e) = &d.error {
            let _ = writeln!(out, "  ERROR: {e}");
        }
        for s in &d.skipped {
            let _ = writeln!(out, "  skipped {}: {}", s.bucket, s.reason);
        }
    }
    out
}

/// Which rule discovered the target, and whether its bucket went away.
fn discovered_line(t: &TargetReport) -> Option<String> {
    let rule = t.discovered_by.as_ref()?;
    Some(if t.bucket_deleted {
        format!("discovered by {rule}; the bucket was deleted since: nothing to sweep")
    } else {
        format!("discovered by {rule}")
    })
}

fn target_name(t: &TargetReport) -> String {
    if t.bucket.starts_with("vault:") {
        // A Glacier vault's label (config::Vault::label).
        format!("glacier {}", t.bucket)
    } else if t.prefix.is_empty() {
        format!("s3://{}", t.bucket)
    } else {
        format!("s3://{}/{}", t.bucket, t.prefix)
    }
}

fn outcome_word(o: Outcome) -> &'static str {
    match o {
        Outcome::Aborted => "aborted",
        Outcome::Unverified => "UNVERIFIED",
        Outcome::Failed => "FAILED",
        Outcome::WouldAbort => "would-abort",
        Outcome::Capped => "capped",
        Outcome::Interrupted => "interrupted",
        Outcome::Kept => "kept",
        Outcome::Vanished => "vanished",
    }
}

/// `1 part`, `2 parts`.
fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn keep_word(r: KeepReason) -> &'static str {
    match r {
        KeepReason::Excluded => "excluded",
        KeepReason::OutsidePrefix => "outside-prefix",
        KeepReason::Fresh => "fresh",
        KeepReason::RecentPart => "recent-part",
        KeepReason::UnknownInitiated => "unknown-initiated",
        KeepReason::FutureInitiated => "future-initiated",
        KeepReason::AncientInitiated => "initiated-before-2006",
        KeepReason::UnreadableEntry => "unreadable-entry",
        KeepReason::DryRun => "dry-run",
        KeepReason::Capped => "capped",
        KeepReason::ShuttingDown => "shutting-down",
        KeepReason::InitiatedTimeChanged => "initiated-time-changed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_bytes_fall_in_age_bands_and_the_oldest_stale_age_is_kept() {
        const DAY: u64 = 86_400;
        let mut t = TargetReport::default();
        let upload =
            |age: u64, bytes: u64, outcome: Outcome, reason: Option<KeepReason>| UploadReport {
                key: String::new(),
                upload_id: String::new(),
                initiated: None,
                age_seconds: age,
                parts: 1,
                bytes,
                outcome,
                abort_attempts: 0,
                parts_remaining: None,
                reason,
                error: None,
                detail: None,
                part_size: None,
            };
        for (age, bytes) in [
            (DAY - 1, 1),
            (DAY, 10),
            (7 * DAY - 1, 100),
            (7 * DAY, 1_000),
            (30 * DAY, 10_000),
            (90 * DAY, 100_000),
            (400 * DAY, 1_000_000),
        ] {
            t.record(&upload(age, bytes, Outcome::WouldAbort, None));
        }
        // Kept uploads are not stale: counted nowhere here.
        t.record(&upload(
            999 * DAY,
            7,
            Outcome::Kept,
            Some(KeepReason::Fresh),
        ));
        assert_eq!(
            t.stale_bytes_by_age.bands(),
            [
                ("under_1d", 1),
                ("1d_to_7d", 110),
                ("7d_to_30d", 1_000),
                ("30d_to_90d", 10_000),
                ("90d_and_over", 1_100_000),
            ]
        );
        assert_eq!(t.oldest_stale_age_seconds, Some(400 * DAY));
        assert_eq!(t.stale_bytes, 1_111_111);
        assert_eq!(TargetReport::default().oldest_stale_age_seconds, None);
    }

    #[test]
    fn human_units() {
        let table = [
            (0, "0 B"),
            (1023, "1023 B"),
            (1024, "1.0 KiB"),
            (3_145_728, "3.0 MiB"),
        ];
        for (n, want) in table {
            assert_eq!(human_bytes(n), want);
        }
        let ages = [(5, "5s"), (60, "1m"), (3_660, "1h01m"), (700_000, "8d02h")];
        for (n, want) in ages {
            assert_eq!(human_age(n), want);
        }
    }

    #[test]
    fn plan_columns_fit_long_upload_ids_and_counts_read_as_english() {
        let entry = |id: &str, outcome, reason| UploadReport {
            key: "k".into(),
            upload_id: id.into(),
            initiated: None,
            age_seconds: 90_000,
            parts: 1,
            bytes: 10,
            outcome,
            abort_attempts: 1,
            parts_remaining: Some(1),
            reason,
            error: None,
            detail: None,
            part_size: None,
        };
        let long = "x".repeat(64);
        let run = RunReport {
            targets: vec![TargetReport {
                bucket: "b".into(),
                uploads: vec![
                    entry(&long, Outcome::WouldAbort, None),
                    entry("short", Outcome::Kept, Some(KeepReason::AncientInitiated)),
                    entry("u", Outcome::Unverified, None),
                ],
                ..TargetReport::default()
            }],
            ..RunReport::default()
        };
        let plan = render_plan_text(&run);
        let key_column: Vec<usize> = plan
            .lines()
            .filter(|l| l.ends_with("KEY") || l.ends_with("\"k\""))
            .map(|l| l.len())
            .collect();
        assert_eq!(key_column.len(), 4, "{plan}");
        assert!(
            key_column.windows(2).all(|w| w[0] == w[1]),
            "aligned:\n{plan}"
        );
        let text = render_run_text(&run);
        assert!(text.contains("1 part still listed after 1 abort"), "{text}");
    }

    #[test]
    fn a_refused_abort_that_kept_a_replaced_upload_is_counted_as_a_call_not_as_stale() {
        let mut t = TargetReport::default();
        let replaced = UploadReport {
            key: "k".into(),
            upload_id: "id".into(),
            initiated: None,
            age_seconds: 86_400,
            parts: 1,
            bytes: 10,
            outcome: Outcome::Kept,
            abort_attempts: 1,
            parts_remaining: None,
            reason: Some(KeepReason::InitiatedTimeChanged),
            error: None,
            detail: None,
            part_size: None,
        };
        assert!(t.record(&replaced), "listed in the report");
        assert_eq!(
            (
                t.skipped_suspicious,
                t.abort_attempts,
                t.stale,
                t.stale_bytes
            ),
            (1, 1, 0, 0)
        );
    }

    #[test]
    fn exit_code_reflects_failures() {
        let ok = TargetReport::default();
        let unverified = TargetReport {
            unverified: 1,
            ..Default::default()
        };
        let failed = TargetReport {
            error: Some("NoSuchBucket".into()),
            ..Default::default()
        };
        let run = |targets: Vec<TargetReport>| RunReport {
            started_at: DateTime::UNIX_EPOCH,
            finished_at: DateTime::UNIX_EPOCH,
            dry_run: false,
            targets,
            interrupted: false,
            discovery: Vec::new(),
        };
        assert_eq!(run(vec![ok.clone()]).exit_code(), 0);
        assert_eq!(run(vec![ok.clone(), unverified.clone()]).exit_code(), 1);
        assert_eq!(run(vec![failed, ok.clone()]).exit_code(), 1);
        let mut undiscovered = run(vec![ok.clone()]);
        undiscovered.discovery.push(DiscoveryReport {
            error: Some("ListBuckets failed (access_denied)".into()),
            ..Default::default()
        });
        assert_eq!(
            undiscovered.exit_code(),
            1,
            "a rule that cannot list fails the run"
        );

        // A shutdown: a target it cut short makes the run interrupted; a failure still wins.
        let cut = TargetReport {
            stopped_by_shutdown: true,
            ..Default::default()
        };
        let mut r = run(vec![ok.clone(), cut]);
        r.mark_interrupted();
        assert!(r.interrupted);
        assert_eq!(r.exit_code(), EXIT_INTERRUPTED);
        assert!(render_run_text(&r).contains("[INTERRUPTED]"));
        let mut r = run(vec![ok.clone()]);
        r.mark_interrupted();
        assert!(!r.interrupted, "nothing left undone");
        assert_eq!(r.exit_code(), 0);
        let left = TargetReport {
            interrupted: 2,
            ..Default::default()
        };
        let mut r = run(vec![left, unverified]);
        r.mark_interrupted();
        assert!(r.interrupted);
        assert_eq!(r.exit_code(), 1);
    }
}
