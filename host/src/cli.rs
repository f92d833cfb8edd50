//! The commands. Each parses and validates its arguments first, then does the
//! I/O-heavy work (load the config, compile plugins) through the library.

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use oubli::config::Config;
use oubli::runtime::{Plugin, PluginInfo, Runtime, RuntimeOptions};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

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
    /// Inspect and check connector plugins.
    #[command(subcommand)]
    Plugin(PluginCommand),
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
    }
}

async fn inspect(file: &Path, json: bool, no_cache: bool) -> Result<ExitCode> {
    let runtime = Runtime::new(&RuntimeOptions {
        cache_dir: None,
        no_cache,
    })?;
    let plugin = runtime.inspect(file).await?;
    let info = plugin.info();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&InspectJson::from(info))?
        );
    } else {
        print!("{}", describe(info));
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
    if json {
        println!("{}", serde_json::to_string_pretty(&lines)?);
    } else {
        if lines.is_empty() {
            println!("no plugins configured in {}", config_path.display());
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
                    println!(
                        "ok       {:width$}  {} {} ({}), {} operations, {reach}",
                        l.name,
                        m.id,
                        m.version,
                        kebab(&m.system_kind),
                        m.operations.len(),
                    );
                    for w in &info.warnings {
                        println!("         {:width$}  warning: {w}", "");
                    }
                }
                (None, Some(e)) => println!("refused  {:width$}  {e}", l.name),
                (None, None) => println!("disabled {:width$}", l.name),
            }
        }
    }
    Ok(if refused > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
