//! The realtime hub: rooms, the persisted message log, presence and fan-out. Every
//! rule of realtime lives here; the transports (`crate::transport`) only translate
//! their protocol to these calls.
//!
//! How a message travels: [`Hub::send`] appends it to the store (which gives it the
//! room's next gapless id), then publishes it on the [`broker::Broker`]. Each
//! instance's pump receives the announcement and pushes it into the bounded queue of
//! every local [`Connection`] in that room. The connection drops what it has
//! already given its client and reads any gap from the store ([`replay`], one page
//! at a time, as the client takes them), so every client gets every message of its
//! rooms, in order, once, whatever the broker did. The store is the truth; the
//! broker is only a doorbell. When the broker may have lost announcements (it
//! reconnected, or the pump lagged), the hub tells each local room where its log
//! stands and every connection replays what it is missing.
//!
//! A connection whose queue is full is not waited for: it is cancelled with the
//! reason `slow_consumer`, and its client resumes from its last id when it
//! reconnects. Memory therefore stays bounded however many clients stop reading.
//!
//! Clients that ask rather than follow (history pages, a long poll) are
//! answered by [`history`], with the same reset rule as replays
//! ([`replay`]). The hub knows no wire format: transports encode what it gives them.
//!
//! A connection also ends with its credential ([`ending`]): auth code calls
//! [`Hub::end_credential`] after a logout, a password change, a revoked token, a
//! deleted account or a role change, and every instance ends the connections opened
//! with it.
//!
//! Presence ([`presence`]) is counted per user; with several instances the broker
//! shares it ([`shared_presence`]), so every instance counts, lists and announces the
//! members of all of them.

pub mod broker;
pub mod connection;
pub mod ending;
pub mod history;
pub mod message;
pub mod presence;
pub mod redis_broker;
pub mod replay;
pub mod room_list;
pub mod shared_presence;
#[cfg(test)]
pub(crate) mod testing;

use std::any::Any;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::sync::lock;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::auth::Credential;
use crate::config::RealtimeConfig;
use crate::error::ApiError;
use crate::store::MessageStore;
pub use broker::{Announcement, Broker, InProcessBroker, Notice};
pub use connection::{Connection, Joined, Next};
pub use ending::{EndReason, Ending, Revoked, Tie};
pub use history::{History, Polled, Window};
use message::{Appended, Author, Message, NewMessage, Position};
pub use presence::{PresenceChange, PresenceSnapshot};
pub use replay::{Page, Start};

/// The text a replay page may hold, about: its message count is this divided by
/// the longest message allowed (4,000 characters by default: 64 messages), so that
/// a connection replaying to a client that does not read holds a few hundred KiB.
const REPLAY_PAGE_CHARS: usize = 256 * 1024;
/// Mentions in one message that become notifications; more are ignored.
const MAX_MENTIONS: usize = 5;

/// Slots in which transports keep a message's wire encodings ([`Delivered::wire`]).
pub const WIRE_SLOTS: usize = 2;

/// A message with its JSON made once for all subscribers. Wire encodings (the
/// WebSocket frame, the Socket.IO event) are the transports' (`transport::encoded`):
/// the hub only keeps them with the message, in slots whose contents it does not
/// know, so that a fan-out encodes each message once however far behind its
/// subscribers read it.
pub struct Delivered {
    pub message: Message,
    /// The message object (SSE `data:`, long-poll arrays, REST).
    pub json: String,
    wire: [OnceLock<Box<dyn Any + Send + Sync>>; WIRE_SLOTS],
}

impl Delivered {
    pub fn new(message: Message) -> Arc<Self> {
        let json = message.to_json();
        Arc::new(Self {
            message,
            json,
            wire: Default::default(),
        })
    }

    /// The encoding a transport keeps in `slot`, made by `make` for the first
    /// subscriber that asks and shared by the others. One type per slot.
    pub fn wire<T: Clone + Send + Sync + 'static>(
        &self,
        slot: usize,
        make: impl FnOnce(&Message) -> T,
    ) -> T {
        let kept = self.wire[slot].get_or_init(|| Box::new(make(&self.message)));
        kept.downcast_ref::<T>()
            .expect("each wire slot holds one type")
            .clone()
    }
}

