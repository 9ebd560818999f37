//! `x-request-id`: taken from the request when it is a sane token (so a proxy's id
//! follows the request through our logs), otherwise a fresh UUIDv7 (time-ordered, so
//! ids sort like the log). Put on the request for the tracing span and handlers, and
//! on every response.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest incoming id we keep; anything longer is replaced, not truncated.
const MAX_INCOMING_LEN: usize = 128;

#[derive(Clone, Debug)]
pub struct RequestId(HeaderValue);

impl RequestId {
    pub fn as_str(&self) -> &str {
        // Only ever built from visible ASCII, see `acceptable`.
        self.0.to_str().unwrap_or_default()
    }
}

fn acceptable(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_INCOMING_LEN
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=".contains(b))
}

pub async fn request_id(mut request: Request, next: Next) -> Response {
    let id = match request.headers().get(&X_REQUEST_ID) {
        Some(value) if acceptable(value) => value.clone(),
        _ => {
            let fresh = uuid::Uuid::now_v7().to_string();
            HeaderValue::from_str(&fresh).expect("a UUID is a valid header value")
        }
    };
    request
        .headers_mut()
        .insert(X_REQUEST_ID.clone(), id.clone());
    request.extensions_mut().insert(RequestId(id.clone()));
    let mut response = next.run(request).await;
    response.headers_mut().insert(X_REQUEST_ID.clone(), id);
    response
}
