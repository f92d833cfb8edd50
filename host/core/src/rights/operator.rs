//! What operators do to requests, from filing to a verified end: file,
//! attest, approve, exclude, reject, cancel, extend, retry, skip, mark a
//! manual task done, lift, shred, show and list, on top of the store. The
//! work itself is done by [`super::worker`], from the task table.
//!
//! ```text
//! received ──attest──▶ verified ──plan task──▶ planning ─┬─▶ awaiting-approval ──approve──▶ executing
//!                                                        └──────────(no approval needed)──▶ executing
//! executing ──every system's task over──▶ completed | partially-completed | failed
//! any live state ──cancel──▶ cancelled;   awaiting-approval ──reject──▶ rejected
//! ```

use super::Systems;
use super::deadline::add_months;
use super::engine::{Engine, received_at, same_actor, valid_actor};
use super::lifecycle::queue_system_tasks;
use super::request::{
    Action, Attestation, Counts, NewRequest, Params, RequestError, SystemPlan, SystemResult,
};
use super::request::{event, restriction_scopes, snapshot, subject_blind, subject_indexes};
use super::restriction::CheckAnswer;
use super::views::{
    AnswerView, ErrorView, EventView, PlanningView, RequestDetail, RequestView, SystemView,
    TaskView,
};
use crate::identifiers::{Identifiers, Region};
use oubli_model::Subject;
use oubli_model::request::Filter;
use oubli_model::{RequestKind, RequestState, SystemState};
use oubli_model::{Stage, TaskOp, TaskState};
use oubli_store::StoreError;
use oubli_store::keys::Sealed;
use oubli_store::requests::{self, Changes, Event, RequestRow};
use oubli_store::tasks::{self, TaskRow};

impl Engine {
    /// File a request: normalise the identifiers, seal them, snapshot the
    /// policy, set the deadline, and queue its planning (unless the policy
    /// wants the identity attested first). Restrictions, objections and
    /// consent withdrawals take effect in the host's registry at once.
    pub async fn file(&self, new: NewRequest) -> Result<RequestView, RequestError> {
        let subject = self.systems.subject(&new.identifiers, new.region)?;
        if subject.is_unsearchable() {
            return Err(RequestError::Invalid(
                "give at least an email, a phone number or an external id: names alone are never enough to act on".into(),
            ));
        }
        if new.kind == RequestKind::Lift {
            return Err(RequestError::Invalid(
                "a lift is filed on the request it lifts (lift), not as a new request".into(),
            ));
        }
        self.file_subject(new, subject, None).await
    }

    /// Lift a restriction, objection or consent withdrawal (Art. 18(3)):
    /// once the subject was told (`told`: how and when), the registry stops
    /// answering "restricted" at once, and a request of kind `lift` is
    /// filed for the same subject and scope, which lifts it in every system
    /// (`restrict` with `on = false`), recorded, with Art. 19 recipients
    /// told. Returns that request.
    pub async fn lift(
        &self,
        id: &str,
        actor: &str,
        reason: &str,
        told: &str,
    ) -> Result<RequestView, RequestError> {
        valid_actor(actor)?;
        let reason = required("the reason the restriction ends", reason)?;
        let told = required("how and when the subject was told (Art. 18(3))", told)?;
        let row = requests::get(self.store.pool(), id).await?;
        if restriction_scopes(row.kind, &Params::default()).is_none() {
            return Err(RequestError::Conflict(format!(
                "request {id} is {}: only a restriction, objection or consent withdrawal is lifted",
                row.kind
            )));
        }
        if !row.state.is_final() {
            return Err(RequestError::Conflict(format!(
                "request {id} is {}: lift it once it is over, or cancel it",
                row.state
            )));
        }
        let active = oubli_store::restrictions::active(self.store.pool())
            .await?
            .into_iter()
            .any(|r| r.request_id == id);
        if !active {
            return Err(StoreError::Conflict(format!(
                "request {id} holds no restriction in force (lifted already, or never in force)"
            ))
            .into());
        }
        let subject: Subject = self
            .vault
            .open_json(id, Sealed::Subject, &row.subject_sealed)
            .await?;
        let params: Params = match &row.params_sealed {
            Some(p) => self.vault.open_json(id, Sealed::Params, p).await?,
            None => Params::default(),
        };
        let new = NewRequest {
            id: None,
            kind: RequestKind::Lift,
            identifiers: Identifiers::default(),
            region: None,
            actor: actor.to_string(),
            params: Params {
                scope: restriction_scopes(row.kind, &params).unwrap_or_default(),
                lifts: Some(id.to_string()),
                ..Params::default()
            },
            // The identity was established for the request lifted.
            attestation: Some(Attestation {
                method: "lift".into(),
                evidence: format!("the subject of {id}; told: {told}"),
            }),
            intake: None,
        };
        let note = format!("{reason}; the subject was told: {told}");
        self.file_subject(new, subject, Some((id, note))).await
    }

