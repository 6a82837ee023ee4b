//! The Prometheus metrics of docs/contract.md, on one registry, recorded from each target's report. Also
//! renders the text exposition and writes it where batch runs need it (a node_exporter textfile,
//! atomically). Bucket is the only per-target label: keys and upload ids never become labels.

use std::io::Write as _;
use std::path::Path;

use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::lifecycle::Audit;
use crate::report::{DiscoveryReport, TargetReport};

/// Every metric of the janitor.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    reclaimed_bytes: IntCounterVec,
    uploads_aborted: IntCounterVec,
    abort_attempts: IntCounterVec,
    uploads_unverified: IntCounterVec,
    uploads_gone: IntCounterVec,
    errors: IntCounterVec,
    export_errors: IntCounterVec,
    lease_claims: IntCounterVec,
    sweeps_skipped: IntCounterVec,
    stale_uploads: IntGaugeVec,
    stale_bytes: IntGaugeVec,
    incomplete_uploads: IntGaugeVec,
    sweep_duration: HistogramVec,
    last_sweep: GaugeVec,
    last_success: GaugeVec,
    clock_skew: IntGaugeVec,
    lifecycle_abort_days: IntGaugeVec,
    oldest_stale_age: IntGaugeVec,
    stale_bytes_by_age: IntGaugeVec,
    discovered_buckets: IntGaugeVec,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric on a fresh registry.
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("registered once");
            c
        };
        let int_gauge_by = |name: &str, help: &str, labels: &[&str]| {
            let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(g.clone()))
                .expect("registered once");
            g
        };
        let int_gauge = |name: &str, help: &str| int_gauge_by(name, help, &["bucket"]);
        let gauge = |name: &str, help: &str| {
            let g = GaugeVec::new(Opts::new(name, help), &["bucket"]).expect("valid metric");
            registry
                .register(Box::new(g.clone()))
                .expect("registered once");
            g
        };
        let m = Metrics {
            reclaimed_bytes: counter(
                "mpu_janitor_reclaimed_bytes_total",
                "Bytes of parts freed by verified aborts.",
                &["bucket"],
            ),
            uploads_aborted: counter(
                "mpu_janitor_uploads_aborted_total",
                "Uploads aborted and verified empty.",
                &["bucket"],
            ),
            abort_attempts: counter(
                "mpu_janitor_abort_attempts_total",
                "AbortMultipartUpload calls (the excess over aborted is re-aborts).",
                &["bucket"],
            ),
            uploads_unverified: counter(
                "mpu_janitor_uploads_unverified_total",
                "Uploads still holding parts after max_abort_attempts.",
                &["bucket"],
            ),
            uploads_gone: counter(
                "mpu_janitor_uploads_gone_before_abort_total",
                "Stale uploads already gone at this process's first abort (aborted elsewhere, or completed): nothing reclaimed.",
                &["bucket"],
            ),
            errors: counter(
                "mpu_janitor_errors_total",
                "Failed S3 calls after retries.",
                &["bucket", "operation", "kind"],
            ),
            export_errors: counter(
                "mpu_janitor_export_errors_total",
                "Failed exports: textfile writes, Pushgateway pushes, audit file writes.",
                &["sink"],
            ),
            lease_claims: counter(
                "mpu_janitor_lease_claims_total",
                "What the replicas' lease said before a target's sweep: held, lost, swept_by_other, held_by_other, unsupported (coordination off: the store ignores conditional writes), error, free (plan).",
                &["bucket", "result"],
            ),
            sweeps_skipped: counter(
                "mpu_janitor_sweeps_skipped_total",
                "Scheduled sweeps skipped because the previous sweep of the target was still running.",
                &["bucket"],
            ),
            stale_uploads: int_gauge(
                "mpu_janitor_stale_uploads",
                "Stale uploads found by the last sweep.",
            ),
            stale_bytes: int_gauge("mpu_janitor_stale_bytes", "Bytes the stale uploads held."),
            incomplete_uploads: int_gauge(
                "mpu_janitor_incomplete_uploads",
                "All incomplete uploads seen by the last sweep.",
            ),
            sweep_duration: {
                let h = HistogramVec::new(
                    HistogramOpts::new(
                        "mpu_janitor_sweep_duration_seconds",
                        "Wall time of a sweep.",
                    )
                    .buckets(vec![
                        0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
                        3600.0,
                    ]),
                    &["bucket"],
                )
                .expect("valid metric");
                registry
                    .register(Box::new(h.clone()))
                    .expect("registered once");
                h
            },
            last_sweep: gauge(
                "mpu_janitor_last_sweep_timestamp_seconds",
                "End of the last sweep (Unix seconds).",
            ),
            last_success: gauge(
                "mpu_janitor_last_success_timestamp_seconds",
                "End of the last sweep without failure (Unix seconds).",
            ),
            clock_skew: int_gauge(
                "mpu_janitor_clock_skew_seconds",
                "The store's clock minus this host's at the last sweep, from the store's Date header.",
            ),
            lifecycle_abort_days: int_gauge(
                "mpu_janitor_lifecycle_abort_rule_days",
                "Days after which the bucket's own lifecycle rule aborts the swept prefix's incomplete uploads; absent when no rule does.",
            ),
            oldest_stale_age: int_gauge(
                "mpu_janitor_oldest_stale_upload_age_seconds",
                "Age of the oldest stale upload at the last sweep; absent when none is stale.",
            ),
            stale_bytes_by_age: int_gauge_by(
                "mpu_janitor_stale_bytes_by_age",
                "Bytes held by the stale uploads of the last sweep, by age band.",
                &["bucket", "age"],
            ),
            discovered_buckets: int_gauge_by(
                "mpu_janitor_discovered_buckets",
                "Buckets of a discovery rule's last run, by state: listed, matched (swept), not_matched, other_shard, skipped (unreadable tags, or swept by another target), failed (1 when the buckets could not be listed).",
                &["rule", "state"],
            ),
            registry,
        };
        let build = IntGaugeVec::new(
            Opts::new(
                "mpu_janitor_build_info",
                "Always 1; the version label says which build.",
            ),
            &["version"],
        )
        .expect("valid metric");
        m.registry
            .register(Box::new(build.clone()))
            .expect("registered once");
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        m
    }

    /// Records one target's sweep.
    pub fn record(&self, r: &TargetReport) {
        let b = [r.bucket.as_str()];
        if let Some(l) = &r.lease {
            self.lease_claims
                .with_label_values(&[&r.bucket, l.status.as_str()])
                .inc();
        }
        // Another replica swept it: this process has no figure of it to record.
        if r.swept_elsewhere() {
            return;
        }
        self.reclaimed_bytes
            .with_label_values(&b)
            .inc_by(r.reclaimed_bytes);
        self.uploads_aborted.with_label_values(&b).inc_by(r.aborted);
        self.abort_attempts
            .with_label_values(&b)
            .inc_by(r.abort_attempts);
        self.uploads_unverified
            .with_label_values(&b)
            .inc_by(r.unverified);
        self.uploads_gone
            .with_label_values(&b)
            .inc_by(r.gone_before_abort);
        for e in &r.errors {
            self.errors
                .with_label_values(&[&r.bucket, e.operation.as_str(), e.kind.as_str()])
                .inc_by(e.count);
        }
        self.sweep_duration
            .with_label_values(&b)
            .observe(r.duration_seconds);
        let end = r.finished_at.timestamp() as f64;
        self.last_sweep.with_label_values(&b).set(end);
        if let Some(skew) = r.clock_skew_seconds {
            self.clock_skew.with_label_values(&b).set(skew);
        }
        if !r.is_failure() {
            self.last_success.with_label_values(&b).set(end);
        }
        // What the bucket holds is known only from a listing that ran to its end: after a failed
        // or cut-short one, the gauges keep their last known values rather than drop to what was
        // seen (a failing bucket must not look clean on a dashboard).
        if r.error.is_none() && !r.stopped_by_shutdown {
            self.stale_uploads.with_label_values(&b).set(r.stale as i64);
            self.stale_bytes
                .with_label_values(&b)
                .set(r.stale_bytes as i64);
            self.incomplete_uploads
                .with_label_values(&b)
                .set(r.uploads_seen as i64);
            match r.oldest_stale_age_seconds {
                Some(age) => self.oldest_stale_age.with_label_values(&b).set(age as i64),
                None => {
                    let _ = self.oldest_stale_age.remove_label_values(&b);
                }
            }
            for (age, bytes) in r.stale_bytes_by_age.bands() {
                self.stale_bytes_by_age
                    .with_label_values(&[&r.bucket, age])
                    .set(bytes as i64);
            }
        }
        // Known to have none: the series goes; unknown (unreadable, or not audited): kept.
        match &r.lifecycle {
            Some(Audit::Rule { days, .. }) => self
                .lifecycle_abort_days
                .with_label_values(&b)
                .set(i64::from(*days)),
            Some(Audit::None) => {
                let _ = self.lifecycle_abort_days.remove_label_values(&b);
            }
            Some(Audit::Unknown { .. }) | None => {}
        }
    }

    /// Records what a discovery rule found.
    pub fn record_discovery(&self, d: &DiscoveryReport) {
        for (state, n) in [
            ("listed", d.buckets_listed),
            ("matched", d.buckets_matched),
            ("not_matched", d.buckets_not_matched),
            ("other_shard", d.buckets_other_shard),
            ("skipped", d.skipped.len() as u64),
            ("failed", u64::from(d.error.is_some())),
        ] {
            self.discovered_buckets
                .with_label_values(&[&d.rule, state])
                .set(n as i64);
        }
    }

    /// Counts a failed export to `sink` (`textfile`, `pushgateway`).
    pub fn export_failed(&self, sink: &str) {
        self.export_errors.with_label_values(&[sink]).inc();
    }

    /// Counts a scheduled sweep skipped because the previous one still runs.
    pub fn sweep_skipped(&self, bucket: &str) {
        self.sweeps_skipped.with_label_values(&[bucket]).inc();
    }

    /// Continues the counters of an earlier exposition (the textfile a previous `once` wrote), so
    /// that with the textfile collector `_total` series keep growing across batch runs instead of
    /// restarting at each run. Unknown lines are ignored; returns how many series were carried over.
    pub fn carry_over(&self, exposition: &str) -> usize {
        let mut carried = 0;
        for line in exposition.lines().filter(|l| !l.starts_with('#')) {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let Some((name, labels)) = series.split_once('{') else {
                continue;
            };
            let labels = parse_labels(labels.trim_end_matches('}'));
            let get = |k: &str| labels.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
            let (counter, keys): (&IntCounterVec, &[&str]) = match name {
                "mpu_janitor_reclaimed_bytes_total" => (&self.reclaimed_bytes, &["bucket"]),
                "mpu_janitor_uploads_aborted_total" => (&self.uploads_aborted, &["bucket"]),
                "mpu_janitor_abort_attempts_total" => (&self.abort_attempts, &["bucket"]),
                "mpu_janitor_uploads_unverified_total" => (&self.uploads_unverified, &["bucket"]),
                "mpu_janitor_uploads_gone_before_abort_total" => (&self.uploads_gone, &["bucket"]),
                "mpu_janitor_sweeps_skipped_total" => (&self.sweeps_skipped, &["bucket"]),
                "mpu_janitor_errors_total" => (&self.errors, &["bucket", "operation", "kind"]),
                "mpu_janitor_export_errors_total" => (&self.export_errors, &["sink"]),
                "mpu_janitor_lease_claims_total" => (&self.lease_claims, &["bucket", "result"]),
                _ => continue,
            };
            let values: Option<Vec<&str>> = keys.iter().map(|k| get(k)).collect();
            if let Some(values) = values.filter(|_| value >= 0.0 && value.is_finite()) {
                counter.with_label_values(&values).inc_by(value as u64);
                carried += 1;
            }
        }
        carried
    }

    /// Makes a target's counters appear (at 0) before its first sweep, so rates work from the start.
    pub fn touch(&self, bucket: &str) {
        let b = [bucket];
        self.reclaimed_bytes.with_label_values(&b);
        self.uploads_aborted.with_label_values(&b);
        self.abort_attempts.with_label_values(&b);
        self.uploads_unverified.with_label_values(&b);
        self.uploads_gone.with_label_values(&b);
        self.sweeps_skipped.with_label_values(&b);
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        // Encoding into a Vec cannot fail for well-formed metrics.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }

    /// Writes the exposition to `path` atomically: a temp file in the same directory, then rename,
    /// so node_exporter's textfile collector never reads half a file.
    pub fn write_textfile(&self, path: &Path) -> std::io::Result<()> {
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "mpu_janitor.prom".into());
        let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let result = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(self.render().as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }
}

