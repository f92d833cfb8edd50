//! The plugin runtime against real components built with the host
//! (`plugins/testing/*`, `plugins/example-rest`): sandbox limits, network
//! grants, load checks, and one connector against a local HTTP server.

use oubli_model::{ConnectorError, EraseMode, ExternalId, Located, RecordRef, Status, Subject};
use oubli_runtime::{
    CallError, Connector, ConnectorSpec, LoadError, Origin, Runtime, RuntimeOptions,
};
use oubli_testing::plugins as built_plugins;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// One engine for the whole test binary, as in the product (one per process).
fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        Runtime::new(&RuntimeOptions {
            cache_dir: None,
            no_cache: true,
        })
        .expect("runtime starts")
    })
}

/// Load plugin `name` from the built component `wasm`, with what
/// `configure` grants it (nothing by default).
async fn load(
    name: &str,
    wasm: &str,
    configure: impl FnOnce(&mut ConnectorSpec),
) -> Result<Connector, LoadError> {
    let mut spec = ConnectorSpec::new(name, wasm);
    configure(&mut spec);
    runtime().load(&spec).await
}

async fn hostile(configure: impl FnOnce(&mut ConnectorSpec)) -> Connector {
    load("hostile", built_plugins::HOSTILE, configure)
        .await
        .expect("hostile plugin loads")
}

/// Grant nothing.
fn none(_: &mut ConnectorSpec) {}

/// Grant an origin (and loopback addresses when `loopback`).
fn grant(s: &mut ConnectorSpec, origin: &str, loopback: bool) {
    s.grants.hosts.push(Origin::parse(origin).unwrap());
    s.grants.allow_loopback = loopback;
}

/// Set a configuration value.
fn set(s: &mut ConnectorSpec, key: &str, value: &str) {
    s.settings.insert(key.into(), value.into());
}

/// Grant a secret read from a new file holding `value`.
fn secret(s: &mut ConnectorSpec, key: &str, value: &str, dir: &Path) {
    let path = dir.join(key);
    std::fs::write(&path, value).unwrap();
    s.secrets
        .insert(key.into(), oubli_runtime::SecretSource::File(path));
}

fn mode(name: &str) -> Subject {
    Subject {
        names: vec![name.into()],
        emails: vec!["ada@example.com".into()],
        ..Default::default()
    }
}

fn fetch(url: &str) -> Subject {
    Subject {
        names: vec!["fetch".into()],
        external_ids: vec![ExternalId {
            namespace: "url".into(),
            id: url.into(),
        }],
        ..Default::default()
    }
}

/// A TCP listener that counts connections and answers each with a small JSON
/// body, to prove what did (or did not) reach it.
async fn counting_server() -> (SocketAddr, Arc<AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let body = r#"{"reached":true}"#;
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(reply.as_bytes()).await;
            });
        }
    });
    (addr, hits)
}

/// A keep-alive HTTP/1.1 server that counts connections and answers every
/// GET on each with `body_len` bytes.
async fn keepalive_server(body_len: usize) -> (SocketAddr, Arc<AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut pending = Vec::new();
                let mut buf = vec![0u8; 4096];
                loop {
                    while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                        pending.drain(..end + 4);
                        let head = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: {body_len}\r\n\r\n"
                        );
                        if sock.write_all(head.as_bytes()).await.is_err()
                            || sock.write_all(&vec![b'x'; body_len]).await.is_err()
                        {
                            return;
                        }
                    }
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => pending.extend_from_slice(&buf[..n]),
                    }
                }
            });
        }
    });
    (addr, connections)
}

#[tokio::test]
async fn requests_in_one_call_reuse_a_connection_and_open_at_most_sixteen() {
    let (addr, connections) = keepalive_server(64).await;
    let origin = format!("http://{addr}");
    let p = hostile(|s| {
        grant(s, &origin, true);
        set(s, "request_host", &origin);
    })
    .await;
    let mut subject = fetch(&format!("{origin}/x"));
    subject.names = vec!["fetch-many".into()];
    assert_eq!(summary(p.locate(&subject).await), "5");
    assert_eq!(
        connections.load(Ordering::SeqCst),
        1,
        "five requests, one connection"
    );

    // Held responses keep their connections busy: the 17th is refused.
    let (addr, connections) = keepalive_server(4 << 20).await;
    let origin = format!("http://{addr}");
    let p = hostile(|s| {
        grant(s, &origin, true);
        set(s, "request_host", &origin);
    })
    .await;
    let mut subject = fetch(&format!("{origin}/x"));
    subject.names = vec!["fetch-hold".into()];
    let r = p.locate(&subject).await;
    assert!(
        matches!(&r, Err(CallError::Connector(ConnectorError::Denied(_)))),
        "{r:?}"
    );
    assert_eq!(connections.load(Ordering::SeqCst), 16);
}

