//! The abort-or-keep decision, whole and pure: no I/O, no clock, no randomness. Given an upload (and,
//! once its parts are listed, its newest part), the time now, the target's rules and the run's state
//! (dry run, shutdown, the per-run cap), say whether to abort it or why to keep it. Everything here
//! errs towards keeping: an upload is only ever aborted for a positive reason.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// No store of multipart uploads existed before 2006 (S3 opened in March 2006): an earlier
/// initiation time comes from a wrong clock, most often an unset one (the Unix epoch).
pub const EARLIEST_PLAUSIBLE: DateTime<Utc> = DateTime::from_timestamp(1_136_073_600, 0).unwrap();

/// The rules of one target that the decision depends on.
#[derive(Clone, Copy, Debug)]
pub struct Rules<'a> {
    /// The target's key prefix: an upload outside it is never touched, whatever the server listed.
    pub prefix: &'a str,
    /// Key prefixes never touched.
    pub exclude_prefixes: &'a [String],
    /// An upload initiated longer ago than this is stale.
    pub older_than: Duration,
    /// When > 0, a stale upload whose newest part is younger than this is kept.
    pub idle_for: Duration,
    /// Report what would be aborted, abort nothing.
    pub dry_run: bool,
    /// Most aborts started per sweep; 0 = no cap.
    pub max_aborts_per_run: u64,
    /// No upload of the bucket can have begun before this: its creation time, as the store's
    /// bucket listing gives it, less the allowed clock skew. `None` when it is not known.
    pub not_before: Option<DateTime<Utc>>,
}

/// The state of the sweep the second look depends on.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunState {
    /// A shutdown began: no new abort starts.
    pub shutting_down: bool,
    /// Aborts already started in this sweep of the target, this one excluded.
    pub aborts_started: u64,
}

/// Why an upload is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeepReason {
    /// The key is under one of `exclude_prefixes`.
    Excluded,
    /// The key is outside the target's `prefix` (the server ignored the prefix filter).
    OutsidePrefix,
    /// Initiated less than `older_than` ago.
    Fresh,
    /// A part arrived less than `idle_for` ago.
    RecentPart,
    /// The server gave no initiation time, or one that cannot be read.
    UnknownInitiated,
    /// The initiation time is in the future: a clock is wrong, so no age can be trusted.
    FutureInitiated,
    /// The initiation time is before [`EARLIEST_PLAUSIBLE`], when no S3 store existed (1970-01-01
    /// from a server with an unset clock): no age can be trusted.
    #[serde(rename = "initiated_before_2006")]
    AncientInitiated,
    /// The initiation time is before the bucket was created (by more than the allowed skew): the
    /// store's `Initiated` cannot be true (moto answers a fixed 2010 date for every upload), so no
    /// age can be trusted.
    InitiatedBeforeBucket,
    /// The listing entry could not be read (a field missing, not a date, or holding characters
    /// XML cannot carry): nothing it says is acted on.
    UnreadableEntry,
    /// Stale, but this is a dry run (or `plan`).
    DryRun,
    /// Stale, but `max_aborts_per_run` aborts were already started in this sweep.
    Capped,
    /// Stale, but a shutdown began before its abort started.
    ShuttingDown,
    /// The conditional abort found another upload under this id, initiated at another time
    /// than the one judged (a directory bucket's 412 to `If-Match-Initiated-Time`): that one was
    /// not judged, so it is kept.
    InitiatedTimeChanged,
}

/// The outcome of the decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Stale: abort it (subject to `idle_for`, checked once its parts are known).
    Abort,
    /// Leave it alone.
    Keep(KeepReason),
}

/// Whose clock the ages of a target are measured on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClockSource {
    /// This host's: it agrees with the store's within `max_clock_skew` (or the store sent no date
    /// and `trust_host_clock` is set).
    Host,
    /// The store's, from its `Date` header: this host's clock is off by more than `max_clock_skew`.
    Server,
}

/// The "now" that a target's ages are measured against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    /// The time.
    pub now: DateTime<Utc>,
    /// Whose clock it is.
    pub source: ClockSource,
    /// Store's clock minus this host's, in whole seconds, when the store sent a date.
    pub skew_seconds: Option<i64>,
}

