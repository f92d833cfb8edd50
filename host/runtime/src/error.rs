//! Errors of the connector runtime: refusing a connector at load, and one failed
//! call. Messages name the connector and the cause, never personal data.

use oubli_model::ConnectorError;
use std::path::PathBuf;
use std::time::Duration;

/// Why a connector could not be loaded. One line each.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a WebAssembly component.
    #[error("{path}: {reason}")]
    NotAComponent {
        /// The file.
        path: PathBuf,
        /// What it is instead.
        reason: String,
    },
    /// Compiling failed.
    #[error("{path}: does not compile: {reason}")]
    Compile {
        /// The file.
        path: PathBuf,
        /// The compiler's complaint.
        reason: String,
    },
    /// The component imports something the host does not provide.
    #[error("{path}: imports `{import}`, which this host does not provide")]
    UnknownImport {
        /// The file.
        path: PathBuf,
        /// The import, e.g. `wasi:sockets/tcp@0.2.0` or `vendor:x/y`.
        import: String,
    },
    /// The component imports an interface the sandbox never serves
    /// (sockets, the filesystem): it would fail at the first call.
    #[error("{path}: imports `{import}`, which the sandbox never serves ({why})")]
    DeniedImport {
        /// The file.
        path: PathBuf,
        /// The import.
        import: String,
        /// What the sandbox offers instead.
        why: &'static str,
    },
    /// The component does not export the connector interface of a supported
    /// version.
    #[error("{path}: does not export oubli:connector/connector@0.1.x: {reason}")]
    NotAConnector {
        /// The file.
        path: PathBuf,
        /// Details.
        reason: String,
    },
    /// The manifest is unacceptable (unsupported WIT version, bad host
    /// pattern, missing required configuration, ...).
    #[error("{system}: {reason}")]
    Manifest {
        /// The system's name.
        system: String,
        /// What is wrong.
        reason: String,
    },
    /// `manifest()` itself failed.
    #[error("{system}: manifest() failed: {source}")]
    ManifestCall {
        /// The system's name.
        system: String,
        /// The failure.
        source: CallError,
    },
    /// The component is not the one the integrator pinned.
    #[error(
        "{path}: its SHA-256 is {found}, but the configuration pins {pinned}: refused (a different build; check where it came from, then update `sha256`)"
    )]
    Pinned {
        /// The file.
        path: PathBuf,
        /// The digest configured.
        pinned: String,
        /// The file's digest.
        found: String,
    },
    /// Compiling ran into a host failure (the blocking pool was shut down).
    #[error("{path}: cannot compile: {reason}")]
    Host {
        /// The file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// The engine could not be set up.
    #[error("cannot set up the wasm engine: {0}")]
    Engine(String),
}

/// Why one call into a connector failed. The host keeps serving either way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The connector answered with an error of its own.
    #[error("{0}")]
    Connector(ConnectorError),
    /// The call ran past its deadline and was stopped.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The connector tried to use more memory than its limit.
    #[error("exceeded its memory limit of {0} bytes")]
    MemoryLimit(u64),
    /// The connector trapped (panic, stack overflow, invalid operation).
    #[error("trapped: {0}")]
    Trap(String),
    /// The connector returned more than `max_output` bytes (or tried to
    /// pass more than that to the host in one call). Its own fault: not
    /// retried.
    #[error("returned more than the limit of {limit} bytes{}", size.map(|s| format!(" ({s} bytes)")).unwrap_or_default())]
    OutputTooLarge {
        /// What it returned, in bytes, when known (a result refused while it
        /// was being copied out of the connector is not measured).
        size: Option<u64>,
        /// The limit.
        limit: u64,
    },
    /// The connector made the host hold more on its behalf than a call may
    /// (resources such as HTTP requests, headers, bodies and streams). Its
    /// own fault: not retried.
    #[error("exceeded the host's per-call resource limit: {0}")]
    ResourceLimit(String),
    /// The connector broke the contract (e.g. returned more bytes than asked).
    #[error("broke the contract: {0}")]
    Protocol(String),
    /// The host could not run the call (instance pool exhausted, ...).
    #[error("host failure: {0}")]
    Host(String),
}

impl CallError {
    /// Whether retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            CallError::Connector(ConnectorError::Unavailable(_) | ConnectorError::RateLimited(_))
                | CallError::Timeout(_)
                | CallError::Host(_)
        )
    }

    /// A short, stable name for the kind of failure.
    pub fn kind(&self) -> &'static str {
        match self {
            CallError::Connector(e) => e.kind(),
            CallError::Timeout(_) => "timeout",
            CallError::MemoryLimit(_) => "memory-limit",
            CallError::Trap(_) => "trap",
            CallError::OutputTooLarge { .. } => "output-too-large",
            CallError::ResourceLimit(_) => "resource-limit",
            CallError::Protocol(_) => "protocol",
            CallError::Host(_) => "host",
        }
    }
}
