//! [`S3Store`], the store of an S3 bucket (or access point): its calls go through the request path
//! chosen once when the store was built ([`RequestPath`], see [`super::connect`]).

use std::future::Future;

use chrono::{DateTime, Utc};

use super::error::with_virtual_host_hint;
use super::lean::Route;
use super::sdk::SdkBucket;
use super::{
    Aborted, MAX_PARTS, Marker, Operation, Parts, PartsPage, StoreError, UploadPage, UploadStore,
};

/// How the calls of one bucket are sent.
pub(crate) enum RequestPath {
    /// Through the lean path: hyper, signed by aws-sigv4 ([`super::lean`]).
    Lean(Route),
    /// Through aws-sdk-s3's pipeline (`request_path = "sdk"`, endpoints that are not plain SigV4).
    Sdk,
}

/// An S3 bucket.
pub struct S3Store {
    bucket: String,
    sdk: SdkBucket,
    path: RequestPath,
    /// A directory bucket: opaque, unsorted listing markers, and aborts conditional on the
    /// initiation time judged. Its calls take the SDK path (session authentication).
    directory: bool,
    /// The bucket's `CreationDate` in ListBuckets can be trusted and had: a general-purpose
    /// bucket on an S3-compatible store (AWS moves the date when a bucket's policy is edited).
    dated: bool,
    /// The creation date a bucket listing already gave (discovery's), so none is asked for.
    known_created: Option<DateTime<Utc>>,
    /// The virtual-hosted name requests go to (`bucket.host`) on a custom endpoint, to name it
    /// when it does not resolve.
    virtual_host: Option<String>,
}

impl S3Store {
    pub(crate) fn new(
        bucket: &str,
        sdk: SdkBucket,
        path: RequestPath,
        directory: bool,
        dated: bool,
        virtual_host: Option<String>,
    ) -> Self {
        S3Store {
            bucket: bucket.to_string(),
            sdk,
            path,
            directory,
            dated,
            known_created: None,
            virtual_host,
        }
    }

    /// The store, with the bucket's creation date as a listing of buckets already gave it.
    pub fn created(mut self, created: Option<DateTime<Utc>>) -> Self {
        self.known_created = created;
        self
    }

    /// The request path of ListParts and AbortMultipartUpload: `"lean"` or `"sdk"`.
    pub fn request_path(&self) -> &'static str {
        match self.path {
            RequestPath::Lean(_) => "lean",
            RequestPath::Sdk => "sdk",
        }
    }

    async fn parts_page(
        &self,
        key: &str,
        upload_id: &str,
        marker: Option<&str>,
    ) -> Result<Option<PartsPage>, StoreError> {
        match &self.path {
            RequestPath::Lean(route) => route.parts_page(key, upload_id, marker).await,
            RequestPath::Sdk => self.sdk.parts_page(key, upload_id, marker).await,
        }
    }
}

impl UploadStore for S3Store {
    fn bucket(&self) -> &str {
        &self.bucket
    }

    async fn list_uploads(
        &self,
        prefix: &str,
        marker: Option<&Marker>,
    ) -> Result<UploadPage, StoreError> {
        let page = match &self.path {
            RequestPath::Lean(route) => route.list_uploads(prefix, marker).await,
            RequestPath::Sdk => self.sdk.list_uploads(prefix, marker).await,
        };
        page.map_err(|e| with_virtual_host_hint(e, self.virtual_host.as_deref()))
    }

    async fn list_parts(&self, key: &str, upload_id: &str) -> Result<Parts, StoreError> {
        all_parts(key, upload_id, |marker| async move {
            self.parts_page(key, upload_id, marker.as_deref()).await
        })
        .await
    }

    async fn abort(
        &self,
        key: &str,
        upload_id: &str,
        initiated: Option<DateTime<Utc>>,
    ) -> Result<Aborted, StoreError> {
        // Only directory buckets honour If-Match-Initiated-Time; they take the SDK path.
        let condition = initiated.filter(|_| self.directory);
        match &self.path {
            RequestPath::Lean(route) if condition.is_none() => route.abort(key, upload_id).await,
            _ => self.sdk.abort(key, upload_id, condition).await,
        }
    }

    fn ordered_markers(&self) -> bool {
        !self.directory
    }

    /// Through the SDK on either path: one call a sweep.
    async fn lifecycle_rules(&self) -> Option<Result<Vec<crate::lifecycle::Rule>, StoreError>> {
        Some(self.sdk.lifecycle_rules().await)
    }

    /// ListBuckets through the SDK, once a sweep, where the date can be trusted.
    async fn bucket_created(&self) -> Option<Result<DateTime<Utc>, StoreError>> {
        if !self.dated {
            return None;
        }
        if let Some(known) = self.known_created {
            return Some(Ok(known));
        }
        self.sdk.bucket_created().await.transpose()
    }

    fn throttled(&self) -> u64 {
        match &self.path {
            RequestPath::Lean(route) => route.throttled(),
            RequestPath::Sdk => self.sdk.throttled(),
        }
    }
}

