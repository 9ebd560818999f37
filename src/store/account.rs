//! What a person keeps about their own account beyond the directory entry: settings,
//! the count of their posts, their sessions as a list, and read positions (how far
//! they have read in a room). The statements are [`super::sql`]'s, the same in both
//! dialects; each backend implements [`AccountStore`] in its own `account.rs`.

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
    // Kept in Unix seconds, shown in the wire form of every timestamp.
    #[serde(serialize_with = "crate::timefmt::serialize_unix")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(serialize_with = "crate::timefmt::serialize_unix")]
    #[schema(value_type = String, format = DateTime)]
    pub last_seen_at: i64,
    #[serde(serialize_with = "crate::timefmt::serialize_unix")]
    #[schema(value_type = String, format = DateTime)]
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