/// Chooses the clock of a sweep from this host's time and the store's `Date` at the same moment:
/// the host's while the two agree within `max_skew`, else the store's (it stamped the initiation
/// times, as a lifecycle rule would age them). Without a store date, the host's only when
/// `trust_host_clock`; otherwise an error saying why nothing can be aged.
pub fn choose_now(
    host: DateTime<Utc>,
    server: Option<DateTime<Utc>>,
    max_skew: Duration,
    trust_host_clock: bool,
) -> Result<Now, String> {
    let Some(server) = server else {
        return if trust_host_clock {
            Ok(Now {
                now: host,
                source: ClockSource::Host,
                skew_seconds: None,
            })
        } else {
            Err("the store sent no usable Date header, so this host's clock cannot be checked against the store's: nothing was aborted (set trust_host_clock = true to age uploads on this host's clock)".into())
        };
    };
    let skew = server - host;
    let within = skew.abs().to_std().is_ok_and(|s| s <= max_skew);
    Ok(Now {
        now: if within { host } else { server },
        source: if within {
            ClockSource::Host
        } else {
            ClockSource::Server
        },
        skew_seconds: Some(skew.num_seconds()),
    })
}

/// First look, from the listing alone: prefix, exclusions, initiation time.
pub fn screen(
    key: &str,
    initiated: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    rules: &Rules,
) -> Decision {
    if !key.starts_with(rules.prefix) {
        return Decision::Keep(KeepReason::OutsidePrefix);
    }
    if rules
        .exclude_prefixes
        .iter()
        .any(|p| key.starts_with(p.as_str()))
    {
        return Decision::Keep(KeepReason::Excluded);
    }
    let Some(initiated) = initiated else {
        return Decision::Keep(KeepReason::UnknownInitiated);
    };
    if initiated > now {
        return Decision::Keep(KeepReason::FutureInitiated);
    }
    if initiated < EARLIEST_PLAUSIBLE {
        return Decision::Keep(KeepReason::AncientInitiated);
    }
    if rules.not_before.is_some_and(|t| initiated < t) {
        return Decision::Keep(KeepReason::InitiatedBeforeBucket);
    }
    if !older_than(initiated, now, rules.older_than) {
        return Decision::Keep(KeepReason::Fresh);
    }
    Decision::Abort
}

/// Second look, once the parts are listed and just before the abort: `idle_for`, then the run's
/// gates (dry run, shutdown, the cap). `newest_part` is `None` when the upload has no parts.
pub fn second_look(
    newest_part: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    rules: &Rules,
    run: RunState,
) -> Decision {
    if let Decision::Keep(reason) = check_idle(newest_part, now, rules) {
        return Decision::Keep(reason);
    }
    if rules.dry_run {
        return Decision::Keep(KeepReason::DryRun);
    }
    if run.shutting_down {
        return Decision::Keep(KeepReason::ShuttingDown);
    }
    if rules.max_aborts_per_run > 0 && run.aborts_started >= rules.max_aborts_per_run {
        return Decision::Keep(KeepReason::Capped);
    }
    Decision::Abort
}

/// `idle_for` against the newest part's LastModified (`None`: no parts, nothing is being written).
fn check_idle(newest_part: Option<DateTime<Utc>>, now: DateTime<Utc>, rules: &Rules) -> Decision {
    if rules.idle_for.is_zero() {
        return Decision::Abort;
    }
    match newest_part {
        None => Decision::Abort,
        // A part stamped in the future is as recent as it gets.
        Some(t) if t > now => Decision::Keep(KeepReason::RecentPart),
        Some(t) if !older_than(t, now, rules.idle_for) => Decision::Keep(KeepReason::RecentPart),
        Some(_) => Decision::Abort,
    }
}

/// Age in whole seconds, 0 for times in the future.
pub fn age_seconds(t: DateTime<Utc>, now: DateTime<Utc>) -> u64 {
    (now - t).num_seconds().max(0) as u64
}

