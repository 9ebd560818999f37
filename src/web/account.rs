//! `/account`: your account on one page (and `/users/{id}/account`: anyone's, for an
//! admin). Name and email, the password, the theme and notification preferences, API
//! tokens and sessions, each a plain form that posts to `{base}/...` and is answered
//! by a redirect back (post/redirect/get) or by the page again with the server's
//! errors beside the fields. A new token is the exception: it is shown once, in the
//! answer to the post that made it, and never again. `web/static/account.js`
//! enhances the same forms through the JSON API.
//!
//! Every rule is the API's: the handlers here read their form into the same types the
//! API parses ([`crate::directory::input`]) and call the same functions
//! ([`crate::directory::service::update_user`], [`crate::account`], the token and
//! password functions of [`crate::auth::handlers`]).

use std::collections::BTreeMap;

use askama::Template;
use axum::Form;
use axum::Router;
use axum::extract::rejection::FormRejection;
use axum::extract::{RawPathParams, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::forms::{form_body, user_input};
use super::views::{Layout, PageError, UserForm, render};
use crate::AppState;
use crate::account::{change_settings, end_other_sessions, end_session_of, sessions_of};
use crate::auth::csrf::CsrfToken;
use crate::auth::handlers::{change_own_password, mint_token, revoke};
use crate::auth::model::ApiToken;
use crate::auth::{Identity, audit};
use crate::directory::input::{Field, Password, SettingsInput};
use crate::directory::model::{Settings, SettingsChanges, User, UserChanges};
use crate::directory::service::update_user;
use crate::error::{ApiError, FieldErrors};

/// The account page's routes, for your own account and (admins) anyone's.
pub fn routes(router: Router<AppState>) -> Router<AppState> {
    let mut router = router;
    for base in ["/account", "/users/{id}/account"] {
        router = router
            .route(base, get(show))
            .route(&format!("{base}/profile"), post(profile))
            .route(&format!("{base}/password"), post(password))
            .route(&format!("{base}/settings"), post(settings))
            .route(&format!("{base}/tokens"), post(create_token))
            .route(
                &format!("{base}/tokens/{{token}}/revoke"),
                post(revoke_token),
            )
            .route(
                &format!("{base}/sessions/{{session}}/end"),
                post(end_session),
            )
            .route(&format!("{base}/sessions/end-others"), post(end_others));
    }
    router
}

/// Whose account a request is about, and where its page lives.
struct Target {
    user: User,
    /// `/account` for your own, `/users/{id}/account` for an admin's view of another.
    base: String,
    own: bool,
    /// The path parameters besides `id` (`token`, `session`).
    params: BTreeMap<String, String>,
}

async fn target(
    state: &AppState,
    identity: &Identity,
    raw: &RawPathParams,
) -> Result<Target, ApiError> {
    let params: BTreeMap<String, String> = raw
        .iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let id = match params.get("id") {
        None => identity.id(),
        Some(id) => id.parse().map_err(|_| ApiError::not_found("User"))?,
    };
    if id != identity.id() {
        identity.require_admin()?;
    }
    let user = if id == identity.id() {
        identity.user.clone()
    } else {
        state
            .store
            .get_user(id)
            .await?
            .ok_or_else(|| ApiError::not_found("User"))?
    };
    let own = id == identity.id();
    Ok(Target {
        base: if own {
            "/account".into()
        } else {
            format!("/users/{id}/account")
        },
        own,
        user,
        params,
    })
}

/// A token as the page lists it.
pub struct TokenRow {
    pub id: i64,
    pub name: String,
    pub prefix: String,
    pub created: String,
    pub last_used: String,
    pub expires: String,
    pub revoked: bool,
    pub expired: bool,
}

impl TokenRow {
    fn new(token: &ApiToken, now: i64) -> Self {
        Self {
            id: token.id,
            name: token.name.clone(),
            prefix: token.prefix.clone(),
            created: when(Some(token.created_at), "—"),
            last_used: when(token.last_used_at, "Never"),
            expires: when(token.expires_at, "Never"),
            revoked: token.revoked_at.is_some(),
            expired: token.expires_at.is_some_and(|at| at <= now),
        }
    }
}

/// A session as the page lists it.
pub struct SessionRow {
    pub id: String,
    pub device: String,
    pub address: String,
    pub created: String,
    pub last_seen: String,
    pub current: bool,
}

/// `2026-12-07 01:02 UTC` (`none` when there is no time). Unix seconds in, for
/// people: the page has no JavaScript to localize it with.
fn when(unix: Option<i64>, none: &str) -> String {
    let Some(at) = unix.and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok()) else {
        return none.to_owned();
    };
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute()
    )
}

