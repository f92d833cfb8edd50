//! Stand-in for the Genesys Cloud platform API, the parts a GDPR connector
//! uses. Shapes follow the Platform API SDK models (`GDPRRequest`,
//! `GDPRSubject`, `ReplacementTerm`, entity listings, analytics conversation
//! details, recordings):
//!
//! | call | meaning |
//! |---|---|
//! | `GET /api/v2/gdpr/subjects?searchType=&searchValue=` | subjects (external contacts) matching one identifier; 400 on an unknown `searchType` |
//! | `POST /api/v2/gdpr/requests[?deleteConfirmed=true]` | start a `GDPR_EXPORT`, `GDPR_UPDATE` or `GDPR_DELETE`; 202 with the request |
//! | `GET /api/v2/gdpr/requests?pageSize=&pageNumber=` | the requests, paged |
//! | `GET /api/v2/gdpr/requests/{id}` | one request; `status` moves INITIATED → SEARCHING → UPDATING/DELETING → FINALIZING → COMPLETED, one step per `step` |
//! | `GET /api/v2/externalcontacts/contacts/{id}` | an external contact |
//! | `POST /api/v2/analytics/conversations/details/query` | conversations whose `ani` matches |
//! | `GET /api/v2/conversations/{id}` | a conversation and its participants |
//! | `GET /api/v2/conversations/{id}/recordings[/{recordingId}]` | its recordings, with `mediaUris` |
//! | `GET /media/recordings/{id}.wav` | the audio (pre-signed in the real service, so no bearer), `Range` honoured |
//! | `POST /oauth/token` | client-credentials grant (on `login.{region}` in the real service) |
//!
//! A `GDPR_DELETE` takes effect when it reaches FINALIZING: matching
//! external contacts are deleted, matching conversations lose the caller's
//! address and name, and their recordings are deleted. A `GDPR_UPDATE`
//! replaces the terms everywhere. Tokens: [`ADMIN_TOKEN`] may do everything,
//! [`VIEWER_TOKEN`] only read (`gdpr:request:add` missing → 403).

use crate::common::{Auth, JsonBody, Vendor, serve_wav, wav_len_for_seconds};
use crate::people::{Person, Rng};
use crate::util::{ApiJson, iso8601, page_of};
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Bearer token with every `gdpr:*` permission.
pub const ADMIN_TOKEN: &str = "sandbox-genesys-admin-token";
/// Bearer token with view permissions only.
pub const VIEWER_TOKEN: &str = "sandbox-genesys-viewer-token";
/// OAuth client id for the client-credentials grant (`POST /oauth/token`).
pub const CLIENT_ID: &str = "sandbox-genesys-client";
/// Its secret; the grant hands out [`ADMIN_TOKEN`].
pub const CLIENT_SECRET: &str = "sandbox-genesys-client-secret";

const SEARCH_TYPES: &[&str] = &[
    "NAME",
    "ADDRESS",
    "PHONE",
    "EMAIL",
    "TWITTER",
    "INSTAGRAM",
    "FACEBOOK",
    "APPLE_MESSAGES",
    "WHATSAPP",
    "EXTERNAL_ID",
];

/// An external contact.
#[derive(Debug, Clone)]
pub struct ExternalContact {
    /// Its id.
    pub id: String,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// Personal email.
    pub personal_email: Option<String>,
    /// Work email.
    pub work_email: Option<String>,
    /// Mobile, E.164.
    pub cell_phone: Option<String>,
    /// Creation time, seconds since the epoch.
    pub created: i64,
}

/// A voice conversation.
#[derive(Debug, Clone)]
pub struct Conversation {
    /// Its id.
    pub id: String,
    /// Start, seconds since the epoch.
    pub start: i64,
    /// Length in seconds.
    pub seconds: i64,
    /// Caller address, `tel:+44...`, or `sip:anonymous@anonymous.invalid`
    /// after a delete.
    pub ani: String,
    /// Caller name as captured by the IVR.
    pub customer_name: String,
    /// Agent name.
    pub agent: String,
    /// Recordings: (id, size in bytes, seed of the audio).
    pub recordings: Vec<(String, u64, u64)>,
}

#[derive(Debug, Clone)]
struct GdprRequest {
    id: String,
    kind: String,
    subject: Value,
    terms: Vec<Value>,
    created: Instant,
    created_date: String,
    applied: bool,
}

