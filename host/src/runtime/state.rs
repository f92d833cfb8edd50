//! The per-call state of one plugin instance: the deny-by-default WASI
//! context, the filtered HTTP hooks, the memory limiter, and the host
//! capabilities (`log`, `config`, `secret`, `now`).

use super::bindings::oubli::connector::{host, types};
use super::grants::EffectiveGrants;
use super::outbound::OutboundHttp;
use crate::config::Secret;
use std::collections::BTreeMap;
use std::sync::Arc;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Longest log message kept from a plugin, in bytes.
pub const MAX_LOG_MESSAGE: usize = 1024;
/// Log messages a plugin may write in one call; the rest are dropped.
pub const MAX_LOGS_PER_CALL: u32 = 200;
/// Table elements an instance may grow to.
const MAX_TABLE_ELEMENTS: usize = 100_000;

/// What the integrator gave one plugin, shared by all its calls.
pub(crate) struct Capabilities {
    pub(crate) plugin: Arc<str>,
    pub(crate) config: BTreeMap<String, String>,
    /// Only secrets both requested by the manifest and granted.
    pub(crate) secrets: BTreeMap<String, Secret>,
    pub(crate) grants: Arc<EffectiveGrants>,
    pub(crate) memory_limit: u64,
}

/// The store data of one plugin instance (one call).
pub(crate) struct PluginState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    outbound: OutboundHttp,
    caps: Arc<Capabilities>,
    pub(crate) limiter: MemoryLimiter,
    logs_left: u32,
}

impl PluginState {
    pub(crate) fn new(caps: Arc<Capabilities>) -> Self {
        // Deny by default: no preopened directories, no environment, no
        // arguments, no stdio (stdout/stderr go nowhere, stdin is empty), no
        // sockets, no name lookup. Outbound HTTP goes through `OutboundHttp`.
        let wasi = WasiCtx::builder()
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }))
            .build();
        PluginState {
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            outbound: OutboundHttp {
                plugin: caps.plugin.clone(),
                grants: caps.grants.clone(),
            },
            limiter: MemoryLimiter::new(caps.memory_limit),
            caps,
            logs_left: MAX_LOGS_PER_CALL,
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

impl types::Host for PluginState {}

impl host::Host for PluginState {
    fn log(&mut self, level: host::Level, message: String) {
        if self.logs_left == 0 {
            return;
        }
        self.logs_left -= 1;
        let plugin = &*self.caps.plugin;
        if self.logs_left == 0 {
            tracing::warn!(
                plugin,
                "log limit of {MAX_LOGS_PER_CALL} messages per call reached; dropping the rest"
            );
            return;
        }
        let message = sanitize(&message, MAX_LOG_MESSAGE);
        match level {
            host::Level::Trace => tracing::trace!(plugin, "{message}"),
            host::Level::Debug => tracing::debug!(plugin, "{message}"),
            host::Level::Info => tracing::info!(plugin, "{message}"),
            host::Level::Warn => tracing::warn!(plugin, "{message}"),
            host::Level::Error => tracing::error!(plugin, "{message}"),
        }
    }

    fn config(&mut self, key: String) -> Option<String> {
        self.caps.config.get(&key).cloned()
    }

    fn secret(&mut self, key: String) -> Option<String> {
        self.caps.secrets.get(&key).map(|s| s.expose().to_string())
    }

    fn now(&mut self) -> types::Timestamp {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    }
}

/// Cut `s` to at most `max` bytes on a character boundary and replace
/// control characters, so plugin text cannot forge log lines.
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
    fn log_messages_are_cut_and_cannot_forge_lines() {
        assert_eq!(sanitize("a\nb\tc", 100), "a b c");
        assert_eq!(sanitize("ééé", 3), "é…");
        assert_eq!(
            sanitize(&"x".repeat(5000), MAX_LOG_MESSAGE).len(),
            MAX_LOG_MESSAGE + '…'.len_utf8()
        );
    }
}
