//! `oubli.toml`: the integrator's configuration, parsed strictly.
//!
//! Unknown keys are errors, every value is checked here, and every error is
//! one line naming the file and the key (`oubli.toml: plugins.crm.limits.memory:
//! "64 XB" is not a size`). Relative paths are relative to the config file.
//! Secrets are named here (an environment variable or a file) and resolved
//! only when a plugin loads ([`PluginConfig::resolve_secrets`]), so their
//! values never sit in a parsed config.
//!
//! This module knows nothing of wasmtime: it only describes what the
//! integrator grants.
//!
//! ```
//! let cfg = oubli::config::Config::parse(
//!     std::path::Path::new("oubli.toml"),
//!     r#"
//!     [plugins.crm]
//!     path = "crm.wasm"
//!     allow_hosts = ["https://crm.example.com"]
//!     "#,
//! ).unwrap();
//! assert_eq!(cfg.plugins[0].grants.hosts[0].to_string(), "https://crm.example.com:443");
//! ```

use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use zeroize::Zeroizing;

/// A configuration error: one line, naming the file and the key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// The config file.
        file: String,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML is malformed, or has an unknown key or a wrong type.
    #[error("{file}:{line}:{column}: {message}")]
    Syntax {
        /// The config file.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A value is not acceptable.
    #[error("{file}: {key}: {message}")]
    Invalid {
        /// The config file.
        file: String,
        /// The dotted key (`plugins.crm.limits.memory`).
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// The whole configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where it was read from.
    pub file: PathBuf,
    /// Host-wide runtime settings.
    pub runtime: RuntimeSettings,
    /// The configured plugins, in name order.
    pub plugins: Vec<PluginConfig>,
    /// How identifiers are read.
    pub identifiers: IdentifierSettings,
}

/// How identifiers are read (`[identifiers]`).
#[derive(Debug, Clone, Default)]
pub struct IdentifierSettings {
    /// ISO 3166 region for phone numbers given in national form (`FR`).
    pub default_region: Option<String>,
}

/// Host-wide runtime settings (`[runtime]`).
#[derive(Debug, Clone, Default)]
pub struct RuntimeSettings {
    /// Where compiled plugin code is cached; `None` means the default
    /// (`$XDG_CACHE_HOME/oubli/compiled` or `~/.cache/oubli/compiled`).
    pub cache_dir: Option<PathBuf>,
}

/// One plugin (`[plugins.NAME]`).
#[derive(Debug, Clone)]
pub struct PluginConfig {
    /// The integrator's name for it (the table key).
    pub name: String,
    /// The config file it comes from (named in errors).
    pub file: PathBuf,
    /// The component file.
    pub path: PathBuf,
    /// Whether it takes part in requests.
    pub enabled: bool,
    /// What it may reach.
    pub grants: NetworkGrants,
    /// Values it reads with `host.config`.
    pub config: BTreeMap<String, String>,
    /// Secrets it reads with `host.secret`, by source.
    pub secrets: BTreeMap<String, SecretSource>,
    /// Resource limits.
    pub limits: Limits,
}

/// Outbound network grants of one plugin.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkGrants {
    /// Origins it may call (`allow_hosts`).
    pub hosts: Vec<Origin>,
    /// Whether granted names may resolve to loopback addresses.
    pub allow_loopback: bool,
    /// Whether granted names may resolve to private addresses (RFC 1918,
    /// unique-local, carrier-grade NAT). Link-local and cloud metadata
    /// addresses are never reachable.
    pub allow_private: bool,
}

