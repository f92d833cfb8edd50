//! Per-request data keys, kept wrapped in the store (`data_keys`), and the
//! [`Vault`] that seals and opens personal data with them.
//!
//! A data key is created on a request's first sealed value, wrapped under
//! the keyring's active KEK and written in its own short transaction
//! (`INSERT … ON CONFLICT DO NOTHING`, then read back, so that two workers
//! sealing for the same new request agree on one key). Shredding deletes a
//! request's wrapped keys and records a tombstone in one transaction: every
//! sealed value of that request, in the database and in its backups, becomes
//! unreadable. Rotation rewraps keys, one request per transaction, and never
//! touches a sealed value.

use super::{Store, StoreError};
use oubli_crypto::CryptoError;
use oubli_crypto::blind::BlindIndex;
use oubli_crypto::envelope::{DataKey, RecordContext, WrappedDataKey, sealed_key_id};
use oubli_crypto::keyring::Keyring;
use sqlx::Row;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use zeroize::Zeroizing;

/// How many unwrapped data keys a process keeps in memory.
const CACHE: usize = 1024;

/// What a sealed value is, in the store's words: which column of which row
/// it belongs to follows from it, so nothing above the store names tables,
/// columns or rows. A value sealed as one thing does not open as another.
#[derive(Debug, Clone, Copy)]
pub enum Sealed<'a> {
    /// A request's subject (its identifiers).
    Subject,
    /// A request's parameters.
    Params,
    /// One system's plan.
    Plan(&'a str),
    /// One system's result.
    Result(&'a str),
    /// One system's error message.
    Error(&'a str),
    /// One system's vendor tickets.
    Ticket(&'a str),
    /// The reason given for an event: its action and, for a system's event,
    /// the system.
    Reason {
        /// The event's action (`rejected`, `skipped`, `identity-attested`).
        action: &'a str,
        /// The system, for a system's event.
        system: Option<&'a str>,
    },
    /// A piece of a request's kept answer: the attempt that wrote it, and
    /// its place.
    Answer {
        /// The attempt.
        attempt: &'a str,
        /// The piece's number, from 0.
        seq: i64,
    },
    /// What a kept answer holds (counts, what could not be included).
    AnswerSummary,
    /// A request asked for in the privacy center, before its subject
    /// proved who they are.
    Draft,
    /// A consent entry's evidence: its purpose, at a time (ms).
    Consent {
        /// The purpose consented to.
        purpose: &'a str,
        /// When.
        at: i64,
    },
}

impl Sealed<'_> {
    /// The field a value of this kind is bound to.
    fn field(&self) -> &'static str {
        match self {
            Sealed::Subject => "subject",
            Sealed::Params => "params",
            Sealed::Plan(_) => "plan",
            Sealed::Result(_) => "result",
            Sealed::Error(_) => "error",
            Sealed::Ticket(_) => "ticket",
            Sealed::Reason { .. } => "reason",
            Sealed::Consent { .. } => "consent",
            Sealed::Answer { .. } => "answer",
            Sealed::AnswerSummary => "answer-summary",
            Sealed::Draft => "draft",
        }
    }

    /// The row it is bound to, in request `request_id` (or, for consent, a
    /// subject's key id).
    fn row<'r>(&self, request_id: &'r str) -> Cow<'r, str>
    where
        Self: 'r,
    {
        match *self {
            Sealed::Subject | Sealed::Params => Cow::Borrowed(request_id),
            Sealed::Plan(system)
            | Sealed::Result(system)
            | Sealed::Error(system)
            | Sealed::Ticket(system) => Cow::Borrowed(system),
            Sealed::Reason { action, system } => match action {
                "identity-attested" => Cow::Borrowed("attested"),
                "rejected" | "cancelled" => Cow::Borrowed(action),
                _ => Cow::Owned(format!("{action}-{}", system.unwrap_or(""))),
            },
            Sealed::Consent { purpose, at } => Cow::Owned(format!("{purpose}:{at}")),
            Sealed::Answer { attempt, seq } => Cow::Owned(format!("{attempt}:{seq}")),
            Sealed::AnswerSummary | Sealed::Draft => Cow::Borrowed(request_id),
        }
    }
}

/// Seals and opens a request's personal data with its data keys.
#[derive(Clone)]
pub struct Vault {
    store: Store,
    keyring: Arc<Keyring>,
    cache: Arc<Mutex<HashMap<String, Arc<DataKey>>>>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vault")
    }
}

/// What the store's keys look like, for display.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct KeyStats {
    /// Requests with data keys.
    pub requests_with_keys: i64,
    /// Data keys not under the active KEK (a rotation to finish).
    pub keys_to_rewrap: i64,
    /// Requests crypto-shredded.
    pub shredded: i64,
}

impl Vault {
    /// Seal and open with `store`'s data keys, under `keyring`'s KEKs.
    pub fn new(store: Store, keyring: Arc<Keyring>) -> Vault {
        Vault {
            store,
            keyring,
            cache: Arc::default(),
        }
    }

