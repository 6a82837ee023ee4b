//! The lease among replicas (`mpu_janitor::run::lease`) against real S3 servers, never a mock: moto's
//! server mode, which enforces conditional writes (take, skip, take over on the store's clock,
//! renewal, loss, finish, a race), Garage 2.5.0, which ignores them (the probe turns coordination
//! off), and Ceph RGW (what it answers, measured). Two `Leases` in one test stand for two
//! replicas: each has its own token, as two processes would.

use std::time::Duration;

use aws_sdk_s3::Client;
use chrono::{DateTime, Utc};
use mpu_janitor::run::lease::{Claim, Current, Finished, Leases, Standing, Support, target_id};
use tokio::time::Instant;

use crate::common::garage::garage;
use crate::common::moto_s3::MotoS3;
use crate::common::rgw::rgw;
use crate::common::server::S3Server;

const BUCKET: &str = "locks";
const PREFIX: &str = "mpu-janitor/leases/";

/// The period a test claims (any instant: the lease only compares periods).
fn period(hour: u32) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&format!("2026-12-06T{hour:02}:00:00Z"))
        .unwrap()
        .to_utc()
}

/// Two replicas' views of the leases in moto's `locks` bucket, with `ttl`.
async fn replicas(moto: &MotoS3, ttl: Duration) -> (Leases, Leases) {
    moto.bucket(BUCKET).await;
    let client = moto.client().await;
    (
        Leases::new(client.clone(), BUCKET, PREFIX, ttl, "replica-a"),
        Leases::new(client, BUCKET, PREFIX, ttl, "replica-b"),
    )
}

fn held(claim: Claim) -> mpu_janitor::run::lease::Lease {
    match claim {
        Claim::Held(lease) => lease,
        other => panic!("expected the lease, got {other:?}"),
    }
}

