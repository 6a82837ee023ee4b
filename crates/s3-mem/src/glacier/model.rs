//! What the Glacier endpoint's handle takes and hands out: its fault plan, counters and
//! upload snapshots.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::Stats;
use crate::faults::{AbortFate, FaultPlan, fate};

#[allow(unused_imports)] // doc links
use super::GlacierEndpoint;

/// Fault plan applied to requests; change it at runtime with [`GlacierEndpoint::set_faults`].
///
/// The default plan injects nothing.
#[derive(Clone, Debug, Default)]
pub struct GlacierFaults {
    /// Archive description → `N`: the first `N` aborts of its uploads are swallowed, the
    /// upload left as it was ([`crate::faults`]' `stragglers`).
    pub stragglers: HashMap<String, u32>,
    /// Archive descriptions whose uploads no abort removes ([`crate::faults`]' `never_empty`).
    pub never_empty: HashSet<String>,
    /// Delay added before every request is handled (rejected ones included).
    pub latency: Duration,
}

impl FaultPlan for GlacierFaults {
    fn latency(&self) -> Duration {
        self.latency
    }

    fn abort_fate(&self, name: &str, swallowed: u32) -> AbortFate {
        fate(
            &self.stragglers,
            &self.never_empty,
            AbortFate::Swallow,
            name,
            swallowed,
        )
    }
}

/// The Glacier endpoint's counters: the shared [`Stats`], under the name its callers know.
pub type GlacierStats = Stats;

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
