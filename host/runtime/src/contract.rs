//! The contract versions side by side: which one a component was built
//! against (from the interface it exports), and one call per operation that
//! dispatches to that version's bindings and answers in the host's model.
//! The rest of the runtime calls [`Bindings`] and never sees a generated
//! type; a new version is a module beside [`v0_1`] and [`v0_2`] and one arm
//! in each match here.

use crate::capability::PluginState;
use crate::{v0_1, v0_2};
use oubli_model as model;
use wasmtime::Store;
use wasmtime::component::InstancePre;

/// What a call answers: a trap or host failure (outer), or the connector's
/// own answer (inner).
pub(crate) type Answer<T> = wasmtime::Result<Result<T, model::ConnectorError>>;

/// The contract a component exports, ready to instantiate.
#[derive(Clone)]
pub(crate) enum Pre {
    /// `oubli:connector@0.1.x`.
    V0_1(v0_1::PluginPre<PluginState>),
    /// `oubli:connector@0.2.x`.
    V0_2(v0_2::PluginPre<PluginState>),
}

/// One instance's exports, of whichever version.
pub(crate) enum Bindings {
    V0_1(v0_1::Plugin),
    V0_2(v0_2::Plugin),
}

impl Pre {
    /// Which contract `exports` (the component's export names) implement,
    /// and its typed entry points; `Err` says why it is not a connector.
    pub(crate) fn new(
        instance_pre: InstancePre<PluginState>,
        exports: &[String],
    ) -> Result<Pre, String> {
        let version = exports
            .iter()
            .find_map(|e| e.strip_prefix("oubli:connector/connector@"))
            .ok_or_else(|| "it exports no `oubli:connector/connector` interface".to_string())?;
        if version.starts_with("0.2.") {
            v0_2::PluginPre::new(instance_pre)
                .map(Pre::V0_2)
                .map_err(|e| format!("{e:#}"))
        } else if version.starts_with("0.1.") {
            v0_1::PluginPre::new(instance_pre)
                .map(Pre::V0_1)
                .map_err(|e| format!("{e:#}"))
        } else {
            Err(format!(
                "it exports contract version {version}; this host serves {}",
                crate::SUPPORTED_WIT.join(", ")
            ))
        }
    }

    /// The contract version the component exports (`0.2.0`).
    pub(crate) fn version(&self) -> &'static str {
        match self {
            Pre::V0_1(_) => v0_1::VERSION,
            Pre::V0_2(_) => v0_2::VERSION,
        }
    }

    /// A fresh instance.
    pub(crate) async fn instantiate_async(
        &self,
        store: &mut Store<PluginState>,
    ) -> wasmtime::Result<Bindings> {
        Ok(match self {
            Pre::V0_1(p) => Bindings::V0_1(p.instantiate_async(store).await?),
            Pre::V0_2(p) => Bindings::V0_2(p.instantiate_async(store).await?),
        })
    }
}

/// The same expression for each version's bindings (`$p` bound to them):
/// what differs between versions is in their own modules' conversions.
macro_rules! each_version {
    ($bindings:expr, $p:ident => $body:expr) => {
        match $bindings {
            Bindings::V0_1($p) => $body,
            Bindings::V0_2($p) => $body,
        }
    };
}

/// Each operation, in the model. Arguments are converted before the call
/// and results after it, by each version's own conversions.
impl Bindings {
    pub(crate) async fn manifest(&self, store: &mut Store<PluginState>) -> Answer<model::Manifest> {
        Ok(Ok(each_version!(self, p => p
            .oubli_connector_connector()
            .call_manifest(store)
            .await?
            .into())))
    }

    pub(crate) async fn locate(
        &self,
        store: &mut Store<PluginState>,
        subject: &model::Subject,
    ) -> Answer<Vec<model::Located>> {
        Ok(each_version!(self, p => p
            .oubli_connector_connector()
            .call_locate(store, &subject.into())
            .await?
            .map(|v| v.into_iter().map(Into::into).collect())
            .map_err(Into::into)))
    }

    pub(crate) async fn export(
        &self,
        store: &mut Store<PluginState>,
        refs: &[model::RecordRef],
    ) -> Answer<Vec<model::Exported>> {
        Ok(each_version!(self, p => {
            let refs: Vec<_> = refs.iter().map(Into::into).collect();
            p.oubli_connector_connector()
                .call_export(store, &refs)
                .await?
                .map(|v| v.into_iter().map(Into::into).collect())
                .map_err(Into::into)
        }))
    }

    pub(crate) async fn read_attachment(
        &self,
        store: &mut Store<PluginState>,
        reference: &model::RecordRef,
        name: &str,
        offset: u64,
        max_len: u32,
    ) -> Answer<Vec<u8>> {
        Ok(each_version!(self, p => p
            .oubli_connector_connector()
            .call_read_attachment(store, &reference.into(), name, offset, max_len)
            .await?
            .map_err(Into::into)))
    }

