//! Memory and time of a subject's answer whose recordings include one of
//! 300 MB: the whole path (an access request carried out by a worker, its
//! last task streaming every attachment through the connectors into the
//! ZIP kept in sealed pieces in the store; then `write_bundle` encrypting
//! the kept answer for a recipient), with the process's peak RSS after
//! each.
//!
//! Run: `cargo bench -p oubli-core --bench bundle`.

use oubli_core::config::Config;
use oubli_core::identifiers::Identifiers;
use oubli_core::rights::bundle::BundleOptions;
use oubli_core::rights::engine::{Engine, NewRequest, OpenOptions, Params};
use oubli_core::rights::worker::{Worker, WorkerOptions};
use oubli_crypto::keyring::Keyring;
use oubli_model::{RequestKind, RequestState};
use oubli_sandbox::{Options, Sandbox};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

const RECORDING: u64 = 300_000_000;

fn rss(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Counts what it is given and drops it.
struct Count(u64);

impl tokio::io::AsyncWrite for Count {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.0 += buf.len() as u64;
        std::task::Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
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
            + "\n[policy]\nfour_eyes = false\n\n[systems.genesys.limits]\nmemory = \"32MiB\"\n",
    )
    .unwrap();
    Keyring::init(&dir.path().join("oubli-keys"), None).unwrap();
    let engine = Arc::new(
        Engine::open(
            Config::load(&path).unwrap(),
            &OpenOptions {
                connectors: true,
                ..Default::default()
            },
        )
        .await
        .unwrap(),
    );
    // The stand-in attaches the large recording to the second person's
    // first call, found by their phone number.
    let p = &sandbox.people()[1];
    let filed = engine
        .file(NewRequest {
            id: None,
            kind: RequestKind::Access,
            identifiers: Identifiers {
                phones: vec![p.phone.clone()],
                ..Default::default()
            },
            region: None,
            actor: "bench".into(),
            params: Params::default(),
            attestation: None,
            intake: None,
        })
        .await
        .unwrap();
    let start = rss("VmHWM:");
    let t = Instant::now();
    Worker::new(engine.clone(), WorkerOptions::default())
        .run(true, std::future::pending())
        .await
        .unwrap();
    let assembled = t.elapsed().as_secs_f64();
    let d = engine.show(&filed.id).await.unwrap();
    assert_eq!(d.request.state, RequestState::Completed);
    let before = rss("VmHWM:");
    println!(
        "answer: request carried out and its answer assembled and kept in {assembled:.2} s; peak RSS {start:.0} MiB before, {before:.0} MiB after"
    );
    let t = Instant::now();
    let mut out = Count(0);
    let report = engine
        .write_bundle(
            &filed.id,
            &BundleOptions {
                recipients: engine.recipients(&[]).unwrap(),
                // No register in this bench: its answer says so.
                allow_incomplete: true,
            },
            &mut out,
        )
        .await
        .unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert!(
        report.zip_len > RECORDING,
        "the large recording is not in the bundle: {} attachments, {} bytes",
        report.attachments,
        report.zip_len
    );
    println!(
        "bundle: {} records, {} attachments, {:.0} MB encrypted in {secs:.2} s ({:.0} MB/s); peak RSS {before:.0} MiB before, {:.0} MiB after (current {:.0} MiB)",
        report.records,
        report.attachments,
        out.0 as f64 / 1e6,
        out.0 as f64 / 1e6 / secs,
        rss("VmHWM:"),
        rss("VmRSS:")
    );
    println!("(the sandbox stand-ins, serving the recording, run in the same process)");
}

fn main() {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(bench());
}
