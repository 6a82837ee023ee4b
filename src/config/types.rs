//! The typed values of the configuration, each parsed and checked once, when the file is read:
//! durations, the retry mode, cron schedules, time zones and URLs. Nothing later parses them again.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

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
#[derive(Clone, Debug, Default, PartialEq, Eq)]
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
