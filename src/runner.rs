//! One runner for `once`, `plan`, `run` and `demo`: sweep the targets (a shutdown drains them
//! within the grace period, see [`crate::shutdown`]), then export what they did ([`Exporter`]:
//! the metrics registry, the textfile, the Pushgateway).

use std::io::{IsTerminal, Write as _};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::config::{Config, Target};
use crate::metrics::Metrics;
use crate::report::{RunReport, TargetReport};
use crate::shutdown::Shutdown;
use crate::store::Connector;
use crate::store::tls::Trust;
use crate::sweep::{self, Progress, SweepOptions};

/// What a sweep of several targets needs besides the targets.
pub struct Runner {
    /// Builds and shares the clients.
    pub connector: Connector,
    /// The shutdown the sweeps watch.
    pub shutdown: Shutdown,
    /// Uploads in flight across every target at once (`[daemon] max_in_flight`).
    pub global_limit: Arc<Semaphore>,
    /// Targets swept at the same time (`[daemon] parallel_targets`).
    pub parallel_targets: usize,
}

impl Runner {
    /// A runner with the limits of `config` and the default credential chain.
    pub fn new(config: &Config, shutdown: Shutdown) -> Self {
        Runner {
            connector: Connector::new(),
            shutdown,
            global_limit: Arc::new(Semaphore::new(config.daemon.max_in_flight)),
            parallel_targets: config.daemon.parallel_targets,
        }
    }

    /// The options of a sweep starting now under this runner.
    pub fn options(&self, max_listed: usize) -> SweepOptions {
        SweepOptions {
            max_listed,
            cancel: self.shutdown.token(),
            global_limit: Some(self.global_limit.clone()),
            ..SweepOptions::default()
        }
    }

    /// One sweep of every target, in configuration order, with a live progress line on stderr when
    /// `progress` is set. `None` when a shutdown began and the sweeps did not finish in the grace.
    pub async fn sweep_all(
        &self,
        targets: &[Target],
        opts: SweepOptions,
        progress: bool,
    ) -> Option<RunReport> {
        let ticker = progress.then(|| {
            tokio::spawn(show_progress(
                opts.progress.clone(),
                Duration::from_millis(250),
            ))
        });
        let run = self.shutdown.run(sweep::sweep_targets(
            targets,
            &self.connector,
            &opts,
            self.parallel_targets,
        ));
        let mut run = run.await;
        if let Some(t) = ticker {
            t.abort();
            PROGRESS_LINE.store(false, Relaxed);
            eprint!("\r\x1b[2K");
        }
        if let Some(r) = &mut run {
            r.mark_shutdown(self.shutdown.began_at());
        }
        run
    }
}

/// True while a progress line sits on stderr without its newline: [`log_writer`] clears it before a
/// log line, so the line does not land on it (the next tick draws it again below).
static PROGRESS_LINE: AtomicBool = AtomicBool::new(false);

/// The writer of log lines: stderr, with the progress line cleared first when one is shown.
pub fn log_writer() -> std::io::Stderr {
    let stderr = std::io::stderr();
    if PROGRESS_LINE.load(Relaxed) {
        let _ = (&stderr).write_all(b"\r\x1b[2K");
    }
    stderr
}

/// Rewrites one status line on stderr every `every` until aborted.
async fn show_progress(p: Arc<Progress>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        PROGRESS_LINE.store(true, Relaxed);
        eprint!(
            "\r\x1b[2Klisted {}  processed {}  aborted {}  reclaimed {}",
            p.listed.load(Relaxed),
            p.processed.load(Relaxed),
            p.aborted.load(Relaxed),
            crate::report::human_bytes(p.reclaimed_bytes.load(Relaxed)),
        );
    }
}

/// Whether a progress line belongs on stderr (a terminal).
pub fn progress_wanted() -> bool {
    std::io::stderr().is_terminal()
}

/// Where the figures of the sweeps go: the registry (served by `run` on /metrics), the textfile
/// (counters carried over from the previous file), the Pushgateway.
pub struct Exporter {
    /// The registry.
    pub metrics: Metrics,
    textfile: Option<PathBuf>,
    push: Option<(url::Url, Trust)>,
}

