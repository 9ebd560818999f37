//! The user directory's SQL on PostgreSQL.

use async_trait::async_trait;

use sqlx::PgConnection;

use super::PgStore;
use super::messages::append_in;
use crate::auth::model::unix_now;
use crate::directory::model::{NewUser, Role, User, UserChanges, email_key, match_key};
use crate::hub::message::Message;
use crate::store::sql::{self, user_columns};
use crate::store::{
    EndedCredentials, EventOf, NewPassword, SortedPage, StoreError, StoreResult, UserPage,
    UserStore, UserUpdate, prefix_upper_bound,
};
use crate::timefmt;

/// Rows per `INSERT ... SELECT FROM UNNEST` in bulk loads.
const BULK_CHUNK: usize = 10_000;

/// The byte-order collation the list's name and email orders use, as their indexes
/// are built (migration 0011): the same order as SQLite's, whatever the database's
/// locale.
pub const SORT_COLLATION: &str = r#" COLLATE "C""#;

/// `al_x` -> `%al\_x%`: a LIKE pattern matching the needle literally anywhere.
fn contains_pattern(needle: &str) -> String {
    format!("%{}%", sql::like_escape(needle))
}

/// A page of substring matches for the LIKE pattern `$1`, after id `$2`, at most `$3`:
/// served by pg_trgm's indexes for needles of three characters or more; a
/// one-character needle has no index (as on SQLite) and walks users in id order,
/// which finds a page in the first rows for the characters most users have.
const LIKE_PAGE: &str = concat!(
    "SELECT ",
    user_columns!(),
    " FROM users WHERE (name_key LIKE $1 OR email_key LIKE $1)",
    " AND id > $2 ORDER BY id LIMIT $3"
);

/// A page of two-character matches for the pair `$1` (no trigram in it): through the
/// bigram index of migration 0007 for a rare pair, else by the primary key, testing
/// `strpos` (cheap, and literal: no LIKE escaping) before the bigrams. The two
/// conditions are equivalent; both are here so that the planner may choose either
/// way (migration 0007 says how it chooses).
const BIGRAM_PAGE: &str = concat!(
    "SELECT ",
    user_columns!(),
    " FROM users WHERE sb_bigrams(name_key, email_key) @> ARRAY[$1::text]",
    " AND (strpos(name_key, $1) > 0 OR strpos(email_key, $1) > 0)",
    " AND id > $2 ORDER BY id LIMIT $3"
);

/// The statement `list_users` runs for a search `needle` (already folded by
/// `match_key`) and its first parameter; the others are the cursor and the limit.
/// Public for the test that EXPLAINs it.
pub fn search_page(needle: &str) -> (&'static str, String) {
    if needle.chars().count() == 2 {
        (BIGRAM_PAGE, needle.to_owned())
    } else {
        (LIKE_PAGE, contains_pattern(needle))
    }
}

/// Users whose folded name is in `[$1, $2)` (starts with a prefix: see
/// [`prefix_upper_bound`]), in name order, at most `$3`: a range of `users_name_key`,
/// whose `COLLATE "C"` the range must name to use it. Public for the test that
/// EXPLAINs it.
pub const NAME_PREFIX: &str = concat!(
    "SELECT ",
    user_columns!(),
    r#" FROM users WHERE name_key COLLATE "C" >= $1 AND name_key COLLATE "C" < $2"#,
    r#" ORDER BY name_key COLLATE "C", id LIMIT $3"#
);

/// The same for email keys, through `users_email_prefix` (migration 0010).
pub const EMAIL_PREFIX: &str = concat!(
    "SELECT ",
    user_columns!(),
    r#" FROM users WHERE email_key COLLATE "C" >= $1 AND email_key COLLATE "C" < $2"#,
    r#" ORDER BY email_key COLLATE "C" LIMIT $3"#
);

