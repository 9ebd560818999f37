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
//! socketioxide's in-memory adapter, so they reach the sockets of this instance only;
//! chat messages go through the hub and reach every instance.
//!
//! `user_joined` / `user_left` go to every socket, so each one costs O(sockets): sent as
//! they came, 10,000 clients joining made 50 million packets (six minutes of a core).
//! They are broadcast by one task ([`Notices`]) instead, which paces itself by what it
//! sent: each broadcast of k notices to n sockets is followed by a rest of
//! k × n × [`NOTICE_PACE`] before the next, and when more than [`NOTICE_BURST`]
//! notices piled up meanwhile only the newest go out (each carries the exact
//! `user_count`). A quiet chat therefore gets every notice at once, and a join storm
//! costs a bounded share of the server instead of O(sockets) per join.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, header};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use socketioxide::adapter::LocalAdapter;
use socketioxide::extract::{AckSender, Data, SocketRef, State, TryData};
use socketioxide::handler::{ConnectHandler, FromMessageParts, MessageHandler};
use socketioxide::socket::Socket;
use socketioxide::{SendError, SocketError, SocketIo};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use super::{Realtime, check_upgrade_origin};
use crate::auth::{Authenticated, Identity};
use crate::directory::model::name_characters_problem;
use crate::error::ApiError;
use crate::hub::message::{self, Author, GENERAL_ROOM, Message};
use crate::hub::{Connection, Delivered, EndReason, Joined, Next};

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
    tokio::spawn(notices.announce(io.clone(), state.shutdown.clone()));
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

/// What the connect middleware hands to the connect handler: the hub connection, its
/// queue, and the commands the socket's events will send.
#[derive(Clone)]
struct Pending(Arc<Mutex<Option<Session>>>);

/// The sending half of a socket's commands, kept in the socket's extensions. Boxed:
/// the channel's first block (32 slots) is allocated with the socket and held while
/// it is idle, so a slot is a pointer rather than a whole command.
#[derive(Clone)]
struct Commands(mpsc::Sender<Box<Command>>);

/// Cancelled by the disconnect handler: the socket is gone.
#[derive(Clone)]
struct Gone(CancellationToken);

#[derive(Debug)]
struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<ApiError> for Refused {
    fn from(error: ApiError) -> Self {
        Refused(error.to_string())
    }
}

/// The CONNECT packet's `auth` object.
#[derive(Debug, Default, Deserialize)]
struct ConnectAuth {
    token: Option<String>,
    #[serde(default, deserialize_with = "position")]
    since: Option<i64>,
}

/// Connect middleware: who is this, may they connect from there, and is there room
/// for another connection. A refusal is sent as `connect_error {message}`.
async fn admit(
    socket: SocketRef,
    TryData(auth): TryData<ConnectAuth>,
    State(state): State<Realtime>,
) -> Result<(), Refused> {
    let auth = auth.unwrap_or_default();
    let parts = socket.req_parts();
    let identity = match auth.token.as_deref().filter(|t| !t.is_empty()) {
        Some(token) => state.tokens.resolve(token).await?,
        None => handshake_identity(&parts.extensions).ok_or(ApiError::Unauthenticated)?,
    };
    check_upgrade_origin(&parts.headers, &identity, &state)?;
    let ip = crate::limits::client_ip::of_parts(
        &parts.extensions,
        &parts.headers,
        &state.trusted_proxies,
    );
    let credential = identity.credential.clone();
    let connection = state
        .hub
        .connect(Author::of(&identity.user), credential, ip)?;
    let (commands, receiver) = mpsc::channel(state.hub.settings().queue.max(MIN_COMMANDS));
    let gone = CancellationToken::new();
    socket.extensions.insert(Commands(commands));
    socket.extensions.insert(Gone(gone.clone()));
    socket
        .extensions
        .insert(Pending(Arc::new(Mutex::new(Some(Session {
            connection,
            commands: receiver,
            gone,
            since: auth.since,
            nickname: None,
            notices: NoticeBudget::new(state.hub.settings().send_per_second),
        })))));
    // Here, not in the connect handler: socketioxide sends the CONNECT ack before it
    // spawns that handler, so events a client emits on `connect` could beat it.
    socket.on("join", Forward(Kind::Join));
    socket.on("message", Forward(Kind::Message));
    socket.on("join_room", Forward(Kind::JoinRoom));
    socket.on("leave_room", Forward(Kind::LeaveRoom));
    socket.on_disconnect(async |socket: SocketRef| {
        if let Some(Gone(gone)) = socket.extensions.get::<Gone>() {
            gone.cancel();
        }
    });
    Ok(())
}

