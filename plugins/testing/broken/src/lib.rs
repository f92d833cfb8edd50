//! A people-directory connector that breaks one behaviour, chosen by its
//! `break` setting, for the conformance kit's own tests: each must be
//! caught by the case meant for it.
//!
//! | `break` | what goes wrong | caught by |
//! |---|---|---|
//! | (unset) | nothing: it behaves as `example-rest` | |
//! | `decoy` | searches with the loose `q=` and trusts every hit | `locate.decoys` |
//! | `done-for-missing` | answers `done` when the record is not there | `erase.missing` |
//! | `pii-in-summary` | puts the address in the summary | `locate.summaries` |
//! | `write-in-locate` | stamps "last looked up" on each hit while locating | `locate.read-only` |
//! | `reset-internal` | reports a dropped connection as its own bug | `faults.reset` |
//! | `pii-in-log` | logs the address it searches for | `log.clean` |
//! | `swallow-errors` | skips a search that failed and answers with the rest | `faults.partial` (and every fault) |

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
    legal_hold: Option<String>,
}

#[derive(Deserialize)]
struct Search {
    people: Vec<Person>,
}

fn broken(what: &str) -> bool {
    config("break").as_deref() == Some(what)
}

fn api() -> Result<Client, ConnectorError> {
    let client = Client::new(&require_config("base_url")?)?;
    Ok(match secret("token") {
        Some(token) => client.bearer(&token),
        None => client,
    })
}

struct Broken;

impl Connector for Broken {
    fn manifest() -> Manifest {
        Manifest {
            id: "broken".into(),
            name: "A connector with one fault (the kit's tests)".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            wit_version: WIT_VERSION.into(),
            system_kind: SystemKind::Crm,
            operations: vec![Operation::Locate, Operation::Export, Operation::Erase],
            categories: vec![DataCategory {
                name: "contact-details".into(),
                description: "Name, email address and phone number".into(),
                purposes: vec!["customer service".into()],
                retention: "3 years after the last contact".into(),
                recipients: vec![],
                portable: true,
            }],
            outbound_hosts: vec!["*".into()],
            config_keys: vec![
                ConfigKey {
                    name: "base_url".into(),
                    description: "The directory's API root".into(),
                    required: true,
                },
                ConfigKey {
                    name: "break".into(),
                    description: "Which behaviour to break".into(),
                    required: false,
                },
            ],
            secrets: vec!["token".into()],
            retention: vec![],
        }
    }

    fn locate(subject: Subject) -> Result<Vec<Located>, ConnectorError> {
        let api = api()?;
        let mut found: Vec<Located> = Vec::new();
        let searches = subject
            .emails
            .iter()
            .map(|e| ("email", e))
            .chain(subject.phones.iter().map(|p| ("phone", p)));
        for (key, value) in searches {
            if broken("pii-in-log") {
                log::debug(&format!("searching the directory for {value}"));
            }
            let key = if broken("decoy") { "q" } else { key };
            let hits: Result<Search, ConnectorError> = api
                .get("/people")
                .query(key, value)
                .json()
                .map_err(|e| match e {
                    ConnectorError::Unavailable(m) if broken("reset-internal") => {
                        ConnectorError::Internal(m)
                    }
                    e => e,
                });
            let hits = match hits {
                Err(_) if broken("swallow-errors") => continue,
                h => h?,
            };
            for p in hits.people {
                if found.iter().any(|l| l.reference.id == p.id) {
                    continue;
                }
                if broken("write-in-locate") {
                    api.patch(&format!("/people/{}", p.id))
                        .json_body(&serde_json::json!({"last_lookup": "now"}))?
                        .send()?;
                }
                let summary = if broken("pii-in-summary") {
                    format!("directory entry of {}", p.email)
                } else {
                    "directory entry".to_string()
                };
                let mut l =
                    Located::new(RecordRef::new("person", &p.id), summary).role(Role::Owner);
                if let Some(h) = p.legal_hold {
                    l = l.hold(h);
                }
                found.push(l);
            }
        }
        Ok(found)
    }

    fn export(refs: Vec<RecordRef>) -> Result<Vec<Exported>, ConnectorError> {
        let api = api()?;
        let mut out = Vec::new();
        for reference in refs {
            let Some(p) = api
                .get(&format!("/people/{}", reference.id))
                .json_opt::<Person>()?
            else {
                continue;
            };
            out.push(
                Exported::new(reference)
                    .field("name", "contact-details", p.name)
                    .field("email", "contact-details", p.email)
                    .field("phone", "contact-details", p.phone),
            );
        }
        Ok(out)
    }

    fn erase(refs: Vec<RecordRef>, _mode: EraseMode) -> Result<Vec<Outcome>, ConnectorError> {
        let api = api()?;
        let mut outcomes = Vec::new();
        for reference in refs {
            let response = api
                .delete(&format!("/people/{}", reference.id))
                .send_any()?;
            outcomes.push(match response.status {
                404 if broken("done-for-missing") => Outcome::done(reference),
                404 => Outcome::not_found(reference),
                409 => Outcome::retained(reference, "under a legal hold in the directory"),
                _ => {
                    response.error_for_status()?;
                    Outcome::done(reference)
                }
            });
        }
        Ok(outcomes)
    }
}

oubli_plugin::export!(Broken);
