//! End-to-end numbers for the reference connectors against the sandbox
//! stand-ins (loopback HTTP): `locate` latency per system, and streaming a
//! 300 MB call recording through `read-attachment` at several chunk sizes,
//! with the process's peak memory.
//!
//! A bench binary rather than criterion: the streaming figure is one long
//! run whose peak RSS matters as much as its time.
//!
//! Run: `cargo bench -p oubli-core --bench connectors`.

use oubli_core::config::Config;
use oubli_core::identifiers::normalise;
use oubli_core::rights::export as access;
use oubli_core::rights::retry::RetryPolicy;
use oubli_runtime::{Connector, Runtime, RuntimeOptions};
use oubli_sandbox::{Options, Sandbox, System};
use std::path::Path;
use std::time::{Duration, Instant};

// The tests' helpers for real servers: the Cyrus section loads its
// connector the same way.
#[path = "../tests/it/real_server.rs"]
mod real_server;

const RECORDING: u64 = 300_000_000;

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

struct Discard(u64);
impl std::io::Write for Discard {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0 += b.len() as u64;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn bench() {
    let sandbox = Sandbox::start(Options {
        large_recording: Some(RECORDING),
        ..Options::default()
    })
    .await
    .expect("sandbox starts");
    let dir = tempfile::tempdir().unwrap();
    sandbox.write_secrets(&dir.path().join("secrets")).unwrap();
    let plugins = Path::new(oubli_testing::plugins::GENESYS_CLOUD)
        .parent()
        .unwrap();
    let path = dir.path().join("oubli.toml");
    std::fs::write(
        &path,
        sandbox.config_toml(plugins, &dir.path().join("secrets"))
            + "\n[systems.genesys.limits]\nmemory = \"32MiB\"\n",
    )
    .unwrap();
    let config = Config::load(&path).unwrap();
    let runtime = Runtime::new(&RuntimeOptions {
        cache_dir: Some(dir.path().join("cache")),
        no_cache: false,
    })
    .unwrap();
    let load = async |system: System| -> Connector {
        let entry = config
            .systems
            .iter()
            .find(|p| p.name() == system.name())
            .unwrap();
        runtime.load(&entry.spec).await.unwrap()
    };

    let p = sandbox.demo_person().clone();
    let subject = normalise(
        std::slice::from_ref(&p.email),
        std::slice::from_ref(&p.phone),
        &[],
        &[],
        None,
    )
    .unwrap();
    println!("locate, one person, loopback stand-in (30 runs after 3 warm-ups):");
    println!(
        "{:<13} {:>8} {:>8} {:>8}  records",
        "system", "median", "p90", "max"
    );
    for system in System::ALL {
        let plugin = load(system).await;
        for _ in 0..3 {
            plugin.locate(&subject).await.unwrap();
        }
        let mut times = Vec::new();
        let mut n = 0;
        for _ in 0..30 {
            let t = Instant::now();
            n = plugin.locate(&subject).await.unwrap().len();
            times.push(t.elapsed());
        }
        times.sort();
        println!(
            "{:<13} {:>6.2}ms {:>6.2}ms {:>6.2}ms  {n}",
            system.name(),
            percentile(&times, 0.5).as_secs_f64() * 1e3,
            percentile(&times, 0.9).as_secs_f64() * 1e3,
            times.last().unwrap().as_secs_f64() * 1e3,
        );
    }

