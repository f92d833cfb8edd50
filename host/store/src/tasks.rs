//! The task table: one durable task per (request, system, operation), in
//! the style of River and Oban, with a lease.
//!
//! - [`claim`] takes up to N due tasks in one transaction (`FOR UPDATE SKIP
//!   LOCKED` on PostgreSQL, `BEGIN IMMEDIATE` on SQLite), stamps them with a
//!   fresh lease token, the worker's name and a lease expiry, and counts the
//!   attempt.
//! - [`heartbeat`] extends the lease of a slow but live call.
//! - [`finish`] writes the outcome only if the lease token still matches:
//!   a worker whose lease expired and whose task was taken over cannot
//!   overwrite what the new holder wrote ([`StoreError::Conflict`]).
//! - [`rescue`] puts tasks whose lease expired back in the queue (or in
//!   needs-attention once their attempts are spent). It never touches a task
//!   that finished: only `running` rows with an expired lease match.
//!
//! No queue gives exactly-once: a task may run again after a crash. The
//! engine makes that safe (a vendor ticket is stored in the same transaction
//! as the state change; an erasure run again re-locates first).

use super::{Backend, Store, StoreError};
use oubli_model::{Stage, TaskOp, TaskState};
use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, AnyPool, Row, Transaction};

/// A task as stored.
#[derive(Debug, Clone)]
pub struct TaskRow {
    /// Its id.
    pub id: i64,
    /// Its request.
    pub request_id: String,
    /// Its system (empty for the plan task).
    pub system: String,
    /// What it does.
    pub op: TaskOp,
    /// How far it got.
    pub stage: Stage,
    /// Where it stands.
    pub state: TaskState,
    /// Attempts made in this stage.
    pub attempt: i64,
    /// Attempts allowed in this stage.
    pub max_attempts: i64,
    /// Polls made.
    pub polls: i64,
    /// When it may run next.
    pub scheduled_at: i64,
    /// The lease token of the claim (set while running).
    pub lease_token: Option<String>,
    /// When the lease ends.
    pub lease_expires_at: Option<i64>,
    /// The worker that last claimed it.
    pub attempted_by: Option<String>,
    /// An asynchronous job's ticket (sealed).
    pub ticket_sealed: Option<Vec<u8>>,
    /// The kind of the last error.
    pub error_kind: Option<String>,
    /// The last error (sealed).
    pub error_sealed: Option<Vec<u8>>,
    /// When it was created.
    pub created_at: i64,
    /// When it ended.
    pub finalized_at: Option<i64>,
}

const COLUMNS: &str = "id, request_id, system, operation, stage, state, attempt, max_attempts, polls, scheduled_at, lease_token, lease_expires_at, attempted_by, ticket_sealed, error_kind, error_sealed, created_at, finalized_at";

fn task_row(r: &AnyRow) -> Result<TaskRow, StoreError> {
    let op: String = r.try_get("operation")?;
    let stage: String = r.try_get("stage")?;
    let state: String = r.try_get("state")?;
    Ok(TaskRow {
        id: r.try_get("id")?,
        request_id: r.try_get("request_id")?,
        system: r.try_get("system")?,
        op: TaskOp::parse(&op).ok_or(StoreError::Corrupt("task operation"))?,
        stage: Stage::parse(&stage).ok_or(StoreError::Corrupt("task stage"))?,
        state: TaskState::parse(&state).ok_or(StoreError::Corrupt("task state"))?,
        attempt: r.try_get("attempt")?,
        max_attempts: r.try_get("max_attempts")?,
        polls: r.try_get("polls")?,
        scheduled_at: r.try_get("scheduled_at")?,
        lease_token: r.try_get("lease_token")?,
        lease_expires_at: r.try_get("lease_expires_at")?,
        attempted_by: r.try_get("attempted_by")?,
        ticket_sealed: r.try_get("ticket_sealed")?,
        error_kind: r.try_get("error_kind")?,
        error_sealed: r.try_get("error_sealed")?,
        created_at: r.try_get("created_at")?,
        finalized_at: r.try_get("finalized_at")?,
    })
}

