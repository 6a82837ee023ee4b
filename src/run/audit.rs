//! The audit trail: one record for every upload the janitor acts on or judges stale (aborted,
//! unverified, failed, gone before its abort, vanished, kept as replaced under its id, capped,
//! interrupted, would-abort in a dry run), so that "which upload did the janitor abort last
//! night?" has an answer. Each record is an INFO event of the log target `mpu_janitor::audit`
//! (`--log-level warn,mpu_janitor::audit=info` keeps it while the rest is quiet), and, with
//! `[audit] path`, a JSON line appended to that file: one `write` per record on a file opened for
//! appending, so a crash loses at most the upload in flight; the file is opened again at every run
//! (logrotate's default `create` takes effect at the next sweep) and synced before the run's
//! report is printed. Uploads kept at first sight (fresh, excluded, idle, untrustworthy times) are
//! not records: nothing was done to them.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::PathBuf;

use chrono::Utc;
use parking_lot::Mutex;
use serde::Serialize;

use crate::config::AuditConfig;
use crate::policy::KeepReason;
use crate::report::{Outcome, UploadReport, timestamp};
use crate::sweep::Observer;

/// The process's audit trail: where its records go.
#[derive(Debug, Default)]
pub struct AuditTrail {
    path: Option<PathBuf>,
    host: String,
}

impl AuditTrail {
    /// The trail `[audit]` asks for.
    pub fn new(config: &AuditConfig) -> Self {
        AuditTrail {
            path: Some(config.path.clone()).filter(|p| !p.as_os_str().is_empty()),
            host: crate::host::hostname(),
        }
    }

    /// The records of one run, under a new run id; the file (if any) opened for appending.
    pub fn run(&self) -> RunAudit {
        let file = self.path.as_ref().map(|path| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("audit {}: {e}", path.display()))
        });
        let (file, error) = match file {
            Some(Ok(f)) => (Some(f), None),
            Some(Err(e)) => {
                tracing::error!(error = %e, "Cannot open the audit file; the records go to the log only");
                (None, Some(e))
            }
            None => (None, None),
        };
        RunAudit {
            run_id: uuid::Uuid::new_v4().simple().to_string(),
            host: self.host.clone(),
            path: self.path.clone(),
            file: Mutex::new(AuditFile { file, error }),
        }
    }
}

#[derive(Debug)]
struct AuditFile {
    file: Option<File>,
    /// The first write that failed: said once, in the run's report.
    error: Option<String>,
}

/// The audit records of one run.
#[derive(Debug)]
pub struct RunAudit {
    run_id: String,
    host: String,
    path: Option<PathBuf>,
    file: Mutex<AuditFile>,
}

/// One record, as the JSON line and the log event carry it.
#[derive(Serialize)]
struct Record<'a> {
    time: String,
    run_id: &'a str,
    host: &'a str,
    bucket: &'a str,
    dry_run: bool,
    #[serde(flatten)]
    upload: &'a UploadReport,
}

/// Whether an upload's outcome is a record: acted on, or judged stale.
pub fn audited(u: &UploadReport) -> bool {
    match u.outcome {
        Outcome::Kept => u.reason == Some(KeepReason::InitiatedTimeChanged),
        _ => true,
    }
}

impl RunAudit {
    /// The run's id, in every record.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Syncs the file; the first failure of the run, if any (it is also logged and counted).
    pub fn finish(&self) -> Option<String> {
        let mut f = self.file.lock();
        if let Some(file) = &f.file
            && let Err(e) = file.sync_data()
            && f.error.is_none()
        {
            f.error = Some(format!("audit {}: {e}", self.path_shown()));
        }
        f.error.clone()
    }

    fn path_shown(&self) -> String {
        self.path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    }
}

