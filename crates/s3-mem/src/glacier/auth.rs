//! `SigV4` verification of a Glacier request, and a verification failure as Glacier answers
//! it.

use hyper::{Method, StatusCode};

use super::SIGV4_RULES;
use super::errors::ApiError;
use super::state::Shared;
use crate::sigv4::{self, Failure};

// ---------------------------------------------------------------------------------------
// SigV4 verification

/// Who signed a request that passed authentication.
pub(super) struct Caller {
    pub(super) account_id: String,
    pub(super) region: String,
}

/// Checks the request's `SigV4` signature; answers who signed it.
pub(super) fn authenticate(
    shared: &Shared,
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &hyper::header::HeaderMap,
    body: &[u8],
) -> Result<Caller, ApiError> {
    let req = sigv4::Signed {
        method,
        path,
        query,
        headers,
        body,
    };
    let lookup = |access_key: &str| {
        let keys = shared.keys.lock();
        keys.get(access_key)
            .map(|key| (key.secret.clone(), key.account_id.clone()))
    };
    let (signer, account_id) = sigv4::verify(&SIGV4_RULES, &req, lookup).map_err(auth_error)?;
    Ok(Caller {
        account_id,
        region: signer.region,
    })
}

/// A verification failure as Glacier answers it.
pub(super) fn auth_error(failure: Failure) -> ApiError {
    match failure {
        Failure::Missing => ApiError::new(
            StatusCode::FORBIDDEN,
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        ),
        Failure::Malformed => ApiError::incomplete_signature(
            "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters with an AWS4-HMAC-SHA256 credential scope.",
        ),
        Failure::MissingDate => ApiError::incomplete_signature(
            "Authorization header requires existence of a valid 'X-Amz-Date' header.",
        ),
        Failure::BadDate(amz_date) => {
            ApiError::incomplete_signature(format!("Invalid X-Amz-Date: {amz_date}"))
        }
        Failure::WrongService(service) => ApiError::invalid_signature(format!(
            "Credential should be scoped to correct service: '{}', not '{service}'.",
            SIGV4_RULES.service
        )),
        Failure::ScopeDate {
            scope_date,
            header_date,
        } => ApiError::invalid_signature(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{scope_date}' != '{header_date}'"
        )),
        Failure::Expired { amz_date, now } => ApiError::invalid_signature(format!(
            "Signature expired: {amz_date} is now outside the 15-minute window around {}",
            now.format("%Y%m%dT%H%M%SZ")
        )),
        Failure::UnknownKey(_) => ApiError::new(
            StatusCode::FORBIDDEN,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ),
        Failure::HostOrDateUnsigned => ApiError::invalid_signature(
            "'Host' and 'X-Amz-Date' must be SignedHeaders in the AWS Authorization.",
        ),
        // Glacier's rules never ask for the header.
        Failure::ContentSha256Mismatch | Failure::MissingContentSha256 => {
            ApiError::invalid_parameter(
                "x-amz-content-sha256 does not match the SHA-256 of the body",
            )
        }
        Failure::SignatureMismatch => mismatch(),
    }
}

pub(super) fn mismatch() -> ApiError {
    ApiError::invalid_signature(
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
    )
}
