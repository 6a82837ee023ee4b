//! The lease among replicas: processes sharing a configuration (sidecar replicas, an HA pair, a
//! CronJob overlapping a manual `once`) elect one sweeper per target and schedule period, with no
//! infrastructure beyond the store. Without it every replica sweeps every target, doubling the
//! requests (and, before exact accounting, the figures).
//!
//! # Protocol
//!
//! One small JSON object per target, `{PREFIX}{target id}` in the lease bucket ([`Record`]: holder,
//! period, expiry, when the period's sweep finished). It is taken with `PutObject If-None-Match: *`
//! and renewed, taken over or finished with `PutObject If-Match: <its ETag>`, so two writers never
//! both succeed: the loser gets 412 and reads who won. Expiry is judged on the store's clock only:
//! every expiry written is the store's time (from the `Date` header of its latest answer, plus the
//! time elapsed here since) plus the ttl, and a lease is expired when the `Date` of the answer that
//! read it has reached its expiry. This host's clock never enters a comparison; only its monotonic
//! clock measures elapsed time.
//!
//! The holder renews every third of the ttl. It treats the lease as lost (and cancels the token its
//! sweep watches, so that no new abort starts) when a renewal is refused (another holder took it
//! over), or when it could not renew before the moment another process could find it expired.
//!
//! A store that ignores the conditions (Garage 2.5.0 answers 200 to both) would let every replica
//! believe it holds the lease: [`Leases::probe`] proves the store refuses a condition before any
//! claim relies on it, and otherwise coordination is off for that store ([`Support::Unsupported`],
//! a value the caller logs, reports and counts).
//!
//! The decision of a claim is a pure function ([`decide`]) with a table test; everything here that
//! talks to the store goes through one aws-sdk-s3 client built by [`crate::store::Connector`].

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::store::error::{Service, classify};
use crate::store::{ErrorKind, Operation, StoreError};

/// How many times a claim reads and writes the lease before giving up, when every write finds it
/// changed since the read (each round is a real change by another process).
mod held;
mod record;
#[cfg(test)]
mod tests;

use held::State;
pub use held::{Finished, Lease, Standing};
pub use record::{Current, Decision, Record, decide, target_id};

const CLAIM_ROUNDS: usize = 4;
/// A wrong ETag for the probe's `If-Match` (no store makes an ETag of 32 zeros from a body).
const WRONG_ETAG: &str = "\"00000000000000000000000000000000\"";

/// Whether a store refuses a condition it cannot meet, as [`Leases::probe`] measured it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Support {
    /// The store answered 412 to both conditions: a lease there elects one holder.
    Supported,
    /// The store does not enforce conditional writes: coordination is off for it (every replica
    /// sweeps; the exact accounting still keeps the sums right).
    Unsupported {
        /// What the store answered, in a sentence naming the ignored condition.
        reason: String,
    },
}

/// What a claim found.
#[derive(Debug)]
pub enum Claim {
    /// This process holds the lease for the period: sweep the target, then [`Lease::finish`].
    Held(Lease),
    /// Another holder (or this one, earlier) already swept the target in this period (or a later
    /// one): skip it.
    SweptBy {
        /// Who swept it.
        holder: String,
        /// When it finished, on the store's clock.
        at: DateTime<Utc>,
    },
    /// Another holder holds the lease and it has not expired: skip the target.
    HeldBy {
        /// Who holds it.
        holder: String,
        /// Until when, on the store's clock, unless it renews.
        until: DateTime<Utc>,
    },
    /// The store ignores conditional writes ([`Leases::probe`]): nothing was claimed and
    /// coordination is off for it; sweep without a lease and say so.
    Unsupported {
        /// What the store answered.
        reason: String,
    },
}

/// The store's clock as read from an answer: its `Date`, and the moment here (monotonic) just
/// before the request was sent, so that `date + elapsed since` never runs behind the store by more
/// than the `Date` header's rounding (under one second).
#[derive(Clone, Copy, Debug)]
struct StoreClock {
    date: DateTime<Utc>,
    sent: Instant,
}