fn summary(r: Result<Vec<Located>, CallError>) -> String {
    let located = r.expect("call succeeds");
    assert_eq!(located.len(), 1);
    located[0].summary.clone()
}

#[tokio::test]
async fn trivial_plugin_answers_locate() {
    let p = load("trivial", built_plugins::TRIVIAL, none).await.unwrap();
    assert_eq!(p.manifest().id, "trivial");
    let found = p
        .locate(&Subject {
            emails: vec!["a@x.org".into(), "bob@example.com".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    let ids: Vec<_> = found.iter().map(|l| l.reference.id.as_str()).collect();
    assert_eq!(ids, ["7", "15"]);
    // Operations it does not implement answer not-supported from the SDK.
    let e = p
        .erase(
            &[RecordRef {
                kind: "x".into(),
                id: "1".into(),
            }],
            EraseMode::Delete,
        )
        .await;
    assert!(
        matches!(
            e,
            Err(CallError::Connector(ConnectorError::NotSupported(_)))
        ),
        "{e:?}"
    );
}

#[tokio::test]
async fn infinite_loop_times_out_within_the_deadline_and_the_next_call_succeeds() {
    let p = hostile(|s| s.limits.timeout = Duration::from_millis(300)).await;
    let start = Instant::now();
    let r = p.locate(&mode("loop")).await;
    let took = start.elapsed();
    assert!(matches!(r, Err(CallError::Timeout(_))), "{r:?}");
    assert!(
        took >= Duration::from_millis(300),
        "stopped early: {took:?}"
    );
    // Without the deadline the loop never ends; the bound leaves room for a
    // busy machine.
    assert!(took < Duration::from_secs(10), "not stopped: {took:?}");
    assert_eq!(summary(p.locate(&mode("fine")).await), "ok");
}

#[tokio::test]
async fn memory_growth_is_stopped_at_the_limit() {
    let p = hostile(|s| s.limits.memory = 32 << 20).await;
    let r = p.locate(&mode("grow")).await;
    assert_eq!(r, Err(CallError::MemoryLimit(32 << 20)));
    assert_eq!(summary(p.locate(&mode("fine")).await), "ok");
}

#[tokio::test]
async fn panic_and_deep_recursion_trap_without_harming_the_host() {
    let p = hostile(none).await;
    let r = p.locate(&mode("panic")).await;
    assert!(
        matches!(&r, Err(CallError::Trap(m)) if m.contains("unreachable")),
        "{r:?}"
    );
    // Rust guests keep large frames on a shadow stack in linear memory, so
    // deep recursion ends either in wasm's own stack-overflow trap or in an
    // out-of-bounds access below the shadow stack; both are contained.
    let r = p.locate(&mode("recurse")).await;
    assert!(
        matches!(&r, Err(CallError::Trap(m)) if m == "stack overflow" || m.contains("out of bounds memory access")),
        "{r:?}"
    );
    assert_eq!(summary(p.locate(&mode("fine")).await), "ok");
}

#[tokio::test]
async fn a_huge_result_is_refused() {
    let p = hostile(|s| {
        s.limits.memory = 64 << 20;
        s.limits.max_output = 1 << 20;
    })
    .await;
    // Far over (8 MiB), just over (by 100 bytes), and just under the 1 MiB
    // cap. Refused while being copied out of the connector, so the host
    // never holds more than the cap; the connector's fault, so not retried.
    for m in ["huge", "size:1048676"] {
        let r = p.locate(&mode(m)).await;
        // `size: None`: refused while being copied, so never measured.
        assert!(
            matches!(
                r,
                Err(CallError::OutputTooLarge {
                    size: None,
                    limit: 1048576
                })
            ),
            "{m}: {r:?}"
        );
        let e = r.unwrap_err();
        assert!(!e.is_transient(), "{m}: {e}");
        assert_eq!(e.kind(), "output-too-large");
    }
    assert_eq!(
        summary(p.locate(&mode("size:1000000")).await).len(),
        1_000_000
    );
}

#[tokio::test]
async fn host_resources_held_for_a_connector_are_capped_per_call() {
    // 8,000 header-field sets of 120 KB each would make the host hold about
    // 1 GB for a connector whose own memory is capped at 64 MiB.
    let p = hostile(none).await;
    let r = p.locate(&mode("fields-bomb")).await;
    assert!(
        matches!(&r, Err(CallError::ResourceLimit(m)) if m.contains("header fields larger than 32768")),
        "{r:?}"
    );
    assert!(!r.unwrap_err().is_transient());
    // Many small ones: the count is capped too.
    let r = p.locate(&mode("fields-many")).await;
    assert!(
        matches!(&r, Err(CallError::ResourceLimit(m)) if m.contains("more than 256")),
        "{r:?}"
    );
    // The next call starts with a fresh budget.
    assert_eq!(summary(p.locate(&mode("fine")).await), "ok");
}

#[tokio::test]
async fn a_component_importing_sockets_is_refused_at_load_naming_the_import() {
    let e = load("sockets", built_plugins::SOCKETS, none)
        .await
        .err()
        .expect("refused");
    assert!(
        matches!(&e, LoadError::DeniedImport { import, .. } if import.starts_with("wasi:sockets/")),
        "{e:?}"
    );
    assert!(e.to_string().contains("never serves (no sockets"), "{e}");
}

#[tokio::test]
async fn the_subjects_identifiers_are_masked_in_what_a_connector_logs_and_answers() {
    let (log, _guard) = capture_log();
    let p = hostile(none).await;
    let subject = Subject {
        names: vec!["echo".into(), "Camille Martin".into()],
        emails: vec!["Camille.Martin@example.org".into()],
        phones: vec!["+442079460123".into()],
        external_ids: vec![ExternalId {
            namespace: "crm.contact".into(),
            id: "C-1042".into(),
        }],
    };
    let r = p.locate(&subject).await;
    let Err(CallError::Connector(ConnectorError::Invalid(message))) = r else {
        panic!("{r:?}")
    };
    let logged = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    assert!(
        logged.contains("looking for") && logged.contains("national"),
        "{logged}"
    );
    for text in [&message, &logged] {
        for leak in ["amille", "artin", "7946", "0123", "C-1042", "example.org"] {
            assert!(!text.contains(leak), "{leak} in {text}");
        }
        assert!(
            text.contains("[email]") && text.contains("[phone]"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn no_state_survives_between_operations() {
    let p = hostile(none).await;
    assert_eq!(summary(p.locate(&mode("remember")).await), "nothing");
    // A long-lived instance would answer "ada@example.com" here.
    assert_eq!(summary(p.locate(&mode("remember")).await), "nothing");
}

/// A `Write` into shared memory, to capture what the host logs.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Capture everything this test's thread logs, at every level, until the
/// guard drops (the tests run on a current-thread runtime).
fn capture_log() -> (Captured, tracing::subscriber::DefaultGuard) {
    let log = Captured::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    (log, tracing::subscriber::set_default(subscriber))
}

#[tokio::test]
async fn a_log_flood_is_capped_and_the_call_completes() {
    use oubli_runtime::capability::log::{MAX_LOG_MESSAGE, MAX_LOGS_PER_CALL};
    // The connector logs 10,000 lines of 4 KiB (40 MiB).
    let (log, _guard) = capture_log();
    let p = hostile(none).await;
    assert_eq!(summary(p.locate(&mode("log-flood")).await), "flooded");
    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("yyyy")).collect();
    assert_eq!(
        lines.len(),
        MAX_LOGS_PER_CALL as usize - 1,
        "one line per kept message"
    );
    assert!(
        lines.iter().all(|l| l.len() < MAX_LOG_MESSAGE + 200),
        "each message is cut"
    );
    assert!(text.contains("log limit of 200 messages per call reached"));
    assert!(text.len() < (MAX_LOGS_PER_CALL as usize + 10) * (MAX_LOG_MESSAGE + 200));
}

#[tokio::test]
async fn request_to_an_ungranted_host_is_denied_and_nothing_arrives() {
    let (addr, hits) = counting_server().await;
    let p = hostile(none).await;
    let r = p.locate(&fetch(&format!("http://{addr}/people"))).await;
    assert!(
        matches!(&r, Err(CallError::Connector(ConnectorError::Denied(m))) if m.contains("not granted")),
        "{r:?}"
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_granted_name_resolving_to_loopback_is_denied_without_a_loopback_grant() {
    let (addr, hits) = counting_server().await;
    let origin = format!("http://localhost:{}", addr.port());
    let p = hostile(|s| {
        grant(s, &origin, false);
        set(s, "request_host", &origin);
    })
    .await;
    assert!(
        p.warnings().iter().all(|w| !w.contains("asks for http")),
        "{:?}",
        p.warnings()
    );
    let r = p.locate(&fetch(&format!("{origin}/x"))).await;
    assert!(
        matches!(&r, Err(CallError::Connector(ConnectorError::Denied(m))) if m.contains("range not granted")),
        "{r:?}"
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

/// Every IPv6 spelling that embeds 127.0.0.1 is judged as loopback: with a
/// grant of the literal but no loopback grant, the host refuses on the
/// address (destination prohibited) before any connection.
#[tokio::test]
async fn ipv6_spellings_of_loopback_are_refused_before_connecting() {
    let (addr, hits) = counting_server().await;
    let port = addr.port();
    for spelling in [
        "::7f00:1",        // IPv4-compatible
        "::ffff:7f00:1",   // IPv4-mapped
        "::ffff:0:7f00:1", // IPv4-translated
        "2002:7f00:1::1",  // 6to4
        "2001:0:7f00:1::", // Teredo server
        "64:ff9b::7f00:1", // NAT64
        "64:ff9b:1::7f00:1",
    ] {
        let origin = format!("http://[{spelling}]:{port}");
        let p = hostile(|s| {
            grant(s, &origin, false);
            set(s, "request_host", &origin);
        })
        .await;
        let r = p.locate(&fetch(&format!("{origin}/x"))).await;
        assert!(
            matches!(&r, Err(CallError::Connector(ConnectorError::Denied(m))) if m.contains("range not granted")),
            "{spelling}: {r:?}"
        );
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_granted_loopback_host_is_reached() {
    let (addr, hits) = counting_server().await;
    let origin = format!("http://127.0.0.1:{}", addr.port());
    let p = hostile(|s| {
        grant(s, &origin, true);
        set(s, "request_host", &origin);
    })
    .await;
    assert_eq!(
        summary(p.locate(&fetch(&format!("{origin}/x"))).await),
        r#"{"reached":true}"#
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_grant_the_manifest_does_not_ask_for_stays_unreachable() {
    let (addr, hits) = counting_server().await;
    let origin = format!("http://127.0.0.1:{}", addr.port());
    let p = hostile(|s| grant(s, &origin, true)).await;
    assert!(
        p.warnings()
            .iter()
            .any(|w| w.contains("does not ask for it")),
        "{:?}",
        p.warnings()
    );
    let r = p.locate(&fetch(&format!("{origin}/x"))).await;
    assert!(
        matches!(r, Err(CallError::Connector(ConnectorError::Denied(_)))),
        "{r:?}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_manifest_asking_for_an_ungranted_host_is_reported() {
    let p = hostile(|s| set(s, "request_host", "https://api.mypurecloud.com")).await;
    assert!(
        p.warnings()
            .iter()
            .any(|w| w
                == "the connector asks for https://api.mypurecloud.com:443, which is not granted"),
        "{:?}",
        p.warnings()
    );
}

#[tokio::test]
async fn an_import_the_host_does_not_provide_is_refused_naming_it() {
    let e = load("bad", built_plugins::BAD_IMPORT, none)
        .await
        .err()
        .expect("refused");
    assert!(
        matches!(&e, LoadError::UnknownImport { import, .. } if import == "test:bad/raw-socket"),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .ends_with("imports `test:bad/raw-socket`, which this host does not provide"),
        "{e}"
    );
}

#[tokio::test]
async fn an_unsupported_contract_version_is_refused() {
    let e = load("hostile", built_plugins::HOSTILE, |s| {
        set(s, "wit_version", "0.3.0")
    })
    .await
    .err()
    .expect("refused");
    assert_eq!(
        e.to_string(),
        "hostile: built against contract version \"0.3.0\"; this host serves 0.2.0, 0.1.0"
    );
    // A manifest must name the version the component implements.
    let e = load("hostile", built_plugins::HOSTILE, |s| {
        set(s, "wit_version", "0.1.0")
    })
    .await
    .err()
    .expect("refused");
    assert_eq!(
        e.to_string(),
        "hostile: its manifest says contract version \"0.1.0\", but it implements 0.2.0"
    );
}

/// A component built against contract 0.1.0 (with that version's SDK)
/// loads and runs beside 0.2.0 ones: its records carry no role, and what
/// 0.1 lacks (`detach`) answers not-supported.
#[tokio::test]
async fn a_contract_0_1_component_keeps_working() {
    let c = load("legacy", oubli_testing::EXAMPLE_REST_V0_1, |s| {
        set(s, "base_url", "http://127.0.0.1:9/api")
    })
    .await
    .expect("a 0.1.0 component loads");
    assert_eq!(c.manifest().wit_version, "0.1.0");
    assert!(
        c.info()
            .imports
            .iter()
            .any(|i| i == "oubli:connector/host@0.1.0")
    );
    let subject = oubli_model::Subject {
        emails: vec!["ada@example.com".into()],
        ..Default::default()
    };
    let e = c.detach(&subject, &[]).await.unwrap_err();
    assert_eq!(e.kind(), "not-supported", "{e}");
    assert!(c.manifest().retention.is_empty());
    let e = c
        .sweep(&sweep_query("anything", None, 10))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), "not-supported", "{e}");
    // Its calls run: the directory it was given is not there, which it
    // says as a 0.1 connector says it.
    let e = c.locate(&subject).await.unwrap_err();
    assert!(matches!(e.kind(), "unavailable" | "denied"), "{e}");
}

fn sweep_query(category: &str, after: Option<i64>, limit: u32) -> oubli_model::SweepQuery {
    oubli_model::SweepQuery {
        category: category.into(),
        trigger: "created".into(),
        cutoff: 1_000_000,
        after: after.map(|at| oubli_model::SweepKey {
            at,
            id: format!("{at:012}"),
        }),
        limit,
    }
}

/// A sweep's page is the host's to trust only as asked: in order, after its
/// start, before the cutoff, no longer than the limit. Anything else is the
/// connector's fault, refused whole (the host would otherwise erase what it
/// did not ask about); secrets are masked in what it says.
#[tokio::test]
async fn a_sweep_page_is_refused_unless_it_is_the_page_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let p = hostile(|s| secret(s, "token", "s3cr3t-t0ken", dir.path())).await;
    let page = p
        .sweep(&sweep_query("honest", Some(5_000), 3))
        .await
        .unwrap();
    let ats: Vec<i64> = page.iter().map(|d| d.at).collect();
    assert_eq!(ats, [6_000, 7_000, 8_000]);
    for bad in ["disorder", "at-cutoff", "behind", "too-many"] {
        let e = p
            .sweep(&sweep_query(bad, Some(5_000), 3))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), "internal", "{bad}: {e}");
    }
    let page = p.sweep(&sweep_query("secret", None, 3)).await.unwrap();
    assert_eq!(page[0].summary, "token [secret]");
}

/// A manual task is carried whole within generous bounds, and never cut
/// silently: a step too long ends in `…`, steps past the limit are counted
/// in a last one; the subject's identifiers are masked in it.
#[tokio::test]
async fn a_manual_task_is_kept_whole_within_its_bounds() {
    let p = hostile(|_| {}).await;
    let mut subject = mode("manual");
    subject.emails = vec!["ada@example.com".into()];
    let e = p.locate(&subject).await.unwrap_err();
    let oubli_runtime::CallError::Connector(oubli_model::ConnectorError::Manual(task)) = e else {
        panic!("{e}");
    };
    assert_eq!(
        task.steps.len(),
        1001,
        "1000 steps and the count of the rest"
    );
    assert!(
        task.steps[1000].contains("200 more steps"),
        "{}",
        task.steps[1000]
    );
    assert!(task.steps[0].ends_with('…') && task.steps[0].len() <= 4096 + 3);
    assert_eq!(task.steps[1], "step 1: shred ticket 1 of [email]");
    assert_eq!(task.records.len(), 1200);
}

#[tokio::test]
async fn secrets_reach_the_plugin_only_when_asked_for_and_granted() {
    let dir = tempfile::tempdir().unwrap();
    let p = hostile(|s| {
        secret(s, "token", "s3cr3t-value", dir.path());
        secret(s, "other", "unrelated", dir.path());
    })
    .await;
    // The connector got the value (it echoes it back), and the host masks
    // it in what the connector says.
    assert_eq!(summary(p.locate(&mode("secret")).await), "[secret]");
    assert_eq!(p.info().secrets, vec!["token".to_string()]);
    assert!(
        p.warnings()
            .iter()
            .any(|w| w.contains("secret `other` is granted but not asked for"))
    );
    let shown = format!("{:?}", p.info());
    assert!(!shown.contains("s3cr3t-value"), "secret in Debug output");
}

#[tokio::test]
async fn an_unset_secret_variable_refuses_the_plugin_naming_the_key() {
    let e = load("hostile", built_plugins::HOSTILE, |s| {
        s.secrets.insert(
            "token".into(),
            oubli_runtime::SecretSource::Env("OUBLI_TEST_NEVER_SET".into()),
        );
    })
    .await
    .err()
    .expect("refused");
    assert_eq!(
        e.to_string(),
        "hostile: secret `token`: environment variable OUBLI_TEST_NEVER_SET is not set (or not UTF-8)"
    );
}

#[tokio::test]
async fn files_that_are_not_components_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("module.wasm");
    // The smallest core module: magic + version 1.
    std::fs::write(&module, b"\0asm\x01\0\0\0").unwrap();
    let e = load("m", module.to_str().unwrap(), none)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("a core WebAssembly module, not a component"),
        "{e}"
    );

    let garbage = dir.path().join("garbage.wasm");
    std::fs::write(&garbage, b"#!/bin/sh\necho pwned\n").unwrap();
    let e = load("g", garbage.to_str().unwrap(), none)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("not a WebAssembly file"), "{e}");

    let truncated = dir.path().join("truncated.wasm");
    let bytes = std::fs::read(built_plugins::TRIVIAL).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let e = load("t", truncated.to_str().unwrap(), none)
        .await
        .err()
        .unwrap();
    assert!(matches!(e, LoadError::Compile { .. }), "{e:?}");
    assert!(!e.to_string().contains('\n'));

    let missing = dir.path().join("missing.wasm");
    let e = load("x", missing.to_str().unwrap(), none)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.starts_with(&format!("cannot read {}", missing.display())),
        "{e}"
    );
}

#[tokio::test]
async fn compiled_code_is_cached_by_digest() {
    use oubli_runtime::cache::CacheOutcome;
    let dir = tempfile::tempdir().unwrap();
    let rt = Runtime::new(&RuntimeOptions {
        cache_dir: Some(dir.path().join("compiled")),
        no_cache: false,
    })
    .unwrap();
    let path = Path::new(built_plugins::TRIVIAL);
    let (_, digest, first) = rt.compile(path).unwrap();
    let (_, _, second) = rt.compile(path).unwrap();
    assert_eq!((first, second), (CacheOutcome::Compiled, CacheOutcome::Hit));
    let entries: Vec<_> = std::fs::read_dir(dir.path().join("compiled"))
        .unwrap()
        .collect();
    assert_eq!(entries.len(), 1);
    let name = entries[0]
        .as_ref()
        .unwrap()
        .file_name()
        .into_string()
        .unwrap();
    assert!(name.starts_with(&hex_of(&digest)), "{name}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("compiled"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }
    // A corrupted entry is discarded and recompiled, never trusted.
    let entry = entries[0].as_ref().unwrap().path();
    std::fs::write(&entry, b"not compiled code").unwrap();
    let (_, _, third) = rt.compile(path).unwrap();
    assert_eq!(third, CacheOutcome::Compiled);
}

fn hex_of(d: &[u8; 32]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn concurrent_calls_each_get_their_own_instance() {
    let p = Arc::new(hostile(|s| s.limits.concurrency = 3).await);
    let mut tasks = Vec::new();
    for i in 0..12 {
        let p = p.clone();
        tasks.push(tokio::spawn(async move {
            let subject = Subject {
                names: vec!["remember".into()],
                emails: vec![format!("person{i}@example.com")],
                ..Default::default()
            };
            summary(p.locate(&subject).await)
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), "nothing");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_concurrency_limit_queues_extra_calls() {
    // Two busy loops of 200 ms on two worker threads: with a limit of 1 they
    // must run one after the other. (Without the limit they would overlap;
    // only the lower bound is asserted, which load on the machine cannot
    // break.)
    async fn two_loops(limit: u32) -> Duration {
        let p = Arc::new(
            hostile(|s| {
                s.limits.concurrency = limit;
                s.limits.timeout = Duration::from_millis(200);
            })
            .await,
        );
        let start = Instant::now();
        let tasks: Vec<_> = (0..2)
            .map(|_| {
                let p = p.clone();
                tokio::spawn(async move { p.locate(&mode("loop")).await })
            })
            .collect();
        for t in tasks {
            assert!(matches!(t.await.unwrap(), Err(CallError::Timeout(_))));
        }
        start.elapsed()
    }
    let queued = two_loops(1).await;
    assert!(
        queued >= Duration::from_millis(400),
        "limit 1 ran in parallel: {queued:?}"
    );
}

mod people_directory {
    //! The example connector against a local stand-in of its REST API
    //! (`oubli_testing::people_directory`).
    use super::*;
    use oubli_testing::people_directory::serve;

    async fn connector(addr: SocketAddr) -> Connector {
        let dir = tempfile::tempdir().unwrap();
        load("people", built_plugins::EXAMPLE_REST, |s| {
            grant(s, &format!("http://127.0.0.1:{}", addr.port()), true);
            set(
                s,
                "base_url",
                &format!("http://127.0.0.1:{}/api", addr.port()),
            );
            secret(s, "token", "dir-token", dir.path());
        })
        .await
        .expect("example connector loads")
    }

    fn ada() -> Subject {
        Subject {
            emails: vec!["ada+calls@example.com".into()],
            phones: vec!["+33612345678".into()],
            ..Default::default()
        }
    }

    /// A request without a body goes out with none: a DELETE used to carry
    /// an empty chunked body, which a server that does not read it answers
    /// and then closes the connection on (the next request on it then
    /// failed as a reset).
    #[tokio::test]
    async fn a_request_without_a_body_sends_none() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Two searches (email, phone) and one delete, on whatever
        // connections; each request head answered as it arrives.
        let heads = tokio::spawn(async move {
            let mut heads: Vec<String> = Vec::new();
            while heads.len() < 3 {
                let (mut conn, _) = listener.accept().await.unwrap();
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while heads.len() < 3 {
                    let n = conn.read(&mut chunk).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                        buf.drain(..end + 4);
                        let answer: &[u8] = if head.starts_with("delete") {
                            b"HTTP/1.1 204 No Content\r\n\r\n"
                        } else {
                            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 13\r\n\r\n{\"people\":[]}"
                        };
                        conn.write_all(answer).await.unwrap();
                        heads.push(head);
                    }
                }
            }
            heads
        });
        let p = connector(addr).await;
        assert!(p.locate(&ada()).await.unwrap().is_empty());
        let gone = p
            .erase(
                &[RecordRef {
                    kind: "person".into(),
                    id: "p9".into(),
                }],
                EraseMode::Delete,
            )
            .await
            .unwrap();
        assert_eq!(gone[0].status, Status::Done);
        let heads = heads.await.unwrap();
        assert!(heads[2].starts_with("delete /api/people/p9 "), "{heads:?}");
        for head in heads {
            assert!(!head.contains("transfer-encoding"), "{head}");
            assert!(!head.contains("content-length"), "{head}");
        }
    }

    #[tokio::test]
    async fn locate_export_rectify_erase() {
        let (addr, dir) = serve().await;
        let p = connector(addr).await;
        assert!(p.warnings().is_empty(), "{:?}", p.warnings());

        // Both records share the phone; the '+' in the email survives
        // percent-encoding; the one under legal hold says so.
        let found = p.locate(&ada()).await.unwrap();
        let ids: Vec<_> = found.iter().map(|l| l.reference.id.as_str()).collect();
        assert_eq!(ids, ["p1", "p2"]);
        assert_eq!(found[0].created_at, Some(1_700_000_000_000));
        assert_eq!(
            found[1].hold.as_deref(),
            Some("unpaid invoice under dispute")
        );

        let refs: Vec<RecordRef> = found.iter().map(|l| l.reference.clone()).collect();
        let exported = p.export(&refs).await.unwrap();
        let notes = exported[0]
            .fields
            .iter()
            .find(|f| f.name == "notes")
            .unwrap();
        assert_eq!(notes.value, "prefers email");
        assert!(
            exported[1].fields.iter().all(|f| f.name != "notes"),
            "empty fields are skipped"
        );

        let outcome = p
            .rectify(
                &refs[0],
                &[oubli_model::Change {
                    field: "name".into(),
                    new_value: Some("Ada King".into()),
                }],
            )
            .await
            .unwrap();
        assert_eq!(outcome.status, Status::Done);
        let again = p.export(&refs[..1]).await.unwrap();
        assert!(
            again[0]
                .fields
                .iter()
                .any(|f| f.name == "name" && f.value == "Ada King")
        );

        let outcomes = p.erase(&refs, EraseMode::Delete).await.unwrap();
        assert_eq!(outcomes[0].status, Status::Done);
        assert!(matches!(&outcomes[1].status, Status::Retained(r) if r.contains("legal hold")));
        let left = p.locate(&ada()).await.unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].reference.id, "p2");
        let gone = p.erase(&refs[..1], EraseMode::Delete).await.unwrap();
        assert_eq!(gone[0].status, Status::NotFound);
        assert!(dir.requests.load(Ordering::SeqCst) >= 4);
    }

    #[tokio::test]
    async fn rate_limiting_surfaces_retry_after() {
        let (addr, dir) = serve().await;
        let p = connector(addr).await;
        dir.throttle.store(1, Ordering::SeqCst);
        let r = p.locate(&ada()).await;
        assert_eq!(r, Err(CallError::Connector(ConnectorError::RateLimited(7))));
        assert!(r.unwrap_err().is_transient());
        assert_eq!(p.locate(&ada()).await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_wrong_token_is_denied() {
        let (addr, _dir) = serve().await;
        let p = load("people", built_plugins::EXAMPLE_REST, |s| {
            grant(s, &format!("http://127.0.0.1:{}", addr.port()), true);
            set(
                s,
                "base_url",
                &format!("http://127.0.0.1:{}/api", addr.port()),
            );
        })
        .await
        .unwrap();
        let r = p.locate(&ada()).await;
        assert!(
            matches!(&r, Err(CallError::Connector(ConnectorError::Denied(m))) if m.contains("HTTP 401") && !m.contains("ada")),
            "{r:?}"
        );
    }

    #[tokio::test]
    async fn a_required_config_key_is_checked_at_load() {
        let e = load("people", built_plugins::EXAMPLE_REST, none)
            .await
            .err()
            .unwrap();
        assert!(
            e.to_string()
                .starts_with("people: required configuration key `base_url` is not set"),
            "{e}"
        );
    }
}

mod misbehaving_server {
    //! The SDK's HTTP client, through the example connector, against a server
    //! that answers badly: every failure is a connector error with a useful
    //! message, and the host keeps serving.
    use super::*;
    use axum::Router;
    use axum::http::StatusCode;
    use axum::response::{IntoResponse, Response};
    use axum::routing::get;

    async fn serve(answer: fn() -> Response) -> SocketAddr {
        let app = Router::new().route("/api/people", get(move || async move { answer() }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    }

    /// The example connector pointed at `addr`, then one `locate`.
    async fn locate_at(addr: SocketAddr, timeout: Duration) -> Result<Vec<Located>, CallError> {
        let p = load("people", built_plugins::EXAMPLE_REST, |s| {
            grant(s, &format!("http://127.0.0.1:{}", addr.port()), true);
            set(
                s,
                "base_url",
                &format!("http://127.0.0.1:{}/api", addr.port()),
            );
            s.limits.timeout = timeout;
            s.limits.memory = 128 << 20;
        })
        .await
        .unwrap();
        p.locate(&Subject {
            emails: vec!["ada@example.com".into()],
            ..Default::default()
        })
        .await
    }

    async fn locate_against(
        answer: fn() -> Response,
        timeout: Duration,
    ) -> Result<Vec<Located>, CallError> {
        locate_at(serve(answer).await, timeout).await
    }

    fn connector_error(r: Result<Vec<Located>, CallError>) -> ConnectorError {
        match r {
            Err(CallError::Connector(e)) => e,
            other => panic!("expected a connector error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn malformed_json_is_an_internal_error_saying_where() {
        let e = connector_error(
            locate_against(
                || (StatusCode::OK, "{\"people\": [ {\"id\": ").into_response(),
                Duration::from_secs(10),
            )
            .await,
        );
        assert!(
            matches!(&e, ConnectorError::Internal(m) if m.contains("not the expected JSON") && m.contains("truncated")),
            "{e:?}"
        );
        let e = connector_error(
            locate_against(
                || (StatusCode::OK, "{\"persons\": []}").into_response(),
                Duration::from_secs(10),
            )
            .await,
        );
        assert!(
            matches!(&e, ConnectorError::Internal(m) if m.contains("unexpected shape")),
            "{e:?}"
        );
    }

    #[tokio::test]
    async fn server_errors_and_unexpected_statuses_are_classified() {
        let e = connector_error(
            locate_against(
                || StatusCode::SERVICE_UNAVAILABLE.into_response(),
                Duration::from_secs(10),
            )
            .await,
        );
        assert!(
            matches!(&e, ConnectorError::Unavailable(m) if m.contains("HTTP 503")),
            "{e:?}"
        );
        let e = connector_error(
            locate_against(
                || StatusCode::IM_A_TEAPOT.into_response(),
                Duration::from_secs(10),
            )
            .await,
        );
        assert!(
            matches!(&e, ConnectorError::Invalid(m) if m.contains("HTTP 418")),
            "{e:?}"
        );
        // Retry-After as an HTTP date in the past: retry now.
        let e = connector_error(
            locate_against(
                || {
                    (
                        StatusCode::TOO_MANY_REQUESTS,
                        [("retry-after", "Sun, 06 Nov 1994 08:49:37 GMT")],
                    )
                        .into_response()
                },
                Duration::from_secs(10),
            )
            .await,
        );
        assert_eq!(e, ConnectorError::RateLimited(0));
    }

    #[tokio::test]
    async fn a_huge_body_is_refused_by_the_client() {
        let e = connector_error(
            locate_against(
                || (StatusCode::OK, vec![b' '; 20 << 20]).into_response(),
                Duration::from_secs(10),
            )
            .await,
        );
        assert!(
            matches!(&e, ConnectorError::Unavailable(m) if m.contains("larger than")),
            "{e:?}"
        );
    }

    #[tokio::test]
    async fn a_server_that_never_answers_hits_the_plugin_deadline() {
        let addr = {
            // Accepts connections and never writes a byte.
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(async move {
                let mut held = Vec::new();
                while let Ok((sock, _)) = listener.accept().await {
                    held.push(sock);
                }
            });
            addr
        };
        let start = Instant::now();
        let r = locate_at(addr, Duration::from_millis(300)).await;
        assert!(matches!(r, Err(CallError::Timeout(_))), "{r:?}");
        // Without the deadline the call would wait forever.
        assert!(start.elapsed() < Duration::from_secs(10));
    }
}
