//! Abort until empty, the product's reason to exist: a part upload in flight during an abort can
//! still land, so one accepted abort proves nothing. Abort, then ListParts: the upload is verified
//! once ListParts answers NoSuchUpload or no parts; while parts are still listed, abort again (with
//! backoff), up to `max_abort_attempts` calls in all, then it is unverified with the parts left.
//! NoSuchUpload on an abort is checked with ListParts like any other answer; but when no abort of
//! this process was ever accepted (the first answered NoSuchUpload: another process aborted it, or
//! its writer completed it, since the janitor listed its parts), the storage was not reclaimed by
//! this process: [`Verification::GoneBeforeAbort`], never counted as reclaimed. Every distinct
//! part seen is counted once ([`SeenParts`]): those are the bytes a verified abort reclaimed.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::store::{Aborted, Part, Parts, StoreError, UploadStore};

/// Distinct parts seen over the life of one upload, by part number and ETag.
#[derive(Debug, Default)]
pub struct SeenParts {
    seen: HashSet<(i32, String)>,
    bytes: u64,
}

impl SeenParts {
    /// Adds the parts of one listing; parts seen before are not counted again.
    pub fn add(&mut self, parts: &[Part]) {
        for p in parts {
            if self.seen.insert((p.number, p.etag.clone())) {
                self.bytes += p.size;
            }
        }
    }

    /// Distinct parts seen.
    pub fn count(&self) -> u64 {
        self.seen.len() as u64
    }

