//! Retention: records past their period found and erased in every system
//! by policy, as durable sweeps with the same connectors and evidence as
//! requests.
//!
//! A **test run** pages through the records of one category whose trigger
//! date is before the cutoff (fixed when the run starts: now, less the
//! longest period of every policy over that category, less a skew margin)
//! and lists what would go: counts, the oldest and newest dates, a sample
//! of references, what is excluded and why. It erases nothing. Past the
//! policy's approval threshold, or when it jumps against the last enforced
//! run, a second person must accept it. An **enforcing run** carries out
//! an accepted test run with *its* cutoff, so nothing that became due
//! after the test is touched, page by page: holds (the system's own, the
//! configuration's and operators') and records of subjects with an open
//! access request are re-checked just before each erase; at most
//! `max_per_run` records go. Each page in flight is kept before it is
//! erased, so a run cut off mid-page takes it up again (an erase of what is
//! already gone answers not-found, never a second erasure). Every record
//! handled leaves a tombstone (a keyed hash of its reference, its category,
//! trigger date, action and outcome); every run ends in the audit chain,
//! and an enforcing run with a signed retention certificate.
//!
//! Every call to a system draws from its budget (`[retention.budgets]`),
//! a token bucket in the store shared by every worker; sweeps may use only
//! `sweep_share` of it, so request work keeps the rest.

use super::certificate::{ChainPlace, SignedCertificate};
use super::deadline::timestamp;
use super::engine::Engine;
use super::request::{RequestError, SystemPlan, event};
use crate::retention::{RetentionAction, RetentionMode, RetentionPolicy};
use oubli_model::request::Filter;
use oubli_model::{
    ConnectorError, Dated, Deletion, EraseMode, Operation, Outcome, RecordRef, RequestKind, Status,
    SweepKey, SweepQuery,
};
use oubli_runtime::CallError;
use oubli_store::StoreError;
use oubli_store::keys::Sealed;
use oubli_store::requests;
use oubli_store::retention::{self as store, HoldRow, SweepRow, Tombstone};
use oubli_store::service;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Who starts scheduled runs.
const SCHEDULER: &str = "scheduler";

/// The retention certificate format's name and version.
pub const FORMAT: &str = "oubli-retention-certificate/1";

/// References kept as a test run's sample.
const SAMPLE: usize = 10;
/// How long a run that must wait (a system down, an access request still
/// searching) is left before it is tried again.
const WAIT_MS: i64 = 60_000;

/// What a run found and did, without content.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Tally {
    /// Records past the cutoff that the policy would erase (after
    /// exclusions).
    pub due: u64,
    /// Records past the cutoff but excluded, per reason.
    pub excluded: BTreeMap<String, u64>,
    /// Records erased, as the connector verified.
    pub erased: u64,
    /// Records already gone when erased.
    pub not_found: u64,
    /// Records the system kept, per reason.
    pub retained: BTreeMap<String, u64>,
    /// Records the system accepted to erase later.
    pub pending: u64,
    /// Records whose erasure failed.
    pub failed: u64,
    /// Records the system's API cannot remove, left to an operator.
    #[serde(default)]
    pub manual: u64,
    /// What the operator must do for them, step by step, as the connector
    /// said (one task per page, whole).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub manual_steps: Vec<String>,
    /// The oldest trigger date seen (RFC 3339).
    pub oldest: Option<String>,
    /// The newest.
    pub newest: Option<String>,
    /// A few references of what is due (test runs).
    #[schema(value_type = Vec<Object>)]
    pub sample: Vec<RecordRef>,
    /// Pages read.
    pub pages: u64,
    /// Whether the run stopped at the policy's `max_per_run`.
    pub capped: bool,
    /// Until when erased records can still be restored in the system
    /// (RFC 3339), when its deletion is not final at once.
    pub restorable_until: Option<String>,
}

/// A retention run, as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SweepView {
    /// Its id.
    pub id: String,
    /// The policy.
    pub policy: String,
    /// SHA-256 of the policy as it ran.
    pub policy_digest: String,
    /// The system.
    pub system: String,
    /// The category.
    pub category: String,
    /// The trigger date.
    pub trigger: String,
    /// `delete`, `anonymise` or `review`.
    pub action: String,
    /// `test` or `enforce`.
    pub mode: String,
    /// `running`, `tested`, `awaiting-approval`, `approved`,
    /// `carried-out`, `done`, `failed`, `superseded`.
    pub state: String,
    /// Records dated strictly before this were due (RFC 3339).
    pub cutoff: String,
    /// The test run an enforcing run carries out.
    pub test_of: Option<String>,
    /// Who started it.
    pub started_by: String,
    /// When.
    pub started_at: String,
    /// Who accepted it.
    pub approved_by: Option<String>,
    /// When it ended.
    pub finished_at: Option<String>,
    /// The connector's id and version.
    pub connector: Option<String>,
    /// SHA-256 of the connector's component.
    pub component_sha256: Option<String>,
    /// What it found and did.
    pub tally: Tally,
    /// Why it stopped or waits.
    pub note: Option<String>,
}

/// A policy with its runs, as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PolicyView {
    /// The policy as configured.
    #[schema(value_type = Object)]
    pub policy: RetentionPolicy,
    /// Its SHA-256.
    pub digest: String,
    /// The period that applies (the longest over its category), ISO 8601.
    pub effective_period: String,
    /// The date it runs from: the policy's, or the category's default as
    /// the connector says (none when the connector is not loaded).
    pub trigger: Option<String>,
    /// When a worker runs it next by itself (RFC 3339), if scheduled.
    pub next_run: Option<String>,
    /// Its last runs, newest first.
    pub runs: Vec<SweepView>,
}

