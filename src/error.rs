//! `ApiError`, the one error type handlers return, and the one JSON envelope every
//! failure is written in:
//!
//! ```json
//! {"error": "Name is required", "code": "validation_failed",
//!  "fields": {"name": "is required"}, "request_id": "0193..."}
//! ```
//!
//! A handler's error becomes a response carrying an [`Envelope`] extension and no body;
//! [`crate::http::envelope`] writes the body, adding the request id, and also turns the
//! plain-text errors produced outside our handlers (axum's 404/405, body limit, timeout,
//! a panic) into the same envelope. So there is exactly one place that serialises errors.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::store::{StoreError, Unique};

/// Field name -> what is wrong with it, for 422 responses.
pub type FieldErrors = BTreeMap<String, String>;

/// Every `code` an HTTP error envelope can carry, with its status (0: any status
/// without a code of its own). README's error table and the OpenAPI document's
/// `ErrorEnvelope.code` list exactly these, and `tests/api/errors.rs` collects the
/// codes written in the source to keep this list complete.
pub const HTTP_CODES: &[(u16, &str)] = &[
    (400, "malformed_json"),
    (400, "invalid_body"),
    (400, "invalid_query"),
    (400, "invalid_cursor"),
    (400, "invalid_text"),
    (400, "invalid_form"),
    (400, "invalid_room"),
    (400, "invalid_rooms"),
    (400, "invalid_client_id"),
    (400, "invalid_position"),
    (400, "invalid_endpoint"),
    (400, "nested_batch"),
    (400, "not_batchable"),
    (400, "example_error"),
    (400, "bad_request"),
    (401, "unauthenticated"),
    (401, "invalid_credentials"),
    (403, "forbidden"),
    (403, "csrf_failed"),
    (403, "origin_refused"),
    (404, "not_found"),
    (405, "method_not_allowed"),
    (406, "not_acceptable"),
    (408, "timeout"),
    (409, "conflict"),
    (410, "reset"),
    (413, "payload_too_large"),
    (415, "unsupported_media_type"),
    (422, "validation_failed"),
    (429, "rate_limited"),
    (500, "internal"),
    (503, "unavailable"),
    (0, "error"),
];

/// Codes that only a realtime connection sends: in an `error` frame or event
/// (a refused frame) or as the reason a connection ends. README's Realtime section
/// lists them.
pub const REALTIME_CODES: &[&str] = &[
    "invalid_frame",
    "unsupported_frame",
    "invalid_event",
    "too_many_rooms",
    "slow_consumer",
    "server_restarting",
    "session_ended",
    "password_changed",
    "token_revoked",
    "account_deleted",
    "role_changed",
];

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request itself is malformed (bad JSON, bad query parameter, bad cursor).
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// 401: no identity, or an expired/revoked one.
    #[error("Authentication required")]
    Unauthenticated,
    /// 401: a login with a wrong email or password. Says nothing about which.
    #[error("Invalid email or password")]
    BadCredentials,
    /// 403: an identity that is not allowed to do this (or a CSRF failure).
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    /// 404: unknown id or route.
    #[error("{0}")]
    NotFound(String),
    /// 409: a unique value (email) is taken.
    #[error("{message}")]
    Conflict {
        message: String,
        fields: FieldErrors,
    },
    /// 410: what was asked for existed but is kept no longer (a realtime position
    /// older than retention: reload and continue from the current position).
    #[error("{message}")]
    Gone { code: &'static str, message: String },
    /// 413: body over the configured limit.
    #[error("Request body is too large")]
    PayloadTooLarge,
    /// 415: a JSON endpoint called without `Content-Type: application/json`.
    #[error("Content-Type must be application/json")]
    UnsupportedMediaType,
    /// 422: well-formed but invalid input; `fields` says which and why.
    #[error("{message}")]
    Validation {
        message: String,
        fields: FieldErrors,
    },
    /// 429: a rate limit; `retry_after` becomes the `Retry-After` header.
    #[error("Too many requests, retry later")]
    TooManyRequests { retry_after: Duration },
    /// 503: the store (or broker) cannot be reached right now.
    #[error("Service temporarily unavailable")]
    Unavailable,
    /// 500: anything else. The cause is logged under the request id, never sent.
    #[error("Internal server error")]
    Internal(#[source] anyhow::Error),
}

/// What [`crate::http::envelope`] needs to write the body: carried as a response
/// extension so the request id can be added where the request is known.
#[derive(Clone, Debug, Serialize)]
pub struct Envelope {
    pub error: String,
    pub code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<FieldErrors>,
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            message: message.into(),
        }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::Forbidden {
            code: "forbidden",
            message: message.into(),
        }
    }

    pub fn not_found(what: &str) -> Self {
        Self::NotFound(format!("{what} not found"))
    }

    /// A 422 for a single field, e.g. `validation("email", "is not a valid email")`.
    pub fn validation(field: &str, problem: &str) -> Self {
        let mut fields = FieldErrors::new();
        fields.insert(field.to_owned(), problem.to_owned());
        Self::invalid(fields)
    }

    /// A 422 from collected field errors; the message names the first problem in words.
    pub fn invalid(fields: FieldErrors) -> Self {
        let message = fields
            .iter()
            .next()
            .map(|(field, problem)| sentence(field, problem))
            .unwrap_or_else(|| "Invalid input".to_owned());
        Self::Validation { message, fields }
    }

    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Self::Internal(cause.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthenticated | Self::BadCredentials => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Gone { .. } => StatusCode::GONE,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { code, .. }
            | Self::Forbidden { code, .. }
            | Self::Gone { code, .. } => code,
            Self::Unauthenticated => "unauthenticated",
            Self::BadCredentials => "invalid_credentials",
            Self::NotFound(_) => "not_found",
            Self::Conflict { .. } => "conflict",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::Validation { .. } => "validation_failed",
            Self::TooManyRequests { .. } => "rate_limited",
            Self::Unavailable => "unavailable",
            Self::Internal(_) => "internal",
        }
    }

    pub fn envelope(&self) -> Envelope {
        let fields = match self {
            Self::Validation { fields, .. } | Self::Conflict { fields, .. }
                if !fields.is_empty() =>
            {
                Some(fields.clone())
            }
            _ => None,
        };
        Envelope {
            error: self.to_string(),
            code: self.code(),
            fields,
        }
    }
}

