//! Retention sweeps, their tombstones, operators' legal holds and the
//! per-system call budgets every worker draws from. Nothing here holds
//! personal data: records are named by the connector's reference in a
//! sweep's cursor and page (system ids), and by a keyed hash once handled.

use super::{Backend, Store, StoreError};
use sqlx::{Any, AnyPool, Row, Transaction};

/// One run of a retention policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepRow {
    /// Its id (`sw_…`).
    pub id: String,
    /// The policy's id.
    pub policy: String,
    /// SHA-256 of the policy as it ran.
    pub policy_digest: String,
    /// The system.
    pub system: String,
    /// The data category.
    pub category: String,
    /// The trigger date's name.
    pub trigger: String,
    /// `delete`, `anonymise` or `review`.
    pub action: String,
    /// `test` or `enforce`.
    pub mode: String,
    /// `running`, `tested`, `awaiting-approval`, `approved`, `done`,
    /// `failed`, `superseded`.
    pub state: String,
    /// Records dated strictly before this are due (ms).
    pub cutoff: i64,
    /// For an enforcing run, the test run it carries out.
    pub test_of: Option<String>,
    /// Who started it.
    pub started_by: String,
    /// When.
    pub started_at: i64,
    /// Who accepted its disposition (a test run).
    pub approved_by: Option<String>,
    /// When.
    pub approved_at: Option<i64>,
    /// When it ended.
    pub finished_at: Option<i64>,
    /// The connector's id and version.
    pub connector: Option<String>,
    /// SHA-256 of the connector's component.
    pub component_sha256: Option<String>,
    /// The last record handled: (trigger date, id).
    pub cursor: Option<(i64, String)>,
    /// The page being erased (JSON), until its outcomes are kept.
    pub inflight: Option<String>,
    /// Counts, dates and a sample (JSON).
    pub tally: String,
    /// Why it stopped, when it failed or waits.
    pub note: Option<String>,
}

const COLUMNS: &str = "id, policy, policy_digest, system, category, trigger_name, action, mode, state, cutoff, test_of, \
     started_by, started_at, approved_by, approved_at, finished_at, connector, component_sha256, cursor_at, cursor_id, \
     inflight, tally, note";

fn sweep_row(r: &sqlx::any::AnyRow) -> Result<SweepRow, StoreError> {
    let cursor_at: Option<i64> = r.try_get("cursor_at")?;
    let cursor_id: Option<String> = r.try_get("cursor_id")?;
    Ok(SweepRow {
        id: r.try_get("id")?,
        policy: r.try_get("policy")?,
        policy_digest: r.try_get("policy_digest")?,
        system: r.try_get("system")?,
        category: r.try_get("category")?,
        trigger: r.try_get("trigger_name")?,
        action: r.try_get("action")?,
        mode: r.try_get("mode")?,
        state: r.try_get("state")?,
        cutoff: r.try_get("cutoff")?,
        test_of: r.try_get("test_of")?,
        started_by: r.try_get("started_by")?,
        started_at: r.try_get("started_at")?,
        approved_by: r.try_get("approved_by")?,
        approved_at: r.try_get("approved_at")?,
        finished_at: r.try_get("finished_at")?,
        connector: r.try_get("connector")?,
        component_sha256: r.try_get("component_sha256")?,
        cursor: cursor_at.zip(cursor_id),
        inflight: r.try_get("inflight")?,
        tally: r.try_get("tally")?,
        note: r.try_get("note")?,
    })
}

/// Keep a new sweep.
pub async fn insert(tx: &mut Transaction<'static, Any>, s: &SweepRow) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO retention_sweeps (id, policy, policy_digest, system, category, trigger_name, action, mode, state, \
         cutoff, test_of, started_by, started_at, connector, component_sha256, tally, approved_by, approved_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
    )
    .bind(&s.id)
    .bind(&s.policy)
    .bind(&s.policy_digest)
    .bind(&s.system)
    .bind(&s.category)
    .bind(&s.trigger)
    .bind(&s.action)
    .bind(&s.mode)
    .bind(&s.state)
    .bind(s.cutoff)
    .bind(&s.test_of)
    .bind(&s.started_by)
    .bind(s.started_at)
    .bind(&s.connector)
    .bind(&s.component_sha256)
    .bind(&s.tally)
    .bind(&s.approved_by)
    .bind(s.approved_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// One sweep.
pub async fn get(pool: &AnyPool, id: &str) -> Result<SweepRow, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM retention_sweeps WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| StoreError::NotFound {
        what: "sweep",
        id: id.to_string(),
    })?;
    sweep_row(&row)
}

