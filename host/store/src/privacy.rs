//! The privacy center's rows: challenges (a code sent to prove control of
//! an address), rate-limit counts, and status links. Handles and tokens
//! are kept as their SHA-256, codes as keyed hashes, addresses and clients
//! as keyed hashes: nothing here names a person.

use super::{StoreError, Tx};
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

/// A challenge as kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeRow {
    /// SHA-256 of its handle, hex.
    pub handle_hash: String,
    /// The request it files, or whose answer it opens.
    pub request_id: String,
    /// `file` or `download`.
    pub purpose: String,
    /// The request asked for (sealed), for `file`.
    pub draft_sealed: Option<Vec<u8>>,
    /// The code's keyed hash.
    pub code_mac: String,
    /// The language of its pages and mails.
    pub lang: String,
    /// When it was made (ms).
    pub created_at: i64,
    /// When its code stops working (ms).
    pub expires_at: i64,
    /// Wrong codes given.
    pub failures: i64,
    /// When its code was given right.
    pub used_at: Option<i64>,
    /// For `download`: until when the answer may be fetched.
    pub open_until: Option<i64>,
    /// `phone` once the email address is proven and a code went to the
    /// phone number.
    pub phase: Option<String>,
}

const COLUMNS: &str = "handle_hash, request_id, purpose, draft_sealed, code_mac, lang, created_at, expires_at, failures, used_at, open_until, phase";

fn challenge(r: &AnyRow) -> Result<ChallengeRow, StoreError> {
    Ok(ChallengeRow {
        handle_hash: r.try_get("handle_hash")?,
        request_id: r.try_get("request_id")?,
        purpose: r.try_get("purpose")?,
        draft_sealed: r.try_get("draft_sealed")?,
        code_mac: r.try_get("code_mac")?,
        lang: r.try_get("lang")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        failures: r.try_get("failures")?,
        used_at: r.try_get("used_at")?,
        open_until: r.try_get("open_until")?,
        phase: r.try_get("phase")?,
    })
}

/// Keep a new challenge; challenges long over go at the same time
/// (`gone_before`: expired and not open since).
pub async fn add_challenge(
    tx: &mut Tx,
    row: &ChallengeRow,
    gone_before: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "DELETE FROM privacy_challenges WHERE expires_at < $1 AND (open_until IS NULL OR open_until < $1)",
    )
    .bind(gone_before)
    .execute(&mut **tx)
    .await?;
    sqlx::query(&format!(
        "INSERT INTO privacy_challenges ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    ))
    .bind(&row.handle_hash)
    .bind(&row.request_id)
    .bind(&row.purpose)
    .bind(&row.draft_sealed)
    .bind(&row.code_mac)
    .bind(&row.lang)
    .bind(row.created_at)
    .bind(row.expires_at)
    .bind(row.failures)
    .bind(row.used_at)
    .bind(row.open_until)
    .bind(&row.phase)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A challenge by its handle's hash, locked for the transaction's writes.
pub async fn challenge_tx(
    tx: &mut Tx,
    handle_hash: &str,
) -> Result<Option<ChallengeRow>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM privacy_challenges WHERE handle_hash = $1"
    ))
    .bind(handle_hash)
    .fetch_optional(&mut **tx)
    .await?;
    row.as_ref().map(challenge).transpose()
}

/// A challenge by its handle's hash.
pub async fn challenge_of(
    pool: &AnyPool,
    handle_hash: &str,
) -> Result<Option<ChallengeRow>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM privacy_challenges WHERE handle_hash = $1"
    ))
    .bind(handle_hash)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(challenge).transpose()
}

