//! Stand-in for a JMAP mail server (RFC 8620 core, RFC 8621 mail), the
//! subset a GDPR connector needs, holding one shared support mailbox:
//!
//! - `GET /.well-known/jmap`: the session. Its `apiUrl` and `downloadUrl` are
//!   relative references, as some real servers send them;
//!   `maxObjectsInSet` is 5 so that erasure must batch.
//! - `POST /jmap/api/`: `Core/echo`, `Mailbox/get`, `Email/query` (filters
//!   `inMailbox, text, from, to, cc, bcc, subject, body` combined with
//!   `AND/OR/NOT`; case-insensitive substring matching on display names and
//!   addresses alike, as servers commonly do), `Email/get` (parsed
//!   addresses, `blobId`), `Email/set` (destroy only, with `ifInState` and
//!   `stateMismatch`). Result references (`#ids`) are resolved; a method whose
//!   capability is not in `using` gives `unknownMethod`.
//! - `GET /jmap/download/{accountId}/{blobId}/{name}`: the raw RFC 5322
//!   message.
//!
//! Decoys live beside the real hits: a sender whose address contains the
//! person's address (`marie-camille.martin@…`), a similar name, and a body
//! that merely mentions the person.

use crate::common::{Auth, JsonBody, Vendor};
use crate::people::Person;
use crate::util::{ApiJson, iso8601};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

/// The bearer token of the support mailbox.
pub const TOKEN: &str = "sandbox-jmap-token";
/// The one account.
pub const ACCOUNT: &str = "u1f00";
/// The support mailbox's own address.
pub const SUPPORT: &str = "support@contact-center.example";
/// `maxObjectsInSet` advertised by the session.
pub const MAX_OBJECTS_IN_SET: usize = 5;
/// `maxObjectsInGet` advertised by the session.
pub const MAX_OBJECTS_IN_GET: usize = 20;
/// The largest `limit` Email/query honours.
pub const MAX_QUERY_LIMIT: usize = 50;

const CORE: &str = "urn:ietf:params:jmap:core";
const MAIL: &str = "urn:ietf:params:jmap:mail";
const MAILBOXES: &[(&str, &str, &str)] = &[
    ("mb-inbox", "Inbox", "inbox"),
    ("mb-sent", "Sent", "sent"),
    ("mb-archive", "Archive", "archive"),
    ("mb-trash", "Trash", "trash"),
];

/// A name and address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addr {
    /// Display name.
    pub name: Option<String>,
    /// Address.
    pub email: String,
}

impl Addr {
    /// An address with a display name.
    pub fn new(name: &str, email: &str) -> Self {
        Addr {
            name: (!name.is_empty()).then(|| name.to_string()),
            email: email.to_string(),
        }
    }
    fn header(&self) -> String {
        match &self.name {
            Some(n) => format!("{n} <{}>", self.email),
            None => self.email.clone(),
        }
    }
    fn json(&self) -> Value {
        json!({"name": self.name, "email": self.email})
    }
}

/// One message.
#[derive(Debug, Clone)]
pub struct Email {
    /// Id.
    pub id: String,
    /// Mailboxes it is in.
    pub mailbox_ids: Vec<String>,
    /// From.
    pub from: Vec<Addr>,
    /// To.
    pub to: Vec<Addr>,
    /// Cc.
    pub cc: Vec<Addr>,
    /// Bcc (only on the sender's copy).
    pub bcc: Vec<Addr>,
    /// Subject.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
    /// Received, seconds since the epoch.
    pub received_at: i64,
}

impl Email {
    fn raw(&self) -> String {
        let list = |a: &[Addr]| a.iter().map(Addr::header).collect::<Vec<_>>().join(", ");
        let mut s = format!("From: {}\r\n", list(&self.from));
        if !self.to.is_empty() {
            s += &format!("To: {}\r\n", list(&self.to));
        }
        if !self.cc.is_empty() {
            s += &format!("Cc: {}\r\n", list(&self.cc));
        }
        if !self.bcc.is_empty() {
            s += &format!("Bcc: {}\r\n", list(&self.bcc));
        }
        s += &format!(
            "Subject: {}\r\nDate: {}\r\nMessage-ID: <{}@contact-center.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{}\r\n",
            self.subject,
            iso8601(self.received_at),
            self.id,
            self.body.replace('\n', "\r\n")
        );
        s
    }
}

