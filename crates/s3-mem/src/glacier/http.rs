//! One Glacier request from arrival to answer: logged, delayed by the fault plan, read,
//! authenticated, its API version checked, routed and served.

use std::sync::Arc;

use http_body_util::{BodyExt as _, Limited};
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Request, StatusCode};

use super::auth::authenticate;
use super::errors::ApiError;
use super::ops::{
    Operation, abort_multipart_upload, list_multipart_uploads, list_parts, route, vault_arn,
};
use super::state::Shared;
use super::{API_VERSION, MAX_BODY};
use crate::serve::{HttpResponse, parse_query};
use crate::sigv4::header_str;

/// Reads, authenticates, routes and serves one request.
pub(super) async fn serve(
    shared: &Shared,
    req: Request<Incoming>,
) -> Result<HttpResponse, ApiError> {
    let (parts, body) = req.into_parts();
    let body = Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map_err(|e| ApiError::invalid_parameter(format!("Cannot read the request body: {e}")))?
        .to_bytes();
    let (path, query) = (parts.uri.path(), parts.uri.query());
    let caller = authenticate(shared, &parts.method, path, query, &parts.headers, &body)
        .inspect_err(|_| shared.state.lock().stats.rejected += 1)?;

    match header_str(&parts.headers, "x-amz-glacier-version") {
        Some(API_VERSION) => {}
        Some(other) => {
            return Err(ApiError::invalid_parameter(format!(
                "Unsupported API version: {other}; this endpoint serves {API_VERSION}"
            )));
        }
        None => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "MissingParameterValueException",
                "Required header x-amz-glacier-version is missing",
            ));
        }
    }
    let Some(route) = route(&parts.method, path) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "UnknownOperationException",
            format!("No operation at {} {path}", parts.method),
        ));
    };
    let account_id = match route.account_id.as_str() {
        "-" => caller.account_id.clone(),
        id if id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit()) => id.to_owned(),
        id => {
            return Err(ApiError::invalid_parameter(format!(
                "Invalid account id: {id}; expected '-' or a 12-digit AWS account id"
            )));
        }
    };
    let query = parse_query(query);
    let arn = vault_arn(&caller.region, &account_id, &route.vault);
    let key = (account_id, route.vault);
    match route.operation {
        Operation::ListMultipartUploads => list_multipart_uploads(shared, &key, &arn, &query),
        Operation::ListParts(upload_id) => list_parts(shared, &key, &arn, &upload_id, &query),
        Operation::AbortMultipartUpload(upload_id) => {
            abort_multipart_upload(shared, &key, &arn, &upload_id)
        }
    }
}

// ---------------------------------------------------------------------------------------
// HTTP serving

pub(super) async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> HttpResponse {
    let target = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().path().to_owned(), |pq| pq.as_str().to_owned());
    {
        let mut st = shared.state.lock();
        st.stats.requests += 1;
        st.log.push(format!("{} {target}", req.method()));
    }
    let latency = shared.faults.lock().latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let mut resp = serve(&shared, req)
        .await
        .unwrap_or_else(ApiError::into_response);
    if let Ok(id) = HeaderValue::from_str(&shared.new_request_id()) {
        resp.headers_mut().insert("x-amzn-requestid", id);
    }
    resp
}
