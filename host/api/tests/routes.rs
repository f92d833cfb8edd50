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
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path();
        Keyring::init(&path.join("oubli-keys"), None).unwrap();
        let text = format!(
            "[store]\nurl = \"sqlite://{db}\"\n\n[keys]\ndir = \"{keys}\"\n\n[systems.directory]\nconnector = \"directory.wasm\"\n",
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
