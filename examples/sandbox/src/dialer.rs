//! Stand-in for an outbound dialer, shaped like the Genesys Cloud outbound
//! API (contact lists, do-not-call lists):
//!
//! | call | meaning |
//! |---|---|
//! | `GET /api/v2/outbound/contactlists?pageSize=&pageNumber=` | the lists, with `columnNames` and `phoneColumns` |
//! | `POST /api/v2/outbound/contactlists/{id}/contacts/search` | `{pageSize, pageNumber, filter: {type: AND\|OR, predicates: [{column, operator: EQUALS, value}]}}` |
//! | `GET/PUT /api/v2/outbound/contactlists/{id}/contacts/{contactId}` | one row; PUT replaces its `data` |
//! | `DELETE /api/v2/outbound/contactlists/{id}/contacts?contactIds=a,b` | delete rows |
//! | `POST /api/v2/outbound/contactlists/{id}/contacts` | import rows; rows whose number is on a suppression list are refused |
//! | `GET /api/v2/outbound/dnclists` | the do-not-call lists |
//! | `PATCH /api/v2/outbound/dnclists/{id}/phonenumbers` | `{action: Add\|Remove, phoneNumbers, expirationDateTime?}` |
//! | `POST /api/v2/outbound/dnclists/{id}/phonenumbers/check` | `{phoneNumbers}` → the ones listed (modelled on Five9's `checkDncForNumbers`) |
//! | `POST /api/v2/outbound/sandbox/dial?contactListId=` | the dial simulator: dials every callable row not on a do-not-call list |
//!
//! Phone columns are compared on their digits (formatting ignored), so
//! `020 7946 0123` and `02079460123` match each other but not `+442079460123`,
//! as in the real product. A list flagged `hashed` (the erasure suppression
//! list) never stores a number: only HMAC-SHA-256 of its E.164 form under the
//! dialer's own key.

use crate::common::{Auth, JsonBody, Vendor, phone_digits};
use crate::people::{Person, Rng};
use crate::util::{ApiJson, iso8601, page_of};
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use hmac::{KeyInit, Mac};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The dialer's API token.
pub const TOKEN: &str = "sandbox-dialer-token";
/// The cleartext do-not-call list.
pub const DNC_LIST: &str = "dnc-internal";
/// The hashed erasure-suppression list.
pub const SUPPRESSION_LIST: &str = "dnc-erasure-suppression";

/// A contact list.
#[derive(Debug, Clone)]
pub struct ContactList {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Every column.
    pub columns: Vec<String>,
    /// The columns holding phone numbers, with their type.
    pub phone_columns: Vec<(String, String)>,
}

/// A do-not-call list.
#[derive(Debug, Clone)]
pub struct DncList {
    /// Its name.
    pub name: String,
    /// Whether it keeps keyed hashes instead of numbers.
    pub hashed: bool,
    /// Number as given (or hash) → expiry (seconds since the epoch).
    pub entries: BTreeMap<String, Option<i64>>,
}

impl DncList {
    /// Whether an unexpired entry stands for the number `e164` (whose keyed
    /// hash is `token`): hashed lists compare hashes, cleartext lists E.164
    /// forms.
    fn holds(&self, e164: &str, token: Option<&str>, now: i64) -> bool {
        self.entries.iter().any(|(k, exp)| {
            exp.is_none_or(|e| e > now)
                && if self.hashed {
                    Some(k.as_str()) == token
                } else {
                    Dialer::e164(k).as_deref() == Some(e164)
                }
        })
    }
}

/// The dialer's data, for tests to inspect.
#[derive(Debug)]
pub struct DialerData {
    /// The lists.
    pub lists: Vec<ContactList>,
    /// (list id, contact id) → column → value.
    pub contacts: BTreeMap<(String, String), BTreeMap<String, String>>,
    /// Do-not-call lists by id.
    pub dnc: BTreeMap<String, DncList>,
    /// Every number the simulator dialled, as stored.
    pub dialled: Vec<String>,
    next_id: u64,
}