impl Observer for RunAudit {
    fn upload(&self, target: &str, upload: &UploadReport, dry_run: bool) {
        if !audited(upload) {
            return;
        }
        let record = Record {
            time: timestamp(Utc::now()),
            run_id: &self.run_id,
            host: &self.host,
            bucket: target,
            dry_run,
            upload,
        };
        let outcome = serde_json::to_value(upload.outcome).unwrap_or_default();
        tracing::info!(
            target: "mpu_janitor::audit",
            run_id = %self.run_id,
            host = %self.host,
            bucket = %target,
            key = %upload.key,
            upload_id = %upload.upload_id,
            initiated = %upload.initiated.map(timestamp).unwrap_or_default(),
            age_seconds = upload.age_seconds,
            parts = upload.parts,
            bytes = upload.bytes,
            abort_attempts = upload.abort_attempts,
            outcome = %outcome.as_str().unwrap_or_default(),
            dry_run,
            "Upload {}",
            outcome.as_str().unwrap_or_default()
        );
        let mut f = self.file.lock();
        let Some(file) = &mut f.file else {
            return;
        };
        let mut line = serde_json::to_vec(&record).unwrap_or_default();
        line.push(b'\n');
        if let Err(e) = file.write_all(&line) {
            tracing::error!(error = %e, "Writing the audit file failed; the records go to the log only");
            f.file = None;
            f.error = Some(format!("audit {}: {e}", self.path_shown()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Upload;

    fn upload(outcome: Outcome, reason: Option<KeepReason>) -> UploadReport {
        let mut u = UploadReport::new(
            Upload {
                key: "a/b".into(),
                upload_id: "u1".into(),
                initiated: Some(Utc::now() - chrono::TimeDelta::days(9)),
                part_size: None,
            },
            Utc::now(),
        );
        u.outcome = outcome;
        u.reason = reason;
        u
    }

    #[test]
    fn uploads_acted_on_or_judged_stale_are_records_and_those_kept_at_first_sight_are_not() {
        for o in [
            Outcome::Aborted,
            Outcome::Unverified,
            Outcome::Failed,
            Outcome::GoneBeforeAbort,
            Outcome::Vanished,
            Outcome::WouldAbort,
            Outcome::Capped,
            Outcome::Interrupted,
        ] {
            assert!(audited(&upload(o, None)), "{o:?}");
        }
        assert!(audited(&upload(
            Outcome::Kept,
            Some(KeepReason::InitiatedTimeChanged)
        )));
        for r in [
            KeepReason::Fresh,
            KeepReason::Excluded,
            KeepReason::RecentPart,
        ] {
            assert!(!audited(&upload(Outcome::Kept, Some(r))), "{r:?}");
        }
    }

    #[test]
    fn every_record_is_one_json_line_appended_with_the_run_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        std::fs::write(&path, "{\"earlier\":true}\n").unwrap();
        let trail = AuditTrail::new(&AuditConfig { path: path.clone() });
        let run = trail.run();
        run.upload("photos", &upload(Outcome::Aborted, None), false);
        run.upload(
            "photos",
            &upload(Outcome::Kept, Some(KeepReason::Fresh)),
            false,
        );
        run.upload("photos", &upload(Outcome::WouldAbort, None), true);
        assert_eq!(run.finish(), None);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3, "the earlier line kept, two records: {text}");
        let r = &lines[1];
        for key in [
            "time",
            "run_id",
            "host",
            "bucket",
            "key",
            "upload_id",
            "initiated",
            "age_seconds",
            "parts",
            "bytes",
            "abort_attempts",
            "outcome",
            "dry_run",
        ] {
            assert!(r.get(key).is_some(), "{key} in {r}");
        }
        assert_eq!(r["outcome"], "aborted");
        assert_eq!(r["run_id"], run.run_id());
        assert_eq!(lines[2]["outcome"], "would_abort");
        assert_eq!(lines[2]["dry_run"], true);
    }

    #[test]
    fn a_file_that_cannot_be_opened_is_said_and_the_run_goes_on() {
        let trail = AuditTrail::new(&AuditConfig {
            path: PathBuf::from("/nonexistent-dir/audit.jsonl"),
        });
        let run = trail.run();
        run.upload("b", &upload(Outcome::Aborted, None), false);
        let e = run.finish().unwrap();
        assert!(e.starts_with("audit /nonexistent-dir/audit.jsonl: "), "{e}");
    }
}
