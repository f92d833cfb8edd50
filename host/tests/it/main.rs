//! Integration tests of the host: one test binary (one link of wasmtime),
//! one module per area.

mod cli;
mod connectors;
mod crypto;
mod runtime;
