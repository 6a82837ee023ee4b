//! Unit tests of the configuration: layers, inheritance, validation messages, redaction.

use super::profile;
use super::validate;
use super::*;

fn load(toml_text: &str) -> Result<Config, ConfigError> {
    let fig = Figment::new()
        .merge(Serialized::defaults(FileConfig::default()))
        .merge(Toml::string(toml_text));
    Config::from_figment(fig, &CliOverrides::default(), vec![])
}

fn err(toml_text: &str) -> String {
    load(toml_text).unwrap_err().to_string()
}

#[test]
fn targets_inherit_defaults_and_override_them() {
    let c = load(
        r#"
        [defaults]
        older_than = "3d"
        concurrency = 8
        [[targets]]
        bucket = "a"
        [[targets]]
        bucket = "b"
        older_than = "36h"
        prefix = "tmp/"
        "#,
    )
    .unwrap();
    let cases = [("a", 3 * 86_400, 8, ""), ("b", 36 * 3_600, 8, "tmp/")];
    for (t, (bucket, older, conc, prefix)) in c.targets.iter().zip(cases) {
        assert_eq!(t.bucket, bucket);
        assert_eq!(t.settings.older_than.0.as_secs(), older);
        assert_eq!(t.settings.concurrency, conc);
        assert_eq!(t.prefix, prefix);
        assert_eq!(t.settings.max_abort_attempts, 5, "built-in default kept");
    }
}

#[test]
fn bad_inputs_name_the_key_and_the_value() {
    let table = [
        (
            "[defaults]\nolder_then = \"3d\"\n[[targets]]\nbucket=\"a\"",
            "older_then",
        ),
        (
            "[defaults]\nolder_than = \"3 parsecs\"\n[[targets]]\nbucket=\"a\"",
            "3 parsecs",
        ),
        (
            "[defaults]\nolder_than = \"3 parsecs\"\n[[targets]]\nbucket=\"a\"",
            "defaults.older_than",
        ),
        (
            "[[targets]]\nbucket=\"a\"\nschedule=\"every day\"",
            "targets[0].schedule",
        ),
        (
            "[[targets]]\nbucket=\"a\"\nschedule=\"0 * * * *\"",
            "6-field",
        ),
        (
            "[[targets]]\nprefix=\"x\"",
            "targets[0].bucket: missing bucket name",
        ),
        (
            "[[targets]]\nbucket=\"a\"\ntimezone=\"Mars/Olympus\"",
            "Mars/Olympus",
        ),
        ("[[targets]]\nbucket=\"a\"\nbukket=\"b\"", "bukket"),
        (
            "[metrics]\nlisten=\"nowhere\"\n[[targets]]\nbucket=\"a\"",
            "metrics.listen",
        ),
        (
            "[[targets]]\nbucket=\"a\"\nmax_abort_attempts=0",
            "max_abort_attempts",
        ),
        ("[[targets]]\nbucket=\"a\"\nconcurrency=1025", "concurrency"),
        (
            "[[targets]]\nbucket=\"a\"\nmax_concurrency=0",
            "max_concurrency",
        ),
        ("", "no [[targets]]"),
        (
            "[[targets]]\nbucket=\"a\"\nexclude_prefixes=[\"\"]",
            "exclude_prefixes",
        ),
    ];
    for (input, needle) in table {
        let e = err(input);
        assert!(
            e.contains(needle),
            "{input:?}: {e:?} should contain {needle:?}"
        );
    }
}

#[test]
fn a_short_older_than_is_valid_but_warned_about() {
    let c =
        load("[[targets]]\nbucket=\"a\"\nolder_than=\"10m\"\n[[targets]]\nbucket=\"b\"").unwrap();
    let w = c.warnings();
    assert_eq!(w.len(), 1);
    assert!(w[0].contains("\"a\"") && w[0].contains("10m"), "{w:?}");
    assert!(render_effective(&c).contains("# WARNING"));
}

#[test]
fn a_single_label_endpoint_host_without_path_style_is_warned_about() {
    // `http://localhost:9000` or a Compose service `http://minio:9000`: virtual-hosted requests go
    // to BUCKET.localhost, which rarely resolves. An IP address gets path style from the rules.
    let warned = |endpoint: &str, path_style: bool| -> Vec<String> {
        let c = load(&format!(
            "[defaults]\nendpoint_url=\"{endpoint}\"\nforce_path_style={path_style}\n[[targets]]\nbucket=\"photos\"\n"
        ))
        .unwrap();
        c.warnings()
    };
    let w = warned("http://localhost:9000", false);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("\"localhost\" with force_path_style = false")
            && w[0].contains("BUCKET.localhost")
            && w[0].contains("set force_path_style = true"),
        "{w:?}"
    );
    assert_eq!(warned("http://minio:9000", false).len(), 1);
    for (endpoint, path_style) in [
        ("http://localhost:9000", true),
        ("http://127.0.0.1:9000", false),
        ("http://[::1]:9000", false),
        ("https://s3.example.com", false),
    ] {
        assert!(
            warned(endpoint, path_style).is_empty(),
            "{endpoint} {path_style}"
        );
    }
}

