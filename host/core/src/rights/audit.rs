//! The audit log: the store's hash chain and Merkle tree (placed by the
//! sequencer, [`oubli_store::log`]), signed tree heads (so that cutting
//! events off the end is caught as soon as a later head was published),
//! inclusion and consistency proofs, the check of all of it against the
//! store and against a witness's copies of the heads, and the export as
//! JSON lines.

use super::engine::Engine;
use super::request::RequestError;
use oubli_model::evidence::{Broken, Verified};
use oubli_model::evidence::{ConsistencyProof, InclusionProof, LogEvent, SignedHead, TreeHead};
use oubli_store::audit;
use oubli_store::log::{self, SEQUENCER};
use oubli_store::merkle::{self, Hash};
use oubli_store::service;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// The sequencer's lease: a holder that stops renewing it for this long
/// is taken over.
pub const SEQUENCER_LEASE: Duration = Duration::from_secs(10);

/// Events placed in one sequencer transaction at most.
pub const SEQUENCER_BATCH: i64 = 2000;

/// Signed tree heads younger than this are all kept; older ones are
/// thinned to one per [`HEAD_BUCKET`].
pub const HEADS_KEPT_WHOLE: Duration = Duration::from_secs(24 * 3600);

/// Of heads older than [`HEADS_KEPT_WHOLE`], the first of each such period
/// is kept.
pub const HEAD_BUCKET: Duration = Duration::from_secs(3600);

/// The format of an inclusion proof.
pub const PROOF_FORMAT: &str = "oubli-inclusion-proof/1";

/// What a signed tree head's signature covers.
pub fn tree_head_message(size: i64, root: &str, signed_at: i64) -> String {
    format!("oubli-tree-head/1\n{size}\n{root}\n{signed_at}\n")
}

fn hash_hex(h: &Hash) -> String {
    hex::encode(h)
}

fn unhex(s: &str) -> Option<Hash> {
    hex::decode(s)
        .ok()
        .and_then(|b| Hash::try_from(b.as_slice()).ok())
}

/// Check an inclusion proof on its own, with nothing but the signing
/// key's public half (what docs/verify-proof.py does): the event hashes
/// to its leaf, the audit path leads from the leaf to the signed head's
/// root, the head's signature holds, and, given the certificate's
/// document, the event attests exactly that document. Names the first
/// thing that does not hold.
pub fn check_inclusion(
    proof: &InclusionProof,
    public_pem: &str,
    document: Option<&[u8]>,
) -> Result<(), String> {
    use sha2::Digest;
    if proof.format != PROOF_FORMAT {
        return Err(format!("not an inclusion proof of format {PROOF_FORMAT}"));
    }
    let e = &proof.event;
    let leaf = log::leaf_hash_of(e).ok_or("its event's reason_sha256 is not a SHA-256 in hex")?;
    if unhex(&proof.leaf_hash) != Some(leaf) {
        return Err("its event does not hash to its leaf: the event was altered".into());
    }
    if let Some(document) = document {
        let digest = hex::encode(sha2::Sha256::digest(document));
        if e.digest.as_deref() != Some(digest.as_str()) {
            return Err("its event attests another document than this certificate".into());
        }
    }
    let path: Option<Vec<Hash>> = proof.path.iter().map(|h| unhex(h)).collect();
    let (Some(path), Some(root)) = (path, unhex(&proof.head.root)) else {
        return Err("its audit path or root is not SHA-256 hashes in hex".into());
    };
    let h = &proof.head;
    if proof.leaf_index < 0
        || proof.leaf_index >= h.size
        || !merkle::verify_inclusion(proof.leaf_index as u64, h.size as u64, &leaf, &path, &root)
    {
        return Err(format!(
            "its audit path does not lead from leaf {} to the root of the tree head over {} events",
            proof.leaf_index, h.size
        ));
    }
    let signature = hex::decode(&h.signature).unwrap_or_default();
    oubli_crypto::signing::verify(
        public_pem,
        tree_head_message(h.size, &h.root, h.signed_at).as_bytes(),
        &signature,
    )
    .map_err(|_| {
        format!(
            "the tree head over {} events is not signed by this key",
            h.size
        )
    })
}

