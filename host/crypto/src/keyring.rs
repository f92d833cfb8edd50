//! The keyring: a directory holding the root keys, that is the host's RSA
//! key pairs, the KEKs (wrapped by an RSA key, unwrapped once when the
//! keyring opens), the blind-index key, and the export recipients.
//! Per-request data keys are not here: they live wrapped in the store's
//! database, written with the rows they protect (`oubli-store`'s vault).
//!
//! ```text
//! keyring.json               ids, which keys are active, recipients (no key material)
//! host-<id>.pem              RSA-2048 private key, PKCS#8 PEM, mode 0600 (encrypted with a passphrase if given)
//! host-<id>.pub.pem          its public key (SubjectPublicKeyInfo PEM)
//! kek-<id>.wrapped           a KEK, RSA-OAEP(SHA-256) under the host key named in keyring.json
//! index.wrapped              the blind-index key, likewise
//! recipients/<name>.pub.pem  export recipients (the DPO, a subject's own key)
//! signing.pem, signing.pub.pem  the key that signs certificates and audit heads (RSA-PSS)
//! ```
//!
//! Rotation ([`Keyring::rotate`]) adds a new host key pair and a new KEK,
//! makes them active and keeps the old ones for decryption; the data keys
//! are then rewrapped under the new KEK in the store (`oubli keys rotate
//! --db`): payloads are never touched. Keep the keyring on encrypted storage and out of
//! long-lived backups.

use super::CryptoError;
use super::blind::IndexKey;
use super::envelope::Kek;
use super::file::{Recipient, private_key_from_pem, rsa_key_id};
use super::signing::Signer;
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::sha2::Sha256;
use rsa::{PrivateKey, PublicKey};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// RSA modulus size of host keys.
pub const RSA_BITS: usize = 2048;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Meta {
    version: u32,
    active_host: String,
    active_kek: String,
    index_wrapped_by: String,
    hosts: Vec<KeyMeta>,
    keks: Vec<KekMeta>,
    #[serde(default)]
    recipients: Vec<RecipientMeta>,
}

/// A host key pair, as listed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyMeta {
    /// Key id.
    pub id: String,
    /// Creation time, Unix seconds.
    pub created: u64,
}

/// A KEK, as listed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KekMeta {
    /// Key id.
    pub id: String,
    /// The host key that wraps it.
    pub wrapped_by: String,
    /// Creation time, Unix seconds.
    pub created: u64,
}

/// A registered export recipient.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecipientMeta {
    /// Its name.
    pub name: String,
    /// Its key id.
    pub id: String,
}

/// What `oubli keys list` shows.
#[derive(Debug, Clone, Serialize)]
pub struct KeyList {
    /// The active host key.
    pub active_host: String,
    /// The active KEK.
    pub active_kek: String,
    /// All host keys.
    pub hosts: Vec<KeyMeta>,
    /// All KEKs.
    pub keks: Vec<KekMeta>,
    /// Export recipients.
    pub recipients: Vec<RecipientMeta>,
}

/// An open keyring: KEKs and the index key unwrapped, in memory only.
pub struct Keyring {
    dir: PathBuf,
    meta: Meta,
    host_keys: BTreeMap<String, PrivateKey>,
    keks: BTreeMap<String, Kek>,
    index: IndexKey,
    passphrase: Option<Zeroizing<String>>,
    signer: std::sync::OnceLock<Signer>,
    signer_lock: std::sync::Mutex<()>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("dir", &self.dir)
            .field("active_host", &self.meta.active_host)
            .field("active_kek", &self.meta.active_kek)
            .finish_non_exhaustive()
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn err(path: &Path, reason: impl std::fmt::Display) -> CryptoError {
    CryptoError::KeyFile {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// Write a file atomically (temp + rename), with `mode` on Unix.
pub(crate) fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CryptoError> {
    use std::io::Write;
    // Unique to this write: two threads writing files whose names differ
    // only in their extension must not share a temporary file (one's
    // rename would take the other's away).
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp{}-{n}", std::process::id()));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let result = (|| {
        let mut f = opts.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        err(path, e)
    })
}

fn read_file(path: &Path) -> Result<Vec<u8>, CryptoError> {
    std::fs::read(path).map_err(|e| err(path, e))
}

fn valid_name(name: &str) -> Result<(), CryptoError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(CryptoError::Keyring(
            "recipient names are 1 to 64 letters, digits, dots, dashes or underscores".into(),
        ))
    }
}