/// The identity the authentication middleware found for the handshake request.
fn handshake_identity(extensions: &axum::http::Extensions) -> Option<Identity> {
    match extensions.get::<Authenticated>() {
        Some(Authenticated(Some(identity))) => Some(identity.clone()),
        _ => None,
    }
}

async fn on_connect(
    socket: SocketRef,
    io: SocketIo,
    State(state): State<Realtime>,
    State(notices): State<Arc<Notices>>,
) {
    let Some(session) = socket
        .extensions
        .get::<Pending>()
        .and_then(|pending| pending.0.lock().expect("pending lock").take())
    else {
        return;
    };
    socket.extensions.remove::<Pending>();
    let _ = socket.emit("message", &json!({ "data": "Connected to server" }));
    let shutdown = state.shutdown.clone();
    tokio::spawn(session.run(socket, io, notices, shutdown));
}

/// A `user_joined` / `user_left` notice waiting for its broadcast.
#[derive(Clone, Debug, PartialEq)]
struct Notice {
    event: &'static str,
    username: String,
    /// Accounts present in `general` right after this join or leave.
    user_count: usize,
}

/// The instance's `user_joined` / `user_left` notices, broadcast by one task (see the
/// module doc for why and how it paces itself).
struct Notices {
    waiting: Mutex<VecDeque<Notice>>,
    wake: Notify,
    /// Sockets with a running session: whom a broadcast reaches.
    sockets: AtomicUsize,
}

impl Notices {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            waiting: Mutex::new(VecDeque::new()),
            wake: Notify::new(),
            sockets: AtomicUsize::new(0),
        })
    }

    /// Queues a notice for the next broadcast; only the newest [`NOTICE_BURST`] wait.
    fn push(&self, notice: Notice) {
        {
            let mut waiting = self.waiting.lock().expect("notices lock");
            if waiting.len() == NOTICE_BURST {
                waiting.pop_front();
            }
            waiting.push_back(notice);
        }
        self.wake.notify_one();
    }

    fn take(&self) -> VecDeque<Notice> {
        std::mem::take(&mut *self.waiting.lock().expect("notices lock"))
    }

    /// Broadcasts what is waiting, rests in proportion to the packets that made, and
    /// again, until shutdown.
    async fn announce(self: Arc<Self>, io: SocketIo, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.wake.notified() => {}
            }
            let batch = self.take();
            for notice in &batch {
                let data = json!({ "username": notice.username, "user_count": notice.user_count });
                let _ = io.emit(notice.event, &data).await;
            }
            let rest = rest_after(batch.len(), self.sockets.load(Ordering::Relaxed));
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(rest) => {}
            }
        }
    }
}

/// The pause after broadcasting `notices` to `sockets`.
fn rest_after(notices: usize, sockets: usize) -> Duration {
    let packets = u32::try_from(notices.saturating_mul(sockets)).unwrap_or(u32::MAX);
    NOTICE_PACE
        .checked_mul(packets)
        .map_or(NOTICE_MAX_REST, |rest| rest.min(NOTICE_MAX_REST))
}

/// Which client event a command came from.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Join,
    Message,
    JoinRoom,
    LeaveRoom,
}

/// A client event, queued for the socket's task as it arrives. socketioxide spawns
/// each async handler as its own task, which would let a `message` overtake the
/// `join` sent before it; this handler enqueues synchronously, so the socket's
/// events are handled in the order the client sent them.
#[derive(Clone)]
struct Forward(Kind);

