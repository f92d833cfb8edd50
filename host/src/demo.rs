//! `oubli demo`: "where is this person's data?" across four systems, in one
//! command and a few seconds.
//!
//! Starts the sandbox stand-ins (Genesys Cloud, a dialer, a JMAP mailbox, a
//! CRM) on loopback, writes a configuration granting each connector its
//! stand-in only, locates one synthetic person everywhere, exports their
//! records with every recording and message streamed through
//! `read-attachment` into a ZIP that is encrypted as it is written (the
//! docs/FORMAT.md file format, to a demo key pair), then decrypts it again
//! and checks it. Everything it made stays in the output directory.
//!
//! This is the only place the product uses the sandbox crate.

use anyhow::{Context, Result, bail};
use oubli::config::Config;
use oubli::crypto::file::{self, Recipient};
use oubli::crypto::keyring::write_key_pair;
use oubli::rights::access::{self, CHUNK};
use oubli::rights::locate::{SystemAnswer, SystemReport, locate_with};
use oubli::rights::retry::RetryPolicy;
use oubli::runtime::{Operation, Plugin, Runtime, RuntimeOptions};
use oubli::subject::{Region, normalise};
use oubli_sandbox::{Options, Sandbox};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use zip::write::SimpleFileOptions;

/// What one system gave the export.
#[derive(Default)]
struct Tally {
    records: usize,
    fields: usize,
    attachments: usize,
    bytes: u64,
    error: Option<String>,
}

/// A writer that hashes what passes through it.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
    len: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Run the demo into `out`.
