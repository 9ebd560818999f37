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
//! - [`encoded`]: the WebSocket and Socket.IO encodings of a message, made once
//!   for all its subscribers;
//!
//! Every route here needs an identity (401 before any upgrade or stream starts;
//! Socket.IO refuses at its CONNECT instead, where a token may also arrive) and
//! none sits under the request timeout: they are long-lived by design and end with
//! the server's shutdown token instead.
//!
//! The routes get a [`Realtime`] state, not the whole `AppState`: the hub, the
//! shutdown token and the settings a transport needs, and no store. The compiler,
//! not discipline, keeps transports off SQL: whatever they read from the log, they
//! ask the hub for.

pub mod encoded;
pub mod longpoll;
pub mod rooms;
pub mod socketio;
pub mod sse;
pub mod ws;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::middleware::from_fn;
use axum::routing::{any, get, post};
use tokio_util::sync::CancellationToken;

use crate::AppState;
use crate::auth::token::TokenResolver;
use crate::auth::{AuthState, Credential, Identity};
use crate::error::ApiError;
use crate::hub::Hub;

/// What the realtime routes can reach (an `axum` sub-state of `AppState`). Cloned
/// by every extractor, so it is one reference count.
#[derive(Clone)]
pub struct Realtime(Arc<RealtimeShared>);

impl std::ops::Deref for Realtime {
    type Target = RealtimeShared;

    fn deref(&self) -> &RealtimeShared {
        &self.0
    }
}

pub struct RealtimeShared {
    /// The only door to the message log, rooms and presence.
    pub hub: Arc<Hub>,
    /// Cancelled when the server starts shutting down: every socket, stream and
    /// poll ends with it.
    pub shutdown: CancellationToken,
    /// Which proxies may name the client's address (`X-Forwarded-For`).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The origins a cookie-authenticated upgrade may come from.
    pub auth: Arc<AuthState>,
    /// Socket.IO's CONNECT may carry an API token: resolving it is auth's job.
    pub tokens: TokenResolver,
    /// When the server started (`/stream`'s uptime).
    pub started: Instant,
    /// The beat every `/ws` session pings its client on ([`heartbeat`]).
    pub heartbeat: Heartbeat,
}

/// How often a `/ws` session pings its client. A client that sends nothing at all
/// (pong included) from one beat to the next is taken as gone: a vanished client is
/// noticed within two beats, where TCP alone might never notice (an idle connection
/// writes nothing that could fail).
pub const HEARTBEAT: Duration = Duration::from_secs(30);

/// The beats `/ws` sessions follow: one task ticks for all of them, so an idle
/// connection holds a receiver, not a timer of its own.
pub type Heartbeat = tokio::sync::watch::Receiver<()>;

/// Starts the heartbeat: a tick every `every` until `shutdown`.
pub fn heartbeat(every: Duration, shutdown: CancellationToken) -> Heartbeat {
    let (beat, beats) = tokio::sync::watch::channel(());
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        // A stalled runtime must not fire missed beats back to back: two beats with
        // no time between them would end sessions whose pong is still on its way.
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = ticks.tick() => beat.send_replace(()),
            };
        }
    });
    beats
}

impl Realtime {
    pub fn new(shared: RealtimeShared) -> Self {
        Self(Arc::new(shared))
    }
}

impl FromRef<AppState> for Realtime {
    fn from_ref(state: &AppState) -> Self {
        state.realtime.clone()
    }
}

pub fn router() -> Router<Realtime> {
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

impl FromRequestParts<Realtime> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Realtime) -> Result<Self, ApiError> {
        Ok(ClientIp(crate::limits::client_ip::of_parts(
            &parts.extensions,
            &parts.headers,
            &state.trusted_proxies,
        )))
    }
}

/// Refuses cross-site WebSocket hijacking: a browser always sends `Origin` on an
/// upgrade, and a cookie-authenticated upgrade from another site's page would
/// otherwise act as the user. Bearer-token clients are not browsers riding a cookie.
pub fn check_upgrade_origin(
    headers: &HeaderMap,
    identity: &Identity,
    state: &Realtime,
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