    /// The keyring.
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// The blind index of a normalised identifier of `kind` (`email`,
    /// `phone`, `external:<namespace>`).
    pub fn index(&self, kind: &str, normalised: &str) -> BlindIndex {
        self.keyring.index_key().index(kind, normalised)
    }

    /// Whether a request was crypto-shredded.
    pub async fn is_shredded(&self, request_id: &str) -> Result<bool, StoreError> {
        self.shredded(request_id).await
    }

    async fn shredded(&self, request_id: &str) -> Result<bool, StoreError> {
        Ok(sqlx::query("SELECT 1 FROM shredded WHERE request_id = $1")
            .bind(request_id)
            .fetch_optional(self.store.pool())
            .await?
            .is_some())
    }

    async fn load(&self, request_id: &str) -> Result<Vec<WrappedDataKey>, StoreError> {
        let rows = sqlx::query(
            "SELECT key_id, kek_id, wrapped FROM data_keys WHERE request_id = $1 ORDER BY created_at, key_id",
        )
        .bind(request_id)
        .fetch_all(self.store.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(WrappedDataKey {
                    id: r.try_get("key_id")?,
                    kek_id: r.try_get("kek_id")?,
                    wrapped: r.try_get("wrapped")?,
                })
            })
            .collect()
    }

    fn unwrap(&self, request_id: &str, w: &WrappedDataKey) -> Result<DataKey, StoreError> {
        Ok(self.keyring.kek(&w.kek_id)?.unwrap(request_id, w)?)
    }

    fn remember(&self, request_id: &str, key: DataKey) -> Arc<DataKey> {
        let key = Arc::new(key);
        let mut cache = self.cache.lock().expect("key cache");
        if cache.len() >= CACHE {
            cache.clear();
        }
        cache.insert(request_id.to_string(), key.clone());
        key
    }

    /// The request's current data key, created on first use.
    async fn current(&self, request_id: &str) -> Result<Arc<DataKey>, StoreError> {
        if let Some(k) = self.cache.lock().expect("key cache").get(request_id) {
            return Ok(k.clone());
        }
        if self.shredded(request_id).await? {
            return Err(CryptoError::Shredded(request_id.to_string()).into());
        }
        if let Some(w) = self.load(request_id).await?.last() {
            let key = self.unwrap(request_id, w)?;
            return Ok(self.remember(request_id, key));
        }
        let key = DataKey::generate()?;
        let w = self.keyring.active_kek()?.wrap(request_id, &key)?;
        let mut tx = self.store.write().await?;
        sqlx::query(
            "INSERT INTO data_keys (request_id, key_id, kek_id, wrapped, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(request_id)
        .bind(&w.id)
        .bind(&w.kek_id)
        .bind(&w.wrapped)
        .bind(self.store.now())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        // Another process may have created one first: use the stored one.
        let stored = self.load(request_id).await?;
        let w = stored.last().ok_or(StoreError::Corrupt("data key"))?;
        let key = self.unwrap(request_id, w)?;
        Ok(self.remember(request_id, key))
    }

    /// Seal `plaintext`, `what` of request `request_id`.
    pub async fn seal(
        &self,
        request_id: &str,
        what: Sealed<'_>,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        let row = what.row(request_id);
        let ctx = context(request_id, what.field(), &row);
        Ok(self.current(request_id).await?.seal(&ctx, plaintext)?)
    }

    /// Seal a value as JSON.
    pub async fn seal_json<T: serde::Serialize>(
        &self,
        request_id: &str,
        what: Sealed<'_>,
        value: &T,
    ) -> Result<Vec<u8>, StoreError> {
        let json =
            Zeroizing::new(serde_json::to_vec(value).map_err(|_| StoreError::Corrupt("value"))?);
        self.seal(request_id, what, &json).await
    }

    /// Open a value sealed by [`Vault::seal`].
    pub async fn open(
        &self,
        request_id: &str,
        what: Sealed<'_>,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        let row = what.row(request_id);
        let ctx = &context(request_id, what.field(), &row);
        let id = sealed_key_id(sealed)?;
        let cached = self
            .cache
            .lock()
            .expect("key cache")
            .get(ctx.request_id)
            .filter(|k| k.id() == id)
            .cloned();
        let key = match cached {
            Some(k) => k,
            None => {
                if self.shredded(ctx.request_id).await? {
                    return Err(CryptoError::Shredded(ctx.request_id.to_string()).into());
                }
                let keys = self.load(ctx.request_id).await?;
                let w = keys
                    .iter()
                    .find(|k| k.id == id)
                    .ok_or_else(|| CryptoError::UnknownKey(id.clone()))?;
                Arc::new(self.unwrap(ctx.request_id, w)?)
            }
        };
        Ok(key.open(ctx, sealed)?)
    }

    /// Open a value sealed by [`Vault::seal_json`].
    pub async fn open_json<T: serde::de::DeserializeOwned>(
        &self,
        request_id: &str,
        what: Sealed<'_>,
        sealed: &[u8],
    ) -> Result<T, StoreError> {
        let plain = self.open(request_id, what, sealed).await?;
        serde_json::from_slice(&plain).map_err(|_| StoreError::Corrupt(static_kind(what.field())))
    }

    /// Crypto-shred a request: destroy its data keys and remember that it
    /// was shredded, in one transaction. Returns whether it had keys.
    pub async fn shred(&self, request_id: &str) -> Result<bool, StoreError> {
        self.cache.lock().expect("key cache").remove(request_id);
        let mut tx = self.store.write().await?;
        let deleted = sqlx::query("DELETE FROM data_keys WHERE request_id = $1")
            .bind(request_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("INSERT INTO shredded (request_id, at) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(request_id)
            .bind(self.store.now())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(deleted > 0)
    }

    /// Rewrap every data key not under the active KEK, one request per
    /// transaction (so an interrupted rotation resumes where it stopped).
    /// Returns how many keys were rewrapped.
    pub async fn rewrap(&self) -> Result<usize, StoreError> {
        let active = self.keyring.active_kek()?;
        let requests: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT request_id FROM data_keys WHERE kek_id <> $1 ORDER BY request_id",
        )
        .bind(active.id())
        .fetch_all(self.store.pool())
        .await?;
        let mut done = 0;
        for request_id in requests {
            let mut tx = self.store.write().await?;
            let rows = sqlx::query(
                "SELECT key_id, kek_id, wrapped FROM data_keys WHERE request_id = $1 AND kek_id <> $2",
            )
            .bind(&request_id)
            .bind(active.id())
            .fetch_all(&mut *tx)
            .await?;
            for r in rows {
                let w = WrappedDataKey {
                    id: r.try_get("key_id")?,
                    kek_id: r.try_get("kek_id")?,
                    wrapped: r.try_get("wrapped")?,
                };
                let key = self.unwrap(&request_id, &w)?;
                let new = active.wrap(&request_id, &key)?;
                sqlx::query(
                    "UPDATE data_keys SET kek_id = $1, wrapped = $2 WHERE request_id = $3 AND key_id = $4",
                )
                .bind(&new.kek_id)
                .bind(&new.wrapped)
                .bind(&request_id)
                .bind(&w.id)
                .execute(&mut *tx)
                .await?;
                done += 1;
            }
            tx.commit().await?;
        }
        Ok(done)
    }

    /// How many requests have keys, how many keys await a rewrap, how many
    /// requests were shredded.
    pub async fn stats(&self) -> Result<KeyStats, StoreError> {
        let active = self.keyring.active_kek()?.id().to_string();
        let pool = self.store.pool();
        Ok(KeyStats {
            requests_with_keys: sqlx::query_scalar(
                "SELECT COUNT(DISTINCT request_id) FROM data_keys",
            )
            .fetch_one(pool)
            .await?,
            keys_to_rewrap: sqlx::query_scalar("SELECT COUNT(*) FROM data_keys WHERE kek_id <> $1")
                .bind(active)
                .fetch_one(pool)
                .await?,
            shredded: sqlx::query_scalar("SELECT COUNT(*) FROM shredded")
                .fetch_one(pool)
                .await?,
        })
    }
}

fn static_kind(field: &str) -> &'static str {
    match field {
        "subject" => "subject",
        "params" => "request parameters",
        "plan" => "plan",
        "result" => "result",
        _ => "sealed value",
    }
}

