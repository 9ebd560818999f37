//! The REST side of the hub: which rooms exist, a room's history (to draw a page
//! before subscribing from its position), who is present, and the caller's
//! notifications. History answers carry `Switchboard-Position`, the id to resume from.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};

use super::parse_position;
use crate::AppState;
use crate::auth::Identity;
use crate::error::ApiError;
use crate::http::extract::{Path, Query};
use crate::hub::message::{self, Message, notification_room};

const DEFAULT_PAGE: i64 = 50;
const MAX_PAGE: i64 = 500;
/// Members listed by `GET /api/rooms/{room}/presence` per page.
const PRESENCE_PAGE: usize = 200;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/rooms", get(list))
        .route("/api/rooms/{room}/messages", get(history))
        .route("/api/rooms/{room}/presence", get(presence))
        .route("/api/notifications", get(notifications))
}

#[derive(Serialize)]
struct RoomInfo {
    name: String,
    last_id: i64,
    /// Members present (on every instance, when they share a Redis).
    present: usize,
}

/// `GET /api/rooms`: rooms with messages, by name.
async fn list(State(state): State<AppState>, _: Identity) -> Result<Response, ApiError> {
    let rooms: Vec<RoomInfo> = state
        .store
        .list_rooms()
        .await?
        .into_iter()
        .map(|room| RoomInfo {
            present: state.hub.presence(&room.name, 0).count,
            name: room.name,
            last_id: room.last_id,
        })
        .collect();
    Ok(axum::Json(rooms).into_response())
}

#[derive(Deserialize)]
pub struct HistoryQuery {
    since: Option<String>,
    before: Option<String>,
    limit: Option<i64>,
}

/// `GET /api/rooms/{room}/messages`: after `since` (oldest first, for catching up),
/// or the newest `limit` (before `before`, for scrolling back).
async fn history(
    State(state): State<AppState>,
    _: Identity,
    Path(room): Path<String>,
    Query(query): Query<HistoryQuery>,
) -> Result<Response, ApiError> {
    message::check_room(&room)?;
    read_room(&state, &room, &query).await
}

/// `GET /api/notifications`: the caller's notifications, as `history` reads a room;
/// with neither `since` nor `before`, from the first unread one (after the caller's
/// read position, see [`crate::account`]).
async fn notifications(
    State(state): State<AppState>,
    identity: Identity,
    Query(mut query): Query<HistoryQuery>,
) -> Result<Response, ApiError> {
    let room = notification_room(identity.id());
    if query.since.is_none() && query.before.is_none() {
        let read = state.store.read_position(identity.id(), &room).await?;
        query.since = Some(read.to_string());
    }
    read_room(&state, &room, &query).await
}

async fn read_room(
    state: &AppState,
    room: &str,
    query: &HistoryQuery,
) -> Result<Response, ApiError> {
    let limit = match query.limit {
        None => DEFAULT_PAGE,
        Some(n) if n >= 1 => n.min(MAX_PAGE),
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                "limit must be at least 1",
            ));
        }
    };
    // The room's position is read before the page, so the page cannot miss a
    // message the position counts; the header is where to subscribe from.
    let position = state.hub.position(room).await?.last_id;
    let newest_in_page = |messages: &[Message]| messages.last().map_or(0, |m| m.id);
    // Both are checked, whichever is used: a malformed `before` beside a `since` is
    // still the client's mistake to hear about.
    let before = parse_position(query.before.as_deref())?;
    let (messages, resume_from) = match parse_position(query.since.as_deref())? {
        Some(since) => {
            let messages = state.store.messages_after(room, since, limit).await?;
            // A full page: more may follow; continue from its last message.
            let resume = if messages.len() as i64 == limit {
                newest_in_page(&messages)
            } else {
                position.max(newest_in_page(&messages)).max(since)
            };
            (messages, resume)
        }
        None => {
            let messages = state.store.latest_messages(room, before, limit).await?;
            let resume = position.max(newest_in_page(&messages));
            (messages, resume)
        }
    };
    let mut response = axum::Json(messages).into_response();
    response
        .headers_mut()
        .insert("switchboard-position", HeaderValue::from(resume_from));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `GET /api/rooms/{room}/presence`: who is in the room (exact count, a page of names).
async fn presence(
    State(state): State<AppState>,
    _: Identity,
    Path(room): Path<String>,
) -> Result<Response, ApiError> {
    message::check_room(&room)?;
    Ok(axum::Json(state.hub.presence(&room, PRESENCE_PAGE)).into_response())
}
