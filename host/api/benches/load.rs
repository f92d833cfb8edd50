//! Load on the HTTP API from a second process, over loopback: the
//! restriction check (the call a dialer makes before every dial) and
//! request filing, on SQLite.
//!
//! ```sh
//! cargo bench -p oubli-api --bench load -- [--connections 32] [--seconds 10] [--creates 3000] [--subjects 1000]
//! ```
//!
//! The bench re-runs itself as the server (`OUBLI_BENCH_SERVER=DIR`): one
//! process serves, this one loads it with keep-alive HTTP/1.1 connections,
//! each sending its next request when the last answer arrived. Prints
//! throughput, latency percentiles and the server's peak RSS.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use oubli_core::config::Config;
use oubli_core::identifiers::Identifiers;
use oubli_core::rights::engine::{Engine, NewRequest, OpenOptions, Params};
use oubli_core::rights::tokens::Role;
use oubli_model::RequestKind;
use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn open(dir: &Path) -> Engine {
    let config = Config::load(&dir.join("oubli.toml")).unwrap();
    Engine::open(
        config,
        &OpenOptions {
            connectors: true,
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

fn email(i: u64) -> String {
    format!("person{i}@example.com")
}

/// The server side: serve until stdin closes.
async fn server(dir: &Path) {
    let engine = Arc::new(open(dir).await);
    let server = oubli_api::server::Server::bind(
        engine,
        oubli_api::server::ServeOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            tls: None,
            allow_plain_http: false,
            workers: 0,
            sign_every: Duration::from_secs(3600),
            max_body: 64 * 1024,
            header_timeout: Duration::from_secs(30),
            max_connections: 4096,
            max_connections_per_address: 4096,
            trusted_proxies: vec![],
            lockout_after: 10,
            webhooks: vec![],
            console: Default::default(),
            privacy: None,
        },
    )
    .await
    .unwrap();
    println!("ready {}", server.addr);
    std::io::stdout().flush().unwrap();
    let stop = async {
        tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            while std::io::stdin().lock().read_line(&mut line).unwrap_or(0) > 0 {
                line.clear();
            }
        })
        .await
        .ok();
    };
    server.run(stop).await.unwrap();
}

async fn connect(addr: &str) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    send
}

/// Run `make(i)` requests on `connections` connections until `until` or
/// `total` requests; returns (requests, latencies in µs, wall time).
/// One kind of load: where, how much, what each request carries.
struct Load {
    connections: u64,
    total: Option<u64>,
    until: Duration,
    path: &'static str,
    body: fn(u64) -> String,
    want: u16,
}

async fn load(addr: &str, token: &str, l: Load) -> (u64, Vec<u32>, Duration) {
    let Load {
        connections,
        total,
        until,
        path,
        body,
        want,
    } = l;
    let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let mut send = connect(addr).await;
        let (token, counter) = (token.to_string(), counter.clone());
        tasks.spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if total.is_some_and(|t| i >= t) || started.elapsed() >= until {
                    break;
                }
                let req = hyper::Request::post(path)
                    .header("host", "bench")
                    .header("authorization", format!("Bearer {token}"))
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(body(i))))
                    .unwrap();
                let t = Instant::now();
                let resp = send.send_request(req).await.unwrap();
                let status = resp.status().as_u16();
                let _ = resp.into_body().collect().await.unwrap();
                lat.push(t.elapsed().as_micros() as u32);
                assert_eq!(status, want, "{path}");
            }
            lat
        });
    }
    let mut all = Vec::new();
    while let Some(l) = tasks.join_next().await {
        all.extend(l.unwrap());
    }
    let wall = started.elapsed();
    (all.len() as u64, all, wall)
}

fn report(what: &str, n: u64, mut lat: Vec<u32>, wall: Duration) {
    lat.sort_unstable();
    let p = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)] as f64 / 1000.0;
    println!(
        "{what}: {n} in {:.2} s = {:.0}/s; latency p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
        wall.as_secs_f64(),
        n as f64 / wall.as_secs_f64(),
        p(0.50),
        p(0.99),
        p(0.999),
        *lat.last().unwrap() as f64 / 1000.0
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if let Ok(dir) = std::env::var("OUBLI_BENCH_SERVER") {
        rt.block_on(server(Path::new(&dir)));
        return;
    }
    let connections = arg("--connections", 32);
    let seconds = arg("--seconds", 10);
    let creates = arg("--creates", 3000);
    let subjects = arg("--subjects", 1000);

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("oubli.toml"),
        "[policy]\nfour_eyes = true\n",
    )
    .unwrap();
    oubli_crypto::keyring::Keyring::init(&dir.path().join("oubli-keys"), None).unwrap();
    let token = rt.block_on(async {
        let engine = open(dir.path()).await;
        // Every other subject restricted: half the checks answer "restricted".
        for i in (0..subjects).step_by(2) {
            engine
                .file(NewRequest {
                    id: None,
                    kind: RequestKind::Restriction,
                    identifiers: Identifiers {
                        emails: vec![email(i)],
                        ..Default::default()
                    },
                    region: None,
                    actor: "bench".into(),
                    params: Params {
                        scope: vec!["direct-marketing".into()],
                        ..Params::default()
                    },
                    attestation: None,
                    intake: None,
                })
                .await
                .unwrap();
        }
        let t = engine
            .create_token(Role::Admin, "bench", None, "bench")
            .await
            .unwrap();
        engine.store().close().await;
        t.token.to_string()
    });

    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .env("OUBLI_BENCH_SERVER", dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr = line.trim().strip_prefix("ready ").unwrap().to_string();
    let pid = child.id();
    println!(
        "oubli-api load: server pid {pid} on {addr}; {connections} connections; {subjects} subjects, half restricted"
    );

    rt.block_on(async {
        // Warm up, then measure.
        let check = |total, until| Load {
            connections,
            total,
            until,
            path: "/v1/restrictions/check",
            body: check_body,
            want: 200,
        };
        load(&addr, &token, check(Some(2000), Duration::from_secs(30))).await;
        let (n, lat, wall) = load(&addr, &token, check(None, Duration::from_secs(seconds))).await;
        report("restriction checks", n, lat, wall);
        let (n, lat, wall) = load(
            &addr,
            &token,
            Load {
                connections: connections.min(16),
                total: Some(creates),
                until: Duration::from_secs(120),
                path: "/v1/requests",
                body: create_body,
                want: 201,
            },
        )
        .await;
        report("requests filed (SQLite)", n, lat, wall);
    });
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    for l in status
        .lines()
        .filter(|l| l.starts_with("VmHWM") || l.starts_with("VmRSS"))
    {
        println!("server {l}");
    }
    drop(child.stdin.take());
    child.wait().unwrap();
}

fn check_body(i: u64) -> String {
    format!(
        "{{\"subject\": {{\"emails\": [\"{}\"]}}, \"scope\": \"direct-marketing\"}}",
        email(i % 1000)
    )
}

fn create_body(i: u64) -> String {
    format!("{{\"kind\": \"access\", \"subject\": {{\"emails\": [\"new{i}@example.com\"]}}}}")
}
