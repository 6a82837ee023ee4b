//! The `run` daemon: one tokio-cron-scheduler job per target on its own schedule and time zone, never
//! two sweeps of one target at once (a tick that finds the previous sweep running is skipped, logged
//! and counted), metrics recorded after every sweep, and a shutdown that stops new aborts, lets the
//! ones in flight finish and be verified, and exits within a bounded grace period.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_cron_scheduler::{Job, JobScheduler};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, Schedule, Target};
use crate::http::ReadyCheck;
use crate::notify::Notifier;
use crate::report::TargetReport;
use crate::runner::{Exporter, Runner};
use crate::shutdown::Shutdown;
use crate::sweep::connect_and_sweep;

/// A daemon failure that stops it from starting.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The metrics address cannot be bound.
    #[error("cannot listen on {addr} (metrics.listen): {source}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The metrics export cannot be set up.
    #[error("cannot set up the metrics export: {0}")]
    Export(String),
    /// The scheduler refused a job.
    #[error("cannot schedule target {bucket:?} with {schedule:?}: {message}")]
    Schedule {
        /// The target's bucket.
        bucket: String,
        /// Its schedule.
        schedule: String,
        /// Why.
        message: String,
    },
}

/// Per-target state shared by the scheduler, the sweeps and `/readyz`.
struct TargetState {
    target: Target,
    running: AtomicBool,
    /// End of the last sweep.
    last_sweep: std::sync::Mutex<Option<DateTime<Utc>>>,
    /// Time between two ticks of its schedule (`None`: it does not fire again, never overdue).
    period: Option<Duration>,
}

/// The daemon's shared state.
pub struct Daemon {
    runner: Runner,
    exporter: Exporter,
    targets: Vec<TargetState>,
    started: DateTime<Utc>,
    tracker: TaskTracker,
    notifier: Notifier,
}

impl Daemon {
    /// A daemon for a validated configuration.
    pub fn new(config: &Config, exporter: Exporter, shutdown: Shutdown) -> Arc<Self> {
        let metrics = &exporter.metrics;
        let now = Utc::now();
        let targets = config
            .targets
            .iter()
            .map(|t| {
                metrics.touch(&t.bucket);
                TargetState {
                    target: t.clone(),
                    running: AtomicBool::new(false),
                    last_sweep: std::sync::Mutex::new(None),
                    period: schedule_period(&t.settings.schedule, now),
                }
            })
            .collect();
        Arc::new(Daemon {
            runner: Runner::new(config, shutdown),
            exporter,
            targets,
            started: now,
            tracker: TaskTracker::new(),
            notifier: Notifier::from_env(),
        })
    }

    /// `/readyz`: every target swept no longer ago than twice its schedule period, counting from
    /// the daemon's start for targets not yet due.
    pub fn readiness(self: &Arc<Self>) -> ReadyCheck {
        let d = self.clone();
        Arc::new(move || {
            let now = Utc::now();
            let mut late = Vec::new();
            for s in &d.targets {
                let last = s.last_sweep.lock().map(|l| *l).unwrap_or(None);
                let since = last.unwrap_or(d.started);
                let limit = s
                    .period
                    .and_then(|p| chrono::Duration::from_std(p * 2).ok())
                    .unwrap_or(chrono::Duration::MAX);
                if now - since > limit {
                    late.push(format!(
                        "{} (last sweep {})",
                        s.target.bucket,
                        last.map(|t| t.to_rfc3339())
                            .unwrap_or_else(|| "never".into())
                    ));
                }
            }
            if late.is_empty() {
                Ok(format!("{} targets", d.targets.len()))
            } else {
                Err(format!("overdue: {}", late.join(", ")))
            }
        })
    }

    /// One scheduler tick for target `i`: start a sweep unless one is already running.
    fn tick(self: &Arc<Self>, i: usize) {
        let s = &self.targets[i];
        if self.runner.shutdown.token().is_cancelled() {
            return;
        }
        if s.running.swap(true, Ordering::AcqRel) {
            tracing::warn!(bucket = %s.target.bucket, "Previous sweep still running; skipping this tick");
            self.exporter.metrics.sweep_skipped(&s.target.bucket);
            return;
        }
        let d = self.clone();
        self.tracker.spawn(async move {
            let report = d.sweep_target(i).await;
            d.after_sweep(i, &report);
            d.targets[i].running.store(false, Ordering::Release);
        });
    }

    async fn sweep_target(&self, i: usize) -> TargetReport {
        let t = &self.targets[i].target;
        let jitter = t.settings.start_jitter.0;
        if !jitter.is_zero() {
            let wait = jitter.mul_f64(rand::random_range(0.0..1.0));
            let cancel = self.runner.shutdown.token();
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = cancel.cancelled() => {}
            }
        }
        let opts = self.runner.options(0);
        connect_and_sweep(t, &self.runner.connector, &opts).await
    }

    fn after_sweep(&self, i: usize, r: &TargetReport) {
        // A failed textfile write is logged by the exporter; the daemon goes on.
        self.exporter.record(r);
        if let Ok(mut last) = self.targets[i].last_sweep.lock() {
            *last = Some(Utc::now());
        }
        self.notifier.send(&format!(
            "STATUS=Last sweep of {}: {} aborted, {} bytes reclaimed, {} unverified, {} failed{}",
            r.bucket,
            r.aborted,
            r.reclaimed_bytes,
            r.unverified,
            r.failed,
            if r.error.is_some() {
                " (target failed)"
            } else {
                ""
            }
        ));
    }
}

