//! Assumed roles against a real STS, moto's server mode (`common::sts`), and the embedded endpoint
//! verifying the S3 calls signed with the temporary keys moto issued: the assumed keys sign every
//! S3 call (never the base keys), a session shorter than the sweep is refreshed mid-sweep, targets
//! on one role share one session, an account fan-out assumes each account's role, and a denied
//! AssumeRole fails its target only, with a message naming the role.

use std::collections::BTreeSet;
use std::time::Duration;

use s3_mem::Faults;
use serde_json::Value;

use crate::common::endpoint::{AK, SK, TWO_PARTS, config_toml, endpoint, seed_old};
use crate::common::janitor::janitor_as;
use crate::common::sts::{ALLOWED_ROLE, DENIED_ROLE, Moto};

const ROLE: &str = "arn:aws:iam::111122223333:role/janitor";

/// Runs `once --output json` in the blocking pool (the endpoint runs on this test's runtime).
async fn once_json(keys: (String, String), text: String) -> (i32, Value, String) {
    let out = tokio::task::spawn_blocking(move || {
        janitor_as((&keys.0, &keys.1), &text, &["once", "--output", "json"])
    })
    .await
    .unwrap();
    let report = serde_json::from_str(&out.stdout).unwrap_or(Value::Null);
    (out.code, report, out.stderr)
}

