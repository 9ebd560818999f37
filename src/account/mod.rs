//! Your account, through the API: settings (theme, which notifications reach you),
//! your sessions (list, end one, end the others) and how far you have read your
//! notifications (the bell's unread count, marking them read). Passwords and API
//! tokens are [`crate::auth::handlers`]'; the `/account` page is [`crate::web`]'s.
//!
//! **Read positions.** Each (user, room) has the id of the last message the user has
//! read ([`crate::store::account::AccountStore::mark_read`]; issue 21 reuses it for
//! chat rooms). Marking notifications read also appends a `{"type": "read",
//! "through": N}` message, written by the user, to their own notification room: every
//! tab and device following that room hears it live, on any instance and transport,
//! and one that reconnects replays it, with nothing new in the hub. The unread count
//! skips messages the user wrote, so these markers never count as unread.

use axum::Router;
use axum::extract::State;
use axum::routing::{delete, get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::auth::handlers::delete_session;
use crate::auth::{Credential, Identity};
use crate::directory::input::SettingsInput;
use crate::directory::model::{Settings, SettingsChanges};
use crate::error::ApiError;
use crate::http::extract::{Json, Path, Query};
use crate::hub::message::{Author, notification_room};
use crate::store::account::{SESSION_ID_CHARS, SessionInfo};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/users/{id}/settings",
            get(show_settings).patch(update_settings),
        )
        .route("/api/sessions", get(list_sessions).delete(end_sessions))
        .route("/api/sessions/{id}", delete(end_one_session))
        .route("/api/notifications/unread", get(unread))
        .route("/api/notifications/read", post(mark_read))
}

/// `GET /api/users/{id}/settings`: yours, or anyone's for an admin.
async fn show_settings(
    State(state): State<AppState>,
    identity: Identity,
    Path(id): Path<i64>,
) -> Result<Json<Settings>, ApiError> {
    identity.require_self_or_admin(id)?;
    let settings = state
        .store
        .get_settings(id)
        .await?
        .ok_or_else(|| ApiError::not_found("User"))?;
    Ok(Json(settings))
}

/// `PATCH /api/users/{id}/settings {"theme"?, "notify_mentions"?,
/// "notify_admin_changes"?, "notifications"?}`: the settings after the change.
async fn update_settings(
    State(state): State<AppState>,
    identity: Identity,
    Path(id): Path<i64>,
    Json(body): Json<Map<String, Value>>,
) -> Result<Json<Settings>, ApiError> {
    identity.require_self_or_admin(id)?;
    let changes = SettingsChanges::parse(&SettingsInput::from_json(&body))?;
    Ok(Json(change_settings(&state, id, &changes).await?))
}

/// Applies a change of user `id`'s settings (the caller may); the API and the account
/// page's form share it.
pub async fn change_settings(
    state: &AppState,
    id: i64,
    changes: &SettingsChanges,
) -> Result<Settings, ApiError> {
    state
        .store
        .update_settings(id, changes)
        .await?
        .ok_or_else(|| ApiError::not_found("User"))
}

#[derive(Deserialize)]
struct OwnerQuery {
    user_id: Option<i64>,
}

/// Whose sessions a request is about: your own, or (admins) `?user_id=`'s.
fn owner(identity: &Identity, query: &OwnerQuery) -> Result<i64, ApiError> {
    match query.user_id {
        Some(id) if id != identity.id() => {
            identity.require_admin()?;
            Ok(id)
        }
        _ => Ok(identity.id()),
    }
}

/// The sessions of `user_id`, the caller's own marked.
pub async fn sessions_of(
    state: &AppState,
    identity: &Identity,
    user_id: i64,
) -> Result<Vec<SessionInfo>, ApiError> {
    let current = match &identity.credential {
        Credential::Session { id_hash } => Some(&id_hash[..SESSION_ID_CHARS]),
        Credential::Token { .. } => None,
    };
    Ok(state
        .store
        .list_sessions(user_id)
        .await?
        .into_iter()
        .map(|mut session| {
            session.current = Some(session.id.as_str()) == current;
            session
        })
        .collect())
}

/// `GET /api/sessions`: your sessions (an admin: `?user_id=`'s), most recent first.
async fn list_sessions(
    State(state): State<AppState>,
    identity: Identity,
    Query(query): Query<OwnerQuery>,
) -> Result<Json<Vec<SessionInfo>>, ApiError> {
    let user_id = owner(&identity, &query)?;
    Ok(Json(sessions_of(&state, &identity, user_id).await?))
}

#[derive(Serialize)]
pub struct SessionsEnded {
    sessions_ended: usize,
}

/// Ends every session of `user_id` but the caller's own; how many ended. Each one's
/// realtime connections end with it.
pub async fn end_other_sessions(
    state: &AppState,
    identity: &Identity,
    user_id: i64,
) -> Result<usize, ApiError> {
    let mut ended = 0;
    for session in sessions_of(state, identity, user_id).await? {
        if session.current {
            continue;
        }
        if let Some(hash) = state.store.find_session_hash(user_id, &session.id).await? {
            delete_session(state, hash).await?;
            ended += 1;
        }
    }
    Ok(ended)
}

