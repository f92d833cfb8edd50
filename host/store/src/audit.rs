//! The audit chain over the `events` table: each event carries the hash of
//! the one before it and its own, SHA-256 over the previous hash and the
//! event's fields (length-prefixed, the sealed reason included as it is
//! stored), so editing, removing or reordering an event breaks every link
//! after it. The chain runs in the log's order (`leaf`, given by the
//! sequencer, which also links each event as it places it); the head (`audit_head`: count and last hash) moves with each
//! batch, so cutting off the newest events is caught too, as long as the
//! head itself is not rewritten: signed tree heads, published to a witness,
//! catch even that.
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

/// Walks a hash chain link by link, oldest first, and says where it broke:
/// the one verifier of the audit log and the consent log.
pub(crate) struct ChainCheck {
    /// What a link is (`event`, `entry`), and more than one.
    noun: &'static str,
    nouns: &'static str,
    prev: String,
    links: u64,
    unchained: u64,
    broken: Option<Broken>,
}

impl ChainCheck {
    /// A walk from the genesis hash.
    pub(crate) fn new(noun: &'static str, nouns: &'static str) -> ChainCheck {
        ChainCheck {
            noun,
            nouns,
            prev: GENESIS.to_string(),
            links: 0,
            unchained: 0,
            broken: None,
        }
    }

    fn fail(&mut self, id: Option<i64>, reason: String) -> bool {
        self.broken = Some(Broken { event: id, reason });
        false
    }

    /// The next link: its id, the hash it says it follows, its own stored
    /// hash (`None` for links written before the chain existed, allowed only
    /// before the first chained one), and its hash recomputed from its
    /// content after a given previous hash. False once broken: stop.
    pub(crate) fn next(
        &mut self,
        id: i64,
        prev_stored: Option<&str>,
        stored: Option<&str>,
        computed: impl FnOnce(&str) -> String,
    ) -> bool {
        let Some(stored) = stored else {
            if self.links == 0 {
                self.unchained += 1;
                return true;
            }
            return self.fail(Some(id), "its hash was removed".into());
        };
        if prev_stored != Some(self.prev.as_str()) {
            let noun = self.noun;
            return self.fail(
                Some(id),
                format!(
                    "it does not follow the {noun} before it (an {noun} was removed or inserted)"
                ),
            );
        }
        if computed(&self.prev) != stored {
            return self.fail(
                Some(id),
                "its content does not match its hash (it was edited)".into(),
            );
        }
        self.prev = stored.to_string();
        self.links += 1;
        true
    }

    /// The end of the walk, against the head the store keeps (its length
    /// and last hash): a chain shorter than its head was cut off the end.
    pub(crate) fn finish(mut self, head_seq: i64, head_hash: &str) -> Verified {
        if self.broken.is_none() && (head_hash != self.prev || head_seq as u64 != self.links) {
            let reason = format!(
                "the head records {head_seq} {nouns} ending in {}, the table holds {} ending in {}: {nouns} were cut off the end",
                &head_hash[..12.min(head_hash.len())],
                self.links,
                &self.prev[..12.min(self.prev.len())],
                nouns = self.nouns,
            );
            self.fail(None, reason);
        }
        Verified {
            events: self.links,
            unchained: self.unchained,
            head: self.prev,
            broken: self.broken,
            waiting: 0,
        }
    }
}

/// Events written and not yet given a place by the sequencer.
pub async fn waiting(pool: &AnyPool) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE leaf IS NULL")
            .fetch_one(pool)
            .await?,
    )
}

/// Recompute the whole chain, oldest event first.
pub async fn verify(pool: &AnyPool) -> Result<Verified, StoreError> {
    let rows = sqlx::query(
        "SELECT id, request_id, at, actor, action, from_state, to_state, system, reason_sealed, prev_hash, hash FROM events WHERE leaf IS NOT NULL ORDER BY leaf",
    )
    .fetch_all(pool)
    .await?;
    let mut check = ChainCheck::new("event", "events");
    for r in &rows {
        let prev_stored: Option<String> = r.try_get("prev_hash")?;
        let stored: Option<String> = r.try_get("hash")?;
        let request_id: String = r.try_get("request_id")?;
        let actor: String = r.try_get("actor")?;
        let action: String = r.try_get("action")?;
        let from: Option<String> = r.try_get("from_state")?;
        let to: Option<String> = r.try_get("to_state")?;
        let system: Option<String> = r.try_get("system")?;
        let reason: Option<Vec<u8>> = r.try_get("reason_sealed")?;
        let at: i64 = r.try_get("at")?;
        let fields = Fields {
            request_id: &request_id,
            at,
            actor: &actor,
            action: &action,
            from: from.as_deref(),
            to: to.as_deref(),
            system: system.as_deref(),
            reason_sealed: reason.as_deref(),
        };
        if !check.next(
            r.try_get("id")?,
            prev_stored.as_deref(),
            stored.as_deref(),
            |prev| link(prev, &fields),
        ) {
            break;
        }
    }
    let (seq, head): (i64, String) =
        sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_one(pool)
            .await?;
    let mut verified = check.finish(seq, &head);
    verified.waiting = waiting(pool).await? as u64;
    Ok(verified)
}
