//! `doctor`: contacts each target read-only and says what the first hour needs to know, one line
//! a check (`ok`, `warn`, `fail`, `skip`), the finding, and what to do when it is not ok. Where
//! `check-config` proves the configuration offline, `doctor` proves the store: the credentials
//! and their account, the bucket's region, whether listing uploads and reading lifecycle rules are
//! allowed, the store's name and clock, whether its listing is blind, and the replicas' lease.
//!
//! # Read-only, and how
//!
//! Every call is a read: STS GetCallerIdentity (AWS only), HeadBucket (then GetBucketLocation
//! when it names no region), one ListMultipartUploads
//! page, GetBucketLifecycleConfiguration, GetObject of the target's lease object, and for a
//! discovery rule ListBuckets (with GetBucketTagging and HeadBucket of the buckets it matches, as
//! discovery does). Nothing is created, written or aborted: no ListParts, no abort, no PutObject.
//!
//! **The lease's conditional writes are not probed.** The only proof that a store enforces them
//! is a write: the lease probe ([`crate::run::lease::Leases::probe`]) puts a probe object four
//! times (unconditionally, then with `If-None-Match: *`, its own `If-Match` and a wrong one) and
//! deletes it. A diagnosis that writes to a production bucket is not one an operator can run
//! without a second thought, so doctor reads the target's lease object (which proves the lease
//! bucket is reachable and readable) and reports `conditional_writes` as `skip`, saying why and
//! where the verdict comes from instead: the first `once` or `run` probes, and a store that
//! ignores the conditions is reported `lease.status: unsupported` and logged `COORDINATION IS OFF`.
//!
//! # What is reused
//!
//! Every call goes through what a sweep uses, so what doctor sees is what the sweep will see: the
//! store of [`crate::run::connect`] (same request path, signing and strict XML reader), the
//! connector's credentials cache and STS ([`Connector::credentials`],
//! [`Connector::caller_identity`]), discovery's region lookup
//! ([`crate::store::buckets::Buckets::region`]) and expansion ([`discover::expand`]), the error
//! classification and hints of [`crate::store::error`], the sweep's clock decision
//! ([`policy::choose_now`]) and blind-store test ([`crate::sweep::blind_store`]), the lifecycle
//! audit ([`lifecycle::audit`]) and the lease's read ([`Leases::read`]). The listing check sends the
//! sweep's own first request (a page of up to 1,000 uploads) rather than a `max-uploads=1` variant
//! the sweep never sends: it proves the exact request the sweep depends on.
//!
//! The verdicts are pure functions of what the store answered (`*_check`), unit-tested below.
//! A `fail` anywhere makes the exit code 1 (a target that would fail its sweep); `warn` and
//! `skip` do not.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use serde::Serialize;

use crate::config::{Config, Kind, Settings, Target};
use crate::discover::{self, Scope};
use crate::exit::Exit;
use crate::lifecycle::{self, Rule};
use crate::policy::{self, ClockSource};
use crate::run::lease::{Current, Leases, target_id};
use crate::store::{Connector, ErrorKind, StoreError, UploadPage, UploadStore};

/// How a check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// As it should be.
    Ok,
    /// The sweep will work, but something deserves a look.
    Warn,
    /// The sweep of this target would fail (or see nothing): exit code 1.
    Fail,
    /// Not checked here; the finding says why.
    Skip,
}

impl Status {
    /// The word shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Skip => "skip",
        }
    }
}

/// One check of one target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was checked: `credentials`, `account`, `region`, `listing`, `server`, `clock`,
    /// `blind`, `lifecycle`, `lease`, `conditional_writes`, `discovery`.
    pub check: &'static str,
    /// How it came out.
    pub status: Status,
    /// What was found.
    pub finding: String,
    /// What to do, when it is not ok.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    fn new(check: &'static str, status: Status, finding: impl Into<String>) -> Self {
        Check {
            check,
            status,
            finding: finding.into(),
            fix: None,
        }
    }

    fn ok(check: &'static str, finding: impl Into<String>) -> Self {
        Check::new(check, Status::Ok, finding)
    }

    fn skip(check: &'static str, finding: impl Into<String>) -> Self {
        Check::new(check, Status::Skip, finding)
    }

    fn with_fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }
}

