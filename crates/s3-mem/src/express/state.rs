//! The directory-bucket endpoint's state: buckets and their uploads (in a fixed order that is
//! neither by key nor by id), sessions, the request log and counters, behind one mutex.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use md5::{Digest as _, Md5};
use parking_lot::Mutex;

#[allow(unused_imports)] // doc links
use super::DirectoryEndpoint;
use super::{DirFaults, DirRequest, DirStats};
use crate::log::RequestLog;
use crate::serve::{Rng, clamp_time};
use crate::sigv4::{hex, sha256};

pub(super) struct PartRec {
    pub(super) size: u64,
    pub(super) etag: String,
    pub(super) last_modified: DateTime<Utc>,
}

pub(super) struct UploadRec {
    pub(super) key: String,
    pub(super) initiated: DateTime<Utc>,
    pub(super) parts: BTreeMap<u32, PartRec>,
    /// Aborts answered 204 without removing this upload.
    pub(super) swallowed_aborts: u32,
    /// Whether the `replace_on_list_parts` fault already replaced it.
    pub(super) replaced_on_list: bool,
}

/// Where an upload sits in its bucket's listing order: (hash of the id, id).
pub(super) type Position = (u64, String);

pub(super) fn position(upload_id: &str) -> Position {
    let digest = sha256(upload_id.as_bytes());
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(head), upload_id.to_owned())
}

/// The deterministic `ETag` (quoted) of part `number` of an upload.
pub(super) fn etag(upload_id: &str, number: u32) -> String {
    let digest = Md5::digest(format!("{upload_id}/{number}").as_bytes());
    format!("\"{}\"", hex(&digest))
}

/// What [`DirectoryEndpoint::replace_upload`] and the `replace_on_list_parts` fault do.
pub(super) fn replace_initiated(up: &mut UploadRec, initiated: DateTime<Utc>) {
    up.initiated = clamp_time(initiated);
}

#[derive(Default)]
pub(super) struct BucketRec {
    /// Keyed by [`Position`]: listing order, and range queries for markers.
    pub(super) uploads: BTreeMap<Position, UploadRec>,
    pub(super) lifecycle_abort_days: Option<u32>,
}

impl BucketRec {
    /// The upload under `upload_id`, if it has this key.
    pub(super) fn upload_mut(&mut self, key: &str, upload_id: &str) -> Option<&mut UploadRec> {
        self.uploads
            .get_mut(&position(upload_id))
            .filter(|up| up.key == key)
    }
}

pub(super) struct SessionRec {
    pub(super) bucket: String,
    pub(super) token: String,
    pub(super) secret: String,
    pub(super) expires: DateTime<Utc>,
}

#[derive(Default)]
pub(super) struct State {
    pub(super) buckets: BTreeMap<String, BucketRec>,
    /// Sessions by their access key.
    pub(super) sessions: HashMap<String, SessionRec>,
    pub(super) log: RequestLog<DirRequest>,
    pub(super) stats: DirStats,
}

pub struct Shared {
    pub(super) state: Mutex<State>,
    /// Base keys: secrets by access key.
    pub(super) keys: Mutex<HashMap<String, String>>,
    pub(super) faults: Mutex<DirFaults>,
    pub(super) rng: Rng,
}

impl Shared {
    pub(super) fn new() -> Self {
        Self {
            state: Mutex::new(State::default()),
            keys: Mutex::new(HashMap::new()),
            faults: Mutex::new(DirFaults::default()),
            rng: Rng::new(),
        }
    }

    /// Counts an authentication refusal.
    pub(super) fn reject(&self, expired: bool) {
        let mut st = self.state.lock();
        st.stats.rejected += 1;
        if expired {
            st.stats.expired_session_rejections += 1;
        }
    }
}
