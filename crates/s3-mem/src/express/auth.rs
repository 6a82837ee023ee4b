//! Authentication of a directory-bucket request: the `SigV4` signature, then what its
//! operation asks of the credential (a base key for `CreateSession`, the bucket's live session
//! for the data plane).

use chrono::{DateTime, Utc};
use hyper::StatusCode;
use hyper::http::request::Parts;

use super::errors::{S3Error, auth_error};
use super::route::{Operation, Target};
use super::state::Shared;
use super::{SESSION_TOKEN_HEADER, SIGV4_RULES};
use crate::sigv4::{self, header_str};

/// What signed a request: a base key, or a session's key.
pub(super) enum Credential {
    Base,
    Session {
        bucket: String,
        token: String,
        expires: DateTime<Utc>,
    },
}

/// Verifies the signature, then what the operation asks of the credential.
pub(super) fn authenticate(
    shared: &Shared,
    parts: &Parts,
    target: &Target,
    op: Operation,
    body: &[u8],
) -> Result<(), S3Error> {
    let token = header_str(&parts.headers, SESSION_TOKEN_HEADER);
    let req = sigv4::Signed {
        method: &parts.method,
        path: &target.path,
        query: target.query.as_deref(),
        headers: &parts.headers,
        body,
    };
    let lookup = |access_key: &str| {
        if let Some(secret) = shared.keys.lock().get(access_key) {
            return Some((secret.clone(), Credential::Base));
        }
        let st = shared.state.lock();
        st.sessions.get(access_key).map(|s| {
            (
                s.secret.clone(),
                Credential::Session {
                    bucket: s.bucket.clone(),
                    token: s.token.clone(),
                    expires: s.expires,
                },
            )
        })
    };
    let (signer, credential) = sigv4::verify(&SIGV4_RULES, &req, lookup).map_err(|f| {
        shared.reject(false);
        auth_error(f, token.is_some())
    })?;
    let refused = |message: &str| {
        shared.reject(false);
        S3Error::access_denied(message)
    };
    match credential {
        Credential::Base if op == Operation::CreateSession => Ok(()),
        Credential::Base if op.data_plane() => Err(refused(
            "Directory bucket data-plane requests must be signed with session credentials (CreateSession) and carry x-amz-s3session-token",
        )),
        Credential::Base => Ok(()),
        Credential::Session { .. } if op == Operation::CreateSession => Err(refused(
            "CreateSession must be signed with the bucket owner's credentials, not a session's",
        )),
        Credential::Session {
            bucket,
            token: expected,
            expires,
        } => {
            let Some(token) = token else {
                return Err(refused(
                    "Session credentials require the x-amz-s3session-token header",
                ));
            };
            if !signer.signed(SESSION_TOKEN_HEADER) {
                return Err(refused("x-amz-s3session-token must be a signed header"));
            }
            if token != expected {
                return Err(refused("The provided session token is invalid"));
            }
            if Utc::now() >= expires {
                shared.reject(true);
                return Err(S3Error::new(
                    StatusCode::BAD_REQUEST,
                    "ExpiredToken",
                    "The provided token has expired.",
                ));
            }
            if bucket != target.bucket {
                return Err(refused(
                    "The session of this request was created for another bucket",
                ));
            }
            Ok(())
        }
    }
}
