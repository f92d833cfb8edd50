//! The restriction registry: restrictions (Art. 18), objections (Art. 21)
//! and consent withdrawals kept by the host, by blind index and scope, so
//! that "may we process (call, email, profile) this person?" is answered
//! without calling any system.

use super::StoreError;
use sqlx::{Any, AnyPool, Transaction};

/// One active restriction.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Restriction {
    /// The blind index of the identifier it applies to.
    pub hash: String,
    /// What is restricted: `all`, a data category or a purpose
    /// (`direct-marketing`, `profiling`).
    pub scope: String,
    /// The request that set it.
    pub request_id: String,
    /// Since when.
    pub created_at: i64,
}

/// Record restrictions for each of `hashes` and each of `scopes`.
pub async fn add(
    tx: &mut Transaction<'static, Any>,
    hashes: &[String],
    scopes: &[String],
    request_id: &str,
    now: i64,
) -> Result<(), StoreError> {
    for hash in hashes {
        for scope in scopes {
            sqlx::query(
                "INSERT INTO restrictions (hash, scope, request_id, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(hash)
            .bind(scope)
            .bind(request_id)
            .bind(now)
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}

/// Lift the restrictions a request set; returns how many.
pub async fn lift(
    tx: &mut Transaction<'static, Any>,
    request_id: &str,
    now: i64,
) -> Result<u64, StoreError> {
    Ok(sqlx::query(
        "UPDATE restrictions SET lifted_at = $1 WHERE request_id = $2 AND lifted_at IS NULL",
    )
    .bind(now)
    .bind(request_id)
    .execute(&mut **tx)
    .await?
    .rows_affected())
}

/// Forget the restrictions a request set that are no longer in force (a
/// shredded request's blind indexes go with it; one still in force stays,
/// since the registry must go on answering "restricted"). Returns how many.
pub async fn forget_lifted(
    tx: &mut Transaction<'static, Any>,
    request_id: &str,
) -> Result<u64, StoreError> {
    Ok(
        sqlx::query("DELETE FROM restrictions WHERE request_id = $1 AND lifted_at IS NOT NULL")
            .bind(request_id)
            .execute(&mut **tx)
            .await?
            .rows_affected(),
    )
}

/// Every active restriction (to build an in-memory index).
pub async fn active(pool: &AnyPool) -> Result<Vec<Restriction>, StoreError> {
    let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT hash, scope, request_id, created_at FROM restrictions WHERE lifted_at IS NULL ORDER BY id",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(hash, scope, request_id, created_at)| Restriction {
            hash,
            scope,
            request_id,
            created_at,
        })
        .collect())
}

/// The active restrictions on any of `hashes`.
pub async fn on(pool: &AnyPool, hashes: &[String]) -> Result<Vec<Restriction>, StoreError> {
    let mut out = Vec::new();
    for hash in hashes {
        let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
            "SELECT hash, scope, request_id, created_at FROM restrictions WHERE hash = $1 AND lifted_at IS NULL ORDER BY id",
        )
        .bind(hash)
        .fetch_all(pool)
        .await?;
        out.extend(
            rows.into_iter()
                .map(|(hash, scope, request_id, created_at)| Restriction {
                    hash,
                    scope,
                    request_id,
                    created_at,
                }),
        );
    }
    Ok(out)
}
