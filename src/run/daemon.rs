//! The `run` daemon: one tokio-cron-scheduler job per target on its own schedule and time zone, each
//! tick a sweep on the run layer's route ([`Runner::sweep`], exported there), never two sweeps of
//! one target at once (a tick that finds the previous sweep running is skipped, logged and counted), and a shutdown that stops new aborts, lets the
//! ones in flight finish and be verified, and exits within a bounded grace period. SIGHUP reloads
//! the configuration (loaded and validated as at startup; an invalid one is refused and the one in
//! force kept), with sd_notify's RELOADING=1 / READY=1 around it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_cron_scheduler::{Job, JobScheduler};
use tokio_util::sync::CancellationToken;

use super::{Exporter, Runner};
use crate::config::{Config, ConfigError, Schedule, Target};
use crate::discover::Scope;
use crate::exit::Exit;
use crate::http::ReadyCheck;
use crate::notify::Notifier;
use crate::report::RunReport;
use crate::shutdown::Shutdown;

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

/// What one target keeps across reloads, shared by every generation of the configuration that
/// names it (same bucket and prefix): never two sweeps of it at once, and its last sweep.
struct Slot {
    running: AtomicBool,
    /// End of the last sweep.
    last_sweep: std::sync::Mutex<Option<DateTime<Utc>>>,
}

/// One target of one generation of the configuration, shared by its cron job, its sweeps and
/// `/readyz`. A sweep holds it to its end, so a reload never changes a sweep in progress.
struct TargetState {
    target: Target,
    slot: Arc<Slot>,
    /// Time between two ticks of its schedule (`None`: it does not fire twice), for the log.
    period: Option<Duration>,
    /// What its discovery respects (the generation's explicit targets and shard).
    scope: Arc<Scope>,
}

impl TargetState {
    /// Says when the target is swept next, so that a daemon is never silent about time.
    fn log_next_sweep(&self) {
        let t = &self.target;
        let tz = t.settings.timezone.0;
        let now = Utc::now().with_timezone(&tz);
        match t.settings.schedule.cron().find_next_occurrence(&now, false) {
            Ok(next) => tracing::info!(
                bucket = %t.bucket,
                at = %next.to_rfc3339(),
                every = %self.period.map(|p| humantime::format_duration(p).to_string()).unwrap_or_default(),
                "Next sweep at {}", next.to_rfc3339()
            ),
            Err(_) => {
                tracing::warn!(bucket = %t.bucket, "The schedule never fires again: no next sweep")
            }
        }
    }
}

/// How `run` reads its configuration again on SIGHUP: the loader and validation of startup.
pub type Reload = Box<dyn Fn() -> Result<Config, ConfigError> + Send + Sync>;

/// The daemon's shared state.
pub struct Daemon {
    runner: Arc<Runner>,
    /// The scheduler has started its jobs (`/readyz`).
    scheduling: AtomicBool,
    /// The targets of the configuration in force; replaced whole by a reload.
    targets: parking_lot::RwLock<Arc<Vec<Arc<TargetState>>>>,
    notifier: Notifier,
}

impl Daemon {
    /// A daemon for a validated configuration.
    pub fn new(config: &Config, exporter: Exporter, shutdown: Shutdown) -> Arc<Self> {
        let d = Daemon {
            runner: Arc::new(Runner::new(config, shutdown, exporter)),
            scheduling: AtomicBool::new(false),
            targets: parking_lot::RwLock::default(),
            notifier: Notifier::from_env(),
        };
        let targets = d.generation(config);
        *d.targets.write() = targets;
        Arc::new(d)
    }

