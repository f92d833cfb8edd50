//! API token rows recently read from the store, by id: `serve` checks a
//! token on every call without a query each time.

use oubli_model::evidence::TokenInfo;
use std::collections::HashMap;
use std::sync::Mutex;

/// How long a token row read from the store is believed, in ms of the
/// engine's clock (a revocation by another process takes this long).
const CACHE_FOR_MS: i64 = 1_000;

/// Token rows recently read, by id.
#[derive(Debug, Default)]
pub(crate) struct TokenCache {
    rows: Mutex<HashMap<String, (TokenInfo, i64)>>,
}

impl TokenCache {
    pub(crate) fn get(&self, id: &str, now: i64) -> Option<TokenInfo> {
        let rows = self.rows.lock().unwrap_or_else(|e| e.into_inner());
        rows.get(id)
            .filter(|(_, at)| (0..CACHE_FOR_MS).contains(&(now - at)))
            .map(|(r, _)| r.clone())
    }

    pub(crate) fn put(&self, row: TokenInfo, now: i64) {
        let mut rows = self.rows.lock().unwrap_or_else(|e| e.into_inner());
        if rows.len() > 10_000 {
            rows.retain(|_, (_, at)| (0..CACHE_FOR_MS).contains(&(now - *at)));
        }
        rows.insert(row.id.clone(), (row, now));
    }

    pub(crate) fn forget(&self, id: &str) {
        self.rows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }
}
