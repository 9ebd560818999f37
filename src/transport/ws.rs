//! WebSocket transports.
//!
//! `GET /ws`: JSON text frames tagged by `type` (DESIGN.md, "Realtime"). Client:
//! `join {room, since?}`, `leave {room}`, `send {room, text, client_id?}`, `ping`.
//! Server: `welcome`, `presence`, `message`, `user_joined`, `user_left`, `reset`,
//! `error {code, error}` (with the `client_id` of a failed `send`), `pong`.
//!
//! `GET /ws/{client_id}`: the seed's FastAPI chat, plain text both ways, in room
//! `general`: what a client writes reaches everyone as `Client #{id}: {text}`.
//!
//! Buffers are sized for many idle connections (tungstenite's default read buffer
//! alone is 128 KiB). Frames above the configured size get an `error` and the
//! connection goes on; the few that exceed the protocol cap close it with 1009.
//!
//! When the credential the connection was opened with ends (logout, password change,
//! revoked token, deleted account), it closes with 4401 and the reason
//! (`session_ended`, `password_changed`, `token_revoked`, `account_deleted`); a
//! reconnect with that credential gets 401. A role change closes it with 4001
//! `role_changed`: reconnect, with the new role.

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message as Frame, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::Response;
use futures_util::SinkExt;
use serde::Deserialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{ClientIp, Realtime, check_upgrade_origin};
use crate::auth::Identity;
use crate::error::ApiError;
use crate::http::extract::Path;
use crate::hub::message::{Author, GENERAL_ROOM};
use crate::hub::{Connection, EndReason, Joined, Next};

/// Per-connection buffers: small, because most connections are idle. tungstenite
/// zero-fills its whole read buffer on the first read, so all of it is resident for
/// as long as the connection lives; client frames are small (a join, a chat line), and
/// a larger one is still read whole (the buffer grows to the frame), 1 KiB per read.
const READ_BUFFER: usize = 1024;
const WRITE_BUFFER: usize = 4 * 1024;
/// Frames larger than this end the connection (tungstenite refuses them).
const MAX_FRAME: usize = 1024 * 1024;

/// Close codes the client can act on.
const CLOSE_RESTART: u16 = 1012; // server restarting: reconnect
const CLOSE_TOO_BIG: u16 = 1009;
const CLOSE_SLOW: u16 = 4008; // slow_consumer: reconnect and resume
const CLOSE_CREDENTIAL: u16 = 4401; // the credential ended: log in again
const CLOSE_ROLE_CHANGED: u16 = 4001; // the role changed: reconnect
const CLOSE_RETRY: u16 = 1013; // try again later: the store failed during a replay

/// Deliveries written per flush at most.
const BATCH: usize = 64;

/// `GET /ws`
pub async fn json_socket(
    upgrade: WebSocketUpgrade,
    State(state): State<Realtime>,
    identity: Identity,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_upgrade_origin(&headers, &identity, &state)?;
    let connection =
        state
            .hub
            .connect(Author::of(&identity.user), identity.credential.clone(), ip)?;
    let shutdown = state.shutdown.clone();
    let max_text = max_text_bytes(&state);
    Ok(configure(upgrade).on_upgrade(move |socket| async move {
        Session::new(socket, connection, shutdown, max_text)
            .run_json()
            .await;
    }))
}

/// `GET /ws/{client_id}`
pub async fn plain_socket(
    upgrade: WebSocketUpgrade,
    State(state): State<Realtime>,
    identity: Identity,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(client_id): Path<String>,
) -> Result<Response, ApiError> {
    check_upgrade_origin(&headers, &identity, &state)?;
    let valid = !client_id.is_empty()
        && client_id.len() <= 32
        && client_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        return Err(ApiError::bad_request(
            "invalid_client_id",
            "The client id is 1-32 letters, digits, '-' or '_'",
        ));
    }
    let connection =
        state
            .hub
            .connect(Author::of(&identity.user), identity.credential.clone(), ip)?;
    let shutdown = state.shutdown.clone();
    let max_text = max_text_bytes(&state);
    Ok(configure(upgrade).on_upgrade(move |socket| async move {
        Session::new(socket, connection, shutdown, max_text)
            .run_plain(client_id)
            .await;
    }))
}

fn configure(upgrade: WebSocketUpgrade) -> WebSocketUpgrade {
    upgrade
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
}

