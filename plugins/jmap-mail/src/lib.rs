//! Connector for email over JMAP (RFC 8620 core, RFC 8621 mail): a shared
//! mailbox (support, sales) on any standards-conforming server (Stalwart,
//! Fastmail, Cyrus, ...).
//!
//! - **locate**: `Email/query` with `from`, `to`, `cc` and `bcc` conditions
//!   ORed for each address, paged. Servers match those conditions loosely
//!   (display names, substrings, stemming), so every hit is confirmed with
//!   `Email/get` against the exact address before it is reported: a sender
//!   named like the person, or `marie-camille.martin@…`, is never touched.
//! - **export**: the parsed headers as fields, and the raw RFC 5322 message
//!   (`message.eml`) as an attachment read through the session's
//!   `downloadUrl`.
//! - **erase**: `Email/set destroy`, in batches of the session's
//!   `maxObjectsInSet`, guarded by `ifInState` (re-read on `stateMismatch`).
//!   Destroying removes a message from every mailbox; moving it to Trash is
//!   not erasure. Messages cannot be anonymised: `anonymise` is refused.
//!
//! Configuration: `session_url` (e.g. `https://mail.example.com/.well-known/jmap`).
//! Secret: `token` (bearer). The session's `apiUrl` and `downloadUrl` may be
//! relative references; they are resolved against the session URL.

use oubli_plugin::http::{Client, percent_encode, split_url};
use oubli_plugin::prelude::*;
use oubli_plugin::text::parse_iso8601;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

const EMAIL: &str = "email";
const MESSAGE: &str = "message.eml";
const CORE: &str = "urn:ietf:params:jmap:core";
const MAIL: &str = "urn:ietf:params:jmap:mail";
const QUERY_PAGE: usize = 50;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SessionDoc {
    api_url: String,
    download_url: String,
    primary_accounts: BTreeMap<String, String>,
    capabilities: BTreeMap<String, Value>,
}

/// An open JMAP session.
struct Session {
    api: Client,
    api_path: String,
    download: String,
    session_url: String,
    token: String,
    account: String,
    max_get: usize,
    max_set: usize,
}

impl Session {
    fn open() -> Result<Session, ConnectorError> {
        let session_url = require_config("session_url")?;
        let token = require_secret("token")?;
        let doc: SessionDoc = Client::new(&session_url)?.bearer(&token).get("").json()?;
        let account = doc.primary_accounts.get(MAIL).cloned().ok_or_else(|| {
            ConnectorError::NotSupported("the JMAP server offers no mail account".into())
        })?;
        let core = doc.capabilities.get(CORE);
        let limit = |key: &str, default: usize| {
            core.and_then(|c| c[key].as_u64())
                .map_or(default, |v| (v as usize).max(1))
        };
        let (origin, api_path) = split_url(&doc.api_url, &session_url).ok_or_else(|| {
            ConnectorError::Internal("the session's apiUrl is not an http(s) URL".into())
        })?;
        Ok(Session {
            api: Client::new(&origin)?.bearer(&token),
            api_path,
            download: doc.download_url,
            session_url,
            token,
            account,
            max_get: limit("maxObjectsInGet", 500),
            max_set: limit("maxObjectsInSet", 500),
        })
    }

    /// One method call; its arguments, or the method-level error type.
    fn call(&self, method: &str, mut args: Value) -> Result<Result<Value, String>, ConnectorError> {
        args["accountId"] = json!(self.account);
        let body = json!({"using": [CORE, MAIL], "methodCalls": [[method, args, "c0"]]});
        let answer: Value = self.api.post(&self.api_path).json_body(&body)?.json()?;
        let response = &answer["methodResponses"][0];
        match response[0].as_str() {
            Some(name) if name == method => Ok(Ok(response[1].clone())),
            Some("error") => Ok(Err(response[1]["type"]
                .as_str()
                .unwrap_or("serverFail")
                .to_string())),
            _ => Err(ConnectorError::Internal(format!(
                "{method}: the server's answer is not a JMAP response"
            ))),
        }
    }

    fn call_ok(&self, method: &str, args: Value) -> Result<Value, ConnectorError> {
        self.call(method, args)?
            .map_err(|kind| ConnectorError::Internal(format!("{method} failed: {kind}")))
    }

