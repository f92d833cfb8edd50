//! The request commands: `oubli request …`, `oubli requests`, `oubli
//! worker`, `oubli restriction check`. Each opens the engine (store,
//! keyring, and connectors only when it plans or carries out work), calls
//! it, and renders what it returns.

use crate::args::{ActorArgs, EngineArgs, SubjectArgs};
use crate::render;
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use oubli_core::identifiers::{Identifiers, Region};
use oubli_core::rights::engine::{
    Attestation, Correction, Engine, ErrorKind, Intake, NewRequest, Params,
};
use oubli_core::rights::worker::{Worker, WorkerOptions};
use oubli_model::request::Filter;
use oubli_model::{RequestKind, RequestState};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

fn parse_channel(text: &str) -> Result<oubli_model::Channel, String> {
    oubli_model::Channel::parse(text).ok_or_else(|| {
        let all: Vec<&str> = oubli_model::Channel::ALL
            .iter()
            .map(|c| c.as_str())
            .collect();
        format!("one of {}", all.join(", "))
    })
}

fn parse_received(text: &str) -> Result<i64, String> {
    oubli_core::rights::engine::parse_timestamp(text)
}

/// Filing options common to every kind.
#[derive(Args, Clone)]
pub struct FileArgs {
    #[command(flatten)]
    subject: SubjectArgs,
    #[command(flatten)]
    actor: ActorArgs,
    /// How the identity was checked (`id-document`, `call-back`); with
    /// --evidence, attests it now.
    #[arg(long, requires = "evidence")]
    attest: Option<String>,
    /// The evidence of the identity check (a note; stored sealed).
    #[arg(long, requires = "attest")]
    evidence: Option<String>,
    /// How the request reached you (a contact center's intake): call,
    /// ivr, email, letter or web.
    #[arg(long, value_parser = parse_channel)]
    channel: Option<oubli_model::Channel>,
    /// When it was actually received, with its offset
    /// (2026-12-01T09:30:00+01:00): the deadline runs from then. Needs
    /// --channel.
    #[arg(long, requires = "channel", value_parser = parse_received)]
    received_at: Option<i64>,
    /// File and return at once; do not plan in this process (a worker
    /// will).
    #[arg(long)]
    no_wait: bool,
}

