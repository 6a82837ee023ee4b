//! The S3 operations served, on s3s's [`S3`] trait: buckets (create, head, location, list,
//! tagging, lifecycle) and multipart uploads (create, upload part, list, list parts, abort).

use std::ops::Bound;
use std::sync::Arc;
use std::time::SystemTime;

use futures::StreamExt;
use md5::{Digest, Md5};
use s3s::dto;
use s3s::{S3, S3Error, S3Request, S3Response, S3Result, s3_error};

use chrono::{DateTime, Utc};
use std::fmt::Write as _;

#[allow(unused_imports)] // doc links
use super::Faults;
use crate::faults::{AbortFate, FaultPlan as _};

use super::state::{BucketRec, PartRec, Shared, UploadRec, digest16, hex, unhex};
use super::{DEFAULT_REGION, MAX_BUCKETS, MAX_PAGE};

pub(super) fn ts(t: DateTime<Utc>) -> dto::Timestamp {
    dto::Timestamp::from(SystemTime::from(t))
}

/// Percent-encodes everything but unreserved characters and `/` (for `encoding-type=url`).
pub(super) fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

pub(super) fn no_such_bucket() -> S3Error {
    s3_error!(NoSuchBucket, "The specified bucket does not exist")
}

pub(super) fn no_such_upload() -> S3Error {
    s3_error!(
        NoSuchUpload,
        "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed."
    )
}

/// Clamps an optional page size from the request to `0..=1000` (default 1000).
pub(super) fn page_size(requested: Option<i32>) -> usize {
    usize::try_from(requested.unwrap_or(MAX_PAGE).clamp(0, MAX_PAGE)).unwrap_or(0)
}

pub(super) struct MemS3 {
    pub(super) shared: Arc<Shared>,
}

impl MemS3 {
    pub(super) fn has_bucket(&self, name: &str) -> bool {
        self.shared.state.lock().buckets.contains_key(name)
    }

    /// Records who signed a request that reached an operation, and for a request on `bucket`
    /// the region it was signed for.
    pub(super) fn note<T>(&self, req: &S3Request<T>, bucket: Option<&str>) {
        let Some(cred) = &req.credentials else {
            return;
        };
        let mut st = self.shared.state.lock();
        *st.requests_by_access_key
            .entry(cred.access_key.clone())
            .or_default() += 1;
        if let (Some(bucket), Some(region)) = (bucket, &req.region) {
            st.signing_regions
                .entry(bucket.to_owned())
                .or_default()
                .insert(region.as_str().to_owned());
        }
    }
}

#[async_trait::async_trait]
impl S3 for MemS3 {
    async fn create_bucket(
        &self,
        req: S3Request<dto::CreateBucketInput>,
    ) -> S3Result<S3Response<dto::CreateBucketOutput>> {
        self.note(&req, Some(&req.input.bucket));
        let dto::CreateBucketInput {
            bucket: name,
            create_bucket_configuration,
            ..
        } = req.input;
        // As in S3: no location constraint is us-east-1, and `EU` is eu-west-1.
        let region = match create_bucket_configuration.and_then(|c| c.location_constraint) {
            Some(c) if c.as_str() == dto::BucketLocationConstraint::EU => "eu-west-1".to_owned(),
            Some(c) if !c.as_str().is_empty() => c.as_str().to_owned(),
            _ => DEFAULT_REGION.to_owned(),
        };
        let now = self.shared.now();
        let mut st = self.shared.state.lock();
        if st.buckets.contains_key(&name) {
            return Err(s3_error!(
                BucketAlreadyOwnedByYou,
                "Your previous request to create the named bucket succeeded and you already own it."
            ));
        }
        st.buckets
            .insert(name.clone(), BucketRec::new(now, &region));
        Ok(S3Response::new(dto::CreateBucketOutput {
            location: Some(format!("/{name}")),
        }))
    }

