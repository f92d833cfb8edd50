//! The routes: each checks the caller's role, reads its input, calls the
//! engine, and shapes the answer. No logic of their own.

use super::AppState;
use super::auth::{Auth, Need, roles};
use super::extract::{Json, Path, Query};
use super::problem::{ApiResult, Problem};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use oubli_core::identifiers::{Identifiers, Region};
use oubli_core::rights::audit::AuditReport;
use oubli_core::rights::certificate::SignedCertificate;
use oubli_core::rights::engine::{
    Attestation, Correction, NewRequest, Params, RequestDetail, RequestView,
};
use oubli_core::rights::restriction::CheckAnswer;
use oubli_core::rights::tokens::Role;
use oubli_model::evidence::{LogEvent, SignedHead};
use oubli_model::request::Filter;
use oubli_model::{RequestKind, RequestState};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};

const MAX_ITEMS: usize = 20;
const MAX_TEXT: usize = 1000;

/// A subject, by the identifiers the caller knows.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubjectInput {
    /// Email addresses.
    #[serde(default)]
    #[schema(max_items = 20)]
    pub emails: Vec<String>,
    /// Phone numbers (international, or national in `region`).
    #[serde(default)]
    #[schema(max_items = 20)]
    pub phones: Vec<String>,
    /// Names (hints only, never enough to act on).
    #[serde(default)]
    #[schema(max_items = 20)]
    pub names: Vec<String>,
    /// `namespace:id` pairs (`crm:0031`).
    #[serde(default)]
    #[schema(max_items = 20)]
    pub external_ids: Vec<String>,
}

impl SubjectInput {
    fn identifiers(self) -> Result<Identifiers, Problem> {
        for list in [&self.emails, &self.phones, &self.names, &self.external_ids] {
            if list.len() > MAX_ITEMS {
                return Err(Problem::unprocessable(format!(
                    "at most {MAX_ITEMS} identifiers of each kind"
                )));
            }
            if list.iter().any(|s| s.len() > 320) {
                return Err(Problem::unprocessable(
                    "an identifier is longer than 320 bytes",
                ));
            }
        }
        Ok(Identifiers {
            emails: self.emails,
            phones: self.phones,
            names: self.names,
            external_ids: self.external_ids,
        })
    }
}

fn region(r: Option<String>) -> Result<Option<Region>, Problem> {
    r.map(|r| {
        r.parse::<Region>()
            .map_err(|_| Problem::unprocessable("region is not an ISO 3166 code such as FR"))
    })
    .transpose()
}

fn text(what: &str, s: &str) -> Result<(), Problem> {
    if s.len() > MAX_TEXT {
        return Err(Problem::unprocessable(format!(
            "{what} is longer than {MAX_TEXT} bytes"
        )));
    }
    Ok(())
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
    pub kind: RequestKind,
    /// Who.
    pub subject: SubjectInput,
    /// Region for national phone numbers (ISO 3166, `FR`).
    #[serde(default)]
    pub region: Option<String>,
    /// Rectification: the corrections.
    #[serde(default)]
    #[schema(max_items = 20)]
    pub changes: Vec<ChangeInput>,
    /// Restriction, objection, consent withdrawal: what is restricted.
    #[serde(default)]
    #[schema(max_items = 20)]
    pub scope: Vec<String>,
    /// The identity check, if already done.
    #[serde(default)]
    pub attestation: Option<AttestationInput>,
}

/// One correction.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeInput {
    /// The system (every system that has the field if absent).
    #[serde(default)]
    pub system: Option<String>,
    /// The connector's field name.
    pub field: String,
    /// The new value (absent or null clears the field).
    #[serde(default)]
    pub value: Option<String>,
}

