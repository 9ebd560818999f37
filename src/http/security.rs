//! Response headers that make browsers defensive (every response), and the CORS
//! allow-list (empty by default: no other site's page may call the API).

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// No inline script, no inline style attribute, no plugins, no framing, same-origin
/// connections only (WebSocket included): the UI is built to live within this.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; \
                   form-action 'self'; frame-ancestors 'none'";

/// Two years, subdomains included: once a site is on HTTPS it should not leave.
const HSTS: &str = "max-age=63072000; includeSubDomains";

fn set_default(response: &mut Response, name: HeaderName, value: &'static str) {
    response
        .headers_mut()
        .entry(name)
        .or_insert(HeaderValue::from_static(value));
}

pub async fn headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    set_default(&mut response, header::CONTENT_SECURITY_POLICY, CSP);
    set_default(&mut response, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set_default(
        &mut response,
        header::REFERRER_POLICY,
        "strict-origin-when-cross-origin",
    );
    set_default(&mut response, header::X_FRAME_OPTIONS, "DENY");
    set_default(
        &mut response,
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    set_default(
        &mut response,
        HeaderName::from_static("permissions-policy"),
        "camera=(), microphone=(), geolocation=()",
    );
    response
}

/// Strict-Transport-Security, added only when serving TLS (on plain HTTP it is
/// ignored by browsers and would only mislead).
pub async fn hsts(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    set_default(&mut response, header::STRICT_TRANSPORT_SECURITY, HSTS);
    response
}

/// CORS for the configured origins, with credentials (cookies) allowed for them.
pub fn cors(origins: &[String]) -> CorsLayer {
    let allowed: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o.trim()).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(allowed))
        .allow_credentials(true)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            HeaderName::from_static("x-csrftoken"),
            HeaderName::from_static("x-request-id"),
        ])
        .expose_headers([
            header::LINK,
            header::LOCATION,
            header::RETRY_AFTER,
            HeaderName::from_static("x-total-count"),
            HeaderName::from_static("x-request-id"),
            HeaderName::from_static("switchboard-position"),
            HeaderName::from_static("ratelimit-limit"),
            HeaderName::from_static("ratelimit-remaining"),
            HeaderName::from_static("ratelimit-reset"),
        ])
}
