//! Connector for email over JMAP (RFC 8620 core, RFC 8621 mail): a shared
//! mailbox (support, sales) on any standards-conforming server (Cyrus,
//! Stalwart, Fastmail, ...). Tested against Cyrus IMAP 3.6 in CI.
//!
//! - **session**: the session resource may redirect (`/.well-known/jmap`
//!   answers 301 on Cyrus and Stalwart); the SDK follows same-origin
//!   redirects. Every account the credentials can read with mail is
//!   searched (config `accounts`), and a record's id carries its account
//!   (`account/email`), so two accounts' messages are never confused. Every
//!   session limit is respected: `maxObjectsInGet` for every read,
//!   `maxObjectsInSet` for every destroy, `maxSizeRequest` for every body,
//!   and one method call per request (`maxCallsInRequest` is at least 1). A
//!   request the server refuses as over a limit names the limit.
//! - **locate**: `Email/query` with `from`, `to`, `cc` and `bcc` conditions
//!   ORed for each address, paged. Servers match those conditions loosely
//!   (display names, substrings, stemming), so every hit is confirmed with
//!   `Email/get` against the exact address before it is reported: a sender
//!   named like the person, or `marie-camille.martin@…`, is never touched.
//!   A message is the person's (`owner`) unless someone outside the
//!   organisation's own domains (`own_domains`, and the domains of the
//!   accounts' names) other than the person is a party to it: then it is
//!   shared (`participant`). JMAP cannot take one recipient off a message,
//!   so the host keeps shared mail for an operator to review.
//! - **export**: the parsed headers as fields, and the raw RFC 5322 message
//!   (`message.eml`) as an attachment read through the session's
//!   `downloadUrl`, streamed (Cyrus ignores `Range`; the SDK reads on from
//!   one response across the host's calls).
//! - **erase**: `Email/get` first (an id the server cannot read is
//!   `not-found`, whatever a destroy would answer: Cyrus lists unknown ids
//!   as destroyed), then `Email/set destroy` of the ids that exist, guarded
//!   by `ifInState` (re-read on `stateMismatch`), then `Email/get` again: an
//!   id is `done` only when it can no longer be read. Destroying removes a
//!   message from every mailbox; moving it to Trash is not erasure. Messages
//!   cannot be anonymised: `anonymise` is refused. What the server keeps
//!   after a destroy (Cyrus's delayed expunge) the connector cannot see:
//!   the integrator says it with `expunge_delay`, and the outcome is then
//!   `retained` with that reason.
//! - **sweep** (retention): category `correspondence` by `received`, in
//!   every account searched: `Email/query` with `before` (the cutoff,
//!   rounded up to the server's whole seconds) and `after` (the page's
//!   start), sorted by `receivedAt` ascending, read by position; the
//!   dates come from `Email/get`, and the page is cut exactly (date, then
//!   `account/id`) by the SDK. Records with the same date as the page's
//!   last are all read, so a page never splits a second's messages in an
//!   order the server does not keep.
//!
//! Configuration: `session_url` (e.g. `https://mail.example.com/.well-known/jmap`),
//! `auth` (`bearer`, the default, with the secret `token`; or `basic`, with
//! the secrets `username` and `password`), `accounts` (`all`, the default;
//! `primary`; or account ids separated by commas), `expunge_delay` (unset or
//! `none` when the server expunges at once; otherwise how long it keeps
//! destroyed mail, e.g. `7 days`). The session's `apiUrl` and `downloadUrl`
//! may be relative references; they are resolved against the session URL.

use oubli_plugin::http::{Client, percent_encode, split_url};
use oubli_plugin::prelude::*;
use oubli_plugin::text::{format_iso8601, parse_iso8601};
use serde::Deserialize;
use serde_json::{Value, json};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

