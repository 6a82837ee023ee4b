//! The S3 endpoint's handle: starting it, its address, and what a test controls and inspects
//! (keys, buckets, seeded uploads, the clock, the fault plan, counters, the request log).

use std::collections::BTreeSet;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, TimeDelta, Utc};
use s3s::service::S3ServiceBuilder;
use tokio::net::TcpListener;

use super::addressing::{VirtualHosts, base_domain};
use super::http::serve_connection;
use super::ops::MemS3;
use super::state::{BucketRec, MemAuth, PartRec, Shared, UploadRec, hex, md5_of};
use super::{
    DEFAULT_REGION, Faults, MAX_OFFSET_MS, PartSnapshot, RequestRecord, Stats, UploadSnapshot,
};
use crate::handle::{Core, Handle};
use crate::serve::{Server, clamp_time};

/// Handle of a running in-memory S3 endpoint: a [`Handle`], with the S3 methods below.
pub type Endpoint = Handle<Shared>;

impl Core for Shared {
    type Faults = Faults;
    /// See [`Endpoint::record_requests`]: the S3 endpoint logs only while asked to.
    type Request = RequestRecord;
    const NAME: &'static str = "Endpoint";

    async fn launch(addr: SocketAddr, access_key: &str, secret_key: &str) -> io::Result<Endpoint> {
        Endpoint::launch_with(addr, access_key, secret_key, None).await
    }

    fn with_faults<R>(&self, edit: impl FnOnce(&mut Faults) -> R) -> R {
        edit(&mut self.faults.lock())
    }

    fn stats(&self) -> Stats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let st = self.state.lock();
        Stats {
            requests: get(&c.requests),
            create_multipart_upload: get(&c.create_multipart_upload),
            upload_part: get(&c.upload_part),
            list_multipart_uploads: get(&c.list_multipart_uploads),
            list_parts: get(&c.list_parts),
            abort_multipart_upload: get(&c.abort_multipart_upload),
            aborts_removed: get(&c.aborts_removed),
            aborts_swallowed: get(&c.aborts_swallowed),
            aborts_by_key: st.aborts_by_key.clone(),
            aborts_by_upload_id: st.aborts_by_upload_id.clone(),
            slowdown_faults: get(&c.slowdown_faults),
            reset_faults: get(&c.reset_faults),
            access_denied_faults: get(&c.access_denied_faults),
            skewed_faults: get(&c.skewed_faults),
            throttled: get(&c.throttled),
            throttle_admitted: get(&c.throttle_admitted),
            list_buckets: get(&c.list_buckets),
            get_bucket_tagging: get(&c.get_bucket_tagging),
            requests_by_access_key: st.requests_by_access_key.clone(),
            ..Stats::default()
        }
    }

    fn requests(&self) -> Vec<RequestRecord> {
        self.log.lock().records()
    }
}

impl Endpoint {
    /// Like [`Endpoint::start`], and also serves virtual-hosted-style requests under the base
    /// domain `domain` (e.g. `s3.test`): a request whose `Host` is
    /// `reports-123456789012.s3.test:PORT` addresses bucket `reports-123456789012` (the port,
    /// and the case of the domain, do not matter). A `Host` equal to the domain, an IP address
    /// or any other name is path style, as on [`Endpoint::start`]'s endpoints.
    ///
    /// No name resolves to the endpoint: give its [`Endpoint::url`] to the client as its HTTP
    /// proxy (requests then come in absolute form, which is served like origin form, and
    /// `Proxy-Authorization` is ignored) and [`Endpoint::domain_url`] as its S3 endpoint.
    ///
    /// # Errors
    /// Fails if `domain` is not a domain name (a port in it included) or if the listener
    /// cannot be bound.
    pub async fn start_with_domain(
        access_key: &str,
        secret_key: &str,
        domain: &str,
    ) -> io::Result<Endpoint> {
        Self::start_on_with_domain(
            SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            access_key,
            secret_key,
            domain,
        )
        .await
    }

