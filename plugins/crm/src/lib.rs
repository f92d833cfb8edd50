//! Connector for a CRM with HubSpot's CRM v3 API.
//!
//! | data | found with | removed with |
//! |---|---|---|
//! | contacts (duplicates included) | `POST /crm/v3/objects/contacts/search`, email and every phone form, 5 filter groups per call, paged | `POST /crm/v3/objects/contacts/gdpr-delete` (permanent; a plain `DELETE` only archives for 90 days) |
//! | tickets of those contacts | `GET /crm/v3/objects/contacts/{id}?associations=tickets` | kept: the CRM keeps tickets after their contact is deleted |
//!
//! Rectification is a `PATCH` of the contact's properties; anonymisation
//! blanks every personal property; restriction sets the
//! `restriction_property` (default `gdpr_restricted`) to `true`, which the
//! CRM's workflows must honour.
//!
//! Configuration: `base_url` (default `https://api.hubapi.com`),
//! `restriction_property`. National-format numbers are searched in the
//! host's region (`oubli.calling-code`, from `[identifiers] default_region`). Secret: `token` (a private-app token with
//! `crm.objects.contacts.read/write` and `tickets`).

use oubli_plugin::http::Client;
use oubli_plugin::prelude::*;
use oubli_plugin::region;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

const CONTACT: &str = "contact";
const TICKET: &str = "ticket";
const PROPERTIES: &[&str] = &[
    "email",
    "firstname",
    "lastname",
    "phone",
    "mobilephone",
    "company",
    "notes",
];
const PHONE_PROPERTIES: &[&str] = &["phone", "mobilephone"];
const MAX_GROUPS: usize = 5;
const PAGE: usize = 100;
const TICKET_REASON: &str = "the CRM keeps support tickets after their contact is deleted; their free text may still name the person and needs redaction by hand";

fn api() -> Result<Client, ConnectorError> {
    let base = config("base_url").unwrap_or_else(|| "https://api.hubapi.com".into());
    Ok(Client::new(&base)?.bearer(&require_secret("token")?))
}

fn restriction_property() -> String {
    config("restriction_property").unwrap_or_else(|| "gdpr_restricted".into())
}

#[derive(Deserialize)]
struct SearchPage {
    #[serde(default)]
    results: Vec<CrmObject>,
    paging: Option<Paging>,
}

#[derive(Deserialize)]
struct Paging {
    next: Option<Next>,
}

