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

mod coordination;
mod log_filter;
mod render;
pub mod types;
mod validate;

pub use coordination::{CoordinationConfig, LeaseLocation, default_holder};
pub use log_filter::check_log_filter;
pub use render::{redact_url, render_effective};
pub use types::{
    BucketGlob, HttpUrl, HumanDuration, RequestPathSetting, RetryMode, RoleArn, Schedule, Secret,
    TimeZone,
};
pub use validate::{
    DAEMON_COUNTS, DAEMON_DURATIONS, Limit, SETTINGS_COUNTS, SETTINGS_DURATIONS, SHARDING_COUNTS,
};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
    /// One sweeper per target among processes sharing this configuration (a lease).
    #[serde(default)]
    pub coordination: CoordinationConfig,
    /// What to sweep.
    #[serde(default)]
    pub targets: Vec<TargetFile>,
}

/// How a discovery target (`bucket = "*"`) picks its buckets.
#[derive(Clone, Debug, PartialEq)]
pub struct Discovery {
    /// The rule's name in reports: `targets[N]`, or `targets[N] account ACCOUNT` for one account
    /// of a fan-out.
    pub rule: String,
    /// Globs a bucket must match one of; `None` = every bucket.
    pub include: Option<Vec<BucketGlob>>,
    /// Globs a bucket must match none of.
    pub exclude: Vec<BucketGlob>,
    /// Tags a bucket must carry, every one with this value.
    pub tags: BTreeMap<String, String>,
}

impl Discovery {
    /// What the rule matches, in the configuration's words: `include_buckets ["logs-*"],
    /// exclude_buckets ["*-tmp"], bucket_tags {team = "media"}` (every bucket when none is set).
    pub fn describe(&self) -> String {
        let globs = |g: &[BucketGlob]| {
            g.iter()
                .map(|g| format!("{:?}", g.as_str()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut parts = Vec::new();
        if let Some(include) = &self.include {
            parts.push(format!("include_buckets [{}]", globs(include)));
        }
        if !self.exclude.is_empty() {
            parts.push(format!("exclude_buckets [{}]", globs(&self.exclude)));
        }
        if !self.tags.is_empty() {
            let tags: Vec<String> = self
                .tags
                .iter()
                .map(|(k, v)| format!("{k} = {v:?}"))
                .collect();
            parts.push(format!("bucket_tags {{{}}}", tags.join(", ")));
        }
        if parts.is_empty() {
            "every bucket".to_string()
        } else {
            parts.join(", ")
        }
    }
}

/// An S3 Glacier vault a target sweeps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vault {
    /// The vault's name.
    pub name: String,
    /// Its account: `-` (the credentials' own) or a 12-digit id, sent as given.
    pub account_id: String,
}

impl Vault {
    /// What a vault's target is named in reports and metrics (its `bucket` label):
    /// `vault:NAME`, or `vault:ACCOUNT/NAME` for another account's, names no bucket can have.
    pub fn label(&self) -> String {
        if self.account_id == "-" {
            format!("vault:{}", self.name)
        } else {
            format!("vault:{}/{}", self.account_id, self.name)
        }
    }
}

/// The bucket name of a discovery target.
pub const EVERY_BUCKET: &str = "*";

/// One target with its settings resolved (defaults + overrides).
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    /// Bucket name, access point alias or ARN; [`EVERY_BUCKET`] for a discovery target.
    pub bucket: String,
    /// Key prefix the sweep is limited to.
    pub prefix: String,
    /// Key prefixes never touched.
    pub exclude_prefixes: Vec<String>,
    /// Effective settings.
    pub settings: Settings,
    /// On a discovery target, how it picks its buckets; on a bucket it discovered, the rule that
    /// matched it. `None` on a target written for one bucket.
    pub discovery: Option<Arc<Discovery>>,
    /// The Glacier vault, for a vault's target (`bucket` is then its [`Vault::label`]).
    pub vault: Option<Vault>,
}

impl Target {
    /// Whether this is a discovery target (`bucket = "*"`), to be expanded into buckets.
    pub fn discovers(&self) -> bool {
        self.bucket == EVERY_BUCKET
    }