/// Sweeps, newest first: of one policy, or all.
pub async fn list<'e, E>(
    db: E,
    policy: Option<&str>,
    limit: i64,
) -> Result<Vec<SweepRow>, StoreError>
where
    E: sqlx::Executor<'e, Database = Any>,
{
    let rows = match policy {
        Some(p) => {
            sqlx::query(&format!(
                "SELECT {COLUMNS} FROM retention_sweeps WHERE policy = $1 ORDER BY started_at DESC, id DESC LIMIT $2"
            ))
            .bind(p)
            .bind(limit)
            .fetch_all(db)
            .await?
        }
        None => {
            sqlx::query(&format!(
                "SELECT {COLUMNS} FROM retention_sweeps ORDER BY started_at DESC, id DESC LIMIT $1"
            ))
            .bind(limit)
            .fetch_all(db)
            .await?
        }
    };
    rows.iter().map(sweep_row).collect()
}

/// Running sweeps nobody holds (never claimed, or their holder's lease ran
/// out: it died), oldest first.
pub async fn unheld(pool: &AnyPool, now: i64) -> Result<Vec<String>, StoreError> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT id FROM retention_sweeps WHERE state = 'running' AND (lease_until IS NULL OR lease_until < $1) \
         ORDER BY started_at, id",
    )
    .bind(now)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// Take (or renew) the lease on a running sweep; false when another holds
/// it or it is not running.
pub async fn claim(store: &Store, id: &str, token: &str, until: i64) -> Result<bool, StoreError> {
    let now = store.now();
    let mut tx = store.write().await?;
    let done = sqlx::query(
        "UPDATE retention_sweeps SET lease_token = $1, lease_until = $2 \
         WHERE id = $3 AND state = 'running' AND (lease_token IS NULL OR lease_token = $1 OR lease_until < $4)",
    )
    .bind(token)
    .bind(until)
    .bind(id)
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(done > 0)
}

/// Progress of a sweep held by `token`: the cursor, the page in flight and
/// the tally, and the lease renewed. False when the lease was lost (the
/// caller must stop: another process carries the sweep on).
#[allow(clippy::too_many_arguments)]
pub async fn progress(
    tx: &mut Transaction<'static, Any>,
    id: &str,
    token: &str,
    cursor: Option<&(i64, String)>,
    inflight: Option<&str>,
    tally: &str,
    until: i64,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE retention_sweeps SET cursor_at = $1, cursor_id = $2, inflight = $3, tally = $4, lease_until = $5 \
         WHERE id = $6 AND lease_token = $7 AND state = 'running'",
    )
    .bind(cursor.map(|c| c.0))
    .bind(cursor.map(|c| c.1.clone()))
    .bind(inflight)
    .bind(tally)
    .bind(until)
    .bind(id)
    .bind(token)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(done > 0)
}

/// End a sweep held by `token` in `state`, with its tally and a note.
pub async fn finish(
    tx: &mut Transaction<'static, Any>,
    id: &str,
    token: &str,
    state: &str,
    tally: &str,
    note: Option<&str>,
    now: i64,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE retention_sweeps SET state = $1, tally = $2, note = $3, finished_at = $4, inflight = NULL, \
         lease_token = NULL, lease_until = NULL WHERE id = $5 AND lease_token = $6 AND state = 'running'",
    )
    .bind(state)
    .bind(tally)
    .bind(note)
    .bind(now)
    .bind(id)
    .bind(token)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(done > 0)
}

/// Move a sweep from one state to another (a test run made stale by a
/// newer one); false when it was not in `from`.
pub async fn set_state(
    tx: &mut Transaction<'static, Any>,
    id: &str,
    from: &str,
    to: &str,
) -> Result<bool, StoreError> {
    let done = sqlx::query("UPDATE retention_sweeps SET state = $1 WHERE id = $2 AND state = $3")
        .bind(to)
        .bind(id)
        .bind(from)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    Ok(done > 0)
}

/// Accept a test run's disposition: `awaiting-approval` to `approved`, by
/// `by`; false when it was not awaiting approval.
pub async fn approve(
    tx: &mut Transaction<'static, Any>,
    id: &str,
    by: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE retention_sweeps SET state = 'approved', approved_by = $1, approved_at = $2 \
         WHERE id = $3 AND state = 'awaiting-approval'",
    )
    .bind(by)
    .bind(now)
    .bind(id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(done > 0)
}

/// What an enforcing run did to one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tombstone {
    /// Keyed hash of the record's reference.
    pub record_mac: String,
    /// Its category.
    pub category: String,
    /// Its trigger date.
    pub trigger_at: i64,
    /// `delete` or `anonymise`.
    pub action: String,
    /// `done`, `not-found`, `retained`, `pending`, `failed`.
    pub outcome: String,
}

