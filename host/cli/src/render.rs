//! Human renderings of the service's reports. `--json` prints the reports
//! themselves (their serde form is the interface); these are for people.
//!
//! Everything a connector said (manifest fields, record kinds, holds,
//! errors, warnings that quote its manifest) is untrusted: it passes through
//! [`t`] (control characters and bidi overrides made visible, length
//! capped) before it reaches the terminal.

use oubli_core::rights::SystemsCheck;
use oubli_core::rights::engine::{Action, RequestDetail, RequestView, date};
use oubli_core::rights::locate::{LocateReport, SystemAnswer};
use oubli_model::ComponentInfo;
use oubli_model::{Role, Status, for_display, wire_name};
use oubli_model::{TaskOp, TaskState};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Longest untrusted text shown in one place, in characters.
const MAX_TEXT: usize = 300;
/// Longest line of a manual task's instructions shown, in characters (the
/// host keeps steps of at most 4 KiB, so none reaches it).
const MAX_INSTRUCTION_LINE: usize = 16 * 1024;

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
    for r in &m.retention {
        let deletion = match r.deletion {
            oubli_model::Deletion::Final => "final".to_string(),
            oubli_model::Deletion::Restorable(days) => format!("restorable for {days} days"),
            oubli_model::Deletion::AnonymiseOnly => "anonymised only".to_string(),
        };
        let triggers: Vec<String> = r.triggers.iter().map(|x| t(x)).collect();
        let _ = writeln!(
            s,
            "sweeps:       {} ({}) by {}; deletion {deletion}{}",
            t(&r.category),
            t(&r.kind),
            triggers.join(", "),
            if r.native_holds {
                "; reports its own holds"
            } else {
                ""
            }
        );
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
                match &l.probe {
                    Some(Ok(0)) => {
                        let _ =
                            writeln!(s, "         {:width$}  probe: signed in and searched", "");
                    }
                    Some(Ok(n)) => {
                        let _ = writeln!(
                            s,
                            "         {:width$}  probe: signed in and searched ({n} records matched a search for nobody: check the connector)",
                            ""
                        );
                    }
                    Some(Err(e)) => {
                        let _ = writeln!(s, "         {:width$}  PROBE FAILED: {}", "", t(e));
                    }
                    None => {}
                }
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
        let _ = writeln!(s, "warning: {}", t(w));
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

fn when(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (h, m) = ((secs / 3600) % 24, (secs / 60) % 60);
    format!("{} {h:02}:{m:02}", date(ms))
}

fn due(r: &RequestView, now: i64) -> String {
    if r.state.is_final() {
        return format!("due {}", date(r.due_at));
    }
    let days = (r.due_at - now).div_euclid(86_400_000);
    if r.due_at < now {
        format!("due {}, OVERDUE by {} days", date(r.due_at), -days)
    } else {
        format!("due {} (in {days} days)", date(r.due_at))
    }
}

/// A request in full: header, per system its state, counts and records,
/// then its history. Connector text (summaries, reasons, errors,
/// instructions) is untrusted.
pub fn request(d: &RequestDetail, now: i64) -> String {
    let r = &d.request;
    let mut s = String::new();
    let _ = writeln!(s, "request {}  {}  {}", r.id, r.kind, r.state);
    let mut who = format!("filed by {} {}", r.requested_by, when(r.received_at));
    if let Some(a) = &r.attested_by {
        let _ = write!(who, "; identity attested by {a}");
    }
    if let Some(a) = &r.approved_by {
        let _ = write!(who, "; approved by {a}");
    }
    let _ = writeln!(s, "  {who}");
    let mut deadline = due(r, now);
    if r.extended_months > 0 {
        let _ = write!(deadline, ", extended by {} month(s)", r.extended_months);
    }
    let _ = writeln!(s, "  {deadline}");
    let _ = writeln!(s, "  subject (blind index) {}", r.subject.join(" "));
    if let Some(a) = &d.answer {
        match a.removed_at {
            Some(at) => {
                let _ = writeln!(
                    s,
                    "  answer kept {}, removed {} at the end of its keeping period",
                    when(a.kept_at),
                    when(at)
                );
            }
            None => {
                let _ = writeln!(
                    s,
                    "  answer kept {} ({} bytes, sha256 {}): `oubli bundle fetch {}`",
                    when(a.kept_at),
                    a.bytes,
                    &a.sha256[..16.min(a.sha256.len())],
                    r.id
                );
            }
        }
    }
    if let Some(p) = &d.planning {
        let _ = writeln!(
            s,
            "\n  {}  task {} (attempt {}/{}), next {}",
            if p.task.operation == TaskOp::Answer {
                "answer  "
            } else {
                "planning"
            },
            p.task.state,
            p.task.attempt,
            p.task.max_attempts,
            when(p.task.scheduled_at)
        );
        if let Some(e) = &p.error {
            let _ = writeln!(s, "    last error ({}): {}", e.kind, t(&e.message));
        }
        if p.task.state == TaskState::NeedsAttention {
            let _ = writeln!(
                s,
                "    needs attention: `oubli request retry {}` runs it again",
                r.id
            );
        }
    }
    for sys in &d.systems {
        let c = &sys.counts;
        let _ = writeln!(
            s,
            "\n  {}  {}{}  found {}, done {}, retained {}, not found {}, failed {}",
            sys.system,
            sys.state,
            sys.connector
                .as_deref()
                .map(|c| format!(" ({})", t(c)))
                .unwrap_or_default(),
            c.found,
            c.done,
            c.retained,
            c.not_found,
            c.failed
        );
        if let Some(reason) = &sys.paused {
            let _ = writeln!(s, "    PAUSED: {}", t(reason));
        }
        if let Some(task) = &sys.task
            && !task.state.is_final()
        {
            let _ = writeln!(
                s,
                "    task {} {} {} (attempt {}/{}{}), next {}",
                task.operation,
                task.stage,
                task.state,
                task.attempt,
                task.max_attempts,
                if task.polls > 0 {
                    format!(", {} polls", task.polls)
                } else {
                    String::new()
                },
                when(task.scheduled_at)
            );
        }
        if let Some(plan) = &sys.plan {
            for w in &plan.warnings {
                let _ = writeln!(s, "    WARNING: {}", t(w));
            }
            let outcomes = sys
                .result
                .as_ref()
                .map(|r| r.outcomes.as_slice())
                .unwrap_or(&[]);
            for item in &plan.items {
                let outcome = outcomes.iter().find(|o| o.reference == item.reference);
                let planned = match (&item.action, outcome) {
                    (Action::Retain(why), None) => format!("retain ({})", t(why)),
                    (a, _) => a.label().to_string(),
                };
                let outcome = outcome
                    .map(|o| match &o.status {
                        Status::Done => " -> done".to_string(),
                        Status::NotFound => " -> not found".to_string(),
                        Status::Retained(why) => format!(" -> retained ({})", t(why)),
                        Status::Pending(_) => " -> pending".to_string(),
                    })
                    .unwrap_or_default();
                let role = match item.role {
                    Role::Owner => "",
                    Role::Participant => " [shared: the person is one party]",
                    Role::Mentioned => " [shared: only mentions the person]",
                    Role::Unreported => " [role not reported]",
                };
                let _ = writeln!(
                    s,
                    "    {} {} ({}){role}: {planned}{outcome}",
                    t(&item.reference.kind),
                    t(&item.reference.id),
                    t(&item.summary)
                );
            }
        }
        if let Some(result) = &sys.result {
            for r in &result.still_found {
                let _ = writeln!(
                    s,
                    "    STILL FOUND after erasure: {} {}",
                    t(&r.kind),
                    t(&r.id)
                );
            }
            for m in &result.mismatches {
                let _ = writeln!(s, "    NOT CORRECTED: {}", t(m));
            }
            if !result.exported.is_empty() {
                let fields: usize = result.exported.iter().map(|e| e.fields.len()).sum();
                let _ = writeln!(
                    s,
                    "    read {} records, {fields} fields",
                    result.exported.len()
                );
            }
            if let Some(i) = &result.instructions {
                // Shown whole: each line neutralised, none cut short (a
                // step or command is bounded by the host already).
                let _ = writeln!(s, "    MANUAL TASK:");
                for line in i.lines() {
                    let _ = writeln!(s, "      {}", for_display(line, MAX_INSTRUCTION_LINE));
                }
            }
            if let Some(v) = &result.verified {
                let _ = writeln!(s, "    verified: {}", t(v));
            }
        }
        if let Some(e) = &sys.error
            && sys.state != oubli_model::SystemState::Done
            && e.kind != "manual"
        {
            let _ = writeln!(s, "    last error ({}): {}", e.kind, t(&e.message));
        }
    }
    let _ = writeln!(s, "\n  history");
    for e in &d.events {
        let mut line = format!("    {}  {}  {}", when(e.at), e.actor, e.action);
        if let Some(sys) = &e.system {
            let _ = write!(line, " [{sys}]");
        }
        if let (Some(f), Some(to)) = (&e.from, &e.to)
            && f != to
        {
            let _ = write!(line, "  {f} -> {to}");
        }
        if let Some(r) = &e.reason {
            let _ = write!(line, "  ({})", t(&r.replace('\n', "; ")));
        }
        let _ = writeln!(s, "{line}");
    }
    s
}

/// One line per request, in columns as wide as their widest cell.
pub fn requests(rows: &[RequestView], now: i64) -> String {
    if rows.is_empty() {
        return "no requests\n".into();
    }
    let id = rows.iter().map(|r| r.id.len()).max().unwrap_or(0).max(2);
    let by = rows
        .iter()
        .map(|r| r.requested_by.chars().count())
        .max()
        .unwrap_or(0)
        .max(8);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<id$}  {:<18}  {:<19}  {:<by$}  DEADLINE",
        "ID", "KIND", "STATE", "FILED BY"
    );
    for r in rows {
        let _ = writeln!(
            s,
            "{:<id$}  {:<18}  {:<19}  {:<by$}  {}",
            r.id,
            r.kind.as_str(),
            r.state.as_str(),
            r.requested_by,
            due(r, now)
        );
    }
    s
}
