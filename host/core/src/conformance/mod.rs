//! The conformance kit (`oubli connector test`): a connector is run through
//! the real runtime, against the vendor's own test system, and checked case
//! by case against a fixture that says what the system holds of one seeded
//! person. Each case passes or fails with its reason; a report is text,
//! JSON or JUnit XML and names the component by its SHA-256.
//!
//! What the system does is seen from the host's side only: the runtime's
//! outbound layer shows the kit every request the connector makes (to count
//! writes during reads), and answers in the system's place to play its
//! failures (401, 403, 404, 429 with `Retry-After` in seconds and as a
//! date, 503, a reset connection, a body that is not JSON). Destructive
//! cases (rectify, erase, restrict) run only when asked.

pub mod cassette;

use crate::identifiers::Identifiers;
use oubli_model::{
    Change, ConnectorError, EraseMode, Located, Operation, RecordRef, Role, Status, Subject,
    SweepQuery,
};
use oubli_runtime::{CallError, Connector, Fault, Recorded, Tap};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What the vendor's test system holds of the seeded person
/// (`conformance.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixture {
    /// The seeded person's identifiers.
    pub subject: Identifiers,
    /// Every record of the person the system holds.
    #[serde(default)]
    pub records: Vec<Expected>,
    /// Other people, close to the subject (a near-miss address, a longer
    /// number that contains theirs, a namesake): they must find none of
    /// the subject's records, nor the subject theirs.
    #[serde(default)]
    pub decoys: Vec<Identifiers>,
    /// Someone the system does not know: found nothing, and not an error.
    #[serde(default = "nobody")]
    pub unknown: Identifiers,
    /// Requests during reads that are not writes although their method
    /// is (APIs that search with POST), as path prefixes, where `*` stands
    /// for any one path segment (`/lists/*/contacts/search`).
    #[serde(default)]
    pub read_posts: Vec<String>,
    /// The correction the destructive cases make and read back.
    pub rectify: Option<Rectify>,
    /// The retention sweep the kit runs and checks.
    pub sweep: Option<Sweep>,
    /// How long the system's search may lag its deletions: `erase.gone`
    /// asks again, a second apart, for up to this many seconds (5 unless
    /// set).
    #[serde(default = "five")]
    pub settle_seconds: u64,
    /// How erasure is asked for (`delete` unless set).
    #[serde(default)]
    pub erase_mode: Option<String>,
    /// Faults not to play (`"403"`, `"reset"`, ...), with the reason in a
    /// comment.
    #[serde(default)]
    pub skip_faults: Vec<String>,
    /// The text it was read from (rewritten for a recording).
    #[serde(skip)]
    source: String,
}

fn five() -> u64 {
    5
}

fn nobody() -> Identifiers {
    Identifiers {
        emails: vec!["nobody-conformance@kit.invalid".into()],
        ..Default::default()
    }
}

/// Every identifier a fixture gives of one person.
fn values(i: &Identifiers) -> impl Iterator<Item = &String> {
    i.emails
        .iter()
        .chain(&i.phones)
        .chain(&i.names)
        .chain(&i.external_ids)
}

/// A record the system holds of the person.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expected {
    /// Its kind, as the connector names it.
    pub kind: String,
    /// Its id, when known in advance.
    pub id: Option<String>,
    /// The person's role in it (contract 0.2.0).
    pub role: Option<String>,
    /// The identifiers that find it alone (all of the subject's unless
    /// said).
    pub found_by: Option<Vec<String>>,
    /// The system keeps it when asked to erase (a hold of its own).
    #[serde(default)]
    pub retained: bool,
}

impl Expected {
    fn matches(&self, r: &RecordRef) -> bool {
        r.kind == self.kind && self.id.as_ref().is_none_or(|id| *id == r.id)
    }

    fn label(&self) -> String {
        format!("{}/{}", self.kind, self.id.as_deref().unwrap_or("*"))
    }
}

/// The correction the destructive cases make.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rectify {
    /// The record's kind.
    pub kind: String,
    /// The record's id.
    pub id: String,
    /// The field to change.
    pub field: String,
    /// Its new value.
    pub value: String,
}

/// The sweep the kit runs: the records of `category` dated before `before`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sweep {
    /// The category.
    pub category: String,
    /// The trigger date (the connector's first unless set).
    pub trigger: Option<String>,
    /// The cutoff, RFC 3339.
    pub before: String,
    /// Every record due, `kind/id`.
    pub expect: Vec<String>,
}

impl Fixture {
    /// Read a fixture; one line saying what is wrong.
    pub fn parse(text: &str) -> Result<Fixture, String> {
        let mut f: Fixture = toml::from_str(text).map_err(|e| one_line(&e.to_string()))?;
        f.source = text.to_string();
        if values(&f.subject).next().is_none() {
            return Err("[subject] gives no identifier".into());
        }
        if let Some(m) = &f.erase_mode
            && m != "delete"
            && m != "anonymise"
        {
            return Err(format!("erase_mode {m:?} is not `delete` or `anonymise`"));
        }
        for r in &f.records {
            if let Some(role) = &r.role
                && role_of(role).is_none()
            {
                return Err(format!(
                    "record {}: role {role:?} is not owner, participant or mentioned",
                    r.label()
                ));
            }
        }
        Ok(f)
    }
}

fn role_of(s: &str) -> Option<Role> {
    match s {
        "owner" => Some(Role::Owner),
        "participant" => Some(Role::Participant),
        "mentioned" => Some(Role::Mentioned),
        _ => None,
    }
}

/// Everything the fixture's people are known by, and the secrets: to look
/// for in what a connector says, and in a recording.
pub(crate) struct Personal {
    /// Lowercased; phones also by their last nine digits (all digits).
    values: Vec<String>,
    secrets: Vec<String>,
}

impl Personal {
    fn new(fixture: &Fixture, normalised: &[&Subject], secrets: &[String]) -> Personal {
        let mut out = BTreeSet::new();
        for s in std::iter::once(&fixture.subject).chain(&fixture.decoys) {
            for v in values(s) {
                let v = v.trim().to_lowercase();
                if v.len() >= 4 {
                    out.insert(v);
                }
            }
            for p in &s.phones {
                let digits: String = p.chars().filter(char::is_ascii_digit).collect();
                if digits.len() >= 9 {
                    out.insert(digits[digits.len() - 9..].to_string());
                }
            }
        }
        for s in normalised {
            out.extend(s.emails.iter().map(|e| e.to_lowercase()));
            out.extend(s.phones.iter().map(|p| p.to_lowercase()));
        }
        Personal {
            values: out.into_iter().collect(),
            secrets: secrets.iter().filter(|s| s.len() >= 4).cloned().collect(),
        }
    }

    /// What of the people or the secrets `text` carries, named without
    /// repeating it. Numbers are looked for in each run of digits (spaces,
    /// dots, dashes and brackets between them allowed).
    fn leaks(&self, text: &str) -> Option<String> {
        let lower = text.to_lowercase();
        let runs = digit_runs(text);
        for p in &self.values {
            let hit = if p.chars().all(|c| c.is_ascii_digit()) {
                runs.iter().any(|r| r.contains(p.as_str()))
            } else {
                lower.contains(p.as_str())
            };
            if hit {
                return Some("one of the fixture's identifiers".into());
            }
        }
        if self.secrets.iter().any(|s| text.contains(s.as_str())) {
            return Some("a secret".into());
        }
        None
    }
}

/// The runs of digits in `text`, as a phone number may be written (with
/// spaces, dots, dashes, slashes or brackets between the digits).
fn digit_runs(text: &str) -> Vec<String> {
    let mut runs = Vec::new();
    let mut run = String::new();
    for c in text.chars() {
        let separator = matches!(c, ' ' | '.' | '-' | '/' | '(' | ')');
        if c.is_ascii_digit() {
            run.push(c);
        } else if !separator && !run.is_empty() {
            runs.push(std::mem::take(&mut run));
        }
    }
    if !run.is_empty() {
        runs.push(run);
    }
    runs
}