#[derive(Deserialize)]
struct Next {
    after: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CrmObject {
    id: String,
    #[serde(default)]
    properties: BTreeMap<String, Option<String>>,
    created_at: Option<String>,
    associations: Option<BTreeMap<String, AssociationList>>,
}

#[derive(Deserialize)]
struct AssociationList {
    #[serde(default)]
    results: Vec<Association>,
}

#[derive(Deserialize)]
struct Association {
    id: String,
}

/// Every contact matching one of the subject's identifiers.
fn search(api: &Client, subject: &Subject) -> Result<Vec<CrmObject>, ConnectorError> {
    let mut groups = Vec::new();
    for e in &subject.emails {
        groups.push(json!({"filters": [{"propertyName": "email", "operator": "EQ", "value": e}]}));
    }
    for f in region::phone_forms(&subject.phones) {
        for prop in PHONE_PROPERTIES {
            groups.push(json!({"filters": [{"propertyName": prop, "operator": "EQ", "value": f}]}));
        }
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    // The API takes at most five filter groups per search.
    for chunk in groups.chunks(MAX_GROUPS) {
        let mut after: Option<String> = None;
        loop {
            let mut body = json!({"filterGroups": chunk, "properties": ["email", "firstname", "lastname"], "limit": PAGE});
            if let Some(a) = &after {
                body["after"] = json!(a);
            }
            let page: SearchPage = api
                .post("/crm/v3/objects/contacts/search")
                .json_body(&body)?
                .json()?;
            for c in page.results {
                if seen.insert(c.id.clone()) {
                    out.push(c);
                }
            }
            match page.paging.and_then(|p| p.next) {
                Some(n) => after = Some(n.after),
                None => break,
            }
        }
    }
    Ok(out)
}

fn get_contact(
    api: &Client,
    id: &str,
    properties: &[&str],
    tickets: bool,
) -> Result<Option<CrmObject>, ConnectorError> {
    let mut req = api
        .get(&format!("/crm/v3/objects/contacts/{id}"))
        .query("properties", properties.join(","));
    if tickets {
        req = req.query("associations", "tickets");
    }
    req.json_opt()
}

struct Crm;

impl Connector for Crm {
    fn manifest() -> Manifest {
        Manifest {
            id: "crm".into(),
            name: "CRM (HubSpot CRM v3 API)".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            wit_version: WIT_VERSION.into(),
            system_kind: SystemKind::Crm,
            operations: vec![Operation::Locate, Operation::Export, Operation::Rectify, Operation::Erase, Operation::Restrict],
            categories: vec![
                DataCategory {
                    name: "contact-details".into(),
                    description: "Name, email address, phone numbers, company and notes".into(),
                    purposes: vec!["customer relationship".into(), "customer service".into()],
                    retention: "3 years after the last contact".into(),
                    recipients: vec!["HubSpot, Inc. (processor)".into()],
                    portable: true,
                },
                DataCategory {
                    name: "support-history".into(),
                    description: "Support tickets: subject and free-text description".into(),
                    purposes: vec!["customer service".into()],
                    retention: "5 years (legal claims)".into(),
                    recipients: vec!["HubSpot, Inc. (processor)".into()],
                    portable: false,
                },
            ],
            outbound_hosts: vec!["*".into()],
            config_keys: vec![
                ConfigKey { name: "base_url".into(), description: "API base URL (default https://api.hubapi.com)".into(), required: false },
                ConfigKey { name: "restriction_property".into(), description: "Contact property set to true while processing is restricted (default gdpr_restricted)".into(), required: false },
            ],
            secrets: vec!["token".into()],
            retention: vec![],
        }
    }

    fn locate(subject: Subject) -> Result<Vec<Located>, ConnectorError> {
        let api = api()?;
        let mut found = Vec::new();
        let mut tickets = BTreeSet::new();
        for c in search(&api, &subject)? {
            let mut l = Located::new(RecordRef::new(CONTACT, c.id.as_str()), "CRM contact");
            if let Some(at) = c
                .created_at
                .as_deref()
                .and_then(oubli_plugin::text::parse_iso8601)
            {
                l = l.created_at(at);
            }
            found.push(l);
            if let Some(full) = get_contact(&api, &c.id, &["email"], true)?
                && let Some(list) = full.associations.as_ref().and_then(|a| a.get("tickets"))
            {
                tickets.extend(list.results.iter().map(|t| t.id.clone()));
            }
        }
        for t in tickets {
            found.push(
                Located::new(RecordRef::new(TICKET, t), "support ticket").hold(TICKET_REASON),
            );
        }
        Ok(found)
    }

    fn export(refs: Vec<RecordRef>) -> Result<Vec<Exported>, ConnectorError> {
        let api = api()?;
        let mut out = Vec::new();
        for r in refs {
            match r.kind.as_str() {
                CONTACT => {
                    let mut props: Vec<&str> = PROPERTIES.to_vec();
                    let restriction = restriction_property();
                    props.push(&restriction);
                    let Some(c) = get_contact(&api, &r.id, &props, false)? else {
                        continue;
                    };
                    let mut e = Exported::new(r);
                    for (k, v) in &c.properties {
                        if props.contains(&k.as_str()) {
                            e = e.field(
                                k.as_str(),
                                "contact-details",
                                v.clone().unwrap_or_default(),
                            );
                        }
                    }
                    out.push(e);
                }
                TICKET => {
                    let Some(t) = api
                        .get(&format!("/crm/v3/objects/tickets/{}", r.id))
                        .query("properties", "subject,content")
                        .json_opt::<CrmObject>()?
                    else {
                        continue;
                    };
                    let get = |k: &str| t.properties.get(k).cloned().flatten().unwrap_or_default();
                    out.push(
                        Exported::new(r)
                            .field("subject", "support-history", get("subject"))
                            .field("content", "support-history", get("content")),
                    );
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
                "only contacts can be rectified".into(),
            ));
        }
        let api = api()?;
        let mut props = Map::new();
        for ch in changes {
            props.insert(ch.field, json!(ch.new_value.unwrap_or_default()));
        }
        api.patch(&format!("/crm/v3/objects/contacts/{}", reference.id))
            .json_body(&json!({"properties": props}))?
            .outcome_for(reference)
    }

    fn erase(refs: Vec<RecordRef>, mode: EraseMode) -> Result<Vec<Outcome>, ConnectorError> {
        let api = api()?;
        let mut outcomes = Vec::new();
        for r in refs {
            match (r.kind.as_str(), mode) {
                (CONTACT, EraseMode::Delete) => {
                    // gdpr-delete is permanent; DELETE would only archive.
                    outcomes.push(
                        api.post("/crm/v3/objects/contacts/gdpr-delete")
                            .json_body(&json!({"objectId": r.id}))?
                            .outcome_for(r)?,
                    );
                }
                (CONTACT, EraseMode::Anonymise) => {
                    let blank: Map<String, Value> = PROPERTIES
                        .iter()
                        .map(|p| (p.to_string(), json!("")))
                        .collect();
                    outcomes.push(
                        api.patch(&format!("/crm/v3/objects/contacts/{}", r.id))
                            .json_body(&json!({"properties": blank}))?
                            .outcome_for(r)?,
                    );
                }
                (TICKET, _) => outcomes.push(Outcome::retained(r, TICKET_REASON)),
                (other, _) => {
                    return Err(ConnectorError::unknown_kind(other));
                }
            }
        }
        Ok(outcomes)
    }

    fn restrict(
        subject: Subject,
        _scope: Vec<String>,
        on: bool,
    ) -> Result<Vec<Outcome>, ConnectorError> {
        let api = api()?;
        let property = restriction_property();
        let mut outcomes = Vec::new();
        for c in search(&api, &subject)? {
            api.patch(&format!("/crm/v3/objects/contacts/{}", c.id))
                .json_body(
                    &json!({"properties": {property.as_str(): if on { "true" } else { "false" }}}),
                )?
                .send()?;
            outcomes.push(Outcome::done(RecordRef::new(CONTACT, c.id)));
        }
        Ok(outcomes)
    }
}

oubli_plugin::export!(Crm);
