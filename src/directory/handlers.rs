//! HTTP handlers of the directory. Shapes marked *compat* in DESIGN.md are fixed:
//! the list is a bare JSON array (pagination in headers), delete answers
//! `{"message": ...}`, autocomplete is an array of strings.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::model::{self, Profile, User, match_key};
use super::search::rank_users;
use crate::AppState;
use crate::auth::{Admin, Credential, Identity, password};
use crate::directory::events::{Change, event_of};
use crate::error::ApiError;
use crate::http::extract::{Json, Path, Query};
use crate::hub::message::{Author, DIRECTORY_ROOM};
use crate::hub::{EndReason, Ending, Revoked};
use crate::store::{NewPassword, UserPage};

pub const DEFAULT_PAGE: i64 = 50;
pub const MAX_PAGE: i64 = 500;
const DEFAULT_SUGGESTIONS: i64 = 5;
const MAX_SUGGESTIONS: i64 = 20;
/// Autocomplete stays quiet below this many characters: one letter matches too much
/// to help anyone.
const MIN_SUGGEST_CHARS: usize = 2;
const DEFAULT_SEARCH_RESULTS: i64 = 20;
const MAX_SEARCH_RESULTS: i64 = 100;

#[derive(Deserialize)]
pub struct ListParams {
    search: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

/// The cursor is opaque to clients: today the last id seen, base64url'd so nobody
/// builds one by hand and we stay free to change what is inside.
fn encode_cursor(last_id: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("u{last_id}"))
}

fn decode_cursor(cursor: &str) -> Result<i64, ApiError> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.strip_prefix('u')?.parse().ok())
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_cursor",
                "The cursor is not one this server gave out",
            )
        })
}

/// `limit` within `1..=max`: above the maximum it is lowered (as GitHub's `per_page`
/// is); zero or less is a mistake worth a 400.
fn page_size(limit: Option<i64>, default: i64, max: i64) -> Result<i64, ApiError> {
    match limit {
        None => Ok(default),
        Some(n) if n < 1 => Err(ApiError::bad_request(
            "invalid_query",
            "limit must be at least 1",
        )),
        Some(n) => Ok(n.min(max)),
    }
}

/// A needle with a control character in it is a 400: no name or email holds one, and
/// a NUL cannot even reach the indexes (FTS5 reads it as the end of its query string,
/// PostgreSQL refuses it in text), which made it a 500.
fn check_needle(text: &str, parameter: &str) -> Result<(), ApiError> {
    if text.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("{parameter} must not contain control characters"),
        ));
    }
    Ok(())
}

/// The match key of a search needle, trimmed; `None` when nothing is left.
fn search_key(text: Option<&str>, parameter: &str) -> Result<Option<String>, ApiError> {
    let Some(text) = text.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    check_needle(text, parameter)?;
    Ok(Some(match_key(text)))
}

/// One page of the directory as the list shows it: the users, and the cursor of the
/// next page (`None` on the last page). Shared by the JSON list and the HTML page, so
/// both page the same way.
pub struct ListPage {
    pub users: Vec<User>,
    pub next_cursor: Option<String>,
    /// The number of users, given only for the unfiltered list (it is cheap there).
    pub total: Option<i64>,
}

/// Reads one page: `search` (trimmed, case-insensitive), after `cursor`, `limit` rows.
pub async fn list_page(
    state: &AppState,
    search: Option<&str>,
    cursor: Option<&str>,
    limit: i64,
) -> Result<ListPage, ApiError> {
    // A blank cursor (`?cursor=`) is the first page, as a blank search is no search.
    let after_id = cursor
        .filter(|c| !c.trim().is_empty())
        .map(decode_cursor)
        .transpose()?
        .unwrap_or(0);
    let search = search_key(search, "search")?;
    // One extra row says whether a next page exists, so the last page has no link.
    let mut users = state
        .store
        .list_users(&UserPage {
            search: search.clone(),
            after_id,
            limit: limit + 1,
        })
        .await?;
    let more = users.len() as i64 > limit;
    users.truncate(limit as usize);
    let next_cursor = match (more, users.last()) {
        (true, Some(last)) => Some(encode_cursor(last.id)),
        _ => None,
    };
    let total = match search {
        None => Some(state.store.count_users().await?),
        Some(_) => None,
    };
    Ok(ListPage {
        users,
        next_cursor,
        total,
    })
}

