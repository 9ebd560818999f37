//! The hub's message log on SQLite: the statements every send and every directory
//! change runs, on rusqlite (appends on [`super::writer`], a room's position on
//! [`super::inline`]). The other log statements are shared with PostgreSQL
//! (`store::messages`). The sequence is the one `store::messages` describes: the
//! room row is created if missing, `UPDATE ... RETURNING` takes the next id inside
//! the single writer, then the `client_id` lookup, then the insert.

use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use super::rows::message_row;
use super::writer::Outcome;
use crate::hub::message::{Appended, NewMessage, Position};
use crate::store::StoreResult;
use crate::store::messages::{ROOM_POSITION, message_columns, now_ms};

/// Appends `new` to its room inside the writer's transaction `tx`. On a duplicate
/// `client_id` the earlier message comes back with `duplicate: true`, and the caller
/// discards the write (giving the id taken here back).
pub fn append_in(tx: &Connection, new: &NewMessage) -> rusqlite::Result<Appended> {
    let now = now_ms();
    tx.prepare_cached(
        "INSERT INTO rooms (name, last_id, pruned_through, created_ms) VALUES (?1, 0, 0, ?2)
         ON CONFLICT (name) DO NOTHING",
    )?
    .execute(params![new.room, now])?;
    let id: i64 = tx
        .prepare_cached("UPDATE rooms SET last_id = last_id + 1 WHERE name = ?1 RETURNING last_id")?
        .query_row([&new.room], |row| row.get(0))?;
    let author_id = (new.author.id != 0).then_some(new.author.id);
    if let Some(client_id) = &new.client_id {
        let earlier = tx
            .prepare_cached(concat!(
                "SELECT ",
                message_columns!(),
                " FROM messages WHERE room = ?1 AND user_id = ?2 AND client_id = ?3"
            ))?
            .query_row(params![new.room, author_id, client_id], message_row)
            .optional()?;
        if let Some(row) = earlier {
            return Ok(Appended {
                message: row.into(),
                duplicate: true,
            });
        }
    }
    let row = tx
        .prepare_cached(concat!(
            "INSERT INTO messages (",
            message_columns!(),
            ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING ",
            message_columns!()
        ))?
        .query_row(
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

impl SqliteStore {
    pub(super) async fn append_message_now(&self, new: &NewMessage) -> StoreResult<Appended> {
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

    pub(super) fn room_position_now(&self, room: &str) -> StoreResult<Position> {
        self.inline.read(|conn| {
            let position = conn
                .prepare_cached(ROOM_POSITION)?
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
}
