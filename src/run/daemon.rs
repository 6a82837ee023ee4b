//! The `run` daemon: each target sweeps at the ticks of its own schedule in its own time zone, each
//! tick a sweep on the run layer's route ([`Runner::sweep`], exported there), never two sweeps of
//! one target at once (a tick that finds the previous sweep running is skipped, logged and counted),
//! and a shutdown that stops new aborts, lets the ones in flight finish and be verified, and exits
//! within a bounded grace period. SIGHUP reloads the configuration (loaded and validated as at
//! startup; an invalid one is refused and the one in force kept), with sd_notify's RELOADING=1 /
//! READY=1 around it.
//!
//! **Time.** tokio-cron-scheduler is the scheduler, but not for its cron jobs: those read the time
//! zone as the fixed offset it has when the job is created, so after a daylight-saving change a
//! Europe/Berlin schedule fired an hour off until a restart. Each target instead has one one-shot job
//! at a time, at the instant [`next_fire`] computes in the real zone (chrono-tz, every transition);
//! when it fires it ticks and puts the following one in the scheduler. A reload retires the chains
//! of the old generation (their pending job is removed, and one already firing does nothing) before
//! the new generation's start. [`next_fire`] is a pure function of the schedule, the zone and an
//! instant, so the fire sequences across real transitions are tested as data.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Offset, SubsecRound, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
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

/// One target of one generation of the configuration, shared by its chain of jobs, its sweeps and
/// `/readyz`. A sweep holds it to its end, so a reload never changes a sweep in progress.
struct TargetState {
    target: Target,
    slot: Arc<Slot>,
    /// Time between two ticks of its schedule (`None`: it does not fire twice), for the log.
    period: Option<Duration>,
    /// What its discovery respects (the generation's explicit targets and shard).
    scope: Arc<Scope>,
    /// Its chain of one-shot jobs in the scheduler.
    chain: tokio::sync::Mutex<Chain>,
}

/// A target's place in the scheduler: the one-shot job of its next tick. Held while a tick is
/// decided, so that a reload retires a chain either before a tick or after it, never during.
#[derive(Default)]
struct Chain {
    /// Its generation was replaced by a reload: no more ticks, no next job.
    retired: bool,
    /// The job of the next tick, while it is pending.
    job: Option<uuid::Uuid>,
}

impl TargetState {
    /// The target's next tick after `after`, in its zone ([`next_fire`]).
    fn next_fire(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let s = &self.target.settings;
        next_fire(s.schedule.cron(), s.timezone.0, after)
    }

    /// Says when the target is swept next, in its zone's local time and in UTC, so that a daemon
    /// is never silent about time.
    fn log_next_sweep(&self) {
        let t = &self.target;
        let tz = t.settings.timezone.0;
        let every = self
            .period
            .map(|p| humantime::format_duration(p).to_string())
            .unwrap_or_default();
        match self.next_fire(Utc::now()) {
            Some(next) => {
                let local = next.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S %Z");
                let utc = next.format("%Y-%m-%dT%H:%M:%SZ");
                tracing::info!(
                    bucket = %t.bucket,
                    at = %utc,
                    local = %local,
                    timezone = %tz.name(),
                    every = %every,
                    "Next sweep of {} at {local} ({}), {utc}",
                    t.bucket,
                    tz.name()
                )
            }
            None => {
                tracing::warn!(bucket = %t.bucket, "The schedule never fires again: no next sweep")
            }
        }
    }
}

