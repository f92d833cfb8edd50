//! A loaded connector and its operations, each in a fresh instance.

use crate::capability::{Granted, PluginState, sanitize};
use crate::v0_1::{self, Plugin as Bindings, PluginPre};
use crate::{CallError, ConnectorSpec, Limits, LoadError, SUPPORTED_WIT};
use oubli_model::{
    Change, ConnectorError, EraseMode, Exported, Located, Manifest, Operation, Outcome, RecordRef,
    Status, Subject,
};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::Semaphore;
use wasmtime::{Engine, Store, Trap};

/// Longest error message kept from a connector, in bytes.
const MAX_ERROR_MESSAGE: usize = 512;

/// A connector ready to run operations.
pub struct Connector {
    runner: Runner,
    granted: Granted,
    permits: Semaphore,
    info: ConnectorInfo,
}

/// What a component is, read without configuring it (`connector inspect`).
#[derive(Debug, Clone, Serialize)]
pub struct ComponentInfo {
    /// The component file.
    pub path: PathBuf,
    /// SHA-256 of the component, hex.
    pub sha256: String,
    /// What the connector says about itself.
    pub manifest: Manifest,
    /// The component's imports.
    pub imports: Vec<String>,
}

/// What is known about a loaded connector: its component and what it was given.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectorInfo {
    /// The integrator's name for the system.
    pub name: String,
    /// The component file.
    pub path: PathBuf,
    /// SHA-256 of the component, hex.
    pub sha256: String,
    /// What the connector says about itself.
    pub manifest: Manifest,
    /// The component's imports.
    pub imports: Vec<String>,
    /// Origins it can reach (requested and granted).
    pub reachable: Vec<String>,
    /// Whether granted hosts may resolve to loopback addresses.
    pub allow_loopback: bool,
    /// Whether granted hosts may resolve to private addresses.
    pub allow_private: bool,
    /// Secrets it receives (requested and granted), by name.
    pub secrets: Vec<String>,
    /// Linear memory per instance, in bytes.
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

/// Runs one operation in a fresh instance under a connector's limits.
pub(crate) struct Runner {
    pub(crate) engine: Engine,
    pub(crate) pre: PluginPre<PluginState>,
    pub(crate) limits: Limits,
    pub(crate) name: Arc<str>,
}

impl Runner {
    /// Call `manifest()` with what a connector gets before its manifest is
    /// known, and check the contract version it declares.
    pub(crate) async fn manifest(&self, spec: &ConnectorSpec) -> Result<Manifest, LoadError> {
        let granted = Granted::before_manifest(spec);
        let manifest = self
            .run(&granted, async |store, plugin| {
                Ok(Ok(plugin
                    .oubli_connector_connector()
                    .call_manifest(store)
                    .await?))
            })
            .await
            .map_err(|source| LoadError::ManifestCall {
                system: spec.name.clone(),
                source,
            })?;
        let manifest: Manifest =
            self.capped(manifest.into())
                .map_err(|source| LoadError::ManifestCall {
                    system: spec.name.clone(),
                    source,
                })?;
        if !wit_supported(&manifest.wit_version) {
            return Err(LoadError::Manifest {
                system: spec.name.clone(),
                reason: format!(
                    "built against contract version {:?}; this host serves {}",
                    manifest.wit_version,
                    SUPPORTED_WIT.join(", ")
                ),
            });
        }
        Ok(manifest)
    }

