//! HTTP handlers of the directory: each reads its request into the directory's types
//! and calls [`super::service`], which holds the rules. Shapes marked *compat* in
//! DESIGN.md are fixed: the list is a bare JSON array (pagination in headers), delete
//! answers `{"message": ...}`, autocomplete is an array of strings.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::input::UserInput;
use super::model::{NewUser, Profile, User, UserChanges};
use super::order::{ListOrder, parse_role};
use super::service::{
    self, ListQuery, create_user, delete_user, list_page, suggest_names, update_user,
};
use crate::AppState;
use crate::auth::{Admin, Identity};
use crate::error::ApiError;
use crate::http::extract::{Json, Path, Query};
use crate::hub::message::DIRECTORY_ROOM;

pub const DEFAULT_PAGE: i64 = 50;
pub const MAX_PAGE: i64 = 500;
const DEFAULT_SUGGESTIONS: i64 = 5;
const MAX_SUGGESTIONS: i64 = 20;
const DEFAULT_SEARCH_RESULTS: i64 = 20;
const MAX_SEARCH_RESULTS: i64 = 100;

#[derive(Deserialize)]
pub struct ListParams {
    search: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
    sort: Option<String>,
    order: Option<String>,
    role: Option<String>,
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

/// `GET /api/users?search=&limit=&cursor=&sort=&order=&role=` (*compat*: a JSON
/// array). The next page is in `Link: <...>; rel="next"`, absent on the last page,
/// with the same search, order and role; `X-Total-Count` is given for the whole list
/// (no search, every role).
pub async fn list(
    State(state): State<AppState>,
    Query(params): Query<ListParams>,
) -> Result<Response, ApiError> {
    let limit = page_size(params.limit, DEFAULT_PAGE, MAX_PAGE)?;
    let order = ListOrder::parse(params.sort.as_deref(), params.order.as_deref())?;
    let role = parse_role(params.role.as_deref())?;
    // Read before the page, so no change the page misses is older than the
    // position (a page may already show a later change; events are idempotent).
    let position = state.hub.position(DIRECTORY_ROOM).await?.last_id;
    let page = list_page(
        &*state.store,
        ListQuery {
            search: params.search.as_deref(),
            order,
            role,
            cursor: params.cursor.as_deref(),
            limit,
        },
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
        if !order.is_default() {
            query.push(("sort", order.sort.as_str().to_owned()));
            query.push(("order", order.direction().to_owned()));
        }
        if let Some(role) = role {
            query.push(("role", role.as_str().to_owned()));
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
    let (user, password) = NewUser::parse(&UserInput::from_json(&body))?;
    let user = create_user(&state, &identity, user, password).await?;
    let location = HeaderValue::from_str(&format!("/api/users/{}", user.id))
        .expect("digits are a valid header");
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(user),
    )
        .into_response())
}

/// `PUT` and `PATCH /api/users/{id}`: both partial (the seed's PUT updates only the
/// fields given, and clients written for it rely on that). Who may change what is
/// [`Directory::update`](super::service::Directory::update)'s.
pub async fn update(
    State(state): State<AppState>,
    identity: Identity,
    Path(id): Path<i64>,
    Json(body): Json<Map<String, Value>>,
) -> Result<Json<User>, ApiError> {
    // Who may is checked before what was sent is judged: a member learns nothing
    // about another's account from the errors.
    identity.require_self_or_admin(id)?;
    let (changes, password) = UserChanges::parse(&UserInput::from_json(&body))?;
    Ok(Json(
        update_user(&state, &identity, id, changes, password).await?,
    ))
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
    let typed = params.q.as_deref().unwrap_or("");
    Ok(Json(suggest_names(&*state.store, typed, limit).await?))
}

/// `GET /api/search?q=`: users whose name or email contains `q`, best matches first.
pub async fn search(
    State(state): State<AppState>,
    _: Identity,
    Query(params): Query<SuggestParams>,
) -> Result<Json<Vec<User>>, ApiError> {
    let limit = page_size(params.limit, DEFAULT_SEARCH_RESULTS, MAX_SEARCH_RESULTS)?;
    Ok(Json(
        service::search(&*state.store, params.q.as_deref(), limit).await?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_sizes_are_capped_and_must_be_positive() {
        assert_eq!(page_size(None, 50, 500).unwrap(), 50);
        assert_eq!(page_size(Some(9999), 50, 500).unwrap(), 500);
        assert!(page_size(Some(0), 50, 500).is_err());
    }
}