/// Keys the stored names again when migration 0010 marked it (`match_key` folds
/// accents since then): in batches of [`REFOLD_BATCH`] in id order, writing only the
/// rows whose key changes, then clears the mark. PostgreSQL cannot fold as Rust does,
/// so this is done here and not in the migration. Idempotent: a start interrupted
/// half way does it again. Says how many keys changed, `None` when nothing was marked.
pub(super) async fn refold_marked(pool: &sqlx::PgPool) -> Result<Option<u64>, sqlx::Error> {
    let marked: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM search_index_rebuild WHERE name = 'name_key')",
    )
    .fetch_one(pool)
    .await?;
    if !marked {
        return Ok(None);
    }
    let (mut after, mut changed) = (0_i64, 0_u64);
    loop {
        let rows: Vec<(i64, String, String)> = sqlx::query_as(
            "SELECT id, name, name_key FROM users WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(REFOLD_BATCH)
        .fetch_all(pool)
        .await?;
        let Some(last) = rows.last() else { break };
        after = last.0;
        let (ids, keys): (Vec<i64>, Vec<String>) = rows
            .iter()
            .filter_map(|(id, name, key)| {
                let folded = match_key(name);
                (&folded != key).then_some((*id, folded))
            })
            .unzip();
        if !ids.is_empty() {
            changed += sqlx::query(
                "UPDATE users u SET name_key = t.k FROM UNNEST($1::bigint[], $2::text[]) AS t(id, k)
                 WHERE u.id = t.id",
            )
            .bind(ids)
            .bind(keys)
            .execute(pool)
            .await?
            .rows_affected();
        }
    }
    sqlx::query("DELETE FROM search_index_rebuild WHERE name = 'name_key'")
        .execute(pool)
        .await?;
    Ok(Some(changed))
}

/// Users read per batch by [`refold_marked`].
const REFOLD_BATCH: i64 = 10_000;

/// Whether user `id` is an admin and no other user is, asked inside a write
/// transaction that then holds a lock on every admin row until it ends. Under READ
/// COMMITTED two transactions demoting each other would otherwise each still see the
/// other as an admin and both commit; with the locks (taken in id order, so no
/// deadlock) the second waits for the first, re-reads the rows it changed, and sees
/// the truth.
async fn is_last_admin(tx: &mut PgConnection, id: i64) -> Result<bool, sqlx::Error> {
    let admins: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM users WHERE role = 'admin' ORDER BY id FOR UPDATE")
            .fetch_all(&mut *tx)
            .await?;
    Ok(admins == [id])
}

/// Sets user `id`'s password hash, deletes their sessions and revokes their live
/// tokens but `keep_token`, inside the caller's transaction. `None` when no user has
/// this id.
pub(super) async fn set_password_in(
    tx: &mut PgConnection,
    id: i64,
    password: &NewPassword,
) -> Result<Option<EndedCredentials>, sqlx::Error> {
    let updated = sqlx::query(sql::SET_PASSWORD_HASH)
        .bind(&password.hash)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if updated == 0 {
        return Ok(None);
    }
    let sessions = sqlx::query_scalar(sql::END_SESSIONS)
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
    let tokens = sqlx::query_scalar(sql::REVOKE_LIVE_TOKENS)
        .bind(unix_now())
        .bind(id)
        .bind(password.keep_token)
        .fetch_all(&mut *tx)
        .await?;
    Ok(Some(EndedCredentials {
        user_id: id,
        sessions,
        tokens,
    }))
}

#[async_trait]
impl UserStore for PgStore {
    async fn list_users(&self, page: &UserPage) -> StoreResult<Vec<User>> {
        let users = match page.search.as_deref() {
            None => {
                sqlx::query_as(sql::USER_PAGE)
                    .bind(page.after_id)
                    .bind(page.limit)
                    .fetch_all(&self.pool)
                    .await?
            }
            Some(needle) => {
                let (sql, first) = search_page(needle);
                sqlx::query_as(sql)
                    .bind(first)
                    .bind(page.after_id)
                    .bind(page.limit)
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        Ok(users)
    }

    async fn list_sorted(&self, page: &SortedPage) -> StoreResult<Vec<User>> {
        let (sql, binds) = sql::sorted_page(page, SORT_COLLATION);
        let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql));
        for bind in binds {
            query = match bind {
                sql::Bind::Int(n) => query.bind(n),
                sql::Bind::Text(text) => query.bind(text),
            };
        }
        Ok(query.fetch_all(&self.pool).await?)
    }