    /// A bucket here has no lifecycle configuration (or, with [`Faults::deny_lifecycle`], the
    /// caller may not read it).
    async fn get_bucket_lifecycle_configuration(
        &self,
        req: S3Request<dto::GetBucketLifecycleConfigurationInput>,
    ) -> S3Result<S3Response<dto::GetBucketLifecycleConfigurationOutput>> {
        self.note(&req, Some(&req.input.bucket));
        if self.shared.faults.lock().deny_lifecycle {
            return Err(s3_error!(AccessDenied, "Access Denied"));
        }
        if self.has_bucket(&req.input.bucket) {
            Err(s3_error!(
                NoSuchLifecycleConfiguration,
                "The lifecycle configuration does not exist"
            ))
        } else {
            Err(no_such_bucket())
        }
    }

    /// Answers the bucket's region in `x-amz-bucket-region`, as S3 does.
    async fn head_bucket(
        &self,
        req: S3Request<dto::HeadBucketInput>,
    ) -> S3Result<S3Response<dto::HeadBucketOutput>> {
        self.note(&req, Some(&req.input.bucket));
        let st = self.shared.state.lock();
        let rec = st
            .buckets
            .get(&req.input.bucket)
            .ok_or_else(no_such_bucket)?;
        Ok(S3Response::new(dto::HeadBucketOutput {
            bucket_region: Some(rec.region.clone()),
            ..Default::default()
        }))
    }

    /// As S3: an empty `LocationConstraint` for us-east-1, else the region.
    async fn get_bucket_location(
        &self,
        req: S3Request<dto::GetBucketLocationInput>,
    ) -> S3Result<S3Response<dto::GetBucketLocationOutput>> {
        self.note(&req, Some(&req.input.bucket));
        let st = self.shared.state.lock();
        let rec = st
            .buckets
            .get(&req.input.bucket)
            .ok_or_else(no_such_bucket)?;
        let location_constraint = (rec.region != DEFAULT_REGION)
            .then(|| dto::BucketLocationConstraint::from(rec.region.clone()));
        Ok(S3Response::new(dto::GetBucketLocationOutput {
            location_constraint,
        }))
    }

    /// Pages as S3 does: `max-buckets` (1..=10000) per page, capped by
    /// [`Faults::list_buckets_page`]; without it, every bucket, unless another parameter is
    /// given (then 10000). The continuation token is opaque (the hex of the last name given).
    async fn list_buckets(
        &self,
        req: S3Request<dto::ListBucketsInput>,
    ) -> S3Result<S3Response<dto::ListBucketsOutput>> {
        self.note(&req, None);
        Shared::bump(&self.shared.counters.list_buckets);
        let input = req.input;
        let any_param = input.continuation_token.is_some()
            || input.prefix.is_some()
            || input.bucket_region.is_some();
        let mut max = match input.max_buckets {
            Some(n) => usize::try_from(n)
                .ok()
                .filter(|n| (1..=MAX_BUCKETS).contains(n))
                .ok_or_else(|| {
                    s3_error!(
                        InvalidArgument,
                        "max-buckets must be an integer between 1 and 10000"
                    )
                })?,
            None if any_param => MAX_BUCKETS,
            None => usize::MAX,
        };
        if let Some(cap) = self.shared.faults.lock().list_buckets_page {
            max = max.min(cap.max(1));
        }
        let after = match input.continuation_token.as_deref() {
            None | Some("") => None,
            Some(token) => Some(unhex(token).ok_or_else(|| {
                s3_error!(
                    InvalidArgument,
                    "The continuation token provided is incorrect"
                )
            })?),
        };
        let prefix = input.prefix.clone().unwrap_or_default();
        let lower = match after {
            Some(after) if after >= prefix => Bound::Excluded(after),
            _ => Bound::Included(prefix.clone()),
        };

        let st = self.shared.state.lock();
        let mut page: Vec<(&String, &BucketRec)> = st
            .buckets
            .range::<String, _>((lower, Bound::Unbounded))
            .take_while(|(name, _)| name.starts_with(&prefix))
            .filter(|(_, b)| input.bucket_region.as_ref().is_none_or(|r| *r == b.region))
            .take(max.saturating_add(1))
            .collect();
        let continuation_token = if page.len() > max {
            page.truncate(max);
            page.last().map(|(name, _)| hex(name.as_bytes()))
        } else {
            None
        };
        let buckets = page
            .into_iter()
            .map(|(name, b)| dto::Bucket {
                name: Some(name.clone()),
                creation_date: Some(ts(b.created)),
                bucket_region: Some(b.region.clone()),
            })
            .collect();
        drop(st);
        Ok(S3Response::new(dto::ListBucketsOutput {
            buckets: Some(buckets),
            continuation_token,
            prefix: input.prefix,
            ..Default::default()
        }))
    }

