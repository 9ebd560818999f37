//! Replays: where a client's catch-up starts, and reading it one page at a time.
//!
//! A client that comes back from a position gets what it missed from the store, never
//! from a copy held in memory: [`Hub::start_from`] decides where the replay starts and
//! ends, or that it cannot be exact (a reset: the client reloads the room instead of
//! trusting a partial replay), and [`Hub::page_after`] reads one page of it. A
//! [`super::Connection`] asks for the next page only when its client has taken the
//! last one, so a replay of any length costs one page, however slowly the client
//! reads (`100 clients x 3,000 messages of 3.9 KB` held whole once took 3.9 GB).

use super::Hub;
use super::message::Message;
use crate::error::ApiError;

/// Where a replay runs: the client is at `from` and has to be taken to `to`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Start {
    pub from: i64,
    pub to: i64,
    /// Set when the asked position cannot be replayed exactly (then `from == to`, the
    /// room's newest id): `history_pruned` or `position_ahead`.
    pub reset: Option<&'static str>,
}

/// One page of a room's log.
#[derive(Debug)]
pub enum Page {
    /// Consecutive messages right after the asked position (none when there are
    /// none yet).
    Messages(Vec<Message>),
    /// Retention deleted what follows the asked position.
    Reset(&'static str),
}

impl Hub {
    /// Where a client joining `room` from `since` starts (from now when `None`).
    /// The reset rule lives here: a position older than retention, or ahead of the
    /// log (another database?), cannot be replayed exactly.
    pub async fn start_from(&self, room: &str, since: Option<i64>) -> Result<Start, ApiError> {
        let position = self.position(room).await?;
        let now = position.last_id;
        let reset = match since.map(|s| s.max(0)) {
            None => {
                return Ok(Start {
                    from: now,
                    to: now,
                    reset: None,
                });
            }
            Some(since) if since < position.pruned_through => "history_pruned",
            Some(since) if since > now => "position_ahead",
            Some(since) => {
                return Ok(Start {
                    from: since,
                    to: now,
                    reset: None,
                });
            }
        };
        Ok(Start {
            from: now,
            to: now,
            reset: Some(reset),
        })
    }

    /// Up to `limit` messages of `room` after `after`. Ids are gapless, so a page
    /// that does not begin at `after + 1` means retention deleted what the client
    /// still needs.
    pub async fn page_after(&self, room: &str, after: i64, limit: i64) -> Result<Page, ApiError> {
        let messages = self.store.messages_after(room, after, limit).await?;
        Ok(match messages.first() {
            Some(first) if first.id != after + 1 => Page::Reset("history_pruned"),
            _ => Page::Messages(messages),
        })
    }

    /// One page for a client that asks once rather than following (a long poll):
    /// the messages after `since`, none yet, or a reset when `since` cannot be
    /// replayed exactly.
    pub async fn read_after(&self, room: &str, since: i64, limit: i64) -> Result<Page, ApiError> {
        match self.page_after(room, since, limit).await? {
            Page::Messages(messages) if messages.is_empty() => {
                // Nothing after `since`: up to date, or a position the log never had.
                let start = self.start_from(room, Some(since)).await?;
                Ok(start.reset.map_or(Page::Messages(messages), Page::Reset))
            }
            page => Ok(page),
        }
    }
}
