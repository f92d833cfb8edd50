//! Outbound HTTP for connectors: `wasi:http/outgoing-handler`, filtered.
//!
//! Every request is checked twice: its origin (`scheme://host:port`) must be
//! among the connector's effective grants, and the addresses its host resolves
//! to must pass the address policy ([`EffectiveGrants::allows_ip`]). The host
//! then connects to a vetted address itself, so a DNS answer that changes
//! between check and connect (rebinding) cannot sneak through. A refusal is a
//! `wasi:http` error the guest sees (`HTTP-request-denied` or
//! `destination-IP-prohibited`), never a trap. Refusals are logged with the
//! connector id and the origin only: paths and queries can hold identifiers.
//!
//! Connections are kept alive and reused, within one connector instance
//! and for one origin only: some servers (Cyrus's JMAP, measured) answer a
//! few percent of requests on a fresh connection ~200 ms late, and a
//! connector makes several requests per operation. A reused connection was
//! vetted when it was opened; the origin is still checked on every request.
//! At most [`MAX_IN_FLIGHT`] connections are open at once per instance,
//! and all of them close with the instance.
//!
//! Configure: the manifest's host patterns are intersected with the
//! integrator's grants ([`grants::intersect`]); only the overlap is
//! reachable, and every mismatch is a warning.

use super::Capability;
use super::grants::{self, EffectiveGrants, HostPattern};
use crate::{ConnectorSpec, Origin};
use http::uri::Scheme;
use hyper::client::conn::http1::SendRequest;
use oubli_model::Manifest;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

/// The most time a connection attempt may take, whatever the guest asks.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections one instance may have open at once (busy or idle); a
/// request that needs one more is refused (`HTTP-request-denied`). Each
/// holds a socket and hyper's buffers.
pub const MAX_IN_FLIGHT: usize = 16;

/// Idle connections kept per origin for reuse.
const MAX_IDLE_PER_ORIGIN: usize = 4;

/// The outbound HTTP capability.
pub struct OutboundHttp;

impl Capability for OutboundHttp {
    type Shared = EffectiveGrants;
    type Call = Hooks;

    fn configure(
        manifest: &Manifest,
        spec: &ConnectorSpec,
        warnings: &mut Vec<String>,
    ) -> Result<EffectiveGrants, String> {
        let mut patterns = Vec::with_capacity(manifest.outbound_hosts.len());
        for h in &manifest.outbound_hosts {
            patterns
                .push(HostPattern::parse(h).map_err(|e| format!("manifest outbound host {e}"))?);
        }
        let (effective, mismatches) = grants::intersect(&patterns, &spec.grants);
        warnings.extend(mismatches);
        Ok(effective)
    }

    fn prepare(plugin: &Arc<str>, shared: &Arc<EffectiveGrants>) -> Hooks {
        Hooks {
            oversight: Oversight::default(),
            plugin: plugin.clone(),
            grants: shared.clone(),
            in_flight: Arc::new(AtomicUsize::new(0)),
            idle: Arc::new(Mutex::new(HashMap::new())),
        }
    }
}

/// Which work an outbound request is for, so that a shared budget can keep
/// part of a system's rate for requests of data subjects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// A subject's request (locate, export, erase, ...).
    Request,
    /// A retention sweep.
    Sweep,
}

/// A budget that every outbound request of a system draws from before it
/// is sent (the host's rate limit per system, shared by every process on a
/// store). Denied requests draw nothing.
pub trait Meter: Send + Sync {
    /// Wait until `system` may send one more request for `lane`.
    fn admit<'a>(
        &'a self,
        system: &'a str,
        lane: Lane,
    ) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + 'a>>;
}

/// The host's own view of a connector's outbound requests, and a way to
/// answer in the system's place: the conformance kit counts writes during
/// reads with it and plays the system's failures (`oubli connector test`).
/// Never set in service.
pub trait Tap: Send + Sync {
    /// Each request, after the grants allowed it and before it is sent,
    /// with its method and its path and query. `Some` answers in the
    /// system's place, and nothing is sent.
    fn request(&self, method: &str, path: &str) -> Option<Fault>;

    /// Each line the connector logged, as the host logged it (masked and
    /// cut): the kit looks for personal data and secrets in it.
    fn log(&self, line: &str) {
        let _ = line;
    }

