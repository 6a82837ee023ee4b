//! A lease held: renewed every third of the ttl while the target is swept, lost when a renewal is
//! refused or cannot be made in time, finished (released, and marked swept) at the end.

use super::*;

/// The holder's view of its lease.
#[derive(Debug)]
pub(super) struct State {
    /// The ETag of the last write that succeeded.
    pub(super) etag: String,
    /// What that write said.
    pub(super) record: Record,
    /// The store's clock of the freshest answer.
    pub(super) clock: StoreClock,
    /// When (here) that write's expiry was computed.
    pub(super) written: Instant,
}

/// How a renewal went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Standing {
    /// Renewed: held until then, on the store's clock.
    Held {
        /// The new expiry.
        until: DateTime<Utc>,
    },
    /// Lost (now or earlier): another process may sweep the target.
    Lost {
        /// Why.
        reason: String,
    },
}

/// How [`Lease::finish`] went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finished {
    /// Recorded: the lease is released (expired for any later reader) and, when the sweep was
    /// complete, marked swept at `at`, so that other replicas skip the target this period.
    Recorded {
        /// `swept_at` as written (the store's time now) when swept; else the expiry written.
        at: DateTime<Utc>,
    },
    /// The lease had been lost before it could be finished: nothing was written.
    Lost {
        /// Why.
        reason: String,
    },
}

/// A lease this process holds on one target for one period. Renew it with [`Lease::keep_alive`]
/// (or [`Lease::renew`]), watch [`Lease::lost_token`] while sweeping, and end with
/// [`Lease::finish`]. Dropped without finishing, it stops renewing and lapses at its expiry.
pub struct Lease {
    held: Arc<Held>,
    /// Stops the renewal task (on finish, and when the lease is dropped).
    stop: CancellationToken,
    _stop_on_drop: DropGuard,
    renewer: parking_lot::Mutex<Option<JoinHandle<()>>>,
}

struct Held {
    leases: Leases,
    key: String,
    /// Cancelled when the lease is lost, never otherwise.
    lost: CancellationToken,
    reason: OnceLock<String>,
    state: parking_lot::Mutex<State>,
    /// One write at a time (a renewal and the finish never race each other's ETag).
    writing: tokio::sync::Mutex<()>,
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.held.state.lock();
        f.debug_struct("Lease")
            .field("key", &self.held.key)
            .field("record", &st.record)
            .field("lost", &self.held.reason.get())
            .finish_non_exhaustive()
    }
}

impl Lease {
    pub(super) fn new(leases: Leases, key: String, state: State) -> Lease {
        let stop = CancellationToken::new();
        Lease {
            held: Arc::new(Held {
                leases,
                key,
                lost: CancellationToken::new(),
                reason: OnceLock::new(),
                state: parking_lot::Mutex::new(state),
                writing: tokio::sync::Mutex::new(()),
            }),
            _stop_on_drop: stop.clone().drop_guard(),
            stop,
            renewer: parking_lot::Mutex::new(None),
        }
    }

    /// The lease object's key.
    pub fn key(&self) -> &str {
        &self.held.key
    }

    /// The holder name written in it.
    pub fn holder(&self) -> &str {
        self.held.leases.holder()
    }

    /// The period it was claimed for.
    pub fn period(&self) -> DateTime<Utc> {
        self.held.state.lock().record.period
    }

    /// Its current expiry, on the store's clock.
    pub fn until(&self) -> DateTime<Utc> {
        self.held.state.lock().record.expires
    }

    /// Cancelled when the lease is lost (taken over, or not renewed in time): the sweep starts no
    /// new abort once it is. Never cancelled otherwise, finishing included.
    pub fn lost_token(&self) -> CancellationToken {
        self.held.lost.clone()
    }

    /// Why the lease was lost, once it is.
    pub fn lost(&self) -> Option<String> {
        self.held.reason.get().cloned()
    }

    /// Renews the lease every third of its ttl in a task, until [`Lease::finish`], the lease's
    /// drop, or its loss; returns [`Lease::lost_token`]. A refused renewal loses the lease at once;
    /// a failing one is retried until the moment another process could find it expired, and the
    /// lease is lost then. Calling it again returns the same token and starts nothing more.
    pub fn keep_alive(&self) -> CancellationToken {
        let mut renewer = self.renewer.lock();
        if renewer.is_none() {
            let held = self.held.clone();
            let stop = self.stop.clone();
            *renewer = Some(tokio::spawn(async move { held.keep_alive(stop).await }));
        }
        self.held.lost.clone()
    }

    /// Renews the lease now: a new expiry (the store's time + ttl), written `If-Match` its ETag.
    /// [`Standing::Lost`] when another process took it over (or it was deleted, or lost earlier);
    /// an error when the store could not be asked (the lease stands until [`Lease::keep_alive`]'s
    /// deadline).
    pub async fn renew(&self) -> Result<Standing, StoreError> {
        self.held.renew().await
    }

    /// Ends the lease: stops renewing, then writes its expiry as now (others may take it at
    /// once) and, when `swept` (the period's sweep completed), `swept_at` too, so that the other
    /// replicas skip the target for the rest of the period. The object is kept: it is what they
    /// read. When the sweep failed or was interrupted, `swept = false` lets another replica retry
    /// the period.
    pub async fn finish(self, swept: bool) -> Result<Finished, StoreError> {
        self.stop.cancel();
        let renewer = self.renewer.lock().take();
        if let Some(task) = renewer {
            let _ = task.await;
        }
        self.held.finish(swept).await
    }
}

