//! Blind indexes: a keyed hash of a normalised identifier, used to look
//! records up and to name subjects in logs, audit entries and certificates
//! without the identifier itself.
//!
//! `index = HMAC-SHA-256(index key, kind || 0x00 || normalised identifier)`,
//! truncated to its first 16 bytes (128 bits: collisions are negligible for
//! any realistic number of subjects, and a shorter value leaks less). The
//! `kind` (`email`, `phone`, ...) keeps an email and a phone number with the
//! same text apart. Logs carry only the first 8 hex digits ([`BlindIndex::prefix`]).
//!
//! A plain hash would not do: the space of phone numbers (about 10^10–10^12
//! values) is small enough to brute-force. The index key lives in the
//! keyring, wrapped by the host's RSA key.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::fmt;
use zeroize::Zeroizing;

/// Bytes kept from the HMAC.
pub const INDEX_LEN: usize = 16;

/// The blind-index key.
pub struct IndexKey(Zeroizing<[u8; 32]>);

impl IndexKey {
    /// Wrap raw key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        IndexKey(Zeroizing::new(bytes))
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The blind index of an identifier of `kind`, already normalised.
    pub fn index(&self, kind: &str, normalised: &str) -> BlindIndex {
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0[..]).expect("HMAC takes any key");
        mac.update(kind.as_bytes());
        mac.update(&[0]);
        mac.update(normalised.as_bytes());
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; INDEX_LEN];
        out.copy_from_slice(&full[..INDEX_LEN]);
        BlindIndex(out)
    }
}

impl fmt::Debug for IndexKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IndexKey([redacted])")
    }
}

/// A blind index value.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlindIndex(pub [u8; INDEX_LEN]);

impl BlindIndex {
    /// The full value, 32 hex digits (for storage and lookups).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
    /// The first 8 hex digits, for logs.
    pub fn prefix(&self) -> String {
        hex::encode(&self.0[..4])
    }
}

impl fmt::Debug for BlindIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlindIndex({}…)", self.prefix())
    }
}

impl fmt::Display for BlindIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_deterministic_and_kind_separated() {
        let k = IndexKey::from_bytes([3; 32]);
        let a = k.index("phone", "+33612345678");
        assert_eq!(a, k.index("phone", "+33612345678"));
        assert_ne!(a, k.index("email", "+33612345678"));
        assert_ne!(
            a,
            IndexKey::from_bytes([4; 32]).index("phone", "+33612345678")
        );
        assert_eq!(a.to_hex().len(), 32);
        assert_eq!(a.prefix().len(), 8);
        assert!(!format!("{a:?}").contains(&a.to_hex()));
        assert_eq!(format!("{k:?}"), "IndexKey([redacted])");
    }

    #[test]
    fn matches_a_reference_hmac() {
        // HMAC-SHA-256(key = 0x0b * 32, "email" 00 "ada@example.com"), computed
        // independently with Python's hmac module.
        let k = IndexKey::from_bytes([0x0b; 32]);
        assert_eq!(
            k.index("email", "ada@example.com").to_hex(),
            "600d9eaec1cf8015c9c4b925051b0d4d"
        );
    }
}
