//! Coordination among replicas, in the run's path: before a target is swept, its lease is claimed
//! for the current schedule period ([`super::lease`]). Held: the target is swept while the lease
//! is renewed, and a lease lost mid-sweep stops new aborts (the sweep sees it as its cancel
//! token); the lease is then finished (marked swept when the sweep was complete). Swept or held
//! by another replica: the target is skipped and reported as such, not as a failure. A lease store
//! that ignores conditional writes, or that cannot be reached, leaves the target swept without a
//! lease, said loudly in the log, the report and `mpu_janitor_lease_claims_total`; exact
//! accounting keeps the figures right there. `plan` and dry runs only read the lease.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use super::lease::{Claim, Current, Lease, Leases, target_id};
use crate::config::{ClientSettings, Config, LeaseLocation, Target};
use crate::report::{LeaseReport, LeaseStatus};
use crate::store::Connector;

/// The process's coordination: off, or where the leases are and who holds them.
#[derive(Default)]
pub struct Coordinator {
    on: Option<On>,
    leases: OnceCell<Result<Leases, String>>,
}

/// `[coordination]` when it is on, and the `[defaults]` connection the lease bucket is reached with.
struct On {
    location: LeaseLocation,
    ttl: Duration,
    holder: String,
    settings: ClientSettings,
}

/// What a target's turn is, as the lease says.
pub enum Turn {
    /// Sweep it: under `lease` when held (see [`hold`]), else without one; `note` is what to
    /// report.
    Sweep {
        /// The lease held, to finish after the sweep.
        lease: Option<Lease>,
        /// What the report says of the lease.
        note: Option<LeaseReport>,
    },
    /// Another replica swept it in this period, or holds it now: skip it.
    Skip(LeaseReport),
}

impl Coordinator {
    /// The coordination `[coordination]` asks for; the lease bucket is reached with `[defaults]`.
    pub fn new(config: &Config) -> Self {
        Coordinator {
            on: config.coordination.location().map(|location| On {
                location,
                ttl: config.coordination.lease_ttl.0,
                holder: config.coordination.holder(),
                settings: config.defaults.client(),
            }),
            leases: OnceCell::new(),
        }
    }

    async fn leases(&self, connector: &Connector) -> Option<&Result<Leases, String>> {
        let on = self.on.as_ref()?;
        Some(
            self.leases
                .get_or_init(|| async {
                    connector
                        .client(&on.settings)
                        .await
                        .map(|client| {
                            Leases::new(
                                client,
                                on.location.bucket.clone(),
                                on.location.prefix.clone(),
                                on.ttl,
                                on.holder.clone(),
                            )
                        })
                        .map_err(|e| e.to_string())
                })
                .await,
        )
    }