    /// `Email/get` of `ids` in batches of `maxObjectsInGet`: (state, found).
    fn get(
        &self,
        ids: &[String],
        properties: &[&str],
    ) -> Result<(String, Vec<Value>), ConnectorError> {
        let mut state = String::new();
        let mut list = Vec::new();
        for batch in ids.chunks(self.max_get) {
            let r = self.call_ok("Email/get", json!({"ids": batch, "properties": properties}))?;
            state = r["state"].as_str().unwrap_or_default().to_string();
            if let Some(found) = r["list"].as_array() {
                list.extend(found.iter().cloned());
            }
        }
        Ok((state, list))
    }
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

impl Connector for JmapMail {
    fn manifest() -> Manifest {
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
            ],
            categories: vec![DataCategory {
                name: "correspondence".into(),
                description: "Email messages sent by, to or copying the person, with their headers"
                    .into(),
                purposes: vec!["customer service".into()],
                retention: "2 years after the last message".into(),
                recipients: vec![],
                portable: true,
            }],
            outbound_hosts: vec!["*".into()],
            config_keys: vec![ConfigKey {
                name: "session_url".into(),
                description:
                    "The JMAP session resource, e.g. https://mail.example.com/.well-known/jmap"
                        .into(),
                required: true,
            }],
            secrets: vec!["token".into()],
        }
    }

    fn locate(subject: Subject) -> Result<Vec<Located>, ConnectorError> {
        if subject.emails.is_empty() {
            return Ok(Vec::new());
        }
        let s = Session::open()?;
        let wanted: BTreeSet<String> = subject.emails.iter().map(|e| e.to_lowercase()).collect();
        let mut candidates = BTreeSet::new();
        for e in &subject.emails {
            let filter = json!({"operator": "OR", "conditions": [
                {"from": e}, {"to": e}, {"cc": e}, {"bcc": e},
            ]});
            let mut position = 0usize;
            loop {
                let r = s.call_ok(
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
        let mailboxes = s.call_ok(
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
        let (_, emails) = s.get(&ids, &props)?;
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
            let mut l = Located::new(
                RecordRef::new(EMAIL, id),
                format!("email, {role}, {kib} KiB, in {}", boxes.join(" and ")),
            );
            if let Some(at) = m["receivedAt"].as_str().and_then(parse_iso8601) {
                l = l.created_at(at);
            }
            found.push(l);
        }
        Ok(found)
    }

    fn export(refs: Vec<RecordRef>) -> Result<Vec<Exported>, ConnectorError> {
        let s = Session::open()?;
        let ids: Vec<String> = refs
            .iter()
            .filter(|r| r.kind == EMAIL)
            .map(|r| r.id.clone())
            .collect();
        let (_, emails) = s.get(
            &ids,
            &["from", "to", "cc", "bcc", "subject", "receivedAt", "size"],
        )?;
        let mut out = Vec::new();
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
                Exported::new(RecordRef::new(EMAIL, id))
                    .field(
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
        let s = Session::open()?;
        let (_, found) = s.get(std::slice::from_ref(&reference.id), &["blobId"])?;
        let Some(blob) = found.first().and_then(|m| m["blobId"].as_str()) else {
            return Err(ConnectorError::Invalid(
                "the message no longer exists".into(),
            ));
        };
        let url = s
            .download
            .replace("{accountId}", &percent_encode(&s.account))
            .replace("{blobId}", &percent_encode(blob))
            .replace("{name}", MESSAGE)
            .replace("{type}", &percent_encode("message/rfc822"));
        let (origin, path) = split_url(&url, &s.session_url).ok_or_else(|| {
            ConnectorError::Internal("the session's downloadUrl is not an http(s) URL".into())
        })?;
        Client::new(&origin)?
            .bearer(&s.token)
            .get(&path)
            .read_range(offset, max_len)
    }

    fn erase(refs: Vec<RecordRef>, mode: EraseMode) -> Result<Vec<Outcome>, ConnectorError> {
        if matches!(mode, EraseMode::Anonymise) {
            return Err(ConnectorError::NotSupported(
                "email messages cannot be anonymised in place; erase them with delete".into(),
            ));
        }
        let s = Session::open()?;
        let mut outcomes = Vec::new();
        let ids: Vec<String> = refs
            .iter()
            .filter(|r| r.kind == EMAIL)
            .map(|r| r.id.clone())
            .collect();
        if let Some(r) = refs.iter().find(|r| r.kind != EMAIL) {
            return Err(ConnectorError::unknown_kind(&r.kind));
        }
        for batch in ids.chunks(s.max_set) {
            let mut attempt = 0;
            let result = loop {
                let current =
                    s.call_ok("Email/get", json!({"ids": batch, "properties": ["id"]}))?;
                let state = current["state"].as_str().unwrap_or_default().to_string();
                match s.call("Email/set", json!({"ifInState": state, "destroy": batch}))? {
                    Ok(r) => break r,
                    Err(kind) if kind == "stateMismatch" && attempt < 3 => attempt += 1,
                    Err(kind) => {
                        return Err(ConnectorError::Unavailable(format!(
                            "Email/set destroy failed: {kind}"
                        )));
                    }
                }
            };
            let destroyed: BTreeSet<&str> = result["destroyed"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            for id in batch {
                let r = RecordRef::new(EMAIL, id.as_str());
                if destroyed.contains(id.as_str()) {
                    outcomes.push(Outcome::done(r));
                } else {
                    match result["notDestroyed"][id.as_str()]["type"].as_str() {
                        Some("notFound") | None => outcomes.push(Outcome::not_found(r)),
                        Some(kind) => {
                            return Err(ConnectorError::Unavailable(format!(
                                "the server refused to destroy a message: {kind}"
                            )));
                        }
                    }
                }
            }
        }
        Ok(outcomes)
    }
}

oubli_plugin::export!(JmapMail);