/// The stand-in's data.
#[derive(Debug)]
pub struct GenesysData {
    /// External contacts by id.
    pub contacts: BTreeMap<String, ExternalContact>,
    /// Conversations by id.
    pub conversations: BTreeMap<String, Conversation>,
    requests: Vec<GdprRequest>,
    next_request: u64,
}

impl GenesysData {
    /// How many GDPR requests were submitted (a test checks an erasure is
    /// never submitted twice).
    pub fn gdpr_requests(&self) -> usize {
        self.requests.len()
    }

    /// The type and subject of every GDPR request submitted, in order.
    pub fn gdpr_request_subjects(&self) -> Vec<(String, Value)> {
        self.requests
            .iter()
            .map(|r| (r.kind.clone(), r.subject.clone()))
            .collect()
    }
}

/// The stand-in's shared state.
#[derive(Debug)]
pub struct Genesys {
    /// The data, for tests to inspect.
    pub data: Mutex<GenesysData>,
    /// Time per status step of a GDPR request.
    pub step: Mutex<Duration>,
    /// How long a new GDPR request waits, once recorded, before it is
    /// answered (a client that gives up meanwhile never learns its id).
    pub accept_delay: Mutex<Duration>,
    /// Finish every GDPR request the moment the requests are listed (a job
    /// that completes between a client's read and its listing).
    pub finish_when_listed: Mutex<bool>,
    /// Access tokens handed out (`POST /oauth/token` answered 200).
    pub tokens_issued: std::sync::atomic::AtomicUsize,
    base_url: Mutex<String>,
}

impl Genesys {
    /// Seed from `people`; `large_recording` adds a recording of that many
    /// bytes to the second person's first conversation.
    pub fn seed(people: &[Person], step: Duration, large_recording: Option<u64>) -> Arc<Self> {
        let mut rng = Rng::new(0x6e6e);
        let mut contacts = BTreeMap::new();
        let mut conversations = BTreeMap::new();
        let base_time = 1_767_225_600; // 2026-01-01T00:00:00Z
        for p in people.iter().filter(|p| p.systems().acd) {
            let id = uuid_like(&mut rng);
            contacts.insert(
                id.clone(),
                ExternalContact {
                    id,
                    first_name: p.first_name.clone(),
                    last_name: p.last_name.clone(),
                    personal_email: Some(p.email.clone()),
                    work_email: p.other_email.clone(),
                    cell_phone: Some(p.phone.clone()),
                    created: base_time + p.index as i64 * 3600,
                },
            );
            if p.index == 0 {
                // A duplicate identity: a second contact sharing the email.
                let id = uuid_like(&mut rng);
                contacts.insert(
                    id.clone(),
                    ExternalContact {
                        id,
                        first_name: p.first_name.clone(),
                        last_name: p.last_name.clone(),
                        personal_email: Some(p.email.clone()),
                        work_email: None,
                        cell_phone: None,
                        created: base_time + 86_400 * 40,
                    },
                );
            }
            for c in 0..(1 + (p.index + 1) % 3) {
                let id = uuid_like(&mut rng);
                let seconds = 60 + rng.below(600) as i64;
                let mut recordings = vec![(
                    uuid_like(&mut rng),
                    wav_len_for_seconds(2 + (p.index % 4) as u64),
                    rng.next_u64(),
                )];
                if let (1, 0, Some(size)) = (p.index, c, large_recording) {
                    recordings.push((uuid_like(&mut rng), size, 7));
                }
                conversations.insert(
                    id.clone(),
                    Conversation {
                        id,
                        start: base_time + (p.index as i64) * 7200 + c as i64 * 86_400 * 3,
                        seconds,
                        ani: format!("tel:{}", p.phone),
                        customer_name: p.full_name(),
                        agent: format!("Agent {}", 1 + rng.below(40)),
                        recordings,
                    },
                );
            }
        }
        Arc::new(Genesys {
            data: Mutex::new(GenesysData {
                contacts,
                conversations,
                requests: Vec::new(),
                next_request: 1,
            }),
            step: Mutex::new(step),
            accept_delay: Mutex::new(Duration::ZERO),
            finish_when_listed: Mutex::new(false),
            tokens_issued: std::sync::atomic::AtomicUsize::new(0),
            base_url: Mutex::new(String::new()),
        })
    }