/// `GET /api/users?search=&limit=&cursor=` (*compat*: a JSON array). The next page is
/// in `Link: <...>; rel="next"`, absent on the last page; `X-Total-Count` is given for
/// the unfiltered list.
pub async fn list(
    State(state): State<AppState>,
    Query(params): Query<ListParams>,
) -> Result<Response, ApiError> {
    let limit = page_size(params.limit, DEFAULT_PAGE, MAX_PAGE)?;
    // Read before the page, so no change the page misses is older than the
    // position (a page may already show a later change; events are idempotent).
    let position = state.hub.position(DIRECTORY_ROOM).await?.last_id;
    let page = list_page(
        &state,
        params.search.as_deref(),
        params.cursor.as_deref(),
        limit,
    )
    .await?;

    let mut headers = HeaderMap::new();
    if let Some(cursor) = page.next_cursor {
        let mut query = vec![("limit", limit.to_string())];
        if let Some(search) = params
            .search
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            query.push(("search", search.to_owned()));
        }
        query.push(("cursor", cursor));
        let query = serde_urlencoded::to_string(&query).expect("strings always encode");
        if let Ok(link) = HeaderValue::from_str(&format!("</api/users?{query}>; rel=\"next\"")) {
            headers.insert(header::LINK, link);
        }
    }
    if let Some(total) = page.total {
        headers.insert("x-total-count", HeaderValue::from(total));
    }
    // Where to subscribe to the hub's `directory` room to follow this list live.
    headers.insert("switchboard-position", HeaderValue::from(position));
    Ok((headers, Json(page.users)).into_response())
}

pub async fn show(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<User>, ApiError> {
    let user = state.store.get_user(id).await?;
    user.map(Json).ok_or_else(|| ApiError::not_found("User"))
}

/// `POST /api/users` -> 201, `Location`, the user. Admins only; `role` and `password`
/// may be given.
pub async fn create(
    State(state): State<AppState>,
    Admin(identity): Admin,
    Json(body): Json<Map<String, Value>>,
) -> Result<Response, ApiError> {
    let user = create_user(&state, &identity, &body).await?;
    let location = HeaderValue::from_str(&format!("/api/users/{}", user.id))
        .expect("digits are a valid header");
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(user),
    )
        .into_response())
}

/// Validates and inserts a user from a JSON-like object (the caller has checked that
/// an admin asks). Shared by the API and the HTML form. Open pages see the new entry
/// through the hub's `directory` room.
pub async fn create_user(
    state: &AppState,
    identity: &Identity,
    body: &Map<String, Value>,
) -> Result<User, ApiError> {
    let (mut new_user, given_password) = model::new_user_from_json(body)?;
    if let Some(clear) = given_password {
        let account = password::Account {
            name: &new_user.name,
            email: &new_user.email,
        };
        state
            .auth
            .password_policy
            .check_field(&clear, account, "password")?;
        new_user.password_hash = Some(password::hash(clear).await.map_err(ApiError::internal)?);
    }
    let (user, event) = state
        .store
        .insert_user(
            &new_user,
            event_of(Change::Created, Author::of(&identity.user)),
        )
        .await?;
    state.hub.publish(event).await;
    Ok(user)
}

/// `PUT` and `PATCH /api/users/{id}`: both partial (the seed's PUT updates only the
/// fields given, and clients written for it rely on that). Members may change their
/// own name and email; roles and passwords are set by admins (members change their own
/// password through `/api/auth/password`, which asks for the current one).
pub async fn update(
    State(state): State<AppState>,
    identity: Identity,
    Path(id): Path<i64>,
    Json(body): Json<Map<String, Value>>,
) -> Result<Json<User>, ApiError> {
    update_user(&state, &identity, id, &body).await.map(Json)
}

/// The rules of [`update`], for the API and the HTML form alike.
pub async fn update_user(
    state: &AppState,
    identity: &Identity,
    id: i64,
    body: &Map<String, Value>,
) -> Result<User, ApiError> {
    identity.require_self_or_admin(id)?;
    let (changes, given_password) = model::changes_from_json(body)?;
    if changes.role.is_some() || given_password.is_some() {
        identity.require_admin()?;
    }
    let current = state
        .store
        .get_user(id)
        .await?
        .ok_or_else(|| ApiError::not_found("User"))?;
    let new_password = match given_password {
        Some(clear) => {
            // Judged against the name and email the account will have.
            let account = password::Account {
                name: changes.name.as_deref().unwrap_or(&current.name),
                email: changes.email.as_deref().unwrap_or(&current.email),
            };
            state
                .auth
                .password_policy
                .check_field(&clear, account, "password")?;
            let hash = password::hash(clear).await.map_err(ApiError::internal)?;
            Some(NewPassword {
                hash,
                // An admin resetting their own password with a token keeps that token.
                keep_token: match identity.credential {
                    Credential::Token { id: token } if identity.id() == id => Some(token),
                    _ => None,
                },
            })
        }
        None => None,
    };
    if changes.is_empty() && new_password.is_none() {
        return Ok(current);
    }
    let old_role = current.role;
    let actor = Author::of(&identity.user);
    // One transaction: the changes, the password, the end of the old credentials,
    // and the last-admin rule.
    let update = state
        .store
        .update_user(
            id,
            &changes,
            new_password.as_ref(),
            event_of(Change::Updated, actor.clone()),
        )
        .await?
        .ok_or_else(|| ApiError::not_found("User"))?;
    if let Some(event) = update.event {
        state.hub.publish(event).await;
    }
    if update.user.role != old_role {
        // Realtime connections were authorized with the old role: they end, and
        // reconnect with the new one.
        state
            .hub
            .end_credential(Ending {
                revoked: Revoked::User { user_id: id },
                reason: EndReason::RoleChanged,
            })
            .await;
    }
    if let Some(ended) = &update.ended {
        crate::auth::credentials_ended(state, ended, "password set by an admin").await;
    }
    if identity.id() != id {
        tell_about_admin_change(state, &actor, &update.user, new_password.is_some()).await;
    }
    Ok(update.user)
}

