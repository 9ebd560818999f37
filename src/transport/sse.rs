//! Server-Sent Events.
//!
//! - `GET /api/rooms/{room}/events`: one room; each message is an unnamed event
//!   whose `id:` is the message id, so the browser's automatic reconnect sends
//!   `Last-Event-ID` and resumes exactly (`?since=` does the same for a first connect).
//! - `GET /api/events?rooms=a,b`: several rooms on one stream; ids carry every
//!   room's position (`a:12,b:7`), so `Last-Event-ID` resumes all of them.
//! - `GET /notifications`: the caller's notifications (mentions, account changes).
//! - `GET /stream`: once a second, a counter with live server statistics.
//!
//! Presence arrives as named events (`presence`, `user_joined`, `user_left`), a
//! position that cannot be replayed as `reset`. Streams end at shutdown and when the
//! client cannot keep up (`slow_consumer`); either way the browser reconnects and
//! resumes from its last id.
//!
//! When the credential the stream was opened with ends (logout, password change,
//! revoked token, deleted account, role change), the stream sends
//! `event: error` with `{code, error}` (the code says why) and ends; the browser's
//! reconnect with that credential then gets 401, which stops `EventSource`.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{ClientIp, Realtime, parse_position};
use crate::auth::Identity;
use crate::error::ApiError;
use crate::http::extract::{Path, Query};
use crate::hub::message::{Author, notification_room};
use crate::hub::{Connection, Joined, Next};

/// A `ping` event this often on every stream. An event, not a comment: EventSource hides
/// comments from the page, and the page treats about two missed pings as a dead
/// connection (web/static/realtime.js), so a silent drop is noticed within about 10 s.
const KEEP_ALIVE: Duration = Duration::from_secs(4);

fn keep_alive() -> KeepAlive {
    KeepAlive::new()
        .interval(KEEP_ALIVE)
        .event(Event::default().event("ping").data("{}"))
}
/// How long the browser waits before reconnecting.
const RETRY: Duration = Duration::from_secs(2);

#[derive(Deserialize)]
pub struct SinceQuery {
    since: Option<String>,
}

#[derive(Deserialize)]
pub struct RoomsQuery {
    rooms: Option<String>,
    since: Option<String>,
    /// Rooms of `rooms` followed without being counted present there (a chat page
    /// keeping the unread counts of rooms it does not show).
    watch: Option<String>,
}

/// `Last-Event-ID` (the browser's resume) wins over `?since=` (the page's start).
fn resume_from<'a>(headers: &'a HeaderMap, since: Option<&'a str>) -> Option<&'a str> {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.trim().is_empty())
        .or(since)
}

/// `GET /api/rooms/{room}/events`
pub async fn room_events(
    State(state): State<Realtime>,
    identity: Identity,
    ClientIp(ip): ClientIp,
    Path(room): Path<String>,
    Query(query): Query<SinceQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let since = parse_position(resume_from(&headers, query.since.as_deref()))?;
    let mut connection =
        state
            .hub
            .connect(Author::of(&identity.user), identity.credential.clone(), ip)?;
    let joined = connection.join(&room, since).await?;
    Ok(respond(&state, connection, vec![joined], Ids::Single))
}

/// `GET /api/events?rooms=a,b&since=a:12,b:7&watch=b`
pub async fn rooms_events(
    State(state): State<Realtime>,
    identity: Identity,
    ClientIp(ip): ClientIp,
    Query(query): Query<RoomsQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let rooms: Vec<&str> = query
        .rooms
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .collect();
    // One stream is one connection: it follows as many rooms as any connection may.
    let max_rooms = state.hub.settings().rooms_per_connection;
    if rooms.is_empty() || rooms.len() > max_rooms {
        return Err(ApiError::bad_request(
            "invalid_rooms",
            format!("Give 1-{max_rooms} rooms: ?rooms=general,random"),
        ));
    }
    let positions = parse_positions(resume_from(&headers, query.since.as_deref()))?;
    let mut connection =
        state
            .hub
            .connect(Author::of(&identity.user), identity.credential.clone(), ip)?;
    let watched: Vec<&str> = query
        .watch
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .collect();
    let mut joined = Vec::new();
    for room in rooms {
        let since = positions.iter().find(|(r, _)| r == room).map(|(_, id)| *id);
        joined.push(if watched.contains(&room) {
            connection.join_unseen(room, since).await?
        } else {
            connection.join(room, since).await?
        });
    }
    Ok(respond(&state, connection, joined, Ids::Composite))
}

