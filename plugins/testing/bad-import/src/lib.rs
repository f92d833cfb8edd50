//! A component that imports an interface the host does not provide; the host
//! must refuse it at load, naming the import.

mod bindings {
    wit_bindgen::generate!({
        path: "../../../wit",
        inline: "
            package test:bad;
            interface raw-socket {
                open: func(address: string) -> u32;
            }
            world bad {
                include oubli:connector/plugin@0.2.0;
                import raw-socket;
            }
        ",
        world: "test:bad/bad",
        generate_all,
    });
}

use bindings::exports::oubli::connector::connector::Guest;
use bindings::oubli::connector::types::{PluginManifest as Manifest, *};

struct Bad;

impl Guest for Bad {
    fn manifest() -> Manifest {
        Manifest {
            id: "bad-import".into(),
            name: "Imports a raw socket".into(),
            version: "0.1.0".into(),
            wit_version: "0.2.0".into(),
            system_kind: SystemKind::Other,
            operations: vec![Operation::Locate],
            categories: vec![],
            outbound_hosts: vec![],
            config_keys: vec![],
            secrets: vec![],
            retention: vec![],
        }
    }
    fn locate(_: Subject) -> Result<Vec<Located>, ConnectorError> {
        let fd = bindings::test::bad::raw_socket::open("10.0.0.1:22");
        Err(ConnectorError::Internal(format!("opened {fd}")))
    }
    fn export(_: Vec<RecordRef>) -> Result<Vec<Exported>, ConnectorError> {
        Err(ConnectorError::NotSupported(String::new()))
    }
    fn read_attachment(_: RecordRef, _: String, _: u64, _: u32) -> Result<Vec<u8>, ConnectorError> {
        Err(ConnectorError::NotSupported(String::new()))
    }
    fn rectify(_: RecordRef, _: Vec<Change>) -> Result<Outcome, ConnectorError> {
        Err(ConnectorError::NotSupported(String::new()))
    }
    fn erase(_: Vec<RecordRef>, _: EraseMode) -> Result<Vec<Outcome>, ConnectorError> {
        Err(ConnectorError::NotSupported(String::new()))
    }
    fn detach(_: Subject, _: Vec<RecordRef>) -> Result<Vec<Outcome>, ConnectorError> {
        Err(ConnectorError::NotSupported(String::new()))
    }
    fn restrict(_: Subject, _: Vec<String>, _: bool) -> Result<Vec<Outcome>, ConnectorError> {
        Err(ConnectorError::NotSupported(String::new()))
    }
    fn poll(_: String) -> Result<Vec<Outcome>, ConnectorError> {
        Err(ConnectorError::NotSupported(String::new()))
    }
    fn sweep(_: SweepQuery) -> Result<Vec<Dated>, ConnectorError> {
        Err(ConnectorError::NotSupported(String::new()))
    }
}

bindings::export!(Bad with_types_in bindings);
