//! The classic tutorial's small examples, kept so code written against them works:
//! a greeting, a showcase of the JSON types Python's `json` module cannot write
//! (UUID, datetime, date, exact decimal, set), and the error envelope on demand.

use std::collections::BTreeSet;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::AppState;
use crate::error::ApiError;
use crate::http::extract::{Json, Query};
use crate::timefmt;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/hello", get(hello))
        .route("/api/data", get(data))
        .route("/api/error", get(error))
}

#[derive(Deserialize)]
struct HelloParams {
    name: Option<String>,
}

#[derive(Serialize)]
struct Hello {
    message: String,
}

async fn hello(Query(params): Query<HelloParams>) -> Json<Hello> {
    let name = params
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty());
    Json(Hello {
        message: format!("Hello, {}!", name.unwrap_or("World")),
    })
}

#[derive(Serialize)]
struct Showcase {
    id: uuid::Uuid,
    created_at: String,
    date: String,
    /// Written with its exact digits: through f64, 0.1 + 0.2 style noise would creep in.
    price: Box<RawValue>,
    balance: Box<RawValue>,
    tags: BTreeSet<&'static str>,
}

fn exact(decimal: Decimal) -> Box<RawValue> {
    RawValue::from_string(decimal.normalize().to_string()).expect("a decimal is a JSON number")
}

async fn data() -> Json<Showcase> {
    let now = timefmt::now();
    Json(Showcase {
        id: uuid::Uuid::new_v4(),
        created_at: timefmt::format(now),
        date: now.date().to_string(),
        price: exact(Decimal::new(1999, 2)),
        balance: exact(Decimal::from_str_exact("12345678901234567.89").expect("a literal")),
        tags: BTreeSet::from(["python", "ajax", "json", "rust"]),
    })
}

#[derive(Deserialize)]
struct ErrorParams {
    status: Option<u16>,
}

/// `GET /api/error?status=N` answers the envelope with status N (400 by default), so
/// client error handling can be tried against every error status the API answers.
async fn error(Query(params): Query<ErrorParams>) -> Response {
    let error = match params.status.unwrap_or(400) {
        401 => ApiError::Unauthenticated,
        403 => ApiError::forbidden("This is an example of a forbidden request"),
        404 => ApiError::NotFound("This example resource does not exist".into()),
        // Written by the envelope layer, as for a route's wrong method.
        405 => return (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "GET")]).into_response(),
        409 => ApiError::Conflict {
            message: "This is an example conflict".into(),
            fields: Default::default(),
        },
        410 => ApiError::Gone {
            code: "reset",
            message: "This is an example of a position no longer kept".into(),
        },
        413 => ApiError::PayloadTooLarge,
        415 => ApiError::UnsupportedMediaType,
        422 => ApiError::validation("example", "is an example of an invalid field"),
        429 => ApiError::TooManyRequests {
            retry_after: std::time::Duration::from_secs(1),
        },
        500 => ApiError::internal(anyhow::anyhow!(
            "example internal error (requested by /api/error)"
        )),
        503 => ApiError::Unavailable,
        400 => ApiError::bad_request("example_error", "This is an example error"),
        other => ApiError::bad_request(
            "invalid_query",
            format!(
                "status {other} is not one of {EXAMPLE_STATUSES} ({})",
                StatusCode::from_u16(other)
                    .map_or("invalid", |s| s.canonical_reason().unwrap_or("unknown"))
            ),
        ),
    };
    error.into_response()
}

/// The statuses `/api/error` answers.
const EXAMPLE_STATUSES: &str = "400, 401, 403, 404, 405, 409, 410, 413, 415, 422, 429, 500, 503";
