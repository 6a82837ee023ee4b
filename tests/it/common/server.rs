//! A real S3 server the suite runs against, whichever it is: Garage ([`super::garage`]) or Ceph
//! RGW ([`super::rgw`]). Scenarios that must hold on every real server take one of [`servers`].

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{Credentials, Region};
use chrono::Utc;
use mpu_janitor::config::{HumanDuration, Settings, Target};
use mpu_janitor::report::TargetReport;
use mpu_janitor::run::connect_and_sweep;
use mpu_janitor::store::Connector;
use mpu_janitor::sweep::SweepOptions;

use super::garage::garage;
use super::rgw::rgw;

const DAY: u64 = 86_400;

/// Where a running S3 server answers, and the test key it knows.
pub struct S3Server {
    /// `garage` or `rgw`, for messages.
    pub name: &'static str,
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    /// The region it signs for.
    pub region: String,
    /// The test key.
    pub access_key: String,
    /// Its secret.
    pub secret_key: String,
}

/// Every real S3 server of the suite, each started on first use.
pub fn servers() -> [&'static S3Server; 2] {
    [garage(), rgw()]
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
