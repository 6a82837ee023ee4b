//! The effective configuration as `check-config` prints it: every layer named, targets showing only
//! what differs from `[defaults]`, and no secret (URLs are redacted by their type, [`super::HttpUrl`]).

use std::collections::BTreeMap;

use serde::Serialize;

use super::{
    AuditConfig, Config, CoordinationConfig, DaemonConfig, MetricsConfig, Settings, ShardingConfig,
};
use crate::redact::redact_url;

/// The proxy variables the clients read where `proxy` is empty (upper case first).
const PROXY_VARIABLES: [&str; 8] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// The effective configuration as a TOML document with secrets redacted, for `check-config`.
pub fn render_effective(config: &Config) -> String {
    #[derive(Serialize)]
    struct Out {
        defaults: Settings,
        metrics: MetricsConfig,
        daemon: DaemonConfig,
        sharding: ShardingConfig,
        audit: AuditConfig,
        coordination: CoordinationConfig,
        targets: Vec<BTreeMap<String, toml::Value>>,
    }
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
            if let super::Kind::Discovery(d) = &t.kind {
                let globs = |g: &[super::BucketGlob]| {
                    toml::Value::Array(
                        g.iter()
                            .map(|g| toml::Value::String(g.to_string()))
                            .collect(),
                    )
                };
                m.insert("discovery".into(), toml::Value::String(d.rule.clone()));
                if let Some(include) = &d.include {
                    m.insert("include_buckets".into(), globs(include));
                }
                m.insert("exclude_buckets".into(), globs(&d.exclude));
                m.insert(
                    "bucket_tags".into(),
                    toml::Value::Table(
                        d.tags
                            .iter()
                            .map(|(k, v)| (k.clone(), toml::Value::String(v.clone())))
                            .collect(),
                    ),
                );
            }
            // Print only what differs from [defaults]: the rest is inherited.
            m.extend(
                t.settings
                    .differences(&config.defaults)
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v)),
            );
            m
        })
        .collect();
    let out = Out {
        defaults: config.defaults.clone(),
        metrics: config.metrics.clone(),
        daemon: config.daemon.clone(),
        sharding: config.sharding.clone(),
        audit: config.audit.clone(),
        coordination: config.coordination.clone(),
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
    let proxy_vars: Vec<String> = PROXY_VARIABLES
        .iter()
        .filter_map(|var| {
            let value = std::env::var(var).ok().filter(|v| !v.is_empty())?;
            // A value without a scheme is read as http://, and redacted as such.
            let shown = if value.contains("://") {
                redact_url(&value)
            } else if var.eq_ignore_ascii_case("no_proxy") {
                value
            } else {
                redact_url(&format!("http://{value}"))
            };
            Some(format!("#   {var}={shown}\n"))
        })
        .collect();
    if !proxy_vars.is_empty() {
        text.push_str("# Proxy variables of the environment (used where `proxy` is empty):\n");
        text.extend(proxy_vars);
    }
    let restart: Vec<String> = super::RESTART_ONLY
        .iter()
        .map(|s| format!("[{s}]"))
        .collect();
    text.push_str(&format!(
        "# A SIGHUP to `run` re-applies everything but {} (those need a restart)\n",
        restart.join(", ")
    ));
    text.push_str(
        "# How each target is addressed (aws-sdk-s3's endpoint rules; Glacier's for a vault):\n",
    );
    for (i, t) in config.targets.iter().enumerate() {
        text.push_str(&format!(
            "#   targets[{i}] {:?}: {}\n",
            t.bucket,
            addressing(t)
        ));
    }
    text.push('\n');
    text.push_str(
        &toml::to_string_pretty(&out).unwrap_or_else(|e| format!("# cannot render: {e}\n")),
    );
    text
}

/// One target's addressing, as `check-config` shows it.
fn addressing(t: &super::Target) -> String {
    use crate::address;
    let endpoint = if t.settings.endpoint_url.is_set() {
        redact_url(t.settings.endpoint_url.as_str())
    } else {
        "the region's endpoint".to_string()
    };
    if let Some(v) = t.vault() {
        return format!(
            "Glacier vault {:?} of account {}, at {endpoint}, signed sigv4 as \"glacier\" in {}",
            v.name, v.account_id, t.settings.region
        );
    }
    if t.discovers() {
        return format!(
            "every bucket the rule matches, listed at {endpoint}, each addressed as its name says"
        );
    }
    match address::resolve(&t.bucket, t.settings.client().address_where()) {
        Ok(a) => format!(
            "{} at {} ({}), signed {} as {:?} in {}{}",
            a.kind.describe(),
            redact_url(a.endpoint.url()),
            if a.path_style {
                "path style"
            } else {
                "virtual-hosted"
            },
            a.scheme,
            a.signing_name,
            a.signing_region,
            if a.not_plain_sigv4().is_none() {
                ""
            } else {
                "; through the SDK request path"
            }
        ),
        Err(e) => format!("cannot be addressed: {e}"),
    }
}