#[test]
fn every_unreadable_key_is_said_in_one_run_not_only_the_first() {
    // serde stops at the first bad value; check-config says them all, each once, with its key.
    let e = load(
        "[defaults]\nolder_than = \"7x\"\nconcurrency = \"lots\"\nretry_max_attempts = 0\n[metrics]\nlisten = 5\n[[targets]]\nbucket = 7\n[[targets]]\nbucket = \"b\"\nolder_than = [1]\ncolour = \"blue\"\n[[targets]]\nbucket = \"s3://photos/raw/\"\n",
    )
    .unwrap_err();
    let keys: Vec<&str> = e
        .problems
        .iter()
        .map(|p| p.split(':').next().unwrap())
        .collect();
    for key in [
        "defaults.older_than",
        "defaults.concurrency",
        "metrics.listen",
        "targets[0].bucket",
        "targets[1].older_than",
        "targets[1].colour",
        // Values of keys that read, checked in the same run.
        "defaults.retry_max_attempts",
        "targets[2].bucket",
    ] {
        assert_eq!(
            keys.iter().filter(|k| **k == key).count(),
            1,
            "{key} once in {:?}",
            e.problems
        );
    }
    // targets[0] lost its bucket: said as unreadable, not again as missing.
    assert_eq!(e.problems.len(), 8, "{:?}", e.problems);
    // Each still names the layer its key came from, not the copy it was found in.
    assert!(
        e.problems
            .iter()
            .all(|p| p.ends_with("(from TOML source string)")),
        "{:?}",
        e.problems
    );
}

#[test]
fn valid_settings_pass() {
    let c = load(
        "[[targets]]\nbucket=\"a\"\nschedule=\"*/5 * * * * *\"\ntimezone=\"Europe/Paris\"\nidle_for=\"90s\"",
    )
    .unwrap();
    assert_eq!(c.targets[0].settings.idle_for.0.as_secs(), 90);
}

#[test]
#[allow(clippy::result_large_err)] // figment's Jail API returns its own error type
fn env_layer_overrides_file_and_ignores_non_keys() {
    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "c.toml",
            "[defaults]\nolder_than=\"7d\"\n[[targets]]\nbucket=\"a\"\n",
        )?;
        jail.set_env("MPU_JANITOR_DEFAULTS__OLDER_THAN", "3d");
        jail.set_env("MPU_JANITOR_METRICS__LISTEN", "0.0.0.0:9999");
        jail.set_env("MPU_JANITOR_CONFIG", "c.toml");
        let c = Config::load(Path::new("c.toml"), &CliOverrides::default()).unwrap();
        assert_eq!(c.targets[0].settings.older_than.0.as_secs(), 3 * 86_400);
        assert_eq!(c.metrics.listen, "0.0.0.0:9999");
        assert!(
            c.sources
                .iter()
                .any(|s| s.contains("MPU_JANITOR_DEFAULTS__OLDER_THAN"))
        );
        jail.set_env("MPU_JANITOR_DEFAULTS__OLDER_THAN", "soon");
        let e = Config::load(Path::new("c.toml"), &CliOverrides::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("soon") && e.contains("MPU_JANITOR_DEFAULTS__OLDER_THAN"),
            "{e}"
        );
        Ok(())
    });
}

#[test]
fn cli_dry_run_wins_over_every_target() {
    let fig = Figment::new().merge(Toml::string(
        "[[targets]]\nbucket=\"a\"\ndry_run=false\n[[targets]]\nbucket=\"b\"",
    ));
    let c = Config::from_figment(fig, &CliOverrides { dry_run: true }, vec![]).unwrap();
    assert!(c.targets.iter().all(|t| t.settings.dry_run));
}

#[test]
fn redaction_hides_url_passwords() {
    let table = [
        (
            "https://user:pw@push.example:9091/x",
            "https://REDACTED@push.example:9091/x",
        ),
        ("http://host:9091", "http://host:9091"),
        ("http://h/path@x", "http://h/path@x"),
        ("https://u:pa/ss@pg.example", "https://REDACTED@pg.example"),
        (
            "https://pg.example/?token=abc",
            "https://pg.example/?REDACTED",
        ),
        ("", ""),
    ];
    for (input, want) in table {
        assert_eq!(redact_url(input), want);
    }
    let c =
        load("[metrics]\npushgateway_url=\"http://u:hunter2@pg:9091\"\n[[targets]]\nbucket=\"a\"")
            .unwrap();
    let text = render_effective(&c);
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("bucket = \"a\""), "{text}");
}

