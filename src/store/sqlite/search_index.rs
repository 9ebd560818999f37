//! SQLite's substring search indexes over users' folded names and emails
//! (`name_key`, `email_key`), and how they are kept current.
//!
//! - `users_fts` (FTS5, trigram tokenizer, external content: migration 0001) answers
//!   needles of three characters or more;
//! - `users_bigrams` (FTS5, contentless, one token per pair of adjacent characters:
//!   migration 0006) answers two-character needles;
//! - a one-character needle has no index: it scans (a single character is in most
//!   rows, so a page is found in the first few).
//!
//! Both indexes are brought up to date once per write transaction, just before its
//! `COMMIT` ([`sync`]), from the ids the triggers of migration 0005 noted in
//! `users_fts_pending`: FTS5 writes a new index segment at every savepoint, so
//! per-row triggers made one segment per user written (a quarter of
//! `POST /api/users`). Readers never see the indexes and the table disagree.
//!
//! The bigram tokens are made by [`bigrams`], registered on the writer's connection as
//! the SQL function `sb_bigrams` ([`register`]); only that connection writes users.

use std::fmt::Write as _;

use rusqlite::Connection;
use rusqlite::functions::FunctionFlags;

use crate::directory::model::match_key;

/// Which index answers a needle (already folded by `match_key`).
pub enum Lookup {
    /// `users_fts MATCH` this phrase.
    Trigram(String),
    /// `users_bigrams MATCH` this token.
    Bigram(String),
    /// No index: `instr` over the table, in id order.
    Scan,
}

impl Lookup {
    pub fn of(needle: &str) -> Self {
        match needle.chars().count() {
            0 | 1 => Self::Scan,
            2 => Self::Bigram(format!("\"{}\"", bigrams(needle))),
            // The whole needle as one phrase, quotes doubled, so no character of user
            // input is read as FTS5 syntax.
            _ => Self::Trigram(format!("\"{}\"", needle.replace('"', "\"\""))),
        }
    }
}

/// The bigram tokens of `text`: each pair of adjacent characters, written as the
/// uppercase hex of its UTF-8 bytes, separated by spaces ("al!" -> `616C 6C21`). Hex
/// makes every pair a plain token whatever its characters; FTS5's `ascii` tokenizer
/// folds case, so queries and rows agree.
pub fn bigrams(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 5);
    push_bigrams(text, &mut out);
    out
}

fn push_bigrams(text: &str, out: &mut String) {
    let mut chars = text.char_indices().peekable();
    while let Some((start, _)) = chars.next() {
        let Some(&(next, second)) = chars.peek() else {
            break;
        };
        if !out.is_empty() {
            out.push(' ');
        }
        for byte in &text.as_bytes()[start..next + second.len_utf8()] {
            let _ = write!(out, "{byte:02X}");
        }
    }
}

/// Registers `sb_bigrams(name_key, email_key)`: the bigram tokens of both, never a
/// pair across the two; and `sb_match_key(name)`:
/// [`crate::directory::model::match_key`], for re-keying the stored names when that
/// rule changes ([`rebuild_marked`]).
pub fn register(conn: &Connection) -> rusqlite::Result<()> {
    conn.create_scalar_function(
        "sb_match_key",
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| Ok(match_key(&ctx.get::<String>(0)?)),
    )?;
    conn.create_scalar_function(
        "sb_bigrams",
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let mut out = String::new();
            for column in 0..2 {
                push_bigrams(&ctx.get::<String>(column)?, &mut out);
            }
            Ok(out)
        },
    )
}

/// Brings both indexes up to date with the users changed since the last sync: takes
/// out what they hold for those ids, puts in what `users` holds now (nothing for a
/// deleted user), and empties the list. Each statement handles every pending id at
/// once, so an index gains one segment per transaction.
const SYNC: [&str; 5] = [
    "INSERT INTO users_fts (users_fts, rowid, name_key, email_key)
     SELECT 'delete', id, old_name_key, old_email_key FROM users_fts_pending
     WHERE old_name_key IS NOT NULL",
    "INSERT INTO users_fts (rowid, name_key, email_key)
     SELECT u.id, u.name_key, u.email_key FROM users_fts_pending p JOIN users u ON u.id = p.id",
    "DELETE FROM users_bigrams
     WHERE rowid IN (SELECT id FROM users_fts_pending WHERE old_name_key IS NOT NULL)",
    "INSERT INTO users_bigrams (rowid, grams)
     SELECT u.id, sb_bigrams(u.name_key, u.email_key)
     FROM users_fts_pending p JOIN users u ON u.id = p.id",
    "DELETE FROM users_fts_pending",
];

/// [`SYNC`], inside every write transaction that changes users' names or emails, just
/// before its `COMMIT` (the group-commit writer's before-commit step). A transaction
/// without such changes finds the list empty: cached statements that touch nothing.
pub fn sync(conn: &Connection) -> rusqlite::Result<()> {
    for statement in SYNC {
        conn.prepare_cached(statement)?.execute([])?;
    }
    Ok(())
}