/// How one case ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// It holds.
    Pass,
    /// It does not; the reason says why.
    Fail,
    /// Not run (the connector does not offer it, or the fixture or the
    /// options leave it out); the reason says which.
    Skip,
}

/// One case of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Case {
    /// `group.name`, e.g. `locate.decoys`.
    pub name: String,
    /// How it ended.
    pub verdict: Verdict,
    /// Why (what was found, or what was wrong).
    pub reason: String,
    /// How long it took, in milliseconds.
    pub millis: u64,
}

/// The kit's report on one connector.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The configured system.
    pub system: String,
    /// `id@version` of the connector.
    pub connector: String,
    /// The contract version it was built against.
    pub contract: String,
    /// SHA-256 of the component.
    pub sha256: String,
    /// Whether destructive cases ran.
    pub destructive: bool,
    /// The cases, in the order run.
    pub cases: Vec<Case>,
}

impl Report {
    /// Cases that failed.
    pub fn failures(&self) -> usize {
        self.cases
            .iter()
            .filter(|c| c.verdict == Verdict::Fail)
            .count()
    }

    /// The report as JUnit XML (one suite, one test case per case).
    pub fn junit(&self) -> String {
        let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let total: u64 = self.cases.iter().map(|c| c.millis).sum();
        let skipped = self
            .cases
            .iter()
            .filter(|c| c.verdict == Verdict::Skip)
            .count();
        s.push_str(&format!(
            "<testsuites name=\"oubli connector test\" tests=\"{}\" failures=\"{}\" skipped=\"{skipped}\" time=\"{:.3}\">\n",
            self.cases.len(),
            self.failures(),
            total as f64 / 1000.0
        ));
        s.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" skipped=\"{skipped}\" time=\"{:.3}\">\n",
            xml(&format!("{} ({})", self.system, self.connector)),
            self.cases.len(),
            self.failures(),
            total as f64 / 1000.0
        ));
        s.push_str("    <properties>\n");
        for (k, v) in [
            ("connector", &self.connector),
            ("contract", &self.contract),
            ("sha256", &self.sha256),
            ("destructive", &self.destructive.to_string()),
        ] {
            s.push_str(&format!(
                "      <property name=\"{k}\" value=\"{}\"/>\n",
                xml(v)
            ));
        }
        s.push_str("    </properties>\n");
        for c in &self.cases {
            let (group, name) = c.name.split_once('.').unwrap_or(("kit", &c.name));
            s.push_str(&format!(
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
                xml(group),
                xml(name),
                c.millis as f64 / 1000.0
            ));
            match c.verdict {
                Verdict::Pass => s.push_str("/>\n"),
                Verdict::Fail => s.push_str(&format!(
                    ">\n      <failure message=\"{}\"/>\n    </testcase>\n",
                    xml(&c.reason)
                )),
                Verdict::Skip => s.push_str(&format!(
                    ">\n      <skipped message=\"{}\"/>\n    </testcase>\n",
                    xml(&c.reason)
                )),
            }
        }
        s.push_str("  </testsuite>\n</testsuites>\n");
        s
    }
}

fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The host's view of the connector's requests during the kit: every
/// request's method and path, and the fault to answer with, if any.
#[derive(Default)]
pub struct KitTap {
    state: Mutex<TapState>,
}

#[derive(Default)]
struct TapState {
    fault: Option<Fault>,
    seen: Vec<(String, String)>,
    /// What the system answered, when recording.
    recording: Option<Vec<Recorded>>,
    /// The recorded answers, when replaying.
    player: Option<cassette::Player>,
    /// Requests a replay had no answer for.
    misses: Vec<String>,
    /// What the connector logged.
    logged: Vec<String>,
    /// Answer every second request with a 503, let the others through.
    partial: bool,
    /// Requests seen while `partial`.
    counted: usize,
}

impl Tap for KitTap {
    fn request(&self, method: &str, path: &str) -> Option<Fault> {
        let mut s = self.state.lock().ok()?;
        s.seen.push((method.to_string(), path.to_string()));
        if s.fault.is_some() {
            return s.fault.clone();
        }
        if s.partial {
            s.counted += 1;
            if s.counted % 2 == 0 {
                return Some(Fault::Respond {
                    status: 503,
                    headers: vec![("content-type".into(), "text/plain".into())],
                    body: b"busy".to_vec(),
                });
            }
        }
        let s = &mut *s;
        let player = s.player.as_mut()?;
        match player.answer(method, path) {
            Some(answer) => Some(answer),
            None => {
                s.misses
                    .push(format!("{method} {}", path.split('?').next().unwrap_or("")));
                Some(Fault::Reset)
            }
        }
    }

    fn records(&self) -> bool {
        self.state.lock().is_ok_and(|s| s.recording.is_some())
    }

    fn log(&self, line: &str) {
        if let Ok(mut s) = self.state.lock()
            && s.logged.len() < 10_000
        {
            s.logged.push(line.to_string());
        }
    }

    fn response(&self, exchange: Recorded) {
        if let Ok(mut s) = self.state.lock()
            && s.fault.is_none()
            && let Some(r) = s.recording.as_mut()
        {
            r.push(exchange);
        }
    }
}

impl KitTap {
    /// A tap that records what the system answers.
    pub fn recording() -> KitTap {
        let tap = KitTap::default();
        if let Ok(mut s) = tap.state.lock() {
            s.recording = Some(Vec::new());
        }
        tap
    }

    /// A tap that answers from `cassette` instead of the system.
    pub fn replaying(cassette: &cassette::Cassette) -> KitTap {
        let tap = KitTap::default();
        if let Ok(mut s) = tap.state.lock() {
            s.player = Some(cassette::Player::new(cassette));
        }
        tap
    }

    fn replays(&self) -> bool {
        self.state.lock().is_ok_and(|s| s.player.is_some())
    }

    fn set(&self, fault: Option<Fault>) {
        if let Ok(mut s) = self.state.lock() {
            s.fault = fault;
        }
    }

    fn set_partial(&self, on: bool) {
        if let Ok(mut s) = self.state.lock() {
            s.partial = on;
            s.counted = 0;
        }
    }

    fn take(&self) -> Vec<(String, String)> {
        self.state
            .lock()
            .map(|mut s| std::mem::take(&mut s.seen))
            .unwrap_or_default()
    }

    fn logged(&self) -> Vec<String> {
        self.state
            .lock()
            .map(|s| s.logged.clone())
            .unwrap_or_default()
    }

    fn misses(&self) -> Vec<String> {
        self.state
            .lock()
            .map(|s| s.misses.clone())
            .unwrap_or_default()
    }

    fn recorded(&self) -> Vec<Recorded> {
        self.state
            .lock()
            .map(|mut s| s.recording.take().unwrap_or_default())
            .unwrap_or_default()
    }
}

/// How to run the kit.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Run the cases that change the system (rectify, erase, restrict).
    pub destructive: bool,
    /// Answer from this recording instead of the system.
    pub replay: Option<cassette::Cassette>,
}

/// A recording made by the kit: the exchanges, and the fixture rewritten
/// with the same placeholders, to write beside it.
#[derive(Debug, Clone)]
pub struct Recording {
    /// The exchanges.
    pub cassette: cassette::Cassette,
    /// The fixture, rewritten.
    pub fixture: String,
}

/// Runs the kit on one loaded connector.
pub struct Kit<'a> {
    system: &'a str,
    connector: &'a Connector,
    fixture: &'a Fixture,
    subject: Subject,
    decoys: Vec<Subject>,
    unknown: Subject,
    /// Each identifier alone, as a subject, with the text the fixture gave.
    alone: Vec<(String, Subject)>,
    tap: Arc<KitTap>,
    options: Options,
    /// The people and the secrets: never in what it says.
    personal: Personal,
    cases: Vec<Case>,
}

