//! The one way SQLite is read: a pool of read-only rusqlite connections, used on
//! the calling task's own thread for bounded reads, on tokio's blocking threads for
//! the others. (Writes go through [`super::writer`] alone.)
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
//! Only reads whose cost is bounded run inline: they hold the async worker thread
//! while they run. A read bounded by an index and a small `LIMIT` uses
//! [`InlineReader::read`]; one with no such bound (a count over a table, every
//! account) uses [`InlineReader::read_off_thread`]. One that may scan (substring
//! matching) uses [`InlineReader::read_within`], which gives up after a time budget
//! so the caller can run it again off the async workers: the common needle finds its
//! page in the first rows scanned and is answered inline; only a rare one pays for
//! the scan twice, and then the budget is small next to the scan. In WAL mode a
//! reader never waits for the writer; [`BUSY_TIMEOUT`] bounds the rare wait for a
//! checkpoint's lock.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode, OpenFlags};

use super::rows::store_error;
use crate::store::{StoreError, StoreResult};

/// How long a read may wait for a lock before it fails as "unavailable". Short: the
/// thread that waits is an async worker.
const BUSY_TIMEOUT: Duration = Duration::from_millis(250);

/// SQLite virtual-machine steps between two looks at the clock in
/// [`InlineReader::read_within`]: a few microseconds of work, so the budget is kept
/// closely while reading the clock stays a rounding error.
const STEPS_PER_CLOCK_CHECK: std::ffi::c_int = 1_000;

/// Idle read-only connections to one database file. There are never more than the
/// reads running at once: the runtime's workers inline, plus the off-thread reads
/// (rare: see [`InlineReader::read_off_thread`]).
pub struct InlineReader {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// Set by [`InlineReader::close`]: reads answer "unavailable", as the closed writer
    /// does.
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
        crate::sync::lock(&self.idle).clear();
    }

    /// Runs `read` on an idle connection, opening one when none is idle. A connection
    /// whose read failed is dropped rather than reused.
    pub fn read<T>(&self, read: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> StoreResult<T> {
        let conn = self.take()?;
        let result = read(&conn).map_err(store_error)?;
        self.give_back(conn);
        Ok(result)
    }

    /// Runs `read` like [`InlineReader::read`], but interrupts it once it has run for
    /// `budget`: `Ok(None)` then, and the caller runs the read elsewhere.
    pub fn read_within<T>(
        &self,
        budget: Duration,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> StoreResult<Option<T>> {
        let conn = self.take()?;
        let deadline = Instant::now() + budget;
        conn.progress_handler(
            STEPS_PER_CLOCK_CHECK,
            Some(move || Instant::now() >= deadline),
        )
        .map_err(store_error)?;
        let result = read(&conn);
        conn.progress_handler(0, None::<fn() -> bool>)
            .map_err(store_error)?;
        let result = match result {
            Ok(value) => Some(value),
            Err(rusqlite::Error::SqliteFailure(failure, _))
                if failure.code == ErrorCode::OperationInterrupted =>
            {
                None
            }
            Err(err) => return Err(store_error(err)),
        };
        self.give_back(conn);
        Ok(result)
    }

    /// Runs `read` on a connection of the same pool, but on tokio's blocking threads:
    /// for reads whose cost has no small bound (a scan over its inline budget, a
    /// count over a whole table, every account), which must not hold an async
    /// worker.
    pub async fn read_off_thread<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> StoreResult<T> {
        let conn = self.take()?;
        let (conn, result) = tokio::task::spawn_blocking(move || {
            let result = read(&conn);
            (conn, result)
        })
        .await
        .map_err(|e| StoreError::Other(anyhow::anyhow!("a read panicked: {e}")))?;
        let result = result.map_err(store_error)?;
        self.give_back(conn);
        Ok(result)
    }

    /// An idle connection, or a new one when none is idle.
    fn take(&self) -> StoreResult<Connection> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Unavailable("the database is closed".into()));
        }
        let idle = crate::sync::lock(&self.idle).pop();
        match idle {
            Some(conn) => Ok(conn),
            None => self.open().map_err(store_error),
        }
    }

    /// Returns a connection whose read succeeded to the idle ones (a failed one is
    /// dropped instead, by not coming back here).
    fn give_back(&self, conn: Connection) {
        let mut idle = crate::sync::lock(&self.idle);
        if !self.closed.load(Ordering::Acquire) {
            idle.push(conn);
        }
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        stable_plans(&conn)?;
        // The statements of the hot path, each prepared once per connection.
        conn.set_prepared_statement_cache_capacity(32);
        Ok(conn)
    }
}