    async fn count_users(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar(sql::USER_COUNT)
            .fetch_one(&self.pool)
            .await?)
    }

    async fn get_user(&self, id: i64) -> StoreResult<Option<User>> {
        Ok(sqlx::query_as(sql::USER_BY_ID)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn insert_user(&self, user: &NewUser, event_of: EventOf) -> StoreResult<(User, Message)> {
        let now = timefmt::now();
        let mut tx = self.pool.begin().await?;
        let created: User = sqlx::query_as(sql::INSERT_USER)
            .bind(&user.name)
            .bind(&user.email)
            .bind(match_key(&user.name))
            .bind(email_key(&user.email))
            .bind(user.role.as_str())
            .bind(&user.password_hash)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
        let event = append_in(&mut tx, &event_of(&created)).await?;
        tx.commit().await?;
        Ok((created, event.message))
    }

    async fn update_user(
        &self,
        id: i64,
        changes: &UserChanges,
        password: Option<&NewPassword>,
        event_of: EventOf,
    ) -> StoreResult<Option<UserUpdate>> {
        let mut tx = self.pool.begin().await?;
        if changes.role == Some(Role::Member) && is_last_admin(&mut tx, id).await? {
            return Err(StoreError::LastAdmin);
        }
        let user: Option<User> = if changes.is_empty() {
            sqlx::query_as(sql::USER_BY_ID)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
        } else {
            sqlx::query_as(sql::UPDATE_USER)
                .bind(&changes.name)
                .bind(changes.name.as_deref().map(match_key))
                .bind(&changes.email)
                .bind(changes.email.as_deref().map(email_key))
                .bind(changes.role.map(|r| r.as_str()))
                .bind(timefmt::now())
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
        };
        let Some(user) = user else {
            return Ok(None);
        };
        let event = if changes.is_empty() {
            None
        } else {
            Some(append_in(&mut tx, &event_of(&user)).await?.message)
        };
        let ended = match password {
            Some(password) => set_password_in(&mut tx, id, password).await?,
            None => None,
        };
        tx.commit().await?;
        Ok(Some(UserUpdate { user, event, ended }))
    }

    async fn delete_user(&self, id: i64, event_of: EventOf) -> StoreResult<Option<Message>> {
        let mut tx = self.pool.begin().await?;
        if is_last_admin(&mut tx, id).await? {
            return Err(StoreError::LastAdmin);
        }
        let deleted: Option<User> = sqlx::query_as(sql::DELETE_USER)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(user) = deleted else {
            return Ok(None);
        };
        let event = append_in(&mut tx, &event_of(&user)).await?;
        tx.commit().await?;
        Ok(Some(event.message))
    }

    async fn autocomplete_names(&self, prefix_key: &str, limit: i64) -> StoreResult<Vec<String>> {
        // A loose index scan (see the SQLite store): one seek per distinct name.
        let upper = prefix_upper_bound(prefix_key);
        let mut names = Vec::new();
        let mut after: Option<String> = None;
        let mut conn = self.pool.acquire().await?;
        while (names.len() as i64) < limit {
            let next: Option<(String, String)> = match &after {
                None => sqlx::query_as(
                    r#"SELECT name, name_key FROM users
                       WHERE name_key COLLATE "C" >= $1 AND name_key COLLATE "C" < $2
                       ORDER BY name_key COLLATE "C", id LIMIT 1"#,
                )
                .bind(prefix_key),
                Some(key) => sqlx::query_as(
                    r#"SELECT name, name_key FROM users
                       WHERE name_key COLLATE "C" > $1 AND name_key COLLATE "C" < $2
                       ORDER BY name_key COLLATE "C", id LIMIT 1"#,
                )
                .bind(key.clone()),
            }
            .bind(&upper)
            .fetch_optional(&mut *conn)
            .await?;
            let Some((name, key)) = next else { break };
            names.push(name);
            after = Some(key);
        }
        Ok(names)
    }

    async fn users_by_name_prefix(&self, prefix_key: &str, limit: i64) -> StoreResult<Vec<User>> {
        Ok(sqlx::query_as(NAME_PREFIX)
            .bind(prefix_key)
            .bind(prefix_upper_bound(prefix_key))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn users_by_email_prefix(&self, prefix_key: &str, limit: i64) -> StoreResult<Vec<User>> {
        Ok(sqlx::query_as(EMAIL_PREFIX)
            .bind(prefix_key)
            .bind(prefix_upper_bound(prefix_key))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn insert_users_bulk(&self, users: &[NewUser]) -> StoreResult<u64> {
        let now = timefmt::now();
        let mut tx = self.pool.begin().await?;
        let mut added = 0;
        for chunk in users.chunks(BULK_CHUNK) {
            let column = |f: &dyn Fn(&NewUser) -> String| chunk.iter().map(f).collect::<Vec<_>>();
            let hashes: Vec<Option<String>> =
                chunk.iter().map(|u| u.password_hash.clone()).collect();
            let done = sqlx::query(
                "INSERT INTO users (name, email, name_key, email_key, role, password_hash, created_at, updated_at)
                 SELECT n, e, nk, ek, r, h, $7, $7
                 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
                     AS t(n, e, nk, ek, r, h)
                 ON CONFLICT (email_key) DO NOTHING",
            )
            .bind(column(&|u| u.name.clone()))
            .bind(column(&|u| u.email.clone()))
            .bind(column(&|u| match_key(&u.name)))
            .bind(column(&|u| email_key(&u.email)))
            .bind(column(&|u| u.role.as_str().to_owned()))
            .bind(hashes)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            added += done.rows_affected();
        }
        tx.commit().await?;
        Ok(added)
    }
}
