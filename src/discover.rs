//! Discovery: at the start of every sweep, a target with `bucket = "*"` becomes one target per
//! bucket it matches (ListBuckets, all pages; globs; tags; each bucket in its own region), so a
//! bucket created since the last sweep is swept by the next one. Which bucket a rule takes is
//! decided by the pure functions [`by_name`] and [`by_tags`]; [`expand`] makes the calls and keeps
//! any bucket from being swept twice in a run: a target written for the bucket wins, then the
//! first rule in configuration order.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use futures::StreamExt as _;

use crate::config::{Config, Discovery, Kind, Target, shard_of};
use crate::report::{DiscoveryReport, SkippedBucket};
use crate::store::Connector;
use crate::store::buckets::Listed;

/// Buckets whose tags and region are read at once.
const LOOKUPS_AT_ONCE: usize = 16;

/// What a run's discovery must respect besides its rules.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    /// The buckets the configuration names (in every shard), as (endpoint, bucket): their own
    /// targets win.
    explicit: HashSet<(String, String)>,
    /// This process's shard and the number of shards.
    shard: (u32, u32),
}

impl Scope {
    /// The scope of `config`: the buckets its targets name and its shard.
    pub fn of(config: &Config) -> Scope {
        Scope {
            explicit: config.named_buckets.clone(),
            shard: (
                config.sharding.index.unwrap_or(0),
                config.sharding.count.max(1),
            ),
        }
    }
}

/// Whether a rule takes a bucket by its name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ByName {
    /// It matches.
    Match,
    /// It matches none of `include_buckets`.
    NotIncluded,
    /// It matches this glob of `exclude_buckets`.
    Excluded(String),
}

/// The rule's globs on a bucket name: included (every bucket when `include_buckets` is absent)
/// and not excluded.
pub fn by_name(d: &Discovery, bucket: &str) -> ByName {
    if let Some(g) = d.exclude.iter().find(|g| g.matches(bucket)) {
        return ByName::Excluded(g.to_string());
    }
    match &d.include {
        Some(include) if !include.iter().any(|g| g.matches(bucket)) => ByName::NotIncluded,
        _ => ByName::Match,
    }
}

/// Whether a bucket carrying `have` has every tag the rule wants, each with its value.
pub fn by_tags(want: &BTreeMap<String, String>, have: &BTreeMap<String, String>) -> bool {
    want.iter().all(|(k, v)| have.get(k) == Some(v))
}

/// The targets to sweep: `targets` with each discovery target replaced by the buckets it matches
/// now, and what each rule found. Targets written for one bucket pass through unchanged (and are
/// not copied when there is no discovery target).
pub async fn expand<'a>(
    targets: &'a [Target],
    connector: &Connector,
    scope: &Scope,
) -> (Cow<'a, [Target]>, Vec<DiscoveryReport>) {
    if !targets.iter().any(Target::discovers) {
        return (Cow::Borrowed(targets), Vec::new());
    }
    let rules: Vec<(&Target, &Arc<Discovery>)> = targets
        .iter()
        .filter_map(|t| match &t.kind {
            Kind::Discovery(d) => Some((t, d)),
            _ => None,
        })
        .collect();
    let found = futures::future::join_all(
        rules
            .iter()
            .map(|(r, d)| candidates(r, d, connector, scope)),
    )
    .await;
    let mut out: Vec<Target> = targets.iter().filter(|t| !t.discovers()).cloned().collect();
    let mut claimed: HashMap<(String, String), String> = scope
        .explicit
        .iter()
        .map(|k| (k.clone(), "its own target".to_string()))
        .collect();
    let mut reports = Vec::with_capacity(found.len());
    for (mut report, candidates) in found {
        for t in candidates {
            let (e, b) = t.identity();
            let key = (e.to_string(), b.to_string());
            if let Some(by) = claimed.get(&key) {
                report.skipped.push(SkippedBucket {
                    bucket: t.bucket.clone(),
                    reason: format!("swept by {by}"),
                });
                continue;
            }
            claimed.insert(key, report.rule.clone());
            report.buckets_matched += 1;
            out.push(t);
        }
        if let Some(e) = &report.error {
            tracing::error!(rule = %report.rule, error = %e, "Discovery failed: this rule sweeps nothing");
        } else {
            tracing::info!(
                rule = %report.rule,
                listed = report.buckets_listed,
                matched = report.buckets_matched,
                skipped = report.skipped.len(),
                "Discovered buckets"
            );
        }
        reports.push(report);
    }
    (Cow::Owned(out), reports)
}

