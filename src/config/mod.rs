//! Configuration: the serde structs, the figment layers (defaults, file, `MPU_JANITOR_*` environment,
//! command-line flags), resolved per target. Everything the rest of the program reads about a target
//! comes from the resolved [`Config`]; nothing else looks at files or the environment for settings.
//!
//! - [`types`]: the typed values (durations, retry mode, cron, time zone, URLs), parsed once.
//! - `validate`: what is wrong with a configuration, one line per problem; warnings; the range of
//!   every numeric key.
//! - `log_filter`: the `--log-level` check.
//! - `render`: the effective configuration for `check-config`, secrets redacted.
//! - `coordination`: `[coordination]`, the lease that elects one sweeper per target among replicas.

mod client;
mod coordination;
mod log_filter;
mod profile;
mod reload;
mod render;
mod target;
pub mod types;
mod validate;

pub use crate::redact::redact_url;
pub use client::ClientSettings;
pub use coordination::{CoordinationConfig, LeaseLocation, default_holder};
pub use log_filter::check_log_filter;
pub use reload::RESTART_ONLY;
pub use render::render_effective;
pub use target::{Discovery, EVERY_BUCKET, Kind, Target, Vault, shard_of};
pub use types::{
    BucketGlob, HttpUrl, HumanDuration, RequestPathSetting, RetryMode, RoleArn, Schedule, Secret,
    TimeZone,
};
pub use validate::{
    DAEMON_COUNTS, DAEMON_DURATIONS, Limit, SETTINGS_COUNTS, SETTINGS_DURATIONS, SHARDING_COUNTS,
};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// Where the configuration comes from when `--config` is not given and `$MPU_JANITOR_CONFIG` is unset.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/mpu-janitor/config.toml";

