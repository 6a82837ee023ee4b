//! The calls made through aws-sdk-s3: ListMultipartUploads, ListParts and AbortMultipartUpload when
//! the store was built with the SDK request path (an endpoint that is not plain SigV4, or
//! `request_path = "sdk"`); a directory bucket's conditional abort and the lifecycle rules on
//! either path.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_s3::Client;
use aws_sdk_s3::types::{ExpirationStatus, RequestPayer};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    AfterDeserializationInterceptorContextRef, BeforeDeserializationInterceptorContextRef,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::error::{Service, classify, sdk_means_gone};
use super::{
    Aborted, Marker, Operation, PartsPage, StoreError, UploadPage, read_parts_page,
    read_uploads_page,
};
use crate::config::ClientSettings;
use crate::lifecycle::Rule;

/// One bucket on an SDK client, with the per-call options of its target.
pub(crate) struct SdkBucket {
    client: Client,
    bucket: String,
    expected_owner: Option<String>,
    request_payer: Option<RequestPayer>,
    /// Throttling answers the client received, shared by every bucket on it.
    throttled: ThrottleCount,
}

impl SdkBucket {
    pub(crate) fn new(
        client: Client,
        throttled: ThrottleCount,
        bucket: &str,
        s: &ClientSettings,
    ) -> Self {
        SdkBucket {
            client,
            bucket: bucket.to_string(),
            expected_owner: Some(s.expected_bucket_owner.clone()).filter(|s| !s.is_empty()),
            request_payer: s.request_payer.then_some(RequestPayer::Requester),
            throttled,
        }
    }

    /// Throttling answers received by this bucket's client, retried or not.
    pub(crate) fn throttled(&self) -> u64 {
        self.throttled.count()
    }

    /// One ListMultipartUploads page, markers exactly as the server returned them. The SDK sends
    /// the request and reads the answer; the page is read from the body by the same strict parser
    /// as the lean path's ([`xml`]), so both paths agree on what a page says.
    pub(crate) async fn list_uploads(
        &self,
        prefix: &str,
        marker: Option<&Marker>,
    ) -> Result<UploadPage, StoreError> {
        let op = Operation::ListUploads;
        let answer = Answer::default();
        let result = self
            .client
            .list_multipart_uploads()
            .bucket(&self.bucket)
            .set_prefix(Some(prefix.to_string()).filter(|p| !p.is_empty()))
            .set_key_marker(marker.map(|m| m.key.clone()))
            .set_upload_id_marker(marker.and_then(|m| m.upload_id.clone()))
            .set_expected_bucket_owner(self.expected_owner.clone())
            .set_request_payer(self.request_payer.clone())
            .customize()
            .interceptor(answer.clone())
            .send()
            .await;
        let (date, server, body) = answer.take();
        let Some(body) = body else {
            result.map_err(|e| classify(op, Service::S3, &self.bucket, e))?;
            return Err(StoreError::protocol(op, "the SDK kept no answer to read"));
        };
        read_uploads_page(&body, date.as_deref(), server.as_deref())
    }

    /// One ListParts page; `None` for NoSuchUpload. Read like [`Self::list_uploads`].
    pub(crate) async fn parts_page(
        &self,
        key: &str,
        upload_id: &str,
        marker: Option<&str>,
    ) -> Result<Option<PartsPage>, StoreError> {
        let op = Operation::ListParts;
        let answer = Answer::default();
        let result = self
            .client
            .list_parts()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .set_part_number_marker(marker.map(str::to_string))
            .set_expected_bucket_owner(self.expected_owner.clone())
            .set_request_payer(self.request_payer.clone())
            .customize()
            .interceptor(answer.clone())
            .send()
            .await;
        let body = match (answer.take().2, result) {
            (Some(body), _) => body,
            (None, Err(e)) if sdk_means_gone(op, &e) => return Ok(None),
            (None, Err(e)) => return Err(classify(op, Service::S3, &self.bucket, e)),
            (None, Ok(_)) => {
                return Err(StoreError::protocol(op, "the SDK kept no answer to read"));
            }
        };
        read_parts_page(&body).map(Some)
    }

