//! Socket.IO (protocol v5, socket.io-client 3.x/4.x) at `/socket.io/`, websocket and
//! polling transports, with the events of the seed's Flask-SocketIO chat:
//!
//! - on connect the server emits `message {data: "Connected to server"}`;
//! - `join {username}` -> everyone gets `user_joined {username, user_count}`;
//! - `message {message, room?, client_id?}` -> everyone in the room (`general` by
//!   default) gets `message {username, message, timestamp, id, room, user}`;
//! - `join_room {room, since?}` / `leave_room {room}` -> the room gets
//!   `message {message: "You joined room: R"}` / `"You left room: R"`; joining replays
//!   the room's log after `since` (socketioxide has no connection-state recovery);
//! - a disconnect -> everyone gets `user_left {username, user_count}`;
//! - errors come back as `error {code, error}`, a message's ack (when the client asks
//!   for one) as `{id, room}` or `{error}`.
//!
//! Only signed-in users connect: the identity comes from the handshake request (the
//! session cookie or `Authorization: Bearer`, resolved by
//! [`crate::auth::middleware::authenticate`], which runs before this service) or from
//! the CONNECT packet's `auth: {token: "sb_..."}`. Anyone else gets a `connect_error`.
//! `auth: {since: N}` starts the socket's `general` position at N (a resume).
//!
//! Like the other transports this is an adapter: each socket gets a hub
//! [`Connection`] joined to `general`, and one task that owns it. The task runs the
//! socket's commands in the order they arrived and drains the connection's queue into
//! `message` events, so a message sent on any transport reaches Socket.IO clients and
//! the reverse. The task ends when the socket goes away; when the hub cancels the
//! connection as a slow consumer (`error {code: "slow_consumer"}`, then a server
//! disconnect: reconnect and resume from your last id); and at shutdown
//! (`error {code: "server_restarting"}`, then every transport is closed, so
//! socket.io-client reconnects by itself). When the credential the socket was
//! opened with ends (logout, password change, revoked token, deleted account, role
//! change) it gets `error {code: "session_ended" | "password_changed" |
//! "token_revoked" | "account_deleted" | "role_changed", error}` and a server
//! disconnect, after which socket.io-client does not reconnect by itself.
//!
//! The Flask-style notices (`user_joined`, `user_left`, "You joined room") go through
//! socketioxide's in-memory adapter; chat messages go through the hub and reach every
//! instance. `user_joined` / `user_left` are also relayed through the hub
//! ([`crate::hub::Hub::relay`]) to the other instances' sockets, and their
//! `user_count` is the hub's presence, counted across instances; "You joined room"
//! reaches this instance's sockets only.
//!
//! `user_joined` / `user_left` go to every socket, so each one costs O(sockets): sent as
//! they came, 10,000 clients joining made 50 million packets (six minutes of a core).
//! They are broadcast by one task ([`Notices`]) instead, which paces itself by what it
//! sent: each broadcast of k notices to n sockets is followed by a rest of
//! k × n × [`NOTICE_PACE`] before the next, and when more than [`NOTICE_BURST`]
//! notices piled up meanwhile only the newest go out (each carries the exact
//! `user_count`). A quiet chat therefore gets every notice at once, and a join storm
//! costs a bounded share of the server instead of O(sockets) per join.
//!
//! The pieces: this file mounts the service (`router`); [`admission`] admits a
//! socket and queues its events in order; [`session`] is the socket's task (its
//! commands and deliveries); [`notices`] broadcasts `user_joined` / `user_left`;
//! [`wire`] holds the events' shapes.

mod admission;
mod notices;
mod session;
mod wire;

use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, header};
use socketioxide::SocketIo;
use socketioxide::handler::ConnectHandler;

use super::Realtime;
use admission::{admit, on_connect};
use notices::Notices;

/// Where the engine.io endpoint lives (socket.io-client's default `path`).
pub const PATH: &str = "/socket.io";
/// Commands a socket may have waiting for its task, at least (the hub's
/// per-connection queue size is used when larger); a client that floods past this
/// gets an `error` per dropped command, and its sends are limited by the hub anyway.
const MIN_COMMANDS: usize = 64;
/// The longest nickname `join` accepts, in characters.
const MAX_NICKNAME: usize = 64;
/// The WebSocket transport's read buffer: Socket.IO packets here are small, and a
/// larger frame still arrives whole (the buffer grows for it). Every idle socket
/// holds one, as on `/ws` (see [`super::ws`]).
const WS_READ_BUFFER: usize = 1024;
/// Packets socketioxide buffers per socket before an emit fails.
const SOCKET_BUFFER: usize = 512;
/// How long an emit may wait for a client to drain its buffer before it counts as
/// a slow consumer.
const EMIT_PATIENCE: Duration = Duration::from_secs(10);
const EMIT_RETRY: Duration = Duration::from_millis(20);
/// Deliveries a socket's task takes from its queue in one go.
const DRAIN: usize = 64;
/// The rest after broadcasting, per packet sent: `user_joined` / `user_left` take at
/// most about 1 / NOTICE_PACE = 20,000 packets a second, whatever the join rate.
const NOTICE_PACE: Duration = Duration::from_micros(50);
/// Notices sent per broadcast at most: the newest of those that piled up.
const NOTICE_BURST: usize = 4;
/// The longest rest between two broadcasts.
const NOTICE_MAX_REST: Duration = Duration::from_secs(3);