const EMAIL: &str = "email";
const CORRESPONDENCE: &str = "correspondence";
const MESSAGE: &str = "message.eml";
const CORE: &str = "urn:ietf:params:jmap:core";
const MAIL: &str = "urn:ietf:params:jmap:mail";
const QUERY_PAGE: usize = 50;
/// Bytes of a request besides its list of ids (`using`, method, arguments).
const REQUEST_OVERHEAD: usize = 1024;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SessionDoc {
    api_url: String,
    download_url: String,
    #[serde(default)]
    accounts: BTreeMap<String, AccountDoc>,
    primary_accounts: BTreeMap<String, String>,
    capabilities: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AccountDoc {
    #[serde(default)]
    name: String,
    #[serde(default)]
    account_capabilities: BTreeMap<String, Value>,
}

/// An open JMAP session.
struct Session {
    api: Client,
    api_path: String,
    download: String,
    session_url: String,
    primary: String,
    /// The accounts to search, primary first.
    accounts: Vec<String>,
    max_get: usize,
    max_set: usize,
    max_size: usize,
    /// The organisation's own mail domains: its addresses are not other
    /// people's (`own_domains`, and the domains of the accounts' names).
    own_domains: BTreeSet<String>,
}

/// A record id: `account/email` (JMAP ids never contain `/`). An id
/// without an account, from before accounts were recorded, is in the
/// primary account.
fn split_id<'a>(id: &'a str, primary: &'a str) -> (&'a str, &'a str) {
    id.split_once('/').unwrap_or((primary, id))
}

fn authenticated(base: &str) -> Result<Client, ConnectorError> {
    let client = Client::new(base)?;
    match config("auth").as_deref().unwrap_or("bearer") {
        "bearer" => Ok(client.bearer(&require_secret("token")?)),
        "basic" => Ok(client.basic(&require_secret("username")?, &require_secret("password")?)),
        _ => Err(ConnectorError::Invalid(
            "configuration `auth` must be `bearer` or `basic`".into(),
        )),
    }
}

