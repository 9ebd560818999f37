//! [`crate::store::rooms::RoomStore`] on PostgreSQL: the statements are
//! [`crate::store::rooms`]'s, the same in both dialects.

use async_trait::async_trait;

use super::PgStore;
use crate::store::StoreResult;
use crate::store::account::AccountStore;
use crate::store::rooms::{self, OpenedRoom, RoomRow, RoomStore, UNREAD_WINDOW};

#[async_trait]
impl RoomStore for PgStore {
    async fn rooms_for(&self, user_id: i64) -> StoreResult<Vec<RoomRow>> {
        Ok(sqlx::query_as(rooms::ROOMS_FOR)
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn find_room(&self, name: &str) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar(rooms::FIND_ROOM)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn create_room(
        &self,
        name: &str,
        members: &[i64],
        now_ms: i64,
    ) -> StoreResult<OpenedRoom> {
        let mut tx = self.pool.begin().await?;
        let created = sqlx::query(rooms::INSERT_ROOM)
            .bind(name)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
        // Found by its folded name: an earlier `General` answers for `general`.
        let name: String = sqlx::query_scalar(rooms::FIND_ROOM)
            .bind(name)
            .fetch_one(&mut *tx)
            .await?;
        for member in members {
            sqlx::query(rooms::ADD_MEMBER)
                .bind(member)
                .bind(&name)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(OpenedRoom { name, created })
    }

    async fn leave_room(&self, user_id: i64, room: &str) -> StoreResult<bool> {
        Ok(sqlx::query(rooms::LEAVE)
            .bind(user_id)
            .bind(room)
            .execute(&self.pool)
            .await?
            .rows_affected()
            > 0)
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
        Ok(sqlx::query_scalar(rooms::COUNT_UNREAD)
            .bind(room)
            .bind(after_id)
            .bind(user_id)
            .bind(UNREAD_WINDOW)
            .fetch_one(&self.pool)
            .await?)
    }

    async fn user_names(&self, ids: &[i64]) -> StoreResult<Vec<(i64, String)>> {
        let mut names = Vec::with_capacity(ids.len());
        // Few ids (the peers of one person's direct messages): one indexed lookup each.
        for id in ids {
            let name: Option<String> = sqlx::query_scalar("SELECT name FROM users WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
            if let Some(name) = name {
                names.push((*id, name));
            }
        }
        Ok(names)
    }
}
