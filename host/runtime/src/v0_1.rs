//! Contract version 0.1 (`oubli:connector@0.1.x`): the generated bindings,
//! their conversion to and from the host's model ([`oubli_model`]), and the
//! `host` interface, whose functions dispatch to the capability units.
//!
//! Nothing outside this module sees a generated type. A contract 0.2 gets a
//! module of its own beside this one, converting to the same model, so both
//! versions can be served side by side.

use crate::capability::{PluginState, clock, log};
use oubli_model as model;

/// The contract version this module serves (semver-compatible patches too).
pub const VERSION: &str = "0.1.0";

pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
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

/// The contract's error type, as generated.
pub(crate) type WitConnectorError = wit::ConnectorError;

/// Link the contract's own interfaces (`types`, `host`).
pub(crate) fn add_to_linker(
    linker: &mut wasmtime::component::Linker<PluginState>,
) -> wasmtime::Result<()> {
    host::add_to_linker::<_, wasmtime::component::HasSelf<PluginState>>(linker, |s| s)?;
    wit::add_to_linker::<_, wasmtime::component::HasSelf<PluginState>>(linker, |s| s)?;
    Ok(())
}

impl wit::Host for PluginState {}

impl host::Host for PluginState {
    fn log(&mut self, level: host::Level, message: String) {
        let level = match level {
            host::Level::Trace => log::Level::Trace,
            host::Level::Debug => log::Level::Debug,
            host::Level::Info => log::Level::Info,
            host::Level::Warn => log::Level::Warn,
            host::Level::Error => log::Level::Error,
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
        clock::now()
    }
}

// Host model -> contract (arguments).

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

// Contract -> host model (results).

impl From<wit::RecordRef> for model::RecordRef {
    fn from(r: wit::RecordRef) -> Self {
        model::RecordRef {
            kind: r.kind,
            id: r.id,
        }
    }
}

impl From<wit::Located> for model::Located {
    fn from(l: wit::Located) -> Self {
        model::Located {
            reference: l.reference.into(),
            summary: l.summary,
            created_at: l.created_at,
            hold: l.hold,
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

impl From<wit::ConnectorError> for model::ConnectorError {
    fn from(e: wit::ConnectorError) -> Self {
        match e {
            wit::ConnectorError::Unavailable(m) => model::ConnectorError::Unavailable(m),
            wit::ConnectorError::RateLimited(s) => model::ConnectorError::RateLimited(s),
            wit::ConnectorError::Denied(m) => model::ConnectorError::Denied(m),
            wit::ConnectorError::NotSupported(m) => model::ConnectorError::NotSupported(m),
            wit::ConnectorError::Invalid(m) => model::ConnectorError::Invalid(m),
            wit::ConnectorError::Internal(m) => model::ConnectorError::Internal(m),
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
            operations: m
                .operations
                .into_iter()
                .map(|o| match o {
                    wit::Operation::Locate => model::Operation::Locate,
                    wit::Operation::Export => model::Operation::Export,
                    wit::Operation::ReadAttachment => model::Operation::ReadAttachment,
                    wit::Operation::Rectify => model::Operation::Rectify,
                    wit::Operation::Erase => model::Operation::Erase,
                    wit::Operation::Restrict => model::Operation::Restrict,
                    wit::Operation::Poll => model::Operation::Poll,
                })
                .collect(),
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
