//! The OpenAPI 3.1 document of the JSON API, served at `GET /api/openapi.json`.
//!
//! The operations are described here, in one place, on documentation-only functions
//! rather than on the handlers: the handlers stay readable, and this file reads as the
//! API's reference. The response types are the real ones (`User`, `Profile`, ...,
//! deriving `ToSchema`), so their shapes cannot drift; `tests/api/openapi.rs` calls
//! every documented operation to check that the router serves it.
// The functions below exist only to carry `#[utoipa::path]`; nothing calls them.
#![allow(dead_code)]

use axum::Json;
use serde::Serialize;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::auth::Identity;
use crate::auth::model::ApiToken;
use crate::directory::model::{Profile, ProfileUser, Role, Settings, Stats, User};
use crate::hub::PresenceSnapshot;
use crate::hub::message::{Author, Message as ChatMessage};

/// The one error envelope every failure uses.
#[derive(Serialize, ToSchema)]
struct ErrorEnvelope {
    /// A sentence for people.
    #[schema(example = "Email is not a valid email address")]
    error: String,
    /// For programs: `validation_failed`, `not_found`, `rate_limited`, ...
    #[schema(example = "validation_failed")]
    code: String,
    /// Each invalid field and what is wrong with it (422 only).
    fields: Option<std::collections::BTreeMap<String, String>>,
    /// The id under which the server logged this request.
    request_id: String,
}

/// `POST /api/users` (`role` and `password` optional).
#[derive(Serialize, ToSchema)]
struct NewUserBody {
    #[schema(example = "Dana")]
    name: String,
    #[schema(example = "dana@example.com")]
    email: String,
    role: Option<Role>,
    password: Option<String>,
}

/// `PUT`/`PATCH /api/users/{id}`: only the fields given change.
#[derive(Serialize, ToSchema)]
struct UserChangesBody {
    name: Option<String>,
    email: Option<String>,
    /// Admins only.
    role: Option<Role>,
    /// Admins only; ends the user's sessions.
    password: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct Message {
    #[schema(example = "User deleted successfully")]
    message: String,
}

#[derive(Serialize, ToSchema)]
struct LoginBody {
    email: String,
    password: String,
}

#[derive(Serialize, ToSchema)]
struct PasswordChangeBody {
    current_password: String,
    new_password: String,
}

/// `POST /api/auth/password`'s answer: what the change ended.
#[derive(Serialize, ToSchema)]
struct PasswordChanged {
    #[schema(example = "Password changed")]
    message: String,
    /// The account's other sessions, now ended.
    sessions_ended: u64,
    /// The account's API tokens, now revoked (all but the one making the request).
    tokens_revoked: u64,
}

#[derive(Serialize, ToSchema)]
struct NewTokenBody {
    name: String,
    expires_in_days: Option<i64>,
    /// Admins only: a token for someone else.
    user_id: Option<i64>,
}

/// An API token with its secret: the only time it is shown.
#[derive(Serialize, ToSchema)]
struct CreatedToken {
    #[schema(example = "sb_3q2-...")]
    token: String,
    #[serde(flatten)]
    record: ApiToken,
}

#[derive(Serialize, ToSchema)]
struct BatchItem {
    #[schema(example = "/api/users/1")]
    endpoint: String,
    #[schema(example = "GET")]
    method: Option<String>,
    body: Option<serde_json::Value>,
}

#[derive(Serialize, ToSchema)]
struct BatchBody {
    /// At most 50.
    requests: Vec<BatchItem>,
}

/// One item's outcome: `data` on success, `error` (+ `code`, `fields`) otherwise.
#[derive(Serialize, ToSchema)]
struct BatchOutcome {
    success: bool,
    status: u16,
    data: Option<serde_json::Value>,
    error: Option<String>,
    code: Option<String>,
    fields: Option<serde_json::Value>,
}

#[utoipa::path(get, path = "/api/users", tag = "directory",
    params(
        ("search" = Option<String>, Query, description = "Case-insensitive match anywhere in name or email"),
        ("limit" = Option<i64>, Query, description = "Page size, default 50, at most 500"),
        ("cursor" = Option<String>, Query, description = "From the previous page's `Link: rel=\"next\"`"),
    ),
    responses(
        (status = 200, description = "A page of users; the next page in `Link: <...>; rel=\"next\"`, the total in `X-Total-Count` (unfiltered lists)", body = [User]),
        (status = 400, description = "A bad parameter", body = ErrorEnvelope),
        (status = 401, description = "Not logged in", body = ErrorEnvelope),
    ))]
fn list_users() {}

