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

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Method, Request, Response, StatusCode};
use parking_lot::Mutex;
use serde_json::{Value, json};

use crate::serve::{HttpResponse, Rng, Server, clamp_time, iso8601};
use crate::sigv4::{
    self, Failure, Rules, form_decode, header_str, hex, normalize_path, percent_decode, sha256,
    unhex,
};

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

/// Fault plan applied to requests; change it at runtime with [`GlacierEndpoint::set_faults`].
///
/// The default plan injects nothing.
#[derive(Clone, Debug, Default)]
pub struct GlacierFaults {
    /// Straggling uploads, by exact archive description: for an upload with that description,
    /// the first `N` `AbortMultipartUpload` calls answer 204 but leave the upload listed with
    /// all its parts (as if a part had landed after the abort); abort number `N + 1` really
    /// removes it. The count is kept per upload.
    pub stragglers: HashMap<String, u32>,
    /// Archive descriptions whose uploads never go away: every abort answers 204 and removes
    /// nothing.
    pub never_empty: HashSet<String>,
    /// Delay added before every request is handled (rejected ones included).
    pub latency: Duration,
}

/// Counters for assertions; see [`GlacierEndpoint::stats`].
///
/// Operation counters count every call that passed authentication and reached its operation,
/// whether it succeeded or not.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GlacierStats {
    /// HTTP requests received, rejected ones included.
    pub requests: u64,
    /// Requests refused by authentication (missing, malformed, expired or wrong signatures,
    /// unknown access keys).
    pub rejected: u64,
    /// `ListMultipartUploads` calls (one per page).
    pub list_multipart_uploads: u64,
    /// `ListParts` calls (one per page).
    pub list_parts: u64,
    /// `AbortMultipartUpload` calls (including ones answered `ResourceNotFoundException`).
    pub abort_multipart_upload: u64,
    /// Aborts that really removed an upload.
    pub aborts_removed: u64,
    /// Aborts that answered 204 but kept the upload (stragglers, never-empty descriptions).
    pub aborts_swallowed: u64,
    /// `AbortMultipartUpload` calls by upload id.
    pub aborts_by_upload_id: HashMap<String, u64>,
}

impl GlacierStats {
    /// Number of `AbortMultipartUpload` calls made for `upload_id`.
    #[must_use]
    pub fn aborts_for_upload(&self, upload_id: &str) -> u64 {
        self.aborts_by_upload_id
            .get(upload_id)
            .copied()
            .unwrap_or(0)
    }
}

/// One multipart upload of a vault as currently stored; see [`GlacierEndpoint::uploads`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VaultUploadSnapshot {
    /// Upload id (92 URL-safe characters).
    pub upload_id: String,
    /// Archive description given when the upload was created.
    pub description: String,
    /// Creation date.
    pub created: DateTime<Utc>,
    /// Size of every part in bytes.
    pub part_size: u64,
    /// Number of parts uploaded (each a full `part_size` range).
    pub parts: u32,
}

/// Handle of a running in-memory Glacier endpoint.
///
/// Dropping the handle stops the endpoint in the background; [`GlacierEndpoint::shutdown`]
/// stops it and waits. All control methods take `&self`, so the handle can be shared in an
/// `Arc`.
pub struct GlacierEndpoint {
    server: Server,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for GlacierEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GlacierEndpoint")
            .field("addr", &self.server.addr())
            .finish_non_exhaustive()
    }
}

impl GlacierEndpoint {
    /// Starts an endpoint on `127.0.0.1` with an ephemeral port, accepting requests signed with
    /// this access key / secret key pair, of account [`DEFAULT_ACCOUNT_ID`] (more keys:
    /// [`GlacierEndpoint::add_key`]).
    ///
    /// Must be called inside a tokio runtime; the server runs on spawned tasks.
    ///
    /// # Errors
    /// Fails if the listener cannot be bound.
    pub async fn start(access_key: &str, secret_key: &str) -> io::Result<GlacierEndpoint> {
        Self::start_on(
            SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            access_key,
            secret_key,
        )
        .await
    }

    /// Starts an endpoint listening on `addr` (port 0 picks a free port).
    ///
    /// # Errors
    /// Fails if the listener cannot be bound.
    pub async fn start_on(
        addr: SocketAddr,
        access_key: &str,
        secret_key: &str,
    ) -> io::Result<GlacierEndpoint> {
        let shared = Arc::new(Shared::new());
        shared.keys.lock().insert(
            access_key.to_owned(),
            KeyRec {
                secret: secret_key.to_owned(),
                account_id: DEFAULT_ACCOUNT_ID.to_owned(),
            },
        );
        let handler_shared = Arc::clone(&shared);
        let server = Server::start(addr, "glacier endpoint", move |req| {
            handle(Arc::clone(&handler_shared), req)
        })
        .await?;
        Ok(GlacierEndpoint { server, shared })
    }

