//! A loaded connector and its operations, each in a fresh instance (the
//! chunks of one attachment share one: [`AttachmentReader`]).

use crate::capability::mask::Mask;
use crate::capability::outbound_http::{Lane, Meter, Oversight, Tap};
use crate::capability::{Granted, PluginState, sanitize};
use crate::contract::{Answer, Bindings, Pre};
use crate::{CallError, ConnectorSpec, Limits, LoadError, SUPPORTED_WIT};
use oubli_model::{
    Change, ComponentInfo, ConnectorError, Dated, EraseMode, Exported, Located, Manifest,
    Operation, Outcome, RecordRef, Status, Subject, SweepKey, SweepQuery,
};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::Semaphore;
use wasmtime::{Engine, Store, Trap};

/// Longest error message kept from a connector, in bytes.
const MAX_ERROR_MESSAGE: usize = 512;
/// Longest `not-supported` message (a 0.1 connector's manual instructions).
const MAX_INSTRUCTIONS: usize = 16 * 1024;
/// Most steps kept of a manual task.
const MAX_STEPS: usize = 1000;
/// Longest step of a manual task, in bytes.
const MAX_STEP: usize = 4096;

/// A connector ready to run operations.
pub struct Connector {
    runner: Runner,
    granted: Granted,
    /// Masks the connector's secrets in whatever it says, on every call.
    secrets_mask: Arc<Mask>,
    permits: Semaphore,
    /// The budget its outbound requests draw from, if the host set one.
    meter: std::sync::OnceLock<Arc<dyn Meter>>,
    /// The conformance kit's tap, if it set one.
    tap: std::sync::OnceLock<Arc<dyn Tap>>,
    info: ConnectorInfo,
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

/// A connector instance kept between calls ([`AttachmentReader`]).
pub(crate) struct Live {
    store: Store<PluginState>,
    instance: Option<Bindings>,
}

/// Runs one operation in a fresh instance under a connector's limits.
pub(crate) struct Runner {
    pub(crate) engine: Engine,
    /// Keeps the epoch advancing while this connector can run a call.
    pub(crate) _ticker: Arc<crate::Ticker>,
    pub(crate) pre: Pre,
    pub(crate) limits: Limits,
    pub(crate) name: Arc<str>,
}

impl Runner {
    /// Call `manifest()` with what a connector gets before its manifest is
    /// known, and check the contract version it declares.
    pub(crate) async fn manifest(&self, spec: &ConnectorSpec) -> Result<Manifest, LoadError> {
        let granted = Granted::before_manifest(spec);
        let manifest = self
            .run(&granted, None, async |store, plugin| {
                plugin.manifest(store).await
            })
            .await
            .map_err(|source| LoadError::ManifestCall {
                system: spec.name.clone(),
                source,
            })?;
        let manifest: Manifest =
            self.capped(manifest)
                .map_err(|source| LoadError::ManifestCall {
                    system: spec.name.clone(),
                    source,
                })?;
        let exported = self.pre.version();
        if wit_supported(&manifest.wit_version)
            && major_minor(&manifest.wit_version) != major_minor(exported)
        {
            return Err(LoadError::Manifest {
                system: spec.name.clone(),
                reason: format!(
                    "its manifest says contract version {:?}, but it implements {exported}",
                    manifest.wit_version
                ),
            });
        }
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
        mask: Option<&Arc<Mask>>,
        op: impl AsyncFnOnce(&mut Store<PluginState>, &Bindings) -> Answer<R>,
    ) -> Result<R, CallError> {
        self.run_in(&mut None, granted, mask, Oversight::default(), op)
            .await
    }