impl MessageHandler<LocalAdapter, ()> for Forward {
    fn call(
        &self,
        socket: Arc<Socket<LocalAdapter>>,
        mut value: socketioxide::handler::Value,
        ack_id: Option<i64>,
    ) {
        let data = Data::<Value>::from_message_parts(&socket, &mut value, &ack_id)
            .map(|Data(data)| data)
            .unwrap_or(Value::Null);
        let Ok(ack) = AckSender::from_message_parts(&socket, &mut value, &ack_id);
        let Some(Commands(commands)) = socket.extensions.get::<Commands>() else {
            return;
        };
        let command = Box::new(Command {
            kind: self.0,
            data,
            ack,
        });
        if let Err(mpsc::error::TrySendError::Full(command)) = commands.try_send(command) {
            let error = ApiError::TooManyRequests {
                retry_after: Duration::from_secs(1),
            };
            let _ = socket.emit("error", &error_body(&error));
            let _ = command.ack.send(&json!({ "error": error.to_string() }));
        }
    }
}

struct Command {
    kind: Kind,
    data: Value,
    ack: AckSender<LocalAdapter>,
}

#[derive(Deserialize)]
struct JoinData {
    username: String,
}

#[derive(Deserialize)]
struct MessageData {
    message: String,
    room: Option<String>,
    client_id: Option<String>,
}

#[derive(Deserialize)]
struct RoomData {
    room: String,
    #[serde(default, deserialize_with = "position")]
    since: Option<i64>,
}

/// A position as clients send it: a number, a numeric string, or nothing.
fn position<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(|n| Some(n.max(0)))
            .ok_or_else(|| serde::de::Error::custom("a position is a message id")),
        Some(Value::String(s)) => {
            super::parse_position(Some(&s)).map_err(|e| serde::de::Error::custom(e.to_string()))
        }
        Some(_) => Err(serde::de::Error::custom("a position is a message id")),
    }
}

/// Why a session's task ended.
enum End {
    /// The socket disconnected (the client left, or the transport failed).
    Gone,
    /// Disconnect the socket, telling the client why first.
    Disconnect(&'static str),
    /// The server is shutting down: tell the client; the transport closes with the
    /// server (see [`router`]).
    Shutdown,
    /// The socket's credential ended: tell the client why, then disconnect.
    Credential,
}

/// One socket's hub side, owned by its task.
struct Session {
    connection: Connection,
    commands: mpsc::Receiver<Box<Command>>,
    gone: CancellationToken,
    /// The `general` position given in the CONNECT `auth`.
    since: Option<i64>,
    /// The display name given at `join`.
    nickname: Option<String>,
    /// What `join_room` / `leave_room` may still cost (their notices reach a room).
    notices: NoticeBudget,
}

impl Session {
    async fn run(
        mut self,
        socket: SocketRef,
        io: SocketIo,
        notices: Arc<Notices>,
        shutdown: CancellationToken,
    ) {
        notices.sockets.fetch_add(1, Ordering::Relaxed);
        let overflow = self.connection.overflow().clone();
        let mut out = Out {
            socket: socket.clone(),
            shutdown: shutdown.clone(),
            overflow: overflow.clone(),
            ended: self.connection.ended().clone(),
            gone: self.gone.clone(),
        };
        // The join and each command run boxed: they are rare next to deliveries,
        // and their futures are large (store calls). Inline, this task's state would
        // be as large as the largest of them for the socket's whole life, idle or not.
        // Following `general` from connect, present in it from `join`.
        let end = match Box::pin(self.connection.join_unseen(GENERAL_ROOM, self.since)).await {
            Ok(joined) => match Box::pin(out.joined(joined)).await {
                Ok(()) => self.serve(&mut out, &io, &notices).await,
                Err(end) => end,
            },
            Err(error) => {
                let _ = out.error(&error).await;
                End::Disconnect("could_not_join")
            }
        };
        let nickname = self.nickname.take();
        let hub = self.connection.hub().clone();
        let end_reason = self.connection.end_reason();
        // Leave the hub's rooms before counting who is still there.
        drop(self);
        match end {
            End::Disconnect(reason) => {
                let _ = socket.emit("error", &json!({ "code": reason, "error": reason }));
                let _ = socket.disconnect();
            }
            End::Shutdown => {
                let reason = "server_restarting";
                let _ = socket.emit("error", &json!({ "code": reason, "error": reason }));
            }
            End::Credential => {
                let reason = end_reason.unwrap_or(EndReason::SessionEnded);
                let error = json!({ "code": reason.code(), "error": reason.message() });
                let _ = socket.emit("error", &error);
                let _ = socket.disconnect();
            }
            End::Gone => {}
        }
        notices.sockets.fetch_sub(1, Ordering::Relaxed);
        if let Some(username) = nickname
            && !shutdown.is_cancelled()
        {
            notices.push(Notice {
                event: "user_left",
                username,
                user_count: hub.presence_count(GENERAL_ROOM),
            });
        }
    }