/// The server's data, for tests to inspect.
#[derive(Debug)]
pub struct JmapData {
    /// Messages by id.
    pub emails: BTreeMap<String, Email>,
    /// The Email state, bumped by every change.
    pub state: u64,
    /// The largest `destroy` list any Email/set carried.
    pub largest_destroy: usize,
    /// The messages by (received, id): a date-only query reads a range of
    /// it, as a real server's index would, instead of every message.
    by_date: BTreeSet<(i64, String)>,
}

impl JmapData {
    /// Add messages (tests and benchmarks seed more).
    pub fn add(&mut self, e: Email) {
        self.by_date.insert((e.received_at, e.id.clone()));
        self.emails.insert(e.id.clone(), e);
        self.state += 1;
    }
}

/// The stand-in's shared state.
#[derive(Debug)]
pub struct Jmap {
    /// The data.
    pub data: Mutex<JmapData>,
}

impl Jmap {
    /// Seed from `people`.
    pub fn seed(people: &[Person]) -> Arc<Self> {
        let mut emails = BTreeMap::new();
        let mut n = 0u32;
        let support = || vec![Addr::new("Customer Support", SUPPORT)];
        let base = 1_767_225_600;
        let mut add = |e: Email| {
            emails.insert(e.id.clone(), e);
        };
        let next = |n: &mut u32| {
            *n += 1;
            format!("M{:05}", *n)
        };
        let mail_people: Vec<&Person> = people.iter().filter(|p| p.systems().mail).collect();
        for (k, p) in mail_people.iter().enumerate() {
            let me = Addr::new(&p.full_name(), &p.email);
            let t = base + p.index as i64 * 5400;
            add(Email {
                id: next(&mut n),
                mailbox_ids: vec!["mb-inbox".into()],
                from: vec![me.clone()],
                to: support(),
                cc: vec![],
                bcc: vec![],
                subject: "Question about my contract".into(),
                body: format!(
                    "Hello,\nI was called about a renewal and would like the details.\nThanks,\n{}",
                    p.first_name
                ),
                received_at: t,
            });
            add(Email {
                id: next(&mut n),
                mailbox_ids: vec!["mb-sent".into(), "mb-archive".into()],
                from: support(),
                to: vec![me.clone()],
                cc: vec![],
                bcc: vec![],
                subject: "Re: Question about my contract".into(),
                body: format!(
                    "Dear {},\nYour contract renews on 1 March.\nSupport",
                    p.first_name
                ),
                received_at: t + 3600,
            });
            if p.index % 3 == 0 {
                let other = mail_people[(k + 1) % mail_people.len()];
                add(Email {
                    id: next(&mut n),
                    mailbox_ids: vec!["mb-inbox".into()],
                    from: vec![Addr::new(&other.full_name(), &other.email)],
                    to: support(),
                    cc: vec![me.clone()],
                    bcc: vec![],
                    subject: "Shared account".into(),
                    body: "We share this account; copying my partner.".into(),
                    received_at: t + 7200,
                });
            }
            if p.index < 10 || p.index % 4 == 1 {
                add(Email {
                    id: next(&mut n),
                    mailbox_ids: vec!["mb-sent".into()],
                    from: support(),
                    to: vec![Addr::new("Billing", "billing@contact-center.example")],
                    cc: vec![],
                    bcc: vec![me.clone()],
                    subject: "Payment reminder".into(),
                    body: "A reminder was sent for the account on file.".into(),
                    received_at: t + 9000,
                });
            }
            if p.index == 0 {
                // A longer thread, so erasing the demo person needs more
                // than one Email/set batch.
                for k in 1..=3 {
                    add(Email {
                        id: next(&mut n),
                        mailbox_ids: vec!["mb-archive".into()],
                        from: vec![me.clone()],
                        to: support(),
                        cc: vec![],
                        bcc: vec![],
                        subject: format!("Follow-up {k}"),
                        body: "Any news about my request?".into(),
                        received_at: t + 20_000 + k * 3600,
                    });
                }
            }
            if p.index == 0 || p.index % 5 == 2 {
                add(Email {
                    id: next(&mut n),
                    mailbox_ids: vec!["mb-trash".into()],
                    from: vec![Addr::new("", &p.email.to_uppercase())],
                    to: support(),
                    cc: vec![],
                    bcc: vec![],
                    subject: "Call me back".into(),
                    body: "Please call me back tomorrow.".into(),
                    received_at: t + 12_000,
                });
            }
        }
        if let Some(p) = people.first() {
            // Decoys around the demo person.
            let (local, domain) = p.email.split_once('@').unwrap_or((&p.email, ""));
            for (name, email, body) in [
                (
                    format!("Marie-{}", p.full_name()),
                    format!("marie-{local}@{domain}"),
                    "Hello, a question about my bill.".to_string(),
                ),
                (
                    format!("{} {}s", p.first_name, p.last_name),
                    format!(
                        "{}.{}s@example.net",
                        p.first_name.to_lowercase(),
                        p.last_name.to_lowercase()
                    ),
                    "Please update my address.".to_string(),
                ),
                (
                    "Dominique Keller".to_string(),
                    "dominique.keller@example.com".to_string(),
                    format!("My neighbour {} told me to write to you.", p.full_name()),
                ),
            ] {
                add(Email {
                    id: next(&mut n),
                    mailbox_ids: vec!["mb-inbox".into()],
                    from: vec![Addr::new(&name, &email)],
                    to: support(),
                    cc: vec![],
                    bcc: vec![],
                    subject: "Enquiry".into(),
                    body,
                    received_at: base + 86_400 * 30,
                });
            }
        }
        let by_date = emails
            .values()
            .map(|e| (e.received_at, e.id.clone()))
            .collect();
        Arc::new(Jmap {
            data: Mutex::new(JmapData {
                emails,
                state: 1,
                largest_destroy: 0,
                by_date,
            }),
        })
    }

