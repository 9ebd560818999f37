//! Accounts, sessions, API tokens and shared secrets on SQLite (the statements are
//! `store::sql`'s): reads on [`super::inline`], writes on [`super::writer`].

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use super::rows::{token_row, user_at};
use super::users::set_password_in;
use super::writer::Outcome;
use crate::auth::model::{
    ApiToken, LoginRecord, NewSession, NewToken, SessionRecord, TokenRecord, unix_now,
};
use crate::directory::model::User;
use crate::store::{AuthStore, EndedCredentials, NewPassword, StoreResult, sql};

#[async_trait]
impl AuthStore for SqliteStore {
    async fn find_login(&self, email_key: &str) -> StoreResult<Option<LoginRecord>> {
        self.inline.read(|conn| {
            conn.prepare_cached(sql::FIND_LOGIN)?
                .query_row([email_key], |row| {
                    Ok(LoginRecord {
                        password_hash: row.get(0)?,
                        user: user_at(row, 1)?,
                    })
                })
                .optional()
        })
    }

    async fn set_password(
        &self,
        user_id: i64,
        password: &NewPassword,
    ) -> StoreResult<Option<EndedCredentials>> {
        let password = password.clone();
        self.writer
            .write(move |tx| set_password_in(tx, user_id, &password).map(Outcome::Keep))
            .await
    }

    async fn count_admins(&self) -> StoreResult<i64> {
        // Off the async workers: no index on `role`, so it reads every user.
        self.inline
            .read_off_thread(|conn| conn.query_row(sql::COUNT_ADMINS, [], |row| row.get(0)))
            .await
    }

    async fn list_accounts(&self) -> StoreResult<Vec<User>> {
        self.inline
            .read_off_thread(|conn| {
                conn.prepare(sql::LIST_ACCOUNTS)?
                    .query_map([], |row| user_at(row, 0))?
                    .collect()
            })
            .await
    }

    async fn insert_session(&self, session: &NewSession) -> StoreResult<()> {
        let session = session.clone();
        self.writer
            .write(move |tx| {
                tx.prepare_cached(sql::INSERT_SESSION)?.execute(params![
                    session.id_hash,
                    session.user_id,
                    session.created_at,
                    session.expires_at,
                    session.device.user_agent,
                    session.device.client_ip
                ])?;
                Ok(Outcome::Keep(()))
            })
            .await
    }

    async fn find_session(&self, id_hash: &str) -> StoreResult<Option<SessionRecord>> {
        self.inline.read(|conn| {
            conn.prepare_cached(sql::SESSION_LOOKUP)?
                .query_row([id_hash], |row| {
                    Ok(SessionRecord {
                        last_seen_at: row.get(0)?,
                        expires_at: row.get(1)?,
                        user: user_at(row, 2)?,
                    })
                })
                .optional()
        })
    }

    async fn touch_session(&self, id_hash: &str, now: i64) -> StoreResult<()> {
        let id_hash = id_hash.to_owned();
        self.writer
            .write(move |tx| {
                tx.prepare_cached(sql::TOUCH_SESSION)?
                    .execute(params![now, id_hash])?;
                Ok(Outcome::Keep(()))
            })
            .await
    }

    async fn delete_session(&self, id_hash: &str) -> StoreResult<()> {
        let id_hash = id_hash.to_owned();
        self.writer
            .write(move |tx| {
                tx.prepare_cached(sql::DELETE_SESSION)?.execute([id_hash])?;
                Ok(Outcome::Keep(()))
            })
            .await
    }

    async fn prune_sessions(&self, now: i64, idle_cutoff: i64) -> StoreResult<u64> {
        self.writer
            .write(move |tx| {
                let deleted = tx.execute(sql::PRUNE_SESSIONS, params![now, idle_cutoff])?;
                Ok(Outcome::Keep(deleted as u64))
            })
            .await
    }

    async fn insert_token(&self, token: &NewToken) -> StoreResult<ApiToken> {
        let token = token.clone();
        self.writer
            .write(move |tx| {
                let stored = tx.prepare_cached(sql::INSERT_TOKEN)?.query_row(
                    params![
                        token.user_id,
                        token.name,
                        token.token_hash,
                        token.prefix,
                        token.created_at,
                        token.expires_at
                    ],
                    token_row,
                )?;
                Ok(Outcome::Keep(stored))
            })
            .await
    }

    async fn find_token(&self, token_hash: &str) -> StoreResult<Option<TokenRecord>> {
        self.inline.read(|conn| {
            conn.prepare_cached(sql::TOKEN_LOOKUP)?
                .query_row([token_hash], |row| {
                    Ok(TokenRecord {
                        token_id: row.get(0)?,
                        token_expires_at: row.get(1)?,
                        token_revoked_at: row.get(2)?,
                        token_last_used_at: row.get(3)?,
                        user: user_at(row, 4)?,
                    })
                })
                .optional()
        })
    }

    async fn touch_token(&self, token_id: i64, now: i64) -> StoreResult<()> {
        self.writer
            .write(move |tx| {
                tx.prepare_cached(sql::TOUCH_TOKEN)?
                    .execute(params![now, token_id])?;
                Ok(Outcome::Keep(()))
            })
            .await
    }

    async fn list_tokens(&self, user_id: Option<i64>) -> StoreResult<Vec<ApiToken>> {
        // Everyone's tokens (`None`) has no bound: off the async workers.
        self.inline
            .read_off_thread(move |conn| {
                conn.prepare_cached(sql::LIST_TOKENS)?
                    .query_map([user_id], token_row)?
                    .collect()
            })
            .await
    }

    async fn get_token(&self, token_id: i64) -> StoreResult<Option<ApiToken>> {
        self.inline.read(|conn| {
            conn.prepare_cached(sql::GET_TOKEN)?
                .query_row([token_id], token_row)
                .optional()
        })
    }

    async fn revoke_token(&self, token_id: i64, now: i64) -> StoreResult<bool> {
        self.writer
            .write(move |tx| {
                let revoked = tx
                    .prepare_cached(sql::REVOKE_TOKEN)?
                    .execute(params![now, token_id])?;
                Ok(Outcome::Keep(revoked > 0))
            })
            .await
    }

    async fn shared_secret(&self, name: &str, candidate: &str) -> StoreResult<String> {
        let (name, candidate) = (name.to_owned(), candidate.to_owned());
        self.writer
            .write(move |tx| {
                tx.execute(sql::SECRET_INSERT, params![name, candidate, unix_now()])?;
                let value = tx.query_row(sql::SECRET_GET, [name], |row| row.get(0))?;
                Ok(Outcome::Keep(value))
            })
            .await
    }
}
