//! One client's session with the hub, whatever its transport: the rooms it follows,
//! the last id it was given in each, its bounded queue and its send budget.
//!
//! The position per room is what makes delivery exact. Joining with `since` replays
//! from the store while live messages wait in the queue; [`Connection::accept`] then
//! drops every queued message the replay already covered and fills any gap (a
//! message announced out of order, or lost by a broker) from the store before the
//! message that revealed it. Dropping the connection leaves its rooms.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::message::{self, Appended, Author};
use super::{
    Delivered, Delivery, Hub, PAGE, PresenceChange, PresenceSnapshot, Replay, Subscriber, Tie,
};
use crate::error::ApiError;

/// Presence members listed when joining (the count is always exact).
const PRESENCE_PAGE: usize = 100;

pub struct Connection {
    hub: Arc<Hub>,
    pub id: u64,
    pub author: Author,
    /// The credential it was opened with, and whether that has ended.
    tie: Arc<Tie>,
    ip: IpAddr,
    queue: mpsc::Sender<Delivery>,
    overflow: CancellationToken,
    /// room -> the last id this client has been given.
    positions: HashMap<String, i64>,
    /// Rooms followed without being counted present yet (see
    /// [`Connection::join_unseen`]).
    unseen: Vec<String>,
    budget: SendBudget,
}

/// The result of a join.
#[derive(Debug)]
pub struct Joined {
    pub room: String,
    pub presence: PresenceSnapshot,
    /// What the client missed since the position it gave, oldest first.
    pub replay: Vec<Arc<Delivered>>,
    /// Set when that position could not be replayed exactly: the client must reload
    /// the room's state (its position is now the room's newest id).
    pub reset: Option<&'static str>,
    /// The room's position once `replay` is delivered.
    pub position: i64,
}

/// What to send the client for one delivery from the queue.
#[derive(Debug)]
pub enum Accepted {
    /// Nothing new (already seen, or a room this client left).
    Nothing,
    /// Messages in order: any that were missing, then the delivered one.
    Messages(Vec<Arc<Delivered>>),
    Presence(Arc<PresenceChange>),
    /// The gap could not be filled (retention deleted it): reload the room.
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
        queue: mpsc::Sender<Delivery>,
    ) -> Self {
        let budget = SendBudget::new(hub.settings.send_per_second);
        Self {
            hub,
            id,
            author,
            tie,
            ip,
            queue,
            overflow: CancellationToken::new(),
            positions: HashMap::new(),
            unseen: Vec::new(),
            budget,
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

    /// The rooms this connection follows, with the last id given in each.
    pub fn positions(&self) -> &HashMap<String, i64> {
        &self.positions
    }

    /// Follows `room` from `since` (replaying what came after it), or from now when
    /// `since` is `None`. Clients may join public rooms and their own notification
    /// room.
    pub async fn join(&mut self, room: &str, since: Option<i64>) -> Result<Joined, ApiError> {
        self.check_credential()?;
        message::check_room_for(room, self.author.id)?;
        if self.positions.contains_key(room) {
            self.leave(room);
        }
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
        match self.start_position(room, since).await {
            Ok((position, replay, reset)) => {
                self.hub.note_position(room, position);
                self.positions.insert(room.to_owned(), position);
                Ok(Joined {
                    room: room.to_owned(),
                    presence: self.hub.presence(room, PRESENCE_PAGE),
                    replay,
                    reset,
                    position,
                })
            }
            Err(error) => {
                self.hub
                    .unsubscribe(room, self.id, &self.author, self.is_present(room));
                self.unseen.retain(|r| r != room);
                Err(error)
            }
        }
    }

    async fn start_position(
        &self,
        room: &str,
        since: Option<i64>,
    ) -> Result<(i64, Vec<Arc<Delivered>>, Option<&'static str>), ApiError> {
        let Some(since) = since else {
            return Ok((self.hub.position(room).await?.last_id, Vec::new(), None));
        };
        match self.hub.replay(room, since.max(0)).await? {
            Replay::Messages { messages, position } => Ok((
                position,
                messages.into_iter().map(Delivered::new).collect(),
                None,
            )),
            Replay::Reset(reason) => Ok((
                self.hub.position(room).await?.last_id,
                Vec::new(),
                Some(reason),
            )),
        }
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
        self.leave(room);
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
        if !self.positions.contains_key(room) {
            return false;
        }
        self.hub.appear(room, self.id, &self.author);
        true
    }

    fn is_present(&self, room: &str) -> bool {
        !self.unseen.iter().any(|r| r == room)
    }

    /// Stops following `room`.
    pub fn leave(&mut self, room: &str) {
        if self.positions.remove(room).is_some() {
            self.hub
                .unsubscribe(room, self.id, &self.author, self.is_present(room));
        }
        self.unseen.retain(|r| r != room);
    }

    /// Turns one queued delivery into what the client should receive now.
    pub async fn accept(&mut self, delivery: Delivery) -> Result<Accepted, ApiError> {
        let delivered = match delivery {
            Delivery::Presence(change) => {
                return Ok(if self.positions.contains_key(&change.room) {
                    Accepted::Presence(change)
                } else {
                    Accepted::Nothing
                });
            }
            Delivery::Message(delivered) => delivered,
        };
        let room = &delivered.message.room;
        let Some(&seen) = self.positions.get(room) else {
            return Ok(Accepted::Nothing);
        };
        let id = delivered.message.id;
        if id <= seen {
            return Ok(Accepted::Nothing);
        }
        let mut out = Vec::new();
        if id > seen + 1 {
            // A gap: read it from the store, where it is committed (ids are
            // allocated under the room's lock, so N+1 committed before N+2 began).
            let mut after = seen;
            while after < id - 1 {
                let page = self
                    .hub
                    .store
                    .messages_after(room, after, PAGE.min(id - 1 - after))
                    .await?;
                match page.first() {
                    Some(first) if first.id == after + 1 => {}
                    _ => {
                        self.positions.insert(room.clone(), id);
                        return Ok(Accepted::Reset {
                            room: room.clone(),
                            reason: "history_pruned",
                        });
                    }
                }
                after = page.last().map_or(after, |m| m.id);
                out.extend(page.into_iter().map(Delivered::new));
            }
        }
        self.positions.insert(room.clone(), id);
        out.push(delivered);
        Ok(Accepted::Messages(out))
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
        self.budget.take()?;
        self.hub
            .send(&self.author, room, text, client_id, event)
            .await
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        for room in self.positions.keys() {
            self.hub
                .unsubscribe(room, self.id, &self.author, self.is_present(room));
        }
        self.hub.disconnected(self.id, self.author.id, self.ip);
    }
}

/// Messages per second one connection may send: a token bucket holding two
/// seconds' worth, so a short burst passes and a flood is refused.
struct SendBudget {
    per_second: f64,
    capacity: f64,
    tokens: f64,
    updated: Instant,
}

impl SendBudget {
    fn new(per_second: u32) -> Self {
        let per_second = f64::from(per_second.max(1));
        Self {
            per_second,
            capacity: per_second * 2.0,
            tokens: per_second * 2.0,
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
mod tests {
    use super::*;

    #[test]
    fn the_send_budget_allows_a_burst_then_refuses() {
        let mut budget = SendBudget::new(5);
        for _ in 0..10 {
            budget.take().unwrap();
        }
        assert!(budget.take().is_err());
    }
}
