//! `oubli-sandbox`: serve the four stand-ins on loopback until interrupted,
//! and print their URLs and a ready-to-use oubli.toml.

use anyhow::Context;
use clap::Parser;
use oubli_sandbox::{Options, Sandbox, System};
use std::path::PathBuf;
use std::time::Duration;

/// Local stand-ins of Genesys Cloud, an outbound dialer, a JMAP mail server
/// and a CRM, seeded with synthetic people.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// First of four consecutive loopback ports (Genesys, dialer, mail, CRM).
    #[arg(long, default_value_t = 18080)]
    port_base: u16,
    /// How many synthetic people to seed (at most 1000).
    #[arg(long, default_value_t = 300)]
    people: usize,
    /// Milliseconds per status step of a Genesys GDPR request.
    #[arg(long, default_value_t = 2000)]
    gdpr_step_ms: u64,
    /// Where to write the tokens and the oubli.toml.
    #[arg(long, default_value = "oubli-sandbox")]
    out: PathBuf,
    /// Where the connector components are (`cargo build` puts them in
    /// target/plugins; `oubli demo` leaves a copy in oubli-demo/connectors).
    #[arg(long, alias = "plugins", default_value = "target/plugins")]
    connectors: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let sandbox = Sandbox::start(Options {
        people: args.people,
        port_base: Some(args.port_base),
        gdpr_step: Duration::from_millis(args.gdpr_step_ms),
        large_recording: None,
    })
    .await
    .with_context(|| {
        format!(
            "cannot listen on ports {}..{}",
            args.port_base,
            args.port_base + 3
        )
    })?;
    let secrets = args.out.join("secrets");
    sandbox
        .write_secrets(&secrets)
        .with_context(|| format!("cannot write tokens under {}", secrets.display()))?;
    let connectors = std::path::absolute(&args.connectors).unwrap_or(args.connectors.clone());
    let secrets = std::path::absolute(&secrets).unwrap_or(secrets);
    let config = sandbox.config_toml(&connectors, &secrets);
    let config_path = args.out.join("oubli.toml");
    std::fs::write(&config_path, &config)
        .with_context(|| format!("cannot write {}", config_path.display()))?;
    for sys in System::ALL {
        println!(
            "{:<13} {}  (token: {})",
            sys.name(),
            sys.url_hint(&sandbox),
            sys.token()
        );
    }
    let p = sandbox.demo_person();
    println!(
        "\nIn all four systems: {} <{}>, {}\nConfig: {}\n\n  oubli locate --config {} --email {}\n\n{config}",
        p.full_name(),
        p.email,
        p.phone,
        config_path.display(),
        config_path.display(),
        p.email
    );
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    Ok(())
}

trait UrlHint {
    fn url_hint(self, sandbox: &Sandbox) -> String;
}

impl UrlHint for System {
    fn url_hint(self, sandbox: &Sandbox) -> String {
        match self {
            System::Mail => format!("{}/.well-known/jmap", sandbox.url(self)),
            _ => sandbox.url(self),
        }
    }
}