/// The instant a schedule fires next after `after`: the earliest instant later than `after` whose
/// wall-clock time in `tz` the cron expression matches, computed in the real zone, so a schedule
/// keeps its local time across daylight-saving changes (`None`: it never fires again).
///
/// Where a change makes a local time missing or doubled, croner's rules (those of the Open Cron
/// Pattern Specification) apply: a schedule with one fixed time of day (`0 30 2 * * *`) fires once a
/// day, at the first instant after a gap that swallowed it (03:00 for 02:30 in Europe/Berlin on the
/// spring-forward day) and at the first of the two 02:30s on the fall-back day; any other schedule
/// (steps, lists, wildcards in the time fields) skips the local times a gap swallowed and fires at
/// both instants of a doubled one. Fires are whole seconds.
pub fn next_fire(cron: &croner::Cron, tz: Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    // croner walks local wall-clock time, which only runs backwards at a fall-back transition: an
    // instant later than `after` can then read earlier than `after` does, by up to the change of
    // offset. Near a transition the search starts that much earlier, and goes on until no later
    // local time can still give an earlier instant.
    let after = after.trunc_subsecs(0);
    let offset = |t: DateTime<Utc>| {
        i64::from(
            tz.offset_from_utc_datetime(&t.naive_utc())
                .fix()
                .local_minus_utc(),
        )
    };
    let near = TimeDelta::hours(3);
    let offsets = [offset(after - near), offset(after), offset(after + near)];
    let shift = TimeDelta::seconds(
        offsets.iter().max().copied().unwrap_or(0) - offsets.iter().min().copied().unwrap_or(0),
    );
    let mut best: Option<DateTime<Utc>> = None;
    for t in cron
        .iter_after((after - shift).with_timezone(&tz))
        .take(NEXT_FIRE_SEARCH)
    {
        let t = t.with_timezone(&Utc);
        if best.is_some_and(|b| t - shift > b) {
            break;
        }
        if t > after && best.is_none_or(|b| t < b) {
            best = Some(t);
        }
    }
    best
}

/// The most local times [`next_fire`] looks at: an every-second schedule next to a transition
/// needs twice the change of offset (two hours, 7,200); a schedule is checked to fire within 366
/// days when it is read, so a search this long without a fire is a bug, not a schedule.
const NEXT_FIRE_SEARCH: usize = 100_000;

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
    /// Where each target's chain of one-shot jobs runs.
    scheduler: JobScheduler,
}

