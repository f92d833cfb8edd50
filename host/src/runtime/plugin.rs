//! A loaded plugin and its operations, each in a fresh instance.

use super::bindings::{self, PluginPre};
use super::grants::{self, EffectiveGrants, HostPattern};
use super::state::{Capabilities, PluginState, sanitize};
use super::{
    CallError, Change, ConnectorError, EraseMode, Exported, LoadError, Located, Manifest,
    Operation, Outcome, RecordRef, SUPPORTED_WIT, Status, Subject,
};
use crate::config::{Limits, PluginConfig};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::Semaphore;
use wasmtime::{Engine, Store, Trap};

/// Longest error message kept from a connector, in bytes.
const MAX_ERROR_MESSAGE: usize = 512;

/// A plugin ready to run operations.
pub struct Plugin {
    engine: Engine,
    pre: PluginPre<PluginState>,
    caps: Arc<Capabilities>,
    limits: Limits,
    permits: Semaphore,
    info: PluginInfo,
}

/// What is known about a loaded plugin: its manifest and what it was given.
#[derive(Debug, Clone, Serialize)]
pub struct PluginInfo {
    /// The integrator's name for it.
    pub name: String,
    /// The component file.
    pub path: PathBuf,
    /// SHA-256 of the component, hex.
    pub sha256: String,
    /// What the plugin says about itself.
    pub manifest: Manifest,
    /// The component's imports.
    pub imports: Vec<String>,
    /// Origins it can reach (requested and granted).
    pub reachable: Vec<String>,
    /// Whether granted hosts may resolve to loopback / private addresses.
    pub allow_loopback: bool,
    /// See `allow_loopback`.
    pub allow_private: bool,
    /// Secrets it receives (requested and granted), by name.
    pub secrets: Vec<String>,
    /// Its limits.
    pub memory_limit: u64,
    /// Call deadline, in milliseconds.
    pub timeout_ms: u64,
    /// Operations at once.
    pub concurrency: u32,
    /// Largest result, in bytes.
    pub max_output: u64,
    /// Mismatches between what it asks for and what it was given.
    pub warnings: Vec<String>,
}

impl Plugin {
    pub(super) async fn start(
        engine: Engine,
        pre: PluginPre<PluginState>,
        config: &PluginConfig,
        digest: [u8; 32],
        imports: Vec<String>,
        configured: bool,
    ) -> Result<Plugin, LoadError> {
        let name = config.name.clone();
        let limits = config.limits;
        // The manifest is read with the configuration values but without
        // network or secrets: it must be pure.
        let bootstrap = Plugin {
            engine: engine.clone(),
            pre: pre.clone(),
            caps: Arc::new(Capabilities {
                plugin: name.as_str().into(),
                config: config.config.clone(),
                secrets: BTreeMap::new(),
                grants: Arc::new(EffectiveGrants::default()),
                memory_limit: limits.memory,
            }),
            limits,
            permits: Semaphore::new(1),
            info: placeholder_info(config),
        };
        let manifest = bootstrap
            .run(async |store, plugin| {
                Ok(Ok(plugin
                    .oubli_connector_connector()
                    .call_manifest(store)
                    .await?))
            })
            .await
            .map_err(|source| LoadError::ManifestCall {
                plugin: name.clone(),
                source,
            })?;
        let refuse = |reason: String| LoadError::Manifest {
            plugin: name.clone(),
            reason,
        };

        if !wit_supported(&manifest.wit_version) {
            return Err(refuse(format!(
                "built against contract version {:?}; this host serves {}",
                manifest.wit_version,
                SUPPORTED_WIT.join(", ")
            )));
        }
        let mut patterns = Vec::with_capacity(manifest.outbound_hosts.len());
        for h in &manifest.outbound_hosts {
            patterns.push(
                HostPattern::parse(h).map_err(|e| refuse(format!("manifest outbound host {e}")))?,
            );
        }
        let (effective, mut warnings) = grants::intersect(&patterns, &config.grants);
        if !configured {
            warnings.clear();
        }

        for key in manifest
            .config_keys
            .iter()
            .filter(|k| k.required && configured)
        {
            if !config.config.contains_key(&key.name) {
                return Err(refuse(format!(
                    "required configuration key `{}` is not set ({})",
                    key.name, key.description
                )));
            }
        }
        for key in config.config.keys() {
            if !manifest.config_keys.iter().any(|k| &k.name == key) {
                warnings.push(format!(
                    "configuration key `{key}` is not one the plugin reads"
                ));
            }
        }
        let mut resolved = config.resolve_secrets()?;
        for key in resolved.keys() {
            if !manifest.secrets.contains(key) {
                warnings.push(format!(
                    "secret `{key}` is granted but not asked for; it is withheld"
                ));
            }
        }
        resolved.retain(|k, _| manifest.secrets.contains(k));
        for key in manifest.secrets.iter().filter(|_| configured) {
            if !resolved.contains_key(key) {
                warnings.push(format!(
                    "the plugin asks for secret `{key}`, which is not granted"
                ));
            }
        }

        let info = PluginInfo {
            name: name.clone(),
            path: config.path.clone(),
            sha256: hex::encode(digest),
            imports,
            reachable: effective.origins.iter().map(|o| o.to_string()).collect(),
            allow_loopback: effective.allow_loopback,
            allow_private: effective.allow_private,
            secrets: resolved.keys().cloned().collect(),
            memory_limit: limits.memory,
            timeout_ms: limits.timeout.as_millis() as u64,
            concurrency: limits.concurrency,
            max_output: limits.max_output,
            warnings,
            manifest,
        };
        Ok(Plugin {
            engine,
            pre,
            caps: Arc::new(Capabilities {
                plugin: name.as_str().into(),
                config: config.config.clone(),
                secrets: resolved,
                grants: Arc::new(effective),
                memory_limit: limits.memory,
            }),
            limits,
            permits: Semaphore::new(limits.concurrency as usize),
            info,
        })
    }

