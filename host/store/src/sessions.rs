//! The operator console's sessions: who is signed in, by the SHA-256 of
//! their cookie's id, so every `serve` process on the store knows them and
//! a restart signs nobody out. No personal data of subjects; the actor is
//! an operator's name, as in the audit trail.

use super::{Store, StoreError};
use sqlx::Row;

/// A session as kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// SHA-256 of the cookie's id, hex.
    pub id_hash: String,
    /// Who: the name recorded for what they do.
    pub actor: String,
    /// Their role.
    pub role: String,
    /// The API token it was opened with, by id (checked at every page).
    pub token_id: Option<String>,
    /// The language of its pages.
    pub lang: String,
    /// When it was opened (ms).
    pub opened_at: i64,
    /// When it was last used (ms).
    pub seen_at: i64,
}

/// Keep a new session; sessions idle since before `idle_before` or opened
/// before `opened_before` go at the same time.
pub async fn open(
    store: &Store,
    row: &SessionRow,
    idle_before: i64,
    opened_before: i64,
) -> Result<(), StoreError> {
    let mut tx = store.write().await?;
    sqlx::query("DELETE FROM console_sessions WHERE seen_at < $1 OR opened_at < $2")
        .bind(idle_before)
        .bind(opened_before)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO console_sessions (id_hash, actor, role, token_id, lang, opened_at, seen_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&row.id_hash)
    .bind(&row.actor)
    .bind(&row.role)
    .bind(&row.token_id)
    .bind(&row.lang)
    .bind(row.opened_at)
    .bind(row.seen_at)
    .execute(&mut *tx)
    .await?;
    super::commit(tx).await
}

/// A session by its id's hash.
pub async fn get(store: &Store, id_hash: &str) -> Result<Option<SessionRow>, StoreError> {
    let row = sqlx::query(
        "SELECT id_hash, actor, role, token_id, lang, opened_at, seen_at FROM console_sessions WHERE id_hash = $1",
    )
    .bind(id_hash)
    .fetch_optional(store.pool())
    .await?;
    row.map(|r| {
        Ok(SessionRow {
            id_hash: r.try_get("id_hash")?,
            actor: r.try_get("actor")?,
            role: r.try_get("role")?,
            token_id: r.try_get("token_id")?,
            lang: r.try_get("lang")?,
            opened_at: r.try_get("opened_at")?,
            seen_at: r.try_get("seen_at")?,
        })
    })
    .transpose()
}

/// Mark a session used at `now` (and, for one opened with a token, the
/// token's holder and role as they are now).
pub async fn touch(
    store: &Store,
    id_hash: &str,
    actor: &str,
    role: &str,
    now: i64,
) -> Result<(), StoreError> {
    let mut tx = store.write().await?;
    sqlx::query(
        "UPDATE console_sessions SET seen_at = $1, actor = $2, role = $3 WHERE id_hash = $4",
    )
    .bind(now)
    .bind(actor)
    .bind(role)
    .bind(id_hash)
    .execute(&mut *tx)
    .await?;
    super::commit(tx).await
}

/// Change a session's language.
pub async fn set_lang(store: &Store, id_hash: &str, lang: &str) -> Result<(), StoreError> {
    let mut tx = store.write().await?;
    sqlx::query("UPDATE console_sessions SET lang = $1 WHERE id_hash = $2")
        .bind(lang)
        .bind(id_hash)
        .execute(&mut *tx)
        .await?;
    super::commit(tx).await
}

/// Forget a session; whether there was one.
pub async fn close(store: &Store, id_hash: &str) -> Result<bool, StoreError> {
    let mut tx = store.write().await?;
    let n = sqlx::query("DELETE FROM console_sessions WHERE id_hash = $1")
        .bind(id_hash)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    super::commit(tx).await?;
    Ok(n > 0)
}
