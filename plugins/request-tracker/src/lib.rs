//! Connector for Request Tracker 5 (Best Practical's ticketing system),
//! through its REST 2.0 API (`/REST/2.0/`, built into RT 5). Written from
//! RT's REST 2.0 documentation; tested in CI against Debian's
//! request-tracker5 (RT 5.0.3, SQLite).
//!
//! - **locate**: RT users whose `EmailAddress` is the person's; tickets where
//!   the person is requestor, Cc or AdminCc (TicketSQL on each role); and
//!   tickets with a message that mentions the address (attachment `Content`
//!   and `Headers` searches). RT's searches match substrings, so every
//!   candidate is confirmed against the exact address. RT's REST API never
//!   returns tickets whose status is `deleted` from a search; such a ticket
//!   is still found through its messages, and its summary says it is still
//!   stored. Each record says the person's role: their user and the tickets
//!   they alone requested are theirs (`owner`); a ticket they are Cc or
//!   AdminCc on, or one of several requestors of, is shared (`participant`);
//!   a ticket that only mentions them is someone else's (`mentioned`).
//! - **detach**: takes the person off a shared ticket's Requestor, Cc and
//!   AdminCc (`PUT /ticket/{id}` with the other members), read back; the
//!   ticket stays with the others.
//! - **export**: a user's fields, RT's notes on them (`Comments`,
//!   `Signature`), their preferences, their custom fields (a phone number
//!   kept in one), and the history of every change (RT keeps every previous
//!   value); a ticket's subject, status, queue by name, the dates it has
//!   (RT's placeholder for "none", the Unix epoch, is left out), custom
//!   fields and role members, its text messages as fields, and its other
//!   parts (files, HTML) as attachments.
//! - **rectify**: a user's fields, with `PUT /user/{id}`, read back. RT
//!   records the previous value in the user's history, which stays readable
//!   to RT's staff: the outcome is `retained` with that reason, never
//!   `done`.
//! - **erase**: RT's API cannot remove anything: `DELETE /ticket` only sets
//!   the status to `deleted`, `DELETE /user` only disables. Removal is RT's
//!   Shredder, an administrator's tool on the RT server, so `delete` answers
//!   a manual task: the exact `rt-shredder` commands for these records, each
//!   ticket named by its id *and* its creation time (RT on SQLite reuses the
//!   ids of shredded tickets: a stale command then matches nothing), and the
//!   records, which the host's verifying search checks once done. `anonymise` rewrites a user's fields in place
//!   (for a user whose tickets must stay), reported `retained` because the
//!   history keeps the old values; tickets cannot be anonymised.
//! - **restrict**: disables the person's RT users (they can no longer log
//!   in), and enables them again when lifted. That is all RT can do, so it is
//!   done only for a restriction of everything (`all`, or no scope); a
//!   narrower one (`direct-marketing`) is answered `retained` with the
//!   reason, never by disabling the whole account.
//!
//! - **sweep** (retention): tickets by `closed` (RT's `Resolved`, set when a
//!   ticket is resolved or rejected; a ticket never closed is never due),
//!   `modified` (`LastUpdated`) or `created` (`Created`): TicketSQL
//!   `{column} < cutoff`, sorted by that column ascending. TicketSQL reads
//!   dates in the RT server's time zone, which a connector does not know, so
//!   the search is widened by a day on each side and cut exactly on the UTC
//!   dates the REST API returns. Tickets whose status is `deleted` are not
//!   returned by RT's searches, so a sweep cannot see them.
//!
//! Configuration: `base_url` (RT's web root, e.g. `https://rt.example.com`),
//! `auth` (`token`, the default, with the secret `token` from RT's auth
//! tokens; or `basic`, with the secrets `username` and `password`).

use oubli_plugin::http::Client;
use oubli_plugin::prelude::*;
use oubli_plugin::text::{base64_decode, format_iso8601, parse_iso8601};
use serde_json::{Value, json};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

const USER: &str = "user";
const TICKET: &str = "ticket";
const PAGE: usize = 100;
/// The most pages read from one search (100 items each).
const MAX_PAGES: usize = 50;

/// User fields the connector exports and corrects (RT's column names).
const USER_FIELDS: [&str; 15] = [
    "Name",
    "EmailAddress",
    "RealName",
    "NickName",
    "Organization",
    "Address1",
    "Address2",
    "City",
    "State",
    "Zip",
    "Country",
    "HomePhone",
    "WorkPhone",
    "MobilePhone",
    "PagerPhone",
];

/// User fields a person would recognise as theirs besides their contact
/// details: RT's notes about them and their preferences.
const USER_NOTES: [&str; 4] = ["Comments", "Signature", "Lang", "Timezone"];

