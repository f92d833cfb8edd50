//! `oubli bulk erase --from FILE.csv`: thousands of subjects at once (a
//! campaign list to purge, a retention sweep), filed as erasure requests.
//!
//! The CSV has a header row naming its columns: `email`, `phone`,
//! `external_id` (`namespace:id`), `name`, `region` (any subset; several
//! identifiers of one person on one row; extra columns are ignored). Rows
//! are read one at a time (memory stays flat whatever the file's size).
//!
//! Resumable: each row's request id is derived from the file's SHA-256 and
//! the row number, so running the same file again after a crash files only
//! the rows not yet filed (a row filed just before the crash is found by its
//! id, not filed twice). The per-row report (`FILE.csv.report.csv` unless
//! `--report`) lists row, request id, state, and the error of rows that
//! could not be filed (one line, no identifier in it); a run appends to it,
//! rows refused before are tried again, and the last line of a row wins.

use crate::args::{ActorArgs, EngineArgs};
use anyhow::{Context, Result};
use clap::Args;
use oubli_core::identifiers::Identifiers;
use oubli_core::rights::engine::{ErrorKind, NewRequest, Params};
use oubli_model::RequestKind;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// `oubli bulk erase`
#[derive(Args)]
pub struct BulkArgs {
    /// The CSV file (header row: email, phone, external_id, name, region).
    #[arg(long = "from", value_name = "FILE.csv")]
    from: PathBuf,
    /// Where to write the per-row report (default: FILE.csv.report.csv).
    #[arg(long)]
    report: Option<PathBuf>,
    #[command(flatten)]
    actor: ActorArgs,
}

struct Columns {
    email: Option<usize>,
    phone: Option<usize>,
    external_id: Option<usize>,
    name: Option<usize>,
    region: Option<usize>,
}

