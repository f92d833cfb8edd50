//! What each operation does in one attempt of a task, and what it came
//! to ([`Progress`]): planning (search everywhere, decide per record),
//! erasing (search first on a second attempt, poll the vendor's job,
//! search again to verify), exporting, rectifying (correct the records that
//! hold the field, read them back), restricting. Nothing here writes to the
//! store: the worker seals and writes what these return, under the lease.

use super::engine::Engine;
use super::locate::SystemAnswer;
use super::policy::Policy;
use super::request::{
    Action, Counts, Params, PlanItem, RequestError, SystemPlan, SystemResult, event, operation_of,
    restriction_scopes, snapshot, subject_indexes,
};
use oubli_model::{
    ConnectorError, EraseMode, Exported, Located, ManualTask, Operation, Outcome, RecordRef, Role,
    Status, Subject,
};
use oubli_model::{RequestKind, RequestState, SystemState};
use oubli_model::{Stage, TaskOp};
use oubli_runtime::{CallError, Connector};
use oubli_store::StoreError;
use oubli_store::keys::Sealed;
use oubli_store::requests::{self, Changes, RequestRow, SystemRow};
use oubli_store::tasks::TaskRow;
use std::collections::{BTreeMap, BTreeSet};

use super::progress::Progress;

/// What a task needs to run.
struct Cx {
    row: RequestRow,
    policy: Policy,
    subject: Subject,
    params: Params,
    plan: SystemPlan,
    prior: Option<SystemResult>,
    /// The system could not be searched when planning and was searched at
    /// the start of this attempt instead.
    searched_now: bool,
    /// When this attempt started.
    now: i64,
    /// The categories of this system that portability covers (what the
    /// register makes portable; the connector's flags without a register).
    portable: BTreeSet<String>,
}

impl Cx {
    /// How a result was verified, saying when the search happened.
    fn verified(&self, how: &str) -> Option<String> {
        Some(if self.searched_now {
            format!("{how} (searched at execution: the system could not be searched when planning)")
        } else {
            how.to_string()
        })
    }
}

pub(crate) async fn run_task(engine: &Engine, task: &TaskRow) -> Result<Progress, RequestError> {
    let row = requests::get(engine.store.pool(), &task.request_id).await?;
    if row.state.is_final() {
        return Ok(Progress::Gone);
    }
    let policy = snapshot(&row)?;
    let id = row.id.clone();
    let subject: Subject = engine
        .vault
        .open_json(&id, Sealed::Subject, &row.subject_sealed)
        .await?;
    let params = match &row.params_sealed {
        Some(p) => engine.vault.open_json(&id, Sealed::Params, p).await?,
        None => Params::default(),
    };
    if task.op == TaskOp::Plan {
        return plan(engine, row, &policy, &subject).await;
    }
    if task.op == TaskOp::Notify {
        return super::recipients::notify(engine, &row, &policy, &subject, task).await;
    }
    if task.op == TaskOp::Answer {
        return Ok(answer(engine, &row, &subject).await);
    }
    let system = requests::systems(engine.store.pool(), &id)
        .await?
        .into_iter()
        .find(|s| s.system == task.system)
        .ok_or(StoreError::Corrupt("task without its system"))?;
    let plan: SystemPlan = match &system.plan_sealed {
        Some(p) => {
            engine
                .vault
                .open_json(&id, Sealed::Plan(&task.system), p)
                .await?
        }
        None => SystemPlan::default(),
    };
    let prior: Option<SystemResult> = match &system.result_sealed {
        Some(p) => Some(
            engine
                .vault
                .open_json(&id, Sealed::Result(&task.system), p)
                .await?,
        ),
        None => None,
    };
    // A plan made when the task first ran (the system could not be
    // searched when planning) holds for the stages after it.
    let plan = match prior.as_ref().and_then(|r| r.plan.clone()) {
        Some(p) if task.stage != Stage::Act => p,
        _ => plan,
    };
    let connector = match engine.systems.registry().loaded(&task.system) {
        Some(Ok(c)) => c.clone(),
        Some(Err(e)) => {
            return Ok(Progress::permanent(
                task.stage,
                prior,
                "refused",
                e.to_string(),
            ));
        }
        None => {
            return Ok(Progress::permanent(
                task.stage,
                prior,
                "refused",
                "the system is no longer configured".into(),
            ));
        }
    };
    let categories = &connector.manifest().categories;
    let portable = match &engine.systems.config().register {
        Some(r) => r.portable(&task.system, categories),
        None => categories
            .iter()
            .filter(|c| c.portable)
            .map(|c| c.name.clone())
            .collect(),
    };
    let mut cx = Cx {
        portable,
        row,
        policy,
        subject,
        params,
        plan,
        prior,
        searched_now: false,
        now: engine.store.now(),
    };
    // "Could not look" never turns into "found nothing": a system whose
    // search failed when planning is searched now, before anything is read
    // or changed in it. A failure here fails the task (retried, then
    // needs-attention), so the request cannot complete on it. Erasure does
    // its own search first ([`erase`]).
    if cx.plan.error.is_some()
        && task.stage == Stage::Act
        && matches!(task.op, TaskOp::Export | TaskOp::Rectify | TaskOp::Restrict)
    {
        match connector.locate(&cx.subject).await {
            Ok(found) => {
                cx.plan.items = plan_items(&cx.policy, &connector, task.op, &found);
                cx.plan.warnings = plan_warnings(&found);
                cx.plan.error = None;
                cx.searched_now = true;
            }
            Err(e) => return Ok(Progress::failed(Stage::Act, None, &e)),
        }
    }
    Ok(match task.op {
        TaskOp::Plan => unreachable!("handled above"),
        TaskOp::Erase => erase(&cx, task, &connector).await,
        TaskOp::Export => export(&cx, task, &connector).await,
        TaskOp::Rectify => rectify(&cx, task, &connector).await,
        TaskOp::Restrict => restrict(&cx, task, &connector).await,
        TaskOp::Notify | TaskOp::Answer => unreachable!("handled above"),
    })
}

