//! `switchboard backup PATH`: a consistent copy of a live SQLite database.
//!
//! SQLite's online backup API copies the database page by page from a read
//! transaction of its own. All pages are copied in one step: a step-wise copy is
//! restarted every time another connection writes between two steps, so under a
//! steady write load it might never finish, while one read transaction in WAL mode
//! holds no writer back and sees one consistent snapshot. The copy is written beside
//! its destination and renamed into place only once it is complete and checked, so a
//! crash or a full disk never leaves a half-written file under the name asked for.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

/// What a finished backup copied.
#[derive(Debug)]
pub struct BackupReport {
    pub pages: i32,
    pub bytes: u64,
}

/// Copies the database at `source` (a file path) to `dest`, which must not exist.
pub fn backup(source: &Path, dest: &Path) -> anyhow::Result<BackupReport> {
    if !source.exists() {
        bail!("no database at {}", source.display());
    }
    if dest.exists() {
        bail!("{} already exists: choose a new path", dest.display());
    }
    let partial = partial_path(dest);
    let _ = std::fs::remove_file(&partial);
    let result = copy_and_check(source, &partial);
    match result {
        Ok(pages) => {
            std::fs::rename(&partial, dest)
                .with_context(|| format!("moving the copy to {}", dest.display()))?;
            let bytes = std::fs::metadata(dest)?.len();
            Ok(BackupReport { pages, bytes })
        }
        Err(error) => {
            let _ = std::fs::remove_file(&partial);
            Err(error)
        }
    }
}

fn copy_and_check(source: &Path, partial: &Path) -> anyhow::Result<i32> {
    let from = Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("opening {}", source.display()))?;
    // The server may hold the write lock for a moment; wait for it as the server's
    // own connections do rather than failing at once.
    from.busy_timeout(Duration::from_secs(5))?;
    let mut to =
        Connection::open(partial).with_context(|| format!("creating {}", partial.display()))?;
    let pages = {
        let copy = Backup::new(&from, &mut to)?;
        // -1: every page in one step, so the copy is one snapshot (module doc). BUSY
        // and LOCKED are momentary (a checkpoint, a writer's lock): try again.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            match copy.step(-1).context("copying the database")? {
                StepResult::Done => break,
                _ if std::time::Instant::now() > deadline => {
                    bail!("the database stayed locked for 30 s; nothing was written")
                }
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        copy.progress().pagecount
    };
    // A copy that is not a valid database is no backup: check it before naming it.
    let verdict: String = to.query_row("PRAGMA quick_check", [], |row| row.get(0))?;
    if verdict != "ok" {
        bail!("the copy failed its integrity check: {verdict}");
    }
    // The copy keeps the source's WAL mode; fold its WAL into the file so the backup
    // is the single file the operator asked for.
    to.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    to.close().map_err(|(_, error)| error)?;
    Ok(pages)
}

fn partial_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    dest.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database_with_rows(path: &Path, rows: i64) {
        let conn = Connection::open(path).unwrap();
        conn.pragma_update(None, "journal_mode", "wal").unwrap();
        conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
            .unwrap();
        for i in 0..rows {
            conn.execute("INSERT INTO t (v) VALUES (?1)", [format!("row {i}")])
                .unwrap();
        }
    }

    #[test]
    fn a_backup_holds_every_committed_row_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("live.db");
        database_with_rows(&source, 250);
        let dest = dir.path().join("copy.db");

        let report = backup(&source, &dest).unwrap();
        assert!(report.pages > 0 && report.bytes > 0, "{report:?}");
        let copy = Connection::open(&dest).unwrap();
        let count: i64 = copy
            .query_row("SELECT count(*) FROM t", [], |row| row.get(0))
            .unwrap();
        assert_eq!(count, 250);
        assert!(!partial_path(&dest).exists());

        let again = backup(&source, &dest).unwrap_err().to_string();
        assert!(again.contains("already exists"), "{again}");
    }

    #[test]
    fn a_missing_source_is_an_error_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("copy.db");
        assert!(backup(&dir.path().join("none.db"), &dest).is_err());
        assert!(!dest.exists() && !partial_path(&dest).exists());
    }
}
