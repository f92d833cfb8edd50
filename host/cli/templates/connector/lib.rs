//! {{name}}: an oubli connector.
//!
//! As written by `oubli connector new`, it finds people in the sandbox's
//! people directory (`oubli sandbox`), so that it builds, loads and passes
//! the conformance kit before you change a line. Then replace each call
//! marked `YOUR SYSTEM` with your system's, and fill in what the manifest
//! says. Every operation you do not implement answers `not-supported`: the
//! host makes a manual task of it for an operator, and never reports it
//! done.
//!
//! The directory's API (the shape to replace):
//!
//! | call | answer |
//! |---|---|
//! | `GET /api/people?email=` / `?phone=` | `{"people": [{"id", "name", "email", "phone", "legal_hold"}]}` |
//! | `GET /api/people/{id}` | one person; 404 when gone |
//! | `DELETE /api/people/{id}` | 204; 404 when gone; 409 under legal hold |

use oubli_plugin::http::Client;
use oubli_plugin::prelude::*;
use serde::Deserialize;

/// What the system answers for one person. YOUR SYSTEM: its record's
/// fields. Unknown fields are ignored; give every field a default, so a
/// field the system leaves out does not fail the whole answer.
#[derive(Deserialize)]
struct Person {
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    phone: String,
    /// Why the system must keep it, when it must.
    legal_hold: Option<String>,
}

#[derive(Deserialize)]
struct Search {
    people: Vec<Person>,
}

/// The kind of record this connector finds (shown to operators, and kept
/// in references: choose it once).
const KIND: &str = "person";

/// A client for the system, from the integrator's configuration: the
/// `base_url` they set and the `token` they granted. Every request goes
/// through the host, which lets it reach only the hosts granted in
/// oubli.toml.
fn api() -> Result<Client, ConnectorError> {
    let client = Client::new(&require_config("base_url")?)?;
    Ok(match secret("token") {
        Some(token) => client.bearer(&token),
        None => client,
    })
}

struct {{Type}};

impl Connector for {{Type}} {
    fn manifest() -> Manifest {
        Manifest {
            id: "{{name}}".into(),
            // YOUR SYSTEM: its name, as integrators know it.
            name: "{{name}}".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            wit_version: WIT_VERSION.into(),
            system_kind: SystemKind::{{Kind}},
            // Add each operation as you implement it.
            operations: vec![Operation::Locate, Operation::Export, Operation::Erase],
            // What the system holds of a person, for the controller's
            // register and the subject's answer.
            categories: vec![DataCategory {
                name: "contact-details".into(),
                description: "Name, email address and phone number".into(),
                purposes: vec!["customer service".into()],
                retention: "as long as the customer relationship lasts".into(),
                recipients: vec![],
                portable: true,
            }],
            // YOUR SYSTEM: its API host, e.g. "api.example.com" or
            // "*.example.com". `*` leaves it to the integrator's grant alone
            // (for systems each customer hosts).
            outbound_hosts: vec!["*".into()],
            config_keys: vec![ConfigKey {
                name: "base_url".into(),
                description: "The system's API root, e.g. https://api.example.com/api".into(),
                required: true,
            }],
            secrets: vec!["token".into()],
            retention: vec![],
        }
    }

    /// Find every record of the person, from each identifier the host
    /// gives (emails lowercased, phones in E.164). Only exact matches: a
    /// loose search that also finds "ada@example.co" for
    /// "ada@example.com" hands another person's data out, or erases it.
    fn locate(subject: Subject) -> Result<Vec<Located>, ConnectorError> {
        let api = api()?;
        let searches = subject
            .emails
            .iter()
            .map(|e| ("email", e))
            .chain(subject.phones.iter().map(|p| ("phone", p)));
        let mut found: Vec<Located> = Vec::new();
        for (key, value) in searches {
            // YOUR SYSTEM: its search by email and by phone. A transport
            // failure or a 5xx becomes `unavailable` (the host retries), a
            // 401/403 `denied`, a 429 `rate-limited`: the client does it.
            let hits: Search = api.get("/people").query(key, value).json()?;
            for person in hits.people {
                if found.iter().any(|l| l.reference.id == person.id) {
                    continue;
                }
                // The summary is shown to operators: never personal data.
                let mut located = Located::new(RecordRef::new(KIND, &person.id), "directory entry")
                    .role(Role::Owner);
                if let Some(hold) = person.legal_hold {
                    located = located.hold(hold);
                }
                found.push(located);
            }
        }
        Ok(found)
    }

    /// Everything the system holds in the records located, field by field.
    fn export(refs: Vec<RecordRef>) -> Result<Vec<Exported>, ConnectorError> {
        let api = api()?;
        let mut out = Vec::new();
        for reference in refs {
            // YOUR SYSTEM: read one record. Gone since it was located:
            // nothing to export.
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
                    .field("phone", "contact-details", person.phone),
            );
        }
        Ok(out)
    }

    /// Delete each record. Report only what the system confirmed: `done`
    /// when it deleted it, `not-found` when it was not there, `retained`
    /// with the reason when it must keep it.
    fn erase(refs: Vec<RecordRef>, _mode: EraseMode) -> Result<Vec<Outcome>, ConnectorError> {
        let api = api()?;
        let mut outcomes = Vec::with_capacity(refs.len());
        for reference in refs {
            // YOUR SYSTEM: its delete call, and what its statuses mean.
            let response = api.delete(&format!("/people/{}", reference.id)).send_any()?;
            outcomes.push(match response.status {
                404 => Outcome::not_found(reference),
                409 => Outcome::retained(reference, "the system holds it under a legal hold"),
                _ => {
                    response.error_for_status()?;
                    Outcome::done(reference)
                }
            });
        }
        Ok(outcomes)
    }

    // Not implemented yet, so `not-supported` (the host's default):
    // rectify, detach, restrict, poll, read_attachment, sweep. See the
    // guide (docs/PLUGINS.md) for each.
}

oubli_plugin::export!({{Type}});
