//! The restriction registry, answered in memory: "may we call (email,
//! profile) this person?" is asked before every dialer call, so it never
//! calls a connector and never waits on the database. The index maps blind
//! indexes to the active restrictions; it is loaded from the store at start
//! and refreshed after every change this process makes (and by
//! [`RestrictionIndex::refresh`], which a long-running process calls
//! periodically to see other processes' changes).

use oubli_crypto::blind::{BlindIndex, INDEX_LEN};
use oubli_store::restrictions::{self, Restriction};
use oubli_store::{Store, StoreError};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::RwLock;

#[derive(Debug, Clone)]
struct Entry {
    scope: String,
    request_id: String,
    created_at: i64,
}

/// Active restrictions by blind index.
#[derive(Debug, Default)]
pub struct RestrictionIndex {
    map: RwLock<HashMap<[u8; INDEX_LEN], Vec<Entry>>>,
}

/// The answer to a check.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct CheckAnswer {
    /// Whether processing in the asked scope is allowed.
    pub allowed: bool,
    /// The restrictions that apply.
    pub restrictions: Vec<Applied>,
}

/// One restriction that applies.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Applied {
    /// Its scope (`all`, a category, a purpose).
    pub scope: String,
    /// The request that set it.
    pub request_id: String,
    /// Since when (ms since the epoch).
    pub since: i64,
}

impl RestrictionIndex {
    /// Load every active restriction.
    pub async fn load(store: &Store) -> Result<RestrictionIndex, StoreError> {
        let index = RestrictionIndex::default();
        index.refresh(store).await?;
        Ok(index)
    }

    /// Reload from the store.
    pub async fn refresh(&self, store: &Store) -> Result<(), StoreError> {
        let all = restrictions::active(store.pool()).await?;
        let map = build(all)?;
        *self.map.write().expect("restriction index") = map;
        Ok(())
    }

    /// How many identifiers are restricted.
    pub fn len(&self) -> usize {
        self.map.read().expect("restriction index").len()
    }

    /// Whether nothing is restricted.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether processing for `scope` (`all` asks about any processing) is
    /// allowed for a person with these blind indexes: not if a restriction
    /// of `all` or of exactly `scope` applies.
    pub fn check(&self, indexes: &[BlindIndex], scope: &str) -> CheckAnswer {
        let map = self.map.read().expect("restriction index");
        let mut applied = Vec::new();
        for ix in indexes {
            if let Some(entries) = map.get(&ix.0) {
                for e in entries {
                    if e.scope == "all" || scope == "all" || e.scope == scope {
                        applied.push(Applied {
                            scope: e.scope.clone(),
                            request_id: e.request_id.clone(),
                            since: e.created_at,
                        });
                    }
                }
            }
        }
        CheckAnswer {
            allowed: applied.is_empty(),
            restrictions: applied,
        }
    }
}

fn build(all: Vec<Restriction>) -> Result<HashMap<[u8; INDEX_LEN], Vec<Entry>>, StoreError> {
    let mut map: HashMap<[u8; INDEX_LEN], Vec<Entry>> = HashMap::with_capacity(all.len());
    for r in all {
        let bytes = hex::decode(&r.hash).map_err(|_| StoreError::Corrupt("restriction"))?;
        let key: [u8; INDEX_LEN] = bytes
            .try_into()
            .map_err(|_| StoreError::Corrupt("restriction"))?;
        map.entry(key).or_default().push(Entry {
            scope: r.scope,
            request_id: r.request_id,
            created_at: r.created_at,
        });
    }
    Ok(map)
}
