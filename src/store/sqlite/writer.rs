//! Every SQLite write transaction, on one thread of its own, committed in groups.
//!
//! SQLite takes one writer at a time, and a write is several statements (a directory
//! change and its event; a chat message and its room's counter). Through sqlx each
//! statement is a round trip to the connection's thread; here the caller hands the
//! whole write over as one closure to a thread that owns a read-write rusqlite
//! connection, and awaits its result: one hand-off each way.
//!
//! Group commit: the writes that queued up while the previous group ran go into one
//! transaction, each inside a savepoint of its own. A write that fails (or asks to be
//! discarded) rolls back to its savepoint and leaves the others alone; the group
//! commits once, so pages that every write touches (the room counter, the tails of
//! the indexes) reach the WAL once per group instead of once per write. Nobody hears
//! "done" before the group's `COMMIT` succeeded; if it fails, every write of the group
//! gets the error and none of them happened.
//!
//! Before each `COMMIT` the writer runs the store's `before_commit` step, in the same
//! transaction (bringing the search indexes up to date with the group's user changes,
//! once per group instead of once per row: see `search_index`). If it fails, the
//! group fails as a whole.
//!
//! Every write of the SQLite store runs here, bulk loads included (the search
//! indexes' SQL function is registered on this connection only). Only the
//! migrations run elsewhere (on sqlx, before serving); they and other processes (a
//! CLI command) take turns with this thread through SQLite's own lock
//! (`BEGIN IMMEDIATE`, and the busy timeout).

use std::path::Path;
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::rows::store_error;
use crate::store::{StoreError, StoreResult};

/// How long a write waits for another process's lock (a CLI command, a migration).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Most writes in one group: bounds how long the first of them waits for the last.
const MAX_GROUP: usize = 64;

/// What a write asks for once it ran: keep its changes, or roll them back (a chat
/// send whose `client_id` was already stored gives its message id back).
pub enum Outcome<T> {
    Keep(T),
    Discard(T),
}

/// One queued write: run inside the group's transaction, then told how the group's
/// commit went.
trait Job: Send {
    /// Runs the write in a savepoint; returns its result, sent once the group ended.
    fn run(self: Box<Self>, conn: &Connection) -> Box<dyn Delivery>;
    /// The group could not even begin.
    fn refuse(self: Box<Self>, cause: &rusqlite::Error);
}

trait Delivery: Send {
    fn deliver(self: Box<Self>, commit: Result<(), &rusqlite::Error>);
}

struct Write<T, F> {
    write: F,
    reply: oneshot::Sender<StoreResult<T>>,
}

struct Done<T> {
    result: rusqlite::Result<T>,
    reply: oneshot::Sender<StoreResult<T>>,
}

impl<T, F> Job for Write<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> rusqlite::Result<Outcome<T>> + Send,
{
    fn run(self: Box<Self>, conn: &Connection) -> Box<dyn Delivery> {
        let result = in_savepoint(conn, self.write);
        Box::new(Done {
            result,
            reply: self.reply,
        })
    }

    fn refuse(self: Box<Self>, cause: &rusqlite::Error) {
        let _ = self.reply.send(Err(group_failure(cause)));
    }
}

impl<T: Send> Delivery for Done<T> {
    fn deliver(self: Box<Self>, commit: Result<(), &rusqlite::Error>) {
        let answer = match (commit, self.result) {
            (Err(cause), _) => Err(group_failure(cause)),
            (Ok(()), result) => result.map_err(store_error),
        };
        // The caller may have gone (a cancelled request); the write stands.
        let _ = self.reply.send(answer);
    }
}

fn in_savepoint<T>(
    conn: &Connection,
    write: impl FnOnce(&Connection) -> rusqlite::Result<Outcome<T>>,
) -> rusqlite::Result<T> {
    conn.execute_batch("SAVEPOINT write")?;
    let (value, keep) = match write(conn) {
        Ok(Outcome::Keep(value)) => (Ok(value), true),
        Ok(Outcome::Discard(value)) => (Ok(value), false),
        Err(err) => (Err(err), false),
    };
    if keep {
        conn.execute_batch("RELEASE write")?;
    } else {
        conn.execute_batch("ROLLBACK TO write; RELEASE write")?;
    }
    value
}

