//! The store of multipart uploads: the [`UploadStore`] trait the sweep works through, and its types.
//! Nothing here decides anything: the sweep does, so a second kind of store (Glacier vaults, a
//! fake) is a second implementation of the trait, not a branch.
//!
//! - [`error`]: which call failed and why, classified into a small fixed set of kinds.
//! - [`tls`]: the one trust store every HTTP client of the product is built from.
//! - [`proxy`]: which proxy each request goes through (`proxy`, else the environment's).
//! - `credentials`: one credential cache per provider; assumed roles (STS AssumeRole).
//! - [`connect`]: builds and shares clients by [`crate::config::ClientSettings`]; chooses each
//!   store's request path, once.
//! - `any`: [`AnyStore`], a store of any kind, the one value the sweep is given.
//! - `s3`: [`S3Store`], an S3 bucket, access point or directory bucket, on either request path.
//! - `sdk`: the calls made through aws-sdk-s3.
//! - `lean`: the lean path, the same calls over hyper, signed by aws-sigv4 (`sign`, `transport`,
//!   `retry`).
//! - `xml`: the one strict reader of the answers' XML, for both request paths.
//! - `glacier`: [`GlacierStore`], an S3 Glacier vault, through aws-sdk-glacier.
//! - [`buckets`]: the account-level calls of discovery (ListBuckets, tags, regions).

mod any;
pub mod buckets;
pub mod connect;
mod credentials;
pub mod error;
mod glacier;
mod lean;
pub mod proxy;
mod s3;
mod sdk;
pub mod tls;
mod xml;

use std::future::Future;

use chrono::{DateTime, Utc};

pub use any::AnyStore;
pub use connect::Connector;
pub use error::{ErrorKind, Operation, StoreError};
pub use glacier::GlacierStore;
pub use s3::S3Store;

/// An incomplete multipart upload as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upload {
    /// Object key.
    pub key: String,
    /// Upload id.
    pub upload_id: String,
    /// When the upload was initiated; `None` when the server gave no readable time.
    pub initiated: Option<DateTime<Utc>>,
    /// The size of every part but the last, where the store fixes one (a Glacier vault's).
    pub part_size: Option<u64>,
}

/// Where the next ListMultipartUploads page starts, exactly as the server returned it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Marker {
    /// `NextKeyMarker`.
    pub key: String,
    /// `NextUploadIdMarker`, absent when the server omitted it (Garage does at key boundaries).
    pub upload_id: Option<String>,
}

/// An entry of a listing page that could not be read (a field missing, not a date, or holding a
/// character XML cannot carry): kept and reported, never acted on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unreadable {
    /// The key as it came (possibly empty or garbled).
    pub key: String,
    /// The upload id as it came (possibly empty or garbled).
    pub upload_id: String,
    /// Which field, and what it held.
    pub problem: String,
}

/// The most entries one ListMultipartUploads or ListParts page is asked for (`max-uploads` and
/// `max-parts` cannot ask for more).
pub const MAX_PAGE_ENTRIES: usize = 1_000;
/// The most entries read from one page of a store that gives more than S3's default 1,000 (the
/// janitor sends no `max-uploads` or `max-parts`, and the JuiceFS gateway then pages 10,000, as
/// MinIO does: 2,150 uploads in one page, an upload's 1,100 parts in one): such a page is served as long as it fits this and the answer's byte bound,
/// which is what protects memory. ListParts keeps the protocol's 10,000 parts an upload.
pub const MAX_GENEROUS_PAGE: usize = 10_000;
/// The most parts an upload can have, and the highest part number.
pub const MAX_PARTS: usize = 10_000;

/// One page of ListMultipartUploads.
#[derive(Clone, Debug, Default)]
pub struct UploadPage {
    /// The uploads of this page, in the server's order (not necessarily by key).
    pub uploads: Vec<Upload>,
    /// Entries that could not be read.
    pub unreadable: Vec<Unreadable>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Marker>,
    /// The store's clock when it answered (its `Date` header), when it sent a readable one.
    pub server_date: Option<DateTime<Utc>>,
    /// The store's `Server` header, which names some stores that cannot list (MinIO), as
    /// [`server_named`] reads it.
    pub server: Option<String>,
}

/// Added by [`server_named`] to a `Server` header naming MinIO on an answer without
/// `X-Content-Type-Options`. MinIO has sent that header on every answer since
/// RELEASE.2021-07-21T22-15-23Z (minio/minio PR #12256); the JuiceFS S3 gateway, MinIO's gateway
/// code of February 2021 serving a JuiceFS volume, sends `Server: MinIO` and otherwise the very
/// same headers, but does list uploads bucket-wide. Such an answer comes from JuiceFS or from a
/// MinIO older than July 2021: nothing in a listing tells those two apart.
pub const MINIO_WITHOUT_NOSNIFF: &str = "without X-Content-Type-Options";

/// The store as a ListMultipartUploads answer names it: its `Server` header as sent, followed by
/// `, ` and [`MINIO_WITHOUT_NOSNIFF`] when that names MinIO and `X-Content-Type-Options` is absent.
pub(crate) fn server_named(server: Option<&str>, content_type_options: bool) -> Option<String> {
    let server = server?;
    Some(
        if server.to_ascii_lowercase().contains("minio") && !content_type_options {
            format!("{server}, {MINIO_WITHOUT_NOSNIFF}")
        } else {
            server.to_string()
        },
    )
}

/// One part of an upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// Part number, 1..=10000.
    pub number: i32,
    /// ETag as returned (quotes included).
    pub etag: String,
    /// Size in bytes.
    pub size: u64,
    /// When the part was uploaded.
    pub last_modified: Option<DateTime<Utc>>,
}

