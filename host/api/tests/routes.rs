//! The API in process (`tower::ServiceExt::oneshot` on the router, no
//! socket): the role matrix, bad input, duplicate keys, the role checked
//! before the body, problems that never quote the input, and the lockout.
//! The socket tests in `tests/api.rs` keep TLS, signals, slow clients and the
//! whole path through `oubli serve`.

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use oubli_api::AppState;
use oubli_core::config::Config;
use oubli_core::rights::engine::{Engine, OpenOptions};
use oubli_core::rights::tokens::Role;
use oubli_crypto::keyring::Keyring;
use oubli_model::ManualClock;
use serde_json::{Value, json};
use std::sync::Arc;
use tower::ServiceExt;

const EMAIL: &str = "ada@example.com";

/// An engine on a fresh SQLite store with one configured system
/// (`directory`, whose connector is never loaded), and the API over it.
struct App {
    _dir: tempfile::TempDir,
    engine: Arc<Engine>,
    router: Router,
}

impl App {
    async fn new() -> App {
        App::on(None).await
    }

    /// An app whose engine reads time from `clock`.
    async fn on(clock: Option<Arc<ManualClock>>) -> App {
        App::on_with(clock, "").await
    }

    /// The same, with `extra` at the end of its config.
    async fn on_with(clock: Option<Arc<ManualClock>>, extra: &str) -> App {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path();
        Keyring::init(&path.join("oubli-keys"), None).unwrap();
        let text = format!(
            "[store]\nurl = \"sqlite://{db}\"\n\n[keys]\ndir = \"{keys}\"\n\n[systems.directory]\nconnector = \"directory.wasm\"\n{extra}",
            db = path.join("oubli.db").display(),
            keys = path.join("oubli-keys").display(),
        );
        let config = Config::parse(&path.join("oubli.toml"), &text).unwrap();
        let options = OpenOptions {
            clock: clock.map(|c| c as oubli_model::SharedClock),
            ..OpenOptions::default()
        };
        let engine = Arc::new(Engine::open(config, &options).await.unwrap());
        let router = oubli_api::router(AppState::new(engine.clone()), 64 * 1024);
        App {
            _dir: dir,
            engine,
            router,
        }
    }

    async fn token(&self, role: Role, name: &str) -> String {
        self.engine
            .create_token(role, name, None, "root")
            .await
            .unwrap()
            .token
            .to_string()
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
        content_type: &str,
    ) -> Reply {
        let mut req = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(path);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if body.is_some() {
            req = req.header("content-type", content_type);
        }
        let req = req.body(Body::from(body.unwrap_or_default())).unwrap();
        let response = self.router.clone().oneshot(req).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let raw = String::from_utf8_lossy(&bytes).into_owned();
        Reply {
            status,
            content_type: headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string(),
            challenge: headers
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            retry_after: headers.get("retry-after").is_some(),
            body: serde_json::from_str(&raw).unwrap_or(Value::Null),
            raw,
        }
    }

    async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.call("GET", path, token, None, "").await
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.call(
            "POST",
            path,
            token,
            Some(body.to_string().into_bytes()),
            "application/json",
        )
        .await
    }

    async fn post_raw(&self, path: &str, token: &str, body: &[u8], content_type: &str) -> Reply {
        self.call("POST", path, Some(token), Some(body.to_vec()), content_type)
            .await
    }
}

struct Reply {
    status: StatusCode,
    content_type: String,
    challenge: Option<String>,
    retry_after: bool,
    body: Value,
    raw: String,
}

#[track_caller]
fn assert_problem(r: &Reply, status: u16) {
    assert_eq!(r.status.as_u16(), status, "{}", r.raw);
    assert_eq!(r.content_type, "application/problem+json", "{}", r.raw);
    assert_eq!(r.body["status"], status, "{}", r.raw);
    assert!(r.body["type"].as_str().is_some(), "{}", r.raw);
}

#[tokio::test]
async fn each_role_may_do_what_it_may_and_nothing_more() {
    let app = App::new().await;
    let tokens = [
        ("auditor", app.token(Role::Auditor, "carol").await),
        ("operator", app.token(Role::Operator, "alice").await),
        ("approver", app.token(Role::Approver, "bob").await),
        ("admin", app.token(Role::Admin, "root").await),
    ];
    let filed = app
        .post(
            "/v1/requests",
            Some(&tokens[1].1),
            json!({"kind": "restriction", "subject": {"emails": [EMAIL]}, "scope": ["direct-marketing"]}),
        )
        .await;
    assert_eq!(filed.status, StatusCode::CREATED, "{}", filed.raw);
    let id = filed.body["id"].as_str().unwrap().to_string();

    // (method, path, body, weakest role allowed: 0 auditor .. 3 admin)
    let routes: Vec<(&str, String, Option<Value>, usize)> = vec![
        ("GET", "/v1/requests".into(), None, 0),
        ("GET", format!("/v1/requests/{id}"), None, 0),
        ("GET", "/v1/systems".into(), None, 0),
        ("GET", "/v1/audit/verify".into(), None, 0),
        ("GET", "/v1/audit/events".into(), None, 0),
        ("GET", "/v1/audit/heads".into(), None, 0),
        ("GET", "/metrics".into(), None, 0),
        (
            "POST",
            "/v1/requests".into(),
            Some(json!({"kind": "access", "subject": {"emails": ["x@example.com"]}})),
            1,
        ),
        (
            "POST",
            "/v1/subjects/requests".into(),
            Some(json!({"subject": {"emails": [EMAIL]}})),
            1,
        ),
        (
            "POST",
            "/v1/restrictions/check".into(),
            Some(json!({"subject": {"emails": [EMAIL]}, "scope": "direct-marketing"})),
            1,
        ),
        (
            "POST",
            "/v1/consent/lookup".into(),
            Some(json!({"subject": {"emails": [EMAIL]}})),
            1,
        ),
        (
            "POST",
            "/v1/systems/directory/pause".into(),
            Some(json!({"reason": "maintenance"})),
            1,
        ),
        ("POST", "/v1/systems/directory/resume".into(), None, 1),
        (
            "POST",
            format!("/v1/requests/{id}/reject"),
            Some(json!({"reason": "no"})),
            2,
        ),
        ("POST", format!("/v1/requests/{id}/approve"), None, 2),
    ];
    for (method, path, body, weakest) in &routes {
        for (rank, (role, token)) in tokens.iter().enumerate() {
            let body = (*method == "POST")
                .then(|| body.clone().unwrap_or(json!({})).to_string().into_bytes());
            let r = app
                .call(method, path, Some(token), body, "application/json")
                .await;
            if rank < *weakest {
                assert_problem(&r, 403);
            } else {
                let s = r.status.as_u16();
                assert!(
                    s != 403 && s != 401 && s < 500,
                    "{role} {method} {path}: {s} {}",
                    r.raw
                );
            }
        }
        // No token: 401, with the challenge.
        let r = app.call(method, path, None, None, "").await;
        assert_problem(&r, 401);
        assert!(r.challenge.as_deref().unwrap().starts_with("Bearer"));
    }
    // Metrics, in OpenMetrics text: gauges read from the store now.
    let metrics = app.get("/metrics", Some(&tokens[0].1)).await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(
        metrics
            .content_type
            .starts_with("application/openmetrics-text")
    );
    for line in [
        "# TYPE oubli_requests gauge",
        "oubli_requests{state=\"verified\"} ",
        "oubli_requests_overdue 0",
        "# TYPE oubli_http_request_duration_seconds histogram",
        "# EOF",
    ] {
        assert!(metrics.raw.contains(line), "no {line} in\n{}", metrics.raw);
    }
    // An auditor sees no plans, results or notes.
    let seen = app
        .get(&format!("/v1/requests/{id}"), Some(&tokens[0].1))
        .await;
    for s in seen.body["systems"].as_array().unwrap() {
        assert!(s.get("plan").is_none() && s.get("result").is_none(), "{s}");
    }
}

