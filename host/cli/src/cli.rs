//! The commands. Each parses and validates its arguments first, then does the
//! I/O-heavy work (load the config, compile connectors) through the rights
//! service, and renders what it returns ([`crate::render`], or `--json`).
//!
//! Words: a *system* is a configured connection (`[systems.NAME]`), a
//! *connector* the plugin component it runs.

use crate::{args, bulk, render, requests, service};
use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use oubli_core::config::Config;
use oubli_core::rights::{self, Systems};
use oubli_crypto::file::{self, Recipient};
use oubli_crypto::keyring::{KeyList, Keyring};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use zeroize::Zeroizing;

/// oubli: carry out GDPR data-subject requests across contact-center systems
/// through sandboxed connector plugins.
#[derive(Parser)]
#[command(name = "oubli", version, about, long_about = None)]
struct Cli {
    /// Log format on standard error: text, or json (one object per line).
    #[arg(long, global = true, env = "OUBLI_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the demo: four stand-in systems on loopback, one person located,
    /// exported (recordings included), encrypted and decrypted again.
    #[cfg(feature = "demo")]
    Demo {
        /// Where to leave the config, the connectors, the demo keys and the
        /// export.
        #[arg(long, default_value = "oubli-demo")]
        out: PathBuf,
        /// Then keep the stand-ins running and serve the operator console
        /// (and the API) on this address, with a request waiting for
        /// approval and tokens to sign in with, until Ctrl-C.
        #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:8440")]
        console: Option<std::net::SocketAddr>,
        #[command(flatten)]
        cache: CacheArgs,
    },
    /// Serve the stand-ins (four systems and a people directory) on
    /// loopback until Ctrl-C, with the connectors, an oubli.toml and a
    /// conformance fixture written beside them: try connectors and the
    /// kit without a source checkout.
    #[cfg(feature = "demo")]
    Sandbox(crate::sandbox::SandboxArgs),
    /// Find a person in every configured system and show what each holds.
    Locate(LocateArgs),
    /// Check the configured systems: does each connector load, and what
    /// does it reach.
    #[command(subcommand)]
    Systems(SystemsCommand),
    /// Connector components: inspect one, test one with the conformance
    /// kit, or start a new one.
    #[command(subcommand)]
    Connector(ConnectorCommand),
    /// Manage the keyring: host keys, key-encryption keys, recipients.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Encrypt a file for one or more recipients, streaming, in the oubli
    /// format (docs/FORMAT.md).
    Encrypt(EncryptArgs),
    /// Decrypt a file in the oubli format with a recipient's private key,
    /// streaming. The output appears only once the whole file authenticated.
    /// If the key is passphrase-protected, set OUBLI_KEY_PASSPHRASE.
    Decrypt(DecryptArgs),
    /// File a data-subject request, or act on one (show, approve, retry,
    /// extend, ...).
    Request {
        #[command(flatten)]
        engine: args::EngineArgs,
        #[command(subcommand)]
        command: requests::RequestCommand,
    },
    /// List requests: by state, overdue, due soon, or one subject's.
    Requests {
        #[command(flatten)]
        engine: args::EngineArgs,
        #[command(flatten)]
        list: requests::ListArgs,
    },
    /// Carry out queued tasks (planning, erasing, polling, verifying) until
    /// stopped; several workers may share one PostgreSQL database.
    Worker {
        #[command(flatten)]
        engine: args::EngineArgs,
        #[command(flatten)]
        worker: requests::WorkerArgs,
    },
    /// Many requests at once: `bulk erase --from FILE.csv`, `bulk approve`.
    #[command(subcommand)]
    Bulk(BulkCommand),
    /// The audit chain of every request event: `audit verify` recomputes
    /// it and names the first broken link.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Serve the HTTP API (REST under /v1/, OpenAPI at /openapi.json),
    /// with workers, audit head signing and webhooks in the same process.
    Serve {
        #[command(flatten)]
        engine: args::EngineArgs,
        #[command(flatten)]
        serve: service::ServeArgs,
    },
    /// API tokens: create (shown once), list, revoke.
    Token {
        #[command(flatten)]
        engine: args::EngineArgs,
        #[command(subcommand)]
        command: service::TokenCommand,
    },
    /// Signed erasure certificates: fetch one, verify one.
    Certificate {
        #[command(flatten)]
        engine: args::EngineArgs,
        #[command(subcommand)]
        command: service::CertificateCommand,
    },
    /// The subject's bundle of an access or portability request:
    /// `bundle fetch ID --out FILE [--to PUBLIC.pem] [--lang fr]`.
    Bundle {
        #[command(flatten)]
        engine: args::EngineArgs,
        #[command(subcommand)]
        command: service::BundleCommand,
    },
    /// Retention (Art. 5(1)(e)): policies that find what is past its
    /// period in every system, test runs, approved enforcing runs, legal
    /// holds and retention certificates.
    Retention {
        #[command(flatten)]
        engine: args::EngineArgs,
        #[command(subcommand)]
        command: crate::retention::RetentionCommand,
    },
    /// Consent evidence (Art. 7(1)): record, withdraw, show.
    Consent {
        #[command(flatten)]
        engine: args::EngineArgs,
        #[command(subcommand)]
        command: service::ConsentCommand,
    },
    /// The notice given when data is collected (Art. 13/14): the script an
    /// agent reads or the IVR plays, or the text of an email or form; its
    /// version and SHA-256 on stderr (for consent evidence).
    Notice {
        #[command(flatten)]
        engine: args::EngineArgs,
        /// call, ivr, email, web (and, with --intake, letter).
        #[arg(long, value_parser = ["call", "ivr", "email", "web", "letter"])]
        channel: String,
        /// The script an agent follows to take a request on this channel
        /// (when the deadline starts, how to check identity, what to read
        /// back), instead of the notice.
        #[arg(long)]
        intake: bool,
        /// en, fr.
        #[arg(long, default_value = "en", value_parser = service::lang)]
        lang: oubli_core::rights::bundle::Lang,
        /// Print it even though the register of processing has gaps (the
        /// text then says so at its top, and its version is marked
        /// incomplete).
        #[arg(long)]
        allow_incomplete: bool,
    },
    /// The record of processing activities (Art. 30(1)), per activity of
    /// the register of processing, this service's own included.
    Ropa {
        #[command(flatten)]
        engine: args::EngineArgs,
        /// md, json, html.
        #[arg(long, default_value = "md", value_parser = ["md", "json", "html"])]
        format: String,
        /// en, fr.
        #[arg(long, default_value = "en", value_parser = service::lang)]
        lang: oubli_core::rights::bundle::Lang,
        /// Print it even though the register has gaps (it then says so).
        #[arg(long)]
        allow_incomplete: bool,
    },
    /// The register of processing: write a starting one, name its gaps.
    #[command(subcommand)]
    Register(service::RegisterCommand),
    /// Print the HTTP API's OpenAPI document.
    Openapi,
    /// The restriction registry: may this person be processed?
    Restriction {
        #[command(flatten)]
        engine: args::EngineArgs,
        #[command(subcommand)]
        command: requests::RestrictionCommand,
    },
    /// Old spelling of `systems check` and `connector inspect` (0.1).
    #[command(subcommand, hide = true)]
    Plugin(PluginCommand),
    /// Old spelling of `encrypt` and `decrypt` (0.1).
    #[command(subcommand, hide = true)]
    Export(FileCommand),
}

