//! `oubli-testing`: what oubli's test suites share, so no helper is written
//! twice. Used only as a dev-dependency: never by the product.
//!
//! - [`plugins`]: paths of every plugin component built from `plugins/`
//!   (the reference connectors, `example-rest`, and the test plugins in
//!   `plugins/testing/`: `trivial`, `hostile`, `bad-import`).
//! - [`decrypt_py`]: runs the independent reader, `docs/decrypt.py`.
//! - [`repo_root`]: the repository, for files tests read (docs, examples).
//! - [`people_directory`]: a stand-in of the REST API `example-rest` talks to.
//!
//! It depends on none of oubli's own crates, so any of them can use it
//! without a dependency cycle.

#![warn(missing_docs)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub mod jmap;
pub mod people_directory;

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

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("host/testing sits two levels below the root")
        .to_path_buf()
}

/// Decrypt `input` into `output` with `docs/decrypt.py` (Python's
/// `cryptography` package; CI installs it) and the PEM private key `key`.
pub fn decrypt_py(key: &Path, input: &Path, output: &Path) -> Output {
    Command::new("python3")
        .arg(repo_root().join("docs/decrypt.py"))
        .arg("--key")
        .arg(key)
        .arg(input)
        .arg(output)
        .output()
        .expect("python3 runs (CI installs it with the `cryptography` package)")
}

/// Fresh, empty stores for a test: a SQLite file in `dir`, and, when
/// `OUBLI_TEST_PG` holds a PostgreSQL base URL (`postgres://user@host:port`,
/// as `.ci/postgres` prints), a new database on that server. With
/// `OUBLI_REQUIRE_PG=1` (CI), a missing server is a failure, not a skip.
pub async fn store_urls(dir: &Path) -> Vec<(&'static str, String)> {
    let mut urls = vec![("sqlite", dir.join("oubli.db").display().to_string())];
    match std::env::var("OUBLI_TEST_PG") {
        Ok(base) if !base.is_empty() => {
            sqlx::any::install_default_drivers();
            let mut name = [0u8; 8];
            getrandom::fill(&mut name).expect("random");
            let name = format!("oubli_test_{}", hex_lower(&name));
            let admin = sqlx::AnyPool::connect(&format!("{base}/postgres"))
                .await
                .expect("OUBLI_TEST_PG: cannot connect");
            sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
                .execute(&admin)
                .await
                .expect("create a test database");
            admin.close().await;
            urls.push(("postgres", format!("{base}/{name}")));
        }
        _ => {
            assert!(
                std::env::var("OUBLI_REQUIRE_PG").as_deref() != Ok("1"),
                "OUBLI_REQUIRE_PG=1 but OUBLI_TEST_PG is not set: start one with .ci/postgres"
            );
        }
    }
    urls
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A string unique to this run and call (for addresses).
pub fn unique() -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{nanos}x{}",
        N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    )
}