impl Keyring {
    /// Create a keyring in `dir` (created 0700 if missing; refused if it
    /// already holds one). With a passphrase, the private key file is
    /// PKCS#8-encrypted (PBES2, scrypt, AES-256-CBC).
    pub fn init(dir: &Path, passphrase: Option<&str>) -> Result<Keyring, CryptoError> {
        if dir.join("keyring.json").exists() {
            return Err(CryptoError::Keyring(format!(
                "{} already holds a keyring; use `oubli keys rotate` to add keys",
                dir.display()
            )));
        }
        create_private_dir(dir)?;
        create_private_dir(&dir.join("recipients"))?;
        let (host_id, host) = new_host_key(dir, passphrase)?;
        let public = host.to_public_key();
        let kek = Kek::generate()?;
        write_file(
            &dir.join(format!("kek-{}.wrapped", kek.id())),
            &rsa_wrap(&public, kek.bytes())?,
            0o600,
        )?;
        let index_bytes = super::random_key()?;
        write_file(
            &dir.join("index.wrapped"),
            &rsa_wrap(&public, &index_bytes[..])?,
            0o600,
        )?;
        let meta = Meta {
            version: 1,
            active_host: host_id.clone(),
            active_kek: kek.id().to_string(),
            index_wrapped_by: host_id.clone(),
            hosts: vec![KeyMeta {
                id: host_id.clone(),
                created: now(),
            }],
            keks: vec![KekMeta {
                id: kek.id().to_string(),
                wrapped_by: host_id.clone(),
                created: now(),
            }],
            recipients: vec![],
        };
        let keyring = Keyring {
            dir: dir.to_path_buf(),
            host_keys: BTreeMap::from([(host_id, host)]),
            keks: BTreeMap::from([(kek.id().to_string(), kek)]),
            index: IndexKey::from_bytes(*index_bytes),
            meta,
            passphrase: passphrase.map(|p| Zeroizing::new(p.to_string())),
            signer: std::sync::OnceLock::new(),
            signer_lock: std::sync::Mutex::new(()),
        };
        keyring.save_meta()?;
        Ok(keyring)
    }

    /// Open a keyring: load the host keys, unwrap the KEKs and the index key
    /// (one RSA operation each, about 2 ms).
    pub fn open(dir: &Path, passphrase: Option<&str>) -> Result<Keyring, CryptoError> {
        let meta_path = dir.join("keyring.json");
        if !meta_path.exists() {
            return Err(CryptoError::Keyring(format!(
                "no keyring in {} (create one with `oubli keys init --dir {}`)",
                dir.display(),
                dir.display()
            )));
        }
        let meta: Meta =
            serde_json::from_slice(&read_file(&meta_path)?).map_err(|e| err(&meta_path, e))?;
        let mut host_keys = BTreeMap::new();
        for h in &meta.hosts {
            let path = dir.join(format!("host-{}.pem", h.id));
            let pem =
                Zeroizing::new(String::from_utf8(read_file(&path)?).map_err(|e| err(&path, e))?);
            let key = private_key_from_pem(&pem, passphrase, &path.display().to_string())?;
            host_keys.insert(h.id.clone(), key);
        }
        let unwrap = |by: &str, path: &Path| -> Result<Zeroizing<[u8; 32]>, CryptoError> {
            let key = host_keys
                .get(by)
                .ok_or_else(|| CryptoError::UnknownKey(by.to_string()))?;
            let plain = Zeroizing::new(
                key.oaep_decrypt::<Sha256>(&read_file(path)?)
                    .map_err(|_| err(path, "cannot be unwrapped with its host key"))?,
            );
            let mut out = Zeroizing::new([0u8; 32]);
            if plain.len() != 32 {
                return Err(err(path, "unwraps to a key of the wrong size"));
            }
            out.copy_from_slice(&plain);
            Ok(out)
        };
        let mut keks = BTreeMap::new();
        for k in &meta.keks {
            let path = dir.join(format!("kek-{}.wrapped", k.id));
            let kek = Kek::from_bytes(*unwrap(&k.wrapped_by, &path)?);
            if kek.id() != k.id {
                return Err(err(&path, "holds a different key than keyring.json names"));
            }
            keks.insert(k.id.clone(), kek);
        }
        let index =
            IndexKey::from_bytes(*unwrap(&meta.index_wrapped_by, &dir.join("index.wrapped"))?);
        Ok(Keyring {
            dir: dir.to_path_buf(),
            meta,
            host_keys,
            keks,
            index,
            passphrase: passphrase.map(|p| Zeroizing::new(p.to_string())),
            signer: std::sync::OnceLock::new(),
            signer_lock: std::sync::Mutex::new(()),
        })
    }

