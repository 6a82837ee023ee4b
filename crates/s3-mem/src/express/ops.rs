//! The directory-bucket operations: `CreateSession`, `ListMultipartUploads` (opaque markers,
//! directory-bucket prefixes), `ListParts`, `AbortMultipartUpload` (with
//! `If-Match-Initiated-Time`) and `GetBucketLifecycleConfiguration`.

use std::collections::HashMap;
use std::ops::Bound;

use bytes::Bytes;
use chrono::{DateTime, TimeDelta, Utc};
use http_body_util::Full;
use hyper::{Response, StatusCode};

use super::errors::{S3Error, document, element, xml_response};
use super::state::{PartRec, Position, SessionRec, Shared, etag, position, replace_initiated};
use super::{EXPIRED_SESSION_MEMORY, LATE_PART_SIZE, MAX_PAGE, STORAGE_CLASS, TOKEN_ALPHABET};
use crate::faults::{AbortFate, FaultPlan as _};
use crate::serve::{HttpResponse, clamp_time, iso8601};
use crate::sigv4::{aws_encode, hex, unhex};

pub(super) fn create_session(shared: &Shared, bucket: &str) -> Result<HttpResponse, S3Error> {
    let ttl = shared.faults.lock().session_ttl;
    let now = Utc::now();
    let ttl = TimeDelta::from_std(ttl).unwrap_or(TimeDelta::MAX);
    // To the second, as `Expiration` renders it: the client and this endpoint agree.
    let expires = now
        .checked_add_signed(ttl)
        .map_or_else(|| clamp_time(DateTime::<Utc>::MAX_UTC), clamp_time);
    let expires = DateTime::from_timestamp(expires.timestamp(), 0).unwrap_or(expires);
    let access_key = format!("ASIA{:016X}", shared.rng.next_u64());
    let secret = shared.rng.string(40, TOKEN_ALPHABET);
    let token = shared.rng.string(256, TOKEN_ALPHABET);

    let mut st = shared.state.lock();
    if !st.buckets.contains_key(bucket) {
        return Err(S3Error::no_such_bucket());
    }
    st.sessions
        .retain(|_, s| s.expires + EXPIRED_SESSION_MEMORY > now);
    st.sessions.insert(
        access_key.clone(),
        SessionRec {
            bucket: bucket.to_owned(),
            token: token.clone(),
            secret: secret.clone(),
            expires,
        },
    );
    st.stats.sessions_created += 1;
    drop(st);

    let mut body = document("CreateSessionResult");
    body.push_str("<Credentials>");
    element(&mut body, "SessionToken", &token);
    element(&mut body, "SecretAccessKey", &secret);
    element(&mut body, "AccessKeyId", &access_key);
    element(
        &mut body,
        "Expiration",
        &expires.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    );
    body.push_str("</Credentials></CreateSessionResult>");
    Ok(xml_response(StatusCode::OK, body))
}

/// A `max-uploads` / `max-parts`: 1..=1000, 1000 when absent.
pub(super) fn parse_max(query: &HashMap<String, String>, name: &str) -> Result<usize, S3Error> {
    match query.get(name) {
        None => Ok(MAX_PAGE),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| {
                S3Error::invalid_argument(format!(
                    "Argument {name} must be an integer between 1 and {MAX_PAGE}: {v}"
                ))
            }),
    }
}

/// Key marker of a listing continuing after the upload at `pos`: opaque, never a key.
pub(super) fn key_marker(pos: &Position) -> String {
    hex(format!("x1:{:016x}:{}", pos.0, pos.1).as_bytes())
}

pub(super) fn parse_key_marker(marker: &str) -> Option<Position> {
    let text = String::from_utf8(unhex(marker)?).ok()?;
    let (hash, id) = text.strip_prefix("x1:")?.split_once(':')?;
    let hash = u64::from_str_radix(hash, 16).ok()?;
    // Only positions this endpoint could have given.
    let pos = position(id);
    (pos.0 == hash).then_some(pos)
}