    /// The tag set, `NoSuchTagSet` when there is none, `AccessDenied` for the buckets of
    /// [`Faults::deny_tagging`].
    async fn get_bucket_tagging(
        &self,
        req: S3Request<dto::GetBucketTaggingInput>,
    ) -> S3Result<S3Response<dto::GetBucketTaggingOutput>> {
        self.note(&req, Some(&req.input.bucket));
        Shared::bump(&self.shared.counters.get_bucket_tagging);
        let bucket = req.input.bucket;
        if self.shared.faults.lock().deny_tagging.contains(&bucket) {
            return Err(s3_error!(AccessDenied, "Access Denied"));
        }
        let st = self.shared.state.lock();
        let rec = st.buckets.get(&bucket).ok_or_else(no_such_bucket)?;
        if rec.tags.is_empty() {
            return Err(s3_error!(NoSuchTagSet, "The TagSet does not exist"));
        }
        let tag_set = rec
            .tags
            .iter()
            .map(|(k, v)| dto::Tag {
                key: Some(k.clone()),
                value: Some(v.clone()),
            })
            .collect();
        Ok(S3Response::new(dto::GetBucketTaggingOutput { tag_set }))
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<dto::CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<dto::CreateMultipartUploadOutput>> {
        self.note(&req, Some(&req.input.bucket));
        Shared::bump(&self.shared.counters.create_multipart_upload);
        let dto::CreateMultipartUploadInput { bucket, key, .. } = req.input;
        let now = self.shared.now();
        let upload_id = self.shared.new_upload_id();
        {
            let mut st = self.shared.state.lock();
            let rec = st.buckets.get_mut(&bucket).ok_or_else(no_such_bucket)?;
            rec.uploads
                .insert((key.clone(), upload_id.clone()), UploadRec::new(now));
        }
        Ok(S3Response::new(dto::CreateMultipartUploadOutput {
            bucket: Some(bucket),
            key: Some(key),
            upload_id: Some(upload_id),
            ..Default::default()
        }))
    }

    async fn upload_part(
        &self,
        req: S3Request<dto::UploadPartInput>,
    ) -> S3Result<S3Response<dto::UploadPartOutput>> {
        self.note(&req, Some(&req.input.bucket));
        Shared::bump(&self.shared.counters.upload_part);
        let dto::UploadPartInput {
            body,
            bucket,
            key,
            part_number,
            upload_id,
            checksum_crc32,
            checksum_crc32c,
            checksum_crc64nvme,
            checksum_sha1,
            checksum_sha256,
            ..
        } = req.input;
        let part_number = u32::try_from(part_number)
            .ok()
            .filter(|n| (1..=10_000).contains(n))
            .ok_or_else(|| {
                s3_error!(
                    InvalidArgument,
                    "Part number must be an integer between 1 and 10000, inclusive"
                )
            })?;
        let id = (key, upload_id);
        {
            let st = self.shared.state.lock();
            let rec = st.buckets.get(&bucket).ok_or_else(no_such_bucket)?;
            if !rec.uploads.contains_key(&id) {
                return Err(no_such_upload());
            }
        }

        // Hash and count the body without keeping it.
        let mut hasher = Md5::new();
        let mut size: u64 = 0;
        if let Some(mut body) = body {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| {
                    let msg = e.to_string();
                    if msg.contains("SignatureMismatch") {
                        s3_error!(SignatureDoesNotMatch, "chunk signature mismatch")
                    } else {
                        s3_error!(IncompleteBody, "cannot read the request body: {msg}")
                    }
                })?;
                hasher.update(&chunk);
                size += chunk.len() as u64;
            }
        }
        let etag = digest16(hasher);