/// Assemble the answer and keep it under a new attempt (a crashed or
/// repeated attempt leaves pieces that the kept one replaces).
async fn answer(engine: &Engine, row: &RequestRow, subject: &Subject) -> Progress {
    let attempt = match oubli_crypto::random_token(9) {
        Ok(a) => a,
        Err(e) => return Progress::permanent(Stage::Act, None, "host", e.to_string()),
    };
    match engine.assemble(row, subject, &attempt).await {
        Ok((report, chunks)) => Progress::Answered {
            attempt,
            report,
            chunks,
        },
        Err(e) => Progress::Failed {
            stage: Stage::Act,
            result: None,
            kind: "host".into(),
            transient: matches!(e.kind(), super::request::ErrorKind::Unavailable),
            message: e.to_string(),
            retry_after_ms: None,
        },
    }
}

/// Locate everywhere, decide per record, store the plan.
async fn plan(
    engine: &Engine,
    row: RequestRow,
    policy: &Policy,
    subject: &Subject,
) -> Result<Progress, RequestError> {
    {
        let mut tx = engine.store.write_logged().await?;
        if row.state == RequestState::Verified {
            requests::transition(
                &mut tx,
                &row.id,
                &[RequestState::Verified],
                RequestState::Planning,
                &Changes::default(),
                event(&row.id, "worker", "planning", None),
                engine.store.now(),
            )
            .await?;
        }
        oubli_store::commit(tx).await?;
    }
    let report = engine.systems.locate(subject).await;
    let op = operation_of(row.kind);
    let mut systems = Vec::new();
    let mut anything = false;
    let mut failures = false;
    for r in report.systems {
        let mut out = SystemRow {
            system: r.system.clone(),
            state: SystemState::Planned,
            connector: r.connector.clone(),
            component_sha256: engine
                .systems
                .registry()
                .get(&r.system)
                .map(|c| c.info().sha256.clone()),
            plan_sealed: None,
            result_sealed: None,
            error_kind: None,
            error_sealed: None,
            counts: "{}".into(),
            updated_at: engine.store.now(),
        };
        let mut plan = SystemPlan::default();
        let mut counts = Counts::default();
        match r.answer {
            SystemAnswer::Disabled => continue,
            SystemAnswer::Refused { error } => {
                out.state = SystemState::Unavailable;
                out.error_kind = Some("refused".into());
                out.error_sealed = Some(
                    engine
                        .vault
                        .seal(&row.id, Sealed::Error(&r.system), error.as_bytes())
                        .await?,
                );
                failures = true;
            }
            SystemAnswer::Failed { kind, error, .. } => {
                out.state = SystemState::LocateFailed;
                plan.error = Some(format!("{kind}: {error}"));
                out.error_kind = Some(kind);
                out.error_sealed = Some(
                    engine
                        .vault
                        .seal(&row.id, Sealed::Error(&r.system), error.as_bytes())
                        .await?,
                );
                anything = true;
            }
            SystemAnswer::Found { records } => {
                counts.found = records.len() as u32;
                plan.items = match engine.systems.registry().get(&r.system) {
                    Some(c) => plan_items(policy, c, op, &records),
                    None => Vec::new(),
                };
                plan.warnings = plan_warnings(&records);
                if op == TaskOp::Restrict || !plan.items.is_empty() {
                    anything = true;
                } else {
                    out.state = SystemState::Nothing;
                }
                counts.retained = plan
                    .items
                    .iter()
                    .filter(|i| matches!(i.action, Action::Retain(_)))
                    .count() as u32;
            }
        }
        out.counts = serde_json::to_string(&counts).expect("counts serialise");
        out.plan_sealed = Some(
            engine
                .vault
                .seal_json(&row.id, Sealed::Plan(&r.system), &plan)
                .await?,
        );
        systems.push(out);
    }
    let needs_approval = row.kind == RequestKind::Erasure && policy.four_eyes;
    let next = if needs_approval && (anything || failures) {
        RequestState::AwaitingApproval
    } else {
        RequestState::Executing
    };
    tracing::info!(request = %row.id, systems = systems.len(), subject = %subject_indexes(&engine.vault, subject).first().map(|h| &h[..8]).unwrap_or("-"), "planned");
    Ok(Progress::Planned { systems, next })
}

