//! The smallest connector: locate answers one record per email, with no I/O.
//! Used by the runtime benchmark to measure per-call overhead.

use oubli_plugin::prelude::*;

struct Trivial;

impl Connector for Trivial {
    fn manifest() -> Manifest {
        Manifest {
            id: "trivial".into(),
            name: "Trivial test connector".into(),
            version: "0.1.0".into(),
            wit_version: WIT_VERSION.into(),
            system_kind: SystemKind::Other,
            operations: vec![Operation::Locate],
            categories: vec![],
            outbound_hosts: vec![],
            config_keys: vec![],
            secrets: vec![],
            retention: vec![],
        }
    }

    fn locate(subject: Subject) -> Result<Vec<Located>, ConnectorError> {
        Ok(subject
            .emails
            .iter()
            .map(|e| Located::new(RecordRef::new("contact", e.len().to_string()), "contact"))
            .collect())
    }
}

oubli_plugin::export!(Trivial);
