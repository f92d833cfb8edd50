//! The answer of an access (Art. 15) or portability (Art. 20) request:
//! what the subject receives. A ZIP:
//!
//! ```text
//! index.html                       what a person opens first, in the register's first language (html.rs)
//! index.<lang>.html                the same page in each other language
//! manifest.json                    request, dates, systems, outcomes, every file with SHA-256
//! information.json                 the Art. 15(1)-(2) information per language, machine-readable
//! oubli.json                       what this service itself holds about the person
//! data.xlsx                        one sheet per system and record kind
//! data/<system>.json               the records, fields with their categories
//! data/<system>/<kind>.csv         one table per system and record kind
//! attachments/<system>/<kind>-<id>/<name>   recordings and emails (emails only for portability)
//! ```
//!
//! It is assembled once, by the request's last task ([`Engine::assemble`]),
//! when the systems still hold what the export read, and kept in the store
//! in sealed 1 MiB pieces under the request's data key (shredding the
//! request destroys it). Every fetch ([`Engine::write_bundle`]) encrypts
//! that same ZIP for its recipients (docs/FORMAT.md), so an answer fetched
//! after an erasure, or after a recording's retention ran out, is the
//! answer the subject was due, byte for byte.
//!
//! The records are the ones the request's export read and verified;
//! attachments are streamed from the connectors in 1 MiB pieces. A
//! portability answer holds the categories the register makes portable
//! (the export step kept only those), the emails the person wrote or
//! received, and no recordings (they hold other people's voices, Art.
//! 20(4)); a record left with nothing portable is left out and counted.
//! Fields in a category named `third-party` (data about other people:
//! agents' names, other correspondents) stay out of both.

mod html;
mod i18n;
mod mail;
mod sheets;

pub use crate::lang::Lang;
pub use html::esc;

use super::engine::Engine;
use super::export::{CHUNK, Hashing, Pending, safe};
use super::inform::Statement;
use super::request::{RequestError, SystemResult, subject_indexes};
use oubli_crypto::file::{self, Recipient};
use oubli_model::{Exported, Subject};
use oubli_model::{RequestKind, RequestState, SystemState};
use oubli_store::keys::Sealed;
use oubli_store::requests::{self, RequestRow};
use oubli_store::{answers, consent, restrictions};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use zip::write::SimpleFileOptions;

/// The bundle format's name.
pub const FORMAT: &str = "oubli-bundle/1";

/// Emails up to this size are shown inline on the page.
const INLINE_EMAIL: u64 = 256 * 1024;

/// The category name connectors use for data about other people.
pub const THIRD_PARTY: &str = "third-party";

/// What one system is, for the page and the manifest.
#[derive(Debug, Clone, Serialize)]
pub struct SystemInfo {
    /// The integrator's name for it.
    pub system: String,
    /// Its connector, `id@version`.
    pub connector: Option<String>,
}

/// One file of the bundle, as the manifest lists it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileHash {
    /// Its path in the ZIP.
    pub path: String,
    /// SHA-256 of its content, hex.
    pub sha256: String,
    /// Its size.
    pub size: u64,
}

/// What a kept answer holds: counts, what could not be included, and the
/// register's gaps when it was written.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BundleReport {
    /// The files, with their hashes (what `manifest.json` lists).
    pub files: Vec<FileHash>,
    /// Records included.
    pub records: usize,
    /// Records left out of a portability answer: nothing in them is
    /// portable.
    pub left_out: usize,
    /// Attachments included.
    pub attachments: usize,
    /// Attachments that could not be read, per system (named in the
    /// manifest and on the page; the rest of the answer is complete).
    pub failed: Vec<(String, String)>,
    /// What the register did not say when the answer was written (the page
    /// says so at its top).
    pub gaps: Vec<String>,
    /// SHA-256 of the plaintext ZIP.
    pub zip_sha256: String,
    /// Its length.
    pub zip_len: u64,
}

/// How to hand out a kept answer.
#[derive(Debug, Clone)]
pub struct BundleOptions {
    /// Who can decrypt it (the DPO, the subject's own key).
    pub recipients: Vec<Recipient>,
    /// Hand it out even though the register had gaps when it was written
    /// (its page says so).
    pub allow_incomplete: bool,
}

