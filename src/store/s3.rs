//! [`S3Store`], the store of an S3 bucket (or access point): ListMultipartUploads through the SDK,
//! ListParts and AbortMultipartUpload through the request path chosen once when the store was
//! built ([`RequestPath`], see [`super::connect`]).

use std::future::Future;

use super::lean::Route;
use super::sdk::SdkBucket;
use super::{Aborted, Marker, Operation, Parts, PartsPage, StoreError, UploadPage, UploadStore};

/// How ListParts and AbortMultipartUpload are sent for one bucket.
pub(crate) enum RequestPath {
    /// Through the lean path: hyper, signed by aws-sigv4 ([`super::lean`]).
    Lean(Route),
    /// Through aws-sdk-s3's pipeline (adaptive retries, endpoints that are not plain SigV4).
    Sdk,
}

/// An S3 bucket.
pub struct S3Store {
    bucket: String,
    sdk: SdkBucket,
    path: RequestPath,
}

impl S3Store {
    pub(crate) fn new(bucket: &str, sdk: SdkBucket, path: RequestPath) -> Self {
        S3Store {
            bucket: bucket.to_string(),
            sdk,
            path,
        }
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
        self.sdk.list_uploads(prefix, marker).await
    }

    async fn list_parts(&self, key: &str, upload_id: &str) -> Result<Parts, StoreError> {
        all_parts(key, upload_id, |marker| async move {
            self.parts_page(key, upload_id, marker.as_deref()).await
        })
        .await
    }

    async fn abort(&self, key: &str, upload_id: &str) -> Result<Aborted, StoreError> {
        match &self.path {
            RequestPath::Lean(route) => route.abort(key, upload_id).await,
            RequestPath::Sdk => self.sdk.abort(key, upload_id).await,
        }
    }
}

/// Every part of an upload, following `NextPartNumberMarker` from page to page; `page(marker)`
/// answers `None` for NoSuchUpload. A truncated page that does not advance is a protocol error.
async fn all_parts<F, Fut>(key: &str, upload_id: &str, mut page: F) -> Result<Parts, StoreError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<Option<PartsPage>, StoreError>>,
{
    let mut parts = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let Some(p) = page(marker.clone()).await? else {
            return Ok(Parts::Gone);
        };
        parts.extend(p.parts);
        if !p.truncated {
            return Ok(Parts::Listed(parts));
        }
        if p.next.is_none() || p.next == marker {
            return Err(StoreError::protocol(
                Operation::ListParts,
                format!(
                    "ListParts of {key:?} (upload {upload_id}) is truncated but does not advance past part marker {marker:?}"
                ),
            ));
        }
        marker = p.next;
    }
}
