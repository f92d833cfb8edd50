//! `oubli-core`: GDPR data-subject rights across contact-center systems,
//! through sandboxed WebAssembly connector connectors.
//!
//! The core holds what the product decides: the configuration an
//! integrator writes ([`config`]), how identifiers are read
//! ([`identifiers`]), and the rights service ([`rights::Systems`]) that every
//! face (the `oubli` CLI now, the HTTP API and workers next) calls. It knows
//! no transport: its errors name values ("the 2nd phone number"), never
//! command-line flags or HTTP fields, and its results are typed reports the
//! faces render.
//!
//! Below it, and re-exported for the faces: [`model`] (the domain values),
//! [`crypto`] (encryption and keys) and [`runtime`] (the connector sandbox).
//! Dependencies point one way: faces → core → runtime, crypto → model.

#![warn(missing_docs)]

pub mod config;
pub mod identifiers;
pub mod keys;
pub mod register;
pub mod rights;
