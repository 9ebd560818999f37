//! The hot SQLite write transactions, on one thread of their own.
//!
//! SQLite takes one writer at a time, and a write transaction is several statements
//! (a directory change and its event; a chat message and its room's counter). Through
//! sqlx each statement is a round trip to the connection's thread; here the caller
//! hands the whole transaction over as one closure to a thread that owns a read-write
//! rusqlite connection, and awaits its result: one hand-off each way. The writes that
//! are rare (sessions, tokens, settings, migrations, bulk loads) stay on sqlx's
//! single-connection pool; the two writers take turns through SQLite's own lock
//! (`BEGIN IMMEDIATE` on both, and the busy timeout).

use std::path::Path;
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::rows::store_error;
use crate::store::{StoreError, StoreResult};

/// As sqlx's pools: how long a write waits for the other writer's lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

pub struct Writer {
    /// `None` once closed: writes then answer "unavailable".
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
}

impl Writer {
    /// Opens the connection and starts its thread. The database must exist and be
    /// in WAL mode already (sqlx's pools opened it first).
    pub fn start(path: &Path) -> anyhow::Result<Self> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // The same settings as the sqlx connections (see `SqliteStore::connect`).
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        conn.pragma_update(None, "temp_store", "memory")?;
        conn.set_prepared_statement_cache_capacity(32);
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                // Ends when the store is closed or dropped (the sender goes away).
                for job in queue {
                    job(&mut conn);
                }
            })?;
        Ok(Self {
            jobs: Mutex::new(Some(jobs)),
        })
    }

    /// Runs `write` on the writer thread and returns what it returned. `write` owns
    /// its transaction: it begins it (`BEGIN IMMEDIATE`, so it never deadlocks with
    /// the other writer) and decides to commit or roll back.
    pub async fn write<T: Send + 'static>(
        &self,
        write: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> StoreResult<T> {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            // The caller may have gone (a cancelled request); the write stands.
            let _ = reply.send(write(conn));
        });
        let sent = match &*self.jobs.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(jobs) => jobs.send(job).is_ok(),
            None => false,
        };
        if !sent {
            return Err(StoreError::Unavailable("the database is closed".into()));
        }
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the database writer stopped".into()))?
            .map_err(store_error)
    }

    /// Refuses further writes; the thread ends after the ones already queued.
    pub fn close(&self) {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}