impl StoreClock {
    /// The store's time at `t`, estimated from this answer.
    fn at(&self, t: Instant) -> DateTime<Utc> {
        self.date + delta(t.saturating_duration_since(self.sent))
    }
}

fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

/// The last moment (here) at which a lease written at `written` with `ttl` is surely still ours:
/// another process can find it expired once the store's clock reaches the expiry, which can come
/// up to one second (the `Date` header's rounding) before `written + ttl`; a tenth of the ttl more
/// covers the two clocks' rates and a late renewal's send.
fn safe_until(written: Instant, ttl: Duration) -> Instant {
    written + ttl.saturating_sub(Duration::from_secs(1) + ttl / 10)
}

/// Keeps the `Date` header of the last answer to the call it is attached to.
#[derive(Clone, Debug, Default)]
struct DateOf(Arc<parking_lot::Mutex<Option<String>>>);

impl DateOf {
    /// The store's clock of the answer, for a request sent at `sent`.
    fn clock(&self, sent: Instant) -> Result<StoreClock, StoreError> {
        let text = self.0.lock().clone();
        let date = text
            .as_deref()
            .and_then(|d| httpdate::parse_http_date(d).ok())
            .map(DateTime::<Utc>::from)
            .ok_or_else(|| {
                StoreError::protocol(
                    Operation::Lease,
                    format!(
                        "the store's answer had no readable Date header ({text:?}): a lease's expiry is judged on the store's clock only"
                    ),
                )
            })?;
        Ok(StoreClock { date, sent })
    }
}

impl Intercept for DateOf {
    fn name(&self) -> &'static str {
        "LeaseDate"
    }

    fn read_after_transmit(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        *self.0.lock() = context.response().headers().get("date").map(str::to_string);
        Ok(())
    }
}

/// A conditional write's condition.
#[derive(Clone, Copy, Debug)]
enum Cond<'a> {
    /// Unconditional (the probe's first write).
    None,
    /// `If-None-Match: *`: only if no object exists.
    Absent,
    /// `If-Match: <etag>`: only if the object is this one.
    Match(&'a str),
}

/// What a write answered.
#[derive(Debug)]
enum Put {
    /// 200: written; its ETag and the store's clock of the answer.
    Written { etag: String, clock: StoreClock },
    /// The condition failed (412, 409 ConditionalRequestConflict, or 404 to an `If-Match` on a
    /// deleted object): someone else wrote or removed it.
    Refused { status: u16 },
}

/// What a read answered.
struct Read {
    current: Current,
    etag: Option<String>,
    clock: StoreClock,
}

/// The lease objects of one lease bucket and prefix, and this process's identity in them. Cheap to
/// clone; build one per process and lease location, so the probe's verdict is cached once.
#[derive(Clone)]
pub struct Leases {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    bucket: String,
    prefix: String,
    ttl: Duration,
    holder: String,
    token: String,
    probed: tokio::sync::OnceCell<Probed>,
}

/// The probe's findings: the verdict, and how the store wants an ETag in `If-Match`.
#[derive(Clone, Debug)]
struct Probed {
    support: Support,
    /// Send `If-Match` without the ETag's quotes: Ceph RGW 16 matches only that form (and refuses
    /// the quoted one, its own ETag included), where AWS and moto match the quoted form.
    unquoted: bool,
}

impl fmt::Debug for Leases {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Leases")
            .field("bucket", &self.inner.bucket)
            .field("prefix", &self.inner.prefix)
            .field("ttl", &self.inner.ttl)
            .field("holder", &self.inner.holder)
            .finish_non_exhaustive()
    }
}

impl Leases {
    /// The leases under `prefix` (written as is: give "" or one ending in `/`) in `bucket`, reached
    /// through `client` (the `[defaults]` connection settings), held for `ttl` without renewal by
    /// `holder`. A ttl under about 3 s leaves little room between renewals (every third of it) and
    /// the `Date` header's one-second rounding; the configuration accepts 5s to 1h.
    pub fn new(
        client: Client,
        bucket: impl Into<String>,
        prefix: impl Into<String>,
        ttl: Duration,
        holder: impl Into<String>,
    ) -> Self {
        Leases {
            inner: Arc::new(Inner {
                client,
                bucket: bucket.into(),
                prefix: prefix.into(),
                ttl,
                holder: holder.into(),
                token: format!("{:016x}", rand::random::<u64>()),
                probed: tokio::sync::OnceCell::new(),
            }),
        }
    }

