//! The operator console: the web pages a privacy team works in, served by
//! `oubli serve` at `/` beside the API. One more face on the engine's use
//! cases with the API's roles, and no logic of its own: each page checks
//! the session's role, reads its form, calls the engine and renders HTML
//! on the server (maud templates, compiled in).
//!
//! - Sign-in with an API token (exchanged for a session) or through the
//!   organisation's identity provider ([`oidc`]); sessions are kept in the
//!   store (`oubli_core::rights::sessions`), shared by every `serve`
//!   process and kept across restarts.
//! - Every form carries the session's CSRF token; every page is sent with a
//!   strict Content-Security-Policy (scripts and styles from this server
//!   only, none inline, no frames, forms only to this server). The only
//!   script is htmx, vendored and embedded, for the live progress of a
//!   request's page; every page works without it.
//! - Identifiers travel only in POST bodies: filing a request and looking a
//!   subject up are forms that POST, so no identifier reaches a URL, the
//!   browser's history or the access log.
//! - Untrusted text (connector summaries, errors, notes) is escaped by the
//!   templates.
//! - English and French.

use crate::AppState;
use crate::auth::client_of;
use crate::problem::Problem;
use axum::Router;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, html};
use oubli_core::config::ConsoleSettings;
use oubli_core::lang::Lang;
use oubli_core::rights::tokens::Role;
use std::net::IpAddr;
use std::sync::Arc;

pub mod oidc;
mod pages;
mod words;

use oubli_core::rights::sessions::{Session, SessionLimits};
use words::tr;

/// What the console's handlers share.
#[derive(Clone)]
pub struct Console {
    /// The API's state: the engine, the lockout, trusted proxies.
    pub app: AppState,
    /// How long sessions last.
    pub limits: SessionLimits,
    /// The identity provider, when configured.
    pub oidc: Option<Arc<oidc::Oidc>>,
    /// Whether the console is reached over TLS (its cookies are then
    /// `Secure` and `__Host-`).
    pub secure: bool,
}

impl Console {
    /// The console over `app` with `settings`; reads the provider's client
    /// secret now.
    pub fn new(app: AppState, settings: &ConsoleSettings, secure: bool) -> Result<Console, String> {
        let oidc = match &settings.oidc {
            Some(o) => Some(Arc::new(oidc::Oidc::new(o.clone())?)),
            None => None,
        };
        Ok(Console {
            app,
            limits: SessionLimits {
                idle_ms: settings.idle_timeout.as_millis() as i64,
                absolute_ms: settings.absolute_timeout.as_millis() as i64,
            },
            oidc,
            secure,
        })
    }

    fn cookie_name(&self) -> &'static str {
        if self.secure { "__Host-oubli" } else { "oubli" }
    }

    fn state_cookie_name(&self) -> &'static str {
        if self.secure {
            "__Host-oubli-signin"
        } else {
            "oubli-signin"
        }
    }

    /// A `Set-Cookie` value for `name`, HttpOnly, SameSite (Strict for the
    /// session; Lax for the sign-in state, which must come back on the
    /// provider's redirect), Secure under TLS, expiring after `max_age`
    /// seconds (0: now).
    fn cookie(&self, name: &str, value: &str, strict: bool, max_age: u64) -> HeaderValue {
        let mut c = format!(
            "{name}={value}; Path=/; HttpOnly; SameSite={}; Max-Age={max_age}",
            if strict { "Strict" } else { "Lax" }
        );
        if self.secure {
            c.push_str("; Secure");
        }
        HeaderValue::from_str(&c).unwrap_or(HeaderValue::from_static(""))
    }
}

/// The console's routes, ready to merge beside the API's.
pub fn router(console: Console) -> Router {
    Router::new()
        .route("/", get(pages::dashboard))
        .route("/signin", get(pages::signin_page).post(pages::signin))
        .route("/signin/oidc", get(pages::oidc_start))
        .route("/signin/oidc/callback", get(pages::oidc_callback))
        .route("/signout", post(pages::signout))
        .route("/lang", post(pages::set_lang))
        .route("/requests", get(pages::queue).post(pages::file))
        .route("/requests/new", get(pages::new_request))
        .route("/requests/{id}", get(pages::request))
        .route("/requests/{id}/live", get(pages::live))
        .route("/requests/{id}/certificate", get(pages::certificate))
        .route("/requests/{id}/bundle", post(pages::bundle))
        .route("/requests/{id}/{action}", post(pages::act))
        .route(
            "/requests/{id}/systems/{system}/{action}",
            post(pages::act_on_system),
        )
        .route("/subjects", get(pages::subject_form).post(pages::subject))
        .route("/consent", post(pages::consent))
        .route("/systems", get(pages::systems))
        .route("/audit", get(pages::audit_log))
        .route("/audit/verify", post(pages::audit_verify))
        .route("/systems/{system}/{action}", post(pages::pause_or_resume))
        .route("/retention/{id}", get(pages::retention_run))
        .route("/retention/{id}/approve", post(pages::retention_approve))
        .route("/assets/{file}", get(asset))
        .layer(axum::middleware::from_fn(headers))
        .with_state(console)
}

