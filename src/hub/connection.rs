//! One client's session with the hub, whatever its transport: the rooms it follows,
//! the last id it was given in each, its bounded queue, the replay it is working
//! through, and its budgets.
//!
//! The transport pulls: it calls [`Connection::next`] (or [`Connection::try_next`]
//! for what is ready without waiting) whenever its client can take more, and writes
//! what it gets. Deliveries are exact because the connection keeps, per room, the
//! last id it gave and a "replaying up to" mark:
//!
//! - a live message right after the last id given goes out at once;
//! - anything else (a join with `since`, a live message that reveals a gap, a
//!   broker's catch-up saying "the room is at N now") raises the mark, and the
//!   missing messages are read from the store one page at a time, only when the
//!   client has taken the previous page. Live messages for a room that is still
//!   replaying are skipped: the replay reads them from the store, in order.
//!
//! A connection therefore never holds more than one page of its log plus its bounded
//! queue, and a backlog of any length never overflows the queue. Dropping the
//! connection leaves its rooms.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::message::{self, Appended, Author, Message};
use super::replay::{Page, Start};
use super::{Delivered, Delivery, Hub, PresenceChange, PresenceSnapshot, Subscriber, Tie};
use crate::error::ApiError;

/// Presence members listed when joining (the count is always exact).
const PRESENCE_PAGE: usize = 100;
/// Members listed when joining the online room: the directory page marks the rows
/// of those it lists (and follows arrivals and departures from there).
const ONLINE_PAGE: usize = 1_000;

fn presence_page(room: &str) -> usize {
    if room == message::ONLINE_ROOM {
        ONLINE_PAGE
    } else {
        PRESENCE_PAGE
    }
}

/// `join` and `leave` requests per second one connection may make, once its first
/// burst (enough to join every room it may follow) is spent: each one changes
/// presence, which every member of the room hears about.
const CONTROL_PER_SECOND: u32 = 5;

pub struct Connection {
    hub: Arc<Hub>,
    pub id: u64,
    pub author: Author,
    /// The credential it was opened with, and whether that has ended.
    tie: Arc<Tie>,
    ip: IpAddr,
    /// The sending half of this connection's queue, given to each room it joins.
    queue: mpsc::Sender<Delivery>,
    deliveries: mpsc::Receiver<Delivery>,
    overflow: CancellationToken,
    rooms: HashMap<String, Followed>,
    /// The next messages of the replay under way (of one room, oldest first): at most
    /// one page, refilled by [`Connection::next`] once the client took them all.
    page: VecDeque<Message>,
    sends: Budget,
    control: Budget,
    /// Rooms followed without being counted present yet (see
    /// [`Connection::join_unseen`]).
    unseen: Vec<String>,
}

/// A room this connection follows.
#[derive(Clone, Copy, Debug)]
struct Followed {
    /// The last id given to the client.
    given: i64,
    /// Where it started: while `given` is still here, nothing was given, and a
    /// re-join may start it anywhere (see [`Connection::rejoin`]).
    started: i64,
    /// The replay runs while `given < replay_to`; raised by whatever shows the room
    /// is further on (never lowered).
    replay_to: i64,
}

/// The result of a join. What the client missed comes afterwards, from
/// [`Connection::next`].
#[derive(Debug)]
pub struct Joined {
    pub room: String,
    pub presence: PresenceSnapshot,
    /// Set when the position asked for could not be replayed exactly: the client
    /// must reload the room's state (its position is now the room's newest id).
    pub reset: Option<&'static str>,
    /// Where the client stands in the room now: replayed messages follow this id.
    pub from: i64,
    /// The room's newest id at the join: the replay goes (at least) this far.
    pub position: i64,
}

/// The next thing to send the client.
#[derive(Debug)]
pub enum Next {
    Message(Arc<Delivered>),
    Presence(Arc<PresenceChange>),
    /// The room's log cannot be replayed exactly (retention deleted part of what
    /// the client needs): reload the room.
    Reset {
        room: String,
        reason: &'static str,
    },
}

