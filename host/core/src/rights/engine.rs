//! The engine: the one context every use case runs in (the configured
//! systems, the store with its clock, the vault, the restriction registry,
//! the token cache). Opening it opens all of them. What operators do to
//! requests is in [`super::operator`], what workers do in [`super::worker`],
//! evidence in [`super::audit`], [`super::certificate`] and
//! [`super::consent`], access in [`super::tokens`], the outbox in
//! [`super::webhooks`] and [`super::recipients`]: each adds methods to
//! [`Engine`], and none of them is imported here.

use super::Systems;
pub use super::deadline::{add_months, date, parse_timestamp};
use super::policy::Policy;
pub use super::request::{
    Action, Attestation, Correction, Counts, ErrorKind, Intake, NewRequest, Params, PlanItem,
    RequestError, SystemPlan, SystemResult,
};
use super::restriction::RestrictionIndex;
pub use super::views::{
    AnswerView, ErrorView, EventView, PlanningView, RequestDetail, RequestView, SystemView,
    TaskView,
};
use oubli_crypto::keyring::Keyring;
use oubli_store::Store;
use oubli_store::keys::Vault;
use std::sync::Arc;

/// How [`Engine::open`] opens the service.
#[derive(Default)]
pub struct OpenOptions {
    /// The store URL, instead of the config's.
    pub db: Option<String>,
    /// The keyring's passphrase, if its private key is encrypted.
    pub passphrase: Option<zeroize::Zeroizing<String>>,
    /// Load the systems' connectors (to plan and carry out requests).
    pub connectors: bool,
    /// Never use the compiled-code cache.
    pub no_cache: bool,
    /// Where time comes from (the wall clock when `None`).
    pub clock: Option<oubli_model::SharedClock>,
}

/// The rights service with its store: files requests and carries out
/// operators' decisions. Cheap to share (`Arc`).
pub struct Engine {
    pub(crate) systems: Systems,
    pub(crate) store: Store,
    pub(crate) vault: Vault,
    pub(crate) restrictions: RestrictionIndex,
    pub(crate) tokens: super::token_cache::TokenCache,
    /// Scheduled retention policies already warned about (once a process).
    pub(crate) retention_warned: std::sync::Mutex<std::collections::BTreeSet<String>>,
}

impl Engine {
    /// Open everything a configuration names: the store (migrated), the
    /// keyring, and (with `connectors`) the systems' connectors.
    pub async fn open(
        config: crate::config::Config,
        options: &OpenOptions,
    ) -> Result<Engine, RequestError> {
        let url = options
            .db
            .clone()
            .unwrap_or_else(|| config.store_url.clone());
        let dir = config.keys_dir.clone();
        if !dir.join("keyring.json").exists() {
            return Err(RequestError::NoKeyring {
                dir: dir.display().to_string(),
            });
        }
        let pass = options.passphrase.as_deref().map(String::as_str);
        let keyring = Keyring::open(&dir, pass).map_err(|source| RequestError::Keyring {
            dir: dir.display().to_string(),
            source,
        })?;
        let mut store = Store::open(&url).await?;
        if let Some(clock) = &options.clock {
            store = store.with_clock(clock.clone());
        }
        let systems = if options.connectors {
            Systems::open(
                config,
                super::Options {
                    no_cache: options.no_cache,
                    ..Default::default()
                },
            )
            .await?
        } else {
            Systems::without_connectors(config)
        };
        Engine::new(systems, store, Arc::new(keyring)).await
    }

    /// The rights service on the store at `url` (opened and migrated),
    /// sealing with `keyring`.
    pub async fn at(
        systems: Systems,
        url: &str,
        keyring: Arc<Keyring>,
    ) -> Result<Engine, RequestError> {
        Engine::new(systems, Store::open(url).await?, keyring).await
    }

    /// Close the store's connections (a command that is done with it).
    pub async fn close(&self) {
        self.store.close().await;
    }

    /// The rights service on `store`, sealing with `keyring`.
    pub async fn new(
        systems: Systems,
        store: Store,
        keyring: Arc<Keyring>,
    ) -> Result<Engine, RequestError> {
        let vault = Vault::new(store.clone(), keyring);
        let retention = &systems.config().retention;
        for (system, budget) in &retention.budgets {
            if let Some(c) = systems.registry().get(system) {
                c.set_meter(Arc::new(super::budget::StoreMeter {
                    store: store.clone(),
                    budget: *budget,
                    sweep_share: retention.sweep_share,
                }));
            }
        }
        let restrictions = RestrictionIndex::load(&store).await?;
        Ok(Engine {
            systems,
            store,
            vault,
            restrictions,
            tokens: Default::default(),
            retention_warned: Default::default(),
        })
    }

    /// The configured systems and their connectors.
    pub fn systems(&self) -> &Systems {
        &self.systems
    }

    /// Milliseconds since the Unix epoch, by the engine's clock (its
    /// store's).
    pub fn now(&self) -> i64 {
        self.store.now()
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The vault sealing the store's personal data.
    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    /// The policy in force (a request uses its own snapshot).
    pub fn policy(&self) -> &Policy {
        &self.systems.config().policy
    }

    /// Whether the store answers.
    pub async fn ready(&self) -> Result<(), RequestError> {
        Ok(self.store.ping().await?)
    }

    /// Reload the restriction registry from the store (to see what other
    /// processes filed).
    pub async fn refresh_restrictions(&self) -> Result<(), RequestError> {
        Ok(self.restrictions.refresh(&self.store).await?)
    }

    /// The restriction registry.
    pub fn restrictions(&self) -> &RestrictionIndex {
        &self.restrictions
    }
}

/// Whether two operator names are the same person's: compared in Unicode
/// compatibility form and without case (`OP-1` is `op-1`, a full-width
/// `ｏｐ-1` too), so four eyes cannot be sidestepped by spelling.
pub(crate) fn same_actor(a: &str, b: &str) -> bool {
    actor_key(a) == actor_key(b)
}

/// An operator name in the form names are compared in (NFKC, lower case).
pub(crate) fn actor_key(name: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let folded: String = name.nfkc().flat_map(char::to_lowercase).collect();
    folded.nfkc().collect()
}

/// When a request was received: its intake's time, or `now`. A time in the
/// future, or more than a year past, is refused: the deadline runs from it.
pub(crate) fn received_at(
    intake: Option<&super::request::Intake>,
    now: i64,
) -> Result<i64, RequestError> {
    const YEAR_MS: i64 = 366 * 24 * 3_600_000;
    match intake.and_then(|i| i.received_at) {
        None => Ok(now),
        // A minute's grace for clocks that disagree.
        Some(t) if t > now + 60_000 => Err(RequestError::Invalid(
            "the time it was received is in the future".into(),
        )),
        Some(t) if t < now - YEAR_MS => Err(RequestError::Invalid(
            "the time it was received is more than a year ago: file it with the time it reaches you now, and say why in a note".into(),
        )),
        Some(t) => Ok(t.min(now)),
    }
}

pub(crate) fn valid_actor(actor: &str) -> Result<(), RequestError> {
    let ok = !actor.is_empty()
        && actor.len() <= 64
        && actor
            .chars()
            .all(|c| c.is_alphanumeric() || "-_.@:".contains(c));
    if ok {
        Ok(())
    } else {
        Err(RequestError::Invalid(
            "an operator name is 1 to 64 letters, digits or - _ . @ :".into(),
        ))
    }
}