/// A retention certificate: what an enforcing run erased, signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionCertificate {
    /// [`FORMAT`].
    pub format: String,
    /// The run.
    pub sweep: String,
    /// The test run it carried out.
    pub test_run: Option<String>,
    /// The policy's id and SHA-256.
    pub policy: String,
    /// SHA-256 of the policy as it ran.
    pub policy_digest: String,
    /// The system, category, trigger date and action.
    pub system: String,
    /// The category.
    pub category: String,
    /// The trigger date.
    pub trigger: String,
    /// `delete` or `anonymise`.
    pub action: String,
    /// Records dated strictly before this were due.
    pub cutoff: String,
    /// The connector's id and version.
    pub connector: Option<String>,
    /// SHA-256 of its component.
    pub component_sha256: Option<String>,
    /// Who started the run, and who accepted the test run.
    pub started_by: String,
    /// Who accepted the test run's disposition.
    pub approved_by: Option<String>,
    /// When the run started and ended.
    pub started_at: String,
    /// When it ended.
    pub finished_at: Option<String>,
    /// How it ended.
    pub outcome: String,
    /// Its counts.
    pub tally: Tally,
    /// Records handled (tombstones kept).
    pub tombstones: u64,
    /// The audit chain's place when issued.
    pub audit_chain: ChainPlace,
    /// When issued.
    pub issued_at: String,
    /// The signing key's id.
    pub signing_key: String,
}

/// What may not be erased now in one system: holds and open access
/// requests' records.
struct Guard {
    /// Operators' holds on the category or records (by keyed hash).
    store_holds: Vec<HoldRow>,
    /// The configuration's holds: (record kind or every kind, reason).
    config_holds: Vec<(Option<String>, String)>,
    /// Records located for open access and portability requests.
    open_access: BTreeSet<RecordRef>,
    /// An open access request whose search of this system has not run:
    /// nothing may be erased until it has.
    waiting_for: Option<String>,
}

impl super::Systems {
    /// Why `policy` cannot run on this configuration, if it cannot: its
    /// system not loaded, or its connector unable to sweep its category by
    /// its date (what it can, named).
    pub fn retention_problem(&self, policy: &RetentionPolicy) -> Option<String> {
        let Some(connector) = self.registry().get(&policy.system) else {
            return Some(format!(
                "system {:?} is not loaded (disabled, or its connector was refused)",
                policy.system
            ));
        };
        let manifest = connector.manifest();
        if !manifest.offers(Operation::Sweep) {
            return Some(format!(
                "the connector of {:?} cannot sweep (contract {})",
                policy.system, manifest.wit_version
            ));
        }
        let Some(facts) = manifest
            .retention
            .iter()
            .find(|r| r.category == policy.category)
        else {
            let can: Vec<&str> = manifest
                .retention
                .iter()
                .map(|r| r.category.as_str())
                .collect();
            return Some(format!(
                "the connector of {:?} cannot sweep category {:?}; it can sweep: {}",
                policy.system,
                policy.category,
                can.join(", ")
            ));
        };
        match &policy.trigger {
            Some(t) if !facts.triggers.contains(t) => Some(format!(
                "category {:?} of {:?} cannot be swept by {t:?}; its trigger dates: {}",
                policy.category,
                policy.system,
                facts.triggers.join(", ")
            )),
            None if facts.triggers.is_empty() => Some("the connector names no trigger date".into()),
            _ => None,
        }
    }
}

impl super::Systems {
    /// The date `policy` runs from: its own, or the category's default as
    /// its connector says (none when the connector is not loaded or does
    /// not sweep the category).
    pub fn retention_trigger(&self, policy: &RetentionPolicy) -> Option<String> {
        policy.trigger.clone().or_else(|| {
            self.registry().get(&policy.system).and_then(|c| {
                c.manifest()
                    .retention
                    .iter()
                    .find(|r| r.category == policy.category)
                    .and_then(|r| r.triggers.first().cloned())
            })
        })
    }
}

impl Engine {
    /// The retention settings.
    pub fn retention(&self) -> &crate::retention::RetentionSettings {
        &self.systems.config().retention
    }

    fn retention_policy(&self, id: &str) -> Result<RetentionPolicy, RequestError> {
        self.retention().policy(id).cloned().ok_or_else(|| {
            StoreError::NotFound {
                what: "retention policy",
                id: id.to_string(),
            }
            .into()
        })
    }

    /// Every policy, with its effective period, next run and last runs.
    pub async fn retention_policies(&self) -> Result<Vec<PolicyView>, RequestError> {
        let mut out = Vec::new();
        for p in &self.retention().policies {
            let runs = store::list(self.store.pool(), Some(&p.id), 5).await?;
            let next_run = p.every.map(|every| {
                let last = runs.iter().map(|r| r.started_at).max();
                timestamp(last.map_or(self.store.now(), |l| l + every.as_millis() as i64))
            });
            let trigger = self.systems.retention_trigger(p);
            out.push(PolicyView {
                trigger,
                policy: p.clone(),
                digest: p.digest(),
                effective_period: self.retention().longest(p).to_string(),
                next_run,
                runs: runs.into_iter().map(view).collect(),
            });
        }
        Ok(out)
    }

    /// Runs, newest first: of one policy, or all.
    pub async fn retention_sweeps(
        &self,
        policy: Option<&str>,
    ) -> Result<Vec<SweepView>, RequestError> {
        Ok(store::list(self.store.pool(), policy, 100)
            .await?
            .into_iter()
            .map(view)
            .collect())
    }

    /// One run.
    pub async fn retention_sweep(&self, id: &str) -> Result<SweepView, RequestError> {
        Ok(view(store::get(self.store.pool(), id).await?))
    }