/// The Content-Security-Policy of every console page: nothing from
/// elsewhere, nothing inline, no framing, forms only to this server.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

async fn headers(req: Request, next: Next) -> Response {
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

const HTMX: &[u8] = include_bytes!("assets/htmx.min.js");
const CSS: &[u8] = include_bytes!("assets/console.css");

async fn asset(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "htmx.min.js" => (HTMX, "text/javascript; charset=utf-8"),
        "console.css" => (CSS, "text/css; charset=utf-8"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}

/// A page refused: the response that says why (boxed: a response is large,
/// and most results are not refusals).
pub struct Refused(Box<Response>);

impl From<Response> for Refused {
    fn from(r: Response) -> Refused {
        Refused(Box::new(r))
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        *self.0
    }
}

/// A signed-in user, from the session cookie: checked live at every
/// request (timeouts, and the token of a token sign-in).
pub struct Signed {
    id: String,
    s: Session,
    /// The page's path (no query), for the language switch to come back to.
    path: String,
}

impl Signed {
    fn lang(&self) -> Lang {
        self.s.lang
    }

    fn role(&self) -> Role {
        self.s.caller.role
    }

    fn name(&self) -> &str {
        &self.s.caller.name
    }

    fn may(&self, role: Role) -> bool {
        self.s.caller.role.allows(role)
    }

    /// Refuse (403) unless the role allows what `role` may do.
    fn need(&self, role: Role) -> Result<(), Refused> {
        if self.may(role) {
            Ok(())
        } else {
            Err(Refused::from(error_page(
                self.lang(),
                Some(self),
                StatusCode::FORBIDDEN,
                &format!(
                    "{} ({}) {} {}",
                    tr(self.lang(), "Your role", "Votre rôle"),
                    self.role(),
                    tr(
                        self.lang(),
                        "may not do this: it needs",
                        "ne permet pas cela : il faut"
                    ),
                    role
                ),
            )))
        }
    }

    /// Refuse (403) a form without this session's CSRF token.
    fn csrf(&self, given: &str) -> Result<(), Refused> {
        if self.s.csrf_ok(given) {
            Ok(())
        } else {
            Err(Refused::from(error_page(
                self.lang(),
                Some(self),
                StatusCode::FORBIDDEN,
                tr(
                    self.lang(),
                    "This form was not sent from this console's page (its security token is missing or wrong). Reload the page and try again.",
                    "Ce formulaire ne vient pas d’une page de cette console (son jeton de sécurité manque ou est faux). Rechargez la page et recommencez.",
                ),
            )))
        }
    }
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn to_signin(parts: &Parts) -> Response {
    if parts.headers.contains_key("hx-request") {
        // htmx follows this header with a full navigation.
        ([("hx-redirect", "/signin")], StatusCode::OK).into_response()
    } else {
        Redirect::to("/signin").into_response()
    }
}

impl FromRequestParts<Console> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, c: &Console) -> Result<Signed, Response> {
        let Some(id) = cookie_value(&parts.headers, c.cookie_name()).map(str::to_string) else {
            return Err(to_signin(parts));
        };
        let s = match c.app.engine.session(&id, c.limits).await {
            Ok(Some(s)) => s,
            Ok(None) => return Err(to_signin(parts)),
            Err(e) => return Err(error_from(browser_lang(&parts.headers), None, e.into())),
        };
        let path = parts.uri.path().to_string();
        Ok(Signed { id, s, path })
    }
}

/// The client's address, as the API counts it for lockouts.
pub struct Client(IpAddr);

impl FromRequestParts<Console> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, c: &Console) -> Result<Client, Self::Rejection> {
        Ok(Client(client_of(parts, &c.app.trusted_proxies)))
    }
}

/// The language a browser asks for (`Accept-Language`), English otherwise.
fn browser_lang(headers: &HeaderMap) -> Lang {
    let Some(v) = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
    else {
        return Lang::En;
    };
    for part in v.split(',') {
        let tag = part
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let primary = tag.split('-').next().unwrap_or("");
        if let Some(l) = Lang::parse(primary) {
            return l;
        }
    }
    Lang::En
}