/// The group's failure, as each of its writes reports it.
fn group_failure(cause: &rusqlite::Error) -> StoreError {
    let busy = matches!(
        cause.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    );
    if busy {
        StoreError::Unavailable(cause.to_string().into())
    } else {
        StoreError::Other(anyhow::anyhow!("the write's transaction failed: {cause}"))
    }
}

/// What the store adds to the writer's connection.
#[derive(Clone, Copy)]
pub struct Hooks {
    /// Runs once, when the connection is open (e.g. SQL functions to register).
    pub on_open: fn(&Connection) -> rusqlite::Result<()>,
    /// Ends every group inside its transaction, after its writes and before its
    /// `COMMIT`.
    pub before_commit: fn(&Connection) -> rusqlite::Result<()>,
}

impl Hooks {
    /// No additions (the writer's own tests).
    #[cfg(test)]
    const NONE: Self = Self {
        on_open: |_| Ok(()),
        before_commit: |_| Ok(()),
    };
}

pub struct Writer {
    /// `None` once closed: writes then answer "unavailable".
    jobs: Mutex<Option<mpsc::Sender<Box<dyn Job>>>>,
}

impl Writer {
    /// Opens the connection and starts its thread. The database must exist and be
    /// in WAL mode already (`SqliteStore::connect` makes it so).
    pub fn start(path: &Path, hooks: Hooks) -> anyhow::Result<Self> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // The same settings as the migrations' connection (`SqliteStore::connect`).
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        conn.pragma_update(None, "temp_store", "memory")?;
        super::inline::stable_plans(&conn)?;
        conn.set_prepared_statement_cache_capacity(32);
        (hooks.on_open)(&conn)?;
        let (jobs, queue) = mpsc::channel::<Box<dyn Job>>();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run_groups(&conn, &queue, hooks.before_commit))?;
        Ok(Self {
            jobs: Mutex::new(Some(jobs)),
        })
    }

    /// Runs `write` on the writer thread, inside a transaction (its own savepoint of
    /// the group's), and returns what it returned once that transaction committed.
    pub async fn write<T: Send + 'static>(
        &self,
        write: impl FnOnce(&Connection) -> rusqlite::Result<Outcome<T>> + Send + 'static,
    ) -> StoreResult<T> {
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(Write { write, reply });
        let sent = match &*crate::sync::lock(&self.jobs) {
            Some(jobs) => jobs.send(job).is_ok(),
            None => false,
        };
        if !sent {
            return Err(StoreError::Unavailable("the database is closed".into()));
        }
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the database writer stopped".into()))?
    }

    /// Refuses further writes; the thread ends after the ones already queued.
    pub fn close(&self) {
        crate::sync::lock(&self.jobs).take();
    }
}

