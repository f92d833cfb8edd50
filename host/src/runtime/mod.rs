//! The plugin runtime: wasmtime's component model, async on tokio.
//!
//! Owns loading connector components (compile or take from the cache, check
//! their imports against what the host provides, read their manifest, work
//! out what they may reach) and running each operation in a fresh, limited,
//! sandboxed instance. It knows nothing of requests, storage or policy: it
//! runs one operation of one plugin and says how it went.
//!
//! The rules, each enforced here:
//! - WASI with nothing: no preopened directories, no environment, no
//!   arguments, no stdio, no sockets. Outbound HTTP only to granted origins,
//!   checked again on the resolved address ([`grants`]).
//! - A fresh instance per operation (pooling allocator + `InstancePre`): no
//!   subject's data survives into the next call, a trap poisons nothing.
//! - Every call has a deadline that also stops CPU-bound guests (epochs), a
//!   memory limit, a per-plugin concurrency limit and a cap on the size of
//!   what it returns. Failures are [`CallError`]s for that call only.
//! - Components are compiled here, never taken precompiled from a vendor;
//!   compiled code is cached by digest ([`cache`]).
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use oubli::runtime::{Runtime, RuntimeOptions, Subject};
//! let config = oubli::config::Config::load("oubli.toml".as_ref())?;
//! let runtime = Runtime::new(&RuntimeOptions::default())?;
//! let plugin = runtime.load(&config.plugins[0]).await?;
//! let found = plugin.locate(&Subject { emails: vec!["ada@example.com".into()], ..Default::default() }).await?;
//! # Ok(()) }
//! ```

pub mod cache;
mod error;
pub mod grants;
mod outbound;
mod plugin;
mod state;

pub use error::{CallError, LoadError};
pub use plugin::{Plugin, PluginInfo};

/// Types of the WIT contract, as the host sees them.
pub use bindings::oubli::connector::types::{
    Attachment, Change, ConfigKey, ConnectorError, DataCategory, EraseMode, Exported, ExternalId,
    Field, Located, Operation, Outcome, PluginManifest as Manifest, RecordRef, Status, Subject,
    SystemKind,
};

use crate::config::PluginConfig;
use cache::{CacheOutcome, CompileCache};
use state::PluginState;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// The contract versions this host serves (semver-compatible with these).
pub const SUPPORTED_WIT: &[&str] = &["0.1.0"];

/// Instances that can exist at once across all plugins (the pooling
/// allocator's slots). Calls beyond it fail with a transient host error.
pub const MAX_INSTANCES: u32 = 256;

/// How often the epoch advances; the granularity of call deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "oubli:connector/plugin",
        imports: { default: tracing },
        exports: { default: async },
        with: {
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "wasi:io": wasmtime_wasi::p2::bindings::io,
        },
        additional_derives: [serde::Serialize, serde::Deserialize, PartialEq, Eq],
        require_store_data_send: true,
    });
}

#[allow(
    clippy::derivable_impls,
    reason = "the type is generated; derive is not available"
)]
impl Default for Subject {
    fn default() -> Self {
        Subject {
            emails: Vec::new(),
            phones: Vec::new(),
            names: Vec::new(),
            external_ids: Vec::new(),
        }
    }
}

/// Settings of the runtime itself.
#[derive(Debug, Clone, Default)]
pub struct RuntimeOptions {
    /// Where compiled code is cached; `None` means [`CompileCache::default_dir`].
    pub cache_dir: Option<PathBuf>,
    /// Compile in memory only, never touching the cache.
    pub no_cache: bool,
}

/// The wasm engine, the host's linker and the compiled-code cache. One per
/// process; plugins loaded from it share its engine.
pub struct Runtime {
    engine: Engine,
    linker: Arc<Linker<PluginState>>,
    cache: Option<CompileCache>,
    stop_ticker: Arc<AtomicBool>,
}