/// Why a record shared with other people is kept when the person cannot
/// be taken off it.
pub(crate) const SHARED_PARTICIPANT: &str = "shared with other people: the person is one party of it and this system cannot take them off; an operator reviews it";
/// Why a record that only mentions the person is kept.
pub(crate) const SHARED_MENTION: &str = "shared with other people: it is someone else's and only mentions the person; an operator reviews it";

/// What the plan does to each record found. For an erasure: what a hold
/// keeps is kept; what the person owns is deleted or anonymised (as the
/// policy says for its kind); the person is taken off what they share with
/// others where the system can (`detach`), else it is kept for an operator
/// to review, as is what only mentions them.
fn plan_items(
    policy: &Policy,
    connector: &Connector,
    op: TaskOp,
    records: &[Located],
) -> Vec<PlanItem> {
    let system = connector.name();
    records
        .iter()
        .map(|l| {
            let action = match op {
                TaskOp::Erase => {
                    if let Some(reason) = &l.hold {
                        Action::Retain(reason.clone())
                    } else if let Some(h) = policy.hold(system, &l.reference.kind) {
                        Action::Retain(h.reason.clone())
                    } else {
                        match l.role {
                            Role::Owner | Role::Unreported => {
                                match policy.erase_mode(system, &l.reference.kind) {
                                    EraseMode::Delete => Action::Delete,
                                    EraseMode::Anonymise => Action::Anonymise,
                                }
                            }
                            Role::Participant if connector.offers(Operation::Detach) => {
                                Action::Detach
                            }
                            Role::Participant => Action::Retain(SHARED_PARTICIPANT.into()),
                            Role::Mentioned => Action::Retain(SHARED_MENTION.into()),
                        }
                    }
                }
                TaskOp::Export => Action::Export,
                TaskOp::Rectify => Action::Rectify,
                TaskOp::Restrict | TaskOp::Plan | TaskOp::Notify | TaskOp::Answer => {
                    Action::Restrict
                }
            };
            PlanItem {
                reference: l.reference.clone(),
                role: l.role,
                summary: l.summary.clone(),
                action,
            }
        })
        .collect()
}

/// What the approver must look at in a system's plan: identifiers shared by
/// several people, and records whose connector does not say whose they are.
fn plan_warnings(records: &[Located]) -> Vec<String> {
    let mut warnings = shared_identifier_warnings(records);
    let unreported = records
        .iter()
        .filter(|l| l.role == Role::Unreported)
        .count();
    if unreported > 0 {
        warnings.push(format!(
            "{unreported} records from a connector built against contract 0.1, which does not say whose records they are: they are treated as the person's own; check for records shared with other people before approving (exclude them from the plan)"
        ));
    }
    warnings
}

/// Several person records (contacts, customers) matching one subject in one
/// system usually means an identifier shared by several people (a family
/// email, a switchboard number): the approver must look before erasing.
fn shared_identifier_warnings(records: &[Located]) -> Vec<String> {
    let mut per_kind: BTreeMap<&str, usize> = BTreeMap::new();
    for l in records {
        let k = l.reference.kind.as_str();
        if ["contact", "customer", "person", "lead", "user"]
            .iter()
            .any(|p| k.contains(p))
        {
            *per_kind.entry(k).or_default() += 1;
        }
    }
    per_kind
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(k, n)| {
            format!("{n} {k} records match: the identifiers may be shared by several people; check before erasing")
        })
        .collect()
}

