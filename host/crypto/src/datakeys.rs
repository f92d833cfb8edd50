//! Per-request data keys: where they live ([`DataKeyStore`], which the
//! store implements so that keys are written in the same transaction as the
//! rows they protect) and what is done with them ([`DataKeys`]: create on
//! first use, seal and open records, crypto-shred, rewrap after a rotation).
//!
//! The keyring holds the root keys only (host keys, KEKs, the index key);
//! a data key never leaves a store unwrapped. [`DirDataKeys`] keeps them as
//! files in a directory, one per request (`<request>.json`, a
//! `<request>.shredded` tombstone once shredded), for use until and outside
//! a database.
//!
//! Crypto-shredding destroys a request's wrapped data keys: every record
//! sealed under them, in the store and in its backups, becomes unreadable.
//! It cannot reach copies already decrypted and delivered (exports sent to
//! a subject or a DPO), and a file system may keep old blocks of a deleted
//! file (overwriting is attempted, but SSDs and copy-on-write file systems do
//! not promise it): keep key stores on encrypted storage.

use super::CryptoError;
use super::envelope::{DataKey, RecordContext, WrappedDataKey, sealed_key_id};
use super::keyring::{Keyring, create_private_dir, write_file};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Where the wrapped data keys of requests are kept.
pub trait DataKeyStore {
    /// A request's wrapped keys, oldest first (empty when it has none);
    /// [`CryptoError::Shredded`] once it was shredded.
    fn load(&self, request_id: &str) -> Result<Vec<WrappedDataKey>, CryptoError>;
    /// Replace a request's wrapped keys, atomically.
    fn save(&self, request_id: &str, keys: &[WrappedDataKey]) -> Result<(), CryptoError>;
    /// Destroy a request's keys for good and remember that it was shredded;
    /// returns whether it had keys.
    fn shred(&self, request_id: &str) -> Result<bool, CryptoError>;
    /// Every request that has keys, in a stable order.
    fn requests(&self) -> Result<Vec<String>, CryptoError>;
}

/// What a store holds, for display.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DataKeyStats {
    /// Requests with stored data keys.
    pub requests_with_keys: usize,
    /// Data keys not yet under the active KEK (a rotation to resume).
    pub keys_to_rewrap: usize,
}

/// The data keys of a store, used with a keyring's KEKs.
pub struct DataKeys<'a, S> {
    keyring: &'a Keyring,
    store: &'a S,
}

impl<'a, S: DataKeyStore> DataKeys<'a, S> {
    /// Use `store`'s keys with `keyring`.
    pub fn new(keyring: &'a Keyring, store: &'a S) -> Self {
        DataKeys { keyring, store }
    }

    fn unwrap(&self, request_id: &str, w: &WrappedDataKey) -> Result<DataKey, CryptoError> {
        self.keyring.kek(&w.kek_id)?.unwrap(request_id, w)
    }

    /// The request's current data key, created (and stored wrapped under
    /// the active KEK) on first use.
    pub fn current(&self, request_id: &str) -> Result<DataKey, CryptoError> {
        valid_request_id(request_id)?;
        let mut keys = self.store.load(request_id)?;
        if let Some(w) = keys.last() {
            return self.unwrap(request_id, w);
        }
        let dk = DataKey::generate()?;
        keys.push(self.keyring.active_kek()?.wrap(request_id, &dk)?);
        self.store.save(request_id, &keys)?;
        Ok(dk)
    }

    /// A request's data key by id.
    pub fn by_id(&self, request_id: &str, id: &str) -> Result<DataKey, CryptoError> {
        valid_request_id(request_id)?;
        let keys = self.store.load(request_id)?;
        let w = keys
            .iter()
            .find(|k| k.id == id)
            .ok_or_else(|| CryptoError::UnknownKey(id.to_string()))?;
        self.unwrap(request_id, w)
    }

    /// Seal a value of a request's record.
    pub fn seal(&self, ctx: &RecordContext<'_>, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.current(ctx.request_id)?.seal(ctx, plaintext)
    }

    /// Open a value sealed by [`DataKeys::seal`].
    pub fn open(
        &self,
        ctx: &RecordContext<'_>,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let id = sealed_key_id(sealed)?;
        self.by_id(ctx.request_id, &id)?.open(ctx, sealed)
    }

    /// Crypto-shred a request (see the module documentation).
    pub fn shred(&self, request_id: &str) -> Result<bool, CryptoError> {
        valid_request_id(request_id)?;
        self.store.shred(request_id)
    }

