//! This host's name, at the bottom of the crate: the Pushgateway's instance, the audit trail's
//! `host`, the lease's default holder.

/// This host's name, for the Pushgateway's `instance` label.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}