    /// This process's holder name.
    pub fn holder(&self) -> &str {
        &self.inner.holder
    }

    /// How long a lease holds without renewal.
    pub fn ttl(&self) -> Duration {
        self.inner.ttl
    }

    /// The lease bucket.
    pub fn bucket(&self) -> &str {
        &self.inner.bucket
    }

    /// The key of a target's lease object.
    pub fn key(&self, target_id: &str) -> String {
        format!("{}{target_id}", self.inner.prefix)
    }

    /// Proves that the store refuses a condition it cannot meet, once per `Leases` (the verdict is
    /// cached; an error is not, and the next call probes again). Writes a probe object of this
    /// process (`{PREFIX}.probe-{token}`), then writes it again with `If-None-Match: *` (must be
    /// refused), with `If-Match` of its own ETag (must succeed: quoted, as RFC 9110 writes an
    /// ETag, or else unquoted, which is the only form Ceph RGW 16 matches; the form that succeeds
    /// is the one every later `If-Match` uses) and with a wrong ETag in that form (must be
    /// refused), and deletes it. A store that answers 200 to a condition it cannot meet, refuses
    /// its own ETag in both forms, or refuses the headers (501 NotImplemented, 400) is
    /// [`Support::Unsupported`]; a store that cannot be reached or denies the writes is an error.
    pub async fn probe(&self) -> Result<Support, StoreError> {
        self.inner
            .probed
            .get_or_try_init(|| self.run_probe())
            .await
            .map(|p| p.support.clone())
    }

    async fn run_probe(&self) -> Result<Probed, StoreError> {
        let key = format!("{}.probe-{}", self.inner.prefix, self.inner.token);
        let verdict = self.probe_steps(&key).await;
        // The probe object is this process's alone: remove it whatever the verdict.
        if let Err(e) = self
            .inner
            .client
            .delete_object()
            .bucket(&self.inner.bucket)
            .key(&key)
            .send()
            .await
        {
            let e = classify(Operation::Lease, Service::S3, &self.inner.bucket, e);
            tracing::debug!(bucket = %self.inner.bucket, key = %key, error = %e, "Lease probe object not deleted");
        }
        if let Ok(Probed {
            support: Support::Unsupported { reason },
            ..
        }) = &verdict
        {
            tracing::warn!(bucket = %self.inner.bucket, reason = %reason, "Coordination is off for this store");
        }
        verdict
    }

    /// The probe's writes on `key`, and the verdict.
    async fn probe_steps(&self, key: &str) -> Result<Probed, StoreError> {
        let body = format!(
            "{{\"probe\":\"mpu-janitor lease\",\"holder\":{}}}",
            serde_json::Value::from(self.inner.holder.as_str())
        );
        let unsupported = |what: &str, answered: String| Probed {
            support: Support::Unsupported {
                reason: format!(
                    "the store answered {answered} to a PutObject with {what} (s3://{}/{key}): it does not enforce conditional writes, so a lease there cannot elect one sweeper",
                    self.inner.bucket
                ),
            },
            unquoted: false,
        };
        let put = |cond| self.put(key, body.clone().into_bytes(), cond);
        // What a refusal or an error answer says about the store: `Ok(None)` = refused as it
        // should be; `Ok(Some(answer))` = it does not enforce the condition.
        let refused = |answer: Result<Put, StoreError>| -> Result<Option<String>, StoreError> {
            match answer {
                Ok(Put::Refused { status: 412 | 409 }) => Ok(None),
                Ok(Put::Refused { status }) => Ok(Some(status.to_string())),
                Ok(Put::Written { .. }) => Ok(Some("200".to_string())),
                // The headers themselves refused (400, 501 NotImplemented): no conditions.
                Err(e) if e.kind == ErrorKind::Client || e.message.contains("NotImplemented") => {
                    Ok(Some(e.message))
                }
                Err(e) => Err(e),
            }
        };
        let Put::Written { etag, .. } = put(Cond::None).await? else {
            return Err(StoreError::protocol(
                Operation::Lease,
                "an unconditional PutObject was refused as if conditional",
            ));
        };
        let what = "If-None-Match: * on an existing key";
        if let Some(answer) = refused(put(Cond::Absent).await)? {
            return Ok(unsupported(what, answer));
        }
        let bare = etag.trim_matches('"').to_string();
        let mut unquoted = false;
        for (form, value) in [(false, etag.as_str()), (true, bare.as_str())] {
            match refused(put(Cond::Match(value)).await)? {
                Some(answer) if answer == "200" => {
                    unquoted = form;
                    break;
                }
                Some(answer) => {
                    return Ok(unsupported("If-Match of the object's own ETag", answer));
                }
                None if form => {
                    return Ok(unsupported(
                        "If-Match of the object's own ETag, quoted or not",
                        "412 (it refused a condition that holds)".to_string(),
                    ));
                }
                None => {}
            }
        }
        let wrong = if unquoted {
            WRONG_ETAG.trim_matches('"')
        } else {
            WRONG_ETAG
        };
        if let Some(answer) = refused(put(Cond::Match(wrong)).await)? {
            return Ok(unsupported("a wrong If-Match ETag", answer));
        }
        Ok(Probed {
            support: Support::Supported,
            unquoted,
        })
    }

