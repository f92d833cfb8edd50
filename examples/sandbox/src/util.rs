//! Small helpers shared by the stand-ins: JSON responses, ISO-8601 dates and
//! Genesys-style entity listings.

use serde_json::{Value, json};

pub use axum::Json as ApiJson;

/// `secs` since the Unix epoch as `YYYY-MM-DDTHH:MM:SS.000Z`.
pub fn iso8601(secs: i64) -> String {
    jiff::Timestamp::from_second(secs)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .strftime("%Y-%m-%dT%H:%M:%S.000Z")
        .to_string()
}

/// Seconds since the epoch of a UTC date and time, if it is one.
pub fn utc_seconds(y: i64, m: i64, d: i64, hh: i64, mm: i64) -> Option<i64> {
    let dt = jiff::civil::DateTime::new(
        i16::try_from(y).ok()?,
        i8::try_from(m).ok()?,
        i8::try_from(d).ok()?,
        i8::try_from(hh).ok()?,
        i8::try_from(mm).ok()?,
        0,
        0,
    )
    .ok()?;
    Some(
        dt.to_zoned(jiff::tz::TimeZone::UTC)
            .ok()?
            .timestamp()
            .as_second(),
    )
}

/// A Genesys entity listing of page `number` (from 1) of `size` items, with
/// `nextUri` when more pages follow.
pub fn page_of(all: Vec<Value>, size: usize, number: usize, path: &str) -> Value {
    let size = size.clamp(1, 500);
    let number = number.max(1);
    let total = all.len();
    let page_count = total.div_ceil(size).max(1);
    let entities: Vec<Value> = all
        .into_iter()
        .skip((number - 1) * size)
        .take(size)
        .collect();
    let mut v = json!({
        "entities": entities,
        "pageSize": size,
        "pageNumber": number,
        "total": total,
        "pageCount": page_count,
        "firstUri": format!("{path}?pageSize={size}&pageNumber=1"),
        "selfUri": format!("{path}?pageSize={size}&pageNumber={number}"),
        "lastUri": format!("{path}?pageSize={size}&pageNumber={page_count}"),
    });
    if number < page_count {
        v["nextUri"] = json!(format!("{path}?pageSize={size}&pageNumber={}", number + 1));
    }
    if number > 1 {
        v["previousUri"] = json!(format!("{path}?pageSize={size}&pageNumber={}", number - 1));
    }
    v
}

/// Decode standard base64 (with or without padding); `None` if malformed.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let s = s.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.chunks(4) {
        if chunk.len() == 1 {
            return None;
        }
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= value(*c)? << (18 - 6 * i);
        }
        out.push((n >> 16) as u8);
        if chunk.len() > 2 {
            out.push((n >> 8) as u8);
        }
        if chunk.len() > 3 {
            out.push(n as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_known_dates() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_767_225_600), "2026-01-01T00:00:00.000Z");
        assert_eq!(iso8601(951_782_400 + 3661), "2000-02-29T01:01:01.000Z");
    }

    #[test]
    fn base64_round_trips() {
        assert_eq!(base64_decode("Zm9vYmE=").as_deref(), Some(&b"fooba"[..]));
        assert_eq!(base64_decode("Zm9vYmFy").as_deref(), Some(&b"foobar"[..]));
        assert_eq!(base64_decode("Z"), None);
        assert_eq!(base64_decode("Zm9v!"), None);
    }

    #[test]
    fn pages_link_to_the_next() {
        let all: Vec<Value> = (0..7).map(|i| json!(i)).collect();
        let p1 = page_of(all.clone(), 3, 1, "/x");
        assert_eq!(p1["entities"], json!([0, 1, 2]));
        assert_eq!(p1["nextUri"], "/x?pageSize=3&pageNumber=2");
        let p3 = page_of(all, 3, 3, "/x");
        assert_eq!(p3["entities"], json!([6]));
        assert!(p3.get("nextUri").is_none());
    }
}
