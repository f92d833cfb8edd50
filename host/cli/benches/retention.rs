//! Retention at scale: `oubli retention run` (the release binary, as an
//! operator runs it) over the JMAP stand-in seeded with a million dated
//! messages, through the real connector and sandbox.
//!
//! - a test run over a tenth of them, then over all of them: records/s, and
//!   the process's peak resident memory (VmHWM), which must not grow with
//!   the number of records (a run keeps its cursor, counts and a sample,
//!   never the records);
//! - an enforcing run carrying out the test run, capped at `--enforce`
//!   records by the policy's `max_per_run`: records erased per second and
//!   peak memory.
//!
//! Run: `cargo bench -p oubli --bench retention` (optionally `-- --records
//! 1000000 --enforce 100000 --page 1000`).

use oubli_sandbox::jmap::{Addr, Email};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Run `oubli ARGS` in `dir`; (wall time, peak RSS in KiB, stdout).
fn run(dir: &Path, args: &[&str]) -> (Duration, u64, String) {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_oubli"))
        .args(args)
        .arg("--config")
        .arg(dir.join("oubli.toml"))
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .env("OUBLI_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let status = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    let out = std::thread::scope(|s| {
        let mut stdout = child.stdout.take().unwrap();
        let reader = s.spawn(move || {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut stdout, &mut text).unwrap();
            text
        });
        loop {
            if let Ok(text) = std::fs::read_to_string(&status)
                && let Some(kb) = text
                    .lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak = peak.max(kb);
            }
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        reader.join().unwrap()
    });
    (started.elapsed(), peak, out)
}

#[tokio::main]
async fn main() {
    let records = arg("--records", 1_000_000);
    let enforce = arg("--enforce", 100_000);
    let page = arg("--page", 1000);
    let sandbox = oubli_sandbox::Sandbox::start(oubli_sandbox::Options {
        people: 20,
        ..oubli_sandbox::Options::default()
    })
    .await
    .unwrap();
    // Messages one second apart from 2020-01-01, on top of the seeded ones
    // (dated 2026).
    let base = 1_577_836_800i64;
    let seeded = sandbox.jmap.data.lock().unwrap().emails.len();
    {
        let mut data = sandbox.jmap.data.lock().unwrap();
        for i in 0..records as i64 {
            data.add(Email {
                id: format!("B{i:08}"),
                mailbox_ids: vec!["mb-archive".into()],
                from: vec![Addr::new("Someone", &format!("old{i}@example.net"))],
                to: vec![Addr::new(
                    "Customer Support",
                    "support@contact-center.example",
                )],
                cc: vec![],
                bcc: vec![],
                subject: "Old".into(),
                body: "An old message.".into(),
                received_at: base + i,
            });
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    sandbox.write_secrets(&d.join("secrets")).unwrap();
    let plugins = Path::new(oubli_testing::plugins::JMAP_MAIL)
        .parent()
        .unwrap();
    let register = oubli_sandbox::write_register(d).unwrap();
    let config = sandbox.config_toml(plugins, &d.join("secrets"))
        + &register
        + &format!(
            "\n[retention]\nskew = \"0s\"\npage = {page}\n\n[[retention.policies]]\nid = \"old-mail\"\n\
             system = \"support-mail\"\ncategory = \"correspondence\"\nperiod = \"30 days\"\nmode = \"enforce\"\n\
             approval_threshold = {}\nmax_per_run = {enforce}\n",
            records * 2
        );
    std::fs::write(d.join("oubli.toml"), config).unwrap();
    let keys = d.join("oubli-keys");
    let out = Command::new(env!("CARGO_BIN_EXE_oubli"))
        .args(["keys", "init", "--dir", keys.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());

    // Compile the connectors into the cache first, so no run below counts
    // the compiler's memory.
    let (_, _, _) = run(d, &["systems", "check"]);
    println!(
        "retention sweep over the JMAP stand-in: {records} dated messages, pages of {page}, release build"
    );
    let tenth = jiff::Timestamp::from_second(base + records as i64 / 10 + 30 * 86_400)
        .unwrap()
        .to_string();
    for (label, as_of) in [("a tenth", Some(tenth.as_str())), ("all", None)] {
        let mut args = vec!["retention", "run", "old-mail", "--json", "--as", "bench"];
        if let Some(a) = as_of {
            args.extend(["--as-of", a]);
        }
        let (took, peak, out) = run(d, &args);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let due = v["tally"]["due"].as_u64().unwrap();
        println!(
            "test run over {label:>7}: {due:>8} due in {:>6.1} s = {:>7.0} records/s, peak RSS {:>5.1} MiB ({})",
            took.as_secs_f64(),
            due as f64 / took.as_secs_f64(),
            peak as f64 / 1024.0,
            v["state"]
        );
    }
    let (took, peak, out) = run(
        d,
        &[
            "retention",
            "run",
            "old-mail",
            "--enforce",
            "--json",
            "--as",
            "bench",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let erased = v["tally"]["erased"].as_u64().unwrap();
    println!(
        "enforcing run (max_per_run {enforce}): {erased:>8} erased in {:>6.1} s = {:>7.0} records/s, peak RSS {:>5.1} MiB ({})",
        took.as_secs_f64(),
        erased as f64 / took.as_secs_f64(),
        peak as f64 / 1024.0,
        v["state"]
    );
    let left = sandbox.jmap.data.lock().unwrap().emails.len();
    assert_eq!(
        left,
        seeded + records - erased as usize,
        "the stand-in lost what was not erased"
    );
}