/// The checks of one target.
#[derive(Clone, Debug, Serialize)]
pub struct TargetChecks {
    /// The target's name as in reports (bucket, ARN, `vault:NAME`, `*`).
    pub target: String,
    /// `bucket`, `vault` or `discovery`.
    pub kind: &'static str,
    /// Its prefix.
    pub prefix: String,
    /// The endpoint: its `endpoint_url`, or `AWS`.
    pub endpoint: String,
    /// The region it is signed for.
    pub region: String,
    /// The checks, in order.
    pub checks: Vec<Check>,
}

/// What doctor found, target by target.
#[derive(Clone, Debug, Serialize)]
pub struct Doctor {
    /// One entry per target of this shard, in configuration order.
    pub targets: Vec<TargetChecks>,
    /// Checks `ok`.
    pub ok: usize,
    /// Checks `warn`.
    pub warn: usize,
    /// Checks `fail`.
    pub fail: usize,
    /// Checks `skip`.
    pub skip: usize,
}

impl Doctor {
    fn new(targets: Vec<TargetChecks>) -> Self {
        let count = |s: Status| {
            targets
                .iter()
                .flat_map(|t| &t.checks)
                .filter(|c| c.status == s)
                .count()
        };
        Doctor {
            ok: count(Status::Ok),
            warn: count(Status::Warn),
            fail: count(Status::Fail),
            skip: count(Status::Skip),
            targets,
        }
    }

    /// 0 when every check is ok, warn or skip; 1 when one failed.
    pub fn exit(&self) -> Exit {
        if self.fail > 0 {
            Exit::Failed
        } else {
            Exit::Clean
        }
    }
}

/// Checks every target of `config` (this shard's), `[daemon] parallel_targets` at a time.
pub async fn run(config: &Config, connector: &Connector) -> Doctor {
    let leases = match config.coordination.location() {
        None => None,
        Some(at) => Some(
            connector
                .client(&config.defaults.client())
                .await
                .map(|client| {
                    Leases::new(
                        client,
                        at.bucket,
                        at.prefix,
                        config.coordination.lease_ttl.0,
                        config.coordination.holder(),
                    )
                })
                .map_err(|e| e.to_string()),
        ),
    };
    let scope = Scope::of(config);
    let (leases, scope, targets) = (&leases, &scope, &config.targets);
    // By index: a closure taking `&Target` cannot be proven Send where main spawns this
    // (rust-lang/rust#102211), as in run/targets.rs.
    let targets = futures::stream::iter(0..targets.len())
        .map(|i| target(&targets[i], connector, leases, scope))
        .buffered(config.daemon.parallel_targets.max(1))
        .collect()
        .await;
    Doctor::new(targets)
}

async fn target(
    t: &Target,
    connector: &Connector,
    leases: &Option<Result<Leases, String>>,
    scope: &Scope,
) -> TargetChecks {
    let s = &t.settings;
    let kind = match t.kind {
        Kind::Vault(_) => "vault",
        Kind::Discovery(_) => "discovery",
        Kind::Bucket | Kind::Discovered(..) => "bucket",
    };
    TargetChecks {
        target: t.bucket.clone(),
        kind,
        prefix: t.prefix.clone(),
        endpoint: if s.endpoint_url.is_set() {
            s.endpoint_url.to_string()
        } else {
            "AWS".to_string()
        },
        region: s.region.clone(),
        checks: checks(t, connector, leases, scope).await,
    }
}

