//! Errors of the store and their classification: which call failed ([`Operation`]), why in a word
//! from a small fixed set ([`ErrorKind`], a metrics label), and a one-line message that says what to
//! fix. Both request paths (the SDK's and the lean path) classify through [`service_error`], so one
//! server answer always gets one kind.

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::http::Response as HttpResponse;
use serde::Serialize;

/// The S3 call that failed; a metrics label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// ListMultipartUploads
    ListUploads,
    /// ListParts
    ListParts,
    /// AbortMultipartUpload
    Abort,
    /// Building the client (credentials, CA bundle)
    Connect,
    /// GetBucketLifecycleConfiguration (the lifecycle audit; never fails a sweep)
    GetLifecycle,
    /// ListBuckets (discovery)
    ListBuckets,
    /// GetBucketTagging (discovery by tags)
    GetBucketTagging,
    /// GetObject, PutObject or DeleteObject of a lease object (`[coordination]`, crate::lease)
    Lease,
}

impl Operation {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::ListUploads => "list_uploads",
            Operation::ListParts => "list_parts",
            Operation::Abort => "abort",
            Operation::Connect => "connect",
            Operation::GetLifecycle => "get_lifecycle",
            Operation::ListBuckets => "list_buckets",
            Operation::GetBucketTagging => "get_bucket_tagging",
            Operation::Lease => "lease",
        }
    }
}

/// Why a call failed, from a small fixed set (a metrics label).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// 503 SlowDown and friends, after the retries.
    Throttled,
    /// AccessDenied: the credentials lack a permission.
    AccessDenied,
    /// Missing, expired or invalid credentials, bad signature.
    Credentials,
    /// The bucket does not exist.
    NoSuchBucket,
    /// Connect or read timeout.
    Timeout,
    /// Connection refused, reset, DNS, TLS.
    Network,
    /// Any other 5xx.
    Server,
    /// Any other 4xx.
    Client,
    /// The server broke the protocol (e.g. a listing that does not advance).
    Protocol,
    /// Anything else.
    Other,
}

impl ErrorKind {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Throttled => "throttled",
            ErrorKind::AccessDenied => "access_denied",
            ErrorKind::Credentials => "credentials",
            ErrorKind::NoSuchBucket => "no_such_bucket",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Network => "network",
            ErrorKind::Server => "server",
            ErrorKind::Client => "client",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Other => "other",
        }
    }
}

/// A failed S3 call, after the retries.
#[derive(Debug, thiserror::Error)]
#[error("{operation} failed ({kind}): {message}", operation = .operation.as_str(), kind = .kind.as_str())]
pub struct StoreError {
    /// Which call.
    pub operation: Operation,
    /// Why, in a word.
    pub kind: ErrorKind,
    /// What the server or the SDK said, with a hint where one helps.
    pub message: String,
}

impl StoreError {
    /// A protocol violation noticed by the caller (e.g. a listing that does not advance).
    pub fn protocol(operation: Operation, message: impl Into<String>) -> Self {
        StoreError {
            operation,
            kind: ErrorKind::Protocol,
            message: message.into(),
        }
    }

    /// A client that cannot be built (CA bundle, TLS setup).
    pub(crate) fn connect(message: impl Into<String>) -> Self {
        StoreError {
            operation: Operation::Connect,
            kind: ErrorKind::Other,
            message: message.into(),
        }
    }
}

/// The service a call was made to, for the permissions an error's hint names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Service {
    /// S3 (buckets, access points, directory buckets).
    S3,
    /// S3 Glacier (vaults).
    Glacier,
}

