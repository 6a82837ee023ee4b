//! The Glacier endpoint's tests: through the real Glacier client (listings, parts, aborts,
//! faults, accounts, refused signatures), then raw requests for what the SDK never sends.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::state::{parse_part_marker, parse_upload_marker, part_marker, upload_marker};
use super::{API_VERSION, DEFAULT_ACCOUNT_ID, GlacierEndpoint, GlacierStats, UPLOAD_ID_LEN};

use std::fmt::Write as _;
use std::time::SystemTime;

use chrono::TimeDelta;
use tokio::net::TcpStream;

use aws_sdk_glacier::Client;
use aws_sdk_glacier::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_glacier::error::ProvideErrorMetadata as _;

const AK: &str = "AKIAGLACIERUNITTEST1";
const SK: &str = "glacier-unit-test-secret";
const MIB: u64 = 1024 * 1024;

async fn started() -> GlacierEndpoint {
    GlacierEndpoint::start(AK, SK).await.expect("endpoint")
}

/// The real SDK client, pointed at the endpoint.
fn client_with(ep: &GlacierEndpoint, access_key: &str, secret_key: &str) -> Client {
    let config = aws_sdk_glacier::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(ep.url())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(access_key, secret_key, None, None, "test"))
        .build();
    Client::from_conf(config)
}

fn client(ep: &GlacierEndpoint) -> Client {
    client_with(ep, AK, SK)
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("a timestamp")
        .with_timezone(&Utc)
}

#[tokio::test]
async fn listing_2500_uploads_takes_three_pages_with_every_id_once() {
    // 2,500 uploads in a vault, listed with limit 1000 from marker to marker.
    let ep = started().await;
    let base = at("2026-01-01T00:00:00Z");
    let mut seeded: Vec<String> = (0..2500)
        .map(|i| {
            ep.seed_upload(
                "-",
                "archive",
                &format!("backup-{i}"),
                base + TimeDelta::seconds(i),
                MIB,
                2,
            )
        })
        .collect();
    assert!(seeded.iter().all(|id| id.len() == UPLOAD_ID_LEN));

    let glacier = client(&ep);
    let (mut pages, mut listed, mut marker) = (Vec::new(), Vec::new(), None::<String>);
    loop {
        let out = glacier
            .list_multipart_uploads()
            .vault_name("archive")
            .limit(1000)
            .set_marker(marker.clone())
            .send()
            .await
            .expect("a page");
        let page = out.uploads_list();
        pages.push(page.len());
        listed.extend(
            page.iter()
                .map(|u| u.multipart_upload_id().unwrap_or_default().to_owned()),
        );
        marker = out.marker().map(str::to_owned);
        if let Some(m) = &marker {
            assert!(!seeded.contains(m), "the marker is not an upload id");
        } else {
            break;
        }
        assert!(pages.len() < 10, "the listing never ends");
    }
    assert_eq!(pages, [1000, 1000, 500]);
    assert_eq!(listed, seeded, "creation order, every id exactly once");
    seeded.sort();
    seeded.dedup();
    assert_eq!(seeded.len(), 2500);

    let requests = ep.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(
        requests[0],
        "GET /-/vaults/archive/multipart-uploads?limit=1000"
    );
    assert!(requests[1].starts_with("GET /-/vaults/archive/multipart-uploads?limit=1000&marker="));
    assert_eq!(ep.stats().list_multipart_uploads, 3);
}

