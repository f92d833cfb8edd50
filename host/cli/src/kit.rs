//! `oubli connector test` (the conformance kit) and `oubli connector new`
//! (a ready connector crate for a vendor).

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use oubli_core::config::Config;
use oubli_core::conformance::{self, Fixture, Report, Verdict, cassette};
use oubli_model::for_display;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// How the kit's report is printed.
#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    /// One line per case.
    Text,
    /// The report as JSON.
    Json,
    /// JUnit XML, for CI systems.
    Junit,
}

/// `oubli connector test`
#[derive(Args)]
pub struct TestArgs {
    /// The configuration file naming the system.
    #[arg(long, short, env = "OUBLI_CONFIG", default_value = "oubli.toml")]
    config: PathBuf,
    /// The system whose connector is tested.
    #[arg(long)]
    system: String,
    /// What the test system holds of the seeded person (conformance.toml;
    /// with --replay, the one recorded beside the answers unless given).
    #[arg(long, required_unless_present = "replay")]
    fixture: Option<PathBuf>,
    /// Keep what the system answers in DIR (cassette.json), credentials
    /// dropped and the fixture's people replaced by placeholders, with the
    /// fixture rewritten to match (conformance.toml). Not with
    /// --destructive.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["replay", "destructive"])]
    record: Option<PathBuf>,
    /// Answer from the recording in DIR instead of the system: the kit with
    /// no test system, no secret and no personal data (every pull request).
    #[arg(long, value_name = "DIR")]
    replay: Option<PathBuf>,
    /// Also run the cases that change the system: rectify, restrict,
    /// erase. Only against a test system.
    #[arg(long)]
    destructive: bool,
    /// How to print the report.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Write the report to this file instead of stdout.
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Compile in memory only; do not read or write the compiled-code cache.
    #[arg(long)]
    no_cache: bool,
}