#[test]
fn shards_cover_every_target_exactly_once() {
    let mut text = String::new();
    for i in 0..60 {
        text.push_str(&format!(
            "[[targets]]\nbucket=\"b{i}\"\nprefix=\"p{}/\"\n",
            i % 3
        ));
    }
    let mut seen = Vec::new();
    for index in 0..3 {
        let c = load(&format!("[sharding]\nindex={index}\ncount=3\n{text}")).unwrap();
        assert!(
            !c.targets.is_empty() && c.targets.len() < 60,
            "shard {index}"
        );
        seen.extend(c.targets.into_iter().map(|t| (t.bucket, t.prefix)));
    }
    seen.sort();
    let before = seen.len();
    seen.dedup();
    assert_eq!((before, seen.len()), (60, 60));
    // Stable: the same inputs always land in the same shard.
    assert_eq!(shard_of("uploads", "", 7), shard_of("uploads", "", 7));
    assert!(
        err("[sharding]\nindex=3\ncount=3\n[[targets]]\nbucket=\"a\"").contains("out of range")
    );
}

/// Property: whatever the document, loading returns a config or an error, never panics; and a
/// config that loads has every target with a bucket and a positive `older_than`.
#[test]
fn the_loader_never_panics_on_arbitrary_documents() {
    let keys = [
        "older_than",
        "idle_for",
        "schedule",
        "timezone",
        "max_abort_attempts",
        "concurrency",
        "dry_run",
        "region",
        "endpoint_url",
        "bucket",
        "prefix",
        "exclude_prefixes",
        "listen",
        "count",
        "index",
        "shutdown_grace",
        "bogus",
        "",
    ];
    let values = [
        "\"7d\"",
        "\"0s\"",
        "\"-1d\"",
        "\"\"",
        "0",
        "-1",
        "99999999999999999999",
        "1.5",
        "true",
        "[]",
        "[\"\"]",
        "[1,2]",
        "{}",
        "\"* * * * * *\"",
        "\"Mars/Base\"",
        "\"http://x\"",
        "\"\\u0000\"",
        "\"ünï\"",
        "nan",
        "'",
    ];
    let sections = [
        "[defaults]",
        "[metrics]",
        "[daemon]",
        "[sharding]",
        "[[targets]]",
        "[nope]",
        "",
    ];
    let mut state: u64 = 0xDEAD_BEEF_CAFE_F00D;
    let mut next = |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    for _ in 0..3_000 {
        let mut doc = String::new();
        for _ in 0..next(8) {
            doc.push_str(sections[next(sections.len())]);
            doc.push('\n');
            for _ in 0..next(5) {
                let k = keys[next(keys.len())];
                let v = values[next(values.len())];
                doc.push_str(&format!("{k} = {v}\n"));
            }
        }
        if let Ok(c) = load(&doc) {
            for t in &c.targets {
                assert!(!t.bucket.trim().is_empty(), "{doc}");
                assert!(!t.settings.older_than.0.is_zero(), "{doc}");
            }
        }
    }
}

#[test]
fn durations_round_trip() {
    for s in ["0s", "90s", "36h", "7days", "1h 30m"] {
        let d: HumanDuration = serde_json::from_str(&format!("{s:?}")).unwrap();
        let again: HumanDuration =
            serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
        assert_eq!(d, again, "{s}");
    }
}

/// A document setting `key = value` in `section` (a target is added when none is given).
fn doc(section: &str, key: &str, value: &str) -> String {
    if section == "targets" {
        format!("[[targets]]\nbucket = \"a\"\n{key} = {value}\n")
    } else {
        format!("[{section}]\n{key} = {value}\n[[targets]]\nbucket = \"a\"\n")
    }
}

/// One limit: section, key, values just outside each end, each end (as TOML), the range shown.
type Case = (&'static str, &'static str, Vec<String>, [String; 2], String);