#[tokio::test]
async fn bad_input_gets_a_problem_never_a_500() {
    let app = App::new().await;
    let op = app.token(Role::Operator, "alice").await;
    let op = op.as_str();
    assert_problem(
        &app.post_raw("/v1/requests", op, b"{not json", "application/json")
            .await,
        400,
    );
    assert_problem(
        &app.post_raw("/v1/requests", op, b"{\"kind\": \"erasure\"}", "text/plain")
            .await,
        415,
    );
    for body in [
        &br#"{"kind": "erasure", "subject": {"emails": ["ada+calls@example.com"]}, "extra": 1}"#[..],
        br#"{"kind": "forget", "subject": {}}"#,
        br#"{"kind": "erasure", "subject": {"emails": [12]}}"#,
        br#"{"kind": "erasure", "subject": {"emails": ["not an email"]}}"#,
        br#"{"kind": "erasure", "subject": {"names": ["Ada Lovelace"]}}"#,
        br#"{"kind": "objection", "subject": {"emails": ["ada@example.com"]}}"#,
        br#"{"kind": "rectification", "subject": {"emails": ["ada@example.com"]}}"#,
        // An object given as an array of its fields, whole or in a list.
        br#"{"kind": "access", "subject": [["ada@example.com"]]}"#,
        br#"{"kind": "rectification", "subject": {"emails": ["ada@example.com"]}, "changes": [[null, "firstname", "Ada"]]}"#,
    ] {
        let r = app
            .post_raw("/v1/requests", op, body, "application/json")
            .await;
        assert_problem(&r, 422);
    }
    let big = format!(
        "{{\"kind\": \"erasure\", \"subject\": {{\"names\": [\"{}\"]}}}}",
        "a".repeat(100_000)
    );
    assert_problem(
        &app.post_raw("/v1/requests", op, big.as_bytes(), "application/json")
            .await,
        413,
    );
    // A text over 1,000 characters (not bytes: the OpenAPI document counts
    // characters too).
    let filed = app
        .post(
            "/v1/requests",
            Some(op),
            json!({"kind": "access", "subject": {"emails": [EMAIL]}}),
        )
        .await;
    let id = filed.body["id"].as_str().unwrap();
    let long = app
        .post(
            &format!("/v1/requests/{id}/cancel"),
            Some(op),
            json!({"reason": "é".repeat(1001)}),
        )
        .await;
    assert_problem(&long, 422);
    let fits = app
        .post(
            &format!("/v1/requests/{id}/cancel"),
            Some(op),
            json!({"reason": "é".repeat(1000)}),
        )
        .await;
    assert_eq!(fits.status, StatusCode::OK, "{}", fits.raw);
    // Cancelled already: a conflict with its state.
    assert_problem(
        &app.post(
            &format!("/v1/requests/{id}/cancel"),
            Some(op),
            json!({"reason": "again"}),
        )
        .await,
        409,
    );
    // A consent's names are short: a source system of 101 characters is
    // refused (it was stored whatever its length).
    let consent = |source: String| {
        json!({"subject": {"emails": [EMAIL]}, "purpose": "calls", "given": true,
               "channel": "call", "evidence": {}, "source_system": source})
    };
    assert_problem(
        &app.post("/v1/consent", Some(op), consent("s".repeat(101)))
            .await,
        422,
    );
    let ok = app
        .post("/v1/consent", Some(op), consent("é".repeat(100)))
        .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.raw);
    let mut arrayed = consent("crm".into());
    arrayed["evidence"] = json!([null, null]);
    assert_problem(&app.post("/v1/consent", Some(op), arrayed).await, 422);
    // A cursor is what the document says it is, a request's id: 128
    // characters of the id's alphabet pass, anything else is refused,
    // whatever its length in bytes (the fuzzer once found a 44-character
    // cursor the document allowed refused for its 176 bytes).
    for (cursor, status) in [
        ("r-abc".to_string(), 200),
        ("a".repeat(128), 200),
        ("a".repeat(129), 400),
        ("%F0%9D%90%93%F0%9D%90%A1".to_string(), 400),
        ("r%20abc".to_string(), 400),
    ] {
        let r = app
            .get(&format!("/v1/requests?cursor={cursor}"), Some(op))
            .await;
        assert_eq!(r.status.as_u16(), status, "{cursor}: {}", r.raw);
    }
    assert_problem(&app.get("/v1/requests?limit=0", Some(op)).await, 400);
    assert_problem(&app.get("/v1/requests?state=lost", Some(op)).await, 400);
    assert_problem(&app.get("/v1/requests/r-nope", Some(op)).await, 404);
    assert_problem(&app.get("/v2/nothing", Some(op)).await, 404);
    assert_problem(
        &app.call("DELETE", "/v1/requests", Some(op), None, "").await,
        405,
    );
}

