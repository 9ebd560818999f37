//! The hub's message log in SQL, the same on SQLite and PostgreSQL but for one
//! function name, written once as a macro each backend expands for its store type;
//! the append and a room's position are each backend's own.
//!
//! Appending is the one delicate statement sequence, the same on both: the room row is created if
//! missing, then `UPDATE rooms SET last_id = last_id + 1 ... RETURNING` allocates the
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

macro_rules! message_columns {
    () => {
        "room, id, user_id, user_name, text, event, client_id, created_ms"
    };
}
pub(crate) use message_columns;

/// `impl MessageStore for $store`. `$greatest` is the dialect's n-ary maximum (`max`
/// in SQLite, `GREATEST` in PG). The two statements of every send and join,
/// `append_message` and `room_position`, are the backend's own, given as `$own`:
/// SQLite runs them on rusqlite (`sqlite::messages`), PostgreSQL on sqlx
/// (`postgres::messages`).
macro_rules! impl_message_store {
    ($store:ty, $greatest:literal, { $($own:tt)* }) => {
        #[async_trait::async_trait]
        impl $crate::store::MessageStore for $store {
            $($own)*
            async fn messages_after(
                &self,
                room: &str,
                after_id: i64,
                limit: i64,
            ) -> $crate::store::StoreResult<Vec<$crate::hub::message::Message>> {
                let rows: Vec<$crate::store::messages::MessageRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    $crate::store::messages::message_columns!(),
                    " FROM messages WHERE room = $1 AND id > $2 ORDER BY id LIMIT $3"
                ))
                .bind(room)
                .bind(after_id)
                .bind(limit)
                .fetch_all(self.reader())
                .await?;
                Ok(rows.into_iter().map(Into::into).collect())
            }

            async fn latest_messages(
                &self,
                room: &str,
                before_id: Option<i64>,
                limit: i64,
            ) -> $crate::store::StoreResult<Vec<$crate::hub::message::Message>> {
                let rows: Vec<$crate::store::messages::MessageRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    $crate::store::messages::message_columns!(),
                    " FROM messages WHERE room = $1 AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3"
                ))
                .bind(room)
                .bind(before_id)
                .bind(limit)
                .fetch_all(self.reader())
                .await?;
                Ok(rows.into_iter().rev().map(Into::into).collect())
            }

            async fn list_rooms(&self) -> $crate::store::StoreResult<Vec<$crate::store::RoomSummary>> {
                Ok(sqlx::query_as(
                    "SELECT name, last_id FROM rooms WHERE name NOT LIKE 'user:%' ORDER BY name",
                )
                .fetch_all(self.reader())
                .await?)
            }

            async fn prune_messages(
                &self,
                keep_per_room: i64,
                older_than_ms: i64,
            ) -> $crate::store::StoreResult<u64> {
                let mut tx = self.begin_write().await?;
                sqlx::query(concat!(
                    "UPDATE rooms SET pruned_through = ",
                    $greatest,
                    "(pruned_through, last_id - $1, coalesce((SELECT max(m.id) FROM messages m",
                    " WHERE m.room = rooms.name AND m.created_ms < $2), 0))"
                ))
                .bind(keep_per_room)
                .bind(older_than_ms)
                .execute(&mut *tx)
                .await?;
                let deleted = sqlx::query(
                    "DELETE FROM messages WHERE id <= (SELECT r.pruned_through FROM rooms r WHERE r.name = messages.room)",
                )
                .execute(&mut *tx)
                .await?
                .rows_affected();
                tx.commit().await?;
                Ok(deleted)
            }

            async fn users_by_handle(
                &self,
                handle: &str,
                limit: i64,
            ) -> $crate::store::StoreResult<Vec<i64>> {
                let mut pattern = String::with_capacity(handle.len() + 2);
                for c in handle.chars() {
                    if matches!(c, '%' | '_' | '\\') {
                        pattern.push('\\');
                    }
                    pattern.push(c);
                }
                pattern.push_str("@%");
                Ok(sqlx::query_scalar(
                    "SELECT id FROM users WHERE name_key = $1 OR email_key LIKE $2 ESCAPE '\\' ORDER BY id LIMIT $3",
                )
                .bind(handle)
                .bind(pattern)
                .bind(limit)
                .fetch_all(self.reader())
                .await?)
            }

            async fn read_position(&self, user_id: i64, room: &str) -> $crate::store::StoreResult<i64> {
                let at: Option<i64> = sqlx::query_scalar(
                    "SELECT last_read_id FROM read_positions WHERE user_id = $1 AND room = $2",
                )
                .bind(user_id)
                .bind(room)
                .fetch_optional(self.writer())
                .await?;
                Ok(at.unwrap_or(0))
            }

            async fn get_settings(
                &self,
                id: i64,
            ) -> $crate::store::StoreResult<Option<$crate::directory::model::Settings>> {
                let row: Option<(String, bool, bool)> = sqlx::query_as(
                    "SELECT theme, notify_mentions, notify_admin_changes FROM users WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(self.reader())
                .await?;
                Ok(row.map(|(theme, mentions, admin)| {
                    $crate::directory::model::Settings::new(theme, mentions, admin)
                }))
            }
        }
    };
}
pub(crate) use impl_message_store;

/// A room's position: `last_id, pruned_through` (no row: a room nobody wrote to).
pub(crate) const ROOM_POSITION: &str = "SELECT last_id, pruned_through FROM rooms WHERE name = $1";
