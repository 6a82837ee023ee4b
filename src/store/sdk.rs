//! The calls made through aws-sdk-s3: ListMultipartUploads always (one request per 1,000 uploads),
//! and ListParts and AbortMultipartUpload when the store was built with the SDK request path.

use std::sync::Arc;

use aws_sdk_s3::Client;
use aws_sdk_s3::types::RequestPayer;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use chrono::{DateTime, Utc};

use super::error::{classify, sdk_means_gone};
use super::{
    Aborted, Marker, Operation, Part, PartsPage, StoreError, Upload, UploadPage, to_chrono,
};
use crate::config::Settings;

/// One bucket on an SDK client, with the per-call options of its target.
pub(crate) struct SdkBucket {
    client: Client,
    bucket: String,
    expected_owner: Option<String>,
    request_payer: Option<RequestPayer>,
}

impl SdkBucket {
    pub(crate) fn new(client: Client, bucket: &str, s: &Settings) -> Self {
        SdkBucket {
            client,
            bucket: bucket.to_string(),
            expected_owner: Some(s.expected_bucket_owner.clone()).filter(|s| !s.is_empty()),
            request_payer: s.request_payer.then_some(RequestPayer::Requester),
        }
    }

    /// One ListMultipartUploads page, markers exactly as the server returned them.
    pub(crate) async fn list_uploads(
        &self,
        prefix: &str,
        marker: Option<&Marker>,
    ) -> Result<UploadPage, StoreError> {
        let date = DateHeader::default();
        let out = self
            .client
            .list_multipart_uploads()
            .bucket(&self.bucket)
            .set_prefix(Some(prefix.to_string()).filter(|p| !p.is_empty()))
            .set_key_marker(marker.map(|m| m.key.clone()))
            .set_upload_id_marker(marker.and_then(|m| m.upload_id.clone()))
            .set_expected_bucket_owner(self.expected_owner.clone())
            .set_request_payer(self.request_payer.clone())
            .customize()
            .interceptor(date.clone())
            .send()
            .await
            .map_err(|e| classify(Operation::ListUploads, &self.bucket, e))?;
        let uploads = out
            .uploads()
            .iter()
            .filter_map(|u| {
                Some(Upload {
                    key: u.key()?.to_string(),
                    upload_id: u.upload_id()?.to_string(),
                    initiated: u.initiated().and_then(to_chrono),
                })
            })
            .collect();
        let next = if out.is_truncated().unwrap_or(false) {
            let key = out
                .next_key_marker()
                .filter(|k| !k.is_empty())
                .ok_or_else(|| {
                    StoreError::protocol(
                        Operation::ListUploads,
                        "the server said the listing is truncated but gave no NextKeyMarker",
                    )
                })?;
            Some(Marker {
                key: key.to_string(),
                upload_id: out
                    .next_upload_id_marker()
                    .filter(|u| !u.is_empty())
                    .map(str::to_string),
            })
        } else {
            None
        };
        Ok(UploadPage {
            uploads,
            next,
            server_date: *date.0.lock(),
        })
    }

    /// One ListParts page; `None` for NoSuchUpload.
    pub(crate) async fn parts_page(
        &self,
        key: &str,
        upload_id: &str,
        marker: Option<&str>,
    ) -> Result<Option<PartsPage>, StoreError> {
        let result = self
            .client
            .list_parts()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .set_part_number_marker(marker.map(str::to_string))
            .set_expected_bucket_owner(self.expected_owner.clone())
            .set_request_payer(self.request_payer.clone())
            .send()
            .await;
        let out = match result {
            Ok(out) => out,
            Err(e) if sdk_means_gone(Operation::ListParts, &e) => return Ok(None),
            Err(e) => return Err(classify(Operation::ListParts, &self.bucket, e)),
        };
        Ok(Some(PartsPage {
            parts: out
                .parts()
                .iter()
                .map(|p| Part {
                    number: p.part_number().unwrap_or(0),
                    etag: p.e_tag().unwrap_or_default().to_string(),
                    size: p.size().unwrap_or(0).max(0) as u64,
                    last_modified: p.last_modified().and_then(to_chrono),
                })
                .collect(),
            truncated: out.is_truncated().unwrap_or(false),
            next: out.next_part_number_marker().map(str::to_string),
        }))
    }

    /// Aborts an upload.
    pub(crate) async fn abort(&self, key: &str, upload_id: &str) -> Result<Aborted, StoreError> {
        let result = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .set_expected_bucket_owner(self.expected_owner.clone())
            .set_request_payer(self.request_payer.clone())
            .send()
            .await;
        match result {
            Ok(_) => Ok(Aborted::Accepted),
            Err(e) if sdk_means_gone(Operation::Abort, &e) => Ok(Aborted::NoSuchUpload),
            Err(e) => Err(classify(Operation::Abort, &self.bucket, e)),
        }
    }
}

/// Keeps the `Date` header of the last answer to the call it is attached to: the store's clock,
/// read from the answers the sweep receives anyway.
#[derive(Clone, Debug, Default)]
struct DateHeader(Arc<parking_lot::Mutex<Option<DateTime<Utc>>>>);

impl Intercept for DateHeader {
    fn name(&self) -> &'static str {
        "DateHeader"
    }

    fn read_after_transmit(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        *self.0.lock() = context
            .response()
            .headers()
            .get("date")
            .and_then(|d| httpdate::parse_http_date(d).ok())
            .map(DateTime::<Utc>::from);
        Ok(())
    }
}