/// Every part of an upload, following `NextPartNumberMarker` from page to page; `page(marker)`
/// answers `None` for NoSuchUpload. Bounded by the protocol: a truncated page that does not move
/// the marker forward, a marker or part number past [`MAX_PARTS`], or more parts than that, is a
/// protocol error (the upload is kept), so a server that never stops cannot hold a sweep.
async fn all_parts<F, Fut>(key: &str, upload_id: &str, mut page: F) -> Result<Parts, StoreError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<Option<PartsPage>, StoreError>>,
{
    let problem = |what: String| {
        StoreError::protocol(
            Operation::ListParts,
            format!("ListParts of {key:?} (upload {upload_id}): {what}"),
        )
    };
    let mut parts = Vec::new();
    let mut marker: Option<String> = None;
    let mut last = 0u64;
    loop {
        let Some(p) = page(marker.clone()).await? else {
            return Ok(Parts::Gone);
        };
        if let Some(bad) = p
            .parts
            .iter()
            .find(|part| !(1..=MAX_PARTS as i64).contains(&i64::from(part.number)))
        {
            return Err(problem(format!(
                "part number {} is outside 1..={MAX_PARTS}",
                bad.number
            )));
        }
        parts.extend(p.parts);
        if parts.len() > MAX_PARTS {
            return Err(problem(format!(
                "more than {MAX_PARTS} parts listed, more than an upload can hold"
            )));
        }
        if !p.truncated {
            return Ok(Parts::Listed(parts));
        }
        let next = p.next.as_deref().map(|m| (m, m.parse::<u64>()));
        match next {
            Some((_, Ok(n))) if n > last && n <= MAX_PARTS as u64 => last = n,
            Some((m, Ok(n))) if n > last => {
                return Err(problem(format!(
                    "truncated with part marker {m}, past the last part number {MAX_PARTS}"
                )));
            }
            Some((m, _)) => {
                return Err(problem(format!(
                    "truncated but the part marker {m:?} does not advance past {marker:?}"
                )));
            }
            None => {
                return Err(problem(format!(
                    "truncated but gives no part marker after {marker:?}"
                )));
            }
        }
        marker = p.next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Part;

    fn part(number: i32) -> Part {
        Part {
            number,
            etag: String::new(),
            size: 1,
            last_modified: None,
        }
    }

    /// Lists with a server that answers `pages(marker)`, counting the requests.
    fn list(pages: impl Fn(u64) -> PartsPage) -> (Result<Parts, StoreError>, u64) {
        let mut calls = 0;
        let result = futures::executor::block_on(all_parts("k", "u", |marker| {
            calls += 1;
            let m = marker.map_or(0, |m| m.parse().unwrap());
            let page = pages(m);
            async move { Ok(Some(page)) }
        }));
        (result, calls)
    }

    #[test]
    fn a_listing_of_parts_ends_within_the_protocols_bounds() {
        // A server whose pages never end, one part a page and the marker advancing: stops at the
        // first part number past the protocol's last, after 10,001 requests, never more.
        let (r, calls) = list(|m| PartsPage {
            parts: vec![part(m as i32 + 1)],
            truncated: true,
            next: Some((m + 1).to_string()),
        });
        let e = r.unwrap_err();
        assert_eq!(e.kind, crate::store::ErrorKind::Protocol);
        assert!(e.message.contains("part number 10001 is outside"), "{e}");
        assert_eq!(calls, 10_001);
        // The same with empty pages: the marker alone runs out.
        let (r, calls) = list(|m| PartsPage {
            parts: vec![],
            truncated: true,
            next: Some((m + 1).to_string()),
        });
        assert!(r.unwrap_err().message.contains("past the last part number"));
        assert_eq!(calls, 10_001);
        // Part numbers past 10,000, or more than 10,000 parts, are refused on the page they show.
        let (r, calls) = list(|_| PartsPage {
            parts: vec![part(10_001)],
            truncated: false,
            next: None,
        });
        assert!(r.unwrap_err().message.contains("outside 1..=10000"));
        assert_eq!(calls, 1);
        let (r, calls) = list(|m| PartsPage {
            parts: (1..=1000).map(|n| part(n + m as i32 % 10_000)).collect(),
            truncated: true,
            next: Some((m + 1).to_string()),
        });
        assert!(r.unwrap_err().message.contains("more than 10000 parts"));
        assert_eq!(calls, 11);
        // A marker that stays or goes back.
        for next in ["0", "x", ""] {
            let (r, _) = list(|_| PartsPage {
                parts: vec![part(1)],
                truncated: true,
                next: Some(next.to_string()).filter(|n| !n.is_empty()),
            });
            assert!(r.unwrap_err().message.contains("truncated but"), "{next:?}");
        }
        // An honest upload of 2,500 parts over 3 pages.
        let (r, calls) = list(|m| PartsPage {
            parts: (m + 1..=(m + 1000).min(2_500))
                .map(|n| part(n as i32))
                .collect(),
            truncated: m + 1000 < 2_500,
            next: Some((m + 1000).to_string()),
        });
        assert!(matches!(r, Ok(Parts::Listed(p)) if p.len() == 2_500));
        assert_eq!(calls, 3);
    }
}
