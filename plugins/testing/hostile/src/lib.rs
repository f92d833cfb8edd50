//! A connector that misbehaves on purpose, to test the host's sandbox.
//!
//! `locate` picks its behaviour from the subject's first name:
//! `loop`, `grow`, `panic`, `recurse`, `huge`, `fetch` (GET the URL in the
//! first external id), `remember` (report what a static kept from the last
//! call), `secret` (return the granted secret `token`), `log-flood`.
//! Anything else answers one record. The manifest's WIT version and requested
//! host can be changed through configuration, to test the load checks.

use oubli_plugin::http::Client;
use oubli_plugin::prelude::*;
use std::sync::Mutex;

static LAST_SUBJECT: Mutex<Option<String>> = Mutex::new(None);

struct Hostile;

fn one(summary: String) -> Result<Vec<Located>, ConnectorError> {
    Ok(vec![Located::new(RecordRef::new("probe", "1"), summary)])
}

#[inline(never)]
fn recurse(depth: u64, pad: [u64; 32]) -> u64 {
    if depth == u64::MAX {
        return 0;
    }
    let mut local = pad;
    local[(depth % 32) as usize] = depth;
    std::hint::black_box(&mut local);
    recurse(depth + 1, local).wrapping_add(local[3])
}

impl Connector for Hostile {
    fn manifest() -> Manifest {
        let host = config("request_host");
        Manifest {
            id: "hostile".into(),
            name: "Hostile test connector".into(),
            version: "0.1.0".into(),
            wit_version: config("wit_version").unwrap_or_else(|| WIT_VERSION.into()),
            system_kind: SystemKind::Other,
            operations: vec![Operation::Locate],
            categories: vec![],
            outbound_hosts: host.into_iter().collect(),
            config_keys: vec![],
            secrets: vec!["token".into()],
        }
    }

    fn locate(subject: Subject) -> Result<Vec<Located>, ConnectorError> {
        let mode = subject.names.first().cloned().unwrap_or_default();
        match mode.as_str() {
            "loop" => {
                let mut x: u64 = 0;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            "grow" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "panic" => panic!("hostile plugin panics on purpose"),
            "recurse" => one(recurse(0, [7; 32]).to_string()),
            "huge" => one("x".repeat(8 << 20)),
            "fetch" => {
                let url = subject
                    .external_ids
                    .first()
                    .map(|e| e.id.clone())
                    .ok_or_else(|| ConnectorError::Invalid("no URL".into()))?;
                let (base, path) = match url
                    .find("://")
                    .and_then(|i| url[i + 3..].find('/').map(|j| i + 3 + j))
                {
                    Some(k) => (&url[..k], &url[k..]),
                    None => (url.as_str(), "/"),
                };
                let response = Client::new(base)?.get(path).send()?;
                one(String::from_utf8_lossy(&response.body).into_owned())
            }
            "remember" => {
                let mut last = LAST_SUBJECT.lock().unwrap_or_else(|e| e.into_inner());
                let previous = last.take().unwrap_or_else(|| "nothing".into());
                *last = subject.emails.first().cloned();
                one(previous)
            }
            "secret" => one(secret("token").unwrap_or_else(|| "none".into())),
            "log-flood" => {
                for _ in 0..10_000 {
                    log::info(&"y".repeat(4096));
                }
                one("flooded".into())
            }
            _ => one("ok".into()),
        }
    }
}

oubli_plugin::export!(Hostile);