    /// Run one operation in a fresh instance, under the connector's limits,
    /// with what `granted` gives it.
    pub(crate) async fn run<R>(
        &self,
        granted: &Granted,
        op: impl AsyncFnOnce(
            &mut Store<PluginState>,
            &Bindings,
        ) -> wasmtime::Result<Result<R, v0_1::WitConnectorError>>,
    ) -> Result<R, CallError> {
        let mut store = Store::new(&self.engine, PluginState::new(granted));
        store.limiter(|s| &mut s.limiter);
        let ticks = self
            .limits
            .timeout
            .as_millis()
            .div_ceil(crate::EPOCH_TICK.as_millis()) as u64
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
            Ok(Err(connector_error)) => Err(CallError::Connector(tidy(connector_error.into()))),
            Ok(Ok(value)) => Ok(value),
        }
    }

    fn classify(&self, error: wasmtime::Error, memory_hit: bool) -> CallError {
        if memory_hit {
            return CallError::MemoryLimit(self.limits.memory);
        }
        match error.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => CallError::Timeout(self.limits.timeout),
            Some(Trap::StackOverflow) => CallError::Trap("stack overflow".into()),
            Some(Trap::UnreachableCodeReached) => CallError::Trap(
                "unreachable code reached (the connector panicked or aborted)".into(),
            ),
            Some(trap) => CallError::Trap(trap.to_string()),
            None => {
                let message = sanitize(&format!("{error:#}"), MAX_ERROR_MESSAGE);
                tracing::warn!(system = &*self.name, "call failed in the host: {message}");
                CallError::Host(message)
            }
        }
    }

    /// Refuse a result larger than the connector's `max_output`.
    fn capped<M: WireSize>(&self, value: M) -> Result<M, CallError> {
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

impl Connector {
    /// Configure a connector whose manifest was read: run every capability's
    /// configure phase against the spec.
    pub(crate) fn configure(
        runner: Runner,
        spec: &ConnectorSpec,
        component: ComponentInfo,
    ) -> Result<Connector, LoadError> {
        let (granted, warnings) =
            Granted::configure(&component.manifest, spec).map_err(|reason| {
                LoadError::Manifest {
                    system: spec.name.clone(),
                    reason,
                }
            })?;
        let limits = spec.limits;
        let info = ConnectorInfo {
            name: spec.name.clone(),
            path: component.path,
            sha256: component.sha256,
            manifest: component.manifest,
            imports: component.imports,
            reachable: granted.http.origins.iter().map(|o| o.to_string()).collect(),
            allow_loopback: granted.http.allow_loopback,
            allow_private: granted.http.allow_private,
            secrets: granted.settings.secret_names(),
            memory_limit: limits.memory,
            timeout_ms: limits.timeout.as_millis() as u64,
            concurrency: limits.concurrency,
            max_output: limits.max_output,
            warnings,
        };
        Ok(Connector {
            runner,
            granted,
            permits: Semaphore::new(limits.concurrency as usize),
            info,
        })
    }

    /// The integrator's name for the system.
    pub fn name(&self) -> &str {
        &self.info.name
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.info.manifest
    }

    /// Everything known about the connector.
    pub fn info(&self) -> &ConnectorInfo {
        &self.info
    }

    /// Mismatches between what the connector asks for and what it was granted.
    pub fn warnings(&self) -> &[String] {
        &self.info.warnings
    }

    /// Whether the manifest offers an operation.
    pub fn offers(&self, op: Operation) -> bool {
        self.info.manifest.offers(op)
    }

    /// Run one operation under the connector's concurrency limit.
    async fn call<R>(
        &self,
        op: impl AsyncFnOnce(
            &mut Store<PluginState>,
            &Bindings,
        ) -> wasmtime::Result<Result<R, v0_1::WitConnectorError>>,
    ) -> Result<R, CallError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| CallError::Host("the connector is shutting down".into()))?;
        self.runner.run(&self.granted, op).await
    }

    /// Find the subject's records.
    pub async fn locate(&self, subject: &Subject) -> Result<Vec<Located>, CallError> {
        let subject = subject.into();
        let found = self
            .call(async |store, p| {
                p.oubli_connector_connector()
                    .call_locate(store, &subject)
                    .await
            })
            .await?;
        self.runner
            .capped(found.into_iter().map(Into::into).collect())
    }

    /// Read records' personal data.
    pub async fn export(&self, refs: &[RecordRef]) -> Result<Vec<Exported>, CallError> {
        let refs: Vec<_> = refs.iter().map(Into::into).collect();
        let exported = self
            .call(async |store, p| {
                p.oubli_connector_connector()
                    .call_export(store, &refs)
                    .await
            })
            .await?;
        self.runner
            .capped(exported.into_iter().map(Into::into).collect())
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
        let reference = reference.into();
        let bytes = self
            .call(async |store, p| {
                p.oubli_connector_connector()
                    .call_read_attachment(store, &reference, name, offset, max_len)
                    .await
            })
            .await?;
        if bytes.len() > max_len as usize {
            return Err(CallError::Protocol(format!(
                "read-attachment returned {} bytes for max-len {max_len}",
                bytes.len()
            )));
        }
        self.runner.capped(bytes)
    }

    /// Correct fields of one record.
    pub async fn rectify(
        &self,
        reference: &RecordRef,
        changes: &[Change],
    ) -> Result<Outcome, CallError> {
        let reference = reference.into();
        let changes: Vec<_> = changes.iter().map(Into::into).collect();
        let outcome = self
            .call(async |store, p| {
                p.oubli_connector_connector()
                    .call_rectify(store, &reference, &changes)
                    .await
            })
            .await?;
        self.runner.capped(outcome.into())
    }

    /// Delete or anonymise records.
    pub async fn erase(
        &self,
        refs: &[RecordRef],
        mode: EraseMode,
    ) -> Result<Vec<Outcome>, CallError> {
        let refs: Vec<_> = refs.iter().map(Into::into).collect();
        let outcomes = self
            .call(async |store, p| {
                p.oubli_connector_connector()
                    .call_erase(store, &refs, mode.into())
                    .await
            })
            .await?;
        self.runner
            .capped(outcomes.into_iter().map(Into::into).collect())
    }

    /// Restrict processing (or lift the restriction).
    pub async fn restrict(
        &self,
        subject: &Subject,
        scope: &[String],
        on: bool,
    ) -> Result<Vec<Outcome>, CallError> {
        let subject = subject.into();
        let outcomes = self
            .call(async |store, p| {
                p.oubli_connector_connector()
                    .call_restrict(store, &subject, scope, on)
                    .await
            })
            .await?;
        self.runner
            .capped(outcomes.into_iter().map(Into::into).collect())
    }

    /// Follow an asynchronous job.
    pub async fn poll(&self, ticket: &str) -> Result<Vec<Outcome>, CallError> {
        let outcomes = self
            .call(async |store, p| p.oubli_connector_connector().call_poll(store, ticket).await)
            .await?;
        self.runner
            .capped(outcomes.into_iter().map(Into::into).collect())
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
    e.map_message(|m| sanitize(&m, MAX_ERROR_MESSAGE))
}

/// Approximate size in bytes of a value returned by a connector, to enforce
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
