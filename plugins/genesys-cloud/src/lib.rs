//! Connector for Genesys Cloud (contact-center platform).
//!
//! What Genesys holds about a caller, and the API that reaches it:
//!
//! | data | found with | read with | removed with |
//! |---|---|---|---|
//! | external contacts | `GET /api/v2/gdpr/subjects?searchType=EMAIL\|PHONE\|EXTERNAL_ID` | `GET /api/v2/externalcontacts/contacts/{id}` | `POST /api/v2/gdpr/requests?deleteConfirmed=true` (`GDPR_DELETE`) |
//! | voice conversations | `POST /api/v2/analytics/conversations/details/query` on `ani` | `GET /api/v2/conversations/{id}` | the same `GDPR_DELETE`, by phone number |
//! | call recordings | `GET /api/v2/conversations/{id}/recordings` | the recording's `mediaUris` (Range requests) | deleted with their conversation's subject |
//!
//! GDPR requests are asynchronous on Genesys' side (INITIATED → … →
//! COMPLETED): `erase` and `rectify` answer `pending` with a ticket that
//! `poll` follows. The ticket carries the request id and the affected
//! records' ids (system ids, never personal data), so `poll` needs no state.
//! Phone numbers found on a subject are searched as well, so a person
//! located by email also has their calls found. Rectification uses
//! `GDPR_UPDATE` replacement terms. Genesys offers no restriction of
//! processing: `restrict` answers `not-supported` and the host makes it a
//! manual task.
//!
//! Configuration: `base_url` (the region's API, e.g.
//! `https://api.mypurecloud.ie`), `search_interval` (optional ISO-8601
//! interval for conversation searches), `login_url` (e.g.
//! `https://login.mypurecloud.ie`). Secrets: `client_id` and `client_secret`
//! of an OAuth client (client-credentials grant, one token per operation),
//! or a ready `token`. The client's role needs `gdpr:*`,
//! `analytics:conversationDetail:view`, `recording:recording:view` and
//! `externalContacts:contact:view`. Grant the API host, the login host and
//! the host serving recording media.

use oubli_plugin::http::{Client, client_credentials, split_url};
use oubli_plugin::prelude::*;
use oubli_plugin::text::parse_iso8601;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeSet;

const CONTACT: &str = "external-contact";
const CONVERSATION: &str = "conversation";
const DEFAULT_INTERVAL: &str = "2015-01-01T00:00:00.000Z/2100-01-01T00:00:00.000Z";
const PAGE_SIZE: usize = 100;