    /// The routes, once the listening address is known.
    pub fn router(self: &Arc<Self>, base_url: &str) -> Router {
        *self.base_url.lock().expect("lock") = base_url.to_string();
        Router::new()
            .route("/api/v2/gdpr/subjects", get(subjects))
            .route(
                "/api/v2/gdpr/requests",
                post(create_request).get(list_requests),
            )
            .route("/api/v2/gdpr/requests/{id}", get(get_request))
            .route("/api/v2/gdpr/requests/{id}/results", get(request_results))
            .route("/api/v2/externalcontacts/contacts/{id}", get(get_contact))
            .route(
                "/api/v2/analytics/conversations/details/query",
                post(conversation_query),
            )
            .route("/api/v2/conversations/{id}", get(get_conversation))
            .route(
                "/api/v2/conversations/{id}/recordings",
                get(list_recordings),
            )
            .route(
                "/api/v2/conversations/{id}/recordings/{rid}",
                get(get_recording),
            )
            .route("/media/recordings/{file}", get(media))
            .route("/oauth/token", post(oauth_token))
            .with_state(self.clone())
    }

    /// Apply every request that has reached FINALIZING.
    fn advance(&self) {
        let step = *self.step.lock().expect("lock");
        let mut data = self.data.lock().expect("lock");
        let due: Vec<usize> = data
            .requests
            .iter()
            .enumerate()
            .filter(|(_, r)| !r.applied && stage(r.created, step) >= 3)
            .map(|(i, _)| i)
            .collect();
        for i in due {
            let r = data.requests[i].clone();
            match r.kind.as_str() {
                "GDPR_DELETE" => data.delete_subject(&r.subject),
                "GDPR_UPDATE" => data.replace_terms(&r.terms),
                _ => {}
            }
            data.requests[i].applied = true;
        }
    }

    fn request_json(&self, r: &GdprRequest) -> Value {
        let step = *self.step.lock().expect("lock");
        let base = self.base_url.lock().expect("lock").clone();
        let status = match (stage(r.created, step), r.kind.as_str()) {
            (0, _) => "INITIATED",
            (1, _) => "SEARCHING",
            (2, "GDPR_DELETE") => "DELETING",
            (2, "GDPR_UPDATE") => "UPDATING",
            (2, _) => "SEARCHING",
            (3, _) => "FINALIZING",
            _ => "COMPLETED",
        };
        let mut v = json!({
            "id": r.id,
            "name": format!("oubli {}", r.kind.to_lowercase()),
            "createdBy": {"id": "5f0c2e1d-oubli-sandbox-user", "selfUri": "/api/v2/users/5f0c2e1d-oubli-sandbox-user"},
            "requestType": r.kind,
            "createdDate": r.created_date,
            "status": status,
            "subject": r.subject,
            "selfUri": format!("/api/v2/gdpr/requests/{}", r.id),
        });
        if !r.terms.is_empty() {
            v["replacementTerms"] = Value::Array(r.terms.clone());
        }
        if status == "COMPLETED" && r.kind == "GDPR_EXPORT" {
            v["resultsUrl"] = json!(format!("{base}/api/v2/gdpr/requests/{}/results", r.id));
        }
        v
    }
}

fn stage(created: Instant, step: Duration) -> u32 {
    if step.is_zero() {
        return 4;
    }
    (created.elapsed().as_nanos() / step.as_nanos()).min(4) as u32
}

fn uuid_like(rng: &mut Rng) -> String {
    let a = rng.next_u64();
    let b = rng.next_u64();
    format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        b >> 52,
        b & 0xffff_ffff_ffff
    )
}

