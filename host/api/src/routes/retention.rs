//! `/v1/retention`: retention policies, their runs, approvals and
//! certificates. A run started here is carried out by the workers (`serve`'s
//! own, or `oubli worker`), a page at a time between request work.

use super::*;
use crate::AppState;
use crate::auth::Auth;
use crate::extract::{Json, Path, Query};
use crate::problem::{ApiResult, Problem, ReadProblems, WriteProblems};
use axum::extract::State;
use axum::http::StatusCode;
use oubli_core::rights::certificate::SignedCertificate;
use oubli_core::rights::retention::{PolicyView, SweepView};
use oubli_core::rights::tokens::Role;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// These routes, each registered once with its OpenAPI entry.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(retention_policies))
        .routes(routes!(retention_start))
        .routes(routes!(retention_runs))
        .routes(routes!(retention_run))
        .routes(routes!(retention_approve))
        .routes(routes!(retention_certificate))
}

fn valid_run(id: &str) -> Result<(), Problem> {
    valid_id(id).map_err(|_| Problem::not_found("no such run (ids are letters, digits, - _ .)"))
}

/// `GET /v1/retention/policies`: every policy, with the period that applies
/// (the longest over its category), its next scheduled run and last runs.
#[utoipa::path(get, path = "/v1/retention/policies", tag = "retention",
    responses(
        (status = 200, body = Vec<PolicyView>), ReadProblems),
    security(("bearer" = [])))]
pub async fn retention_policies(
    State(state): State<AppState>,
    auth: Auth,
) -> ApiResult<axum::Json<Vec<PolicyView>>> {
    auth.require(Role::Auditor)?;
    Ok(axum::Json(state.engine.retention_policies().await?))
}

/// What run to start.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunInput {
    /// Carry out the policy's accepted test run (erases); a test run, which
    /// erases nothing, when false or absent.
    #[serde(default)]
    pub enforce: bool,
}

/// `POST /v1/retention/policies/{policy}/runs`: start a run (a test run, or
/// the enforcing run of an accepted test run). The workers carry it out.
#[utoipa::path(post, path = "/v1/retention/policies/{policy}/runs", tag = "retention", request_body = RunInput,
    params(("policy" = PolicyId, Path, description = "The policy's id")),
    responses(
        (status = 202, body = SweepView, description = "Started; the workers carry it out"), WriteProblems),
    security(("bearer" = [])))]
pub async fn retention_start(
    State(state): State<AppState>,
    auth: Auth,
    Path(policy): Path<String>,
    Json(body): Json<RunInput>,
) -> ApiResult<(StatusCode, axum::Json<SweepView>)> {
    let caller = auth.require(Role::Operator)?;
    let id = state
        .engine
        .retention_start(&policy, body.enforce, None, &caller.name)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(state.engine.retention_sweep(&id).await?),
    ))
}

/// Which runs to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RunsQuery {
    /// Only this policy's runs.
    #[param(pattern = "^[a-z0-9_-]{1,64}$")]
    pub policy: Option<String>,
}

/// `GET /v1/retention/runs`: the last runs, newest first.
#[utoipa::path(get, path = "/v1/retention/runs", tag = "retention", params(RunsQuery),
    responses(
        (status = 200, body = Vec<SweepView>), ReadProblems),
    security(("bearer" = [])))]
pub async fn retention_runs(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<RunsQuery>,
) -> ApiResult<axum::Json<Vec<SweepView>>> {
    auth.require(Role::Auditor)?;
    if let Some(p) = &q.policy {
        let valid = (1..=64).contains(&p.len())
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !valid {
            return Err(Problem::bad_request(
                "policy is a policy's id: 1 to 64 lowercase letters, digits, - and _",
            ));
        }
    }
    Ok(axum::Json(
        state.engine.retention_sweeps(q.policy.as_deref()).await?,
    ))
}

/// `GET /v1/retention/runs/{id}`: one run.
#[utoipa::path(get, path = "/v1/retention/runs/{id}", tag = "retention",
    params(("id" = RunId, Path, description = "The run's id")),
    responses(
        (status = 200, body = SweepView), ReadProblems),
    security(("bearer" = [])))]
pub async fn retention_run(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<SweepView>> {
    auth.require(Role::Auditor)?;
    valid_run(&id)?;
    Ok(axum::Json(state.engine.retention_sweep(&id).await?))
}

/// `POST /v1/retention/runs/{id}/approve`: accept a test run's disposition
/// (four eyes: not by who ran it).
#[utoipa::path(post, path = "/v1/retention/runs/{id}/approve", tag = "retention",
    params(("id" = RunId, Path, description = "The run's id")),
    responses(
        (status = 200, body = SweepView), WriteProblems),
    security(("bearer" = [])))]
pub async fn retention_approve(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<SweepView>> {
    let caller = auth.require(Role::Approver)?;
    valid_run(&id)?;
    Ok(axum::Json(
        state.engine.retention_approve(&id, &caller.name).await?,
    ))
}

/// `GET /v1/retention/runs/{id}/certificate`: an enforcing run's signed
/// retention certificate.
#[utoipa::path(get, path = "/v1/retention/runs/{id}/certificate", tag = "retention",
    params(("id" = RunId, Path, description = "The run's id")),
    responses(
        (status = 200, body = SignedCertificate), WriteProblems),
    security(("bearer" = [])))]
pub async fn retention_certificate(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<SignedCertificate>> {
    auth.require(Role::Auditor)?;
    valid_run(&id)?;
    Ok(axum::Json(state.engine.retention_certificate(&id).await?))
}