/// The associated data a value is bound to: a request's field and row.
fn context<'a>(request_id: &'a str, field: &'a str, row: &'a str) -> RecordContext<'a> {
    RecordContext {
        kind: "request",
        request_id,
        field,
        row,
    }
}

#[cfg(test)]
mod tests {
    use super::Sealed;

    /// The fields and rows are part of the associated data of every value
    /// already in a database: changing one makes those values unreadable.
    #[test]
    fn what_a_value_is_binds_it_to_the_field_and_row_it_always_had() {
        let cases = [
            (Sealed::Subject, ("subject", "r-1")),
            (Sealed::Params, ("params", "r-1")),
            (Sealed::Plan("crm"), ("plan", "crm")),
            (Sealed::Result("crm"), ("result", "crm")),
            (Sealed::Error("crm"), ("error", "crm")),
            (Sealed::Ticket("crm"), ("ticket", "crm")),
            (
                Sealed::Reason {
                    action: "identity-attested",
                    system: None,
                },
                ("reason", "attested"),
            ),
            (
                Sealed::Reason {
                    action: "rejected",
                    system: None,
                },
                ("reason", "rejected"),
            ),
            (
                Sealed::Reason {
                    action: "skipped",
                    system: Some("crm"),
                },
                ("reason", "skipped-crm"),
            ),
            (
                Sealed::Reason {
                    action: "extended",
                    system: None,
                },
                ("reason", "extended-"),
            ),
            (
                Sealed::Consent {
                    purpose: "calls",
                    at: 7,
                },
                ("consent", "calls:7"),
            ),
        ];
        for (what, (field, row)) in cases {
            assert_eq!((what.field(), &*what.row("r-1")), (field, row), "{what:?}");
        }
    }
}
