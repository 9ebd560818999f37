//! Security events (ASVS 7): logins that succeed or fail, and requests refused for
//! CSRF, rate limits or permissions. Each is one `tracing` event at INFO (WARN for
//! refusals that suggest an attack) with the same fields, so a log collector can
//! follow an account or an address:
//!
//! - `event`: `login_succeeded`, `login_failed`, `login_throttled`,
//!   `password_check_failed`, `csrf_refused`, `rate_limited`, `forbidden` (and
//!   `credentials_ended`, see [`super::credentials_ended`]);
//! - `client_ip` and `request_id`;
//! - the account when known: `user_id`, or for a login the `email` it named (that
//!   text is the client's: cut short, control characters replaced).
//!
//! Never a password, token, cookie or CSRF token: none of these functions takes one.

use std::net::IpAddr;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::AppState;
use crate::http::request_id::RequestId;
use crate::limits::client_ip;

/// Where a request came from, for the events: the client's address (through trusted
/// proxies) and the request id. Cheap to take on every request (no allocation); an
/// extractor that never fails.
#[derive(Clone, Debug)]
pub struct Origin {
    pub client_ip: IpAddr,
    request_id: Option<RequestId>,
    /// The `User-Agent` header (a cheap clone of the header's bytes), for the
    /// device a new session records.
    user_agent: Option<axum::http::HeaderValue>,
}

impl Origin {
    pub fn of(
        extensions: &axum::http::Extensions,
        headers: &axum::http::HeaderMap,
        state: &AppState,
    ) -> Self {
        Self {
            client_ip: client_ip::of_parts(extensions, headers, &state.config.http.trusted_proxies),
            request_id: extensions.get::<RequestId>().cloned(),
            user_agent: headers.get(axum::http::header::USER_AGENT).cloned(),
        }
    }

    /// The device a session opened by this request records.
    pub fn device(&self) -> crate::auth::model::Device {
        crate::auth::model::Device::new(
            self.user_agent.as_ref().and_then(|v| v.to_str().ok()),
            self.client_ip,
        )
    }

    pub fn request_id(&self) -> &str {
        self.request_id.as_ref().map_or("", RequestId::as_str)
    }
}

impl FromRequestParts<AppState> for Origin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self::of(&parts.extensions, &parts.headers, state))
    }
}

/// Longest part of a client-given email that is logged.
const EMAIL_LOG_CHARS: usize = 254;

/// A client-given email as logged: cut short, control characters replaced (a newline
/// could otherwise forge a line of the pretty log).
fn claimed(email: &str) -> String {
    email
        .trim()
        .chars()
        .take(EMAIL_LOG_CHARS)
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect()
}

pub fn login_succeeded(origin: &Origin, user_id: i64, email: &str) {
    tracing::info!(
        event = "login_succeeded",
        user_id,
        email = %claimed(email),
        client_ip = %origin.client_ip,
        request_id = origin.request_id(),
        "login succeeded"
    );
}

/// A wrong password, or an email no account has (the log says which no more than
/// the answer does).
pub fn login_failed(origin: &Origin, email: &str) {
    tracing::warn!(
        event = "login_failed",
        email = %claimed(email),
        client_ip = %origin.client_ip,
        request_id = origin.request_id(),
        "login failed"
    );
}

/// `POST /api/auth/password` with a wrong `current_password`.
pub fn password_check_failed(origin: &Origin, user_id: i64) {
    tracing::warn!(
        event = "password_check_failed",
        user_id,
        client_ip = %origin.client_ip,
        request_id = origin.request_id(),
        "wrong current password"
    );
}

/// Refused without checking the password: this account had too many failures lately.
pub fn login_throttled(origin: &Origin, email: &str, retry_after: Duration) {
    tracing::warn!(
        event = "login_throttled",
        email = %claimed(email),
        client_ip = %origin.client_ip,
        request_id = origin.request_id(),
        retry_after_secs = retry_after.as_secs_f64().ceil() as u64,
        "password checks for this account are throttled"
    );
}

pub fn csrf_refused(origin: &Origin, user_id: Option<i64>, method: &str, path: &str, why: &str) {
    tracing::warn!(
        event = "csrf_refused",
        user_id,
        client_ip = %origin.client_ip,
        request_id = origin.request_id(),
        method,
        path,
        reason = why,
        "cross-site request refused"
    );
}

pub fn rate_limited(
    origin: &Origin,
    user_id: Option<i64>,
    class: &str,
    path: &str,
    retry_after: Duration,
) {
    tracing::warn!(
        event = "rate_limited",
        user_id,
        client_ip = %origin.client_ip,
        request_id = origin.request_id(),
        class,
        path,
        retry_after_secs = retry_after.as_secs_f64().ceil() as u64,
        "rate limited"
    );
}

/// A 403 for an authenticated caller that may not do what it asked.
pub fn forbidden(origin: &Origin, user_id: Option<i64>, method: &str, path: &str, code: &str) {
    tracing::warn!(
        event = "forbidden",
        user_id,
        client_ip = %origin.client_ip,
        request_id = origin.request_id(),
        method,
        path,
        code,
        "permission refused"
    );
}

#[cfg(test)]
mod tests {
    #[test]
    fn client_given_emails_cannot_forge_log_lines() {
        assert_eq!(
            super::claimed(" a@b.c\n2026-01-01 INFO fake\r"),
            "a@b.c\u{FFFD}2026-01-01 INFO fake"
        );
        assert_eq!(super::claimed(&"x".repeat(1000)).len(), 254);
    }
}
