//! The bundle of an access (Art. 15) or portability (Art. 20) request:
//! what the subject receives. A ZIP, encrypted as it is written for one or
//! more recipients (docs/FORMAT.md), never held whole:
//!
//! ```text
//! index.html                       what a person opens first (html.rs)
//! manifest.json                    request, dates, systems, outcomes, every file with SHA-256
//! information.json                 the Art. 15(1) information, machine-readable
//! data.xlsx                        one sheet per system and record kind
//! data/<system>.json               the records, fields with their categories
//! data/<system>/<kind>.csv         one table per system and record kind
//! attachments/<system>/<kind>-<id>/<name>   recordings, emails (access only)
//! ```
//!
//! The records are the ones the request's export read and verified (kept
//! sealed in the store); attachments are streamed from the connectors in
//! 1 MiB pieces. A portability bundle holds only the categories connectors
//! mark portable (the export step already kept only those) and no
//! attachments. Fields in a category named `third-party` (data about other
//! people: agents' names, other correspondents) stay out of both.

mod html;
mod i18n;
mod sheets;

pub use html::esc;
pub use i18n::Lang;

use super::engine::Engine;
use super::export::{CHUNK, Hashing, Pending, Pump, safe};
use super::request::{RequestError, SystemResult};
use crate::config::Controller;
use oubli_crypto::file::{self, Recipient};
use oubli_model::{DataCategory, Exported, Subject};
use oubli_model::{RequestKind, RequestState};
use oubli_store::keys::Sealed;
use oubli_store::requests;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::io::Write;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use zip::write::SimpleFileOptions;

/// The bundle format's name.
pub const FORMAT: &str = "oubli-bundle/1";

/// Emails up to this size are shown inline on the page.
const INLINE_EMAIL: u64 = 256 * 1024;

/// The category name connectors use for data about other people.
pub const THIRD_PARTY: &str = "third-party";

/// What the Art. 15(1) information says about one system.
#[derive(Debug, Clone, Serialize)]
pub struct SystemInfo {
    /// The integrator's name for it.
    pub system: String,
    /// Its connector, `id@version`.
    pub connector: Option<String>,
    /// What it holds, why, for how long, for whom.
    pub categories: Vec<DataCategory>,
}

/// `information.json`: Art. 15(1)(a)-(h), from the connectors' manifests
/// and `[controller]`.
#[derive(Debug, Clone, Serialize)]
pub struct Information {
    /// The controller and how to reach it.
    pub controller: Controller,
    /// Per system: categories, purposes, recipients, retention.
    pub systems: Vec<SystemInfo>,
    /// Where the data comes from.
    pub source: String,
    /// Automated decision-making.
    pub automated_decisions: String,
    /// The subject's rights.
    pub rights: Vec<String>,
    /// Where to complain.
    pub complaint: String,
}

/// One file of the bundle, as the manifest lists it.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct FileHash {
    /// Its path in the ZIP.
    pub path: String,
    /// SHA-256 of its content, hex.
    pub sha256: String,
    /// Its size.
    pub size: u64,
}

/// What was written.
#[derive(Debug, Clone, Serialize)]
pub struct BundleReport {
    /// The files, with their hashes (what `manifest.json` lists).
    pub files: Vec<FileHash>,
    /// Records included.
    pub records: usize,
    /// Attachments included.
    pub attachments: usize,
    /// Attachments that could not be read, per system (named in the
    /// manifest and on the page; the rest of the bundle is complete).
    pub failed: Vec<(String, String)>,
    /// SHA-256 of the plaintext ZIP.
    pub zip_sha256: String,
    /// Its length.
    pub zip_len: u64,
}

/// How to write a bundle.
#[derive(Debug, Clone)]
pub struct BundleOptions {
    /// The page's language.
    pub lang: Lang,
    /// Who can decrypt it (the DPO, the subject's own key).
    pub recipients: Vec<Recipient>,
}

/// A ZIP entry written whole, hashed.
fn put<W>(
    pump: &mut Pump<W>,
    files: &mut Vec<FileHash>,
    path: &str,
    bytes: &[u8],
) -> Result<(), RequestError> {
    pump.zip
        .start_file(path, SimpleFileOptions::default())
        .map_err(zip_err)?;
    pump.zip.write_all(bytes).map_err(io_err)?;
    files.push(FileHash {
        path: path.to_string(),
        sha256: hex::encode(Sha256::digest(bytes)),
        size: bytes.len() as u64,
    });
    Ok(())
}