/// The largest client frame worth parsing: a maximal message's text as JSON.
fn max_text_bytes(state: &Realtime) -> usize {
    state.hub.settings().max_message_chars * 4 + 1024
}

/// What ends a session.
enum End {
    /// The client closed, or the socket failed.
    Gone,
    Close(u16, &'static str),
    /// The connection's credential ended ([`Connection::end_reason`] says why).
    Credential,
}

struct Session {
    socket: WebSocket,
    connection: Connection,
    shutdown: CancellationToken,
    overflow: CancellationToken,
    /// The connection's credential ended.
    ended: CancellationToken,
    max_text: usize,
}

impl Session {
    fn new(
        socket: WebSocket,
        connection: Connection,
        shutdown: CancellationToken,
        max_text: usize,
    ) -> Self {
        let overflow = connection.overflow().clone();
        let ended = connection.ended().clone();
        Self {
            socket,
            connection,
            shutdown,
            overflow,
            ended,
            max_text,
        }
    }

    /// Writes one frame, giving up if the server shuts down or this client has
    /// overflowed meanwhile (a client that stopped reading blocks the write).
    async fn write(&mut self, text: Utf8Bytes) -> Result<(), End> {
        tokio::select! {
            written = self.socket.send(Frame::Text(text)) => written.map_err(|_| End::Gone),
            _ = self.shutdown.cancelled() => Err(End::Close(CLOSE_RESTART, "server restarting; reconnect")),
            _ = self.overflow.cancelled() => Err(End::Close(CLOSE_SLOW, "slow_consumer")),
            _ = self.ended.cancelled() => Err(End::Credential),
        }
    }

    /// Queues one frame without flushing it (see [`Session::flush`]); like
    /// [`Session::write`] it gives up at shutdown or overflow.
    async fn feed(&mut self, text: Utf8Bytes) -> Result<(), End> {
        tokio::select! {
            fed = self.socket.feed(Frame::Text(text)) => fed.map_err(|_| End::Gone),
            _ = self.shutdown.cancelled() => Err(End::Close(CLOSE_RESTART, "server restarting; reconnect")),
            _ = self.overflow.cancelled() => Err(End::Close(CLOSE_SLOW, "slow_consumer")),
            _ = self.ended.cancelled() => Err(End::Credential),
        }
    }

    async fn flush(&mut self) -> Result<(), End> {
        tokio::select! {
            flushed = self.socket.flush() => flushed.map_err(|_| End::Gone),
            _ = self.shutdown.cancelled() => Err(End::Close(CLOSE_RESTART, "server restarting; reconnect")),
            _ = self.overflow.cancelled() => Err(End::Close(CLOSE_SLOW, "slow_consumer")),
            _ = self.ended.cancelled() => Err(End::Credential),
        }
    }

    async fn write_json(&mut self, value: serde_json::Value) -> Result<(), End> {
        self.write(value.to_string().into()).await
    }

    async fn finish(mut self, end: End) {
        let end = match end {
            End::Credential => {
                let reason = self
                    .connection
                    .end_reason()
                    .unwrap_or(EndReason::SessionEnded);
                let code = if reason.credential_gone() {
                    CLOSE_CREDENTIAL
                } else {
                    CLOSE_ROLE_CHANGED
                };
                End::Close(code, reason.code())
            }
            end => end,
        };
        if let End::Close(code, reason) = end {
            let frame = CloseFrame {
                code,
                reason: reason.into(),
            };
            let _ = tokio::time::timeout(
                std::time::Duration::from_secs(1),
                self.socket.send(Frame::Close(Some(frame))),
            )
            .await;
        }
    }

    /// The next thing to do: a client frame, something for the client, or the end.
    /// The connection is asked only once the last write is done, so a client that
    /// does not read holds up its replay instead of piling it up here.
    async fn next(&mut self) -> Result<Event, End> {
        tokio::select! {
            _ = self.shutdown.cancelled() => Err(End::Close(CLOSE_RESTART, "server restarting; reconnect")),
            _ = self.overflow.cancelled() => Err(End::Close(CLOSE_SLOW, "slow_consumer")),
            _ = self.ended.cancelled() => Err(End::Credential),
            frame = self.socket.recv() => match frame {
                Some(Ok(Frame::Text(text))) => Ok(Event::Text(text)),
                Some(Ok(Frame::Binary(_))) => Ok(Event::Binary),
                Some(Ok(Frame::Ping(_) | Frame::Pong(_))) => Ok(Event::Nothing),
                Some(Ok(Frame::Close(_))) | None => Err(End::Gone),
                Some(Err(error)) => {
                    tracing::debug!(%error, "websocket read failed");
                    Err(if error.to_string().contains("too long") || error.to_string().contains("Space limit") {
                        End::Close(CLOSE_TOO_BIG, "message too big")
                    } else {
                        End::Gone
                    })
                }
            },
            next = self.connection.next() => match next {
                Ok(next) => Ok(Event::Next(next)),
                Err(error) => {
                    tracing::warn!(%error, "a WebSocket replay could not read the store");
                    Err(End::Close(CLOSE_RETRY, "store unavailable; reconnect"))
                }
            },
        }
    }

