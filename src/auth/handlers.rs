//! The auth API: log in and out, who am I, change my password, API tokens.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum_extra::extract::cookie::CookieJar;
use serde::Serialize;
use serde_json::{Map, Value};

use super::middleware::append_cookie;
use super::model::{ApiToken, NewToken, unix_now};
use super::session::SESSION_COOKIE;
use super::{Credential, Identity, audit, csrf, password, session, sha256_hex, token};
use crate::AppState;
use crate::directory::model::{User, email_key};
use crate::error::{ApiError, FieldErrors};
use crate::http::extract::{Json, Path, Query};
use crate::hub::{EndReason, Ending, Revoked};
use crate::store::NewPassword;

/// Routes anyone may call.
pub fn public_router() -> Router<AppState> {
    Router::new()
        .route("/api/auth/login", post(login))
        .route("/api/auth/logout", post(logout))
}

/// Routes for logged-in callers.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/auth/me", get(me))
        .route("/api/auth/password", post(change_password))
        .route("/api/auth/password/check", post(check_password))
        .route("/api/tokens", get(list_tokens).post(create_token))
        .route("/api/tokens/{id}", delete(revoke_token))
}

/// The user whose email and password these are, or `None`. Takes the same argon2 time
/// whether or not the account exists, so a timing difference does not reveal it.
/// Spends the account's budget of failed checks ([`crate::limits::account`]): a 429
/// without checking anything once it is used up; a right password costs nothing.
pub(crate) async fn check_login(
    state: &AppState,
    origin: &audit::Origin,
    email: &str,
    password: &str,
) -> Result<Option<User>, ApiError> {
    // No account's email holds a control character (and PostgreSQL cannot even
    // compare one that is NUL): no lookup, the same answer as an unknown email.
    let email = email.trim();
    let email_key = email_key(email);
    let reservation = match state.limits.accounts.reserve(&email_key).await {
        Ok(reservation) => reservation,
        Err(retry_after) => {
            audit::login_throttled(origin, email, retry_after);
            return Err(ApiError::TooManyRequests { retry_after });
        }
    };
    let record = if email.chars().any(char::is_control) {
        None
    } else {
        state.store.find_login(&email_key).await?
    };
    let hash = record
        .as_ref()
        .and_then(|r| r.password_hash.clone())
        .unwrap_or_else(|| state.auth.dummy_hash.clone());
    let matches = password::verify(password.to_owned(), hash)
        .await
        .map_err(ApiError::internal)?;
    match record {
        Some(record) if matches && record.password_hash.is_some() => {
            state.limits.accounts.refund(reservation).await;
            Ok(Some(record.user))
        }
        _ => Ok(None),
    }
}

/// Starts a session for `user_id` on `response`: the session the request came with (if
/// any) is ended first, so an id planted before login never becomes valid, and a
/// `csrftoken` bound to the new session is issued with it.
pub(crate) async fn begin_session(
    state: &AppState,
    jar: &CookieJar,
    origin: &audit::Origin,
    user_id: i64,
    response: &mut Response,
) -> Result<(), ApiError> {
    if let Some(old) = jar.get(SESSION_COOKIE).filter(|c| !c.value().is_empty()) {
        delete_session(state, sha256_hex(old.value())).await?;
    }
    let id = session::start(state.store.as_ref(), &state.auth, user_id, origin.device()).await?;
    let binding = sha256_hex(&id);
    append_cookie(response, session::cookie(id, &state.auth));
    append_cookie(
        response,
        csrf::cookie(csrf::issue(&state.auth.csrf_key, &binding), &state.auth),
    );
    Ok(())
}

/// Ends the session the request came with, on `response`.
pub(crate) async fn end_session(
    state: &AppState,
    jar: &CookieJar,
    response: &mut Response,
) -> Result<(), ApiError> {
    if let Some(current) = jar.get(SESSION_COOKIE).filter(|c| !c.value().is_empty()) {
        delete_session(state, sha256_hex(current.value())).await?;
    }
    append_cookie(response, session::removal(&state.auth));
    append_cookie(
        response,
        csrf::cookie(csrf::issue(&state.auth.csrf_key, ""), &state.auth),
    );
    Ok(())
}

