//! One target's sweep: list the incomplete uploads page by page, screen each with the policy, and for
//! each candidate list its parts, check `idle_for`, abort it and verify with ListParts until it is
//! empty. Listing and processing run at the same time through a small channel, and at most
//! `concurrency` uploads are in flight, so memory is bounded by concurrency, not by bucket size.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use crate::config::{RetryMode, Target};
use crate::lifecycle;
use crate::limit::Limiter;
use crate::policy::{self, ClockSource, Decision, KeepReason, Now, Rules, RunState};
use crate::report::{Exclusion, Outcome, TargetReport, UploadReport};
use crate::store::{Marker, Operation, Parts, StoreError, Upload, UploadStore};
use crate::verify::{self, SeenParts, Verification};

mod guard;

use guard::{MAX_EMPTY_PAGES, Markers, Repeats, not_advancing};

/// Live counters across all targets, for a progress line.
#[derive(Debug, Default)]
pub struct Progress {
    /// Uploads listed.
    pub listed: AtomicU64,
    /// Uploads done with, whatever the outcome (kept at first sight included).
    pub processed: AtomicU64,
    /// Targets of the run.
    pub targets: AtomicU64,
    /// Targets whose listing has ended (or that could not be reached): once all have, `listed`
    /// is the run's total.
    pub targets_listed: AtomicU64,
    /// Uploads aborted and verified.
    pub aborted: AtomicU64,
    /// Bytes reclaimed so far.
    pub reclaimed_bytes: AtomicU64,
}

/// What a sweep needs besides the store and the target.
#[derive(Clone, Debug)]
pub struct SweepOptions {
    /// This host's clock when the sweep starts. Ages are measured against it only while it agrees
    /// with the store's (see [`policy::choose_now`]); tests move it to play a wrong host clock.
    pub now: DateTime<Utc>,
    /// Most entries kept in `TargetReport::uploads` for successful outcomes; problems
    /// (unverified, failed, kept) are always listed.
    pub max_listed: usize,
    /// Cancelled on shutdown: no new abort starts, in-flight ones finish and are verified.
    pub cancel: CancellationToken,
    /// Live counters.
    pub progress: Arc<Progress>,
    /// A cap on uploads in flight across every target of the run, on top of each target's own.
    pub global_limit: Option<Arc<Semaphore>>,
    /// Base delay before a re-abort; doubled each time, with jitter.
    pub reabort_backoff: Duration,
    /// Told of every upload's outcome as it is decided (the run layer's audit trail).
    pub observer: Option<Arc<dyn Observer>>,
    /// Cancelled when the shutdown's grace has run out: calls still in flight are given up and
    /// their uploads reported `interrupted`, so that the report is still written.
    pub hard_stop: CancellationToken,
    /// List the uploads kept as fresh, excluded or idle too (`plan --kept`), within `max_listed`;
    /// otherwise they are only counted.
    pub list_kept: bool,
}

/// What is told of each upload's outcome, as the sweep decides it, before the report's list is
/// capped: the audit trail sees every upload.
pub trait Observer: Send + Sync + std::fmt::Debug {
    /// One upload of `target` (its report name) has its outcome.
    fn upload(&self, target: &str, upload: &UploadReport, dry_run: bool);
}

impl Default for SweepOptions {
    fn default() -> Self {
        SweepOptions {
            now: Utc::now(),
            max_listed: usize::MAX,
            cancel: CancellationToken::new(),
            progress: Arc::default(),
            global_limit: None,
            reabort_backoff: Duration::from_millis(100),
            observer: None,
            hard_stop: CancellationToken::new(),
            list_kept: false,
        }
    }
}

/// Everything a per-upload task shares.
struct Ctx<S> {
    store: Arc<S>,
    target: Target,
    opts: SweepOptions,
    /// Aborts started, against `max_aborts_per_run`.
    aborts_started: AtomicU64,
    /// How many uploads are in flight.
    limiter: Limiter,
}

impl<S> Ctx<S> {
    fn rules(&self) -> Rules<'_> {
        let s = &self.target.settings;
        Rules {
            prefix: &self.target.prefix,
            exclude_prefixes: &self.target.exclude_prefixes,
            older_than: s.older_than.0,
            idle_for: s.idle_for.0,
            dry_run: s.dry_run,
            max_aborts_per_run: s.max_aborts_per_run,
            not_before: None,
        }
    }
}

