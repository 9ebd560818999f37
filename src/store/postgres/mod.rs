//! PostgreSQL, for running several Switchboard instances on one database.
//!
//! The statements mirror [`super::sqlite`]; where they differ it is the dialect:
//! substring search is `LIKE '%x%'` served by pg_trgm GIN indexes instead of FTS5,
//! and bulk loads send whole columns as arrays through `UNNEST`.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgPool, PgPoolOptions};

use super::{Backend, Lifecycle, StoreResult};

mod users;

pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
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

crate::store::common::impl_auth_store!(PgStore);
crate::store::messages::impl_message_store!(PgStore, sqlx::Postgres, "GREATEST");
