//! The sequencer: what gives each event its place in the audit log.
//!
//! Appending an event ([`super::requests::event`]) touches no shared row:
//! the event is written with no place (`leaf` NULL). [`integrate`] then
//! takes waiting events in batches, oldest id first, and gives each its
//! place (`leaf`, from 0), its link in the hash chain (`prev_hash`, `hash`,
//! as [`super::audit::link`]) and its leaf in the Merkle tree, whose
//! complete subtrees it keeps in `audit_nodes`; `audit_head` holds the
//! log's size, the chain's last hash and the tree's frontier. Only the
//! sequencer writes those, so workers never wait on one another for them.
//!
//! One process at a time is the sequencer: it holds the `sequencer` lease
//! ([`take_lease`]), renews it with every batch, and a batch commits only
//! while its token is still the lease's ([`sequence`]), so a holder that
//! paused past its lease and came back cannot write over its successor. A
//! holder that dies mid-batch leaves nothing: its transaction rolls back,
//! and the next holder integrates the same events. On SQLite, where one
//! writer holds the file anyway, every append integrates at once.

use super::audit::{Fields, link};
use super::merkle::{self, Hash, Nodes};
use super::{Store, StoreError};
use oubli_model::evidence::{LeafEvent, TreeHead};
use sha2::{Digest, Sha256};
use sqlx::{Any, AnyPool, Row, Transaction};
use std::collections::HashMap;

/// The lease's name for the sequencer's role.
pub const SEQUENCER: &str = "sequencer";

/// What a Merkle leaf holds for one event: the format's name, then each
/// field length-prefixed as in the chain (`0x00` for absent, `0x01`, the
/// length as 8 bytes big-endian and the bytes), the sealed reason as the
/// SHA-256 of its ciphertext, and the digest of the document the event
/// attests. docs/AUDIT.md gives the same layout.
pub fn leaf_bytes(f: &Fields<'_>, digest: Option<&str>) -> Vec<u8> {
    let reason: Option<[u8; 32]> = f.reason_sealed.map(|r| Sha256::digest(r).into());
    leaf_bytes_with(f, reason.as_ref().map(|r| r.as_slice()), digest)
}

/// The leaf hash of an event as a proof carries it (its sealed reason
/// already reduced to a SHA-256 in hex); `None` when that is not 32 bytes
/// of hex.
pub fn leaf_hash_of(e: &LeafEvent) -> Option<Hash> {
    let reason: Option<Vec<u8>> = match &e.reason_sha256 {
        None => None,
        Some(r) => Some(hex::decode(r).ok().filter(|b| b.len() == 32)?),
    };
    let fields = Fields {
        request_id: &e.request_id,
        at: e.at,
        actor: &e.actor,
        action: &e.action,
        from: e.from.as_deref(),
        to: e.to.as_deref(),
        system: e.system.as_deref(),
        reason_sealed: None,
    };
    Some(merkle::leaf_hash(&leaf_bytes_with(
        &fields,
        reason.as_deref(),
        e.digest.as_deref(),
    )))
}

/// [`leaf_bytes`] with the sealed reason already reduced to its SHA-256
/// (`reason_sealed` is ignored).
fn leaf_bytes_with(f: &Fields<'_>, reason_sha256: Option<&[u8]>, digest: Option<&str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(160);
    out.extend_from_slice(b"oubli-audit-leaf/1");
    let mut field = |b: Option<&[u8]>| match b {
        None => out.push(0),
        Some(b) => {
            out.push(1);
            out.extend_from_slice(&(b.len() as u64).to_be_bytes());
            out.extend_from_slice(b);
        }
    };
    field(Some(f.request_id.as_bytes()));
    field(Some(&f.at.to_be_bytes()));
    field(Some(f.actor.as_bytes()));
    field(Some(f.action.as_bytes()));
    field(f.from.map(str::as_bytes));
    field(f.to.map(str::as_bytes));
    field(f.system.map(str::as_bytes));
    field(reason_sha256);
    field(digest.map(str::as_bytes));
    out
}

/// The log's state as the sequencer keeps it.
#[derive(Debug, Clone)]
struct Head {
    /// Events with a place.
    size: i64,
    /// The chain's last hash.
    hash: String,
    /// Leaves whose nodes exist (older stores catch up).
    built: i64,
    /// The pending left subtrees, lowest level first.
    frontier: Vec<Option<Hash>>,
}

