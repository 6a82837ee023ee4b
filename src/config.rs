//! Configuration: the serde structs, the figment layers (defaults, file, `MPU_JANITOR_*` environment,
//! command-line flags) and `validate()`. Everything the rest of the program reads about a target comes
//! from the resolved [`Config`]; nothing else looks at files or the environment for settings.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Where the configuration comes from when `--config` is not given and `$MPU_JANITOR_CONFIG` is unset.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/mpu-janitor/config.toml";

/// A duration written as a humantime string (`90s`, `36h`, `7d`) in the file and the environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    /// A duration of `secs` seconds.
    pub const fn secs(secs: u64) -> Self {
        HumanDuration(Duration::from_secs(secs))
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_zero() {
            return f.write_str("0s");
        }
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(text.trim())
            .map(HumanDuration)
            .map_err(|e| {
                serde::de::Error::custom(format!(
                    "invalid duration {text:?} ({e}); use a humantime string such as \"90s\", \"36h\" or \"7d\""
                ))
            })
    }
}

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
            /// Bucket name, access point alias or ARN. Required.
            #[serde(default)]
            pub bucket: String,
            /// Only uploads under this key prefix are considered. Default "".
            #[serde(default)]
            pub prefix: String,
            /// Uploads under any of these key prefixes are never touched. Default [].
            #[serde(default)]
            pub exclude_prefixes: Vec<String>,
            $( $(#[doc = $doc])* #[serde(default, skip_serializing_if = "Option::is_none")] pub $name: Option<$ty>, )*
        }

        impl Settings {
            /// These settings with every override the target sets applied on top.
            fn overlay(&self, t: &TargetFile) -> Settings {
                Settings { $( $name: t.$name.clone().unwrap_or_else(|| self.$name.clone()), )* }
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
    schedule: String = "0 0 * * * *".to_string();
    /// IANA time zone the schedule is read in. Default UTC.
    timezone: String = "UTC".to_string();
    /// AbortMultipartUpload calls per upload before it is reported unverified. Default 5.
    max_abort_attempts: u32 = 5;
    /// Most uploads aborted per target per sweep; 0 = no cap. Default 0.
    max_aborts_per_run: u64 = 0;
    /// Uploads processed at once per target. Default 32.
    concurrency: usize = 32;
    /// Report what would be aborted, change nothing. Default false.
    dry_run: bool = false;
    /// AWS region (or the region an S3-compatible store expects). Default us-east-1.
    region: String = "us-east-1".to_string();
    /// S3-compatible endpoint URL; empty = AWS. Default "".
    endpoint_url: String = String::new();
    /// Path-style addressing (`endpoint/bucket/key`), needed by most S3-compatible stores. Default false.
    force_path_style: bool = false;
    /// Shared-config profile; empty = the default credential chain. Default "".
    profile: String = String::new();
    /// Account id sent as ExpectedBucketOwner on every call when set. Default "".
    expected_bucket_owner: String = String::new();
    /// Send RequestPayer=requester on every call. Default false.
    request_payer: bool = false;
    /// PEM file of extra trusted CAs (AWS_CA_BUNDLE is honoured too). Default "".
    ca_bundle: String = String::new();
    /// TCP + TLS connect timeout. Default 5s.
    connect_timeout: HumanDuration = HumanDuration::secs(5);
    /// Time allowed for a response to start arriving. Default 60s.
    read_timeout: HumanDuration = HumanDuration::secs(60);
    /// Attempts per S3 call, first try included, on throttling, 5xx, timeouts and connection
    /// errors, with exponential backoff and full jitter from 50 ms. Default 5.
    retry_max_attempts: u32 = 5;
    /// Retry mode: "standard", or "adaptive" (the SDK's client-side rate limiting on throttling, for
    /// every call: ListParts and aborts then go through the SDK's pipeline). Default standard.
    retry_mode: String = "standard".to_string();
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
    /// Uploads in flight across all targets at once (each target also has its `concurrency`). Default 256.
    pub max_in_flight: usize,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            shutdown_grace: HumanDuration::secs(20),
            parallel_targets: 8,
            max_in_flight: 256,
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
    pub textfile: String,
    /// Pushgateway base URL `once` pushes to before exiting (job="mpu_janitor"); "" disables. Default "".
    pub pushgateway_url: String,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            listen: "127.0.0.1:9464".into(),
            textfile: String::new(),
            pushgateway_url: String::new(),
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
    /// What to sweep.
    #[serde(default)]
    pub targets: Vec<TargetFile>,
}

/// One target with its settings resolved (defaults + overrides).
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    /// Bucket name, access point alias or ARN.
    pub bucket: String,
    /// Key prefix the sweep is limited to.
    pub prefix: String,
    /// Key prefixes never touched.
    pub exclude_prefixes: Vec<String>,
    /// Effective settings.
    pub settings: Settings,
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
    /// The targets of this shard, settings resolved.
    pub targets: Vec<Target>,
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
        if !path.exists() {
            return Err(ConfigError::one(format!(
                "configuration file {} does not exist (set --config or MPU_JANITOR_CONFIG)",
                path.display()
            )));
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
            problems: e.into_iter().map(describe_figment_error).collect(),
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
        let targets = file
            .targets
            .iter()
            .map(|t| {
                let mut settings = file.defaults.overlay(t);
                if cli.dry_run {
                    settings.dry_run = true;
                }
                Target {
                    bucket: t.bucket.clone(),
                    prefix: t.prefix.clone(),
                    exclude_prefixes: t.exclude_prefixes.clone(),
                    settings,
                }
            })
            .collect();
        let mut sharding = file.sharding;
        if sharding.index.is_none() {
            sharding.index = std::env::var("JOB_COMPLETION_INDEX")
                .ok()
                .and_then(|v| v.trim().parse().ok());
        }
        let config = Config {
            defaults: file.defaults,
            metrics: file.metrics,
            daemon: file.daemon,
            sharding,
            targets,
            sources,
        };
        let problems = config.problems(&fig);
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
                    .filter(|t| shard_of(&t.bucket, &t.prefix, count) == index)
                    .count(),
                config.targets.len()
            ));
            config
                .targets
                .retain(|t| shard_of(&t.bucket, &t.prefix, count) == index);
        }
        Ok(config)
    }

    /// Settings that are valid but risky, one line each: `older_than` below one hour can abort
    /// uploads that are still being written.
    pub fn warnings(&self) -> Vec<String> {
        self.targets
            .iter()
            .filter(|t| t.settings.older_than.0 < Duration::from_secs(3_600))
            .map(|t| {
                format!(
                    "target {:?}: older_than = \"{}\" is below one hour: uploads still being written may be aborted (set idle_for to protect slow ones)",
                    t.bucket, t.settings.older_than
                )
            })
            .collect()
    }

    /// Everything wrong with the configuration, one line each naming key, value and source.
    fn problems(&self, fig: &Figment) -> Vec<String> {
        let mut out = Vec::new();
        let source = |key: &str| -> String {
            fig.find_metadata(key)
                .map(|m| match &m.source {
                    Some(s) => format!(" (from {s})"),
                    None => format!(" (from {})", m.name),
                })
                .unwrap_or_default()
        };
        if self.targets.is_empty() {
            out.push("no [[targets]] configured: add at least one with a bucket".to_string());
        }
        check_settings("defaults", &self.defaults, &source("defaults"), &mut out);
        for (i, t) in self.targets.iter().enumerate() {
            let at = format!("targets[{i}]");
            let src = source("targets");
            if t.bucket.trim().is_empty() {
                out.push(format!("{at}.bucket: missing bucket name{src}"));
            }
            for p in &t.exclude_prefixes {
                if p.is_empty() {
                    out.push(format!(
                        "{at}.exclude_prefixes: an empty prefix would exclude every upload{src}"
                    ));
                }
            }
            // Defaults were checked above; only report a target's own bad values once.
            if t.settings != self.defaults {
                let mut own = Vec::new();
                check_settings(&at, &t.settings, &src, &mut own);
                let mut from_defaults = Vec::new();
                check_settings(&at, &self.defaults, &src, &mut from_defaults);
                own.retain(|p| !from_defaults.contains(p));
                out.extend(own);
            }
        }
        let d = &self.daemon;
        if d.parallel_targets == 0 || d.max_in_flight == 0 {
            out.push(format!(
                "daemon.parallel_targets and daemon.max_in_flight must be at least 1 (got {} and {}){}",
                d.parallel_targets,
                d.max_in_flight,
                source("daemon")
            ));
        }
        let sh = &self.sharding;
        if sh.count == 0 {
            out.push(format!(
                "sharding.count: must be at least 1{}",
                source("sharding.count")
            ));
        } else if let Some(i) = sh.index.filter(|i| *i >= sh.count) {
            out.push(format!(
                "sharding.index: {i} is out of range for sharding.count = {} (index is 0-based){}",
                sh.count,
                source("sharding")
            ));
        }
        let m = &self.metrics;
        if !m.listen.is_empty() && SocketAddr::from_str(&m.listen).is_err() {
            out.push(format!(
                "metrics.listen: {:?} is not an address such as \"127.0.0.1:9464\"{}",
                m.listen,
                source("metrics.listen")
            ));
        }
        if !m.pushgateway_url.is_empty() && !is_http_url(&m.pushgateway_url) {
            out.push(format!(
                "metrics.pushgateway_url: {:?} is not an http(s) URL{}",
                redact_url(&m.pushgateway_url),
                source("metrics.pushgateway_url")
            ));
        }
        out
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

/// Parses a schedule exactly as tokio-cron-scheduler will: 6 fields, seconds first.
pub fn parse_schedule(expr: &str) -> Result<croner::Cron, croner::errors::CronError> {
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .build()
        .parse(expr)
}

fn is_http_url(s: &str) -> bool {
    (s.starts_with("http://") || s.starts_with("https://")) && s.len() > "https://".len()
}

/// Checks one settings block; `at` is the key path prefix, `src` the source suffix.
fn check_settings(at: &str, s: &Settings, src: &str, out: &mut Vec<String>) {
    if s.older_than.0.is_zero() {
        out.push(format!(
            "{at}.older_than: \"0s\" would make every upload stale, including ones being written{src}"
        ));
    }
    if let Err(e) = parse_schedule(&s.schedule) {
        out.push(format!(
            "{at}.schedule: {:?} is not a 6-field cron expression (seconds first, e.g. \"0 0 * * * *\"): {e}{src}",
            s.schedule
        ));
    }
    if s.timezone.parse::<chrono_tz::Tz>().is_err() {
        out.push(format!(
            "{at}.timezone: {:?} is not an IANA time zone name such as \"UTC\" or \"Europe/Paris\"{src}",
            s.timezone
        ));
    }
    if s.max_abort_attempts == 0 {
        out.push(format!(
            "{at}.max_abort_attempts: 0 would never abort anything; use at least 1{src}"
        ));
    }
    if s.concurrency == 0 || s.concurrency > 1024 {
        out.push(format!(
            "{at}.concurrency: {} must be between 1 and 1024{src}",
            s.concurrency
        ));
    }
    if s.retry_max_attempts == 0 {
        out.push(format!(
            "{at}.retry_max_attempts: 0 would never send a request; use at least 1{src}"
        ));
    }
    if !matches!(s.retry_mode.as_str(), "standard" | "adaptive") {
        out.push(format!(
            "{at}.retry_mode: {:?} must be \"standard\" or \"adaptive\"{src}",
            s.retry_mode
        ));
    }
    if s.region.trim().is_empty() {
        out.push(format!("{at}.region: must not be empty{src}"));
    }
    if !s.endpoint_url.is_empty() && !is_http_url(&s.endpoint_url) {
        out.push(format!(
            "{at}.endpoint_url: {:?} is not an http(s) URL{src}",
            redact_url(&s.endpoint_url)
        ));
    }
    if !s.ca_bundle.is_empty() && !Path::new(&s.ca_bundle).is_file() {
        out.push(format!(
            "{at}.ca_bundle: {:?} is not a readable file{src}",
            s.ca_bundle
        ));
    }
    for (name, d) in [
        ("connect_timeout", s.connect_timeout),
        ("read_timeout", s.read_timeout),
    ] {
        if d.0.is_zero() {
            out.push(format!("{at}.{name}: must be greater than 0s{src}"));
        }
    }
}

/// Turns one figment error into a line naming the key, the bad value and where it came from.
fn describe_figment_error(e: figment::Error) -> String {
    let key = if e.path.is_empty() {
        "(top level)".to_string()
    } else {
        e.path.join(".")
    };
    let source = match &e.metadata {
        // Name the one variable, not figment's "`MPU_JANITOR_` environment variable(s)".
        Some(m) if m.name.contains("environment") && !e.path.is_empty() => format!(
            " (from environment variable MPU_JANITOR_{})",
            e.path.join("__").to_ascii_uppercase()
        ),
        Some(m) => match &m.source {
            Some(s) => format!(" (from {s})"),
            None => format!(" (from {})", m.name),
        },
        None => String::new(),
    };
    let what = match &e.kind {
        figment::error::Kind::UnknownField(field, expected) => format!(
            "unknown key {field:?}; expected one of: {}",
            expected.join(", ")
        ),
        figment::error::Kind::Message(m) if m.contains("No such file") => m.clone(),
        other => other.to_string(),
    };
    format!("{key}: {what}{source}")
}

/// Removes the password part of `scheme://user:password@host` URLs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let host_end = rest.find('/').unwrap_or(rest.len());
    match rest[..host_end].rfind('@') {
        Some(at) => format!("{scheme}://REDACTED@{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// The effective configuration as a TOML document with secrets redacted, for `check-config`.
pub fn render_effective(config: &Config) -> String {
    #[derive(Serialize)]
    struct Out {
        defaults: Settings,
        metrics: MetricsConfig,
        daemon: DaemonConfig,
        sharding: ShardingConfig,
        targets: Vec<BTreeMap<String, toml::Value>>,
    }
    let redact = |s: &Settings| Settings {
        endpoint_url: redact_url(&s.endpoint_url),
        ..s.clone()
    };
    let targets = config
        .targets
        .iter()
        .map(|t| {
            let mut m = BTreeMap::new();
            m.insert("bucket".into(), toml::Value::String(t.bucket.clone()));
            m.insert("prefix".into(), toml::Value::String(t.prefix.clone()));
            m.insert(
                "exclude_prefixes".into(),
                toml::Value::Array(
                    t.exclude_prefixes
                        .iter()
                        .map(|p| toml::Value::String(p.clone()))
                        .collect(),
                ),
            );
            if let Ok(toml::Value::Table(tab)) = toml::Value::try_from(redact(&t.settings)) {
                let defaults = toml::Value::try_from(redact(&config.defaults)).ok();
                for (k, v) in tab {
                    // Print only what differs from [defaults]: the rest is inherited.
                    let inherited = defaults
                        .as_ref()
                        .and_then(|d| d.get(&k))
                        .is_some_and(|d| *d == v);
                    if !inherited {
                        m.insert(k, v);
                    }
                }
            }
            m
        })
        .collect();
    let out = Out {
        defaults: redact(&config.defaults),
        metrics: MetricsConfig {
            pushgateway_url: redact_url(&config.metrics.pushgateway_url),
            ..config.metrics.clone()
        },
        daemon: config.daemon.clone(),
        sharding: config.sharding.clone(),
        targets,
    };
    let mut text = String::new();
    for w in config.warnings() {
        text.push_str(&format!("# WARNING: {w}\n"));
    }
    text.push_str("# Effective configuration (secrets redacted). Layers, later wins:\n");
    text.push_str("#   built-in defaults\n");
    for s in &config.sources {
        text.push_str(&format!("#   {s}\n"));
    }
    text.push('\n');
    text.push_str(
        &toml::to_string_pretty(&out).unwrap_or_else(|e| format!("# cannot render: {e}\n")),
    );
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(toml_text: &str) -> Result<Config, ConfigError> {
        let fig = Figment::new()
            .merge(Serialized::defaults(FileConfig::default()))
            .merge(Toml::string(toml_text));
        Config::from_figment(fig, &CliOverrides::default(), vec![])
    }

    fn err(toml_text: &str) -> String {
        load(toml_text).unwrap_err().to_string()
    }

    #[test]
    fn targets_inherit_defaults_and_override_them() {
        let c = load(
            r#"
            [defaults]
            older_than = "3d"
            concurrency = 8
            [[targets]]
            bucket = "a"
            [[targets]]
            bucket = "b"
            older_than = "36h"
            prefix = "tmp/"
            "#,
        )
        .unwrap();
        let cases = [("a", 3 * 86_400, 8, ""), ("b", 36 * 3_600, 8, "tmp/")];
        for (t, (bucket, older, conc, prefix)) in c.targets.iter().zip(cases) {
            assert_eq!(t.bucket, bucket);
            assert_eq!(t.settings.older_than.0.as_secs(), older);
            assert_eq!(t.settings.concurrency, conc);
            assert_eq!(t.prefix, prefix);
            assert_eq!(t.settings.max_abort_attempts, 5, "built-in default kept");
        }
    }

    #[test]
    fn bad_inputs_name_the_key_and_the_value() {
        let table = [
            (
                "[defaults]\nolder_then = \"3d\"\n[[targets]]\nbucket=\"a\"",
                "older_then",
            ),
            (
                "[defaults]\nolder_than = \"3 parsecs\"\n[[targets]]\nbucket=\"a\"",
                "3 parsecs",
            ),
            (
                "[defaults]\nolder_than = \"3 parsecs\"\n[[targets]]\nbucket=\"a\"",
                "defaults.older_than",
            ),
            (
                "[[targets]]\nbucket=\"a\"\nschedule=\"every day\"",
                "targets[0].schedule",
            ),
            (
                "[[targets]]\nbucket=\"a\"\nschedule=\"0 * * * *\"",
                "6-field",
            ),
            (
                "[[targets]]\nprefix=\"x\"",
                "targets[0].bucket: missing bucket name",
            ),
            (
                "[[targets]]\nbucket=\"a\"\ntimezone=\"Mars/Olympus\"",
                "Mars/Olympus",
            ),
            ("[[targets]]\nbucket=\"a\"\nbukket=\"b\"", "bukket"),
            (
                "[metrics]\nlisten=\"nowhere\"\n[[targets]]\nbucket=\"a\"",
                "metrics.listen",
            ),
            (
                "[[targets]]\nbucket=\"a\"\nmax_abort_attempts=0",
                "max_abort_attempts",
            ),
            ("[[targets]]\nbucket=\"a\"\nconcurrency=0", "concurrency"),
            ("", "no [[targets]]"),
            (
                "[[targets]]\nbucket=\"a\"\nexclude_prefixes=[\"\"]",
                "exclude_prefixes",
            ),
        ];
        for (input, needle) in table {
            let e = err(input);
            assert!(
                e.contains(needle),
                "{input:?}: {e:?} should contain {needle:?}"
            );
        }
    }

    #[test]
    fn a_short_older_than_is_valid_but_warned_about() {
        let c = load("[[targets]]\nbucket=\"a\"\nolder_than=\"10m\"\n[[targets]]\nbucket=\"b\"")
            .unwrap();
        let w = c.warnings();
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("\"a\"") && w[0].contains("10m"), "{w:?}");
        assert!(render_effective(&c).contains("# WARNING"));
    }

    #[test]
    fn valid_settings_pass() {
        let c = load(
            "[[targets]]\nbucket=\"a\"\nschedule=\"*/5 * * * * *\"\ntimezone=\"Europe/Paris\"\nidle_for=\"90s\"",
        )
        .unwrap();
        assert_eq!(c.targets[0].settings.idle_for.0.as_secs(), 90);
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API returns its own error type
    fn env_layer_overrides_file_and_ignores_non_keys() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "c.toml",
                "[defaults]\nolder_than=\"7d\"\n[[targets]]\nbucket=\"a\"\n",
            )?;
            jail.set_env("MPU_JANITOR_DEFAULTS__OLDER_THAN", "3d");
            jail.set_env("MPU_JANITOR_METRICS__LISTEN", "0.0.0.0:9999");
            jail.set_env("MPU_JANITOR_CONFIG", "c.toml");
            let c = Config::load(Path::new("c.toml"), &CliOverrides::default()).unwrap();
            assert_eq!(c.targets[0].settings.older_than.0.as_secs(), 3 * 86_400);
            assert_eq!(c.metrics.listen, "0.0.0.0:9999");
            assert!(
                c.sources
                    .iter()
                    .any(|s| s.contains("MPU_JANITOR_DEFAULTS__OLDER_THAN"))
            );
            jail.set_env("MPU_JANITOR_DEFAULTS__OLDER_THAN", "soon");
            let e = Config::load(Path::new("c.toml"), &CliOverrides::default())
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("soon") && e.contains("MPU_JANITOR_DEFAULTS__OLDER_THAN"),
                "{e}"
            );
            Ok(())
        });
    }

    #[test]
    fn cli_dry_run_wins_over_every_target() {
        let fig = Figment::new().merge(Toml::string(
            "[[targets]]\nbucket=\"a\"\ndry_run=false\n[[targets]]\nbucket=\"b\"",
        ));
        let c = Config::from_figment(fig, &CliOverrides { dry_run: true }, vec![]).unwrap();
        assert!(c.targets.iter().all(|t| t.settings.dry_run));
    }

    #[test]
    fn redaction_hides_url_passwords() {
        let table = [
            (
                "https://user:pw@push.example:9091/x",
                "https://REDACTED@push.example:9091/x",
            ),
            ("http://host:9091", "http://host:9091"),
            ("http://h/path@x", "http://h/path@x"),
            ("", ""),
        ];
        for (input, want) in table {
            assert_eq!(redact_url(input), want);
        }
        let c = load(
            "[defaults]\nendpoint_url=\"http://ak:secret@s3.local\"\n[metrics]\npushgateway_url=\"http://u:hunter2@pg:9091\"\n[[targets]]\nbucket=\"a\"",
        )
        .unwrap();
        let text = render_effective(&c);
        assert!(
            !text.contains("hunter2") && !text.contains("secret@"),
            "{text}"
        );
        assert!(text.contains("bucket = \"a\""), "{text}");
    }

    #[test]
    fn shards_cover_every_target_exactly_once() {
        let mut text = String::new();
        for i in 0..60 {
            text.push_str(&format!(
                "[[targets]]\nbucket=\"b{i}\"\nprefix=\"p{}/\"\n",
                i % 3
            ));
        }
        let mut seen = Vec::new();
        for index in 0..3 {
            let c = load(&format!("[sharding]\nindex={index}\ncount=3\n{text}")).unwrap();
            assert!(
                !c.targets.is_empty() && c.targets.len() < 60,
                "shard {index}"
            );
            seen.extend(c.targets.into_iter().map(|t| (t.bucket, t.prefix)));
        }
        seen.sort();
        let before = seen.len();
        seen.dedup();
        assert_eq!((before, seen.len()), (60, 60));
        // Stable: the same inputs always land in the same shard.
        assert_eq!(shard_of("uploads", "", 7), shard_of("uploads", "", 7));
        assert!(
            err("[sharding]\nindex=3\ncount=3\n[[targets]]\nbucket=\"a\"").contains("out of range")
        );
    }

    /// Property: whatever the document, loading returns a config or an error, never panics; and a
    /// config that loads has every target with a bucket and a positive `older_than`.
    #[test]
    fn the_loader_never_panics_on_arbitrary_documents() {
        let keys = [
            "older_than",
            "idle_for",
            "schedule",
            "timezone",
            "max_abort_attempts",
            "concurrency",
            "dry_run",
            "region",
            "endpoint_url",
            "bucket",
            "prefix",
            "exclude_prefixes",
            "listen",
            "count",
            "index",
            "shutdown_grace",
            "bogus",
            "",
        ];
        let values = [
            "\"7d\"",
            "\"0s\"",
            "\"-1d\"",
            "\"\"",
            "0",
            "-1",
            "99999999999999999999",
            "1.5",
            "true",
            "[]",
            "[\"\"]",
            "[1,2]",
            "{}",
            "\"* * * * * *\"",
            "\"Mars/Base\"",
            "\"http://x\"",
            "\"\\u0000\"",
            "\"ünï\"",
            "nan",
            "'",
        ];
        let sections = [
            "[defaults]",
            "[metrics]",
            "[daemon]",
            "[sharding]",
            "[[targets]]",
            "[nope]",
            "",
        ];
        let mut state: u64 = 0xDEAD_BEEF_CAFE_F00D;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        for _ in 0..3_000 {
            let mut doc = String::new();
            for _ in 0..next(8) {
                doc.push_str(sections[next(sections.len())]);
                doc.push('\n');
                for _ in 0..next(5) {
                    let k = keys[next(keys.len())];
                    let v = values[next(values.len())];
                    doc.push_str(&format!("{k} = {v}\n"));
                }
            }
            if let Ok(c) = load(&doc) {
                for t in &c.targets {
                    assert!(!t.bucket.trim().is_empty(), "{doc}");
                    assert!(!t.settings.older_than.0.is_zero(), "{doc}");
                }
            }
        }
    }

    #[test]
    fn durations_round_trip() {
        for s in ["0s", "90s", "36h", "7days", "1h 30m"] {
            let d: HumanDuration = serde_json::from_str(&format!("{s:?}")).unwrap();
            let again: HumanDuration =
                serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
            assert_eq!(d, again, "{s}");
        }
    }
}
