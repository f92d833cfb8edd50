//! A connector that misbehaves on purpose, to test the host's sandbox.
//!
//! `locate` picks its behaviour from the subject's first name:
//! `loop`, `grow`, `panic`, `recurse`, `huge`, `fetch` (GET the URL in the
//! first external id), `remember` (report what a static kept from the last
//! call), `secret` (return the granted secret `token`), `manual` (a manual
//! task of 1,200 steps, one of them 5,000 bytes), `log-flood`,
//! `size:N` (one record with a summary of N bytes), `fields-bomb` (hold
//! thousands of 120 KB header-field sets), `fields-many` (thousands of empty
//! ones), `echo` (log the subject's
//! identifiers, then fail with them in the error message), `evil` (control
//! characters in every string of a record). Anything else answers one record.
//! The manifest's WIT version and requested host can be changed through
//! configuration, to test the load checks; `evil_manifest` puts terminal
//! escapes and forged lines in every manifest field.
//!
//! `sweep` picks its behaviour from the category: `disorder` (a page out
//! of order), `at-cutoff` (a record dated exactly at the cutoff), `behind`
//! (a record before the page's start), `too-many` (one more than asked),
//! `secret` (the granted secret in a summary); anything else answers
//! `limit` records one second apart, oldest first, from the page's start.

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

/// Text that would clear the screen, retitle the terminal and forge a line.
const EVIL: &str = "\u{1b}[2J\u{1b}]0;pwned\u{7}\r\nok       crm  forged line\u{202e}";

impl Connector for Hostile {
    fn sweep(query: SweepQuery) -> Result<Vec<Dated>, ConnectorError> {
        let start = query.after.as_ref().map_or(0, |k| k.at + 1000);
        let dated = |at: i64| Dated::new(RecordRef::new("probe", format!("{at:012}")), at, "probe");
        let honest: Vec<Dated> = (0..i64::from(query.limit))
            .map(|i| start + i * 1000)
            .filter(|at| *at < query.cutoff)
            .map(dated)
            .collect();
        Ok(match query.category.as_str() {
            "disorder" => honest.into_iter().rev().collect(),
            "at-cutoff" => vec![dated(query.cutoff)],
            "behind" => vec![dated(start - 2000)],
            "too-many" => (0..=i64::from(query.limit))
                .map(|i| dated(i * 1000))
                .collect(),
            "secret" => vec![Dated::new(
                RecordRef::new("probe", "1"),
                0,
                format!("token {}", secret("token").unwrap_or_default()),
            )],
            _ => honest,
        })
    }

    fn manifest() -> Manifest {
        let host = config("request_host");
        let evil = config("evil_manifest").is_some();
        let text = |plain: &str| {
            if evil {
                format!("{plain}{EVIL}")
            } else {
                plain.to_string()
            }
        };
        Manifest {
            id: text("hostile"),
            name: text("Hostile test connector"),
            version: text("0.1.0"),
            wit_version: config("wit_version").unwrap_or_else(|| WIT_VERSION.into()),
            system_kind: SystemKind::Other,
            operations: vec![Operation::Locate, Operation::Sweep],
            categories: if evil {
                vec![DataCategory {
                    name: text("cat"),
                    description: text("description"),
                    purposes: vec![text("purpose")],
                    retention: text("retention"),
                    recipients: vec![text("recipient")],
                    portable: false,
                }]
            } else {
                vec![]
            },
            outbound_hosts: host.into_iter().collect(),
            config_keys: if evil {
                vec![ConfigKey {
                    name: text("key"),
                    description: text("description"),
                    required: false,
                }]
            } else {
                vec![]
            },
            secrets: vec![text("token")],
            retention: vec![],
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
            "fetch-many" | "fetch-hold" => {
                let url = subject
                    .external_ids
                    .first()
                    .map(|e| e.id.clone())
                    .ok_or_else(|| ConnectorError::Invalid("no URL".into()))?;
                let client = Client::new(&url)?;
                if mode == "fetch-many" {
                    // Five requests one after the other, each read to its end.
                    for _ in 0..5 {
                        client.get("").send()?;
                    }
                    return one("5".into());
                }
                // Twenty at once, none read: each holds its connection.
                let mut held = Vec::new();
                for _ in 0..20 {
                    held.push(client.get("").stream()?);
                }
                one(held.len().to_string())
            }
            "remember" => {
                let mut last = LAST_SUBJECT.lock().unwrap_or_else(|e| e.into_inner());
                let previous = last.take().unwrap_or_else(|| "nothing".into());
                *last = subject.emails.first().cloned();
                one(previous)
            }
            "secret" => one(secret("token").unwrap_or_else(|| "none".into())),
            "manual" => {
                let who = subject.emails.first().cloned().unwrap_or_default();
                let steps = (0..1200)
                    .map(|i| match i {
                        0 => format!("step 0: {}", "x".repeat(5000)),
                        _ => format!("step {i}: shred ticket {i} of {who}"),
                    })
                    .collect();
                let records = (0..1200)
                    .map(|i| RecordRef::new("ticket", i.to_string()))
                    .collect();
                Err(ConnectorError::manual(
                    "the system's API cannot do it",
                    steps,
                    records,
                ))
            }
            "log-flood" => {
                for _ in 0..10_000 {
                    log::info(&"y".repeat(4096));
                }
                one("flooded".into())
            }
            "fields-bomb" => {
                use oubli_plugin::bindings::wasi::http::types::Fields;
                let value = vec![b'a'; 120_000];
                let mut held = Vec::new();
                for i in 0..8_000 {
                    let fields = Fields::new();
                    for j in 0..4 {
                        let _ = fields.append(&format!("x-{i}-{j}"), &value[..30_000]);
                    }
                    held.push(fields);
                }
                one(format!("held {}", held.len()))
            }
            "fields-many" => {
                use oubli_plugin::bindings::wasi::http::types::Fields;
                let held: Vec<Fields> = (0..8_000).map(|_| Fields::new()).collect();
                one(format!("held {}", held.len()))
            }
            "echo" => {
                let all = format!(
                    "emails {:?} phones {:?} names {:?} ids {:?}",
                    subject.emails,
                    subject.phones,
                    subject.names,
                    subject
                        .external_ids
                        .iter()
                        .map(|x| &x.id)
                        .collect::<Vec<_>>()
                );
                log::warn(&format!("looking for {all}"));
                for p in &subject.phones {
                    // National and spaced forms of a UK number too.
                    if let Some(rest) = p.strip_prefix("+44") {
                        log::warn(&format!(
                            "national 0{rest}, spaced +44 {} {}",
                            &rest[..4],
                            &rest[4..]
                        ));
                    }
                }
                Err(ConnectorError::Invalid(format!("no match for {all}")))
            }
            "evil" => Ok(vec![Located {
                reference: RecordRef::new(format!("kind{EVIL}"), "1"),
                role: Role::Owner,
                summary: format!("summary{EVIL}"),
                created_at: None,
                hold: Some(format!("hold{EVIL}")),
            }]),
            m if m.starts_with("size:") => {
                let n: usize = m[5..].parse().unwrap_or(0);
                one("x".repeat(n))
            }
            _ => one("ok".into()),
        }
    }
}

oubli_plugin::export!(Hostile);
