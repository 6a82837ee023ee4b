//! Proxies, through a real tinyproxy: every call of both request paths goes through the proxy
//! `proxy` names, with its credentials, in forward form to an `http://` endpoint and in a CONNECT
//! tunnel to an `https://` one; the environment's `HTTP_PROXY` is honoured and `NO_PROXY` exempts;
//! a wrong proxy password fails the target, keeps every upload, and is never shown.

use mpu_janitor::config::{RequestPathSetting, Settings};

use crate::common::endpoint::{
    AK, SK, TWO_PARTS, config_toml, endpoint, opts, seed_old, settings, sweep,
};
use crate::common::janitor::{janitor_as, janitor_with_env, spawn_janitor, wait_exit};
use crate::common::proxy::Tinyproxy;
use crate::common::target;
use crate::common::tls::tls_proxy;

const CREDENTIALS: (&str, &str) = ("janitor", "pr0xy-s3cret");

#[tokio::test(flavor = "multi_thread")]
async fn every_call_of_both_request_paths_goes_through_the_configured_proxy_with_its_credentials() {
    for path in [RequestPathSetting::Auto, RequestPathSetting::Sdk] {
        let ep = endpoint().await;
        seed_old(&ep, "via", "k/", 20, TWO_PARTS);
        let proxy = Tinyproxy::start(Some(CREDENTIALS));
        let s = Settings {
            proxy: proxy.url(Some(CREDENTIALS)).parse().unwrap(),
            request_path: path,
            concurrency: 4,
            ..settings(&ep)
        };
        let r = sweep(&target("via", s), &opts()).await;
        assert_eq!(
            (r.aborted, r.failed, r.unverified),
            (20, 0, 0),
            "{path}: {:?}",
            r.errors
        );
        let seen = proxy.requests();
        let stats = ep.stats();
        // Every request the endpoint received came through the proxy, in forward form.
        assert_eq!(seen.len() as u64, stats.requests, "{path}: {seen:?}");
        // The bucket's calls, and the one ListBuckets that dates the bucket (§4 of the contract).
        let base = format!("http://{}/via", ep.addr());
        let buckets = format!("GET http://{}/?", ep.addr());
        assert!(
            seen.iter().all(|r| r.starts_with(&buckets)
                || r.split_once(' ').unwrap().1.starts_with(&base)),
            "{path}: {seen:?}"
        );
        assert_eq!(
            (
                seen.iter().filter(|r| r.starts_with(&buckets)).count() as u64,
                stats.list_buckets
            ),
            (1, 1),
            "{path}: {seen:?}"
        );
        let listings = seen
            .iter()
            .filter(|r| r.starts_with("GET ") && r.contains("?uploads"))
            .count();
        let aborts = seen.iter().filter(|r| r.starts_with("DELETE ")).count();
        assert_eq!(
            (listings as u64, aborts as u64),
            (stats.list_multipart_uploads, stats.abort_multipart_upload),
            "{path}"
        );
        assert_eq!(aborts, 20, "{path}");
        assert_eq!(ep.upload_count("via"), 0);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_https_endpoint_is_reached_through_a_connect_tunnel_on_both_request_paths() {
    let ep = endpoint().await;
    let (url, ca_pem) = tls_proxy(ep.addr()).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    for path in [RequestPathSetting::Auto, RequestPathSetting::Sdk] {
        seed_old(&ep, "tls", "k/", 10, TWO_PARTS);
        let proxy = Tinyproxy::start(Some(CREDENTIALS));
        let s = Settings {
            endpoint_url: url.parse().unwrap(),
            ca_bundle: ca.clone(),
            proxy: proxy.url(Some(CREDENTIALS)).parse().unwrap(),
            request_path: path,
            concurrency: 4,
            ..settings(&ep)
        };
        let r = sweep(&target("tls", s), &opts()).await;
        assert_eq!((r.aborted, r.failed), (10, 0), "{path}: {:?}", r.errors);
        let seen = proxy.requests();
        let authority = url.trim_start_matches("https://").trim_end_matches('/');
        assert!(!seen.is_empty(), "{path}: nothing went through the proxy");
        assert!(
            seen.iter().all(|r| r == &format!("CONNECT {authority}")),
            "{path}: only tunnels to the endpoint: {seen:?}"
        );
    }
}

#[test]
fn the_environment_proxy_is_honoured_and_no_proxy_exempts_the_endpoint() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ep = rt.block_on(endpoint());
    let proxy = Tinyproxy::start(None);
    let cfg = config_toml(&ep, "concurrency = 4", &["env"]);
    let run = |env: &[(&str, &str)]| {
        let (child, _dir) = spawn_janitor(&cfg, &["once"], env);
        wait_exit(child, std::time::Duration::from_secs(60))
    };
    seed_old(&ep, "env", "k/", 10, TWO_PARTS);
    let (code, _, stderr) = run(&[("HTTP_PROXY", &proxy.url(None))]);
    assert_eq!(code, 0, "{stderr}");
    let through = proxy.requests().len() as u64;
    assert_eq!(through, ep.stats().requests, "HTTP_PROXY: every request");
    seed_old(&ep, "env", "k/", 10, TWO_PARTS);
    let (code, _, stderr) = run(&[("http_proxy", &proxy.url(None)), ("NO_PROXY", "127.0.0.1")]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(ep.upload_count("env"), 0);
    assert_eq!(
        proxy.requests().len() as u64,
        through,
        "NO_PROXY=127.0.0.1: none more"
    );
}

#[test]
fn a_wrong_proxy_password_fails_the_target_keeps_every_upload_and_is_never_shown() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ep = rt.block_on(endpoint());
    seed_old(&ep, "denied", "k/", 5, TWO_PARTS);
    let proxy = Tinyproxy::start(Some(CREDENTIALS));
    let wrong = proxy.url(Some((CREDENTIALS.0, "wr0ng-passw0rd")));
    for path in ["auto", "sdk"] {
        let cfg = config_toml(
            &ep,
            &format!("proxy = \"{wrong}\"\nrequest_path = \"{path}\"\nretry_max_attempts = 1"),
            &["denied"],
        );
        let out = janitor_as((AK, SK), &cfg, &["once", "--output", "json"]);
        assert_eq!(out.code, 1, "{path}: {}", out.stderr);
        for text in [&out.stdout, &out.stderr] {
            assert!(!text.contains("wr0ng-passw0rd"), "{path}: {text}");
        }
        let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(report["targets"][0]["aborted"], 0, "{path}: {report}");
        let shown = janitor_as((AK, SK), &cfg, &["check-config"]);
        assert_eq!(shown.code, 0, "{}", shown.stderr);
        assert!(!shown.stdout.contains("wr0ng-passw0rd"), "{}", shown.stdout);
        assert!(shown.stdout.contains("proxy"), "{}", shown.stdout);
    }
    assert_eq!(ep.upload_count("denied"), 5, "nothing aborted");
    // The environment's proxies are shown by check-config, redacted, with or without a scheme.
    let cfg = config_toml(&ep, "", &["denied"]);
    let shown = janitor_with_env(
        &cfg,
        &["check-config"],
        &[
            (
                "HTTPS_PROXY",
                "http://janitor:env-s3cret@proxy.example:3128",
            ),
            ("http_proxy", "janitor:env-s3cret@proxy.example:3128"),
            ("NO_PROXY", "169.254.169.254,.internal"),
        ],
    );
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    assert!(!shown.stdout.contains("env-s3cret"), "{}", shown.stdout);
    for line in [
        "HTTPS_PROXY=http://REDACTED@proxy.example:3128",
        "http_proxy=http://REDACTED@proxy.example:3128",
        "NO_PROXY=169.254.169.254,.internal",
    ] {
        assert!(shown.stdout.contains(line), "{line}: {}", shown.stdout);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn assume_role_and_discovery_go_through_the_proxy_too() {
    let moto = crate::common::sts::Moto::start();
    let ep = endpoint().await;
    ep.set_key_lookup(moto.key_lookup());
    seed_old(&ep, "found", "k/", 3, TWO_PARTS);
    let proxy = Tinyproxy::start(Some(CREDENTIALS));
    let text = format!(
        "{}[[targets]]\nbucket = \"*\"\n",
        config_toml(
            &ep,
            &format!(
                "proxy = \"{}\"\nrole_arn = \"arn:aws:iam::111122223333:role/janitor\"\nsts_endpoint_url = \"{}\"\n",
                proxy.url(Some(CREDENTIALS)),
                moto.url()
            ),
            &[]
        )
    );
    let out = tokio::task::spawn_blocking(move || janitor_as((AK, SK), &text, &["once"]))
        .await
        .unwrap();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(ep.upload_count("found"), 0);
    let seen = proxy.requests();
    let sts = format!("POST {}/", moto.url());
    assert_eq!(
        seen.iter().filter(|r| r.starts_with(&sts)).count(),
        1,
        "AssumeRole through the proxy: {seen:?}"
    );
    assert!(
        seen.iter()
            .any(|r| r.starts_with(&format!("GET http://{}/?", ep.addr()))
                || r == &format!("GET http://{}/", ep.addr())),
        "ListBuckets through the proxy: {seen:?}"
    );
    // Every S3 request the endpoint received came through the proxy.
    let s3 = seen
        .iter()
        .filter(|r| r.contains(&ep.addr().to_string()))
        .count();
    assert_eq!(s3 as u64, ep.stats().requests, "{seen:?}");
    assert!(!out.stderr.contains("pr0xy-s3cret"));
    eprintln!(
        "the proxy saw {} requests: 1 AssumeRole, {s3} S3",
        seen.len()
    );
}
