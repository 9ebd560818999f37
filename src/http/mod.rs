//! The HTTP surface: every area's routes merged in one place, and the middleware
//! every request goes through, in order (outermost first):
//!
//! 1. trailing-slash normalisation (wraps the router, see [`crate::App::serve`]);
//! 2. [`request_id`]: the id every log line and error carries;
//! 3. tracing span + access log;
//! 4. CORS when configured, HSTS under TLS, then the security headers (CSP,
//!    nosniff, ...);
//! 5. [`compression`] (gzip, br, zstd; never SSE, whose body it leaves unwrapped);
//! 6. [`caching`]: `ETag` + `Cache-Control` on JSON reads, 304 for `If-None-Match`;
//! 7. [`envelope`]: every error leaves as the one JSON envelope;
//! 8. panic catcher: a panic is a logged 500, never a dropped connection;
//! 9. the body limit;
//! 10. [`metrics`] (inside the router, where the matched route is known);
//! 11. the timeout (not on the long-lived realtime routes of [`crate::transport`]),
//!     then [`crate::auth::middleware::authenticate`] (who is this, CSRF), then
//!     [`crate::limits::limit`] (rate limits by account or address), then, on
//!     protected routes, "must be logged in".
//!
//! Layers 2-9 wrap the routed [`Router`] once, as one service; the rest are per
//! route (they need the matched route, or differ between groups of routes).

pub mod caching;
pub mod compression;
pub mod envelope;
pub mod extract;
pub mod metrics;
pub mod redirect;
pub mod request_id;
pub mod security;

use std::any::Any;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef};
use axum::http::{Request, StatusCode};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use tower::{Layer, ServiceBuilder};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::AppState;
use crate::error::ApiError;
use crate::transport::Realtime;

/// The whole application, ready to serve (before trailing-slash normalisation).
pub fn router(state: AppState) -> Router {
    let config = &state.config;

    // Anyone: logging in and out. (Health probes sit outside authentication, below.)
    let public = Router::new()
        .merge(crate::auth::handlers::public_router())
        .merge(crate::auth::pages::router())
        .merge(crate::ops::router());
    // Logged-in callers only; handlers check roles on top.
    let protected = Router::new()
        .merge(crate::directory::router())
        .merge(crate::classic::router())
        .merge(crate::auth::handlers::router())
        .merge(crate::account::router())
        .route("/api/batch", axum::routing::post(crate::batch::batch))
        .route(
            "/api/openapi.json",
            axum::routing::get(crate::openapi::document),
        )
        .route_layer(from_fn(crate::auth::middleware::require_identity));
    // HTML pages: anonymous visitors are redirected to /login instead of getting a 401.
    let pages = crate::web::router();

    // Authentication, then rate limits (which key on the identity), as one layer:
    // one wrapper per route instead of two.
    let identified = || {
        ServiceBuilder::new()
            .layer(from_fn_with_state(
                state.clone(),
                crate::auth::middleware::authenticate,
            ))
            .layer(from_fn_with_state(state.clone(), crate::limits::limit))
    };
    // Realtime: logged-in only, and outside the request timeout (these live long and
    // end with the shutdown token instead). The same authentication and limits run on
    // both groups; on the others the timeout covers authentication too (a session
    // lookup stuck on a locked database must still end in a 503).
    let realtime = crate::transport::router()
        .route_layer(from_fn(crate::auth::middleware::require_identity))
        .with_state(Realtime::from_ref(&state))
        .layer(identified());
    // Socket.IO decides at its CONNECT packet, which may carry a token instead of the
    // handshake's cookie: authenticated (the identity is in the handshake request), but
    // not required at the HTTP level.
    let socketio = crate::transport::socketio::router(&Realtime::from_ref(&state))
        .layer(identified())
        .layer(from_fn(unmetered_frames));

    let app = public.merge(protected).merge(pages).layer(
        ServiceBuilder::new()
            .layer(TimeoutLayer::with_status_code(
                StatusCode::SERVICE_UNAVAILABLE,
                config.http.request_timeout(),
            ))
            .layer(identified()),
    );

    let routes = Router::new()
        .merge(crate::ops::probes())
        // Static assets: like the probes, outside authentication and rate limits.
        .merge(crate::web::static_router())
        .merge(app)
        .merge(realtime)
        .merge(socketio)
        .fallback(not_found)
        .layer(from_fn(metrics::track))
        .with_state(state.clone());

    // The layers every request goes through wrap the routes once, as one service.
    // `Router::layer` would wrap (and box) each route separately, and every layer
    // made with `from_fn` clones the service under it on each call: with the stack
    // applied per route, a request cloned it level by level (a quarter of the
    // instructions of `GET /api/users/{id}`, callgrind).
    let service = ServiceBuilder::new()
        .layer(from_fn(request_id::request_id))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(make_span)
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .option_layer(
            (!config.http.cors_origins.is_empty())
                .then(|| security::cors(&config.http.cors_origins)),
        )
        .option_layer(config.http.tls().then(|| from_fn(security::hsts)))
        .layer(from_fn(security::headers))
        .layer(from_fn(compression::compress))
        .layer(from_fn(caching::conditional_get))
        .layer(from_fn_with_state(
            crate::web::views::error_page_html as envelope::PageRenderer,
            envelope::envelope,
        ))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(DefaultBodyLimit::max(config.http.max_body_bytes))
        .service(routes);
    // Batch items are dispatched through this same stack (without the extension, so
    // the stack does not hold itself).
    let target = crate::batch::BatchTarget(Router::new().fallback_service(service.clone()));
    Router::new().fallback_service(Layer::layer(&axum::Extension(target), service))
}

/// Marks the requests of an open Socket.IO session as transport frames, which the
/// rate limits let through ([`crate::limits::Unmetered`]).
async fn unmetered_frames(
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if crate::transport::socketio::in_session(request.uri()) {
        request.extensions_mut().insert(crate::limits::Unmetered);
    }
    next.run(request).await
}

fn make_span<B>(request: &Request<B>) -> tracing::Span {
    let id = request
        .extensions()
        .get::<request_id::RequestId>()
        .map(|id| id.as_str().to_owned())
        .unwrap_or_default();
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = %id,
    )
}

async fn not_found() -> ApiError {
    ApiError::NotFound("Not found".into())
}

fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned());
    ApiError::internal(anyhow::anyhow!("handler panicked: {message}")).into_response()
}
