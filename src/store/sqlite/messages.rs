//! The hub's message log on SQLite (the statements are `store::sql`'s, but for the
//! prune's n-ary maximum, `max` here): appends and prunes on [`super::writer`],
//! reads on [`super::inline`]. The append's sequence is the one `store::messages`
//! describes; on SQLite the single writer thread orders concurrent senders.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use super::rows::{message_row, settings_row};
use super::writer::Outcome;
use crate::directory::model::Settings;
use crate::hub::message::{Appended, Message, NewMessage, Position};
use crate::store::messages::{MessageRow, now_ms};
use crate::store::{MessageStore, RoomSummary, StoreResult, sql};

/// Sets each room's `pruned_through` (see [`MessageStore::prune_messages`]).
const MARK_PRUNED: &str = "UPDATE rooms SET pruned_through = max(pruned_through,
     last_id - $1,
     coalesce((SELECT max(m.id) FROM messages m
               WHERE m.room = rooms.name AND m.created_ms < $2), 0))";

/// Appends `new` to its room inside the writer's transaction `tx`. On a duplicate
/// `client_id` the earlier message comes back with `duplicate: true`, and the caller
/// discards the write (giving the id taken here back).
pub fn append_in(tx: &Connection, new: &NewMessage) -> rusqlite::Result<Appended> {
    let now = now_ms();
    tx.prepare_cached(sql::ENSURE_ROOM)?
        .execute(params![new.room, now])?;
    let id: i64 = tx
        .prepare_cached(sql::NEXT_MESSAGE_ID)?
        .query_row([&new.room], |row| row.get(0))?;
    let author_id = (new.author.id != 0).then_some(new.author.id);
    if let Some(client_id) = &new.client_id {
        let earlier = tx
            .prepare_cached(sql::MESSAGE_BY_CLIENT_ID)?
            .query_row(params![new.room, author_id, client_id], message_row)
            .optional()?;
        if let Some(row) = earlier {
            return Ok(Appended {
                message: row.into(),
                duplicate: true,
            });
        }
    }
    let row = tx.prepare_cached(sql::INSERT_MESSAGE)?.query_row(
        params![
            new.room,
            id,
            author_id,
            new.author.name,
            new.text,
            new.event.as_ref().map(|e| e.to_string()),
            new.client_id,
            now
        ],
        message_row,
    )?;
    Ok(Appended {
        message: row.into(),
        duplicate: false,
    })
}

/// The newest `limit` messages of `room` below `before_id`, newest first.
fn latest_page(
    conn: &Connection,
    room: &str,
    before_id: Option<i64>,
    limit: i64,
) -> rusqlite::Result<Vec<MessageRow>> {
    conn.prepare_cached(sql::LATEST_MESSAGES)?
        .query_map(params![room, before_id, limit], message_row)?
        .collect()
}

#[async_trait]
impl MessageStore for SqliteStore {
    async fn append_message(&self, new: &NewMessage) -> StoreResult<Appended> {
        let new = new.clone();
        self.writer
            .write(move |tx| {
                let appended = append_in(tx, &new)?;
                Ok(if appended.duplicate {
                    Outcome::Discard(appended)
                } else {
                    Outcome::Keep(appended)
                })
            })
            .await
    }

    async fn messages_after(
        &self,
        room: &str,
        after_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<Message>> {
        let rows: Vec<MessageRow> = self.inline.read(|conn| {
            conn.prepare_cached(sql::MESSAGES_AFTER)?
                .query_map(params![room, after_id, limit], message_row)?
                .collect()
        })?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn latest_messages(
        &self,
        room: &str,
        before_id: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<Message>> {
        // The newest page walks the room's index from its end, `limit` rows; a page
        // further back may walk past every newer message first (the `OR` keeps the
        // planner from seeking to `before_id`), so it runs off the async workers.
        let rows = match before_id {
            None => self
                .inline
                .read(|conn| latest_page(conn, room, before_id, limit))?,
            Some(_) => {
                let room = room.to_owned();
                self.inline
                    .read_off_thread(move |conn| latest_page(conn, &room, before_id, limit))
                    .await?
            }
        };
        Ok(rows.into_iter().rev().map(Into::into).collect())
    }

    async fn room_position(&self, room: &str) -> StoreResult<Position> {
        self.inline.read(|conn| {
            let position = conn
                .prepare_cached(sql::ROOM_POSITION)?
                .query_row([room], |row| {
                    Ok(Position {
                        last_id: row.get(0)?,
                        pruned_through: row.get(1)?,
                    })
                })
                .optional()?;
            Ok(position.unwrap_or_default())
        })
    }

    async fn list_rooms(&self) -> StoreResult<Vec<RoomSummary>> {
        self.inline.read(|conn| {
            conn.prepare_cached(sql::LIST_ROOMS)?
                .query_map([], |row| {
                    Ok(RoomSummary {
                        name: row.get(0)?,
                        last_id: row.get(1)?,
                    })
                })?
                .collect()
        })
    }

    async fn prune_messages(&self, keep_per_room: i64, older_than_ms: i64) -> StoreResult<u64> {
        self.writer
            .write(move |tx| {
                tx.execute(MARK_PRUNED, params![keep_per_room, older_than_ms])?;
                let deleted = tx.execute(sql::PRUNE_MESSAGES, [])?;
                Ok(Outcome::Keep(deleted as u64))
            })
            .await
    }

    async fn users_by_handle(&self, handle: &str, limit: i64) -> StoreResult<Vec<i64>> {
        // SQLite's LIKE is case-insensitive, so no index serves it: the email half
        // reads every user, off the async workers.
        let (handle, pattern) = (handle.to_owned(), sql::like_escape(handle) + "@%");
        self.inline
            .read_off_thread(move |conn| {
                conn.prepare_cached(sql::USERS_BY_HANDLE)?
                    .query_map(params![handle, pattern, limit], |row| row.get(0))?
                    .collect()
            })
            .await
    }

    async fn get_settings(&self, id: i64) -> StoreResult<Option<Settings>> {
        self.inline.read(|conn| {
            conn.prepare_cached(sql::GET_SETTINGS)?
                .query_row([id], settings_row)
                .optional()
        })
    }

    async fn read_position(&self, user_id: i64, room: &str) -> StoreResult<i64> {
        // The writer replies once its transaction committed, so a position just
        // marked is seen here.
        let at: Option<i64> = self.inline.read(|conn| {
            conn.prepare_cached(sql::READ_POSITION)?
                .query_row(params![user_id, room], |row| row.get(0))
                .optional()
        })?;
        Ok(at.unwrap_or(0))
    }
}