    /// The routes.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/.well-known/jmap", get(session))
            .route("/jmap/api/", post(api))
            .route("/jmap/download/{account}/{blob}/{name}", get(download))
            .with_state(self.clone())
    }
}

/// A JMAP server's conventions (RFC 8620): one token, request-level errors
/// as problem details.
pub struct JmapServer;

impl Vendor for JmapServer {
    const TOKENS: &'static [&'static str] = &[TOKEN];
    fn unauthorised() -> Response {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer realm=\"jmap\"")],
            "",
        )
            .into_response()
    }
    fn malformed_body() -> Response {
        problem("notJSON", "The request body is not JSON.")
    }
}

fn problem(kind: &str, detail: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "application/problem+json")],
        json!({"type": format!("urn:ietf:params:jmap:error:{kind}"), "status": 400, "detail": detail})
            .to_string(),
    )
        .into_response()
}

async fn session(State(j): State<Arc<Jmap>>, _auth: Auth<JmapServer>) -> Response {
    let state = j.data.lock().expect("lock").state;
    ApiJson(json!({
        "capabilities": {
            CORE: {
                "maxSizeUpload": 50_000_000,
                "maxConcurrentUpload": 4,
                "maxSizeRequest": 10_000_000,
                "maxConcurrentRequests": 4,
                "maxCallsInRequest": 16,
                "maxObjectsInGet": MAX_OBJECTS_IN_GET,
                "maxObjectsInSet": MAX_OBJECTS_IN_SET,
                "collationAlgorithms": ["i;ascii-casemap", "i;unicode-casemap"],
            },
            MAIL: {},
        },
        "accounts": {
            ACCOUNT: {
                "name": SUPPORT,
                "isPersonal": false,
                "isReadOnly": false,
                "accountCapabilities": {MAIL: {
                    "maxMailboxesPerEmail": null,
                    "maxMailboxDepth": 10,
                    "maxSizeMailboxName": 490,
                    "maxSizeAttachmentsPerEmail": 50_000_000,
                    "emailQuerySortOptions": ["receivedAt"],
                    "mayCreateTopLevelMailbox": true,
                }},
            },
        },
        "primaryAccounts": {CORE: ACCOUNT, MAIL: ACCOUNT},
        "username": SUPPORT,
        "apiUrl": "/jmap/api/",
        "downloadUrl": "/jmap/download/{accountId}/{blobId}/{name}?accept={type}",
        "uploadUrl": "/jmap/upload/{accountId}/",
        "eventSourceUrl": "/jmap/eventsource/?types={types}&closeafter={closeafter}&ping={ping}",
        "state": format!("session-{state}"),
    }))
    .into_response()
}