impl Runtime {
    /// Set up the engine (pooling allocator, epoch interruption) and the
    /// linker with everything the host provides to plugins.
    pub fn new(options: &RuntimeOptions) -> Result<Runtime, LoadError> {
        let engine =
            Engine::new(&engine_config()).map_err(|e| LoadError::Engine(format!("{e:#}")))?;
        let mut linker = Linker::<PluginState>::new(&engine);
        // WASI p2 as the standard library needs it (filesystem, sockets and
        // environment are linked but empty or denied by the context), then
        // wasi:http and our own host interface.
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| LoadError::Engine(format!("{e:#}")))?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(|e| LoadError::Engine(format!("{e:#}")))?;
        bindings::oubli::connector::host::add_to_linker::<
            _,
            wasmtime::component::HasSelf<PluginState>,
        >(&mut linker, |s| s)
        .map_err(|e| LoadError::Engine(format!("{e:#}")))?;
        bindings::oubli::connector::types::add_to_linker::<
            _,
            wasmtime::component::HasSelf<PluginState>,
        >(&mut linker, |s| s)
        .map_err(|e| LoadError::Engine(format!("{e:#}")))?;

        let cache = if options.no_cache {
            None
        } else {
            options
                .cache_dir
                .clone()
                .or_else(CompileCache::default_dir)
                .and_then(|d| CompileCache::open(&d))
        };

        let stop_ticker = Arc::new(AtomicBool::new(false));
        {
            let engine = engine.clone();
            let stop = stop_ticker.clone();
            std::thread::Builder::new()
                .name("oubli-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(EPOCH_TICK);
                        engine.increment_epoch();
                    }
                })
                .map_err(|e| LoadError::Engine(format!("cannot start the epoch thread: {e}")))?;
        }

        Ok(Runtime {
            engine,
            linker: Arc::new(linker),
            cache,
            stop_ticker,
        })
    }

    /// The compiled-code cache in use, if any.
    pub fn cache(&self) -> Option<&CompileCache> {
        self.cache.as_ref()
    }

    /// Compile (or take from the cache) a component file and check it is a
    /// component whose imports this host provides. Does not instantiate it.
    pub fn compile(&self, path: &Path) -> Result<(Component, [u8; 32], CacheOutcome), LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        check_component_header(path, &bytes)?;
        let digest = cache::digest(&bytes);
        let compiled = match &self.cache {
            Some(cache) => cache.get_or_compile(&self.engine, &digest, &bytes),
            None => Component::new(&self.engine, &bytes).map(|c| (c, CacheOutcome::Uncached)),
        };
        let (component, outcome) = compiled.map_err(|e| LoadError::Compile {
            path: path.to_path_buf(),
            reason: one_line(&format!("{e:#}")),
        })?;
        Ok((component, digest, outcome))
    }

    /// Load a configured plugin: compile, check imports, read and check the
    /// manifest, intersect requested and granted capabilities, resolve its
    /// secrets. Mismatches that do not prevent running are returned as
    /// [`Plugin::warnings`].
    pub async fn load(&self, config: &PluginConfig) -> Result<Plugin, LoadError> {
        self.load_with(config, true).await
    }

    /// Load a component outside any configuration, to read its manifest:
    /// no grants, no configuration, no secrets, and required configuration
    /// keys are not checked. Used by `oubli plugin inspect`.
    pub async fn inspect(&self, path: &Path) -> Result<Plugin, LoadError> {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("plugin")
            .to_string();
        let config = PluginConfig {
            name,
            file: PathBuf::from("(none)"),
            path: path.to_path_buf(),
            enabled: true,
            grants: Default::default(),
            config: Default::default(),
            secrets: Default::default(),
            limits: Default::default(),
        };
        self.load_with(&config, false).await
    }

    async fn load_with(
        &self,
        config: &PluginConfig,
        configured: bool,
    ) -> Result<Plugin, LoadError> {
        let (component, digest, _) = self.compile(&config.path)?;
        let imports: Vec<String> = component
            .component_type()
            .imports(&self.engine)
            .map(|(name, _)| name.to_string())
            .collect();
        let instance_pre = self.linker.instantiate_pre(&component).map_err(|e| {
            let message = format!("{e:#}");
            match missing_import(&message, &imports) {
                Some(import) => LoadError::UnknownImport {
                    path: config.path.clone(),
                    import,
                },
                None => LoadError::NotAConnector {
                    path: config.path.clone(),
                    reason: one_line(&message),
                },
            }
        })?;
        let pre = bindings::PluginPre::new(instance_pre).map_err(|e| LoadError::NotAConnector {
            path: config.path.clone(),
            reason: one_line(&format!("{e:#}")),
        })?;
        plugin::Plugin::start(
            self.engine.clone(),
            pre,
            config,
            digest,
            imports,
            configured,
        )
        .await
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
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
        .max_memory_size(crate::config::MAX_MEMORY as usize)
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
