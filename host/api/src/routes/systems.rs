//! `/v1/systems`: the configured systems, their manifests, pausing them.

use super::*;
use crate::AppState;
use crate::auth::{Auth, Need, roles};
use crate::extract::{Json, Path};
use crate::problem::{ApiResult, Problem, ReadProblems, WriteProblems};
use axum::extract::State;
use oubli_core::rights::tokens::Role;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// These routes, each registered once with its OpenAPI entry.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(systems))
        .routes(routes!(manifest))
        .routes(routes!(pause))
        .routes(routes!(resume))
}

/// A system, as listed.
#[derive(Debug, Serialize, ToSchema)]
pub struct SystemInfo {
    /// The integrator's name for it.
    pub name: String,
    /// Whether it takes part in requests.
    pub enabled: bool,
    /// Its connector's id, when loaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connector: Option<String>,
    /// Its connector's version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// SHA-256 of the component.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Why it is paused, if it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused: Option<String>,
}

/// `GET /v1/systems`: the configured systems.
#[utoipa::path(get, path = "/v1/systems", tag = "systems",
    responses(
        (status = 200, body = Vec<SystemInfo>), ReadProblems),
    security(("bearer" = [])))]
pub async fn systems(
    State(state): State<AppState>,
    auth: Auth,
) -> ApiResult<axum::Json<Vec<SystemInfo>>> {
    auth.require(Role::Auditor)?;
    let paused = state.engine.paused_systems().await?;
    let rights = state.engine.systems();
    let out = rights
        .config()
        .systems
        .iter()
        .map(|s| {
            let c = rights.registry().get(s.name()).map(|c| c.info().clone());
            SystemInfo {
                name: s.name().to_string(),
                enabled: s.enabled,
                connector: c.as_ref().map(|c| c.manifest.id.clone()),
                version: c.as_ref().map(|c| c.manifest.version.clone()),
                sha256: c.map(|c| c.sha256),
                paused: paused
                    .iter()
                    .find(|p| p.system == s.name())
                    .map(|p| p.reason.clone()),
            }
        })
        .collect();
    Ok(axum::Json(out))
}

/// `GET /v1/systems/{system}/manifest`: what the system's connector says
/// about itself (untrusted text, as the connector wrote it).
#[utoipa::path(get, path = "/v1/systems/{system}/manifest", tag = "systems",
    params(("system" = SystemName, Path, description = "The system's name")),
    responses(
        (status = 200, body = Object, description = "The connector's manifest"), ReadProblems),
    security(("bearer" = [])))]
pub async fn manifest(
    State(state): State<AppState>,
    auth: Auth,
    Path(system): Path<String>,
) -> ApiResult<axum::Json<serde_json::Value>> {
    auth.require(Role::Auditor)?;
    let c = state
        .engine
        .systems()
        .registry()
        .get(&system)
        .ok_or_else(|| Problem::not_found("no such system, or its connector is not loaded"))?;
    let m = serde_json::to_value(&c.info().manifest)
        .map_err(|_| Problem::not_found("the manifest cannot be shown"))?;
    Ok(axum::Json(m))
}

/// Whether a pause or resume changed anything.
#[derive(Debug, Serialize, ToSchema)]
pub struct Changed {
    /// False when it was already so.
    pub changed: bool,
}

/// `POST /v1/systems/{system}/pause`: hold a system's queued tasks.
#[utoipa::path(post, path = "/v1/systems/{system}/pause", tag = "systems", request_body = ReasonInput,
    params(("system" = SystemName, Path, description = "The system's name")),
    responses(
        (status = 200, body = Changed), WriteProblems),
    security(("bearer" = [])))]
pub async fn pause(
    State(state): State<AppState>,
    Need(caller): Need<{ roles::OPERATOR }>,
    Path(system): Path<String>,
    Json(body): Json<ReasonInput>,
) -> ApiResult<axum::Json<Changed>> {
    text("reason", &body.reason)?;
    let changed = state
        .engine
        .pause_system(&system, &caller.name, &body.reason)
        .await?;
    Ok(axum::Json(Changed { changed }))
}

/// `POST /v1/systems/{system}/resume`.
#[utoipa::path(post, path = "/v1/systems/{system}/resume", tag = "systems",
    params(("system" = SystemName, Path, description = "The system's name")),
    responses(
        (status = 200, body = Changed), WriteProblems),
    security(("bearer" = [])))]
pub async fn resume(
    State(state): State<AppState>,
    auth: Auth,
    Path(system): Path<String>,
) -> ApiResult<axum::Json<Changed>> {
    let caller = auth.require(Role::Operator)?;
    let changed = state.engine.resume_system(&system, &caller.name).await?;
    Ok(axum::Json(Changed { changed }))
}