    /// Run one operation in `live`'s instance, made first if there is none,
    /// under the connector's limits: the call deadline and the output cap
    /// apply to each call, the memory limit to the instance. Any failure
    /// drops the instance, so the next call starts from a fresh one.
    pub(crate) async fn run_in<R>(
        &self,
        live: &mut Option<Live>,
        granted: &Granted,
        mask: Option<&Arc<Mask>>,
        oversight: Oversight,
        op: impl AsyncFnOnce(&mut Store<PluginState>, &Bindings) -> Answer<R>,
    ) -> Result<R, CallError> {
        let Live { store, instance } = live.get_or_insert_with(|| {
            let mut store = Store::new(&self.engine, PluginState::new(granted, mask.cloned()));
            store.limiter(|s| &mut s.limiter);
            store.epoch_deadline_trap();
            Live {
                store,
                instance: None,
            }
        });
        store.data_mut().outbound.oversight = oversight;
        // What the connector may copy into the host in one go, its result
        // included: refused while copying, before the host holds it.
        store.set_hostcall_fuel(usize::try_from(self.limits.max_output).unwrap_or(usize::MAX));
        let ticks = self
            .limits
            .timeout
            .as_millis()
            .div_ceil(crate::EPOCH_TICK.as_millis()) as u64
            + 1;
        store.set_epoch_deadline(ticks);

        let pre = &self.pre;
        let outcome = tokio::time::timeout(self.limits.timeout, async {
            let bindings = match instance.take() {
                Some(b) => b,
                None => pre.instantiate_async(&mut *store).await?,
            };
            let result = op(store, &bindings).await;
            *instance = Some(bindings);
            result
        })
        .await;
        let memory_hit = store.data().limiter.hit;
        let result = match outcome {
            Err(_elapsed) => Err(CallError::Timeout(self.limits.timeout)),
            Ok(Err(e)) => Err(self.classify(e, memory_hit)),
            Ok(Ok(Err(connector_error))) => Err(CallError::Connector(tidy(
                connector_error,
                mask.map(|m| &**m),
            ))),
            Ok(Ok(Ok(value))) => Ok(value),
        };
        if result.is_err() {
            *live = None;
        }
        result
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
            None if error.chain().any(|e| {
                e.to_string()
                    .contains("fuel allocated for hostcalls has been exhausted")
            }) =>
            {
                CallError::OutputTooLarge {
                    size: None,
                    limit: self.limits.max_output,
                }
            }
            None if error.chain().any(|e| {
                matches!(
                    e.downcast_ref::<wasmtime::component::ResourceTableError>(),
                    Some(wasmtime::component::ResourceTableError::Full)
                )
            }) =>
            {
                CallError::ResourceLimit(format!(
                    "more than {} host resources (HTTP requests, headers, bodies, streams) at once",
                    crate::capability::MAX_RESOURCES
                ))
            }
            None if error.chain().any(|e| {
                matches!(
                    e.downcast_ref::<wasmtime_wasi_http::FieldMapError>(),
                    Some(
                        wasmtime_wasi_http::FieldMapError::TotalSizeTooBig
                            | wasmtime_wasi_http::FieldMapError::TooManyFields
                    )
                )
            }) =>
            {
                CallError::ResourceLimit(format!(
                    "header fields larger than {} bytes",
                    crate::capability::MAX_FIELDS_BYTES
                ))
            }
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
                size: Some(size),
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
        let secrets_mask = Arc::new(Mask::default().with_secrets(granted.settings.secret_values()));
        Ok(Connector {
            runner,
            secrets_mask,
            granted,
            permits: Semaphore::new(limits.concurrency as usize),
            meter: std::sync::OnceLock::new(),
            tap: std::sync::OnceLock::new(),
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

    /// The operations on `subject`'s records, with the subject's
    /// identifiers masked in whatever the connector logs or answers in an
    /// error. `locate` and `restrict` take the subject and mask by
    /// themselves; the rights service reaches the others through this.
    pub fn for_subject(&self, subject: &Subject) -> ForSubject<'_> {
        ForSubject {
            connector: self,
            mask: self.mask_for(subject),
        }
    }

    /// The subject's identifiers and the connector's secrets.
    fn mask_for(&self, subject: &Subject) -> Arc<Mask> {
        Arc::new(Mask::new(subject).with_secrets(self.granted.settings.secret_values()))
    }

    /// Run one operation under the connector's concurrency limit, masking
    /// the subject's identifiers in what the connector says.
    async fn call<R>(
        &self,
        operation: &'static str,
        mask: Option<&Arc<Mask>>,
        op: impl AsyncFnOnce(&mut Store<PluginState>, &Bindings) -> Answer<R>,
    ) -> Result<R, CallError> {
        let lane = if operation == "sweep" {
            Lane::Sweep
        } else {
            Lane::Request
        };
        self.call_in(&mut None, operation, mask, lane, op).await
    }

    /// [`Connector::call`] in `live`'s instance (see [`Runner::run_in`]).
    async fn call_in<R>(
        &self,
        live: &mut Option<Live>,
        operation: &'static str,
        mask: Option<&Arc<Mask>>,
        lane: Lane,
        op: impl AsyncFnOnce(&mut Store<PluginState>, &Bindings) -> Answer<R>,
    ) -> Result<R, CallError> {
        let meter = self.meter.get().map(|m| (m.clone(), lane));
        let tap = self.tap.get().cloned();
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| CallError::Host("the connector is shutting down".into()))?;
        let mask = mask.unwrap_or(&self.secrets_mask);
        let started = std::time::Instant::now();
        let span = tracing::info_span!("connector", system = self.name(), operation);
        let result = {
            use tracing::Instrument;
            self.runner
                .run_in(
                    live,
                    &self.granted,
                    Some(mask),
                    Oversight { meter, tap },
                    op,
                )
                .instrument(span)
                .await
        };
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.kind(),
        };
        let took = started.elapsed();
        super::metrics::record(self.name(), operation, outcome, took);
        tracing::debug!(
            system = self.name(),
            operation,
            elapsed_ms = took.as_millis() as u64,
            outcome,
            "connector call"
        );
        result
    }

