//! The harness the end-to-end tests share: a temporary directory with an
//! `oubli.toml` naming the people-directory stand-in as system `directory`
//! (its token in a file), a keyring, and the `oubli` binary run against them.

use oubli_store::Store;
use oubli_testing::people_directory::{self, Directory};
use oubli_testing::plugins as built_plugins;
use std::path::PathBuf;
use std::process::Output;
use std::sync::Arc;
use tokio::process::Command;

pub struct Site {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    /// The store's URL (a SQLite file in `dir`, or a PostgreSQL database).
    pub db: String,
    /// Whether commands are given `--db` (else they find the store next to
    /// the config).
    db_flag: bool,
    log: &'static str,
    pub people: Arc<Directory>,
}

impl Site {
    /// A site whose commands all get `--db` (a PostgreSQL URL, or the SQLite
    /// file in the directory), logging at `info`; `extra` is appended to the
    /// config after the `[policy]` defaults (more policy, or other tables).
    pub async fn new(db: Option<String>, extra: &str) -> Site {
        Site::make(db, extra, true, "info").await
    }

    /// A site whose commands find the store next to the config, as an
    /// operator's would, logging at `debug`; `policy` is more `[policy]`.
    pub async fn local(policy: &str) -> Site {
        Site::make(None, policy, false, "debug").await
    }

    /// A site on the four vendors' stand-ins (the demo's systems, people
    /// and complete register of processing), the directory stand-in idle;
    /// `extra` is appended to the config.
    pub async fn sandboxed(extra: &str) -> (Site, oubli_sandbox::Sandbox) {
        let sandbox = oubli_sandbox::Sandbox::start(oubli_sandbox::Options {
            people: 20,
            gdpr_step: std::time::Duration::from_millis(30),
            ..oubli_sandbox::Options::default()
        })
        .await
        .unwrap();
        let site = Site::make_with(None, true, "info", |dir| {
            sandbox.write_secrets(&dir.join("secrets")).unwrap();
            let plugins = std::path::Path::new(built_plugins::GENESYS_CLOUD)
                .parent()
                .unwrap();
            let register = oubli_sandbox::write_register(dir).unwrap();
            sandbox.config_toml(plugins, &dir.join("secrets"))
                + &register
                + "\n[policy]\npoll_interval = \"30ms\"\nbackoff = \"50ms\"\nmax_backoff = \"200ms\"\n"
                + extra
        })
        .await;
        (site, sandbox)
    }

    async fn make(db: Option<String>, extra: &str, db_flag: bool, log: &'static str) -> Site {
        Site::make_with(db, db_flag, log, |dir| {
            std::fs::write(dir.join("token"), "dir-token\n").unwrap();
            String::new() + extra
        })
        .await
    }

    async fn make_with(
        db: Option<String>,
        db_flag: bool,
        log: &'static str,
        write: impl FnOnce(&std::path::Path) -> String,
    ) -> Site {
        let (addr, people) = people_directory::serve().await;
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("oubli.toml");
        let body = write(dir.path());
        let directory = !dir.path().join("register.toml").exists();
        let extra = body.as_str();
        std::fs::write(
            &config,
            if !directory { body.clone() } else { format!(
                "[identifiers]\ndefault_region = \"FR\"\n\n\
                 [systems.directory]\nconnector = {:?}\nallow_hosts = [\"http://{addr}\"]\nallow_loopback = true\n\
                 config = {{ base_url = \"http://{addr}/api\" }}\nsecrets = {{ token = {{ file = \"token\" }} }}\n\n\
                 [policy]\nbackoff = \"50ms\"\nmax_backoff = \"200ms\"\n{extra}\n",
                built_plugins::EXAMPLE_REST,
            ) },
        )
        .unwrap();
        let db = db.unwrap_or_else(|| dir.path().join("oubli.db").display().to_string());
        let site = Site {
            dir,
            config,
            db,
            db_flag,
            log,
            people,
        };
        let keys = site.dir.path().join("oubli-keys");
        let out = site
            .raw(&["keys", "init", "--dir", keys.to_str().unwrap()])
            .await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        site
    }

    /// `oubli ARGS --config … [--db …]`, killed if dropped.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_oubli"));
        c.args(args).arg("--config").arg(&self.config);
        if self.db_flag {
            c.arg("--db").arg(&self.db);
        }
        c.env("XDG_CACHE_HOME", self.dir.path().join("cache"))
            .env("OUBLI_LOG", self.log)
            .env("WEBHOOK_SECRET", "whsec-test")
            .env_remove("OUBLI_CONFIG")
            .env_remove("OUBLI_DB")
            .kill_on_drop(true);
        c
    }

    /// `oubli ARGS`, with nothing added (`keys init`).
    pub async fn raw(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_oubli"))
            .args(args)
            .env("XDG_CACHE_HOME", self.dir.path().join("cache"))
            .env_remove("OUBLI_CONFIG")
            .output()
            .await
            .unwrap()
    }

    pub async fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().await.unwrap()
    }

    /// `oubli ARGS --json`, which must succeed, parsed.
    pub async fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.run(&all).await;
        assert!(
            out.status.success(),
            "{args:?}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// A token of `role` for `name`, made by the CLI.
    pub async fn token(&self, role: &str, name: &str) -> String {
        let out = self
            .run(&[
                "token", "create", "--role", role, "--name", name, "--as", "admin",
            ])
            .await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout).trim().to_string()
    }

    /// The SQLite file of a site made with [`Site::local`].
    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("oubli.db")
    }

    /// The store, opened directly (to tamper with it, or look underneath).
    pub async fn store(&self) -> Store {
        Store::open(&self.db).await.unwrap()
    }
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Wait (up to a minute) until `ok` holds, checking every 25 ms: for a
/// state another process reaches, never for a time.
pub async fn wait_for(what: &str, mut ok: impl AsyncFnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !ok().await {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}
