//! How long the operator console takes to render its pages on the server,
//! with 10,000 requests in the store (SQLite), in process (the router
//! called directly: no socket, so the figure is the page's own work: the
//! store's queries, the engine, the template).
//!
//! ```sh
//! cargo bench -p oubli-api --bench console -- [--requests 10000] [--rounds 200]
//! ```
//!
//! The store holds `--requests` requests, a few carried through planning
//! against the people-directory stand-in (their plans name 21 records each)
//! and one to its end and certificate. Each page is rendered `--rounds`
//! times; prints p50, p99 and max, and the HTML's size.

use axum::body::Body;
use axum::http::{Method, Request};
use http_body_util::BodyExt;
use oubli_api::AppState;
use oubli_core::config::{Config, ConsoleSettings};
use oubli_core::identifiers::Identifiers;
use oubli_core::rights::engine::{Engine, NewRequest, OpenOptions, Params};
use oubli_core::rights::tokens::Role;
use oubli_core::rights::worker::{Worker, WorkerOptions};
use oubli_model::RequestKind;
use oubli_testing::people_directory;
use oubli_testing::plugins as built;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt;

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn new_request(kind: RequestKind, email: String) -> NewRequest {
    use oubli_core::rights::engine::Correction;
    let mut params = Params::default();
    match kind {
        RequestKind::Restriction | RequestKind::Objection | RequestKind::ConsentWithdrawal => {
            params.scope = vec!["direct-marketing".into()]
        }
        RequestKind::Rectification => params.changes.push(Correction {
            system: None,
            field: "notes".into(),
            new_value: Some("corrected".into()),
        }),
        _ => {}
    }
    NewRequest {
        id: None,
        kind,
        identifiers: Identifiers {
            emails: vec![email],
            ..Identifiers::default()
        },
        region: None,
        actor: "alice".into(),
        params,
        attestation: None,
        intake: None,
    }
}

async fn call(
    router: &axum::Router,
    method: &str,
    path: &str,
    cookie: &str,
    form: Option<String>,
) -> (u16, Vec<u8>) {
    let mut req = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).unwrap())
        .uri(path)
        .header("cookie", cookie);
    if form.is_some() {
        req = req.header("content-type", "application/x-www-form-urlencoded");
    }
    let req = req.body(Body::from(form.unwrap_or_default())).unwrap();
    let r = router.clone().oneshot(req).await.unwrap();
    let status = r.status().as_u16();
    (
        status,
        r.into_body().collect().await.unwrap().to_bytes().to_vec(),
    )
}