fn parse_frontier(text: &str, built: i64) -> Result<Vec<Option<Hash>>, StoreError> {
    let mut hashes = text
        .split(',')
        .filter(|s| !s.is_empty())
        .map(unhex)
        .collect::<Result<Vec<_>, _>>()?
        .into_iter();
    let mut out = Vec::new();
    let mut n = built as u64;
    while n > 0 {
        out.push(if n & 1 == 1 { hashes.next() } else { None });
        n >>= 1;
    }
    if out.iter().filter(|h| h.is_some()).count() != (built as u64).count_ones() as usize {
        return Err(StoreError::Corrupt("audit log frontier"));
    }
    Ok(out)
}

fn frontier_text(f: &[Option<Hash>]) -> String {
    f.iter()
        .flatten()
        .map(hex::encode)
        .collect::<Vec<_>>()
        .join(",")
}

/// A stored hash read back.
pub(crate) fn unhex(s: &str) -> Result<Hash, StoreError> {
    hex::decode(s)
        .ok()
        .and_then(|b| <Hash>::try_from(b.as_slice()).ok())
        .ok_or_else(|| StoreError::Corrupt("audit hash"))
}

/// Append a leaf to the frontier; the complete nodes it makes, level 0
/// (the leaf) included, as `(level, index, hash)`.
fn push(frontier: &mut Vec<Option<Hash>>, size: u64, leaf: Hash) -> Vec<(u32, u64, Hash)> {
    let mut made = vec![(0, size, leaf)];
    let mut carry = leaf;
    let mut level = 0usize;
    let after = size + 1;
    loop {
        if frontier.len() == level {
            frontier.push(None);
        }
        match frontier[level].take() {
            Some(left) => {
                carry = merkle::node_hash(&left, &carry);
                level += 1;
                made.push((level as u32, (after >> level) - 1, carry));
            }
            None => {
                frontier[level] = Some(carry);
                break;
            }
        }
    }
    made
}

async fn head(tx: &mut Transaction<'static, Any>) -> Result<Head, StoreError> {
    let lock = if tx.backend_name() == "PostgreSQL" {
        " FOR UPDATE"
    } else {
        ""
    };
    let (size, hash, built, frontier): (i64, String, i64, String) = sqlx::query_as(&format!(
        "SELECT seq, hash, built, frontier FROM audit_head WHERE id = 1{lock}"
    ))
    .fetch_one(&mut **tx)
    .await?;
    Ok(Head {
        size,
        hash,
        built,
        frontier: parse_frontier(&frontier, built)?,
    })
}

/// An event's fields as read back for the log.
struct Stored {
    id: i64,
    request_id: String,
    at: i64,
    actor: String,
    action: String,
    from: Option<String>,
    to: Option<String>,
    system: Option<String>,
    reason: Option<Vec<u8>>,
    digest: Option<String>,
}

impl Stored {
    fn from_row(r: &sqlx::any::AnyRow) -> Result<Stored, sqlx::Error> {
        Ok(Stored {
            id: r.try_get("id")?,
            request_id: r.try_get("request_id")?,
            at: r.try_get("at")?,
            actor: r.try_get("actor")?,
            action: r.try_get("action")?,
            from: r.try_get("from_state")?,
            to: r.try_get("to_state")?,
            system: r.try_get("system")?,
            reason: r.try_get("reason_sealed")?,
            digest: r.try_get("digest")?,
        })
    }

    fn fields(&self) -> Fields<'_> {
        Fields {
            request_id: &self.request_id,
            at: self.at,
            actor: &self.actor,
            action: &self.action,
            from: self.from.as_deref(),
            to: self.to.as_deref(),
            system: self.system.as_deref(),
            reason_sealed: self.reason.as_deref(),
        }
    }

    fn leaf(&self) -> Hash {
        merkle::leaf_hash(&leaf_bytes(&self.fields(), self.digest.as_deref()))
    }
}

const COLUMNS: &str =
    "id, request_id, at, actor, action, from_state, to_state, system, reason_sealed, digest";

/// What one [`integrate`] did: the places it gave (`from..to`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Integrated {
    /// The log's size before.
    pub from: i64,
    /// The log's size after.
    pub to: i64,
}