    let genesys = load(System::Acd).await;
    let second = sandbox.people()[1].clone();
    let s2 = normalise(&[], std::slice::from_ref(&second.phone), &[], &[], None).unwrap();
    let found = genesys.locate(&s2).await.unwrap();
    let refs: Vec<_> = found
        .iter()
        .filter(|l| l.reference.kind == "conversation")
        .map(|l| l.reference.clone())
        .collect();
    let big_id = {
        let data = sandbox.genesys.data.lock().unwrap();
        data.conversations
            .values()
            .flat_map(|c| c.recordings.iter())
            .find(|r| r.1 == RECORDING)
            .unwrap()
            .0
            .clone()
    };
    let exported = genesys.export(&refs).await.unwrap();
    let (record, attachment) = exported
        .iter()
        .flat_map(|e| e.attachments.iter().map(move |a| (e, a)))
        .find(|(_, a)| a.name.contains(&big_id))
        .unwrap();
    println!(
        "\nstreaming a {} MB recording through read-attachment (plugin memory limit 32 MiB):",
        RECORDING / 1_000_000
    );
    println!(
        "{:>9} {:>7} {:>9} {:>7}  {:>6}  peak RSS",
        "chunk", "calls", "time", "MB/s", "tokens"
    );
    let before = peak_rss_mib();
    let tokens = || {
        sandbox
            .genesys
            .tokens_issued
            .load(std::sync::atomic::Ordering::SeqCst)
    };
    for chunk in [256 * 1024, 1024 * 1024, 4 * 1024 * 1024] {
        let mut sink = Discard(0);
        let asked = tokens();
        let t = Instant::now();
        access::stream_attachment(
            &genesys.for_subject(&Default::default()),
            &record.reference,
            attachment,
            chunk,
            &RetryPolicy::none(),
            &mut sink,
        )
        .await
        .unwrap();
        let secs = t.elapsed().as_secs_f64();
        assert_eq!(sink.0, RECORDING);
        println!(
            "{:>6} KiB {:>7} {:>8.2}s {:>7.0}  {:>6}  {:.0} MiB",
            chunk / 1024,
            RECORDING.div_ceil(u64::from(chunk)),
            secs,
            RECORDING as f64 / 1e6 / secs,
            tokens() - asked,
            peak_rss_mib()
        );
    }
    println!(
        "(peak RSS before streaming: {before:.0} MiB; the sandbox server runs in the same process)"
    );
    if let Some(url) = real_server::server("OUBLI_TEST_CYRUS", "OUBLI_REQUIRE_CYRUS", ".ci/cyrus") {
        cyrus(&url).await;
    }
}

/// Against the real Cyrus of `.ci/cyrus` (when `OUBLI_TEST_CYRUS` names
/// it): the tail of `locate` latency, where a Nagle/delayed-ACK stall
/// would show as ~40-200 ms outliers, and streaming a message larger than
/// the SDK's body cap from a server that ignores `Range`.
async fn cyrus(url: &str) {
    use oubli_testing::jmap::{Jmap, PASSWORD, USER, message};
    use oubli_testing::unique;
    let jmap = Jmap::open(url);
    let person = format!("bench.{}@example.org", unique());
    for i in 0..10 {
        jmap.import(
            USER,
            &message(
                &person,
                "support@example.com",
                None,
                &format!("m{i}"),
                "hello",
            ),
        );
    }
    let line = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789\r\n";
    let big = message(
        &person,
        "support@example.com",
        None,
        "big",
        &line.repeat(20_000_000 / line.len()),
    );
    jmap.import(USER, &big);
    jmap.indexed(USER, &person, 11);
    let origin = url.split('/').take(3).collect::<Vec<_>>().join("/");
    let (_dir, mail) = real_server::connector(
        oubli_testing::plugins::JMAP_MAIL,
        &origin,
        &format!("session_url = {url:?}"),
        USER,
        PASSWORD,
    )
    .await;
    let subject = real_server::subject(&person);
    for _ in 0..5 {
        mail.locate(&subject).await.unwrap();
    }
    let mut times = Vec::new();
    for _ in 0..300 {
        let t = Instant::now();
        let n = mail.locate(&subject).await.unwrap().len();
        assert_eq!(n, 11);
        times.push(t.elapsed());
    }
    times.sort();
    let slow = times
        .iter()
        .filter(|t| **t > Duration::from_millis(150))
        .count();
    println!(
        "\nlocate against Cyrus 3.6 (JMAP, loopback; 300 runs, 11 messages, ~8 HTTP requests each):"
    );
    println!(
        "median {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms; runs over 150 ms: {slow}",
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        percentile(&times, 0.9).as_secs_f64() * 1e3,
        percentile(&times, 0.99).as_secs_f64() * 1e3,
        times.last().unwrap().as_secs_f64() * 1e3,
    );

    let found = mail.locate(&subject).await.unwrap();
    let refs: Vec<_> = found.iter().map(|l| l.reference.clone()).collect();
    let exported = mail.export(&refs).await.unwrap();
    let (record, attachment) = exported
        .iter()
        .flat_map(|e| e.attachments.iter().map(move |a| (e, a)))
        .max_by_key(|(_, a)| a.size.unwrap_or(0))
        .unwrap();
    let mut sink = Discard(0);
    let t = Instant::now();
    access::stream_attachment(
        &mail.for_subject(&subject),
        &record.reference,
        attachment,
        1024 * 1024,
        &RetryPolicy::none(),
        &mut sink,
    )
    .await
    .unwrap();
    let secs = t.elapsed().as_secs_f64();
    println!(
        "streaming a {:.1} MB message from Cyrus (no Range support) in 1 MiB chunks: {secs:.2}s, {:.0} MB/s",
        sink.0 as f64 / 1e6,
        sink.0 as f64 / 1e6 / secs
    );
    mail.erase(&refs, oubli_model::EraseMode::Delete)
        .await
        .unwrap();
}

fn main() {
    // `cargo bench` passes --bench; a filter argument is not supported.
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(bench());
}