impl std::fmt::Debug for Delivered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivered")
            .field("message", &self.message)
            .finish_non_exhaustive()
    }
}

/// What a connection's queue carries.
#[derive(Clone, Debug)]
pub enum Delivery {
    Message(Arc<Delivered>),
    Presence(Arc<PresenceChange>),
    /// The room's log stands at this id (after a broker lost announcements): a
    /// connection behind it replays the difference from the store.
    Position(Arc<LogPosition>),
}

/// Where a room's log stands, as announced to its subscribers.
#[derive(Debug)]
pub struct LogPosition {
    pub room: String,
    pub last_id: i64,
}

/// Messages read from the store per replay page, for messages of at most
/// `max_message_chars`: about [`REPLAY_PAGE_CHARS`] of text, 8 to 500 messages.
fn replay_page_for(max_message_chars: usize) -> i64 {
    (REPLAY_PAGE_CHARS / max_message_chars.max(1)).clamp(8, 500) as i64
}

/// The local subscribers of one room, and who is present in it. Kept while either
/// is not empty: with several instances a room may have members but no subscriber
/// here.
#[derive(Default)]
struct LocalRoom {
    subscribers: HashMap<u64, Subscriber>,
    presence: presence::Members,
}

#[derive(Clone)]
struct Subscriber {
    queue: mpsc::Sender<Delivery>,
    /// Cancelled when the queue overflows: the connection closes as a slow consumer.
    overflow: CancellationToken,
}

/// Open realtime connections, per account and per client address.
#[derive(Default)]
struct ConnectionCounts {
    per_user: HashMap<i64, u32>,
    per_ip: HashMap<IpAddr, u32>,
}

/// Counters for `/stream` and `/metrics`.
#[derive(Default)]
pub struct HubStats {
    pub connections: AtomicU64,
    pub messages_sent: AtomicU64,
    pub deliveries: AtomicU64,
    pub slow_consumers: AtomicU64,
}

pub struct Hub {
    /// The message log: the hub is the only code that reads or writes it.
    store: Arc<dyn MessageStore>,
    broker: Arc<dyn Broker>,
    settings: RealtimeConfig,
    /// Messages read from the store per replay page.
    replay_page: i64,
    rooms: Mutex<HashMap<String, LocalRoom>>,
    /// Public room names by their folded form, as first written ([`room_list`]).
    room_names: Mutex<HashMap<String, String>>,
    counts: Mutex<ConnectionCounts>,
    /// Every local connection's tie to its credential, by connection id, for
    /// [`Hub::end_credential`].
    ties: Mutex<HashMap<u64, Arc<Tie>>>,
    next_connection: AtomicU64,
    /// Other instances' transport notices (see [`Hub::relayed`]).
    relayed: broadcast::Sender<Arc<Notice>>,
    pub stats: HubStats,
    /// Cancelled at shutdown: every realtime task listens to it.
    pub shutdown: CancellationToken,
}

impl Hub {
    /// Builds the hub and starts its pump (broker -> local connections) and its
    /// retention task; both stop with `shutdown`.
    pub fn start(
        store: Arc<dyn MessageStore>,
        broker: Arc<dyn Broker>,
        settings: RealtimeConfig,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        let replay_page = replay_page_for(settings.max_message_chars);
        Self::start_paged(store, broker, settings, replay_page, shutdown)
    }

    /// [`Hub::start`] with replay pages of `replay_page` messages (tests use tiny ones).
    pub(crate) fn start_paged(
        store: Arc<dyn MessageStore>,
        broker: Arc<dyn Broker>,
        settings: RealtimeConfig,
        replay_page: i64,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        let hub = Arc::new(Self {
            store,
            broker,
            settings,
            replay_page,
            rooms: Mutex::new(HashMap::new()),
            room_names: Mutex::new(HashMap::new()),
            counts: Mutex::new(ConnectionCounts::default()),
            ties: Mutex::new(HashMap::new()),
            next_connection: AtomicU64::new(1),
            relayed: broadcast::channel(256).0,
            stats: HubStats::default(),
            shutdown,
        });
        // Subscribed here, not when the task first runs: an announcement made
        // before that would be lost.
        let announcements = hub.broker.subscribe();
        tokio::spawn(pump(hub.clone(), announcements));
        tokio::spawn(retention(hub.clone()));
        hub
    }

