//! `oubli-plugin`: the SDK for oubli connector plugins.
//!
//! A connector is a WebAssembly component built for `wasm32-wasip2` that
//! implements the `oubli:connector/connector` interface of the WIT contract
//! (see `wit/connector.wit`, the API reference). This crate gives it:
//!
//! - the generated bindings ([`bindings`]) and short names for the contract's
//!   types ([`Subject`], [`RecordRef`], [`Located`], [`Outcome`], ...);
//! - a small JSON-over-HTTP client on `wasi:http` ([`http::Client`]) that maps
//!   HTTP statuses to [`ConnectorError`] (401/403 to `denied`, 429 with
//!   `Retry-After` to `rate-limited`, 5xx to `unavailable`);
//! - builders for results ([`Outcome::done`], [`Located::new`], ...);
//! - the host's capabilities: [`config`], [`secret`], [`now`] and [`log`];
//! - the host's region for reading national phone numbers ([`region`]).
//!
//! A connector's `lib.rs` then reads as talk about its system:
//!
//! ```ignore
//! use oubli_plugin::{http::Client, prelude::*};
//!
//! struct Crm;
//!
//! impl Connector for Crm {
//!     fn manifest() -> Manifest { /* ... */ }
//!     fn locate(subject: Subject) -> Result<Vec<Located>, ConnectorError> {
//!         let api = Client::new(&require_config("base_url")?)?.bearer(&require_secret("token")?);
//!         // ... one search per identifier ...
//!     }
//!     // ...
//! }
//!
//! oubli_plugin::export!(Crm);
//! ```
//!
//! Each call runs in a fresh instance: statics do not survive between calls.

#![warn(missing_docs)]

/// Bindings generated from the WIT contract.
#[allow(missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "oubli:connector/plugin",
        generate_all,
        pub_export_macro: true,
        export_macro_name: "export_connector",
        default_bindings_module: "oubli_plugin::bindings",
    });
}

pub mod http;
pub mod region;
pub mod text;
mod types;

mod connector;

pub use bindings::oubli::connector::host::Level;
pub use bindings::oubli::connector::types::{
    Attachment, Change, ConfigKey, ConnectorError, DataCategory, Dated, Deletion, EraseMode,
    Exported, ExternalId, Field, Located, ManualTask, Operation, Outcome,
    PluginManifest as Manifest, RecordRef, RetentionFacts, Role, Status, Subject, SweepKey,
    SweepQuery, SystemKind, Timestamp,
};
pub use connector::{Connector, Export};

/// The version of the WIT contract this SDK was built from; put it in
/// [`Manifest::wit_version`].
pub const WIT_VERSION: &str = "0.2.0";

/// Everything a connector usually needs, in one `use`.
pub mod prelude {
    pub use crate::{
        Attachment, Change, ConfigKey, Connector, ConnectorError, DataCategory, Dated, Deletion,
        EraseMode, Exported, ExternalId, Field, Located, Manifest, ManualTask, Operation, Outcome,
        RecordRef, RetentionFacts, Role, Status, Subject, SweepKey, SweepQuery, SystemKind,
        Timestamp, WIT_VERSION, config, log, now, require_config, require_secret, secret,
    };
}

/// Export a type implementing [`Connector`] as the component's connector.
///
/// ```ignore
/// struct MyConnector;
/// impl oubli_plugin::Connector for MyConnector { /* ... */ }
/// oubli_plugin::export!(MyConnector);
/// ```
#[macro_export]
macro_rules! export {
    ($ty:ty) => {
        const _: () = {
            type __OubliConnector = $crate::Export<$ty>;
            $crate::bindings::export_connector!(__OubliConnector);
        };
    };
}

/// A configuration value from the integrator's `oubli.toml`, or `None`.
pub fn config(key: &str) -> Option<String> {
    bindings::oubli::connector::host::config(key)
}

/// A configuration value that must be set; its absence is an `invalid` error
/// naming the key.
pub fn require_config(key: &str) -> Result<String, ConnectorError> {
    config(key)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ConnectorError::Invalid(format!("configuration key `{key}` is not set")))
}

/// A secret granted by the integrator, or `None`. Never log it.
pub fn secret(key: &str) -> Option<String> {
    bindings::oubli::connector::host::secret(key)
}

/// A secret that must be granted; its absence is a `denied` error naming the
/// key (not the value).
pub fn require_secret(key: &str) -> Result<String, ConnectorError> {
    secret(key)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ConnectorError::Denied(format!("secret `{key}` is not granted")))
}

/// The current time, in milliseconds since the Unix epoch.
pub fn now() -> Timestamp {
    bindings::oubli::connector::host::now()
}

/// A small memory the host keeps for this system's connector between
/// calls (every call runs in a fresh instance): an access token, so that
/// each call does not fetch a new one. In the host's memory only, never
/// on disk, never shared with another system, emptied when the host
/// reloads its configuration. Keys up to 256 bytes, values up to 16 KiB,
/// kept at most a day; a value may be gone before its time (evicted), so
/// always be ready to fetch it again.
pub mod cache {
    /// The value kept under `key`, if it is still there.
    pub fn get(key: &str) -> Option<Vec<u8>> {
        crate::bindings::oubli::connector::host::cache_get(key)
    }

    /// Keep `value` under `key` for `ttl_seconds` (0 forgets it).
    pub fn set(key: &str, value: &[u8], ttl_seconds: u32) {
        crate::bindings::oubli::connector::host::cache_set(key, value, ttl_seconds)
    }
}

/// Logging through the host, tagged with the plugin's id. Messages longer than
/// 1 KiB are cut. Never log personal data, record contents or secrets.
pub mod log {
    use crate::bindings::oubli::connector::host::{Level, log};

    /// Log at debug level.
    pub fn debug(message: &str) {
        log(Level::Debug, message)
    }
    /// Log at info level.
    pub fn info(message: &str) {
        log(Level::Info, message)
    }
    /// Log at warn level.
    pub fn warn(message: &str) {
        log(Level::Warn, message)
    }
    /// Log at error level.
    pub fn error(message: &str) {
        log(Level::Error, message)
    }
}