pub async fn run(out: &Path, no_cache: bool) -> Result<ExitCode> {
    let started = Instant::now();
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let out = std::path::absolute(out).unwrap_or_else(|_| out.to_path_buf());
    let sandbox = Sandbox::start(Options {
        gdpr_step: Duration::from_millis(200),
        ..Options::default()
    })
    .await
    .context("cannot start the sandbox on loopback")?;
    let person = sandbox.demo_person().clone();

    // The configuration an integrator would write.
    let plugins_dir = Path::new(oubli::built_plugins::GENESYS_CLOUD)
        .parent()
        .context("the built plugins have no directory")?;
    let secrets = out.join("secrets");
    sandbox
        .write_secrets(&secrets)
        .with_context(|| format!("cannot write {}", secrets.display()))?;
    let config_path = out.join("oubli.toml");
    std::fs::write(&config_path, sandbox.config_toml(plugins_dir, &secrets))
        .with_context(|| format!("cannot write {}", config_path.display()))?;
    let config = Config::load(&config_path)?;
    let runtime = Runtime::new(&RuntimeOptions {
        cache_dir: config.runtime.cache_dir.clone(),
        no_cache,
    })?;

    outln!(
        "oubli demo: four stand-in systems on loopback, {} synthetic people.\n\
         Looking for {} <{}>, {} (the email and the phone number are all oubli is given).\n",
        sandbox.people().len(),
        person.full_name(),
        person.email,
        person.phone_national(),
    );
    let region: Region = "GB".parse()?;
    let subject = normalise(
        std::slice::from_ref(&person.email),
        &[person.phone_national()],
        &[],
        &[],
        Some(region),
    )?;
    let retry = RetryPolicy::default();
    let results = locate_with(&runtime, &config, &subject, retry).await;
    let reports: Vec<SystemReport> = results.iter().map(|(r, _)| r.clone()).collect();
    outln!("Where is their data?\n");
    out!("{}", crate::cli::describe_reports(&reports));

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
    let file = std::fs::File::create(&partial)
        .with_context(|| format!("cannot create {}", partial.display()))?;
    let body = file::encryptor(
        &[recipient],
        "export",
        "demo",
        std::io::BufWriter::new(file),
    )?;
    let mut zip = zip::ZipWriter::new_stream(Hashing {
        inner: body,
        hash: Sha256::new(),
        len: 0,
    });
    let mut index = Vec::new();
    let mut tallies = Vec::new();
    for (report, plugin) in &results {
        let tally = export_system(report, plugin.as_deref(), &retry, &mut zip, &mut index).await?;
        tallies.push((report.system.clone(), tally));
    }
    let listing = json!({
        "subject": {"emails": subject.emails, "phones": subject.phones},
        "systems": index,
    });
    zip.start_file("records.json", SimpleFileOptions::default())?;
    zip.write_all(serde_json::to_string_pretty(&listing)?.as_bytes())?;
    let hashing = zip.finish()?.into_inner();
    let (plain_hash, plain_len) = (hashing.hash.finalize(), hashing.len);
    let mut writer = hashing.inner.finish()?;
    writer.flush()?;
    writer
        .into_inner()
        .map_err(|e| e.into_error())?
        .sync_all()?;
    std::fs::rename(&partial, &encrypted)?;

    outln!(
        "\nExported (each attachment streamed in {} KiB calls):\n",
        CHUNK / 1024
    );
    let width = tallies.iter().map(|(s, _)| s.len()).max().unwrap_or(6);
    outln!(
        "{:width$}  records  fields  attachments       bytes",
        "system"
    );
    for (system, t) in &tallies {
        match &t.error {
            Some(e) => outln!("{system:width$}  export failed: {e}"),
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
    let decrypt = || -> Result<Hashing<std::io::BufWriter<std::fs::File>>> {
        let (_, mut hashing) = file::decrypt(
            &key,
            std::io::BufReader::new(std::fs::File::open(&encrypted)?),
            Hashing {
                inner: std::io::BufWriter::new(std::fs::File::create(&decrypted)?),
                hash: Sha256::new(),
                len: 0,
            },
        )?;
        hashing.flush()?;
        Ok(hashing)
    };
    let hashing = decrypt().inspect_err(|_| {
        let _ = std::fs::remove_file(&decrypted);
    })?;
    if hashing.hash.finalize() != plain_hash || hashing.len != plain_len {
        bail!("the decrypted export differs from what was encrypted");
    }
    let entries = zip::ZipArchive::new(std::fs::File::open(&decrypted)?)
        .context("the decrypted export is not a readable ZIP")?
        .len();
    let enc_len = std::fs::metadata(&encrypted)?.len();
    outln!(
        "\n{} ({} bytes) is encrypted to key {key_id};\n\
         decrypted again into {} ({} entries, SHA-256 matches what was written).\n\
         Also in {}: oubli.toml, secrets/, keys/. Done in {:.1} s.",
        encrypted.display(),
        enc_len,
        decrypted.display(),
        entries,
        out.display(),
        started.elapsed().as_secs_f64()
    );
    let failed = tallies.iter().any(|(_, t)| t.error.is_some())
        || reports
            .iter()
            .any(|r| !matches!(r.answer, SystemAnswer::Found { .. }));
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Export one system's records into `zip`, attachments under
/// `<system>/<kind>-<id>/<name>`, and add its entry to `index`.
async fn export_system<W: Write>(
    report: &SystemReport,
    plugin: Option<&Plugin>,
    retry: &RetryPolicy,
    zip: &mut zip::ZipWriter<zip::write::StreamWriter<W>>,
    index: &mut Vec<serde_json::Value>,
) -> Result<Tally> {
    let mut tally = Tally::default();
    let (SystemAnswer::Found { records }, Some(plugin)) = (&report.answer, plugin) else {
        return Ok(tally);
    };
    if records.is_empty() || !plugin.offers(Operation::Export) {
        return Ok(tally);
    }
    let refs: Vec<_> = records.iter().map(|l| l.reference.clone()).collect();
    let exported = match access::export(plugin, &refs, retry).await {
        Ok(e) => e,
        Err(e) => {
            tally.error = Some(e.to_string());
            return Ok(tally);
        }
    };
    let mut out_records = Vec::new();
    for record in &exported {
        tally.records += 1;
        tally.fields += record.fields.len();
        let mut attachments = Vec::new();
        for a in &record.attachments {
            let path = format!(
                "{}/{}-{}/{}",
                safe(&report.system),
                safe(&record.reference.kind),
                safe(&record.reference.id),
                safe(&a.name)
            );
            zip.start_file(
                path.as_str(),
                SimpleFileOptions::default()
                    .compression_method(zip::CompressionMethod::Stored)
                    .large_file(a.size.is_none_or(|s| s >= u32::MAX as u64)),
            )?;
            let n = access::stream_attachment(plugin, &record.reference, a, CHUNK, retry, zip)
                .await
                .with_context(|| {
                    format!(
                        "{}: attachment of a {}",
                        report.system, record.reference.kind
                    )
                })?;
            tally.attachments += 1;
            tally.bytes += n;
            attachments
                .push(json!({"name": a.name, "mediaType": a.media_type, "size": n, "path": path}));
        }
        out_records.push(json!({
            "kind": record.reference.kind,
            "id": record.reference.id,
            "fields": record.fields.iter().map(|f| json!({"name": f.name, "category": f.category, "value": f.value})).collect::<Vec<_>>(),
            "attachments": attachments,
        }));
    }
    index.push(json!({
        "system": report.system,
        "connector": report.connector,
        "records": out_records,
    }));
    Ok(tally)
}

/// A path component safe inside a ZIP: no separators, no dot-dot.
fn safe(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.@+".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.trim_matches('.').is_empty() {
        "_".into()
    } else {
        cleaned
    }
}
