//! Cross-site request forgery: which cookie-authenticated writes to believe.
//!
//! A write (POST, PUT, PATCH, DELETE) that does not carry a bearer token is accepted
//! when the browser says it comes from our own pages:
//! 1. `Sec-Fetch-Site: same-origin` (or `none`, a user action such as a bookmark);
//! 2. otherwise an `Origin` equal to ours or to an allowed origin;
//! 3. otherwise, when neither header is there (old browsers, non-browser clients) and
//!    the request carries a session cookie, an `X-CSRFToken` header equal to the
//!    `csrftoken` cookie, whose signature binds it to that session (so a cookie planted
//!    by a sibling subdomain is useless). A request with no session cookie has no
//!    ambient authority to abuse and passes step 3.
//!
//! `Sec-Fetch-Site: cross-site`/`same-site` or a foreign `Origin` is refused even with
//! a token: our own pages never send those. tower-http's `CsrfLayer` would let a
//! request with neither header through without a token, hence this module.
//!
//! The `csrftoken` cookie is always set (readable by scripts: that is the point of the
//! double submit), so code written for Django/Flask-WTF that copies it into
//! `X-CSRFToken` works unchanged.
//!
//! A plain HTML form cannot set a header, so in step 3 a urlencoded form post may carry
//! the same token as a `csrfmiddlewaretoken` field instead (Django's name). Our pages
//! put it in every form ([`CsrfToken`] gives handlers the current value); browsers that
//! send `Sec-Fetch-Site` or `Origin` never need it.

use axum::http::{HeaderMap, Method, header};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::AuthState;
use super::random_token;
use crate::error::ApiError;

pub const CSRF_COOKIE: &str = "csrftoken";
pub const CSRF_HEADER: &str = "x-csrftoken";
/// The form field that stands in for the header in HTML form posts.
pub const CSRF_FIELD: &str = "csrfmiddlewaretoken";

/// The `csrftoken` valid for this request's session (the cookie's, or the new one the
/// response is setting), for pages to put in their forms' [`CSRF_FIELD`]. Empty for
/// requests the authentication middleware did not see.
#[derive(Clone, Debug, Default)]
pub struct CsrfToken(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for CsrfToken {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<CsrfToken>()
            .cloned()
            .unwrap_or_default())
    }
}

/// Whether a refused request may still pass on a [`CSRF_FIELD`] in its body: a
/// urlencoded form with neither `Sec-Fetch-Site` nor `Origin` (a browser that sends
/// either has been judged by it already).
pub fn may_carry_form_token(headers: &HeaderMap) -> bool {
    !headers.contains_key("sec-fetch-site")
        && !headers.contains_key(header::ORIGIN)
        && headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

/// The [`CSRF_FIELD`] of a urlencoded body, if any.
pub fn form_token(body: &[u8]) -> Option<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .ok()?
        .into_iter()
        .find_map(|(name, value)| (name == CSRF_FIELD).then_some(value))
}

/// Step 3 with the token from a form field: it must equal the `csrftoken` cookie and
/// be signed for this session, exactly as the header would.
pub fn check_form_token(
    jar: &CookieJar,
    token: Option<&str>,
    binding: &str,
    auth: &AuthState,
) -> bool {
    match (jar.get(CSRF_COOKIE).map(|c| c.value()), token) {
        (Some(cookie), Some(token)) => {
            bool::from(cookie.as_bytes().ct_eq(token.as_bytes()))
                && is_valid(&auth.csrf_key, token, binding)
        }
        _ => false,
    }
}