/// Every limit of the range tables.
fn every_limit() -> Vec<Case> {
    fn ints<S>(section: &'static str, ls: &[Limit<S, u64>], out: &mut Vec<Case>) {
        for l in ls {
            let mut bad = vec![(l.max + 1).to_string()];
            if l.min > 0 {
                bad.push((l.min - 1).to_string());
            }
            let ends = [l.min.to_string(), l.max.to_string()];
            out.push((section, l.key, bad, ends, l.range()));
        }
    }
    fn durs<S>(section: &'static str, ls: &[Limit<S, std::time::Duration>], out: &mut Vec<Case>) {
        let q = |d: std::time::Duration| format!("{:?}", validate::show_duration(d));
        for l in ls {
            let mut bad = vec![q(l.max + std::time::Duration::from_secs(1))];
            if !l.min.is_zero() {
                bad.push(q(std::time::Duration::ZERO));
            }
            out.push((section, l.key, bad, [q(l.min), q(l.max)], l.range()));
        }
    }
    let mut out = Vec::new();
    ints("defaults", SETTINGS_COUNTS, &mut out);
    durs("defaults", SETTINGS_DURATIONS, &mut out);
    ints("daemon", DAEMON_COUNTS, &mut out);
    durs("daemon", DAEMON_DURATIONS, &mut out);
    ints("sharding", SHARDING_COUNTS, &mut out);
    out
}

#[test]
fn every_numeric_key_outside_its_range_is_refused_naming_the_key_the_value_and_the_range() {
    // Each limit of the tables, just past each end: refused with the key path, the value as
    // written and the range; each end itself is accepted. Settings keys also inside a target.
    let limits = every_limit();
    assert!(limits.len() >= 14, "every numeric key has a limit");
    for (section, key, bad, ends, range) in limits {
        for v in &bad {
            let e = err(&doc(section, key, v));
            let shown = v.trim_matches('"');
            assert!(
                e.contains(&format!("{section}.{key}: "))
                    && e.contains(shown)
                    && e.contains(&range),
                "{section}.{key} = {v}: {e}"
            );
            if section == "defaults" {
                let e = err(&doc("targets", key, v));
                assert!(
                    e.contains(&format!("targets[0].{key}: ")) && e.contains(&range),
                    "targets[0].{key} = {v}: {e}"
                );
            }
        }
        for v in ends {
            let text = doc(section, key, &v);
            assert!(
                load(&text).is_ok(),
                "{section}.{key} = {v}: {:?}",
                load(&text).err()
            );
        }
    }
}

#[test]
fn the_values_of_issue_13_are_refused_before_they_can_panic_or_spin() {
    // The reported values, which passed check-config and then panicked (exit 101) or spun.
    for (text, needle) in [
        (
            doc("daemon", "max_in_flight", "2305843009213693952"),
            "daemon.max_in_flight: 2305843009213693952 is out of range: accepted 1..=65536",
        ),
        (
            doc("defaults", "retry_max_attempts", "4294967294"),
            "defaults.retry_max_attempts: 4294967294 is out of range: accepted 1..=20",
        ),
        (
            doc("defaults", "older_than", "\"100000d\""),
            "defaults.older_than: \"100000d\" is out of range",
        ),
        (
            "[sharding]\ncount = 0\n[[targets]]\nbucket = \"a\"\n".to_string(),
            "sharding.count: 0 is out of range: accepted 1..=10000",
        ),
        (
            "[sharding]\ncount = 2\nindex = 2\n[[targets]]\nbucket = \"a\"\n".to_string(),
            "sharding.index: 2 is out of range for sharding.count = 2: accepted 0..=1",
        ),
        (
            doc("metrics", "listen", "\"127.0.0.1:0\""),
            "metrics.listen: \"127.0.0.1:0\": port 0 is out of range: accepted 1..=65535",
        ),
    ] {
        let e = err(&text);
        assert!(e.contains(needle), "{text:?}: {e}");
    }
}

#[test]
fn every_range_is_documented_in_the_contract_key_tables() {
    // docs/contract.md's row for each numeric key shows the range this code enforces.
    let contract =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/contract.md")).unwrap();
    let ranges = SETTINGS_COUNTS
        .iter()
        .map(|l| (l.key, l.range()))
        .chain(SETTINGS_DURATIONS.iter().map(|l| (l.key, l.range())))
        .chain(DAEMON_COUNTS.iter().map(|l| (l.key, l.range())))
        .chain(DAEMON_DURATIONS.iter().map(|l| (l.key, l.range())))
        .chain(SHARDING_COUNTS.iter().map(|l| (l.key, l.range())));
    for (key, range) in ranges {
        let row = contract
            .lines()
            .find(|l| l.starts_with(&format!("| `{key}`")))
            .unwrap_or_else(|| panic!("no row for {key} in docs/contract.md"));
        assert!(
            row.contains(&format!("`{range}`")),
            "{key}: {range} not in {row}"
        );
    }
}