/// Our kind and a one-line message that says what to fix, for an error answer of the server.
pub(super) fn service_error(
    operation: Operation,
    service: Service,
    bucket: &str,
    status: u16,
    code: &str,
    text: &str,
) -> StoreError {
    let kind = match code {
        "SlowDown"
        | "Throttling"
        | "ThrottlingException"
        | "TooManyRequests"
        | "RequestLimitExceeded"
        | "TooManyRequestsException" => ErrorKind::Throttled,
        // Some stores (Garage) answer a bad signature with AccessDenied.
        "AccessDenied" if text.to_ascii_lowercase().contains("signature") => ErrorKind::Credentials,
        "AccessDenied" | "AllAccessDisabled" | "AccountProblem" | "AccessDeniedException" => {
            ErrorKind::AccessDenied
        }
        // Glacier's names for a key it does not know or a bad signature.
        "UnrecognizedClientException" | "InvalidSignatureException" => ErrorKind::Credentials,
        "InvalidAccessKeyId"
        | "SignatureDoesNotMatch"
        | "ExpiredToken"
        | "InvalidToken"
        | "TokenRefreshRequired"
        | "InvalidSecurity" => ErrorKind::Credentials,
        "NoSuchBucket" => ErrorKind::NoSuchBucket,
        _ if status == 429 => ErrorKind::Throttled,
        _ if status >= 500 => ErrorKind::Server,
        _ => ErrorKind::Client,
    };
    let hint = match kind {
        ErrorKind::NoSuchBucket => {
            format!(" (bucket {bucket:?} does not exist: check the name and the region)")
        }
        ErrorKind::Client if code == "ResourceNotFoundException" => {
            format!(" ({bucket:?} does not exist: check the vault's name, account_id and region)")
        }
        ErrorKind::AccessDenied => match operation {
            Operation::ListBuckets => {
                " (discovery needs s3:ListAllMyBuckets: see deploy/iam/)".to_string()
            }
            Operation::GetBucketTagging => {
                format!(" (discovery by tags needs s3:GetBucketTagging on {bucket:?})")
            }
            Operation::GetLifecycle => format!(
                " (reading the lifecycle rules needs s3:GetLifecycleConfiguration on {bucket:?}: optional, the sweep is not affected)"
            ),
            Operation::Lease => format!(
                " (the lease needs s3:GetObject, s3:PutObject and s3:DeleteObject on its prefix in {bucket:?})"
            ),
            _ if service == Service::Glacier => format!(
                " (the credentials lack glacier:ListMultipartUploads / glacier:ListParts / glacier:AbortMultipartUpload on {bucket:?}: see deploy/iam/)"
            ),
            _ => format!(
                " (the credentials lack s3:ListBucketMultipartUploads / s3:ListMultipartUploadParts / s3:AbortMultipartUpload on {bucket:?})"
            ),
        },
        ErrorKind::Credentials => {
            " (check the access key, secret and session token the credential chain found)"
                .to_string()
        }
        _ => String::new(),
    };
    // No code: the answer was not an S3 error document, and `text` says what it was.
    let code = if code.is_empty() {
        format!("HTTP {status} without an S3 error document")
    } else {
        code.to_string()
    };
    let text = if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    };
    StoreError {
        operation,
        kind,
        message: format!("{code}{text}{hint}"),
    }
}

/// What to fix after a redirect: S3 answers a request sent to the wrong region with 301 (or 400
/// AuthorizationHeaderMalformed) and the bucket's region in `x-amz-bucket-region`.
pub(super) fn redirect_hint(status: u16, region: Option<&str>) -> String {
    match region {
        Some(r) if matches!(status, 301 | 307 | 400) && !r.is_empty() => {
            format!(" (the bucket is in region {r:?}: set region = {r:?} for this target)")
        }
        _ if status == 301 => {
            " (the bucket is in another region; the server did not say which)".to_string()
        }
        _ => String::new(),
    }
}

/// Whether an error answer to `op` says the upload is gone, as each store words it (the table is
/// docs/store-answers.md): `NoSuchUpload`, from every store, to ListParts and aborts; `404
/// NoSuchKey` to ListParts, from Ceph RGW (its ListParts looks the upload's metadata object up by
/// key and upload id, and answers NoSuchKey once it is gone). Nothing else counts as gone: an
/// abort's NoSuchKey, or a NoSuchKey that is not a 404, stays an error.
pub(super) fn means_gone(op: Operation, status: u16, code: &str) -> bool {
    code == "NoSuchUpload" || (op == Operation::ListParts && status == 404 && code == "NoSuchKey")
}

/// [`means_gone`] for an SDK error.
pub(super) fn sdk_means_gone<E>(op: Operation, e: &SdkError<E, HttpResponse>) -> bool
where
    E: ProvideErrorMetadata,
{
    matches!(e, SdkError::ServiceError(s)
        if means_gone(op, s.raw().status().as_u16(), s.err().code().unwrap_or("")))
}