impl Connection {
    pub(super) fn new(
        hub: Arc<Hub>,
        id: u64,
        author: Author,
        tie: Arc<Tie>,
        ip: IpAddr,
        (queue, deliveries): (mpsc::Sender<Delivery>, mpsc::Receiver<Delivery>),
    ) -> Self {
        let settings = hub.settings();
        let sends = Budget::new(
            settings.send_per_second,
            settings.send_per_second.saturating_mul(2),
        );
        let control = Budget::new(
            CONTROL_PER_SECOND,
            u32::try_from(settings.rooms_per_connection)
                .unwrap_or(u32::MAX)
                .max(CONTROL_PER_SECOND * 2),
        );
        Self {
            hub,
            id,
            author,
            tie,
            ip,
            queue,
            deliveries,
            overflow: CancellationToken::new(),
            rooms: HashMap::new(),
            page: VecDeque::new(),
            sends,
            control,
            unseen: Vec::new(),
        }
    }

    /// Cancelled when this connection's queue overflowed: close it with the reason
    /// `slow_consumer`; the client resumes from its positions.
    pub fn overflow(&self) -> &CancellationToken {
        &self.overflow
    }

    /// Cancelled when the credential this connection was opened with ended (see
    /// [`super::ending`]): tell the client [`Connection::end_reason`] and close.
    pub fn ended(&self) -> &CancellationToken {
        self.tie.ended()
    }

    /// Why the connection's credential ended, once it has.
    pub fn end_reason(&self) -> Option<super::EndReason> {
        self.tie.reason()
    }