    /// Start a run of `policy`: a test run, or (with `enforce`) the
    /// enforcing run of its accepted test run. `as_of` runs a test as of
    /// an earlier moment (never a later one). Returns the run's id; drive
    /// it with [`Engine::retention_drive`].
    pub async fn retention_start(
        &self,
        policy: &str,
        enforce: bool,
        as_of: Option<i64>,
        actor: &str,
    ) -> Result<String, RequestError> {
        self.start_run(policy, enforce, as_of, actor, None).await
    }

    /// [`Engine::retention_start`]; with `after`, only if the policy's
    /// latest run is still the one the caller saw (`Some(None)`: none), so
    /// that two workers finding the same policy due start one run, not two.
    async fn start_run(
        &self,
        policy: &str,
        enforce: bool,
        as_of: Option<i64>,
        actor: &str,
        after: Option<Option<&str>>,
    ) -> Result<String, RequestError> {
        super::engine::valid_actor(actor)?;
        let p = self.retention_policy(policy)?;
        let connector = self
            .systems
            .registry()
            .get(&p.system)
            .cloned()
            .ok_or_else(|| {
                RequestError::Unavailable(format!(
                    "system {:?} is not loaded (disabled, or its connector was refused)",
                    p.system
                ))
            })?;
        if let Some(problem) = self.systems.retention_problem(&p) {
            return Err(RequestError::Invalid(problem));
        }
        // Checked just above: the category is swept, by this date or a
        // default one.
        let trigger = self.systems.retention_trigger(&p).unwrap_or_default();
        let manifest = connector.manifest();
        let now = self.store.now();
        let digest = p.digest();
        let sha = connector.info().sha256.clone();
        let mut row = SweepRow {
            id: format!("s-{}", oubli_crypto::random_token(6)?),
            policy: p.id.clone(),
            policy_digest: digest.clone(),
            system: p.system.clone(),
            category: p.category.clone(),
            trigger,
            action: wire(p.action),
            mode: "test".into(),
            state: "running".into(),
            cutoff: 0,
            test_of: None,
            started_by: actor.into(),
            started_at: now,
            approved_by: None,
            approved_at: None,
            finished_at: None,
            connector: Some(format!("{}@{}", manifest.id, manifest.version)),
            component_sha256: Some(sha.clone()),
            cursor: None,
            inflight: None,
            tally: "{}".into(),
            note: None,
        };
        // Read under the write lock (SQLite's, or the audit head's row on
        // PostgreSQL): two processes starting the same policy at once see
        // each other's run.
        let mut tx = self.store.write_logged().await?;
        let runs = store::list(&mut *tx, Some(&p.id), 100).await?;
        if let Some(seen) = after
            && runs.first().map(|r| r.id.as_str()) != seen
        {
            return Err(RequestError::Conflict(format!(
                "policy {:?} was started by another process meanwhile",
                p.id
            )));
        }
        if runs.iter().any(|r| r.state == "running") {
            return Err(RequestError::Conflict(format!(
                "policy {:?} has a run in progress; resume it with `oubli retention resume`",
                p.id
            )));
        }
        if enforce {
            if p.mode != RetentionMode::Enforce {
                return Err(RequestError::Forbidden(format!(
                    "policy {:?} is in test mode: its runs list what would go and erase nothing (set `mode = \"enforce\"` to erase)",
                    p.id
                )));
            }
            if p.action == RetentionAction::Review {
                return Err(RequestError::Invalid(format!(
                    "policy {:?} asks for review: its test runs list what is due for a person to decide, and nothing is erased by it",
                    p.id
                )));
            }
            let test = runs
                .iter()
                .find(|r| r.mode == "test" && r.state != "failed" && r.state != "superseded")
                .ok_or_else(|| {
                    RequestError::Conflict(format!(
                        "policy {:?} has no test run to carry out: run `oubli retention run {}` first and check what it lists",
                        p.id, p.id
                    ))
                })?;
            match test.state.as_str() {
                "tested" | "approved" => {}
                "awaiting-approval" => {
                    return Err(RequestError::Conflict(format!(
                        "test run {} must first be approved by a second person (`oubli retention approve {}`)",
                        test.id, test.id
                    )));
                }
                _ => {
                    return Err(RequestError::Conflict(format!(
                        "the last test run of {:?} ({}) was already carried out; run a new test",
                        p.id, test.id
                    )));
                }
            }
            if test.policy_digest != digest || test.component_sha256.as_deref() != Some(&sha) {
                return Err(RequestError::Conflict(format!(
                    "the policy or the connector changed since test run {}; run a new test",
                    test.id
                )));
            }
            store::set_state(&mut tx, &test.id, &test.state, "carried-out").await?;
            row.mode = "enforce".into();
            row.cutoff = test.cutoff;
            row.test_of = Some(test.id.clone());
            row.approved_by = test.approved_by.clone();
            row.approved_at = test.approved_at;
        } else {
            let at = match as_of {
                Some(a) if a > now => {
                    return Err(RequestError::Invalid(
                        "a run can be made as of an earlier moment, never a later one".into(),
                    ));
                }
                Some(a) => a,
                None => now,
            };
            let skew = self.retention().skew.as_millis() as i64;
            row.cutoff = self.retention().longest(&p).before(at) - skew;
            for r in runs.iter().filter(|r| {
                r.mode == "test"
                    && matches!(
                        r.state.as_str(),
                        "tested" | "awaiting-approval" | "approved"
                    )
            }) {
                store::set_state(&mut tx, &r.id, &r.state, "superseded").await?;
            }
        }
        store::insert(&mut tx, &row).await?;
        let action = if enforce {
            "retention-enforce-started"
        } else {
            "retention-test-started"
        };
        requests::event(&mut tx, &event(&row.id, actor, action, None), now).await?;
        oubli_store::commit(tx).await?;
        tracing::info!(sweep = %row.id, policy = %p.id, mode = %row.mode, "retention run started");
        Ok(row.id)
    }