    async fn serve(&mut self, out: &mut Out, io: &SocketIo, notices: &Notices) -> End {
        // Made once, not per event: each `cancelled()` future registers with its token
        // when first polled and unregisters when dropped, which showed in the fan-out
        // profile (about 5% of the server).
        let shutdown = out.shutdown.clone().cancelled_owned();
        let overflow = out.overflow.clone().cancelled_owned();
        let gone = self.gone.clone().cancelled_owned();
        let ended = out.ended.clone().cancelled_owned();
        tokio::pin!(shutdown, overflow, gone, ended);
        loop {
            let step = tokio::select! {
                _ = &mut shutdown => Err(End::Shutdown),
                _ = &mut overflow => Err(End::Disconnect("slow_consumer")),
                _ = &mut ended => Err(End::Credential),
                _ = &mut gone => Err(End::Gone),
                command = self.commands.recv() => match command {
                    Some(command) => Box::pin(self.command(command, out, io, notices)).await,
                    None => Err(End::Gone),
                },
                next = self.connection.next() => match next {
                    Ok(next) => self.deliveries(next, out).await,
                    Err(error) => {
                        // The store failed during a replay: the client reconnects
                        // and resumes from its last id.
                        tracing::warn!(%error, "a Socket.IO replay could not read the store");
                        Err(End::Disconnect("unavailable"))
                    }
                },
            };
            if let Err(end) = step {
                return end;
            }
        }
    }

