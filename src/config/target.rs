//! What a target is, decided once when the configuration is resolved: a bucket, a discovery rule
//! (`bucket = "*"`, an account fan-out), or a Glacier vault ([`Kind`]); and the resolution of the
//! file's `[[targets]]` into them, each with its settings (defaults plus overrides), every problem
//! collected rather than stopping at the first.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use figment::Figment;

use super::{BucketGlob, CliOverrides, RoleArn, Settings, TargetFile, types};

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

/// What a target sweeps, decided once when the configuration is resolved.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    /// A bucket the configuration names (a name, access point alias or ARN).
    Bucket,
    /// Every bucket a rule matches (`bucket = "*"`): discovery expands it at each sweep.
    Discovery(Arc<Discovery>),
    /// A bucket a discovery rule matched at this sweep: the rule, and the bucket's creation date
    /// as the listing gave it (the sweep checks initiation times against it without asking again).
    Discovered(Arc<Discovery>, Option<chrono::DateTime<chrono::Utc>>),
    /// An S3 Glacier vault; the target's `bucket` is its [`Vault::label`].
    Vault(Vault),
}

/// One target with its settings resolved (defaults + overrides).
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    /// What the target is named in reports and metrics: the bucket name, access point alias or
    /// ARN; [`EVERY_BUCKET`] for a discovery rule; a vault's label.
    pub bucket: String,
    /// Key prefix the sweep is limited to.
    pub prefix: String,
    /// Key prefixes never touched.
    pub exclude_prefixes: Vec<String>,
    /// Effective settings.
    pub settings: Settings,
    /// What it sweeps.
    pub kind: Kind,
}

impl Target {
    /// Whether this is a discovery rule (`bucket = "*"`), to be expanded into buckets.
    pub fn discovers(&self) -> bool {
        matches!(self.kind, Kind::Discovery(_))
    }

    /// The vault, for a vault's target.
    pub fn vault(&self) -> Option<&Vault> {
        match &self.kind {
            Kind::Vault(v) => Some(v),
            _ => None,
        }
    }

    /// The discovery rule of a discovery target, or the one that matched a discovered bucket.
    pub fn rule(&self) -> Option<&Arc<Discovery>> {
        match &self.kind {
            Kind::Discovery(d) | Kind::Discovered(d, _) => Some(d),
            _ => None,
        }
    }

    /// The store's address as the bucket's identity: the endpoint and the bucket (two stores may
    /// each have a bucket of the same name).
    pub fn identity(&self) -> (&str, &str) {
        (self.settings.endpoint_url.as_str(), &self.bucket)
    }
}

/// The targets of the file with their settings resolved, an account fan-out expanded into one
/// discovery target per account; what cannot be resolved goes to `problems`.
pub(super) fn resolve_targets(
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
    let region_is_ambient = super::region_is_unset(fig)
        && ["AWS_REGION", "AWS_DEFAULT_REGION"]
            .iter()
            .all(|v| std::env::var(v).map_or(true, |r| r.trim().is_empty()));
    let mut targets = Vec::with_capacity(files.len());
    for (i, mut t) in files.into_iter().enumerate() {
        // A role written on the target itself (not one inherited from [defaults], which each
        // account's role of a fan-out replaces).
        let own_role = t.role_arn.is_some();
        // A profile written on the target, and no region: the profile's region, as aws-config
        // would take it, unless a layer or the environment set one (they come first).
        let own_profile_region = t.profile.is_some() && t.region.is_none();
        let mut settings = defaults.overlay(&mut t);
        if own_profile_region
            && region_is_ambient
            && let Some(region) =
                super::profile::region(&settings.profile, &super::profile::files().0)
        {
            settings.region = region;
        }
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
        let kind = match (vault, &discovery) {
            (Some(v), _) => Kind::Vault(v),
            (None, Some(d)) => Kind::Discovery(Arc::new(d.clone())),
            (None, None) => Kind::Bucket,
        };
        let target = Target {
            bucket: t.bucket,
            prefix: t.prefix,
            exclude_prefixes: t.exclude_prefixes,
            settings,
            kind,
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
                    if let Some(d) = &discovery {
                        one.kind = Kind::Discovery(Arc::new(Discovery {
                            rule: format!("{} account {account}", d.rule),
                            ..d.clone()
                        }));
                    }
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

/// What is wrong with a bucket name a target writes, if it cannot be one: a URL or a path
/// (`s3://photos/raw/`, `photos/raw`) says what to write instead; blanks or a name longer than any
/// store allows are refused. Other names pass: S3-compatible stores and legacy buckets allow more
/// than today's rules.
pub(super) fn bucket_problem(bucket: &str, prefix: &str) -> Option<String> {
    if bucket.starts_with("arn:") {
        return None;
    }
    let path = bucket.strip_prefix("s3://").unwrap_or(bucket);
    if path.len() != bucket.len() || path.contains('/') {
        let (b, p) = path.split_once('/').unwrap_or((path, ""));
        let suggestion = if p.is_empty() && prefix.is_empty() {
            format!("bucket = {b:?}")
        } else if prefix.is_empty() {
            format!("bucket = {b:?}, prefix = {p:?}")
        } else {
            format!("bucket = {b:?} (and prefix = {:?})", format!("{p}{prefix}"))
        };
        return Some(format!(
            "{bucket:?} is a URL or a path, not a bucket name: write {suggestion}"
        ));
    }
    if bucket.chars().any(|c| c.is_whitespace() || c.is_control()) || bucket.len() > 255 {
        return Some(format!(
            "{bucket:?} cannot be a bucket name (blanks, control characters or over 255 bytes)"
        ));
    }
    None
}

/// Targets that would sweep the same uploads twice (the same bucket on the same endpoint, one
/// prefix inside the other, not excluded by the broader one): their uploads would be aborted and
/// counted twice. Grouped by bucket, so the cost is the targets of each bucket, not all pairs.
pub(super) fn overlaps(targets: &[Target]) -> Vec<String> {
    let mut by_bucket: HashMap<(&str, &str), Vec<usize>> = HashMap::new();
    for (i, t) in targets.iter().enumerate() {
        if t.kind == Kind::Bucket {
            by_bucket
                .entry((t.settings.endpoint_url.as_str(), t.bucket.as_str()))
                .or_default()
                .push(i);
        }
    }
    let mut out = Vec::new();
    let mut groups: Vec<&Vec<usize>> = by_bucket.values().filter(|g| g.len() > 1).collect();
    groups.sort();
    for group in groups {
        for (n, &i) in group.iter().enumerate() {
            for &j in &group[n + 1..] {
                let (a, b) = (&targets[i], &targets[j]);
                // The broader of the two, and the narrower one's prefix.
                let (wide, wi, narrow) = if b.prefix.starts_with(&a.prefix) {
                    (a, i, b)
                } else if a.prefix.starts_with(&b.prefix) {
                    (b, j, a)
                } else {
                    continue;
                };
                let excluded = wide
                    .exclude_prefixes
                    .iter()
                    .any(|x| narrow.prefix.starts_with(x.as_str()) && !x.is_empty());
                if !excluded {
                    let (lo, hi) = (i.min(j), i.max(j));
                    out.push(format!(
                        "targets[{hi}]: sweeps what targets[{lo}] sweeps (bucket {:?}, prefix {:?} inside {:?}): its uploads would be aborted and counted twice; remove one, or add exclude_prefixes = [{:?}] to targets[{wi}]",
                        wide.bucket, narrow.prefix, wide.prefix, narrow.prefix
                    ));
                }
            }
        }
    }
    out
}