    /// Whether the tap wants the system's answers ([`Tap::response`]).
    fn records(&self) -> bool {
        false
    }

    /// The system's answer to a request the tap let through (never one
    /// the tap gave), once the connector has read its body to the end or
    /// dropped it: status, headers, and the body when it was read whole and is at
    /// most [`RECORD_MAX`] bytes. Only when [`Tap::records`].
    fn response(&self, exchange: Recorded) {
        let _ = exchange;
    }
}

/// The largest response body a recording tap is given.
pub const RECORD_MAX: usize = 16 << 20;

/// An exchange as the system answered it (see [`Tap::response`]).
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The request's method.
    pub method: String,
    /// The request's path and query.
    pub path: String,
    /// The answer's status.
    pub status: u16,
    /// The answer's headers.
    pub headers: Vec<(String, String)>,
    /// The answer's body, when read whole and not over [`RECORD_MAX`].
    pub body: Option<Vec<u8>>,
}

/// A response body that hands what passed through it to a recording tap
/// when it ends (or is dropped).
struct Tee {
    inner: WasiBody,
    seen: Vec<u8>,
    whole: bool,
    ended: bool,
    exchange: Option<(Arc<dyn Tap>, Recorded)>,
}

impl Tee {
    fn finish(&mut self) {
        if let Some((tap, mut exchange)) = self.exchange.take() {
            exchange.body = (self.whole && self.ended).then(|| std::mem::take(&mut self.seen));
            tap.response(exchange);
        }
    }
}

impl Drop for Tee {
    fn drop(&mut self) {
        self.finish();
    }
}

impl http_body::Body for Tee {
    type Data = bytes::Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let polled = std::pin::Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            std::task::Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    if this.seen.len() + data.len() > RECORD_MAX {
                        this.whole = false;
                        this.seen = Vec::new();
                    } else if this.whole {
                        this.seen.extend_from_slice(data);
                    }
                }
            }
            std::task::Poll::Ready(None) => {
                this.ended = true;
                this.finish();
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// `response` with its body passed through a [`Tee`] to `tap`.
fn recorded(
    tap: Arc<dyn Tap>,
    method: String,
    path: String,
    response: http::Response<WasiBody>,
) -> http::Response<WasiBody> {
    use http_body_util::BodyExt;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    response.map(|inner| {
        Tee {
            inner,
            seen: Vec::new(),
            whole: true,
            ended: false,
            exchange: Some((
                tap,
                Recorded {
                    method,
                    path,
                    status,
                    headers,
                    body: None,
                },
            )),
        }
        .boxed_unsync()
    })
}

/// What the host answers in a system's place (see [`Tap`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// A response with this status, headers and body.
    Respond {
        /// HTTP status.
        status: u16,
        /// Headers, as sent.
        headers: Vec<(String, String)>,
        /// The body.
        body: Vec<u8>,
    },
    /// The connection drops before an answer.
    Reset,
    /// No answer at all: the request waits until its first-byte timeout
    /// (the connector's, else ten minutes), or the operation's deadline
    /// ends the call first.
    Stall,
}

/// What every outbound request of one call answers to: the budget it
/// draws from (and for which work), and the kit's tap.
#[derive(Clone, Default)]
pub(crate) struct Oversight {
    /// The budget to draw from, and for which work, this call.
    pub(crate) meter: Option<(Arc<dyn Meter>, Lane)>,
    /// The kit's tap, if one is set.
    pub(crate) tap: Option<Arc<dyn Tap>>,
}

/// The `wasi:http` hooks of one connector instance.
pub struct Hooks {
    /// This call's budget and tap.
    pub(crate) oversight: Oversight,
    plugin: Arc<str>,
    grants: Arc<EffectiveGrants>,
    /// Open connections.
    in_flight: Arc<AtomicUsize>,
    /// Connections that may serve another request, by origin.
    idle: Arc<Mutex<Idle>>,
}

type Idle = HashMap<String, Vec<SendRequest<WasiBody>>>;

/// One open connection, counted until it ends.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

type IoFuture = Box<dyn Future<Output = Result<(), HttpError>> + Send>;
type SendFuture =
    Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), HttpError>> + Send>;

