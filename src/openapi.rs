//! The OpenAPI 3.1 document of the JSON API, served at `GET /api/openapi.json`.
//!
//! The operations are described here, in one place, on documentation-only functions
//! rather than on the handlers: the handlers stay readable, and this file reads as the
//! API's reference. The response types are the real ones (`User`, `Profile`, ...,
//! deriving `ToSchema`), so their shapes cannot drift; request bodies are described by
//! documentation-only structs whose constraints (patterns, lengths, nullability) are
//! the server's rules, so a client generated from the document sends what is accepted.
//!
//! Each operation lists what its handler can answer; [`MiddlewareErrors`] adds what
//! the layers every request passes can answer (401, 403 CSRF, 429, 503, a malformed
//! body or query), so no operation forgets them. `tests/api/openapi.rs` checks the
//! document against the router, and `scripts/fuzz-api` fuzzes the running server with it.

use std::collections::BTreeMap;

use axum::Json;
use serde::Serialize;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::schema::{ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Ref, RefOr, ResponseBuilder, Schema};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::account::ReadState;
use crate::auth::Identity;
use crate::auth::model::ApiToken;
use crate::auth::password::Rules;
use crate::directory::model::{Profile, ProfileUser, Role, Settings, Stats, User};
use crate::hub::PresenceSnapshot;
use crate::hub::message::{Author, Message as ChatMessage};
use crate::hub::room_list::{Opened, RoomEntry, RoomRead};
use crate::store::account::SessionInfo;

/// Characters Rust's `str::trim` removes (Unicode `White_Space`), as a regex class body.
const WHITE_SPACE: &str =
    r"\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";
/// The characters a name cannot contain, as a regex class body: found by asking
/// `check_name` itself about every character (white space between two letters, any
/// other character alone), so the document follows the server's one rule for names
/// wherever it goes. A character allowed only in some places (a zero width joiner
/// between two visible characters) is left out: the document may promise less than
/// the server takes, never more.
fn refused_in_names() -> &'static str {
    static CLASS: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    CLASS.get_or_init(|| {
        let accepted = |text: String| {
            crate::directory::model::check_name(&text, &mut crate::error::FieldErrors::new())
                .is_some()
        };
        char_class(|c| {
            if c.is_whitespace() {
                !accepted(format!("a{c}a"))
            } else {
                !accepted(c.to_string())
            }
        })
    })
}

/// The characters for which `refused` holds, as ranges of a regex class body
/// (`\uXXXX` escapes in the Basic Multilingual Plane, the characters themselves
/// beyond it, where ECMA-262, Python and Rust regexes agree on no escape).
fn char_class(refused: impl Fn(char) -> bool) -> String {
    let mut class = String::new();
    let mut write = |from: char, to: char| {
        let one = |c: char| match u32::from(c) {
            code @ 0..=0xFFFF => format!("\\u{code:04x}"),
            _ => c.to_string(),
        };
        class.push_str(&one(from));
        if to != from {
            class.push('-');
            class.push_str(&one(to));
        }
    };
    let mut run: Option<(char, char)> = None;
    for c in (0..=0x10FFFF).filter_map(char::from_u32) {
        let contiguous = run.is_some_and(|(_, last)| u32::from(last) + 1 == u32::from(c));
        match (refused(c), run) {
            (true, Some((from, _))) if contiguous => run = Some((from, c)),
            (true, _) => {
                if let Some((from, to)) = run {
                    write(from, to);
                }
                run = Some((c, c));
            }
            (false, Some((from, to))) => {
                write(from, to);
                run = None;
            }
            (false, None) => {}
        }
    }
    if let Some((from, to)) = run {
        write(from, to);
    }
    class
}

/// Control characters but tab and newline (which chat text may contain).
const CONTROL_BUT_TAB_NEWLINE: &str = r"\u0000-\u0008\u000b-\u001f\u007f-\u009f";

/// A text of 1 to `max` characters once trimmed, none of them in the class
/// `forbidden`, with any white space around it: the rule of `check_name` and
/// `clean_text`, as a JSON Schema (ECMA-262) pattern. `tests::patterns_agree_with_the_checks`
/// holds it to those functions.
fn trimmed_text_pattern(max: usize, forbidden: &str) -> String {
    let edge = format!("[^{WHITE_SPACE}{forbidden}]");
    format!(
        "^[{WHITE_SPACE}]*{edge}(?:[^{forbidden}]{{0,{}}}{edge})?[{WHITE_SPACE}]*$",
        max - 2
    )
}

fn string_schema(description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
}

/// A user's name (`directory::model::check_name`).
fn name_schema() -> Schema {
    string_schema("1-100 characters once trimmed, no control characters")
        .pattern(Some(trimmed_text_pattern(
            crate::directory::model::NAME_MAX_CHARS,
            refused_in_names(),
        )))
        .examples(["Dana"])
        .into()
}

/// An email address (`directory::model::check_email`), unique case-insensitively.
fn email_schema() -> Schema {
    string_schema("An email address, at most 254 characters; unique, case-insensitively")
        .format(Some(SchemaFormat::Custom("email".into())))
        .max_length(Some(crate::directory::model::EMAIL_MAX_CHARS))
        .examples(["dana@example.com"])
        .into()
}

/// A new password (`auth::password::check_policy`).
fn new_password_schema() -> Schema {
    string_schema(
        "A new password: at least 12 characters (configurable), not easy to guess, \
         not built from the account's name or email; `fields` says why one is refused",
    )
    .min_length(Some(crate::auth::password::DEFAULT_MIN_CHARS))
    .max_length(Some(crate::auth::password::MAX_CHARS))
    // A password the policy accepts, so a client (or a fuzzer) trying the example
    // sees the request succeed.
    .examples(["violet harbor quartz 7315"])
    .into()
}

/// An API token's name (`auth::handlers::create_token`): what a name may be.
fn token_name_schema() -> Schema {
    string_schema("1-100 characters once trimmed, no control characters")
        .pattern(Some(trimmed_text_pattern(
            crate::auth::handlers::TOKEN_NAME_MAX_CHARS,
            refused_in_names(),
        )))
        .examples(["deploy script"])
        .into()
}