    /// Accept a test run's disposition (four eyes: not by who started it).
    pub async fn retention_approve(
        &self,
        id: &str,
        actor: &str,
    ) -> Result<SweepView, RequestError> {
        super::engine::valid_actor(actor)?;
        let row = store::get(self.store.pool(), id).await?;
        if row.state != "awaiting-approval" {
            return Err(RequestError::Conflict(format!(
                "run {id} is {}, not awaiting approval",
                row.state
            )));
        }
        if row.started_by == actor {
            return Err(RequestError::Forbidden(
                "a test run is approved by someone other than who ran it (four eyes)".into(),
            ));
        }
        let now = self.store.now();
        let mut tx = self.store.write_logged().await?;
        if !store::approve(&mut tx, id, actor, now).await? {
            return Err(RequestError::Conflict(format!(
                "run {id} changed meanwhile"
            )));
        }
        requests::event(&mut tx, &event(id, actor, "retention-approved", None), now).await?;
        oubli_store::commit(tx).await?;
        self.retention_sweep(id).await
    }

    /// Carry a running sweep on to its end, holding its lease: page after
    /// page from its cursor. Returns the run as it stands when it ends or
    /// must wait (a note says why). Another process holding the run is a
    /// conflict.
    pub async fn retention_drive(&self, id: &str) -> Result<SweepView, RequestError> {
        self.retention_pages(id, None).await
    }