fn targets(plan: &SystemPlan) -> Vec<(RecordRef, EraseMode)> {
    plan.items
        .iter()
        .filter_map(|i| match i.action {
            Action::Delete => Some((i.reference.clone(), EraseMode::Delete)),
            Action::Anonymise => Some((i.reference.clone(), EraseMode::Anonymise)),
            _ => None,
        })
        .collect()
}

fn detach_targets(plan: &SystemPlan) -> Vec<RecordRef> {
    plan.items
        .iter()
        .filter(|i| i.action == Action::Detach)
        .map(|i| i.reference.clone())
        .collect()
}

fn retained(plan: &SystemPlan) -> Vec<Outcome> {
    plan.items
        .iter()
        .filter_map(|i| match &i.action {
            Action::Retain(r) => Some(Outcome {
                reference: i.reference.clone(),
                status: Status::Retained(r.clone()),
            }),
            _ => None,
        })
        .collect()
}

/// Keep the outcomes a connector reported for the records it was asked
/// about; or, when it could not act, what the task comes to instead: a
/// manual task for those records, or a failure.
fn take_outcomes(
    result: &mut SystemResult,
    answer: Result<Vec<Outcome>, CallError>,
    op: &str,
    connector: &Connector,
    plan: &SystemPlan,
    asked: &[RecordRef],
) -> Option<Progress> {
    match answer {
        Ok(outcomes) => {
            let asked: BTreeSet<&RecordRef> = asked.iter().collect();
            result.outcomes.extend(
                outcomes
                    .into_iter()
                    .filter(|o| asked.contains(&o.reference)),
            );
            None
        }
        Err(e) => {
            let Some(manual) = manual_of(&e) else {
                return Some(Progress::failed(Stage::Act, None, &e));
            };
            let items: Vec<PlanItem> = plan
                .items
                .iter()
                .filter(|i| asked.contains(&i.reference))
                .cloned()
                .collect();
            manual_task(result, op, connector, manual, &items);
            Some(Progress::Manual {
                result: std::mem::take(result),
            })
        }
    }
}

/// A connector error that makes a manual task: its reason, and the steps
/// when the connector gave them (contract 0.2).
fn manual_of(e: &CallError) -> Option<(String, Option<ManualTask>)> {
    match e {
        CallError::Connector(ConnectorError::NotSupported(why)) => Some((why.clone(), None)),
        CallError::Connector(ConnectorError::Manual(task)) => {
            Some((task.summary.clone(), Some(task.clone())))
        }
        _ => None,
    }
}

/// A manual task from a connector's error: the instructions whole, and the
/// steps and records when given.
fn manual_task(
    result: &mut SystemResult,
    op: &str,
    connector: &Connector,
    (why, task): (String, Option<ManualTask>),
    items: &[PlanItem],
) {
    let mut text = instructions(
        op,
        connector,
        &why,
        if task.is_some() { &[] } else { items },
    );
    if let Some(t) = &task {
        for (n, step) in t.steps.iter().enumerate() {
            text.push_str(&format!("\n{}. {step}", n + 1));
        }
        if !t.records.is_empty() {
            text.push_str("\nRecords, checked by the verifying search once done:");
            for r in &t.records {
                text.push_str(&format!("\n- {} {}", r.kind, r.id));
            }
        }
    }
    result.instructions = Some(text);
    result.manual = task;
}

fn instructions(op: &str, connector: &Connector, why: &str, refs: &[PlanItem]) -> String {
    let mut text = format!(
        "{} ({}) cannot {op} through its API: {why}\nDo it by hand in the system, then run `oubli request done ID --system SYSTEM --note …`.",
        connector.manifest().name,
        connector.manifest().id
    );
    for i in refs {
        text.push_str(&format!("\n- {} {}", i.reference.kind, i.reference.id));
    }
    text
}