/// A record's custom fields: values by name, and names by id (history
/// names custom fields by id).
struct CustomFields {
    values: Vec<(String, Vec<String>)>,
    by_id: BTreeMap<String, String>,
}

fn custom_fields(record: &Value) -> CustomFields {
    let mut out = CustomFields {
        values: Vec::new(),
        by_id: BTreeMap::new(),
    };
    for cf in record["CustomFields"].as_array().into_iter().flatten() {
        let Some(name) = cf["name"].as_str() else {
            continue;
        };
        if let Some(id) = id_of(cf) {
            out.by_id.insert(id, name.to_string());
        }
        let values: Vec<String> = cf["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(String::from))
            .filter(|v| !v.is_empty())
            .collect();
        if !values.is_empty() {
            out.values.push((name.to_string(), values));
        }
    }
    out
}

const ROLES: [(&str, &str); 3] = [
    ("Requestor", "the person is requestor"),
    ("Cc", "the person is in Cc"),
    ("AdminCc", "the person is in AdminCc"),
];

fn api() -> Result<Client, ConnectorError> {
    let base = require_config("base_url")?;
    let client = Client::new(&format!("{}/REST/2.0", base.trim_end_matches('/')))?;
    match config("auth").as_deref().unwrap_or("token") {
        "token" => {
            let token = require_secret("token")?;
            Ok(client.header("authorization", &format!("token {token}")))
        }
        "basic" => Ok(client.basic(&require_secret("username")?, &require_secret("password")?)),
        _ => Err(ConnectorError::Invalid(
            "configuration `auth` must be `token` or `basic`".into(),
        )),
    }
}

/// Every item of a paged REST 2.0 collection.
fn all_items(
    rt: &Client,
    path: &str,
    params: &[(&str, &str)],
    body: Option<&Value>,
) -> Result<Vec<Value>, ConnectorError> {
    let mut out = Vec::new();
    for page in 1..=MAX_PAGES {
        let mut request = match body {
            Some(_) => rt.post(path),
            None => rt.get(path),
        };
        for (k, v) in params {
            request = request.query(k, v);
        }
        request = request.query("per_page", PAGE).query("page", page);
        let answer: Value = match body {
            Some(b) => request.json_body(b)?.json()?,
            None => request.json()?,
        };
        let items = answer["items"].as_array().cloned().unwrap_or_default();
        let n = items.len();
        out.extend(items);
        let pages = answer["pages"].as_f64().unwrap_or(0.0) as usize;
        if n < PAGE || page >= pages {
            return Ok(out);
        }
    }
    Err(ConnectorError::Unavailable(format!(
        "an RT search returned more than {} items",
        PAGE * MAX_PAGES
    )))
}

/// A TicketSQL string literal.
fn sql_string(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Whether `text` holds `address` as a whole address (not inside a longer
/// one such as `anne-marie@…` or `marie@example.org.evil`), ignoring case.
fn mentions(text: &str, address: &str) -> bool {
    let text = text.to_lowercase();
    let address = address.to_lowercase();
    let part = |c: char| c.is_ascii_alphanumeric() || "._%+-".contains(c);
    let mut from = 0;
    while let Some(i) = text[from..].find(&address) {
        let start = from + i;
        let end = start + address.len();
        let before = text[..start].chars().next_back();
        let after = text[end..].chars().next();
        let after_ok = match after {
            None => true,
            Some('.') => !text[end + 1..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric()),
            Some(c) => !(c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        };
        if !before.is_some_and(part) && after_ok {
            return true;
        }
        from = start + 1;
        while !text.is_char_boundary(from) {
            from += 1;
        }
    }
    false
}

fn id_of(v: &Value) -> Option<String> {
    match &v["id"] {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The decoded content of one attachment (`GET /attachment/{id}`).
fn attachment_content(rt: &Client, id: &str) -> Result<Option<(Value, Vec<u8>)>, ConnectorError> {
    let Some(a) = rt.get(&format!("/attachment/{id}")).json_opt::<Value>()? else {
        return Ok(None);
    };
    let content = a["Content"]
        .as_str()
        .map(|c| {
            base64_decode(c).ok_or_else(|| {
                ConnectorError::Internal("an RT attachment's content is not base64".into())
            })
        })
        .transpose()?
        .unwrap_or_default();
    Ok(Some((a, content)))
}

/// The ticket a transaction belongs to, if it belongs to a ticket.
fn ticket_of_transaction(rt: &Client, tx: &str) -> Result<Option<String>, ConnectorError> {
    let Some(t) = rt.get(&format!("/transaction/{tx}")).json_opt::<Value>()? else {
        return Ok(None);
    };
    Ok((t["Object"]["type"] == "ticket")
        .then(|| id_of(&t["Object"]))
        .flatten())
}

/// The users whose address is one of the person's: (id, record).
fn users_of(rt: &Client, emails: &[String]) -> Result<Vec<(String, Value)>, ConnectorError> {
    let mut out = BTreeMap::new();
    for e in emails {
        let body = json!([{"field": "EmailAddress", "operator": "=", "value": e}]);
        let found = all_items(
            rt,
            "/users",
            &[("fields", "id,EmailAddress"), ("find_disabled_rows", "1")],
            Some(&body),
        )?;
        for u in found {
            let exact = u["EmailAddress"]
                .as_str()
                .is_some_and(|a| a.eq_ignore_ascii_case(e));
            if let (true, Some(id)) = (exact, id_of(&u)) {
                out.insert(id, u);
            }
        }
    }
    Ok(out.into_iter().collect())
}

struct RequestTracker;

impl Connector for RequestTracker {
    fn manifest() -> Manifest {
        let key = |name: &str, description: &str, required: bool| ConfigKey {
            name: name.into(),
            description: description.into(),
            required,
        };
        let category =
            |name: &str, description: &str, retention: &str, portable: bool| DataCategory {
                name: name.into(),
                description: description.into(),
                purposes: vec!["customer service".into()],
                retention: retention.into(),
                recipients: vec![],
                portable,
            };
        Manifest {
            id: "request-tracker".into(),
            name: "Tickets (Request Tracker)".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            wit_version: WIT_VERSION.into(),
            system_kind: SystemKind::Ticketing,
            operations: vec![
                Operation::Locate,
                Operation::Export,
                Operation::ReadAttachment,
                Operation::Rectify,
                Operation::Erase,
                Operation::Detach,
                Operation::Restrict,
                Operation::Sweep,
            ],
            categories: vec![
                category(
                    "contact details",
                    "The person's RT user: name, email address, organisation, postal address, phone numbers, and the history of their changes",
                    "as long as the person has tickets; RT keeps previous values in the user's history until an administrator shreds the user",
                    true,
                ),
                category(
                    "correspondence",
                    "Tickets the person raised or was copied on, and messages mentioning them, with attached files",
                    "RT keeps tickets until an administrator shreds them (deleting a ticket only changes its status)",
                    true,
                ),
                category(
                    "third-party",
                    "Other people on the person's tickets (requestors, Cc, AdminCc)",
                    "as the tickets",
                    false,
                ),
            ],
            outbound_hosts: vec!["*".into()],
            config_keys: vec![
                key(
                    "base_url",
                    "RT's web root, e.g. https://rt.example.com (the API is under /REST/2.0)",
                    true,
                ),
                key(
                    "auth",
                    "`token` (secret `token`, an RT auth token; the default) or `basic` (secrets `username` and `password`)",
                    false,
                ),
            ],
            secrets: vec!["token".into(), "username".into(), "password".into()],
            // Erasing a ticket is a manual task (RT's Shredder): once the
            // administrator has run it, the ticket is gone for good.
            retention: vec![RetentionFacts::new(
                "correspondence",
                TICKET,
                &["closed", "modified", "created"],
                Deletion::Final,
            )],
        }
    }

    fn sweep(query: SweepQuery) -> Result<Vec<Dated>, ConnectorError> {
        query.check(&Self::manifest())?;
        if query.limit == 0 {
            return Ok(Vec::new());
        }
        let column = match query.trigger.as_str() {
            "closed" => "Resolved",
            "modified" => "LastUpdated",
            _ => "Created",
        };
        const DAY: i64 = 86_400_000;
        let sql_date = |ms: i64| {
            let iso = format_iso8601(ms, false);
            iso.trim_end_matches('Z').replace('T', " ")
        };
        // RT's placeholder for a date never set is the Unix epoch.
        let mut sql = format!(
            "{column} < '{}' AND {column} > '1970-01-02 00:00:00'",
            sql_date(query.cutoff.saturating_add(DAY))
        );
        if let Some(after) = &query.after {
            sql += &format!(" AND {column} > '{}'", sql_date(after.at - DAY));
        }
        let rt = api()?;
        let mut found: Vec<Dated> = Vec::new();
        for page in 1..=MAX_PAGES {
            let answer: Value = rt
                .get("/tickets")
                .query("query", &sql)
                .query("orderby", column)
                .query("order", "ASC")
                .query("fields", format!("{column},Status"))
                .query("per_page", PAGE)
                .query("page", page)
                .json()?;
            let items = answer["items"].as_array().cloned().unwrap_or_default();
            let mut past_cutoff = false;
            for t in &items {
                let (Some(id), Some(at)) = (id_of(t), t[column].as_str().and_then(parse_iso8601))
                else {
                    continue;
                };
                if at >= query.cutoff {
                    past_cutoff = true;
                    break;
                }
                if at > 86_400_000 && query.is_after(at, &id) {
                    let status = t["Status"].as_str().unwrap_or("unknown");
                    let status: String = status
                        .chars()
                        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                        .take(20)
                        .collect();
                    found.push(Dated::new(
                        RecordRef::new(TICKET, id),
                        at,
                        format!("ticket, {status}"),
                    ));
                }
            }
            let pages = answer["pages"].as_f64().unwrap_or(0.0) as usize;
            if past_cutoff || query.complete(&found) || items.len() < PAGE || page >= pages {
                return Ok(query.page(found));
            }
        }
        Err(ConnectorError::Unavailable(format!(
            "an RT search returned more than {} tickets",
            PAGE * MAX_PAGES
        )))
    }

    fn locate(subject: Subject) -> Result<Vec<Located>, ConnectorError> {
        if subject.emails.is_empty() {
            return Ok(Vec::new());
        }
        let rt = api()?;
        let mut found = Vec::new();
        for (id, _) in users_of(&rt, &subject.emails)? {
            // Searches leave `Disabled` empty; the record says it.
            let Some(u) = rt.get(&format!("/user/{id}")).json_opt::<Value>()? else {
                continue;
            };
            let disabled = u["Disabled"].as_str() == Some("1") || u["Disabled"] == 1;
            let mut l = Located::new(
                RecordRef::new(USER, id),
                if disabled {
                    "RT user, disabled"
                } else {
                    "RT user"
                },
            );
            if let Some(at) = u["Created"].as_str().and_then(parse_iso8601) {
                l = l.created_at(at);
            }
            found.push(l);
        }

        // Tickets by role, the first role found naming it.
        let mut tickets: BTreeMap<u64, (String, Role)> = BTreeMap::new();
        for e in &subject.emails {
            for (role, said) in ROLES {
                let query = format!("{role}.EmailAddress = {}", sql_string(e));
                for t in all_items(&rt, "/tickets", &[("query", &query)], None)? {
                    if let Some(id) = id_of(&t).and_then(|i| i.parse().ok()) {
                        let part = if role == "Requestor" {
                            Role::Owner
                        } else {
                            Role::Participant
                        };
                        tickets
                            .entry(id)
                            .or_insert_with(|| (said.to_string(), part));
                    }
                }
            }
        }
        // Messages that mention the address, confirmed in their text; this
        // also finds tickets whose status is `deleted`, which RT's searches
        // never return.
        for e in &subject.emails {
            let mut candidates = BTreeSet::new();
            for field in ["Content", "Headers"] {
                let body = json!([{"field": field, "operator": "LIKE", "value": e}]);
                for a in all_items(
                    &rt,
                    "/attachments",
                    &[("fields", "TransactionId")],
                    Some(&body),
                )? {
                    if let (Some(id), Some(tx)) = (id_of(&a), a["TransactionId"].as_str()) {
                        candidates.insert((id, tx.to_string(), field));
                    }
                }
            }
            for (id, tx, field) in candidates {
                let Some((a, content)) = attachment_content(&rt, &id)? else {
                    continue;
                };
                let text = if field == "Headers" {
                    a["Headers"].as_str().unwrap_or_default().to_string()
                } else {
                    String::from_utf8_lossy(&content).into_owned()
                };
                if !mentions(&text, e) {
                    continue;
                }
                if let Some(ticket) =
                    ticket_of_transaction(&rt, &tx)?.and_then(|t| t.parse::<u64>().ok())
                {
                    tickets.entry(ticket).or_insert_with(|| {
                        ("a message mentions the person".into(), Role::Mentioned)
                    });
                }
            }
        }
        for (id, (why, mut role)) in tickets {
            let Some(t) = rt.get(&format!("/ticket/{id}")).json_opt::<Value>()? else {
                continue;
            };
            // A ticket with other requestors is theirs too.
            if role == Role::Owner && members(&t, "Requestor").len() > 1 {
                role = Role::Participant;
            }
            let status = t["Status"].as_str().unwrap_or("unknown");
            let stored = if status == "deleted" {
                ", still stored in RT"
            } else {
                ""
            };
            let mut l = Located::new(
                RecordRef::new(TICKET, id.to_string()),
                format!("ticket, {why}, status {status}{stored}"),
            )
            .role(role);
            if let Some(at) = t["Created"].as_str().and_then(parse_iso8601) {
                l = l.created_at(at);
            }
            found.push(l);
        }
        Ok(found)
    }

    fn export(refs: Vec<RecordRef>) -> Result<Vec<Exported>, ConnectorError> {
        let rt = api()?;
        let mut out = Vec::new();
        for r in refs {
            let exported = match r.kind.as_str() {
                USER => export_user(&rt, r)?,
                TICKET => export_ticket(&rt, r)?,
                other => return Err(ConnectorError::unknown_kind(other)),
            };
            out.extend(exported);
        }
        Ok(out)
    }

    fn read_attachment(
        reference: RecordRef,
        name: String,
        offset: u64,
        max_len: u32,
    ) -> Result<Vec<u8>, ConnectorError> {
        let key = format!("{}/{}/{name}", reference.kind, reference.id);
        let cached = CONTENT.with(|c| {
            c.borrow()
                .as_ref()
                .filter(|(k, _)| *k == key)
                .map(|(_, bytes)| window(bytes, offset, max_len))
        });
        if let Some(bytes) = cached {
            return Ok(bytes);
        }
        let id = name
            .split_once('-')
            .map(|(id, _)| id)
            .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()));
        let (TICKET, Some(id)) = (reference.kind.as_str(), id) else {
            return Err(ConnectorError::Invalid(format!(
                "no attachment `{name}` on this record"
            )));
        };
        let rt = api()?;
        let Some((a, content)) = attachment_content(&rt, id)? else {
            return Err(ConnectorError::Invalid(
                "the attachment no longer exists".into(),
            ));
        };
        // It must belong to this ticket: names come from `export`, but the
        // check is cheap and keeps a wrong name from reading elsewhere.
        let tx = a["TransactionId"]["id"]
            .as_str()
            .map(String::from)
            .or_else(|| id_of(&a["TransactionId"]))
            .or_else(|| a["TransactionId"].as_str().map(String::from));
        let owner = match tx {
            Some(tx) => ticket_of_transaction(&rt, &tx)?,
            None => None,
        };
        if owner.as_deref() != Some(reference.id.as_str()) {
            return Err(ConnectorError::Invalid(format!(
                "no attachment `{name}` on this record"
            )));
        }
        let bytes = window(&content, offset, max_len);
        // The host reads one attachment from one instance, chunk after
        // chunk: RT hands the whole content in one JSON answer, so it is
        // kept for the next chunks rather than fetched again.
        CONTENT.with(|c| *c.borrow_mut() = Some((key, content)));
        Ok(bytes)
    }

    fn rectify(reference: RecordRef, changes: Vec<Change>) -> Result<Outcome, ConnectorError> {
        if reference.kind == TICKET {
            return Err(ConnectorError::NotSupported(
                "a ticket's messages cannot be corrected in RT; add a comment on the ticket with the correction".into(),
            ));
        }
        if reference.kind != USER {
            return Err(ConnectorError::unknown_kind(&reference.kind));
        }
        let mut update = serde_json::Map::new();
        for c in &changes {
            if !USER_FIELDS.contains(&c.field.as_str()) || c.field == "Name" {
                return Err(ConnectorError::Invalid(format!(
                    "RT users have no correctable field `{}`",
                    c.field
                )));
            }
            update.insert(
                c.field.clone(),
                json!(c.new_value.clone().unwrap_or_default()),
            );
        }
        let rt = api()?;
        let path = format!("/user/{}", reference.id);
        if rt.get(&path).json_opt::<Value>()?.is_none() {
            return Ok(Outcome::not_found(reference));
        }
        rt.put(&path).json_body(&Value::Object(update))?.send()?;
        let Some(now) = rt.get(&path).json_opt::<Value>()? else {
            return Ok(Outcome::not_found(reference));
        };
        for c in &changes {
            let stored = now[c.field.as_str()].as_str().unwrap_or_default();
            if stored != c.new_value.as_deref().unwrap_or_default() {
                return Err(ConnectorError::Unavailable(format!(
                    "RT did not store the new value of `{}`",
                    c.field
                )));
            }
        }
        Ok(Outcome::retained(
            reference,
            "corrected; RT keeps the previous value in the user's history, readable by RT's staff, until an administrator shreds the user",
        ))
    }

    fn erase(refs: Vec<RecordRef>, mode: EraseMode) -> Result<Vec<Outcome>, ConnectorError> {
        if let Some(r) = refs.iter().find(|r| r.kind != USER && r.kind != TICKET) {
            return Err(ConnectorError::unknown_kind(&r.kind));
        }
        let tickets: Vec<&str> = refs
            .iter()
            .filter(|r| r.kind == TICKET)
            .map(|r| r.id.as_str())
            .collect();
        let users: Vec<&str> = refs
            .iter()
            .filter(|r| r.kind == USER)
            .map(|r| r.id.as_str())
            .collect();
        if let Some(bad) = tickets
            .iter()
            .chain(&users)
            .find(|id| id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(ConnectorError::Invalid(format!(
                "`{bad}` is not an RT record id"
            )));
        }
        let rt = api()?;
        if matches!(mode, EraseMode::Delete) || !tickets.is_empty() {
            return shredder_task(&rt, &tickets, &users);
        }
        // Anonymise users in place: their tickets stay.
        let mut out = Vec::new();
        for id in users {
            let path = format!("/user/{id}");
            let reference = RecordRef::new(USER, id);
            if rt.get(&path).json_opt::<Value>()?.is_none() {
                out.push(Outcome::not_found(reference));
                continue;
            }
            let mut blank = serde_json::Map::new();
            for f in USER_FIELDS {
                blank.insert(f.into(), json!(""));
            }
            blank.insert("Name".into(), json!(format!("anonymised-{id}")));
            blank.insert("Comments".into(), json!(""));
            blank.insert("Signature".into(), json!(""));
            rt.put(&path).json_body(&Value::Object(blank))?.send()?;
            let Some(now) = rt.get(&path).json_opt::<Value>()? else {
                out.push(Outcome::not_found(reference));
                continue;
            };
            if let Some(f) = USER_FIELDS
                .iter()
                .filter(|f| **f != "Name")
                .find(|f| !now[**f].as_str().unwrap_or_default().is_empty())
            {
                return Err(ConnectorError::Unavailable(format!(
                    "RT kept the user's `{f}` after anonymising"
                )));
            }
            out.push(Outcome::retained(
                reference,
                "anonymised in place; RT's history of the user still holds the previous values until an administrator shreds the user",
            ));
        }
        Ok(out)
    }

    fn detach(subject: Subject, refs: Vec<RecordRef>) -> Result<Vec<Outcome>, ConnectorError> {
        let rt = api()?;
        // The person's RT user names, as role members are listed.
        let mut names = Vec::new();
        for (id, _) in users_of(&rt, &subject.emails)? {
            if let Some(u) = rt.get(&format!("/user/{id}")).json_opt::<Value>()?
                && let Some(n) = u["Name"].as_str()
            {
                names.push(n.to_lowercase());
            }
        }
        let hers = |m: &str| names.iter().any(|n| *n == m.to_lowercase());
        let mut out = Vec::new();
        for r in refs {
            if r.kind != TICKET {
                return Err(ConnectorError::Invalid(format!(
                    "only tickets are shared; `{}` records are not",
                    r.kind
                )));
            }
            if r.id.is_empty() || !r.id.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ConnectorError::Invalid(format!(
                    "`{}` is not an RT ticket id",
                    r.id
                )));
            }
            let path = format!("/ticket/{}", r.id);
            let Some(t) = rt.get(&path).json_opt::<Value>()? else {
                out.push(Outcome::not_found(r));
                continue;
            };
            let mut update = serde_json::Map::new();
            let mut sole_requestor = false;
            for (role, _) in ROLES {
                let all = members(&t, role);
                let others: Vec<&str> = all.iter().copied().filter(|m| !hers(m)).collect();
                if others.len() == all.len() {
                    continue;
                }
                if role == "Requestor" && others.is_empty() {
                    sole_requestor = true;
                    break;
                }
                update.insert(role.into(), json!(others));
            }
            if sole_requestor {
                out.push(Outcome::retained(
                    r,
                    "the person is the ticket's only requestor: it is theirs, not shared",
                ));
                continue;
            }
            if update.is_empty() {
                // Not (or no longer) a party to it.
                out.push(Outcome::done(r));
                continue;
            }
            rt.put(&path).json_body(&Value::Object(update))?.send()?;
            let Some(now) = rt.get(&path).json_opt::<Value>()? else {
                out.push(Outcome::not_found(r));
                continue;
            };
            if ROLES
                .iter()
                .any(|(role, _)| members(&now, role).iter().any(|m| hers(m)))
            {
                return Err(ConnectorError::Unavailable(format!(
                    "RT still lists the person on ticket {}",
                    r.id
                )));
            }
            out.push(Outcome::done(r));
        }
        Ok(out)
    }

    fn restrict(
        subject: Subject,
        scope: Vec<String>,
        on: bool,
    ) -> Result<Vec<Outcome>, ConnectorError> {
        let rt = api()?;
        let everything = scope.is_empty() || scope.iter().any(|s| s == "all");
        let mut out = Vec::new();
        for (id, _) in users_of(&rt, &subject.emails)? {
            if !everything {
                out.push(Outcome::retained(
                    RecordRef::new(USER, id),
                    format!(
                        "RT can only disable the whole user, which would stop all processing, not only {}: nothing was changed in RT for this scope",
                        scope.join(", ")
                    ),
                ));
                continue;
            }
            let path = format!("/user/{id}");
            rt.put(&path)
                .json_body(&json!({"Disabled": if on { 1 } else { 0 }}))?
                .send()?;
            let now: Value = rt.get(&path).json()?;
            let disabled = now["Disabled"] == 1 || now["Disabled"].as_str() == Some("1");
            if disabled != on {
                return Err(ConnectorError::Unavailable(
                    "RT did not change the user's Disabled flag".into(),
                ));
            }
            out.push(Outcome::done(RecordRef::new(USER, id)));
        }
        Ok(out)
    }
}

thread_local! {
    /// The attachment being read (key, content): see `read_attachment`.
    static CONTENT: RefCell<Option<(String, Vec<u8>)>> = const { RefCell::new(None) };
}

fn window(bytes: &[u8], offset: u64, max_len: u32) -> Vec<u8> {
    let start = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    let end = start.saturating_add(max_len as usize).min(bytes.len());
    bytes[start..end].to_vec()
}

/// What an RT administrator runs to remove the records for good, as a
/// manual task: one step per command, exactly as it is run, tickets first.
/// Each ticket is named by its id and its requestor's user id: RT on SQLite
/// gives a shredded ticket's id to the next ticket, and a command run late
/// must then match nothing rather than someone else's ticket. (The
/// creation time would do too, but TicketSQL reads times in the server's
/// time zone, which a connector does not know.)
fn shredder_task(
    rt: &Client,
    tickets: &[&str],
    users: &[&str],
) -> Result<Vec<Outcome>, ConnectorError> {
    let mut records = Vec::new();
    let mut guarded = Vec::new();
    for id in tickets {
        let Some(t) = rt.get(&format!("/ticket/{id}")).json_opt::<Value>()? else {
            continue;
        };
        let mut requestors = Vec::new();
        for name in members(&t, "Requestor") {
            let path = format!("/user/{}", oubli_plugin::http::percent_encode(name));
            if let Some(u) = rt.get(&path).json_opt::<Value>()?
                && let Some(uid) = id_of(&u)
            {
                requestors.push(format!("Requestor.id = {uid}"));
            }
        }
        if requestors.is_empty() {
            return Err(ConnectorError::Internal(format!(
                "RT lists no requestor on ticket {id}, which was found as the person's"
            )));
        }
        guarded.push(format!("(id = {id} AND {})", requestors.join(" AND ")));
        records.push(RecordRef::new(TICKET, *id));
    }
    let mut steps = Vec::new();
    for chunk in guarded.chunks(50) {
        steps.push(format!(
            "rt-shredder --force --plugin 'Tickets=query,{};limit,{}'",
            chunk.join(" OR "),
            chunk.len()
        ));
    }
    for id in users {
        if rt
            .get(&format!("/user/{id}"))
            .json_opt::<Value>()?
            .is_none()
        {
            continue;
        }
        steps.push(format!("rt-shredder --force --plugin 'Objects=User,{id}'"));
        records.push(RecordRef::new(USER, *id));
    }
    if records.is_empty() {
        return Ok(tickets
            .iter()
            .map(|id| Outcome::not_found(RecordRef::new(TICKET, *id)))
            .chain(
                users
                    .iter()
                    .map(|id| Outcome::not_found(RecordRef::new(USER, *id))),
            )
            .collect());
    }
    steps.push(
        "Once the erasure is verified, delete the SQL dump files the commands wrote (each \
         names what it removed, so it holds the same personal data)"
            .into(),
    );
    Err(ConnectorError::manual(
        "RT's REST API cannot remove records: deleting a ticket only sets its status to `deleted` \
         and a user can only be disabled; both stay readable. An RT administrator removes them for \
         good on the RT server with RT's Shredder, tickets first (run as RT's user, with RT's \
         configuration):",
        steps,
        records,
    ))
}

/// The members of a ticket's role (their RT user names).
fn members<'a>(t: &'a Value, role: &str) -> Vec<&'a str> {
    t[role]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["id"].as_str())
        .collect()
}