    fn save_meta(&self) -> Result<(), CryptoError> {
        let json = serde_json::to_vec_pretty(&self.meta)
            .map_err(|e| CryptoError::Keyring(e.to_string()))?;
        write_file(&self.dir.join("keyring.json"), &json, 0o600)
    }

    /// The host's signing key (`signing.pem`, created on first use, with
    /// the keyring's passphrase if it has one). Safe to call from many
    /// tasks and processes at once: exactly one key is ever created.
    pub fn signer(&self) -> Result<&Signer, CryptoError> {
        if let Some(s) = self.signer.get() {
            return Ok(s);
        }
        let _one_at_a_time = self.signer_lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = self.signer.get() {
            return Ok(s);
        }
        let private = self.dir.join("signing.pem");
        let public = self.dir.join("signing.pub.pem");
        let pass = self.passphrase.as_deref().map(String::as_str);
        if !private.exists() {
            // Written aside, then linked into place: link fails if another
            // process got there first, and its key is the one used.
            let key = generate_rsa()?;
            let nonce = hex::encode(super::random_key()?.get(..6).unwrap_or_default());
            let tmp_private = self.dir.join(format!("signing.pem.{nonce}"));
            let tmp_public = self.dir.join(format!("signing.pub.pem.{nonce}"));
            write_pem_pair(&key, &tmp_private, &tmp_public, pass)?;
            let linked = std::fs::hard_link(&tmp_private, &private);
            let _ = std::fs::remove_file(&tmp_private);
            match linked {
                Ok(()) => std::fs::rename(&tmp_public, &public).map_err(|e| err(&public, e))?,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let _ = std::fs::remove_file(&tmp_public);
                }
                Err(e) => {
                    let _ = std::fs::remove_file(&tmp_public);
                    return Err(err(&private, e));
                }
            }
        }
        let pem =
            Zeroizing::new(String::from_utf8(read_file(&private)?).map_err(|e| err(&private, e))?);
        let key = private_key_from_pem(&pem, pass, &private.display().to_string())?;
        let signer = Signer::new(key)?;
        Ok(self.signer.get_or_init(|| signer))
    }

    /// The active KEK, which wraps new data keys.
    /// The KEK new data keys are wrapped under.
    pub fn active_kek(&self) -> Result<&Kek, CryptoError> {
        self.kek(&self.meta.active_kek)
    }

    /// A KEK by id (old ones still unwrap the data keys they wrapped).
    pub fn kek(&self, id: &str) -> Result<&Kek, CryptoError> {
        self.keks
            .get(id)
            .ok_or_else(|| CryptoError::UnknownKey(id.to_string()))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The blind-index key.
    pub fn index_key(&self) -> &IndexKey {
        &self.index
    }

    /// The active host key as a file recipient.
    pub fn host_recipient(&self) -> Result<Recipient, CryptoError> {
        let key = self
            .host_keys
            .get(&self.meta.active_host)
            .ok_or_else(|| CryptoError::UnknownKey(self.meta.active_host.clone()))?;
        Recipient::new(key.to_public_key())
    }

    /// A host private key by id (for decrypting files made for the host).
    pub fn host_private_key(&self, id: &str) -> Option<&PrivateKey> {
        self.host_keys.get(id)
    }

    /// Register an export recipient from a PEM public key; returns its id.
    pub fn add_recipient(&mut self, name: &str, pem: &str) -> Result<String, CryptoError> {
        valid_name(name)?;
        let recipient = Recipient::from_pem(pem)?;
        if self.meta.recipients.iter().any(|r| r.name == name) {
            return Err(CryptoError::Keyring(format!(
                "a recipient named {name} already exists"
            )));
        }
        let path = self.dir.join("recipients").join(format!("{name}.pub.pem"));
        write_file(&path, pem.as_bytes(), 0o644)?;
        self.meta.recipients.push(RecipientMeta {
            name: name.to_string(),
            id: recipient.id().to_string(),
        });
        self.save_meta()?;
        Ok(recipient.id().to_string())
    }

    /// A registered recipient by name.
    pub fn recipient(&self, name: &str) -> Result<Recipient, CryptoError> {
        if !self.meta.recipients.iter().any(|r| r.name == name) {
            return Err(CryptoError::Keyring(format!("no recipient named {name}")));
        }
        let path = self.dir.join("recipients").join(format!("{name}.pub.pem"));
        let pem = String::from_utf8(read_file(&path)?).map_err(|e| err(&path, e))?;
        Recipient::from_pem(&pem)
    }

    /// The keys, for display.
    pub fn list(&self) -> KeyList {
        KeyList {
            active_host: self.meta.active_host.clone(),
            active_kek: self.meta.active_kek.clone(),
            hosts: self.meta.hosts.clone(),
            keks: self.meta.keks.clone(),
            recipients: self.meta.recipients.clone(),
        }
    }

    /// Rotate: a new host key pair and a new KEK become active (the old ones
    /// stay for decryption) and the index key is rewrapped for the new host
    /// key. Rewrap the store's data keys next (`oubli keys rotate --db`).
    pub fn rotate(&mut self, passphrase: Option<&str>) -> Result<(), CryptoError> {
        let (host_id, host) = new_host_key(&self.dir, passphrase)?;
        let public = host.to_public_key();
        let kek = Kek::generate()?;
        write_file(
            &self.dir.join(format!("kek-{}.wrapped", kek.id())),
            &rsa_wrap(&public, kek.bytes())?,
            0o600,
        )?;
        write_file(
            &self.dir.join("index.wrapped"),
            &rsa_wrap(&public, self.index.bytes())?,
            0o600,
        )?;
        self.meta.hosts.push(KeyMeta {
            id: host_id.clone(),
            created: now(),
        });
        self.meta.keks.push(KekMeta {
            id: kek.id().to_string(),
            wrapped_by: host_id.clone(),
            created: now(),
        });
        self.meta.active_host = host_id.clone();
        self.meta.active_kek = kek.id().to_string();
        self.meta.index_wrapped_by = host_id.clone();
        self.host_keys.insert(host_id, host);
        self.keks.insert(kek.id().to_string(), kek);
        self.save_meta()
    }
}

