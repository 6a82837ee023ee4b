//! The Glacier endpoint's handle: starting it, its address, and what a test controls and
//! inspects (keys, vaults, seeded uploads, the fault plan, counters, the request log).

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::http::handle;
use super::state::{KeyRec, Shared, UploadRec, resolve_seed_account, vault_key};
use super::{DEFAULT_ACCOUNT_ID, GlacierFaults, GlacierStats, VaultUploadSnapshot};
use crate::serve::{Server, clamp_time};

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