    /// [`Endpoint::start_with_domain`] listening on `addr` (port 0 picks a free port).
    ///
    /// # Errors
    /// Fails if `domain` is not a domain name or if the listener cannot be bound.
    pub async fn start_on_with_domain(
        addr: SocketAddr,
        access_key: &str,
        secret_key: &str,
        domain: &str,
    ) -> io::Result<Endpoint> {
        Self::launch_with(addr, access_key, secret_key, Some(domain)).await
    }

    async fn launch_with(
        addr: SocketAddr,
        access_key: &str,
        secret_key: &str,
        domain: Option<&str>,
    ) -> io::Result<Endpoint> {
        let domain = domain.map(base_domain).transpose()?;
        let listener = TcpListener::bind(addr).await?;
        let mut shared = Shared::new();
        shared.domain.clone_from(&domain);
        let shared = Arc::new(shared);
        shared
            .keys
            .secrets
            .lock()
            .insert(access_key.to_owned(), secret_key.to_owned());

        let mut builder = S3ServiceBuilder::new(MemS3 {
            shared: Arc::clone(&shared),
        });
        builder.set_auth(MemAuth {
            keys: Arc::clone(&shared.keys),
        });
        if let Some(domain) = domain {
            builder.set_host(VirtualHosts { domain });
        }
        // The 15-minute window is checked in `handle` against the endpoint's own clock, which
        // `Faults::clock_ahead` can move.
        let mut config = s3s::config::S3Config::default();
        config.presigned_url_max_skew_time_secs = u32::MAX;
        builder.set_config(Arc::new(s3s::config::StaticConfigProvider::new(Arc::new(
            config,
        ))));
        let service = builder.build();

        let conn_shared = Arc::clone(&shared);
        let server = Server::serve(listener, "s3 endpoint", move |stream, shutdown| {
            serve_connection(stream, Arc::clone(&conn_shared), service.clone(), shutdown)
        })?;
        Ok(Endpoint { shared, server })
    }

    /// Base domain of virtual-hosted-style requests (lowercase), for an endpoint started with
    /// [`Endpoint::start_with_domain`].
    #[must_use]
    pub fn domain(&self) -> Option<&str> {
        self.shared.domain.as_deref()
    }

    /// S3 endpoint URL under the base domain, e.g. `http://s3.test:40123`, for a client that
    /// reaches the endpoint through [`Endpoint::url`] as its proxy; `None` without a domain.
    #[must_use]
    pub fn domain_url(&self) -> Option<String> {
        let domain = self.shared.domain.as_deref()?;
        Some(format!("http://{domain}:{}", self.server.addr().port()))
    }

    /// Turns the request log on or off (it starts off): while on, every HTTP request that
    /// reaches the endpoint's handler is recorded on arrival, faulted and rejected ones
    /// included, and its status filled in once answered; see [`Endpoint::requests`].
    /// Turning it off keeps what was recorded.
    pub fn record_requests(&self, on: bool) {
        self.shared.recording.store(on, Ordering::Relaxed);
    }

    /// Forgets the recorded requests (recording stays as it was; a request in flight is not
    /// recorded again when answered).
    pub fn reset_requests(&self) {
        self.shared.log.lock().clear();
    }

    /// Sets the offset added to the real clock when stamping `Initiated` and part
    /// `LastModified` (negative backdates). Clamped to about ±100 years, millisecond
    /// precision. Does not affect signature time checks.
    pub fn set_clock_offset(&self, offset: TimeDelta) {
        let ms = offset
            .num_milliseconds()
            .clamp(-MAX_OFFSET_MS, MAX_OFFSET_MS);
        self.shared.clock_offset_ms.store(ms, Ordering::Relaxed);
    }

    /// Current clock offset.
    #[must_use]
    pub fn clock_offset(&self) -> TimeDelta {
        TimeDelta::milliseconds(self.shared.clock_offset_ms.load(Ordering::Relaxed))
    }

