//! The service face from the command line: `serve` (the HTTP API, with
//! workers), API tokens, erasure certificates, the audit log's export and
//! signed heads, and the OpenAPI document.

use crate::args::{ActorArgs, EngineArgs};
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use oubli_api::server::{ServeOptions, Server};
use oubli_core::rights::audit::check_inclusion;
use oubli_core::rights::certificate::{check_certificate, unb64};
use oubli_core::rights::tokens::Role;
use oubli_model::evidence::InclusionProof;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// `oubli serve`.
#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on (default: `[api] listen`, else 127.0.0.1:8440).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Workers to run in this process (default: `[api] workers`, else 1;
    /// 0 leaves the work to `oubli worker` processes).
    #[arg(long)]
    workers: Option<usize>,
}

/// `oubli token …`.
#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it, once: only its hash is kept.
    Create {
        /// What it may do: auditor (read only), operator (file and carry
        /// out requests), approver (also approve), admin.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Who or what holds it (recorded as the actor of what it does).
        #[arg(long)]
        name: String,
        /// How long it works (`90d`, `12h`; default: until revoked).
        #[arg(long, value_parser = parse_days)]
        expires: Option<std::time::Duration>,
        #[command(flatten)]
        actor: ActorArgs,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by id (within a second in every `serve` process).
    Revoke {
        /// The token's id (the part after `oubli_`).
        id: String,
        #[command(flatten)]
        actor: ActorArgs,
    },
}

/// `oubli certificate …`.
#[derive(Subcommand)]
pub enum CertificateCommand {
    /// Write a completed erasure's signed certificate: FILE (the document),
    /// FILE.sig (the raw RSA-PSS signature) and FILE.pub.pem (the public
    /// key), which `openssl dgst` checks.
    Fetch {
        /// The request.
        request: String,
        /// Where to write the document.
        #[arg(long)]
        out: PathBuf,
    },
    /// Check a certificate's signature (with FILE.sig and a public key:
    /// FILE.pub.pem, or this host's with --db/--config), its inclusion
    /// proof (FILE.proof.json, when there is one: its place under a signed
    /// tree head, which needs no store) and, against the store, its place
    /// in the audit chain.
    Verify {
        /// The certificate document.
        file: PathBuf,
        /// The signature (default FILE.sig).
        #[arg(long)]
        sig: Option<PathBuf>,
        /// Check with this public key only, without the store.
        #[arg(long)]
        key: Option<PathBuf>,
        /// The inclusion proof (default FILE.proof.json, if it exists).
        #[arg(long)]
        proof: Option<PathBuf>,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| "one of auditor, operator, approver, admin".into())
}

fn parse_days(s: &str) -> Result<std::time::Duration, String> {
    oubli_core::config::parse_duration(s).and_then(|d| {
        (d >= std::time::Duration::from_secs(1))
            .then_some(d)
            .ok_or_else(|| format!("{s:?} is shorter than a second"))
    })
}

/// `oubli serve`.
pub async fn serve(engine_args: EngineArgs, args: ServeArgs) -> Result<ExitCode> {
    let config = engine_args.config()?;
    let api = config.api.clone();
    let listen = match args.listen {
        Some(l) => l,
        None => api.listen.parse().context("[api] listen")?,
    };
    let engine = engine_args.open(true).await?;
    let options = ServeOptions {
        listen,
        tls: api.tls.clone(),
        allow_plain_http: api.allow_plain_http,
        workers: args.workers.unwrap_or(api.workers),
        sign_every: api.sign_audit_every,
        max_body: api.max_body,
        header_timeout: api.header_timeout,
        max_connections: api.max_connections,
        max_connections_per_address: api.max_connections_per_address,
        trusted_proxies: api.trusted_proxies.clone(),
        lockout_after: api.lockout_after,
        webhooks: api.webhooks.clone(),
        console: api.console.clone(),
        privacy: api.privacy.clone(),
    };
    let workers = options.workers;
    let server = Server::bind(engine, options).await?;
    let scheme = if server.tls { "https" } else { "http" };
    eprintln!(
        "oubli: serving on {scheme}://{} ({workers} worker{}); stop with Ctrl-C",
        server.addr,
        if workers == 1 { "" } else { "s" }
    );
    if api.privacy.is_some() {
        eprintln!(
            "oubli: the privacy center on {scheme}://{}/privacy/",
            server.privacy_addr.unwrap_or(server.addr)
        );
    }
    let stop = async {
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    };
    server.run(stop).await?;
    eprintln!("oubli: stopped");
    Ok(ExitCode::SUCCESS)
}