    /// The integrator's name for the plugin.
    pub fn name(&self) -> &str {
        &self.info.name
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.info.manifest
    }

    /// Everything known about the plugin.
    pub fn info(&self) -> &PluginInfo {
        &self.info
    }

    /// Mismatches between what the plugin asks for and what it was granted.
    pub fn warnings(&self) -> &[String] {
        &self.info.warnings
    }

    /// Whether the manifest offers an operation.
    pub fn offers(&self, op: Operation) -> bool {
        self.info.manifest.operations.contains(&op)
    }

    /// Find the subject's records.
    pub async fn locate(&self, subject: &Subject) -> Result<Vec<Located>, CallError> {
        self.run(async |store, p| {
            p.oubli_connector_connector()
                .call_locate(store, subject)
                .await
        })
        .await
    }

    /// Read records' personal data.
    pub async fn export(&self, refs: &[RecordRef]) -> Result<Vec<Exported>, CallError> {
        self.run(async |store, p| p.oubli_connector_connector().call_export(store, refs).await)
            .await
    }

    /// Read up to `max_len` bytes of an attachment at `offset`; empty means
    /// the end.
    pub async fn read_attachment(
        &self,
        reference: &RecordRef,
        name: &str,
        offset: u64,
        max_len: u32,
    ) -> Result<Vec<u8>, CallError> {
        let bytes = self
            .run(async |store, p| {
                p.oubli_connector_connector()
                    .call_read_attachment(store, reference, name, offset, max_len)
                    .await
            })
            .await?;
        if bytes.len() > max_len as usize {
            return Err(CallError::Protocol(format!(
                "read-attachment returned {} bytes for max-len {max_len}",
                bytes.len()
            )));
        }
        Ok(bytes)
    }

    /// Correct fields of one record.
    pub async fn rectify(
        &self,
        reference: &RecordRef,
        changes: &[Change],
    ) -> Result<Outcome, CallError> {
        self.run(async |store, p| {
            p.oubli_connector_connector()
                .call_rectify(store, reference, changes)
                .await
        })
        .await
    }

    /// Delete or anonymise records.
    pub async fn erase(
        &self,
        refs: &[RecordRef],
        mode: EraseMode,
    ) -> Result<Vec<Outcome>, CallError> {
        self.run(async |store, p| {
            p.oubli_connector_connector()
                .call_erase(store, refs, mode)
                .await
        })
        .await
    }

