//! The embedded default: one SQLite file in WAL mode, reached one way in each
//! direction.
//!
//! - Every write goes through [`writer`]: one thread owning the one read-write
//!   connection, which runs each write whole (a directory change and its event; a
//!   chat message and its room's counter) as a closure and commits the writes that
//!   queued meanwhile as one group, `BEGIN IMMEDIATE` so another process (a CLI
//!   command) is waited for, not deadlocked. SQLite allows one writer at a time
//!   anyway; queueing writers on our own thread means no `SQLITE_BUSY` between our
//!   own requests.
//! - Every read goes through [`inline`]: one pool of read-only connections (WAL
//!   lets them read beside the writer), used on the calling task's thread for the
//!   bounded reads and on tokio's blocking threads for the others.
//!
//! sqlx only runs the migrations (`migrate`), on a connection of its own opened for
//! them. The statements are [`crate::store::sql`]'s where the dialects agree;
//! [`rows`] maps their rows; [`search_index`] owns the substring search indexes and
//! keeps them current.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::Connection as _;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};

use super::{Backend, Lifecycle, StoreResult};
use inline::InlineReader;
use writer::Writer;

mod account;
mod auth;
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
    /// How the migrations' connection opens the file.
    options: SqliteConnectOptions,
    /// Every read (see [`inline`]).
    inline: InlineReader,
    /// Every write, on a thread of its own (see [`writer`]).
    writer: Writer,
    /// How long a substring scan may run inline before it moves off the async
    /// workers ([`users::INLINE_SCAN_BUDGET`]; tests set zero to take the other path).
    scan_budget: Duration,
}

impl SqliteStore {
    /// `url` is `sqlite://path/to/file.db`, `sqlite:path` or a bare path; the file and
    /// its directory are created when missing. `_max_connections` is PostgreSQL's:
    /// SQLite's readers are as many as the reads running at once.
    pub async fn connect(url: &str, _max_connections: u32) -> anyhow::Result<Self> {
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
        // Creates the file and puts it in WAL mode (a setting of the file) before
        // the writer and the readers open it.
        SqliteConnection::connect_with(&options)
            .await?
            .close()
            .await?;
        Ok(Self {
            options,
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
}

#[async_trait]
impl Lifecycle for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn migrate(&self) -> StoreResult<()> {
        // sqlx's one remaining use on SQLite; its connection waits for the writer's
        // lock through the busy timeout, and is closed once the migrations ran.
        // (A pool of one: the migrator's future on a bare connection is not `Send`
        // enough for `async_trait`.)
        let conn = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(self.options.clone())
            .await?;
        let migrated = sqlx::migrate!("./migrations/sqlite").run(&conn).await;
        conn.close().await;
        migrated.map_err(|e| super::StoreError::Other(e.into()))?;
        // What a migration marked that needs the writer's SQL functions: once, and
        // long on a large directory (a million users: seconds), so it is logged.
        let started = std::time::Instant::now();
        let done = self
            .writer
            .write(|conn| search_index::rebuild_marked(conn).map(writer::Outcome::Keep))
            .await?;
        if !done.is_empty() {
            tracing::info!(
                elapsed_ms = started.elapsed().as_millis() as u64,
                rebuilt = ?done,
                "rebuilt search keys and indexes from the stored users (once)"
            );
        }
        Ok(())
    }

    async fn ping(&self) -> StoreResult<()> {
        self.inline
            .read(|conn| conn.query_row("SELECT 1", [], |row| row.get::<_, i64>(0)))?;
        Ok(())
    }

    async fn close(&self) {
        self.inline.close();
        self.writer.close();
    }
}