    /// The endpoint's notion of "now" (real clock plus offset).
    #[must_use]
    pub fn now(&self) -> DateTime<Utc> {
        self.shared.now()
    }

    /// Accepts requests signed with this key pair too, from now on (replaces the secret of a
    /// known access key).
    pub fn add_key(&self, access_key: &str, secret_key: &str) {
        self.shared
            .keys
            .secrets
            .lock()
            .insert(access_key.to_owned(), secret_key.to_owned());
    }

    /// Sets the lookup asked for the secret of an access key the endpoint does not know yet
    /// (replacing any previous one), e.g. the temporary keys a real STS issued.
    ///
    /// It runs on tokio's blocking pool, so it may block (a lookup over HTTP). A secret it
    /// finds is kept, so it is asked once per key; a key it does not find (`None`) is asked
    /// again next time, and the request answers `403 NotSignedUp`, as for any unknown key.
    pub fn set_key_lookup(&self, lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static) {
        *self.shared.keys.lookup.lock() = Some(Arc::new(lookup));
    }

    /// Creates a bucket in `us-east-1` directly in memory (no name validation); does nothing
    /// if it already exists.
    pub fn create_bucket(&self, name: &str) {
        self.create_bucket_in(name, DEFAULT_REGION);
    }

    /// Creates a bucket in `region` directly in memory (no validation); does nothing if it
    /// already exists (its region stays).
    pub fn create_bucket_in(&self, name: &str, region: &str) {
        let now = self.shared.now();
        self.shared
            .state
            .lock()
            .buckets
            .entry(name.to_owned())
            .or_insert_with(|| BucketRec::new(now, region));
    }