    /// File a request for a subject already normalised; `lifting`: the
    /// request whose restriction this lifts, and the note recorded on it,
    /// both in the same transaction as the filing.
    pub(super) async fn file_subject(
        &self,
        new: NewRequest,
        subject: Subject,
        lifting: Option<(&str, String)>,
    ) -> Result<RequestView, RequestError> {
        check_params(new.kind, &new.params, &self.systems)?;
        valid_actor(&new.actor)?;
        let policy = self.policy().clone();
        let id = match &new.id {
            Some(id) => {
                valid_request_id(id)?;
                if requests::get(self.store.pool(), id).await.is_ok() {
                    return Err(
                        StoreError::Conflict(format!("request {id} was already filed")).into(),
                    );
                }
                id.clone()
            }
            None => format!("r-{}", oubli_crypto::random_token(6)?),
        };
        let now = self.store.now();
        let received_at = received_at(new.intake.as_ref(), now)?;
        let subject_sealed = self.vault.seal_json(&id, Sealed::Subject, &subject).await?;
        let params_sealed = if new.params == Params::default() {
            None
        } else {
            Some(
                self.vault
                    .seal_json(&id, Sealed::Params, &new.params)
                    .await?,
            )
        };
        let verified = (new.attestation.is_some() || !policy.attest_identity)
            && !new.intake.is_some_and(|i| i.needs_attestation);
        let attestation_sealed = match &new.attestation {
            Some(a) => Some(
                self.vault
                    .seal_json(
                        &id,
                        Sealed::Reason {
                            action: "identity-attested",
                            system: None,
                        },
                        a,
                    )
                    .await?,
            ),
            None => None,
        };
        let row = RequestRow {
            id: id.clone(),
            kind: new.kind,
            state: if verified {
                RequestState::Verified
            } else {
                RequestState::Received
            },
            subject_sealed,
            params_sealed,
            policy: serde_json::to_string(&policy).expect("policy serialises"),
            requested_by: new.actor.clone(),
            approved_by: None,
            attested_by: new.attestation.as_ref().map(|_| new.actor.clone()),
            received_at,
            due_at: add_months(received_at, 1),
            extended_months: 0,
            updated_at: now,
            finalized_at: None,
            summary: None,
            channel: new.intake.map(|i| i.channel.as_str().to_string()),
        };
        let indexes = subject_indexes(&self.vault, &subject);
        // Sealed before the transaction, as everything else here (sealing
        // may read a key through the pool).
        let lifted_note = match &lifting {
            Some((lifted, note)) => Some(
                self.vault
                    .seal(
                        lifted,
                        Sealed::Reason {
                            action: "restriction-lifted",
                            system: None,
                        },
                        note.as_bytes(),
                    )
                    .await?,
            ),
            None => None,
        };
        let mut tx = self.store.write_logged().await?;
        requests::insert(&mut tx, &row, &indexes).await?;
        if let Some(sealed) = &attestation_sealed {
            requests::event(
                &mut tx,
                &Event {
                    request_id: &id,
                    actor: &new.actor,
                    action: "identity-attested",
                    from: None,
                    to: None,
                    system: None,
                    reason_sealed: Some(sealed),
                },
                self.store.now(),
            )
            .await?;
        }
        if verified {
            tasks::enqueue(
                &mut tx,
                &id,
                "",
                TaskOp::Plan,
                TaskState::Available,
                i64::from(policy.max_attempts),
                now,
            )
            .await?;
        }
        if let Some(scopes) = restriction_scopes(new.kind, &new.params) {
            oubli_store::restrictions::add(&mut tx, &indexes, &scopes, &id, self.store.now())
                .await?;
        }
        if let (Some((lifted, _)), Some(sealed)) = (&lifting, &lifted_note) {
            oubli_store::restrictions::lift(&mut tx, lifted, self.store.now()).await?;
            requests::event(
                &mut tx,
                &Event {
                    request_id: lifted,
                    actor: &new.actor,
                    action: "restriction-lifted",
                    from: None,
                    to: None,
                    system: None,
                    reason_sealed: Some(sealed),
                },
                self.store.now(),
            )
            .await?;
        }
        oubli_store::commit(tx).await?;
        if restriction_scopes(new.kind, &new.params).is_some() || lifting.is_some() {
            self.restrictions.refresh(&self.store).await?;
        }
        tracing::info!(request = %id, kind = %new.kind, subject = %indexes.first().map(|h| &h[..8]).unwrap_or("-"), "request filed");
        Ok(self.view(&row))
    }

