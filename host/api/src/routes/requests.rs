//! `/v1/requests`: file, list and show requests, act on them (attest,
//! approve, reject, cancel, extend, lift, exclude, retry, skip, done) and
//! fetch the subject's bundle.

use super::*;
use crate::AppState;
use crate::auth::{Auth, Need, roles};
use crate::extract::{Json, Path, Query};
use crate::problem::{ApiResult, Problem, ReadProblems, WriteProblems};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use oubli_core::rights::engine::{
    Attestation, Correction, NewRequest, Params, RequestDetail, RequestView,
};
use oubli_core::rights::tokens::Role;
use oubli_model::request::Filter;
use oubli_model::{RequestKind, RequestState};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// These routes, each registered once with its OpenAPI entry.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_request, list_requests))
        .routes(routes!(get_request))
        .routes(routes!(attest))
        .routes(routes!(approve))
        .routes(routes!(reject))
        .routes(routes!(cancel))
        .routes(routes!(note))
        .routes(routes!(extend))
        .routes(routes!(lift))
        .routes(routes!(exclude))
        .routes(routes!(retry_planning))
        .routes(routes!(retry))
        .routes(routes!(skip))
        .routes(routes!(done))
        .routes(routes!(bundle))
}

/// A new request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "kind": "access",
    "subject": {"emails": ["ada.lovelace@example.com"], "phones": ["+442079460123"]}
}))]
pub struct CreateRequest {
    /// What the subject asks for.
    #[schema(value_type = FilingKind)]
    pub kind: RequestKind,
    /// Who.
    #[serde(deserialize_with = "object")]
    pub subject: SubjectInput,
    /// Region for national phone numbers (ISO 3166, `FR`).
    #[serde(default)]
    #[schema(value_type = Option<RegionCode>)]
    pub region: Option<String>,
    /// Rectification: the corrections.
    #[serde(default, deserialize_with = "objects")]
    #[schema(max_items = 20)]
    pub changes: Vec<ChangeInput>,
    /// Restriction, objection, consent withdrawal: what is restricted.
    #[serde(default)]
    #[schema(value_type = Vec<ScopeName>, max_items = 20)]
    pub scope: Vec<String>,
    /// The identity check, if already done.
    #[serde(default)]
    #[serde(deserialize_with = "maybe_object")]
    pub attestation: Option<AttestationInput>,
    /// How the request reached the controller (a contact center's intake).
    #[serde(default)]
    pub channel: Option<oubli_model::Channel>,
    /// When it was actually received, RFC 3339 with its offset: the
    /// deadline runs from then (needs `channel`; at most a year ago).
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub received_at: Option<String>,
}

/// One correction.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeInput {
    /// The system (every system that has the field if absent).
    #[serde(default)]
    pub system: Option<String>,
    /// The connector's field name.
    #[schema(value_type = Text)]
    pub field: String,
    /// The new value (absent or null clears the field).
    #[serde(default)]
    #[schema(value_type = Option<Text>)]
    pub value: Option<String>,
}

/// How the subject's identity was checked.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"method": "call-back", "evidence": "called back on the number on file"}))]
pub struct AttestationInput {
    /// How (`id-document`, `call-back`, `email-link`).
    #[schema(value_type = Text)]
    pub method: String,
    /// The evidence (kept sealed).
    #[schema(value_type = Text)]
    pub evidence: String,
}

/// The intake of a request from its channel and time received.
pub(crate) fn intake(
    channel: Option<oubli_model::Channel>,
    received_at: Option<&str>,
) -> Result<Option<oubli_core::rights::engine::Intake>, Problem> {
    let received_at = received_at
        .map(|t| {
            oubli_core::rights::engine::parse_timestamp(t)
                .map_err(|e| Problem::unprocessable(format!("received_at: {e}")))
        })
        .transpose()?;
    match (channel, received_at) {
        (None, Some(_)) => Err(Problem::unprocessable(
            "received_at needs the channel the request came by",
        )),
        (None, None) => Ok(None),
        (Some(channel), received_at) => Ok(Some(oubli_core::rights::engine::Intake {
            channel,
            received_at,
            needs_attestation: false,
        })),
    }
}

