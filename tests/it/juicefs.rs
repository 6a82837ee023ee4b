//! The JuiceFS S3 gateway's own: it names itself MinIO (`Server: MinIO`, being MinIO's gateway code
//! of February 2021) but lists uploads bucket-wide, so an empty listing there is the truth, not the
//! blindness of a MinIO that lists only exact keys. What tells the two apart is MinIO's
//! `X-Content-Type-Options`, sent since July 2021 and absent from the gateway's answers: checked
//! here on the real gateway, then an empty bucket (never used, and emptied by a sweep) is swept
//! `[ok]` on both request paths. The shared scenarios run on it through `servers()`.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use crate::common::garage::{list_all, seed_many};
use crate::common::juicefs::juicefs;
use crate::common::target;

/// The header lines of the gateway's answer to an unsigned bucket-wide ListMultipartUploads (a 403:
/// the same headers as every answer, which one middleware sets), lowercased.
fn listing_headers(endpoint: &str, bucket: &str) -> Vec<String> {
    let addr = endpoint.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).expect("connect to the gateway");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET /{bucket}?uploads HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    head.lines().skip(1).map(str::to_ascii_lowercase).collect()
}

#[test]
fn an_empty_juicefs_bucket_sweeps_ok_never_blind() {
    let g = juicefs();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = g.client();
    let fresh = rt.block_on(g.bucket("jfs-empty"));
    let emptied = rt.block_on(g.bucket("jfs-emptied"));

    let headers = listing_headers(&g.endpoint, &fresh);
    assert!(
        headers.iter().any(|h| h == "server: minio"),
        "the gateway names itself MinIO: {headers:?}"
    );
    assert!(
        !headers
            .iter()
            .any(|h| h.starts_with("x-content-type-options:")),
        "the gateway sends no X-Content-Type-Options (what tells it from MinIO): {headers:?}"
    );

    // `emptied` had 3 uploads, aborted by a first sweep: its listing then answers like MinIO's of
    // 2021 in every field (a never-used bucket answers MaxUploads 0, the only other sign).
    rt.block_on(seed_many(&client, &emptied, 3, |i| {
        (format!("e/{i}"), vec![4])
    }));
    let r = rt.block_on(g.sweep_at(&target(&emptied, g.settings()), 8));
    assert_eq!((r.error, r.aborted), (None, 3));
    assert!(rt.block_on(list_all(&client, &emptied)).is_empty());
    for path in ["auto", "sdk"] {
        for bucket in [&fresh, &emptied] {
            let text = format!(
                "[defaults]\n{}older_than = \"1s\"\nrequest_path = \"{path}\"\n[[targets]]\nbucket = \"{bucket}\"\n",
                g.defaults_toml()
            );
            let out = g.janitor(&text, &["--log-level", "info", "once"]);
            assert_eq!(
                out.code, 0,
                "{path} {bucket}: {}\n{}",
                out.stdout, out.stderr
            );
            assert!(
                out.stdout.contains("[ok]") && !out.stdout.contains("blind"),
                "{path} {bucket}: {}",
                out.stdout
            );
            assert!(
                out.stderr.contains("taken as the JuiceFS S3 gateway"),
                "{path} {bucket}: an empty listing says why it is believed: {}",
                out.stderr
            );
        }
    }
}