/// The checks of one target, in the order shown.
async fn checks(
    t: &Target,
    connector: &Connector,
    leases: &Option<Result<Leases, String>>,
    scope: &Scope,
) -> Vec<Check> {
    let s = &t.settings;
    let client = s.client();
    let found = connector.credentials(&client).await;
    if found.is_err() {
        let rest: &[&'static str] = match t.kind {
            Kind::Discovery(_) => &["account", "discovery", "lease"],
            _ => &[
                "account",
                "region",
                "listing",
                "server",
                "clock",
                "blind",
                "lifecycle",
                "lease",
                "conditional_writes",
            ],
        };
        let mut out = vec![credentials_check(s, &found, None)];
        out.extend(
            rest.iter()
                .map(|c| Check::skip(c, "needs credentials (see credentials)")),
        );
        return out;
    }
    let identity = connector.caller_identity(&client).await;
    let mut rest = Vec::new();
    let mut refused: Option<StoreError> = None;
    if let Some(Err(e)) = &identity
        && e.kind == ErrorKind::Credentials
    {
        refused = Some(clone_error(e));
    }
    rest.push(account_check(identity));
    if let Kind::Discovery(_) = &t.kind {
        let (_, reports) = discover::expand(std::slice::from_ref(t), connector, scope).await;
        rest.extend(reports.first().map(discovery_check));
        rest.push(Check::skip(
            "lease",
            "a discovery rule has no lease: each bucket it matches has its own",
        ));
        let mut out = vec![credentials_check(s, &found, refused.as_ref())];
        out.extend(rest);
        return out;
    }
    rest.push(match &t.kind {
        Kind::Vault(_) => Check::skip(
            "region",
            format!(
                "a vault is looked up in region {:?}: the listing fails if it is not there",
                s.region
            ),
        ),
        _ if t.bucket.starts_with("arn:") => Check::skip(
            "region",
            "an ARN names its region: its calls are signed for it",
        ),
        _ => match connector.buckets(&client).await {
            Ok(b) => {
                let region = match b.region(&t.bucket).await {
                    Some(r) => Some(r),
                    None => b.location(&t.bucket).await,
                };
                region_check(&s.region, region.as_deref())
            }
            Err(e) => error_check("region", &e, t),
        },
    });
    let store = crate::run::connect(t, connector).await;
    let page = match &store {
        Ok(store) => store.list_uploads(&t.prefix, None).await,
        Err(e) => Err(clone_error(e)),
    };
    let host = Utc::now();
    match &page {
        Ok(page) => {
            rest.push(listing_check(page));
            rest.push(server_check(page.server.as_deref()));
            rest.push(clock_check(host, page.server_date, s));
            rest.push(blind_check(page));
        }
        Err(e) => {
            if e.kind == ErrorKind::Credentials && refused.is_none() {
                refused = Some(clone_error(e));
            }
            rest.push(error_check("listing", e, t));
            rest.extend(
                ["server", "clock", "blind"]
                    .map(|c| Check::skip(c, "needs a listing answer (see listing)")),
            );
        }
    }
    rest.push(match &store {
        Ok(store) => lifecycle_check(store.lifecycle_rules().await, &t.prefix),
        Err(_) => Check::skip("lifecycle", "needs the store's client (see listing)"),
    });
    rest.extend(lease_checks(t, leases).await);
    let mut out = vec![credentials_check(s, &found, refused.as_ref())];
    out.extend(rest);
    out
}

fn clone_error(e: &StoreError) -> StoreError {
    StoreError {
        operation: e.operation,
        kind: e.kind,
        message: e.message.clone(),
    }
}

/// Where the credentials come from, in the configuration's words.
fn source(s: &Settings) -> String {
    if s.role_arn.is_set() {
        format!("the role {} (assumed)", s.role_arn)
    } else if !s.profile.is_empty() {
        format!("profile {:?}", s.profile)
    } else {
        "the default credential chain".to_string()
    }
}