impl Daemon {
    /// A daemon for a validated configuration, its ticks on `scheduler`.
    fn new(
        config: &Config,
        exporter: Exporter,
        shutdown: Shutdown,
        scheduler: JobScheduler,
    ) -> Arc<Self> {
        let d = Daemon {
            runner: Arc::new(Runner::new(config, shutdown, exporter)),
            scheduling: AtomicBool::new(false),
            targets: parking_lot::RwLock::default(),
            notifier: Notifier::from_env(),
            scheduler,
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
                    period: schedule_period(&t.settings.schedule, t.settings.timezone.0, now),
                    scope: scope.clone(),
                    chain: tokio::sync::Mutex::default(),
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

    /// One tick for a target: start a sweep unless one of it is already running.
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
        // The target as the configuration in force has it (a reload may have come during the
        // sweep; a target it removed has no next sweep).
        if !self.runner.shutdown.token().is_cancelled()
            && let Some(now) = self
                .current()
                .iter()
                .find(|c| Arc::ptr_eq(&c.slot, &s.slot))
        {
            now.log_next_sweep();
        }
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

    /// Puts the target's first tick after `after` in the scheduler, as a one-shot job that ticks
    /// and then puts the following one there ([`Daemon::fire`]). Nothing when its generation was
    /// retired by a reload, the daemon is stopping, or the schedule never fires again.
    async fn arm(
        self: &Arc<Self>,
        s: &Arc<TargetState>,
        after: DateTime<Utc>,
    ) -> Result<(), DaemonError> {
        let mut chain = s.chain.lock().await;
        if chain.retired || self.runner.shutdown.token().is_cancelled() {
            return Ok(());
        }
        let Some(at) = s.next_fire(after) else {
            chain.job = None;
            return Ok(());
        };
        // The scheduler keeps whole seconds and rounds this wait down: the job may run up to a
        // second before `at`, and waits for it itself.
        let wait = (at - Utc::now()).to_std().unwrap_or_default();
        let mut once = Some((self.clone(), s.clone()));
        let job = Job::new_one_shot_async(wait, move |_, _| {
            let fire = once.take();
            Box::pin(async move {
                if let Some((d, s)) = fire {
                    d.fire(s, at).await;
                }
            })
        })
        .map_err(|e| schedule_error(&s.target, e))?;
        let id = self
            .scheduler
            .add(job)
            .await
            .map_err(|e| schedule_error(&s.target, e))?;
        chain.job = Some(id);
        Ok(())
    }

    /// The target's tick planned for `at`: at `at`, unless its generation was retired meanwhile;
    /// then the next tick after it (or after now, if this one came late: ticks missed while the
    /// process could not run are not made up one by one).
    ///
    /// Boxed: it arms the job that calls it again, and a named `Send` future ends that cycle.
    fn fire(
        self: Arc<Self>,
        s: Arc<TargetState>,
        at: DateTime<Utc>,
    ) -> futures::future::BoxFuture<'static, ()> {
        Box::pin(async move {
            if let Ok(early) = (at - Utc::now()).to_std() {
                let cancel = self.runner.shutdown.token();
                tokio::select! {
                    () = tokio::time::sleep(early) => {}
                    () = cancel.cancelled() => return,
                }
            }
            {
                let mut chain = s.chain.lock().await;
                if chain.retired {
                    return;
                }
                chain.job = None;
                self.tick(&s);
            }
            if let Err(e) = self.arm(&s, at.max(Utc::now())).await {
                tracing::error!(bucket = %s.target.bucket, error = %e,
                    "Cannot schedule the next sweep: this target is not swept again until a reload or restart");
            }
        })
    }

    /// Stops the chains of a replaced generation: no tick of theirs after this returns.
    async fn retire(&self, generation: &[Arc<TargetState>]) {
        for s in generation {
            let mut chain = s.chain.lock().await;
            chain.retired = true;
            if let Some(id) = chain.job.take()
                && let Err(e) = self.scheduler.remove(&id).await
            {
                tracing::warn!(error = %e, "Removing a job of the previous configuration failed");
            }
        }
    }

    /// Starts the chain of every target of the generation in force and says when each sweeps next.
    async fn arm_all(self: &Arc<Self>) -> Result<(), DaemonError> {
        let now = Utc::now();
        for s in self.current().iter() {
            self.arm(s, now).await?;
            s.log_next_sweep();
        }
        Ok(())
    }

    /// SIGHUP: loads and validates the configuration again; a valid one replaces the targets and
    /// their schedules and settings from the next tick (sweeps in progress finish on the old one),
    /// an invalid one is refused, logged, and the one in force is kept. Says so to systemd.
    async fn reload(self: &Arc<Self>, load: &Reload, in_force: &mut Config) {
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
        self.retire(&previous).await;
        if let Err(e) = self.arm_all().await {
            tracing::error!(error = %e, "The scheduler refused a job after the reload");
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
fn schedule_period(schedule: &Schedule, tz: Tz, now: DateTime<Utc>) -> Option<Duration> {
    let first = next_fire(schedule.cron(), tz, now)?;
    let second = next_fire(schedule.cron(), tz, first)?;
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
    let scheduler = JobScheduler::new().await.map_err(scheduler_error)?;
    let daemon = Daemon::new(&config, exporter, shutdown.clone(), scheduler.clone());

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
    let mut scheduler = scheduler;
    scheduler.start().await.map_err(scheduler_error)?;
    daemon.scheduling.store(true, Ordering::Release);
    let (targets, dry) = {
        let current = daemon.current();
        let dry = current.iter().filter(|s| s.target.settings.dry_run).count();
        (current.len(), dry)
    };
    if targets > 0 && dry == targets {
        tracing::info!(
            targets,
            dry_run = true,
            "Daemon started: DRY RUN, nothing is aborted (what would be is logged and counted as would_abort)"
        );
    } else if dry > 0 {
        tracing::info!(
            targets,
            dry_run_targets = dry,
            "Daemon started: {dry} of {targets} targets in dry run"
        );
    } else {
        tracing::info!(targets, "Daemon started");
    }
    daemon.arm_all().await?;
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
                    daemon.reload(load, &mut config).await;
                }
            }
        }
    }
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
            JobScheduler::new().await.unwrap(),
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

