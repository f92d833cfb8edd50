//! What every stand-in shares: bearer authentication and JSON bodies as
//! extractors whose rejections are each vendor's own error shape ([`Vendor`],
//! [`Auth`], [`JsonBody`]), a rate limiter, fault injection for tests
//! (malformed JSON, a status, a hang, a huge body), and the generated WAV
//! audio of call recordings.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A failure a test can make a stand-in produce on every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer 200 with a body that is not JSON.
    MalformedJson,
    /// Answer 200 with JSON of the wrong shape.
    WrongShape,
    /// Answer with this status and an empty JSON object.
    Status(u16),
    /// Never answer.
    Hang,
    /// Answer 200 with a body of this many bytes.
    HugeBody(usize),
}

/// Runtime switches of one stand-in, shared with its handlers.
#[derive(Debug, Default)]
pub struct Controls {
    fault: Mutex<Option<Fault>>,
    limit: Mutex<Option<RateLimit>>,
    requests: Mutex<u64>,
    throttled: Mutex<u64>,
    times: Mutex<Vec<Instant>>,
    delay: Mutex<Option<Duration>>,
}

#[derive(Debug)]
struct RateLimit {
    per_window: u32,
    window: Duration,
    started: Instant,
    used: u32,
}

impl Controls {
    /// Make every following request fail with `fault` (`None` heals).
    pub fn set_fault(&self, fault: Option<Fault>) {
        *self.fault.lock().expect("controls lock") = fault;
    }

    /// Allow `per_window` requests per `window`; more get 429 with a
    /// `Retry-After` of the rest of the window (`None` lifts the limit).
    pub fn set_rate_limit(&self, limit: Option<(u32, Duration)>) {
        *self.limit.lock().expect("controls lock") = limit.map(|(per_window, window)| RateLimit {
            per_window,
            window,
            started: Instant::now(),
            used: 0,
        });
    }

    /// Requests served so far (throttled ones included).
    pub fn requests(&self) -> u64 {
        *self.requests.lock().expect("controls lock")
    }

    /// When each request arrived (throttled ones included).
    pub fn times(&self) -> Vec<Instant> {
        self.times.lock().expect("controls lock").clone()
    }

    /// Answer every following request only after `delay` (`None`: at once).
    pub fn set_delay(&self, delay: Option<Duration>) {
        *self.delay.lock().expect("controls lock") = delay;
    }

    /// Requests answered with 429 so far.
    pub fn throttled(&self) -> u64 {
        *self.throttled.lock().expect("controls lock")
    }

    /// Seconds to wait when over the limit, or `None` to go ahead.
    fn admit(&self) -> Option<u64> {
        *self.requests.lock().expect("controls lock") += 1;
        self.times
            .lock()
            .expect("controls lock")
            .push(Instant::now());
        let mut guard = self.limit.lock().expect("controls lock");
        let limit = guard.as_mut()?;
        let now = Instant::now();
        if now.duration_since(limit.started) >= limit.window {
            limit.started = now;
            limit.used = 0;
        }
        if limit.used < limit.per_window {
            limit.used += 1;
            return None;
        }
        *self.throttled.lock().expect("controls lock") += 1;
        let left = limit
            .window
            .saturating_sub(now.duration_since(limit.started));
        Some(left.as_secs_f64().ceil().max(1.0) as u64)
    }
}

/// Middleware: rate limit, then the injected fault, then the handler.
pub async fn gate(State(controls): State<Arc<Controls>>, req: Request, next: Next) -> Response {
    if let Some(wait) = controls.admit() {
        // Read the request before refusing it, as the vendors' gateways do:
        // answering mid-upload and closing would make the client see a
        // broken connection instead of the 429.
        let _ = axum::body::to_bytes(req.into_body(), 1 << 20).await;
        let mut resp = (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"message":"Rate limit exceeded the maximum. Retry the request in a bit.","code":"too.many.requests.retry.after","status":429}"#,
        )
            .into_response();
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait));
        return resp;
    }
    let delay = *controls.delay.lock().expect("controls lock");
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let Some(fault) = *controls.fault.lock().expect("controls lock") else {
        return next.run(req).await;
    };
    // The request is read in full first here too (see above).
    let _ = axum::body::to_bytes(req.into_body(), 1 << 20).await;
    match fault {
        Fault::MalformedJson => json_text(StatusCode::OK, "{\"entities\": [ {\"id\": "),
        Fault::WrongShape => json_text(StatusCode::OK, "[1, 2, 3]"),
        Fault::Status(code) => json_text(
            StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            "{}",
        ),
        Fault::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            json_text(StatusCode::GATEWAY_TIMEOUT, "{}")
        }
        Fault::HugeBody(n) => {
            let chunk = vec![b' '; 64 * 1024];
            let stream = futures_util::stream::iter((0..n.div_ceil(chunk.len())).map(move |i| {
                let len = chunk.len().min(n - i * chunk.len());
                Ok::<_, std::io::Error>(chunk[..len].to_vec())
            }));
            Response::builder()
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from_stream(stream))
                .expect("static response")
        }
    }
}

