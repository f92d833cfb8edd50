//! A subject's side, by identifiers in the body (never in a URL): their
//! requests, whether they may be processed, their consents.

use super::*;
use crate::AppState;
use crate::auth::{Need, roles};
use crate::extract::Json;
use crate::problem::{ApiResult, WriteProblems};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use oubli_core::rights::restriction::CheckAnswer;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// These routes, each registered once with its OpenAPI entry.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(subject_requests))
        .routes(routes!(check_restriction))
        .routes(routes!(record_consent))
        .routes(routes!(consents))
}

/// A lookup by identifier (a POST: identifiers never travel in URLs).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"subject": {"emails": ["ada@example.com"]}}))]
pub struct LookupInput {
    /// Who.
    #[serde(deserialize_with = "object")]
    pub subject: SubjectInput,
    /// Region for national phone numbers.
    #[serde(default)]
    #[schema(value_type = Option<RegionCode>)]
    pub region: Option<String>,
}

/// The ids of a subject's requests.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequestIds {
    /// Request ids.
    pub ids: Vec<String>,
}

/// `POST /v1/subjects/requests`: a subject's requests, found through
/// blind indexes.
#[utoipa::path(post, path = "/v1/subjects/requests", tag = "requests", request_body = LookupInput,
    responses(
        (status = 200, body = RequestIds), WriteProblems),
    security(("bearer" = [])))]
pub async fn subject_requests(
    State(state): State<AppState>,
    Need(_caller): Need<{ roles::OPERATOR }>,
    Json(body): Json<LookupInput>,
) -> ApiResult<axum::Json<RequestIds>> {
    let ids = state
        .engine
        .requests_of(&body.subject.identifiers()?, region(body.region)?)
        .await?;
    Ok(axum::Json(RequestIds { ids }))
}

/// A restriction check.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"subject": {"phones": ["+33612345678"]}, "scope": "direct-marketing"}))]
pub struct CheckInput {
    /// Who.
    #[serde(deserialize_with = "object")]
    pub subject: SubjectInput,
    /// Region for national phone numbers.
    #[serde(default)]
    #[schema(value_type = Option<RegionCode>)]
    pub region: Option<String>,
    /// The processing asked about (`all`, a category, a purpose such as
    /// `direct-marketing`).
    #[schema(value_type = Text)]
    pub scope: String,
}

/// `POST /v1/restrictions/check`: may this person be processed for this
/// scope? Answered from memory.
#[utoipa::path(post, path = "/v1/restrictions/check", tag = "restrictions", request_body = CheckInput,
    responses(
        (status = 200, body = CheckAnswer), WriteProblems),
    security(("bearer" = [])))]
pub async fn check_restriction(
    State(state): State<AppState>,
    Need(_caller): Need<{ roles::OPERATOR }>,
    Json(body): Json<CheckInput>,
) -> ApiResult<axum::Json<CheckAnswer>> {
    text("scope", &body.scope)?;
    let answer = state.engine.check_restriction(
        &body.subject.identifiers()?,
        region(body.region)?,
        &body.scope,
    )?;
    Ok(axum::Json(answer))
}

/// A consent given or withdrawn.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"subject": {"emails": ["ada@example.com"]}, "purpose": "marketing-calls", "given": true, "channel": "call", "evidence": {"recording_id": "conv-1", "offset_seconds": 12, "agent_id": "agent-7"}}))]
pub struct ConsentInput {
    /// Who.
    #[serde(deserialize_with = "object")]
    pub subject: SubjectInput,
    /// Region for national phone numbers.
    #[serde(default)]
    #[schema(value_type = Option<RegionCode>)]
    pub region: Option<String>,
    /// For what (`marketing-calls`).
    #[schema(value_type = Label)]
    pub purpose: String,
    /// Given (true) or withdrawn (false: also files a consent-withdrawal
    /// request that restricts the purpose everywhere).
    pub given: bool,
    /// The lawful basis (default `consent`).
    #[serde(default)]
    #[schema(value_type = Option<Label>)]
    pub lawful_basis: Option<String>,
    /// `call`, `ivr`, `email`, `web`.
    #[schema(value_type = ConsentChannel)]
    pub channel: String,
    /// The system it was captured in.
    #[serde(default)]
    #[schema(value_type = Option<Label>)]
    pub source_system: Option<String>,
    /// The proof.
    #[serde(default)]
    #[serde(deserialize_with = "object")]
    pub evidence: oubli_core::rights::consent::Evidence,
}

/// `POST /v1/consent`: record a consent given or withdrawn (Art. 7(1)).
#[utoipa::path(post, path = "/v1/consent", tag = "consent", request_body = ConsentInput,
    responses(
        (status = 201, body = oubli_core::rights::consent::ConsentEntry), WriteProblems),
    security(("bearer" = [])))]
pub async fn record_consent(
    State(state): State<AppState>,
    Need(caller): Need<{ roles::OPERATOR }>,
    Json(body): Json<ConsentInput>,
) -> ApiResult<Response> {
    let e = &body.evidence;
    for t in [
        &e.recording_id,
        &e.notice_version,
        &e.notice_sha256,
        &e.agent_id,
        &e.note,
    ]
    .into_iter()
    .flatten()
    {
        text("evidence", t)?;
    }
    let entry = state
        .engine
        .record_consent(oubli_core::rights::consent::NewConsent {
            identifiers: body.subject.identifiers()?,
            region: region(body.region)?,
            purpose: body.purpose,
            given: body.given,
            lawful_basis: body.lawful_basis.unwrap_or_else(|| "consent".into()),
            channel: body.channel,
            source_system: body.source_system,
            evidence: body.evidence,
            actor: caller.name.clone(),
        })
        .await?;
    Ok((StatusCode::CREATED, axum::Json(entry)).into_response())
}

/// `POST /v1/consent/lookup`: a subject's consents, by identifiers in the body.
#[utoipa::path(post, path = "/v1/consent/lookup", tag = "consent", request_body = LookupInput,
    responses(
        (status = 200, body = oubli_core::rights::consent::ConsentView), WriteProblems),
    security(("bearer" = [])))]
pub async fn consents(
    State(state): State<AppState>,
    Need(_caller): Need<{ roles::OPERATOR }>,
    Json(body): Json<LookupInput>,
) -> ApiResult<axum::Json<oubli_core::rights::consent::ConsentView>> {
    Ok(axum::Json(
        state
            .engine
            .consents(&body.subject.identifiers()?, region(body.region)?)
            .await?,
    ))
}
