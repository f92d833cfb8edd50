//! The oubli file format for recordings and export bundles: a header, then
//! the body in C2SP chunked encryption with the whole header as context.
//!
//! ```text
//! "oubliENC" (8) | version = 1 (1)
//! kind length (1) | kind (ASCII, 1..=64)          e.g. "export-bundle", "recording"
//! request id length (1) | request id (0..=64)
//! recipient count n (1, 1..=16)
//! n × { key id (8) | wrapped key length L (2, big-endian) | wrapped key (L) }
//! body: salt (24) | commitment (32) | chunks (16384 + 16 bytes each, the last shorter)
//! ```
//!
//! The 32-byte file key is fresh per file and wrapped for each recipient with
//! RSA-OAEP, SHA-256 and MGF1-SHA-256, empty label. A key id is the first 8
//! bytes of SHA-256 over the recipient's SubjectPublicKeyInfo (DER). Since the
//! header is the chunked encryption's context, changing any header byte
//! (kind, request id, recipients) makes the commitment check fail. See
//! docs/FORMAT.md for a worked example and a Python decryptor.

use super::CryptoError;
use super::chunked::{ChunkedReader, ChunkedWriter};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey};
use rsa::sha2::Sha256;
use rsa::{PrivateKey, PublicKey};
use std::io::{Read, Write};
use zeroize::Zeroizing;

/// The first bytes of every oubli encrypted file.
pub const MAGIC: &[u8; 8] = b"oubliENC";
/// The format version written.
pub const VERSION: u8 = 1;
/// Most recipients per file.
pub const MAX_RECIPIENTS: usize = 16;
const MAX_LABEL: usize = 64;
const MAX_WRAPPED: usize = 1024;

/// Someone a file is encrypted for: an RSA public key and its id.
#[derive(Clone)]
pub struct Recipient {
    id: String,
    key: PublicKey,
}

impl Recipient {
    /// A recipient from a public key.
    pub fn new(key: PublicKey) -> Result<Recipient, CryptoError> {
        Ok(Recipient {
            id: rsa_key_id(&key)?,
            key,
        })
    }

    /// A recipient from a PEM SubjectPublicKeyInfo (`BEGIN PUBLIC KEY`).
    pub fn from_pem(pem: &str) -> Result<Recipient, CryptoError> {
        let key = PublicKey::from_public_key_pem(pem).map_err(|e| {
            CryptoError::MalformedHeader(format!("not an RSA public key in PEM: {e}"))
        })?;
        Recipient::new(key)
    }

    /// Its key id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl std::fmt::Debug for Recipient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Recipient({})", self.id)
    }
}

/// The key id of an RSA public key.
pub fn rsa_key_id(key: &PublicKey) -> Result<String, CryptoError> {
    let der = key
        .to_public_key_der()
        .map_err(|e| CryptoError::Keyring(format!("cannot encode a public key: {e}")))?;
    Ok(super::key_id(der.as_bytes()))
}

/// Load a private key from PKCS#8 PEM, encrypted (with `passphrase`) or not.
pub fn private_key_from_pem(
    pem: &str,
    passphrase: Option<&str>,
    path: &str,
) -> Result<PrivateKey, CryptoError> {
    let bad = |reason: String| CryptoError::KeyFile {
        path: path.to_string(),
        reason,
    };
    if pem.contains("BEGIN ENCRYPTED PRIVATE KEY") {
        let pass = passphrase.ok_or_else(|| {
            bad("the key is encrypted: give its passphrase (OUBLI_KEY_PASSPHRASE)".into())
        })?;
        PrivateKey::from_pkcs8_encrypted_pem(pem, pass)
            .map_err(|_| bad("wrong passphrase, or not a PKCS#8 RSA key".into()))
    } else {
        PrivateKey::from_pkcs8_pem(pem)
            .map_err(|e| bad(format!("not a PKCS#8 RSA private key: {e}")))
    }
}

/// A parsed header.
#[derive(Debug, Clone)]
pub struct Header {
    /// What the file holds.
    pub kind: String,
    /// The request it belongs to (may be empty).
    pub request_id: String,
    /// (key id, wrapped file key) per recipient.
    pub recipients: Vec<(String, Vec<u8>)>,
    /// The header bytes, the body's context.
    pub raw: Vec<u8>,
}

