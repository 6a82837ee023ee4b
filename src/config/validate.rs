//! What is wrong with a configuration, one line per problem naming the key, the bad value and where
//! it came from; and what is valid but risky (warnings). Values that cannot even be read (a bad
//! duration, cron, time zone or URL) are refused earlier, by their types.
//!
//! Every numeric key has its accepted range in one table here ([`SETTINGS_COUNTS`],
//! [`SETTINGS_DURATIONS`], [`DAEMON_COUNTS`], [`DAEMON_DURATIONS`], [`SHARDING_COUNTS`]); docs/contract.md
//! shows the same ranges (a unit test keeps the two in step). Everything that could otherwise fail
//! only at run time is checked here too, before anything is contacted: the schedule fires within a
//! year, the endpoint carries no credentials, the textfile's directory is writable.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use figment::Figment;

use super::{Config, DaemonConfig, Kind, Settings, ShardingConfig};

/// The accepted range of one numeric key, inclusive at both ends.
pub struct Limit<S: 'static, T: 'static> {
    /// The key, as written in its section.
    pub key: &'static str,
    /// Reads the key's value.
    pub get: fn(&S) -> T,
    /// Smallest accepted value.
    pub min: T,
    /// Largest accepted value.
    pub max: T,
    /// Why the bound is there, shown after the range ("" for none).
    pub why: &'static str,
}

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}
const DAY: u64 = 86_400;

/// Integer keys of `[defaults]` and `[[targets]]`.
pub const SETTINGS_COUNTS: &[Limit<Settings, u64>] = &[
    Limit {
        key: "max_abort_attempts",
        get: |s| s.max_abort_attempts.into(),
        min: 1,
        max: 100,
        why: "0 would never abort anything",
    },
    Limit {
        key: "max_aborts_per_run",
        get: |s| s.max_aborts_per_run,
        min: 0,
        max: 1_000_000_000,
        why: "0 means no cap",
    },
    Limit {
        key: "concurrency",
        get: |s| s.concurrency as u64,
        min: 0,
        max: 1024,
        why: "0 adapts it within max_concurrency",
    },
    Limit {
        key: "max_concurrency",
        get: |s| s.max_concurrency as u64,
        min: 1,
        max: 4096,
        why: "",
    },
    Limit {
        key: "retry_max_attempts",
        get: |s| s.retry_max_attempts.into(),
        min: 1,
        max: 20,
        why: "the first try included; 0 would never send a request",
    },
];

/// Duration keys of `[defaults]` and `[[targets]]`.
pub const SETTINGS_DURATIONS: &[Limit<Settings, Duration>] = &[
    Limit {
        key: "older_than",
        get: |s| s.older_than.0,
        min: secs(1),
        max: secs(3650 * DAY),
        why: "0s would make every upload stale, including ones being written",
    },
    Limit {
        key: "idle_for",
        get: |s| s.idle_for.0,
        min: secs(0),
        max: secs(3650 * DAY),
        why: "0s turns the check off",
    },
    Limit {
        key: "connect_timeout",
        get: |s| s.connect_timeout.0,
        min: Duration::from_millis(1),
        max: secs(300),
        why: "",
    },
    Limit {
        key: "read_timeout",
        get: |s| s.read_timeout.0,
        min: Duration::from_millis(1),
        max: secs(3_600),
        why: "",
    },
    Limit {
        key: "max_clock_skew",
        get: |s| s.max_clock_skew.0,
        min: secs(0),
        max: secs(DAY),
        why: "a host clock a day off must not be trusted",
    },
    Limit {
        key: "duration",
        get: |s| s.duration.0,
        min: secs(1),
        max: secs(12 * 3_600),
        why: "an assumed role's session; AWS STS takes 15m to the role's maximum, at most 12h",
    },
    Limit {
        key: "start_jitter",
        get: |s| s.start_jitter.0,
        min: secs(0),
        max: secs(DAY),
        why: "",
    },
];

