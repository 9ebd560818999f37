//! The hub's message log on PostgreSQL: the statements are `store::sql`'s (the
//! append's sequence is described in `store::messages`), but for the prune's
//! n-ary maximum, `GREATEST` here.

use async_trait::async_trait;

use super::PgStore;
use crate::directory::model::Settings;
use crate::hub::message::{Appended, Message, NewMessage, Position};
use crate::store::messages::{MessageRow, now_ms};
use crate::store::{MessageStore, RoomSummary, StoreResult, sql};

/// Sets each room's `pruned_through` (see [`MessageStore::prune_messages`]).
const MARK_PRUNED: &str = "UPDATE rooms SET pruned_through = GREATEST(pruned_through,
     last_id - $1,
     coalesce((SELECT max(m.id) FROM messages m
               WHERE m.room = rooms.name AND m.created_ms < $2), 0))";

/// Appends `new` to its room inside `tx` (see `store::messages`). On a duplicate
/// `client_id` the earlier message comes back with `duplicate: true`, and the caller
/// drops the transaction instead of committing it (giving the id taken back).
pub(super) async fn append_in(
    tx: &mut sqlx::PgConnection,
    new: &NewMessage,
) -> Result<Appended, sqlx::Error> {
    let now = now_ms();
    sqlx::query(sql::ENSURE_ROOM)
        .bind(&new.room)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    let id: i64 = sqlx::query_scalar(sql::NEXT_MESSAGE_ID)
        .bind(&new.room)
        .fetch_one(&mut *tx)
        .await?;
    let author_id = (new.author.id != 0).then_some(new.author.id);
    if let Some(client_id) = &new.client_id {
        let earlier: Option<MessageRow> = sqlx::query_as(sql::MESSAGE_BY_CLIENT_ID)
            .bind(&new.room)
            .bind(author_id)
            .bind(client_id)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(row) = earlier {
            return Ok(Appended {
                message: row.into(),
                duplicate: true,
            });
        }
    }
    let row: MessageRow = sqlx::query_as(sql::INSERT_MESSAGE)
        .bind(&new.room)
        .bind(id)
        .bind(author_id)
        .bind(&new.author.name)
        .bind(&new.text)
        .bind(new.event.as_ref().map(|e| e.to_string()))
        .bind(&new.client_id)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
    Ok(Appended {
        message: row.into(),
        duplicate: false,
    })
}

#[async_trait]
impl MessageStore for PgStore {
    async fn append_message(&self, new: &NewMessage) -> StoreResult<Appended> {
        let mut tx = self.pool.begin().await?;
        let appended = append_in(&mut tx, new).await?;
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
    ) -> StoreResult<Vec<Message>> {
        let rows: Vec<MessageRow> = sqlx::query_as(sql::MESSAGES_AFTER)
            .bind(room)
            .bind(after_id)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn latest_messages(
        &self,
        room: &str,
        before_id: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<Message>> {
        let rows: Vec<MessageRow> = sqlx::query_as(sql::LATEST_MESSAGES)
            .bind(room)
            .bind(before_id)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().rev().map(Into::into).collect())
    }

    async fn room_position(&self, room: &str) -> StoreResult<Position> {
        let row: Option<(i64, i64)> = sqlx::query_as(sql::ROOM_POSITION)
            .bind(room)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row
            .map(|(last_id, pruned_through)| Position {
                last_id,
                pruned_through,
            })
            .unwrap_or_default())
    }

    async fn list_rooms(&self) -> StoreResult<Vec<RoomSummary>> {
        Ok(sqlx::query_as(sql::LIST_ROOMS)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn prune_messages(&self, keep_per_room: i64, older_than_ms: i64) -> StoreResult<u64> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(MARK_PRUNED)
            .bind(keep_per_room)
            .bind(older_than_ms)
            .execute(&mut *tx)
            .await?;
        let deleted = sqlx::query(sql::PRUNE_MESSAGES)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(deleted)
    }

    async fn users_by_handle(&self, handle: &str, limit: i64) -> StoreResult<Vec<i64>> {
        let pattern = sql::like_escape(handle) + "@%";
        Ok(sqlx::query_scalar(sql::USERS_BY_HANDLE)
            .bind(handle)
            .bind(pattern)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn get_settings(&self, id: i64) -> StoreResult<Option<Settings>> {
        let row: Option<(String, bool, bool)> = sqlx::query_as(sql::GET_SETTINGS)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|(theme, mentions, admin)| Settings::new(theme, mentions, admin)))
    }

    async fn read_position(&self, user_id: i64, room: &str) -> StoreResult<i64> {
        let at: Option<i64> = sqlx::query_scalar(sql::READ_POSITION)
            .bind(user_id)
            .bind(room)
            .fetch_optional(&self.pool)
            .await?;
        Ok(at.unwrap_or(0))
    }
}