    /// The turn of `target` in the schedule period that contains now. A dry run only reads.
    pub async fn claim(&self, target: &Target, connector: &Connector) -> Turn {
        let Some(leases) = self.leases(connector).await else {
            return Turn::Sweep {
                lease: None,
                note: None,
            };
        };
        let error = |detail: String| {
            tracing::error!(bucket = %target.bucket, error = %detail,
                "Cannot use the replicas' lease: sweeping without it (other replicas may sweep this target too; the figures stay exact)");
            Turn::Sweep {
                lease: None,
                note: Some(note(LeaseStatus::Error, String::new(), None, Some(detail))),
            }
        };
        let leases = match leases {
            Ok(l) => l,
            Err(e) => return error(e.clone()),
        };
        let id = target_id(
            target.settings.endpoint_url.as_str(),
            &target.bucket,
            &target.prefix,
        );
        if target.settings.dry_run {
            return match leases.read(&id).await {
                Ok((current, now)) => Turn::Sweep {
                    lease: None,
                    note: Some(observed(&current, now)),
                },
                Err(e) => error(e.to_string()),
            };
        }
        let period = period(target);
        match leases.claim(&id, period).await {
            Ok(Claim::Held(lease)) => {
                tracing::info!(bucket = %target.bucket, holder = %lease.holder(), until = %lease.until(), "Holding the target's lease");
                let note = note(
                    LeaseStatus::Held,
                    lease.holder().to_string(),
                    Some(lease.until()),
                    None,
                );
                Turn::Sweep {
                    lease: Some(lease),
                    note: Some(note),
                }
            }
            Ok(Claim::SweptBy { holder, at }) => {
                tracing::info!(bucket = %target.bucket, holder = %holder, at = %at, "Swept by another replica in this period: skipped");
                Turn::Skip(note(LeaseStatus::SweptByOther, holder, Some(at), None))
            }
            Ok(Claim::HeldBy { holder, until }) => {
                tracing::info!(bucket = %target.bucket, holder = %holder, until = %until, "Another replica holds the lease: skipped");
                Turn::Skip(note(LeaseStatus::HeldByOther, holder, Some(until), None))
            }
            Ok(Claim::Unsupported { reason }) => {
                tracing::warn!(bucket = %target.bucket, lease_bucket = %leases.bucket(), reason = %reason,
                    "COORDINATION IS OFF: the lease store ignores conditional writes, so every replica sweeps this target (the figures stay exact)");
                Turn::Sweep {
                    lease: None,
                    note: Some(note(
                        LeaseStatus::Unsupported,
                        String::new(),
                        None,
                        Some(reason),
                    )),
                }
            }
            Err(e) => error(e.to_string()),
        }
    }
}

/// Holds `lease` while `sweep` runs: its loss cancels `cancel` (no new abort starts); afterwards
/// the lease is finished, marked swept when `complete` says the sweep was. Returns the loss, if
/// the lease was lost.
pub async fn hold<F: std::future::Future>(
    lease: Lease,
    cancel: &CancellationToken,
    sweep: F,
    complete: impl FnOnce(&F::Output) -> bool,
) -> (F::Output, Option<String>) {
    let lost = lease.keep_alive();
    let watch = {
        let (lost, cancel) = (lost.clone(), cancel.clone());
        tokio::spawn(async move {
            lost.cancelled().await;
            cancel.cancel();
        })
    };
    let out = sweep.await;
    watch.abort();
    let loss = lease.lost();
    if let Some(why) = &loss {
        tracing::warn!(reason = %why, "Lost the target's lease mid-sweep: no new abort started after the loss");
    }
    let swept = loss.is_none() && complete(&out);
    if let Err(e) = lease.finish(swept).await {
        tracing::warn!(error = %e, "Finishing the lease failed: it expires on its own");
    }
    (out, loss)
}

/// The start of the schedule period that contains now (the latest tick of the target's schedule,
/// in its time zone): replicas ticking together name the same period. A tick that fires a moment
/// early still names its own period.
pub fn period(target: &Target) -> DateTime<Utc> {
    let tz = target.settings.timezone.0;
    let now = (Utc::now() + chrono::TimeDelta::seconds(2)).with_timezone(&tz);
    target
        .settings
        .schedule
        .cron()
        .find_previous_occurrence(&now, true)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|_| Utc::now())
}

fn note(
    status: LeaseStatus,
    holder: String,
    at: Option<DateTime<Utc>>,
    detail: Option<String>,
) -> LeaseReport {
    LeaseReport {
        status,
        holder,
        at,
        detail,
    }
}

/// What a read of the lease shows (`plan`).
fn observed(current: &Current, now: DateTime<Utc>) -> LeaseReport {
    match current {
        Current::Record(r) if r.expires > now => note(
            LeaseStatus::HeldByOther,
            r.holder.clone(),
            Some(r.expires),
            None,
        ),
        Current::Record(r) => match r.swept_at {
            Some(at) => note(LeaseStatus::Free, r.holder.clone(), Some(at), None),
            None => note(LeaseStatus::Free, r.holder.clone(), None, None),
        },
        _ => note(LeaseStatus::Free, String::new(), None, None),
    }
}
