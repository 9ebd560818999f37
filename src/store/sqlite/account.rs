//! What a person keeps about their own account, on SQLite (the statements are
//! `store::sql`'s): reads on [`super::inline`], writes on [`super::writer`].

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use super::rows::settings_row;
use super::writer::Outcome;
use crate::directory::model::{Settings, SettingsChanges};
use crate::store::account::{AccountStore, SessionInfo};
use crate::store::{StoreResult, sql};

#[async_trait]
impl AccountStore for SqliteStore {
    async fn update_settings(
        &self,
        user_id: i64,
        changes: &SettingsChanges,
    ) -> StoreResult<Option<Settings>> {
        let changes = changes.clone();
        self.writer
            .write(move |tx| {
                let settings = tx
                    .prepare_cached(sql::UPDATE_SETTINGS)?
                    .query_row(
                        params![
                            changes.theme,
                            changes.notify_mentions,
                            changes.notify_admin_changes,
                            user_id
                        ],
                        settings_row,
                    )
                    .optional()?;
                Ok(Outcome::Keep(settings))
            })
            .await
    }

    async fn count_posts(&self, user_id: i64) -> StoreResult<i64> {
        // As many rows as the user wrote messages: off the async workers.
        self.inline
            .read_off_thread(move |conn| {
                conn.prepare_cached(sql::COUNT_POSTS)?
                    .query_row([user_id], |row| row.get(0))
            })
            .await
    }

    async fn mark_read(
        &self,
        user_id: i64,
        room: &str,
        through: i64,
        now_ms: i64,
    ) -> StoreResult<i64> {
        let room = room.to_owned();
        self.writer
            .write(move |tx| {
                tx.prepare_cached(sql::MARK_READ)?
                    .execute(params![user_id, room, through, now_ms])?;
                let at = tx
                    .prepare_cached(sql::READ_POSITION)?
                    .query_row(params![user_id, room], |row| row.get(0))?;
                Ok(Outcome::Keep(at))
            })
            .await
    }

    async fn count_unread(&self, user_id: i64, room: &str, after_id: i64) -> StoreResult<i64> {
        // As many rows as are unread: off the async workers.
        let room = room.to_owned();
        self.inline
            .read_off_thread(move |conn| {
                conn.prepare_cached(sql::COUNT_UNREAD)?
                    .query_row(params![room, after_id, user_id], |row| row.get(0))
            })
            .await
    }

    async fn list_sessions(&self, user_id: i64) -> StoreResult<Vec<SessionInfo>> {
        self.inline.read(|conn| {
            conn.prepare_cached(sql::LIST_SESSIONS)?
                .query_map([user_id], |row| {
                    Ok(SessionInfo {
                        id: row.get(0)?,
                        created_at: row.get(1)?,
                        last_seen_at: row.get(2)?,
                        expires_at: row.get(3)?,
                        user_agent: row.get(4)?,
                        client_ip: row.get(5)?,
                        current: false,
                    })
                })?
                .collect()
        })
    }

    async fn find_session_hash(&self, user_id: i64, id: &str) -> StoreResult<Option<String>> {
        self.inline.read(|conn| {
            conn.prepare_cached(sql::FIND_SESSION_HASH)?
                .query_row(params![user_id, id], |row| row.get(0))
                .optional()
        })
    }

    async fn describe_session(
        &self,
        id_hash: &str,
        user_agent: Option<&str>,
        client_ip: &str,
    ) -> StoreResult<()> {
        let (id_hash, user_agent, client_ip) = (
            id_hash.to_owned(),
            user_agent.map(str::to_owned),
            client_ip.to_owned(),
        );
        self.writer
            .write(move |tx| {
                tx.prepare_cached(sql::DESCRIBE_SESSION)?
                    .execute(params![user_agent, client_ip, id_hash])?;
                Ok(Outcome::Keep(()))
            })
            .await
    }
}