    /// An ETag as this store wants it in `If-Match` (see [`Leases::probe`]).
    fn if_match(&self, etag: &str) -> String {
        match self.inner.probed.get() {
            Some(p) if p.unquoted => etag.trim_matches('"').to_string(),
            _ => etag.to_string(),
        }
    }

    /// What the lease of a target says now (for `plan` and reports: who holds or held it), and the
    /// store's time of the answer; `Current::Absent` when there is none.
    pub async fn read(&self, target_id: &str) -> Result<(Current, DateTime<Utc>), StoreError> {
        let read = self.get(&self.key(target_id)).await?;
        Ok((read.current, read.clock.date))
    }

    /// Claims a target's lease for the schedule period starting at `period` (probing the store
    /// first, once): [`Claim::Held`] when this process is to sweep it, else who swept or holds it.
    /// A write that loses a race re-reads the lease and decides again, so two claimers racing
    /// end with one [`Claim::Held`] and one [`Claim::HeldBy`].
    pub async fn claim(&self, target_id: &str, period: DateTime<Utc>) -> Result<Claim, StoreError> {
        if let Support::Unsupported { reason } = self.probe().await? {
            return Ok(Claim::Unsupported { reason });
        }
        let key = self.key(target_id);
        for _ in 0..CLAIM_ROUNDS {
            let read = self.get(&key).await?;
            let if_match;
            let cond = match decide(&read.current, &self.inner.token, period, read.clock.date) {
                Decision::Swept { holder, at } => return Ok(Claim::SweptBy { holder, at }),
                Decision::Held { holder, until } => return Ok(Claim::HeldBy { holder, until }),
                Decision::Create => Cond::Absent,
                Decision::TakeOver => match &read.etag {
                    Some(etag) => {
                        if_match = self.if_match(etag);
                        Cond::Match(&if_match)
                    }
                    None => {
                        return Err(StoreError::protocol(
                            Operation::Lease,
                            format!(
                                "GetObject of {key} answered no ETag: the lease cannot be taken over conditionally"
                            ),
                        ));
                    }
                },
            };
            let written = Instant::now();
            let record = Record {
                holder: self.inner.holder.clone(),
                token: self.inner.token.clone(),
                period,
                expires: read.clock.at(written) + delta(self.inner.ttl),
                swept_at: None,
            };
            match self.put(&key, to_body(&record), cond).await? {
                Put::Written { etag, clock } => {
                    // A store whose conditional write is not atomic (seen: moto under a loaded
                    // host let two racing `If-None-Match: *` through) may have taken another
                    // writer's too: read it back and hold it only if the record there is ours.
                    // Should another write still land after this read, our next renewal is
                    // refused and the loss stops our aborts.
                    let back = self.get(&key).await?;
                    let ours =
                        matches!(&back.current, Current::Record(r) if r.token == self.inner.token);
                    if !ours {
                        tracing::warn!(bucket = %self.inner.bucket, key = %key,
                            "The lease store accepted our conditional write and another one: the lease is not ours");
                        continue;
                    }
                    tracing::info!(bucket = %self.inner.bucket, key = %key, holder = %record.holder, until = %record.expires, "Lease taken");
                    return Ok(Claim::Held(Lease::new(
                        self.clone(),
                        key,
                        State {
                            etag,
                            record,
                            clock,
                            written,
                        },
                    )));
                }
                // Someone wrote in between (or an earlier attempt of ours landed): read again.
                Put::Refused { .. } => continue,
            }
        }
        Err(StoreError::protocol(
            Operation::Lease,
            format!("the lease {key} changed under each of {CLAIM_ROUNDS} claims in a row"),
        ))
    }