/// Integer keys of `[daemon]`.
pub const DAEMON_COUNTS: &[Limit<DaemonConfig, u64>] = &[
    Limit {
        key: "parallel_targets",
        get: |d| d.parallel_targets as u64,
        min: 1,
        max: 1024,
        why: "",
    },
    Limit {
        key: "max_in_flight",
        get: |d| d.max_in_flight as u64,
        min: 1,
        max: 65_536,
        why: "",
    },
];

/// Duration keys of `[daemon]`.
pub const DAEMON_DURATIONS: &[Limit<DaemonConfig, Duration>] = &[Limit {
    key: "shutdown_grace",
    get: |d| d.shutdown_grace.0,
    min: secs(0),
    max: secs(3_600),
    why: "",
}];

/// Integer keys of `[sharding]` (`index` must also be below `count`).
pub const SHARDING_COUNTS: &[Limit<ShardingConfig, u64>] = &[Limit {
    key: "count",
    get: |s| s.count.into(),
    min: 1,
    max: 10_000,
    why: "",
}];

/// A schedule must fire within this long, or `run` would never sweep the target.
const SCHEDULE_HORIZON_DAYS: i64 = 366;

/// A duration as the range tables show it: in the largest unit that divides it (`3650d`, `5m`, `1ms`).
pub fn show_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".into();
    }
    if !d.subsec_nanos().is_multiple_of(1_000_000) {
        // Below the millisecond (`500us`): as humantime writes it, never rounded to "0s".
        return humantime::format_duration(d).to_string();
    }
    let ms = d.as_millis();
    for (unit, per) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms.is_multiple_of(per) {
            return format!("{}{unit}", ms / per);
        }
    }
    format!("{ms}ms")
}

/// A value a [`Limit`] bounds: integers, durations.
pub trait Bound: PartialOrd + Copy {
    /// As ranges show it: `20`, `3650d`.
    fn show(&self) -> String;
    /// As a message quotes a bad value: `4294967294`, `"0s"`.
    fn quote(&self) -> String {
        self.show()
    }
}

impl Bound for u64 {
    fn show(&self) -> String {
        self.to_string()
    }
}

impl Bound for Duration {
    fn show(&self) -> String {
        show_duration(*self)
    }
    fn quote(&self) -> String {
        format!("{:?}", show_duration(*self))
    }
}

impl<S, T: Bound> Limit<S, T> {
    /// `min..=max`, as messages and docs/contract.md show it: `1..=20`, `1s..=3650d`.
    pub fn range(&self) -> String {
        format!("{}..={}", self.min.show(), self.max.show())
    }
}

