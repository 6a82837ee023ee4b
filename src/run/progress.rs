//! What a person waiting on a sweep sees on stderr: a progress line rewritten in place on a
//! terminal, or an INFO log line at an interval under a log collector; and the writer of log
//! lines, which clears a progress line before a log line lands on it.

use std::io::{IsTerminal, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use crate::sweep::Progress;

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

/// The display of one run's progress, from [`Display::start`] until dropped.
pub(crate) struct Display {
    ticker: Option<tokio::task::JoinHandle<()>>,
    show: Show,
}

impl Display {
    /// Shows `p` as `show` says until the display is dropped.
    pub(crate) fn start(p: Arc<Progress>, show: Show) -> Display {
        let ticker = (show != Show::Nothing).then(|| tokio::spawn(show_progress(p, show)));
        Display { ticker, show }
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        if let Some(t) = self.ticker.take() {
            t.abort();
            if self.show == Show::Line {
                PROGRESS_LINE.store(false, Relaxed);
                eprint!("\r\x1b[2K");
            }
        }
    }
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
}
