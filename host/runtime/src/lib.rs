//! `oubli-runtime`: the connector runtime, wasmtime's component model, async on
//! tokio.
//!
//! Owns loading connector components (compile or take from the cache, check
//! their imports against what the host provides, read their manifest, work
//! out what they may reach) and running each operation in a fresh, limited,
//! sandboxed instance. It knows nothing of requests, storage, policy or
//! `oubli.toml`: it loads what a [`ConnectorSpec`] describes, runs one operation
//! of one connector, and says how it went, in the host's model
//! ([`oubli_model`]).
//!
//! Where things are:
//! - [`capability`]: one unit per host capability (outbound HTTP, settings
//!   and secrets, log, clock), each linked, configured and prepared on its
//!   own; a new capability goes there.
//! - [`v0_1`], [`v0_2`]: the contract versions served, each its bindings
//!   and their conversion to the model; `contract` picks a component's
//!   version from what it exports and dispatches each call to it. A new
//!   contract version is a module beside them.
//! - [`spec`]: what the integrator grants, as values (origins, limits,
//!   secrets).
//! - [`Registry`]: the configured systems' connectors, loaded once per process,
//!   compiled in parallel.
//! - [`cache`]: compiled code on disk, by digest.
//!
//! The rules, each enforced here:
//! - WASI with nothing: no preopened directories, no environment, no
//!   arguments, no stdio, no sockets. Outbound HTTP only to granted origins,
//!   checked again on the resolved address ([`capability::grants`]).
//! - A fresh instance per operation (pooling allocator + `InstancePre`): no
//!   subject's data survives into the next call, a trap poisons nothing.
//! - Every call has a deadline that also stops CPU-bound guests (epochs), a
//!   memory limit, a per-connector concurrency limit and a cap on the size of
//!   what it returns. Failures are [`CallError`]s for that call only.
//! - Components are compiled here, never taken precompiled from a vendor;
//!   compiled code is cached by digest.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use oubli_runtime::{ConnectorSpec, Runtime, RuntimeOptions};
//! let runtime = Runtime::new(&RuntimeOptions::default())?;
//! let connector = runtime.load(&ConnectorSpec::new("directory", "people.wasm")).await?;
//! let subject = oubli_model::Subject { emails: vec!["ada@example.com".into()], ..Default::default() };
//! let found = connector.locate(&subject).await?;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod cache;
pub mod capability;
mod connector;
mod contract;
mod error;
pub mod metrics;
mod registry;
pub mod spec;
pub mod v0_1;
pub mod v0_2;
mod versions;

pub use capability::outbound_http::{Fault, Lane, Meter, RECORD_MAX, Recorded, Tap};
pub use connector::{AttachmentReader, Connector, ConnectorInfo, ForSubject};
pub use error::{CallError, LoadError};
pub use registry::{Registry, SystemConnector};
pub use spec::{
    ConnectorSpec, Limits, MAX_CONCURRENCY, MAX_MEMORY, MAX_TIMEOUT, NetworkGrants, Origin, Secret,
    SecretSource,
};

use cache::{CacheOutcome, CompileCache};
use capability::PluginState;
use connector::Runner;
use oubli_model::ComponentInfo;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// The contract versions this host serves (semver-compatible with these).
pub const SUPPORTED_WIT: &[&str] = &[v0_2::VERSION, v0_1::VERSION];

/// Instances that can exist at once across all connectors (the pooling
/// allocator's slots). Calls beyond it fail with a transient host error.
pub const MAX_INSTANCES: u32 = 256;

/// How often the epoch advances; the granularity of call deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Settings of the runtime itself.
#[derive(Debug, Clone, Default)]
pub struct RuntimeOptions {
    /// Where compiled code is cached; `None` means [`CompileCache::default_dir`].
    pub cache_dir: Option<PathBuf>,
    /// Compile in memory only, never touching the cache.
    pub no_cache: bool,
}

