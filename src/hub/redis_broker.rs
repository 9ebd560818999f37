//! Fan-out across instances through Redis pub/sub (`--redis-url`).
//!
//! Every instance publishes each committed message on one channel
//! (`{prefix}hub`) and hands what the others publish to its own pump. Its own
//! messages go to its pump directly, without the round trip. Redis pub/sub is
//! at-most-once: a message published while an instance was disconnected is lost to
//! it. That is fine because the database is the log: after every reconnect the pump
//! is told to catch every local room up from the store, and a connection that sees a
//! gap reads it from the store anyway.
//!
//! Credential endings ([`Ending`]) travel on the same channel. They are not in the
//! store, so one published while an instance's pub/sub connection was down does not
//! reach that instance; Redis redelivers nothing, and the instance's connections
//! opened with that credential stay open until they close (a reconnect is refused).
//!
//! Presence changes (written by [`SharedPresence`], which owns their format and the
//! hashes behind them) and transports' [`Notice`]s travel on it as well.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use serde::Deserialize;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::broker::{Announcement, Broker, Notice};
use super::message::{Author, Message};
use super::shared_presence::{Delta, SharedPresence};
use super::{Delivered, Ending};
use crate::breaker::{Breaker, Refused};

pub struct RedisBroker {
    local: broadcast::Sender<Announcement>,
    publisher: redis::aio::ConnectionManager,
    /// While Redis is down, publishes are dropped at once instead of each waiting;
    /// the others catch up from the store when their pub/sub connection is back.
    breaker: Arc<Breaker>,
    channel: String,
    /// This instance, so it can skip its own messages coming back from Redis.
    origin: String,
    /// Set while a task waits to tell the others to catch up (see [`Self::repair`]).
    repairing: Arc<std::sync::atomic::AtomicBool>,
    presence: Arc<SharedPresence>,
    shutdown: CancellationToken,
}

/// What travels on the channel: a message, or a credential ending.
#[derive(Deserialize)]
struct Envelope {
    origin: String,
    #[serde(default)]
    message: Option<Message>,
    #[serde(default)]
    ended: Option<Ending>,
    /// The sender dropped messages while Redis was down: catch up from the store.
    #[serde(default)]
    catch_up: bool,
    /// The sender's presence changed.
    #[serde(default)]
    presence: Option<Delta>,
    #[serde(default)]
    notice: Option<Notice>,
}

impl RedisBroker {
    /// Starts listening on `client` (a dedicated pub/sub connection, re-established
    /// until `shutdown`); publishes through `publisher`.
    pub fn start(
        client: redis::Client,
        publisher: redis::aio::ConnectionManager,
        breaker: Arc<Breaker>,
        prefix: &str,
        shutdown: CancellationToken,
    ) -> Self {
        let (local, _) = broadcast::channel(1024);
        let channel = format!("{prefix}hub");
        let origin = uuid::Uuid::new_v4().to_string();
        let presence = SharedPresence::start(
            &origin,
            publisher.clone(),
            breaker.clone(),
            prefix,
            &channel,
            local.clone(),
            shutdown.clone(),
        );
        tokio::spawn(listen(
            client,
            channel.clone(),
            origin.clone(),
            local.clone(),
            presence.clone(),
            shutdown.clone(),
        ));
        Self {
            local,
            publisher,
            breaker,
            channel,
            origin,
            repairing: Default::default(),
            presence,
            shutdown,
        }
    }

    /// After a dropped publish: probes Redis every second until it answers, then
    /// asks every instance to catch up from the store. An instance whose pub/sub came
    /// back before this one could publish again has already caught up once and would
    /// otherwise miss what was dropped since, until the room's next message; and with no
    /// further traffic here nothing else would probe Redis and close the breaker.
    fn repair(&self) {
        use std::sync::atomic::Ordering;
        if self.repairing.swap(true, Ordering::SeqCst) {
            return;
        }
        let (publisher, breaker, channel, repairing, shutdown) = (
            self.publisher.clone(),
            self.breaker.clone(),
            self.channel.clone(),
            self.repairing.clone(),
            self.shutdown.clone(),
        );
        let payload = serde_json::json!({ "origin": self.origin, "catch_up": true }).to_string();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                let mut connection = publisher.clone();
                let mut command = redis::cmd("PUBLISH");
                command.arg(&channel).arg(&payload);
                // Cleared first: a publish dropped from here on starts a new repair.
                repairing.store(false, Ordering::SeqCst);
                if breaker
                    .call(command.query_async::<()>(&mut connection))
                    .await
                    .is_ok()
                {
                    return;
                }
                repairing.store(true, Ordering::SeqCst);
            }
        });
    }

    /// Publishes `payload` on the hub channel, to the other instances.
    /// Fails at once while the breaker is open (it logs the outage once).
    async fn send(&self, payload: String) -> Result<(), Refused<redis::RedisError>> {
        let mut connection = self.publisher.clone();
        let mut command = redis::cmd("PUBLISH");
        command.arg(&self.channel).arg(payload);
        self.breaker
            .call(command.query_async::<()>(&mut connection))
            .await
    }
}