/// Queue a task, due at `now`; nothing happens if the request already has
/// one for this system and operation (the unique key). Returns whether it
/// was created.
pub async fn enqueue(
    tx: &mut Transaction<'static, Any>,
    request_id: &str,
    system: &str,
    op: TaskOp,
    state: TaskState,
    max_attempts: i64,
    now: i64,
) -> Result<bool, StoreError> {
    let n = sqlx::query(
        "INSERT INTO tasks (request_id, system, operation, stage, state, attempt, max_attempts, polls, scheduled_at, created_at, updated_at) \
         VALUES ($1, $2, $3, 'act', $4, 0, $5, 0, $6, $6, $6) ON CONFLICT (request_id, system, operation) DO NOTHING",
    )
    .bind(request_id)
    .bind(system)
    .bind(op.as_str())
    .bind(state.as_str())
    .bind(max_attempts)
    .bind(now)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Claim up to `limit` due tasks for `worker`, leased for `lease_ms`.
/// Every task of one claim shares its lease token.
pub async fn claim(
    store: &Store,
    worker: &str,
    lease_ms: i64,
    limit: i64,
) -> Result<Vec<TaskRow>, StoreError> {
    let now = store.now();
    let token = oubli_crypto::random_token(12)?;
    let lock = match store.backend() {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let sql = format!(
        "UPDATE tasks SET state = 'running', lease_token = $1, lease_expires_at = $2, attempted_by = $3, attempt = attempt + 1, updated_at = $4 \
         WHERE id IN (SELECT id FROM tasks WHERE state = 'available' AND scheduled_at <= $4 \
         AND system NOT IN (SELECT system FROM paused_systems) ORDER BY scheduled_at, id LIMIT $5{lock}) \
         RETURNING {COLUMNS}"
    );
    let mut tx = store.write().await?;
    let rows = sqlx::query(&sql)
        .bind(&token)
        .bind(now + lease_ms)
        .bind(worker)
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    let mut tasks: Vec<TaskRow> = rows.iter().map(task_row).collect::<Result<_, _>>()?;
    tasks.sort_by_key(|t| (t.scheduled_at, t.id));
    Ok(tasks)
}

/// Extend the lease of tasks still held under `token`; returns how many
/// were (a task missing from the count was taken over: its worker must stop
/// writing).
pub async fn heartbeat(
    store: &Store,
    ids: &[i64],
    token: &str,
    lease_ms: i64,
) -> Result<u64, StoreError> {
    let now = store.now();
    let mut tx = store.write().await?;
    let mut n = 0;
    for id in ids {
        n += sqlx::query(
            "UPDATE tasks SET lease_expires_at = $1 WHERE id = $2 AND lease_token = $3 AND state = 'running'",
        )
        .bind(now + lease_ms)
        .bind(*id)
        .bind(token)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    }
    tx.commit().await?;
    Ok(n)
}

/// What a finished attempt writes.
#[derive(Debug, Clone)]
pub struct Finish {
    /// The new state.
    pub state: TaskState,
    /// The new stage.
    pub stage: Stage,
    /// When it may run next (for `available`).
    pub scheduled_at: i64,
    /// The attempt count to store (reset to 0 on entering a new stage).
    pub attempt: i64,
    /// The poll count to store.
    pub polls: i64,
    /// A new ticket (`None` keeps the stored one).
    pub ticket_sealed: Option<Vec<u8>>,
    /// The error, if the attempt failed: kind and sealed message.
    pub error: Option<(String, Vec<u8>)>,
}

impl Finish {
    /// `task` finished in its current stage: done, counts unchanged.
    pub fn done(task: &TaskRow, now: i64) -> Finish {
        Finish {
            state: TaskState::Done,
            stage: task.stage,
            scheduled_at: now,
            attempt: task.attempt,
            polls: task.polls,
            ticket_sealed: None,
            error: None,
        }
    }
}

/// Write an attempt's outcome, if `token` still holds the lease;
/// [`StoreError::Conflict`] if it does not (the lease expired and another
/// worker took the task, or an operator cancelled it).
pub async fn finish(
    tx: &mut Transaction<'static, Any>,
    id: i64,
    token: &str,
    f: &Finish,
    now: i64,
) -> Result<(), StoreError> {
    let n = sqlx::query(
        "UPDATE tasks SET state = $1, stage = $2, scheduled_at = $3, attempt = $4, polls = $5, ticket_sealed = COALESCE($6, ticket_sealed), \
         error_kind = $7, error_sealed = $8, lease_token = NULL, lease_expires_at = NULL, updated_at = $9, finalized_at = $10 \
         WHERE id = $11 AND lease_token = $12 AND state = 'running'",
    )
    .bind(f.state.as_str())
    .bind(f.stage.as_str())
    .bind(f.scheduled_at)
    .bind(f.attempt)
    .bind(f.polls)
    .bind(f.ticket_sealed.clone())
    .bind(f.error.as_ref().map(|e| e.0.clone()))
    .bind(f.error.as_ref().map(|e| e.1.clone()))
    .bind(now)
    .bind(f.state.is_final().then_some(now))
    .bind(id)
    .bind(token)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if n != 1 {
        return Err(StoreError::Conflict(format!(
            "task {id}: the lease was lost (expired and taken over, or cancelled); its result is discarded"
        )));
    }
    Ok(())
}

/// Put tasks whose lease expired back in the queue, those still within
/// their attempts. Those past them are left for [`expired_exhausted`] and
/// [`park_expired`], which the engine calls so that parking one writes its
/// event and its error like any other task that needs attention. Returns
/// how many were requeued.
pub async fn rescue(store: &Store) -> Result<u64, StoreError> {
    let now = store.now();
    let mut tx = store.write().await?;
    let requeued = sqlx::query(
        "UPDATE tasks SET state = 'available', lease_token = NULL, lease_expires_at = NULL, scheduled_at = $1, error_kind = 'lease-expired', error_sealed = NULL, updated_at = $1 \
         WHERE state = 'running' AND lease_expires_at < $1 AND attempt < max_attempts",
    )
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    if requeued > 0 {
        tracing::warn!(requeued, "rescued tasks whose lease expired");
    }
    Ok(requeued)
}

/// Tasks whose lease expired in their last allowed attempt: their worker
/// stopped (crashed, was killed, lost the store) every time.
pub async fn expired_exhausted(pool: &AnyPool, now: i64) -> Result<Vec<TaskRow>, StoreError> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM tasks WHERE state = 'running' AND lease_expires_at < $1 AND attempt >= max_attempts ORDER BY id"
    ))
    .bind(now)
    .fetch_all(pool)
    .await?
    .iter()
    .map(task_row)
    .collect()
}