/// Deletes a session, and ends the realtime connections opened with it.
pub(crate) async fn delete_session(state: &AppState, id_hash: String) -> Result<(), ApiError> {
    state.store.delete_session(&id_hash).await?;
    state
        .hub
        .end_credential(Ending {
            revoked: Revoked::Session { id_hash },
            reason: EndReason::SessionEnded,
        })
        .await;
    Ok(())
}

/// A required string field of a JSON body.
fn string_field<'a>(
    body: &'a Map<String, Value>,
    field: &str,
    errors: &mut FieldErrors,
) -> &'a str {
    match body.get(field).and_then(Value::as_str) {
        Some(value) => value,
        None => {
            errors.insert(field.to_owned(), "is required".to_owned());
            ""
        }
    }
}

/// `POST /api/auth/login {"email", "password"}` -> 200 + the user, session cookie set.
async fn login(
    State(state): State<AppState>,
    origin: audit::Origin,
    jar: CookieJar,
    Json(body): Json<Map<String, Value>>,
) -> Result<Response, ApiError> {
    let mut errors = FieldErrors::new();
    let email = string_field(&body, "email", &mut errors);
    let password = string_field(&body, "password", &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    let Some(user) = check_login(&state, &origin, email, password).await? else {
        audit::login_failed(&origin, email);
        return Err(ApiError::BadCredentials);
    };
    audit::login_succeeded(&origin, user.id, &user.email);
    let mut response = Json(user.clone()).into_response();
    begin_session(&state, &jar, &origin, user.id, &mut response).await?;
    Ok(response)
}

#[derive(Serialize)]
struct Message {
    message: &'static str,
}

/// `POST /api/auth/logout`: ends the session (if any); always 200.
async fn logout(State(state): State<AppState>, jar: CookieJar) -> Result<Response, ApiError> {
    let mut response = Json(Message {
        message: "Logged out",
    })
    .into_response();
    end_session(&state, &jar, &mut response).await?;
    Ok(response)
}

async fn me(identity: Identity) -> Json<User> {
    Json(identity.user)
}

/// What `POST /api/auth/password` answers.
#[derive(Serialize)]
pub(crate) struct PasswordChanged {
    message: &'static str,
    /// The account's other sessions, now ended.
    pub sessions_ended: usize,
    /// The account's API tokens, now revoked (all but the one making this request).
    pub tokens_revoked: usize,
}

/// `POST /api/auth/password {"current_password", "new_password"}`: every other
/// session of the account ends and its API tokens are revoked (a stolen cookie or a
/// token minted with it dies with the old password); this client stays signed in (a
/// session gets a fresh id; a token making the change is kept). Guessing the current
/// password here costs the account's login budget, as a login does.
async fn change_password(
    State(state): State<AppState>,
    identity: Identity,
    origin: audit::Origin,
    jar: CookieJar,
    Json(body): Json<Map<String, Value>>,
) -> Result<Response, ApiError> {
    let mut errors = FieldErrors::new();
    let current = string_field(&body, "current_password", &mut errors);
    let new = string_field(&body, "new_password", &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    let mut response = Json(()).into_response();
    let changed = change_own_password(
        &state,
        &identity,
        &origin,
        &jar,
        current,
        new,
        &mut response,
    )
    .await?;
    let mut answer = Json(changed).into_response();
    for cookie in response.headers().get_all(axum::http::header::SET_COOKIE) {
        answer
            .headers_mut()
            .append(axum::http::header::SET_COOKIE, cookie.clone());
    }
    Ok(answer)
}

/// Changes the caller's own password (the API's and the account page's one way):
/// checks the policy and the current password, ends the other credentials, and puts
/// the caller's fresh session cookie on `response`.
pub(crate) async fn change_own_password(
    state: &AppState,
    identity: &Identity,
    origin: &audit::Origin,
    jar: &CookieJar,
    current: &str,
    new: &str,
    response: &mut Response,
) -> Result<PasswordChanged, ApiError> {
    let account = password::Account {
        name: &identity.user.name,
        email: &identity.user.email,
    };
    state
        .auth
        .password_policy
        .check_field(new, account, "new_password")?;
    if check_login(state, origin, &identity.user.email, current)
        .await?
        .is_none()
    {
        audit::password_check_failed(origin, identity.id());
        return Err(ApiError::validation(
            "current_password",
            "is not your current password",
        ));
    }
    let hash = password::hash(new.to_owned())
        .await
        .map_err(ApiError::internal)?;
    let keep_token = match identity.credential {
        Credential::Token { id } => Some(id),
        Credential::Session { .. } => None,
    };
    let ended = state
        .store
        .set_password(identity.id(), &NewPassword { hash, keep_token })
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    super::credentials_ended(state, &ended, "password changed").await;
    let own_session = match &identity.credential {
        Credential::Session { id_hash } => Some(id_hash),
        Credential::Token { .. } => None,
    };
    let changed = PasswordChanged {
        message: "Password changed",
        sessions_ended: ended
            .sessions
            .iter()
            .filter(|s| Some(*s) != own_session)
            .count(),
        tokens_revoked: ended.tokens.len(),
    };
    if own_session.is_some() {
        begin_session(state, jar, origin, identity.id(), response).await?;
    }
    Ok(changed)
}

/// What `POST /api/auth/password/check` answers.
#[derive(Serialize)]
struct PasswordVerdict {
    acceptable: bool,
    /// Every reason the policy refuses it, as phrases after "Password ..."; empty
    /// when acceptable.
    problems: Vec<String>,
    rules: password::Rules,
}

/// `POST /api/auth/password/check {"password", "user_id"?}`: what the policy says of
/// a password for your account (an admin: user `user_id`'s), so a form can show the
/// reasons as you type. Nothing is stored or changed; the change itself checks again.
async fn check_password(
    State(state): State<AppState>,
    identity: Identity,
    Json(body): Json<Map<String, Value>>,
) -> Result<Json<PasswordVerdict>, ApiError> {
    let mut errors = FieldErrors::new();
    let candidate = string_field(&body, "password", &mut errors);
    let user = match body.get("user_id") {
        None | Some(Value::Null) => Some(identity.user.clone()),
        Some(value) => match crate::http::extract::whole_number(value) {
            Some(id) if id == identity.id() => Some(identity.user.clone()),
            Some(id) => {
                identity.require_admin()?;
                // Schema-valid, so not a 422: the user is simply not there.
                let Some(user) = state.store.get_user(id).await? else {
                    return Err(ApiError::not_found("user"));
                };
                Some(user)
            }
            None => {
                errors.insert("user_id".into(), "must be a user id".into());
                None
            }
        },
    };
    let (Some(user), true) = (user, errors.is_empty()) else {
        return Err(ApiError::invalid(errors));
    };
    let policy = state.auth.password_policy;
    let problems = policy.problems(
        candidate,
        password::Account {
            name: &user.name,
            email: &user.email,
        },
    );
    Ok(Json(PasswordVerdict {
        acceptable: problems.is_empty(),
        problems,
        rules: policy.rules(),
    }))
}

/// A token with its secret, as answered once by `POST /api/tokens`.
#[derive(Serialize)]
pub(crate) struct CreatedToken {
    pub token: String,
    #[serde(flatten)]
    pub record: ApiToken,
}

pub(crate) const TOKEN_NAME_MAX_CHARS: usize = 100;
const TOKEN_MAX_DAYS: i64 = 3650;

/// `POST /api/tokens {"name", "expires_in_days"?, "user_id"?}` -> 201 with the token,
/// which is never shown again. Only an admin may make one for somebody else.
async fn create_token(
    State(state): State<AppState>,
    identity: Identity,
    Json(body): Json<Map<String, Value>>,
) -> Result<Response, ApiError> {
    let created = mint_token(&state, &identity, &body).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// Validates `body` (`name`, `expires_in_days`?, `user_id`?) and makes the token (the
/// API's and the account page's one way).
pub(crate) async fn mint_token(
    state: &AppState,
    identity: &Identity,
    body: &Map<String, Value>,
) -> Result<CreatedToken, ApiError> {
    let mut errors = FieldErrors::new();
    let name = string_field(body, "name", &mut errors).trim().to_owned();
    if errors.is_empty() && (name.is_empty() || name.chars().count() > TOKEN_NAME_MAX_CHARS) {
        errors.insert(
            "name".into(),
            format!("must be 1 to {TOKEN_NAME_MAX_CHARS} characters"),
        );
    } else if name.chars().any(char::is_control) {
        // PostgreSQL cannot store a NUL in text, and no name needs a control character.
        errors.insert("name".into(), "must not contain control characters".into());
    }
    // Shown in token lists as a name is: the same character rule.
    if let Some(problem) = errors
        .is_empty()
        .then(|| crate::directory::model::name_characters_problem(&name))
        .flatten()
    {
        errors.insert("name".into(), problem);
    }
    let expires_in_days = match body.get("expires_in_days") {
        None | Some(Value::Null) => None,
        Some(value) => match crate::http::extract::whole_number(value)
            .filter(|d| (1..=TOKEN_MAX_DAYS).contains(d))
        {
            Some(days) => Some(days),
            None => {
                errors.insert(
                    "expires_in_days".into(),
                    format!("must be a whole number from 1 to {TOKEN_MAX_DAYS}"),
                );
                None
            }
        },
    };
    let user_id = match body.get("user_id") {
        None | Some(Value::Null) => identity.id(),
        Some(value) => match crate::http::extract::whole_number(value) {
            Some(id) => id,
            None => {
                errors.insert("user_id".into(), "must be a user id".into());
                identity.id()
            }
        },
    };
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    if user_id != identity.id() {
        identity.require_admin()?;
        if state.store.get_user(user_id).await?.is_none() {
            return Err(ApiError::validation("user_id", "is not a user"));
        }
    }
    let minted = token::mint();
    let now = unix_now();
    let record = state
        .store
        .insert_token(&NewToken {
            user_id,
            name,
            token_hash: minted.hash,
            prefix: minted.prefix,
            created_at: now,
            expires_at: expires_in_days.map(|days| now + days * 86_400),
        })
        .await?;
    Ok(CreatedToken {
        token: minted.token,
        record,
    })
}

#[derive(serde::Deserialize)]
struct TokenQuery {
    user_id: Option<i64>,
}

/// `GET /api/tokens`: your tokens; an admin sees everyone's (or one user's with
/// `?user_id=`).
async fn list_tokens(
    State(state): State<AppState>,
    identity: Identity,
    Query(query): Query<TokenQuery>,
) -> Result<Json<Vec<ApiToken>>, ApiError> {
    let owner = if identity.is_admin() {
        query.user_id
    } else {
        Some(identity.id())
    };
    Ok(Json(state.store.list_tokens(owner).await?))
}

/// `DELETE /api/tokens/{id}`: revokes a token of yours (an admin: anyone's).
async fn revoke_token(
    State(state): State<AppState>,
    identity: Identity,
    Path(id): Path<i64>,
) -> Result<Json<Message>, ApiError> {
    revoke(&state, &identity, id, None).await?;
    Ok(Json(Message {
        message: "Token revoked",
    }))
}

/// Revokes token `id` if the caller may (its owner, or an admin), and, when `owner`
/// is given, only if it is that user's; ends the connections opened with it.
pub(crate) async fn revoke(
    state: &AppState,
    identity: &Identity,
    id: i64,
    owner: Option<i64>,
) -> Result<(), ApiError> {
    let token = state
        .store
        .get_token(id)
        .await?
        .ok_or_else(|| ApiError::not_found("Token"))?;
    // Someone else's token is "not found" to a member: its existence is not theirs to know.
    if (token.user_id != identity.id() && !identity.is_admin())
        || owner.is_some_and(|owner| owner != token.user_id)
    {
        return Err(ApiError::not_found("Token"));
    }
    state.store.revoke_token(id, unix_now()).await?;
    state
        .hub
        .end_credential(Ending {
            revoked: Revoked::Token { id },
            reason: EndReason::TokenRevoked,
        })
        .await;
    Ok(())
}