/// `GET /notifications`: the caller's notification room as a stream.
pub async fn notifications_stream(
    State(state): State<Realtime>,
    identity: Identity,
    ClientIp(ip): ClientIp,
    Query(query): Query<SinceQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let room = notification_room(identity.id());
    let since = match parse_position(resume_from(&headers, query.since.as_deref()))? {
        Some(since) => since,
        // No position: from the first unread notification (see `crate::account`).
        None => state.hub.read_position(identity.id(), &room).await?,
    };
    let mut connection =
        state
            .hub
            .connect(Author::of(&identity.user), identity.credential.clone(), ip)?;
    let joined = connection.join(&room, Some(since)).await?;
    Ok(respond(&state, connection, vec![joined], Ids::Single))
}

/// `GET /stream`: `{count, timestamp, ...stats}` once a second, until shutdown.
pub async fn stats_stream(
    State(state): State<Realtime>,
    identity: Identity,
    ClientIp(ip): ClientIp,
) -> Result<Response, ApiError> {
    // A hub connection in no room: it counts toward the connection caps, and the
    // stream ends with the credential it was opened with.
    let connection =
        state
            .hub
            .connect(Author::of(&identity.user), identity.credential.clone(), ip)?;
    let shutdown = state.shutdown.clone();
    let tick = tokio::time::interval(Duration::from_secs(1));
    let events = futures_util::stream::unfold(
        (state, 0u64, tick, Some(connection)),
        move |(state, count, mut tick, connection)| {
            let shutdown = shutdown.clone();
            async move {
                let connection = connection?;
                tokio::select! {
                    _ = shutdown.cancelled() => None,
                    _ = connection.ended().cancelled() => {
                        let event = credential_ended(&connection)?;
                        Some((Ok::<_, Infallible>(event), (state, count, tick, None)))
                    }
                    _ = tick.tick() => {
                        let event = Event::default().data(stats(&state, count).to_string());
                        Some((Ok(event), (state, count + 1, tick, Some(connection))))
                    }
                }
            }
        },
    );
    Ok(Sse::new(events).keep_alive(keep_alive()).into_response())
}

/// `event: error` saying why the connection's credential ended.
fn credential_ended(connection: &Connection) -> Option<Event> {
    let reason = connection.end_reason()?;
    let error = json!({ "code": reason.code(), "error": reason.message() });
    Some(Event::default().event("error").data(error.to_string()))
}

fn stats(state: &Realtime, count: u64) -> serde_json::Value {
    use std::sync::atomic::Ordering::Relaxed;
    let hub = &state.hub;
    let now = time::OffsetDateTime::now_utc();
    json!({
        "count": count,
        "timestamp": now.unix_timestamp_nanos() as f64 / 1e9,
        "uptime_secs": state.started.elapsed().as_secs(),
        "connections": hub.stats.connections.load(Relaxed),
        "active_rooms": hub.active_rooms(),
        "messages_sent": hub.stats.messages_sent.load(Relaxed),
        "deliveries": hub.stats.deliveries.load(Relaxed),
        "slow_consumers": hub.stats.slow_consumers.load(Relaxed),
    })
}

/// `a:12,b:7` -> [(a, 12), (b, 7)]; a bare number is refused here (it names no room).
fn parse_positions(text: Option<&str>) -> Result<Vec<(String, i64)>, ApiError> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(Vec::new());
    };
    text.split(',')
        .map(|part| {
            let (room, id) = part.rsplit_once(':').ok_or(())?;
            let id: i64 = id.trim().parse().map_err(|_| ())?;
            Ok((room.trim().to_owned(), id.max(0)))
        })
        .collect::<Result<_, ()>>()
        .map_err(|()| {
            ApiError::bad_request(
                "invalid_position",
                "Positions are room:id pairs, comma-separated (a:12,b:7)",
            )
        })
}

#[derive(Clone, Copy)]
enum Ids {
    /// The message id.
    Single,
    /// Every followed room's position.
    Composite,
}

