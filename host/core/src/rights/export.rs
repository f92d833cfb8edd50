//! A subject's data export (Art. 15 access, Art. 20 portability): export the
//! located records from each system, stream every attachment through
//! `read-attachment` in bounded chunks, and write it all as a ZIP that is
//! encrypted as it is written (docs/FORMAT.md) to any async writer. Nothing
//! is held whole: a long call recording passes through in 1 MiB pieces, so
//! memory stays flat whatever the size.
//!
//! The ZIP today: `records.json` (the subject's identifiers and, per system,
//! each record's fields and attachment paths), and each attachment at
//! `<system>/<kind>-<id>/<name>`.

use super::locate::{LocateReport, SystemAnswer};
use super::retry::RetryPolicy;
use oubli_crypto::CryptoError;
use oubli_crypto::chunked::ChunkedWriter;
use oubli_crypto::file::{self, Recipient};
use oubli_model::{Attachment, Exported, Operation, RecordRef, Subject};
use oubli_runtime::{CallError, ForSubject, Registry};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use zip::write::SimpleFileOptions;

/// Bytes asked of `read-attachment` per call (the fastest of 256 KiB,
/// 1 MiB and 4 MiB in docs/PERFORMANCE.md).
pub const CHUNK: u32 = 1024 * 1024;

/// Records asked of `export` per call, so that one call's result stays far
/// below the connector's `max_output` however many records a system holds.
pub const EXPORT_BATCH: usize = 25;