/// The stand-in's shared state.
#[derive(Debug)]
pub struct Dialer {
    /// The data.
    pub data: Mutex<DialerData>,
    key: [u8; 32],
}

impl Dialer {
    /// Seed from `people`.
    pub fn seed(people: &[Person]) -> Arc<Self> {
        let mut rng = Rng::new(0xd1a1);
        let lists = vec![
            ContactList {
                id: "cl-spring-renewal".into(),
                name: "Spring renewal campaign".into(),
                columns: ["FirstName", "LastName", "HomePhone", "MobilePhone", "Email"]
                    .map(String::from)
                    .to_vec(),
                phone_columns: vec![
                    ("HomePhone".into(), "home".into()),
                    ("MobilePhone".into(), "cell".into()),
                ],
            },
            ContactList {
                id: "cl-win-back".into(),
                name: "Win-back 2026".into(),
                columns: ["Name", "Phone1", "Phone2", "CustomerRef"]
                    .map(String::from)
                    .to_vec(),
                phone_columns: vec![
                    ("Phone1".into(), "cell".into()),
                    ("Phone2".into(), "other".into()),
                ],
            },
        ];
        let mut contacts = BTreeMap::new();
        let mut n = 0u64;
        for p in people.iter().filter(|p| p.systems().dialer) {
            if p.index < 10 || p.index % 2 == 0 {
                n += 1;
                // Both phone columns hold the same mobile, in two formats.
                let row = [
                    ("FirstName", p.first_name.clone()),
                    ("LastName", p.last_name.clone()),
                    ("HomePhone", p.phone.clone()),
                    ("MobilePhone", p.phone_national()),
                    ("Email", p.email.clone()),
                ];
                contacts.insert(
                    ("cl-spring-renewal".to_string(), format!("c{n:05}")),
                    row.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
                );
            }
            if p.index < 10 || p.index % 2 == 1 {
                n += 1;
                let row = [
                    ("Name", p.full_name()),
                    ("Phone1", p.phone_national_compact()),
                    ("Phone2", p.phone_international()),
                    ("CustomerRef", format!("CR-{}", 10_000 + rng.below(90_000))),
                ];
                contacts.insert(
                    ("cl-win-back".to_string(), format!("c{n:05}")),
                    row.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
                );
            }
        }
        let mut dnc = BTreeMap::new();
        let mut internal = BTreeMap::new();
        for p in people.iter().filter(|p| p.index % 17 == 3) {
            internal.insert(p.phone_national_compact(), None);
        }
        // The demo person once asked not to be called, in E.164.
        if let Some(p) = people.first() {
            internal.insert(p.phone.clone(), None);
        }
        dnc.insert(
            DNC_LIST.to_string(),
            DncList {
                name: "Internal do-not-call".into(),
                hashed: false,
                entries: internal,
            },
        );
        dnc.insert(
            SUPPRESSION_LIST.to_string(),
            DncList {
                name: "Erasure suppression (keyed hashes)".into(),
                hashed: true,
                entries: BTreeMap::new(),
            },
        );
        let mut key = [0u8; 32];
        for chunk in key.chunks_mut(8) {
            chunk.copy_from_slice(&rng.next_u64().to_le_bytes());
        }
        Arc::new(Dialer {
            data: Mutex::new(DialerData {
                lists,
                contacts,
                dnc,
                dialled: Vec::new(),
                next_id: n + 1,
            }),
            key,
        })
    }

