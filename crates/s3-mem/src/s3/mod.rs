//! The S3 endpoint ([`Endpoint`]): a small, fast, *honest* subset of the S3 REST protocol on a
//! local TCP port, so that the janitor can be exercised end to end with real SigV4-signed
//! requests and no external service.
//!
//! - protocol parsing, XML rendering and `SigV4` verification are delegated to [`s3s`];
//!   requests are served by hyper 1 (HTTP/1.1) on a tokio listener, path-style addressing
//!   (and virtual-hosted style under a base domain: [`Endpoint::start_with_domain`]; requests
//!   in absolute form, as sent to an HTTP proxy, are served like origin-form ones, so a test
//!   can make the endpoint its client's proxy and need no DNS), an optional log of every
//!   request ([`Endpoint::record_requests`]), any signing region (a request signed for
//!   another region than its bucket's is served, and the region recorded:
//!   [`Endpoint::signing_regions`]);
//! - keys: the start key, keys added at runtime ([`Endpoint::add_key`]) and secrets asked
//!   of a lookup for unknown access keys ([`Endpoint::set_key_lookup`], e.g. temporary
//!   keys issued by a real STS; `x-amz-security-token` is accepted as a signed header and
//!   not checked itself);
//! - operations: `CreateBucket`, `HeadBucket` (with `x-amz-bucket-region`),
//!   `GetBucketLocation`, `ListBuckets` (`max-buckets`, `continuation-token`, `prefix`,
//!   `bucket-region`, a `BucketRegion` per bucket), `GetBucketTagging`,
//!   `GetBucketLifecycleConfiguration` (always none), `CreateMultipartUpload`,
//!   `UploadPart` (only the size and the MD5 `ETag` of each part are kept, never the
//!   bytes), `ListMultipartUploads`, `ListParts` and `AbortMultipartUpload`; anything
//!   else answers `NotImplemented`;
//! - buckets live in a region ([`Endpoint::create_bucket_in`]), carry tags
//!   ([`Endpoint::set_bucket_tags`]) and can vanish mid-run ([`Endpoint::delete_bucket`]);
//! - a controllable clock ([`Endpoint::set_clock_offset`]) that stamps `Initiated` and
//!   part `LastModified`, so old uploads can be seeded honestly through the protocol;
//! - runtime fault plans ([`Faults`]): straggling or never-emptying aborts, random
//!   `503 SlowDown`, an S3-like request rate limit per prefix partition ([`Throttle`]),
//!   random connection resets, added latency, clock skew, `AccessDenied` buckets, a denied
//!   lifecycle read, denied bucket tagging reads, short `ListBuckets` pages;
//! - counters ([`Stats`], requests per access key included) and state inspection
//!   ([`Endpoint::uploads`]) for assertions, plus direct in-memory seeding
//!   ([`Endpoint::seed_upload`]) for large scenes.
//!
//! State lives in ordered maps behind one mutex; uploads of a bucket are keyed by
//! `(key, upload id)` so every `ListMultipartUploads` page is a range query.
//!
//! Its parts: `endpoint` (the handle), `faults` (the plan and how a request's fault is
//! decided), `state` (buckets, keys, counters), `addressing` (virtual hosts, proxy targets),
//! `ops` (the operations, on s3s), `http` (connections and connection-level faults),
//! `model` (counters and snapshots handed out); `tests` beside them.

mod addressing;
mod endpoint;
mod faults;
mod http;
mod model;
mod ops;
mod state;
#[cfg(test)]
mod tests;

use std::sync::Arc;

pub use endpoint::Endpoint;
pub use faults::{Faults, Throttle};
pub use model::{PartSnapshot, RequestRecord, UploadSnapshot};

use crate::Stats;

/// Largest page S3 returns for `ListMultipartUploads` and `ListParts`.
const MAX_PAGE: i32 = 1000;
/// Largest clock offset accepted by [`Endpoint::set_clock_offset`] (about 100 years).
const MAX_OFFSET_MS: i64 = 100 * 366 * 24 * 3600 * 1000;
/// Region of buckets created without one.
const DEFAULT_REGION: &str = "us-east-1";
/// Largest `max-buckets` S3 accepts, and its page size when a `ListBuckets` parameter is given
/// without `max-buckets`.
const MAX_BUCKETS: usize = 10_000;

type StdError = Box<dyn std::error::Error + Send + Sync + 'static>;
type HttpResponse = hyper::Response<s3s::Body>;
/// See [`Endpoint::set_key_lookup`].
type KeyLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync + 'static>;
