//! The hub's message log in SQL, the same on SQLite and PostgreSQL but for one
//! function name, written once as a macro each backend expands for its store type.
//!
//! Appending is the one delicate statement sequence: the room row is created if
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

/// `impl MessageStore for $store` plus `$store::append_in(tx, message)`, the append
/// that user writes share to log their directory event in their own transaction.
/// `$greatest` is the dialect's n-ary maximum (`max` in SQLite, `GREATEST` in PG).
macro_rules! impl_message_store {
    ($store:ty, $db:ty, $greatest:literal) => {
        impl $store {
            /// Appends `new` to its room inside `tx` (see the module doc).
            pub(crate) async fn append_in(
                tx: &mut sqlx::Transaction<'static, $db>,
                new: &$crate::hub::message::NewMessage,
            ) -> Result<$crate::hub::message::Appended, sqlx::Error> {
                let now = $crate::store::messages::now_ms();
                sqlx::query(
                    "INSERT INTO rooms (name, last_id, pruned_through, created_ms) VALUES ($1, 0, 0, $2)
                     ON CONFLICT (name) DO NOTHING",
                )
                .bind(&new.room)
                .bind(now)
                .execute(&mut **tx)
                .await?;
                let id: i64 = sqlx::query_scalar(
                    "UPDATE rooms SET last_id = last_id + 1 WHERE name = $1 RETURNING last_id",
                )
                .bind(&new.room)
                .fetch_one(&mut **tx)
                .await?;
                let author_id = (new.author.id != 0).then_some(new.author.id);
                if let Some(client_id) = &new.client_id {
                    let earlier: Option<$crate::store::messages::MessageRow> = sqlx::query_as(concat!(
                        "SELECT ",
                        $crate::store::messages::message_columns!(),
                        " FROM messages WHERE room = $1 AND user_id = $2 AND client_id = $3"
                    ))
                    .bind(&new.room)
                    .bind(author_id)
                    .bind(client_id)
                    .fetch_optional(&mut **tx)
                    .await?;
                    if let Some(row) = earlier {
                        // The id taken above is given back when the caller drops
                        // the transaction instead of committing it.
                        return Ok($crate::hub::message::Appended {
                            message: row.into(),
                            duplicate: true,
                        });
                    }
                }
                let row: $crate::store::messages::MessageRow = sqlx::query_as(concat!(
                    "INSERT INTO messages (",
                    $crate::store::messages::message_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING ",
                    $crate::store::messages::message_columns!()
                ))
                .bind(&new.room)
                .bind(id)
                .bind(author_id)
                .bind(&new.author.name)
                .bind(&new.text)
                .bind(new.event.as_ref().map(|e| e.to_string()))
                .bind(&new.client_id)
                .bind(now)
                .fetch_one(&mut **tx)
                .await?;
                Ok($crate::hub::message::Appended {
                    message: row.into(),
                    duplicate: false,
                })
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::MessageStore for $store {
            async fn append_message(
                &self,
                new: &$crate::hub::message::NewMessage,
            ) -> $crate::store::StoreResult<$crate::hub::message::Appended> {
                let mut tx = self.begin_write().await?;
                let appended = Self::append_in(&mut tx, new).await?;
                if !appended.duplicate {
                    tx.commit().await?;
                }
                Ok(appended)
            }

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

            async fn room_position(
                &self,
                room: &str,
            ) -> $crate::store::StoreResult<$crate::hub::message::Position> {
                let row: Option<(i64, i64)> =
                    sqlx::query_as("SELECT last_id, pruned_through FROM rooms WHERE name = $1")
                        .bind(room)
                        .fetch_optional(self.reader())
                        .await?;
                Ok(row
                    .map(|(last_id, pruned_through)| $crate::hub::message::Position {
                        last_id,
                        pruned_through,
                    })
                    .unwrap_or_default())
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
        }
    };
}
pub(crate) use impl_message_store;