#[test]
fn endpoint_urls_that_would_fail_at_run_time_are_refused_at_load() {
    // A blank inside or around the URL, a port out of range, a scheme that is not http(s).
    for (url, needle) in [
        ("http://s3 .local:9000", "whitespace"),
        (" http://s3.local:9000", "whitespace"),
        ("http://s3.local:9000\t", "whitespace"),
        ("http://s3.local:99999", "invalid port"),
        (
            "http://s3.local:0",
            "port 0 is out of range: accepted 1..=65535",
        ),
        ("ftp://s3.local", "not an http(s) URL"),
    ] {
        let e = err(&doc("defaults", "endpoint_url", &format!("{url:?}")));
        assert!(
            e.contains("defaults.endpoint_url") && e.contains(needle),
            "{url:?}: {e}"
        );
    }
    assert!(
        load(&doc(
            "defaults",
            "endpoint_url",
            "\"https://s3.local:9000\""
        ))
        .is_ok()
    );
}

#[test]
fn credentials_in_the_endpoint_url_are_refused_without_echoing_them() {
    // user:password@ in an S3 endpoint would reach debug and trace logs: refused, redacted.
    for at in ["defaults", "targets"] {
        let e = err(&doc(
            at,
            "endpoint_url",
            "\"http://ak:hunter2@s3.local:9000\"",
        ));
        assert!(
            e.contains("endpoint_url") && e.contains("credentials"),
            "{e}"
        );
        assert!(e.contains("REDACTED@s3.local:9000"), "{e}");
        assert!(!e.contains("hunter2") && !e.contains("ak:"), "{e}");
    }
    // A user name alone is refused too.
    assert!(
        err(&doc("defaults", "endpoint_url", "\"http://ak@s3.local\"")).contains("credentials")
    );
    // The Pushgateway takes Basic auth from its URL, as documented: still accepted.
    assert!(
        load(&doc(
            "metrics",
            "pushgateway_url",
            "\"http://u:pw@pg:9091\""
        ))
        .is_ok()
    );
}

#[test]
fn a_schedule_that_never_fires_within_a_year_is_refused() {
    // 30 February never comes; `run` would never sweep and /readyz would say ready.
    let e = err(&doc("defaults", "schedule", "\"0 0 0 30 2 *\""));
    assert!(
        e.contains("defaults.schedule: \"0 0 0 30 2 *\" never fires"),
        "{e}"
    );
    let e = err(&doc("targets", "schedule", "\"0 0 0 31 4 *\""));
    assert!(e.contains("targets[0].schedule"), "{e}");
    // A yearly schedule fires within the year.
    assert!(load(&doc("defaults", "schedule", "\"0 0 0 1 1 *\"")).is_ok());
}

#[test]
fn the_textfile_directory_must_exist_and_take_a_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope/mpu.prom");
    let e = err(&doc(
        "metrics",
        "textfile",
        &format!("{:?}", missing.display().to_string()),
    ));
    assert!(
        e.contains("metrics.textfile") && e.contains("does not exist"),
        "{e}"
    );
    // A directory given as the file.
    let e = err(&doc(
        "metrics",
        "textfile",
        &format!("{:?}", dir.path().display().to_string()),
    ));
    assert!(e.contains("is a directory"), "{e}");
    // A parent that is a file.
    let file = dir.path().join("f");
    std::fs::write(&file, "").unwrap();
    let e = err(&doc(
        "metrics",
        "textfile",
        &format!("{:?}", file.join("x.prom").display().to_string()),
    ));
    assert!(
        e.contains("metrics.textfile") && e.contains("not a directory"),
        "{e}"
    );
    // A writable directory passes, and the probe file is gone again.
    let ok = dir.path().join("mpu.prom");
    load(&doc(
        "metrics",
        "textfile",
        &format!("{:?}", ok.display().to_string()),
    ))
    .unwrap();
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("f")]);
}

#[test]
fn a_config_path_that_cannot_be_reached_says_why_not_that_it_does_not_exist() {
    // A path through a regular file (ENOTDIR), as a permission error would be, is not "missing".
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, "").unwrap();
    let e = Config::load(&file.join("config.toml"), &CliOverrides::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("cannot be read")
            && e.contains("Not a directory")
            && !e.contains("does not exist"),
        "{e}"
    );
    let e = Config::load(&dir.path().join("none.toml"), &CliOverrides::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("does not exist"), "{e}");
}

