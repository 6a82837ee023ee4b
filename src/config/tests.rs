//! Unit tests of the configuration: layers, inheritance, validation messages, redaction.

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
        ("[[targets]]\nbucket=\"a\"\nconcurrency=0", "concurrency"),
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
    let c = load(
        "[defaults]\nendpoint_url=\"http://ak:secret@s3.local\"\n[metrics]\npushgateway_url=\"http://u:hunter2@pg:9091\"\n[[targets]]\nbucket=\"a\"",
    )
    .unwrap();
    let text = render_effective(&c);
    assert!(
        !text.contains("hunter2") && !text.contains("secret@"),
        "{text}"
    );
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