pub fn is_unsafe(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

fn signature(key: &[u8], nonce: &str, binding: &str) -> String {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(b"csrf\0");
    mac.update(nonce.as_bytes());
    mac.update(b"\0");
    mac.update(binding.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// A fresh token bound to `binding` (the session id hash, or "" for no session).
pub fn issue(key: &[u8], binding: &str) -> String {
    let nonce = random_token(16);
    let mac = signature(key, &nonce, binding);
    format!("{nonce}.{mac}")
}

/// Whether `token` was issued by us for `binding`.
pub fn is_valid(key: &[u8], token: &str, binding: &str) -> bool {
    let Some((nonce, mac)) = token.split_once('.') else {
        return false;
    };
    let expected = signature(key, nonce, binding);
    expected.as_bytes().ct_eq(mac.as_bytes()).into()
}

pub fn cookie(token: String, auth: &AuthState) -> Cookie<'static> {
    Cookie::build((CSRF_COOKIE, token))
        .path("/")
        .same_site(SameSite::Lax)
        .secure(auth.secure_cookies)
        // Long-lived: it only means something together with the session it is bound to.
        .max_age(time::Duration::days(365))
        .build()
}

/// The origin this request was addressed to: `scheme://host[:port]`.
fn own_origin(headers: &HeaderMap, authority: Option<&str>, tls: bool) -> Option<String> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or(authority)?;
    Some(format!("{}://{host}", if tls { "https" } else { "http" }))
}

/// Whether an `Origin` value may write with cookies / open a WebSocket.
pub fn origin_allowed(
    origin: &str,
    headers: &HeaderMap,
    authority: Option<&str>,
    auth: &AuthState,
) -> bool {
    own_origin(headers, authority, auth.secure_cookies)
        .is_some_and(|own| own.eq_ignore_ascii_case(origin))
        || auth
            .allowed_origins
            .iter()
            .any(|o| o.eq_ignore_ascii_case(origin))
}

/// Checks a cookie-authenticated unsafe request; `binding` is the hash of the session
/// cookie it carries, if any.
pub fn check(
    headers: &HeaderMap,
    authority: Option<&str>,
    jar: &CookieJar,
    binding: Option<&str>,
    auth: &AuthState,
) -> Result<(), ApiError> {
    let refuse = |why: &str| {
        Err(ApiError::Forbidden {
            code: "csrf_failed",
            message: format!("Cross-site request refused: {why}"),
        })
    };
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        Some("same-origin" | "none") => return Ok(()),
        Some(_) => {
            return match origin {
                Some(o)
                    if auth
                        .allowed_origins
                        .iter()
                        .any(|a| a.eq_ignore_ascii_case(o)) =>
                {
                    Ok(())
                }
                _ => refuse("it comes from another site"),
            };
        }
        None => {}
    }
    if let Some(origin) = origin {
        return if origin_allowed(origin, headers, authority, auth) {
            Ok(())
        } else {
            refuse("its Origin is not this server")
        };
    }
    let Some(binding) = binding else {
        return Ok(());
    };
    let cookie = jar.get(CSRF_COOKIE).map(|c| c.value());
    let header = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
    match (cookie, header) {
        (Some(cookie), Some(header))
            if bool::from(cookie.as_bytes().ct_eq(header.as_bytes()))
                && is_valid(&auth.csrf_key, header, binding) =>
        {
            Ok(())
        }
        (_, None) => refuse("the X-CSRFToken header is missing"),
        _ => refuse("the X-CSRFToken header does not match the csrftoken cookie"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_bound_to_their_session() {
        let key = b"k".repeat(32);
        let token = issue(&key, "session-a");
        assert!(is_valid(&key, &token, "session-a"));
        assert!(!is_valid(&key, &token, "session-b"));
        assert!(!is_valid(&key, &token, ""));
        assert!(!is_valid(b"other key", &token, "session-a"));
        assert!(!is_valid(&key, "no-dot", "session-a"));
    }

    #[test]
    fn the_form_field_is_read_from_urlencoded_bodies() {
        assert_eq!(
            form_token(b"name=A&csrfmiddlewaretoken=abc.d%2Be&email=x").as_deref(),
            Some("abc.d+e")
        );
        assert_eq!(form_token(b"name=A"), None);
    }

    #[test]
    fn only_header_less_form_posts_may_carry_the_token_in_the_body() {
        let form = |extra: Option<(&'static str, &'static str)>| {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::CONTENT_TYPE,
                "application/x-www-form-urlencoded".parse().unwrap(),
            );
            if let Some((name, value)) = extra {
                headers.insert(name, value.parse().unwrap());
            }
            headers
        };
        assert!(may_carry_form_token(&form(None)));
        assert!(!may_carry_form_token(&form(Some((
            "sec-fetch-site",
            "cross-site"
        )))));
        assert!(!may_carry_form_token(&form(Some((
            "origin",
            "https://evil.example"
        )))));
        let mut json = HeaderMap::new();
        json.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        assert!(!may_carry_form_token(&json));
    }
}