#[tokio::test]
async fn an_upload_lists_with_its_description_date_size_and_vault_arn() {
    // One upload seeded at a known time, listed with the default limit.
    let ep = started().await;
    let id = ep.seed_upload(
        "-",
        "photos",
        "my archive",
        at("2026-12-01T10:00:00Z"),
        4 * MIB,
        1,
    );
    let out = client(&ep)
        .list_multipart_uploads()
        .vault_name("photos")
        .send()
        .await
        .expect("a page");
    assert_eq!(out.marker(), None);
    let [up] = out.uploads_list() else {
        panic!("one upload: {out:?}");
    };
    assert_eq!(up.multipart_upload_id(), Some(id.as_str()));
    assert_eq!(up.archive_description(), Some("my archive"));
    assert_eq!(up.creation_date(), Some("2026-12-01T10:00:00.000Z"));
    assert_eq!(u64::try_from(up.part_size_in_bytes()), Ok(4 * MIB));
    assert_eq!(
        up.vault_arn(),
        Some("arn:aws:glacier:us-east-1:111122223333:vaults/photos")
    );
    assert_eq!(
        ep.requests(),
        ["GET /-/vaults/photos/multipart-uploads"],
        "no limit sent, none added"
    );
}

#[tokio::test]
async fn list_parts_pages_the_full_byte_ranges_of_an_upload() {
    // Three 1 MiB parts, listed two at a time.
    let ep = started().await;
    let created = at("2026-03-04T05:06:07.250Z");
    let id = ep.seed_upload("-", "v", "three parts", created, MIB, 3);
    let glacier = client(&ep);

    let first = glacier
        .list_parts()
        .vault_name("v")
        .upload_id(&id)
        .limit(2)
        .send()
        .await
        .expect("parts");
    let ranges: Vec<&str> = first
        .parts()
        .iter()
        .filter_map(|p| p.range_in_bytes())
        .collect();
    assert_eq!(ranges, ["0-1048575", "1048576-2097151"]);
    assert!(first.parts().iter().all(|p| {
        p.sha256_tree_hash()
            .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
    }));
    assert_eq!(first.multipart_upload_id(), Some(id.as_str()));
    assert_eq!(first.archive_description(), Some("three parts"));
    assert_eq!(first.creation_date(), Some("2026-03-04T05:06:07.250Z"));
    assert_eq!(u64::try_from(first.part_size_in_bytes()), Ok(MIB));
    assert_eq!(
        first.vault_arn(),
        Some("arn:aws:glacier:us-east-1:111122223333:vaults/v")
    );

    let marker = first.marker().expect("a second page");
    let second = glacier
        .list_parts()
        .vault_name("v")
        .upload_id(&id)
        .limit(2)
        .marker(marker)
        .send()
        .await
        .expect("parts");
    let ranges: Vec<&str> = second
        .parts()
        .iter()
        .filter_map(|p| p.range_in_bytes())
        .collect();
    assert_eq!(ranges, ["2097152-3145727"]);
    assert_eq!(second.marker(), None);
    assert_eq!(ep.stats().list_parts, 2);
}

#[tokio::test]
async fn an_aborted_upload_answers_resource_not_found() {
    // Abort an upload, then list its parts and abort it again; an unknown vault too.
    let ep = started().await;
    let id = ep.seed_upload("-", "v", "doomed", Utc::now(), MIB, 4);
    let keep = ep.seed_upload("-", "v", "kept", Utc::now(), MIB, 1);
    let glacier = client(&ep);

    glacier
        .abort_multipart_upload()
        .vault_name("v")
        .upload_id(&id)
        .send()
        .await
        .expect("aborted");
    let err = glacier
        .list_parts()
        .vault_name("v")
        .upload_id(&id)
        .send()
        .await
        .expect_err("gone");
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_resource_not_found_exception()),
        "{err:?}"
    );
    let err = glacier
        .abort_multipart_upload()
        .vault_name("v")
        .upload_id(&id)
        .send()
        .await
        .expect_err("gone");
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_resource_not_found_exception()),
        "{err:?}"
    );
    let err = glacier
        .list_multipart_uploads()
        .vault_name("no-such-vault")
        .send()
        .await
        .expect_err("no vault");
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_resource_not_found_exception()),
        "{err:?}"
    );

    let left: Vec<String> = ep
        .uploads("-", "v")
        .into_iter()
        .map(|u| u.upload_id)
        .collect();
    assert_eq!(left, [keep]);
    let stats = ep.stats();
    assert_eq!((stats.abort_multipart_upload, stats.aborts_removed), (2, 1));
    assert_eq!(stats.aborts_for_upload(&id), 2);
    assert_eq!(
        ep.requests()[0],
        format!("DELETE /-/vaults/v/multipart-uploads/{id}")
    );
}

