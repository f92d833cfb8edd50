//! Art. 19: after a rectification, erasure or restriction, each recipient
//! the data was disclosed to is told, unless that is impossible or
//! involves disproportionate effort. `[[policy.recipients]]` lists who
//! received data from which systems and how to tell them: a signed webhook
//! (retried until it answers 2xx), or an email text or a manual step that
//! an operator carries out and ticks off (`request done`). Each is a task
//! of the request, shown with it as `recipient:<name>`, and the request is
//! over only once they are; the subject can then be told who they were
//! (`request show`).

use super::engine::Engine;
use super::policy::{Policy, Recipient, Via};
use super::progress::Progress;
use super::request::{Counts, RequestError, SystemResult};
use oubli_model::Subject;
use oubli_model::{RequestKind, SystemState};
use oubli_model::{Stage, TaskOp, TaskState};
use oubli_store::Tx;
use oubli_store::requests::{self, RequestRow, SystemRow};
use oubli_store::tasks::{self, TaskRow};

/// The prefix of a recipient's row among a request's systems.
pub const PREFIX: &str = "recipient:";

/// Whether Art. 19 applies to this kind of request.
fn applies(kind: RequestKind) -> bool {
    matches!(
        kind,
        RequestKind::Rectification
            | RequestKind::Erasure
            | RequestKind::Restriction
            | RequestKind::Lift
    )
}

/// When every system's task is over: queue a notification for each
/// recipient of a system that did something. True if any was queued (the
/// request then waits for them).
pub(crate) async fn queue(
    tx: &mut Tx,
    row: &RequestRow,
    tasks: &[TaskRow],
    now: i64,
) -> Result<bool, RequestError> {
    if !applies(row.kind) || tasks.iter().any(|t| t.op == TaskOp::Notify) {
        return Ok(false);
    }
    let policy = super::request::snapshot(row)?;
    if policy.recipients.is_empty() {
        return Ok(false);
    }
    let systems = requests::systems_tx(tx, &row.id).await?;
    let affected: Vec<&str> = systems
        .iter()
        .filter(|s| matches!(s.state, SystemState::Done | SystemState::Partial))
        .map(|s| s.system.as_str())
        .collect();
    let mut queued = false;
    for r in &policy.recipients {
        if !r.systems.iter().any(|s| affected.contains(&s.as_str())) {
            continue;
        }
        let system = format!("{PREFIX}{}", r.name);
        requests::put_system(
            tx,
            &row.id,
            &SystemRow {
                system: system.clone(),
                state: SystemState::Running,
                connector: None,
                component_sha256: None,
                plan_sealed: None,
                result_sealed: None,
                error_kind: None,
                error_sealed: None,
                counts: "{}".into(),
                updated_at: now,
            },
        )
        .await?;
        tasks::enqueue(
            tx,
            &row.id,
            &system,
            TaskOp::Notify,
            TaskState::Available,
            i64::from(policy.max_attempts),
            now,
        )
        .await?;
        queued = true;
    }
    if queued {
        tracing::info!(request = %row.id, "recipients to notify (Art. 19)");
    }
    Ok(queued)
}

fn what(kind: RequestKind) -> &'static str {
    match kind {
        RequestKind::Rectification => "rectified",
        RequestKind::Erasure => "erased",
        _ => "restricted",
    }
}

/// The notice a recipient gets, as text (email, manual step).
fn text(row: &RequestRow, r: &Recipient, subject: &Subject, systems: &[String]) -> String {
    let mut ids: Vec<String> = subject.emails.clone();
    ids.extend(subject.phones.iter().cloned());
    ids.extend(
        subject
            .external_ids
            .iter()
            .map(|x| format!("{}:{}", x.namespace, x.id)),
    );
    let head = match (r.via, &r.address) {
        (Via::Email, Some(a)) => format!(
            "To: {a}\nSubject: Data subject request {}: personal data {}\n\n",
            row.id,
            what(row.kind)
        ),
        _ => String::new(),
    };
    format!(
        "{head}Under Art. 19 GDPR we inform you that, at the data subject's request ({}), we {} their personal data in: {}.\n\
         The person: {}.\n\
         Categories you received from us: {}.\n\
         Please do the same with the copies you hold, and confirm.",
        row.id,
        what(row.kind),
        systems.join(", "),
        ids.join(", "),
        if r.categories.is_empty() {
            "all".to_string()
        } else {
            r.categories.join(", ")
        },
    )
}