impl Session {
    fn open() -> Result<Session, ConnectorError> {
        let session_url = require_config("session_url")?;
        let doc: SessionDoc = authenticated(&session_url)?.get("").json()?;
        let primary = doc.primary_accounts.get(MAIL).cloned().ok_or_else(|| {
            ConnectorError::NotSupported("the JMAP server offers no mail account".into())
        })?;
        let with_mail: Vec<String> = doc
            .accounts
            .iter()
            .filter(|(_, a)| a.account_capabilities.contains_key(MAIL))
            .map(|(id, _)| id.clone())
            .collect();
        let mut accounts = vec![primary.clone()];
        match config("accounts").as_deref().map(str::trim) {
            None | Some("" | "all") => {
                accounts.extend(with_mail.into_iter().filter(|a| *a != primary))
            }
            Some("primary") => {}
            Some(list) => {
                accounts.clear();
                for id in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    if !doc.accounts.contains_key(id) && id != primary {
                        return Err(ConnectorError::Invalid(
                            "an account named in `accounts` is not in the JMAP session".into(),
                        ));
                    }
                    accounts.push(id.to_string());
                }
            }
        }
        let mut own_domains: BTreeSet<String> = config("own_domains")
            .unwrap_or_default()
            .split(',')
            .map(|d| d.trim().trim_start_matches('@').to_lowercase())
            .filter(|d| !d.is_empty())
            .collect();
        own_domains.extend(
            doc.accounts
                .values()
                .filter_map(|a| a.name.rsplit_once('@').map(|(_, d)| d.to_lowercase())),
        );
        let core = doc.capabilities.get(CORE);
        let limit = |key: &str, default: usize| {
            core.and_then(|c| c[key].as_u64())
                .map_or(default, |v| (v as usize).max(1))
        };
        let (origin, api_path) = split_url(&doc.api_url, &session_url).ok_or_else(|| {
            ConnectorError::Internal("the session's apiUrl is not an http(s) URL".into())
        })?;
        Ok(Session {
            api: authenticated(&origin)?,
            api_path,
            download: doc.download_url,
            session_url,
            primary,
            accounts,
            max_get: limit("maxObjectsInGet", 500),
            max_set: limit("maxObjectsInSet", 500),
            max_size: limit("maxSizeRequest", 10_000_000),
            own_domains,
        })
    }

    /// One method call in one request; its arguments, or the method-level
    /// error type. A request-level problem (RFC 8620 §3.6.1) is an error
    /// naming its type, and for `limit` the limit.
    fn call(
        &self,
        account: &str,
        method: &str,
        mut args: Value,
    ) -> Result<Result<Value, String>, ConnectorError> {
        args["accountId"] = json!(account);
        let body = json!({"using": [CORE, MAIL], "methodCalls": [[method, args, "c0"]]});
        let response = self.api.post(&self.api_path).json_body(&body)?.send_any()?;
        if !response.is_success() {
            let problem: Value = response.json().unwrap_or(Value::Null);
            let kind = problem["type"]
                .as_str()
                .and_then(|t| t.strip_prefix("urn:ietf:params:jmap:error:"))
                .map(token);
            return match kind.as_deref() {
                Some("limit") => Err(ConnectorError::Invalid(format!(
                    "{method}: the server refused the request as over its limit `{}`",
                    problem["limit"].as_str().map_or("unnamed".into(), token)
                ))),
                Some(kind) => Err(ConnectorError::Internal(format!(
                    "{method}: the server refused the request: {kind}"
                ))),
                None => response.error_for_status().map(|_| Err(String::new())),
            };
        }
        let answer: Value = response.json()?;
        let response = &answer["methodResponses"][0];
        match response[0].as_str() {
            Some(name) if name == method => Ok(Ok(response[1].clone())),
            Some("error") => Ok(Err(response[1]["type"]
                .as_str()
                .map_or("serverFail".into(), token))),
            _ => Err(ConnectorError::Internal(format!(
                "{method}: the server's answer is not a JMAP response"
            ))),
        }
    }

    fn call_ok(&self, account: &str, method: &str, args: Value) -> Result<Value, ConnectorError> {
        self.call(account, method, args)?
            .map_err(|kind| ConnectorError::Internal(format!("{method} failed: {kind}")))
    }

    /// `ids` cut into batches of at most `max_objects` whose request stays
    /// under `maxSizeRequest`.
    fn batches<'a>(&self, ids: &'a [String], max_objects: usize) -> Vec<&'a [String]> {
        let mut out = Vec::new();
        let mut start = 0;
        while start < ids.len() {
            let mut end = start;
            let mut size = REQUEST_OVERHEAD;
            while end < ids.len() && end - start < max_objects {
                // The id, its quotes and comma, and room for escapes.
                let more = ids[end].len() * 2 + 3;
                if end > start && size + more > self.max_size {
                    break;
                }
                size += more;
                end += 1;
            }
            out.push(&ids[start..end]);
            start = end;
        }
        out
    }

    /// `Email/get` of `ids` in one account, in batches the server takes:
    /// (state, found).
    fn get(
        &self,
        account: &str,
        ids: &[String],
        properties: &[&str],
    ) -> Result<(String, Vec<Value>), ConnectorError> {
        let mut state = String::new();
        let mut list = Vec::new();
        for batch in self.batches(ids, self.max_get) {
            let r = self.call_ok(
                account,
                "Email/get",
                json!({"ids": batch, "properties": properties}),
            )?;
            state = r["state"].as_str().unwrap_or_default().to_string();
            if let Some(found) = r["list"].as_array() {
                list.extend(found.iter().cloned());
            }
        }
        Ok((state, list))
    }

    /// The references, by account (in the order the session lists them).
    fn by_account(
        &self,
        refs: &[RecordRef],
    ) -> Result<BTreeMap<String, Vec<String>>, ConnectorError> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for r in refs {
            if r.kind != EMAIL {
                return Err(ConnectorError::unknown_kind(&r.kind));
            }
            let (account, id) = split_id(&r.id, &self.primary);
            out.entry(account.to_string())
                .or_default()
                .push(id.to_string());
        }
        Ok(out)
    }
}