    /// Restrict processing (or lift the restriction).
    pub async fn restrict(
        &self,
        subject: &Subject,
        scope: &[String],
        on: bool,
    ) -> Result<Vec<Outcome>, CallError> {
        self.run(async |store, p| {
            p.oubli_connector_connector()
                .call_restrict(store, subject, scope, on)
                .await
        })
        .await
    }

    /// Follow an asynchronous job.
    pub async fn poll(&self, ticket: &str) -> Result<Vec<Outcome>, CallError> {
        self.run(async |store, p| p.oubli_connector_connector().call_poll(store, ticket).await)
            .await
    }

    /// Run one operation in a fresh instance, under the plugin's limits.
    async fn run<R: WireSize>(
        &self,
        op: impl AsyncFnOnce(
            &mut Store<PluginState>,
            &bindings::Plugin,
        ) -> wasmtime::Result<Result<R, ConnectorError>>,
    ) -> Result<R, CallError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| CallError::Host("plugin is shutting down".into()))?;
        let mut store = Store::new(&self.engine, PluginState::new(self.caps.clone()));
        store.limiter(|s| &mut s.limiter);
        let ticks = self
            .limits
            .timeout
            .as_millis()
            .div_ceil(super::EPOCH_TICK.as_millis()) as u64
            + 1;
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();

        let pre = &self.pre;
        let outcome = tokio::time::timeout(self.limits.timeout, async {
            let instance = pre.instantiate_async(&mut store).await?;
            op(&mut store, &instance).await
        })
        .await;
        let memory_hit = store.data().limiter.hit;
        let result = match outcome {
            Err(_elapsed) => return Err(CallError::Timeout(self.limits.timeout)),
            Ok(r) => r,
        };
        match result {
            Err(e) => Err(self.classify(e, memory_hit)),
            Ok(Err(connector_error)) => Err(CallError::Connector(tidy(connector_error))),
            Ok(Ok(value)) => {
                let size = value.wire_size();
                if size > self.limits.max_output {
                    Err(CallError::OutputTooLarge {
                        size,
                        limit: self.limits.max_output,
                    })
                } else {
                    Ok(value)
                }
            }
        }
    }

    fn classify(&self, error: wasmtime::Error, memory_hit: bool) -> CallError {
        if memory_hit {
            return CallError::MemoryLimit(self.limits.memory);
        }
        match error.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => CallError::Timeout(self.limits.timeout),
            Some(Trap::StackOverflow) => CallError::Trap("stack overflow".into()),
            Some(Trap::UnreachableCodeReached) => {
                CallError::Trap("unreachable code reached (the plugin panicked or aborted)".into())
            }
            Some(trap) => CallError::Trap(trap.to_string()),
            None => {
                let message = sanitize(&format!("{error:#}"), MAX_ERROR_MESSAGE);
                tracing::warn!(plugin = self.name(), "call failed in the host: {message}");
                CallError::Host(message)
            }
        }
    }
}

fn placeholder_info(config: &PluginConfig) -> PluginInfo {
    PluginInfo {
        name: config.name.clone(),
        path: config.path.clone(),
        sha256: String::new(),
        manifest: Manifest {
            id: String::new(),
            name: String::new(),
            version: String::new(),
            wit_version: String::new(),
            system_kind: super::SystemKind::Other,
            operations: vec![],
            categories: vec![],
            outbound_hosts: vec![],
            config_keys: vec![],
            secrets: vec![],
        },
        imports: vec![],
        reachable: vec![],
        allow_loopback: false,
        allow_private: false,
        secrets: vec![],
        memory_limit: config.limits.memory,
        timeout_ms: config.limits.timeout.as_millis() as u64,
        concurrency: 1,
        max_output: config.limits.max_output,
        warnings: vec![],
    }
}

fn wit_supported(version: &str) -> bool {
    let major_minor = |v: &str| {
        let mut it = v.split('.');
        Some((
            it.next()?.parse::<u64>().ok()?,
            it.next()?.parse::<u64>().ok()?,
        ))
    };
    let Some(theirs) = major_minor(version) else {
        return false;
    };
    SUPPORTED_WIT
        .iter()
        .any(|ours| major_minor(ours) == Some(theirs))
}