    /// Replaces the tag set of `bucket` with `tags` (key, value); an empty slice removes it,
    /// so `GetBucketTagging` answers `NoSuchTagSet`. Does nothing if the bucket does not exist.
    pub fn set_bucket_tags(&self, bucket: &str, tags: &[(&str, &str)]) {
        if let Some(rec) = self.shared.state.lock().buckets.get_mut(bucket) {
            rec.tags = tags
                .iter()
                .map(|&(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
        }
    }

    /// Sets the creation date ListBuckets gives for `bucket`, whatever its uploads say: a store
    /// whose `Initiated` cannot be true (moto's fixed 2010 date) is played by seeding an old upload
    /// and then dating the bucket after it. Does nothing if the bucket does not exist.
    pub fn set_bucket_created(&self, bucket: &str, created: DateTime<Utc>) {
        if let Some(rec) = self.shared.state.lock().buckets.get_mut(bucket) {
            rec.created = clamp_time(created);
        }
    }

    /// Deletes `bucket` and all its uploads at once (as if another client had emptied and
    /// deleted it); later requests on it answer `NoSuchBucket`. Returns whether it existed.
    pub fn delete_bucket(&self, name: &str) -> bool {
        self.shared.state.lock().buckets.remove(name).is_some()
    }

    /// Regions of the `SigV4` credential scopes of the authenticated requests made on `bucket`
    /// (whether it exists or not), since the start or [`Endpoint::reset_stats`]; `ListBuckets`
    /// is on no bucket and not counted. A janitor that signs for each bucket's own region
    /// leaves exactly that region here.
    #[must_use]
    pub fn signing_regions(&self, bucket: &str) -> BTreeSet<String> {
        self.shared
            .state
            .lock()
            .signing_regions
            .get(bucket)
            .cloned()
            .unwrap_or_default()
    }

    /// Inserts a multipart upload directly in memory (no HTTP), creating the bucket (in
    /// `us-east-1`) if needed, and returns its upload id.
    ///
    /// `parts` are `(part number, size)`; each part gets `LastModified = initiated` and a
    /// deterministic stand-in `ETag` (the MD5 of `"{upload_id}/{number}/{size}"`, as no
    /// body exists). Part numbers outside 1..=10000 are ignored.
    pub fn seed_upload(
        &self,
        bucket: &str,
        key: &str,
        initiated: DateTime<Utc>,
        parts: &[(u32, u64)],
    ) -> String {
        let initiated = clamp_time(initiated);
        let upload_id = self.shared.new_upload_id();
        let mut upload = UploadRec::new(initiated);
        for &(number, size) in parts {
            if !(1..=10_000).contains(&number) {
                continue;
            }
            let etag = md5_of(format!("{upload_id}/{number}/{size}").as_bytes());
            upload.parts.insert(
                number,
                PartRec {
                    size,
                    etag,
                    last_modified: initiated,
                },
            );
        }
        let now = self.shared.now();
        let mut st = self.shared.state.lock();
        let rec = st
            .buckets
            .entry(bucket.to_owned())
            .or_insert_with(|| BucketRec::new(now, DEFAULT_REGION));
        // A store cannot hold an upload older than its bucket: seeding one moves the bucket's
        // creation back (see [`Endpoint::set_bucket_created`] to play a store that lies).
        rec.created = rec.created.min(initiated);
        rec.uploads
            .insert((key.to_owned(), upload_id.clone()), upload);
        upload_id
    }

    /// Sets every counter back to zero and forgets the [`Endpoint::signing_regions`] seen
    /// (state and faults are untouched).
    pub fn reset_stats(&self) {
        let c = &self.shared.counters;
        for a in [
            &c.requests,
            &c.create_multipart_upload,
            &c.upload_part,
            &c.list_multipart_uploads,
            &c.list_parts,
            &c.abort_multipart_upload,
            &c.aborts_removed,
            &c.aborts_swallowed,
            &c.slowdown_faults,
            &c.reset_faults,
            &c.access_denied_faults,
            &c.skewed_faults,
            &c.throttled,
            &c.throttle_admitted,
            &c.list_buckets,
            &c.get_bucket_tagging,
        ] {
            a.store(0, Ordering::Relaxed);
        }
        let mut st = self.shared.state.lock();
        st.aborts_by_key.clear();
        st.aborts_by_upload_id.clear();
        st.requests_by_access_key.clear();
        st.signing_regions.clear();
    }

    /// Names of the existing buckets, sorted.
    #[must_use]
    pub fn buckets(&self) -> Vec<String> {
        self.shared.state.lock().buckets.keys().cloned().collect()
    }

    /// Uploads of `bucket` in listing order (key, then upload id); empty if the bucket
    /// does not exist.
    #[must_use]
    pub fn uploads(&self, bucket: &str) -> Vec<UploadSnapshot> {
        let st = self.shared.state.lock();
        let Some(rec) = st.buckets.get(bucket) else {
            return Vec::new();
        };
        rec.uploads
            .iter()
            .map(|((key, upload_id), up)| UploadSnapshot {
                key: key.clone(),
                upload_id: upload_id.clone(),
                initiated: up.initiated,
                parts: up
                    .parts
                    .iter()
                    .map(|(&part_number, p)| PartSnapshot {
                        part_number,
                        size: p.size,
                        etag: format!("\"{}\"", hex(&p.etag)),
                        last_modified: p.last_modified,
                    })
                    .collect(),
            })
            .collect()
    }

    /// Number of uploads in `bucket` (0 if it does not exist).
    #[must_use]
    pub fn upload_count(&self, bucket: &str) -> usize {
        self.shared
            .state
            .lock()
            .buckets
            .get(bucket)
            .map_or(0, |b| b.uploads.len())
    }

    /// Total number of parts over all uploads of `bucket`.
    #[must_use]
    pub fn part_count(&self, bucket: &str) -> usize {
        let st = self.shared.state.lock();
        st.buckets
            .get(bucket)
            .map_or(0, |b| b.uploads.values().map(|u| u.parts.len()).sum())
    }
}