/// "Firefox on Linux", from a user agent; what people can tell their devices by.
/// Deliberately rough: a name to recognise, never used to decide anything.
pub fn device_name(user_agent: Option<&str>) -> String {
    let Some(agent) = user_agent.filter(|a| !a.trim().is_empty()) else {
        return "Unknown device".into();
    };
    let browser = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Chromium/", "Chromium"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
        ("python-requests", "Python requests"),
        ("reqwest", "reqwest"),
    ]
    .into_iter()
    .find(|(needle, _)| agent.contains(needle))
    .map(|(_, name)| name);
    let system = [
        ("iPhone", "iPhone"),
        ("iPad", "iPad"),
        ("Android", "Android"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ]
    .into_iter()
    .find(|(needle, _)| agent.contains(needle))
    .map(|(_, name)| name);
    match (browser, system) {
        (Some(browser), Some(system)) => format!("{browser} on {system}"),
        (Some(one), None) | (None, Some(one)) => one.to_owned(),
        (None, None) => agent.chars().take(60).collect(),
    }
}

/// What a form post left to show on the page it answers with.
#[derive(Default)]
pub struct Outcome {
    /// The profile form as typed, with its errors.
    pub profile: Option<UserForm>,
    /// Errors of the password, token and settings forms, by field name.
    pub errors: FieldErrors,
    /// A problem that belongs to no field.
    pub message: Option<String>,
    /// A token just made: its secret, shown this once.
    pub new_token: Option<String>,
    /// The token form as typed.
    pub token_name: String,
    pub token_days: String,
}

#[derive(Template)]
#[template(path = "account.html")]
pub struct AccountPage {
    pub layout: Layout,
    pub user: User,
    pub own: bool,
    pub base: String,
    /// The name-and-email form (`form`, as `user_fields.html` expects).
    pub form: UserForm,
    pub settings: Settings,
    pub tokens: Vec<TokenRow>,
    pub sessions: Vec<SessionRow>,
    pub notice: Option<&'static str>,
    pub errors: FieldErrors,
    pub message: Option<String>,
    pub new_token: Option<String>,
    pub token_name: String,
    pub token_days: String,
    pub min_chars: usize,
}

impl AccountPage {
    /// The error of `field`, for the template (`""` when none).
    pub fn error(&self, field: &str) -> &str {
        self.errors.get(field).map_or("", String::as_str)
    }

    pub fn has_error(&self, field: &str) -> bool {
        self.errors.contains_key(field)
    }

    pub fn days_is(&self, days: &str) -> bool {
        self.token_days == days
    }

    pub fn theme_is(&self, theme: &str) -> bool {
        self.settings.theme == theme
    }
}

fn notice(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "profile" => Some("Name and email saved."),
        "password" => Some("Password changed. Your other sessions have ended."),
        "password-reset" => Some("Password set. Their sessions and tokens have ended."),
        "settings" => Some("Preferences saved."),
        "revoked" => Some("Token revoked."),
        "ended" => Some("Session ended."),
        "ended-others" => Some("Every other session has ended."),
        _ => None,
    }
}

