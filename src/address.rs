//! How a bucket name is addressed: what kind of name it is (a general-purpose bucket, a directory
//! bucket, an access point alias or ARN, an S3 on Outposts or multi-region access point) and where
//! aws-sdk-s3's endpoint rules send its requests (URL, addressing style, signature). The rules are
//! the SDK's own, run here without a request, so `check-config` shows what the sweep will do, the
//! configuration refuses an ARN they cannot route, and [`super::connect`] picks the request path
//! from the same answer.

use aws_sdk_s3::config::endpoint::{DefaultResolver, Params, ResolveEndpoint as _};
use aws_smithy_types::Document;
use aws_smithy_types::endpoint::Endpoint;
use futures::FutureExt as _;

/// What kind of name a target's `bucket` is, read from the name itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A general-purpose bucket.
    Bucket,
    /// A directory bucket (S3 Express One Zone or Local Zones): a name ending `--x-s3`.
    Directory,
    /// An access point alias (`...-s3alias`), or an S3 on Outposts one (`...--op-s3`).
    AccessPointAlias,
    /// An access point ARN, `arn:PARTITION:s3:REGION:ACCOUNT:accesspoint/NAME`.
    AccessPoint,
    /// An S3 on Outposts access point ARN (`arn:PARTITION:s3-outposts:...`).
    OutpostsAccessPoint,
    /// A multi-region access point ARN (`arn:PARTITION:s3::ACCOUNT:accesspoint/ALIAS.mrap`).
    MultiRegionAccessPoint,
}

impl Kind {
    /// The kind of this bucket name.
    pub fn of(bucket: &str) -> Kind {
        if let Some(arn) = bucket.strip_prefix("arn:") {
            let mut fields = arn.splitn(5, ':');
            let (_partition, service, region) = (fields.next(), fields.next(), fields.next());
            return match (service, region) {
                (Some("s3-outposts"), _) => Kind::OutpostsAccessPoint,
                (_, Some("")) => Kind::MultiRegionAccessPoint,
                _ => Kind::AccessPoint,
            };
        }
        if bucket.ends_with("--x-s3") {
            Kind::Directory
        } else if bucket.ends_with("-s3alias") || bucket.ends_with("--op-s3") {
            Kind::AccessPointAlias
        } else {
            Kind::Bucket
        }
    }

    /// How `check-config` and the docs name it.
    pub fn describe(self) -> &'static str {
        match self {
            Kind::Bucket => "general-purpose bucket",
            Kind::Directory => "directory bucket",
            Kind::AccessPointAlias => "access point alias",
            Kind::AccessPoint => "access point ARN",
            Kind::OutpostsAccessPoint => "S3 on Outposts access point ARN",
            Kind::MultiRegionAccessPoint => "multi-region access point ARN",
        }
    }
}

/// Where the SDK's endpoint rules send one bucket's requests, and how they are signed.
#[derive(Clone, Debug)]
pub struct Address {
    /// The kind of name.
    pub kind: Kind,
    /// The endpoint as the rules resolved it.
    pub endpoint: Endpoint,
    /// Path style (`https://host/bucket`) rather than virtual-hosted (`https://bucket.host`).
    pub path_style: bool,
    /// The first auth scheme the rules name (`sigv4`, `sigv4a`, `sigv4-s3express`).
    pub scheme: String,
    /// The signing name (`s3`, `s3express`, `s3-outposts`).
    pub signing_name: String,
    /// The signing region, or the region set of SigV4a (`*`).
    pub signing_region: String,
}

/// What the endpoint rules need besides the bucket.
#[derive(Clone, Copy, Debug, Default)]
pub struct Where<'a> {
    /// The client's region.
    pub region: &'a str,
    /// A custom endpoint, if any.
    pub endpoint_url: Option<&'a str>,
    /// `force_path_style`.
    pub force_path_style: bool,
    /// FIPS endpoints (`AWS_USE_FIPS_ENDPOINT` and the like).
    pub use_fips: bool,
    /// Dual-stack endpoints.
    pub use_dual_stack: bool,
}