    async fn run_json(mut self) {
        let welcome = json!({
            "type": "welcome",
            "user": self.connection.author,
            "connection": self.connection.id,
        });
        let end = match Box::pin(self.write_json(welcome)).await {
            Ok(()) => self.json_loop().await,
            Err(end) => end,
        };
        Box::pin(self.finish(end)).await;
    }

    /// Runs until the session ends. The task holds this future for the life of the
    /// connection, sized by its largest state; the rare, large steps (a client frame,
    /// which may join and replay; the welcome; the close) are boxed so that the idle
    /// state decides its size (debug build: 2,952 -> 1,904 bytes). Deliveries, the
    /// hot path, stay inline.
    async fn json_loop(&mut self) -> End {
        loop {
            let result = match self.next().await {
                Ok(Event::Text(text)) => Box::pin(self.json_frame(&text)).await,
                Ok(Event::Binary) => {
                    self.json_error(&ApiError::bad_request(
                        "unsupported_frame",
                        "Frames are JSON text",
                    ))
                    .await
                }
                Ok(Event::Nothing) => Ok(()),
                Ok(Event::Next(next)) => self.json_deliveries(next).await,
                Err(end) => return end,
            };
            if let Err(end) = result {
                return end;
            }
        }
    }

    async fn json_error(&mut self, error: &ApiError) -> Result<(), End> {
        self.write_json(
            json!({ "type": "error", "code": error.code(), "error": error.to_string() }),
        )
        .await
    }

    async fn json_frame(&mut self, text: &str) -> Result<(), End> {
        if text.len() > self.max_text {
            return self.json_error(&ApiError::PayloadTooLarge).await;
        }
        let frame: ClientFrame = match serde_json::from_str(text) {
            Ok(frame) => frame,
            Err(error) => {
                return self
                    .json_error(&ApiError::bad_request(
                        "invalid_frame",
                        format!("Not a frame this server understands: {error}"),
                    ))
                    .await;
            }
        };
        match frame {
            ClientFrame::Ping => self.write_json(json!({ "type": "pong" })).await,
            ClientFrame::Join { room, since } => match self.connection.join(&room, since).await {
                Ok(joined) => self.json_joined(joined).await,
                Err(error) => self.json_error(&error).await,
            },
            ClientFrame::Leave { room } => match self.connection.leave(&room) {
                Ok(()) => Ok(()),
                Err(error) => self.json_error(&error).await,
            },
            ClientFrame::Send {
                room,
                text,
                client_id,
            } => match self
                .connection
                .send(&room, &text, client_id.as_deref(), None)
                .await
            {
                // The sender sees its message like everyone in the room (if it
                // joined); a retried client_id changes nothing.
                Ok(_) => Ok(()),
                // The client_id tells the client which of its sends failed.
                Err(error) => {
                    self.write_json(json!({
                        "type": "error", "code": error.code(), "error": error.to_string(),
                        "client_id": client_id,
                    }))
                    .await
                }
            },
        }
    }

    /// The join's answer: `presence`, and `reset` when the position could not be
    /// replayed. The replayed messages follow through [`Connection::next`].
    async fn json_joined(&mut self, joined: Joined) -> Result<(), End> {
        let mut presence = serde_json::to_value(&joined.presence).expect("presence serialises");
        presence["type"] = json!("presence");
        self.write_json(presence).await?;
        if let Some(reason) = joined.reset {
            self.write_json(json!({ "type": "reset", "room": joined.room, "reason": reason }))
                .await?;
        }
        Ok(())
    }