/// Count a wrong code.
pub async fn failed(tx: &mut Tx, handle_hash: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE privacy_challenges SET failures = failures + 1 WHERE handle_hash = $1")
        .bind(handle_hash)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Mark a challenge's code used at `now` (once: `false` if it was already),
/// open until `open_until` for a download.
pub async fn used(
    tx: &mut Tx,
    handle_hash: &str,
    now: i64,
    open_until: Option<i64>,
) -> Result<bool, StoreError> {
    let n = sqlx::query(
        "UPDATE privacy_challenges SET used_at = $2, open_until = $3, draft_sealed = NULL WHERE handle_hash = $1 AND used_at IS NULL",
    )
    .bind(handle_hash)
    .bind(now)
    .bind(open_until)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Replace a challenge's code (a code sent again), with a new expiry.
pub async fn new_code(
    tx: &mut Tx,
    handle_hash: &str,
    code_mac: &str,
    expires_at: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE privacy_challenges SET code_mac = $2, expires_at = $3 WHERE handle_hash = $1 AND used_at IS NULL",
    )
    .bind(handle_hash)
    .bind(code_mac)
    .bind(expires_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Move a challenge to `phase` with a new code and expiry (the email
/// address proven, a code sent to the phone number).
pub async fn next_phase(
    tx: &mut Tx,
    handle_hash: &str,
    phase: &str,
    code_mac: &str,
    expires_at: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE privacy_challenges SET phase = $2, code_mac = $3, expires_at = $4 WHERE handle_hash = $1 AND used_at IS NULL",
    )
    .bind(handle_hash)
    .bind(phase)
    .bind(code_mac)
    .bind(expires_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Count one use of `mac` at `now` and say how many there were since
/// `since`, this one included; counts older than `since` go.
pub async fn count(tx: &mut Tx, mac: &str, now: i64, since: i64) -> Result<i64, StoreError> {
    sqlx::query("DELETE FROM privacy_counts WHERE mac = $1 AND at < $2")
        .bind(mac)
        .bind(since)
        .execute(&mut **tx)
        .await?;
    sqlx::query("INSERT INTO privacy_counts (mac, at) VALUES ($1, $2)")
        .bind(mac)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    let n: i64 =
        sqlx::query("SELECT COUNT(*) AS n FROM privacy_counts WHERE mac = $1 AND at >= $2")
            .bind(mac)
            .bind(since)
            .fetch_one(&mut **tx)
            .await?
            .try_get("n")?;
    Ok(n)
}

/// A status link as kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkRow {
    /// SHA-256 of its token, hex.
    pub token_hash: String,
    /// The request it shows.
    pub request_id: String,
    /// The language of its pages and mails.
    pub lang: String,
    /// When it was given.
    pub created_at: i64,
    /// The last state the subject was told of.
    pub told_state: String,
    /// Downloads of the answer through it.
    pub downloads: i64,
}

fn link(r: &AnyRow) -> Result<LinkRow, StoreError> {
    Ok(LinkRow {
        token_hash: r.try_get("token_hash")?,
        request_id: r.try_get("request_id")?,
        lang: r.try_get("lang")?,
        created_at: r.try_get("created_at")?,
        told_state: r.try_get("told_state")?,
        downloads: r.try_get("downloads")?,
    })
}

const LINK_COLUMNS: &str = "token_hash, request_id, lang, created_at, told_state, downloads";

/// Keep a status link.
pub async fn add_link(tx: &mut Tx, row: &LinkRow) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "INSERT INTO privacy_links ({LINK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"
    ))
    .bind(&row.token_hash)
    .bind(&row.request_id)
    .bind(&row.lang)
    .bind(row.created_at)
    .bind(&row.told_state)
    .bind(row.downloads)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A status link by its token's hash.
pub async fn link_of(pool: &AnyPool, token_hash: &str) -> Result<Option<LinkRow>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {LINK_COLUMNS} FROM privacy_links WHERE token_hash = $1"
    ))
    .bind(token_hash)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(link).transpose()
}

/// The status link of a request.
pub async fn link_of_request(
    pool: &AnyPool,
    request_id: &str,
) -> Result<Option<LinkRow>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {LINK_COLUMNS} FROM privacy_links WHERE request_id = $1"
    ))
    .bind(request_id)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(link).transpose()
}

/// Count a download through the link of `request_id`.
pub async fn downloaded(tx: &mut Tx, request_id: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE privacy_links SET downloads = downloads + 1 WHERE request_id = $1")
        .bind(request_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Links whose request is now in another state than the one its subject
/// was last told of: `(link, the request's state)`, at most `limit`.
pub async fn untold(pool: &AnyPool, limit: i64) -> Result<Vec<(LinkRow, String)>, StoreError> {
    let rows = sqlx::query(
        "SELECT l.token_hash, l.request_id, l.lang, l.created_at, l.told_state, l.downloads, r.state AS state \
         FROM privacy_links l JOIN requests r ON r.id = l.request_id \
         WHERE r.state <> l.told_state ORDER BY r.updated_at LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| Ok((link(r)?, r.try_get("state")?)))
        .collect()
}

/// Record that the subject of `request_id` was told of `state` (unless
/// another process told them of it first: `false`).
pub async fn told(
    tx: &mut Tx,
    request_id: &str,
    from: &str,
    state: &str,
) -> Result<bool, StoreError> {
    let n = sqlx::query(
        "UPDATE privacy_links SET told_state = $3 WHERE request_id = $1 AND told_state = $2",
    )
    .bind(request_id)
    .bind(from)
    .bind(state)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(n == 1)
}