#[tokio::test]
async fn a_body_giving_a_key_twice_is_refused_and_files_nothing() {
    let app = App::new().await;
    let op = app.token(Role::Operator, "alice").await;
    for body in [
        format!(r#"{{"kind": "access", "kind": "erasure", "subject": {{"emails": ["{EMAIL}"]}}}}"#),
        format!(
            r#"{{"kind": "access", "subject": {{"emails": ["{EMAIL}"], "emails": ["x@example.com"]}}}}"#
        ),
    ] {
        let r = app
            .post_raw("/v1/requests", &op, body.as_bytes(), "application/json")
            .await;
        assert_problem(&r, 422);
        assert!(
            r.body["detail"]
                .as_str()
                .unwrap()
                .contains("same key twice"),
            "{}",
            r.raw
        );
        assert!(
            !r.raw.contains("kind\"") && !r.raw.contains("emails"),
            "{}",
            r.raw
        );
    }
    let listed = app.get("/v1/requests", Some(&op)).await;
    assert!(
        listed.body["items"].as_array().unwrap().is_empty(),
        "{}",
        listed.raw
    );
}

#[tokio::test]
async fn the_role_is_checked_before_the_body() {
    let app = App::new().await;
    let auditor = app.token(Role::Auditor, "carol").await;
    let op = app.token(Role::Operator, "alice").await;
    let bad = json!({"kind": "access", "subject": {"emails": [EMAIL]}, "bogus": true});
    assert_problem(
        &app.post("/v1/requests", Some(&auditor), bad.clone()).await,
        403,
    );
    assert_problem(&app.post("/v1/requests", Some(&op), bad).await, 422);
    assert_problem(
        &app.post_raw(
            "/v1/requests/r-x/cancel",
            &auditor,
            b"{not json",
            "application/json",
        )
        .await,
        403,
    );
}

#[tokio::test]
async fn problems_never_quote_what_the_client_sent() {
    let app = App::new().await;
    let op = app.token(Role::Operator, "alice").await;
    for (path, status) in [
        ("/v1/requests/r-marie-dupont-1980", 404),
        ("/v1/requests?marie_dupont=1", 400),
        ("/v1/requests/r-abc/bundle?recipient=marie-dupont", 404),
        ("/v1/systems/marie-dupont/manifest", 404),
    ] {
        let r = app.get(path, Some(&op)).await;
        assert_problem(&r, status);
        assert!(!r.raw.to_lowercase().contains("marie"), "{path}: {}", r.raw);
    }
    // A system name the configuration lacks, in a path or a body: 404,
    // named by kind only.
    let filed = app
        .post(
            "/v1/requests",
            Some(&op),
            json!({"kind": "access", "subject": {"emails": [EMAIL]}}),
        )
        .await;
    let id = filed.body["id"].as_str().unwrap();
    let posted = [
        app.post(
            &format!("/v1/requests/{id}/systems/marie-dupont/retry"),
            Some(&op),
            json!({}),
        )
        .await,
        app.post(
            "/v1/requests",
            Some(&op),
            json!({"kind": "rectification", "subject": {"emails": [EMAIL]},
                   "changes": [{"system": "marie-dupont", "field": "name", "value": "x"}]}),
        )
        .await,
    ];
    for r in posted {
        assert_problem(&r, 404);
        assert_eq!(r.body["detail"], "no such system", "{}", r.raw);
        assert!(!r.raw.to_lowercase().contains("marie"), "{}", r.raw);
    }
}

#[tokio::test]
async fn ten_failed_logins_lock_the_address_out_but_never_a_valid_token() {
    let clock = ManualClock::starting_now();
    let app = App::on(Some(clock.clone())).await;
    let op = app.token(Role::Operator, "alice").await;
    let bad = "oubli_aaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    for _ in 0..10 {
        assert_problem(&app.get("/v1/requests", Some(bad)).await, 401);
    }
    let locked = app.get("/v1/requests", Some(bad)).await;
    assert_problem(&locked, 429);
    assert!(locked.retry_after);
    // No token guesses nothing: told to send one, even from here.
    let none = app.get("/v1/requests", None).await;
    assert_problem(&none, 401);
    assert!(none.challenge.is_some());
    let valid = app.get("/v1/requests", Some(&op)).await;
    assert_eq!(valid.status, StatusCode::OK, "{}", valid.raw);
    // A minute later (of the engine's clock), the address may try again.
    clock.advance(59_000);
    assert_problem(&app.get("/v1/requests", Some(bad)).await, 429);
    clock.advance(1_000);
    assert_problem(&app.get("/v1/requests", Some(bad)).await, 401);
}

/// The OpenAPI document registers each route once, from the same table the
/// router serves: every documented operation is routed (not 404/405), and
/// its schemas say what a valid identifier looks like.
#[tokio::test]
async fn every_documented_operation_is_served() {
    let app = App::new().await;
    let doc: Value = serde_json::from_str(&oubli_api::openapi_json()).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 25, "{}", paths.len());
    for (path, ops) in paths {
        let concrete = path
            .replace("{id}", "r-nope")
            .replace("{system}", "directory");
        for method in ops.as_object().unwrap().keys() {
            let r = app
                .call(
                    &method.to_uppercase(),
                    &concrete,
                    None,
                    (method == "post").then(|| b"{}".to_vec()),
                    "application/json",
                )
                .await;
            assert!(
                !matches!(r.status.as_u16(), 404 | 405),
                "{method} {path} is documented but not routed: {}",
                r.raw
            );
        }
    }
    let schemas = &doc["components"]["schemas"];
    // Every reference resolves.
    let text = doc.to_string();
    for part in text.split("#/components/schemas/").skip(1) {
        let name: String = part
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        assert!(schemas.get(&name).is_some(), "dangling reference to {name}");
    }
    assert_eq!(schemas["EmailAddress"]["format"], "email");
    assert_eq!(schemas["RequestId"]["pattern"], "^[A-Za-z0-9._-]{1,128}$");
    assert_eq!(schemas["Text"]["maxLength"], 1000);
}

// ------------------------------------------------------------ the console

/// The console beside the API over an engine on `clock`, its cookies
/// `Secure` when `tls`.
struct ConsoleApp {
    app: App,
    router: Router,
}

impl ConsoleApp {
    async fn on(clock: Arc<ManualClock>, tls: bool) -> ConsoleApp {
        let app = App::on(Some(clock)).await;
        let state = AppState::new(app.engine.clone());
        let settings = oubli_core::config::ConsoleSettings::default();
        let console = oubli_api::console::Console::new(state.clone(), &settings, tls).unwrap();
        let router =
            oubli_api::with_console(oubli_api::router(state, 64 * 1024), console, 64 * 1024);
        ConsoleApp { app, router }
    }

    /// `method path` with a cookie and a form body: status, headers, body.
    async fn call(
        &self,
        method: &str,
        path: &str,
        cookie: Option<&str>,
        form: Option<&str>,
    ) -> (StatusCode, axum::http::HeaderMap, String) {
        let mut req = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(path);
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        if form.is_some() {
            req = req.header("content-type", "application/x-www-form-urlencoded");
        }
        let req = req
            .body(Body::from(form.unwrap_or_default().to_string()))
            .unwrap();
        let response = self.router.clone().oneshot(req).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            headers,
            String::from_utf8_lossy(&bytes).into_owned(),
        )
    }

    /// Sign in with `token`: the `Set-Cookie` header and the cookie.
    async fn sign_in(&self, token: &str) -> (String, String) {
        let (status, h, body) = self
            .call("POST", "/signin", None, Some(&format!("token={token}")))
            .await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
        let set = h.get("set-cookie").unwrap().to_str().unwrap().to_string();
        let cookie = set.split(';').next().unwrap().to_string();
        (set, cookie)
    }

    async fn page(&self, path: &str, cookie: &str) -> (StatusCode, String) {
        let (status, h, body) = self.call("GET", path, Some(cookie), None).await;
        if status == StatusCode::SEE_OTHER {
            return (status, h.get("location").unwrap().to_str().unwrap().into());
        }
        (status, body)
    }
}

fn csrf_in(page: &str) -> String {
    let marker = "name=\"_csrf\" value=\"";
    let at = page.find(marker).expect("a CSRF field") + marker.len();
    page[at..at + page[at..].find('"').unwrap()].to_string()
}

