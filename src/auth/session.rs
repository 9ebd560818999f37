//! Sessions: an opaque 256-bit random id in an HttpOnly, SameSite=Lax cookie (Secure
//! under TLS); the database keeps only its SHA-256. A session ends at its absolute
//! expiry, after the idle time without use, at logout, and at a password change.

use axum_extra::extract::cookie::{Cookie, SameSite};

use super::model::{Device, NewSession, unix_now};
use super::{AuthState, Credential, Identity, random_token, sha256_hex};
use crate::error::ApiError;
use crate::store::Store;

pub const SESSION_COOKIE: &str = "sb_session";

/// `last_seen_at` is written at most this often per session: a write on every request
/// would serialise all reads behind SQLite's single writer for no benefit.
const TOUCH_EVERY_SECS: i64 = 60;

/// Creates a session for `user_id`; returns the cookie value (the only copy of the id).
pub async fn start(
    store: &dyn Store,
    auth: &AuthState,
    user_id: i64,
    device: Device,
) -> Result<String, ApiError> {
    let id = random_token(32);
    let now = unix_now();
    store
        .insert_session(&NewSession {
            id_hash: sha256_hex(&id),
            user_id,
            created_at: now,
            expires_at: now + auth.session_max_secs,
            device,
        })
        .await?;
    Ok(id)
}

/// The identity behind a session cookie value, or `None` when the session does not
/// exist or has expired (an expired one is deleted on sight).
pub async fn resolve(
    store: &dyn Store,
    auth: &AuthState,
    id: &str,
) -> Result<Option<Identity>, ApiError> {
    let id_hash = sha256_hex(id);
    let Some(record) = store.find_session(&id_hash).await? else {
        return Ok(None);
    };
    let now = unix_now();
    if now >= record.expires_at || now >= record.last_seen_at + auth.session_idle_secs {
        store.delete_session(&id_hash).await?;
        return Ok(None);
    }
    if now - record.last_seen_at >= TOUCH_EVERY_SECS {
        store.touch_session(&id_hash, now).await?;
    }
    Ok(Some(Identity {
        user: record.user,
        credential: Credential::Session { id_hash },
    }))
}

/// How often ended sessions are deleted. Each is also deleted when its cookie comes
/// back; this catches the ones whose browsers never return.
const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// Deletes ended sessions now and every [`PRUNE_EVERY`] until `shutdown`.
pub fn spawn_pruning(
    store: std::sync::Arc<dyn Store>,
    auth: std::sync::Arc<AuthState>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(PRUNE_EVERY);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {
                    let now = unix_now();
                    match store.prune_sessions(now, now - auth.session_idle_secs).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(sessions = n, "deleted ended sessions"),
                        Err(error) => tracing::warn!(%error, "could not delete ended sessions"),
                    }
                }
            }
        }
    });
}

/// The session cookie. It lives as long as the session could (the absolute expiry), so
/// a browser restart does not log the user out; the server decides validity.
pub fn cookie(id: String, auth: &AuthState) -> Cookie<'static> {
    Cookie::build((SESSION_COOKIE, id))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(auth.secure_cookies)
        .max_age(time::Duration::seconds(auth.session_max_secs))
        .build()
}

/// A cookie that makes the browser forget the session cookie.
pub fn removal(auth: &AuthState) -> Cookie<'static> {
    Cookie::build((SESSION_COOKIE, ""))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(auth.secure_cookies)
        .max_age(time::Duration::ZERO)
        .build()
}
