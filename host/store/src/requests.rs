//! Requests, their per-system plans and results, and their events.
//!
//! Every state change goes through [`transition`], which checks the state it
//! moves from in the `UPDATE` itself (so two operators or workers racing on
//! one request cannot both win) and appends the event in the same
//! transaction.

use super::StoreError;
use oubli_model::request::Filter;
use oubli_model::{RequestKind, RequestState, SystemState};
use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, AnyPool, Row, Transaction};

/// A request as stored.
#[derive(Debug, Clone)]
pub struct RequestRow {
    /// Its id.
    pub id: String,
    /// What was asked.
    pub kind: RequestKind,
    /// Where it stands.
    pub state: RequestState,
    /// The subject (sealed JSON).
    pub subject_sealed: Vec<u8>,
    /// Kind-specific parameters (sealed JSON), when any.
    pub params_sealed: Option<Vec<u8>>,
    /// The policy snapshot taken when it was filed (JSON; no personal data).
    pub policy: String,
    /// Who filed it.
    pub requested_by: String,
    /// Who approved it.
    pub approved_by: Option<String>,
    /// Who attested the subject's identity.
    pub attested_by: Option<String>,
    /// When it was received.
    pub received_at: i64,
    /// When it is due (Art. 12(3)).
    pub due_at: i64,
    /// Months the deadline was extended by, in all.
    pub extended_months: i64,
    /// Last change.
    pub updated_at: i64,
    /// When it ended.
    pub finalized_at: Option<i64>,
    /// A summary of the outcome (JSON; no personal data).
    pub summary: Option<String>,
    /// How it reached the controller (`call`, `web`, …), when recorded.
    pub channel: Option<String>,
}

const REQUEST_COLUMNS: &str = "id, kind, state, subject_sealed, params_sealed, policy, requested_by, approved_by, attested_by, received_at, due_at, extended_months, updated_at, finalized_at, summary, channel";

fn corrupt<T>(what: &'static str) -> impl FnOnce() -> Result<T, StoreError> {
    move || Err(StoreError::Corrupt(what))
}

fn request_row(r: &AnyRow) -> Result<RequestRow, StoreError> {
    let kind: String = r.try_get("kind")?;
    let state: String = r.try_get("state")?;
    Ok(RequestRow {
        id: r.try_get("id")?,
        kind: RequestKind::parse(&kind).map_or_else(corrupt("request kind"), Ok)?,
        state: RequestState::parse(&state).map_or_else(corrupt("request state"), Ok)?,
        subject_sealed: r.try_get("subject_sealed")?,
        params_sealed: r.try_get("params_sealed")?,
        policy: r.try_get("policy")?,
        requested_by: r.try_get("requested_by")?,
        approved_by: r.try_get("approved_by")?,
        attested_by: r.try_get("attested_by")?,
        received_at: r.try_get("received_at")?,
        due_at: r.try_get("due_at")?,
        extended_months: r.try_get("extended_months")?,
        updated_at: r.try_get("updated_at")?,
        finalized_at: r.try_get("finalized_at")?,
        summary: r.try_get("summary")?,
        channel: r.try_get("channel")?,
    })
}

/// Insert a new request with its blind indexes and its first event.
pub async fn insert(
    tx: &mut Transaction<'static, Any>,
    row: &RequestRow,
    indexes: &[String],
) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "INSERT INTO requests ({REQUEST_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
    ))
    .bind(&row.id)
    .bind(row.kind.as_str())
    .bind(row.state.as_str())
    .bind(&row.subject_sealed)
    .bind(&row.params_sealed)
    .bind(&row.policy)
    .bind(&row.requested_by)
    .bind(&row.approved_by)
    .bind(&row.attested_by)
    .bind(row.received_at)
    .bind(row.due_at)
    .bind(row.extended_months)
    .bind(row.updated_at)
    .bind(row.finalized_at)
    .bind(&row.summary)
    .bind(&row.channel)
    .execute(&mut **tx)
    .await?;
    for hash in indexes {
        sqlx::query(
            "INSERT INTO subject_index (hash, request_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(hash)
        .bind(&row.id)
        .execute(&mut **tx)
        .await?;
    }
    event(
        tx,
        &Event {
            request_id: &row.id,
            actor: &row.requested_by,
            action: "filed",
            from: None,
            to: Some(row.state),
            system: None,
            reason_sealed: None,
        },
        row.received_at,
    )
    .await
}