/// What this service itself holds about the person (its own processing:
/// handling their requests), shown in the answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Held {
    /// The consent ledger's entries.
    pub consents: Vec<HeldConsent>,
    /// Restrictions and objections in force.
    pub restrictions: Vec<HeldRestriction>,
    /// Their requests, this one included.
    pub requests: Vec<HeldRequest>,
}

/// One consent entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeldConsent {
    /// The purpose.
    pub purpose: String,
    /// `given` or `withdrawn`.
    pub action: String,
    /// Its lawful basis, as recorded.
    pub lawful_basis: String,
    /// How it was given.
    pub channel: String,
    /// When (RFC 3339).
    pub at: String,
}

/// One restriction in force.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeldRestriction {
    /// What it covers.
    pub scope: String,
    /// The request that set it.
    pub request: String,
    /// Since when (RFC 3339).
    pub since: String,
}

/// One of their requests.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeldRequest {
    /// Its id.
    pub id: String,
    /// What was asked.
    pub kind: String,
    /// Where it stands (when the answer was written).
    pub state: String,
    /// When it was received (RFC 3339).
    pub received: String,
    /// When it ended (RFC 3339).
    pub finalized: Option<String>,
}

/// Pieces of the kept answer are this long (the last one shorter).
const PIECE: usize = 1 << 20;

/// Where an answer being assembled goes: sealed 1 MiB pieces in the store,
/// under the attempt that writes them.
struct Pieces<'a> {
    engine: &'a Engine,
    request: &'a str,
    attempt: &'a str,
    seq: i64,
    buf: Vec<u8>,
}

impl Pieces<'_> {
    async fn put(&mut self, bytes: Vec<u8>) -> Result<(), RequestError> {
        let sealed = self
            .engine
            .vault
            .seal(
                self.request,
                Sealed::Answer {
                    attempt: self.attempt,
                    seq: self.seq,
                },
                &bytes,
            )
            .await?;
        answers::put_chunk(
            &self.engine.store,
            self.request,
            self.attempt,
            self.seq,
            &sealed,
        )
        .await?;
        self.seq += 1;
        Ok(())
    }

    /// Store every whole piece that waits in `pending`.
    async fn drain(&mut self, pending: &Pending) -> Result<(), RequestError> {
        self.buf.extend(pending.take().map_err(io_err)?);
        while self.buf.len() >= PIECE {
            let rest = self.buf.split_off(PIECE);
            let piece = std::mem::replace(&mut self.buf, rest);
            self.put(piece).await?;
        }
        Ok(())
    }

    /// Store what is left; the number of pieces.
    async fn finish(mut self, pending: &Pending) -> Result<i64, RequestError> {
        self.drain(pending).await?;
        if !self.buf.is_empty() {
            let last = std::mem::take(&mut self.buf);
            self.put(last).await?;
        }
        Ok(self.seq)
    }
}

type PlainZip = zip::ZipWriter<zip::write::StreamWriter<Hashing<Pending>>>;

/// A ZIP entry written whole, hashed.
fn put(
    zip: &mut PlainZip,
    files: &mut Vec<FileHash>,
    path: &str,
    bytes: &[u8],
) -> Result<(), RequestError> {
    zip.start_file(path, SimpleFileOptions::default())
        .map_err(zip_err)?;
    zip.write_all(bytes).map_err(io_err)?;
    files.push(FileHash {
        path: path.to_string(),
        sha256: hex::encode(Sha256::digest(bytes)),
        size: bytes.len() as u64,
    });
    Ok(())
}

fn zip_err(e: zip::result::ZipError) -> RequestError {
    RequestError::Unavailable(format!("cannot write the answer: {e}"))
}

fn io_err(e: std::io::Error) -> RequestError {
    RequestError::Unavailable(format!("cannot write the answer: {e}"))
}

fn json(v: &impl Serialize) -> Result<Vec<u8>, RequestError> {
    let mut s = serde_json::to_vec_pretty(v).map_err(|e| RequestError::Internal(e.to_string()))?;
    s.push(b'\n');
    Ok(s)
}

