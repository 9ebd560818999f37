//! [`crate::store::rooms::RoomStore`] on SQLite: the statements are
//! [`crate::store::rooms`]'s, the same in both dialects; reads on [`super::inline`],
//! writes on [`super::writer`]. Parameters are bound by name (`$1`...), since some
//! statements use them out of order.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, named_params};

use super::SqliteStore;
use super::writer::Outcome;
use crate::store::StoreResult;
use crate::store::account::AccountStore;
use crate::store::rooms::{self, OpenedRoom, RoomRow, RoomStore, UNREAD_WINDOW};

#[async_trait]
impl RoomStore for SqliteStore {
    async fn rooms_for(&self, user_id: i64) -> StoreResult<Vec<RoomRow>> {
        // Every public room, each with a bounded count: off the async workers.
        self.inline
            .read_off_thread(move |conn| {
                conn.prepare_cached(rooms::ROOMS_FOR)?
                    .query_map(named_params! { "$1": user_id }, |row| {
                        Ok(RoomRow {
                            name: row.get(0)?,
                            last_id: row.get(1)?,
                            read_id: row.get(2)?,
                            unread: row.get(3)?,
                            member: row.get(4)?,
                        })
                    })?
                    .collect()
            })
            .await
    }

    async fn find_room(&self, name: &str) -> StoreResult<Option<String>> {
        let name = name.to_owned();
        self.inline.read(move |conn| {
            conn.prepare_cached(rooms::FIND_ROOM)?
                .query_row(named_params! { "$1": name }, |row| row.get(0))
                .optional()
        })
    }

    async fn create_room(
        &self,
        name: &str,
        members: &[i64],
        now_ms: i64,
    ) -> StoreResult<OpenedRoom> {
        let name = name.to_owned();
        let members = members.to_vec();
        self.writer
            .write(move |tx| {
                let created = tx
                    .prepare_cached(rooms::INSERT_ROOM)?
                    .execute(named_params! { "$1": name, "$2": now_ms })?
                    == 1;
                // Found by its folded name: an earlier `General` answers for `general`.
                let name: String = tx
                    .prepare_cached(rooms::FIND_ROOM)?
                    .query_row(named_params! { "$1": name }, |row| row.get(0))?;
                for member in members {
                    tx.prepare_cached(rooms::ADD_MEMBER)?
                        .execute(named_params! { "$1": member, "$2": name, "$3": now_ms })?;
                }
                Ok(Outcome::Keep(OpenedRoom { name, created }))
            })
            .await
    }

    async fn leave_room(&self, user_id: i64, room: &str) -> StoreResult<bool> {
        let room = room.to_owned();
        self.writer
            .write(move |tx| {
                let left = tx
                    .prepare_cached(rooms::LEAVE)?
                    .execute(named_params! { "$1": user_id, "$2": room })?;
                Ok(Outcome::Keep(left > 0))
            })
            .await
    }

    async fn mark_room_read(
        &self,
        user_id: i64,
        room: &str,
        through: i64,
        now_ms: i64,
    ) -> StoreResult<i64> {
        self.mark_read(user_id, room, through, now_ms).await
    }

    async fn count_room_unread(&self, user_id: i64, room: &str, after_id: i64) -> StoreResult<i64> {
        // A range of at most UNREAD_WINDOW ids of the primary key.
        let room = room.to_owned();
        self.inline.read(move |conn| {
            conn.prepare_cached(rooms::COUNT_UNREAD)?.query_row(
                named_params! { "$1": room, "$2": after_id, "$3": user_id, "$4": UNREAD_WINDOW },
                |row| row.get(0),
            )
        })
    }

    async fn user_names(&self, ids: &[i64]) -> StoreResult<Vec<(i64, String)>> {
        let ids = ids.to_vec();
        // Few ids (the peers of one person's direct messages): one indexed lookup each.
        self.inline.read(move |conn| {
            let mut statement = conn.prepare_cached("SELECT name FROM users WHERE id = $1")?;
            let mut names = Vec::with_capacity(ids.len());
            for id in ids {
                let name: Option<String> = statement
                    .query_row(named_params! { "$1": id }, |row| row.get(0))
                    .optional()?;
                if let Some(name) = name {
                    names.push((id, name));
                }
            }
            Ok(names)
        })
    }
}
