//! `oubli-test-support`: the light half of what oubli's test suites share
//! (the heavy half, `oubli-testing`, builds every plugin and brings the
//! stand-ins). Crypto's and the store's tests use this one alone, so they
//! build neither plugins nor an HTTP stack:
//!
//! - [`repo_root`]: the repository, for files tests read.
//! - [`decrypt_py`]: runs the independent reader, `docs/decrypt.py`.
//! - `store_urls` (feature `store`): fresh stores on SQLite and PostgreSQL.
//! - [`unique`]: a string unique to the run.

#![warn(missing_docs)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("host/test-support sits two levels below the root")
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
#[cfg(feature = "store")]
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

#[cfg(feature = "store")]
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
