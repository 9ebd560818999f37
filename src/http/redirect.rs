//! Where a redirect built from a client's input may point: a path on this site, and
//! nowhere else. The one rule for every `Location` that echoes input (today the
//! login page's `next`).
//!
//! Browsers are generous readers of `Location`: they drop tabs and newlines anywhere
//! in it, strip leading spaces and control characters, and read `\` as `/`. So
//! `/<TAB>/evil.example/` becomes `//evil.example/`, a link to another site, and a
//! newline cannot be put in a header at all (the redirect used to be a 500).

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

/// Besides non-ASCII (always encoded): what may not stand in a header value or
/// would be read differently by a browser. `%` itself is left alone, so an
/// already-encoded path is not encoded twice.
const NOT_IN_LOCATION: &AsciiSet = &CONTROLS.add(b' ').add(b'"').add(b'<').add(b'>').add(b'`');

/// `Some(location)` when `target` is a path on this site: it starts with one `/`
/// (not `//`, not `/\`), and has no control character and no backslash, neither
/// as written nor once percent-decoded (`/%2F/evil.example`, `/%09/...`,
/// `/%5Cevil.example`). The result is a valid header value: non-ASCII characters
/// and spaces are percent-encoded. Anything else is `None`; callers fall back to `/`.
pub fn local_target(target: &str) -> Option<String> {
    let decoded = percent_decode_str(target).decode_utf8_lossy();
    if !is_plain_local_path(target) || !is_plain_local_path(&decoded) {
        return None;
    }
    Some(utf8_percent_encode(target, NOT_IN_LOCATION).to_string())
}

/// The rule on one spelling of the target.
fn is_plain_local_path(path: &str) -> bool {
    let mut chars = path.chars();
    chars.next() == Some('/')
        && !matches!(chars.next(), Some('/' | '\\'))
        && !path.chars().any(|c| c.is_control() || c == '\\')
}

#[cfg(test)]
mod tests {
    use super::local_target;
    use axum::http::HeaderValue;

    #[test]
    fn paths_on_this_site_are_kept() {
        for path in [
            "/",
            "/chat?room=a",
            "/users/1/edit",
            "/?search=al&cursor=abc%3D",
            "/.well/known",
        ] {
            assert_eq!(local_target(path).as_deref(), Some(path), "{path}");
        }
    }

    #[test]
    fn non_ascii_and_spaces_are_encoded_so_the_header_is_valid() {
        assert_eq!(
            local_target("/chat?room=café").as_deref(),
            Some("/chat?room=caf%C3%A9")
        );
        assert_eq!(local_target("/a b").as_deref(), Some("/a%20b"));
        // Already encoded: left as it is.
        assert_eq!(local_target("/a%20b").as_deref(), Some("/a%20b"));
    }

    #[test]
    fn anything_that_could_leave_the_site_or_break_the_header_is_refused() {
        for hostile in [
            "",
            "evil.example",
            "https://evil.example/",
            "http:/evil.example",
            "javascript:alert(1)",
            "//evil.example",
            "///evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "\\/evil.example",
            "/\t/evil.example/",
            "\t//evil.example/",
            "/\n/evil.example/",
            "/\r\n/evil.example/",
            "/x\r\nSet-Cookie: a=b",
            "/\0/evil.example",
            "/\u{7f}/evil.example",
            "/\u{85}/evil.example",
            " //evil.example",
            "/%2F/evil.example",
            "/%2f/evil.example",
            "%2F%2Fevil.example",
            "/%5Cevil.example",
            "/%5cevil.example",
            "/%09/evil.example",
            "/%0A/evil.example",
            "/%0d%0aSet-Cookie:%20a=b",
            "/%00",
            "/ok\\..\\evil",
        ] {
            assert_eq!(local_target(hostile), None, "{hostile:?}");
        }
    }

    #[test]
    fn every_accepted_target_is_a_valid_header_value() {
        for input in ["/é", "/日本", "/a b\"c<d>e`f", "/emoji/🙂", "/\u{200e}x"] {
            let location = local_target(input).expect(input);
            assert!(HeaderValue::from_str(&location).is_ok(), "{location:?}");
        }
    }
}