/// The out-of-range problems of `on` against `limits`, as (key, message without the key).
fn out_of_range<S, T: Bound>(
    limits: &[Limit<S, T>],
    on: &S,
    out: &mut Vec<(&'static str, String)>,
) {
    for l in limits {
        let v = (l.get)(on);
        if v < l.min || v > l.max {
            let why = if l.why.is_empty() {
                String::new()
            } else {
                format!(" ({})", l.why)
            };
            out.push((
                l.key,
                format!("{} is out of range: accepted {}{why}", v.quote(), l.range()),
            ));
        }
    }
}

/// Checks that need more than the value itself, memoised so that 100,000 targets sharing a few
/// schedules cost a few checks.
#[derive(Default)]
struct Memo {
    schedules: HashMap<(String, chrono_tz::Tz), Option<String>>,
    profiles: HashMap<String, Option<String>>,
}

impl Memo {
    /// Why `s.schedule` never fires in the coming year in `s.timezone`, if it does not.
    fn schedule(&mut self, s: &Settings) -> Option<String> {
        let key = (s.schedule.as_str().to_string(), s.timezone.0);
        self.schedules
            .entry(key)
            .or_insert_with(|| schedule_problem(s))
            .clone()
    }
}

impl Memo {
    /// Why `profile` would not be found by aws-config, if it would not.
    fn profile(&mut self, profile: &str) -> Option<String> {
        if let Some(p) = self.profiles.get(profile) {
            return p.clone();
        }
        let (config, credentials) = super::profile::files();
        let p = super::profile::problem(profile, &config, &credentials);
        self.profiles.insert(profile.to_string(), p.clone());
        p
    }
}

fn schedule_problem(s: &Settings) -> Option<String> {
    let tz = s.timezone.0;
    let now = chrono::Utc::now().with_timezone(&tz);
    let horizon = chrono::TimeDelta::days(SCHEDULE_HORIZON_DAYS);
    match s.schedule.cron().find_next_occurrence(&now, false) {
        Ok(next) if next - now <= horizon => None,
        Ok(next) => Some(format!(
            "{:?} next fires at {next} in {}, more than a year from now: `run` would never sweep this target",
            s.schedule.as_str(),
            tz.name()
        )),
        Err(_) => Some(format!(
            "{:?} never fires (in {}): `run` would never sweep this target",
            s.schedule.as_str(),
            tz.name()
        )),
    }
}

/// The host of `endpoint_url` when virtual-hosted requests would go to a subdomain of a name that
/// has none by itself: a single-label name such as `localhost` or `minio` (a Compose or Kubernetes
/// service). An IP address is left out: the endpoint rules send path-style requests to one.
fn virtual_host_of_a_single_name(s: &Settings) -> Option<String> {
    if s.force_path_style {
        return None;
    }
    match s.endpoint_url.url()?.host()? {
        url::Host::Domain(d) if !d.contains('.') => Some(d.to_string()),
        _ => None,
    }
}

impl Config {
    /// Settings that are valid but risky, one line each: `older_than` below one hour can abort
    /// uploads that are still being written; a role session shorter than STS allows; an endpoint
    /// whose virtual-hosted names are unlikely to resolve.
    pub fn warnings(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .targets
            .iter()
            .filter(|t| t.settings.older_than.0 < Duration::from_secs(3_600))
            .map(|t| {
                format!(
                    "target {:?}: older_than = \"{}\" is below one hour: uploads still being written may be aborted (set idle_for to protect slow ones)",
                    t.bucket, t.settings.older_than
                )
            })
            .collect();
        out.extend(
            self.targets
                .iter()
                .filter(|t| t.settings.role_arn.is_set() && t.settings.duration.0 < Duration::from_secs(900))
                .map(|t| {
                    format!(
                        "target {:?}: duration = \"{}\" is below 15m, which AWS STS refuses (another STS may accept it)",
                        t.bucket, t.settings.duration
                    )
                }),
        );
        out.extend(self.targets.iter().filter(|t| t.vault().is_none()).filter_map(|t| {
            let host = virtual_host_of_a_single_name(&t.settings)?;
            Some(format!(
                "target {:?}: endpoint_url's host {host:?} with force_path_style = false: requests go to the virtual-hosted name BUCKET.{host}, which resolves only where wildcard DNS exists; set force_path_style = true (most S3-compatible stores)",
                t.bucket
            ))
        }));
        out
    }

    /// Everything wrong with the configuration, one line each naming key, value and source.
    pub(super) fn problems(&self, fig: &Figment) -> Vec<String> {
        let mut out = Vec::new();
        // Each lookup merges figment's whole value tree (O(targets)): never call it per target.
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
        let mut memo = Memo::default();
        let defaults = settings_problems(&self.defaults, &mut memo);
        // A handful of keys at most: each named with the layer its own value came from.
        out.extend(
            defaults
                .iter()
                .map(|(k, m)| format!("defaults.{k}: {m}{}", source(&format!("defaults.{k}")))),
        );
        let src = source("targets");
        for (i, t) in self.targets.iter().enumerate() {
            let at = format_args!("targets[{i}]");
            if t.bucket.trim().is_empty() {
                out.push(format!("{at}.bucket: missing bucket name{src}"));
            } else if t.kind == Kind::Bucket
                && let Some(m) = super::target::bucket_problem(&t.bucket, &t.prefix)
            {
                out.push(format!("{at}.bucket: {m}{src}"));
            }
            for p in &t.exclude_prefixes {
                if p.is_empty() {
                    out.push(format!(
                        "{at}.exclude_prefixes: an empty prefix would exclude every upload{src}"
                    ));
                }
            }
            if t.kind == Kind::Bucket {
                out.extend(addressing_problems(t).map(|m| format!("{at}.{m}{src}")));
            }
            if t.vault().is_some() && !t.settings.idle_for.0.is_zero() {
                out.push(format!(
                    "{at}.idle_for: \"{}\" cannot be judged on a vault: Glacier lists no part times, so a vault's upload still receiving parts could not be told apart; set idle_for = \"0s\" on this target (and older_than long enough){src}",
                    t.settings.idle_for
                ));
            }
            if !t.settings.external_id.is_empty() && !t.settings.role_arn.is_set() {
                out.push(format!(
                    "{at}.external_id: is sent with AssumeRole, but the target assumes no role: set role_arn (or accounts and role_name){src}"
                ));
            }
            // Defaults were checked above; only report a target's own bad values once.
            if t.settings != self.defaults {
                for (k, m) in settings_problems(&t.settings, &mut memo) {
                    if !defaults.iter().any(|(dk, dm)| *dk == k && *dm == m) {
                        out.push(format!("{at}.{k}: {m}{src}"));
                    }
                }
            }
        }
        out.extend(
            super::target::overlaps(&self.targets)
                .into_iter()
                .map(|m| format!("{m}{src}")),
        );
        let mut section = |name: &str, problems: Vec<(&'static str, String)>| {
            for (k, m) in problems {
                let src = source(&format!("{name}.{k}"));
                out.push(format!("{name}.{k}: {m}{src}"));
            }
        };
        let mut daemon = Vec::new();
        out_of_range(DAEMON_COUNTS, &self.daemon, &mut daemon);
        out_of_range(DAEMON_DURATIONS, &self.daemon, &mut daemon);
        section("daemon", daemon);
        let sh = &self.sharding;
        let mut sharding = Vec::new();
        out_of_range(SHARDING_COUNTS, sh, &mut sharding);
        if let Some(i) = sh.index.filter(|i| sh.count >= 1 && *i >= sh.count) {
            sharding.push((
                "index",
                format!(
                    "{i} is out of range for sharding.count = {}: accepted 0..={} (index is 0-based)",
                    sh.count,
                    sh.count - 1
                ),
            ));
        }
        section("sharding", sharding);
        section("coordination", self.coordination.problems());
        let m = &self.metrics;
        let mut metrics = Vec::new();
        if !m.listen.is_empty() {
            match SocketAddr::from_str(&m.listen) {
                Err(_) => metrics.push((
                    "listen",
                    format!("{:?} is not an address such as \"127.0.0.1:9464\"", m.listen),
                )),
                Ok(a) if a.port() == 0 => metrics.push((
                    "listen",
                    format!(
                        "{:?}: port 0 is out of range: accepted 1..=65535 (a scraper needs a fixed port)",
                        m.listen
                    ),
                )),
                Ok(_) => {}
            }
        }
        if !m.textfile.as_os_str().is_empty()
            && let Err(e) = check_writable(&m.textfile)
        {
            metrics.push(("textfile", e));
        }
        section("metrics", metrics);
        out
    }
}

/// The problems of one settings block, as (key, message without the key path or source).
fn settings_problems(s: &Settings, memo: &mut Memo) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    out_of_range(SETTINGS_COUNTS, s, &mut out);
    out_of_range(SETTINGS_DURATIONS, s, &mut out);
    if s.region.trim().is_empty() {
        out.push(("region", "must not be empty".to_string()));
    }
    if let Some(ca) = s.ca_bundle()
        && !ca.is_file()
    {
        out.push((
            "ca_bundle",
            format!("{:?} is not a readable file", ca.display().to_string()),
        ));
    }
    if let Some(u) = s.endpoint_url.url()
        && (!u.username().is_empty() || u.password().is_some())
    {
        // Never echo the secret: the redacted form only.
        out.push((
            "endpoint_url",
            format!(
                "{:?} carries credentials (user:password@); an S3 endpoint takes none: remove them and give the keys through the credential chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, or a profile)",
                s.endpoint_url.redacted()
            ),
        ));
    }
    if !(0.0..=1_000.0).contains(&s.price_per_gib_month) {
        out.push((
            "price_per_gib_month",
            format!(
                "{} is out of range: accepted 0..=1000 (US dollars per GiB-month)",
                s.price_per_gib_month
            ),
        ));
    }
    if let Some(u) = s.proxy.url()
        && (!matches!(u.path(), "" | "/") || u.query().is_some())
    {
        out.push((
            "proxy",
            format!(
                "{:?} has a path or query; a proxy is \"http://[user:password@]host:port\"",
                s.proxy.redacted()
            ),
        ));
    }
    let sts_chars = |c: char| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c);
    if !(2..=64).contains(&s.session_name.len()) || !s.session_name.chars().all(sts_chars) {
        out.push((
            "session_name",
            format!(
                "{:?} is not a role session name: 2 to 64 letters, digits and _+=,.@-",
                s.session_name
            ),
        ));
    }
    if !s.external_id.is_empty()
        && (!(2..=1224).contains(&s.external_id.expose().len())
            || !s
                .external_id
                .expose()
                .chars()
                .all(|c| sts_chars(c) || ":/".contains(c)))
    {
        // Not echoed: an external id is often handed out like a password.
        out.push((
            "external_id",
            "is not an external id: 2 to 1224 letters, digits and _+=,.@:/-".to_string(),
        ));
    }
    if let Some(u) = s.sts_endpoint_url.url()
        && (!u.username().is_empty() || u.password().is_some())
    {
        out.push((
            "sts_endpoint_url",
            format!(
                "{:?} carries credentials (user:password@); an STS endpoint takes none",
                s.sts_endpoint_url.redacted()
            ),
        ));
    }
    if let Some(p) = memo.schedule(s) {
        out.push(("schedule", p));
    }
    if !s.profile.is_empty()
        && let Some(p) = memo.profile(&s.profile)
    {
        out.push(("profile", p));
    }
    out
}