/// A witness's copies of the signed tree heads, as JSON lines: each line a
/// head, or a head with its consistency proof as `oubli audit heads`
/// prints them (`{"head": …, "consistency": …}`); blank lines are skipped.
/// The error names the line, never quotes it.
pub fn parse_witness_heads(text: &str) -> Result<Vec<TreeHead>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|_| format!("line {}: not JSON", n + 1))?;
        let head = value.get("head").cloned().unwrap_or(value);
        out.push(
            serde_json::from_value(head)
                .map_err(|_| format!("line {}: not a signed tree head", n + 1))?,
        );
    }
    Ok(out)
}

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
    /// Signed tree heads found in the store.
    pub tree_heads: usize,
    /// The largest signed tree.
    pub last_tree_size: Option<i64>,
    /// Heads given by a witness (`--heads`) and checked.
    pub witness_heads: usize,
    /// The tree (its stored subtrees, its signed heads, their consistency,
    /// a witness's heads): the first thing that does not hold, if any.
    pub broken_tree: Option<Broken>,
    /// The consent evidence's own chain, recomputed.
    pub consent: Verified,
}

/// The log at a glance ([`Engine::audit_summary`]).
#[derive(Debug, Clone, Serialize)]
pub struct AuditSummary {
    /// Events placed in the log.
    pub size: i64,
    /// Events written and not yet placed.
    pub waiting: i64,
    /// The latest signed tree heads, largest first.
    pub heads: Vec<TreeHead>,
}

impl AuditReport {
    /// Whether everything holds.
    pub fn ok(&self) -> bool {
        self.chain.broken.is_none()
            && self.broken_head.is_none()
            && self.broken_tree.is_none()
            && self.consent.broken.is_none()
    }
}

impl Engine {
    /// Place the events waiting for the sequencer, if this process can
    /// have its lease now (as `holder`), and give the lease back: what a
    /// command does before it signs or checks the log. Returns how many
    /// were placed; 0 when another process holds the lease (it places them).
    pub async fn drain_log(&self, holder: &str) -> Result<i64, RequestError> {
        if self.store.is_read_only() || !log::behind(self.store.pool()).await? {
            return Ok(0);
        }
        let ttl = SEQUENCER_LEASE.as_millis() as i64;
        let Some(token) = log::take_lease(&self.store, SEQUENCER, holder, ttl).await? else {
            return Ok(0);
        };
        let placed = log::sequence_all(&self.store, holder, token, ttl, SEQUENCER_BATCH).await?;
        log::release_lease(&self.store, SEQUENCER, holder, token).await?;
        Ok(placed.unwrap_or(0))
    }

    /// Place what waits (when this process can), then sign the tree head
    /// at the log's size (once per size); `None` when that size is signed
    /// already or the log is empty.
    pub async fn sign_audit_head(&self) -> Result<Option<TreeHead>, RequestError> {
        let holder = format!("{}:sign", super::worker::default_worker_id());
        self.drain_log(&holder).await?;
        self.sign_tree_head().await
    }

    /// Sign the tree head at the log's size as placed now.
    pub async fn sign_tree_head(&self) -> Result<Option<TreeHead>, RequestError> {
        let (size, _) = log::size(self.store.pool()).await?;
        if size == 0 {
            return Ok(None);
        }
        let previous = log::latest_tree_heads(self.store.pool(), 1).await?.pop();
        if previous.as_ref().is_some_and(|p| p.size == size) {
            return Ok(None);
        }
        let signer = self.vault.keyring().signer()?;
        let root = hash_hex(&log::root(self.store.pool(), size).await?);
        let signed_at = self.store.now();
        let signature = signer.sign(tree_head_message(size, &root, signed_at).as_bytes())?;
        let head = TreeHead {
            size,
            root,
            signed_at,
            key_id: signer.id().to_string(),
            signature: hex::encode(signature),
        };
        let bucket = HEAD_BUCKET.as_millis() as i64;
        let mut tx = self.store.write().await?;
        let new = log::insert_tree_head(&mut tx, &head).await?;
        // A head every half second while the log grows is ~170,000 a day:
        // once per period, when a head opens a new one, those older than
        // a day are thinned to one per period.
        if new && previous.is_some_and(|p| p.signed_at / bucket != signed_at / bucket) {
            let cutoff = signed_at - HEADS_KEPT_WHOLE.as_millis() as i64;
            let thinned = log::thin_tree_heads(&mut tx, cutoff, bucket).await?;
            if thinned > 0 {
                tracing::info!(thinned, "old signed tree heads thinned to one an hour");
            }
        }
        oubli_store::commit(tx).await?;
        Ok(new.then_some(head))
    }