impl AttestationInput {
    fn into_core(self) -> Result<Attestation, Problem> {
        text("method", &self.method)?;
        text("evidence", &self.evidence)?;
        Ok(Attestation {
            method: self.method,
            evidence: self.evidence,
        })
    }
}

/// `POST /v1/requests`: file a request.
#[utoipa::path(post, path = "/v1/requests", tag = "requests",
    request_body = CreateRequest,
    params(("Idempotency-Key" = Option<String>, Header, pattern = r"^[\x21-\x7E]{1,255}$", description = "Retry safely: the same key and body answer the request filed the first time (1 to 255 visible ASCII characters)")),
    responses(
        (status = 201, description = "Filed", body = RequestView),
        (status = 200, description = "Filed before with this idempotency key", body = RequestView), WriteProblems),
    security(("bearer" = [])))]
pub async fn create_request(
    State(state): State<AppState>,
    Need(caller): Need<{ roles::OPERATOR }>,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> ApiResult<Response> {
    let canonical = body.to_string();
    let req: CreateRequest = serde_json::from_value(body)
        .map_err(|e| Problem::unprocessable(crate::extract::clean_message(&e.to_string())))?;
    if req.scope.len() > MAX_ITEMS || req.changes.len() > MAX_ITEMS {
        return Err(Problem::unprocessable(format!(
            "at most {MAX_ITEMS} changes and {MAX_ITEMS} scopes"
        )));
    }
    for s in &req.scope {
        text("a scope", s)?;
    }
    let mut changes = Vec::with_capacity(req.changes.len());
    for c in req.changes {
        text("a field", &c.field)?;
        text("a value", c.value.as_deref().unwrap_or_default())?;
        changes.push(Correction {
            system: c.system,
            field: c.field,
            new_value: c.value,
        });
    }
    let new = NewRequest {
        id: None,
        kind: req.kind,
        identifiers: req.subject.identifiers()?,
        region: region(req.region)?,
        actor: caller.name.clone(),
        params: Params {
            changes,
            scope: req.scope,
            lifts: None,
        },
        attestation: req
            .attestation
            .map(AttestationInput::into_core)
            .transpose()?,
        intake: intake(req.channel, req.received_at.as_deref())?,
    };
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => {
            let k = v.to_str().ok().filter(|k| {
                !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic())
            });
            Some(k.ok_or_else(|| {
                Problem::bad_request("Idempotency-Key is 1 to 255 visible ASCII characters")
            })?)
        }
    };
    let (view, created) = match key {
        Some(k) => {
            let scoped = format!("{}\n{k}", caller.name);
            let body_sha = hex::encode(Sha256::digest(canonical.as_bytes()));
            state.engine.file_once(new, &scoped, &body_sha).await?
        }
        None => (state.engine.file(new).await?, true),
    };
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut r = (status, axum::Json(&view)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/v1/requests/{}", view.id)) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Ok(r)
}

/// Filters of `GET /v1/requests`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only requests in this state.
    pub state: Option<RequestState>,
    /// Only requests not over and due before this time (ms since the epoch).
    pub due_before: Option<i64>,
    /// Only requests past their deadline and not over.
    pub overdue: Option<bool>,
    /// Only requests with a task waiting for an operator (past its
    /// budget, a permanent error, a manual task), planning included.
    pub needs_attention: Option<bool>,
    /// The `next_cursor` of the page before (a request's id).
    #[param(pattern = "^[A-Za-z0-9._-]{1,128}$")]
    pub cursor: Option<String>,
    /// Page size (1 to 500; default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

/// A page of requests.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequestPage {
    /// The requests, by id.
    pub items: Vec<RequestView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// `GET /v1/requests`: list requests, by id, a page at a time (the cursor
/// is the last id seen, so pages stay stable while requests are filed).
#[utoipa::path(get, path = "/v1/requests", tag = "requests", params(ListQuery),
    responses(
        (status = 200, body = RequestPage), ReadProblems),
    security(("bearer" = [])))]