    async fn get(&self, key: &str) -> Result<Read, StoreError> {
        let date = DateOf::default();
        let sent = Instant::now();
        let result = self
            .inner
            .client
            .get_object()
            .bucket(&self.inner.bucket)
            .key(key)
            .customize()
            .interceptor(date.clone())
            .send()
            .await;
        let (current, etag) = match result {
            Ok(out) => {
                let etag = out.e_tag().map(str::to_string);
                let body = out.body.collect().await.map_err(|e| StoreError {
                    operation: Operation::Lease,
                    kind: ErrorKind::Network,
                    message: format!("reading the lease {key}: {e}"),
                })?;
                let current = serde_json::from_slice::<Record>(&body.into_bytes())
                    .map(Current::Record)
                    .unwrap_or(Current::Unreadable);
                (current, etag)
            }
            Err(e) if is_absent(&e) => (Current::Absent, None),
            Err(e) => {
                return Err(classify(
                    Operation::Lease,
                    Service::S3,
                    &self.inner.bucket,
                    e,
                ));
            }
        };
        Ok(Read {
            current,
            etag,
            clock: date.clock(sent)?,
        })
    }

    async fn put(&self, key: &str, body: Vec<u8>, cond: Cond<'_>) -> Result<Put, StoreError> {
        let date = DateOf::default();
        let mut request = self
            .inner
            .client
            .put_object()
            .bucket(&self.inner.bucket)
            .key(key)
            .content_type("application/json")
            .body(body.into());
        request = match cond {
            Cond::None => request,
            Cond::Absent => request.if_none_match("*"),
            Cond::Match(etag) => request.if_match(etag),
        };
        let sent = Instant::now();
        match request.customize().interceptor(date.clone()).send().await {
            Ok(out) => {
                let etag = out.e_tag().map(str::to_string).ok_or_else(|| {
                    StoreError::protocol(
                        Operation::Lease,
                        format!("PutObject of {key} answered no ETag: the lease cannot be renewed conditionally"),
                    )
                })?;
                Ok(Put::Written {
                    etag,
                    clock: date.clock(sent)?,
                })
            }
            Err(e) => {
                let status = e.raw_response().map(|r| r.status().as_u16());
                match (status, cond) {
                    (Some(s @ (412 | 409)), Cond::Absent | Cond::Match(_))
                    | (Some(s @ 404), Cond::Match(_))
                        if !matches!(code(&e), Some("NoSuchBucket")) =>
                    {
                        Ok(Put::Refused { status: s })
                    }
                    _ => Err(classify(
                        Operation::Lease,
                        Service::S3,
                        &self.inner.bucket,
                        e,
                    )),
                }
            }
        }
    }
}

fn code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Option<&str> {
    e.as_service_error().and_then(|s| s.code())
}

/// Whether a GetObject error says there is no such object (NoSuchKey, or a bare 404).
fn is_absent<E: ProvideErrorMetadata>(
    e: &SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> bool {
    match code(e) {
        Some("NoSuchKey") => true,
        Some("NoSuchBucket") => false,
        _ => e.raw_response().is_some_and(|r| r.status().as_u16() == 404),
    }
}

fn to_body(record: &Record) -> Vec<u8> {
    serde_json::to_vec(record).expect("a lease record serializes")
}
