//! `[coordination]`: processes that share a configuration (sidecar replicas, an HA pair, a CronJob
//! overlapping a manual `once`) elect one sweeper per target through a lease object in S3
//! ([`crate::lease`]). This file holds the section's keys, their defaults and their checks; the
//! protocol itself lives in `crate::lease`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::HumanDuration;

/// The shortest `lease_ttl`: the store's `Date` header counts whole seconds and the lease is
/// renewed every third of its ttl, so a shorter one would be mostly rounding.
pub const MIN_LEASE_TTL: Duration = Duration::from_secs(5);
/// The longest `lease_ttl`: a holder that dies keeps its targets unswept this long.
pub const MAX_LEASE_TTL: Duration = Duration::from_secs(3_600);
/// The longest `holder`, in bytes (it is written in every lease object and shown in reports).
pub const MAX_HOLDER_LEN: usize = 256;

/// `[coordination]`: one sweeper per target among processes sharing this configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CoordinationConfig {
    /// Where the lease objects live, `s3://BUCKET/PREFIX` (one object per target, under
    /// PREFIX, reached with the `[defaults]` connection settings); "" turns coordination off.
    /// Default "".
    pub lease: String,
    /// How long a lease holds without renewal, judged on the store's clock; the holder renews it
    /// every third of this. Default 60s.
    pub lease_ttl: HumanDuration,
    /// The identity written in the lease and shown in reports; "" = this host's name and the
    /// process id (`host:pid`). Default "".
    pub holder: String,
}

impl Default for CoordinationConfig {
    fn default() -> Self {
        CoordinationConfig {
            lease: String::new(),
            lease_ttl: HumanDuration::secs(60),
            holder: String::new(),
        }
    }
}

/// Where the lease objects live: a bucket and a key prefix (empty, or ending in `/`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseLocation {
    /// The bucket holding the lease objects.
    pub bucket: String,
    /// The key prefix of the lease objects: "" or ending in `/`.
    pub prefix: String,
}

impl CoordinationConfig {
    /// Whether coordination is on (`lease` is set).
    pub fn enabled(&self) -> bool {
        !self.lease.is_empty()
    }

    /// The lease's bucket and prefix; `None` when coordination is off. A prefix written without
    /// a trailing `/` gets one (`s3://b/leases` keeps its objects under `leases/`).
    pub fn location(&self) -> Option<LeaseLocation> {
        parse_lease(&self.lease).ok().flatten()
    }

    /// The holder's identity: `holder`, else `HOST:PID`.
    pub fn holder(&self) -> String {
        if self.holder.is_empty() {
            default_holder()
        } else {
            self.holder.clone()
        }
    }

    /// What is wrong with the section, as (key, message without the key).
    pub(super) fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Err(e) = parse_lease(&self.lease) {
            out.push(("lease", e));
        }
        let ttl = self.lease_ttl.0;
        if !(MIN_LEASE_TTL..=MAX_LEASE_TTL).contains(&ttl) {
            out.push((
                "lease_ttl",
                format!(
                    "\"{}\" is out of range: accepted 5s..=1h (renewed every third of it; a dead holder keeps its targets this long)",
                    self.lease_ttl
                ),
            ));
        }
        if self.holder.len() > MAX_HOLDER_LEN
            || self.holder.chars().any(char::is_control)
            || (!self.holder.is_empty() && self.holder.trim().is_empty())
        {
            out.push((
                "holder",
                format!(
                    "{:?} is not a holder name: at most {MAX_HOLDER_LEN} bytes, no control characters, not only blanks (\"\" = host name and pid)",
                    self.holder
                ),
            ));
        }
        out
    }
}

/// `HOST:PID`, the default holder: unique among processes of one host, and readable in a report.
pub fn default_holder() -> String {
    format!("{}:{}", crate::host::hostname(), std::process::id())
}