/// The wasm engine, the host's linker and the compiled-code cache. One per
/// process; cloning it is cheap and shares them.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    linker: Linker<PluginState>,
    cache: Option<CompileCache>,
    ticker: Arc<Ticker>,
}

/// The thread that advances the engine's epoch, which is what makes call
/// deadlines fire for a guest that never yields. It runs as long as anything
/// that can run a call holds it: the [`Runtime`] and every loaded
/// connector. (Owned by the runtime alone, it stopped when a caller kept
/// only the connectors, and a busy-looping guest then ran forever.)
pub(crate) struct Ticker {
    stop: AtomicBool,
}

impl Ticker {
    fn start(engine: Engine) -> std::io::Result<Arc<Ticker>> {
        let ticker = Arc::new(Ticker {
            stop: AtomicBool::new(false),
        });
        // The thread holds only a weak reference: once the last holder
        // drops the ticker, the thread sees it gone and ends.
        let weak = Arc::downgrade(&ticker);
        std::thread::Builder::new()
            .name("oubli-epoch".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(EPOCH_TICK);
                    match weak.upgrade() {
                        Some(t) if !t.stop.load(Ordering::Relaxed) => engine.increment_epoch(),
                        _ => break,
                    }
                }
            })?;
        Ok(ticker)
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Runtime {
    /// Set up the engine (pooling allocator, epoch interruption) and the
    /// linker with everything the host provides to connectors.
    pub fn new(options: &RuntimeOptions) -> Result<Runtime, LoadError> {
        let engine_error = |e: wasmtime::Error| LoadError::Engine(format!("{e:#}"));
        let engine = Engine::new(&engine_config()).map_err(engine_error)?;
        let mut linker = Linker::<PluginState>::new(&engine);
        // WASI p2 as the standard library needs it (filesystem, sockets and
        // environment are linked but empty or denied by the context), then
        // each capability's WIT: wasi:http, and the contract's own `host`.
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(engine_error)?;
        capability::outbound_http::add_to_linker(&mut linker).map_err(engine_error)?;
        v0_1::add_to_linker(&mut linker).map_err(engine_error)?;
        v0_2::add_to_linker(&mut linker).map_err(engine_error)?;

        let cache = if options.no_cache {
            None
        } else {
            options
                .cache_dir
                .clone()
                .or_else(CompileCache::default_dir)
                .and_then(|d| CompileCache::open(&d))
        };

        let ticker = Ticker::start(engine.clone())
            .map_err(|e| LoadError::Engine(format!("cannot start the epoch thread: {e}")))?;

        Ok(Runtime {
            inner: Arc::new(Inner {
                engine,
                linker,
                cache,
                ticker,
            }),
        })
    }

    /// The compiled-code cache in use, if any.
    pub fn cache(&self) -> Option<&CompileCache> {
        self.inner.cache.as_ref()
    }

    /// Compile (or take from the cache) a component file and check it is a
    /// component. Does not instantiate it. CPU-bound: call it from a blocking
    /// context ([`Runtime::load`] does).
    pub fn compile(&self, path: &Path) -> Result<(Component, [u8; 32], CacheOutcome), LoadError> {
        self.compile_pinned(path, None)
    }

    /// [`Runtime::compile`], refusing a file whose SHA-256 is not `pinned`
    /// (lowercase hex) before compiling it.
    pub fn compile_pinned(
        &self,
        path: &Path,
        pinned: Option<&str>,
    ) -> Result<(Component, [u8; 32], CacheOutcome), LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let digest = cache::digest(&bytes);
        if let Some(pinned) = pinned
            && !pinned.eq_ignore_ascii_case(&hex::encode(digest))
        {
            return Err(LoadError::Pinned {
                path: path.to_path_buf(),
                pinned: pinned.to_ascii_lowercase(),
                found: hex::encode(digest),
            });
        }
        check_component_header(path, &bytes)?;
        let engine = &self.inner.engine;
        let compiled = match &self.inner.cache {
            Some(cache) => cache.get_or_compile(engine, &digest, &bytes),
            None => Component::new(engine, &bytes).map(|c| (c, CacheOutcome::Uncached)),
        };
        let (component, outcome) = compiled.map_err(|e| LoadError::Compile {
            path: path.to_path_buf(),
            reason: one_line(&format!("{e:#}")),
        })?;
        Ok((component, digest, outcome))
    }

    /// Read what a component is and asks for, outside any configuration:
    /// no grants, no settings, no secrets. `oubli connector inspect`.
    pub async fn inspect(&self, path: &Path) -> Result<ComponentInfo, LoadError> {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("connector")
            .to_string();
        let (_, component) = self.prepare(&ConnectorSpec::new(name, path)).await?;
        Ok(component)
    }

    /// Load a configured system's connector: compile, check imports, read and
    /// check the manifest, then run every capability's configure phase
    /// (requested ∩ granted). Mismatches that do not prevent running are
    /// [`Connector::warnings`].
    pub async fn load(&self, spec: &ConnectorSpec) -> Result<Connector, LoadError> {
        let (runner, component) = self.prepare(spec).await?;
        Connector::configure(runner, spec, component)
    }

    /// Compile (on the blocking pool), link, and read the manifest.
    async fn prepare(&self, spec: &ConnectorSpec) -> Result<(Runner, ComponentInfo), LoadError> {
        let path = spec.component.clone();
        let this = self.clone();
        let pinned = spec.sha256.clone();
        let (component, digest, _) =
            tokio::task::spawn_blocking(move || this.compile_pinned(&path, pinned.as_deref()))
                .await
                .map_err(|e| LoadError::Host {
                    path: spec.component.clone(),
                    reason: e.to_string(),
                })??;
        let engine = &self.inner.engine;
        let imports: Vec<String> = component
            .component_type()
            .imports(engine)
            .map(|(name, _)| name.to_string())
            .collect();
        let path = &spec.component;
        if let Some((import, why)) = imports
            .iter()
            .find_map(|i| never_served(i).map(|why| (i.clone(), why)))
        {
            return Err(LoadError::DeniedImport {
                path: path.clone(),
                import,
                why,
            });
        }
        let instance_pre = self.inner.linker.instantiate_pre(&component).map_err(|e| {
            let message = format!("{e:#}");
            match missing_import(&message, &imports) {
                Some(import) => LoadError::UnknownImport {
                    path: path.clone(),
                    import,
                },
                None => LoadError::NotAConnector {
                    path: path.clone(),
                    reason: one_line(&message),
                },
            }
        })?;
        let exports: Vec<String> = component
            .component_type()
            .exports(engine)
            .map(|(name, _)| name.to_string())
            .collect();
        let pre = contract::Pre::new(instance_pre, &exports).map_err(|reason| {
            LoadError::NotAConnector {
                path: path.clone(),
                reason: one_line(&reason),
            }
        })?;
        let runner = Runner {
            engine: engine.clone(),
            _ticker: self.inner.ticker.clone(),
            pre,
            limits: spec.limits,
            name: spec.name.as_str().into(),
        };
        let manifest = runner.manifest(spec).await?;
        Ok((
            runner,
            ComponentInfo {
                path: path.clone(),
                sha256: hex::encode(digest),
                manifest,
                imports,
            },
        ))
    }
}

