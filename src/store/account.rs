//! What a person keeps about their own account beyond the directory entry: settings,
//! the count of their posts, their sessions as a list, and read positions (how far
//! they have read in a room). Written once for both backends, like
//! [`super::common::impl_auth_store`]: the statements are the same in both dialects.

use async_trait::async_trait;
use serde::Serialize;

use super::{Lifecycle, StoreResult};
use crate::directory::model::{Settings, SettingsChanges};

/// A session as its owner sees it on the account page and in `GET /api/sessions`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct SessionInfo {
    /// The first 16 hex digits of the session id's hash: names the session in
    /// `DELETE /api/sessions/{id}`, opens nothing.
    pub id: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    /// As the browser sent it at login; null for sessions older than this field.
    #[schema(required = true)]
    pub user_agent: Option<String>,
    #[schema(required = true)]
    pub client_ip: Option<String>,
    /// The session the request asking came with (filled in by the caller).
    #[sqlx(skip)]
    pub current: bool,
}

/// How many hex digits of a session's id hash name it in the API.
pub const SESSION_ID_CHARS: usize = 16;

#[async_trait]
pub trait AccountStore: Lifecycle {
    /// Applies `changes`; the settings after, or `None` when no user has this id.
    async fn update_settings(
        &self,
        user_id: i64,
        changes: &SettingsChanges,
    ) -> StoreResult<Option<Settings>>;
    /// Messages `user_id` sent to public rooms (not notifications they caused, not
    /// directory changes they made).
    async fn count_posts(&self, user_id: i64) -> StoreResult<i64>;

    /// Moves the read position forward to `through` (never back); the position after.
    async fn mark_read(
        &self,
        user_id: i64,
        room: &str,
        through: i64,
        now_ms: i64,
    ) -> StoreResult<i64>;
    /// Messages in `room` after `after_id` that someone other than `user_id` wrote.
    async fn count_unread(&self, user_id: i64, room: &str, after_id: i64) -> StoreResult<i64>;

    /// The user's sessions, most recently used first.
    async fn list_sessions(&self, user_id: i64) -> StoreResult<Vec<SessionInfo>>;
    /// The full id hash of the user's session named by `id` (see [`SessionInfo::id`]).
    async fn find_session_hash(&self, user_id: i64, id: &str) -> StoreResult<Option<String>>;
    /// Records where a new session comes from.
    async fn describe_session(
        &self,
        id_hash: &str,
        user_agent: Option<&str>,
        client_ip: &str,
    ) -> StoreResult<()>;
}

/// `impl AccountStore for $store`.
macro_rules! impl_account_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::account::AccountStore for $store {
            async fn update_settings(
                &self,
                user_id: i64,
                changes: &$crate::directory::model::SettingsChanges,
            ) -> $crate::store::StoreResult<Option<$crate::directory::model::Settings>> {
                // COALESCE: a field not given keeps its value, in one statement.
                let row: Option<(String, bool, bool)> = sqlx::query_as(
                    "UPDATE users SET theme = COALESCE($2, theme),
                         notify_mentions = COALESCE($3, notify_mentions),
                         notify_admin_changes = COALESCE($4, notify_admin_changes)
                     WHERE id = $1
                     RETURNING theme, notify_mentions, notify_admin_changes",
                )
                .bind(user_id)
                .bind(changes.theme.as_deref())
                .bind(changes.notify_mentions)
                .bind(changes.notify_admin_changes)
                .fetch_optional(self.writer())
                .await?;
                Ok(row.map(|(theme, mentions, admin)| {
                    $crate::directory::model::Settings::new(theme, mentions, admin)
                }))
            }

            async fn count_posts(&self, user_id: i64) -> $crate::store::StoreResult<i64> {
                // Notification rooms are `user:N`, which no public room name can be.
                Ok(sqlx::query_scalar(
                    "SELECT count(*) FROM messages
                     WHERE user_id = $1 AND room <> 'directory' AND room NOT LIKE 'user:%'",
                )
                .bind(user_id)
                .fetch_one(self.reader())
                .await?)
            }

            async fn mark_read(
                &self,
                user_id: i64,
                room: &str,
                through: i64,
                now_ms: i64,
            ) -> $crate::store::StoreResult<i64> {
                sqlx::query(
                    "INSERT INTO read_positions (user_id, room, last_read_id, updated_ms)
                     VALUES ($1, $2, $3, $4)
                     ON CONFLICT (user_id, room) DO UPDATE
                     SET last_read_id = excluded.last_read_id, updated_ms = excluded.updated_ms
                     WHERE excluded.last_read_id > read_positions.last_read_id",
                )
                .bind(user_id)
                .bind(room)
                .bind(through)
                .bind(now_ms)
                .execute(self.writer())
                .await?;
                $crate::store::MessageStore::read_position(self, user_id, room).await
            }

            async fn count_unread(
                &self,
                user_id: i64,
                room: &str,
                after_id: i64,
            ) -> $crate::store::StoreResult<i64> {
                Ok(sqlx::query_scalar(
                    "SELECT count(*) FROM messages
                     WHERE room = $1 AND id > $2 AND (user_id IS NULL OR user_id <> $3)",
                )
                .bind(room)
                .bind(after_id)
                .bind(user_id)
                .fetch_one(self.writer())
                .await?)
            }

            async fn list_sessions(
                &self,
                user_id: i64,
            ) -> $crate::store::StoreResult<Vec<$crate::store::account::SessionInfo>> {
                Ok(sqlx::query_as(
                    "SELECT substr(id_hash, 1, 16) AS id, created_at, last_seen_at, expires_at,
                            user_agent, client_ip
                     FROM sessions WHERE user_id = $1 ORDER BY last_seen_at DESC, created_at DESC",
                )
                .bind(user_id)
                .fetch_all(self.writer())
                .await?)
            }

            async fn find_session_hash(
                &self,
                user_id: i64,
                id: &str,
            ) -> $crate::store::StoreResult<Option<String>> {
                Ok(sqlx::query_scalar(
                    "SELECT id_hash FROM sessions WHERE user_id = $1 AND substr(id_hash, 1, 16) = $2",
                )
                .bind(user_id)
                .bind(id)
                .fetch_optional(self.writer())
                .await?)
            }

            async fn describe_session(
                &self,
                id_hash: &str,
                user_agent: Option<&str>,
                client_ip: &str,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query("UPDATE sessions SET user_agent = $2, client_ip = $3 WHERE id_hash = $1")
                    .bind(id_hash)
                    .bind(user_agent)
                    .bind(client_ip)
                    .execute(self.writer())
                    .await?;
                Ok(())
            }
        }
    };
}
pub(crate) use impl_account_store;
