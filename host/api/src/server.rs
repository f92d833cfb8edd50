//! Serving the API: one accept loop for plain HTTP and TLS (rustls, the
//! certificate reloaded on SIGHUP without dropping connections), with the
//! background work of a long-running host beside it: workers, signing the
//! audit chain's head, refreshing the restriction registry, webhooks.

use super::{AppState, router, with_console};
use axum::extract::ConnectInfo;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use oubli_core::config::WebhookSettings;
use oubli_core::rights::engine::Engine;
use oubli_core::rights::worker::{Worker, WorkerOptions};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::watch;
use tokio_rustls::rustls;
use tower::ServiceExt;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Plain HTTP on an address other machines can reach.
    #[error(
        "refusing plain HTTP on {0}, which is not a loopback address: set [api] tls_cert and tls_key, or allow_plain_http = true behind a TLS proxy"
    )]
    PlainHttp(SocketAddr),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The console cannot start (its identity provider's secret, say).
    #[error("console: {0}")]
    Console(String),
    /// The privacy center cannot start (its relay's password, say).
    #[error("privacy center: {0}")]
    Privacy(String),
    /// The certificate or key could not be read.
    #[error("TLS: {0}")]
    Tls(String),
    /// A webhook's signing secret cannot be read: refusing to start rather
    /// than run with the webhook silently off.
    #[error("webhook {name}: its secret cannot be read: {reason}")]
    WebhookSecret {
        /// The webhook.
        name: String,
        /// Why.
        reason: String,
    },
}

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Certificate chain and key (PEM), for TLS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Allow plain HTTP on a non-loopback address.
    pub allow_plain_http: bool,
    /// Workers to run in this process.
    pub workers: usize,
    /// How often to sign the audit head.
    pub sign_every: Duration,
    /// Largest request body.
    pub max_body: usize,
    /// How long a client may take to send a request's headers (or keep a
    /// connection idle) before it is closed.
    pub header_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// Connections one client address may hold (trusted proxies excepted).
    pub max_connections_per_address: usize,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Failed authentications per client and minute before a lockout (0:
    /// none).
    pub lockout_after: u32,
    /// Webhooks.
    pub webhooks: Vec<WebhookSettings>,
    /// The operator console (served at `/` when enabled).
    pub console: oubli_core::config::ConsoleSettings,
    /// The privacy center (served at `/privacy/`, or on its own listener).
    pub privacy: Option<oubli_core::config::PrivacySettings>,
}