async fn download(
    State(j): State<Arc<Jmap>>,
    _auth: Auth<JmapServer>,
    Path((account, blob, _name)): Path<(String, String, String)>,
) -> Response {
    let data = j.data.lock().expect("lock");
    let id = blob.strip_prefix('B').map(|rest| format!("M{rest}"));
    match id
        .and_then(|id| data.emails.get(&id))
        .filter(|_| account == ACCOUNT)
    {
        Some(e) => ([(header::CONTENT_TYPE, "message/rfc822")], e.raw()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn api(
    State(j): State<Arc<Jmap>>,
    _auth: Auth<JmapServer>,
    JsonBody(req, ..): JsonBody<JmapServer>,
) -> Response {
    let (Some(using), Some(calls)) = (req["using"].as_array(), req["methodCalls"].as_array())
    else {
        return problem("notRequest", "The request is not a JMAP Request object.");
    };
    let using: Vec<&str> = using.iter().filter_map(Value::as_str).collect();
    if let Some(unknown) = using.iter().find(|u| **u != CORE && **u != MAIL) {
        return problem(
            "unknownCapability",
            &format!("The capability {unknown} is not supported."),
        );
    }
    if calls.len() > 16 {
        return problem("limit", "maxCallsInRequest exceeded");
    }
    let mut responses: Vec<Value> = Vec::new();
    for call in calls {
        let (Some(name), Some(args), Some(id)) =
            (call[0].as_str(), call[1].as_object(), call[2].as_str())
        else {
            return problem("notRequest", "A method call is not [name, arguments, id].");
        };
        let out = match resolve_refs(args, &responses) {
            Err(e) => vec![error_response(&e, id)],
            Ok(args) => {
                let needs_mail = name.starts_with("Email/") || name.starts_with("Mailbox/");
                if (needs_mail && !using.contains(&MAIL)) || !using.contains(&CORE) {
                    vec![error_response("unknownMethod", id)]
                } else {
                    j.call(name, &args, id)
                }
            }
        };
        responses.extend(out);
    }
    let state = j.data.lock().expect("lock").state;
    ApiJson(json!({"methodResponses": responses, "sessionState": format!("session-{state}")}))
        .into_response()
}

fn error_response(kind: &str, id: &str) -> Value {
    json!(["error", {"type": kind}, id])
}

/// Replace `#name` arguments by the value their result reference points at.
fn resolve_refs(args: &Map<String, Value>, done: &[Value]) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    for (k, v) in args {
        if let Some(real) = k.strip_prefix('#') {
            let (Some(of), Some(name), Some(path)) = (
                v["resultOf"].as_str(),
                v["name"].as_str(),
                v["path"].as_str(),
            ) else {
                return Err("invalidResultReference".into());
            };
            let Some(prev) = done.iter().find(|r| r[2] == of && r[0] == name) else {
                return Err("invalidResultReference".into());
            };
            let value = pointer(&prev[1], path).ok_or("invalidResultReference")?;
            out.insert(real.to_string(), value);
        } else {
            out.insert(k.clone(), v.clone());
        }
    }
    Ok(out)
}

/// JSON pointer with JMAP's `*` (map over an array, flattening arrays).
fn pointer(v: &Value, path: &str) -> Option<Value> {
    let mut parts = path.strip_prefix('/')?.splitn(2, '/');
    let head = parts.next()?;
    let rest = parts.next();
    let next = if head == "*" {
        let items = v.as_array()?;
        let mut out = Vec::new();
        for item in items {
            let got = match rest {
                Some(r) => pointer(item, &format!("/{r}"))?,
                None => item.clone(),
            };
            match got {
                Value::Array(a) => out.extend(a),
                other => out.push(other),
            }
        }
        return Some(Value::Array(out));
    } else {
        v.get(head)?
    };
    match rest {
        Some(r) => pointer(next, &format!("/{r}")),
        None => Some(next.clone()),
    }
}

impl Jmap {
    fn call(&self, name: &str, args: &Map<String, Value>, id: &str) -> Vec<Value> {
        if name != "Core/echo" && args.get("accountId").and_then(Value::as_str) != Some(ACCOUNT) {
            return vec![error_response("accountNotFound", id)];
        }
        let result = match name {
            "Core/echo" => Ok(Value::Object(args.clone())),
            "Mailbox/get" => Ok(self.mailbox_get()),
            "Email/query" => self.email_query(args),
            "Email/get" => self.email_get(args),
            "Email/set" => self.email_set(args),
            _ => Err("unknownMethod".to_string()),
        };
        match result {
            Ok(v) => vec![json!([name, v, id])],
            Err(e) => vec![error_response(&e, id)],
        }
    }

    fn mailbox_get(&self) -> Value {
        let data = self.data.lock().expect("lock");
        let list: Vec<Value> = MAILBOXES
            .iter()
            .map(|(id, name, role)| {
                let total = data
                    .emails
                    .values()
                    .filter(|e| e.mailbox_ids.iter().any(|m| m == id))
                    .count();
                json!({"id": id, "name": name, "role": role, "totalEmails": total, "parentId": null})
            })
            .collect();
        json!({"accountId": ACCOUNT, "state": format!("m{}", data.state), "list": list, "notFound": []})
    }

    fn email_query(&self, args: &Map<String, Value>) -> Result<Value, String> {
        let data = self.data.lock().expect("lock");
        let filter = args.get("filter").cloned().unwrap_or(Value::Null);
        // `receivedAt` only, newest first unless `isAscending`; ties in
        // the store's order (as on a real server, not promised to be the
        // ids').
        let ascending = args
            .get("sort")
            .and_then(|s| s.get(0))
            .and_then(|c| c.get("isAscending"))
            .and_then(Value::as_bool)
            == Some(true);
        let position = args.get("position").and_then(Value::as_u64).unwrap_or(0) as usize;
        let asked = args
            .get("limit")
            .and_then(Value::as_u64)
            .map(|l| l as usize);
        let limit = asked.unwrap_or(MAX_QUERY_LIMIT).min(MAX_QUERY_LIMIT);
        let total = args.get("calculateTotal").and_then(Value::as_bool) == Some(true);
        let by_date_only = filter
            .as_object()
            .is_some_and(|f| !f.is_empty() && f.keys().all(|k| k == "before" || k == "after"));
        let (ids, count): (Vec<String>, usize) = if by_date_only {
            // A range of the date index, read only as far as the page.
            let bound = |k: &str| {
                filter
                    .get(k)
                    .and_then(Value::as_str)
                    .map(utc_date)
                    .transpose()
            };
            let from = bound("after")?.unwrap_or(i64::MIN);
            let to = bound("before")?.unwrap_or(i64::MAX);
            let range = || {
                data.by_date
                    .range((from, String::new())..(to.max(from), String::new()))
            };
            let page: Vec<String> = if ascending {
                range()
                    .skip(position)
                    .take(limit)
                    .map(|(_, id)| id.clone())
                    .collect()
            } else {
                range()
                    .rev()
                    .skip(position)
                    .take(limit)
                    .map(|(_, id)| id.clone())
                    .collect()
            };
            (page, if total { range().count() } else { 0 })
        } else {
            let mut hits: Vec<&Email> = Vec::new();
            for e in data.emails.values() {
                if matches(e, &filter)? {
                    hits.push(e);
                }
            }
            hits.sort_by(|a, b| {
                if ascending {
                    a.received_at.cmp(&b.received_at)
                } else {
                    b.received_at.cmp(&a.received_at)
                }
            });
            let page = hits
                .iter()
                .skip(position)
                .take(limit)
                .map(|e| e.id.clone())
                .collect();
            (page, hits.len())
        };
        let mut out = json!({
            "accountId": ACCOUNT,
            "queryState": format!("q{}", data.state),
            "canCalculateChanges": false,
            "position": position,
            "ids": ids,
        });
        if asked.is_some_and(|a| a > MAX_QUERY_LIMIT) {
            out["limit"] = json!(MAX_QUERY_LIMIT);
        }
        if total {
            out["total"] = json!(count);
        }
        Ok(out)
    }

    fn email_get(&self, args: &Map<String, Value>) -> Result<Value, String> {
        let data = self.data.lock().expect("lock");
        let ids: Vec<String> = match args.get("ids") {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect(),
            None | Some(Value::Null) => data.emails.keys().cloned().collect(),
            _ => return Err("invalidArguments".into()),
        };
        if ids.len() > MAX_OBJECTS_IN_GET {
            return Err("requestTooLarge".into());
        }
        let props: Option<Vec<String>> =
            args.get("properties").and_then(Value::as_array).map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            });
        let mut list = Vec::new();
        let mut not_found = Vec::new();
        for id in ids {
            let Some(e) = data.emails.get(&id) else {
                not_found.push(id);
                continue;
            };
            let addrs = |a: &[Addr]| {
                if a.is_empty() {
                    Value::Null
                } else {
                    Value::Array(a.iter().map(Addr::json).collect())
                }
            };
            let raw = e.raw();
            let full = json!({
                "id": e.id,
                "blobId": format!("B{}", &e.id[1..]),
                "threadId": format!("T{}", &e.id[1..]),
                "mailboxIds": e.mailbox_ids.iter().map(|m| (m.clone(), json!(true))).collect::<Map<_, _>>(),
                "keywords": {"$seen": true},
                "size": raw.len(),
                "receivedAt": iso8601(e.received_at).replace(".000", ""),
                "messageId": [format!("{}@contact-center.example", e.id)],
                "from": addrs(&e.from),
                "to": addrs(&e.to),
                "cc": addrs(&e.cc),
                "bcc": addrs(&e.bcc),
                "replyTo": Value::Null,
                "sender": Value::Null,
                "subject": e.subject,
                "preview": e.body.chars().take(80).collect::<String>(),
                "hasAttachment": false,
            });
            let v = match &props {
                None => full,
                Some(p) => {
                    let mut m = Map::new();
                    m.insert("id".into(), full["id"].clone());
                    for k in p {
                        match full.get(k) {
                            Some(v) => {
                                m.insert(k.clone(), v.clone());
                            }
                            None => return Err("invalidArguments".into()),
                        }
                    }
                    Value::Object(m)
                }
            };
            list.push(v);
        }
        Ok(json!({
            "accountId": ACCOUNT,
            "state": data.state.to_string(),
            "list": list,
            "notFound": not_found,
        }))
    }

    fn email_set(&self, args: &Map<String, Value>) -> Result<Value, String> {
        let mut data = self.data.lock().expect("lock");
        if let Some(want) = args.get("ifInState").and_then(Value::as_str)
            && want != data.state.to_string()
        {
            return Err("stateMismatch".into());
        }
        for unsupported in ["create", "update"] {
            if args.get(unsupported).is_some_and(|v| !v.is_null()) {
                return Err("invalidArguments".into());
            }
        }
        let destroy: Vec<String> = args
            .get("destroy")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        if destroy.len() > MAX_OBJECTS_IN_SET {
            return Err("requestTooLarge".into());
        }
        data.largest_destroy = data.largest_destroy.max(destroy.len());
        let old = data.state;
        let mut destroyed = Vec::new();
        let mut not_destroyed = Map::new();
        for id in destroy {
            if let Some(e) = data.emails.remove(&id) {
                data.by_date.remove(&(e.received_at, id.clone()));
                destroyed.push(id);
            } else {
                not_destroyed.insert(id, json!({"type": "notFound"}));
            }
        }
        if !destroyed.is_empty() {
            data.state += 1;
        }
        Ok(json!({
            "accountId": ACCOUNT,
            "oldState": old.to_string(),
            "newState": data.state.to_string(),
            "created": null,
            "updated": null,
            "destroyed": destroyed,
            "notCreated": null,
            "notUpdated": null,
            "notDestroyed": if not_destroyed.is_empty() { Value::Null } else { Value::Object(not_destroyed) },
        }))
    }
}

