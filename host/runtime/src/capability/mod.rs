//! The host's capabilities, one unit each (in the manner of Spin's factors):
//! [`outbound_http`] (filtered `wasi:http`), [`settings`] (`host.config` and
//! `host.secret`), [`log`] (`host.log`) and [`clock`] (`host.now`).
//!
//! Each unit has three phases:
//! - *link*: the WIT it serves is added to the linker once per engine
//!   (`wasi:http` by [`outbound_http`]; the contract's own `host` interface
//!   by the contract-version module, whose functions dispatch to the units);
//! - *configure*: at load, check the connector's manifest against what the
//!   integrator granted, keep the overlap ([`Capability::Shared`]) and say
//!   what does not match (warnings) or cannot work (an error);
//! - *prepare*: per call, the state one instance gets ([`Capability::Call`]).
//!
//! Checking a configuration (`oubli systems check`) is running every
//! configure phase. A new capability is a new module here implementing
//! [`Capability`], a field in [`Granted`] and [`PluginState`], and its WIT.

pub mod clock;
pub mod grants;
pub mod log;
pub mod mask;
pub mod memo;
pub mod outbound_http;
pub mod settings;

use crate::ConnectorSpec;
use oubli_model::Manifest;
use std::sync::Arc;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Table elements an instance may grow to.
const MAX_TABLE_ELEMENTS: usize = 100_000;

/// Host resources one call may hold at once (HTTP requests and responses,
/// header fields, bodies, streams, futures, pollables). One HTTP exchange
/// uses about a dozen, dropped when it ends.
pub const MAX_RESOURCES: usize = 256;

/// Largest set of header fields a connector may build, in bytes of the
/// host's in-memory representation. With [`MAX_RESOURCES`], what headers
/// can make the host hold for one call is bounded (8 MiB).
pub const MAX_FIELDS_BYTES: usize = 32 << 10;

/// One capability the host gives connectors.
pub trait Capability {
    /// What a loaded connector keeps: the overlap of asked and granted.
    type Shared: Send + Sync + 'static;
    /// What one call (one instance) gets.
    type Call: Send + 'static;

    /// Check `manifest` against `spec`; push a warning for each mismatch
    /// that does not prevent running, fail with one line for one that does.
    fn configure(
        manifest: &Manifest,
        spec: &ConnectorSpec,
        warnings: &mut Vec<String>,
    ) -> Result<Self::Shared, String>;

    /// The state of one call.
    fn prepare(plugin: &Arc<str>, shared: &Arc<Self::Shared>) -> Self::Call;
}

/// Every capability's share of one loaded connector.
pub(crate) struct Granted {
    pub(crate) plugin: Arc<str>,
    pub(crate) http: Arc<<outbound_http::OutboundHttp as Capability>::Shared>,
    pub(crate) settings: Arc<<settings::Settings as Capability>::Shared>,
    pub(crate) log: Arc<<log::Log as Capability>::Shared>,
    /// The connector's cache (`host.cache-*`), for every call of it.
    pub(crate) memo: Arc<memo::Memo>,
    pub(crate) memory_limit: u64,
}

impl Granted {
    /// Run every configure phase.
    pub(crate) fn configure(
        manifest: &Manifest,
        spec: &ConnectorSpec,
    ) -> Result<(Granted, Vec<String>), String> {
        let mut warnings = Vec::new();
        let http = outbound_http::OutboundHttp::configure(manifest, spec, &mut warnings)?;
        let settings = settings::Settings::configure(manifest, spec, &mut warnings)?;
        log::Log::configure(manifest, spec, &mut warnings)?;
        Ok((
            Granted {
                plugin: spec.name.as_str().into(),
                http: Arc::new(http),
                settings: Arc::new(settings),
                log: Arc::new(()),
                memo: Arc::new(memo::Memo::default()),
                memory_limit: spec.limits.memory,
            },
            warnings,
        ))
    }

    /// What a connector gets before its manifest is known (to read the
    /// manifest): its settings, but no network and no secrets. `manifest()`
    /// must be pure.
    pub(crate) fn before_manifest(spec: &ConnectorSpec) -> Granted {
        Granted {
            plugin: spec.name.as_str().into(),
            http: Arc::new(grants::EffectiveGrants::default()),
            settings: Arc::new(settings::Settings::without_secrets(spec)),
            log: Arc::new(()),
            memo: Arc::new(memo::Memo::default()),
            memory_limit: spec.limits.memory,
        }
    }
}

/// The store data of one connector instance (one call): the deny-by-default
/// WASI context, each capability's call state, and the memory limiter.
pub(crate) struct PluginState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    pub(crate) outbound: outbound_http::Hooks,
    pub(crate) settings: settings::CallSettings,
    pub(crate) log: log::CallLog,
    pub(crate) memo: Arc<memo::Memo>,
    pub(crate) limiter: MemoryLimiter,
}

impl PluginState {
    pub(crate) fn new(granted: &Granted, mask: Option<Arc<mask::Mask>>) -> Self {
        // Deny by default: no preopened directories, no environment, no
        // arguments, no stdio (stdout/stderr go nowhere, stdin is empty), no
        // sockets, no name lookup. Outbound HTTP goes through the hooks.
        let wasi = WasiCtx::builder()
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }))
            .build();
        let mut http = WasiHttpCtx::new();
        http.set_field_size_limit(MAX_FIELDS_BYTES);
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_RESOURCES);
        PluginState {
            wasi,
            http,
            table,
            outbound: outbound_http::OutboundHttp::prepare(&granted.plugin, &granted.http),
            settings: settings::Settings::prepare(&granted.plugin, &granted.settings),
            log: log::Log::prepare(&granted.plugin, &granted.log).masking(mask),
            memo: granted.memo.clone(),
            limiter: MemoryLimiter::new(granted.memory_limit),
        }
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for PluginState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outbound,
        }
    }
}

/// Cut `s` to at most `max` bytes on a character boundary and replace
/// control characters, so connector text cannot forge log lines.
pub(crate) fn sanitize(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let mut out: String = s[..end]
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if end < s.len() {
        out.push('…');
    }
    out
}

/// Caps the total linear memory of one instance and remembers whether the cap
/// was hit, so a trap that follows is reported as a memory-limit error.
pub(crate) struct MemoryLimiter {
    limit: usize,
    used: usize,
    pub(crate) hit: bool,
}

impl MemoryLimiter {
    fn new(limit: u64) -> Self {
        MemoryLimiter {
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
            used: 0,
            hit: false,
        }
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let grow = desired.saturating_sub(current);
        if self.used.saturating_add(grow) > self.limit {
            self.hit = true;
            return Ok(false);
        }
        self.used += grow;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_text_is_cut_and_cannot_forge_lines() {
        assert_eq!(sanitize("a\nb\tc", 100), "a b c");
        assert_eq!(sanitize("ééé", 3), "é…");
        assert_eq!(
            sanitize(&"x".repeat(5000), 1024).len(),
            1024 + '…'.len_utf8()
        );
    }
}
