//! s3-mem: embedded in-memory S3, S3 Express (directory buckets) and Glacier endpoints for
//! mpu-janitor's `demo` command and its tests.
//!
//! Each endpoint serves, on a local TCP port over real HTTP with real `SigV4` verification,
//! the part of its protocol the janitor uses, with fault plans and counters for assertions.
//!
//! # Layout
//!
//! - [`s3`]: the S3 endpoint ([`Endpoint`]), on s3s: buckets, multipart uploads, virtual hosts,
//!   connection-level faults;
//! - [`express`]: directory buckets ([`express::DirectoryEndpoint`]): sessions, opaque
//!   listing markers, conditional aborts;
//! - [`glacier`]: Glacier vaults ([`glacier::GlacierEndpoint`]);
//! - [`faults`]: the fault vocabulary the three share ([`faults::FaultPlan`]), one meaning
//!   a word;
//! - [`handle`]: the handle the three share ([`Handle`]: start, address, fault plan,
//!   counters, request log, shutdown), each endpoint adding its own methods;
//! - `stats`: the counters the three share ([`Stats`]), one meaning a word;
//! - `log`: the request log the three keep;
//! - `serve`: the accept loop and graceful shutdown all three share, and the helpers the
//!   hand-written two render with;
//! - `sigv4`: the `SigV4` verifier of the hand-written two.
//!
//! Each endpoint's folder is cut the same way: `endpoint.rs` (its handle, a [`Handle`] with
//! its own methods added), its fault plan and the types it hands out, `state.rs`, the
//! operations (`ops.rs`), one request from arrival to answer (`http.rs`), and its tests beside
//! them (`tests.rs`).

#![warn(missing_docs)]

pub mod express;
pub mod faults;
pub mod glacier;
pub mod handle;
mod log;
pub mod s3;
mod serve;
mod sigv4;
mod stats;

pub use handle::Handle;
pub use s3::{Endpoint, Faults, PartSnapshot, RequestRecord, Throttle, UploadSnapshot};
pub use stats::Stats;
