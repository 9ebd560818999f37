//! Realtime transports: thin adapters from each wire protocol onto the hub. Every
//! rule (who may join what, ordering, replay, limits, presence) lives in
//! `crate::hub`; a transport only reads its protocol's frames, calls the hub, and
//! writes the hub's answers in its protocol's shape.
//!
//! - [`ws`]: `GET /ws` (JSON frames) and `GET /ws/{client_id}` (the seed's plain text);
//! - [`sse`]: `GET /api/rooms/{room}/events`, `GET /api/events?rooms=`, `/stream`,
//!   `/notifications`;
//! - [`longpoll`]: `GET /api/poll`, `POST /api/send`;
//! - [`socketio`]: Socket.IO v5 at `/socket.io/` (the Flask-SocketIO chat's events);
//! - [`rooms`]: the REST side of the hub (room list, history, presence,
//!   notifications);
//!
//! Every route here needs an identity (401 before any upgrade or stream starts;
//! Socket.IO refuses at its CONNECT instead, where a token may also arrive) and
//! none sits under the request timeout: they are long-lived by design and end with
//! the server's shutdown token instead.

pub mod longpoll;
pub mod rooms;
pub mod socketio;
pub mod sse;
pub mod ws;

use std::net::IpAddr;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::middleware::from_fn;
use axum::routing::{any, get, post};

use crate::AppState;
use crate::auth::{Credential, Identity};
use crate::error::ApiError;

pub fn router() -> Router<AppState> {
    Router::new()
        // `any`: WebSocket over HTTP/2 arrives as CONNECT, not GET (CRATES.md).
        .route("/ws", any(ws::json_socket))
        .route("/ws/{client_id}", any(ws::plain_socket))
        .route("/api/rooms/{room}/events", get(sse::room_events))
        .route("/api/events", get(sse::rooms_events))
        .route("/stream", get(sse::stats_stream))
        .route("/notifications", get(sse::notifications_stream))
        .route("/api/poll", get(longpoll::poll))
        // The routes above never answer on their own: no batch item may wait on one.
        .route_layer(from_fn(crate::batch::refuse_in_batch))
        .route("/api/send", post(longpoll::send))
        .merge(rooms::router())
}

/// The client's address (the socket's peer, or what a trusted proxy says).
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(ClientIp(crate::limits::client_ip::of_parts(
            &parts.extensions,
            &parts.headers,
            &state.config.http.trusted_proxies,
        )))
    }
}

/// Refuses cross-site WebSocket hijacking: a browser always sends `Origin` on an
/// upgrade, and a cookie-authenticated upgrade from another site's page would
/// otherwise act as the user. Bearer-token clients are not browsers riding a cookie.
pub fn check_upgrade_origin(
    headers: &HeaderMap,
    identity: &Identity,
    state: &AppState,
) -> Result<(), ApiError> {
    if matches!(identity.credential, Credential::Token { .. }) {
        return Ok(());
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let allowed = origin
        .to_str()
        .is_ok_and(|o| crate::auth::csrf::origin_allowed(o, headers, None, &state.auth));
    if allowed {
        Ok(())
    } else {
        Err(ApiError::Forbidden {
            code: "origin_refused",
            message: "Cross-origin WebSocket refused: the Origin is not this server".into(),
        })
    }
}

/// `since` as a client gives it: a number, or absent.
pub fn parse_position(text: Option<&str>) -> Result<Option<i64>, ApiError> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) => t.parse::<i64>().map(|n| Some(n.max(0))).map_err(|_| {
            ApiError::bad_request("invalid_position", "A position is a message id (a number)")
        }),
    }
}
