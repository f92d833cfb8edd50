//! What every contract version's module is made of, written once: its
//! bindings and linking ([`contract_version`]), its `host` interface
//! dispatching to the capability units, and the conversions the versions
//! share. Each version's module ([`crate::v0_1`], [`crate::v0_2`]) adds
//! what differs; [`crate::contract`] dispatches calls to them. Kept apart
//! from the dispatch so that dependencies run one way: contract ->
//! versions' modules -> these macros.

/// A contract version's module: its bindings (generated from `$wit`, the
/// directory of its WIT), linking its interfaces, its `host` interface
/// dispatching to the capability units, and the conversions both versions
/// share. The version's module adds what differs: its `operation` and
/// `retention_of` functions, `Located` and `ConnectorError` conversions.
macro_rules! contract_version {
    ($wit:literal $(, $extra:item)*) => {
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

        crate::versions::host_interface!($($extra)*);
        crate::versions::shared_conversions!();
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
                let retention = retention_of(&m);
                model::Manifest {
                    retention,
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
/// invoked where `host` and `wit` name the version's modules, with the
/// functions only later versions have (0.2's cache) given as items.
macro_rules! host_interface {
    ($($extra:item)*) => {
        impl host::Host for crate::capability::PluginState {
            $($extra)*

            fn log(&mut self, level: host::Level, message: String) {
                use crate::capability::log::Level;
                let level = match level {
                    host::Level::Trace => Level::Trace,
                    host::Level::Debug => Level::Debug,
                    host::Level::Info => Level::Info,
                    host::Level::Warn => Level::Warn,
                    host::Level::Error => Level::Error,
                };
                if let Some(line) = self.log.log(level, &message)
                    && let Some(tap) = &self.outbound.oversight.tap
                {
                    tap.log(&line);
                }
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
