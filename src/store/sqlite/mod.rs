//! The embedded default: one SQLite file in WAL mode.
//!
//! Two pools on the same file: `read` with several connections (WAL lets readers run
//! beside a writer) and `write` with exactly one. SQLite allows one writer at a time
//! anyway; queueing writers on our own pool instead of inside SQLite means no
//! `SQLITE_BUSY` between our own requests, and write transactions start with
//! `BEGIN IMMEDIATE` so another process (a CLI command) is waited for, not deadlocked.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::{Backend, Lifecycle, StoreResult};

mod users;

pub struct SqliteStore {
    read: SqlitePool,
    write: SqlitePool,
}

impl SqliteStore {
    /// `url` is `sqlite://path/to/file.db`, `sqlite:path` or a bare path; the file and
    /// its directory are created when missing.
    pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Self> {
        let options = if url.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(url)?
        } else {
            SqliteConnectOptions::new().filename(url)
        };
        if let Some(dir) = Path::new(options.get_filename()).parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)?;
        }
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL is durable against application crashes in WAL mode; only an OS
            // crash or power loss can lose the last transactions, never corrupt.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true)
            .pragma("temp_store", "memory");
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.clone())
            .await?;
        let read = SqlitePoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.read_only(true))
            .await?;
        Ok(Self { read, write })
    }

    fn reader(&self) -> &sqlx::Pool<sqlx::Sqlite> {
        &self.read
    }

    fn writer(&self) -> &sqlx::Pool<sqlx::Sqlite> {
        &self.write
    }

    /// A write transaction (see the module doc for why SQLite's is `IMMEDIATE`).
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.write.begin_with("BEGIN IMMEDIATE").await
    }
}

#[async_trait]
impl Lifecycle for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn migrate(&self) -> StoreResult<()> {
        sqlx::migrate!("./migrations/sqlite")
            .run(&self.write)
            .await
            .map_err(|e| super::StoreError::Other(e.into()))
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }
}

crate::store::common::impl_auth_store!(SqliteStore);
crate::store::messages::impl_message_store!(SqliteStore, sqlx::Sqlite, "max");
