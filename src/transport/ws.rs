//! WebSocket transports.
//!
//! `GET /ws`: JSON text frames tagged by `type` (DESIGN.md, "Realtime"). Client:
//! `join {room, since?}`, `leave {room}`, `send {room, text, client_id?}`, `ping`.
//! Server: `welcome`, `presence`, `message`, `user_joined`, `user_left`, `reset`,
//! `error {code, error}` (with the `client_id` of a failed `send`), `pong`, and
//! `duplicate` (the first stored copy, answering a `send` whose `client_id` was
//! used already).
//!
//! `GET /ws/{client_id}`: the seed's FastAPI chat, plain text both ways, in room
//! `general`: what a client writes reaches everyone as `Client #{id}: {text}`.
//!
//! Both protocols run on one pump, [`Session`], generic over the socket (any
//! `Sink` + `Stream` of frames: axum's `WebSocket`, or channels in the unit tests);
//! every write goes through one guard, and the wait for the next thing to do through
//! one flat `select!`, that end the session at shutdown, on overflow or when the
//! credential ends.
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
//!
//! Every [`super::HEARTBEAT`] (30 s) the session pings its client; a client that sent
//! nothing at all since the previous beat, not even the pong every WebSocket client
//! answers with, has vanished (a laptop shut, a dropped network, a NAT that forgot
//! it) and is closed with 4408 `heartbeat_timeout`, so it stops being counted
//! present and frees its connection within a minute.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message as Frame, Utf8Bytes, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::Response;
use futures_util::{FutureExt, Sink, SinkExt, Stream, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::encoded::{Encoded, WEBSOCKET_FRAME};
use super::{ClientIp, Heartbeat, Realtime, check_upgrade_origin};
use crate::auth::Identity;
use crate::error::ApiError;
use crate::http::extract::Path;
use crate::hub::message::{Author, GENERAL_ROOM};
use crate::hub::{Connection, Delivered, EndReason, Joined, Next};

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
const CLOSE_SILENT: u16 = 4408; // heartbeat_timeout: no frame, not even a pong, for a beat

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
    let beats = state.heartbeat.clone();
    let max_text = max_text_bytes(&state);
    Ok(configure(upgrade).on_upgrade(move |socket| async move {
        Session::new(socket, connection, shutdown, max_text, beats)
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
    let beats = state.heartbeat.clone();
    let max_text = max_text_bytes(&state);
    Ok(configure(upgrade).on_upgrade(move |socket| async move {
        Session::new(socket, connection, shutdown, max_text, beats)
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
#[derive(Debug, PartialEq)]
enum End {
    /// The socket failed, or ended without a close frame.
    Gone,
    /// The client sent a close frame: tungstenite queued the reply, which
    /// [`Session::finish`] flushes (else the client sees 1006, not its echo).
    ClientClosed,
    Close(u16, &'static str),
    /// The connection's credential ended ([`Connection::end_reason`] says why).
    Credential,
}

/// What stops a session whatever it is doing: the server shutting down, the client
/// overflowing its queue, its credential ending, a write the client does not take.
struct Stops {
    shutdown: CancellationToken,
    overflow: CancellationToken,
    /// The connection's credential ended.
    ended: CancellationToken,
    /// The heartbeat again, for writes (the session's own receiver marks the beats it
    /// answers with pings): see [`Stops::guard`].
    beats: Heartbeat,
}

impl Stops {
    /// Runs `work` unless the session must end first. The `select!` every write
    /// of the session goes through ([`Session::next`] has the same branches inline).
    /// A write still waiting after two beats is to a client that stopped reading
    /// (gone, or holding its window shut): a quiet room would never overflow its
    /// queue, so without this the session would wait, present, for ever.
    async fn guard<T>(&mut self, work: impl Future<Output = T>) -> Result<T, End> {
        let mut work = std::pin::pin!(work);
        // Most writes are done at once. Only one that waits pays for the wait's state,
        // boxed: every idle session future is as large as its largest state.
        if let Some(done) = (&mut work).now_or_never() {
            return Ok(done);
        }
        Box::pin(self.wait(work)).await
    }

    async fn wait<T>(&mut self, mut work: Pin<&mut impl Future<Output = T>>) -> Result<T, End> {
        // The first beat seen may be one from before this write (a watch reports
        // the latest change once), so a third is at least a whole beat of waiting.
        let mut beats = 0;
        loop {
            tokio::select! {
                done = &mut work => return Ok(done),
                _ = self.shutdown.cancelled() => return Err(End::Close(CLOSE_RESTART, "server restarting; reconnect")),
                _ = self.overflow.cancelled() => return Err(End::Close(CLOSE_SLOW, "slow_consumer")),
                _ = self.ended.cancelled() => return Err(End::Credential),
                Ok(()) = self.beats.changed() => {
                    beats += 1;
                    if beats == 3 {
                        return Err(End::Close(CLOSE_SILENT, "heartbeat_timeout"));
                    }
                }
            }
        }
    }
}

/// One client's session: its socket (any `Sink` + `Stream` of frames, so tests
/// drive it with channels), its hub connection, and the two protocols that can
/// run on them ([`Session::run_json`], [`Session::run_plain`]).
struct Session<S> {
    socket: S,
    connection: Connection,
    stops: Stops,
    max_text: usize,
    /// The server's heartbeat ([`super::Heartbeat`]): at each beat the session pings
    /// its client, and ends if nothing at all came from it since the last beat.
    beats: Heartbeat,
    /// Nothing came from the client since the last beat.
    silent: bool,
}

impl<S, E> Session<S>
where
    S: Sink<Frame, Error = E> + Stream<Item = Result<Frame, E>> + Unpin,
    E: std::fmt::Display,
{
    fn new(
        socket: S,
        connection: Connection,
        shutdown: CancellationToken,
        max_text: usize,
        beats: Heartbeat,
    ) -> Self {
        let mut beats = beats;
        beats.borrow_and_update(); // the next beat, not one before this session
        let stops = Stops {
            shutdown,
            overflow: connection.overflow().clone(),
            ended: connection.ended().clone(),
            beats: beats.clone(),
        };
        Self {
            socket,
            connection,
            stops,
            max_text,
            beats,
            silent: false,
        }
    }

    /// Writes one frame, giving up if the session must end meanwhile (a client
    /// that stopped reading blocks the write).
    async fn write(&mut self, text: Utf8Bytes) -> Result<(), End> {
        let written = self
            .stops
            .guard(self.socket.send(Frame::Text(text)))
            .await?;
        written.map_err(|_| End::Gone)
    }

    /// Queues one frame without flushing it (see [`Session::flush`]).
    async fn feed(&mut self, text: Utf8Bytes) -> Result<(), End> {
        let fed = self
            .stops
            .guard(self.socket.feed(Frame::Text(text)))
            .await?;
        fed.map_err(|_| End::Gone)
    }

    async fn flush(&mut self) -> Result<(), End> {
        let flushed = self.stops.guard(self.socket.flush()).await?;
        flushed.map_err(|_| End::Gone)
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
        let limit = std::time::Duration::from_secs(1);
        match end {
            End::Close(code, reason) => {
                let frame = CloseFrame {
                    code,
                    reason: reason.into(),
                };
                let _ =
                    tokio::time::timeout(limit, self.socket.send(Frame::Close(Some(frame)))).await;
            }
            End::ClientClosed => {
                let _ = tokio::time::timeout(limit, self.socket.close()).await;
            }
            End::Gone | End::Credential => {}
        }
    }

    /// The next thing to do: a client frame, something for the client, or the end.
    /// The connection is asked only once the last write is done, so a client that
    /// does not read holds up its replay instead of piling it up here.
    async fn next(&mut self) -> Result<Event, End> {
        // One flat `select!`, not the read inside [`Stops::guard`]: an idle
        // connection spends its whole life awaiting this, so its size is
        // per-connection memory, and a nested select keeps a second copy of the
        // branches' state.
        let Self {
            socket,
            connection,
            stops,
            beats,
            silent,
            ..
        } = self;
        tokio::select! {
            frame = socket.next() => {
                *silent = false;
                match frame {
                Some(Ok(Frame::Text(text))) => Ok(Event::Text(text)),
                Some(Ok(Frame::Binary(_))) => Ok(Event::Binary),
                Some(Ok(Frame::Ping(_) | Frame::Pong(_))) => Ok(Event::Nothing),
                Some(Ok(Frame::Close(_))) => Err(End::ClientClosed),
                None => Err(End::Gone),
                Some(Err(error)) => {
                    tracing::debug!(%error, "websocket read failed");
                    let error = error.to_string();
                    Err(if error.contains("too long") || error.contains("Space limit") {
                        End::Close(CLOSE_TOO_BIG, "message too big")
                    } else {
                        End::Gone
                    })
                }
            }},
            // A closed heartbeat (tests without one) disables this branch.
            Ok(()) = beats.changed() => Ok(Event::Beat),
            next = connection.next() => match next {
                Ok(next) => Ok(Event::Next(next)),
                Err(error) => {
                    tracing::warn!(%error, "a WebSocket replay could not read the store");
                    Err(End::Close(CLOSE_RETRY, "store unavailable; reconnect"))
                }
            },
            _ = stops.shutdown.cancelled() => Err(End::Close(CLOSE_RESTART, "server restarting; reconnect")),
            _ = stops.overflow.cancelled() => Err(End::Close(CLOSE_SLOW, "slow_consumer")),
            _ = stops.ended.cancelled() => Err(End::Credential),
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
                Ok(Event::Beat) => self.beat().await,
                Ok(Event::Next(next)) => self.json_deliveries(next).await,
                Err(end) => return end,
            };
            if let Err(end) = result {
                return end;
            }
        }
    }

    /// A heartbeat: a client heard from since the last one is pinged (every WebSocket
    /// client answers a ping with a pong by itself); one silent since then, pong
    /// included, is gone (a laptop shut, a network dropped) and its session ends, so
    /// it stops being counted present and frees its connection.
    async fn beat(&mut self) -> Result<(), End> {
        if self.silent {
            return Err(End::Close(CLOSE_SILENT, "heartbeat_timeout"));
        }
        self.silent = true;
        let pinged = self
            .stops
            .guard(self.socket.send(Frame::Ping(Default::default())))
            .await?;
        pinged.map_err(|_| End::Gone)
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
            ClientFrame::Join { room, since, watch } => {
                let joined = if watch {
                    self.connection.join_unseen(&room, since).await
                } else {
                    self.connection.join(&room, since).await
                };
                match joined {
                    Ok(joined) => self.json_joined(joined).await,
                    Err(error) => self.json_error(&error).await,
                }
            }
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
                // joined). A retried client_id stores nothing and announces nothing:
                // the retry gets the first copy back, as a `duplicate` (a `message`
                // would give its id twice to a connection that had it already).
                Ok(appended) if appended.duplicate => {
                    let first = appended.message.to_json();
                    self.write(format!("{{\"type\":\"duplicate\",{}", &first[1..]).into())
                        .await
                }
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
            Next::Message(message) => self.feed(message_frame(&message)).await,
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
                Ok(Event::Beat) => self.beat().await,
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

/// The `message` frame: the message's fields beside `"type": "message"`, made once
/// per message for all its subscribers ([`super::encoded`]).
fn message_frame(delivered: &Arc<Delivered>) -> Utf8Bytes {
    static FRAMES: Encoded<Utf8Bytes> = Encoded::new(WEBSOCKET_FRAME);
    FRAMES.get(delivered, |_| {
        format!("{{\"type\":\"message\",{}", &delivered.json[1..]).into()
    })
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
    /// The server's heartbeat ticked ([`Session::beat`]).
    Beat,
    Next(Next),
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientFrame {
    Join {
        room: String,
        since: Option<i64>,
        /// Follow without being counted present (a chat page keeping the unread
        /// counts of rooms it does not show): `Connection::join_unseen`.
        #[serde(default)]
        watch: bool,
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

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use std::time::Duration;

    use serde_json::Value;
    use std::sync::atomic::{AtomicBool, Ordering};

    use tokio::sync::mpsc;

    use super::*;
    use crate::hub::testing::{connect, hub, user};

    /// An in-memory socket: what the test sends arrives as client frames, and what
    /// the session writes comes out at the other end.
    struct Duplex {
        incoming: mpsc::UnboundedReceiver<Frame>,
        outgoing: mpsc::UnboundedSender<Frame>,
        /// Set: the client stopped reading, so every write waits (and nothing wakes it).
        stalled: Arc<AtomicBool>,
    }

    impl Stream for Duplex {
        type Item = Result<Frame, axum::Error>;

        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            self.incoming.poll_recv(cx).map(|frame| frame.map(Ok))
        }
    }

    impl Sink<Frame> for Duplex {
        type Error = axum::Error;

        fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            if self.stalled.load(Ordering::SeqCst) {
                Poll::Pending
            } else {
                Poll::Ready(Ok(()))
            }
        }

        fn start_send(self: Pin<&mut Self>, frame: Frame) -> Result<(), Self::Error> {
            self.outgoing.send(frame).map_err(axum::Error::new)
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }
    }

    /// The session's socket, the client's sending end and the client's receiving end.
    fn socket() -> (
        Duplex,
        mpsc::UnboundedSender<Frame>,
        mpsc::UnboundedReceiver<Frame>,
    ) {
        let (to_server, incoming) = mpsc::unbounded_channel();
        let (outgoing, from_server) = mpsc::unbounded_channel();
        let stalled = Arc::new(AtomicBool::new(false));
        let duplex = Duplex {
            incoming,
            outgoing,
            stalled,
        };
        (duplex, to_server, from_server)
    }

    async fn received(from_server: &mut mpsc::UnboundedReceiver<Frame>) -> Frame {
        tokio::time::timeout(Duration::from_secs(5), from_server.recv())
            .await
            .expect("a frame in time")
            .expect("the session is still writing")
    }

    async fn text(from_server: &mut mpsc::UnboundedReceiver<Frame>) -> String {
        match received(from_server).await {
            Frame::Text(text) => text.as_str().to_owned(),
            other => panic!("expected text, got {other:?}"),
        }
    }

    async fn json(from_server: &mut mpsc::UnboundedReceiver<Frame>) -> Value {
        serde_json::from_str(&text(from_server).await).unwrap()
    }

    fn say(to_server: &mpsc::UnboundedSender<Frame>, text: &str) {
        to_server.send(Frame::Text(text.into())).unwrap();
    }

    /// A heartbeat that never beats (its sender is gone).
    fn no_beats() -> Heartbeat {
        tokio::sync::watch::channel(()).1
    }

    /// User 1's session on `socket`, with no heartbeat and a shutdown nobody cancels.
    fn session_on(socket: Duplex, hub: &Arc<crate::hub::Hub>) -> Session<Duplex> {
        Session::new(
            socket,
            connect(hub, 1),
            CancellationToken::new(),
            1_000,
            no_beats(),
        )
    }

    #[tokio::test]
    async fn a_write_the_client_does_not_take_for_two_beats_ends_the_session() {
        let f = hub(4, 8).await;
        let (beat, beats) = tokio::sync::watch::channel(());
        let (socket, to_server, mut from_server) = socket();
        let stalled = socket.stalled.clone();
        let session = Session::new(
            socket,
            connect(&f.hub, 1),
            CancellationToken::new(),
            1_000,
            beats,
        );
        let task = tokio::spawn(session.run_json());
        assert_eq!(json(&mut from_server).await["type"], "welcome");
        say(&to_server, r#"{"type":"join","room":"lobby"}"#);
        assert_eq!(json(&mut from_server).await["type"], "presence");

        // The client stops reading just as a message comes (one, far from filling
        // its queue), and says nothing more.
        stalled.store(true, Ordering::SeqCst);
        f.hub
            .send(&user(2), "lobby", "into the void", None, None)
            .await
            .unwrap();
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert!(!task.is_finished(), "ended before the third beat");
            beat.send_replace(());
        }
        // (The close frame cannot be written either: `finish` gives up after 1 s.)
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("a session whose write waits for two beats ends")
            .unwrap();
        assert_eq!(f.hub.presence_count("lobby"), 0);
    }

    #[tokio::test]
    async fn a_client_silent_from_one_beat_to_the_next_is_gone_and_one_that_answers_stays() {
        let f = hub(4, 8).await;
        let (beat, beats) = tokio::sync::watch::channel(());
        let (socket, to_server, mut from_server) = socket();
        let shutdown = CancellationToken::new();
        let session = Session::new(socket, connect(&f.hub, 1), shutdown, 1_000, beats);
        let task = tokio::spawn(session.run_json());
        assert_eq!(json(&mut from_server).await["type"], "welcome");
        say(&to_server, r#"{"type":"join","room":"lobby"}"#);
        assert_eq!(json(&mut from_server).await["type"], "presence");
        assert_eq!(f.hub.presence_count("lobby"), 1);

        // A client that answers every ping (as every WebSocket client does) stays.
        for _ in 0..3 {
            beat.send_replace(());
            assert!(matches!(received(&mut from_server).await, Frame::Ping(_)));
            to_server.send(Frame::Pong(Default::default())).unwrap();
            // Frames are read in order: once the pong after it is answered, the
            // ping's pong has been heard.
            say(&to_server, r#"{"type":"ping"}"#);
            assert_eq!(json(&mut from_server).await["type"], "pong");
        }

        // One that goes silent is pinged once more, then closed at the next beat,
        // and is no longer counted present.
        beat.send_replace(());
        assert!(matches!(received(&mut from_server).await, Frame::Ping(_)));
        beat.send_replace(());
        match received(&mut from_server).await {
            Frame::Close(Some(close)) => assert_eq!(
                (close.code, close.reason.as_str()),
                (CLOSE_SILENT, "heartbeat_timeout")
            ),
            other => panic!("expected a close, got {other:?}"),
        }
        task.await.unwrap();
        assert_eq!(f.hub.presence_count("lobby"), 0);
    }

    #[tokio::test]
    async fn the_json_pump_welcomes_replays_sends_answers_and_closes_at_shutdown() {
        let f = hub(4, 8).await;
        for text in ["one", "two"] {
            f.hub
                .send(&user(2), "lobby", text, None, None)
                .await
                .unwrap();
        }
        let (socket, to_server, mut from_server) = socket();
        let shutdown = CancellationToken::new();
        let session = Session::new(
            socket,
            connect(&f.hub, 1),
            shutdown.clone(),
            1_000,
            no_beats(),
        );
        let task = tokio::spawn(session.run_json());

        assert_eq!(json(&mut from_server).await["type"], "welcome");
        say(&to_server, r#"{"type":"join","room":"lobby","since":0}"#);
        assert_eq!(json(&mut from_server).await["type"], "presence");
        for (id, text) in [(1, "one"), (2, "two")] {
            let message = json(&mut from_server).await;
            assert_eq!(
                (&message["type"], &message["id"], &message["text"]),
                (&"message".into(), &id.into(), &text.into())
            );
        }
        say(&to_server, r#"{"type":"ping"}"#);
        assert_eq!(json(&mut from_server).await["type"], "pong");
        say(
            &to_server,
            r#"{"type":"send","room":"lobby","text":"three"}"#,
        );
        assert_eq!(json(&mut from_server).await["id"], 3);
        say(&to_server, "not json");
        assert_eq!(json(&mut from_server).await["code"], "invalid_frame");
        say(&to_server, &format!("\"{}\"", "x".repeat(2_000)));
        assert_eq!(json(&mut from_server).await["code"], "payload_too_large");

        shutdown.cancel();
        match received(&mut from_server).await {
            Frame::Close(Some(close)) => assert_eq!(close.code, CLOSE_RESTART),
            other => panic!("expected a close, got {other:?}"),
        }
        task.await.unwrap();
    }

    /// Every idle connection holds its session's future for its whole life: its
    /// size is per-connection memory (bench/run idle), so it must not creep up.
    #[tokio::test]
    async fn an_idle_session_is_small() {
        let f = hub(4, 8).await;
        let (first, _to_server, _from_server) = socket();
        let session = session_on(first, &f.hub);
        let json = std::mem::size_of_val(&session.run_json());
        let (second, _to_server, _from_server) = socket();
        let session = session_on(second, &f.hub);
        let plain = std::mem::size_of_val(&session.run_plain("7".into()));
        eprintln!("idle session futures: json {json} bytes, plain {plain} bytes");
        // Debug build (tests); a release build makes them smaller still.
        assert!(
            json <= SESSION_BOUND,
            "the JSON session's future is {json} bytes"
        );
        assert!(
            plain <= SESSION_BOUND,
            "the plain session's future is {plain} bytes"
        );
    }

    /// See [`an_idle_session_is_small`]: 1,488 and 1,352 bytes (debug) when set,
    /// the plain one 120 bytes smaller than with the wait nested in the guard; 1,536
    /// and 1,400 with the heartbeat's wait; 1,368 and 1,448 once a write that has to
    /// wait boxes its wait ([`Stops::guard`]).
    const SESSION_BOUND: usize = 1_584;

    #[tokio::test]
    async fn the_plain_pump_speaks_lines_in_general() {
        let f = hub(4, 8).await;
        let (socket, to_server, mut from_server) = socket();
        let session = session_on(socket, &f.hub);
        let task = tokio::spawn(session.run_plain("7".into()));

        assert_eq!(text(&mut from_server).await, "Welcome! You are client #7");
        say(&to_server, "hi\nthere");
        assert_eq!(
            text(&mut from_server).await,
            "Client #7: hi\nClient #7: there"
        );
        f.hub
            .send(&user(2), GENERAL_ROOM, "from elsewhere", None, None)
            .await
            .unwrap();
        assert_eq!(text(&mut from_server).await, "u2: from elsewhere");

        // The client goes away: the session ends and leaves the room.
        drop(to_server);
        task.await.unwrap();
        assert_eq!(f.hub.presence_count(GENERAL_ROOM), 0);
    }

    #[tokio::test]
    async fn a_pump_whose_credential_ends_closes_with_the_reason() {
        let f = hub(4, 8).await;
        let (socket, _to_server, mut from_server) = socket();
        let session = session_on(socket, &f.hub);
        let task = tokio::spawn(session.run_json());
        assert_eq!(json(&mut from_server).await["type"], "welcome");

        f.hub
            .end_credential(crate::hub::Ending {
                revoked: crate::hub::Revoked::Token { id: 1 },
                reason: EndReason::TokenRevoked,
            })
            .await;
        match received(&mut from_server).await {
            Frame::Close(Some(close)) => {
                assert_eq!(
                    (close.code, close.reason.as_str()),
                    (CLOSE_CREDENTIAL, "token_revoked")
                );
            }
            other => panic!("expected a close, got {other:?}"),
        }
        task.await.unwrap();
    }
}