pub async fn list_requests(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<ListQuery>,
) -> ApiResult<axum::Json<RequestPage>> {
    auth.require(Role::Auditor)?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(Problem::bad_request("limit is between 1 and 500"));
    }
    // What the schema says, checked the same way (a length in bytes
    // against a schema's length in characters once refused a valid one).
    if q.cursor.as_ref().is_some_and(|c| {
        !(1..=128).contains(&c.len())
            || !c
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    }) {
        return Err(Problem::bad_request("not a cursor"));
    }
    let due_before = match (q.overdue, q.due_before) {
        (Some(true), Some(d)) => Some(d.min(state.engine.now())),
        (Some(true), None) => Some(state.engine.now()),
        (_, d) => d,
    };
    let items = state
        .engine
        .list(&Filter {
            state: q.state,
            due_before,
            ids: None,
            needs_attention: q.needs_attention.unwrap_or(false),
            after: q.cursor,
            limit: limit + 1,
            ..Filter::default()
        })
        .await?;
    let mut items = items;
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|r| r.id.clone())
    } else {
        None
    };
    Ok(axum::Json(RequestPage { items, next_cursor }))
}

/// `GET /v1/requests/{id}`: a request with its systems (plans, results,
/// tasks) and history.
#[utoipa::path(get, path = "/v1/requests/{id}", tag = "requests",
    params(("id" = RequestId, Path, description = "The request's id")),
    responses(
        (status = 200, body = RequestDetail), ReadProblems),
    security(("bearer" = [])))]
pub async fn get_request(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<RequestDetail>> {
    let caller = auth.require(Role::Auditor)?;
    valid_id(&id)?;
    let detail = state.engine.show(&id).await?;
    Ok(axum::Json(for_role(detail, caller.role)))
}

/// A deadline extension (Art. 12(3)).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"months": 1, "reason": "twelve systems and a vendor job still running", "told": "by email on 2026-12-04"}))]
pub struct ExtendInput {
    /// By how many months (at most two in all).
    #[schema(minimum = 1, maximum = 2)]
    pub months: u32,
    /// Why (complexity, number of requests).
    #[schema(value_type = RequiredText)]
    pub reason: String,
    /// How and when the subject was told.
    #[schema(value_type = RequiredText)]
    pub told: String,
}

/// A note on a manual task.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"note": "shredded tickets 11 and 12 with rt-shredder"}))]
pub struct NoteInput {
    /// What was done in the system.
    #[schema(value_type = RequiredText)]
    pub note: String,
}

/// Record the identity check, and start planning.
#[utoipa::path(post, path = "/v1/requests/{id}/attest", tag = "requests", request_body = AttestationInput, params(("id" = RequestId, Path, description = "The request's id")),
    responses((status = 200, body = RequestDetail), WriteProblems),
    security(("bearer" = [])))]
pub async fn attest(
    State(state): State<AppState>,
    Need(caller): Need<{ roles::OPERATOR }>,
    Path(id): Path<String>,
    Json(body): Json<AttestationInput>,
) -> ApiResult<axum::Json<RequestDetail>> {
    valid_id(&id)?;
    let a = body.into_core()?;
    state.engine.attest(&id, &caller.name, &a).await?;
    shown(&state, &id, caller.role).await
}

/// Approve the plan (approver; under four eyes, not the requester).
#[utoipa::path(post, path = "/v1/requests/{id}/approve", tag = "requests", params(("id" = RequestId, Path, description = "The request's id")),
    responses((status = 200, body = RequestDetail), WriteProblems),
    security(("bearer" = [])))]
pub async fn approve(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<RequestDetail>> {
    let caller = auth.require(Role::Approver)?;
    valid_id(&id)?;
    state.engine.approve(&id, &caller.name).await?;
    shown(&state, &id, caller.role).await
}

/// Reject the plan (approver).
#[utoipa::path(post, path = "/v1/requests/{id}/reject", tag = "requests", request_body = ReasonInput, params(("id" = RequestId, Path, description = "The request's id")),
    responses((status = 200, body = RequestDetail), WriteProblems),
    security(("bearer" = [])))]
pub async fn reject(
    State(state): State<AppState>,
    Need(caller): Need<{ roles::APPROVER }>,
    Path(id): Path<String>,
    Json(body): Json<ReasonInput>,
) -> ApiResult<axum::Json<RequestDetail>> {
    valid_id(&id)?;
    text("reason", &body.reason)?;
    state.engine.reject(&id, &caller.name, &body.reason).await?;
    shown(&state, &id, caller.role).await
}

