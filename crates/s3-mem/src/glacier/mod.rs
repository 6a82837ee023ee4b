//! An embedded in-memory S3 Glacier (vaults) endpoint: the multipart-upload operations the
//! janitor sweeps vaults with, over real HTTP, with real `SigV4` verification.
//!
//! No open-source server speaks Glacier's protocol (restJson1, API version `2012-06-01`), so
//! this module serves the small part of it the janitor uses, shaped as `aws-sdk-glacier`
//! 1.121.0 parses it:
//!
//! - `ListMultipartUploads`: `GET /{accountId}/vaults/{vaultName}/multipart-uploads`
//!   (`limit` 1..=1000, default 50; an opaque `marker`), uploads ordered by creation date then
//!   id;
//! - `ListParts`: `GET /{accountId}/vaults/{vaultName}/multipart-uploads/{uploadId}` (same
//!   paging);
//! - `AbortMultipartUpload`: `DELETE` on that path, answering 204;
//! - errors as Glacier sends them: a JSON body `{"code", "message", "type"}` and the code in
//!   `x-amzn-ErrorType` (`ResourceNotFoundException`, `InvalidParameterValueException`,
//!   `MissingParameterValueException`, and for authentication
//!   `MissingAuthenticationTokenException`, `IncompleteSignatureException`,
//!   `InvalidSignatureException`, `UnrecognizedClientException`); anything else answers
//!   `404 UnknownOperationException`.
//!
//! `SigV4` is verified here (by `sigv4.rs`, shared with the directory-bucket endpoint),
//! independently of the client's signer: the credential scope (service `glacier`, any region,
//! the date of `x-amz-date`, within 15 minutes of the real clock), then the signature
//! recomputed from the request as received (method, normalised and re-encoded path, canonical
//! query, the signed headers, `x-amz-content-sha256` or the SHA-256 of the body).
//! `x-amz-security-token` may be a signed header (temporary credentials); the token itself is
//! not checked. An account id in the path is `-` (the signer's account) or a 12-digit id, used
//! as given: vaults live per account.
//!
//! State lives in ordered maps behind one mutex; a vault's uploads are keyed by
//! `(creation date, upload id)`, so a listing page is a range query after its marker. The
//! requests received are logged, in order, for assertions ([`GlacierEndpoint::requests`]).
//!
//! Its parts: `endpoint` (the handle), `model` (the fault plan, counters and snapshots it hands
//! out), `state` (vaults, uploads, markers), `auth` (`SigV4` and its Glacier errors), `ops`
//! (routing and the operations), `errors` (Glacier's JSON error documents), `http` (one
//! request from arrival to answer); `tests` beside them.

mod auth;
mod endpoint;
mod errors;
mod http;
mod model;
mod ops;
mod state;
#[cfg(test)]
mod tests;

use crate::sigv4::Rules;

pub use endpoint::GlacierEndpoint;
pub use model::{GlacierFaults, GlacierStats, VaultUploadSnapshot};

/// Account the start key belongs to: a path signed with it and an account id of `-` means this
/// account, and so does `-` given to the seeding methods.
pub const DEFAULT_ACCOUNT_ID: &str = "111122223333";
/// The only API version served, required in `x-amz-glacier-version`.
pub const API_VERSION: &str = "2012-06-01";

/// Page size of a listing without `limit`, as Glacier's.
const DEFAULT_LIMIT: usize = 50;
/// Largest `limit` Glacier accepts.
const MAX_LIMIT: usize = 1000;
/// Largest request body read (the operations served take none).
const MAX_BODY: usize = 1 << 20;
/// Length of an upload id, as Glacier's.
const UPLOAD_ID_LEN: usize = 92;
/// What upload ids are made of (URL-safe, as Glacier's).
const ID_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// How this module verifies `SigV4`: service `glacier`, the path normalised and encoded twice.
const SIGV4_RULES: Rules = Rules {
    service: "glacier",
    double_encode_path: true,
    s3_payload: false,
};