    /// Address the endpoint listens on.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Base URL for clients (`endpoint_url`), e.g. `http://127.0.0.1:40123`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// Accepts requests signed with this key pair too, from now on, as a key of `account_id`
    /// (what `-` in their paths means); replaces a known access key's secret and account.
    pub fn add_key(&self, access_key: &str, secret_key: &str, account_id: &str) {
        self.shared.keys.lock().insert(
            access_key.to_owned(),
            KeyRec {
                secret: secret_key.to_owned(),
                account_id: resolve_seed_account(account_id).to_owned(),
            },
        );
    }

    /// Creates an empty vault of `account_id` (`-`: [`DEFAULT_ACCOUNT_ID`]) directly in memory;
    /// does nothing if it exists.
    pub fn create_vault(&self, account_id: &str, vault: &str) {
        self.shared
            .state
            .lock()
            .vaults
            .entry(vault_key(account_id, vault))
            .or_default();
    }

    /// Deletes a vault and its uploads at once (as if another client had); later requests on
    /// it answer `ResourceNotFoundException`. Returns whether it existed.
    pub fn delete_vault(&self, account_id: &str, vault: &str) -> bool {
        self.shared
            .state
            .lock()
            .vaults
            .remove(&vault_key(account_id, vault))
            .is_some()
    }

    /// Inserts a multipart upload directly in memory (no HTTP), creating the vault if needed,
    /// and returns its upload id (92 random URL-safe characters, as Glacier's).
    ///
    /// The upload has `parts` parts, each a full `part_size` range (a `part_size` of 0 counts
    /// as 1), with a deterministic stand-in tree hash (no bytes exist).
    pub fn seed_upload(
        &self,
        account_id: &str,
        vault: &str,
        description: &str,
        created: DateTime<Utc>,
        part_size: u64,
        parts: u32,
    ) -> String {
        let created = clamp_time(created);
        let mut st = self.shared.state.lock();
        let rec = st.vaults.entry(vault_key(account_id, vault)).or_default();
        let upload_id = loop {
            let id = self.shared.new_upload_id();
            if !rec.created_by_id.contains_key(&id) {
                break id;
            }
        };
        rec.created_by_id.insert(upload_id.clone(), created);
        rec.uploads.insert(
            (created, upload_id.clone()),
            UploadRec {
                description: description.to_owned(),
                part_size: part_size.max(1),
                parts,
                swallowed_aborts: 0,
            },
        );
        upload_id
    }

    /// Uploads of a vault in listing order (creation date, then upload id); empty if the
    /// vault does not exist.
    #[must_use]
    pub fn uploads(&self, account_id: &str, vault: &str) -> Vec<VaultUploadSnapshot> {
        let st = self.shared.state.lock();
        let Some(rec) = st.vaults.get(&vault_key(account_id, vault)) else {
            return Vec::new();
        };
        rec.uploads
            .iter()
            .map(|((created, upload_id), up)| VaultUploadSnapshot {
                upload_id: upload_id.clone(),
                description: up.description.clone(),
                created: *created,
                part_size: up.part_size,
                parts: up.parts,
            })
            .collect()
    }

    /// Number of uploads in a vault (0 if it does not exist).
    #[must_use]
    pub fn upload_count(&self, account_id: &str, vault: &str) -> usize {
        self.shared
            .state
            .lock()
            .vaults
            .get(&vault_key(account_id, vault))
            .map_or(0, |v| v.uploads.len())
    }

    /// Replaces the fault plan; `GlacierFaults::default()` turns every fault off.
    pub fn set_faults(&self, faults: GlacierFaults) {
        *self.shared.faults.lock() = faults;
    }

    /// Edits the fault plan in place.
    pub fn update_faults(&self, edit: impl FnOnce(&mut GlacierFaults)) {
        edit(&mut self.shared.faults.lock());
    }

    /// Current fault plan.
    #[must_use]
    pub fn faults(&self) -> GlacierFaults {
        self.shared.faults.lock().clone()
    }

    /// Every request received since the start or [`GlacierEndpoint::reset_requests`], in
    /// order, authenticated or not, as `METHOD PATH?QUERY` with the path and query exactly as
    /// sent (percent-encoding untouched; no `?` without a query).
    #[must_use]
    pub fn requests(&self) -> Vec<String> {
        self.shared.state.lock().log.clone()
    }