/// A room name (`hub::message::check_room`).
fn room_schema() -> Schema {
    string_schema("1-64 letters, digits, '_', '-' or '.', starting with a letter or digit")
        .pattern(Some(ROOM_PATTERN))
        .examples(["general"])
        .into()
}

const ROOM_PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$";

/// Chat text (`hub::message::clean_text`, at the default `--max-message-chars`).
fn text_schema() -> Schema {
    string_schema("1-4000 characters once trimmed (`--max-message-chars`); newlines and tabs are the only control characters allowed")
        .pattern(Some(trimmed_text_pattern(4_000, CONTROL_BUT_TAB_NEWLINE)))
        .examples(["hello"])
        .into()
}

/// A client's idempotency key (`hub::message::check_client_id`).
fn client_id_schema() -> Schema {
    string_schema("1-64 printable ASCII characters")
        .pattern(Some("^[!-~]{1,64}$"))
        .into()
}

/// `ErrorEnvelope.code`: every code the server answers, as an enum.
fn error_code_schema() -> Schema {
    let codes = crate::error::HTTP_CODES.iter().map(|(_, code)| *code);
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(codes))
        .examples(["validation_failed"])
        .into()
}

/// The one error envelope every failure uses.
#[derive(Serialize, ToSchema)]
struct ErrorEnvelope {
    /// A sentence for people.
    #[schema(example = "Email is not a valid email address")]
    error: String,
    /// For programs: one of README's error table (`crate::error::HTTP_CODES`).
    #[schema(schema_with = error_code_schema)]
    code: String,
    /// Each invalid field and what is wrong with it (422 and 409 only).
    #[schema(required = false)]
    fields: BTreeMap<String, String>,
    /// The id under which the server logged this request.
    request_id: String,
}

/// `POST /api/users`: `role` and `password` may be left out, not set to null.
#[derive(Serialize, ToSchema)]
struct NewUserBody {
    #[schema(schema_with = name_schema)]
    name: String,
    #[schema(schema_with = email_schema)]
    email: String,
    /// Default `member`.
    #[schema(required = false)]
    role: Role,
    /// Without one, the user cannot log in.
    #[schema(schema_with = new_password_schema, required = false)]
    password: String,
}

/// `PUT`/`PATCH /api/users/{id}`: only the fields given change; none can be null.
#[derive(Serialize, ToSchema)]
struct UserChangesBody {
    #[schema(schema_with = name_schema, required = false)]
    name: String,
    #[schema(schema_with = email_schema, required = false)]
    email: String,
    /// Admins only.
    #[schema(required = false)]
    role: Role,
    /// Admins only; ends the user's sessions.
    #[schema(schema_with = new_password_schema, required = false)]
    password: String,
}

/// `{"message": ...}`: what a deletion, logout or password change answers.
#[derive(Serialize, ToSchema)]
struct Confirmation {
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
    #[schema(schema_with = new_password_schema)]
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
    #[schema(schema_with = token_name_schema)]
    name: String,
    #[schema(minimum = 1, maximum = 3650)]
    expires_in_days: Option<i64>,
    /// Admins only: a token for someone else (a user that exists).
    user_id: Option<i64>,
}

/// `PATCH /api/users/{id}/settings`: only the fields given change; none can be null,
/// and a field that is no setting is refused.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SettingsChangesBody {
    #[schema(required = false, pattern = "^(system|light|dark)$")]
    theme: String,
    /// *compat*: turns both kinds on or off (the kinds given beside it win).
    #[schema(required = false)]
    notifications: bool,
    #[schema(required = false)]
    notify_mentions: bool,
    #[schema(required = false)]
    notify_admin_changes: bool,
}

#[derive(Serialize, ToSchema)]
struct PasswordCheckBody {
    /// The candidate (any string: this only evaluates it).
    password: String,
    /// Admins: the account it would be for (its name and email may not make it up).
    #[schema(required = false)]
    user_id: Option<i64>,
}

/// What the password policy says of a candidate.
#[derive(Serialize, ToSchema)]
struct PasswordVerdict {
    acceptable: bool,
    /// Every reason it is refused, as phrases after "Password ..."; empty when acceptable.
    problems: Vec<String>,
    rules: Rules,
}

/// `DELETE /api/sessions`'s answer.
#[derive(Serialize, ToSchema)]
struct SessionsEnded {
    sessions_ended: u64,
}

/// `POST /api/notifications/read`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct MarkReadBody {
    /// Read up to this id (default, or above the newest: all).
    #[schema(required = false, minimum = 0)]
    through: Option<i64>,
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
    /// A path under `/api/` (with its query), e.g. `/api/users/1`.
    #[schema(example = "/api/users/1")]
    endpoint: String,
    /// `GET` (the default), `POST`, `PUT`, `PATCH` or `DELETE`; another is the
    /// item's own 405 outcome.
    #[schema(example = "GET")]
    method: Option<String>,
    /// The item's JSON body.
    #[schema(value_type = Option<serde_json::Value>)]
    body: Option<serde_json::Value>,
}

#[derive(Serialize, ToSchema)]
struct BatchBody {
    #[schema(max_items = 50)]
    requests: Vec<BatchItem>,
}

/// One item's outcome: `data` on success, `error` (+ `code`, `fields`) otherwise.
#[derive(Serialize, ToSchema)]
struct BatchOutcome {
    success: bool,
    status: u16,
    /// The item's response body.
    #[schema(required = false)]
    data: serde_json::Value,
    #[schema(required = false)]
    error: String,
    #[schema(required = false)]
    code: String,
    #[schema(required = false)]
    fields: BTreeMap<String, String>,
}

/// `POST /api/send`
#[derive(Serialize, ToSchema)]
struct SendBody {
    #[schema(schema_with = text_schema)]
    text: String,
    /// Default `general` (also when null).
    #[schema(schema_with = nullable_room_schema, required = false)]
    room: Option<String>,
    /// Makes a retry idempotent: the same client_id from the same user to the same
    /// room stores one message.
    #[schema(schema_with = nullable_client_id_schema, required = false)]
    client_id: Option<String>,
}

