//! The Glacier endpoint's handle: starting it, its address, and what a test controls and
//! inspects (keys, vaults, seeded uploads, the fault plan, counters, the request log).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::http::handle;
use super::state::{KeyRec, Shared, UploadRec, resolve_seed_account, vault_key};
use super::{DEFAULT_ACCOUNT_ID, GlacierFaults, GlacierStats, VaultUploadSnapshot};
use crate::Stats;
use crate::handle::{Core, Handle};
use crate::serve::clamp_time;

/// Handle of a running in-memory Glacier endpoint: a [`Handle`], with the vault methods
/// below.
///
/// Its request log has every request as `METHOD PATH?QUERY`, with the path and query exactly
/// as sent (percent-encoding untouched; no `?` without a query).
pub type GlacierEndpoint = Handle<Shared>;

impl Core for Shared {
    type Faults = GlacierFaults;
    type Request = String;
    const NAME: &'static str = "GlacierEndpoint";

    async fn launch(
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
        Handle::serve(addr, "glacier endpoint", shared, handle).await
    }

    fn with_faults<R>(&self, edit: impl FnOnce(&mut GlacierFaults) -> R) -> R {
        edit(&mut self.faults.lock())
    }

    fn stats(&self) -> Stats {
        self.state.lock().stats.clone()
    }

    fn requests(&self) -> Vec<String> {
        self.state.lock().log.records()
    }
}

impl GlacierEndpoint {
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

    /// Forgets the requests logged and sets every counter back to zero (vaults, uploads and
    /// faults are untouched).
    pub fn reset_requests(&self) {
        let mut st = self.shared.state.lock();
        st.log.clear();
        st.stats = GlacierStats::default();
    }
}
