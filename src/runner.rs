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
use crate::discover::Scope;
use crate::metrics::Metrics;
use crate::report::{RunReport, TargetReport};
use crate::shutdown::Shutdown;
use crate::store::Connector;
use crate::store::proxy::Proxies;
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
    /// What discovery must respect: the configuration's explicit targets and its shard.
    pub scope: Scope,
}

impl Runner {
    /// A runner with the limits of `config` and the default credential chain.
    pub fn new(config: &Config, shutdown: Shutdown) -> Self {
        Runner {
            connector: Connector::new(),
            shutdown,
            global_limit: Arc::new(Semaphore::new(in_flight_cap(config.daemon.max_in_flight))),
            parallel_targets: config.daemon.parallel_targets,
            scope: Scope::of(config),
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

    /// One sweep of every target, in configuration order, its progress shown on stderr as `show`
    /// says. `None` when a shutdown began and the sweeps did not finish in the grace.
    pub async fn sweep_all(
        &self,
        targets: &[Target],
        opts: SweepOptions,
        show: Show,
    ) -> Option<RunReport> {
        let ticker = (show != Show::Nothing)
            .then(|| tokio::spawn(show_progress(opts.progress.clone(), show)));
        let run = self.shutdown.run(sweep::sweep_targets(
            targets,
            &self.connector,
            &opts,
            self.parallel_targets,
            &self.scope,
        ));
        let mut run = run.await;
        if let Some(t) = ticker {
            t.abort();
            if show == Show::Line {
                PROGRESS_LINE.store(false, Relaxed);
                eprint!("\r\x1b[2K");
            }
        }
        if let Some(r) = &mut run {
            r.mark_interrupted();
        }
        run
    }
}

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

/// How a sweep's progress is shown on stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Show {
    /// Not at all.
    Nothing,
    /// One line, rewritten four times a second (stderr is a terminal).
    Line,
    /// An INFO log line this often (stderr is a log: a CronJob's, the journal).
    Log(Duration),
}

impl Show {
    /// A line on a terminal, else a log line every `every` (never for 0).
    pub fn for_stderr(every: Duration) -> Show {
        if std::io::stderr().is_terminal() {
            Show::Line
        } else if every.is_zero() {
            Show::Nothing
        } else {
            Show::Log(every)
        }
    }
}

/// The progress of a run at one instant.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// Uploads listed so far.
    pub listed: u64,
    /// Uploads done with (any outcome).
    pub processed: u64,
    /// Uploads aborted and verified.
    pub aborted: u64,
    /// Bytes reclaimed.
    pub reclaimed_bytes: u64,
    /// Every target's listing has ended: `listed` is the total.
    pub listing_done: bool,
    /// Time since the run started.
    pub elapsed: Duration,
}

impl Snapshot {
    fn of(p: &Progress, elapsed: Duration) -> Snapshot {
        let targets = p.targets.load(Relaxed);
        Snapshot {
            listed: p.listed.load(Relaxed),
            processed: p.processed.load(Relaxed),
            aborted: p.aborted.load(Relaxed),
            reclaimed_bytes: p.reclaimed_bytes.load(Relaxed),
            listing_done: targets > 0 && p.targets_listed.load(Relaxed) >= targets,
            elapsed,
        }
    }

    /// Uploads done per second since the start.
    pub fn rate(&self) -> f64 {
        self.processed as f64 / self.elapsed.as_secs_f64().max(1e-3)
    }

    /// The time left at the rate so far, once the total is known.
    pub fn eta(&self) -> Option<Duration> {
        let left = self.listed.saturating_sub(self.processed);
        (self.listing_done && self.rate() > 0.0)
            .then(|| Duration::from_secs((left as f64 / self.rate()).ceil() as u64))
    }