fn json_text(status: StatusCode, body: &'static str) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// One vendor's API conventions: the tokens it accepts and the shape of its
/// errors, so every handler of a stand-in refuses the same way.
pub trait Vendor: Send + Sync + 'static {
    /// The bearer tokens it accepts; the index of the one given is the
    /// caller's role ([`Auth::role`]).
    const TOKENS: &'static [&'static str];
    /// Its answer to a missing or unknown token.
    fn unauthorised() -> Response;
    /// Its answer to a body that is not JSON.
    fn malformed_body() -> Response;
}

/// A request carrying one of vendor `V`'s tokens; rejected with
/// [`Vendor::unauthorised`].
pub struct Auth<V> {
    role: usize,
    vendor: PhantomData<V>,
}

impl<V> Auth<V> {
    /// The index in [`Vendor::TOKENS`] of the token given.
    pub fn role(&self) -> usize {
        self.role
    }
}

impl<S: Send + Sync, V: Vendor> FromRequestParts<S> for Auth<V> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        bearer(&parts.headers, V::TOKENS)
            .map(|role| Auth {
                role,
                vendor: PhantomData,
            })
            .ok_or_else(V::unauthorised)
    }
}

/// A JSON request body; rejected with [`Vendor::malformed_body`].
pub struct JsonBody<V>(pub Value, pub PhantomData<V>);

impl<S: Send + Sync, V: Vendor> FromRequest<S> for JsonBody<V> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        serde_json::from_slice(&bytes)
            .map(|v| JsonBody(v, PhantomData))
            .map_err(|_| V::malformed_body())
    }
}

/// Whether `headers` carry `Authorization: Bearer <token>` for one of
/// `tokens`; returns the matching index.
pub fn bearer(headers: &HeaderMap, tokens: &[&str]) -> Option<usize> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let given = value.strip_prefix("Bearer ")?;
    tokens.iter().position(|t| *t == given)
}

/// Digits only: how the stand-ins compare phone numbers stored in free-form
/// text columns (formatting ignored, national and E.164 forms still differ,
/// as in the real systems).
pub fn phone_digits(s: &str) -> String {
    let mut out: String = s.chars().filter(|c| c.is_ascii_digit()).collect();
    if s.trim_start().starts_with('+') {
        out.insert(0, '+');
    }
    out
}

/// Bytes per second of the generated recordings (8 kHz, 16-bit, mono).
pub const WAV_BYTES_PER_SECOND: u64 = 16_000;
const WAV_HEADER: u64 = 44;

/// Total length of a generated recording of `seconds`.
pub fn wav_len_for_seconds(seconds: u64) -> u64 {
    WAV_HEADER + seconds * WAV_BYTES_PER_SECOND
}

