//! The configuration through the real binary (issue 13, "bounded and never fooled"): every value
//! that used to pass `check-config` and then panic, spin or fail at run time is refused by
//! `check-config` (and by every command, which share the loader) with exit 2 and a line naming the
//! key, the value and what is accepted, before anything is contacted; no secret is echoed.

use std::os::unix::fs::PermissionsExt;

use crate::common::janitor::{command, janitor, janitor_with_env};
use crate::common::tripwire;

#[test]
fn out_of_range_numbers_exit_2_in_every_command_naming_the_key_the_value_and_the_range() {
    // The values: max_in_flight = 2^61 panicked (exit 101) in once, plan and run;
    // retry_max_attempts = 4294967294 spun for minutes. Now: exit 2, nothing contacted.
    let (listener, url) = tripwire();
    let table = [
        (
            "[daemon]\nmax_in_flight = 2305843009213693952\n",
            "daemon.max_in_flight: 2305843009213693952 is out of range: accepted 1..=65536",
        ),
        (
            "[defaults]\nretry_max_attempts = 4294967294\n",
            "defaults.retry_max_attempts: 4294967294 is out of range: accepted 1..=20",
        ),
        (
            "[defaults]\nconnect_timeout = \"30d\"\n",
            "defaults.connect_timeout: \"30d\" is out of range: accepted 1ms..=5m",
        ),
        (
            "[sharding]\ncount = 3\nindex = 3\n",
            "sharding.index: 3 is out of range",
        ),
    ];
    for (extra, needle) in table {
        let text = format!("{extra}[[targets]]\nbucket = \"b\"\nendpoint_url = \"{url}\"\n");
        for cmd in ["check-config", "once", "plan"] {
            let out = janitor(&text, &[cmd]);
            assert_eq!(out.code, 2, "{cmd} {extra:?}: {}", out.stderr);
            assert!(
                out.stderr.contains(needle) && out.stderr.contains("config.toml"),
                "{cmd} {extra:?}: {:?} lacks {needle:?} or its source",
                out.stderr
            );
        }
    }
    assert!(
        listener.accept().is_err(),
        "a bad config must not contact the endpoint"
    );
}

#[test]
fn check_config_refuses_what_would_only_fail_at_run_time() {
    // A blank around the endpoint URL (failed at run time as a "network" error), a textfile in a
    // missing directory (failed after the aborts were done), a cron that never fires (accepted,
    // and /readyz said ready).
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no/such/dir/mpu.prom");
    let table = [
        (
            "[defaults]\nendpoint_url = \" http://s3.local:9000\"\n".to_string(),
            "defaults.endpoint_url: \" http://s3.local:9000\" contains whitespace".to_string(),
        ),
        (
            format!(
                "[metrics]\ntextfile = {:?}\n",
                missing.display().to_string()
            ),
            "metrics.textfile: ".to_string() + "\"" + &missing.display().to_string(),
        ),
        (
            "[defaults]\nschedule = \"0 0 0 30 2 *\"\n".to_string(),
            "defaults.schedule: \"0 0 0 30 2 *\" never fires".to_string(),
        ),
    ];
    for (extra, needle) in table {
        let out = janitor(
            &format!("{extra}[[targets]]\nbucket = \"b\"\n"),
            &["check-config"],
        );
        assert_eq!(out.code, 2, "{extra:?}: {}", out.stderr);
        assert!(
            out.stderr.contains(&needle),
            "{extra:?}: {:?} lacks {needle:?}",
            out.stderr
        );
        assert!(out.stdout.is_empty(), "nothing printed: {}", out.stdout);
    }
    let out = janitor(
        &format!(
            "[metrics]\ntextfile = {:?}\n[[targets]]\nbucket = \"b\"\n",
            missing.display().to_string()
        ),
        &["check-config"],
    );
    assert!(out.stderr.contains("does not exist"), "{}", out.stderr);
}