impl GenesysData {
    fn contact_matches(c: &ExternalContact, kind: &str, value: &str) -> bool {
        match kind {
            "EMAIL" => [&c.personal_email, &c.work_email]
                .iter()
                .any(|e| e.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(value))),
            "PHONE" => c.cell_phone.as_deref() == Some(value),
            "NAME" => {
                let full = format!("{} {}", c.first_name, c.last_name).to_lowercase();
                !value.is_empty() && full.contains(&value.to_lowercase())
            }
            "EXTERNAL_ID" => c.id == value,
            _ => false,
        }
    }

    fn subject_identifiers(subject: &Value) -> Vec<(&'static str, String)> {
        let mut ids = Vec::new();
        let list = |key: &str| -> Vec<String> {
            subject[key]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        for e in list("emailAddresses") {
            ids.push(("EMAIL", e));
        }
        for p in list("phoneNumbers") {
            ids.push(("PHONE", p));
        }
        if let Some(id) = subject["externalContactId"].as_str() {
            ids.push(("EXTERNAL_ID", id.to_string()));
        }
        ids
    }

    fn delete_subject(&mut self, subject: &Value) {
        let ids = Self::subject_identifiers(subject);
        let mut phones: Vec<String> = ids
            .iter()
            .filter(|(k, _)| *k == "PHONE")
            .map(|(_, v)| v.clone())
            .collect();
        let doomed: Vec<String> = self
            .contacts
            .values()
            .filter(|c| ids.iter().any(|(k, v)| Self::contact_matches(c, k, v)))
            .map(|c| c.id.clone())
            .collect();
        for id in doomed {
            if let Some(c) = self.contacts.remove(&id) {
                phones.extend(c.cell_phone);
            }
        }
        for conv in self.conversations.values_mut() {
            if phones.iter().any(|p| conv.ani == format!("tel:{p}")) {
                conv.ani = "sip:anonymous@anonymous.invalid".into();
                conv.customer_name = String::new();
                conv.recordings.clear();
            }
        }
    }

    fn replace_terms(&mut self, terms: &[Value]) {
        for t in terms {
            let (Some(kind), Some(old), Some(new)) = (
                t["type"].as_str(),
                t["existingValue"].as_str(),
                t["updatedValue"].as_str(),
            ) else {
                continue;
            };
            for c in self.contacts.values_mut() {
                match kind {
                    "EMAIL" => {
                        for e in [&mut c.personal_email, &mut c.work_email] {
                            if e.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(old)) {
                                *e = Some(new.to_string());
                            }
                        }
                    }
                    "PHONE" if c.cell_phone.as_deref() == Some(old) => {
                        c.cell_phone = Some(new.to_string());
                    }
                    "NAME" if format!("{} {}", c.first_name, c.last_name) == old => {
                        let (f, l) = new.split_once(' ').unwrap_or((new, ""));
                        c.first_name = f.to_string();
                        c.last_name = l.to_string();
                    }
                    _ => {}
                }
            }
            for conv in self.conversations.values_mut() {
                match kind {
                    "PHONE" if conv.ani == format!("tel:{old}") => conv.ani = format!("tel:{new}"),
                    "NAME" if conv.customer_name == old => conv.customer_name = new.to_string(),
                    _ => {}
                }
            }
        }
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        ApiJson(json!({
            "message": message,
            "code": code,
            "status": status.as_u16(),
            "contextId": "00000000-0000-4000-a000-000000000000",
            "details": [],
            "errors": [],
        })),
    )
        .into_response()
}

/// Genesys Cloud's conventions: an admin token (role 0, may write) and a
/// view-only one (role 1), errors with a code and a context id.
pub struct GenesysCloud;

/// The role of [`ADMIN_TOKEN`] in [`GenesysCloud::TOKENS`].
const ADMIN: usize = 0;

impl Vendor for GenesysCloud {
    const TOKENS: &'static [&'static str] = &[ADMIN_TOKEN, VIEWER_TOKEN];
    fn unauthorised() -> Response {
        error(
            StatusCode::UNAUTHORIZED,
            "authentication.required",
            "No authentication bearer token specified in authorization header.",
        )
    }
    fn malformed_body() -> Response {
        error(
            StatusCode::BAD_REQUEST,
            "bad.request",
            "The request could not be understood by the server due to malformed syntax.",
        )
    }
}