/// A notification to a user whose account an admin changed. Logged, not returned,
/// when it fails: the change itself is done.
async fn tell_about_admin_change(state: &AppState, admin: &Author, user: &User, password: bool) {
    let text = if password {
        format!("{} changed your account and set a new password", admin.name)
    } else {
        format!("{} changed your account", admin.name)
    };
    let event = serde_json::json!({ "type": "account_changed", "user": user });
    if let Err(error) = state.hub.notify(user.id, admin, text, event).await {
        tracing::warn!(%error, "storing an account-change notification failed");
    }
}

#[derive(Serialize)]
pub struct Message {
    message: &'static str,
}

/// `DELETE /api/users/{id}` (*compat*: `{"message": "User deleted successfully"}`).
/// Admins only, and never the last admin.
pub async fn remove(
    State(state): State<AppState>,
    Admin(identity): Admin,
    Path(id): Path<i64>,
) -> Result<Json<Message>, ApiError> {
    delete_user(&state, &identity, id).await?;
    Ok(Json(Message {
        message: "User deleted successfully",
    }))
}

/// Deletes a user, never the last admin (the caller has checked that an admin asks).
pub async fn delete_user(state: &AppState, identity: &Identity, id: i64) -> Result<(), ApiError> {
    // The store refuses to delete the last admin, inside the delete's transaction.
    let event = state
        .store
        .delete_user(id, event_of(Change::Deleted, Author::of(&identity.user)))
        .await?
        .ok_or_else(|| ApiError::not_found("User"))?;
    state
        .hub
        .end_credential(Ending {
            revoked: Revoked::User { user_id: id },
            reason: EndReason::AccountDeleted,
        })
        .await;
    state.hub.publish(event).await;
    Ok(())
}

pub async fn profile(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<Profile>, ApiError> {
    let user = state
        .store
        .get_user(id)
        .await?
        .ok_or_else(|| ApiError::not_found("User"))?;
    let settings = state
        .store
        .get_settings(id)
        .await?
        .ok_or_else(|| ApiError::not_found("User"))?;
    let posts = state.store.count_posts(id).await?;
    Ok(Json(Profile::new(&user, settings, posts)))
}

#[derive(Deserialize)]
pub struct SuggestParams {
    q: Option<String>,
    limit: Option<i64>,
}

/// `GET /api/autocomplete?q=` (*compat*): up to 5 names starting with `q`, `[]` when
/// `q` has fewer than two characters.
pub async fn autocomplete(
    State(state): State<AppState>,
    _: Identity,
    Query(params): Query<SuggestParams>,
) -> Result<Json<Vec<String>>, ApiError> {
    let limit = page_size(params.limit, DEFAULT_SUGGESTIONS, MAX_SUGGESTIONS)?;
    let typed = params.q.as_deref().unwrap_or("").trim_start();
    check_needle(typed, "q")?;
    let prefix = match_key(typed);
    if prefix.chars().count() < MIN_SUGGEST_CHARS {
        return Ok(Json(Vec::new()));
    }
    Ok(Json(state.store.autocomplete_names(&prefix, limit).await?))
}

/// `GET /api/search?q=`: users whose name or email contains `q`, best matches first.
pub async fn search(
    State(state): State<AppState>,
    _: Identity,
    Query(params): Query<SuggestParams>,
) -> Result<Json<Vec<User>>, ApiError> {
    let limit = page_size(params.limit, DEFAULT_SEARCH_RESULTS, MAX_SEARCH_RESULTS)?;
    let Some(needle) = search_key(params.q.as_deref(), "q")? else {
        return Ok(Json(Vec::new()));
    };
    let candidates = state.store.search_users(&needle, limit).await?;
    Ok(Json(rank_users(candidates, &needle, limit as usize)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        assert_eq!(decode_cursor(&encode_cursor(42)).unwrap(), 42);
        for bad in ["", "42", "!!", &URL_SAFE_NO_PAD.encode("x42")] {
            assert!(decode_cursor(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn page_sizes_are_capped_and_must_be_positive() {
        assert_eq!(page_size(None, 50, 500).unwrap(), 50);
        assert_eq!(page_size(Some(9999), 50, 500).unwrap(), 500);
        assert!(page_size(Some(0), 50, 500).is_err());
    }
}