/// An access key id shown by its first and last four characters: enough to tell keys apart,
/// never the whole key (and never the secret or the session token).
pub fn mask(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

/// Credentials found (or not), and refused by STS or the store (or not).
fn credentials_check(
    s: &Settings,
    found: &Result<aws_credential_types::Credentials, StoreError>,
    refused: Option<&StoreError>,
) -> Check {
    let c = match found {
        Err(e) => {
            return Check::new("credentials", Status::Fail, e.message.clone()).with_fix(format!(
                "give credentials to {}: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile, web identity or instance role",
                source(s)
            ));
        }
        Ok(c) => c,
    };
    let mut what = format!("from {}: access key {}", source(s), mask(c.access_key_id()));
    if c.session_token().is_some() {
        what.push_str(", with a session token");
    }
    if let Some(expiry) = c.expiry() {
        what.push_str(&format!(
            ", expires {}",
            DateTime::<Utc>::from(expiry).format("%Y-%m-%dT%H:%M:%SZ")
        ));
    }
    match refused {
        Some(e) => Check::new(
            "credentials",
            Status::Fail,
            format!("{what}, refused: {}", e.message),
        )
        .with_fix("check the access key and secret (or the role) these credentials come from"),
        None => Check::ok("credentials", what),
    }
}

/// STS's answer: the account, or why it is not known.
fn account_check(identity: Option<Result<(String, String), StoreError>>) -> Check {
    match identity {
        None => Check::skip(
            "account",
            "the store is not AWS (endpoint_url) and no sts_endpoint_url is set: not asked, most S3-compatible stores have no STS",
        ),
        Some(Ok((account, arn))) => Check::ok("account", format!("{account} ({arn})")),
        Some(Err(e)) => Check::new(
            "account",
            Status::Fail,
            format!("STS GetCallerIdentity: {}", e.message),
        )
        .with_fix(fix(e.kind).unwrap_or("see the error: STS must answer for these credentials")),
    }
}

/// The bucket's region as the store reported it, against the configured one.
pub fn region_check(configured: &str, reported: Option<&str>) -> Check {
    match reported {
        None => Check::skip(
            "region",
            format!(
                "the store did not say (neither HeadBucket nor GetBucketLocation): the listing shows whether region {configured:?} is accepted"
            ),
        ),
        Some(r) if r == configured => {
            Check::ok("region", format!("the bucket is in {r:?}, as configured"))
        }
        Some(r) => Check::new(
            "region",
            Status::Fail,
            format!("the bucket is in {r:?}, not in region {configured:?}"),
        )
        .with_fix(format!("set region = {r:?} for this target")),
    }
}

/// The first listing page: the listing is allowed.
pub fn listing_check(page: &UploadPage) -> Check {
    let n = page.uploads.len() + page.unreadable.len();
    let more = if page.next.is_some() {
        ", more follow"
    } else {
        ""
    };
    Check::ok(
        "listing",
        format!(
            "ListMultipartUploads allowed: {n} upload{} on the first page{more}",
            if n == 1 { "" } else { "s" }
        ),
    )
}

/// The store's name, from its `Server` header.
pub fn server_check(server: Option<&str>) -> Check {
    match server {
        Some(s) => Check::ok("server", format!("Server: {s}")),
        None => Check::ok("server", "the store sends no Server header"),
    }
}

/// The store's clock against this host's at the moment its answer arrived, as the sweep will
/// judge it ([`policy::choose_now`]).
pub fn clock_check(host: DateTime<Utc>, server: Option<DateTime<Utc>>, s: &Settings) -> Check {
    let max = s.max_clock_skew;
    let now = match policy::choose_now(host, server, max.0, s.trust_host_clock) {
        Ok(now) => now,
        Err(problem) => {
            return Check::new("clock", Status::Fail, problem)
                .with_fix("set trust_host_clock = true for this target, with this host's clock synchronised (NTP)");
        }
    };
    let Some(skew) = now.skew_seconds else {
        return Check::new(
            "clock",
            Status::Warn,
            "the store sends no usable Date header: ages are measured on this host's clock (trust_host_clock = true)",
        )
        .with_fix("keep this host's clock synchronised (NTP)");
    };
    let (dir, secs) = if skew >= 0 {
        ("ahead of", skew as u64)
    } else {
        ("behind", skew.unsigned_abs())
    };
    let by = humantime::format_duration(Duration::from_secs(secs));
    match now.source {
        ClockSource::Host => Check::ok(
            "clock",
            format!("the store's clock is {by} {dir} this host's (max_clock_skew {max})"),
        ),
        ClockSource::Server => Check::new(
            "clock",
            Status::Warn,
            format!(
                "the store's clock is {by} {dir} this host's, more than max_clock_skew {max}: ages will be measured on the store's clock"
            ),
        )
        .with_fix("synchronise this host's clock (NTP), or the store's"),
    }
}

/// Whether the listing can be trusted to show the uploads: the sweep's own test
/// ([`crate::sweep::blind_store`]) on an empty, complete first page.
pub fn blind_check(page: &UploadPage) -> Check {
    let empty = page.uploads.is_empty() && page.unreadable.is_empty() && page.next.is_none();
    match page.server.as_deref() {
        Some(server) if empty && crate::sweep::blind_store(server) => Check::new(
            "blind",
            Status::Fail,
            format!(
                "the store ({server}) lists incomplete uploads only for an exact key: a listing by prefix sees none, and the sweep fails as blind"
            ),
        )
        .with_fix("use the store's own expiry (MinIO: mc admin config set ALIAS api stale_uploads_expiry=24h)"),
        _ if !empty => Check::ok("blind", "no: the listing shows uploads"),
        _ => Check::ok(
            "blind",
            "no: not a store known to list only exact keys (the listing is empty)",
        ),
    }
}

/// The lifecycle rules: readable, and whether one aborts the target's uploads.
pub fn lifecycle_check(rules: Option<Result<Vec<Rule>, StoreError>>, prefix: &str) -> Check {
    match rules {
        None => Check::skip("lifecycle", "a vault has no lifecycle rules"),
        Some(Ok(rules)) => Check::ok(
            "lifecycle",
            format!(
                "GetBucketLifecycleConfiguration allowed: {}",
                lifecycle::audit(&rules, prefix).describe()
            ),
        ),
        Some(Err(e)) if e.kind == ErrorKind::AccessDenied => Check::new(
            "lifecycle",
            Status::Warn,
            format!("cannot be read: {}", e.message),
        )
        .with_fix("grant s3:GetLifecycleConfiguration on the bucket (without it, the report's lifecycle is \"unknown\")"),
        Some(Err(e)) => Check::new(
            "lifecycle",
            Status::Warn,
            format!("cannot be read: {}", e.message),
        )
        .with_fix(fix(e.kind).unwrap_or("see the error (the sweep is not affected)")),
    }
}

/// The target's lease object (read, never written), and why its conditional writes are not
/// probed (see the module doc).
async fn lease_checks(t: &Target, leases: &Option<Result<Leases, String>>) -> [Check; 2] {
    let Some(leases) = leases else {
        let off = "[coordination] lease is not set: every process sweeps every target (fine for one process)";
        return [
            Check::skip("lease", off),
            Check::skip("conditional_writes", off),
        ];
    };
    let leases = match leases {
        Ok(l) => l,
        Err(e) => {
            return [
                Check::new("lease", Status::Fail, e.clone())
                    .with_fix("fix the [defaults] connection the lease bucket is reached with"),
                not_probed(None),
            ];
        }
    };
    let id = target_id(t.settings.endpoint_url.as_str(), &t.bucket, &t.prefix);
    let object = format!("s3://{}/{}", leases.bucket(), leases.key(&id));
    let read = leases.read(&id).await;
    [lease_check(&object, read), not_probed(Some(leases))]
}

/// What a read of the lease object says.
fn lease_check(object: &str, read: Result<(Current, DateTime<Utc>), StoreError>) -> Check {
    let at = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    match read {
        Ok((Current::Absent, _)) => Check::ok("lease", format!("{object} readable: no lease yet")),
        Ok((Current::Unreadable, _)) => Check::new(
            "lease",
            Status::Warn,
            format!("{object} is not a lease record: the next claim takes it over"),
        )
        .with_fix("leave the lease prefix to mpu-janitor"),
        Ok((Current::Record(r), now)) if r.expires > now => Check::ok(
            "lease",
            format!(
                "{object} readable: held by {} until {}",
                r.holder,
                at(r.expires)
            ),
        ),
        Ok((Current::Record(r), _)) => Check::ok(
            "lease",
            match r.swept_at {
                Some(when) => format!(
                    "{object} readable: free, last swept by {} at {}",
                    r.holder,
                    at(when)
                ),
                None => format!("{object} readable: free (last held by {})", r.holder),
            },
        ),
        Err(e) => Check::new("lease", Status::Fail, format!("{object}: {}", e.message)).with_fix(
            fix(e.kind)
                .unwrap_or("see the error: without the lease every replica sweeps this target"),
        ),
    }
}

fn not_probed(leases: Option<&Leases>) -> Check {
    let probe = leases.map_or("the lease prefix's .probe-TOKEN object".to_string(), |l| {
        format!("s3://{}/{}", l.bucket(), l.key(".probe-TOKEN"))
    });
    Check::skip(
        "conditional_writes",
        format!(
            "not probed: the only proof is a write (the lease probe puts {probe} four times, conditionally, then deletes it) and doctor writes nothing; the first once or run probes, and reports lease.status \"unsupported\" (log: COORDINATION IS OFF) when the store ignores the conditions"
        ),
    )
}

/// A discovery rule's ListBuckets: allowed, and how many buckets it takes.
fn discovery_check(r: &crate::report::DiscoveryReport) -> Check {
    if let Some(e) = &r.error {
        return Check::new("discovery", Status::Fail, e.clone()).with_fix(
            "discovery needs s3:ListAllMyBuckets (and s3:GetBucketTagging with bucket_tags): see deploy/iam/",
        );
    }
    let finding = format!(
        "ListBuckets allowed: {} listed, {} matched ({}), {} not matched, {} in another shard, {} skipped",
        r.buckets_listed,
        r.buckets_matched,
        r.matching,
        r.buckets_not_matched,
        r.buckets_other_shard,
        r.skipped.len()
    );
    if !r.skipped.is_empty() {
        let why: Vec<String> = r
            .skipped
            .iter()
            .map(|s| format!("{}: {}", s.bucket, s.reason))
            .collect();
        return Check::new(
            "discovery",
            Status::Warn,
            format!("{finding} ({})", why.join("; ")),
        )
        .with_fix("a bucket swept by another target is fine; for unreadable tags grant s3:GetBucketTagging");
    }
    if r.buckets_matched == 0 {
        return Check::new("discovery", Status::Warn, finding).with_fix(
            "check include_buckets, exclude_buckets and bucket_tags against the buckets listed",
        );
    }
    Check::ok("discovery", finding)
}

/// A failed call as a `fail` line, with what to do for its kind.
fn error_check(check: &'static str, e: &StoreError, t: &Target) -> Check {
    let what = match (e.kind, &t.kind) {
        (ErrorKind::AccessDenied, Kind::Vault(_)) => Some(
            "grant glacier:ListMultipartUploads, glacier:ListParts and glacier:AbortMultipartUpload on the vault",
        ),
        (ErrorKind::AccessDenied, _) => Some(
            "grant s3:ListBucketMultipartUploads (and, for the sweep, s3:ListMultipartUploadParts and s3:AbortMultipartUpload) on the bucket",
        ),
        (kind, _) => fix(kind),
    };
    Check::new(check, Status::Fail, e.message.clone()).with_fix(what.unwrap_or("see the error"))
}

/// What to do about a failed call of this kind, where the kind says.
fn fix(kind: ErrorKind) -> Option<&'static str> {
    Some(match kind {
        ErrorKind::Credentials => "check the credentials (see credentials)",
        ErrorKind::NoSuchBucket => "check the bucket's name, endpoint_url and region",
        ErrorKind::Timeout | ErrorKind::Network => {
            "check endpoint_url, region, proxy and the network path to the store"
        }
        ErrorKind::Throttled => "the store throttles: run again later",
        ErrorKind::Server => "the store failed: run again later, or ask its operator",
        _ => return None,
    })
}