/// Cancel a request that is not over.
#[utoipa::path(post, path = "/v1/requests/{id}/cancel", tag = "requests", request_body = ReasonInput, params(("id" = RequestId, Path, description = "The request's id")),
    responses((status = 200, body = RequestDetail), WriteProblems),
    security(("bearer" = [])))]
pub async fn cancel(
    State(state): State<AppState>,
    Need(caller): Need<{ roles::OPERATOR }>,
    Path(id): Path<String>,
    Json(body): Json<ReasonInput>,
) -> ApiResult<axum::Json<RequestDetail>> {
    valid_id(&id)?;
    text("reason", &body.reason)?;
    state.engine.cancel(&id, &caller.name, &body.reason).await?;
    shown(&state, &id, caller.role).await
}

/// Add a note to the request's history (sealed; auditors see it withheld).
#[utoipa::path(post, path = "/v1/requests/{id}/note", tag = "requests", request_body = NoteInput, params(("id" = RequestId, Path, description = "The request's id")),
    responses((status = 200, body = RequestDetail), WriteProblems),
    security(("bearer" = [])))]
pub async fn note(
    State(state): State<AppState>,
    Need(caller): Need<{ roles::OPERATOR }>,
    Path(id): Path<String>,
    Json(body): Json<NoteInput>,
) -> ApiResult<axum::Json<RequestDetail>> {
    valid_id(&id)?;
    text("note", &body.note)?;
    state.engine.note(&id, &caller.name, &body.note).await?;
    shown(&state, &id, caller.role).await
}

/// Extend the deadline (Art. 12(3)).
#[utoipa::path(post, path = "/v1/requests/{id}/extend", tag = "requests", request_body = ExtendInput, params(("id" = RequestId, Path, description = "The request's id")),
    responses((status = 200, body = RequestDetail), WriteProblems),
    security(("bearer" = [])))]
pub async fn extend(
    State(state): State<AppState>,
    Need(caller): Need<{ roles::OPERATOR }>,
    Path(id): Path<String>,
    Json(body): Json<ExtendInput>,
) -> ApiResult<axum::Json<RequestDetail>> {
    valid_id(&id)?;
    text("reason", &body.reason)?;
    text("told", &body.told)?;
    state
        .engine
        .extend(&id, &caller.name, body.months, &body.reason, &body.told)
        .await?;
    shown(&state, &id, caller.role).await
}

/// Body of the lift action.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "the subject agreed again", "told": "by phone on 2026-12-04"}))]
pub struct LiftInput {
    /// Why the restriction ends.
    #[schema(value_type = RequiredText)]
    pub reason: String,
    /// How and when the subject was told (Art. 18(3)).
    #[schema(value_type = RequiredText)]
    pub told: String,
}

/// A record of a plan, as the plan names it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordInput {
    /// Its kind (`ticket`).
    pub kind: String,
    /// Its id in the system.
    pub id: String,
}

/// Body of the exclude action.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"record": {"kind": "ticket", "id": "11"}, "reason": "held for a court case (Art. 17(3)(e))"}))]
pub struct ExcludeInput {
    /// The record kept out of the plan.
    #[serde(deserialize_with = "object")]
    pub record: RecordInput,
    /// Why.
    #[schema(value_type = RequiredText)]
    pub reason: String,
}

/// Lift a restriction, objection or consent withdrawal (Art. 18(3)); answers the `lift` request filed to carry it to every system.
#[utoipa::path(post, path = "/v1/requests/{id}/lift", tag = "requests", request_body = LiftInput, params(( "id" = RequestId, Path, description = "The restriction's request id" )),
    responses((status = 200, body = RequestDetail), WriteProblems),
    security(("bearer" = [])))]
pub async fn lift(
    State(state): State<AppState>,
    Need(caller): Need<{ roles::OPERATOR }>,
    Path(id): Path<String>,
    Json(body): Json<LiftInput>,
) -> ApiResult<axum::Json<RequestDetail>> {
    valid_id(&id)?;
    text("reason", &body.reason)?;
    text("told", &body.told)?;
    let lift = state
        .engine
        .lift(&id, &caller.name, &body.reason, &body.told)
        .await?;
    shown(&state, &lift.id, caller.role).await
}

