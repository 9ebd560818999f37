//! Reading the log for clients that ask rather than follow: a page
//! of a room's history (to draw it before subscribing from its position), and a
//! long poll's one answer. Transports translate these to their wire; the rules
//! (where to resume from, when a position cannot be replayed) are here.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use super::message::{Author, Message};
use super::replay::Page;
use super::{Hub, Next};
use crate::auth::Credential;
use crate::error::ApiError;

/// Which page of a room's history.
#[derive(Clone, Copy, Debug)]
pub enum Window {
    /// After this id, oldest first (catching up).
    After(i64),
    /// The newest messages, below this id when given (scrolling back).
    Latest { before: Option<i64> },
}

/// A page of history and the position to subscribe from after drawing it.
#[derive(Debug)]
pub struct History {
    pub messages: Vec<Message>,
    pub resume_from: i64,
}

/// What one long poll answers.
#[derive(Debug)]
pub enum Polled {
    /// The messages after the asked position (none at the timeout or at shutdown).
    Messages(Vec<Message>),
    /// The position cannot be replayed exactly: reload the room and poll from
    /// `position`. `reason`: `history_pruned` (older than retention) or
    /// `position_ahead` (beyond the room's newest id).
    Reset { position: i64, reason: &'static str },
}

impl Hub {
    /// Up to `limit` messages of `room` in `window`, and where to subscribe from
    /// once they are drawn.
    pub async fn history(
        &self,
        room: &str,
        window: Window,
        limit: i64,
    ) -> Result<History, ApiError> {
        // The room's position is read before the page, so the page cannot miss a
        // message the position counts.
        let position = self.position(room).await?.last_id;
        let newest_in_page = |messages: &[Message]| messages.last().map_or(0, |m| m.id);
        let (messages, resume_from) = match window {
            Window::After(since) => {
                let messages = self.store.messages_after(room, since, limit).await?;
                // A full page: more may follow; continue from its last message.
                let resume = if messages.len() as i64 == limit {
                    newest_in_page(&messages)
                } else {
                    position.max(newest_in_page(&messages)).max(since)
                };
                (messages, resume)
            }
            Window::Latest { before } => {
                let messages = self.store.latest_messages(room, before, limit).await?;
                let resume = position.max(newest_in_page(&messages));
                (messages, resume)
            }
        };
        Ok(History {
            messages,
            resume_from,
        })
    }

    /// A long poll: up to `limit` messages of `room` after `since` as soon as there
    /// is one (at once when the log has them, else when one is announced), none
    /// after `wait` or at shutdown, or a reset when `since` cannot be replayed. The
    /// wait holds a connection of `author`'s (it counts toward the caps and ends
    /// with `credential`: a 401 when that is gone).
    #[allow(clippy::too_many_arguments)]
    pub async fn poll(
        self: &Arc<Self>,
        author: Author,
        credential: Credential,
        ip: IpAddr,
        room: &str,
        since: i64,
        limit: i64,
        wait: Duration,
    ) -> Result<Polled, ApiError> {
        // Before the log is read: private rooms only for their members.
        super::message::check_room_for(room, author.id)?;
        // The common case first: the log already has something newer (or the
        // position cannot be replayed).
        match self.read_after(room, since, limit).await? {
            Page::Reset(reason) => return self.reset(room, reason).await,
            Page::Messages(messages) if !messages.is_empty() => {
                return Ok(Polled::Messages(messages));
            }
            Page::Messages(_) => {}
        }
        if wait.is_zero() {
            return Ok(Polled::Messages(Vec::new()));
        }

        // Subscribe, then wait: a message committed since the read above is replayed
        // by the connection, one after the last id, like a live one.
        let mut connection = self.connect(author, credential, ip)?;
        let joined = connection.join(room, Some(since)).await?;
        if let Some(reason) = joined.reset {
            return Ok(Polled::Reset {
                position: joined.position,
                reason,
            });
        }
        let deadline = tokio::time::sleep(wait);
        let overflow = connection.overflow().clone();
        let ended = connection.ended().clone();
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => return Ok(Polled::Messages(Vec::new())),
                _ = self.shutdown.cancelled() => return Ok(Polled::Messages(Vec::new())),
                _ = ended.cancelled() => {
                    return match connection.end_reason() {
                        Some(reason) if reason.credential_gone() => Err(reason.error()),
                        _ => Ok(Polled::Messages(Vec::new())),
                    };
                }
                // A poll that overflowed is answered from the log instead.
                _ = overflow.cancelled() => {
                    return match self.read_after(room, since, limit).await? {
                        Page::Messages(messages) => Ok(Polled::Messages(messages)),
                        Page::Reset(reason) => self.reset(room, reason).await,
                    };
                }
                next = connection.next() => match next? {
                    Next::Message(first) => {
                        // With what else is ready: one answer, at most one batch.
                        let mut messages = vec![first.message.clone()];
                        while messages.len() < limit as usize {
                            match connection.try_next() {
                                Some(Next::Message(more)) => messages.push(more.message.clone()),
                                Some(Next::Presence(_)) => {}
                                Some(Next::Reset { .. }) | None => break,
                            }
                        }
                        return Ok(Polled::Messages(messages));
                    }
                    Next::Reset { reason, .. } => return self.reset(room, reason).await,
                    Next::Presence(_) => {}
                },
            }
        }
    }

    async fn reset(&self, room: &str, reason: &'static str) -> Result<Polled, ApiError> {
        Ok(Polled::Reset {
            position: self.position(room).await?.last_id,
            reason,
        })
    }
}