async fn erase(cx: &Cx, task: &TaskRow, connector: &Connector) -> Progress {
    let fs = connector.for_subject(&cx.subject);
    let mut result = cx.prior.clone().unwrap_or_default();
    let mut plan = cx.plan.clone();
    match task.stage {
        Stage::Act => {
            result = SystemResult::default();
            let mut goal = targets(&plan);
            // A second attempt (after a crash or an expired lease), or a
            // system that could not be searched when planning: search now,
            // and erase only what is still there.
            if task.attempt > 1 || plan.error.is_some() {
                let found = match connector.locate(&cx.subject).await {
                    Ok(f) => f,
                    Err(e) => return Progress::failed(Stage::Act, None, &e),
                };
                if plan.error.is_some() {
                    plan.items = plan_items(&cx.policy, connector, TaskOp::Erase, &found);
                    plan.warnings = plan_warnings(&found);
                    plan.error = None;
                    goal = targets(&plan);
                    result.verified = Some(
                        "planned at execution: the system could not be searched when planning"
                            .into(),
                    );
                    result.plan = Some(plan.clone());
                }
                let here: BTreeSet<&RecordRef> = found.iter().map(|l| &l.reference).collect();
                let (still, gone): (Vec<_>, Vec<_>) =
                    goal.into_iter().partition(|(r, _)| here.contains(r));
                result
                    .outcomes
                    .extend(gone.into_iter().map(|(r, _)| Outcome {
                        reference: r,
                        status: Status::NotFound,
                    }));
                goal = still;
            }
            result.outcomes.extend(retained(&plan));
            if !goal.is_empty() {
                if !connector.offers(Operation::Erase) {
                    let items: Vec<PlanItem> = plan
                        .items
                        .iter()
                        .filter(|i| goal.iter().any(|(r, _)| *r == i.reference))
                        .cloned()
                        .collect();
                    result.instructions = Some(instructions(
                        "erase",
                        connector,
                        "it does not offer `erase`",
                        &items,
                    ));
                    return Progress::Manual { result };
                }
                for mode in [EraseMode::Delete, EraseMode::Anonymise] {
                    let refs: Vec<RecordRef> = goal
                        .iter()
                        .filter(|(_, m)| *m == mode)
                        .map(|(r, _)| r.clone())
                        .collect();
                    if refs.is_empty() {
                        continue;
                    }
                    let answer = fs.erase(&refs, mode).await;
                    if let Some(stop) =
                        take_outcomes(&mut result, answer, "erase", connector, &plan, &refs)
                    {
                        return stop;
                    }
                }
            }
            // Records shared with others: the person is taken off them.
            let shared = detach_targets(&plan);
            if !shared.is_empty() {
                let answer = connector.detach(&cx.subject, &shared).await;
                if let Some(stop) =
                    take_outcomes(&mut result, answer, "detach", connector, &plan, &shared)
                {
                    return stop;
                }
            }
            let tickets = pending_tickets(&result.outcomes);
            if !tickets.is_empty() {
                result.tickets = tickets;
                return Progress::Poll { result, polls: 0 };
            }
            settle_then_verify(cx, connector, &plan, result).await
        }
        Stage::Poll => match poll_all(&fs, &mut result).await {
            Err(e) => Progress::failed(Stage::Poll, Some(result), &e),
            Ok(true) => {
                if task.polls + 1 >= i64::from(cx.policy.max_polls) {
                    let polls = task.polls + 1;
                    Progress::permanent(
                        Stage::Poll,
                        Some(result),
                        "job-unfinished",
                        format!("the system's job is still pending after {polls} polls"),
                    )
                } else {
                    Progress::Poll {
                        result,
                        polls: task.polls + 1,
                    }
                }
            }
            Ok(false) => settle_then_verify(cx, connector, &plan, result).await,
        },
        Stage::Verify => verify_erasure(cx, connector, &plan, result).await,
    }
}

fn pending_tickets(outcomes: &[Outcome]) -> Vec<String> {
    let mut t: Vec<String> = outcomes
        .iter()
        .filter_map(|o| match &o.status {
            Status::Pending(t) => Some(t.clone()),
            _ => None,
        })
        .collect();
    t.sort();
    t.dedup();
    t
}

/// Poll every ticket; replace the pending outcomes with what the jobs say.
/// Returns whether anything is still pending.
async fn poll_all(
    fs: &oubli_runtime::ForSubject<'_>,
    result: &mut SystemResult,
) -> Result<bool, CallError> {
    for ticket in result.tickets.clone() {
        let outcomes = fs.poll(&ticket).await?;
        for o in outcomes {
            if let Some(slot) = result
                .outcomes
                .iter_mut()
                .find(|x| x.reference == o.reference && x.status == Status::Pending(ticket.clone()))
            {
                slot.status = o.status;
            }
        }
    }
    let pending = pending_tickets(&result.outcomes);
    result.tickets = pending.clone();
    Ok(!pending.is_empty())
}

/// Verify now, or, for a system whose search lags its writes, come back
/// to verify once it has settled ([`Policy::search_settle_ms`]).
async fn settle_then_verify(
    cx: &Cx,
    connector: &Connector,
    plan: &SystemPlan,
    result: SystemResult,
) -> Progress {
    let delay_ms = cx
        .policy
        .search_settle_ms(connector.name(), connector.manifest().system_kind);
    if delay_ms == 0 {
        return verify_erasure(cx, connector, plan, result).await;
    }
    Progress::Settle { result, delay_ms }
}