#[tokio::test]
async fn a_straggler_needs_two_aborts_and_a_never_empty_upload_stays() {
    // One straggling abort for "late", every abort swallowed for "stuck".
    let ep = started().await;
    let late = ep.seed_upload("-", "v", "late", Utc::now(), MIB, 2);
    let stuck = ep.seed_upload("-", "v", "stuck", Utc::now(), MIB, 2);
    ep.update_faults(|f| {
        f.stragglers.insert("late".to_owned(), 1);
        f.never_empty.insert("stuck".to_owned());
    });
    let glacier = client(&ep);
    let abort = |id: String| {
        let glacier = glacier.clone();
        async move {
            glacier
                .abort_multipart_upload()
                .vault_name("v")
                .upload_id(id)
                .send()
                .await
                .expect("204")
        }
    };
    let parts_of = |id: String| {
        let glacier = glacier.clone();
        async move {
            glacier
                .list_parts()
                .vault_name("v")
                .upload_id(id)
                .send()
                .await
                .map(|out| out.parts().len())
        }
    };

    abort(late.clone()).await;
    assert_eq!(
        parts_of(late.clone()).await.expect("still there"),
        2,
        "the first abort kept it and its parts"
    );
    abort(late.clone()).await;
    assert!(
        parts_of(late.clone()).await.is_err(),
        "the second removed it"
    );

    for _ in 0..3 {
        abort(stuck.clone()).await;
    }
    assert_eq!(parts_of(stuck.clone()).await.expect("never empty"), 2);
    assert_eq!(ep.upload_count("-", "v"), 1);
    let stats = ep.stats();
    assert_eq!((stats.aborts_swallowed, stats.aborts_removed), (4, 1));
    assert_eq!(stats.aborts_for_upload(&late), 2);
    assert_eq!(stats.aborts_for_upload(&stuck), 3);
}

#[tokio::test]
async fn the_account_id_is_sent_and_served_as_configured() {
    // A vault of the signer's account reached by its id and by `-`; another account's.
    let ep = started().await;
    ep.seed_upload(DEFAULT_ACCOUNT_ID, "mine", "a", Utc::now(), MIB, 1);
    ep.seed_upload("999988887777", "theirs", "b", Utc::now(), MIB, 1);
    let glacier = client(&ep);
    for account in [DEFAULT_ACCOUNT_ID, "-"] {
        let out = glacier
            .list_multipart_uploads()
            .account_id(account)
            .vault_name("mine")
            .send()
            .await
            .expect("a page");
        assert_eq!(out.uploads_list().len(), 1, "{account}");
    }
    let out = glacier
        .list_multipart_uploads()
        .account_id("999988887777")
        .vault_name("theirs")
        .send()
        .await
        .expect("a page");
    assert_eq!(
        out.uploads_list()[0].vault_arn(),
        Some("arn:aws:glacier:us-east-1:999988887777:vaults/theirs")
    );
    let err = glacier
        .list_multipart_uploads()
        .vault_name("theirs")
        .send()
        .await
        .expect_err("not the signer's vault");
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_resource_not_found_exception()),
        "{err:?}"
    );
    assert_eq!(
        ep.requests(),
        [
            "GET /111122223333/vaults/mine/multipart-uploads",
            "GET /-/vaults/mine/multipart-uploads",
            "GET /999988887777/vaults/theirs/multipart-uploads",
            "GET /-/vaults/theirs/multipart-uploads",
        ]
    );

    let err = glacier
        .list_multipart_uploads()
        .account_id("not-an-account")
        .vault_name("mine")
        .send()
        .await
        .expect_err("a bad account id");
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_invalid_parameter_value_exception()),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_wrong_secret_or_an_unknown_key_is_refused_with_403() {
    // The start key with a guessed secret, then a key the endpoint does not know.
    let ep = started().await;
    ep.create_vault("-", "v");
    let cases = [
        (client_with(&ep, AK, "guess"), "InvalidSignatureException"),
        (
            client_with(&ep, "AKIAUNKNOWN", SK),
            "UnrecognizedClientException",
        ),
    ];
    for (glacier, code) in cases {
        let err = glacier
            .list_multipart_uploads()
            .vault_name("v")
            .send()
            .await
            .expect_err("refused");
        let status = err.raw_response().map(|r| r.status().as_u16());
        assert_eq!((status, err.code()), (Some(403), Some(code)), "{err:?}");
    }
    let stats = ep.stats();
    assert_eq!((stats.requests, stats.rejected), (2, 2));
    assert_eq!(stats.list_multipart_uploads, 0, "no operation reached");
    assert_eq!(ep.requests().len(), 2, "rejected requests are logged too");

    ep.add_key("AKIAUNKNOWN", SK, "444455556666");
    ep.create_vault("444455556666", "v");
    let out = client_with(&ep, "AKIAUNKNOWN", SK)
        .list_multipart_uploads()
        .vault_name("v")
        .send()
        .await
        .expect("an added key");
    assert!(out.uploads_list().is_empty());

    ep.reset_requests();
    assert!(ep.requests().is_empty());
    assert_eq!(ep.stats(), GlacierStats::default());
}

