//! The typed values of the configuration, each parsed and checked once, when the file is read:
//! durations, the retry mode, cron schedules, time zones and URLs. Nothing later parses them again.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration written as a humantime string (`90s`, `36h`, `7d`) in the file and the environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
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

/// How failed S3 calls are retried.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RetryMode {
    /// Exponential backoff with full jitter.
    #[default]
    Standard,
    /// Client-side back-off on throttling for every call: a pinned `concurrency` becomes a ceiling
    /// that SlowDown answers cut (on the SDK path, the SDK's own rate limiter as well).
    Adaptive,
}

impl fmt::Display for RetryMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RetryMode::Standard => "standard",
            RetryMode::Adaptive => "adaptive",
        })
    }
}

/// Which request path a store's calls take.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestPathSetting {
    /// The lean path wherever the endpoint is plain SigV4, else the SDK's.
    #[default]
    Auto,
    /// Always through aws-sdk-s3's pipeline (slower; a fallback for a store the lean path
    /// does not suit).
    Sdk,
}

impl fmt::Display for RequestPathSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RequestPathSetting::Auto => "auto",
            RequestPathSetting::Sdk => "sdk",
        })
    }
}

/// A 6-field cron expression (seconds first), parsed exactly as tokio-cron-scheduler will.
#[derive(Clone, Debug)]
pub struct Schedule {
    expr: String,
    // Shared: every target inheriting the schedule holds the one parsed copy.
    cron: std::sync::Arc<croner::Cron>,
}

impl Schedule {
    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.expr
    }

    /// The parsed schedule.
    pub fn cron(&self) -> &croner::Cron {
        &self.cron
    }
}

impl FromStr for Schedule {
    type Err = String;

    fn from_str(expr: &str) -> Result<Self, String> {
        croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Required)
            .build()
            .parse(expr)
            .map(|cron| Schedule {
                expr: expr.to_string(),
                cron: std::sync::Arc::new(cron),
            })
            .map_err(|e| {
                format!(
                    "{expr:?} is not a 6-field cron expression (seconds first, e.g. \"0 0 * * * *\"): {e}"
                )
            })
    }
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.expr == other.expr
    }
}

impl Default for Schedule {
    /// Every hour on the hour.
    fn default() -> Self {
        "0 0 * * * *".parse().expect("a valid built-in schedule")
    }
}

impl Serialize for Schedule {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.expr)
    }
}

impl<'de> Deserialize<'de> for Schedule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// An IANA time zone name (`UTC`, `Europe/Paris`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeZone(pub chrono_tz::Tz);

impl Default for TimeZone {
    fn default() -> Self {
        TimeZone(chrono_tz::UTC)
    }
}

impl Serialize for TimeZone {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.name())
    }
}

impl<'de> Deserialize<'de> for TimeZone {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map(TimeZone).map_err(|_| {
            serde::de::Error::custom(format!(
                "{name:?} is not an IANA time zone name such as \"UTC\" or \"Europe/Paris\""
            ))
        })
    }
}

/// An optional http(s) URL: `""` means unset. Checked when read (scheme, host, port); kept as
/// written for the clients, and always shown with its password redacted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct HttpUrl {
    text: String,
    url: Option<url::Url>,
}

impl HttpUrl {
    /// The URL as written, `""` when unset.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The parsed URL, when set.
    pub fn url(&self) -> Option<&url::Url> {
        self.url.as_ref()
    }

    /// Whether a URL is set.
    pub fn is_set(&self) -> bool {
        self.url.is_some()
    }

    /// As written, with any password in it replaced by `REDACTED`.
    pub fn redacted(&self) -> String {
        super::redact_url(&self.text)
    }
}