/// Search again: anything planned for erasure and still found is a
/// failure, whatever the system reported.
async fn verify_erasure(
    cx: &Cx,
    connector: &Connector,
    plan: &SystemPlan,
    mut result: SystemResult,
) -> Progress {
    let found = match connector.locate(&cx.subject).await {
        Ok(f) => f,
        Err(e) => return Progress::failed(Stage::Verify, Some(result), &e),
    };
    let here: BTreeSet<&RecordRef> = found.iter().map(|l| &l.reference).collect();
    let mut counts = Counts {
        found: plan.items.len() as u32,
        ..Counts::default()
    };
    result.still_found.clear();
    for (r, _) in targets(plan) {
        let reported = result
            .outcomes
            .iter()
            .find(|o| o.reference == r)
            .map(|o| &o.status);
        if here.contains(&r) {
            match reported {
                Some(Status::Retained(_)) => counts.retained += 1,
                _ => {
                    result.still_found.push(r.clone());
                    counts.failed += 1;
                }
            }
        } else {
            match reported {
                Some(Status::NotFound) => counts.not_found += 1,
                Some(Status::Retained(_)) => counts.retained += 1,
                _ => {
                    counts.done += 1;
                    // Gone, whatever the system said (or did not say): the
                    // search confirms it.
                    if let Some(o) = result.outcomes.iter_mut().find(|o| o.reference == r) {
                        o.status = Status::Done;
                    } else {
                        result.outcomes.push(Outcome {
                            reference: r.clone(),
                            status: Status::Done,
                        });
                    }
                }
            }
        }
    }
    // Taken off a shared record: verified when the search no longer finds
    // the person as a party to it (gone, or only mentioned).
    let roles: BTreeMap<&RecordRef, Role> = found.iter().map(|l| (&l.reference, l.role)).collect();
    for r in detach_targets(plan) {
        let reported = result
            .outcomes
            .iter()
            .find(|o| o.reference == r)
            .map(|o| o.status.clone());
        match (roles.get(&r), reported) {
            (_, Some(Status::Retained(_))) => counts.retained += 1,
            (Some(Role::Owner | Role::Participant | Role::Unreported), _) => {
                result.still_found.push(r.clone());
                counts.failed += 1;
            }
            _ => {
                counts.done += 1;
                match result.outcomes.iter_mut().find(|o| o.reference == r) {
                    Some(o) => o.status = Status::Done,
                    None => result.outcomes.push(Outcome {
                        reference: r.clone(),
                        status: Status::Done,
                    }),
                }
            }
        }
    }
    // Records a manual task named beyond the plan's targets are checked too.
    if let Some(m) = &result.manual {
        let planned: BTreeSet<RecordRef> = targets(plan)
            .into_iter()
            .map(|(r, _)| r)
            .chain(detach_targets(plan))
            .collect();
        for r in m.records.iter().filter(|r| !planned.contains(*r)) {
            if here.contains(r) {
                result.still_found.push(r.clone());
                counts.failed += 1;
            }
        }
    }
    counts.retained += plan
        .items
        .iter()
        .filter(|i| matches!(i.action, Action::Retain(_)))
        .count() as u32;
    result.verified = Some(format!(
        "searched again at {}: {} of the erased records still found",
        super::deadline::date(cx.now),
        result.still_found.len()
    ));
    let clean = result.still_found.is_empty();
    Progress::verified(clean, result, counts)
}

