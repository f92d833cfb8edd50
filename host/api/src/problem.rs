//! Errors as RFC 9457 problem details (`application/problem+json`), each
//! with the trace id of the request that failed. Messages name values,
//! never personal data (the engine's errors are written that way).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use oubli_core::rights::engine::{ErrorKind, RequestError};
use serde::Serialize;

/// A problem: what went wrong, for a machine (`type`, `status`) and a
/// person (`title`, `detail`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What happened, this time.
    pub detail: String,
    /// The trace id, to find the request in the server's log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// Seconds to wait before trying again (429, 503).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<u64>)]
    pub retry_after: Option<u64>,
}

impl Problem {
    /// A problem of `status`, with `slug` naming its kind.
    pub fn new(status: StatusCode, slug: &str, detail: impl Into<String>) -> Problem {
        Problem {
            kind: format!("https://oubli.invalid/problems/{slug}"),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            trace_id: None,
            retry_after: None,
        }
    }

    /// 400: the request is malformed.
    pub fn bad_request(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, "bad-request", detail)
    }

    /// 404.
    pub fn not_found(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, "not-found", detail)
    }

    /// 422: well-formed but not acceptable.
    pub fn unprocessable(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", detail)
    }
}

impl From<RequestError> for Problem {
    /// The one place a core error becomes an HTTP status.
    fn from(e: RequestError) -> Problem {
        if matches!(e, RequestError::KeyReused) {
            return Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                e.to_string(),
            );
        }
        match e.kind() {
            ErrorKind::Invalid => Problem::unprocessable(e.to_string()),
            ErrorKind::Conflict => Problem::new(StatusCode::CONFLICT, "conflict", e.to_string()),
            ErrorKind::Forbidden => Problem::new(StatusCode::FORBIDDEN, "forbidden", e.to_string()),
            // Named by kind only: what the caller sent (a path segment, a
            // record id, a system name) is never quoted back.
            ErrorKind::NotFound => {
                Problem::not_found(format!("no such {}", e.missing().unwrap_or("thing")))
            }
            ErrorKind::Unavailable => {
                tracing::warn!(error = %e, "unavailable");
                let mut p = Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the service is unavailable; try again",
                );
                p.retry_after = Some(5);
                p
            }
            ErrorKind::Internal => {
                tracing::error!(error = %e, "internal error");
                Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error; the server's log has the details under this trace id",
                )
            }
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let retry = self.retry_after;
        let mut this = self;
        if this.trace_id.is_none() {
            this.trace_id = TRACE_ID.try_with(Clone::clone).ok();
        }
        let body = serde_json::to_vec(&this).unwrap_or_default();
        let mut r = (status, body).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(s) = retry {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"oubli\""),
            );
        }
        r
    }
}

tokio::task_local! {
    /// The trace id of the HTTP request being handled.
    pub static TRACE_ID: String;
}

/// A handler's result.
pub type ApiResult<T> = Result<T, Problem>;

/// Build the problem responses a route may answer, for its OpenAPI entry.
fn problem_responses(
    statuses: &[u16],
) -> std::collections::BTreeMap<String, utoipa::openapi::RefOr<utoipa::openapi::response::Response>>
{
    use utoipa::openapi::Ref;
    use utoipa::openapi::content::ContentBuilder;
    use utoipa::openapi::response::ResponseBuilder;
    statuses
        .iter()
        .map(|&s| {
            let reason = StatusCode::from_u16(s)
                .ok()
                .and_then(|c| c.canonical_reason())
                .unwrap_or("Error");
            let response = ResponseBuilder::new()
                .description(reason)
                .content(
                    "application/problem+json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("Problem")))
                        .build(),
                )
                .build();
            (s.to_string(), response.into())
        })
        .collect()
}

/// What a route that reads may answer besides its result: a malformed
/// query, no or a bad token, a role that may not, nothing by that id, too
/// many failed logins, a store that does not answer.
pub struct ReadProblems;

impl utoipa::IntoResponses for ReadProblems {
    fn responses() -> std::collections::BTreeMap<
        String,
        utoipa::openapi::RefOr<utoipa::openapi::response::Response>,
    > {
        problem_responses(&[400, 401, 403, 404, 429, 503])
    }
}

/// What a route that acts may answer besides its result: everything a read
/// may, and a state that does not allow it, a body too large, of the wrong
/// type or not acceptable.
pub struct WriteProblems;

impl utoipa::IntoResponses for WriteProblems {
    fn responses() -> std::collections::BTreeMap<
        String,
        utoipa::openapi::RefOr<utoipa::openapi::response::Response>,
    > {
        problem_responses(&[400, 401, 403, 404, 409, 413, 415, 422, 429, 503])
    }
}