/// Defines [`Settings`] (the keys of `[defaults]`, all with defaults) and [`TargetFile`] (a
/// `[[targets]]` entry, where every settings key is optional) from one list, so the two can never
/// disagree on a key, its type or its documentation.
macro_rules! settings {
    ($( $(#[doc = $doc:literal])* $name:ident : $ty:ty = $default:expr; )*) => {
        /// The settings every target inherits from `[defaults]` and may override.
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields, default)]
        pub struct Settings {
            $( $(#[doc = $doc])* pub $name: $ty, )*
        }

        impl Default for Settings {
            fn default() -> Self {
                Settings { $( $name: $default, )* }
            }
        }

        /// One `[[targets]]` entry as written in the file: what to sweep plus optional overrides.
        #[derive(Clone, Debug, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct TargetFile {
            /// Bucket name, access point alias or ARN, or `"*"` for every bucket the credentials
            /// can list (discovery). Required.
            #[serde(default)]
            pub bucket: String,
            /// Discovery: only buckets matching one of these globs; absent = every bucket.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub include_buckets: Option<Vec<BucketGlob>>,
            /// Discovery: never buckets matching one of these globs. Default [].
            #[serde(default)]
            pub exclude_buckets: Vec<BucketGlob>,
            /// Discovery: only buckets carrying every one of these tags (GetBucketTagging).
            /// Default {}.
            #[serde(default)]
            pub bucket_tags: BTreeMap<String, String>,
            /// Account fan-out: one discovery target per account, each through the role
            /// `role_name` of that account. Default [].
            #[serde(default)]
            pub accounts: Vec<String>,
            /// The role assumed in each of `accounts`. Default "".
            #[serde(default)]
            pub role_name: String,
            /// An S3 Glacier vault to sweep, in place of `bucket`. Default "".
            #[serde(default)]
            pub vault: String,
            /// The vault's account: `-` (the credentials' own) or a 12-digit id. Default "-".
            #[serde(default)]
            pub account_id: String,
            /// Only uploads under this key prefix are considered. Default "".
            #[serde(default)]
            pub prefix: String,
            /// Uploads under any of these key prefixes are never touched. Default [].
            #[serde(default)]
            pub exclude_prefixes: Vec<String>,
            $( $(#[doc = $doc])* #[serde(default, skip_serializing_if = "Option::is_none")] pub $name: Option<$ty>, )*
        }

        impl Settings {
            /// Every key of `[defaults]`, in declaration order.
            pub const KEYS: &[&str] = &[$( stringify!($name), )*];

            /// The keys whose values differ from `base`, each with its value as `check-config`
            /// prints it; keys equal to `base` are not serialized at all.
            pub(crate) fn differences(&self, base: &Settings) -> Vec<(&'static str, toml::Value)> {
                let mut out = Vec::new();
                $(
                    if self.$name != base.$name
                        && let Ok(v) = toml::Value::try_from(&self.$name)
                    {
                        out.push((stringify!($name), v));
                    }
                )*
                out
            }

            /// `ca_bundle`, when set.
            pub fn ca_bundle(&self) -> Option<&Path> {
                Some(self.ca_bundle.as_path()).filter(|p| !p.as_os_str().is_empty())
            }

            /// These settings with every override the target sets applied on top (taken, not
            /// cloned: loading 100,000 targets clones nothing it does not keep).
            fn overlay(&self, t: &mut TargetFile) -> Settings {
                Settings { $( $name: t.$name.take().unwrap_or_else(|| self.$name.clone()), )* }
            }
        }
    };
}

settings! {
    /// An upload initiated longer ago than this is stale. Default 7d.
    older_than: HumanDuration = HumanDuration::secs(7 * 86_400);
    /// When > 0, a stale upload is kept while its newest part is younger than this (protects slow
    /// live uploads). Default 0s (off).
    idle_for: HumanDuration = HumanDuration::secs(0);
    /// 6-field cron expression (seconds first) used by `run`. Default every hour on the hour.
    schedule: Schedule = Schedule::default();
    /// IANA time zone the schedule is read in. Default UTC.
    timezone: TimeZone = TimeZone::default();
    /// AbortMultipartUpload calls per upload before it is reported unverified. Default 5.
    max_abort_attempts: u32 = 5;
    /// Most uploads aborted per target per sweep; 0 = no cap. Default 0.
    max_aborts_per_run: u64 = 0;
    /// Uploads processed at once per target: 0 adapts it to what the store sustains (starting at
    /// 32, within 4..=`max_concurrency`: grows while calls do not queue, shrinks as they do and on
    /// SlowDown); a number pins it. Default 0 (adaptive).
    concurrency: usize = 0;
    /// Most uploads in flight per target when `concurrency` adapts. Default 1024 (a 20 ms round
    /// trip needs about 400 in flight to keep up with a loopback store).
    max_concurrency: usize = 1024;
    /// Report what would be aborted, change nothing. Default false.
    dry_run: bool = false;
    /// AWS region (or the region an S3-compatible store expects). Default us-east-1.
    region: String = "us-east-1".to_string();
    /// S3-compatible endpoint URL; empty = AWS. Default "".
    endpoint_url: HttpUrl = HttpUrl::default();
    /// Path-style addressing (`endpoint/bucket/key`), needed by most S3-compatible stores. Default false.
    force_path_style: bool = false;
    /// Shared-config profile; empty = the default credential chain. Default "".
    profile: String = String::new();
    /// Account id sent as ExpectedBucketOwner on every call when set. Default "".
    expected_bucket_owner: String = String::new();
    /// Send RequestPayer=requester on every call. Default false.
    request_payer: bool = false;
    /// PEM file of extra trusted CAs (AWS_CA_BUNDLE is honoured too). Default "".
    ca_bundle: PathBuf = PathBuf::new();
    /// HTTP proxy for every request of this target (`http://[user:password@]host:port`; an
    /// `https://` proxy is spoken by the SDK path only); `NO_PROXY` still exempts hosts. Empty =
    /// the environment's `HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY` / `NO_PROXY`. Default "".
    proxy: HttpUrl = HttpUrl::default();
    /// IAM role assumed (STS AssumeRole, on top of the credential chain or `profile`) for every
    /// call of the target; "" = none. Default "".
    role_arn: RoleArn = RoleArn::default();
    /// ExternalId sent with AssumeRole, when the role's trust policy asks for one. Default "".
    external_id: Secret = Secret::default();
    /// RoleSessionName of AssumeRole (it appears in the role account's CloudTrail). Default
    /// "mpu-janitor".
    session_name: String = "mpu-janitor".to_string();
    /// How long an assumed role's credentials last (DurationSeconds); they are refreshed before
    /// they expire, so a longer sweep keeps working. Default 1h.
    duration: HumanDuration = HumanDuration::secs(3_600);
    /// STS endpoint for AssumeRole; empty = the region's (or AWS_ENDPOINT_URL_STS). Default "".
    sts_endpoint_url: HttpUrl = HttpUrl::default();
    /// TCP + TLS connect timeout. Default 5s.
    connect_timeout: HumanDuration = HumanDuration::secs(5);
    /// Time allowed for a response to start arriving. Default 60s.
    read_timeout: HumanDuration = HumanDuration::secs(60);
    /// Attempts per S3 call, first try included, on throttling, 5xx, timeouts and connection
    /// errors, with exponential backoff and full jitter from 50 ms (500 ms after a SlowDown, and
    /// on the SDK path). Default 5.
    retry_max_attempts: u32 = 5;
    /// Retry mode: "standard", or "adaptive" (client-side back-off on throttling even when
    /// `concurrency` is pinned; on the SDK path, the SDK's rate limiter too). Default standard.
    retry_mode: RetryMode = RetryMode::Standard;
    /// Request path: "auto" (the lean path wherever the endpoint is plain SigV4) or "sdk" (every
    /// call through aws-sdk-s3's pipeline, slower). Default auto.
    request_path: RequestPathSetting = RequestPathSetting::Auto;
    /// Largest disagreement tolerated between this host's clock and the store's (read from the
    /// `Date` header of its ListMultipartUploads answer); beyond it, the target's ages are measured
    /// on the store's clock, and the skew is logged and reported. Default 5m.
    max_clock_skew: HumanDuration = HumanDuration::secs(300);
    /// When the store sends no usable `Date` header, age uploads on this host's clock anyway.
    /// Default false: such a target is reported as failed and nothing is aborted.
    trust_host_clock: bool = false;
    /// US dollars per GiB-month for the estimate of what the stale uploads cost (`plan`, the
    /// report's `stale_monthly_cost_estimate`). Default 0.023, the S3 Standard list price in
    /// us-east-1; an estimate, not a bill.
    price_per_gib_month: f64 = 0.023;
    /// `run` waits a random delay up to this long before each scheduled sweep, so a fleet does not
    /// hit S3 in the same second. Default 0s.
    start_jitter: HumanDuration = HumanDuration::secs(0);
}

/// `[daemon]`: process-wide limits and shutdown.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonConfig {
    /// On SIGTERM/SIGINT, how long in-flight aborts may take to finish and be verified before the
    /// process exits anyway. Below Kubernetes' default 30 s grace. Default 20s.
    pub shutdown_grace: HumanDuration,
    /// Targets swept at the same time. Default 8.
    pub parallel_targets: usize,
    /// Uploads in flight across all targets at once (each target also has its `concurrency`), and
    /// never more than half the open-file limit allows. Default 1024.
    pub max_in_flight: usize,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            shutdown_grace: HumanDuration::secs(20),
            parallel_targets: 8,
            max_in_flight: 1024,
        }
    }
}

