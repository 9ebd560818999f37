//! The embedded default: one SQLite file in WAL mode.
//!
//! Through sqlx, two pools on the same file: `read` with several connections (WAL
//! lets readers run beside a writer) and `write` with exactly one. SQLite allows one
//! writer at a time anyway; queueing writers on our own pool instead of inside SQLite
//! means no `SQLITE_BUSY` between our own requests, and write transactions start with
//! `BEGIN IMMEDIATE` so another process (a CLI command) is waited for, not deadlocked.
//!
//! The statements on every request's path skip sqlx's per-statement thread hand-offs:
//! the point reads run inline on rusqlite ([`inline`]), and the hot write
//! transactions (directory changes, chat messages) run whole on one writer thread
//! ([`writer`]), also `BEGIN IMMEDIATE`. [`rows`] maps their rows; [`search_index`]
//! owns the substring search indexes and keeps them current.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::{Backend, Lifecycle, StoreResult};
use crate::auth::model::{SessionRecord, TokenRecord};
use crate::hub::message::{Appended, NewMessage, Position};
use inline::InlineReader;
use rows::user_at;
use rusqlite::OptionalExtension;
use writer::Writer;

pub mod backup;
mod inline;
mod messages;
mod rooms;
mod rows;
mod search_index;
mod users;
mod writer;

fn connect_options(url: &str) -> anyhow::Result<SqliteConnectOptions> {
    Ok(if url.starts_with("sqlite:") {
        SqliteConnectOptions::from_str(url)?
    } else {
        SqliteConnectOptions::new().filename(url)
    })
}

pub struct SqliteStore {
    read: SqlitePool,
    write: SqlitePool,
    /// The hot point reads, run on the caller's thread (see [`inline`]).
    inline: InlineReader,
    /// The hot write transactions, on a thread of their own (see [`writer`]).
    writer: Writer,
    /// How long a substring scan may run inline before it moves to sqlx's `read` pool
    /// ([`users::INLINE_SCAN_BUDGET`]; tests set zero to take the other path).
    scan_budget: Duration,
}

impl SqliteStore {
    /// `url` is `sqlite://path/to/file.db`, `sqlite:path` or a bare path; the file and
    /// its directory are created when missing.
    pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Self> {
        let options = connect_options(url)?;
        let path = options.get_filename().to_path_buf();
        if let Some(dir) = path.parent()
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
        Ok(Self {
            read,
            write,
            writer: Writer::start(
                &path,
                writer::Hooks {
                    on_open: search_index::register,
                    before_commit: search_index::sync,
                },
            )?,
            inline: InlineReader::new(path),
            scan_budget: users::INLINE_SCAN_BUDGET,
        })
    }

    /// The database file a `--database-url` names (`switchboard backup` copies it).
    pub fn path_of(url: &str) -> anyhow::Result<std::path::PathBuf> {
        Ok(connect_options(url)?.get_filename().to_path_buf())
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
            .map_err(|e| super::StoreError::Other(e.into()))?;
        // Indexes a migration asked for that need the writer's SQL functions: once,
        // and long on a large directory (a million users: seconds), so it is logged.
        let started = std::time::Instant::now();
        let built = self
            .writer
            .write(|conn| search_index::rebuild_marked(conn).map(writer::Outcome::Keep))
            .await?;
        if built {
            tracing::info!(
                elapsed_ms = started.elapsed().as_millis() as u64,
                "built the two-character search index from the stored users (once)"
            );
        }
        Ok(())
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    async fn close(&self) {
        self.inline.close();
        self.writer.close();
        self.read.close().await;
        self.write.close().await;
    }
}

crate::store::common::impl_auth_store!(SqliteStore, {
    async fn set_password(
        &self,
        user_id: i64,
        password: &super::NewPassword,
    ) -> StoreResult<Option<super::EndedCredentials>> {
        let password = password.clone();
        self.writer
            .write(move |tx| {
                users::set_password_in(tx, user_id, &password).map(writer::Outcome::Keep)
            })
            .await
    }

    async fn find_session(&self, id_hash: &str) -> StoreResult<Option<SessionRecord>> {
        self.inline.read(|conn| {
            conn.prepare_cached(crate::store::common::session_lookup!())?
                .query_row([id_hash], |row| {
                    Ok(SessionRecord {
                        last_seen_at: row.get(0)?,
                        expires_at: row.get(1)?,
                        user: user_at(row, 2)?,
                    })
                })
                .optional()
        })
    }

    async fn find_token(&self, token_hash: &str) -> StoreResult<Option<TokenRecord>> {
        self.inline.read(|conn| {
            conn.prepare_cached(crate::store::common::token_lookup!())?
                .query_row([token_hash], |row| {
                    Ok(TokenRecord {
                        token_id: row.get(0)?,
                        token_expires_at: row.get(1)?,
                        token_revoked_at: row.get(2)?,
                        token_last_used_at: row.get(3)?,
                        user: user_at(row, 4)?,
                    })
                })
                .optional()
        })
    }
});
crate::store::account::impl_account_store!(SqliteStore);
crate::store::messages::impl_message_store!(SqliteStore, "max", {
    async fn append_message(&self, new: &NewMessage) -> StoreResult<Appended> {
        self.append_message_now(new).await
    }

    async fn room_position(&self, room: &str) -> StoreResult<Position> {
        self.room_position_now(room)
    }
});