/// What ListParts found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parts {
    /// The server answered NoSuchUpload: the upload and its parts are gone.
    Gone,
    /// The upload exists with these parts (possibly none).
    Listed(Vec<Part>),
}

/// What AbortMultipartUpload answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aborted {
    /// 204: the server accepted the abort.
    Accepted,
    /// NoSuchUpload: someone else completed or aborted it, or an earlier abort of ours took effect.
    NoSuchUpload,
    /// 412 to a conditional abort (a directory bucket's `If-Match-Initiated-Time`): the upload
    /// under this id is not the one judged (replaced by a newer one), and nothing was aborted.
    InitiatedTimeChanged,
}

/// Truncated pages in a row that bring nothing (no upload, no part) before a listing is refused
/// (seaweedfs#1407: an empty page marked truncated; a store that did it for ever would hold the
/// target for ever).
pub const MAX_EMPTY_PAGES: u32 = 10;

/// What the sweep needs from a store of multipart uploads.
pub trait UploadStore: Send + Sync + 'static {
    /// The bucket (or vault) this store addresses.
    fn bucket(&self) -> &str;

    /// One page of incomplete uploads under `prefix`, starting after `marker`.
    fn list_uploads(
        &self,
        prefix: &str,
        marker: Option<&Marker>,
    ) -> impl Future<Output = Result<UploadPage, StoreError>> + Send;

    /// Every part of an upload (all pages), or [`Parts::Gone`].
    fn list_parts(
        &self,
        key: &str,
        upload_id: &str,
    ) -> impl Future<Output = Result<Parts, StoreError>> + Send;

    /// Aborts an upload, the one initiated at `initiated` (the time the decision judged): a store
    /// that can make the abort conditional on it does (a directory bucket's
    /// `If-Match-Initiated-Time`), and answers [`Aborted::InitiatedTimeChanged`] when it differs.
    fn abort(
        &self,
        key: &str,
        upload_id: &str,
        initiated: Option<DateTime<Utc>>,
    ) -> impl Future<Output = Result<Aborted, StoreError>> + Send;

    /// The bucket's lifecycle rules (none when it has no lifecycle configuration), for the audit
    /// of [`crate::lifecycle`]; `None` for a kind of store that has no lifecycle rules at all (a
    /// Glacier vault): then there is no audit.
    fn lifecycle_rules(
        &self,
    ) -> impl Future<Output = Option<Result<Vec<crate::lifecycle::Rule>, StoreError>>> + Send {
        std::future::ready(None)
    }

    /// When the bucket was created, as the store's bucket listing says, so that an upload the
    /// store says began earlier is not believed; `None` where that date is not to be trusted or
    /// cannot be had (AWS moves a bucket's `CreationDate` when its policy is edited; an access
    /// point or a vault has none in ListBuckets).
    fn bucket_created(
        &self,
    ) -> impl Future<Output = Option<Result<DateTime<Utc>, StoreError>>> + Send {
        std::future::ready(None)
    }

    /// Whether the listing's markers are ordered (S3's key markers), so that one going back is a
    /// protocol error; an opaque marker (a Glacier vault's) is only checked for repeating.
    fn ordered_markers(&self) -> bool {
        true
    }

    /// Throttling answers (SlowDown and the like, retried or not) received so far from this
    /// store's endpoint, by every store sharing it: the sweep's concurrency limit backs off when it
    /// grows. A store that cannot tell answers 0.
    fn throttled(&self) -> u64 {
        0
    }
}

/// One page of ListParts, as either request path reads it.
#[derive(Debug, Default)]
pub(crate) struct PartsPage {
    pub(crate) parts: Vec<Part>,
    pub(crate) truncated: bool,
    pub(crate) next: Option<String>,
}

/// A ListMultipartUploads answer as both request paths read it: the body through the strict
/// reader ([`xml`]), the markers through [`next_marker`], and the store's clock from its `Date`.
fn read_uploads_page(
    body: &[u8],
    date: Option<&str>,
    server: Option<&str>,
) -> Result<UploadPage, StoreError> {
    let page = xml::parse_list_uploads(body).map_err(|e| {
        StoreError::protocol(
            Operation::ListUploads,
            format!("unreadable ListMultipartUploads answer: {e}"),
        )
    })?;
    Ok(UploadPage {
        next: next_marker(
            page.truncated,
            page.next_key.as_deref(),
            page.next_upload_id.as_deref(),
        )?,
        uploads: page.uploads,
        unreadable: page.unreadable,
        server_date: date
            .and_then(|d| httpdate::parse_http_date(d).ok())
            .map(DateTime::<Utc>::from),
        server: server.map(str::to_string),
    })
}

/// A ListParts answer as both request paths read it.
fn read_parts_page(body: &[u8]) -> Result<PartsPage, StoreError> {
    xml::parse_list_parts(body).map_err(|e| {
        StoreError::protocol(
            Operation::ListParts,
            format!("unreadable ListParts answer: {e}"),
        )
    })
}

/// Where the next ListMultipartUploads page starts, from a page's `IsTruncated`, `NextKeyMarker` and
/// `NextUploadIdMarker` (empty markers count as absent); a truncated page without a key marker is a
/// protocol error.
fn next_marker(
    truncated: bool,
    key: Option<&str>,
    upload_id: Option<&str>,
) -> Result<Option<Marker>, StoreError> {
    if !truncated {
        return Ok(None);
    }
    let key = key.filter(|k| !k.is_empty()).ok_or_else(|| {
        StoreError::protocol(
            Operation::ListUploads,
            "the server said the listing is truncated but gave no NextKeyMarker",
        )
    })?;
    Ok(Some(Marker {
        key: key.to_string(),
        upload_id: upload_id.filter(|u| !u.is_empty()).map(str::to_string),
    }))
}

fn to_chrono(t: &aws_sdk_s3::primitives::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}
