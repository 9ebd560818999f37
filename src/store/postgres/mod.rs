//! PostgreSQL, for running several Switchboard instances on one database.
//!
//! The statements the dialects agree on are [`super::sql`]'s, run here through one
//! sqlx pool (PostgreSQL's own row locks order concurrent writers). The rest is
//! the dialect's: substring search is `LIKE '%x%'` served by pg_trgm GIN indexes
//! instead of FTS5 (two characters: a GIN index of bigram arrays, migration 0007,
//! instead of FTS5 bigram tokens), prefix scans compare `COLLATE "C"`, the
//! last-admin check locks the admin rows, and bulk loads send whole columns as
//! arrays through `UNNEST`.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgPool, PgPoolOptions};

use super::{Backend, Lifecycle, StoreResult};

mod account;
mod auth;
mod messages;
mod rooms;
mod users;

pub use users::{EMAIL_PREFIX, NAME_PREFIX, SORT_COLLATION, search_page};

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
            .map_err(|e| super::StoreError::Other(e.into()))?;
        // What a migration marked that SQL cannot do: once, and long on a large
        // directory, so it is logged.
        let started = std::time::Instant::now();
        if let Some(changed) = users::refold_marked(&self.pool).await? {
            tracing::info!(
                elapsed_ms = started.elapsed().as_millis() as u64,
                changed,
                "keyed the stored names again for accent-insensitive search (once)"
            );
        }
        Ok(())
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
