//! API tokens: `sb_` + 256 random bits, sent as `Authorization: Bearer`, shown once at
//! creation and stored as a SHA-256. Revocable, optionally expiring. Requests with a
//! token need no CSRF token: a cross-site page cannot make a browser attach one.

use std::sync::Arc;

use axum::http::{HeaderMap, header};

use super::model::unix_now;
use super::{Credential, Identity, random_token, sha256_hex};
use crate::error::ApiError;
use crate::store::Store;

const PREFIX: &str = "sb_";
/// Characters of a token kept in clear to tell tokens apart (`sb_` + 8).
const SHOWN_CHARS: usize = 11;
/// As for sessions: `last_used_at` is written at most once a minute per token.
const TOUCH_EVERY_SECS: i64 = 60;

/// A new token and the two things stored about it: its hash and its visible prefix.
pub struct Minted {
    pub token: String,
    pub hash: String,
    pub prefix: String,
}

pub fn mint() -> Minted {
    let token = format!("{PREFIX}{}", random_token(32));
    Minted {
        hash: sha256_hex(&token),
        prefix: token[..SHOWN_CHARS].to_owned(),
        token,
    }
}

/// The bearer token of a request: `None` without an `Authorization` header, an error
/// when the header is there but is not a bearer token (a client bug worth a 401).
pub fn from_headers(headers: &HeaderMap) -> Option<Result<String, ApiError>> {
    let value = headers.get(header::AUTHORIZATION)?;
    let parsed = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned())
        .filter(|token| !token.is_empty());
    Some(parsed.ok_or(ApiError::Unauthenticated))
}

/// Resolves API tokens and nothing else: what code that must not reach the store
/// (the realtime transports, whose Socket.IO CONNECT may carry a token) holds
/// instead of the store.
#[derive(Clone)]
pub struct TokenResolver(Arc<dyn Store>);

impl TokenResolver {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self(store)
    }

    /// See [`resolve`].
    pub async fn resolve(&self, token: &str) -> Result<Identity, ApiError> {
        resolve(self.0.as_ref(), token).await
    }
}

/// The identity a token stands for: 401 when unknown, revoked or expired.
pub async fn resolve(store: &dyn Store, token: &str) -> Result<Identity, ApiError> {
    let record = store
        .find_token(&sha256_hex(token))
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    let now = unix_now();
    let expired = record.token_expires_at.is_some_and(|at| now >= at);
    if record.token_revoked_at.is_some() || expired {
        return Err(ApiError::Unauthenticated);
    }
    if record
        .token_last_used_at
        .is_none_or(|at| now - at >= TOUCH_EVERY_SECS)
    {
        store.touch_token(record.token_id, now).await?;
    }
    Ok(Identity {
        user: record.user,
        credential: Credential::Token {
            id: record.token_id,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_prefixed_random_and_stored_hashed() {
        let a = mint();
        let b = mint();
        assert_ne!(a.token, b.token);
        assert!(a.token.starts_with("sb_") && a.token.len() > 40);
        assert!(a.token.starts_with(&a.prefix));
        assert!(!a.hash.contains(&a.token[3..]));
        assert_eq!(a.hash, sha256_hex(&a.token));
    }

    #[test]
    fn only_bearer_authorization_is_a_token() {
        let mut headers = HeaderMap::new();
        assert!(from_headers(&headers).is_none());
        headers.insert(header::AUTHORIZATION, "Bearer sb_abc".parse().unwrap());
        assert_eq!(from_headers(&headers).unwrap().unwrap(), "sb_abc");
        headers.insert(header::AUTHORIZATION, "Basic dXNlcjpwYXNz".parse().unwrap());
        assert!(from_headers(&headers).unwrap().is_err());
    }
}