    #[tokio::test]
    async fn a_chain_fires_rearms_and_stops_for_good_once_its_generation_is_retired() {
        let d = Daemon::new(
            &config("[[targets]]\nbucket = \"a\"\nschedule = \"0 0 * * * *\"\n"),
            Exporter::in_memory(),
            Shutdown::new(Duration::ZERO),
            JobScheduler::new().await.unwrap(),
        );
        let skipped = |d: &Daemon| {
            d.runner
                .exporter
                .metrics
                .render()
                .contains("mpu_janitor_sweeps_skipped_total{bucket=\"a\"} 1")
        };
        let old = d.current();
        d.arm_all().await.unwrap();
        let first = old[0].chain.lock().await.job;
        assert!(first.is_some(), "armed at start");
        // A tick (the target's sweep marked running, so the tick is skipped and counted instead of
        // reaching a store) schedules the next one.
        old[0].slot.running.store(true, Ordering::Release);
        d.clone().fire(old[0].clone(), Utc::now()).await;
        assert!(skipped(&d), "the tick happened");
        let second = old[0].chain.lock().await.job;
        assert!(
            second.is_some() && second != first,
            "and the next was scheduled"
        );

        let next = d.generation(&config("[[targets]]\nbucket = \"a\"\n"));
        *d.targets.write() = next;
        d.retire(&old).await;
        assert_eq!(
            old[0].chain.lock().await.job,
            None,
            "its pending job is withdrawn"
        );
        // A job of the old generation that the scheduler had already started does nothing.
        d.clone().fire(old[0].clone(), Utc::now()).await;
        assert!(skipped(&d), "no second tick (the count is still 1)");
        assert_eq!(old[0].chain.lock().await.job, None, "nothing scheduled");
        d.arm(&old[0], Utc::now()).await.unwrap();
        assert_eq!(old[0].chain.lock().await.job, None, "nor later");
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

    /// `n` fires of `expr` in `tz` from `from`, each chained from the previous as the daemon does,
    /// written `UTC = local`.
    fn fires(expr: &str, tz: Tz, from: &str, n: usize) -> Vec<String> {
        let schedule: Schedule = expr.parse().unwrap();
        let mut after: DateTime<Utc> = from.parse().unwrap();
        (0..n)
            .map(|_| {
                after = next_fire(schedule.cron(), tz, after).expect("a next fire");
                format!(
                    "{} = {}",
                    after.format("%Y-%m-%d %H:%M:%SZ"),
                    after.with_timezone(&tz).format("%H:%M:%S %Z")
                )
            })
            .collect()
    }

    use chrono_tz::America::New_York;
    use chrono_tz::Europe::Berlin;

    #[test]
    fn a_daily_schedule_keeps_its_local_time_across_each_change_of_2027() {
        // 09:00 local: an hour earlier in UTC from the day the clocks go forward, an hour later
        // from the day they go back.
        assert_eq!(
            fires("0 0 9 * * *", Berlin, "2027-03-26T12:00:00Z", 3),
            [
                "2027-03-27 08:00:00Z = 09:00:00 CET",
                "2027-03-28 07:00:00Z = 09:00:00 CEST",
                "2027-03-29 07:00:00Z = 09:00:00 CEST",
            ]
        );
        assert_eq!(
            fires("0 0 9 * * *", Berlin, "2027-10-29T12:00:00Z", 3),
            [
                "2027-10-30 07:00:00Z = 09:00:00 CEST",
                "2027-10-31 08:00:00Z = 09:00:00 CET",
                "2027-11-01 08:00:00Z = 09:00:00 CET",
            ]
        );
        assert_eq!(
            fires("0 0 9 * * *", New_York, "2027-03-12T18:00:00Z", 3),
            [
                "2027-03-13 14:00:00Z = 09:00:00 EST",
                "2027-03-14 13:00:00Z = 09:00:00 EDT",
                "2027-03-15 13:00:00Z = 09:00:00 EDT",
            ]
        );
        assert_eq!(
            fires("0 0 9 * * *", New_York, "2027-11-05T18:00:00Z", 3),
            [
                "2027-11-06 13:00:00Z = 09:00:00 EDT",
                "2027-11-07 14:00:00Z = 09:00:00 EST",
                "2027-11-08 14:00:00Z = 09:00:00 EST",
            ]
        );
    }

    #[test]
    fn a_time_the_clocks_skip_fires_once_right_after_the_gap() {
        // 02:30 does not exist on the spring-forward day: the sweep runs at 03:00, once.
        assert_eq!(
            fires("0 30 2 * * *", Berlin, "2027-03-26T12:00:00Z", 3),
            [
                "2027-03-27 01:30:00Z = 02:30:00 CET",
                "2027-03-28 01:00:00Z = 03:00:00 CEST",
                "2027-03-29 00:30:00Z = 02:30:00 CEST",
            ]
        );
        assert_eq!(
            fires("0 30 2 * * *", New_York, "2027-03-12T18:00:00Z", 3),
            [
                "2027-03-13 07:30:00Z = 02:30:00 EST",
                "2027-03-14 07:00:00Z = 03:00:00 EDT",
                "2027-03-15 06:30:00Z = 02:30:00 EDT",
            ]
        );
    }

    #[test]
    fn a_time_the_clocks_repeat_fires_once_at_its_first_occurrence() {
        assert_eq!(
            fires("0 30 2 * * *", Berlin, "2027-10-29T12:00:00Z", 3),
            [
                "2027-10-30 00:30:00Z = 02:30:00 CEST",
                "2027-10-31 00:30:00Z = 02:30:00 CEST",
                "2027-11-01 01:30:00Z = 02:30:00 CET",
            ]
        );
        assert_eq!(
            fires("0 30 1 * * *", New_York, "2027-11-05T18:00:00Z", 3),
            [
                "2027-11-06 05:30:00Z = 01:30:00 EDT",
                "2027-11-07 05:30:00Z = 01:30:00 EDT",
                "2027-11-08 06:30:00Z = 01:30:00 EST",
            ]
        );
        // Started during the repeated hour, after the first 02:30: not again that night.
        assert_eq!(
            fires("0 30 2 * * *", Berlin, "2027-10-31T01:10:00Z", 1),
            ["2027-11-01 01:30:00Z = 02:30:00 CET"]
        );
    }

    #[test]
    fn an_interval_schedule_skips_the_gap_and_runs_through_both_passes_of_the_repeated_hour() {
        assert_eq!(
            fires("0 */30 * * * *", Berlin, "2027-03-28T00:00:00Z", 4),
            [
                "2027-03-28 00:30:00Z = 01:30:00 CET",
                "2027-03-28 01:00:00Z = 03:00:00 CEST",
                "2027-03-28 01:30:00Z = 03:30:00 CEST",
                "2027-03-28 02:00:00Z = 04:00:00 CEST",
            ]
        );
        let fall_back = [
            "2027-10-30 23:30:00Z = 01:30:00 CEST",
            "2027-10-31 00:00:00Z = 02:00:00 CEST",
            "2027-10-31 00:30:00Z = 02:30:00 CEST",
            "2027-10-31 01:00:00Z = 02:00:00 CET",
            "2027-10-31 01:30:00Z = 02:30:00 CET",
            "2027-10-31 02:00:00Z = 03:00:00 CET",
        ];
        assert_eq!(
            fires("0 */30 * * * *", Berlin, "2027-10-30T23:00:00Z", 6),
            fall_back
        );
        // From any instant of the night, the next fire is the next of that sequence: none is
        // skipped or doubled, whether the search starts in the first or the second 02:00-03:00.
        let schedule: Schedule = "0 */30 * * * *".parse().unwrap();
        let sequence: Vec<DateTime<Utc>> = fall_back
            .iter()
            .map(|f| {
                chrono::NaiveDateTime::parse_from_str(&f[..19], "%Y-%m-%d %H:%M:%S")
                    .unwrap()
                    .and_utc()
            })
            .collect();
        let mut after: DateTime<Utc> = "2027-10-30T23:00:00Z".parse().unwrap();
        while after < sequence[5] {
            let expected = sequence.iter().find(|t| **t > after).copied();
            assert_eq!(
                next_fire(schedule.cron(), Berlin, after),
                expected,
                "after {after}"
            );
            after += TimeDelta::seconds(50);
        }
    }

    #[test]
    fn an_every_second_schedule_neither_skips_nor_repeats_a_second_at_either_change() {
        let seconds = |from: &str| {
            let schedule: Schedule = "* * * * * *".parse().unwrap();
            let mut after: DateTime<Utc> = from.parse().unwrap();
            (0..3)
                .map(|_| {
                    after = next_fire(schedule.cron(), New_York, after).unwrap();
                    after
                        .with_timezone(&New_York)
                        .format("%H:%M:%S %Z")
                        .to_string()
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            seconds("2027-03-14T06:59:58Z"),
            ["01:59:59 EST", "03:00:00 EDT", "03:00:01 EDT"]
        );
        assert_eq!(
            seconds("2027-11-07T05:59:58Z"),
            ["01:59:59 EDT", "01:00:00 EST", "01:00:01 EST"]
        );
    }

    #[test]
    fn the_next_fire_is_strictly_after_the_instant_to_the_second() {
        let schedule: Schedule = "0 0 * * * *".parse().unwrap();
        let at: DateTime<Utc> = "2027-06-01T10:00:00Z".parse().unwrap();
        let next = |after| next_fire(schedule.cron(), Berlin, after);
        assert_eq!(next(at), Some(at + TimeDelta::hours(1)));
        assert_eq!(
            next(at + TimeDelta::milliseconds(400)),
            Some(at + TimeDelta::hours(1))
        );
        assert_eq!(
            next(at - TimeDelta::milliseconds(400)),
            Some(at),
            "a fire a fraction of a second away is still ahead"
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
                schedule_period(&expr.parse().unwrap(), chrono_tz::UTC, now),
                Some(Duration::from_secs(secs)),
                "{expr}"
            );
        }
    }
}