#[tokio::test]
async fn console_sessions_end_when_idle_or_old_on_the_engines_clock() {
    let clock = ManualClock::starting_now();
    let c = ConsoleApp::on(clock.clone(), false).await;
    let op = c.app.token(Role::Operator, "alice").await;
    let (_, cookie) = c.sign_in(&op).await;
    assert_eq!(c.page("/requests", &cookie).await.0, StatusCode::OK);
    // Idle for 29 minutes: still signed in; then 30 minutes without a
    // page: signed out.
    clock.advance(29 * 60_000);
    assert_eq!(c.page("/requests", &cookie).await.0, StatusCode::OK);
    clock.advance(30 * 60_000);
    assert_eq!(
        c.page("/requests", &cookie).await,
        (StatusCode::SEE_OTHER, "/signin".to_string())
    );
    // Used every 20 minutes, a session still ends 12 hours after sign-in.
    let (_, cookie) = c.sign_in(&op).await;
    for _ in 0..35 {
        clock.advance(20 * 60_000);
        assert_eq!(c.page("/", &cookie).await.0, StatusCode::OK);
    }
    clock.advance(20 * 60_000);
    assert_eq!(c.page("/", &cookie).await.0, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn console_cookies_are_host_only_and_secure_under_tls_and_pages_speak_french() {
    let clock = ManualClock::starting_now();
    let c = ConsoleApp::on(clock.clone(), true).await;
    let op = c.app.token(Role::Operator, "alice").await;
    let (set, cookie) = c.sign_in(&op).await;
    assert!(set.starts_with("__Host-oubli="), "{set}");
    for flag in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(flag), "{set}");
    }
    assert!(!set.contains("Domain"), "{set}");
    let (_, page) = c.page("/", &cookie).await;
    assert!(page.contains("lang=\"en\"") && page.contains("Dashboard"));
    let csrf = csrf_in(&page);
    let (status, h, _) = c
        .call(
            "POST",
            "/lang",
            Some(&cookie),
            Some(&format!("_csrf={csrf}&lang=fr&back=%2Frequests%2Fnew")),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        h.get("location").unwrap(),
        "/requests/new",
        "back to the page"
    );
    // The switch on a page carries that page's path.
    assert!(page.contains("name=\"back\" value=\"/\""), "{page}");
    let (_, page) = c.page("/", &cookie).await;
    assert!(
        page.contains("lang=\"fr\"") && page.contains("Tableau de bord"),
        "{page}"
    );
    let (_, page) = c.page("/requests/new", &cookie).await;
    assert!(page.contains("Déposer la demande"), "{page}");
}

#[tokio::test]
async fn the_queue_pages_by_deadline_and_filters_by_kind_state_and_attention() {
    use oubli_core::identifiers::Identifiers;
    use oubli_core::rights::engine::{NewRequest, Params};
    use oubli_model::RequestKind;
    let clock = ManualClock::starting_now();
    let c = ConsoleApp::on(clock.clone(), false).await;
    let op = c.app.token(Role::Operator, "alice").await;
    let mut filed = Vec::new();
    for i in 0..60 {
        clock.advance(60_000);
        let kind = if i % 3 == 0 {
            RequestKind::Access
        } else {
            RequestKind::Erasure
        };
        let v = c
            .app
            .engine
            .file(NewRequest {
                id: None,
                kind,
                identifiers: Identifiers {
                    emails: vec![format!("person{i}@example.com")],
                    ..Identifiers::default()
                },
                region: None,
                actor: "alice".into(),
                params: Params::default(),
                attestation: None,
                intake: None,
            })
            .await
            .unwrap();
        filed.push((v.id, kind));
    }
    let (_, cookie) = c.sign_in(&op).await;
    let rows = |page: &str| -> Vec<String> {
        page.match_indices("<td><a href=\"/requests/")
            .map(|(at, m)| {
                let rest = &page[at + m.len()..];
                rest[..rest.find('"').unwrap()].to_string()
            })
            .collect()
    };
    let next = |page: &str| -> Option<String> {
        let at = page.find("rel=\"next\" href=\"")? + "rel=\"next\" href=\"".len();
        Some(page[at..at + page[at..].find('"').unwrap()].replace("&amp;", "&"))
    };
    // Earliest deadline first, 50 to a page, every request once.
    let (status, first) = c.page("/requests", &cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        first.len() < 100_000,
        "a queue page is {} bytes",
        first.len()
    );
    let mut seen = rows(&first);
    assert_eq!(seen.len(), 50);
    let (_, second) = c.page(&next(&first).expect("a next page"), &cookie).await;
    assert!(next(&second).is_none());
    seen.extend(rows(&second));
    let ids: Vec<String> = filed.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(seen, ids, "by deadline, which is by filing here");
    // By kind, and the cursor keeps the filter.
    let (_, access) = c.page("/requests?kind=access", &cookie).await;
    let want: Vec<String> = filed
        .iter()
        .filter(|(_, k)| *k == RequestKind::Access)
        .map(|(id, _)| id.clone())
        .collect();
    assert_eq!(rows(&access), want);
    // Nothing is overdue until the deadline passes; then all are, and say so.
    let (_, none) = c.page("/requests?due=overdue", &cookie).await;
    assert!(rows(&none).is_empty());
    clock.advance(32 * 86_400_000);
    let (_, cookie) = c.sign_in(&op).await;
    let (_, late) = c.page("/requests?due=overdue&kind=access", &cookie).await;
    assert_eq!(rows(&late), want);
    assert!(
        late.contains("overdue by"),
        "days past the deadline are shown"
    );
    // A filter that is not one is refused, and not quoted back.
    let (status, body) = c.page("/requests?state=%3Cscript%3E", &cookie).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(!body.contains("<script>"));
}

#[tokio::test]
async fn operators_add_notes_that_auditors_see_withheld() {
    let app = App::new().await;
    let op = app.token(Role::Operator, "alice").await;
    let auditor = app.token(Role::Auditor, "carol").await;
    let filed = app
        .post(
            "/v1/requests",
            Some(&op),
            json!({"kind": "access", "subject": {"emails": [EMAIL]}}),
        )
        .await;
    assert_eq!(filed.status, StatusCode::CREATED, "{}", filed.raw);
    let id = filed.body["id"].as_str().unwrap().to_string();
    let path = format!("/v1/requests/{id}/note");
    let noted = app
        .post(
            &path,
            Some(&op),
            json!({"note": "asked by phone from a withheld number"}),
        )
        .await;
    assert_eq!(noted.status, StatusCode::OK, "{}", noted.raw);
    let event = noted.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "noted")
        .expect("a noted event")
        .clone();
    assert_eq!(event["actor"], "alice");
    assert_eq!(event["reason"], "asked by phone from a withheld number");
    // Auditors may not note, and see notes withheld.
    let refused = app.post(&path, Some(&auditor), json!({"note": "x"})).await;
    assert_problem(&refused, 403);
    let seen = app.get(&format!("/v1/requests/{id}"), Some(&auditor)).await;
    assert!(!seen.raw.contains("withheld number"), "{}", seen.raw);
    // A blank note, and a note on no request, are refused.
    assert_problem(
        &app.post(&path, Some(&op), json!({"note": "  "})).await,
        422,
    );
    assert_problem(
        &app.post("/v1/requests/r-nope/note", Some(&op), json!({"note": "x"}))
            .await,
        404,
    );
}

