//! S3 Glacier vaults on the embedded Glacier endpoint (crates/s3-mem/src/glacier/: real HTTP,
//! SigV4 verified), swept by the real aws-sdk-glacier client: 2,500 uploads over 3 pages, a
//! straggler verified after 2 aborts, a stuck upload unverified, bytes exact, the account id sent
//! as given, and the exact requests.

use chrono::{TimeDelta, Utc};
use mpu_janitor::config::{Kind, Target, Vault};
use mpu_janitor::report::Outcome;
use s3_mem::glacier::{GlacierEndpoint, GlacierFaults};

use crate::common::endpoint::{AK, SK, opts};
use crate::common::janitor::janitor_as;
use crate::common::settings_at;

fn vault_target(ep: &GlacierEndpoint, name: &str, account_id: &str) -> Target {
    let vault = Vault {
        name: name.into(),
        account_id: account_id.into(),
    };
    Target {
        bucket: vault.label(),
        prefix: String::new(),
        exclude_prefixes: vec![],
        settings: mpu_janitor::config::Settings {
            older_than: mpu_janitor::config::HumanDuration::secs(86_400),
            force_path_style: false,
            ..settings_at(&ep.url())
        },
        kind: Kind::Vault(vault),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vault_is_swept_over_pages_with_stragglers_verified_and_the_stuck_reported() {
    let ep = GlacierEndpoint::start(AK, SK).await.unwrap();
    let old = Utc::now() - TimeDelta::days(3);
    for i in 0..2_497 {
        ep.seed_upload("-", "archive", &format!("backup {i}"), old, 1_048_576, 2);
    }
    ep.seed_upload("-", "archive", "straggler", old, 1_048_576, 3);
    ep.seed_upload("-", "archive", "stuck", old, 1_048_576, 1);
    let fresh = ep.seed_upload("-", "archive", "fresh", Utc::now(), 1_048_576, 1);
    ep.set_faults(GlacierFaults {
        stragglers: [("straggler".to_string(), 1)].into(),
        never_empty: ["stuck".to_string()].into(),
        ..GlacierFaults::default()
    });
    let t = vault_target(&ep, "archive", "-");
    let r = crate::common::endpoint::sweep(&t, &opts()).await;
    assert_eq!(r.bucket, "vault:archive");
    assert!(r.error.is_none(), "{:?}", r.error);
    assert_eq!(r.uploads_seen, 2_500);
    assert_eq!((r.aborted, r.unverified, r.skipped_fresh), (2_498, 1, 1));
    assert_eq!(r.reclaimed_bytes, 2_497 * 2 * 1_048_576 + 3 * 1_048_576);
    assert!(r.lifecycle.is_none(), "a vault has no lifecycle audit");
    let straggler = r.uploads.iter().find(|u| u.key == "straggler").unwrap();
    assert_eq!(
        (straggler.outcome, straggler.abort_attempts),
        (Outcome::Aborted, 2)
    );
    let stuck = r.uploads.iter().find(|u| u.key == "stuck").unwrap();
    assert_eq!(stuck.outcome, Outcome::Unverified);
    assert_eq!(straggler.part_size, Some(1_048_576));
    let left: Vec<String> = ep
        .uploads("-", "archive")
        .into_iter()
        .map(|u| u.upload_id)
        .collect();
    assert_eq!(left.len(), 2, "the fresh and the stuck upload remain");
    assert!(left.contains(&fresh));
    // Three listing pages of 1,000, every call on the vault's path with the account as given.
    let requests = ep.requests();
    let listings: Vec<&String> = requests
        .iter()
        .filter(|r| r.starts_with("GET /-/vaults/archive/multipart-uploads?"))
        .collect();
    assert_eq!(listings.len(), 3, "{listings:?}");
    assert!(listings.iter().all(|l| l.contains("limit=1000")));
    assert!(
        requests
            .iter()
            .all(|r| r.contains(" /-/vaults/archive/multipart-uploads"))
    );
    let s = ep.stats();
    assert_eq!(s.aborts_for_upload(&straggler.upload_id), 2);
    assert_eq!(
        s.aborts_for_upload(&stuck.upload_id),
        5,
        "max_abort_attempts"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vault_of_another_account_is_addressed_by_its_id_and_plan_shows_its_uploads() {
    let ep = GlacierEndpoint::start(AK, SK).await.unwrap();
    let old = Utc::now() - TimeDelta::days(3);
    ep.seed_upload(
        "444455556666",
        "shared",
        "nightly db dump",
        old,
        8_388_608,
        2,
    );
    let text = format!(
        "[defaults]\nendpoint_url = \"{}\"\nolder_than = \"1d\"\n[[targets]]\nvault = \"shared\"\naccount_id = \"444455556666\"\n",
        ep.url()
    );
    let plan = tokio::task::spawn_blocking(move || janitor_as((AK, SK), &text, &["plan"]))
        .await
        .unwrap();
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    for needle in [
        "glacier vault:444455556666/shared: 1 stale of 1",
        "CREATED",
        "PART SIZE",
        "DESCRIPTION",
        "8.0 MiB",
        "\"nightly db dump\"",
    ] {
        assert!(
            plan.stdout.contains(needle),
            "{needle:?} not in\n{}",
            plan.stdout
        );
    }
    assert!(
        ep.requests()
            .iter()
            .all(|r| r.contains(" /444455556666/vaults/shared/")),
        "{:?}",
        ep.requests()
    );
    assert_eq!(
        ep.upload_count("444455556666", "shared"),
        1,
        "plan aborts nothing"
    );
}