/// "email" + "is already taken" -> "Email is already taken".
fn sentence(field: &str, problem: &str) -> String {
    let mut chars = field.chars();
    let first = chars.next().map(|c| c.to_uppercase().collect::<String>());
    format!("{}{} {problem}", first.unwrap_or_default(), chars.as_str())
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            // The cause stays in the log (inside the request's span, so with its id).
            Self::Internal(cause) => {
                tracing::error!(error = format!("{cause:#}"), "internal error")
            }
            // Not named here: the cause is logged where it is known (a store error
            // below, `/readyz` per dependency), so a Redis outage is not called the store's.
            Self::Unavailable => {}
            _ => {}
        }
        let mut response = status.into_response();
        if let Self::TooManyRequests { retry_after } = &self {
            let secs = retry_after.as_secs_f64().ceil().max(1.0) as u64;
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response.extensions_mut().insert(self.envelope());
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::EmailTaken => {
                let mut fields = FieldErrors::new();
                fields.insert("email".into(), "is already taken".into());
                Self::Conflict {
                    message: "A user with this email already exists".into(),
                    fields,
                }
            }
            StoreError::Duplicate(unique) => {
                let (field, message) = match &unique {
                    Unique::TokenHash => (None, "An API token with this value already exists"),
                    Unique::SessionId => (None, "A session with this id already exists"),
                    Unique::MessageClientId => (
                        Some("client_id"),
                        "A message with this client_id was already sent to this room",
                    ),
                    Unique::MessagePosition => (
                        None,
                        "Another message took this position in the room; send it again",
                    ),
                    Unique::Other(index) => {
                        tracing::warn!(index, "a write hit an unmapped unique index");
                        (None, "This would duplicate an existing record")
                    }
                };
                let mut fields = FieldErrors::new();
                if let Some(field) = field {
                    fields.insert(field.into(), "is already used".into());
                }
                Self::Conflict {
                    message: message.into(),
                    fields,
                }
            }
            StoreError::NulInText => Self::bad_request(
                "invalid_text",
                "Text must not contain NUL characters (U+0000)",
            ),
            StoreError::LastAdmin => Self::Conflict {
                message: "This is the only admin; make another admin first".into(),
                fields: Default::default(),
            },
            StoreError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "store unavailable");
                Self::Unavailable
            }
            StoreError::Other(cause) => Self::internal(cause),
        }
    }
}
