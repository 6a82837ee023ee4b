//! The lifecycle audit: whether a bucket's own lifecycle configuration would abort the target's
//! incomplete uploads (an `AbortIncompleteMultipartUpload` rule covering its whole prefix), and after
//! how many days. The store reads the rules ([`crate::store::UploadStore::lifecycle_rules`]); the
//! decision is [`audit`], pure. A rule covers the target when it is enabled, has an abort action,
//! and its filter keeps every key under the target's prefix: no filter, or a prefix the target's
//! prefix starts with. A rule that also filters on tags or object size never covers it (S3 does not
//! apply such a rule's abort action to uploads).

use serde::Serialize;

/// One lifecycle rule, as the audit needs it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rule {
    /// The rule's ID, when it has one.
    pub id: Option<String>,
    /// `Status = Enabled`.
    pub enabled: bool,
    /// The key prefix of its filter (or of the legacy `Prefix` element); `None` or `""`: every key.
    pub prefix: Option<String>,
    /// Whether its filter also tests tags or object sizes.
    pub narrowed: bool,
    /// `AbortIncompleteMultipartUpload.DaysAfterInitiation`, when the rule has that action.
    pub abort_after_days: Option<u32>,
}

/// What the audit found for a target.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum Audit {
    /// An enabled rule aborts the target's incomplete uploads after `days` days (the shortest, when
    /// several do).
    Rule {
        /// `DaysAfterInitiation`.
        days: u32,
        /// The rule's ID, when it has one.
        #[serde(skip_serializing_if = "Option::is_none")]
        rule_id: Option<String>,
    },
    /// No rule aborts them (no lifecycle configuration, or none of its rules covers the prefix).
    None,
    /// The configuration could not be read; `detail` says why (AccessDenied: the optional
    /// `s3:GetLifecycleConfiguration` permission is missing). The sweep is not affected.
    Unknown {
        /// The store's answer.
        detail: String,
    },
}

impl Audit {
    /// The covering rule's days, if any.
    pub fn days(&self) -> Option<u32> {
        match self {
            Audit::Rule { days, .. } => Some(*days),
            _ => None,
        }
    }

    /// In plain words, for `plan` and the text report.
    pub fn describe(&self) -> String {
        match self {
            Audit::Rule {
                days,
                rule_id: Some(id),
            } => format!("lifecycle rule {id:?} aborts incomplete uploads after {days} days"),
            Audit::Rule { days, .. } => {
                format!("a lifecycle rule aborts incomplete uploads after {days} days")
            }
            Audit::None => "no lifecycle abort rule: only this janitor cleans up".to_string(),
            Audit::Unknown { detail } => format!("lifecycle rules unknown: {detail}"),
        }
    }
}

/// The rule of `rules` that covers every key under `prefix` with the shortest abort delay.
pub fn audit(rules: &[Rule], prefix: &str) -> Audit {
    rules
        .iter()
        .filter(|r| r.enabled && !r.narrowed)
        .filter(|r| prefix.starts_with(r.prefix.as_deref().unwrap_or("")))
        .filter_map(|r| r.abort_after_days.map(|days| (days, r)))
        .min_by_key(|(days, _)| *days)
        .map_or(Audit::None, |(days, r)| Audit::Rule {
            days,
            rule_id: r.id.clone(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(prefix: Option<&str>, days: Option<u32>) -> Rule {
        Rule {
            id: Some(format!("r{}", days.unwrap_or(0))),
            enabled: true,
            prefix: prefix.map(str::to_string),
            narrowed: false,
            abort_after_days: days,
        }
    }

    #[test]
    fn a_rule_covers_a_target_only_when_it_aborts_every_key_under_its_prefix() {
        let cases: &[(&str, Vec<Rule>, &str, Option<u32>)] = &[
            ("no rules", vec![], "", None),
            ("whole bucket", vec![rule(None, Some(7))], "logs/", Some(7)),
            ("empty prefix", vec![rule(Some(""), Some(3))], "", Some(3)),
            (
                "a parent prefix",
                vec![rule(Some("logs/"), Some(2))],
                "logs/app/",
                Some(2),
            ),
            (
                "a narrower prefix leaves keys out",
                vec![rule(Some("logs/app/"), Some(2))],
                "logs/",
                None,
            ),
            (
                "another prefix",
                vec![rule(Some("tmp/"), Some(1))],
                "logs/",
                None,
            ),
            ("expiration only", vec![rule(None, None)], "", None),
            (
                "the shortest of several",
                vec![rule(None, Some(30)), rule(Some("l"), Some(5))],
                "logs/",
                Some(5),
            ),
            (
                "disabled",
                vec![Rule {
                    enabled: false,
                    ..rule(None, Some(1))
                }],
                "",
                None,
            ),
            (
                "tag or size filter",
                vec![Rule {
                    narrowed: true,
                    ..rule(None, Some(1))
                }],
                "",
                None,
            ),
        ];
        for (what, rules, prefix, days) in cases {
            assert_eq!(audit(rules, prefix).days(), *days, "{what}");
        }
    }

    #[test]
    fn the_audit_says_in_plain_words_whether_a_rule_cleans_up() {
        assert_eq!(
            audit(&[rule(None, Some(7))], "").describe(),
            "lifecycle rule \"r7\" aborts incomplete uploads after 7 days"
        );
        assert!(
            audit(&[], "")
                .describe()
                .starts_with("no lifecycle abort rule")
        );
        let json = serde_json::to_string(&Audit::Rule {
            days: 7,
            rule_id: None,
        })
        .unwrap();
        assert_eq!(json, r#"{"status":"rule","days":7}"#);
    }
}
