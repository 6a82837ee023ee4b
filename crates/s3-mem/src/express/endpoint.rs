//! The directory-bucket endpoint's handle: starting it, its address, and what a test
//! controls and inspects (keys, buckets, seeded uploads, lifecycle rules, the fault plan,
//! counters, the request log).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::http::handle;
use super::state::{PartRec, Shared, UploadRec, etag, position, replace_initiated};
use super::{
    BUCKET_SUFFIX, DirFaults, DirRequest, DirStats, DirUploadSnapshot, ID_ALPHABET, UPLOAD_ID_LEN,
};
use crate::Stats;
use crate::handle::{Core, Handle};
use crate::serve::clamp_time;

/// Handle of a running in-memory directory-bucket endpoint: a [`Handle`], with the
/// directory-bucket methods below.
pub type DirectoryEndpoint = Handle<Shared>;

impl Core for Shared {
    type Faults = DirFaults;
    type Request = DirRequest;
    const NAME: &'static str = "DirectoryEndpoint";

    async fn launch(
        addr: SocketAddr,
        access_key: &str,
        secret_key: &str,
    ) -> io::Result<DirectoryEndpoint> {
        let shared = Arc::new(Shared::new());
        shared
            .keys
            .lock()
            .insert(access_key.to_owned(), secret_key.to_owned());
        Handle::serve(addr, "directory endpoint", shared, handle).await
    }

    fn with_faults<R>(&self, edit: impl FnOnce(&mut DirFaults) -> R) -> R {
        edit(&mut self.faults.lock())
    }

    fn stats(&self) -> Stats {
        self.state.lock().stats.clone()
    }

    fn requests(&self) -> Vec<DirRequest> {
        self.state.lock().log.records()
    }
}

impl DirectoryEndpoint {
    /// Accepts requests signed with this base key pair too, from now on; replaces a known
    /// access key's secret.
    pub fn add_key(&self, access_key: &str, secret_key: &str) {
        self.shared
            .keys
            .lock()
            .insert(access_key.to_owned(), secret_key.to_owned());
    }

    /// Creates an empty directory bucket directly in memory; does nothing if it exists.
    ///
    /// # Panics
    /// If `name` does not end in `--x-s3`.
    pub fn create_bucket(&self, name: &str) {
        assert_directory_bucket(name);
        self.shared
            .state
            .lock()
            .buckets
            .entry(name.to_owned())
            .or_default();
    }

    /// Names of the buckets, in order.
    #[must_use]
    pub fn buckets(&self) -> Vec<String> {
        self.shared.state.lock().buckets.keys().cloned().collect()
    }

    /// Inserts a multipart upload directly in memory (no HTTP), creating the bucket if
    /// needed, and returns its upload id (64 random URL-safe characters).
    ///
    /// `parts` are `(part number, size)`; each part's `LastModified` is `initiated` and its
    /// `ETag` a deterministic stand-in (no bytes exist).
    ///
    /// # Panics
    /// If `bucket` does not end in `--x-s3`.
    pub fn seed_upload(
        &self,
        bucket: &str,
        key: &str,
        initiated: DateTime<Utc>,
        parts: &[(u32, u64)],
    ) -> String {
        assert_directory_bucket(bucket);
        let initiated = clamp_time(initiated);
        let mut st = self.shared.state.lock();
        let rec = st.buckets.entry(bucket.to_owned()).or_default();
        let upload_id = loop {
            let id = self.shared.rng.string(UPLOAD_ID_LEN, ID_ALPHABET);
            if !rec.uploads.contains_key(&position(&id)) {
                break id;
            }
        };
        let parts = parts
            .iter()
            .map(|&(number, size)| {
                (
                    number,
                    PartRec {
                        size,
                        etag: etag(&upload_id, number),
                        last_modified: initiated,
                    },
                )
            })
            .collect();
        rec.uploads.insert(
            position(&upload_id),
            UploadRec {
                key: key.to_owned(),
                initiated,
                parts,
                swallowed_aborts: 0,
                replaced_on_list: false,
            },
        );
        upload_id
    }

    /// Uploads of a bucket in listing order; empty if the bucket does not exist.
    #[must_use]
    pub fn uploads(&self, bucket: &str) -> Vec<DirUploadSnapshot> {
        let st = self.shared.state.lock();
        let Some(rec) = st.buckets.get(bucket) else {
            return Vec::new();
        };
        rec.uploads
            .iter()
            .map(|((_, upload_id), up)| DirUploadSnapshot {
                key: up.key.clone(),
                upload_id: upload_id.clone(),
                initiated: up.initiated,
                parts: u32::try_from(up.parts.len()).unwrap_or(u32::MAX),
                bytes: up.parts.values().map(|p| p.size).sum(),
            })
            .collect()
    }

    /// Number of uploads in a bucket (0 if it does not exist).
    #[must_use]
    pub fn upload_count(&self, bucket: &str) -> usize {
        self.shared
            .state
            .lock()
            .buckets
            .get(bucket)
            .map_or(0, |b| b.uploads.len())
    }

    /// Gives the upload under `upload_id` this initiation time, as if it had been replaced by
    /// a newer upload under the same id (its parts are kept). Returns whether it exists.
    pub fn replace_upload(&self, bucket: &str, upload_id: &str, initiated: DateTime<Utc>) -> bool {
        let mut st = self.shared.state.lock();
        st.buckets
            .get_mut(bucket)
            .and_then(|b| b.uploads.get_mut(&position(upload_id)))
            .map(|up| replace_initiated(up, initiated))
            .is_some()
    }

    /// Sets the bucket's lifecycle configuration (creating the bucket if needed): `Some(days)`
    /// is one enabled rule, `abort-mpu`, aborting incomplete uploads `days` after initiation;
    /// `None` is no configuration at all.
    ///
    /// # Panics
    /// If `bucket` does not end in `--x-s3`.
    pub fn set_lifecycle_abort_days(&self, bucket: &str, days: Option<u32>) {
        assert_directory_bucket(bucket);
        self.shared
            .state
            .lock()
            .buckets
            .entry(bucket.to_owned())
            .or_default()
            .lifecycle_abort_days = days;
    }

    /// Forgets the requests logged and sets every counter back to zero (buckets, uploads,
    /// sessions and faults are untouched).
    pub fn reset_requests(&self) {
        let mut st = self.shared.state.lock();
        st.log.clear();
        st.stats = DirStats::default();
    }
}

fn assert_directory_bucket(name: &str) {
    assert!(
        name.len() > BUCKET_SUFFIX.len() && name.ends_with(BUCKET_SUFFIX),
        "not a directory bucket name (it must end in {BUCKET_SUFFIX}): {name:?}"
    );
}
