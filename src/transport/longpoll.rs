//! HTTP long polling, *compat* with the seed's Flask example.
//!
//! `GET /api/poll?room=general&last_id=N&timeout=30` answers with the array of
//! messages after N as soon as there is one: immediately when the log already has
//! them, otherwise when the hub announces one (the request waits on its queue, never
//! in a sleep loop), or `[]` at the timeout or at shutdown; a position that cannot
//! be replayed is a 410. The position travels in the request, so any instance can
//! answer any poll. The waiting and the reset rule are the hub's
//! ([`crate::hub::Hub::poll`]); this file parses and answers.
//!
//! `POST /api/send {text, room?, client_id?}` -> 201 and the stored message (200
//! with the first copy when the same `client_id` was sent before).

use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{ClientIp, Realtime, parse_position};
use crate::auth::Identity;
use crate::error::ApiError;
use crate::http::extract::{Json, Query};
use crate::hub::Polled;
use crate::hub::message::{Author, GENERAL_ROOM, Message};

/// The most messages one poll returns; the client polls again from the last.
const MAX_BATCH: i64 = 100;
const DEFAULT_TIMEOUT_SECS: u64 = 30;
const MAX_TIMEOUT_SECS: u64 = 60;

#[derive(Deserialize)]
pub struct PollQuery {
    room: Option<String>,
    last_id: Option<String>,
    timeout: Option<String>,
}

/// `GET /api/poll`
pub async fn poll(
    State(state): State<Realtime>,
    identity: Identity,
    ClientIp(ip): ClientIp,
    Query(query): Query<PollQuery>,
) -> Result<Response, ApiError> {
    let room = query.room.as_deref().unwrap_or(GENERAL_ROOM);
    // Which rooms the caller may poll is the hub's rule (`Hub::poll`).
    let last_id = parse_position(query.last_id.as_deref())?.unwrap_or(0);
    let timeout = match query.timeout.as_deref().map(str::trim) {
        None | Some("") => DEFAULT_TIMEOUT_SECS,
        Some(t) => t
            .parse::<f64>()
            .map_err(|_| ApiError::bad_request("invalid_query", "timeout is a number of seconds"))?
            .clamp(0.0, MAX_TIMEOUT_SECS as f64) as u64,
    };

    let polled = state
        .hub
        .poll(
            Author::of(&identity.user),
            identity.credential.clone(),
            ip,
            room,
            last_id,
            MAX_BATCH,
            Duration::from_secs(timeout),
        )
        .await?;
    match polled {
        Polled::Messages(messages) => Ok(answer(messages)),
        Polled::Reset { position, reason } => Err(reset(position, reason)),
    }
}

fn answer(messages: Vec<Message>) -> Response {
    let mut response = axum::Json(messages).into_response();
    // Each poll's answer is for that moment only.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// 410 Gone: the position is older than retention, or ahead of the log (a log that
/// is not the one the client read). The client reloads the room and polls from
/// `position`; the message says which case it is.
fn reset(position: i64, reason: &str) -> ApiError {
    let why = if reason == "position_ahead" {
        "This position is beyond the room's newest message"
    } else {
        "Messages after this position are no longer kept"
    };
    ApiError::Gone {
        code: "reset",
        message: format!("{why}; reload the room and poll from last_id={position}"),
    }
}

#[derive(Deserialize)]
pub struct SendBody {
    text: Option<String>,
    room: Option<String>,
    client_id: Option<String>,
}

/// `POST /api/send`
pub async fn send(
    State(state): State<Realtime>,
    identity: Identity,
    Json(body): Json<SendBody>,
) -> Result<Response, ApiError> {
    let room = body.room.as_deref().unwrap_or(GENERAL_ROOM);
    let text = body
        .text
        .as_deref()
        .ok_or_else(|| ApiError::validation("text", "is required"))?;
    let appended = state
        .hub
        .send(
            &Author::of(&identity.user),
            room,
            text,
            body.client_id.as_deref(),
            None,
        )
        .await?;
    let status = if appended.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, axum::Json(appended.message)).into_response())
}
