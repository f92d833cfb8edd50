//! A connector that reaches for raw sockets (`std::net`, which on
//! `wasm32-wasip2` imports `wasi:sockets`): the host refuses it at load,
//! naming the import, because the sandbox never serves sockets.

use oubli_plugin::prelude::*;

struct Sockets;

impl Connector for Sockets {
    fn manifest() -> Manifest {
        Manifest {
            id: "sockets".into(),
            name: "Socket-using test connector".into(),
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

    fn locate(_: Subject) -> Result<Vec<Located>, ConnectorError> {
        let connected = std::net::TcpStream::connect("127.0.0.1:5432").is_ok();
        Ok(vec![Located::new(
            RecordRef::new("probe", "1"),
            format!("connected: {connected}"),
        )])
    }
}

oubli_plugin::export!(Sockets);
