//! `oubli.toml`: the integrator's configuration, parsed strictly.
//!
//! Unknown keys are errors, every value is checked here, and every error is
//! one line naming the file and the key (`oubli.toml: systems.crm.limits.memory:
//! "64 XB" is not a size`). Relative paths are relative to the config file.
//! Secrets are named here (an environment variable or a file) and resolved
//! only when a connector loads, so their values never sit in a parsed config.
//!
//! This module owns the file's schema only: what it describes becomes the
//! runtime's values ([`ConnectorSpec`], [`Origin`], [`Limits`]) and the core's
//! ([`Region`]), each parsed once, here.
//!
//! ```
//! let cfg = oubli_core::config::Config::parse(
//!     std::path::Path::new("oubli.toml"),
//!     r#"
//!     [identifiers]
//!     default_region = "GB"
//!     [systems.crm]
//!     connector = "crm.wasm"
//!     allow_hosts = ["https://crm.example.com"]
//!     "#,
//! ).unwrap();
//! let crm = &cfg.systems[0].spec;
//! assert_eq!(crm.grants.hosts[0].to_string(), "https://crm.example.com:443");
//! assert_eq!(crm.host_settings["oubli.calling-code"], "44");
//! ```

use crate::identifiers::Region;
use crate::rights::policy::{Hold, Policy, Recipient, SystemPolicy, Via};
use oubli_model::EraseMode;
use oubli_runtime::capability::settings::HOST_PREFIX;
use oubli_runtime::{
    ConnectorSpec, Limits, MAX_CONCURRENCY, MAX_MEMORY, MAX_TIMEOUT, NetworkGrants, Origin,
    SecretSource,
};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
        /// The dotted key (`systems.crm.limits.memory`).
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
    /// The configured systems, in name order.
    pub systems: Vec<SystemConfig>,
    /// How identifiers are read.
    pub identifiers: IdentifierSettings,
    /// The store: a SQLite file or a `postgres://` URL (`[store] url`);
    /// by default `oubli.db` next to the config file.
    pub store_url: String,
    /// The keyring directory (`[keys] dir`); by default `oubli-keys` next
    /// to the config file.
    pub keys_dir: PathBuf,
    /// The policy requests are carried out under (`[policy]`).
    pub policy: Policy,
    /// The HTTP API (`[api]`).
    pub api: ApiSettings,
    /// Who the controller is (`[controller]`): what bundles, notices and
    /// the record of processing name.
    pub controller: Controller,
    /// The register of processing (`[register]`, or the file its `file`
    /// names); `None` when there is none at all.
    pub register: Option<crate::register::Register>,
    /// `[retention]`: retention policies and how sweeps run.
    pub retention: crate::retention::RetentionSettings,
    /// The webhook secrets of `[[policy.recipients]]`, by name (read when
    /// a notification is sent; never snapshotted into a request).
    pub recipient_secrets: BTreeMap<String, SecretSource>,
}

/// The controller, as the subject is told (`[controller]`; Art. 13(1)(a)
/// and (b), 15(1)(f) and (h), 30(1)(a)).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Controller {
    /// Its name (`name`).
    pub name: Option<String>,
    /// How to reach it about personal data (`contact`).
    pub contact: Option<String>,
    /// The data protection officer's contact (`dpo`).
    pub dpo: Option<String>,
    /// The supervisory authority a subject may complain to
    /// (`authority`, `authority_url`).
    pub authority: Option<String>,
    /// Its web address.
    pub authority_url: Option<String>,
}

/// The HTTP API's settings (`[api]`).
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Address to listen on (`listen`; default `127.0.0.1:8440`).
    pub listen: String,
    /// TLS certificate chain and private key, PEM (`tls_cert`, `tls_key`).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Serve plain HTTP on an address that is not loopback
    /// (`allow_plain_http`; default false: only behind a TLS proxy).
    pub allow_plain_http: bool,
    /// Workers run inside `oubli serve` (`workers`; default 1, 0 for none).
    pub workers: usize,
    /// How often, at most, a tree head of the audit log is signed while
    /// the log grows (`sign_audit_every`; default 500 ms: an event is
    /// under a signed head within about that long).
    pub sign_audit_every: Duration,
    /// Largest request body accepted, in bytes (`max_body`; default 64 KiB).
    pub max_body: usize,
    /// How long a client may take to send a request's headers, and how long
    /// a kept-alive connection may wait idle for the next request
    /// (`header_timeout`; default 30 s): slow or silent connections are
    /// closed.
    pub header_timeout: Duration,
    /// Connections served at once (`max_connections`; default 512): more
    /// wait in the listen queue until one closes, so slow clients cannot
    /// exhaust the process's file descriptors.
    pub max_connections: usize,
    /// Connections one client address may hold at once
    /// (`max_connections_per_address`; default 64; trusted proxies are not
    /// limited): one client cannot take every slot.
    pub max_connections_per_address: usize,
    /// Proxies whose `X-Forwarded-For` is believed (`trusted_proxies`:
    /// addresses or CIDR ranges; default none): behind them, the client's
    /// own address is what failed logins are counted by.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Failed authentications from one client within a minute before it
    /// waits out the rest of the minute (`lockout_after`; default 10; 0
    /// turns the lockout off, for a proxy that limits logins itself). A
    /// valid token is never locked out.
    pub lockout_after: u32,
    /// Webhooks told of every state change (`[[api.webhooks]]`).
    pub webhooks: Vec<WebhookSettings>,
    /// The operator console served at `/` (`[api.console]`).
    pub console: ConsoleSettings,
    /// The privacy center for data subjects (`[api.privacy]`).
    pub privacy: Option<PrivacySettings>,
}

/// The privacy center (`[api.privacy]`): the pages where data subjects
/// file a request, prove who they are with a code sent by email, follow it
/// and receive the answer.
#[derive(Debug, Clone)]
pub struct PrivacySettings {
    /// Serve it on its own listener instead of beside the API (`listen`):
    /// it faces the internet, the console and the API need not.
    pub listen: Option<String>,
    /// How subjects reach it (`public_url`, e.g.
    /// `https://privacy.example.com`): the links in its emails.
    pub public_url: url::Url,
    /// How long a verification code is good for (`code_ttl`; default 10m).
    pub code_ttl: Duration,
    /// Wrong codes before a request is locked out (`max_attempts`;
    /// default 5).
    pub max_attempts: u32,
    /// The largest answer sent by email, encrypted, when a subject asks
    /// for that instead of a download (`mail_max_mb`; default 20).
    pub mail_max: u64,
    /// Codes sent to one address per hour at most (`codes_per_address`;
    /// default 5): beyond, none is sent, and the page says the same.
    pub codes_per_address: u32,
    /// Requests started from one client address per hour at most
    /// (`starts_per_client`; default 20).
    pub starts_per_client: u32,
    /// How long a status link works after its request ends (`link_ttl`;
    /// default 30d).
    pub link_ttl: Duration,
    /// How long a download stays open after its code (`download_ttl`;
    /// default 1h).
    pub download_ttl: Duration,
    /// Kinds an operator must attest even when every identifier was
    /// proven by a code (`attest`; default none). A phone number, which
    /// no code proves here, always needs an operator.
    pub attest: Vec<oubli_model::RequestKind>,
    /// Tell the subject by email when their request changes state
    /// (`notify`; default true).
    pub notify: bool,
    /// The mail relay (`[api.privacy.smtp]`).
    pub smtp: SmtpSettings,
    /// A gateway that sends text messages (`[api.privacy.sms]`): phone
    /// numbers are then proven by a code too.
    pub sms: Option<SmsSettings>,
    /// A CAPTCHA before "send me a code" (`[api.privacy.captcha]`); none
    /// by default: codes and rate limits do its work without sending
    /// every visitor to a third party.
    pub captcha: Option<CaptchaSettings>,
}

