//! The run layer: the one route from a configuration's targets to their exported figures, for
//! every command. `once`, `plan`, the `run` daemon's ticks and `demo` all go through
//! [`Runner::sweep`]:
//!
//! ```text
//! targets -> discovery -> connect -> sweep -> collect -> export
//! (config)   (discover)   (store)   (sweep)  (targets)   (export)
//! ```
//!
//! Every sweep is spawned on the runner's task tracker, so a shutdown has one drain
//! ([`Runner::drain`]) whoever started the sweep, and every report is marked interrupted the same
//! way. The daemon ([`daemon`]), the progress display ([`progress`]) and the export ([`export`])
//! each have their own file.

pub mod audit;
pub mod coordinate;
pub mod daemon;
pub mod export;
pub mod lease;
pub mod progress;
mod targets;

use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;

use crate::config::{Config, Target};
use crate::discover::Scope;
use crate::exit::Exit;
use crate::report::RunReport;
use crate::shutdown::Shutdown;
use crate::store::Connector;
use crate::sweep::SweepOptions;

pub use audit::AuditTrail;
pub use coordinate::Coordinator;
pub use export::Exporter;
pub use progress::{Show, log_writer};
pub use targets::{connect, connect_and_sweep, sweep_targets};

/// What every sweep of a process shares besides its targets.
pub struct Runner {
    /// Builds and shares the clients.
    pub connector: Connector,
    /// The shutdown the sweeps watch.
    pub shutdown: Shutdown,
    /// Uploads in flight across every target at once (`[daemon] max_in_flight`).
    pub global_limit: Arc<Semaphore>,
    /// Targets swept at the same time (`[daemon] parallel_targets`).
    pub parallel_targets: usize,
    /// Where each run's figures go.
    pub exporter: Exporter,
    /// Where each run's records of uploads go.
    pub audit: AuditTrail,
    /// The replicas' lease, when `[coordination]` is on.
    pub coordinator: Coordinator,
    /// Every sweep in flight, for the drain.
    tracker: TaskTracker,
    /// Cancelled when the drain's grace has run out: calls still in flight are given up.
    hard_stop: tokio_util::sync::CancellationToken,
}

impl Runner {
    /// A runner with the limits and the audit trail of `config`, the default credential chain and
    /// `exporter`.
    pub fn new(config: &Config, shutdown: Shutdown, exporter: Exporter) -> Self {
        let mut runner = Self::with_connector(
            Connector::new(),
            shutdown,
            in_flight_cap(config.daemon.max_in_flight),
            config.daemon.parallel_targets,
            exporter,
        );
        runner.audit = AuditTrail::new(&config.audit);
        runner.coordinator = Coordinator::new(config);
        runner
    }

    /// A runner on `connector` with these limits (the demo, tests).
    pub fn with_connector(
        connector: Connector,
        shutdown: Shutdown,
        max_in_flight: usize,
        parallel_targets: usize,
        exporter: Exporter,
    ) -> Self {
        Runner {
            connector,
            shutdown,
            global_limit: Arc::new(Semaphore::new(max_in_flight)),
            parallel_targets,
            exporter,
            audit: AuditTrail::default(),
            coordinator: Coordinator::default(),
            tracker: TaskTracker::new(),
            hard_stop: tokio_util::sync::CancellationToken::new(),
        }
    }

    /// The options of a sweep starting now under this runner.
    pub fn options(&self, max_listed: usize) -> SweepOptions {
        SweepOptions {
            max_listed,
            cancel: self.shutdown.token(),
            global_limit: Some(self.global_limit.clone()),
            hard_stop: self.hard_stop.clone(),
            ..SweepOptions::default()
        }
    }

    /// The route of every command: discovery, connect, sweep and collect each target (see the
    /// module doc), each upload's record in the audit trail as it is decided, the report marked
    /// interrupted if a shutdown cut any target short, then the export (a failed one, or a failed
    /// audit file, is in the report's `export_errors`).
    pub async fn sweep(&self, targets: &[Target], scope: &Scope, opts: &SweepOptions) -> RunReport {
        let audit = Arc::new(self.audit.run());
        let opts = SweepOptions {
            observer: Some(audit.clone()),
            ..opts.clone()
        };
        let mut run = targets::sweep_coordinated(
            targets,
            &self.connector,
            &opts,
            self.parallel_targets,
            scope,
            &self.coordinator,
        )
        .await;
        run.run_id = audit.run_id().to_string();
        run.mark_interrupted();
        if let Some(e) = audit.finish() {
            self.exporter.metrics.export_failed("audit");
            run.export_errors.push(e);
        }
        self.exporter.export(&mut run).await;
        run
    }

