//! Operations endpoints: liveness, readiness and Prometheus metrics.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::AppState;
use crate::auth::Admin;
use crate::error::ApiError;
use crate::http::extract::Json;
use crate::http::metrics;

/// The probes: outside authentication, so a load balancer needs no account and a
/// database outage cannot turn liveness into a session-lookup failure.
pub fn probes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// The Prometheus scrape (admin only: it shows traffic per route).
pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(prometheus))
}

/// The process is up and answering. Says nothing about the database on purpose: a
/// load balancer restarting instances because the shared database blinked helps nobody.
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Ready to serve: the store answers, and Redis too when configured (without it this
/// instance would limit, and later fan out, on its own). 503 in the envelope otherwise.
async fn readyz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    state.store.ping().await?;
    if let Some(redis) = &state.redis {
        let mut connection = redis.clone();
        let pong: redis::RedisResult<String> =
            redis::cmd("PING").query_async(&mut connection).await;
        if let Err(error) = pong {
            tracing::warn!(%error, "readiness: Redis is unreachable");
            return Err(ApiError::Unavailable);
        }
    }
    Ok(Json(json!({
        "status": "ready",
        "store": format!("{:?}", state.store.backend()).to_lowercase(),
        "redis": state.redis.is_some(),
        "uptime_seconds": state.started.elapsed().as_secs(),
    })))
}

/// Admins only (an API token for the scraper: `Authorization: Bearer ...`): route
/// names and traffic are not for everyone.
async fn prometheus(_: Admin) -> Response {
    let handle = metrics::handle();
    handle.run_upkeep();
    let mut response = handle.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}