/// Park one task of [`expired_exhausted`] as needing attention, with its
/// error; `false` if it changed meanwhile (another rescuer, or its worker
/// came back and finished it).
pub async fn park_expired(
    tx: &mut Transaction<'static, Any>,
    id: i64,
    error_kind: &str,
    error_sealed: &[u8],
    now: i64,
) -> Result<bool, StoreError> {
    Ok(sqlx::query(
        "UPDATE tasks SET state = 'needs-attention', lease_token = NULL, lease_expires_at = NULL, error_kind = $1, error_sealed = $2, updated_at = $3 \
         WHERE id = $4 AND state = 'running' AND lease_expires_at < $3 AND attempt >= max_attempts",
    )
    .bind(error_kind)
    .bind(error_sealed)
    .bind(now)
    .bind(id)
    .execute(&mut **tx)
    .await?
    .rows_affected()
        == 1)
}

/// A request's tasks.
pub async fn for_request(pool: &AnyPool, request_id: &str) -> Result<Vec<TaskRow>, StoreError> {
    for_request_on(&mut *pool.acquire().await?, request_id).await
}

/// A request's tasks, inside a transaction.
pub async fn for_request_tx(
    tx: &mut Transaction<'static, Any>,
    request_id: &str,
) -> Result<Vec<TaskRow>, StoreError> {
    for_request_on(tx, request_id).await
}

async fn for_request_on(
    conn: &mut AnyConnection,
    request_id: &str,
) -> Result<Vec<TaskRow>, StoreError> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM tasks WHERE request_id = $1 ORDER BY id"
    ))
    .bind(request_id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(task_row)
    .collect()
}

