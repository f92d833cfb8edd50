//! The operator console, end to end: `oubli serve` on SQLite with the
//! people-directory stand-in, driven in headless Chromium through
//! chromedriver (WebDriver), and checked over plain HTTP for what a browser
//! would never send (forged and token-less forms, stale cookies).
//!
//! Needs `chromedriver` and `chromium` (Debian's packages), and for the
//! accessibility check and the identity provider the npm packages
//! `axe-core` and `oidc-provider` under `tests/node/node_modules` (`npm ci`
//! there; or `OUBLI_NODE_MODULES`): `.ci/run` installs them all, and with
//! `OUBLI_REQUIRE_BROWSER=1` a missing one is a failure instead of a skip.

use super::api::{Serve, Server};
use super::site::Site;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const EMAIL: &str = "ada+calls@example.com";

pub(super) fn required() -> bool {
    std::env::var("OUBLI_REQUIRE_BROWSER").is_ok_and(|v| v == "1")
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|f| f.is_file())
    })
}

fn node_modules() -> PathBuf {
    std::env::var_os("OUBLI_NODE_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/node/node_modules")
        })
}

pub(super) fn artefacts() -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/console-screenshots");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// What the browser needs, or why the test is skipped.
pub(super) fn tools() -> Option<(PathBuf, PathBuf)> {
    let found = on_path("chromedriver").zip(
        ["chromium", "chromium-browser", "google-chrome"]
            .iter()
            .find_map(|n| on_path(n)),
    );
    if found.is_none() {
        assert!(
            !required(),
            "OUBLI_REQUIRE_BROWSER=1 but no chromedriver or chromium on PATH"
        );
        eprintln!("no chromedriver or chromium on PATH: console browser test skipped");
    }
    found
}

pub(super) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Headless Chromium under chromedriver, its traffic to anything but
/// loopback sent to a proxy that records the host asked for.
pub(super) struct Browser {
    pub(super) c: Client,
    driver: std::process::Child,
    profile: tempfile::TempDir,
    seen: oubli_testing::proxy::Seen,
    proxy: u16,
}

impl Browser {
    pub(super) async fn start(chromedriver: &Path, chromium: &Path) -> Browser {
        let (proxy, seen) = oubli_testing::proxy::start();
        let port = free_port();
        let driver = std::process::Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-first-run", "--disable-sync", "--disable-background-networking",
                    "--disable-component-update", "--disable-quic", "--window-size=1280,900",
                    "--disable-features=AutofillServerCommunication,OptimizationHints,Translate,MediaRouter",
                    "--disable-domain-reliability", "--disable-client-side-phishing-detection",
                    "--no-default-browser-check", "--disable-search-engine-choice-screen",
                    format!("--user-data-dir={}", profile.path().display()),
                    // Loopback (the console, the identity provider) is
                    // reached directly; anything else goes to the proxy.
                    format!("--proxy-server=http://127.0.0.1:{proxy}"),
                ],
            }),
        );
        let c = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a WebDriver session");
        Browser {
            c,
            driver,
            profile,
            seen,
            proxy,
        }
    }

    pub(super) async fn goto(&self, url: &str) {
        self.c.goto(url).await.unwrap();
    }

    pub(super) async fn path(&self) -> String {
        self.c.current_url().await.unwrap().path().to_string()
    }

    /// Wait (polling every 50 ms, up to a minute) until `css` matches.
    pub(super) async fn wait(&self, css: &str) -> fantoccini::elements::Element {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(e) = self.c.find(Locator::Css(css)).await {
                return e;
            }
            if Instant::now() >= deadline {
                let src = self.c.source().await.unwrap_or_default();
                let end = src.char_indices().nth(3000).map_or(src.len(), |(i, _)| i);
                panic!(
                    "{css} never appeared on {}: {}",
                    self.c.current_url().await.unwrap(),
                    &src[..end]
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub(super) async fn count(&self, css: &str) -> usize {
        self.c.find_all(Locator::Css(css)).await.unwrap().len()
    }

    pub(super) async fn fill(&self, css: &str, text: &str) {
        let e = self.c.find(Locator::Css(css)).await.unwrap();
        e.clear().await.unwrap();
        e.send_keys(text).await.unwrap();
    }

    pub(super) async fn click(&self, css: &str) {
        self.c
            .find(Locator::Css(css))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    async fn sign_in(&self, base: &str, token: &str) {
        self.goto(&format!("{base}/")).await;
        assert_eq!(self.path().await, "/signin", "signed out: the sign-in page");
        self.fill("#token", token).await;
        self.click("form[action='/signin'] button[type=submit]")
            .await;
        self.wait("nav a[href='/requests']").await;
    }

    async fn sign_out(&self) {
        self.click("form[action='/signout'] button").await;
        self.wait("#token").await;
    }

    /// A POST made from the page's own script, as a forger on the same
    /// origin could: `body` url-encoded; returns the status.
    async fn post(&self, path: &str, body: &str) -> u16 {
        let v = self
            .c
            .execute_async(
                "const [url, body, done] = arguments;
                 fetch(url, {method: 'POST', headers: {'content-type': 'application/x-www-form-urlencoded'}, body, redirect: 'manual'})
                   .then(r => done(r.status)).catch(e => done(-1));",
                vec![json!(path), json!(body)],
            )
            .await
            .unwrap();
        v.as_u64().unwrap_or(0) as u16
    }

    /// The session's CSRF token, from the page's sign-out form.
    async fn csrf(&self) -> String {
        self.c
            .find(Locator::Css("form[action='/signout'] input[name=_csrf]"))
            .await
            .unwrap()
            .attr("value")
            .await
            .unwrap()
            .unwrap()
    }

    /// axe-core's serious and critical violations on the current page.
    async fn axe(&self, axe: &str) -> Vec<String> {
        self.c.execute(axe, vec![]).await.unwrap();
        let v = self
            .c
            .execute_async(
                "const done = arguments[0];
                 axe.run(document, {resultTypes: ['violations']}).then(r => done(
                   r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
                     .map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', '))));",
                vec![],
            )
            .await
            .unwrap();
        serde_json::from_value(v).unwrap()
    }

    pub(super) async fn shot(&self, name: &str) {
        let png = self.c.screenshot().await.unwrap();
        std::fs::write(artefacts().join(format!("{name}.png")), png).unwrap();
    }

    /// The hosts the proxy saw, but for the browser's own services
    /// (updates, sign-in, autofill, its start page), which no page asks
    /// for: named exactly, so a page's font from another Google host would
    /// still show.
    pub(super) fn outside(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|h| !oubli_testing::proxy::browsers_own(h))
            .cloned()
            .collect()
    }

    /// Every resource the current page loaded, by its own account.
    async fn resources(&self) -> Vec<String> {
        let v = self
            .c
            .execute(
                "return performance.getEntriesByType('resource').map(e => e.name);",
                vec![],
            )
            .await
            .unwrap();
        serde_json::from_value(v).unwrap()
    }

    /// Close the browser; return the URLs in its history.
    pub(super) async fn close(mut self) -> Vec<String> {
        let _ = self.c.close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let history = self.profile.path().join("Default/History");
        let copy = self.profile.path().join("history-copy.sqlite");
        std::fs::copy(&history, &copy).expect("the browser kept a history");
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", copy.display()))
            .await
            .unwrap();
        let urls: Vec<String> = sqlx::query_scalar("SELECT url FROM urls")
            .fetch_all(&pool)
            .await
            .unwrap();
        pool.close().await;
        urls
    }
}