/// `scheme://host:port`, normalised (lowercase host, explicit port).
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
        let scheme = url.scheme();
        if scheme != "http" && scheme != "https" {
            return Err(format!("{s:?}: only http and https are supported"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!("{s:?}: credentials do not belong in a grant"));
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(format!(
                "{s:?}: a grant is scheme://host:port, without a path or query"
            ));
        }
        let host = match url.host() {
            Some(url::Host::Domain(d)) => d.to_ascii_lowercase(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => return Err(format!("{s:?} has no host")),
        };
        let port = url
            .port_or_known_default()
            .ok_or_else(|| format!("{s:?} has no port"))?;
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

/// Resource limits of one plugin (`[plugins.NAME.limits]`).
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

/// The largest memory limit a plugin may be given.
pub const MAX_MEMORY: u64 = 1 << 30;
/// The longest operation timeout.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);
/// The most concurrent operations per plugin.
pub const MAX_CONCURRENCY: u32 = 64;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    runtime: RawRuntime,
    #[serde(default)]
    plugins: BTreeMap<String, RawPlugin>,
    #[serde(default)]
    identifiers: RawIdentifiers,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawIdentifiers {
    default_region: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRuntime {
    cache_dir: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlugin {
    path: PathBuf,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    allow_hosts: Vec<String>,
    #[serde(default)]
    allow_loopback: bool,
    #[serde(default)]
    allow_private: bool,
    #[serde(default)]
    config: BTreeMap<String, RawValue>,
    #[serde(default)]
    secrets: BTreeMap<String, RawSecret>,
    #[serde(default)]
    limits: RawLimits,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawValue {
    String(String),
    Integer(i64),
    Float(f64),
    Bool(bool),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSecret {
    env: Option<String>,
    file: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    memory: Option<String>,
    timeout: Option<String>,
    concurrency: Option<u32>,
    max_output: Option<String>,
}

impl Config {
    /// Read and check a config file.
    pub fn load(file: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
            file: file.display().to_string(),
            source,
        })?;
        Config::parse(file, &text)
    }

    /// Check config text; `file` names it in errors and anchors relative
    /// paths.
    pub fn parse(file: &Path, text: &str) -> Result<Config, ConfigError> {
        let file_name = file.display().to_string();
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
            ConfigError::Syntax {
                file: file_name.clone(),
                line,
                column,
                message: e.message().replace('\n', " "),
            }
        })?;
        let base = file.parent().unwrap_or(Path::new("")).to_path_buf();
        let invalid = |key: String, message: String| ConfigError::Invalid {
            file: file_name.clone(),
            key,
            message,
        };

        let mut plugins = Vec::with_capacity(raw.plugins.len());
        for (name, p) in raw.plugins {
            let key = |k: &str| format!("plugins.{name}.{k}");
            if !valid_name(&name) {
                return Err(invalid(
                    format!("plugins.{name}"),
                    "plugin names are lowercase letters, digits and dashes".into(),
                ));
            }
            let mut hosts = Vec::with_capacity(p.allow_hosts.len());
            for h in &p.allow_hosts {
                hosts.push(Origin::parse(h).map_err(|m| invalid(key("allow_hosts"), m))?);
            }
            let mut config = BTreeMap::new();
            for (k, v) in p.config {
                let v = match v {
                    RawValue::String(s) => s,
                    RawValue::Integer(i) => i.to_string(),
                    RawValue::Float(f) => f.to_string(),
                    RawValue::Bool(b) => b.to_string(),
                };
                config.insert(k, v);
            }
            let mut secrets = BTreeMap::new();
            for (k, s) in p.secrets {
                let source = match (s.env, s.file) {
                    (Some(var), None) if !var.is_empty() => SecretSource::Env(var),
                    (None, Some(path)) => SecretSource::File(base.join(path)),
                    _ => {
                        return Err(invalid(
                            key(&format!("secrets.{k}")),
                            "give exactly one of `env = \"VAR\"` or `file = \"PATH\"`".into(),
                        ));
                    }
                };
                secrets.insert(k, source);
            }
            let limits =
                limits(p.limits).map_err(|(k, m)| invalid(key(&format!("limits.{k}")), m))?;
            plugins.push(PluginConfig {
                path: base.join(&p.path),
                file: file.to_path_buf(),
                name,
                enabled: p.enabled,
                grants: NetworkGrants {
                    hosts,
                    allow_loopback: p.allow_loopback,
                    allow_private: p.allow_private,
                },
                config,
                secrets,
                limits,
            });
        }
        if let Some(r) = &raw.identifiers.default_region
            && (r.len() != 2 || !r.bytes().all(|b| b.is_ascii_alphabetic()))
        {
            return Err(invalid(
                "identifiers.default_region".into(),
                format!("{r:?} is not an ISO 3166 region code such as FR"),
            ));
        }
        Ok(Config {
            identifiers: IdentifierSettings {
                default_region: raw
                    .identifiers
                    .default_region
                    .map(|r| r.to_ascii_uppercase()),
            },
            file: file.to_path_buf(),
            runtime: RuntimeSettings {
                cache_dir: raw.runtime.cache_dir.map(|d| base.join(d)),
            },
            plugins,
        })
    }
}

impl PluginConfig {
    /// Read the plugin's secrets from their sources. An unset variable or an
    /// unreadable file is an error naming the key and the source, never the
    /// value.
    pub fn resolve_secrets(&self) -> Result<BTreeMap<String, Secret>, ConfigError> {
        let mut out = BTreeMap::new();
        for (key, source) in &self.secrets {
            let invalid = |message: String| ConfigError::Invalid {
                file: self.file.display().to_string(),
                key: format!("plugins.{}.secrets.{key}", self.name),
                message,
            };
            let value = match source {
                SecretSource::Env(var) => std::env::var(var).map_err(|_| {
                    invalid(format!(
                        "environment variable {var} is not set (or not UTF-8)"
                    ))
                })?,
                SecretSource::File(path) => std::fs::read_to_string(path)
                    .map_err(|e| invalid(format!("cannot read {}: {e}", path.display())))?
                    .trim_end_matches(['\r', '\n'])
                    .to_string(),
            };
            out.insert(key.clone(), Secret::new(value));
        }
        Ok(out)
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn limits(raw: RawLimits) -> Result<Limits, (&'static str, String)> {
    let d = Limits::default();
    let memory = match raw.memory {
        Some(s) => parse_size(&s).map_err(|m| ("memory", m))?,
        None => d.memory,
    };
    if !(1 << 20..=MAX_MEMORY).contains(&memory) {
        return Err((
            "memory",
            format!("must be between 1MiB and 1GiB, got {memory} bytes"),
        ));
    }
    let timeout = match raw.timeout {
        Some(s) => parse_duration(&s).map_err(|m| ("timeout", m))?,
        None => d.timeout,
    };
    if timeout < Duration::from_millis(10) || timeout > MAX_TIMEOUT {
        return Err(("timeout", "must be between 10ms and 1h".into()));
    }
    let concurrency = raw.concurrency.unwrap_or(d.concurrency);
    if !(1..=MAX_CONCURRENCY).contains(&concurrency) {
        return Err((
            "concurrency",
            format!("must be between 1 and {MAX_CONCURRENCY}"),
        ));
    }
    let max_output = match raw.max_output {
        Some(s) => parse_size(&s).map_err(|m| ("max_output", m))?,
        None => d.max_output.min(memory),
    };
    if max_output < 1024 || max_output > memory {
        return Err((
            "max_output",
            "must be at least 1KiB and at most the memory limit".into(),
        ));
    }
    Ok(Limits {
        memory,
        timeout,
        concurrency,
        max_output,
    })
}

/// Parse a size: `1048576`, `512KiB`, `64MiB`, `1GiB` (binary) or `64MB`
/// (decimal).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (use e.g. 64MiB)"))?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return Err(format!("{s:?} is not a size (use e.g. 64MiB)")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// Parse a duration: `500ms`, `30s`, `5m`, `1h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (use e.g. 30s or 500ms)"))?;
    match unit.trim() {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" | "min" => Ok(Duration::from_secs(n.saturating_mul(60))),
        "h" => Ok(Duration::from_secs(n.saturating_mul(3600))),
        _ => Err(format!("{s:?} is not a duration (use e.g. 30s or 500ms)")),
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/etc/oubli/oubli.toml"), text)
    }

    fn err(text: &str) -> String {
        let e = parse(text).expect_err("must be refused").to_string();
        assert!(!e.contains('\n'), "one line: {e}");
        e
    }

    #[test]
    fn full_plugin_entry_parses_with_paths_relative_to_the_file() {
        let c = parse(
            r#"
            [runtime]
            cache_dir = "cache"
            [plugins.crm]
            path = "plugins/crm.wasm"
            allow_hosts = ["https://CRM.example.com", "http://127.0.0.1:8080/"]
            allow_loopback = true
            config = { base_url = "https://crm.example.com/api", page_size = 50, sandbox = false }
            secrets = { token = { env = "CRM_TOKEN" }, key = { file = "keys/crm" } }
            limits = { memory = "32MiB", timeout = "1500ms", concurrency = 2, max_output = "1MiB" }
            "#,
        )
        .unwrap();
        let p = &c.plugins[0];
        assert_eq!(p.path, Path::new("/etc/oubli/plugins/crm.wasm"));
        assert_eq!(
            c.runtime.cache_dir.as_deref(),
            Some(Path::new("/etc/oubli/cache"))
        );
        assert_eq!(p.grants.hosts[0].to_string(), "https://crm.example.com:443");
        assert_eq!(p.grants.hosts[1].to_string(), "http://127.0.0.1:8080");
        assert!(p.grants.allow_loopback && !p.grants.allow_private);
        assert_eq!(p.config["page_size"], "50");
        assert_eq!(p.config["sandbox"], "false");
        assert_eq!(p.secrets["token"], SecretSource::Env("CRM_TOKEN".into()));
        assert_eq!(
            p.secrets["key"],
            SecretSource::File("/etc/oubli/keys/crm".into())
        );
        assert_eq!(p.limits.memory, 32 << 20);
        assert_eq!(p.limits.timeout, Duration::from_millis(1500));
        assert_eq!(p.limits.max_output, 1 << 20);
        assert!(p.enabled);
    }

    #[test]
    fn unknown_key_is_refused_with_its_position() {
        let e = err("[plugins.crm]\npath = \"x.wasm\"\nallow_host = []\n");
        assert!(
            e.starts_with("/etc/oubli/oubli.toml:3:1: unknown field `allow_host`"),
            "{e}"
        );
    }

    #[test]
    fn bad_limit_names_the_key() {
        let e = err("[plugins.crm]\npath = \"x.wasm\"\nlimits = { memory = \"64 XB\" }\n");
        assert_eq!(
            e,
            "/etc/oubli/oubli.toml: plugins.crm.limits.memory: \"64 XB\" is not a size (use e.g. 64MiB)"
        );
        let e = err("[plugins.crm]\npath = \"x.wasm\"\nlimits = { concurrency = 0 }\n");
        assert!(
            e.contains("plugins.crm.limits.concurrency: must be between 1 and 64"),
            "{e}"
        );
        let e = err("[plugins.crm]\npath = \"x.wasm\"\nlimits = { timeout = \"forever\" }\n");
        assert!(e.contains("plugins.crm.limits.timeout"), "{e}");
    }

    #[test]
    fn grants_must_be_bare_origins() {
        let e = err(
            "[plugins.crm]\npath = \"x.wasm\"\nallow_hosts = [\"https://a.example.com/api\"]\n",
        );
        assert!(
            e.contains("plugins.crm.allow_hosts") && e.contains("without a path"),
            "{e}"
        );
        let e = err("[plugins.crm]\npath = \"x.wasm\"\nallow_hosts = [\"ftp://a.example.com\"]\n");
        assert!(e.contains("only http and https"), "{e}");
    }

    #[test]
    fn secret_needs_exactly_one_source_and_reports_unset_variables() {
        let e = err(
            "[plugins.crm]\npath = \"x.wasm\"\nsecrets = { t = { env = \"A\", file = \"b\" } }\n",
        );
        assert!(e.contains("plugins.crm.secrets.t: give exactly one"), "{e}");
        let c = parse("[plugins.crm]\npath = \"x.wasm\"\nsecrets = { t = { env = \"OUBLI_TEST_SURELY_UNSET_VAR\" } }\n")
            .unwrap();
        let e = c.plugins[0].resolve_secrets().unwrap_err().to_string();
        assert_eq!(
            e,
            "/etc/oubli/oubli.toml: plugins.crm.secrets.t: environment variable OUBLI_TEST_SURELY_UNSET_VAR is not set (or not UTF-8)"
        );
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let s = Secret::new("hunter2-token".into());
        assert_eq!(format!("{s:?}"), "Secret([redacted])");
        assert_eq!(s.expose(), "hunter2-token");
    }

    #[test]
    fn missing_path_and_malformed_toml_are_one_line() {
        let e = err("[plugins.crm]\nenabled = true\n");
        assert!(e.contains("missing field `path`"), "{e}");
        let e = err("[plugins.crm\n");
        assert!(e.starts_with("/etc/oubli/oubli.toml:1:"), "{e}");
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("5 MB"), Ok(5_000_000));
        assert!(parse_size("-1MiB").is_err());
        assert!(parse_size("99999999999999GiB").is_err());
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("10").is_err());
    }
}
