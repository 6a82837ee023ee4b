//! Shutdown, in one place: SIGTERM or SIGINT (or a cancelled token) starts it; from then on no new
//! abort starts, the ones in flight finish and are verified, and whatever is still running after
//! `[daemon] shutdown_grace` is given up, said in the log. SIGHUP drains the same way in the
//! commands that have nothing to reload (`once`, `plan`, `demo`); `run` reloads on it instead
//! ([`Shutdown::reload_on_hangup`], handled in `schedule`).

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// The process's shutdown: a token every sweep watches, and the grace period of the drain.
#[derive(Clone, Debug)]
pub struct Shutdown {
    cancel: CancellationToken,
    grace: Duration,
    /// Whether SIGHUP begins the shutdown (false in `run`, where it reloads).
    hangup_drains: bool,
}

impl Shutdown {
    /// A shutdown with this grace period, not begun.
    pub fn new(grace: Duration) -> Self {
        Self::with_token(CancellationToken::new(), grace)
    }

    /// A shutdown that also begins when `cancel` is cancelled (tests, embedding).
    pub fn with_token(cancel: CancellationToken, grace: Duration) -> Self {
        Shutdown {
            cancel,
            grace,
            hangup_drains: true,
        }
    }

    /// This shutdown leaves SIGHUP alone: the `run` daemon reloads its configuration on it.
    pub fn reload_on_hangup(mut self) -> Self {
        self.hangup_drains = false;
        self
    }

    /// The token the sweeps watch: cancelled once the shutdown begins.
    pub fn token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// The grace period.
    pub fn grace(&self) -> Duration {
        self.grace
    }

    /// Resolves on SIGTERM, SIGINT, SIGHUP (unless [`Self::reload_on_hangup`]) or when the token
    /// is cancelled, then notes the time and cancels the token.
    pub async fn signalled(&self) {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        // Registering a handler replaces SIGHUP's default action (terminate at once, exit 129).
        let hup = self
            .hangup_drains
            .then(|| signal(SignalKind::hangup()).ok())
            .flatten();
        let hangup = async move {
            match hup {
                Some(mut hup) => {
                    hup.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        match (term, int) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM received"),
                    _ = int.recv() => tracing::info!("SIGINT received"),
                    () = hangup => tracing::info!("SIGHUP received: this command has nothing to reload; stopping as for SIGTERM"),
                    () = self.cancel.cancelled() => {}
                }
            }
            _ => self.cancel.cancelled().await,
        }
        self.cancel.cancel();
    }

    /// Waits for `work` within the grace period; `None` (logged) when it did not finish in time.
    pub async fn drain<F: Future>(&self, work: F) -> Option<F::Output> {
        let drained = tokio::time::timeout(self.grace, work).await.ok();
        if drained.is_none() {
            tracing::error!(
                grace_seconds = self.grace.as_secs_f64(),
                "Still running after the grace period; giving up on what is in flight"
            );
        }
        drained
    }

    /// Runs `work` to its end; if a shutdown begins first, lets it finish within the grace period
    /// (the work sees the cancelled token: no new abort starts). `None` when it did not finish.
    pub async fn run<F: Future>(&self, work: F) -> Option<F::Output> {
        tokio::pin!(work);
        tokio::select! {
            out = &mut work => Some(out),
            () = self.signalled() => {
                tracing::warn!(grace_seconds = self.grace.as_secs_f64(), "Stopping: no new aborts; finishing and verifying the ones in flight");
                self.drain(work).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn work_that_ends_first_is_returned_and_a_cancel_drains_within_the_grace() {
        let s = Shutdown::new(Duration::from_secs(5));
        assert_eq!(s.run(async { 7 }).await, Some(7));
        assert!(!s.token().is_cancelled(), "no shutdown began");

        // Cancelled: the work sees the token and ends 1 s later, inside the 5 s grace.
        let s = Shutdown::new(Duration::from_secs(5));
        s.token().cancel();
        let token = s.token();
        let work = async move {
            token.cancelled().await;
            tokio::time::sleep(Duration::from_secs(1)).await;
            "drained"
        };
        assert_eq!(s.run(work).await, Some("drained"));

        // Work that ignores the shutdown is given up after the grace.
        let s = Shutdown::new(Duration::from_secs(5));
        s.token().cancel();
        let forever = std::future::pending::<()>();
        assert_eq!(s.run(forever).await, None);
    }
}