fn nullable(schema: Schema) -> Schema {
    match schema {
        Schema::Object(mut object) => {
            object.schema_type = [Type::String, Type::Null].into_iter().collect();
            Schema::Object(object)
        }
        other => other,
    }
}

fn nullable_room_schema() -> Schema {
    nullable(room_schema())
}

fn nullable_client_id_schema() -> Schema {
    nullable(client_id_schema())
}

#[derive(Serialize, ToSchema)]
struct Hello {
    #[schema(example = "Hello, World!")]
    message: String,
}

/// The JSON types Python's `json` module cannot write.
#[derive(Serialize, ToSchema)]
struct Showcase {
    id: uuid::Uuid,
    /// RFC 3339, UTC.
    created_at: String,
    /// ISO 8601.
    date: String,
    /// Exact decimals, as JSON numbers with their digits.
    price: f64,
    balance: f64,
    /// A set: sorted, no duplicates.
    tags: Vec<String>,
}

#[derive(Serialize, ToSchema)]
struct Health {
    #[schema(example = "ok")]
    status: String,
}

#[derive(Serialize, ToSchema)]
struct Readiness {
    #[schema(example = "ready")]
    status: String,
    /// `sqlite` or `postgres`. The details may be for admins only.
    #[schema(required = false)]
    store: String,
    #[schema(required = false)]
    redis: bool,
    #[schema(required = false)]
    uptime_seconds: u64,
}

/// `POST /api/rooms`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct OpenRoomBody {
    /// Found without regard to case (`general` opens `General` when that came first).
    #[schema(pattern = "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
    name: String,
}

/// `POST /api/rooms/direct`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct DirectBody {
    /// The other person.
    user_id: i64,
}

/// The `{room}` of the room routes (`hub::message::check_room_for`): a public room,
/// or a direct message; only its two members may use a `dm:A:B` (a 403 for others).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[expect(
    dead_code,
    reason = "documentation-only: utoipa reads the field, nothing else does"
)]
struct RoomPath {
    /// A public room, or your direct message `dm:A:B`
    #[param(pattern = "^([A-Za-z0-9][A-Za-z0-9_.-]{0,63}|dm:[0-9]{1,18}:[0-9]{1,18})$")]
    room: String,
}

/// The operations, one documentation-only function each: `#[utoipa::path]` needs a
/// function to hang on, and [`ApiDoc`] reads the attributes; nothing calls them.
#[expect(
    dead_code,
    reason = "documentation-only: utoipa reads the attributes, nothing calls the functions"
)]
mod operations {
    use super::*;