/// How the subject's identity was checked.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttestationInput {
    /// How (`id-document`, `call-back`, `email-link`).
    pub method: String,
    /// The evidence (kept sealed).
    pub evidence: String,
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
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry safely: the same key and body answer the request filed the first time")),
    responses(
        (status = 201, description = "Filed", body = RequestView),
        (status = 200, description = "Filed before with this idempotency key", body = RequestView),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn create_request(
    State(state): State<AppState>,
    Need(caller): Need<{ roles::OPERATOR }>,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> ApiResult<Response> {
    let canonical = body.to_string();
    let req: CreateRequest = serde_json::from_value(body)
        .map_err(|e| Problem::unprocessable(super::extract::clean_message(&e.to_string())))?;
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
    /// The `next_cursor` of the page before.
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
        (status = 200, body = RequestPage),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json"),
    ),
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
    if q.cursor.as_ref().is_some_and(|c| c.len() > 128) {
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

/// What an auditor may see of a request: no plans, no results, no notes.
fn for_role(mut d: RequestDetail, role: Role) -> RequestDetail {
    if !role.allows(Role::Operator) {
        for s in &mut d.systems {
            s.plan = None;
            s.result = None;
            if let Some(e) = &mut s.error {
                e.message = String::new();
            }
        }
        if let Some(e) = d.planning.as_mut().and_then(|p| p.error.as_mut()) {
            e.message = String::new();
        }
        for e in &mut d.events {
            if e.reason.is_some() {
                e.reason = Some("(withheld)".into());
            }
        }
    }
    d
}

fn valid_id(id: &str) -> Result<(), Problem> {
    if id.is_empty()
        || id.len() > 128
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(Problem::not_found(
            "no such request (ids are letters, digits, - _ .)",
        ));
    }
    Ok(())
}

/// `GET /v1/requests/{id}`: a request with its systems (plans, results,
/// tasks) and history.
#[utoipa::path(get, path = "/v1/requests/{id}", tag = "requests",
    params(("id" = String, Path, description = "The request's id")),
    responses(
        (status = 200, body = RequestDetail),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json"),
    ),
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

async fn shown(state: &AppState, id: &str, role: Role) -> ApiResult<axum::Json<RequestDetail>> {
    Ok(axum::Json(for_role(state.engine.show(id).await?, role)))
}

/// A reason.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonInput {
    /// Why (kept sealed).
    pub reason: String,
}

/// A deadline extension (Art. 12(3)).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtendInput {
    /// By how many months (at most two in all).
    #[schema(minimum = 1, maximum = 2)]
    pub months: u32,
    /// Why (complexity, number of requests).
    pub reason: String,
    /// How and when the subject was told.
    pub told: String,
}

/// A note on a manual task.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteInput {
    /// What was done in the system.
    pub note: String,
}

macro_rules! action_doc {
    ($name:ident, $path:literal, [$($param:tt)*], $body:ty, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "requests", request_body = $body, params($($param)*),
                    responses(
                        (status = 200, body = RequestDetail),
                        (status = 400, body = Problem, content_type = "application/problem+json"),
                        (status = 401, body = Problem, content_type = "application/problem+json"),
                        (status = 403, body = Problem, content_type = "application/problem+json"),
                        (status = 404, body = Problem, content_type = "application/problem+json"),
                        (status = 409, body = Problem, content_type = "application/problem+json"),
                        (status = 413, body = Problem, content_type = "application/problem+json"),
                        (status = 415, body = Problem, content_type = "application/problem+json"),
                        (status = 422, body = Problem, content_type = "application/problem+json"),
                        (status = 429, body = Problem, content_type = "application/problem+json"),
                    ),
                    security(("bearer" = [])))]
        #[allow(dead_code)]
        fn $name() {}
    };
    ($name:ident, $path:literal, [$($param:tt)*], $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "requests", params($($param)*),
                    responses(
                        (status = 200, body = RequestDetail),
                        (status = 400, body = Problem, content_type = "application/problem+json"),
                        (status = 401, body = Problem, content_type = "application/problem+json"),
                        (status = 403, body = Problem, content_type = "application/problem+json"),
                        (status = 404, body = Problem, content_type = "application/problem+json"),
                        (status = 409, body = Problem, content_type = "application/problem+json"),
                        (status = 429, body = Problem, content_type = "application/problem+json"),
                    ),
                    security(("bearer" = [])))]
        #[allow(dead_code)]
        fn $name() {}
    };
}

action_doc!(
    doc_attest,
    "/v1/requests/{id}/attest",
    [("id" = String, Path, description = "The request's id")],
    AttestationInput,
    "Record the identity check, and start planning."
);
action_doc!(
    doc_approve,
    "/v1/requests/{id}/approve",
    [("id" = String, Path, description = "The request's id")],
    "Approve the plan (approver; under four eyes, not the requester)."
);
action_doc!(
    doc_reject,
    "/v1/requests/{id}/reject",
    [("id" = String, Path, description = "The request's id")],
    ReasonInput,
    "Reject the plan (approver)."
);
action_doc!(
    doc_cancel,
    "/v1/requests/{id}/cancel",
    [("id" = String, Path, description = "The request's id")],
    ReasonInput,
    "Cancel a request that is not over."
);
action_doc!(
    doc_extend,
    "/v1/requests/{id}/extend",
    [("id" = String, Path, description = "The request's id")],
    ExtendInput,
    "Extend the deadline (Art. 12(3))."
);
action_doc!(
    doc_lift,
    "/v1/requests/{id}/lift",
    [(
        "id" = String,
        Path,
        description = "The restriction's request id"
    )],
    LiftInput,
    "Lift a restriction, objection or consent withdrawal (Art. 18(3)); answers the `lift` request filed to carry it to every system."
);
action_doc!(
    doc_exclude,
    "/v1/requests/{id}/systems/{system}/exclude",
    [
        ("id" = String, Path, description = "The request's id"),
        ("system" = String, Path, description = "The system's name")
    ],
    ExcludeInput,
    "Keep one record out of a plan awaiting approval (approver), with the reason."
);
action_doc!(
    doc_retry_planning,
    "/v1/requests/{id}/planning/retry",
    [("id" = String, Path, description = "The request's id")],
    "Retry the planning task now (after it needed attention)."
);
action_doc!(
    doc_retry,
    "/v1/requests/{id}/systems/{system}/retry",
    [
        ("id" = String, Path, description = "The request's id"),
        ("system" = String, Path, description = "The system's name")
    ],
    "Retry a system's task now."
);
action_doc!(
    doc_skip,
    "/v1/requests/{id}/systems/{system}/skip",
    [
        ("id" = String, Path, description = "The request's id"),
        ("system" = String, Path, description = "The system's name")
    ],
    ReasonInput,
    "Skip a system, with the reason."
);
action_doc!(
    doc_done,
    "/v1/requests/{id}/systems/{system}/done",
    [
        ("id" = String, Path, description = "The request's id"),
        ("system" = String, Path, description = "The system's name")
    ],
    NoteInput,
    "Mark a manual task done (the verifier then runs)."
);

