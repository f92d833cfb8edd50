//! oubli: GDPR data-subject rights across contact-center systems, through
//! sandboxed WebAssembly connector plugins.
//!
//! The host runs the rights (access, rectification, erasure, restriction,
//! portability, objection, consent); connector plugins, written by vendors
//! against the WIT contract in `wit/`, do only the system-specific I/O. This
//! crate is the host's library; the `oubli` binary is a thin CLI on top.
//!
//! Modules:
//! - [`config`]: `oubli.toml`, parsed strictly.
//! - [`runtime`]: loading plugins and running their operations in a sandbox.
//! - [`crypto`]: envelopes, chunked file encryption, keyring, blind indexes.
//! - [`rights`]: the rights across systems (so far: locate everywhere).
//! - [`subject`]: identifier normalisation (E.164 phones, emails).

#![warn(missing_docs)]

pub mod config;
pub mod crypto;
pub mod rights;
pub mod runtime;
pub mod subject;

/// Paths of the plugin components built with this crate (by `build.rs`), for
/// tests, benches and the examples. Not part of the public API.
#[doc(hidden)]
pub mod built_plugins {
    include!(concat!(env!("OUT_DIR"), "/built_plugins.rs"));
}
