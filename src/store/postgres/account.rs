//! What a person keeps about their own account, on PostgreSQL (the statements are
//! `store::sql`'s).

use async_trait::async_trait;

use super::PgStore;
use crate::directory::model::{Settings, SettingsChanges};
use crate::store::account::{AccountStore, SessionInfo};
use crate::store::{MessageStore, StoreResult, sql};

#[async_trait]
impl AccountStore for PgStore {
    async fn update_settings(
        &self,
        user_id: i64,
        changes: &SettingsChanges,
    ) -> StoreResult<Option<Settings>> {
        let row: Option<(String, bool, bool)> = sqlx::query_as(sql::UPDATE_SETTINGS)
            .bind(changes.theme.as_deref())
            .bind(changes.notify_mentions)
            .bind(changes.notify_admin_changes)
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|(theme, mentions, admin)| Settings::new(theme, mentions, admin)))
    }

    async fn count_posts(&self, user_id: i64) -> StoreResult<i64> {
        Ok(sqlx::query_scalar(sql::COUNT_POSTS)
            .bind(user_id)
            .fetch_one(&self.pool)
            .await?)
    }

    async fn mark_read(
        &self,
        user_id: i64,
        room: &str,
        through: i64,
        now_ms: i64,
    ) -> StoreResult<i64> {
        sqlx::query(sql::MARK_READ)
            .bind(user_id)
            .bind(room)
            .bind(through)
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
        self.read_position(user_id, room).await
    }

    async fn count_unread(&self, user_id: i64, room: &str, after_id: i64) -> StoreResult<i64> {
        Ok(sqlx::query_scalar(sql::COUNT_UNREAD)
            .bind(room)
            .bind(after_id)
            .bind(user_id)
            .fetch_one(&self.pool)
            .await?)
    }

    async fn list_sessions(&self, user_id: i64) -> StoreResult<Vec<SessionInfo>> {
        Ok(sqlx::query_as(sql::LIST_SESSIONS)
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn find_session_hash(&self, user_id: i64, id: &str) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar(sql::FIND_SESSION_HASH)
            .bind(user_id)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn describe_session(
        &self,
        id_hash: &str,
        user_agent: Option<&str>,
        client_ip: &str,
    ) -> StoreResult<()> {
        sqlx::query(sql::DESCRIBE_SESSION)
            .bind(user_agent)
            .bind(client_ip)
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