/// Read a certificate chain and private key into a server config.
pub fn tls_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, ServeError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| ServeError::Tls(format!("{}: {e}", cert.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| ServeError::Tls(format!("{}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(ServeError::Tls(format!(
            "{}: no certificate in it",
            cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| ServeError::Tls(format!("{}: {e}", key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServeError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| ServeError::Tls(format!("the certificate and key do not go together: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A running server.
pub struct Server {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// Whether it speaks TLS.
    pub tls: bool,
    listener: tokio::net::TcpListener,
    /// The privacy center's own listener, when it has one.
    privacy_listener: Option<tokio::net::TcpListener>,
    /// The privacy center's own address, when it has one.
    pub privacy_addr: Option<SocketAddr>,
    mailer: Option<Arc<dyn oubli_core::mail::Mailer>>,
    texter: Option<Arc<dyn oubli_core::mail::Texter>>,
    captcha: Option<crate::privacy::Captcha>,
    options: ServeOptions,
    engine: Arc<Engine>,
}

impl Server {
    /// Bind, after checking the options.
    pub async fn bind(engine: Arc<Engine>, options: ServeOptions) -> Result<Server, ServeError> {
        if options.tls.is_none() && !options.listen.ip().is_loopback() && !options.allow_plain_http
        {
            return Err(ServeError::PlainHttp(options.listen));
        }
        if let Some((c, k)) = &options.tls {
            tls_config(c, k)?;
        }
        if let Some(o) = options
            .console
            .oidc
            .as_ref()
            .filter(|_| options.console.enabled)
        {
            crate::console::oidc::Oidc::new(o.clone()).map_err(ServeError::Console)?;
        }
        for hook in &options.webhooks {
            hook.secret
                .resolve()
                .map_err(|e| ServeError::WebhookSecret {
                    name: hook.name.clone(),
                    reason: e.to_string(),
                })?;
        }
        for hook in &options.webhooks {
            if let Err(e) = engine.start_webhook(&hook.name).await {
                tracing::warn!(webhook = %hook.name, error = %e, "webhook cursor not created yet: its loop will");
            }
        }
        let listener = tokio::net::TcpListener::bind(options.listen)
            .await
            .map_err(|source| ServeError::Bind {
                addr: options.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| ServeError::Bind {
            addr: options.listen,
            source,
        })?;
        let mut mailer: Option<Arc<dyn oubli_core::mail::Mailer>> = None;
        let mut texter: Option<Arc<dyn oubli_core::mail::Texter>> = None;
        let mut captcha = None;
        let mut privacy_listener = None;
        let mut privacy_addr = None;
        if let Some(p) = &options.privacy {
            mailer = Some(Arc::new(
                oubli_core::mail::Smtp::new(&p.smtp).map_err(ServeError::Privacy)?,
            ));
            if let Some(c) = &p.captcha {
                captcha = Some(crate::privacy::Captcha::new(c).map_err(ServeError::Privacy)?);
            }
            if let Some(sms) = &p.sms {
                texter = Some(Arc::new(
                    oubli_core::mail::SmsWebhook::new(sms).map_err(ServeError::Privacy)?,
                ));
            }
            if let Some(listen) = &p.listen {
                let at: SocketAddr = listen.parse().map_err(|_| {
                    ServeError::Privacy(format!(
                        "api.privacy.listen: {listen:?} is not an address:port"
                    ))
                })?;
                if options.tls.is_none() && !at.ip().is_loopback() && !options.allow_plain_http {
                    return Err(ServeError::PlainHttp(at));
                }
                let l = tokio::net::TcpListener::bind(at)
                    .await
                    .map_err(|source| ServeError::Bind { addr: at, source })?;
                privacy_addr = l.local_addr().ok();
                privacy_listener = Some(l);
            }
        }
        Ok(Server {
            addr,
            tls: options.tls.is_some(),
            listener,
            privacy_listener,
            privacy_addr,
            mailer,
            texter,
            captcha,
            options,
            engine,
        })
    }

    /// Send the privacy center's mail through `mailer` instead of the
    /// configured relay (the demo keeps it in files).
    pub fn set_mailer(&mut self, mailer: Arc<dyn oubli_core::mail::Mailer>) {
        if self.mailer.is_some() {
            self.mailer = Some(mailer);
        }
    }

    /// Serve until `stop` resolves, then finish the connections in flight
    /// (for up to 10 s) and the workers' current batch.
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) -> Result<(), ServeError> {
        let Server {
            listener,
            privacy_listener,
            mailer,
            texter,
            captcha,
            options,
            engine,
            ..
        } = self;
        let mut state = AppState::new(engine.clone());
        state.trusted_proxies = Arc::new(options.trusted_proxies.clone());
        state.failed_auth = Arc::new(crate::auth::FailedAuth::new(options.lockout_after));
        let mut app = router(state.clone(), options.max_body);
        if options.console.enabled {
            let console =
                // Behind a TLS proxy (allow_plain_http), browsers reach
                // the console over https: its cookies are Secure there too.
                crate::console::Console::new(
                    state.clone(),
                    &options.console,
                    options.tls.is_some() || options.allow_plain_http,
                )
                    .map_err(ServeError::Console)?;
            app = with_console(app, console, options.max_body);
        }
        let privacy = match (&options.privacy, mailer) {
            (Some(settings), Some(mailer)) => {
                let p = crate::privacy::Privacy::new(
                    state.clone(),
                    oubli_core::rights::privacy::PrivacyRules::from(settings),
                    mailer,
                );
                let p = match texter {
                    Some(t) => p.with_texter(t),
                    None => p,
                };
                Some(match captcha {
                    Some(c) => p.with_captcha(c),
                    None => p,
                })
            }
            _ => None,
        };
        let mut privacy_app = None;
        if let Some(p) = &privacy {
            let pages = crate::with_limits(
                crate::privacy::router(p.clone()),
                state.clone(),
                options.max_body,
            );
            if privacy_listener.is_some() {
                privacy_app = Some(pages);
            } else {
                app = app.merge(pages);
            }
        }
        let (stop_tx, stop_rx) = watch::channel(false);

        let mut background = tokio::task::JoinSet::new();
        if let Some(p) = privacy.filter(|_| options.privacy.as_ref().is_some_and(|s| s.notify)) {
            let rx = stop_rx.clone();
            background.spawn(crate::privacy::notify(p, rx));
        }
        for i in 0..options.workers {
            let worker = Worker::new(
                engine.clone(),
                WorkerOptions {
                    id: format!(
                        "{}:serve{i}",
                        oubli_core::rights::worker::default_worker_id()
                    ),
                    // The process's own sequencer loop (below) holds
                    // that role for all of them.
                    sequencer: false,
                    ..WorkerOptions::default()
                },
            );
            let mut rx = stop_rx.clone();
            background.spawn(async move {
                let stop = async move {
                    let _ = rx.wait_for(|s| *s).await;
                };
                if let Err(e) = worker.run(false, stop).await {
                    tracing::error!(error = %e, "worker stopped");
                }
            });
        }
        {
            let engine = engine.clone();
            let rx = stop_rx.clone();
            let every = options.sign_every;
            // The sequencer: places the audit log's events and signs tree
            // heads (every `sign_audit_every` while the log grows) when
            // this process holds its lease; any serve or worker can.
            let holder = format!(
                "{}:serve:sequencer",
                oubli_core::rights::worker::default_worker_id()
            );
            background.spawn(engine.run_sequencer(holder, every, rx));
        }
        {
            let engine = engine.clone();
            let mut rx = stop_rx.clone();
            background.spawn(async move {
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = rx.wait_for(|s| *s) => break,
                    }
                    if let Err(e) = engine.refresh_restrictions().await {
                        tracing::warn!(error = %e, "could not refresh the restriction registry");
                    }
                }
            });
        }
        for hook in options.webhooks.clone() {
            let engine = engine.clone();
            let rx = stop_rx.clone();
            background.spawn(super::webhooks::run(engine, hook, rx));
        }

        let tls = match &options.tls {
            Some((c, k)) => Some(Arc::new(RwLock::new(tls_config(c, k)?))),
            None => None,
        };
        #[cfg(unix)]
        if let (Some(tls), Some((c, k))) = (&tls, &options.tls) {
            let (tls, c, k) = (tls.clone(), c.clone(), k.clone());
            let mut rx = stop_rx.clone();
            background.spawn(async move {
                use tokio::signal::unix::{SignalKind, signal};
                let Ok(mut hup) = signal(SignalKind::hangup()) else {
                    return;
                };
                loop {
                    tokio::select! {
                        _ = hup.recv() => {}
                        _ = rx.wait_for(|s| *s) => break,
                    }
                    match tls_config(&c, &k) {
                        Ok(new) => {
                            *tls.write().unwrap_or_else(|e| e.into_inner()) = new;
                            tracing::info!("TLS certificate reloaded");
                        }
                        Err(e) => tracing::error!(error = %e, "TLS reload failed; keeping the old certificate"),
                    }
                }
            });
        }

        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        // At most `max_connections` at once: the next is accepted when one
        // closes (the others wait in the listen queue), so slow clients
        // cannot use up the process's file descriptors.
        let accept = Accept {
            tls,
            slots: Arc::new(tokio::sync::Semaphore::new(options.max_connections.max(1))),
            per_address: PerAddress::new(options.max_connections_per_address.max(1)),
            trusted: Arc::new(options.trusted_proxies.clone()),
            header_timeout: options.header_timeout,
        };
        let (closing_tx, closing) = watch::channel(false);
        {
            let own = privacy_listener.map(|l| {
                let mut rx = closing.clone();
                accept.clone().run(
                    l,
                    privacy_app.clone().unwrap_or_default(),
                    &graceful,
                    async move {
                        let _ = rx.wait_for(|s| *s).await;
                    },
                )
            });
            let main = async {
                accept.clone().run(listener, app, &graceful, stop).await;
                let _ = closing_tx.send(true);
            };
            match own {
                Some(own) => {
                    tokio::join!(main, own);
                }
                None => main.await,
            }
        }
        let _ = stop_tx.send(true);
        drop(closing);
        if tokio::time::timeout(Duration::from_secs(10), graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("connections still open after 10 s; closing them");
        }
        while background.join_next().await.is_some() {}
        Ok(())
    }
}

/// What every accepted connection shares: TLS, the connection slots, the
/// per-address limit.
#[derive(Clone)]
struct Accept {
    tls: Option<Arc<RwLock<Arc<rustls::ServerConfig>>>>,
    slots: Arc<tokio::sync::Semaphore>,
    per_address: PerAddress,
    trusted: Arc<Vec<ipnet::IpNet>>,
    header_timeout: Duration,
}

impl Accept {
    /// Accept on `listener` and serve `app` until `stop` resolves.
    async fn run(
        self,
        listener: tokio::net::TcpListener,
        app: axum::Router,
        graceful: &hyper_util::server::graceful::GracefulShutdown,
        stop: impl std::future::Future<Output = ()>,
    ) {
        let Accept {
            tls,
            slots,
            per_address,
            trusted,
            header_timeout,
        } = self;
        tokio::pin!(stop);
        loop {
            let slot = tokio::select! {
                s = slots.clone().acquire_owned() => match s {
                    Ok(s) => s,
                    Err(_) => break,
                },
                _ = &mut stop => break,
            };
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = &mut stop => break,
            };
            let _ = stream.set_nodelay(true);
            // One address may hold only so many of the slots (a trusted
            // proxy speaks for many clients and is not limited): past that,
            // its new connection is told to wait and closed.
            let held = if trusted.iter().any(|n| n.contains(&peer.ip())) {
                None
            } else {
                match per_address.take(peer.ip()) {
                    Some(h) => Some(h),
                    None => {
                        refuse_busy(stream, tls.is_some());
                        continue;
                    }
                }
            };
            let app = app.clone();
            let service = TowerToHyperService::new(app.map_request(
                move |mut r: axum::http::Request<hyper::body::Incoming>| {
                    r.extensions_mut().insert(ConnectInfo(peer));
                    r
                },
            ));
            let mut builder = hyper::server::conn::http1::Builder::new();
            // A client that is slow to send its headers, or a kept-alive
            // connection left idle, is closed: half-open connections
            // cannot pile up.
            builder
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(header_timeout)
                // Room above the router's own limits (MAX_URI,
                // MAX_HEADERS), so that they, which answer problems, are
                // met first; hyper answers past this buffer by itself.
                .max_buf_size(64 * 1024);
            let watcher = graceful.watcher();
            match &tls {
                None => {
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    tokio::spawn(async move {
                        let _ = watcher.watch(conn).await;
                        drop((slot, held));
                    });
                }
                Some(cfg) => {
                    let acceptor = tokio_rustls::TlsAcceptor::from(
                        cfg.read().unwrap_or_else(|e| e.into_inner()).clone(),
                    );
                    tokio::spawn(async move {
                        let Ok(Ok(tls_stream)) =
                            tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream))
                                .await
                        else {
                            return;
                        };
                        let conn = builder.serve_connection(TokioIo::new(tls_stream), service);
                        let _ = watcher.watch(conn).await;
                        drop((slot, held));
                    });
                }
            }
        }
    }
}

/// Connections held per client address.
#[derive(Clone)]
struct PerAddress {
    held: Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>,
    limit: usize,
}

/// One connection of an address, given back when dropped.
struct Held {
    table: PerAddress,
    ip: std::net::IpAddr,
}

impl PerAddress {
    fn new(limit: usize) -> PerAddress {
        PerAddress {
            held: Arc::default(),
            limit,
        }
    }

    /// A connection for `ip`, unless it holds its limit already.
    fn take(&self, ip: std::net::IpAddr) -> Option<Held> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let n = held.entry(ip).or_insert(0);
        if *n >= self.limit {
            return None;
        }
        *n += 1;
        Some(Held {
            table: self.clone(),
            ip,
        })
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut held = self.table.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = held.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.ip);
            }
        }
    }
}

/// Tell a client over its address's limit to come back later (plain HTTP:
/// a 429 problem; under TLS, before any handshake, the connection is only
/// closed), without waiting for what it sends.
fn refuse_busy(mut stream: tokio::net::TcpStream, tls: bool) {
    tracing::warn!("a client address is over its connection limit; refused");
    if tls {
        return;
    }
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let body = r#"{"type":"https://oubli.invalid/problems/too-many-connections","title":"Too Many Requests","status":429,"detail":"this address holds too many connections; close one and try again","retry_after":1}"#;
        let head = format!(
            "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/problem+json\r\ncontent-length: {}\r\nretry-after: 1\r\ncache-control: no-store\r\nconnection: close\r\n\r\n",
            body.len()
        );
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(body.as_bytes()).await;
            let _ = stream.shutdown().await;
        })
        .await;
    });
}