impl WasiHttpHooks for Hooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: IoFuture,
    ) -> SendFuture {
        let plugin = self.plugin.clone();
        let grants = self.grants.clone();
        let in_flight = self.in_flight.clone();
        let idle = self.idle.clone();
        let oversight = self.oversight.clone();
        Box::new(async move {
            send_filtered(
                &plugin, &grants, &in_flight, &idle, oversight, request, options,
            )
            .await
        })
    }
}

/// A response made by the host (a [`Fault`]).
fn answer(
    status: u16,
    headers: &[(String, String)],
    body: Vec<u8>,
) -> Result<http::Response<WasiBody>, HttpError> {
    use http_body_util::BodyExt;
    let mut response = http::Response::builder().status(status);
    for (k, v) in headers {
        response = response.header(k.as_str(), v.as_str());
    }
    response
        .body(
            http_body_util::Full::new(bytes::Bytes::from(body))
                .map_err(|never| match never {})
                .boxed_unsync(),
        )
        .map_err(|_| HttpError::InternalError(Some("a fault that is not HTTP".into())))
}

/// Take an idle connection to `origin` that can carry a request now.
async fn reusable(idle: &Mutex<Idle>, origin: &str) -> Option<SendRequest<WasiBody>> {
    loop {
        let mut sender = idle
            .lock()
            .ok()?
            .get_mut(origin)
            .and_then(|senders| senders.pop())?;
        if sender.is_closed() {
            continue;
        }
        // Ready once the previous response was read to its end; a body
        // left unread keeps it busy, and it is dropped.
        if sender.is_ready()
            || tokio::time::timeout(Duration::from_millis(2), sender.ready())
                .await
                .is_ok_and(|r| r.is_ok())
        {
            return Some(sender);
        }
    }
}

fn keep_idle(idle: &Mutex<Idle>, origin: String, sender: SendRequest<WasiBody>) {
    if let Ok(mut idle) = idle.lock() {
        let senders = idle.entry(origin).or_default();
        if senders.len() < MAX_IDLE_PER_ORIGIN {
            senders.push(sender);
        }
    }
}