#[test]
fn log_levels_and_filters_are_checked_with_a_hint_for_near_misses() {
    for ok in [
        "info",
        "WARN",
        "off",
        "3",
        "warn,mpu_janitor=debug",
        "mpu_janitor::sweep=trace",
        "[sweep]=debug",
        "info,",
    ] {
        assert!(
            check_log_filter(ok).is_ok(),
            "{ok}: {:?}",
            check_log_filter(ok)
        );
    }
    for (bad, needle) in [
        ("warning", "did you mean \"warn\""),
        ("debg", "did you mean \"debug\""),
        ("mpu_janitor=loud", "\"loud\" is not a level"),
        ("verbose", "\"verbose\" is not a level"),
        ("", "empty"),
    ] {
        let e = check_log_filter(bad).unwrap_err();
        assert!(
            e.contains(needle) && e.contains("levels: off, error"),
            "{bad}: {e}"
        );
    }
}

#[test]
fn twenty_thousand_targets_load() {
    // Loading is linear (the bench times it): a large fleet loads, every target resolved.
    let mut text = String::from("[defaults]\nolder_than = \"3d\"\n");
    for i in 0..20_000 {
        text.push_str(&format!(
            "[[targets]]\nbucket = \"b-{i}\"\nprefix = \"p/{i}/\"\n"
        ));
        if i % 100 == 0 {
            text.push_str("concurrency = 8\n");
        }
    }
    let c = load(&text).unwrap();
    assert_eq!(c.targets.len(), 20_000);
    assert_eq!(c.targets[19_999].bucket, "b-19999");
    assert_eq!(
        c.targets
            .iter()
            .filter(|t| t.settings.concurrency == 8)
            .count(),
        200
    );
    assert!(render_effective(&c).contains("bucket = \"b-19999\""));
}

#[test]
fn example_toml_shows_every_key_the_loader_knows() {
    // The key list comes from the code (the settings! macro and the serialized sections), so a
    // new key without its line in config/example.toml fails here. Commented-out keys count.
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/example.toml"))
            .unwrap();
    let mut sections: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    let mut current = String::new();
    for line in example.lines() {
        let l = line.trim();
        if let Some(name) = l.strip_prefix("[[").and_then(|r| r.strip_suffix("]]")) {
            current = name.to_string();
        } else if let Some(name) = l.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            current = name.to_string();
        } else if let Some((k, _)) = l.trim_start_matches('#').trim().split_once('=') {
            let k = k.trim();
            if !k.is_empty() && k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                sections
                    .entry(current.clone())
                    .or_default()
                    .push(k.to_string());
            }
        }
    }
    let full = FileConfig {
        sharding: ShardingConfig {
            index: Some(0),
            ..ShardingConfig::default()
        },
        ..FileConfig::default()
    };
    let toml::Value::Table(tab) = toml::Value::try_from(&full).unwrap() else {
        panic!("a table");
    };
    let mut missing = Vec::new();
    for (section, keys) in &tab {
        let Some(toml::Value::Table(keys)) = Some(keys) else {
            continue;
        };
        for key in keys.keys() {
            if !sections.get(section).is_some_and(|ks| ks.contains(key)) {
                missing.push(format!("{section}.{key}"));
            }
        }
    }
    assert_eq!(
        Settings::KEYS.len(),
        tab["defaults"].as_table().unwrap().len(),
        "every settings key is serialized"
    );
    for key in ["bucket", "prefix", "exclude_prefixes"] {
        if !sections
            .get("targets")
            .is_some_and(|ks| ks.iter().any(|k| k == key))
        {
            missing.push(format!("targets.{key}"));
        }
    }
    assert!(missing.is_empty(), "config/example.toml lacks {missing:?}");
    // And it loads as it is, as its header promises.
    Config::load(
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/config/example.toml")),
        &CliOverrides::default(),
    )
    .unwrap();
}

#[test]
fn a_profile_in_neither_shared_file_is_refused() {
    // aws-config would only fail at run time, with a credentials error.
    let dir = tempfile::tempdir().unwrap();
    let (config, creds) = (dir.path().join("config"), dir.path().join("credentials"));
    std::fs::write(
        &config,
        "[default]\nregion = x\n[profile garage]\nregion = garage\n",
    )
    .unwrap();
    std::fs::write(&creds, "[ceph]\naws_access_key_id = a\n").unwrap();
    assert_eq!(profile::problem("garage", &config, &creds), None);
    assert_eq!(profile::problem("ceph", &config, &creds), None);
    assert_eq!(profile::problem("default", &config, &creds), None);
    let e = profile::problem("minio", &config, &creds).unwrap();
    assert!(
        e.contains("\"minio\" is in neither") && e.contains("AWS_CONFIG_FILE"),
        "{e}"
    );
    let none = dir.path().join("none");
    assert!(profile::problem("garage", &none, &none).is_some());
}

