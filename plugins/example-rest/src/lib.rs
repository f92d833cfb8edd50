//! Example connector: a self-hosted "people directory" with a small REST API.
//!
//! Read this file as a template for a new connector. The directory's API:
//!
//! | call | meaning |
//! |---|---|
//! | `GET /people?email=` / `GET /people?phone=` | search, `{"people": [person]}` |
//! | `GET /people/{id}` | one person, 404 when gone |
//! | `PATCH /people/{id}` with `{"field": "value" \| null}` | correct fields |
//! | `DELETE /people/{id}` | delete, 204 (404 when already gone) |
//! | `POST /people/{id}/anonymise` | replace personal data, keep the row |
//!
//! A person is `{id, name, email, phone, notes, created_at, legal_hold}`;
//! `legal_hold` is a reason string when the directory must keep the record.
//!
//! Configuration: `base_url` (required). Secret: `token` (optional bearer
//! token). The directory is self-hosted, so the manifest asks for `*`: the
//! integrator's grant alone decides which host is reachable.

use oubli_plugin::http::Client;
use oubli_plugin::prelude::*;
use serde::Deserialize;

#[derive(Deserialize)]
struct Person {
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    notes: String,
    created_at: Option<i64>,
    legal_hold: Option<String>,
}

#[derive(Deserialize)]
struct Search {
    people: Vec<Person>,
}

const KIND: &str = "person";

fn api() -> Result<Client, ConnectorError> {
    let client = Client::new(&require_config("base_url")?)?;
    Ok(match secret("token") {
        Some(token) => client.bearer(&token),
        None => client,
    })
}

struct PeopleDirectory;

impl Connector for PeopleDirectory {
    fn manifest() -> Manifest {
        Manifest {
            id: "example-rest".into(),
            name: "People directory (example REST connector)".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            wit_version: WIT_VERSION.into(),
            system_kind: SystemKind::Crm,
            operations: vec![
                Operation::Locate,
                Operation::Export,
                Operation::Rectify,
                Operation::Erase,
            ],
            categories: vec![DataCategory {
                name: "contact-details".into(),
                description: "Name, email address, phone number and free-text notes".into(),
                purposes: vec!["customer service".into()],
                retention: "3 years after the last contact".into(),
                recipients: vec![],
                portable: true,
            }],
            outbound_hosts: vec!["*".into()],
            config_keys: vec![ConfigKey {
                name: "base_url".into(),
                description: "The directory's API root, e.g. https://directory.example.com/api"
                    .into(),
                required: true,
            }],
            secrets: vec!["token".into()],
            retention: vec![],
        }
    }

    fn locate(subject: Subject) -> Result<Vec<Located>, ConnectorError> {
        let api = api()?;
        let searches = subject
            .emails
            .iter()
            .map(|e| ("email", e))
            .chain(subject.phones.iter().map(|p| ("phone", p)));
        let mut found: Vec<Located> = Vec::new();
        for (key, value) in searches {
            let hits: Search = api.get("/people").query(key, value).json()?;
            for person in hits.people {
                if found.iter().any(|l| l.reference.id == person.id) {
                    continue;
                }
                let mut located = Located::new(RecordRef::new(KIND, &person.id), "directory entry");
                if let Some(at) = person.created_at {
                    located = located.created_at(at);
                }
                if let Some(hold) = person.legal_hold {
                    located = located.hold(hold);
                }
                found.push(located);
            }
        }
        Ok(found)
    }

    fn export(refs: Vec<RecordRef>) -> Result<Vec<Exported>, ConnectorError> {
        let api = api()?;
        let mut out = Vec::new();
        for reference in refs {
            // Gone since it was located: nothing to export.
            let Some(person) = api
                .get(&format!("/people/{}", reference.id))
                .json_opt::<Person>()?
            else {
                continue;
            };
            out.push(
                Exported::new(reference)
                    .field("name", "contact-details", person.name)
                    .field("email", "contact-details", person.email)
                    .field("phone", "contact-details", person.phone)
                    .field("notes", "contact-details", person.notes),
            );
        }
        Ok(out)
    }

    fn rectify(reference: RecordRef, changes: Vec<Change>) -> Result<Outcome, ConnectorError> {
        let mut patch = serde_json::Map::new();
        for change in changes {
            if !["name", "email", "phone", "notes"].contains(&change.field.as_str()) {
                return Err(ConnectorError::Invalid(format!(
                    "field `{}` cannot be changed",
                    change.field
                )));
            }
            patch.insert(
                change.field,
                change.new_value.map_or(serde_json::Value::Null, Into::into),
            );
        }
        api()?
            .patch(&format!("/people/{}", reference.id))
            .json_body(&patch)?
            .outcome_for(reference)
    }

    fn erase(refs: Vec<RecordRef>, mode: EraseMode) -> Result<Vec<Outcome>, ConnectorError> {
        let api = api()?;
        let mut outcomes = Vec::with_capacity(refs.len());
        for reference in refs {
            let path = format!("/people/{}", reference.id);
            let response = match mode {
                EraseMode::Delete => api.delete(&path).send_any()?,
                EraseMode::Anonymise => api.post(&format!("{path}/anonymise")).send_any()?,
            };
            outcomes.push(match response.status {
                404 => Outcome::not_found(reference),
                409 => Outcome::retained(
                    reference,
                    "the directory holds this record under a legal hold",
                ),
                _ => {
                    response.error_for_status()?;
                    Outcome::done(reference)
                }
            });
        }
        Ok(outcomes)
    }
}

oubli_plugin::export!(PeopleDirectory);
