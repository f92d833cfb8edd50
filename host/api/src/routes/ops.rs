//! Operations: liveness, readiness and metrics.

use crate::AppState;
use crate::auth::Auth;
use crate::problem::{ApiResult, Problem, ReadProblems};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use oubli_core::rights::tokens::Role;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// These routes, each registered once with its OpenAPI entry.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}

/// Liveness.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
}

/// `GET /healthz`: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
pub async fn healthz() -> axum::Json<Health> {
    axum::Json(Health {
        status: "ok".into(),
    })
}

/// `GET /readyz`: the store answers.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses(
    (status = 200, body = Health),
    (status = 503, body = Problem, content_type = "application/problem+json"),
))]
pub async fn readyz(State(state): State<AppState>) -> ApiResult<axum::Json<Health>> {
    state.engine.ready().await?;
    Ok(axum::Json(Health {
        status: "ok".into(),
    }))
}

/// `GET /metrics`: OpenMetrics text (Prometheus reads it).
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses(
        (status = 200, content_type = "application/openmetrics-text", body = String), ReadProblems),
    security(("bearer" = [])))]
pub async fn metrics(State(state): State<AppState>, auth: Auth) -> ApiResult<Response> {
    auth.require(Role::Auditor)?;
    let mut registry = prometheus_client::registry::Registry::default();
    state.engine.register_metrics(&mut registry).await?;
    state.http.register(&mut registry);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).map_err(|_| {
        Problem::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the metrics could not be written",
        )
    })?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}
