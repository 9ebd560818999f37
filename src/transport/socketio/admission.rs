//! Who may open a socket ([`admit`], the connect middleware), and how the socket's
//! events reach its session task in the order the client sent them ([`Forward`]).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::adapter::LocalAdapter;
use socketioxide::extract::{AckSender, Data, SocketRef, State, TryData};
use socketioxide::handler::{FromMessageParts, MessageHandler};
use socketioxide::socket::Socket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::MIN_COMMANDS;
use super::notices::Notices;
use super::session::Session;
use super::wire::{error_body, position};
use crate::auth::{Authenticated, Identity};
use crate::error::ApiError;
use crate::hub::message::Author;
use crate::transport::{Realtime, check_upgrade_origin};

/// What the connect middleware hands to the connect handler: the hub connection, its
/// queue, and the commands the socket's events will send.
#[derive(Clone)]
pub(super) struct Pending(Arc<Mutex<Option<Session>>>);

/// The sending half of a socket's commands, kept in the socket's extensions. Boxed:
/// the channel's first block (32 slots) is allocated with the socket and held while
/// it is idle, so a slot is a pointer rather than a whole command.
#[derive(Clone)]
pub(super) struct Commands(mpsc::Sender<Box<Command>>);

/// Cancelled by the disconnect handler: the socket is gone.
#[derive(Clone)]
pub(super) struct Gone(CancellationToken);

#[derive(Debug)]
pub(super) struct Refused(String);

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
pub(super) struct ConnectAuth {
    pub(super) token: Option<String>,
    #[serde(default, deserialize_with = "position")]
    pub(super) since: Option<i64>,
}

/// Connect middleware: who is this, may they connect from there, and is there room
/// for another connection. A refusal is sent as `connect_error {message}`.
pub(super) async fn admit(
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
pub(super) fn handshake_identity(extensions: &axum::http::Extensions) -> Option<Identity> {
    match extensions.get::<Authenticated>() {
        Some(Authenticated(Some(identity))) => Some(identity.clone()),
        _ => None,
    }
}

pub(super) async fn on_connect(
    socket: SocketRef,
    io: SocketIo,
    State(state): State<Realtime>,
    State(notices): State<Arc<Notices>>,
) {
    let Some(session) = socket
        .extensions
        .get::<Pending>()
        .and_then(|pending| crate::sync::lock(&pending.0).take())
    else {
        return;
    };
    socket.extensions.remove::<Pending>();
    let _ = socket.emit("message", &json!({ "data": "Connected to server" }));
    let shutdown = state.shutdown.clone();
    tokio::spawn(session.run(socket, io, notices, shutdown));
}

/// Which client event a command came from.
#[derive(Clone, Copy, Debug)]
pub(super) enum Kind {
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
pub(super) struct Forward(Kind);

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

pub(super) struct Command {
    pub(super) kind: Kind,
    pub(super) data: Value,
    pub(super) ack: AckSender<LocalAdapter>,
}