type Check = Result<String, String>;

/// `Ok` with what `ok` says when nothing was found wrong, else every
/// wrong thing.
fn unless_wrong(wrong: &[String], ok: impl FnOnce() -> String) -> Check {
    if wrong.is_empty() {
        Ok(ok())
    } else {
        Err(wrong.join("; "))
    }
}

/// The erasure cases, skipped together when erasure cannot be checked.
const ERASE_CASES: [&str; 5] = [
    "erase.outcomes",
    "erase.gone",
    "erase.others-survive",
    "erase.again",
    "erase.missing",
];

/// What a fault case expects of the connector's error.
type Expect = Box<dyn Fn(&CallError) -> Result<(), String> + Send + Sync>;

/// What the runtime puts in place of the subject's identifiers and the
/// secrets in whatever a connector says (`capability::mask`).
const MASKED: [(&str, &str); 5] = [
    ("[email]", "email address"),
    ("[phone]", "phone number"),
    ("[name]", "name"),
    ("[id]", "external id"),
    ("[secret]", "secret"),
];

impl<'a> Kit<'a> {
    /// Prepare the kit: the fixture's identifiers are read as the service
    /// reads a request's (`normalise` with the configured region). The tap
    /// must be the one set on `connector`.
    pub fn new(
        system: &'a str,
        connector: &'a Connector,
        fixture: &'a Fixture,
        normalise: impl Fn(&Identifiers) -> Result<Subject, String>,
        tap: Arc<KitTap>,
        secrets: Vec<String>,
        options: Options,
    ) -> Result<Kit<'a>, String> {
        let subject = normalise(&fixture.subject).map_err(|e| format!("[subject]: {e}"))?;
        let decoys = fixture
            .decoys
            .iter()
            .enumerate()
            .map(|(i, d)| normalise(d).map_err(|e| format!("decoys[{i}]: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        let unknown = normalise(&fixture.unknown).map_err(|e| format!("[unknown]: {e}"))?;
        // Each identifier alone, as a subject of its own.
        let s = &fixture.subject;
        let single = |f: fn(String) -> Identifiers| move |v: &String| (v.clone(), f(v.clone()));
        let alone = s
            .emails
            .iter()
            .map(single(|v| Identifiers {
                emails: vec![v],
                ..Default::default()
            }))
            .chain(s.phones.iter().map(single(|v| Identifiers {
                phones: vec![v],
                ..Default::default()
            })))
            .chain(s.external_ids.iter().map(single(|v| Identifiers {
                external_ids: vec![v],
                ..Default::default()
            })))
            .map(|(given, one)| Ok((given, normalise(&one)?)))
            .collect::<Result<Vec<_>, String>>()?;
        let mut known = vec![&subject];
        known.extend(decoys.iter());
        let personal = Personal::new(fixture, &known, &secrets);
        Ok(Kit {
            system,
            connector,
            fixture,
            subject,
            decoys,
            unknown,
            alone,
            tap,
            options,
            personal,
            cases: Vec::new(),
        })
    }

    fn record(&mut self, name: &str, started: Instant, verdict: Verdict, reason: String) {
        self.cases.push(Case {
            name: name.to_string(),
            verdict,
            reason: one_line(&reason),
            millis: started.elapsed().as_millis() as u64,
        });
    }

    fn check(&mut self, name: &str, started: Instant, result: Check) {
        match result {
            Ok(r) => self.record(name, started, Verdict::Pass, r),
            Err(r) => self.record(name, started, Verdict::Fail, r),
        }
    }

    fn skip(&mut self, name: &str, why: &str) {
        self.record(name, Instant::now(), Verdict::Skip, why.into());
    }

    /// What of the fixture's personal data or the secrets `text` carries,
    /// or of what the host masked there, named without repeating it.
    fn leaks(&self, text: &str) -> Option<String> {
        if let Some(leak) = self.personal.leaks(text) {
            return Some(leak);
        }
        // What the runtime masked on its way out: the connector said it.
        for (marker, what) in MASKED {
            if text.contains(marker) {
                return Some(format!(
                    "the subject's {what} (masked by the host as {marker})"
                ));
            }
        }
        None
    }

    /// Run every case; the report.
    pub async fn run(mut self) -> Report {
        let info = self.connector.info().clone();
        self.manifest();
        let found = self.locate().await;
        self.export(&found).await;
        self.faults().await;
        // Before anything is erased: the fixture's dated records are there.
        self.sweep().await;
        let replaying = self.tap.replays();
        if self.options.destructive && !replaying {
            self.destructive(&found).await;
        } else {
            let why = if replaying {
                "destructive cases run live only, never from a recording"
            } else {
                "destructive cases run only with --destructive"
            };
            for c in ["rectify.read-back", "restrict.on-off"]
                .into_iter()
                .chain(ERASE_CASES)
            {
                self.skip(c, why);
            }
        }
        // Everything the connector logged during the whole run.
        let t = Instant::now();
        let logged = self.tap.logged();
        let leaking = logged.iter().filter_map(|l| self.leaks(l)).next();
        self.check(
            "log.clean",
            t,
            match leaking {
                None => Ok(format!("{} lines logged, none personal", logged.len())),
                Some(leak) => Err(format!("a line it logged carries {leak}")),
            },
        );
        if replaying {
            let t = Instant::now();
            let misses = self.tap.misses();
            self.check(
                "replay.complete",
                t,
                if misses.is_empty() {
                    Ok("every request found its recorded answer".into())
                } else {
                    Err(format!(
                        "{} requests the recording has no answer for (the connector asks differently now): {}",
                        misses.len(),
                        distinct(&misses)
                    ))
                },
            );
        }
        Report {
            system: self.system.to_string(),
            connector: format!("{}@{}", info.manifest.id, info.manifest.version),
            contract: info.manifest.wit_version.clone(),
            sha256: info.sha256.clone(),
            destructive: self.options.destructive,
            cases: self.cases,
        }
    }

    fn manifest(&mut self) {
        let m = self.connector.manifest().clone();
        let t = Instant::now();
        let id_ok = !m.id.is_empty()
            && m.id.len() <= 64
            && m.id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        self.check(
            "manifest.id",
            t,
            if id_ok {
                Ok(format!("{:?}", m.id))
            } else {
                Err(format!(
                    "id {:?} is not lowercase letters, digits and hyphens (at most 64)",
                    m.id
                ))
            },
        );
        let t = Instant::now();
        self.check(
            "manifest.version",
            t,
            if semver(&m.version) {
                Ok(m.version.clone())
            } else {
                Err(format!(
                    "version {:?} is not semver (MAJOR.MINOR.PATCH)",
                    m.version
                ))
            },
        );
        let t = Instant::now();
        self.check(
            "manifest.contract",
            t,
            Ok(format!("built against oubli:connector@{}", m.wit_version)),
        );
        let t = Instant::now();
        let mut wrong = Vec::new();
        for k in &m.config_keys {
            if k.description.trim().is_empty() {
                wrong.push(format!("config key {:?} has no description", k.name));
            }
        }
        for c in &m.categories {
            if c.description.trim().is_empty() || c.purposes.is_empty() {
                wrong.push(format!(
                    "category {:?} needs a description and a purpose (they go into the register)",
                    c.name
                ));
            }
        }
        if !m.operations.contains(&Operation::Locate) {
            wrong.push("locate is not among its operations".into());
        }
        self.check(
            "manifest.documented",
            t,
            unless_wrong(&wrong, || {
                format!(
                    "{} config keys, {} secrets, {} categories, each described",
                    m.config_keys.len(),
                    m.secrets.len(),
                    m.categories.len()
                )
            }),
        );
        let t = Instant::now();
        let bad: Vec<&String> = m
            .outbound_hosts
            .iter()
            .filter(|h| !host_pattern(h))
            .collect();
        self.check(
            "manifest.hosts",
            t,
            if bad.is_empty() {
                Ok(format!("asks for {}", m.outbound_hosts.join(", ")))
            } else {
                Err(format!(
                    "hosts that are not host names or patterns: {bad:?}"
                ))
            },
        );
    }

    async fn locate_logged(
        &self,
        subject: &Subject,
    ) -> (Result<Vec<Located>, CallError>, Vec<String>) {
        self.tap.take();
        let r = self.connector.locate(subject).await;
        let writes = self.writes(&self.tap.take());
        (r, writes)
    }

    /// The requests among `seen` that write: each as its method and path,
    /// without the query, and unless the path names a fixture's person.
    fn writes(&self, seen: &[(String, String)]) -> Vec<String> {
        let reads = |m: &str, p: &str| {
            matches!(m, "GET" | "HEAD" | "OPTIONS")
                || (m == "POST"
                    && self
                        .fixture
                        .read_posts
                        .iter()
                        .any(|prefix| prefix_glob(prefix, p)))
        };
        seen.iter()
            .filter(|(m, p)| !reads(m, p))
            .map(|(m, p)| {
                let path = p.split('?').next().unwrap_or("");
                match self.leaks(path) {
                    Some(_) => format!("{m} (a path naming a person)"),
                    None => format!("{m} {}", one_line(path)),
                }
            })
            .collect()
    }

    async fn locate(&mut self) -> Vec<Located> {
        let t = Instant::now();
        let subject = self.subject.clone();
        let (first, mut writes) = self.locate_logged(&subject).await;
        let found = match first {
            Ok(f) => f,
            Err(e) => {
                self.check(
                    "locate.together",
                    t,
                    Err(format!("locate failed: {}", self.said(&e))),
                );
                for c in [
                    "locate.alone",
                    "locate.roles",
                    "locate.decoys",
                    "locate.summaries",
                    "locate.stable",
                    "locate.unknown",
                    "locate.read-only",
                ] {
                    self.skip(c, "locate of the subject failed");
                }
                return Vec::new();
            }
        };
        let missing: Vec<String> = self
            .fixture
            .records
            .iter()
            .filter(|e| !found.iter().any(|l| e.matches(&l.reference)))
            .map(Expected::label)
            .collect();
        let extra: Vec<String> = found
            .iter()
            .filter(|l| !self.fixture.records.iter().any(|e| e.matches(&l.reference)))
            .map(|l| format!("{}/{}", l.reference.kind, l.reference.id))
            .collect();
        self.check(
            "locate.together",
            t,
            if !missing.is_empty() {
                Err(format!(
                    "not found from all identifiers together: {}",
                    missing.join(", ")
                ))
            } else if !extra.is_empty() {
                Err(format!(
                    "found records the fixture does not list (another person's?): {}",
                    extra.join(", ")
                ))
            } else {
                Ok(format!("found the {} records listed", found.len()))
            },
        );

        // Each identifier alone.
        let t = Instant::now();
        let mut wrong = Vec::new();
        for (given, one) in self.alone.clone() {
            let (r, w) = self.locate_logged(&one).await;
            writes.extend(w);
            match r {
                Err(e) => wrong.push(format!("one identifier: {}", self.said(&e))),
                Ok(hits) => {
                    for e in &self.fixture.records {
                        let by_it = e
                            .found_by
                            .as_ref()
                            .is_none_or(|by| by.iter().any(|b| b == &given));
                        if by_it && !hits.iter().any(|l| e.matches(&l.reference)) {
                            wrong.push(format!(
                                "{} not found from one of its identifiers alone",
                                e.label()
                            ));
                        }
                    }
                }
            }
        }
        self.check(
            "locate.alone",
            t,
            unless_wrong(&wrong, || {
                format!(
                    "each of {} identifiers alone finds its records",
                    self.alone.len()
                )
            }),
        );

        let t = Instant::now();
        let mut wrong = Vec::new();
        let mut checked = 0;
        for e in &self.fixture.records {
            let Some(want) = e.role.as_deref().and_then(role_of) else {
                continue;
            };
            checked += 1;
            for l in found.iter().filter(|l| e.matches(&l.reference)) {
                if l.role != want {
                    wrong.push(format!(
                        "{}: role {:?}, the fixture says {:?}",
                        e.label(),
                        l.role,
                        want
                    ));
                }
            }
        }
        if checked == 0 {
            self.skip("locate.roles", "the fixture gives no role");
        } else {
            self.check(
                "locate.roles",
                t,
                unless_wrong(&wrong, || format!("{checked} roles as the fixture says")),
            );
        }

        // Decoys: other people close to the subject.
        let t = Instant::now();
        let mut wrong = Vec::new();
        for (i, d) in self.decoys.clone().iter().enumerate() {
            let (r, w) = self.locate_logged(d).await;
            writes.extend(w);
            match r {
                Err(e) => wrong.push(format!("decoys[{i}]: {}", self.said(&e))),
                Ok(hits) => {
                    for l in &hits {
                        let theirs = self.fixture.records.iter().any(|e| {
                            e.matches(&l.reference)
                                && matches!(e.role.as_deref(), None | Some("owner"))
                        });
                        if theirs {
                            wrong.push(format!(
                                "decoys[{i}] finds the subject's {}/{}",
                                l.reference.kind, l.reference.id
                            ));
                        }
                    }
                }
            }
        }
        if self.decoys.is_empty() {
            self.skip("locate.decoys", "the fixture gives no decoy");
        } else {
            self.check(
                "locate.decoys",
                t,
                unless_wrong(&wrong, || {
                    format!(
                        "{} decoys find none of the subject's records",
                        self.decoys.len()
                    )
                }),
            );
        }

        let t = Instant::now();
        let mut wrong = Vec::new();
        for l in &found {
            for (what, text) in [("summary", Some(&l.summary)), ("hold", l.hold.as_ref())] {
                if let Some(text) = text
                    && let Some(leak) = self.leaks(text)
                {
                    wrong.push(format!(
                        "the {what} of {}/{} carries {leak}",
                        l.reference.kind, l.reference.id
                    ));
                }
            }
        }
        self.check(
            "locate.summaries",
            t,
            unless_wrong(&wrong, || "no summary or hold carries personal data".into()),
        );

        let t = Instant::now();
        let (again, w) = self.locate_logged(&subject).await;
        writes.extend(w);
        let refs = |v: &[Located]| -> BTreeSet<(String, String)> {
            v.iter()
                .map(|l| (l.reference.kind.clone(), l.reference.id.clone()))
                .collect()
        };
        self.check(
            "locate.stable",
            t,
            match again {
                Ok(a) if refs(&a) == refs(&found) => Ok("the same records twice".into()),
                Ok(a) => Err(format!(
                    "a second locate found {} records, the first {}",
                    a.len(),
                    found.len()
                )),
                Err(e) => Err(format!("a second locate failed: {}", self.said(&e))),
            },
        );

        let t = Instant::now();
        let unknown = self.unknown.clone();
        let (r, w) = self.locate_logged(&unknown).await;
        writes.extend(w);
        self.check(
            "locate.unknown",
            t,
            match r {
                Ok(v) if v.is_empty() => Ok("nothing found, no error".into()),
                Ok(v) => Err(format!("found {} records of someone unknown", v.len())),
                Err(e) => Err(format!(
                    "someone unknown is an error, not an empty answer: {}",
                    self.said(&e)
                )),
            },
        );

        let t = Instant::now();
        self.check(
            "locate.read-only",
            t,
            if writes.is_empty() {
                Ok("no write among its requests".into())
            } else {
                Err(format!(
                    "{} requests that write during locate: {}",
                    writes.len(),
                    distinct(&writes)
                ))
            },
        );
        found
    }

    async fn export(&mut self, found: &[Located]) {
        if !self.connector.offers(Operation::Export) {
            for c in ["export.complete", "export.categories", "export.attachments"] {
                self.skip(c, "the connector does not export");
            }
            return;
        }
        if found.is_empty() {
            for c in ["export.complete", "export.categories", "export.attachments"] {
                self.skip(c, "nothing was located to export");
            }
            return;
        }
        let t = Instant::now();
        let refs: Vec<RecordRef> = found.iter().map(|l| l.reference.clone()).collect();
        self.tap.take();
        let exported = match self.connector.export(&refs).await {
            Ok(e) => e,
            Err(e) => {
                let said = self.said(&e);
                self.check("export.complete", t, Err(format!("export failed: {said}")));
                return;
            }
        };
        let mut writes = self.writes(&self.tap.take());
        let missing: Vec<String> = refs
            .iter()
            .filter(|r| !exported.iter().any(|e| &e.reference == *r))
            .map(|r| format!("{}/{}", r.kind, r.id))
            .collect();
        self.check(
            "export.complete",
            t,
            if missing.is_empty() {
                Ok(format!("{} records exported", exported.len()))
            } else {
                Err(format!("located but not exported: {}", missing.join(", ")))
            },
        );
        let t = Instant::now();
        let declared: BTreeSet<&str> = self
            .connector
            .manifest()
            .categories
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        let undeclared: BTreeSet<String> = exported
            .iter()
            .flat_map(|e| &e.fields)
            .filter(|f| !declared.contains(f.category.as_str()))
            .map(|f| format!("{} ({})", f.name, f.category))
            .collect();
        self.check(
            "export.categories",
            t,
            if undeclared.is_empty() {
                Ok("every field in a declared category".into())
            } else {
                Err(format!(
                    "fields in categories the manifest does not declare: {}",
                    undeclared.into_iter().collect::<Vec<_>>().join(", ")
                ))
            },
        );
        let t = Instant::now();
        let mut wrong = Vec::new();
        let mut read = 0u64;
        let mut count = 0;
        for e in &exported {
            for a in &e.attachments {
                count += 1;
                match self.read_whole(&e.reference, &a.name, a.size).await {
                    Ok(n) => read += n,
                    Err(m) => wrong.push(format!(
                        "{}/{} {:?}: {m}",
                        e.reference.kind, e.reference.id, a.name
                    )),
                }
            }
        }
        writes.extend(self.writes(&self.tap.take()));
        if count == 0 {
            self.skip("export.attachments", "no attachment exported");
        } else {
            self.check(
                "export.attachments",
                t,
                unless_wrong(&wrong, || format!(
                        "{count} attachments read to their end in chunks ({read} bytes), sizes as announced"
                    )),
            );
        }
        let t = Instant::now();
        self.check(
            "export.read-only",
            t,
            if writes.is_empty() {
                Ok("no write among its requests".into())
            } else {
                Err(format!(
                    "{} requests that write during export: {}",
                    writes.len(),
                    distinct(&writes)
                ))
            },
        );
    }

    /// Read an attachment in chunks: from 0 to its end, then exactly at
    /// the end and past it (both empty).
    async fn read_whole(
        &self,
        r: &RecordRef,
        name: &str,
        size: Option<u64>,
    ) -> Result<u64, String> {
        const CHUNK: u32 = 64 * 1024;
        let mut offset = 0u64;
        loop {
            let chunk = self
                .connector
                .read_attachment(r, name, offset, CHUNK)
                .await
                .map_err(|e| format!("at {offset}: {}", self.said(&e)))?;
            if chunk.is_empty() {
                break;
            }
            if chunk.len() > CHUNK as usize {
                return Err(format!(
                    "{} bytes where at most {CHUNK} were asked",
                    chunk.len()
                ));
            }
            offset += chunk.len() as u64;
            if offset > 4 << 30 {
                return Err("more than 4 GiB: stopped".into());
            }
        }
        if let Some(size) = size
            && size != offset
        {
            return Err(format!("announced {size} bytes, read {offset}"));
        }
        for at in [offset, offset + 1000] {
            let past = self
                .connector
                .read_attachment(r, name, at, CHUNK)
                .await
                .map_err(|e| format!("at {at} (the end): {}", self.said(&e)))?;
            if !past.is_empty() {
                return Err(format!("{} bytes at {at}, past the end", past.len()));
            }
        }
        Ok(offset)
    }

    /// What the connector said, as the report shows it: its kind and,
    /// unless it carries personal data or a secret, its message.
    fn said(&self, e: &CallError) -> String {
        let text = e.to_string();
        match self.leaks(&text) {
            Some(leak) => format!("{} (its message carries {leak}: not shown)", e.kind()),
            None => one_line(&text),
        }
    }

    async fn faults(&mut self) {
        let date = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(120);
        let http_date = jiff::fmt::rfc2822::DateTimePrinter::new()
            .timestamp_to_rfc9110_string(&date)
            .unwrap_or_default();
        let respond = |status: u16, headers: Vec<(&str, String)>, body: &str| Fault::Respond {
            status,
            headers: headers
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .chain([("content-type".to_string(), "application/json".to_string())])
                .collect(),
            body: body.as_bytes().to_vec(),
        };
        let kind_is = |want: &'static str| -> Expect {
            Box::new(move |e: &CallError| {
                if e.kind() == want {
                    Ok(())
                } else {
                    Err(format!("answered {}, expected {want}", e.kind()))
                }
            })
        };
        let cases: Vec<(&str, Fault, Expect)> = vec![
            (
                "401",
                respond(401, vec![], r#"{"error":"unauthorized"}"#),
                kind_is("denied"),
            ),
            (
                "403",
                respond(403, vec![], r#"{"error":"forbidden"}"#),
                kind_is("denied"),
            ),
            (
                "404",
                respond(404, vec![], r#"{"error":"not found"}"#),
                Box::new(|e: &CallError| {
                    if e.kind() == "internal" || e.kind() == "trap" {
                        Err(format!(
                            "answered {}: a 404 on a search is the system's answer, not the connector's bug",
                            e.kind()
                        ))
                    } else {
                        Ok(())
                    }
                }),
            ),
            (
                "429-seconds",
                respond(
                    429,
                    vec![("retry-after", "7".into())],
                    r#"{"error":"slow down"}"#,
                ),
                Box::new(|e: &CallError| match e {
                    CallError::Connector(ConnectorError::RateLimited(7)) => Ok(()),
                    CallError::Connector(ConnectorError::RateLimited(n)) => {
                        Err(format!("rate-limited({n}), the system said 7 s"))
                    }
                    e => Err(format!("answered {}, expected rate-limited(7)", e.kind())),
                }),
            ),
            (
                "429-date",
                respond(
                    429,
                    vec![("retry-after", http_date)],
                    r#"{"error":"slow down"}"#,
                ),
                Box::new(|e: &CallError| match e {
                    CallError::Connector(ConnectorError::RateLimited(n))
                        if (60..=180).contains(n) =>
                    {
                        Ok(())
                    }
                    CallError::Connector(ConnectorError::RateLimited(n)) => Err(format!(
                        "rate-limited({n}), the system said in 120 s (as a date)"
                    )),
                    e => Err(format!(
                        "answered {}, expected rate-limited(about 120)",
                        e.kind()
                    )),
                }),
            ),
            (
                "503",
                respond(503, vec![], r#"{"error":"maintenance"}"#),
                kind_is("unavailable"),
            ),
            ("reset", Fault::Reset, kind_is("unavailable")),
            (
                "malformed-json",
                respond(200, vec![], r#"{"people": [{"id": "#),
                Box::new(|e: &CallError| {
                    if e.kind() == "trap" {
                        Err("the connector trapped (panicked) on a malformed answer".into())
                    } else {
                        Ok(())
                    }
                }),
            ),
        ];
        let subject = self.subject.clone();
        for (name, fault, expect) in cases {
            let case = format!("faults.{name}");
            if self.fixture.skip_faults.iter().any(|s| s == name) {
                self.skip(&case, "left out by the fixture (skip_faults)");
                continue;
            }
            let t = Instant::now();
            self.tap.set(Some(fault));
            let r = self.connector.locate(&subject).await;
            self.tap.set(None);
            let seen = self.tap.take().len();
            let result = match r {
                Ok(v) => Err(format!(
                    "locate answered {} records (an answer of nothing, from a system that could not be searched)",
                    v.len()
                )),
                Err(e) => {
                    let leak = self.leaks(&e.to_string());
                    match (expect(&e), leak) {
                        (Err(m), _) => Err(m),
                        (Ok(()), Some(leak)) => Err(format!("its message carries {leak}")),
                        (Ok(()), None) => Ok(format!("{} after {seen} requests", e.kind())),
                    }
                }
            };
            self.check(&case, t, result);
        }

        // Every second request refused: a search that could only be
        // partly made is an error, never a shorter answer.
        let t = Instant::now();
        if self.fixture.skip_faults.iter().any(|s| s == "partial") {
            self.skip("faults.partial", "left out by the fixture (skip_faults)");
        } else {
            self.tap.set_partial(true);
            let r = self.connector.locate(&subject).await;
            self.tap.set_partial(false);
            let asked = self.tap.take().len();
            let result = match r {
                _ if asked < 2 => Ok(format!(
                    "one request per locate: nothing partial to play ({asked})"
                )),
                Ok(v) => Err(format!(
                    "locate answered {} records when one request in two failed: a part of the answer, given as the whole",
                    v.len()
                )),
                Err(e) if e.kind() == "trap" => {
                    Err("the connector trapped when one request in two failed".into())
                }
                Err(e) => Ok(format!("{} when one request in two failed", e.kind())),
            };
            self.check("faults.partial", t, result);
        }

        // No answer at all: the operation's deadline ends the call. Played
        // only where that deadline is short, since the kit waits it out.
        let deadline = self.connector.info().timeout_ms;
        if self.fixture.skip_faults.iter().any(|s| s == "slow") {
            self.skip("faults.slow", "left out by the fixture (skip_faults)");
        } else if deadline > 10_000 {
            self.skip(
                "faults.slow",
                &format!(
                    "the system's deadline is {} s: set its limits.timeout to 10 s or less for the kit to wait it out",
                    deadline / 1000
                ),
            );
        } else {
            let t = Instant::now();
            self.tap.set(Some(Fault::Stall));
            let r = self.connector.locate(&subject).await;
            self.tap.set(None);
            self.tap.take();
            let result = match r {
                Ok(v) => Err(format!(
                    "locate answered {} records from a system that never answered",
                    v.len()
                )),
                Err(e) if matches!(e.kind(), "timeout" | "unavailable") => {
                    Ok(format!("{} after {} ms", e.kind(), t.elapsed().as_millis()))
                }
                Err(e) => Err(format!(
                    "answered {}, expected timeout or unavailable",
                    e.kind()
                )),
            };
            self.check("faults.slow", t, result);
        }
    }

    async fn destructive(&mut self, found: &[Located]) {
        // Rectify, then read back.
        let t = Instant::now();
        match (
            &self.fixture.rectify,
            self.connector.offers(Operation::Rectify),
        ) {
            (None, _) => self.skip("rectify.read-back", "the fixture has no [rectify]"),
            (_, false) => self.skip("rectify.read-back", "the connector does not rectify"),
            (Some(r), true) => {
                let reference = RecordRef {
                    kind: r.kind.clone(),
                    id: r.id.clone(),
                };
                let change = Change {
                    field: r.field.clone(),
                    new_value: Some(r.value.clone()),
                };
                let result = match self.connector.rectify(&reference, &[change]).await {
                    Err(e) => Err(format!("rectify failed: {}", self.said(&e))),
                    Ok(o) if o.status != Status::Done => {
                        Err(format!("rectify answered {:?}, not done", o.status))
                    }
                    Ok(_) => match self
                        .connector
                        .export(std::slice::from_ref(&reference))
                        .await
                    {
                        Err(e) => Err(format!("export after rectify failed: {}", self.said(&e))),
                        Ok(e) => {
                            let shown = e
                                .iter()
                                .flat_map(|x| &x.fields)
                                .any(|f| f.name == r.field && f.value == r.value);
                            if shown {
                                Ok(format!("field {:?} reads back as set", r.field))
                            } else {
                                Err(format!("field {:?} does not read back as set", r.field))
                            }
                        }
                    },
                };
                self.check("rectify.read-back", t, result);
            }
        }

        // Restrict on, then off.
        let t = Instant::now();
        if self.connector.offers(Operation::Restrict) {
            let subject = self.subject.clone();
            let mut wrong = Vec::new();
            for on in [true, false] {
                match self.connector.restrict(&subject, &[], on).await {
                    Ok(_) => {}
                    Err(e) => wrong.push(format!(
                        "restrict {}: {}",
                        if on { "on" } else { "off" },
                        self.said(&e)
                    )),
                }
            }
            self.check(
                "restrict.on-off",
                t,
                unless_wrong(&wrong, || "on, then off".into()),
            );
        } else {
            self.skip("restrict.on-off", "the connector does not restrict");
        }

        if !self.connector.offers(Operation::Erase) {
            for c in ERASE_CASES {
                self.skip(c, "the connector does not erase");
            }
            return;
        }
        if found.is_empty() {
            for c in ERASE_CASES {
                self.skip(c, "nothing was located to erase");
            }
            return;
        }
        // What the decoys find before, to see it survive.
        let mut before = Vec::new();
        for d in self.decoys.clone() {
            before.push(self.connector.locate(&d).await.ok());
        }
        let mode = match self.fixture.erase_mode.as_deref() {
            Some("anonymise") => EraseMode::Anonymise,
            _ => EraseMode::Delete,
        };
        let own: Vec<RecordRef> = found
            .iter()
            .filter(|l| matches!(l.role, Role::Owner | Role::Unreported))
            .map(|l| l.reference.clone())
            .collect();
        let t = Instant::now();
        let outcomes = match self.connector.erase(&own, mode).await {
            Ok(o) => o,
            // The system's API cannot erase, an operator can: an honest
            // answer, whose result only the operator's work would show.
            Err(CallError::Connector(ConnectorError::Manual(task))) => {
                self.check(
                    "erase.outcomes",
                    t,
                    Ok(format!(
                        "a manual task for an operator: {} steps over {} records",
                        task.steps.len(),
                        task.records.len()
                    )),
                );
                for c in &ERASE_CASES[1..] {
                    self.skip(c, "the erasure is an operator's task here");
                }
                return;
            }
            Err(e) => {
                let said = self.said(&e);
                self.check("erase.outcomes", t, Err(format!("erase failed: {said}")));
                return;
            }
        };
        let mut kept: BTreeMap<(String, String), String> = BTreeMap::new();
        let mut wrong = Vec::new();
        let mut pending = Vec::new();
        for r in &own {
            match outcomes
                .iter()
                .find(|o| &o.reference == r)
                .map(|o| &o.status)
            {
                None => wrong.push(format!("no outcome for {}/{}", r.kind, r.id)),
                Some(Status::Retained(why)) => {
                    kept.insert((r.kind.clone(), r.id.clone()), why.clone());
                }
                Some(Status::Pending(ticket)) => pending.push(ticket.clone()),
                Some(_) => {}
            }
        }
        // Pending work, polled to its end within a budget of calls.
        let mut polls = 0;
        while let Some(ticket) = pending.pop() {
            polls += 1;
            if polls > 200 {
                wrong.push("pending erasure not settled after 200 polls".into());
                break;
            }
            match self.connector.poll(&ticket).await {
                Ok(o) if o.iter().any(|x| matches!(x.status, Status::Pending(_))) => {
                    pending.push(ticket);
                    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                }
                Ok(_) => {}
                Err(e) => wrong.push(format!("poll: {}", self.said(&e))),
            }
        }
        self.check(
            "erase.outcomes",
            t,
            unless_wrong(&wrong, || {
                format!(
                    "{} records: {} kept by the system, the rest done",
                    own.len(),
                    kept.len()
                )
            }),
        );

        let t = Instant::now();
        let subject = self.subject.clone();
        // A system's search may lag its deletions (an index): ask again, a
        // second apart, for as long as the fixture allows.
        let settle = std::time::Duration::from_secs(self.fixture.settle_seconds);
        let result = loop {
            let attempt = match self.connector.locate(&subject).await {
                Err(e) => Err(format!("locate after erasure failed: {}", self.said(&e))),
                Ok(after) => {
                    let left: Vec<String> = after
                        .iter()
                        .filter(|l| {
                            own.contains(&l.reference)
                                && !kept.contains_key(&(
                                    l.reference.kind.clone(),
                                    l.reference.id.clone(),
                                ))
                        })
                        .map(|l| format!("{}/{}", l.reference.kind, l.reference.id))
                        .collect();
                    if left.is_empty() {
                        Ok(format!("nothing left but the {} records kept", kept.len()))
                    } else {
                        Err(format!(
                            "still found {} s after erasure, not reported kept: {}",
                            t.elapsed().as_secs(),
                            left.join(", ")
                        ))
                    }
                }
            };
            if attempt.is_ok() || t.elapsed() >= settle {
                break attempt;
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        };
        self.check("erase.gone", t, result);

        let t = Instant::now();
        let mut wrong = Vec::new();
        for (i, d) in self.decoys.clone().iter().enumerate() {
            let Some(Some(was)) = before.get(i) else {
                continue;
            };
            match self.connector.locate(d).await {
                Ok(now) => {
                    for l in was {
                        if !now.iter().any(|n| n.reference == l.reference)
                            && !own.contains(&l.reference)
                        {
                            wrong.push(format!(
                                "decoys[{i}]'s {}/{} went with the subject's erasure",
                                l.reference.kind, l.reference.id
                            ));
                        }
                    }
                }
                Err(e) => wrong.push(format!("decoys[{i}]: {}", self.said(&e))),
            }
        }
        if self.decoys.is_empty() {
            self.skip("erase.others-survive", "the fixture gives no decoy");
        } else {
            self.check(
                "erase.others-survive",
                t,
                unless_wrong(&wrong, || "every decoy's records are still there".into()),
            );
        }

        let t = Instant::now();
        let result = match self.connector.erase(&own, mode).await {
            Err(e) => Err(format!("a second erasure is an error: {}", self.said(&e))),
            Ok(o) => {
                let odd: Vec<String> = o
                    .iter()
                    .filter(|x| {
                        !matches!(x.status, Status::Done | Status::NotFound)
                            && !kept
                                .contains_key(&(x.reference.kind.clone(), x.reference.id.clone()))
                    })
                    .map(|x| format!("{}/{}: {:?}", x.reference.kind, x.reference.id, x.status))
                    .collect();
                if odd.is_empty() {
                    Ok("not-found or done".into())
                } else {
                    Err(format!("a second erasure answered {}", odd.join(", ")))
                }
            }
        };
        self.check("erase.again", t, result);

        // A record that never existed: not-found, never done.
        let t = Instant::now();
        let kind = self
            .fixture
            .records
            .first()
            .map_or_else(|| "record".to_string(), |r| r.kind.clone());
        let ghost = RecordRef {
            kind,
            id: format!("oubli-kit-missing-{}", std::process::id()),
        };
        let result = match self
            .connector
            .erase(std::slice::from_ref(&ghost), mode)
            .await
        {
            Ok(o) => match o.first().map(|x| &x.status) {
                Some(Status::NotFound) => Ok("not-found".into()),
                Some(other) => Err(format!(
                    "a record that never existed answered {other:?}: only what was verified may be reported"
                )),
                None => Err("no outcome for a record that never existed".into()),
            },
            // Refusing an id of the wrong shape is honest too.
            Err(CallError::Connector(ConnectorError::Invalid(_))) => {
                Ok("refused as invalid".into())
            }
            Err(e) => Err(format!(
                "an error for a record that never existed: {}",
                self.said(&e)
            )),
        };
        self.check("erase.missing", t, result);
    }

    async fn sweep(&mut self) {
        let Some(s) = self.fixture.sweep.clone() else {
            self.skip("sweep.test-run", "the fixture has no [sweep]");
            return;
        };
        let t = Instant::now();
        if !self.connector.offers(Operation::Sweep) {
            self.check(
                "sweep.test-run",
                t,
                Err("the fixture has a [sweep], but the connector does not sweep".into()),
            );
            return;
        }
        let cutoff = match s.before.parse::<jiff::Timestamp>() {
            Ok(c) => c.as_millisecond(),
            Err(_) => {
                self.check(
                    "sweep.test-run",
                    t,
                    Err(format!("[sweep] before {:?} is not RFC 3339", s.before)),
                );
                return;
            }
        };
        let trigger = s.trigger.clone().or_else(|| {
            self.connector
                .manifest()
                .retention
                .iter()
                .find(|r| r.category == s.category)
                .and_then(|r| r.triggers.first().cloned())
        });
        let mut query = SweepQuery {
            category: s.category.clone(),
            trigger: trigger.unwrap_or_default(),
            cutoff,
            after: None,
            limit: 50,
        };
        let mut seen = BTreeSet::new();
        self.tap.take();
        let result = loop {
            match self.connector.sweep(&query).await {
                Err(e) => break Err(format!("sweep failed: {}", self.said(&e))),
                Ok(page) => {
                    let Some(last) = page.last() else {
                        break Ok(());
                    };
                    query.after = Some(oubli_model::SweepKey {
                        at: last.at,
                        id: last.reference.id.clone(),
                    });
                    let full = page.len() == query.limit as usize;
                    for d in page {
                        seen.insert(format!("{}/{}", d.reference.kind, d.reference.id));
                    }
                    if !full || seen.len() > 1_000_000 {
                        break Ok(());
                    }
                }
            }
        };
        let writes = self.writes(&self.tap.take());
        let want: BTreeSet<String> = s.expect.iter().cloned().collect();
        let result = result.and_then(|()| {
            let missing: Vec<&String> = want.difference(&seen).collect();
            let extra: Vec<&String> = seen.difference(&want).collect();
            if !writes.is_empty() {
                Err(format!(
                    "{} requests that write during a sweep: {}",
                    writes.len(),
                    distinct(&writes)
                ))
            } else if !missing.is_empty() {
                Err(format!("due but not listed: {missing:?}"))
            } else if !extra.is_empty() {
                Err(format!("listed but not due by the fixture: {extra:?}"))
            } else {
                Ok(format!("the {} records due, and only them", seen.len()))
            }
        });
        self.check("sweep.test-run", t, result);
    }
}

/// Load `system`'s connector as configured (its grants, settings, secrets
/// and limits, through the real runtime), with the kit's tap, and run the
/// kit. The error is one line: the system is not configured, its
/// connector is refused, or the fixture's identifiers do not read.
pub async fn test(
    config: &crate::config::Config,
    system: &str,
    fixture: &Fixture,
    options: Options,
    no_cache: bool,
) -> Result<Report, String> {
    let tap = Arc::new(match &options.replay {
        Some(c) => KitTap::replaying(c),
        None => KitTap::default(),
    });
    Ok(run(config, system, fixture, options, tap, no_cache)
        .await?
        .0)
}

/// [`test`], live, keeping what the system answered: the report, and the
/// recording rewritten (refused if any of the fixture's identifiers or the
/// secrets still shows in it).
pub async fn record(
    config: &crate::config::Config,
    system: &str,
    fixture: &Fixture,
    options: Options,
    no_cache: bool,
) -> Result<(Report, Recording), String> {
    if options.destructive {
        return Err(
            "a recording is of a run without --destructive: destructive cases run live only".into(),
        );
    }
    let options = Options {
        replay: None,
        ..options
    };
    let tap = Arc::new(KitTap::recording());
    let (report, secrets) = run(config, system, fixture, options, tap.clone(), no_cache).await?;
    let f = fixture;
    // The unknown person is nobody (a reserved address): kept as it is.
    let mut groups = vec![&f.subject];
    groups.extend(f.decoys.iter());
    let scrub = cassette::Scrub::new(&groups, &secrets);
    let exchanges: Vec<cassette::Exchange> = tap
        .recorded()
        .into_iter()
        .map(|r| scrub.exchange(r))
        .collect();
    // Comments may name the person in words the kit cannot recognise: the
    // rewritten fixture keeps none.
    let rewritten = format!(
        "# Rewritten by `oubli connector test --record` for {system}: the people are\n\
         # placeholders, as in the recorded answers beside it.\n{}",
        scrub.text(
            &f.source
                .lines()
                .filter(|l| !l.trim_start().starts_with('#'))
                .collect::<Vec<_>>()
                .join("\n")
        )
    );
    // Nothing of the people or the secrets may remain, in any spelling the
    // kit knows to look for.
    let kit = Personal::new(fixture, &[], &secrets);
    for e in &exchanges {
        use base64::Engine as _;
        let body = e
            .body
            .as_ref()
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .unwrap_or_default();
        let all = format!(
            "{} {:?} {}",
            e.path,
            e.headers,
            String::from_utf8_lossy(&body)
        );
        if let Some(leak) = kit.leaks(&all) {
            return Err(format!(
                "the answer to {} {} still carries {leak} in a spelling the kit does not rewrite: the recording is not written",
                e.method,
                e.path.split('?').next().unwrap_or("")
            ));
        }
    }
    if let Some(leak) = kit.leaks(&rewritten) {
        return Err(format!(
            "the rewritten fixture still carries {leak}: the recording is not written"
        ));
    }
    Ok((
        report.clone(),
        Recording {
            cassette: cassette::Cassette {
                connector: report.connector.clone(),
                sha256: report.sha256.clone(),
                exchanges,
            },
            fixture: rewritten,
        },
    ))
}

/// Load the system's connector with `tap` and run the kit: the report,
/// and the secrets the connector was given.
async fn run(
    config: &crate::config::Config,
    system: &str,
    fixture: &Fixture,
    options: Options,
    tap: Arc<KitTap>,
    no_cache: bool,
) -> Result<(Report, Vec<String>), String> {
    let Some(sys) = config.systems.iter().find(|s| s.name() == system) else {
        let known: Vec<&str> = config.systems.iter().map(|s| s.name()).collect();
        return Err(format!(
            "no system {system:?} in the configuration (it has: {})",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        ));
    };
    let runtime = oubli_runtime::Runtime::new(&oubli_runtime::RuntimeOptions {
        cache_dir: config.runtime.cache_dir.clone(),
        no_cache,
    })
    .map_err(|e| e.to_string())?;
    let connector = runtime
        .load(&sys.spec)
        .await
        .map_err(|e| format!("system {system:?}: {e}"))?;
    connector.set_tap(tap.clone());
    let secrets: Vec<String> = sys
        .spec
        .secrets
        .values()
        .filter_map(|s| s.resolve().ok())
        .map(|s| s.expose().to_string())
        .collect();
    let region = config.identifiers.default_region;
    let kit = Kit::new(
        system,
        &connector,
        fixture,
        |given| given.normalise(region).map_err(|e| e.to_string()),
        tap.clone(),
        secrets.clone(),
        options,
    )?;
    Ok((kit.run().await, secrets))
}

/// Whether `path` starts with `pattern`, a `*` in it standing for one
/// path segment.
fn prefix_glob(pattern: &str, path: &str) -> bool {
    let mut rest = path;
    for (i, piece) in pattern.split('*').enumerate() {
        if i > 0 {
            // One segment: up to the next '/'.
            rest = &rest[rest.find('/').unwrap_or(rest.len())..];
        }
        match rest.strip_prefix(piece) {
            Some(r) => rest = r,
            None => return false,
        }
    }
    true
}

/// The first few distinct entries of `list`, joined.
fn distinct(list: &[String]) -> String {
    let set: BTreeSet<&String> = list.iter().collect();
    let mut out: Vec<&str> = set.iter().take(3).map(|s| s.as_str()).collect();
    if set.len() > 3 {
        out.push("...");
    }
    out.join(", ")
}

fn semver(v: &str) -> bool {
    let core = v.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

fn host_pattern(h: &str) -> bool {
    if h == "*" {
        return true;
    }
    if h.contains('/') {
        return false;
    }
    let h = h.strip_prefix("*.").unwrap_or(h);
    let h = h.split(':').next().unwrap_or("");
    !h.is_empty()
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixture_is_read_strictly() {
        let f = Fixture::parse(
            "[subject]\nemails = [\"ada@example.com\"]\n[[records]]\nkind = \"person\"\nrole = \"owner\"\n",
        )
        .unwrap();
        assert_eq!(f.records.len(), 1);
        assert_eq!(f.unknown.emails, ["nobody-conformance@kit.invalid"]);
        let e = Fixture::parse("[subject]\nemails = []\n").unwrap_err();
        assert_eq!(e, "[subject] gives no identifier");
        let e = Fixture::parse("[subject]\nemails = [\"a@b.c\"]\nsurprise = 1\n").unwrap_err();
        assert!(e.contains("unknown field"), "{e}");
        assert!(!e.contains('\n'));
        let e = Fixture::parse(
            "[subject]\nemails = [\"a@b.c\"]\n[[records]]\nkind = \"x\"\nrole = \"boss\"\n",
        )
        .unwrap_err();
        assert!(e.contains("not owner, participant or mentioned"), "{e}");
    }

    #[test]
    fn junit_escapes_what_connectors_say() {
        let r = Report {
            system: "crm".into(),
            connector: "x@1.0.0".into(),
            contract: "0.2.0".into(),
            sha256: "ab".into(),
            destructive: false,
            cases: vec![
                Case {
                    name: "locate.decoys".into(),
                    verdict: Verdict::Fail,
                    reason: "found <b>\"x\"</b> & more\u{1b}[31m".into(),
                    millis: 3,
                },
                Case {
                    name: "erase.gone".into(),
                    verdict: Verdict::Skip,
                    reason: "destructive".into(),
                    millis: 0,
                },
            ],
        };
        let x = r.junit();
        assert!(x.contains("failures=\"1\""), "{x}");
        assert!(x.contains("skipped=\"1\""), "{x}");
        assert!(
            x.contains("found &lt;b&gt;&quot;x&quot;&lt;/b&gt; &amp; more [31m"),
            "{x}"
        );
        assert!(!x.contains('\u{1b}'));
        assert!(x.contains("<property name=\"sha256\" value=\"ab\"/>"));
    }

    #[test]
    fn read_posts_match_by_prefix_with_one_segment_stars() {
        assert!(prefix_glob("/jmap/api", "/jmap/api/"));
        assert!(prefix_glob("/lists/*/search", "/lists/l1/search?x=1"));
        assert!(!prefix_glob("/lists/*/search", "/lists/l1/l2/search"));
        assert!(!prefix_glob("/lists/*/search", "/lists/l1/delete"));
        assert!(!prefix_glob("/jmap/api", "/jmap/upload/"));
    }

    #[test]
    fn versions_and_hosts_are_checked_for_shape() {
        assert!(semver("1.2.3") && semver("0.1.0-rc.1"));
        assert!(!semver("1.2") && !semver("v1.2.3") && !semver("1.2.x"));
        assert!(host_pattern("api.example.com") && host_pattern("*.mypurecloud.com"));
        assert!(host_pattern("*") && host_pattern("rt.example.com:8443"));
        assert!(!host_pattern("https://x.com") && !host_pattern("a..b"));
    }
}
