//! The commands. Each parses and validates its arguments first, then does the
//! I/O-heavy work (load the config, compile plugins) through the library.

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use oubli::config::Config;
use oubli::crypto::file::{self, Recipient};
use oubli::crypto::keyring::Keyring;
use oubli::rights::locate::{SystemAnswer, SystemReport, locate_everywhere};
use oubli::runtime::{MAX_INSTANCES, Plugin, PluginInfo, Runtime, RuntimeOptions};
use oubli::subject::{Region, normalise};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use zeroize::Zeroizing;

/// oubli: carry out GDPR data-subject requests across contact-center systems
/// through sandboxed connector plugins.
#[derive(Parser)]
#[command(name = "oubli", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the demo: four stand-in systems on loopback, one person located,
    /// exported (recordings included), encrypted and decrypted again.
    Demo {
        /// Where to leave the config, the demo keys and the export.
        #[arg(long, default_value = "oubli-demo")]
        out: PathBuf,
        #[command(flatten)]
        cache: CacheArgs,
    },
    /// Find a person in every configured system and show what each holds.
    Locate(LocateArgs),
    /// Inspect and check connector plugins.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Manage the keyring: host keys, key-encryption keys, recipients.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Encrypt or decrypt files in the oubli format (docs/FORMAT.md).
    #[command(subcommand)]
    Export(ExportCommand),
}

#[derive(Args)]
struct LocateArgs {
    /// The configuration file.
    #[arg(long, short, env = "OUBLI_CONFIG", default_value = "oubli.toml")]
    config: PathBuf,
    /// An email address of the person (repeatable).
    #[arg(long)]
    email: Vec<String>,
    /// A phone number, international (+33...) or national with a region
    /// (repeatable).
    #[arg(long)]
    phone: Vec<String>,
    /// A full name: a hint for systems that search by name, never enough
    /// alone (repeatable).
    #[arg(long)]
    name: Vec<String>,
    /// A system-specific id, `namespace:id` (repeatable).
    #[arg(long = "external-id")]
    external_id: Vec<String>,
    /// Region for national phone numbers (ISO 3166, e.g. FR); overrides
    /// `[identifiers] default_region`.
    #[arg(long)]
    region: Option<String>,
    #[command(flatten)]
    output: Output,
    #[command(flatten)]
    cache: CacheArgs,
}

#[derive(Args)]
struct KeyringArgs {
    /// The keyring directory.
    #[arg(long, env = "OUBLI_KEYS", default_value = "oubli-keys")]
    dir: PathBuf,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create a keyring: an RSA-2048 host key pair, a key-encryption key and a
    /// blind-index key. If OUBLI_KEY_PASSPHRASE is set, the private key file is
    /// encrypted with it.
    Init {
        #[command(flatten)]
        keyring: KeyringArgs,
    },
    /// Add a new active host key pair and key-encryption key, keep the old
    /// ones for decryption, and rewrap every stored data key (payloads are not
    /// touched). With --resume, only finish rewrapping after an interruption.
    Rotate {
        #[command(flatten)]
        keyring: KeyringArgs,
        /// Only rewrap data keys still under an old key-encryption key.
        #[arg(long)]
        resume: bool,
    },
    /// Manage export recipients (the DPO, a subject's own key).
    #[command(subcommand)]
    Recipient(RecipientCommand),
    /// List the keys and recipients.
    List {
        #[command(flatten)]
        keyring: KeyringArgs,
        #[command(flatten)]
        output: Output,
    },
}

#[derive(Subcommand)]
enum RecipientCommand {
    /// Register a recipient's RSA public key (PEM, `BEGIN PUBLIC KEY`).
    Add {
        /// A name for the recipient (`dpo`, `subject-1042`).
        name: String,
        /// The public key file.
        public_key: PathBuf,
        #[command(flatten)]
        keyring: KeyringArgs,
    },
}

