//! Stand-in for a CRM with HubSpot's CRM v3 API shapes:
//!
//! | call | meaning |
//! |---|---|
//! | `POST /crm/v3/objects/contacts/search` | `{filterGroups: [{filters: [{propertyName, operator: EQ, value}]}], properties, limit, after}`; groups are ORed, filters ANDed; paged with `paging.next.after` |
//! | `GET /crm/v3/objects/contacts/{id}?properties=&associations=tickets&archived=` | one contact |
//! | `PATCH /crm/v3/objects/contacts/{id}` | `{properties}`: rectification |
//! | `DELETE /crm/v3/objects/contacts/{id}` | archive (soft delete, restorable for 90 days: still readable with `archived=true`) |
//! | `POST /crm/v3/objects/contacts/gdpr-delete` | `{objectId, idProperty?}`: permanent; an unknown email is put on a blocklist |
//! | `GET /crm/v3/objects/tickets/{id}` | a ticket; tickets survive their contact's deletion |
//!
//! Phone properties are compared on their digits (formatting ignored);
//! emails case-insensitively. The stand-in keeps one contact per person, a
//! duplicate for some (an old record holding only the phone), and tickets
//! whose free text names the person.

use crate::common::{Auth, JsonBody, Vendor, phone_digits};
use crate::people::Person;
use crate::util::ApiJson;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The private-app token.
pub const TOKEN: &str = "sandbox-crm-token";
/// Contact properties the CRM knows.
pub const PROPERTIES: &[&str] = &[
    "email",
    "firstname",
    "lastname",
    "phone",
    "mobilephone",
    "company",
    "notes",
    "gdpr_restricted",
];
const PHONE_PROPERTIES: &[&str] = &["phone", "mobilephone"];

/// A contact.
#[derive(Debug, Clone)]
pub struct Contact {
    /// Property values.
    pub properties: BTreeMap<String, String>,
    /// Created, ISO-8601.
    pub created: String,
    /// Archived (soft-deleted).
    pub archived: bool,
    /// Associated tickets.
    pub tickets: Vec<u64>,
}

/// A ticket.
#[derive(Debug, Clone)]
pub struct Ticket {
    /// Subject line.
    pub subject: String,
    /// Free text.
    pub content: String,
}

/// The CRM's data, for tests to inspect.
#[derive(Debug)]
pub struct CrmData {
    /// Contacts by id.
    pub contacts: BTreeMap<u64, Contact>,
    /// Tickets by id.
    pub tickets: BTreeMap<u64, Ticket>,
    /// Emails blocklisted by gdpr-delete.
    pub blocklist: Vec<String>,
}

/// The stand-in's shared state.
#[derive(Debug)]
pub struct Crm {
    /// The data.
    pub data: Mutex<CrmData>,
}

impl Crm {
    /// Seed from `people`.
    pub fn seed(people: &[Person]) -> Arc<Self> {
        let mut contacts = BTreeMap::new();
        let mut tickets = BTreeMap::new();
        let mut next = 1001u64;
        let mut next_ticket = 5001u64;
        for p in people.iter().filter(|p| p.systems().crm) {
            let created = crate::util::iso8601(1_735_689_600 + p.index as i64 * 86_400);
            let mut props = BTreeMap::new();
            props.insert("email".to_string(), p.email.clone());
            props.insert("firstname".to_string(), p.first_name.clone());
            props.insert("lastname".to_string(), p.last_name.clone());
            if p.index % 2 == 0 {
                props.insert("phone".to_string(), p.phone_international());
            } else {
                props.insert("mobilephone".to_string(), p.phone_national_compact());
            }
            props.insert("gdpr_restricted".to_string(), "false".to_string());
            let mut contact_tickets = Vec::new();
            if p.index % 3 != 2 {
                tickets.insert(
                    next_ticket,
                    Ticket {
                        subject: "Billing dispute".into(),
                        content: format!(
                            "{} called from {} about an invoice; promised a call back.",
                            p.full_name(),
                            p.phone_national()
                        ),
                    },
                );
                contact_tickets.push(next_ticket);
                next_ticket += 1;
            }
            contacts.insert(
                next,
                Contact {
                    properties: props,
                    created: created.clone(),
                    archived: false,
                    tickets: contact_tickets,
                },
            );
            next += 1;
            if p.index < 10 && p.index % 2 == 0 {
                // An old duplicate holding only the mobile, national format.
                let mut props = BTreeMap::new();
                props.insert("firstname".to_string(), p.first_name.clone());
                props.insert("lastname".to_string(), p.last_name.clone());
                props.insert("mobilephone".to_string(), p.phone_national());
                props.insert(
                    "notes".to_string(),
                    "Imported from the 2024 trade fair".into(),
                );
                props.insert("gdpr_restricted".to_string(), "false".to_string());
                contacts.insert(
                    next,
                    Contact {
                        properties: props,
                        created,
                        archived: false,
                        tickets: Vec::new(),
                    },
                );
                next += 1;
            }
        }
        Arc::new(Crm {
            data: Mutex::new(CrmData {
                contacts,
                tickets,
                blocklist: Vec::new(),
            }),
        })
    }

