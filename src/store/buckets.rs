//! The buckets of an account, for discovery: ListBuckets (every page), each bucket's tags
//! (GetBucketTagging) and its region (from the listing, else HeadBucket's `x-amz-bucket-region`);
//! and one bucket's creation date, against which the sweep checks the store's initiation times.

use std::collections::BTreeMap;

use aws_sdk_s3::Client;
use aws_sdk_s3::error::ProvideErrorMetadata as _;
use chrono::{DateTime, Utc};

use super::error::{Operation, Service, StoreError, classify};

/// Buckets asked for per ListBuckets page (AWS's largest is 10,000; a listing without a page size
/// is cut at 10,000 buckets with no way to go on).
const PAGE: i32 = 1_000;

/// One bucket of the listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    /// Its name.
    pub name: String,
    /// Its region, when the listing says (AWS does; most S3-compatible stores do not).
    pub region: Option<String>,
    /// When it was created, as the listing says.
    pub created: Option<DateTime<Utc>>,
}

/// The account-level calls of one set of credentials and connection settings.
pub struct Buckets {
    pub(super) client: Client,
}

impl Buckets {
    /// Every bucket the credentials can list, over all pages.
    pub async fn list(&self) -> Result<Vec<Listed>, StoreError> {
        self.scan(|_| false).await
    }

    /// When `bucket` was created, as the listing says; `None` when the listing does not hold it
    /// (or gives no date). The listing stops at the page that holds it.
    pub async fn created(&self, bucket: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let listed = self.scan(|b| b.name == bucket).await?;
        Ok(listed
            .into_iter()
            .find(|b| b.name == bucket)
            .and_then(|b| b.created))
    }

    /// The listing's pages, in order, until the end or the page holding a bucket `found` says.
    async fn scan(&self, found: impl Fn(&Listed) -> bool) -> Result<Vec<Listed>, StoreError> {
        let mut pages = self
            .client
            .list_buckets()
            .max_buckets(PAGE)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify(Operation::ListBuckets, Service::S3, "", e))?;
            let before = out.len();
            out.extend(page.buckets().iter().filter_map(|b| {
                Some(Listed {
                    name: b.name()?.to_string(),
                    region: b.bucket_region().map(str::to_string),
                    created: b.creation_date().and_then(super::to_chrono),
                })
            }));
            if out[before..].iter().any(&found) {
                break;
            }
        }
        Ok(out)
    }

    /// The bucket's tags (none when it has no tag set).
    pub async fn tags(&self, bucket: &str) -> Result<BTreeMap<String, String>, StoreError> {
        match self.client.get_bucket_tagging().bucket(bucket).send().await {
            Ok(out) => Ok(out
                .tag_set()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect()),
            Err(e) if e.as_service_error().and_then(|s| s.code()) == Some("NoSuchTagSet") => {
                Ok(BTreeMap::new())
            }
            Err(e) => Err(classify(
                Operation::GetBucketTagging,
                Service::S3,
                bucket,
                e,
            )),
        }
    }

    /// The bucket's region from GetBucketLocation (`doctor`, where HeadBucket did not say): an
    /// empty `LocationConstraint` is us-east-1, `EU` is eu-west-1, as S3 writes them; `None` when
    /// the call fails.
    pub async fn location(&self, bucket: &str) -> Option<String> {
        let out = self
            .client
            .get_bucket_location()
            .bucket(bucket)
            .send()
            .await
            .ok()?;
        Some(match out.location_constraint().map(|c| c.as_str()) {
            None | Some("") => "us-east-1".to_string(),
            Some("EU") => "eu-west-1".to_string(),
            Some(r) => r.to_string(),
        })
    }

    /// The bucket's region from HeadBucket's `x-amz-bucket-region`, which S3 sends on a redirect
    /// to another region and on a denied HeadBucket too; `None` when the store does not say.
    pub async fn region(&self, bucket: &str) -> Option<String> {
        match self.client.head_bucket().bucket(bucket).send().await {
            Ok(out) => out.bucket_region().map(str::to_string),
            Err(e) => e
                .raw_response()
                .and_then(|r| r.headers().get("x-amz-bucket-region"))
                .map(str::to_string),
        }
    }
}
