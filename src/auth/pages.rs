//! The HTML side of logging in: `GET/POST /login` (a plain form that works without
//! JavaScript) and `POST /logout`.

use askama::Template;
use axum::Form;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;

use super::handlers::{begin_session, check_login, end_session};
use super::{Identity, audit};
use crate::AppState;
use crate::error::ApiError;
use crate::http::extract::Query;
use crate::http::redirect::local_target;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login", get(show).post(submit))
        .route("/logout", post(logout))
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    next: &'a str,
    email: &'a str,
    error: Option<&'a str>,
}

fn render(page: &LoginPage<'_>, status: StatusCode) -> Result<Response, ApiError> {
    let html = page.render().map_err(ApiError::internal)?;
    Ok((status, Html(html)).into_response())
}

/// Where to go after logging in: a path on this site (see
/// [`crate::http::redirect::local_target`]), else the directory.
fn safe_next(next: Option<&str>) -> String {
    next.and_then(local_target)
        .unwrap_or_else(|| "/".to_owned())
}

#[derive(Deserialize)]
struct NextParam {
    next: Option<String>,
}

async fn show(
    identity: Option<Identity>,
    Query(params): Query<NextParam>,
) -> Result<Response, ApiError> {
    let next = safe_next(params.next.as_deref());
    if identity.is_some() {
        return Ok(Redirect::to(&next).into_response());
    }
    render(
        &LoginPage {
            next: &next,
            email: "",
            error: None,
        },
        StatusCode::OK,
    )
}

#[derive(Deserialize)]
struct LoginForm {
    email: String,
    password: String,
    next: Option<String>,
}

async fn submit(
    State(state): State<AppState>,
    origin: audit::Origin,
    jar: CookieJar,
    Form(form): Form<LoginForm>,
) -> Result<Response, ApiError> {
    let next = safe_next(form.next.as_deref());
    let page = |error| LoginPage {
        next: &next,
        email: &form.email,
        error: Some(error),
    };
    match check_login(&state, &origin, &form.email, &form.password).await {
        Ok(Some(user)) => {
            audit::login_succeeded(&origin, user.id, &user.email);
            let mut response = Redirect::to(&next).into_response();
            begin_session(&state, &jar, &origin, user.id, &mut response).await?;
            Ok(response)
        }
        Ok(None) => {
            audit::login_failed(&origin, &form.email);
            render(
                &page("Invalid email or password."),
                StatusCode::UNAUTHORIZED,
            )
        }
        Err(ApiError::TooManyRequests { retry_after }) => {
            let mut response = render(
                &page(
                    "Too many failed attempts for this account. Wait a few seconds and try again.",
                ),
                StatusCode::TOO_MANY_REQUESTS,
            )?;
            let secs = retry_after.as_secs_f64().ceil().max(1.0) as u64;
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
            Ok(response)
        }
        Err(other) => Err(other),
    }
}

async fn logout(State(state): State<AppState>, jar: CookieJar) -> Result<Response, ApiError> {
    let mut response = Redirect::to("/login").into_response();
    end_session(&state, &jar, &mut response).await?;
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next(Some("/chat?room=a")), "/chat?room=a");
        // The hostile cases are `local_target`'s tests; these show the fallback.
        assert_eq!(safe_next(Some("/\t/evil.example/")), "/");
        assert_eq!(safe_next(Some("//evil.example")), "/");
        assert_eq!(safe_next(None), "/");
    }
}