    /// The routes.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/crm/v3/objects/contacts/search", post(search))
            .route("/crm/v3/objects/contacts/gdpr-delete", post(gdpr_delete))
            .route(
                "/crm/v3/objects/contacts/{id}",
                get(get_contact).patch(patch_contact).delete(archive),
            )
            .route("/crm/v3/objects/tickets/{id}", get(get_ticket))
            .with_state(self.clone())
    }
}

fn error(status: StatusCode, category: &str, message: &str) -> Response {
    (
        status,
        ApiJson(json!({
            "status": "error",
            "message": message,
            "correlationId": "0c6f1b7e-5e2a-4b1f-9d7c-0a1b2c3d4e5f",
            "category": category,
        })),
    )
        .into_response()
}

/// HubSpot's conventions: one private-app token, errors with a category.
pub struct Hubspot;

impl Vendor for Hubspot {
    const TOKENS: &'static [&'static str] = &[TOKEN];
    fn unauthorised() -> Response {
        error(
            StatusCode::UNAUTHORIZED,
            "INVALID_AUTHENTICATION",
            "Authentication credentials not found. This API supports OAuth 2.0 authentication.",
        )
    }
    fn malformed_body() -> Response {
        error(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            "Invalid input JSON",
        )
    }
}

fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "OBJECT_NOT_FOUND",
        "resource not found",
    )
}

fn contact_json(id: u64, c: &Contact, props: &[String]) -> Value {
    let mut p = Map::new();
    for k in props {
        p.insert(
            k.clone(),
            c.properties.get(k).map_or(Value::Null, |v| json!(v)),
        );
    }
    p.insert("hs_object_id".into(), json!(id.to_string()));
    p.insert("createdate".into(), json!(c.created));
    json!({
        "id": id.to_string(),
        "properties": p,
        "createdAt": c.created,
        "updatedAt": c.created,
        "archived": c.archived,
    })
}

fn default_props() -> Vec<String> {
    ["email", "firstname", "lastname"]
        .map(String::from)
        .to_vec()
}