/// Does once what a migration marked in `search_index_rebuild`, then clears the mark.
/// Runs on the writer, right after migrating (the marks need its SQL functions); says
/// what it did, for the log.
///
/// - `name_key` (migration 0010): the stored names keyed again by today's
///   `match_key` (which folds accents since then). Only rows whose key changes are
///   written; the triggers of 0005 note them, so [`sync`] moves both indexes along
///   before this transaction commits.
/// - `users_bigrams` (migration 0006 adds it to a directory that may already hold
///   users): built from the users table.
pub fn rebuild_marked(conn: &Connection) -> rusqlite::Result<Vec<&'static str>> {
    let mut done = Vec::new();
    let mut take_mark = |name: &'static str| -> rusqlite::Result<bool> {
        let taken = conn
            .prepare_cached("DELETE FROM search_index_rebuild WHERE name = ?1")?
            .execute([name])?
            > 0;
        if taken {
            done.push(name);
        }
        Ok(taken)
    };
    if take_mark("name_key")? {
        conn.execute(
            "UPDATE users SET name_key = sb_match_key(name) WHERE name_key <> sb_match_key(name)",
            [],
        )?;
    }
    if take_mark("users_bigrams")? {
        conn.execute_batch(
            "INSERT INTO users_bigrams (users_bigrams) VALUES ('delete-all');
             INSERT INTO users_bigrams (rowid, grams)
                 SELECT id, sb_bigrams(name_key, email_key) FROM users;",
        )?;
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bigrams_are_the_hex_of_each_adjacent_pair() {
        assert_eq!(bigrams("al!"), "616C 6C21");
        assert_eq!(bigrams("zoë"), "7A6F 6FC3AB");
        assert_eq!(bigrams("a"), "");
        assert_eq!(bigrams(""), "");
    }

    #[test]
    fn needles_go_to_the_index_that_can_answer_them() {
        assert!(matches!(Lookup::of("a"), Lookup::Scan));
        assert!(matches!(Lookup::of("ë"), Lookup::Scan));
        assert!(matches!(Lookup::of("al"), Lookup::Bigram(t) if t == "\"616C\""));
        assert!(matches!(Lookup::of("a\"b"), Lookup::Trigram(p) if p == "\"a\"\"b\""));
    }

    /// Every pair in a row is found by its token, and no pair spans name and email.
    #[test]
    fn the_sql_function_indexes_both_keys_apart() {
        let conn = Connection::open_in_memory().unwrap();
        register(&conn).unwrap();
        conn.execute_batch(
            "CREATE VIRTUAL TABLE b USING fts5 (grams, content = '', contentless_delete = 1,
                 detail = none, tokenize = 'ascii');
             INSERT INTO b (rowid, grams) VALUES (1, sb_bigrams('zoë', 'z@x.io'));",
        )
        .unwrap();
        let hits = |needle: &str| -> i64 {
            let Lookup::Bigram(token) = Lookup::of(needle) else {
                panic!("{needle} is not a pair")
            };
            conn.query_row("SELECT count(*) FROM b WHERE b MATCH ?1", [token], |row| {
                row.get(0)
            })
            .unwrap()
        };
        for pair in ["zo", "oë", "z@", "@x", "x.", ".i", "io"] {
            assert_eq!(hits(pair), 1, "{pair}");
        }
        assert_eq!(hits("ëz"), 0, "no pair across the two keys");
        assert_eq!(hits("OË"), 0, "needles are folded before they get here");
    }

    /// Names keyed before `match_key` folded accents are keyed again once: only the
    /// rows whose key changes are written.
    #[test]
    fn a_marked_name_key_is_folded_again_once() {
        let conn = Connection::open_in_memory().unwrap();
        register(&conn).unwrap();
        conn.execute_batch(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, name_key TEXT);
             INSERT INTO users VALUES (1, 'Björn Ström', 'björn ström'), (2, 'Ada', 'ada');
             CREATE TABLE search_index_rebuild (name TEXT PRIMARY KEY);
             INSERT INTO search_index_rebuild VALUES ('name_key');",
        )
        .unwrap();
        assert_eq!(rebuild_marked(&conn).unwrap(), ["name_key"]);
        let keys: Vec<String> = conn
            .prepare("SELECT name_key FROM users ORDER BY id")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(keys, ["bjorn strom", "ada"]);
        assert!(rebuild_marked(&conn).unwrap().is_empty());
    }

    /// Users stored before the bigram index existed are indexed once, after the
    /// migration that marked it; a second run finds no mark and changes nothing.
    #[test]
    fn a_marked_index_is_built_from_the_users_once() {
        let conn = Connection::open_in_memory().unwrap();
        register(&conn).unwrap();
        conn.execute_batch(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name_key TEXT, email_key TEXT);
             INSERT INTO users VALUES (1, 'ada', 'ada@x.io'), (2, 'bob', 'bob@x.io');
             CREATE VIRTUAL TABLE users_bigrams USING fts5 (grams, content = '',
                 contentless_delete = 1, detail = none, tokenize = 'ascii');
             CREATE TABLE search_index_rebuild (name TEXT PRIMARY KEY);
             INSERT INTO search_index_rebuild VALUES ('users_bigrams');",
        )
        .unwrap();
        let ids = |needle: &str| -> Vec<i64> {
            let Lookup::Bigram(token) = Lookup::of(needle) else {
                panic!("{needle} is not a pair")
            };
            conn.prepare("SELECT rowid FROM users_bigrams WHERE users_bigrams MATCH ?1")
                .unwrap()
                .query_map([token], |row| row.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        assert_eq!(ids("da"), Vec::<i64>::new());
        assert_eq!(rebuild_marked(&conn).unwrap(), ["users_bigrams"], "built");
        assert_eq!(ids("da"), [1]);
        assert_eq!(ids("@x"), [1, 2]);
        assert!(
            rebuild_marked(&conn).unwrap().is_empty(),
            "nothing left to build"
        );
        assert_eq!(ids("@x"), [1, 2], "no row twice");
        let marks: i64 = conn
            .query_row("SELECT count(*) FROM search_index_rebuild", [], |row| {
                row.get(0)
            })
            .unwrap();
        assert_eq!(marks, 0);
    }
}
