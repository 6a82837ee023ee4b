//! One value for a store of any kind, so the sweep is written (and compiled) once: an S3 bucket
//! (either request path, a directory bucket included) or a Glacier vault.

use chrono::{DateTime, Utc};

use super::{Aborted, GlacierStore, Marker, Parts, S3Store, StoreError, UploadPage, UploadStore};

/// A store of any kind.
pub enum AnyStore {
    /// An S3 bucket, access point or directory bucket.
    S3(Box<S3Store>),
    /// An S3 Glacier vault.
    Glacier(GlacierStore),
}

impl UploadStore for AnyStore {
    fn bucket(&self) -> &str {
        match self {
            AnyStore::S3(s) => s.bucket(),
            AnyStore::Glacier(s) => s.bucket(),
        }
    }

    async fn list_uploads(
        &self,
        prefix: &str,
        marker: Option<&Marker>,
    ) -> Result<UploadPage, StoreError> {
        match self {
            AnyStore::S3(s) => s.list_uploads(prefix, marker).await,
            AnyStore::Glacier(s) => s.list_uploads(prefix, marker).await,
        }
    }

    async fn list_parts(&self, key: &str, upload_id: &str) -> Result<Parts, StoreError> {
        match self {
            AnyStore::S3(s) => s.list_parts(key, upload_id).await,
            AnyStore::Glacier(s) => s.list_parts(key, upload_id).await,
        }
    }

    async fn abort(
        &self,
        key: &str,
        upload_id: &str,
        initiated: Option<DateTime<Utc>>,
    ) -> Result<Aborted, StoreError> {
        match self {
            AnyStore::S3(s) => s.abort(key, upload_id, initiated).await,
            AnyStore::Glacier(s) => s.abort(key, upload_id, initiated).await,
        }
    }

    async fn lifecycle_rules(&self) -> Option<Result<Vec<crate::lifecycle::Rule>, StoreError>> {
        match self {
            AnyStore::S3(s) => s.lifecycle_rules().await,
            AnyStore::Glacier(s) => s.lifecycle_rules().await,
        }
    }

    async fn bucket_created(&self) -> Option<Result<DateTime<Utc>, StoreError>> {
        match self {
            AnyStore::S3(s) => s.bucket_created().await,
            AnyStore::Glacier(s) => s.bucket_created().await,
        }
    }

    fn ordered_markers(&self) -> bool {
        match self {
            AnyStore::S3(s) => s.ordered_markers(),
            AnyStore::Glacier(s) => s.ordered_markers(),
        }
    }

    fn throttled(&self) -> u64 {
        match self {
            AnyStore::S3(s) => s.throttled(),
            AnyStore::Glacier(s) => s.throttled(),
        }
    }
}