/// Server text reduced to a token (letters, digits, `-`, `_`, `:`), at
/// most 64 characters: it goes into error messages.
fn token(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':'))
        .take(64)
        .collect()
}

thread_local! {
    /// The download of the attachment being read: the host reads one
    /// attachment from one instance, call after call, so the session and
    /// the blob's URL are found once.
    static DOWNLOAD: RefCell<Option<(String, Client, String)>> = const { RefCell::new(None) };
}

fn addresses(email: &Value, field: &str) -> Vec<String> {
    email[field]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["email"].as_str().map(str::to_lowercase))
        .collect()
}

const ADDRESS_FIELDS: [(&str, &str); 6] = [
    ("from", "sent by the person"),
    ("sender", "sent by the person"),
    ("replyTo", "replies go to the person"),
    ("to", "addressed to the person"),
    ("cc", "the person in copy"),
    ("bcc", "the person in blind copy"),
];

struct JmapMail;

/// What the integrator says the server keeps after a destroy, if anything.
fn expunge_delay() -> Option<String> {
    config("expunge_delay")
        .map(|d| d.trim().to_string())
        .filter(|d| !d.is_empty() && !matches!(d.as_str(), "none" | "0" | "immediate"))
}

impl Connector for JmapMail {
    fn sweep(query: SweepQuery) -> Result<Vec<Dated>, ConnectorError> {
        query.check(&Self::manifest())?;
        if query.limit == 0 {
            return Ok(Vec::new());
        }
        let s = Session::open()?;
        let mut found = Vec::new();
        for account in &s.accounts {
            found.extend(sweep_in(&s, account, &query)?);
        }
        Ok(query.page(found))
    }

    fn manifest() -> Manifest {
        let key = |name: &str, description: &str, required: bool| ConfigKey {
            name: name.into(),
            description: description.into(),
            required,
        };
        Manifest {
            id: "jmap-mail".into(),
            name: "Email (JMAP)".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            wit_version: WIT_VERSION.into(),
            system_kind: SystemKind::Email,
            operations: vec![
                Operation::Locate,
                Operation::Export,
                Operation::ReadAttachment,
                Operation::Erase,
                Operation::Sweep,
            ],
            categories: vec![DataCategory {
                name: CORRESPONDENCE.into(),
                description: "Email messages sent by, to or copying the person, with their headers"
                    .into(),
                purposes: vec!["customer service".into()],
                retention: "2 years after the last message; an erased message is removed from \
                    the mailbox at once, and the server may keep deleted mail for its expunge \
                    delay (see expunge_delay)"
                    .into(),
                recipients: vec![],
                portable: true,
            }],
            outbound_hosts: vec!["*".into()],
            config_keys: vec![
                key(
                    "session_url",
                    "The JMAP session resource, e.g. https://mail.example.com/.well-known/jmap",
                    true,
                ),
                key(
                    "auth",
                    "`bearer` (secret `token`, the default) or `basic` (secrets `username` and `password`)",
                    false,
                ),
                key(
                    "accounts",
                    "Which accounts to search: `all` the credentials can read (the default), `primary`, or account ids separated by commas",
                    false,
                ),
                key(
                    "own_domains",
                    "The organisation's own mail domains, separated by commas (the accounts' own domains count already): a message with anyone outside them besides the person is shared with other people, and kept for review rather than destroyed. Unset, and with accounts named without a domain, every message is taken as the person's",
                    false,
                ),
                key(
                    "expunge_delay",
                    "How long the server keeps destroyed mail before purging it (e.g. `7 days`); unset or `none` when it purges at once",
                    false,
                ),
            ],
            secrets: vec!["token".into(), "username".into(), "password".into()],
            retention: vec![RetentionFacts::new(
                CORRESPONDENCE,
                EMAIL,
                &["received"],
                Deletion::Final,
            )],
        }
    }

