//! One socket's session task: it owns the socket's hub [`Connection`], runs the
//! socket's commands in order (`join`, `message`, `join_room`, `leave_room`) and
//! drains the connection into events, until the socket, the server or the
//! credential ends it.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde_json::{Value, json};
use socketioxide::extract::SocketRef;
use socketioxide::{SendError, SocketError, SocketIo};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::admission::{Command, Kind};
use super::notices::{Notice, Notices};
use super::wire::{JoinData, MessageData, RoomData, error_body, flask_payload};
use super::{DRAIN, EMIT_PATIENCE, EMIT_RETRY, MAX_NICKNAME};
use crate::directory::model::name_characters_problem;
use crate::error::ApiError;
use crate::hub::message::{self, GENERAL_ROOM};
use crate::hub::{Connection, EndReason, Joined, Next};

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
pub(super) struct Session {
    pub(super) connection: Connection,
    pub(super) commands: mpsc::Receiver<Box<Command>>,
    pub(super) gone: CancellationToken,
    /// The `general` position given in the CONNECT `auth`.
    pub(super) since: Option<i64>,
    /// The display name given at `join`.
    pub(super) nickname: Option<String>,
}

impl Session {
    pub(super) async fn run(
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
                relayed: false,
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
                    relayed: false,
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
    /// name (a public room, or its own notifications). `Ok(true)` for a public
    /// room, whose members hear of it; the private notification room gets no
    /// notices. The join or leave itself is charged to the connection's control
    /// budget (by the hub), which therefore also bounds the notices.
    fn room_notices(&mut self, room: &str) -> Result<bool, ApiError> {
        message::check_room_for(room, self.connection.author.id)
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
        Next::Message(delivered) => out.emit("message", &*flask_payload(&delivered)).await,
        // Presence reaches Socket.IO clients as the Flask chat's own
        // `user_joined` / `user_left` (sent at `join` and disconnect).
        Next::Presence(_) => Ok(()),
        Next::Reset { room, reason } => out.reset(&room, reason).await,
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
