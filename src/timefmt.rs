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
    with_wire(ts, str::to_owned)
}

/// `#[serde(serialize_with = "crate::timefmt::serialize")]`
pub fn serialize<S: Serializer>(ts: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
    with_wire(*ts, |text| s.serialize_str(text))
}

/// `#[serde(serialize_with = "crate::timefmt::serialize_unix")]`: a time kept in
/// Unix seconds (tokens, sessions), in the same wire form as every other.
pub fn serialize_unix<S: Serializer>(secs: &i64, s: S) -> Result<S::Ok, S::Error> {
    match OffsetDateTime::from_unix_timestamp(*secs) {
        Ok(ts) => serialize(&ts, s),
        Err(error) => Err(serde::ser::Error::custom(error)),
    }
}

/// [`serialize_unix`] for a time that may be unset (`null`).
pub fn serialize_unix_opt<S: Serializer>(secs: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match secs {
        Some(secs) => serialize_unix(secs, s),
        None => s.serialize_none(),
    }
}

/// Hands `use_text` the wire form: from a stack buffer when [`write_wire`] can, else
/// from `time`'s formatter.
fn with_wire<R>(ts: OffsetDateTime, use_text: impl FnOnce(&str) -> R) -> R {
    let mut buf = [0u8; WIRE_LEN];
    match write_wire(ts, &mut buf) {
        Some(text) => use_text(text),
        None => use_text(&format_generic(ts)),
    }
}

/// `2026-11-23T19:38:33.123Z`
const WIRE_LEN: usize = 24;

/// The wire form written digit by digit into `buf`, for years 0 to 9999 (every
/// timestamp we make). A page of the list prints a hundred of these: through the
/// generic formatter of `time`, and a `String` each, that was a tenth of the page's
/// time.
fn write_wire(ts: OffsetDateTime, buf: &mut [u8; WIRE_LEN]) -> Option<&str> {
    let ts = ts.to_offset(time::UtcOffset::UTC);
    let year = u16::try_from(ts.year()).ok().filter(|y| *y <= 9999)?;
    let digits = |buf: &mut [u8; WIRE_LEN], at: usize, width: usize, mut value: u16| {
        for i in (at..at + width).rev() {
            buf[i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    buf.copy_from_slice(b"0000-00-00T00:00:00.000Z");
    digits(buf, 0, 4, year);
    digits(buf, 5, 2, u8::from(ts.month()).into());
    digits(buf, 8, 2, ts.day().into());
    digits(buf, 11, 2, ts.hour().into());
    digits(buf, 14, 2, ts.minute().into());
    digits(buf, 17, 2, ts.second().into());
    digits(buf, 20, 3, ts.millisecond());
    std::str::from_utf8(buf).ok()
}

/// Any timestamp, through `time`'s formatter (years outside 0-9999).
fn format_generic(ts: OffsetDateTime) -> String {
    let fmt =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    ts.to_offset(time::UtcOffset::UTC)
        .format(&fmt)
        .expect("a UTC timestamp always formats")
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
    fn the_fast_path_prints_what_the_generic_formatter_prints() {
        // Every field's extremes, and a walk over many instants across the range.
        let mut instants = vec![
            datetime!(0000-01-01 00:00:00 UTC),
            datetime!(9999-12-31 23:59:59.999 UTC),
            datetime!(2024-02-29 12:00:00.007 -05:30),
            datetime!(1970-01-01 00:00:00 UTC),
        ];
        let mut ts = datetime!(1900-01-01 00:00:00 UTC);
        let step = time::Duration::milliseconds(86_399_999 * 37 + 12_345);
        while ts.year() < 2200 {
            instants.push(ts);
            ts += step;
        }
        for ts in instants {
            assert_eq!(format(ts), format_generic(ts), "{ts}");
        }
        // Beyond four-digit years, the generic formatter answers.
        let far = datetime!(-0001-06-01 00:00:00 UTC);
        assert_eq!(format(far), format_generic(far));
    }

    #[test]
    fn unix_seconds_print_in_the_wire_form() {
        #[derive(serde::Serialize)]
        struct Times {
            #[serde(serialize_with = "serialize_unix")]
            at: i64,
            #[serde(serialize_with = "serialize_unix_opt")]
            set: Option<i64>,
            #[serde(serialize_with = "serialize_unix_opt")]
            unset: Option<i64>,
        }
        let times = Times {
            at: 1_796_159_155,
            set: Some(0),
            unset: None,
        };
        assert_eq!(
            serde_json::to_value(times).unwrap(),
            serde_json::json!({
                "at": "2026-12-01T21:05:55.000Z",
                "set": "1970-01-01T00:00:00.000Z",
                "unset": null,
            })
        );
    }

    #[test]
    fn now_has_whole_milliseconds() {
        assert_eq!(now().nanosecond() % 1_000_000, 0);
    }
}