/// `""` -> `None`; `s3://BUCKET[/PREFIX]` -> its location; anything else -> why not.
fn parse_lease(text: &str) -> Result<Option<LeaseLocation>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    let bad = |why: &str| format!("{text:?} is not \"s3://BUCKET/PREFIX\" ({why}; \"\" = off)");
    let rest = text
        .strip_prefix("s3://")
        .ok_or_else(|| bad("it starts with s3://"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(bad("the bucket is missing"));
    }
    let bucket_char = |c: char| c.is_ascii_alphanumeric() || "-._".contains(c);
    if !bucket.chars().all(bucket_char) {
        return Err(bad("a bucket name is letters, digits, '-', '.' and '_'"));
    }
    if prefix.starts_with('/') || prefix.contains("//") {
        return Err(bad("the prefix has an empty path segment"));
    }
    if prefix.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(bad("the prefix holds whitespace or a control character"));
    }
    if prefix.contains(['?', '#']) {
        return Err(bad("a prefix has no query or fragment"));
    }
    let mut prefix = prefix.to_string();
    if !prefix.is_empty() && !prefix.ends_with('/') {
        prefix.push('/');
    }
    Ok(Some(LeaseLocation {
        bucket: bucket.to_string(),
        prefix,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_urls_are_read_or_refused_with_the_reason() {
        // (written, Ok(Some((bucket, prefix))) / Ok(None) for off, or Err(part of the message))
        type Want = Result<Option<(&'static str, &'static str)>, &'static str>;
        let table: [(&str, Want); 11] = [
            ("", Ok(None)),
            ("s3://locks", Ok(Some(("locks", "")))),
            ("s3://locks/", Ok(Some(("locks", "")))),
            (
                "s3://locks/mpu-janitor",
                Ok(Some(("locks", "mpu-janitor/"))),
            ),
            ("s3://locks/a/b/", Ok(Some(("locks", "a/b/")))),
            ("locks/leases", Err("starts with s3://")),
            ("https://locks/leases", Err("starts with s3://")),
            ("s3:///leases", Err("bucket is missing")),
            ("s3://lo cks/x", Err("bucket name")),
            ("s3://locks//x", Err("empty path segment")),
            ("s3://locks/x?y", Err("no query")),
        ];
        for (text, want) in table {
            let got = parse_lease(text);
            match (&got, &want) {
                (Ok(g), Ok(w)) => assert_eq!(
                    g.as_ref().map(|l| (l.bucket.as_str(), l.prefix.as_str())),
                    *w,
                    "{text}"
                ),
                (Err(g), Err(w)) => assert!(g.contains(w) && g.contains(text), "{text}: {g}"),
                _ => panic!("{text}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn ttl_and_holder_are_bounded() {
        let with = |ttl: u64, holder: &str| CoordinationConfig {
            lease: "s3://locks/leases".into(),
            lease_ttl: HumanDuration::secs(ttl),
            holder: holder.into(),
        };
        assert!(with(60, "").problems().is_empty());
        assert!(with(5, "pod-a").problems().is_empty());
        assert!(with(3_600, "pod-a").problems().is_empty());
        for (c, key) in [
            (with(4, ""), "lease_ttl"),
            (with(3_601, ""), "lease_ttl"),
            (with(60, "a\nb"), "holder"),
            (with(60, "  "), "holder"),
            (with(60, &"x".repeat(MAX_HOLDER_LEN + 1)), "holder"),
        ] {
            let p = c.problems();
            assert_eq!(p.len(), 1, "{p:?}");
            assert_eq!(p[0].0, key, "{p:?}");
        }
    }

    #[test]
    fn holder_defaults_to_host_and_pid() {
        let c = CoordinationConfig::default();
        assert!(!c.enabled());
        assert_eq!(c.location(), None);
        let pid = format!(":{}", std::process::id());
        assert!(c.holder().ends_with(&pid), "{}", c.holder());
        let named = CoordinationConfig {
            holder: "pod-a".into(),
            ..c
        };
        assert_eq!(named.holder(), "pod-a");
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API returns its own error type
    fn the_section_comes_from_the_file_and_the_environment() {
        use super::super::{CliOverrides, Config, render_effective};
        use std::path::Path;
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "c.toml",
                "[coordination]\nlease_ttl = \"30s\"\n[[targets]]\nbucket = \"a\"\n",
            )?;
            let load = || Config::load(Path::new("c.toml"), &CliOverrides::default());
            let c = load().unwrap();
            assert_eq!(c.coordination.lease_ttl, HumanDuration::secs(30));
            assert!(!c.coordination.enabled());
            jail.set_env("MPU_JANITOR_COORDINATION__LEASE", "s3://locks/mpu-janitor");
            jail.set_env("MPU_JANITOR_COORDINATION__HOLDER", "pod-a");
            let c = load().unwrap();
            let location = c.coordination.location().unwrap();
            assert_eq!(
                (location.bucket.as_str(), location.prefix.as_str()),
                ("locks", "mpu-janitor/")
            );
            assert_eq!(c.coordination.holder(), "pod-a");
            let shown = render_effective(&c);
            assert!(
                shown.contains("[coordination]")
                    && shown.contains("lease = \"s3://locks/mpu-janitor\"")
                    && shown.contains("lease_ttl = \"30s\""),
                "{shown}"
            );
            jail.set_env("MPU_JANITOR_COORDINATION__LEASE", "locks/mpu-janitor");
            let e = load().unwrap_err().to_string();
            assert!(
                e.contains("coordination.lease")
                    && e.contains("s3://")
                    && e.contains("environment"),
                "{e}"
            );
            jail.set_env("MPU_JANITOR_COORDINATION__LEASE", "");
            jail.set_env("MPU_JANITOR_COORDINATION__LEASE_TTL", "1s");
            let e = load().unwrap_err().to_string();
            assert!(
                e.contains("coordination.lease_ttl") && e.contains("5s..=1h"),
                "{e}"
            );
            Ok(())
        });
    }

    #[test]
    fn an_unknown_key_of_the_section_is_refused() {
        use figment::Figment;
        use figment::providers::{Format, Toml};
        let fig = Figment::new().merge(Toml::string(
            "[coordination]\nleas = \"s3://locks\"\n[[targets]]\nbucket = \"a\"\n",
        ));
        let e = super::super::Config::from_figment(fig, &Default::default(), vec![])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("coordination") && e.contains("\"leas\"") && e.contains("lease_ttl"),
            "{e}"
        );
    }
}