/// The writer thread: one group per turn, until the store is closed or dropped.
fn run_groups(
    conn: &Connection,
    queue: &mpsc::Receiver<Box<dyn Job>>,
    before_commit: fn(&Connection) -> rusqlite::Result<()>,
) {
    while let Ok(first) = queue.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        if let Err(cause) = conn.execute_batch("BEGIN IMMEDIATE") {
            for job in group {
                job.refuse(&cause);
            }
            continue;
        }
        let mut deliveries = Vec::with_capacity(group.len());
        let mut jobs = group.into_iter();
        for job in jobs.by_ref() {
            deliveries.push(job.run(conn));
            // Some failures (a full disk, I/O errors) roll the whole transaction
            // back: then nothing of the group stands, and the rest must not run
            // outside it.
            if conn.is_autocommit() {
                break;
            }
        }
        let commit = if conn.is_autocommit() {
            Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT),
                Some("the group's transaction was rolled back".into()),
            ))
        } else {
            before_commit(conn).and_then(|()| conn.execute_batch("COMMIT"))
        };
        if commit.is_err() && !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        let failed = commit.as_ref().err();
        for delivery in deliveries {
            delivery.deliver(failed.map_or(Ok(()), Err));
        }
        if let Some(cause) = failed {
            for job in jobs {
                job.refuse(cause);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Unique;

    fn table(dir: &tempfile::TempDir) -> std::path::PathBuf {
        let path = dir.path().join("w.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT UNIQUE)",
        )
        .unwrap();
        path
    }

    /// Many writes queued at once share groups; each keeps, discards or fails alone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_in_one_group_succeed_fail_and_discard_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = table(&dir);
        Connection::open(&path)
            .unwrap()
            .execute("INSERT INTO t (k, v) VALUES (-1, 'taken')", [])
            .unwrap();
        let writer = std::sync::Arc::new(Writer::start(&path, Hooks::NONE).unwrap());
        let mut tasks = Vec::new();
        for k in 0..200i64 {
            let writer = writer.clone();
            tasks.push(tokio::spawn(async move {
                writer
                    .write(move |tx| {
                        // Every 5th collides with a `v` stored before the test (a
                        // failure, whatever order the tasks reach the writer in);
                        // every 7th inserts and then asks to be discarded.
                        let v = if k % 5 == 4 {
                            "taken".to_owned()
                        } else {
                            k.to_string()
                        };
                        tx.execute("INSERT INTO t (k, v) VALUES (?1, ?2)", (k, v))?;
                        Ok(if k % 7 == 6 {
                            Outcome::Discard(k)
                        } else {
                            Outcome::Keep(k)
                        })
                    })
                    .await
            }));
        }
        let mut kept = Vec::new();
        for (k, task) in tasks.into_iter().enumerate() {
            let k = k as i64;
            match task.await.unwrap() {
                Ok(got) => {
                    assert_eq!(got, k);
                    assert_ne!(k % 5, 4, "write {k} collided and still succeeded");
                    if k % 7 != 6 {
                        kept.push(k);
                    }
                }
                // The test table's unique index, named by its column as SQLite does.
                Err(StoreError::Duplicate(Unique::Other(index))) if index == "t.v" => {
                    assert_eq!(k % 5, 4, "only collisions fail")
                }
                Err(other) => panic!("write {k}: {other}"),
            }
        }
        let conn = Connection::open(&path).unwrap();
        let mut stored: Vec<i64> = conn
            .prepare("SELECT k FROM t WHERE k >= 0 ORDER BY k")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        stored.sort();
        assert_eq!(stored, kept, "exactly the kept writes are stored");
        assert!(
            stored.iter().all(|k| k % 7 != 6),
            "no discarded write stands"
        );
    }

    #[tokio::test]
    async fn a_closed_writer_answers_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let writer = Writer::start(&table(&dir), Hooks::NONE).unwrap();
        writer.close();
        let refused = writer.write(|_| Ok(Outcome::Keep(()))).await;
        assert!(matches!(refused, Err(StoreError::Unavailable(_))));
    }

    /// The before-commit step runs inside the group's transaction: what it writes
    /// commits with the group, and when it fails, none of the group's writes stand.
    #[tokio::test]
    async fn the_before_commit_step_commits_with_the_group_or_fails_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = table(&dir);
        Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE mirror (k INTEGER PRIMARY KEY)")
            .unwrap();
        let before_commit = |conn: &Connection| {
            let poisoned: bool = conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM t WHERE v = 'poison')",
                [],
                |row| row.get(0),
            )?;
            if poisoned {
                return Err(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT),
                    Some("poisoned".into()),
                ));
            }
            conn.execute_batch("INSERT OR IGNORE INTO mirror SELECT k FROM t")
        };
        let hooks = Hooks {
            before_commit,
            ..Hooks::NONE
        };
        let writer = Writer::start(&path, hooks).unwrap();
        let insert = |k: i64, v: &'static str| {
            writer.write(move |tx| {
                tx.execute("INSERT INTO t (k, v) VALUES (?1, ?2)", (k, v))?;
                Ok(Outcome::Keep(k))
            })
        };
        assert_eq!(insert(1, "one").await.unwrap(), 1);
        assert!(
            insert(2, "poison").await.is_err(),
            "the failed step fails the write"
        );
        assert_eq!(insert(3, "three").await.unwrap(), 3);

        let conn = Connection::open(&path).unwrap();
        let keys = |sql: &str| -> Vec<i64> {
            conn.prepare(sql)
                .unwrap()
                .query_map([], |row| row.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        assert_eq!(keys("SELECT k FROM t ORDER BY k"), vec![1, 3]);
        assert_eq!(keys("SELECT k FROM mirror ORDER BY k"), vec![1, 3]);
    }
}