/// The access keys that signed S3 calls at the endpoint.
fn signers(ep: &s3_mem::Endpoint) -> BTreeSet<String> {
    ep.stats().requests_by_access_key.into_keys().collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn assumed_keys_sign_every_s3_call_and_a_short_session_is_refreshed_mid_sweep() {
    let moto = Moto::start();
    for path in ["auto", "sdk"] {
        let ep = endpoint().await;
        ep.set_key_lookup(moto.key_lookup());
        let before = moto.assumed_roles().len();
        seed_old(&ep, "roles", "k", 1_500, &[(1, 100)]);
        // About 3 s of sweeping at 8 uploads at a time through 5 ms a request, with sessions of 1 s.
        ep.set_faults(Faults {
            latency: Duration::from_millis(5),
            ..Faults::default()
        });
        let text = config_toml(
            &ep,
            &format!(
                "role_arn = \"{ROLE}\"\nsts_endpoint_url = \"{}\"\nduration = \"1s\"\nconcurrency = 8\nrequest_path = \"{path}\"\n",
                moto.url()
            ),
            &["roles"],
        );
        let (code, report, stderr) = once_json((AK.into(), SK.into()), text).await;
        assert_eq!(code, 0, "{path}: {stderr}");
        assert_eq!(report["targets"][0]["aborted"], 1_500, "{path}");
        let sessions: Vec<_> = moto.assumed_roles().split_off(before);
        assert!(
            sessions.len() >= 2,
            "{path}: the 1s session was refreshed: {sessions:?}"
        );
        for s in &sessions {
            assert_eq!(s.role_arn, ROLE);
            assert_eq!(s.session_name, "mpu-janitor");
        }
        let issued: BTreeSet<String> = sessions.iter().map(|s| s.access_key_id.clone()).collect();
        let signed = signers(&ep);
        assert!(
            !signed.contains(AK),
            "{path}: the base key never signs an S3 call"
        );
        assert!(
            signed.is_subset(&issued),
            "{path}: {signed:?} not all from {issued:?}"
        );
        assert!(
            signed.len() >= 2,
            "{path}: more than one session signed: {signed:?}"
        );
        eprintln!(
            "{path}: {} sessions assumed, {} of them signed {} S3 requests",
            sessions.len(),
            signed.len(),
            ep.stats().requests
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn targets_on_one_role_share_its_session_and_a_fan_out_assumes_each_accounts_role() {
    let moto = Moto::start();
    let ep = endpoint().await;
    ep.set_key_lookup(moto.key_lookup());
    for b in ["one", "two", "fan-1"] {
        seed_old(&ep, b, "k", 2, TWO_PARTS);
    }
    let text = format!(
        "{}[[targets]]\nbucket = \"two\"\nrole_arn = \"{ROLE}\"\nexternal_id = \"ext-42\"\nregion = \"eu-west-1\"\n\
         [[targets]]\naccounts = [\"222233334444\", \"555566667777\"]\nrole_name = \"sweeper\"\ninclude_buckets = [\"fan-*\"]\n",
        config_toml(
            &ep,
            &format!(
                "sts_endpoint_url = \"{}\"\n[[targets]]\nbucket = \"one\"\nrole_arn = \"{ROLE}\"\nexternal_id = \"ext-42\"\n",
                moto.url()
            ),
            &[]
        )
    );
    let (code, report, stderr) = once_json((AK.into(), SK.into()), text).await;
    assert_eq!(code, 0, "{stderr}");
    for b in ["one", "two", "fan-1"] {
        assert_eq!(ep.upload_count(b), 0, "{b}");
    }
    let sessions = moto.assumed_roles();
    let roles: Vec<&str> = sessions.iter().map(|s| s.role_arn.as_str()).collect();
    assert_eq!(
        roles.iter().filter(|r| **r == ROLE).count(),
        1,
        "one session for both targets on the role (two regions): {roles:?}"
    );
    let shared = sessions.iter().find(|s| s.role_arn == ROLE).unwrap();
    assert_eq!(shared.external_id.as_deref(), Some("ext-42"));
    for account in ["222233334444", "555566667777"] {
        let arn = format!("arn:aws:iam::{account}:role/sweeper");
        assert!(roles.contains(&arn.as_str()), "{arn} assumed: {roles:?}");
    }
    // fan-1 is visible to both accounts here (one endpoint): the first rule sweeps it, the second
    // says so.
    let d = report["discovery"].as_array().unwrap();
    assert_eq!(d[0]["rule"], "targets[2] account 222233334444");
    assert_eq!(d[0]["role_arn"], "arn:aws:iam::222233334444:role/sweeper");
    assert_eq!(d[0]["buckets_matched"], 1);
    assert_eq!(
        d[1]["skipped"][0]["reason"],
        "swept by targets[2] account 222233334444"
    );
    let fan_key = &sessions
        .iter()
        .find(|s| s.role_arn.contains("222233334444"))
        .unwrap()
        .access_key_id;
    assert!(ep.stats().requests_for_access_key(fan_key) > 0);
    assert!(!signers(&ep).contains(AK));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_denied_assume_role_fails_its_target_only_naming_the_role() {
    let moto = Moto::start_with_auth();
    let ep = endpoint().await;
    ep.set_key_lookup(moto.key_lookup());
    seed_old(&ep, "allowed", "k", 2, TWO_PARTS);
    seed_old(&ep, "denied", "k", 2, TWO_PARTS);
    let text = config_toml(
        &ep,
        &format!(
            "sts_endpoint_url = \"{}\"\nretry_max_attempts = 1\n[[targets]]\nbucket = \"allowed\"\nrole_arn = \"{ALLOWED_ROLE}\"\n[[targets]]\nbucket = \"denied\"\nrole_arn = \"{DENIED_ROLE}\"\n",
            moto.url()
        ),
        &[],
    );
    let (code, report, stderr) = once_json(moto.base_keys(), text).await;
    assert_eq!(code, 1, "{stderr}");
    let t = report["targets"].as_array().unwrap();
    assert_eq!(t[0]["bucket"], "allowed");
    assert_eq!(t[0]["aborted"], 2, "{}", t[0]);
    assert!(t[0]["error"].is_null());
    assert_eq!(t[1]["bucket"], "denied");
    let error = t[1]["error"].as_str().unwrap();
    assert!(
        error.contains(&format!(
            "cannot assume the role: AssumeRole of {DENIED_ROLE} failed"
        )) && error.contains("AccessDenied")
            && error.contains("(credentials)"),
        "{error}"
    );
    assert_eq!(
        ep.upload_count("denied"),
        2,
        "nothing aborted without credentials"
    );
    assert!(
        !signers(&ep).contains(&moto.base_keys().0),
        "the base key never signs S3"
    );
}