    /// Their bytes.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

/// How the abort loop ended.
#[derive(Debug)]
pub enum Verification {
    /// ListParts answered NoSuchUpload or no parts after an abort this process made.
    Verified,
    /// Gone, but not by this process: every abort answered NoSuchUpload (another process aborted
    /// it, or its writer completed it, after its parts were listed). Nothing reclaimed here.
    GoneBeforeAbort,
    /// Parts were still listed after the last allowed abort.
    Unverified {
        /// What the last ListParts still listed.
        parts_left: Vec<Part>,
    },
    /// An abort or a verifying ListParts failed (after retries); the upload may still exist.
    Failed(StoreError),
    /// The conditional abort answered that the upload under this id is not the one judged (a
    /// directory bucket's 412 to `If-Match-Initiated-Time`): nothing was aborted by that call,
    /// and the newer upload is kept.
    Replaced,
    /// The shutdown's grace ran out while a call of the loop was in flight: it was given up, and
    /// the upload's state is unknown (it is reported `interrupted`).
    Cut,
}

/// What [`abort_until_empty`] did.
#[derive(Debug)]
pub struct Verified {
    /// How it ended.
    pub verification: Verification,
    /// AbortMultipartUpload calls made.
    pub attempts: u32,
}

/// Aborts `key`/`upload_id` (the upload initiated at `initiated`, which the store may make the
/// abort conditional on) and verifies with ListParts until it is empty, at most `max_attempts`
/// aborts, waiting [`backoff`]`(base, n)` before abort number `n` >= 2. Parts listed on the way
/// are added to `seen`.
#[allow(clippy::too_many_arguments)]
pub async fn abort_until_empty<S: UploadStore>(
    store: &S,
    key: &str,
    upload_id: &str,
    initiated: Option<DateTime<Utc>>,
    seen: &mut SeenParts,
    max_attempts: u32,
    base: Duration,
    hard_stop: &CancellationToken,
) -> Verified {
    let bucket = store.bucket();
    let mut parts_left = Vec::new();
    // Whether an abort of this process was ever accepted: only then is the upload's storage ours
    // to count.
    let mut accepted = false;
    for attempt in 1..=max_attempts {
        if attempt > 1 {
            tokio::select! {
                () = hard_stop.cancelled() => {}
                () = tokio::time::sleep(backoff(base, attempt)) => {}
            }
        }
        let done = |verification| Verified {
            verification,
            attempts: attempt,
        };
        let aborted = tokio::select! {
            biased;
            () = hard_stop.cancelled() => return done(Verification::Cut),
            a = store.abort(key, upload_id, initiated) => a,
        };
        match aborted {
            Ok(Aborted::Accepted) => {
                accepted = true;
                tracing::debug!(bucket = %bucket, key = %key, upload_id = %upload_id, attempt, "Aborted upload")
            }
            Ok(Aborted::NoSuchUpload) => {
                tracing::debug!(bucket = %bucket, key = %key, upload_id = %upload_id, attempt, "Abort answered NoSuchUpload; verifying")
            }
            Ok(Aborted::InitiatedTimeChanged) => {
                tracing::warn!(bucket = %bucket, key = %key, upload_id = %upload_id, attempt, "The upload under this id was initiated at another time than the one judged (replaced): kept");
                return done(Verification::Replaced);
            }
            Err(e) => {
                tracing::warn!(bucket = %bucket, key = %key, upload_id = %upload_id, attempt, error = %e, "Abort failed");
                return done(Verification::Failed(e));
            }
        }
        let gone = if accepted {
            Verification::Verified
        } else {
            Verification::GoneBeforeAbort
        };
        let listed = tokio::select! {
            biased;
            () = hard_stop.cancelled() => return done(Verification::Cut),
            l = store.list_parts(key, upload_id) => l,
        };
        match listed {
            Ok(Parts::Gone) => return done(gone),
            Ok(Parts::Listed(p)) if p.is_empty() => return done(gone),
            Ok(Parts::Listed(p)) => {
                tracing::debug!(bucket = %bucket, key = %key, upload_id = %upload_id, attempt, parts = p.len(), "Parts still listed after abort");
                seen.add(&p);
                parts_left = p;
            }
            Err(e) => {
                tracing::warn!(bucket = %bucket, key = %key, upload_id = %upload_id, attempt, error = %e, "Verifying abort failed");
                return done(Verification::Failed(e));
            }
        }
    }
    tracing::warn!(bucket = %bucket, key = %key, upload_id = %upload_id, attempts = max_attempts,
        parts_remaining = parts_left.len(), bytes_remaining = parts_left.iter().map(|p| p.size).sum::<u64>(),
        "Upload still holds parts after every abort: unverified");
    Verified {
        verification: Verification::Unverified { parts_left },
        attempts: max_attempts,
    }
}

/// Delay before abort number `attempt` (>= 2): base * 2^(attempt-2), capped at 5 s, times a random
/// factor in [0.5, 1) so that many re-aborts do not hit the store in lockstep.
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    let exp = base.saturating_mul(1 << (attempt.saturating_sub(2)).min(16));
    let capped = exp.min(Duration::from_secs(5));
    capped.mul_f64(rand::random_range(0.5..1.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ErrorKind, Marker, Operation, UploadPage};
    use parking_lot::Mutex;
    use std::collections::VecDeque;

    /// One upload in memory. While late parts are left, an accepted abort removes what was listed
    /// but one late part lands right after it (as a part upload in flight during the abort would);
    /// once none are left, an abort removes the upload. Scripted answers replace the abort's or the
    /// verifying ListParts' own, in order.
    #[derive(Default)]
    struct Fake {
        late_parts: Mutex<u32>,
        listed: Mutex<Vec<Part>>,
        gone: Mutex<bool>,
        aborts: Mutex<u32>,
        abort_script: Mutex<VecDeque<Result<Aborted, StoreError>>>,
        list_script: Mutex<VecDeque<Result<Parts, StoreError>>>,
    }

    fn part(n: i32) -> Part {
        Part {
            number: n,
            etag: format!("\"e{n}\""),
            size: 100,
            last_modified: None,
        }
    }

    fn error(op: Operation) -> StoreError {
        StoreError {
            operation: op,
            kind: ErrorKind::Server,
            message: "InternalError".into(),
        }
    }

    impl UploadStore for Fake {
        fn bucket(&self) -> &str {
            "fake"
        }

        async fn list_uploads(
            &self,
            _: &str,
            _: Option<&Marker>,
        ) -> Result<UploadPage, StoreError> {
            unreachable!("the abort loop never lists uploads")
        }

        async fn list_parts(&self, _: &str, _: &str) -> Result<Parts, StoreError> {
            if let Some(answer) = self.list_script.lock().pop_front() {
                return answer;
            }
            if *self.gone.lock() {
                return Ok(Parts::Gone);
            }
            Ok(Parts::Listed(self.listed.lock().clone()))
        }

        async fn abort(
            &self,
            _: &str,
            _: &str,
            _: Option<DateTime<Utc>>,
        ) -> Result<Aborted, StoreError> {
            *self.aborts.lock() += 1;
            if let Some(answer) = self.abort_script.lock().pop_front() {
                return answer;
            }
            let mut late = self.late_parts.lock();
            if *late == 0 {
                *self.gone.lock() = true;
            } else {
                *self.listed.lock() = vec![part(*late as i32)];
                *late -= 1;
            }
            Ok(Aborted::Accepted)
        }
    }

    async fn run(fake: &Fake, max: u32) -> (Verified, SeenParts) {
        let mut seen = SeenParts::default();
        let never = CancellationToken::new();
        let v =
            abort_until_empty(fake, "k", "u", None, &mut seen, max, Duration::ZERO, &never).await;
        (v, seen)
    }

    #[tokio::test]
    async fn late_parts_take_exactly_one_more_abort_each() {
        // (late parts, aborts): each late part survives one abort.
        for (late, aborts) in [(0, 1), (1, 2), (2, 3), (3, 4)] {
            let fake = Fake {
                late_parts: Mutex::new(late),
                ..Fake::default()
            };
            let (v, seen) = run(&fake, 5).await;
            assert!(
                matches!(v.verification, Verification::Verified),
                "{late}: {v:?}"
            );
            assert_eq!(
                (v.attempts, *fake.aborts.lock()),
                (aborts, aborts),
                "{late} late parts"
            );
            // Each late part was listed once after an abort: all counted, once.
            assert_eq!(
                (seen.count(), seen.bytes()),
                (u64::from(late), 100 * u64::from(late))
            );
        }
    }

    #[tokio::test]
    async fn more_late_parts_than_attempts_is_unverified_with_the_parts_left() {
        let fake = Fake {
            late_parts: Mutex::new(9),
            ..Fake::default()
        };
        let (v, seen) = run(&fake, 3).await;
        let Verification::Unverified { parts_left } = v.verification else {
            panic!("{v:?}")
        };
        assert_eq!((v.attempts, *fake.aborts.lock()), (3, 3));
        assert_eq!(
            parts_left,
            vec![part(7)],
            "the third late part landed after the last abort"
        );
        assert_eq!((seen.count(), seen.bytes()), (3, 300));
    }

    #[tokio::test]
    async fn no_such_upload_on_the_first_abort_is_gone_before_abort_unless_parts_remain() {
        // Gone before this process's abort (aborted elsewhere, or completed): not ours to count.
        let fake = Fake::default();
        fake.abort_script
            .lock()
            .push_back(Ok(Aborted::NoSuchUpload));
        fake.list_script.lock().push_back(Ok(Parts::Gone));
        let (v, _) = run(&fake, 5).await;
        assert!(
            matches!(v.verification, Verification::GoneBeforeAbort),
            "{v:?}"
        );
        assert_eq!(v.attempts, 1);
        // NoSuchUpload on the abort, but ListParts still lists a part: abort again; that abort is
        // accepted, so the upload is this process's to count.
        let fake = Fake::default();
        fake.abort_script
            .lock()
            .push_back(Ok(Aborted::NoSuchUpload));
        fake.list_script
            .lock()
            .push_back(Ok(Parts::Listed(vec![part(1)])));
        let (v, seen) = run(&fake, 5).await;
        assert!(matches!(v.verification, Verification::Verified), "{v:?}");
        assert_eq!((v.attempts, seen.count()), (2, 1));
    }

    #[tokio::test]
    async fn an_error_mid_loop_fails_the_upload_and_stops() {
        // A part is still listed after the first abort, and the second abort fails: no third
        // abort, no verification claimed.
        let fake = Fake {
            listed: Mutex::new(vec![part(1)]),
            ..Fake::default()
        };
        fake.abort_script
            .lock()
            .extend([Ok(Aborted::Accepted), Err(error(Operation::Abort))]);
        let (v, _) = run(&fake, 5).await;
        assert!(
            matches!(&v.verification, Verification::Failed(e) if e.operation == Operation::Abort),
            "{v:?}"
        );
        assert_eq!((v.attempts, *fake.aborts.lock()), (2, 2));
        // The verifying ListParts fails after the first abort.
        let fake = Fake::default();
        fake.list_script
            .lock()
            .push_back(Err(error(Operation::ListParts)));
        let (v, _) = run(&fake, 5).await;
        assert!(
            matches!(&v.verification, Verification::Failed(e) if e.operation == Operation::ListParts),
            "{v:?}"
        );
        assert_eq!(*fake.aborts.lock(), 1);
    }

    #[tokio::test]
    async fn a_replaced_upload_stops_the_loop_at_once() {
        // First abort: the upload under this id was initiated at another time. No further abort,
        // no ListParts.
        let fake = Fake::default();
        fake.abort_script
            .lock()
            .push_back(Ok(Aborted::InitiatedTimeChanged));
        fake.list_script
            .lock()
            .push_back(Err(error(Operation::ListParts)));
        let (v, _) = run(&fake, 5).await;
        assert!(matches!(v.verification, Verification::Replaced), "{v:?}");
        assert_eq!((v.attempts, *fake.aborts.lock()), (1, 1));
        assert_eq!(fake.list_script.lock().len(), 1, "no ListParts was sent");
    }

    #[test]
    fn distinct_parts_are_counted_once() {
        let p = |n, e: &str, size| Part {
            number: n,
            etag: e.into(),
            size,
            last_modified: None,
        };
        let mut s = SeenParts::default();
        s.add(&[p(1, "a", 10), p(2, "b", 20)]);
        s.add(&[p(1, "a", 10), p(2, "c", 25)]); // part 2 re-uploaded with new content
        assert_eq!((s.count(), s.bytes()), (3, 55));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let base = Duration::from_millis(100);
        for attempt in 2..40 {
            let d = backoff(base, attempt);
            let full = base
                .saturating_mul(1 << (attempt - 2).min(16))
                .min(Duration::from_secs(5));
            assert!(d >= full / 2 && d < full, "attempt {attempt}: {d:?}");
        }
    }
}
