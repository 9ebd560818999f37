//! The browser UI's server side: the HTML pages of the directory (server-rendered with
//! askama, auto-escaped, working with JavaScript off) and the embedded static assets
//! (`web/static`: ES modules and the stylesheet) the pages load.
//!
//! - [`assets`]: `GET /static/{path}`, anonymous, outside authentication and rate limits;
//! - [`pages`]: `GET /` (the directory), `GET /users/{id}/edit` and `GET /chat` (the
//!   chat page's shell: the script `web/static/chat.js` does the rest);
//! - [`forms`]: the form posts of those pages, answered by redirect (post/redirect/get)
//!   or by the same page re-rendered with the server's field errors;
//! - [`views`]: the templates' data and the HTML error page;
//! - [`account`]: `/account` (and an admin's `/users/{id}/account`) and its forms.
//!
//! Every rule (who may create, edit, delete; what a valid user is) lives in
//! [`crate::directory`]; these handlers only translate between forms and it.

pub mod account;
pub mod assets;
pub mod forms;
pub mod pages;
pub mod views;

use axum::Router;
use axum::middleware::from_fn;
use axum::routing::{get, post};

use crate::AppState;

/// The pages and their form posts; anonymous visitors are sent to `/login`.
pub fn router() -> Router<AppState> {
    account::routes(Router::new())
        .route("/", get(pages::directory))
        .route("/users", post(forms::create))
        .route("/users/{id}", post(forms::update))
        .route("/users/{id}/edit", get(pages::edit))
        .route(
            "/users/{id}/delete",
            get(pages::confirm_delete).post(forms::delete),
        )
        .route("/chat", get(pages::chat))
        .route_layer(from_fn(crate::auth::middleware::require_login_page))
}

/// The static assets: anyone may fetch them (the login page needs the stylesheet).
pub fn static_router() -> Router<AppState> {
    Router::new().route("/static/{*path}", get(assets::serve))
}