    pub(crate) async fn rectify(
        &self,
        store: &mut Store<PluginState>,
        reference: &model::RecordRef,
        changes: &[model::Change],
    ) -> Answer<model::Outcome> {
        Ok(each_version!(self, p => {
            let changes: Vec<_> = changes.iter().map(Into::into).collect();
            p.oubli_connector_connector()
                .call_rectify(store, &reference.into(), &changes)
                .await?
                .map(Into::into)
                .map_err(Into::into)
        }))
    }

    pub(crate) async fn erase(
        &self,
        store: &mut Store<PluginState>,
        refs: &[model::RecordRef],
        mode: model::EraseMode,
    ) -> Answer<Vec<model::Outcome>> {
        Ok(each_version!(self, p => {
            let refs: Vec<_> = refs.iter().map(Into::into).collect();
            p.oubli_connector_connector()
                .call_erase(store, &refs, mode.into())
                .await?
                .map(|v| v.into_iter().map(Into::into).collect())
                .map_err(Into::into)
        }))
    }

    pub(crate) async fn detach(
        &self,
        store: &mut Store<PluginState>,
        subject: &model::Subject,
        refs: &[model::RecordRef],
    ) -> Answer<Vec<model::Outcome>> {
        Ok(match self {
            Bindings::V0_1(_) => Err(model::ConnectorError::NotSupported(
                "built against contract 0.1, which has no `detach`".into(),
            )),
            Bindings::V0_2(p) => {
                let refs: Vec<_> = refs.iter().map(Into::into).collect();
                p.oubli_connector_connector()
                    .call_detach(store, &subject.into(), &refs)
                    .await?
                    .map(|v| v.into_iter().map(Into::into).collect())
                    .map_err(Into::into)
            }
        })
    }

    pub(crate) async fn restrict(
        &self,
        store: &mut Store<PluginState>,
        subject: &model::Subject,
        scope: &[String],
        on: bool,
    ) -> Answer<Vec<model::Outcome>> {
        Ok(each_version!(self, p => p
            .oubli_connector_connector()
            .call_restrict(store, &subject.into(), scope, on)
            .await?
            .map(|v| v.into_iter().map(Into::into).collect())
            .map_err(Into::into)))
    }

    pub(crate) async fn poll(
        &self,
        store: &mut Store<PluginState>,
        ticket: &str,
    ) -> Answer<Vec<model::Outcome>> {
        Ok(each_version!(self, p => p
            .oubli_connector_connector()
            .call_poll(store, ticket)
            .await?
            .map(|v| v.into_iter().map(Into::into).collect())
            .map_err(Into::into)))
    }
}

/// A contract version's module: its bindings (generated from `$wit`, the
/// directory of its WIT), linking its interfaces, its `host` interface
/// dispatching to the capability units, and the conversions both versions
/// share. The version's module adds what differs: its `operation`
/// function, `Located` and `ConnectorError` conversions.
macro_rules! contract_version {
    ($wit:literal) => {
        pub(crate) mod bindings {
            wasmtime::component::bindgen!({
                path: $wit,
                world: "oubli:connector/plugin",
                exports: { default: async },
                with: {
                    "wasi:http": wasmtime_wasi_http::p2::bindings::http,
                    "wasi:io": wasmtime_wasi::p2::bindings::io,
                },
                require_store_data_send: true,
            });
        }

        use bindings::oubli::connector::{host, types as wit};

        pub(crate) use bindings::{Plugin, PluginPre};

        /// Link the contract's own interfaces (`types`, `host`).
        pub(crate) fn add_to_linker(
            linker: &mut wasmtime::component::Linker<crate::capability::PluginState>,
        ) -> wasmtime::Result<()> {
            use crate::capability::PluginState;
            host::add_to_linker::<_, wasmtime::component::HasSelf<PluginState>>(linker, |s| s)?;
            wit::add_to_linker::<_, wasmtime::component::HasSelf<PluginState>>(linker, |s| s)?;
            Ok(())
        }

        impl wit::Host for crate::capability::PluginState {}

        crate::contract::host_interface!();
        crate::contract::shared_conversions!();
    };
}

