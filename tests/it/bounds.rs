//! Every listing ends, and what a real server merely does differently is served: truncated empty
//! pages for ever, page markers that come back after other pages, `Initiated` with an offset, a
//! page of more uploads than S3's default 1,000 (the JuiceFS gateway's default is 10,000); a Glacier
//! vault's opaque markers that cycle, in its listing and its ListParts, and ListParts' bounds there
//! (empty pages for ever, more than 10,000 parts). Scripted answers of the hostile endpoint, on both
//! request paths where the path matters; each asserts the exact requests sent.

use std::time::Duration;

use mpu_janitor::store::ErrorKind;

use crate::common::hostile::{
    Answer, Hostile, PATHS, Seen, honest, listing, ok, on, parts, sweep_on, two_days_ago, upload_id,
};

#[tokio::test(flavor = "multi_thread")]
async fn truncated_empty_pages_for_ever_stop_the_target_after_ten() {
    // seaweedfs#1407 for ever: every page truncated, empty, its marker one further.
    for path in PATHS {
        let h = Hostile::start(|req, earlier| {
            if req.is_listing() {
                let n = earlier.iter().filter(|s| s.is_listing()).count();
                ok(listing(&[], Some((&format!("k{n:08}"), "x"))))
            } else {
                honest(req, earlier)
            }
        })
        .await;
        let r = sweep_on(&on(&h, path)).await;
        let e = r.error.as_deref().unwrap_or_default();
        assert!(
            e.contains("10 truncated pages in a row with no upload"),
            "{path:?}: {e}"
        );
        assert!(r.errors.iter().any(|c| c.kind == ErrorKind::Protocol));
        let seen = h.seen();
        assert_eq!(
            seen.len(),
            10,
            "{path:?}: ten listings, nothing else: {seen:?}"
        );
        assert!(seen.iter().all(Seen::is_listing));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_marker_that_comes_back_after_other_pages_stops_the_listing() {
    // Markers u1, u2, u1 on one key (ids are opaque, so no order can be checked): a cycle.
    for path in PATHS {
        let old = two_days_ago();
        let h = Hostile::start(move |req, earlier| {
            if req.is_listing() {
                let n = earlier.iter().filter(|s| s.is_listing()).count();
                let id = if n % 2 == 0 { "u1" } else { "u2" };
                let key = format!("k{n}");
                ok(listing(&[(&key, &format!("up{n}"), &old)], Some(("k", id))))
            } else {
                honest(req, earlier)
            }
        })
        .await;
        let r = sweep_on(&on(&h, path)).await;
        let e = r.error.as_deref().unwrap_or_default();
        assert!(e.contains("came back after other pages"), "{path:?}: {e}");
        let seen = h.seen();
        assert_eq!(
            seen.iter().filter(|s| s.is_listing()).count(),
            3,
            "{path:?}"
        );
        // The uploads of the three pages read are still swept, each once.
        assert_eq!(r.aborted, 3, "{path:?}: {r:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_initiated_time_with_an_offset_is_read_and_the_stale_upload_aborted() {
    // 2020-01-01T02:00:00+02:00 is midnight UTC: stale.
    for path in PATHS {
        let h = Hostile::start(|req, earlier| {
            if req.is_listing() {
                ok(listing(
                    &[
                        ("offset", "u-offset", "2020-01-01T02:00:00+02:00"),
                        ("fraction", "u-frac", "2020-01-01T00:00:00.123456Z"),
                    ],
                    None,
                ))
            } else {
                honest(req, earlier)
            }
        })
        .await;
        let r = sweep_on(&on(&h, path)).await;
        assert_eq!(r.error, None, "{path:?}");
        assert_eq!((r.aborted, r.skipped_suspicious), (2, 0), "{path:?}: {r:?}");
        let u = r
            .uploads
            .iter()
            .find(|u| u.upload_id == "u-offset")
            .unwrap();
        assert_eq!(
            u.initiated.map(|t| t.to_rfc3339()),
            Some("2020-01-01T00:00:00+00:00".to_string())
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_page_of_more_uploads_than_asked_for_is_served() {
    // The JuiceFS gateway pages 10,000 when no max-uploads is sent: 1,521 uploads in one page.
    for path in PATHS {
        let old = two_days_ago();
        let entries: Vec<(String, String)> = (0..1521)
            .map(|i| (format!("k/{i:05}"), format!("u{i}")))
            .collect();
        let body = {
            let e: Vec<(&str, &str, &str)> = entries
                .iter()
                .map(|(k, u)| (k.as_str(), u.as_str(), old.as_str()))
                .collect();
            listing(&e, None)
        };
        let h = Hostile::start(move |req, earlier| {
            if req.is_listing() {
                ok(body.clone())
            } else {
                honest(req, earlier)
            }
        })
        .await;
        let r = sweep_on(&on(&h, path)).await;
        assert_eq!(r.error, None, "{path:?}");
        assert_eq!((r.uploads_seen, r.aborted), (1521, 1521), "{path:?}");
        assert_eq!(r.reclaimed_bytes, 1521 * 2_000);
        let seen = h.seen();
        assert_eq!(seen.iter().filter(|s| s.is_listing()).count(), 1);
        assert_eq!(seen.iter().filter(|s| s.is_abort()).count(), 1521);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_that_lists_only_exact_keys_is_blind_never_ok_and_an_empty_store_that_lists_is_ok()
{
    // MinIO answers a bucket-wide ListMultipartUploads with nothing, by design; since July 2021 its
    // answers carry `X-Content-Type-Options: nosniff`. The JuiceFS S3 gateway (MinIO's gateway code
    // of February 2021) sends `Server: MinIO` without it, and does list bucket-wide: its empty
    // listing is believed (tests/it/juicefs.rs sweeps a real one).
    for path in PATHS {
        for (server, nosniff, blind) in [
            ("MinIO", true, true),
            ("MinIO", false, false),
            ("AmazonS3", false, false),
        ] {
            let h = Hostile::start(move |req, earlier| {
                if req.is_listing() {
                    let mut headers = vec![("server", server.to_string())];
                    if nosniff {
                        headers.push(("x-content-type-options", "nosniff".to_string()));
                    }
                    Answer::Body(200, headers, listing(&[], None))
                } else {
                    honest(req, earlier)
                }
            })
            .await;
            let r = sweep_on(&on(&h, path)).await;
            assert_eq!(
                r.is_failure(),
                blind,
                "{path:?} {server} nosniff={nosniff}: {r:?}"
            );
            if blind {
                let e = r.error.as_deref().unwrap();
                assert!(e.starts_with("blind: the store (MinIO)"), "{e}");
                assert!(e.contains("stale_uploads_expiry"), "{e}");
                let text = mpu_janitor::report::render_run_text(&mpu_janitor::report::RunReport {
                    targets: vec![r.clone()],
                    ..Default::default()
                });
                assert!(
                    text.contains("[FAILED]") && !text.contains("[ok]"),
                    "{text}"
                );
            }
            assert_eq!(h.seen().len(), 1, "{path:?}: one listing");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_verification_that_hangs_past_the_grace_is_given_up_and_the_report_still_printed() {
    // The verifying ListParts of "stuck" never finishes (a byte every 20 s); SIGTERM with a 1 s
    // grace: the call is given up, "stuck" is reported interrupted, the other uploads' aborts are
    // in the report, and `once` exits 3 (it exited 1 with no report at all).
    let old = two_days_ago();
    let body = listing(
        &[
            ("a", "u-a", &old),
            ("b", "u-b", &old),
            ("stuck", "u-stuck", &old),
        ],
        None,
    );
    let h = Hostile::start(move |req, earlier| {
        if req.is_listing() {
            return ok(body.clone());
        }
        let aborted = earlier
            .iter()
            .any(|s| s.is_abort() && upload_id(s) == upload_id(req));
        if upload_id(req) == "u-stuck" && req.is_list_parts() && aborted {
            return Answer::Trickle(parts([1, 2], None).into_bytes(), Duration::from_secs(20));
        }
        honest(req, earlier)
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(
        &path,
        format!(
            "[defaults]\nendpoint_url = \"{}\"\nforce_path_style = true\nolder_than = \"1d\"\nread_timeout = \"60s\"\nretry_max_attempts = 1\n[daemon]\nshutdown_grace = \"1s\"\n[[targets]]\nbucket = \"b\"\n",
            h.url
        ),
    )
    .unwrap();
    let child = crate::common::janitor::command(Some(("AKHOSTILE", "secret")))
        .arg("--config")
        .arg(&path)
        .args(["once", "--output", "json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    crate::common::wait_until(
        "the verifying ListParts of stuck",
        Duration::from_secs(30),
        || {
            let seen = h.seen();
            let aborted = seen
                .iter()
                .any(|s| s.is_abort() && upload_id(s) == "u-stuck");
            aborted
                && seen
                    .iter()
                    .filter(|s| s.is_list_parts() && upload_id(s) == "u-stuck")
                    .count()
                    >= 2
        },
    );
    crate::common::janitor::sigterm(&child);
    let started = std::time::Instant::now();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        took < Duration::from_secs(15),
        "ended {took:?} after SIGTERM"
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a report");
    assert_eq!(report["interrupted"], true);
    let t = &report["targets"][0];
    let outcome = |id: &str| {
        t["uploads"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["upload_id"] == id)
            .map(|u| u["outcome"].as_str().unwrap().to_string())
    };
    assert_eq!(outcome("u-stuck").as_deref(), Some("interrupted"), "{t}");
    assert_eq!(outcome("u-a").as_deref(), Some("aborted"), "{t}");
    assert_eq!(outcome("u-b").as_deref(), Some("aborted"), "{t}");
    assert!(stderr.contains("grace ran out"), "{stderr}");
}

/// The vault `v` on `h`: stale after a day, a 2 s read timeout, 2 attempts a call.
fn vault_on(h: &Hostile) -> mpu_janitor::config::Target {
    let vault = mpu_janitor::config::Vault {
        name: "v".into(),
        account_id: "-".into(),
    };
    let mut t = on(h, mpu_janitor::config::RequestPathSetting::Auto);
    t.bucket = vault.label();
    t.settings.force_path_style = false;
    t.kind = mpu_janitor::config::Kind::Vault(vault);
    t
}

/// A Glacier ListMultipartUploads answer: `uploads` (description, id), all two days old.
fn vault_page(uploads: &[(&str, &str)], marker: Option<&str>) -> Answer {
    let list: Vec<serde_json::Value> = uploads
        .iter()
        .map(|(description, id)| {
            serde_json::json!({"ArchiveDescription": description, "CreationDate": two_days_ago(),
                "MultipartUploadId": id, "PartSizeInBytes": 1_048_576, "VaultARN": "arn:aws:glacier:us-east-1:012345678901:vaults/v"})
        })
        .collect();
    ok(serde_json::json!({"Marker": marker, "UploadsList": list}).to_string())
}

/// A Glacier ListParts answer of `n` parts of 1 MiB from part `first`, and `marker`.
fn vault_parts(first: u64, n: u64, marker: Option<&str>) -> Answer {
    let parts: Vec<serde_json::Value> = (first..first + n)
        .map(|i| {
            serde_json::json!({"RangeInBytes": format!("{}-{}", i * 1_048_576, (i + 1) * 1_048_576 - 1),
                "SHA256TreeHash": "00"})
        })
        .collect();
    ok(serde_json::json!({"ArchiveDescription": "a", "CreationDate": two_days_ago(), "Marker": marker,
        "MultipartUploadId": "up0", "PartSizeInBytes": 1_048_576, "Parts": parts,
        "VaultARN": "arn:aws:glacier:us-east-1:012345678901:vaults/v"}).to_string())
}

fn is_vault_listing(s: &Seen) -> bool {
    s.method == "GET" && s.uri.starts_with("/-/vaults/v/multipart-uploads?")
}

fn is_vault_list_parts(s: &Seen) -> bool {
    s.method == "GET" && s.uri.starts_with("/-/vaults/v/multipart-uploads/")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vaults_markers_that_cycle_stop_its_listing_and_its_list_parts() {
    // The vault's listing: markers A, B, A (opaque, so only a marker seen before can tell). The
    // one upload's ListParts: empty pages with markers P, Q, P. Both end, each after 3 calls.
    let h = Hostile::start(|req, earlier| {
        if is_vault_listing(req) {
            match earlier.iter().filter(|s| is_vault_listing(s)).count() {
                0 => vault_page(&[("a", "up0")], Some("A")),
                1 => vault_page(&[], Some("B")),
                _ => vault_page(&[], Some("A")),
            }
        } else if is_vault_list_parts(req) {
            let n = earlier.iter().filter(|s| is_vault_list_parts(s)).count();
            vault_parts(0, 0, Some(if n % 2 == 0 { "P" } else { "Q" }))
        } else {
            Answer::Body(204, vec![], String::new())
        }
    })
    .await;
    let r = sweep_on(&vault_on(&h)).await;
    let e = r.error.as_deref().unwrap_or_default();
    assert!(e.contains("came back after other pages"), "{e}");
    let up = r.uploads.iter().find(|u| u.upload_id == "up0").unwrap();
    assert_eq!(up.outcome, mpu_janitor::report::Outcome::Failed, "{up:?}");
    assert!(
        up.error
            .as_deref()
            .unwrap_or("")
            .contains("\"P\" came back"),
        "{:?}",
        up.error
    );
    let seen = h.seen();
    assert_eq!(seen.iter().filter(|s| is_vault_listing(s)).count(), 3);
    assert_eq!(seen.iter().filter(|s| is_vault_list_parts(s)).count(), 3);
    assert!(
        !seen.iter().any(Seen::is_abort),
        "nothing aborted: {seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vaults_list_parts_keeps_the_protocols_bounds() {
    // Upload "empty": truncated empty pages for ever (new markers): 10 calls. Upload "endless":
    // 1,000 parts a page for ever: refused past 10,000 parts, after 11 calls. Neither aborted.
    let h = Hostile::start(|req, earlier| {
        if is_vault_listing(req) {
            vault_page(&[("empty", "e0"), ("endless", "f0")], None)
        } else if is_vault_list_parts(req) {
            let id = if req.uri.contains("/e0") {
                "/e0"
            } else {
                "/f0"
            };
            let n = earlier
                .iter()
                .filter(|s| is_vault_list_parts(s) && s.uri.contains(id))
                .count() as u64;
            let marker = format!("m{n}");
            if id == "/e0" {
                vault_parts(0, 0, Some(&marker))
            } else {
                vault_parts(n * 1_000, 1_000, Some(&marker))
            }
        } else {
            Answer::Body(204, vec![], String::new())
        }
    })
    .await;
    let r = sweep_on(&vault_on(&h)).await;
    let error = |key: &str| {
        let u = r.uploads.iter().find(|u| u.key == key).unwrap();
        assert_eq!(u.outcome, mpu_janitor::report::Outcome::Failed, "{u:?}");
        u.error.clone().unwrap_or_default()
    };
    assert!(error("empty").contains("10 truncated pages in a row with no part"));
    assert!(error("endless").contains("more than 10000 parts"));
    let seen = h.seen();
    let calls = |id: &str| {
        seen.iter()
            .filter(|s| is_vault_list_parts(s) && s.uri.contains(id))
            .count()
    };
    assert_eq!((calls("/e0"), calls("/f0")), (10, 11), "{seen:?}");
    assert!(!seen.iter().any(Seen::is_abort));
}
