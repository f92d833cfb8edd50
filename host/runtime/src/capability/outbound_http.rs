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
//! Configure: the manifest's host patterns are intersected with the
//! integrator's grants ([`grants::intersect`]); only the overlap is
//! reachable, and every mismatch is a warning.

use super::Capability;
use super::grants::{self, EffectiveGrants, HostPattern};
use crate::{ConnectorSpec, Origin};
use http::uri::Scheme;
use oubli_model::Manifest;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

/// The most time a connection attempt may take, whatever the guest asks.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// HTTP exchanges one call may have open at once; more are refused
/// (`HTTP-request-denied`). Each holds a connection and hyper's buffers.
pub const MAX_IN_FLIGHT: usize = 16;

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
            plugin: plugin.clone(),
            grants: shared.clone(),
            in_flight: Arc::new(AtomicUsize::new(0)),
        }
    }
}

/// The `wasi:http` hooks of one connector instance.
pub struct Hooks {
    plugin: Arc<str>,
    grants: Arc<EffectiveGrants>,
    in_flight: Arc<AtomicUsize>,
}

/// One open exchange, counted until its connection ends.
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
        let slot = if self.in_flight.fetch_add(1, Ordering::SeqCst) < MAX_IN_FLIGHT {
            Some(Slot(self.in_flight.clone()))
        } else {
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            None
        };
        Box::new(async move {
            let Some(slot) = slot else {
                tracing::warn!(
                    system = &*plugin,
                    "outbound request refused: {MAX_IN_FLIGHT} already open in this call"
                );
                return Err(HttpError::HttpRequestDenied);
            };
            let (response, io) = send_filtered(&plugin, &grants, request, options).await?;
            let io: IoFuture = Box::new(async move {
                let _slot = slot;
                Box::into_pin(io).await
            });
            Ok((response, io))
        })
    }
}

async fn send_filtered(
    plugin: &str,
    grants: &EffectiveGrants,
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

    // The request line carries only the path; Host is already set.
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    *request.uri_mut() = http::Uri::builder()
        .path_and_query(path)
        .build()
        .map_err(|_| HttpError::HttpRequestUriInvalid)?;

    if https {
        let server_name = rustls::pki_types::ServerName::try_from(origin.host.clone())
            .map_err(|_| HttpError::HttpRequestUriInvalid)?;
        let tls = tokio_rustls::TlsConnector::from(tls_config())
            .connect(server_name, stream)
            .await
            .map_err(|_| HttpError::TlsProtocolError)?;
        exchange(tls, request, options).await
    } else {
        exchange(stream, request, options).await
    }
}

async fn exchange<S>(
    stream: S,
    request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
) -> Result<(http::Response<WasiBody>, IoFuture), HttpError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    use http_body_util::BodyExt;

    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(wasmtime_wasi_http::io::TokioIo::new(stream))
            .await
            .map_err(HttpError::from)?;
    let conn = wasmtime_wasi::runtime::spawn(conn);
    let first_byte = options
        .and_then(|o| o.first_byte_timeout)
        .unwrap_or(Duration::from_secs(600));
    let response = tokio::time::timeout(first_byte, sender.send_request(request))
        .await
        .map_err(|_| HttpError::ConnectionReadTimeout)?
        .map_err(HttpError::from)?;
    let response = response.map(|body| body.map_err(HttpError::from).boxed_unsync());
    let io: IoFuture = Box::new(async move { conn.await.map_err(HttpError::from) });
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
