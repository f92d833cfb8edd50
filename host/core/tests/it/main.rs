//! oubli-core's integration tests, one binary (as wasmtime's are): the
//! reference connectors against their stand-ins, the request engine and
//! every request kind on SQLite and PostgreSQL, and the connectors against
//! the real Cyrus and Request Tracker servers CI starts.

mod connectors;
mod cyrus;
mod engine;
mod kinds;
mod live_kit;
mod real_server;
mod rt;