    async fn command(
        &mut self,
        command: Box<Command>,
        out: &mut Out,
        io: &SocketIo,
        notices: &Notices,
    ) -> Result<(), End> {
        let Command { kind, data, ack } = *command;
        match kind {
            Kind::Join => {
                let Some(JoinData { username }) = parse(data, out).await? else {
                    return Ok(());
                };
                let username = username.trim().to_owned();
                // A nickname is shown as a name: the directory's character rule, and
                // the join does not happen when it fails.
                let problem = if username.is_empty() || username.chars().count() > MAX_NICKNAME {
                    Some(format!("must be 1-{MAX_NICKNAME} characters"))
                } else {
                    name_characters_problem(&username)
                };
                if let Some(problem) = problem {
                    return out.error(&ApiError::validation("username", &problem)).await;
                }
                self.nickname = Some(username.clone());
                self.connection.appear(GENERAL_ROOM);
                let user_count = self.connection.hub().presence_count(GENERAL_ROOM);
                notices.push(Notice {
                    event: "user_joined",
                    username: username.clone(),
                    user_count,
                });
                let _ = ack.send(&json!({ "username": username, "user_count": user_count }));
                Ok(())
            }
            Kind::Message => {
                let Some(data) = parse::<MessageData>(data, out).await? else {
                    return Ok(());
                };
                let room = data.room.as_deref().unwrap_or(GENERAL_ROOM);
                let mut event = json!({ "type": "chat", "via": "socket.io" });
                if let Some(nickname) = &self.nickname {
                    event["nickname"] = json!(nickname);
                }
                match self
                    .connection
                    .send(room, &data.message, data.client_id.as_deref(), Some(event))
                    .await
                {
                    Ok(appended) => {
                        let message = &appended.message;
                        let _ = ack.send(&json!({ "id": message.id, "room": message.room }));
                        Ok(())
                    }
                    Err(error) => {
                        let _ = ack.send(&json!({ "error": error.to_string() }));
                        out.error(&error).await
                    }
                }
            }
            Kind::JoinRoom => {
                let Some(RoomData { room, since }) = parse(data, out).await? else {
                    return Ok(());
                };
                let public = match self.room_notices(&room) {
                    Ok(public) => public,
                    Err(error) => {
                        let _ = ack.send(&json!({ "error": error.to_string() }));
                        return out.error(&error).await;
                    }
                };
                let already = self.connection.follows(&room);
                match self.connection.join(&room, since).await {
                    Ok(joined) => {
                        out.socket.join(room.clone());
                        // A room hears of a member once, not at every repeated join.
                        if public && !already {
                            let notice = json!({ "message": format!("You joined room: {room}") });
                            let _ = io.to(room.clone()).emit("message", &notice).await;
                        }
                        let _ = ack.send(&json!({
                            "room": room,
                            "position": joined.position,
                            "count": joined.presence.count,
                        }));
                        out.joined(joined).await
                    }
                    Err(error) => {
                        let _ = ack.send(&json!({ "error": error.to_string() }));
                        out.error(&error).await
                    }
                }
            }
            Kind::LeaveRoom => {
                let Some(RoomData { room, .. }) = parse(data, out).await? else {
                    return Ok(());
                };
                // Leaving a room this socket is not in does nothing and tells nobody.
                if !self.connection.follows(&room) {
                    if let Err(error) = message::check_room_for(&room, self.connection.author.id) {
                        let _ = ack.send(&json!({ "error": error.to_string() }));
                        return out.error(&error).await;
                    }
                    let _ = ack.send(&json!({ "room": room }));
                    return Ok(());
                }
                let public = match self.room_notices(&room) {
                    Ok(public) => public,
                    Err(error) => {
                        let _ = ack.send(&json!({ "error": error.to_string() }));
                        return out.error(&error).await;
                    }
                };
                // Flask-SocketIO leaves first, then tells the room.
                if let Err(error) = self.connection.leave(&room) {
                    let _ = ack.send(&json!({ "error": error.to_string() }));
                    return out.error(&error).await;
                }
                out.socket.leave(room.clone());
                if public {
                    let notice = json!({ "message": format!("You left room: {room}") });
                    let _ = io.to(room.clone()).emit("message", &notice).await;
                }
                let _ = ack.send(&json!({ "room": room }));
                Ok(())
            }
        }
    }

    /// Checks a `join_room` / `leave_room`: the room must be one the caller may
    /// name (a public room, or its own notifications), and the socket's notice
    /// budget must allow it. `Ok(true)` for a public room, whose members hear of it;
    /// the private notification room gets no notices.
    fn room_notices(&mut self, room: &str) -> Result<bool, ApiError> {
        let public = message::check_room_for(room, self.connection.author.id)?;
        self.notices.take()?;
        Ok(public)
    }

    /// Handles `first` and up to [`DRAIN`] more that are ready behind it, without
    /// going back through the `select!` for each.
    async fn deliveries(&mut self, first: Next, out: &mut Out) -> Result<(), End> {
        delivery(first, out).await?;
        for _ in 0..DRAIN {
            match self.connection.try_next() {
                Some(next) => delivery(next, out).await?,
                None => break,
            }
        }
        Ok(())
    }
}

async fn delivery(next: Next, out: &mut Out) -> Result<(), End> {
    match next {
        Next::Message(delivered) => out.emit("message", flask_payload(&delivered)).await,
        // Presence reaches Socket.IO clients as the Flask chat's own
        // `user_joined` / `user_left` (sent at `join` and disconnect).
        Next::Presence(_) => Ok(()),
        Next::Reset { room, reason } => out.reset(&room, reason).await,
    }
}

/// How many `join_room` / `leave_room` a socket may make: as many per second as it
/// may send messages, in bursts of twice that (a token bucket), since each one's
/// notice reaches a whole room. Past it, an `error {code: "rate_limited"}` and
/// nothing is done.
struct NoticeBudget {
    per_second: f32,
    tokens: f32,
    updated: tokio::time::Instant,
}

impl NoticeBudget {
    fn new(per_second: u32) -> Self {
        let per_second = per_second.max(1) as f32;
        Self {
            per_second,
            tokens: per_second * 2.0,
            updated: tokio::time::Instant::now(),
        }
    }