/// Give up to `limit` waiting events their place, link and leaf, in the
/// caller's transaction (which must be the sequencer's, or SQLite's single
/// writer). Older stores' chained events get their tree nodes first.
pub async fn integrate(
    tx: &mut Transaction<'static, Any>,
    limit: i64,
) -> Result<Integrated, StoreError> {
    let mut h = head(tx).await?;
    let from = h.size;
    let mut nodes: Vec<(u32, u64, Hash)> = Vec::new();
    let mut budget = limit;
    if h.built < h.size {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM events WHERE leaf >= $1 AND leaf < $2 ORDER BY leaf LIMIT $3"
        ))
        .bind(h.built)
        .bind(h.size)
        .bind(budget)
        .fetch_all(&mut **tx)
        .await?;
        for r in &rows {
            let e = Stored::from_row(r)?;
            nodes.extend(push(&mut h.frontier, h.built as u64, e.leaf()));
            h.built += 1;
        }
        budget -= rows.len() as i64;
    }
    if h.built == h.size && budget > 0 {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM events WHERE leaf IS NULL ORDER BY id LIMIT $1"
        ))
        .bind(budget)
        .fetch_all(&mut **tx)
        .await?;
        for r in &rows {
            let e = Stored::from_row(r)?;
            let hash = link(&h.hash, &e.fields());
            let placed = sqlx::query(
                "UPDATE events SET leaf = $1, prev_hash = $2, hash = $3 WHERE id = $4 AND leaf IS NULL",
            )
            .bind(h.size)
            .bind(&h.hash)
            .bind(&hash)
            .bind(e.id)
            .execute(&mut **tx)
            .await?;
            if placed.rows_affected() != 1 {
                return Err(StoreError::Conflict(
                    "another sequencer placed this event".into(),
                ));
            }
            nodes.extend(push(&mut h.frontier, h.size as u64, e.leaf()));
            h.hash = hash;
            h.size += 1;
            h.built += 1;
        }
    }
    if h.size == from && nodes.is_empty() {
        return Ok(Integrated { from, to: from });
    }
    for chunk in nodes.chunks(300) {
        let marks: Vec<String> = (0..chunk.len())
            .map(|i| format!("(${}, ${}, ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3))
            .collect();
        let sql = format!(
            "INSERT INTO audit_nodes (level, idx, hash) VALUES {}",
            marks.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for (level, idx, hash) in chunk {
            q = q
                .bind(*level as i64)
                .bind(*idx as i64)
                .bind(hex::encode(hash));
        }
        q.execute(&mut **tx).await?;
    }
    sqlx::query(
        "UPDATE audit_head SET seq = $1, hash = $2, built = $3, frontier = $4 WHERE id = 1",
    )
    .bind(h.size)
    .bind(&h.hash)
    .bind(h.built)
    .bind(frontier_text(&h.frontier))
    .execute(&mut **tx)
    .await?;
    Ok(Integrated { from, to: h.size })
}

/// Take (or keep) a lease for `ttl_ms`: the token while `holder` holds
/// it, `None` while another holder's lease runs.
pub async fn take_lease(
    store: &Store,
    name: &str,
    holder: &str,
    ttl_ms: i64,
) -> Result<Option<i64>, StoreError> {
    let now = store.now();
    let mut tx = store.write().await?;
    let row: Option<(String, i64, i64)> =
        sqlx::query_as("SELECT holder, token, expires_at FROM leases WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
    let token = match row {
        None => {
            let done = sqlx::query(
                "INSERT INTO leases (name, holder, token, expires_at) VALUES ($1, $2, 1, $3) ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .bind(holder)
            .bind(now + ttl_ms)
            .execute(&mut *tx)
            .await?;
            (done.rows_affected() == 1).then_some(1)
        }
        Some((h, token, _)) if h == holder => {
            sqlx::query("UPDATE leases SET expires_at = $1 WHERE name = $2 AND token = $3")
                .bind(now + ttl_ms)
                .bind(name)
                .bind(token)
                .execute(&mut *tx)
                .await?;
            Some(token)
        }
        Some((_, token, expires)) if expires <= now => {
            let done = sqlx::query(
                "UPDATE leases SET holder = $1, token = $2, expires_at = $3 WHERE name = $4 AND token = $5",
            )
            .bind(holder)
            .bind(token + 1)
            .bind(now + ttl_ms)
            .bind(name)
            .bind(token)
            .execute(&mut *tx)
            .await?;
            (done.rows_affected() == 1).then_some(token + 1)
        }
        Some(_) => None,
    };
    super::commit(tx).await?;
    Ok(token)
}

/// Give up a lease now (a process that stops), so another takes it at
/// once instead of when it runs out.
pub async fn release_lease(
    store: &Store,
    name: &str,
    holder: &str,
    token: i64,
) -> Result<(), StoreError> {
    let mut tx = store.write().await?;
    sqlx::query("UPDATE leases SET expires_at = 0 WHERE name = $1 AND holder = $2 AND token = $3")
        .bind(name)
        .bind(holder)
        .bind(token)
        .execute(&mut *tx)
        .await?;
    super::commit(tx).await
}

/// One batch of the sequencer's work as `holder` with lease `token`: the
/// lease is renewed in the batch's own transaction and the batch commits
/// only if the token still holds. `None` when the lease is lost.
pub async fn sequence(
    store: &Store,
    holder: &str,
    token: i64,
    ttl_ms: i64,
    batch: i64,
) -> Result<Option<Integrated>, StoreError> {
    let now = store.now();
    let mut tx = store.write().await?;
    let fenced = sqlx::query(
        "UPDATE leases SET expires_at = $1 WHERE name = $2 AND holder = $3 AND token = $4 AND expires_at > $5",
    )
    .bind(now + ttl_ms)
    .bind(SEQUENCER)
    .bind(holder)
    .bind(token)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    if fenced.rows_affected() != 1 {
        return Ok(None);
    }
    let done = integrate(&mut tx, batch).await?;
    super::commit(tx).await?;
    Ok(Some(done))
}

/// [`sequence`] until nothing waits: the events placed, or `None` once
/// the lease is lost.
pub async fn sequence_all(
    store: &Store,
    holder: &str,
    token: i64,
    ttl_ms: i64,
    batch: i64,
) -> Result<Option<i64>, StoreError> {
    let mut placed = 0;
    loop {
        match sequence(store, holder, token, ttl_ms, batch).await? {
            None => return Ok(None),
            Some(done) if done.to == done.from => return Ok(Some(placed)),
            Some(done) => placed += done.to - done.from,
        }
    }
}

/// The log's size and the chain's last hash.
pub async fn size(pool: &AnyPool) -> Result<(i64, String), StoreError> {
    Ok(
        sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_one(pool)
            .await?,
    )
}

/// Whether the sequencer has work: events waiting for a place, or older
/// events whose tree nodes are not built yet.
pub async fn behind(pool: &AnyPool) -> Result<bool, StoreError> {
    let (size, built): (i64, i64) =
        sqlx::query_as("SELECT seq, built FROM audit_head WHERE id = 1")
            .fetch_one(pool)
            .await?;
    if built < size {
        return Ok(true);
    }
    let waiting: Option<i64> =
        sqlx::query_scalar("SELECT id FROM events WHERE leaf IS NULL LIMIT 1")
            .fetch_optional(pool)
            .await?;
    Ok(waiting.is_some())
}

pub use super::audit::waiting;

/// The oldest waiting event's time (ms), if any: how far the sequencer
/// lags.
pub async fn oldest_waiting(pool: &AnyPool) -> Result<Option<i64>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT MIN(at) FROM events WHERE leaf IS NULL")
            .fetch_one(pool)
            .await?,
    )
}

/// The complete subtrees a computation needs, found by running it once
/// over placeholders (which subtrees it reads depends on sizes only).
#[derive(Default)]
struct Wanted(Vec<(u32, u64)>);

impl Nodes for Wanted {
    type Error = StoreError;
    fn node(&mut self, level: u32, index: u64) -> Result<Hash, StoreError> {
        self.0.push((level, index));
        Ok([0; 32])
    }
}

/// Subtrees read from the store.
struct Loaded(HashMap<(u32, u64), Hash>);

impl Nodes for Loaded {
    type Error = StoreError;
    fn node(&mut self, level: u32, index: u64) -> Result<Hash, StoreError> {
        self.0
            .get(&(level, index))
            .copied()
            .ok_or(StoreError::Corrupt("audit subtree"))
    }
}

async fn load(pool: &AnyPool, wanted: &[(u32, u64)]) -> Result<Loaded, StoreError> {
    let mut map = HashMap::new();
    for chunk in wanted.chunks(100) {
        let cond: Vec<String> = (0..chunk.len())
            .map(|i| format!("(level = ${} AND idx = ${})", 2 * i + 1, 2 * i + 2))
            .collect();
        let sql = format!(
            "SELECT level, idx, hash FROM audit_nodes WHERE {}",
            cond.join(" OR ")
        );
        let mut q = sqlx::query_as::<_, (i64, i64, String)>(&sql);
        for (l, i) in chunk {
            q = q.bind(*l as i64).bind(*i as i64);
        }
        for (l, i, h) in q.fetch_all(pool).await? {
            map.insert((l as u32, i as u64), unhex(&h)?);
        }
    }
    Ok(Loaded(map))
}

/// Run a tree computation against the stored subtrees: once over
/// placeholders to learn which it reads, then over those, read at once.
async fn with_nodes<T>(
    pool: &AnyPool,
    f: impl Fn(&mut dyn Nodes<Error = StoreError>) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let mut wanted = Wanted::default();
    f(&mut wanted)?;
    let mut loaded = load(pool, &wanted.0).await?;
    f(&mut loaded)
}

/// The tree's root over its first `size` leaves.
pub async fn root(pool: &AnyPool, size: i64) -> Result<Hash, StoreError> {
    with_nodes(pool, |n| merkle::root(n, size as u64)).await
}

/// The inclusion proof of leaf `index` in the tree of `size` leaves.
pub async fn inclusion(pool: &AnyPool, index: i64, size: i64) -> Result<Vec<Hash>, StoreError> {
    with_nodes(pool, |n| merkle::inclusion(n, index as u64, size as u64)).await
}

/// The consistency proof from the tree of `old` leaves to that of `new`.
pub async fn consistency(pool: &AnyPool, old: i64, new: i64) -> Result<Vec<Hash>, StoreError> {
    with_nodes(pool, |n| merkle::consistency(n, old as u64, new as u64)).await
}

/// One event as the log holds it: its place, its leaf's fields and hash.
#[derive(Debug, Clone)]
pub struct Leaf {
    /// The event's id.
    pub id: i64,
    /// Its place (`None`: waiting for the sequencer).
    pub leaf: Option<i64>,
    /// The fields its leaf hash covers.
    pub event: LeafEvent,
    /// The leaf's hash (RFC 9162), hex.
    pub leaf_hash: String,
}

async fn leaves_where(
    pool: &AnyPool,
    condition: &str,
    bind: Option<&str>,
    id: Option<i64>,
) -> Result<Vec<Leaf>, StoreError> {
    let sql = format!("SELECT {COLUMNS}, leaf FROM events WHERE {condition} ORDER BY id");
    let mut q = sqlx::query(&sql);
    if let Some(b) = bind {
        q = q.bind(b);
    }
    if let Some(i) = id {
        q = q.bind(i);
    }
    q.fetch_all(pool)
        .await?
        .iter()
        .map(|r| {
            let e = Stored::from_row(r)?;
            let leaf: Option<i64> = r.try_get("leaf")?;
            Ok(Leaf {
                leaf_hash: hex::encode(e.leaf()),
                id: e.id,
                leaf: leaf.filter(|l| *l >= 0),
                event: LeafEvent {
                    reason_sha256: e.reason.as_deref().map(|b| hex::encode(Sha256::digest(b))),
                    request_id: e.request_id,
                    at: e.at,
                    actor: e.actor,
                    action: e.action,
                    from: e.from,
                    to: e.to,
                    system: e.system,
                    digest: e.digest,
                },
            })
        })
        .collect()
}

/// A request's events as leaves, oldest first.
pub async fn leaves_of(pool: &AnyPool, request_id: &str) -> Result<Vec<Leaf>, StoreError> {
    leaves_where(pool, "request_id = $1", Some(request_id), None).await
}

/// One event as a leaf.
pub async fn leaf_of(pool: &AnyPool, id: i64) -> Result<Option<Leaf>, StoreError> {
    Ok(leaves_where(pool, "id = $1", None, Some(id))
        .await?
        .into_iter()
        .next())
}

/// Every placed event's leaf hash and stored chain link, in log order,
/// with the subtrees the store keeps: what `audit verify` recomputes.
pub struct Whole {
    /// `(event id, place, recomputed leaf hash)`, in log order.
    pub leaves: Vec<(i64, i64, Hash)>,
    /// The subtrees as stored.
    pub stored: HashMap<(u32, u64), Hash>,
}

/// Read the whole log for a check.
pub async fn whole(pool: &AnyPool) -> Result<Whole, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS}, leaf FROM events WHERE leaf >= 0 ORDER BY leaf"
    ))
    .fetch_all(pool)
    .await?;
    let mut leaves = Vec::with_capacity(rows.len());
    for r in &rows {
        let e = Stored::from_row(r)?;
        let place: i64 = r.try_get("leaf")?;
        leaves.push((e.id, place, e.leaf()));
    }
    let mut stored = HashMap::new();
    for (l, i, h) in
        sqlx::query_as::<_, (i64, i64, String)>("SELECT level, idx, hash FROM audit_nodes")
            .fetch_all(pool)
            .await?
    {
        stored.insert((l as u32, i as u64), unhex(&h)?);
    }
    Ok(Whole { leaves, stored })
}