/// What the listing hands to the workers.
enum Item {
    /// Stale by its listing (at this "now"): list its parts, take the second look, abort and verify.
    Candidate(Upload, DateTime<Utc>),
    /// Kept by the first look: only to be counted (and listed, if suspicious).
    Screened(UploadReport),
}

/// The result of processing one upload.
struct Processed {
    report: UploadReport,
    /// The failed call, for error counts.
    error: Option<StoreError>,
}

/// Sweeps one target and reports. Never fails as a whole: errors land in the report.
pub async fn sweep<S: UploadStore>(
    store: Arc<S>,
    target: &Target,
    opts: &SweepOptions,
) -> TargetReport {
    let started = Instant::now();
    let settings = &target.settings;
    let (limiter, width) = Limiter::for_settings(
        settings.concurrency,
        settings.max_concurrency,
        settings.retry_mode == RetryMode::Adaptive,
    );
    let ctx = Arc::new(Ctx {
        store,
        target: target.clone(),
        opts: opts.clone(),
        aborts_started: AtomicU64::new(0),
        limiter,
    });
    let (tx, mut rx) = mpsc::channel::<Item>(width * 2);

    let lister = {
        let ctx = ctx.clone();
        async move {
            let listed = list_uploads(&ctx, tx).await;
            let progress = &ctx.opts.progress;
            progress.targets_listed.fetch_add(1, Ordering::Relaxed);
            listed
        }
    };
    let worker = {
        let ctx = ctx.clone();
        let items = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
        items
            .map(move |item| {
                let ctx = ctx.clone();
                async move {
                    match item {
                        Item::Screened(report) => {
                            ctx.opts.progress.processed.fetch_add(1, Ordering::Relaxed);
                            Ok(Processed {
                                report,
                                error: None,
                            })
                        }
                        // Spawned so that signing and parsing spread over the runtime's threads;
                        // each upload holds a permit of the limiter from its first call to its
                        // last, and its time and any throttling are the limiter's sample.
                        Item::Candidate(u, now) => {
                            let permit = ctx.limiter.acquire().await;
                            // The run-wide cap is taken before the clock starts: waiting for it
                            // is not the store's time.
                            let _global = match &ctx.opts.global_limit {
                                Some(sem) => sem.clone().acquire_owned().await.ok(),
                                None => None,
                            };
                            let (started, throttled) = (Instant::now(), ctx.store.throttled());
                            let c = ctx.clone();
                            let done = tokio::spawn(async move { process(&c, u, now).await })
                                .await
                                .map_err(|e| e.to_string());
                            let was_throttled = ctx.store.throttled() > throttled;
                            ctx.limiter.done(permit, started.elapsed(), was_throttled);
                            done
                        }
                    }
                }
            })
            .buffer_unordered(width)
            .fold(
                Tally::new(opts, target),
                |mut tally, processed| async move {
                    match processed {
                        Ok(p) => tally.record(p),
                        Err(e) => tally.panic(e),
                    }
                    tally
                },
            )
    };
    let (listed, tally) = tokio::join!(lister, worker);

    let mut report = tally.report;
    report.bucket = target.bucket.clone();
    report.vault = target.vault().is_some();
    report.prefix = target.prefix.clone();
    report.uploads_seen = listed.seen;
    report.listing_repeats = listed.repeats;
    report.bucket_created = listed.bucket_created;
    report.stopped_by_shutdown = listed.interrupted || report.interrupted > 0;
    report.concurrency_peak = ctx.limiter.peak() as u64;
    report.throttle_backoffs = ctx.limiter.cuts();
    report.stale_monthly_cost_estimate =
        report.stale_bytes as f64 / f64::from(1u32 << 30) * settings.price_per_gib_month;
    if let Some(clock) = listed.clock {
        report.clock = Some(clock.source);
        report.clock_skew_seconds = clock.skew_seconds;
    }
    if let Some(problem) = listed.clock_error {
        report.error = Some(format!("bucket {:?}: {problem}", target.bucket));
    }
    if let Some(server) = &listed.blind {
        tracing::error!(bucket = %target.bucket, server = %server,
            "BLIND: this store lists incomplete uploads only for an exact key; the janitor cannot see this bucket's stale uploads");
        report.error = Some(format!(
            "blind: the store ({server}) lists incomplete uploads only for an exact key, so a listing by prefix sees none and nothing can be swept here; use the store's own expiry (MinIO: mc admin config set ALIAS api stale_uploads_expiry=24h)"
        ));
    }
    if let Some(e) = listed.error {
        report.count_error(e.operation, e.kind);
        report.error = Some(format!(
            "listing uploads of bucket {:?}: {e}",
            target.bucket
        ));
    }
    // The lifecycle audit, once the sweep is done (one call; an error never fails the target).
    if report.error.is_none() && !report.stopped_by_shutdown {
        report.lifecycle = ctx.store.lifecycle_rules().await.map(|rules| match rules {
            Ok(rules) => lifecycle::audit(&rules, &target.prefix),
            Err(e) => {
                tracing::info!(bucket = %target.bucket, error = %e, "Lifecycle rules unreadable (the sweep is not affected)");
                lifecycle::Audit::Unknown {
                    detail: e.to_string(),
                }
            }
        });
    }
    report
        .uploads
        .sort_by(|a, b| (&a.key, &a.upload_id).cmp(&(&b.key, &b.upload_id)));
    report.duration_seconds = started.elapsed().as_secs_f64();
    report.finished_at = Utc::now();
    log_summary(&report, settings.dry_run);
    report
}