#[derive(Args)]
struct LocateArgs {
    /// The configuration file.
    #[arg(long, short, env = "OUBLI_CONFIG", default_value = "oubli.toml")]
    config: PathBuf,
    #[command(flatten)]
    subject: args::SubjectArgs,
    #[command(flatten)]
    output: Output,
    #[command(flatten)]
    cache: CacheArgs,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recompute the chain from its first event; exit status 1 and the
    /// first broken link if an event was edited, removed, or cut off the
    /// end.
    Verify {
        #[command(flatten)]
        engine: args::EngineArgs,
        /// Signed tree heads a witness kept (JSON lines, as `audit heads`
        /// prints them): each must hold against the log, so a tail cut
        /// after any of them was published is caught.
        #[arg(long, value_name = "FILE")]
        heads: Option<PathBuf>,
    },
    /// Write the log as JSON lines (events in the log's order, then the
    /// signed heads); sealed reasons stay sealed.
    Export {
        #[command(flatten)]
        engine: args::EngineArgs,
        /// Skip the log's first N events.
        #[arg(long, default_value_t = 0)]
        after: i64,
    },
    /// Place waiting events and sign the tree head now (the sequencer of
    /// `serve` or `worker` does it every `[api] sign_audit_every` while
    /// the log grows).
    Sign {
        #[command(flatten)]
        engine: args::EngineArgs,
    },
    /// Print the inclusion proof (JSON) of a request's last event, or of
    /// one event (`--event`), under a signed tree head: check it with
    /// docs/verify-proof.py.
    Prove {
        #[command(flatten)]
        engine: args::EngineArgs,
        /// The request (or retention run).
        #[arg(required_unless_present = "event")]
        id: Option<String>,
        /// One event, by id.
        #[arg(long, conflicts_with = "id")]
        event: Option<i64>,
    },
    /// Print the signed tree heads over more than SIZE events as JSON
    /// lines, each with its consistency proof from the one before (from
    /// SIZE for the first): what a witness fetches and keeps.
    Heads {
        #[command(flatten)]
        engine: args::EngineArgs,
        /// The size of the last head the witness holds.
        #[arg(long, default_value_t = 0)]
        since: i64,
    },
}

