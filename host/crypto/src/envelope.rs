//! Records at rest: AES-256-GCM under per-request data keys, the data keys
//! wrapped by the key-encryption key (KEK).
//!
//! A sealed record is `0x01 || data key id (8) || nonce (12) || ciphertext || tag (16)`.
//! Its associated data binds it to what it is:
//!
//! ```text
//! "oubli:record:v1" || lp(kind) || lp(request id) || lp(field) || lp(row) || data key id
//! ```
//!
//! where `lp(x)` is a 4-byte big-endian length then `x`. A ciphertext copied
//! to another row, field, request or kind fails to open.
//!
//! A wrapped data key is `nonce (12) || AES-256-GCM(KEK, data key) || tag`,
//! with associated data `"oubli:data-key:v1" || lp(request id) || lp(data key id) || lp(KEK id)`.
//! Rotating the KEK rewraps data keys; sealed records are never touched.

use super::{CryptoError, random, random_key};
use aes_gcm::aead::Nonce as AeadNonce;
use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Tag};
type Nonce = AeadNonce<Aes256Gcm>;
use serde::{Deserialize, Serialize};
use std::fmt;
use zeroize::Zeroizing;

const RECORD_VERSION: u8 = 1;
const NONCE: usize = 12;
const TAG: usize = 16;
const KEY_ID: usize = 8;

/// What a record is; bound into its ciphertext.
#[derive(Debug, Clone, Copy)]
pub struct RecordContext<'a> {
    /// The kind of data (`identifier`, `located`, `consent`).
    pub kind: &'a str,
    /// The request it belongs to.
    pub request_id: &'a str,
    /// The field (column) name.
    pub field: &'a str,
    /// The row's identifier.
    pub row: &'a str,
}

fn lp(out: &mut Vec<u8>, x: &[u8]) {
    out.extend_from_slice(&(x.len() as u32).to_be_bytes());
    out.extend_from_slice(x);
}