/// `[sharding]`: split the targets across several processes (Kubernetes Indexed Jobs). A process
/// sweeps the targets whose stable hash of bucket and prefix, modulo `count`, equals `index`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShardingConfig {
    /// This process's shard, 0-based. Default: `$JOB_COMPLETION_INDEX` when set, else 0.
    pub index: Option<u32>,
    /// Number of shards. Default 1 (no sharding).
    pub count: u32,
}

impl Default for ShardingConfig {
    fn default() -> Self {
        ShardingConfig {
            index: None,
            count: 1,
        }
    }
}

/// `[metrics]`: how the figures leave the process.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Address `run` serves /metrics, /healthz and /readyz on; "" disables. Default 127.0.0.1:9464.
    pub listen: String,
    /// File `once`/`run` write the exposition to atomically after each sweep; "" disables. Default "".
    pub textfile: PathBuf,
    /// Pushgateway base URL `once` pushes to before exiting (job="mpu_janitor"); "" disables. Default "".
    pub pushgateway_url: HttpUrl,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            listen: "127.0.0.1:9464".into(),
            textfile: PathBuf::new(),
            pushgateway_url: HttpUrl::default(),
        }
    }
}

/// `[audit]`: the record of every upload the janitor acts on or judges stale.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// File the records are appended to, one JSON line each, flushed before the run's report is
    /// printed; reopened at every run, so logrotate can rotate it. "" = the INFO log events of
    /// target `mpu_janitor::audit` only. Default "".
    pub path: PathBuf,
}

