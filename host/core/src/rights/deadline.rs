//! Deadlines (Art. 12(3) GDPR): one calendar month from receipt, extendable
//! by two further months. Calendar arithmetic on UTC milliseconds, by `jiff`:
//! the same day of the month, or the last day when the month is shorter.

use jiff::tz::TimeZone;
use jiff::{Span, Timestamp, Zoned};

fn utc(ms: i64) -> Zoned {
    Timestamp::from_millisecond(ms)
        .unwrap_or(Timestamp::UNIX_EPOCH)
        .to_zoned(TimeZone::UTC)
}

/// The deadline of Art. 12(3): the same day `months` later (the last day
/// of that month when it has fewer days), same time of day.
pub fn add_months(ms: i64, months: i64) -> i64 {
    utc(ms)
        .checked_add(Span::new().months(months))
        .map(|z| z.timestamp().as_millisecond())
        .unwrap_or(i64::MAX)
}

/// A date as `YYYY-MM-DD` (UTC).
pub fn date(ms: i64) -> String {
    utc(ms).strftime("%Y-%m-%d").to_string()
}

/// A time (ms since the epoch) in RFC 3339, UTC, to the millisecond.
pub fn timestamp(ms: i64) -> String {
    utc(ms).strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Read a time given with its offset (RFC 3339: `2026-12-01T09:30:00Z`,
/// `2026-12-01T10:30:00+01:00`) as ms since the epoch. A time without an
/// offset is refused: whose 09:30 would it be?
pub fn parse_timestamp(text: &str) -> Result<i64, String> {
    text.trim()
        .parse::<Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|_| {
            "give a time with its offset, as 2026-12-01T09:30:00+01:00 or 2026-12-01T08:30:00Z"
                .to_string()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_need_their_offset() {
        assert_eq!(
            parse_timestamp("2026-12-02T05:30:45.123+01:00"),
            Ok(1_796_185_845_123)
        );
        assert_eq!(
            parse_timestamp("2026-12-02T04:30:45.123Z"),
            Ok(1_796_185_845_123)
        );
        for bad in ["2026-12-02T04:30:45", "2026-12-02", "yesterday", ""] {
            assert!(parse_timestamp(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(timestamp(1_796_185_845_123), "2026-12-02T04:30:45.123Z");
    }

    #[test]
    fn a_month_later_is_the_same_day_or_the_last_of_the_month() {
        let day = 86_400_000;
        let days_from_civil = |y: i16, m: i8, d: i8| {
            jiff::civil::date(y, m, d)
                .to_zoned(TimeZone::UTC)
                .unwrap()
                .timestamp()
                .as_millisecond()
                / day
        };
        let jan31 = days_from_civil(2027, 1, 31) * day + 3_600_000;
        assert_eq!(date(add_months(jan31, 1)), "2027-02-28");
        assert_eq!(add_months(jan31, 1) % day, 3_600_000);
        assert_eq!(
            date(add_months(days_from_civil(2028, 1, 31) * day, 1)),
            "2028-02-29"
        );
        assert_eq!(
            date(add_months(days_from_civil(2026, 12, 1) * day, 1)),
            "2027-01-01"
        );
        assert_eq!(
            date(add_months(days_from_civil(2026, 11, 15) * day, 3)),
            "2027-02-15"
        );
        assert_eq!(date(0), "1970-01-01");
    }
}
