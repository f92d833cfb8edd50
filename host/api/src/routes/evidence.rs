//! Evidence: erasure certificates and the audit log (verification, events,
//! signed heads).

use super::*;
use crate::AppState;
use crate::auth::Auth;
use crate::extract::{Path, Query};
use crate::problem::{ApiResult, Problem, ReadProblems, WriteProblems};
use axum::extract::State;
use oubli_core::rights::audit::AuditReport;
use oubli_core::rights::certificate::SignedCertificate;
use oubli_core::rights::tokens::Role;
use oubli_model::evidence::{ConsistencyProof, LogEvent, TreeHead};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// These routes, each registered once with its OpenAPI entry.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(certificate))
        .routes(routes!(audit_verify))
        .routes(routes!(audit_events))
        .routes(routes!(audit_heads))
}

/// `GET /v1/requests/{id}/certificate`: the signed erasure certificate.
#[utoipa::path(get, path = "/v1/requests/{id}/certificate", tag = "evidence",
    params(("id" = RequestId, Path, description = "The request's id")),
    responses(
        (status = 200, body = SignedCertificate), WriteProblems),
    security(("bearer" = [])))]
pub async fn certificate(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<SignedCertificate>> {
    auth.require(Role::Auditor)?;
    valid_id(&id)?;
    Ok(axum::Json(state.engine.certificate(&id).await?))
}

/// `GET /v1/audit/verify`: recompute the chain, check the signed heads.
#[utoipa::path(get, path = "/v1/audit/verify", tag = "evidence",
    responses(
        (status = 200, body = AuditReport), ReadProblems),
    security(("bearer" = [])))]
pub async fn audit_verify(
    State(state): State<AppState>,
    auth: Auth,
) -> ApiResult<axum::Json<AuditReport>> {
    auth.require(Role::Auditor)?;
    Ok(axum::Json(state.engine.verify_audit().await?))
}

/// Paging through the audit log.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Skip the log's first `after` events (the `next_after` of the page before).
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// Page size (1 to 1000; default 200).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// A page of the audit log.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    /// The events, oldest first.
    pub events: Vec<LogEvent>,
    /// Pass as `after` for the next page.
    pub next_after: i64,
}

/// `GET /v1/audit/events`: the audit log (reasons stay sealed).
#[utoipa::path(get, path = "/v1/audit/events", tag = "evidence", params(EventsQuery),
    responses(
        (status = 200, body = EventPage), ReadProblems),
    security(("bearer" = [])))]
pub async fn audit_events(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<EventsQuery>,
) -> ApiResult<axum::Json<EventPage>> {
    auth.require(Role::Auditor)?;
    let after = q.after.unwrap_or(0);
    let limit = q.limit.unwrap_or(200);
    if after < 0 || !(1..=1000).contains(&limit) {
        return Err(Problem::bad_request(
            "after is 0 or more, limit between 1 and 1000",
        ));
    }
    let events = state.engine.audit_events(after, limit).await?;
    let next_after = events.last().map_or(after, |e| e.leaf + 1);
    Ok(axum::Json(EventPage { events, next_after }))
}

/// Which signed tree heads to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HeadsQuery {
    /// Only heads over more than this many events (the size of the last
    /// head a witness holds); 0 for all.
    #[param(minimum = 0)]
    pub since: Option<i64>,
}

/// A signed tree head with the proof that the one before it is a prefix.
#[derive(Debug, Serialize, ToSchema)]
pub struct HeadWithProof {
    /// The head.
    pub head: TreeHead,
    /// From the head before it (or from `since`).
    pub consistency: ConsistencyProof,
}

/// `GET /v1/audit/heads`: the signed tree heads of the audit log, each
/// with its consistency proof, for a witness to check and keep.
#[utoipa::path(get, path = "/v1/audit/heads", tag = "evidence", params(HeadsQuery),
    responses(
        (status = 200, body = Vec<HeadWithProof>), ReadProblems),
    security(("bearer" = [])))]
pub async fn audit_heads(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<HeadsQuery>,
) -> ApiResult<axum::Json<Vec<HeadWithProof>>> {
    auth.require(Role::Auditor)?;
    let since = q.since.unwrap_or(0);
    if since < 0 {
        return Err(Problem::bad_request("since is 0 or more"));
    }
    let heads = state.engine.tree_heads_since(since).await?;
    Ok(axum::Json(
        heads
            .into_iter()
            .map(|(head, consistency)| HeadWithProof { head, consistency })
            .collect(),
    ))
}
