//! One directory-bucket request from arrival to answer: logged, delayed by the fault plan,
//! read, authenticated, routed, served, its status recorded.

use std::collections::HashMap;
use std::sync::Arc;

use http_body_util::{BodyExt as _, Limited};
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::http::request::Parts;
use hyper::{Request, StatusCode};

use super::auth::authenticate;
use super::errors::S3Error;
use super::ops::{
    abort_multipart_upload, create_session, lifecycle, list_multipart_uploads, list_parts,
};
use super::route::{Operation, Target};
use super::state::Shared;
use super::{DirRequest, IF_MATCH_INITIATED_TIME, MAX_BODY, SESSION_TOKEN_HEADER};
use crate::serve::{HttpResponse, parse_query};
use crate::sigv4::{self, header_str};

/// Reads, authenticates, routes and serves one request.
pub(super) async fn serve(
    shared: &Shared,
    parts: &Parts,
    body: Incoming,
    target: &Target,
    op: Operation,
    query: &HashMap<String, String>,
) -> Result<HttpResponse, S3Error> {
    let body = Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map_err(|e| {
            S3Error::new(
                StatusCode::BAD_REQUEST,
                "IncompleteBody",
                format!("Cannot read the request body: {e}"),
            )
        })?
        .to_bytes();
    authenticate(shared, parts, target, op, &body)?;
    let bucket = target.bucket.as_str();
    let key = target.key.as_deref().unwrap_or_default();
    let upload_id = query.get("uploadId").map_or("", String::as_str);
    match op {
        Operation::CreateSession => create_session(shared, bucket),
        Operation::ListMultipartUploads => list_multipart_uploads(shared, bucket, query),
        Operation::ListParts => list_parts(shared, bucket, key, upload_id, query),
        Operation::AbortMultipartUpload => abort_multipart_upload(
            shared,
            bucket,
            key,
            upload_id,
            header_str(&parts.headers, IF_MATCH_INITIATED_TIME),
        ),
        Operation::GetBucketLifecycleConfiguration => lifecycle(shared, bucket),
        Operation::Unknown => Err(S3Error::new(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            format!(
                "This endpoint does not serve {} {}",
                parts.method, target.target
            ),
        )),
    }
}

pub(super) async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> HttpResponse {
    let (parts, body) = req.into_parts();
    let target = Target::read(&parts.uri, &parts.headers);
    let query = parse_query(target.query.as_deref());
    let op = Operation::route(&parts.method, &target, &query);
    let auth = header_str(&parts.headers, "authorization").and_then(sigv4::parse_authorization);
    let record = DirRequest {
        method: parts.method.to_string(),
        host: target.host.clone(),
        target: target.target.clone(),
        path_style: target.path_style,
        bucket: target.bucket.clone(),
        operation: op.name(),
        access_key: auth.map(|a| a.access_key.to_owned()).unwrap_or_default(),
        region: auth.map(|a| a.region.to_owned()).unwrap_or_default(),
        service: auth.map(|a| a.service.to_owned()).unwrap_or_default(),
        session_token: header_str(&parts.headers, SESSION_TOKEN_HEADER).map(str::to_owned),
        if_match_initiated_time: header_str(&parts.headers, IF_MATCH_INITIATED_TIME)
            .map(str::to_owned),
        status: 0,
    };
    let slot = {
        let mut st = shared.state.lock();
        st.stats.requests += 1;
        st.log.push(record)
    };
    let latency = shared.faults.lock().latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let request_id = shared.rng.request_id();
    let mut resp = serve(&shared, &parts, body, &target, op, &query)
        .await
        .unwrap_or_else(|e| e.into_response(&request_id));
    {
        let mut st = shared.state.lock();
        let status = resp.status().as_u16();
        if let Some(entry) = st.log.get_mut(slot) {
            entry.status = status;
        }
    }
    if let Ok(id) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-amz-request-id", id);
    }
    if let Ok(id) = HeaderValue::from_str(&shared.rng.request_id()) {
        resp.headers_mut().insert("x-amz-id-2", id);
    }
    resp
}