    /// The store's address as the bucket's identity: the endpoint and the bucket (two stores may
    /// each have a bucket of the same name).
    pub fn identity(&self) -> (&str, &str) {
        (self.settings.endpoint_url.as_str(), &self.bucket)
    }
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
        let file: FileConfig = fig.extract().map_err(|e| ConfigError {
            problems: e
                .into_iter()
                .map(validate::describe_figment_error)
                .collect(),
        })?;
        let mut env_keys: Vec<String> = std::env::vars()
            .map(|(k, _)| k)
            .filter(|k| k.starts_with("MPU_JANITOR_") && k.contains("__"))
            .collect();
        env_keys.sort();
        sources.extend(env_keys.into_iter().map(|k| format!("environment {k}")));
        if cli.dry_run {
            sources.push("command line --dry-run".into());
        }
        let mut early = Vec::new();
        let targets = resolve_targets(file.targets, &file.defaults, cli, &mut early, &fig);
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
            coordination: file.coordination,
            targets,
            sources,
        };
        let mut problems = early;
        problems.extend(config.problems(&fig));
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

/// The targets of the file with their settings resolved, an account fan-out expanded into one
/// discovery target per account; what cannot be resolved goes to `problems`.
fn resolve_targets(
    files: Vec<TargetFile>,
    defaults: &Settings,
    cli: &CliOverrides,
    problems: &mut Vec<String>,
    fig: &Figment,
) -> Vec<Target> {
    let src = fig
        .find_metadata("targets")
        .and_then(|m| m.source.as_ref().map(|s| format!(" (from {s})")))
        .unwrap_or_default();
    let mut targets = Vec::with_capacity(files.len());
    for (i, mut t) in files.into_iter().enumerate() {
        // A role written on the target itself (not one inherited from [defaults], which each
        // account's role of a fan-out replaces).
        let own_role = t.role_arn.is_some();
        let mut settings = defaults.overlay(&mut t);
        if cli.dry_run {
            settings.dry_run = true;
        }
        let mut problem =
            |key: &str, what: String| problems.push(format!("targets[{i}].{key}: {what}{src}"));
        let fan_out = !t.accounts.is_empty();
        if fan_out && t.bucket.is_empty() {
            t.bucket = EVERY_BUCKET.to_string();
        }
        let discovers = t.bucket == EVERY_BUCKET;
        if !discovers {
            for (key, set) in [
                ("include_buckets", t.include_buckets.is_some()),
                ("exclude_buckets", !t.exclude_buckets.is_empty()),
                ("bucket_tags", !t.bucket_tags.is_empty()),
                ("accounts", fan_out),
            ] {
                if set {
                    problem(
                        key,
                        format!(
                            "applies to discovery only: set bucket = \"*\" (bucket is {:?})",
                            t.bucket
                        ),
                    );
                }
            }
        }
        if t.include_buckets.as_ref().is_some_and(Vec::is_empty) {
            problem(
                "include_buckets",
                "an empty list matches no bucket: leave it out to sweep every bucket, or list globs such as \"logs-*\"".to_string(),
            );
        }
        if !t.role_name.is_empty() && !fan_out {
            problem("role_name", "names the role assumed in each of accounts: set accounts too, or give the whole ARN as role_arn".to_string());
        }
        if fan_out && t.role_name.is_empty() {
            problem(
                "accounts",
                "needs role_name, the role assumed in each account".to_string(),
            );
        }
        if fan_out && own_role && settings.role_arn.is_set() {
            problem(
                "role_arn",
                "conflicts with accounts: each account's role is role_name in that account"
                    .to_string(),
            );
        }
        let vault = (!t.vault.is_empty() || !t.account_id.is_empty()).then(|| Vault {
            name: t.vault.clone(),
            account_id: Some(t.account_id.clone())
                .filter(|a| !a.is_empty())
                .unwrap_or_else(|| "-".to_string()),
        });
        if let Some(v) = &vault {
            if !t.bucket.is_empty() {
                problem(
                    "vault",
                    format!(
                        "a target sweeps either a bucket or a vault: remove bucket = {:?} or vault = {:?}",
                        t.bucket, v.name
                    ),
                );
            }
            if v.name.trim().is_empty() {
                problem(
                    "account_id",
                    "applies to a vault: set vault too".to_string(),
                );
            }
            if v.account_id != "-" && !types::is_account_id(&v.account_id) {
                problem(
                    "account_id",
                    format!(
                        "{:?} is not \"-\" or an account id (12 digits)",
                        v.account_id
                    ),
                );
            }
            for (key, set) in [
                ("prefix", !t.prefix.is_empty()),
                ("exclude_prefixes", !t.exclude_prefixes.is_empty()),
            ] {
                if set {
                    problem(
                        key,
                        "applies to object keys; a vault's uploads have none".to_string(),
                    );
                }
            }
            t.bucket = v.label();
        }
        let discovers = discovers && vault.is_none();
        let discovery = discovers.then(|| Discovery {
            rule: format!("targets[{i}]"),
            include: t.include_buckets.take(),
            exclude: std::mem::take(&mut t.exclude_buckets),
            tags: std::mem::take(&mut t.bucket_tags),
        });
        let target = Target {
            bucket: t.bucket,
            prefix: t.prefix,
            exclude_prefixes: t.exclude_prefixes,
            settings,
            discovery: discovery.clone().map(Arc::new),
            vault,
        };
        if !fan_out {
            targets.push(target);
            continue;
        }
        let partition = partition_of(&target.settings.region);
        for account in &t.accounts {
            if !types::is_account_id(account) {
                problem(
                    "accounts",
                    format!("{account:?} is not an account id (12 digits)"),
                );
                continue;
            }
            match RoleArn::of(partition, account, &t.role_name) {
                Ok(role) => {
                    let mut one = target.clone();
                    one.settings.role_arn = role;
                    one.discovery = discovery.clone().map(|d| {
                        Arc::new(Discovery {
                            rule: format!("{} account {account}", d.rule),
                            ..d
                        })
                    });
                    targets.push(one);
                }
                Err(e) => problem("role_name", e),
            }
        }
    }
    targets
}

/// The ARN partition of a region: `aws-cn` for China, `aws-us-gov` for GovCloud, else `aws`.
fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// The shard (0..count) a target belongs to: FNV-1a of bucket and prefix, stable across versions,
/// platforms and processes (unlike std's hasher), so N processes cover every target exactly once.
pub fn shard_of(bucket: &str, prefix: &str, count: u32) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bucket.bytes().chain([0]).chain(prefix.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % u64::from(count.max(1))) as u32
}

#[cfg(test)]
mod tests;