/// Checks that the textfile can be written where it will be: its directory exists and takes a new
/// file (created and removed again, as the atomic write's temp file will be).
fn check_writable(file: &Path) -> Result<(), String> {
    let shown = file.display().to_string();
    if file.is_dir() {
        return Err(format!("{shown:?} is a directory, not a file"));
    }
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let dir_shown = dir.display().to_string();
    match std::fs::metadata(dir) {
        Ok(md) if md.is_dir() => {}
        Ok(_) => return Err(format!("{shown:?}: {dir_shown:?} is not a directory")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!("{shown:?}: directory {dir_shown:?} does not exist"));
        }
        Err(e) => return Err(format!("{shown:?}: directory {dir_shown:?}: {e}")),
    }
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let probe = dir.join(format!(".{name}.{}.check", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(f) => {
            drop(f);
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(format!(
            "{shown:?}: cannot create a file in {dir_shown:?}: {e}"
        )),
    }
}

/// Turns one figment error into a line naming the key, the bad value and where it came from.
/// Extracts the layered configuration, or says every key that cannot be read: serde stops at the
/// first bad value, so each one is taken out of a copy of the merged values and the extraction
/// tried again (each later problem still names the layer its key came from), up to 64 rounds;
/// with the configuration read without them, when it then reads, so its values can be checked too.
#[allow(clippy::type_complexity)]
pub(super) fn extract_all(
    fig: &Figment,
) -> Result<super::FileConfig, (Vec<String>, Option<Box<super::FileConfig>>)> {
    use figment::providers::Serialized;
    let first = match fig.extract::<super::FileConfig>() {
        Ok(file) => return Ok(file),
        Err(e) => e,
    };
    let mut problems = Vec::new();
    let Ok(mut tree) = fig.extract::<figment::value::Dict>() else {
        return Err((
            first.into_iter().map(describe_figment_error).collect(),
            None,
        ));
    };
    let mut rest = None;
    let mut taken_out: Vec<Vec<String>> = Vec::new();
    let mut errors = first;
    for round in 0..64 {
        let mut progressed = false;
        for mut e in errors {
            // A required key taken out because its value was bad is not missing a second time.
            let field = match &e.kind {
                figment::error::Kind::MissingField(f) => Some(f.to_string()),
                figment::error::Kind::UnknownField(f, _) => Some(f.clone()),
                _ => None,
            };
            let leaf = match field {
                Some(f) if e.path.last() != Some(&f) => [e.path.clone(), vec![f]].concat(),
                _ => e.path.clone(),
            };
            if taken_out.contains(&leaf) {
                // A required key taken out: an empty string holds its place (its problem is said).
                if let (Some(d), Some(last)) = (parent(&mut tree, &leaf), leaf.last())
                    && d.insert(last.clone(), String::new().into()).is_none()
                {
                    progressed = true;
                }
                continue;
            }
            // After the first round the errors come from the copy: name the original's layer.
            if round > 0 {
                e.metadata = (1..=leaf.len())
                    .rev()
                    .find_map(|n| fig.find_metadata(&leaf[..n].join(".")))
                    .cloned();
            }
            problems.push(describe_figment_error(e));
            if remove(&mut tree, &leaf) {
                taken_out.push(leaf);
                progressed = true;
            }
        }
        if !progressed {
            break;
        }
        match figment::Figment::from(Serialized::defaults(&tree)).extract::<super::FileConfig>() {
            Ok(file) => {
                rest = Some(Box::new(file));
                break;
            }
            Err(e) => errors = e,
        }
    }
    Err((problems, rest))
}

/// The dictionary holding the last key of `path` (dictionary keys, array indices) in `tree`.
fn parent<'a>(
    tree: &'a mut figment::value::Dict,
    path: &[String],
) -> Option<&'a mut figment::value::Dict> {
    use figment::value::Value;
    let (_, parents) = path.split_last()?;
    let Some((first, rest)) = parents.split_first() else {
        return Some(tree);
    };
    let mut here = tree.get_mut(first)?;
    for seg in rest {
        here = match here {
            Value::Dict(_, d) => d.get_mut(seg)?,
            Value::Array(_, a) => a.get_mut(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    match here {
        Value::Dict(_, d) => Some(d),
        _ => None,
    }
}

/// Takes the value at `path` out of `tree`; false if it was not there.
fn remove(tree: &mut figment::value::Dict, path: &[String]) -> bool {
    let (Some(d), Some(last)) = (parent(tree, path), path.last()) else {
        return false;
    };
    d.remove(last).is_some()
}

pub(super) fn describe_figment_error(e: figment::Error) -> String {
    // `targets[0].schedule`, as the other problems name keys.
    let key = if e.path.is_empty() {
        "(top level)".to_string()
    } else {
        e.path.iter().fold(String::new(), |mut key, seg| {
            if seg.bytes().all(|b| b.is_ascii_digit()) {
                key.push_str(&format!("[{seg}]"));
            } else {
                if !key.is_empty() {
                    key.push('.');
                }
                key.push_str(seg);
            }
            key
        })
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

/// What keeps a bucket target from being addressed: an ARN the SDK's endpoint rules cannot route
/// (unparseable, path style...), or a directory bucket's prefix not ending in `/`.
fn addressing_problems(t: &super::Target) -> impl Iterator<Item = String> {
    use crate::address::{self, Kind};
    let kind = Kind::of(&t.bucket);
    let arn = t.bucket.starts_with("arn:").then(|| {
        address::resolve(&t.bucket, t.settings.client().address_where())
            .err()
            .map(|e| format!("bucket: {:?} cannot be addressed: {e}", t.bucket))
    });
    let prefix = (kind == Kind::Directory && !address::directory_prefix_ok(&t.prefix)).then(|| {
        format!(
            "prefix: {:?} on directory bucket {:?}: directory buckets list uploads only by a prefix ending in the delimiter \"/\" (write {:?}, or no prefix)",
            t.prefix,
            t.bucket,
            format!("{}/", t.prefix)
        )
    });
    arn.flatten().into_iter().chain(prefix)
}