    /// Refuses work on behalf of an ended credential: a frame that raced the ending
    /// must not act as its user.
    fn check_credential(&self) -> Result<(), ApiError> {
        match self.end_reason() {
            Some(reason) => Err(reason.error()),
            None => Ok(()),
        }
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// Follows `room` from `since` (replaying what came after it), or from now when
    /// `since` is `None` (a room it already follows: see [`Connection::rejoin`]).
    /// Clients may join public rooms and their own notification
    /// room, up to the configured number of rooms, within the control budget.
    pub async fn join(&mut self, room: &str, since: Option<i64>) -> Result<Joined, ApiError> {
        self.check_credential()?;
        self.control.take()?;
        message::check_room_for(room, self.author.id)?;
        if let Some(followed) = self.rooms.get(room).copied() {
            return self.rejoin(room, followed, since).await;
        }
        if self.rooms.len() >= self.hub.settings().rooms_per_connection {
            return Err(ApiError::bad_request(
                "too_many_rooms",
                format!(
                    "A connection follows at most {} rooms; leave one first",
                    self.hub.settings().rooms_per_connection
                ),
            ));
        }
        // Subscribed before the position is read: a message committed in between is
        // both in the queue and within the replay, and the queue's copy is skipped.
        self.hub.subscribe(
            room,
            self.id,
            &self.author,
            Subscriber {
                queue: self.queue.clone(),
                overflow: self.overflow.clone(),
            },
            self.is_present(room),
        );
        let start = match self.hub.start_from(room, since).await {
            Ok(start) => start,
            Err(error) => {
                self.hub
                    .unsubscribe(room, self.id, &self.author, self.is_present(room));
                self.unseen.retain(|r| r != room);
                return Err(error);
            }
        };
        self.rooms.insert(
            room.to_owned(),
            Followed {
                given: start.from,
                started: start.from,
                replay_to: start.to,
            },
        );
        Ok(Joined {
            room: room.to_owned(),
            presence: self.hub.presence(room, presence_page(room)),
            reset: start.reset,
            from: start.from,
            position: start.to,
        })
    }

    /// A join of a room this connection already follows never gives an id twice
    /// nor out of order, and leaves presence as it is:
    ///
    /// - while it has given nothing there yet (it follows from its start, say
    ///   Socket.IO's `general` from connect), it starts again from `since` like a
    ///   first join: a resume;
    /// - once it has, it never goes back: a `since` past the last id given moves
    ///   it on, as a join from there would; any other (or none) keeps its place.
    ///
    /// The answer says where the connection stands (`from`).
    async fn rejoin(
        &mut self,
        room: &str,
        followed: Followed,
        since: Option<i64>,
    ) -> Result<Joined, ApiError> {
        let fresh = followed.given == followed.started;
        let start = if fresh || since.is_some_and(|s| s > followed.given) {
            self.hub.start_from(room, since).await?
        } else {
            let now = self.hub.position(room).await?.last_id;
            Start {
                from: followed.given,
                to: now,
                reset: None,
            }
        };
        // Nothing else touched the room meanwhile (`&mut self` is held throughout).
        let from = if fresh {
            start.from
        } else {
            start.from.max(followed.given)
        };
        if from != followed.given && self.page.front().is_some_and(|m| m.room == room) {
            // The page was read from the old place: read on from the new one.
            self.page.clear();
        }
        let replay_to = start.to.max(followed.replay_to).max(from);
        self.rooms.insert(
            room.to_owned(),
            Followed {
                given: from,
                started: if fresh { from } else { followed.started },
                replay_to,
            },
        );
        Ok(Joined {
            room: room.to_owned(),
            presence: self.hub.presence(room, presence_page(room)),
            reset: start.reset,
            from,
            position: replay_to,
        })
    }

    /// Follows `room` like [`Connection::join`], without counting this connection
    /// present there until [`Connection::appear`]: Socket.IO's `general` follows
    /// the chat from connect, and its user is present from their `join` (as in the
    /// Flask-SocketIO chat, whose user count rises at each `join`).
    pub async fn join_unseen(
        &mut self,
        room: &str,
        since: Option<i64>,
    ) -> Result<Joined, ApiError> {
        self.unfollow(room);
        self.unseen.push(room.to_owned());
        self.join(room, since).await
    }

    /// Counts this connection present in `room`, which it joined unseen; `false`
    /// when it was already present there, or does not follow it.
    pub fn appear(&mut self, room: &str) -> bool {
        let Some(at) = self.unseen.iter().position(|r| r == room) else {
            return false;
        };
        self.unseen.swap_remove(at);
        if !self.rooms.contains_key(room) {
            return false;
        }
        self.hub.appear(room, self.id, &self.author);
        true
    }

    fn is_present(&self, room: &str) -> bool {
        // Every chat page follows the created-rooms log: presence there would tell
        // every page of every arrival and departure (N pages, N² presence events)
        // and means nothing.
        // The online room counts every connection already (`Hub::online`).
        room != message::ROOM_LIST_ROOM
            && room != message::ONLINE_ROOM
            && !self.unseen.iter().any(|r| r == room)
    }

    /// Stops following `room` (nothing happens when it was not followed); refused
    /// with `rate_limited` beyond the control budget.
    pub fn leave(&mut self, room: &str) -> Result<(), ApiError> {
        self.control.take()?;
        self.unfollow(room);
        Ok(())
    }

    fn unfollow(&mut self, room: &str) {
        if self.rooms.remove(room).is_some() {
            if self.page.front().is_some_and(|m| m.room == room) {
                self.page.clear();
            }
            self.hub
                .unsubscribe(room, self.id, &self.author, self.is_present(room));
        }
        self.unseen.retain(|r| r != room);
    }

    /// Whether this connection follows `room`.
    pub fn follows(&self, room: &str) -> bool {
        self.rooms.contains_key(room)
    }

    /// The next thing for the client: a live delivery, else the next message of a
    /// replay (reading its next page from the store when the last one is taken),
    /// else whatever arrives. Cancel-safe (nothing is lost when a `select!` drops
    /// it); an error is the store failing during a replay: end the connection, the
    /// client resumes from its last id.
    pub async fn next(&mut self) -> Result<Next, ApiError> {
        loop {
            if let Some(next) = self.try_next() {
                return Ok(next);
            }
            if let Some(next) = self.read_page().await? {
                return Ok(next);
            }
            if !self.page.is_empty() {
                continue;
            }
            // The connection holds a sender of its own queue, so it never closes.
            if let Some(delivery) = self.deliveries.recv().await
                && let Some(next) = self.accept(delivery)
            {
                return Ok(next);
            }
        }
    }

    /// What is ready without waiting or reading the store: queued live deliveries
    /// first (taking them keeps the queue from overflowing, and those of a room
    /// still replaying are only skipped), then the current replay page.
    pub fn try_next(&mut self) -> Option<Next> {
        while let Ok(delivery) = self.deliveries.try_recv() {
            if let Some(next) = self.accept(delivery) {
                return Some(next);
            }
        }
        while let Some(message) = self.page.pop_front() {
            let Some(followed) = self.rooms.get_mut(&message.room) else {
                continue;
            };
            if message.id != followed.given + 1 {
                // Cannot happen (the page is dropped with its room), but a stale
                // page must never skip or repeat a message: read it again instead.
                self.page.clear();
                return None;
            }
            followed.given = message.id;
            return Some(Next::Message(Delivered::new(message)));
        }
        None
    }

    /// Reads the next page of a replay that is due (none when no room is behind).
    /// Nothing changes before the read returns, so cancelling it loses nothing.
    async fn read_page(&mut self) -> Result<Option<Next>, ApiError> {
        let Some((room, followed)) = self
            .rooms
            .iter()
            .find(|(_, f)| f.given < f.replay_to)
            .map(|(room, f)| (room.clone(), *f))
        else {
            return Ok(None);
        };
        let limit = (followed.replay_to - followed.given).min(self.hub.replay_page());
        let page = self.hub.page_after(&room, followed.given, limit).await?;
        match page {
            Page::Messages(messages) if !messages.is_empty() => {
                self.page = messages.into();
                Ok(None)
            }
            // What the replay needs is gone: the client reloads the room.
            Page::Messages(_) | Page::Reset(_) => {
                if let Some(followed) = self.rooms.get_mut(&room) {
                    followed.given = followed.replay_to;
                }
                Ok(Some(Next::Reset {
                    room,
                    reason: "history_pruned",
                }))
            }
        }
    }

    /// What one queued delivery means for this client, if anything now.
    fn accept(&mut self, delivery: Delivery) -> Option<Next> {
        match delivery {
            Delivery::Presence(change) => self
                .rooms
                .contains_key(&change.room)
                .then_some(Next::Presence(change)),
            Delivery::Position(position) => {
                if let Some(followed) = self.rooms.get_mut(&position.room) {
                    followed.replay_to = followed.replay_to.max(position.last_id);
                }
                None
            }
            Delivery::Message(delivered) => {
                let message = &delivered.message;
                let followed = self.rooms.get_mut(&message.room)?;
                if message.id == followed.given + 1 && followed.replay_to <= followed.given {
                    followed.given = message.id;
                    followed.replay_to = message.id;
                    return Some(Next::Message(delivered));
                }
                // Seen already, or behind a replay under way, or past a gap: in the
                // last two cases the replay reads it from the store, in order.
                followed.replay_to = followed.replay_to.max(message.id);
                None
            }
        }
    }

    /// Sends a chat message as this connection's user, within its send budget.
    pub async fn send(
        &mut self,
        room: &str,
        text: &str,
        client_id: Option<&str>,
        event: Option<serde_json::Value>,
    ) -> Result<Appended, ApiError> {
        self.check_credential()?;
        self.sends.take()?;
        self.hub
            .send(&self.author, room, text, client_id, event)
            .await
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        for room in self.rooms.keys() {
            self.hub
                .unsubscribe(room, self.id, &self.author, self.is_present(room));
        }
        self.hub.online(self.id, &self.author, false);
        self.hub.disconnected(self.id, self.author.id, self.ip);
    }
}

/// A token bucket: `per_second` requests a second, bursts of `burst`, so a short
/// burst passes and a flood is refused.
struct Budget {
    per_second: f64,
    capacity: f64,
    tokens: f64,
    updated: Instant,
}

impl Budget {
    fn new(per_second: u32, burst: u32) -> Self {
        let per_second = f64::from(per_second.max(1));
        let capacity = f64::from(burst).max(1.0);
        Self {
            per_second,
            capacity,
            tokens: capacity,
            updated: Instant::now(),
        }
    }

    fn take(&mut self) -> Result<(), ApiError> {
        let now = Instant::now();
        let elapsed = now.duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
        self.updated = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - self.tokens) / self.per_second;
            Err(ApiError::TooManyRequests {
                retry_after: Duration::from_secs_f64(wait.max(0.001)),
            })
        }
    }
}

#[cfg(test)]
mod tests;
