//! A connector that does nothing, quickly: `locate` finds one record per
//! email and phone, `erase`, `export` and `restrict` answer at once with no
//! I/O. Used by the engine benchmark to measure orchestration (store,
//! leases, sealing, verification), not systems. With `wait_ms` set, every
//! operation first waits that long, as a system that takes its time to
//! answer would (the bench's "slow system": the machine's cores are then
//! not the limit).

use oubli_plugin::prelude::*;

struct Noop;

/// Wait `wait_ms`, if set.
fn wait() {
    if let Some(ms) = oubli_plugin::config("wait_ms").and_then(|v| v.parse::<u64>().ok()) {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}

impl Connector for Noop {
    fn manifest() -> Manifest {
        Manifest {
            id: "noop".into(),
            name: "No-op test connector".into(),
            version: "0.1.0".into(),
            wit_version: WIT_VERSION.into(),
            system_kind: SystemKind::Other,
            operations: vec![
                Operation::Locate,
                Operation::Export,
                Operation::Erase,
                Operation::Restrict,
            ],
            categories: vec![],
            outbound_hosts: vec![],
            config_keys: vec![ConfigKey {
                name: "wait_ms".into(),
                description: "Milliseconds every operation waits before it answers (0: none)"
                    .into(),
                required: false,
            }],
            secrets: vec![],
            retention: vec![],
        }
    }

    fn locate(subject: Subject) -> Result<Vec<Located>, ConnectorError> {
        wait();
        Ok(subject
            .emails
            .iter()
            .chain(subject.phones.iter())
            .enumerate()
            .map(|(i, _)| Located::new(RecordRef::new("record", i.to_string()), "record"))
            .collect())
    }

    fn export(refs: Vec<RecordRef>) -> Result<Vec<Exported>, ConnectorError> {
        wait();
        Ok(refs
            .into_iter()
            .map(|r| Exported::new(r).field("id", "other", "x"))
            .collect())
    }

    fn erase(refs: Vec<RecordRef>, _mode: EraseMode) -> Result<Vec<Outcome>, ConnectorError> {
        wait();
        Ok(refs.into_iter().map(Outcome::done).collect())
    }

    fn restrict(
        _subject: Subject,
        _scope: Vec<String>,
        _on: bool,
    ) -> Result<Vec<Outcome>, ConnectorError> {
        Ok(Vec::new())
    }
}

oubli_plugin::export!(Noop);