/// Polls `claim` every 50 ms until it holds the lease (panics after `timeout`), checking every
/// answer before that is `HeldBy` `holder`; returns the lease and how long it took.
async fn claim_when_free(
    leases: &Leases,
    id: &str,
    p: DateTime<Utc>,
    holder: &str,
    timeout: Duration,
) -> (mpu_janitor::run::lease::Lease, Duration) {
    let start = Instant::now();
    loop {
        match leases.claim(id, p).await.unwrap() {
            Claim::Held(lease) => return (lease, start.elapsed()),
            Claim::HeldBy { holder: h, .. } => assert_eq!(h, holder),
            other => panic!("expected HeldBy {holder} until it expires, got {other:?}"),
        }
        assert!(start.elapsed() < timeout, "the lease never became free");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The status each conditional PutObject gets from a store, in a fixed order of cases.
async fn conditional_answers(client: &Client, bucket: &str) -> Vec<(&'static str, u16)> {
    async fn put(
        client: &Client,
        bucket: &str,
        key: &str,
        body: &str,
        if_none_match: Option<&str>,
        if_match: Option<&str>,
    ) -> (u16, Option<String>) {
        let r = client
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(body.as_bytes().to_vec().into())
            .set_if_none_match(if_none_match.map(str::to_string))
            .set_if_match(if_match.map(str::to_string))
            .send()
            .await;
        match r {
            Ok(out) => (200, out.e_tag().map(str::to_string)),
            Err(e) => (
                e.raw_response()
                    .map(|r| r.status().as_u16())
                    .unwrap_or_else(|| panic!("no answer: {e:?}")),
                None,
            ),
        }
    }
    let (created, etag) = put(client, bucket, "cond/k", "one", None, None).await;
    assert_eq!(created, 200);
    let etag = etag.expect("PutObject answers an ETag");
    let wrong = "\"00000000000000000000000000000000\"";
    let mut out = vec![
        (
            "If-None-Match: * on an existing key",
            put(client, bucket, "cond/k", "two", Some("*"), None)
                .await
                .0,
        ),
        (
            "If-Match: wrong ETag",
            put(client, bucket, "cond/k", "three", None, Some(wrong))
                .await
                .0,
        ),
    ];
    // The object's ETag now: the refused writes above must have left it as it was.
    let now = client
        .head_object()
        .bucket(bucket)
        .key("cond/k")
        .send()
        .await
        .unwrap();
    out.push((
        "object unchanged by the refused writes (200 = yes)",
        if now.e_tag() == Some(etag.as_str()) {
            200
        } else {
            0
        },
    ));
    let right = now.e_tag().unwrap().to_string();
    out.push((
        "If-Match: its ETag",
        put(client, bucket, "cond/k", "four", None, Some(&right))
            .await
            .0,
    ));
    let now = client
        .head_object()
        .bucket(bucket)
        .key("cond/k")
        .send()
        .await
        .unwrap();
    let bare = now.e_tag().unwrap().trim_matches('"').to_string();
    out.push((
        "If-Match: its ETag without quotes",
        put(client, bucket, "cond/k", "five", None, Some(&bare))
            .await
            .0,
    ));
    out.push((
        "If-None-Match: * on an absent key",
        put(client, bucket, "cond/absent-1", "x", Some("*"), None)
            .await
            .0,
    ));
    out.push((
        "If-Match on an absent key",
        put(client, bucket, "cond/absent-2", "x", None, Some(&right))
            .await
            .0,
    ));
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn moto_refuses_both_conditions_and_the_probe_trusts_it() {
    // The measured answers, then the probe's verdict on them.
    let moto = MotoS3::start();
    let (a, _) = replicas(&moto, Duration::from_secs(60)).await;
    let answers = conditional_answers(&moto.client().await, BUCKET).await;
    eprintln!("moto 5.2.1: {answers:?}");
    let statuses: Vec<u16> = answers.iter().map(|(_, s)| *s).collect();
    assert_eq!(statuses, [412, 412, 200, 200, 200, 200, 404], "{answers:?}");
    assert_eq!(a.probe().await.unwrap(), Support::Supported);
    // The probe cleans up after itself: only the measurement's objects are left.
    let listed = moto
        .client()
        .await
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix(PREFIX)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.key_count(), Some(0), "{listed:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_second_claimer_skips_a_held_lease_and_names_its_holder() {
    let moto = MotoS3::start();
    let (a, b) = replicas(&moto, Duration::from_secs(60)).await;
    let id = target_id(&moto.url(), "uploads", "");
    let lease = held(a.claim(&id, period(10)).await.unwrap());
    assert_eq!(lease.key(), format!("{PREFIX}{id}"));
    assert_eq!(lease.holder(), "replica-a");
    match b.claim(&id, period(10)).await.unwrap() {
        Claim::HeldBy { holder, until } => {
            assert_eq!(holder, "replica-a");
            assert_eq!(until, lease.until());
        }
        other => panic!("{other:?}"),
    }
    // What `plan` would show: the record itself, RFC 3339 times, the holder.
    let (current, store_now) = b.read(&id).await.unwrap();
    let Current::Record(r) = current else {
        panic!("{current:?}")
    };
    assert_eq!(
        (r.holder.as_str(), r.period, r.swept_at),
        ("replica-a", period(10), None)
    );
    let ttl = (r.expires - store_now).num_seconds();
    assert!(
        (58..=61).contains(&ttl),
        "expires {} at {store_now}",
        r.expires
    );
    // Another target is independent.
    let other = target_id(&moto.url(), "uploads", "tmp/");
    held(b.claim(&other, period(10)).await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_lease_is_taken_over_and_the_old_holders_renewal_reports_the_loss() {
    // a takes a 2 s lease and never renews it (a holder that died, or hung).
    let moto = MotoS3::start();
    let ttl = Duration::from_secs(2);
    let (a, b) = replicas(&moto, ttl).await;
    let id = target_id("", "uploads", "");
    let old = held(a.claim(&id, period(10)).await.unwrap());
    let lost = old.lost_token();
    let (new, waited) =
        claim_when_free(&b, &id, period(10), "replica-a", Duration::from_secs(20)).await;
    // Not before the store's clock passed the expiry (its Date counts whole seconds).
    assert!(
        waited >= Duration::from_secs(1),
        "taken over after {waited:?}"
    );
    assert!(new.until() > old.until());
    // The old holder finds out at its next write, and says who took it.
    match old.renew().await.unwrap() {
        Standing::Lost { reason } => assert!(reason.contains("replica-b"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(lost.is_cancelled());
    assert!(old.lost().unwrap().contains("replica-b"));
    assert!(matches!(
        old.finish(true).await.unwrap(),
        Finished::Lost { .. }
    ));
    // Its failed finish wrote nothing: the new holder still holds the lease.
    assert!(matches!(new.renew().await.unwrap(), Standing::Held { .. }));
    assert!(new.lost().is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn expiry_is_judged_on_the_stores_clock_not_this_hosts() {
    // The store's clock is an hour behind this host's: on the host's clock, every lease written on
    // the store's would look expired an hour ago, and the second replica would take it at once.
    let moto = MotoS3::with_clock_behind(3_600);
    let (a, b) = replicas(&moto, Duration::from_secs(3)).await;
    let id = target_id("", "uploads", "");
    let lease = held(a.claim(&id, period(10)).await.unwrap());
    let behind = Utc::now() - lease.until();
    assert!(
        behind > chrono::TimeDelta::minutes(59),
        "the expiry is the store's time + ttl: {} is {behind} behind this host",
        lease.until()
    );
    assert!(matches!(
        b.claim(&id, period(10)).await.unwrap(),
        Claim::HeldBy { .. }
    ));
    // And it lapses after the ttl on the store's clock, not an hour later.
    let (_, waited) =
        claim_when_free(&b, &id, period(10), "replica-a", Duration::from_secs(20)).await;
    assert!(
        (Duration::from_secs(2)..Duration::from_secs(10)).contains(&waited),
        "{waited:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn keep_alive_holds_the_lease_past_its_ttl_and_a_finished_period_is_skipped() {
    let moto = MotoS3::start();
    let (a, b) = replicas(&moto, Duration::from_secs(2)).await;
    let id = target_id("", "uploads", "");
    let lease = held(a.claim(&id, period(10)).await.unwrap());
    let lost = lease.keep_alive();
    let first_until = lease.until();
    // Three ttls long, b keeps finding it held.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(6) {
        match b.claim(&id, period(10)).await.unwrap() {
            Claim::HeldBy { holder, .. } => assert_eq!(holder, "replica-a"),
            other => panic!("after {:?}: {other:?}", start.elapsed()),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(!lost.is_cancelled(), "{:?}", lease.lost());
    assert!(lease.until() > first_until, "renewed");
    // The sweep finished: the period is marked swept, and the other replica skips it.
    let Finished::Recorded { at } = lease.finish(true).await.unwrap() else {
        panic!("finish refused")
    };
    assert!(!lost.is_cancelled(), "finishing is not losing");
    match b.claim(&id, period(10)).await.unwrap() {
        Claim::SweptBy { holder, at: swept } => {
            assert_eq!(holder, "replica-a");
            assert_eq!(swept, at);
        }
        other => panic!("{other:?}"),
    }
    // So does a itself, and anyone for an earlier period; the next period is free at once.
    assert!(matches!(
        a.claim(&id, period(10)).await.unwrap(),
        Claim::SweptBy { .. }
    ));
    assert!(matches!(
        b.claim(&id, period(9)).await.unwrap(),
        Claim::SweptBy { .. }
    ));
    let next = held(b.claim(&id, period(11)).await.unwrap());
    assert_eq!(next.period(), period(11));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lease_released_without_a_complete_sweep_is_free_at_once() {
    // The holder's sweep failed: another replica may retry the period now, not a ttl later.
    let moto = MotoS3::start();
    let (a, b) = replicas(&moto, Duration::from_secs(60)).await;
    let id = target_id("", "uploads", "");
    let lease = held(a.claim(&id, period(10)).await.unwrap());
    assert!(matches!(
        lease.finish(false).await.unwrap(),
        Finished::Recorded { .. }
    ));
    held(b.claim(&id, period(10)).await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn keep_alive_cancels_the_token_when_another_holder_overwrites_the_lease() {
    // Another process took the lease over (it judged it expired while a was cut off): a's next
    // renewal is refused, its token is cancelled, and the reason names the new holder.
    let moto = MotoS3::start();
    let (a, _) = replicas(&moto, Duration::from_secs(3)).await;
    let id = target_id("", "uploads", "");
    let lease = held(a.claim(&id, period(10)).await.unwrap());
    let lost = lease.keep_alive();
    let taken = format!(
        r#"{{"holder":"replica-c","token":"c","period":"2026-12-06T10:00:00Z","expires":"{}"}}"#,
        (Utc::now() + chrono::TimeDelta::minutes(5)).to_rfc3339()
    );
    moto.client()
        .await
        .put_object()
        .bucket(BUCKET)
        .key(lease.key())
        .body(taken.into_bytes().into())
        .send()
        .await
        .unwrap();
    let start = Instant::now();
    tokio::time::timeout(Duration::from_secs(5), lost.cancelled())
        .await
        .expect("the loss is noticed at the next renewal");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert!(
        lease.lost().unwrap().contains("replica-c"),
        "{:?}",
        lease.lost()
    );
    assert!(matches!(
        lease.finish(true).await.unwrap(),
        Finished::Lost { .. }
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_holder_that_cannot_reach_the_store_gives_the_lease_up_before_it_can_expire() {
    // The store stops answering: no renewal lands, and the holder must stop trusting its lease
    // before another process (which may reach the store) could find it expired.
    let mut moto = MotoS3::start();
    let ttl = Duration::from_secs(4);
    let (a, _) = replicas(&moto, ttl).await;
    let id = target_id("", "uploads", "");
    let lease = held(a.claim(&id, period(10)).await.unwrap());
    let claimed = Instant::now();
    let lost = lease.keep_alive();
    moto.kill();
    tokio::time::timeout(Duration::from_secs(10), lost.cancelled())
        .await
        .expect("the lease is given up");
    let after = claimed.elapsed();
    // 4 s - 1 s of Date rounding - 0.4 s of margin = 2.6 s after the write.
    assert!(
        (Duration::from_secs(2)..ttl - Duration::from_secs(1)).contains(&after),
        "given up after {after:?}"
    );
    assert!(lease.lost().unwrap().contains("ttl"), "{:?}", lease.lost());
}

#[tokio::test(flavor = "multi_thread")]
async fn racing_claimers_elect_exactly_one_holder() {
    // Two replicas claim 20 targets at the same instant: each target gets exactly one holder, and
    // the other is told who.
    let moto = MotoS3::start();
    let (a, b) = replicas(&moto, Duration::from_secs(60)).await;
    a.probe().await.unwrap();
    b.probe().await.unwrap();
    let mut wins = [0, 0];
    for n in 0..20 {
        let id = target_id("", &format!("bucket-{n}"), "");
        let (ca, cb) = tokio::join!(a.claim(&id, period(10)), b.claim(&id, period(10)));
        match (ca.unwrap(), cb.unwrap()) {
            (Claim::Held(_), Claim::HeldBy { holder, .. }) => {
                assert_eq!(holder, "replica-a");
                wins[0] += 1;
            }
            (Claim::HeldBy { holder, .. }, Claim::Held(_)) => {
                assert_eq!(holder, "replica-b");
                wins[1] += 1;
            }
            other => panic!("target {n}: {other:?}"),
        }
    }
    eprintln!("race winners: replica-a {}, replica-b {}", wins[0], wins[1]);
}

/// Leases in a new bucket of a real server.
async fn leases_on(server: &S3Server) -> (Leases, Client) {
    let bucket = server.bucket("locks").await;
    let client = server
        .connector()
        .client(&server.settings().client())
        .await
        .unwrap();
    (
        Leases::new(
            client.clone(),
            bucket,
            PREFIX,
            Duration::from_secs(60),
            "replica-a",
        ),
        client,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn garage_ignores_conditional_writes_and_coordination_is_off_there() {
    let server = garage();
    let (leases, client) = leases_on(server).await;
    let answers = conditional_answers(&client, leases.bucket()).await;
    eprintln!("garage 2.5.0: {answers:?}");
    // Every condition answered 200, and the writes that should have been refused replaced the
    // object.
    let statuses: Vec<u16> = answers.iter().map(|(_, s)| *s).collect();
    assert_eq!(statuses, [200, 200, 0, 200, 200, 200, 200], "{answers:?}");
    let Support::Unsupported { reason } = leases.probe().await.unwrap() else {
        panic!("Garage 2.5.0 ignores conditions; the probe trusted it");
    };
    assert!(
        reason.contains("200") && reason.contains("If-None-Match: *"),
        "{reason}"
    );
    match leases.claim("uploads-0", period(10)).await.unwrap() {
        Claim::Unsupported { reason: r } => assert_eq!(r, reason),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rgw_honours_conditions_only_with_unquoted_etags_and_the_lease_elects_one_holder() {
    // Ceph RGW 16.2: If-None-Match: * is refused on an existing key, and If-Match compares the
    // header with the ETag without its quotes: its own ETag, quoted (as S3 returns it), is
    // refused; unquoted, it matches. The probe finds the form, and the lease works there.
    let server = rgw();
    let (a, client) = leases_on(server).await;
    let answers = conditional_answers(&client, a.bucket()).await;
    eprintln!("ceph rgw: {answers:?}");
    let statuses: Vec<u16> = answers.iter().map(|(_, s)| *s).collect();
    assert_eq!(statuses, [412, 412, 200, 412, 200, 200, 412], "{answers:?}");
    let ttl = Duration::from_secs(2);
    let a = Leases::new(client.clone(), a.bucket(), PREFIX, ttl, "replica-a");
    let b = Leases::new(client.clone(), a.bucket(), PREFIX, ttl, "replica-b");
    assert_eq!(a.probe().await.unwrap(), Support::Supported);
    assert_eq!(b.probe().await.unwrap(), Support::Supported);
    // Take, skip, renew, and a race over 10 targets with exactly one holder each.
    let id = target_id(&server.endpoint, "uploads", "");
    let lease = held(a.claim(&id, period(10)).await.unwrap());
    assert!(
        matches!(b.claim(&id, period(10)).await.unwrap(), Claim::HeldBy { holder, .. } if holder == "replica-a")
    );
    assert!(matches!(
        lease.renew().await.unwrap(),
        Standing::Held { .. }
    ));
    let renewed = Instant::now();
    for n in 0..10 {
        let id = target_id(&server.endpoint, &format!("bucket-{n}"), "");
        let (ca, cb) = tokio::join!(a.claim(&id, period(10)), b.claim(&id, period(10)));
        let held = [&ca, &cb]
            .iter()
            .filter(|c| matches!(c, Ok(Claim::Held(_))))
            .count();
        assert_eq!(held, 1, "target {n}: {ca:?} {cb:?}");
    }
    // Never renewed again, it lapses on RGW's clock; b takes it over, and a learns it lost.
    let (new, _) = claim_when_free(&b, &id, period(10), "replica-a", Duration::from_secs(20)).await;
    // Counted from the renewal, not from the first try: the race above may take a while on a
    // loaded host, and the lease must not have been taken while it was valid.
    let waited = renewed.elapsed();
    assert!(waited >= Duration::from_millis(500), "{waited:?}");
    assert!(
        matches!(lease.renew().await.unwrap(), Standing::Lost { reason } if reason.contains("replica-b"))
    );
    // b finishes the period: a skips it.
    assert!(matches!(
        new.finish(true).await.unwrap(),
        Finished::Recorded { .. }
    ));
    assert!(
        matches!(a.claim(&id, period(10)).await.unwrap(), Claim::SweptBy { holder, .. } if holder == "replica-b")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_lease_bucket_is_an_error_and_the_next_probe_tries_again() {
    // A wrong lease bucket is a configuration error to report, not a verdict on the store; once
    // the bucket exists, the probe runs again (errors are not cached).
    let moto = MotoS3::start();
    let leases = Leases::new(
        moto.client().await,
        BUCKET,
        PREFIX,
        Duration::from_secs(60),
        "replica-a",
    );
    let e = leases.probe().await.unwrap_err();
    assert_eq!(e.kind, mpu_janitor::store::ErrorKind::NoSuchBucket, "{e}");
    assert!(e.to_string().contains("lease"), "{e}");
    assert!(leases.claim("uploads-0", period(10)).await.is_err());
    moto.bucket(BUCKET).await;
    assert_eq!(leases.probe().await.unwrap(), Support::Supported);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_object_that_is_not_a_lease_is_taken_over() {
    // Something else wrote at the lease's key: nothing can hold it, so a claim replaces it
    // (conditionally: If-Match its ETag).
    let moto = MotoS3::start();
    let (a, _) = replicas(&moto, Duration::from_secs(60)).await;
    let id = target_id("", "uploads", "");
    moto.client()
        .await
        .put_object()
        .bucket(BUCKET)
        .key(a.key(&id))
        .body(b"not json".to_vec().into())
        .send()
        .await
        .unwrap();
    assert_eq!(a.read(&id).await.unwrap().0, Current::Unreadable);
    let lease = held(a.claim(&id, period(10)).await.unwrap());
    assert!(matches!(
        lease.renew().await.unwrap(),
        Standing::Held { .. }
    ));
}
