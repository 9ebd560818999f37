//! Operations endpoints: liveness, readiness and Prometheus metrics.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::AppState;
use crate::auth::Admin;
use crate::breaker::Refused;
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

/// How long `/readyz` waits for the store's answer.
const STORE_PING_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(800);

/// What [`readyz`] found about each dependency.
struct Readiness {
    store: bool,
    /// `None` without `--redis-url`.
    redis: Option<bool>,
}

impl Readiness {
    fn ready(&self) -> bool {
        self.store && self.redis != Some(false)
    }
}

/// Asks the store, and Redis when configured, and records the answers as the
/// `switchboard_dependency_up{dependency}` gauges that `/metrics` shows.
async fn check_dependencies(state: &AppState) -> Readiness {
    // Bounded: a load balancer should hear "not ready" within a second, not after the
    // pool's acquire timeout.
    let store = match tokio::time::timeout(STORE_PING_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => true,
        Ok(Err(error)) => {
            tracing::warn!(%error, dependency = "store", "readiness: the store is unreachable");
            false
        }
        Err(_) => {
            tracing::warn!(
                dependency = "store",
                "readiness: the store did not answer within {STORE_PING_TIMEOUT:?}"
            );
            false
        }
    };
    let redis = match &state.redis {
        Some(redis) => {
            let mut connection = redis.clone();
            let ping = redis::cmd("PING");
            // Through the breaker: quick while Redis is down, and a good answer closes it.
            let pong = state
                .redis_breaker
                .call(ping.query_async::<String>(&mut connection))
                .await;
            match &pong {
                Ok(_) => {}
                // Down since the breaker opened (which it logged): no line per probe.
                Err(Refused::Open) => {}
                Err(error) => {
                    tracing::warn!(%error, dependency = "redis", "readiness: Redis is unreachable")
                }
            }
            Some(pong.is_ok())
        }
        None => None,
    };
    let gauge = |dependency: &'static str, up: bool| {
        ::metrics::gauge!("switchboard_dependency_up", "dependency" => dependency).set(if up {
            1.0
        } else {
            0.0
        });
    };
    gauge("store", store);
    if let Some(up) = redis {
        gauge("redis", up);
    }
    Readiness { store, redis }
}

/// Ready to serve: the store answers, and Redis too when configured (without it this
/// instance would limit, and later fan out, on its own). Anonymous callers (load
/// balancers) learn only that: 200 `{"status":"ready"}` or a 503 in the envelope.
/// An admin's request (session or token) also gets which dependency is down, the
/// backend and the uptime; `/metrics` has the same as gauges.
async fn readyz(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let readiness = check_dependencies(&state).await;
    let admin = crate::auth::middleware::identify(&state, &headers)
        .await
        .is_some_and(|identity| identity.is_admin());
    if !admin {
        return if readiness.ready() {
            Json(json!({"status": "ready"})).into_response()
        } else {
            ApiError::Unavailable.into_response()
        };
    }
    let up = |ok: bool| if ok { "up" } else { "down" };
    let body = json!({
        "status": if readiness.ready() { "ready" } else { "not ready" },
        "store": format!("{:?}", state.store.backend()).to_lowercase(),
        "redis": state.redis.is_some(),
        "dependencies": {
            "store": up(readiness.store),
            "redis": readiness.redis.map(up),
        },
        "uptime_seconds": state.started.elapsed().as_secs(),
    });
    let status = if readiness.ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// Admins only (an API token for the scraper: `Authorization: Bearer ...`): route
/// names and traffic are not for everyone.
async fn prometheus(State(state): State<AppState>, _: Admin) -> Response {
    check_dependencies(&state).await;
    let handle = metrics::handle();
    handle.run_upkeep();
    let mut response = handle.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}
