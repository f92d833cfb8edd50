//! Workers: claim tasks from the store, carry them out through the
//! connectors ([`super::steps`] says what each operation does), and write
//! the outcome back under the lease.
//!
//! One task per (request, system, operation) goes through stages: `act`
//! (the operation), `poll` (an asynchronous vendor job, polled on a
//! schedule kept in the row), `verify` (search again after an erasure,
//! export again after a rectification). Transient failures back off
//! exponentially with jitter, the wait stored in the row; `rate-limited(n)`
//! waits `n` seconds; a task past its attempts, or with a permanent error,
//! goes to needs-attention with its last error. A system that cannot do
//! the operation through its API gets a manual task: the operator does it
//! by hand and says so, and the verifier still checks before it counts.
//!
//! Running a task twice is safe: an erasure run again (after a crash, or a
//! lease that expired) searches first and asks the system to erase only
//! what is still there; a vendor's ticket is written in the same
//! transaction as the stage change, so an accepted job is polled, never
//! submitted again.

use super::engine::Engine;
use super::lifecycle::queue_system_tasks;
use super::policy::Policy;
use super::progress::Progress;
use super::request::{Counts, RequestError, SystemResult, event, snapshot};
use super::steps::run_task;
use oubli_model::{RequestState, SystemState};
use oubli_model::{Stage, TaskOp, TaskState};
use oubli_store::Tx;
use oubli_store::answers;
use oubli_store::keys::Sealed;
use oubli_store::requests::{self, Changes, Event, SystemRow};
use oubli_store::tasks::{self, Finish, TaskRow};
use oubli_store::{Backend, StoreError};
use std::sync::Arc;
use std::time::Duration;

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Its name in `attempted_by` (host, process, random part).
    pub id: String,
    /// How long a claim is leased; renewed by heartbeats while a call runs.
    pub lease: Duration,
    /// Tasks claimed at once.
    pub batch: usize,
    /// The longest sleep when there is nothing to do.
    pub idle: Duration,
    /// How often the audit chain's head is signed while the worker runs
    /// (and once when it stops), so that a deployment with no `serve` has
    /// signed heads too.
    pub sign_every: Duration,
    /// Whether this worker also runs the sequencer's loop
    /// ([`Engine::run_sequencer`]): one process at a time holds that role,
    /// any worker can take it over.
    pub sequencer: bool,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            id: default_worker_id(),
            lease: Duration::from_secs(60),
            batch: 32,
            idle: Duration::from_secs(2),
            sign_every: Duration::from_millis(500),
            sequencer: true,
        }
    }
}

/// `host:pid:random`.
pub fn default_worker_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    let rand = oubli_crypto::random_token(3).unwrap_or_default();
    format!("{host}:{}:{rand}", std::process::id())
}

/// A worker over an engine.
pub struct Worker {
    engine: Arc<Engine>,
    options: WorkerOptions,
}

impl Worker {
    /// A worker for `engine`.
    pub fn new(engine: Arc<Engine>, options: WorkerOptions) -> Worker {
        Worker { engine, options }
    }

    /// Put tasks whose lease expired back in the queue; those whose
    /// worker stopped in every attempt they had need attention, like any
    /// other task past its budget: the task and its system say so with the
    /// error, and an event records it. Returns (requeued, parked).
    pub async fn rescue(&self) -> Result<(u64, u64), RequestError> {
        let store = &self.engine.store;
        let exhausted = tasks::expired_exhausted(store.pool(), self.engine.store.now()).await?;
        let mut parked = 0;
        if !exhausted.is_empty() {
            let mut sealed = Vec::with_capacity(exhausted.len());
            for t in &exhausted {
                let message = format!(
                    "the worker running this task stopped before finishing it (crashed, killed or cut off from the store) in each of its {} attempts",
                    t.attempt
                );
                sealed.push(
                    self.engine
                        .vault
                        .seal(&t.request_id, Sealed::Error(&t.system), message.as_bytes())
                        .await?,
                );
            }
            let mut tx = store.write_logged().await?;
            for (t, sealed) in exhausted.iter().zip(&sealed) {
                if !tasks::park_expired(
                    &mut tx,
                    t.id,
                    "lease-expired",
                    sealed,
                    self.engine.store.now(),
                )
                .await?
                {
                    continue;
                }
                parked += 1;
                let system = (!t.system.is_empty()).then_some(t.system.as_str());
                if let Some(system) = system
                    && t.op != TaskOp::Notify
                {
                    requests::set_system_state(
                        &mut tx,
                        &t.request_id,
                        system,
                        SystemState::NeedsAttention,
                        self.engine.store.now(),
                    )
                    .await?;
                }
                requests::event(
                    &mut tx,
                    &Event {
                        request_id: &t.request_id,
                        actor: "rescuer",
                        action: "needs-attention",
                        from: None,
                        to: None,
                        system,
                        reason_sealed: None,
                    },
                    self.engine.store.now(),
                )
                .await?;
            }
            oubli_store::commit(tx).await?;
            if parked > 0 {
                tracing::warn!(parked, "tasks whose worker kept stopping need attention");
            }
        }
        let requeued = tasks::rescue(store).await?;
        Ok((requeued, parked))
    }