/// The conversions both versions share, written once for each version's
/// generated types: invoked where `wit` names the version's `types` module
/// and `model` the host's model. What differs between versions (located
/// records, errors, operations: the `operation` function) each module
/// writes itself.
macro_rules! shared_conversions {
    () => {
        impl From<&model::Subject> for wit::Subject {
            fn from(s: &model::Subject) -> Self {
                wit::Subject {
                    emails: s.emails.clone(),
                    phones: s.phones.clone(),
                    names: s.names.clone(),
                    external_ids: s
                        .external_ids
                        .iter()
                        .map(|x| wit::ExternalId {
                            namespace: x.namespace.clone(),
                            id: x.id.clone(),
                        })
                        .collect(),
                }
            }
        }

        impl From<&model::RecordRef> for wit::RecordRef {
            fn from(r: &model::RecordRef) -> Self {
                wit::RecordRef {
                    kind: r.kind.clone(),
                    id: r.id.clone(),
                }
            }
        }

        impl From<&model::Change> for wit::Change {
            fn from(c: &model::Change) -> Self {
                wit::Change {
                    field: c.field.clone(),
                    new_value: c.new_value.clone(),
                }
            }
        }

        impl From<model::EraseMode> for wit::EraseMode {
            fn from(m: model::EraseMode) -> Self {
                match m {
                    model::EraseMode::Delete => wit::EraseMode::Delete,
                    model::EraseMode::Anonymise => wit::EraseMode::Anonymise,
                }
            }
        }

        impl From<wit::RecordRef> for model::RecordRef {
            fn from(r: wit::RecordRef) -> Self {
                model::RecordRef {
                    kind: r.kind,
                    id: r.id,
                }
            }
        }

        impl From<wit::Exported> for model::Exported {
            fn from(e: wit::Exported) -> Self {
                model::Exported {
                    reference: e.reference.into(),
                    fields: e
                        .fields
                        .into_iter()
                        .map(|f| model::Field {
                            name: f.name,
                            category: f.category,
                            value: f.value,
                        })
                        .collect(),
                    attachments: e
                        .attachments
                        .into_iter()
                        .map(|a| model::Attachment {
                            name: a.name,
                            media_type: a.media_type,
                            size: a.size,
                        })
                        .collect(),
                }
            }
        }

        impl From<wit::Outcome> for model::Outcome {
            fn from(o: wit::Outcome) -> Self {
                model::Outcome {
                    reference: o.reference.into(),
                    status: match o.status {
                        wit::Status::Done => model::Status::Done,
                        wit::Status::Retained(r) => model::Status::Retained(r),
                        wit::Status::NotFound => model::Status::NotFound,
                        wit::Status::Pending(t) => model::Status::Pending(t),
                    },
                }
            }
        }

        impl From<wit::PluginManifest> for model::Manifest {
            fn from(m: wit::PluginManifest) -> Self {
                model::Manifest {
                    id: m.id,
                    name: m.name,
                    version: m.version,
                    wit_version: m.wit_version,
                    system_kind: match m.system_kind {
                        wit::SystemKind::Acd => model::SystemKind::Acd,
                        wit::SystemKind::Dialer => model::SystemKind::Dialer,
                        wit::SystemKind::Email => model::SystemKind::Email,
                        wit::SystemKind::Ticketing => model::SystemKind::Ticketing,
                        wit::SystemKind::Crm => model::SystemKind::Crm,
                        wit::SystemKind::Recording => model::SystemKind::Recording,
                        wit::SystemKind::Other => model::SystemKind::Other,
                    },
                    operations: m.operations.into_iter().map(operation).collect(),
                    categories: m
                        .categories
                        .into_iter()
                        .map(|c| model::DataCategory {
                            name: c.name,
                            description: c.description,
                            purposes: c.purposes,
                            retention: c.retention,
                            recipients: c.recipients,
                            portable: c.portable,
                        })
                        .collect(),
                    outbound_hosts: m.outbound_hosts,
                    config_keys: m
                        .config_keys
                        .into_iter()
                        .map(|k| model::ConfigKey {
                            name: k.name,
                            description: k.description,
                            required: k.required,
                        })
                        .collect(),
                    secrets: m.secrets,
                }
            }
        }
    };
}

/// The `host` interface of a version: each function dispatches to the
/// capability units. Written once for every version's generated trait:
/// invoked where `host` and `wit` name the version's modules.
macro_rules! host_interface {
    () => {
        impl host::Host for crate::capability::PluginState {
            fn log(&mut self, level: host::Level, message: String) {
                use crate::capability::log::Level;
                let level = match level {
                    host::Level::Trace => Level::Trace,
                    host::Level::Debug => Level::Debug,
                    host::Level::Info => Level::Info,
                    host::Level::Warn => Level::Warn,
                    host::Level::Error => Level::Error,
                };
                self.log.log(level, &message);
            }

            fn config(&mut self, key: String) -> Option<String> {
                self.settings.value(&key)
            }

            fn secret(&mut self, key: String) -> Option<String> {
                self.settings.secret(&key)
            }

            fn now(&mut self) -> wit::Timestamp {
                crate::capability::clock::now()
            }
        }
    };
}

pub(crate) use {contract_version, host_interface, shared_conversions};