    pub(super) fn view(&self, row: &RequestRow) -> RequestView {
        RequestView {
            id: row.id.clone(),
            kind: row.kind,
            state: row.state,
            requested_by: row.requested_by.clone(),
            approved_by: row.approved_by.clone(),
            attested_by: row.attested_by.clone(),
            received_at: row.received_at,
            channel: row.channel.as_deref().and_then(oubli_model::Channel::parse),
            due_at: row.due_at,
            extended_months: row.extended_months,
            overdue: !row.state.is_final() && row.due_at < self.store.now(),
            finalized_at: row.finalized_at,
            subject: Vec::new(),
        }
    }

    /// File a request once per idempotency key: the same key with the same
    /// body (by SHA-256) answers the request it filed the first time,
    /// `false` for "not new"; the same key with another body is refused.
    /// `key` is scoped by the caller (hash the caller's name with it).
    pub async fn file_once(
        &self,
        mut new: NewRequest,
        key: &str,
        body_sha256: &str,
    ) -> Result<(RequestView, bool), RequestError> {
        use sha2::{Digest, Sha256};
        let key_hash = hex::encode(Sha256::digest(key.as_bytes()));
        let id = format!("r-k{}", &key_hash[..24]);
        // The body's hash is kept keyed (HMAC under the keyring's index
        // key): a bare SHA-256 of a body that names the person would let
        // anyone with a copy of the database test whether an address filed
        // a request.
        let body_mac = self.vault.index("idempotent-body", body_sha256).to_hex();
        let bare = body_sha256;
        let body_sha256 = body_mac.as_str();
        let earlier = |found: Option<(String, String)>| -> Result<Option<String>, RequestError> {
            match found {
                // A key remembered before the hash was keyed still matches.
                Some((rid, body)) if body == body_sha256 || body == bare => Ok(Some(rid)),
                Some(_) => Err(RequestError::KeyReused),
                None => Ok(None),
            }
        };
        let mut tx = self.store.write().await?;
        let found = oubli_store::service::idempotent(&mut tx, &key_hash).await?;
        drop(tx);
        if let Some(rid) = earlier(found)? {
            let row = requests::get(self.store.pool(), &rid).await?;
            return Ok((self.view(&row), false));
        }
        new.id = Some(id.clone());
        let view = match self.file(new).await {
            Ok(v) => v,
            // Filed by a concurrent call with the same key, or by a call
            // that stopped before remembering the key.
            Err(RequestError::Store(StoreError::Conflict(_))) => {
                let row = requests::get(self.store.pool(), &id).await?;
                let mut tx = self.store.write().await?;
                let found = oubli_store::service::idempotent(&mut tx, &key_hash).await?;
                drop(tx);
                earlier(found)?;
                return Ok((self.view(&row), false));
            }
            Err(e) => return Err(e),
        };
        let mut tx = self.store.write().await?;
        if oubli_store::service::idempotent(&mut tx, &key_hash)
            .await?
            .is_none()
        {
            oubli_store::service::remember_idempotent(
                &mut tx,
                &key_hash,
                &id,
                body_sha256,
                self.store.now(),
            )
            .await?;
        }
        oubli_store::commit(tx).await?;
        Ok((view, true))
    }

    /// Record that `actor` checked the subject's identity, and queue the
    /// planning.
    pub async fn attest(
        &self,
        id: &str,
        actor: &str,
        attestation: &Attestation,
    ) -> Result<(), RequestError> {
        valid_actor(actor)?;
        let row = requests::get(self.store.pool(), id).await?;
        let policy = snapshot(&row)?;
        let sealed = self
            .vault
            .seal_json(
                id,
                Sealed::Reason {
                    action: "identity-attested",
                    system: None,
                },
                attestation,
            )
            .await?;
        let mut tx = self.store.write_logged().await?;
        requests::transition(
            &mut tx,
            id,
            &[RequestState::Received],
            RequestState::Verified,
            &Changes {
                attested_by: Some(actor.to_string()),
                ..Changes::default()
            },
            event(id, actor, "identity-attested", Some(&sealed)),
            self.store.now(),
        )
        .await?;
        tasks::enqueue(
            &mut tx,
            id,
            "",
            TaskOp::Plan,
            TaskState::Available,
            i64::from(policy.max_attempts),
            self.store.now(),
        )
        .await?;
        oubli_store::commit(tx).await?;
        Ok(())
    }

    /// Approve a planned request: its tasks are queued. Under four eyes the
    /// approver must not be the requester.
    pub async fn approve(&self, id: &str, actor: &str) -> Result<(), RequestError> {
        valid_actor(actor)?;
        let row = requests::get(self.store.pool(), id).await?;
        let policy = snapshot(&row)?;
        if row.state != RequestState::AwaitingApproval {
            return Err(RequestError::Conflict(format!(
                "request {id} is {}, not awaiting approval",
                row.state
            )));
        }
        if policy.four_eyes && same_actor(&row.requested_by, actor) {
            return Err(RequestError::Forbidden(format!(
                "{actor} filed request {id}: under four-eyes approval another operator must approve it"
            )));
        }
        let mut tx = self.store.write_logged().await?;
        requests::transition(
            &mut tx,
            id,
            &[RequestState::AwaitingApproval],
            RequestState::Executing,
            &Changes {
                approved_by: Some(actor.to_string()),
                ..Changes::default()
            },
            event(id, actor, "approved", None),
            self.store.now(),
        )
        .await?;
        queue_system_tasks(&mut tx, &row, &policy, self.store.now()).await?;
        oubli_store::commit(tx).await?;
        Ok(())
    }

