//! What the templates show: the [`Layout`] every signed-in page's frame
//! (`base.html`) reads, one struct per page (askama checks each against its template
//! at compile time and escapes every value), the form state shared by the create and
//! edit forms, and [`PageError`], the HTML twin of the API's error envelope.

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};

use crate::AppState;
use crate::auth::Identity;
use crate::auth::csrf::CsrfToken;
use crate::directory::model::{Role, User};
use crate::directory::order::ListOrder;
use crate::error::{ApiError, FieldErrors};

/// What `base.html`, the frame of every signed-in page, shows: the theme, and the
/// header's viewer (name, role, the bell) with the logout form. Each page struct
/// holds one as `layout`; the templates read `layout.csrf`, `layout.is_admin`, ...
pub struct Layout {
    pub me: User,
    /// For the forms' `csrfmiddlewaretoken` field (see [`crate::auth::csrf`]).
    pub csrf: String,
    /// `system`, `light` or `dark`: the viewer's setting, rendered into
    /// `<html data-theme>` so the page never flashes in the other theme first.
    pub theme: String,
    pub is_admin: bool,
}

impl Layout {
    /// The one place a page reads the viewer's settings: one query per page view,
    /// kept because the theme is an account setting (written from the account page
    /// or `PATCH /api/users/{id}/settings`), so a cookie or the browser's storage
    /// would show another device's stale choice.
    pub async fn load(state: &AppState, identity: &Identity, csrf: CsrfToken) -> Self {
        let theme = match state.store.get_settings(identity.user.id).await {
            Ok(Some(settings)) => settings.theme,
            Ok(None) => DEFAULT_THEME.into(),
            // A theme is not worth failing a page over: the page follows the browser.
            Err(err) => {
                tracing::warn!(error = %err, "reading the theme of a page failed");
                DEFAULT_THEME.into()
            }
        };
        Self {
            me: identity.user.clone(),
            csrf: csrf.0,
            theme,
            is_admin: identity.is_admin(),
        }
    }
}

/// The theme of a page whose viewer's setting is unknown: follow the browser.
const DEFAULT_THEME: &str = "system";

/// The part of [`Layout`] a page without a known viewer has (the error page).
pub struct NoSession {
    pub theme: &'static str,
}

/// A row of the directory table, with what the viewer may do to it.
pub struct Row {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub role: &'static str,
    /// When the user was added: RFC 3339 for `<time datetime>`, and the date shown.
    pub added: String,
    pub added_date: String,
    pub can_edit: bool,
    pub can_delete: bool,
}

impl Row {
    pub fn new(user: &User, viewer: &User) -> Self {
        let admin = viewer.role == Role::Admin;
        Self {
            id: user.id,
            name: user.name.clone(),
            email: user.email.clone(),
            role: user.role.as_str(),
            added: crate::timefmt::format(user.created_at),
            added_date: crate::timefmt::format(user.created_at)
                .chars()
                .take(10)
                .collect(),
            can_edit: admin || viewer.id == user.id,
            can_delete: admin,
        }
    }
}

/// The directory list's order and role filter as the page shows them: the column
/// headers' `aria-sort` and links, and the filter form's choices. Kept in the URL
/// (`?sort=&order=&role=`), so every link and form of the page keeps them, with or
/// without JavaScript.
#[derive(Clone, Copy, Debug, Default)]
pub struct ListView {
    pub order: ListOrder,
    pub role: Option<Role>,
}

impl ListView {
    /// The query parameters that say this view (none for the default one).
    pub fn query(&self) -> Vec<(&'static str, &'static str)> {
        let mut query = Vec::new();
        if !self.order.is_default() {
            query.push(("sort", self.order.sort.as_str()));
            query.push(("order", self.order.direction()));
        }
        if let Some(role) = self.role {
            query.push(("role", role.as_str()));
        }
        query
    }

    /// `ascending`, `descending` or `none`: the column `sort`'s `aria-sort`.
    pub fn aria_sort(&self, sort: &str) -> &'static str {
        match (self.order.sort.as_str() == sort, self.order.descending) {
            (false, _) => "none",
            (true, false) => "ascending",
            (true, true) => "descending",
        }
    }

    /// The link of column `sort`'s header: sorted by it ascending, or descending when
    /// it already is ascending; the role filter kept.
    pub fn sort_href(&self, sort: &str) -> String {
        let descending = self.aria_sort(sort) == "ascending";
        let mut query = vec![
            ("sort", sort),
            ("order", if descending { "desc" } else { "asc" }),
        ];
        if let Some(role) = self.role {
            query.push(("role", role.as_str()));
        }
        href(&query)
    }

    pub fn is_sort(&self, sort: &str) -> bool {
        self.order.sort.as_str() == sort
    }

    pub fn is_role(&self, role: &str) -> bool {
        self.role.map_or("", Role::as_str) == role
    }
}

/// `/` with `query`.
pub fn href(query: &[(&str, &str)]) -> String {
    if query.is_empty() {
        return "/".to_owned();
    }
    format!(
        "/?{}",
        serde_urlencoded::to_string(query).expect("strings always encode")
    )
}

