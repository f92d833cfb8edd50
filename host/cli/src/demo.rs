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
use oubli_core::crypto::file::{self, Recipient};
use oubli_core::crypto::keyring::write_key_pair;
use oubli_core::identifiers::Identifiers;
use oubli_core::rights::export::{CHUNK, Hashing};
use oubli_core::rights::{self, Rights};
use oubli_sandbox::{Options, Sandbox};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Run the demo into `out`.
pub async fn run(out: &Path, no_cache: bool) -> Result<ExitCode> {
    let started = Instant::now();
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let out = std::path::absolute(out).unwrap_or_else(|_| out.to_path_buf());

    // The connectors, as an integrator would deploy them.
    let connectors = out.join("connectors");
    std::fs::create_dir_all(&connectors)
        .with_context(|| format!("cannot create {}", connectors.display()))?;
    for c in oubli_connectors::REFERENCE {
        let path = connectors.join(format!("{}.wasm", c.name));
        std::fs::write(&path, c.wasm)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }

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
    std::fs::write(&config_path, sandbox.config_toml(&connectors, &secrets))
        .with_context(|| format!("cannot write {}", config_path.display()))?;
    let rights = Rights::open(
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
                oubli_core::model::for_display(e, 300)
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
         Also in {}: oubli.toml, connectors/, secrets/, keys/. Done in {:.1} s.",
        encrypted.display(),
        enc_len,
        decrypted.display(),
        entries,
        out.display(),
        started.elapsed().as_secs_f64()
    );
    let failed = report.has_failures()
        || found
            .systems
            .iter()
            .any(|r| !matches!(r.answer, rights::locate::SystemAnswer::Found { .. }));
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