    /// Take one record out of a plan before it is approved: it is kept
    /// (retained, with the approver's reason), not erased, not taken off.
    /// What each record is and why it is in the plan (the person's role in
    /// it) is in the plan for the approver to judge.
    pub async fn exclude(
        &self,
        id: &str,
        system: &str,
        record: &oubli_model::RecordRef,
        actor: &str,
        reason: &str,
    ) -> Result<(), RequestError> {
        valid_actor(actor)?;
        let reason = required("a reason", reason)?;
        let row = requests::get(self.store.pool(), id).await?;
        if row.state != RequestState::AwaitingApproval {
            return Err(RequestError::Conflict(format!(
                "request {id} is {}: records are excluded from a plan awaiting approval",
                row.state
            )));
        }
        let sys = requests::systems(self.store.pool(), id)
            .await?
            .into_iter()
            .find(|s| s.system == system)
            .ok_or_else(|| StoreError::NotFound {
                what: "system of the request",
                id: system.to_string(),
            })?;
        let mut plan: SystemPlan = match &sys.plan_sealed {
            Some(p) => self.vault.open_json(id, Sealed::Plan(system), p).await?,
            None => SystemPlan::default(),
        };
        let item = plan
            .items
            .iter_mut()
            .find(|i| &i.reference == record)
            .ok_or_else(|| StoreError::NotFound {
                what: "record in the plan",
                id: format!("{} {}", record.kind, record.id),
            })?;
        let was_kept = matches!(item.action, Action::Retain(_));
        item.action = Action::Retain(format!("excluded from the erasure by {actor}: {reason}"));
        let mut counts: Counts = serde_json::from_str(&sys.counts).unwrap_or_default();
        if !was_kept {
            counts.retained += 1;
        }
        let sealed_plan = self
            .vault
            .seal_json(id, Sealed::Plan(system), &plan)
            .await?;
        let note = format!("{} {}: {reason}", record.kind, record.id);
        let sealed = self
            .vault
            .seal(
                id,
                Sealed::Reason {
                    action: "record-excluded",
                    system: Some(system),
                },
                note.as_bytes(),
            )
            .await?;
        let mut tx = self.store.write_logged().await?;
        requests::lock(
            &mut tx,
            id,
            self.store.backend() == oubli_store::Backend::Postgres,
        )
        .await?;
        if requests::get_tx(&mut tx, id).await?.state != RequestState::AwaitingApproval {
            return Err(
                StoreError::Conflict(format!("request {id} changed meanwhile; try again")).into(),
            );
        }
        requests::set_system_plan(
            &mut tx,
            id,
            system,
            &sealed_plan,
            &serde_json::to_string(&counts).expect("counts serialise"),
            self.store.now(),
        )
        .await?;
        requests::event(
            &mut tx,
            &Event {
                request_id: id,
                actor,
                action: "record-excluded",
                from: None,
                to: None,
                system: Some(system),
                reason_sealed: Some(&sealed),
            },
            self.store.now(),
        )
        .await?;
        oubli_store::commit(tx).await?;
        Ok(())
    }

    /// Refuse a planned request, with a reason.
    pub async fn reject(&self, id: &str, actor: &str, reason: &str) -> Result<(), RequestError> {
        valid_actor(actor)?;
        let reason = required("a reason", reason)?;
        let sealed = self
            .vault
            .seal(
                id,
                Sealed::Reason {
                    action: "rejected",
                    system: None,
                },
                reason.as_bytes(),
            )
            .await?;
        let mut tx = self.store.write_logged().await?;
        requests::transition(
            &mut tx,
            id,
            &[RequestState::AwaitingApproval, RequestState::Received],
            RequestState::Rejected,
            &Changes::default(),
            event(id, actor, "rejected", Some(&sealed)),
            self.store.now(),
        )
        .await?;
        tasks::cancel_all(&mut tx, id, self.store.now()).await?;
        oubli_store::restrictions::lift(&mut tx, id, self.store.now()).await?;
        oubli_store::commit(tx).await?;
        self.restrictions.refresh(&self.store).await?;
        Ok(())
    }