    #[utoipa::path(get, path = "/api/users", tag = "directory",
        params(
            ("search" = Option<String>, Query, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$", description = "Matched anywhere in name or email, ignoring case (and accents, in names); no control characters"),
            ("limit" = Option<i64>, Query, minimum = 1, description = "Page size, default 50; above 500 counts as 500"),
            ("cursor" = Option<String>, Query, description = "Opaque: from the previous page's `Link: rel=\"next\"` of a list in the same order (any other is a 400 `invalid_cursor`)"),
            ("sort" = Option<String>, Query, pattern = "^(|created|name|email)$", description = "Empty (the default, as the directory page's form sends it), or sort by `created` (date added, the default), `name` (case and accents folded, as search matches names) or `email` (folded to lower case), in code point order; ties in name go by date added. Not with `search` (a 400 `invalid_query`: search results come in the order users were added)"),
            ("order" = Option<String>, Query, pattern = "^(|asc|desc)$", description = "`asc` (the default, also when empty) or `desc`"),
            ("role" = Option<String>, Query, pattern = "^(|admin|member)$", description = "Only users with this role (empty: every role). Not with `search`"),
        ),
        responses(
            (status = 200, description = "A page of users; the next page in `Link: <...>; rel=\"next\"` (with the same search, sort, order and role), the total in `X-Total-Count` (the whole list: no search, no role), the directory's log position in `Switchboard-Position`", body = [User]),
            (status = 400, description = "A bad limit or cursor (`invalid_query`, `invalid_cursor`), sort, order or role (`invalid_query`), or `search` with `sort`, `order` or `role` (`invalid_query`)", body = ErrorEnvelope),
        ))]
    pub(super) fn list_users() {}

    #[utoipa::path(post, path = "/api/users", tag = "directory", request_body = NewUserBody,
        responses(
            (status = 201, description = "Created; `Location` names it", body = User,
                headers(("Location" = String, description = "/api/users/{id}"))),
            (status = 403, description = "Admins only", body = ErrorEnvelope),
            (status = 409, description = "The email is taken", body = ErrorEnvelope),
            (status = 422, description = "Invalid fields, or a password the policy refuses", body = ErrorEnvelope),
        ))]
    pub(super) fn create_user() {}

    #[utoipa::path(get, path = "/api/users/{id}", tag = "directory", params(("id" = i64, Path)),
        responses((status = 200, body = User), (status = 404, body = ErrorEnvelope)))]
    pub(super) fn get_user() {}

    #[utoipa::path(put, path = "/api/users/{id}", tag = "directory", params(("id" = i64, Path)),
        request_body = UserChangesBody,
        responses(
            (status = 200, description = "Updated (partial, as PATCH)", body = User),
            (status = 403, description = "Only yourself, unless admin; roles and passwords: admins only", body = ErrorEnvelope),
            (status = 404, body = ErrorEnvelope),
            (status = 409, description = "The email is taken, or this would demote the last admin", body = ErrorEnvelope),
            (status = 422, description = "Invalid fields", body = ErrorEnvelope),
        ))]
    pub(super) fn put_user() {}

    #[utoipa::path(patch, path = "/api/users/{id}", tag = "directory", params(("id" = i64, Path)),
        request_body = UserChangesBody,
        responses(
            (status = 200, description = "Updated", body = User),
            (status = 403, description = "Only yourself, unless admin; roles and passwords: admins only", body = ErrorEnvelope),
            (status = 404, body = ErrorEnvelope),
            (status = 409, description = "The email is taken, or this would demote the last admin", body = ErrorEnvelope),
            (status = 422, description = "Invalid fields", body = ErrorEnvelope),
        ))]
    pub(super) fn patch_user() {}

    #[utoipa::path(delete, path = "/api/users/{id}", tag = "directory", params(("id" = i64, Path)),
        responses(
            (status = 200, body = Confirmation),
            (status = 403, description = "Admins only", body = ErrorEnvelope),
            (status = 404, body = ErrorEnvelope),
            (status = 409, description = "The last admin", body = ErrorEnvelope),
        ))]
    pub(super) fn delete_user() {}

    #[utoipa::path(get, path = "/api/users/{id}/profile", tag = "directory", params(("id" = i64, Path)),
        responses((status = 200, body = Profile), (status = 404, body = ErrorEnvelope)))]
    pub(super) fn profile() {}

    #[utoipa::path(get, path = "/api/users/{id}/settings", tag = "account", params(("id" = i64, Path)),
        responses(
            (status = 200, body = Settings),
            (status = 403, description = "Only your own, unless admin", body = ErrorEnvelope),
            (status = 404, body = ErrorEnvelope),
        ))]
    pub(super) fn get_settings() {}

    #[utoipa::path(patch, path = "/api/users/{id}/settings", tag = "account", params(("id" = i64, Path)),
        request_body = SettingsChangesBody,
        responses(
            (status = 200, description = "The settings after the change", body = Settings),
            (status = 403, description = "Only your own, unless admin", body = ErrorEnvelope),
            (status = 404, body = ErrorEnvelope),
            (status = 422, description = "A bad value, or a field that is no setting", body = ErrorEnvelope),
        ))]
    pub(super) fn patch_settings() {}

    #[utoipa::path(get, path = "/api/sessions", tag = "account",
        params(("user_id" = Option<i64>, Query, description = "Admins: another user's sessions")),
        responses(
            (status = 200, description = "Most recently used first; `current` marks the one asking", body = [SessionInfo]),
            (status = 403, description = "Another user's: admins only", body = ErrorEnvelope),
        ))]
    pub(super) fn list_sessions() {}

    #[utoipa::path(delete, path = "/api/sessions", tag = "account",
        params(("user_id" = Option<i64>, Query, description = "Admins: end all of another user's sessions")),
        responses(
            (status = 200, description = "Every session but the one asking ended (with its realtime connections)", body = SessionsEnded),
            (status = 403, description = "Another user's: admins only", body = ErrorEnvelope),
        ))]
    pub(super) fn end_sessions() {}

    #[utoipa::path(delete, path = "/api/sessions/{id}", tag = "account",
        params(
            ("id" = String, Path, description = "A session's `id` as listed"),
            ("user_id" = Option<i64>, Query, description = "Admins: another user's session"),
        ),
        responses(
            (status = 200, description = "Ended, with its realtime connections", body = Confirmation),
            (status = 403, description = "Another user's: admins only", body = ErrorEnvelope),
            (status = 404, description = "No such session of this user", body = ErrorEnvelope),
        ))]
    pub(super) fn end_session() {}

    #[utoipa::path(get, path = "/api/notifications/unread", tag = "account",
        responses((status = 200, description = "How far you have read your notifications", body = ReadState)))]
    pub(super) fn unread_notifications() {}

    #[utoipa::path(post, path = "/api/notifications/read", tag = "account", request_body = MarkReadBody,
        responses(
            (status = 200, description = "Marked read, on every tab and device (a `read` notification tells them)", body = ReadState),
            (status = 422, description = "A bad `through`, or a field that is not one", body = ErrorEnvelope),
        ))]
    pub(super) fn mark_notifications_read() {}

    #[utoipa::path(get, path = "/api/autocomplete", tag = "directory",
        params(
            ("q" = Option<String>, Query, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$", description = "At least 2 characters, else `[]`; case and accents ignored; no control characters"),
            ("limit" = Option<i64>, Query, minimum = 1, description = "Default 5; above 20 counts as 20"),
        ),
        responses(
            (status = 200, description = "Distinct names starting with `q`", body = [String]),
            (status = 400, description = "A bad limit", body = ErrorEnvelope),
        ))]
    pub(super) fn autocomplete() {}

    #[utoipa::path(get, path = "/api/search", tag = "directory",
        params(
            ("q" = Option<String>, Query, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$", description = "Matched anywhere in name or email, ignoring case (and accents, in names); none or blank: `[]`; no control characters"),
            ("limit" = Option<i64>, Query, minimum = 1, description = "Default 20; above 100 counts as 100"),
        ),
        responses(
            (status = 200, description = "Best matches first: exact name, name prefix, word prefix, email prefix, anywhere (ties by name)", body = [User]),
            (status = 400, description = "A bad limit", body = ErrorEnvelope),
        ))]
    pub(super) fn search() {}

    #[utoipa::path(post, path = "/api/batch", tag = "directory", request_body = BatchBody,
        responses(
            (status = 200, description = "One outcome per item, in order", body = [BatchOutcome]),
            (status = 422, description = "More than 50 items", body = ErrorEnvelope),
        ))]
    pub(super) fn batch() {}

    #[utoipa::path(post, path = "/api/send", tag = "realtime", request_body = SendBody,
        responses(
            (status = 201, description = "Stored and sent to every subscriber of the room", body = ChatMessage),
            (status = 200, description = "This client_id was sent before: the first copy", body = ChatMessage),
            (status = 400, description = "A bad room name or client_id", body = ErrorEnvelope),
            (status = 403, description = "A read-only room (`directory`)", body = ErrorEnvelope),
            (status = 422, description = "No text, too long, or control characters", body = ErrorEnvelope),
            (status = 429, description = "Too many messages; see `Retry-After`", body = ErrorEnvelope),
        ))]
    pub(super) fn send() {}

    // ---- chat rooms as people keep them (issue 21: src/hub/room_list.rs) ------------

    #[utoipa::path(get, path = "/api/rooms", tag = "realtime",
        responses((status = 200, description = "The public rooms and your direct messages, by name, \
            with how far you have read each. `Switchboard-Position`: where the `rooms` log (one \
            `room_created` event per new room) stood; `Switchboard-Notifications-Position`: where your \
            notification room stood (read markers, mentions, new direct messages): follow both from \
            there to keep the list live", body = [RoomEntry])))]
    pub(super) fn rooms() {}

    #[utoipa::path(post, path = "/api/rooms", tag = "realtime", request_body = OpenRoomBody,
        responses(
            (status = 201, description = "Created (announced in the `rooms` log) and in your list", body = Opened),
            (status = 200, description = "It existed (maybe written in another case): now in your list", body = Opened),
            (status = 400, description = "Not a room name", body = ErrorEnvelope),
            (status = 403, description = "A room only the server writes (`directory`, `rooms`)", body = ErrorEnvelope),
            (status = 422, description = "No name, or another field", body = ErrorEnvelope),
        ))]
    pub(super) fn open_room() {}

    #[utoipa::path(post, path = "/api/rooms/direct", tag = "realtime", request_body = DirectBody,
        responses(
            (status = 201, description = "Created: `dm:A:B`, in both lists, the other told (`direct_created`)", body = Opened),
            (status = 200, description = "Your existing direct-message room with them", body = Opened),
            (status = 403, description = "Your own id: a direct message is with someone else", body = ErrorEnvelope),
            (status = 404, description = "No such user", body = ErrorEnvelope),
            (status = 422, description = "No user id", body = ErrorEnvelope),
        ))]
    pub(super) fn open_direct() {}

    #[utoipa::path(delete, path = "/api/rooms/{room}/membership", tag = "realtime",
        params(RoomPath),
        responses(
            (status = 200, description = "Out of your list", body = Confirmation),
            (status = 400, description = "Not a room name", body = ErrorEnvelope),
            (status = 403, description = "Someone else's direct message", body = ErrorEnvelope),
            (status = 404, description = "It was not in your list", body = ErrorEnvelope),
        ))]
    pub(super) fn leave_room() {}

    #[utoipa::path(get, path = "/api/rooms/{room}/read", tag = "realtime",
        params(RoomPath),
        responses(
            (status = 200, description = "How far you have read the room", body = RoomRead),
            (status = 400, description = "Not a room name", body = ErrorEnvelope),
            (status = 403, description = "Someone else's direct message", body = ErrorEnvelope),
        ))]
    pub(super) fn room_read() {}

    #[utoipa::path(post, path = "/api/rooms/{room}/read", tag = "realtime", request_body = MarkReadBody,
        params(RoomPath),
        responses(
            (status = 200, description = "Marked read (never back), on every tab and device: a \
                `{type: read, room, through}` message in your notification room tells them", body = RoomRead),
            (status = 400, description = "Not a room name", body = ErrorEnvelope),
            (status = 403, description = "Someone else's direct message", body = ErrorEnvelope),
            (status = 422, description = "`through` is not a message id, or another field", body = ErrorEnvelope),
        ))]
    pub(super) fn mark_room_read() {}

    #[utoipa::path(get, path = "/api/rooms/{room}/messages", tag = "realtime",
        params(
            RoomPath,
            ("since" = Option<i64>, Query, description = "Messages after this id, oldest first"),
            ("before" = Option<i64>, Query, description = "Without `since`: the newest messages before this id"),
            ("limit" = Option<i64>, Query, minimum = 1, description = "Default 50; above 500 counts as 500"),
        ),
        responses(
            (status = 200, description = "Oldest first; `Switchboard-Position` is the id to subscribe from", body = [ChatMessage]),
            (status = 400, description = "A bad room name, position or limit", body = ErrorEnvelope),
            (status = 403, description = "Someone else's direct message", body = ErrorEnvelope),
        ))]
    pub(super) fn room_messages() {}

    #[utoipa::path(get, path = "/api/rooms/{room}/presence", tag = "realtime",
        params(RoomPath),
        responses(
            (status = 200, description = "Exact count, the first members by name", body = PresenceSnapshot),
            (status = 400, description = "A bad room name", body = ErrorEnvelope),
            (status = 403, description = "Someone else's direct message", body = ErrorEnvelope),
        ))]
    pub(super) fn room_presence() {}

    #[utoipa::path(get, path = "/api/notifications", tag = "realtime",
        params(
            ("since" = Option<i64>, Query, description = "After this id; with neither `since` nor `before`, after your read position (the first unread)"),
            ("before" = Option<i64>, Query),
            ("limit" = Option<i64>, Query, minimum = 1),
        ),
        responses(
            (status = 200, description = "The caller's notifications (mentions, account changes, and `read` markers)", body = [ChatMessage]),
            (status = 400, description = "A bad position or limit", body = ErrorEnvelope),
        ))]
    pub(super) fn notifications() {}

    #[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = LoginBody, security(()),
        responses(
            (status = 200, description = "Logged in: `sb_session` and `csrftoken` cookies set", body = User),
            (status = 401, description = "Wrong email or password (which, is not said)", body = ErrorEnvelope),
            (status = 422, description = "No email or no password", body = ErrorEnvelope),
            (status = 429, description = "Too many attempts; see `Retry-After`", body = ErrorEnvelope),
        ))]
    pub(super) fn login() {}

    #[utoipa::path(post, path = "/api/auth/logout", tag = "auth", security(()),
        responses((status = 200, description = "The session (if any) ended", body = Confirmation)))]
    pub(super) fn logout() {}

    #[utoipa::path(get, path = "/api/auth/me", tag = "auth", responses((status = 200, body = User)))]
    pub(super) fn me() {}

    #[utoipa::path(post, path = "/api/auth/password", tag = "auth", request_body = PasswordChangeBody,
        responses(
            (status = 200, description = "Changed; every other session ended, the account's API tokens revoked", body = PasswordChanged),
            (status = 422, description = "Wrong current password, or the new one fails the password policy (`fields` says why)", body = ErrorEnvelope),
            (status = 429, description = "Too many password checks from this address or for this account", body = ErrorEnvelope),
        ))]
    pub(super) fn change_password() {}

    #[utoipa::path(post, path = "/api/auth/password/check", tag = "auth", request_body = PasswordCheckBody,
        responses(
            (status = 200, description = "The policy's verdict; nothing is stored", body = PasswordVerdict),
            (status = 403, description = "Another user's account: admins only", body = ErrorEnvelope),
            (status = 404, description = "No user has this user_id", body = ErrorEnvelope),
            (status = 422, description = "No password, or a user_id that is not a number", body = ErrorEnvelope),
        ))]
    pub(super) fn check_password() {}

    #[utoipa::path(get, path = "/api/tokens", tag = "auth",
        params(("user_id" = Option<i64>, Query, description = "Admins: one user's tokens")),
        responses(
            (status = 200, body = [ApiToken]),
            (status = 400, description = "A bad user_id", body = ErrorEnvelope),
        ))]
    pub(super) fn list_tokens() {}

    #[utoipa::path(post, path = "/api/tokens", tag = "auth", request_body = NewTokenBody,
        responses(
            (status = 201, description = "The token, shown this once", body = CreatedToken),
            (status = 403, description = "A token for someone else: admins only", body = ErrorEnvelope),
            (status = 422, description = "Invalid fields, or no such user", body = ErrorEnvelope),
        ))]
    pub(super) fn create_token() {}

    #[utoipa::path(delete, path = "/api/tokens/{id}", tag = "auth", params(("id" = i64, Path)),
        responses((status = 200, body = Confirmation), (status = 404, body = ErrorEnvelope)))]
    pub(super) fn revoke_token() {}

    #[utoipa::path(get, path = "/api/hello", tag = "examples",
        params(("name" = Option<String>, Query, description = "Who to greet; default World")),
        responses((status = 200, description = "A greeting", body = Hello)))]
    pub(super) fn hello() {}

    #[utoipa::path(get, path = "/api/data", tag = "examples",
        responses((status = 200, description = "UUID, datetime, date, exact decimal and set in JSON", body = Showcase)))]
    pub(super) fn data() {}

    #[utoipa::path(get, path = "/api/error", tag = "examples",
        params(("status" = Option<u16>, Query, description = "One of 400, 401, 403, 404, 405, 409, 410, 413, 415, 422, 429, 500, 503 (default 400); another is a 400")),
        responses(
            (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
            (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
            (status = 405, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope),
            (status = 410, body = ErrorEnvelope), (status = 413, body = ErrorEnvelope),
            (status = 415, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope),
            (status = 429, body = ErrorEnvelope), (status = 500, body = ErrorEnvelope),
            (status = 503, body = ErrorEnvelope),
        ))]
    pub(super) fn error() {}

    #[utoipa::path(get, path = "/healthz", tag = "operations", security(()),
        responses((status = 200, description = "The process answers", body = Health)))]
    pub(super) fn healthz() {}

    #[utoipa::path(get, path = "/readyz", tag = "operations", security(()),
        responses(
            (status = 200, description = "The store (and Redis, when configured) answer", body = Readiness),
            (status = 503, description = "Not ready", body = ErrorEnvelope),
        ))]
    pub(super) fn readyz() {}

    #[utoipa::path(get, path = "/metrics", tag = "operations",
        responses(
            (status = 200, description = "Prometheus text", content_type = "text/plain", body = String),
            (status = 403, description = "Admins only", body = ErrorEnvelope),
        ))]
    pub(super) fn metrics() {}
}
use operations::*;