    fn locate(subject: Subject) -> Result<Vec<Located>, ConnectorError> {
        if subject.emails.is_empty() {
            return Ok(Vec::new());
        }
        let s = Session::open()?;
        let wanted: BTreeSet<String> = subject.emails.iter().map(|e| e.to_lowercase()).collect();
        let mut found = Vec::new();
        for account in &s.accounts {
            found.extend(locate_in(&s, account, &subject.emails, &wanted)?);
        }
        Ok(found)
    }

    fn export(refs: Vec<RecordRef>) -> Result<Vec<Exported>, ConnectorError> {
        let s = Session::open()?;
        let mut out = Vec::new();
        for (account, ids) in s.by_account(&refs)? {
            let (_, emails) = s.get(
                &account,
                &ids,
                &["from", "to", "cc", "bcc", "subject", "receivedAt", "size"],
            )?;
            for m in emails {
                let Some(id) = m["id"].as_str() else { continue };
                let list = |f: &str| {
                    m[f].as_array()
                        .into_iter()
                        .flatten()
                        .map(|a| match (a["name"].as_str(), a["email"].as_str()) {
                            (Some(n), Some(e)) => format!("{n} <{e}>"),
                            (None, Some(e)) => e.to_string(),
                            _ => String::new(),
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                out.push(
                    Exported::new(RecordRef::new(EMAIL, format!("{account}/{id}")))
                        .date(
                            "receivedAt",
                            "correspondence",
                            m["receivedAt"].as_str().unwrap_or(""),
                        )
                        .field("from", "correspondence", list("from"))
                        .field("to", "correspondence", list("to"))
                        .field("cc", "correspondence", list("cc"))
                        .field("bcc", "correspondence", list("bcc"))
                        .field(
                            "subject",
                            "correspondence",
                            m["subject"].as_str().unwrap_or(""),
                        )
                        .attachment(MESSAGE, "message/rfc822", m["size"].as_u64()),
                );
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
        if reference.kind != EMAIL || name != MESSAGE {
            return Err(ConnectorError::Invalid(format!(
                "no attachment `{name}` on this record"
            )));
        }
        let cached = DOWNLOAD.with(|d| {
            d.borrow()
                .as_ref()
                .filter(|(id, _, _)| *id == reference.id)
                .map(|(_, client, path)| (client.clone(), path.clone()))
        });
        let (client, path) = match cached {
            Some(c) => c,
            None => {
                let s = Session::open()?;
                let (account, id) = split_id(&reference.id, &s.primary);
                let (_, found) = s.get(account, &[id.to_string()], &["blobId"])?;
                let Some(blob) = found.first().and_then(|m| m["blobId"].as_str()) else {
                    return Err(ConnectorError::Invalid(
                        "the message no longer exists".into(),
                    ));
                };
                let url = s
                    .download
                    .replace("{accountId}", &percent_encode(account))
                    .replace("{blobId}", &percent_encode(blob))
                    .replace("{name}", MESSAGE)
                    .replace("{type}", &percent_encode("message/rfc822"));
                let (origin, path) = split_url(&url, &s.session_url).ok_or_else(|| {
                    ConnectorError::Internal(
                        "the session's downloadUrl is not an http(s) URL".into(),
                    )
                })?;
                let client = authenticated(&origin)?;
                DOWNLOAD.with(|d| {
                    *d.borrow_mut() = Some((reference.id.clone(), client.clone(), path.clone()))
                });
                (client, path)
            }
        };
        client.get(&path).read_range(offset, max_len)
    }

    fn erase(refs: Vec<RecordRef>, mode: EraseMode) -> Result<Vec<Outcome>, ConnectorError> {
        if matches!(mode, EraseMode::Anonymise) {
            return Err(ConnectorError::NotSupported(
                "email messages cannot be anonymised in place; erase them with delete".into(),
            ));
        }
        let s = Session::open()?;
        let kept = expunge_delay();
        let mut outcomes = Vec::new();
        for (account, ids) in s.by_account(&refs)? {
            let reference = |id: &str| RecordRef::new(EMAIL, format!("{account}/{id}"));
            for batch in s.batches(&ids, s.max_set) {
                let mut attempt = 0;
                let (existing, result) = loop {
                    // What exists now, read in batches the server takes: an
                    // id it cannot read is not found, whatever a destroy
                    // would answer for it.
                    let (state, found) = s.get(&account, batch, &["id"])?;
                    let existing: Vec<String> = found
                        .iter()
                        .filter_map(|m| m["id"].as_str().map(String::from))
                        .collect();
                    if existing.is_empty() {
                        break (existing, Value::Null);
                    }
                    match s.call(
                        &account,
                        "Email/set",
                        json!({"ifInState": state, "destroy": existing}),
                    )? {
                        Ok(r) => break (existing, r),
                        Err(kind) if kind == "stateMismatch" && attempt < 3 => attempt += 1,
                        Err(kind) => {
                            return Err(ConnectorError::Unavailable(format!(
                                "Email/set destroy failed: {kind}"
                            )));
                        }
                    }
                };
                if let Some((_, e)) = result["notDestroyed"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .find(|(_, e)| e["type"].as_str() != Some("notFound"))
                {
                    return Err(ConnectorError::Unavailable(format!(
                        "the server refused to destroy a message: {}",
                        e["type"].as_str().map_or("unknown".into(), token)
                    )));
                }
                // Read back: `done` only for what can no longer be read.
                let (_, still) = if existing.is_empty() {
                    (String::new(), Vec::new())
                } else {
                    s.get(&account, &existing, &["id"])?
                };
                if !still.is_empty() {
                    return Err(ConnectorError::Unavailable(format!(
                        "{} message(s) the server reported destroyed can still be read",
                        still.len()
                    )));
                }
                let existing: BTreeSet<&str> = existing.iter().map(String::as_str).collect();
                for id in batch {
                    let r = reference(id);
                    outcomes.push(match (existing.contains(id.as_str()), &kept) {
                        (false, _) => Outcome::not_found(r),
                        (true, None) => Outcome::done(r),
                        (true, Some(delay)) => Outcome::retained(
                            r,
                            format!(
                                "removed from the mailbox; the server keeps deleted mail for its expunge delay ({delay})"
                            ),
                        ),
                    });
                }
            }
        }
        Ok(outcomes)
    }
}

/// One account's messages dated before the query's cutoff and from its
/// start on, oldest first: at least `query.limit` past its key when there
/// are that many, and every message sharing the last one's date.
fn sweep_in(s: &Session, account: &str, query: &SweepQuery) -> Result<Vec<Dated>, ConnectorError> {
    let mut filter = json!({"before": format_iso8601(query.cutoff, true)});
    if let Some(after) = &query.after {
        filter["after"] = json!(format_iso8601(after.at, false));
    }
    let mut found: Vec<Dated> = Vec::new();
    let mut position = 0usize;
    loop {
        let r = s.call_ok(
            account,
            "Email/query",
            json!({"filter": filter, "position": position, "limit": QUERY_PAGE,
                   "sort": [{"property": "receivedAt", "isAscending": true}]}),
        )?;
        let ids: Vec<String> = r["ids"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(String::from))
            .collect();
        if ids.is_empty() {
            return Ok(found);
        }
        position += ids.len();
        let (_, emails) = s.get(account, &ids, &["receivedAt", "size"])?;
        for m in emails {
            let (Some(id), Some(at)) = (
                m["id"].as_str(),
                m["receivedAt"].as_str().and_then(parse_iso8601),
            ) else {
                continue;
            };
            let kib = m["size"].as_u64().unwrap_or(0).div_ceil(1024);
            let id = format!("{account}/{id}");
            if at < query.cutoff && query.is_after(at, &id) {
                found.push(Dated::new(
                    RecordRef::new(EMAIL, id),
                    at,
                    format!("email, {kib} KiB"),
                ));
            }
        }
        // The query is sorted by date, so a later page starts past it.
        if query.complete(&found) {
            return Ok(found);
        }
    }
}

/// Find the person's messages in one account.
fn locate_in(
    s: &Session,
    account: &str,
    emails: &[String],
    wanted: &BTreeSet<String>,
) -> Result<Vec<Located>, ConnectorError> {
    let mut candidates = BTreeSet::new();
    for e in emails {
        let filter = json!({"operator": "OR", "conditions": [
            {"from": e}, {"to": e}, {"cc": e}, {"bcc": e},
        ]});
        let mut position = 0usize;
        loop {
            let r = s.call_ok(
                account,
                "Email/query",
                json!({"filter": filter, "position": position, "limit": QUERY_PAGE, "sort": [{"property": "receivedAt", "isAscending": false}]}),
            )?;
            let ids: Vec<String> = r["ids"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(String::from))
                .collect();
            if ids.is_empty() {
                break;
            }
            position += ids.len();
            candidates.extend(ids);
        }
    }
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let mailboxes = s.call_ok(
        account,
        "Mailbox/get",
        json!({"ids": null, "properties": ["name", "role"]}),
    )?;
    let mailbox_name: BTreeMap<String, String> = mailboxes["list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| {
            Some((
                m["id"].as_str()?.to_string(),
                m["name"].as_str()?.to_string(),
            ))
        })
        .collect();
    let ids: Vec<String> = candidates.into_iter().collect();
    let props = [
        "from",
        "sender",
        "replyTo",
        "to",
        "cc",
        "bcc",
        "mailboxIds",
        "size",
        "receivedAt",
    ];
    let (_, emails) = s.get(account, &ids, &props)?;
    let elsewhere = if account == s.primary {
        ""
    } else {
        ", in another account"
    };
    let mut found = Vec::new();
    for m in emails {
        // Confirm by exact address: query hits are only candidates.
        let Some((_, role)) = ADDRESS_FIELDS
            .iter()
            .find(|(f, _)| addresses(&m, f).iter().any(|a| wanted.contains(a)))
        else {
            continue;
        };
        let Some(id) = m["id"].as_str() else { continue };
        let boxes: Vec<&str> = m["mailboxIds"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(_, v)| **v == true)
            .map(|(k, _)| mailbox_name.get(k).map_or(k.as_str(), String::as_str))
            .collect();
        let kib = m["size"].as_u64().unwrap_or(0).div_ceil(1024);
        // Whose mail it is: shared when anyone outside the organisation
        // other than the person is a party (a message that copies others).
        let others = ADDRESS_FIELDS
            .iter()
            .flat_map(|(f, _)| addresses(&m, f))
            .filter(|a| !wanted.contains(a))
            .filter(|a| {
                a.rsplit_once('@')
                    .is_none_or(|(_, d)| !s.own_domains.contains(d))
            })
            .collect::<BTreeSet<_>>()
            .len();
        let (part, shared) = if s.own_domains.is_empty() || others == 0 {
            (Role::Owner, String::new())
        } else {
            (
                Role::Participant,
                format!(", shared with {others} other people"),
            )
        };
        let mut l = Located::new(
            RecordRef::new(EMAIL, format!("{account}/{id}")),
            format!(
                "email, {role}{shared}, {kib} KiB, in {}{elsewhere}",
                boxes.join(" and ")
            ),
        )
        .role(part);
        if let Some(at) = m["receivedAt"].as_str().and_then(parse_iso8601) {
            l = l.created_at(at);
        }
        found.push(l);
    }
    Ok(found)
}

oubli_plugin::export!(JmapMail);
