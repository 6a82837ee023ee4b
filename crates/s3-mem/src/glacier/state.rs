//! The Glacier endpoint's state: vaults per account and their uploads (by creation date),
//! keys, the request log and counters, and the opaque markers listings continue from.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use parking_lot::Mutex;

use super::{DEFAULT_ACCOUNT_ID, GlacierFaults, GlacierStats, ID_ALPHABET, UPLOAD_ID_LEN};
use crate::log::RequestLog;
use crate::serve::Rng;
use crate::sigv4::{hex, unhex};

// ---------------------------------------------------------------------------------------
// Shared state

pub(super) struct UploadRec {
    pub(super) description: String,
    pub(super) part_size: u64,
    pub(super) parts: u32,
    /// Aborts answered 204 without removing this upload.
    pub(super) swallowed_aborts: u32,
}

#[derive(Default)]
pub(super) struct VaultRec {
    /// Keyed by (creation date, upload id): listing order, and range queries for markers.
    pub(super) uploads: BTreeMap<(DateTime<Utc>, String), UploadRec>,
    /// The key of each upload in `uploads`, by upload id.
    pub(super) created_by_id: HashMap<String, DateTime<Utc>>,
}

#[derive(Default)]
pub(super) struct State {
    /// Keyed by (account id, vault name).
    pub(super) vaults: BTreeMap<(String, String), VaultRec>,
    pub(super) log: RequestLog<String>,
    pub(super) stats: GlacierStats,
}

pub(super) struct KeyRec {
    pub(super) secret: String,
    pub(super) account_id: String,
}

pub struct Shared {
    pub(super) state: Mutex<State>,
    pub(super) keys: Mutex<HashMap<String, KeyRec>>,
    pub(super) faults: Mutex<GlacierFaults>,
    pub(super) rng: Rng,
}

impl Shared {
    pub(super) fn new() -> Self {
        Self {
            state: Mutex::new(State::default()),
            keys: Mutex::new(HashMap::new()),
            faults: Mutex::new(GlacierFaults::default()),
            rng: Rng::new(),
        }
    }

    pub(super) fn new_upload_id(&self) -> String {
        self.rng.string(UPLOAD_ID_LEN, ID_ALPHABET)
    }

    pub(super) fn new_request_id(&self) -> String {
        self.rng.request_id()
    }
}

/// The account `-` means to the seeding methods.
pub(super) fn resolve_seed_account(account_id: &str) -> &str {
    if account_id == "-" {
        DEFAULT_ACCOUNT_ID
    } else {
        account_id
    }
}

pub(super) fn vault_key(account_id: &str, vault: &str) -> (String, String) {
    (
        resolve_seed_account(account_id).to_owned(),
        vault.to_owned(),
    )
}

// ---------------------------------------------------------------------------------------
// Markers: opaque to clients (hex of a tagged position), never an upload id.

/// Marker of a listing continuing after the upload keyed `(created, id)`.
pub(super) fn upload_marker(created: DateTime<Utc>, id: &str) -> String {
    let position = format!(
        "u1:{}.{:09}:{id}",
        created.timestamp(),
        created.timestamp_subsec_nanos()
    );
    hex(position.as_bytes())
}

pub(super) fn parse_upload_marker(marker: &str) -> Option<(DateTime<Utc>, String)> {
    let text = String::from_utf8(unhex(marker)?).ok()?;
    let rest = text.strip_prefix("u1:")?;
    let (time, id) = rest.split_once(':')?;
    let (secs, nanos) = time.split_once('.')?;
    let created = DateTime::from_timestamp(secs.parse().ok()?, nanos.parse().ok()?)?;
    Some((created, id.to_owned()))
}

/// Marker of a parts listing continuing at part index `next`.
pub(super) fn part_marker(next: u32) -> String {
    hex(format!("p1:{next}").as_bytes())
}

pub(super) fn parse_part_marker(marker: &str) -> Option<u32> {
    let text = String::from_utf8(unhex(marker)?).ok()?;
    text.strip_prefix("p1:")?.parse().ok()
}
