//! Deadlines (Art. 12(3) GDPR): one calendar month from receipt, extendable
//! by two further months. Calendar arithmetic on UTC milliseconds, with no
//! date library: the same day of the month, or the last day when the month
//! is shorter.

/// The deadline of Art. 12(3): the same day `months` later (the last day
/// of that month when it has fewer days), same time of day.
pub fn add_months(ms: i64, months: i64) -> i64 {
    let day_ms = 86_400_000;
    let days = ms.div_euclid(day_ms);
    let time = ms.rem_euclid(day_ms);
    let (y, m, d) = civil_from_days(days);
    let total = y * 12 + (m - 1) + months;
    let (ny, nm) = (total.div_euclid(12), total.rem_euclid(12) + 1);
    let nd = d.min(days_in_month(ny, nm));
    days_from_civil(ny, nm, nd) * day_ms + time
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

// Howard Hinnant's civil-date algorithms (public domain).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A date as `YYYY-MM-DD` (UTC).
pub fn date(ms: i64) -> String {
    let (y, m, d) = civil_from_days(ms.div_euclid(86_400_000));
    format!("{y:04}-{m:02}-{d:02}")
}

/// A time (ms since the epoch) in RFC 3339, UTC, to the millisecond.
pub fn timestamp(ms: i64) -> String {
    let day = ms.div_euclid(86_400_000);
    let (y, m, d) = civil_from_days(day);
    let rest = ms.rem_euclid(86_400_000);
    let (h, min, s, milli) = (
        rest / 3_600_000,
        rest / 60_000 % 60,
        rest / 1000 % 60,
        rest % 1000,
    );
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{milli:03}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(timestamp(1_796_185_845_123), "2026-12-02T04:30:45.123Z");
    }

    #[test]
    fn a_month_later_is_the_same_day_or_the_last_of_the_month() {
        let day = 86_400_000;
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