/// Tell one recipient.
pub(crate) async fn notify(
    engine: &Engine,
    row: &RequestRow,
    policy: &Policy,
    subject: &Subject,
    task: &TaskRow,
) -> Result<Progress, RequestError> {
    let name = task.system.strip_prefix(PREFIX).unwrap_or(&task.system);
    let Some(r) = policy.recipients.iter().find(|r| r.name == name) else {
        return Ok(Progress::permanent(
            task.stage,
            None,
            "refused",
            format!("no recipient {name} in the request's policy"),
        ));
    };
    let systems: Vec<String> = requests::systems(engine.store.pool(), &row.id)
        .await?
        .into_iter()
        .filter(|s| {
            !s.system.starts_with(PREFIX)
                && matches!(s.state, SystemState::Done | SystemState::Partial)
                && r.systems.contains(&s.system)
        })
        .map(|s| s.system)
        .collect();
    let done = |how: String| Progress::Finished {
        state: SystemState::Done,
        result: SystemResult {
            verified: Some(how),
            ..SystemResult::default()
        },
        counts: Counts {
            found: 1,
            done: 1,
            ..Counts::default()
        },
    };
    if task.stage == Stage::Verify {
        return Ok(done(format!(
            "{} confirmed by an operator",
            match r.via {
                Via::Email => "email sent",
                _ => "recipient told",
            }
        )));
    }
    match r.via {
        Via::Email | Via::Manual => Ok(Progress::Manual {
            result: SystemResult {
                instructions: Some(text(row, r, subject, &systems)),
                ..SystemResult::default()
            },
        }),
        Via::Webhook => {
            let secret = match engine
                .systems
                .config()
                .recipient_secrets
                .get(name)
                .map(|s| s.resolve())
            {
                Some(Ok(s)) => s,
                Some(Err(e)) => return Ok(Progress::permanent(task.stage, None, "refused", e)),
                None => {
                    return Ok(Progress::permanent(
                        task.stage,
                        None,
                        "refused",
                        format!("recipient {name} has no secret in the configuration"),
                    ));
                }
            };
            let body = serde_json::to_vec(&serde_json::json!({
                "type": "oubli.recipient-notice",
                "request": row.id,
                "action": what(row.kind),
                "systems": systems,
                "categories": r.categories,
                "subject": {
                    "emails": subject.emails,
                    "phones": subject.phones,
                    "external_ids": subject.external_ids.iter().map(|x| format!("{}:{}", x.namespace, x.id)).collect::<Vec<_>>(),
                },
            }))
            .map_err(|e| RequestError::Internal(e.to_string()))?;
            let header =
                super::webhooks::sign(secret.expose().as_bytes(), engine.store.now() / 1000, &body);
            let url = r.url.clone().unwrap_or_default();
            let sent = tokio::task::spawn_blocking(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .timeout_global(Some(std::time::Duration::from_secs(15)))
                    .http_status_as_error(false)
                    .max_redirects(0)
                    .build()
                    .into();
                agent
                    .post(&url)
                    .header("content-type", "application/json")
                    .header(super::webhooks::SIGNATURE_HEADER, &header)
                    .send(&body[..])
                    .map(|resp| resp.status().as_u16())
            })
            .await;
            Ok(match sent {
                Ok(Ok(status)) if (200..300).contains(&status) => {
                    done(format!("delivered: the recipient answered {status}"))
                }
                other => {
                    let message = match other {
                        Ok(Ok(status)) => format!("the recipient answered {status}"),
                        Ok(Err(e)) => format!(
                            "could not reach the recipient: {}",
                            e.to_string().chars().take(200).collect::<String>()
                        ),
                        Err(_) => "the delivery task failed".into(),
                    };
                    Progress::Failed {
                        stage: task.stage,
                        result: None,
                        kind: "unavailable".into(),
                        message,
                        transient: true,
                        retry_after_ms: None,
                    }
                }
            })
        }
    }
}
