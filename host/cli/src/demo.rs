//! `oubli demo`: "where is this person's data?" across four systems, in one
//! command and a few seconds.
//!
//! Writes the four reference connectors the binary carries into the output
//! directory, starts the sandbox stand-ins (Genesys Cloud, a dialer, a JMAP
//! mailbox, a CRM) on loopback, writes the configuration an integrator
//! would (each connector granted its stand-in only), and then does what an
//! operator does, through the rights service: locate one synthetic person
//! everywhere, export their records with every recording and message
//! streamed through `read-attachment` into a ZIP encrypted as it is written
//! (docs/FORMAT.md, to a demo key pair), then decrypt it again and check it.
//! Everything it made stays in the output directory.
//!
//! This is the only place the product uses the sandbox crate and the
//! embedded connectors (cargo feature `demo`, on by default).

use crate::render;
use anyhow::{Context, Result, bail};
use oubli_core::config::Config;
use oubli_core::identifiers::Identifiers;
use oubli_core::rights::engine::{Action, Attestation, Engine, NewRequest, Params, date};
use oubli_core::rights::export::{CHUNK, Hashing};
use oubli_core::rights::{self, Systems};
use oubli_crypto::file::{self, Recipient};
use oubli_crypto::keyring::Keyring;
use oubli_crypto::keyring::write_key_pair;
use oubli_model::{RequestKind, RequestState};
use oubli_model::{Status, for_display};
use oubli_sandbox::{Options, Sandbox};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Run the demo into `out`.
pub async fn run(
    out: &Path,
    console: Option<std::net::SocketAddr>,
    no_cache: bool,
) -> Result<ExitCode> {
    let started = Instant::now();
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let out = std::path::absolute(out).unwrap_or_else(|_| out.to_path_buf());

    // The connectors, as an integrator would deploy them.
    let connectors = crate::sandbox::write_connectors(&out, oubli_connectors::REFERENCE)?;

    let sandbox = Sandbox::start(Options {
        gdpr_step: Duration::from_millis(200),
        ..Options::default()
    })
    .await
    .context("cannot start the sandbox on loopback")?;
    let person = sandbox.demo_person().clone();

    // The configuration an integrator would write.
    let secrets = out.join("secrets");
    sandbox
        .write_secrets(&secrets)
        .with_context(|| format!("cannot write {}", secrets.display()))?;
    let config_path = out.join("oubli.toml");
    // The policy the demo's requests run under: erasures approved by a
    // second operator; the stand-in's asynchronous GDPR job polled often.
    // The controller's own word (its register of processing, complete in
    // English and French) beside it: what notices, the record of
    // processing and the subject's answer say.
    let register = oubli_sandbox::write_register(&out)
        .with_context(|| format!("cannot write {}", out.join("register.toml").display()))?;
    // And a retention policy: support mail is kept 30 days after it was
    // received; a test run finding more than 20 messages waits for a
    // second person.
    let config_text = format!(
        "{}\n[policy]\nfour_eyes = true\npoll_interval = \"250ms\"\nbackoff = \"500ms\"\nkeep_answers = \"90 days\"\n{register}\n\
         [[retention.policies]]\nid = \"support-mail-30d\"\nsystem = \"support-mail\"\ncategory = \"correspondence\"\n\
         period = \"30 days\"\nmode = \"enforce\"\napproval_threshold = 20\n\
         description = \"Support mail is kept 30 days after it was received\"\n",
        sandbox.config_toml(&connectors, &secrets)
    );
    std::fs::write(&config_path, config_text)
        .with_context(|| format!("cannot write {}", config_path.display()))?;
    let rights = Systems::open(
        Config::load(&config_path)?,
        rights::Options {
            no_cache,
            ..Default::default()
        },
    )
    .await?;

    outln!(
        "oubli demo: four stand-in systems on loopback, {} synthetic people.\n\
         Looking for {} <{}>, {} (the email and the phone number are all oubli is given).\n",
        sandbox.people().len(),
        person.full_name(),
        person.email,
        person.phone_national(),
    );
    // The phone number is national: the configured region reads it.
    let subject = rights.subject(
        &Identifiers {
            emails: vec![person.email.clone()],
            phones: vec![person.phone_national()],
            ..Default::default()
        },
        None,
    )?;
    let found = rights.locate(&subject).await;
    outln!("Where is their data?\n");
    out!("{}", render::locate(&found));

    // Export everything found into an encrypted ZIP.
    let keys = out.join("keys");
    std::fs::create_dir_all(&keys)?;
    let (private, public) = (
        keys.join("demo-recipient.pem"),
        keys.join("demo-recipient.pub.pem"),
    );
    let key_id = write_key_pair(&private, &public, None)?;
    let recipient = Recipient::from_pem(&std::fs::read_to_string(&public)?)?;
    let encrypted = out.join("export.oubli");
    let partial = out.join(".export.oubli.partial");
    let file = tokio::fs::File::create(&partial)
        .await
        .with_context(|| format!("cannot create {}", partial.display()))?;
    let mut file = tokio::io::BufWriter::new(file);
    let report = rights
        .export(&found, &subject, &[recipient], "demo", &mut file)
        .await;
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e.into());
        }
    };
    file.into_inner().sync_all().await?;
    std::fs::rename(&partial, &encrypted)?;

    outln!(
        "\nExported (each attachment streamed in {} KiB calls):\n",
        CHUNK / 1024
    );
    let width = report
        .systems
        .iter()
        .map(|s| s.system.len())
        .max()
        .unwrap_or(6);
    outln!(
        "{:width$}  records  fields  attachments       bytes",
        "system"
    );
    for t in &report.systems {
        let system = &t.system;
        match &t.error {
            Some(e) => outln!(
                "{system:width$}  export failed: {}",
                oubli_model::for_display(e, 300)
            ),
            None => outln!(
                "{system:width$}  {:>7}  {:>6}  {:>11}  {:>10}",
                t.records,
                t.fields,
                t.attachments,
                t.bytes
            ),
        }
    }

    // Decrypt it again, as the recipient would.
    let decrypted = out.join("export.zip");
    let key = file::private_key_from_pem(
        &std::fs::read_to_string(&private)?,
        None,
        &private.display().to_string(),
    )?;
    let decrypt = || -> Result<(String, u64)> {
        let (_, mut hashing) = file::decrypt(
            &key,
            std::io::BufReader::new(std::fs::File::open(&encrypted)?),
            Hashing::new(std::io::BufWriter::new(std::fs::File::create(&decrypted)?)),
        )?;
        hashing.flush()?;
        let (_, sha256, len) = hashing.finish();
        Ok((sha256, len))
    };
    let (sha256, len) = decrypt().inspect_err(|_| {
        let _ = std::fs::remove_file(&decrypted);
    })?;
    if sha256 != report.zip_sha256 || len != report.zip_len {
        bail!("the decrypted export differs from what was encrypted");
    }
    let entries = zip::ZipArchive::new(std::fs::File::open(&decrypted)?)
        .context("the decrypted export is not a readable ZIP")?
        .len();
    let enc_len = std::fs::metadata(&encrypted)?.len();
    outln!(
        "\n{} ({} bytes) is encrypted to key {key_id};\n\
         decrypted again into {} ({} entries, SHA-256 matches what was written).\n\
         Also in {}: oubli.toml, connectors/, secrets/, keys/.",
        encrypted.display(),
        enc_len,
        decrypted.display(),
        entries,
        out.display(),
    );
    let failed = report.has_failures()
        || found
            .systems
            .iter()
            .any(|r| !matches!(r.answer, rights::locate::SystemAnswer::Found { .. }));
    let requests_ok = requests(&out, rights, &person).await?;
    outln!("\nDone in {:.1} s.", started.elapsed().as_secs_f64());
    if let Some(addr) = console {
        serve_console(&out, &config_path, &sandbox, addr, no_cache).await?;
    }
    Ok(if failed || !requests_ok {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Write the access request's bundle for the demo key (`bundle.oubli`),
/// decrypt it and unzip it to `bundle/`; returns the page's path.
async fn write_bundle(
    out: &Path,
    engine: &Engine,
    id: &str,
) -> Result<(PathBuf, oubli_core::rights::bundle::BundleReport)> {
    let keys = out.join("keys");
    let recipient = Recipient::from_pem(&std::fs::read_to_string(
        keys.join("demo-recipient.pub.pem"),
    )?)?;
    let mut sealed = Vec::new();
    let report = engine
        .write_bundle(
            id,
            &oubli_core::rights::bundle::BundleOptions {
                recipients: vec![recipient],
                allow_incomplete: false,
            },
            &mut sealed,
        )
        .await?;
    std::fs::write(out.join("bundle.oubli"), &sealed)?;
    let pem = zeroize::Zeroizing::new(std::fs::read_to_string(keys.join("demo-recipient.pem"))?);
    let key = oubli_crypto::file::private_key_from_pem(&pem, None, "demo-recipient.pem")?;
    let (_, zip) = oubli_crypto::file::decrypt(&key, &sealed[..], Vec::new())?;
    let dir = out.join("bundle");
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    zip::ZipArchive::new(std::io::Cursor::new(zip))?
        .extract(&dir)
        .context("cannot unzip the bundle")?;
    Ok((dir.join("index.html"), report))
}

/// File an access request and an erasure for the demo person, approve the
/// erasure as a second operator, carry both out (the Genesys stand-in's
/// GDPR job polled through its states), verify, and say what happened.
/// Returns whether both completed.
async fn requests(out: &Path, rights: Systems, person: &oubli_sandbox::Person) -> Result<bool> {
    let keys = out.join("oubli-keys");
    let keyring = if keys.join("keyring.json").exists() {
        Keyring::open(&keys, None)?
    } else {
        Keyring::init(&keys, None)?
    };
    let db = out.join("oubli.db");
    let engine = Arc::new(Engine::at(rights, &db.display().to_string(), Arc::new(keyring)).await?);
    let identifiers = Identifiers {
        emails: vec![person.email.clone()],
        phones: vec![person.phone_national()],
        ..Default::default()
    };
    let file = |kind, actor: &str| NewRequest {
        id: None,
        kind,
        identifiers: identifiers.clone(),
        region: None,
        actor: actor.into(),
        params: Params::default(),
        attestation: Some(Attestation {
            method: "call-back".into(),
            evidence: "called back on the number on file".into(),
        }),
        intake: None,
    };

    outln!("\nNow as requests, kept in {}:\n", db.display());
    let access = engine.file(file(RequestKind::Access, "alice")).await?;
    crate::requests::drive(&engine, &access.id).await?;
    let erasure = engine.file(file(RequestKind::Erasure, "alice")).await?;
    crate::requests::drive(&engine, &erasure.id).await?;
    let planned = engine.show(&erasure.id).await?;
    outln!(
        "{} access request by alice: {}.",
        access.id,
        engine.show(&access.id).await?.request.state
    );
    outln!(
        "{} erasure request by alice: {}; the plan:",
        erasure.id,
        planned.request.state
    );
    for s in &planned.systems {
        let Some(plan) = &s.plan else { continue };
        let erase = plan
            .items
            .iter()
            .filter(|i| matches!(i.action, Action::Delete | Action::Anonymise))
            .count();
        let keep = plan.items.len() - erase;
        outln!("  {:12} erase {erase}, keep {keep}", s.system);
    }
    engine.approve(&erasure.id, "bob").await?;
    outln!("approved by bob (four eyes: alice filed it, so alice could not).");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        crate::requests::drive(&engine, &erasure.id).await?;
        let state = engine.show(&erasure.id).await?.request.state;
        if state.is_final() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let done = engine.show(&erasure.id).await?;
    // Fetched after the erasure: the answer kept when the access request
    // completed, the same whenever it is fetched.
    let bundle = write_bundle(out, &engine, &access.id).await?;
    outln!(
        "\nThe subject's answer to {}, fetched after the erasure (kept when the access request completed, the same at every fetch): {}\n  {} records, {} recordings and emails; JSON, CSV and data.xlsx beside the page; sha256 {}.",
        access.id,
        bundle.0.display(),
        bundle.1.records,
        bundle.1.attachments,
        &bundle.1.zip_sha256[..16]
    );
    outln!(
        "\n{} erasure: {}, due {}; verified by searching every system again:\n",
        erasure.id,
        done.request.state,
        date(done.request.due_at)
    );
    for s in &done.systems {
        let c = &s.counts;
        let polls = s.task.as_ref().map(|t| t.polls).unwrap_or(0);
        outln!(
            "  {:12} {:8} erased {}, retained {}, still found {}{}",
            s.system,
            s.state.as_str(),
            c.done,
            c.retained,
            c.failed,
            if polls > 0 {
                format!(" (asynchronous job, polled {polls} times)")
            } else {
                String::new()
            }
        );
        if let Some(r) = &s.result {
            for o in &r.outcomes {
                if let Status::Retained(why) = &o.status {
                    outln!(
                        "  {:12}   kept {} {}: {}",
                        "",
                        for_display(&o.reference.kind, 40),
                        for_display(&o.reference.id, 40),
                        for_display(why, 200)
                    );
                }
            }
        }
    }
    outln!(
        "\nThe controller's register of processing ({}): {}; what it says:\n  oubli notice --channel call --lang fr --config {}\n  oubli ropa --format html --config {}",
        out.join("register.toml").display(),
        match engine.systems().register_gaps().len() {
            0 => "complete, in English and French".to_string(),
            n => format!("{n} gap(s), named by `oubli register check`"),
        },
        out.join("oubli.toml").display(),
        out.join("oubli.toml").display()
    );
    // Retention: what the policy would purge now, listed, nothing erased.
    let run = engine
        .retention_start("support-mail-30d", false, None, "alice")
        .await?;
    let run = engine.retention_drive(&run).await?;
    outln!(
        "\nRetention: {} message(s) of support-mail are past the 30 days of policy support-mail-30d (test run {}, {}: nothing erased).\n  \
         oubli retention show {} --config {}\n  \
         oubli retention approve {} --as bob --config {}\n  \
         oubli retention run support-mail-30d --enforce --as alice --config {}",
        run.tally.due,
        run.id,
        run.state,
        run.id,
        out.join("oubli.toml").display(),
        run.id,
        out.join("oubli.toml").display(),
        out.join("oubli.toml").display()
    );
    outln!(
        "\nList them: oubli requests --config {}\nShow one:  oubli request show {} --config {}",
        out.join("oubli.toml").display(),
        erasure.id,
        out.join("oubli.toml").display()
    );
    let ok = engine.show(&access.id).await?.request.state == RequestState::Completed
        && done.request.state == RequestState::Completed;
    engine.close().await;
    Ok(ok)
}

/// Serve the console on the demo's store while the stand-ins keep running:
/// tokens for an operator, an approver and an auditor, and one more
/// erasure (of another synthetic person) planned and waiting for approval.
async fn serve_console(
    out: &Path,
    config_path: &Path,
    sandbox: &Sandbox,
    addr: std::net::SocketAddr,
    no_cache: bool,
) -> Result<()> {
    use oubli_api::server::{ServeOptions, Server};
    use oubli_core::config::ApiSettings;
    use oubli_core::rights::tokens::Role;
    let config = Config::load(config_path)?;
    let rights = Systems::open(
        config,
        rights::Options {
            no_cache,
            ..Default::default()
        },
    )
    .await?;
    let keyring = Keyring::open(&out.join("oubli-keys"), None)?;
    let db = out.join("oubli.db");
    let engine = Arc::new(Engine::at(rights, &db.display().to_string(), Arc::new(keyring)).await?);
    let mut tokens = Vec::new();
    for (role, name) in [
        (Role::Operator, "dana"),
        (Role::Approver, "erin"),
        (Role::Auditor, "audrey"),
    ] {
        let t = engine
            .create_token(role, name, Some(86_400_000), "demo")
            .await?;
        tokens.push((role, name, t.token));
    }
    let other = &sandbox.people()[1];
    let waiting = engine
        .file(NewRequest {
            id: None,
            kind: RequestKind::Erasure,
            identifiers: Identifiers {
                emails: vec![other.email.clone()],
                phones: vec![other.phone_national()],
                ..Default::default()
            },
            region: None,
            actor: "dana".into(),
            params: Params::default(),
            attestation: Some(Attestation {
                method: "call-back".into(),
                evidence: "called back on the number on file".into(),
            }),
            intake: Some(oubli_core::rights::engine::Intake {
                channel: oubli_model::Channel::Call,
                received_at: None,
                needs_attestation: false,
            }),
        })
        .await?;
    crate::requests::drive(&engine, &waiting.id).await?;
    let api = ApiSettings::default();
    // The privacy center too, its mail kept in files in the demo's
    // directory instead of going to a relay.
    let privacy = oubli_core::config::Config::parse(
        &out.join("oubli.toml"),
        &format!(
            "[api.privacy]\npublic_url = \"http://{addr}\"\n\n[api.privacy.smtp]\nhost = \"localhost\"\ntls = \"none\"\nfrom = \"Privacy <privacy@example.com>\"\n"
        ),
    )?
    .api
    .privacy;
    let mail_dir = out.join("mail");
    std::fs::create_dir_all(&mail_dir)?;
    let mut server = Server::bind(
        engine.clone(),
        ServeOptions {
            listen: addr,
            tls: None,
            allow_plain_http: false,
            workers: 1,
            sign_every: api.sign_audit_every,
            max_body: api.max_body,
            header_timeout: api.header_timeout,
            max_connections: api.max_connections,
            max_connections_per_address: api.max_connections_per_address,
            trusted_proxies: Vec::new(),
            lockout_after: api.lockout_after,
            webhooks: Vec::new(),
            console: api.console,
            privacy,
        },
    )
    .await?;
    server.set_mailer(Arc::new(MailFiles(mail_dir.clone())));
    outln!(
        "\nThe operator console: http://{}/ (the stand-ins keep running; Ctrl-C stops both).\n\
         {} (an erasure filed by dana) waits for approval. Sign in with a token, valid for a day:",
        server.addr,
        waiting.id
    );
    for (role, name, token) in &tokens {
        outln!("  {name:6} ({role}): {}", token.as_str());
    }
    outln!(
        "\nThe privacy center, where a person files their own request: http://{}/privacy/\n\
         Try it as {} ({}): the codes and every mail it sends go to {} (nothing leaves this machine).",
        server.addr,
        privacy_person(sandbox).full_name(),
        privacy_person(sandbox).email,
        mail_dir.display()
    );
    server
        .run(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

/// Someone the demo's requests left alone, for the privacy center.
fn privacy_person(sandbox: &oubli_sandbox::Sandbox) -> &oubli_sandbox::Person {
    &sandbox.people()[2]
}

/// The demo's mail: each message a text file in a directory (its
/// attachment beside it), instead of a relay.
struct MailFiles(PathBuf);

impl oubli_core::mail::Mailer for MailFiles {
    fn send(&self, mail: &oubli_core::rights::privacy::Mail) -> Result<(), String> {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let file = self.0.join(format!("{stamp}.txt"));
        let mut text = format!(
            "To: {}\nSubject: {}\n\n{}",
            mail.to, mail.subject, mail.body
        );
        if let Some(a) = &mail.attachment {
            let name = self.0.join(format!("{stamp}-{}", a.name));
            std::fs::write(&name, &a.bytes).map_err(|e| e.to_string())?;
            text.push_str(&format!("\n[attached: {}]\n", name.display()));
        }
        std::fs::write(&file, text).map_err(|e| e.to_string())
    }
}