    fn take(&mut self) -> Result<(), ApiError> {
        let now = tokio::time::Instant::now();
        let elapsed = now.duration_since(self.updated).as_secs_f32();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.per_second * 2.0);
        self.updated = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(ApiError::TooManyRequests {
                retry_after: Duration::from_secs_f32((1.0 - self.tokens) / self.per_second),
            })
        }
    }
}

/// Decodes an event's payload; a malformed one gets an `error` event and is skipped.
async fn parse<T: serde::de::DeserializeOwned>(
    data: Value,
    out: &mut Out,
) -> Result<Option<T>, End> {
    match serde_json::from_value(data) {
        Ok(parsed) => Ok(Some(parsed)),
        Err(error) => {
            out.error(&ApiError::bad_request(
                "invalid_event",
                format!("Not an event this server understands: {error}"),
            ))
            .await?;
            Ok(None)
        }
    }
}

/// A hub message as the Flask chat's `message` event, with the log's fields beside:
/// `username` is the sender's nickname when it gave one, else its account name.
fn flask_message(message: &Message) -> Value {
    let username = message
        .event
        .as_ref()
        .and_then(|e| e.get("nickname"))
        .and_then(Value::as_str)
        .unwrap_or(&message.user.name);
    json!({
        "username": username,
        "message": message.text,
        "timestamp": message.timestamp,
        "id": message.id,
        "room": message.room,
        "user": message.user,
        "ts": message.ts,
    })
}

/// [`flask_message`] as JSON text, made once per message for all its sockets (each
/// socket's emit then copies it instead of building and serialising it again).
fn flask_payload(delivered: &Delivered) -> &RawValue {
    delivered.socketio.get_or_init(|| {
        RawValue::from_string(flask_message(&delivered.message).to_string())
            .expect("a JSON value serialises to JSON")
    })
}

fn error_body(error: &ApiError) -> Value {
    json!({ "code": error.code(), "error": error.to_string() })
}

/// The socket's side of a session: emits that wait (a little) for a slow client
/// instead of failing at once, and give up when the session must end.
struct Out {
    socket: SocketRef,
    shutdown: CancellationToken,
    overflow: CancellationToken,
    /// Cancelled when the socket's credential ended.
    ended: CancellationToken,
    gone: CancellationToken,
}

impl Out {
    async fn emit<T: serde::Serialize + ?Sized>(
        &mut self,
        event: &str,
        data: &T,
    ) -> Result<(), End> {
        let deadline = tokio::time::Instant::now() + EMIT_PATIENCE;
        loop {
            match self.socket.emit(event, data) {
                Ok(()) => return Ok(()),
                Err(SendError::Socket(SocketError::InternalChannelFull)) => {
                    if tokio::time::Instant::now() >= deadline {
                        return Err(End::Disconnect("slow_consumer"));
                    }
                    tokio::select! {
                        _ = self.shutdown.cancelled() => return Err(End::Shutdown),
                        _ = self.overflow.cancelled() => return Err(End::Disconnect("slow_consumer")),
                        _ = self.ended.cancelled() => return Err(End::Credential),
                        _ = self.gone.cancelled() => return Err(End::Gone),
                        _ = tokio::time::sleep(EMIT_RETRY) => {}
                    }
                }
                Err(SendError::Socket(SocketError::Closed)) => return Err(End::Gone),
                Err(SendError::Serialize(error)) => {
                    tracing::warn!(%error, "a Socket.IO event could not be serialised");
                    return Ok(());
                }
            }
        }
    }