/// The probes sit outside authentication, rate limits and the request timeout.
const PROBES: [&str; 2] = ["/healthz", "/readyz"];

/// Adds to every operation the errors the layers in front of its handler can answer
/// (see `crate::http`), unless the operation already describes that status:
///
/// - 401: a missing, malformed, unknown or revoked credential (on public operations
///   too: a bad `Authorization` header is refused wherever it is sent);
/// - 403: an unsafe method with a session cookie but no same-origin evidence (CSRF);
/// - 400: a malformed JSON body, or a query parameter of the wrong type;
/// - 404: a path parameter that does not parse names nothing;
/// - 413 and 415: a body too large, or not `application/json`;
/// - 429: a rate limit (`Retry-After`);
/// - 503: the store is unreachable, or the request timed out.
struct MiddlewareErrors;

impl MiddlewareErrors {
    fn statuses(path: &str, method: &str, operation: &Operation) -> Vec<(u16, &'static str)> {
        if PROBES.contains(&path) {
            return if path == "/readyz" {
                vec![(503, "Not ready")]
            } else {
                Vec::new()
            };
        }
        let parameters = operation.parameters.as_deref().unwrap_or_default();
        let has = |location: utoipa::openapi::path::ParameterIn| {
            parameters.iter().any(|p| match p {
                RefOr::T(p) => p.parameter_in == location,
                RefOr::Ref(_) => false,
            })
        };
        let mut statuses = vec![
            (
                401,
                "Not logged in, or a bad, expired or revoked credential",
            ),
            (429, "Rate limited; `Retry-After` says when to try again"),
            (
                503,
                "The store is unreachable, or the request took too long",
            ),
        ];
        if !matches!(method, "get" | "head" | "options") {
            statuses.push((
                403,
                "Refused: a cookie-authenticated write without same-origin evidence or a valid `X-CSRFToken` (CSRF)",
            ));
        }
        if operation.request_body.is_some() {
            statuses.push((400, "Malformed JSON, or a body of the wrong shape"));
            statuses.push((413, "The body is larger than `--max-body-bytes`"));
            statuses.push((415, "`Content-Type` is not `application/json`"));
        }
        if has(utoipa::openapi::path::ParameterIn::Query) {
            statuses.push((400, "A query parameter of the wrong type"));
        }
        if has(utoipa::openapi::path::ParameterIn::Path) {
            statuses.push((404, "Nothing has this id"));
        }
        statuses
    }
}