    /// Snapshot of the counters.
    #[must_use]
    pub fn stats(&self) -> GlacierStats {
        self.shared.state.lock().stats.clone()
    }

    /// Forgets the requests logged and sets every counter back to zero (vaults, uploads and
    /// faults are untouched).
    pub fn reset_requests(&self) {
        let mut st = self.shared.state.lock();
        st.log.clear();
        st.stats = GlacierStats::default();
    }

    /// Stops accepting connections, lets in-flight requests finish (up to 2 s), closes every
    /// connection and ends the accept loop.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

// ---------------------------------------------------------------------------------------
// Shared state

struct UploadRec {
    description: String,
    part_size: u64,
    parts: u32,
    /// Aborts answered 204 without removing this upload.
    swallowed_aborts: u32,
}

#[derive(Default)]
struct VaultRec {
    /// Keyed by (creation date, upload id): listing order, and range queries for markers.
    uploads: BTreeMap<(DateTime<Utc>, String), UploadRec>,
    /// The key of each upload in `uploads`, by upload id.
    created_by_id: HashMap<String, DateTime<Utc>>,
}

#[derive(Default)]
struct State {
    /// Keyed by (account id, vault name).
    vaults: BTreeMap<(String, String), VaultRec>,
    log: Vec<String>,
    stats: GlacierStats,
}

struct KeyRec {
    secret: String,
    account_id: String,
}

struct Shared {
    state: Mutex<State>,
    keys: Mutex<HashMap<String, KeyRec>>,
    faults: Mutex<GlacierFaults>,
    rng: Rng,
}

impl Shared {
    fn new() -> Self {
        Self {
            state: Mutex::new(State::default()),
            keys: Mutex::new(HashMap::new()),
            faults: Mutex::new(GlacierFaults::default()),
            rng: Rng::new(),
        }
    }

    fn new_upload_id(&self) -> String {
        self.rng.string(UPLOAD_ID_LEN, ID_ALPHABET)
    }

    fn new_request_id(&self) -> String {
        self.rng.request_id()
    }
}

/// The account `-` means to the seeding methods.
fn resolve_seed_account(account_id: &str) -> &str {
    if account_id == "-" {
        DEFAULT_ACCOUNT_ID
    } else {
        account_id
    }
}

fn vault_key(account_id: &str, vault: &str) -> (String, String) {
    (
        resolve_seed_account(account_id).to_owned(),
        vault.to_owned(),
    )
}

// ---------------------------------------------------------------------------------------
// Markers: opaque to clients (hex of a tagged position), never an upload id.

/// Marker of a listing continuing after the upload keyed `(created, id)`.
fn upload_marker(created: DateTime<Utc>, id: &str) -> String {
    let position = format!(
        "u1:{}.{:09}:{id}",
        created.timestamp(),
        created.timestamp_subsec_nanos()
    );
    hex(position.as_bytes())
}

fn parse_upload_marker(marker: &str) -> Option<(DateTime<Utc>, String)> {
    let text = String::from_utf8(unhex(marker)?).ok()?;
    let rest = text.strip_prefix("u1:")?;
    let (time, id) = rest.split_once(':')?;
    let (secs, nanos) = time.split_once('.')?;
    let created = DateTime::from_timestamp(secs.parse().ok()?, nanos.parse().ok()?)?;
    Some((created, id.to_owned()))
}

/// Marker of a parts listing continuing at part index `next`.
fn part_marker(next: u32) -> String {
    hex(format!("p1:{next}").as_bytes())
}

fn parse_part_marker(marker: &str) -> Option<u32> {
    let text = String::from_utf8(unhex(marker)?).ok()?;
    text.strip_prefix("p1:")?.parse().ok()
}

// ---------------------------------------------------------------------------------------
// Errors, as Glacier sends them

#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "ResourceNotFoundException", message)
    }

    fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidParameterValueException",
            message,
        )
    }

    fn incomplete_signature(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "IncompleteSignatureException",
            message,
        )
    }

    fn invalid_signature(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "InvalidSignatureException", message)
    }

    fn into_response(self) -> HttpResponse {
        let kind = if self.status.is_server_error() {
            "Server"
        } else {
            "Client"
        };
        let body = json!({ "code": self.code, "message": self.message, "type": kind });
        let mut resp = json_response(self.status, &body);
        resp.headers_mut()
            .insert("x-amzn-errortype", HeaderValue::from_static(self.code));
        resp
    }
}

