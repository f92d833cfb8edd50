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
pub mod extract;
mod metrics;
pub mod problem;
pub mod routes;
pub mod server;
pub mod webhooks;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
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
    paths(
        routes::create_request, routes::list_requests, routes::get_request,
        routes::doc_attest, routes::doc_approve, routes::doc_reject, routes::doc_cancel,
        routes::doc_extend, routes::doc_lift, routes::doc_exclude, routes::doc_retry_planning, routes::doc_retry, routes::doc_skip, routes::doc_done,
        routes::certificate, routes::bundle, routes::subject_requests, routes::check_restriction, routes::record_consent, routes::consents,
        routes::systems, routes::manifest, routes::pause, routes::resume,
        routes::audit_verify, routes::audit_events, routes::audit_heads,
        routes::healthz, routes::readyz, routes::metrics,
    ),
    modifiers(&Security),
    tags(
        (name = "requests", description = "Data-subject requests and their lifecycle"),
        (name = "restrictions", description = "May this person be processed?"),
        (name = "consent", description = "Consent evidence (Art. 7(1))"),
        (name = "systems", description = "The connected systems"),
        (name = "evidence", description = "Certificates and the audit log"),
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

/// The OpenAPI document as JSON (what `/openapi.json` serves and
/// docs/openapi.json holds).
pub fn openapi_json() -> String {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    let mut s = doc.to_pretty_json().unwrap_or_default();
    s.push('\n');
    s
}

async fn openapi(State(doc): State<Arc<String>>) -> Response {
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

/// The whole API, ready to serve. `max_body` caps request bodies.
pub fn router(state: AppState, max_body: usize) -> Router {
    let doc = Arc::new(openapi_json());
    let v1 = Router::new()
        .route(
            "/v1/requests",
            post(routes::create_request).get(routes::list_requests),
        )
        .route("/v1/requests/{id}", get(routes::get_request))
        .route("/v1/requests/{id}/attest", post(routes::attest))
        .route("/v1/requests/{id}/approve", post(routes::approve))
        .route("/v1/requests/{id}/reject", post(routes::reject))
        .route("/v1/requests/{id}/cancel", post(routes::cancel))
        .route("/v1/requests/{id}/extend", post(routes::extend))
        .route("/v1/requests/{id}/lift", post(routes::lift))
        .route(
            "/v1/requests/{id}/systems/{system}/exclude",
            post(routes::exclude),
        )
        .route(
            "/v1/requests/{id}/planning/retry",
            post(routes::retry_planning),
        )
        .route(
            "/v1/requests/{id}/systems/{system}/retry",
            post(routes::retry),
        )
        .route(
            "/v1/requests/{id}/systems/{system}/skip",
            post(routes::skip),
        )
        .route(
            "/v1/requests/{id}/systems/{system}/done",
            post(routes::done),
        )
        .route("/v1/requests/{id}/certificate", get(routes::certificate))
        .route("/v1/requests/{id}/bundle", get(routes::bundle))
        .route("/v1/subjects/requests", post(routes::subject_requests))
        .route("/v1/restrictions/check", post(routes::check_restriction))
        .route("/v1/consent", post(routes::record_consent))
        .route("/v1/consent/lookup", post(routes::consents))
        .route("/v1/systems", get(routes::systems))
        .route("/v1/systems/{system}/manifest", get(routes::manifest))
        .route("/v1/systems/{system}/pause", post(routes::pause))
        .route("/v1/systems/{system}/resume", post(routes::resume))
        .route("/v1/audit/verify", get(routes::audit_verify))
        .route("/v1/audit/events", get(routes::audit_events))
        .route("/v1/audit/heads", get(routes::audit_heads))
        .route("/healthz", get(routes::healthz))
        .route("/readyz", get(routes::readyz))
        .route("/metrics", get(routes::metrics))
        .with_state(state.clone());
    Router::new()
        .route("/openapi.json", get(openapi))
        .with_state(doc)
        .merge(v1)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state, trace))
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
}
