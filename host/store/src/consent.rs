//! Consent evidence (Art. 7(1)): given and withdrawn, per purpose, with
//! its evidence sealed. Append-only: each entry's hash covers the one
//! before it and its own fields, and the head (count and last hash) moves
//! in the same transaction, so an edited, removed or cut-off entry is
//! found by [`verify`].

use super::StoreError;
use super::audit::{ChainCheck, put};
use oubli_model::evidence::Verified;
use sha2::{Digest, Sha256};
use sqlx::{Any, AnyPool, Row, Transaction};

/// One consent entry, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRow {
    /// Its id (order of recording).
    pub id: i64,
    /// The data key its evidence is sealed under (one per subject).
    pub key_id: String,
    /// The purpose (`marketing-calls`).
    pub purpose: String,
    /// `given` or `withdrawn`.
    pub action: String,
    /// The lawful basis (`consent`, `contract`, ...).
    pub lawful_basis: String,
    /// `call`, `ivr`, `email`, `web`.
    pub channel: String,
    /// The system the consent was captured in.
    pub source_system: Option<String>,
    /// The evidence (sealed JSON: identifiers, recording, notice, agent).
    pub evidence_sealed: Vec<u8>,
    /// When (ms since the epoch).
    pub at: i64,
    /// Who recorded it.
    pub recorded_by: String,
    /// The withdrawal request it filed, if any.
    pub request_id: Option<String>,
}

/// An entry's hash: SHA-256 over the previous hash and its fields.
pub fn link(prev: &str, r: &ConsentRow) -> String {
    let mut h = Sha256::new();
    h.update(b"oubli:consent:v1");
    put(&mut h, Some(prev.as_bytes()));
    put(&mut h, Some(r.key_id.as_bytes()));
    put(&mut h, Some(r.purpose.as_bytes()));
    put(&mut h, Some(r.action.as_bytes()));
    put(&mut h, Some(r.lawful_basis.as_bytes()));
    put(&mut h, Some(r.channel.as_bytes()));
    put(&mut h, r.source_system.as_deref().map(str::as_bytes));
    put(&mut h, Some(&r.evidence_sealed));
    put(&mut h, Some(&r.at.to_be_bytes()));
    put(&mut h, Some(r.recorded_by.as_bytes()));
    put(&mut h, r.request_id.as_deref().map(str::as_bytes));
    hex::encode(h.finalize())
}

/// Append an entry (and its blind indexes); returns its id.
pub async fn append(
    tx: &mut Transaction<'static, Any>,
    row: &ConsentRow,
    indexes: &[String],
) -> Result<i64, StoreError> {
    let (_, prev): (i64, String) =
        sqlx::query_as("UPDATE consent_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash")
            .fetch_one(&mut **tx)
            .await?;
    let hash = link(&prev, row);
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO consent_events (key_id, purpose, action, lawful_basis, channel, source_system, evidence_sealed, at, recorded_by, request_id, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
    )
    .bind(&row.key_id)
    .bind(&row.purpose)
    .bind(&row.action)
    .bind(&row.lawful_basis)
    .bind(&row.channel)
    .bind(&row.source_system)
    .bind(&row.evidence_sealed)
    .bind(row.at)
    .bind(&row.recorded_by)
    .bind(&row.request_id)
    .bind(&prev)
    .bind(&hash)
    .fetch_one(&mut **tx)
    .await?;
    sqlx::query("UPDATE consent_head SET hash = $1 WHERE id = 1")
        .bind(&hash)
        .execute(&mut **tx)
        .await?;
    for i in indexes {
        sqlx::query(
            "INSERT INTO consent_index (hash, consent_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(i)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    }
    Ok(id)
}

const COLUMNS: &str = "id, key_id, purpose, action, lawful_basis, channel, source_system, evidence_sealed, at, recorded_by, request_id";

fn row(r: &sqlx::any::AnyRow) -> Result<ConsentRow, StoreError> {
    Ok(ConsentRow {
        id: r.try_get("id")?,
        key_id: r.try_get("key_id")?,
        purpose: r.try_get("purpose")?,
        action: r.try_get("action")?,
        lawful_basis: r.try_get("lawful_basis")?,
        channel: r.try_get("channel")?,
        source_system: r.try_get("source_system")?,
        evidence_sealed: r.try_get("evidence_sealed")?,
        at: r.try_get("at")?,
        recorded_by: r.try_get("recorded_by")?,
        request_id: r.try_get("request_id")?,
    })
}

/// Every entry of a subject found through any of `indexes`, oldest first.
pub async fn history(pool: &AnyPool, indexes: &[String]) -> Result<Vec<ConsentRow>, StoreError> {
    if indexes.is_empty() {
        return Ok(Vec::new());
    }
    let marks: Vec<String> = (1..=indexes.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT {COLUMNS} FROM consent_events WHERE id IN (SELECT consent_id FROM consent_index WHERE hash IN ({})) ORDER BY id",
        marks.join(", ")
    );
    let mut q = sqlx::query(&sql);
    for i in indexes {
        q = q.bind(i);
    }
    q.fetch_all(pool).await?.iter().map(row).collect()
}

/// Recompute the consent chain, oldest entry first.
pub async fn verify(pool: &AnyPool) -> Result<Verified, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS}, prev_hash, hash FROM consent_events ORDER BY id"
    ))
    .fetch_all(pool)
    .await?;
    let mut check = ChainCheck::new("entry", "entries");
    for r in &rows {
        let entry = row(r)?;
        let prev_stored: String = r.try_get("prev_hash")?;
        let stored: String = r.try_get("hash")?;
        if !check.next(entry.id, Some(&prev_stored), Some(&stored), |prev| {
            link(prev, &entry)
        }) {
            break;
        }
    }
    let (seq, head): (i64, String) =
        sqlx::query_as("SELECT seq, hash FROM consent_head WHERE id = 1")
            .fetch_one(pool)
            .await?;
    Ok(check.finish(seq, &head))
}
