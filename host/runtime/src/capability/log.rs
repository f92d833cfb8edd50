//! `host.log`: connector log lines into the host's log, tagged with the
//! system's name, one line each (control characters replaced), at most
//! [`MAX_LOG_MESSAGE`] bytes, at most [`MAX_LOGS_PER_CALL`] per call.

use super::mask::Mask;
use super::{Capability, sanitize};
use crate::ConnectorSpec;
use oubli_model::Manifest;
use std::sync::Arc;

/// Longest log message kept from a connector, in bytes.
pub const MAX_LOG_MESSAGE: usize = 1024;
/// Log messages a connector may write in one call; the rest are dropped.
pub const MAX_LOGS_PER_CALL: u32 = 200;

/// The log capability.
pub struct Log;

/// How severe a connector's log line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Trace.
    Trace,
    /// Debug.
    Debug,
    /// Info.
    Info,
    /// Warn.
    Warn,
    /// Error.
    Error,
}

/// One call's log budget, and the identifiers it masks.
pub struct CallLog {
    plugin: Arc<str>,
    left: u32,
    mask: Option<Arc<Mask>>,
}

impl Capability for Log {
    type Shared = ();
    type Call = CallLog;

    fn configure(_: &Manifest, _: &ConnectorSpec, _: &mut Vec<String>) -> Result<(), String> {
        Ok(())
    }

    fn prepare(plugin: &Arc<str>, _: &Arc<()>) -> CallLog {
        CallLog {
            plugin: plugin.clone(),
            left: MAX_LOGS_PER_CALL,
            mask: None,
        }
    }
}

impl CallLog {
    /// Mask the call's subject in every line.
    pub fn masking(mut self, mask: Option<Arc<Mask>>) -> Self {
        self.mask = mask;
        self
    }

    /// Log one line from the connector; the line as logged (masked, cut),
    /// or `None` when the call's quota of lines is spent.
    pub fn log(&mut self, level: Level, message: &str) -> Option<String> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let plugin = &*self.plugin;
        if self.left == 0 {
            tracing::warn!(
                system = plugin,
                "log limit of {MAX_LOGS_PER_CALL} messages per call reached; dropping the rest"
            );
            return None;
        }
        // Mask a bounded window (an identifier straddling the final cut is
        // masked whole), then cut to size on one line.
        let message = match &self.mask {
            Some(mask) => sanitize(
                &mask.apply(&sanitize(message, 4 * MAX_LOG_MESSAGE)),
                MAX_LOG_MESSAGE,
            ),
            None => sanitize(message, MAX_LOG_MESSAGE),
        };
        match level {
            Level::Trace => tracing::trace!(system = plugin, "{message}"),
            Level::Debug => tracing::debug!(system = plugin, "{message}"),
            Level::Info => tracing::info!(system = plugin, "{message}"),
            Level::Warn => tracing::warn!(system = plugin, "{message}"),
            Level::Error => tracing::error!(system = plugin, "{message}"),
        }
        Some(message)
    }
}