async fn page(
    state: &AppState,
    identity: &Identity,
    target: &Target,
    csrf: CsrfToken,
    done: Option<&str>,
    outcome: Outcome,
) -> Result<AccountPage, ApiError> {
    let user_id = target.user.id;
    let settings = state
        .store
        .get_settings(user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("User"))?;
    let now = crate::auth::model::unix_now();
    let tokens = state
        .store
        .list_tokens(Some(user_id))
        .await?
        .iter()
        .map(|token| TokenRow::new(token, now))
        .collect();
    let sessions = sessions_of(state, identity, user_id)
        .await?
        .into_iter()
        .map(|s| SessionRow {
            device: device_name(s.user_agent.as_deref()),
            address: s.client_ip.clone().unwrap_or_else(|| "Unknown".into()),
            created: when(Some(s.created_at), "—"),
            last_seen: when(Some(s.last_seen_at), "—"),
            current: s.current,
            id: s.id,
        })
        .collect();
    Ok(AccountPage {
        layout: Layout::load(state, identity, csrf).await,
        form: outcome
            .profile
            .unwrap_or_else(|| UserForm::from_user(&target.user)),
        user: target.user.clone(),
        own: target.own,
        base: target.base.clone(),
        settings,
        tokens,
        sessions,
        notice: notice(done),
        errors: outcome.errors,
        message: outcome.message,
        new_token: outcome.new_token,
        token_name: outcome.token_name,
        token_days: if outcome.token_days.is_empty() {
            "90".into()
        } else {
            outcome.token_days
        },
        min_chars: state.auth.password_policy.min_chars,
    })
}

#[derive(Deserialize, Default)]
pub struct ShowParams {
    done: Option<String>,
}

/// `GET /account`, `GET /users/{id}/account`.
async fn show(
    State(state): State<AppState>,
    identity: Identity,
    csrf: CsrfToken,
    raw: RawPathParams,
    params: Result<crate::http::extract::Query<ShowParams>, ApiError>,
) -> Result<Response, PageError> {
    let crate::http::extract::Query(params) = params?;
    let target = target(&state, &identity, &raw).await?;
    let page = page(
        &state,
        &identity,
        &target,
        csrf,
        params.done.as_deref(),
        Outcome::default(),
    )
    .await?;
    Ok(render(&page, StatusCode::OK))
}

/// The answer to a form post: `done` (a redirect back, or a page) when the post
/// succeeded; otherwise the page again with what went wrong (a 4xx), the form's
/// fields errors and typed values set by `refused`, or the error page for errors that
/// belong to no form.
async fn answer(
    state: &AppState,
    identity: &Identity,
    target: &Target,
    csrf: CsrfToken,
    done: Result<Response, ApiError>,
    refused: impl FnOnce(FieldErrors, Option<String>) -> Outcome,
) -> Result<Response, PageError> {
    let error = match done {
        Ok(response) => return Ok(response),
        Err(error) => error,
    };
    let status = error.status();
    let (fields, message) = match error {
        ApiError::Validation { fields, .. } | ApiError::Conflict { fields, .. }
            if !fields.is_empty() =>
        {
            (fields, None)
        }
        error @ (ApiError::Conflict { .. } | ApiError::Forbidden { .. }) => {
            (FieldErrors::new(), Some(error.to_string()))
        }
        other => return Err(other.into()),
    };
    let page = page(
        state,
        identity,
        target,
        csrf,
        None,
        refused(fields, message),
    )
    .await?;
    Ok(render(&page, status))
}

/// The errors of the API's `field` shown beside the page's `as_field`.
fn renamed(mut errors: FieldErrors, field: &str, as_field: &str) -> FieldErrors {
    if let Some(problem) = errors.remove(field) {
        errors.insert(as_field.into(), problem);
    }
    errors
}

fn back(target: &Target, done: &str, anchor: &str) -> Response {
    Redirect::to(&format!("{}?done={done}#{anchor}", target.base)).into_response()
}

/// The fields every form of this page may send; each handler reads its own. All
/// optional: a missing field is the validator's to name, not a parse failure.
#[derive(Deserialize, Default)]
pub struct AccountInput {
    name: Option<String>,
    email: Option<String>,
    role: Option<String>,
    current_password: Option<String>,
    new_password: Option<String>,
    theme: Option<String>,
    notify_mentions: Option<String>,
    notify_admin_changes: Option<String>,
    token_name: Option<String>,
    expires_in_days: Option<String>,
}