fn check_label(what: &str, s: &str, allow_empty: bool) -> Result<(), CryptoError> {
    let ok = (allow_empty || !s.is_empty())
        && s.len() <= MAX_LABEL
        && s.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(CryptoError::MalformedHeader(format!(
            "{what} must be 1 to {MAX_LABEL} printable ASCII characters"
        )))
    }
}

/// Encrypt `input` into `output` for `recipients`. Constant memory.
pub fn encrypt<R: Read, W: Write>(
    recipients: &[Recipient],
    kind: &str,
    request_id: &str,
    mut input: R,
    output: W,
) -> Result<W, CryptoError> {
    let mut body = encryptor(recipients, kind, request_id, output)?;
    std::io::copy(&mut input, &mut body)?;
    body.finish()
}

/// Write the header for `recipients` to `output` and return the writer of
/// the body: whatever is written to it is encrypted, 16 KiB at a time.
/// Call [`ChunkedWriter::finish`] at the end, or the file is truncated (and
/// decryption says so).
pub fn encryptor<W: Write>(
    recipients: &[Recipient],
    kind: &str,
    request_id: &str,
    mut output: W,
) -> Result<ChunkedWriter<W>, CryptoError> {
    if recipients.is_empty() || recipients.len() > MAX_RECIPIENTS {
        return Err(CryptoError::MalformedHeader(format!(
            "a file needs 1 to {MAX_RECIPIENTS} recipients"
        )));
    }
    check_label("the artifact kind", kind, false)?;
    check_label("the request id", request_id, true)?;
    let file_key = super::random_key()?;
    let mut header = Vec::with_capacity(128 + recipients.len() * 266);
    header.extend_from_slice(MAGIC);
    header.push(VERSION);
    header.push(kind.len() as u8);
    header.extend_from_slice(kind.as_bytes());
    header.push(request_id.len() as u8);
    header.extend_from_slice(request_id.as_bytes());
    header.push(recipients.len() as u8);
    for r in recipients {
        let wrapped = r
            .key
            .oaep_encrypt::<Sha256>(&file_key[..])
            .map_err(|e| CryptoError::Keyring(format!("RSA-OAEP wrap failed: {e}")))?;
        header.extend_from_slice(&hex::decode(&r.id).expect("key ids are hex"));
        header.extend_from_slice(&(wrapped.len() as u16).to_be_bytes());
        header.extend_from_slice(&wrapped);
    }
    output.write_all(&header)?;
    ChunkedWriter::new(output, &file_key, &header)
}

/// Read and check a header.
pub fn read_header<R: Read>(input: &mut R) -> Result<Header, CryptoError> {
    let mut raw = Vec::with_capacity(512);
    let mut take = |n: usize, raw: &mut Vec<u8>| -> Result<Vec<u8>, CryptoError> {
        let mut buf = vec![0u8; n];
        let got = super::chunked::read_full(input, &mut buf)?;
        if got < n {
            let seen = [&raw[..], &buf[..got]].concat();
            let in_magic = seen.len() < MAGIC.len();
            return Err(
                if in_magic && (seen.is_empty() || !MAGIC.starts_with(&seen)) {
                    CryptoError::NotEncrypted
                } else {
                    CryptoError::Truncated
                },
            );
        }
        raw.extend_from_slice(&buf);
        Ok(buf)
    };
    let magic = take(MAGIC.len(), &mut raw)?;
    if magic != MAGIC {
        return Err(CryptoError::NotEncrypted);
    }
    let version = take(1, &mut raw)?[0];
    if version != VERSION {
        return Err(CryptoError::UnsupportedVersion(version));
    }
    let kind_len = take(1, &mut raw)?[0] as usize;
    let kind = String::from_utf8(take(kind_len, &mut raw)?)
        .map_err(|_| CryptoError::MalformedHeader("artifact kind is not text".into()))?;
    check_label("the artifact kind", &kind, false)?;
    let req_len = take(1, &mut raw)?[0] as usize;
    let request_id = String::from_utf8(take(req_len, &mut raw)?)
        .map_err(|_| CryptoError::MalformedHeader("request id is not text".into()))?;
    check_label("the request id", &request_id, true)?;
    let n = take(1, &mut raw)?[0] as usize;
    if n == 0 || n > MAX_RECIPIENTS {
        return Err(CryptoError::MalformedHeader(format!(
            "{n} recipients (1 to {MAX_RECIPIENTS} allowed)"
        )));
    }
    let mut recipients = Vec::with_capacity(n);
    for _ in 0..n {
        let id = hex::encode(take(8, &mut raw)?);
        let len_bytes = take(2, &mut raw)?;
        let len = u16::from_be_bytes([len_bytes[0], len_bytes[1]]) as usize;
        if len == 0 || len > MAX_WRAPPED {
            return Err(CryptoError::MalformedHeader(format!(
                "wrapped key of {len} bytes"
            )));
        }
        recipients.push((id, take(len, &mut raw)?));
    }
    Ok(Header {
        kind,
        request_id,
        recipients,
        raw,
    })
}

