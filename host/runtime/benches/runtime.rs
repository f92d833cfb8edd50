//! Per-operation overhead of the plugin runtime.
//!
//! - `locate/fresh-instance`: `locate` on the trivial plugin, a fresh
//!   instance per call (what the host does for every operation);
//! - `locate/native`: the same logic as plain Rust, for comparison;
//! - `load/compile`: compiling the component (cache off);
//! - `load/cached-compile`: taking compiled code from the on-disk cache;
//! - `load/cached-load`: a whole `Runtime::load` from the cache (compile
//!   step, import check, manifest call, grants).
//!
//! Run: `cargo bench -p oubli-runtime --bench runtime`. Numbers: docs/PERFORMANCE.md.

use criterion::{Criterion, criterion_group, criterion_main};
use oubli_model::{Located, RecordRef, Subject};
use oubli_runtime::{ConnectorSpec, Runtime, RuntimeOptions};
use oubli_testing::plugins as built_plugins;
use std::hint::black_box;
use std::path::Path;

fn subject() -> Subject {
    Subject {
        emails: vec!["ada.lovelace@example.com".into()],
        ..Default::default()
    }
}

/// What the trivial plugin computes, natively.
fn native_locate(subject: &Subject) -> Vec<Located> {
    subject
        .emails
        .iter()
        .map(|e| Located {
            reference: RecordRef {
                kind: "contact".into(),
                id: e.len().to_string(),
            },
            role: oubli_model::Role::Owner,
            summary: "contact".into(),
            created_at: None,
            hold: None,
        })
        .collect()
}

fn spec() -> ConnectorSpec {
    ConnectorSpec::new("trivial", built_plugins::TRIVIAL)
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    let cache = tempfile::tempdir().expect("tempdir");
    let runtime = Runtime::new(&RuntimeOptions {
        cache_dir: Some(cache.path().to_path_buf()),
        no_cache: false,
    })
    .expect("runtime");
    let spec = spec();
    let plugin = rt.block_on(runtime.load(&spec)).expect("load");
    let subject = subject();

    let mut g = c.benchmark_group("locate");
    g.bench_function("fresh-instance", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(plugin.locate(black_box(&subject)).await.expect("locate")) })
    });
    g.bench_function("native", |b| {
        b.iter(|| black_box(native_locate(black_box(&subject))))
    });
    g.finish();

    let uncached = Runtime::new(&RuntimeOptions {
        cache_dir: None,
        no_cache: true,
    })
    .expect("runtime");
    let path = Path::new(built_plugins::TRIVIAL);
    let mut g = c.benchmark_group("load");
    g.sample_size(20);
    g.bench_function("compile", |b| {
        b.iter(|| black_box(uncached.compile(path).expect("compile")))
    });
    g.bench_function("cached-compile", |b| {
        b.iter(|| black_box(runtime.compile(path).expect("cached")))
    });
    g.bench_function("cached-load", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(runtime.load(&spec).await.expect("load")) })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
