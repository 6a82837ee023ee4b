//! Signing a lean-path request the way the SDK signs S3 requests: SigV4 with
//! `x-amz-content-sha256`, single percent-encoding, no path normalisation, empty body.

use std::time::SystemTime;

use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http_body_util::Empty;
use hyper::Request;

/// SHA-256 of the empty body: every request of the lean path has one.
pub(super) const EMPTY_SHA256: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// The signing scope of one bucket's endpoint, as the SDK's endpoint rules gave it.
pub(super) struct Signer {
    pub(super) name: String,
    pub(super) region: String,
}

impl Signer {
    /// Adds the SigV4 headers for `url` (the exact URL the request is sent to) at time `now`.
    pub(super) fn sign(
        &self,
        req: &mut Request<Empty<Bytes>>,
        url: &str,
        identity: &Identity,
        now: SystemTime,
    ) -> Result<(), String> {
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        let params = v4::SigningParams::builder()
            .identity(identity)
            .region(&self.region)
            .name(&self.name)
            .time(now)
            .settings(settings)
            .build()
            .map_err(|e| e.to_string())?
            .into();
        let headers = req
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)));
        let signable = SignableRequest::new(
            req.method().as_str(),
            url,
            headers,
            SignableBody::Precomputed(EMPTY_SHA256.to_string()),
        )
        .map_err(|e| e.to_string())?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| e.to_string())?
            .into_parts();
        instructions.apply_to_request_http1x(req);
        Ok(())
    }
}