/// What a create or edit form holds: the values typed (kept when the server refuses
/// them, so nobody types twice) and what is wrong with each.
#[derive(Default)]
pub struct UserForm {
    pub name: String,
    pub email: String,
    pub role: String,
    pub errors: FieldErrors,
    /// A problem that belongs to no field (e.g. "only an admin may do this").
    pub message: Option<String>,
}

impl UserForm {
    pub fn from_user(user: &User) -> Self {
        Self {
            name: user.name.clone(),
            email: user.email.clone(),
            role: user.role.as_str().to_owned(),
            ..Self::default()
        }
    }

    /// The error of `field`, for the template (`""` when none).
    pub fn error(&self, field: &str) -> &str {
        self.errors.get(field).map_or("", String::as_str)
    }

    pub fn has_error(&self, field: &str) -> bool {
        self.errors.contains_key(field)
    }

    pub fn is_role(&self, role: &str) -> bool {
        self.role == role || (self.role.is_empty() && role == "member")
    }
}

/// `/`: the directory.
#[derive(Template)]
#[template(path = "directory.html")]
pub struct DirectoryPage {
    pub layout: Layout,
    pub search: String,
    pub rows: Vec<Row>,
    pub total: Option<i64>,
    /// The server-rendered "next page" link and the cursor in it (the script pages
    /// on through the API from the same cursor).
    pub next_href: Option<String>,
    pub next_cursor: String,
    /// Whether this is a later page (then a link back to the first is shown).
    pub paged: bool,
    /// The first page of this list (same search, order and role).
    pub first_href: String,
    /// Whether the list is a search (shown in the order users were added, with no
    /// sort links and no role filter: see `directory::service::list_page`).
    pub searching: bool,
    /// The list's order and role filter, for the sort links and the filter form.
    pub view: ListView,
    pub notice: Option<&'static str>,
    pub create: UserForm,
    /// The `directory` room's position the list reflects: the script follows the
    /// room live from here.
    pub position: i64,
}

/// `/chat`: the shell of the chat page; `web/static/chat.js` loads the rooms, the
/// messages and the presence, and keeps them live.
#[derive(Template)]
#[template(path = "chat.html")]
pub struct ChatPage {
    pub layout: Layout,
    /// The room open first (`?room=`, `general` by default), already checked.
    pub room: String,
    /// The longest message the hub accepts, for the composer's `maxlength`.
    pub max_chars: usize,
}

/// `/users/{id}/edit`: the edit form on a page of its own (the no-JavaScript path).
#[derive(Template)]
#[template(path = "edit.html")]
pub struct EditPage {
    pub layout: Layout,
    pub user_id: i64,
    pub form: UserForm,
}

/// `GET /users/{id}/delete`: "delete this user?" (the no-JavaScript path; the script
/// asks in a dialog instead).
#[derive(Template)]
#[template(path = "confirm_delete.html")]
pub struct ConfirmDeletePage {
    pub layout: Layout,
    pub user: User,
}

/// The error page. It extends `base.html` but has no [`Layout`]: it is also shown
/// with no session (an unknown page, a refused login, a rate limit) and is rendered
/// where the viewer is not known, so its header shows only the way back, and its
/// theme follows the browser.
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub layout: NoSession,
    pub status: u16,
    pub title: &'a str,
    pub message: &'a str,
}

/// Pages show one account's view of the directory: no shared cache may keep them, and
/// the browser must ask the server again before reusing one.
const PAGE_CACHE_CONTROL: &str = "private, no-cache";

/// Renders a page, or the plain 500 page when the template itself fails.
pub fn render(page: &impl Template, status: StatusCode) -> Response {
    match page.render() {
        Ok(html) => (
            status,
            [(header::CACHE_CONTROL, PAGE_CACHE_CONTROL)],
            Html(html),
        )
            .into_response(),
        Err(err) => PageError(ApiError::internal(err)).into_response(),
    }
}

/// The HTML error page (also given to [`crate::http::envelope`] for errors raised
/// before a page handler runs: a refused CSRF check, a rate limit, an unknown page).
pub fn error_page_html(status: StatusCode, title: &str, message: &str) -> String {
    let page = ErrorPage {
        layout: NoSession {
            theme: DEFAULT_THEME,
        },
        status: status.as_u16(),
        title,
        message,
    };
    // Not through `render`: a failing error template must not recurse.
    page.render().unwrap_or_else(|_| {
        "<!doctype html><title>Error</title><p>Something went wrong.</p>".into()
    })
}

/// An error on an HTML route: an HTML page with the same status and the same
/// message the API would give (the API's error type is reused so statuses agree),
/// except that "not logged in" sends the visitor to log in.
#[derive(Debug)]
pub struct PageError(pub ApiError);

impl From<ApiError> for PageError {
    fn from(err: ApiError) -> Self {
        Self(err)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let error = self.0;
        if matches!(error, ApiError::Unauthenticated) {
            return Redirect::to("/login").into_response();
        }
        let status = error.status();
        if let ApiError::Internal(cause) = &error {
            tracing::error!(error = format!("{cause:#}"), "internal error on a page");
        }
        let title = status.canonical_reason().unwrap_or("Error");
        let message = error.to_string();
        let mut response = (status, Html(error_page_html(status, title, &message))).into_response();
        if let ApiError::TooManyRequests { retry_after } = &error {
            let secs = retry_after.as_secs().max(1);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