/// The interval between two consecutive ticks of a schedule after `now`; `None` when it does not
/// fire twice (such a target is never reported overdue by `/readyz`).
fn schedule_period(schedule: &Schedule, now: DateTime<Utc>) -> Option<Duration> {
    let cron = schedule.cron();
    let first = cron.find_next_occurrence(&now, false).ok()?;
    let second = cron.find_next_occurrence(&first, false).ok()?;
    (second - first).to_std().ok()
}

/// Runs the daemon until SIGTERM/SIGINT (or `cancel`), then drains. Returns the process exit code.
pub async fn run(config: Config, cancel: CancellationToken) -> Result<u8, DaemonError> {
    // Counters continue from the textfile an earlier run wrote, as `once` does.
    let exporter = Exporter::new(&config, false).map_err(DaemonError::Export)?;
    let metrics = exporter.metrics.clone();
    let shutdown = Shutdown::with_token(cancel, config.daemon.shutdown_grace.0);
    let listen = config.metrics.listen.clone();
    let daemon = Daemon::new(&config, exporter, shutdown.clone());

    let http_cancel = CancellationToken::new();
    let server = if listen.is_empty() {
        None
    } else {
        let listener = crate::http::bind(&listen).map_err(|source| DaemonError::Listen {
            addr: listen.clone(),
            source,
        })?;
        tracing::info!(addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or(listen.clone()), "Serving /metrics, /healthz, /readyz");
        let (m, r, c) = (metrics.clone(), daemon.readiness(), http_cancel.clone());
        Some(tokio::spawn(crate::http::serve(listener, m, r, c)))
    };

    if daemon.targets.is_empty() {
        tracing::warn!("No targets in this shard: serving metrics only");
    }
    let mut scheduler = JobScheduler::new().await.map_err(scheduler_error)?;
    for (i, s) in daemon.targets.iter().enumerate() {
        let tz = s.target.settings.timezone.0;
        let d = daemon.clone();
        let job = Job::new_async_tz(s.target.settings.schedule.as_str(), tz, move |_, _| {
            d.tick(i);
            Box::pin(async {})
        })
        .map_err(|e| schedule_error(&s.target, e))?;
        scheduler
            .add(job)
            .await
            .map_err(|e| schedule_error(&s.target, e))?;
    }
    scheduler.start().await.map_err(scheduler_error)?;
    tracing::info!(targets = daemon.targets.len(), "Daemon started");
    daemon
        .notifier
        .send("READY=1\nSTATUS=Waiting for the first scheduled sweep");

    let watchdog = daemon.notifier.watchdog_interval().map(|every| {
        let d = daemon.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                d.notifier.send("WATCHDOG=1");
            }
        })
    });

    shutdown.signalled().await;
    daemon.notifier.send("STOPPING=1");
    tracing::info!(
        sweeps_in_flight = daemon.tracker.len(),
        grace_seconds = shutdown.grace().as_secs_f64(),
        "Shutting down: no new aborts; finishing the ones in flight"
    );
    let _ = scheduler.shutdown().await;
    daemon.tracker.close();
    let drained = shutdown.drain(daemon.tracker.wait()).await.is_some();
    if let Some(w) = watchdog {
        w.abort();
    }
    http_cancel.cancel();
    if let Some(s) = server {
        let _ = tokio::time::timeout(Duration::from_secs(2), s).await;
    }
    if drained {
        tracing::info!("Shut down cleanly");
        Ok(0)
    } else {
        Ok(1)
    }
}

fn schedule_error(t: &Target, e: impl std::fmt::Display) -> DaemonError {
    DaemonError::Schedule {
        bucket: t.bucket.clone(),
        schedule: t.settings.schedule.as_str().to_string(),
        message: e.to_string(),
    }
}

fn scheduler_error(e: impl std::fmt::Display) -> DaemonError {
    DaemonError::Schedule {
        bucket: "*".into(),
        schedule: String::new(),
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_of_common_schedules() {
        let now = Utc::now();
        let table = [
            ("* * * * * *", 1),
            ("*/5 * * * * *", 5),
            ("0 * * * * *", 60),
            ("0 0 * * * *", 3600),
            ("0 30 2 * * *", 86_400),
        ];
        for (expr, secs) in table {
            assert_eq!(
                schedule_period(&expr.parse().unwrap(), now),
                Some(Duration::from_secs(secs)),
                "{expr}"
            );
        }
    }
}