/// The buckets one rule matches (before the run's claims), each as a target in its region.
async fn candidates(
    rule: &Target,
    d: &Arc<Discovery>,
    connector: &Connector,
    scope: &Scope,
) -> (DiscoveryReport, Vec<Target>) {
    let mut report = DiscoveryReport {
        rule: d.rule.clone(),
        matching: d.describe(),
        role_arn: Some(rule.settings.role_arn.to_string()).filter(|r| !r.is_empty()),
        ..DiscoveryReport::default()
    };
    let listed = match connector.buckets(&rule.settings.client()).await {
        Ok(b) => b.list().await.map(|l| (b, l)),
        Err(e) => Err(e),
    };
    let (buckets, listed) = match listed {
        Ok(l) => l,
        Err(e) => {
            report.error = Some(e.to_string());
            return (report, Vec::new());
        }
    };
    report.buckets_listed = listed.len() as u64;
    let (index, count) = scope.shard;
    let mut wanted: Vec<Listed> = Vec::new();
    for l in listed {
        if by_name(d, &l.name) != ByName::Match {
            report.buckets_not_matched += 1;
        } else if shard_of(&l.name, &rule.prefix, count) != index {
            report.buckets_other_shard += 1;
        } else {
            wanted.push(l);
        }
    }
    let buckets = &buckets;
    let d = &d;
    let looked_up: Vec<(Listed, Result<Option<String>, String>)> = futures::stream::iter(wanted)
        .map(|l| async move {
            if !d.tags.is_empty() {
                match buckets.tags(&l.name).await {
                    Ok(have) if !by_tags(&d.tags, &have) => return (l, Ok(None)),
                    Ok(_) => {}
                    Err(e) => return (l, Err(format!("its tags cannot be read: {e}"))),
                }
            }
            let region = match &l.region {
                Some(r) => Some(r.clone()),
                None => buckets.region(&l.name).await,
            };
            let region = region.unwrap_or_else(|| rule.settings.region.clone());
            (l, Ok(Some(region)))
        })
        .buffered(LOOKUPS_AT_ONCE)
        .collect()
        .await;
    let mut targets = Vec::new();
    for (l, looked) in looked_up {
        match looked {
            Ok(None) => report.buckets_not_matched += 1,
            Err(reason) => {
                tracing::warn!(rule = %report.rule, bucket = %l.name, reason = %reason, "Skipping a discovered bucket");
                report.skipped.push(SkippedBucket {
                    bucket: l.name,
                    reason,
                });
            }
            Ok(Some(region)) => {
                let mut settings = rule.settings.clone();
                settings.region = region;
                targets.push(Target {
                    bucket: l.name,
                    prefix: rule.prefix.clone(),
                    exclude_prefixes: rule.exclude_prefixes.clone(),
                    settings,
                    kind: Kind::Discovered(Arc::clone(d), l.created),
                });
            }
        }
    }
    (report, targets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(include: Option<&[&str]>, exclude: &[&str]) -> Discovery {
        let globs = |g: &[&str]| g.iter().map(|g| g.parse().unwrap()).collect();
        Discovery {
            rule: "targets[0]".into(),
            include: include.map(globs),
            exclude: globs(exclude),
            tags: BTreeMap::new(),
        }
    }

    #[test]
    fn a_bucket_is_taken_when_included_and_not_excluded() {
        let every = rule(None, &[]);
        assert_eq!(by_name(&every, "anything"), ByName::Match);
        let logs = rule(Some(&["logs-*", "audit-??"]), &["*-tmp"]);
        for (bucket, want) in [
            ("logs-a", ByName::Match),
            ("audit-01", ByName::Match),
            ("audit-001", ByName::NotIncluded),
            ("media", ByName::NotIncluded),
            ("logs-tmp", ByName::Excluded("*-tmp".into())),
            ("xlogs-a", ByName::NotIncluded),
        ] {
            assert_eq!(by_name(&logs, bucket), want, "{bucket}");
        }
        // Exclusion wins over inclusion, and applies without include_buckets too.
        assert_eq!(
            by_name(&rule(None, &["[ab]-*"]), "a-1"),
            ByName::Excluded("[ab]-*".into())
        );
        assert_eq!(by_name(&rule(None, &["[ab]-*"]), "c-1"), ByName::Match);
    }

    #[test]
    fn every_wanted_tag_must_be_there_with_its_value() {
        let map = |kv: &[(&str, &str)]| {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        let want = map(&[("team", "media"), ("env", "prod")]);
        assert!(by_tags(
            &want,
            &map(&[("team", "media"), ("env", "prod"), ("x", "y")])
        ));
        assert!(!by_tags(&want, &map(&[("team", "media")])));
        assert!(!by_tags(&want, &map(&[("team", "Media"), ("env", "prod")])));
        assert!(!by_tags(&want, &BTreeMap::new()));
        assert!(
            by_tags(&BTreeMap::new(), &BTreeMap::new()),
            "no tags wanted: any bucket"
        );
    }
}