#[async_trait]
impl Broker for RedisBroker {
    async fn publish(&self, message: Arc<Delivered>) {
        let payload = format!(
            "{{\"origin\":\"{}\",\"message\":{}}}",
            self.origin, message.json
        );
        let _ = self.local.send(Announcement::Message(message));
        // On failure the others find it in the store with their next message of this
        // room (a gap), or when their pub/sub connection comes back (a catch-up). The
        // breaker has logged the outage; a line per message would flood the log.
        if self.send(payload).await.is_err() {
            self.repair();
        }
    }

    async fn end(&self, ending: Ending) {
        let payload = serde_json::json!({ "origin": self.origin, "ended": ending }).to_string();
        let _ = self.local.send(Announcement::Ended(ending));
        // Rare and not in the store: worth a line each, unless merely skipped.
        match self.send(payload).await {
            Ok(()) | Err(Refused::Open) => {}
            Err(error) => {
                tracing::warn!(%error, "publishing a credential ending to Redis failed")
            }
        }
    }

    fn subscribe(&self) -> broadcast::Receiver<Announcement> {
        self.local.subscribe()
    }

    fn presence(&self, room: &str, user: &Author, present: bool) {
        self.presence.note(room, user, present);
    }

    async fn relay(&self, notice: Notice) {
        let payload = serde_json::json!({ "origin": self.origin, "notice": notice }).to_string();
        // Ephemeral: lost while Redis is down, like any pub/sub message.
        let _ = self.send(payload).await;
    }

    fn lagged(&self) {
        self.presence.forget_versions();
    }
}

async fn listen(
    client: redis::Client,
    channel: String,
    origin: String,
    local: broadcast::Sender<Announcement>,
    presence: Arc<SharedPresence>,
    shutdown: CancellationToken,
) {
    let mut connected_before = false;
    loop {
        match client.get_async_pubsub().await {
            Ok(pubsub) => {
                let (mut sink, mut stream) = pubsub.split();
                if let Err(error) = sink.subscribe(&channel).await {
                    tracing::warn!(%error, "subscribing to the Redis hub channel failed");
                } else {
                    if connected_before {
                        tracing::info!("Redis pub/sub is back; catching up from the store");
                        let _ = local.send(Announcement::CatchUp);
                    }
                    connected_before = true;
                    loop {
                        tokio::select! {
                            _ = shutdown.cancelled() => return,
                            received = stream.next() => match received {
                                Some(received) => forward(&received, &origin, &local, &presence),
                                None => break,
                            },
                        }
                    }
                    tracing::warn!("the Redis pub/sub connection closed; reconnecting");
                }
            }
            Err(error) => tracing::warn!(%error, "connecting to Redis for pub/sub failed"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

fn forward(
    received: &redis::Msg,
    origin: &str,
    local: &broadcast::Sender<Announcement>,
    presence: &SharedPresence,
) {
    let Ok(payload) = received.get_payload::<String>() else {
        return;
    };
    match serde_json::from_str::<Envelope>(&payload) {
        Ok(envelope) if envelope.origin == origin => {}
        Ok(Envelope {
            message: Some(message),
            ..
        }) => {
            let _ = local.send(Announcement::Message(Delivered::new(message)));
        }
        Ok(Envelope {
            ended: Some(ending),
            ..
        }) => {
            let _ = local.send(Announcement::Ended(ending));
        }
        Ok(Envelope { catch_up: true, .. }) => {
            let _ = local.send(Announcement::CatchUp);
        }
        Ok(Envelope {
            origin,
            presence: Some(delta),
            ..
        }) => presence.received(&origin, delta),
        Ok(Envelope {
            notice: Some(notice),
            ..
        }) => {
            let _ = local.send(Announcement::Notice(Arc::new(notice)));
        }
        Ok(_) => tracing::warn!("an empty envelope on the Redis hub channel"),
        Err(error) => tracing::warn!(%error, "an unreadable message on the Redis hub channel"),
    }
}