/// Keep a signed tree head (once per size): true if it is new.
pub async fn insert_tree_head(
    tx: &mut Transaction<'static, Any>,
    head: &TreeHead,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "INSERT INTO tree_heads (size, root, signed_at, key_id, signature) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (size) DO NOTHING",
    )
    .bind(head.size)
    .bind(&head.root)
    .bind(head.signed_at)
    .bind(&head.key_id)
    .bind(&head.signature)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// A row of `tree_heads`: size, root, signed_at, key_id, signature.
type HeadRow = (i64, String, i64, String, String);

fn head_of((size, root, signed_at, key_id, signature): HeadRow) -> TreeHead {
    TreeHead {
        size,
        root,
        signed_at,
        key_id,
        signature,
    }
}

/// The signed tree heads over more than `since` events, smallest first.
pub async fn tree_heads(pool: &AnyPool, since: i64) -> Result<Vec<TreeHead>, StoreError> {
    Ok(sqlx::query_as::<_, HeadRow>(
        "SELECT size, root, signed_at, key_id, signature FROM tree_heads WHERE size > $1 ORDER BY size",
    )
    .bind(since)
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(head_of)
    .collect())
}

/// The smallest signed tree head that holds event place `leaf`.
pub async fn head_holding(pool: &AnyPool, leaf: i64) -> Result<Option<TreeHead>, StoreError> {
    Ok(sqlx::query_as::<_, HeadRow>(
        "SELECT size, root, signed_at, key_id, signature FROM tree_heads WHERE size > $1 ORDER BY size LIMIT 1",
    )
    .bind(leaf)
    .fetch_optional(pool)
    .await?
    .map(head_of))
}