fn contact_json(c: &ExternalContact) -> Value {
    let mut v = json!({
        "id": c.id,
        "firstName": c.first_name,
        "lastName": c.last_name,
        "createDate": iso8601(c.created),
        "selfUri": format!("/api/v2/externalcontacts/contacts/{}", c.id),
    });
    if let Some(e) = &c.personal_email {
        v["personalEmail"] = json!(e);
    }
    if let Some(e) = &c.work_email {
        v["workEmail"] = json!(e);
    }
    if let Some(p) = &c.cell_phone {
        v["cellPhone"] = json!({"display": p, "e164": p, "countryCode": "GB"});
    }
    v
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubjectQuery {
    search_type: Option<String>,
    search_value: Option<String>,
}

async fn subjects(
    State(g): State<Arc<Genesys>>,
    _auth: Auth<GenesysCloud>,
    Query(q): Query<SubjectQuery>,
) -> Response {
    g.advance();
    let (Some(kind), Some(value)) = (q.search_type, q.search_value) else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad.request",
            "searchType and searchValue are required",
        );
    };
    if !SEARCH_TYPES.contains(&kind.as_str()) {
        return error(
            StatusCode::BAD_REQUEST,
            "bad.request",
            &format!("Invalid searchType: {kind}"),
        );
    }
    let data = g.data.lock().expect("lock");
    let entities: Vec<Value> = data
        .contacts
        .values()
        .filter(|c| GenesysData::contact_matches(c, &kind, &value))
        .map(|c| {
            let emails: Vec<&String> = [&c.personal_email, &c.work_email]
                .into_iter()
                .flatten()
                .collect();
            let phones: Vec<&String> = c.cell_phone.iter().collect();
            json!({
                "name": format!("{} {}", c.first_name, c.last_name),
                "externalContactId": c.id,
                "addresses": [],
                "phoneNumbers": phones,
                "emailAddresses": emails,
            })
        })
        .collect();
    let total = entities.len();
    ApiJson(json!({
        "entities": entities,
        "pageSize": total.max(25),
        "pageNumber": 1,
        "total": total,
        "pageCount": 1,
    }))
    .into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateQuery {
    delete_confirmed: Option<bool>,
}

async fn create_request(
    State(g): State<Arc<Genesys>>,
    auth: Auth<GenesysCloud>,
    Query(q): Query<CreateQuery>,
    JsonBody(body, ..): JsonBody<GenesysCloud>,
) -> Response {
    if auth.role() != ADMIN {
        return error(
            StatusCode::FORBIDDEN,
            "missing.permissions",
            "Unable to perform the requested action. You are missing the following permission(s): gdpr:request:add",
        );
    }
    let kind = body["requestType"].as_str().unwrap_or_default().to_string();
    if !["GDPR_EXPORT", "GDPR_UPDATE", "GDPR_DELETE"].contains(&kind.as_str()) {
        return error(
            StatusCode::BAD_REQUEST,
            "bad.request",
            "requestType must be one of GDPR_EXPORT, GDPR_UPDATE, GDPR_DELETE",
        );
    }
    if !body["subject"].is_object() {
        return error(
            StatusCode::BAD_REQUEST,
            "bad.request",
            "subject is required",
        );
    }
    if kind == "GDPR_DELETE" && q.delete_confirmed != Some(true) {
        return error(
            StatusCode::BAD_REQUEST,
            "gdpr.delete.not.confirmed",
            "A GDPR_DELETE request requires deleteConfirmed=true",
        );
    }
    let terms = body["replacementTerms"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if kind == "GDPR_UPDATE" && terms.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "bad.request",
            "replacementTerms are required for GDPR_UPDATE",
        );
    }
    let request = {
        let mut data = g.data.lock().expect("lock");
        let n = data.next_request;
        data.next_request += 1;
        let r = GdprRequest {
            id: format!("6b1d0c8e-0000-4000-a000-{n:012x}"),
            kind,
            subject: body["subject"].clone(),
            terms,
            created: Instant::now(),
            created_date: iso8601(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs() as i64)
                    .unwrap_or(0),
            ),
            applied: false,
        };
        data.requests.push(r.clone());
        r
    };
    let delay = *g.accept_delay.lock().expect("lock");
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    g.advance();
    (StatusCode::ACCEPTED, ApiJson(g.request_json(&request))).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageQuery {
    page_size: Option<usize>,
    page_number: Option<usize>,
}

async fn list_requests(
    State(g): State<Arc<Genesys>>,
    _auth: Auth<GenesysCloud>,
    Query(q): Query<PageQuery>,
) -> Response {
    if *g.finish_when_listed.lock().expect("lock") {
        let step = *g.step.lock().expect("lock");
        let mut data = g.data.lock().expect("lock");
        for r in &mut data.requests {
            if let Some(past) = Instant::now().checked_sub(step * 10) {
                r.created = past;
            }
        }
    }
    g.advance();
    let all: Vec<Value> = {
        let data = g.data.lock().expect("lock");
        data.requests.iter().map(|r| g.request_json(r)).collect()
    };
    ApiJson(page_of(
        all,
        q.page_size.unwrap_or(25),
        q.page_number.unwrap_or(1),
        "/api/v2/gdpr/requests",
    ))
    .into_response()
}