/// `oubli token …`.
pub async fn token(engine_args: EngineArgs, cmd: TokenCommand) -> Result<ExitCode> {
    let engine = engine_args.open(false).await?;
    match cmd {
        TokenCommand::Create {
            role,
            name,
            expires,
            actor,
        } => {
            let t = engine
                .create_token(
                    role,
                    &name,
                    expires.map(|d| d.as_millis() as i64),
                    &actor.name(),
                )
                .await?;
            if engine_args.json() {
                outln!(
                    "{}",
                    serde_json::json!({"token": t.token.as_str(), "id": t.row.id, "role": t.row.role, "name": t.row.name, "expires_at": t.row.expires_at})
                );
            } else {
                eprintln!(
                    "oubli: token {} for {name} ({role}) created; it is shown this once:",
                    t.row.id
                );
                outln!("{}", t.token.as_str());
            }
        }
        TokenCommand::List => {
            let rows = engine.tokens().await?;
            if engine_args.json() {
                outln!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                let now = engine.now();
                for r in rows {
                    let status = if r.revoked_at.is_some() {
                        "revoked"
                    } else if r.expires_at.is_some_and(|e| e <= now) {
                        "expired"
                    } else {
                        "active"
                    };
                    outln!(
                        "{}  {:<8}  {:<7}  {}  (created by {})",
                        r.id,
                        r.role,
                        status,
                        r.name,
                        r.created_by
                    );
                }
            }
        }
        TokenCommand::Revoke { id, actor } => {
            if engine.revoke_token(&id, &actor.name()).await? {
                outln!("token {id} revoked");
            } else {
                bail!("no active token {id}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn sibling(file: &std::path::Path, ext: &str) -> PathBuf {
    let mut s = file.as_os_str().to_owned();
    s.push(ext);
    PathBuf::from(s)
}

/// `oubli certificate …`.
pub async fn certificate(engine_args: EngineArgs, cmd: CertificateCommand) -> Result<ExitCode> {
    match cmd {
        CertificateCommand::Fetch { request, out } => {
            let engine = engine_args.open(false).await?;
            let cert = engine.certificate(&request).await?;
            let sig = unb64(&cert.signature).context("the stored signature is not base64")?;
            std::fs::write(&out, cert.document.as_bytes())
                .with_context(|| format!("cannot write {}", out.display()))?;
            std::fs::write(sibling(&out, ".sig"), &sig)?;
            std::fs::write(sibling(&out, ".pub.pem"), cert.public_key.as_bytes())?;
            if let Some(proof) = &cert.proof {
                std::fs::write(
                    sibling(&out, ".proof.json"),
                    serde_json::to_string_pretty(proof)?,
                )?;
            }
            outln!(
                "certificate of {request} written to {} (+ .sig, .pub.pem, .proof.json: its place in the audit log, checked by docs/verify-proof.py); check it with:\n  openssl dgst -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32 -verify {} -signature {} {}",
                out.display(),
                sibling(&out, ".pub.pem").display(),
                sibling(&out, ".sig").display(),
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        CertificateCommand::Verify {
            file,
            sig,
            key,
            proof,
        } => {
            let document =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let sig_path = sig.unwrap_or_else(|| sibling(&file, ".sig"));
            let signature = std::fs::read(&sig_path)
                .with_context(|| format!("cannot read {}", sig_path.display()))?;
            // The proof named, or the one `certificate fetch` wrote beside it.
            let proof_path = proof.or_else(|| {
                let p = sibling(&file, ".proof.json");
                p.exists().then_some(p)
            });
            let proof: Option<InclusionProof> = match &proof_path {
                None => None,
                Some(p) => {
                    let text = std::fs::read_to_string(p)
                        .with_context(|| format!("cannot read {}", p.display()))?;
                    match serde_json::from_str(&text) {
                        Ok(proof) => Some(proof),
                        Err(_) => {
                            outln!(
                                "certificate INVALID: {} is not an inclusion proof",
                                p.display()
                            );
                            return Ok(ExitCode::from(1));
                        }
                    }
                }
            };
            let (result, pem) = match key {
                Some(k) => {
                    let pem = std::fs::read_to_string(&k)
                        .with_context(|| format!("cannot read {}", k.display()))?;
                    let r = check_certificate(&pem, &document, &signature)
                        .map(|c| (c, "signature valid (audit chain not checked: no store)"));
                    (r, pem)
                }
                None => {
                    let engine = engine_args.open(false).await?;
                    let r = engine
                        .verify_certificate(&document, &signature)
                        .await
                        .map(|c| (c, "signature valid, and the audit chain holds its head"));
                    (
                        r,
                        engine.vault().keyring().signer()?.public_pem().to_string(),
                    )
                }
            };
            let placed = match &proof {
                None => Ok(None),
                Some(p) => check_inclusion(p, &pem, Some(&document)).map(|()| Some(p)),
            };
            match (result, placed) {
                (Ok((c, how)), Ok(placed)) => {
                    outln!("certificate of {} ({}): {how}", c.request, c.outcome);
                    match placed {
                        Some(p) => outln!(
                            "inclusion proof holds: event {} of the log, under the tree head over {} events signed at {}",
                            p.leaf_index,
                            p.head.size,
                            p.head.signed_at
                        ),
                        None => outln!(
                            "no inclusion proof beside it: its place in the log was not checked (give --proof)"
                        ),
                    }
                    Ok(ExitCode::SUCCESS)
                }
                (Err(e), _) => {
                    outln!("certificate INVALID: {e}");
                    Ok(ExitCode::from(1))
                }
                (Ok(_), Err(e)) => {
                    outln!("certificate INVALID: its inclusion proof: {e}");
                    Ok(ExitCode::from(1))
                }
            }
        }
    }
}

/// `oubli audit export`: the log as JSON lines, with the signed heads.
pub async fn audit_export(engine_args: EngineArgs, after: i64) -> Result<ExitCode> {
    let engine = engine_args.open(false).await?;
    let mut after = after;
    loop {
        let events = engine.audit_events(after, 1000).await?;
        let Some(last) = events.last() else { break };
        after = last.leaf + 1;
        for e in &events {
            outln!(
                "{}",
                serde_json::to_string(&serde_json::json!({"event": e}))?
            );
        }
    }
    for h in engine.tree_heads().await? {
        outln!(
            "{}",
            serde_json::to_string(&serde_json::json!({"tree_head": h}))?
        );
    }
    for h in engine.signed_heads().await? {
        outln!(
            "{}",
            serde_json::to_string(&serde_json::json!({"signed_head": h}))?
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `oubli audit sign`: place what waits and sign the tree head now.
pub async fn audit_sign(engine_args: EngineArgs) -> Result<ExitCode> {
    let engine = engine_args.open(false).await?;
    match engine.sign_audit_head().await? {
        Some(h) => outln!(
            "signed the tree head at {} events (root {})",
            h.size,
            &h.root[..16]
        ),
        None => outln!("the tree head is already signed at this size"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `oubli audit prove`: an inclusion proof, as JSON.
pub async fn audit_prove(
    engine_args: EngineArgs,
    id: Option<String>,
    event: Option<i64>,
) -> Result<ExitCode> {
    let engine = engine_args.open(false).await?;
    let proof = match (id, event) {
        (_, Some(e)) => engine.prove_event(e).await?,
        (Some(id), None) => engine.prove_request(&id).await?,
        (None, None) => bail!("give a request id or --event"),
    };
    match proof {
        Some(p) => {
            outln!("{}", serde_json::to_string_pretty(&p)?);
            Ok(ExitCode::SUCCESS)
        }
        None => {
            outln!("that event waits for the sequencer: no proof yet (try again in a moment)");
            Ok(ExitCode::from(1))
        }
    }
}

/// `oubli audit heads --since SIZE`: signed tree heads as JSON lines, each
/// with its consistency proof.
pub async fn audit_heads(engine_args: EngineArgs, since: i64) -> Result<ExitCode> {
    let engine = engine_args.open(false).await?;
    for (head, consistency) in engine.tree_heads_since(since).await? {
        outln!(
            "{}",
            serde_json::to_string(&serde_json::json!({"head": head, "consistency": consistency}))?
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A witness's heads: JSON lines as `audit heads` prints them (a line may
/// also be a bare head).
pub fn read_witness_heads(file: &std::path::Path) -> Result<Vec<oubli_model::evidence::TreeHead>> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    oubli_core::rights::audit::parse_witness_heads(&text)
        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))
}

/// `oubli bundle …`.
#[derive(Subcommand)]
pub enum BundleCommand {
    /// Write the answer kept when an access or portability request
    /// completed (index.html in each language, JSON, CSV, XLSX, recordings
    /// and emails), encrypted: for each --to public key and --recipient
    /// name, else for this host's key. The same answer at every fetch.
    Fetch {
        /// The request.
        request: String,
        /// Where to write the encrypted bundle.
        #[arg(long)]
        out: PathBuf,
        /// A recipient's public key, PEM (the subject's own; repeatable).
        #[arg(long)]
        to: Vec<PathBuf>,
        /// A recipient registered with `oubli keys recipient add` (repeatable).
        #[arg(long)]
        recipient: Vec<String>,
        /// Hand it out even though the register of processing had gaps
        /// when it was written (its page says so).
        #[arg(long)]
        allow_incomplete: bool,
    },
}

fn parse_lang(s: &str) -> Result<oubli_core::rights::bundle::Lang, String> {
    oubli_core::rights::bundle::Lang::parse(s).ok_or_else(|| "one of en, fr".into())
}

/// `oubli bundle fetch`.
pub async fn bundle(engine_args: EngineArgs, cmd: BundleCommand) -> Result<ExitCode> {
    let BundleCommand::Fetch {
        request,
        out,
        to,
        recipient,
        allow_incomplete,
    } = cmd;
    let engine = engine_args.open(true).await?;
    let mut recipients = engine.recipients(&recipient)?;
    for path in &to {
        let pem = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        recipients.push(
            oubli_crypto::file::Recipient::from_pem(&pem)
                .with_context(|| path.display().to_string())?,
        );
    }
    if !to.is_empty() && recipient.is_empty() {
        // Only the keys given: drop the host's default.
        recipients.remove(0);
    }
    let tmp = sibling(&out, ".partial");
    let file = tokio::fs::File::create(&tmp)
        .await
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    let report = match engine
        .write_bundle(
            &request,
            &oubli_core::rights::bundle::BundleOptions {
                recipients,
                allow_incomplete,
            },
            tokio::io::BufWriter::new(file),
        )
        .await
    {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e.into());
        }
    };
    std::fs::rename(&tmp, &out).with_context(|| format!("cannot write {}", out.display()))?;
    if engine_args.json() {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        outln!(
            "answer to {request} written to {}: {} records, {} attachments, {} files; zip sha256 {}",
            out.display(),
            report.records,
            report.attachments,
            report.files.len() + 1,
            &report.zip_sha256[..16]
        );
        for (system, why) in &report.failed {
            outln!(
                "  {system}: not included: {}",
                oubli_model::for_display(why, 300)
            );
        }
    }
    Ok(if report.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `oubli consent …`.
#[derive(Subcommand)]
pub enum ConsentCommand {
    /// Record a consent given (Art. 7(1)), with its evidence.
    Record(ConsentArgs),
    /// Record a consent withdrawn, and file the consent-withdrawal request
    /// that restricts the subject for the purpose everywhere.
    Withdraw(ConsentArgs),
    /// A subject's consents: where each purpose stands, and the history.
    Show {
        #[command(flatten)]
        subject: crate::args::SubjectArgs,
    },
}

/// What a consent entry records.
#[derive(Args)]
pub struct ConsentArgs {
    #[command(flatten)]
    subject: crate::args::SubjectArgs,
    /// The purpose (`marketing-calls`).
    #[arg(long)]
    purpose: String,
    /// The lawful basis.
    #[arg(long, default_value = "consent")]
    basis: String,
    /// How it was captured: call, ivr, email, web.
    #[arg(long)]
    channel: String,
    /// The system it was captured in.
    #[arg(long)]
    system: Option<String>,
    /// The recording it was given in.
    #[arg(long)]
    recording: Option<String>,
    /// Where in the recording, in seconds.
    #[arg(long)]
    offset: Option<u32>,
    /// The notice's version (`oubli notice` prints it).
    #[arg(long)]
    notice_version: Option<String>,
    /// The notice's SHA-256.
    #[arg(long)]
    notice_sha256: Option<String>,
    /// The agent who took it.
    #[arg(long)]
    agent: Option<String>,
    /// Anything else (a form id).
    #[arg(long)]
    note: Option<String>,
    #[command(flatten)]
    actor: ActorArgs,
}

/// `oubli consent …`.
pub async fn consent(engine_args: EngineArgs, cmd: ConsentCommand) -> Result<ExitCode> {
    use oubli_core::rights::consent::{Evidence, NewConsent};
    let engine = engine_args.open(false).await?;
    let (args, given) = match cmd {
        ConsentCommand::Record(a) => (a, true),
        ConsentCommand::Withdraw(a) => (a, false),
        ConsentCommand::Show { subject } => {
            let view = engine
                .consents(&subject.identifiers(), subject.region)
                .await
                .map_err(crate::args::request_error)?;
            if engine_args.json() {
                outln!("{}", serde_json::to_string_pretty(&view)?);
            } else {
                if view.status.is_empty() {
                    outln!("no consent recorded for this subject");
                }
                for s in &view.status {
                    outln!(
                        "{:<24} {}  since {} (entry {})",
                        oubli_model::for_display(&s.purpose, 100),
                        if s.given { "given    " } else { "withdrawn" },
                        oubli_core::rights::engine::date(s.since),
                        s.entry
                    );
                }
                for e in &view.history {
                    outln!(
                        "  #{} {} {} {} by {} via {}{}",
                        e.id,
                        oubli_core::rights::engine::date(e.at),
                        oubli_model::for_display(&e.purpose, 100),
                        e.action,
                        e.recorded_by,
                        e.channel,
                        e.request_id
                            .as_deref()
                            .map(|r| format!(" (request {r})"))
                            .unwrap_or_default()
                    );
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
    };
    let entry = engine
        .record_consent(NewConsent {
            identifiers: args.subject.identifiers(),
            region: args.subject.region,
            purpose: args.purpose,
            given,
            lawful_basis: args.basis,
            channel: args.channel,
            source_system: args.system,
            evidence: Evidence {
                recording_id: args.recording,
                offset_seconds: args.offset,
                notice_version: args.notice_version,
                notice_sha256: args.notice_sha256,
                agent_id: args.agent,
                note: args.note,
            },
            actor: args.actor.name(),
        })
        .await
        .map_err(crate::args::request_error)?;
    if engine_args.json() {
        outln!("{}", serde_json::to_string_pretty(&entry)?);
    } else {
        outln!(
            "consent {} for {} recorded (entry {}){}",
            entry.action,
            oubli_model::for_display(&entry.purpose, 100),
            entry.id,
            entry
                .request_id
                .as_deref()
                .map(|r| format!("; request {r} filed to restrict it everywhere"))
                .unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `oubli notice`.
pub async fn notice(
    engine_args: EngineArgs,
    channel: String,
    intake: bool,
    lang: oubli_core::rights::bundle::Lang,
    allow_incomplete: bool,
) -> Result<ExitCode> {
    let rights = engine_args.systems().await?;
    if channel == "letter" && !intake {
        anyhow::bail!(
            "--channel letter is for the agents' script (--intake): a letter's notice is the web one"
        );
    }
    let n = if intake {
        rights.intake_script(&channel, lang, allow_incomplete)
    } else {
        rights.notice(&channel, lang, allow_incomplete)
    }
    .map_err(anyhow::Error::new)?;
    if engine_args.json() {
        outln!("{}", serde_json::to_string_pretty(&n)?);
    } else {
        // Register and connector text is not ours: each line neutralised.
        for line in n.text.lines() {
            outln!("{}", oubli_model::for_display(line, 4000));
        }
        eprintln!("oubli: notice version {} (sha256 {})", n.version, n.sha256);
    }
    if !n.complete {
        eprintln!(
            "oubli: warning: the notice is incomplete (the register has gaps): it is no evidence of what a person was told"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `oubli ropa`.
pub async fn ropa(
    engine_args: EngineArgs,
    format: String,
    lang: oubli_core::rights::bundle::Lang,
    allow_incomplete: bool,
) -> Result<ExitCode> {
    let rights = engine_args.systems().await?;
    let r = rights
        .ropa(lang, allow_incomplete)
        .map_err(anyhow::Error::new)?;
    match format.as_str() {
        "json" => outln!("{}", serde_json::to_string_pretty(&r)?),
        "html" => out!("{}", r.html()),
        _ => {
            for line in r.markdown().lines() {
                outln!("{}", oubli_model::for_display(line, 4000));
            }
        }
    }
    if !r.gaps.is_empty() {
        eprintln!(
            "oubli: warning: the record of processing is incomplete: {} gap(s)",
            r.gaps.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `oubli register …`.
#[derive(Subcommand)]
pub enum RegisterCommand {
    /// Write a starting register from the configured connectors' manifests
    /// (their defaults, in English, every activity marked for review).
    Init {
        #[command(flatten)]
        engine: EngineArgs,
        /// Where to write it (refused if it exists).
        #[arg(long, default_value = "register.toml")]
        out: PathBuf,
    },
    /// Name every gap: what the register, `[controller]` and the
    /// connectors' categories leave unsaid. Exits with status 1 if any.
    Check {
        #[command(flatten)]
        engine: EngineArgs,
    },
}

/// `oubli register init|check`.
pub async fn register(cmd: RegisterCommand) -> Result<ExitCode> {
    match cmd {
        RegisterCommand::Init { engine, out } => {
            let rights = engine.systems().await?;
            let systems: Vec<_> = rights
                .config()
                .systems
                .iter()
                .filter(|s| s.enabled)
                .map(|s| {
                    let info = rights
                        .registry()
                        .get(s.name())
                        .map(|c| c.info().manifest.clone());
                    (
                        s.name().to_string(),
                        info.as_ref().map(|m| m.name.clone()),
                        info.map(|m| m.categories).unwrap_or_default(),
                    )
                })
                .collect();
            let text = oubli_core::register::Register::init(&systems);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&out)
                .with_context(|| format!("cannot create {}", out.display()))?;
            std::io::Write::write_all(&mut f, text.as_bytes())?;
            eprintln!(
                "wrote {}: review it, then name it in the configuration with [register] file = {:?}, and run `oubli register check`",
                out.display(),
                out.display().to_string()
            );
            Ok(ExitCode::SUCCESS)
        }
        RegisterCommand::Check { engine } => {
            let rights = engine.systems().await?;
            let gaps = rights.register_gaps();
            if engine.json() {
                outln!("{}", serde_json::to_string_pretty(&gaps)?);
            } else if gaps.is_empty() {
                outln!("the register of processing is complete");
            } else {
                for g in &gaps {
                    outln!("gap: {}", oubli_model::for_display(&g.to_string(), 400));
                }
                outln!("{} gap(s)", gaps.len());
            }
            Ok(if gaps.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

/// Parse a language code.
pub fn lang(s: &str) -> Result<oubli_core::rights::bundle::Lang, String> {
    parse_lang(s)
}