/// A request by id.
pub async fn get(pool: &AnyPool, id: &str) -> Result<RequestRow, StoreError> {
    get_on(&mut *pool.acquire().await?, id).await
}

/// A request by id, inside a transaction.
pub async fn get_tx(
    tx: &mut Transaction<'static, Any>,
    id: &str,
) -> Result<RequestRow, StoreError> {
    get_on(tx, id).await
}

async fn get_on(conn: &mut AnyConnection, id: &str) -> Result<RequestRow, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {REQUEST_COLUMNS} FROM requests WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| StoreError::NotFound {
        what: "request",
        id: id.to_string(),
    })?;
    request_row(&row)
}

/// Requests matching `filter`, by id.
pub async fn list(pool: &AnyPool, filter: &Filter) -> Result<Vec<RequestRow>, StoreError> {
    let mut sql = format!("SELECT {REQUEST_COLUMNS} FROM requests WHERE 1 = 1");
    let mut n = 0;
    let mut next = || {
        n += 1;
        format!("${n}")
    };
    if filter.state.is_some() {
        sql += &format!(" AND state = {}", next());
    }
    if filter.due_before.is_some() {
        sql += &format!(
            " AND due_at < {} AND state NOT IN ('completed', 'partially-completed', 'failed', 'rejected', 'cancelled')",
            next()
        );
    }
    if filter.needs_attention {
        sql += " AND id IN (SELECT request_id FROM tasks WHERE state IN ('needs-attention', 'manual'))";
    }
    if let Some(ids) = &filter.ids {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let marks: Vec<String> = ids.iter().map(|_| next()).collect();
        sql += &format!(" AND id IN ({})", marks.join(", "));
    }
    if filter.kind.is_some() {
        sql += &format!(" AND kind = {}", next());
    }
    if filter.system.is_some() {
        sql += &format!(
            " AND id IN (SELECT request_id FROM request_systems WHERE system = {})",
            next()
        );
    }
    if filter.open {
        sql += " AND state NOT IN ('completed', 'partially-completed', 'failed', 'rejected', 'cancelled')";
    }
    match (filter.by_due, filter.after_due, &filter.after) {
        (true, Some(_), Some(_)) => {
            let (a, b, c) = (next(), next(), next());
            sql += &format!(" AND (due_at > {a} OR (due_at = {b} AND id > {c}))");
        }
        (_, _, Some(_)) => sql += &format!(" AND id > {}", next()),
        _ => {}
    }
    if filter.by_due {
        sql += &format!(" ORDER BY due_at, id LIMIT {}", next());
    } else {
        sql += &format!(" ORDER BY id LIMIT {}", next());
    }
    let mut q = sqlx::query(&sql);
    if let Some(s) = filter.state {
        q = q.bind(s.as_str());
    }
    if let Some(d) = filter.due_before {
        q = q.bind(d);
    }
    if let Some(ids) = &filter.ids {
        for id in ids {
            q = q.bind(id.clone());
        }
    }
    if let Some(k) = filter.kind {
        q = q.bind(k.as_str());
    }
    if let Some(s) = &filter.system {
        q = q.bind(s.clone());
    }
    match (filter.by_due, filter.after_due, &filter.after) {
        (true, Some(d), Some(a)) => {
            q = q.bind(d).bind(d).bind(a.clone());
        }
        (_, _, Some(a)) => q = q.bind(a.clone()),
        _ => {}
    }
    q = q.bind(if filter.limit > 0 { filter.limit } else { 100 });
    q.fetch_all(pool).await?.iter().map(request_row).collect()
}

/// Requests over (finalised) before `before` and not yet shredded, the
/// oldest first, at most `limit`: oubli's own records past their period.
pub async fn over_before(
    pool: &AnyPool,
    before: i64,
    limit: i64,
) -> Result<Vec<String>, StoreError> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT id FROM requests WHERE finalized_at IS NOT NULL AND finalized_at < $1 \
         AND id NOT IN (SELECT request_id FROM shredded) ORDER BY finalized_at, id LIMIT $2",
    )
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// Forget which subject a request was about: its blind indexes go (a
/// shredded request is then found by no identifier). Returns how many.
pub async fn forget_subject(
    tx: &mut Transaction<'static, Any>,
    request_id: &str,
) -> Result<u64, StoreError> {
    Ok(
        sqlx::query("DELETE FROM subject_index WHERE request_id = $1")
            .bind(request_id)
            .execute(&mut **tx)
            .await?
            .rows_affected(),
    )
}