/// Resolves `bucket`'s endpoint with the SDK's rules (no request is sent); `Err` carries the
/// rules' own message (an ARN they cannot parse, path style with an ARN, a region mismatch...).
pub fn resolve(bucket: &str, at: Where<'_>) -> Result<Address, String> {
    let params = Params::builder()
        .bucket(bucket)
        .region(at.region)
        .use_fips(at.use_fips)
        .use_dual_stack(at.use_dual_stack)
        .force_path_style(at.force_path_style)
        .set_endpoint(at.endpoint_url.map(str::to_string))
        .build()
        .map_err(|e| format!("endpoint parameters refused: {e}"))?;
    // The default resolver answers at once: it evaluates rules, it does no I/O.
    let endpoint = DefaultResolver::new()
        .resolve_endpoint(&params)
        .now_or_never()
        .ok_or("the endpoint resolver did not answer at once")?
        // The rules' messages may quote the custom endpoint, which may carry a secret.
        .map_err(|e| match at.endpoint_url {
            Some(url) => e.to_string().replace(url, &crate::redact::redact_url(url)),
            None => e.to_string(),
        })?;
    let scheme = endpoint.auth_schemes().first();
    let text = |key: &str| match scheme.and_then(|s| s.get(key)) {
        Some(Document::String(s)) => Some(s.clone()),
        Some(Document::Array(set)) => Some(
            set.iter()
                .filter_map(|d| d.as_string())
                .collect::<Vec<_>>()
                .join(","),
        ),
        _ => None,
    };
    let path_style = url::Url::parse(endpoint.url())
        .ok()
        .is_some_and(|u| u.path_segments().and_then(|mut s| s.next_back()) == Some(bucket));
    Ok(Address {
        kind: Kind::of(bucket),
        path_style,
        scheme: scheme.map_or("sigv4", |s| s.name()).to_string(),
        signing_name: text("signingName").unwrap_or_else(|| "s3".to_string()),
        signing_region: text("signingRegion")
            .or_else(|| text("signingRegionSet"))
            .unwrap_or_else(|| at.region.to_string()),
        endpoint,
    })
}

impl Address {
    /// Whether aborts must carry `If-Match-Initiated-Time` and the listing follows the
    /// directory-bucket rules (opaque, unsorted).
    pub fn is_directory(&self) -> bool {
        self.kind == Kind::Directory || self.scheme == "sigv4-s3express"
    }

    /// Why the lean path, which signs plain SigV4 as `s3` and adds no header, cannot send this
    /// address's requests (SigV4a, S3 Express sessions, headers the rules add); `None` if it can.
    pub fn not_plain_sigv4(&self) -> Option<String> {
        let double_encoding = self
            .endpoint
            .auth_schemes()
            .first()
            .and_then(|a| a.get("disableDoubleEncoding"))
            .is_some_and(|d| d.as_bool() == Some(false));
        if self.endpoint.headers().count() > 0 {
            Some("the endpoint rules add headers".into())
        } else if self.scheme != "sigv4" {
            Some(format!(
                "the endpoint's auth scheme is {}, not sigv4",
                self.scheme
            ))
        } else if double_encoding || self.signing_name != "s3" {
            Some(format!(
                "the endpoint signs as {:?} with double encoding {double_encoding}",
                self.signing_name
            ))
        } else {
            None
        }
    }
}