/// How a request whose tasks are over ends: completed when every system
/// did its part (or had nothing), partially completed when some did not,
/// failed when none did.
pub(crate) fn outcome(states: &[SystemState]) -> RequestState {
    let good = |s: &SystemState| matches!(s, SystemState::Done | SystemState::Nothing);
    let did = states.iter().filter(|s| **s == SystemState::Done).count();
    if states.iter().all(good) {
        RequestState::Completed
    } else if did > 0 || states.contains(&SystemState::Partial) {
        RequestState::PartiallyCompleted
    } else {
        RequestState::Failed
    }
}

/// What one system gave the answer.
struct Part {
    system: String,
    connector: Option<String>,
    state: String,
    records: Vec<Exported>,
}

impl Engine {
    /// The names of the recipients registered in the keyring (`oubli keys
    /// recipient add`), for a face to offer.
    pub fn recipient_names(&self) -> Vec<String> {
        self.vault
            .keyring()
            .list()
            .recipients
            .into_iter()
            .map(|r| r.name)
            .collect()
    }

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

    /// What this service holds about `subject`: consents, restrictions,
    /// requests (found through blind indexes).
    async fn held(&self, subject: &Subject) -> Result<Held, RequestError> {
        let ts = super::deadline::timestamp;
        let indexes = subject_indexes(&self.vault, subject);
        let pool = self.store.pool();
        let consents = consent::history(pool, &indexes)
            .await?
            .into_iter()
            .map(|c| HeldConsent {
                purpose: c.purpose,
                action: c.action,
                lawful_basis: c.lawful_basis,
                channel: c.channel,
                at: ts(c.at),
            })
            .collect();
        let restrictions = restrictions::on(pool, &indexes)
            .await?
            .into_iter()
            .map(|r| (r.scope, r.request_id, r.created_at))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .map(|(scope, request, at)| HeldRestriction {
                scope,
                request,
                since: ts(at),
            })
            .collect();
        let mut ids = BTreeSet::new();
        for h in &indexes {
            ids.extend(requests::by_index(pool, h).await?);
        }
        let mut reqs = Vec::new();
        for id in ids {
            let r = requests::get(pool, &id).await?;
            reqs.push(HeldRequest {
                id: r.id,
                kind: r.kind.to_string(),
                state: r.state.to_string(),
                received: ts(r.received_at),
                finalized: r.finalized_at.map(ts),
            });
        }
        Ok(Held {
            consents,
            restrictions,
            requests: reqs,
        })
    }

