//! The pages: `GET /` (the directory: search, one keyset page of users, the create
//! form for admins), `GET /users/{id}/edit` (the edit form without JavaScript),
//! `GET /users/{id}/delete` (its confirmation) and `GET /chat` (the chat page's
//! shell, which `web/static/chat.js` fills).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::views::{
    ChatPage, ConfirmDeletePage, DirectoryPage, EditPage, Layout, ListView, PageError, Row,
    UserForm, href, render,
};
use crate::AppState;
use crate::auth::Identity;
use crate::auth::csrf::CsrfToken;
use crate::directory::handlers::DEFAULT_PAGE;
use crate::directory::order::{ListOrder, parse_role};
use crate::directory::service::{ListQuery, list_page};
use crate::error::ApiError;
use crate::http::extract::{Path, Query};
use crate::hub::message::{self, DIRECTORY_ROOM, GENERAL_ROOM};

#[derive(Deserialize, Default)]
pub struct DirectoryParams {
    search: Option<String>,
    cursor: Option<String>,
    sort: Option<String>,
    order: Option<String>,
    role: Option<String>,
    /// What the last form post did, for the notice after its redirect. Only known
    /// words are shown, so the URL cannot put text of its own on the page.
    done: Option<String>,
}

fn notice(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "created" => Some("User added."),
        "updated" => Some("Changes saved."),
        "deleted" => Some("User deleted."),
        _ => None,
    }
}

/// Builds the directory page for `params`, with `create` as the create form's state.
pub async fn directory_page(
    state: &AppState,
    identity: &Identity,
    params: &DirectoryParams,
    create: UserForm,
    csrf: CsrfToken,
) -> Result<DirectoryPage, ApiError> {
    let search = params.search.as_deref().unwrap_or("").trim().to_owned();
    let cursor = params.cursor.as_deref().filter(|c| !c.is_empty());
    // A search lists everyone in the order they were added (see `list_page`): the
    // search form carries no order or role, and a link that does is not an error
    // worth a page of its own here.
    let (order, role) = if search.is_empty() {
        (
            ListOrder::parse(params.sort.as_deref(), params.order.as_deref())?,
            parse_role(params.role.as_deref())?,
        )
    } else {
        (ListOrder::default(), None)
    };
    let view = ListView { order, role };
    // The directory room's position before the list is read: the list reflects at
    // least this much, so the page's live subscription starts here with no gap (and
    // applying an event the list already shows changes nothing).
    let position = state.hub.position(DIRECTORY_ROOM).await?.last_id;
    let page = list_page(
        &*state.store,
        ListQuery {
            search: Some(&search),
            order,
            role,
            cursor,
            limit: DEFAULT_PAGE,
        },
    )
    .await?;
    let me = &identity.user;
    let next_href = page.next_cursor.as_ref().map(|cursor| {
        let mut query = view.query();
        if !search.is_empty() {
            query.push(("search", search.as_str()));
        }
        query.push(("cursor", cursor.as_str()));
        format!(
            "/?{}",
            serde_urlencoded::to_string(&query).expect("strings always encode")
        )
    });
    let first_href = {
        let mut query = view.query();
        if !search.is_empty() {
            query.push(("search", search.as_str()));
        }
        href(&query)
    };
    Ok(DirectoryPage {
        rows: page.users.iter().map(|u| Row::new(u, me)).collect(),
        total: page.total,
        next_href,
        next_cursor: page.next_cursor.unwrap_or_default(),
        paged: cursor.is_some(),
        first_href,
        searching: !search.is_empty(),
        view,
        position,
        notice: notice(params.done.as_deref()),
        search,
        create,
        layout: Layout::load(state, identity, csrf).await,
    })
}

/// `GET /`.
pub async fn directory(
    State(state): State<AppState>,
    identity: Identity,
    csrf: CsrfToken,
    params: Result<Query<DirectoryParams>, ApiError>,
) -> Result<Response, PageError> {
    let Query(params) = params?;
    let page = directory_page(&state, &identity, &params, UserForm::default(), csrf).await?;
    Ok(render(&page, StatusCode::OK))
}

/// Builds the edit page of user `id` with `form` as its state; 403 unless the viewer
/// is that user or an admin, 404 for nobody.
pub async fn edit_page(
    state: &AppState,
    identity: &Identity,
    id: i64,
    form: Option<UserForm>,
    csrf: CsrfToken,
) -> Result<EditPage, ApiError> {
    identity.require_self_or_admin(id)?;
    let form = match form {
        Some(form) => form,
        None => {
            let user = state
                .store
                .get_user(id)
                .await?
                .ok_or_else(|| ApiError::not_found("User"))?;
            UserForm::from_user(&user)
        }
    };
    Ok(EditPage {
        layout: Layout::load(state, identity, csrf).await,
        user_id: id,
        form,
    })
}

/// `GET /users/{id}/edit`.
pub async fn edit(
    State(state): State<AppState>,
    identity: Identity,
    csrf: CsrfToken,
    id: Result<Path<i64>, ApiError>,
) -> Result<Response, PageError> {
    let Path(id) = id?;
    let page = edit_page(&state, &identity, id, None, csrf).await?;
    Ok(render(&page, StatusCode::OK))
}

/// `GET /users/{id}/delete`: asks before the form post that deletes (admins only).
pub async fn confirm_delete(
    State(state): State<AppState>,
    identity: Identity,
    csrf: CsrfToken,
    id: Result<Path<i64>, ApiError>,
) -> Result<Response, PageError> {
    let Path(id) = id?;
    identity.require_admin()?;
    let user = state
        .store
        .get_user(id)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| ApiError::not_found("User"))?;
    let page = ConfirmDeletePage {
        layout: Layout::load(&state, &identity, csrf).await,
        user,
    };
    Ok(render(&page, StatusCode::OK))
}

#[derive(Deserialize, Default)]
pub struct ChatParams {
    room: Option<String>,
}

/// `GET /chat?room=`: the chat page's shell for `room` (`general` by default).
pub async fn chat(
    State(state): State<AppState>,
    identity: Identity,
    csrf: CsrfToken,
    params: Result<Query<ChatParams>, ApiError>,
) -> Result<Response, PageError> {
    let Query(params) = params?;
    let room = params
        .room
        .map(|room| room.trim().to_owned())
        .filter(|room| !room.is_empty())
        .unwrap_or_else(|| GENERAL_ROOM.to_owned());
    // A public room, or a direct message of the caller's (the hub's rule).
    message::check_room_for(&room, identity.id())?;
    let page = ChatPage {
        layout: Layout::load(&state, &identity, csrf).await,
        max_chars: state.hub.settings().max_message_chars,
        room,
    };
    Ok(render(&page, StatusCode::OK))
}

#[cfg(test)]
mod tests {
    use super::notice;

    #[test]
    fn only_known_notices_are_shown() {
        assert_eq!(notice(Some("created")), Some("User added."));
        assert_eq!(notice(Some("<script>")), None);
        assert_eq!(notice(None), None);
    }
}
