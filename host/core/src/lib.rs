//! `oubli-core`: GDPR data-subject rights across contact-center systems,
//! through sandboxed WebAssembly connectors.
//!
//! The core holds what the product decides: the configuration an
//! integrator writes ([`config`]), the controller's register of processing
//! ([`register`]), how identifiers are read ([`identifiers`]), and the use
//! cases ([`rights`]: the configured [`rights::Systems`] and the
//! [`rights::engine::Engine`] every face calls: the `oubli` CLI, the HTTP
//! API, workers). It knows no transport: its errors name values ("the 2nd
//! phone number"), never command-line flags or HTTP fields, and its results
//! are typed reports the faces render.
//!
//! Below it: `oubli-model` (the domain values), `oubli-crypto` (encryption
//! and keys), `oubli-store` (the durable store) and `oubli-runtime` (the
//! connector sandbox); it re-exports none of them. Dependencies point one
//! way: faces → core → store, runtime, crypto → model.

#![warn(missing_docs)]

pub mod config;
pub mod conformance;
pub mod identifiers;
pub mod keys;
pub mod lang;
pub mod mail;
pub mod markup;
pub mod register;
pub mod retention;
pub mod rights;