/// Set a task that is not running (an operator's decision: retry, skip,
/// mark a manual task done) to `state` at `stage`, due now, attempts reset.
/// [`StoreError::Conflict`] if it is running or already over.
pub async fn operator_set(
    tx: &mut Transaction<'static, Any>,
    request_id: &str,
    system: &str,
    from: &[TaskState],
    state: TaskState,
    stage: Option<Stage>,
    now: i64,
) -> Result<TaskRow, StoreError> {
    // The host's own tasks have no system: `""` names the planning task,
    // and, once the request executes, its answer.
    let which = if system.is_empty() {
        "operation IN ('plan', 'answer') ORDER BY CASE operation WHEN 'answer' THEN 0 ELSE 1 END LIMIT 1"
    } else {
        "operation <> 'plan'"
    };
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM tasks WHERE request_id = $1 AND system = $2 AND {which}"
    ))
    .bind(request_id)
    .bind(system)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| StoreError::NotFound {
        what: "task for system",
        id: system.to_string(),
    })?;
    let task = task_row(&row)?;
    if !from.contains(&task.state) {
        let name = match (system.is_empty(), task.op) {
            (true, TaskOp::Answer) => "answer".to_string(),
            (true, _) => "planning".to_string(),
            (false, _) => system.to_string(),
        };
        return Err(StoreError::Conflict(format!(
            "the {name} task is {}",
            task.state
        )));
    }
    let stage = stage.unwrap_or(task.stage);
    sqlx::query(
        "UPDATE tasks SET state = $1, stage = $2, attempt = 0, scheduled_at = $3, updated_at = $3, finalized_at = $4 WHERE id = $5 AND state = $6",
    )
    .bind(state.as_str())
    .bind(stage.as_str())
    .bind(now)
    .bind(state.is_final().then_some(now))
    .bind(task.id)
    .bind(task.state.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(TaskRow {
        state,
        stage,
        ..task
    })
}

/// Cancel every task of a request that is not over (running ones too: their
/// late results are then refused by the lease check). Returns how many.
pub async fn cancel_all(
    tx: &mut Transaction<'static, Any>,
    request_id: &str,
    now: i64,
) -> Result<u64, StoreError> {
    Ok(sqlx::query(
        "UPDATE tasks SET state = 'cancelled', lease_token = NULL, lease_expires_at = NULL, updated_at = $1, finalized_at = $1 \
         WHERE request_id = $2 AND state NOT IN ('done', 'skipped', 'cancelled')",
    )
    .bind(now)
    .bind(request_id)
    .execute(&mut **tx)
    .await?
    .rows_affected())
}

/// Tasks by state, for listings and metrics.
pub async fn count_by_state(pool: &AnyPool) -> Result<Vec<(String, i64)>, StoreError> {
    Ok(
        sqlx::query_as("SELECT state, COUNT(*) FROM tasks GROUP BY state ORDER BY state")
            .fetch_all(pool)
            .await?,
    )
}

/// When the next available task is due, if any (a worker sleeps until then).
pub async fn next_due(pool: &AnyPool) -> Result<Option<i64>, StoreError> {
    Ok(
        sqlx::query_scalar(
            "SELECT MIN(scheduled_at) FROM tasks WHERE state = 'available' AND system NOT IN (SELECT system FROM paused_systems)",
        )
            .fetch_one(pool)
            .await?,
    )
}

/// Whether any task is running, or available in a system that is not
/// paused (a worker run "until idle" stops when none is).
pub async fn any_active(pool: &AnyPool) -> Result<bool, StoreError> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM tasks WHERE state = 'running' \
         OR (state = 'available' AND system NOT IN (SELECT system FROM paused_systems))",
    )
    .fetch_one(pool)
    .await?;
    Ok(n > 0)
}

/// A paused system.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Paused {
    /// The system.
    pub system: String,
    /// Who paused it.
    pub paused_by: String,
    /// Why.
    pub reason: String,
    /// Since when.
    pub paused_at: i64,
}

/// Pause a system: its tasks are not claimed until it is resumed (running
/// ones finish). Returns whether it was not paused already.
pub async fn pause(
    tx: &mut Transaction<'static, Any>,
    system: &str,
    by: &str,
    reason: &str,
    now: i64,
) -> Result<bool, StoreError> {
    Ok(sqlx::query(
        "INSERT INTO paused_systems (system, paused_by, reason, paused_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(system)
    .bind(by)
    .bind(reason)
    .bind(now)
    .execute(&mut **tx)
    .await?
    .rows_affected()
        == 1)
}

/// Resume a paused system; returns whether it was paused.
pub async fn resume(tx: &mut Transaction<'static, Any>, system: &str) -> Result<bool, StoreError> {
    Ok(sqlx::query("DELETE FROM paused_systems WHERE system = $1")
        .bind(system)
        .execute(&mut **tx)
        .await?
        .rows_affected()
        == 1)
}

/// The paused systems.
pub async fn paused(pool: &AnyPool) -> Result<Vec<Paused>, StoreError> {
    let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT system, paused_by, reason, paused_at FROM paused_systems ORDER BY system",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(system, paused_by, reason, paused_at)| Paused {
            system,
            paused_by,
            reason,
            paused_at,
        })
        .collect())
}