/// The whole file as written.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Settings every target inherits.
    #[serde(default)]
    pub defaults: Settings,
    /// Metrics export.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// Process-wide limits and shutdown.
    #[serde(default)]
    pub daemon: DaemonConfig,
    /// Splitting targets across processes.
    #[serde(default)]
    pub sharding: ShardingConfig,
    /// The audit trail.
    #[serde(default)]
    pub audit: AuditConfig,
    /// One sweeper per target among processes sharing this configuration (a lease).
    #[serde(default)]
    pub coordination: CoordinationConfig,
    /// What to sweep.
    #[serde(default)]
    pub targets: Vec<TargetFile>,
}

/// The validated, effective configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// `[defaults]` as resolved.
    pub defaults: Settings,
    /// `[metrics]` as resolved.
    pub metrics: MetricsConfig,
    /// `[daemon]` as resolved.
    pub daemon: DaemonConfig,
    /// `[sharding]` as resolved (index filled from `$JOB_COMPLETION_INDEX` when unset).
    pub sharding: ShardingConfig,
    /// `[audit]` as resolved.
    pub audit: AuditConfig,
    /// `[coordination]` as resolved.
    pub coordination: CoordinationConfig,
    /// The targets of this shard, settings resolved.
    pub targets: Vec<Target>,
    /// The buckets every shard's targets name, as (endpoint, bucket): discovery leaves them to
    /// their own targets, whichever shard sweeps those.
    pub named_buckets: std::collections::HashSet<(String, String)>,
    /// Where each layer came from, for `check-config`.
    pub sources: Vec<String>,
}

/// Overrides coming from command-line flags: the last layer.
#[derive(Clone, Debug, Default)]
pub struct CliOverrides {
    /// `--dry-run`: forces `dry_run = true` on every target.
    pub dry_run: bool,
}

/// A configuration that cannot be used, with everything a user needs to fix it.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n{}", .problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
pub struct ConfigError {
    /// One line per problem: key, bad value, source.
    pub problems: Vec<String>,
}

impl ConfigError {
    fn one(problem: impl Into<String>) -> Self {
        ConfigError {
            problems: vec![problem.into()],
        }
    }
}

/// The configuration file to read: the flag, then `$MPU_JANITOR_CONFIG`, then the default path.
pub fn config_path(flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    match std::env::var_os("MPU_JANITOR_CONFIG") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(DEFAULT_CONFIG_PATH),
    }
}

/// The figment layers, later wins: built-in defaults, the file, `MPU_JANITOR_<SECTION>__<KEY>`.
pub fn figment(path: &Path) -> Figment {
    Figment::new()
        .merge(Serialized::defaults(FileConfig::default()))
        .merge(Toml::file_exact(path))
        .merge(env_layer())
}

/// The region of the AWS environment when no layer of the configuration set `defaults.region`, as
/// aws-config resolves it: `AWS_REGION`, then `AWS_DEFAULT_REGION`, then the `region` of the
/// profile (`defaults.profile`, else `$AWS_PROFILE`, else `default`) in the shared config file;
/// with where it came from. `None` leaves the built-in `us-east-1`.
fn ambient_region(fig: &Figment, profile: &str) -> Option<(String, String)> {
    if !region_is_unset(fig) {
        return None;
    }
    let env = ["AWS_REGION", "AWS_DEFAULT_REGION"]
        .into_iter()
        .find_map(|var| {
            std::env::var(var)
                .ok()
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .map(|v| (format!("the environment ({var})"), v))
        });
    env.or_else(|| {
        let name = if profile.is_empty() {
            profile::ambient()
        } else {
            profile.to_string()
        };
        let (config, _) = profile::files();
        profile::region(&name, &config)
            .map(|r| (format!("profile {name:?} in {}", config.display()), r))
    })
}

/// Whether no layer of the configuration (file or variable) set `defaults.region`.
fn region_is_unset(fig: &Figment) -> bool {
    fig.find_metadata("defaults.region")
        .is_none_or(|m| m.name == std::any::type_name::<FileConfig>())
}

/// `MPU_JANITOR_<SECTION>__<KEY>` variables. Variables without a `__` (such as `MPU_JANITOR_CONFIG`)
/// are not configuration keys and are left out.
fn env_layer() -> Env {
    Env::prefixed("MPU_JANITOR_")
        .filter(|k| k.as_str().contains("__"))
        .split("__")
}