    /// The targets of `config`, each on the slot of the target of the same bucket and prefix in
    /// force (the n-th of several alike on the n-th), or on a new one.
    fn generation(&self, config: &Config) -> Arc<Vec<Arc<TargetState>>> {
        let now = Utc::now();
        let current = self.current();
        let mut seen = HashMap::<(&str, &str), usize>::new();
        let mut old = HashMap::new();
        for s in current.iter() {
            let n = seen
                .entry((&s.target.bucket, &s.target.prefix))
                .or_default();
            old.insert(
                (s.target.bucket.clone(), s.target.prefix.clone(), *n),
                s.slot.clone(),
            );
            *n += 1;
        }
        let mut seen = HashMap::<(&str, &str), usize>::new();
        let scope = Arc::new(Scope::of(config));
        let targets = config
            .targets
            .iter()
            .map(|t| {
                let n = seen.entry((&t.bucket, &t.prefix)).or_default();
                let key = (t.bucket.clone(), t.prefix.clone(), *n);
                *n += 1;
                if !t.discovers() {
                    self.runner.exporter.metrics.touch(&t.bucket);
                }
                let slot = old.get(&key).cloned().unwrap_or_else(|| {
                    Arc::new(Slot {
                        running: AtomicBool::new(false),
                        last_sweep: std::sync::Mutex::new(None),
                    })
                });
                Arc::new(TargetState {
                    target: t.clone(),
                    slot,
                    period: schedule_period(&t.settings.schedule, now),
                    scope: scope.clone(),
                })
            })
            .collect();
        Arc::new(targets)
    }

    fn current(&self) -> Arc<Vec<Arc<TargetState>>> {
        self.targets.read().clone()
    }

    /// `/readyz`: whether the process is ready, what a kubelet should act on: the configuration is
    /// loaded (the daemon exists), the scheduler runs and no shutdown has begun. Sweeps that are
    /// overdue or failing are not readiness (a slow store must not take a sidecar's pod out of its
    /// Service): they are metrics (`mpu_janitor_last_sweep_timestamp_seconds`,
    /// `mpu_janitor_last_success_timestamp_seconds`) and the alerts built on them.
    pub fn readiness(self: &Arc<Self>) -> ReadyCheck {
        let d = self.clone();
        Arc::new(move || {
            if d.runner.shutdown.token().is_cancelled() {
                Err("shutting down".to_string())
            } else if !d.scheduling.load(Ordering::Acquire) {
                Err("the scheduler is not running yet".to_string())
            } else {
                Ok(format!("{} targets scheduled", d.current().len()))
            }
        })
    }

    /// One scheduler tick for a target: start a sweep unless one of it is already running.
    fn tick(self: &Arc<Self>, s: &Arc<TargetState>) {
        if self.runner.shutdown.token().is_cancelled() {
            return;
        }
        if s.slot.running.swap(true, Ordering::AcqRel) {
            tracing::warn!(bucket = %s.target.bucket, "Previous sweep still running; skipping this tick");
            self.runner.exporter.metrics.sweep_skipped(&s.target.bucket);
            return;
        }
        let (d, s) = (self.clone(), s.clone());
        self.runner.spawn(async move {
            let run = d.sweep_target(&s).await;
            d.after_sweep(&s, &run);
            s.slot.running.store(false, Ordering::Release);
        });
    }

    /// One sweep of the target (of its bucket, or of every bucket its discovery finds now) on
    /// the run layer's route, exported there.
    async fn sweep_target(&self, s: &TargetState) -> RunReport {
        let t = &s.target;
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
        // A failed textfile write is logged and counted by the export; the daemon goes on.
        self.runner
            .sweep(std::slice::from_ref(t), &s.scope, &opts)
            .await
    }