    /// The routes.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/api/v2/outbound/contactlists", get(lists))
            .route(
                "/api/v2/outbound/contactlists/{id}/contacts/search",
                post(search),
            )
            .route(
                "/api/v2/outbound/contactlists/{id}/contacts",
                post(import).delete(delete_contacts),
            )
            .route(
                "/api/v2/outbound/contactlists/{id}/contacts/{cid}",
                get(get_contact).put(put_contact),
            )
            .route("/api/v2/outbound/dnclists", get(dnc_lists))
            .route(
                "/api/v2/outbound/dnclists/{id}/phonenumbers",
                patch(dnc_patch),
            )
            .route(
                "/api/v2/outbound/dnclists/{id}/phonenumbers/check",
                post(dnc_check),
            )
            .route("/api/v2/outbound/sandbox/dial", post(dial))
            .with_state(self.clone())
    }

    /// E.164 of a number as a UK dialer would read it (national `0…` is
    /// +44), or `None` when it is not a number.
    pub fn e164(raw: &str) -> Option<String> {
        let d = phone_digits(raw);
        if let Some(rest) = d.strip_prefix('+') {
            (rest.len() >= 6).then(|| d.clone())
        } else if let Some(rest) = d.strip_prefix("00") {
            (rest.len() >= 6).then(|| format!("+{rest}"))
        } else if let Some(rest) = d.strip_prefix('0') {
            (rest.len() >= 6).then(|| format!("+44{rest}"))
        } else {
            None
        }
    }

    /// The keyed hash the suppression list stores for a number.
    pub fn token(&self, raw: &str) -> Option<String> {
        let e164 = Self::e164(raw)?;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.key).expect("any key");
        mac.update(e164.as_bytes());
        Some(hex::encode(mac.finalize().into_bytes()))
    }

    /// Whether `raw` is on any do-not-call list now (`now` in seconds).
    pub fn blocked(&self, data: &DialerData, raw: &str, now: i64) -> bool {
        let Some(e164) = Self::e164(raw) else {
            return false;
        };
        let token = self.token(raw);
        data.dnc
            .values()
            .any(|l| l.holds(&e164, token.as_deref(), now))
    }

    /// Import rows into a list, as a CSV upload would; rows whose number is
    /// on the hashed suppression list are refused. Returns the rows created
    /// (id, data), or `None` for an unknown list.
    pub fn import_rows(
        &self,
        list_id: &str,
        rows: Vec<BTreeMap<String, String>>,
    ) -> Option<Vec<(String, BTreeMap<String, String>)>> {
        let now = now_secs();
        let mut data = self.data.lock().expect("lock");
        let list = data.lists.iter().find(|l| l.id == list_id).cloned()?;
        let mut created = Vec::new();
        for row in rows {
            let row: BTreeMap<String, String> = row
                .into_iter()
                .filter(|(k, _)| list.columns.contains(k))
                .collect();
            // Only the hashed suppression list blocks imports; the cleartext
            // do-not-call list blocks dialling, not storage.
            let suppressed = list.phone_columns.iter().any(|(c, _)| {
                row.get(c)
                    .and_then(|v| Some((Self::e164(v)?, self.token(v))))
                    .is_some_and(|(e164, token)| {
                        data.dnc
                            .values()
                            .any(|l| l.hashed && l.holds(&e164, token.as_deref(), now))
                    })
            });
            if suppressed {
                continue;
            }
            let cid = format!("c{:05}", data.next_id);
            data.next_id += 1;
            data.contacts
                .insert((list_id.to_string(), cid.clone()), row.clone());
            created.push((cid, row));
        }
        Some(created)
    }

    /// Run the dial simulator over one list: every phone column of every
    /// row not on a do-not-call list is dialled. Returns what was dialled.
    pub fn dial_list(&self, list_id: &str) -> Vec<String> {
        let now = now_secs();
        let mut data = self.data.lock().expect("lock");
        let Some(list) = data.lists.iter().find(|l| l.id == list_id).cloned() else {
            return Vec::new();
        };
        let mut dialled = Vec::new();
        for ((l, _), row) in &data.contacts {
            if *l != list.id {
                continue;
            }
            for (col, _) in &list.phone_columns {
                if let Some(v) = row.get(col)
                    && !v.is_empty()
                    && !self.blocked(&data, v, now)
                {
                    dialled.push(v.clone());
                }
            }
        }
        data.dialled.extend(dialled.iter().cloned());
        dialled
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        ApiJson(json!({"message": message, "code": code, "status": status.as_u16()})),
    )
        .into_response()
}