pub(super) fn list_multipart_uploads(
    shared: &Shared,
    bucket: &str,
    query: &HashMap<String, String>,
) -> Result<HttpResponse, S3Error> {
    shared.state.lock().stats.list_multipart_uploads += 1;
    if query.contains_key("upload-id-marker") {
        return Err(S3Error::invalid_argument(
            "Directory buckets do not support upload-id-marker; continue a listing with key-marker only",
        ));
    }
    let prefix = query.get("prefix").map_or("", String::as_str);
    if !prefix.is_empty() && !prefix.ends_with('/') {
        return Err(S3Error::invalid_argument(
            "Directory buckets only support prefixes that end in the delimiter '/'. Specify a prefix ending in '/' and try again.",
        ));
    }
    match query.get("delimiter").map(String::as_str) {
        None => {}
        Some("/") => {
            return Err(S3Error::new(
                StatusCode::NOT_IMPLEMENTED,
                "NotImplemented",
                "This endpoint does not serve delimiter",
            ));
        }
        Some(_) => {
            return Err(S3Error::invalid_argument(
                "Directory buckets only support the delimiter '/'",
            ));
        }
    }
    let url_encoded = match query.get("encoding-type").map(String::as_str) {
        None => false,
        Some("url") => true,
        Some(other) => {
            return Err(S3Error::invalid_argument(format!(
                "Invalid Encoding Method specified in Request: {other}"
            )));
        }
    };
    let max = parse_max(query, "max-uploads")?;
    let limit = match shared.faults.lock().page_size {
        Some(size) => max.min(size.max(1)),
        None => max,
    };
    let marker = query.get("key-marker").map_or("", String::as_str);
    let lower =
        if marker.is_empty() {
            Bound::Unbounded
        } else {
            Bound::Excluded(parse_key_marker(marker).ok_or_else(|| {
                S3Error::invalid_argument(format!("Invalid key-marker: {marker}"))
            })?)
        };

    let st = shared.state.lock();
    let rec = st.buckets.get(bucket).ok_or_else(S3Error::no_such_bucket)?;
    let mut page: Vec<_> = rec
        .uploads
        .range((lower, Bound::Unbounded))
        .filter(|(_, up)| up.key.starts_with(prefix))
        .take(limit + 1)
        .collect();
    let next = if page.len() > limit {
        page.truncate(limit);
        page.last().map(|(pos, _)| key_marker(pos))
    } else {
        None
    };
    let encode = |s: &str| {
        if url_encoded {
            aws_encode(s, false)
        } else {
            s.to_owned()
        }
    };
    let mut body = document("ListMultipartUploadsResult");
    element(&mut body, "Bucket", bucket);
    if !marker.is_empty() {
        element(&mut body, "KeyMarker", marker);
    }
    element(&mut body, "Prefix", &encode(prefix));
    if let Some(next) = &next {
        element(&mut body, "NextKeyMarker", next);
    }
    if url_encoded {
        element(&mut body, "EncodingType", "url");
    }
    element(&mut body, "MaxUploads", &max.to_string());
    element(
        &mut body,
        "IsTruncated",
        if next.is_some() { "true" } else { "false" },
    );
    for ((_, upload_id), up) in page {
        body.push_str("<Upload>");
        element(&mut body, "Key", &encode(&up.key));
        element(&mut body, "UploadId", upload_id);
        element(&mut body, "Initiated", &iso8601(up.initiated));
        element(&mut body, "StorageClass", STORAGE_CLASS);
        body.push_str("</Upload>");
    }
    drop(st);
    body.push_str("</ListMultipartUploadsResult>");
    Ok(xml_response(StatusCode::OK, body))
}

