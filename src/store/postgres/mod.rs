//! PostgreSQL, for running several Switchboard instances on one database.
//!
//! The statements mirror [`super::sqlite`]; where they differ it is the dialect:
//! substring search is `LIKE '%x%'` served by pg_trgm GIN indexes instead of FTS5
//! (two characters: a GIN index of bigram arrays, migration 0007, instead of FTS5
//! bigram tokens), and bulk loads send whole columns as arrays through `UNNEST`.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgPool, PgPoolOptions};

use super::{Backend, Lifecycle, StoreResult};
use crate::auth::model::{SessionRecord, TokenRecord};
use crate::hub::message::{Appended, NewMessage, Position};

mod messages;
mod rooms;
mod users;

pub use users::search_page;

/// How long a query waits for a pooled connection unless configured: short, so a
/// database outage answers 503 quickly instead of hanging requests.
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    pub async fn connect(
        url: &str,
        max_connections: u32,
        acquire_timeout: Duration,
    ) -> anyhow::Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(acquire_timeout)
            .connect(url)
            .await?;
        Ok(Self { pool })
    }

    fn reader(&self) -> &sqlx::Pool<sqlx::Postgres> {
        &self.pool
    }

    fn writer(&self) -> &sqlx::Pool<sqlx::Postgres> {
        &self.pool
    }

    /// A write transaction (see the module doc for why SQLite's is `IMMEDIATE`).
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.pool.begin().await
    }
}

#[async_trait]
impl Lifecycle for PgStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn migrate(&self) -> StoreResult<()> {
        sqlx::migrate!("./migrations/postgres")
            .run(&self.pool)
            .await
            .map_err(|e| super::StoreError::Other(e.into()))
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

crate::store::common::impl_auth_store!(PgStore, {
    async fn set_password(
        &self,
        user_id: i64,
        password: &super::NewPassword,
    ) -> StoreResult<Option<super::EndedCredentials>> {
        let mut tx = self.begin_write().await?;
        let ended = users::set_password_in(&mut tx, user_id, password).await?;
        tx.commit().await?;
        Ok(ended)
    }

    async fn find_session(&self, id_hash: &str) -> StoreResult<Option<SessionRecord>> {
        Ok(sqlx::query_as(crate::store::common::session_lookup!())
            .bind(id_hash)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn find_token(&self, token_hash: &str) -> StoreResult<Option<TokenRecord>> {
        Ok(sqlx::query_as(crate::store::common::token_lookup!())
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?)
    }
});
crate::store::account::impl_account_store!(PgStore);
crate::store::messages::impl_message_store!(PgStore, "GREATEST", {
    async fn append_message(&self, new: &NewMessage) -> StoreResult<Appended> {
        self.append_message_now(new).await
    }

    async fn room_position(&self, room: &str) -> StoreResult<Position> {
        self.room_position_now(room).await
    }
});
