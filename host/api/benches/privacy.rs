//! The privacy center's server time and memory, in process (the router
//! called directly, no socket, no SMTP relay: mails are kept in memory):
//!
//! 1. "send me a code": `POST /privacy/ask/access`, each from its own
//!    client and address (the hourly limits not in the way), p50/p99;
//! 2. "here is my code": `POST /privacy/verify/{handle}` with the right
//!    code, which files the request, p50/p99;
//! 3. the download of a 300 MB answer (the vendors' stand-ins, one
//!    recording of 300 MB, carried out by a worker and kept), streamed
//!    through `GET /privacy/download/{handle}/answer.zip`, with the
//!    process's peak RSS before and after.
//!
//! Run: `cargo bench -p oubli-api --bench privacy` (`-- quick` for 200
//! rounds instead of 2,000 and no download).

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request};
use http_body_util::BodyExt;
use oubli_api::AppState;
use oubli_api::privacy::Privacy;
use oubli_core::config::Config;
use oubli_core::mail::Mailer;
use oubli_core::rights::engine::{Attestation, Engine, OpenOptions};
use oubli_core::rights::privacy::{Mail, PrivacyRules};
use oubli_core::rights::worker::{Worker, WorkerOptions};
use oubli_crypto::keyring::Keyring;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tower::ServiceExt;

#[derive(Default)]
struct Kept(Mutex<Vec<Mail>>);

impl Mailer for Kept {
    fn send(&self, mail: &Mail) -> Result<(), String> {
        self.0.lock().unwrap().push(mail.clone());
        Ok(())
    }
}

fn rss(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn privacy_toml(extra: &str) -> String {
    format!(
        "{extra}\n[api.privacy]\npublic_url = \"https://privacy.example.com\"\ncodes_per_address = 1000\nstarts_per_client = 1000\n\n[api.privacy.smtp]\nhost = \"localhost\"\ntls = \"none\"\nfrom = \"Privacy <privacy@example.com>\"\n"
    )
}

async fn call(
    router: &Router,
    method: Method,
    path: &str,
    form: &str,
    client: [u8; 4],
) -> (u16, String, Duration) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/x-www-form-urlencoded")
        .extension(axum::extract::ConnectInfo(std::net::SocketAddr::from((
            client, 4000,
        ))))
        .body(Body::from(form.to_string()))
        .unwrap();
    let t = Instant::now();
    let r = router.clone().oneshot(req).await.unwrap();
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let _ = r.into_body().collect().await.unwrap();
    (status, location, t.elapsed())
}

fn code_in(mail: &Mail) -> String {
    let at = mail.body.find("Your code is ").unwrap() + "Your code is ".len();
    mail.body[at..at + 6].to_string()
}

fn pct(mut v: Vec<Duration>, p: f64) -> f64 {
    v.sort();
    let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
    v[i].as_secs_f64() * 1e3
}

