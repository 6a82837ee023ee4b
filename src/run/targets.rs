//! The route from a run's targets to their reports: discovery expands `bucket = "*"` targets into
//! the buckets they match now, each target gets its store (one client per connection settings),
//! is swept by [`crate::sweep`], and the reports are collected in configuration order, up to
//! `parallel_targets` targets at a time.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use chrono::Utc;
use futures::{FutureExt as _, StreamExt as _};

use super::coordinate::{self, Coordinator, Turn};
use crate::config::{Kind, Target};
use crate::discover::{self, Scope};
use crate::report::{LeaseReport, LeaseStatus, RunReport, TargetReport};
use crate::store::{AnyStore, Connector, ErrorKind, StoreError};
use crate::sweep::{SweepOptions, sweep};

/// The store of a target (built or reused by `connector`): a vault's, else a bucket's.
pub async fn connect(target: &Target, connector: &Connector) -> Result<AnyStore, StoreError> {
    Ok(match &target.kind {
        Kind::Vault(v) => AnyStore::Glacier(
            connector
                .vault(&target.bucket, v, &target.settings.client())
                .await?,
        ),
        Kind::Bucket | Kind::Discovery(_) => AnyStore::S3(Box::new(
            connector
                .store(&target.bucket, &target.settings.client())
                .await?,
        )),
        Kind::Discovered(_, created) => AnyStore::S3(Box::new(
            connector
                .store(&target.bucket, &target.settings.client())
                .await?
                .created(*created),
        )),
    })
}

/// Sweeps `target` if the lease says it is this process's turn, holding the lease meanwhile; a
/// target another replica swept (or sweeps) is reported as such.
async fn in_turn(
    target: &Target,
    connector: &Connector,
    opts: &SweepOptions,
    coordinator: &Coordinator,
) -> TargetReport {
    match coordinator.claim(target, connector).await {
        Turn::Skip(note) => {
            opts.progress.targets_listed.fetch_add(1, Ordering::Relaxed);
            TargetReport {
                bucket: target.bucket.clone(),
                vault: target.vault().is_some(),
                prefix: target.prefix.clone(),
                finished_at: Utc::now(),
                lease: Some(note),
                ..Default::default()
            }
        }
        Turn::Sweep { lease: None, note } => {
            let mut r = connect_and_sweep(target, connector, opts).await;
            r.lease = note;
            r
        }
        Turn::Sweep {
            lease: Some(lease),
            note,
        } => {
            // The lease's loss stops new aborts as a shutdown does, for this target only.
            let cancel = opts.cancel.child_token();
            let held = SweepOptions {
                cancel: cancel.clone(),
                ..opts.clone()
            };
            let sweep = connect_and_sweep(target, connector, &held);
            let (mut r, loss) = coordinate::hold(lease, &cancel, sweep, |r: &TargetReport| {
                r.error.is_none() && !r.is_interrupted()
            })
            .await;
            r.lease = match (loss, note) {
                (Some(why), Some(note)) => Some(LeaseReport {
                    status: LeaseStatus::Lost,
                    detail: Some(why),
                    ..note
                }),
                (_, note) => note,
            };
            r
        }
    }
}

/// Builds (or reuses) the target's client and sweeps it. A client that cannot be built (bad CA
/// bundle...) becomes the target's error entry.
pub async fn connect_and_sweep(
    target: &Target,
    connector: &Connector,
    opts: &SweepOptions,
) -> TargetReport {
    let mut r = match connect(target, connector).await {
        Ok(store) => sweep(Arc::new(store), target, opts).await,
        Err(e) => {
            opts.progress.targets_listed.fetch_add(1, Ordering::Relaxed);
            tracing::error!(bucket = %target.bucket, error = %e, "Cannot reach the store");
            let mut r = TargetReport {
                bucket: target.bucket.clone(),
                vault: target.vault().is_some(),
                prefix: target.prefix.clone(),
                error: Some(e.to_string()),
                finished_at: Utc::now(),
                ..Default::default()
            };
            r.count_error(e.operation, e.kind);
            r
        }
    };
    if let Kind::Discovered(d, _) = &target.kind {
        r.discovered_by = Some(d.rule.clone());
        // Discovered, then deleted before its listing: nothing was left to sweep.
        if r.error.is_some()
            && r.uploads_seen == 0
            && r.errors.iter().any(|e| e.kind == ErrorKind::NoSuchBucket)
        {
            tracing::info!(bucket = %target.bucket, rule = %d.rule, "The bucket was deleted since it was discovered");
            r.error = None;
            r.bucket_deleted = true;
        }
    }
    r
}

/// Sweeps several targets, up to `parallel_targets` at a time; the report lists them in order. A
/// discovery target is first expanded into the buckets it matches now ([`discover::expand`]).
pub async fn sweep_targets(
    targets: &[Target],
    connector: &Connector,
    opts: &SweepOptions,
    parallel_targets: usize,
    scope: &Scope,
) -> RunReport {
    let off = Coordinator::default();
    sweep_coordinated(targets, connector, opts, parallel_targets, scope, &off).await
}

/// [`sweep_targets`], each target in its turn as the replicas' lease says ([`Coordinator`]).
pub(super) async fn sweep_coordinated(
    targets: &[Target],
    connector: &Connector,
    opts: &SweepOptions,
    parallel_targets: usize,
    scope: &Scope,
    coordinator: &Coordinator,
) -> RunReport {
    let started_at = Utc::now();
    let (targets, discovery) = discover::expand(targets, connector, scope).await;
    opts.progress
        .targets
        .fetch_add(targets.len() as u64, Ordering::Relaxed);
    // By index: a closure taking `&Target` cannot be proven Send where the daemon spawns this
    // (rust-lang/rust#102211).
    let targets = &*targets;
    let mut reports: Vec<(usize, TargetReport)> = futures::stream::iter(0..targets.len())
        .map(|i| in_turn(&targets[i], connector, opts, coordinator).map(move |r| (i, r)))
        .buffer_unordered(parallel_targets.max(1))
        .collect()
        .await;
    reports.sort_by_key(|(i, _)| *i);
    RunReport {
        run_id: String::new(),
        started_at,
        finished_at: Utc::now(),
        dry_run: !targets.is_empty() && targets.iter().all(|t| t.settings.dry_run),
        targets: reports.into_iter().map(|(_, r)| r).collect(),
        interrupted: false,
        discovery,
        export_errors: Vec::new(),
    }
}