/// What the listing side saw.
#[derive(Default)]
struct Listed {
    seen: u64,
    /// Entries skipped as repeats of an upload the listing had already given.
    repeats: u64,
    error: Option<StoreError>,
    /// The clock the ages were measured on, once the first page told the store's.
    clock: Option<Now>,
    /// Why no age could be trusted (then nothing was handed on).
    clock_error: Option<String>,
    /// The bucket's creation date, when known and trusted.
    bucket_created: Option<DateTime<Utc>>,
    /// A shutdown stopped the listing before its last page.
    interrupted: bool,
    /// The store named itself as one that cannot list (its `Server` header) and listed nothing.
    blind: Option<String>,
}

/// Folds per-upload outcomes into the report as they arrive, so nothing grows with the number of
/// uploads but the (capped) list of entries.
struct Tally {
    report: TargetReport,
    max_listed: usize,
    listed_ok: usize,
    list_kept: bool,
    /// Told of each upload first, with the target's name and whether it is a dry run.
    observer: Option<(Arc<dyn Observer>, String, bool)>,
}

impl Tally {
    fn new(opts: &SweepOptions, target: &Target) -> Self {
        Tally {
            report: TargetReport {
                exclusions: target
                    .exclude_prefixes
                    .iter()
                    .map(|p| Exclusion {
                        prefix: p.clone(),
                        uploads: 0,
                    })
                    .collect(),
                ..TargetReport::default()
            },
            max_listed: opts.max_listed,
            listed_ok: 0,
            list_kept: opts.list_kept,
            observer: opts
                .observer
                .clone()
                .map(|o| (o, target.bucket.clone(), target.settings.dry_run)),
        }
    }

    fn record(&mut self, p: Processed) {
        if let Some((observer, target, dry_run)) = &self.observer {
            observer.upload(target, &p.report, *dry_run);
        }
        let report = &mut self.report;
        if let Some(e) = &p.error {
            report.count_error(e.operation, e.kind);
        }
        if p.report.reason == Some(KeepReason::Excluded)
            && let Some(e) = report
                .exclusions
                .iter_mut()
                .find(|e| p.report.key.starts_with(e.prefix.as_str()))
        {
            e.uploads += 1;
        }
        let listed = report.record(&p.report);
        let kept_quietly = !listed && p.report.outcome == Outcome::Kept;
        if !(listed || kept_quietly && self.list_kept) {
            return;
        }
        // Problems are always listed; the rest (and, asked for, the quietly kept) up to the limit.
        let problem = listed
            && matches!(
                p.report.outcome,
                Outcome::Unverified | Outcome::Failed | Outcome::Kept
            );
        if problem || self.listed_ok < self.max_listed {
            self.listed_ok += usize::from(!problem);
            report.uploads.push(p.report);
        } else {
            report.uploads_omitted += 1;
        }
    }

    fn panic(&mut self, what: String) {
        self.report.failed += 1;
        self.report
            .error
            .get_or_insert(format!("internal error: {what}"));
    }
}