pub(super) fn axe_source() -> Option<String> {
    let p = node_modules().join("axe-core/axe.min.js");
    match std::fs::read_to_string(&p) {
        Ok(s) => Some(s),
        Err(_) => {
            assert!(
                !required(),
                "OUBLI_REQUIRE_BROWSER=1 but {} is missing",
                p.display()
            );
            eprintln!("no axe-core: accessibility check skipped");
            None
        }
    }
}

/// The current page loaded nothing from elsewhere, and axe finds no
/// serious or critical violation on it.
pub(super) async fn accessible(b: &Browser, axe: Option<&str>, page: &str) {
    let base = b.c.current_url().await.unwrap();
    let origin = base.origin().ascii_serialization();
    for r in b.resources().await {
        assert!(r.starts_with(&origin), "{page} loaded {r}");
    }
    if let Some(a) = axe {
        let v = b.axe(a).await;
        assert!(v.is_empty(), "{page}: axe found {v:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_carry_an_erasure_from_filing_to_a_verified_certificate_in_a_browser() {
    let Some((chromedriver, chromium)) = tools() else {
        return;
    };
    let axe = axe_source();
    let site = Site::new(None, "[policy.systems.directory]\n").await;
    let alice = site.token("operator", "alice").await;
    let bob = site.token("approver", "bob").await;
    let carol = site.token("auditor", "carol").await;
    let server: Server = site.serve(&[]).await;
    let base = server.base.clone();
    let b = Browser::start(&chromedriver, &chromium).await;

    // An operator signs in and files an erasure; the identifier goes in the
    // form's body.
    b.goto(&format!("{base}/signin")).await;
    b.wait("#token").await;
    accessible(&b, axe.as_deref(), "sign-in").await;
    b.sign_in(&base, &alice).await;
    accessible(&b, axe.as_deref(), "dashboard").await;
    // From the keyboard: the first Tab reaches the skip link, which takes
    // focus past the navigation to the content.
    let body = b.c.find(Locator::Css("body")).await.unwrap();
    body.send_keys("\u{E004}").await.unwrap();
    let first = b.c.active_element().await.unwrap();
    assert_eq!(first.attr("class").await.unwrap().as_deref(), Some("skip"));
    first.send_keys("\u{E007}").await.unwrap();
    let focused = b.c.active_element().await.unwrap();
    assert_eq!(focused.attr("id").await.unwrap().as_deref(), Some("main"));
    b.goto(&format!("{base}/requests/new")).await;
    accessible(&b, axe.as_deref(), "new request").await;
    b.c.find(Locator::Css("#kind"))
        .await
        .unwrap()
        .select_by_value("erasure")
        .await
        .unwrap();
    b.fill("#emails", EMAIL).await;
    b.fill("#notes", "called from the number on file at 10:05")
        .await;
    b.click("form[action='/requests'] button[type=submit]")
        .await;
    b.wait("#live").await;
    let history =
        b.c.find(Locator::Css("section[aria-labelledby=history]"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
    assert!(
        history.contains("called from the number on file"),
        "{history}"
    );
    let path = b.path().await;
    let id = path.strip_prefix("/requests/").unwrap().to_string();
    assert!(id.starts_with("r-"), "{path}");

    // The page follows the request by itself (htmx polls the live part)
    // until the plan waits for approval.
    b.wait("[data-state='awaiting-approval']").await;
    b.wait("table.plan tbody tr").await;
    accessible(&b, axe.as_deref(), "request awaiting approval").await;
    b.shot("request-awaiting-approval").await;
    // An operator may not approve: no button, and a forged form is refused.
    assert_eq!(b.count("form[action$='/approve']").await, 0);
    let csrf = b.csrf().await;
    assert_eq!(
        b.post(&format!("/requests/{id}/approve"), &format!("_csrf={csrf}"))
            .await,
        403
    );
    // A form without the session's CSRF token is refused, whatever the role.
    assert_eq!(
        b.post(
            &format!("/requests/{id}/extend"),
            "months=1&reason=r&told=t"
        )
        .await,
        403
    );
    assert_eq!(
        b.post(
            &format!("/requests/{id}/extend"),
            "_csrf=forged&months=1&reason=r&told=t"
        )
        .await,
        403
    );
    b.goto(&format!("{base}/requests")).await;
    b.wait(&format!("a[href='/requests/{id}']")).await;
    accessible(&b, axe.as_deref(), "queue").await;
    b.shot("queue").await;
    b.goto(&format!("{base}/systems")).await;
    b.wait("article.system").await;
    accessible(&b, axe.as_deref(), "systems").await;
    b.goto(&format!("{base}/subjects")).await;
    b.fill("#l-emails", EMAIL).await;
    b.click("form[action='/subjects'] button[type=submit]")
        .await;
    b.wait(&format!("a[href='/requests/{id}']")).await;
    accessible(&b, axe.as_deref(), "subject").await;
    b.sign_out().await;

    // An auditor sees the request but no plan and no approve button; a
    // forged approval with the auditor's own token is refused.
    b.sign_in(&base, &carol).await;
    b.goto(&format!("{base}/requests/{id}")).await;
    b.wait("#live").await;
    assert_eq!(b.count("form[action$='/approve']").await, 0);
    assert_eq!(b.count("table.plan").await, 0, "no plan for an auditor");
    let page = b.c.source().await.unwrap();
    assert!(
        !page.contains("number on file") && page.contains("(withheld)"),
        "notes withheld from an auditor"
    );
    let csrf = b.csrf().await;
    assert_eq!(
        b.post(&format!("/requests/{id}/approve"), &format!("_csrf={csrf}"))
            .await,
        403
    );
    b.sign_out().await;

    // The approver approves; the page follows the request to its end.
    b.sign_in(&base, &bob).await;
    b.goto(&format!("{base}/requests/{id}")).await;
    b.click("form[action$='/approve'] button").await;
    b.wait("[data-state='completed']").await;
    b.shot("request-completed").await;
    b.click("a[href$='/certificate']").await;
    b.wait("[data-verified='true']").await;
    // Its place in the audit log, checked by the page from the proof.
    b.wait("[data-proof='true']").await;
    b.shot("certificate").await;
    accessible(&b, axe.as_deref(), "certificate").await;
    // The audit log's page, checked on demand.
    b.goto(&format!("{base}/audit")).await;
    b.click("form[action='/audit/verify'] button").await;
    b.wait("[data-audit='ok']").await;
    accessible(&b, axe.as_deref(), "audit log").await;
    b.shot("audit").await;
    b.goto(&format!("{base}/")).await;
    b.wait(".cards").await;
    b.shot("dashboard").await;
    // A tablet, for the screenshots.
    b.c.set_window_size(820, 1180).await.unwrap();
    b.goto(&format!("{base}/requests/{id}")).await;
    b.wait("#live").await;
    b.shot("request-tablet").await;

    // The pages asked nothing of any other host. The control: a page that
    // does is seen by the proxy.
    let outside = b.outside();
    assert!(outside.is_empty(), "requests left the server: {outside:?}");
    let _ = b.c.goto("http://console-control.oubli.invalid/").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !b
        .outside()
        .iter()
        .any(|h| h == "console-control.oubli.invalid")
    {
        assert!(
            Instant::now() < deadline,
            "the proxy saw nothing: the check is blind"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let proxy = b.proxy;
    let history = b.close().await;
    let _ = proxy;

    // No identifier in any URL the browser kept, nor in the server's log.
    assert!(
        history
            .iter()
            .any(|u| u.contains(&format!("/requests/{id}"))),
        "the history is read: {history:?}"
    );
    let encoded = EMAIL.replace('+', "%2B").replace('@', "%40");
    for u in &history {
        assert!(
            !u.contains("ada+") && !u.to_lowercase().contains(&encoded.to_lowercase()),
            "an identifier in a URL: {u}"
        );
    }
    let log = server.log.lock().unwrap().clone();
    assert!(log.contains("served"), "the access log is on: {log}");
    assert!(
        !log.contains(EMAIL) && !log.contains(&encoded) && !log.contains("ada+calls"),
        "an identifier in the server's log"
    );
}

/// `POST path` with form fields and a cookie, not following redirects.
fn form(
    base: &str,
    path: &str,
    cookie: Option<&str>,
    fields: &[(&str, &str)],
) -> (u16, Vec<(String, String)>, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let body = url_encoded(fields);
    let mut req = agent
        .post(&format!("{base}{path}"))
        .header("content-type", "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let mut r = req.send(body.as_bytes()).unwrap();
    answer(&mut r)
}

fn get(base: &str, path: &str, cookie: Option<&str>) -> (u16, Vec<(String, String)>, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let mut req = agent.get(&format!("{base}{path}"));
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let mut r = req.call().unwrap();
    answer(&mut r)
}

fn answer(r: &mut ureq::http::Response<ureq::Body>) -> (u16, Vec<(String, String)>, String) {
    let headers = r
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    (
        r.status().as_u16(),
        headers,
        r.body_mut().read_to_string().unwrap_or_default(),
    )
}

fn url_encoded(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| {
            let enc = |s: &str| {
                s.bytes()
                    .map(|b| match b {
                        b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                            (b as char).to_string()
                        }
                        _ => format!("%{b:02X}"),
                    })
                    .collect::<String>()
            };
            format!("{}={}", enc(k), enc(v))
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    h.iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

/// Sign in over HTTP; the session cookie (`name=value`).
fn session(base: &str, token: &str) -> String {
    let (status, h, body) = form(base, "/signin", None, &[("token", token)]);
    assert_eq!(status, 303, "{body}");
    let set = header(&h, "set-cookie");
    let c = set
        .iter()
        .find(|c| c.starts_with("oubli="))
        .expect("a session cookie");
    c.split(';').next().unwrap().to_string()
}

fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"_csrf\" value=\"").expect("a CSRF field");
    let rest = &page[at + "name=\"_csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_sessions_are_guarded_revoked_and_locked_out_like_the_api() {
    let site = Site::new(None, "[api]\nlockout_after = 3\n").await;
    let alice = site.token("operator", "alice").await;
    // A DPO's key in the keyring, which the download offers.
    let (private, public) = (
        site.dir.path().join("dpo.pem"),
        site.dir.path().join("dpo.pub.pem"),
    );
    oubli_crypto::keyring::write_key_pair(&private, &public, None).unwrap();
    let keys = site.dir.path().join("oubli-keys");
    let out = site
        .raw(&[
            "keys",
            "recipient",
            "add",
            "dpo",
            public.to_str().unwrap(),
            "--dir",
            keys.to_str().unwrap(),
        ])
        .await;
    assert!(out.status.success(), "{}", super::site::text(&out.stderr));
    let server: Server = site.serve(&[]).await;
    let base = server.base.clone();

    // Every page carries the policy; signed out, pages lead to sign-in.
    let (status, h, _) = get(&base, "/requests", None);
    assert_eq!(status, 303);
    assert_eq!(header(&h, "location"), ["/signin"]);
    let (status, h, page) = get(&base, "/signin", None);
    assert_eq!(status, 200);
    let csp = header(&h, "content-security-policy");
    assert_eq!(csp.len(), 1);
    assert!(
        csp[0].contains("script-src 'self'") && !csp[0].contains("unsafe"),
        "{csp:?}"
    );
    assert!(
        !page.contains("<script>") && !page.contains("style="),
        "nothing inline"
    );

    // The cookie: HttpOnly, SameSite=Strict, a whole path.
    let (status, h, _) = form(&base, "/signin", None, &[("token", &alice)]);
    assert_eq!(status, 303);
    let set = header(&h, "set-cookie")[0].to_string();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(flag), "{set}");
    }
    let cookie = set.split(';').next().unwrap().to_string();
    let (status, _, page) = get(&base, "/requests/new", Some(&cookie));
    assert_eq!(status, 200, "{page}");
    let csrf = csrf_of(&page);

    // Filing: the identifier goes in the body, and never comes back in the
    // address the browser is sent to.
    let once = "a".repeat(32);
    let fields = [
        ("_csrf", csrf.as_str()),
        ("once", once.as_str()),
        ("kind", "access"),
        ("emails", EMAIL),
    ];
    let (status, h, _) = form(&base, "/requests", Some(&cookie), &fields);
    assert_eq!(status, 303);
    let location = header(&h, "location")[0].to_string();
    assert!(
        location.starts_with("/requests/r-")
            && !location.contains("ada+")
            && !location.to_lowercase().contains("ada%2b"),
        "{location}"
    );
    // The same form sent twice files one request.
    let (_, h, _) = form(&base, "/requests", Some(&cookie), &fields);
    assert_eq!(header(&h, "location")[0], location);
    // Without the CSRF token, refused; nothing filed.
    let (status, _, body) = form(&base, "/requests", Some(&cookie), &fields[1..]);
    assert_eq!(status, 403, "{body}");
    let listed = site.json(&["requests"]).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    // The access request runs (serve's worker); its kept answer downloads
    // from its page, encrypted, in oubli's file format.
    let id = location.trim_start_matches("/requests/").to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, _, page) = get(&base, &location, Some(&cookie));
        if page.contains("data-state=\"completed\"") {
            assert!(
                page.contains(&format!("action=\"/requests/{id}/bundle\""))
                    && page.contains("<option value=\"dpo\">"),
                "{page}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the access request did not complete: {page}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // This site has no register of processing: handed out only knowingly.
    let (status, _, body) = form(
        &base,
        &format!("/requests/{id}/bundle"),
        Some(&cookie),
        &[("_csrf", &csrf), ("recipient", "")],
    );
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("register"), "{body}");
    let (status, h, _) = form(
        &base,
        &format!("/requests/{id}/bundle"),
        Some(&cookie),
        &[
            ("_csrf", &csrf),
            ("recipient", ""),
            ("allow_incomplete", "1"),
        ],
    );
    assert_eq!(status, 200);
    assert_eq!(header(&h, "content-type"), ["application/octet-stream"]);
    let download = |recipient: &str| {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        agent
            .post(&format!("{base}/requests/{id}/bundle"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", &cookie)
            .send(format!("_csrf={csrf}&recipient={recipient}&allow_incomplete=1").as_bytes())
            .unwrap()
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_vec()
            .unwrap()
    };
    let bytes = download("");
    assert!(bytes.starts_with(b"oubliENC"), "an encrypted file");
    assert!(
        !bytes.windows(5).any(|w| w == b"ada+c"),
        "nothing in the clear"
    );
    // For the DPO instead: their key opens it.
    let for_dpo = download("dpo");
    let key = oubli_crypto::file::private_key_from_pem(
        &std::fs::read_to_string(&private).unwrap(),
        None,
        "dpo.pem",
    )
    .unwrap();
    let (_, zip) = oubli_crypto::file::decrypt(&key, &for_dpo[..], Vec::new()).unwrap();
    assert!(zip.starts_with(b"PK"), "the DPO's key opens a ZIP");
    let (status, _, _) = form(
        &base,
        &format!("/requests/{id}/bundle"),
        Some(&cookie),
        &[
            ("_csrf", &csrf),
            ("recipient", "nobody"),
            ("allow_incomplete", "1"),
        ],
    );
    assert_eq!(status, 404, "an unknown recipient");

    // A note from the CLI shows in the console's history (operators).
    let out = site
        .run(&[
            "request",
            "note",
            &id,
            "--text",
            "sent the answer by post too",
            "--as",
            "alice",
        ])
        .await;
    assert!(out.status.success(), "{}", super::site::text(&out.stderr));
    let (_, _, page) = get(&base, &location, Some(&cookie));
    assert!(page.contains("sent the answer by post too"), "{page}");

    // Untrusted input is never echoed: a bad kind's page does not quote it.
    let (status, _, body) = form(
        &base,
        "/requests",
        Some(&cookie),
        &[
            ("_csrf", &csrf),
            ("kind", "<script>x</script>"),
            ("emails", EMAIL),
        ],
    );
    assert_eq!(status, 422);
    assert!(
        !body.contains("<script>x") && !body.contains("ada+calls"),
        "{body}"
    );

    // Sign-out ends the session for good: the old cookie leads to sign-in.
    let (status, _, _) = form(&base, "/signout", Some(&cookie), &[("_csrf", &csrf)]);
    assert_eq!(status, 303);
    let (status, h, _) = get(&base, "/requests", Some(&cookie));
    assert_eq!((status, header(&h, "location")), (303, vec!["/signin"]));

    // Revoking the token ends the sessions opened with it.
    let cookie = session(&base, &alice);
    assert_eq!(get(&base, "/requests", Some(&cookie)).0, 200);
    let tokens = site.json(&["token", "list"]).await;
    let tid = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "alice")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let out = site.run(&["token", "revoke", &tid, "--as", "admin"]).await;
    assert!(out.status.success(), "{}", super::site::text(&out.stderr));
    let deadline = Instant::now() + Duration::from_secs(30);
    while get(&base, "/requests", Some(&cookie)).0 == 200 {
        assert!(
            Instant::now() < deadline,
            "a revoked token's session went on"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Bad tokens lock the address out, as the API does (here after 3).
    for _ in 0..3 {
        assert_eq!(
            form(&base, "/signin", None, &[("token", "oubli_nope")]).0,
            401
        );
    }
    assert_eq!(
        form(&base, "/signin", None, &[("token", "oubli_nope")]).0,
        429
    );
    let _: Value = json!(null);
}

/// A real OpenID provider (`oidc-provider` from npm, under node) on
/// loopback, with these accounts' groups; its issuer URL.
async fn provider(
    redirect: &str,
    secret: &str,
    groups: Value,
    userinfo_only: bool,
) -> Option<(tokio::process::Child, String)> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/oidc/provider.mjs");
    let modules = node_modules();
    if on_path("node").is_none() || !modules.join("oidc-provider").is_dir() {
        assert!(
            !required(),
            "OUBLI_REQUIRE_BROWSER=1 but node or the npm package oidc-provider is missing"
        );
        eprintln!("no node or oidc-provider: OpenID sign-in test skipped");
        return None;
    }
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new("node")
        .arg(&script)
        .env("NODE_PATH", &modules)
        .env("OUBLI_REDIRECT", redirect)
        .env("OUBLI_SECRET", secret)
        .env("OUBLI_GROUPS", groups.to_string())
        .env("OUBLI_USERINFO", if userinfo_only { "1" } else { "0" })
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the provider did not start")
        .unwrap()
        .expect("the provider exited");
    let issuer = line.strip_prefix("issuer ").unwrap().to_string();
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Some((child, issuer))
}

/// A real provider with these accounts' groups (their claims in the ID
/// token, or at userinfo only), and `oubli serve` on a site that signs in
/// through it with `roles` (a TOML table); `policy` goes first in the
/// config.
async fn sso_site(
    groups: Value,
    userinfo_only: bool,
    policy: &str,
    roles: &str,
) -> Option<(tokio::process::Child, Site, Server)> {
    let port = free_port();
    let redirect = format!("http://127.0.0.1:{port}/signin/oidc/callback");
    let secret = "a-client-secret-for-the-test-provider";
    let (idp, issuer) = provider(&redirect, secret, groups, userinfo_only).await?;
    let site = Site::new(
        None,
        &format!(
            "{policy}\n[api.console.oidc]\nissuer = {issuer:?}\nclient_id = \"oubli-console\"\n\
             client_secret = {{ file = \"oidc-secret\" }}\nredirect_url = {redirect:?}\nroles = {roles}\n"
        ),
    )
    .await;
    std::fs::write(site.dir.path().join("oidc-secret"), format!("{secret}\n")).unwrap();
    let server = site
        .serve(&["--listen", &format!("127.0.0.1:{port}")])
        .await;
    Some((idp, site, server))
}

/// Sign in as `who` through the provider's own login and consent pages
/// (any password: its development interactions), from a fresh start: the
/// provider's session goes too (its cookies, on the same loopback host).
async fn sso(b: &Browser, base: &str, who: &str) {
    b.goto(&format!("{base}/signin")).await;
    b.c.delete_all_cookies().await.unwrap();
    b.goto(&format!("{base}/signin")).await;
    b.click("a[href='/signin/oidc']").await;
    b.wait("input[name=login]").await;
    b.fill("input[name=login]", who).await;
    b.fill("input[name=password]", "any").await;
    b.click("button[type=submit]").await;
    // The consent prompt, the first time.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let url = b.c.current_url().await.unwrap();
        if url.as_str().starts_with(base) {
            break;
        }
        if let Ok(e) = b.c.find(Locator::Css("button[type=submit]")).await {
            let _ = e.click().await;
        }
        assert!(Instant::now() < deadline, "stuck at {url}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_sign_in_through_their_identity_provider_with_roles_from_their_groups() {
    let Some((chromedriver, chromium)) = tools() else {
        return;
    };
    let Some((_idp, _site, server)) = sso_site(
        json!({"dana": ["privacy-team", "canteen"], "erin": ["dpo"], "mallory": ["canteen"]}),
        false,
        "[policy.systems.directory]\n",
        "{ \"privacy-team\" = \"operator\", \"dpo\" = \"approver\" }",
    )
    .await
    else {
        return;
    };
    let base = server.base.clone();
    let b = Browser::start(&chromedriver, &chromium).await;

    // Through the provider's own login and consent pages, back signed in
    // with the role the group maps to.
    let sso = |who: &'static str| sso(&b, &base, who);
    sso("dana").await;
    b.wait(".who").await;
    let who =
        b.c.find(Locator::Css(".who span"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
    assert!(
        who.contains("sso:dana") && who.contains("operator"),
        "{who}"
    );
    // She files an erasure as sso:dana.
    b.goto(&format!("{base}/requests/new")).await;
    b.c.find(Locator::Css("#kind"))
        .await
        .unwrap()
        .select_by_value("erasure")
        .await
        .unwrap();
    b.fill("#emails", EMAIL).await;
    b.click("form[action='/requests'] button[type=submit]")
        .await;
    b.wait("[data-state='awaiting-approval']").await;
    let id = b
        .path()
        .await
        .strip_prefix("/requests/")
        .unwrap()
        .to_string();
    assert_eq!(b.count("form[action$='/approve']").await, 0);
    b.sign_out().await;

    // Erin, a DPO, approves it: four eyes across two provider accounts.
    sso("erin").await;
    b.goto(&format!("{base}/requests/{id}")).await;
    b.click("form[action$='/approve'] button").await;
    b.wait("[data-state='completed']").await;
    let page = b.c.source().await.unwrap();
    assert!(
        page.contains("sso:dana") && page.contains("sso:erin"),
        "both in the history"
    );
    b.sign_out().await;

    // Mallory's only group maps to no role: refused, no session.
    sso("mallory").await;
    let page = b.c.source().await.unwrap();
    assert!(page.contains("no role in oubli"), "{page}");
    b.goto(&format!("{base}/requests")).await;
    assert_eq!(b.path().await, "/signin", "no session for an unmapped user");

    // A callback that did not start here (no state cookie) is refused.
    b.goto(&format!(
        "{base}/signin/oidc/callback?code=stolen&state=forged"
    ))
    .await;
    let page = b.c.source().await.unwrap();
    assert!(page.contains("not started here"), "{page}");
    let _ = b.close().await;
}

/// `oubli demo --console`: after the demo, the console serves the demo's
/// store with the stand-ins still up, an erasure waiting for approval and
/// tokens that sign in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_leaves_a_console_with_a_request_to_approve() {
    use tokio::io::AsyncBufReadExt;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_oubli"))
        .args(["demo", "--out"])
        .arg(dir.path())
        .args(["--console", &format!("127.0.0.1:{port}")])
        .env("XDG_CACHE_HOME", dir.path().join("cache"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut waiting, mut erin, mut audrey) = (None, None, None);
    let deadline = Instant::now() + Duration::from_secs(180);
    while audrey.is_none() {
        let line = tokio::time::timeout_at(deadline.into(), lines.next_line())
            .await
            .expect("the demo did not offer its console")
            .unwrap()
            .expect("the demo exited");
        if let Some(id) = line.strip_suffix(" (an erasure filed by dana) waits for approval. Sign in with a token, valid for a day:") {
            waiting = Some(id.to_string());
        }
        let token = || line.rsplit(' ').next().unwrap().to_string();
        if line.trim_start().starts_with("erin ") {
            erin = Some(token());
        }
        if line.trim_start().starts_with("audrey ") {
            audrey = Some(token());
        }
    }
    let (id, erin) = (waiting.expect("the waiting request"), erin.unwrap());
    let base = format!("http://127.0.0.1:{port}");
    let cookie = session(&base, &erin);
    let (status, _, page) = get(&base, &format!("/requests/{id}"), Some(&cookie));
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("data-state=\"awaiting-approval\""), "{page}");
    assert!(
        page.contains("class=\"plan\"") && page.contains("/approve"),
        "{page}"
    );
    for system in ["genesys", "dialer", "support-mail", "crm"] {
        assert!(page.contains(&format!("id=\"sys-{system}\"")), "{system}");
    }
    let (status, _, _) = get(&base, "/systems", Some(&cookie));
    assert_eq!(status, 200);
    // The privacy center is there too, its mail kept in files.
    let mut privacy = None;
    while privacy.is_none() {
        let line = tokio::time::timeout_at(deadline.into(), lines.next_line())
            .await
            .expect("the demo did not offer its privacy center")
            .unwrap()
            .expect("the demo exited");
        if let Some(rest) = line.split(" go to ").nth(1) {
            privacy = Some(std::path::PathBuf::from(rest.split(" (").next().unwrap()));
        }
    }
    let mail = privacy.unwrap();
    let (status, _, page) = get(&base, "/privacy/", None);
    assert_eq!(status, 200, "{page}");
    let (status, h, _) = form(
        &base,
        "/privacy/ask/access",
        None,
        &[("lang", "en"), ("email", "someone@example.org")],
    );
    assert_eq!(status, 303);
    assert!(header(&h, "location")[0].starts_with("/privacy/verify/"));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let files: Vec<String> = std::fs::read_dir(&mail)
            .unwrap()
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
            .collect();
        if files.iter().any(|f| f.contains("Your code is ")) {
            break;
        }
        assert!(Instant::now() < deadline, "no code in {}", mail.display());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = child.kill().await;
}

/// A provider that gives groups only at its userinfo endpoint (the ID token
/// carries no claim beyond the subject's): the role is read there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_come_from_userinfo_when_the_id_token_carries_none() {
    let Some((chromedriver, chromium)) = tools() else {
        return;
    };
    let Some((_idp, _site, server)) = sso_site(
        json!({"erin": ["dpo"], "mallory": ["canteen"]}),
        true,
        "",
        "{ \"dpo\" = \"approver\" }",
    )
    .await
    else {
        return;
    };
    let b = Browser::start(&chromedriver, &chromium).await;
    sso(&b, &server.base, "erin").await;
    let who = b.wait(".who span").await.text().await.unwrap();
    assert!(
        who.contains("sso:erin") && who.contains("approver"),
        "{who}"
    );
    sso(&b, &server.base, "mallory").await;
    let page = b.c.source().await.unwrap();
    assert!(page.contains("no role in oubli"), "{page}");
    let _ = b.close().await;
}

/// Two `oubli serve` processes on one store (behind a load balancer, say)
/// know the same sessions, and a restart signs nobody out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_hold_across_serve_processes_and_restarts() {
    let site = Site::new(None, "").await;
    let alice = site.token("operator", "alice").await;
    let first: Server = site.serve(&[]).await;
    let second: Server = site.serve(&["--workers", "0"]).await;
    let cookie = session(&first.base, &alice);
    let (status, _, page) = get(&second.base, "/requests/new", Some(&cookie));
    assert_eq!(status, 200, "the other process knows the session");
    let csrf = csrf_of(&page);
    // A form from one process's page is taken by the other.
    let (status, h, _) = form(
        &first.base,
        "/requests",
        Some(&cookie),
        &[("_csrf", &csrf), ("kind", "access"), ("emails", EMAIL)],
    );
    assert_eq!(status, 303);
    assert!(header(&h, "location")[0].starts_with("/requests/r-"));
    // A restart of the first: still signed in.
    drop(first);
    let restarted: Server = site.serve(&[]).await;
    assert_eq!(get(&restarted.base, "/requests", Some(&cookie)).0, 200);
    // Signing out on one ends it on both.
    let (status, _, _) = form(&second.base, "/signout", Some(&cookie), &[("_csrf", &csrf)]);
    assert_eq!(status, 303);
    assert_eq!(get(&restarted.base, "/requests", Some(&cookie)).0, 303);
}

/// Retention in the console: the systems page lists each system's policies,
/// the period that applies, their next and last runs; a run's page shows
/// what is due and lets an approver (not an operator) accept it; an
/// enforcing run's page shows its certificate, checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_policies_runs_and_certificates_in_the_console() {
    let Some((chromedriver, chromium)) = tools() else {
        return;
    };
    let axe = axe_source();
    let (site, _sandbox) = Site::sandboxed(
        "\n[retention]\nskew = \"0s\"\n\n[[retention.policies]]\nid = \"mail-30d\"\n\
         system = \"support-mail\"\ncategory = \"correspondence\"\nperiod = \"30 days\"\n\
         mode = \"enforce\"\napproval_threshold = 3\nevery = \"1d\"\n\
         description = \"Support mail is kept 30 days\"\n",
    )
    .await;
    let alice = site.token("operator", "alice").await;
    let bob = site.token("approver", "bob").await;
    let test = site
        .json(&["retention", "run", "mail-30d", "--as", "alice"])
        .await;
    let test_id = test["id"].as_str().unwrap().to_string();
    let server: Server = site.serve(&[]).await;
    let base = server.base.clone();
    let b = Browser::start(&chromedriver, &chromium).await;

    b.sign_in(&base, &alice).await;
    b.goto(&format!("{base}/systems")).await;
    b.wait("table.retention").await;
    let table =
        b.c.find(Locator::Css("table.retention"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
    assert!(
        table.contains("mail-30d") && table.contains("P30D"),
        "{table}"
    );
    assert!(table.contains("awaiting-approval"), "{table}");
    accessible(&b, axe.as_deref(), "systems with retention").await;
    b.c.execute(
        "document.querySelector('#s-support-mail').scrollIntoView()",
        vec![],
    )
    .await
    .unwrap();
    b.shot("systems-retention").await;
    b.click(&format!("a[href='/retention/{test_id}']")).await;
    b.wait("dl.facts").await;
    accessible(&b, axe.as_deref(), "retention run").await;
    // An operator may not approve: no button, a forged form refused.
    assert_eq!(b.count("form[action$='/approve']").await, 0);
    let csrf = b.csrf().await;
    assert_eq!(
        b.post(
            &format!("/retention/{test_id}/approve"),
            &format!("_csrf={csrf}")
        )
        .await,
        403
    );
    b.sign_out().await;
    b.sign_in(&base, &bob).await;
    b.goto(&format!("{base}/retention/{test_id}")).await;
    b.click(&format!(
        "form[action='/retention/{test_id}/approve'] button"
    ))
    .await;
    b.wait("span.state").await;
    let state =
        b.c.find(Locator::Css("dl.facts span.state"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
    assert_eq!(state, "approved");

    let run = site
        .json(&["retention", "run", "mail-30d", "--enforce", "--as", "alice"])
        .await;
    assert_eq!(run["state"], "done", "{run}");
    b.goto(&format!("{base}/retention/{}", run["id"].as_str().unwrap()))
        .await;
    b.wait("[data-verified='true']").await;
    b.wait("[data-proof='true']").await;
    accessible(&b, axe.as_deref(), "retention certificate").await;
    b.shot("retention-certificate").await;
    // No address of any message in any page's address.
    let history = b.close().await;
    assert!(history.iter().all(|u| !u.contains('@')), "{history:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_page_shows_the_log_and_names_an_edited_event_when_checked() {
    let site = Site::new(None, "four_eyes = false").await;
    let auditor = site.token("auditor", "dora").await;
    for n in 0..3 {
        site.json(&[
            "request",
            "restrict",
            "--email",
            &format!("p{n}@example.com"),
            "--scope",
            "all",
            "--as",
            "alice",
        ])
        .await;
    }
    let signed = site.run(&["audit", "sign"]).await;
    assert!(
        signed.status.success(),
        "{}",
        super::site::text(&signed.stderr)
    );
    let server: Server = site.serve(&[]).await;
    let base = server.base.clone();
    let cookie = session(&base, &auditor);
    let (status, _, page) = get(&base, "/audit", Some(&cookie));
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("data-size=\""), "{page}");
    assert!(!page.contains("data-size=\"0\""), "{page}");
    assert!(
        page.contains("oubli-tree-head") || page.contains("&quot;root&quot;"),
        "{page}"
    );
    let csrf = csrf_of(&page);
    // Checked: it holds.
    let (status, _, page) = form(&base, "/audit/verify", Some(&cookie), &[("_csrf", &csrf)]);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("data-audit=\"ok\""), "{page}");
    // Without the form's token, nothing runs.
    let (status, _, _) = form(&base, "/audit/verify", Some(&cookie), &[("_csrf", "nope")]);
    assert_eq!(status, 403);
    // A witness's copies of the heads, pasted: they hold; one forged head
    // (another root) is named; lines that are no heads are refused by
    // their number, without being echoed.
    let heads = site.run(&["audit", "heads", "--since", "0"]).await;
    assert!(
        heads.status.success(),
        "{}",
        super::site::text(&heads.stderr)
    );
    let witness = super::site::text(&heads.stdout);
    assert!(witness.lines().count() >= 1, "{witness}");
    let (status, _, page) = form(
        &base,
        "/audit/verify",
        Some(&cookie),
        &[("_csrf", &csrf), ("heads", &witness)],
    );
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("data-audit=\"ok\""), "{page}");
    assert!(page.contains("heads a witness kept hold"), "{page}");
    let first: serde_json::Value = serde_json::from_str(witness.lines().next().unwrap()).unwrap();
    let root = first["head"]["root"].as_str().unwrap();
    let forged = witness.replacen(root, &"0".repeat(root.len()), 1);
    let (status, _, page) = form(
        &base,
        "/audit/verify",
        Some(&cookie),
        &[("_csrf", &csrf), ("heads", &forged)],
    );
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("data-audit=\"broken\""), "{page}");
    assert!(page.contains("witness"), "{page}");
    let (status, _, page) = form(
        &base,
        "/audit/verify",
        Some(&cookie),
        &[("_csrf", &csrf), ("heads", "<b>ada@example.com</b>")],
    );
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("line 1: not JSON"), "{page}");
    assert!(!page.contains("ada@"), "{page}");
    // An event edited underneath is named.
    let store = site.store().await;
    sqlx::query("UPDATE events SET actor = 'mallory' WHERE id = (SELECT MIN(id) FROM events)")
        .execute(store.pool())
        .await
        .unwrap();
    store.close().await;
    let (status, _, page) = form(&base, "/audit/verify", Some(&cookie), &[("_csrf", &csrf)]);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("data-audit=\"broken\""), "{page}");
    assert!(!page.contains("data-audit=\"ok\""), "{page}");
}