async fn export(cx: &Cx, task: &TaskRow, connector: &Connector) -> Progress {
    let mut result = cx.prior.clone().unwrap_or_default();
    if task.stage == Stage::Verify {
        // A manual export, marked done by an operator.
        let counts = Counts {
            found: cx.plan.items.len() as u32,
            done: cx.plan.items.len() as u32,
            ..Counts::default()
        };
        return Progress::Finished {
            state: SystemState::Done,
            result,
            counts,
        };
    }
    if !connector.offers(Operation::Export) {
        result.instructions = Some(instructions(
            "export",
            connector,
            "it does not offer `export`",
            &cx.plan.items,
        ));
        return Progress::Manual { result };
    }
    let refs: Vec<RecordRef> = cx.plan.items.iter().map(|i| i.reference.clone()).collect();
    let fs = connector.for_subject(&cx.subject);
    let mut exported: Vec<Exported> = Vec::with_capacity(refs.len());
    for chunk in refs.chunks(50) {
        match fs.export(chunk).await {
            Ok(mut e) => exported.append(&mut e),
            Err(e) => {
                let Some(manual) = manual_of(&e) else {
                    return Progress::failed(Stage::Act, None, &e);
                };
                manual_task(&mut result, "export", connector, manual, &cx.plan.items);
                return Progress::Manual { result };
            }
        }
    }
    if cx.row.kind == RequestKind::Portability {
        for e in &mut exported {
            e.fields.retain(|f| cx.portable.contains(&f.category));
        }
    }
    let counts = Counts {
        found: refs.len() as u32,
        done: exported.len() as u32,
        not_found: refs.len().saturating_sub(exported.len()) as u32,
        ..Counts::default()
    };
    result.exported = exported;
    result.verified = if refs.is_empty() {
        cx.verified(&format!(
            "searched at {}: nothing found",
            super::deadline::date(cx.now)
        ))
    } else {
        cx.verified("read back from the system")
    };
    Progress::Finished {
        state: SystemState::Done,
        result,
        counts,
    }
}

async fn rectify(cx: &Cx, task: &TaskRow, connector: &Connector) -> Progress {
    let mut result = cx.prior.clone().unwrap_or_default();
    let changes: Vec<oubli_model::Change> = cx
        .params
        .changes
        .iter()
        .filter(|c| c.system.as_deref().is_none_or(|s| s == task.system))
        .map(|c| oubli_model::Change {
            field: c.field.clone(),
            new_value: c.new_value.clone(),
        })
        .collect();
    if changes.is_empty() || cx.plan.items.is_empty() {
        return Progress::Finished {
            state: SystemState::Nothing,
            result,
            counts: Counts::default(),
        };
    }
    let fs = connector.for_subject(&cx.subject);
    let all: Vec<RecordRef> = cx.plan.items.iter().map(|i| i.reference.clone()).collect();
    match task.stage {
        Stage::Act => {
            result = SystemResult::default();
            if !connector.offers(Operation::Rectify) {
                result.instructions = Some(instructions(
                    "rectify",
                    connector,
                    "it does not offer `rectify`",
                    &cx.plan.items,
                ));
                return Progress::Manual { result };
            }
            // Only the records that hold one of the fields are corrected (a
            // contact has a first name, a ticket does not).
            let before = match fs.export(&all).await {
                Ok(e) => e,
                Err(e) => return Progress::failed(Stage::Act, None, &e),
            };
            let targets: Vec<RecordRef> = before
                .iter()
                .filter(|e| {
                    e.fields
                        .iter()
                        .any(|f| changes.iter().any(|c| c.field == f.name))
                })
                .map(|e| e.reference.clone())
                .collect();
            if targets.is_empty() {
                result.verified = Some("no record here holds the fields to correct".into());
                return Progress::Finished {
                    state: SystemState::Nothing,
                    result,
                    counts: Counts {
                        found: all.len() as u32,
                        ..Counts::default()
                    },
                };
            }
            for r in &targets {
                match fs.rectify(r, &changes).await {
                    Ok(o) => result.outcomes.push(o),
                    Err(e) => {
                        let Some(manual) = manual_of(&e) else {
                            return Progress::failed(Stage::Act, None, &e);
                        };
                        manual_task(&mut result, "rectify", connector, manual, &cx.plan.items);
                        return Progress::Manual { result };
                    }
                }
            }
            let tickets = pending_tickets(&result.outcomes);
            if !tickets.is_empty() {
                result.tickets = tickets;
                return Progress::Poll { result, polls: 0 };
            }
            verify_rectification(&fs, &changes, &all, result).await
        }
        Stage::Poll => match poll_all(&fs, &mut result).await {
            Err(e) => Progress::failed(Stage::Poll, Some(result), &e),
            Ok(true) => Progress::Poll {
                result,
                polls: task.polls + 1,
            },
            Ok(false) => verify_rectification(&fs, &changes, &all, result).await,
        },
        Stage::Verify => verify_rectification(&fs, &changes, &all, result).await,
    }
}