#[tokio::main]
async fn main() {
    let total = arg("--requests", 10_000);
    let rounds = arg("--rounds", 200) as usize;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    oubli_crypto::keyring::Keyring::init(&path.join("oubli-keys"), None).unwrap();
    let (addr, people) = people_directory::serve().await;
    for i in 0..20 {
        people.add(serde_json::json!({"id": format!("q{i}"), "name": "Ada", "email": "ada+calls@example.com",
            "phone": format!("+3361299{i:04}"), "notes": "", "created_at": null, "legal_hold": null}));
    }
    std::fs::write(path.join("token"), "dir-token\n").unwrap();
    let text = format!(
        "[store]\nurl = \"sqlite://{db}\"\n\n[keys]\ndir = \"{keys}\"\n\n\
         [systems.directory]\nconnector = {conn:?}\nallow_hosts = [\"http://{addr}\"]\nallow_loopback = true\n\
         config = {{ base_url = \"http://{addr}/api\" }}\nsecrets = {{ token = {{ file = \"token\" }} }}\n\n\
         [policy.systems.directory]\n",
        db = path.join("oubli.db").display(),
        keys = path.join("oubli-keys").display(),
        conn = built::EXAMPLE_REST,
    );
    let config = Config::parse(&path.join("oubli.toml"), &text).unwrap();
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
    let worker = Worker::new(engine.clone(), WorkerOptions::default());

    // A few planned requests (21 records each), one carried to its end.
    let started = Instant::now();
    let mut planned = Vec::new();
    for _ in 0..5 {
        let v = engine
            .file(new_request(
                RequestKind::Erasure,
                "ada+calls@example.com".into(),
            ))
            .await
            .unwrap();
        worker.drive(&v.id).await.unwrap();
        planned.push(v.id);
    }
    let shown = engine.show(&planned[0]).await.unwrap();
    println!(
        "a planned request: {}, {} record(s) in its plan",
        shown.request.state.as_str(),
        shown
            .systems
            .iter()
            .filter_map(|s| s.plan.as_ref())
            .map(|p| p.items.len())
            .sum::<usize>()
    );
    let done = engine
        .file(new_request(RequestKind::Erasure, "bob@example.com".into()))
        .await
        .unwrap()
        .id;
    worker.drive(&done).await.unwrap();
    engine.approve(&done, "bob").await.unwrap();
    worker.drive(&done).await.unwrap();
    for i in planned.len() as u64 + 1..total {
        let kind = RequestKind::ALL[(i % 7) as usize];
        let kind = if kind == RequestKind::Lift {
            RequestKind::Access
        } else {
            kind
        };
        engine
            .file(new_request(kind, format!("person{i}@example.com")))
            .await
            .unwrap();
    }
    println!(
        "store: {total} requests filed in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let state = AppState::new(engine.clone());
    let console =
        oubli_api::console::Console::new(state.clone(), &ConsoleSettings::default(), false)
            .unwrap();
    let router = oubli_api::with_console(oubli_api::router(state, 64 * 1024), console, 64 * 1024);
    let token = engine
        .create_token(Role::Approver, "bench", None, "root")
        .await
        .unwrap()
        .token
        .to_string();
    let signin = Request::builder()
        .method("POST")
        .uri("/signin")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(format!("token={token}")))
        .unwrap();
    let r = router.clone().oneshot(signin).await.unwrap();
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let (_, page) = call(&router, "GET", "/requests/new", &cookie, None).await;
    let page = String::from_utf8(page).unwrap();
    let at = page.find("name=\"_csrf\" value=\"").unwrap() + 20;
    let csrf = page[at..at + page[at..].find('"').unwrap()].to_string();
    // The queue's 100th page: the keyset cursor of the 99th's last row.
    let mut deep = "/requests".to_string();
    for _ in 0..99 {
        let (_, p) = call(&router, "GET", &deep, &cookie, None).await;
        let p = String::from_utf8(p).unwrap();
        let at = p.find("rel=\"next\" href=\"").unwrap() + 17;
        deep = p[at..at + p[at..].find('"').unwrap()].replace("&amp;", "&");
    }

    let pages: Vec<(&str, &str, String, Option<String>)> = vec![
        ("dashboard", "GET", "/".into(), None),
        ("queue, first page", "GET", "/requests".into(), None),
        ("queue, 100th page", "GET", deep, None),
        (
            "queue, filtered",
            "GET",
            "/requests?kind=erasure&due=30&attention=1".into(),
            None,
        ),
        (
            "request (21-record plan)",
            "GET",
            format!("/requests/{}", planned[0]),
            None,
        ),
        (
            "request, live part",
            "GET",
            format!("/requests/{}/live", planned[0]),
            None,
        ),
        (
            "certificate (verified)",
            "GET",
            format!("/requests/{done}/certificate"),
            None,
        ),
        ("systems", "GET", "/systems".into(), None),
        (
            "subject lookup",
            "POST",
            "/subjects".into(),
            Some(format!("_csrf={csrf}&emails=ada%2Bcalls%40example.com")),
        ),
        ("new request form", "GET", "/requests/new".into(), None),
    ];
    println!(
        "{:<26} {:>9} {:>9} {:>9} {:>9}",
        "page", "p50 ms", "p99 ms", "max ms", "KB"
    );
    for (name, method, path, form) in pages {
        let mut times = Vec::with_capacity(rounds);
        let mut size = 0;
        for _ in 0..rounds {
            let t = Instant::now();
            let (status, body) = call(&router, method, &path, &cookie, form.clone()).await;
            times.push(t.elapsed());
            assert_eq!(status, 200, "{name}: {}", String::from_utf8_lossy(&body));
            size = body.len();
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "{:<26} {:>9.2} {:>9.2} {:>9.2} {:>9.1}",
            name,
            ms(times[rounds / 2]),
            ms(times[(rounds * 99 / 100).min(rounds - 1)]),
            ms(times[rounds - 1]),
            size as f64 / 1024.0
        );
    }
}
