//! A hostile S3 endpoint: a small HTTP server on loopback whose every answer is scripted by the test
//! (endless pages, pages larger than the protocol allows, bodies that trickle in, malformed XML,
//! redirects), recording every request it received and every body byte it sent. It checks no
//! signature: what it tests is what the janitor does with the answers, not how it signs.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    /// `GET`, `DELETE`...
    pub method: String,
    /// Path and query, as sent.
    pub uri: String,
}

impl Seen {
    /// A ListMultipartUploads request.
    pub fn is_listing(&self) -> bool {
        self.method == "GET" && self.uri.contains("?uploads")
    }

    /// A ListParts request.
    pub fn is_list_parts(&self) -> bool {
        self.method == "GET" && self.uri.contains("uploadId=")
    }

    /// An AbortMultipartUpload request.
    pub fn is_abort(&self) -> bool {
        self.method == "DELETE"
    }
}

/// What the server answers.
pub enum Answer {
    /// A status, extra headers and a whole body.
    Body(u16, Vec<(&'static str, String)>, String),
    /// 200 with a body sent one chunk at a time, `every` apart.
    Trickle(Vec<u8>, Duration),
    /// 200 with `head`, then `chunk` repeated until `total` bytes are sent (or the client leaves).
    Huge {
        head: String,
        chunk: String,
        total: u64,
    },
}

/// 200 with this XML.
pub fn ok(xml: impl Into<String>) -> Answer {
    Answer::Body(200, vec![], xml.into())
}

/// ListBuckets: bucket `b`, created long before any upload the scripts date.
const BUCKETS: &str = "<ListAllMyBucketsResult><Buckets><Bucket><Name>b</Name><CreationDate>2020-01-01T00:00:00.000Z</CreationDate></Bucket></Buckets></ListAllMyBucketsResult>";

/// A running hostile server.
pub struct Hostile {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    seen: Arc<parking_lot::Mutex<Vec<Seen>>>,
    sent: Arc<AtomicU64>,
}

type Script = dyn Fn(&Seen, &[Seen]) -> Answer + Send + Sync;

impl Hostile {
    /// Starts a server answering each request with `script(request, earlier requests)`.
    pub async fn start(script: impl Fn(&Seen, &[Seen]) -> Answer + Send + Sync + 'static) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(parking_lot::Mutex::new(Vec::<Seen>::new()));
        let sent = Arc::new(AtomicU64::new(0));
        let script: Arc<Script> = Arc::new(script);
        let (s, n) = (seen.clone(), sent.clone());
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (seen, sent, script) = (s.clone(), n.clone(), script.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let request = Seen {
                            method: req.method().to_string(),
                            uri: req
                                .uri()
                                .path_and_query()
                                .map(|p| p.to_string())
                                .unwrap_or_default(),
                        };
                        // The lifecycle audit after each sweep, and the ListBuckets before it
                        // that dates the bucket, are answered here, outside the script and the
                        // record: these tests are about the sweep's own calls.
                        let answer = if request.method == "GET"
                            && request.uri.contains("?lifecycle")
                        {
                            Answer::Body(
                                404,
                                vec![],
                                "<Error><Code>NoSuchLifecycleConfiguration</Code></Error>".into(),
                            )
                        } else if request.method == "GET"
                            && (request.uri == "/" || request.uri.starts_with("/?"))
                        {
                            ok(BUCKETS)
                        } else {
                            let mut all = seen.lock();
                            let answer = script(&request, &all);
                            all.push(request);
                            answer
                        };
                        let response = respond(answer, sent.clone());
                        async move { Ok::<_, Infallible>(response) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service)
                        .await;
                });
            }
        });
        Hostile { url, seen, sent }
    }

    /// Every request received so far (but the lifecycle audit's).
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().clone()
    }

    /// Body bytes sent so far.
    pub fn bytes_sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }
}

fn respond(answer: Answer, sent: Arc<AtomicU64>) -> Response<BoxBody<Bytes, Infallible>> {
    let date = httpdate::fmt_http_date(std::time::SystemTime::now());
    let (status, headers, body) = match answer {
        Answer::Body(status, headers, body) => {
            sent.fetch_add(body.len() as u64, Ordering::SeqCst);
            (status, headers, Full::new(Bytes::from(body)).boxed())
        }
        Answer::Trickle(bytes, every) => {
            let stream = futures::stream::unfold(0, move |i| {
                let (bytes, sent) = (bytes.clone(), sent.clone());
                async move {
                    if i >= bytes.len() {
                        return None;
                    }
                    if i > 0 {
                        tokio::time::sleep(every).await;
                    }
                    sent.fetch_add(1, Ordering::SeqCst);
                    Some((
                        Ok(Frame::data(Bytes::copy_from_slice(&bytes[i..=i]))),
                        i + 1,
                    ))
                }
            });
            (200, vec![], StreamBody::new(stream).boxed())
        }
        Answer::Huge { head, chunk, total } => {
            let chunk = Bytes::from(chunk.repeat((64 << 10) / chunk.len().max(1) + 1));
            let stream = futures::stream::unfold(0u64, move |done| {
                let (head, chunk, sent) = (head.clone(), chunk.clone(), sent.clone());
                async move {
                    if done >= total {
                        return None;
                    }
                    let data = if done == 0 { Bytes::from(head) } else { chunk };
                    sent.fetch_add(data.len() as u64, Ordering::SeqCst);
                    let n = data.len() as u64;
                    Some((Ok(Frame::data(data)), done + n))
                }
            });
            (200, vec![], StreamBody::new(stream).boxed())
        }
    };
    let mut response = Response::builder()
        .status(status)
        .header("content-type", "application/xml");
    // A scripted `date` (a store's clock that disagrees with this host's) replaces the real one.
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("date"))
    {
        response = response.header("date", date);
    }
    for (name, value) in headers {
        response = response.header(name, value);
    }
    response.body(body).unwrap()
}