    fn after_sweep(&self, s: &TargetState, run: &RunReport) {
        if let Ok(mut last) = s.slot.last_sweep.lock() {
            *last = Some(Utc::now());
        }
        s.log_next_sweep();
        for r in &run.targets {
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

    /// One cron job per target of the generation in force.
    fn jobs(self: &Arc<Self>) -> Result<Vec<Job>, DaemonError> {
        self.current()
            .iter()
            .map(|s| {
                let tz = s.target.settings.timezone.0;
                let (d, ts) = (self.clone(), s.clone());
                Job::new_async_tz(s.target.settings.schedule.as_str(), tz, move |_, _| {
                    d.tick(&ts);
                    Box::pin(async {})
                })
                .map_err(|e| schedule_error(&s.target, e))
            })
            .collect()
    }

    /// SIGHUP: loads and validates the configuration again; a valid one replaces the targets and
    /// their schedules and settings from the next tick (sweeps in progress finish on the old one),
    /// an invalid one is refused, logged, and the one in force is kept. Says so to systemd.
    async fn reload(
        self: &Arc<Self>,
        load: &Reload,
        in_force: &mut Config,
        scheduler: &JobScheduler,
        jobs: &mut Vec<uuid::Uuid>,
    ) {
        self.notifier.reloading();
        tracing::info!("SIGHUP received: reloading the configuration");
        let config = match load() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(
                    "Reload refused, the configuration in force is kept: {}",
                    e.problems.join("; ")
                );
                self.notifier.send(
                    "READY=1\nSTATUS=Reload refused: invalid configuration; the previous one is in force",
                );
                return;
            }
        };
        for w in config.warnings() {
            tracing::warn!("{w}");
        }
        let restart_only = in_force.restart_only_changes(&config);
        if !restart_only.is_empty() {
            tracing::warn!(
                keys = %restart_only.join(", "),
                "These keys changed but take effect only at the next restart"
            );
        }
        let next = self.generation(&config);
        let previous = std::mem::replace(&mut *self.targets.write(), next);
        let new_jobs = match self.jobs() {
            Ok(j) => j,
            Err(e) => {
                *self.targets.write() = previous;
                tracing::error!(error = %e, "Reload refused, the configuration in force is kept");
                self.notifier.send("READY=1\nSTATUS=Reload refused: a schedule was not accepted; the previous configuration is in force");
                return;
            }
        };
        for id in jobs.drain(..) {
            if let Err(e) = scheduler.remove(&id).await {
                tracing::warn!(error = %e, "Removing a job of the previous configuration failed");
            }
        }
        for job in new_jobs {
            match scheduler.add(job).await {
                Ok(id) => jobs.push(id),
                Err(e) => {
                    tracing::error!(error = %e, "The scheduler refused a job after the reload")
                }
            }
        }
        let (before, after) = (previous.len(), config.targets.len());
        let changed = target_changes(&in_force.targets, &config.targets);
        // The keys a reload does not apply stay in force, so the next reload compares against them.
        *in_force = in_force.reloaded(config);
        let targets = if after == 1 { "target" } else { "targets" };
        tracing::info!(
            targets = after,
            previous_targets = before,
            changes = %changed,
            "Configuration reloaded: {after} {targets} ({changed}) from the next scheduled sweep"
        );
        self.notifier.send(&format!(
            "READY=1\nSTATUS=Configuration reloaded: {after} {targets}"
        ));
    }
}