/// `POST {base}/profile`: name and email (and, for an admin, the role).
async fn profile(
    State(state): State<AppState>,
    identity: Identity,
    csrf: CsrfToken,
    raw: RawPathParams,
    form: Result<Form<AccountInput>, FormRejection>,
) -> Result<Response, PageError> {
    let target = target(&state, &identity, &raw).await?;
    let input = form_body(form)?;
    let fields = user_input(&input.name, &input.email, &input.role, identity.is_admin());
    let updated = match UserChanges::parse(&fields) {
        Ok((changes, password)) => {
            update_user(&state, &identity, target.user.id, changes, password).await
        }
        Err(invalid) => Err(invalid.into()),
    };
    let done = updated.map(|_| back(&target, "profile", "profile"));
    answer(&state, &identity, &target, csrf, done, |errors, message| {
        Outcome {
            profile: Some(UserForm {
                name: input.name.unwrap_or_default(),
                email: input.email.unwrap_or_default(),
                role: input.role.unwrap_or_default(),
                errors,
                message,
            }),
            ..Outcome::default()
        }
    })
    .await
}

/// `POST {base}/password`: your own (current and new), or an admin's reset of
/// another user's (new only).
async fn password(
    State(state): State<AppState>,
    identity: Identity,
    csrf: CsrfToken,
    origin: audit::Origin,
    jar: CookieJar,
    raw: RawPathParams,
    form: Result<Form<AccountInput>, FormRejection>,
) -> Result<Response, PageError> {
    let target = target(&state, &identity, &raw).await?;
    let input = form_body(form)?;
    let new = input.new_password.unwrap_or_default();
    let result = if target.own {
        let current = input.current_password.unwrap_or_default();
        let mut response = back(&target, "password", "password");
        change_own_password(
            &state,
            &identity,
            &origin,
            &jar,
            &current,
            &new,
            &mut response,
        )
        .await
        .map(|_| response)
    } else {
        let password = Some(Password::new(new));
        update_user(
            &state,
            &identity,
            target.user.id,
            UserChanges::default(),
            password,
        )
        .await
        .map(|_| back(&target, "password-reset", "password"))
    };
    answer(
        &state,
        &identity,
        &target,
        csrf,
        result,
        |errors, message| {
            Outcome {
                // An admin's reset names the API's field `password`.
                errors: renamed(errors, "password", "new_password"),
                message,
                ..Outcome::default()
            }
        },
    )
    .await
}

/// `POST {base}/settings`: the theme and the notification preferences (checkboxes:
/// one left out is off).
async fn settings(
    State(state): State<AppState>,
    identity: Identity,
    csrf: CsrfToken,
    raw: RawPathParams,
    form: Result<Form<AccountInput>, FormRejection>,
) -> Result<Response, PageError> {
    let target = target(&state, &identity, &raw).await?;
    let input = form_body(form)?;
    let fields = SettingsInput {
        theme: input.theme.into(),
        notify_mentions: Field::Given(input.notify_mentions.is_some()),
        notify_admin_changes: Field::Given(input.notify_admin_changes.is_some()),
        ..SettingsInput::default()
    };
    let changed = match SettingsChanges::parse(&fields) {
        Ok(changes) => change_settings(&state, target.user.id, &changes).await,
        Err(invalid) => Err(invalid.into()),
    };
    let done = changed.map(|_| back(&target, "settings", "preferences"));
    answer(&state, &identity, &target, csrf, done, |errors, message| {
        Outcome {
            errors,
            message,
            ..Outcome::default()
        }
    })
    .await
}