    /// Be the sequencer while `stop` has not fired: hold the lease when it
    /// is free (as `holder`), place waiting events in batches, and sign a
    /// tree head when the log grew and `head_every` passed since the last.
    /// Any number of processes run this; one holds the role at a time.
    pub async fn run_sequencer(
        self: Arc<Self>,
        holder: String,
        head_every: Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let ttl = SEQUENCER_LEASE.as_millis() as i64;
        let mut token: Option<i64> = None;
        let mut last_signed = std::time::Instant::now() - head_every;
        let mut signed_size = -1i64;
        // SQLite places each event as it is written (one writer holds the
        // file): there is only heads to sign, and no lease to hold.
        let sqlite = self.store.backend() == oubli_store::Backend::Sqlite;
        loop {
            if *stop.borrow() {
                break;
            }
            let mut placed = 0;
            if sqlite {
                if last_signed.elapsed() >= head_every {
                    match log::size(self.store.pool()).await {
                        Ok((size, _)) if size > signed_size => {
                            if let Err(e) = self.sign_audit_head().await {
                                tracing::warn!(error = %e, "could not sign the tree head");
                            }
                            signed_size = size;
                            last_signed = std::time::Instant::now();
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "could not read the log's size"),
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(head_every.clamp(Duration::from_millis(100), Duration::from_secs(1))) => {}
                    _ = stop.wait_for(|s| *s) => break,
                }
                continue;
            }
            let step: Result<(), RequestError> = async {
                if token.is_none() {
                    token = log::take_lease(&self.store, SEQUENCER, &holder, ttl).await?;
                    if token.is_some() {
                        tracing::info!(holder = %holder, "sequencer: this process now places the audit log's events");
                    }
                }
                if let Some(t) = token {
                    match log::sequence(&self.store, &holder, t, ttl, SEQUENCER_BATCH).await? {
                        Some(done) => placed = done.to - done.from,
                        None => {
                            tracing::warn!(holder = %holder, "sequencer: the lease was taken over");
                            token = None;
                        }
                    }
                    let (size, _) = log::size(self.store.pool()).await?;
                    if size > signed_size && last_signed.elapsed() >= head_every {
                        self.sign_tree_head().await?;
                        signed_size = size;
                        last_signed = std::time::Instant::now();
                    }
                }
                Ok(())
            }
            .await;
            if let Err(e) = step {
                tracing::warn!(holder = %holder, error = %e, "sequencer step failed");
            }
            let pause = match (token, placed) {
                (Some(_), p) if p >= SEQUENCER_BATCH => Duration::ZERO,
                (Some(_), _) => Duration::from_millis(50),
                (None, _) => Duration::from_secs(1),
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stop.wait_for(|s| *s) => break,
            }
        }
        if let Some(t) = token {
            // Place what is left, sign it, and hand the role on at once.
            let _ = log::sequence_all(&self.store, &holder, t, ttl, SEQUENCER_BATCH).await;
            let _ = self.sign_tree_head().await;
            let _ = log::release_lease(&self.store, SEQUENCER, &holder, t).await;
        }
    }

    /// The inclusion proof of event `id` in the smallest signed tree that
    /// holds it (a head is signed now if none does yet). `None` while the
    /// event waits for the sequencer.
    pub async fn prove_event(&self, id: i64) -> Result<Option<InclusionProof>, RequestError> {
        let Some(leaf) = log::leaf_of(self.store.pool(), id).await? else {
            return Err(RequestError::Store(oubli_store::StoreError::NotFound {
                what: "event",
                id: id.to_string(),
            }));
        };
        self.prove_leaf(leaf).await
    }

    /// The inclusion proof of the event that attests `document` (its
    /// SHA-256 is the event's digest) for request or run `id`.
    pub async fn prove_document(
        &self,
        id: &str,
        document: &str,
    ) -> Result<Option<InclusionProof>, RequestError> {
        use sha2::Digest;
        let digest = hex::encode(sha2::Sha256::digest(document.as_bytes()));
        let leaves = log::leaves_of(self.store.pool(), id).await?;
        match leaves
            .into_iter()
            .find(|l| l.event.digest.as_deref() == Some(digest.as_str()))
        {
            Some(leaf) => self.prove_leaf(leaf).await,
            None => Ok(None),
        }
    }

    /// The last event of request `id` as a proof (what `audit prove`
    /// prints for a request).
    pub async fn prove_request(&self, id: &str) -> Result<Option<InclusionProof>, RequestError> {
        let mut leaves = log::leaves_of(self.store.pool(), id).await?;
        leaves.retain(|l| l.leaf.is_some());
        leaves.sort_by_key(|l| l.leaf);
        match leaves.pop() {
            Some(leaf) => self.prove_leaf(leaf).await,
            None => Err(RequestError::Store(oubli_store::StoreError::NotFound {
                what: "placed event of request",
                id: id.to_string(),
            })),
        }
    }

    async fn prove_leaf(&self, leaf: log::Leaf) -> Result<Option<InclusionProof>, RequestError> {
        let Some(index) = leaf.leaf else {
            return Ok(None);
        };
        let pool = self.store.pool();
        let head = match log::head_holding(pool, index).await? {
            Some(h) => h,
            None => {
                if !self.store.is_read_only() {
                    self.sign_tree_head().await?;
                }
                match log::head_holding(pool, index).await? {
                    Some(h) => h,
                    None => return Ok(None),
                }
            }
        };
        let path = log::inclusion(pool, index, head.size).await?;
        Ok(Some(InclusionProof {
            format: PROOF_FORMAT.into(),
            event: leaf.event,
            leaf_index: index,
            leaf_hash: leaf.leaf_hash,
            path: path.iter().map(hash_hex).collect(),
            head,
        }))
    }

    /// The signed tree heads over more than `since` events, each with the
    /// consistency proof from the one before it (from `since` for the
    /// first): what a witness fetches and keeps.
    pub async fn tree_heads_since(
        &self,
        since: i64,
    ) -> Result<Vec<(TreeHead, ConsistencyProof)>, RequestError> {
        let pool = self.store.pool();
        let mut out = Vec::new();
        let mut prev = since.max(0);
        for h in log::tree_heads(pool, since).await? {
            let path = log::consistency(pool, prev, h.size).await?;
            let proof = ConsistencyProof {
                from_size: prev,
                to_size: h.size,
                path: path.iter().map(hash_hex).collect(),
            };
            prev = h.size;
            out.push((h, proof));
        }
        Ok(out)
    }

    /// The log at a glance, without checking it: events placed, events
    /// waiting for the sequencer, and the `n` latest signed tree heads
    /// (largest first). What the console's audit page shows.
    pub async fn audit_summary(&self, n: i64) -> Result<AuditSummary, RequestError> {
        let pool = self.store.pool();
        let (size, _) = log::size(pool).await?;
        Ok(AuditSummary {
            size,
            waiting: audit::waiting(pool).await?,
            heads: log::latest_tree_heads(pool, n).await?,
        })
    }

    /// The signed tree heads.
    pub async fn tree_heads(&self) -> Result<Vec<TreeHead>, RequestError> {
        Ok(log::tree_heads(self.store.pool(), 0).await?)
    }

    /// Check the tree against the events: every stored subtree, every
    /// signed tree head (signature, root, consistency with the one before)
    /// and every head a witness kept.
    async fn verify_tree(
        &self,
        witness: &[TreeHead],
    ) -> Result<(usize, Option<i64>, Option<Broken>), RequestError> {
        let signer = self.vault.keyring().signer()?;
        let whole = log::whole(self.store.pool()).await?;
        let heads = log::tree_heads(self.store.pool(), 0).await?;
        let last = heads.last().map(|h| h.size);
        let broken = tree_break(signer, &whole, &heads, witness);
        Ok((heads.len(), last, broken))
    }

    /// Recompute the chain and check every signed head against it: a head
    /// whose signature fails, whose event is gone, or whose hash differs
    /// from the chain's at its length breaks the log.
    pub async fn verify_audit(&self) -> Result<AuditReport, RequestError> {
        self.verify_audit_with(&[]).await
    }

    /// [`Engine::verify_audit`], and every head a witness kept checked
    /// against the log too: a tail cut after a published head is caught.
    /// Events still waiting for the sequencer are placed first when this
    /// process can.
    pub async fn verify_audit_with(
        &self,
        witness: &[TreeHead],
    ) -> Result<AuditReport, RequestError> {
        let holder = format!("{}:verify", super::worker::default_worker_id());
        self.drain_log(&holder).await?;
        let chain = audit::verify(self.store.pool()).await?;
        let (tree_heads, last_tree_size, broken_tree) = self.verify_tree(witness).await?;
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
            tree_heads,
            last_tree_size,
            witness_heads: witness.len(),
            broken_tree,
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

/// The first thing in the tree that does not hold against the events:
/// its places, every signed head (signature, root, consistency with the
/// one before), a witness's heads, then every stored subtree.
fn tree_break(
    signer: &oubli_crypto::signing::Signer,
    whole: &log::Whole,
    heads: &[TreeHead],
    witness: &[TreeHead],
) -> Option<Broken> {
    let mut tree = merkle::Memory::default();
    for (id, place, hash) in &whole.leaves {
        if *place != tree.levels.first().map_or(0, |l| l.len() as i64) {
            return Some(Broken {
                event: Some(*id),
                reason: format!(
                    "it holds place {place} of the log where place {} was due: an event was removed or placed twice",
                    tree.levels.first().map_or(0, Vec::len)
                ),
            });
        }
        tree.push(*hash);
    }
    let size = whole.leaves.len() as i64;
    let check = |h: &TreeHead, whose: &str, tree: &mut merkle::Memory| -> Option<String> {
        if h.key_id != signer.id() {
            return Some(format!(
                "{whose} head at {}: signed by key {}, not this host's signing key {}",
                h.size,
                h.key_id,
                signer.id()
            ));
        }
        if oubli_crypto::signing::verify(
            signer.public_pem(),
            tree_head_message(h.size, &h.root, h.signed_at).as_bytes(),
            &hex::decode(&h.signature).unwrap_or_default(),
        )
        .is_err()
        {
            return Some(format!(
                "{whose} head at {}: its signature does not verify",
                h.size
            ));
        }
        if h.size > size {
            return Some(format!(
                "{whose} head at {} was signed over {} events, the log now holds {size}: events were cut off the end",
                h.size, h.size
            ));
        }
        let root = merkle::root(tree, h.size as u64).unwrap_or_else(|e| match e {});
        if unhex(&h.root) != Some(root) {
            return Some(format!(
                "{whose} head at {}: the log's first {} events no longer give its root (an event among them was edited, removed or reordered)",
                h.size, h.size
            ));
        }
        None
    };
    let mut prev: Option<&TreeHead> = None;
    for h in heads {
        if let Some(why) = check(h, "signed", &mut tree) {
            return Some(Broken {
                event: None,
                reason: why,
            });
        }
        if let Some(p) = prev {
            let proof = merkle::consistency(&mut tree, p.size as u64, h.size as u64)
                .unwrap_or_else(|e| match e {});
            let (Some(old), Some(new)) = (unhex(&p.root), unhex(&h.root)) else {
                continue;
            };
            if !merkle::verify_consistency(p.size as u64, h.size as u64, &old, &new, &proof) {
                return Some(Broken {
                    event: None,
                    reason: format!(
                        "signed heads at {} and {} are not consistent",
                        p.size, h.size
                    ),
                });
            }
        }
        prev = Some(h);
    }
    for h in witness {
        if let Some(why) = check(h, "the witness's", &mut tree) {
            return Some(Broken {
                event: None,
                reason: why,
            });
        }
    }
    // The stored subtrees are what proofs are made of.
    for ((level, index), stored) in &whole.stored {
        let ours = tree
            .levels
            .get(*level as usize)
            .and_then(|l| l.get(*index as usize));
        let past = (*index + 1)
            .checked_shl(*level)
            .is_none_or(|end| end > size as u64);
        if ours.is_none() && past {
            return Some(Broken {
                event: None,
                reason: format!(
                    "the tree holds subtree {level}/{index}, past the log's {size} events: events were cut off the end"
                ),
            });
        }
        if ours != Some(stored) {
            let event = if *level == 0 {
                whole.leaves.get(*index as usize).map(|l| l.0)
            } else {
                None
            };
            return Some(Broken {
                event,
                reason: format!(
                    "the stored subtree {level}/{index} does not match the events (an event or the tree was edited)"
                ),
            });
        }
    }
    None
}
