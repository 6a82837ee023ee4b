//! The integration suite of mpu-janitor: one test binary, one process, organised by behaviour.
//! It drives the real library and the real binary (`CARGO_BIN_EXE_mpu-janitor`) against real
//! components, never a mock of the SDK:
//!
//! - `listing`, `verify`, `safety`: the sweep on every real server of `common::server::servers()`
//!   (Garage 2.5.0, Ceph RGW 16 and the JuiceFS 1.4.2 S3 gateway, each started once for the whole
//!   suite, see `common::garage`, `common::rgw`, `common::juicefs`; where one does something
//!   differently, the scenario asserts that for it) and on the embedded s3-mem endpoint with fault
//!   injection; `safety` also runs `plan` and `once --dry-run` through the binary against each.
//! - `juicefs`: the JuiceFS gateway names itself MinIO yet lists bucket-wide: an empty bucket there
//!   is `[ok]`, never `blind`.
//! - `resilience`: the embedded endpoint injecting SlowDown, resets, clock skew and latency.
//! - `bounds`, `hostile`: scripted answers no real server gives on demand (endless, cycling,
//!   oversized, malformed, blind), on both request paths, asserting the exact requests sent.
//! - `daemon`: the binary's `run` and `once` against the embedded endpoint, with a Unix datagram
//!   socket as systemd's NOTIFY_SOCKET and SIGTERM.
//! - `signals`: SIGHUP (reload in `run`, drain in `once`), interrupted `once` runs and their exit
//!   code, and the daemon's HTTP server under slow, idle and descriptor-exhausting clients.
//! - `metrics`: the binary's textfile, a real Pushgateway and a real Prometheus (Debian packages).
//! - `config`: bad configurations through the binary: ranges, what would fail at run time, secrets
//!   never echoed, `--log-level` typos, an unreachable config path.
//! - `discovery`: `bucket = "*"` on the embedded endpoint (pages, globs, tags, regions, a bucket
//!   deleted mid-run) and on Garage (30 buckets, overlap with an explicit target, a new bucket
//!   picked up by `run`).
//! - `directory`: directory buckets on the embedded directory-bucket endpoint (sessions, opaque
//!   unsorted pages, conditional aborts, a replaced upload kept, path and virtual-hosted style).
//! - `access_points`: an access point ARN and alias reaching the access point's host, signed for
//!   the ARN's region, on both request paths; check-config's addressing of every kind.
//! - `glacier`: Glacier vaults on the embedded Glacier endpoint (pages, stragglers, the stuck,
//!   bytes, the account id, `plan`).
//! - `roles`: `role_arn` and `accounts` against a real STS (moto's server mode): the assumed keys
//!   sign every S3 call, a short session is refreshed mid-sweep, a denied AssumeRole fails its
//!   target only.
//! - `lifecycle`: the lifecycle audit on Garage and RGW (a covering abort rule, another prefix's,
//!   none; JSON, `plan`, the gauge) and on JuiceFS, which has no lifecycle API ("unknown").
//! - `proxy`: every request through a real tinyproxy (forward and CONNECT, `proxy` and the
//!   environment, `NO_PROXY`, a wrong proxy password never shown).
//! - `lease`: the lease among replicas on moto's S3 (take, skip, take over on the store's clock,
//!   renewal and loss, finish, a race), the probe on Garage (conditions ignored) and Ceph RGW.
//! - `doctor`: the `doctor` command through the binary on Garage, s3-mem, the hostile endpoint,
//!   the Glacier endpoint and a real STS (moto): the exact check lines, the exit code, only reads.
//! - `cli`: the binary as a user runs it, against every real server, the embedded endpoint (`demo`)
//!   and a TLS proxy with a private CA.
//!
//! No test sets a process-wide environment variable: settings and credentials reach the library as
//! arguments and the binary through its own `Command` (`common::janitor`).

mod common;

mod access_points;
mod accounting;
mod audit;
mod bounds;
mod cli;
mod concurrency;
mod config;
mod daemon;
mod directory;
mod discovery;
mod doctor;
mod glacier;
mod hostile;
mod juicefs;
mod lease;
mod lifecycle;
mod listing;
mod metrics;
mod proxy;
mod replicas;
mod resilience;
mod roles;
mod safety;
mod signals;
mod verify;
