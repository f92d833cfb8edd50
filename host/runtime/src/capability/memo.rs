//! `host.cache-get` and `host.cache-set` (contract 0.2): a small key/value
//! memory per loaded connector, so that a token fetched in one call serves
//! the next (every call runs in a fresh instance). In memory only, bounded
//! in size and time, never shared between systems (each loaded connector
//! has its own), emptied on reload (a reload loads connectors anew).
//! Values are wiped when they leave.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// Longest key, in bytes.
pub const MAX_KEY: usize = 256;
/// Largest value, in bytes.
pub const MAX_VALUE: usize = 16 << 10;
/// What one system may keep in all, keys and values, in bytes.
pub const MAX_TOTAL: usize = 256 << 10;
/// Longest a value is kept.
pub const MAX_TTL: Duration = Duration::from_secs(24 * 3600);

/// One connector's memory.
#[derive(Default)]
pub struct Memo {
    entries: Mutex<HashMap<String, Entry>>,
}

struct Entry {
    value: Zeroizing<Vec<u8>>,
    until: Instant,
}

impl Memo {
    /// The value under `key`, unless it expired.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.get_at(key, Instant::now())
    }

    /// Keep `value` under `key` for `ttl_seconds` (0 removes it). What is
    /// too large is not kept (and `get` then answers `None`, as after an
    /// eviction: the connector fetches anew).
    pub fn set(&self, key: String, value: Vec<u8>, ttl_seconds: u32) {
        self.set_at(key, value, ttl_seconds, Instant::now());
    }

    fn get_at(&self, key: &str, now: Instant) -> Option<Vec<u8>> {
        let mut entries = self.entries.lock().ok()?;
        match entries.get(key) {
            Some(e) if e.until > now => Some(e.value.to_vec()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    fn set_at(&self, key: String, value: Vec<u8>, ttl_seconds: u32, now: Instant) {
        let value = Zeroizing::new(value);
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        entries.remove(&key);
        if ttl_seconds == 0 || key.len() > MAX_KEY || value.len() > MAX_VALUE {
            return;
        }
        entries.retain(|_, e| e.until > now);
        let size = |k: &String, e: &Entry| k.len() + e.value.len();
        let mut total: usize = entries.iter().map(|(k, e)| size(k, e)).sum();
        while total + key.len() + value.len() > MAX_TOTAL {
            let Some(first) = entries
                .iter()
                .min_by_key(|(_, e)| e.until)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(e) = entries.remove(&first) {
                total -= first.len() + e.value.len();
            }
        }
        let ttl = Duration::from_secs(u64::from(ttl_seconds)).min(MAX_TTL);
        entries.insert(
            key,
            Entry {
                value,
                until: now + ttl,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_expire_are_bounded_and_go_closest_to_expiry_first() {
        let m = Memo::default();
        let t0 = Instant::now();
        m.set_at("token".into(), b"abc".to_vec(), 60, t0);
        assert_eq!(
            m.get_at("token", t0 + Duration::from_secs(59)),
            Some(b"abc".to_vec())
        );
        assert_eq!(m.get_at("token", t0 + Duration::from_secs(60)), None);
        // At most a day, whatever is asked.
        m.set_at("long".into(), b"x".to_vec(), u32::MAX, t0);
        assert!(
            m.get_at("long", t0 + MAX_TTL - Duration::from_secs(1))
                .is_some()
        );
        assert!(m.get_at("long", t0 + MAX_TTL).is_none());
        // 0 removes; too large is not kept.
        m.set_at("gone".into(), b"x".to_vec(), 60, t0);
        m.set_at("gone".into(), b"y".to_vec(), 0, t0);
        assert!(m.get_at("gone", t0).is_none());
        m.set_at("big".into(), vec![0; MAX_VALUE + 1], 60, t0);
        assert!(m.get_at("big", t0).is_none());
        m.set_at("k".repeat(MAX_KEY + 1), b"x".to_vec(), 60, t0);
        assert!(m.entries.lock().unwrap().len() <= 1);
        // Past the total, the entries closest to expiring go first.
        for i in 0..20u32 {
            m.set_at(format!("v{i}"), vec![1; MAX_VALUE], 100 + i, t0);
        }
        let kept: usize = m
            .entries
            .lock()
            .unwrap()
            .iter()
            .map(|(k, e)| k.len() + e.value.len())
            .sum();
        assert!(kept <= MAX_TOTAL, "{kept}");
        assert!(m.get_at("v19", t0).is_some());
        assert!(m.get_at("v0", t0).is_none());
    }
}