async fn mails(kept: &Kept, n: usize) -> Vec<Mail> {
    loop {
        if kept.0.lock().unwrap().len() >= n {
            return kept.0.lock().unwrap().clone();
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn codes_and_filing(rounds: usize) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    Keyring::init(&path.join("oubli-keys"), None).unwrap();
    let text = privacy_toml(&format!(
        "[store]\nurl = \"sqlite://{db}\"\n\n[keys]\ndir = \"{keys}\"\n\n[systems.directory]\nconnector = \"directory.wasm\"\n",
        db = path.join("oubli.db").display(),
        keys = path.join("oubli-keys").display(),
    ));
    let config = Config::parse(&path.join("oubli.toml"), &text).unwrap();
    let settings = config.api.privacy.clone().unwrap();
    let engine = Arc::new(Engine::open(config, &OpenOptions::default()).await.unwrap());
    let kept = Arc::new(Kept::default());
    let router = oubli_api::privacy::router(Privacy::new(
        AppState::new(engine.clone()),
        PrivacyRules::from(&settings),
        kept.clone(),
    ));
    let mut asked = Vec::with_capacity(rounds);
    let mut handles = Vec::with_capacity(rounds);
    for i in 0..rounds {
        let ip = [10, (i >> 16) as u8, (i >> 8) as u8, i as u8];
        let (status, location, t) = call(
            &router,
            Method::POST,
            "/privacy/ask/access",
            &format!("lang=en&email=person{i}%40example.com"),
            ip,
        )
        .await;
        assert_eq!(status, 303);
        asked.push(t);
        handles.push(location);
    }
    let all = mails(&kept, rounds).await;
    let mut filed = Vec::with_capacity(rounds);
    for (i, handle) in handles.iter().enumerate() {
        let code = code_in(&all[i]);
        let (status, location, t) = call(
            &router,
            Method::POST,
            handle,
            &format!("code={code}"),
            [10, 0, 0, 1],
        )
        .await;
        assert_eq!(status, 303, "{location}");
        filed.push(t);
    }
    println!(
        "privacy center, {rounds} subjects on SQLite: code sent p50 {:.2} ms, p99 {:.2} ms; request filed p50 {:.2} ms, p99 {:.2} ms (server time, no SMTP relay)",
        pct(asked.clone(), 0.5),
        pct(asked, 0.99),
        pct(filed.clone(), 0.5),
        pct(filed, 0.99),
    );
}

async fn download() {
    const RECORDING: u64 = 300_000_000;
    let sandbox = oubli_sandbox::Sandbox::start(oubli_sandbox::Options {
        large_recording: Some(RECORDING),
        ..oubli_sandbox::Options::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    sandbox.write_secrets(&dir.path().join("secrets")).unwrap();
    let plugins = Path::new(oubli_testing::plugins::GENESYS_CLOUD)
        .parent()
        .unwrap();
    let register = oubli_sandbox::write_register(dir.path()).unwrap();
    let path = dir.path().join("oubli.toml");
    std::fs::write(
        &path,
        privacy_toml(
            &(sandbox.config_toml(plugins, &dir.path().join("secrets"))
                + &register
                + "\n[policy]\nfour_eyes = false\n\n[systems.genesys.limits]\nmemory = \"32MiB\"\n"),
        ),
    )
    .unwrap();
    Keyring::init(&dir.path().join("oubli-keys"), None).unwrap();
    let config = Config::load(&path).unwrap();
    let settings = config.api.privacy.clone().unwrap();
    let engine = Arc::new(
        Engine::open(
            config,
            &OpenOptions {
                connectors: true,
                ..Default::default()
            },
        )
        .await
        .unwrap(),
    );
    let kept = Arc::new(Kept::default());
    let router = oubli_api::privacy::router(Privacy::new(
        AppState::new(engine.clone()),
        PrivacyRules::from(&settings),
        kept.clone(),
    ));
    // The stand-in attaches the large recording to the second person's
    // first call, found by their phone number: a phone number given in
    // the privacy center waits for an operator's attestation.
    let p = &sandbox.people()[1];
    let form = format!(
        "lang=en&email={}&phone={}",
        p.email.replace('@', "%40").replace('+', "%2B"),
        p.phone.replace('+', "%2B")
    );
    let (_, verify, _) = call(
        &router,
        Method::POST,
        "/privacy/ask/access",
        &form,
        [10, 9, 9, 9],
    )
    .await;
    let code = code_in(&mails(&kept, 1).await[0]);
    let (status, status_page, _) = call(
        &router,
        Method::POST,
        &verify,
        &format!("code={code}"),
        [10, 9, 9, 9],
    )
    .await;
    assert_eq!(status, 303);
    let id = engine.list(&Default::default()).await.unwrap()[0]
        .id
        .clone();
    engine
        .attest(
            &id,
            "bench",
            &Attestation {
                method: "call-back".into(),
                evidence: "called back".into(),
            },
        )
        .await
        .unwrap();
    Worker::new(engine.clone(), WorkerOptions::default())
        .run(true, std::future::pending())
        .await
        .unwrap();
    let (status, verify, _) = call(
        &router,
        Method::POST,
        &format!("{status_page}/answer"),
        "",
        [10, 9, 9, 9],
    )
    .await;
    assert_eq!(status, 303, "the answer is ready");
    let code = code_in(&mails(&kept, 3).await[2]);
    let (status, open, _) = call(
        &router,
        Method::POST,
        &verify,
        &format!("code={code}"),
        [10, 9, 9, 9],
    )
    .await;
    assert_eq!(status, 303);
    // The download runs in a process of its own, as `oubli serve` would
    // serve it: its memory is the server's, not the stand-ins' nor the
    // worker's that assembled the answer.
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .arg("serve-download")
        .arg(&path)
        .arg(&open)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    print!("{}", String::from_utf8_lossy(&out.stdout));
    drop(sandbox);
}

/// In a fresh process: open the store of `config`, and stream the answer
/// the download handle path `open` opens through the privacy center.
async fn serve_download(config: &Path, open: &str) {
    let config = Config::load(config).unwrap();
    let settings = config.api.privacy.clone().unwrap();
    let engine = Arc::new(Engine::open(config, &OpenOptions::default()).await.unwrap());
    let router = oubli_api::privacy::router(Privacy::new(
        AppState::new(engine.clone()),
        PrivacyRules::from(&settings),
        Arc::new(Kept::default()),
    ));
    let before = rss("VmHWM:");
    let t = Instant::now();
    let req = Request::builder()
        .uri(format!("{open}/answer.zip"))
        .extension(axum::extract::ConnectInfo(std::net::SocketAddr::from((
            [10, 9, 9, 9],
            4000,
        ))))
        .body(Body::empty())
        .unwrap();
    let r = router.clone().oneshot(req).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let mut body = r.into_body();
    let mut n = 0u64;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            n += data.len() as u64;
        }
    }
    let secs = t.elapsed().as_secs_f64();
    assert!(n > 300_000_000, "{n} bytes");
    println!(
        "privacy center download: {:.0} MB answer streamed in {secs:.2} s ({:.0} MB/s); the serving process's peak RSS {before:.0} MiB before, {:.0} MiB after (current {:.0} MiB)",
        n as f64 / 1e6,
        n as f64 / 1e6 / secs,
        rss("VmHWM:"),
        rss("VmRSS:")
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "quick");
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            if args.get(1).is_some_and(|a| a == "serve-download") {
                serve_download(Path::new(&args[2]), &args[3]).await;
                return;
            }
            codes_and_filing(if quick { 200 } else { 2000 }).await;
            if !quick {
                download().await;
            }
        });
}