    /// Rewrap every data key not under the active KEK; resumable (each
    /// request's keys are replaced atomically). Returns how many were
    /// rewrapped; `progress(done, total)` is called per request.
    pub fn rewrap(&self, mut progress: impl FnMut(usize, usize)) -> Result<usize, CryptoError> {
        let requests = self.store.requests()?;
        let active = self.keyring.active_kek()?;
        let mut rewrapped = 0;
        for (i, request_id) in requests.iter().enumerate() {
            let mut keys = self.store.load(request_id)?;
            let mut changed = false;
            for w in keys.iter_mut() {
                if w.kek_id != active.id() {
                    let dk = self.unwrap(request_id, w)?;
                    *w = active.wrap(request_id, &dk)?;
                    changed = true;
                    rewrapped += 1;
                }
            }
            if changed {
                self.store.save(request_id, &keys)?;
            }
            progress(i + 1, requests.len());
        }
        Ok(rewrapped)
    }

    /// How many requests have keys, and how many keys await a rewrap.
    pub fn stats(&self) -> Result<DataKeyStats, CryptoError> {
        let active = self.keyring.active_kek()?.id().to_string();
        let mut stats = DataKeyStats::default();
        for request_id in self.store.requests()? {
            stats.requests_with_keys += 1;
            stats.keys_to_rewrap += self
                .store
                .load(&request_id)?
                .iter()
                .filter(|k| k.kek_id != active)
                .count();
        }
        Ok(stats)
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct RequestKeys {
    request_id: String,
    keys: Vec<WrappedDataKey>,
}

/// Data keys as files in a private directory (mode 0700, files 0600).
#[derive(Debug, Clone)]
pub struct DirDataKeys {
    dir: PathBuf,
}

impl DirDataKeys {
    /// The store in `dir`, created if missing.
    pub fn open(dir: &Path) -> Result<DirDataKeys, CryptoError> {
        create_private_dir(dir)?;
        Ok(DirDataKeys {
            dir: dir.to_path_buf(),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, request_id: &str) -> PathBuf {
        self.dir.join(format!("{request_id}.json"))
    }

    fn tombstone(&self, request_id: &str) -> PathBuf {
        self.dir.join(format!("{request_id}.shredded"))
    }
}

fn err(path: &Path, reason: impl std::fmt::Display) -> CryptoError {
    CryptoError::KeyFile {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

impl DataKeyStore for DirDataKeys {
    fn load(&self, request_id: &str) -> Result<Vec<WrappedDataKey>, CryptoError> {
        valid_request_id(request_id)?;
        if self.tombstone(request_id).exists() {
            return Err(CryptoError::Shredded(request_id.to_string()));
        }
        let path = self.path(request_id);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<RequestKeys>(&bytes)
                .map(|k| k.keys)
                .map_err(|e| err(&path, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(err(&path, e)),
        }
    }

    fn save(&self, request_id: &str, keys: &[WrappedDataKey]) -> Result<(), CryptoError> {
        valid_request_id(request_id)?;
        let json = serde_json::to_vec_pretty(&RequestKeys {
            request_id: request_id.to_string(),
            keys: keys.to_vec(),
        })
        .map_err(|e| CryptoError::Keyring(e.to_string()))?;
        write_file(&self.path(request_id), &json, 0o600)
    }

    fn shred(&self, request_id: &str) -> Result<bool, CryptoError> {
        valid_request_id(request_id)?;
        let path = self.path(request_id);
        let existed = path.exists();
        if existed {
            // Overwrite before unlinking, for what it is worth on this file system.
            if let Ok(meta) = std::fs::metadata(&path) {
                let _ = std::fs::write(&path, vec![0u8; meta.len() as usize]);
            }
            std::fs::remove_file(&path).map_err(|e| err(&path, e))?;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        write_file(
            &self.tombstone(request_id),
            format!("shredded at {now}\n").as_bytes(),
            0o600,
        )?;
        Ok(existed)
    }

    fn requests(&self) -> Result<Vec<String>, CryptoError> {
        let mut ids: Vec<String> = std::fs::read_dir(&self.dir)
            .map_err(|e| err(&self.dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .filter_map(|p| p.file_stem().and_then(|s| s.to_str()).map(str::to_string))
            .collect();
        ids.sort();
        Ok(ids)
    }
}

fn valid_request_id(id: &str) -> Result<(), CryptoError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(CryptoError::Keyring(
            "request ids are 1 to 64 letters, digits, dashes or underscores".into(),
        ))
    }
}
