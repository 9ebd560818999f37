//! Timestamps on the wire: RFC 3339 in UTC with exactly three fractional digits
//! (`2026-11-23T19:38:33.123Z`), whatever precision the database returned, so every
//! client parses one format and equal instants print equally.

use serde::Serializer;
use time::OffsetDateTime;
use time::macros::format_description;

/// The current instant, truncated to whole milliseconds: what we store is exactly
/// what we print, so a value read back compares equal to the one written.
pub fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.millisecond() as u32 * 1_000_000)
        .expect("milliseconds are a valid nanosecond value")
}

pub fn format(ts: OffsetDateTime) -> String {
    let fmt =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    ts.to_offset(time::UtcOffset::UTC)
        .format(&fmt)
        .expect("a UTC timestamp always formats")
}

/// `#[serde(serialize_with = "crate::timefmt::serialize")]`
pub fn serialize<S: Serializer>(ts: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format(*ts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn formats_utc_with_three_fraction_digits() {
        assert_eq!(
            format(datetime!(2026-11-23 19:38:33.123456 +02:00)),
            "2026-11-23T17:38:33.123Z"
        );
        assert_eq!(
            format(datetime!(2026-01-02 03:04:05 UTC)),
            "2026-01-02T03:04:05.000Z"
        );
    }

    #[test]
    fn now_has_whole_milliseconds() {
        assert_eq!(now().nanosecond() % 1_000_000, 0);
    }
}