/// Lists every page, takes the first look at each upload and hands it on. Stops at the first
/// listing error (what was already listed is still processed: each upload stands on its own) or on
/// shutdown.
async fn list_uploads<S: UploadStore>(ctx: &Ctx<S>, tx: mpsc::Sender<Item>) -> Listed {
    let mut listed = Listed::default();
    let settings = &ctx.target.settings;
    listed.bucket_created = bucket_created(ctx).await;
    let rules = Rules {
        not_before: listed.bucket_created.map(|t| t - settings.max_clock_skew.0),
        ..ctx.rules()
    };
    let started = Instant::now();
    let mut marker: Option<Marker> = None;
    let bucket = ctx.store.bucket().to_string();
    let mut repeats = Repeats::default();
    let mut markers = Markers::default();
    let mut empty_pages = 0;
    let mut server: Option<String> = None;
    loop {
        let page = tokio::select! {
            biased;
            () = ctx.opts.cancel.cancelled() => {
                tracing::warn!(bucket = %bucket, seen = listed.seen, "Shutdown: listing stopped before its last page");
                listed.interrupted = true;
                break;
            }
            page = ctx.store.list_uploads(&ctx.target.prefix, marker.as_ref()) => page,
        };
        let page = match page {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(bucket = %bucket, error = %e, "Listing uploads failed");
                listed.error = Some(e);
                break;
            }
        };
        // The clock of the whole sweep, from the first answer: this host's time as the store's
        // Date header arrived, and that date.
        let now = match listed.clock {
            Some(clock) => clock.now,
            None => {
                let host = ctx.opts.now
                    + chrono::Duration::from_std(started.elapsed()).unwrap_or_default();
                match policy::choose_now(
                    host,
                    page.server_date,
                    settings.max_clock_skew.0,
                    settings.trust_host_clock,
                ) {
                    Ok(clock) => {
                        if clock.source == ClockSource::Server {
                            tracing::warn!(bucket = %bucket, skew_seconds = clock.skew_seconds.unwrap_or(0),
                                max_clock_skew = %settings.max_clock_skew,
                                "This host's clock disagrees with the store's: ages are measured on the store's clock");
                        }
                        listed.clock = Some(clock);
                        clock.now
                    }
                    Err(problem) => {
                        tracing::error!(bucket = %bucket, "{problem}");
                        listed.seen += page.uploads.len() as u64;
                        listed.clock_error = Some(problem);
                        break;
                    }
                }
            }
        };
        let brought_nothing = page.uploads.is_empty() && page.unreadable.is_empty();
        for u in page.unreadable {
            listed.seen += 1;
            ctx.opts.progress.listed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(bucket = %bucket, key = ?u.key, upload_id = ?u.upload_id, problem = %u.problem,
                "Keeping an upload whose listing entry cannot be read");
            let mut entry = UploadReport::new(
                Upload {
                    key: u.key,
                    upload_id: u.upload_id,
                    initiated: None,
                    part_size: None,
                },
                now,
            );
            entry.keep(KeepReason::UnreadableEntry);
            entry.detail = Some(u.problem);
            if tx.send(Item::Screened(entry)).await.is_err() {
                return listed;
            }
        }
        repeats.next_page();
        for u in page.uploads {
            if repeats.is_repeat(&u, marker.as_ref(), ctx.store.ordered_markers()) {
                listed.repeats += 1;
                tracing::warn!(bucket = %bucket, key = %u.key, upload_id = %u.upload_id,
                    "The store's listing gave this upload again (an inclusive marker or a repeated page): processed once");
                continue;
            }
            listed.seen += 1;
            ctx.opts.progress.listed.fetch_add(1, Ordering::Relaxed);
            let item = match policy::screen(&u.key, u.initiated, now, &rules) {
                Decision::Abort => Item::Candidate(u, now),
                Decision::Keep(reason) => {
                    if matches!(
                        reason,
                        KeepReason::UnknownInitiated
                            | KeepReason::FutureInitiated
                            | KeepReason::AncientInitiated
                            | KeepReason::InitiatedBeforeBucket
                    ) {
                        tracing::warn!(bucket = %bucket, key = %u.key, upload_id = %u.upload_id,
                            initiated = ?u.initiated, reason = ?reason, bucket_created = ?listed.bucket_created,
                            "Keeping upload with untrustworthy initiation time: the store's Initiated cannot be true");
                    }
                    let initiated = u.initiated;
                    let mut entry = UploadReport::new(u, now);
                    entry.keep(reason);
                    if let (KeepReason::InitiatedBeforeBucket, Some(i), Some(c)) =
                        (reason, initiated, listed.bucket_created)
                    {
                        entry.detail = Some(format!(
                            "the store says this upload began at {}, before its bucket was created ({}): the store's Initiated cannot be true",
                            i.to_rfc3339(),
                            c.to_rfc3339()
                        ));
                    }
                    Item::Screened(entry)
                }
            };
            if tx.send(item).await.is_err() {
                return listed;
            }
        }
        if server.is_none() {
            server = page.server.clone();
        }
        match page.next {
            None => {
                match server.as_deref() {
                    Some(name) if listed.seen == 0 && blind_store(name) => {
                        listed.blind = Some(name.to_string());
                    }
                    Some(name)
                        if listed.seen == 0
                            && name.contains(crate::store::MINIO_WITHOUT_NOSNIFF) =>
                    {
                        tracing::info!(bucket = %bucket, server = %name,
                            "The store names itself MinIO without MinIO's X-Content-Type-Options: taken as the JuiceFS S3 gateway, which lists uploads bucket-wide, so this empty listing is believed (a MinIO older than July 2021 would list only exact keys and look the same)");
                    }
                    _ => {}
                }
                break;
            }
            Some(next) => {
                empty_pages = if brought_nothing { empty_pages + 1 } else { 0 };
                let problem = not_advancing(marker.as_ref(), &next, ctx.store.ordered_markers())
                    .or_else(|| markers.cycle(&next))
                    .or_else(|| {
                        (empty_pages >= MAX_EMPTY_PAGES).then(|| format!(
                            "the server answered {empty_pages} truncated pages in a row with no upload (last marker key {:?}): refusing to follow it further",
                            next.key
                        ))
                    });
                if let Some(problem) = problem {
                    let e = StoreError::protocol(Operation::ListUploads, problem);
                    tracing::error!(bucket = %bucket, error = %e, "Listing uploads stopped");
                    listed.error = Some(e);
                    break;
                }
                marker = Some(next);
            }
        }
    }
    listed
}

