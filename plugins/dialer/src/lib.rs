//! Connector for an outbound dialer with the Genesys Cloud outbound API's
//! shapes: contact lists and do-not-call (DNC) lists.
//!
//! | data | found with | removed with |
//! |---|---|---|
//! | contact-list rows | `POST /api/v2/outbound/contactlists/{id}/contacts/search`, every phone column in E.164 and national form, and the email columns | `DELETE /api/v2/outbound/contactlists/{id}/contacts?contactIds=` (or `PUT` blanked rows to anonymise) |
//! | DNC entries | `POST /api/v2/outbound/dnclists/{id}/phonenumbers/check` | kept: they record an objection to calls |
//!
//! Erasure versus suppression: deleting a row alone would let the next list
//! import bring the number back and dial it. When `suppression_list` names a
//! hashed DNC list, erasing a row also adds its numbers there; that list
//! keeps only a keyed hash of each number. The entry is reported as
//! `retained` (kind `suppression-entry`) beside the erased rows, with its
//! reason, so the person is told what was kept.
//!
//! Restriction (Art. 18, 21) puts the subject's numbers on the `dnc_list`
//! (and lifting it removes them), so the dialer stops calling.
//!
//! Configuration: `base_url` (required); `email_columns` (comma-separated, default `Email`); `dnc_list`;
//! `suppression_list`. Secret: `token`. National-format numbers in lists are
//! read in the host's region (`oubli.calling-code` and `oubli.trunk-prefix`,
//! from `[identifiers] default_region`).

use oubli_plugin::http::{Client, Listing};
use oubli_plugin::prelude::*;
use oubli_plugin::region;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

const CONTACT: &str = "contact";
const DNC_ENTRY: &str = "dnc-entry";
const SUPPRESSION_ENTRY: &str = "suppression-entry";
const PAGE_SIZE: usize = 100;
const DNC_REASON: &str = "do-not-call entry kept: it records the person's objection to calls (Art. 21(3) GDPR) and stops the dialer calling them";
const SUPPRESSION_REASON: &str = "keyed hash of the number kept on the suppression list so it is never imported or dialled again (Art. 17(3)(b), 21(3) GDPR); the number itself is not stored";

fn api() -> Result<Client, ConnectorError> {
    Ok(Client::new(&require_config("base_url")?)?.bearer(&require_secret("token")?))
}

/// Every form a number may be stored in: E.164, and national when the
/// number is in the host's region.
fn forms(phones: &[String]) -> Vec<String> {
    region::phone_forms(phones)
}

