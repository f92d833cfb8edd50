//! The audit log at size: events placed by the sequencer per second, and
//! inclusion proofs (size, time to make from the store, time to check) in
//! a log of a million events on SQLite, with the size for ten million
//! computed (a proof holds ⌈log₂ n⌉ hashes).
//!
//! Run: `cargo bench -p oubli-store --bench log` (optionally `-- --events N`).

use oubli_store::{Store, log, merkle};
use std::time::Instant;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let n = arg("--events", 1_000_000) as i64;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let url = dir.path().join("log.db").display().to_string();
        let store = Store::open(&url).await.unwrap();
        // Events written raw, waiting, as PostgreSQL workers leave them.
        let started = Instant::now();
        let mut written = 0i64;
        while written < n {
            let mut tx = store.write().await.unwrap();
            let chunk = (n - written).min(10_000);
            for base in (0..chunk).step_by(500) {
                let rows = (chunk - base).min(500);
                let marks: Vec<String> = (0..rows)
                    .map(|i| format!("('r-{}', {}, 'worker:bench', 'erase-done', 'crm')", (written + base + i) / 7, written + base + i))
                    .collect();
                sqlx::query(&format!(
                    "INSERT INTO events (request_id, at, actor, action, system) VALUES {}",
                    marks.join(", ")
                ))
                .execute(&mut *tx)
                .await
                .unwrap();
            }
            oubli_store::commit(tx).await.unwrap();
            written += chunk;
        }
        let wrote = started.elapsed().as_secs_f64();
        let started = Instant::now();
        loop {
            let mut tx = store.write().await.unwrap();
            let done = log::integrate(&mut tx, 20_000).await.unwrap();
            oubli_store::commit(tx).await.unwrap();
            if done.to == done.from {
                break;
            }
        }
        let placed = started.elapsed().as_secs_f64();
        println!(
            "log: {n} events written in {wrote:.1} s, placed by the sequencer in {placed:.1} s = {:.0} events/s",
            n as f64 / placed
        );
        let started = Instant::now();
        let root = log::root(store.pool(), n).await.unwrap();
        println!("root of {n} events from the store in {:.2} ms", started.elapsed().as_secs_f64() * 1e3);
        let samples = 1000;
        let mut make = 0f64;
        let mut check = 0f64;
        let mut longest = 0;
        for k in 0..samples {
            let index = (k as i64 * 7_919_993) % n;
            let leaf: String = sqlx::query_scalar("SELECT hash FROM audit_nodes WHERE level = 0 AND idx = $1")
                .bind(index)
                .fetch_one(store.pool())
                .await
                .unwrap();
            let leaf: merkle::Hash = hex::decode(leaf).unwrap().try_into().unwrap();
            let t = Instant::now();
            let path = log::inclusion(store.pool(), index, n).await.unwrap();
            make += t.elapsed().as_secs_f64();
            let t = Instant::now();
            assert!(merkle::verify_inclusion(index as u64, n as u64, &leaf, &path, &root));
            check += t.elapsed().as_secs_f64();
            longest = longest.max(path.len());
        }
        let ten_million = (10_000_000f64).log2().ceil() as usize;
        println!(
            "inclusion proof in a log of {n}: at most {longest} hashes ({} bytes), made from the store in {:.3} ms, checked in {:.1} µs (mean of {samples}); for 10,000,000 events: {ten_million} hashes ({} bytes)",
            longest * 32,
            make / samples as f64 * 1e3,
            check / samples as f64 * 1e6,
            ten_million * 32
        );
        let t = Instant::now();
        let proof = log::consistency(store.pool(), n / 3, n).await.unwrap();
        println!(
            "consistency proof {} → {n}: {} hashes, made in {:.3} ms",
            n / 3,
            proof.len(),
            t.elapsed().as_secs_f64() * 1e3
        );
        store.close().await;
    });
}
