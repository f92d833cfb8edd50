//! What the integrator gives one connector, as runtime values: the component,
//! the network grants, settings, secrets and limits. The core's config reads
//! `oubli.toml` into these; the runtime never sees the file.
//!
//! [`Origin`] is the one normaliser of `scheme://host:port`: the config's
//! grants, the manifests' host patterns and the outbound filter's requests
//! all go through [`Origin::new`], so the three cannot disagree on what a
//! host is.
//!
//! ```
//! use oubli_runtime::Origin;
//! let o = Origin::parse("https://CRM.example.com/").unwrap();
//! assert_eq!(o.to_string(), "https://crm.example.com:443");
//! assert_eq!(Origin::new("https", "[::1]", None).unwrap().to_string(), "https://[::1]:443");
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;
use zeroize::Zeroizing;

/// Everything needed to load one connector as a configured system.
#[derive(Debug, Clone)]
pub struct ConnectorSpec {
    /// The integrator's name for the system (`crm`, `support-mail`).
    pub name: String,
    /// The connector component file.
    pub component: PathBuf,
    /// What it may reach.
    pub grants: NetworkGrants,
    /// Values it reads with `host.config`, as the integrator set them.
    pub settings: BTreeMap<String, String>,
    /// Values the host itself provides (keys under `oubli.`, such as
    /// `oubli.region`), readable by every connector without configuration.
    pub host_settings: BTreeMap<String, String>,
    /// Secrets it reads with `host.secret`, by source.
    pub secrets: BTreeMap<String, SecretSource>,
    /// Resource limits.
    pub limits: Limits,
    /// The SHA-256 the component must have (lowercase hex), when the
    /// integrator pinned it: any other file is refused before it is
    /// compiled.
    pub sha256: Option<String>,
}

impl ConnectorSpec {
    /// A spec with nothing granted and default limits.
    pub fn new(name: impl Into<String>, component: impl Into<PathBuf>) -> ConnectorSpec {
        ConnectorSpec {
            name: name.into(),
            component: component.into(),
            grants: NetworkGrants::default(),
            settings: BTreeMap::new(),
            host_settings: BTreeMap::new(),
            secrets: BTreeMap::new(),
            limits: Limits::default(),
            sha256: None,
        }
    }
}

/// Outbound network grants of one connector.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkGrants {
    /// Origins it may call.
    pub hosts: Vec<Origin>,
    /// Whether granted names may resolve to loopback addresses.
    pub allow_loopback: bool,
    /// Whether granted names may resolve to private addresses (RFC 1918,
    /// unique-local, carrier-grade NAT). Link-local and cloud metadata
    /// addresses are never reachable.
    pub allow_private: bool,
}

/// `scheme://host:port`, normalised: lowercase scheme and host, IPv6 without
/// brackets, IPv4 and IPv6 literals in canonical form, explicit port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Origin {
    /// `http` or `https`.
    pub scheme: String,
    /// The host name or IP literal (IPv6 without brackets).
    pub host: String,
    /// The port.
    pub port: u16,
}

impl Origin {
    /// Parse `scheme://host[:port]` (a trailing `/` is accepted, nothing
    /// else after the authority).
    pub fn parse(s: &str) -> Result<Origin, String> {
        let url = url::Url::parse(s).map_err(|e| format!("{s:?} is not a URL: {e}"))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!("{s:?}: credentials do not belong in a grant"));
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(format!(
                "{s:?}: a grant is scheme://host:port, without a path or query"
            ));
        }
        Origin::from_url(&url).map_err(|e| format!("{s:?}: {e}"))
    }

    /// The origin of a scheme, a host (name, IPv4 or IPv6 literal, with or
    /// without brackets) and a port (the scheme's default when `None`).
    pub fn new(scheme: &str, host: &str, port: Option<u16>) -> Result<Origin, String> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let authority = if bare.contains(':') {
            format!("[{bare}]")
        } else {
            bare.to_string()
        };
        let mut text = format!("{}://{authority}", scheme.to_ascii_lowercase());
        if let Some(p) = port {
            text.push_str(&format!(":{p}"));
        }
        let url = url::Url::parse(&text).map_err(|e| format!("not a valid host: {e}"))?;
        Origin::from_url(&url)
    }

    fn from_url(url: &url::Url) -> Result<Origin, String> {
        let scheme = url.scheme();
        if scheme != "http" && scheme != "https" {
            return Err("only http and https are supported".into());
        }
        let host = match url.host() {
            Some(url::Host::Domain(d)) => d.to_ascii_lowercase(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => return Err("has no host".into()),
        };
        let port = url.port_or_known_default().ok_or("has no port")?;
        Ok(Origin {
            scheme: scheme.to_string(),
            host,
            port,
        })
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}://[{}]:{}", self.scheme, self.host, self.port)
        } else {
            write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
        }
    }
}

/// Where a secret comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// An environment variable of the host process.
    Env(String),
    /// A file on the host (its content, trailing newline removed).
    File(PathBuf),
}

impl fmt::Display for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Env(v) => write!(f, "environment variable {v}"),
            SecretSource::File(p) => write!(f, "file {}", p.display()),
        }
    }
}

impl SecretSource {
    /// Read the value. The error names the source, never the value.
    pub fn resolve(&self) -> Result<Secret, String> {
        match self {
            SecretSource::Env(var) => std::env::var(var)
                .map(Secret::new)
                .map_err(|_| format!("environment variable {var} is not set (or not UTF-8)")),
            SecretSource::File(path) => std::fs::read_to_string(path)
                .map(|s| Secret::new(s.trim_end_matches(['\r', '\n']).to_string()))
                .map_err(|e| format!("cannot read {}: {e}", path.display())),
        }
    }
}

/// A secret value. Its `Debug` never shows it, and it is wiped on drop.
#[derive(Clone)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wrap a value.
    pub fn new(value: String) -> Self {
        Secret(Zeroizing::new(value))
    }
    /// The value; handle with care.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Resource limits of one connector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory per instance, in bytes.
    pub memory: u64,
    /// Wall-clock deadline of one operation.
    pub timeout: Duration,
    /// Operations running at once.
    pub concurrency: u32,
    /// Largest result an operation may return, in bytes.
    pub max_output: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory: 64 << 20,
            timeout: Duration::from_secs(30),
            concurrency: 4,
            max_output: 16 << 20,
        }
    }
}

/// The largest memory limit a connector may be given.
pub const MAX_MEMORY: u64 = 1 << 30;
/// The longest operation timeout.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);
/// The most concurrent operations per connector.
pub const MAX_CONCURRENCY: u32 = 64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_normal_form_for_every_spelling_of_an_origin() {
        let a = Origin::parse("https://API.Example.COM").unwrap();
        let b = Origin::new("HTTPS", "api.example.com", Some(443)).unwrap();
        assert_eq!(a, b);
        let v6 = Origin::new("http", "[0:0:0:0:0:0:0:1]", Some(8080)).unwrap();
        assert_eq!(v6.host, "::1");
        assert_eq!(v6, Origin::parse("http://[::1]:8080/").unwrap());
        assert_eq!(
            Origin::new("http", "127.000.000.001", None).unwrap().host,
            "127.0.0.1"
        );
        assert!(Origin::parse("ftp://a.example.com").is_err());
        assert!(Origin::parse("https://a.example.com/api").is_err());
        assert!(Origin::parse("https://u:p@a.example.com").is_err());
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let s = Secret::new("hunter2-token".into());
        assert_eq!(format!("{s:?}"), "Secret([redacted])");
        assert_eq!(s.expose(), "hunter2-token");
    }
}
