//! The cap on open connections, with a small reserve kept for the health probes.
//!
//! Every accepted connection (plain or TLS, including one upgraded to a WebSocket)
//! holds a [`Slot`] for as long as its socket is open. When the regular slots are
//! all taken, a connection gets one of [`HEALTH_RESERVE`] reserve slots instead: it
//! is served only `/healthz` and `/readyz` (anything else is a bare 503), with a
//! short deadline for its request and no keep-alive (see [`super::deadline`]).
//! Beyond that, connections are closed as soon as they are accepted, which costs an
//! `accept` and a `close` and nothing else.
//!
//! Why a reserve and not a peek at the first bytes: a load balancer or orchestrator
//! that probes a server holding its maximum of slow clients must still learn that
//! the process is alive, or it restarts a server that is merely full. Deciding by
//! the request's path rather than by peeked bytes works the same under TLS, where
//! the bytes are encrypted until the handshake is done. The reserve is not a
//! guarantee: a flood of new connections competes for it too, but each holder keeps
//! a reserve slot for at most the reserve's short deadline, so a probe that retries
//! gets through.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Reserve slots for health probes once the cap is reached. Probes come a few at a
/// time (one per orchestrator or balancer node, every few seconds); 16 leaves room
/// for several of them and for retries.
pub const HEALTH_RESERVE: usize = 16;

/// The counters of open connections, shared by the accept loop and every connection.
#[derive(Debug)]
pub struct Slots {
    regular: Arc<Semaphore>,
    reserve: Arc<Semaphore>,
}

/// One open connection's place, given back when the connection is dropped.
#[derive(Debug)]
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    /// A reserve slot: health probes only.
    pub reserve: bool,
}

impl Slots {
    pub fn new(max_connections: usize) -> Self {
        Self {
            regular: Arc::new(Semaphore::new(max_connections)),
            reserve: Arc::new(Semaphore::new(HEALTH_RESERVE)),
        }
    }

    /// A slot for a connection just accepted: a regular one while any is free, then a
    /// reserve one, then `None` (close it at once).
    pub fn admit(&self) -> Option<Slot> {
        if let Ok(permit) = self.regular.clone().try_acquire_owned() {
            return Some(Slot {
                _permit: permit,
                reserve: false,
            });
        }
        let admitted = self
            .reserve
            .clone()
            .try_acquire_owned()
            .ok()
            .map(|permit| Slot {
                _permit: permit,
                reserve: true,
            });
        metrics::counter!(
            "http_connections_over_cap_total",
            "admitted" => if admitted.is_some() { "health_only" } else { "closed" }
        )
        .increment(1);
        admitted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_cap_come_reserve_slots_then_nothing_and_a_closed_connection_frees_its_slot() {
        let slots = Slots::new(2);
        let first = slots.admit().unwrap();
        let _second = slots.admit().unwrap();
        assert!(!first.reserve);
        let reserve: Vec<Slot> = (0..HEALTH_RESERVE)
            .map(|_| slots.admit().unwrap())
            .collect();
        assert!(reserve.iter().all(|slot| slot.reserve));
        assert!(slots.admit().is_none());
        drop(first);
        assert!(!slots.admit().unwrap().reserve);
    }
}