    /// The progress line: done of total (or of those seen so far, while listing), the rate, what
    /// was aborted and reclaimed, and the time left once the total is known.
    pub fn text(&self) -> String {
        let of = if self.listing_done {
            format!("{}/{}", self.processed, self.listed)
        } else {
            format!("{}/{} seen so far", self.processed, self.listed)
        };
        let eta = match self.eta() {
            Some(left) => format!("ETA {}", humantime::format_duration(left)),
            None => "listing...".to_string(),
        };
        format!(
            "processed {of}  {:.0} uploads/s  aborted {}  reclaimed {}  {eta}",
            self.rate(),
            self.aborted,
            crate::report::human_bytes(self.reclaimed_bytes),
        )
    }
}

/// Shows the progress as `show` says until aborted.
async fn show_progress(p: Arc<Progress>, show: Show) {
    let started = tokio::time::Instant::now();
    let every = match show {
        Show::Log(every) => every,
        _ => Duration::from_millis(250),
    };
    let mut tick = tokio::time::interval_at(started + every, every);
    loop {
        tick.tick().await;
        let now = Snapshot::of(&p, started.elapsed());
        if show == Show::Line {
            PROGRESS_LINE.store(true, Relaxed);
            eprint!("\r\x1b[2K{}", now.text());
        } else {
            tracing::info!(
                listed = now.listed,
                processed = now.processed,
                aborted = now.aborted,
                reclaimed_bytes = now.reclaimed_bytes,
                uploads_per_second = now.rate().round() as u64,
                eta_seconds = now.eta().map(|d| d.as_secs()),
                "Progress: {}",
                now.text()
            );
        }
    }
}

/// Where the figures of the sweeps go: the registry (served by `run` on /metrics), the textfile
/// (counters carried over from the previous file), the Pushgateway.
pub struct Exporter {
    /// The registry.
    pub metrics: Metrics,
    textfile: Option<PathBuf>,
    push: Option<(url::Url, (Trust, Proxies))>,
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
            Some(url) if push => Some((
                url.clone(),
                (
                    Trust::load(config.defaults.ca_bundle())?,
                    Proxies::new(&config.defaults.proxy),
                ),
            )),
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
        run.discovery
            .iter()
            .for_each(|d| self.metrics.record_discovery(d));
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
        let Some((url, via)) = &self.push else {
            return true;
        };
        let redacted = crate::config::redact_url(url.as_str());
        match crate::metrics::push(self.metrics.render(), url, &crate::metrics::hostname(), via)
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
pub async fn once(config: &Config, max_listed: usize, show: Show) -> Once {
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
        .sweep_all(&config.targets, runner.options(max_listed), show)
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
pub async fn plan(config: &Config, show: Show) -> Option<RunReport> {
    let runner = Runner::new(config, Shutdown::new(config.daemon.shutdown_grace.0));
    runner
        .sweep_all(&config.targets, runner.options(usize::MAX), show)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_shows_the_rate_and_a_time_left_once_the_total_is_known() {
        let mut s = Snapshot {
            listed: 52_000,
            processed: 40_000,
            aborted: 39_990,
            reclaimed_bytes: 39_990 * 1024,
            listing_done: false,
            elapsed: Duration::from_secs(8),
        };
        assert_eq!(s.rate(), 5_000.0);
        assert_eq!(s.eta(), None, "no time left while the total is unknown");
        assert_eq!(
            s.text(),
            "processed 40000/52000 seen so far  5000 uploads/s  aborted 39990  reclaimed 39.1 MiB  listing..."
        );
        s.listing_done = true;
        assert_eq!(
            s.eta(),
            Some(Duration::from_secs(3)),
            "12,000 left at 5,000/s"
        );
        assert!(
            s.text()
                .starts_with("processed 40000/52000  5000 uploads/s")
        );
        assert!(s.text().ends_with("ETA 3s"), "{}", s.text());
        let nothing = Snapshot {
            listing_done: true,
            ..Snapshot::default()
        };
        assert_eq!(nothing.eta(), None, "no rate, no guess");
    }

    #[test]
    fn uploads_in_flight_are_capped_by_the_open_file_limit() {
        let (soft, _) = crate::http::raise_descriptor_limit();
        let half = usize::try_from(soft / 2).unwrap().max(16);
        assert_eq!(in_flight_cap(8), 8);
        assert_eq!(in_flight_cap(usize::MAX), half);
    }
}