async fn get_request(
    State(g): State<Arc<Genesys>>,
    _auth: Auth<GenesysCloud>,
    Path(id): Path<String>,
) -> Response {
    g.advance();
    let found = g
        .data
        .lock()
        .expect("lock")
        .requests
        .iter()
        .find(|r| r.id == id)
        .cloned();
    match found {
        Some(r) => ApiJson(g.request_json(&r)).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "not.found",
            "The requested resource was not found.",
        ),
    }
}

async fn request_results(
    State(g): State<Arc<Genesys>>,
    _auth: Auth<GenesysCloud>,
    Path(id): Path<String>,
) -> Response {
    g.advance();
    let data = g.data.lock().expect("lock");
    let Some(r) = data
        .requests
        .iter()
        .find(|r| r.id == id && r.kind == "GDPR_EXPORT" && r.applied)
    else {
        return error(
            StatusCode::NOT_FOUND,
            "not.found",
            "No results for this request.",
        );
    };
    let ids = GenesysData::subject_identifiers(&r.subject);
    let contacts: Vec<Value> = data
        .contacts
        .values()
        .filter(|c| {
            ids.iter()
                .any(|(k, v)| GenesysData::contact_matches(c, k, v))
        })
        .map(contact_json)
        .collect();
    ApiJson(json!({"externalContacts": contacts})).into_response()
}

async fn get_contact(
    State(g): State<Arc<Genesys>>,
    _auth: Auth<GenesysCloud>,
    Path(id): Path<String>,
) -> Response {
    g.advance();
    match g.data.lock().expect("lock").contacts.get(&id) {
        Some(c) => ApiJson(contact_json(c)).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "not.found",
            "The requested resource was not found.",
        ),
    }
}

fn analytics_json(c: &Conversation) -> Value {
    json!({
        "conversationId": c.id,
        "conversationStart": iso8601(c.start),
        "conversationEnd": iso8601(c.start + c.seconds),
        "originatingDirection": "inbound",
        "mediaStatsMinConversationMos": 4.38,
        "participants": [
            {
                "participantId": format!("{}-c", &c.id[..8]),
                "participantName": c.customer_name,
                "purpose": "customer",
                "sessions": [{
                    "mediaType": "voice",
                    "sessionId": format!("{}-s", &c.id[..8]),
                    "ani": c.ani,
                    "dnis": "tel:+441134960000",
                    "direction": "inbound",
                    "recording": !c.recordings.is_empty(),
                }],
            },
            {
                "participantId": format!("{}-a", &c.id[..8]),
                "participantName": c.agent,
                "purpose": "agent",
                "sessions": [{"mediaType": "voice", "direction": "inbound"}],
            },
        ],
    })
}

async fn conversation_query(
    State(g): State<Arc<Genesys>>,
    _auth: Auth<GenesysCloud>,
    JsonBody(body, ..): JsonBody<GenesysCloud>,
) -> Response {
    g.advance();
    if body["interval"].as_str().is_none() {
        return error(
            StatusCode::BAD_REQUEST,
            "bad.request",
            "interval is required",
        );
    }
    // Every predicate on `ani` (exact, case-insensitive), ORed.
    let mut anis = Vec::new();
    for f in body["segmentFilters"].as_array().into_iter().flatten() {
        for p in f["predicates"].as_array().into_iter().flatten() {
            if p["dimension"] == "ani"
                && let Some(v) = p["value"].as_str()
            {
                anis.push(v.to_lowercase());
            }
        }
    }
    let page_size = body["paging"]["pageSize"]
        .as_u64()
        .unwrap_or(25)
        .clamp(1, 100) as usize;
    let page_number = body["paging"]["pageNumber"].as_u64().unwrap_or(1).max(1) as usize;
    let data = g.data.lock().expect("lock");
    let hits: Vec<Value> = data
        .conversations
        .values()
        .filter(|c| anis.contains(&c.ani.to_lowercase()))
        .map(analytics_json)
        .collect();
    let total = hits.len();
    let page: Vec<Value> = hits
        .into_iter()
        .skip((page_number - 1) * page_size)
        .take(page_size)
        .collect();
    if page.is_empty() {
        return ApiJson(json!({"totalHits": total})).into_response();
    }
    ApiJson(json!({"conversations": page, "totalHits": total})).into_response()
}