/// A whole page: the header with navigation for a signed-in user, the
/// content, in `lang`.
fn page(lang: Lang, title: &str, who: Option<&Signed>, body: Markup) -> Markup {
    let l = lang;
    html! {
        (DOCTYPE)
        html lang=(l.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="htmx-config" content=r#"{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false,"historyCacheSize":0}"#;
                title { (title) " · oubli" }
                link rel="stylesheet" href="/assets/console.css";
                script src="/assets/htmx.min.js" defer {}
            }
            body {
                a.skip href="#main" { (tr(l, "Skip to the content", "Aller au contenu")) }
                header.top {
                    a.brand href="/" { "oubli" }
                    @if let Some(s) = who {
                        nav aria-label=(tr(l, "Main", "Principale")) {
                            a href="/" { (tr(l, "Dashboard", "Tableau de bord")) }
                            a href="/requests" { (tr(l, "Requests", "Demandes")) }
                            @if s.may(Role::Operator) {
                                a href="/requests/new" { (tr(l, "New request", "Nouvelle demande")) }
                            }
                            a href="/subjects" { (tr(l, "Subjects", "Personnes")) }
                            a href="/systems" { (tr(l, "Systems", "Systèmes")) }
                            a href="/audit" { (tr(l, "Audit log", "Journal d’audit")) }
                        }
                        div.who {
                            span { (s.name()) " · " (words::role(l, s.role())) }
                            form method="post" action="/lang" {
                                (csrf_field(s))
                                input type="hidden" name="back" value=(s.path);
                                @match l {
                                    Lang::En => button.link name="lang" value="fr" lang="fr" { "Français" },
                                    Lang::Fr => button.link name="lang" value="en" lang="en" { "English" },
                                }
                            }
                            form method="post" action="/signout" {
                                (csrf_field(s))
                                button.link type="submit" { (tr(l, "Sign out", "Se déconnecter")) }
                            }
                        }
                    }
                }
                main id="main" tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

fn csrf_field(s: &Signed) -> Markup {
    html! { input type="hidden" name="_csrf" value=(s.s.csrf); }
}

fn html_response(status: StatusCode, m: Markup) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        m.into_string(),
    )
        .into_response()
}

/// A page saying what went wrong, with `status`.
fn error_page(lang: Lang, who: Option<&Signed>, status: StatusCode, detail: &str) -> Response {
    let l = lang;
    let title = match status {
        StatusCode::FORBIDDEN => tr(l, "Not allowed", "Non autorisé"),
        StatusCode::NOT_FOUND => tr(l, "Not found", "Introuvable"),
        StatusCode::CONFLICT => tr(l, "Not now", "Pas maintenant"),
        StatusCode::UNPROCESSABLE_ENTITY | StatusCode::BAD_REQUEST => {
            tr(l, "Cannot do this", "Impossible")
        }
        StatusCode::TOO_MANY_REQUESTS => tr(l, "Too many attempts", "Trop de tentatives"),
        StatusCode::UNAUTHORIZED => tr(l, "Sign-in refused", "Connexion refusée"),
        _ => tr(l, "Something went wrong", "Une erreur s’est produite"),
    };
    let trace = crate::problem::TRACE_ID.try_with(Clone::clone).ok();
    html_response(
        status,
        page(
            l,
            title,
            who,
            html! {
                p.error role="alert" { (detail) }
                @if let Some(t) = trace {
                    p.muted { (tr(l, "Trace id", "Identifiant de trace")) " " code { (t) } }
                }
                p { a href="/requests" { (tr(l, "Back to the requests", "Retour aux demandes")) } }
            },
        ),
    )
}

/// The engine's error as a page: the API's mapping of its kind to a
/// status and words ([`Problem`]), once.
fn error_from(lang: Lang, who: Option<&Signed>, p: Problem) -> Response {
    let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    error_page(lang, who, status, &p.detail)
}

/// Days from `now` to `due`, rounded toward the deadline: 0 is "due
/// today", negative is overdue.
fn days_left(now: i64, due: i64) -> i64 {
    (due - now).div_euclid(86_400_000)
}

/// A time (ms since the epoch) as a date and time, UTC.
fn when(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_left_counts_whole_days_and_goes_negative_when_overdue() {
        let d = 86_400_000;
        assert_eq!(days_left(0, 3 * d), 3);
        assert_eq!(days_left(0, 3 * d - 1), 2);
        assert_eq!(days_left(0, 0), 0);
        assert_eq!(days_left(1, 0), -1);
        assert_eq!(days_left(2 * d, 0), -2);
    }

    #[test]
    fn the_language_follows_the_browser() {
        let mut h = HeaderMap::new();
        assert_eq!(browser_lang(&h), Lang::En);
        h.insert(
            header::ACCEPT_LANGUAGE,
            "fr-CH, fr;q=0.9, en;q=0.8".parse().unwrap(),
        );
        assert_eq!(browser_lang(&h), Lang::Fr);
        h.insert(header::ACCEPT_LANGUAGE, "de-DE, en;q=0.5".parse().unwrap());
        assert_eq!(browser_lang(&h), Lang::En);
    }

    #[test]
    fn cookies_are_read_by_exact_name() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "xoubli=1; oubli=abc; oubli-signin=s".parse().unwrap(),
        );
        assert_eq!(cookie_value(&h, "oubli"), Some("abc"));
        assert_eq!(cookie_value(&h, "oubli-signin"), Some("s"));
        assert_eq!(cookie_value(&h, "nope"), None);
    }
}