fn engine_config() -> wasmtime::Config {
    let mut config = wasmtime::Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    // Connectors target WASI p2; the p3 concurrency machinery would only add
    // per-store set-up and tear-down to every call.
    config.concurrency_support(false);
    let mut pool = PoolingAllocationConfig::default();
    // Each memory slot reserves address space (not RAM): 256 slots of a few
    // GiB stay well inside a 47-bit address space.
    pool.total_component_instances(MAX_INSTANCES)
        .total_core_instances(4 * MAX_INSTANCES)
        .total_memories(MAX_INSTANCES)
        .total_tables(2 * MAX_INSTANCES)
        .total_stacks(MAX_INSTANCES)
        .max_memory_size(MAX_MEMORY as usize)
        // Reset a used slot by zeroing only the pages it dirtied (found with
        // PAGEMAP_SCAN where the kernel has it) instead of dropping them with
        // madvise: the next instance then takes no page faults. Either way
        // nothing of the previous call survives.
        .linear_memory_keep_resident(8 << 20)
        .table_keep_resident(1 << 20)
        .pagemap_scan(wasmtime::Enabled::Auto);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}

/// Refuse what is not a component before the compiler sees it, with a
/// message that says what it is instead.
fn check_component_header(path: &Path, bytes: &[u8]) -> Result<(), LoadError> {
    let reason = if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        Some("not a WebAssembly file (no \\0asm header)".to_string())
    } else if bytes[4..8] == [1, 0, 0, 0] {
        Some(
            "a core WebAssembly module, not a component: build the plugin for wasm32-wasip2 \
             (or wrap it with `wasm-tools component new`)"
                .to_string(),
        )
    } else if bytes[4..8] != [0x0d, 0, 1, 0] {
        Some(format!(
            "an unsupported WebAssembly layer/version ({:02x} {:02x} {:02x} {:02x})",
            bytes[4], bytes[5], bytes[6], bytes[7]
        ))
    } else {
        None
    };
    match reason {
        Some(reason) => Err(LoadError::NotAComponent {
            path: path.to_path_buf(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Why the sandbox never serves an interface the linker knows (WASI p2 is
/// linked whole, for the standard library), or `None` if it serves it. A
/// component importing one would fail at its first call: it is refused at
/// load instead, so `oubli systems check` shows what it would try.
fn never_served(import: &str) -> Option<&'static str> {
    if import.starts_with("wasi:sockets/") {
        Some("no sockets: outbound HTTP only, through wasi:http, to granted hosts")
    } else if import.starts_with("wasi:filesystem/") {
        Some("no filesystem: connectors get no directory")
    } else {
        None
    }
}

/// Which of the component's imports the linker's error is about.
fn missing_import(message: &str, imports: &[String]) -> Option<String> {
    // wasmtime names it in backquotes: "... import `vendor:x/y@1.0.0` has the
    // wrong type" or "component imports instance `vendor:x/y`, but a matching
    // implementation was not found in the linker".
    let quoted = message.split('`').skip(1).step_by(2);
    for q in quoted {
        if let Some(import) = imports
            .iter()
            .find(|i| *i == q || i.starts_with(&format!("{q}@")))
        {
            return Some(import.clone());
        }
    }
    None
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_check_names_what_the_file_is() {
        let p = Path::new("x.wasm");
        let e = check_component_header(p, b"\0asm\x01\0\0\0rest")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("core WebAssembly module, not a component"),
            "{e}"
        );
        let e = check_component_header(p, b"PK\x03\x04 zip file")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a WebAssembly file"), "{e}");
        let e = check_component_header(p, b"").unwrap_err().to_string();
        assert!(e.contains("not a WebAssembly file"), "{e}");
        assert!(check_component_header(p, b"\0asm\x0d\0\x01\0").is_ok());
    }

    #[test]
    fn sockets_and_filesystem_are_never_served() {
        assert!(never_served("wasi:sockets/tcp@0.2.6").is_some());
        assert!(never_served("wasi:sockets/ip-name-lookup@0.2.0").is_some());
        assert!(never_served("wasi:filesystem/preopens@0.2.6").is_some());
        assert!(never_served("wasi:http/outgoing-handler@0.2.12").is_none());
        assert!(never_served("wasi:cli/environment@0.2.6").is_none());
    }

    #[test]
    fn missing_import_is_found_in_the_linker_message() {
        let imports = vec![
            "wasi:io/poll@0.2.12".to_string(),
            "test:bad/raw-socket".to_string(),
        ];
        assert_eq!(
            missing_import(
                "component imports instance `test:bad/raw-socket`, but a matching implementation was not found in the linker",
                &imports
            ),
            Some("test:bad/raw-socket".into())
        );
        assert_eq!(missing_import("something else", &imports), None);
    }
}