pub(crate) async fn attest(
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

pub(crate) async fn approve(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<RequestDetail>> {
    let caller = auth.require(Role::Approver)?;
    valid_id(&id)?;
    state.engine.approve(&id, &caller.name).await?;
    shown(&state, &id, caller.role).await
}

pub(crate) async fn reject(
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

pub(crate) async fn cancel(
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

pub(crate) async fn extend(
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
pub struct LiftInput {
    /// Why the restriction ends.
    pub reason: String,
    /// How and when the subject was told (Art. 18(3)).
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
pub struct ExcludeInput {
    /// The record kept out of the plan.
    pub record: RecordInput,
    /// Why.
    pub reason: String,
}

pub(crate) async fn lift(
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

pub(crate) async fn exclude(
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

pub(crate) async fn retry_planning(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<RequestDetail>> {
    let caller = auth.require(Role::Operator)?;
    valid_id(&id)?;
    state.engine.retry_planning(&id, &caller.name).await?;
    shown(&state, &id, caller.role).await
}

pub(crate) async fn retry(
    State(state): State<AppState>,
    auth: Auth,
    Path((id, system)): Path<(String, String)>,
) -> ApiResult<axum::Json<RequestDetail>> {
    let caller = auth.require(Role::Operator)?;
    valid_id(&id)?;
    state.engine.retry(&id, &system, &caller.name).await?;
    shown(&state, &id, caller.role).await
}

pub(crate) async fn skip(
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

pub(crate) async fn done(
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

/// `GET /v1/requests/{id}/certificate`: the signed erasure certificate.
#[utoipa::path(get, path = "/v1/requests/{id}/certificate", tag = "evidence",
    params(("id" = String, Path, description = "The request's id")),
    responses(
        (status = 200, body = SignedCertificate),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json"),
    ),
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

/// What `GET /v1/requests/{id}/bundle` takes.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BundleQuery {
    /// The page's language (`en`, `fr`; default `en`).
    pub lang: Option<String>,
    /// A recipient registered with `oubli keys recipient add` (default:
    /// the host's key).
    pub recipient: Option<String>,
}

/// `GET /v1/requests/{id}/bundle`: the subject's bundle of a completed
/// access or portability request, encrypted (docs/FORMAT.md), streamed.
#[utoipa::path(get, path = "/v1/requests/{id}/bundle", tag = "requests",
    params(("id" = String, Path, description = "The request's id"), BundleQuery),
    responses(
        (status = 200, content_type = "application/octet-stream", body = Vec<u8>, description = "The encrypted bundle"),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn bundle(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Query(q): Query<BundleQuery>,
) -> ApiResult<Response> {
    use oubli_core::rights::bundle::{BundleOptions, Lang};
    auth.require(Role::Operator)?;
    valid_id(&id)?;
    let lang = match q.lang.as_deref() {
        None => Lang::En,
        Some(l) => Lang::parse(l).ok_or_else(|| Problem::bad_request("lang is en or fr"))?,
    };
    let names: Vec<String> = q.recipient.into_iter().collect();
    let recipients = state.engine.recipients(&names).map_err(|_| {
        Problem::bad_request("a recipient is not in the keyring (`oubli keys list` shows them)")
    })?;
    // Refuse what cannot be bundled before the first byte goes out.
    let view = state.engine.show(&id).await?;
    if !matches!(
        view.request.kind,
        RequestKind::Access | RequestKind::Portability
    ) || !matches!(
        view.request.state,
        RequestState::Completed | RequestState::PartiallyCompleted
    ) {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "refused",
            format!(
                "request {id} is a {} request, {}: bundles are for completed access and portability requests",
                view.request.kind, view.request.state
            ),
        ));
    }
    let (writer, reader) = tokio::io::duplex(1 << 20);
    let engine = state.engine.clone();
    let (finished, outcome) = tokio::sync::oneshot::channel::<bool>();
    tokio::spawn(async move {
        let options = BundleOptions { lang, recipients };
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
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"bundle.oubli\"",
            ),
        ],
        body,
    )
        .into_response())
}

/// A body streamed from `reader` as a writer task fills it, ending as the
/// writer ended: cleanly when `outcome` says it finished, with an error
/// otherwise. A failure after the first byte must never look like a clean
/// end: the error makes hyper cut the connection instead of closing the
/// chunked body, so a client sees a broken transfer, never a short file.
fn streamed_body(
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

/// A lookup by identifier (a POST: identifiers never travel in URLs).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LookupInput {
    /// Who.
    pub subject: SubjectInput,
    /// Region for national phone numbers.
    #[serde(default)]
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
        (status = 200, body = RequestIds),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json"),
    ),
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
pub struct CheckInput {
    /// Who.
    pub subject: SubjectInput,
    /// Region for national phone numbers.
    #[serde(default)]
    pub region: Option<String>,
    /// The processing asked about (`all`, a category, a purpose such as
    /// `direct-marketing`).
    pub scope: String,
}

/// `POST /v1/restrictions/check`: may this person be processed for this
/// scope? Answered from memory.
#[utoipa::path(post, path = "/v1/restrictions/check", tag = "restrictions", request_body = CheckInput,
    responses(
        (status = 200, body = CheckAnswer),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json"),
    ),
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
pub struct ConsentInput {
    /// Who.
    pub subject: SubjectInput,
    /// Region for national phone numbers.
    #[serde(default)]
    pub region: Option<String>,
    /// For what (`marketing-calls`).
    pub purpose: String,
    /// Given (true) or withdrawn (false: also files a consent-withdrawal
    /// request that restricts the purpose everywhere).
    pub given: bool,
    /// The lawful basis (default `consent`).
    #[serde(default)]
    pub lawful_basis: Option<String>,
    /// `call`, `ivr`, `email`, `web`.
    pub channel: String,
    /// The system it was captured in.
    #[serde(default)]
    pub source_system: Option<String>,
    /// The proof.
    #[serde(default)]
    pub evidence: oubli_core::rights::consent::Evidence,
}

/// `POST /v1/consent`: record a consent given or withdrawn (Art. 7(1)).
#[utoipa::path(post, path = "/v1/consent", tag = "consent", request_body = ConsentInput,
    responses(
        (status = 201, body = oubli_core::rights::consent::ConsentEntry),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json"),
    ),
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
        (status = 200, body = oubli_core::rights::consent::ConsentView),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json"),
    ),
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
        (status = 200, body = Vec<SystemInfo>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json"),
    ),
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
    params(("system" = String, Path, description = "The system's name")),
    responses(
        (status = 200, body = Object, description = "The connector's manifest"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json"),
    ),
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
    params(("system" = String, Path, description = "The system's name")),
    responses(
        (status = 200, body = Changed),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json"),
    ),
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
    params(("system" = String, Path, description = "The system's name")),
    responses(
        (status = 200, body = Changed),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json"),
    ),
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

/// `GET /v1/audit/verify`: recompute the chain, check the signed heads.
#[utoipa::path(get, path = "/v1/audit/verify", tag = "evidence",
    responses(
        (status = 200, body = AuditReport),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json"),
    ),
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
    /// Events after this id (the `next_after` of the page before).
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
        (status = 200, body = EventPage),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json"),
    ),
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
    let next_after = events.last().map_or(after, |e| e.id);
    Ok(axum::Json(EventPage { events, next_after }))
}

/// `GET /v1/audit/heads`: the signed heads of the chain.
#[utoipa::path(get, path = "/v1/audit/heads", tag = "evidence",
    responses(
        (status = 200, body = Vec<SignedHead>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn audit_heads(
    State(state): State<AppState>,
    auth: Auth,
) -> ApiResult<axum::Json<Vec<SignedHead>>> {
    auth.require(Role::Auditor)?;
    Ok(axum::Json(state.engine.signed_heads().await?))
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

/// `GET /metrics`: Prometheus text.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses(
        (status = 200, content_type = "text/plain", body = String),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn metrics(State(state): State<AppState>, auth: Auth) -> ApiResult<Response> {
    auth.require(Role::Auditor)?;
    let mut text = state.engine.metrics_text().await?;
    text.push_str(&state.http.render());
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}
