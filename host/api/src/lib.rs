//! `oubli-api`: the rights service over HTTP. A thin face over
//! [`oubli_core::rights::engine::Engine`], like the CLI: each route checks
//! the caller's role, reads its input and calls the engine.
//!
//! - [`routes`]: REST under `/v1/`, `/healthz`, `/readyz`, `/metrics`.
//! - [`auth`]: bearer tokens, roles, failed-authentication lockout.
//! - [`problem`]: RFC 9457 errors with trace ids.
//! - [`extract`]: input extractors that fail as problems, never as 500s.
//! - [`server`]: listening (TLS with rustls, reloaded on SIGHUP), workers,
//!   audit head signing and webhooks in the same process.
//!
//! Identifiers never travel in URLs: lookups by identifier are POSTs.

#![warn(missing_docs)]

pub mod auth;
pub mod console;
pub mod extract;
mod metrics;
pub mod privacy;
pub mod problem;
pub mod routes;
pub mod server;
pub mod webhooks;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use oubli_core::rights::engine::Engine;
use problem::{Problem, TRACE_ID};
use std::sync::Arc;
use utoipa::OpenApi;

pub use metrics::HttpMetrics;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The rights service.
    pub engine: Arc<Engine>,
    /// Failed authentications by address.
    pub failed_auth: Arc<auth::FailedAuth>,
    /// Request counts and latencies.
    pub http: Arc<HttpMetrics>,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Arc<Vec<ipnet::IpNet>>,
}

impl AppState {
    /// State around `engine`.
    pub fn new(engine: Arc<Engine>) -> AppState {
        AppState {
            engine,
            failed_auth: Default::default(),
            http: Default::default(),
            trusted_proxies: Default::default(),
        }
    }
}

/// The OpenAPI document, generated from the routes' annotations.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "oubli",
        description = "GDPR data-subject rights across contact-center systems: file requests, approve them, follow them to a verified end, check restrictions, fetch signed erasure certificates and the audit log. Identifiers travel only in JSON bodies, never in URLs.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    components(schemas(
        problem::Problem,
        routes::RequestId,
        routes::SystemName,
        routes::PolicyId,
        routes::RunId
    )),
    modifiers(&Security),
    tags(
        (name = "requests", description = "Data-subject requests and their lifecycle"),
        (name = "restrictions", description = "May this person be processed?"),
        (name = "consent", description = "Consent evidence (Art. 7(1))"),
        (name = "systems", description = "The connected systems"),
        (name = "evidence", description = "Certificates and the audit log"),
        (name = "retention", description = "Retention policies, their runs and certificates (Art. 5(1)(e))"),
        (name = "operations", description = "Health and metrics"),
    )
)]
pub struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A token from `oubli token create`"))
                    .build(),
            ),
        );
    }
}

/// The OpenAPI document: the info, tags and security scheme of [`ApiDoc`],
/// and every route's entry as [`routes::api`] registers it.
pub fn openapi() -> utoipa::openapi::OpenApi {
    document(routes::api().split_for_parts().1)
}

/// [`ApiDoc`] with the routes' entries.
fn document(routes: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(routes);
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc
}

/// The OpenAPI document as JSON (what `/openapi.json` serves and
/// docs/openapi.json holds).
pub fn openapi_json() -> String {
    json(&openapi())
}

fn json(doc: &utoipa::openapi::OpenApi) -> String {
    let mut s = doc.to_pretty_json().unwrap_or_default();
    s.push('\n');
    s
}

async fn serve_openapi(State(doc): State<Arc<String>>) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        doc.as_str().to_owned(),
    )
        .into_response()
}

async fn not_found() -> Problem {
    Problem::not_found("no such route")
}

async fn method_not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "this route does not take this method",
    )
}

/// The longest request target taken, in bytes.
pub const MAX_URI: usize = 8 * 1024;
/// The most header bytes (names and values) a request may carry.
pub const MAX_HEADERS: usize = 16 * 1024;

/// Refuse request targets and headers past their limits with problems
/// (414, 431), before any route reads them. The server's read buffer is
/// larger than both, so these limits are met first.
async fn limits(req: Request, next: Next) -> Response {
    let uri = req.uri();
    let target = uri.path_and_query().map_or(0, |p| p.as_str().len())
        + uri.authority().map_or(0, |a| a.as_str().len());
    if target > MAX_URI {
        return Problem::new(
            StatusCode::URI_TOO_LONG,
            "uri-too-long",
            format!("the request target is longer than {MAX_URI} bytes"),
        )
        .into_response();
    }
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if header_bytes > MAX_HEADERS {
        return Problem::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers-too-large",
            format!("the request's headers are larger than {MAX_HEADERS} bytes"),
        )
        .into_response();
    }
    next.run(req).await
}

/// Give each HTTP request a trace id (its span, the `x-trace-id` header,
/// problem bodies) and count it.
async fn trace(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let id = oubli_crypto::random_token(10).unwrap_or_default();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |m| m.as_str())
        .to_string();
    let method = req.method().clone();
    let span = tracing::info_span!("http", trace_id = %id, %method, route = %route);
    let started = std::time::Instant::now();
    let mut response = {
        use tracing::Instrument;
        TRACE_ID
            .scope(id.clone(), next.run(req))
            .instrument(span.clone())
            .await
    };
    let status = response.status();
    let elapsed = started.elapsed();
    state
        .http
        .record(method.as_str(), &route, status.as_u16(), elapsed);
    span.in_scope(|| {
        tracing::info!(
            status = status.as_u16(),
            ms = elapsed.as_secs_f64() * 1e3,
            "served"
        )
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-trace-id", v);
    }
    // Answers may carry personal data (plans, exports, bundles): no cache,
    // shared or private, may keep them.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The API with the operator console beside it (console pages at `/`,
/// the API under `/v1/`), traced and limited alike.
pub fn with_console(api: Router, console: console::Console, max_body: usize) -> Router {
    let state = console.app.clone();
    api.merge(
        console::router(console)
            .layer(axum::middleware::from_fn(limits))
            .layer(axum::middleware::from_fn_with_state(state, trace))
            .layer(axum::extract::DefaultBodyLimit::max(max_body)),
    )
}

/// `pages` traced and limited as the API is (the privacy center's).
pub fn with_limits(pages: Router, state: AppState, max_body: usize) -> Router {
    pages
        .layer(axum::middleware::from_fn(limits))
        .layer(axum::middleware::from_fn_with_state(state, trace))
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
}

/// The whole API, ready to serve. `max_body` caps request bodies.
pub fn router(state: AppState, max_body: usize) -> Router {
    // One registration serves the routes and describes them.
    let (v1, routes) = routes::api().split_for_parts();
    let doc = Arc::new(json(&document(routes)));
    let v1 = v1.with_state(state.clone());
    Router::new()
        .route("/openapi.json", get(serve_openapi))
        .with_state(doc)
        .merge(v1)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(limits))
        .layer(axum::middleware::from_fn_with_state(state, trace))
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
}