#[tokio::test]
async fn bad_limits_and_markers_answer_invalid_parameter_value() {
    // Limits outside 1..=1000 and a marker the endpoint never gave.
    let ep = started().await;
    ep.create_vault("-", "v");
    let glacier = client(&ep);
    for limit in [0, 1001] {
        let err = glacier
            .list_multipart_uploads()
            .vault_name("v")
            .limit(limit)
            .send()
            .await
            .expect_err("bad limit");
        assert!(
            err.as_service_error()
                .is_some_and(|e| e.is_invalid_parameter_value_exception()),
            "{limit}: {err:?}"
        );
    }
    // Characters the signer and the verifier must encode alike.
    let err = glacier
        .list_multipart_uploads()
        .vault_name("v")
        .marker("a b+c/d=é&x")
        .send()
        .await
        .expect_err("bad marker");
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_invalid_parameter_value_exception()),
        "signed alike, so refused for the marker only: {err:?}"
    );
}

// -----------------------------------------------------------------------------------
// Through raw HTTP: what the SDK hides (headers, bodies, unsigned requests).

struct Reply {
    status: u16,
    head: String,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Sends a request with these headers and an empty body on a new connection.
async fn send_raw(
    ep: &GlacierEndpoint,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> Reply {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let mut request = format!("{method} {target} HTTP/1.1\r\n");
    for (k, v) in headers {
        let _ = write!(request, "{k}: {v}\r\n");
    }
    request.push_str("connection: close\r\n\r\n");
    let mut stream = TcpStream::connect(ep.addr()).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("a reply");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    Reply {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

/// Signs a request with the SDK's own signer (region eu-west-1, a session token) and sends
/// it as signed.
async fn send_signed(ep: &GlacierEndpoint, method: &str, target: &str) -> Reply {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};

    let host = ep.addr().to_string();
    let identity = Credentials::new(
        AK,
        SK,
        Some("FQoGZXIvYXdz+session/token=".into()),
        None,
        "test",
    )
    .into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("eu-west-1")
        .name("glacier")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .expect("params")
        .into();
    let url = format!("http://{host}{target}");
    let unsigned = [("x-amz-glacier-version", API_VERSION)];
    let signable = SignableRequest::new(
        method,
        url.as_str(),
        unsigned.iter().copied(),
        SignableBody::Bytes(&[]),
    )
    .expect("signable");
    let (instructions, _) = sign(signable, &params).expect("signed").into_parts();
    let mut headers: Vec<(&str, &str)> = vec![("host", host.as_str())];
    headers.extend(unsigned);
    headers.extend(instructions.headers());
    assert!(
        headers.iter().any(|(k, _)| *k == "x-amz-security-token"),
        "{headers:?}"
    );
    send_raw(ep, method, target, &headers).await
}

#[tokio::test]
async fn the_sdk_signer_is_verified_on_odd_paths_and_queries() {
    // Dot segments, an encoded upload id, encoded query characters, a session token and
    // another region, signed by aws-sigv4 and checked by this module's own verifier.
    let ep = started().await;
    ep.seed_upload("-", "odd.vault", "x", Utc::now(), MIB, 1);

    let reply = send_signed(
        &ep,
        "GET",
        "/-/vaults/elsewhere/../odd.vault/multipart-uploads?limit=7",
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let body: Value = serde_json::from_str(&reply.body).expect("json");
    assert_eq!(
        body["UploadsList"][0]["VaultARN"],
        "arn:aws:glacier:eu-west-1:111122223333:vaults/odd.vault",
        "the ARN names the signing region"
    );
    assert_eq!(body["Marker"], Value::Null);

    let reply = send_signed(
        &ep,
        "GET",
        // Sent as no canonical query is: `+` for a space, lowercase hex, a bare `*`.
        "/-/vaults/odd.vault/multipart-uploads?marker=a+b%2fc%C3%A9*&limit=5",
    )
    .await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert_eq!(
        reply.header("x-amzn-errortype"),
        Some("InvalidParameterValueException")
    );

    let reply = send_signed(
        &ep,
        "DELETE",
        "/-/vaults/odd.vault/multipart-uploads/up%2Fid%20x",
    )
    .await;
    assert_eq!(reply.status, 404, "{}", reply.body);
    assert!(
        reply
            .body
            .contains("Multipart upload not found for upload ID: up/id x"),
        "{}",
        reply.body
    );
    assert_eq!(
        ep.requests()[2],
        "DELETE /-/vaults/odd.vault/multipart-uploads/up%2Fid%20x",
        "logged as sent"
    );
    assert_eq!(ep.stats().rejected, 0);
}

#[tokio::test]
async fn an_unsigned_request_answers_a_glacier_error_document_with_a_date() {
    // No Authorization header at all; then a signed request without the API version.
    let ep = started().await;
    let reply = send_raw(
        &ep,
        "GET",
        "/-/vaults/v/multipart-uploads",
        &[("host", "localhost")],
    )
    .await;
    assert_eq!(reply.status, 403);
    assert_eq!(
        reply.header("x-amzn-errortype"),
        Some("MissingAuthenticationTokenException")
    );
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert!(reply.header("date").is_some(), "{}", reply.head);
    assert!(reply.header("x-amzn-requestid").is_some(), "{}", reply.head);
    let body: Value = serde_json::from_str(&reply.body).expect("json");
    assert_eq!(
        body,
        json!({
            "code": "MissingAuthenticationTokenException",
            "message": "Missing Authentication Token",
            "type": "Client",
        })
    );
    assert_eq!(ep.stats().rejected, 1);
}

#[test]
fn markers_round_trip_and_reject_anything_else() {
    // Both kinds of marker, and strings the endpoint never gave.
    let t = at("2026-05-06T07:08:09.123456789Z");
    let m = upload_marker(t, "abc-_XYZ");
    assert_eq!(parse_upload_marker(&m), Some((t, "abc-_XYZ".to_owned())));
    assert_eq!(parse_part_marker(&part_marker(41)), Some(41));
    for bad in ["", "zz", "abc", &part_marker(3)] {
        assert_eq!(parse_upload_marker(bad), None, "{bad:?}");
    }
    assert_eq!(parse_part_marker(&m), None);
}

#[tokio::test]
async fn shutdown_closes_the_port() {
    // A started endpoint, shut down: nothing listens any more.
    let ep = started().await;
    let addr = ep.addr();
    ep.shutdown().await;
    assert!(TcpStream::connect(addr).await.is_err());
}
