//! The user directory's SQL on SQLite.

use std::time::Duration;

use async_trait::async_trait;

use rusqlite::types::Value;
use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use super::messages::append_in;
use super::rows::{store_error, timestamp_text, user_at};
use super::search_index::Lookup;
use super::writer::Outcome;
use crate::auth::model::unix_now;
use crate::directory::model::{NewUser, Role, User, UserChanges, email_key, match_key};
use crate::hub::message::Message;
use crate::store::sql::{self, user_columns};
use crate::store::{
    EndedCredentials, EventOf, NewPassword, SortedPage, StoreError, StoreResult, UserPage,
    UserStore, UserUpdate, prefix_upper_bound,
};
use crate::timefmt;

/// Rows per multi-row `INSERT` in bulk loads: 8 parameters each, well under SQLite's
/// 32,766-parameter limit, and large enough that statement overhead disappears.
const BULK_CHUNK: usize = 1_000;

/// How long a substring scan may hold an async worker inline before it is run again
/// off the async workers (see [`super::inline`]). A page of a common needle takes
/// well under a millisecond; a needle that few users contain may scan a million rows.
pub(super) const INLINE_SCAN_BUDGET: Duration = Duration::from_millis(2);

/// A page of substring matches through the trigram index (needles of 3+ characters).
const TRIGRAM_PAGE: &str = concat!(
    "SELECT ",
    user_columns!(),
    " FROM users WHERE id IN (SELECT rowid FROM users_fts",
    " WHERE users_fts MATCH $1 AND rowid > $2 ORDER BY rowid LIMIT $3)",
    " ORDER BY id"
);

/// A page of two-character matches through the bigram index.
const BIGRAM_PAGE: &str = concat!(
    "SELECT ",
    user_columns!(),
    " FROM users WHERE id IN (SELECT rowid FROM users_bigrams",
    " WHERE users_bigrams MATCH $1 AND rowid > $2 ORDER BY rowid LIMIT $3)",
    " ORDER BY id"
);

/// A page of substring matches by scanning in id order (one-character needles, which
/// no index answers), until `$3` are found.
const INSTR_PAGE: &str = concat!(
    "SELECT ",
    user_columns!(),
    " FROM users WHERE (instr(name_key, $1) > 0 OR instr(email_key, $1) > 0)",
    " AND id > $2 ORDER BY id LIMIT $3"
);

/// Users whose folded name is in `[$1, $2)` (starts with a prefix: see
/// [`prefix_upper_bound`]), in name order, at most `$3`: a range of `users_name_key`.
/// Public for the test that EXPLAINs it.
pub const NAME_PREFIX: &str = concat!(
    "SELECT ",
    user_columns!(),
    " FROM users WHERE name_key >= $1 AND name_key < $2 ORDER BY name_key, id LIMIT $3"
);

/// The same for email keys, through the unique index `users_email_key`.
pub const EMAIL_PREFIX: &str = concat!(
    "SELECT ",
    user_columns!(),
    " FROM users WHERE email_key >= $1 AND email_key < $2 ORDER BY email_key LIMIT $3"
);

/// Whether user `id` is an admin and no other user is. Asked inside the write's
/// transaction on the writer thread, which runs one write at a time, so nothing can
/// change the answer before the write commits.
fn is_last_admin(tx: &rusqlite::Connection, id: i64) -> rusqlite::Result<bool> {
    let last: Option<bool> = tx
        .prepare_cached(
            "SELECT role = 'admin' AND NOT EXISTS
                 (SELECT 1 FROM users WHERE role = 'admin' AND id <> ?1)
             FROM users WHERE id = ?1",
        )?
        .query_row([id], |row| row.get(0))
        .optional()?;
    Ok(last.unwrap_or(false))
}