#[test]
fn durations_in_messages_are_never_rounded_away() {
    // A sub-millisecond timeout is shown as written, not as "0s"; whole units stay short.
    let e = err(&doc("defaults", "connect_timeout", "\"500us\""));
    assert!(
        e.contains("\"500us\" is out of range: accepted 1ms..=5m"),
        "{e}"
    );
    for (d, shown) in [
        (3650 * 86_400, "3650d"),
        (300, "5m"),
        (90, "90s"),
        (0, "0s"),
    ] {
        assert_eq!(
            validate::show_duration(std::time::Duration::from_secs(d)),
            shown
        );
    }
}

#[test]
fn every_shard_keeps_the_discovery_targets_and_knows_every_named_bucket() {
    let text = |index: u32| {
        format!(
            "[sharding]\ncount = 2\nindex = {index}\n[[targets]]\nbucket = \"*\"\ninclude_buckets = [\"logs-*\"]\n\
             [[targets]]\nbucket = \"logs-a\"\n[[targets]]\nbucket = \"logs-b\"\n[[targets]]\nbucket = \"logs-c\"\n"
        )
    };
    let mut named = 0;
    for index in 0..2 {
        let c = load(&text(index)).unwrap();
        assert!(c.targets[0].discovers(), "shard {index} keeps the rule");
        assert_eq!(
            c.named_buckets.len(),
            3,
            "shard {index} knows every named bucket"
        );
        named += c.targets.iter().filter(|t| !t.discovers()).count();
    }
    assert_eq!(named, 3, "each named bucket in exactly one shard");
}

#[test]
fn a_default_role_gives_way_to_each_accounts_role_but_a_targets_own_conflicts() {
    let c = load(
        "[defaults]\nrole_arn = \"arn:aws:iam::999988887777:role/base\"\n[[targets]]\nbucket = \"logs\"\n[[targets]]\naccounts = [\"111122223333\"]\nrole_name = \"janitor\"\n",
    )
    .unwrap();
    let roles: Vec<&str> = c
        .targets
        .iter()
        .map(|t| t.settings.role_arn.as_str())
        .collect();
    assert_eq!(
        roles,
        [
            "arn:aws:iam::999988887777:role/base",
            "arn:aws:iam::111122223333:role/janitor"
        ]
    );
    let e = load(
        "[[targets]]\naccounts = [\"111122223333\"]\nrole_name = \"janitor\"\nrole_arn = \"arn:aws:iam::111122223333:role/other\"\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("targets[0].role_arn: conflicts with accounts"),
        "{e}"
    );
}

#[test]
fn an_account_fan_out_becomes_one_discovery_target_per_account_in_its_partition() {
    let c = load(
        "[[targets]]\naccounts = [\"111122223333\", \"444455556666\"]\nrole_name = \"janitor\"\nregion = \"cn-north-1\"\nexclude_buckets = [\"tf-*\"]\n",
    )
    .unwrap();
    let roles: Vec<&str> = c
        .targets
        .iter()
        .map(|t| t.settings.role_arn.as_str())
        .collect();
    assert_eq!(
        roles,
        [
            "arn:aws-cn:iam::111122223333:role/janitor",
            "arn:aws-cn:iam::444455556666:role/janitor"
        ]
    );
    for (t, account) in c.targets.iter().zip(["111122223333", "444455556666"]) {
        assert!(t.discovers());
        let d = t.rule().unwrap();
        assert_eq!(d.rule, format!("targets[0] account {account}"));
        assert_eq!(d.describe(), "exclude_buckets [\"tf-*\"]");
    }
}

#[test]
fn a_url_or_a_path_as_bucket_says_what_to_write_and_overlapping_targets_are_refused() {
    let table = [
        (
            "[[targets]]\nbucket = \"s3://photos/raw/\"\n",
            Some(
                "targets[0].bucket: \"s3://photos/raw/\" is a URL or a path, not a bucket name: write bucket = \"photos\", prefix = \"raw/\"",
            ),
        ),
        (
            "[[targets]]\nbucket = \"photos/raw\"\n",
            Some("write bucket = \"photos\", prefix = \"raw\""),
        ),
        (
            "[[targets]]\nbucket = \"s3://photos\"\n",
            Some("write bucket = \"photos\""),
        ),
        (
            "[[targets]]\nbucket = \"my photos\"\n",
            Some("cannot be a bucket name"),
        ),
        (
            "[[targets]]\nbucket = \"a\"\n[[targets]]\nbucket = \"a\"\n",
            Some(
                "targets[1]: sweeps what targets[0] sweeps (bucket \"a\", prefix \"\" inside \"\")",
            ),
        ),
        (
            "[[targets]]\nbucket = \"a\"\n[[targets]]\nbucket = \"a\"\nprefix = \"raw/\"\n",
            Some("add exclude_prefixes = [\"raw/\"] to targets[0]"),
        ),
        // The overlap excluded by the broader target: each upload swept once.
        (
            "[[targets]]\nbucket = \"a\"\nexclude_prefixes = [\"raw/\"]\n[[targets]]\nbucket = \"a\"\nprefix = \"raw/\"\nolder_than = \"1d\"\n",
            None,
        ),
        // Disjoint prefixes, other buckets, another endpoint: no overlap.
        (
            "[[targets]]\nbucket = \"a\"\nprefix = \"x/\"\n[[targets]]\nbucket = \"a\"\nprefix = \"y/\"\n[[targets]]\nbucket = \"b\"\n[[targets]]\nbucket = \"a\"\nprefix = \"x/\"\nendpoint_url = \"http://127.0.0.1:9000\"\nforce_path_style = true\n",
            None,
        ),
    ];
    for (text, want) in table {
        match (load(text), want) {
            (Ok(_), None) => {}
            (Err(e), Some(want)) => {
                let all = e.problems.join("\n");
                assert!(all.contains(want), "{text}: {all}");
            }
            (Ok(_), Some(want)) => panic!("{text}: accepted, wanted {want:?}"),
            (Err(e), None) => panic!("{text}: refused: {:?}", e.problems),
        }
    }
}

