//! A real S3 server the suite runs against, whichever it is: Garage ([`super::garage`]), Ceph RGW
//! ([`super::rgw`]) or the JuiceFS S3 gateway ([`super::juicefs`]). Scenarios that must hold on
//! every real server take one of [`servers`]; where a server does something differently, its
//! [`Quirks`] say what, and the scenario asserts that difference for that server by name instead
//! of skipping it.

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{Credentials, Region};
use chrono::Utc;
use mpu_janitor::config::{HumanDuration, Settings, Target};
use mpu_janitor::report::TargetReport;
use mpu_janitor::run::connect_and_sweep;
use mpu_janitor::store::Connector;
use mpu_janitor::sweep::SweepOptions;

use super::garage::garage;
use super::juicefs::juicefs;
use super::rgw::rgw;

const DAY: u64 = 86_400;

/// Where a running S3 server answers, and the test key it knows.
pub struct S3Server {
    /// `garage`, `rgw` or `juicefs`, for messages.
    pub name: &'static str,
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    /// The region it signs for.
    pub region: String,
    /// The test key.
    pub access_key: String,
    /// Its secret.
    pub secret_key: String,
    /// What it does differently from the others.
    pub quirks: Quirks,
}

/// What a real server does differently, each seen on it and asserted where a scenario meets it.
/// Garage and RGW have none of these.
#[derive(Clone, Copy, Debug, Default)]
pub struct Quirks {
    /// Answers up to 10,000 uploads or parts a page when `max-uploads` / `max-parts` are not sent
    /// (MinIO's default; S3's is 1,000), and the janitor sends neither: JuiceFS gives 2,150 uploads
    /// and an upload's 1,100 parts in one page (it honours an explicit `max-uploads=1000`).
    pub pages_of_10000: bool,
    /// Answers the bucket lifecycle calls 501 NotImplemented (JuiceFS).
    pub no_lifecycle: bool,
    /// Refuses a key with a `.` or `..` path segment, 400 XMinioInvalidResourceName (JuiceFS: keys
    /// are paths in its file system).
    pub no_dot_segments: bool,
}

/// Every real S3 server of the suite, each started on first use.
pub fn servers() -> [&'static S3Server; 3] {
    [garage(), rgw(), juicefs()]
}

impl S3Server {
    /// An SDK client signed with the test key.
    pub fn client(&self) -> Client {
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version_latest()
            .region(Region::new(self.region.clone()))
            .endpoint_url(&self.endpoint)
            .force_path_style(true)
            .credentials_provider(Credentials::new(
                &self.access_key,
                &self.secret_key,
                None,
                None,
                "tests",
            ))
            .request_checksum_calculation(
                aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired,
            )
            .build();
        Client::from_conf(conf)
    }

    /// Creates a bucket with a unique name built from `hint`, and returns the name.
    pub async fn bucket(&self, hint: &str) -> String {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("{hint}-{}-{n}", std::process::id());
        self.client()
            .create_bucket()
            .bucket(&name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{}: create bucket {name}: {e:?}", self.name));
        name
    }

    /// Asserts how this server pages a bucket's `total` uploads when asked as the janitor asks (no
    /// `max-uploads`): a truncated first page of at most 1,000 (RGW may give fewer), or with
    /// [`Quirks::pages_of_10000`] all of them in one page.
    pub async fn assert_upload_paging(&self, bucket: &str, total: usize) {
        let page = self
            .client()
            .list_multipart_uploads()
            .bucket(bucket)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{}: list uploads: {e:?}", self.name));
        self.assert_paging("uploads", page.uploads().len(), page.is_truncated(), total);
    }

    /// As [`Self::assert_upload_paging`], for the `total` parts of one upload (no `max-parts`).
    pub async fn assert_part_paging(&self, bucket: &str, key: &str, id: &str, total: usize) {
        let page = self
            .client()
            .list_parts()
            .bucket(bucket)
            .key(key)
            .upload_id(id)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{}: list parts: {e:?}", self.name));
        self.assert_paging("parts", page.parts().len(), page.is_truncated(), total);
    }

    fn assert_paging(&self, what: &str, got: usize, truncated: Option<bool>, total: usize) {
        let truncated = truncated.unwrap_or(false);
        let page = if self.quirks.pages_of_10000 {
            10_000
        } else {
            1_000
        };
        assert!(
            got <= page && got > 0 && truncated == (got < total),
            "{}: a first page of {got} {what} of {total}, truncated {truncated}",
            self.name
        );
        if self.quirks.pages_of_10000 && total <= page {
            assert_eq!(got, total, "{}: all {what} in one page", self.name);
        }
        eprintln!(
            "{}: first page {got} of {total} {what}, truncated {truncated}",
            self.name
        );
    }

    /// A config file's `[defaults]` lines pointing at this server.
    pub fn defaults_toml(&self) -> String {
        format!(
            "region = \"{}\"\nendpoint_url = \"{}\"\nforce_path_style = true\n",
            self.region, self.endpoint
        )
    }

    /// Settings pointing at this server.
    pub fn settings(&self) -> Settings {
        Settings {
            region: self.region.clone(),
            ..super::settings_at(&self.endpoint)
        }
    }

    /// A connector signing with the test key, given to the library explicitly (the binary gets it
    /// through its own environment, see [`super::janitor`]).
    pub fn connector(&self) -> Connector {
        Connector::with_static_credentials(&self.access_key, &self.secret_key)
    }

    /// Runs the binary with `args` and the config text, signing with the test key.
    pub fn janitor(&self, config_text: &str, args: &[&str]) -> super::janitor::Output {
        super::janitor::janitor_as((&self.access_key, &self.secret_key), config_text, args)
    }

    /// Sweeps `t` with "now" moved `days_later` days ahead of the real clock: uploads seeded just
    /// now look `days_later` days old. The host clock is then days ahead of the store's, which the
    /// janitor refuses unless told to trust it: `max_clock_skew` is widened to cover the move.
    pub async fn sweep_at(&self, t: &Target, days_later: i64) -> TargetReport {
        let opts = SweepOptions {
            now: Utc::now() + chrono::Duration::seconds(days_later * DAY as i64),
            ..Default::default()
        };
        let mut t = t.clone();
        t.settings.max_clock_skew = HumanDuration::secs((days_later.unsigned_abs() + 1) * DAY);
        connect_and_sweep(&t, &self.connector(), &opts).await
    }
}