/// A ListMultipartUploads page of `(key, upload id, initiated)` entries, truncated at `next`.
pub fn listing(entries: &[(&str, &str, &str)], next: Option<(&str, &str)>) -> String {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListMultipartUploadsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Bucket>b</Bucket>",
    );
    if let Some((key, id)) = next {
        xml.push_str(&format!(
            "<NextKeyMarker>{key}</NextKeyMarker><NextUploadIdMarker>{id}</NextUploadIdMarker><IsTruncated>true</IsTruncated>"
        ));
    } else {
        xml.push_str("<IsTruncated>false</IsTruncated>");
    }
    for (key, id, initiated) in entries {
        xml.push_str(&format!(
            "<Upload><Key>{key}</Key><UploadId>{id}</UploadId><Initiated>{initiated}</Initiated></Upload>"
        ));
    }
    xml.push_str("</ListMultipartUploadsResult>");
    xml
}

/// A ListParts page of parts `numbers` (1,000 bytes each), truncated at `next`.
pub fn parts(numbers: impl IntoIterator<Item = u32>, next: Option<u32>) -> String {
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListPartsResult>");
    match next {
        Some(n) => xml.push_str(&format!(
            "<NextPartNumberMarker>{n}</NextPartNumberMarker><IsTruncated>true</IsTruncated>"
        )),
        None => xml.push_str("<IsTruncated>false</IsTruncated>"),
    }
    for n in numbers {
        xml.push_str(&format!(
            "<Part><PartNumber>{n}</PartNumber><ETag>\"e{n}\"</ETag><Size>1000</Size><LastModified>2020-01-01T00:00:00.000Z</LastModified></Part>"
        ));
    }
    xml.push_str("</ListPartsResult>");
    xml
}

/// The `uploadId` of a request, if it has one.
pub fn upload_id(seen: &Seen) -> &str {
    seen.uri
        .split_once("uploadId=")
        .map(|(_, rest)| rest.split('&').next().unwrap_or(""))
        .unwrap_or("")
}

/// An initiation time two days ago, as S3 writes it.
pub fn two_days_ago() -> String {
    (chrono::Utc::now() - chrono::TimeDelta::days(2))
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// The two request paths: the lean one (the default) and the SDK's.
pub const PATHS: [mpu_janitor::config::RequestPathSetting; 2] = [
    mpu_janitor::config::RequestPathSetting::Auto,
    mpu_janitor::config::RequestPathSetting::Sdk,
];

/// The target of bucket `b` on `h`, on request path `path`: stale after a day, a 2 s read
/// timeout, 2 attempts a call.
pub fn on(
    h: &Hostile,
    path: mpu_janitor::config::RequestPathSetting,
) -> mpu_janitor::config::Target {
    super::target(
        "b",
        mpu_janitor::config::Settings {
            older_than: mpu_janitor::config::HumanDuration::secs(86_400),
            read_timeout: mpu_janitor::config::HumanDuration::secs(2),
            retry_max_attempts: 2,
            request_path: path,
            ..super::settings_at(&h.url)
        },
    )
}

/// Sweeps `t` with test keys (the hostile endpoint checks no signature); a sweep that does not
/// end in 60 s fails the test.
pub async fn sweep_on(t: &mpu_janitor::config::Target) -> mpu_janitor::report::TargetReport {
    let connector = mpu_janitor::store::Connector::with_static_credentials("AKHOSTILE", "secret");
    let opts = mpu_janitor::sweep::SweepOptions {
        reabort_backoff: Duration::from_millis(1),
        ..Default::default()
    };
    tokio::time::timeout(
        Duration::from_secs(60),
        mpu_janitor::run::connect_and_sweep(t, &connector, &opts),
    )
    .await
    .expect("the sweep ends on its own")
}

/// NoSuchUpload, as S3 words it.
pub fn no_such_upload() -> Answer {
    Answer::Body(
        404,
        vec![],
        "<Error><Code>NoSuchUpload</Code><Message>gone</Message></Error>".into(),
    )
}

/// An honest store's answer to an upload's request: ListParts lists two parts of 1,000 bytes
/// until the upload is aborted, then NoSuchUpload; an abort answers 204.
pub fn honest(req: &Seen, earlier: &[Seen]) -> Answer {
    let aborted = earlier
        .iter()
        .any(|s| s.is_abort() && upload_id(s) == upload_id(req));
    if req.is_abort() {
        Answer::Body(204, vec![], String::new())
    } else if aborted {
        no_such_upload()
    } else {
        ok(parts([1, 2], None))
    }
}