/// The `n` largest signed tree heads, largest first.
pub async fn latest_tree_heads(pool: &AnyPool, n: i64) -> Result<Vec<TreeHead>, StoreError> {
    Ok(sqlx::query_as::<_, HeadRow>(
        "SELECT size, root, signed_at, key_id, signature FROM tree_heads ORDER BY size DESC LIMIT $1",
    )
    .bind(n)
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(head_of)
    .collect())
}

/// Thin the stored signed tree heads: of those signed before `before`
/// (ms), keep the first of each `bucket_ms` period (by `signed_at`) and
/// delete the rest; the largest head is always kept. Heads are evidence
/// only of what they sign, and the tree's stored subtrees prove any size
/// against any other, so a thinned head loses no proof: certificates
/// carry their own head, and a witness keeps its own copies. Returns how
/// many were deleted.
pub async fn thin_tree_heads(
    tx: &mut Transaction<'static, Any>,
    before: i64,
    bucket_ms: i64,
) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "DELETE FROM tree_heads WHERE signed_at < $1 \
         AND size < (SELECT MAX(size) FROM tree_heads) \
         AND size NOT IN (SELECT MIN(size) FROM tree_heads WHERE signed_at < $1 GROUP BY signed_at / $2)",
    )
    .bind(before)
    .bind(bucket_ms.max(1))
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frontier_builds_the_same_tree_as_memory() {
        let mut frontier = Vec::new();
        let mut memory = merkle::Memory::default();
        let mut all = HashMap::new();
        for i in 0..37u64 {
            let leaf = merkle::leaf_hash(&i.to_be_bytes());
            for (l, idx, h) in push(&mut frontier, i, leaf) {
                all.insert((l, idx), h);
            }
            memory.push(leaf);
            let text = frontier_text(&frontier);
            assert_eq!(parse_frontier(&text, i as i64 + 1).unwrap(), {
                let mut f = frontier.clone();
                while f.last() == Some(&None) {
                    f.pop();
                }
                f
            });
        }
        for (l, row) in memory.levels.iter().enumerate() {
            for (i, h) in row.iter().enumerate() {
                assert_eq!(all.get(&(l as u32, i as u64)), Some(h), "{l}/{i}");
            }
        }
        assert_eq!(all.len(), memory.levels.iter().map(Vec::len).sum::<usize>());
    }
}
