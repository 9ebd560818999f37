//! Writes every error response in the one envelope (see [`crate::error`]).
//!
//! Two kinds of error reach this middleware: our own [`ApiError`]s, which carry an
//! [`Envelope`] extension and no body yet, and errors made by code that does not know
//! the envelope (axum's 404/405, a timeout, a panic caught below us), which carry a
//! plain-text body or none. Both leave here as JSON with the request id, so a client
//! parses one shape whatever failed. HTML pages answer errors in HTML and pass through;
//! and an error raised before a page's handler runs (a refused CSRF check, a rate
//! limit, an unknown page) is shown as the HTML error page to a browser navigating
//! outside `/api/`, with the same status and message. That page is the web layer's:
//! [`super::router`] hands its renderer in as this middleware's state
//! ([`PageRenderer`]), so this module knows no page.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use http_body_util::BodyExt;
use serde::Serialize;

use super::request_id::RequestId;
use crate::error::Envelope;

/// Plain-text bodies of client errors are kept as the message when at most this long:
/// they are axum's rejection texts, meant for clients. Longer ones are replaced.
const MAX_KEPT_TEXT: usize = 512;

#[derive(Serialize)]
struct EnvelopeBody<'a> {
    #[serde(flatten)]
    envelope: &'a Envelope,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
}

/// Renders the HTML error page a browser navigating to a page gets: (status, title,
/// message) -> the document.
pub type PageRenderer = fn(StatusCode, &str, &str) -> String;

pub async fn envelope(
    State(render_page): State<PageRenderer>,
    request: Request,
    next: Next,
) -> Response {
    let request_id = request.extensions().get::<RequestId>().cloned();
    let wants_page = is_page_navigation(&request);
    let mut response = next.run(request).await;
    let envelope = match response.extensions_mut().remove::<Envelope>() {
        Some(envelope) => envelope,
        None if needs_envelope(&response) => generic_envelope(&mut response).await,
        None => return response,
    };
    if wants_page {
        let status = response.status();
        let title = status.canonical_reason().unwrap_or("Error");
        let html = render_page(status, title, &envelope.error);
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        headers.remove(header::CONTENT_LENGTH);
        *response.body_mut() = Body::from(html);
        return response;
    }
    let body = EnvelopeBody {
        envelope: &envelope,
        request_id: request_id.as_ref().map(RequestId::as_str),
    };
    let json = serde_json::to_vec(&body).expect("an envelope always serialises");
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.remove(header::CONTENT_LENGTH);
    *response.body_mut() = Body::from(json);
    response
}

/// A browser asking for a page (not the API, not an asset): it reads HTML, not JSON.
fn is_page_navigation(request: &Request) -> bool {
    let path = request.uri().path();
    let accepts_html = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    accepts_html && !path.starts_with("/api/") && !path.starts_with("/static/")
}

/// An error response that is not already JSON (ours) or HTML (a page's own error).
fn needs_envelope(response: &Response) -> bool {
    if !(response.status().is_client_error() || response.status().is_server_error()) {
        return false;
    }
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    !(content_type.starts_with("application/json") || content_type.starts_with("text/html"))
}

async fn generic_envelope(response: &mut Response) -> Envelope {
    let status = response.status();
    let text = if status.is_client_error() {
        let body = std::mem::take(response.body_mut());
        match body.collect().await {
            Ok(collected) => String::from_utf8(collected.to_bytes().to_vec()).unwrap_or_default(),
            Err(_) => String::new(),
        }
    } else {
        String::new()
    };
    let kept = !text.trim().is_empty() && text.len() <= MAX_KEPT_TEXT;
    Envelope {
        error: if kept {
            text.trim().to_owned()
        } else {
            default_message(status).to_owned()
        },
        code: default_code(status),
        fields: None,
    }
}

fn default_message(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "Bad request",
        401 => "Authentication required",
        403 => "Forbidden",
        404 => "Not found",
        405 => "Method not allowed",
        406 => "Not acceptable",
        408 => "Request timed out",
        413 => "Request body is too large",
        415 => "Unsupported media type",
        429 => "Too many requests, retry later",
        503 => "Service temporarily unavailable",
        504 => "Timed out",
        s if s >= 500 => "Internal server error",
        _ => "Request failed",
    }
}

fn default_code(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad_request",
        401 => "unauthenticated",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        406 => "not_acceptable",
        408 => "timeout",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        429 => "rate_limited",
        503 => "unavailable",
        504 => "timeout",
        s if s >= 500 => "internal",
        _ => "error",
    }
}