async fn search(
    State(crm): State<Arc<Crm>>,
    _auth: Auth<Hubspot>,
    JsonBody(body, ..): JsonBody<Hubspot>,
) -> Response {
    let mut groups = Vec::new();
    for g in body["filterGroups"].as_array().into_iter().flatten() {
        let mut filters = Vec::new();
        for f in g["filters"].as_array().into_iter().flatten() {
            let (Some(prop), Some(op)) = (f["propertyName"].as_str(), f["operator"].as_str())
            else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "VALIDATION_ERROR",
                    "A filter needs propertyName and operator",
                );
            };
            if op != "EQ" {
                return error(
                    StatusCode::BAD_REQUEST,
                    "VALIDATION_ERROR",
                    &format!("Unsupported operator {op}"),
                );
            }
            filters.push((
                prop.to_string(),
                f["value"].as_str().unwrap_or_default().to_string(),
            ));
        }
        groups.push(filters);
    }
    if groups.len() > 5 {
        return error(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            "At most 5 filterGroups are allowed",
        );
    }
    let props: Vec<String> = body["properties"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_else(default_props);
    let limit = body["limit"].as_u64().unwrap_or(10).clamp(1, 100) as usize;
    let after: usize = body["after"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let data = crm.data.lock().expect("lock");
    let eq = |c: &Contact, prop: &str, value: &str| {
        c.properties.get(prop).is_some_and(|v| {
            if PHONE_PROPERTIES.contains(&prop) {
                !v.is_empty() && phone_digits(v) == phone_digits(value)
            } else {
                v.eq_ignore_ascii_case(value)
            }
        })
    };
    let hits: Vec<Value> = data
        .contacts
        .iter()
        .filter(|(_, c)| !c.archived)
        .filter(|(_, c)| groups.iter().any(|g| g.iter().all(|(p, v)| eq(c, p, v))))
        .map(|(id, c)| contact_json(*id, c, &props))
        .collect();
    let total = hits.len();
    let page: Vec<Value> = hits.into_iter().skip(after).take(limit).collect();
    let mut out = json!({"total": total, "results": page});
    if after + limit < total {
        out["paging"] = json!({"next": {"after": (after + limit).to_string()}});
    }
    ApiJson(out).into_response()
}

#[derive(Deserialize)]
struct GetQuery {
    properties: Option<String>,
    associations: Option<String>,
    archived: Option<bool>,
}

async fn get_contact(
    State(crm): State<Arc<Crm>>,
    _auth: Auth<Hubspot>,
    Path(id): Path<String>,
    Query(q): Query<GetQuery>,
) -> Response {
    let data = crm.data.lock().expect("lock");
    let Some(c) = id
        .parse::<u64>()
        .ok()
        .and_then(|n| data.contacts.get(&n).map(|c| (n, c)))
    else {
        return not_found();
    };
    if c.1.archived != q.archived.unwrap_or(false) {
        return not_found();
    }
    let props = q
        .properties
        .map(|p| p.split(',').map(String::from).collect())
        .unwrap_or_else(default_props);
    let mut v = contact_json(c.0, c.1, &props);
    if q.associations
        .as_deref()
        .is_some_and(|a| a.split(',').any(|x| x == "tickets"))
    {
        let results: Vec<Value> =
            c.1.tickets
                .iter()
                .filter(|t| data.tickets.contains_key(t))
                .map(|t| json!({"id": t.to_string(), "type": "contact_to_ticket"}))
                .collect();
        v["associations"] = json!({"tickets": {"results": results}});
    }
    ApiJson(v).into_response()
}

async fn patch_contact(
    State(crm): State<Arc<Crm>>,
    _auth: Auth<Hubspot>,
    Path(id): Path<String>,
    JsonBody(body, ..): JsonBody<Hubspot>,
) -> Response {
    let Some(new) = body["properties"].as_object() else {
        return error(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            "properties is required",
        );
    };
    if let Some(bad) = new.keys().find(|k| !PROPERTIES.contains(&k.as_str())) {
        return error(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            &format!("Property values were not valid: Property \"{bad}\" does not exist"),
        );
    }
    let mut data = crm.data.lock().expect("lock");
    let Some((n, c)) = id
        .parse::<u64>()
        .ok()
        .and_then(|n| data.contacts.get_mut(&n).map(|c| (n, c)))
        .filter(|(_, c)| !c.archived)
    else {
        return not_found();
    };
    for (k, v) in new {
        match v.as_str() {
            Some(s) if !s.is_empty() => {
                c.properties.insert(k.clone(), s.to_string());
            }
            _ => {
                c.properties.remove(k);
            }
        }
    }
    let props: Vec<String> = new.keys().cloned().collect();
    ApiJson(contact_json(n, c, &props)).into_response()
}

async fn archive(
    State(crm): State<Arc<Crm>>,
    _auth: Auth<Hubspot>,
    Path(id): Path<String>,
) -> Response {
    let mut data = crm.data.lock().expect("lock");
    if let Some(c) = id
        .parse::<u64>()
        .ok()
        .and_then(|n| data.contacts.get_mut(&n))
    {
        c.archived = true;
    }
    // HubSpot answers 204 whether or not the contact existed.
    StatusCode::NO_CONTENT.into_response()
}

async fn gdpr_delete(
    State(crm): State<Arc<Crm>>,
    _auth: Auth<Hubspot>,
    JsonBody(body, ..): JsonBody<Hubspot>,
) -> Response {
    let Some(object_id) = body["objectId"].as_str() else {
        return error(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            "objectId is required",
        );
    };
    let mut data = crm.data.lock().expect("lock");
    let found = match body["idProperty"].as_str() {
        Some("email") => data
            .contacts
            .iter()
            .find(|(_, c)| {
                c.properties
                    .get("email")
                    .is_some_and(|e| e.eq_ignore_ascii_case(object_id))
            })
            .map(|(id, _)| *id),
        Some(other) if other != "hs_object_id" => {
            return error(
                StatusCode::BAD_REQUEST,
                "VALIDATION_ERROR",
                "idProperty must be email or hs_object_id",
            );
        }
        _ => object_id
            .parse::<u64>()
            .ok()
            .filter(|n| data.contacts.contains_key(n)),
    };
    match found {
        Some(id) => {
            data.contacts.remove(&id);
        }
        None if body["idProperty"] == "email" => data.blocklist.push(object_id.to_lowercase()),
        None => return not_found(),
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn get_ticket(
    State(crm): State<Arc<Crm>>,
    _auth: Auth<Hubspot>,
    Path(id): Path<String>,
) -> Response {
    let data = crm.data.lock().expect("lock");
    let Some(t) = id.parse::<u64>().ok().and_then(|n| data.tickets.get(&n)) else {
        return not_found();
    };
    ApiJson(json!({
        "id": id,
        "properties": {"subject": t.subject, "content": t.content, "hs_pipeline_stage": "4", "hs_object_id": id},
        "archived": false,
    }))
    .into_response()
}
