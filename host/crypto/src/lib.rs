//! `oubli-crypto`: encryption of everything that holds personal data, under
//! keys the operator controls. A leaf: it uses nothing else of oubli.
//!
//! - [`chunked`]: the C2SP chunked-encryption standard (Cobblestone-256) for
//!   streams of any size in constant memory.
//! - [`file`]: the oubli file format: a header naming each recipient's RSA
//!   key and the file key wrapped for it with RSA-2048-OAEP (SHA-256,
//!   MGF1-SHA-256), then the body in chunked encryption with the header as
//!   context. docs/FORMAT.md specifies it byte by byte.
//! - [`envelope`]: records at rest: AES-256-GCM under per-request data keys,
//!   with associated data binding each ciphertext to what it is; data keys
//!   wrapped by a key-encryption key (KEK).
//! - [`keyring`]: the root keys: the host key pair, the KEK (wrapped by the
//!   RSA key and unwrapped once at start-up), the blind-index key, export
//!   recipients, rotation.
//! - [`blind`]: blind indexes, HMAC-SHA-256 of normalised identifiers.
//! - [`signing`]: RSA-PSS signatures on certificates and audit heads,
//!   checkable with `openssl` alone.
//!
//! Private-key operations happen only locally (the CLI's decrypt, the host's
//! own unwrap at start-up): never expose them behind a network endpoint, where
//! they would become a decryption oracle.
//!
//! Key material is wiped on drop, and no key, data key or plaintext appears
//! in errors or `Debug` output.

#![warn(missing_docs)]

pub mod blind;
pub mod chunked;
pub mod envelope;
pub mod file;
pub mod keyring;
pub mod signing;

/// What went wrong. One line each, never with key material or plaintext.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// Reading or writing failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The input is not an oubli encrypted file.
    #[error("not an oubli encrypted file (bad magic bytes)")]
    NotEncrypted,
    /// The file declares a format version this build does not read.
    #[error("unsupported format version {0} (this build reads version 1)")]
    UnsupportedVersion(u8),
    /// The header is malformed.
    #[error("malformed header: {0}")]
    MalformedHeader(String),
    /// None of the file's recipients is the given key.
    #[error("this key (id {key}) is not among the file's recipients ({recipients})")]
    NotARecipient {
        /// The key id tried.
        key: String,
        /// The recipients' key ids.
        recipients: String,
    },
    /// The wrapped key could not be unwrapped with this key.
    #[error(
        "the file key cannot be unwrapped with this private key (wrong key or modified header)"
    )]
    UnwrapFailed,
    /// Key commitment mismatch: wrong key, or the ciphertext belongs to
    /// another context (another file header, another record).
    #[error("wrong key or wrong context: the key commitment does not match")]
    WrongKeyOrContext,
    /// The ciphertext ends early.
    #[error("the ciphertext is truncated")]
    Truncated,
    /// A chunk failed authentication.
    #[error(
        "chunk {chunk} failed authentication: the ciphertext was modified, reordered or spliced"
    )]
    Tampered {
        /// The chunk index.
        chunk: u64,
    },
    /// A record failed authentication.
    #[error("record failed authentication: modified, moved to another row, or under another key")]
    RecordTampered,
    /// The message is larger than the format allows.
    #[error("message too large for chunked encryption")]
    TooLarge,
    /// A key id that the keyring does not hold.
    #[error("unknown key id {0}")]
    UnknownKey(String),
    /// A signature does not verify: the document or the signature was
    /// changed, or another key signed it.
    #[error(
        "the signature does not verify (the document or the signature was changed, or another key made it)"
    )]
    BadSignature,
    /// A request's data keys were destroyed.
    #[error(
        "the data keys of request {0} were destroyed (crypto-shredded); its records are unreadable"
    )]
    Shredded(String),
    /// A key file is unreadable or malformed.
    #[error("{path}: {reason}")]
    KeyFile {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The keyring is unusable.
    #[error("keyring: {0}")]
    Keyring(String),
    /// The system random generator failed.
    #[error("the system random number generator failed")]
    Random,
}

impl CryptoError {
    /// Recover the typed error carried through an `io::Error` by the
    /// streaming readers.
    pub fn from_stream(e: std::io::Error) -> CryptoError {
        if e.get_ref().is_some_and(|inner| inner.is::<CryptoError>()) {
            let inner = e.into_inner().expect("checked above");
            match inner.downcast::<CryptoError>() {
                Ok(c) => *c,
                Err(other) => CryptoError::Io(std::io::Error::other(other)),
            }
        } else {
            CryptoError::Io(e)
        }
    }
}

/// Fill `buf` from the operating system's CSPRNG.
pub fn random(buf: &mut [u8]) -> Result<(), CryptoError> {
    getrandom::fill(buf).map_err(|_| CryptoError::Random)
}

/// A fresh random 32-byte key, wiped on drop.
pub fn random_key() -> Result<zeroize::Zeroizing<[u8; 32]>, CryptoError> {
    let mut k = zeroize::Zeroizing::new([0u8; 32]);
    random(&mut k[..])?;
    Ok(k)
}

/// A short key id: the first 8 bytes of SHA-256 over `bytes` (a
/// SubjectPublicKeyInfo DER for RSA keys), as 16 hex digits.
pub fn key_id(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(bytes)[..8])
}

/// A random token (lease tokens, request ids): `bytes` random bytes in
/// lowercase base32, no padding.
pub fn random_token(bytes: usize) -> Result<String, CryptoError> {
    let mut buf = vec![0u8; bytes];
    random(&mut buf)?;
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut out = String::with_capacity(bytes * 8 / 5 + 1);
    let (mut acc, mut bits) = (0u32, 0u32);
    for b in buf {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((acc >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (5 - bits)) & 31) as usize] as char);
    }
    Ok(out)
}

#[cfg(test)]
mod token_tests {
    use super::*;

    #[test]
    fn tokens_are_base32() {
        let t = random_token(10).unwrap();
        assert_eq!(t.len(), 16);
        assert!(
            t.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        );
        assert_ne!(t, random_token(10).unwrap());
    }
}
