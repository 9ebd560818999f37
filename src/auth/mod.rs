//! Accounts, sessions, API tokens, CSRF and authorization: who is asking, and may they.
//!
//! Every request passes [`middleware::authenticate`], which resolves the caller from
//! the session cookie or an `Authorization: Bearer` token, enforces CSRF on
//! cookie-authenticated writes, and leaves the result in the request for the
//! [`Identity`] extractor. Handlers, pages and the realtime transports all ask the same
//! extractor, so there is one answer to "who is this" on every route and transport.

pub mod audit;
pub mod bootstrap;
pub mod csrf;
pub mod handlers;
pub mod middleware;
pub mod model;
pub mod pages;
pub mod password;
pub mod session;
pub mod token;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::directory::model::{Role, User};
use crate::error::ApiError;

/// The caller, once authenticated.
#[derive(Clone, Debug)]
pub struct Identity {
    pub user: User,
    pub credential: Credential,
}

/// How the caller proved who they are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    /// A session cookie; `id_hash` names the session row.
    Session { id_hash: String },
    /// An API token (`Authorization: Bearer`).
    Token { id: i64 },
}

impl Identity {
    pub fn id(&self) -> i64 {
        self.user.id
    }

    pub fn is_admin(&self) -> bool {
        self.user.role == Role::Admin
    }

    /// 403 unless an admin.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::forbidden("Only an admin may do this"))
        }
    }

    /// 403 unless this is the user `user_id` or an admin.
    pub fn require_self_or_admin(&self, user_id: i64) -> Result<(), ApiError> {
        if self.is_admin() || self.id() == user_id {
            Ok(())
        } else {
            Err(ApiError::forbidden("You may only change your own account"))
        }
    }
}

/// What the middleware found: put in the request extensions for the extractors.
#[derive(Clone, Debug)]
pub(crate) struct Authenticated(pub Option<Identity>);

/// `Identity` as an extractor: 401 in the envelope when nobody is logged in.
impl<S: Send + Sync> FromRequestParts<S> for Identity {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<Authenticated>() {
            Some(Authenticated(Some(identity))) => Ok(identity.clone()),
            _ => Err(ApiError::Unauthenticated),
        }
    }
}

/// `Option<Identity>`: for routes anonymous callers may use too.
impl<S: Send + Sync> OptionalFromRequestParts<S> for Identity {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Authenticated>()
            .and_then(|a| a.0.clone()))
    }
}

/// An admin, as an extractor: 401 for nobody, 403 for a member.
#[derive(Clone, Debug)]
pub struct Admin(pub Identity);

impl<S: Send + Sync> FromRequestParts<S> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let identity = <Identity as FromRequestParts<S>>::from_request_parts(parts, state).await?;
        identity.require_admin()?;
        Ok(Admin(identity))
    }
}

/// Called once the store has ended credentials (a password change or reset deleted
/// the account's sessions and revoked its tokens, see
/// [`crate::store::AuthStore::set_password`]): the one place that hears about it.
/// Logs it, and ends the realtime connections opened with those credentials, since
/// each of them checked its credential only when it opened.
pub async fn credentials_ended(
    state: &crate::AppState,
    ended: &crate::store::EndedCredentials,
    why: &'static str,
) {
    use crate::hub::{EndReason, Ending, Revoked};
    // The realtime connections opened with them end too, on every instance: exactly
    // the sessions and tokens the store ended, so a token that was kept keeps its own.
    let sessions = ended.sessions.iter().map(|id_hash| Revoked::Session {
        id_hash: id_hash.clone(),
    });
    let tokens = ended.tokens.iter().map(|&id| Revoked::Token { id });
    for revoked in sessions.chain(tokens) {
        state
            .hub
            .end_credential(Ending {
                revoked,
                reason: EndReason::PasswordChanged,
            })
            .await;
    }
    tracing::info!(
        event = "credentials_ended",
        user_id = ended.user_id,
        sessions_ended = ended.sessions.len(),
        tokens_revoked = ended.tokens.len(),
        reason = why,
        "sessions ended and API tokens revoked"
    );
}

/// `bytes` random bytes from the OS-seeded CSPRNG, base64url without padding.
pub fn random_token(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buffer);
    URL_SAFE_NO_PAD.encode(buffer)
}

/// How credentials are stored: a lowercase hex SHA-256. Session ids and tokens are
/// 256-bit random values, so no slow hash is needed to make the digest unguessable.
pub fn sha256_hex(text: &str) -> String {
    use std::fmt::Write;
    let digest = Sha256::digest(text.as_bytes());
    let mut hex = String::with_capacity(2 * digest.len());
    for byte in digest {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// Settings and keys the auth code needs, built once at start.
pub struct AuthState {
    /// Signs CSRF tokens; shared by every instance through the store.
    pub csrf_key: Vec<u8>,
    /// A hash checked when a login names no known account, so an unknown email costs
    /// the same argon2 time as a wrong password and timing tells nothing.
    pub dummy_hash: String,
    /// Cookies get `Secure` when the server speaks TLS.
    pub secure_cookies: bool,
    pub session_idle_secs: i64,
    pub session_max_secs: i64,
    /// Origins besides our own allowed to write with cookies and open WebSockets.
    pub allowed_origins: Vec<String>,
    /// What a new password must be.
    pub password_policy: password::Policy,
}