        let now = self.shared.now();
        {
            let mut st = self.shared.state.lock();
            let rec = st.buckets.get_mut(&bucket).ok_or_else(no_such_bucket)?;
            // The upload may have been aborted while the body was streaming.
            let upload = rec.uploads.get_mut(&id).ok_or_else(no_such_upload)?;
            upload.parts.insert(
                part_number,
                PartRec {
                    size,
                    etag,
                    last_modified: now,
                },
            );
        }
        Ok(S3Response::new(dto::UploadPartOutput {
            e_tag: Some(dto::ETag::Strong(hex(&etag))),
            checksum_crc32,
            checksum_crc32c,
            checksum_crc64nvme,
            checksum_sha1,
            checksum_sha256,
            ..Default::default()
        }))
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<dto::ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<dto::ListMultipartUploadsOutput>> {
        self.note(&req, Some(&req.input.bucket));
        Shared::bump(&self.shared.counters.list_multipart_uploads);
        let input = req.input;
        if input.delimiter.as_deref().is_some_and(|d| !d.is_empty()) {
            return Err(s3_error!(
                NotImplemented,
                "delimiter is not supported by this endpoint"
            ));
        }
        let max = page_size(input.max_uploads);
        let url = input
            .encoding_type
            .as_ref()
            .is_some_and(|e| e.as_str() == dto::EncodingType::URL);
        let enc = |s: String| if url { url_encode(&s) } else { s };
        let prefix = input.prefix.clone().unwrap_or_default();
        let key_marker = input.key_marker.clone().filter(|s| !s.is_empty());
        // As in S3, the upload-id marker only counts together with a key marker.
        let upload_id_marker = input
            .upload_id_marker
            .clone()
            .filter(|s| !s.is_empty() && key_marker.is_some());

        // Lower bound of the page: after the markers, and not before the prefix.
        let from_prefix = (prefix.clone(), String::new());
        let lower = match (key_marker, upload_id_marker) {
            // Same key and a later upload id, or any later key.
            (Some(k), Some(u)) => {
                let after = (k, u);
                if from_prefix > after {
                    Bound::Included(from_prefix)
                } else {
                    Bound::Excluded(after)
                }
            }
            // Keys strictly after the marker: the smallest such key is `marker + "\0"`.
            (Some(k), None) => Bound::Included((format!("{k}\0"), String::new()).max(from_prefix)),
            (None, _) => Bound::Included(from_prefix),
        };

        let st = self.shared.state.lock();
        let rec = st.buckets.get(&input.bucket).ok_or_else(no_such_bucket)?;
        let mut page: Vec<(&(String, String), &UploadRec)> = rec
            .uploads
            .range((lower, Bound::Unbounded))
            .take_while(|((key, _), _)| key.starts_with(&prefix))
            .take(max + 1)
            .collect();
        let is_truncated = max > 0 && page.len() > max;
        page.truncate(max);
        let last = page.last().map(|((k, u), _)| (k.clone(), u.clone()));
        let uploads = page
            .into_iter()
            .map(|((key, upload_id), up)| dto::MultipartUpload {
                key: Some(enc(key.clone())),
                upload_id: Some(upload_id.clone()),
                initiated: Some(ts(up.initiated)),
                storage_class: Some(dto::StorageClass::from_static(dto::StorageClass::STANDARD)),
                ..Default::default()
            })
            .collect();
        drop(st);

        let (next_key_marker, next_upload_id_marker) = match last {
            Some((k, u)) => (Some(enc(k)), Some(u)),
            None => (None, None),
        };
        Ok(S3Response::new(dto::ListMultipartUploadsOutput {
            bucket: Some(input.bucket),
            prefix: input.prefix.map(&enc),
            key_marker: Some(enc(input.key_marker.unwrap_or_default())),
            upload_id_marker: Some(input.upload_id_marker.unwrap_or_default()),
            max_uploads: Some(i32::try_from(max).unwrap_or(MAX_PAGE)),
            is_truncated: Some(is_truncated),
            next_key_marker,
            next_upload_id_marker,
            encoding_type: input.encoding_type,
            uploads: Some(uploads),
            ..Default::default()
        }))
    }