/// The bucket's creation date where the store can give one that can be trusted; a failure (a key
/// without s3:ListAllMyBuckets) only leaves the check out.
async fn bucket_created<S: UploadStore>(ctx: &Ctx<S>) -> Option<DateTime<Utc>> {
    let bucket = ctx.store.bucket();
    let answer = tokio::select! {
        biased;
        () = ctx.opts.cancel.cancelled() => None,
        answer = ctx.store.bucket_created() => answer,
    };
    match answer? {
        Ok(created) => Some(created),
        Err(e) => {
            tracing::debug!(bucket = %bucket, error = %e,
                "The bucket's creation date is unknown: initiation times are not checked against it");
            None
        }
    }
}

/// Whether a store's `Server` header (as the store layer names it, [`crate::store::server_named`])
/// names one that answers ListMultipartUploads only for an exact key, by design (MinIO), so that an
/// empty bucket-wide listing proves nothing (the sweep's verdict, and `doctor`'s). The JuiceFS S3
/// gateway also sends `Server: MinIO` (it is MinIO's gateway code of February 2021) yet lists
/// bucket-wide; it lacks the `X-Content-Type-Options` that MinIO has sent since July 2021, so a
/// MinIO-named answer without it is taken as JuiceFS's: a MinIO older than July 2021 would look the
/// same.
pub fn blind_store(server: &str) -> bool {
    server.to_ascii_lowercase().contains("minio")
        && !server.contains(crate::store::MINIO_WITHOUT_NOSNIFF)
}