#[test]
#[allow(clippy::result_large_err)] // figment's Jail API returns its own error type
fn the_region_comes_from_the_configuration_else_aws_region_else_the_profile_else_us_east_1() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("c.toml", "[[targets]]\nbucket=\"a\"\n")?;
        // The shared config file, as aws-config reads it: the default profile's region, and
        // another's, chosen by $AWS_PROFILE or by `profile`.
        jail.create_file(
            "aws-config",
            "[default]\nregion = ca-central-1\n\n[profile ops]\noutput = json\nregion = eu-north-1\n[profile bare]\n",
        )?;
        jail.create_file(
            "ops.toml",
            "[defaults]\nprofile=\"ops\"\n[[targets]]\nbucket=\"a\"\n",
        )?;
        jail.set_env("AWS_CONFIG_FILE", "aws-config");
        jail.set_env("AWS_SHARED_CREDENTIALS_FILE", "none");
        jail.create_file(
            "set.toml",
            "[defaults]\nregion=\"ap-south-1\"\n[[targets]]\nbucket=\"a\"\n",
        )?;
        let load = |p: &str| Config::load(Path::new(p), &CliOverrides::default()).unwrap();
        let c = load("c.toml");
        assert_eq!(c.targets[0].settings.region, "ca-central-1");
        assert!(
            c.sources
                .iter()
                .any(|s| s.contains("from profile \"default\" in aws-config")),
            "{:?}",
            c.sources
        );
        assert_eq!(load("ops.toml").targets[0].settings.region, "eu-north-1");
        // A target's own profile gives that target its region; the others keep the default's.
        jail.create_file(
            "two.toml",
            "[[targets]]\nbucket=\"a\"\nprofile=\"ops\"\n[[targets]]\nbucket=\"b\"\n[[targets]]\nbucket=\"c\"\nprofile=\"ops\"\nregion=\"sa-east-1\"\n",
        )?;
        let two = load("two.toml");
        let regions: Vec<&str> = two
            .targets
            .iter()
            .map(|t| t.settings.region.as_str())
            .collect();
        assert_eq!(regions, ["eu-north-1", "ca-central-1", "sa-east-1"]);
        jail.set_env("AWS_PROFILE", "bare");
        assert_eq!(
            load("c.toml").defaults.region,
            "us-east-1",
            "no region in it"
        );
        jail.set_env("AWS_PROFILE", "ops");
        assert_eq!(load("c.toml").defaults.region, "eu-north-1");
        jail.set_env("AWS_DEFAULT_REGION", "eu-west-1");
        assert_eq!(load("c.toml").targets[0].settings.region, "eu-west-1");
        assert_eq!(
            load("two.toml").targets[0].settings.region,
            "eu-west-1",
            "the environment first"
        );
        jail.set_env("AWS_REGION", "eu-west-3");
        let c = load("c.toml");
        assert_eq!(c.targets[0].settings.region, "eu-west-3");
        assert!(
            c.sources
                .iter()
                .any(|s| s.contains("from the environment (AWS_REGION)")),
            "{:?}",
            c.sources
        );
        // A region the configuration sets wins, from the file or from its own variable.
        assert_eq!(load("set.toml").defaults.region, "ap-south-1");
        jail.set_env("MPU_JANITOR_DEFAULTS__REGION", "sa-east-1");
        assert_eq!(load("c.toml").defaults.region, "sa-east-1");
        Ok(())
    });
}
