//! Glacier's routes and operations: `ListMultipartUploads`, `ListParts` and
//! `AbortMultipartUpload` on a vault.

use std::collections::HashMap;
use std::ops::Bound;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Response, StatusCode};
use serde_json::{Value, json};

use super::errors::{ApiError, json_response};
use super::state::{Shared, parse_part_marker, parse_upload_marker, part_marker, upload_marker};
use super::{DEFAULT_LIMIT, MAX_LIMIT};
use crate::faults::{AbortFate, FaultPlan as _};
use crate::serve::{HttpResponse, iso8601};
use crate::sigv4::{hex, normalize_path, percent_decode, sha256};

// ---------------------------------------------------------------------------------------
// Routing and operations

pub(super) enum Operation {
    ListMultipartUploads,
    ListParts(String),
    AbortMultipartUpload(String),
}

pub(super) struct Route {
    pub(super) account_id: String,
    pub(super) vault: String,
    pub(super) operation: Operation,
}

pub(super) fn route(method: &Method, path: &str) -> Option<Route> {
    let normalized = normalize_path(path);
    let segments: Vec<String> = normalized
        .trim_start_matches('/')
        .split('/')
        .map(|s| percent_decode(s, false))
        .collect();
    let (account_id, vault, upload) = match segments.as_slice() {
        [a, v, vault, m] if v == "vaults" && m == "multipart-uploads" => (a, vault, None),
        [a, v, vault, m, id] if v == "vaults" && m == "multipart-uploads" && !id.is_empty() => {
            (a, vault, Some(id.clone()))
        }
        _ => return None,
    };
    let operation = match (method, upload) {
        (&Method::GET, None) => Operation::ListMultipartUploads,
        (&Method::GET, Some(id)) => Operation::ListParts(id),
        (&Method::DELETE, Some(id)) => Operation::AbortMultipartUpload(id),
        _ => return None,
    };
    Some(Route {
        account_id: account_id.clone(),
        vault: vault.clone(),
        operation,
    })
}

/// The `limit` of a listing: 1..=1000, 50 when absent.
pub(super) fn parse_limit(query: &HashMap<String, String>) -> Result<usize, ApiError> {
    match query.get("limit") {
        None => Ok(DEFAULT_LIMIT),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::invalid_parameter(format!(
                    "Invalid limit: {v}. The limit must be an integer between 1 and 1000."
                ))
            }),
    }
}

pub(super) fn vault_arn(region: &str, account_id: &str, vault: &str) -> String {
    format!("arn:aws:glacier:{region}:{account_id}:vaults/{vault}")
}

pub(super) fn vault_not_found(arn: &str) -> ApiError {
    ApiError::not_found(format!("Vault not found for ARN: {arn}"))
}

pub(super) fn upload_not_found(upload_id: &str) -> ApiError {
    ApiError::not_found(format!(
        "Multipart upload not found for upload ID: {upload_id}"
    ))
}

pub(super) fn list_multipart_uploads(
    shared: &Shared,
    key: &(String, String),
    arn: &str,
    query: &HashMap<String, String>,
) -> Result<HttpResponse, ApiError> {
    shared.state.lock().stats.list_multipart_uploads += 1;
    let limit = parse_limit(query)?;
    let lower = match query.get("marker").map(String::as_str) {
        None | Some("") => Bound::Unbounded,
        Some(m) => Bound::Excluded(
            parse_upload_marker(m)
                .ok_or_else(|| ApiError::invalid_parameter(format!("Invalid marker: {m}")))?,
        ),
    };
    let st = shared.state.lock();
    let vault = st.vaults.get(key).ok_or_else(|| vault_not_found(arn))?;
    let mut page: Vec<_> = vault
        .uploads
        .range((lower, Bound::Unbounded))
        .take(limit + 1)
        .collect();
    let marker = if page.len() > limit {
        page.truncate(limit);
        page.last()
            .map(|((created, id), _)| upload_marker(*created, id))
    } else {
        None
    };
    let uploads: Vec<Value> = page
        .into_iter()
        .map(|((created, id), up)| {
            json!({
                "ArchiveDescription": up.description,
                "CreationDate": iso8601(*created),
                "MultipartUploadId": id,
                "PartSizeInBytes": up.part_size,
                "VaultARN": arn,
            })
        })
        .collect();
    drop(st);
    Ok(json_response(
        StatusCode::OK,
        &json!({ "Marker": marker, "UploadsList": uploads }),
    ))
}

pub(super) fn list_parts(
    shared: &Shared,
    key: &(String, String),
    arn: &str,
    upload_id: &str,
    query: &HashMap<String, String>,
) -> Result<HttpResponse, ApiError> {
    shared.state.lock().stats.list_parts += 1;
    let limit = parse_limit(query)?;
    let start = match query.get("marker").map(String::as_str) {
        None | Some("") => 0,
        Some(m) => parse_part_marker(m)
            .ok_or_else(|| ApiError::invalid_parameter(format!("Invalid marker: {m}")))?,
    };
    let st = shared.state.lock();
    let vault = st.vaults.get(key).ok_or_else(|| vault_not_found(arn))?;
    let created = *vault
        .created_by_id
        .get(upload_id)
        .ok_or_else(|| upload_not_found(upload_id))?;
    let up = vault
        .uploads
        .get(&(created, upload_id.to_owned()))
        .ok_or_else(|| upload_not_found(upload_id))?;
    let end = up
        .parts
        .min(start.saturating_add(u32::try_from(limit).unwrap_or(u32::MAX)));
    let parts: Vec<Value> = (start..end)
        .map(|i| {
            let first = u64::from(i).saturating_mul(up.part_size);
            let last = first.saturating_add(up.part_size - 1);
            json!({
                "RangeInBytes": format!("{first}-{last}"),
                "SHA256TreeHash": hex(&sha256(format!("{upload_id}/{i}").as_bytes())),
            })
        })
        .collect();
    let body = json!({
        "ArchiveDescription": up.description,
        "CreationDate": iso8601(created),
        "Marker": (end < up.parts).then(|| part_marker(end)),
        "MultipartUploadId": upload_id,
        "PartSizeInBytes": up.part_size,
        "Parts": parts,
        "VaultARN": arn,
    });
    drop(st);
    Ok(json_response(StatusCode::OK, &body))
}

pub(super) fn abort_multipart_upload(
    shared: &Shared,
    key: &(String, String),
    arn: &str,
    upload_id: &str,
) -> Result<HttpResponse, ApiError> {
    let mut guard = shared.state.lock();
    let st = &mut *guard;
    st.stats.abort_multipart_upload += 1;
    *st.stats
        .aborts_by_upload_id
        .entry(upload_id.to_owned())
        .or_default() += 1;
    let vault = st.vaults.get_mut(key).ok_or_else(|| vault_not_found(arn))?;
    let created = *vault
        .created_by_id
        .get(upload_id)
        .ok_or_else(|| upload_not_found(upload_id))?;
    let id = (created, upload_id.to_owned());
    let up = vault
        .uploads
        .get_mut(&id)
        .ok_or_else(|| upload_not_found(upload_id))?;
    // Lock order: state, then faults (nothing takes them the other way round).
    let fate = (shared.faults.lock()).abort_fate(&up.description, up.swallowed_aborts);
    if fate == AbortFate::Remove {
        vault.uploads.remove(&id);
        vault.created_by_id.remove(upload_id);
        st.stats.aborts_removed += 1;
    } else {
        up.swallowed_aborts += 1;
        st.stats.aborts_swallowed += 1;
    }
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::NO_CONTENT;
    Ok(resp)
}
