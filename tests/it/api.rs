//! The HTTP API end to end: `oubli serve` spawned as a process, driven
//! over real HTTP (and TLS): tokens and the role matrix, idempotent
//! filing, stable pagination, problem details for bad input, a request
//! carried to a signed certificate that `openssl` alone verifies, the audit
//! log's tamper checks, signed webhooks, the OpenAPI copy in docs/.

use super::site::{Site, text};
use oubli_core::rights::webhooks;
use oubli_testing::plugins as built_plugins;
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;

const EMAIL: &str = "ada+calls@example.com";

pub(super) trait Serve {
    async fn serve(&self, extra: &[&str]) -> Server;
}

impl Serve for Site {
    /// Start `oubli serve` and wait for its address.
    async fn serve(&self, extra: &[&str]) -> Server {
        let mut args = vec!["serve"];
        if !extra.contains(&"--listen") {
            args.extend_from_slice(&["--listen", "127.0.0.1:0"]);
        }
        args.extend_from_slice(extra);
        let mut child = self
            .command(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut said = String::new();
        let base = loop {
            let line = tokio::time::timeout_at(deadline.into(), lines.next_line())
                .await
                .expect("serve did not start")
                .unwrap()
                .unwrap_or_else(|| panic!("serve exited: {said}"));
            said.push_str(&line);
            said.push('\n');
            if let Some(rest) = line.split("serving on ").nth(1) {
                break rest.split_whitespace().next().unwrap().to_string();
            }
        };
        // Keep draining the log so the server never blocks on a full pipe.
        let log = Arc::new(std::sync::Mutex::new(String::new()));
        let sink = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(l)) = lines.next_line().await {
                let mut s = sink.lock().unwrap();
                s.push_str(&l);
                s.push('\n');
            }
        });
        Server { child, base, log }
    }
}

pub(super) struct Server {
    pub(super) child: Child,
    pub(super) base: String,
    pub(super) log: Arc<std::sync::Mutex<String>>,
}

