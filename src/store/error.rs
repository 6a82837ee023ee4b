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
        _ if region_mismatch(code, text).is_some() => {
            region_mismatch(code, text).unwrap_or_default()
        }
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

/// What to fix when a store refuses the signature's scope because of its region: AWS says
/// `the region 'us-east-1' is wrong; expecting 'eu-west-1'` (AuthorizationHeaderMalformed), other
/// stores only that the scope or region is wrong.
fn region_mismatch(code: &str, text: &str) -> Option<String> {
    if let Some((_, rest)) = text.split_once("expecting '")
        && let Some((region, _)) = rest.split_once('\'')
        && !region.is_empty()
    {
        return Some(format!(
            " (the store expects region {region:?}: set region = {region:?} for this target)"
        ));
    }
    // Garage: "unexpected scope: '20261206/eu-west-1/s3/aws4_request', expected:
    // '20261206/garage/s3/aws4_request'".
    if let Some((_, rest)) = text.split_once("expected: '")
        && let Some(region) = rest.split('/').nth(1).filter(|r| !r.is_empty())
    {
        return Some(format!(
            " (the store expects region {region:?}: set region = {region:?} for this target)"
        ));
    }
    let lower = text.to_ascii_lowercase();
    let about_region = lower.contains("region") || lower.contains("scope");
    (code == "AuthorizationHeaderMalformed" || (about_region && code.contains("Signature"))
        || (about_region && code == "AccessDenied" && lower.contains("signature")))
    .then(|| {
        " (the request was signed for another region than the store's: set region to the store's own, e.g. Garage's s3_region, Ceph RGW's zonegroup api_name, MinIO's MINIO_REGION)".to_string()
    })
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

/// Adds to a failure to resolve a virtual-hosted name (`bucket.host`, the SDK's default addressing)
/// the name tried and the setting that avoids it; other errors are returned as they were.
pub(super) fn with_virtual_host_hint(mut e: StoreError, host: Option<&str>) -> StoreError {
    let lower = e.message.to_ascii_lowercase();
    let unresolved = [
        "dns error",
        "failed to lookup address",
        "name or service not known",
        "no address associated",
        "nodename nor servname",
    ]
    .iter()
    .any(|s| lower.contains(s));
    if let Some(host) = host.filter(|_| unresolved && e.kind == ErrorKind::Network) {
        e.message.push_str(&format!(
            " (the virtual-hosted name {host:?} does not resolve: set force_path_style = true for a store that takes path-style requests, or give it wildcard DNS)"
        ));
    }
    e
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
            "{} (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile, or a role)",
            credentials_tried(text)
        ),
    };
    StoreError {
        operation,
        kind: ErrorKind::Credentials,
        message,
    }
}

/// What the credential chain tried, in one line: aws-config lists each provider's refusal
/// ("Attempted: Environment: the credential provider was not enabled: ...; Profile: ...") when all
/// were off, but names only the last one (instance metadata) when that one was reached.
fn credentials_tried(text: &str) -> String {
    const OFF: &str = "the credential provider was not enabled";
    if let Some((_, attempted)) = text.split_once("Attempted:") {
        let tried: Vec<String> = attempted
            .split(';')
            .filter_map(|p| {
                let (name, why) = p.trim().split_once(':')?;
                let why = why
                    .trim()
                    .trim_start_matches(OFF)
                    .trim_start_matches(':')
                    .trim();
                Some(if why.is_empty() {
                    name.trim().to_string()
                } else {
                    format!("{} ({why})", name.trim())
                })
            })
            .collect();
        return format!("no AWS credentials found; tried {}", tried.join(", "));
    }
    let last = text
        .trim_start_matches("an error occurred while loading credentials: ")
        .trim();
    if last.contains("IMDS") {
        return format!(
            "no AWS credentials found; tried the environment, the shared profile, web identity, the container endpoint and instance metadata, which answered: {last}"
        );
    }
    format!("no usable AWS credentials: {last}")
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
    fn a_refused_signature_scope_names_the_region_to_set() {
        let aws = service_error(
            Operation::ListUploads,
            Service::S3,
            "b",
            400,
            "AuthorizationHeaderMalformed",
            "The authorization header is malformed; the region 'us-east-1' is wrong; expecting 'eu-west-1'",
        );
        assert!(
            aws.message
                .ends_with("(the store expects region \"eu-west-1\": set region = \"eu-west-1\" for this target)"),
            "{}",
            aws.message
        );
        let garage = service_error(
            Operation::ListUploads,
            Service::S3,
            "b",
            400,
            "AuthorizationHeaderMalformed",
            "Authorization header malformed, unexpected scope: '20261206/eu-west-1/s3/aws4_request', expected: '20261206/garage/s3/aws4_request'",
        );
        assert!(
            garage
                .message
                .ends_with("set region = \"garage\" for this target)"),
            "{}",
            garage.message
        );
        let other = service_error(
            Operation::ListUploads,
            Service::S3,
            "b",
            400,
            "AuthorizationHeaderMalformed",
            "Authorization header malformed, unexpected scope",
        );
        assert!(
            other.message.contains("Garage's s3_region"),
            "{}",
            other.message
        );
        let plain = service_error(
            Operation::ListUploads,
            Service::S3,
            "b",
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match",
        );
        assert!(
            plain.message.contains("check the access key"),
            "{}",
            plain.message
        );
    }

    #[test]
    fn a_missing_credential_is_one_line_naming_what_was_tried() {
        let off = "the credential provider was not enabled: no credentials found in chain. Attempted:;   Environment: the credential provider was not enabled: environment variable not set;   Profile: the credential provider was not enabled;   Ec2InstanceMetadata: the credential provider was not enabled: IMDS disabled by AWS_EC2_METADATA_DISABLED env var set to `true`";
        assert_eq!(
            credentials_tried(off),
            "no AWS credentials found; tried Environment (environment variable not set), Profile, Ec2InstanceMetadata (IMDS disabled by AWS_EC2_METADATA_DISABLED env var set to `true`)"
        );
        let imds = "an error occurred while loading credentials: failed to load IMDS session token: service error: request forbidden";
        let e = credentials_error(Operation::ListUploads, imds);
        assert_eq!(
            e.message,
            "no AWS credentials found; tried the environment, the shared profile, web identity, the container endpoint and instance metadata, which answered: failed to load IMDS session token: service error: request forbidden (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile, or a role)"
        );
        assert!(!e.message.contains('\n'));
    }

    #[test]
    fn an_unresolved_virtual_hosted_name_is_named_with_the_flag() {
        let dns = StoreError {
            operation: Operation::ListUploads,
            kind: ErrorKind::Network,
            message: "dispatch failure: io error: client error (Connect): dns error: failed to lookup address information: Name or service not known".into(),
        };
        let e = with_virtual_host_hint(dns, Some("photos.minio"));
        assert!(
            e.message
                .contains("\"photos.minio\" does not resolve: set force_path_style = true"),
            "{}",
            e.message
        );
        let refused = StoreError {
            operation: Operation::ListUploads,
            kind: ErrorKind::Network,
            message: "connection refused".into(),
        };
        assert_eq!(
            with_virtual_host_hint(refused, Some("photos.minio")).message,
            "connection refused"
        );
    }

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