/// What a reload changes in the targets, in words: those added, removed and whose settings
/// changed (by bucket and prefix), or that nothing did.
fn target_changes(old: &[Target], new: &[Target]) -> String {
    let name = |t: &Target| format!("{}/{}", t.bucket, t.prefix);
    let find = |list: &[Target], t: &Target| {
        list.iter()
            .find(|o| o.bucket == t.bucket && o.prefix == t.prefix)
            .cloned()
    };
    let added: Vec<String> = new
        .iter()
        .filter(|t| find(old, t).is_none())
        .map(name)
        .collect();
    let removed: Vec<String> = old
        .iter()
        .filter(|t| find(new, t).is_none())
        .map(name)
        .collect();
    let changed: Vec<String> = new
        .iter()
        .filter(|t| find(old, t).is_some_and(|o| o != **t))
        .map(name)
        .collect();
    let mut parts = Vec::new();
    for (what, list) in [("added", added), ("removed", removed), ("changed", changed)] {
        if !list.is_empty() {
            parts.push(format!("{what}: {}", list.join(", ")));
        }
    }
    if parts.is_empty() {
        "no target changed".to_string()
    } else {
        parts.join("; ")
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

/// Runs the daemon until SIGTERM/SIGINT (or `cancel`), then drains; reloads with `reload` on
/// SIGHUP (without one, SIGHUP drains like SIGTERM). Returns how the process exits.
pub async fn run(
    config: Config,
    reload: Option<Reload>,
    cancel: CancellationToken,
) -> Result<Exit, DaemonError> {
    let mut config = config;
    // Registered first: from here on SIGHUP no longer terminates the process.
    let mut hangups = match reload {
        Some(load) => Some((
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
                .map_err(|e| DaemonError::Export(format!("cannot handle SIGHUP: {e}")))?,
            load,
        )),
        None => None,
    };
    // Counters continue from the textfile an earlier run wrote, as `once` does.
    let exporter = Exporter::new(&config, false).map_err(DaemonError::Export)?;
    let metrics = exporter.metrics.clone();
    let mut shutdown = Shutdown::with_token(cancel, config.daemon.shutdown_grace.0);
    if hangups.is_some() {
        shutdown = shutdown.reload_on_hangup();
    }
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

    if daemon.current().is_empty() {
        tracing::warn!("No targets in this shard: serving metrics only");
    }
    let scheduler = JobScheduler::new().await.map_err(scheduler_error)?;
    let mut jobs = Vec::new();
    for job in daemon.jobs()? {
        jobs.push(scheduler.add(job).await.map_err(scheduler_error)?);
    }
    scheduler.start().await.map_err(scheduler_error)?;
    daemon.scheduling.store(true, Ordering::Release);
    tracing::info!(targets = daemon.current().len(), "Daemon started");
    for s in daemon.current().iter() {
        s.log_next_sweep();
    }
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

    let stop = shutdown.signalled();
    tokio::pin!(stop);
    loop {
        let hangup = async {
            match &mut hangups {
                Some((signal, _)) => signal.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = &mut stop => break,
            _ = hangup => {
                if let Some((_, load)) = &hangups {
                    daemon.reload(load, &mut config, &scheduler, &mut jobs).await;
                }
            }
        }
    }
    let mut scheduler = scheduler;
    daemon.notifier.send("STOPPING=1");
    tracing::info!(
        sweeps_in_flight = daemon.runner.in_flight(),
        grace_seconds = shutdown.grace().as_secs_f64(),
        "Shutting down: no new aborts; finishing the ones in flight"
    );
    let _ = scheduler.shutdown().await;
    let drained = daemon.runner.drain().await;
    if let Some(w) = watchdog {
        w.abort();
    }
    http_cancel.cancel();
    if let Some(s) = server {
        let _ = tokio::time::timeout(Duration::from_secs(2), s).await;
    }
    if drained {
        tracing::info!("Shut down cleanly");
        Ok(Exit::Clean)
    } else {
        Ok(Exit::Failed)
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
    use crate::config::{CliOverrides, FileConfig};
    use figment::Figment;
    use figment::providers::{Format, Serialized, Toml};

    fn config(toml: &str) -> Config {
        let fig = Figment::new()
            .merge(Serialized::defaults(FileConfig::default()))
            .merge(Toml::string(toml));
        Config::from_figment(fig, &CliOverrides::default(), vec![]).unwrap()
    }

    #[tokio::test]
    async fn a_reload_keeps_each_targets_guard_by_bucket_and_prefix_and_takes_its_new_settings() {
        let d = Daemon::new(
            &config("[[targets]]\nbucket = \"a\"\n[[targets]]\nbucket = \"b\"\nprefix = \"p/\"\n"),
            Exporter::in_memory(),
            Shutdown::new(Duration::ZERO),
        );
        let old = d.current();
        // A sweep of `a` is in progress when the reload comes.
        old[0].slot.running.store(true, Ordering::Release);
        let next = d.generation(&config(
            "[[targets]]\nbucket = \"b\"\nprefix = \"p/\"\n\
             [[targets]]\nbucket = \"a\"\nolder_than = \"2d\"\n\
             [[targets]]\nbucket = \"b\"\nprefix = \"q/\"\n",
        ));
        assert!(
            Arc::ptr_eq(&next[1].slot, &old[0].slot),
            "a keeps its guard"
        );
        assert!(
            Arc::ptr_eq(&next[0].slot, &old[1].slot),
            "b/p/ keeps its guard"
        );
        assert!(
            next[1].slot.running.load(Ordering::Acquire),
            "the next tick of a is skipped"
        );
        assert!(
            !Arc::ptr_eq(&next[2].slot, &old[1].slot),
            "b under another prefix is another target"
        );
        assert_eq!(
            next[1].target.settings.older_than.0,
            Duration::from_secs(2 * 86_400)
        );
        assert_eq!(
            old[0].target.settings.older_than.0,
            Duration::from_secs(7 * 86_400)
        );
    }

    #[test]
    fn a_reload_says_which_targets_it_adds_removes_and_changes() {
        let old = config("[[targets]]\nbucket = \"a\"\n[[targets]]\nbucket = \"b\"\n");
        let new = config(
            "[[targets]]\nbucket = \"a\"\nolder_than = \"2d\"\n[[targets]]\nbucket = \"c\"\nprefix = \"p/\"\n",
        );
        assert_eq!(
            target_changes(&old.targets, &new.targets),
            "added: c/p/; removed: b/; changed: a/"
        );
        assert_eq!(
            target_changes(&old.targets, &old.targets),
            "no target changed"
        );
    }

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