fn seal_with(
    key: &[u8; 32],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<(Vec<u8>, [u8; NONCE]), CryptoError> {
    let cipher = Aes256Gcm::new_from_slice(key).expect("32-byte key");
    let mut nonce = [0u8; NONCE];
    random(&mut nonce)?;
    let mut buf = plaintext.to_vec();
    let tag = cipher
        .encrypt_inout_detached(&Nonce::from(nonce), aad, buf.as_mut_slice().into())
        .map_err(|_| CryptoError::TooLarge)?;
    buf.extend_from_slice(&tag);
    Ok((buf, nonce))
}

fn open_with(
    key: &[u8; 32],
    aad: &[u8],
    nonce: &[u8],
    sealed: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    if sealed.len() < TAG || nonce.len() != NONCE {
        return None;
    }
    let cipher = Aes256Gcm::new_from_slice(key).expect("32-byte key");
    let (body, tag) = sealed.split_at(sealed.len() - TAG);
    let mut buf = Zeroizing::new(body.to_vec());
    let nonce: [u8; NONCE] = nonce.try_into().ok()?;
    cipher
        .decrypt_inout_detached(
            &Nonce::from(nonce),
            aad,
            buf.as_mut_slice().into(),
            &Tag::try_from(tag).ok()?,
        )
        .ok()?;
    Some(buf)
}

/// A per-request data key. Wiped on drop; `Debug` shows only its id.
pub struct DataKey {
    id: [u8; KEY_ID],
    key: Zeroizing<[u8; 32]>,
}

impl DataKey {
    /// A fresh random data key.
    pub fn generate() -> Result<DataKey, CryptoError> {
        let mut id = [0u8; KEY_ID];
        random(&mut id)?;
        Ok(DataKey {
            id,
            key: random_key()?,
        })
    }

    /// Its id, 16 hex digits.
    pub fn id(&self) -> String {
        hex::encode(self.id)
    }

    fn aad(&self, ctx: &RecordContext<'_>) -> Vec<u8> {
        let mut aad = b"oubli:record:v1".to_vec();
        lp(&mut aad, ctx.kind.as_bytes());
        lp(&mut aad, ctx.request_id.as_bytes());
        lp(&mut aad, ctx.field.as_bytes());
        lp(&mut aad, ctx.row.as_bytes());
        aad.extend_from_slice(&self.id);
        aad
    }

    /// Seal one value.
    pub fn seal(&self, ctx: &RecordContext<'_>, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let (ct, nonce) = seal_with(&self.key, &self.aad(ctx), plaintext)?;
        let mut out = Vec::with_capacity(1 + KEY_ID + NONCE + ct.len());
        out.push(RECORD_VERSION);
        out.extend_from_slice(&self.id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Open a value sealed by [`DataKey::seal`] with the same context.
    pub fn open(
        &self,
        ctx: &RecordContext<'_>,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let id = sealed_key_id(sealed)?;
        if id != self.id() {
            return Err(CryptoError::UnknownKey(id));
        }
        let body = &sealed[1 + KEY_ID..];
        open_with(&self.key, &self.aad(ctx), &body[..NONCE], &body[NONCE..])
            .ok_or(CryptoError::RecordTampered)
    }
}

/// The data key id a sealed record names.
pub fn sealed_key_id(sealed: &[u8]) -> Result<String, CryptoError> {
    if sealed.len() < 1 + KEY_ID + NONCE + TAG {
        return Err(CryptoError::Truncated);
    }
    if sealed[0] != RECORD_VERSION {
        return Err(CryptoError::UnsupportedVersion(sealed[0]));
    }
    Ok(hex::encode(&sealed[1..1 + KEY_ID]))
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DataKey({}, [redacted])", self.id())
    }
}

/// A data key as stored: wrapped by a KEK.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrappedDataKey {
    /// The data key's id.
    pub id: String,
    /// The KEK that wraps it.
    pub kek_id: String,
    /// `nonce || ciphertext || tag`, hex.
    pub wrapped: String,
}

/// The key-encryption key. Wiped on drop; `Debug` shows only its id.
pub struct Kek {
    id: String,
    key: Zeroizing<[u8; 32]>,
}

impl Kek {
    /// A fresh random KEK.
    pub fn generate() -> Result<Kek, CryptoError> {
        let key = random_key()?;
        Ok(Kek::from_bytes(*key))
    }

    /// A KEK from its bytes; its id is derived from them (a hash, which
    /// reveals nothing usable of a 256-bit random key).
    pub fn from_bytes(bytes: [u8; 32]) -> Kek {
        let mut material = b"oubli:kek-id:v1".to_vec();
        material.extend_from_slice(&bytes);
        let id = super::key_id(&material);
        zeroize::Zeroize::zeroize(&mut material);
        Kek {
            id,
            key: Zeroizing::new(bytes),
        }
    }

    /// Its id.
    pub fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.key
    }

    fn aad(&self, request_id: &str, data_key_id: &str) -> Vec<u8> {
        let mut aad = b"oubli:data-key:v1".to_vec();
        lp(&mut aad, request_id.as_bytes());
        lp(&mut aad, data_key_id.as_bytes());
        lp(&mut aad, self.id.as_bytes());
        aad
    }

    /// Wrap a data key of `request_id`.
    pub fn wrap(&self, request_id: &str, key: &DataKey) -> Result<WrappedDataKey, CryptoError> {
        let id = key.id();
        let (ct, nonce) = seal_with(&self.key, &self.aad(request_id, &id), &key.key[..])?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(WrappedDataKey {
            id,
            kek_id: self.id.clone(),
            wrapped: hex::encode(out),
        })
    }

    /// Unwrap a data key of `request_id`.
    pub fn unwrap(&self, request_id: &str, w: &WrappedDataKey) -> Result<DataKey, CryptoError> {
        if w.kek_id != self.id {
            return Err(CryptoError::UnknownKey(w.kek_id.clone()));
        }
        let raw = hex::decode(&w.wrapped).map_err(|_| CryptoError::RecordTampered)?;
        if raw.len() != NONCE + 32 + TAG {
            return Err(CryptoError::RecordTampered);
        }
        let key = open_with(
            &self.key,
            &self.aad(request_id, &w.id),
            &raw[..NONCE],
            &raw[NONCE..],
        )
        .ok_or(CryptoError::RecordTampered)?;
        let id_bytes: [u8; KEY_ID] = hex::decode(&w.id)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or(CryptoError::RecordTampered)?;
        let mut k = Zeroizing::new([0u8; 32]);
        k.copy_from_slice(&key);
        Ok(DataKey {
            id: id_bytes,
            key: k,
        })
    }
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Kek({}, [redacted])", self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx<'a>(row: &'a str) -> RecordContext<'a> {
        RecordContext {
            kind: "identifier",
            request_id: "req-1",
            field: "email",
            row,
        }
    }

    #[test]
    fn records_open_only_in_their_own_context() {
        let dk = DataKey::generate().unwrap();
        let sealed = dk.seal(&ctx("row-1"), b"ada@example.com").unwrap();
        assert_eq!(
            &dk.open(&ctx("row-1"), &sealed).unwrap()[..],
            b"ada@example.com"
        );
        assert!(matches!(
            dk.open(&ctx("row-2"), &sealed),
            Err(CryptoError::RecordTampered)
        ));
        let other_field = RecordContext {
            field: "phone",
            ..ctx("row-1")
        };
        assert!(dk.open(&other_field, &sealed).is_err());
        let other_request = RecordContext {
            request_id: "req-2",
            ..ctx("row-1")
        };
        assert!(dk.open(&other_request, &sealed).is_err());
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(dk.open(&ctx("row-1"), &flipped).is_err());
        let other_key = DataKey::generate().unwrap();
        assert!(matches!(
            other_key.open(&ctx("row-1"), &sealed),
            Err(CryptoError::UnknownKey(_))
        ));
    }

    #[test]
    fn data_keys_wrap_per_request_and_debug_hides_material() {
        let kek = Kek::generate().unwrap();
        let dk = DataKey::generate().unwrap();
        let w = kek.wrap("req-1", &dk).unwrap();
        let back = kek.unwrap("req-1", &w).unwrap();
        let sealed = dk.seal(&ctx("r"), b"x").unwrap();
        assert_eq!(&back.open(&ctx("r"), &sealed).unwrap()[..], b"x");
        assert!(
            kek.unwrap("req-2", &w).is_err(),
            "a wrapped key moved to another request"
        );
        assert!(Kek::generate().unwrap().unwrap("req-1", &w).is_err());
        let shown = format!("{dk:?} {kek:?}");
        assert!(shown.contains("[redacted]"));
        assert!(!shown.contains(&hex::encode(&dk.key[..])));
        assert!(!shown.contains(&hex::encode(&kek.key[..])));
    }
}