    /// [`Engine::retention_drive`], for at most `max_pages` pages (then the
    /// run is let go, for any process to take up).
    pub async fn retention_pages(
        &self,
        id: &str,
        max_pages: Option<u64>,
    ) -> Result<SweepView, RequestError> {
        let mut pages_left = max_pages.unwrap_or(u64::MAX);
        let token = oubli_crypto::random_token(8)?;
        let lease_ms = self.retention().lease.as_millis() as i64;
        let lease = |engine: &Engine| engine.store.now() + lease_ms;
        if !store::claim(&self.store, id, &token, lease(self)).await? {
            let row = store::get(self.store.pool(), id).await?;
            if row.state != "running" {
                return Ok(view(row));
            }
            return Err(RequestError::Conflict(format!(
                "run {id} is being carried out by another process"
            )));
        }
        let mut row = store::get(self.store.pool(), id).await?;
        let mut tally: Tally = serde_json::from_str(&row.tally).unwrap_or_default();
        let policy = self.retention_policy(&row.policy);
        let Ok(policy) = policy else {
            return self
                .end_sweep(
                    &row,
                    &token,
                    "failed",
                    &tally,
                    Some("its policy is no longer configured"),
                )
                .await;
        };
        let Some(connector) = self.systems.registry().get(&row.system).cloned() else {
            return self
                .end_sweep(
                    &row,
                    &token,
                    "failed",
                    &tally,
                    Some("its system is not loaded"),
                )
                .await;
        };
        if connector.info().sha256.as_str() != row.component_sha256.as_deref().unwrap_or("") {
            return self
                .end_sweep(
                    &row,
                    &token,
                    "failed",
                    &tally,
                    Some("the connector changed since the run started; start a new run"),
                )
                .await;
        }
        let facts = connector
            .manifest()
            .retention
            .iter()
            .find(|r| r.category == row.category)
            .cloned();
        let enforce = row.mode == "enforce";
        let mode = if row.action == "anonymise" {
            EraseMode::Anonymise
        } else {
            EraseMode::Delete
        };
        let page_size = self.retention().page;
        loop {
            // A page kept in flight is erased first (a run cut off mid-page).
            if let Some(inflight) = row.inflight.clone() {
                let page: Vec<Dated> = serde_json::from_str(&inflight)
                    .map_err(|_| StoreError::Corrupt("a sweep's page in flight"))?;
                let guard = self.guard(&row).await?;
                if let Some(waiting) = &guard.waiting_for {
                    return self
                        .pause_sweep(&row, &token, &tally, Some(waiting), WAIT_MS)
                        .await;
                }
                let mut go = Vec::new();
                let mut stones: Vec<Tombstone> = Vec::new();
                for d in page {
                    match self.excluded(&row, &guard, &d) {
                        Some(why) => {
                            *tally.excluded.entry(why).or_insert(0) += 1;
                            tally.due = tally.due.saturating_sub(1);
                        }
                        None => go.push(d),
                    }
                }
                if !go.is_empty() {
                    let refs: Vec<RecordRef> = go.iter().map(|d| d.reference.clone()).collect();
                    let answer = self
                        .systems
                        .retry()
                        .run(|| connector.erase_swept(&refs, mode))
                        .await;
                    let mut manual = false;
                    let outcomes: Option<Vec<Outcome>> = match answer {
                        Ok(o) => Some(o),
                        Err(CallError::Connector(ConnectorError::Manual(task))) => {
                            manual = true;
                            tally.manual_steps.push(format!(
                                "{} ({} records)",
                                task.summary,
                                task.records.len()
                            ));
                            tally.manual_steps.extend(task.steps);
                            None
                        }
                        Err(e) if e.is_transient() => {
                            let why = format!("the system failed: {}", e.kind());
                            return self
                                .pause_sweep(&row, &token, &tally, Some(&why), WAIT_MS)
                                .await;
                        }
                        Err(e) => {
                            tracing::warn!(sweep = %row.id, kind = e.kind(), "a sweep's erase failed");
                            None
                        }
                    };
                    let by_ref: BTreeMap<&RecordRef, &Status> = outcomes
                        .iter()
                        .flatten()
                        .map(|o| (&o.reference, &o.status))
                        .collect();
                    for d in &go {
                        let outcome = match by_ref.get(&d.reference) {
                            Some(Status::Done) => {
                                tally.erased += 1;
                                "done"
                            }
                            Some(Status::NotFound) => {
                                tally.not_found += 1;
                                "not-found"
                            }
                            Some(Status::Retained(why)) => {
                                let why = oubli_model::for_display(why, 200);
                                *tally.retained.entry(why).or_insert(0) += 1;
                                "retained"
                            }
                            Some(Status::Pending(_)) => {
                                tally.pending += 1;
                                "pending"
                            }
                            None if manual => {
                                tally.manual += 1;
                                "manual"
                            }
                            // The erase failed, or gave no outcome for
                            // this record: not erased.
                            None => {
                                tally.failed += 1;
                                "failed"
                            }
                        };
                        stones.push(self.tombstone(&row, d, outcome));
                    }
                }
                let mut tx = self.store.write().await?;
                store::tombstones(&mut tx, &row.id, &stones, self.store.now()).await?;
                if !store::progress(
                    &mut tx,
                    &row.id,
                    &token,
                    row.cursor.as_ref(),
                    None,
                    &json(&tally),
                    lease(self),
                )
                .await?
                {
                    return Err(lost(id));
                }
                oubli_store::commit(tx).await?;
                row.inflight = None;
                continue;
            }
            let handled = tally.erased
                + tally.not_found
                + tally.pending
                + tally.failed
                + tally.manual
                + tally.retained.values().sum::<u64>();
            let limit = if enforce {
                let left = policy.max_per_run.saturating_sub(handled);
                if left == 0 {
                    tally.capped = true;
                    break;
                }
                left.min(u64::from(page_size)) as u32
            } else {
                page_size
            };
            if pages_left == 0 {
                return self.pause_sweep(&row, &token, &tally, None, 0).await;
            }
            pages_left -= 1;
            let query = SweepQuery {
                category: row.category.clone(),
                trigger: row.trigger.clone(),
                cutoff: row.cutoff,
                after: row.cursor.clone().map(|(at, id)| SweepKey { at, id }),
                limit,
            };
            let page = match self.systems.retry().run(|| connector.sweep(&query)).await {
                Ok(p) => p,
                Err(e) if e.is_transient() => {
                    let why = format!("the system failed: {}", e.kind());
                    return self
                        .pause_sweep(&row, &token, &tally, Some(&why), WAIT_MS)
                        .await;
                }
                Err(e) => {
                    let note = format!("the connector's sweep failed: {e}");
                    return self
                        .end_sweep(&row, &token, "failed", &tally, Some(&note))
                        .await;
                }
            };
            tally.pages += 1;
            let last = page.last().map(|d| (d.at, d.reference.id.clone()));
            let full = page.len() as u32 == limit;
            let guard = self.guard(&row).await?;
            if enforce && let Some(waiting) = &guard.waiting_for {
                return self
                    .pause_sweep(&row, &token, &tally, Some(waiting), WAIT_MS)
                    .await;
            }
            let mut due = Vec::new();
            for d in page {
                let at = timestamp(d.at);
                if tally.oldest.as_ref().is_none_or(|o| at < *o) {
                    tally.oldest = Some(at.clone());
                }
                if tally.newest.as_ref().is_none_or(|n| at > *n) {
                    tally.newest = Some(at);
                }
                match self.excluded(&row, &guard, &d) {
                    Some(why) => {
                        *tally.excluded.entry(why).or_insert(0) += 1;
                    }
                    None => {
                        tally.due += 1;
                        if !enforce && tally.sample.len() < SAMPLE {
                            tally.sample.push(d.reference.clone());
                        }
                        due.push(d);
                    }
                }
            }
            if !enforce && guard.waiting_for.is_some() {
                let note = guard.waiting_for.clone().unwrap_or_default();
                row.note = Some(note);
            }
            let inflight = if enforce && !due.is_empty() {
                Some(
                    serde_json::to_string(&due)
                        .map_err(|e| RequestError::Internal(e.to_string()))?,
                )
            } else {
                None
            };
            if last.is_some() {
                row.cursor = last;
            }
            let mut tx = self.store.write().await?;
            if !store::progress(
                &mut tx,
                &row.id,
                &token,
                row.cursor.as_ref(),
                inflight.as_deref(),
                &json(&tally),
                lease(self),
            )
            .await?
            {
                return Err(lost(id));
            }
            oubli_store::commit(tx).await?;
            row.inflight = inflight;
            if !full && row.inflight.is_none() {
                break;
            }
            if !full {
                // The last page is in flight: erase it, then end.
                continue;
            }
        }
        if enforce {
            if let Some(Deletion::Restorable(days)) = facts.map(|f| f.deletion) {
                tally.restorable_until =
                    Some(timestamp(self.store.now() + i64::from(days) * 86_400_000));
            }
            let state = if tally.failed > 0 {
                "failed"
            } else if tally.manual > 0 {
                "manual"
            } else {
                "done"
            };
            let note = end_note(&tally);
            let v = self
                .end_sweep(&row, &token, state, &tally, note.as_deref())
                .await?;
            self.retention_certificate(&row.id).await?;
            return Ok(v);
        }
        let previous = store::list(self.store.pool(), Some(&row.policy), 100)
            .await?
            .into_iter()
            .find(|r| r.mode == "enforce" && r.state == "done");
        let jump = previous.is_some_and(|p| {
            let before: Tally = serde_json::from_str(&p.tally).unwrap_or_default();
            tally.due > 10 && tally.due > 3 * before.erased.max(1)
        });
        let over = tally.due > policy.approval_threshold;
        let (state, note) = match (over, jump) {
            (true, _) => (
                "awaiting-approval",
                Some(format!(
                    "{} records due, over the approval threshold of {}",
                    tally.due, policy.approval_threshold
                )),
            ),
            (false, true) => (
                "awaiting-approval",
                Some("far more records due than the last enforced run erased".into()),
            ),
            _ => ("tested", row.note.clone()),
        };
        self.end_sweep(&row, &token, state, &tally, note.as_deref())
            .await
    }

