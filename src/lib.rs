//! mpu-janitor reclaims the storage held by stale S3 multipart uploads: it lists the incomplete
//! uploads of each configured bucket, aborts those older than a threshold, and repeats each abort
//! until ListParts comes back empty, because a part in flight during an abort can still land.
//!
//! # Layout
//!
//! From the bottom up; a module imports only modules listed above it.
//!
//! - [`exit`]: the process's exit codes, one type.
//! - [`redact`]: URLs shown without their credentials or tokens.
//! - [`host`]: this host's name.
//! - [`address`]: how a bucket name is addressed (aws-sdk-s3's endpoint rules, no request).
//! - [`config`]: the schema, figment layers (defaults, file, `MPU_JANITOR_*` env, flags), typed
//!   targets ([`config::Kind`]), the store's client settings, validation.
//! - [`policy`]: pure stale/keep decision: upload + newest part + now + rules -> abort or keep(reason).
//! - [`lifecycle`]: pure: does one of the bucket's lifecycle rules abort the target's uploads, after
//!   how many days.
//! - [`limit`]: the adaptive limit of uploads in flight per target.
//! - [`store`]: the only module that talks to S3 and Glacier: list uploads, list parts and abort,
//!   through the [`store::UploadStore`] trait, on the lean path (hyper, signed by aws-sigv4) or
//!   aws-sdk-s3's; [`store::AnyStore`] is a store of any kind.
//! - [`report`]: the report model (the JSON of docs/contract.md) and its text view.
//! - [`verify`]: the abort-until-empty loop: verified, unverified (parts left) or failed.
//! - [`sweep`]: one target's engine: list -> policy -> abort -> verify until empty, bounded
//!   concurrency.
//! - [`discover`]: `bucket = "*"` -> the buckets it matches (ListBuckets, globs, tags, regions),
//!   each sweep; pure matching decisions.
//! - [`metrics`]: the Prometheus registry, recorded from reports; text, textfile, Pushgateway.
//! - [`http`]: `/metrics`, `/healthz`, `/readyz` on a bounded accept loop (timeouts, connection cap).
//! - [`notify`]: systemd's sd_notify protocol (READY, RELOADING, WATCHDOG, STATUS, STOPPING).
//! - [`shutdown`]: SIGTERM/SIGINT (and SIGHUP, except in `run`) -> cancel -> drain within `shutdown_grace`.
//! - [`run`]: the run layer, the one route of every command: targets -> discovery -> connect ->
//!   sweep -> collect -> export; `once`, `plan`, the daemon ([`run::daemon`]), the replicas'
//!   lease ([`run::lease`]), the audit trail, the progress display and the export.
//! - [`doctor`]: the `doctor` command: each target contacted read-only (credentials, account,
//!   region, listing, server, clock, blind listing, lifecycle, lease), one verdict a check.
//! - `demo` (feature `demo`, on by default): the `demo` command, on the in-memory S3 endpoint of the
//!   `s3-mem` crate (crates/s3-mem, also the tests' fault-injecting endpoint).
//!
//! `main.rs` sets up the process (allocator, logging, runtime) and dispatches the commands of
//! docs/contract.md to [`run`] and `demo`.

#![warn(missing_docs)]

pub mod address;
pub mod config;
#[cfg(feature = "demo")]
pub mod demo;
pub mod discover;
pub mod doctor;
pub mod exit;
pub mod host;
pub mod http;
pub mod lifecycle;
pub mod limit;
pub mod metrics;
pub mod notify;
pub mod policy;
pub mod redact;
pub mod report;
pub mod run;
pub mod shutdown;
pub mod store;
pub mod sweep;
pub mod verify;

pub use config::{Config, ConfigError};
pub use report::{RunReport, TargetReport};
pub use store::StoreError;
