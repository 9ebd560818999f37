//! The REST side of the hub: which rooms exist, a room's history (to draw a page
//! before subscribing from its position), who is present, and the caller's
//! notifications. History answers carry `Switchboard-Position`, the id to resume from.
//! The hub reads and decides ([`crate::hub::history`]); this file parses queries and
//! writes responses.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::{Realtime, parse_position};
use crate::auth::Identity;
use crate::error::ApiError;
use crate::http::extract::{Path, Query};
use crate::hub::Window;
use crate::hub::message::{self, notification_room};

const DEFAULT_PAGE: i64 = 50;
const MAX_PAGE: i64 = 500;
/// Members listed by `GET /api/rooms/{room}/presence` per page.
const PRESENCE_PAGE: usize = 200;

pub fn router() -> Router<Realtime> {
    Router::new()
        .route("/api/rooms", get(list))
        .route("/api/rooms/{room}/messages", get(history))
        .route("/api/rooms/{room}/presence", get(presence))
        .route("/api/notifications", get(notifications))
}

/// `GET /api/rooms`: rooms with messages, by name.
async fn list(State(state): State<Realtime>, _: Identity) -> Result<Response, ApiError> {
    Ok(axum::Json(state.hub.rooms().await?).into_response())
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
    _: Identity,
    Path(room): Path<String>,
) -> Result<Response, ApiError> {
    message::check_room(&room)?;
    Ok(axum::Json(state.hub.presence(&room, PRESENCE_PAGE)).into_response())
}
