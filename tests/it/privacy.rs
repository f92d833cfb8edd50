//! The privacy center, end to end: `oubli serve` on the vendors' stand-ins
//! with a real SMTP server on loopback (aiosmtpd, Debian's
//! `python3-aiosmtpd`, keeping what it receives in a Maildir), driven as a
//! data subject in headless Chromium: an access request filed, proven with
//! the code from the received mail, followed to its end and its answer
//! downloaded and checked against the stored answer's SHA-256; an erasure
//! filed, approved by an operator, followed to its end; and no identifier
//! in any URL the browser kept or in the server's log.
//!
//! Needs what the console's browser test needs, and aiosmtpd (`.ci/run`
//! installs it; `OUBLI_PYTHON` names a Python that has it). With
//! `OUBLI_REQUIRE_BROWSER=1` a missing one is a failure, not a skip.

use super::api::{Serve, Server};
use super::console::{Browser, accessible, artefacts, axe_source, free_port, required, tools};
use super::site::Site;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// aiosmtpd on a free loopback port, keeping mail in a Maildir.
struct Smtp {
    child: std::process::Child,
    maildir: PathBuf,
    _dir: tempfile::TempDir,
    port: u16,
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Smtp {
    fn start() -> Option<Smtp> {
        let python = std::env::var("OUBLI_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".into());
        let has = std::process::Command::new(&python)
            .args(["-c", "import aiosmtpd"])
            .output()
            .is_ok_and(|o| o.status.success());
        if !has {
            assert!(
                !required(),
                "OUBLI_REQUIRE_BROWSER=1 but {python} has no aiosmtpd"
            );
            eprintln!("no aiosmtpd: privacy center test skipped");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let maildir = dir.path().join("mail");
        let port = free_port();
        let child = std::process::Command::new(&python)
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("aiosmtpd starts");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "aiosmtpd did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Smtp {
            child,
            maildir,
            _dir: dir,
            port,
        })
    }

    /// Every message received so far, raw, oldest first.
    fn received(&self) -> Vec<String> {
        let mut files: Vec<_> = std::fs::read_dir(self.maildir.join("new"))
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
        files
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect()
    }