fn export_user(rt: &Client, r: RecordRef) -> Result<Option<Exported>, ConnectorError> {
    let Some(u) = rt.get(&format!("/user/{}", r.id)).json_opt::<Value>()? else {
        return Ok(None);
    };
    let mut e = Exported::new(r.clone());
    for f in USER_FIELDS.iter().chain(&USER_NOTES) {
        let v = u[*f].as_str().unwrap_or_default();
        if !v.is_empty() {
            e = e.field(*f, "contact details", v);
        }
    }
    let cf_names = custom_fields(&u);
    for (name, values) in &cf_names.values {
        e = e.field(format!("CF.{name}"), "contact details", values.join(", "));
    }
    let history = all_items(
        rt,
        &format!("/user/{}/history", r.id),
        &[("fields", "Type,Field,OldValue,NewValue,Created")],
        None,
    )?;
    // Every change of a value RT kept: its own fields and custom fields.
    for t in history
        .iter()
        .filter(|t| t["Type"] == "Set" || t["Type"] == "CustomField")
    {
        let field = t["Field"].as_str().unwrap_or_default();
        let field = if t["Type"] == "CustomField" {
            match cf_names.by_id.get(field) {
                Some(name) => format!("CF.{name}"),
                None => format!("custom field {field}"),
            }
        } else {
            field.to_string()
        };
        e = e.field(
            "history",
            "contact details",
            format!(
                "{}: {field} changed from {:?} to {:?}",
                t["Created"].as_str().unwrap_or_default(),
                t["OldValue"].as_str().unwrap_or_default(),
                t["NewValue"].as_str().unwrap_or_default()
            ),
        );
    }
    Ok(Some(e))
}