/// doctor's text: one block per target, one line per check, then the totals.
pub fn render_text(d: &Doctor) -> String {
    let mut out = String::new();
    for t in &d.targets {
        let prefix = if t.prefix.is_empty() {
            String::new()
        } else {
            format!(" prefix {:?}", t.prefix)
        };
        out.push_str(&format!(
            "{} {:?}{prefix} ({}, region {:?})\n",
            t.kind, t.target, t.endpoint, t.region
        ));
        for c in &t.checks {
            let line = format!("  {:<4}  {:<18} {}", c.status.as_str(), c.check, c.finding);
            out.push_str(line.trim_end());
            if let Some(fix) = &c.fix {
                out.push_str(" -> ");
                out.push_str(fix);
            }
            out.push('\n');
        }
        out.push('\n');
    }
    let n = d.targets.len();
    out.push_str(&format!(
        "doctor: {n} target{}: {} ok, {} warn, {} fail, {} skip; nothing was written\n",
        if n == 1 { "" } else { "s" },
        d.ok,
        d.warn,
        d.fail,
        d.skip
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HumanDuration;

    fn page(n: usize, server: Option<&str>, truncated: bool) -> UploadPage {
        UploadPage {
            uploads: (0..n)
                .map(|i| crate::store::Upload {
                    key: format!("k{i}"),
                    upload_id: format!("u{i}"),
                    initiated: None,
                    part_size: None,
                })
                .collect(),
            next: truncated.then(|| crate::store::Marker {
                key: "k".into(),
                upload_id: None,
            }),
            server: server.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn the_region_fails_with_the_one_to_set() {
        assert_eq!(
            region_check("eu-west-3", Some("eu-west-3")).status,
            Status::Ok
        );
        let c = region_check("us-east-1", Some("eu-west-3"));
        assert_eq!(c.status, Status::Fail);
        assert_eq!(
            c.fix.as_deref(),
            Some("set region = \"eu-west-3\" for this target")
        );
        assert_eq!(region_check("garage", None).status, Status::Skip);
    }

    #[test]
    fn an_empty_listing_is_blind_only_from_a_store_that_lists_exact_keys() {
        // (uploads, Server, truncated, status)
        for (n, server, truncated, want) in [
            (0, Some("MinIO"), false, Status::Fail),
            (0, Some("MinIO"), true, Status::Ok),
            (3, Some("MinIO"), false, Status::Ok),
            (0, Some("AmazonS3"), false, Status::Ok),
            (0, None, false, Status::Ok),
        ] {
            let c = blind_check(&page(n, server, truncated));
            assert_eq!(c.status, want, "{n} {server:?} {truncated}");
            assert_eq!(c.fix.is_some(), want == Status::Fail);
        }
    }

    #[test]
    fn the_clock_is_judged_as_the_sweep_will_judge_it() {
        let host = Utc::now();
        let s = |trust| Settings {
            max_clock_skew: HumanDuration::secs(300),
            trust_host_clock: trust,
            ..Settings::default()
        };
        let at = |secs: i64| Some(host + chrono::TimeDelta::seconds(secs));
        // (store's clock minus host's, trust_host_clock, status, words)
        for (server, trust, want, words) in [
            (at(2), false, Status::Ok, "2s ahead of this host's"),
            (at(-300), false, Status::Ok, "5m behind this host's"),
            (
                at(600),
                false,
                Status::Warn,
                "10m ahead of this host's, more than max_clock_skew 5m",
            ),
            (None, true, Status::Warn, "no usable Date header"),
            (None, false, Status::Fail, "no usable Date header"),
        ] {
            let c = clock_check(host, server, &s(trust));
            assert_eq!(c.status, want, "{server:?} {trust}");
            assert!(c.finding.contains(words), "{}", c.finding);
            assert_eq!(c.fix.is_some(), want != Status::Ok);
        }
    }

    #[test]
    fn a_denied_lifecycle_read_is_a_warning_naming_the_permission() {
        let denied = StoreError {
            operation: crate::store::Operation::GetLifecycle,
            kind: ErrorKind::AccessDenied,
            message: "AccessDenied: Access Denied".into(),
        };
        let c = lifecycle_check(Some(Err(denied)), "");
        assert_eq!(c.status, Status::Warn);
        assert!(c.fix.unwrap().contains("s3:GetLifecycleConfiguration"));
        let rule = Rule {
            enabled: true,
            abort_after_days: Some(3),
            ..Rule::default()
        };
        let c = lifecycle_check(Some(Ok(vec![rule])), "logs/");
        assert_eq!(
            (c.status, c.finding.as_str()),
            (
                Status::Ok,
                "GetBucketLifecycleConfiguration allowed: a lifecycle rule aborts incomplete uploads after 3 days"
            )
        );
        assert_eq!(lifecycle_check(None, "").status, Status::Skip);
    }

    #[test]
    fn an_access_key_is_never_shown_whole() {
        assert_eq!(mask("AKIAIOSFODNN7EXAMPLE"), "AKIA…MPLE");
        assert_eq!(mask("short"), "*****");
    }

    #[test]
    fn only_a_failure_fails_the_exit_code() {
        let with = |status| {
            Doctor::new(vec![TargetChecks {
                target: "b".into(),
                kind: "bucket",
                prefix: String::new(),
                endpoint: "AWS".into(),
                region: "us-east-1".into(),
                checks: vec![Check::ok("listing", "x"), Check::new("clock", status, "y")],
            }])
        };
        assert_eq!(with(Status::Warn).exit(), Exit::Clean);
        assert_eq!(with(Status::Skip).exit(), Exit::Clean);
        assert_eq!(with(Status::Fail).exit(), Exit::Failed);
        assert_eq!((with(Status::Fail).ok, with(Status::Fail).fail), (1, 1));
    }
}