/// Run the kit. Exit status 0 when every case passed or was skipped, 1
/// when one failed.
pub async fn test(args: TestArgs) -> Result<ExitCode> {
    let config = Config::load(&args.config)?;
    let fixture_path = match (&args.fixture, &args.replay) {
        (Some(f), _) => f.clone(),
        (None, Some(dir)) => dir.join(cassette::FIXTURE),
        (None, None) => bail!("--fixture is required"),
    };
    let text = std::fs::read_to_string(&fixture_path)
        .with_context(|| format!("cannot read {}", fixture_path.display()))?;
    let fixture =
        Fixture::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", fixture_path.display()))?;
    let replay = match &args.replay {
        Some(dir) => {
            let path = dir.join(cassette::FILE);
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            Some(
                serde_json::from_str::<cassette::Cassette>(&text)
                    .map_err(|e| anyhow::anyhow!("{}: not a recording: {e}", path.display()))?,
            )
        }
        None => None,
    };
    let options = conformance::Options {
        destructive: args.destructive,
        replay,
    };
    let report = match &args.record {
        Some(dir) => {
            let (report, recording) =
                conformance::record(&config, &args.system, &fixture, options, args.no_cache)
                    .await
                    .map_err(|e| anyhow::anyhow!(e))?;
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let path = dir.join(cassette::FILE);
            std::fs::write(
                &path,
                serde_json::to_string_pretty(&recording.cassette)? + "\n",
            )
            .with_context(|| format!("cannot write {}", path.display()))?;
            let path = dir.join(cassette::FIXTURE);
            std::fs::write(&path, recording.fixture)
                .with_context(|| format!("cannot write {}", path.display()))?;
            report
        }
        None => conformance::test(&config, &args.system, &fixture, options, args.no_cache)
            .await
            .map_err(|e| anyhow::anyhow!(e))?,
    };
    let printed = match args.format {
        Format::Text => text_report(&report),
        Format::Json => serde_json::to_string_pretty(&report)? + "\n",
        Format::Junit => report.junit(),
    };
    match &args.output {
        Some(path) => std::fs::write(path, printed)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => out!("{printed}"),
    }
    Ok(if report.failures() > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn text_report(r: &Report) -> String {
    let mut s = format!(
        "{} ({}, contract {}, sha256 {})\n",
        for_display(&r.system, 64),
        for_display(&r.connector, 128),
        for_display(&r.contract, 32),
        r.sha256
    );
    let width = r.cases.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for c in &r.cases {
        let mark = match c.verdict {
            Verdict::Pass => "pass",
            Verdict::Fail => "FAIL",
            Verdict::Skip => "skip",
        };
        s.push_str(&format!(
            "  {mark}  {:width$}  {}\n",
            c.name,
            for_display(&c.reason, 400)
        ));
    }
    let passed = r
        .cases
        .iter()
        .filter(|c| c.verdict == Verdict::Pass)
        .count();
    let skipped = r
        .cases
        .iter()
        .filter(|c| c.verdict == Verdict::Skip)
        .count();
    s.push_str(&format!(
        "{passed} passed, {} failed, {skipped} skipped{}\n",
        r.failures(),
        if r.destructive {
            ""
        } else {
            " (destructive cases need --destructive)"
        }
    ));
    s
}

/// The kind of system a new connector talks to.
#[derive(Clone, Copy, ValueEnum)]
pub enum Kind {
    /// Contact-center platform (ACD).
    Acd,
    /// Outbound dialer.
    Dialer,
    /// Email.
    Email,
    /// Ticketing / helpdesk.
    Ticketing,
    /// CRM.
    Crm,
    /// Call recording.
    Recording,
    /// Anything else.
    Other,
}

impl Kind {
    fn rust(self) -> &'static str {
        match self {
            Kind::Acd => "Acd",
            Kind::Dialer => "Dialer",
            Kind::Email => "Email",
            Kind::Ticketing => "Ticketing",
            Kind::Crm => "Crm",
            Kind::Recording => "Recording",
            Kind::Other => "Other",
        }
    }
}

/// `oubli connector new`
#[derive(Args)]
pub struct NewArgs {
    /// The connector's id: lowercase letters, digits and hyphens
    /// (`acme-crm`).
    name: String,
    /// What kind of system it talks to.
    #[arg(long, value_enum, default_value = "other")]
    kind: Kind,
    /// Where to create the crate (a new directory NAME inside it).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
}

/// The SDK and the contract, as this binary knows them: written beside
/// the new crate, so it builds without this repository.
const SDK: &[(&str, &str)] = &[
    (
        "src/lib.rs",
        include_str!("../../../plugins/sdk/src/lib.rs"),
    ),
    (
        "src/connector.rs",
        include_str!("../../../plugins/sdk/src/connector.rs"),
    ),
    (
        "src/http.rs",
        include_str!("../../../plugins/sdk/src/http.rs"),
    ),
    (
        "src/region.rs",
        include_str!("../../../plugins/sdk/src/region.rs"),
    ),
    (
        "src/text.rs",
        include_str!("../../../plugins/sdk/src/text.rs"),
    ),
    (
        "src/types.rs",
        include_str!("../../../plugins/sdk/src/types.rs"),
    ),
    (
        "wit/connector.wit",
        include_str!("../../../wit/connector.wit"),
    ),
    (
        "wit/deps/cli/cli.wit",
        include_str!("../../../wit/deps/cli/cli.wit"),
    ),
    (
        "wit/deps/clocks/clocks.wit",
        include_str!("../../../wit/deps/clocks/clocks.wit"),
    ),
    (
        "wit/deps/filesystem/filesystem.wit",
        include_str!("../../../wit/deps/filesystem/filesystem.wit"),
    ),
    (
        "wit/deps/http/http.wit",
        include_str!("../../../wit/deps/http/http.wit"),
    ),
    (
        "wit/deps/io/io.wit",
        include_str!("../../../wit/deps/io/io.wit"),
    ),
    (
        "wit/deps/random/random.wit",
        include_str!("../../../wit/deps/random/random.wit"),
    ),
    (
        "wit/deps/sockets/sockets.wit",
        include_str!("../../../wit/deps/sockets/sockets.wit"),
    ),
];

/// The dependency versions the SDK is built and tested with.
const LOCK: &str = include_str!("../../../plugins/Cargo.lock");
const TEMPLATE_LIB: &str = include_str!("../templates/connector/lib.rs");
const TEMPLATE_README: &str = include_str!("../templates/connector/README.md");
const TEMPLATE_FIXTURE: &str = include_str!("../templates/connector/conformance.toml");

/// Write a new connector crate.
pub fn new(args: NewArgs) -> Result<ExitCode> {
    let name = &args.name;
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        || name.starts_with('-')
        || name.starts_with(|c: char| c.is_ascii_digit())
    {
        bail!(
            "connector name {:?} must be lowercase letters, digits and hyphens, starting with a letter",
            for_display(name, 80)
        );
    }
    let root = args.dir.join(name);
    if root.exists() {
        bail!(
            "{} already exists: choose another name or --dir",
            root.display()
        );
    }
    let crate_name = name.replace('-', "_");
    let type_name: String = name
        .split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect();
    let sdk_version = env!("CARGO_PKG_VERSION");
    let fill = |t: &str| {
        t.replace("{{name}}", name)
            .replace("{{crate}}", &crate_name)
            .replace("{{Type}}", &type_name)
            .replace("{{Kind}}", args.kind.rust())
    };
    let mut files: Vec<(PathBuf, String)> = vec![
        (
            "Cargo.toml".into(),
            format!(
                "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\npublish = false\n\n\
                 [lib]\ncrate-type = [\"cdylib\"]\n\n\
                 [dependencies]\noubli-plugin = {{ path = \"oubli-sdk\" }}\nserde = {{ version = \"1\", features = [\"derive\"] }}\nserde_json = \"1\"\n\n\
                 # Its own workspace: built on its own, wherever it is.\n[workspace]\n\n\
                 [profile.release]\nopt-level = \"s\"\nlto = true\ncodegen-units = 1\nstrip = true\npanic = \"abort\"\n"
            ),
        ),
        ("Cargo.lock".into(), LOCK.to_string()),
        ("src/lib.rs".into(), fill(TEMPLATE_LIB)),
        ("README.md".into(), fill(TEMPLATE_README)),
        ("conformance.toml".into(), fill(TEMPLATE_FIXTURE)),
        (
            "oubli.toml".into(),
            fill(
                "# Try it against `oubli sandbox` (its people directory listens on\n\
                 # 127.0.0.1:18084 by default): `oubli systems check -c oubli.toml`.\n\
                 [identifiers]\ndefault_region = \"GB\"\n\n\
                 [systems.{{name}}]\nconnector = \"target/wasm32-wasip2/release/{{crate}}.wasm\"\n\
                 allow_hosts = [\"http://127.0.0.1:18084\"]\nallow_loopback = true\n\
                 config = { base_url = \"http://127.0.0.1:18084/api\" }\n\
                 secrets = { token = { env = \"DIRECTORY_TOKEN\" } }\n",
            ),
        ),
        (".gitignore".into(), "/target\n".into()),
    ];
    files.push((
        "oubli-sdk/Cargo.toml".into(),
        format!(
            "[package]\nname = \"oubli-plugin\"\nversion = \"{sdk_version}\"\nedition = \"2024\"\nlicense = \"Apache-2.0\"\npublish = false\n\
             description = \"SDK for oubli connector plugins (contract oubli:connector@0.2.0), as shipped by oubli {sdk_version}\"\n\n\
             [dependencies]\nwit-bindgen = \"0.61.1\"\nserde = {{ version = \"1\", features = [\"derive\"] }}\nserde_json = \"1\"\n"
        ),
    ));
    for (path, text) in SDK {
        // The SDK reads the contract from its own wit/ here.
        let text = text.replace("path: \"../../wit\"", "path: \"wit\"");
        files.push((Path::new("oubli-sdk").join(path), text));
    }
    for (path, text) in &files {
        let path = root.join(path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    outln!(
        "created {root}: a connector that answers locate from a people directory, and not-supported for the rest.\n\
         \n\
         \x20 cd {root}\n\
         \x20 cargo build --release --target wasm32-wasip2\n\
         \x20 oubli sandbox &                       # a people directory to try it on\n\
         \x20 DIRECTORY_TOKEN=dir-token oubli systems check -c oubli.toml\n\
         \x20 DIRECTORY_TOKEN=dir-token oubli connector test -c oubli.toml --system {name} --fixture conformance.toml\n\
         \n\
         Then replace the directory's calls in src/lib.rs with your system's (README.md says where).",
        root = root.display()
    );
    Ok(ExitCode::SUCCESS)
}