/// File an erasure request per row.
pub async fn erase(args: EngineArgs, bulk: BulkArgs) -> Result<ExitCode> {
    let actor = bulk.actor.name();
    // The batch: the file's content, so a changed file is a new batch.
    let mut hasher = Sha256::new();
    let mut f = std::fs::File::open(&bulk.from)
        .with_context(|| format!("cannot read {}", bulk.from.display()))?;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = std::io::Read::read(&mut f, &mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let batch = hex::encode(&hasher.finalize()[..5]);

    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(&bulk.from)
        .with_context(|| format!("cannot read {}", bulk.from.display()))?;
    let headers = reader
        .headers()
        .with_context(|| format!("{}: no header row", bulk.from.display()))?
        .clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name))
    };
    let cols = Columns {
        email: col("email"),
        phone: col("phone"),
        external_id: col("external_id"),
        name: col("name"),
        region: col("region"),
    };
    if cols.email.is_none() && cols.phone.is_none() && cols.external_id.is_none() {
        anyhow::bail!(
            "{}: the header row names no identifier column (email, phone or external_id)",
            bulk.from.display()
        );
    }
    // Rows already in the report (a previous run) are not filed again.
    let report_path = bulk.report.clone().unwrap_or_else(|| {
        let mut p = bulk.from.clone().into_os_string();
        p.push(".report.csv");
        PathBuf::from(p)
    });
    let mut done = std::collections::HashSet::new();
    if report_path.exists() {
        let mut r = csv::Reader::from_path(&report_path)
            .with_context(|| format!("cannot read {}", report_path.display()))?;
        for rec in r.records() {
            let rec = rec?;
            if rec.get(2).is_some_and(|s| !s.is_empty())
                && let Some(n) = rec.get(0).and_then(|n| n.parse::<u64>().ok())
            {
                done.insert(n);
            }
        }
    }
    let fresh = !report_path.exists();
    let mut report = csv::Writer::from_writer(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&report_path)
            .with_context(|| format!("cannot write {}", report_path.display()))?,
    );
    if fresh {
        report.write_record(["row", "request", "state", "error"])?;
    }

    let engine = args.open(false).await?;
    let total = std::fs::metadata(&bulk.from)?.len();
    let bar = indicatif::ProgressBar::new(total).with_style(
        indicatif::ProgressStyle::with_template("filing erasures {bar:30} {percent}% {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let (mut filed, mut skipped, mut failed, mut already) = (0u64, 0u64, 0u64, 0u64);
    let mut record = csv::StringRecord::new();
    let mut row = 0u64;
    while reader.read_record(&mut record)? {
        row += 1;
        bar.set_position(record.position().map_or(0, |p| p.byte()));
        if done.contains(&row) {
            skipped += 1;
            continue;
        }
        let get = |c: Option<usize>| {
            c.and_then(|i| record.get(i))
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let identifiers = Identifiers {
            emails: get(cols.email).into_iter().collect(),
            phones: get(cols.phone).into_iter().collect(),
            names: get(cols.name).into_iter().collect(),
            external_ids: get(cols.external_id).into_iter().collect(),
        };
        let region = match get(cols.region) {
            Some(r) => match crate::args::parse_region(&r) {
                Ok(r) => Some(r),
                Err(e) => {
                    report.write_record([row.to_string(), String::new(), String::new(), e])?;
                    report.flush()?;
                    failed += 1;
                    continue;
                }
            },
            None => None,
        };
        let id = format!("r-b{batch}-{row}");
        let result = engine
            .file(NewRequest {
                id: Some(id.clone()),
                kind: RequestKind::Erasure,
                identifiers,
                region,
                actor: actor.clone(),
                params: Params::default(),
                attestation: None,
                intake: None,
            })
            .await;
        let (state, error) = match result {
            Ok(v) => {
                filed += 1;
                (v.state.to_string(), String::new())
            }
            Err(e) if e.kind() == ErrorKind::Conflict => {
                already += 1;
                ("filed-before".to_string(), String::new())
            }
            Err(e) => {
                failed += 1;
                (String::new(), e.to_string())
            }
        };
        let id = if state.is_empty() { String::new() } else { id };
        report.write_record([row.to_string(), id, state, error])?;
        report.flush()?;
    }
    bar.finish_and_clear();
    report.flush()?;
    let _ = std::io::stdout().flush();
    outln!(
        "{row} rows: {filed} erasure requests filed, {already} filed by an earlier run, {skipped} already in the report, {failed} refused (see the report)"
    );
    outln!("report: {}", report_path.display());
    outln!(
        "next: `oubli worker` plans them; under four eyes another operator runs `oubli bulk approve --report {}`; the worker then carries them out",
        report_path.display()
    );
    engine.close().await;
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `oubli bulk approve`
#[derive(Args)]
pub struct ApproveArgs {
    /// The report of `bulk erase` (FILE.csv.report.csv).
    #[arg(long)]
    report: PathBuf,
    /// The approving operator (not the one who filed them, under four eyes).
    #[command(flatten)]
    actor: ActorArgs,
}

/// Approve every request of a report that awaits approval.
pub async fn approve(args: EngineArgs, a: ApproveArgs) -> Result<ExitCode> {
    let actor = a.actor.name();
    let engine = args.open(false).await?;
    let mut r = csv::Reader::from_path(&a.report)
        .with_context(|| format!("cannot read {}", a.report.display()))?;
    let (mut approved, mut refused, mut other) = (0u64, 0u64, 0u64);
    let mut first_error = None;
    for rec in r.records() {
        let rec = rec?;
        let Some(id) = rec.get(1).filter(|s| !s.is_empty()) else {
            continue;
        };
        match engine.approve(id, &actor).await {
            Ok(()) => approved += 1,
            // Not awaiting approval (any more): not this run's to judge.
            Err(e) if e.kind() == ErrorKind::Conflict => other += 1,
            Err(e) => {
                refused += 1;
                first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    outln!("{approved} approved, {other} not awaiting approval, {refused} refused");
    if let Some(e) = first_error {
        outln!("first refusal: {e}");
    }
    engine.close().await;
    Ok(if refused > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
