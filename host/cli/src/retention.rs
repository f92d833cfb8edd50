//! `oubli retention`: policies, their runs, holds and certificates.

use crate::args::{ActorArgs, EngineArgs};
use anyhow::{Context, Result};
use clap::Subcommand;
use oubli_core::rights::certificate::unb64;
use oubli_core::rights::retention::{SweepView, Tally};
use oubli_model::{RecordRef, for_display};
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit status of a run that must wait and be resumed (EX_TEMPFAIL).
const WAITS: u8 = 75;

/// `oubli retention …`
#[derive(Subcommand)]
pub enum RetentionCommand {
    /// The policies: what each keeps how long, its effective period (the
    /// longest over its category), its next scheduled run and last runs.
    Policies,
    /// Run a policy: a test run by default (lists what would go, erases
    /// nothing); with --enforce, carry out its accepted test run with the
    /// test's cutoff. Exit status 75 when the run must wait (a system
    /// failed, an access request is still searching): `retention resume`
    /// takes it up.
    Run {
        /// The policy's id.
        policy: String,
        /// Erase what the accepted test run listed.
        #[arg(long)]
        enforce: bool,
        /// Test as of an earlier moment (RFC 3339), not now.
        #[arg(long, value_name = "TIME")]
        as_of: Option<String>,
        #[command(flatten)]
        actor: ActorArgs,
    },
    /// Accept a test run's disposition (a second person: not who ran it).
    Approve {
        /// The run.
        sweep: String,
        #[command(flatten)]
        actor: ActorArgs,
    },
    /// Carry on every run that no live process holds (after a crash, or a
    /// run that waited); `oubli worker` does it by itself.
    Resume,
    /// Runs, newest first.
    Runs {
        /// Only this policy's.
        #[arg(long)]
        policy: Option<String>,
    },
    /// One run.
    Show {
        /// The run.
        sweep: String,
    },
    /// Write an enforcing run's signed retention certificate: FILE, FILE.sig
    /// and FILE.pub.pem, which `openssl dgst` checks.
    Certificate {
        /// The run.
        sweep: String,
        /// Where to write the document.
        #[arg(long)]
        out: PathBuf,
    },
    /// Set a legal hold: nothing it covers is erased by any run until it is
    /// released. On a system, one category of it, or one record.
    Hold {
        /// The system.
        #[arg(long)]
        system: String,
        /// Only this category.
        #[arg(long)]
        category: Option<String>,
        /// Only this record, `KIND:ID` as the connector names it.
        #[arg(long)]
        record: Option<String>,
        /// Why (the Art. 17(3) ground, the case).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        actor: ActorArgs,
    },
    /// Release a legal hold.
    Release {
        /// The hold.
        hold: String,
        #[command(flatten)]
        actor: ActorArgs,
    },
    /// The legal holds in force.
    Holds,
}