async fn send_filtered(
    plugin: &str,
    grants: &EffectiveGrants,
    in_flight: &Arc<AtomicUsize>,
    idle: &Arc<Mutex<Idle>>,
    Oversight { meter, tap }: Oversight,
    mut request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
) -> Result<(http::Response<WasiBody>, IoFuture), HttpError> {
    let uri = request.uri();
    let https = match uri.scheme() {
        Some(s) if *s == Scheme::HTTPS => true,
        Some(s) if *s == Scheme::HTTP => false,
        _ => return Err(HttpError::HttpRequestUriInvalid),
    };
    let authority = uri.authority().ok_or(HttpError::HttpRequestUriInvalid)?;
    let origin = Origin::new(
        if https { "https" } else { "http" },
        authority.host(),
        authority.port_u16(),
    )
    .map_err(|_| HttpError::HttpRequestUriInvalid)?;
    let port = origin.port;
    if !grants.allows_origin(&origin) {
        tracing::warn!(system = plugin, %origin, "outbound request refused: origin not granted");
        return Err(HttpError::HttpRequestDenied);
    }
    if let Some((meter, lane)) = &meter {
        meter.admit(plugin, *lane).await;
    }
    let first_byte = options
        .and_then(|o| o.first_byte_timeout)
        .unwrap_or(Duration::from_secs(600));
    // The request line carries only the path; Host is already set.
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let mut record = None;
    if let Some(tap) = &tap {
        let method = request.method().as_str();
        match tap.request(method, &path) {
            None => {}
            Some(Fault::Reset) => return Err(HttpError::ConnectionTerminated),
            Some(Fault::Stall) => {
                tokio::time::sleep(first_byte).await;
                return Err(HttpError::ConnectionReadTimeout);
            }
            Some(Fault::Respond {
                status,
                headers,
                body,
            }) => return Ok((answer(status, &headers, body)?, Box::new(async { Ok(()) }))),
        }
        // Only the system's own answers are recorded, never the tap's.
        if tap.records() {
            record = Some((tap.clone(), method.to_string(), path.clone()));
        }
    }
    *request.uri_mut() = http::Uri::builder()
        .path_and_query(path)
        .build()
        .map_err(|_| HttpError::HttpRequestUriInvalid)?;
    let keep = |(response, io)| match record {
        Some((tap, method, path)) => (recorded(tap, method, path, response), io),
        None => (response, io),
    };
    let key = origin.to_string();
    if let Some(sender) = reusable(idle, &key).await {
        return exchange(sender, idle, key, request, first_byte)
            .await
            .map(keep);
    }
    let slot = if in_flight.fetch_add(1, Ordering::SeqCst) < MAX_IN_FLIGHT {
        Slot(in_flight.clone())
    } else {
        in_flight.fetch_sub(1, Ordering::SeqCst);
        tracing::warn!(
            system = plugin,
            "outbound request refused: {MAX_IN_FLIGHT} connections already open in this call"
        );
        return Err(HttpError::HttpRequestDenied);
    };

    let resolved: Vec<SocketAddr> = tokio::net::lookup_host((origin.host.as_str(), port))
        .await
        .map_err(|_| HttpError::DnsError {
            rcode: Some("lookup failed".into()),
            info_code: None,
        })?
        .collect();
    let vetted: Vec<SocketAddr> = resolved
        .iter()
        .copied()
        .filter(|a| grants.allows_ip(a.ip()))
        .collect();
    if vetted.is_empty() {
        tracing::warn!(
            system = plugin,
            %origin,
            "outbound request refused: the host resolves only to addresses not granted (loopback, private or link-local)"
        );
        return Err(HttpError::DestinationIpProhibited);
    }

    let connect_timeout = options
        .and_then(|o| o.connect_timeout)
        .unwrap_or(MAX_CONNECT_TIMEOUT)
        .min(MAX_CONNECT_TIMEOUT);
    let mut stream = None;
    for addr in &vetted {
        match tokio::time::timeout(connect_timeout, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                stream = Some(s);
                break;
            }
            Ok(Err(_)) | Err(_) => continue,
        }
    }
    let stream = stream.ok_or(HttpError::ConnectionRefused)?;
    // Headers and body go out as soon as they are written: without this,
    // Nagle's algorithm meets the server's delayed ACK and a small request
    // can wait ~40-200 ms.
    let _ = stream.set_nodelay(true);

    let sender = if https {
        let server_name = rustls::pki_types::ServerName::try_from(origin.host.clone())
            .map_err(|_| HttpError::HttpRequestUriInvalid)?;
        let tls = tokio_rustls::TlsConnector::from(tls_config())
            .connect(server_name, stream)
            .await
            .map_err(|_| HttpError::TlsProtocolError)?;
        connection(tls, slot).await?
    } else {
        connection(stream, slot).await?
    };
    exchange(sender, idle, key, request, first_byte)
        .await
        .map(keep)
}

/// An HTTP/1.1 connection on `stream`: its driver runs on its own until
/// the sender is dropped (with the instance, or by the idle list) or the
/// server closes; `slot` counts it open until then.
async fn connection<S>(stream: S, slot: Slot) -> Result<SendRequest<WasiBody>, HttpError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (sender, conn) =
        hyper::client::conn::http1::handshake(wasmtime_wasi_http::io::TokioIo::new(stream))
            .await
            .map_err(HttpError::from)?;
    tokio::spawn(async move {
        let _slot = slot;
        let _ = conn.await;
    });
    Ok(sender)
}

/// Send one request on a connection, and keep the connection for the next
/// once this one's response has been read.
async fn exchange(
    mut sender: SendRequest<WasiBody>,
    idle: &Arc<Mutex<Idle>>,
    origin: String,
    request: http::Request<WasiBody>,
    first_byte: Duration,
) -> Result<(http::Response<WasiBody>, IoFuture), HttpError> {
    use http_body_util::BodyExt;

    let response = tokio::time::timeout(first_byte, sender.send_request(request))
        .await
        .map_err(|_| HttpError::ConnectionReadTimeout)?
        .map_err(HttpError::from)?;
    keep_idle(idle, origin, sender);
    let response = response.map(|body| body.map_err(HttpError::from).boxed_unsync());
    let io: IoFuture = Box::new(async { Ok(()) });
    Ok((response, io))
}

fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.into(),
            };
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            Arc::new(
                rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .expect("ring supports the default TLS versions")
                    .with_root_certificates(roots)
                    .with_no_client_auth(),
            )
        })
        .clone()
}

/// Link `wasi:http` (types and the outgoing handler) once per engine.
pub(crate) fn add_to_linker(
    linker: &mut wasmtime::component::Linker<super::PluginState>,
) -> wasmtime::Result<()> {
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)
}