async fn get_conversation(
    State(g): State<Arc<Genesys>>,
    _auth: Auth<GenesysCloud>,
    Path(id): Path<String>,
) -> Response {
    g.advance();
    let data = g.data.lock().expect("lock");
    let Some(c) = data.conversations.get(&id) else {
        return error(
            StatusCode::NOT_FOUND,
            "not.found",
            "The requested resource was not found.",
        );
    };
    ApiJson(json!({
        "id": c.id,
        "startTime": iso8601(c.start),
        "endTime": iso8601(c.start + c.seconds),
        "participants": [
            {"id": format!("{}-c", &c.id[..8]), "name": c.customer_name, "purpose": "customer",
             "ani": c.ani, "dnis": "tel:+441134960000", "address": c.ani},
            {"id": format!("{}-a", &c.id[..8]), "name": c.agent, "purpose": "agent"},
        ],
        "recordingState": if c.recordings.is_empty() { "none" } else { "active" },
        "selfUri": format!("/api/v2/conversations/{}", c.id),
    }))
    .into_response()
}

fn recording_json(base: &str, c: &Conversation, r: &(String, u64, u64)) -> Value {
    json!({
        "id": r.0,
        "conversationId": c.id,
        "media": "audio",
        "fileState": "AVAILABLE",
        "startTime": iso8601(c.start),
        "endTime": iso8601(c.start + c.seconds),
        "mediaUris": {"S": {"mediaUri": format!("{base}/media/recordings/{}.wav", r.0)}},
        "selfUri": format!("/api/v2/conversations/{}/recordings/{}", c.id, r.0),
    })
}

async fn list_recordings(
    State(g): State<Arc<Genesys>>,
    _auth: Auth<GenesysCloud>,
    Path(id): Path<String>,
) -> Response {
    g.advance();
    let base = g.base_url.lock().expect("lock").clone();
    let data = g.data.lock().expect("lock");
    let Some(c) = data.conversations.get(&id) else {
        return error(
            StatusCode::NOT_FOUND,
            "not.found",
            "The requested resource was not found.",
        );
    };
    let list: Vec<Value> = c
        .recordings
        .iter()
        .map(|r| recording_json(&base, c, r))
        .collect();
    ApiJson(Value::Array(list)).into_response()
}

async fn get_recording(
    State(g): State<Arc<Genesys>>,
    _auth: Auth<GenesysCloud>,
    Path((id, rid)): Path<(String, String)>,
) -> Response {
    g.advance();
    let base = g.base_url.lock().expect("lock").clone();
    let data = g.data.lock().expect("lock");
    let found = data
        .conversations
        .get(&id)
        .and_then(|c| c.recordings.iter().find(|r| r.0 == rid).map(|r| (c, r)));
    match found {
        Some((c, r)) => ApiJson(recording_json(&base, c, r)).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "not.found",
            "The requested resource was not found.",
        ),
    }
}

async fn media(
    State(g): State<Arc<Genesys>>,
    headers: HeaderMap,
    Path(file): Path<String>,
) -> Response {
    let rid = file.trim_end_matches(".wav");
    let found = {
        let data = g.data.lock().expect("lock");
        data.conversations
            .values()
            .flat_map(|c| c.recordings.iter())
            .find(|r| r.0 == rid)
            .map(|r| (r.1, r.2))
    };
    match found {
        Some((size, seed)) => serve_wav(&headers, seed, size),
        None => (StatusCode::NOT_FOUND, "NoSuchKey").into_response(),
    }
}

async fn oauth_token(
    State(g): State<Arc<Genesys>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let expected = format!("{CLIENT_ID}:{CLIENT_SECRET}");
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(crate::util::base64_decode);
    if body.as_ref() != b"grant_type=client_credentials" {
        return (
            StatusCode::BAD_REQUEST,
            ApiJson(json!({"error": "unsupported_grant_type", "description": "grant_type must be client_credentials"})),
        )
            .into_response();
    }
    if given.as_deref() != Some(expected.as_bytes()) {
        return (
            StatusCode::UNAUTHORIZED,
            ApiJson(
                json!({"error": "invalid_client", "description": "client not found or bad secret"}),
            ),
        )
            .into_response();
    }
    g.tokens_issued
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    ApiJson(json!({"access_token": ADMIN_TOKEN, "token_type": "bearer", "expires_in": 86399}))
        .into_response()
}