#[utoipa::path(post, path = "/api/users", tag = "directory", request_body = NewUserBody,
    responses(
        (status = 201, description = "Created; `Location` names it", body = User),
        (status = 403, description = "Admins only", body = ErrorEnvelope),
        (status = 409, description = "The email is taken", body = ErrorEnvelope),
        (status = 422, description = "Invalid fields", body = ErrorEnvelope),
    ))]
fn create_user() {}

#[utoipa::path(get, path = "/api/users/{id}", tag = "directory", params(("id" = i64, Path)),
    responses((status = 200, body = User), (status = 404, body = ErrorEnvelope)))]
fn get_user() {}

#[utoipa::path(put, path = "/api/users/{id}", tag = "directory", params(("id" = i64, Path)),
    request_body = UserChangesBody,
    responses(
        (status = 200, description = "Updated (partial, as PATCH)", body = User),
        (status = 403, description = "Only yourself, unless admin", body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope),
    ))]
fn put_user() {}

#[utoipa::path(patch, path = "/api/users/{id}", tag = "directory", params(("id" = i64, Path)),
    request_body = UserChangesBody,
    responses(
        (status = 200, description = "Updated", body = User),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope),
    ))]
fn patch_user() {}

#[utoipa::path(delete, path = "/api/users/{id}", tag = "directory", params(("id" = i64, Path)),
    responses(
        (status = 200, body = Message),
        (status = 403, description = "Admins only", body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope),
        (status = 409, description = "The last admin", body = ErrorEnvelope),
    ))]
fn delete_user() {}

#[utoipa::path(get, path = "/api/users/{id}/profile", tag = "directory", params(("id" = i64, Path)),
    responses((status = 200, body = Profile), (status = 404, body = ErrorEnvelope)))]
fn profile() {}

#[utoipa::path(get, path = "/api/autocomplete", tag = "directory",
    params(
        ("q" = String, Query, description = "At least 2 characters, else `[]`"),
        ("limit" = Option<i64>, Query, description = "Default 5, at most 20"),
    ),
    responses((status = 200, description = "Distinct names starting with `q`", body = [String])))]
fn autocomplete() {}

#[utoipa::path(get, path = "/api/search", tag = "directory",
    params(("q" = String, Query), ("limit" = Option<i64>, Query, description = "Default 20, at most 100")),
    responses((status = 200, description = "Best matches first", body = [User])))]
fn search() {}

#[utoipa::path(post, path = "/api/batch", tag = "directory", request_body = BatchBody,
    responses(
        (status = 200, description = "One outcome per item, in order", body = [BatchOutcome]),
        (status = 422, description = "More than 50 items", body = ErrorEnvelope),
    ))]
fn batch() {}

/// `POST /api/send`
#[derive(Serialize, ToSchema)]
struct SendBody {
    #[schema(example = "hello")]
    text: String,
    /// Default `general`.
    room: Option<String>,
    /// Makes a retry idempotent: the same client_id from the same user to the same
    /// room stores one message.
    client_id: Option<String>,
}

#[utoipa::path(post, path = "/api/send", tag = "realtime", request_body = SendBody,
    responses(
        (status = 201, description = "Stored and sent to every subscriber of the room", body = ChatMessage),
        (status = 200, description = "This client_id was sent before: the first copy", body = ChatMessage),
        (status = 403, description = "A read-only room (`directory`)", body = ErrorEnvelope),
        (status = 422, description = "Empty, too long, or control characters", body = ErrorEnvelope),
    ))]
fn send() {}

#[utoipa::path(get, path = "/api/rooms", tag = "realtime",
    responses((status = 200, description = "`[{name, last_id, present}]`, by name")))]
fn rooms() {}

#[utoipa::path(get, path = "/api/rooms/{room}/messages", tag = "realtime",
    params(
        ("room" = String, Path),
        ("since" = Option<i64>, Query, description = "Messages after this id, oldest first"),
        ("before" = Option<i64>, Query, description = "Without `since`: the newest messages before this id"),
        ("limit" = Option<i64>, Query, description = "Default 50, at most 500"),
    ),
    responses(
        (status = 200, description = "Oldest first; `Switchboard-Position` is the id to subscribe from", body = [ChatMessage]),
        (status = 400, description = "A bad room name or position", body = ErrorEnvelope),
    ))]
fn room_messages() {}

#[utoipa::path(get, path = "/api/rooms/{room}/presence", tag = "realtime",
    params(("room" = String, Path)),
    responses((status = 200, description = "Exact count, the first members by name", body = PresenceSnapshot)))]
fn room_presence() {}

#[utoipa::path(get, path = "/api/notifications", tag = "realtime",
    params(
        ("since" = Option<i64>, Query), ("before" = Option<i64>, Query), ("limit" = Option<i64>, Query),
    ),
    responses((status = 200, description = "The caller's notifications (mentions, account changes)", body = [ChatMessage])))]
