//! SQL that is the same on SQLite and PostgreSQL, written once.
//!
//! Each backend exposes `reader()`, `writer()` and `begin_write()` (SQLite: the reader
//! pool, the single-writer pool and `BEGIN IMMEDIATE`; PostgreSQL: one pool and a plain
//! `BEGIN`), and expands these macros for its store type. Statements that differ by
//! dialect (search, bulk loads, sequencing) stay in the backend's own files.

/// The user's columns, qualified, for joins with `users u`.
macro_rules! joined_user {
    () => {
        "u.id, u.name, u.email, u.role, u.created_at, u.updated_at"
    };
}
pub(crate) use joined_user;

macro_rules! token_columns {
    () => {
        "id, user_id, name, prefix, created_at, expires_at, last_used_at, revoked_at"
    };
}
pub(crate) use token_columns;

/// The session behind an id hash, with its user: [`crate::auth::model::SessionRecord`].
macro_rules! session_lookup {
    () => {
        concat!(
            "SELECT s.last_seen_at, s.expires_at, ",
            $crate::store::common::joined_user!(),
            " FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = $1"
        )
    };
}
pub(crate) use session_lookup;

/// The token behind a token hash, with its user: [`crate::auth::model::TokenRecord`].
macro_rules! token_lookup {
    () => {
        concat!(
            "SELECT t.id AS token_id, t.expires_at AS token_expires_at,",
            " t.revoked_at AS token_revoked_at, t.last_used_at AS token_last_used_at, ",
            $crate::store::common::joined_user!(),
            " FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = $1"
        )
    };
}
pub(crate) use token_lookup;

/// `impl AuthStore for $store`: accounts, sessions, API tokens, shared secrets. The
/// two lookups every request makes (`find_session`, `find_token`) are the backend's
/// own, given as `$lookups`: SQLite runs them inline (`sqlite::inline`). So is
/// `set_password`, which shares its transaction code with the backend's `update_user`.
macro_rules! impl_auth_store {
    ($store:ty, { $($lookups:tt)* }) => {
        #[async_trait::async_trait]
        impl $crate::store::AuthStore for $store {
            $($lookups)*

            async fn find_login(&self, email_key: &str) -> $crate::store::StoreResult<Option<$crate::auth::model::LoginRecord>> {
                Ok(sqlx::query_as(concat!(
                    "SELECT u.password_hash, ",
                    $crate::store::common::joined_user!(),
                    " FROM users u WHERE u.email_key = $1"
                ))
                .bind(email_key)
                .fetch_optional(self.reader())
                .await?)
            }

            async fn count_admins(&self) -> $crate::store::StoreResult<i64> {
                Ok(
                    sqlx::query_scalar("SELECT count(*) FROM users WHERE role = 'admin'")
                        .fetch_one(self.reader())
                        .await?,
                )
            }

            async fn list_accounts(&self) -> $crate::store::StoreResult<Vec<$crate::directory::model::User>> {
                Ok(sqlx::query_as(concat!(
                    "SELECT ",
                    $crate::store::common::joined_user!(),
                    " FROM users u WHERE u.password_hash IS NOT NULL ORDER BY u.id"
                ))
                .fetch_all(self.reader())
                .await?)
            }

            async fn insert_session(&self, session: &$crate::auth::model::NewSession) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO sessions (id_hash, user_id, created_at, last_seen_at, expires_at, user_agent, client_ip)
                     VALUES ($1, $2, $3, $3, $4, $5, $6)",
                )
                .bind(&session.id_hash)
                .bind(session.user_id)
                .bind(session.created_at)
                .bind(session.expires_at)
                .bind(session.device.user_agent.as_deref())
                .bind(session.device.client_ip.as_deref())
                .execute(self.writer())
                .await?;
                Ok(())
            }

            async fn touch_session(&self, id_hash: &str, now: i64) -> $crate::store::StoreResult<()> {
                sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE id_hash = $1")
                    .bind(id_hash)
                    .bind(now)
                    .execute(self.writer())
                    .await?;
                Ok(())
            }

            async fn delete_session(&self, id_hash: &str) -> $crate::store::StoreResult<()> {
                sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
                    .bind(id_hash)
                    .execute(self.writer())
                    .await?;
                Ok(())
            }

            async fn prune_sessions(&self, now: i64, idle_cutoff: i64) -> $crate::store::StoreResult<u64> {
                Ok(
                    sqlx::query("DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at < $2")
                        .bind(now)
                        .bind(idle_cutoff)
                        .execute(self.writer())
                        .await?
                        .rows_affected(),
                )
            }

            async fn insert_token(&self, token: &$crate::auth::model::NewToken) -> $crate::store::StoreResult<$crate::auth::model::ApiToken> {
                Ok(sqlx::query_as(concat!(
                    "INSERT INTO api_tokens (user_id, name, token_hash, prefix, created_at, expires_at)",
                    " VALUES ($1, $2, $3, $4, $5, $6) RETURNING ",
                    $crate::store::common::token_columns!()
                ))
                .bind(token.user_id)
                .bind(&token.name)
                .bind(&token.token_hash)
                .bind(&token.prefix)
                .bind(token.created_at)
                .bind(token.expires_at)
                .fetch_one(self.writer())
                .await?)
            }

            async fn touch_token(&self, token_id: i64, now: i64) -> $crate::store::StoreResult<()> {
                sqlx::query("UPDATE api_tokens SET last_used_at = $2 WHERE id = $1")
                    .bind(token_id)
                    .bind(now)
                    .execute(self.writer())
                    .await?;
                Ok(())
            }

            async fn list_tokens(&self, user_id: Option<i64>) -> $crate::store::StoreResult<Vec<$crate::auth::model::ApiToken>> {
                Ok(sqlx::query_as(concat!(
                    "SELECT ",
                    $crate::store::common::token_columns!(),
                    " FROM api_tokens WHERE ($1 IS NULL OR user_id = $1) ORDER BY id DESC"
                ))
                .bind(user_id)
                .fetch_all(self.reader())
                .await?)
            }

            async fn get_token(&self, token_id: i64) -> $crate::store::StoreResult<Option<$crate::auth::model::ApiToken>> {
                Ok(
                    sqlx::query_as(concat!("SELECT ", $crate::store::common::token_columns!(), " FROM api_tokens WHERE id = $1"))
                        .bind(token_id)
                        .fetch_optional(self.reader())
                        .await?,
                )
            }

            async fn revoke_token(&self, token_id: i64, now: i64) -> $crate::store::StoreResult<bool> {
                Ok(sqlx::query(
                    "UPDATE api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
                )
                .bind(token_id)
                .bind(now)
                .execute(self.writer())
                .await?
                .rows_affected()
                    > 0)
            }

            async fn shared_secret(&self, name: &str, candidate: &str) -> $crate::store::StoreResult<String> {
                sqlx::query(
                    "INSERT INTO server_secrets (name, value, created_at) VALUES ($1, $2, $3)
                     ON CONFLICT (name) DO NOTHING",
                )
                .bind(name)
                .bind(candidate)
                .bind($crate::auth::model::unix_now())
                .execute(self.writer())
                .await?;
                Ok(
                    sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = $1")
                        .bind(name)
                        .fetch_one(self.writer())
                        .await?,
                )
            }
        }
    };
}
pub(crate) use impl_auth_store;
