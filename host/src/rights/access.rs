//! Reading a subject's data out of a system (Art. 15 access, Art. 20
//! portability): export the located records, then stream every attachment
//! through `read-attachment` in bounded chunks, so a long call recording
//! never sits in memory whole, neither in the plugin nor in the host.
//!
//! What is done with the bytes (a ZIP inside an encrypted file, a portable
//! bundle) is the caller's business: attachments go to any [`Write`].

use super::retry::RetryPolicy;
use crate::runtime::{Attachment, CallError, Exported, Plugin, RecordRef};
use std::io::Write;

/// Bytes asked of `read-attachment` per call (the fastest of 256 KiB,
/// 1 MiB and 4 MiB in docs/PERFORMANCE.md).
pub const CHUNK: u32 = 1024 * 1024;

/// Records asked of `export` per call, so that one call's result stays far
/// below the plugin's `max_output` however many records a system holds.
pub const EXPORT_BATCH: usize = 25;

/// Why streaming an attachment stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// The plugin call failed.
    #[error("{0}")]
    Call(#[from] CallError),
    /// The plugin sent more bytes than the attachment's declared size.
    #[error("the attachment is longer than the {declared} bytes its export declared")]
    Oversize {
        /// The declared size.
        declared: u64,
    },
    /// Writing the bytes failed.
    #[error("cannot write the attachment: {0}")]
    Write(#[from] std::io::Error),
}

/// Export `refs` from `plugin` in batches of [`EXPORT_BATCH`], retrying each
/// batch as the system asks.
pub async fn export(
    plugin: &Plugin,
    refs: &[RecordRef],
    retry: &RetryPolicy,
) -> Result<Vec<Exported>, CallError> {
    let mut out = Vec::with_capacity(refs.len());
    for batch in refs.chunks(EXPORT_BATCH) {
        out.extend(retry.run(|| plugin.export(batch)).await?);
    }
    Ok(out)
}

/// Stream one attachment of `reference` into `out`, `chunk` bytes per call
/// (each call retried on its own); returns the bytes written.
pub async fn stream_attachment(
    plugin: &Plugin,
    reference: &RecordRef,
    attachment: &Attachment,
    chunk: u32,
    retry: &RetryPolicy,
    out: &mut impl Write,
) -> Result<u64, StreamError> {
    let mut offset = 0u64;
    loop {
        let bytes = retry
            .run(|| plugin.read_attachment(reference, &attachment.name, offset, chunk))
            .await?;
        if bytes.is_empty() {
            return Ok(offset);
        }
        offset += bytes.len() as u64;
        if let Some(declared) = attachment.size
            && offset > declared
        {
            return Err(StreamError::Oversize { declared });
        }
        out.write_all(&bytes)?;
    }
}