/// The ids of the requests about a subject with this blind index.
pub async fn by_index(pool: &AnyPool, hash: &str) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT request_id FROM subject_index WHERE hash = $1 ORDER BY request_id",
    )
    .bind(hash)
    .fetch_all(pool)
    .await?)
}

/// How many requests share each of these blind indexes, apart from `except`.
pub async fn others_with(
    tx: &mut Transaction<'static, Any>,
    hashes: &[String],
    except: &str,
) -> Result<i64, StoreError> {
    let mut total = 0;
    for h in hashes {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM subject_index WHERE hash = $1 AND request_id <> $2",
        )
        .bind(h)
        .bind(except)
        .fetch_one(&mut **tx)
        .await?;
        total += n;
    }
    Ok(total)
}

/// An event to append.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    /// The request.
    pub request_id: &'a str,
    /// Who did it (an operator's name, or `worker:<id>`).
    pub actor: &'a str,
    /// What (`filed`, `approved`, `erase-done`, ...).
    pub action: &'a str,
    /// The state before, when it changed.
    pub from: Option<RequestState>,
    /// The state after, when it changed.
    pub to: Option<RequestState>,
    /// The system it concerns, if one.
    pub system: Option<&'a str>,
    /// Why (sealed: operators' notes may name the person).
    pub reason_sealed: Option<&'a [u8]>,
}

/// Append an event. It touches no shared row: the event waits, with no
/// place in the audit log, for the sequencer ([`super::log`]), which gives
/// it its place and links it into the chain and the tree. On SQLite the
/// transaction already holds the file's one write lock, so the event is
/// placed at once.
pub async fn event(
    tx: &mut Transaction<'static, Any>,
    e: &Event<'_>,
    now: i64,
) -> Result<(), StoreError> {
    attest(tx, e, None, now).await
}

/// Append an event that attests a document (a certificate): `digest` is
/// the document's SHA-256 (hex), which the event's leaf covers, so that an
/// inclusion proof of the event proves the document.
pub async fn attest(
    tx: &mut Transaction<'static, Any>,
    e: &Event<'_>,
    digest: Option<&str>,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO events (request_id, at, actor, action, from_state, to_state, system, reason_sealed, digest) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(e.request_id)
    .bind(now)
    .bind(e.actor)
    .bind(e.action)
    .bind(e.from.map(|s| s.as_str()))
    .bind(e.to.map(|s| s.as_str()))
    .bind(e.system)
    .bind(e.reason_sealed.map(<[u8]>::to_vec))
    .bind(digest)
    .execute(&mut **tx)
    .await?;
    if tx.backend_name() != "PostgreSQL" {
        super::log::integrate(tx, i64::MAX).await?;
    }
    Ok(())
}

/// An event as stored.
#[derive(Debug, Clone)]
pub struct EventRow {
    /// Its sequence number.
    pub id: i64,
    /// When.
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
    /// Why (sealed).
    pub reason_sealed: Option<Vec<u8>>,
}

/// A request's events, oldest first.
pub async fn events(pool: &AnyPool, request_id: &str) -> Result<Vec<EventRow>, StoreError> {
    sqlx::query(
        "SELECT id, at, actor, action, from_state, to_state, system, reason_sealed FROM events WHERE request_id = $1 ORDER BY id",
    )
    .bind(request_id)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| {
        Ok(EventRow {
            id: r.try_get("id")?,
            at: r.try_get("at")?,
            actor: r.try_get("actor")?,
            action: r.try_get("action")?,
            from: r.try_get("from_state")?,
            to: r.try_get("to_state")?,
            system: r.try_get("system")?,
            reason_sealed: r.try_get("reason_sealed")?,
        })
    })
    .collect()
}

/// Columns set along with a state change.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// Set `approved_by`.
    pub approved_by: Option<String>,
    /// Set `attested_by`.
    pub attested_by: Option<String>,
    /// Set `due_at` and `extended_months`.
    pub deadline: Option<(i64, i64)>,
    /// Set `summary`.
    pub summary: Option<String>,
}