/// The API client, authenticated with the granted `token`, or else with a
/// token from the client-credentials grant at `login_url`.
fn api() -> Result<Client, ConnectorError> {
    let client = Client::new(&require_config("base_url")?)?;
    let token = match secret("token").filter(|t| !t.is_empty()) {
        Some(t) => t,
        None => client_credentials(
            &format!(
                "{}/oauth/token",
                require_config("login_url")?.trim_end_matches('/')
            ),
            &require_secret("client_id")?,
            &require_secret("client_secret")?,
        )?,
    };
    Ok(client.bearer(&token))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GdprSubject {
    external_contact_id: Option<String>,
    #[serde(default)]
    phone_numbers: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Phone {
    e164: Option<String>,
    display: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExternalContact {
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
    personal_email: Option<String>,
    work_email: Option<String>,
    other_email: Option<String>,
    cell_phone: Option<Phone>,
    work_phone: Option<Phone>,
    home_phone: Option<Phone>,
    create_date: Option<String>,
}

impl ExternalContact {
    fn phones(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("cellPhone", &self.cell_phone),
            ("workPhone", &self.work_phone),
            ("homePhone", &self.home_phone),
        ]
        .into_iter()
        .filter_map(|(n, p)| {
            let p = p.as_ref()?;
            Some((n, p.e164.as_deref().or(p.display.as_deref())?))
        })
    }
    fn emails(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("personalEmail", &self.personal_email),
            ("workEmail", &self.work_email),
            ("otherEmail", &self.other_email),
        ]
        .into_iter()
        .filter_map(|(n, e)| Some((n, e.as_deref()?)))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AnalyticsPage {
    #[serde(default)]
    conversations: Vec<AnalyticsConversation>,
    total_hits: Option<usize>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AnalyticsConversation {
    conversation_id: String,
    conversation_start: Option<String>,
    conversation_end: Option<String>,
    #[serde(default)]
    participants: Vec<AnalyticsParticipant>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AnalyticsParticipant {
    purpose: Option<String>,
    #[serde(default)]
    sessions: Vec<AnalyticsSession>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AnalyticsSession {
    media_type: Option<String>,
    recording: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Conversation {
    start_time: Option<String>,
    end_time: Option<String>,
    #[serde(default)]
    participants: Vec<Participant>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Participant {
    purpose: Option<String>,
    name: Option<String>,
    ani: Option<String>,
}

impl Conversation {
    /// The customer's participant(s): the subject's side of the call. Agents
    /// and other parties are third parties and are not exported.
    fn customers(&self) -> impl Iterator<Item = &Participant> {
        self.participants
            .iter()
            .filter(|p| matches!(p.purpose.as_deref(), Some("customer" | "external")))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Recording {
    id: String,
    media_uris: Option<serde_json::Map<String, Value>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GdprRequest {
    id: String,
    status: String,
}

/// `tel:+447700900123` / `+447700900123` → `+447700900123`.
fn phone_of_address(address: &str) -> Option<&str> {
    let n = address.strip_prefix("tel:").unwrap_or(address);
    (n.starts_with('+') && n.len() > 4 && n[1..].bytes().all(|b| b.is_ascii_digit())).then_some(n)
}

/// Every page of a GDPR subject search for one identifier.
fn search_subjects(
    api: &Client,
    kind: &str,
    value: &str,
) -> Result<Vec<GdprSubject>, ConnectorError> {
    api.get("/api/v2/gdpr/subjects")
        .query("searchType", kind)
        .query("searchValue", value)
        .all_pages()
}

/// Conversations whose customer called from one of `phones`, every page.
fn search_conversations(
    api: &Client,
    phones: &BTreeSet<String>,
) -> Result<Vec<AnalyticsConversation>, ConnectorError> {
    if phones.is_empty() {
        return Ok(Vec::new());
    }
    let interval = config("search_interval").unwrap_or_else(|| DEFAULT_INTERVAL.to_string());
    let predicates: Vec<Value> = phones
        .iter()
        .map(|p| json!({"type": "dimension", "dimension": "ani", "operator": "matches", "value": format!("tel:{p}")}))
        .collect();
    let mut out = Vec::new();
    for page_number in 1.. {
        let body = json!({
            "interval": interval,
            "order": "asc",
            "orderBy": "conversationStart",
            "segmentFilters": [{"type": "or", "predicates": predicates}],
            "paging": {"pageSize": PAGE_SIZE, "pageNumber": page_number},
        });
        let page: AnalyticsPage = api
            .post("/api/v2/analytics/conversations/details/query")
            .json_body(&body)?
            .json()?;
        let got = page.conversations.len();
        out.extend(page.conversations);
        if got < PAGE_SIZE || page.total_hits.is_some_and(|t| out.len() >= t) {
            return Ok(out);
        }
    }
    Ok(out)
}

fn get_contact(api: &Client, id: &str) -> Result<Option<ExternalContact>, ConnectorError> {
    api.get(&format!("/api/v2/externalcontacts/contacts/{id}"))
        .json_opt()
}

fn get_conversation(api: &Client, id: &str) -> Result<Option<Conversation>, ConnectorError> {
    api.get(&format!("/api/v2/conversations/{id}")).json_opt()
}

/// Start a GDPR request; returns its id.
/// A GDPR request as listed (`GET /api/v2/gdpr/requests`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListedRequest {
    id: String,
    status: String,
    request_type: String,
    #[serde(default)]
    subject: Value,
}

/// A subject with its lists sorted, so that two spellings of the same
/// subject compare equal.
fn canonical(subject: &Value) -> Value {
    match subject {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::Array(items) => {
                            let mut items = items.clone();
                            items.sort_by_key(|i| i.to_string());
                            Value::Array(items)
                        }
                        other => other.clone(),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The id of a GDPR request of the same type for the same subject that has
/// not finished, if there is one. An erasure the host runs again (after a
/// crash between Genesys accepting the request and the host recording its
/// ticket) joins that request instead of starting a second one.
fn unfinished_request(api: &Client, body: &Value) -> Result<Option<String>, ConnectorError> {
    let listed: Vec<ListedRequest> = api
        .get("/api/v2/gdpr/requests")
        .query("pageSize", "100")
        .all_pages()?;
    let subject = canonical(&body["subject"]);
    Ok(listed
        .into_iter()
        .find(|r| {
            Some(r.request_type.as_str()) == body["requestType"].as_str()
                && !matches!(r.status.as_str(), "COMPLETED" | "ERROR" | "FAILED")
                && canonical(&r.subject) == subject
        })
        .map(|r| r.id))
}

/// What starting a deletion came to.
enum Started {
    /// A new request, or an unfinished one for the same subject, joined.
    Request(String),
    /// The records were gone by the time no unfinished request was found:
    /// a request that finished meanwhile removed them.
    Gone,
}

/// Start a GDPR deletion, or join an unfinished one for the same subject.
/// `still_there` is asked after the listing found none: a request that
/// finished between the caller's read and the listing has removed the
/// records, and a second one must not be started.
fn start_delete(
    api: &Client,
    body: Value,
    still_there: impl Fn() -> Result<bool, ConnectorError>,
) -> Result<Started, ConnectorError> {
    if let Some(id) = unfinished_request(api, &body)? {
        log::info("joined an unfinished GDPR request for the same subject");
        return Ok(Started::Request(id));
    }
    if !still_there()? {
        log::info("the records went while looking for a GDPR request to join: none started");
        return Ok(Started::Gone);
    }
    start_request(api, body).map(Started::Request)
}

fn start_request(api: &Client, body: Value) -> Result<String, ConnectorError> {
    let r: GdprRequest = api
        .post("/api/v2/gdpr/requests")
        .query("deleteConfirmed", "true")
        .json_body(&body)?
        .json()?;
    log::info(&format!("GDPR request started ({})", r.status));
    Ok(r.id)
}

/// `gdpr:<request id>:<kind>=<id>,<kind>=<id>`: everything `poll` needs.
fn ticket(request: &str, refs: &[RecordRef]) -> String {
    let list: Vec<String> = refs
        .iter()
        .map(|r| format!("{}={}", r.kind, r.id))
        .collect();
    format!("gdpr:{request}:{}", list.join(","))
}

fn parse_ticket(ticket: &str) -> Option<(&str, Vec<RecordRef>)> {
    let rest = ticket.strip_prefix("gdpr:")?;
    let (request, list) = rest.split_once(':')?;
    let refs = list
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.split_once('=').map(|(k, i)| RecordRef::new(k, i)))
        .collect::<Option<Vec<_>>>()?;
    Some((request, refs))
}

fn recording_file(id: &str) -> String {
    format!("recording-{id}.wav")
}

struct GenesysCloud;

impl Connector for GenesysCloud {
    fn manifest() -> Manifest {
        let category =
            |name: &str, description: &str, retention: &str, portable: bool| DataCategory {
                name: name.into(),
                description: description.into(),
                purposes: vec!["customer service".into(), "quality assurance".into()],
                retention: retention.into(),
                recipients: vec!["Genesys Cloud Services, Inc. (processor)".into()],
                portable,
            };
        Manifest {
            id: "genesys-cloud".into(),
            name: "Genesys Cloud".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            wit_version: WIT_VERSION.into(),
            system_kind: SystemKind::Acd,
            operations: vec![
                Operation::Locate,
                Operation::Export,
                Operation::ReadAttachment,
                Operation::Rectify,
                Operation::Erase,
                Operation::Poll,
            ],
            categories: vec![
                category(
                    "contact-details",
                    "External contact: name, email addresses, phone numbers",
                    "until the customer relationship ends",
                    true,
                ),
                category(
                    "interaction-history",
                    "Calls: when, how long, the number called from, the name given",
                    "13 months (analytics retention)",
                    false,
                ),
                category(
                    "call-recordings",
                    "Audio recordings of calls",
                    "90 days unless kept for a dispute",
                    false,
                ),
            ],
            // Genesys is regional (api.mypurecloud.com, api.mypurecloud.ie,
            // api.euw2.pure.cloud, ...) and recordings are served from
            // another host: the integrator's grant names them.
            outbound_hosts: vec!["*".into()],
            config_keys: vec![
                ConfigKey {
                    name: "base_url".into(),
                    description: "The region's API base URL, e.g. https://api.mypurecloud.ie"
                        .into(),
                    required: true,
                },
                ConfigKey {
                    name: "login_url".into(),
                    description: "The region's login host for the client-credentials grant, e.g. https://login.mypurecloud.ie (when no `token` is granted)".into(),
                    required: false,
                },
                ConfigKey {
                    name: "search_interval".into(),
                    description: "ISO-8601 interval searched for conversations (default: all)"
                        .into(),
                    required: false,
                },
            ],
            secrets: vec!["token".into(), "client_id".into(), "client_secret".into()],
            retention: vec![],
        }
    }

    fn locate(subject: Subject) -> Result<Vec<Located>, ConnectorError> {
        let api = api()?;
        let mut contacts = BTreeSet::new();
        let mut phones: BTreeSet<String> = subject.phones.iter().cloned().collect();
        let mut searches: Vec<(&str, &str)> = Vec::new();
        searches.extend(subject.emails.iter().map(|e| ("EMAIL", e.as_str())));
        searches.extend(subject.phones.iter().map(|p| ("PHONE", p.as_str())));
        searches.extend(
            subject
                .external_ids_in("genesys.externalContactId")
                .map(|id| ("EXTERNAL_ID", id)),
        );
        for (kind, value) in searches {
            for s in search_subjects(&api, kind, value)? {
                contacts.extend(s.external_contact_id);
                // Aliases: numbers Genesys knows for this subject are searched
                // too, so calls are found from an email alone.
                phones.extend(
                    s.phone_numbers
                        .iter()
                        .filter_map(|p| phone_of_address(p))
                        .map(String::from),
                );
            }
        }
        let mut found: Vec<Located> = contacts
            .into_iter()
            .map(|id| Located::new(RecordRef::new(CONTACT, id), "external contact"))
            .collect();
        for c in search_conversations(&api, &phones)? {
            let minutes = match (
                c.conversation_start.as_deref().and_then(parse_iso8601),
                c.conversation_end.as_deref().and_then(parse_iso8601),
            ) {
                (Some(a), Some(b)) => format!(", {} min", ((b - a) / 60_000).max(1)),
                _ => String::new(),
            };
            let sessions = || {
                c.participants
                    .iter()
                    .filter(|p| p.purpose.as_deref() == Some("customer"))
                    .flat_map(|p| p.sessions.iter())
            };
            let media = sessions()
                .find_map(|s| s.media_type.clone())
                .unwrap_or_else(|| "voice".into());
            let recorded = if sessions().any(|s| s.recording == Some(true)) {
                ", recorded"
            } else {
                ""
            };
            let mut l = Located::new(
                RecordRef::new(CONVERSATION, c.conversation_id),
                format!("{media} conversation{minutes}{recorded}"),
            );
            if let Some(at) = c.conversation_start.as_deref().and_then(parse_iso8601) {
                l = l.created_at(at);
            }
            found.push(l);
        }
        Ok(found)
    }

    fn export(refs: Vec<RecordRef>) -> Result<Vec<Exported>, ConnectorError> {
        let api = api()?;
        let mut out = Vec::new();
        for r in refs {
            match r.kind.as_str() {
                CONTACT => {
                    let Some(c) = get_contact(&api, &r.id)? else {
                        continue;
                    };
                    let mut e = Exported::new(r)
                        .field("firstName", "contact-details", c.first_name.as_str())
                        .field("lastName", "contact-details", c.last_name.as_str());
                    for (name, v) in c.emails().chain(c.phones()) {
                        e = e.field(name, "contact-details", v);
                    }
                    if let Some(d) = &c.create_date {
                        e = e.date("createDate", "contact-details", d.as_str());
                    }
                    out.push(e);
                }
                CONVERSATION => {
                    let Some(c) = get_conversation(&api, &r.id)? else {
                        continue;
                    };
                    let recordings: Vec<Recording> = api
                        .get(&format!("/api/v2/conversations/{}/recordings", r.id))
                        .json()?;
                    let mut e = Exported::new(r)
                        .date(
                            "startTime",
                            "interaction-history",
                            c.start_time.as_deref().unwrap_or(""),
                        )
                        .date(
                            "endTime",
                            "interaction-history",
                            c.end_time.as_deref().unwrap_or(""),
                        );
                    for p in c.customers() {
                        e = e
                            .field(
                                "customer.name",
                                "interaction-history",
                                p.name.as_deref().unwrap_or(""),
                            )
                            .field(
                                "customer.ani",
                                "interaction-history",
                                p.ani.as_deref().unwrap_or(""),
                            );
                    }
                    for rec in recordings {
                        e = e.attachment(recording_file(&rec.id), "audio/wav", None);
                    }
                    out.push(e);
                }
                other => {
                    return Err(ConnectorError::unknown_kind(other));
                }
            }
        }
        Ok(out)
    }

    fn read_attachment(
        reference: RecordRef,
        name: String,
        offset: u64,
        max_len: u32,
    ) -> Result<Vec<u8>, ConnectorError> {
        let Some(recording) = name
            .strip_prefix("recording-")
            .and_then(|n| n.strip_suffix(".wav"))
            .filter(|_| reference.kind == CONVERSATION)
        else {
            return Err(ConnectorError::Invalid(format!(
                "no attachment `{name}` on this record"
            )));
        };
        let api = api()?;
        let rec: Recording = api
            .get(&format!(
                "/api/v2/conversations/{}/recordings/{recording}",
                reference.id
            ))
            .query("formatId", "WAV")
            .json()?;
        let uri = rec
            .media_uris
            .as_ref()
            .and_then(|m| m.values().find_map(|v| v["mediaUri"].as_str()))
            .ok_or_else(|| ConnectorError::Unavailable("the recording has no media yet".into()))?;
        let (origin, path) = split_url(uri, api.authority()).ok_or_else(|| {
            ConnectorError::Internal("the recording's media URL is not http(s)".into())
        })?;
        // Pre-signed media URLs take no bearer token.
        Client::new(&origin)?.get(&path).read_range(offset, max_len)
    }

    fn rectify(reference: RecordRef, changes: Vec<Change>) -> Result<Outcome, ConnectorError> {
        if reference.kind != CONTACT {
            return Err(ConnectorError::Invalid(
                "only external contacts can be rectified; conversations follow their contact"
                    .into(),
            ));
        }
        let api = api()?;
        let Some(c) = get_contact(&api, &reference.id)? else {
            return Ok(Outcome::not_found(reference));
        };
        let mut terms = Vec::new();
        let full_name = format!("{} {}", c.first_name, c.last_name);
        let (mut first, mut last) = (c.first_name.clone(), c.last_name.clone());
        for ch in changes {
            let Some(new) = ch.new_value else {
                return Err(ConnectorError::Invalid(format!(
                    "`{}` cannot be cleared through a GDPR update; erase instead",
                    ch.field
                )));
            };
            let current = c.emails().chain(c.phones()).find(|(n, _)| *n == ch.field);
            match (ch.field.as_str(), current) {
                ("firstName", _) => first = new,
                ("lastName", _) => last = new,
                (f, Some((_, old))) if f.ends_with("Email") => {
                    terms.push(json!({"type": "EMAIL", "existingValue": old, "updatedValue": new}))
                }
                (f, Some((_, old))) if f.ends_with("Phone") => {
                    terms.push(json!({"type": "PHONE", "existingValue": old, "updatedValue": new}))
                }
                (f, _) => {
                    return Err(ConnectorError::Invalid(format!(
                        "field `{f}` cannot be rectified here"
                    )));
                }
            }
        }
        let new_name = format!("{first} {last}");
        if new_name != full_name {
            terms.push(
                json!({"type": "NAME", "existingValue": full_name, "updatedValue": new_name}),
            );
        }
        if terms.is_empty() {
            return Ok(Outcome::done(reference));
        }
        let request = start_request(
            &api,
            json!({
                "requestType": "GDPR_UPDATE",
                "subject": {"externalContactId": reference.id},
                "replacementTerms": terms,
            }),
        )?;
        let t = ticket(&request, std::slice::from_ref(&reference));
        Ok(Outcome::pending(reference, t))
    }

    fn erase(refs: Vec<RecordRef>, _mode: EraseMode) -> Result<Vec<Outcome>, ConnectorError> {
        // Genesys decides what a GDPR_DELETE removes or anonymises; both
        // modes map to it.
        let api = api()?;
        let mut outcomes = Vec::new();
        let mut phones = BTreeSet::new();
        let mut by_phone = Vec::new();
        for r in refs {
            match r.kind.as_str() {
                CONTACT => {
                    let Some(c) = get_contact(&api, &r.id)? else {
                        outcomes.push(Outcome::not_found(r));
                        continue;
                    };
                    let subject = json!({
                        "externalContactId": r.id,
                        "emailAddresses": c.emails().map(|(_, e)| e).collect::<Vec<_>>(),
                        "phoneNumbers": c.phones().filter_map(|(_, p)| phone_of_address(p)).collect::<Vec<_>>(),
                    });
                    match start_delete(
                        &api,
                        json!({"requestType": "GDPR_DELETE", "subject": subject}),
                        || Ok(get_contact(&api, &r.id)?.is_some()),
                    )? {
                        Started::Request(request) => {
                            let t = ticket(&request, std::slice::from_ref(&r));
                            outcomes.push(Outcome::pending(r, t));
                        }
                        Started::Gone => outcomes.push(Outcome::not_found(r)),
                    }
                }
                CONVERSATION => {
                    let Some(c) = get_conversation(&api, &r.id)? else {
                        outcomes.push(Outcome::not_found(r));
                        continue;
                    };
                    let numbers: Vec<String> = c
                        .customers()
                        .filter_map(|p| p.ani.as_deref().and_then(phone_of_address))
                        .map(String::from)
                        .collect();
                    if numbers.is_empty() {
                        // Nothing identifies the caller any more.
                        outcomes.push(Outcome::not_found(r));
                    } else {
                        phones.extend(numbers);
                        by_phone.push(r);
                    }
                }
                other => {
                    return Err(ConnectorError::unknown_kind(other));
                }
            }
        }
        if !by_phone.is_empty() {
            let still = || -> Result<bool, ConnectorError> {
                for r in &by_phone {
                    if get_conversation(&api, &r.id)?.is_some_and(|c| {
                        c.customers()
                            .any(|p| p.ani.as_deref().and_then(phone_of_address).is_some())
                    }) {
                        return Ok(true);
                    }
                }
                Ok(false)
            };
            match start_delete(
                &api,
                json!({"requestType": "GDPR_DELETE", "subject": {"phoneNumbers": phones}}),
                still,
            )? {
                Started::Request(request) => {
                    let t = ticket(&request, &by_phone);
                    outcomes.extend(by_phone.into_iter().map(|r| Outcome::pending(r, t.clone())));
                }
                Started::Gone => outcomes.extend(by_phone.into_iter().map(Outcome::not_found)),
            }
        }
        Ok(outcomes)
    }

    fn poll(ticket: String) -> Result<Vec<Outcome>, ConnectorError> {
        let Some((request, refs)) = parse_ticket(&ticket) else {
            return Err(ConnectorError::Invalid(
                "not a ticket of this connector".into(),
            ));
        };
        let api = api()?;
        let r: GdprRequest = api
            .get(&format!("/api/v2/gdpr/requests/{request}"))
            .json()?;
        match r.status.as_str() {
            "COMPLETED" => Ok(refs.into_iter().map(Outcome::done).collect()),
            "ERROR" => Err(ConnectorError::Unavailable(
                "Genesys reported ERROR for the GDPR request; start it again or ask Genesys support".into(),
            )),
            _ => Ok(refs
                .into_iter()
                .map(|r| Outcome::pending(r, ticket.clone()))
                .collect()),
        }
    }
}

oubli_plugin::export!(GenesysCloud);
