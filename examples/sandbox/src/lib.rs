//! `oubli-sandbox`: local stand-ins of the four systems a contact center keeps
//! personal data in, seeded with a few hundred synthetic people, for trying
//! connectors by hand and for oubli's own tests and demo.
//!
//! - [`genesys`]: the Genesys Cloud GDPR API, analytics and recordings;
//! - [`dialer`]: an outbound dialer with contact lists and do-not-call lists;
//! - [`jmap`]: a JMAP mail server (RFC 8620/8621 subset);
//! - [`crm`]: a CRM with HubSpot's v3 shapes.
//!
//! Each listens on its own loopback port and follows its vendor's published
//! API shapes; where a detail is the stand-in's own, the module says so.
//! Nothing here is part of oubli's product code paths: only the `oubli demo`
//! command starts a sandbox.
//!
//! ```no_run
//! # async fn f() -> std::io::Result<()> {
//! let sandbox = oubli_sandbox::Sandbox::start(oubli_sandbox::Options::default()).await?;
//! println!("Genesys stand-in at {}", sandbox.url(oubli_sandbox::System::Acd));
//! # Ok(()) }
//! ```

#![warn(missing_docs)]
#![allow(
    clippy::result_large_err,
    reason = "handlers return a ready `Response` as their error; boxing it buys nothing here"
)]

pub mod common;
pub mod crm;
pub mod dialer;
pub mod directory;
pub mod genesys;
pub mod jmap;
pub mod people;
pub mod util;

pub use common::{Controls, Fault};
pub use people::Person;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// The four stand-ins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum System {
    /// Genesys Cloud.
    Acd,
    /// The outbound dialer.
    Dialer,
    /// The JMAP mail server.
    Mail,
    /// The CRM.
    Crm,
}

impl System {
    /// All four, in port order.
    pub const ALL: [System; 4] = [System::Acd, System::Dialer, System::Mail, System::Crm];

    /// The system's name in the generated oubli.toml.
    pub fn name(self) -> &'static str {
        match self {
            System::Acd => "genesys",
            System::Dialer => "dialer",
            System::Mail => "support-mail",
            System::Crm => "crm",
        }
    }

    /// The connector plugin that talks to it (file stem under
    /// `target/plugins/`).
    pub fn connector(self) -> &'static str {
        match self {
            System::Acd => "genesys-cloud",
            System::Dialer => "dialer",
            System::Mail => "jmap-mail",
            System::Crm => "crm",
        }
    }

    /// The API token the stand-in accepts.
    pub fn token(self) -> &'static str {
        match self {
            System::Acd => genesys::ADMIN_TOKEN,
            System::Dialer => dialer::TOKEN,
            System::Mail => jmap::TOKEN,
            System::Crm => crm::TOKEN,
        }
    }

    /// The secrets its connector is given: (secret key, file name). Genesys
    /// uses an OAuth client (client-credentials grant), as integrators set
    /// it up; the others a bearer token.
    pub fn secret_files(self) -> Vec<(&'static str, String)> {
        match self {
            System::Acd => vec![
                ("client_id", "genesys.client_id".into()),
                ("client_secret", "genesys.client_secret".into()),
            ],
            _ => vec![("token", format!("{}.token", self.name()))],
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// How to start a sandbox.
#[derive(Debug, Clone)]
pub struct Options {
    /// How many synthetic people (at most 1000).
    pub people: usize,
    /// Listen on ports `base..base+4`; `None` takes free ports.
    pub port_base: Option<u16>,
    /// Time per status step of a Genesys GDPR request.
    pub gdpr_step: Duration,
    /// Add a recording of this many bytes to the second person's first call.
    pub large_recording: Option<u64>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            people: 300,
            port_base: None,
            gdpr_step: Duration::from_millis(500),
            large_recording: None,
        }
    }
}