/// The operations of a path item, with their lower-case method names.
fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = (&'static str, &mut Operation)> {
    [
        ("get", item.get.as_mut()),
        ("put", item.put.as_mut()),
        ("post", item.post.as_mut()),
        ("delete", item.delete.as_mut()),
        ("patch", item.patch.as_mut()),
    ]
    .into_iter()
    .filter_map(|(method, operation)| operation.map(|o| (method, o)))
}

impl Modify for MiddlewareErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            for (method, operation) in operations_mut(item) {
                for (status, description) in Self::statuses(path, method, operation) {
                    let response = ResponseBuilder::new()
                        .description(description)
                        .content(
                            "application/json",
                            utoipa::openapi::content::Content::new(Some(Ref::from_schema_name(
                                "ErrorEnvelope",
                            ))),
                        )
                        .build();
                    operation
                        .responses
                        .responses
                        .entry(status.to_string())
                        .or_insert(RefOr::T(response));
                }
            }
        }
    }
}

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
        room_messages, room_presence, notifications, get_settings, patch_settings,
        list_sessions, end_sessions, end_session, unread_notifications, mark_notifications_read,
        check_password,
        open_room, open_direct, leave_room, room_read, mark_room_read
    ),
    components(schemas(
        User, Role, Profile, ProfileUser, Settings, Stats, ApiToken, ErrorEnvelope,
        NewUserBody, UserChangesBody, Confirmation, LoginBody, PasswordChangeBody, PasswordChanged,
        NewTokenBody,
        CreatedToken, BatchItem, BatchBody, BatchOutcome, ChatMessage, Author, SendBody,
        PresenceSnapshot, RoomEntry, Hello, Showcase, Health, Readiness, SettingsChangesBody,
        SessionInfo, SessionsEnded, ReadState, MarkReadBody, PasswordCheckBody, PasswordVerdict,
        Rules,
        OpenRoomBody, DirectBody, Opened, RoomRead
    )),
    modifiers(&Security, &MiddlewareErrors),
    security(("session" = []), ("token" = [])),
    tags(
        (name = "directory", description = "Users: list, search, create, edit, delete"),
        (name = "auth", description = "Logging in, sessions, API tokens"),
        (name = "account", description = "Your settings, sessions and read notifications"),
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

#[cfg(test)]
mod tests {
    use utoipa::ToSchema;
    use utoipa::openapi::schema::Schema;

    use super::*;
    use crate::error::FieldErrors;
    use crate::hub::message::{check_room, clean_text};

    fn pattern_of(schema: Schema) -> regex::Regex {
        let Schema::Object(object) = schema else {
            panic!("not an object schema")
        };
        regex::Regex::new(&object.pattern.expect("a pattern")).expect("a valid regex")
    }

    /// Strings on both sides of each rule: lengths around the limits, white space
    /// and control characters inside and around, invisible and bidi characters.
    fn samples(max: usize) -> Vec<String> {
        let mut all: Vec<String> = [
            "Dana",
            "  Dana  ",
            "",
            " ",
            "\t\n",
            "a\u{0}b",
            "\u{0}",
            "\tAb\n",
            "a\nb",
            "a\tb",
            "\u{85}ab\u{85}",
            "a\u{85}b",
            "\u{1c}ab",
            "ab\u{7f}",
            "a\u{9f}",
            "\u{a0}x\u{a0}",
            "\u{3000}名前\u{3000}",
            "a\u{200b}b",
            "\u{202e}abc",
            "a\u{2028}b",
            "\u{2028}ab",
            "👩\u{200d}👩\u{200d}👧",
            "a\u{200d}",
            "Zoë",
            "\u{feff}x",
            "a\u{ad}b",
            "🏴\u{e0067}\u{e0062}\u{e007f}",
        ]
        .map(String::from)
        .to_vec();
        for n in [max - 1, max, max + 1] {
            all.push("é".repeat(n));
            all.push(format!("  {}  ", "x".repeat(n)));
            all.push(format!("a{}b", " ".repeat(n.saturating_sub(2))));
        }
        all
    }

    /// Joiners and flag tags are allowed by context (between two visible characters,
    /// after a black flag), which a pattern does not attempt: it may refuse such a
    /// name the server takes.
    fn context_dependent(sample: &str) -> bool {
        sample
            .chars()
            .any(|c| matches!(c, '\u{200c}' | '\u{200d}' | '\u{e0020}'..='\u{e007f}'))
    }

    #[test]
    fn the_name_pattern_accepts_what_check_name_accepts() {
        for schema in [name_schema(), token_name_schema()] {
            let pattern = pattern_of(schema);
            for sample in samples(crate::directory::model::NAME_MAX_CHARS) {
                let accepted =
                    crate::directory::model::check_name(&sample, &mut FieldErrors::new()).is_some();
                let matched = pattern.is_match(&sample);
                assert!(
                    accepted || !matched,
                    "{sample:?}: the document promises a name the server refuses"
                );
                assert!(
                    matched || !accepted || context_dependent(&sample),
                    "{sample:?}: the document refuses a name the server takes"
                );
            }
        }
    }

    #[test]
    fn the_text_pattern_accepts_exactly_what_clean_text_accepts() {
        let pattern = pattern_of(text_schema());
        for sample in samples(4_000) {
            assert_eq!(
                pattern.is_match(&sample),
                clean_text(&sample, 4_000).is_ok(),
                "{sample:?}: the document and the server disagree"
            );
        }
    }

    #[test]
    fn the_needle_patterns_refuse_exactly_the_control_characters() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        for (path, name) in [
            ("/api/users", "search"),
            ("/api/search", "q"),
            ("/api/autocomplete", "q"),
        ] {
            let parameter = doc["paths"][path]["get"]["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == name)
                .unwrap()
                .clone();
            let pattern = regex::Regex::new(parameter["schema"]["pattern"].as_str().unwrap())
                .expect("a valid regex");
            for needle in ["al", "Björn Å", "a\\u0000b", "", "\u{200e}x", "\u{a0}"] {
                assert!(pattern.is_match(needle), "{path} {name}: {needle:?}");
            }
            for needle in ["a\u{0}b", "\t", "x\n", "\u{7f}", "\u{85}", "\u{9f}"] {
                assert!(!pattern.is_match(needle), "{path} {name}: {needle:?}");
                assert!(needle.chars().any(char::is_control));
            }
        }
    }

    #[test]
    fn the_room_pattern_accepts_exactly_what_check_room_accepts() {
        let pattern = pattern_of(room_schema());
        let mut rooms: Vec<String> = [
            "general", "a", "A-1_b.c", "-x", ".a", "a b", "é", "user:1", "",
        ]
        .map(String::from)
        .to_vec();
        rooms.extend(["x".repeat(64), "x".repeat(65)]);
        for room in rooms {
            assert_eq!(
                pattern.is_match(&room),
                check_room(&room).is_ok(),
                "{room:?}"
            );
        }
    }

    /// The list's `sort`, `order` and `role` patterns admit exactly what the server takes,
    /// the empty value (the default, as the directory page's form sends it) included.
    #[test]
    fn the_list_ordering_patterns_admit_what_the_server_takes() {
        use crate::directory::order::{ListOrder, parse_role};
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        type Takes = fn(&str) -> bool;
        let accepted: [(&str, Takes); 3] = [
            ("sort", |v| ListOrder::parse(Some(v), None).is_ok()),
            ("order", |v| ListOrder::parse(None, Some(v)).is_ok()),
            ("role", |v| parse_role(Some(v)).is_ok()),
        ];
        for (name, takes) in accepted {
            let parameter = doc["paths"]["/api/users"]["get"]["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == name)
                .unwrap()
                .clone();
            let pattern =
                regex::Regex::new(parameter["schema"]["pattern"].as_str().unwrap()).unwrap();
            for sample in [
                "", "created", "name", "email", "asc", "desc", "admin", "member", "x", "ASC",
            ] {
                assert_eq!(
                    pattern.is_match(sample),
                    takes(sample),
                    "{name}={sample:?}: the document's pattern is {pattern}"
                );
            }
        }
    }

    /// Every room route documents one `{room}`: whatever its pattern admits, the
    /// server takes from a member (public rooms, `dm:A:B` of the caller), and whatever
    /// it refuses, the server answers 400 or 403 for, as the responses say.
    #[test]
    fn every_room_route_documents_the_rooms_the_server_takes() {
        use crate::hub::message::check_room_for;
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let routes = [
            ("/api/rooms/{room}/membership", "delete"),
            ("/api/rooms/{room}/read", "get"),
            ("/api/rooms/{room}/read", "post"),
            ("/api/rooms/{room}/messages", "get"),
            ("/api/rooms/{room}/presence", "get"),
        ];
        let caller = 7;
        for (path, method) in routes {
            let operation = &doc["paths"][path][method];
            let room = operation["parameters"]
                .as_array()
                .unwrap_or_else(|| panic!("{method} {path}: no parameters"))
                .iter()
                .find(|p| p["name"] == "room" && p["in"] == "path")
                .unwrap_or_else(|| panic!("{method} {path}: no room"));
            let pattern = regex::Regex::new(room["schema"]["pattern"].as_str().unwrap()).unwrap();
            for status in ["400", "403"] {
                assert!(
                    operation["responses"][status].is_object(),
                    "{method} {path}: {status} undocumented"
                );
            }
            let mut samples: Vec<String> = [
                "general", "A-1_b.c", "dm:3:7", "dm:7:9", "-x", "a b", "", "user:7", "dm:x:7",
            ]
            .map(String::from)
            .to_vec();
            samples.extend(["x".repeat(64), "x".repeat(65)]);
            for sample in samples {
                let answer = check_room_for(&sample, caller).map_err(|e| e.status().as_u16());
                if sample.starts_with("user:") {
                    // Your own notifications: documented as /api/notifications instead.
                    assert!(!pattern.is_match(&sample), "{path}: {sample:?}");
                    continue;
                }
                assert_eq!(
                    pattern.is_match(&sample),
                    answer.is_ok(),
                    "{method} {path}: {sample:?} (server: {answer:?})"
                );
            }
            assert_eq!(
                check_room_for("dm:2:3", caller).map_err(|e| e.status().as_u16()),
                Err(403)
            );
            assert!(
                pattern.is_match("dm:2:3"),
                "{path}: another's dm is a 403, not a bad name"
            );
        }
    }

    /// Two types of one name would share one entry of `components.schemas` (one
    /// silently replacing the other): each type's schema must be the one its name
    /// stands for in the document.
    #[test]
    fn every_schema_name_stands_for_one_type() {
        fn check<T: ToSchema>(schemas: &BTreeMap<String, RefOr<Schema>>) {
            let name = T::name();
            let registered = schemas
                .get(name.as_ref())
                .unwrap_or_else(|| panic!("{name} is not in the document"));
            assert_eq!(
                serde_json::to_value(registered).unwrap(),
                serde_json::to_value(T::schema()).unwrap(),
                "{name} in the document is another type's schema"
            );
        }
        let doc = ApiDoc::openapi();
        let schemas = &doc.components.as_ref().unwrap().schemas;
        check::<User>(schemas);
        check::<Role>(schemas);
        check::<Profile>(schemas);
        check::<ProfileUser>(schemas);
        check::<Settings>(schemas);
        check::<Stats>(schemas);
        check::<ApiToken>(schemas);
        check::<ErrorEnvelope>(schemas);
        check::<NewUserBody>(schemas);
        check::<UserChangesBody>(schemas);
        check::<Confirmation>(schemas);
        check::<LoginBody>(schemas);
        check::<PasswordChangeBody>(schemas);
        check::<PasswordChanged>(schemas);
        check::<NewTokenBody>(schemas);
        check::<CreatedToken>(schemas);
        check::<BatchItem>(schemas);
        check::<BatchBody>(schemas);
        check::<BatchOutcome>(schemas);
        check::<ChatMessage>(schemas);
        check::<Author>(schemas);
        check::<SendBody>(schemas);
        check::<PresenceSnapshot>(schemas);
        check::<RoomEntry>(schemas);
        check::<Hello>(schemas);
        check::<Showcase>(schemas);
        check::<Health>(schemas);
        check::<Readiness>(schemas);
        check::<SettingsChangesBody>(schemas);
        check::<SessionInfo>(schemas);
        check::<SessionsEnded>(schemas);
        check::<ReadState>(schemas);
        check::<MarkReadBody>(schemas);
        check::<PasswordCheckBody>(schemas);
        check::<PasswordVerdict>(schemas);
        check::<Rules>(schemas);
        check::<OpenRoomBody>(schemas);
        check::<DirectBody>(schemas);
        check::<Opened>(schemas);
        check::<RoomRead>(schemas);
        // Every schema the document has was checked above.
        assert_eq!(schemas.len(), 40, "{:?}", schemas.keys());
    }
}
