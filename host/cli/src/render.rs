//! Human renderings of the service's reports. `--json` prints the reports
//! themselves (their serde form is the interface); these are for people.
//!
//! Everything a connector said (manifest fields, record kinds, holds,
//! errors, warnings that quote its manifest) is untrusted: it passes through
//! [`t`] (control characters and bidi overrides made visible, length
//! capped) before it reaches the terminal.

use oubli_core::model::{for_display, wire_name};
use oubli_core::rights::SystemsCheck;
use oubli_core::rights::locate::{LocateReport, SystemAnswer};
use oubli_core::runtime::ComponentInfo;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Longest untrusted text shown in one place, in characters.
const MAX_TEXT: usize = 300;

/// Untrusted text, safe for a terminal.
fn t(text: &str) -> String {
    for_display(text, MAX_TEXT)
}

/// One line per system: what was found, or why not.
pub fn locate(report: &LocateReport) -> String {
    let width = report
        .systems
        .iter()
        .map(|r| r.system.len())
        .max()
        .unwrap_or(0);
    let mut s = String::new();
    for r in &report.systems {
        let line = match &r.answer {
            SystemAnswer::Found { records } if records.is_empty() => "nothing found".to_string(),
            SystemAnswer::Found { records } => {
                let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
                for l in records {
                    *kinds.entry(l.reference.kind.as_str()).or_default() += 1;
                }
                let kinds: Vec<String> = kinds
                    .iter()
                    .map(|(k, n)| format!("{} ×{n}", t(k)))
                    .collect();
                let holds: Vec<String> = records
                    .iter()
                    .filter_map(|l| l.hold.as_deref())
                    .map(t)
                    .collect();
                let mut line = format!(
                    "{} record{}: {}",
                    records.len(),
                    if records.len() == 1 { "" } else { "s" },
                    kinds.join(", ")
                );
                if !holds.is_empty() {
                    let _ = write!(line, "; {} on hold ({})", holds.len(), holds.join("; "));
                }
                line
            }
            SystemAnswer::Failed { error, .. } => format!("error: {}", t(error)),
            SystemAnswer::Refused { error } => format!("refused: {}", t(error)),
            SystemAnswer::Disabled => "disabled".to_string(),
        };
        let _ = writeln!(s, "{:width$}  {line}", r.system);
    }
    s
}

/// What a connector component is and asks for.
pub fn inspect(info: &ComponentInfo) -> String {
    let m = &info.manifest;
    let mut s = String::new();
    let _ = writeln!(s, "id:           {}", t(&m.id));
    let _ = writeln!(s, "name:         {}", t(&m.name));
    let _ = writeln!(s, "version:      {}", t(&m.version));
    let _ = writeln!(s, "system kind:  {}", wire_name(&m.system_kind));
    let _ = writeln!(s, "WIT version:  {}", t(&m.wit_version));
    let _ = writeln!(s, "sha256:       {}", info.sha256);
    let ops: Vec<String> = m.operations.iter().map(wire_name).collect();
    let _ = writeln!(s, "operations:   {}", ops.join(", "));
    let _ = writeln!(s, "hosts asked:  {}", list_or_none(&m.outbound_hosts));
    let _ = writeln!(s, "secrets:      {}", list_or_none(&m.secrets));
    if m.config_keys.is_empty() {
        let _ = writeln!(s, "config keys:  (none)");
    } else {
        let _ = writeln!(s, "config keys:");
        for k in &m.config_keys {
            let req = if k.required { " (required)" } else { "" };
            let _ = writeln!(s, "  {}{req}: {}", t(&k.name), t(&k.description));
        }
    }
    if m.categories.is_empty() {
        let _ = writeln!(s, "data categories: (none)");
    } else {
        let _ = writeln!(s, "data categories:");
        for c in &m.categories {
            let _ = writeln!(s, "  {}: {}", t(&c.name), t(&c.description));
            let _ = writeln!(s, "    purposes:   {}", list_or_none(&c.purposes));
            let _ = writeln!(s, "    retention:  {}", t(&c.retention));
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
        let _ = writeln!(s, "  {}", t(i));
    }
    s
}

/// One line per system: `ok` (with warnings), `refused` with the reason,
/// or `disabled`; then host-wide warnings.
pub fn check(check: &SystemsCheck) -> String {
    let mut s = String::new();
    let width = check
        .systems
        .iter()
        .map(|l| l.system.len())
        .max()
        .unwrap_or(0);
    for l in &check.systems {
        match (&l.connector, &l.error) {
            (Some(info), _) => {
                let m = &info.manifest;
                let reach = if info.reachable.is_empty() {
                    "no network".to_string()
                } else {
                    format!("reaches {}", t(&info.reachable.join(", ")))
                };
                let _ = writeln!(
                    s,
                    "ok       {:width$}  {} {} ({}), {} operations, {reach}",
                    l.system,
                    t(&m.id),
                    t(&m.version),
                    wire_name(&m.system_kind),
                    m.operations.len(),
                );
                for w in &info.warnings {
                    let _ = writeln!(s, "         {:width$}  warning: {}", "", t(w));
                }
            }
            (None, Some(e)) => {
                let _ = writeln!(s, "refused  {:width$}  {}", l.system, t(e));
            }
            (None, None) => {
                let _ = writeln!(s, "disabled {:width$}", l.system);
            }
        }
    }
    for w in &check.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    s
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".into()
    } else {
        t(&items.join(", "))
    }
}
