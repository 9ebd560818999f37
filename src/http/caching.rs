//! HTTP caching for JSON reads: every successful JSON `GET` gets a validator (`ETag`)
//! and `Cache-Control: private, no-cache`, and a request whose `If-None-Match` names the
//! current validator gets `304 Not Modified` with no body.
//!
//! The tag is a digest of the body, taken before compression, so it changes exactly
//! when the data does and costs no bookkeeping in handlers. It is weak (`W/"..."`)
//! because the same JSON may leave gzip-, brotli- or un-compressed, and a strong tag
//! promises identical bytes. `private, no-cache` because this is per-account data: a
//! shared cache must not keep it, and a browser may keep it but must ask first (the
//! 304 makes asking cheap). `Vary: Cookie, Authorization` for the same reason.
//! Responses that set their own `ETag` or `Cache-Control` (static files, streams) are
//! left alone.

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use xxhash_rust::xxh3::xxh3_128;

/// Bodies larger than this, or of unknown length (streams), are passed through
/// untagged rather than held in memory (a 500-user page is ~100 KB).
const MAX_TAGGED_BYTES: usize = 8 * 1024 * 1024;

pub async fn conditional_get(request: Request, next: Next) -> Response {
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return next.run(request).await;
    }
    let if_none_match = request.headers().get(header::IF_NONE_MATCH).cloned();
    let response = next.run(request).await;
    if !is_taggable(&response) {
        return response;
    }
    let size = axum::body::HttpBody::size_hint(response.body());
    if size
        .upper()
        .is_none_or(|upper| upper > MAX_TAGGED_BYTES as u64)
    {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_TAGGED_BYTES).await else {
        // The handler's body failed midway: what was sent so far is useless.
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let tag = etag(&bytes);
    set_cache_headers(&mut parts.headers, &tag);
    if if_none_match.is_some_and(|value| matches(&value, &tag)) {
        let mut not_modified = Response::new(Body::empty());
        *not_modified.status_mut() = StatusCode::NOT_MODIFIED;
        for name in [
            header::ETAG,
            header::CACHE_CONTROL,
            header::VARY,
            header::LINK,
        ] {
            if let Some(value) = parts.headers.get(&name) {
                not_modified.headers_mut().insert(name, value.clone());
            }
        }
        return not_modified;
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(bytes))
}

fn is_taggable(response: &Response) -> bool {
    let headers = response.headers();
    response.status() == StatusCode::OK
        && !headers.contains_key(header::ETAG)
        && !headers.contains_key(header::CACHE_CONTROL)
        && headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"))
}

/// 128 bits of xxh3: a tag only has to change when the body does (nobody gains by
/// forging a collision with their own data), and a fast hash keeps tagging cheap
/// next to writing the page (SHA-256 was 4% of a list page in the profile).
fn etag(body: &[u8]) -> String {
    let digest = xxh3_128(body).to_be_bytes();
    format!("W/\"{}\"", URL_SAFE_NO_PAD.encode(digest))
}

fn set_cache_headers(headers: &mut HeaderMap, tag: &str) {
    headers.insert(
        header::ETAG,
        HeaderValue::from_str(tag).expect("base64 is a valid header"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    headers.append(
        header::VARY,
        HeaderValue::from_static("Cookie, Authorization"),
    );
}

/// `If-None-Match` uses weak comparison: `W/"x"` and `"x"` both match our `W/"x"`.
fn matches(if_none_match: &HeaderValue, tag: &str) -> bool {
    let Ok(value) = if_none_match.to_str() else {
        return false;
    };
    let opaque = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    let ours = opaque(tag);
    value
        .split(',')
        .any(|candidate| candidate.trim() == "*" || opaque(candidate) == ours)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_comparison_accepts_either_form_and_lists() {
        let tag = etag(b"[1,2,3]");
        let strong = tag.trim_start_matches("W/").to_owned();
        assert!(matches(&HeaderValue::from_str(&tag).unwrap(), &tag));
        assert!(matches(&HeaderValue::from_str(&strong).unwrap(), &tag));
        let list = format!("\"other\", {tag}");
        assert!(matches(&HeaderValue::from_str(&list).unwrap(), &tag));
        assert!(matches(&HeaderValue::from_static("*"), &tag));
        assert!(!matches(&HeaderValue::from_static("\"other\""), &tag));
        assert_ne!(etag(b"[1,2,3]"), etag(b"[1,2,4]"));
    }
}