impl Config {
    /// Reads, layers and validates the configuration at `path`. Contacts nothing.
    pub fn load(path: &Path, cli: &CliOverrides) -> Result<Config, ConfigError> {
        // `Path::exists` says false for any error: tell "not there" from "cannot be reached".
        match std::fs::metadata(path) {
            Ok(md) if md.is_dir() => {
                return Err(ConfigError::one(format!(
                    "configuration file {} is a directory (set --config or MPU_JANITOR_CONFIG to a file)",
                    path.display()
                )));
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ConfigError::one(format!(
                    "configuration file {} does not exist (set --config or MPU_JANITOR_CONFIG)",
                    path.display()
                )));
            }
            Err(e) => {
                return Err(ConfigError::one(format!(
                    "configuration file {} cannot be read: {e}",
                    path.display()
                )));
            }
        }
        Self::from_figment(figment(path), cli, vec![path.display().to_string()])
    }

    /// Extracts and validates a configuration from any figment (tests layer strings this way).
    pub fn from_figment(
        fig: Figment,
        cli: &CliOverrides,
        mut sources: Vec<String>,
    ) -> Result<Config, ConfigError> {
        // Keys that cannot be read are said first; the rest of the configuration, read without
        // them, is still checked below, so that every problem is said in one run.
        let (file, unreadable) = match validate::extract_all(&fig) {
            Ok(file) => (file, Vec::new()),
            Err((problems, Some(rest))) => (*rest, problems),
            Err((problems, None)) => return Err(ConfigError { problems }),
        };
        let mut env_keys: Vec<String> = std::env::vars()
            .map(|(k, _)| k)
            .filter(|k| k.starts_with("MPU_JANITOR_") && k.contains("__"))
            .collect();
        env_keys.sort();
        sources.extend(env_keys.into_iter().map(|k| format!("environment {k}")));
        if cli.dry_run {
            sources.push("command line --dry-run".into());
        }
        let mut file = file;
        if let Some((from, region)) = ambient_region(&fig, &file.defaults.profile) {
            sources.push(format!(
                "defaults.region = {region:?} from {from}: no layer set region"
            ));
            file.defaults.region = region;
        }
        let mut early = Vec::new();
        let targets = target::resolve_targets(file.targets, &file.defaults, cli, &mut early, &fig);
        let mut sharding = file.sharding;
        if sharding.index.is_none()
            && let Ok(v) = std::env::var("JOB_COMPLETION_INDEX")
            && !v.trim().is_empty()
        {
            // A garbled index must not quietly become shard 0.
            match v.trim().parse() {
                Ok(i) => sharding.index = Some(i),
                Err(_) => early.push(format!(
                    "sharding.index: {v:?} is not a shard index (a number below sharding.count) (from environment variable JOB_COMPLETION_INDEX)"
                )),
            }
        }
        let named_buckets = targets
            .iter()
            .filter(|t| !t.discovers())
            .map(|t| {
                let (e, b) = t.identity();
                (e.to_string(), b.to_string())
            })
            .collect();
        let config = Config {
            named_buckets,
            defaults: file.defaults,
            metrics: file.metrics,
            daemon: file.daemon,
            sharding,
            audit: file.audit,
            coordination: file.coordination,
            targets,
            sources,
        };
        // A key said unreadable is not said again by the checks of what was read without it.
        let said: Vec<String> = unreadable
            .iter()
            .filter_map(|p| p.split_once(": ").map(|(k, _)| format!("{k}:")))
            .collect();
        let mut problems = unreadable;
        problems.extend(
            early
                .into_iter()
                .chain(config.problems(&fig))
                .filter(|p| !said.iter().any(|k| p.starts_with(k.as_str()))),
        );
        if !problems.is_empty() {
            return Err(ConfigError { problems });
        }
        let mut config = config;
        let (index, count) = (config.sharding.index.unwrap_or(0), config.sharding.count);
        if count > 1 {
            config.sources.push(format!(
                "sharding: shard {index} of {count} keeps {} of {} targets",
                config
                    .targets
                    .iter()
                    .filter(|t| t.discovers() || shard_of(&t.bucket, &t.prefix, count) == index)
                    .count(),
                config.targets.len()
            ));
            // Every shard keeps the discovery targets, and sweeps the buckets of its own shard.
            config
                .targets
                .retain(|t| t.discovers() || shard_of(&t.bucket, &t.prefix, count) == index);
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests;