    /// Spawns `work` on the runner's tracker: the drain waits for it.
    pub fn spawn<F>(&self, work: F) -> JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.tracker.spawn(work)
    }

    /// Spawns one sweep of `targets` ([`Runner::sweep`]).
    pub fn start(
        self: &Arc<Self>,
        targets: Arc<[Target]>,
        scope: Arc<Scope>,
        opts: SweepOptions,
    ) -> JoinHandle<RunReport> {
        let runner = self.clone();
        self.spawn(async move { runner.sweep(&targets, &scope, &opts).await })
    }

    /// Stops taking sweeps and waits for those in flight within the shutdown's grace; false
    /// (logged) when the grace ran out. Then the calls still in flight are given up (their
    /// uploads reported `interrupted`), so that every sweep still ends with its report and its
    /// export, within [`GIVE_UP`].
    pub async fn drain(&self) -> bool {
        self.tracker.close();
        if self.shutdown.drain(self.tracker.wait()).await.is_some() {
            return true;
        }
        self.hard_stop.cancel();
        if tokio::time::timeout(GIVE_UP, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::error!(
                seconds = GIVE_UP.as_secs(),
                "Sweeps still running after their calls were given up"
            );
        }
        false
    }

    /// Sweeps in flight.
    pub fn in_flight(&self) -> usize {
        self.tracker.len()
    }

    /// A command's sweep of `targets` to its end, its progress shown on stderr as `show` says; a
    /// shutdown signal drains it ([`Runner::drain`]). `None` when the drain ran out.
    pub async fn sweep_all(
        self: &Arc<Self>,
        targets: Arc<[Target]>,
        scope: Arc<Scope>,
        opts: SweepOptions,
        show: Show,
    ) -> Option<RunReport> {
        let _display = progress::Display::start(opts.progress.clone(), show);
        let mut sweep = self.start(targets, scope, opts);
        let done = tokio::select! {
            done = &mut sweep => Some(done),
            () = self.shutdown.signalled() => {
                tracing::warn!(grace_seconds = self.shutdown.grace().as_secs_f64(),
                    "Stopping: no new aborts; finishing and verifying the ones in flight");
                // Drained or given up, the sweep has ended (or ends at once): its report
                // says what was left.
                self.drain().await;
                tokio::time::timeout(GIVE_UP, &mut sweep).await.ok()
            }
        };
        match done? {
            Ok(done) => Some(done),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => None,
        }
    }
}

/// How long sweeps get to end once their calls in flight are given up (the export included).
const GIVE_UP: std::time::Duration = std::time::Duration::from_secs(15);

/// `[daemon] max_in_flight`, within half the open-file limit (raised to its hard limit first): each
/// upload in flight may hold a connection, and the rest is left to everything else.
fn in_flight_cap(max_in_flight: usize) -> usize {
    let (soft, _) = crate::http::raise_descriptor_limit();
    let cap = usize::try_from(soft / 2).unwrap_or(usize::MAX).max(16);
    if max_in_flight > cap {
        tracing::warn!(
            max_in_flight,
            open_files = soft,
            cap,
            "The open-file limit caps the uploads in flight: raise it (LimitNOFILE, ulimit -n) to allow more"
        );
    }
    max_in_flight.min(cap)
}

/// What `once` or `plan` did: its report (none when the shutdown's grace ran out) and its exit.
pub struct Outcome {
    /// The report.
    pub report: Option<RunReport>,
    /// How the command ends: the report's exit, or [`Exit::Failed`] when the drain ran out.
    pub exit: Exit,
}

/// `once`: one sweep of every target, exported to the textfile and the Pushgateway.
pub async fn once(config: &Config, max_listed: usize, show: Show) -> Outcome {
    let exporter = match Exporter::new(config, true) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(error = %e, "Cannot set up the metrics export");
            return Outcome {
                report: None,
                exit: Exit::Failed,
            };
        }
    };
    command(config, exporter, max_listed, false, show).await
}

/// `plan`: a dry run of every target (the configuration says `dry_run`), nothing exported; with
/// `kept`, the uploads kept as fresh, excluded or idle are listed too, with their reason.
pub async fn plan(config: &Config, kept: bool, show: Show) -> Outcome {
    command(config, Exporter::in_memory(), usize::MAX, kept, show).await
}

async fn command(
    config: &Config,
    exporter: Exporter,
    max_listed: usize,
    list_kept: bool,
    show: Show,
) -> Outcome {
    let shutdown = Shutdown::new(config.daemon.shutdown_grace.0);
    let runner = Arc::new(Runner::new(config, shutdown, exporter));
    let opts = SweepOptions {
        list_kept,
        ..runner.options(max_listed)
    };
    let targets: Arc<[Target]> = config.targets.clone().into();
    let scope = Arc::new(Scope::of(config));
    let Some(report) = runner.sweep_all(targets, scope, opts, show).await else {
        return Outcome {
            report: None,
            exit: Exit::Failed,
        };
    };
    let exit = report.exit_code();
    if report.interrupted {
        tracing::warn!(
            exit_code = exit.code(),
            "Interrupted by a shutdown signal: not every target was swept to its end; run again to finish"
        );
    }
    Outcome {
        report: Some(report),
        exit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_in_flight_are_capped_by_the_open_file_limit() {
        let (soft, _) = crate::http::raise_descriptor_limit();
        let half = usize::try_from(soft / 2).unwrap().max(16);
        assert_eq!(in_flight_cap(8), 8);
        assert_eq!(in_flight_cap(usize::MAX), half);
    }
}
