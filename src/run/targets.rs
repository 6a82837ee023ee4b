//! The route from a run's targets to their reports: discovery expands `bucket = "*"` targets into
//! the buckets they match now, each target gets its store (one client per connection settings),
//! is swept by [`crate::sweep`], and the reports are collected in configuration order, up to
//! `parallel_targets` targets at a time.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use chrono::Utc;
use futures::{FutureExt as _, StreamExt as _};

use crate::config::{Kind, Target};
use crate::discover::{self, Scope};
use crate::report::{RunReport, TargetReport};
use crate::store::{AnyStore, Connector, ErrorKind, StoreError};
use crate::sweep::{SweepOptions, sweep};

/// The store of a target (built or reused by `connector`).
async fn connect(target: &Target, connector: &Connector) -> Result<AnyStore, StoreError> {
    Ok(match &target.kind {
        Kind::Vault(v) => AnyStore::Glacier(
            connector
                .vault(&target.bucket, v, &target.settings.client())
                .await?,
        ),
        Kind::Bucket | Kind::Discovered(_) | Kind::Discovery(_) => AnyStore::S3(
            connector
                .store(&target.bucket, &target.settings.client())
                .await?,
        ),
    })
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
    if let Kind::Discovered(d) = &target.kind {
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
    let started_at = Utc::now();
    let (targets, discovery) = discover::expand(targets, connector, scope).await;
    opts.progress
        .targets
        .fetch_add(targets.len() as u64, Ordering::Relaxed);
    // By index: a closure taking `&Target` cannot be proven Send where the daemon spawns this
    // (rust-lang/rust#102211).
    let targets = &*targets;
    let mut reports: Vec<(usize, TargetReport)> = futures::stream::iter(0..targets.len())
        .map(|i| connect_and_sweep(&targets[i], connector, opts).map(move |r| (i, r)))
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