/// `DELETE /api/sessions`: ends your other sessions (an admin: all of `?user_id=`'s).
async fn end_sessions(
    State(state): State<AppState>,
    identity: Identity,
    Query(query): Query<OwnerQuery>,
) -> Result<Json<SessionsEnded>, ApiError> {
    let user_id = owner(&identity, &query)?;
    let sessions_ended = end_other_sessions(&state, &identity, user_id).await?;
    Ok(Json(SessionsEnded { sessions_ended }))
}

/// Ends session `id` of `user_id` (the caller may); 404 when it has no such session.
pub async fn end_session_of(state: &AppState, user_id: i64, id: &str) -> Result<(), ApiError> {
    let hash = if id.len() == SESSION_ID_CHARS && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        state.store.find_session_hash(user_id, id).await?
    } else {
        None
    };
    let hash = hash.ok_or_else(|| ApiError::not_found("Session"))?;
    delete_session(state, hash).await
}

/// `DELETE /api/sessions/{id}`: ends one session of yours (an admin: `?user_id=`'s).
async fn end_one_session(
    State(state): State<AppState>,
    identity: Identity,
    Path(id): Path<String>,
    Query(query): Query<OwnerQuery>,
) -> Result<Json<Value>, ApiError> {
    let user_id = owner(&identity, &query)?;
    end_session_of(&state, user_id, &id).await?;
    Ok(Json(json!({"message": "Session ended"})))
}

/// How far a user has read a room.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ReadState {
    pub room: String,
    /// The id of the last message read (0: none).
    pub read_id: i64,
    /// The id of the room's newest message.
    pub last_id: i64,
    /// Messages after `read_id` written by someone else.
    pub unread: i64,
}

/// Where `identity` stands in their notification room.
pub async fn notification_state(
    state: &AppState,
    identity: &Identity,
) -> Result<ReadState, ApiError> {
    let room = notification_room(identity.id());
    let last_id = state.hub.position(&room).await?.last_id;
    let read_id = state.store.read_position(identity.id(), &room).await?;
    let unread = state
        .store
        .count_unread(identity.id(), &room, read_id)
        .await?;
    Ok(ReadState {
        room,
        read_id,
        last_id,
        unread,
    })
}

/// `GET /api/notifications/unread`: the bell's count.
async fn unread(
    State(state): State<AppState>,
    identity: Identity,
) -> Result<Json<ReadState>, ApiError> {
    Ok(Json(notification_state(&state, &identity).await?))
}

/// `POST /api/notifications/read {"through"?: N}`: marks your notifications read up to
/// N (default: all of them), on every tab and device (see the module doc).
async fn mark_read(
    State(state): State<AppState>,
    identity: Identity,
    Json(body): Json<Map<String, Value>>,
) -> Result<Json<ReadState>, ApiError> {
    let through = read_through(&body)?;
    Ok(Json(read_notifications(&state, &identity, through).await?))
}

/// The body of `POST /api/notifications/read`: `through`, a notification id (absent
/// or `null`: all of them); no other field.
fn read_through(body: &Map<String, Value>) -> Result<Option<i64>, ApiError> {
    let through = match body.get("through") {
        None | Some(Value::Null) => None,
        Some(value) => match crate::http::extract::whole_number(value).filter(|n| *n >= 0) {
            Some(n) => Some(n),
            None => {
                return Err(ApiError::validation(
                    "through",
                    "must be a notification id (a whole number, 0 or more)",
                ));
            }
        },
    };
    if let Some(field) = body.keys().find(|k| k.as_str() != "through") {
        return Err(ApiError::validation(
            field,
            "is not a field of this request",
        ));
    }
    Ok(through)
}

/// Marks `identity`'s notifications read through `through` (all when `None`) and
/// tells their other tabs; the state after.
pub async fn read_notifications(
    state: &AppState,
    identity: &Identity,
    through: Option<i64>,
) -> Result<ReadState, ApiError> {
    let before = notification_state(state, identity).await?;
    let through = through.unwrap_or(before.last_id).min(before.last_id);
    if through <= before.read_id {
        return Ok(before);
    }
    let room = &before.room;
    let now_ms = crate::timefmt::now().unix_timestamp_nanos() / 1_000_000;
    let now_ms = now_ms as i64;
    state
        .store
        .mark_read(identity.id(), room, through, now_ms)
        .await?;
    let marker = state
        .hub
        .notify(
            identity.id(),
            &Author::of(&identity.user),
            format!("Read through #{through}"),
            json!({"type": "read", "through": through}),
        )
        .await?;
    // Everything was read: the marker too, so a stream opened later from the read
    // position does not start with it.
    if let Some(marker) = marker.filter(|_| through == before.last_id) {
        state
            .store
            .mark_read(identity.id(), room, marker.id, now_ms)
            .await?;
    }
    notification_state(state, identity).await
}
