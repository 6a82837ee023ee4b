//! Where the figures of a run go once it is swept: the Prometheus registry (served by `run` on
//! /metrics), the node_exporter textfile (counters carried over from the file an earlier process
//! wrote), the Pushgateway (`once`). A failed export is logged and makes `once` exit 1; the sweep
//! itself still counts.

use std::path::PathBuf;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::report::RunReport;
use crate::store::proxy::Proxies;
use crate::store::tls::Trust;

/// Where the figures of the sweeps go: the registry (served by `run` on /metrics), the textfile
/// (counters carried over from the previous file), the Pushgateway.
pub struct Exporter {
    /// The registry.
    pub metrics: Metrics,
    textfile: Option<PathBuf>,
    push: Option<(url::Url, (Trust, Proxies))>,
}

impl Exporter {
    /// An exporter for `[metrics]`; counters continue from the textfile an earlier run wrote. The
    /// Pushgateway (and its trust store) is set up only for `push` (`once`; `run` never pushes).
    pub fn new(config: &Config, push: bool) -> Result<Exporter, String> {
        let m = &config.metrics;
        let metrics = Metrics::new();
        let textfile = Some(m.textfile.clone()).filter(|p| !p.as_os_str().is_empty());
        if let Some(previous) = textfile
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
        {
            metrics.carry_over(&previous);
        }
        let push = match m.pushgateway_url.url() {
            Some(url) if push => Some((
                url.clone(),
                (
                    Trust::load(config.defaults.ca_bundle())?,
                    Proxies::new(&config.defaults.proxy),
                ),
            )),
            _ => None,
        };
        Ok(Exporter {
            metrics,
            textfile,
            push,
        })
    }

    /// An exporter that only keeps the registry (the demo).
    pub fn in_memory() -> Exporter {
        Exporter {
            metrics: Metrics::new(),
            textfile: None,
            push: None,
        }
    }

    /// Exports a whole run: records it, rewrites the textfile once and pushes the registry when
    /// a Pushgateway is configured. A failure is logged, counted on
    /// `mpu_janitor_export_errors_total{sink}` and said in the report's `export_errors`.
    pub async fn export(&self, run: &mut RunReport) {
        run.targets.iter().for_each(|t| self.metrics.record(t));
        run.discovery
            .iter()
            .for_each(|d| self.metrics.record_discovery(d));
        if let Err(e) = self.write_textfile() {
            run.export_errors.push(e);
        }
        if let Err(e) = self.push().await {
            run.export_errors.push(e);
        }
    }

    fn write_textfile(&self) -> Result<(), String> {
        let Some(path) = &self.textfile else {
            return Ok(());
        };
        self.metrics.write_textfile(path).map_err(|e| {
            tracing::error!(path = %path.display(), error = %e, "Writing the metrics textfile failed");
            self.metrics.export_failed("textfile");
            format!("textfile {}: {e}", path.display())
        })
    }

    /// Pushes the registry to the Pushgateway, if one is configured.
    async fn push(&self) -> Result<(), String> {
        let Some((url, via)) = &self.push else {
            return Ok(());
        };
        let redacted = crate::redact::redact_url(url.as_str());
        match crate::metrics::push(self.metrics.render(), url, &crate::host::hostname(), via).await
        {
            Ok(()) => {
                tracing::info!(url = %redacted, "Pushed metrics");
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, "Pushing metrics failed; the sweep itself still counts");
                self.metrics.export_failed("pushgateway");
                Err(format!("pushgateway {redacted}: {e}"))
            }
        }
    }
}