fn notifications() {}

#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = LoginBody, security(()),
    responses(
        (status = 200, description = "Logged in: `sb_session` and `csrftoken` cookies set", body = User),
        (status = 401, description = "Wrong email or password (which, is not said)", body = ErrorEnvelope),
        (status = 429, description = "Too many attempts; see `Retry-After`", body = ErrorEnvelope),
    ))]
fn login() {}

#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", security(()),
    responses((status = 200, body = Message)))]
fn logout() {}

#[utoipa::path(get, path = "/api/auth/me", tag = "auth",
    responses((status = 200, body = User), (status = 401, body = ErrorEnvelope)))]
fn me() {}

#[utoipa::path(post, path = "/api/auth/password", tag = "auth", request_body = PasswordChangeBody,
    responses(
        (status = 200, description = "Changed; every other session ended, the account's API tokens revoked", body = PasswordChanged),
        (status = 422, description = "Wrong current password, or the new one fails the password policy (`fields` says why)", body = ErrorEnvelope),
        (status = 429, description = "Too many password checks from this address or for this account", body = ErrorEnvelope),
    ))]
fn change_password() {}

#[utoipa::path(get, path = "/api/tokens", tag = "auth",
    params(("user_id" = Option<i64>, Query, description = "Admins: one user's tokens")),
    responses((status = 200, body = [ApiToken])))]
fn list_tokens() {}

#[utoipa::path(post, path = "/api/tokens", tag = "auth", request_body = NewTokenBody,
    responses((status = 201, body = CreatedToken), (status = 403, body = ErrorEnvelope),
              (status = 422, body = ErrorEnvelope)))]
fn create_token() {}

#[utoipa::path(delete, path = "/api/tokens/{id}", tag = "auth", params(("id" = i64, Path)),
    responses((status = 200, body = Message), (status = 404, body = ErrorEnvelope)))]
fn revoke_token() {}

#[utoipa::path(get, path = "/api/hello", tag = "examples",
    responses((status = 200, description = "A greeting", body = Object)))]
fn hello() {}

#[utoipa::path(get, path = "/api/data", tag = "examples",
    responses((status = 200, description = "UUID, datetime, date, exact decimal and set in JSON", body = Object)))]
fn data() {}

#[utoipa::path(get, path = "/api/error", tag = "examples",
    params(("status" = Option<u16>, Query, description = "Any status the API uses")),
    responses((status = 400, body = ErrorEnvelope)))]
fn error() {}

#[utoipa::path(get, path = "/healthz", tag = "operations", security(()),
    responses((status = 200, body = Object)))]
fn healthz() {}

#[utoipa::path(get, path = "/readyz", tag = "operations", security(()),
    responses((status = 200, body = Object), (status = 503, body = ErrorEnvelope)))]
fn readyz() {}

#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text (admins)", content_type = "text/plain")))]
fn metrics() {}

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "sb_session",
                "Set by POST /api/auth/login. Writes also need same-origin Sec-Fetch-Site/Origin or X-CSRFToken = the csrftoken cookie.",
            ))),
        );
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API token (sb_...) from POST /api/tokens"))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Switchboard",
        description = "The JSON API of Switchboard: a user directory, accounts and tokens, \
                       chat rooms. \
                       Every error is the one envelope (`ErrorEnvelope`)."
    ),
    paths(
        list_users, create_user, get_user, put_user, patch_user, delete_user, profile,
        autocomplete, search, batch, login, logout, me, change_password, list_tokens,
        create_token, revoke_token, hello, data, error, healthz, readyz, metrics, send, rooms,
        room_messages, room_presence, notifications
    ),
    components(schemas(
        User, Role, Profile, ProfileUser, Settings, Stats, ApiToken, ErrorEnvelope,
        NewUserBody, UserChangesBody, Message, LoginBody, PasswordChangeBody, PasswordChanged,
        NewTokenBody,
        CreatedToken, BatchItem, BatchBody, BatchOutcome, ChatMessage, Author, SendBody,
        PresenceSnapshot
    )),
    modifiers(&Security),
    security(("session" = []), ("token" = [])),
    tags(
        (name = "directory", description = "Users: list, search, create, edit, delete"),
        (name = "auth", description = "Logging in, sessions, API tokens"),
        (name = "examples", description = "The classic tutorial's small examples"),
        (name = "realtime", description = "Chat rooms over REST; the streaming transports \
            (WebSocket, SSE, long polling, Socket.IO) are described in the README"),
        (name = "operations", description = "Health and metrics"),
    )
)]
pub struct ApiDoc;

/// `GET /api/openapi.json` (logged in, like the rest of the API).
pub async fn document(_: Identity) -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