pub(crate) fn create_private_dir(dir: &Path) -> Result<(), CryptoError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| err(dir, e))
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir).map_err(|e| err(dir, e))
}

fn rsa_wrap(key: &PublicKey, secret: &[u8]) -> Result<Vec<u8>, CryptoError> {
    key.oaep_encrypt::<Sha256>(secret)
        .map_err(|e| CryptoError::Keyring(format!("RSA-OAEP wrap failed: {e}")))
}

/// Generate an RSA-2048 key pair and write it to `dir` as `host-<id>.pem`
/// and `host-<id>.pub.pem`.
fn new_host_key(dir: &Path, passphrase: Option<&str>) -> Result<(String, PrivateKey), CryptoError> {
    let key = generate_rsa()?;
    let id = rsa_key_id(&key.to_public_key())?;
    write_pem_pair(
        &key,
        &dir.join(format!("host-{id}.pem")),
        &dir.join(format!("host-{id}.pub.pem")),
        passphrase,
    )?;
    Ok((id, key))
}

/// A fresh RSA-2048 private key.
pub fn generate_rsa() -> Result<PrivateKey, CryptoError> {
    PrivateKey::new(&mut getrandom::SysRng, RSA_BITS)
        .map_err(|e| CryptoError::Keyring(format!("RSA key generation failed: {e}")))
}

/// Write a key pair as PEM: the private key PKCS#8 (encrypted with
/// `passphrase` if given), mode 0600; the public key SubjectPublicKeyInfo.
fn write_pem_pair(
    key: &PrivateKey,
    private: &Path,
    public: &Path,
    passphrase: Option<&str>,
) -> Result<(), CryptoError> {
    let pem = match passphrase {
        Some(p) => key.to_pkcs8_encrypted_pem(p, LineEnding::LF),
        None => key.to_pkcs8_pem(LineEnding::LF),
    }
    .map_err(|e| CryptoError::Keyring(format!("cannot encode the private key: {e}")))?;
    write_file(private, pem.as_bytes(), 0o600)?;
    let public_pem = key
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| CryptoError::Keyring(format!("cannot encode the public key: {e}")))?;
    write_file(public, public_pem.as_bytes(), 0o644)
}

/// Write a new RSA-2048 key pair as PEM files (private mode 0600), e.g. for
/// a recipient or the demo; returns the key id.
pub fn write_key_pair(
    private: &Path,
    public: &Path,
    passphrase: Option<&str>,
) -> Result<String, CryptoError> {
    let key = generate_rsa()?;
    write_pem_pair(&key, private, public, passphrase)?;
    rsa_key_id(&key.to_public_key())
}