/// Keep one record out of a plan awaiting approval (approver), with the reason.
#[utoipa::path(post, path = "/v1/requests/{id}/systems/{system}/exclude", tag = "requests", request_body = ExcludeInput, params(("id" = RequestId, Path, description = "The request's id"), ("system" = SystemName, Path, description = "The system's name")),
    responses((status = 200, body = RequestDetail), WriteProblems),
    security(("bearer" = [])))]
pub async fn exclude(
    State(state): State<AppState>,
    Need(caller): Need<{ roles::APPROVER }>,
    Path((id, system)): Path<(String, String)>,
    Json(body): Json<ExcludeInput>,
) -> ApiResult<axum::Json<RequestDetail>> {
    valid_id(&id)?;
    text("reason", &body.reason)?;
    text("a record kind", &body.record.kind)?;
    text("a record id", &body.record.id)?;
    let record = oubli_model::RecordRef {
        kind: body.record.kind,
        id: body.record.id,
    };
    state
        .engine
        .exclude(&id, &system, &record, &caller.name, &body.reason)
        .await?;
    shown(&state, &id, caller.role).await
}

/// Retry the planning task now (after it needed attention).
#[utoipa::path(post, path = "/v1/requests/{id}/planning/retry", tag = "requests", params(("id" = RequestId, Path, description = "The request's id")),
    responses((status = 200, body = RequestDetail), WriteProblems),
    security(("bearer" = [])))]
pub async fn retry_planning(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<RequestDetail>> {
    let caller = auth.require(Role::Operator)?;
    valid_id(&id)?;
    state.engine.retry_planning(&id, &caller.name).await?;
    shown(&state, &id, caller.role).await
}

/// Retry a system's task now.
#[utoipa::path(post, path = "/v1/requests/{id}/systems/{system}/retry", tag = "requests", params(("id" = RequestId, Path, description = "The request's id"), ("system" = SystemName, Path, description = "The system's name")),
    responses((status = 200, body = RequestDetail), WriteProblems),
    security(("bearer" = [])))]
pub async fn retry(
    State(state): State<AppState>,
    auth: Auth,
    Path((id, system)): Path<(String, String)>,
) -> ApiResult<axum::Json<RequestDetail>> {
    let caller = auth.require(Role::Operator)?;
    valid_id(&id)?;
    state.engine.retry(&id, &system, &caller.name).await?;
    shown(&state, &id, caller.role).await
}

/// Skip a system, with the reason.
#[utoipa::path(post, path = "/v1/requests/{id}/systems/{system}/skip", tag = "requests", request_body = ReasonInput, params(("id" = RequestId, Path, description = "The request's id"), ("system" = SystemName, Path, description = "The system's name")),
    responses((status = 200, body = RequestDetail), WriteProblems),
    security(("bearer" = [])))]
pub async fn skip(
    State(state): State<AppState>,
    Need(caller): Need<{ roles::OPERATOR }>,
    Path((id, system)): Path<(String, String)>,
    Json(body): Json<ReasonInput>,
) -> ApiResult<axum::Json<RequestDetail>> {
    valid_id(&id)?;
    text("reason", &body.reason)?;
    state
        .engine
        .skip(&id, &system, &caller.name, &body.reason)
        .await?;
    shown(&state, &id, caller.role).await
}

/// Mark a manual task done (the verifier then runs).
#[utoipa::path(post, path = "/v1/requests/{id}/systems/{system}/done", tag = "requests", request_body = NoteInput, params(("id" = RequestId, Path, description = "The request's id"), ("system" = SystemName, Path, description = "The system's name")),
    responses((status = 200, body = RequestDetail), WriteProblems),
    security(("bearer" = [])))]
pub async fn done(
    State(state): State<AppState>,
    Need(caller): Need<{ roles::OPERATOR }>,
    Path((id, system)): Path<(String, String)>,
    Json(body): Json<NoteInput>,
) -> ApiResult<axum::Json<RequestDetail>> {
    valid_id(&id)?;
    text("note", &body.note)?;
    state
        .engine
        .manual_done(&id, &system, &caller.name, &body.note)
        .await?;
    shown(&state, &id, caller.role).await
}

/// What `GET /v1/requests/{id}/bundle` takes.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BundleQuery {
    /// Hand out an answer written while the register of processing had
    /// gaps (its page says so); refused otherwise.
    pub allow_incomplete: Option<bool>,
    /// A recipient registered with `oubli keys recipient add` (default:
    /// the host's key).
    #[param(min_length = 1, max_length = 64)]
    pub recipient: Option<String>,
}