fn contains(haystack: &str, needle: &str) -> bool {
    haystack.to_lowercase().contains(&needle.to_lowercase())
}

/// Seconds since the epoch of a JMAP UTCDate (`2026-01-01T00:00:00Z`).
fn utc_date(d: &str) -> Result<i64, String> {
    d.parse::<jiff::Timestamp>()
        .ok()
        .filter(|_| d.ends_with('Z'))
        .map(|t| t.as_second())
        .ok_or_else(|| "invalidArguments".to_string())
}

fn matches(e: &Email, filter: &Value) -> Result<bool, String> {
    let Some(f) = filter.as_object() else {
        return Ok(true); // null: everything
    };
    if let Some(op) = f.get("operator").and_then(Value::as_str) {
        let conds = f
            .get("conditions")
            .and_then(Value::as_array)
            .ok_or("invalidArguments")?;
        let mut results = Vec::with_capacity(conds.len());
        for c in conds {
            results.push(matches(e, c)?);
        }
        return match op {
            "AND" => Ok(results.iter().all(|r| *r)),
            "OR" => Ok(results.iter().any(|r| *r)),
            "NOT" => Ok(!results.iter().any(|r| *r)),
            _ => Err("invalidArguments".into()),
        };
    }
    let text = |a: &[Addr]| a.iter().map(Addr::header).collect::<Vec<_>>().join(", ");
    for (k, v) in f {
        let ok = match (k.as_str(), v.as_str()) {
            ("inMailbox", Some(m)) => e.mailbox_ids.iter().any(|x| x == m),
            ("from", Some(s)) => contains(&text(&e.from), s),
            ("to", Some(s)) => contains(&text(&e.to), s),
            ("cc", Some(s)) => contains(&text(&e.cc), s),
            ("bcc", Some(s)) => contains(&text(&e.bcc), s),
            ("subject", Some(s)) => contains(&e.subject, s),
            ("body", Some(s)) => contains(&e.body, s),
            ("text", Some(s)) => contains(&e.raw(), s),
            // RFC 8621 §4.4.1: `before` is strictly before, `after` the same
            // second or later; a UTCDate that does not parse is refused.
            ("before", Some(d)) => e.received_at < utc_date(d)?,
            ("after", Some(d)) => e.received_at >= utc_date(d)?,
            _ => return Err("unsupportedFilter".into()),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointer_maps_over_arrays() {
        let v = json!({"list": [{"id": "a", "t": ["x"]}, {"id": "b", "t": ["y", "z"]}]});
        assert_eq!(pointer(&v, "/list/*/id"), Some(json!(["a", "b"])));
        assert_eq!(pointer(&v, "/list/*/t"), Some(json!(["x", "y", "z"])));
        assert_eq!(pointer(&v, "/nope"), None);
    }

    #[test]
    fn filters_match_names_and_addresses_and_combine() {
        let e = Email {
            id: "M1".into(),
            mailbox_ids: vec!["mb-inbox".into()],
            from: vec![Addr::new("Camille Martin", "camille.martin@example.org")],
            to: vec![Addr::new("", SUPPORT)],
            cc: vec![],
            bcc: vec![],
            subject: "Hi".into(),
            body: "text".into(),
            received_at: 0,
        };
        assert!(matches(&e, &json!({"from": "CAMILLE.MARTIN@example.org"})).unwrap());
        assert!(matches(&e, &json!({"from": "camille martin"})).unwrap());
        assert!(!matches(&e, &json!({"to": "camille"})).unwrap());
        assert!(
            matches(
                &e,
                &json!({"operator": "OR", "conditions": [{"to": "camille"}, {"from": "camille"}]})
            )
            .unwrap()
        );
        assert!(
            !matches(
                &e,
                &json!({"operator": "NOT", "conditions": [{"from": "camille"}]})
            )
            .unwrap()
        );
        assert!(matches(&e, &json!({"header": ["X"]})).is_err());
    }
}
