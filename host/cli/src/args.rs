//! Arguments shared by several commands: where the engine's pieces are
//! (`--config`, `--db`), who acts (`--as`), whose identifiers
//! (`--email`, `--phone`, ...), and how identifier errors name their flag.

use anyhow::Result;
use clap::Args;
use oubli_core::config::Config;
use oubli_core::identifiers::{IdentifierError, Identifiers, Region};
use oubli_core::rights::engine::{Engine, OpenOptions};
use std::path::PathBuf;
use std::sync::Arc;

/// Where the engine's pieces are.
#[derive(Args, Clone)]
pub struct EngineArgs {
    /// The configuration file.
    #[arg(
        long,
        short,
        env = "OUBLI_CONFIG",
        default_value = "oubli.toml",
        global = true
    )]
    config: PathBuf,
    /// The store: a SQLite file or a postgres:// URL (default: `[store]
    /// url`, else oubli.db next to the config).
    #[arg(long, env = "OUBLI_DB", global = true)]
    db: Option<String>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Compile connectors in memory only.
    #[arg(long, global = true)]
    no_cache: bool,
}

/// Who is acting.
#[derive(Args, Clone)]
pub struct ActorArgs {
    /// The operator's name (default: $OUBLI_OPERATOR, else $USER).
    #[arg(long = "as", value_name = "NAME")]
    actor: Option<String>,
}

impl ActorArgs {
    /// The operator acting.
    pub fn name(&self) -> String {
        self.actor
            .clone()
            .or_else(|| std::env::var("OUBLI_OPERATOR").ok())
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "operator".into())
    }
}

/// The subject's identifiers (`locate` and every request kind).
#[derive(Args, Clone)]
pub struct SubjectArgs {
    /// An email address (repeatable).
    #[arg(long)]
    email: Vec<String>,
    /// A phone number, international (+33...) or national with a region
    /// (repeatable).
    #[arg(long)]
    phone: Vec<String>,
    /// A full name: a hint for systems that search by name, never enough
    /// alone (repeatable).
    #[arg(long)]
    name: Vec<String>,
    /// A system-specific id, `namespace:id` (repeatable).
    #[arg(long = "external-id")]
    external_id: Vec<String>,
    /// Region for national phone numbers (ISO 3166, e.g. FR); overrides
    /// `[identifiers] default_region`.
    #[arg(long, value_parser = parse_region)]
    pub region: Option<Region>,
}

impl SubjectArgs {
    /// The identifiers as given.
    pub fn identifiers(&self) -> Identifiers {
        Identifiers {
            emails: self.email.clone(),
            phones: self.phone.clone(),
            names: self.name.clone(),
            external_ids: self.external_id.clone(),
        }
    }
}

/// The keyring's passphrase, from `OUBLI_KEY_PASSPHRASE`.
pub fn passphrase() -> Option<zeroize::Zeroizing<String>> {
    std::env::var("OUBLI_KEY_PASSPHRASE")
        .ok()
        .filter(|p| !p.is_empty())
        .map(zeroize::Zeroizing::new)
}

impl EngineArgs {
    /// Whether `--json` was given.
    pub fn json(&self) -> bool {
        self.json
    }

    /// The configuration these arguments name.
    pub fn config(&self) -> Result<Config> {
        Ok(Config::load(&self.config)?)
    }

    /// The rights service on these arguments' configuration, with the
    /// systems' connectors, without the store.
    pub async fn systems(&self) -> Result<oubli_core::rights::Systems> {
        Ok(oubli_core::rights::Systems::open(
            self.config()?,
            oubli_core::rights::Options {
                no_cache: self.no_cache,
                ..Default::default()
            },
        )
        .await?)
    }

    /// Open the engine these arguments name (with the systems' connectors
    /// when `connectors`: to plan and carry out work).
    pub async fn open(&self, connectors: bool) -> Result<Arc<Engine>> {
        let config = Config::load(&self.config)?;
        Ok(Arc::new(
            Engine::open(
                config,
                &OpenOptions {
                    db: self.db.clone(),
                    passphrase: passphrase(),
                    connectors,
                    no_cache: self.no_cache,
                    ..OpenOptions::default()
                },
            )
            .await?,
        ))
    }
}

/// A region code (`FR`).
pub fn parse_region(s: &str) -> Result<Region, String> {
    s.parse().map_err(|e: IdentifierError| e.to_string())
}

/// The service's identifier error, with the flag that carried the value.
pub fn with_flag(e: IdentifierError) -> anyhow::Error {
    let flag = match &e {
        IdentifierError::NothingToSearch => "--email, --phone or --external-id",
        IdentifierError::Email(_) => "--email",
        IdentifierError::Phone(..) => "--phone",
        IdentifierError::ExternalId(_) => "--external-id",
        IdentifierError::Region(_) => "--region",
        _ => "the identifiers",
    };
    anyhow::anyhow!("{flag}: {e}")
}

/// A request error for the command line: identifier errors name the flag
/// that carried the value.
pub fn request_error(e: oubli_core::rights::engine::RequestError) -> anyhow::Error {
    match e {
        oubli_core::rights::engine::RequestError::Identifiers(e) => with_flag(e),
        other => other.into(),
    }
}
