//! The on-disk cache of compiled connector code.
//!
//! Entries are keyed by the SHA-256 of the component and a hash of the
//! engine's compatibility settings (wasmtime version, compiler flags), so a
//! changed component or a new host recompiles. Only code this host compiled
//! itself is ever deserialised: vendors ship `.wasm` components, never
//! `.cwasm`, and the cache directory must be private to the host's user
//! (created 0700; a group- or world-writable directory is not used, since
//! whoever can write there could plant native code).

use sha2::{Digest, Sha256};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

/// A directory of compiled components.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: PathBuf,
}

/// How a component was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded from the cache.
    Hit,
    /// Compiled, and stored for next time.
    Compiled,
    /// Compiled, but the cache could not be used.
    Uncached,
}

impl CompileCache {
    /// A cache in `dir`, created (mode 0700) if missing. `None` when the
    /// directory cannot be created or is writable by others.
    pub fn open(dir: &Path) -> Option<CompileCache> {
        if let Err(e) = create_private_dir(dir) {
            tracing::warn!(dir = %dir.display(), "compiled-code cache disabled: {e}");
            return None;
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let meta = std::fs::metadata(dir).ok()?;
            if meta.mode() & 0o022 != 0 {
                tracing::warn!(dir = %dir.display(), "compiled-code cache disabled: the directory is writable by group or others");
                return None;
            }
        }
        Some(CompileCache {
            dir: dir.to_path_buf(),
        })
    }

    /// The default location: `$XDG_CACHE_HOME/oubli/compiled`, else
    /// `$HOME/.cache/oubli/compiled`.
    pub fn default_dir() -> Option<PathBuf> {
        if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
            return Some(PathBuf::from(x).join("oubli/compiled"));
        }
        std::env::var_os("HOME")
            .filter(|v| !v.is_empty())
            .map(|h| PathBuf::from(h).join(".cache/oubli/compiled"))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The compiled form of `bytes` (whose SHA-256 is `digest`): from the
    /// cache, or compiled now and stored.
    pub fn get_or_compile(
        &self,
        engine: &Engine,
        digest: &[u8; 32],
        bytes: &[u8],
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        let path = self.dir.join(format!(
            "{}-{}.cwasm",
            hex::encode(digest),
            engine_key(engine)
        ));
        if path.exists() {
            // SAFETY: the file sits in our private cache directory and was
            // written by `Component::serialize` of this same engine
            // configuration (the name carries its compatibility hash).
            // wasmtime still checks its header and the engine's settings.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(c) => return Ok((c, CacheOutcome::Hit)),
                Err(e) => {
                    tracing::warn!(file = %path.display(), "discarding unusable cache entry: {e}");
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        let component = Component::new(engine, bytes)?;
        let outcome = match component.serialize() {
            Ok(code) => match write_atomically(&path, &code) {
                Ok(()) => CacheOutcome::Compiled,
                Err(e) => {
                    tracing::warn!(file = %path.display(), "cannot store compiled code: {e}");
                    CacheOutcome::Uncached
                }
            },
            Err(_) => CacheOutcome::Uncached,
        };
        Ok((component, outcome))
    }
}

/// SHA-256 of a component.
pub fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn engine_key(engine: &Engine) -> String {
    let mut h = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    format!("{:016x}", h.finish())
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    // Unique per writer: two systems sharing one component compile it at
    // the same time in one process, and must not write the same file.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp{}-{n}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}
