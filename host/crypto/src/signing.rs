//! Signatures the host makes so that anyone can check its evidence without
//! oubli: erasure certificates and audit chain heads. RSA-2048 with
//! RSA-PSS, SHA-256, MGF1-SHA-256 and a 32-byte salt: what
//! `openssl dgst -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32`
//! verifies.
//!
//! The signing key is its own key pair (`signing.pem`, `signing.pub.pem` in
//! the keyring directory), never the key that unwraps KEKs: one key, one
//! purpose.

use super::CryptoError;
use super::file::rsa_key_id;
use rsa::pkcs8::{DecodePublicKey, EncodePublicKey, LineEnding};
use rsa::pss;
use rsa::sha2::Sha256;
use rsa::signature::{RandomizedSigner, SignatureEncoding, Verifier};
use rsa::{PrivateKey, PublicKey};

/// The salt length, in bytes (the digest's length).
pub const SALT_LEN: usize = 32;

/// The host's signing key, in memory.
pub struct Signer {
    key: pss::SigningKey<Sha256>,
    public_pem: String,
    id: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// A signer for `key`.
    pub fn new(key: PrivateKey) -> Result<Signer, CryptoError> {
        let public = key.to_public_key();
        let public_pem = public
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| CryptoError::Keyring(format!("cannot encode the public key: {e}")))?;
        let id = rsa_key_id(&public)?;
        Ok(Signer {
            key: pss::SigningKey::new_with_salt_len(key, SALT_LEN),
            public_pem,
            id,
        })
    }

    /// Sign `message`: RSA-PSS over its SHA-256, `SALT_LEN` bytes of salt.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let sig = self
            .key
            .try_sign_with_rng(&mut getrandom::SysRng, message)
            .map_err(|e| CryptoError::Keyring(format!("signing failed: {e}")))?;
        Ok(sig.to_vec())
    }

    /// The public key, SubjectPublicKeyInfo PEM (what `openssl` reads).
    pub fn public_pem(&self) -> &str {
        &self.public_pem
    }

    /// The key id (SHA-256 of the public key's DER, shortened).
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// Check `signature` over `message` against a public key in PEM.
pub fn verify(public_pem: &str, message: &[u8], signature: &[u8]) -> Result<(), CryptoError> {
    let public = PublicKey::from_public_key_pem(public_pem)
        .map_err(|_| CryptoError::Keyring("not an RSA public key in PEM".into()))?;
    let key = pss::VerifyingKey::<Sha256>::new(public);
    let sig = pss::Signature::try_from(signature).map_err(|_| CryptoError::BadSignature)?;
    key.verify(message, &sig)
        .map_err(|_| CryptoError::BadSignature)
}

/// The key id of a public key in PEM.
pub fn public_key_id(public_pem: &str) -> Result<String, CryptoError> {
    let public = PublicKey::from_public_key_pem(public_pem)
        .map_err(|_| CryptoError::Keyring("not an RSA public key in PEM".into()))?;
    rsa_key_id(&public)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_verifies_and_refuses_a_changed_byte() {
        let signer = Signer::new(crate::keyring::generate_rsa().unwrap()).unwrap();
        let msg = b"{\"request\":\"r-1\"}";
        let sig = signer.sign(msg).unwrap();
        assert_eq!(sig.len(), 256);
        verify(signer.public_pem(), msg, &sig).unwrap();
        let mut bad = msg.to_vec();
        bad[3] ^= 1;
        assert!(verify(signer.public_pem(), &bad, &sig).is_err());
        let mut bad_sig = sig.clone();
        bad_sig[10] ^= 1;
        assert!(verify(signer.public_pem(), msg, &bad_sig).is_err());
        // PSS is randomised: two signatures differ and both verify.
        let again = signer.sign(msg).unwrap();
        assert_ne!(sig, again);
        verify(signer.public_pem(), msg, &again).unwrap();
        assert_eq!(public_key_id(signer.public_pem()).unwrap(), signer.id());
    }
}