    /// Find the subject's records.
    pub async fn locate(&self, subject: &Subject) -> Result<Vec<Located>, CallError> {
        let mask = self.mask_for(subject);
        let found = self
            .call("locate", Some(&mask), async |store, p| {
                p.locate(store, subject).await
            })
            .await?;
        let found: Vec<Located> = self.runner.capped(found)?;
        Ok(found
            .into_iter()
            .map(|l| Located {
                summary: masked(&mask, l.summary),
                hold: l.hold.map(|h| masked(&mask, h)),
                ..l
            })
            .collect())
    }

    /// Read records' personal data.
    pub async fn export(&self, refs: &[RecordRef]) -> Result<Vec<Exported>, CallError> {
        self.export_with(None, refs).await
    }

    async fn export_with(
        &self,
        mask: Option<&Arc<Mask>>,
        refs: &[RecordRef],
    ) -> Result<Vec<Exported>, CallError> {
        let exported = self
            .call("export", mask, async |store, p| p.export(store, refs).await)
            .await?;
        self.runner.capped(exported)
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
        self.read_attachment_with(None, reference, name, offset, max_len)
            .await
    }

    async fn read_attachment_with(
        &self,
        mask: Option<&Arc<Mask>>,
        reference: &RecordRef,
        name: &str,
        offset: u64,
        max_len: u32,
    ) -> Result<Vec<u8>, CallError> {
        self.read_in(&mut None, mask, reference, name, offset, max_len)
            .await
    }

