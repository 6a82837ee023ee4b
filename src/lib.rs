//! mpu-janitor reclaims the storage held by stale S3 multipart uploads: it lists the incomplete
//! uploads of each configured bucket, aborts those older than a threshold, and repeats each abort
//! until ListParts comes back empty, because a part in flight during an abort can still land.
//!
//! # Layout
//!
//! - [`config`]: serde structs, figment layers (defaults, file, `MPU_JANITOR_*` env, flags), validation.
//! - [`discover`]: `bucket = "*"` -> the buckets it matches (ListBuckets, globs, tags, regions),
//!   each sweep; pure matching decisions.
//! - [`store`]: the only module that talks to S3: list uploads (two markers), list parts and abort
//!   through the lean path (hyper, signed by aws-sigv4) or, for an endpoint that is not plain SigV4
//!   or with `request_path = "sdk"`, aws-sdk-s3.
//! - [`policy`]: pure stale/keep decision: upload + newest part + now + rules -> abort or keep(reason).
//! - [`sweep`]: one target: list -> policy -> abort -> verify until empty, bounded concurrency.
//! - [`verify`]: the abort-until-empty loop: verified, unverified (parts left) or failed.
//! - [`lifecycle`]: pure: does one of the bucket's lifecycle rules abort the target's uploads, after
//!   how many days.
//! - [`report`]: the run's figures, as text or JSON.
//! - [`metrics`]: the Prometheus registry, recorded from reports; text, textfile, Pushgateway.
//! - [`lease`]: one sweeper per target among replicas: a lease object taken and renewed with
//!   conditional writes, expiry on the store's clock, a probe that a store enforces them.
//! - [`runner`]: one runner for `once`, `plan`, `run` and `demo`: sweep the targets, then export.
//! - [`shutdown`]: SIGTERM/SIGINT (and SIGHUP, except in `run`) -> cancel -> drain within `shutdown_grace`.
//! - [`schedule`]: the `run` daemon: cron jobs per target, no overlap, reload on SIGHUP, drain on SIGTERM.
//! - [`http`]: `/metrics`, `/healthz`, `/readyz` on a bounded accept loop (timeouts, connection cap).
//! - [`notify`]: systemd's sd_notify protocol (READY, RELOADING, WATCHDOG, STATUS, STOPPING).
//! - `demo` (feature `demo`, on by default): the `demo` command, on the in-memory S3 endpoint of the
//!   `s3-mem` crate (crates/s3-mem, also the tests' fault-injecting endpoint).
//!
//! `main.rs` only dispatches the commands of docs/contract.md to these.

pub mod config;
#[cfg(feature = "demo")]
pub mod demo;
pub mod discover;
pub mod http;
pub mod lease;
pub mod lifecycle;
pub mod limit;
pub mod metrics;
pub mod notify;
pub mod policy;
pub mod report;
pub mod runner;
pub mod schedule;
pub mod shutdown;
pub mod store;
pub mod sweep;
pub mod verify;

pub use config::{Config, ConfigError};
pub use report::{RunReport, TargetReport};
pub use store::StoreError;
