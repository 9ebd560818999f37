//! The HTTP edge: what every accepted connection goes through before and around
//! HTTP, on the plain listener ([`crate::server`]) and the TLS one (axum-server,
//! through [`EdgeAcceptor`]) alike:
//!
//! - a cap on open connections, with a reserve for health probes ([`slots`]);
//! - deadlines while a connection is not serving a request: the header timeout for
//!   a request's head (and the first one's TLS handshake), the idle timeout for a
//!   kept-alive connection between requests ([`deadline`]);
//! - at start, the open-file limit raised as far as the system allows
//!   ([`raise_open_file_limit`]), and the cap kept below it, so a full server
//!   refuses connections on purpose instead of failing `accept` with `EMFILE`.

pub mod deadline;
pub mod slots;

use std::future::{Ready, ready};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::config::EdgeConfig;
use deadline::{TimedIo, TimedService, Timeouts, Watch};
use slots::{HEALTH_RESERVE, Slot, Slots};

/// File descriptors kept for everything but client connections: database and
/// Redis connections, the listener, log files, files being served.
const FD_HEADROOM: u64 = 256;

/// A reserve connection's header timeout at most: a health probe sends its request
/// at once, and a reserve slot should not be held long by a client that does not.
const RESERVE_HEADER_TIMEOUT: Duration = Duration::from_secs(2);

/// The edge's settings and the shared count of open connections; a clone per
/// listener task is cheap.
#[derive(Clone, Debug)]
pub struct Edge {
    slots: Arc<Slots>,
    timeouts: Timeouts,
}

/// A connection just accepted and given a slot.
pub struct Admitted {
    slot: Slot,
    watch: Arc<Watch>,
}

impl Edge {
    /// The edge for `config`, its connection cap kept below the process's current
    /// open-file limit.
    pub fn new(config: &EdgeConfig) -> Self {
        let open_files = rlimit::Resource::NOFILE.get().ok().map(|(soft, _)| soft);
        let max_connections = capped(config.max_connections, open_files);
        if max_connections < config.max_connections {
            tracing::warn!(
                configured = config.max_connections,
                max_connections,
                open_file_limit = open_files,
                "--max-connections lowered to fit the open-file limit"
            );
        }
        Self {
            slots: Arc::new(Slots::new(max_connections)),
            timeouts: Timeouts {
                header: Duration::from_secs(config.header_timeout_secs),
                idle: Duration::from_secs(config.idle_timeout_secs),
            },
        }
    }

    /// A slot for a connection accepted now, or `None`: close it at once.
    pub fn admit(&self) -> Option<Admitted> {
        let slot = self.slots.admit()?;
        let mut timeouts = self.timeouts;
        if slot.reserve {
            timeouts.header = timeouts.header.min(RESERVE_HEADER_TIMEOUT);
        }
        let watch = Watch::new(timeouts, slot.reserve);
        Some(Admitted { slot, watch })
    }

    /// How often an HTTP/2 connection pings its client, and how long it waits for
    /// the answer before closing: a client that vanished without closing (a laptop
    /// lid, a dropped NAT mapping) frees its streams, SSE ones included.
    pub fn http2_keep_alive(&self) -> (Duration, Duration) {
        (
            self.timeouts.idle,
            self.timeouts.idle.min(Duration::from_secs(20)),
        )
    }

    /// The TLS handshake's own timeout (the header timeout covers it too).
    pub fn header_timeout(&self) -> Duration {
        self.timeouts.header
    }
}

impl Admitted {
    /// When the connection's first request must be complete, for what happens
    /// before [`Admitted::serve`] (the plain listener's peek at the first bytes).
    pub fn first_request_deadline(&self) -> Instant {
        self.watch.first_request_deadline()
    }

    /// The socket and the application as this connection uses them.
    pub fn serve<IO, S>(self, io: IO, service: S) -> (TimedIo<IO>, TimedService<S>) {
        (
            TimedIo::new(io, self.watch.clone(), self.slot),
            TimedService::new(service, self.watch),
        )
    }
}

/// The cap that fits `open_files` descriptors, with room for the reserve and the
/// rest of the process.
fn capped(configured: usize, open_files: Option<u64>) -> usize {
    let Some(open_files) = open_files else {
        return configured;
    };
    let fits = open_files.saturating_sub(FD_HEADROOM + HEALTH_RESERVE as u64);
    configured.min(usize::try_from(fits).unwrap_or(usize::MAX).max(1))
}

/// Raises the soft open-file limit to the hard one (each connection is a file
/// descriptor, and the usual soft default of 1,024 is reached by a modest crowd)
/// and logs both. Called once at start, before the listener is bound.
pub fn raise_open_file_limit() {
    let (soft, hard) = match rlimit::Resource::NOFILE.get() {
        Ok(limits) => limits,
        Err(error) => {
            tracing::warn!(%error, "could not read the open-file limit");
            return;
        }
    };
    match rlimit::increase_nofile_limit(hard) {
        Ok(raised) => tracing::info!(
            soft = raised,
            hard,
            soft_before = soft,
            "open-file limit (RLIMIT_NOFILE)"
        ),
        Err(error) => tracing::warn!(
            %error,
            soft,
            hard,
            "could not raise the open-file limit (RLIMIT_NOFILE)"
        ),
    }
}

/// The TLS listener's acceptor, under rustls's: each TCP connection gets a slot
/// (or is closed at once) and its deadlines before the handshake starts.
#[derive(Clone, Debug)]
pub struct EdgeAcceptor {
    edge: Edge,
}

impl EdgeAcceptor {
    pub fn new(edge: Edge) -> Self {
        Self { edge }
    }
}

impl<S> axum_server::accept::Accept<TcpStream, S> for EdgeAcceptor {
    type Stream = TimedIo<TcpStream>;
    type Service = TimedService<S>;
    type Future = Ready<std::io::Result<(Self::Stream, Self::Service)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let Some(admitted) = self.edge.admit() else {
            return ready(Err(std::io::Error::other("over the connection cap")));
        };
        // As on the plain listener: realtime frames must leave at once.
        let _ = stream.set_nodelay(true);
        ready(Ok(admitted.serve(stream, service)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_stays_below_the_open_file_limit() {
        assert_eq!(capped(10_000, None), 10_000);
        assert_eq!(capped(10_000, Some(1_048_576)), 10_000);
        assert_eq!(capped(10_000, Some(1_024)), 1_024 - 256 - 16);
        assert_eq!(capped(10_000, Some(10)), 1);
    }
}