    /// One thing for the client and what else is ready behind it (at most a batch),
    /// then one flush: a burst or a replay page leaves in few writes instead of one
    /// system call per message.
    async fn json_deliveries(&mut self, first: Next) -> Result<(), End> {
        self.json_next(first).await?;
        for _ in 1..BATCH {
            match self.connection.try_next() {
                Some(next) => self.json_next(next).await?,
                None => break,
            }
        }
        self.flush().await
    }

    /// Feeds one message's frame, or writes a notice (the caller flushes).
    async fn json_next(&mut self, next: Next) -> Result<(), End> {
        match next {
            Next::Message(message) => self.feed(message.frame.clone()).await,
            Next::Presence(change) => {
                self.write_json(serde_json::to_value(&*change).expect("presence serialises"))
                    .await
            }
            Next::Reset { room, reason } => {
                self.write_json(json!({ "type": "reset", "room": room, "reason": reason }))
                    .await
            }
        }
    }

    async fn run_plain(mut self, client_id: String) {
        let end = match Box::pin(self.plain_start(&client_id)).await {
            Ok(()) => self.plain_loop(&client_id).await,
            Err(end) => end,
        };
        Box::pin(self.finish(end)).await;
    }

    /// Joins `general` first, so that once the welcome arrives nothing sent after it
    /// can be missed.
    async fn plain_start(&mut self, client_id: &str) -> Result<(), End> {
        if let Err(error) = self.connection.join(GENERAL_ROOM, None).await {
            self.write(format!("Error: {error}").into()).await?;
            return Err(End::Close(1011, "could not join"));
        }
        self.write(format!("Welcome! You are client #{client_id}").into())
            .await
    }

    async fn plain_loop(&mut self, client_id: &str) -> End {
        loop {
            let result = match self.next().await {
                Ok(Event::Text(text)) => Box::pin(self.plain_text(client_id, &text)).await,
                Ok(Event::Binary | Event::Nothing) => Ok(()),
                Ok(Event::Next(next)) => self.plain_next(next).await,
                Err(end) => return end,
            };
            if let Err(end) = result {
                return end;
            }
        }
    }

    async fn plain_text(&mut self, client_id: &str, text: &str) -> Result<(), End> {
        if text.len() > self.max_text {
            return self
                .write(format!("Error: {}", ApiError::PayloadTooLarge).into())
                .await;
        }
        // The seed's client number travels with the message, so every plain client
        // can show it as the seed did.
        let via = json!({ "type": "chat", "client": client_id });
        match self
            .connection
            .send(GENERAL_ROOM, text, None, Some(via))
            .await
        {
            Ok(_) => Ok(()),
            Err(error) => self.write(format!("Error: {error}").into()).await,
        }
    }

    async fn plain_next(&mut self, next: Next) -> Result<(), End> {
        match next {
            Next::Message(delivered) => self.write(plain_line(&delivered.message).into()).await,
            Next::Presence(change) => {
                let verb = if change.kind == "user_joined" {
                    "joined"
                } else {
                    "left"
                };
                self.write(format!("{} {verb} the chat", change.user.name).into())
                    .await
            }
            Next::Reset { .. } => Ok(()),
        }
    }
}

/// How the plain-text chat shows a message: `Client #{id}: {text}` for one written
/// on this transport (the seed's format), `{name}: {text}` for others. Every line of
/// a multi-line text carries the prefix: a plain client shows lines, and a newline
/// followed by `Client #2: ...` would otherwise put words in client 2's mouth.
fn plain_line(message: &crate::hub::message::Message) -> String {
    let client = message
        .event
        .as_ref()
        .and_then(|e| e.get("client"))
        .and_then(|c| c.as_str());
    let prefix = match client {
        Some(client) => format!("Client #{client}: "),
        None => format!("{}: ", message.user.name),
    };
    // What text clients take for line breaks: `\n`, `\r` and Unicode's line and
    // paragraph separators (Python's `splitlines` breaks at those too).
    let lines = message
        .text
        .split(['\n', '\r', '\u{2028}', '\u{2029}'])
        .map(|line| format!("{prefix}{line}"));
    lines.collect::<Vec<_>>().join("\n")
}

enum Event {
    Text(Utf8Bytes),
    Binary,
    Nothing,
    Next(Next),
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientFrame {
    Join {
        room: String,
        since: Option<i64>,
    },
    Leave {
        room: String,
    },
    Send {
        room: String,
        text: String,
        client_id: Option<String>,
    },
    Ping,
}