/// Keep connector error messages short and on one line.
fn tidy(e: ConnectorError) -> ConnectorError {
    let t = |m: String| sanitize(&m, MAX_ERROR_MESSAGE);
    match e {
        ConnectorError::Unavailable(m) => ConnectorError::Unavailable(t(m)),
        ConnectorError::RateLimited(s) => ConnectorError::RateLimited(s),
        ConnectorError::Denied(m) => ConnectorError::Denied(t(m)),
        ConnectorError::NotSupported(m) => ConnectorError::NotSupported(t(m)),
        ConnectorError::Invalid(m) => ConnectorError::Invalid(t(m)),
        ConnectorError::Internal(m) => ConnectorError::Internal(t(m)),
    }
}

/// Approximate size in bytes of a value returned by a plugin, to enforce
/// `max_output`.
pub(crate) trait WireSize {
    fn wire_size(&self) -> u64;
}

impl WireSize for String {
    fn wire_size(&self) -> u64 {
        self.len() as u64 + 8
    }
}
impl WireSize for u8 {
    fn wire_size(&self) -> u64 {
        1
    }
}
impl<T: WireSize> WireSize for Vec<T> {
    fn wire_size(&self) -> u64 {
        8 + self.iter().map(WireSize::wire_size).sum::<u64>()
    }
}
impl<T: WireSize> WireSize for Option<T> {
    fn wire_size(&self) -> u64 {
        1 + self.as_ref().map_or(0, WireSize::wire_size)
    }
}
impl WireSize for RecordRef {
    fn wire_size(&self) -> u64 {
        self.kind.wire_size() + self.id.wire_size()
    }
}
impl WireSize for Located {
    fn wire_size(&self) -> u64 {
        self.reference.wire_size() + self.summary.wire_size() + 9 + self.hold.wire_size()
    }
}
impl WireSize for Exported {
    fn wire_size(&self) -> u64 {
        self.reference.wire_size()
            + 8
            + self
                .fields
                .iter()
                .map(|f| f.name.wire_size() + f.category.wire_size() + f.value.wire_size())
                .sum::<u64>()
            + 8
            + self
                .attachments
                .iter()
                .map(|a| a.name.wire_size() + a.media_type.wire_size() + 9)
                .sum::<u64>()
    }
}
impl WireSize for Outcome {
    fn wire_size(&self) -> u64 {
        self.reference.wire_size()
            + 1
            + match &self.status {
                Status::Retained(s) | Status::Pending(s) => s.wire_size(),
                Status::Done | Status::NotFound => 0,
            }
    }
}
impl WireSize for Manifest {
    fn wire_size(&self) -> u64 {
        // The manifest is read once at load; count its free text.
        let cats: u64 = self
            .categories
            .iter()
            .map(|c| {
                c.name.wire_size()
                    + c.description.wire_size()
                    + c.purposes.wire_size()
                    + c.retention.wire_size()
                    + c.recipients.wire_size()
            })
            .sum();
        self.id.wire_size()
            + self.name.wire_size()
            + self.version.wire_size()
            + self.wit_version.wire_size()
            + cats
            + self.outbound_hosts.wire_size()
            + self
                .config_keys
                .iter()
                .map(|k| k.name.wire_size() + k.description.wire_size())
                .sum::<u64>()
            + self.secrets.wire_size()
            + 8 * self.operations.len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wit_versions_are_matched_on_major_and_minor() {
        assert!(wit_supported("0.1.0"));
        assert!(wit_supported("0.1.7"));
        assert!(!wit_supported("0.2.0"));
        assert!(!wit_supported("1.0.0"));
        assert!(!wit_supported("banana"));
    }

    #[test]
    fn connector_messages_are_cut_to_one_short_line() {
        let e = tidy(ConnectorError::Internal(format!(
            "line1\nline2{}",
            "x".repeat(2000)
        )));
        let ConnectorError::Internal(m) = e else {
            unreachable!()
        };
        assert!(!m.contains('\n'));
        assert!(m.len() <= MAX_ERROR_MESSAGE + 3);
    }
}