/// Turns on SQLite's query planner stability guarantee, without which a cached
/// statement is compiled again on every run: the bundled SQLite (3.51) lets the planner
/// read the value bound to `LIMIT ?` and marks the statement stale whenever that
/// parameter is bound again (the list page spent 7% of its time re-preparing its query). Our plans never
/// depend on bound values (no `LIKE`, no `sqlite_stat4`). The writer's connection
/// takes it too.
pub(super) fn stable_plans(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader over a fresh database file holding one table.
    fn reader() -> (tempfile::TempDir, InlineReader) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inline.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE t (n INTEGER); INSERT INTO t VALUES (7);")
            .unwrap();
        (dir, InlineReader::new(path))
    }

    /// Counts to `n` in SQL: work that takes as long as `n` says.
    fn count_to(conn: &Connection, n: i64) -> rusqlite::Result<i64> {
        conn.query_row(
            "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < ?1)
             SELECT count(*) FROM c",
            [n],
            |row| row.get(0),
        )
    }

    #[test]
    fn a_read_within_its_budget_is_answered() {
        let (_dir, reader) = reader();
        let n = reader
            .read_within(Duration::from_secs(10), |conn| count_to(conn, 1_000))
            .unwrap();
        assert_eq!(n, Some(1_000));
    }

    #[test]
    fn a_read_over_its_budget_is_interrupted_and_the_connection_reused() {
        let (_dir, reader) = reader();
        // Billions of steps: minutes if nothing interrupts it.
        let n = reader
            .read_within(Duration::from_millis(5), |conn| {
                count_to(conn, 10_000_000_000)
            })
            .unwrap();
        assert_eq!(n, None);
        // The same (only) connection answers the next read, with no handler left on it.
        assert_eq!(crate::sync::lock(&reader.idle).len(), 1);
        let n = reader.read(|conn| count_to(conn, 100_000)).unwrap();
        assert_eq!(n, 100_000);
        let seven: i64 = reader
            .read(|conn| conn.query_row("SELECT n FROM t", [], |row| row.get(0)))
            .unwrap();
        assert_eq!(seven, 7);
    }

    /// An off-thread read runs on a blocking thread, not the caller's, with a
    /// connection of the same pool, which comes back to it afterwards.
    #[tokio::test]
    async fn an_off_thread_read_uses_the_same_pool_on_another_thread() {
        let (_dir, reader) = reader();
        let caller = std::thread::current().id();
        let (thread, seven) = reader
            .read_off_thread(|conn| {
                let n: i64 = conn.query_row("SELECT n FROM t", [], |row| row.get(0))?;
                Ok((std::thread::current().id(), n))
            })
            .await
            .unwrap();
        assert_ne!(thread, caller);
        assert_eq!(seven, 7);
        assert_eq!(crate::sync::lock(&reader.idle).len(), 1);
        // A failed read's connection is dropped, as inline.
        let failed = reader
            .read_off_thread(|conn| {
                conn.query_row("SELECT nope FROM t", [], |row| row.get::<_, i64>(0))
            })
            .await;
        assert!(failed.is_err());
        assert_eq!(crate::sync::lock(&reader.idle).len(), 0);
        reader.close();
        assert!(matches!(
            reader.read_off_thread(|_| Ok(())).await,
            Err(StoreError::Unavailable(_))
        ));
    }

    #[test]
    fn a_cached_statement_with_a_bound_limit_is_prepared_once() {
        let (_dir, reader) = reader();
        let reprepared = reader
            .read(|conn| {
                for limit in 1..=3 {
                    conn.prepare_cached("SELECT n FROM t ORDER BY n LIMIT ?1")?
                        .query_map([limit], |row| row.get::<_, i64>(0))?
                        .collect::<Result<Vec<_>, _>>()?;
                }
                let statement = conn.prepare_cached("SELECT n FROM t ORDER BY n LIMIT ?1")?;
                Ok(statement.get_status(rusqlite::StatementStatus::RePrepare))
            })
            .unwrap();
        assert_eq!(reprepared, 0);
    }
}
