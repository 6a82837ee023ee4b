//! The fault vocabulary the three endpoints share, one meaning a word.
//!
//! Every endpoint's plan ([`crate::Faults`], [`crate::express::DirFaults`],
//! [`crate::glacier::GlacierFaults`]) names its abort faults with these words, each meaning the
//! same wherever it appears:
//!
//! - `stragglers` (name → `N`): the first `N` `AbortMultipartUpload` calls of an upload answer
//!   204 but leave it listed with all its parts as they were ([`AbortFate::Swallow`]); abort
//!   `N + 1` removes it. The count is kept per upload.
//! - `never_empty` (names): every abort answers 204 and leaves the upload as it was.
//! - `late_parts` (name → `N`): the first `N` aborts answer 204 and a new part lands on the
//!   upload after each ([`AbortFate::LatePart`]: a racing writer's part, a new number and
//!   `ETag`); abort `N + 1` removes it.
//! - `endless_late_parts` (names): every abort answers 204 and a new part lands.
//! - `latency`: a delay added before every request is handled.
//!
//! The name is the upload's object key (S3, directory buckets) or archive description
//! (Glacier). Each plan answers through [`FaultPlan`], so an abort is decided by one rule,
//! `swallows`, on every endpoint.

use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::time::Duration;

/// What the fault plan makes of one `AbortMultipartUpload` of an existing upload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AbortFate {
    /// No fault: the abort removes the upload.
    Remove,
    /// The abort answers 204 and leaves the upload listed with all its parts as they were
    /// (`stragglers`, `never_empty`).
    Swallow,
    /// The abort answers 204, the upload stays listed and a new part lands on it
    /// (`late_parts`, `endless_late_parts`).
    LatePart,
}

/// A fault plan, as the shared handle and the abort operations read it.
pub trait FaultPlan: Clone + Debug + Default + Send + 'static {
    /// Delay added before every request is handled.
    fn latency(&self) -> Duration;

    /// What an abort does to the upload named `name` (its key, or archive description) that
    /// has swallowed `swallowed` aborts so far.
    fn abort_fate(&self, name: &str, swallowed: u32) -> AbortFate;
}

/// The fate of an abort of the upload named `name`, which has swallowed `swallowed` aborts so
/// far, under a pair of abort faults: `swallowed_as` for every abort of a name in `every` and
/// for the first `N` of a name counted `N` in `first`, else [`AbortFate::Remove`].
pub(crate) fn fate(
    first: &HashMap<String, u32>,
    every: &HashSet<String>,
    swallowed_as: AbortFate,
    name: &str,
    swallowed: u32,
) -> AbortFate {
    if every.contains(name) || first.get(name).is_some_and(|&n| swallowed < n) {
        swallowed_as
    } else {
        AbortFate::Remove
    }
}
