//! Moving a request along once its plan is known: queueing one task per
//! planned system, and settling the request (completed, partially
//! completed, failed) when every task is over. Shared by the operators'
//! decisions ([`super::engine`]) and the workers.

use super::policy::Policy;
use super::request::{RequestError, event, operation_of};
use oubli_model::{RequestKind, RequestState, SystemState};
use oubli_model::{TaskOp, TaskState};
use oubli_store::Backend;
use oubli_store::Tx;
use oubli_store::requests::{self, Changes, RequestRow};
use oubli_store::tasks;
use std::collections::BTreeMap;

/// Queue one task per planned system.
pub(crate) async fn queue_system_tasks(
    tx: &mut Tx,
    row: &RequestRow,
    policy: &Policy,
    now: i64,
) -> Result<(), RequestError> {
    let op = operation_of(row.kind);
    for s in requests::systems_tx(tx, &row.id).await? {
        if matches!(s.state, SystemState::Planned | SystemState::LocateFailed) {
            tasks::enqueue(
                tx,
                &row.id,
                &s.system,
                op,
                TaskState::Available,
                i64::from(policy.max_attempts),
                now,
            )
            .await?;
            requests::set_system_state(tx, &row.id, &s.system, SystemState::Running, now).await?;
        }
    }
    Ok(())
}

pub(crate) async fn settle_locked(
    tx: &mut Tx,
    backend: Backend,
    request_id: &str,
    actor: &str,
    now: i64,
) -> Result<(), RequestError> {
    // Two workers finishing a request's last two tasks at once: on
    // PostgreSQL, the second waits on this row lock and then sees the
    // first's task as finished, so exactly one of them settles.
    requests::lock(tx, request_id, backend == Backend::Postgres).await?;
    settle(tx, request_id, actor, now).await
}

/// End a request whose tasks are all over: completed when every system did
/// its part (or had nothing), partially completed when some did not, failed
/// when none did.
pub(crate) async fn settle(
    tx: &mut Tx,
    request_id: &str,
    actor: &str,
    now: i64,
) -> Result<(), RequestError> {
    let row = requests::get_tx(tx, request_id).await?;
    if row.state != RequestState::Executing {
        return Ok(());
    }
    let tasks = tasks::for_request_tx(tx, request_id).await?;
    if tasks
        .iter()
        .any(|t| t.op != TaskOp::Plan && !t.state.is_final())
    {
        return Ok(());
    }
    if super::recipients::queue(tx, &row, &tasks, now).await? {
        return Ok(());
    }
    let systems = requests::systems_tx(tx, request_id).await?;
    let states: Vec<SystemState> = systems.iter().map(|s| s.state).collect();
    let state = super::bundle::outcome(&states);
    // An access or portability request ends with its answer, assembled and
    // kept by one more task while the systems still hold what was read.
    if matches!(row.kind, RequestKind::Access | RequestKind::Portability)
        && state != RequestState::Failed
        && !tasks.iter().any(|t| t.op == TaskOp::Answer)
    {
        let policy = super::request::snapshot(&row)?;
        tasks::enqueue(
            tx,
            request_id,
            "",
            TaskOp::Answer,
            TaskState::Available,
            i64::from(policy.max_attempts),
            now,
        )
        .await?;
        return Ok(());
    }
    let summary: BTreeMap<&str, &str> = systems
        .iter()
        .map(|s| (s.system.as_str(), s.state.as_str()))
        .collect();
    requests::transition(
        tx,
        request_id,
        &[RequestState::Executing],
        state,
        &Changes {
            summary: Some(serde_json::to_string(&summary).expect("summary serialises")),
            ..Changes::default()
        },
        event(request_id, actor, "settled", None),
        now,
    )
    .await?;
    tracing::info!(request = %request_id, state = %state, "request settled");
    Ok(())
}
