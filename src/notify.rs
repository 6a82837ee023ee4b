//! systemd's notify protocol (sd_notify), written out rather than linked: one datagram per message
//! to the socket named by `$NOTIFY_SOCKET` (a path, or an abstract name starting with `@`). Without
//! that variable every call is a no-op, so the same binary runs under systemd, Kubernetes or a shell.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// A handle on systemd's notification socket, if there is one.
#[derive(Debug)]
pub struct Notifier {
    target: Option<(UnixDatagram, std::os::unix::net::SocketAddr)>,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// Reads `$NOTIFY_SOCKET`, `$WATCHDOG_USEC` and `$WATCHDOG_PID` once.
    pub fn from_env() -> Self {
        let target = std::env::var("NOTIFY_SOCKET")
            .ok()
            .filter(|s| !s.is_empty())
            .and_then(|path| {
                let addr = match path.strip_prefix('@') {
                    Some(name) => {
                        use std::os::linux::net::SocketAddrExt;
                        std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).ok()?
                    }
                    None => std::os::unix::net::SocketAddr::from_pathname(&path).ok()?,
                };
                let sock = UnixDatagram::unbound().ok()?;
                Some((sock, addr))
            });
        let for_us = std::env::var("WATCHDOG_PID")
            .ok()
            .and_then(|p| p.parse::<u32>().ok())
            .is_none_or(|pid| pid == std::process::id());
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|u| u.parse::<u64>().ok())
            .filter(|u| *u > 0 && for_us)
            .map(Duration::from_micros);
        Notifier { target, watchdog }
    }

    /// True when systemd listens.
    pub fn enabled(&self) -> bool {
        self.target.is_some()
    }

    /// Sends one notification (e.g. "READY=1"); failures are logged, never fatal.
    pub fn send(&self, message: &str) {
        if let Some((sock, addr)) = &self.target
            && let Err(e) = sock.send_to_addr(message.as_bytes(), addr)
        {
            tracing::warn!(error = %e, "Notifying systemd failed");
        }
    }

    /// Tells systemd a reload began: `RELOADING=1` with `MONOTONIC_USEC` (CLOCK_MONOTONIC, as
    /// `Type=notify-reload` requires); `READY=1` must follow once it is over, applied or refused.
    pub fn reloading(&self) {
        if self.enabled() {
            self.send(&format!("RELOADING=1\nMONOTONIC_USEC={}", monotonic_usec()));
        }
    }

    /// How often to send WATCHDOG=1: half of `$WATCHDOG_USEC`, when systemd asked for it.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.target.as_ref()?;
        self.watchdog.map(|w| w / 2)
    }
}

/// CLOCK_MONOTONIC in microseconds, the clock systemd compares `MONOTONIC_USEC` with.
fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the struct passed by pointer.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) } != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}