/// `GET /v1/requests/{id}/bundle`: the answer kept when an access or
/// portability request completed, encrypted for a recipient
/// (docs/FORMAT.md), streamed: the same answer at every fetch.
#[utoipa::path(get, path = "/v1/requests/{id}/bundle", tag = "requests",
    params(("id" = RequestId, Path, description = "The request's id"), BundleQuery),
    responses(
        (status = 200, content_type = "application/octet-stream", body = Vec<u8>, description = "The encrypted bundle"), WriteProblems),
    security(("bearer" = [])))]
pub async fn bundle(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Query(q): Query<BundleQuery>,
) -> ApiResult<Response> {
    auth.require(Role::Operator)?;
    valid_id(&id)?;
    let allow_incomplete = q.allow_incomplete.unwrap_or(false);
    let names: Vec<String> = q.recipient.into_iter().collect();
    let recipients = state.engine.recipients(&names).map_err(|_| {
        Problem::not_found("no such recipient in the keyring (`oubli keys list` shows them)")
    })?;
    // Refuse what cannot be handed out before the first byte goes out.
    state.engine.check_answer(&id, allow_incomplete).await?;
    Ok(bundle_response(
        state.engine.clone(),
        id,
        recipients,
        allow_incomplete,
        "bundle.oubli",
    ))
}

/// The kept answer of `id`, encrypted for `recipients` as it is written
/// and streamed (a download named `filename`): what the API's and the
/// console's downloads send, once the answer was checked.
pub(crate) fn bundle_response(
    engine: std::sync::Arc<oubli_core::rights::engine::Engine>,
    id: String,
    recipients: Vec<oubli_crypto::file::Recipient>,
    allow_incomplete: bool,
    filename: &str,
) -> Response {
    use oubli_core::rights::bundle::BundleOptions;
    let (writer, reader) = tokio::io::duplex(1 << 20);
    let (finished, outcome) = tokio::sync::oneshot::channel::<bool>();
    tokio::spawn(async move {
        let options = BundleOptions {
            recipients,
            allow_incomplete,
        };
        let ok = match engine.write_bundle(&id, &options, writer).await {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(error = %e, "bundle stream failed");
                false
            }
        };
        let _ = finished.send(ok);
    });
    let body = streamed_body(reader, outcome);
    let disposition = format!("attachment; filename=\"{filename}\"");
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response()
}

/// A body streamed from `reader` as a writer task fills it, ending as the
/// writer ended: cleanly when `outcome` says it finished, with an error
/// otherwise. A failure after the first byte must never look like a clean
/// end: the error makes hyper cut the connection instead of closing the
/// chunked body, so a client sees a broken transfer, never a short file.
pub(crate) fn streamed_body(
    reader: tokio::io::DuplexStream,
    outcome: tokio::sync::oneshot::Receiver<bool>,
) -> axum::body::Body {
    use futures_util::StreamExt;
    let tail = futures_util::stream::once(async move {
        match outcome.await {
            Ok(true) => None,
            _ => Some(Err(std::io::Error::other(
                "the bundle could not be completed",
            ))),
        }
    })
    .filter_map(std::future::ready);
    axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(reader).chain(tail))
}

#[cfg(test)]
mod stream_tests {
    use super::streamed_body;
    use http_body_util::BodyExt;
    use tokio::io::AsyncWriteExt;

    async fn run(finished: bool) -> Result<Vec<u8>, String> {
        let (mut writer, reader) = tokio::io::duplex(64);
        let (done, outcome) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            writer.write_all(b"first bytes of a bundle").await.unwrap();
            drop(writer);
            let _ = done.send(finished);
        });
        streamed_body(reader, outcome)
            .collect()
            .await
            .map(|b| b.to_bytes().to_vec())
            .map_err(|e| e.to_string())
    }

    #[tokio::test]
    async fn a_stream_that_failed_after_its_first_bytes_ends_in_an_error() {
        assert_eq!(run(true).await.unwrap(), b"first bytes of a bundle");
        let e = run(false).await.unwrap_err();
        assert!(e.contains("could not be completed"), "{e}");
    }
}