    pub fn settings(&self) -> &RealtimeConfig {
        &self.settings
    }

    /// Messages read from the store per replay page.
    pub fn replay_page(&self) -> i64 {
        self.replay_page
    }

    #[cfg(test)]
    fn store(&self) -> &Arc<dyn MessageStore> {
        &self.store
    }

    /// Opens a connection for `author`, authenticated by `credential`, from `ip`;
    /// refused with a 429 when the account or the address already holds the most
    /// connections allowed. The connection ends when its credential does.
    pub fn connect(
        self: &Arc<Self>,
        author: Author,
        credential: Credential,
        ip: IpAddr,
    ) -> Result<Connection, ApiError> {
        {
            let mut counts = lock(&self.counts);
            let user = counts.per_user.get(&author.id).copied().unwrap_or(0);
            let by_ip = counts.per_ip.get(&ip).copied().unwrap_or(0);
            if user >= self.settings.connections_per_user
                || by_ip >= self.settings.connections_per_ip
            {
                return Err(ApiError::TooManyRequests {
                    retry_after: Duration::from_secs(5),
                });
            }
            *counts.per_user.entry(author.id).or_default() += 1;
            *counts.per_ip.entry(ip).or_default() += 1;
        }
        self.stats.connections.fetch_add(1, Ordering::Relaxed);
        metrics::gauge!("realtime_connections").increment(1.0);
        let id = self.next_connection.fetch_add(1, Ordering::Relaxed);
        let tie = Arc::new(Tie::new(author.id, credential));
        lock(&self.ties).insert(id, tie.clone());
        let queue = mpsc::channel(self.settings.queue);
        // Online from now until the connection ends (its `Drop`), whatever it follows.
        self.online(id, &author, true);
        Ok(Connection::new(self.clone(), id, author, tie, ip, queue))
    }

    /// Ends the connections `ending` covers, on every instance: this one's at once
    /// (so a send racing it on this instance is refused), the others' through the
    /// broker. Call it after the credential is gone from the store, so a client that
    /// reconnects is refused.
    pub async fn end_credential(&self, ending: Ending) {
        let ended = self.end_local(&ending);
        if ended > 0 {
            tracing::info!(
                ended,
                reason = ending.reason.code(),
                "ended realtime connections"
            );
        }
        self.broker.end(ending).await;
    }

    /// Ends this instance's connections that `ending` covers; returns how many.
    fn end_local(&self, ending: &Ending) -> usize {
        let ties = lock(&self.ties);
        ties.values()
            .filter(|tie| tie.end_if_covered(ending))
            .count()
    }

