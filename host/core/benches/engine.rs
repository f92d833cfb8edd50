//! Orchestration throughput and memory, with no-op connectors (the `noop`
//! test plugin: no I/O), so what is measured is the engine: claiming under
//! leases, sealing and opening, the sandboxed calls, verification, durable
//! commits.
//!
//! - `tasks/s`: erasure requests × systems, filed (not timed), then drained
//!   by 1 or 2 workers (separate connection pools, as two processes would
//!   be) on SQLite (WAL, synchronous=FULL) and, when `OUBLI_TEST_PG` is set,
//!   PostgreSQL. Every request also has its planning task; both count.
//! - `restriction checks/s`: `check_restriction` (normalise the phone
//!   number, HMAC it, look it up) against 10,000 restrictions.
//! - memory: RSS while one worker drains 10,000 requests.
//!
//! - `processes`: the same on PostgreSQL with 1, 2 and 4 worker processes
//!   (this binary run again as `--child`), with no-op connectors and with
//!   connectors that wait 5 ms per call; the sequencer's lag (event
//!   written → under a signed tree head) at p50 and p99; and what the
//!   database's sessions were waiting on (`pg_stat_activity`, sampled).
//!
//! Run: `cargo bench -p oubli-core --bench engine` (optionally
//! `-- --requests 200 --systems 5 --bulk 10000`).

use oubli_core::config::Config;
use oubli_core::identifiers::Identifiers;
use oubli_core::rights::engine::{Engine, NewRequest, OpenOptions, Params};
use oubli_core::rights::worker::{Worker, WorkerOptions};
use oubli_crypto::keyring::Keyring;
use oubli_model::RequestKind;
use oubli_testing::plugins;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn config(dir: &Path, url: &str, systems: usize, wait_ms: u64) -> Config {
    let mut text = format!(
        "[store]\nurl = {url:?}\n[policy]\nfour_eyes = false\n[identifiers]\ndefault_region = \"FR\"\n"
    );
    for i in 0..systems {
        text.push_str(&format!(
            "[systems.s{i}]\nconnector = {:?}\nlimits = {{ concurrency = 16 }}\nconfig = {{ wait_ms = \"{wait_ms}\" }}\n",
            plugins::NOOP
        ));
    }
    Config::parse(&dir.join("oubli.toml"), &text).unwrap()
}

async fn engine(dir: &Path, url: &str, systems: usize) -> Arc<Engine> {
    engine_waiting(dir, url, systems, 0).await
}

async fn engine_waiting(dir: &Path, url: &str, systems: usize, wait_ms: u64) -> Arc<Engine> {
    Arc::new(
        Engine::open(
            config(dir, url, systems, wait_ms),
            &OpenOptions {
                connectors: true,
                ..OpenOptions::default()
            },
        )
        .await
        .unwrap(),
    )
}

fn subject(i: usize) -> Identifiers {
    Identifiers {
        emails: vec![format!("person{i}@example.net")],
        phones: vec![format!("+3361{:07}", i % 10_000_000)],
        ..Identifiers::default()
    }
}

async fn file(engine: &Engine, n: usize, kind: RequestKind) {
    for i in 0..n {
        engine
            .file(NewRequest {
                id: None,
                kind,
                identifiers: subject(i),
                region: None,
                actor: "bench".into(),
                params: Params::default(),
                attestation: None,
                intake: None,
            })
            .await
            .unwrap();
    }
}

fn worker(engine: &Arc<Engine>) -> Worker {
    Worker::new(
        engine.clone(),
        WorkerOptions {
            batch: 64,
            idle: Duration::from_millis(5),
            ..WorkerOptions::default()
        },
    )
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

async fn throughput(backend: &str, url: &str, workers: usize, requests: usize, systems: usize) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path()).unwrap();
    let keys = dir.path().join("oubli-keys");
    Keyring::init(&keys, None).unwrap();
    let first = engine(dir.path(), url, systems).await;
    file(&first, requests, RequestKind::Erasure).await;
    let mut engines = vec![first];
    for _ in 1..workers {
        engines.push(engine(dir.path(), url, systems).await);
    }
    let started = Instant::now();
    let mut runs = Vec::new();
    for e in &engines {
        let w = worker(e);
        runs.push(tokio::spawn(async move {
            w.run(true, std::future::pending()).await.unwrap()
        }));
    }
    let mut ran = 0;
    for r in runs {
        ran += r.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    let expected = requests * (systems + 1);
    assert_eq!(ran, expected, "every task ran once");
    println!(
        "{backend:10} workers {workers}  {requests} requests x {systems} systems: {ran} tasks in {secs:.2} s = {:.0} tasks/s",
        ran as f64 / secs
    );
    for e in engines {
        e.store().close().await;
    }
}

