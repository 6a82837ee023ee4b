//! Unit tests of the lease: the claim decision, the record, the target id, the deadlines.

use super::*;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

fn record(holder: &str, token: &str, period: &str, expires: &str, swept: Option<&str>) -> Current {
    Current::Record(Record {
        holder: holder.into(),
        token: token.into(),
        period: t(period),
        expires: t(expires),
        swept_at: swept.map(t),
    })
}

#[test]
fn the_claim_decision_follows_the_table() {
    const P: &str = "2026-12-06T10:00:00Z"; // the period claimed
    const EARLIER: &str = "2026-12-06T09:00:00Z";
    const LATER: &str = "2026-12-06T11:00:00Z";
    const NOW: &str = "2026-12-06T10:05:00Z"; // the store's Date of the read
    let take = Decision::TakeOver;
    let held = |h: &str, until: &str| Decision::Held {
        holder: h.into(),
        until: t(until),
    };
    let swept = |h: &str, at: &str| Decision::Swept {
        holder: h.into(),
        at: t(at),
    };
    // (scenario, what the read found, expected decision of process "me")
    let table = [
        ("no lease yet", Current::Absent, Decision::Create),
        ("garbage in the object", Current::Unreadable, take.clone()),
        (
            "another holder, not expired",
            record("b", "tb", P, "2026-12-06T10:05:30Z", None),
            held("b", "2026-12-06T10:05:30Z"),
        ),
        (
            "another holder, expiring this very second: expired",
            record("b", "tb", P, NOW, None),
            take.clone(),
        ),
        (
            "another holder, expired",
            record("b", "tb", P, "2026-12-06T10:04:00Z", None),
            take.clone(),
        ),
        (
            "another holder swept this period",
            record(
                "b",
                "tb",
                P,
                "2026-12-06T10:03:00Z",
                Some("2026-12-06T10:03:00Z"),
            ),
            swept("b", "2026-12-06T10:03:00Z"),
        ),
        (
            "another holder swept a later period",
            record(
                "b",
                "tb",
                LATER,
                "2026-12-06T11:01:00Z",
                Some("2026-12-06T11:01:00Z"),
            ),
            swept("b", "2026-12-06T11:01:00Z"),
        ),
        (
            "another holder swept an earlier period and released it",
            record(
                "b",
                "tb",
                EARLIER,
                "2026-12-06T10:10:00Z",
                Some("2026-12-06T09:01:00Z"),
            ),
            take.clone(),
        ),
        (
            "another holder released without sweeping (expires = then)",
            record("b", "tb", P, "2026-12-06T10:02:00Z", None),
            take.clone(),
        ),
        (
            "another holder still sweeping a later period",
            record("b", "tb", LATER, "2026-12-06T10:06:00Z", None),
            held("b", "2026-12-06T10:06:00Z"),
        ),
        (
            "another holder, an earlier period, not expired (a long sweep)",
            record("b", "tb", EARLIER, "2026-12-06T10:06:00Z", None),
            held("b", "2026-12-06T10:06:00Z"),
        ),
        (
            "ours, not expired (a restart of the claim)",
            record("me", "tme", P, "2026-12-06T10:06:00Z", None),
            take.clone(),
        ),
        (
            "ours, swept this period",
            record(
                "me",
                "tme",
                P,
                "2026-12-06T10:03:00Z",
                Some("2026-12-06T10:03:00Z"),
            ),
            swept("me", "2026-12-06T10:03:00Z"),
        ),
        (
            "same holder name, another process: not ours",
            record("me", "tother", P, "2026-12-06T10:06:00Z", None),
            held("me", "2026-12-06T10:06:00Z"),
        ),
    ];
    for (scenario, current, want) in table {
        assert_eq!(decide(&current, "tme", t(P), t(NOW)), want, "{scenario}");
    }
}

#[test]
fn a_record_round_trips_as_rfc3339_json_and_ignores_unknown_fields() {
    let r = Record {
        holder: "pod-a:7".into(),
        token: "00ff".into(),
        period: t("2026-12-06T10:00:00Z"),
        expires: t("2026-12-06T10:01:00.250Z"),
        swept_at: None,
    };
    let text = String::from_utf8(to_body(&r)).unwrap();
    assert!(
        text.contains("\"period\":\"2026-12-06T10:00:00Z\"")
            && text.contains("\"expires\":\"2026-12-06T10:01:00.250Z\"")
            && !text.contains("swept_at"),
        "{text}"
    );
    let mut newer: serde_json::Value = serde_json::from_str(&text).unwrap();
    newer["shard"] = 3.into();
    assert_eq!(serde_json::from_value::<Record>(newer).unwrap(), r);
}

#[test]
fn target_ids_are_stable_safe_and_tell_stores_apart() {
    let id = target_id("", "uploads", "tmp/");
    assert_eq!(id, target_id("", "uploads", "tmp/"), "stable");
    assert!(id.starts_with("uploads-tmp-"), "{id}");
    assert_eq!(id.len(), "uploads-tmp-".len() + 16);
    for other in [
        target_id("https://s3.example", "uploads", "tmp/"),
        target_id("", "uploads", "tmp"),
        target_id("", "uploads", ""),
        target_id("", "uploadstmp/", ""),
    ] {
        assert_ne!(id, other);
    }
    let odd = target_id("", "vault:-/Photos Été", &"x/".repeat(100));
    assert!(
        odd.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
        "{odd}"
    );
    assert!(odd.len() <= 48 + 17, "{odd}");
}

#[test]
fn the_holder_stops_trusting_its_lease_before_anyone_can_find_it_expired() {
    let now = Instant::now();
    // 60 s: renewed every 20 s, trusted for 53 s (1 s of Date rounding, 6 s of margin).
    assert_eq!(
        safe_until(now, Duration::from_secs(60)),
        now + Duration::from_secs(53)
    );
    assert_eq!(
        safe_until(now, Duration::from_secs(5)),
        now + Duration::from_millis(3_500)
    );
    assert_eq!(
        safe_until(now, Duration::from_millis(500)),
        now,
        "too short: never trusted"
    );
    // The store's time at a later moment adds the elapsed time to the answer's Date.
    let clock = StoreClock {
        date: t("2026-12-06T10:00:00Z"),
        sent: now,
    };
    assert_eq!(
        clock.at(now + Duration::from_millis(1_500)),
        t("2026-12-06T10:00:01.500Z")
    );
}