impl Exporter {
    /// An exporter for `[metrics]`; counters continue from the textfile an earlier run wrote. The
    /// Pushgateway (and its trust store) is set up only for `push` (`once`; `run` never pushes).
    pub fn new(config: &Config, push: bool) -> Result<Exporter, String> {
        let m = &config.metrics;
        let metrics = Metrics::new();
        let textfile = Some(m.textfile.clone()).filter(|p| !p.as_os_str().is_empty());
        if let Some(previous) = textfile
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
        {
            metrics.carry_over(&previous);
        }
        let push = match m.pushgateway_url.url() {
            Some(url) if push => Some((url.clone(), Trust::load(config.defaults.ca_bundle())?)),
            _ => None,
        };
        Ok(Exporter {
            metrics,
            textfile,
            push,
        })
    }

    /// An exporter that only keeps the registry (the demo).
    pub fn in_memory() -> Exporter {
        Exporter {
            metrics: Metrics::new(),
            textfile: None,
            push: None,
        }
    }

    /// Records one target's sweep and rewrites the textfile; false (logged) when writing failed.
    pub fn record(&self, r: &TargetReport) -> bool {
        self.metrics.record(r);
        self.write_textfile()
    }

    /// Records a whole run and rewrites the textfile once.
    pub fn record_run(&self, run: &RunReport) -> bool {
        run.targets.iter().for_each(|t| self.metrics.record(t));
        self.write_textfile()
    }

    fn write_textfile(&self) -> bool {
        let Some(path) = &self.textfile else {
            return true;
        };
        match self.metrics.write_textfile(path) {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "Writing the metrics textfile failed");
                false
            }
        }
    }

    /// Pushes the registry to the Pushgateway, if one is configured; false (logged) on failure.
    pub async fn push(&self) -> bool {
        let Some((url, trust)) = &self.push else {
            return true;
        };
        let redacted = crate::config::redact_url(url.as_str());
        match crate::metrics::push(
            self.metrics.render(),
            url,
            &crate::metrics::hostname(),
            trust,
        )
        .await
        {
            Ok(()) => {
                tracing::info!(url = %redacted, "Pushed metrics");
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "Pushing metrics failed; the sweep itself still counts");
                false
            }
        }
    }
}

/// What `once` did: its report (none when the shutdown's grace ran out) and its exit code.
pub struct Once {
    /// The report.
    pub report: Option<RunReport>,
    /// 0 clean, 1 a target failed, an upload stayed unverified, an export failed or the drain ran
    /// out, 3 a shutdown signal cut the sweep short (the report says `interrupted`).
    pub code: u8,
}

/// `once`: one sweep of every target, then the textfile and the push.
pub async fn once(config: &Config, max_listed: usize) -> Once {
    let exporter = match Exporter::new(config, true) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(error = %e, "Cannot set up the metrics export");
            return Once {
                report: None,
                code: 1,
            };
        }
    };
    let runner = Runner::new(config, Shutdown::new(config.daemon.shutdown_grace.0));
    let Some(report) = runner
        .sweep_all(
            &config.targets,
            runner.options(max_listed),
            progress_wanted(),
        )
        .await
    else {
        return Once {
            report: None,
            code: 1,
        };
    };
    let mut code = report.exit_code();
    if report.interrupted {
        tracing::warn!(
            exit_code = code,
            "Interrupted by a shutdown signal: not every target was swept to its end; run again to finish"
        );
    }
    if !exporter.record_run(&report) {
        code = 1;
    }
    if !exporter.push().await {
        code = 1;
    }
    Once {
        report: Some(report),
        code,
    }
}

/// `plan`: a dry run of every target, nothing exported.
pub async fn plan(config: &Config) -> Option<RunReport> {
    let runner = Runner::new(config, Shutdown::new(config.daemon.shutdown_grace.0));
    runner
        .sweep_all(
            &config.targets,
            runner.options(usize::MAX),
            progress_wanted(),
        )
        .await
}
