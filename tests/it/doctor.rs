//! `doctor` through the binary, against real components: the real Garage (every check ok, the
//! JSON shape, the lease bucket only read), the embedded s3-mem endpoint for what Garage cannot
//! produce (a bucket in another region, a denied lifecycle read, no `Date` header, a wrong key,
//! discovery), the hostile endpoint for a MinIO `Server` header (blind) and a clock ten minutes
//! ahead, the embedded Glacier endpoint for a vault, and a real STS (moto) for an assumed role and
//! its account. Each asserts the exact check lines, the
//! exit code, and, from the server's own request log, that only reads were sent.

use std::time::Duration;

use s3_mem::Faults;
use s3_mem::glacier::GlacierEndpoint;

use crate::common::endpoint::{AK, SK, TWO_PARTS, endpoint};
use crate::common::garage::garage;
use crate::common::hostile::{Answer, Hostile, listing};
use crate::common::janitor::{Output, janitor_as};

/// Runs `mpu-janitor doctor ARGS` with `config` off the async workers, signing with `keys`.
async fn doctor(keys: (&str, &str), config: String, args: &[&str]) -> Output {
    let (ak, sk) = (keys.0.to_string(), keys.1.to_string());
    let args: Vec<String> = std::iter::once("doctor".to_string())
        .chain(args.iter().map(|a| a.to_string()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        janitor_as((&ak, &sk), &config, &args)
    })
    .await
    .unwrap()
}

/// The check lines of the text output (those starting with two blanks), without the clock's
/// figure and direction, which depend on when the second ticked: `the store's clock is ~ this
/// host's`.
fn lines(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter(|l| l.starts_with("  "))
        .map(|l| match (l.find("clock is "), l.find(" this host's")) {
            (Some(a), Some(b)) if a < b => format!("{}~{}", &l[..a + 9], &l[b..]),
            _ => l.to_string(),
        })
        .collect()
}