/// `oubli request …`
#[derive(Subcommand)]
pub enum RequestCommand {
    /// File an access request (Art. 15).
    Access(FileArgs),
    /// File a portability request (Art. 20).
    Portability(FileArgs),
    /// File a rectification (Art. 16): --set FIELD=VALUE, or
    /// --set SYSTEM.FIELD=VALUE for one system only; an empty value clears.
    Rectify {
        #[command(flatten)]
        file: FileArgs,
        /// A correction (repeatable).
        #[arg(long = "set", value_name = "[SYSTEM.]FIELD=VALUE", required = true)]
        set: Vec<String>,
    },
    /// File an erasure request (Art. 17).
    Erase(FileArgs),
    /// File a restriction of processing (Art. 18): everything, or named
    /// categories or purposes.
    Restrict {
        #[command(flatten)]
        file: FileArgs,
        /// What is restricted (repeatable; default `all`).
        #[arg(long)]
        scope: Vec<String>,
    },
    /// File an objection (Art. 21/22) to a purpose: direct-marketing,
    /// profiling, automated-decisions, ...
    Object {
        #[command(flatten)]
        file: FileArgs,
        /// The purpose objected to (repeatable).
        #[arg(long, required = true)]
        purpose: Vec<String>,
    },
    /// Record a withdrawal of consent (Art. 7(3)) for a purpose.
    WithdrawConsent {
        #[command(flatten)]
        file: FileArgs,
        /// The purpose consent is withdrawn for (repeatable).
        #[arg(long, required = true)]
        purpose: Vec<String>,
    },
    /// Show a request: its plan, each system's state and result, its
    /// history.
    Show {
        /// The request id.
        id: String,
    },
    /// Attest the subject's identity (when the policy asks for it).
    Attest {
        /// The request id.
        id: String,
        #[command(flatten)]
        actor: ActorArgs,
        /// How the identity was checked.
        #[arg(long)]
        method: String,
        /// The evidence (stored sealed).
        #[arg(long)]
        evidence: String,
    },
    /// Approve a planned request (under four eyes: not by its requester).
    Approve {
        /// The request id.
        id: String,
        #[command(flatten)]
        actor: ActorArgs,
        /// Carry it out in this process now, as a worker would.
        #[arg(long)]
        run: bool,
    },
    /// Refuse a planned request.
    Reject {
        /// The request id.
        id: String,
        #[command(flatten)]
        actor: ActorArgs,
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Run a system's task again (after it needed attention); without
    /// `--system`, the planning task.
    Retry {
        /// The request id.
        id: String,
        /// The system (none: the planning task).
        #[arg(long)]
        system: Option<String>,
        #[command(flatten)]
        actor: ActorArgs,
    },
    /// Give up on a system's task, with a reason.
    Skip {
        /// The request id.
        id: String,
        /// The system.
        #[arg(long)]
        system: String,
        #[command(flatten)]
        actor: ActorArgs,
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Say a manual task was carried out in the system; it is verified
    /// before it counts.
    Done {
        /// The request id.
        id: String,
        /// The system.
        #[arg(long)]
        system: String,
        #[command(flatten)]
        actor: ActorArgs,
        /// What was done.
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Extend the deadline (Art. 12(3): by up to two further months in
    /// all), with the reason and how the subject was told.
    Extend {
        /// The request id.
        id: String,
        /// Months to add.
        #[arg(long, default_value_t = 1)]
        months: u32,
        #[command(flatten)]
        actor: ActorArgs,
        /// Why (complexity, number of requests).
        #[arg(long, default_value = "")]
        reason: String,
        /// How and when the subject was told.
        #[arg(long, default_value = "")]
        told: String,
    },
    /// Lift a restriction, objection or consent withdrawal (Art. 18(3): the
    /// subject is told first): the registry at once, every system through
    /// a `lift` request, which this prints.
    Lift {
        /// The restriction's request id.
        id: String,
        #[command(flatten)]
        actor: ActorArgs,
        /// Why the restriction ends.
        #[arg(long, default_value = "")]
        reason: String,
        /// How and when the subject was told.
        #[arg(long, default_value = "")]
        told: String,
    },
    /// Keep one record out of a plan awaiting approval (it is retained,
    /// with the reason): a record shared with others, say.
    Exclude {
        /// The request id.
        id: String,
        /// The system.
        #[arg(long)]
        system: String,
        /// The record, as `KIND:ID` (as the plan shows it).
        #[arg(long, value_name = "KIND:ID")]
        record: String,
        #[command(flatten)]
        actor: ActorArgs,
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Crypto-shred a request that is over: its identifiers, plan, results
    /// and notes become unreadable everywhere, backups included; its id,
    /// states, dates and counts remain.
    Shred {
        /// The request id.
        id: String,
        #[command(flatten)]
        actor: ActorArgs,
    },
    /// Add a note to a request's history (sealed; auditors do not see it).
    Note {
        /// The request id.
        id: String,
        #[command(flatten)]
        actor: ActorArgs,
        /// The note.
        #[arg(long)]
        text: String,
    },
    /// Withdraw a request that is not over.
    Cancel {
        /// The request id.
        id: String,
        #[command(flatten)]
        actor: ActorArgs,
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
    },
}

/// `oubli requests`
#[derive(Args)]
pub struct ListArgs {
    /// Only requests in this state; `needs-attention`: those with a task
    /// waiting for an operator (planning included).
    #[arg(long, value_parser = parse_state_filter)]
    state: Option<StateFilter>,
    /// Only requests with a task waiting for an operator.
    #[arg(long)]
    needs_attention: bool,
    /// Only requests past their deadline and not over.
    #[arg(long)]
    overdue: bool,
    /// Only requests due within this long (`7d`, `48h`) and not over.
    #[arg(long, value_name = "DURATION", value_parser = parse_days)]
    due_within: Option<Duration>,
    /// Only this subject's requests (by email).
    #[arg(long)]
    email: Vec<String>,
    /// Only this subject's requests (by phone).
    #[arg(long)]
    phone: Vec<String>,
    /// At most this many.
    #[arg(long, default_value_t = 100)]
    limit: i64,
    /// Start after this id (the last of the previous page).
    #[arg(long)]
    after: Option<String>,
}

/// `oubli worker`
#[derive(Args)]
pub struct WorkerArgs {
    /// Stop when no task is available or running.
    #[arg(long)]
    until_idle: bool,
    /// Tasks claimed at once.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// How long a claim is leased (renewed while a call runs).
    #[arg(long, default_value = "60s", value_parser = parse_days)]
    lease: Duration,
}

/// `oubli restriction …`
#[derive(Subcommand)]
pub enum RestrictionCommand {
    /// May this person be processed (called, emailed, profiled)? Answered
    /// from the host's registry, without calling any system. Exit status 0:
    /// allowed, 1: restricted.
    Check {
        /// An email address.
        #[arg(long)]
        email: Vec<String>,
        /// A phone number.
        #[arg(long)]
        phone: Vec<String>,
        /// Region for national phone numbers.
        #[arg(long, value_parser = crate::args::parse_region)]
        region: Option<Region>,
        /// The processing asked about (`all`, `direct-marketing`, a
        /// category).
        #[arg(long, default_value = "all")]
        scope: String,
    },
}

/// `--state`: a request state, or `needs-attention` (a task waits for an
/// operator, whatever the request's state).
#[derive(Clone, Copy)]
enum StateFilter {
    State(RequestState),
    NeedsAttention,
}

fn parse_state_filter(s: &str) -> Result<StateFilter, String> {
    if s == "needs-attention" {
        return Ok(StateFilter::NeedsAttention);
    }
    parse_state(s)
        .map(StateFilter::State)
        .map_err(|e| format!("{e}, needs-attention"))
}

fn parse_state(s: &str) -> Result<RequestState, String> {
    RequestState::parse(s).ok_or_else(|| {
        let all: Vec<&str> = RequestState::ALL.iter().map(|s| s.as_str()).collect();
        format!("one of {}", all.join(", "))
    })
}

fn parse_days(s: &str) -> Result<Duration, String> {
    oubli_core::config::parse_duration(s)
}

fn correction(s: &str) -> Result<Correction> {
    let (key, value) = s
        .split_once('=')
        .with_context(|| "--set takes FIELD=VALUE or SYSTEM.FIELD=VALUE".to_string())?;
    let (system, field) = match key.split_once('.') {
        Some((sys, f)) => (Some(sys.to_string()), f.to_string()),
        None => (None, key.to_string()),
    };
    Ok(Correction {
        system,
        field,
        new_value: (!value.is_empty()).then(|| value.to_string()),
    })
}

/// Run the worker in this process until `id` needs nobody but a person
/// (planned and awaiting approval, a manual task) or is over, or nothing is
/// due for it soon.
pub async fn drive(engine: &Arc<Engine>, id: &str) -> Result<()> {
    Ok(Worker::new(engine.clone(), WorkerOptions::default())
        .drive(id)
        .await?)
}

fn scoped(scope: Vec<String>) -> Params {
    Params {
        scope,
        ..Params::default()
    }
}

/// `oubli request …`
pub async fn request(args: EngineArgs, cmd: RequestCommand) -> Result<ExitCode> {
    let (kind, file, params) = match cmd {
        RequestCommand::Access(f) => (RequestKind::Access, f, Params::default()),
        RequestCommand::Portability(f) => (RequestKind::Portability, f, Params::default()),
        RequestCommand::Erase(f) => (RequestKind::Erasure, f, Params::default()),
        RequestCommand::Rectify { file, set } => {
            let changes = set.iter().map(|s| correction(s)).collect::<Result<_>>()?;
            (
                RequestKind::Rectification,
                file,
                Params {
                    changes,
                    ..Params::default()
                },
            )
        }
        RequestCommand::Restrict { file, scope } => (RequestKind::Restriction, file, scoped(scope)),
        RequestCommand::Object { file, purpose } => (RequestKind::Objection, file, scoped(purpose)),
        RequestCommand::WithdrawConsent { file, purpose } => {
            (RequestKind::ConsentWithdrawal, file, scoped(purpose))
        }
        other => return decide(args, other).await,
    };
    let engine = args.open(!file.no_wait).await?;
    let view = engine
        .file(NewRequest {
            id: None,
            kind,
            identifiers: file.subject.identifiers(),
            region: file.subject.region,
            actor: file.actor.name(),
            params,
            attestation: file.attest.map(|method| Attestation {
                method,
                evidence: file.evidence.unwrap_or_default(),
            }),
            intake: file.channel.map(|channel| Intake {
                channel,
                received_at: file.received_at,
                needs_attestation: false,
            }),
        })
        .await
        .map_err(|e| match e {
            oubli_core::rights::engine::RequestError::Identifiers(e) => crate::args::with_flag(e),
            e => e.into(),
        })?;
    if !file.no_wait {
        drive(&engine, &view.id).await?;
    }
    show(&engine, &view.id, args.json()).await
}

async fn show(engine: &Engine, id: &str, json: bool) -> Result<ExitCode> {
    let detail = engine.show(id).await?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&detail)?);
    } else {
        out!("{}", render::request(&detail, engine.now()));
    }
    Ok(ExitCode::SUCCESS)
}

async fn decide(args: EngineArgs, cmd: RequestCommand) -> Result<ExitCode> {
    let needs_connectors = matches!(
        cmd,
        RequestCommand::Approve { run: true, .. } | RequestCommand::Lift { .. }
    );
    let engine = args.open(needs_connectors).await?;
    let id = match cmd {
        RequestCommand::Show { id } => id,
        RequestCommand::Attest {
            id,
            actor,
            method,
            evidence,
        } => {
            engine
                .attest(&id, &actor.name(), &Attestation { method, evidence })
                .await?;
            id
        }
        RequestCommand::Approve { id, actor, run } => {
            engine.approve(&id, &actor.name()).await?;
            if run {
                drive(&engine, &id).await?;
            }
            id
        }
        RequestCommand::Reject { id, actor, reason } => {
            engine.reject(&id, &actor.name(), &reason).await?;
            id
        }
        RequestCommand::Lift {
            id,
            actor,
            reason,
            told,
        } => {
            let lift = engine
                .lift(&id, &actor.name(), &reason, &told)
                .await
                .map_err(|e| match e {
                    e if e.kind() == ErrorKind::Invalid => {
                        anyhow::anyhow!("{e} (--reason, --told)")
                    }
                    e => e.into(),
                })?;
            // Carried out here, as a filed request is.
            drive(&engine, &lift.id).await?;
            lift.id
        }
        RequestCommand::Exclude {
            id,
            system,
            record,
            actor,
            reason,
        } => {
            let Some((kind, rid)) = record
                .split_once(':')
                .filter(|(k, i)| !k.is_empty() && !i.is_empty())
            else {
                anyhow::bail!("--record: give the record as KIND:ID");
            };
            let record = oubli_model::RecordRef {
                kind: kind.to_string(),
                id: rid.to_string(),
            };
            engine
                .exclude(&id, &system, &record, &actor.name(), &reason)
                .await?;
            id
        }
        RequestCommand::Retry { id, system, actor } => {
            match system.as_deref() {
                Some("") => anyhow::bail!("--system: give a system name"),
                Some(system) => engine.retry(&id, system, &actor.name()).await?,
                None => engine.retry_planning(&id, &actor.name()).await?,
            }
            id
        }
        RequestCommand::Skip {
            id,
            system,
            actor,
            reason,
        } => {
            engine.skip(&id, &system, &actor.name(), &reason).await?;
            // What follows is the host's own work (an access request's
            // answer, recipients to tell): done here, as after filing.
            drive(&engine, &id).await?;
            id
        }
        RequestCommand::Done {
            id,
            system,
            actor,
            note,
        } => {
            engine
                .manual_done(&id, &system, &actor.name(), &note)
                .await?;
            id
        }
        RequestCommand::Extend {
            id,
            months,
            actor,
            reason,
            told,
        } => {
            engine
                .extend(&id, &actor.name(), months, &reason, &told)
                .await?;
            id
        }
        RequestCommand::Cancel { id, actor, reason } => {
            engine.cancel(&id, &actor.name(), &reason).await?;
            id
        }
        RequestCommand::Note { id, actor, text } => {
            engine.note(&id, &actor.name(), &text).await?;
            id
        }
        RequestCommand::Shred { id, actor } => {
            engine.shred(&id, &actor.name()).await?;
            id
        }
        _ => unreachable!("filing commands are handled by `request`"),
    };
    show(&engine, &id, args.json()).await
}

/// `oubli requests`
pub async fn list(args: EngineArgs, list: ListArgs) -> Result<ExitCode> {
    let engine = args.open(false).await?;
    let now = engine.now();
    let due_before = if list.overdue {
        Some(now)
    } else {
        list.due_within.map(|d| now + d.as_millis() as i64)
    };
    let ids = if list.email.is_empty() && list.phone.is_empty() {
        None
    } else {
        let given = Identifiers {
            emails: list.email,
            phones: list.phone,
            ..Identifiers::default()
        };
        Some(
            engine
                .requests_of(&given, None)
                .await
                .map_err(|e| match e {
                    oubli_core::rights::engine::RequestError::Identifiers(e) => {
                        crate::args::with_flag(e)
                    }
                    e => e.into(),
                })?,
        )
    };
    let rows = engine
        .list(&Filter {
            state: match list.state {
                Some(StateFilter::State(s)) => Some(s),
                _ => None,
            },
            needs_attention: list.needs_attention
                || matches!(list.state, Some(StateFilter::NeedsAttention)),
            due_before,
            ids,
            after: list.after,
            limit: list.limit,
            ..Filter::default()
        })
        .await?;
    if args.json() {
        outln!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        out!("{}", render::requests(&rows, now));
    }
    Ok(ExitCode::SUCCESS)
}

/// `oubli worker`
pub async fn worker(args: EngineArgs, w: WorkerArgs) -> Result<ExitCode> {
    let engine = args.open(true).await?;
    let options = WorkerOptions {
        batch: w.batch.clamp(1, 1000),
        lease: w.lease.max(Duration::from_secs(1)),
        ..WorkerOptions::default()
    };
    tracing::info!(worker = %options.id, "worker started");
    let worker = Worker::new(engine, options);
    let stop = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    let n = worker.run(w.until_idle, stop).await?;
    eprintln!("worker ran {n} tasks");
    Ok(ExitCode::SUCCESS)
}

/// `oubli restriction check`
pub async fn restriction(args: EngineArgs, cmd: RestrictionCommand) -> Result<ExitCode> {
    let RestrictionCommand::Check {
        email,
        phone,
        region,
        scope,
    } = cmd;
    let engine = args.open(false).await?;
    let given = Identifiers {
        emails: email,
        phones: phone,
        ..Identifiers::default()
    };
    let answer = engine
        .check_restriction(&given, region, &scope)
        .map_err(|e| match e {
            oubli_core::rights::engine::RequestError::Identifiers(e) => crate::args::with_flag(e),
            e => e.into(),
        })?;
    if args.json() {
        outln!("{}", serde_json::to_string_pretty(&answer)?);
    } else if answer.allowed {
        outln!("allowed: no restriction applies to {scope}");
    } else {
        for r in &answer.restrictions {
            outln!(
                "restricted: {} (request {}, since {})",
                r.scope,
                r.request_id,
                oubli_core::rights::engine::date(r.since)
            );
        }
    }
    Ok(if answer.allowed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// What `oubli systems pause|resume|paused` asks.
pub enum PauseCommand {
    /// Pause a system.
    Pause {
        /// The system.
        system: String,
        /// Who.
        actor: ActorArgs,
        /// Why.
        reason: String,
    },
    /// Resume it.
    Resume {
        /// The system.
        system: String,
        /// Who.
        actor: ActorArgs,
    },
    /// List the paused systems.
    Paused,
}

/// `oubli systems pause|resume|paused`
pub async fn pause(args: EngineArgs, cmd: PauseCommand) -> Result<ExitCode> {
    let engine = args.open(false).await?;
    match cmd {
        PauseCommand::Pause {
            system,
            actor,
            reason,
        } => {
            let new = engine.pause_system(&system, &actor.name(), &reason).await?;
            outln!(
                "{system} {}",
                if new { "paused" } else { "was already paused" }
            );
        }
        PauseCommand::Resume { system, actor } => {
            let was = engine.resume_system(&system, &actor.name()).await?;
            outln!(
                "{system} {}",
                if was { "resumed" } else { "was not paused" }
            );
        }
        PauseCommand::Paused => {
            let paused = engine.paused_systems().await?;
            if args.json() {
                outln!("{}", serde_json::to_string_pretty(&paused)?);
            } else if paused.is_empty() {
                outln!("no system is paused");
            } else {
                for p in paused {
                    outln!(
                        "{}  paused by {} on {}: {}",
                        p.system,
                        p.paused_by,
                        oubli_core::rights::engine::date(p.paused_at),
                        oubli_model::for_display(&p.reason, 200)
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