/// `POST {base}/tokens`: makes a token and answers with the page showing it, once
/// (not a redirect: the secret must not travel in a URL or be stored to show later).
async fn create_token(
    State(state): State<AppState>,
    identity: Identity,
    csrf: CsrfToken,
    raw: RawPathParams,
    form: Result<Form<AccountInput>, FormRejection>,
) -> Result<Response, PageError> {
    let target = target(&state, &identity, &raw).await?;
    let input = form_body(form)?;
    let name = input.token_name.clone().unwrap_or_default();
    let days = input.expires_in_days.clone().unwrap_or_default();
    let mut body = Map::new();
    body.insert("name".into(), Value::String(name.clone()));
    body.insert("user_id".into(), json!(target.user.id));
    let mut errors = FieldErrors::new();
    match days.trim() {
        "" | "never" => {}
        text => match text.parse::<i64>() {
            Ok(n) => {
                body.insert("expires_in_days".into(), json!(n));
            }
            Err(_) => {
                errors.insert(
                    "expires_in_days".into(),
                    "must be a whole number of days".into(),
                );
            }
        },
    }
    let result = if errors.is_empty() {
        mint_token(&state, &identity, &body).await
    } else {
        Err(ApiError::invalid(errors))
    };
    let created = match result {
        Ok(created) => created,
        Err(error) => {
            return answer(
                &state,
                &identity,
                &target,
                csrf,
                Err(error),
                |errors, message| Outcome {
                    errors: renamed(errors, "name", "token_name"),
                    message,
                    token_name: name,
                    token_days: days,
                    ..Outcome::default()
                },
            )
            .await;
        }
    };
    let outcome = Outcome {
        new_token: Some(created.token),
        ..Outcome::default()
    };
    let page = page(&state, &identity, &target, csrf, None, outcome).await?;
    let mut response = render(&page, StatusCode::CREATED);
    // The secret is in this page: no cache, not even the browser's history's.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `POST {base}/tokens/{token}/revoke`.
async fn revoke_token(
    State(state): State<AppState>,
    identity: Identity,
    raw: RawPathParams,
) -> Result<Response, PageError> {
    let target = target(&state, &identity, &raw).await?;
    let id = target
        .params
        .get("token")
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| ApiError::not_found("Token"))?;
    revoke(&state, &identity, id, Some(target.user.id)).await?;
    Ok(back(&target, "revoked", "tokens"))
}

/// `POST {base}/sessions/{session}/end`: ending the session you are using logs you out.
async fn end_session(
    State(state): State<AppState>,
    identity: Identity,
    raw: RawPathParams,
) -> Result<Response, PageError> {
    let target = target(&state, &identity, &raw).await?;
    let id = target.params.get("session").cloned().unwrap_or_default();
    let current = sessions_of(&state, &identity, target.user.id)
        .await?
        .into_iter()
        .any(|s| s.current && s.id == id);
    end_session_of(&state, target.user.id, &id).await?;
    if current {
        return Ok(Redirect::to("/login").into_response());
    }
    Ok(back(&target, "ended", "sessions"))
}

/// `POST {base}/sessions/end-others`: every session but this one (an admin looking at
/// someone else's account: all of theirs).
async fn end_others(
    State(state): State<AppState>,
    identity: Identity,
    raw: RawPathParams,
) -> Result<Response, PageError> {
    let target = target(&state, &identity, &raw).await?;
    end_other_sessions(&state, &identity, target.user.id).await?;
    Ok(back(&target, "ended-others", "sessions"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_are_named_from_user_agents() {
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
        assert_eq!(device_name(Some(firefox)), "Firefox on Linux");
        let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
        assert_eq!(device_name(Some(iphone)), "Safari on iPhone");
        let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";
        assert_eq!(device_name(Some(chrome)), "Chrome on Windows");
        assert_eq!(device_name(Some("curl/8.5.0")), "curl");
        assert_eq!(device_name(None), "Unknown device");
    }

    #[test]
    fn times_are_shown_in_utc() {
        assert_eq!(when(Some(0), "-"), "1970-01-01 00:00 UTC");
        assert_eq!(when(None, "Never"), "Never");
    }

    #[test]
    fn only_known_notices_are_shown() {
        assert_eq!(notice(Some("settings")), Some("Preferences saved."));
        assert_eq!(notice(Some("<b>")), None);
    }
}