fn json_response(status: StatusCode, body: &Value) -> HttpResponse {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

// ---------------------------------------------------------------------------------------
// SigV4 verification

/// Who signed a request that passed authentication.
struct Caller {
    account_id: String,
    region: String,
}

/// Checks the request's `SigV4` signature; answers who signed it.
fn authenticate(
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
fn auth_error(failure: Failure) -> ApiError {
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

fn mismatch() -> ApiError {
    ApiError::invalid_signature(
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
    )
}

// ---------------------------------------------------------------------------------------
// Routing and operations

enum Operation {
    ListMultipartUploads,
    ListParts(String),
    AbortMultipartUpload(String),
}

struct Route {
    account_id: String,
    vault: String,
    operation: Operation,
}

fn route(method: &Method, path: &str) -> Option<Route> {
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
fn parse_limit(query: &HashMap<String, String>) -> Result<usize, ApiError> {
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

fn vault_arn(region: &str, account_id: &str, vault: &str) -> String {
    format!("arn:aws:glacier:{region}:{account_id}:vaults/{vault}")
}

fn vault_not_found(arn: &str) -> ApiError {
    ApiError::not_found(format!("Vault not found for ARN: {arn}"))
}

fn upload_not_found(upload_id: &str) -> ApiError {
    ApiError::not_found(format!(
        "Multipart upload not found for upload ID: {upload_id}"
    ))
}

/// Reads, authenticates, routes and serves one request.
async fn serve(shared: &Shared, req: Request<Incoming>) -> Result<HttpResponse, ApiError> {
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
    let query: HashMap<String, String> = query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (form_decode(k), form_decode(v))
        })
        .collect();
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

fn list_multipart_uploads(
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

fn list_parts(
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

fn abort_multipart_upload(
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
    let keep = {
        let faults = shared.faults.lock();
        faults.never_empty.contains(&up.description)
            || faults
                .stragglers
                .get(&up.description)
                .is_some_and(|&n| up.swallowed_aborts < n)
    };
    if keep {
        up.swallowed_aborts += 1;
        st.stats.aborts_swallowed += 1;
    } else {
        vault.uploads.remove(&id);
        vault.created_by_id.remove(upload_id);
        st.stats.aborts_removed += 1;
    }
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::NO_CONTENT;
    Ok(resp)
}

// ---------------------------------------------------------------------------------------
// HTTP serving

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> HttpResponse {
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

#[cfg(test)]
mod tests {
    use super::*;

    use std::fmt::Write as _;
    use std::time::SystemTime;

    use chrono::TimeDelta;
    use tokio::net::TcpStream;

    use aws_sdk_glacier::Client;
    use aws_sdk_glacier::config::{BehaviorVersion, Credentials, Region};
    use aws_sdk_glacier::error::ProvideErrorMetadata as _;

    const AK: &str = "AKIAGLACIERUNITTEST1";
    const SK: &str = "glacier-unit-test-secret";
    const MIB: u64 = 1024 * 1024;

    async fn started() -> GlacierEndpoint {
        GlacierEndpoint::start(AK, SK).await.expect("endpoint")
    }

    /// The real SDK client, pointed at the endpoint.
    fn client_with(ep: &GlacierEndpoint, access_key: &str, secret_key: &str) -> Client {
        let config = aws_sdk_glacier::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(ep.url())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new(access_key, secret_key, None, None, "test"))
            .build();
        Client::from_conf(config)
    }

    fn client(ep: &GlacierEndpoint) -> Client {
        client_with(ep, AK, SK)
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("a timestamp")
            .with_timezone(&Utc)
    }

    #[tokio::test]
    async fn listing_2500_uploads_takes_three_pages_with_every_id_once() {
        // 2,500 uploads in a vault, listed with limit 1000 from marker to marker.
        let ep = started().await;
        let base = at("2026-01-01T00:00:00Z");
        let mut seeded: Vec<String> = (0..2500)
            .map(|i| {
                ep.seed_upload(
                    "-",
                    "archive",
                    &format!("backup-{i}"),
                    base + TimeDelta::seconds(i),
                    MIB,
                    2,
                )
            })
            .collect();
        assert!(seeded.iter().all(|id| id.len() == UPLOAD_ID_LEN));

        let glacier = client(&ep);
        let (mut pages, mut listed, mut marker) = (Vec::new(), Vec::new(), None::<String>);
        loop {
            let out = glacier
                .list_multipart_uploads()
                .vault_name("archive")
                .limit(1000)
                .set_marker(marker.clone())
                .send()
                .await
                .expect("a page");
            let page = out.uploads_list();
            pages.push(page.len());
            listed.extend(
                page.iter()
                    .map(|u| u.multipart_upload_id().unwrap_or_default().to_owned()),
            );
            marker = out.marker().map(str::to_owned);
            if let Some(m) = &marker {
                assert!(!seeded.contains(m), "the marker is not an upload id");
            } else {
                break;
            }
            assert!(pages.len() < 10, "the listing never ends");
        }
        assert_eq!(pages, [1000, 1000, 500]);
        assert_eq!(listed, seeded, "creation order, every id exactly once");
        seeded.sort();
        seeded.dedup();
        assert_eq!(seeded.len(), 2500);

        let requests = ep.requests();
        assert_eq!(requests.len(), 3);
        assert_eq!(
            requests[0],
            "GET /-/vaults/archive/multipart-uploads?limit=1000"
        );
        assert!(
            requests[1].starts_with("GET /-/vaults/archive/multipart-uploads?limit=1000&marker=")
        );
        assert_eq!(ep.stats().list_multipart_uploads, 3);
    }

    #[tokio::test]
    async fn an_upload_lists_with_its_description_date_size_and_vault_arn() {
        // One upload seeded at a known time, listed with the default limit.
        let ep = started().await;
        let id = ep.seed_upload(
            "-",
            "photos",
            "my archive",
            at("2026-12-01T10:00:00Z"),
            4 * MIB,
            1,
        );
        let out = client(&ep)
            .list_multipart_uploads()
            .vault_name("photos")
            .send()
            .await
            .expect("a page");
        assert_eq!(out.marker(), None);
        let [up] = out.uploads_list() else {
            panic!("one upload: {out:?}");
        };
        assert_eq!(up.multipart_upload_id(), Some(id.as_str()));
        assert_eq!(up.archive_description(), Some("my archive"));
        assert_eq!(up.creation_date(), Some("2026-12-01T10:00:00.000Z"));
        assert_eq!(u64::try_from(up.part_size_in_bytes()), Ok(4 * MIB));
        assert_eq!(
            up.vault_arn(),
            Some("arn:aws:glacier:us-east-1:111122223333:vaults/photos")
        );
        assert_eq!(
            ep.requests(),
            ["GET /-/vaults/photos/multipart-uploads"],
            "no limit sent, none added"
        );
    }

    #[tokio::test]
    async fn list_parts_pages_the_full_byte_ranges_of_an_upload() {
        // Three 1 MiB parts, listed two at a time.
        let ep = started().await;
        let created = at("2026-03-04T05:06:07.250Z");
        let id = ep.seed_upload("-", "v", "three parts", created, MIB, 3);
        let glacier = client(&ep);

        let first = glacier
            .list_parts()
            .vault_name("v")
            .upload_id(&id)
            .limit(2)
            .send()
            .await
            .expect("parts");
        let ranges: Vec<&str> = first
            .parts()
            .iter()
            .filter_map(|p| p.range_in_bytes())
            .collect();
        assert_eq!(ranges, ["0-1048575", "1048576-2097151"]);
        assert!(first.parts().iter().all(|p| {
            p.sha256_tree_hash()
                .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        }));
        assert_eq!(first.multipart_upload_id(), Some(id.as_str()));
        assert_eq!(first.archive_description(), Some("three parts"));
        assert_eq!(first.creation_date(), Some("2026-03-04T05:06:07.250Z"));
        assert_eq!(u64::try_from(first.part_size_in_bytes()), Ok(MIB));
        assert_eq!(
            first.vault_arn(),
            Some("arn:aws:glacier:us-east-1:111122223333:vaults/v")
        );

        let marker = first.marker().expect("a second page");
        let second = glacier
            .list_parts()
            .vault_name("v")
            .upload_id(&id)
            .limit(2)
            .marker(marker)
            .send()
            .await
            .expect("parts");
        let ranges: Vec<&str> = second
            .parts()
            .iter()
            .filter_map(|p| p.range_in_bytes())
            .collect();
        assert_eq!(ranges, ["2097152-3145727"]);
        assert_eq!(second.marker(), None);
        assert_eq!(ep.stats().list_parts, 2);
    }

    #[tokio::test]
    async fn an_aborted_upload_answers_resource_not_found() {
        // Abort an upload, then list its parts and abort it again; an unknown vault too.
        let ep = started().await;
        let id = ep.seed_upload("-", "v", "doomed", Utc::now(), MIB, 4);
        let keep = ep.seed_upload("-", "v", "kept", Utc::now(), MIB, 1);
        let glacier = client(&ep);

        glacier
            .abort_multipart_upload()
            .vault_name("v")
            .upload_id(&id)
            .send()
            .await
            .expect("aborted");
        let err = glacier
            .list_parts()
            .vault_name("v")
            .upload_id(&id)
            .send()
            .await
            .expect_err("gone");
        assert!(
            err.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()),
            "{err:?}"
        );
        let err = glacier
            .abort_multipart_upload()
            .vault_name("v")
            .upload_id(&id)
            .send()
            .await
            .expect_err("gone");
        assert!(
            err.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()),
            "{err:?}"
        );
        let err = glacier
            .list_multipart_uploads()
            .vault_name("no-such-vault")
            .send()
            .await
            .expect_err("no vault");
        assert!(
            err.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()),
            "{err:?}"
        );

        let left: Vec<String> = ep
            .uploads("-", "v")
            .into_iter()
            .map(|u| u.upload_id)
            .collect();
        assert_eq!(left, [keep]);
        let stats = ep.stats();
        assert_eq!((stats.abort_multipart_upload, stats.aborts_removed), (2, 1));
        assert_eq!(stats.aborts_for_upload(&id), 2);
        assert_eq!(
            ep.requests()[0],
            format!("DELETE /-/vaults/v/multipart-uploads/{id}")
        );
    }

    #[tokio::test]
    async fn a_straggler_needs_two_aborts_and_a_never_empty_upload_stays() {
        // One straggling abort for "late", every abort swallowed for "stuck".
        let ep = started().await;
        let late = ep.seed_upload("-", "v", "late", Utc::now(), MIB, 2);
        let stuck = ep.seed_upload("-", "v", "stuck", Utc::now(), MIB, 2);
        ep.update_faults(|f| {
            f.stragglers.insert("late".to_owned(), 1);
            f.never_empty.insert("stuck".to_owned());
        });
        let glacier = client(&ep);
        let abort = |id: String| {
            let glacier = glacier.clone();
            async move {
                glacier
                    .abort_multipart_upload()
                    .vault_name("v")
                    .upload_id(id)
                    .send()
                    .await
                    .expect("204")
            }
        };
        let parts_of = |id: String| {
            let glacier = glacier.clone();
            async move {
                glacier
                    .list_parts()
                    .vault_name("v")
                    .upload_id(id)
                    .send()
                    .await
                    .map(|out| out.parts().len())
            }
        };

        abort(late.clone()).await;
        assert_eq!(
            parts_of(late.clone()).await.expect("still there"),
            2,
            "the first abort kept it and its parts"
        );
        abort(late.clone()).await;
        assert!(
            parts_of(late.clone()).await.is_err(),
            "the second removed it"
        );

        for _ in 0..3 {
            abort(stuck.clone()).await;
        }
        assert_eq!(parts_of(stuck.clone()).await.expect("never empty"), 2);
        assert_eq!(ep.upload_count("-", "v"), 1);
        let stats = ep.stats();
        assert_eq!((stats.aborts_swallowed, stats.aborts_removed), (4, 1));
        assert_eq!(stats.aborts_for_upload(&late), 2);
        assert_eq!(stats.aborts_for_upload(&stuck), 3);
    }

    #[tokio::test]
    async fn the_account_id_is_sent_and_served_as_configured() {
        // A vault of the signer's account reached by its id and by `-`; another account's.
        let ep = started().await;
        ep.seed_upload(DEFAULT_ACCOUNT_ID, "mine", "a", Utc::now(), MIB, 1);
        ep.seed_upload("999988887777", "theirs", "b", Utc::now(), MIB, 1);
        let glacier = client(&ep);
        for account in [DEFAULT_ACCOUNT_ID, "-"] {
            let out = glacier
                .list_multipart_uploads()
                .account_id(account)
                .vault_name("mine")
                .send()
                .await
                .expect("a page");
            assert_eq!(out.uploads_list().len(), 1, "{account}");
        }
        let out = glacier
            .list_multipart_uploads()
            .account_id("999988887777")
            .vault_name("theirs")
            .send()
            .await
            .expect("a page");
        assert_eq!(
            out.uploads_list()[0].vault_arn(),
            Some("arn:aws:glacier:us-east-1:999988887777:vaults/theirs")
        );
        let err = glacier
            .list_multipart_uploads()
            .vault_name("theirs")
            .send()
            .await
            .expect_err("not the signer's vault");
        assert!(
            err.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()),
            "{err:?}"
        );
        assert_eq!(
            ep.requests(),
            [
                "GET /111122223333/vaults/mine/multipart-uploads",
                "GET /-/vaults/mine/multipart-uploads",
                "GET /999988887777/vaults/theirs/multipart-uploads",
                "GET /-/vaults/theirs/multipart-uploads",
            ]
        );

        let err = glacier
            .list_multipart_uploads()
            .account_id("not-an-account")
            .vault_name("mine")
            .send()
            .await
            .expect_err("a bad account id");
        assert!(
            err.as_service_error()
                .is_some_and(|e| e.is_invalid_parameter_value_exception()),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn a_wrong_secret_or_an_unknown_key_is_refused_with_403() {
        // The start key with a guessed secret, then a key the endpoint does not know.
        let ep = started().await;
        ep.create_vault("-", "v");
        let cases = [
            (client_with(&ep, AK, "guess"), "InvalidSignatureException"),
            (
                client_with(&ep, "AKIAUNKNOWN", SK),
                "UnrecognizedClientException",
            ),
        ];
        for (glacier, code) in cases {
            let err = glacier
                .list_multipart_uploads()
                .vault_name("v")
                .send()
                .await
                .expect_err("refused");
            let status = err.raw_response().map(|r| r.status().as_u16());
            assert_eq!((status, err.code()), (Some(403), Some(code)), "{err:?}");
        }
        let stats = ep.stats();
        assert_eq!((stats.requests, stats.rejected), (2, 2));
        assert_eq!(stats.list_multipart_uploads, 0, "no operation reached");
        assert_eq!(ep.requests().len(), 2, "rejected requests are logged too");

        ep.add_key("AKIAUNKNOWN", SK, "444455556666");
        ep.create_vault("444455556666", "v");
        let out = client_with(&ep, "AKIAUNKNOWN", SK)
            .list_multipart_uploads()
            .vault_name("v")
            .send()
            .await
            .expect("an added key");
        assert!(out.uploads_list().is_empty());

        ep.reset_requests();
        assert!(ep.requests().is_empty());
        assert_eq!(ep.stats(), GlacierStats::default());
    }

    #[tokio::test]
    async fn bad_limits_and_markers_answer_invalid_parameter_value() {
        // Limits outside 1..=1000 and a marker the endpoint never gave.
        let ep = started().await;
        ep.create_vault("-", "v");
        let glacier = client(&ep);
        for limit in [0, 1001] {
            let err = glacier
                .list_multipart_uploads()
                .vault_name("v")
                .limit(limit)
                .send()
                .await
                .expect_err("bad limit");
            assert!(
                err.as_service_error()
                    .is_some_and(|e| e.is_invalid_parameter_value_exception()),
                "{limit}: {err:?}"
            );
        }
        // Characters the signer and the verifier must encode alike.
        let err = glacier
            .list_multipart_uploads()
            .vault_name("v")
            .marker("a b+c/d=é&x")
            .send()
            .await
            .expect_err("bad marker");
        assert!(
            err.as_service_error()
                .is_some_and(|e| e.is_invalid_parameter_value_exception()),
            "signed alike, so refused for the marker only: {err:?}"
        );
    }

    // -----------------------------------------------------------------------------------
    // Through raw HTTP: what the SDK hides (headers, bodies, unsigned requests).

    struct Reply {
        status: u16,
        head: String,
        body: String,
    }

    impl Reply {
        fn header(&self, name: &str) -> Option<&str> {
            self.head.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim())
            })
        }
    }

    /// Sends a request with these headers and an empty body on a new connection.
    async fn send_raw(
        ep: &GlacierEndpoint,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
    ) -> Reply {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

        let mut request = format!("{method} {target} HTTP/1.1\r\n");
        for (k, v) in headers {
            let _ = write!(request, "{k}: {v}\r\n");
        }
        request.push_str("connection: close\r\n\r\n");
        let mut stream = TcpStream::connect(ep.addr()).await.expect("connect");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.expect("read");
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").expect("a reply");
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("a status");
        Reply {
            status,
            head: head.to_owned(),
            body: body.to_owned(),
        }
    }

    /// Signs a request with the SDK's own signer (region eu-west-1, a session token) and sends
    /// it as signed.
    async fn send_signed(ep: &GlacierEndpoint, method: &str, target: &str) -> Reply {
        use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};

        let host = ep.addr().to_string();
        let identity = Credentials::new(
            AK,
            SK,
            Some("FQoGZXIvYXdz+session/token=".into()),
            None,
            "test",
        )
        .into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region("eu-west-1")
            .name("glacier")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .expect("params")
            .into();
        let url = format!("http://{host}{target}");
        let unsigned = [("x-amz-glacier-version", API_VERSION)];
        let signable = SignableRequest::new(
            method,
            url.as_str(),
            unsigned.iter().copied(),
            SignableBody::Bytes(&[]),
        )
        .expect("signable");
        let (instructions, _) = sign(signable, &params).expect("signed").into_parts();
        let mut headers: Vec<(&str, &str)> = vec![("host", host.as_str())];
        headers.extend(unsigned);
        headers.extend(instructions.headers());
        assert!(
            headers.iter().any(|(k, _)| *k == "x-amz-security-token"),
            "{headers:?}"
        );
        send_raw(ep, method, target, &headers).await
    }

    #[tokio::test]
    async fn the_sdk_signer_is_verified_on_odd_paths_and_queries() {
        // Dot segments, an encoded upload id, encoded query characters, a session token and
        // another region, signed by aws-sigv4 and checked by this module's own verifier.
        let ep = started().await;
        ep.seed_upload("-", "odd.vault", "x", Utc::now(), MIB, 1);

        let reply = send_signed(
            &ep,
            "GET",
            "/-/vaults/elsewhere/../odd.vault/multipart-uploads?limit=7",
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let body: Value = serde_json::from_str(&reply.body).expect("json");
        assert_eq!(
            body["UploadsList"][0]["VaultARN"],
            "arn:aws:glacier:eu-west-1:111122223333:vaults/odd.vault",
            "the ARN names the signing region"
        );
        assert_eq!(body["Marker"], Value::Null);

        let reply = send_signed(
            &ep,
            "GET",
            // Sent as no canonical query is: `+` for a space, lowercase hex, a bare `*`.
            "/-/vaults/odd.vault/multipart-uploads?marker=a+b%2fc%C3%A9*&limit=5",
        )
        .await;
        assert_eq!(reply.status, 400, "{}", reply.body);
        assert_eq!(
            reply.header("x-amzn-errortype"),
            Some("InvalidParameterValueException")
        );

        let reply = send_signed(
            &ep,
            "DELETE",
            "/-/vaults/odd.vault/multipart-uploads/up%2Fid%20x",
        )
        .await;
        assert_eq!(reply.status, 404, "{}", reply.body);
        assert!(
            reply
                .body
                .contains("Multipart upload not found for upload ID: up/id x"),
            "{}",
            reply.body
        );
        assert_eq!(
            ep.requests()[2],
            "DELETE /-/vaults/odd.vault/multipart-uploads/up%2Fid%20x",
            "logged as sent"
        );
        assert_eq!(ep.stats().rejected, 0);
    }

    #[tokio::test]
    async fn an_unsigned_request_answers_a_glacier_error_document_with_a_date() {
        // No Authorization header at all; then a signed request without the API version.
        let ep = started().await;
        let reply = send_raw(
            &ep,
            "GET",
            "/-/vaults/v/multipart-uploads",
            &[("host", "localhost")],
        )
        .await;
        assert_eq!(reply.status, 403);
        assert_eq!(
            reply.header("x-amzn-errortype"),
            Some("MissingAuthenticationTokenException")
        );
        assert_eq!(reply.header("content-type"), Some("application/json"));
        assert!(reply.header("date").is_some(), "{}", reply.head);
        assert!(reply.header("x-amzn-requestid").is_some(), "{}", reply.head);
        let body: Value = serde_json::from_str(&reply.body).expect("json");
        assert_eq!(
            body,
            json!({
                "code": "MissingAuthenticationTokenException",
                "message": "Missing Authentication Token",
                "type": "Client",
            })
        );
        assert_eq!(ep.stats().rejected, 1);
    }

    #[test]
    fn markers_round_trip_and_reject_anything_else() {
        // Both kinds of marker, and strings the endpoint never gave.
        let t = at("2026-05-06T07:08:09.123456789Z");
        let m = upload_marker(t, "abc-_XYZ");
        assert_eq!(parse_upload_marker(&m), Some((t, "abc-_XYZ".to_owned())));
        assert_eq!(parse_part_marker(&part_marker(41)), Some(41));
        for bad in ["", "zz", "abc", &part_marker(3)] {
            assert_eq!(parse_upload_marker(bad), None, "{bad:?}");
        }
        assert_eq!(parse_part_marker(&m), None);
    }

    #[tokio::test]
    async fn shutdown_closes_the_port() {
        // A started endpoint, shut down: nothing listens any more.
        let ep = started().await;
        let addr = ep.addr();
        ep.shutdown().await;
        assert!(TcpStream::connect(addr).await.is_err());
    }
}