    async fn read_in(
        &self,
        live: &mut Option<Live>,
        mask: Option<&Arc<Mask>>,
        reference: &RecordRef,
        name: &str,
        offset: u64,
        max_len: u32,
    ) -> Result<Vec<u8>, CallError> {
        let bytes = self
            .call_in(
                live,
                "read-attachment",
                mask,
                Lane::Request,
                async |store, p| {
                    p.read_attachment(store, reference, name, offset, max_len)
                        .await
                },
            )
            .await?;
        if bytes.len() > max_len as usize {
            *live = None;
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
        self.rectify_with(None, reference, changes).await
    }

    async fn rectify_with(
        &self,
        mask: Option<&Arc<Mask>>,
        reference: &RecordRef,
        changes: &[Change],
    ) -> Result<Outcome, CallError> {
        let outcome = self
            .call("rectify", mask, async |store, p| {
                p.rectify(store, reference, changes).await
            })
            .await?;
        self.runner.capped(outcome)
    }

    /// Delete or anonymise records.
    pub async fn erase(
        &self,
        refs: &[RecordRef],
        mode: EraseMode,
    ) -> Result<Vec<Outcome>, CallError> {
        self.erase_with(None, refs, mode).await
    }

    /// [`Connector::erase`] for a retention sweep: its outbound requests
    /// draw on the sweep's share of the system's budget.
    pub async fn erase_swept(
        &self,
        refs: &[RecordRef],
        mode: EraseMode,
    ) -> Result<Vec<Outcome>, CallError> {
        let outcomes = self
            .call_in(&mut None, "erase", None, Lane::Sweep, async |store, p| {
                p.erase(store, refs, mode).await
            })
            .await?;
        self.runner.capped(outcomes)
    }

    /// Show every outbound request to `tap`, which may answer in the
    /// system's place (set once, before use; the conformance kit only).
    pub fn set_tap(&self, tap: Arc<dyn Tap>) {
        let _ = self.tap.set(tap);
    }

    /// Draw every outbound request from `meter` (set once, before use).
    pub fn set_meter(&self, meter: Arc<dyn Meter>) {
        let _ = self.meter.set(meter);
    }

    async fn erase_with(
        &self,
        mask: Option<&Arc<Mask>>,
        refs: &[RecordRef],
        mode: EraseMode,
    ) -> Result<Vec<Outcome>, CallError> {
        let outcomes = self
            .call("erase", mask, async |store, p| {
                p.erase(store, refs, mode).await
            })
            .await?;
        self.runner.capped(outcomes)
    }

    /// Remove the subject from records shared with others (contract 0.2;
    /// a 0.1 connector answers `not-supported`).
    pub async fn detach(
        &self,
        subject: &Subject,
        refs: &[RecordRef],
    ) -> Result<Vec<Outcome>, CallError> {
        let mask = self.mask_for(subject);
        let outcomes = self
            .call("detach", Some(&mask), async |store, p| {
                p.detach(store, subject, refs).await
            })
            .await?;
        self.runner.capped(outcomes)
    }

    /// Page through records past a retention cutoff (contract 0.2; a 0.1
    /// connector answers `not-supported`). Read-only. A page longer than
    /// asked, out of order, or reaching back past `after` or the cutoff is
    /// the connector's fault (`internal`): the host would otherwise erase
    /// what it was not asked about.
    pub async fn sweep(&self, query: &SweepQuery) -> Result<Vec<Dated>, CallError> {
        let page = self
            .call("sweep", None, async |store, p| p.sweep(store, query).await)
            .await?;
        let page: Vec<Dated> = self.runner.capped(page)?;
        let mut last = query.after.clone();
        for d in &page {
            let key = SweepKey {
                at: d.at,
                id: d.reference.id.clone(),
            };
            let in_order = last.as_ref().is_none_or(|l| *l < key);
            if d.at >= query.cutoff || !in_order {
                return Err(CallError::Connector(ConnectorError::Internal(
                    "sweep answered a record out of order or not past the cutoff".into(),
                )));
            }
            last = Some(key);
        }
        let page: Vec<Dated> = page
            .into_iter()
            .map(|d| Dated {
                summary: masked(&self.secrets_mask, d.summary),
                hold: d.hold.map(|h| masked(&self.secrets_mask, h)),
                ..d
            })
            .collect();
        if page.len() > query.limit as usize {
            return Err(CallError::Connector(ConnectorError::Internal(format!(
                "sweep answered {} records where at most {} were asked",
                page.len(),
                query.limit
            ))));
        }
        Ok(page)
    }

    /// Restrict processing (or lift the restriction).
    pub async fn restrict(
        &self,
        subject: &Subject,
        scope: &[String],
        on: bool,
    ) -> Result<Vec<Outcome>, CallError> {
        let mask = self.mask_for(subject);
        let outcomes = self
            .call("restrict", Some(&mask), async |store, p| {
                p.restrict(store, subject, scope, on).await
            })
            .await?;
        self.runner.capped(outcomes)
    }

    /// Follow an asynchronous job.
    pub async fn poll(&self, ticket: &str) -> Result<Vec<Outcome>, CallError> {
        self.poll_with(None, ticket).await
    }

    async fn poll_with(
        &self,
        mask: Option<&Arc<Mask>>,
        ticket: &str,
    ) -> Result<Vec<Outcome>, CallError> {
        let outcomes = self
            .call("poll", mask, async |store, p| p.poll(store, ticket).await)
            .await?;
        self.runner.capped(outcomes)
    }
}

/// A connector's operations on one subject's records (see
/// [`Connector::for_subject`]).
pub struct ForSubject<'a> {
    connector: &'a Connector,
    mask: Arc<Mask>,
}

impl ForSubject<'_> {
    /// [`Connector::export`], masked.
    pub async fn export(&self, refs: &[RecordRef]) -> Result<Vec<Exported>, CallError> {
        self.connector.export_with(Some(&self.mask), refs).await
    }