fn respond(state: &Realtime, connection: Connection, joined: Vec<Joined>, ids: Ids) -> Response {
    let mut pending = VecDeque::new();
    pending.push_back(Event::default().retry(RETRY).comment("connected"));
    let mut follower = Follower {
        overflow: connection.overflow().clone(),
        credential_ended: connection.ended().clone(),
        connection,
        shutdown: state.shutdown.clone(),
        pending,
        ids,
        written: BTreeMap::new(),
        ended: false,
    };
    // Every room's starting position first: the id of the first replayed event
    // must already say where the rooms replayed after it stand.
    for joined in &joined {
        follower.written.insert(joined.room.clone(), joined.from);
    }
    for joined in joined {
        follower.push_joined(joined);
    }
    let events = futures_util::stream::unfold(follower, |mut follower| async move {
        follower
            .next_event()
            .await
            .map(|event| (Ok::<_, Infallible>(event), follower))
    });
    Sse::new(events).keep_alive(keep_alive()).into_response()
}

/// One SSE client: its hub connection and the events waiting to be written (the
/// join's presence and resets; messages are taken from the connection one at a time,
/// as hyper asks for the next event once it has written the last).
struct Follower {
    connection: Connection,
    shutdown: CancellationToken,
    overflow: CancellationToken,
    /// Cancelled when the connection's credential ended.
    credential_ended: CancellationToken,
    pending: VecDeque<Event>,
    ids: Ids,
    /// room -> the position the events queued so far take the client to (for
    /// composite ids, which must say where *every* room stands at each event).
    written: BTreeMap<String, i64>,
    ended: bool,
}

impl Follower {
    fn push_joined(&mut self, joined: Joined) {
        self.pending.push_back(named("presence", &joined.presence));
        if let Some(reason) = joined.reset {
            self.pending.push_back(
                Event::default()
                    .event("reset")
                    .data(json!({ "room": joined.room, "reason": reason }).to_string()),
            );
        }
    }

    /// The `id:` of the event that takes `room` to `id`.
    fn event_id(&mut self, room: &str, id: i64) -> String {
        match self.ids {
            Ids::Single => id.to_string(),
            Ids::Composite => {
                self.written.insert(room.to_owned(), id);
                self.written
                    .iter()
                    .map(|(r, p)| format!("{r}:{p}"))
                    .collect::<Vec<_>>()
                    .join(",")
            }
        }
    }

    async fn next_event(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            if self.ended {
                return None;
            }
            tokio::select! {
                _ = self.shutdown.cancelled() => {
                    self.ended = true;
                    self.pending.push_back(Event::default().comment("server restarting; reconnect"));
                }
                _ = self.overflow.cancelled() => {
                    self.ended = true;
                    self.pending.push_back(Event::default().comment("slow_consumer"));
                }
                _ = self.credential_ended.cancelled() => {
                    self.ended = true;
                    self.pending.extend(credential_ended(&self.connection));
                }
                next = self.connection.next() => match next {
                    Ok(next) => self.push_next(next),
                    Err(error) => {
                        // The store failed during a replay: end the stream; the
                        // browser reconnects from its last id, which is still exact.
                        tracing::warn!(%error, "an SSE stream could not read the store");
                        self.ended = true;
                    }
                },
            }
        }
    }

    fn push_next(&mut self, next: Next) {
        let event = match next {
            Next::Message(message) => {
                let id = self.event_id(&message.message.room, message.message.id);
                Event::default().id(id).data(message.json.as_str())
            }
            Next::Presence(change) => named(change.kind, &*change),
            Next::Reset { room, reason } => Event::default()
                .event("reset")
                .data(json!({ "room": room, "reason": reason }).to_string()),
        };
        self.pending.push_back(event);
    }
}

fn named(name: &'static str, data: &impl serde::Serialize) -> Event {
    Event::default()
        .event(name)
        .data(serde_json::to_string(data).expect("events serialise"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composite_positions_parse() {
        assert_eq!(
            parse_positions(Some("a:12, b:7")).unwrap(),
            vec![("a".to_owned(), 12), ("b".to_owned(), 7)]
        );
        assert!(parse_positions(Some("12")).is_err());
        assert!(parse_positions(None).unwrap().is_empty());
    }
}