/// Read the corrected records back: every corrected field must hold its new
/// value. The records checked are those corrected (or, after a manual
/// correction, every record that holds one of the fields).
async fn verify_rectification(
    fs: &oubli_runtime::ForSubject<'_>,
    changes: &[oubli_model::Change],
    all: &[RecordRef],
    mut result: SystemResult,
) -> Progress {
    let refs: Vec<RecordRef> = if result.outcomes.is_empty() {
        all.to_vec()
    } else {
        result
            .outcomes
            .iter()
            .map(|o| o.reference.clone())
            .collect()
    };
    let exported = match fs.export(&refs).await {
        Ok(e) => e,
        Err(e) => return Progress::failed(Stage::Verify, Some(result), &e),
    };
    result.mismatches.clear();
    let mut counts = Counts {
        found: all.len() as u32,
        ..Counts::default()
    };
    for r in &refs {
        let Some(e) = exported.iter().find(|e| &e.reference == r) else {
            counts.not_found += 1;
            continue;
        };
        if !e
            .fields
            .iter()
            .any(|f| changes.iter().any(|c| c.field == f.name))
        {
            continue;
        }
        let mut ok = true;
        for c in changes {
            let now = e
                .fields
                .iter()
                .find(|f| f.name == c.field)
                .map(|f| f.value.as_str());
            let matches = match (&c.new_value, now) {
                (Some(v), Some(n)) => v == n,
                (None, None) => true,
                (None, Some(n)) => n.is_empty(),
                (Some(_), None) => false,
            };
            if !matches {
                ok = false;
                result.mismatches.push(format!(
                    "{} {}: field {} does not hold the new value",
                    r.kind, r.id, c.field
                ));
            }
        }
        // Corrected, but the system keeps the old value somewhere (RT's
        // history): counted as the system reported it, so the counts agree
        // with the outcomes.
        let kept = result
            .outcomes
            .iter()
            .any(|o| &o.reference == r && matches!(o.status, Status::Retained(_)));
        if !ok {
            counts.failed += 1;
        } else if kept {
            counts.retained += 1;
        } else {
            counts.done += 1;
        }
    }
    result.verified = Some("read back from the system".into());
    let clean = result.mismatches.is_empty();
    Progress::verified(clean, result, counts)
}

async fn restrict(cx: &Cx, task: &TaskRow, connector: &Connector) -> Progress {
    let mut result = cx.prior.clone().unwrap_or_default();
    // A lift (Art. 18(3)) undoes the restriction it names, in its scope.
    let lifting = cx.row.kind == RequestKind::Lift;
    let scope = if lifting {
        restriction_scopes(RequestKind::Restriction, &cx.params).unwrap_or_default()
    } else {
        restriction_scopes(cx.row.kind, &cx.params).unwrap_or_default()
    };
    let what = if lifting {
        format!("lift the restriction of processing ({})", scope.join(", "))
    } else {
        format!("restrict processing ({})", scope.join(", "))
    };
    match task.stage {
        Stage::Verify => Progress::Finished {
            state: SystemState::Done,
            result,
            counts: Counts {
                done: 1,
                ..Counts::default()
            },
        },
        Stage::Poll => {
            let fs = connector.for_subject(&cx.subject);
            match poll_all(&fs, &mut result).await {
                Err(e) => Progress::failed(Stage::Poll, Some(result), &e),
                Ok(true) => Progress::Poll {
                    result,
                    polls: task.polls + 1,
                },
                Ok(false) => restricted(result),
            }
        }
        Stage::Act => {
            if !connector.offers(Operation::Restrict) {
                result.instructions = Some(instructions(
                    &what,
                    connector,
                    "it does not offer `restrict`",
                    &cx.plan.items,
                ));
                return Progress::Manual { result };
            }
            match connector.restrict(&cx.subject, &scope, !lifting).await {
                Ok(outcomes) => {
                    result.outcomes = outcomes;
                    let tickets = pending_tickets(&result.outcomes);
                    if !tickets.is_empty() {
                        result.tickets = tickets;
                        return Progress::Poll { result, polls: 0 };
                    }
                    restricted(result)
                }
                Err(e) => {
                    let Some(manual) = manual_of(&e) else {
                        return Progress::failed(Stage::Act, None, &e);
                    };
                    manual_task(&mut result, &what, connector, manual, &cx.plan.items);
                    Progress::Manual { result }
                }
            }
        }
    }
}

/// A restriction (or its lift) as the system reported it. A record the
/// system kept out of it (it cannot restrict only the scope asked, say)
/// leaves the system partial: the restriction did not take effect there.
fn restricted(result: SystemResult) -> Progress {
    let mut counts = Counts::default();
    for o in &result.outcomes {
        match o.status {
            Status::Done => counts.done += 1,
            Status::Retained(_) => counts.retained += 1,
            Status::NotFound => counts.not_found += 1,
            Status::Pending(_) => counts.failed += 1,
        }
    }
    Progress::Finished {
        state: if counts.retained + counts.failed > 0 {
            SystemState::Partial
        } else {
            SystemState::Done
        },
        result,
        counts,
    }
}
