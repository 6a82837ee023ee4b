//! What the store needs of a target's settings: the narrow, hashable value it builds and shares its
//! clients by. Two targets with equal values share one client (one connection pool, one credential
//! cache); a key added here is part of that identity by construction, so no hand-written cache
//! key can forget it.

use std::path::{Path, PathBuf};

use super::{HttpUrl, HumanDuration, RequestPathSetting, RetryMode, RoleArn, Secret, Settings};
use crate::address::Where;

/// The connection, credential and request settings of a store's client.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientSettings {
    /// AWS region (or the region an S3-compatible store expects).
    pub region: String,
    /// S3-compatible endpoint URL; unset = AWS.
    pub endpoint_url: HttpUrl,
    /// Path-style addressing.
    pub force_path_style: bool,
    /// Shared-config profile; empty = the default credential chain.
    pub profile: String,
    /// Account id sent as ExpectedBucketOwner, when set.
    pub expected_bucket_owner: String,
    /// Send RequestPayer=requester.
    pub request_payer: bool,
    /// PEM file of extra trusted CAs; empty = none.
    pub ca_bundle: PathBuf,
    /// HTTP proxy; unset = the environment's.
    pub proxy: HttpUrl,
    /// IAM role assumed for every call; unset = none.
    pub role_arn: RoleArn,
    /// ExternalId sent with AssumeRole.
    pub external_id: Secret,
    /// RoleSessionName of AssumeRole.
    pub session_name: String,
    /// How long an assumed role's credentials last.
    pub duration: HumanDuration,
    /// STS endpoint for AssumeRole; unset = the region's.
    pub sts_endpoint_url: HttpUrl,
    /// TCP + TLS connect timeout.
    pub connect_timeout: HumanDuration,
    /// Time allowed for a response to start arriving.
    pub read_timeout: HumanDuration,
    /// Attempts per call, first try included.
    pub retry_max_attempts: u32,
    /// Retry mode.
    pub retry_mode: RetryMode,
    /// Which request path the store's calls take.
    pub request_path: RequestPathSetting,
}

impl ClientSettings {
    /// `ca_bundle`, when set.
    pub fn ca_bundle(&self) -> Option<&Path> {
        Some(self.ca_bundle.as_path()).filter(|p| !p.as_os_str().is_empty())
    }

    /// What the endpoint rules need besides the bucket (FIPS and dual-stack, which only the
    /// environment or a profile can ask for, are left out: `check-config` shows the standard
    /// endpoint).
    pub fn address_where(&self) -> Where<'_> {
        Where {
            region: &self.region,
            endpoint_url: Some(self.endpoint_url.as_str()).filter(|u| !u.is_empty()),
            force_path_style: self.force_path_style,
            ..Where::default()
        }
    }
}

impl Settings {
    /// The settings the store's client is built from.
    pub fn client(&self) -> ClientSettings {
        ClientSettings {
            region: self.region.clone(),
            endpoint_url: self.endpoint_url.clone(),
            force_path_style: self.force_path_style,
            profile: self.profile.clone(),
            expected_bucket_owner: self.expected_bucket_owner.clone(),
            request_payer: self.request_payer,
            ca_bundle: self.ca_bundle.clone(),
            proxy: self.proxy.clone(),
            role_arn: self.role_arn.clone(),
            external_id: self.external_id.clone(),
            session_name: self.session_name.clone(),
            duration: self.duration,
            sts_endpoint_url: self.sts_endpoint_url.clone(),
            connect_timeout: self.connect_timeout,
            read_timeout: self.read_timeout,
            retry_max_attempts: self.retry_max_attempts,
            retry_mode: self.retry_mode,
            request_path: self.request_path,
        }
    }
}