    async fn error(&mut self, error: &ApiError) -> Result<(), End> {
        self.emit("error", &error_body(error)).await
    }

    async fn reset(&mut self, room: &str, reason: &str) -> Result<(), End> {
        self.emit("reset", &json!({ "room": room, "reason": reason }))
            .await
    }

    /// After a join: a `reset` when the position could not be replayed. The
    /// replayed messages follow, in order, as the socket takes them.
    async fn joined(&mut self, joined: Joined) -> Result<(), End> {
        if let Some(reason) = joined.reset {
            self.reset(&joined.room, reason).await?;
        }
        Ok(())
    }
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

    fn message(event: Option<Value>) -> Message {
        Message {
            room: "general".into(),
            id: 7,
            user: Author {
                id: 3,
                name: "Ada".into(),
            },
            text: "hi".into(),
            ts: "2026-01-01T00:00:00.000Z".into(),
            timestamp: 1_767_225_600.0,
            client_id: None,
            event,
        }
    }

    #[test]
    fn messages_show_the_nickname_else_the_account_name() {
        let plain = flask_message(&message(None));
        assert_eq!(plain["username"], "Ada");
        assert_eq!(plain["message"], "hi");
        assert_eq!(plain["timestamp"], 1_767_225_600.0);
        assert_eq!(
            (plain["id"].as_i64(), plain["room"].as_str()),
            (Some(7), Some("general"))
        );
        let nick = flask_message(&message(Some(
            json!({ "type": "chat", "nickname": "ada99" }),
        )));
        assert_eq!(nick["username"], "ada99");
        assert_eq!(nick["user"]["name"], "Ada");
    }

    #[test]
    fn notices_that_pile_up_keep_the_newest_in_order() {
        let notice = |i: usize| Notice {
            event: "user_joined",
            username: format!("u{i}"),
            user_count: i,
        };
        let notices = Notices::new();
        notices.push(notice(1));
        notices.push(notice(2));
        assert_eq!(Vec::from(notices.take()), vec![notice(1), notice(2)]);
        assert!(notices.take().is_empty());
        for i in 1..=NOTICE_BURST + 3 {
            notices.push(notice(i));
        }
        let kept: Vec<_> = notices.take().into_iter().map(|n| n.user_count).collect();
        assert_eq!(kept, (4..=NOTICE_BURST + 3).collect::<Vec<_>>());
    }

    #[test]
    fn the_rest_after_a_broadcast_grows_with_its_packets_up_to_a_bound() {
        assert_eq!(rest_after(0, 10_000), Duration::ZERO);
        assert_eq!(rest_after(1, 2), NOTICE_PACE * 2);
        assert_eq!(rest_after(4, 1_000), NOTICE_PACE * 4_000);
        assert_eq!(rest_after(4, 1_000_000), NOTICE_MAX_REST);
        assert_eq!(rest_after(usize::MAX, usize::MAX), NOTICE_MAX_REST);
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

    #[test]
    fn positions_are_numbers_numeric_strings_or_absent() {
        let since = |v: Value| serde_json::from_value::<RoomData>(v).map(|d| d.since);
        assert_eq!(since(json!({ "room": "a" })).unwrap(), None);
        assert_eq!(since(json!({ "room": "a", "since": null })).unwrap(), None);
        assert_eq!(
            since(json!({ "room": "a", "since": 12 })).unwrap(),
            Some(12)
        );
        assert_eq!(
            since(json!({ "room": "a", "since": "12" })).unwrap(),
            Some(12)
        );
        assert_eq!(since(json!({ "room": "a", "since": -3 })).unwrap(), Some(0));
        assert!(since(json!({ "room": "a", "since": "x" })).is_err());
        assert!(since(json!({ "room": "a", "since": [1] })).is_err());
        let auth: ConnectAuth =
            serde_json::from_value(json!({ "token": "sb_x", "since": 4 })).unwrap();
        assert_eq!((auth.token.as_deref(), auth.since), (Some("sb_x"), Some(4)));
    }
}
