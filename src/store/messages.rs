//! The hub's message log: its rows, as both backends read them. The statements are
//! [`super::sql`]'s; each backend implements [`super::MessageStore`] in its own
//! `messages.rs`.
//!
//! Appending is the one delicate statement sequence, the same on both: the room row
//! is created if missing, then `UPDATE rooms SET last_id = last_id + 1 ... RETURNING` allocates the
//! id. That UPDATE takes the room row's write lock (PostgreSQL) or runs inside the
//! single `BEGIN IMMEDIATE` writer (SQLite), so concurrent senders to one room are
//! ordered and ids have no holes; the `client_id` lookup comes after the lock, so a
//! retry racing its original waits for it and then finds it.

use crate::hub::message::{Author, Message};
use crate::timefmt;

/// A `messages` row.
#[derive(sqlx::FromRow)]
pub(crate) struct MessageRow {
    pub room: String,
    pub id: i64,
    pub user_id: Option<i64>,
    pub user_name: String,
    pub text: String,
    pub event: Option<String>,
    pub client_id: Option<String>,
    pub created_ms: i64,
}

impl From<MessageRow> for Message {
    fn from(row: MessageRow) -> Self {
        let ts =
            time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(row.created_ms) * 1_000_000)
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        Message {
            room: row.room,
            id: row.id,
            user: Author {
                id: row.user_id.unwrap_or(0),
                name: row.user_name,
            },
            text: row.text,
            ts: timefmt::format(ts),
            timestamp: row.created_ms as f64 / 1000.0,
            client_id: row.client_id,
            // Written by us from a `Value`, so it parses; a hand-edited row that
            // does not is shown without its event rather than failing the read.
            event: row.event.and_then(|e| serde_json::from_str(&e).ok()),
        }
    }
}

pub(crate) fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}