/// Whether a directory bucket's `prefix` is one it can list by: directory buckets list only by
/// prefixes ending in the delimiter `/` (or none).
pub fn directory_prefix_ok(prefix: &str) -> bool {
    prefix.is_empty() || prefix.ends_with('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(endpoint_url: Option<&str>) -> Where<'_> {
        Where {
            region: "us-west-2",
            endpoint_url,
            ..Where::default()
        }
    }

    #[test]
    fn kinds_are_read_from_the_name() {
        for (name, kind) in [
            ("logs", Kind::Bucket),
            ("logs--usw2-az1--x-s3", Kind::Directory),
            (
                "reports-abcdefghij1234567890-s3alias",
                Kind::AccessPointAlias,
            ),
            (
                "arn:aws:s3:us-west-2:123456789012:accesspoint/reports",
                Kind::AccessPoint,
            ),
            (
                "arn:aws:s3-outposts:us-west-2:123456789012:outpost/op-01234567890123456/accesspoint/reports",
                Kind::OutpostsAccessPoint,
            ),
            (
                "arn:aws:s3::123456789012:accesspoint/mfzwi23gnjvgw.mrap",
                Kind::MultiRegionAccessPoint,
            ),
        ] {
            assert_eq!(Kind::of(name), kind, "{name}");
        }
    }

    #[test]
    fn each_kind_is_addressed_as_the_sdk_rules_say() {
        let a = resolve("logs--usw2-az1--x-s3", at(None)).unwrap();
        assert_eq!(
            a.endpoint.url(),
            "https://logs--usw2-az1--x-s3.s3express-usw2-az1.us-west-2.amazonaws.com"
        );
        assert!(a.is_directory() && !a.path_style);
        assert_eq!(
            (a.scheme.as_str(), a.signing_name.as_str()),
            ("sigv4-s3express", "s3express")
        );
        // An IP endpoint: path style, still session auth.
        let a = resolve("logs--usw2-az1--x-s3", at(Some("http://127.0.0.1:9000"))).unwrap();
        assert_eq!(
            a.endpoint.url(),
            "http://127.0.0.1:9000/logs--usw2-az1--x-s3"
        );
        assert!(a.path_style && a.is_directory());

        let a = resolve(
            "arn:aws:s3:eu-west-1:123456789012:accesspoint/reports",
            at(None),
        )
        .unwrap();
        assert_eq!(
            a.endpoint.url(),
            "https://reports-123456789012.s3-accesspoint.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            (
                a.scheme.as_str(),
                a.signing_name.as_str(),
                a.signing_region.as_str()
            ),
            ("sigv4", "s3", "eu-west-1")
        );
        let a = resolve(
            "arn:aws:s3-outposts:us-west-2:123456789012:outpost/op-01234567890123456/accesspoint/reports",
            at(None),
        )
        .unwrap();
        assert_eq!(
            a.endpoint.url(),
            "https://reports-123456789012.op-01234567890123456.s3-outposts.us-west-2.amazonaws.com"
        );
        assert_eq!(
            (a.scheme.as_str(), a.signing_name.as_str()),
            ("sigv4a", "s3-outposts")
        );
        let a = resolve(
            "arn:aws:s3::123456789012:accesspoint/mfzwi23gnjvgw.mrap",
            at(None),
        )
        .unwrap();
        assert_eq!(
            a.endpoint.url(),
            "https://mfzwi23gnjvgw.mrap.accesspoint.s3-global.amazonaws.com"
        );
        assert_eq!(
            (a.scheme.as_str(), a.signing_region.as_str()),
            ("sigv4a", "*")
        );
        let a = resolve("logs", at(Some("http://127.0.0.1:9000"))).unwrap();
        assert!(a.path_style && !a.is_directory());
        assert_eq!(
            (
                a.endpoint.url(),
                a.scheme.as_str(),
                a.signing_region.as_str()
            ),
            ("http://127.0.0.1:9000/logs", "sigv4", "us-west-2")
        );
    }

    #[test]
    fn names_the_rules_cannot_route_are_refused_with_their_message() {
        let e = resolve("arn:aws:s3:us-west-2:123456789012:bucket/foo", at(None)).unwrap_err();
        assert!(e.contains("Invalid ARN"), "{e}");
        let e = resolve("arn:nope", at(None)).unwrap_err();
        assert!(e.contains("not a valid ARN"), "{e}");
        let path_style = Where {
            force_path_style: true,
            ..at(None)
        };
        let e = resolve(
            "arn:aws:s3:us-west-2:123456789012:accesspoint/reports",
            path_style,
        )
        .unwrap_err();
        assert!(
            e.contains("Path-style addressing cannot be used with ARN"),
            "{e}"
        );
    }

    #[test]
    fn a_secret_in_the_endpoint_never_appears_in_a_refusal() {
        let e = resolve("a", at(Some("https://s3.example/?token=s3cr3t"))).unwrap_err();
        assert!(!e.contains("s3cr3t") && e.contains("?REDACTED"), "{e}");
    }

    #[test]
    fn directory_prefixes_end_in_a_slash() {
        assert!(directory_prefix_ok(""));
        assert!(directory_prefix_ok("logs/2026/"));
        assert!(!directory_prefix_ok("logs"));
    }
}