/// `a="x",b="y"` -> [(a, x), (b, y)], with the text format's escapes (\\, \", \n) undone.
fn parse_labels(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some((name, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, other)) => value.push(other),
                    None => {}
                },
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        out.push((name.trim_start_matches(',').trim().to_string(), value));
        rest = &after[end..];
    }
    out
}

/// Pushes the exposition to a Pushgateway under `job="mpu_janitor"`, grouped by `instance` (so
/// shards and hosts do not overwrite each other). Replaces the group's previous metrics (HTTP PUT).
/// Basic-auth credentials in the URL (`https://user:pass@host`) are sent as an Authorization
/// header and never logged. Async and non-blocking, unlike the prometheus crate's push helper.
/// TLS trusts what the S3 calls trust (`[defaults] ca_bundle`, `AWS_CA_BUNDLE`, system roots), and
/// the push goes through the proxy they go through (`[defaults] proxy`, else the environment).
pub async fn push(
    text: String,
    base: &url::Url,
    instance: &str,
    (trust, proxies): &(crate::store::tls::Trust, crate::store::proxy::Proxies),
) -> Result<(), String> {
    use http_body_util::{BodyExt, Full};
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let auth = (!base.username().is_empty() || base.password().is_some()).then(|| {
        format!(
            "{}:{}",
            decode(base.username()),
            decode(base.password().unwrap_or(""))
        )
    });
    let mut target = base.clone();
    let _ = target.set_username("");
    let _ = target.set_password(None);
    let path = format!(
        "{}/metrics/job/mpu_janitor/instance@base64/{}",
        target.path().trim_end_matches('/'),
        aws_smithy_types::base64::encode(instance)
            .replace('+', "-")
            .replace('/', "_")
    );
    target.set_path(&path);
    let url = target.to_string();
    // Logged without credentials, query or fragment: tokens live there.
    let redacted = format!(
        "{}://{}{}",
        target.scheme(),
        target.host_str().unwrap_or(""),
        target.port().map(|p| format!(":{p}")).unwrap_or_default()
    );
    let connector = proxies.connector(trust, std::time::Duration::from_secs(5))?;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, Full<bytes::Bytes>>(connector);
    let mut req = hyper::Request::put(&url).header("content-type", "text/plain; version=0.0.4");
    if let Some(via) = proxies.forward_auth(&url) {
        req = req.header(hyper::header::PROXY_AUTHORIZATION, via);
    }
    if let Some(auth) = auth {
        req = req.header(
            "authorization",
            format!("Basic {}", aws_smithy_types::base64::encode(auth)),
        );
    }
    let req = req
        .body(Full::new(bytes::Bytes::from(text)))
        .map_err(|e| format!("cannot build the push request: {e}"))?;
    let resp = tokio::time::timeout(std::time::Duration::from_secs(10), client.request(req))
        .await
        .map_err(|_| format!("pushing to {redacted} timed out after 10s"))?
        .map_err(|e| format!("pushing to {redacted} failed: {e}"))?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let body = resp
        .into_body()
        .collect()
        .await
        .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
        .unwrap_or_default();
    Err(format!(
        "the Pushgateway at {redacted} answered {status}: {}",
        body.trim()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::ErrorCount;
    use crate::store::{ErrorKind, Operation};

    #[test]
    fn report_figures_become_series() {
        let m = Metrics::new();
        let r = TargetReport {
            bucket: "b1".into(),
            aborted: 3,
            abort_attempts: 5,
            reclaimed_bytes: 3_145_728,
            stale: 4,
            unverified: 1,
            finished_at: "2026-11-21T10:00:04Z".parse().unwrap(),
            errors: vec![ErrorCount {
                operation: Operation::Abort,
                kind: ErrorKind::Throttled,
                count: 2,
            }],
            ..Default::default()
        };
        m.record(&r);
        m.record(&r);
        let text = m.render();
        for line in [
            "mpu_janitor_reclaimed_bytes_total{bucket=\"b1\"} 6291456",
            "mpu_janitor_uploads_aborted_total{bucket=\"b1\"} 6",
            "mpu_janitor_abort_attempts_total{bucket=\"b1\"} 10",
            "mpu_janitor_uploads_unverified_total{bucket=\"b1\"} 2",
            "mpu_janitor_errors_total{bucket=\"b1\",kind=\"throttled\",operation=\"abort\"} 4",
            "mpu_janitor_stale_uploads{bucket=\"b1\"} 4",
            "mpu_janitor_last_sweep_timestamp_seconds{bucket=\"b1\"} 1795255204",
            "mpu_janitor_build_info{version=\"",
            "mpu_janitor_sweep_duration_seconds_count{bucket=\"b1\"} 2",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        // An unverified upload is a failure: no success timestamp.
        assert!(!text.contains("mpu_janitor_last_success_timestamp_seconds{bucket=\"b1\"}"));
    }

    #[test]
    fn counters_carry_over_from_an_earlier_exposition() {
        let first = Metrics::new();
        let r = TargetReport {
            bucket: "b1".into(),
            aborted: 3,
            reclaimed_bytes: 300,
            stale: 3,
            errors: vec![ErrorCount {
                operation: Operation::ListParts,
                kind: ErrorKind::Timeout,
                count: 1,
            }],
            ..Default::default()
        };
        first.record(&r);
        first.export_failed("pushgateway");
        let second = Metrics::new();
        // reclaimed, aborted, attempts, unverified, gone before abort, errors, export errors.
        assert_eq!(second.carry_over(&first.render()), 7);
        second.record(&r);
        let text = second.render();
        assert!(
            text.contains("mpu_janitor_reclaimed_bytes_total{bucket=\"b1\"} 600"),
            "{text}"
        );
        assert!(
            text.contains("mpu_janitor_uploads_aborted_total{bucket=\"b1\"} 6"),
            "{text}"
        );
        assert!(
            text.contains("mpu_janitor_errors_total{bucket=\"b1\",kind=\"timeout\",operation=\"list_parts\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("mpu_janitor_export_errors_total{sink=\"pushgateway\"} 1"),
            "{text}"
        );
        // Gauges describe the last sweep only: not carried.
        assert!(
            text.contains("mpu_janitor_stale_uploads{bucket=\"b1\"} 3"),
            "{text}"
        );
        assert_eq!(
            second.carry_over("garbage\nmpu_janitor_uploads_aborted_total{bucket=\"x\"} NaN"),
            0
        );
        assert_eq!(
            parse_labels(r#"a="x\"y",b="\\n""#),
            [("a".into(), "x\"y".into()), ("b".into(), "\\n".into())]
        );
    }

    #[test]
    fn textfile_is_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("janitor.prom");
        let m = Metrics::new();
        m.write_textfile(&path).unwrap();
        m.write_textfile(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("mpu_janitor_build_info"));
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temp file left behind");
    }
}
