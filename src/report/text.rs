//! The report as a person reads it: `plan`'s table per target and `once`'s block per target with a
//! total line, in plain text (the JSON is the model's own serialization).

use std::fmt::Write as _;

use super::{LeaseStatus, Outcome, RunReport, TargetReport, UploadReport};
use crate::policy::{ClockSource, KeepReason};

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
        // A target that could not be listed is not an empty one: its headline says so.
        if let Some(e) = &t.error
            && t.uploads_seen == 0
        {
            let _ = writeln!(out, "{}: FAILED, nothing could be listed", target_name(t));
            let _ = writeln!(out, "  ERROR: {e}");
            continue;
        }
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
        if let Some(line) = lease_line(t) {
            let _ = writeln!(out, "  lease: {line}");
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
        if let Some(line) = exclusions_line(t) {
            let _ = writeln!(out, "  {line}");
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
            let (extra, name) = if t.vault {
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
                let extra = if t.vault {
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
    for e in &run.export_errors {
        let _ = writeln!(
            out,
            "EXPORT FAILED: {e} (the sweep's figures above still stand; the exit code is 1)"
        );
    }
    if run.interrupted {
        out.push_str(INTERRUPTED_LINE);
    }
    out
}

/// The report of a sweep as text: one block per target and a total line.
pub fn render_run_text(run: &RunReport) -> String {
    let mut out = render_discovery(run);
    for t in &run.targets {
        if let Some(line) = skipped_line(t) {
            let _ = writeln!(out, "{} [skipped] {line}", target_name(t));
            continue;
        }
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
            "  kept: fresh {}  excluded {}  idle {}  suspicious {}  vanished {}  gone-before-abort {}  capped {}{}  interrupted {}",
            t.skipped_fresh,
            t.skipped_excluded,
            t.skipped_idle,
            t.skipped_suspicious,
            t.vanished,
            t.gone_before_abort,
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
        if let Some(line) = lease_line(t) {
            let _ = writeln!(out, "  lease: {line}");
        }
        if t.listing_repeats > 0 {
            let _ = writeln!(
                out,
                "  the store's listing gave {} more than once (an inclusive marker or a repeated page): each was processed once",
                plural(t.listing_repeats, "upload")
            );
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
        // What the sweep did to each upload (as many as the report kept: --max-listed).
        for u in t.uploads.iter().filter(|u| {
            matches!(
                u.outcome,
                Outcome::Aborted | Outcome::GoneBeforeAbort | Outcome::WouldAbort
            )
        }) {
            let _ = writeln!(
                out,
                "  {} {:?} upload {}: {}, {} after {}",
                outcome_word(u.outcome),
                u.key,
                u.upload_id,
                plural(u.parts, "part"),
                human_bytes(u.bytes),
                plural(u64::from(u.abort_attempts), "abort")
            );
        }
        if t.uploads_omitted > 0 {
            let _ = writeln!(
                out,
                "  ... and {} more not listed (--max-listed; every one is in the audit trail)",
                plural(t.uploads_omitted, "upload")
            );
        }
    }
    let total = run.totals();
    let _ = writeln!(
        out,
        "total: {}, {} aborted, {} reclaimed, {} unverified, {}, {}{}",
        plural(total.targets, "target"),
        plural(total.aborted, "upload"),
        human_bytes(total.reclaimed_bytes),
        total.unverified,
        plural(total.failed, "failed upload"),
        plural(total.failed_targets, "failed target"),
        if run.dry_run {
            " (dry run: nothing changed)"
        } else {
            ""
        }
    );
    for e in &run.export_errors {
        let _ = writeln!(
            out,
            "EXPORT FAILED: {e} (the sweep's figures above still stand; the exit code is 1)"
        );
    }
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

/// Why another replica's sweep stands for this target's, when it does.
fn skipped_line(t: &TargetReport) -> Option<String> {
    let l = t.lease.as_ref()?;
    let at = l.at.map(super::timestamp).unwrap_or_default();
    match l.status {
        LeaseStatus::SweptByOther => Some(format!(
            "swept by {} at {at} in this schedule period (the replicas' lease)",
            l.holder
        )),
        LeaseStatus::HeldByOther => Some(format!(
            "{} holds the replicas' lease until {at} and sweeps it",
            l.holder
        )),
        _ => None,
    }
}

/// What the lease said of a target this process swept, when there is something to say.
fn lease_line(t: &TargetReport) -> Option<String> {
    let l = t.lease.as_ref()?;
    let at = l.at.map(super::timestamp).unwrap_or_default();
    let detail = l.detail.as_deref().unwrap_or_default();
    match l.status {
        LeaseStatus::Held => Some(format!("held by {} (released)", l.holder)),
        LeaseStatus::Lost => Some(format!(
            "LOST mid-sweep ({detail}): no abort started after the loss; another replica finishes"
        )),
        LeaseStatus::Unsupported => Some(format!(
            "COORDINATION OFF: {detail}; every replica sweeps this target (the figures stay exact)"
        )),
        LeaseStatus::Error => Some(format!("not used ({detail}); swept without it")),
        LeaseStatus::Free if !l.holder.is_empty() => {
            Some(format!("free; last held by {} {at}", l.holder))
        }
        LeaseStatus::HeldByOther => Some(format!("held by {} until {at}", l.holder)),
        LeaseStatus::Free | LeaseStatus::SweptByOther => None,
    }
}

fn target_name(t: &TargetReport) -> String {
    if t.vault {
        format!("glacier {}", t.bucket)
    } else if t.prefix.is_empty() {
        format!("s3://{}", t.bucket)
    } else {
        format!("s3://{}/{}", t.bucket, t.prefix)
    }
}

/// What each of `exclude_prefixes` kept: `exclusions: "tmp/" kept 3, "logz/" kept none (a typo?)`.
fn exclusions_line(t: &TargetReport) -> Option<String> {
    if t.exclusions.is_empty() || t.uploads_seen == 0 {
        return None;
    }
    let each: Vec<String> = t
        .exclusions
        .iter()
        .map(|e| match e.uploads {
            0 => format!("{:?} kept none (a typo?)", e.prefix),
            n => format!("{:?} kept {n}", e.prefix),
        })
        .collect();
    Some(format!("exclusions: {}", each.join(", ")))
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
        Outcome::GoneBeforeAbort => "gone-before-abort",
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
        KeepReason::InitiatedBeforeBucket => "initiated-before-bucket",
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
}