/// A CAPTCHA before a code is sent (`[api.privacy.captcha]`), any service
/// that answers the common `siteverify` protocol (hCaptcha, Cloudflare
/// Turnstile, reCAPTCHA): its widget on the form, its token checked on the
/// server by a POST of `secret`, `response` and `remoteip` to
/// `verify_url`, whose JSON must say `"success": true`.
#[derive(Debug, Clone)]
pub struct CaptchaSettings {
    /// Where tokens are checked (`https://api.hcaptcha.com/siteverify`).
    pub verify_url: url::Url,
    /// The service's secret for this site.
    pub secret: SecretSource,
    /// The site key the widget shows.
    pub site_key: String,
    /// The widget's script (`https://js.hcaptcha.com/1/api.js`).
    pub script: url::Url,
    /// The class of the widget's element (`h-captcha`, `cf-turnstile`,
    /// `g-recaptcha`).
    pub widget_class: String,
    /// The form field the widget fills (`h-captcha-response`,
    /// `cf-turnstile-response`, `g-recaptcha-response`).
    pub field: String,
    /// The origins the widget loads from and talks to, allowed by the
    /// form page's CSP (`https://hcaptcha.com`, `https://*.hcaptcha.com`).
    pub origins: Vec<String>,
}

/// A text-message gateway (`[api.privacy.sms]`): oubli POSTs
/// `{"to": "+33…", "text": "…"}` to `url`, signed as webhooks are
/// (`Oubli-Signature`, HMAC-SHA-256 under `secret`), and takes any 2xx as
/// sent.
#[derive(Debug, Clone)]
pub struct SmsSettings {
    /// Where to POST (https, or http to this machine).
    pub url: url::Url,
    /// The signing secret.
    pub secret: SecretSource,
}

/// The mail relay the privacy center sends through (`[api.privacy.smtp]`).
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    /// Its host.
    pub host: String,
    /// Its port (`port`; default 587 for STARTTLS, 465 for TLS, 25 for
    /// none).
    pub port: u16,
    /// `starttls` (default), `tls`, or `none` (a relay on this machine
    /// only).
    pub tls: SmtpTls,
    /// The account, when the relay wants one.
    pub username: Option<String>,
    /// Its password.
    pub password: Option<SecretSource>,
    /// The sender (`from`, e.g. `Privacy <privacy@example.com>`).
    pub from: String,
}

/// How the privacy center talks to its relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain, upgraded with STARTTLS (required).
    StartTls,
    /// TLS from the first byte.
    Tls,
    /// No TLS: only for a relay on the loopback interface.
    None,
}

/// The operator console (`[api.console]`).
#[derive(Debug, Clone)]
pub struct ConsoleSettings {
    /// Serve it (`enabled`; default true).
    pub enabled: bool,
    /// A session unused this long ends (`idle_timeout`; default 30m).
    pub idle_timeout: Duration,
    /// A session ends this long after sign-in, used or not
    /// (`absolute_timeout`; default 12h).
    pub absolute_timeout: Duration,
    /// Sign-in with the organisation's identity provider
    /// (`[api.console.oidc]`).
    pub oidc: Option<OidcSettings>,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        ConsoleSettings {
            enabled: true,
            idle_timeout: Duration::from_secs(30 * 60),
            absolute_timeout: Duration::from_secs(12 * 3600),
            oidc: None,
        }
    }
}

/// OpenID Connect sign-in (`[api.console.oidc]`): authorization code with
/// PKCE against `issuer`; the role comes from the claim `roles_claim`
/// through `roles` (a claim value to a role; the highest mapped role wins,
/// and a user with no mapped value is refused).
#[derive(Debug, Clone)]
pub struct OidcSettings {
    /// The provider's issuer URL (its discovery document is read from it).
    pub issuer: url::Url,
    /// This client's id at the provider.
    pub client_id: String,
    /// Its secret, if it is a confidential client.
    pub client_secret: Option<SecretSource>,
    /// Where the provider sends the browser back: this console's
    /// `/signin/oidc/callback` as users reach it.
    pub redirect_url: url::Url,
    /// The claim that carries the user's groups or roles (`roles_claim`;
    /// default `groups`).
    pub roles_claim: String,
    /// A claim value to a role: `auditor`, `operator`, `approver`, `admin`.
    pub roles: BTreeMap<String, String>,
    /// The claim whose value names the user in the audit trail
    /// (`name_claim`; default `preferred_username`, else `email`, else
    /// the subject id).
    pub name_claim: String,
}

impl Default for ApiSettings {
    fn default() -> Self {
        ApiSettings {
            listen: "127.0.0.1:8440".into(),
            tls: None,
            allow_plain_http: false,
            workers: 1,
            sign_audit_every: Duration::from_millis(500),
            max_body: 64 * 1024,
            header_timeout: Duration::from_secs(30),
            max_connections: 512,
            max_connections_per_address: 64,
            trusted_proxies: Vec::new(),
            lockout_after: 10,
            webhooks: Vec::new(),
            console: ConsoleSettings::default(),
            privacy: None,
        }
    }
}

/// One webhook (`[[api.webhooks]]`).
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Its name (its place in the event log is kept under it).
    pub name: String,
    /// Where to POST.
    pub url: url::Url,
    /// The HMAC key, from the environment or a file.
    pub secret: SecretSource,
}

/// How identifiers are read (`[identifiers]`).
#[derive(Debug, Clone, Default)]
pub struct IdentifierSettings {
    /// Region for phone numbers given in national form.
    pub default_region: Option<Region>,
}

/// Host-wide runtime settings (`[runtime]`).
#[derive(Debug, Clone, Default)]
pub struct RuntimeSettings {
    /// Where compiled connector code is cached; `None` means the default
    /// (`$XDG_CACHE_HOME/oubli/compiled` or `~/.cache/oubli/compiled`).
    pub cache_dir: Option<PathBuf>,
}

/// One system: a connection to one external system through a connector
/// (`[systems.NAME]`).
#[derive(Debug, Clone)]
pub struct SystemConfig {
    /// Whether it takes part in requests.
    pub enabled: bool,
    /// What its connector is given.
    pub spec: ConnectorSpec,
}