    /// Assemble the answer of access or portability request `row` and keep
    /// it in the store under `attempt`: its SHA-256, length, pieces and
    /// what it holds (sealed). What the request's last task does.
    pub(crate) async fn assemble(
        &self,
        row: &RequestRow,
        subject: &Subject,
        attempt: &str,
    ) -> Result<(BundleReport, i64), RequestError> {
        let id = row.id.as_str();
        let portability = row.kind == RequestKind::Portability;
        let config = self.systems.config();
        let register = config.register.as_ref();
        let languages: Vec<Lang> = register
            .map(|r| r.languages.clone())
            .unwrap_or_else(|| Lang::ALL.to_vec());

        // What each system gave.
        let mut parts = Vec::new();
        let mut left_out = 0usize;
        let mut excluded = Vec::new();
        let mut states = Vec::new();
        // Access and portability tell no recipient (Art. 19): every row is
        // a system.
        for s in requests::systems(self.store.pool(), id).await? {
            states.push(s.state);
            let result: SystemResult = match &s.result_sealed {
                Some(r) => {
                    self.vault
                        .open_json(id, Sealed::Result(&s.system), r)
                        .await?
                }
                None => SystemResult::default(),
            };
            let mut records = Vec::new();
            for mut e in result.exported {
                e.fields.retain(|f| f.category != THIRD_PARTY);
                if portability {
                    // Recordings hold other people's voices (Art. 20(4)).
                    let before = e.attachments.len();
                    e.attachments.retain(|a| {
                        !(a.media_type.starts_with("audio/") || a.media_type.starts_with("video/"))
                    });
                    if e.attachments.len() < before {
                        excluded.push((s.system.clone(), before - e.attachments.len()));
                    }
                    if e.fields.is_empty() && e.attachments.is_empty() {
                        left_out += 1;
                        continue;
                    }
                }
                records.push(e);
            }
            parts.push(Part {
                system: s.system,
                connector: s.connector,
                state: s.state.to_string(),
                records,
            });
        }
        let state = outcome(&states);
        let now = self.store.now();

        let pending = Pending::default();
        let mut zip: PlainZip = zip::ZipWriter::new_stream(Hashing::new(pending.clone()));
        let mut pieces = Pieces {
            engine: self,
            request: id,
            attempt,
            seq: 0,
            buf: Vec::new(),
        };
        let mut files = Vec::new();
        let mut pages = Vec::new();
        let mut tables_all = Vec::new();
        let (mut n_records, mut n_attachments) = (0, 0);
        let mut failed = Vec::new();
        for part in &parts {
            let system = &part.system;
            n_records += part.records.len();
            // Attachments first: their hashes go in data/<system>.json.
            let mut file_entries = Vec::new();
            let mut data_records = Vec::new();
            let connector_handle = self.systems.registry().get(system);
            for r in &part.records {
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
                        raw: None,
                    };
                    let Some(plugin) = connector_handle else {
                        failed.push((
                            system.clone(),
                            format!("{}: the connector is not loaded", a.name),
                        ));
                        file_entries.push(entry);
                        continue;
                    };
                    let plugin = plugin.for_subject(subject);
                    // The first chunk is read before the file is started: a
                    // streamed ZIP cannot take back a file it has begun, so
                    // the common failure (the system is down, the item is
                    // gone) leaves no trace but its note.
                    let reader = plugin.attachment(&r.reference, &a.name);
                    let first = match self.systems.retry().run(|| reader.read(0, CHUNK)).await {
                        Ok(b) => b,
                        Err(e) => {
                            tracing::warn!(system = %system, error = %e, "an attachment could not be read into an answer");
                            failed.push((system.clone(), format!("{}: {e}", a.name)));
                            attachments.push(serde_json::json!({
                                "name": a.name, "media_type": a.media_type, "included": false,
                            }));
                            file_entries.push(entry);
                            continue;
                        }
                    };
                    zip.start_file(
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
                    // closure: this future runs on spawned tasks, so it
                    // must be `Send`.
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
                        if let Err(e) = zip.write_all(&bytes) {
                            break Err(e.to_string());
                        }
                        if let Err(e) = pieces.drain(&pending).await {
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
                                entry.raw = Some(text);
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
                            tracing::warn!(system = %system, error = %e, "an attachment was cut short in an answer");
                            let sha = hex::encode(hash.finalize());
                            files.push(FileHash {
                                path: path.clone(),
                                sha256: sha.clone(),
                                size: offset,
                            });
                            failed.push((
                                system.clone(),
                                format!(
                                    "{}: cut short after {offset} bytes ({e}); {path} in the answer is incomplete",
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
                    pieces.drain(&pending).await?;
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
                "connector": part.connector,
                "state": part.state,
                "records": data_records,
            });
            put(
                &mut zip,
                &mut files,
                &format!("data/{}.json", safe(system)),
                &json(&data)?,
            )?;
            let refs: Vec<&Exported> = part.records.iter().collect();
            let tables = sheets::tables(system, &refs);
            for table in &tables {
                let csv = sheets::csv(table).map_err(|e| RequestError::Internal(e.to_string()))?;
                put(
                    &mut zip,
                    &mut files,
                    &format!("data/{}/{}.csv", safe(system), safe(&table.kind)),
                    &csv,
                )?;
            }
            pieces.drain(&pending).await?;
            tables_all.extend(tables.iter().cloned());
            pages.push(html::SystemPage {
                info: SystemInfo {
                    system: system.clone(),
                    connector: part.connector.clone(),
                },
                state: part.state.clone(),
                tables,
                files: file_entries,
            });
        }
        let xlsx = sheets::xlsx(&tables_all)
            .map_err(|e| RequestError::Internal(format!("cannot write data.xlsx: {e}")))?;
        put(&mut zip, &mut files, "data.xlsx", &xlsx)?;

        // The information, per language, for the activities that process
        // the data of the systems that held some.
        let with_data: BTreeSet<String> = parts
            .iter()
            .filter(|p| !p.records.is_empty())
            .map(|p| p.system.clone())
            .collect();
        let scope = (!with_data.is_empty()).then_some(&with_data);
        let info: BTreeMap<&str, Statement> = languages
            .iter()
            .map(|l| (l.code(), self.systems.information(*l, scope)))
            .collect();
        put(&mut zip, &mut files, "information.json", &json(&info)?)?;
        let gaps: Vec<String> = info
            .values()
            .next()
            .map(|s| s.gaps.iter().map(|g| g.to_string()).collect())
            .unwrap_or_default();
        let held = self.held(subject).await?;
        put(&mut zip, &mut files, "oubli.json", &json(&held)?)?;

        for (i, lang) in languages.iter().enumerate() {
            let t = lang.texts();
            let date = |ms: i64| {
                crate::lang::human_date(&super::deadline::timestamp(ms), *lang).unwrap_or_default()
            };
            let facts = vec![
                (t.request, id.to_string()),
                (t.received, date(row.received_at)),
                (t.due, date(row.due_at)),
                (t.completed, date(now)),
                (t.outcome, t.state(state.as_str())),
            ];
            let others: Vec<(Lang, String)> = languages
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(j, l)| (*l, page_name(j, *l)))
                .collect();
            let page = html::page(&html::PageInput {
                lang: *lang,
                portability,
                facts: &facts,
                systems: &pages,
                info: &info[lang.code()],
                held: &held,
                others: &others,
                left_out,
                excluded: excluded.iter().map(|(_, n)| n).sum(),
                register,
            });
            put(&mut zip, &mut files, &page_name(i, *lang), page.as_bytes())?;
            pieces.drain(&pending).await?;
        }

        let manifest = serde_json::json!({
            "format": FORMAT,
            "request": {
                "id": id,
                "kind": row.kind,
                "state": state,
                "received_at": super::deadline::timestamp(row.received_at),
                "due_at": super::deadline::timestamp(row.due_at),
                "answered_at": super::deadline::timestamp(now),
            },
            "languages": languages.iter().map(|l| l.code()).collect::<Vec<_>>(),
            "complete": gaps.is_empty(),
            "register_gaps": gaps,
            "systems": pages.iter().map(|p| serde_json::json!({
                "system": p.info.system,
                "connector": p.info.connector,
                "state": p.state,
                "records": p.tables.iter().map(|t| t.rows.len()).sum::<usize>(),
                "attachments": p.files.iter().filter(|f| f.included).count(),
                "not_included": failed.iter().filter(|(s, _)| s == &p.info.system).map(|(_, m)| m).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "left_out": left_out,
            "files": files,
        });
        let manifest = json(&manifest)?;
        zip.start_file("manifest.json", SimpleFileOptions::default())
            .map_err(zip_err)?;
        zip.write_all(&manifest).map_err(io_err)?;
        let (_, zip_sha256, zip_len) = zip.finish().map_err(zip_err)?.into_inner().finish();
        let chunks = pieces.finish(&pending).await?;
        tracing::info!(
            request = id,
            records = n_records,
            attachments = n_attachments,
            bytes = zip_len,
            "answer assembled"
        );
        Ok((
            BundleReport {
                files,
                records: n_records,
                left_out,
                attachments: n_attachments,
                failed,
                gaps,
                zip_sha256,
                zip_len,
            },
            chunks,
        ))
    }

    /// Piece `seq` of the answer of `id` kept by `attempt`, unsealed.
    async fn kept_piece(
        &self,
        id: &str,
        attempt: &str,
        seq: i64,
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, RequestError> {
        let sealed = answers::chunk(self.store.pool(), id, attempt, seq).await?;
        Ok(self
            .vault
            .open(id, Sealed::Answer { attempt, seq }, &sealed)
            .await?)
    }

    /// Whether request `id` has an answer to hand out: refused (with why)
    /// when it is not an access or portability request, is not answered
    /// yet, was shredded, or its answer was removed; and, unless
    /// `allow_incomplete`, when the register had gaps as it was written.
    pub async fn check_answer(&self, id: &str, allow_incomplete: bool) -> Result<(), RequestError> {
        self.ready_answer(id, allow_incomplete).await.map(|_| ())
    }

    async fn ready_answer(
        &self,
        id: &str,
        allow_incomplete: bool,
    ) -> Result<(answers::AnswerRow, BundleReport), RequestError> {
        let row = requests::get(self.store.pool(), id).await?;
        if !matches!(row.kind, RequestKind::Access | RequestKind::Portability) {
            return Err(RequestError::Conflict(format!(
                "request {id} is {}: answers are for access and portability requests",
                row.kind
            )));
        }
        if self.vault.is_shredded(id).await? {
            return Err(RequestError::Conflict(format!(
                "request {id} was shredded: its answer was destroyed with it"
            )));
        }
        let Some(answer) = answers::get(self.store.pool(), id).await? else {
            return Err(RequestError::Conflict(format!(
                "request {id} is {}: its answer is ready once its last task has assembled it",
                row.state
            )));
        };
        if let Some(at) = answer.removed_at {
            return Err(RequestError::Conflict(format!(
                "request {id}'s answer was removed on {} at the end of its keeping period ([policy] keep_answers)",
                super::deadline::date(at)
            )));
        }
        let report: BundleReport = self
            .vault
            .open_json(id, Sealed::AnswerSummary, &answer.summary_sealed)
            .await?;
        if !report.gaps.is_empty() && !allow_incomplete {
            return Err(RequestError::Conflict(format!(
                "request {id}'s answer was written while the register of processing had {} gap(s), and says so on its page: hand it out only knowingly (allow incomplete)",
                report.gaps.len()
            )));
        }
        Ok((answer, report))
    }

    /// The kept answer of access or portability request `id`, encrypted
    /// for `options.recipients` to `out`: the same ZIP at every fetch.
    pub async fn write_bundle<W: AsyncWrite + Unpin>(
        &self,
        id: &str,
        options: &BundleOptions,
        mut out: W,
    ) -> Result<BundleReport, RequestError> {
        let (answer, report) = self.ready_answer(id, options.allow_incomplete).await?;
        let pending = Pending::default();
        let mut body = file::encryptor(&options.recipients, "bundle", id, pending.clone())?;
        let mut hash = Sha256::new();
        let mut len = 0u64;
        for seq in 0..answer.chunks {
            let plain = self.kept_piece(id, &answer.attempt, seq).await?;
            hash.update(&plain);
            len += plain.len() as u64;
            body.write_all(&plain).map_err(io_err)?;
            pending.drain_into(&mut out).await.map_err(io_err)?;
        }
        // A stored answer that is not the one kept is never finished: the
        // recipient's file stays unauthenticated.
        if hex::encode(hash.finalize()) != answer.sha256 || len != answer.len as u64 {
            return Err(RequestError::Internal(format!(
                "request {id}'s kept answer does not match its SHA-256"
            )));
        }
        body.finish()?;
        pending.drain_into(&mut out).await.map_err(io_err)?;
        out.flush().await.map_err(io_err)?;
        tracing::info!(request = id, bytes = len, "answer handed out");
        Ok(report)
    }

    /// The kept answer of access or portability request `id` as the ZIP
    /// itself, to `out` piece by piece (flat memory): what the privacy
    /// center hands the subject over TLS. A stored answer that does not
    /// match its SHA-256 ends in an error after its last piece, so the
    /// face cuts the transfer instead of finishing it. Returns its length.
    pub async fn write_answer<W: AsyncWrite + Unpin>(
        &self,
        id: &str,
        mut out: W,
    ) -> Result<u64, RequestError> {
        let (answer, _) = self.ready_answer(id, false).await?;
        let mut hash = Sha256::new();
        let mut len = 0u64;
        for seq in 0..answer.chunks {
            let plain = self.kept_piece(id, &answer.attempt, seq).await?;
            hash.update(&plain);
            len += plain.len() as u64;
            out.write_all(&plain).await.map_err(io_err)?;
        }
        if hex::encode(hash.finalize()) != answer.sha256 || len != answer.len as u64 {
            return Err(RequestError::Internal(format!(
                "request {id}'s kept answer does not match its SHA-256"
            )));
        }
        out.flush().await.map_err(io_err)?;
        tracing::info!(request = id, bytes = len, "answer handed to its subject");
        Ok(len)
    }

    /// The kept answer's length and SHA-256, once it may be handed out.
    pub async fn answer_size(&self, id: &str) -> Result<(u64, String), RequestError> {
        let (answer, _) = self.ready_answer(id, false).await?;
        Ok((answer.len as u64, answer.sha256))
    }

    /// Remove the kept answers older than `[policy] keep_answers` (their
    /// pieces; the request says when). Returns how many.
    pub async fn remove_expired_answers(&self) -> Result<usize, RequestError> {
        let Some(keep) = self.systems.config().policy.keep_answers_ms else {
            return Ok(0);
        };
        let now = self.store.now();
        let due = answers::kept_before(self.store.pool(), now - keep as i64, 100).await?;
        let mut n = 0;
        for id in due {
            let mut tx = self.store.write_logged().await?;
            if answers::remove(&mut tx, &id, now).await? {
                requests::event(
                    &mut tx,
                    &super::request::event(&id, "keeper", "answer-removed", None),
                    now,
                )
                .await?;
                n += 1;
            }
            oubli_store::commit(tx).await?;
        }
        if n > 0 {
            tracing::info!(answers = n, "answers past their keeping period removed");
        }
        Ok(n)
    }
}

/// The file name of the page in the `i`th language.
fn page_name(i: usize, lang: Lang) -> String {
    if i == 0 {
        "index.html".into()
    } else {
        format!("index.{}.html", lang.code())
    }
}

/// The kept answer read back as a file, piece by piece (one piece held at
/// a time), for the ZIP reader: what lets one file of the answer be read
/// without the rest. Runs on a blocking thread; each piece is fetched on
/// the runtime `handle`.
struct KeptReader {
    engine: std::sync::Arc<Engine>,
    handle: tokio::runtime::Handle,
    id: String,
    attempt: String,
    len: u64,
    pos: u64,
    piece: Option<(i64, zeroize::Zeroizing<Vec<u8>>)>,
}

impl KeptReader {
    fn piece(&mut self, seq: i64) -> std::io::Result<&[u8]> {
        if self.piece.as_ref().is_none_or(|(s, _)| *s != seq) {
            let (engine, id, attempt) =
                (self.engine.clone(), self.id.clone(), self.attempt.clone());
            let plain = self
                .handle
                .block_on(async move { engine.kept_piece(&id, &attempt, seq).await })
                .map_err(std::io::Error::other)?;
            self.piece = Some((seq, plain));
        }
        Ok(&self.piece.as_ref().expect("just read").1)
    }
}

impl std::io::Read for KeptReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.len || buf.is_empty() {
            return Ok(0);
        }
        let seq = (self.pos / PIECE as u64) as i64;
        let at = (self.pos % PIECE as u64) as usize;
        let piece = self.piece(seq)?;
        let n = buf.len().min(piece.len().saturating_sub(at));
        if n == 0 {
            return Err(std::io::Error::other(
                "the kept answer is shorter than said",
            ));
        }
        buf[..n].copy_from_slice(&piece[at..at + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl std::io::Seek for KeptReader {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        let next = match to {
            std::io::SeekFrom::Start(n) => n as i128,
            std::io::SeekFrom::End(d) => self.len as i128 + d as i128,
            std::io::SeekFrom::Current(d) => self.pos as i128 + d as i128,
        };
        if next < 0 {
            return Err(std::io::Error::other("seek before the start"));
        }
        self.pos = next as u64;
        Ok(self.pos)
    }
}

/// One file of a kept answer, read for a person to see online.
#[derive(Debug)]
pub enum AnswerFile {
    /// Its bytes.
    Found(Vec<u8>),
    /// No such file in the answer.
    Missing,
    /// Larger than may be read at once (its size): download the ZIP.
    TooLarge(u64),
}

impl Engine {
    /// The file `path` of the kept answer of `id` (the ZIP's index pages,
    /// its records, an attachment), read without the rest of the answer;
    /// files over `max` bytes are not read.
    pub async fn answer_file(
        self: &std::sync::Arc<Self>,
        id: &str,
        path: &str,
        max: u64,
    ) -> Result<AnswerFile, RequestError> {
        use std::io::Read;
        let (answer, _) = self.ready_answer(id, false).await?;
        let reader = KeptReader {
            engine: self.clone(),
            handle: tokio::runtime::Handle::current(),
            id: id.to_string(),
            attempt: answer.attempt.clone(),
            len: answer.len as u64,
            pos: 0,
            piece: None,
        };
        let path = path.to_string();
        tokio::task::spawn_blocking(move || {
            let bad = |e: zip::result::ZipError| {
                RequestError::Internal(format!("the kept answer cannot be read as a ZIP: {e}"))
            };
            let mut zip = zip::ZipArchive::new(reader).map_err(bad)?;
            let mut file = match zip.by_name(&path) {
                Ok(f) => f,
                Err(zip::result::ZipError::FileNotFound) => return Ok(AnswerFile::Missing),
                Err(e) => return Err(bad(e)),
            };
            if file.is_dir() {
                return Ok(AnswerFile::Missing);
            }
            if file.size() > max {
                return Ok(AnswerFile::TooLarge(file.size()));
            }
            let mut out = Vec::with_capacity(file.size() as usize);
            file.read_to_end(&mut out).map_err(|e| {
                RequestError::Internal(format!("the kept answer cannot be read: {e}"))
            })?;
            Ok(AnswerFile::Found(out))
        })
        .await
        .map_err(|e| RequestError::Internal(format!("reading the answer stopped: {e}")))?
    }

    /// The name of the answer's page in `lang` (`index.html` for the
    /// register's first language).
    pub fn answer_page_name(&self, lang: crate::lang::Lang) -> String {
        let first = self
            .systems
            .config()
            .register
            .as_ref()
            .and_then(|r| r.languages.first().copied())
            .unwrap_or_default();
        if lang == first {
            "index.html".into()
        } else {
            format!("index.{}.html", lang.code())
        }
    }
}

impl Engine {
    /// The kept answer of `id` in a ZIP of one entry, `answer.zip`,
    /// encrypted with AES-256 under `password` (WinZip AE-2, which 7-Zip,
    /// WinZip and most archive tools open), for a subject who asked for it
    /// by email. Refused past `max` bytes (mail is no place for more).
    pub async fn answer_with_password(
        &self,
        id: &str,
        password: &str,
        max: u64,
    ) -> Result<Vec<u8>, RequestError> {
        let plain = self.answer_in_memory(id, max).await?;
        let mut out = std::io::Cursor::new(Vec::with_capacity(plain.len() + 1024));
        {
            let mut zip = zip::ZipWriter::new(&mut out);
            zip.start_file(
                "answer.zip",
                SimpleFileOptions::default()
                    .compression_method(zip::CompressionMethod::Stored)
                    .with_aes_encryption(zip::AesMode::Aes256, password),
            )
            .map_err(zip_err)?;
            zip.write_all(&plain).map_err(io_err)?;
            zip.finish().map_err(zip_err)?;
        }
        Ok(out.into_inner())
    }

    /// The kept answer of `id` encrypted for the RSA public key `pem`, in
    /// oubli's file format (docs/FORMAT.md; `docs/decrypt.py` opens it).
    /// Refused past `max` bytes.
    pub async fn answer_for_key(
        &self,
        id: &str,
        pem: &str,
        max: u64,
    ) -> Result<Vec<u8>, RequestError> {
        let recipient = Recipient::from_pem(pem)
            .map_err(|_| RequestError::Invalid("not an RSA public key in PEM".into()))?;
        let (len, _) = self.answer_size(id).await?;
        if len > max {
            return Err(RequestError::Conflict(format!(
                "the answer ({len} bytes) is too large to send by email: download it"
            )));
        }
        let mut out = Vec::with_capacity(len as usize + 4096);
        self.write_bundle(
            id,
            &BundleOptions {
                recipients: vec![recipient],
                allow_incomplete: false,
            },
            &mut out,
        )
        .await?;
        Ok(out)
    }

    async fn answer_in_memory(
        &self,
        id: &str,
        max: u64,
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, RequestError> {
        let (len, _) = self.answer_size(id).await?;
        if len > max {
            return Err(RequestError::Conflict(format!(
                "the answer ({len} bytes) is too large to send by email: download it"
            )));
        }
        let mut plain = zeroize::Zeroizing::new(Vec::with_capacity(len as usize));
        self.write_answer(id, &mut *plain).await?;
        Ok(plain)
    }
}