// ------------------------------------------------------------ privacy center

/// Mails the privacy center would send, kept instead (the end-to-end test
/// in `tests/it/privacy.rs` sends them through a real SMTP server).
#[derive(Default)]
struct Outbox(std::sync::Mutex<Vec<oubli_core::rights::privacy::Mail>>);

impl oubli_core::mail::Mailer for Outbox {
    fn send(&self, mail: &oubli_core::rights::privacy::Mail) -> Result<(), String> {
        self.0.lock().unwrap().push(mail.clone());
        Ok(())
    }
}

struct PrivacyApp {
    app: App,
    router: Router,
    outbox: Arc<Outbox>,
    clock: Arc<ManualClock>,
}

impl PrivacyApp {
    async fn new(extra: &str) -> PrivacyApp {
        PrivacyApp::with(extra).await
    }

    /// With the text-message gateway `extra` configures, if any.
    async fn with(extra: &str) -> PrivacyApp {
        PrivacyApp::with_top(extra, "").await
    }

    /// With `top` at the end of the engine's config (a register).
    async fn with_top(extra: &str, top: &str) -> PrivacyApp {
        let clock = ManualClock::starting_now();
        let app = App::on_with(Some(clock.clone()), top).await;
        let settings = Config::parse(
            std::path::Path::new("/etc/oubli/oubli.toml"),
            &format!(
                "[systems.directory]\nconnector = \"directory.wasm\"\n\n[api.privacy]\npublic_url = \"https://privacy.example.com/\"\n{extra}\n[api.privacy.smtp]\nhost = \"localhost\"\ntls = \"none\"\nfrom = \"Privacy <privacy@example.com>\"\n"
            ),
        )
        .unwrap()
        .api
        .privacy
        .unwrap();
        let outbox = Arc::new(Outbox::default());
        let mut p = oubli_api::privacy::Privacy::new(
            AppState::new(app.engine.clone()),
            oubli_core::rights::privacy::PrivacyRules::from(&settings),
            outbox.clone(),
        );
        if let Some(sms) = &settings.sms {
            p = p.with_texter(Arc::new(oubli_core::mail::SmsWebhook::new(sms).unwrap()));
        }
        if let Some(c) = &settings.captcha {
            p = p.with_captcha(oubli_api::privacy::Captcha::new(c).unwrap());
        }
        let router = oubli_api::privacy::router(p);
        PrivacyApp {
            app,
            router,
            outbox,
            clock,
        }
    }

    /// `method path` with a form body from `client`: status, `Location`,
    /// body.
    async fn call(&self, method: &str, path: &str, form: Option<&str>) -> (u16, String, String) {
        let mut req = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(path)
            .extension(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                [203, 0, 113, 7],
                4000,
            ))));
        if form.is_some() {
            req = req.header("content-type", "application/x-www-form-urlencoded");
        }
        let req = req
            .body(Body::from(form.unwrap_or_default().to_string()))
            .unwrap();
        let response = self.router.clone().oneshot(req).await.unwrap();
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            location,
            String::from_utf8_lossy(&bytes).into_owned(),
        )
    }

    /// Mails sent so far (they go out on a blocking task: wait for them).
    async fn mails(&self, n: usize) -> Vec<oubli_core::rights::privacy::Mail> {
        for _ in 0..500 {
            if self.outbox.0.lock().unwrap().len() >= n {
                break;
            }
            tokio::task::yield_now().await;
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        self.outbox.0.lock().unwrap().clone()
    }

    /// Ask for `kind` for `email`: the verify page's path.
    async fn ask(&self, kind: &str, form: &str) -> String {
        let (status, location, body) = self
            .call("POST", &format!("/privacy/ask/{kind}"), Some(form))
            .await;
        assert_eq!(status, 303, "{body}");
        assert!(location.starts_with("/privacy/verify/"), "{location}");
        location
    }
}

fn code_in(mail: &oubli_core::rights::privacy::Mail) -> String {
    let at = mail.body.find("Your code is ").expect("a code") + "Your code is ".len();
    mail.body[at..at + 6].to_string()
}