fn zip_err(e: zip::result::ZipError) -> RequestError {
    RequestError::Unavailable(format!("cannot write the bundle: {e}"))
}

fn io_err(e: std::io::Error) -> RequestError {
    RequestError::Unavailable(format!("cannot write the bundle: {e}"))
}

fn json(v: &impl Serialize) -> Result<Vec<u8>, RequestError> {
    let mut s = serde_json::to_vec_pretty(v).map_err(|e| RequestError::Internal(e.to_string()))?;
    s.push(b'\n');
    Ok(s)
}

impl Engine {
    /// Recipients by registered name (`oubli keys recipient add`); none
    /// named: the host's own key.
    pub fn recipients(&self, names: &[String]) -> Result<Vec<Recipient>, RequestError> {
        let keyring = self.vault.keyring();
        if names.is_empty() {
            return Ok(vec![keyring.host_recipient()?]);
        }
        names
            .iter()
            .map(|n| keyring.recipient(n).map_err(RequestError::from))
            .collect()
    }

    /// Write the bundle of an access or portability request that is over
    /// to `out`, encrypted for `options.recipients`.
    pub async fn write_bundle<W: AsyncWrite + Unpin>(
        &self,
        id: &str,
        options: &BundleOptions,
        out: W,
    ) -> Result<BundleReport, RequestError> {
        let row = requests::get(self.store.pool(), id).await?;
        let portability = match row.kind {
            RequestKind::Access => false,
            RequestKind::Portability => true,
            k => {
                return Err(RequestError::Conflict(format!(
                    "request {id} is {k}: bundles are for access and portability requests"
                )));
            }
        };
        if !matches!(
            row.state,
            RequestState::Completed | RequestState::PartiallyCompleted
        ) {
            return Err(RequestError::Conflict(format!(
                "request {id} is {}: its bundle is ready once it is completed",
                row.state
            )));
        }
        if self.vault.is_shredded(id).await? {
            return Err(RequestError::Conflict(format!(
                "request {id} was shredded: its data can no longer be read"
            )));
        }
        let subject: Subject = self
            .vault
            .open_json(id, Sealed::Subject, &row.subject_sealed)
            .await?;
        let t = options.lang.texts();
        let config = self.systems.config();

        // What each system gave, and what its manifest says.
        let mut systems = Vec::new();
        for s in requests::systems(self.store.pool(), id).await? {
            let result: SystemResult = match &s.result_sealed {
                Some(r) => {
                    self.vault
                        .open_json(id, Sealed::Result(&s.system), r)
                        .await?
                }
                None => SystemResult::default(),
            };
            let categories = self
                .systems
                .registry()
                .get(&s.system)
                .map(|c| c.info().manifest.categories.clone())
                .unwrap_or_default();
            let records: Vec<Exported> = result
                .exported
                .into_iter()
                .map(|mut e| {
                    e.fields.retain(|f| f.category != THIRD_PARTY);
                    if portability {
                        e.attachments.clear();
                    }
                    e
                })
                .collect();
            systems.push((
                s.system,
                s.connector,
                s.state.to_string(),
                categories,
                records,
            ));
        }

        let pending = Pending::default();
        let body = file::encryptor(&options.recipients, "bundle", id, pending.clone())?;
        let mut pump = Pump {
            zip: zip::ZipWriter::new_stream(Hashing::new(body)),
            pending,
            out,
        };
        let mut files = Vec::new();
        let mut pages = Vec::new();
        let mut tables_all = Vec::new();
        let (mut n_records, mut n_attachments) = (0, 0);
        let mut failed = Vec::new();
        for (system, connector, state, categories, records) in &systems {
            n_records += records.len();
            // Attachments first: their hashes go in data/<system>.json.
            let mut file_entries = Vec::new();
            let mut data_records = Vec::new();
            let connector_handle = self.systems.registry().get(system);
            for r in records {
                let mut attachments = Vec::new();
                for a in &r.attachments {
                    let path = format!(
                        "attachments/{}/{}-{}/{}",
                        safe(system),
                        safe(&r.reference.kind),
                        safe(&r.reference.id),
                        safe(&a.name)
                    );
                    let mut entry = html::FileEntry {
                        record_kind: r.reference.kind.clone(),
                        record_id: r.reference.id.clone(),
                        name: a.name.clone(),
                        media_type: a.media_type.clone(),
                        path: path.clone(),
                        size: 0,
                        included: false,
                        text: None,
                    };
                    let Some(plugin) = connector_handle else {
                        failed.push((
                            system.clone(),
                            format!("{}: the connector is not loaded", a.name),
                        ));
                        file_entries.push(entry);
                        continue;
                    };
                    let plugin = plugin.for_subject(&subject);
                    // The first chunk is read before the file is started: a
                    // streamed ZIP cannot take back a file it has begun, so
                    // the common failure (the system is down, the item is
                    // gone) leaves no trace but its note.
                    let reader = plugin.attachment(&r.reference, &a.name);
                    let first = match self.systems.retry().run(|| reader.read(0, CHUNK)).await {
                        Ok(b) => b,
                        Err(e) => {
                            tracing::warn!(system = %system, error = %e, "an attachment could not be read into a bundle");
                            failed.push((system.clone(), format!("{}: {e}", a.name)));
                            attachments.push(serde_json::json!({
                                "name": a.name, "media_type": a.media_type, "included": false,
                            }));
                            file_entries.push(entry);
                            continue;
                        }
                    };
                    pump.zip
                        .start_file(
                            path.as_str(),
                            SimpleFileOptions::default()
                                .compression_method(zip::CompressionMethod::Stored)
                                .large_file(a.size.is_none_or(|s| s >= u32::MAX as u64)),
                        )
                        .map_err(zip_err)?;
                    let mut hash = Sha256::new();
                    let keep_text = a.media_type == "message/rfc822"
                        && a.size.is_some_and(|s| s <= INLINE_EMAIL);
                    let mut text = Vec::new();
                    // A plain loop rather than `read_chunks` with an async
                    // closure: the API streams bundles from a spawned task,
                    // which needs this future to be `Send`.
                    let mut offset = 0u64;
                    let mut first = Some(first);
                    let read: Result<u64, String> = loop {
                        let bytes = match first.take() {
                            Some(b) => b,
                            None => {
                                match self
                                    .systems
                                    .retry()
                                    .run(|| reader.read(offset, CHUNK))
                                    .await
                                {
                                    Ok(b) => b,
                                    Err(e) => break Err(e.to_string()),
                                }
                            }
                        };
                        if bytes.is_empty() {
                            break Ok(offset);
                        }
                        offset += bytes.len() as u64;
                        if a.size.is_some_and(|declared| offset > declared) {
                            break Err(
                                "the attachment is longer than the connector declared".into()
                            );
                        }
                        hash.update(&bytes);
                        if keep_text && text.len() as u64 + bytes.len() as u64 <= INLINE_EMAIL {
                            text.extend_from_slice(&bytes);
                        }
                        if let Err(e) = pump.zip.write_all(&bytes) {
                            break Err(e.to_string());
                        }
                        if let Err(e) = pump.drain().await {
                            break Err(e.to_string());
                        }
                    };
                    match read {
                        Ok(n) => {
                            n_attachments += 1;
                            let sha = hex::encode(hash.finalize());
                            files.push(FileHash {
                                path: path.clone(),
                                sha256: sha.clone(),
                                size: n,
                            });
                            entry.size = n;
                            entry.included = true;
                            if keep_text {
                                entry.text = Some(String::from_utf8_lossy(&text).into_owned());
                            }
                            attachments.push(serde_json::json!({
                                "name": a.name, "media_type": a.media_type, "size": n,
                                "path": path, "sha256": sha,
                            }));
                        }
                        Err(e) => {
                            // Begun and cut: the file stays in the ZIP as far
                            // as it got, listed with its hash and marked
                            // incomplete, never shown as the item.
                            tracing::warn!(system = %system, error = %e, "an attachment was cut short in a bundle");
                            let sha = hex::encode(hash.finalize());
                            files.push(FileHash {
                                path: path.clone(),
                                sha256: sha.clone(),
                                size: offset,
                            });
                            failed.push((
                                system.clone(),
                                format!(
                                    "{}: cut short after {offset} bytes ({e}); {path} in the bundle is incomplete",
                                    a.name
                                ),
                            ));
                            attachments.push(serde_json::json!({
                                "name": a.name, "media_type": a.media_type, "included": false,
                                "incomplete": true, "path": path, "size": offset, "sha256": sha,
                            }));
                        }
                    }
                    file_entries.push(entry);
                    pump.drain().await.map_err(io_err)?;
                }
                data_records.push(serde_json::json!({
                    "kind": r.reference.kind,
                    "id": r.reference.id,
                    "fields": r.fields,
                    "attachments": attachments,
                }));
            }
            let data = serde_json::json!({
                "system": system,
                "connector": connector,
                "state": state,
                "records": data_records,
            });
            put(
                &mut pump,
                &mut files,
                &format!("data/{}.json", safe(system)),
                &json(&data)?,
            )?;
            let refs: Vec<&Exported> = records.iter().collect();
            let tables = sheets::tables(system, &refs);
            for table in &tables {
                let csv = sheets::csv(table).map_err(|e| RequestError::Internal(e.to_string()))?;
                put(
                    &mut pump,
                    &mut files,
                    &format!("data/{}/{}.csv", safe(system), safe(&table.kind)),
                    &csv,
                )?;
            }
            pump.drain().await.map_err(io_err)?;
            tables_all.extend(tables.iter().cloned());
            pages.push(html::SystemPage {
                info: SystemInfo {
                    system: system.clone(),
                    connector: connector.clone(),
                    categories: categories.clone(),
                },
                state: state.clone(),
                tables,
                files: file_entries,
            });
        }
        let xlsx = sheets::xlsx(&tables_all)
            .map_err(|e| RequestError::Internal(format!("cannot write data.xlsx: {e}")))?;
        put(&mut pump, &mut files, "data.xlsx", &xlsx)?;

        let info = Information {
            controller: config.controller.clone(),
            systems: pages.iter().map(|p| p.info.clone()).collect(),
            source: t.source_text.to_string(),
            automated_decisions: config
                .controller
                .automated_decisions
                .clone()
                .unwrap_or_else(|| t.no_automated.to_string()),
            rights: t.rights.iter().map(|r| r.to_string()).collect(),
            complaint: format!(
                "{} {}{}",
                t.complaint_text,
                config.controller.authority.as_deref().unwrap_or(t.not_set),
                config
                    .controller
                    .authority_url
                    .as_deref()
                    .map(|u| format!(" ({u})"))
                    .unwrap_or_default()
            ),
        };
        put(&mut pump, &mut files, "information.json", &json(&info)?)?;

        let date = super::deadline::date;
        let mut facts = vec![
            (t.request, id.to_string()),
            (t.received, date(row.received_at)),
            (t.due, date(row.due_at)),
        ];
        if let Some(f) = row.finalized_at {
            facts.push((t.completed, date(f)));
        }
        facts.push((t.outcome, t.state(row.state.as_str())));
        let title = if portability {
            t.title_portability
        } else {
            t.title_access
        };
        let page = html::page(t, options.lang.code(), title, &facts, &pages, &info);
        put(&mut pump, &mut files, "index.html", page.as_bytes())?;

        let manifest = serde_json::json!({
            "format": FORMAT,
            "request": {
                "id": id,
                "kind": row.kind,
                "state": row.state,
                "received_at": super::deadline::timestamp(row.received_at),
                "due_at": super::deadline::timestamp(row.due_at),
                "finalized_at": row.finalized_at.map(super::deadline::timestamp),
            },
            "lang": options.lang.code(),
            "systems": pages.iter().map(|p| serde_json::json!({
                "system": p.info.system,
                "connector": p.info.connector,
                "state": p.state,
                "records": p.tables.iter().map(|t| t.rows.len()).sum::<usize>(),
                "attachments": p.files.iter().filter(|f| f.included).count(),
                "not_included": failed.iter().filter(|(s, _)| s == &p.info.system).map(|(_, m)| m).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "files": files,
        });
        let manifest = json(&manifest)?;
        pump.zip
            .start_file("manifest.json", SimpleFileOptions::default())
            .map_err(zip_err)?;
        pump.zip.write_all(&manifest).map_err(io_err)?;
        pump.drain().await.map_err(io_err)?;

        let Pump {
            zip,
            pending,
            mut out,
        } = pump;
        let (body, zip_sha256, zip_len) = zip.finish().map_err(zip_err)?.into_inner().finish();
        body.finish()?;
        pending.drain_into(&mut out).await.map_err(io_err)?;
        out.flush().await.map_err(io_err)?;
        tracing::info!(
            request = id,
            records = n_records,
            attachments = n_attachments,
            "bundle written"
        );
        Ok(BundleReport {
            files,
            records: n_records,
            attachments: n_attachments,
            failed,
            zip_sha256,
            zip_len,
        })
    }
}