pub(super) fn list_parts(
    shared: &Shared,
    bucket: &str,
    key: &str,
    upload_id: &str,
    query: &HashMap<String, String>,
) -> Result<HttpResponse, S3Error> {
    shared.state.lock().stats.list_parts += 1;
    let max = parse_max(query, "max-parts")?;
    let marker = match query.get("part-number-marker").map(String::as_str) {
        None | Some("") => 0,
        Some(m) => m
            .parse::<u32>()
            .map_err(|_| S3Error::invalid_argument(format!("Invalid part-number-marker: {m}")))?,
    };
    let mut guard = shared.state.lock();
    let rec = guard
        .buckets
        .get_mut(bucket)
        .ok_or_else(S3Error::no_such_bucket)?;
    let up = rec
        .upload_mut(key, upload_id)
        .ok_or_else(S3Error::no_such_upload)?;
    // Lock order: state, then faults (nothing takes them the other way round).
    if !up.replaced_on_list && shared.faults.lock().replace_on_list_parts.contains(key) {
        up.replaced_on_list = true;
        let later = up.initiated + TimeDelta::hours(1);
        replace_initiated(up, later);
    }
    let mut page: Vec<_> = up
        .parts
        .range((Bound::Excluded(marker), Bound::Unbounded))
        .take(max + 1)
        .collect();
    let truncated = page.len() > max;
    page.truncate(max);
    let next = page.last().map_or(marker, |(n, _)| **n);

    let mut body = document("ListPartsResult");
    element(&mut body, "Bucket", bucket);
    element(&mut body, "Key", key);
    element(&mut body, "UploadId", upload_id);
    element(&mut body, "PartNumberMarker", &marker.to_string());
    element(&mut body, "NextPartNumberMarker", &next.to_string());
    element(&mut body, "MaxParts", &max.to_string());
    element(
        &mut body,
        "IsTruncated",
        if truncated { "true" } else { "false" },
    );
    element(&mut body, "StorageClass", STORAGE_CLASS);
    for (number, part) in page {
        body.push_str("<Part>");
        element(&mut body, "PartNumber", &number.to_string());
        element(&mut body, "LastModified", &iso8601(part.last_modified));
        element(&mut body, "ETag", &part.etag);
        element(&mut body, "Size", &part.size.to_string());
        body.push_str("</Part>");
    }
    drop(guard);
    body.push_str("</ListPartsResult>");
    Ok(xml_response(StatusCode::OK, body))
}

pub(super) fn abort_multipart_upload(
    shared: &Shared,
    bucket: &str,
    key: &str,
    upload_id: &str,
    if_match_initiated_time: Option<&str>,
) -> Result<HttpResponse, S3Error> {
    let expected = if_match_initiated_time
        .map(|raw| {
            DateTime::parse_from_rfc2822(raw)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    S3Error::invalid_argument(format!(
                        "Invalid If-Match-Initiated-Time (an HTTP date): {raw}"
                    ))
                })
        })
        .transpose();
    let mut guard = shared.state.lock();
    let st = &mut *guard;
    st.stats.abort_multipart_upload += 1;
    let expected = expected?;
    let rec = st
        .buckets
        .get_mut(bucket)
        .ok_or_else(S3Error::no_such_bucket)?;
    let up = rec
        .upload_mut(key, upload_id)
        .ok_or_else(S3Error::no_such_upload)?;
    if let Some(expected) = expected
        && expected.timestamp() != up.initiated.timestamp()
    {
        st.stats.aborts_precondition_failed += 1;
        return Err(S3Error::new(
            StatusCode::PRECONDITION_FAILED,
            "PreconditionFailed",
            "At least one of the pre-conditions you specified did not hold: If-Match-Initiated-Time",
        ));
    }
    // Lock order: state, then faults (nothing takes them the other way round).
    let fate = (shared.faults.lock()).abort_fate(key, up.swallowed_aborts);
    if fate == AbortFate::LatePart {
        // A part that landed after the abort: the next number, a new ETag.
        up.swallowed_aborts += 1;
        let (number, size) = up
            .parts
            .last_key_value()
            .map_or((1, LATE_PART_SIZE), |(n, p)| (n.saturating_add(1), p.size));
        up.parts.insert(
            number,
            PartRec {
                size,
                etag: etag(upload_id, number),
                last_modified: Utc::now(),
            },
        );
        st.stats.aborts_swallowed += 1;
    } else {
        rec.uploads.remove(&position(upload_id));
        st.stats.aborts_removed += 1;
    }
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::NO_CONTENT;
    Ok(resp)
}

pub(super) fn lifecycle(shared: &Shared, bucket: &str) -> Result<HttpResponse, S3Error> {
    let days = shared
        .state
        .lock()
        .buckets
        .get(bucket)
        .ok_or_else(S3Error::no_such_bucket)?
        .lifecycle_abort_days;
    let Some(days) = days else {
        return Err(S3Error::new(
            StatusCode::NOT_FOUND,
            "NoSuchLifecycleConfiguration",
            "The lifecycle configuration does not exist",
        ));
    };
    let mut body = document("LifecycleConfiguration");
    body.push_str("<Rule>");
    element(&mut body, "ID", "abort-mpu");
    body.push_str("<Filter><Prefix></Prefix></Filter>");
    element(&mut body, "Status", "Enabled");
    body.push_str("<AbortIncompleteMultipartUpload>");
    element(&mut body, "DaysAfterInitiation", &days.to_string());
    body.push_str("</AbortIncompleteMultipartUpload></Rule></LifecycleConfiguration>");
    Ok(xml_response(StatusCode::OK, body))
}
