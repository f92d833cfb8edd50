//! Conversions connectors need between the host's normalised identifiers
//! and the forms vendors store, and between vendors' dates and
//! [`Timestamp`](crate::Timestamp)s.

use crate::Timestamp;

/// The national form of an E.164 number, for systems that store numbers
/// the way people dial them: `+447700900123` with country code `44` and
/// trunk prefix `0` gives `07700900123`. `None` when the number is not in
/// that country. (NANP countries dial no trunk prefix: use `""`.)
///
/// ```
/// use oubli_plugin::text::national_number;
/// assert_eq!(national_number("+447700900123", "44", "0").as_deref(), Some("07700900123"));
/// assert_eq!(national_number("+33612345678", "44", "0"), None);
/// ```
pub fn national_number(e164: &str, country_code: &str, trunk_prefix: &str) -> Option<String> {
    let rest = e164.strip_prefix('+')?.strip_prefix(country_code)?;
    (!rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()))
        .then(|| format!("{trunk_prefix}{rest}"))
}

/// Milliseconds since the epoch of an ISO-8601 / RFC 3339 UTC date-time
/// (`2026-01-01T09:30:00Z`, `2026-01-01T09:30:00.250Z`, or with a `+hh:mm`
/// offset). `None` when it is not one.
///
/// ```
/// use oubli_plugin::text::parse_iso8601;
/// assert_eq!(parse_iso8601("1970-01-01T00:00:01.500Z"), Some(1500));
/// assert_eq!(parse_iso8601("2026-01-01T01:00:00+01:00"), Some(1_767_225_600_000));
/// assert_eq!(parse_iso8601("yesterday"), None);
/// ```
pub fn parse_iso8601(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut millis = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let ms: String = frac[..digits]
            .chars()
            .chain("000".chars())
            .take(3)
            .collect();
        millis = ms.parse().ok()?;
        rest = &frac[digits..];
    }
    let offset_secs = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6
            && matches!(rest.as_bytes()[0], b'+' | b'-')
            && rest.as_bytes()[3] == b':' =>
        {
            let oh: i64 = rest[1..3].parse().ok()?;
            let om: i64 = rest[4..6].parse().ok()?;
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (oh * 3600 + om * 60)
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    Some((days * 86_400 + h * 3600 + mi * 60 + sec - offset_secs) * 1000 + millis)
}

/// An ISO-8601 UTC date-time to the second (`2026-01-01T09:30:00Z`) of
/// milliseconds since the epoch, rounded up to the next whole second when
/// `up` (a cutoff given to a server that compares whole seconds, so that a
/// record dated a fraction of a second before it is still asked for).
///
/// ```
/// use oubli_plugin::text::format_iso8601;
/// assert_eq!(format_iso8601(1_767_225_600_000, false), "2026-01-01T00:00:00Z");
/// assert_eq!(format_iso8601(1_767_225_600_001, true), "2026-01-01T00:00:01Z");
/// assert_eq!(format_iso8601(-1, false), "1969-12-31T23:59:59Z");
/// ```
pub fn format_iso8601(ms: Timestamp, up: bool) -> String {
    let secs = if up {
        ms.div_euclid(1000) + i64::from(ms.rem_euclid(1000) != 0)
    } else {
        ms.div_euclid(1000)
    };
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date of a day count (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// E.164 of a number as a system stored it, reading national numbers as
/// numbers of `country_code` dialled with `trunk_prefix`: `07700 900123`
/// (44, `0`) and `0044 7700 900123` and `+44 7700 900123` all give
/// `+447700900123`. Formatting characters are ignored. `None` when nothing
/// number-like is left.
///
/// ```
/// use oubli_plugin::text::to_e164;
/// assert_eq!(to_e164("07700 900123", "44", "0").as_deref(), Some("+447700900123"));
/// assert_eq!(to_e164("+44 (0)7700-900123", "44", "0").as_deref(), Some("+4407700900123"));
/// assert_eq!(to_e164("n/a", "44", "0"), None);
/// ```
pub fn to_e164(raw: &str, country_code: &str, trunk_prefix: &str) -> Option<String> {
    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < 6 {
        return None;
    }
    if raw.trim_start().starts_with('+') {
        Some(format!("+{digits}"))
    } else if let Some(rest) = digits.strip_prefix("00") {
        Some(format!("+{rest}"))
    } else if let Some(rest) = digits
        .strip_prefix(trunk_prefix)
        .filter(|_| !trunk_prefix.is_empty())
    {
        Some(format!("+{country_code}{rest}"))
    } else if trunk_prefix.is_empty() {
        Some(format!("+{country_code}{digits}"))
    } else {
        None
    }
}

/// Decode standard base64 (RFC 4648 §4), ignoring line breaks and other
/// whitespace (MIME wraps lines); `None` for anything else malformed.
///
/// ```
/// use oubli_plugin::text::base64_decode;
/// assert_eq!(base64_decode("Zm9v\r\nYmFy").unwrap(), b"foobar");
/// assert_eq!(base64_decode("Zm8=").unwrap(), b"fo");
/// assert!(base64_decode("Zm9*").is_none());
/// ```
pub fn base64_decode(input: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len() / 4 * 3);
    let mut acc = 0u32;
    let mut bits = 0;
    let mut padding = 0;
    for b in input.bytes() {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => {
                padding += 1;
                continue;
            }
            b' ' | b'\t' | b'\r' | b'\n' => continue,
            _ => return None,
        };
        if padding > 0 {
            return None;
        }
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}