/// Why streaming an attachment stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// The connector call failed.
    #[error("{0}")]
    Call(#[from] CallError),
    /// The connector sent more bytes than the attachment's declared size.
    #[error("the attachment is longer than the {declared} bytes its export declared")]
    Oversize {
        /// The declared size.
        declared: u64,
    },
    /// Writing the bytes failed.
    #[error("cannot write the attachment: {0}")]
    Write(#[from] std::io::Error),
}

/// Why an export could not be written. A system that fails is reported in
/// [`ExportReport`] instead; these stop the whole export.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// Encrypting failed (no recipient, bad key).
    #[error("cannot encrypt the export: {0}")]
    Crypto(#[from] CryptoError),
    /// Writing the ZIP or the output failed.
    #[error("cannot write the export: {0}")]
    Write(#[from] std::io::Error),
    /// The ZIP writer refused an entry.
    #[error("cannot write the export: {0}")]
    Zip(#[from] zip::result::ZipError),
    /// An attachment could not be streamed.
    #[error("{system}: attachment of a {kind}: {source}")]
    Attachment {
        /// The system.
        system: String,
        /// The record kind.
        kind: String,
        /// Why.
        source: StreamError,
    },
}

/// What one system gave the export.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SystemExport {
    /// The integrator's name for the system.
    pub system: String,
    /// Records exported.
    pub records: usize,
    /// Fields exported.
    pub fields: usize,
    /// Attachments streamed.
    pub attachments: usize,
    /// Attachment bytes streamed.
    pub bytes: u64,
    /// Why the system's export failed, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What an export wrote.
#[derive(Debug, Clone, Serialize)]
pub struct ExportReport {
    /// Per system, in configuration order (systems with nothing found or no
    /// `export` operation show zeros).
    pub systems: Vec<SystemExport>,
    /// SHA-256 of the plaintext ZIP, hex: what the recipient gets back.
    pub zip_sha256: String,
    /// Length of the plaintext ZIP.
    pub zip_len: u64,
    /// Entries in the ZIP.
    pub entries: usize,
}

impl ExportReport {
    /// Whether any system's export failed.
    pub fn has_failures(&self) -> bool {
        self.systems.iter().any(|s| s.error.is_some())
    }
}

/// Export `refs` from `connector` in batches of [`EXPORT_BATCH`], retrying each
/// batch as the system asks.
pub async fn export_records(
    plugin: &ForSubject<'_>,
    refs: &[RecordRef],
    retry: &RetryPolicy,
) -> Result<Vec<Exported>, CallError> {
    let mut out = Vec::with_capacity(refs.len());
    for batch in refs.chunks(EXPORT_BATCH) {
        out.extend(retry.run(|| plugin.export(batch)).await?);
    }
    Ok(out)
}

/// Read one attachment of `reference`, `chunk` bytes per call (each call
/// retried on its own) from one instance of the connector, handing each
/// piece to `sink`; returns the length.
pub async fn read_chunks(
    plugin: &ForSubject<'_>,
    reference: &RecordRef,
    attachment: &Attachment,
    chunk: u32,
    retry: &RetryPolicy,
    mut sink: impl AsyncFnMut(&[u8]) -> std::io::Result<()>,
) -> Result<u64, StreamError> {
    let reader = plugin.attachment(reference, &attachment.name);
    let mut offset = 0u64;
    loop {
        let bytes = retry.run(|| reader.read(offset, chunk)).await?;
        if bytes.is_empty() {
            return Ok(offset);
        }
        offset += bytes.len() as u64;
        if let Some(declared) = attachment.size
            && offset > declared
        {
            return Err(StreamError::Oversize { declared });
        }
        sink(&bytes).await?;
    }
}

/// Stream one attachment into a writer (see [`read_chunks`]).
pub async fn stream_attachment(
    plugin: &ForSubject<'_>,
    reference: &RecordRef,
    attachment: &Attachment,
    chunk: u32,
    retry: &RetryPolicy,
    out: &mut impl Write,
) -> Result<u64, StreamError> {
    read_chunks(plugin, reference, attachment, chunk, retry, async |b| {
        out.write_all(b)
    })
    .await
}

/// A `Write` whose bytes wait in memory until [`Pump::drain`] moves them to
/// the async output: the ZIP and encryption layers are synchronous, the
/// output is not. Drained after every piece, so it never holds more than
/// one chunk.
#[derive(Clone, Default)]
pub(crate) struct Pending(Arc<Mutex<Vec<u8>>>);

impl Write for Pending {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("export buffer poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A writer that hashes (SHA-256) and counts what passes through it: what
/// an export wrote, and what a recipient decrypted, can be compared.
pub struct Hashing<W> {
    inner: W,
    hash: Sha256,
    len: u64,
}

impl<W> Hashing<W> {
    /// Hash what goes to `inner`.
    pub fn new(inner: W) -> Self {
        Hashing {
            inner,
            hash: Sha256::new(),
            len: 0,
        }
    }

    /// The inner writer, the SHA-256 (hex) and the length of what passed.
    pub fn finish(self) -> (W, String, u64) {
        (self.inner, hex::encode(self.hash.finalize()), self.len)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

pub(crate) type Zip = zip::ZipWriter<zip::write::StreamWriter<Hashing<ChunkedWriter<Pending>>>>;

/// The ZIP, its encryption, and the async output it drains into.
pub(crate) struct Pump<W> {
    pub(crate) zip: Zip,
    pub(crate) pending: Pending,
    pub(crate) out: W,
}

impl<W: AsyncWrite + Unpin> Pump<W> {
    pub(crate) async fn drain(&mut self) -> std::io::Result<()> {
        self.pending.drain_into(&mut self.out).await
    }
}

impl Pending {
    /// Take what waits.
    pub(crate) fn take(&self) -> std::io::Result<Vec<u8>> {
        Ok(std::mem::take(&mut *self.0.lock().map_err(|_| {
            std::io::Error::other("export buffer poisoned")
        })?))
    }

    /// Move what waits to `out`.
    pub(crate) async fn drain_into<W: AsyncWrite + Unpin>(
        &self,
        out: &mut W,
    ) -> std::io::Result<()> {
        let bytes = std::mem::take(
            &mut *self
                .0
                .lock()
                .map_err(|_| std::io::Error::other("export buffer poisoned"))?,
        );
        if !bytes.is_empty() {
            out.write_all(&bytes).await?;
        }
        Ok(())
    }
}

/// Write the export of everything `found` to `out`: a ZIP, encrypted for
/// `recipients` as it is written. Systems whose export fails are reported
/// and the others still exported.
pub(crate) async fn write_export<W: AsyncWrite + Unpin>(
    registry: &Registry,
    found: &LocateReport,
    subject: &Subject,
    recipients: &[Recipient],
    request_id: &str,
    retry: &RetryPolicy,
    out: W,
) -> Result<ExportReport, ExportError> {
    let pending = Pending::default();
    let body = file::encryptor(recipients, "export", request_id, pending.clone())?;
    let mut pump = Pump {
        zip: zip::ZipWriter::new_stream(Hashing::new(body)),
        pending,
        out,
    };
    pump.drain().await?;
    let mut index = Vec::new();
    let mut systems = Vec::new();
    let mut entries = 0;
    for report in &found.systems {
        let mut tally = SystemExport {
            system: report.system.clone(),
            ..SystemExport::default()
        };
        let (SystemAnswer::Found { records }, Some(plugin)) =
            (&report.answer, registry.get(&report.system))
        else {
            systems.push(tally);
            continue;
        };
        if records.is_empty() || !plugin.offers(Operation::Export) {
            systems.push(tally);
            continue;
        }
        let plugin = plugin.for_subject(subject);
        let refs: Vec<_> = records.iter().map(|l| l.reference.clone()).collect();
        let exported = match export_records(&plugin, &refs, retry).await {
            Ok(e) => e,
            Err(e) => {
                tally.error = Some(e.to_string());
                systems.push(tally);
                continue;
            }
        };
        let mut out_records = Vec::new();
        for record in &exported {
            tally.records += 1;
            tally.fields += record.fields.len();
            let mut attachments = Vec::new();
            for a in &record.attachments {
                let path = format!(
                    "{}/{}-{}/{}",
                    safe(&report.system),
                    safe(&record.reference.kind),
                    safe(&record.reference.id),
                    safe(&a.name)
                );
                pump.zip.start_file(
                    path.as_str(),
                    SimpleFileOptions::default()
                        .compression_method(zip::CompressionMethod::Stored)
                        .large_file(a.size.is_none_or(|s| s >= u32::MAX as u64)),
                )?;
                entries += 1;
                let n = read_chunks(&plugin, &record.reference, a, CHUNK, retry, async |b| {
                    pump.zip.write_all(b)?;
                    pump.drain().await
                })
                .await
                .map_err(|source| ExportError::Attachment {
                    system: report.system.clone(),
                    kind: record.reference.kind.clone(),
                    source,
                })?;
                tally.attachments += 1;
                tally.bytes += n;
                attachments.push(
                    json!({"name": a.name, "media_type": a.media_type, "size": n, "path": path}),
                );
            }
            out_records.push(json!({
                "kind": record.reference.kind,
                "id": record.reference.id,
                "fields": record.fields,
                "attachments": attachments,
            }));
        }
        index.push(json!({
            "system": report.system,
            "connector": report.connector,
            "records": out_records,
        }));
        systems.push(tally);
    }
    let listing = json!({
        "subject": {"emails": subject.emails, "phones": subject.phones},
        "systems": index,
    });
    pump.zip
        .start_file("records.json", SimpleFileOptions::default())?;
    entries += 1;
    pump.zip.write_all(
        serde_json::to_string_pretty(&listing)
            .map_err(std::io::Error::other)?
            .as_bytes(),
    )?;
    pump.drain().await?;
    let Pump {
        zip,
        pending,
        mut out,
    } = pump;
    let (body, zip_sha256, zip_len) = zip.finish()?.into_inner().finish();
    body.finish()?;
    pending.drain_into(&mut out).await?;
    out.flush().await?;
    Ok(ExportReport {
        systems,
        zip_sha256,
        zip_len,
        entries,
    })
}

/// A path component safe inside a ZIP: no separators, no dot-dot.
pub(crate) fn safe(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.@+".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.trim_matches('.').is_empty() {
        "_".into()
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zip_paths_cannot_escape() {
        assert_eq!(safe("../../etc/passwd"), ".._.._etc_passwd");
        assert_eq!(safe(".."), "_");
        assert_eq!(safe("a/b"), "a_b");
        assert_eq!(safe("rec-1.wav"), "rec-1.wav");
    }
}