/// Move a request from one of `from` to `to` (the same state for a change
/// that is not a transition, such as an extension), setting `changes`, and
/// append the event; [`StoreError::Conflict`] when the request is not in any
/// of `from` any more.
pub async fn transition(
    tx: &mut Transaction<'static, Any>,
    id: &str,
    from: &[RequestState],
    to: RequestState,
    changes: &Changes,
    event_: Event<'_>,
    now: i64,
) -> Result<RequestState, StoreError> {
    let current: Option<String> = sqlx::query_scalar("SELECT state FROM requests WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    let current = current.ok_or_else(|| StoreError::NotFound {
        what: "request",
        id: id.to_string(),
    })?;
    let current = RequestState::parse(&current).ok_or(StoreError::Corrupt("request state"))?;
    if !from.contains(&current) {
        return Err(StoreError::Conflict(format!(
            "request {id} is {current}, so it cannot be {}",
            event_.action
        )));
    }
    let mut sql = String::from("UPDATE requests SET state = $1, updated_at = $2");
    let mut n = 2;
    let mut p = |col: &str, sql: &mut String| {
        n += 1;
        *sql += &format!(", {col} = ${n}");
    };
    if changes.approved_by.is_some() {
        p("approved_by", &mut sql);
    }
    if changes.attested_by.is_some() {
        p("attested_by", &mut sql);
    }
    if changes.deadline.is_some() {
        p("due_at", &mut sql);
        p("extended_months", &mut sql);
    }
    if changes.summary.is_some() {
        p("summary", &mut sql);
    }
    if to.is_final() {
        p("finalized_at", &mut sql);
    }
    sql += &format!(" WHERE id = ${} AND state = ${}", n + 1, n + 2);
    let mut q = sqlx::query(&sql).bind(to.as_str()).bind(now);
    if let Some(a) = &changes.approved_by {
        q = q.bind(a.clone());
    }
    if let Some(a) = &changes.attested_by {
        q = q.bind(a.clone());
    }
    if let Some((due, months)) = changes.deadline {
        q = q.bind(due).bind(months);
    }
    if let Some(s) = &changes.summary {
        q = q.bind(s.clone());
    }
    if to.is_final() {
        q = q.bind(now);
    }
    let changed = q
        .bind(id)
        .bind(current.as_str())
        .execute(&mut **tx)
        .await?
        .rows_affected();
    if changed != 1 {
        return Err(StoreError::Conflict(format!(
            "request {id} changed meanwhile; try again"
        )));
    }
    event(
        tx,
        &Event {
            from: Some(current),
            to: Some(to),
            ..event_
        },
        now,
    )
    .await?;
    Ok(current)
}

/// One system's part of a request.
#[derive(Debug, Clone)]
pub struct SystemRow {
    /// The system.
    pub system: String,
    /// Where it stands.
    pub state: SystemState,
    /// The connector's id and version.
    pub connector: Option<String>,
    /// SHA-256 of the connector's component the plan was made with.
    pub component_sha256: Option<String>,
    /// The plan (sealed JSON).
    pub plan_sealed: Option<Vec<u8>>,
    /// The result (sealed JSON).
    pub result_sealed: Option<Vec<u8>>,
    /// The kind of the last error.
    pub error_kind: Option<String>,
    /// The last error (sealed).
    pub error_sealed: Option<Vec<u8>>,
    /// Counts (JSON; no personal data).
    pub counts: String,
    /// Last change.
    pub updated_at: i64,
}

/// Write one system's part of a request (plan time).
pub async fn put_system(
    tx: &mut Transaction<'static, Any>,
    request_id: &str,
    row: &SystemRow,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO request_systems (request_id, system, state, connector, plan_sealed, result_sealed, error_kind, error_sealed, counts, updated_at, component_sha256) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT (request_id, system) DO UPDATE SET state = excluded.state, connector = excluded.connector, component_sha256 = excluded.component_sha256, plan_sealed = excluded.plan_sealed, \
         result_sealed = excluded.result_sealed, error_kind = excluded.error_kind, error_sealed = excluded.error_sealed, counts = excluded.counts, updated_at = excluded.updated_at",
    )
    .bind(request_id)
    .bind(&row.system)
    .bind(row.state.as_str())
    .bind(&row.connector)
    .bind(&row.plan_sealed)
    .bind(&row.result_sealed)
    .bind(&row.error_kind)
    .bind(&row.error_sealed)
    .bind(&row.counts)
    .bind(row.updated_at)
    .bind(&row.component_sha256)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Record one system's result.