/// The outbound API's conventions (Genesys shapes): one token.
pub struct GenesysOutbound;

impl Vendor for GenesysOutbound {
    const TOKENS: &'static [&'static str] = &[TOKEN];
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
            "Malformed request body",
        )
    }
}

fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not.found",
        "The requested resource was not found.",
    )
}

fn contact_json(list: &str, id: &str, row: &BTreeMap<String, String>) -> Value {
    json!({
        "id": id,
        "contactListId": list,
        "data": row,
        "callable": true,
        "selfUri": format!("/api/v2/outbound/contactlists/{list}/contacts/{id}"),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageQuery {
    page_size: Option<usize>,
    page_number: Option<usize>,
}

async fn lists(
    State(d): State<Arc<Dialer>>,
    _auth: Auth<GenesysOutbound>,
    Query(q): Query<PageQuery>,
) -> Response {
    let data = d.data.lock().expect("lock");
    let all: Vec<Value> = data
        .lists
        .iter()
        .map(|l| {
            json!({
                "id": l.id,
                "name": l.name,
                "version": 1,
                "columnNames": l.columns,
                "phoneColumns": l.phone_columns.iter().map(|(c, t)| json!({"columnName": c, "type": t})).collect::<Vec<_>>(),
                "selfUri": format!("/api/v2/outbound/contactlists/{}", l.id),
            })
        })
        .collect();
    ApiJson(page_of(
        all,
        q.page_size.unwrap_or(25),
        q.page_number.unwrap_or(1),
        "/api/v2/outbound/contactlists",
    ))
    .into_response()
}

async fn search(
    State(d): State<Arc<Dialer>>,
    _auth: Auth<GenesysOutbound>,
    Path(id): Path<String>,
    JsonBody(body, ..): JsonBody<GenesysOutbound>,
) -> Response {
    let data = d.data.lock().expect("lock");
    let Some(list) = data.lists.iter().find(|l| l.id == id) else {
        return not_found();
    };
    let any = body["filter"]["type"].as_str() != Some("AND");
    let mut predicates = Vec::new();
    for p in body["filter"]["predicates"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let (Some(col), Some(value)) = (p["column"].as_str(), p["value"].as_str()) else {
            return error(
                StatusCode::BAD_REQUEST,
                "bad.request",
                "A predicate needs column and value",
            );
        };
        if p["operator"].as_str().unwrap_or("EQUALS") != "EQUALS" {
            return error(
                StatusCode::BAD_REQUEST,
                "bad.request",
                "Only the EQUALS operator is supported",
            );
        }
        if !list.columns.iter().any(|c| c == col) {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid.column",
                &format!("Column {col} is not in contact list {id}"),
            );
        }
        let is_phone = list.phone_columns.iter().any(|(c, _)| c == col);
        predicates.push((col.to_string(), value.to_string(), is_phone));
    }
    let matches = |row: &BTreeMap<String, String>| {
        let test = |(col, value, is_phone): &(String, String, bool)| {
            row.get(col).is_some_and(|v| {
                if *is_phone {
                    phone_digits(v) == phone_digits(value)
                } else {
                    v.eq_ignore_ascii_case(value)
                }
            })
        };
        if any {
            predicates.iter().any(test)
        } else {
            predicates.iter().all(test)
        }
    };
    let hits: Vec<Value> = data
        .contacts
        .iter()
        .filter(|((l, _), row)| *l == id && matches(row))
        .map(|((l, c), row)| contact_json(l, c, row))
        .collect();
    ApiJson(page_of(
        hits,
        body["pageSize"].as_u64().unwrap_or(25) as usize,
        body["pageNumber"].as_u64().unwrap_or(1) as usize,
        &format!("/api/v2/outbound/contactlists/{id}/contacts/search"),
    ))
    .into_response()
}

async fn get_contact(
    State(d): State<Arc<Dialer>>,
    _auth: Auth<GenesysOutbound>,
    Path((id, cid)): Path<(String, String)>,
) -> Response {
    let data = d.data.lock().expect("lock");
    match data.contacts.get(&(id.clone(), cid.clone())) {
        Some(row) => ApiJson(contact_json(&id, &cid, row)).into_response(),
        None => not_found(),
    }
}

async fn put_contact(
    State(d): State<Arc<Dialer>>,
    _auth: Auth<GenesysOutbound>,
    Path((id, cid)): Path<(String, String)>,
    JsonBody(body, ..): JsonBody<GenesysOutbound>,
) -> Response {
    let Some(new) = body["data"].as_object() else {
        return error(StatusCode::BAD_REQUEST, "bad.request", "data is required");
    };
    let mut data = d.data.lock().expect("lock");
    let columns = match data.lists.iter().find(|l| l.id == id) {
        Some(l) => l.columns.clone(),
        None => return not_found(),
    };
    let Some(row) = data.contacts.get_mut(&(id.clone(), cid.clone())) else {
        return not_found();
    };
    for (k, v) in new {
        if !columns.contains(k) {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid.column",
                &format!("Column {k} is not in contact list {id}"),
            );
        }
        row.insert(k.clone(), v.as_str().unwrap_or_default().to_string());
    }
    let row = row.clone();
    ApiJson(contact_json(&id, &cid, &row)).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeleteQuery {
    contact_ids: Option<String>,
}

async fn delete_contacts(
    State(d): State<Arc<Dialer>>,
    _auth: Auth<GenesysOutbound>,
    Path(id): Path<String>,
    Query(q): Query<DeleteQuery>,
) -> Response {
    let Some(ids) = q.contact_ids.filter(|s| !s.is_empty()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad.request",
            "contactIds is required",
        );
    };
    let mut data = d.data.lock().expect("lock");
    if !data.lists.iter().any(|l| l.id == id) {
        return not_found();
    }
    for cid in ids.split(',') {
        data.contacts.remove(&(id.clone(), cid.trim().to_string()));
    }
    StatusCode::OK.into_response()
}

async fn import(
    State(d): State<Arc<Dialer>>,
    _auth: Auth<GenesysOutbound>,
    Path(id): Path<String>,
    JsonBody(body, ..): JsonBody<GenesysOutbound>,
) -> Response {
    let Value::Array(rows) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad.request",
            "Expected an array of contacts",
        );
    };
    let rows: Vec<BTreeMap<String, String>> = rows
        .iter()
        .filter_map(|r| r["data"].as_object())
        .map(|fields| {
            fields
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .collect();
    let Some(created) = d.import_rows(&id, rows) else {
        return not_found();
    };
    let created: Vec<Value> = created
        .iter()
        .map(|(cid, row)| contact_json(&id, cid, row))
        .collect();
    ApiJson(Value::Array(created)).into_response()
}

async fn dnc_lists(State(d): State<Arc<Dialer>>, _auth: Auth<GenesysOutbound>) -> Response {
    let data = d.data.lock().expect("lock");
    let all: Vec<Value> = data
        .dnc
        .iter()
        .map(|(id, l)| {
            json!({
                "id": id,
                "name": l.name,
                "contactMethod": "Phone",
                "dncSourceType": "rds",
                "hashed": l.hashed,
                "selfUri": format!("/api/v2/outbound/dnclists/{id}"),
            })
        })
        .collect();
    ApiJson(page_of(all, 25, 1, "/api/v2/outbound/dnclists")).into_response()
}

fn parse_expiry(v: &Value) -> Result<Option<i64>, ()> {
    // "yyyy-MM-ddTHH:mmZ"
    let Some(s) = v.as_str() else {
        return Ok(None);
    };
    let b = s.as_bytes();
    if b.len() != 17
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b'Z'
    {
        return Err(());
    }
    let num = |r: std::ops::Range<usize>| s[r].parse::<i64>().map_err(|_| ());
    let (y, m, d, hh, mm) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
    );
    crate::util::utc_seconds(y, m, d, hh, mm)
        .map(Some)
        .ok_or(())
}