#[derive(Subcommand)]
enum ExportCommand {
    /// Encrypt a file for one or more recipients, streaming.
    Encrypt {
        /// A recipient's RSA public key (PEM); repeat for several.
        #[arg(long = "to", value_name = "PUBLIC.pem", required = true)]
        to: Vec<PathBuf>,
        /// What the file holds, recorded in the header.
        #[arg(long, default_value = "file")]
        kind: String,
        /// The request it belongs to, recorded in the header.
        #[arg(long, default_value = "")]
        request: String,
        /// The file to encrypt.
        input: PathBuf,
        /// Where to write the encrypted file.
        output: PathBuf,
    },
    /// Decrypt a file with a recipient's private key, streaming. The output
    /// appears only once the whole file authenticated. If the key is
    /// passphrase-protected, set OUBLI_KEY_PASSPHRASE.
    Decrypt {
        /// The recipient's private key (PKCS#8 PEM).
        #[arg(long, value_name = "PRIVATE.pem")]
        key: PathBuf,
        /// The encrypted file.
        input: PathBuf,
        /// Where to write the plaintext.
        output: PathBuf,
    },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Show what a plugin component is and what it asks for.
    Inspect {
        /// The component (.wasm).
        file: PathBuf,
        #[command(flatten)]
        output: Output,
        #[command(flatten)]
        cache: CacheArgs,
    },
    /// Load every configured plugin and report, one line each, whether it is
    /// usable. Exits with status 1 if any is refused.
    Check {
        /// The configuration file.
        #[arg(long, short, env = "OUBLI_CONFIG", default_value = "oubli.toml")]
        config: PathBuf,
        #[command(flatten)]
        output: Output,
        #[command(flatten)]
        cache: CacheArgs,
    },
}

#[derive(Args)]
struct Output {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct CacheArgs {
    /// Compile in memory only; do not read or write the compiled-code cache.
    #[arg(long)]
    no_cache: bool,
}

/// Log to stderr; `OUBLI_LOG` sets the filter (default `warn`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("OUBLI_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

/// Parse the command line and run it.
pub fn run() -> Result<ExitCode> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match cli.command {
        Command::Demo { out, cache } => rt.block_on(crate::demo::run(&out, cache.no_cache)),
        Command::Locate(args) => rt.block_on(locate(args)),
        Command::Plugin(PluginCommand::Inspect {
            file,
            output,
            cache,
        }) => rt.block_on(inspect(&file, output.json, cache.no_cache)),
        Command::Plugin(PluginCommand::Check {
            config,
            output,
            cache,
        }) => rt.block_on(check(&config, output.json, cache.no_cache)),
        Command::Keys(cmd) => keys(cmd),
        Command::Export(cmd) => export(cmd),
    }
}