    /// Withdraw a request that is not over; running tasks' late results are
    /// refused.
    pub async fn cancel(&self, id: &str, actor: &str, reason: &str) -> Result<(), RequestError> {
        valid_actor(actor)?;
        let reason = required("a reason", reason)?;
        let sealed = self
            .vault
            .seal(
                id,
                Sealed::Reason {
                    action: "cancelled",
                    system: None,
                },
                reason.as_bytes(),
            )
            .await?;
        let live: Vec<RequestState> = RequestState::ALL
            .iter()
            .copied()
            .filter(|s| !s.is_final())
            .collect();
        let mut tx = self.store.write_logged().await?;
        requests::transition(
            &mut tx,
            id,
            &live,
            RequestState::Cancelled,
            &Changes::default(),
            event(id, actor, "cancelled", Some(&sealed)),
            self.store.now(),
        )
        .await?;
        tasks::cancel_all(&mut tx, id, self.store.now()).await?;
        for s in requests::systems_tx(&mut tx, id).await? {
            if !matches!(s.state, SystemState::Done | SystemState::Nothing) {
                requests::set_system_state(
                    &mut tx,
                    id,
                    &s.system,
                    SystemState::Cancelled,
                    self.store.now(),
                )
                .await?;
            }
        }
        oubli_store::commit(tx).await?;
        Ok(())
    }

    /// Add an operator's note to a request's history (sealed like every
    /// reason, withheld from auditors): what the person said on the phone,
    /// where the request came from. Any request that was not shredded,
    /// over or not.
    pub async fn note(&self, id: &str, actor: &str, text: &str) -> Result<(), RequestError> {
        valid_actor(actor)?;
        let text = required("a note", text)?;
        if text.chars().count() > 4000 {
            return Err(RequestError::Invalid(
                "a note is at most 4,000 characters".into(),
            ));
        }
        let row = requests::get(self.store.pool(), id).await?;
        let sealed = self
            .vault
            .seal(
                &row.id,
                Sealed::Reason {
                    action: "noted",
                    system: None,
                },
                text.as_bytes(),
            )
            .await?;
        let mut tx = self.store.write_logged().await?;
        requests::event(
            &mut tx,
            &event(&row.id, actor, "noted", Some(&sealed)),
            self.store.now(),
        )
        .await?;
        oubli_store::commit(tx).await?;
        Ok(())
    }

    /// Extend the deadline by `months` (Art. 12(3)), with the reason, and
    /// how the subject was told.
    pub async fn extend(
        &self,
        id: &str,
        actor: &str,
        months: u32,
        reason: &str,
        told: &str,
    ) -> Result<RequestView, RequestError> {
        valid_actor(actor)?;
        let reason = required("a reason", reason)?;
        let told = required("how the subject was told", told)?;
        let row = requests::get(self.store.pool(), id).await?;
        let policy = snapshot(&row)?;
        if row.state.is_final() {
            return Err(RequestError::Conflict(format!(
                "request {id} is {}",
                row.state
            )));
        }
        let total = row.extended_months + i64::from(months);
        if months == 0 || total > i64::from(policy.max_extension_months) {
            return Err(RequestError::Conflict(format!(
                "a deadline may be extended by at most {} months in all; request {id} is already extended by {}",
                policy.max_extension_months, row.extended_months
            )));
        }
        let due = add_months(row.received_at, 1 + total);
        let text = format!("{reason}\nsubject told: {told}");
        let sealed = self
            .vault
            .seal(
                id,
                Sealed::Reason {
                    action: "extended",
                    system: None,
                },
                text.as_bytes(),
            )
            .await?;
        let mut tx = self.store.write_logged().await?;
        requests::transition(
            &mut tx,
            id,
            &[row.state],
            row.state,
            &Changes {
                deadline: Some((due, total)),
                ..Changes::default()
            },
            event(id, actor, "extended", Some(&sealed)),
            self.store.now(),
        )
        .await?;
        oubli_store::commit(tx).await?;
        let row = requests::get(self.store.pool(), id).await?;
        Ok(self.view(&row))
    }

    /// Run the host's own task again now, with a fresh budget: the planning
    /// task, or once the request executes, its answer (after either needed
    /// attention: its worker kept stopping, or the store failed).
    pub async fn retry_planning(&self, id: &str, actor: &str) -> Result<(), RequestError> {
        self.retry(id, "", actor).await
    }

    /// Run a system's task again now (after needs-attention), with a fresh
    /// attempt budget. `""` names the planning task.
    pub async fn retry(&self, id: &str, system: &str, actor: &str) -> Result<(), RequestError> {
        self.operator_task(
            id,
            system,
            actor,
            &[TaskState::NeedsAttention],
            TaskState::Available,
            None,
            "retried",
            None,
        )
        .await
    }

