//! `GET /static/{path}`: the files of `web/static`, embedded in the binary by
//! rust-embed (in debug builds rust-embed reads them from disk instead, so editing a
//! script needs no rebuild while developing).
//!
//! Every answer carries the file's type (`nosniff` is on, so a wrong one would break
//! the page), an ETag (the SHA-256 rust-embed computed at build time, so free; weak,
//! because the compression layer may re-encode the bytes it names), and
//! `Cache-Control: no-cache`: the names are not fingerprinted, so browsers must
//! revalidate, which costs a 304 and no body.

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

use crate::error::ApiError;

#[derive(RustEmbed)]
#[folder = "web/static"]
struct Static;

/// The `Content-Type` of a file: mime-guess's answer, with `charset=utf-8` on text so
/// non-ASCII in scripts and styles is read right.
fn content_type(path: &str, guessed: &str) -> String {
    let guessed = if path.ends_with(".js") || path.ends_with(".mjs") {
        // The current standard name (RFC 9239); mime-guess may say application/javascript.
        "text/javascript"
    } else {
        guessed
    };
    if guessed.starts_with("text/") {
        format!("{guessed}; charset=utf-8")
    } else {
        guessed.to_owned()
    }
}

fn etag_of(hash: &[u8; 32]) -> String {
    let hex: String = hash[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("W/\"{hex}\"")
}

/// Whether an `If-None-Match` value names `etag` (or is `*`); the comparison is weak,
/// as RFC 9110 says it must be for `If-None-Match`.
fn matches(if_none_match: &str, etag: &str) -> bool {
    let opaque = |tag: &str| tag.trim().trim_start_matches("W/").to_owned();
    let wanted = opaque(etag);
    if_none_match
        .split(',')
        .map(opaque)
        .any(|tag| tag == wanted || tag == "*")
}

pub async fn serve(Path(path): Path<String>, headers: HeaderMap) -> Response {
    let Some(file) = Static::get(&path) else {
        return ApiError::NotFound("Not found".into()).into_response();
    };
    let etag = etag_of(&file.metadata.sha256_hash());
    let mut response = if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| matches(v, &etag))
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let content_type = content_type(&path, file.metadata.mimetype());
        let mut response = file.data.into_owned().into_response();
        if let Ok(value) = HeaderValue::from_str(&content_type) {
            response.headers_mut().insert(header::CONTENT_TYPE, value);
        }
        response
    };
    let out = response.headers_mut();
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        out.insert(header::ETAG, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_and_styles_get_their_types() {
        assert_eq!(
            content_type("directory.js", "application/javascript"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(
            content_type("app.css", "text/css"),
            "text/css; charset=utf-8"
        );
        assert_eq!(content_type("logo.png", "image/png"), "image/png");
    }

    #[test]
    fn if_none_match_lists_are_understood() {
        assert!(matches("\"a\", \"b\"", "\"b\""));
        assert!(matches("W/\"b\"", "\"b\""));
        assert!(matches("*", "\"b\""));
        assert!(!matches("\"a\"", "\"b\""));
    }
}
