//! What is wrong with a configuration, one line per problem naming the key, the bad value and where
//! it came from; and what is valid but risky (warnings). Values that cannot even be read (a bad
//! duration, cron, time zone or URL) are refused earlier, by their types.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use figment::Figment;

use super::{Config, Settings};

impl Config {
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
    pub(super) fn problems(&self, fig: &Figment) -> Vec<String> {
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
        out
    }
}

/// Checks one settings block; `at` is the key path prefix, `src` the source suffix.
pub(super) fn check_settings(at: &str, s: &Settings, src: &str, out: &mut Vec<String>) {
    if s.older_than.0.is_zero() {
        out.push(format!(
            "{at}.older_than: \"0s\" would make every upload stale, including ones being written{src}"
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
    if s.region.trim().is_empty() {
        out.push(format!("{at}.region: must not be empty{src}"));
    }
    if let Some(ca) = s.ca_bundle()
        && !ca.is_file()
    {
        out.push(format!(
            "{at}.ca_bundle: {:?} is not a readable file{src}",
            ca.display().to_string()
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
