//! An S3 Glacier vault as a store of multipart uploads ([`GlacierStore`]), through
//! aws-sdk-glacier: ListMultipartUploads (opaque `marker`, 1,000 a page), ListParts (every page,
//! for the bytes, within the protocol's bounds: 10,000 parts, no marker twice, at most
//! [`super::MAX_EMPTY_PAGES`] empty pages in a row) and AbortMultipartUpload. The sweep, the decision, the verification, the report
//! and the metrics are the same as for a bucket: an upload's key is its archive description, and
//! "gone" is `ResourceNotFoundException`. A vault has no lifecycle rules and no object keys.

use aws_sdk_glacier::Client;
use aws_sdk_glacier::error::SdkError;
use chrono::{DateTime, Utc};

use super::error::{Service, classify};
use super::sdk::{Answer, ThrottleCount};
use super::{Aborted, Marker, Operation, Part, Parts, StoreError, Upload, UploadPage, UploadStore};

/// Uploads and parts asked for per page (Glacier's largest).
const PAGE: i32 = 1_000;

/// One vault on a Glacier client.
pub struct GlacierStore {
    client: Client,
    throttled: ThrottleCount,
    /// The target's name in reports and metrics (`vault:NAME`).
    label: String,
    vault: String,
    account_id: String,
}

impl GlacierStore {
    pub(super) fn new(
        client: Client,
        throttled: ThrottleCount,
        label: String,
        vault: &crate::config::Vault,
    ) -> Self {
        GlacierStore {
            client,
            throttled,
            label,
            vault: vault.name.clone(),
            account_id: vault.account_id.clone(),
        }
    }
}

/// Whether an error says the vault or the upload does not exist (gone, after an abort).
fn not_found<E: aws_sdk_glacier::error::ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    e.as_service_error().and_then(|s| s.code()) == Some("ResourceNotFoundException")
}

fn date(text: Option<&str>) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text?)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// `RangeInBytes` (`"0-1048575"`) as (first byte, size).
fn range(text: &str) -> Option<(u64, u64)> {
    let (first, last) = text.split_once('-')?;
    let (first, last): (u64, u64) = (first.trim().parse().ok()?, last.trim().parse().ok()?);
    Some((first, last.checked_sub(first)?.checked_add(1)?))
}

impl UploadStore for GlacierStore {
    fn bucket(&self) -> &str {
        &self.label
    }

    async fn list_uploads(
        &self,
        _prefix: &str,
        marker: Option<&Marker>,
    ) -> Result<UploadPage, StoreError> {
        let answer = Answer::default();
        let out = self
            .client
            .list_multipart_uploads()
            .account_id(&self.account_id)
            .vault_name(&self.vault)
            .limit(PAGE)
            .set_marker(marker.map(|m| m.key.clone()))
            .customize()
            .interceptor(answer.clone())
            .send()
            .await
            .map_err(|e| classify(Operation::ListUploads, Service::Glacier, &self.label, e))?;
        let (server_date, _, _) = answer.take();
        let mut page = UploadPage {
            next: out.marker().filter(|m| !m.is_empty()).map(|m| Marker {
                key: m.to_string(),
                upload_id: None,
            }),
            server_date: server_date
                .and_then(|d| httpdate::parse_http_date(&d).ok())
                .map(DateTime::<Utc>::from),
            ..UploadPage::default()
        };
        for u in out.uploads_list() {
            let Some(id) = u.multipart_upload_id().filter(|i| !i.is_empty()) else {
                page.unreadable.push(super::Unreadable {
                    key: u.archive_description().unwrap_or_default().to_string(),
                    upload_id: String::new(),
                    problem: "MultipartUploadId is missing".to_string(),
                });
                continue;
            };
            page.uploads.push(Upload {
                key: u.archive_description().unwrap_or_default().to_string(),
                upload_id: id.to_string(),
                initiated: date(u.creation_date()),
                part_size: u64::try_from(u.part_size_in_bytes()).ok(),
            });
        }
        Ok(page)
    }

