//! Point reads on SQLite that run on the calling task's own thread.
//!
//! sqlx gives each SQLite connection a thread of its own and passes every statement,
//! and every row, across a channel: each query costs its caller two or more thread
//! hand-offs (futex wake, context switch, wake back). Under load those hand-offs cost
//! more than the query: the profile of `GET /api/users/{id}` put a third of the
//! server's time in them (bench/REPORT.md). The reads every request makes (the
//! session or token behind the caller, a user by id, a page of the list, a room's
//! position, autocomplete's index seeks) run here instead, on plain rusqlite
//! connections used directly: an indexed read from SQLite's page cache takes a few
//! microseconds, less than one context switch.
//!
//! Only reads whose cost is bounded by an index and a small `LIMIT` belong here: they
//! hold the async worker thread while they run. Anything that may scan (substring
//! matching without the trigram index) stays on sqlx's pool. In WAL mode a reader
//! never waits for the writer; [`BUSY_TIMEOUT`] bounds the rare wait for a
//! checkpoint's lock.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::rows::store_error;
use crate::store::{StoreError, StoreResult};

/// How long a read may wait for a lock before it fails as "unavailable". Short: the
/// thread that waits is an async worker.
const BUSY_TIMEOUT: Duration = Duration::from_millis(250);

/// Idle read-only connections to one database file. There are never more than the
/// threads that read at once (no read awaits while it holds a connection), so the
/// runtime's worker count bounds the pool.
pub struct InlineReader {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// Set by [`InlineReader::close`]: reads answer "unavailable", as sqlx's closed
    /// pools do.
    closed: AtomicBool,
}

impl InlineReader {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            idle: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
        }
    }

    /// Closes the idle connections and refuses further reads.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Runs `read` on an idle connection, opening one when none is idle. A connection
    /// whose read failed is dropped rather than reused.
    pub fn read<T>(&self, read: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> StoreResult<T> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Unavailable("the database is closed".into()));
        }
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => self.open().map_err(store_error)?,
        };
        let result = read(&conn).map_err(store_error)?;
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if !self.closed.load(Ordering::Acquire) {
            idle.push(conn);
        }
        Ok(result)
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // The statements of the hot path, each prepared once per connection.
        conn.set_prepared_statement_cache_capacity(32);
        Ok(conn)
    }
}