impl Held {
    fn ttl(&self) -> Duration {
        self.leases.ttl()
    }

    fn lose(&self, reason: String) {
        if self.reason.set(reason.clone()).is_ok() {
            tracing::warn!(key = %self.key, holder = %self.leases.holder(), reason = %reason, "Lease lost");
        }
        self.lost.cancel();
    }

    /// The moment (here) after which the lease may be found expired by another process.
    fn deadline(&self) -> Instant {
        safe_until(self.state.lock().written, self.ttl())
    }

    async fn keep_alive(&self, stop: CancellationToken) {
        let ttl = self.ttl();
        let retry = (ttl / 10).max(Duration::from_millis(100));
        let mut next = self.state.lock().written + ttl / 3;
        loop {
            let deadline = self.deadline();
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep_until(next.min(deadline)) => {}
            }
            if self.lost.is_cancelled() {
                return;
            }
            if Instant::now() >= deadline {
                self.lose(format!(
                    "not renewed within its ttl ({}): another process may have taken it",
                    humantime::format_duration(ttl)
                ));
                return;
            }
            match tokio::time::timeout_at(deadline, self.renew()).await {
                Ok(Ok(Standing::Held { .. })) => next = self.state.lock().written + ttl / 3,
                Ok(Ok(Standing::Lost { .. })) => return,
                Ok(Err(e)) => {
                    tracing::warn!(key = %self.key, error = %e, "Lease renewal failed; retrying");
                    next = Instant::now() + retry;
                }
                Err(_) => {
                    self.lose(format!(
                        "the renewal got no answer before the lease could expire (ttl {})",
                        humantime::format_duration(ttl)
                    ));
                    return;
                }
            }
        }
    }

    async fn renew(&self) -> Result<Standing, StoreError> {
        let _writing = self.writing.lock().await;
        if let Some(reason) = self.reason.get() {
            return Ok(Standing::Lost {
                reason: reason.clone(),
            });
        }
        let ttl = delta(self.ttl());
        match self
            .rewrite(|record, now, _| record.expires = now + ttl)
            .await?
        {
            Ok(record) => Ok(Standing::Held {
                until: record.expires,
            }),
            Err(reason) => {
                self.lose(reason.clone());
                Ok(Standing::Lost { reason })
            }
        }
    }

    async fn finish(&self, swept: bool) -> Result<Finished, StoreError> {
        let _writing = self.writing.lock().await;
        if let Some(reason) = self.reason.get() {
            return Ok(Finished::Lost {
                reason: reason.clone(),
            });
        }
        let written = self
            // Expired for any later reader: the Date of an answer already received is never
            // after the Date of a later one (the estimate of "now" could be, by its fraction).
            .rewrite(|record, now, seen| {
                record.expires = seen;
                record.swept_at = swept.then_some(now);
            })
            .await?;
        match written {
            Ok(record) => {
                tracing::info!(key = %self.key, holder = %record.holder, swept, "Lease released");
                Ok(Finished::Recorded {
                    at: record.swept_at.unwrap_or(record.expires),
                })
            }
            Err(reason) => {
                self.lose(reason.clone());
                Ok(Finished::Lost { reason })
            }
        }
    }

    /// Writes the record changed by `change` (given the store's time now, estimated, and the
    /// `Date` of its freshest answer) `If-Match` the last ETag. `Ok(Err(reason))` when the lease is no longer ours. A refused write whose re-read
    /// shows our own token (an earlier write of ours landed though its answer was lost, or the
    /// SDK retried one that had) adopts that ETag and writes again.
    async fn rewrite(
        &self,
        change: impl Fn(&mut Record, DateTime<Utc>, DateTime<Utc>),
    ) -> Result<Result<Record, String>, StoreError> {
        for _ in 0..2 {
            let (etag, mut record, clock) = {
                let st = self.state.lock();
                (st.etag.clone(), st.record.clone(), st.clock)
            };
            let written = Instant::now();
            change(&mut record, clock.at(written), clock.date);
            match self
                .leases
                .put(
                    &self.key,
                    to_body(&record),
                    Cond::Match(&self.leases.if_match(&etag)),
                )
                .await?
            {
                Put::Written { etag, clock } => {
                    *self.state.lock() = State {
                        etag,
                        record: record.clone(),
                        clock,
                        written,
                    };
                    return Ok(Ok(record));
                }
                Put::Refused { .. } => {}
            }
            let read = self.leases.get(&self.key).await?;
            match (&read.current, read.etag) {
                (Current::Record(r), Some(etag)) if r.token == self.leases.inner.token => {
                    let mut st = self.state.lock();
                    st.etag = etag;
                    st.clock = read.clock;
                }
                (Current::Record(r), _) => {
                    return Ok(Err(format!(
                        "taken over by {} (period {}, until {})",
                        r.holder, r.period, r.expires
                    )));
                }
                (Current::Absent, _) => {
                    return Ok(Err("the lease object was deleted".to_string()));
                }
                (Current::Unreadable, _) => {
                    return Ok(Err(
                        "the lease object was overwritten by something that is not a lease"
                            .to_string(),
                    ));
                }
            }
        }
        Ok(Err(
            "the lease object kept changing under this holder's writes".to_string(),
        ))
    }
}