/// Run `oubli retention …`.
pub async fn retention(engine_args: EngineArgs, cmd: RetentionCommand) -> Result<ExitCode> {
    let json = engine_args.json();
    let needs_connectors = matches!(cmd, RetentionCommand::Run { .. } | RetentionCommand::Resume);
    let engine = engine_args.open(needs_connectors).await?;
    let err = crate::args::request_error;
    match cmd {
        RetentionCommand::Policies => {
            let policies = engine.retention_policies().await.map_err(err)?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&policies)?);
                return Ok(ExitCode::SUCCESS);
            }
            if policies.is_empty() {
                outln!(
                    "no retention policy configured ([[retention.policies]] in the configuration)"
                );
            }
            for p in &policies {
                let q = &p.policy;
                outln!(
                    "{}  {} / {}  {} after {} ({}), {}{}",
                    q.id,
                    q.system,
                    for_display(&q.category, 60),
                    oubli_model::wire_name(&q.action),
                    p.trigger.as_deref().unwrap_or("the default date"),
                    if p.effective_period == q.period.to_string() {
                        p.effective_period.clone()
                    } else {
                        format!(
                            "{}, longest over the category: {}",
                            q.period, p.effective_period
                        )
                    },
                    oubli_model::wire_name(&q.mode),
                    p.next_run
                        .as_deref()
                        .map(|n| format!(", next run {n}"))
                        .unwrap_or_default()
                );
                for r in &p.runs {
                    outln!("  {}", line(r));
                }
            }
        }
        RetentionCommand::Run {
            policy,
            enforce,
            as_of,
            actor,
        } => {
            let as_of = as_of
                .map(|t| oubli_core::rights::engine::parse_timestamp(&t))
                .transpose()
                .map_err(|e| anyhow::anyhow!("--as-of: {e}"))?;
            let id = engine
                .retention_start(&policy, enforce, as_of, &actor.name())
                .await
                .map_err(err)?;
            let v = engine.retention_drive(&id).await.map_err(err)?;
            return Ok(report(&v, json));
        }
        RetentionCommand::Approve { sweep, actor } => {
            let v = engine
                .retention_approve(&sweep, &actor.name())
                .await
                .map_err(err)?;
            return Ok(report(&v, json));
        }
        RetentionCommand::Resume => {
            let runs = engine.retention_resume().await.map_err(err)?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&runs)?);
            } else if runs.is_empty() {
                outln!("no run to resume");
            }
            let mut code = 0;
            for v in &runs {
                if !json {
                    outln!("{}", line(v));
                }
                code = code.max(status(v));
            }
            return Ok(ExitCode::from(code));
        }
        RetentionCommand::Runs { policy } => {
            let runs = engine
                .retention_sweeps(policy.as_deref())
                .await
                .map_err(err)?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&runs)?);
            } else {
                for v in &runs {
                    outln!("{}", line(v));
                }
            }
        }
        RetentionCommand::Show { sweep } => {
            let v = engine.retention_sweep(&sweep).await.map_err(err)?;
            return Ok(report(&v, json));
        }
        RetentionCommand::Certificate { sweep, out } => {
            let cert = engine.retention_certificate(&sweep).await.map_err(err)?;
            let sig = unb64(&cert.signature).context("the stored signature is not base64")?;
            std::fs::write(&out, cert.document.as_bytes())
                .with_context(|| format!("cannot write {}", out.display()))?;
            let sig_path = crate::service::sibling(&out, ".sig");
            let key_path = crate::service::sibling(&out, ".pub.pem");
            std::fs::write(&sig_path, &sig)?;
            std::fs::write(&key_path, cert.public_key.as_bytes())?;
            outln!(
                "retention certificate of {sweep} written to {} (+ .sig, .pub.pem); check it with:\n  openssl dgst -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32 -verify {} -signature {} {}",
                out.display(),
                key_path.display(),
                sig_path.display(),
                out.display()
            );
        }
        RetentionCommand::Hold {
            system,
            category,
            record,
            reason,
            actor,
        } => {
            let record = match record {
                None => None,
                Some(r) => {
                    let (kind, id) = r
                        .split_once(':')
                        .filter(|(k, i)| !k.is_empty() && !i.is_empty())
                        .context("--record: give KIND:ID (`email:u1/M42`)")?;
                    Some(RecordRef {
                        kind: kind.into(),
                        id: id.into(),
                    })
                }
            };
            let hold = engine
                .retention_hold(
                    &system,
                    category.as_deref(),
                    record.as_ref(),
                    &reason,
                    &actor.name(),
                )
                .await
                .map_err(err)?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&hold)?);
            } else {
                outln!("hold {} set on {}", hold.id, hold.system);
            }
        }
        RetentionCommand::Release { hold, actor } => {
            engine
                .retention_release(&hold, &actor.name())
                .await
                .map_err(err)?;
            outln!("hold {hold} released");
        }
        RetentionCommand::Holds => {
            let holds = engine.retention_holds().await.map_err(err)?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&holds)?);
            } else if holds.is_empty() {
                outln!("no legal hold in force");
            }
            for h in holds.iter().filter(|_| !json) {
                outln!(
                    "{}  {}{}{}  {} (by {}, {})",
                    h.id,
                    h.system,
                    h.category
                        .as_deref()
                        .map(|c| format!(" / {}", for_display(c, 60)))
                        .unwrap_or_default(),
                    if h.record_mac.is_some() {
                        " / one record"
                    } else {
                        ""
                    },
                    for_display(&h.reason, 200),
                    h.created_by,
                    oubli_core::rights::engine::date(h.created_at)
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// 0, 1 when it failed, [`WAITS`] when it waits to be resumed.
fn status(v: &SweepView) -> u8 {
    match v.state.as_str() {
        "failed" => 1,
        "running" => WAITS,
        _ => 0,
    }
}

fn report(v: &SweepView, json: bool) -> ExitCode {
    if json {
        outln!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
    } else {
        outln!("{}", line(v));
        outln!("  cutoff     {} ({} date)", v.cutoff, v.trigger);
        tally(&v.tally, v.mode == "enforce");
        if let Some(note) = &v.note {
            outln!("  note       {}", for_display(note, 300));
        }
        match v.state.as_str() {
            "tested" if v.action != "review" => outln!(
                "  next       oubli retention run {} --enforce   (erases what is listed, nothing newer)",
                v.policy
            ),
            "awaiting-approval" => outln!(
                "  next       a second person: oubli retention approve {}",
                v.id
            ),
            "done" | "failed" | "manual" if v.mode == "enforce" => outln!(
                "  evidence   oubli retention certificate {} --out FILE",
                v.id
            ),
            "running" => outln!("  next       oubli retention resume"),
            _ => {}
        }
    }
    ExitCode::from(status(v))
}

fn line(v: &SweepView) -> String {
    format!(
        "{}  {} run of {} ({} / {}): {}, {} due{}  started {} by {}",
        v.id,
        v.mode,
        v.policy,
        v.system,
        for_display(&v.category, 60),
        v.state,
        v.tally.due,
        if v.mode == "enforce" {
            format!(", {} erased", v.tally.erased)
        } else {
            String::new()
        },
        v.started_at,
        v.started_by
    )
}

fn tally(t: &Tally, enforce: bool) {
    outln!(
        "  due        {} (dated {} to {})",
        t.due,
        t.oldest.as_deref().unwrap_or("-"),
        t.newest.as_deref().unwrap_or("-")
    );
    for (why, n) in &t.excluded {
        outln!("  excluded   {n}: {}", for_display(why, 200));
    }
    if enforce {
        outln!("  erased     {}", t.erased);
        if t.not_found > 0 {
            outln!("  not found  {} (already gone when erased)", t.not_found);
        }
        for (why, n) in &t.retained {
            outln!("  kept       {n}: {}", for_display(why, 200));
        }
        if t.pending > 0 {
            outln!("  pending    {} (the system finishes later)", t.pending);
        }
        if t.failed > 0 {
            outln!("  failed     {}", t.failed);
        }
        if t.manual > 0 {
            outln!(
                "  manual     {} the system's API cannot remove; an operator must:",
                t.manual
            );
            for step in &t.manual_steps {
                outln!("             {}", for_display(step, 4096));
            }
        }
        if let Some(until) = &t.restorable_until {
            outln!("  restorable in the system until {until}");
        }
        if t.capped {
            outln!("  stopped at the policy's max_per_run: run again for the rest");
        }
    } else {
        for r in &t.sample {
            outln!(
                "  sample     {} {}",
                for_display(&r.kind, 40),
                for_display(&r.id, 120)
            );
        }
    }
}