    /// Called when a connection is dropped.
    fn disconnected(&self, id: u64, author_id: i64, ip: IpAddr) {
        lock(&self.ties).remove(&id);
        let mut counts = lock(&self.counts);
        if let Some(n) = counts.per_user.get_mut(&author_id) {
            *n -= 1;
            if *n == 0 {
                counts.per_user.remove(&author_id);
            }
        }
        if let Some(n) = counts.per_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                counts.per_ip.remove(&ip);
            }
        }
        self.stats.connections.fetch_sub(1, Ordering::Relaxed);
        metrics::gauge!("realtime_connections").decrement(1.0);
    }

    /// Checks, appends and announces a chat message from `author` to `room`.
    /// Read-only rooms refuse with 403; a repeated `client_id` returns the stored
    /// message without announcing it again. `event` is structured data to keep with
    /// the message (e.g. which seed client number wrote it).
    pub async fn send(
        &self,
        author: &Author,
        room: &str,
        text: &str,
        client_id: Option<&str>,
        event: Option<serde_json::Value>,
    ) -> Result<Appended, ApiError> {
        message::check_writable(room, author.id)?;
        // `#General` is `#general` when that was written first.
        let room = &self.canonical_room(room).await?;
        let text = message::clean_text(text, self.settings.max_message_chars)?;
        if let Some(client_id) = client_id {
            message::check_client_id(client_id)?;
        }
        let appended = self
            .store
            .append_message(&NewMessage {
                room: room.to_owned(),
                author: author.clone(),
                text,
                event,
                client_id: client_id.map(str::to_owned),
            })
            .await?;
        if !appended.duplicate {
            self.stats.messages_sent.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("realtime_messages_total").increment(1);
            self.publish(appended.message.clone()).await;
            self.notify_mentions(&appended.message).await;
        }
        Ok(appended)
    }

    /// Announces a message committed elsewhere (a directory change, a notification).
    pub async fn publish(&self, message: Message) {
        self.broker.publish(Delivered::new(message)).await;
    }

    /// Appends a notification to `user_id`'s private room and announces it, unless
    /// their settings turn its kind (`event.type`) off: `None` then.
    pub async fn notify(
        &self,
        user_id: i64,
        from: &Author,
        text: String,
        event: serde_json::Value,
    ) -> Result<Option<Message>, ApiError> {
        let Some(settings) = self.store.get_settings(user_id).await? else {
            return Ok(None); // the account is gone
        };
        if !settings.wants(event["type"].as_str().unwrap_or("")) {
            return Ok(None);
        }
        let appended = self
            .store
            .append_message(&NewMessage {
                room: message::notification_room(user_id),
                author: from.clone(),
                text,
                event: Some(event),
                client_id: None,
            })
            .await?;
        self.publish(appended.message.clone()).await;
        Ok(Some(appended.message))
    }

    /// `@alice` in a message notifies Alice (never the author). A failure here is
    /// logged, not returned: the message itself was stored and sent.
    async fn notify_mentions(&self, sent: &Message) {
        for handle in message::mentions(&sent.text, MAX_MENTIONS) {
            // Folded as the directory folds names, so `@[Björn]` finds Björn
            // however names are keyed.
            let handle = crate::directory::model::match_key(&handle);
            let users = match self.store.users_by_handle(&handle, 3).await {
                Ok(users) => users,
                Err(error) => {
                    tracing::warn!(%error, "looking up a mention failed");
                    return;
                }
            };
            // A direct message's mentions reach only its two members: nobody else
            // may read it.
            let members = message::direct_members(&sent.room);
            let may_read = |id: &i64| members.is_none_or(|(a, b)| *id == a || *id == b);
            for user_id in users
                .into_iter()
                .filter(|id| *id != sent.user.id && may_read(id))
            {
                let place = match members {
                    Some(_) => "a direct message".to_owned(),
                    None => format!("#{}", sent.room),
                };
                let text = format!(
                    "{} mentioned you in {place}: {}",
                    sent.user.name,
                    preview(&sent.text)
                );
                let event = serde_json::json!({
                    "type": "mention", "room": sent.room, "message_id": sent.id,
                });
                if let Err(error) = self.notify(user_id, &sent.user, text, event).await {
                    tracing::warn!(%error, "storing a mention notification failed");
                }
            }
        }
    }

    /// Where `user_id` has read `room` up to (0: nothing read).
    pub async fn read_position(&self, user_id: i64, room: &str) -> Result<i64, ApiError> {
        Ok(self.store.read_position(user_id, room).await?)
    }

    /// Where `room`'s log stands.
    pub async fn position(&self, room: &str) -> Result<Position, ApiError> {
        Ok(self.store.room_position(room).await?)
    }

    /// Registers a local subscriber in `room` and, when `present`, its user's
    /// presence (announced to the others when the user was not in the room yet).
    fn subscribe(
        &self,
        room: &str,
        connection: u64,
        author: &Author,
        subscriber: Subscriber,
        present: bool,
    ) {
        let mut rooms = lock(&self.rooms);
        let local = rooms.entry(room.to_owned()).or_default();
        local.subscribers.insert(connection, subscriber);
        if present {
            self.arrive(local, room, connection, author);
        }
    }

    /// A subscriber of `room` that joined unseen becomes present.
    fn appear(&self, room: &str, connection: u64, author: &Author) {
        let mut rooms = lock(&self.rooms);
        if let Some(local) = rooms.get_mut(room)
            && local.subscribers.contains_key(&connection)
        {
            self.arrive(local, room, connection, author);
        }
    }

    /// `author`'s connection `connection` is present in `room`: announced to the
    /// room's other subscribers when the user was not present yet (on any instance),
    /// and to the other instances when it is the user's first connection here.
    fn arrive(&self, local: &mut LocalRoom, room: &str, connection: u64, author: &Author) {
        let moved = local.presence.arrive(room, author);
        if moved.here {
            self.broker.presence(room, author, true);
        }
        if let Some(change) = moved.change {
            broadcast(
                local,
                Delivery::Presence(Arc::new(change)),
                Some(connection),
            );
        }
    }

    fn unsubscribe(&self, room: &str, connection: u64, author: &Author, present: bool) {
        let mut rooms = lock(&self.rooms);
        let Some(local) = rooms.get_mut(room) else {
            return;
        };
        if local.subscribers.remove(&connection).is_none() {
            return;
        }
        if present {
            self.depart(local, room, author);
        }
        if local.subscribers.is_empty() && local.presence.is_empty() {
            rooms.remove(room);
        }
    }

    /// `author`'s connection left `room`: announced to the room's subscribers when
    /// it was the user's last (on any instance), to the other instances when it was
    /// their last one here.
    fn depart(&self, local: &mut LocalRoom, room: &str, author: &Author) {
        let moved = local.presence.depart(room, author);
        if moved.here {
            self.broker.presence(room, author, false);
        }
        if let Some(change) = moved.change {
            broadcast(local, Delivery::Presence(Arc::new(change)), None);
        }
    }

    /// Counts `author`'s connection `connection` online ([`message::ONLINE_ROOM`]),
    /// or no longer: called as every connection opens and ends, whatever it follows.
    /// The room's subscribers (directory pages) hear `user_joined` / `user_left`
    /// when a user comes online or their last connection anywhere ends.
    fn online(&self, connection: u64, author: &Author, arriving: bool) {
        let room = message::ONLINE_ROOM;
        let mut rooms = lock(&self.rooms);
        if arriving {
            let local = rooms.entry(room.to_owned()).or_default();
            self.arrive(local, room, connection, author);
        } else if let Some(local) = rooms.get_mut(room) {
            self.depart(local, room, author);
            if local.subscribers.is_empty() && local.presence.is_empty() {
                rooms.remove(room);
            }
        }
    }

    /// Who is in `room` (on every instance, with a shared presence): exact count,
    /// first `limit` members by name.
    pub fn presence(&self, room: &str, limit: usize) -> PresenceSnapshot {
        let rooms = lock(&self.rooms);
        match rooms.get(room) {
            Some(local) => local.presence.snapshot(room, limit),
            None => PresenceSnapshot::empty(room),
        }
    }

    /// How many users are in `room`: [`Hub::presence`]'s count, without listing
    /// (and sorting) the members.
    pub fn presence_count(&self, room: &str) -> usize {
        let rooms = lock(&self.rooms);
        rooms.get(room).map_or(0, |local| local.presence.count())
    }

    /// Rooms with subscribers on this instance.
    pub fn active_rooms(&self) -> usize {
        lock(&self.rooms)
            .values()
            .filter(|r| !r.subscribers.is_empty())
            .count()
    }

    /// Relays a transport's notice to the other instances' transports (those of
    /// this one have it already). At most once: lost while Redis is down.
    pub async fn relay(&self, notice: Notice) {
        self.broker.relay(notice).await;
    }

    /// The notices other instances' transports relayed.
    pub fn relayed(&self) -> broadcast::Receiver<Arc<Notice>> {
        self.relayed.subscribe()
    }

    /// Pushes a message to every local subscriber of its room.
    fn fan_out(&self, delivered: &Arc<Delivered>) {
        let mut rooms = lock(&self.rooms);
        let Some(local) = rooms.get_mut(&delivered.message.room) else {
            return;
        };
        let sent = broadcast(local, Delivery::Message(delivered.clone()), None);
        self.stats.deliveries.fetch_add(sent.0, Ordering::Relaxed);
        self.stats
            .slow_consumers
            .fetch_add(sent.1, Ordering::Relaxed);
    }

    /// Tells the local subscribers of `room` that its log stands at `last_id`; each
    /// one behind replays the difference from the store at its client's pace. One
    /// delivery per subscriber, however many messages were missed: a catch-up never
    /// overflows a queue.
    fn announce_position(&self, room: &str, last_id: i64) {
        let rooms = lock(&self.rooms);
        let Some(local) = rooms.get(room) else {
            return;
        };
        let position = Arc::new(LogPosition {
            room: room.to_owned(),
            last_id,
        });
        let sent = broadcast(local, Delivery::Position(position), None);
        self.stats
            .slow_consumers
            .fetch_add(sent.1, Ordering::Relaxed);
    }

    /// After the broker lost announcements: reads where each local room's log
    /// stands and announces it to the room's subscribers. Per subscriber, not per
    /// room: a client that joined meanwhile is already further on than one that
    /// waited through the outage, and each replays exactly what it is missing.
    async fn catch_up_all(&self) {
        let rooms: Vec<String> = lock(&self.rooms)
            .iter()
            .filter(|(_, local)| !local.subscribers.is_empty())
            .map(|(room, _)| room.clone())
            .collect();
        for room in rooms {
            match self.store.room_position(&room).await {
                Ok(position) => self.announce_position(&room, position.last_id),
                Err(error) => tracing::warn!(%error, room, "catching up a room failed"),
            }
        }
    }
}

