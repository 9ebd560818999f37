//! `user_joined` / `user_left`: one task broadcasts them for the whole instance,
//! pacing itself by what it sent (see the module doc of [`super`]).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use socketioxide::SocketIo;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{NOTICE_BURST, NOTICE_MAX_REST, NOTICE_PACE};
use crate::hub::Hub;

/// A `user_joined` / `user_left` notice waiting for its broadcast.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Notice {
    pub(super) event: &'static str,
    pub(super) username: String,
    /// Accounts present in `general` right after this join or leave.
    pub(super) user_count: usize,
    /// Another instance's: not relayed again.
    pub(super) relayed: bool,
}

/// The instance's `user_joined` / `user_left` notices, broadcast by one task (see the
/// module doc for why and how it paces itself).
pub(super) struct Notices {
    waiting: Mutex<VecDeque<Notice>>,
    wake: Notify,
    /// Sockets with a running session: whom a broadcast reaches.
    pub(super) sockets: AtomicUsize,
}

impl Notices {
    pub(super) fn new() -> Arc<Self> {
        Arc::new(Self {
            waiting: Mutex::new(VecDeque::new()),
            wake: Notify::new(),
            sockets: AtomicUsize::new(0),
        })
    }

    /// Queues a notice for the next broadcast; only the newest [`NOTICE_BURST`] wait.
    pub(super) fn push(&self, notice: Notice) {
        {
            let mut waiting = crate::sync::lock(&self.waiting);
            if waiting.len() == NOTICE_BURST {
                waiting.pop_front();
            }
            waiting.push_back(notice);
        }
        self.wake.notify_one();
    }

    pub(super) fn take(&self) -> VecDeque<Notice> {
        std::mem::take(&mut *crate::sync::lock(&self.waiting))
    }

    /// Queues the notices that other instances relay, until shutdown.
    pub(super) async fn listen(
        self: Arc<Self>,
        mut relayed: tokio::sync::broadcast::Receiver<Arc<crate::hub::Notice>>,
        shutdown: CancellationToken,
    ) {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            let notice = tokio::select! {
                _ = shutdown.cancelled() => return,
                received = relayed.recv() => match received {
                    Ok(notice) => notice,
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => return,
                },
            };
            let event = match notice.event.as_str() {
                "user_joined" => "user_joined",
                "user_left" => "user_left",
                _ => continue,
            };
            let data = &notice.data;
            if let (Some(username), Some(user_count)) =
                (data["username"].as_str(), data["user_count"].as_u64())
            {
                self.push(Notice {
                    event,
                    username: username.to_owned(),
                    user_count: usize::try_from(user_count).unwrap_or(usize::MAX),
                    relayed: true,
                });
            }
        }
    }

    /// Broadcasts what is waiting (relaying this instance's own notices to the
    /// others), rests in proportion to the packets that made, and again, until
    /// shutdown.
    pub(super) async fn announce(
        self: Arc<Self>,
        io: SocketIo,
        hub: Arc<Hub>,
        shutdown: CancellationToken,
    ) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.wake.notified() => {}
            }
            let batch = self.take();
            for notice in &batch {
                let data = json!({ "username": notice.username, "user_count": notice.user_count });
                let _ = io.emit(notice.event, &data).await;
                if !notice.relayed {
                    let event = notice.event.to_owned();
                    hub.relay(crate::hub::Notice { event, data }).await;
                }
            }
            let rest = rest_after(batch.len(), self.sockets.load(Ordering::Relaxed));
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(rest) => {}
            }
        }
    }
}

/// The pause after broadcasting `notices` to `sockets`.
pub(super) fn rest_after(notices: usize, sockets: usize) -> Duration {
    let packets = u32::try_from(notices.saturating_mul(sockets)).unwrap_or(u32::MAX);
    NOTICE_PACE
        .checked_mul(packets)
        .map_or(NOTICE_MAX_REST, |rest| rest.min(NOTICE_MAX_REST))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_that_pile_up_keep_the_newest_in_order() {
        let notice = |i: usize| Notice {
            event: "user_joined",
            username: format!("u{i}"),
            user_count: i,
            relayed: false,
        };
        let notices = Notices::new();
        notices.push(notice(1));
        notices.push(notice(2));
        assert_eq!(Vec::from(notices.take()), vec![notice(1), notice(2)]);
        assert!(notices.take().is_empty());
        for i in 1..=NOTICE_BURST + 3 {
            notices.push(notice(i));
        }
        let kept: Vec<_> = notices.take().into_iter().map(|n| n.user_count).collect();
        assert_eq!(kept, (4..=NOTICE_BURST + 3).collect::<Vec<_>>());
    }

    #[test]
    fn the_rest_after_a_broadcast_grows_with_its_packets_up_to_a_bound() {
        assert_eq!(rest_after(0, 10_000), Duration::ZERO);
        assert_eq!(rest_after(1, 2), NOTICE_PACE * 2);
        assert_eq!(rest_after(4, 1_000), NOTICE_PACE * 4_000);
        assert_eq!(rest_after(4, 1_000_000), NOTICE_MAX_REST);
        assert_eq!(rest_after(usize::MAX, usize::MAX), NOTICE_MAX_REST);
    }
}