#[test]
fn credentials_in_the_endpoint_url_exit_2_and_are_never_echoed() {
    // user:password@ in endpoint_url used to reach debug and trace logs; now refused, redacted.
    let out = janitor(
        "[defaults]\nendpoint_url = \"http://AKIDEXAMPLE:hunter2secret@s3.local:9000\"\n[[targets]]\nbucket = \"b\"\n",
        &["--log-level", "trace", "check-config"],
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("defaults.endpoint_url")
            && out.stderr.contains("credentials")
            && out.stderr.contains("REDACTED@s3.local:9000"),
        "{}",
        out.stderr
    );
    for secret in ["hunter2secret", "AKIDEXAMPLE"] {
        assert!(
            !out.stderr.contains(secret) && !out.stdout.contains(secret),
            "{secret} echoed: {}{}",
            out.stdout,
            out.stderr
        );
    }
}

#[test]
fn a_log_level_typo_is_a_usage_error_not_silence() {
    // `--log-level warning` used to parse as a filter for a target named "warning" and silence
    // every log line; now exit 2 with a hint. Real levels and directives still work.
    let text = "[[targets]]\nbucket = \"b\"\n";
    let out = janitor(text, &["--log-level", "warning", "check-config"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("--log-level \"warning\"")
            && out.stderr.contains("did you mean \"warn\""),
        "{}",
        out.stderr
    );
    let out = janitor(text, &["--log-level", "mpu_janitor=loud", "check-config"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    for ok in ["warn", "INFO", "warn,mpu_janitor=debug"] {
        let out = janitor(text, &["--log-level", ok, "check-config"]);
        assert_eq!(out.code, 0, "{ok}: {}", out.stderr);
    }
}

#[test]
fn a_config_in_an_untraversable_directory_says_permission_denied() {
    // The file exists but its directory cannot be entered: the message gives the OS error, not
    // "does not exist". As root (who can enter any directory) the binary runs as nobody.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    let path = locked.join("config.toml");
    std::fs::write(&path, "[[targets]]\nbucket = \"b\"\n").unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    let root = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false);
    let mut cmd = if root {
        let mut c = std::process::Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_mpu-janitor"));
        c
    } else {
        command(None)
    };
    let out = cmd
        .arg("--config")
        .arg(&path)
        .arg("check-config")
        .output()
        .expect("run mpu-janitor (setpriv as root)");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("Permission denied") && !stderr.contains("does not exist"),
        "{stderr}"
    );
}

#[test]
fn a_missing_profile_and_a_garbled_shard_index_exit_2_instead_of_misleading_at_run_time() {
    // A profile in neither shared file failed each target with a credentials error; a
    // JOB_COMPLETION_INDEX that is not a number quietly made the process shard 0.
    let out = janitor(
        "[defaults]\nprofile = \"no-such-profile\"\n[[targets]]\nbucket = \"b\"\n",
        &["check-config"],
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("defaults.profile: \"no-such-profile\" is in neither \"/nonexistent\""),
        "{}",
        out.stderr
    );
    let out = janitor_with_env(
        "[sharding]\ncount = 3\n[[targets]]\nbucket = \"b\"\n",
        &["check-config"],
        &[("JOB_COMPLETION_INDEX", "two")],
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("sharding.index: \"two\" is not a shard index")
            && out.stderr.contains("JOB_COMPLETION_INDEX"),
        "{}",
        out.stderr
    );
}

#[test]
fn discovery_and_role_mistakes_exit_2_with_their_message_before_anything_is_contacted() {
    let (listener, url) = tripwire();
    let table = [
        (
            "bucket = \"*\"\ninclude_buckets = []\n",
            "targets[0].include_buckets: an empty list matches no bucket",
        ),
        (
            "bucket = \"*\"\ninclude_buckets = [\"logs-[\"]\n",
            "\"logs-[\" is not a glob such as \"logs-*\"",
        ),
        (
            "bucket = \"*\"\nrole_arn = \"janitor\"\n",
            "\"janitor\" is not an IAM role ARN such as \"arn:aws:iam::111122223333:role/mpu-janitor\"",
        ),
        (
            "bucket = \"*\"\nrole_arn = \"arn:aws:iam::12345:role/janitor\"\n",
            "the account is 12 digits",
        ),
        (
            "bucket = \"logs\"\nexclude_buckets = [\"*-tmp\"]\n",
            "targets[0].exclude_buckets: applies to discovery only: set bucket = \"*\"",
        ),
        (
            "accounts = [\"111122223333\"]\n",
            "targets[0].accounts: needs role_name",
        ),
        (
            "accounts = [\"1111\"]\nrole_name = \"janitor\"\n",
            "targets[0].accounts: \"1111\" is not an account id (12 digits)",
        ),
        (
            "bucket = \"*\"\nrole_name = \"janitor\"\n",
            "targets[0].role_name: names the role assumed in each of accounts",
        ),
        (
            "bucket = \"*\"\nexternal_id = \"abc123\"\n",
            "targets[0].external_id: is sent with AssumeRole, but the target assumes no role",
        ),
        (
            "bucket = \"b\"\nvault = \"v\"\n",
            "targets[0].vault: a target sweeps either a bucket or a vault",
        ),
        (
            "vault = \"v\"\naccount_id = \"12\"\n",
            "targets[0].account_id: \"12\" is not \"-\" or an account id (12 digits)",
        ),
        (
            "vault = \"v\"\nidle_for = \"1h\"\n",
            "targets[0].idle_for: \"1h\" cannot be judged on a vault",
        ),
        (
            "bucket = \"*\"\nproxy = \"proxy.local:3128\"\n",
            "targets[0].proxy: \"proxy.local:3128\" is not an http(s) URL",
        ),
    ];
    for (target, needle) in table {
        let text = format!("[defaults]\nendpoint_url = \"{url}\"\n[[targets]]\n{target}");
        for cmd in ["check-config", "plan"] {
            let out = janitor(&text, &[cmd]);
            assert_eq!(out.code, 2, "{cmd} {target:?}: {}", out.stderr);
            assert!(
                out.stderr.contains(needle),
                "{cmd} {target:?}: {:?} lacks {needle:?}",
                out.stderr
            );
        }
    }
    // The external id is never echoed, even where it is wrong.
    let out = janitor(
        &format!(
            "[defaults]\nendpoint_url = \"{url}\"\n[[targets]]\nbucket = \"*\"\nrole_arn = \"arn:aws:iam::111122223333:role/j\"\nexternal_id = \"s3cr3t with spaces\"\n"
        ),
        &["check-config"],
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("targets[0].external_id: is not an external id"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("s3cr3t"), "{}", out.stderr);
    assert!(
        listener.accept().is_err(),
        "a bad config must not contact the endpoint"
    );
}

#[test]
fn check_config_shows_discovery_rules_and_a_fan_out_as_one_target_per_account_without_the_external_id()
 {
    let out = janitor(
        "[defaults]\nregion = \"eu-west-1\"\n[[targets]]\nbucket = \"*\"\ninclude_buckets = [\"logs-*\"]\nbucket_tags = { team = \"media\" }\n[[targets]]\naccounts = [\"111122223333\", \"444455556666\"]\nrole_name = \"janitor\"\nexternal_id = \"very-secret-id\"\n",
        &["check-config"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let text = &out.stdout;
    for needle in [
        "discovery = \"targets[0]\"",
        "include_buckets = [\"logs-*\"]",
        "discovery = \"targets[1] account 111122223333\"",
        "role_arn = \"arn:aws:iam::111122223333:role/janitor\"",
        "discovery = \"targets[1] account 444455556666\"",
        "role_arn = \"arn:aws:iam::444455556666:role/janitor\"",
        "external_id = \"REDACTED\"",
    ] {
        assert!(text.contains(needle), "{needle:?} not in\n{text}");
    }
    assert!(!text.contains("very-secret-id"), "{text}");
}