/// Keep tombstones (a record handled twice keeps its first).
pub async fn tombstones(
    tx: &mut Transaction<'static, Any>,
    sweep: &str,
    stones: &[Tombstone],
    now: i64,
) -> Result<(), StoreError> {
    for t in stones {
        sqlx::query(
            "INSERT INTO retention_tombstones (sweep_id, record_mac, category, trigger_at, action, outcome, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (sweep_id, record_mac) DO NOTHING",
        )
        .bind(sweep)
        .bind(&t.record_mac)
        .bind(&t.category)
        .bind(t.trigger_at)
        .bind(&t.action)
        .bind(&t.outcome)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// How many tombstones a sweep left.
pub async fn tombstone_count(pool: &AnyPool, sweep: &str) -> Result<i64, StoreError> {
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM retention_tombstones WHERE sweep_id = $1")
            .bind(sweep)
            .fetch_one(pool)
            .await?;
    Ok(n)
}

/// A sweep's tombstones.
pub async fn tombstones_of(pool: &AnyPool, sweep: &str) -> Result<Vec<Tombstone>, StoreError> {
    let rows: Vec<(String, String, i64, String, String)> = sqlx::query_as(
        "SELECT record_mac, category, trigger_at, action, outcome FROM retention_tombstones \
         WHERE sweep_id = $1 ORDER BY trigger_at, record_mac",
    )
    .bind(sweep)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(record_mac, category, trigger_at, action, outcome)| Tombstone {
                record_mac,
                category,
                trigger_at,
                action,
                outcome,
            },
        )
        .collect())
}

/// A legal hold set by an operator.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HoldRow {
    /// Its id (`hold_…`).
    pub id: String,
    /// The system.
    pub system: String,
    /// The category, or every one.
    pub category: Option<String>,
    /// Keyed hash of one record's reference, or every record.
    pub record_mac: Option<String>,
    /// Why.
    pub reason: String,
    /// Who set it.
    pub created_by: String,
    /// When.
    pub created_at: i64,
}

/// Set a hold.
pub async fn add_hold(tx: &mut Transaction<'static, Any>, h: &HoldRow) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO retention_holds (id, system, category, record_mac, reason, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&h.id)
    .bind(&h.system)
    .bind(&h.category)
    .bind(&h.record_mac)
    .bind(&h.reason)
    .bind(&h.created_by)
    .bind(h.created_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Release a hold; false when there is no such hold in force.
pub async fn release_hold(
    tx: &mut Transaction<'static, Any>,
    id: &str,
    by: &str,
    now: i64,
) -> Result<bool, StoreError> {
    Ok(sqlx::query(
        "UPDATE retention_holds SET released_by = $1, released_at = $2 WHERE id = $3 AND released_at IS NULL",
    )
    .bind(by)
    .bind(now)
    .bind(id)
    .execute(&mut **tx)
    .await?
    .rows_affected()
        > 0)
}

/// The holds in force, of one system or all.
pub async fn holds(pool: &AnyPool, system: Option<&str>) -> Result<Vec<HoldRow>, StoreError> {
    type Raw = (
        String,
        String,
        Option<String>,
        Option<String>,
        String,
        String,
        i64,
    );
    let sql = "SELECT id, system, category, record_mac, reason, created_by, created_at FROM retention_holds \
               WHERE released_at IS NULL";
    let rows: Vec<Raw> = match system {
        Some(s) => {
            sqlx::query_as(&format!("{sql} AND system = $1 ORDER BY created_at, id"))
                .bind(s)
                .fetch_all(pool)
                .await?
        }
        None => {
            sqlx::query_as(&format!("{sql} ORDER BY created_at, id"))
                .fetch_all(pool)
                .await?
        }
    };
    Ok(rows
        .into_iter()
        .map(
            |(id, system, category, record_mac, reason, created_by, created_at)| HoldRow {
                id,
                system,
                category,
                record_mac,
                reason,
                created_by,
                created_at,
            },
        )
        .collect())
}

/// Take one call from `system`'s token bucket (refilled at `per_second`
/// up to `burst`), costing `cost` tokens. `Ok(0)` when taken; otherwise how
/// many milliseconds until there will be enough, and nothing is taken.
/// One row per system, updated in a write transaction, so every process
/// on the store shares the bucket.
pub async fn take(
    store: &Store,
    system: &str,
    per_second: f64,
    burst: f64,
    cost: f64,
) -> Result<u64, StoreError> {
    let now = store.now();
    let mut tx = store.write().await?;
    let lock = if store.backend() == Backend::Postgres {
        " FOR UPDATE"
    } else {
        ""
    };
    let row: Option<(f64, i64)> = sqlx::query_as(&format!(
        "SELECT tokens, updated_at FROM rate_budgets WHERE system = $1{lock}"
    ))
    .bind(system)
    .fetch_optional(&mut *tx)
    .await?;
    let (tokens, at) = match row {
        Some(r) => r,
        None => {
            sqlx::query(
                "INSERT INTO rate_budgets (system, tokens, updated_at) VALUES ($1, $2, $3) ON CONFLICT (system) DO NOTHING",
            )
            .bind(system)
            .bind(burst)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            (burst, now)
        }
    };
    let elapsed = (now - at).max(0) as f64 / 1000.0;
    let tokens = (tokens + elapsed * per_second).min(burst);
    if tokens + 1e-9 < cost {
        tx.rollback().await?;
        let wait = ((cost - tokens) / per_second * 1000.0).ceil().max(1.0);
        return Ok(wait as u64);
    }
    sqlx::query("UPDATE rate_budgets SET tokens = $1, updated_at = $2 WHERE system = $3")
        .bind(tokens - cost)
        .bind(now)
        .bind(system)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(0)
}