    /// Wait for a code in a message after the first `seen` (the relay is
    /// another process; mails telling of state changes come in between).
    async fn code_after(&self, seen: usize, to: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let all = self.received();
            if let Some(m) = all
                .iter()
                .skip(seen)
                .find(|m| m.contains("Your code is ") && m.contains(&format!("To: {to}\n")))
            {
                return code_in(m);
            }
            assert!(
                Instant::now() < deadline,
                "no code after mail #{seen}: {all:#?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Wait for a message after the first `seen` that contains `text`.
    async fn mail_after(&self, seen: usize, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let all = self.received();
            if let Some(m) = all.iter().skip(seen).find(|m| m.contains(text)) {
                return m.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no {text:?} after mail #{seen}: {all:#?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn agent_no_errors() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into()
}

fn code_in(mail: &str) -> String {
    let at = mail
        .find("Your code is ")
        .unwrap_or_else(|| panic!("no code in the mail: {mail}"))
        + "Your code is ".len();
    mail[at..at + 6].to_string()
}

/// File `kind` as the subject `email` in the browser and prove it with the
/// code the relay received: the status page's path.
async fn file_as_subject(b: &Browser, base: &str, smtp: &Smtp, kind: &str, email: &str) -> String {
    let seen = smtp.received().len();
    b.goto(&format!("{base}/privacy/?lang=en")).await;
    b.click(&format!("a[href^='/privacy/ask/{kind}']")).await;
    b.fill("#email", email).await;
    b.click("main form button[type=submit]").await;
    b.wait("#code").await;
    let code = smtp.code_after(seen, email).await;
    b.fill("#code", &code).await;
    b.click("form[action^='/privacy/verify/'] button[type=submit]")
        .await;
    b.wait("dd.state").await;
    b.path().await
}

/// The current page at desktop width (`NAME.png`) and at a phone's
/// (`NAME-phone.png`), back at desktop width after.
async fn both(b: &Browser, name: &str) {
    b.shot(name).await;
    b.c.set_window_size(390, 844).await.unwrap();
    b.shot(&format!("{name}-phone")).await;
    b.c.set_window_size(1280, 900).await.unwrap();
}

/// Reload the status page until it says `state`.
async fn until_state(b: &Browser, base: &str, path: &str, state: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        b.goto(&format!("{base}{path}")).await;
        let text = b.wait("dd.state").await.text().await.unwrap();
        if text.to_lowercase().starts_with(state) {
            return;
        }
        assert!(Instant::now() < deadline, "still {text:?}, not {state}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subject_files_proves_follows_and_downloads_their_answer_in_a_browser() {
    let Some((chromedriver, chromium)) = tools() else {
        return;
    };
    let Some(smtp) = Smtp::start() else {
        return;
    };
    let axe = axe_source();
    let (site, sandbox) = Site::sandboxed(&format!(
        "\n[api.privacy]\npublic_url = \"http://127.0.0.1\"\n\n[api.privacy.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nfrom = \"Privacy <privacy@example.com>\"\n",
        smtp.port
    ))
    .await;
    let person = sandbox.demo_person().clone();
    let server: Server = site.serve(&[]).await;
    let base = server.base.clone();
    let b = Browser::start(&chromedriver, &chromium).await;

    // The start page, on a phone and on a desktop.
    b.c.set_window_size(390, 844).await.unwrap();
    b.goto(&format!("{base}/privacy/?lang=en")).await;
    b.wait("ul.rights").await;
    accessible(&b, axe.as_deref(), "privacy start").await;
    b.shot("privacy-start-phone").await;
    b.c.set_window_size(1280, 900).await.unwrap();
    b.goto(&format!("{base}/privacy/?lang=fr")).await;
    b.wait("ul.rights").await;
    accessible(&b, axe.as_deref(), "privacy start (fr)").await;
    b.shot("privacy-start-desktop-fr").await;

    // An access request: filed once the code from the mail is given.
    b.goto(&format!("{base}/privacy/ask/access?lang=en")).await;
    b.wait("#email").await;
    accessible(&b, axe.as_deref(), "ask").await;
    both(&b, "privacy-ask").await;
    b.fill("#email", &person.email).await;
    b.click("main form button[type=submit]").await;
    b.wait("#code").await;
    accessible(&b, axe.as_deref(), "code").await;
    both(&b, "privacy-code").await;
    let first = smtp.mail_after(0, "Your code is").await;
    assert!(first.contains(&format!("To: {}", person.email)), "{first}");
    b.fill("#code", &code_in(&first)).await;
    b.click("form[action^='/privacy/verify/'] button[type=submit]")
        .await;
    b.wait("dd.state").await;
    let status = b.path().await;
    assert!(status.starts_with("/privacy/status/"), "{status}");
    // The mail with the reference carries the same link.
    let filed = smtp.mail_after(0, "/privacy/status/").await;
    assert!(filed.contains(&status), "{filed}");
    let reference = b.wait("dl.facts code").await.text().await.unwrap();
    assert!(reference.starts_with("r-"), "{reference}");

    // The workers carry it out; the page says so.
    until_state(&b, &base, &status, "done").await;
    accessible(&b, axe.as_deref(), "status").await;
    both(&b, "privacy-status").await;

    // The answer: a fresh code, then a download that is the kept answer.
    let seen = smtp.received().len();
    b.click("form[action$='/answer'] button").await;
    b.wait("#code").await;
    let code = smtp.code_after(seen, &person.email).await;
    b.fill("#code", &code).await;
    b.click("form[action^='/privacy/verify/'] button[type=submit]")
        .await;
    let link = b.wait("a.button[href$='/answer.zip']").await;
    accessible(&b, axe.as_deref(), "download").await;
    both(&b, "privacy-download").await;
    let href = link.attr("href").await.unwrap().unwrap();
    let mut r = ureq::get(&format!("{base}{href}")).call().unwrap();
    assert_eq!(r.status(), 200);
    let zip = r
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_vec()
        .unwrap();
    let sha = hex::encode(Sha256::digest(&zip));
    let shown = site.json(&["request", "show", &reference]).await;
    assert_eq!(shown["answer"]["sha256"], sha.as_str(), "the kept answer");
    let page = b.c.source().await.unwrap();
    assert!(page.contains(&sha), "the page names the SHA-256");
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
    let mut index = String::new();
    std::io::Read::read_to_string(&mut archive.by_name("index.html").unwrap(), &mut index).unwrap();
    // Or read online: the same page, read from the kept answer alone, in
    // a sandbox where nothing runs.
    b.click("a[href$='/files/index.html']").await;
    b.wait("h1").await;
    let online = b.c.source().await.unwrap();
    let title = |html: &str| {
        let at = html.find("<title>").unwrap() + 7;
        html[at..at + html[at..].find("</title>").unwrap()].to_string()
    };
    assert_eq!(title(&online), title(&index));
    both(&b, "privacy-answer-online").await;
    let files = href.replace("/answer.zip", "/files/");
    let r = ureq::get(&format!("{base}{files}manifest.json"))
        .call()
        .unwrap();
    assert!(
        r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("sandbox")
    );
    // Or by email, in a ZIP encrypted with AES-256 under a password the
    // subject chooses: the attachment holds the kept answer.
    b.goto(&format!("{base}{}", href.trim_end_matches("/answer.zip")))
        .await;
    let seen = smtp.received().len();
    b.fill("#password", "correct horse battery staple").await;
    b.click("form[action$='/mail'] button").await;
    b.wait("p[role=status]").await;
    let mail = smtp.mail_after(seen, "answer-encrypted.zip").await;
    let part = mail
        .split("filename=\"answer-encrypted.zip\"")
        .nth(1)
        .unwrap();
    let body: String = part
        .split("\n\n")
        .nth(1)
        .unwrap()
        .split("--")
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    use base64::Engine as _;
    let sealed = base64::engine::general_purpose::STANDARD
        .decode(body.as_bytes())
        .unwrap();
    let mut outer = zip::ZipArchive::new(std::io::Cursor::new(sealed)).unwrap();
    assert!(
        outer.by_name("answer.zip").is_err(),
        "the entry is encrypted: no password, no content"
    );
    let mut inner = Vec::new();
    std::io::Read::read_to_end(
        &mut outer
            .by_name_decrypt("answer.zip", b"correct horse battery staple")
            .unwrap(),
        &mut inner,
    )
    .unwrap();
    assert_eq!(hex::encode(Sha256::digest(&inner)), sha);
    assert!(
        !mail.contains("correct horse"),
        "the password is not in the mail"
    );
    // A short password, or a key that is not one, is refused.
    for form in ["password=short", "key=not-a-key"] {
        let r = agent_no_errors()
            .post(&format!("{base}{}", href.replace("/answer.zip", "/mail")))
            .header("content-type", "application/x-www-form-urlencoded")
            .send(form)
            .unwrap();
        assert_eq!(r.status(), 422, "{form}");
    }
    for bad in ["../answer.zip", "nope.html", "%2e%2e/x"] {
        let r = agent_no_errors()
            .get(&format!("{base}{files}{bad}"))
            .call()
            .unwrap();
        assert_eq!(r.status(), 404, "{bad}");
    }
    // Counted and audited.
    b.goto(&format!("{base}{status}")).await;
    let counted = b.c.source().await.unwrap();
    assert!(counted.contains("Downloaded so far: 2"), "{counted}");
    let shown = site.json(&["request", "show", &reference]).await;
    assert!(
        shown["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "answer-downloaded"),
        "{shown}"
    );
    assert!(
        shown["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "answer-viewed"),
        "{shown}"
    );
    assert!(
        shown["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "answer-mailed" && e["reason"] == "password"),
        "{shown}"
    );

    // A known and an unknown address get the same answer in the same time
    // class: nothing is looked up, and the mail goes out after the answer.
    let post = |email: &str| {
        let t = Instant::now();
        let r = agent_no_errors()
            .post(&format!("{base}/privacy/ask/access"))
            .header("content-type", "application/x-www-form-urlencoded")
            .send(format!("lang=en&email={}", email.replace('@', "%40")))
            .unwrap();
        (r.status().as_u16(), t.elapsed())
    };
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for _ in 0..3 {
        let (s1, t1) = post(&sandbox.people()[3].email);
        let (s2, t2) = post("nobody-here@example.net");
        assert_eq!((s1, s2), (303, 303));
        known.push(t1);
        unknown.push(t2);
    }
    known.sort();
    unknown.sort();
    assert!(
        known[1] < Duration::from_millis(250) && unknown[1] < Duration::from_millis(250),
        "known {known:?}, unknown {unknown:?}"
    );

    // An erasure: it waits for an operator's approval, then completes.
    let erasure = file_as_subject(&b, &base, &smtp, "erasure", &person.email).await;
    let id = b.wait("dl.facts code").await.text().await.unwrap();
    until_state(&b, &base, &erasure, "in progress: we are acting on it").await;
    let out = site.run(&["request", "approve", &id, "--as", "erin"]).await;
    assert!(out.status.success(), "{}", super::site::text(&out.stderr));
    until_state(&b, &base, &erasure, "done").await;
    // The subject is told of each change by mail.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !smtp
        .received()
        .iter()
        .any(|m| m.contains(&format!("Your request {id} is now: done")))
    {
        assert!(Instant::now() < deadline, "{:#?}", smtp.received());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let history = b.close().await;
    assert!(
        history.iter().any(|u| u.contains("/privacy/status/")),
        "the history is read: {history:?}"
    );
    let local = person.email.split('@').next().unwrap().to_string();
    let encoded = person.email.replace('@', "%40").replace('+', "%2B");
    for u in &history {
        assert!(
            !u.contains(&local) && !u.contains(&encoded),
            "an identifier in a URL: {u}"
        );
    }
    let log = server.log.lock().unwrap().clone();
    assert!(log.contains("served"), "the access log is on");
    assert!(
        !log.contains(&person.email) && !log.contains(&encoded) && !log.contains(&local),
        "an identifier in the server's log"
    );
    // Nor the status link's token: the log names routes, not their values.
    let token = status.trim_start_matches("/privacy/status/");
    assert!(log.contains("/privacy/status/{token}"), "routes are logged");
    assert!(!log.contains(token), "a status token in the server's log");
    let _ = artefacts();
}

fn status_of(url: &str) -> u16 {
    agent_no_errors().get(url).call().unwrap().status().as_u16()
}

/// `[api.privacy] listen`: the privacy center on a listener of its own,
/// serving nothing else, and nowhere else; a relay that cannot be reached
/// changes nothing the subject sees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_its_own_listener_the_privacy_center_serves_nothing_else() {
    let port = free_port();
    let site = Site::new(
        None,
        &format!(
            "\n[api.privacy]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\n\n[api.privacy.smtp]\nhost = \"127.0.0.1\"\nport = 9\ntls = \"none\"\nfrom = \"Privacy <privacy@example.com>\"\n"
        ),
    )
    .await;
    let server: Server = site.serve(&[]).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !server.log.lock().unwrap().contains("privacy center on") {
        assert!(Instant::now() < deadline, "{}", server.log.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(server.log.lock().unwrap().contains(&format!(
        "privacy center on http://127.0.0.1:{port}/privacy/"
    )));
    let own = format!("http://127.0.0.1:{port}");
    assert_eq!(status_of(&format!("{own}/privacy/")), 200);
    for path in ["/", "/signin", "/v1/requests", "/openapi.json", "/metrics"] {
        assert_eq!(status_of(&format!("{own}{path}")), 404, "{path}");
    }
    assert_eq!(status_of(&format!("{}/privacy/", server.base)), 404);
    assert_eq!(status_of(&format!("{}/signin", server.base)), 200);
    let r = agent_no_errors()
        .post(&format!("{own}/privacy/ask/access"))
        .header("content-type", "application/x-www-form-urlencoded")
        .send("lang=en&email=ada%40example.com")
        .unwrap();
    assert_eq!(r.status(), 303);
    // The relay refused; the log says so, without the address.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !server.log.lock().unwrap().contains("mail not sent") {
        assert!(Instant::now() < deadline, "{}", server.log.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!server.log.lock().unwrap().contains("ada@example.com"));
}

/// A relay password that cannot be read stops `serve` with one line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_to_start_without_its_mail_relays_password() {
    let site = Site::new(
        None,
        "\n[api.privacy]\npublic_url = \"https://privacy.example.com\"\n\n[api.privacy.smtp]\nhost = \"smtp.example.com\"\nusername = \"oubli\"\npassword = { env = \"OUBLI_TEST_MISSING_SMTP_PASSWORD\" }\nfrom = \"Privacy <privacy@example.com>\"\n",
    )
    .await;
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        site.command(&["serve", "--listen", "127.0.0.1:0"])
            .env_remove("OUBLI_TEST_MISSING_SMTP_PASSWORD")
            .output(),
    )
    .await
    .expect("serve stopped")
    .unwrap();
    let err = super::site::text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.contains("api.privacy.smtp.password")
            && last.contains("OUBLI_TEST_MISSING_SMTP_PASSWORD"),
        "{err}"
    );
}
