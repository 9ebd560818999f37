//! The doorbell between instances: "room R has a new message". The store stays the
//! source of truth; a broker may lose or reorder announcements, and the hub copes
//! (a receiver that sees a gap reads it from the store, a lagging pump catches up).
//!
//! [`InProcessBroker`] (a tokio broadcast channel) serves one instance;
//! [`super::redis_broker::RedisBroker`] (Redis pub/sub) several: it publishes each
//! message to the other instances and hands what it receives to `subscribe`'s
//! channel. It also carries [`Ending`]s: "connections opened with this credential
//! end", so a logout on one instance closes the sockets held by another; presence
//! ([`super::shared_presence`]: who is in which room on which instance); and
//! transports' [`Notice`]s (Socket.IO's `user_joined`), which are not in the log.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::message::Author;
use super::shared_presence::PresenceNews;
use super::{Delivered, Ending};

/// What the pump receives.
#[derive(Clone, Debug)]
pub enum Announcement {
    /// A committed message, with its payload.
    Message(Arc<Delivered>),
    /// Announcements may have been lost (the broker reconnected): catch every
    /// local room up from the store.
    CatchUp,
    /// A credential ended: end the local connections opened with it.
    Ended(Ending),
    /// Who other instances have in their rooms changed.
    Presence(Arc<PresenceNews>),
    /// Another instance's transport notice, for this instance's transports.
    Notice(Arc<Notice>),
}

/// A transport's event for the clients of every instance that is not a message of
/// the log (Socket.IO's `user_joined` / `user_left`): relayed as is, at most once.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Notice {
    pub event: String,
    pub data: serde_json::Value,
}

#[async_trait]
pub trait Broker: Send + Sync + 'static {
    /// Announces a committed message to every instance, this one included.
    async fn publish(&self, message: Arc<Delivered>);
    /// Announces to every instance, this one included, that the connections
    /// `ending` covers must end.
    async fn end(&self, ending: Ending);
    /// The announcements this instance receives.
    fn subscribe(&self) -> broadcast::Receiver<Announcement>;
    /// `user`'s presence in `room` on this instance changed: their first connection
    /// here arrived (`present`) or their last one here left. Called under the hub's
    /// lock, so it must not wait: a broker that shares presence writes it out in the
    /// background. One instance has nobody to tell.
    fn presence(&self, _room: &str, _user: &Author, _present: bool) {}
    /// Relays `notice` to the other instances (this one has delivered it already).
    async fn relay(&self, _notice: Notice) {}
    /// The pump missed announcements (it lagged): state kept from them elsewhere
    /// (which presence versions were applied) must be read again.
    fn lagged(&self) {}
}

/// One instance: announcements go straight to the local pump.
pub struct InProcessBroker {
    sender: broadcast::Sender<Announcement>,
}

impl InProcessBroker {
    /// `capacity` announcements may wait for the pump; beyond that the pump is told
    /// it lagged and catches up from the store.
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity);
        Self { sender }
    }
}

impl Default for InProcessBroker {
    /// The channel keeps its last `capacity` announcements alive (up to a few KiB
    /// each), so it is sized for bursts, not as a history: the store is that.
    fn default() -> Self {
        Self::new(1024)
    }
}

#[async_trait]
impl Broker for InProcessBroker {
    async fn publish(&self, message: Arc<Delivered>) {
        // No receiver (the pump has stopped at shutdown) is not an error.
        let _ = self.sender.send(Announcement::Message(message));
    }

    async fn end(&self, ending: Ending) {
        let _ = self.sender.send(Announcement::Ended(ending));
    }

    fn subscribe(&self) -> broadcast::Receiver<Announcement> {
        self.sender.subscribe()
    }
}
