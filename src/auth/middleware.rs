//! The middleware that answers "who is this?" for every application request, and the
//! route layers that demand an answer.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar};

use super::session::SESSION_COOKIE;
use super::{Authenticated, Credential, Identity, audit, csrf, session, sha256_hex, token};
use crate::AppState;
use crate::error::ApiError;

/// Resolves the caller (bearer token first, then the session cookie), refuses
/// cross-site writes, and keeps the cookies tidy: an invalid session cookie is cleared
/// and a `csrftoken` valid for the current session is always set.
pub async fn authenticate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match run(state, request, next).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn run(state: AppState, mut request: Request, next: Next) -> Result<Response, ApiError> {
    let auth = &state.auth;
    let origin = audit::Origin::of(request.extensions(), request.headers(), &state);
    let jar = CookieJar::from_headers(request.headers());
    let bearer = token::from_headers(request.headers()).transpose()?;
    let session_id = jar
        .get(SESSION_COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty());

    if bearer.is_none() && csrf::is_unsafe(request.method()) {
        let presented = session_id.as_deref().map(sha256_hex);
        let authority = request.uri().authority().map(|a| a.as_str());
        let verdict = csrf::check(
            request.headers(),
            authority,
            &jar,
            presented.as_deref(),
            auth,
        );
        if let Err(refused) = verdict {
            // An HTML form cannot send the header: it may carry the token in its body.
            let (Some(binding), true) = (&presented, csrf::may_carry_form_token(request.headers()))
            else {
                let (method, uri) = (request.method().clone(), request.uri().clone());
                log_csrf_refusal(
                    &state,
                    &origin,
                    &method,
                    &uri,
                    session_id.as_deref(),
                    &refused,
                )
                .await;
                return Err(refused);
            };
            let (parts, body) = request.into_parts();
            let bytes = axum::body::to_bytes(body, state.config.http.max_body_bytes)
                .await
                .map_err(|_| ApiError::PayloadTooLarge)?;
            let token = csrf::form_token(&bytes);
            if !csrf::check_form_token(&jar, token.as_deref(), binding, auth) {
                let (method, uri) = (&parts.method, &parts.uri);
                log_csrf_refusal(
                    &state,
                    &origin,
                    method,
                    uri,
                    session_id.as_deref(),
                    &refused,
                )
                .await;
                return Err(refused);
            }
            request = Request::from_parts(parts, axum::body::Body::from(bytes));
        }
    }

    let identity = match (&bearer, &session_id) {
        (Some(token), _) => Some(token::resolve(state.store.as_ref(), token).await?),
        (None, Some(id)) => session::resolve(state.store.as_ref(), auth, id).await?,
        (None, None) => None,
    };
    let stale_session = bearer.is_none() && session_id.is_some() && identity.is_none();
    let binding = match &identity {
        Some(Identity {
            credential: Credential::Session { id_hash },
            ..
        }) => id_hash.clone(),
        _ => String::new(),
    };
    let current = jar
        .get(csrf::CSRF_COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|token| csrf::is_valid(&auth.csrf_key, token, &binding));
    let csrf_current = current.is_some();
    // Issued now, not after the response, so pages can put it in their forms.
    let csrf_token = current.unwrap_or_else(|| csrf::issue(&auth.csrf_key, &binding));

    let user_id = identity.as_ref().map(Identity::id);
    // Kept for the log of a refusal (both clones are reference counts, not copies).
    let method = request.method().clone();
    let uri = request.uri().clone();
    request.extensions_mut().insert(Authenticated(identity));
    request
        .extensions_mut()
        .insert(csrf::CsrfToken(csrf_token.clone()));
    let mut response = next.run(request).await;
    if response.status() == StatusCode::FORBIDDEN {
        let code = response
            .extensions()
            .get::<crate::error::Envelope>()
            .map_or("forbidden", |e| e.code);
        audit::forbidden(&origin, user_id, method.as_str(), uri.path(), code);
    }

    // Handlers that log in or out set these cookies themselves; leave theirs alone.
    let already_set = |name: &str| {
        response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .any(|v| v.as_bytes().starts_with(format!("{name}=").as_bytes()))
    };
    let mut cookies = Vec::new();
    if stale_session && !already_set(SESSION_COOKIE) {
        cookies.push(session::removal(auth));
    }
    if bearer.is_none() && !csrf_current && !already_set(csrf::CSRF_COOKIE) {
        cookies.push(csrf::cookie(csrf_token, auth));
    }
    for cookie in cookies {
        append_cookie(&mut response, cookie);
    }
    Ok(response)
}

/// The caller a request's bearer token or session cookie names, for the routes
/// outside [`authenticate`] (the probes); `None` when there is none, it is not valid,
/// or the store cannot say.
pub async fn identify(state: &AppState, headers: &axum::http::HeaderMap) -> Option<Identity> {
    if let Some(bearer) = token::from_headers(headers) {
        return token::resolve(state.store.as_ref(), &bearer.ok()?)
            .await
            .ok();
    }
    let jar = CookieJar::from_headers(headers);
    let id = jar.get(SESSION_COOKIE).filter(|c| !c.value().is_empty())?;
    session::resolve(state.store.as_ref(), &state.auth, id.value())
        .await
        .ok()
        .flatten()
}

/// Logs a CSRF refusal, with the account of the session cookie the request carried
/// (looked up only now: refusals are rare, requests are not).
async fn log_csrf_refusal(
    state: &AppState,
    origin: &audit::Origin,
    method: &Method,
    uri: &Uri,
    session_id: Option<&str>,
    refused: &ApiError,
) {
    let user_id = match session_id {
        Some(id) => session::resolve(state.store.as_ref(), &state.auth, id)
            .await
            .ok()
            .flatten()
            .map(|identity| identity.id()),
        None => None,
    };
    audit::csrf_refused(
        origin,
        user_id,
        method.as_str(),
        uri.path(),
        &refused.to_string(),
    );
}

pub fn append_cookie(response: &mut Response, cookie: Cookie<'static>) {
    if let Ok(value) = HeaderValue::from_str(&cookie.to_string()) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

fn is_authenticated(request: &Request) -> bool {
    matches!(
        request.extensions().get::<Authenticated>(),
        Some(Authenticated(Some(_)))
    )
}

/// Route layer for the API: 401 in the envelope for anonymous callers.
pub async fn require_identity(request: Request, next: Next) -> Response {
    if is_authenticated(&request) {
        next.run(request).await
    } else {
        ApiError::Unauthenticated.into_response()
    }
}

/// Route layer for HTML pages: anonymous visitors are sent to the login page, which
/// sends them back afterwards.
pub async fn require_login_page(request: Request, next: Next) -> Response {
    if is_authenticated(&request) {
        return next.run(request).await;
    }
    let wanted = request
        .uri()
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    let query = serde_urlencoded::to_string([("next", wanted)]).unwrap_or_default();
    Redirect::to(&format!("/login?{query}")).into_response()
}