    async fn list_parts(
        &self,
        req: S3Request<dto::ListPartsInput>,
    ) -> S3Result<S3Response<dto::ListPartsOutput>> {
        self.note(&req, Some(&req.input.bucket));
        Shared::bump(&self.shared.counters.list_parts);
        let dto::ListPartsInput {
            bucket,
            key,
            upload_id,
            max_parts,
            part_number_marker,
            ..
        } = req.input;
        let max = page_size(max_parts);
        let after = part_number_marker
            .and_then(|m| u32::try_from(m).ok())
            .unwrap_or(0);

        let id = (key, upload_id);
        let st = self.shared.state.lock();
        let rec = st.buckets.get(&bucket).ok_or_else(no_such_bucket)?;
        let upload = rec.uploads.get(&id).ok_or_else(no_such_upload)?;
        let mut page: Vec<(u32, &PartRec)> = upload
            .parts
            .range((Bound::Excluded(after), Bound::Unbounded))
            .take(max + 1)
            .map(|(&n, p)| (n, p))
            .collect();
        let is_truncated = max > 0 && page.len() > max;
        page.truncate(max);
        let next_marker = page.last().and_then(|&(n, _)| i32::try_from(n).ok());
        let parts = page
            .into_iter()
            .map(|(n, p)| dto::Part {
                part_number: i32::try_from(n).ok(),
                size: i64::try_from(p.size).ok(),
                e_tag: Some(dto::ETag::Strong(hex(&p.etag))),
                last_modified: Some(ts(p.last_modified)),
                ..Default::default()
            })
            .collect();
        drop(st);

        let (key, upload_id) = id;
        Ok(S3Response::new(dto::ListPartsOutput {
            bucket: Some(bucket),
            key: Some(key),
            upload_id: Some(upload_id),
            part_number_marker: Some(part_number_marker.unwrap_or(0)),
            next_part_number_marker: next_marker,
            max_parts: Some(i32::try_from(max).unwrap_or(MAX_PAGE)),
            is_truncated: Some(is_truncated),
            parts: Some(parts),
            storage_class: Some(dto::StorageClass::from_static(dto::StorageClass::STANDARD)),
            ..Default::default()
        }))
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<dto::AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<dto::AbortMultipartUploadOutput>> {
        self.note(&req, Some(&req.input.bucket));
        let counters = &self.shared.counters;
        Shared::bump(&counters.abort_multipart_upload);
        let dto::AbortMultipartUploadInput {
            bucket,
            key,
            upload_id,
            ..
        } = req.input;
        let mut guard = self.shared.state.lock();
        let st = &mut *guard;
        *st.aborts_by_key.entry(key.clone()).or_default() += 1;
        *st.aborts_by_upload_id.entry(upload_id.clone()).or_default() += 1;
        let rec = st.buckets.get_mut(&bucket).ok_or_else(no_such_bucket)?;
        let id = (key, upload_id);
        let upload = rec.uploads.get_mut(&id).ok_or_else(no_such_upload)?;
        // Lock order: state, then faults (nothing takes them the other way round).
        let fate = (self.shared.faults.lock()).abort_fate(&id.0, upload.swallowed_aborts);
        if fate == AbortFate::Remove {
            rec.uploads.remove(&id);
            Shared::bump(&counters.aborts_removed);
        } else {
            upload.swallowed_aborts += 1;
            Shared::bump(&counters.aborts_swallowed);
        }
        Ok(S3Response::new(dto::AbortMultipartUploadOutput::default()))
    }
}
