//! The directory list's page cursor: opaque to clients. Today it is the last id seen,
//! base64url'd so nobody builds one by hand and we stay free to change what is inside.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::ApiError;

/// The cursor of the page after the one ending with user `last_id`.
pub fn encode(last_id: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("u{last_id}"))
}

/// The last id seen, or a 400 for a cursor this server did not give out.
pub fn decode(cursor: &str) -> Result<i64, ApiError> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.strip_prefix('u')?.parse().ok())
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_cursor",
                "The cursor is not one this server gave out",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        for id in [0, 42, i64::MAX] {
            assert_eq!(decode(&encode(id)).unwrap(), id);
        }
        for bad in [
            "",
            "42",
            "!!",
            &URL_SAFE_NO_PAD.encode("x42"),
            &URL_SAFE_NO_PAD.encode("u"),
        ] {
            let error = decode(bad).expect_err(bad);
            assert_eq!(error.code(), "invalid_cursor");
        }
    }
}
