//! What the tests against real servers (`cyrus.rs`, `rt.rs`) share: finding
//! the server CI started, and loading a connector that logs in to it with
//! HTTP Basic.

use oubli_core::config::Config;
use oubli_core::identifiers::normalise;
use oubli_model::Subject;
use oubli_runtime::{Connector, Runtime, RuntimeOptions};
use std::path::Path;

/// The URL in `$var`, or `None` (the test skips) when it is unset; with
/// `$require` set, a missing server fails instead (CI sets both).
pub fn server(var: &str, require: &str, started_by: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os(require).is_some() => {
            panic!("{require} is set but {var} names no server")
        }
        _ => {
            eprintln!("skipped: no server (set {var}; see {started_by})");
            None
        }
    }
}

/// The connector `wasm`, configured as system `server` granted `origin`,
/// with `config` (TOML lines) and HTTP Basic credentials. The config and
/// the credential files stay in the returned directory: rewrite one and
/// [`load`] again to try other credentials.
pub async fn connector(
    wasm: &str,
    origin: &str,
    config: &str,
    user: &str,
    password: &str,
) -> (tempfile::TempDir, Connector) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("user"), user).unwrap();
    std::fs::write(dir.path().join("password"), password).unwrap();
    let toml = format!(
        "[systems.server]\nconnector = {wasm:?}\nallow_hosts = [{origin:?}]\nallow_loopback = true\n\n\
         [systems.server.config]\nauth = \"basic\"\n{config}\n\
         [systems.server.secrets]\nusername = {{ file = \"user\" }}\npassword = {{ file = \"password\" }}\n"
    );
    std::fs::write(dir.path().join("oubli.toml"), toml).unwrap();
    let c = load(dir.path()).await;
    (dir, c)
}

/// Load the connector configured in `dir` (see [`connector`]).
pub async fn load(dir: &Path) -> Connector {
    let config = Config::load(&dir.join("oubli.toml")).unwrap();
    let runtime = Runtime::new(&RuntimeOptions {
        cache_dir: None,
        no_cache: true,
    })
    .unwrap();
    runtime.load(&config.systems[0].spec).await.unwrap()
}

/// A subject known by one email address.
pub fn subject(email: &str) -> Subject {
    normalise(&[email.to_string()], &[], &[], &[], None).unwrap()
}