#[derive(Subcommand)]
enum BulkCommand {
    /// File an erasure request for every row of a CSV file (header row:
    /// email, phone, external_id, name, region); resumable, with a per-row
    /// report.
    Erase {
        #[command(flatten)]
        engine: args::EngineArgs,
        #[command(flatten)]
        bulk: bulk::BulkArgs,
    },
    /// Approve every request of a bulk report that awaits approval (as a
    /// second operator under four eyes).
    Approve {
        #[command(flatten)]
        engine: args::EngineArgs,
        #[command(flatten)]
        approve: bulk::ApproveArgs,
    },
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
        /// The store whose requests' data keys to rewrap (a SQLite file or
        /// a postgres:// URL), one request per transaction.
        #[arg(long, env = "OUBLI_DB")]
        db: Option<String>,
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
        /// Also count the data keys of this store (a SQLite file or a
        /// postgres:// URL).
        #[arg(long, env = "OUBLI_DB")]
        db: Option<String>,
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

#[derive(Args)]
struct EncryptArgs {
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
}

#[derive(Args)]
struct DecryptArgs {
    /// The recipient's private key (PKCS#8 PEM).
    #[arg(long, value_name = "PRIVATE.pem")]
    key: PathBuf,
    /// The encrypted file.
    input: PathBuf,
    /// Where to write the plaintext.
    output: PathBuf,
}

#[derive(Subcommand)]
enum FileCommand {
    /// Same as `oubli encrypt`.
    Encrypt(EncryptArgs),
    /// Same as `oubli decrypt`.
    Decrypt(DecryptArgs),
}

#[derive(Args)]
struct InspectArgs {
    /// The component (.wasm).
    file: PathBuf,
    #[command(flatten)]
    output: Output,
    #[command(flatten)]
    cache: CacheArgs,
}

#[derive(Args)]
struct CheckArgs {
    /// The configuration file.
    #[arg(long, short, env = "OUBLI_CONFIG", default_value = "oubli.toml")]
    config: PathBuf,
    /// Also ask each system live: one search for nobody (a reserved
    /// address and number), which signs in, so a wrong token or an
    /// unreachable host shows now. Changes nothing.
    #[arg(long)]
    probe: bool,
    #[command(flatten)]
    output: Output,
    #[command(flatten)]
    cache: CacheArgs,
}

#[derive(Subcommand)]
enum ConnectorCommand {
    /// Show what a connector component is and what it asks for.
    Inspect(InspectArgs),
    /// The conformance kit: run a configured system's connector through
    /// the runtime against a fixture (what the test system holds of one
    /// seeded person), case by case. Exit status 1 when a case failed.
    Test(crate::kit::TestArgs),
    /// Write a new connector crate that builds, loads, and passes the kit
    /// against `oubli sandbox` as written.
    New(crate::kit::NewArgs),
}

#[derive(Subcommand)]
enum SystemsCommand {
    /// Load every configured system's connector and report, one line each,
    /// whether it is usable. Exits with status 1 if any is refused.
    Check(CheckArgs),
    /// Pause a system: its queued tasks wait, unclaimed, until it is
    /// resumed (running ones finish).
    Pause {
        #[command(flatten)]
        engine: args::EngineArgs,
        /// The system.
        system: String,
        #[command(flatten)]
        actor: args::ActorArgs,
        /// Why (a maintenance window, an outage).
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Resume a paused system.
    Resume {
        #[command(flatten)]
        engine: args::EngineArgs,
        /// The system.
        system: String,
        #[command(flatten)]
        actor: args::ActorArgs,
    },
    /// List the paused systems.
    Paused {
        #[command(flatten)]
        engine: args::EngineArgs,
    },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Same as `oubli connector inspect`.
    Inspect(InspectArgs),
    /// Same as `oubli systems check`.
    Check(CheckArgs),
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

/// Log to stderr. `OUBLI_LOG` sets oubli's own level (`info`, `debug`,
/// `trace`, or per module: `oubli_runtime=debug`); dependencies log warnings
/// and errors only, whatever it says: at their debug and trace levels they
/// print what they handle (request lines, URLs with identifiers), which no
/// level of oubli's logging may do.
pub fn init_logging(json: bool) {
    let spec = std::env::var("OUBLI_LOG").unwrap_or_default();
    let (filter, ignored) = log_filter(&spec);
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    if json {
        fmt.json()
            .flatten_event(true)
            .with_current_span(true)
            .init();
    } else {
        fmt.init();
    }
    for directive in ignored {
        tracing::warn!("OUBLI_LOG: `{directive}` ignored: only oubli's own modules log below warn");
    }
}

/// The filter for `OUBLI_LOG`: a bare level applies to oubli's crates
/// (targets `oubli*`), directives for them are kept, directives for
/// anything else are returned as ignored; everything else stays at `warn`.
fn log_filter(spec: &str) -> (String, Vec<String>) {
    let mut filter = vec!["warn".to_string()];
    let mut ignored = Vec::new();
    for directive in spec.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        match directive.split_once('=') {
            None if !directive.contains(['[', '{', ':']) => {
                filter.push(format!("oubli={directive}"))
            }
            Some((target, _)) if target.starts_with("oubli") && !target.contains(['[', '{']) => {
                filter.push(directive.to_string())
            }
            _ => ignored.push(directive.to_string()),
        }
    }
    (filter.join(","), ignored)
}

/// Parse the command line and run it.
pub fn run() -> Result<ExitCode> {
    let cli = Cli::parse();
    init_logging(cli.log_format == "json");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match cli.command {
        #[cfg(feature = "demo")]
        Command::Demo {
            out,
            console,
            cache,
        } => rt.block_on(crate::demo::run(&out, console, cache.no_cache)),
        #[cfg(feature = "demo")]
        Command::Sandbox(args) => rt.block_on(crate::sandbox::run(args)),
        Command::Locate(args) => rt.block_on(locate(args)),
        Command::Connector(ConnectorCommand::Test(args)) => rt.block_on(crate::kit::test(args)),
        Command::Connector(ConnectorCommand::New(args)) => crate::kit::new(args),
        Command::Connector(ConnectorCommand::Inspect(args))
        | Command::Plugin(PluginCommand::Inspect(args)) => rt.block_on(inspect(args)),
        Command::Systems(SystemsCommand::Pause {
            engine,
            system,
            actor,
            reason,
        }) => rt.block_on(requests::pause(
            engine,
            requests::PauseCommand::Pause {
                system,
                actor,
                reason,
            },
        )),
        Command::Systems(SystemsCommand::Resume {
            engine,
            system,
            actor,
        }) => rt.block_on(requests::pause(
            engine,
            requests::PauseCommand::Resume { system, actor },
        )),
        Command::Systems(SystemsCommand::Paused { engine }) => {
            rt.block_on(requests::pause(engine, requests::PauseCommand::Paused))
        }
        Command::Systems(SystemsCommand::Check(args))
        | Command::Plugin(PluginCommand::Check(args)) => rt.block_on(check(args)),
        Command::Request { engine, command } => rt.block_on(requests::request(engine, command)),
        Command::Requests { engine, list } => rt.block_on(requests::list(engine, list)),
        Command::Worker { engine, worker } => rt.block_on(requests::worker(engine, worker)),
        Command::Restriction { engine, command } => {
            rt.block_on(requests::restriction(engine, command))
        }
        Command::Bulk(BulkCommand::Erase { engine, bulk }) => {
            rt.block_on(bulk::erase(engine, bulk))
        }
        Command::Bulk(BulkCommand::Approve { engine, approve }) => {
            rt.block_on(bulk::approve(engine, approve))
        }
        Command::Audit(AuditCommand::Verify { engine, heads }) => {
            rt.block_on(audit_verify(engine, heads))
        }
        Command::Audit(AuditCommand::Prove { engine, id, event }) => {
            rt.block_on(service::audit_prove(engine, id, event))
        }
        Command::Audit(AuditCommand::Heads { engine, since }) => {
            rt.block_on(service::audit_heads(engine, since))
        }
        Command::Audit(AuditCommand::Export { engine, after }) => {
            rt.block_on(service::audit_export(engine, after))
        }
        Command::Audit(AuditCommand::Sign { engine }) => rt.block_on(service::audit_sign(engine)),
        Command::Serve { engine, serve } => rt.block_on(service::serve(engine, serve)),
        Command::Token { engine, command } => rt.block_on(service::token(engine, command)),
        Command::Certificate { engine, command } => {
            rt.block_on(service::certificate(engine, command))
        }
        Command::Bundle { engine, command } => rt.block_on(service::bundle(engine, command)),
        Command::Consent { engine, command } => rt.block_on(service::consent(engine, command)),
        Command::Retention { engine, command } => {
            rt.block_on(crate::retention::retention(engine, command))
        }
        Command::Notice {
            engine,
            channel,
            intake,
            lang,
            allow_incomplete,
        } => rt.block_on(service::notice(
            engine,
            channel,
            intake,
            lang,
            allow_incomplete,
        )),
        Command::Ropa {
            engine,
            format,
            lang,
            allow_incomplete,
        } => rt.block_on(service::ropa(engine, format, lang, allow_incomplete)),
        Command::Register(cmd) => rt.block_on(service::register(cmd)),
        Command::Openapi => {
            out!("{}", oubli_api::openapi_json());
            Ok(ExitCode::SUCCESS)
        }
        Command::Keys(cmd) => keys(cmd),
        Command::Encrypt(args) | Command::Export(FileCommand::Encrypt(args)) => encrypt(args),
        Command::Decrypt(args) | Command::Export(FileCommand::Decrypt(args)) => decrypt(args),
    }
}

async fn audit_verify(args: args::EngineArgs, heads: Option<PathBuf>) -> Result<ExitCode> {
    let witness = match &heads {
        Some(f) => service::read_witness_heads(f)?,
        None => Vec::new(),
    };
    let engine = args.open(false).await?;
    let report = engine.verify_audit_with(&witness).await?;
    let v = &report.chain;
    if args.json() {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        match &v.broken {
            None => outln!(
                "audit chain intact: {} events, head {}{}",
                v.events,
                &v.head[..16],
                if v.unchained > 0 {
                    format!(" ({} older events predate the chain)", v.unchained)
                } else {
                    String::new()
                }
            ),
            Some(b) => match b.event {
                Some(id) => outln!("audit chain BROKEN at event {id}: {}", b.reason),
                None => outln!("audit chain BROKEN at the head: {}", b.reason),
            },
        }
        match &report.consent.broken {
            None => outln!("consent chain intact: {} entries", report.consent.events),
            Some(b) => match b.event {
                Some(id) => outln!("consent chain BROKEN at entry {id}: {}", b.reason),
                None => outln!("consent chain BROKEN at the head: {}", b.reason),
            },
        }
        match (&report.broken_head, report.last_signed_seq) {
            (Some(b), _) => outln!("audit heads BROKEN: {}", b.reason),
            (None, Some(seq)) => outln!(
                "signed chain heads (before the tree) hold: {} signed, the latest over {seq} events",
                report.signed_heads
            ),
            (None, None) => {}
        }
        match (&report.broken_tree, report.last_tree_size) {
            (Some(b), _) => match b.event {
                Some(id) => outln!("audit tree BROKEN at event {id}: {}", b.reason),
                None => outln!("audit tree BROKEN: {}", b.reason),
            },
            (None, Some(size)) => outln!(
                "audit tree holds: {} signed tree heads, the latest over {size} events, each consistent with the one before",
                report.tree_heads
            ),
            (None, None) => outln!(
                "no signed tree head yet (`oubli audit sign`; `serve` and `worker` sign as the log grows)"
            ),
        }
        if heads.is_some() && report.broken_tree.is_none() {
            outln!(
                "witness heads hold: {} checked against the log",
                report.witness_heads
            );
        }
        if v.waiting > 0 {
            outln!(
                "{} events wait for the sequencer (another process holds its lease)",
                v.waiting
            );
        }
    }
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Load the configuration and start the rights service on it.
async fn service(config: &Path, no_cache: bool) -> Result<Systems> {
    let config = Config::load(config)?;
    Ok(Systems::open(
        config,
        rights::Options {
            no_cache,
            ..Default::default()
        },
    )
    .await?)
}

async fn locate(args: LocateArgs) -> Result<ExitCode> {
    let given = args.subject.identifiers();
    // Check the identifiers before loading any connector.
    let config = Config::load(&args.config)?;
    let subject = given
        .normalise(args.subject.region.or(config.identifiers.default_region))
        .map_err(args::with_flag)?;
    let rights = Systems::open(
        config,
        rights::Options {
            no_cache: args.cache.no_cache,
            ..Default::default()
        },
    )
    .await?;
    let report = rights.locate(&subject).await;
    if args.output.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        out!("{}", render::locate(&report));
    }
    Ok(if report.has_failures() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn keys(cmd: KeysCommand) -> Result<ExitCode> {
    let pass = args::passphrase();
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
        KeysCommand::Rotate {
            keyring,
            resume,
            db,
        } => {
            let mut ring = Keyring::open(&keyring.dir, pass)?;
            if !resume {
                ring.rotate(pass)?;
            }
            // Data keys live in the store, wrapped under the KEK: rewrapped
            // there, one request per transaction (payloads untouched).
            let rewrapped = match db {
                Some(url) => {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?;
                    let ring = Keyring::open(&keyring.dir, pass)?;
                    let done = rt.block_on(oubli_core::keys::rewrap_store(&url, ring))?;
                    Some(done)
                }
                None => None,
            };
            let list = ring.list();
            if !resume {
                outln!(
                    "new host key {} and KEK {} are active",
                    list.active_host,
                    list.active_kek
                );
            }
            match rewrapped {
                Some((n, left)) => outln!(
                    "rewrapped {n} data keys; {} left under old keys",
                    left.keys_to_rewrap
                ),
                None => outln!(
                    "the store's data keys are still under the old KEK (which is kept): rewrap them with --db URL"
                ),
            }
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
        KeysCommand::List {
            keyring,
            output,
            db,
        } => {
            let ring = Keyring::open(&keyring.dir, pass)?;
            let list = ring.list();
            let stats = match db {
                Some(url) => {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?;
                    let ring = Keyring::open(&keyring.dir, pass)?;
                    Some(rt.block_on(oubli_core::keys::store_keys(&url, ring))?)
                }
                None => None,
            };
            if output.json {
                #[derive(serde::Serialize)]
                struct Listed<'a> {
                    #[serde(flatten)]
                    keys: &'a KeyList,
                    #[serde(skip_serializing_if = "Option::is_none")]
                    requests_with_keys: Option<i64>,
                    #[serde(skip_serializing_if = "Option::is_none")]
                    keys_to_rewrap: Option<i64>,
                    #[serde(skip_serializing_if = "Option::is_none")]
                    requests_shredded: Option<i64>,
                }
                let listed = Listed {
                    keys: &list,
                    requests_with_keys: stats.map(|s| s.requests_with_keys),
                    keys_to_rewrap: stats.map(|s| s.keys_to_rewrap),
                    requests_shredded: stats.map(|s| s.shredded),
                };
                outln!("{}", serde_json::to_string_pretty(&listed)?);
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
                if let Some(s) = stats {
                    outln!(
                        "data keys  {} requests, {} to rewrap",
                        s.requests_with_keys,
                        s.keys_to_rewrap
                    );
                    outln!("shredded   {} requests", s.shredded);
                }
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

fn encrypt(args: EncryptArgs) -> Result<ExitCode> {
    let EncryptArgs {
        to,
        kind,
        request,
        input,
        output,
    } = args;
    let mut recipients = Vec::with_capacity(to.len());
    for path in &to {
        let pem = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        recipients.push(Recipient::from_pem(&pem).with_context(|| path.display().to_string())?);
    }
    let src =
        std::fs::File::open(&input).with_context(|| format!("cannot read {}", input.display()))?;
    let src = std::io::BufReader::with_capacity(1 << 20, src);
    write_atomically(&output, |file| {
        let out = std::io::BufWriter::with_capacity(1 << 20, file);
        let mut out = file::encrypt(&recipients, &kind, &request, src, out)?;
        std::io::Write::flush(&mut out)?;
        Ok(())
    })?;
    let ids: Vec<&str> = recipients.iter().map(Recipient::id).collect();
    eprintln!("encrypted {} for {}", output.display(), ids.join(", "));
    Ok(ExitCode::SUCCESS)
}

fn decrypt(args: DecryptArgs) -> Result<ExitCode> {
    let DecryptArgs { key, input, output } = args;
    let pem = Zeroizing::new(
        std::fs::read_to_string(&key).with_context(|| format!("cannot read {}", key.display()))?,
    );
    let pass = args::passphrase();
    let private = file::private_key_from_pem(
        &pem,
        pass.as_deref().map(String::as_str),
        &key.display().to_string(),
    )?;
    let src =
        std::fs::File::open(&input).with_context(|| format!("cannot read {}", input.display()))?;
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
    Ok(ExitCode::SUCCESS)
}

async fn inspect(args: InspectArgs) -> Result<ExitCode> {
    let info = rights::inspect_connector(&args.file, args.cache.no_cache).await?;
    if args.output.json {
        outln!("{}", serde_json::to_string_pretty(&info)?);
    } else {
        out!("{}", render::inspect(&info));
    }
    Ok(ExitCode::SUCCESS)
}

async fn check(args: CheckArgs) -> Result<ExitCode> {
    let rights = service(&args.config, args.cache.no_cache).await?;
    let check = if args.probe {
        rights.check_systems_live().await
    } else {
        rights.check_systems()
    };
    if args.output.json {
        outln!("{}", serde_json::to_string_pretty(&check)?);
    } else {
        if check.systems.is_empty() {
            outln!("no systems configured in {}", args.config.display());
        }
        out!("{}", render::check(&check));
    }
    Ok(if check.has_refusals() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::log_filter;

    #[test]
    fn oubli_log_raises_only_oublis_own_modules() {
        assert_eq!(log_filter(""), ("warn".to_string(), vec![]));
        assert_eq!(log_filter("trace").0, "warn,oubli=trace");
        assert_eq!(
            log_filter("debug, oubli_runtime=trace").0,
            "warn,oubli=debug,oubli_runtime=trace"
        );
        let (filter, ignored) = log_filter("hyper=trace,wasmtime=debug,info");
        assert_eq!(filter, "warn,oubli=info");
        assert_eq!(ignored, ["hyper=trace", "wasmtime=debug"]);
    }
}