/// The `/socket.io` route. Mounted inside the authentication middleware (so the
/// handshake request carries its identity) and outside the request timeout.
pub fn router<S: Clone + Send + Sync + 'static>(state: &Realtime) -> Router<S> {
    let notices = Notices::new();
    let (service, io) = SocketIo::builder()
        .req_path(PATH)
        .ws_read_buffer_size(WS_READ_BUFFER)
        .max_buffer_size(SOCKET_BUFFER)
        .max_payload(payload_limit(state))
        // The same limit on the WebSocket transport: a larger frame or message is
        // refused as its header arrives (the transport closes), never read whole.
        .ws_max_message_size(payload_limit(state) as usize)
        .ws_max_frame_size(payload_limit(state) as usize)
        .with_state(state.clone())
        .with_state(notices.clone())
        .build_svc();
    io.ns("/", on_connect.with(admit));
    tokio::spawn(
        notices
            .clone()
            .listen(state.hub.relayed(), state.shutdown.clone()),
    );
    tokio::spawn(notices.announce(io.clone(), state.hub.clone(), state.shutdown.clone()));
    // At shutdown, close every transport (not a Socket.IO disconnect, after which
    // socket.io-client would not reconnect by itself): clients reconnect and resume.
    let shutdown = state.shutdown.clone();
    tokio::spawn(async move {
        shutdown.cancelled().await;
        io.close().await;
    });
    Router::new().route_service(
        PATH,
        tower::ServiceBuilder::new()
            .map_request(detach)
            .service(service),
    )
}

/// socketioxide keeps the handshake request's URI and headers for the socket's whole
/// life (`Socket::req_parts`). As hyper parsed them they are slices of its 8 KiB read
/// buffer, which they would keep alive: 8 KiB of an idle socket's 38 (massif, 300
/// idle sockets). Copied into allocations of their own, the buffer is freed once
/// the connection is upgraded. The credentials are left out: the authentication
/// middleware has already turned them into the request's identity.
fn detach(mut request: axum::extract::Request) -> axum::extract::Request {
    let headers = std::mem::take(request.headers_mut());
    let mut kept = HeaderMap::with_capacity(headers.len());
    for (name, value) in &headers {
        if name == header::COOKIE || name == header::AUTHORIZATION {
            continue;
        }
        if let Ok(value) = HeaderValue::from_bytes(value.as_bytes()) {
            kept.append(name.clone(), value);
        }
    }
    *request.headers_mut() = kept;
    if let Ok(uri) = request.uri().to_string().parse() {
        *request.uri_mut() = uri;
    }
    request
}

/// Whether a request belongs to an open Engine.IO session (it names its `sid`), as
/// opposed to a handshake.
pub fn in_session(uri: &axum::http::Uri) -> bool {
    uri.path() == PATH
        && uri
            .query()
            .is_some_and(|q| q.split('&').any(|pair| pair.starts_with("sid=")))
}

/// The largest payload worth reading (a polling request's body, a WebSocket
/// message): a few maximal messages. The handshake advertises it as `maxPayload`.
fn payload_limit(state: &Realtime) -> u64 {
    (state.hub.settings().max_message_chars as u64 * 4 + 1024) * 4
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The handshake socketioxide keeps owns its bytes (none point into the buffer
    /// the request was parsed from) and carries no credentials.
    #[test]
    fn a_detached_handshake_owns_its_bytes_and_drops_credentials() {
        // One buffer holding the URI and the header values, as hyper's read buffer does.
        let (uri, cookie, origin) = (
            "/socket.io/?EIO=4&transport=websocket",
            "sb_session=abc; csrftoken=xyz",
            "http://h:1",
        );
        let raw = axum::body::Bytes::from(format!("{uri}{cookie}{origin}"));
        let (u, c) = (uri.len(), uri.len() + cookie.len());
        let shared = |range: std::ops::Range<usize>| {
            HeaderValue::from_maybe_shared(raw.slice(range)).unwrap()
        };
        let mut request = axum::extract::Request::new(axum::body::Body::empty());
        *request.uri_mut() = axum::http::Uri::from_maybe_shared(raw.slice(0..u)).unwrap();
        request.headers_mut().insert(header::COOKIE, shared(u..c));
        request
            .headers_mut()
            .insert(header::ORIGIN, shared(c..raw.len()));
        request
            .headers_mut()
            .insert(header::AUTHORIZATION, shared(c..raw.len()));
        assert!(raw.as_ptr_range().contains(&request.uri().path().as_ptr()));

        let detached = detach(request);

        let within_raw = |bytes: &[u8]| raw.as_ptr_range().contains(&bytes.as_ptr());
        assert_eq!(detached.uri(), uri);
        assert!(!within_raw(detached.uri().path().as_bytes()));
        assert_eq!(detached.headers().len(), 1, "only the origin is left");
        let origin = &detached.headers()[header::ORIGIN];
        assert_eq!(origin, "http://h:1");
        assert_eq!(detached.headers().get(header::COOKIE), None);
        assert!(!within_raw(origin.as_bytes()));
    }

    #[test]
    fn only_requests_of_an_open_session_are_in_session() {
        let uri = |u: &str| u.parse::<axum::http::Uri>().unwrap();
        assert!(in_session(&uri(
            "/socket.io?EIO=4&transport=polling&sid=abc"
        )));
        assert!(!in_session(&uri("/socket.io?EIO=4&transport=polling")));
        assert!(!in_session(&uri("/api/send?sid=abc")));
    }
}
