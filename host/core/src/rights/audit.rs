//! The audit log on top of the store's hash chain: signed heads (so that
//! cutting events off the end is detected too, not only edits), the
//! check of both, and the export as JSON lines.

use super::engine::Engine;
use super::request::RequestError;
use oubli_model::evidence::{Broken, Verified};
use oubli_model::evidence::{LogEvent, SignedHead};
use oubli_store::audit;
use oubli_store::service;
use serde::Serialize;

/// What a signed head's signature covers.
pub fn head_message(seq: i64, hash: &str, signed_at: i64) -> String {
    format!("oubli-audit-head/1\n{seq}\n{hash}\n{signed_at}\n")
}

/// The audit log checked: the chain, and every signed head against it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditReport {
    /// The chain recomputed.
    #[serde(flatten)]
    pub chain: Verified,
    /// Signed heads found.
    pub signed_heads: usize,
    /// The longest signed chain.
    pub last_signed_seq: Option<i64>,
    /// The first signed head that does not hold, if any.
    pub broken_head: Option<Broken>,
    /// The consent evidence's own chain, recomputed.
    pub consent: Verified,
}

impl AuditReport {
    /// Whether everything holds.
    pub fn ok(&self) -> bool {
        self.chain.broken.is_none() && self.broken_head.is_none() && self.consent.broken.is_none()
    }
}

impl Engine {
    /// Sign the chain's head as it is now (once per length); `None` when
    /// it is already signed at this length.
    pub async fn sign_audit_head(&self) -> Result<Option<SignedHead>, RequestError> {
        let signer = self.vault.keyring().signer()?;
        let (seq, hash) = service::head(self.store.pool()).await?;
        let signed_at = self.store.now();
        let signature = signer.sign(head_message(seq, &hash, signed_at).as_bytes())?;
        let head = SignedHead {
            seq,
            hash,
            signed_at,
            key_id: signer.id().to_string(),
            signature: hex::encode(signature),
        };
        let mut tx = self.store.write().await?;
        let new = service::insert_signed_head(&mut tx, &head).await?;
        oubli_store::commit(tx).await?;
        Ok(new.then_some(head))
    }

    /// Recompute the chain and check every signed head against it: a head
    /// whose signature fails, whose event is gone, or whose hash differs
    /// from the chain's at its length breaks the log.
    pub async fn verify_audit(&self) -> Result<AuditReport, RequestError> {
        let chain = audit::verify(self.store.pool()).await?;
        let heads = service::signed_heads(self.store.pool()).await?;
        let signer = self.vault.keyring().signer()?;
        let mut broken_head = None;
        for h in &heads {
            let why = if h.key_id != signer.id() {
                Some(format!(
                    "signed by key {}, not this host's signing key {}",
                    h.key_id,
                    signer.id()
                ))
            } else if oubli_crypto::signing::verify(
                signer.public_pem(),
                head_message(h.seq, &h.hash, h.signed_at).as_bytes(),
                &hex::decode(&h.signature).unwrap_or_default(),
            )
            .is_err()
            {
                Some("its signature does not verify".to_string())
            } else if h.seq as u64 > chain.events {
                Some(format!(
                    "it was signed over {} events, the chain now holds {}: events were cut off the end",
                    h.seq, chain.events
                ))
            } else {
                match service::chain_hash_at(self.store.pool(), h.seq).await? {
                    Some(x) if x == h.hash => None,
                    None if h.seq == 0 => None,
                    _ => Some(format!(
                        "the chain's event {} no longer has the hash that was signed",
                        h.seq
                    )),
                }
            };
            if let Some(reason) = why {
                broken_head = Some(Broken {
                    event: None,
                    reason: format!("signed head at {}: {reason}", h.seq),
                });
                break;
            }
        }
        let consent = oubli_store::consent::verify(self.store.pool()).await?;
        Ok(AuditReport {
            consent,
            chain,
            last_signed_seq: heads.last().map(|h| h.seq),
            signed_heads: heads.len(),
            broken_head,
        })
    }

    /// Up to `limit` events of the log after event id `after`.
    pub async fn audit_events(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<LogEvent>, RequestError> {
        let events = service::events_after(self.store.pool(), after, limit).await?;
        Ok(service::with_subjects(self.store.pool(), events).await?)
    }

    /// The signed heads.
    pub async fn signed_heads(&self) -> Result<Vec<SignedHead>, RequestError> {
        Ok(service::signed_heads(self.store.pool()).await?)
    }
}