    /// [`Connector::read_attachment`], masked.
    pub async fn read_attachment(
        &self,
        reference: &RecordRef,
        name: &str,
        offset: u64,
        max_len: u32,
    ) -> Result<Vec<u8>, CallError> {
        self.connector
            .read_attachment_with(Some(&self.mask), reference, name, offset, max_len)
            .await
    }

    /// A reader of one attachment: its `read-attachment` calls share one
    /// instance, so a connector can keep its download open from one chunk
    /// to the next (the SDK's `read_range` does) instead of fetching the
    /// attachment again for every chunk. Masked like the rest.
    pub fn attachment(&self, reference: &RecordRef, name: &str) -> AttachmentReader<'_> {
        AttachmentReader {
            connector: self.connector,
            mask: self.mask.clone(),
            reference: reference.clone(),
            name: name.to_string(),
            live: tokio::sync::Mutex::new(None),
        }
    }

    /// [`Connector::rectify`], masked.
    pub async fn rectify(
        &self,
        reference: &RecordRef,
        changes: &[Change],
    ) -> Result<Outcome, CallError> {
        self.connector
            .rectify_with(Some(&self.mask), reference, changes)
            .await
    }

    /// [`Connector::erase`], masked.
    pub async fn erase(
        &self,
        refs: &[RecordRef],
        mode: EraseMode,
    ) -> Result<Vec<Outcome>, CallError> {
        self.connector
            .erase_with(Some(&self.mask), refs, mode)
            .await
    }

    /// [`Connector::poll`], masked.
    pub async fn poll(&self, ticket: &str) -> Result<Vec<Outcome>, CallError> {
        self.connector.poll_with(Some(&self.mask), ticket).await
    }
}

/// One attachment read in chunks from one connector instance (see
/// [`ForSubject::attachment`]). Each call still runs under the connector's
/// call deadline, output cap and concurrency limit; a failed call drops the
/// instance, and the next starts afresh (a retry reads from a new instance,
/// as a single call always did).
pub struct AttachmentReader<'a> {
    connector: &'a Connector,
    mask: Arc<Mask>,
    reference: RecordRef,
    name: String,
    live: tokio::sync::Mutex<Option<Live>>,
}