/// The bytes `[offset, offset + len)` of a generated WAV file of `total`
/// bytes: a canonical 44-byte header, then a tone whose pitch depends on
/// `seed`. Any range can be produced without generating what precedes it.
pub fn wav_range(seed: u64, total: u64, offset: u64, len: usize) -> Vec<u8> {
    let total = total.max(WAV_HEADER);
    let end = (offset + len as u64).min(total);
    if offset >= end {
        return Vec::new();
    }
    let data_len = (total - WAV_HEADER) as u32;
    let mut header = Vec::with_capacity(44);
    header.extend_from_slice(b"RIFF");
    header.extend_from_slice(&(36 + data_len).to_le_bytes());
    header.extend_from_slice(b"WAVEfmt ");
    header.extend_from_slice(&16u32.to_le_bytes());
    header.extend_from_slice(&1u16.to_le_bytes()); // PCM
    header.extend_from_slice(&1u16.to_le_bytes()); // mono
    header.extend_from_slice(&8000u32.to_le_bytes());
    header.extend_from_slice(&16000u32.to_le_bytes());
    header.extend_from_slice(&2u16.to_le_bytes());
    header.extend_from_slice(&16u16.to_le_bytes());
    header.extend_from_slice(b"data");
    header.extend_from_slice(&data_len.to_le_bytes());
    // One period of a square-ish tone, as bytes; period in samples.
    let period = 16 + (seed % 48) as usize;
    let mut wave = Vec::with_capacity(period * 2);
    for s in 0..period {
        let v: i16 = if s < period / 2 { 6000 } else { -6000 };
        wave.extend_from_slice(&v.to_le_bytes());
    }
    let mut out = Vec::with_capacity((end - offset) as usize);
    let mut pos = offset;
    while pos < end {
        if pos < WAV_HEADER {
            let stop = end.min(WAV_HEADER);
            out.extend_from_slice(&header[pos as usize..stop as usize]);
            pos = stop;
        } else {
            let at = ((pos - WAV_HEADER) % wave.len() as u64) as usize;
            let take = (wave.len() - at).min((end - pos) as usize);
            out.extend_from_slice(&wave[at..at + take]);
            pos += take as u64;
        }
    }
    out
}

/// Parse a `Range: bytes=a-b` / `bytes=a-` header against `total`; returns
/// the inclusive range, or `None` when absent or unsatisfiable.
pub fn parse_range(headers: &HeaderMap, total: u64) -> Option<(u64, u64)> {
    let v = headers.get(header::RANGE)?.to_str().ok()?;
    let spec = v.strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    let start: u64 = a.trim().parse().ok()?;
    let end: u64 = if b.trim().is_empty() {
        total.checked_sub(1)?
    } else {
        b.trim().parse::<u64>().ok()?.min(total.checked_sub(1)?)
    };
    (start <= end && start < total).then_some((start, end))
}

/// Serve a generated recording, honouring `Range` (206) and streaming the
/// whole file in 64 KiB pieces otherwise.
pub fn serve_wav(headers: &HeaderMap, seed: u64, total: u64) -> Response {
    if headers.contains_key(header::RANGE) {
        let Some((start, end)) = parse_range(headers, total) else {
            return Response::builder()
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{total}"))
                .body(Body::empty())
                .expect("static response");
        };
        // Streamed in pieces like the whole file: an open-ended range of a
        // large recording is never built in memory.
        let body = Body::from_stream(wav_pieces(seed, total, start, end + 1));
        return Response::builder()
            .status(StatusCode::PARTIAL_CONTENT)
            .header(header::CONTENT_TYPE, "audio/wav")
            .header(header::ACCEPT_RANGES, "bytes")
            .header(
                header::CONTENT_RANGE,
                format!("bytes {start}-{end}/{total}"),
            )
            .body(body)
            .expect("static response");
    }
    Response::builder()
        .header(header::CONTENT_TYPE, "audio/wav")
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_LENGTH, total)
        .body(Body::from_stream(wav_pieces(seed, total, 0, total)))
        .expect("static response")
}

/// Bytes `start..end` of a recording, 64 KiB at a time.
fn wav_pieces(
    seed: u64,
    total: u64,
    start: u64,
    end: u64,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    const PIECE: u64 = 64 * 1024;
    let pieces = (end - start).div_ceil(PIECE);
    futures_util::stream::iter((0..pieces).map(move |i| {
        let off = start + i * PIECE;
        let len = PIECE.min(end - off) as usize;
        Ok::<_, std::io::Error>(wav_range(seed, total, off, len))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wav_ranges_agree_with_the_whole_file() {
        let total = wav_len_for_seconds(3) + 7;
        let whole = wav_range(5, total, 0, total as usize);
        assert_eq!(whole.len() as u64, total);
        assert_eq!(&whole[..4], b"RIFF");
        for (off, len) in [
            (0, 10),
            (40, 10),
            (44, 1000),
            (1001, 33333),
            (total - 3, 10),
        ] {
            let part = wav_range(5, total, off, len);
            let end = (off as usize + len).min(total as usize);
            assert_eq!(part, whole[off as usize..end], "range {off}+{len}");
        }
    }

    #[test]
    fn phone_digits_keeps_the_plus() {
        assert_eq!(phone_digits("+44 7700 900123"), "+447700900123");
        assert_eq!(phone_digits("07700 900-123"), "07700900123");
    }
}