async fn dnc_patch(
    State(d): State<Arc<Dialer>>,
    _auth: Auth<GenesysOutbound>,
    Path(id): Path<String>,
    JsonBody(body, ..): JsonBody<GenesysOutbound>,
) -> Response {
    let Ok(expiry) = parse_expiry(&body["expirationDateTime"]) else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad.request",
            "expirationDateTime must be yyyy-MM-ddTHH:mmZ",
        );
    };
    let numbers: Vec<String> = body["phoneNumbers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    let action = body["action"].as_str().unwrap_or_default().to_string();
    let mut data = d.data.lock().expect("lock");
    let Some(list) = data.dnc.get_mut(&id) else {
        return not_found();
    };
    let hashed = list.hashed;
    let key = |n: &str| {
        if hashed {
            d.token(n)
        } else {
            Some(n.to_string())
        }
    };
    match action.as_str() {
        "Add" => {
            for n in &numbers {
                let Some(k) = key(n) else {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "invalid.phone.number",
                        "A phone number is not valid",
                    );
                };
                list.entries.insert(k, expiry);
            }
        }
        "Remove" => {
            for n in &numbers {
                if hashed {
                    if let Some(k) = key(n) {
                        list.entries.remove(&k);
                    }
                } else {
                    let target = Dialer::e164(n);
                    list.entries.retain(|k, _| Dialer::e164(k) != target);
                }
            }
        }
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad.request",
                "action must be Add or Remove",
            );
        }
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn dnc_check(
    State(d): State<Arc<Dialer>>,
    _auth: Auth<GenesysOutbound>,
    Path(id): Path<String>,
    JsonBody(body, ..): JsonBody<GenesysOutbound>,
) -> Response {
    let now = now_secs();
    let data = d.data.lock().expect("lock");
    let Some(list) = data.dnc.get(&id) else {
        return not_found();
    };
    let mut found = Vec::new();
    for n in body["phoneNumbers"].as_array().into_iter().flatten() {
        let Some(n) = n.as_str() else { continue };
        let hit = list.entries.iter().find(|(k, exp)| {
            exp.is_none_or(|e| e > now)
                && if list.hashed {
                    Some(*k) == d.token(n).as_ref()
                } else {
                    phone_digits(k) == phone_digits(n)
                }
        });
        if let Some((_, exp)) = hit {
            let mut v = json!({"phoneNumber": n});
            if let Some(e) = exp {
                v["expirationDateTime"] = json!(iso8601(*e));
            }
            found.push(v);
        }
    }
    ApiJson(json!({"entities": found})).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DialQuery {
    contact_list_id: String,
}

async fn dial(
    State(d): State<Arc<Dialer>>,
    _auth: Auth<GenesysOutbound>,
    Query(q): Query<DialQuery>,
) -> Response {
    let dialled = d.dial_list(&q.contact_list_id);
    ApiJson(json!({"dialled": dialled.len()})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_round_trips() {
        let t = parse_expiry(&json!("2026-03-01T12:30Z")).unwrap().unwrap();
        assert_eq!(iso8601(t), "2026-03-01T12:30:00.000Z");
        assert!(parse_expiry(&json!("2026-03-01")).is_err());
    }

    #[test]
    fn every_format_hashes_alike() {
        let d = Dialer::seed(&[]);
        let t = d.token("+442079460123");
        assert!(t.is_some());
        assert_eq!(d.token("020 7946 0123"), t);
        assert_eq!(d.token("0044 20 7946 0123"), t);
        assert_ne!(d.token("+442079460124"), t);
    }
}