/// True when `t` lies strictly more than `limit` before `now`.
fn older_than(t: DateTime<Utc>, now: DateTime<Utc>, limit: Duration) -> bool {
    match (now - t).to_std() {
        Ok(age) => age > limit,
        Err(_) => false, // negative age: in the future
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const DAY: u64 = 86_400;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 21, 10, 0, 0).unwrap()
    }

    fn ago(secs: i64) -> Option<DateTime<Utc>> {
        Some(now() - chrono::Duration::seconds(secs))
    }

    #[test]
    fn screen_table() {
        let excl = vec!["keep/".to_string(), "logs/live".to_string()];
        let rules = Rules {
            prefix: "",
            exclude_prefixes: &excl,
            older_than: Duration::from_secs(7 * DAY),
            idle_for: Duration::ZERO,
            dry_run: false,
            max_aborts_per_run: 0,
            not_before: None,
        };
        use Decision::*;
        use KeepReason::*;
        let table: &[(&str, Option<DateTime<Utc>>, Decision)] = &[
            ("a", ago(8 * DAY as i64), Abort),
            ("a", ago(7 * DAY as i64 + 1), Abort),
            ("a", ago(7 * DAY as i64), Keep(Fresh)), // exactly the threshold is not "longer ago"
            ("a", ago(60), Keep(Fresh)),
            ("a", ago(0), Keep(Fresh)),
            ("a", ago(-5), Keep(FutureInitiated)),
            ("a", None, Keep(UnknownInitiated)),
            ("a", DateTime::from_timestamp(0, 0), Keep(AncientInitiated)), // an unset clock
            (
                "a",
                Some(EARLIEST_PLAUSIBLE - chrono::TimeDelta::seconds(1)),
                Keep(AncientInitiated),
            ),
            ("a", Some(EARLIEST_PLAUSIBLE), Abort),
            ("keep/x", ago(30 * DAY as i64), Keep(Excluded)),
            ("keep", ago(30 * DAY as i64), Abort),
            ("logs/live-2026", ago(30 * DAY as i64), Keep(Excluded)),
            ("logs/old", ago(30 * DAY as i64), Abort),
            ("ünï cødé/ key+%", ago(30 * DAY as i64), Abort),
        ];
        for (key, initiated, want) in table {
            assert_eq!(
                screen(key, *initiated, now(), &rules),
                *want,
                "{key} {initiated:?}"
            );
        }
    }

    #[test]
    fn an_upload_older_than_its_bucket_is_kept() {
        // The bucket was created 3 days ago (less the skew): a store that answers an older
        // initiation time (moto's fixed 2010-11-10) is not believed; a later one is aged.
        let rules = Rules {
            prefix: "",
            exclude_prefixes: &[],
            older_than: Duration::from_secs(DAY),
            idle_for: Duration::ZERO,
            dry_run: false,
            max_aborts_per_run: 0,
            not_before: ago(3 * DAY as i64),
        };
        let moto = DateTime::parse_from_rfc3339("2010-11-10T20:48:33Z").map(|t| t.to_utc());
        use Decision::*;
        use KeepReason::*;
        for (initiated, want) in [
            (moto.ok(), Keep(InitiatedBeforeBucket)),
            (ago(3 * DAY as i64 + 1), Keep(InitiatedBeforeBucket)),
            (ago(3 * DAY as i64), Abort),
            (ago(2 * DAY as i64), Abort),
            (ago(60), Keep(Fresh)),
        ] {
            assert_eq!(screen("k", initiated, now(), &rules), want, "{initiated:?}");
        }
    }

    #[test]
    fn screen_never_touches_keys_outside_the_prefix() {
        let rules = Rules {
            prefix: "tmp/",
            exclude_prefixes: &[],
            older_than: Duration::from_secs(1),
            idle_for: Duration::ZERO,
            dry_run: false,
            max_aborts_per_run: 0,
            not_before: None,
        };
        let old = ago(100 * DAY as i64);
        assert_eq!(screen("tmp/a", old, now(), &rules), Decision::Abort);
        assert_eq!(
            screen("tmpx", old, now(), &rules),
            Decision::Keep(KeepReason::OutsidePrefix)
        );
        assert_eq!(
            screen("other/a", old, now(), &rules),
            Decision::Keep(KeepReason::OutsidePrefix)
        );
    }

    #[test]
    fn idle_table() {
        let on = Rules {
            prefix: "",
            exclude_prefixes: &[],
            older_than: Duration::from_secs(DAY),
            idle_for: Duration::from_secs(3600),
            dry_run: false,
            max_aborts_per_run: 0,
            not_before: None,
        };
        let off = Rules {
            idle_for: Duration::ZERO,
            ..on
        };
        use Decision::*;
        let table: &[(&Rules, Option<DateTime<Utc>>, Decision)] = &[
            (&on, None, Abort),
            (&on, ago(7200), Abort),
            (&on, ago(3601), Abort),
            (&on, ago(3600), Keep(KeepReason::RecentPart)),
            (&on, ago(10), Keep(KeepReason::RecentPart)),
            (&on, ago(-10), Keep(KeepReason::RecentPart)),
            (&off, ago(10), Abort),
            (&off, None, Abort),
        ];
        for (rules, newest, want) in table {
            assert_eq!(check_idle(*newest, now(), rules), *want, "{newest:?}");
        }
    }

    #[test]
    fn second_look_gates_in_order_idle_dry_run_shutdown_cap() {
        let rules = Rules {
            prefix: "",
            exclude_prefixes: &[],
            older_than: Duration::from_secs(DAY),
            idle_for: Duration::from_secs(3600),
            dry_run: false,
            max_aborts_per_run: 2,
            not_before: None,
        };
        let dry = Rules {
            dry_run: true,
            ..rules
        };
        let run = |shutting_down, aborts_started| RunState {
            shutting_down,
            aborts_started,
        };
        use Decision::*;
        use KeepReason::*;
        let table: &[(&Rules, Option<DateTime<Utc>>, RunState, Decision)] = &[
            (&rules, ago(7200), run(false, 0), Abort),
            (&rules, ago(7200), run(false, 1), Abort),
            (&rules, ago(7200), run(false, 2), Keep(Capped)),
            (&rules, ago(7200), run(true, 0), Keep(ShuttingDown)),
            (&rules, ago(10), run(true, 9), Keep(RecentPart)), // idle wins over every gate
            (&dry, ago(7200), run(true, 9), Keep(DryRun)),     // a dry run ignores the cap
            (&dry, ago(10), run(false, 0), Keep(RecentPart)),
        ];
        for (rules, newest, state, want) in table {
            assert_eq!(
                second_look(*newest, now(), rules, *state),
                *want,
                "{newest:?} {state:?}"
            );
        }
        let no_cap = Rules {
            max_aborts_per_run: 0,
            ..rules
        };
        assert_eq!(
            second_look(None, now(), &no_cap, run(false, u64::MAX)),
            Abort
        );
    }

    #[test]
    fn the_store_clock_wins_beyond_the_skew_bound_and_no_date_ages_nothing_unless_trusted() {
        let five_min = Duration::from_secs(300);
        let host = now();
        let at = |secs: i64| Some(host + chrono::Duration::seconds(secs));
        use ClockSource::*;
        // (store's date relative to the host, expected source and skew)
        let table = [
            (0, Host, 0),
            (299, Host, 299),
            (-300, Host, -300),
            (301, Server, 301),
            (-8 * DAY as i64, Server, -8 * DAY as i64),
            (8 * DAY as i64, Server, 8 * DAY as i64),
        ];
        for (offset, source, skew) in table {
            let n = choose_now(host, at(offset), five_min, false).unwrap();
            assert_eq!((n.source, n.skew_seconds), (source, Some(skew)), "{offset}");
            let want = if source == Host {
                host
            } else {
                at(offset).unwrap()
            };
            assert_eq!(n.now, want, "{offset}");
        }
        assert!(
            choose_now(host, None, five_min, false)
                .unwrap_err()
                .contains("trust_host_clock")
        );
        let trusted = choose_now(host, None, five_min, true).unwrap();
        assert_eq!(
            (trusted.now, trusted.source, trusted.skew_seconds),
            (host, Host, None)
        );
    }

    #[test]
    fn age_is_never_negative() {
        assert_eq!(age_seconds(ago(-100).unwrap(), now()), 0);
        assert_eq!(age_seconds(ago(100).unwrap(), now()), 100);
    }

    /// Property: over a dense grid of ages and thresholds, an upload younger than `older_than` is
    /// never chosen, whatever the other rules say.
    #[test]
    fn a_fresh_upload_is_never_chosen() {
        let thresholds = [1u64, 59, 3600, DAY, 7 * DAY, 400 * DAY];
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            // xorshift: deterministic pseudo-random ages, including negative ones
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let older = thresholds[(state % thresholds.len() as u64) as usize];
            let idle = thresholds[((state >> 8) % thresholds.len() as u64) as usize];
            let age = (state >> 16) as i64 % (500 * DAY as i64) - DAY as i64;
            let part_age = (state >> 24) as i64 % (500 * DAY as i64) - DAY as i64;
            let rules = Rules {
                prefix: "",
                exclude_prefixes: &[],
                older_than: Duration::from_secs(older),
                idle_for: Duration::from_secs(idle),
                dry_run: false,
                max_aborts_per_run: 0,
                not_before: None,
            };
            let first = screen("k", ago(age), now(), &rules);
            let second = second_look(ago(part_age), now(), &rules, RunState::default());
            if first == Decision::Abort {
                assert!(age > older as i64, "age {age} older_than {older}");
            }
            if second == Decision::Abort {
                assert!(
                    part_age > idle as i64,
                    "part age {part_age} idle_for {idle}"
                );
            }
        }
    }
}