/// One candidate: ListParts, the second look, then abort until empty.
async fn process<S: UploadStore>(ctx: &Ctx<S>, u: Upload, now: DateTime<Utc>) -> Processed {
    let settings = &ctx.target.settings;
    let bucket = ctx.store.bucket();
    let mut seen = SeenParts::default();
    let initiated = u.initiated;
    let mut report = UploadReport::new(u, now);
    let (key, id) = (report.key.clone(), report.upload_id.clone());
    let finish = |mut report: UploadReport, seen: &SeenParts, error: Option<StoreError>| {
        report.parts = seen.count();
        report.bytes = seen.bytes();
        report.error = error.as_ref().map(|e| e.to_string());
        let progress = &ctx.opts.progress;
        progress.processed.fetch_add(1, Ordering::Relaxed);
        if report.outcome == Outcome::Aborted {
            progress.aborted.fetch_add(1, Ordering::Relaxed);
            progress
                .reclaimed_bytes
                .fetch_add(seen.bytes(), Ordering::Relaxed);
        }
        Processed { report, error }
    };

    // Nothing has been done to the upload yet: a shutdown drops this ListParts and keeps it.
    let listed = tokio::select! {
        biased;
        () = ctx.opts.cancel.cancelled() => {
            report.keep(KeepReason::ShuttingDown);
            return finish(report, &seen, None);
        }
        listed = ctx.store.list_parts(&key, &id) => listed,
    };
    let parts = match listed {
        Ok(Parts::Gone) => {
            tracing::debug!(bucket = %bucket, key = %key, upload_id = %id, "Upload vanished before its abort");
            report.outcome = Outcome::Vanished;
            return finish(report, &seen, None);
        }
        Ok(Parts::Listed(parts)) => parts,
        Err(e) => {
            tracing::warn!(bucket = %bucket, key = %key, upload_id = %id, error = %e, "Listing parts failed; upload kept");
            return finish(report, &seen, Some(e));
        }
    };
    seen.add(&parts);
    let newest = parts.iter().filter_map(|p| p.last_modified).max();
    let rules = ctx.rules();
    let look = |aborts_started| {
        let run = RunState {
            shutting_down: ctx.opts.cancel.is_cancelled(),
            aborts_started,
        };
        policy::second_look(newest, now, &rules, run)
    };
    // Decide without taking a slot of the cap; then take one and decide with it (only the cap can
    // change the answer), so uploads kept for any other reason never use the cap up.
    let decision = match look(0) {
        Decision::Abort => look(ctx.aborts_started.fetch_add(1, Ordering::Relaxed)),
        keep => keep,
    };
    if let Decision::Keep(reason) = decision {
        report.keep(reason);
        return finish(report, &seen, None);
    }

    let v = verify::abort_until_empty(
        &*ctx.store,
        &key,
        &id,
        initiated,
        &mut seen,
        settings.max_abort_attempts,
        ctx.opts.reabort_backoff,
        &ctx.opts.hard_stop,
    )
    .await;
    report.abort_attempts = v.attempts;
    let error = match v.verification {
        Verification::Verified => {
            report.outcome = Outcome::Aborted;
            None
        }
        Verification::GoneBeforeAbort => {
            tracing::info!(bucket = %bucket, key = %key, upload_id = %id,
                "Upload already gone at its abort (aborted elsewhere or completed): not counted as reclaimed");
            report.outcome = Outcome::GoneBeforeAbort;
            None
        }
        Verification::Unverified { parts_left } => {
            report.outcome = Outcome::Unverified;
            report.parts_remaining = Some(parts_left.len() as u64);
            None
        }
        Verification::Failed(e) => Some(e),
        Verification::Replaced => {
            report.keep(KeepReason::InitiatedTimeChanged);
            None
        }
        Verification::Cut => {
            tracing::warn!(bucket = %bucket, key = %key, upload_id = %id,
                "The shutdown's grace ran out during this upload's abort: given up, reported interrupted");
            report.outcome = Outcome::Interrupted;
            None
        }
    };
    finish(report, &seen, error)
}

fn log_summary(r: &TargetReport, dry_run: bool) {
    tracing::info!(
        bucket = %r.bucket,
        prefix = %r.prefix,
        seen = r.uploads_seen,
        stale = r.stale,
        aborted = r.aborted,
        would_abort = r.would_abort,
        unverified = r.unverified,
        failed = r.failed,
        skipped_idle = r.skipped_idle,
        skipped_excluded = r.skipped_excluded,
        abort_attempts = r.abort_attempts,
        reclaimed_bytes = r.reclaimed_bytes,
        capped = r.capped,
        dry_run,
        seconds = r.duration_seconds,
        error = r.error.as_deref().unwrap_or(""),
        "Swept target"
    );
}