/// Read the header and unwrap the file key with `key`; returns the header
/// and a reader of the plaintext (authenticated chunk by chunk; the end is
/// checked when the reader reaches it).
pub fn decryptor<R: Read>(
    key: &PrivateKey,
    mut input: R,
) -> Result<(Header, ChunkedReader<R>), CryptoError> {
    let header = read_header(&mut input)?;
    let id = rsa_key_id(&key.to_public_key())?;
    let wrapped = header
        .recipients
        .iter()
        .find(|(rid, _)| *rid == id)
        .map(|(_, w)| w)
        .ok_or_else(|| CryptoError::NotARecipient {
            key: id.clone(),
            recipients: header
                .recipients
                .iter()
                .map(|(r, _)| r.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })?;
    let file_key = Zeroizing::new(
        key.oaep_decrypt::<Sha256>(wrapped)
            .map_err(|_| CryptoError::UnwrapFailed)?,
    );
    let file_key: &[u8; 32] = file_key
        .as_slice()
        .try_into()
        .map_err(|_| CryptoError::UnwrapFailed)?;
    let reader = ChunkedReader::new(input, file_key, &header.raw)?;
    Ok((header, reader))
}

/// Decrypt `input` into `output` with `key`. On error, what was written to
/// `output` must be discarded (a truncation is only seen at the end).
pub fn decrypt<R: Read, W: Write>(
    key: &PrivateKey,
    input: R,
    mut output: W,
) -> Result<(Header, W), CryptoError> {
    let (header, mut reader) = decryptor(key, input)?;
    std::io::copy(&mut reader, &mut output).map_err(CryptoError::from_stream)?;
    output.flush()?;
    Ok((header, output))
}

/// Async adapters: the same streams on tokio, run on the blocking pool
/// (AES-GCM and RSA are CPU work) with constant memory.
pub mod nonblocking {
    use super::*;
    use tokio::io::{AsyncRead, AsyncWrite};
    use tokio_util::io::SyncIoBridge;

    /// [`super::encrypt`] for async streams.
    pub async fn encrypt<R, W>(
        recipients: Vec<Recipient>,
        kind: String,
        request_id: String,
        input: R,
        output: W,
    ) -> Result<(), CryptoError>
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        tokio::task::spawn_blocking(move || {
            let out = super::encrypt(
                &recipients,
                &kind,
                &request_id,
                SyncIoBridge::new(input),
                SyncIoBridge::new(output),
            )?;
            let mut inner = out;
            inner.shutdown()?;
            Ok(())
        })
        .await
        .map_err(|e| CryptoError::Io(std::io::Error::other(e)))?
    }

    /// [`super::decrypt`] for async streams.
    pub async fn decrypt<R, W>(key: PrivateKey, input: R, output: W) -> Result<Header, CryptoError>
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        tokio::task::spawn_blocking(move || {
            let (header, mut out) =
                super::decrypt(&key, SyncIoBridge::new(input), SyncIoBridge::new(output))?;
            out.shutdown()?;
            Ok(header)
        })
        .await
        .map_err(|e| CryptoError::Io(std::io::Error::other(e)))?
    }
}