/// `--child DIR URL SYSTEMS WAIT_MS BATCH`: one worker process. It opens its
/// engine, says `ready`, waits for a line on stdin, drains the queue, and
/// says how many tasks it ran.
async fn child(args: &[String]) {
    use std::io::BufRead;
    let dir = Path::new(&args[0]);
    let (url, systems, wait) = (&args[1], args[2].parse().unwrap(), args[3].parse().unwrap());
    let batch: usize = args[4].parse().unwrap();
    let e = engine_waiting(dir, url, systems, wait).await;
    println!("ready");
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).unwrap();
    let w = Worker::new(
        e.clone(),
        WorkerOptions {
            batch,
            idle: Duration::from_millis(5),
            ..WorkerOptions::default()
        },
    );
    let ran = w.run(true, std::future::pending()).await.unwrap();
    println!("ran {ran}");
    e.store().close().await;
}

/// Tasks/s with `procs` worker processes on one PostgreSQL database, the
/// sequencer's lag (event written while the workers run → under a signed
/// tree head) at p50/p99,
/// and what PostgreSQL sessions waited on, sampled every 20 ms.
async fn processes(
    url: &str,
    procs: usize,
    requests: usize,
    systems: usize,
    wait_ms: u64,
    batch: usize,
) {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    Keyring::init(&dir.path().join("oubli-keys"), None).unwrap();
    let first = engine_waiting(dir.path(), url, systems, wait_ms).await;
    file(&first, requests, RequestKind::Erasure).await;
    let mut children = Vec::new();
    for _ in 0..procs {
        let mut c = Command::new(std::env::current_exe().unwrap())
            .args(["--child", dir.path().to_str().unwrap(), url])
            .arg(systems.to_string())
            .arg(wait_ms.to_string())
            .arg(batch.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(c.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready");
        children.push((c, out));
    }
    let pool = first.store().pool().clone();
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let (pool, sampling) = (pool.clone(), sampling.clone());
        tokio::spawn(async move {
            let mut seen: std::collections::BTreeMap<String, u64> = Default::default();
            let mut samples = 0u64;
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                let rows: Vec<(String, i64)> = sqlx::query_as(
                    "SELECT COALESCE(wait_event_type || ':' || wait_event, 'running') \
                     || CASE WHEN wait_event_type = 'Lock' THEN ' (' || left(regexp_replace(query, '\\s+', ' ', 'g'), 60) || ')' ELSE '' END, COUNT(*) FROM pg_stat_activity \
                     WHERE datname = current_database() AND state = 'active' AND pid <> pg_backend_pid() GROUP BY 1",
                )
                .fetch_all(&pool)
                .await
                .unwrap_or_default();
                for (what, n) in rows {
                    *seen.entry(what).or_default() += n as u64;
                }
                samples += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (samples, seen)
        })
    };
    let started = Instant::now();
    let go_at = oubli_model::Clock::now_ms(&oubli_model::SystemClock);
    for (c, _) in &mut children {
        c.stdin.take().unwrap().write_all(b"go\n").unwrap();
    }
    let mut ran = 0usize;
    for (mut c, mut out) in children {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        ran += line
            .trim()
            .trim_start_matches("ran ")
            .parse::<usize>()
            .unwrap();
        assert!(c.wait().unwrap().success());
    }
    let secs = started.elapsed().as_secs_f64();
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let (samples, seen) = sampler.await.unwrap();
    assert_eq!(ran, requests * (systems + 1), "every task ran once");
    // Lag: from an event's time to the first signed head holding it.
    let lags: Vec<(i64, Option<i64>)> = sqlx::query_as(
        "SELECT e.at, (SELECT h.signed_at FROM tree_heads h WHERE h.size > e.leaf ORDER BY h.size LIMIT 1) \
         FROM events e WHERE e.leaf >= 0 AND e.at >= $1",
    )
    .bind(go_at)
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut lag: Vec<i64> = lags
        .iter()
        .filter_map(|(at, s)| s.map(|s| s - at))
        .collect();
    lag.sort_unstable();
    let pct = |p: f64| {
        lag.get(((lag.len() as f64 * p) as usize).min(lag.len().saturating_sub(1)))
            .copied()
            .unwrap_or(-1)
    };
    let mut waits: Vec<(String, u64)> = seen.into_iter().collect();
    waits.sort_by_key(|w| std::cmp::Reverse(w.1));
    let waits: Vec<String> = waits
        .iter()
        .take(5)
        .map(|(w, n)| format!("{w} {:.2}", *n as f64 / samples.max(1) as f64))
        .collect();
    println!(
        "postgres   processes {procs}  wait {wait_ms} ms  batch {batch}  {requests} requests x {systems} systems: {ran} tasks in {secs:.2} s = {:.0} tasks/s; lag p50 {} ms p99 {} ms ({} events); sessions per sample: {}",
        ran as f64 / secs,
        pct(0.5),
        pct(0.99),
        lag.len(),
        waits.join(", ")
    );
    first.store().close().await;
}

async fn restriction_checks(n_restrictions: usize) {
    let dir = tempfile::tempdir().unwrap();
    Keyring::init(&dir.path().join("oubli-keys"), None).unwrap();
    let url = dir.path().join("oubli.db").display().to_string();
    let e = Arc::new(
        Engine::open(config(dir.path(), &url, 0, 0), &OpenOptions::default())
            .await
            .unwrap(),
    );
    // Restrictions filed in bulk through the store, as requests would.
    let mut tx = e.store().write().await.unwrap();
    let mut hashes = Vec::new();
    for i in 0..n_restrictions {
        let phone = format!("+3361{:07}", i);
        hashes.push(e.vault().index("phone", &phone).to_hex());
    }
    oubli_store::restrictions::add(
        &mut tx,
        &hashes,
        &["direct-marketing".into()],
        "r-bench",
        e.now(),
    )
    .await
    .unwrap();
    oubli_store::commit(tx).await.unwrap();
    e.restrictions().refresh(e.store()).await.unwrap();
    let n = 200_000;
    let started = Instant::now();
    let mut restricted = 0;
    for i in 0..n {
        let given = Identifiers {
            phones: vec![format!("+3361{:07}", (i * 7) % (2 * n_restrictions))],
            ..Identifiers::default()
        };
        if !e
            .check_restriction(&given, None, "direct-marketing")
            .unwrap()
            .allowed
        {
            restricted += 1;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "restriction checks: {n} in {secs:.2} s = {:.0}/s ({restricted} restricted, {n_restrictions} restrictions held)",
        n as f64 / secs
    );
}

async fn bulk_memory(n: usize) {
    let dir = tempfile::tempdir().unwrap();
    Keyring::init(&dir.path().join("oubli-keys"), None).unwrap();
    let url = dir.path().join("oubli.db").display().to_string();
    let e = engine(dir.path(), &url, 1).await;
    let before = rss_mib();
    let started = Instant::now();
    let mut samples = Vec::new();
    let step = (n / 5).max(1);
    for chunk in 0..(n / step) {
        for i in 0..step {
            let i = chunk * step + i;
            e.file(NewRequest {
                id: None,
                kind: RequestKind::Erasure,
                identifiers: subject(i),
                region: None,
                actor: "bench".into(),
                params: Params::default(),
                attestation: None,
                intake: None,
            })
            .await
            .unwrap();
        }
        worker(&e).run(true, std::future::pending()).await.unwrap();
        samples.push(format!("{}: {:.0} MiB", (chunk + 1) * step, rss_mib()));
    }
    println!(
        "bulk erasure of {n} subjects (1 system, filed and drained in chunks) in {:.1} s; RSS before {before:.0} MiB, after each chunk: {}",
        started.elapsed().as_secs_f64(),
        samples.join(", ")
    );
    e.store().close().await;
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let argv: Vec<String> = std::env::args().collect();
    if let Some(i) = argv.iter().position(|a| a == "--child") {
        rt.block_on(child(&argv[i + 1..]));
        return;
    }
    let requests = arg("--requests", 200);
    let systems = arg("--systems", 5);
    let bulk = arg("--bulk", 10_000);
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        for workers in [1, 2] {
            let url = dir
                .path()
                .join(format!("bench-{workers}.db"))
                .display()
                .to_string();
            throughput("sqlite", &url, workers, requests, systems).await;
        }
        let only = arg("--procs", 0);
        if only > 0 {
            let urls = oubli_testing::store_urls(dir.path()).await;
            let pg = &urls.iter().find(|u| u.0 == "postgres").unwrap().1;
            processes(
                pg,
                only,
                requests,
                systems,
                arg("--wait", 0) as u64,
                arg("--batch", 64),
            )
            .await;
            return;
        }
        if std::env::var("OUBLI_TEST_PG").is_ok() {
            for workers in [1, 2] {
                let urls = oubli_testing::store_urls(dir.path()).await;
                let pg = &urls.iter().find(|u| u.0 == "postgres").unwrap().1;
                throughput("postgres", pg, workers, requests, systems).await;
            }
            // No-op connectors, and connectors that wait 5 ms per call with
            // each worker taking one task at a time (so that waiting, not
            // this machine's two cores, is the limit).
            for (wait_ms, batch, n) in [(0, 64, requests), (5, 64, requests), (5, 1, requests / 5)]
            {
                for procs in [1, 2, 4] {
                    let urls = oubli_testing::store_urls(dir.path()).await;
                    let pg = &urls.iter().find(|u| u.0 == "postgres").unwrap().1;
                    processes(pg, procs, n, systems, wait_ms, batch).await;
                }
            }
        }
        restriction_checks(10_000).await;
        if bulk > 0 {
            bulk_memory(bulk).await;
        }
    });
}