fn same_lines(stdout: &str, want: &[&str]) {
    let got = lines(stdout);
    assert_eq!(got, want, "\n{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn on_garage_every_check_is_ok_and_the_lease_bucket_is_only_read() {
    let g = garage();
    let bucket = g.bucket("doctor").await;
    let leases = g.bucket("doctor-lease").await;
    let config = format!(
        "[defaults]\n{}[coordination]\nlease = \"s3://{leases}/janitor/\"\n[[targets]]\nbucket = \"{bucket}\"\nprefix = \"logs/\"\n",
        g.defaults_toml()
    );
    let out = doctor((&g.access_key, &g.secret_key), config.clone(), &[]).await;
    println!("{}", out.stdout);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.starts_with(&format!(
            "bucket {bucket:?} prefix \"logs/\" ({}, region \"garage\")\n",
            g.endpoint
        )),
        "{}",
        out.stdout
    );
    let got = lines(&out.stdout);
    assert_eq!(got.len(), 10, "{}", out.stdout);
    assert!(
        got[0].starts_with(
            "  ok    credentials        from the default credential chain: access key GK01…"
        ),
        "{}",
        got[0]
    );
    assert_eq!(
        &got[1..8],
        &[
            "  skip  account            the store is not AWS (endpoint_url) and no sts_endpoint_url is set: not asked, most S3-compatible stores have no STS",
            "  ok    region             the bucket is in \"garage\", as configured",
            "  ok    listing            ListMultipartUploads allowed: 0 uploads on the first page",
            "  ok    server             the store sends no Server header",
            "  ok    clock              the store's clock is ~ this host's (max_clock_skew 5m)",
            "  ok    blind              no: not a store known to list only exact keys (the listing is empty)",
            "  ok    lifecycle          GetBucketLifecycleConfiguration allowed: no lifecycle abort rule: only this janitor cleans up",
        ],
        "{}",
        out.stdout
    );
    assert!(
        got[8].starts_with(&format!(
            "  ok    lease              s3://{leases}/janitor/"
        )),
        "{}",
        got[8]
    );
    assert!(got[8].ends_with(" readable: no lease yet"), "{}", got[8]);
    assert!(
        got[9].starts_with("  skip  conditional_writes not probed: the only proof is a write"),
        "{}",
        got[9]
    );
    assert!(
        out.stdout
            .ends_with("doctor: 1 target: 8 ok, 0 warn, 0 fail, 2 skip; nothing was written\n")
    );
    // Nothing was written: the lease bucket and the target's bucket hold no object and no upload.
    for b in [&leases, &bucket] {
        let objects = g.client().list_objects_v2().bucket(b).send().await.unwrap();
        assert_eq!(objects.key_count(), Some(0), "{b}");
        let uploads = g
            .client()
            .list_multipart_uploads()
            .bucket(b)
            .send()
            .await
            .unwrap();
        assert!(uploads.uploads().is_empty(), "{b}");
    }
    // The JSON: one entry per target, its checks in the same order, the counts.
    let out = doctor(
        (&g.access_key, &g.secret_key),
        config,
        &["--output", "json"],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let t = &v["targets"][0];
    assert_eq!(
        (
            t["target"].as_str(),
            t["kind"].as_str(),
            t["prefix"].as_str(),
            t["region"].as_str()
        ),
        (
            Some(bucket.as_str()),
            Some("bucket"),
            Some("logs/"),
            Some("garage")
        )
    );
    let checks: Vec<(&str, &str)> = t["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["check"].as_str().unwrap(), c["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        checks,
        [
            ("credentials", "ok"),
            ("account", "skip"),
            ("region", "ok"),
            ("listing", "ok"),
            ("server", "ok"),
            ("clock", "ok"),
            ("blind", "ok"),
            ("lifecycle", "ok"),
            ("lease", "ok"),
            ("conditional_writes", "skip"),
        ]
    );
    assert!(t["checks"][0].get("fix").is_none(), "no fix on an ok check");
    assert_eq!(
        (
            v["ok"].as_u64(),
            v["warn"].as_u64(),
            v["fail"].as_u64(),
            v["skip"].as_u64()
        ),
        (Some(8), Some(0), Some(0), Some(2))
    );
    assert!(!out.stdout.contains(&g.secret_key) && !out.stdout.contains(&g.access_key));
}

#[tokio::test(flavor = "multi_thread")]
async fn another_region_a_denied_lifecycle_and_no_date_fail_or_warn_with_what_to_do() {
    let ep = endpoint().await;
    ep.create_bucket_in("photos", "eu-west-3");
    let old = chrono::Utc::now() - chrono::TimeDelta::days(30);
    ep.seed_upload("photos", "raw/stale", old, TWO_PARTS);
    ep.create_bucket("doc-a");
    ep.create_bucket("doc-b");
    ep.create_bucket("other");
    ep.set_faults(Faults {
        deny_lifecycle: true,
        no_date: true,
        ..Faults::default()
    });
    ep.record_requests(true);
    let config = format!(
        "[defaults]\nendpoint_url = \"{}\"\nforce_path_style = true\n[[targets]]\nbucket = \"photos\"\n[[targets]]\nbucket = \"*\"\ninclude_buckets = [\"doc-*\"]\n",
        ep.url()
    );
    let out = doctor((AK, SK), config, &[]).await;
    println!("{}", out.stdout);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    same_lines(
        &out.stdout,
        &[
            "  ok    credentials        from the default credential chain: access key S3ME…EY01",
            "  skip  account            the store is not AWS (endpoint_url) and no sts_endpoint_url is set: not asked, most S3-compatible stores have no STS",
            "  fail  region             the bucket is in \"eu-west-3\", not in region \"us-east-1\" -> set region = \"eu-west-3\" for this target",
            "  ok    listing            ListMultipartUploads allowed: 1 upload on the first page",
            "  ok    server             the store sends no Server header",
            "  fail  clock              the store sent no usable Date header, so this host's clock cannot be checked against the store's: nothing was aborted (set trust_host_clock = true to age uploads on this host's clock) -> set trust_host_clock = true for this target, with this host's clock synchronised (NTP)",
            "  ok    blind              no: the listing shows uploads",
            "  warn  lifecycle          cannot be read: AccessDenied: Access Denied (reading the lifecycle rules needs s3:GetLifecycleConfiguration on \"photos\": optional, the sweep is not affected) -> grant s3:GetLifecycleConfiguration on the bucket (without it, the report's lifecycle is \"unknown\")",
            "  skip  lease              [coordination] lease is not set: every process sweeps every target (fine for one process)",
            "  skip  conditional_writes [coordination] lease is not set: every process sweeps every target (fine for one process)",
            "  ok    credentials        from the default credential chain: access key S3ME…EY01",
            "  skip  account            the store is not AWS (endpoint_url) and no sts_endpoint_url is set: not asked, most S3-compatible stores have no STS",
            "  ok    discovery          ListBuckets allowed: 4 listed, 2 matched (include_buckets [\"doc-*\"]), 2 not matched, 0 in another shard, 0 skipped",
            "  skip  lease              a discovery rule has no lease: each bucket it matches has its own",
        ],
    );
    assert!(out.stdout.contains("\ndiscovery \"*\" ("), "{}", out.stdout);
    // Only reads: HeadBucket, one listing page, the lifecycle read, and the rule's ListBuckets
    // (which gives each bucket's region, so no HeadBucket for them). No write, no ListParts.
    let mut sent: Vec<String> = ep
        .requests()
        .iter()
        .map(|r| format!("{} {}?{}", r.method, r.path, r.query))
        .collect();
    sent.sort();
    assert_eq!(
        sent,
        [
            "GET /?x-id=ListBuckets&max-buckets=1000",
            "GET /photos/?lifecycle",
            "GET /photos/?uploads",
            "HEAD /photos/?",
        ],
        "exactly these reads, each once"
    );
    // The stale upload doctor listed is still there with its parts.
    assert_eq!((ep.upload_count("photos"), ep.part_count("photos")), (1, 2));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_key_fails_the_credentials_and_the_listing_with_the_hint() {
    let ep = endpoint().await;
    ep.create_bucket("photos");
    ep.record_requests(true);
    let config = format!(
        "[defaults]\nendpoint_url = \"{}\"\nforce_path_style = true\n[[targets]]\nbucket = \"photos\"\n",
        ep.url()
    );
    let out = doctor((AK, "not-the-secret"), config, &[]).await;
    println!("{}", out.stdout);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    let got = lines(&out.stdout);
    assert!(
        got[0].starts_with("  fail  credentials        from the default credential chain: access key S3ME…EY01, refused: SignatureDoesNotMatch"),
        "{}",
        got[0]
    );
    assert!(
        got[0].ends_with(
            " -> check the access key and secret (or the role) these credentials come from"
        ),
        "{}",
        got[0]
    );
    assert!(
        got[3].starts_with("  fail  listing            SignatureDoesNotMatch"),
        "{}",
        got[3]
    );
    assert!(
        got[3].ends_with("-> check the credentials (see credentials)"),
        "{}",
        got[3]
    );
    assert!(!out.stdout.contains("not-the-secret"), "{}", out.stdout);
    assert!(
        ep.requests()
            .iter()
            .all(|r| r.method == "GET" || r.method == "HEAD"),
        "{:?}",
        ep.requests()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_minio_server_is_blind_and_a_clock_ten_minutes_ahead_is_a_warning() {
    let h = Hostile::start(|req, _| {
        if req.is_listing() {
            let ahead = std::time::SystemTime::now() + Duration::from_secs(600);
            Answer::Body(
                200,
                vec![
                    ("server", "MinIO".to_string()),
                    // Current MinIO's; the JuiceFS gateway, also "MinIO", lacks it.
                    ("x-content-type-options", "nosniff".to_string()),
                    ("date", httpdate::fmt_http_date(ahead)),
                ],
                listing(&[], None),
            )
        } else if req.method == "HEAD" {
            Answer::Body(
                200,
                vec![("x-amz-bucket-region", "us-east-1".to_string())],
                String::new(),
            )
        } else {
            Answer::Body(500, vec![], "<Error><Code>Unexpected</Code></Error>".into())
        }
    })
    .await;
    let config = format!(
        "[defaults]\nendpoint_url = \"{}\"\nforce_path_style = true\n[[targets]]\nbucket = \"b\"\n",
        h.url
    );
    let out = doctor(("AKHOSTILE", "secret"), config, &[]).await;
    println!("{}", out.stdout);
    assert_eq!(out.code, 1, "blind fails: {}{}", out.stdout, out.stderr);
    same_lines(
        &out.stdout,
        &[
            "  ok    credentials        from the default credential chain: access key AKHO…TILE",
            "  skip  account            the store is not AWS (endpoint_url) and no sts_endpoint_url is set: not asked, most S3-compatible stores have no STS",
            "  ok    region             the bucket is in \"us-east-1\", as configured",
            "  ok    listing            ListMultipartUploads allowed: 0 uploads on the first page",
            "  ok    server             Server: MinIO",
            "  warn  clock              the store's clock is ~ this host's, more than max_clock_skew 5m: ages will be measured on the store's clock -> synchronise this host's clock (NTP), or the store's",
            "  fail  blind              the store (MinIO) lists incomplete uploads only for an exact key: a listing by prefix sees none, and the sweep fails as blind -> use the store's own expiry (MinIO: mc admin config set ALIAS api stale_uploads_expiry=24h)",
            "  ok    lifecycle          GetBucketLifecycleConfiguration allowed: no lifecycle abort rule: only this janitor cleans up",
            "  skip  lease              [coordination] lease is not set: every process sweeps every target (fine for one process)",
            "  skip  conditional_writes [coordination] lease is not set: every process sweeps every target (fine for one process)",
        ],
    );
    let clock = out
        .stdout
        .lines()
        .find(|l| l.contains("  clock  "))
        .unwrap();
    assert!(
        clock.contains(" 10m ahead") || clock.contains(" 9m 59s ahead"),
        "{clock}"
    );
    // The requests it received (the lifecycle read is answered outside the record): a HeadBucket
    // and one listing page, nothing else.
    let seen: Vec<(String, String)> = h.seen().into_iter().map(|s| (s.method, s.uri)).collect();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0], ("HEAD".to_string(), "/b/".to_string()));
    assert_eq!(seen[1], ("GET".to_string(), "/b/?uploads".to_string()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vault_gets_the_checks_that_apply_to_it() {
    let ep = GlacierEndpoint::start(AK, SK).await.unwrap();
    ep.seed_upload("-", "archive", "backup", chrono::Utc::now(), 1_048_576, 1);
    let config = format!(
        "[defaults]\nendpoint_url = \"{}\"\n[[targets]]\nvault = \"archive\"\n",
        ep.url()
    );
    let out = doctor((AK, SK), config, &[]).await;
    println!("{}", out.stdout);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let got = lines(&out.stdout);
    assert_eq!(
        &got[1..],
        &[
            "  skip  account            the store is not AWS (endpoint_url) and no sts_endpoint_url is set: not asked, most S3-compatible stores have no STS",
            "  skip  region             a vault is looked up in region \"us-east-1\": the listing fails if it is not there",
            "  ok    listing            ListMultipartUploads allowed: 1 upload on the first page",
            "  ok    server             the store sends no Server header",
            "  ok    clock              the store's clock is ~ this host's (max_clock_skew 5m)",
            "  ok    blind              no: the listing shows uploads",
            "  skip  lifecycle          a vault has no lifecycle rules",
            "  skip  lease              [coordination] lease is not set: every process sweeps every target (fine for one process)",
            "  skip  conditional_writes [coordination] lease is not set: every process sweeps every target (fine for one process)",
        ],
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.starts_with("vault \"vault:archive\" ("),
        "{}",
        out.stdout
    );
    let requests = ep.requests();
    assert!(
        requests.iter().all(|r| r.starts_with("GET ")),
        "{requests:?}"
    );
    assert_eq!(requests.len(), 1, "one listing page: {requests:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_assumed_role_shows_its_temporary_key_and_sts_names_the_account() {
    // A real STS (moto) at sts_endpoint_url: the role's temporary keys sign the S3 calls (the
    // endpoint verifies them), and GetCallerIdentity, asked of that STS, names the role's account.
    let moto = crate::common::sts::Moto::start();
    let ep = endpoint().await;
    ep.set_key_lookup(moto.key_lookup());
    ep.create_bucket("roles");
    ep.record_requests(true);
    let role = "arn:aws:iam::111122223333:role/janitor";
    let config = format!(
        "[defaults]\nendpoint_url = \"{}\"\nforce_path_style = true\nrole_arn = \"{role}\"\nsts_endpoint_url = \"{}\"\n[[targets]]\nbucket = \"roles\"\n",
        ep.url(),
        moto.url()
    );
    let out = doctor((AK, SK), config, &[]).await;
    println!("{}", out.stdout);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let got = lines(&out.stdout);
    let session = moto.assumed_roles().pop().expect("the role was assumed");
    let key = mpu_janitor::doctor::mask(&session.access_key_id);
    assert!(
        got[0].starts_with(&format!(
            "  ok    credentials        from the role {role} (assumed): access key {key}, with a session token, expires 20"
        )),
        "{}",
        got[0]
    );
    assert!(
        got[1].starts_with("  ok    account            111122223333 (arn:aws:sts::111122223333:assumed-role/janitor/mpu-janitor"),
        "{}",
        got[1]
    );
    assert!(!out.stdout.contains(&session.secret_access_key));
    assert!(!out.stdout.contains(&session.session_token));
    assert!(!out.stdout.contains(&session.access_key_id));
    let sent: Vec<(String, String)> = ep
        .requests()
        .into_iter()
        .map(|r| (r.method, r.access_key))
        .collect();
    assert_eq!(
        sent.len(),
        3,
        "HeadBucket, a listing page, the lifecycle: {sent:?}"
    );
    for (method, signer) in &sent {
        assert!(method == "GET" || method == "HEAD", "{sent:?}");
        assert_eq!(
            signer, &session.access_key_id,
            "the role's key signs: {sent:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_credentials_at_all_fail_first_and_nothing_is_asked_of_the_store() {
    let (listener, url) = crate::common::tripwire();
    let config = format!(
        "[defaults]\nendpoint_url = \"{url}\"\nforce_path_style = true\n[[targets]]\nbucket = \"photos\"\n"
    );
    let out = tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, config).unwrap();
        let out = crate::common::janitor::command(None)
            .arg("--config")
            .arg(&path)
            .arg("doctor")
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        Output::from(out)
    })
    .await
    .unwrap();
    println!("{}", out.stdout);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    let got = lines(&out.stdout);
    assert!(
        got[0].starts_with("  fail  credentials        no AWS credentials found; tried "),
        "{}",
        got[0]
    );
    assert!(
        got[0].ends_with(" -> give credentials to the default credential chain: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile, web identity or instance role"),
        "{}",
        got[0]
    );
    let skipped: Vec<&str> = got[1..]
        .iter()
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    assert_eq!(
        skipped,
        [
            "account",
            "region",
            "listing",
            "server",
            "clock",
            "blind",
            "lifecycle",
            "lease",
            "conditional_writes"
        ]
    );
    assert!(
        got[1..].iter().all(|l| l.starts_with("  skip  ")),
        "{got:?}"
    );
    assert!(listener.accept().is_err(), "the store was contacted");
}