fn e164(raw: &str) -> Option<String> {
    region::stored_to_e164(raw)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContactList {
    id: String,
    name: String,
    #[serde(default)]
    column_names: Vec<String>,
    #[serde(default)]
    phone_columns: Vec<PhoneColumn>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PhoneColumn {
    column_name: String,
}

#[derive(Deserialize)]
struct Contact {
    id: String,
    #[serde(default)]
    data: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct DncList {
    id: String,
    name: String,
    #[serde(default)]
    hashed: bool,
}

fn contact_lists(api: &Client) -> Result<Vec<ContactList>, ConnectorError> {
    api.get("/api/v2/outbound/contactlists")
        .query("pageSize", PAGE_SIZE)
        .all_pages()
}

fn split_ref(r: &RecordRef) -> Result<(&str, &str), ConnectorError> {
    r.id.split_once('/')
        .ok_or_else(|| ConnectorError::Invalid("a contact reference is list/contact".into()))
}

fn get_contact(api: &Client, list: &str, id: &str) -> Result<Option<Contact>, ConnectorError> {
    api.get(&format!(
        "/api/v2/outbound/contactlists/{list}/contacts/{id}"
    ))
    .json_opt()
}

fn check_dnc(api: &Client, list: &str, numbers: &[String]) -> Result<bool, ConnectorError> {
    if numbers.is_empty() {
        return Ok(false);
    }
    let found: Listing<Value> = api
        .post(&format!(
            "/api/v2/outbound/dnclists/{list}/phonenumbers/check"
        ))
        .json_body(&json!({"phoneNumbers": numbers}))?
        .json()?;
    Ok(!found.entities.is_empty())
}

fn patch_dnc(
    api: &Client,
    list: &str,
    action: &str,
    numbers: &BTreeSet<String>,
) -> Result<(), ConnectorError> {
    if numbers.is_empty() {
        return Ok(());
    }
    api.patch(&format!("/api/v2/outbound/dnclists/{list}/phonenumbers"))
        .json_body(&json!({"action": action, "phoneNumbers": numbers}))?
        .send()?;
    Ok(())
}

struct Dialer;

impl Connector for Dialer {
    fn manifest() -> Manifest {
        Manifest {
            id: "dialer".into(),
            name: "Outbound dialer (Genesys Cloud outbound API)".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            wit_version: WIT_VERSION.into(),
            system_kind: SystemKind::Dialer,
            operations: vec![
                Operation::Locate,
                Operation::Export,
                Operation::Rectify,
                Operation::Erase,
                Operation::Restrict,
            ],
            categories: vec![
                DataCategory {
                    name: "contact-details".into(),
                    description: "Name, phone numbers and email address in calling lists".into(),
                    purposes: vec!["outbound campaigns".into()],
                    retention: "until the campaign ends".into(),
                    recipients: vec![],
                    portable: false,
                },
                DataCategory {
                    name: "campaign-data".into(),
                    description: "Other columns of calling lists (customer references, segments)"
                        .into(),
                    purposes: vec!["outbound campaigns".into()],
                    retention: "until the campaign ends".into(),
                    recipients: vec![],
                    portable: false,
                },
                DataCategory {
                    name: "objections".into(),
                    description: "Do-not-call entries and hashed suppression entries".into(),
                    purposes: vec!["honouring objections to direct marketing".into()],
                    retention: "3 years after the objection (5 where US TCPA applies)".into(),
                    recipients: vec![],
                    portable: false,
                },
            ],
            outbound_hosts: vec!["*".into()],
            config_keys: vec![
                ConfigKey {
                    name: "base_url".into(),
                    description: "The dialer API's base URL".into(),
                    required: true,
                },
                ConfigKey {
                    name: "email_columns".into(),
                    description:
                        "Comma-separated list columns holding email addresses (default Email)"
                            .into(),
                    required: false,
                },
                ConfigKey {
                    name: "dnc_list".into(),
                    description: "Id of the do-not-call list restriction writes to".into(),
                    required: false,
                },
                ConfigKey {
                    name: "suppression_list".into(),
                    description: "Id of the hashed suppression list erasure writes to".into(),
                    required: false,
                },
            ],
            secrets: vec!["token".into()],
            retention: vec![],
        }
    }

    fn locate(subject: Subject) -> Result<Vec<Located>, ConnectorError> {
        let api = api()?;
        let numbers = forms(&subject.phones);
        let email_columns: Vec<String> = config("email_columns")
            .unwrap_or_else(|| "Email".into())
            .split(',')
            .map(|s| s.trim().to_string())
            .collect();
        let mut found = Vec::new();
        for list in contact_lists(&api)? {
            let mut predicates = Vec::new();
            for col in &list.phone_columns {
                for n in &numbers {
                    predicates
                        .push(json!({"column": col.column_name, "operator": "EQUALS", "value": n}));
                }
            }
            for col in email_columns
                .iter()
                .filter(|c| list.column_names.contains(c))
            {
                for e in &subject.emails {
                    predicates.push(json!({"column": col, "operator": "EQUALS", "value": e}));
                }
            }
            if predicates.is_empty() {
                continue;
            }
            for page_number in 1.. {
                let page: Listing<Contact> = api
                    .post(&format!(
                        "/api/v2/outbound/contactlists/{}/contacts/search",
                        list.id
                    ))
                    .json_body(&json!({
                        "pageSize": PAGE_SIZE,
                        "pageNumber": page_number,
                        "filter": {"type": "OR", "predicates": predicates},
                    }))?
                    .json()?;
                let done = page.next_uri.is_none();
                for c in page.entities {
                    found.push(Located::new(
                        RecordRef::new(CONTACT, format!("{}/{}", list.id, c.id)),
                        format!("row in calling list \"{}\"", list.name),
                    ));
                }
                if done {
                    break;
                }
            }
        }
        if !numbers.is_empty() {
            let lists: Vec<DncList> = api
                .get("/api/v2/outbound/dnclists")
                .query("pageSize", PAGE_SIZE)
                .all_pages()?;
            for l in lists {
                if check_dnc(&api, &l.id, &numbers)? {
                    let (kind, what, reason) = if l.hashed {
                        (
                            SUPPRESSION_ENTRY,
                            "hashed suppression entry",
                            SUPPRESSION_REASON,
                        )
                    } else {
                        (DNC_ENTRY, "do-not-call entry", DNC_REASON)
                    };
                    found.push(
                        Located::new(
                            RecordRef::new(kind, l.id),
                            format!("{what} on \"{}\"", l.name),
                        )
                        .hold(reason),
                    );
                }
            }
        }
        Ok(found)
    }

    fn export(refs: Vec<RecordRef>) -> Result<Vec<Exported>, ConnectorError> {
        let api = api()?;
        let lists = contact_lists(&api)?;
        let mut out = Vec::new();
        for r in refs {
            match r.kind.as_str() {
                CONTACT => {
                    let (list, id) = split_ref(&r)?;
                    let Some(c) = get_contact(&api, list, id)? else {
                        continue;
                    };
                    let phone_cols: Vec<&str> = lists
                        .iter()
                        .filter(|l| l.id == list)
                        .flat_map(|l| l.phone_columns.iter().map(|p| p.column_name.as_str()))
                        .collect();
                    // The list by its name, as the person would know it.
                    let list_name = lists
                        .iter()
                        .find(|l| l.id == list)
                        .map_or(list, |l| l.name.as_str());
                    let mut e =
                        Exported::new(r.clone()).field("contactList", "campaign-data", list_name);
                    for (k, v) in &c.data {
                        let personal = phone_cols.contains(&k.as_str())
                            || k.to_lowercase().contains("name")
                            || k.to_lowercase().contains("email");
                        e = e.field(
                            k.as_str(),
                            if personal {
                                "contact-details"
                            } else {
                                "campaign-data"
                            },
                            v.as_str(),
                        );
                    }
                    out.push(e);
                }
                DNC_ENTRY | SUPPRESSION_ENTRY => {
                    out.push(Exported::new(r.clone()).field("list", "objections", r.id.as_str()));
                }
                other => {
                    return Err(ConnectorError::unknown_kind(other));
                }
            }
        }
        Ok(out)
    }

    fn rectify(reference: RecordRef, changes: Vec<Change>) -> Result<Outcome, ConnectorError> {
        if reference.kind != CONTACT {
            return Err(ConnectorError::Invalid(
                "only contact-list rows can be rectified".into(),
            ));
        }
        let api = api()?;
        let (list, id) = split_ref(&reference)?;
        if get_contact(&api, list, id)?.is_none() {
            return Ok(Outcome::not_found(reference));
        }
        let mut data = Map::new();
        for ch in changes {
            data.insert(ch.field, json!(ch.new_value.unwrap_or_default()));
        }
        api.put(&format!(
            "/api/v2/outbound/contactlists/{list}/contacts/{id}"
        ))
        .json_body(&json!({"data": data}))?
        .send()?;
        Ok(Outcome::done(reference))
    }

    fn erase(refs: Vec<RecordRef>, mode: EraseMode) -> Result<Vec<Outcome>, ConnectorError> {
        let api = api()?;
        let lists = contact_lists(&api)?;
        let mut outcomes = Vec::new();
        let mut doomed: BTreeMap<String, Vec<(RecordRef, String)>> = BTreeMap::new();
        let mut numbers = BTreeSet::new();
        for r in refs {
            match r.kind.as_str() {
                CONTACT => {
                    let (list, id) = split_ref(&r)?;
                    let (list, id) = (list.to_string(), id.to_string());
                    let Some(c) = get_contact(&api, &list, &id)? else {
                        outcomes.push(Outcome::not_found(r));
                        continue;
                    };
                    for col in lists
                        .iter()
                        .filter(|l| l.id == list)
                        .flat_map(|l| &l.phone_columns)
                    {
                        if let Some(n) = c.data.get(&col.column_name).and_then(|v| e164(v)) {
                            numbers.insert(n);
                        }
                    }
                    doomed.entry(list).or_default().push((r, id));
                }
                DNC_ENTRY => outcomes.push(Outcome::retained(r, DNC_REASON)),
                SUPPRESSION_ENTRY => outcomes.push(Outcome::retained(r, SUPPRESSION_REASON)),
                other => {
                    return Err(ConnectorError::unknown_kind(other));
                }
            }
        }
        // Suppress first: if deletion then fails, the number is still
        // protected from being dialled; the reverse order could leave a gap.
        if let Some(list) = config("suppression_list").filter(|_| !numbers.is_empty()) {
            patch_dnc(&api, &list, "Add", &numbers)?;
            outcomes.push(Outcome::retained(
                RecordRef::new(SUPPRESSION_ENTRY, list),
                SUPPRESSION_REASON,
            ));
        }
        for (list, rows) in doomed {
            match mode {
                EraseMode::Delete => {
                    let ids: Vec<&str> = rows.iter().map(|(_, id)| id.as_str()).collect();
                    api.delete(&format!("/api/v2/outbound/contactlists/{list}/contacts"))
                        .query("contactIds", ids.join(","))
                        .send()?;
                }
                EraseMode::Anonymise => {
                    let columns = lists
                        .iter()
                        .find(|l| l.id == list)
                        .map(|l| l.column_names.clone())
                        .unwrap_or_default();
                    let blank: Map<String, Value> =
                        columns.into_iter().map(|c| (c, json!(""))).collect();
                    for (_, id) in &rows {
                        api.put(&format!(
                            "/api/v2/outbound/contactlists/{list}/contacts/{id}"
                        ))
                        .json_body(&json!({"data": blank}))?
                        .send()?;
                    }
                }
            }
            outcomes.extend(rows.into_iter().map(|(r, _)| Outcome::done(r)));
        }
        Ok(outcomes)
    }

    fn restrict(
        subject: Subject,
        _scope: Vec<String>,
        on: bool,
    ) -> Result<Vec<Outcome>, ConnectorError> {
        let list = config("dnc_list").ok_or_else(|| {
            ConnectorError::NotSupported("no `dnc_list` is configured to restrict calling".into())
        })?;
        let numbers: BTreeSet<String> = subject.phones.iter().cloned().collect();
        if numbers.is_empty() {
            return Ok(Vec::new());
        }
        let api = api()?;
        patch_dnc(&api, &list, if on { "Add" } else { "Remove" }, &numbers)?;
        Ok(vec![Outcome::done(RecordRef::new(DNC_ENTRY, list))])
    }
}

oubli_plugin::export!(Dialer);