fn token_in(mail: &oubli_core::rights::privacy::Mail) -> String {
    let at = mail.body.find("/privacy/status/").expect("a status link") + "/privacy/status/".len();
    mail.body[at..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// Run `statements` on the app's store (SQLite): here, triggers that make
/// one step of filing fail, as a crash at that point would.
async fn on_store(p: &PrivacyApp, statements: &[&str]) {
    for q in statements {
        sqlx::query(q)
            .execute(p.app.engine.store().pool())
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_crash_at_any_step_of_filing_loses_nothing_and_the_same_code_finishes_it() {
    // Each step that can fail once the code is right: writing the request,
    // then marking the code used with the status link.
    let steps = [
        "CREATE TRIGGER crash BEFORE INSERT ON requests BEGIN SELECT RAISE(ABORT, 'crash'); END",
        "CREATE TRIGGER crash BEFORE INSERT ON privacy_links BEGIN SELECT RAISE(ABORT, 'crash'); END",
    ];
    for step in steps {
        let p = PrivacyApp::new("").await;
        let verify = p.ask("erasure", "lang=en&email=ada%40example.com").await;
        let code = code_in(&p.mails(1).await[0]);
        on_store(&p, &[step]).await;
        let (status, _, page) = p.call("POST", &verify, Some(&format!("code={code}"))).await;
        // The page says nothing was lost: that must be true.
        assert_eq!(status, 503, "{step}: {page}");
        assert!(page.contains("Nothing was lost"), "{page}");
        assert!(!page.contains("ada@"), "{page}");
        on_store(&p, &["DROP TRIGGER crash"]).await;
        // The same code, given again, files (or finds) the request, once.
        let (status, location, page) = p.call("POST", &verify, Some(&format!("code={code}"))).await;
        assert_eq!(status, 303, "{step}: {page}");
        assert!(location.starts_with("/privacy/status/"), "{location}");
        let filed = p.app.engine.list(&Default::default()).await.unwrap();
        assert_eq!(filed.len(), 1, "{step}");
        assert_eq!(filed[0].state, oubli_model::RequestState::Verified);
        let mails = p.mails(2).await;
        assert_eq!(mails.len(), 2, "{step}: one mail with the status link");
        assert_eq!(format!("/privacy/status/{}", token_in(&mails[1])), location);
        let (status, _, page) = p.call("GET", &location, None).await;
        assert!(status == 200 && page.contains(&filed[0].id), "{page}");
        // And then the code is spent.
        let (status, _, _) = p.call("POST", &verify, Some(&format!("code={code}"))).await;
        assert_eq!(status, 410, "{step}");
        assert_eq!(
            p.app.engine.list(&Default::default()).await.unwrap().len(),
            1
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_code_given_four_times_at_once_files_one_request_with_one_link() {
    let p = PrivacyApp::new("").await;
    let verify = p.ask("access", "lang=en&email=ada%40example.com").await;
    let body = format!("code={}", code_in(&p.mails(1).await[0]));
    let (a, b, c, d) = tokio::join!(
        p.call("POST", &verify, Some(&body)),
        p.call("POST", &verify, Some(&body)),
        p.call("POST", &verify, Some(&body)),
        p.call("POST", &verify, Some(&body)),
    );
    let mut statuses: Vec<u16> = [a, b, c, d].iter().map(|r| r.0).collect();
    statuses.sort();
    assert_eq!(statuses, [303, 410, 410, 410]);
    assert_eq!(
        p.app.engine.list(&Default::default()).await.unwrap().len(),
        1
    );
    let mails = p.mails(3).await;
    assert_eq!(mails.len(), 2, "the code, and one status link");
}

#[tokio::test]
async fn a_subject_files_by_proving_their_address_and_follows_the_request_by_its_link() {
    let p = PrivacyApp::new("").await;
    let verify = p.ask("access", "lang=en&email=Ada%40Example.com").await;
    // Nothing of the address in the URL or on the page.
    // (Only the address's own forms: a random token may hold any three letters.)
    let url = verify.to_lowercase();
    assert!(
        !url.contains("ada%40") && !url.contains("ada@") && !url.contains("example.com"),
        "{url}"
    );
    let (status, _, page) = p.call("GET", &verify, None).await;
    assert_eq!(status, 200);
    assert!(!page.to_lowercase().contains("ada@"), "{page}");
    let mails = p.mails(1).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, "Ada@example.com");
    let code = code_in(&mails[0]);
    // Nothing is filed before the code is given.
    assert!(
        p.app
            .engine
            .list(&Default::default())
            .await
            .unwrap()
            .is_empty()
    );
    let (status, location, _) = p.call("POST", &verify, Some(&format!("code={code}"))).await;
    assert_eq!(status, 303);
    assert!(location.starts_with("/privacy/status/"), "{location}");
    let filed = p.app.engine.list(&Default::default()).await.unwrap();
    assert_eq!(filed.len(), 1);
    assert_eq!(filed[0].requested_by, "privacy-center");
    assert_eq!(filed[0].channel, Some(oubli_model::Channel::Web));
    // The code was the proof: attested, not waiting for an operator.
    assert_eq!(filed[0].state, oubli_model::RequestState::Verified);
    // The mail gives the same link.
    let mails = p.mails(2).await;
    assert_eq!(format!("/privacy/status/{}", token_in(&mails[1])), location);
    let (status, _, page) = p.call("GET", &location, None).await;
    assert_eq!(status, 200);
    assert!(page.contains(&filed[0].id), "{page}");
    assert!(page.contains("looking for your data"), "{page}");
    // The code works once.
    let (status, _, _) = p.call("POST", &verify, Some(&format!("code={code}"))).await;
    assert_eq!(status, 410);
    assert_eq!(
        p.app.engine.list(&Default::default()).await.unwrap().len(),
        1
    );
    // No answer to download yet.
    let (status, _, _) = p
        .call("POST", &format!("{location}/answer"), Some(""))
        .await;
    assert_eq!(status, 409);
    // The link lasts until 30 days after the request ends.
    p.app
        .engine
        .cancel(&filed[0].id, "alice", "asked to stop")
        .await
        .unwrap();
    p.clock.advance(29 * 86_400_000);
    assert_eq!(p.call("GET", &location, None).await.0, 200);
    p.clock.advance(2 * 86_400_000);
    assert_eq!(p.call("GET", &location, None).await.0, 410);
    // An unknown link is the same as an expired one.
    assert_eq!(p.call("GET", "/privacy/status/nope", None).await.0, 410);
}

#[tokio::test]
async fn wrong_codes_lock_the_request_out_and_codes_expire_on_the_engines_clock() {
    let p = PrivacyApp::new("").await;
    let verify = p.ask("erasure", "lang=en&email=ada%40example.com").await;
    let code = code_in(&p.mails(1).await[0]);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for left in (1..=4).rev() {
        let (status, _, page) = p
            .call("POST", &verify, Some(&format!("code={wrong}")))
            .await;
        assert_eq!(status, 422);
        assert!(page.contains(&format!("Tries left: {left}")), "{page}");
    }
    let (status, _, _) = p
        .call("POST", &verify, Some(&format!("code={wrong}")))
        .await;
    assert_eq!(status, 429);
    // Locked: even the right code, and a new code, are refused.
    let (status, _, _) = p.call("POST", &verify, Some(&format!("code={code}"))).await;
    assert_eq!(status, 429);
    assert_eq!(
        p.call("POST", &format!("{verify}/again"), Some("")).await.0,
        429
    );
    assert!(
        p.app
            .engine
            .list(&Default::default())
            .await
            .unwrap()
            .is_empty()
    );

    // A code works for 10 minutes.
    let verify = p.ask("erasure", "lang=en&email=ada%40example.com").await;
    let code = code_in(&p.mails(2).await[1]);
    p.clock.advance(10 * 60_000 + 1);
    let (status, _, _) = p.call("POST", &verify, Some(&format!("code={code}"))).await;
    assert_eq!(status, 410);
    // A new code, sent again, works (the old one does not).
    assert_eq!(
        p.call("POST", &format!("{verify}/again"), Some("")).await.0,
        303
    );
    let again = code_in(&p.mails(3).await[2]);
    if again != code {
        let (status, _, _) = p.call("POST", &verify, Some(&format!("code={code}"))).await;
        assert_eq!(status, 422);
    }
    let (status, location, _) = p
        .call("POST", &verify, Some(&format!("code={again}")))
        .await;
    assert_eq!(status, 303);
    assert!(location.starts_with("/privacy/status/"));
}

#[tokio::test]
async fn every_address_gets_the_same_page_and_limits_hold_per_address_and_client() {
    let p = PrivacyApp::new("codes_per_address = 2\nstarts_per_client = 6\n").await;
    let strip = |page: String, verify: &str| page.replace(verify, "HANDLE");
    let mut pages = Vec::new();
    for email in ["known%40example.com", "nobody%40example.org"] {
        let verify = p.ask("access", &format!("lang=en&email={email}")).await;
        pages.push(strip(p.call("GET", &verify, None).await.2, &verify));
    }
    assert_eq!(pages[0], pages[1]);
    // Past the address's limit no code goes out, and the page is the same.
    let a = p.ask("access", "lang=en&email=known%40example.com").await;
    let b = p.ask("access", "lang=en&email=known%40example.com").await;
    assert_eq!(p.mails(3).await.len(), 3);
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert_eq!(
        p.outbox.0.lock().unwrap().len(),
        3,
        "the address's third code is not sent"
    );
    assert_eq!(strip(p.call("GET", &b, None).await.2, &b), pages[0]);
    let _ = a;
    // The client's limit: the seventh start this hour is refused.
    p.ask("access", "lang=en&email=c%40example.com").await;
    p.ask("access", "lang=en&email=d%40example.com").await;
    let (status, _, page) = p
        .call(
            "POST",
            "/privacy/ask/access",
            Some("lang=en&email=e%40example.com"),
        )
        .await;
    assert_eq!(status, 429, "{page}");
    assert!(!page.contains("e@example.com"));
    // An hour later it may start again.
    p.clock.advance(3_600_001);
    p.ask("access", "lang=en&email=e%40example.com").await;
}

#[tokio::test]
async fn a_phone_number_waits_for_an_operator_and_bad_input_is_never_echoed() {
    let p = PrivacyApp::new("attest = [\"portability\"]\n").await;
    for (kind, form) in [
        (
            "erasure",
            "lang=fr&email=ada%40example.com&phone=%2B33612345678",
        ),
        ("portability", "lang=fr&email=ada%40example.com"),
    ] {
        let before = p.outbox.0.lock().unwrap().len();
        let verify = p.ask(kind, form).await;
        let mails = p.mails(before + 1).await;
        let mail = &mails[before];
        assert!(mail.subject.contains("votre code"), "{}", mail.subject);
        let at = mail.body.find("Votre code est ").unwrap() + "Votre code est ".len();
        let code = &mail.body[at..at + 6];
        let (status, location, _) = p.call("POST", &verify, Some(&format!("code={code}"))).await;
        assert_eq!(status, 303);
        let (_, _, page) = p.call("GET", &location, None).await;
        assert!(page.contains("lang=\"fr\""));
        assert!(page.contains("vérifiera que vous êtes bien"), "{page}");
    }
    for v in p.app.engine.list(&Default::default()).await.unwrap() {
        assert_eq!(v.state, oubli_model::RequestState::Received, "{}", v.kind);
    }
    // Bad input: a clear page that repeats none of it.
    for form in [
        "lang=en&email=not-an-address%3Cscript%3E",
        "lang=en&email=",
        "lang=en&email=ada%40example.com&phone=12%3Cb%3E",
    ] {
        let (status, _, page) = p.call("POST", "/privacy/ask/erasure", Some(form)).await;
        assert_eq!(status, 422, "{form}: {page}");
        assert!(
            !page.contains("<script>") && !page.contains("not-an-address"),
            "{page}"
        );
    }
    assert_eq!(
        p.call("POST", "/privacy/ask/lift", Some("email=a%40b.c"))
            .await
            .0,
        404
    );
    // A form posted from another site is refused.
    let req = Request::builder()
        .method(Method::POST)
        .uri("/privacy/ask/erasure")
        .header("sec-fetch-site", "cross-site")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from("email=ada%40example.com"))
        .unwrap();
    let r = p.router.clone().oneshot(req).await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Every page carries the CSP, no-store and no-referrer.
    let req = Request::builder()
        .uri("/privacy/")
        .body(Body::empty())
        .unwrap();
    let r = p.router.clone().oneshot(req).await.unwrap();
    let h = r.headers();
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(h["referrer-policy"], "no-referrer");
}

#[tokio::test]
async fn an_intake_keeps_the_time_received_and_the_deadline_runs_from_it() {
    let app = App::new().await;
    let op = app.token(Role::Operator, "alice").await;
    let filed = app
        .post(
            "/v1/requests",
            Some(&op),
            json!({"kind": "erasure", "subject": {"emails": [EMAIL]}, "channel": "call", "received_at": "2026-11-20T09:30:00+01:00"}),
        )
        .await;
    // The fixed date is in the past of any run of this test after 2026-11-20
    // and within the year allowed until 2027-11-20.
    assert_eq!(filed.status, StatusCode::CREATED, "{}", filed.raw);
    assert_eq!(filed.body["channel"], "call");
    assert_eq!(filed.body["received_at"], 1_795_163_400_000i64);
    // One month from when it was received, not from when it was filed.
    assert_eq!(filed.body["due_at"], 1_795_163_400_000i64 + 30 * 86_400_000);
    for (body, why) in [
        (
            json!({"kind": "erasure", "subject": {"emails": [EMAIL]}, "received_at": "2026-11-20T09:30:00Z"}),
            "needs the channel",
        ),
        (
            json!({"kind": "erasure", "subject": {"emails": [EMAIL]}, "channel": "call", "received_at": "2026-11-20 09:30"}),
            "offset",
        ),
        (
            json!({"kind": "erasure", "subject": {"emails": [EMAIL]}, "channel": "call", "received_at": "2999-01-01T00:00:00Z"}),
            "future",
        ),
        (
            json!({"kind": "erasure", "subject": {"emails": [EMAIL]}, "channel": "fax"}),
            "channel",
        ),
    ] {
        let r = app.post("/v1/requests", Some(&op), body).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{why}: {}",
            r.raw
        );
        assert!(r.raw.contains(why) || why == "channel", "{why}: {}", r.raw);
    }
}

/// A text gateway on loopback: what it was sent, each checked against its
/// signature.
async fn sms_gateway(secret: &'static str) -> (String, Arc<std::sync::Mutex<Vec<Value>>>) {
    let got: Arc<std::sync::Mutex<Vec<Value>>> = Arc::default();
    let kept = got.clone();
    let app = axum::Router::new().route(
        "/send",
        axum::routing::post(move |h: axum::http::HeaderMap, body: axum::body::Bytes| {
            let kept = kept.clone();
            async move {
                let sig = h[oubli_core::rights::webhooks::SIGNATURE_HEADER]
                    .to_str()
                    .unwrap()
                    .to_string();
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs() as i64;
                oubli_core::rights::webhooks::verify(secret.as_bytes(), &sig, &body, now, 300)
                    .expect("a signed message");
                kept.lock()
                    .unwrap()
                    .push(serde_json::from_slice(&body).unwrap());
                StatusCode::ACCEPTED
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://127.0.0.1:{}/send", addr.port()), got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_text_gateway_a_phone_number_is_proven_by_a_code_too() {
    let (url, texts) = sms_gateway("sms-secret").await;
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("sms");
    std::fs::write(&secret, "sms-secret\n").unwrap();
    let p = PrivacyApp::with(&format!(
        "\n[api.privacy.sms]\nurl = \"{url}\"\nsecret = {{ file = \"{}\" }}\n",
        secret.display()
    ))
    .await;
    let verify = p
        .ask(
            "erasure",
            "lang=en&email=ada%40example.com&phone=%2B33612345678",
        )
        .await;
    let code = code_in(&p.mails(1).await[0]);
    // The email's code is right: now the phone's, on the same page.
    let (status, location, _) = p.call("POST", &verify, Some(&format!("code={code}"))).await;
    assert_eq!((status, location.as_str()), (303, verify.as_str()));
    let (_, _, page) = p.call("GET", &verify, None).await;
    assert!(page.contains("by text message"), "{page}");
    let sms = loop {
        if let Some(m) = texts.lock().unwrap().first().cloned() {
            break m;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    };
    assert_eq!(sms["to"], "+33612345678");
    let body = sms["text"].as_str().unwrap();
    let at = body.find("your code is ").unwrap() + "your code is ".len();
    let phone_code = &body[at..at + 6];
    // The email's code does not prove the phone.
    if phone_code != code {
        let (status, _, _) = p.call("POST", &verify, Some(&format!("code={code}"))).await;
        assert_eq!(status, 422);
    }
    assert!(
        p.app
            .engine
            .list(&Default::default())
            .await
            .unwrap()
            .is_empty()
    );
    let (status, location, _) = p
        .call("POST", &verify, Some(&format!("code={phone_code}")))
        .await;
    assert_eq!(status, 303);
    assert!(location.starts_with("/privacy/status/"));
    // Both proven: no operator needed.
    let filed = p.app.engine.list(&Default::default()).await.unwrap();
    assert_eq!(filed[0].state, oubli_model::RequestState::Verified);
    let shown = p.app.engine.show(&filed[0].id).await.unwrap();
    let attested = shown
        .events
        .iter()
        .find(|e| e.action == "identity-attested")
        .unwrap();
    assert!(
        attested.reason.as_deref().unwrap().contains("phone number"),
        "{attested:?}"
    );
}

/// A `siteverify` service on loopback: it vouches for the token `human`
/// sent with the right secret, and counts what it was asked.
async fn captcha_service() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = asked.clone();
    let app = axum::Router::new().route(
        "/siteverify",
        axum::routing::post(
            move |axum::Form(f): axum::Form<std::collections::HashMap<String, String>>| {
                let count = count.clone();
                async move {
                    count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let ok = f.get("secret").map(String::as_str) == Some("captcha-secret")
                        && f.get("response").map(String::as_str) == Some("human")
                        && f.get("remoteip").map(String::as_str) == Some("203.0.113.7");
                    axum::Json(json!({"success": ok}))
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (
        format!("http://127.0.0.1:{}/siteverify", addr.port()),
        asked,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_captcha_is_checked_on_the_server_before_a_code_is_sent() {
    let (url, asked) = captcha_service().await;
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("captcha");
    std::fs::write(&secret, "captcha-secret\n").unwrap();
    let p = PrivacyApp::with(&format!(
        "\n[api.privacy.captcha]\nverify_url = \"{url}\"\nsecret = {{ file = \"{}\" }}\nsite_key = \"site-1\"\nscript = \"https://js.hcaptcha.com/1/api.js\"\nwidget_class = \"h-captcha\"\nfield = \"h-captcha-response\"\norigins = [\"https://hcaptcha.com\", \"https://*.hcaptcha.com\"]\n",
        secret.display()
    ))
    .await;
    // The form shows the widget, and only its page lets its script run.
    let req = Request::builder()
        .uri("/privacy/ask/erasure?lang=en")
        .body(Body::empty())
        .unwrap();
    let r = p.router.clone().oneshot(req).await.unwrap();
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("script-src 'self' https://hcaptcha.com https://*.hcaptcha.com"),
        "{csp}"
    );
    let page =
        String::from_utf8(r.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    assert!(
        page.contains("class=\"h-captcha\" data-sitekey=\"site-1\""),
        "{page}"
    );
    let req = Request::builder()
        .uri("/privacy/")
        .body(Body::empty())
        .unwrap();
    let r = p.router.clone().oneshot(req).await.unwrap();
    assert!(
        !r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("hcaptcha")
    );
    // No token, or one the service does not vouch for: no code.
    for form in [
        "lang=en&email=ada%40example.com",
        "lang=en&email=ada%40example.com&h-captcha-response=robot",
    ] {
        let (status, _, page) = p.call("POST", "/privacy/ask/erasure", Some(form)).await;
        assert_eq!(status, 422, "{page}");
        assert!(page.contains("did not pass"), "{page}");
    }
    assert_eq!(
        asked.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "an empty token is not sent"
    );
    p.ask(
        "erasure",
        "lang=en&email=ada%40example.com&h-captcha-response=human",
    )
    .await;
    assert_eq!(p.mails(1).await.len(), 1);
}

#[tokio::test]
async fn the_registers_templates_write_the_mails_in_the_controllers_words() {
    let p = PrivacyApp::with_top(
        "",
        "\n[register]\n[register.mails]\nfiled = { en = \"Dear customer, your reference is {reference}. Follow it at {link} before {due}.\" }\nchanged = { fr = \"Votre demande {reference} : {state}.\" }\n",
    )
    .await;
    let verify = p.ask("access", "lang=en&email=ada%40example.com").await;
    // No template for the code: oubli's own words.
    let code = code_in(&p.mails(1).await[0]);
    p.call("POST", &verify, Some(&format!("code={code}"))).await;
    let filed = &p.mails(2).await[1];
    assert!(
        filed
            .body
            .starts_with("Dear customer, your reference is r-"),
        "{}",
        filed.body
    );
    assert!(
        filed
            .body
            .contains("https://privacy.example.com/privacy/status/")
    );
    assert!(!filed.body.contains('{'), "{}", filed.body);
}

/// The console's new-request form takes the intake: the channel and the
/// time received, from which the deadline runs; a time without its offset
/// is refused with a page that says so.
#[tokio::test]
async fn the_console_files_a_call_with_the_time_it_was_received() {
    let clock = ManualClock::starting_now();
    let c = ConsoleApp::on(clock.clone(), false).await;
    let op = c.app.token(Role::Operator, "alice").await;
    let (_, cookie) = c.sign_in(&op).await;
    let (_, page) = c.page("/requests/new", &cookie).await;
    assert!(page.contains("name=\"channel\"") && page.contains("name=\"received_at\""));
    let csrf = csrf_in(&page);
    let received = oubli_model::Clock::now_ms(&*clock) - 2 * 86_400_000;
    let at = jiff::Timestamp::from_millisecond(received)
        .unwrap()
        .to_string()
        .replace(':', "%3A");
    let (status, h, body) = c
        .call(
            "POST",
            "/requests",
            Some(&cookie),
            Some(&format!(
                "_csrf={csrf}&kind=erasure&emails=ada%40example.com&channel=call&received_at={at}"
            )),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let path = h["location"].to_str().unwrap().to_string();
    let id = path.trim_start_matches("/requests/");
    let v = c.app.engine.show(id).await.unwrap();
    assert_eq!(v.request.channel, Some(oubli_model::Channel::Call));
    assert_eq!(v.request.received_at, received);
    assert_eq!(
        v.request.due_at,
        oubli_core::rights::engine::add_months(received, 1)
    );
    let (_, page) = c.page(&path, &cookie).await;
    assert!(page.contains("phone call"), "{page}");
    let (status, _, body) = c
        .call(
            "POST",
            "/requests",
            Some(&cookie),
            Some(&format!(
                "_csrf={csrf}&kind=erasure&emails=ada%40example.com&channel=call&received_at=2026-12-01T09%3A30"
            )),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("offset"), "{body}");
}
