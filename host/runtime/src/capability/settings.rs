//! `host.config` and `host.secret`: the values the integrator set for a
//! system, the values the host provides to every connector (keys under
//! [`HOST_PREFIX`], such as `oubli.region`), and the secrets both asked for
//! by the manifest and granted by the integrator. Secrets are resolved once
//! at load from their sources (environment or file), never put in the
//! connector's environment, and never shown (`Debug` redacts them).

use super::Capability;
use crate::{ConnectorSpec, Secret};
use oubli_model::Manifest;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Prefix of the keys the host provides; integrators cannot set them.
pub const HOST_PREFIX: &str = "oubli.";

/// The settings capability.
pub struct Settings;

/// What a loaded connector reads.
pub struct Shared {
    values: BTreeMap<String, String>,
    secrets: BTreeMap<String, Secret>,
}

/// One call's view (shared, read-only).
pub type CallSettings = Arc<Shared>;

impl Settings {
    /// The values alone, no secrets: what `manifest()` may read.
    pub(crate) fn without_secrets(spec: &ConnectorSpec) -> Shared {
        Shared {
            values: merged(spec),
            secrets: BTreeMap::new(),
        }
    }
}

fn merged(spec: &ConnectorSpec) -> BTreeMap<String, String> {
    let mut values = spec.settings.clone();
    values.extend(spec.host_settings.clone());
    values
}

impl Capability for Settings {
    type Shared = Shared;
    type Call = CallSettings;

    fn configure(
        manifest: &Manifest,
        spec: &ConnectorSpec,
        warnings: &mut Vec<String>,
    ) -> Result<Shared, String> {
        for key in manifest.config_keys.iter().filter(|k| k.required) {
            if !spec.settings.contains_key(&key.name) {
                return Err(format!(
                    "required configuration key `{}` is not set ({})",
                    key.name, key.description
                ));
            }
        }
        for key in spec.settings.keys() {
            if !manifest.config_keys.iter().any(|k| &k.name == key) {
                warnings.push(format!(
                    "configuration key `{key}` is not one the connector reads"
                ));
            }
        }
        let mut secrets = BTreeMap::new();
        for (key, source) in &spec.secrets {
            if !manifest.secrets.contains(key) {
                warnings.push(format!(
                    "secret `{key}` is granted but not asked for; it is withheld"
                ));
                continue;
            }
            let value = source
                .resolve()
                .map_err(|why| format!("secret `{key}`: {why}"))?;
            secrets.insert(key.clone(), value);
        }
        for key in &manifest.secrets {
            if !spec.secrets.contains_key(key) {
                warnings.push(format!(
                    "the connector asks for secret `{key}`, which is not granted"
                ));
            }
        }
        Ok(Shared {
            values: merged(spec),
            secrets,
        })
    }

    fn prepare(_: &Arc<str>, shared: &Arc<Shared>) -> CallSettings {
        shared.clone()
    }
}

impl Shared {
    /// `host.config(key)`.
    pub fn value(&self, key: &str) -> Option<String> {
        self.values.get(key).cloned()
    }

    /// `host.secret(key)`.
    pub fn secret(&self, key: &str) -> Option<String> {
        self.secrets.get(key).map(|s| s.expose().to_string())
    }

    /// The values of the secrets, to mask them in what the connector says.
    pub(crate) fn secret_values(&self) -> impl Iterator<Item = &str> {
        self.secrets.values().map(Secret::expose)
    }

    /// The names of the secrets the connector receives.
    pub fn secret_names(&self) -> Vec<String> {
        self.secrets.keys().cloned().collect()
    }
}
