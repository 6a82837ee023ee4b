//! Errors as S3 sends them (`<Error><Code/><Message/><RequestId/></Error>`), a signature
//! failure's S3 error, and the XML the operations render with.

use std::fmt::Write as _;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::HeaderValue;
use hyper::{Response, StatusCode};

use super::{S3_NAMESPACE, SIGV4_RULES};
use crate::serve::HttpResponse;
use crate::sigv4::Failure;

#[derive(Debug)]
pub(super) struct S3Error {
    pub(super) status: StatusCode,
    pub(super) code: &'static str,
    pub(super) message: String,
}

impl S3Error {
    pub(super) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub(super) fn access_denied(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "AccessDenied", message)
    }

    pub(super) fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidArgument", message)
    }

    pub(super) fn no_such_bucket() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NoSuchBucket",
            "The specified bucket does not exist",
        )
    }

    pub(super) fn no_such_upload() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NoSuchUpload",
            "The specified multipart upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
        )
    }

    pub(super) fn into_response(self, request_id: &str) -> HttpResponse {
        let mut body = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>");
        element(&mut body, "Code", self.code);
        element(&mut body, "Message", &self.message);
        element(&mut body, "RequestId", request_id);
        body.push_str("</Error>");
        xml_response(self.status, body)
    }
}

/// A signature failure as S3 answers it; `session` when the request carried a session token.
pub(super) fn auth_error(failure: Failure, session: bool) -> S3Error {
    const MALFORMED: &str = "AuthorizationHeaderMalformed";
    match failure {
        Failure::Missing => S3Error::access_denied("Access Denied"),
        Failure::Malformed => S3Error::new(
            StatusCode::BAD_REQUEST,
            MALFORMED,
            "The authorization header is malformed; it must be AWS4-HMAC-SHA256 with Credential, SignedHeaders and Signature.",
        ),
        Failure::MissingDate | Failure::BadDate(_) => {
            S3Error::access_denied("AWS authentication requires a valid Date or x-amz-date header")
        }
        Failure::WrongService(service) => S3Error::new(
            StatusCode::BAD_REQUEST,
            MALFORMED,
            format!(
                "The authorization header is malformed; incorrect service '{service}'. This endpoint belongs to '{}'.",
                SIGV4_RULES.service
            ),
        ),
        Failure::ScopeDate { .. } => S3Error::new(
            StatusCode::BAD_REQUEST,
            MALFORMED,
            "The authorization header is malformed; Invalid credential date. Date is not the same as X-Amz-Date.",
        ),
        Failure::Expired { .. } => S3Error::new(
            StatusCode::FORBIDDEN,
            "RequestTimeTooSkewed",
            "The difference between the request time and the current time is too large.",
        ),
        Failure::UnknownKey(_) if session => {
            S3Error::access_denied("The session of this request does not exist")
        }
        Failure::UnknownKey(_) => S3Error::new(
            StatusCode::FORBIDDEN,
            "InvalidAccessKeyId",
            "The AWS Access Key Id you provided does not exist in our records.",
        ),
        Failure::HostOrDateUnsigned => S3Error::access_denied(
            "'Host' and 'X-Amz-Date' must be signed headers in the AWS Authorization.",
        ),
        Failure::MissingContentSha256 => S3Error::new(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "Missing required header for this request: x-amz-content-sha256",
        ),
        Failure::ContentSha256Mismatch => S3Error::new(
            StatusCode::BAD_REQUEST,
            "XAmzContentSHA256Mismatch",
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        ),
        Failure::SignatureMismatch => S3Error::new(
            StatusCode::FORBIDDEN,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
        ),
    }
}

pub(super) fn xml_response(status: StatusCode, body: String) -> HttpResponse {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    resp
}

/// Appends `<name>text</name>`, the text escaped.
pub(super) fn element(out: &mut String, name: &str, text: &str) {
    let _ = write!(out, "<{name}>");
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    let _ = write!(out, "</{name}>");
}

/// The opening of a document: the XML declaration and `<root xmlns=...>`.
pub(super) fn document(root: &str) -> String {
    format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{root} xmlns=\"{S3_NAMESPACE}\">")
}
