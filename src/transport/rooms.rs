//! The REST side of the hub: the caller's rooms (with read state), opening or
//! creating a room and a direct message, leaving one, read positions, a room's
//! history (to draw a page before subscribing from its position), who is present,
//! and the caller's notifications. History answers carry `Switchboard-Position`, the id to resume from.
//! The hub reads and decides ([`crate::hub::history`]); this file parses queries and
//! writes responses.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{Realtime, parse_position};
use crate::auth::Identity;
use crate::error::ApiError;
use crate::http::extract::{Json, Path, Query, whole_number};
use crate::hub::Window;
use crate::hub::message::{self, Author, notification_room};
use crate::hub::room_list::Opened;

const DEFAULT_PAGE: i64 = 50;
const MAX_PAGE: i64 = 500;
/// Members listed by `GET /api/rooms/{room}/presence` per page.
const PRESENCE_PAGE: usize = 200;

pub fn router() -> Router<Realtime> {
    Router::new()
        .route("/api/rooms", get(list).post(open))
        .route("/api/rooms/direct", post(open_direct))
        .route("/api/rooms/{room}/read", get(read_state).post(mark_read))
        .route("/api/rooms/{room}/membership", delete(leave))
        .route("/api/rooms/{room}/messages", get(history))
        .route("/api/rooms/{room}/presence", get(presence))
        .route("/api/notifications", get(notifications))
}

/// `GET /api/rooms`: the rooms the caller may see, by name, with their read state;
/// `Switchboard-Position` is where the created-rooms log (`rooms`) stood and
/// `Switchboard-Notifications-Position` where the caller's notification room stood,
/// to follow both from (see [`crate::hub::room_list`]).
async fn list(State(state): State<Realtime>, identity: Identity) -> Result<Response, ApiError> {
    let list = state.hub.room_list(&Author::of(&identity.user)).await?;
    let mut response = axum::Json(list.rooms).into_response();
    let headers = response.headers_mut();
    headers.insert("switchboard-position", HeaderValue::from(list.position));
    headers.insert(
        "switchboard-notifications-position",
        HeaderValue::from(list.notifications_position),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The one field of a body, refusing any other.
fn only_field<'a>(body: &'a Map<String, Value>, name: &str) -> Result<Option<&'a Value>, ApiError> {
    if let Some(field) = body.keys().find(|k| k.as_str() != name) {
        return Err(ApiError::validation(
            field,
            "is not a field of this request",
        ));
    }
    Ok(body.get(name).filter(|v| !v.is_null()))
}

fn opened(opened: Opened) -> Response {
    let status = if opened.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    (status, axum::Json(opened)).into_response()
}

/// `POST /api/rooms {"name"}`: opens the room (without regard to case) or creates
/// it (201); either way it stays in the caller's list until they leave it.
async fn open(
    State(state): State<Realtime>,
    identity: Identity,
    Json(body): Json<Map<String, Value>>,
) -> Result<Response, ApiError> {
    let name = match only_field(&body, "name")? {
        Some(Value::String(name)) => name.trim(),
        Some(_) => return Err(ApiError::validation("name", "must be a string")),
        None => return Err(ApiError::validation("name", "is required")),
    };
    let user = Author::of(&identity.user);
    Ok(opened(state.hub.open_room(&user, name).await?))
}

/// `POST /api/rooms/direct {"user_id"}`: the caller's direct-message room with that
/// person (201 when this made it).
async fn open_direct(
    State(state): State<Realtime>,
    identity: Identity,
    Json(body): Json<Map<String, Value>>,
) -> Result<Response, ApiError> {
    let other = match only_field(&body, "user_id")? {
        Some(value) => whole_number(value)
            .ok_or_else(|| ApiError::validation("user_id", "must be a user id"))?,
        None => return Err(ApiError::validation("user_id", "is required")),
    };
    let user = Author::of(&identity.user);
    Ok(opened(state.hub.open_direct(&user, other).await?))
}

/// `DELETE /api/rooms/{room}/membership`: takes the room out of the caller's list.
async fn leave(
    State(state): State<Realtime>,
    identity: Identity,
    Path(room): Path<String>,
) -> Result<Response, ApiError> {
    if !state
        .hub
        .leave_room(&Author::of(&identity.user), &room)
        .await?
    {
        return Err(ApiError::not_found("Room in your list"));
    }
    Ok(axum::Json(json!({"message": "Left the room"})).into_response())
}

/// `GET /api/rooms/{room}/read`: how far the caller has read the room.
async fn read_state(
    State(state): State<Realtime>,
    identity: Identity,
    Path(room): Path<String>,
) -> Result<Response, ApiError> {
    let read = state
        .hub
        .room_read(&Author::of(&identity.user), &room)
        .await?;
    Ok(axum::Json(read).into_response())
}

/// `POST /api/rooms/{room}/read {"through"?: N}`: marks the room read up to message
/// N (default: all of it), on every tab and device of the caller.
async fn mark_read(
    State(state): State<Realtime>,
    identity: Identity,
    Path(room): Path<String>,
    Json(body): Json<Map<String, Value>>,
) -> Result<Response, ApiError> {
    let through = match only_field(&body, "through")? {
        None => None,
        Some(value) => Some(whole_number(value).filter(|n| *n >= 0).ok_or_else(|| {
            ApiError::validation(
                "through",
                "must be a message id (a whole number, 0 or more)",
            )
        })?),
    };
    let user = Author::of(&identity.user);
    let read = state.hub.mark_room_read(&user, &room, through).await?;
    Ok(axum::Json(read).into_response())
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
    State(state): State<Realtime>,
    identity: Identity,
    Path(room): Path<String>,
    Query(query): Query<HistoryQuery>,
) -> Result<Response, ApiError> {
    message::check_room_for(&room, identity.id())?;
    read_room(&state, &room, &query).await
}

/// `GET /api/notifications`: the caller's notifications, as `history` reads a room;
/// with neither `since` nor `before`, from the first unread one (after the caller's
/// read position, see [`crate::account`]).
async fn notifications(
    State(state): State<Realtime>,
    identity: Identity,
    Query(mut query): Query<HistoryQuery>,
) -> Result<Response, ApiError> {
    let room = notification_room(identity.id());
    if query.since.is_none() && query.before.is_none() {
        let read = state.hub.read_position(identity.id(), &room).await?;
        query.since = Some(read.to_string());
    }
    read_room(&state, &room, &query).await
}

async fn read_room(
    state: &Realtime,
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
    // Both are checked, whichever is used: a malformed `before` beside a `since` is
    // still the client's mistake to hear about.
    let before = parse_position(query.before.as_deref())?;
    let window = match parse_position(query.since.as_deref())? {
        Some(since) => Window::After(since),
        None => Window::Latest { before },
    };
    let history = state.hub.history(room, window, limit).await?;
    let mut response = axum::Json(history.messages).into_response();
    response.headers_mut().insert(
        "switchboard-position",
        HeaderValue::from(history.resume_from),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `GET /api/rooms/{room}/presence`: who is in the room (exact count, a page of names).
async fn presence(
    State(state): State<Realtime>,
    identity: Identity,
    Path(room): Path<String>,
) -> Result<Response, ApiError> {
    message::check_room_for(&room, identity.id())?;
    Ok(axum::Json(state.hub.presence(&room, PRESENCE_PAGE)).into_response())
}
