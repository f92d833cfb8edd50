//! Streaming encryption throughput, next to the raw `aes-gcm` crate on the
//! same buffers, and the cost of one RSA-OAEP unwrap.
//!
//! Run: `cargo bench -p oubli-crypto --bench crypto`. Numbers: docs/PERFORMANCE.md.

use aes_gcm::aead::{AeadInOut, KeyInit};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use oubli_crypto::chunked::{self, CHUNK, ChunkedReader, ChunkedWriter};
use oubli_crypto::file::{self, Recipient};
use std::hint::black_box;
use std::io::{Read, Write};

const SIZE: usize = 64 << 20;

fn bench(c: &mut Criterion) {
    let key = [0x42u8; 32];
    let data: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();

    let mut g = c.benchmark_group("aes-256-gcm-64MiB");
    g.throughput(Throughput::Bytes(SIZE as u64));
    g.sample_size(20);
    g.bench_function("raw-aes-gcm-16KiB-chunks", |b| {
        let cipher = aes_gcm::Aes256Gcm::new_from_slice(&key).unwrap();
        let mut buf = vec![0u8; CHUNK];
        b.iter(|| {
            for (i, chunk) in data.chunks(CHUNK).enumerate() {
                buf[..chunk.len()].copy_from_slice(chunk);
                let mut nonce = [0u8; 12];
                nonce[4..].copy_from_slice(&(i as u64).to_be_bytes());
                let tag = cipher
                    .encrypt_inout_detached(&nonce.into(), &[], (&mut buf[..chunk.len()]).into())
                    .unwrap();
                black_box(tag);
            }
        })
    });
    g.bench_function("ring-aes-gcm-16KiB-chunks", |b| {
        let key = ring::aead::LessSafeKey::new(
            ring::aead::UnboundKey::new(&ring::aead::AES_256_GCM, &key).unwrap(),
        );
        let mut buf = vec![0u8; CHUNK];
        b.iter(|| {
            for (i, chunk) in data.chunks(CHUNK).enumerate() {
                buf[..chunk.len()].copy_from_slice(chunk);
                let mut nonce = [0u8; 12];
                nonce[4..].copy_from_slice(&(i as u64).to_be_bytes());
                let tag = key
                    .seal_in_place_separate_tag(
                        ring::aead::Nonce::assume_unique_for_key(nonce),
                        ring::aead::Aad::empty(),
                        &mut buf[..chunk.len()],
                    )
                    .unwrap();
                let _ = black_box(tag);
            }
        })
    });
    g.bench_function("chunked-encrypt", |b| {
        b.iter(|| {
            let mut w = ChunkedWriter::new(std::io::sink(), &key, b"context").unwrap();
            w.write_all(&data).unwrap();
            black_box(w.finish().unwrap());
        })
    });
    let sealed = chunked::seal(&key, b"context", &data).unwrap();
    g.bench_function("chunked-decrypt", |b| {
        let mut out = vec![0u8; 1 << 20];
        b.iter(|| {
            let mut r = ChunkedReader::new(&sealed[..], &key, b"context").unwrap();
            while r.read(&mut out).unwrap() > 0 {}
        })
    });
    g.finish();

    let private = oubli_crypto::keyring::generate_rsa().unwrap();
    let recipient = Recipient::new(private.to_public_key()).unwrap();
    let small = file::encrypt(
        std::slice::from_ref(&recipient),
        "file",
        "",
        &b"x"[..],
        Vec::new(),
    )
    .unwrap();
    let mut g = c.benchmark_group("rsa-2048");
    g.sample_size(20);
    g.bench_function("oaep-wrap-file-key", |b| {
        b.iter(|| {
            black_box(
                file::encrypt(
                    std::slice::from_ref(&recipient),
                    "file",
                    "",
                    &b"x"[..],
                    Vec::new(),
                )
                .unwrap(),
            )
        })
    });
    g.bench_function("oaep-unwrap-file-key", |b| {
        b.iter(|| black_box(file::decrypt(&private, &small[..], Vec::new()).unwrap()))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
