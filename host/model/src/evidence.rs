//! What the evidence trail shows outside the store: the audit log's events,
//! its signed heads, what a verification of the chain found, and API tokens
//! as listed (never their secret).

/// An API token, as listed (the secret itself is never kept).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenInfo {
    /// Its public id (the token's prefix).
    pub id: String,
    /// SHA-256 of the secret, hex (skipped when shown).
    #[serde(skip)]
    pub hash: String,
    /// Its role.
    pub role: String,
    /// Who or what holds it (recorded as the actor of what it does).
    pub name: String,
    /// Who created it.
    pub created_by: String,
    /// When (ms since the epoch).
    pub created_at: i64,
    /// When it stops working.
    pub expires_at: Option<i64>,
    /// When it was revoked.
    pub revoked_at: Option<i64>,
}

/// A signed audit head: the chain's length and last hash at a moment,
/// signed by the host's signing key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignedHead {
    /// Events in the chain.
    pub seq: i64,
    /// The last event's hash.
    pub hash: String,
    /// When it was signed (ms since the epoch).
    pub signed_at: i64,
    /// The signing key's id.
    pub key_id: String,
    /// The signature, hex.
    pub signature: String,
}

/// A signed tree head: the audit log's Merkle tree (RFC 9162) at a size,
/// signed by the host's signing key (RSA-PSS over
/// `oubli-tree-head/1\n{size}\n{root}\n{signed_at}\n`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TreeHead {
    /// Events in the log.
    pub size: i64,
    /// The tree's root hash, hex.
    pub root: String,
    /// When it was signed (ms since the epoch).
    pub signed_at: i64,
    /// The signing key's id.
    pub key_id: String,
    /// The signature, hex.
    pub signature: String,
}

/// One event as a leaf of the log's tree: the fields its leaf hash covers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LeafEvent {
    /// The request (or retention run).
    pub request_id: String,
    /// When (ms since the epoch).
    pub at: i64,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// State before.
    pub from: Option<String>,
    /// State after.
    pub to: Option<String>,
    /// The system.
    pub system: Option<String>,
    /// SHA-256 of the sealed reason's ciphertext, hex.
    pub reason_sha256: Option<String>,
    /// SHA-256 of the document the event attests, hex.
    pub digest: Option<String>,
}

/// That an event is in the log: its leaf, its place, the audit path and
/// the signed tree head it leads to (docs/AUDIT.md; docs/verify-proof.py
/// checks it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InclusionProof {
    /// `oubli-inclusion-proof/1`.
    pub format: String,
    /// The event.
    pub event: LeafEvent,
    /// Its place in the log (from 0).
    pub leaf_index: i64,
    /// Its leaf hash, hex.
    pub leaf_hash: String,
    /// The audit path, nearest sibling first, hex.
    pub path: Vec<String>,
    /// The signed tree head the path leads to.
    pub head: TreeHead,
}

/// That a smaller signed tree is a prefix of a larger one.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsistencyProof {
    /// The older tree's size.
    pub from_size: i64,
    /// The newer tree's size.
    pub to_size: i64,
    /// The proof's hashes, hex (RFC 9162 2.1.4).
    pub path: Vec<String>,
}

/// One event of the log, as exported (sealed reasons stay sealed, as a
/// SHA-256 of their ciphertext, which is what the chain covers).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogEvent {
    /// Its id.
    pub id: i64,
    /// Its place in the log (from 0), given by the sequencer.
    pub leaf: i64,
    /// SHA-256 (hex) of the document it attests (a certificate), if any.
    pub digest: Option<String>,
    /// The request.
    pub request_id: String,
    /// When (ms since the epoch).
    pub at: i64,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// State before.
    pub from: Option<String>,
    /// State after.
    pub to: Option<String>,
    /// The system.
    pub system: Option<String>,
    /// The sealed reason, as stored (hex), if any.
    pub reason_sealed: Option<String>,
    /// The request's subject, as blind indexes (HMAC-SHA-256, hex): not
    /// part of the chained fields, joined from the index when exported.
    pub subject: Vec<String>,
    /// The hash of the event before.
    pub prev_hash: Option<String>,
    /// Its hash.
    pub hash: Option<String>,
}

/// What a verification found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Verified {
    /// Events in the chain.
    pub events: u64,
    /// Events written before the chain existed (schema version 3).
    pub unchained: u64,
    /// The last hash.
    pub head: String,
    /// The first broken link: the event id (or `None` for the head) and why.
    pub broken: Option<Broken>,
    /// Events written and not yet placed in the log by the sequencer.
    pub waiting: u64,
}

/// A broken link.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Broken {
    /// The first event that does not verify (`None`: the head).
    pub event: Option<i64>,
    /// Why.
    pub reason: String,
}
