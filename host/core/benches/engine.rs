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

fn config(dir: &Path, url: &str, systems: usize) -> Config {
    let mut text = format!(
        "[store]\nurl = {url:?}\n[policy]\nfour_eyes = false\n[identifiers]\ndefault_region = \"FR\"\n"
    );
    for i in 0..systems {
        text.push_str(&format!(
            "[systems.s{i}]\nconnector = {:?}\nlimits = {{ concurrency = 16 }}\n",
            plugins::NOOP
        ));
    }
    Config::parse(&dir.join("oubli.toml"), &text).unwrap()
}

async fn engine(dir: &Path, url: &str, systems: usize) -> Arc<Engine> {
    Arc::new(
        Engine::open(
            config(dir, url, systems),
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

async fn restriction_checks(n_restrictions: usize) {
    let dir = tempfile::tempdir().unwrap();
    Keyring::init(&dir.path().join("oubli-keys"), None).unwrap();
    let url = dir.path().join("oubli.db").display().to_string();
    let e = Arc::new(
        Engine::open(config(dir.path(), &url, 0), &OpenOptions::default())
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
        if let Ok(base) = std::env::var("OUBLI_TEST_PG") {
            for workers in [1, 2] {
                let urls = oubli_testing::store_urls(dir.path()).await;
                let pg = &urls.iter().find(|u| u.0 == "postgres").unwrap().1;
                throughput("postgres", pg, workers, requests, systems).await;
            }
            let _ = base;
        }
        restriction_checks(10_000).await;
        if bulk > 0 {
            bulk_memory(bulk).await;
        }
    });
}