/// Maps an SDK error to our kind and a one-line message that says what to fix.
pub(crate) fn classify<E>(
    operation: Operation,
    service: Service,
    bucket: &str,
    e: SdkError<E, HttpResponse>,
) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let (kind, message) = match &e {
        SdkError::ServiceError(s) => {
            let err = s.err();
            let status = s.raw().status().as_u16();
            let code = err.code().unwrap_or("");
            let text = match (code, err.message()) {
                ("", _) => s
                    .raw()
                    .body()
                    .bytes()
                    .map(super::xml::snippet)
                    .unwrap_or_else(|| chain(&e)),
                (_, message) => message.unwrap_or("").to_string(),
            };
            let mut error = service_error(operation, service, bucket, status, code, &text);
            let region = s.raw().headers().get("x-amz-bucket-region");
            error.message.push_str(&redirect_hint(status, region));
            return error;
        }
        SdkError::TimeoutError(_) => (ErrorKind::Timeout, format!("timed out: {}", chain(&e))),
        // An assumed role's failure says which role and why (crate::store::credentials).
        SdkError::DispatchFailure(_) if chain(&e).contains("AssumeRole of") => {
            return credentials_error(operation, &chain(&e));
        }
        SdkError::DispatchFailure(_) if chain(&e).contains("credential") => (
            ErrorKind::Credentials,
            "no AWS credentials found by the default chain (environment, profile, SSO, web identity, container, instance metadata): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile, or a role".to_string(),
        ),
        SdkError::DispatchFailure(d) => {
            let kind = if d.is_timeout() {
                ErrorKind::Timeout
            } else if d.is_user() {
                ErrorKind::Other
            } else {
                ErrorKind::Network
            };
            (kind, format!("{} {NETWORK_HINT}", chain(&e)))
        }
        SdkError::ResponseError(_) => (ErrorKind::Network, chain(&e)),
        SdkError::ConstructionFailure(_) => {
            let text = chain(&e);
            if text.to_ascii_lowercase().contains("credential") {
                return credentials_error(operation, &text);
            }
            (ErrorKind::Other, text)
        }
        _ => (ErrorKind::Other, chain(&e)),
    };
    StoreError {
        operation,
        kind,
        message,
    }
}

/// Appended to a failure to reach the store.
pub(super) const NETWORK_HINT: &str =
    "(check endpoint_url, region and the network path to the store)";

/// The credential chain found nothing usable.
pub(super) fn credentials_error(operation: Operation, text: &str) -> StoreError {
    // An assumed role's refusal names the role and STS's answer (crate::store::credentials).
    let message = match text.find("AssumeRole of") {
        Some(at) => format!(
            "cannot assume the role: {} (the base credentials need sts:AssumeRole on the role, and the role's trust policy must name them and any external_id)",
            &text[at..]
        ),
        None => format!(
            "no usable AWS credentials: {text} (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile, or a role)"
        ),
    };
    StoreError {
        operation,
        kind: ErrorKind::Credentials,
        message,
    }
}

/// An error and its sources on one line ("a: b: c"), without the Debug dumps the SDK's own
/// `DisplayErrorContext` appends, and without repeating a cause that its wrapper already printed.
pub(super) fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string().replace('\n', "; ");
    let mut next = e.source();
    while let Some(cause) = next {
        let text = cause.to_string().replace('\n', "; ");
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gone_is_recognised_as_each_store_words_it_and_nothing_else_is() {
        use Operation::*;
        // (operation, status, code, gone?) from docs/store-answers.md
        let table = [
            (ListParts, 404, "NoSuchUpload", true), // AWS, Garage, MinIO
            (Abort, 404, "NoSuchUpload", true),     // every store, second abort
            (ListParts, 404, "NoSuchKey", true),    // Ceph RGW after an abort
            (Abort, 404, "NoSuchKey", false),       // no store answers so: an error
            (ListParts, 400, "NoSuchKey", false),   // not a 404: an error
            (ListParts, 404, "NoSuchBucket", false),
            (ListParts, 404, "", false), // a bare 404 is ambiguous
            (ListParts, 403, "AccessDenied", false),
            (ListParts, 500, "InternalError", false),
        ];
        for (op, status, code, gone) in table {
            assert_eq!(means_gone(op, status, code), gone, "{op:?} {status} {code}");
        }
    }
}