    /// Give up on a system's task, with a reason; the request ends
    /// partially completed.
    pub async fn skip(
        &self,
        id: &str,
        system: &str,
        actor: &str,
        reason: &str,
    ) -> Result<(), RequestError> {
        let reason = required("a reason", reason)?;
        self.operator_task(
            id,
            system,
            actor,
            &[
                TaskState::NeedsAttention,
                TaskState::Manual,
                TaskState::Available,
            ],
            TaskState::Skipped,
            None,
            "skipped",
            Some(reason),
        )
        .await
    }

    /// Mark a manual task as carried out in the system, with a note; the
    /// task then verifies (re-locates after an erasure) before it counts.
    pub async fn manual_done(
        &self,
        id: &str,
        system: &str,
        actor: &str,
        note: &str,
    ) -> Result<(), RequestError> {
        let note = required("a note saying what was done", note)?;
        self.operator_task(
            id,
            system,
            actor,
            &[TaskState::Manual],
            TaskState::Available,
            Some(Stage::Verify),
            "manual-done",
            Some(note),
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn operator_task(
        &self,
        id: &str,
        system: &str,
        actor: &str,
        from: &[TaskState],
        to: TaskState,
        stage: Option<Stage>,
        action: &str,
        reason: Option<&str>,
    ) -> Result<(), RequestError> {
        valid_actor(actor)?;
        let row = requests::get(self.store.pool(), id).await?;
        // `""` names the planning task, which has no system.
        let planning = system.is_empty();
        // A name neither the configuration nor this request's tasks know
        // (recipients of Art. 19 notices are tasks, `recipient:NAME`).
        let configured = self
            .systems
            .config()
            .systems
            .iter()
            .any(|s| s.name() == system);
        if !planning
            && !configured
            && !tasks::for_request(self.store.pool(), id)
                .await?
                .iter()
                .any(|t| t.system == system)
        {
            return Err(RequestError::UnknownSystem(system.to_string()));
        }
        if planning && to != TaskState::Available {
            return Err(RequestError::Invalid(
                "the planning task can only be retried (or the request cancelled)".into(),
            ));
        }
        let expected: &[RequestState] = if planning {
            // Planning, or (once executing) the answer of an access or
            // portability request: the host's own tasks.
            &[
                RequestState::Verified,
                RequestState::Planning,
                RequestState::Executing,
            ]
        } else {
            &[RequestState::Executing]
        };
        if !expected.contains(&row.state) {
            return Err(RequestError::Conflict(format!(
                "request {id} is {}, not {}",
                row.state,
                if planning { "planning" } else { "executing" }
            )));
        }
        let sealed = match reason {
            Some(r) => Some(
                self.vault
                    .seal(
                        id,
                        Sealed::Reason {
                            action,
                            system: Some(system),
                        },
                        r.as_bytes(),
                    )
                    .await?,
            ),
            None => None,
        };
        let mut tx = self.store.write_logged().await?;
        tasks::operator_set(&mut tx, id, system, from, to, stage, self.store.now()).await?;
        requests::event(
            &mut tx,
            &Event {
                request_id: id,
                actor,
                action,
                from: None,
                to: None,
                system: (!planning).then_some(system),
                reason_sealed: sealed.as_deref(),
            },
            self.store.now(),
        )
        .await?;
        if planning {
            oubli_store::commit(tx).await?;
            return Ok(());
        }

        if to == TaskState::Skipped {
            requests::set_system_state(&mut tx, id, system, SystemState::Skipped, self.store.now())
                .await?;
            super::lifecycle::settle(&mut tx, id, "operator", self.store.now()).await?;
        } else {
            requests::set_system_state(&mut tx, id, system, SystemState::Running, self.store.now())
                .await?;
        }
        oubli_store::commit(tx).await?;
        Ok(())
    }

    /// A request in full (of a shredded request, what is not sealed).
    pub async fn show(&self, id: &str) -> Result<RequestDetail, RequestError> {
        let row = requests::get(self.store.pool(), id).await?;
        let mut request = self.view(&row);
        let paused = tasks::paused(self.store.pool()).await?;
        let shredded = self.vault.is_shredded(id).await?;
        if let Ok(subject) = self
            .vault
            .open_json::<Subject>(id, Sealed::Subject, &row.subject_sealed)
            .await
        {
            request.subject = subject_indexes(&self.vault, &subject)
                .iter()
                .map(|h| h[..8].to_string())
                .collect();
        }
        let tasks = tasks::for_request(self.store.pool(), id).await?;
        let mut systems = Vec::new();
        for s in requests::systems(self.store.pool(), id).await? {
            let plan = match &s.plan_sealed {
                Some(p) if !shredded => {
                    Some(self.vault.open_json(id, Sealed::Plan(&s.system), p).await?)
                }
                _ => None,
            };
            let result = match &s.result_sealed {
                Some(p) if !shredded => Some(
                    self.vault
                        .open_json(id, Sealed::Result(&s.system), p)
                        .await?,
                ),
                _ => None,
            };
            // A plan made when the task ran replaces the stored one.
            let plan = match result.as_ref().and_then(|r: &SystemResult| r.plan.clone()) {
                Some(p) => Some(p),
                None => plan,
            };
            let task = tasks.iter().find(|t| t.system == s.system);
            let error = match task
                .and_then(error_of)
                .or_else(|| s.error_kind.clone().map(|k| (k, s.error_sealed.clone())))
            {
                Some(e) => Some(self.error_view(id, &s.system, e, shredded).await?),
                None => None,
            };
            systems.push(SystemView {
                paused: paused
                    .iter()
                    .find(|p| p.system == s.system)
                    .map(|p| p.reason.clone()),
                counts: serde_json::from_str(&s.counts).unwrap_or_default(),
                system: s.system,
                state: s.state,
                connector: s.connector,
                plan,
                result,
                error,
                task: task.map(task_view),
            });
        }
        let planning = match tasks
            .iter()
            .find(|t| matches!(t.op, TaskOp::Plan | TaskOp::Answer) && t.state != TaskState::Done)
        {
            Some(t) => Some(PlanningView {
                task: task_view(t),
                error: match error_of(t) {
                    Some(e) => Some(self.error_view(id, "", e, shredded).await?),
                    None => None,
                },
            }),
            None => None,
        };
        let mut events = Vec::new();
        for e in requests::events(self.store.pool(), id).await? {
            let reason = match &e.reason_sealed {
                Some(r) => {
                    let what = Sealed::Reason {
                        action: &e.action,
                        system: e.system.as_deref(),
                    };
                    match self.vault.open(id, what, r).await {
                        Ok(t) => Some(match serde_json::from_slice::<Attestation>(&t) {
                            Ok(a) => format!("{}: {}", a.method, a.evidence),
                            Err(_) => String::from_utf8_lossy(&t).into_owned(),
                        }),
                        Err(_) => Some("(sealed)".into()),
                    }
                }
                None => None,
            };
            events.push(EventView {
                at: e.at,
                actor: e.actor,
                action: e.action,
                from: e.from,
                to: e.to,
                system: e.system,
                reason,
            });
        }
        let answer = oubli_store::answers::get(self.store.pool(), id)
            .await?
            .map(|a| AnswerView {
                sha256: a.sha256,
                bytes: a.len,
                kept_at: a.kept_at,
                removed_at: a.removed_at,
            });
        Ok(RequestDetail {
            request,
            planning,
            systems,
            events,
            answer,
        })
    }

    /// A task's or system's last error as shown: its kind, and its message
    /// opened (`system` is `""` for the planning task).
    async fn error_view(
        &self,
        id: &str,
        system: &str,
        (kind, sealed): (String, Option<Vec<u8>>),
        shredded: bool,
    ) -> Result<ErrorView, RequestError> {
        let message = match sealed {
            Some(_) if shredded => "(shredded)".into(),
            Some(m) => {
                String::from_utf8_lossy(&self.vault.open(id, Sealed::Error(system), &m).await?)
                    .into_owned()
            }
            None => String::new(),
        };
        Ok(ErrorView { kind, message })
    }

    /// Requests matching `filter`.
    pub async fn list(&self, filter: &Filter) -> Result<Vec<RequestView>, RequestError> {
        Ok(requests::list(self.store.pool(), filter)
            .await?
            .iter()
            .map(|r| self.view(r))
            .collect())
    }

    /// The ids of a subject's requests (found through blind indexes).
    pub async fn requests_of(
        &self,
        given: &Identifiers,
        region: Option<Region>,
    ) -> Result<Vec<String>, RequestError> {
        let subject = self.systems.subject(given, region)?;
        let mut ids = Vec::new();
        for h in subject_indexes(&self.vault, &subject) {
            ids.extend(requests::by_index(self.store.pool(), &h).await?);
        }
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    /// May this person be processed for `scope`? Answered from the
    /// in-memory registry: no connector, no database round trip.
    pub fn check_restriction(
        &self,
        given: &Identifiers,
        region: Option<Region>,
        scope: &str,
    ) -> Result<CheckAnswer, RequestError> {
        let subject = self.systems.subject(given, region)?;
        Ok(self
            .restrictions
            .check(&subject_blind(&self.vault, &subject), scope))
    }

    /// Pause a system: its queued tasks wait, unclaimed, until it is
    /// resumed (tasks already running finish). The reason is about the
    /// system (a maintenance window), not a person: it is stored as is.
    pub async fn pause_system(
        &self,
        system: &str,
        actor: &str,
        reason: &str,
    ) -> Result<bool, RequestError> {
        valid_actor(actor)?;
        let reason = required("a reason", reason)?;
        self.known_system(system)?;
        let mut tx = self.store.write().await?;
        let paused = tasks::pause(&mut tx, system, actor, reason, self.store.now()).await?;
        oubli_store::commit(tx).await?;
        tracing::info!(system, actor, "system paused");
        Ok(paused)
    }

    /// Resume a paused system.
    pub async fn resume_system(&self, system: &str, actor: &str) -> Result<bool, RequestError> {
        valid_actor(actor)?;
        self.known_system(system)?;
        let mut tx = self.store.write().await?;
        let resumed = tasks::resume(&mut tx, system).await?;
        oubli_store::commit(tx).await?;
        tracing::info!(system, actor, "system resumed");
        Ok(resumed)
    }

    /// The paused systems.
    pub async fn paused_systems(&self) -> Result<Vec<tasks::Paused>, RequestError> {
        Ok(tasks::paused(self.store.pool()).await?)
    }

    fn known_system(&self, system: &str) -> Result<(), RequestError> {
        if self
            .systems
            .config()
            .systems
            .iter()
            .any(|s| s.name() == system)
        {
            Ok(())
        } else {
            Err(RequestError::UnknownSystem(system.to_string()))
        }
    }

    /// Crypto-shred a request that is over: destroy its data keys, so its
    /// sealed data (identifiers, plans, results, notes), in the store and in
    /// every backup, can never be read again. What stays readable: its id,
    /// kind, states, dates, counts and events without their reasons.
    pub async fn shred(&self, id: &str, actor: &str) -> Result<bool, RequestError> {
        valid_actor(actor)?;
        let row = requests::get(self.store.pool(), id).await?;
        if !row.state.is_final() {
            return Err(RequestError::Conflict(format!(
                "request {id} is {}: only a request that is over can be shredded",
                row.state
            )));
        }
        let had = self.vault.shred(id).await?;
        let mut tx = self.store.write_logged().await?;
        // Its blind indexes go too: no identifier finds it any more. A
        // restriction still in force keeps its own (the registry must go
        // on refusing); lift it first to forget it.
        requests::forget_subject(&mut tx, id).await?;
        oubli_store::restrictions::forget_lifted(&mut tx, id).await?;
        // A kept answer can no longer be opened; its pieces go too.
        oubli_store::answers::remove(&mut tx, id, self.store.now()).await?;
        requests::event(
            &mut tx,
            &event(id, actor, "shredded", None),
            self.store.now(),
        )
        .await?;
        oubli_store::commit(tx).await?;
        Ok(had)
    }
}

fn error_of(t: &TaskRow) -> Option<(String, Option<Vec<u8>>)> {
    t.error_kind.clone().map(|k| (k, t.error_sealed.clone()))
}

fn task_view(t: &TaskRow) -> TaskView {
    TaskView {
        operation: t.op,
        stage: t.stage,
        state: t.state,
        attempt: t.attempt,
        max_attempts: t.max_attempts,
        polls: t.polls,
        scheduled_at: t.scheduled_at,
    }
}

fn required<'a>(what: &str, text: &'a str) -> Result<&'a str, RequestError> {
    let t = text.trim();
    if t.is_empty() {
        Err(RequestError::Invalid(format!("give {what}")))
    } else {
        Ok(t)
    }
}

fn valid_request_id(id: &str) -> Result<(), RequestError> {
    let ok = id.len() >= 3
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(RequestError::Invalid(
            "a request id is 3 to 64 lowercase letters, digits, dashes or underscores".into(),
        ))
    }
}