async fn locate(args: LocateArgs) -> Result<ExitCode> {
    let config = Config::load(&args.config)?;
    let region = args
        .region
        .clone()
        .or_else(|| config.identifiers.default_region.clone())
        .map(|r| r.parse::<Region>())
        .transpose()?;
    let subject = normalise(
        &args.email,
        &args.phone,
        &args.name,
        &args.external_id,
        region,
    )?;
    let runtime = Runtime::new(&RuntimeOptions {
        cache_dir: config.runtime.cache_dir.clone(),
        no_cache: args.cache.no_cache,
    })?;
    let reports = locate_everywhere(&runtime, &config, &subject).await;
    let failed = reports.iter().any(|r| {
        matches!(
            r.answer,
            SystemAnswer::Failed { .. } | SystemAnswer::Refused { .. }
        )
    });
    if args.output.json {
        outln!("{}", serde_json::to_string_pretty(&reports)?);
    } else {
        out!("{}", describe_reports(&reports));
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

pub(crate) fn describe_reports(reports: &[SystemReport]) -> String {
    use std::fmt::Write;
    let width = reports.iter().map(|r| r.system.len()).max().unwrap_or(0);
    let mut s = String::new();
    for r in reports {
        let line = match &r.answer {
            SystemAnswer::Found { records } if records.is_empty() => "nothing found".to_string(),
            SystemAnswer::Found { records } => {
                let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
                for l in records {
                    *kinds.entry(l.reference.kind.as_str()).or_default() += 1;
                }
                let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} ×{n}")).collect();
                let holds: Vec<&str> = records.iter().filter_map(|l| l.hold.as_deref()).collect();
                let mut line = format!(
                    "{} record{}: {}",
                    records.len(),
                    if records.len() == 1 { "" } else { "s" },
                    kinds.join(", ")
                );
                if !holds.is_empty() {
                    let _ = write!(line, "; {} on hold ({})", holds.len(), holds.join("; "));
                }
                line
            }
            SystemAnswer::Failed { error, .. } => format!("error: {error}"),
            SystemAnswer::Refused { error } => format!("refused: {error}"),
            SystemAnswer::Disabled => "disabled".to_string(),
        };
        let _ = writeln!(s, "{:width$}  {line}", r.system);
    }
    s
}

fn passphrase() -> Option<Zeroizing<String>> {
    std::env::var("OUBLI_KEY_PASSPHRASE")
        .ok()
        .filter(|p| !p.is_empty())
        .map(Zeroizing::new)
}

fn keys(cmd: KeysCommand) -> Result<ExitCode> {
    let pass = passphrase();
    let pass = pass.as_deref().map(String::as_str);
    match cmd {
        KeysCommand::Init { keyring } => {
            let ring = Keyring::init(&keyring.dir, pass)?;
            let list = ring.list();
            outln!("created keyring in {}", keyring.dir.display());
            outln!(
                "host key  {} (RSA-2048){}",
                list.active_host,
                if pass.is_some() {
                    ", private key encrypted"
                } else {
                    ""
                }
            );
            outln!("KEK       {}", list.active_kek);
            outln!(
                "public key: {}",
                keyring
                    .dir
                    .join(format!("host-{}.pub.pem", list.active_host))
                    .display()
            );
        }
        KeysCommand::Rotate { keyring, resume } => {
            let mut ring = Keyring::open(&keyring.dir, pass)?;
            let bar = indicatif::ProgressBar::new(0).with_style(
                indicatif::ProgressStyle::with_template(
                    "rewrapping data keys {bar:30} {pos}/{len} requests",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            let progress = |done: usize, total: usize| {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            };
            let n = if resume {
                ring.rewrap(progress)?
            } else {
                ring.rotate(pass, progress)?
            };
            bar.finish_and_clear();
            let list = ring.list();
            if !resume {
                outln!(
                    "new host key {} and KEK {} are active",
                    list.active_host,
                    list.active_kek
                );
            }
            outln!(
                "rewrapped {n} data keys; {} left under old keys",
                list.keys_to_rewrap
            );
        }
        KeysCommand::Recipient(RecipientCommand::Add {
            name,
            public_key,
            keyring,
        }) => {
            let pem = std::fs::read_to_string(&public_key)
                .with_context(|| format!("cannot read {}", public_key.display()))?;
            let mut ring = Keyring::open(&keyring.dir, pass)?;
            let id = ring.add_recipient(&name, &pem)?;
            outln!("recipient {name} added, key id {id}");
        }
        KeysCommand::List { keyring, output } => {
            let ring = Keyring::open(&keyring.dir, pass)?;
            let list = ring.list();
            if output.json {
                outln!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for h in &list.hosts {
                    let active = if h.id == list.active_host {
                        " (active)"
                    } else {
                        ""
                    };
                    outln!("host key   {}{active}", h.id);
                }
                for k in &list.keks {
                    let active = if k.id == list.active_kek {
                        " (active)"
                    } else {
                        ""
                    };
                    outln!("KEK        {} wrapped by {}{active}", k.id, k.wrapped_by);
                }
                for r in &list.recipients {
                    outln!("recipient  {} {}", r.id, r.name);
                }
                outln!(
                    "data keys  {} requests, {} to rewrap",
                    list.requests_with_keys,
                    list.keys_to_rewrap
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Write to a temporary file beside `output`, then rename: a failure leaves
/// nothing that looks complete.
fn write_atomically(
    output: &Path,
    work: impl FnOnce(&mut std::fs::File) -> Result<()>,
) -> Result<()> {
    let dir = output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .context("the output path has no file name")?;
    let tmp = dir.join(format!(".{name}.partial-{}", std::process::id()));
    let result = (|| {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut file = opts
            .open(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        work(&mut file)?;
        file.sync_all()?;
        std::fs::rename(&tmp, output).with_context(|| format!("cannot write {}", output.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn export(cmd: ExportCommand) -> Result<ExitCode> {
    match cmd {
        ExportCommand::Encrypt {
            to,
            kind,
            request,
            input,
            output,
        } => {
            let mut recipients = Vec::with_capacity(to.len());
            for path in &to {
                let pem = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                recipients
                    .push(Recipient::from_pem(&pem).with_context(|| path.display().to_string())?);
            }
            let src = std::fs::File::open(&input)
                .with_context(|| format!("cannot read {}", input.display()))?;
            let src = std::io::BufReader::with_capacity(1 << 20, src);
            write_atomically(&output, |file| {
                let out = std::io::BufWriter::with_capacity(1 << 20, file);
                let mut out = file::encrypt(&recipients, &kind, &request, src, out)?;
                std::io::Write::flush(&mut out)?;
                Ok(())
            })?;
            let ids: Vec<&str> = recipients.iter().map(Recipient::id).collect();
            eprintln!("encrypted {} for {}", output.display(), ids.join(", "));
        }
        ExportCommand::Decrypt { key, input, output } => {
            let pem = Zeroizing::new(
                std::fs::read_to_string(&key)
                    .with_context(|| format!("cannot read {}", key.display()))?,
            );
            let pass = passphrase();
            let private = file::private_key_from_pem(
                &pem,
                pass.as_deref().map(String::as_str),
                &key.display().to_string(),
            )?;
            let src = std::fs::File::open(&input)
                .with_context(|| format!("cannot read {}", input.display()))?;
            let src = std::io::BufReader::with_capacity(1 << 20, src);
            let mut header = None;
            write_atomically(&output, |file| {
                let out = std::io::BufWriter::with_capacity(1 << 20, file);
                let (h, mut out) = file::decrypt(&private, src, out)?;
                std::io::Write::flush(&mut out)?;
                header = Some(h);
                Ok(())
            })?;
            if let Some(h) = header {
                let request = if h.request_id.is_empty() {
                    "-"
                } else {
                    h.request_id.as_str()
                };
                eprintln!(
                    "decrypted {} ({}, request {request})",
                    output.display(),
                    h.kind
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn inspect(file: &Path, json: bool, no_cache: bool) -> Result<ExitCode> {
    let runtime = Runtime::new(&RuntimeOptions {
        cache_dir: None,
        no_cache,
    })?;
    let plugin = runtime.inspect(file).await?;
    let info = plugin.info();
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&InspectJson::from(info))?
        );
    } else {
        out!("{}", describe(info));
    }
    Ok(ExitCode::SUCCESS)
}

/// `inspect --json`: the manifest and the component's identity.
#[derive(Serialize)]
struct InspectJson<'a> {
    file: &'a Path,
    sha256: &'a str,
    manifest: &'a oubli::runtime::Manifest,
    imports: &'a [String],
}

impl<'a> From<&'a PluginInfo> for InspectJson<'a> {
    fn from(info: &'a PluginInfo) -> Self {
        InspectJson {
            file: &info.path,
            sha256: &info.sha256,
            manifest: &info.manifest,
            imports: &info.imports,
        }
    }
}

fn describe(info: &PluginInfo) -> String {
    use std::fmt::Write;
    let m = &info.manifest;
    let mut s = String::new();
    let _ = writeln!(s, "id:           {}", m.id);
    let _ = writeln!(s, "name:         {}", m.name);
    let _ = writeln!(s, "version:      {}", m.version);
    let _ = writeln!(s, "system kind:  {}", kebab(&m.system_kind));
    let _ = writeln!(s, "WIT version:  {}", m.wit_version);
    let _ = writeln!(s, "sha256:       {}", info.sha256);
    let ops: Vec<String> = m.operations.iter().map(kebab).collect();
    let _ = writeln!(s, "operations:   {}", ops.join(", "));
    let _ = writeln!(s, "hosts asked:  {}", list_or_none(&m.outbound_hosts));
    let _ = writeln!(s, "secrets:      {}", list_or_none(&m.secrets));
    if m.config_keys.is_empty() {
        let _ = writeln!(s, "config keys:  (none)");
    } else {
        let _ = writeln!(s, "config keys:");
        for k in &m.config_keys {
            let req = if k.required { " (required)" } else { "" };
            let _ = writeln!(s, "  {}{req}: {}", k.name, k.description);
        }
    }
    if m.categories.is_empty() {
        let _ = writeln!(s, "data categories: (none)");
    } else {
        let _ = writeln!(s, "data categories:");
        for c in &m.categories {
            let _ = writeln!(s, "  {}: {}", c.name, c.description);
            let _ = writeln!(s, "    purposes:   {}", list_or_none(&c.purposes));
            let _ = writeln!(s, "    retention:  {}", c.retention);
            let _ = writeln!(s, "    recipients: {}", list_or_none(&c.recipients));
            let _ = writeln!(
                s,
                "    portable:   {}",
                if c.portable { "yes (Art. 20)" } else { "no" }
            );
        }
    }
    let _ = writeln!(s, "imports:");
    for i in &info.imports {
        let _ = writeln!(s, "  {i}");
    }
    s
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".into()
    } else {
        items.join(", ")
    }
}

/// The WIT name of an enum value (`read-attachment`), from its serde form.
fn kebab<T: Serialize>(v: &T) -> String {
    let raw = serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let mut out = String::new();
    for (i, c) in raw.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[derive(Serialize)]
struct CheckLine {
    name: String,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    plugin: Option<PluginInfo>,
}

async fn check(config_path: &Path, json: bool, no_cache: bool) -> Result<ExitCode> {
    let config = Config::load(config_path)?;
    let runtime = Runtime::new(&RuntimeOptions {
        cache_dir: config.runtime.cache_dir.clone(),
        no_cache,
    })?;
    let mut lines = Vec::with_capacity(config.plugins.len());
    for p in &config.plugins {
        if !p.enabled {
            lines.push(CheckLine {
                name: p.name.clone(),
                status: "disabled",
                error: None,
                plugin: None,
            });
            continue;
        }
        let loaded: Result<Plugin, _> = runtime.load(p).await;
        lines.push(match loaded {
            Ok(plugin) => CheckLine {
                name: p.name.clone(),
                status: "ok",
                error: None,
                plugin: Some(plugin.info().clone()),
            },
            Err(e) => CheckLine {
                name: p.name.clone(),
                status: "refused",
                error: Some(e.to_string()),
                plugin: None,
            },
        });
    }
    let refused = lines.iter().filter(|l| l.status == "refused").count();
    let concurrency: u32 = config
        .plugins
        .iter()
        .filter(|p| p.enabled)
        .map(|p| p.limits.concurrency)
        .sum();
    let pool_warning = (concurrency > MAX_INSTANCES).then(|| {
        format!(
            "the plugins' concurrency limits add up to {concurrency}, more than the {MAX_INSTANCES} instances the host runs at once: calls beyond that fail and are retried"
        )
    });
    if json {
        outln!("{}", serde_json::to_string_pretty(&lines)?);
    } else {
        if lines.is_empty() {
            outln!("no plugins configured in {}", config_path.display());
        }
        let width = lines.iter().map(|l| l.name.len()).max().unwrap_or(0);
        for l in &lines {
            match (&l.plugin, &l.error) {
                (Some(info), _) => {
                    let m = &info.manifest;
                    let reach = if info.reachable.is_empty() {
                        "no network".to_string()
                    } else {
                        format!("reaches {}", info.reachable.join(", "))
                    };
                    outln!(
                        "ok       {:width$}  {} {} ({}), {} operations, {reach}",
                        l.name,
                        m.id,
                        m.version,
                        kebab(&m.system_kind),
                        m.operations.len(),
                    );
                    for w in &info.warnings {
                        outln!("         {:width$}  warning: {w}", "");
                    }
                }
                (None, Some(e)) => outln!("refused  {:width$}  {e}", l.name),
                (None, None) => outln!("disabled {:width$}", l.name),
            }
        }
        if let Some(w) = &pool_warning {
            outln!("warning: {w}");
        }
    }
    Ok(if refused > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