impl FromStr for HttpUrl {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Ok(HttpUrl::default());
        }
        let shown = super::redact_url(text);
        // The URL parser drops leading and trailing blanks, but the clients get the text as
        // written: a blank anywhere would only fail at run time, as a "network" error.
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "{shown:?} contains whitespace or a control character; write the URL without them"
            ));
        }
        let url = url::Url::parse(text).map_err(|e| format!("{shown:?} is not a URL ({e})"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
            return Err(format!(
                "{shown:?} is not an http(s) URL such as \"https://host:port\""
            ));
        }
        if url.port() == Some(0) {
            return Err(format!(
                "{shown:?}: port 0 is out of range: accepted 1..=65535"
            ));
        }
        Ok(HttpUrl {
            text: text.to_string(),
            url: Some(url),
        })
    }
}

impl fmt::Display for HttpUrl {
    /// Redacted: a URL is never shown with its password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Serialize for HttpUrl {
    /// Redacted, so that no rendering of the configuration can show a password.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.redacted())
    }
}

impl<'de> Deserialize<'de> for HttpUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// A shell-style glob on bucket names (`logs-*`, `media-??`, `[ab]-*`), checked when read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BucketGlob(glob::Pattern);

impl BucketGlob {
    /// Whether `bucket` matches.
    pub fn matches(&self, bucket: &str) -> bool {
        self.0.matches(bucket)
    }

    /// The glob as written.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl FromStr for BucketGlob {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text.trim().is_empty() {
            return Err("an empty glob matches no bucket".to_string());
        }
        glob::Pattern::new(text)
            .map(BucketGlob)
            .map_err(|e| format!("{text:?} is not a glob such as \"logs-*\" ({e})"))
    }
}

impl fmt::Display for BucketGlob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for BucketGlob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for BucketGlob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// An optional IAM role ARN (`arn:aws:iam::111122223333:role/janitor`): `""` means no role.
/// Checked when read: the partition, a 12-digit account and a role name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct RoleArn(String);

impl RoleArn {
    /// The role of `name` in `account` on `partition` (`aws`, `aws-cn`, `aws-us-gov`).
    pub fn of(partition: &str, account: &str, name: &str) -> Result<RoleArn, String> {
        format!("arn:{partition}:iam::{account}:role/{name}").parse()
    }

    /// The ARN as written, `""` when unset.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether a role is set.
    pub fn is_set(&self) -> bool {
        !self.0.is_empty()
    }

    /// The role's account.
    pub fn account(&self) -> Option<&str> {
        self.0.split(':').nth(4)
    }
}

/// Whether `account` is an AWS account id: 12 digits.
pub fn is_account_id(account: &str) -> bool {
    account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())
}

impl FromStr for RoleArn {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Ok(RoleArn::default());
        }
        let bad = |why: &str| {
            format!(
                "{text:?} is not an IAM role ARN such as \"arn:aws:iam::111122223333:role/mpu-janitor\" ({why})"
            )
        };
        let fields: Vec<&str> = text.splitn(6, ':').collect();
        let [arn, partition, service, region, account, resource] = fields[..] else {
            return Err(bad("an ARN has six fields separated by ':'"));
        };
        if arn != "arn" || !partition.starts_with("aws") {
            return Err(bad("it starts with \"arn:aws\""));
        }
        if service != "iam" || !region.is_empty() {
            return Err(bad(
                "a role is in iam, which has no region: \"arn:aws:iam::\"",
            ));
        }
        if !is_account_id(account) {
            return Err(bad("the account is 12 digits"));
        }
        let name = resource
            .strip_prefix("role/")
            .ok_or_else(|| bad("the resource is \"role/NAME\""))?;
        let valid = |c: char| c.is_ascii_alphanumeric() || "+=,.@_-/".contains(c);
        if name.is_empty() || name.ends_with('/') || !name.chars().all(valid) {
            return Err(bad("a role name is letters, digits and +=,.@_-"));
        }
        Ok(RoleArn(text.to_string()))
    }
}

impl fmt::Display for RoleArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for RoleArn {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for RoleArn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// A string never shown: `check-config` and every other rendering print `REDACTED` (an
/// AssumeRole external id is handed out like a password).
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Secret(String);

impl Secret {
    /// The value itself, for the one call that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "\"\""
        } else {
            "REDACTED"
        })
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(if self.0.is_empty() { "" } else { "REDACTED" })
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}