/// One HTTP exchange's answer.
#[derive(Debug)]
struct Reply {
    status: u16,
    content_type: String,
    headers: Vec<(String, String)>,
    body: Value,
    raw: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn agent() -> ureq::Agent {
    // A connection per request: a kept-alive connection the server closed
    // after an early answer (a 401 or 413 before the body was read) would
    // otherwise fail the next request at random.
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_idle_connections(0)
        .max_idle_connections_per_host(0)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// `method base+path`, with a bearer token and a JSON (or raw) body.
async fn call(
    agent: &ureq::Agent,
    method: &str,
    url: String,
    token: Option<&str>,
    body: Option<Vec<u8>>,
    headers: Vec<(&'static str, String)>,
) -> Reply {
    let agent = agent.clone();
    let method = method.to_string();
    let token = token.map(str::to_string);
    tokio::task::spawn_blocking(move || {
        let mut req = ureq::http::Request::builder()
            .method(method.as_str())
            .uri(&url);
        if let Some(t) = &token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        for (k, v) in &headers {
            req = req.header(*k, v);
        }
        let has_type = headers.iter().any(|(k, _)| *k == "content-type");
        let mut resp = match body {
            Some(b) => {
                if !has_type {
                    req = req.header("content-type", "application/json");
                }
                agent.run(req.body(b).unwrap())
            }
            None => agent.run(req.body(()).unwrap()),
        }
        .unwrap();
        let status = resp.status().as_u16();
        let headers: Vec<(String, String)> = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let raw = resp.body_mut().read_to_string().unwrap_or_default();
        let body = serde_json::from_str(&raw).unwrap_or(Value::Null);
        Reply {
            status,
            content_type,
            headers,
            body,
            raw,
        }
    })
    .await
    .unwrap()
}

struct Api {
    agent: ureq::Agent,
    base: String,
}

impl Api {
    async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        call(
            &self.agent,
            "GET",
            format!("{}{path}", self.base),
            token,
            None,
            vec![],
        )
        .await
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        call(
            &self.agent,
            "POST",
            format!("{}{path}", self.base),
            token,
            Some(body.to_string().into_bytes()),
            vec![],
        )
        .await
    }

    async fn file(&self, token: &str, body: Value, key: Option<&str>) -> Reply {
        let headers = key
            .map(|k| vec![("idempotency-key", k.to_string())])
            .unwrap_or_default();
        call(
            &self.agent,
            "POST",
            format!("{}/v1/requests", self.base),
            Some(token),
            Some(body.to_string().into_bytes()),
            headers,
        )
        .await
    }

    async fn wait_state(&self, id: &str, token: &str, want: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let r = self.get(&format!("/v1/requests/{id}"), Some(token)).await;
            assert_eq!(r.status, 200, "{}", r.raw);
            if r.body["state"] == want {
                return r.body;
            }
            assert!(Instant::now() < deadline, "never {want}: {:#}", r.body);
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

fn assert_problem(r: &Reply, status: u16) {
    assert_eq!(r.status, status, "{}", r.raw);
    assert_eq!(r.content_type, "application/problem+json", "{}", r.raw);
    assert_eq!(r.body["status"], status);
    assert!(r.body["type"].as_str().unwrap().starts_with("https://"));
    assert!(
        !r.body["trace_id"].as_str().unwrap_or_default().is_empty(),
        "problems carry the trace id: {}",
        r.raw
    );
    assert!(
        !r.raw.contains(EMAIL),
        "a problem quoted an identifier: {}",
        r.raw
    );
}

async fn the_whole_path(db: Option<String>) {
    let site = Site::new(db, "[policy.systems.directory]\n").await;
    let alice = site.token("operator", "alice").await;
    let bob = site.token("approver", "bob").await;
    let carol = site.token("auditor", "carol").await;
    let mut server = site.serve(&[]).await;
    let api = Api {
        agent: agent(),
        base: server.base.clone(),
    };

    // Idempotent filing: same key and body, one request; another body, refused.
    let body = json!({"kind": "erasure", "subject": {"emails": [EMAIL]}});
    let first = api.file(&alice, body.clone(), Some("crm-click-1")).await;
    assert_eq!(first.status, 201, "{}", first.raw);
    let id = first.body["id"].as_str().unwrap().to_string();
    assert_eq!(
        first.header("location"),
        Some(format!("/v1/requests/{id}").as_str())
    );
    let again = api.file(&alice, body.clone(), Some("crm-click-1")).await;
    assert_eq!(again.status, 200, "{}", again.raw);
    assert_eq!(again.body["id"], id.as_str());
    // The store keeps the body's hash keyed: a bare SHA-256 of a body that
    // names the person would let a copy of the database be tested for an
    // address.
    {
        use sha2::Digest;
        let store = oubli_store::Store::open(&site.db).await.unwrap();
        let kept: Vec<String> = sqlx::query_scalar("SELECT body_sha256 FROM idempotency_keys")
            .fetch_all(store.pool())
            .await
            .unwrap();
        let bare = hex::encode(sha2::Sha256::digest(body.to_string().as_bytes()));
        assert_eq!(kept.len(), 1);
        assert_ne!(kept[0], bare, "the body's hash is keyed");
        store.close().await;
    }
    let other = api
        .file(
            &alice,
            json!({"kind": "access", "subject": {"emails": [EMAIL]}}),
            Some("crm-click-1"),
        )
        .await;
    assert_problem(&other, 422);
    let listed = api.get("/v1/requests?limit=50", Some(&carol)).await;
    assert_eq!(
        listed.body["items"].as_array().unwrap().len(),
        1,
        "{}",
        listed.raw
    );

    // Four eyes through the API: the operator may not approve, the approver may.
    let waiting = api.wait_state(&id, &alice, "awaiting-approval").await;
    assert_eq!(
        waiting["systems"][0]["plan"]["items"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "{waiting:#}"
    );
    let seen_by_auditor = api.get(&format!("/v1/requests/{id}"), Some(&carol)).await;
    assert!(
        seen_by_auditor.body["systems"][0].get("plan").is_none(),
        "an auditor does not see plans: {}",
        seen_by_auditor.raw
    );
    let refused = api
        .post(
            &format!("/v1/requests/{id}/approve"),
            Some(&alice),
            json!({}),
        )
        .await;
    assert_problem(&refused, 403);
    // An approver may not approve what they filed: forbidden by policy, a
    // 403 of its own kind (it was a 409 like any conflict).
    let own = api
        .file(
            &bob,
            json!({"kind": "erasure", "subject": {"emails": [EMAIL]}}),
            None,
        )
        .await;
    let own_id = own.body["id"].as_str().unwrap().to_string();
    api.wait_state(&own_id, &bob, "awaiting-approval").await;
    let four_eyes = api
        .post(
            &format!("/v1/requests/{own_id}/approve"),
            Some(&bob),
            json!({}),
        )
        .await;
    assert_problem(&four_eyes, 403);
    assert!(
        four_eyes.body["type"]
            .as_str()
            .unwrap()
            .ends_with("/forbidden"),
        "{}",
        four_eyes.raw
    );
    let cancelled = api
        .post(
            &format!("/v1/requests/{own_id}/cancel"),
            Some(&bob),
            json!({"reason": "filed to test four eyes"}),
        )
        .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.raw);
    let approved = api
        .post(&format!("/v1/requests/{id}/approve"), Some(&bob), json!({}))
        .await;
    assert_eq!(approved.status, 200, "{}", approved.raw);
    let done = api.wait_state(&id, &carol, "completed").await;
    assert_eq!(done["approved_by"], "bob");
    assert!(!site.people.has("p1"), "the person was erased");

    // The certificate, checked by openssl alone, and by oubli against the chain.
    let cert = api
        .get(&format!("/v1/requests/{id}/certificate"), Some(&carol))
        .await;
    assert_eq!(cert.status, 200, "{}", cert.raw);
    let document = cert.body["document"].as_str().unwrap();
    assert!(!document.contains(EMAIL) && !document.contains("+336"));
    let parsed: Value = serde_json::from_str(document).unwrap();
    assert_eq!(parsed["request"], id.as_str());
    assert_eq!(parsed["systems"][0]["erased"], 1, "{parsed:#}");
    assert_eq!(parsed["systems"][0]["verification"]["still_found"], 0);
    assert_eq!(
        parsed["systems"][0]["component_sha256"]
            .as_str()
            .unwrap()
            .len(),
        64
    );
    let again = api
        .get(&format!("/v1/requests/{id}/certificate"), Some(&carol))
        .await;
    assert_eq!(again.body["document"], cert.body["document"], "issued once");
    let dir = site.dir.path();
    let doc_path = dir.join("cert.json");
    std::fs::write(&doc_path, document).unwrap();
    std::fs::write(
        dir.join("cert.json.sig"),
        oubli_core::rights::certificate::unb64(cert.body["signature"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    std::fs::write(
        dir.join("cert.json.pub.pem"),
        cert.body["public_key"].as_str().unwrap(),
    )
    .unwrap();
    assert!(
        openssl_verifies(dir, "cert.json"),
        "openssl refused an untouched certificate"
    );
    let out = site
        .run(&["certificate", "verify", doc_path.to_str().unwrap()])
        .await;
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    // Any byte changed: openssl and oubli both refuse.
    for at in [0, document.len() / 2, document.len() - 2] {
        let mut bad = document.as_bytes().to_vec();
        bad[at] ^= 0x01;
        std::fs::write(dir.join("bad.json"), &bad).unwrap();
        std::fs::copy(dir.join("cert.json.sig"), dir.join("bad.json.sig")).unwrap();
        std::fs::copy(dir.join("cert.json.pub.pem"), dir.join("bad.json.pub.pem")).unwrap();
        assert!(
            !openssl_verifies(dir, "bad.json"),
            "byte {at} changed, openssl still verified"
        );
        let out = site
            .run(&[
                "certificate",
                "verify",
                dir.join("bad.json").to_str().unwrap(),
            ])
            .await;
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    }
    // The CLI writes the same three files.
    let out = site
        .run(&[
            "certificate",
            "fetch",
            &id,
            "--out",
            dir.join("cli.json").to_str().unwrap(),
        ])
        .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(dir.join("cli.json")).unwrap(),
        document
    );
    assert!(openssl_verifies(dir, "cli.json"));

    // Metrics: the request, its tasks, the connector's calls by operation.
    let metrics = call(
        &api.agent,
        "GET",
        format!("{}/metrics", api.base),
        Some(&carol),
        None,
        vec![],
    )
    .await;
    assert_eq!(metrics.status, 200);
    for line in [
        "oubli_requests{state=\"completed\"} 1",
        "oubli_requests_overdue 0",
        "oubli_connector_call_duration_seconds_count{system=\"directory\",operation=\"locate\",outcome=\"ok\"}",
        "oubli_connector_call_duration_seconds_count{system=\"directory\",operation=\"erase\",outcome=\"ok\"}",
        "oubli_http_request_duration_seconds_count{method=\"POST\",route=\"/v1/requests\",status=\"201\"} 2",
    ] {
        assert!(metrics.raw.contains(line), "no {line} in\n{}", metrics.raw);
    }
    let manifest = api
        .get("/v1/systems/directory/manifest", Some(&carol))
        .await;
    assert_eq!(manifest.status, 200, "{}", manifest.raw);
    assert!(manifest.body["id"].is_string() && manifest.body["operations"].is_array());
    assert_problem(
        &api.get("/v1/systems/nowhere/manifest", Some(&carol)).await,
        404,
    );

    // The log: no identifier anywhere in it.
    server.child.kill().await.unwrap();
    let log = server.log.lock().unwrap().clone();
    assert!(log.contains("served"), "{log}");
    assert!(
        !log.contains(EMAIL) && !log.contains("Lovelace") && !log.contains("612345678"),
        "the log leaked: {log}"
    );
}

fn openssl_verifies(dir: &Path, name: &str) -> bool {
    std::process::Command::new("openssl")
        .current_dir(dir)
        .args([
            "dgst",
            "-sha256",
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            "rsa_pss_saltlen:32",
            "-verify",
            &format!("{name}.pub.pem"),
            "-signature",
            &format!("{name}.sig"),
            name,
        ])
        .output()
        .expect("openssl")
        .status
        .success()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_goes_from_the_api_to_a_certificate_openssl_verifies() {
    the_whole_path(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_path_on_postgresql() {
    let dir = tempfile::tempdir().unwrap();
    let urls = oubli_testing::store_urls(dir.path()).await;
    match urls.into_iter().find(|(k, _)| *k == "postgres") {
        Some((_, url)) => the_whole_path(Some(url)).await,
        None => eprintln!("OUBLI_TEST_PG not set: PostgreSQL run skipped"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_stay_stable_while_requests_are_filed_and_revoked_tokens_stop() {
    let site = Site::new(None, "").await;
    let op = site.token("operator", "alice").await;
    let server = site.serve(&["--workers", "0"]).await;
    let api = Api {
        agent: agent(),
        base: server.base.clone(),
    };
    let file = |n: usize| {
        let api = &api;
        let op = op.clone();
        async move {
            let r = api
                .file(&op, json!({"kind": "restriction", "subject": {"emails": [format!("p{n}@example.com")]}, "scope": ["all"]}), None)
                .await;
            assert_eq!(r.status, 201, "{}", r.raw);
            r.body["id"].as_str().unwrap().to_string()
        }
    };
    let mut before = Vec::new();
    for n in 0..7 {
        before.push(file(n).await);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut n = 100;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/requests?limit=3&cursor={c}"),
            None => "/v1/requests?limit=3".into(),
        };
        let page = api.get(&path, Some(&op)).await;
        assert_eq!(page.status, 200, "{}", page.raw);
        for item in page.body["items"].as_array().unwrap() {
            seen.push(item["id"].as_str().unwrap().to_string());
        }
        // Filed between pages: must not disturb the walk.
        file(n).await;
        n += 1;
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), seen.len(), "an id came twice: {seen:?}");
    assert_eq!(sorted, seen, "pages are in id order");
    for id in &before {
        assert!(seen.contains(id), "{id} was skipped");
    }

    // A revoked token stops working (within the cache's second).
    let id = text(&site.run(&["token", "list", "--json"]).await.stdout);
    let rows: Value = serde_json::from_str(&id).unwrap();
    let tid = rows[0]["id"].as_str().unwrap().to_string();
    assert!(
        rows[0].get("hash").is_none(),
        "token list never shows hashes"
    );
    let out = site.run(&["token", "revoke", &tid, "--as", "admin"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    // `serve` believes its cached row for up to a second of its clock (the
    // second itself is tested on an injected clock in core's tests).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = api.get("/v1/requests", Some(&op)).await;
        if r.status == 401 {
            assert_problem(&r, 401);
            break;
        }
        assert_eq!(r.status, 200, "{}", r.raw);
        assert!(Instant::now() < deadline, "the revoked token still works");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_edits_and_cut_tails_are_detected_and_webhooks_are_signed() {
    // A webhook receiver that records what it gets.
    let got: Arc<std::sync::Mutex<Vec<Delivery>>> = Default::default();
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let sink = sink.clone();
                async move {
                    let sig = headers
                        .get(webhooks::SIGNATURE_HEADER)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    sink.lock().unwrap().push((sig, body.to_vec()));
                    "ok"
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let site = Site::new(
        None,
        &format!("[[api.webhooks]]\nname = \"crm\"\nurl = \"http://{hook}/hook\"\nsecret = {{ env = \"WEBHOOK_SECRET\" }}\n"),
    )
    .await;
    let op = site.token("operator", "alice").await;
    let server = site.serve(&[]).await;
    let api = Api {
        agent: agent(),
        base: server.base.clone(),
    };
    let r = api
        .file(
            &op,
            json!({"kind": "access", "subject": {"emails": [EMAIL]}}),
            None,
        )
        .await;
    let id = r.body["id"].as_str().unwrap().to_string();
    api.wait_state(&id, &op, "completed").await;

    // Webhooks: every state change, in order, signed, no personal data.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let bodies: Vec<Value> = got
            .lock()
            .unwrap()
            .iter()
            .map(|(_, b)| serde_json::from_slice::<Value>(b).unwrap())
            .collect();
        let states: Vec<String> = bodies
            .iter()
            .filter(|b| b["type"] == "request.state-changed")
            .map(|b| b["to"].as_str().unwrap().to_string())
            .collect();
        // The sequencer's signed tree heads are delivered too, for a
        // witness to keep.
        let heads = bodies
            .iter()
            .filter(|b| b["type"] == "audit.tree-head" && b["head"]["size"].as_i64() > Some(0))
            .count();
        if states.last().map(String::as_str) == Some("completed") && heads > 0 {
            assert_eq!(states, ["verified", "planning", "executing", "completed"]);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "webhooks: {states:?}, {heads} heads"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let now = oubli_model::Clock::now_ms(&oubli_model::SystemClock) / 1000;
    for (sig, body) in got.lock().unwrap().iter() {
        assert!(
            !text(body).contains(EMAIL) && !text(body).contains("Lovelace"),
            "{}",
            text(body)
        );
        webhooks::verify(b"whsec-test", sig, body, now, 300).unwrap();
        // Replayed ten minutes later: refused by the documented check.
        assert!(matches!(
            webhooks::verify(b"whsec-test", sig, body, now + 600, 300),
            Err(webhooks::WebhookError::Stale(_))
        ));
        assert!(webhooks::verify(b"other-secret", sig, body, now, 300).is_err());
    }
    drop(server);

    // Sign the head, then tamper.
    let out = site.run(&["audit", "sign"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let verify = || async {
        let out = site.run(&["audit", "verify"]).await;
        (out.status.code(), text(&out.stdout))
    };
    assert_eq!(verify().await.0, Some(0), "{}", verify().await.1);
    let export = site.run(&["audit", "export"]).await;
    let lines: Vec<Value> = text(&export.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.iter().any(|l| l.get("tree_head").is_some()));
    assert!(lines.iter().filter(|l| l.get("event").is_some()).count() >= 4);
    let of_request: Vec<&Value> = lines
        .iter()
        .filter(|l| l["event"]["request_id"] == id.as_str())
        .collect();
    assert!(of_request.len() >= 4);
    for l in &of_request {
        let subject = l["event"]["subject"].as_array().unwrap();
        assert_eq!(subject.len(), 1, "{l}");
        assert_eq!(
            subject[0].as_str().unwrap().len(),
            32,
            "a full blind index (128 bits)"
        );
    }
    assert!(!text(&export.stdout).contains(EMAIL) && !text(&export.stdout).contains("Lovelace"));

    let store = oubli_store::Store::open(&site.db).await.unwrap();
    let pool = store.pool();
    // One row edited: named.
    sqlx_exec(pool, "UPDATE events SET actor = 'mallory' WHERE id = 2").await;
    let (code, said) = verify().await;
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("BROKEN at event 2"), "{said}");
    sqlx_exec(
        pool,
        "UPDATE events SET actor = (SELECT actor FROM events WHERE id = 3) WHERE id = 2",
    )
    .await;
    let (code, said) = verify().await;
    if code != Some(0) {
        // The original actor may differ from event 3's: restore by trying both.
        sqlx_exec(pool, "UPDATE events SET actor = 'alice' WHERE id = 2").await;
        assert_eq!(verify().await.0, Some(0), "{said}");
    }
    // The last event deleted and the head rewound to match: the chain alone
    // holds, the signed head does not.
    sqlx_exec(
        pool,
        "DELETE FROM events WHERE id = (SELECT MAX(id) FROM events)",
    )
    .await;
    sqlx_exec(
        pool,
        "UPDATE audit_head SET seq = seq - 1, hash = (SELECT hash FROM events WHERE id = (SELECT MAX(id) FROM events)) WHERE id = 1",
    )
    .await;
    let (code, said) = verify().await;
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("audit chain intact"), "{said}");
    assert!(
        said.contains("audit tree BROKEN") && said.contains("cut off"),
        "{said}"
    );
    store.close().await;
}

/// A webhook delivery received: the signature header and the body.
type Delivery = (String, Vec<u8>);

async fn sqlx_exec(pool: &sqlx::AnyPool, sql: &str) {
    sqlx::query(sql).execute(pool).await.unwrap();
}

/// A private CA (`{prefix}ca.pem`) and a server certificate for localhost
/// it signs (`{prefix}cert.pem`, `{prefix}key.pem`).
fn make_certificates(dir: &Path, prefix: &str) {
    std::fs::write(
        dir.join("ext.cnf"),
        "basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    let (ca, ca_key, cert, key) = (
        format!("{prefix}ca.pem"),
        format!("{prefix}ca.key"),
        format!("{prefix}cert.pem"),
        format!("{prefix}key.pem"),
    );
    let subject = format!("/CN={prefix}test CA");
    for args in [
        vec![
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", &ca_key, "-out", &ca,
            "-days", "2", "-subj", &subject,
        ],
        vec![
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
        vec![
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            &ca,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &cert,
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    ] {
        let made = std::process::Command::new("openssl")
            .current_dir(dir)
            .args(&args)
            .output()
            .unwrap();
        assert!(made.status.success(), "{}", text(&made.stderr));
    }
}

fn trusting(dir: &Path, ca: &str) -> ureq::Agent {
    let pem = std::fs::read(dir.join(ca)).unwrap();
    let cert = ureq::tls::Certificate::from_pem(&pem).unwrap().to_owned();
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::Specific(Arc::new(vec![cert])))
                .build(),
        )
        .build()
        .into()
}

/// Whether a fresh connection to `url` through `agent` is answered 200.
async fn healthy(agent: &ureq::Agent, url: String) -> bool {
    let agent = agent.clone();
    tokio::task::spawn_blocking(move || {
        agent
            .get(&url)
            .call()
            .map(|r| r.status().as_u16() == 200)
            .unwrap_or(false)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_is_served_reloaded_on_sighup_and_plain_http_stays_on_loopback() {
    let site = Site::new(None, "").await;
    let dir = site.dir.path();
    make_certificates(dir, "");
    let config = std::fs::read_to_string(&site.config).unwrap();
    std::fs::write(
        &site.config,
        format!("{config}\n[api]\ntls_cert = \"cert.pem\"\ntls_key = \"key.pem\"\n"),
    )
    .unwrap();
    let server = site.serve(&["--workers", "0"]).await;
    assert!(server.base.starts_with("https://"), "{}", server.base);
    let old = trusting(dir, "ca.pem");
    let r = call(
        &old,
        "GET",
        format!("{}/healthz", server.base),
        None,
        None,
        vec![],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(r.body["status"], "ok");

    // A new certificate from another CA, put in place, then SIGHUP: new
    // connections get it; the old CA no longer verifies them.
    make_certificates(dir, "next-");
    std::fs::copy(dir.join("next-cert.pem"), dir.join("cert.pem")).unwrap();
    std::fs::copy(dir.join("next-key.pem"), dir.join("key.pem")).unwrap();
    let new = trusting(dir, "next-ca.pem");
    let pid = server.child.id().unwrap().to_string();
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap();
    assert!(hup.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !healthy(&new, format!("{}/healthz", server.base)).await {
        assert!(
            Instant::now() < deadline,
            "the new certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // A fresh agent (the old one keeps its pooled connection, made before).
    assert!(!healthy(&trusting(dir, "ca.pem"), format!("{}/healthz", server.base)).await);
    // A broken pair is refused and the served one kept.
    std::fs::write(dir.join("key.pem"), "not a key").unwrap();
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap();
    assert!(hup.success());
    // Refused (the server says so in its log), and the served pair kept.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.log.lock().unwrap().contains("TLS reload failed") {
        assert!(
            Instant::now() < deadline,
            "the broken pair was never refused"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(healthy(&new, format!("{}/healthz", server.base)).await);
    drop(server);

    // Without TLS, a non-loopback address is refused unless allowed.
    std::fs::write(&site.config, &config).unwrap();
    let out = site.run(&["serve", "--listen", "0.0.0.0:0"]).await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("refusing plain HTTP"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn the_openapi_copy_in_docs_is_current() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_oubli"))
        .arg("openapi")
        .output()
        .unwrap();
    assert!(out.status.success());
    let generated = text(&out.stdout);
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    let kept = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        kept == generated,
        "docs/openapi.json is stale: run `cargo run -q -- openapi > docs/openapi.json`"
    );
    let doc: Value = serde_json::from_str(&generated).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    // No identifier ever travels in a path or a query string.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (_, op) in item.as_object().unwrap() {
            for p in op["parameters"].as_array().into_iter().flatten() {
                let name = p["name"].as_str().unwrap();
                assert!(
                    !["email", "phone", "subject", "name"]
                        .iter()
                        .any(|w| name.contains(w)),
                    "{path} takes {name} in the {}",
                    p["in"]
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundles_stream_encrypted_and_consent_is_recorded_over_the_api() {
    let site = Site::new(None, "").await;
    let op = site.token("operator", "alice").await;
    let auditor = site.token("auditor", "carol").await;
    let server = site.serve(&[]).await;
    let api = Api {
        agent: agent(),
        base: server.base.clone(),
    };
    let r = api
        .file(
            &op,
            json!({"kind": "access", "subject": {"emails": [EMAIL]}}),
            None,
        )
        .await;
    let id = r.body["id"].as_str().unwrap().to_string();
    api.wait_state(&id, &op, "completed").await;

    // The answer: operators only; encrypted for the host key; a real ZIP
    // inside. This site has no register of processing: the answer says so,
    // and is handed out only when asked for knowingly.
    let path = format!("/v1/requests/{id}/bundle?allow_incomplete=true");
    assert_problem(&api.get(&path, Some(&auditor)).await, 403);
    let refused = api
        .get(&format!("/v1/requests/{id}/bundle"), Some(&op))
        .await;
    assert_problem(&refused, 409);
    assert!(
        refused.body["detail"].as_str().unwrap().contains("gap(s)"),
        "{}",
        refused.raw
    );
    assert_problem(
        &api.get(&format!("/v1/requests/{id}/bundle?lang=fr"), Some(&op))
            .await,
        400,
    );
    let sealed = {
        let (agent, url, op) = (api.agent.clone(), format!("{}{path}", api.base), op.clone());
        tokio::task::spawn_blocking(move || {
            let mut resp = agent
                .get(&url)
                .header("authorization", format!("Bearer {op}"))
                .call()
                .unwrap();
            assert_eq!(resp.status().as_u16(), 200);
            resp.body_mut()
                .with_config()
                .limit(50 << 20)
                .read_to_vec()
                .unwrap()
        })
        .await
        .unwrap()
    };
    assert!(!text(&sealed).contains(EMAIL));
    let keys = site.dir.path().join("oubli-keys");
    let host = std::fs::read_dir(&keys)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with("host-") && n.ends_with(".pem") && !n.ends_with(".pub.pem")
        })
        .unwrap();
    let pem = std::fs::read_to_string(host).unwrap();
    let key = oubli_crypto::file::private_key_from_pem(&pem, None, "host").unwrap();
    let (_, zip) = oubli_crypto::file::decrypt(&key, &sealed[..], Vec::new()).unwrap();
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
    let mut page = String::new();
    std::io::Read::read_to_string(&mut z.by_name("index.fr.html").unwrap(), &mut page).unwrap();
    assert!(
        page.contains("<html lang=\"fr\">")
            && page.contains("data-record=\"p1\"")
            && page.contains("INCOMPLET"),
        "{page}"
    );
    // A request that is no bundle: refused before the first byte.
    let e = api
        .file(
            &op,
            json!({"kind": "restriction", "subject": {"emails": [EMAIL]}}),
            None,
        )
        .await;
    let eid = e.body["id"].as_str().unwrap();
    assert_problem(
        &api.get(&format!("/v1/requests/{eid}/bundle"), Some(&op))
            .await,
        409,
    );

    // Consent: recorded, looked up, withdrawn (which files a request).
    let consent = |given: bool| {
        json!({"subject": {"emails": [EMAIL]}, "purpose": "marketing-calls", "given": given, "channel": "call",
               "evidence": {"recording_id": "conv-1", "offset_seconds": 12, "agent_id": "agent-7"}})
    };
    let given = api.post("/v1/consent", Some(&op), consent(true)).await;
    assert_eq!(given.status, 201, "{}", given.raw);
    assert_problem(
        &api.post("/v1/consent", Some(&auditor), consent(true)).await,
        403,
    );
    let mut bad = consent(true);
    bad["channel"] = json!("fax");
    assert_problem(&api.post("/v1/consent", Some(&op), bad).await, 422);
    let withdrawn = api.post("/v1/consent", Some(&op), consent(false)).await;
    assert_eq!(withdrawn.status, 201, "{}", withdrawn.raw);
    assert!(
        withdrawn.body["request_id"]
            .as_str()
            .unwrap()
            .starts_with("r-")
    );
    let view = api
        .post(
            "/v1/consent/lookup",
            Some(&op),
            json!({"subject": {"emails": ["ADA+calls@example.com"]}}),
        )
        .await;
    assert_eq!(view.status, 200, "{}", view.raw);
    assert_eq!(view.body["history"].as_array().unwrap().len(), 2);
    assert_eq!(view.body["status"][0]["given"], false);
    assert_eq!(
        view.body["history"][0]["evidence"]["recording_id"],
        "conv-1"
    );
}

/// The sandbox's deadline holds in `serve`: a connector that never yields
/// is stopped in the server's own workers (2 s deadline), its system waits
/// for an operator with a timeout error, the benign system answers, and the
/// API goes on answering meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_looping_connector_is_stopped_in_serve_and_the_api_answers() {
    let site = Site::new(
        None,
        &format!(
            "max_attempts = 2\n\n[systems.looping]\nconnector = {:?}\n[systems.looping.limits]\ntimeout = \"2s\"\n",
            built_plugins::HOSTILE
        ),
    )
    .await;
    let op = site.token("operator", "alice").await;
    let server = site.serve(&[]).await;
    let api = Api {
        agent: agent(),
        base: server.base.clone(),
    };
    let filed = api
        .file(
            &op,
            json!({"kind": "access", "subject": {"emails": [EMAIL], "names": ["loop"]}}),
            None,
        )
        .await;
    assert_eq!(filed.status, 201, "{}", filed.raw);
    let id = filed.body["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(90);
    let shown = loop {
        let health = api.get("/healthz", None).await;
        assert_eq!(health.status, 200, "the API answers while the loop runs");
        let r = api.get(&format!("/v1/requests/{id}"), Some(&op)).await;
        let looping = r.body["systems"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|s| s["system"] == "looping")
            .cloned();
        if looping
            .as_ref()
            .is_some_and(|s| s["state"] == "needs-attention")
        {
            break r.body;
        }
        assert!(
            Instant::now() < deadline,
            "the loop was never stopped: {:#}\n{}",
            r.body,
            server.log.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_eq!(shown["state"], "executing", "{shown:#}");
    let system = |name: &str| {
        shown["systems"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["system"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(system("looping")["error"]["kind"], "timeout");
    assert_eq!(system("directory")["state"], "done");
}

/// A hostile client cannot hold the server: a connection that sends no
/// headers (or half of them) is closed after `header_timeout`, and at most
/// `max_connections` are served at once, the next accepted when one
/// closes. Every answer says `Cache-Control: no-store`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_slow_connections_are_closed_and_capped() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let site = Site::new(
        None,
        "[api]\nheader_timeout = \"500ms\"\nmax_connections = 4\n",
    )
    .await;
    let server = site.serve(&["--workers", "0"]).await;
    let addr = server.base.trim_start_matches("http://").to_string();
    // Every answer says no-store (a fresh agent, dropped: its connection
    // closes and frees its slot).
    {
        let api = Api {
            agent: agent(),
            base: server.base.clone(),
        };
        let health = api.get("/healthz", None).await;
        assert_eq!(health.status, 200);
        assert_eq!(health.header("cache-control"), Some("no-store"));
    }

    // Four connections that say nothing (one sends half a header) fill
    // the four slots.
    let mut held = Vec::new();
    for i in 0..4 {
        let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
        if i == 0 {
            c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                .await
                .unwrap();
        }
        held.push(c);
    }
    // A fifth client is served only once the header timeout closed one of
    // them: by the time its answer arrives, a held connection is closed.
    let api = Api {
        agent: agent(),
        base: server.base.clone(),
    };
    let fifth = api.get("/healthz", None).await;
    assert_eq!(fifth.status, 200);
    // The server closed one to serve it (its FIN may reach us a moment
    // after the fifth's answer: wait for it, not for a time).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let closed = held
            .iter()
            .filter(|c| {
                let mut buf = [0u8; 256];
                // EOF, or the server's 408 before it closes.
                c.try_read(&mut buf).is_ok()
            })
            .count();
        if closed >= 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the fifth was served while all four held their slots"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for mut c in held {
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(10), c.read(&mut buf))
            .await
            .expect("the server closes a silent connection")
            .unwrap_or(0);
        let answered = String::from_utf8_lossy(&buf[..n]).to_string();
        assert!(
            n == 0 || answered.starts_with("HTTP/1.1 408"),
            "closed, not served: {answered}"
        );
    }
}

/// A webhook whose signing secret cannot be read stops `serve` from
/// starting, in one line naming the webhook (it used to start with the
/// webhook silently off).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_to_start_with_a_webhook_it_cannot_sign() {
    let site = Site::new(
        None,
        "[[api.webhooks]]\nname = \"crm\"\nurl = \"http://127.0.0.1:9/hook\"\nsecret = { env = \"OUBLI_TEST_MISSING_HOOK_SECRET\" }\n",
    )
    .await;
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        site.command(&["serve", "--listen", "127.0.0.1:0"])
            .env_remove("OUBLI_TEST_MISSING_HOOK_SECRET")
            .output(),
    )
    .await
    .expect("serve does not start")
    .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.contains("webhook crm") && last.contains("secret"),
        "{err}"
    );
}

/// Behind a trusted proxy, failed logins are counted per real client (its
/// `X-Forwarded-For`), so one client's bad tokens lock out that client
/// only; and a valid token is never locked out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockout_is_per_client_behind_a_trusted_proxy_and_spares_valid_tokens() {
    // The test connects from 127.0.0.1: here, the proxy.
    let site = Site::new(None, "[api]\ntrusted_proxies = [\"127.0.0.1\"]\n").await;
    let op = site.token("operator", "alice").await;
    let server = site.serve(&["--workers", "0"]).await;
    let api = Api {
        agent: agent(),
        base: server.base.clone(),
    };
    let from = |client: &str, token: &str| {
        let (agent, url, token) = (
            api.agent.clone(),
            format!("{}/v1/requests", api.base),
            token.to_string(),
        );
        let header = format!("6.6.6.6, {client}");
        async move {
            call(
                &agent,
                "GET",
                url,
                Some(&token),
                None,
                vec![("x-forwarded-for", header)],
            )
            .await
        }
    };
    for _ in 0..10 {
        assert_eq!(from("203.0.113.1", "oubli_bad").await.status, 401);
    }
    assert_eq!(
        from("203.0.113.1", "oubli_bad").await.status,
        429,
        "that client is locked out"
    );
    assert_eq!(
        from("203.0.113.2", "oubli_bad").await.status,
        401,
        "another client is not"
    );
    assert_eq!(
        from("203.0.113.1", &op).await.status,
        200,
        "a valid token is never locked out"
    );
}

/// One address may hold only so many connections: past that, its next one
/// is answered 429 (a problem, with Retry-After) and closed, and served
/// again once it closes one. And the server's own limits on the request
/// target and headers answer problems too, not hyper's bare statuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_take_every_connection_and_oversized_heads_get_problems() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let site = Site::new(None, "[api]\nmax_connections_per_address = 2\n").await;
    let server = site.serve(&["--workers", "0"]).await;
    let addr = server.base.trim_start_matches("http://").to_string();
    let get = |head: String| {
        let addr = addr.clone();
        async move {
            let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
            c.write_all(head.as_bytes()).await.unwrap();
            let mut out = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(10), c.read_to_end(&mut out)).await;
            String::from_utf8_lossy(&out).into_owned()
        }
    };
    let plain = || "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_string();
    assert!(get(plain()).await.starts_with("HTTP/1.1 200"));
    // Two kept-alive connections hold the address's two slots. Each is
    // known to hold one once it was served (a refused one is answered 429
    // and closed): the first request's slot is given back a moment after
    // its answer, so a connection made at once may still be refused, and
    // is then made again.
    let hold = || {
        let addr = addr.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
                c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                    .await
                    .unwrap();
                let mut head = Vec::new();
                let mut buf = [0u8; 512];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match c.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                if head.starts_with(b"HTTP/1.1 200") {
                    return c;
                }
                assert!(Instant::now() < deadline, "no slot was ever free");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let held = [hold().await, hold().await];
    let busy = get(plain()).await;
    assert!(busy.starts_with("HTTP/1.1 429"), "{busy}");
    assert!(busy.contains("application/problem+json"), "{busy}");
    assert!(busy.to_lowercase().contains("retry-after: 1"), "{busy}");
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let again = get(plain()).await;
        if again.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "never served again: {again}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A request target or headers past the limits: problems.
    let long_uri = get(format!(
        "GET /healthz?{} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "a".repeat(9 * 1024)
    ))
    .await;
    assert!(long_uri.starts_with("HTTP/1.1 414"), "{long_uri}");
    assert!(long_uri.contains("application/problem+json"), "{long_uri}");
    let big_headers = get(format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Filler: {}\r\nConnection: close\r\n\r\n",
        "b".repeat(20 * 1024)
    ))
    .await;
    assert!(big_headers.starts_with("HTTP/1.1 431"), "{big_headers}");
    assert!(
        big_headers.contains("application/problem+json"),
        "{big_headers}"
    );
}

/// Retention through `serve`: an operator starts a test run, which `serve`'s
/// own worker carries out; an auditor may read it but not start one; an
/// approver other than who ran it accepts it; the enforcing run erases and
/// its certificate is served.
#[tokio::test(flavor = "multi_thread")]
async fn retention_runs_through_the_api() {
    let (site, sandbox) = Site::sandboxed(
        "\n[retention]\nskew = \"0s\"\n\n[[retention.policies]]\nid = \"mail-30d\"\n\
         system = \"support-mail\"\ncategory = \"correspondence\"\nperiod = \"30 days\"\n\
         mode = \"enforce\"\napproval_threshold = 3\n",
    )
    .await;
    let alice = site.token("operator", "alice").await;
    let bob = site.token("approver", "bob").await;
    let carol = site.token("auditor", "carol").await;
    let server = site.serve(&[]).await;
    let api = Api {
        agent: agent(),
        base: server.base.clone(),
    };
    let policies = api.get("/v1/retention/policies", Some(&carol)).await;
    assert_eq!(policies.status, 200, "{}", policies.raw);
    assert_eq!(policies.body[0]["effective_period"], "P30D");
    let refused = api
        .post(
            "/v1/retention/policies/mail-30d/runs",
            Some(&carol),
            json!({}),
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.raw);
    let unknown = api
        .post("/v1/retention/policies/nope/runs", Some(&alice), json!({}))
        .await;
    assert_eq!(unknown.status, 404, "{}", unknown.raw);

    let until_settled = async |id: &str| -> Value {
        for _ in 0..600 {
            let r = api
                .get(&format!("/v1/retention/runs/{id}"), Some(&carol))
                .await;
            assert_eq!(r.status, 200, "{}", r.raw);
            if r.body["state"] != "running" {
                return r.body;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("run {id} never settled");
    };
    let started = api
        .post(
            "/v1/retention/policies/mail-30d/runs",
            Some(&alice),
            json!({}),
        )
        .await;
    assert_eq!(started.status, 202, "{}", started.raw);
    let test_id = started.body["id"].as_str().unwrap().to_string();
    let test = until_settled(&test_id).await;
    assert_eq!(test["state"], "awaiting-approval", "{test}");
    let own = api
        .post(
            &format!("/v1/retention/runs/{test_id}/approve"),
            Some(&alice),
            json!({}),
        )
        .await;
    assert_eq!(own.status, 403, "an operator cannot approve: {}", own.raw);
    let ok = api
        .post(
            &format!("/v1/retention/runs/{test_id}/approve"),
            Some(&bob),
            json!({}),
        )
        .await;
    assert_eq!(
        (ok.status, ok.body["state"].as_str()),
        (200, Some("approved")),
        "{}",
        ok.raw
    );

    let enforced = api
        .post(
            "/v1/retention/policies/mail-30d/runs",
            Some(&alice),
            json!({"enforce": true}),
        )
        .await;
    assert_eq!(enforced.status, 202, "{}", enforced.raw);
    let run = until_settled(enforced.body["id"].as_str().unwrap()).await;
    assert_eq!(run["state"], "done", "{run}");
    assert_eq!(run["tally"]["erased"], test["tally"]["due"]);
    assert!(sandbox.jmap.data.lock().unwrap().emails.is_empty());
    let cert = api
        .get(
            &format!(
                "/v1/retention/runs/{}/certificate",
                run["id"].as_str().unwrap()
            ),
            Some(&carol),
        )
        .await;
    assert_eq!(cert.status, 200, "{}", cert.raw);
    assert!(
        cert.body["document"]
            .as_str()
            .unwrap()
            .contains("oubli-retention-certificate/1")
    );
    let runs = api
        .get("/v1/retention/runs?policy=mail-30d", Some(&carol))
        .await;
    assert_eq!(runs.body.as_array().unwrap().len(), 2, "{}", runs.raw);
    let bad = api
        .get("/v1/retention/runs?policy=Not%20One", Some(&carol))
        .await;
    assert_eq!(bad.status, 400, "{}", bad.raw);
}
