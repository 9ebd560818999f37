//! The user directory: list (search, keyset pages), read, create, update, delete,
//! profile, autocomplete and ranked search.
//!
//! - [`model`]: what a user is, and the rule for each value (name, email, role);
//! - [`input`]: requests parsed into those types (`NewUser::parse`, ...), for every
//!   way in;
//! - [`service`]: the operations and their rules (who may change what, passwords,
//!   the last admin), and what the hub is told;
//! - [`order`]: the list's sort orders and role filter; [`cursor`]: its page cursor; [`search`]: the ranking of search results;
//! - [`events`]: the `directory` room's events; [`handlers`]: the JSON API, thin.

pub mod cursor;
pub mod events;
pub mod handlers;
pub mod input;
pub mod model;
pub mod order;
pub mod search;
pub mod service;
pub mod synthetic;

use axum::Router;
use axum::routing::get;

use crate::AppState;
use crate::store::{Store, StoreResult};
use model::{NewUser, Role};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/users", get(handlers::list).post(handlers::create))
        .route(
            "/api/users/{id}",
            get(handlers::show)
                .put(handlers::update)
                .patch(handlers::update)
                .delete(handlers::remove),
        )
        .route("/api/users/{id}/profile", get(handlers::profile))
        .route("/api/autocomplete", get(handlers::autocomplete))
        .route("/api/search", get(handlers::search))
}

/// The seed's three users, added when the directory is empty so a first run shows
/// something.
pub async fn add_demo_users(store: &dyn Store) -> StoreResult<()> {
    if store.count_users().await? > 0 {
        return Ok(());
    }
    let demo = [
        ("Alice", "alice@example.com"),
        ("Bob", "bob@example.com"),
        ("Charlie", "charlie@example.com"),
    ]
    .map(|(name, email)| NewUser {
        name: name.into(),
        email: email.into(),
        role: Role::Member,
        password_hash: None,
    });
    store.insert_users_bulk(&demo).await?;
    Ok(())
}
