//! Kept answers: the ZIP of an access or portability request, assembled
//! once when the request completes and stored in sealed pieces, so that
//! every fetch gives the same answer whatever the systems hold since.
//!
//! Pieces are written outside any long transaction, each under the attempt
//! that writes it; [`keep`] names the attempt that finished, in the same
//! transaction as the task's end, and drops every other attempt's pieces.

use super::{Store, StoreError};
use sqlx::{Any, AnyPool, Row, Transaction};

/// A kept answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerRow {
    /// The attempt whose pieces it is.
    pub attempt: String,
    /// SHA-256 of the whole ZIP, hex.
    pub sha256: String,
    /// Its length in bytes.
    pub len: i64,
    /// Its pieces.
    pub chunks: i64,
    /// What it holds (sealed JSON).
    pub summary_sealed: Vec<u8>,
    /// When it was kept.
    pub kept_at: i64,
    /// When it was removed (its keeping period ended), if it was.
    pub removed_at: Option<i64>,
}

/// Store one sealed piece (its own short transaction).
pub async fn put_chunk(
    store: &Store,
    request_id: &str,
    attempt: &str,
    seq: i64,
    sealed: &[u8],
) -> Result<(), StoreError> {
    let mut tx = store.write().await?;
    sqlx::query(
        "INSERT INTO answer_chunks (request_id, attempt, seq, chunk) VALUES ($1, $2, $3, $4)",
    )
    .bind(request_id)
    .bind(attempt)
    .bind(seq)
    .bind(sealed.to_vec())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// One sealed piece.
pub async fn chunk(
    pool: &AnyPool,
    request_id: &str,
    attempt: &str,
    seq: i64,
) -> Result<Vec<u8>, StoreError> {
    sqlx::query_scalar(
        "SELECT chunk FROM answer_chunks WHERE request_id = $1 AND attempt = $2 AND seq = $3",
    )
    .bind(request_id)
    .bind(attempt)
    .bind(seq)
    .fetch_optional(pool)
    .await?
    .ok_or(StoreError::Corrupt("a piece of a kept answer is missing"))
}

/// Keep the answer `attempt` wrote, and drop every other attempt's pieces.
/// False if an answer is kept already (another attempt finished first).
#[allow(clippy::too_many_arguments)]
pub async fn keep(
    tx: &mut Transaction<'static, Any>,
    request_id: &str,
    attempt: &str,
    sha256: &str,
    len: i64,
    chunks: i64,
    summary_sealed: &[u8],
    now: i64,
) -> Result<bool, StoreError> {
    let exists: Option<String> =
        sqlx::query_scalar("SELECT attempt FROM answers WHERE request_id = $1")
            .bind(request_id)
            .fetch_optional(&mut **tx)
            .await?;
    if exists.is_some() {
        drop_attempt(tx, request_id, attempt).await?;
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO answers (request_id, attempt, sha256, len, chunks, summary_sealed, kept_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(request_id)
    .bind(attempt)
    .bind(sha256)
    .bind(len)
    .bind(chunks)
    .bind(summary_sealed.to_vec())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    sqlx::query("DELETE FROM answer_chunks WHERE request_id = $1 AND attempt <> $2")
        .bind(request_id)
        .bind(attempt)
        .execute(&mut **tx)
        .await?;
    Ok(true)
}

/// Drop the pieces of one attempt.
pub async fn drop_attempt(
    tx: &mut Transaction<'static, Any>,
    request_id: &str,
    attempt: &str,
) -> Result<(), StoreError> {
    // Never the kept answer's own pieces, whoever asks (a batch written
    // again after a commit whose answer was lost finds its task finished).
    sqlx::query(
        "DELETE FROM answer_chunks WHERE request_id = $1 AND attempt = $2 \
         AND NOT EXISTS (SELECT 1 FROM answers WHERE request_id = $1 AND attempt = $2)",
    )
    .bind(request_id)
    .bind(attempt)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A request's kept answer, if any.
pub async fn get(pool: &AnyPool, request_id: &str) -> Result<Option<AnswerRow>, StoreError> {
    let row = sqlx::query(
        "SELECT attempt, sha256, len, chunks, summary_sealed, kept_at, removed_at FROM answers WHERE request_id = $1",
    )
    .bind(request_id)
    .fetch_optional(pool)
    .await?;
    row.map(|r| {
        Ok(AnswerRow {
            attempt: r.try_get("attempt")?,
            sha256: r.try_get("sha256")?,
            len: r.try_get("len")?,
            chunks: r.try_get("chunks")?,
            summary_sealed: r.try_get("summary_sealed")?,
            kept_at: r.try_get("kept_at")?,
            removed_at: r.try_get("removed_at")?,
        })
    })
    .transpose()
}

/// Remove a request's answer: its pieces go, the row says when. True if
/// it was there to remove.
pub async fn remove(
    tx: &mut Transaction<'static, Any>,
    request_id: &str,
    now: i64,
) -> Result<bool, StoreError> {
    sqlx::query("DELETE FROM answer_chunks WHERE request_id = $1")
        .bind(request_id)
        .execute(&mut **tx)
        .await?;
    let n = sqlx::query(
        "UPDATE answers SET removed_at = $1 WHERE request_id = $2 AND removed_at IS NULL",
    )
    .bind(now)
    .bind(request_id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(n > 0)
}

/// Answers kept since before `before` and not removed (at most `limit`).
pub async fn kept_before(
    pool: &AnyPool,
    before: i64,
    limit: i64,
) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT request_id FROM answers WHERE removed_at IS NULL AND kept_at < $1 ORDER BY kept_at LIMIT $2",
    )
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}