    /// Claim and run one batch; returns how many tasks it ran.
    pub async fn run_once(&self) -> Result<usize, RequestError> {
        let lease_ms = self.options.lease.as_millis() as i64;
        let claimed = tasks::claim(
            &self.engine.store,
            &self.options.id,
            lease_ms,
            self.options.batch as i64,
        )
        .await?;
        if claimed.is_empty() {
            return Ok(0);
        }
        let token = claimed[0].lease_token.clone().unwrap_or_default();
        let ids: Vec<i64> = claimed.iter().map(|t| t.id).collect();
        // Heartbeat while the batch runs: a slow but live call keeps its
        // lease; a worker that dies stops renewing and is rescued.
        // Aborted when this batch ends, or when this future is dropped (a
        // worker stopped mid-batch): a heartbeat that outlived its batch
        // would keep the tasks leased forever.
        let _heartbeat = AbortOnDrop({
            let store = self.engine.store.clone();
            let token = token.clone();
            let ids = ids.clone();
            let every = (self.options.lease / 3).max(Duration::from_millis(50));
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    match tasks::heartbeat(&store, &ids, &token, lease_ms).await {
                        Ok(n) if (n as usize) < ids.len() => {
                            tracing::warn!(held = n, claimed = ids.len(), "some leases were lost");
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!("heartbeat failed: {e}"),
                    }
                }
            })
        });
        let mut set = tokio::task::JoinSet::new();
        for (i, task) in claimed.iter().cloned().enumerate() {
            let engine = self.engine.clone();
            let span = tracing::info_span!(
                "task",
                request = %task.request_id,
                system = %task.system,
                operation = %task.op,
                stage = %task.stage
            );
            set.spawn(tracing::Instrument::instrument(
                async move {
                    let progress = run_task(&engine, &task).await;
                    (i, progress)
                },
                span,
            ));
        }
        let mut results: Vec<Option<Result<Progress, RequestError>>> =
            (0..claimed.len()).map(|_| None).collect();
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok((i, p)) => results[i] = Some(p),
                Err(e) => tracing::error!("a task panicked: {e}"),
            }
        }
        // Seal outside the transaction, then write every outcome in one
        // transaction: one durable commit per batch.
        let mut writes = Vec::with_capacity(claimed.len());
        for (task, result) in claimed.iter().zip(results) {
            let progress = match result {
                Some(Ok(p)) => p,
                Some(Err(e)) => Progress::permanent(task.stage, None, "host", e.to_string()),
                None => Progress::Failed {
                    stage: task.stage,
                    result: None,
                    kind: "host".into(),
                    message: "the task stopped without an answer".into(),
                    transient: true,
                    retry_after_ms: None,
                },
            };
            writes.push(self.prepare(task, progress).await?);
        }
        // Every batch locks the rows of its requests in one global order
        // (request, then task): two workers finishing tasks of the same
        // requests in opposite orders would otherwise deadlock, and
        // PostgreSQL would abort one batch, leaving its tasks to wait out
        // their leases and run again.
        writes.sort_by(|a, b| {
            let (a, b) = (a.task(), b.task());
            (a.request_id.as_str(), a.id).cmp(&(b.request_id.as_str(), b.id))
        });
        // The outcomes are known (a vendor may have acted): a batch whose
        // transaction fails (a lost connection, a conflict) is written
        // again, not left to be rescued and redone.
        let mut attempt = 0u32;
        loop {
            match self.write_batch(&writes, &token).await {
                Ok(()) => break,
                Err(e) if attempt < 2 => {
                    attempt += 1;
                    tracing::warn!(worker = %self.options.id, attempt, "writing a batch's outcomes failed, writing it again: {e}");
                    tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(claimed.len())
    }

    /// Write a batch's outcomes in one transaction.
    async fn write_batch(&self, writes: &[Write], token: &str) -> Result<(), RequestError> {
        let mut tx = self.engine.store.write_logged().await?;
        let actor = format!("worker:{}", self.options.id);
        for w in writes {
            apply(
                &mut tx,
                self.engine.store.backend(),
                w,
                token,
                &actor,
                self.engine.store.now(),
            )
            .await?;
        }
        oubli_store::commit(tx).await?;
        Ok(())
    }

    /// Run until `stop` resolves (checked between batches, so a batch in
    /// flight finishes and is written) or, with `until_idle`, until no task
    /// is available or running; rescuing expired leases as it goes. A
    /// failure of the store (a restarted database, a full disk) is logged
    /// and retried with back-off rather than ending the worker: what it was
    /// doing is rescued when its leases expire. Returns how many tasks ran.
    pub async fn run(
        &self,
        until_idle: bool,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<usize, RequestError> {
        let (seq_stop, seq_rx) = tokio::sync::watch::channel(false);
        let sequencer = self.options.sequencer.then(|| {
            tokio::spawn(self.engine.clone().run_sequencer(
                format!("{}:sequencer", self.options.id),
                self.options.sign_every,
                seq_rx,
            ))
        });
        let result = self.run_tasks(until_idle, stop).await;
        let _ = seq_stop.send(true);
        if let Some(s) = sequencer {
            let _ = s.await;
        }
        result
    }

    async fn run_tasks(
        &self,
        until_idle: bool,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<usize, RequestError> {
        tokio::pin!(stop);
        let mut total = 0;
        let mut last_rescue = 0;
        let mut failures = 0u32;
        let mut last_signed = std::time::Instant::now();
        loop {
            tokio::select! {
                biased;
                _ = &mut stop => {
                    self.sign().await;
                    return Ok(total);
                }
                _ = std::future::ready(()) => {}
            }
            if !self.options.sequencer && last_signed.elapsed() >= self.options.sign_every {
                self.sign().await;
                last_signed = std::time::Instant::now();
            }
            let wait = match self.tick(until_idle, &mut last_rescue).await {
                Ok(Tick::Ran(n)) => {
                    failures = 0;
                    total += n;
                    continue;
                }
                Ok(Tick::Idle(wait)) => {
                    failures = 0;
                    wait
                }
                Ok(Tick::Done) => {
                    self.sign().await;
                    return Ok(total);
                }
                Err(e) => {
                    failures += 1;
                    if until_idle && failures >= 30 {
                        return Err(e);
                    }
                    let wait = Duration::from_millis(200 * u64::from(failures.min(50)));
                    tracing::warn!(worker = %self.options.id, failures, "worker step failed, retrying in {wait:?}: {e}");
                    wait
                }
            };
            tokio::select! {
                _ = &mut stop => {
                    self.sign().await;
                    return Ok(total);
                }
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Work on request `id` in this process until it needs nobody but a
    /// person (awaiting approval or identity, a manual task), is over, or
    /// has nothing due within ten seconds; then sign the audit head, as a
    /// worker does. What the CLI runs after filing a request.
    pub async fn drive(&self, id: &str) -> Result<(), RequestError> {
        let result = self.drive_until_idle(id).await;
        self.sign().await;
        result
    }

    async fn drive_until_idle(&self, id: &str) -> Result<(), RequestError> {
        let pool = self.engine.store.pool();
        loop {
            self.rescue().await?;
            let ran = self.run_once().await?;
            let row = requests::get(pool, id).await?;
            if row.state.is_final()
                || matches!(
                    row.state,
                    RequestState::AwaitingApproval | RequestState::Received
                )
            {
                return Ok(());
            }
            let now = self.engine.store.now();
            let due_soon = tasks::for_request(pool, id).await?.iter().any(|t| {
                t.state == TaskState::Running
                    || (t.state == TaskState::Available && t.scheduled_at <= now + 10_000)
            });
            if !due_soon {
                return Ok(());
            }
            if ran == 0 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    /// Sign the audit chain's head as it is now (nothing when it is signed
    /// at this length already); a failure is logged, never fatal.
    pub async fn sign(&self) {
        if let Err(e) = self.engine.sign_audit_head().await {
            tracing::warn!(error = %e, "could not sign the audit head");
        }
    }

    /// One step of [`Worker::run`].
    async fn tick(&self, until_idle: bool, last_rescue: &mut i64) -> Result<Tick, RequestError> {
        let now = self.engine.store.now();
        if now - *last_rescue > (self.options.lease.as_millis() as i64 / 2).max(1000) {
            self.rescue().await?;
            self.engine.remove_expired_answers().await?;
            self.engine.shred_expired_requests().await?;
            *last_rescue = now;
        }
        let n = self.run_once().await?;
        if n > 0 {
            return Ok(Tick::Ran(n));
        }
        // Requests first: retention only when no task was ready, one page
        // at a time.
        if self.engine.retention_step().await? {
            return Ok(Tick::Ran(0));
        }
        if until_idle && !tasks::any_active(self.engine.store.pool()).await? {
            return Ok(Tick::Done);
        }
        let wait = match tasks::next_due(self.engine.store.pool()).await? {
            Some(due) => {
                Duration::from_millis((due - self.engine.store.now()).clamp(10, 60_000) as u64)
            }
            None => self.options.idle,
        }
        .min(self.options.idle);
        Ok(Tick::Idle(wait))
    }

    async fn prepare(&self, task: &TaskRow, progress: Progress) -> Result<Write, RequestError> {
        let vault = &self.engine.vault;
        let id = &task.request_id;
        let seal_result = async |r: &SystemResult| -> Result<Vec<u8>, RequestError> {
            Ok(vault.seal_json(id, Sealed::Result(&task.system), r).await?)
        };
        let seal_error = async |m: &str| -> Result<Vec<u8>, RequestError> {
            Ok(vault
                .seal(id, Sealed::Error(&task.system), m.as_bytes())
                .await?)
        };
        let policy_attempts = task.max_attempts;
        Ok(match progress {
            Progress::Gone => Write::Gone { task: task.clone() },
            Progress::Answered {
                attempt,
                report,
                chunks,
            } => Write::Answered {
                task: task.clone(),
                summary_sealed: vault.seal_json(id, Sealed::AnswerSummary, &report).await?,
                sha256: report.zip_sha256,
                len: report.zip_len as i64,
                attempt,
                chunks,
            },
            Progress::Planned { systems, next } => Write::Planned {
                task: task.clone(),
                systems,
                next,
            },
            Progress::Finished {
                state,
                result,
                counts,
            } => Write::System {
                task: task.clone(),
                finish: Finish::done(task, self.engine.store.now()),
                system_state: state,
                result: Some(seal_result(&result).await?),
                counts: Some(counts),
                action: Some(format!("{}-{}", task.op, state)),
                settle: true,
            },
            Progress::Poll { result, polls } => {
                let interval = snapshot_interval(&self.engine, task).await;
                Write::System {
                    task: task.clone(),
                    finish: Finish {
                        state: TaskState::Available,
                        stage: Stage::Poll,
                        scheduled_at: self.engine.store.now() + interval,
                        attempt: 0,
                        polls,
                        ticket_sealed: Some(
                            vault
                                .seal_json(id, Sealed::Ticket(&task.system), &result.tickets)
                                .await?,
                        ),
                        error: None,
                    },
                    system_state: SystemState::Running,
                    result: Some(seal_result(&result).await?),
                    counts: None,
                    action: (task.stage != Stage::Poll).then(|| "job-accepted".to_string()),
                    settle: false,
                }
            }
            Progress::Settle { result, delay_ms } => Write::System {
                task: task.clone(),
                finish: Finish {
                    state: TaskState::Available,
                    stage: Stage::Verify,
                    scheduled_at: self.engine.store.now() + delay_ms as i64,
                    attempt: 0,
                    polls: task.polls,
                    ticket_sealed: None,
                    error: None,
                },
                system_state: SystemState::Running,
                result: Some(seal_result(&result).await?),
                counts: None,
                action: None,
                settle: false,
            },
            Progress::Manual { result } => {
                let text = result.instructions.clone().unwrap_or_default();
                Write::System {
                    task: task.clone(),
                    finish: Finish {
                        state: TaskState::Manual,
                        stage: Stage::Act,
                        scheduled_at: self.engine.store.now(),
                        attempt: 0,
                        polls: task.polls,
                        ticket_sealed: None,
                        error: Some(("manual".into(), seal_error(&text).await?)),
                    },
                    system_state: SystemState::NeedsAttention,
                    result: Some(seal_result(&result).await?),
                    counts: None,
                    action: Some("manual-task".into()),
                    settle: false,
                }
            }
            Progress::Failed {
                stage,
                result,
                kind,
                message,
                transient,
                retry_after_ms,
            } => {
                let policy = request_policy(&self.engine, task).await;
                // `attempt` counts attempts in the stage the task was in; a
                // failure in a new stage (verify after act) starts at 1.
                let attempt = if stage == task.stage { task.attempt } else { 1 };
                let give_up = !transient || attempt >= policy_attempts;
                let wait = retry_after_ms
                    .unwrap_or_else(|| policy.backoff_ms(attempt as u32, jitter()) as i64);
                tracing::info!(
                    request = %task.request_id, system = %task.system, op = %task.op, kind = %kind,
                    attempt, give_up, "task attempt failed"
                );
                Write::System {
                    task: task.clone(),
                    finish: Finish {
                        state: if give_up {
                            TaskState::NeedsAttention
                        } else {
                            TaskState::Available
                        },
                        stage,
                        scheduled_at: self.engine.store.now() + if give_up { 0 } else { wait },
                        attempt,
                        // An attempt in the poll stage is a poll, failed or
                        // not: the count shown is the count made.
                        polls: if task.stage == Stage::Poll {
                            task.polls + 1
                        } else {
                            task.polls
                        },
                        ticket_sealed: None,
                        error: Some((kind, seal_error(&message).await?)),
                    },
                    system_state: if give_up {
                        SystemState::NeedsAttention
                    } else {
                        SystemState::Running
                    },
                    result: match &result {
                        Some(r) => Some(seal_result(r).await?),
                        None => None,
                    },
                    counts: None,
                    action: give_up.then(|| "needs-attention".to_string()),
                    settle: false,
                }
            }
        })
    }
}

fn jitter() -> f64 {
    let mut b = [0u8; 2];
    let _ = oubli_crypto::random(&mut b);
    f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX)
}

async fn request_policy(engine: &Engine, task: &TaskRow) -> Policy {
    match requests::get(engine.store.pool(), &task.request_id).await {
        Ok(row) => snapshot(&row).unwrap_or_default(),
        Err(_) => Policy::default(),
    }
}

async fn snapshot_interval(engine: &Engine, task: &TaskRow) -> i64 {
    request_policy(engine, task).await.poll_interval_ms as i64
}

/// A spawned task aborted when this is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What one step of a worker came to.
enum Tick {
    /// Ran this many tasks.
    Ran(usize),
    /// Nothing due: wait this long.
    Idle(Duration),
    /// Nothing left (running until idle).
    Done,
}

/// A prepared write of one task's outcome.
enum Write {
    Gone {
        task: TaskRow,
    },
    Answered {
        task: TaskRow,
        attempt: String,
        sha256: String,
        len: i64,
        chunks: i64,
        summary_sealed: Vec<u8>,
    },
    Planned {
        task: TaskRow,
        systems: Vec<SystemRow>,
        next: RequestState,
    },
    System {
        task: TaskRow,
        finish: Finish,
        system_state: SystemState,
        result: Option<Vec<u8>>,
        counts: Option<Counts>,
        action: Option<String>,
        settle: bool,
    },
}

impl Write {
    fn task(&self) -> &TaskRow {
        match self {
            Write::Gone { task }
            | Write::Answered { task, .. }
            | Write::Planned { task, .. }
            | Write::System { task, .. } => task,
        }
    }
}

async fn apply(
    tx: &mut Tx,
    backend: Backend,
    w: &Write,
    token: &str,
    actor: &str,
    now: i64,
) -> Result<(), RequestError> {
    let finished = Finish::done;
    match w {
        Write::Gone { task } => {
            let mut f = finished(task, now);
            f.state = TaskState::Cancelled;
            refused(tasks::finish(tx, task.id, token, &f, now).await)?;
        }
        Write::Answered {
            task,
            attempt,
            sha256,
            len,
            chunks,
            summary_sealed,
        } => {
            if refused(tasks::finish(tx, task.id, token, &finished(task, now), now).await)?
                .is_none()
            {
                // The lease was lost: another attempt keeps its own.
                answers::drop_attempt(tx, &task.request_id, attempt).await?;
                return Ok(());
            }
            if answers::keep(
                tx,
                &task.request_id,
                attempt,
                sha256,
                *len,
                *chunks,
                summary_sealed,
                now,
            )
            .await?
            {
                // The answer's hash goes in the audit chain: what the subject
                // was given can be shown later to be what was kept.
                requests::event(
                    tx,
                    &event(
                        &task.request_id,
                        actor,
                        &format!("answer-kept:{sha256}"),
                        None,
                    ),
                    now,
                )
                .await?;
            }
            super::lifecycle::settle_locked(tx, backend, &task.request_id, actor, now).await?;
        }
        Write::Planned {
            task,
            systems,
            next,
        } => {
            if refused(tasks::finish(tx, task.id, token, &finished(task, now), now).await)?
                .is_none()
            {
                return Ok(());
            }
            let row = requests::get_tx(tx, &task.request_id).await?;
            if row.state.is_final() {
                return Ok(());
            }
            for s in systems {
                requests::put_system(tx, &task.request_id, s).await?;
            }
            requests::transition(
                tx,
                &task.request_id,
                &[RequestState::Verified, RequestState::Planning],
                *next,
                &Changes::default(),
                event(&task.request_id, actor, "planned", None),
                now,
            )
            .await?;
            if *next == RequestState::Executing {
                let policy = snapshot(&row)?;
                queue_system_tasks(tx, &row, &policy, now).await?;
                super::lifecycle::settle_locked(tx, backend, &task.request_id, actor, now).await?;
            }
        }
        Write::System {
            task,
            finish,
            system_state,
            result,
            counts,
            action,
            settle: do_settle,
        } => {
            if refused(tasks::finish(tx, task.id, token, finish, now).await)?.is_none() {
                return Ok(());
            }
            let counts_json = match counts {
                Some(c) => serde_json::to_string(c).expect("counts serialise"),
                None => current_counts(tx, &task.request_id, &task.system).await?,
            };
            requests::set_system_result(
                tx,
                &task.request_id,
                &task.system,
                *system_state,
                result.as_deref(),
                finish
                    .error
                    .as_ref()
                    .map(|(k, m)| (k.as_str(), m.as_slice())),
                &counts_json,
                now,
            )
            .await?;
            if let Some(action) = action {
                requests::event(
                    tx,
                    &Event {
                        request_id: &task.request_id,
                        actor,
                        action,
                        from: None,
                        to: None,
                        system: (!task.system.is_empty()).then_some(task.system.as_str()),
                        reason_sealed: None,
                    },
                    now,
                )
                .await?;
            }
            if *do_settle {
                super::lifecycle::settle_locked(tx, backend, &task.request_id, actor, now).await?;
            }
        }
    }
    Ok(())
}

/// `Ok(None)` for a write refused because the lease was lost (logged, not
/// an error: another worker holds the task now).
fn refused(r: Result<(), StoreError>) -> Result<Option<()>, RequestError> {
    match r {
        Ok(()) => Ok(Some(())),
        Err(StoreError::Conflict(m)) => {
            tracing::warn!("{m}");
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

async fn current_counts(
    tx: &mut Tx,
    request_id: &str,
    system: &str,
) -> Result<String, RequestError> {
    Ok(requests::systems_tx(tx, request_id)
        .await?
        .into_iter()
        .find(|s| s.system == system)
        .map(|s| s.counts)
        .unwrap_or_else(|| "{}".into()))
}

#[cfg(test)]
mod tests {
    /// The worker can be spawned (the HTTP service runs it on its own task).
    #[allow(dead_code)]
    fn worker_futures_are_send(w: &super::Worker) {
        fn send<T: Send>(_: T) {}
        send(w.run_once());
        send(w.run(true, std::future::pending()));
    }
}
