//! The audit chain over the `events` table: each event carries the hash of
//! the one before it and its own, SHA-256 over the previous hash and the
//! event's fields (length-prefixed, the sealed reason included as it is
//! stored), so editing, removing or reordering an event breaks every link
//! after it. The head (`audit_head`: count and last hash) moves in the same
//! transaction as each append, so cutting off the newest events is caught
//! too, as long as the head itself is not rewritten: signing heads, so that
//! even that is caught, comes with the certificates.
//!
//! [`verify`] recomputes the chain and names the first broken link.

use super::StoreError;
use oubli_model::evidence::{Broken, Verified};
use sha2::{Digest, Sha256};
use sqlx::{AnyPool, Row};

/// The hash before the first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What an event's hash covers.
#[derive(Debug, Clone, Copy)]
pub struct Fields<'a> {
    /// The request.
    pub request_id: &'a str,
    /// When (ms).
    pub at: i64,
    /// Who.
    pub actor: &'a str,
    /// What.
    pub action: &'a str,
    /// State before.
    pub from: Option<&'a str>,
    /// State after.
    pub to: Option<&'a str>,
    /// The system.
    pub system: Option<&'a str>,
    /// The sealed reason, as stored.
    pub reason_sealed: Option<&'a [u8]>,
}

pub(crate) fn put(h: &mut Sha256, field: Option<&[u8]>) {
    match field {
        None => h.update([0u8]),
        Some(b) => {
            h.update([1u8]);
            h.update((b.len() as u64).to_be_bytes());
            h.update(b);
        }
    }
}

/// The hash of an event that follows `prev`, in hex.
pub fn link(prev: &str, f: &Fields<'_>) -> String {
    let mut h = Sha256::new();
    h.update(b"oubli:audit:v1");
    put(&mut h, Some(prev.as_bytes()));
    put(&mut h, Some(f.request_id.as_bytes()));
    put(&mut h, Some(&f.at.to_be_bytes()));
    put(&mut h, Some(f.actor.as_bytes()));
    put(&mut h, Some(f.action.as_bytes()));
    put(&mut h, f.from.map(str::as_bytes));
    put(&mut h, f.to.map(str::as_bytes));
    put(&mut h, f.system.map(str::as_bytes));
    put(&mut h, f.reason_sealed);
    hex::encode(h.finalize())
}

/// Recompute the whole chain, oldest event first.
pub async fn verify(pool: &AnyPool) -> Result<Verified, StoreError> {
    let rows = sqlx::query(
        "SELECT id, request_id, at, actor, action, from_state, to_state, system, reason_sealed, prev_hash, hash FROM events ORDER BY id",
    )
    .fetch_all(pool)
    .await?;
    let mut prev = GENESIS.to_string();
    let (mut events, mut unchained) = (0u64, 0u64);
    let mut broken = None;
    for r in &rows {
        let id: i64 = r.try_get("id")?;
        let stored: Option<String> = r.try_get("hash")?;
        let Some(stored) = stored else {
            if events == 0 {
                unchained += 1;
                continue;
            }
            broken = Some(Broken {
                event: Some(id),
                reason: "its hash was removed".into(),
            });
            break;
        };
        let prev_stored: Option<String> = r.try_get("prev_hash")?;
        let request_id: String = r.try_get("request_id")?;
        let actor: String = r.try_get("actor")?;
        let action: String = r.try_get("action")?;
        let from: Option<String> = r.try_get("from_state")?;
        let to: Option<String> = r.try_get("to_state")?;
        let system: Option<String> = r.try_get("system")?;
        let reason: Option<Vec<u8>> = r.try_get("reason_sealed")?;
        if prev_stored.as_deref() != Some(prev.as_str()) {
            broken = Some(Broken {
                event: Some(id),
                reason: "it does not follow the event before it (an event was removed or inserted)"
                    .into(),
            });
            break;
        }
        let computed = link(
            &prev,
            &Fields {
                request_id: &request_id,
                at: r.try_get("at")?,
                actor: &actor,
                action: &action,
                from: from.as_deref(),
                to: to.as_deref(),
                system: system.as_deref(),
                reason_sealed: reason.as_deref(),
            },
        );
        if computed != stored {
            broken = Some(Broken {
                event: Some(id),
                reason: "its content does not match its hash (it was edited)".into(),
            });
            break;
        }
        prev = stored;
        events += 1;
    }
    if broken.is_none() {
        let (seq, head): (i64, String) =
            sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1")
                .fetch_one(pool)
                .await?;
        if head != prev || seq as u64 != events {
            broken = Some(Broken {
                event: None,
                reason: format!(
                    "the head records {seq} events ending in {}, the table holds {events} ending in {}: events were cut off the end",
                    &head[..12.min(head.len())],
                    &prev[..12.min(prev.len())]
                ),
            });
        }
    }
    Ok(Verified {
        events,
        unchained,
        head: prev,
        broken,
    })
}