pub(super) fn check_params(
    kind: RequestKind,
    params: &Params,
    rights: &Systems,
) -> Result<(), RequestError> {
    match kind {
        RequestKind::Rectification => {
            if params.changes.is_empty() {
                return Err(RequestError::Invalid(
                    "a rectification needs at least one correction (a field and its new value)"
                        .into(),
                ));
            }
            for c in &params.changes {
                if let Some(s) = &c.system
                    && !rights.config().systems.iter().any(|x| x.name() == s)
                {
                    return Err(RequestError::UnknownSystem(s.clone()));
                }
                if c.field.trim().is_empty() {
                    return Err(RequestError::Invalid("a correction names a field".into()));
                }
            }
        }
        RequestKind::Objection | RequestKind::ConsentWithdrawal if params.scope.is_empty() => {
            return Err(RequestError::Invalid(format!(
                "{kind} needs the purpose it concerns (direct-marketing, profiling, ...)"
            )));
        }
        _ => {}
    }
    if !params.changes.is_empty() && kind != RequestKind::Rectification {
        return Err(RequestError::Invalid(format!(
            "corrections only go with a rectification, not {kind}"
        )));
    }
    for s in &params.scope {
        if s.is_empty()
            || s.len() > 64
            || !s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(RequestError::Invalid(
                "a scope or purpose is 1 to 64 letters, digits, dashes or underscores".into(),
            ));
        }
    }
    Ok(())
}
