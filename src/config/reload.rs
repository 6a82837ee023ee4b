//! What a SIGHUP re-applies to a running `run` and what needs a restart, from one list: the
//! sections that set up the process (the listener, the export, the limits every sweep in flight
//! shares, the audit file, the lease) stay as they were at startup; every other key (`[defaults]`, `[sharding]`,
//! `[[targets]]`) takes effect from the next scheduled sweep.

use super::Config;

/// The sections a reload cannot re-apply.
pub const RESTART_ONLY: [&str; 4] = ["metrics", "daemon", "audit", "coordination"];

/// The values of the sections of [`RESTART_ONLY`] in a configuration, in that order.
fn restart_only(c: &Config) -> [(&'static str, toml::Value); 4] {
    let value = |v: Result<toml::Value, toml::ser::Error>| v.unwrap_or(toml::Value::Boolean(false));
    let [metrics, daemon, audit, coordination] = RESTART_ONLY;
    [
        (metrics, value(toml::Value::try_from(&c.metrics))),
        (daemon, value(toml::Value::try_from(&c.daemon))),
        (audit, value(toml::Value::try_from(&c.audit))),
        (coordination, value(toml::Value::try_from(&c.coordination))),
    ]
}

impl Config {
    /// The keys (`section.key`) a reload to `new` changes but cannot apply.
    pub fn restart_only_changes(&self, new: &Config) -> Vec<String> {
        let mut keys = Vec::new();
        for ((section, old), (_, new)) in restart_only(self).into_iter().zip(restart_only(new)) {
            let (Some(old), Some(new)) = (old.as_table(), new.as_table()) else {
                continue;
            };
            for (key, value) in old {
                if new.get(key) != Some(value) {
                    keys.push(format!("{section}.{key}"));
                }
            }
            keys.extend(
                new.keys()
                    .filter(|k| !old.contains_key(*k))
                    .map(|k| format!("{section}.{k}")),
            );
        }
        keys
    }

    /// What a reload to `new` puts in force: `new`, with the sections it cannot re-apply kept as
    /// they are in `self`.
    pub fn reloaded(&self, new: Config) -> Config {
        Config {
            metrics: self.metrics.clone(),
            daemon: self.daemon.clone(),
            audit: self.audit.clone(),
            coordination: self.coordination.clone(),
            ..new
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CliOverrides, FileConfig};
    use figment::Figment;
    use figment::providers::{Format, Serialized, Toml};

    fn config(toml: &str) -> Config {
        let fig = Figment::new()
            .merge(Serialized::defaults(FileConfig::default()))
            .merge(Toml::string(toml));
        Config::from_figment(fig, &CliOverrides::default(), vec![]).unwrap()
    }

    #[test]
    fn only_process_wide_keys_need_a_restart_and_a_reload_keeps_them() {
        let old = config("[[targets]]\nbucket = \"a\"\n");
        let new = config(
            "[metrics]\nlisten = \"127.0.0.1:1\"\n[daemon]\nshutdown_grace = \"5s\"\nparallel_targets = 2\n\
             [defaults]\nschedule = \"0 * * * * *\"\n[[targets]]\nbucket = \"z\"\n",
        );
        assert_eq!(
            old.restart_only_changes(&new),
            [
                "metrics.listen",
                "daemon.parallel_targets",
                "daemon.shutdown_grace"
            ]
        );
        assert!(old.restart_only_changes(&old).is_empty());
        // The reload takes the targets and defaults, and keeps every restart-only key.
        let in_force = old.reloaded(new.clone());
        assert!(old.restart_only_changes(&in_force).is_empty());
        assert_eq!(in_force.targets, new.targets);
        assert_eq!(in_force.defaults, new.defaults);
    }
}
