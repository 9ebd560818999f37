//! Accounts, sessions, API tokens and shared secrets on PostgreSQL (the statements
//! are `store::sql`'s).

use async_trait::async_trait;

use super::PgStore;
use super::users::set_password_in;
use crate::auth::model::{
    ApiToken, LoginRecord, NewSession, NewToken, SessionRecord, TokenRecord, unix_now,
};
use crate::directory::model::User;
use crate::store::sql;
use crate::store::{AuthStore, EndedCredentials, NewPassword, StoreResult};

#[async_trait]
impl AuthStore for PgStore {
    async fn find_login(&self, email_key: &str) -> StoreResult<Option<LoginRecord>> {
        Ok(sqlx::query_as(sql::FIND_LOGIN)
            .bind(email_key)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn set_password(
        &self,
        user_id: i64,
        password: &NewPassword,
    ) -> StoreResult<Option<EndedCredentials>> {
        let mut tx = self.pool.begin().await?;
        let ended = set_password_in(&mut tx, user_id, password).await?;
        tx.commit().await?;
        Ok(ended)
    }

    async fn count_admins(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar(sql::COUNT_ADMINS)
            .fetch_one(&self.pool)
            .await?)
    }

    async fn list_accounts(&self) -> StoreResult<Vec<User>> {
        Ok(sqlx::query_as(sql::LIST_ACCOUNTS)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn insert_session(&self, session: &NewSession) -> StoreResult<()> {
        sqlx::query(sql::INSERT_SESSION)
            .bind(&session.id_hash)
            .bind(session.user_id)
            .bind(session.created_at)
            .bind(session.expires_at)
            .bind(session.device.user_agent.as_deref())
            .bind(session.device.client_ip.as_deref())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn find_session(&self, id_hash: &str) -> StoreResult<Option<SessionRecord>> {
        Ok(sqlx::query_as(sql::SESSION_LOOKUP)
            .bind(id_hash)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn touch_session(&self, id_hash: &str, now: i64) -> StoreResult<()> {
        sqlx::query(sql::TOUCH_SESSION)
            .bind(now)
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn delete_session(&self, id_hash: &str) -> StoreResult<()> {
        sqlx::query(sql::DELETE_SESSION)
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn prune_sessions(&self, now: i64, idle_cutoff: i64) -> StoreResult<u64> {
        Ok(sqlx::query(sql::PRUNE_SESSIONS)
            .bind(now)
            .bind(idle_cutoff)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    async fn insert_token(&self, token: &NewToken) -> StoreResult<ApiToken> {
        Ok(sqlx::query_as(sql::INSERT_TOKEN)
            .bind(token.user_id)
            .bind(&token.name)
            .bind(&token.token_hash)
            .bind(&token.prefix)
            .bind(token.created_at)
            .bind(token.expires_at)
            .fetch_one(&self.pool)
            .await?)
    }

    async fn find_token(&self, token_hash: &str) -> StoreResult<Option<TokenRecord>> {
        Ok(sqlx::query_as(sql::TOKEN_LOOKUP)
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn touch_token(&self, token_id: i64, now: i64) -> StoreResult<()> {
        sqlx::query(sql::TOUCH_TOKEN)
            .bind(now)
            .bind(token_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn list_tokens(&self, user_id: Option<i64>) -> StoreResult<Vec<ApiToken>> {
        Ok(sqlx::query_as(sql::LIST_TOKENS)
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn get_token(&self, token_id: i64) -> StoreResult<Option<ApiToken>> {
        Ok(sqlx::query_as(sql::GET_TOKEN)
            .bind(token_id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn revoke_token(&self, token_id: i64, now: i64) -> StoreResult<bool> {
        let done = sqlx::query(sql::REVOKE_TOKEN)
            .bind(now)
            .bind(token_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn shared_secret(&self, name: &str, candidate: &str) -> StoreResult<String> {
        sqlx::query(sql::SECRET_INSERT)
            .bind(name)
            .bind(candidate)
            .bind(unix_now())
            .execute(&self.pool)
            .await?;
        Ok(sqlx::query_scalar(sql::SECRET_GET)
            .bind(name)
            .fetch_one(&self.pool)
            .await?)
    }
}
