//! Extractors that answer malformed input with problem details instead of
//! axum's plain-text rejections: bad JSON, wrong types, unknown fields,
//! oversized bodies, bad path or query parameters, all 4xx.

use super::problem::Problem;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

/// A JSON body.
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // The body is read once, checked for a key given twice (JSON parsers
        // keep the last and say nothing: `{"kind":"access","kind":"erasure"}`
        // would file an erasure), then parsed as axum would.
        let json_type = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                let essence = v.split(';').next().unwrap_or_default().trim();
                essence.eq_ignore_ascii_case("application/json")
                    || (essence.starts_with("application/") && essence.ends_with("+json"))
            });
        if !json_type {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "send the body as application/json",
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    Problem::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "too-large",
                        "the body is larger than the server accepts (api.max_body)",
                    )
                } else {
                    Problem::bad_request("the body could not be read")
                }
            })?;
        if let Err(e) = serde_json::from_slice::<NoDuplicateKeys>(&bytes) {
            return Err(if e.is_data() {
                Problem::unprocessable(clean_message(&e.to_string()))
            } else {
                Problem::bad_request(clean_message(&e.to_string()))
            });
        }
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(e) => Err(json_problem(&e)),
        }
    }
}

/// Any JSON value, refusing an object that gives a key twice (at any
/// depth). Used only to check a body before it is parsed for real.
struct NoDuplicateKeys;

impl<'de> serde::Deserialize<'de> for NoDuplicateKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NoDuplicateKeys)
    }
}

impl<'de> serde::de::Visitor<'de> for NoDuplicateKeys {
    type Value = NoDuplicateKeys;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("JSON")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_unit<E>(self) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_none<E>(self) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self, A::Error> {
        while seq.next_element::<NoDuplicateKeys>()?.is_some() {}
        Ok(self)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self, A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key) {
                // The key is not quoted back: input stays out of errors.
                return Err(serde::de::Error::custom(
                    "an object gives the same key twice",
                ));
            }
            map.next_value::<NoDuplicateKeys>()?;
        }
        Ok(self)
    }
}

fn json_problem(e: &JsonRejection) -> Problem {
    match e {
        JsonRejection::MissingJsonContentType(_) => Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "send the body as application/json",
        ),
        JsonRejection::JsonDataError(d) => Problem::unprocessable(clean_message(&d.body_text())),
        JsonRejection::JsonSyntaxError(d) => Problem::bad_request(clean_message(&d.body_text())),
        JsonRejection::BytesRejection(b) if b.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                "the body is larger than the server accepts (api.max_body)",
            )
        }
        other => Problem::bad_request(clean_message(&other.body_text())),
    }
}

/// serde's messages quote the offending input: keep only their first
/// line, and cut quoted values out, so a mistyped identifier does not end
/// up in an error (which clients log).
pub(crate) fn clean_message(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    // serde names where it failed before why ("…: marie_dupont: unknown
    // field …"); a name the client sent is input too, so only the last
    // part, why, is kept.
    let mut line = match line.split_once(": ") {
        Some((head, rest)) if head.starts_with("Failed to deserialize") => rest,
        _ => line,
    };
    while let Some((path, rest)) = line.split_once(": ") {
        if path.is_empty() || path.contains(char::is_whitespace) {
            break;
        }
        line = rest;
    }
    let mut out = String::with_capacity(line.len());
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' | '`' => {
                if !quoted {
                    out.push_str("\"…\"");
                }
                quoted = !quoted;
            }
            _ if quoted => {}
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.chars().take(300).collect()
}

/// Path parameters.
pub struct Path<T>(pub T);

impl<S, T> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Path(v)),
            Err(e) => Err(match e {
                PathRejection::FailedToDeserializePathParams(d) => {
                    Problem::bad_request(clean_message(&d.body_text()))
                }
                other => Problem::bad_request(clean_message(&other.body_text())),
            }),
        }
    }
}

/// Query parameters.
pub struct Query<T>(pub T);

impl<S, T> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Query(v)),
            Err(e) => Err(match e {
                QueryRejection::FailedToDeserializeQueryString(d) => {
                    Problem::bad_request(clean_message(&d.body_text()))
                }
                other => Problem::bad_request(clean_message(&other.body_text())),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::clean_message as clean;

    #[test]
    fn rejection_text_loses_quoted_input() {
        assert_eq!(
            clean(
                "Failed to deserialize: unknown field `alice@example.com`, expected one of `kind`\nmore"
            ),
            "unknown field \"…\", expected one of \"…\""
        );
        // Where it failed names what the client sent: only why is kept.
        assert_eq!(
            clean(
                "Failed to deserialize query string: marie_dupont: unknown field `marie_dupont`, expected one of `state`"
            ),
            "unknown field \"…\", expected one of \"…\""
        );
        assert_eq!(
            clean(
                "Failed to deserialize the JSON body into the target type: subject.emails[0]: invalid type: integer `1`, expected a string"
            ),
            "invalid type: integer \"…\", expected a string"
        );
        assert_eq!(
            clean("invalid type: string \"+33 6 12\", expected u32"),
            "invalid type: string \"…\", expected u32"
        );
    }
}