impl SystemConfig {
    /// The integrator's name for the system (the table key).
    pub fn name(&self) -> &str {
        &self.spec.name
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    runtime: RawRuntime,
    #[serde(default)]
    systems: BTreeMap<String, RawSystem>,
    #[serde(default)]
    identifiers: RawIdentifiers,
    #[serde(default)]
    store: RawStore,
    #[serde(default)]
    keys: RawKeys,
    #[serde(default)]
    policy: RawPolicy,
    #[serde(default)]
    api: RawApi,
    #[serde(default)]
    controller: RawController,
    #[serde(default)]
    register: crate::register::RawBody,
    #[serde(default)]
    retention: RawRetention,
    /// The spelling before 0.1: refused with a message saying what changed.
    plugins: Option<toml::Value>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawStore {
    url: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawController {
    name: Option<String>,
    contact: Option<String>,
    dpo: Option<String>,
    authority: Option<String>,
    authority_url: Option<String>,
    automated_decisions: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawApi {
    listen: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    #[serde(default)]
    allow_plain_http: bool,
    workers: Option<usize>,
    sign_audit_every: Option<String>,
    max_body: Option<u64>,
    header_timeout: Option<String>,
    max_connections: Option<usize>,
    max_connections_per_address: Option<usize>,
    #[serde(default)]
    trusted_proxies: Vec<String>,
    lockout_after: Option<u32>,
    #[serde(default)]
    webhooks: Vec<RawWebhook>,
    console: Option<RawConsole>,
    privacy: Option<RawPrivacy>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrivacy {
    listen: Option<String>,
    public_url: String,
    code_ttl: Option<String>,
    max_attempts: Option<u32>,
    mail_max_mb: Option<u32>,
    codes_per_address: Option<u32>,
    starts_per_client: Option<u32>,
    link_ttl: Option<String>,
    download_ttl: Option<String>,
    #[serde(default)]
    attest: Vec<String>,
    notify: Option<bool>,
    smtp: RawSmtp,
    sms: Option<RawSms>,
    captcha: Option<RawCaptcha>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCaptcha {
    verify_url: String,
    secret: RawSecret,
    site_key: String,
    script: String,
    widget_class: String,
    field: String,
    origins: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSms {
    url: String,
    secret: RawSecret,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSmtp {
    host: String,
    port: Option<u16>,
    tls: Option<String>,
    username: Option<String>,
    password: Option<RawSecret>,
    from: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConsole {
    enabled: Option<bool>,
    idle_timeout: Option<String>,
    absolute_timeout: Option<String>,
    oidc: Option<RawOidc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOidc {
    issuer: String,
    client_id: String,
    client_secret: Option<RawSecret>,
    redirect_url: String,
    roles_claim: Option<String>,
    #[serde(default)]
    roles: BTreeMap<String, String>,
    name_claim: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    name: String,
    url: String,
    secret: RawSecret,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawKeys {
    dir: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    four_eyes: Option<bool>,
    attest_identity: Option<bool>,
    erase_mode: Option<String>,
    max_attempts: Option<u32>,
    backoff: Option<String>,
    max_backoff: Option<String>,
    poll_interval: Option<String>,
    max_polls: Option<u32>,
    max_extension_months: Option<u32>,
    keep_answers: Option<String>,
    #[serde(default)]
    systems: BTreeMap<String, RawSystemPolicy>,
    #[serde(default)]
    holds: Vec<RawHold>,
    #[serde(default)]
    recipients: Vec<RawRecipient>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecipient {
    name: String,
    systems: Vec<String>,
    #[serde(default)]
    categories: Vec<String>,
    via: String,
    url: Option<String>,
    address: Option<String>,
    secret: Option<RawSecret>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSystemPolicy {
    erase_mode: Option<String>,
    search_settle: Option<String>,
    #[serde(default)]
    kinds: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHold {
    system: String,
    kind: Option<String>,
    reason: String,
}

fn erase_mode(s: &str) -> Result<EraseMode, String> {
    match s {
        "delete" => Ok(EraseMode::Delete),
        "anonymise" | "anonymize" => Ok(EraseMode::Anonymise),
        _ => Err(format!("{s:?} is not `delete` or `anonymise`")),
    }
}

fn policy(raw: RawPolicy, systems: &[SystemConfig]) -> Result<Policy, (String, String)> {
    let mut p = Policy::default();
    let ms = |key: &str, v: &Option<String>, default: u64| -> Result<u64, (String, String)> {
        match v {
            None => Ok(default),
            Some(v) => parse_duration(v)
                .map(|d| d.as_millis() as u64)
                .map_err(|m| (key.to_string(), m)),
        }
    };
    p.four_eyes = raw.four_eyes.unwrap_or(p.four_eyes);
    p.attest_identity = raw.attest_identity.unwrap_or(p.attest_identity);
    if let Some(m) = &raw.erase_mode {
        p.erase_mode = erase_mode(m).map_err(|e| ("erase_mode".to_string(), e))?;
    }
    if let Some(n) = raw.max_attempts {
        if !(1..=100).contains(&n) {
            return Err(("max_attempts".into(), "must be between 1 and 100".into()));
        }
        p.max_attempts = n;
    }
    p.backoff_ms = ms("backoff", &raw.backoff, p.backoff_ms)?;
    p.max_backoff_ms = ms("max_backoff", &raw.max_backoff, p.max_backoff_ms)?;
    p.poll_interval_ms = ms("poll_interval", &raw.poll_interval, p.poll_interval_ms)?;
    p.max_polls = raw.max_polls.unwrap_or(p.max_polls);
    if let Some(n) = raw.max_extension_months {
        if n > 2 {
            return Err((
                "max_extension_months".into(),
                "Art. 12(3) allows at most two further months".into(),
            ));
        }
        p.max_extension_months = n;
    }
    if let Some(k) = &raw.keep_answers {
        let d = parse_duration(k).map_err(|e| ("keep_answers".to_string(), e))?;
        if d < Duration::from_secs(86_400) {
            return Err((
                "keep_answers".into(),
                "an answer is kept at least a day (the subject must be able to fetch it)".into(),
            ));
        }
        p.keep_answers_ms = Some(d.as_millis() as u64);
    }
    let known = |name: &str| systems.iter().any(|s| s.name() == name);
    for (name, sp) in raw.systems {
        if !known(&name) {
            return Err((
                format!("systems.{name}"),
                "no such system in `[systems]`".into(),
            ));
        }
        let mut out = SystemPolicy::default();
        if let Some(m) = &sp.erase_mode {
            out.erase_mode =
                Some(erase_mode(m).map_err(|e| (format!("systems.{name}.erase_mode"), e))?);
        }
        if let Some(d) = &sp.search_settle {
            let d = parse_duration(d).map_err(|e| (format!("systems.{name}.search_settle"), e))?;
            if d > Duration::from_secs(600) {
                return Err((
                    format!("systems.{name}.search_settle"),
                    "must be at most 10min".into(),
                ));
            }
            out.search_settle_ms = Some(d.as_millis() as u64);
        }
        for (kind, m) in sp.kinds {
            let mode = erase_mode(&m).map_err(|e| (format!("systems.{name}.kinds.{kind}"), e))?;
            out.kinds.insert(kind, mode);
        }
        p.systems.insert(name, out);
    }
    for (i, h) in raw.holds.into_iter().enumerate() {
        if !known(&h.system) {
            return Err((
                format!("holds[{i}].system"),
                format!("no system {:?} in `[systems]`", h.system),
            ));
        }
        if h.reason.trim().is_empty() {
            return Err((
                format!("holds[{i}].reason"),
                "say why the records are kept".into(),
            ));
        }
        p.holds.push(Hold {
            system: h.system,
            kind: h.kind,
            reason: h.reason,
        });
    }
    for (i, r) in raw.recipients.into_iter().enumerate() {
        let key = |k: &str| format!("recipients[{i}].{k}");
        if !valid_name(&r.name) || p.recipients.iter().any(|x| x.name == r.name) {
            return Err((
                key("name"),
                "a unique name of lowercase letters, digits, dashes and underscores".into(),
            ));
        }
        if r.systems.is_empty() {
            return Err((
                key("systems"),
                "list the systems whose data it received".into(),
            ));
        }
        if let Some(s) = r.systems.iter().find(|s| !known(s)) {
            return Err((key("systems"), format!("no system {s:?} in `[systems]`")));
        }
        let via = match r.via.as_str() {
            "webhook" => Via::Webhook,
            "email" => Via::Email,
            "manual" => Via::Manual,
            _ => return Err((key("via"), "one of webhook, email, manual".into())),
        };
        match via {
            Via::Webhook => {
                let ok = r
                    .url
                    .as_deref()
                    .and_then(|u| url::Url::parse(u).ok())
                    .is_some_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
                if !ok {
                    return Err((
                        key("url"),
                        "a webhook recipient needs an http:// or https:// URL".into(),
                    ));
                }
                if r.secret.is_none() {
                    return Err((key("secret"), "a webhook recipient needs a secret (`{ env = \"VAR\" }` or `{ file = \"PATH\" }`)".into()));
                }
            }
            Via::Email if r.address.as_deref().is_none_or(|a| !a.contains('@')) => {
                return Err((key("address"), "an email recipient needs an address".into()));
            }
            _ => {}
        }
        p.recipients.push(Recipient {
            name: r.name,
            systems: r.systems,
            categories: r.categories,
            via,
            url: r.url,
            address: r.address,
        });
    }
    Ok(p)
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
struct RawSystem {
    connector: PathBuf,
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
    sha256: Option<String>,
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

        if raw.plugins.is_some() {
            return Err(invalid(
                "plugins".into(),
                "`[plugins.NAME]` is now `[systems.NAME]`, and its `path` is now `connector`"
                    .into(),
            ));
        }
        let default_region = match &raw.identifiers.default_region {
            None => None,
            Some(r) => Some(r.parse::<Region>().map_err(|_| {
                invalid(
                    "identifiers.default_region".into(),
                    format!("{r:?} is not an ISO 3166 region code such as FR"),
                )
            })?),
        };
        let host_settings = host_settings(default_region);

        let mut systems = Vec::with_capacity(raw.systems.len());
        for (name, p) in raw.systems {
            let key = |k: &str| format!("systems.{name}.{k}");
            if !valid_name(&name) {
                return Err(invalid(
                    format!("systems.{name}"),
                    "system names are lowercase letters, digits, dashes and underscores".into(),
                ));
            }
            let mut hosts = Vec::with_capacity(p.allow_hosts.len());
            for h in &p.allow_hosts {
                hosts.push(Origin::parse(h).map_err(|m| invalid(key("allow_hosts"), m))?);
            }
            let mut settings = BTreeMap::new();
            for (k, v) in p.config {
                if k.starts_with(HOST_PREFIX) {
                    return Err(invalid(
                        key(&format!("config.{k}")),
                        format!("keys under `{HOST_PREFIX}` are provided by the host"),
                    ));
                }
                let v = match v {
                    RawValue::String(s) => s,
                    RawValue::Integer(i) => i.to_string(),
                    RawValue::Float(f) => f.to_string(),
                    RawValue::Bool(b) => b.to_string(),
                };
                settings.insert(k, v);
            }
            let mut secrets = BTreeMap::new();
            for (k, s) in p.secrets {
                let source = secret_source(&s, &base)
                    .ok_or_else(|| invalid(key(&format!("secrets.{k}")), ONE_SECRET.into()))?;
                secrets.insert(k, source);
            }
            let limits =
                limits(p.limits).map_err(|(k, m)| invalid(key(&format!("limits.{k}")), m))?;
            if let Some(pin) = &p.sha256
                && !(pin.len() == 64 && pin.bytes().all(|b| b.is_ascii_hexdigit()))
            {
                return Err(invalid(
                    key("sha256"),
                    "is not a SHA-256 (64 hexadecimal digits, as `oubli connector inspect` prints)"
                        .into(),
                ));
            }
            systems.push(SystemConfig {
                enabled: p.enabled,
                spec: ConnectorSpec {
                    component: base.join(&p.connector),
                    name,
                    grants: NetworkGrants {
                        hosts,
                        allow_loopback: p.allow_loopback,
                        allow_private: p.allow_private,
                    },
                    settings,
                    host_settings: host_settings.clone(),
                    secrets,
                    limits,
                    sha256: p.sha256.map(|s| s.to_ascii_lowercase()),
                },
            });
        }
        let mut recipient_secrets = BTreeMap::new();
        for (i, r) in raw.policy.recipients.iter().enumerate() {
            if let Some(s) = &r.secret {
                let source = secret_source(s, &base).ok_or_else(|| {
                    invalid(format!("policy.recipients[{i}].secret"), ONE_SECRET.into())
                })?;
                recipient_secrets.insert(r.name.clone(), source);
            }
        }
        let policy =
            policy(raw.policy, &systems).map_err(|(k, m)| invalid(format!("policy.{k}"), m))?;
        let store_url = match raw.store.url {
            Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => u,
            Some(u) => base
                .join(u.strip_prefix("sqlite://").unwrap_or(&u))
                .display()
                .to_string(),
            None => base.join("oubli.db").display().to_string(),
        };
        if raw.controller.automated_decisions.is_some() {
            return Err(invalid(
                "controller.automated_decisions".into(),
                "automated decisions are now said per processing activity, in the register (`automated_decisions` of each `[[register.activities]]`; docs/REGISTER.md)".into(),
            ));
        }
        let api = api(raw.api, &base, &file_name)?;
        let register = register(raw.register, &base, &systems, &file_name)?;
        let names: Vec<&str> = systems.iter().map(SystemConfig::name).collect();
        let retention = retention(raw.retention, &names)
            .map_err(|(k, m)| invalid(format!("retention.{k}"), m))?;
        let c = raw.controller;
        Ok(Config {
            register,
            retention,
            recipient_secrets,
            controller: Controller {
                name: c.name,
                contact: c.contact,
                dpo: c.dpo,
                authority: c.authority,
                authority_url: c.authority_url,
            },
            api,
            store_url,
            keys_dir: base.join(raw.keys.dir.unwrap_or_else(|| PathBuf::from("oubli-keys"))),
            policy,
            identifiers: IdentifierSettings { default_region },
            file: file.to_path_buf(),
            runtime: RuntimeSettings {
                cache_dir: raw.runtime.cache_dir.map(|d| base.join(d)),
            },
            systems,
        })
    }

    /// The enabled systems' connector specs.
    pub fn enabled_specs(&self) -> Vec<ConnectorSpec> {
        self.systems
            .iter()
            .filter(|s| s.enabled)
            .map(|s| s.spec.clone())
            .collect()
    }
}

/// What the host tells every connector (`host.config("oubli.…")`), so no
/// connector needs configuring with what the host already knows:
/// `oubli.region` (`GB`), `oubli.calling-code` (`44`) and
/// `oubli.trunk-prefix` (`0`) for reading national phone numbers.
fn host_settings(region: Option<Region>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(r) = region {
        out.insert(format!("{HOST_PREFIX}region"), r.code().to_string());
        out.insert(
            format!("{HOST_PREFIX}calling-code"),
            r.calling_code().to_string(),
        );
        if let Some(t) = r.trunk_prefix() {
            out.insert(format!("{HOST_PREFIX}trunk-prefix"), t.to_string());
        }
    }
    out
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

/// `[register]`: inline, or in the file it names (whose errors name that
/// file).
fn register(
    mut raw: crate::register::RawBody,
    base: &Path,
    systems: &[SystemConfig],
    file_name: &str,
) -> Result<Option<crate::register::Register>, ConfigError> {
    let names: Vec<&str> = systems.iter().map(|s| s.name()).collect();
    let (body, file) = match raw.file.take() {
        Some(path) => {
            if !raw.is_empty() {
                return Err(ConfigError::Invalid {
                    file: file_name.to_string(),
                    key: "register.file".into(),
                    message: "the register is either in its own file or in this one, not both"
                        .into(),
                });
            }
            let path = base.join(path);
            let shown = path.display().to_string();
            let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                file: shown.clone(),
                source,
            })?;
            let body: crate::register::RawBody = toml::from_str(&text).map_err(|e| {
                let (line, column) = e.span().map(|s| line_col(&text, s.start)).unwrap_or((1, 1));
                ConfigError::Syntax {
                    file: shown.clone(),
                    line,
                    column,
                    message: e.message().replace('\n', " "),
                }
            })?;
            if body.file.is_some() {
                return Err(ConfigError::Invalid {
                    file: shown,
                    key: "file".into(),
                    message: "a register file does not name another".into(),
                });
            }
            (body, Some(shown))
        }
        None if raw.is_empty() => return Ok(None),
        None => (raw, None),
    };
    crate::register::parse(body, &names)
        .map(Some)
        .map_err(|(key, message)| match &file {
            Some(f) => ConfigError::Invalid {
                file: f.clone(),
                key,
                message,
            },
            None => ConfigError::Invalid {
                file: file_name.to_string(),
                key: format!("register.{key}"),
                message,
            },
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

/// `[retention]` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRetention {
    page: Option<u32>,
    skew: Option<String>,
    sweep_share: Option<f64>,
    lease: Option<String>,
    requests: Option<String>,
    #[serde(default)]
    budgets: BTreeMap<String, String>,
    #[serde(default)]
    policies: Vec<RawRetentionPolicy>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetentionPolicy {
    id: String,
    system: String,
    category: String,
    trigger: Option<String>,
    period: String,
    action: Option<String>,
    mode: Option<String>,
    approval_threshold: Option<u64>,
    max_per_run: Option<u64>,
    every: Option<String>,
    description: Option<String>,
}

/// `[retention]`, checked against the systems configured; `Err((key, why))`.
fn retention(
    raw: RawRetention,
    systems: &[&str],
) -> Result<crate::retention::RetentionSettings, (String, String)> {
    let mut s = crate::retention::RetentionSettings::default();
    if let Some(page) = raw.page {
        if !(1..=1000).contains(&page) {
            return Err(("page".into(), "must be between 1 and 1000".into()));
        }
        s.page = page;
    }
    if let Some(skew) = &raw.skew {
        s.skew = parse_duration(skew).map_err(|e| ("skew".to_string(), e))?;
    }
    if let Some(lease) = &raw.lease {
        let d = parse_duration(lease).map_err(|e| ("lease".to_string(), e))?;
        if d < Duration::from_secs(1) {
            return Err(("lease".into(), "at least 1s".into()));
        }
        s.lease = d;
    }
    if let Some(keep) = &raw.requests {
        let p = crate::retention::Period::parse(keep).map_err(|e| ("requests".to_string(), e))?;
        if p.upper_days() < 30 {
            return Err((
                "requests".into(),
                "at least 30 days: a subject must be able to fetch the answer and see the request's status".into(),
            ));
        }
        s.requests = Some(p);
    }
    if let Some(share) = raw.sweep_share {
        if !(share > 0.0 && share <= 1.0) {
            return Err((
                "sweep_share".into(),
                "a share of the budget, above 0 and at most 1".into(),
            ));
        }
        s.sweep_share = share;
    }
    for (system, rate) in raw.budgets {
        if !systems.contains(&system.as_str()) {
            return Err((
                format!("budgets.{system}"),
                "no such system in `[systems]`".into(),
            ));
        }
        let b =
            crate::retention::Budget::parse(&rate).map_err(|e| (format!("budgets.{system}"), e))?;
        s.budgets.insert(system, b);
    }
    for (i, p) in raw.policies.into_iter().enumerate() {
        let key = |k: &str| format!("policies[{i}].{k}");
        let valid = !p.id.is_empty()
            && p.id.len() <= 64
            && p.id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !valid || s.policies.iter().any(|q| q.id == p.id) {
            return Err((
                key("id"),
                "a unique name of lowercase letters, digits, dashes and underscores".into(),
            ));
        }
        if !systems.contains(&p.system.as_str()) {
            return Err((
                key("system"),
                format!("no system {:?} in `[systems]`", p.system),
            ));
        }
        if p.category.trim().is_empty() {
            return Err((key("category"), "name the data category".into()));
        }
        let period = crate::retention::Period::parse(&p.period).map_err(|e| (key("period"), e))?;
        let action = match p.action.as_deref().unwrap_or("delete") {
            "delete" => crate::retention::RetentionAction::Delete,
            "anonymise" | "anonymize" => crate::retention::RetentionAction::Anonymise,
            "review" => crate::retention::RetentionAction::Review,
            other => {
                return Err((
                    key("action"),
                    format!("{other:?} is not `delete`, `anonymise` or `review`"),
                ));
            }
        };
        let mode = match p.mode.as_deref().unwrap_or("test") {
            "test" => crate::retention::RetentionMode::Test,
            "enforce" => crate::retention::RetentionMode::Enforce,
            other => return Err((key("mode"), format!("{other:?} is not `test` or `enforce`"))),
        };
        let every = match &p.every {
            None => None,
            Some(e) => {
                let d = parse_duration(e).map_err(|m| (key("every"), m))?;
                if d < Duration::from_secs(3600) {
                    return Err((key("every"), "at most once an hour".into()));
                }
                Some(d)
            }
        };
        s.policies.push(crate::retention::RetentionPolicy {
            id: p.id,
            system: p.system,
            category: p.category,
            trigger: p.trigger,
            period,
            action,
            mode,
            approval_threshold: p.approval_threshold.unwrap_or(100),
            max_per_run: p.max_per_run.unwrap_or(10_000).max(1),
            every,
            description: p.description,
        });
    }
    Ok(s)
}

/// Parse a duration, the one syntax of every duration oubli reads (the
/// config's and the command line's): a whole number and a unit, `500ms`,
/// `30s`, `5m` (or `5min`), `12h`, `7d`.
///
/// ```
/// use std::time::Duration;
/// use oubli_core::config::parse_duration;
/// assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
/// assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
/// assert!(parse_duration("soon").is_err());
/// ```
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || format!("{s:?} is not a duration (use e.g. 500ms, 30s, 5m, 12h or 7d)");
    let n: u64 = num.parse().map_err(|_| bad())?;
    let secs = |k: u64| Ok(Duration::from_secs(n.saturating_mul(k)));
    match unit.trim() {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => secs(1),
        "m" | "min" => secs(60),
        "h" => secs(3600),
        "d" | "day" | "days" => secs(86_400),
        _ => Err(bad()),
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// What a secret table must hold.
const ONE_SECRET: &str = "give exactly one of `env = \"VAR\"` or `file = \"PATH\"`";

/// A secret's source: an environment variable, or a file relative to the
/// config's directory; `None` unless exactly one is given.
fn secret_source(raw: &RawSecret, base: &Path) -> Option<SecretSource> {
    match (&raw.env, &raw.file) {
        (Some(var), None) if !var.is_empty() => Some(SecretSource::Env(var.clone())),
        (None, Some(path)) => Some(SecretSource::File(base.join(path))),
        _ => None,
    }
}

fn console(
    raw: RawConsole,
    base: &Path,
    bad: &dyn Fn(String, String) -> ConfigError,
) -> Result<ConsoleSettings, ConfigError> {
    let mut out = ConsoleSettings::default();
    if let Some(e) = raw.enabled {
        out.enabled = e;
    }
    let timeout = |key: &str, d: &str| {
        parse_duration(d)
            .ok()
            .filter(|d| *d >= Duration::from_secs(60) && *d <= Duration::from_secs(7 * 86_400))
            .ok_or_else(|| {
                bad(
                    format!("api.console.{key}"),
                    format!("{d:?} is not a duration between 1m and 7d"),
                )
            })
    };
    if let Some(d) = raw.idle_timeout {
        out.idle_timeout = timeout("idle_timeout", &d)?;
    }
    if let Some(d) = raw.absolute_timeout {
        out.absolute_timeout = timeout("absolute_timeout", &d)?;
    }
    if out.idle_timeout > out.absolute_timeout {
        return Err(bad(
            "api.console.idle_timeout".into(),
            "longer than absolute_timeout".into(),
        ));
    }
    if let Some(o) = raw.oidc {
        let key = |k: &str| format!("api.console.oidc.{k}");
        let web_url = |k: &str, v: &str| {
            url::Url::parse(v)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                .ok_or_else(|| bad(key(k), "an http:// or https:// URL".into()))
        };
        let issuer = web_url("issuer", &o.issuer)?;
        let redirect_url = web_url("redirect_url", &o.redirect_url)?;
        if o.client_id.trim().is_empty() || o.client_id.chars().any(char::is_control) {
            return Err(bad(
                key("client_id"),
                "the client id the provider gave".into(),
            ));
        }
        let client_secret = match &o.client_secret {
            None => None,
            Some(s) => Some(
                secret_source(s, base)
                    .ok_or_else(|| bad(key("client_secret"), ONE_SECRET.into()))?,
            ),
        };
        if o.roles.is_empty() {
            return Err(bad(
                key("roles"),
                "map at least one claim value to a role, e.g. roles = { \"privacy-team\" = \"operator\" }".into(),
            ));
        }
        for (value, role) in &o.roles {
            if !["auditor", "operator", "approver", "admin"].contains(&role.as_str()) {
                return Err(bad(
                    format!("api.console.oidc.roles.{value}"),
                    "a role: auditor, operator, approver or admin".into(),
                ));
            }
        }
        out.oidc = Some(OidcSettings {
            issuer,
            client_id: o.client_id,
            client_secret,
            redirect_url,
            roles_claim: o.roles_claim.unwrap_or_else(|| "groups".into()),
            roles: o.roles,
            name_claim: o.name_claim.unwrap_or_else(|| "preferred_username".into()),
        });
    }
    Ok(out)
}

fn api(raw: RawApi, base: &Path, file: &str) -> Result<ApiSettings, ConfigError> {
    let bad = |key: String, message: String| ConfigError::Invalid {
        file: file.to_string(),
        key,
        message,
    };
    let mut out = ApiSettings::default();
    if let Some(l) = raw.listen {
        if l.parse::<std::net::SocketAddr>().is_err() {
            return Err(bad(
                "api.listen".into(),
                format!("{l:?} is not an address and port such as 127.0.0.1:8440"),
            ));
        }
        out.listen = l;
    }
    out.tls = match (raw.tls_cert, raw.tls_key) {
        (Some(c), Some(k)) => Some((base.join(c), base.join(k))),
        (None, None) => None,
        _ => {
            return Err(bad(
                "api.tls_cert".into(),
                "give both `tls_cert` and `tls_key`, or neither".into(),
            ));
        }
    };
    out.allow_plain_http = raw.allow_plain_http;
    if let Some(w) = raw.workers {
        out.workers = w;
    }
    if let Some(d) = raw.sign_audit_every {
        out.sign_audit_every = parse_duration(&d)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                bad(
                    "api.sign_audit_every".into(),
                    format!("{d:?} is not a duration such as \"10m\" or \"1h\""),
                )
            })?;
    }
    if let Some(m) = raw.max_body {
        if !(1024..=64 * 1024 * 1024).contains(&m) {
            return Err(bad(
                "api.max_body".into(),
                "give a size in bytes between 1024 and 67108864".into(),
            ));
        }
        out.max_body = m as usize;
    }
    if let Some(d) = raw.header_timeout {
        out.header_timeout = parse_duration(&d)
            .ok()
            .filter(|d| *d >= Duration::from_millis(100) && *d <= Duration::from_secs(600))
            .ok_or_else(|| {
                bad(
                    "api.header_timeout".into(),
                    format!("{d:?} is not a duration between 100ms and 10m"),
                )
            })?;
    }
    if let Some(n) = raw.max_connections {
        if !(1..=100_000).contains(&n) {
            return Err(bad(
                "api.max_connections".into(),
                "give a number between 1 and 100000".into(),
            ));
        }
        out.max_connections = n;
    }
    if let Some(n) = raw.max_connections_per_address {
        if !(1..=100_000).contains(&n) {
            return Err(bad(
                "api.max_connections_per_address".into(),
                "give a number between 1 and 100000".into(),
            ));
        }
        out.max_connections_per_address = n;
    }
    if let Some(n) = raw.lockout_after {
        if n > 1_000_000 {
            return Err(bad(
                "api.lockout_after".into(),
                "give a number of failures up to 1000000 (0: no lockout)".into(),
            ));
        }
        out.lockout_after = n;
    }
    for (i, p) in raw.trusted_proxies.iter().enumerate() {
        let net = p
            .parse::<ipnet::IpNet>()
            .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
            .map_err(|_| {
                bad(
                    format!("api.trusted_proxies[{i}]"),
                    "an IP address or a CIDR range such as 10.0.0.0/8".into(),
                )
            })?;
        out.trusted_proxies.push(net);
    }
    for (i, w) in raw.webhooks.into_iter().enumerate() {
        let key = |k: &str| format!("api.webhooks[{i}].{k}");
        if !valid_name(&w.name) || out.webhooks.iter().any(|x| x.name == w.name) {
            return Err(bad(
                key("name"),
                "a unique name of lowercase letters, digits, dashes and underscores".into(),
            ));
        }
        let url = url::Url::parse(&w.url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| bad(key("url"), "an http:// or https:// URL".into()))?;
        let secret =
            secret_source(&w.secret, base).ok_or_else(|| bad(key("secret"), ONE_SECRET.into()))?;
        out.webhooks.push(WebhookSettings {
            name: w.name,
            url,
            secret,
        });
    }
    if let Some(c) = raw.console {
        out.console = console(c, base, &bad)?;
    }
    if let Some(p) = raw.privacy {
        out.privacy = Some(privacy(p, base, &bad)?);
    }
    Ok(out)
}

fn privacy(
    raw: RawPrivacy,
    base: &Path,
    bad: &dyn Fn(String, String) -> ConfigError,
) -> Result<PrivacySettings, ConfigError> {
    let key = |k: &str| format!("api.privacy.{k}");
    let public_url = url::Url::parse(&raw.public_url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .ok_or_else(|| bad(key("public_url"), "an http:// or https:// URL".into()))?;
    let within = |k: &str, v: Option<String>, default: Duration, lo: Duration, hi: Duration| match v
    {
        None => Ok(default),
        Some(d) => parse_duration(&d)
            .ok()
            .filter(|d| *d >= lo && *d <= hi)
            .ok_or_else(|| {
                bad(
                    key(k),
                    format!(
                        "{d:?} is not a duration between {}s and {}s",
                        lo.as_secs(),
                        hi.as_secs()
                    ),
                )
            }),
    };
    let minute = Duration::from_secs(60);
    let day = Duration::from_secs(86_400);
    let count = |k: &str, v: Option<u32>, default: u32| match v {
        None => Ok(default),
        Some(n) if (1..=1000).contains(&n) => Ok(n),
        Some(_) => Err(bad(key(k), "a number from 1 to 1000".into())),
    };
    let mut attest = Vec::new();
    for k in &raw.attest {
        attest.push(
            oubli_model::RequestKind::parse(k)
                .filter(|k| *k != oubli_model::RequestKind::Lift)
                .ok_or_else(|| bad(key("attest"), format!("{k:?} is not a kind of request")))?,
        );
    }
    let s = raw.smtp;
    let skey = |k: &str| format!("api.privacy.smtp.{k}");
    let tls = match s.tls.as_deref() {
        None | Some("starttls") => SmtpTls::StartTls,
        Some("tls") => SmtpTls::Tls,
        Some("none") => SmtpTls::None,
        Some(_) => return Err(bad(skey("tls"), "starttls, tls or none".into())),
    };
    if s.host.trim().is_empty() || s.host.chars().any(|c| c.is_control() || c == ' ') {
        return Err(bad(skey("host"), "the relay's host name".into()));
    }
    if tls == SmtpTls::None
        && !(s.host == "localhost"
            || s.host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|a| a.is_loopback()))
    {
        return Err(bad(
            skey("tls"),
            "none is only for a relay on this machine (localhost): codes must not cross a network in clear".into(),
        ));
    }
    if s.from.parse::<lettre::message::Mailbox>().is_err() {
        return Err(bad(
            skey("from"),
            "a sender address, e.g. \"Privacy <privacy@example.com>\"".into(),
        ));
    }
    let password = match &s.password {
        None => None,
        Some(p) => {
            Some(secret_source(p, base).ok_or_else(|| bad(skey("password"), ONE_SECRET.into()))?)
        }
    };
    if password.is_some() != s.username.is_some() {
        return Err(bad(
            skey("username"),
            "give the username and the password together".into(),
        ));
    }
    let sms = match raw.sms {
        None => None,
        Some(g) => {
            let url = url::Url::parse(&g.url)
                .ok()
                .filter(|u| {
                    u.scheme() == "https"
                        || (u.scheme() == "http"
                            && matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]")))
                })
                .ok_or_else(|| {
                    bad(
                        "api.privacy.sms.url".into(),
                        "an https:// URL (http:// only to this machine)".into(),
                    )
                })?;
            let secret = secret_source(&g.secret, base)
                .ok_or_else(|| bad("api.privacy.sms.secret".into(), ONE_SECRET.into()))?;
            Some(SmsSettings { url, secret })
        }
    };
    let captcha = match raw.captcha {
        None => None,
        Some(c) => {
            let key = |k: &str| format!("api.privacy.captcha.{k}");
            let https = |k: &str, v: &str| {
                url::Url::parse(v)
                    .ok()
                    .filter(|u| {
                        u.scheme() == "https"
                            || (u.scheme() == "http"
                                && matches!(u.host_str(), Some("localhost" | "127.0.0.1")))
                    })
                    .ok_or_else(|| bad(key(k), "an https:// URL".into()))
            };
            let verify_url = https("verify_url", &c.verify_url)?;
            let script = https("script", &c.script)?;
            let word = |k: &str, v: &str| {
                (!v.is_empty()
                    && v.len() <= 200
                    && v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)))
                .then_some(())
                .ok_or_else(|| bad(key(k), "letters, digits, '-', '_' or '.'".into()))
            };
            word("site_key", &c.site_key)?;
            word("widget_class", &c.widget_class)?;
            word("field", &c.field)?;
            for o in &c.origins {
                if !(o.starts_with("https://") || o.starts_with("http://localhost"))
                    || o.chars()
                        .any(|ch| ch.is_whitespace() || ch == ';' || ch == ',' || ch == '\'')
                {
                    return Err(bad(
                        key("origins"),
                        format!("{o:?} is not an origin such as https://hcaptcha.com"),
                    ));
                }
            }
            let secret = secret_source(&c.secret, base)
                .ok_or_else(|| bad(key("secret"), ONE_SECRET.into()))?;
            Some(CaptchaSettings {
                verify_url,
                secret,
                site_key: c.site_key,
                script,
                widget_class: c.widget_class,
                field: c.field,
                origins: c.origins,
            })
        }
    };
    Ok(PrivacySettings {
        sms,
        captcha,
        listen: raw.listen,
        public_url,
        code_ttl: within("code_ttl", raw.code_ttl, 10 * minute, minute, 60 * minute)?,
        max_attempts: count("max_attempts", raw.max_attempts, 5)?,
        mail_max: u64::from(count("mail_max_mb", raw.mail_max_mb, 20)?) << 20,
        codes_per_address: count("codes_per_address", raw.codes_per_address, 5)?,
        starts_per_client: count("starts_per_client", raw.starts_per_client, 20)?,
        link_ttl: within("link_ttl", raw.link_ttl, 30 * day, day, 366 * day)?,
        download_ttl: within(
            "download_ttl",
            raw.download_ttl,
            60 * minute,
            5 * minute,
            day,
        )?,
        attest,
        notify: raw.notify.unwrap_or(true),
        smtp: SmtpSettings {
            port: s.port.unwrap_or(match tls {
                SmtpTls::StartTls => 587,
                SmtpTls::Tls => 465,
                SmtpTls::None => 25,
            }),
            host: s.host,
            tls,
            username: s.username,
            password,
            from: s.from,
        },
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_longest_period_wins() {
        let raw: RawRetention = toml::from_str(
            r#"
            [[policies]]
            id = "short"
            system = "mail"
            category = "correspondence"
            period = "1 year"
            [[policies]]
            id = "long"
            system = "mail"
            category = "correspondence"
            period = "P2Y"
            [[policies]]
            id = "other"
            system = "mail"
            category = "attachments"
            period = "P5Y"
            "#,
        )
        .unwrap();
        let s = retention(raw, &["mail"]).unwrap();
        let short = s.policy("short").unwrap();
        assert_eq!(s.longest(short).years, 2);
        assert_ne!(short.digest(), s.policy("long").unwrap().digest());
    }

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
            [identifiers]
            default_region = "fr"
            [systems.crm]
            connector = "plugins/crm.wasm"
            allow_hosts = ["https://CRM.example.com", "http://127.0.0.1:8080/"]
            allow_loopback = true
            config = { base_url = "https://crm.example.com/api", page_size = 50, sandbox = false }
            secrets = { token = { env = "CRM_TOKEN" }, key = { file = "keys/crm" } }
            limits = { memory = "32MiB", timeout = "1500ms", concurrency = 2, max_output = "1MiB" }
            "#,
        )
        .unwrap();
        let p = &c.systems[0].spec;
        assert_eq!(p.component, Path::new("/etc/oubli/plugins/crm.wasm"));
        assert_eq!(
            c.runtime.cache_dir.as_deref(),
            Some(Path::new("/etc/oubli/cache"))
        );
        assert_eq!(p.grants.hosts[0].to_string(), "https://crm.example.com:443");
        assert_eq!(p.grants.hosts[1].to_string(), "http://127.0.0.1:8080");
        assert!(p.grants.allow_loopback && !p.grants.allow_private);
        assert_eq!(p.settings["page_size"], "50");
        assert_eq!(p.settings["sandbox"], "false");
        assert_eq!(p.host_settings["oubli.region"], "FR");
        assert_eq!(p.host_settings["oubli.calling-code"], "33");
        assert_eq!(p.host_settings["oubli.trunk-prefix"], "0");
        assert_eq!(p.secrets["token"], SecretSource::Env("CRM_TOKEN".into()));
        assert_eq!(
            p.secrets["key"],
            SecretSource::File("/etc/oubli/keys/crm".into())
        );
        assert_eq!(p.limits.memory, 32 << 20);
        assert_eq!(p.limits.timeout, Duration::from_millis(1500));
        assert_eq!(p.limits.max_output, 1 << 20);
        assert!(c.systems[0].enabled);
    }

    #[test]
    fn the_api_section_is_read_and_its_mistakes_named() {
        let c = parse(
            "[api]\nlisten = \"0.0.0.0:8443\"\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\nworkers = 0\nsign_audit_every = \"1h\"\n\
             [[api.webhooks]]\nname = \"crm\"\nurl = \"https://crm.example.com/h\"\nsecret = { env = \"S\" }\n",
        )
        .unwrap();
        assert_eq!(c.api.listen, "0.0.0.0:8443");
        assert_eq!(
            c.api.tls,
            Some(("/etc/oubli/c.pem".into(), "/etc/oubli/k.pem".into()))
        );
        assert_eq!(c.api.workers, 0);
        assert_eq!(c.api.sign_audit_every, Duration::from_secs(3600));
        assert_eq!(c.api.webhooks[0].name, "crm");
        assert_eq!(parse("").unwrap().api.listen, "127.0.0.1:8440");
        for (text, says) in [
            (
                "[[policy.recipients]]\nname = \"a\"\nsystems = [\"nope\"]\nvia = \"manual\"",
                "policy.recipients[0].systems",
            ),
            (
                "[[policy.recipients]]\nname = \"a\"\nsystems = []\nvia = \"manual\"",
                "policy.recipients[0].systems",
            ),
            (
                "[[policy.recipients]]\nname = \"a\"\nsystems = []\nvia = \"pigeon\"",
                "policy.recipients[0]",
            ),
            ("[api]\nlisten = \"localhost\"", "api.listen"),
            ("[api]\ntls_cert = \"c.pem\"", "api.tls_cert"),
            (
                "[api]\nsign_audit_every = \"often\"",
                "api.sign_audit_every",
            ),
            ("[api]\nmax_body = 10", "api.max_body"),
            (
                "[[api.webhooks]]\nname = \"a\"\nurl = \"ftp://x\"\nsecret = { env = \"S\" }",
                "api.webhooks[0].url",
            ),
            (
                "[[api.webhooks]]\nname = \"a\"\nurl = \"https://x\"\nsecret = { env = \"S\" }\n[[api.webhooks]]\nname = \"a\"\nurl = \"https://y\"\nsecret = { env = \"S\" }",
                "api.webhooks[1].name",
            ),
            (
                "[[api.webhooks]]\nname = \"a\"\nurl = \"https://x\"\nsecret = {}",
                "api.webhooks[0].secret",
            ),
        ] {
            let e = err(text);
            assert!(e.contains(says), "{text}: {e}");
        }
    }

    #[test]
    fn unknown_key_is_refused_with_its_position() {
        let e = err("[systems.crm]\nconnector = \"x.wasm\"\nallow_host = []\n");
        assert!(
            e.starts_with("/etc/oubli/oubli.toml:3:1: unknown field `allow_host`"),
            "{e}"
        );
    }

    #[test]
    fn bad_limit_names_the_key() {
        let e = err("[systems.crm]\nconnector = \"x.wasm\"\nlimits = { memory = \"64 XB\" }\n");
        assert_eq!(
            e,
            "/etc/oubli/oubli.toml: systems.crm.limits.memory: \"64 XB\" is not a size (use e.g. 64MiB)"
        );
        let e = err("[systems.crm]\nconnector = \"x.wasm\"\nlimits = { concurrency = 0 }\n");
        assert!(
            e.contains("systems.crm.limits.concurrency: must be between 1 and 64"),
            "{e}"
        );
        let e = err("[systems.crm]\nconnector = \"x.wasm\"\nlimits = { timeout = \"forever\" }\n");
        assert!(e.contains("systems.crm.limits.timeout"), "{e}");
    }

    #[test]
    fn grants_must_be_bare_origins() {
        let e = err(
            "[systems.crm]\nconnector = \"x.wasm\"\nallow_hosts = [\"https://a.example.com/api\"]\n",
        );
        assert!(
            e.contains("systems.crm.allow_hosts") && e.contains("without a path"),
            "{e}"
        );
        let e =
            err("[systems.crm]\nconnector = \"x.wasm\"\nallow_hosts = [\"ftp://a.example.com\"]\n");
        assert!(e.contains("only http and https"), "{e}");
    }

    #[test]
    fn secret_needs_exactly_one_source_and_reports_unset_variables() {
        let e = err(
            "[systems.crm]\nconnector = \"x.wasm\"\nsecrets = { t = { env = \"A\", file = \"b\" } }\n",
        );
        assert!(e.contains("systems.crm.secrets.t: give exactly one"), "{e}");
    }

    #[test]
    fn the_old_spelling_and_host_keys_are_refused_saying_why() {
        let e = err("[plugins.crm]\npath = \"x.wasm\"\n");
        assert!(e.contains("is now `[systems.NAME]`"), "{e}");
        let e =
            err("[systems.crm]\nconnector = \"x.wasm\"\nconfig = { \"oubli.region\" = \"FR\" }\n");
        assert!(e.contains("provided by the host"), "{e}");
        let e = err("[identifiers]\ndefault_region = \"ZZ\"\n");
        assert!(e.contains("identifiers.default_region"), "{e}");
    }

    #[test]
    fn missing_path_and_malformed_toml_are_one_line() {
        let e = err("[systems.crm]\nenabled = true\n");
        assert!(e.contains("missing field `connector`"), "{e}");
        let e = err("[systems.crm\n");
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
    #[test]
    fn the_privacy_center_is_checked_key_by_key() {
        let smtp = "\n[api.privacy.smtp]\nhost = \"smtp.example.com\"\nfrom = \"Privacy <privacy@example.com>\"\n";
        let privacy = |extra: &str, smtp_extra: &str| {
            format!(
                "[api.privacy]\npublic_url = \"https://privacy.example.com\"\n{extra}{smtp}{smtp_extra}"
            )
        };
        for (text, key) in [
            (
                privacy("", "").replace("https://privacy", "ftp://privacy"),
                "api.privacy.public_url",
            ),
            (privacy("code_ttl = \"5s\"\n", ""), "api.privacy.code_ttl"),
            (
                privacy("link_ttl = \"2000d\"\n", ""),
                "api.privacy.link_ttl",
            ),
            (
                privacy("max_attempts = 0\n", ""),
                "api.privacy.max_attempts",
            ),
            (privacy("attest = [\"lift\"]\n", ""), "api.privacy.attest"),
            (
                privacy("attest = [\"forget-me\"]\n", ""),
                "api.privacy.attest",
            ),
            (privacy("", "tls = \"none\"\n"), "api.privacy.smtp.tls"),
            (privacy("", "tls = \"ssl3\"\n"), "api.privacy.smtp.tls"),
            (
                privacy("", "username = \"oubli\"\n"),
                "api.privacy.smtp.username",
            ),
            (
                privacy("", "").replace("Privacy <privacy@example.com>", "not an address"),
                "api.privacy.smtp.from",
            ),
            (
                privacy(
                    "",
                    "\n[api.privacy.sms]\nurl = \"http://sms.example.com/send\"\nsecret = { env = \"S\" }\n",
                ),
                "api.privacy.sms.url",
            ),
            (
                privacy(
                    "",
                    "\n[api.privacy.captcha]\nverify_url = \"https://v.example/siteverify\"\nsecret = { env = \"S\" }\nsite_key = \"k\"\nscript = \"https://js.example/api.js\"\nwidget_class = \"w\"\nfield = \"f\"\norigins = [\"https://a.example; script-src *\"]\n",
                ),
                "api.privacy.captcha.origins",
            ),
            (privacy("colour = \"blue\"\n", ""), "unknown field"),
        ] {
            let e = err(&text);
            assert!(e.contains(key), "{text}: {e}");
            assert_eq!(e.lines().count(), 1, "{e}");
        }
        let c = parse(&privacy("", "tls = \"tls\"\n")).unwrap();
        let p = c.api.privacy.unwrap();
        assert_eq!((p.smtp.port, p.smtp.tls), (465, SmtpTls::Tls));
        assert_eq!(p.code_ttl, Duration::from_secs(600));
        assert_eq!((p.max_attempts, p.mail_max), (5, 20 << 20));
        let local = privacy("", "").replace("smtp.example.com", "localhost") + "tls = \"none\"\n";
        assert_eq!(parse(&local).unwrap().api.privacy.unwrap().smtp.port, 25);
    }

    #[test]
    fn the_console_and_its_identity_provider_are_checked_key_by_key() {
        let oidc = |extra: &str| {
            format!(
                "[api.console.oidc]\nissuer = \"https://idp.example\"\nclient_id = \"oubli\"\nredirect_url = \"https://oubli.example/signin/oidc/callback\"\n{extra}"
            )
        };
        for (text, key) in [
            (
                "[api.console]\nidle_timeout = \"5s\"\n".to_string(),
                "api.console.idle_timeout",
            ),
            (
                "[api.console]\nidle_timeout = \"2h\"\nabsolute_timeout = \"1h\"\n".to_string(),
                "api.console.idle_timeout",
            ),
            (
                "[api.console]\ncolour = \"blue\"\n".to_string(),
                "unknown field",
            ),
            (oidc(""), "api.console.oidc.roles"),
            (
                oidc("roles = { dpo = \"superuser\" }\n"),
                "api.console.oidc.roles.dpo",
            ),
            (
                oidc("roles = { dpo = \"approver\" }\n")
                    .replace("https://idp.example", "ftp://idp"),
                "api.console.oidc.issuer",
            ),
            (
                oidc(
                    "roles = { dpo = \"approver\" }\nclient_secret = { env = \"A\", file = \"b\" }\n",
                ),
                "api.console.oidc.client_secret",
            ),
        ] {
            let e = err(&text);
            assert!(e.contains(key), "{text}: {e}");
        }
        let c = parse(&oidc("roles = { dpo = \"approver\" }\n")).unwrap();
        let o = c.api.console.oidc.unwrap();
        assert_eq!(o.roles_claim, "groups");
        assert_eq!(o.roles["dpo"], "approver");
        assert!(c.api.console.enabled);
    }
}