    async fn list_parts(&self, _key: &str, upload_id: &str) -> Result<Parts, StoreError> {
        let op = Operation::ListParts;
        let mut parts = Vec::new();
        let mut marker: Option<String> = None;
        // The markers followed, and the truncated pages in a row that brought no part: Glacier's
        // markers are opaque, so a listing that cycles (A, B, A) or never brings anything is
        // only caught by remembering them.
        let mut followed = std::collections::HashSet::new();
        let mut empty_pages = 0;
        loop {
            let result = self
                .client
                .list_parts()
                .account_id(&self.account_id)
                .vault_name(&self.vault)
                .upload_id(upload_id)
                .limit(PAGE)
                .set_marker(marker.clone())
                .send()
                .await;
            let out = match result {
                Ok(out) => out,
                Err(e) if not_found(&e) => return Ok(Parts::Gone),
                Err(e) => return Err(classify(op, Service::Glacier, &self.label, e)),
            };
            let part_size = u64::try_from(out.part_size_in_bytes()).unwrap_or(0);
            for p in out.parts() {
                let Some((first, size)) = p.range_in_bytes().and_then(range) else {
                    return Err(StoreError::protocol(
                        op,
                        format!(
                            "ListParts of upload {upload_id}: RangeInBytes {:?} is not FIRST-LAST",
                            p.range_in_bytes()
                        ),
                    ));
                };
                // Parts are numbered by where they start: part n covers [(n-1)*size, n*size).
                let number = first.checked_div(part_size).map_or(0, |n| n + 1);
                parts.push(Part {
                    number: i32::try_from(number).unwrap_or(i32::MAX),
                    etag: p.sha256_tree_hash().unwrap_or_default().to_string(),
                    size,
                    last_modified: None,
                });
            }
            if parts.len() > super::MAX_PARTS {
                return Err(StoreError::protocol(
                    op,
                    format!(
                        "ListParts of upload {upload_id}: more than {} parts",
                        super::MAX_PARTS
                    ),
                ));
            }
            empty_pages = if out.parts().is_empty() {
                empty_pages + 1
            } else {
                0
            };
            let Some(next) = out.marker().filter(|m| !m.is_empty()) else {
                return Ok(Parts::Listed(parts));
            };
            if !followed.insert(next.to_string()) {
                return Err(StoreError::protocol(
                    op,
                    format!(
                        "ListParts of upload {upload_id}: the marker {next:?} came back after other pages: the listing cycles; refusing to loop"
                    ),
                ));
            }
            if empty_pages >= super::MAX_EMPTY_PAGES {
                return Err(StoreError::protocol(
                    op,
                    format!(
                        "ListParts of upload {upload_id}: {empty_pages} truncated pages in a row with no part: refusing to follow it further"
                    ),
                ));
            }
            marker = Some(next.to_string());
        }
    }

    /// Glacier has no conditional abort: `initiated` is not sent.
    async fn abort(
        &self,
        _key: &str,
        upload_id: &str,
        _initiated: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Aborted, StoreError> {
        let result = self
            .client
            .abort_multipart_upload()
            .account_id(&self.account_id)
            .vault_name(&self.vault)
            .upload_id(upload_id)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Aborted::Accepted),
            Err(e) if not_found(&e) => Ok(Aborted::NoSuchUpload),
            Err(e) => Err(classify(Operation::Abort, Service::Glacier, &self.label, e)),
        }
    }

    fn ordered_markers(&self) -> bool {
        false
    }

    fn throttled(&self) -> u64 {
        self.throttled.count()
    }
}

#[cfg(test)]
mod tests {
    use super::range;

    #[test]
    fn a_range_in_bytes_is_its_first_byte_and_size() {
        assert_eq!(range("0-1048575"), Some((0, 1_048_576)));
        assert_eq!(range("1048576-1048576"), Some((1_048_576, 1)));
        for bad in ["", "5", "9-3", "a-b", "-1-4"] {
            assert_eq!(range(bad), None, "{bad:?}");
        }
    }
}