/// A running sandbox; the servers stop when it is dropped.
#[derive(Debug)]
pub struct Sandbox {
    /// The Genesys stand-in's state.
    pub genesys: Arc<genesys::Genesys>,
    /// The dialer stand-in's state.
    pub dialer: Arc<dialer::Dialer>,
    /// The JMAP stand-in's state.
    pub jmap: Arc<jmap::Jmap>,
    /// The CRM stand-in's state.
    pub crm: Arc<crm::Crm>,
    controls: [Arc<Controls>; 4],
    addrs: [SocketAddr; 4],
    people: Vec<Person>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// The demo contact center's register of processing (`register.toml`):
/// four activities over the stand-ins' systems, complete in English and
/// French.
pub const REGISTER: &str = include_str!("../register.toml");

/// The demo controller (`[controller]`).
pub const CONTROLLER: &str = "[controller]\n\
name = \"Example Contact Center SAS\"\n\
contact = \"privacy@example.com, 1 rue de l'Exemple, 75002 Paris, France\"\n\
dpo = \"dpo@example.com\"\n\
authority = \"Commission nationale de l'informatique et des libertés (CNIL)\"\n\
authority_url = \"https://www.cnil.fr/fr/plaintes\"\n";

/// Write the demo register to `dir/register.toml`; the configuration text
/// that names it and the demo controller.
pub fn write_register(dir: &Path) -> std::io::Result<String> {
    std::fs::write(dir.join("register.toml"), REGISTER)?;
    Ok(format!(
        "\n{CONTROLLER}\n[register]\nfile = \"register.toml\"\n"
    ))
}

impl Sandbox {
    /// Seed the four systems and serve them on loopback.
    pub async fn start(options: Options) -> std::io::Result<Sandbox> {
        let people = people::population(options.people);
        let genesys = genesys::Genesys::seed(&people, options.gdpr_step, options.large_recording);
        let dialer = dialer::Dialer::seed(&people);
        let jmap = jmap::Jmap::seed(&people);
        let crm = crm::Crm::seed(&people);
        let controls: [Arc<Controls>; 4] = Default::default();
        let mut listeners = Vec::new();
        for i in 0..4u16 {
            let port = options.port_base.map_or(0, |b| b + i);
            let l = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
            listeners.push(l);
        }
        let addrs: [SocketAddr; 4] = [
            listeners[0].local_addr()?,
            listeners[1].local_addr()?,
            listeners[2].local_addr()?,
            listeners[3].local_addr()?,
        ];
        let routers = [
            genesys.router(&format!("http://{}", addrs[0])),
            dialer.router(),
            jmap.router(),
            crm.router(),
        ];
        let mut tasks = Vec::new();
        for ((router, listener), control) in routers.into_iter().zip(listeners).zip(&controls) {
            let app = router.layer(axum::middleware::from_fn_with_state(
                control.clone(),
                common::gate,
            ));
            tasks.push(tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, app).await {
                    eprintln!("sandbox server stopped: {e}");
                }
            }));
        }
        Ok(Sandbox {
            genesys,
            dialer,
            jmap,
            crm,
            controls,
            addrs,
            people,
            tasks,
        })
    }

    /// The synthetic people.
    pub fn people(&self) -> &[Person] {
        &self.people
    }

    /// The person present in all four systems that the demo looks for.
    pub fn demo_person(&self) -> &Person {
        &self.people[0]
    }

    /// `http://127.0.0.1:PORT` of a system.
    pub fn url(&self, system: System) -> String {
        format!("http://{}", self.addrs[system.index()])
    }

    /// The rate limit and fault switches of a system.
    pub fn controls(&self, system: System) -> &Controls {
        &self.controls[system.index()]
    }

    /// The configuration values each connector needs, as (key, value).
    pub fn connector_config(&self, system: System) -> Vec<(&'static str, String)> {
        match system {
            System::Acd => vec![
                ("base_url", self.url(system)),
                ("login_url", self.url(system)),
            ],
            System::Dialer => vec![
                ("base_url", self.url(system)),
                ("dnc_list", dialer::DNC_LIST.into()),
                ("suppression_list", dialer::SUPPRESSION_LIST.into()),
            ],
            System::Mail => vec![(
                "session_url",
                format!("{}/.well-known/jmap", self.url(system)),
            )],
            System::Crm => vec![("base_url", self.url(system))],
        }
    }

    /// A ready-to-use oubli.toml: one system per stand-in, each granted its
    /// stand-in's loopback origin only. National phone numbers are British
    /// (`[identifiers] default_region`, which the host also hands to the
    /// connectors). Tokens are read from `<secrets_dir>/<system>.token` (see
    /// [`Sandbox::write_secrets`]); connectors from
    /// `<connectors_dir>/<connector>.wasm`.
    pub fn config_toml(&self, connectors_dir: &Path, secrets_dir: &Path) -> String {
        let mut s = String::from(
            "# Generated by oubli-sandbox: one system per stand-in, each granted\n\
             # its stand-in's loopback origin and nothing else.\n\n\
             [identifiers]\ndefault_region = \"GB\"\n",
        );
        for sys in System::ALL {
            s += &format!(
                "\n[systems.{name}]\nconnector = {path:?}\nallow_hosts = [{url:?}]\nallow_loopback = true\n\n[systems.{name}.config]\n",
                name = sys.name(),
                path = connectors_dir
                    .join(format!("{}.wasm", sys.connector()))
                    .display()
                    .to_string(),
                url = self.url(sys),
            );
            for (k, v) in self.connector_config(sys) {
                s += &format!("{k} = {v:?}\n");
            }
            s += &format!("\n[systems.{}.secrets]\n", sys.name());
            for (key, file) in sys.secret_files() {
                s += &format!(
                    "{key} = {{ file = {:?} }}\n",
                    secrets_dir.join(file).display().to_string()
                );
            }
        }
        // The stand-in's search reads its messages directly, so there is no
        // index to wait for before verifying an erasure (a real server's
        // default is 2 s: see `search_settle` in docs/REQUESTS.md).
        s += &format!(
            "\n[policy.systems.{}]\nsearch_settle = \"0s\"\n",
            System::Mail.name()
        );
        s
    }

    /// Write each system's credentials to `dir` (see
    /// [`System::secret_files`]), mode 0600.
    pub fn write_secrets(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        for (sys, (key, file)) in System::ALL
            .iter()
            .flat_map(|s| s.secret_files().into_iter().map(move |f| (*s, f)))
        {
            let path = dir.join(file);
            let value = match (sys, key) {
                (System::Acd, "client_id") => genesys::CLIENT_ID,
                (System::Acd, _) => genesys::CLIENT_SECRET,
                _ => sys.token(),
            };
            std::fs::write(&path, value)?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
            }
        }
        Ok(())
    }
}