#[allow(clippy::too_many_arguments)]
pub async fn set_system_result(
    tx: &mut Transaction<'static, Any>,
    request_id: &str,
    system: &str,
    state: SystemState,
    result_sealed: Option<&[u8]>,
    error: Option<(&str, &[u8])>,
    counts: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE request_systems SET state = $1, result_sealed = COALESCE($2, result_sealed), error_kind = $3, error_sealed = $4, counts = $5, updated_at = $6 \
         WHERE request_id = $7 AND system = $8",
    )
    .bind(state.as_str())
    .bind(result_sealed.map(<[u8]>::to_vec))
    .bind(error.map(|e| e.0))
    .bind(error.map(|e| e.1.to_vec()))
    .bind(counts)
    .bind(now)
    .bind(request_id)
    .bind(system)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Replace one system's plan and counts (an approver's exclusion, before
/// approval).
pub async fn set_system_plan(
    tx: &mut Transaction<'static, Any>,
    request_id: &str,
    system: &str,
    plan_sealed: &[u8],
    counts: &str,
    now: i64,
) -> Result<(), StoreError> {
    let changed = sqlx::query(
        "UPDATE request_systems SET plan_sealed = $1, counts = $2, updated_at = $3 WHERE request_id = $4 AND system = $5",
    )
    .bind(plan_sealed.to_vec())
    .bind(counts)
    .bind(now)
    .bind(request_id)
    .bind(system)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if changed != 1 {
        return Err(StoreError::NotFound {
            what: "system of the request",
            id: system.to_string(),
        });
    }
    Ok(())
}

/// Set one system's state only.
pub async fn set_system_state(
    tx: &mut Transaction<'static, Any>,
    request_id: &str,
    system: &str,
    state: SystemState,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE request_systems SET state = $1, updated_at = $2 WHERE request_id = $3 AND system = $4",
    )
    .bind(state.as_str())
    .bind(now)
    .bind(request_id)
    .bind(system)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn system_row(r: &AnyRow) -> Result<SystemRow, StoreError> {
    let state: String = r.try_get("state")?;
    Ok(SystemRow {
        system: r.try_get("system")?,
        state: SystemState::parse(&state).map_or_else(corrupt("system state"), Ok)?,
        connector: r.try_get("connector")?,
        component_sha256: r.try_get("component_sha256")?,
        plan_sealed: r.try_get("plan_sealed")?,
        result_sealed: r.try_get("result_sealed")?,
        error_kind: r.try_get("error_kind")?,
        error_sealed: r.try_get("error_sealed")?,
        counts: r.try_get("counts")?,
        updated_at: r.try_get("updated_at")?,
    })
}

const SYSTEM_COLUMNS: &str = "system, state, connector, component_sha256, plan_sealed, result_sealed, error_kind, error_sealed, counts, updated_at";

/// A request's systems, by name.
pub async fn systems(pool: &AnyPool, request_id: &str) -> Result<Vec<SystemRow>, StoreError> {
    systems_on(&mut *pool.acquire().await?, request_id).await
}

/// A request's systems, inside a transaction.
pub async fn systems_tx(
    tx: &mut Transaction<'static, Any>,
    request_id: &str,
) -> Result<Vec<SystemRow>, StoreError> {
    systems_on(tx, request_id).await
}

async fn systems_on(
    conn: &mut AnyConnection,
    request_id: &str,
) -> Result<Vec<SystemRow>, StoreError> {
    sqlx::query(&format!(
        "SELECT {SYSTEM_COLUMNS} FROM request_systems WHERE request_id = $1 ORDER BY system"
    ))
    .bind(request_id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(system_row)
    .collect()
}

/// Requests by state, for listings and metrics.
pub async fn count_by_state(pool: &AnyPool) -> Result<Vec<(String, i64)>, StoreError> {
    Ok(
        sqlx::query_as("SELECT state, COUNT(*) FROM requests GROUP BY state ORDER BY state")
            .fetch_all(pool)
            .await?,
    )
}

/// Lock a request's row until the transaction ends (`FOR UPDATE`, on
/// PostgreSQL; SQLite's write transactions already hold the database).
pub async fn lock(
    tx: &mut Transaction<'static, Any>,
    id: &str,
    for_update: bool,
) -> Result<(), StoreError> {
    let sql = if for_update {
        "SELECT id FROM requests WHERE id = $1 FOR UPDATE"
    } else {
        "SELECT id FROM requests WHERE id = $1"
    };
    sqlx::query(sql).bind(id).fetch_optional(&mut **tx).await?;
    Ok(())
}