    /// Aborts an upload; with `initiated`, only if it was initiated then (to the second:
    /// `If-Match-Initiated-Time` is an HTTP date), which directory buckets honour.
    pub(crate) async fn abort(
        &self,
        key: &str,
        upload_id: &str,
        initiated: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Aborted, StoreError> {
        let result = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .set_if_match_initiated_time(
                initiated.map(|t| aws_smithy_types::DateTime::from_secs(t.timestamp())),
            )
            .set_expected_bucket_owner(self.expected_owner.clone())
            .set_request_payer(self.request_payer.clone())
            .send()
            .await;
        match result {
            Ok(_) => Ok(Aborted::Accepted),
            Err(e) if sdk_means_gone(Operation::Abort, &e) => Ok(Aborted::NoSuchUpload),
            Err(e)
                if initiated.is_some()
                    && e.raw_response().map(|r| r.status().as_u16()) == Some(412) =>
            {
                Ok(Aborted::InitiatedTimeChanged)
            }
            Err(e) => Err(classify(Operation::Abort, Service::S3, &self.bucket, e)),
        }
    }
}

impl SdkBucket {
    /// The bucket's creation date from ListBuckets (see [`super::buckets::Buckets::created`]).
    pub(crate) async fn bucket_created(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        super::buckets::Buckets {
            client: self.client.clone(),
        }
        .created(&self.bucket)
        .await
    }

    /// The bucket's lifecycle rules; none for NoSuchLifecycleConfiguration.
    pub(crate) async fn lifecycle_rules(&self) -> Result<Vec<Rule>, StoreError> {
        let result = self
            .client
            .get_bucket_lifecycle_configuration()
            .bucket(&self.bucket)
            .set_expected_bucket_owner(self.expected_owner.clone())
            .send()
            .await;
        match result {
            Ok(out) => Ok(out.rules().iter().map(rule_of).collect()),
            Err(e)
                if e.as_service_error().and_then(|s| s.meta().code())
                    == Some("NoSuchLifecycleConfiguration") =>
            {
                Ok(Vec::new())
            }
            Err(e) => Err(classify(
                Operation::GetLifecycle,
                Service::S3,
                &self.bucket,
                e,
            )),
        }
    }
}

/// What the audit needs of a rule: the filter's prefix (or the legacy rule prefix), whether the
/// filter also tests tags or sizes, and the abort action's days.
fn rule_of(r: &aws_sdk_s3::types::LifecycleRule) -> Rule {
    let filter = r.filter();
    let and = filter.and_then(|f| f.and());
    let narrowed = filter.is_some_and(|f| {
        f.tag().is_some()
            || f.object_size_greater_than().is_some()
            || f.object_size_less_than().is_some()
    }) || and.is_some_and(|a| {
        !a.tags().is_empty()
            || a.object_size_greater_than().is_some()
            || a.object_size_less_than().is_some()
    });
    let prefix = filter
        .and_then(|f| f.prefix())
        .or_else(|| and.and_then(|a| a.prefix()))
        // The legacy rule-level Prefix: deprecated in the SDK, still written by older tools and
        // honoured by S3 and Garage.
        .or_else(|| {
            #[allow(deprecated)]
            r.prefix()
        })
        .map(str::to_string);
    Rule {
        id: r.id().map(str::to_string),
        enabled: *r.status() == ExpirationStatus::Enabled,
        prefix,
        narrowed,
        abort_after_days: r
            .abort_incomplete_multipart_upload()
            .and_then(|a| a.days_after_initiation())
            .and_then(|d| u32::try_from(d).ok()),
    }
}

/// Keeps what the last answer to the call it is attached to said: its `Date` header (the store's
/// clock, read from the answers the sweep receives anyway) and, for a 2xx, its body.
#[derive(Clone, Debug, Default)]
pub(super) struct Answer(Arc<parking_lot::Mutex<Answered>>);

/// Counts the throttling answers (HTTP 503, S3's SlowDown, and 429) of every attempt of every call
/// of a client, as the lean path's transport does, for the sweep's concurrency limit.
#[derive(Clone, Debug, Default)]
pub(crate) struct ThrottleCount(Arc<AtomicU64>);

impl ThrottleCount {
    /// The throttling answers so far.
    pub(crate) fn count(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Intercept for ThrottleCount {
    fn name(&self) -> &'static str {
        "ThrottleCount"
    }

    fn read_after_transmit(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if matches!(context.response().status().as_u16(), 429 | 503) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
struct Answered {
    /// The `Date` header as sent.
    date: Option<String>,
    /// The store as its headers name it ([`super::server_named`]).
    server: Option<String>,
    body: Option<Bytes>,
}

impl Answer {
    pub(super) fn take(&self) -> (Option<String>, Option<String>, Option<Bytes>) {
        let Answered { date, server, body } = std::mem::take(&mut *self.0.lock());
        (date, server, body)
    }
}

impl Intercept for Answer {
    fn name(&self) -> &'static str {
        "Answer"
    }

    fn read_after_transmit(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let headers = context.response().headers();
        *self.0.lock() = Answered {
            date: headers.get("date").map(str::to_string),
            server: super::server_named(
                headers.get("server"),
                headers.contains_key("x-content-type-options"),
            ),
            body: None,
        };
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let response = context.response();
        if response.status().is_success() {
            self.0.lock().body = response.body().bytes().map(Bytes::copy_from_slice);
        }
        Ok(())
    }
}