impl AttachmentReader<'_> {
    /// Up to `max_len` bytes from `offset`; empty means the end.
    pub async fn read(&self, offset: u64, max_len: u32) -> Result<Vec<u8>, CallError> {
        let mut live = self.live.lock().await;
        self.connector
            .read_in(
                &mut live,
                Some(&self.mask),
                &self.reference,
                &self.name,
                offset,
                max_len,
            )
            .await
    }
}

/// `(major, minor)` of a version string.
fn major_minor(v: &str) -> Option<(u64, u64)> {
    let mut it = v.split('.');
    Some((
        it.next()?.parse::<u64>().ok()?,
        it.next()?.parse::<u64>().ok()?,
    ))
}

fn wit_supported(version: &str) -> bool {
    let Some(theirs) = major_minor(version) else {
        return false;
    };
    SUPPORTED_WIT
        .iter()
        .any(|ours| major_minor(ours) == Some(theirs))
}

/// `text` with the mask applied, reusing it when nothing was masked.
fn masked(mask: &Mask, text: String) -> String {
    match mask.apply(&text) {
        std::borrow::Cow::Borrowed(_) => text,
        std::borrow::Cow::Owned(m) => m,
    }
}

/// Keep connector error messages short, on one line, and without the
/// subject's identifiers.
///
/// What an operator must act on is bounded generously instead: a 0.1
/// `not-supported` message (its instructions) up to [`MAX_INSTRUCTIONS`],
/// and a 0.2 manual task up to [`MAX_STEPS`] steps of [`MAX_STEP`] bytes
/// each, a cut step ending in `…` and cut steps counted in a last one, so
/// nothing is ever cut silently.
fn tidy(e: ConnectorError, mask: Option<&Mask>) -> ConnectorError {
    let clean = |m: String, max: usize| match mask {
        Some(mask) => sanitize(&mask.apply(&sanitize(&m, 4 * max)), max),
        None => sanitize(&m, max),
    };
    match e {
        ConnectorError::NotSupported(m) => ConnectorError::NotSupported(clean(m, MAX_INSTRUCTIONS)),
        ConnectorError::Manual(task) => {
            let total = task.steps.len();
            let mut steps: Vec<String> = task
                .steps
                .into_iter()
                .take(MAX_STEPS)
                .map(|s| clean(s, MAX_STEP))
                .collect();
            if total > MAX_STEPS {
                steps.push(format!(
                    "({} more steps were given than the host keeps ({MAX_STEPS}): carry these out, \
                     mark them done, and the verifying search will name what is left)",
                    total - MAX_STEPS
                ));
            }
            let mut records = task.records;
            records.truncate(MAX_STEPS * 10);
            ConnectorError::Manual(oubli_model::ManualTask {
                summary: clean(task.summary, 2 * MAX_ERROR_MESSAGE),
                steps,
                records,
            })
        }
        other => other.map_message(|m| clean(m, MAX_ERROR_MESSAGE)),
    }
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
impl WireSize for Dated {
    fn wire_size(&self) -> u64 {
        self.reference.wire_size() + 8 + self.summary.wire_size() + self.hold.wire_size()
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
            + self
                .retention
                .iter()
                .map(|r| r.category.wire_size() + r.kind.wire_size() + r.triggers.wire_size() + 9)
                .sum::<u64>()
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
        assert!(wit_supported("0.2.0"));
        assert!(!wit_supported("0.3.0"));
        assert!(!wit_supported("1.0.0"));
        assert!(!wit_supported("banana"));
    }

    #[test]
    fn connector_messages_are_cut_to_one_short_line() {
        let e = tidy(
            ConnectorError::Internal(format!("line1\nline2{}", "x".repeat(2000))),
            None,
        );
        let ConnectorError::Internal(m) = e else {
            unreachable!()
        };
        assert!(!m.contains('\n'));
        assert!(m.len() <= MAX_ERROR_MESSAGE + 3);
    }
}