    /// Carry on every running sweep no live process holds (after a crash,
    /// or one that waited). Returns the runs as they stand.
    pub async fn retention_resume(&self) -> Result<Vec<SweepView>, RequestError> {
        let mut out = Vec::new();
        for id in store::unheld(self.store.pool(), self.store.now()).await? {
            match self.retention_drive(&id).await {
                Ok(v) => out.push(v),
                Err(RequestError::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// A worker's share of retention, between request work: start the test
    /// runs of scheduled policies that are due (`every`), the enforcing run
    /// of a scheduled policy in enforce mode whose test run needs no
    /// approval, and carry one page of one run nobody holds. Returns
    /// whether it did anything.
    pub async fn retention_step(&self) -> Result<bool, RequestError> {
        if self.retention().policies.is_empty() {
            return Ok(false);
        }
        let now = self.store.now();
        let mut did = false;
        for p in self.retention().policies.clone() {
            let Some(every) = p.every else { continue };
            let last = store::list(self.store.pool(), Some(&p.id), 1).await?;
            let start = match last.first() {
                None => Some(false),
                Some(r) if r.state == "running" => None,
                // The scheduler's own test run, accepted without a person.
                Some(r)
                    if r.mode == "test"
                        && (r.state == "approved" || r.state == "tested")
                        && r.started_by == SCHEDULER
                        && p.mode == RetentionMode::Enforce
                        && p.action != RetentionAction::Review =>
                {
                    Some(true)
                }
                Some(r) if now >= r.started_at + every.as_millis() as i64 => Some(false),
                Some(_) => None,
            };
            if let Some(problem) = self.systems.retention_problem(&p) {
                // Said once per process (and by `systems check`), not at
                // every idle moment.
                let first = self
                    .retention_warned
                    .lock()
                    .map(|mut w| w.insert(p.id.clone()))
                    .unwrap_or(false);
                if first {
                    tracing::warn!(policy = %p.id, "a scheduled retention policy cannot run: {problem}");
                }
                continue;
            }
            if let Some(enforce) = start {
                let seen = Some(last.first().map(|r| r.id.as_str()));
                match self.start_run(&p.id, enforce, None, SCHEDULER, seen).await {
                    Ok(_) => did = true,
                    // Another worker started it: nothing to say.
                    Err(RequestError::Conflict(_)) => did = true,
                    Err(e) => {
                        tracing::warn!(policy = %p.id, "a scheduled retention run could not start: {e}")
                    }
                }
            }
        }
        if let Some(id) = store::unheld(self.store.pool(), now).await?.first() {
            match self.retention_pages(id, Some(1)).await {
                Ok(_) | Err(RequestError::Conflict(_)) => did = true,
                Err(e) => return Err(e),
            }
        }
        Ok(did)
    }

    /// An enforcing run's signed retention certificate (issued once, when
    /// it ends; the same document after).
    pub async fn retention_certificate(&self, id: &str) -> Result<SignedCertificate, RequestError> {
        let signer = self.vault.keyring().signer()?;
        if let Some(stored) = self.stored_certificate(id).await? {
            return Ok(stored);
        }
        let row = store::get(self.store.pool(), id).await?;
        if row.mode != "enforce" || !matches!(row.state.as_str(), "done" | "failed" | "manual") {
            return Err(RequestError::Conflict(format!(
                "run {id} has no certificate: only an enforcing run that ended has one"
            )));
        }
        let tombstones = store::tombstone_count(self.store.pool(), id).await? as u64;
        let (seq, hash) = oubli_store::log::size(self.store.pool()).await?;
        let cert = RetentionCertificate {
            format: FORMAT.into(),
            sweep: row.id.clone(),
            test_run: row.test_of.clone(),
            policy: row.policy.clone(),
            policy_digest: row.policy_digest.clone(),
            system: row.system.clone(),
            category: row.category.clone(),
            trigger: row.trigger.clone(),
            action: row.action.clone(),
            cutoff: timestamp(row.cutoff),
            connector: row.connector.clone(),
            component_sha256: row.component_sha256.clone(),
            started_by: row.started_by.clone(),
            approved_by: row.approved_by.clone(),
            started_at: timestamp(row.started_at),
            finished_at: row.finished_at.map(timestamp),
            outcome: row.state.clone(),
            tally: serde_json::from_str(&row.tally).unwrap_or_default(),
            tombstones,
            audit_chain: ChainPlace { seq, hash },
            issued_at: timestamp(self.store.now()),
            signing_key: signer.id().to_string(),
        };
        let mut document = serde_json::to_string_pretty(&cert)
            .map_err(|e| RequestError::Internal(format!("cannot write the certificate: {e}")))?;
        document.push('\n');
        let signature = signer.sign(document.as_bytes())?;
        let now = self.store.now();
        let mut tx = self.store.write_logged().await?;
        if service::insert_certificate(&mut tx, id, &document, &hex::encode(&signature), now)
            .await?
        {
            requests::attest(
                &mut tx,
                &event(id, "host", "certificate-issued", None),
                Some(&super::certificate::digest_of(&document)),
                now,
            )
            .await?;
        }
        oubli_store::commit(tx).await?;
        self.stored_certificate(id)
            .await?
            .ok_or_else(|| RequestError::Internal("the certificate was not kept".into()))
    }

    /// An enforcing run's certificate with what a check of it finds: its
    /// signature under this host's key, and that the audit chain still holds
    /// the event it names.
    pub async fn retention_checked_certificate(
        &self,
        id: &str,
    ) -> Result<(SignedCertificate, Result<RetentionCertificate, String>), RequestError> {
        let signed = self.retention_certificate(id).await?;
        let signer = self.vault.keyring().signer()?;
        let check = async {
            let signature = super::certificate::unb64(&signed.signature)
                .ok_or_else(|| "the signature is not base64".to_string())?;
            oubli_crypto::signing::verify(
                signer.public_pem(),
                signed.document.as_bytes(),
                &signature,
            )
            .map_err(|e| format!("the signature does not hold: {e}"))?;
            let cert: RetentionCertificate =
                serde_json::from_str(&signed.document).map_err(|e| {
                    format!("the signature holds but this is not a retention certificate: {e}")
                })?;
            match service::chain_hash_at(self.store.pool(), cert.audit_chain.seq).await {
                Ok(Some(h)) if h == cert.audit_chain.hash => Ok(cert),
                Ok(Some(_)) => Err(
                    "the audit chain's event it names has another hash: the log was rewritten"
                        .to_string(),
                ),
                Ok(None) => Err(
                    "the audit chain is shorter than the certificate says: events were cut off"
                        .to_string(),
                ),
                Err(e) => Err(format!("the audit chain cannot be read: {e}")),
            }
        }
        .await;
        Ok((signed, check))
    }

    /// oubli's own retention (`[retention] requests`): crypto-shred the
    /// requests that ended longer ago than the period, a hundred at a time.
    /// Returns how many. Workers call it between their tasks.
    pub async fn shred_expired_requests(&self) -> Result<usize, RequestError> {
        let Some(keep) = self.retention().requests else {
            return Ok(0);
        };
        let due =
            requests::over_before(self.store.pool(), keep.before(self.store.now()), 100).await?;
        for id in &due {
            self.shred(id, "keeper").await?;
        }
        if !due.is_empty() {
            tracing::info!(
                requests = due.len(),
                "requests past oubli's own retention shredded"
            );
        }
        Ok(due.len())
    }

    /// Set a legal hold: on a system, one of its categories, or one record.
    pub async fn retention_hold(
        &self,
        system: &str,
        category: Option<&str>,
        record: Option<&RecordRef>,
        reason: &str,
        actor: &str,
    ) -> Result<HoldRow, RequestError> {
        super::engine::valid_actor(actor)?;
        if !self
            .systems
            .config()
            .systems
            .iter()
            .any(|s| s.name() == system)
        {
            return Err(RequestError::UnknownSystem(system.into()));
        }
        if reason.trim().is_empty() {
            return Err(RequestError::Invalid("say why the records are held".into()));
        }
        let hold = HoldRow {
            id: format!("h-{}", oubli_crypto::random_token(6)?),
            system: system.into(),
            category: category.map(str::to_string),
            record_mac: record.map(|r| self.ref_mac(system, r)),
            reason: reason.trim().chars().take(500).collect(),
            created_by: actor.into(),
            created_at: self.store.now(),
        };
        let mut tx = self.store.write_logged().await?;
        store::add_hold(&mut tx, &hold).await?;
        requests::event(
            &mut tx,
            &event(&hold.id, actor, "hold-set", None),
            hold.created_at,
        )
        .await?;
        oubli_store::commit(tx).await?;
        Ok(hold)
    }

    /// Release a legal hold.
    pub async fn retention_release(&self, id: &str, actor: &str) -> Result<(), RequestError> {
        super::engine::valid_actor(actor)?;
        let now = self.store.now();
        let mut tx = self.store.write_logged().await?;
        if !store::release_hold(&mut tx, id, actor, now).await? {
            return Err(StoreError::NotFound {
                what: "hold in force",
                id: id.to_string(),
            }
            .into());
        }
        requests::event(&mut tx, &event(id, actor, "hold-released", None), now).await?;
        oubli_store::commit(tx).await?;
        Ok(())
    }

    /// The holds in force.
    pub async fn retention_holds(&self) -> Result<Vec<HoldRow>, RequestError> {
        Ok(store::holds(self.store.pool(), None).await?)
    }

    /// What may not be erased in the run's system now.
    async fn guard(&self, row: &SweepRow) -> Result<Guard, RequestError> {
        let store_holds = store::holds(self.store.pool(), Some(&row.system))
            .await?
            .into_iter()
            .filter(|h| h.category.as_deref().is_none_or(|c| c == row.category))
            .collect();
        let config_holds = self
            .policy()
            .holds
            .iter()
            .filter(|h| h.system == row.system)
            .map(|h| (h.kind.clone(), h.reason.clone()))
            .collect();
        let mut open_access = BTreeSet::new();
        let mut waiting_for = None;
        for kind in [RequestKind::Access, RequestKind::Portability] {
            let filter = Filter {
                kind: Some(kind),
                open: true,
                limit: 10_000,
                ..Filter::default()
            };
            for r in requests::list(self.store.pool(), &filter).await? {
                let systems = requests::systems(self.store.pool(), &r.id).await?;
                let Some(s) = systems.iter().find(|s| s.system == row.system) else {
                    if systems.is_empty() {
                        // Filed, not yet planned: its search may find records
                        // this run would erase.
                        waiting_for = Some(format!(
                            "waits for access request {} to search {}",
                            r.id, row.system
                        ));
                    }
                    continue;
                };
                let plan: SystemPlan = match &s.plan_sealed {
                    Some(p) => {
                        self.vault
                            .open_json(&r.id, Sealed::Plan(&s.system), p)
                            .await?
                    }
                    None => SystemPlan::default(),
                };
                if s.plan_sealed.is_none() || plan.error.is_some() {
                    waiting_for = Some(format!(
                        "waits for access request {} to search {}",
                        r.id, row.system
                    ));
                }
                open_access.extend(plan.items.into_iter().map(|i| i.reference));
            }
        }
        Ok(Guard {
            store_holds,
            config_holds,
            open_access,
            waiting_for,
        })
    }

    /// Why a record must not be erased, if it must not.
    fn excluded(&self, row: &SweepRow, guard: &Guard, d: &Dated) -> Option<String> {
        if let Some(h) = &d.hold {
            return Some(format!(
                "held by the system: {}",
                oubli_model::for_display(h, 120)
            ));
        }
        if let Some((_, why)) = guard
            .config_holds
            .iter()
            .find(|(kind, _)| kind.as_deref().is_none_or(|k| k == d.reference.kind))
        {
            return Some(format!("legal hold: {why}"));
        }
        let mac = self.ref_mac(&row.system, &d.reference);
        if let Some(h) = guard
            .store_holds
            .iter()
            .find(|h| h.record_mac.as_deref().is_none_or(|m| m == mac))
        {
            return Some(format!("legal hold {}: {}", h.id, h.reason));
        }
        if guard.open_access.contains(&d.reference) {
            return Some("its subject has an open access request".into());
        }
        None
    }

    /// The keyed hash of a record's reference in a system.
    fn ref_mac(&self, system: &str, r: &RecordRef) -> String {
        self.vault
            .index("record", &format!("{system}\u{0}{}\u{0}{}", r.kind, r.id))
            .to_hex()
    }

    fn tombstone(&self, row: &SweepRow, d: &Dated, outcome: &str) -> Tombstone {
        Tombstone {
            record_mac: self.ref_mac(&row.system, &d.reference),
            category: row.category.clone(),
            trigger_at: d.at,
            action: row.action.clone(),
            outcome: outcome.into(),
        }
    }

    /// End a run in `state`, with its audit event.
    async fn end_sweep(
        &self,
        row: &SweepRow,
        token: &str,
        state: &str,
        tally: &Tally,
        note: Option<&str>,
    ) -> Result<SweepView, RequestError> {
        let now = self.store.now();
        let mut tx = self.store.write_logged().await?;
        if !store::finish(&mut tx, &row.id, token, state, &json(tally), note, now).await? {
            return Err(lost(&row.id));
        }
        let action = format!("retention-{state}");
        requests::event(&mut tx, &event(&row.id, "host", &action, None), now).await?;
        oubli_store::commit(tx).await?;
        tracing::info!(sweep = %row.id, state, due = tally.due, erased = tally.erased, "retention run ended");
        self.retention_sweep(&row.id).await
    }

    /// Leave a run to be resumed later (its lease let go), saying why.
    async fn pause_sweep(
        &self,
        row: &SweepRow,
        token: &str,
        tally: &Tally,
        why: Option<&str>,
        retry_in_ms: i64,
    ) -> Result<SweepView, RequestError> {
        let mut tx = self.store.write().await?;
        store::progress(
            &mut tx,
            &row.id,
            token,
            row.cursor.as_ref(),
            row.inflight.as_deref(),
            &json(tally),
            // Let go: any process may take it up then.
            self.store.now() + retry_in_ms - 1,
        )
        .await?;
        oubli_store::commit(tx).await?;
        let mut v = self.retention_sweep(&row.id).await?;
        v.note = why.map(str::to_string);
        Ok(v)
    }
}

fn lost(id: &str) -> RequestError {
    RequestError::Conflict(format!(
        "run {id} was taken over by another process (this one's lease ran out)"
    ))
}

fn json(t: &Tally) -> String {
    serde_json::to_string(t).unwrap_or_else(|_| "{}".into())
}

fn wire<T: Serialize>(v: T) -> String {
    oubli_model::wire_name(&v)
}

fn view(r: SweepRow) -> SweepView {
    SweepView {
        tally: serde_json::from_str(&r.tally).unwrap_or_default(),
        id: r.id,
        policy: r.policy,
        policy_digest: r.policy_digest,
        system: r.system,
        category: r.category,
        trigger: r.trigger,
        action: r.action,
        mode: r.mode,
        state: r.state,
        cutoff: timestamp(r.cutoff),
        test_of: r.test_of,
        started_by: r.started_by,
        started_at: timestamp(r.started_at),
        approved_by: r.approved_by,
        finished_at: r.finished_at.map(timestamp),
        connector: r.connector,
        component_sha256: r.component_sha256,
        note: r.note,
    }
}

/// What an enforced run's end says beyond its counts: that it stopped at
/// the policy's cap, and that records the system only accepted to erase
/// later were not verified by the run (they are never counted as erased).
fn end_note(tally: &Tally) -> Option<String> {
    let pending = (tally.pending > 0).then(|| {
        format!(
            "{} erasure(s) accepted by the system for later and not verified by this run: check them in the system",
            tally.pending
        )
    });
    match (tally.capped, pending) {
        (true, Some(p)) => Some(format!("stopped at the policy's max_per_run; {p}")),
        (true, None) => Some("stopped at the policy's max_per_run".to_string()),
        (false, p) => p,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_says_what_it_did_not_verify() {
        let mut t = Tally::default();
        assert_eq!(end_note(&t), None);
        t.pending = 3;
        let n = end_note(&t).unwrap();
        assert!(
            n.starts_with("3 erasure(s) accepted") && n.contains("not verified"),
            "{n}"
        );
        t.capped = true;
        let n = end_note(&t).unwrap();
        assert!(
            n.starts_with("stopped at the policy's max_per_run; 3 erasure(s)"),
            "{n}"
        );
        t.pending = 0;
        assert_eq!(
            end_note(&t).as_deref(),
            Some("stopped at the policy's max_per_run")
        );
    }
}
