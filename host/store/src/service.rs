//! What the service face keeps: API tokens (their hash only), idempotency
//! keys of requests filed through the API, signed audit heads, and each
//! webhook's position in the event log.

use super::StoreError;
use oubli_model::evidence::{LogEvent, SignedHead, TokenInfo};
use sqlx::any::AnyRow;
use sqlx::{Any, AnyPool, Row, Transaction};

fn token_row(r: &AnyRow) -> Result<TokenInfo, StoreError> {
    Ok(TokenInfo {
        id: r.try_get("id")?,
        hash: r.try_get("hash")?,
        role: r.try_get("role")?,
        name: r.try_get("name")?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

const TOKEN_COLUMNS: &str = "id, hash, role, name, created_by, created_at, expires_at, revoked_at";

/// Keep a new token.
pub async fn insert_token(
    tx: &mut Transaction<'static, Any>,
    row: &TokenInfo,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO api_tokens (id, hash, role, name, created_by, created_at, expires_at, revoked_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&row.id)
    .bind(&row.hash)
    .bind(&row.role)
    .bind(&row.name)
    .bind(&row.created_by)
    .bind(row.created_at)
    .bind(row.expires_at)
    .bind(row.revoked_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Every token, oldest first.
pub async fn tokens(pool: &AnyPool) -> Result<Vec<TokenInfo>, StoreError> {
    sqlx::query(&format!(
        "SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY created_at, id"
    ))
    .fetch_all(pool)
    .await?
    .iter()
    .map(token_row)
    .collect()
}

/// One token by id.
pub async fn token(pool: &AnyPool, id: &str) -> Result<Option<TokenInfo>, StoreError> {
    sqlx::query(&format!(
        "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?
    .as_ref()
    .map(token_row)
    .transpose()
}

/// Revoke a token; false if there is no such token or it was revoked.
pub async fn revoke_token(
    tx: &mut Transaction<'static, Any>,
    id: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let done =
        sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(&mut **tx)
            .await?;
    Ok(done.rows_affected() > 0)
}

/// The request an idempotency key filed, and the SHA-256 of the body it
/// was filed with.
pub async fn idempotent(
    tx: &mut Transaction<'static, Any>,
    key_hash: &str,
) -> Result<Option<(String, String)>, StoreError> {
    Ok(
        sqlx::query_as("SELECT request_id, body_sha256 FROM idempotency_keys WHERE key_hash = $1")
            .bind(key_hash)
            .fetch_optional(&mut **tx)
            .await?,
    )
}

/// Remember which request an idempotency key filed.
pub async fn remember_idempotent(
    tx: &mut Transaction<'static, Any>,
    key_hash: &str,
    request_id: &str,
    body_sha256: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO idempotency_keys (key_hash, request_id, body_sha256, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(key_hash)
    .bind(request_id)
    .bind(body_sha256)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Every signed head, shortest chain first.
pub async fn signed_heads(pool: &AnyPool) -> Result<Vec<SignedHead>, StoreError> {
    Ok(sqlx::query_as::<_, (i64, String, i64, String, String)>(
        "SELECT seq, hash, signed_at, key_id, signature FROM audit_signatures ORDER BY seq",
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|(seq, hash, signed_at, key_id, signature)| SignedHead {
        seq,
        hash,
        signed_at,
        key_id,
        signature,
    })
    .collect())
}

/// Up to `limit` events of the log from place `after` on (the first
/// `after` events skipped), in the log's order.
pub async fn events_after(
    pool: &AnyPool,
    after: i64,
    limit: i64,
) -> Result<Vec<LogEvent>, StoreError> {
    sqlx::query(
        "SELECT id, leaf, request_id, at, actor, action, from_state, to_state, system, reason_sealed, digest, prev_hash, hash \
         FROM events WHERE leaf >= $1 ORDER BY leaf LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| {
        let reason: Option<Vec<u8>> = r.try_get("reason_sealed")?;
        Ok(LogEvent {
            id: r.try_get("id")?,
            leaf: r.try_get("leaf")?,
            digest: r.try_get("digest")?,
            request_id: r.try_get("request_id")?,
            at: r.try_get("at")?,
            actor: r.try_get("actor")?,
            action: r.try_get("action")?,
            from: r.try_get("from_state")?,
            to: r.try_get("to_state")?,
            system: r.try_get("system")?,
            reason_sealed: reason.map(hex::encode),
            subject: Vec::new(),
            prev_hash: r.try_get("prev_hash")?,
            hash: r.try_get("hash")?,
        })
    })
    .collect()
}

/// Fill in each event's subject from the blind index.
pub async fn with_subjects(
    pool: &AnyPool,
    mut events: Vec<LogEvent>,
) -> Result<Vec<LogEvent>, StoreError> {
    let mut ids: Vec<&str> = events.iter().map(|e| e.request_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut by_request: std::collections::HashMap<String, Vec<String>> = Default::default();
    for chunk in ids.chunks(200) {
        let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT request_id, hash FROM subject_index WHERE request_id IN ({}) ORDER BY hash",
            marks.join(", ")
        );
        let mut q = sqlx::query_as::<_, (String, String)>(&sql);
        for id in chunk {
            q = q.bind(*id);
        }
        for (request, hash) in q.fetch_all(pool).await? {
            by_request.entry(request).or_default().push(hash);
        }
    }
    for e in &mut events {
        if let Some(h) = by_request.get(&e.request_id) {
            e.subject = h.clone();
        }
    }
    Ok(events)
}

/// The hash stored for the event that is `seq`-th in the chain (1-based),
/// if the chain is that long.
pub async fn chain_hash_at(pool: &AnyPool, seq: i64) -> Result<Option<String>, StoreError> {
    if seq < 1 {
        return Ok(None);
    }
    Ok(
        sqlx::query_scalar("SELECT hash FROM events WHERE leaf = $1")
            .bind(seq - 1)
            .fetch_optional(pool)
            .await?,
    )
}

/// Requests by state.
pub async fn requests_by_state(pool: &AnyPool) -> Result<Vec<(String, i64)>, StoreError> {
    Ok(
        sqlx::query_as("SELECT state, COUNT(*) FROM requests GROUP BY state ORDER BY state")
            .fetch_all(pool)
            .await?,
    )
}

/// Requests past due and not over.
pub async fn overdue(pool: &AnyPool, now: i64) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM requests WHERE due_at < $1 AND state NOT IN ('completed', 'partially-completed', 'failed', 'rejected', 'cancelled')",
    )
    .bind(now)
    .fetch_one(pool)
    .await?)
}

/// Where a webhook stands in the event log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Cursor {
    /// The webhook's name.
    pub name: String,
    /// Events of the log handled so far (delivered, or skipped: not a state
    /// change): delivery goes on from this place.
    pub last_event_id: i64,
    /// The size of the last signed tree head delivered.
    pub last_head: i64,
    /// Failed deliveries in a row.
    pub failures: i64,
    /// When to try next (ms since the epoch).
    pub next_at: i64,
    /// The last error.
    pub last_error: Option<String>,
}

/// A webhook's cursor; a new webhook starts at the end of the log (it is
/// told about what happens from now on, not the past).
pub async fn cursor(pool: &AnyPool, name: &str, now: i64) -> Result<Cursor, StoreError> {
    let row: Option<(i64, i64, i64, Option<String>, i64)> = sqlx::query_as(
        "SELECT last_event_id, failures, next_at, last_error, last_head FROM webhook_cursors WHERE name = $1",
    )
    .bind(name)
    .fetch_optional(pool)
    .await?;
    if let Some((last_event_id, failures, next_at, last_error, last_head)) = row {
        return Ok(Cursor {
            name: name.to_string(),
            last_event_id,
            last_head,
            failures,
            next_at,
            last_error,
        });
    }
    let (end, _) = super::log::size(pool).await?;
    let last_head: Option<i64> = sqlx::query_scalar("SELECT MAX(size) FROM tree_heads")
        .fetch_one(pool)
        .await?;
    let cursor = Cursor {
        name: name.to_string(),
        last_event_id: end,
        last_head: last_head.unwrap_or(0),
        failures: 0,
        next_at: 0,
        last_error: None,
    };
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO webhook_cursors (name, last_event_id, failures, next_at, updated_at, last_head) VALUES ($1, $2, 0, 0, $3, $4) \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(cursor.last_event_id)
    .bind(now)
    .bind(cursor.last_head)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(cursor)
}

/// Move a webhook's cursor (after a delivery, or a failure).
pub async fn set_cursor(pool: &AnyPool, c: &Cursor, now: i64) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE webhook_cursors SET last_event_id = $1, failures = $2, next_at = $3, last_error = $4, updated_at = $5, last_head = $6 WHERE name = $7",
    )
    .bind(c.last_event_id)
    .bind(c.failures)
    .bind(c.next_at)
    .bind(&c.last_error)
    .bind(now)
    .bind(c.last_head)
    .bind(&c.name)
    .execute(pool)
    .await?;
    Ok(())
}

/// A request's signed certificate: the exact signed bytes and the
/// signature (hex).
pub async fn certificate(
    pool: &AnyPool,
    request_id: &str,
) -> Result<Option<(String, String)>, StoreError> {
    Ok(
        sqlx::query_as("SELECT document, signature FROM certificates WHERE request_id = $1")
            .bind(request_id)
            .fetch_optional(pool)
            .await?,
    )
}

/// Keep a request's certificate (the first one issued stays).
pub async fn insert_certificate(
    tx: &mut Transaction<'static, Any>,
    request_id: &str,
    document: &str,
    signature: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "INSERT INTO certificates (request_id, document, signature, issued_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (request_id) DO NOTHING",
    )
    .bind(request_id)
    .bind(document)
    .bind(signature)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Requests not over whose deadline falls in `[from, to)`.
pub async fn due_between(pool: &AnyPool, from: i64, to: i64) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM requests WHERE due_at >= $1 AND due_at < $2 AND state NOT IN ('completed', 'partially-completed', 'failed', 'rejected', 'cancelled')",
    )
    .bind(from)
    .bind(to)
    .fetch_one(pool)
    .await?)
}

/// How long each request that ended since `since` took, from receipt to its
/// end (ms), shortest first.
pub async fn completion_times(pool: &AnyPool, since: i64) -> Result<Vec<i64>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT finalized_at - received_at AS took FROM requests WHERE finalized_at IS NOT NULL AND finalized_at >= $1 AND state IN ('completed', 'partially-completed') ORDER BY took",
    )
    .bind(since)
    .fetch_all(pool)
    .await?)
}

/// Per system, the request systems that moved since `since`: how many, and
/// how many of them failed, need attention or were unavailable.
pub async fn system_outcomes(
    pool: &AnyPool,
    since: i64,
) -> Result<Vec<(String, i64, i64)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT system, COUNT(*), SUM(CASE WHEN state IN ('failed', 'needs-attention', 'locate-failed', 'unavailable') THEN 1 ELSE 0 END) FROM request_systems WHERE updated_at >= $1 GROUP BY system ORDER BY system",
    )
    .bind(since)
    .fetch_all(pool)
    .await?)
}