/// Sets user `id`'s password hash, deletes their sessions and revokes their live
/// tokens but `keep_token`, inside the caller's transaction. `None` when no user has
/// this id.
pub(super) fn set_password_in(
    tx: &rusqlite::Connection,
    id: i64,
    password: &NewPassword,
) -> rusqlite::Result<Option<EndedCredentials>> {
    let updated = tx
        .prepare_cached(sql::SET_PASSWORD_HASH)?
        .execute(params![password.hash, id])?;
    if updated == 0 {
        return Ok(None);
    }
    let sessions = tx
        .prepare_cached(sql::END_SESSIONS)?
        .query_map([id], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    let tokens = tx
        .prepare_cached(sql::REVOKE_LIVE_TOKENS)?
        .query_map(params![unix_now(), id, password.keep_token], |row| {
            row.get(0)
        })?
        .collect::<Result<_, _>>()?;
    Ok(Some(EndedCredentials {
        user_id: id,
        sessions,
        tokens,
    }))
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn list_users(&self, page: &UserPage) -> StoreResult<Vec<User>> {
        let users = match page.search.as_deref() {
            // A keyset page: an index range with a LIMIT, inline.
            None => self.inline.read(|conn| {
                conn.prepare_cached(sql::USER_PAGE)?
                    .query_map([page.after_id, page.limit], |row| user_at(row, 0))?
                    .collect::<Result<_, _>>()
            })?,
            // Substring matches (see [`super::search_index`]): inline while that stays
            // short, else again off the async workers (a rare needle may read far
            // into an index, and a one-character one scans).
            Some(needle) => {
                let (sql, pattern) = match Lookup::of(needle) {
                    Lookup::Trigram(phrase) => (TRIGRAM_PAGE, phrase),
                    Lookup::Bigram(token) => (BIGRAM_PAGE, token),
                    Lookup::Scan => (INSTR_PAGE, needle.to_owned()),
                };
                let inline = self.inline.read_within(self.scan_budget, |conn| {
                    conn.prepare_cached(sql)?
                        .query_map(params![pattern, page.after_id, page.limit], |row| {
                            user_at(row, 0)
                        })?
                        .collect::<Result<_, _>>()
                })?;
                match inline {
                    Some(users) => users,
                    None => {
                        let (after_id, limit) = (page.after_id, page.limit);
                        self.inline
                            .read_off_thread(move |conn| {
                                conn.prepare_cached(sql)?
                                    .query_map(params![pattern, after_id, limit], |row| {
                                        user_at(row, 0)
                                    })?
                                    .collect()
                            })
                            .await?
                    }
                }
            }
        };
        Ok(users)
    }

    async fn list_sorted(&self, page: &SortedPage) -> StoreResult<Vec<User>> {
        // An index range with a LIMIT in every order: inline, like the id page.
        let (sql, binds) = sql::sorted_page(page, "");
        let values = binds.into_iter().map(|bind| match bind {
            sql::Bind::Int(n) => Value::Integer(n),
            sql::Bind::Text(text) => Value::Text(text),
        });
        self.inline.read(|conn| {
            conn.prepare_cached(&sql)?
                .query_map(rusqlite::params_from_iter(values), |row| user_at(row, 0))?
                .collect::<Result<_, _>>()
        })
    }

    async fn count_users(&self) -> StoreResult<i64> {
        self.inline.read(|conn| {
            conn.prepare_cached(sql::USER_COUNT)?
                .query_row([], |row| row.get(0))
        })
    }

    async fn get_user(&self, id: i64) -> StoreResult<Option<User>> {
        self.inline.read(|conn| {
            conn.prepare_cached(sql::USER_BY_ID)?
                .query_row([id], |row| user_at(row, 0))
                .optional()
        })
    }

    async fn insert_user(&self, user: &NewUser, event_of: EventOf) -> StoreResult<(User, Message)> {
        let user = user.clone();
        let now = timestamp_text(timefmt::now()).map_err(store_error)?;
        self.writer
            .write(move |tx| {
                let created = tx.prepare_cached(sql::INSERT_USER)?.query_row(
                    params![
                        user.name,
                        user.email,
                        match_key(&user.name),
                        email_key(&user.email),
                        user.role.as_str(),
                        user.password_hash,
                        now
                    ],
                    |row| user_at(row, 0),
                )?;
                let event = append_in(tx, &event_of(&created))?;
                Ok(Outcome::Keep((created, event.message)))
            })
            .await
    }

    async fn update_user(
        &self,
        id: i64,
        changes: &UserChanges,
        password: Option<&NewPassword>,
        event_of: EventOf,
    ) -> StoreResult<Option<UserUpdate>> {
        let (changes, password) = (changes.clone(), password.cloned());
        let now = timestamp_text(timefmt::now()).map_err(store_error)?;
        self.writer
            .write(move |tx| {
                if changes.role == Some(Role::Member) && is_last_admin(tx, id)? {
                    return Ok(Outcome::Discard(Err(StoreError::LastAdmin)));
                }
                let user = if changes.is_empty() {
                    tx.prepare_cached(sql::USER_BY_ID)?
                        .query_row([id], |row| user_at(row, 0))
                        .optional()?
                } else {
                    tx.prepare_cached(sql::UPDATE_USER)?
                        .query_row(
                            params![
                                changes.name,
                                changes.name.as_deref().map(match_key),
                                changes.email,
                                changes.email.as_deref().map(email_key),
                                changes.role.map(|r| r.as_str()),
                                now,
                                id
                            ],
                            |row| user_at(row, 0),
                        )
                        .optional()?
                };
                let Some(user) = user else {
                    return Ok(Outcome::Keep(Ok(None)));
                };
                let event = if changes.is_empty() {
                    None
                } else {
                    Some(append_in(tx, &event_of(&user))?.message)
                };
                let ended = match &password {
                    Some(password) => set_password_in(tx, id, password)?,
                    None => None,
                };
                Ok(Outcome::Keep(Ok(Some(UserUpdate { user, event, ended }))))
            })
            .await?
    }

    async fn delete_user(&self, id: i64, event_of: EventOf) -> StoreResult<Option<Message>> {
        self.writer
            .write(move |tx| {
                if is_last_admin(tx, id)? {
                    return Ok(Outcome::Discard(Err(StoreError::LastAdmin)));
                }
                let deleted = tx
                    .prepare_cached(sql::DELETE_USER)?
                    .query_row([id], |row| user_at(row, 0))
                    .optional()?;
                let Some(user) = deleted else {
                    return Ok(Outcome::Keep(Ok(None)));
                };
                let event = append_in(tx, &event_of(&user))?;
                Ok(Outcome::Keep(Ok(Some(event.message))))
            })
            .await?
    }

    async fn autocomplete_names(&self, prefix_key: &str, limit: i64) -> StoreResult<Vec<String>> {
        // A loose index scan: each step seeks past the previous key, so a prefix
        // shared by thousands of users costs `limit` index seeks, and a name held by
        // many users is suggested once.
        let upper = prefix_upper_bound(prefix_key);
        self.inline.read(|conn| {
            // Two statements rather than `(... OR name_key > ?1)`, which SQLite could
            // only apply as a filter after the seek instead of as the seek itself.
            let mut first = conn.prepare_cached(
                "SELECT name, name_key FROM users WHERE name_key >= ?1 AND name_key < ?2
                 ORDER BY name_key, id LIMIT 1",
            )?;
            let mut next = conn.prepare_cached(
                "SELECT name, name_key FROM users WHERE name_key > ?1 AND name_key < ?2
                 ORDER BY name_key, id LIMIT 1",
            )?;
            let mut names = Vec::new();
            let mut after: Option<String> = None;
            while (names.len() as i64) < limit {
                let statement = if after.is_some() {
                    &mut next
                } else {
                    &mut first
                };
                let from = after.as_deref().unwrap_or(prefix_key);
                let found: Option<(String, String)> = statement
                    .query_row([from, upper.as_str()], |row| Ok((row.get(0)?, row.get(1)?)))
                    .optional()?;
                let Some((name, key)) = found else { break };
                names.push(name);
                after = Some(key);
            }
            Ok(names)
        })
    }

    async fn users_by_name_prefix(&self, prefix_key: &str, limit: i64) -> StoreResult<Vec<User>> {
        let upper = prefix_upper_bound(prefix_key);
        self.inline.read(|conn| {
            conn.prepare_cached(NAME_PREFIX)?
                .query_map(params![prefix_key, upper, limit], |row| user_at(row, 0))?
                .collect::<Result<_, _>>()
        })
    }

    async fn users_by_email_prefix(&self, prefix_key: &str, limit: i64) -> StoreResult<Vec<User>> {
        let upper = prefix_upper_bound(prefix_key);
        self.inline.read(|conn| {
            conn.prepare_cached(EMAIL_PREFIX)?
                .query_map(params![prefix_key, upper, limit], |row| user_at(row, 0))?
                .collect::<Result<_, _>>()
        })
    }

    async fn insert_users_bulk(&self, users: &[NewUser]) -> StoreResult<u64> {
        // On the writer, whose connection keeps the search indexes (its before-commit
        // step makes their tokens with a function only it has).
        let users = users.to_vec();
        let now = timestamp_text(timefmt::now()).map_err(store_error)?;
        self.writer
            .write(move |tx| {
                let mut added = 0;
                for chunk in users.chunks(BULK_CHUNK) {
                    // Not cached: a statement this large is used by bulk loads alone.
                    let rows = vec!["(?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
                    let mut insert = tx.prepare(&format!(
                        "INSERT OR IGNORE INTO users (name, email, name_key, email_key, role, \
                         password_hash, created_at, updated_at) VALUES {rows}"
                    ))?;
                    let values = chunk.iter().flat_map(|user| {
                        [
                            Value::Text(user.name.clone()),
                            Value::Text(user.email.clone()),
                            Value::Text(match_key(&user.name)),
                            Value::Text(email_key(&user.email)),
                            Value::Text(user.role.as_str().to_owned()),
                            user.password_hash.clone().map_or(Value::Null, Value::Text),
                            Value::Text(now.clone()),
                            Value::Text(now.clone()),
                        ]
                    });
                    added += insert.execute(rusqlite::params_from_iter(values))? as u64;
                }
                Ok(Outcome::Keep(added))
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::model::Role;
    use crate::store::Lifecycle;

    /// The plan SQLite makes for `sql` run with `params`, as EXPLAIN QUERY PLAN's
    /// details joined.
    fn plan(store: &SqliteStore, sql: &str, params: &[&dyn rusqlite::ToSql]) -> String {
        store
            .inline
            .read(|conn| {
                conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?
                    .query_map(params, |row| row.get::<_, String>(3))?
                    .collect::<Result<Vec<_>, _>>()
            })
            .unwrap()
            .join("\n")
    }

    /// Each of `/api/search`'s candidate queries reads an index, never the whole
    /// table: the name and email prefixes a range of their B-tree (no sort), the word
    /// prefix (`" " + needle`) the trigram index, or the bigram index when the needle
    /// has one character.
    #[tokio::test]
    async fn search_candidates_are_read_through_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("plan.db").display());
        let store = SqliteStore::connect(&url, 2).await.unwrap();
        store.migrate().await.unwrap();
        let upper = prefix_upper_bound("mar");
        let (word, one) = (Lookup::of(" mar"), Lookup::of(" m"));
        let (Lookup::Trigram(word), Lookup::Bigram(one)) = (word, one) else {
            panic!("' mar' is three characters, ' m' two");
        };

        let name = plan(&store, NAME_PREFIX, &[&"mar", &upper, &20]);
        assert!(
            name.contains("SEARCH users USING INDEX users_name_key (name_key>? AND name_key<?)"),
            "{name}"
        );
        let email = plan(&store, EMAIL_PREFIX, &[&"mar", &upper, &20]);
        assert!(
            email
                .contains("SEARCH users USING INDEX users_email_key (email_key>? AND email_key<?)"),
            "{email}"
        );
        let trigram = plan(&store, TRIGRAM_PAGE, &[&word, &0, &20]);
        // FTS5 answers MATCH (`:M`) from its index; "SCAN" is how a virtual table
        // is named in a plan.
        assert!(
            trigram.contains("SCAN users_fts VIRTUAL TABLE INDEX"),
            "{trigram}"
        );
        assert!(trigram.contains(":M"), "{trigram}");
        let bigram = plan(&store, BIGRAM_PAGE, &[&one, &0, &20]);
        assert!(
            bigram.contains("SCAN users_bigrams VIRTUAL TABLE INDEX"),
            "{bigram}"
        );
        assert!(bigram.contains(":M"), "{bigram}");
        for plan in [&name, &email, &trigram, &bigram] {
            assert!(
                !plan.lines().any(|line| line.trim() == "SCAN users"),
                "a table scan:\n{plan}"
            );
            assert!(!plan.contains("TEMP B-TREE"), "a sort:\n{plan}");
        }
    }

    /// Substring pages are the same whether the scan ran inline or, over its budget,
    /// off the async workers: every needle, both index paths, first and later pages.
    #[tokio::test]
    async fn a_scan_over_its_budget_gives_the_same_pages_from_the_pool() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("scan.db").display());
        let mut store = SqliteStore::connect(&url, 2).await.unwrap();
        store.migrate().await.unwrap();
        let users: Vec<NewUser> = (0..3_000)
            .map(|i| NewUser {
                name: format!("User {i} {}", if i % 97 == 0 { "Zqx" } else { "Al" }),
                email: format!("u{i}@example.com"),
                role: Role::Member,
                password_hash: None,
            })
            .collect();
        store.insert_users_bulk(&users).await.unwrap();

        let mut pages = Vec::new();
        for budget in [INLINE_SCAN_BUDGET, Duration::ZERO] {
            store.scan_budget = budget;
            let mut got = Vec::new();
            for (needle, after_id) in [
                ("zq", 0),
                ("zqx", 0),
                ("al", 0),
                ("al", 1_500),
                ("@ex", 2_990),
            ] {
                let page = UserPage {
                    search: Some(needle.into()),
                    after_id,
                    limit: 50,
                };
                let ids: Vec<i64> = store
                    .list_users(&page)
                    .await
                    .unwrap()
                    .iter()
                    .map(|u| u.id)
                    .collect();
                got.push(ids);
            }
            pages.push(got);
        }
        assert_eq!(pages[0], pages[1]);
        // And the pages are the right ones (ids are 1-based, in insertion order).
        let zq: Vec<i64> = (0..3_000)
            .filter(|i| i % 97 == 0)
            .map(|i| i + 1)
            .take(50)
            .collect();
        assert_eq!(pages[0][0], zq);
        assert_eq!(pages[0][1], zq);
        let al_after: Vec<i64> = (0..3_000)
            .filter(|i| i % 97 != 0)
            .map(|i| i + 1)
            .filter(|id| *id > 1_500)
            .take(50)
            .collect();
        assert_eq!(pages[0][3], al_after);
        assert_eq!(pages[0][4], (2_991..=3_000).collect::<Vec<i64>>());
    }
}
