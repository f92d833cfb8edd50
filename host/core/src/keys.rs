//! Key housekeeping on a store: how many data keys it holds and under which
//! KEK, and rewrapping them under the active KEK after a rotation. What
//! `oubli keys list --db` and `oubli keys rotate --db` call.

use crate::rights::engine::RequestError;
use oubli_crypto::keyring::Keyring;
use oubli_store::Store;
use oubli_store::keys::Vault;
use std::sync::Arc;

/// The data keys a store holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct StoreKeys {
    /// Requests with data keys.
    pub requests_with_keys: i64,
    /// Data keys not under the active KEK (a rotation to finish).
    pub keys_to_rewrap: i64,
    /// Requests crypto-shredded.
    pub shredded: i64,
}

async fn with_vault<T>(
    url: &str,
    keyring: Keyring,
    f: impl AsyncFnOnce(&Vault) -> Result<T, RequestError>,
) -> Result<T, RequestError> {
    let store = Store::open(url).await?;
    let vault = Vault::new(store.clone(), Arc::new(keyring));
    let out = f(&vault).await;
    store.close().await;
    out
}

async fn stats(vault: &Vault) -> Result<StoreKeys, RequestError> {
    let s = vault.stats().await?;
    Ok(StoreKeys {
        requests_with_keys: s.requests_with_keys,
        keys_to_rewrap: s.keys_to_rewrap,
        shredded: s.shredded,
    })
}

/// The data keys in the store at `url`, as `keyring` sees them.
pub async fn store_keys(url: &str, keyring: Keyring) -> Result<StoreKeys, RequestError> {
    with_vault(url, keyring, async |v| stats(v).await).await
}

/// Rewrap every data key in the store at `url` under `keyring`'s active
/// KEK (payloads are never re-encrypted): how many were rewrapped, and
/// what is left.
pub async fn rewrap_store(url: &str, keyring: Keyring) -> Result<(usize, StoreKeys), RequestError> {
    with_vault(url, keyring, async |v| {
        let n = v.rewrap().await?;
        Ok((n, stats(v).await?))
    })
    .await
}
