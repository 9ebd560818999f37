//! Fan-out across instances through Redis pub/sub (`--redis-url`).
//!
//! Every instance publishes each committed message on one channel
//! (`{prefix}hub`) and hands what the others publish to its own pump. Its own
//! messages go to its pump directly, without the round trip. Redis pub/sub is
//! at-most-once: a message published while an instance was disconnected is lost to
//! it. That is fine because the database is the log: after every reconnect the pump
//! is told to catch every local room up from the store, and a connection that sees a
//! gap reads it from the store anyway.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use serde::Deserialize;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::Delivered;
use super::broker::{Announcement, Broker};
use super::message::Message;

pub struct RedisBroker {
    local: broadcast::Sender<Announcement>,
    publisher: redis::aio::ConnectionManager,
    channel: String,
    /// This instance, so it can skip its own messages coming back from Redis.
    origin: String,
}

#[derive(Deserialize)]
struct Envelope {
    origin: String,
    message: Message,
}

impl RedisBroker {
    /// Starts listening on `client` (a dedicated pub/sub connection, re-established
    /// until `shutdown`); publishes through `publisher`.
    pub fn start(
        client: redis::Client,
        publisher: redis::aio::ConnectionManager,
        prefix: &str,
        shutdown: CancellationToken,
    ) -> Self {
        let (local, _) = broadcast::channel(1024);
        let channel = format!("{prefix}hub");
        let origin = uuid::Uuid::new_v4().to_string();
        tokio::spawn(listen(
            client,
            channel.clone(),
            origin.clone(),
            local.clone(),
            shutdown,
        ));
        Self {
            local,
            publisher,
            channel,
            origin,
        }
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
        let mut connection = self.publisher.clone();
        if let Err(error) = redis::cmd("PUBLISH")
            .arg(&self.channel)
            .arg(payload)
            .query_async::<()>(&mut connection)
            .await
        {
            // The others find it in the store with their next message of this room
            // (a gap), or when their pub/sub connection comes back (a catch-up).
            tracing::warn!(%error, "publishing a message to Redis failed");
        }
    }

    fn subscribe(&self) -> broadcast::Receiver<Announcement> {
        self.local.subscribe()
    }
}

async fn listen(
    client: redis::Client,
    channel: String,
    origin: String,
    local: broadcast::Sender<Announcement>,
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
                                Some(received) => forward(&received, &origin, &local),
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

fn forward(received: &redis::Msg, origin: &str, local: &broadcast::Sender<Announcement>) {
    let Ok(payload) = received.get_payload::<String>() else {
        return;
    };
    match serde_json::from_str::<Envelope>(&payload) {
        Ok(envelope) if envelope.origin == origin => {}
        Ok(envelope) => {
            let _ = local.send(Announcement::Message(Delivered::new(envelope.message)));
        }
        Err(error) => tracing::warn!(%error, "an unreadable message on the Redis hub channel"),
    }
}