fn export_ticket(rt: &Client, r: RecordRef) -> Result<Option<Exported>, ConnectorError> {
    let Some(t) = rt.get(&format!("/ticket/{}", r.id)).json_opt::<Value>()? else {
        return Ok(None);
    };
    let mut e = Exported::new(r.clone());
    for f in ["Subject", "Status"] {
        if let Some(v) = t[f].as_str().filter(|v| !v.is_empty()) {
            e = e.field(f, "correspondence", v);
        }
    }
    // RT gives an unset date as the Unix epoch: `date` leaves those out.
    for f in [
        "Created",
        "Started",
        "Resolved",
        "Due",
        "Told",
        "LastUpdated",
    ] {
        e = e.date(f, "correspondence", t[f].as_str().unwrap_or_default());
    }
    // The queue by its name, as the person would know it.
    if let Some(q) = t["Queue"]["id"].as_str() {
        let name = rt
            .get(&format!("/queue/{q}"))
            .json_opt::<Value>()?
            .and_then(|v| v["Name"].as_str().map(String::from))
            .unwrap_or_else(|| format!("queue {q}"));
        e = e.field("Queue", "correspondence", name);
    }
    for (name, values) in custom_fields(&t).values {
        e = e.field(format!("CF.{name}"), "correspondence", values.join(", "));
    }
    for (role, _) in ROLES {
        let members: Vec<&str> = t[role]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["id"].as_str())
            .collect();
        if !members.is_empty() {
            e = e.field(role, "third-party", members.join(", "));
        }
    }
    let parts = all_items(
        rt,
        &format!("/ticket/{}/attachments", r.id),
        &[(
            "fields",
            "ContentType,Filename,Subject,Created,TransactionId",
        )],
        None,
    )?;
    for p in parts {
        let Some(id) = id_of(&p) else { continue };
        let media = p["ContentType"]
            .as_str()
            .unwrap_or("application/octet-stream");
        let file = p["Filename"].as_str().unwrap_or_default();
        if media.starts_with("multipart/") {
            continue;
        }
        if media == "text/plain" && file.is_empty() {
            if let Some((_, content)) = attachment_content(rt, &id)? {
                e = e.field(
                    "message",
                    "correspondence",
                    format!(
                        "{}: {}",
                        p["Created"].as_str().unwrap_or_default(),
                        String::from_utf8_lossy(&content)
                    ),
                );
            }
            continue;
        }
        let name = if file.is_empty() {
            format!(
                "{id}-message.{}",
                if media == "text/html" { "html" } else { "bin" }
            )
        } else {
            let safe: String = file
                .chars()
                .map(|c| {
                    if c == '/' || c == '\\' || c.is_control() {
                        '_'
                    } else {
                        c
                    }
                })
                .collect();
            format!("{id}-{safe}")
        };
        e = e.attachment(name, media, None);
    }
    Ok(Some(e))
}

oubli_plugin::export!(RequestTracker);