/// Offers `delivery` to every subscriber of `local` (but `except`), without
/// waiting. A full queue cancels that connection as a slow consumer; it stays
/// registered (later offers fail just as cheaply) until the connection is dropped and
/// leaves its rooms, which also keeps presence right. Returns (delivered, newly
/// overflowed).
fn broadcast(local: &LocalRoom, delivery: Delivery, except: Option<u64>) -> (u64, u64) {
    let mut delivered = 0;
    let mut overflowed = 0;
    for (id, subscriber) in &local.subscribers {
        if Some(*id) == except {
            continue;
        }
        match subscriber.queue.try_send(delivery.clone()) {
            Ok(()) => delivered += 1,
            Err(mpsc::error::TrySendError::Full(_)) => {
                if !subscriber.overflow.is_cancelled() {
                    subscriber.overflow.cancel();
                    overflowed += 1;
                }
            }
            // The connection is being dropped; it unsubscribes itself.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
    (delivered, overflowed)
}

fn preview(text: &str) -> String {
    const MAX: usize = 80;
    if text.chars().count() <= MAX {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(MAX).collect();
        format!("{cut}…")
    }
}

/// Broker announcements -> local connections, until shutdown.
async fn pump(hub: Arc<Hub>, mut announcements: broadcast::Receiver<Announcement>) {
    loop {
        tokio::select! {
            _ = hub.shutdown.cancelled() => return,
            received = announcements.recv() => match received {
                Ok(Announcement::Message(delivered)) => hub.fan_out(&delivered),
                Ok(Announcement::CatchUp) => hub.catch_up_all().await,
                Ok(Announcement::Ended(ending)) => {
                    hub.end_local(&ending);
                }
                Ok(Announcement::Presence(news)) => hub.apply_presence(&news),
                Ok(Announcement::Notice(notice)) => {
                    // Nobody listening (no Socket.IO) is fine.
                    let _ = hub.relayed.send(notice);
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "the hub pump fell behind the broker; catching up from the store");
                    hub.broker.lagged();
                    hub.catch_up_all().await;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}

/// Deletes messages past the retention limits, soon after start and then every
/// ten minutes.
async fn retention(hub: Arc<Hub>) {
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(5),
        Duration::from_secs(600),
    );
    loop {
        tokio::select! {
            _ = hub.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let max_age_ms = i64::from(hub.settings.history_max_days) * 86_400_000;
        let cutoff = crate::store::messages::now_ms().saturating_sub(max_age_ms);
        match hub
            .store
            .prune_messages(i64::from(hub.settings.history_max_messages), cutoff)
            .await
        {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "retention deleted old messages"),
            Err(error) => tracing::warn!(%error, "message retention failed"),
        }
    }
}
