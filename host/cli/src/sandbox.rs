//! `oubli sandbox`: the stand-ins, served by the released binary, so that
//! vendors and integrators can try connectors and the conformance kit
//! without a source checkout.
//!
//! Starts the four stand-ins of the demo (Genesys Cloud, a dialer, a JMAP
//! mailbox, a CRM) and the people directory that `oubli connector new`'s
//! crate talks to, on consecutive loopback ports; writes the connectors
//! the binary carries, their credentials, an oubli.toml naming all five and
//! a conformance fixture for each (`conformance-SYSTEM.toml`; the four
//! stand-ins' for the default population only); then waits for Ctrl-C.

use anyhow::{Context, Result, bail};
use clap::Args;
use oubli_sandbox::{Options, Sandbox, System};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// `oubli sandbox`
#[derive(Args)]
pub struct SandboxArgs {
    /// First of five consecutive loopback ports (Genesys, dialer, mail,
    /// CRM, people directory); 0 takes free ports.
    #[arg(long, default_value_t = 18080)]
    port_base: u16,
    /// How many synthetic people to seed in the four systems (at most
    /// 1000).
    #[arg(long, default_value_t = 300)]
    people: usize,
    /// Milliseconds per status step of a Genesys GDPR request.
    #[arg(long, default_value_t = 2000)]
    gdpr_step_ms: u64,
    /// Where to write the connectors, credentials, oubli.toml and fixture.
    #[arg(long, default_value = "oubli-sandbox")]
    out: PathBuf,
}

/// The conformance fixtures of the stand-ins (for the default population)
/// and of the people directory (for `example-rest`, and a new crate), by
/// system name.
const FIXTURES: [(&str, &str); 5] = [
    (
        "genesys",
        include_str!("../../../examples/conformance/genesys.toml"),
    ),
    (
        "dialer",
        include_str!("../../../examples/conformance/dialer.toml"),
    ),
    (
        "support-mail",
        include_str!("../../../examples/conformance/support-mail.toml"),
    ),
    (
        "crm",
        include_str!("../../../examples/conformance/crm.toml"),
    ),
    (
        "directory",
        include_str!("../templates/connector/conformance.toml"),
    ),
];

/// The population the stand-ins' fixtures describe.
const FIXTURE_PEOPLE: usize = 300;

/// Serve until interrupted.
pub async fn run(args: SandboxArgs) -> Result<ExitCode> {
    let out = std::path::absolute(&args.out).unwrap_or(args.out.clone());
    if args.port_base > u16::MAX - 4 {
        bail!(
            "--port-base {} leaves no room for five ports (at most {})",
            args.port_base,
            u16::MAX - 4
        );
    }
    let port = |i: u16| (args.port_base != 0).then(|| args.port_base + i);
    // The directory's port first: a port already taken says so before
    // anything else starts.
    let directory_at = format!("127.0.0.1:{}", port(4).unwrap_or(0));
    let listener = tokio::net::TcpListener::bind(&directory_at)
        .await
        .with_context(|| format!("cannot listen on {directory_at}"))?;
    let sandbox = Sandbox::start(Options {
        people: args.people.min(1000),
        port_base: port(0),
        gdpr_step: Duration::from_millis(args.gdpr_step_ms),
        large_recording: None,
    })
    .await
    .with_context(|| match port(0) {
        Some(p) => format!("cannot listen on ports {p}..{}", p + 3),
        None => "cannot listen on loopback".into(),
    })?;
    let (directory, _) = oubli_sandbox::directory::serve_on(listener);
    let directory = format!("http://{directory}");

    let connectors = write_connectors(
        &out,
        oubli_connectors::REFERENCE
            .iter()
            .chain([&oubli_connectors::EXAMPLE]),
    )?;
    let secrets = out.join("secrets");
    sandbox
        .write_secrets(&secrets)
        .with_context(|| format!("cannot write credentials under {}", secrets.display()))?;
    let token = secrets.join("directory.token");
    std::fs::write(&token, oubli_sandbox::directory::TOKEN)
        .with_context(|| format!("cannot write {}", token.display()))?;
    let config = format!(
        "{}\n[systems.directory]\nconnector = {:?}\nallow_hosts = [{directory:?}]\nallow_loopback = true\n\
         config = {{ base_url = \"{directory}/api\" }}\nsecrets = {{ token = {{ file = {:?} }} }}\n",
        sandbox.config_toml(&connectors, &secrets),
        connectors.join("example-rest.wasm").display().to_string(),
        token.display().to_string(),
    );
    let config_path = out.join("oubli.toml");
    std::fs::write(&config_path, &config)
        .with_context(|| format!("cannot write {}", config_path.display()))?;
    // The stand-ins' data depends on the population: their fixtures are
    // written only for the one they describe.
    for (system, text) in FIXTURES {
        if system != "directory" && args.people != FIXTURE_PEOPLE {
            continue;
        }
        let path = out.join(format!("conformance-{system}.toml"));
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let fixture = out.join("conformance-directory.toml");

    outln!("oubli sandbox: stand-ins on loopback, until Ctrl-C.\n");
    for sys in System::ALL {
        let url = match sys {
            System::Mail => format!("{}/.well-known/jmap", sandbox.url(sys)),
            _ => sandbox.url(sys),
        };
        outln!("  {:<13} {url}", sys.name());
    }
    outln!(
        "  {:<13} {directory}/api  (token: {})",
        "directory",
        oubli_sandbox::directory::TOKEN
    );
    let p = sandbox.demo_person();
    outln!(
        "\nIn the four systems: {} <{}>, {}. In the directory: ada+calls@example.com.\n\
         Configuration: {config}\n\n\
         \x20 oubli locate -c {config} --email {}\n\
         \x20 oubli connector test -c {config} --system directory --fixture {fixture}",
        p.full_name(),
        p.email,
        p.phone,
        p.email,
        config = config_path.display(),
        fixture = fixture.display(),
    );
    wait().await?;
    Ok(ExitCode::SUCCESS)
}

/// Write the connectors the binary carries into `out/connectors`, as an
/// integrator would deploy them; that directory.
pub(crate) fn write_connectors<'a>(
    out: &Path,
    connectors: impl IntoIterator<Item = &'a oubli_connectors::Connector>,
) -> Result<PathBuf> {
    let dir = out.join("connectors");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for c in connectors {
        let path = dir.join(format!("{}.wasm", c.name));
        std::fs::write(&path, c.wasm)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(dir)
}

/// Until Ctrl-C or SIGTERM.
async fn wait() -> Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("cannot wait for SIGTERM")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("cannot wait for Ctrl-C")?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .context("cannot wait for Ctrl-C")?;
    Ok(())
}
