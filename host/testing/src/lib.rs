//! `oubli-testing`: what oubli's test suites share, so no helper is written
//! twice. Used only as a dev-dependency: never by the product.
//!
//! - [`plugins`]: paths of every plugin component built from `plugins/`
//!   (the reference connectors, `example-rest`, and the test plugins in
//!   `plugins/testing/`: `trivial`, `hostile`, `bad-import`).
//! - [`decrypt_py`], [`repo_root`], [`store_urls`], [`unique`]: from
//!   `oubli-test-support`, the light half crypto's and the store's tests use
//!   alone.
//! - [`people_directory`]: a stand-in of the REST API `example-rest` talks to.
//!
//! It depends on none of oubli's product crates (only the sandbox of
//! stand-ins), so any of them can use it without a dependency cycle.

#![warn(missing_docs)]

pub mod jmap;
pub mod proxy;

/// The stand-in of the REST API `example-rest` talks to (it lives in the
/// sandbox crate, which `oubli sandbox` serves).
pub use oubli_sandbox::directory as people_directory;

/// Paths of the built plugin components, by crate name in `plugins/`.
pub mod plugins {
    include!(concat!(env!("OUT_DIR"), "/plugins.rs"));
}

/// `example-rest` as built against contract 0.1.0 with that version's SDK
/// (at commit ef4b4d2, before 0.2.0), kept as a vendor would have shipped
/// it: the proof that 0.1.0 components keep loading and working.
pub const EXAMPLE_REST_V0_1: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/example-rest-0.1.0.wasm"
);

pub use oubli_test_support::{decrypt_py, repo_root, store_urls, unique};
