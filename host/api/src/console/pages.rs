//! The console's pages and forms. Each handler: the session's role, the
//! form's CSRF token, the engine's use case, a page (or a redirect to the
//! page that shows the result: post, redirect, get).

use super::words::{self, tr};
use super::*;
use crate::routes::{SubjectInput, for_role, region, text, valid_id};
use axum::extract::{Form, Path, Query};
use oubli_core::identifiers::Identifiers;
use oubli_core::rights::certificate::SignedCertificate;
use oubli_core::rights::dashboard::Dashboard;
use oubli_core::rights::engine::{
    Action, Attestation, Correction, NewRequest, Params, RequestDetail, RequestView, SystemView,
};
use oubli_model::request::Filter;
use oubli_model::{RequestKind, RequestState};
use serde::Deserialize;

type Page = Result<Response, Refused>;

const PAGE_SIZE: i64 = 50;

fn ok(m: Markup) -> Page {
    Ok(html_response(StatusCode::OK, m))
}

fn see(path: &str) -> Response {
    Redirect::to(path).into_response()
}

/// The engine's answer, or its error as a page.
fn engine<T>(s: &Signed, r: Result<T, impl Into<Problem>>) -> Result<T, Refused> {
    r.map_err(|e| error_from(s.lang(), Some(s), e.into()).into())
}

fn refuse(s: &Signed, p: Problem) -> Refused {
    error_from(s.lang(), Some(s), p).into()
}

// ---------------------------------------------------------------- sign-in

#[derive(Deserialize)]
pub(super) struct SigninForm {
    token: String,
}

pub(super) async fn signin_page(State(c): State<Console>, headers: HeaderMap) -> Response {
    signin_view(&c, browser_lang(&headers), StatusCode::OK, None)
}

fn signin_view(c: &Console, l: Lang, status: StatusCode, problem: Option<&str>) -> Response {
    html_response(
        status,
        page(
            l,
            tr(l, "Sign in", "Connexion"),
            None,
            html! {
                @if let Some(p) = problem {
                    p.error role="alert" { (p) }
                }
                @if c.oidc.is_some() {
                    p { a.button href="/signin/oidc" { (tr(l, "Sign in with your organisation's account", "Se connecter avec le compte de votre organisation")) } }
                    p.muted { (tr(l, "Or with an API token:", "Ou avec un jeton d’API :")) }
                }
                form method="post" action="/signin" {
                    label for="token" { (tr(l, "API token", "Jeton d’API")) }
                    input id="token" name="token" type="password" autocomplete="off" required spellcheck="false";
                    p.hint { (tr(l, "A token from `oubli token create`; it is exchanged for a session and never kept in the browser.", "Un jeton créé par `oubli token create` ; il est échangé contre une session et n’est pas gardé par le navigateur.")) }
                    button type="submit" { (tr(l, "Sign in", "Se connecter")) }
                }
            },
        ),
    )
}

fn signed_in(c: &Console, id: &str) -> Response {
    let mut r = see("/");
    r.headers_mut().append(
        header::SET_COOKIE,
        c.cookie(c.cookie_name(), id, true, 365 * 86_400),
    );
    r
}

pub(super) async fn signin(
    State(c): State<Console>,
    Client(ip): Client,
    headers: HeaderMap,
    Form(form): Form<SigninForm>,
) -> Response {
    let l = browser_lang(&headers);
    let now = c.app.engine.now();
    let locked = c.app.failed_auth.locked(ip, now);
    match c.app.engine.authenticate(form.token.trim()).await {
        Ok(Ok(caller)) => {
            tracing::info!(actor = %caller.name, role = %caller.role, "console sign-in");
            match c
                .app
                .engine
                .open_session(&caller, Some(&caller.token), l, c.limits)
                .await
            {
                Ok(id) => signed_in(&c, &id),
                Err(e) => error_from(l, None, e.into()),
            }
        }
        Ok(Err(_)) if locked.is_some() => signin_view(
            &c,
            l,
            StatusCode::TOO_MANY_REQUESTS,
            Some(tr(
                l,
                "Too many failed sign-ins from this address: wait a minute.",
                "Trop de connexions échouées depuis cette adresse : attendez une minute.",
            )),
        ),
        Ok(Err(why)) => {
            c.app.failed_auth.failed(ip, now);
            tracing::info!(%ip, reason = %why, "console sign-in refused");
            signin_view(
                &c,
                l,
                StatusCode::UNAUTHORIZED,
                Some(tr(
                    l,
                    "This token is not valid (unknown, expired or revoked).",
                    "Ce jeton n’est pas valide (inconnu, expiré ou révoqué).",
                )),
            )
        }
        Err(e) => error_from(l, None, e.into()),
    }
}

pub(super) async fn oidc_start(State(c): State<Console>, headers: HeaderMap) -> Response {
    let l = browser_lang(&headers);
    let Some(o) = &c.oidc else {
        return error_page(
            l,
            None,
            StatusCode::NOT_FOUND,
            tr(
                l,
                "No identity provider is configured.",
                "Aucun fournisseur d’identité n’est configuré.",
            ),
        );
    };
    match o.start(c.app.engine.now()).await {
        Ok((url, state)) => {
            let mut r = see(&url);
            r.headers_mut().append(
                header::SET_COOKIE,
                c.cookie(c.state_cookie_name(), &state, false, 600),
            );
            r
        }
        Err(e) => signin_view(&c, l, StatusCode::BAD_GATEWAY, Some(&e.to_string())),
    }
}

#[derive(Deserialize)]
pub(super) struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

pub(super) async fn oidc_callback(
    State(c): State<Console>,
    headers: HeaderMap,
    Query(q): Query<Callback>,
) -> Response {
    let l = browser_lang(&headers);
    let Some(o) = &c.oidc else {
        return error_page(l, None, StatusCode::NOT_FOUND, "no identity provider");
    };
    let now = c.app.engine.now();
    let result = match (q.code, q.state, q.error) {
        (Some(code), Some(state), None) => {
            o.finish(
                &state,
                cookie_value(&headers, c.state_cookie_name()),
                &code,
                now,
            )
            .await
        }
        _ => Err(oidc::OidcError::Refused),
    };
    let mut r = match result {
        Ok(who) => {
            tracing::info!(actor = %who.name, role = %who.role, "console sign-in through the identity provider");
            let caller = oubli_core::rights::tokens::Caller {
                token: String::new(),
                name: who.name,
                role: who.role,
            };
            match c.app.engine.open_session(&caller, None, l, c.limits).await {
                Ok(id) => signed_in(&c, &id),
                Err(e) => error_from(l, None, e.into()),
            }
        }
        Err(e) => {
            let status = match e {
                oidc::OidcError::NoRole => StatusCode::FORBIDDEN,
                oidc::OidcError::Provider => StatusCode::BAD_GATEWAY,
                _ => StatusCode::UNAUTHORIZED,
            };
            tracing::info!(error = %e, "console sign-in through the identity provider refused");
            signin_view(&c, l, status, Some(&e.to_string()))
        }
    };
    r.headers_mut().append(
        header::SET_COOKIE,
        c.cookie(c.state_cookie_name(), "", false, 0),
    );
    r
}

#[derive(Deserialize)]
pub(super) struct CsrfOnly {
    #[serde(rename = "_csrf", default)]
    csrf: String,
}

pub(super) async fn signout(State(c): State<Console>, s: Signed, Form(f): Form<CsrfOnly>) -> Page {
    s.csrf(&f.csrf)?;
    engine(&s, c.app.engine.close_session(&s.id).await)?;
    tracing::info!(actor = %s.name(), "console sign-out");
    let mut r = see("/signin");
    r.headers_mut()
        .append(header::SET_COOKIE, c.cookie(c.cookie_name(), "", true, 0));
    Ok(r)
}

#[derive(Deserialize)]
pub(super) struct LangForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    lang: String,
    #[serde(default)]
    back: String,
}

pub(super) async fn set_lang(State(c): State<Console>, s: Signed, Form(f): Form<LangForm>) -> Page {
    s.csrf(&f.csrf)?;
    if let Some(l) = Lang::parse(&f.lang) {
        engine(&s, c.app.engine.set_session_lang(&s.id, l).await)?;
    }
    // Back to the page the switch was on: a path of this console only (no
    // other host, no scheme), else the dashboard.
    Ok(see(local_path(&f.back).unwrap_or("/")))
}

/// `p` if it is a path on this server: `/` then no second `/` or `\`, and
/// nothing a browser would read as another host.
fn local_path(p: &str) -> Option<&str> {
    let ok = p.starts_with('/')
        && !p.starts_with("//")
        && !p.starts_with("/\\")
        && p.len() <= 512
        && p.bytes().all(|b| b.is_ascii_graphic());
    ok.then_some(p)
}

// -------------------------------------------------------------- dashboard

pub(super) async fn dashboard(State(c): State<Console>, s: Signed) -> Page {
    let d = engine(&s, c.app.engine.dashboard().await)?;
    let l = s.lang();
    ok(page(
        l,
        tr(l, "Dashboard", "Tableau de bord"),
        Some(&s),
        dashboard_body(l, &d),
    ))
}

fn duration_words(l: Lang, ms: i64) -> String {
    let h = ms as f64 / 3_600_000.0;
    if h < 1.0 {
        format!("{:.0} {}", h * 60.0, tr(l, "minutes", "minutes"))
    } else if h < 48.0 {
        format!("{h:.1} {}", tr(l, "hours", "heures"))
    } else {
        format!("{:.1} {}", h / 24.0, tr(l, "days", "jours"))
    }
}

fn dashboard_body(l: Lang, d: &Dashboard) -> Markup {
    let open: Vec<(RequestState, i64)> = d
        .by_state
        .iter()
        .filter_map(|(st, n)| {
            RequestState::ALL
                .iter()
                .find(|x| x.as_str() == st)
                .map(|x| (*x, *n))
        })
        .filter(|(st, _)| !st.is_final())
        .collect();
    let open_total: i64 = open.iter().map(|(_, n)| n).sum();
    html! {
        div.cards {
            div.card { span.big { (open_total) } span { (tr(l, "open requests", "demandes en cours")) } }
            a.card.alert[d.overdue > 0] href="/requests?due=overdue" { span.big { (d.overdue) } span { (tr(l, "overdue", "en retard")) } }
            a.card href="/requests?due=7" { span.big { (d.due_this_week) } span { (tr(l, "due within 7 days", "à rendre sous 7 jours")) } }
            div.card {
                span.big { @match d.median_completion_ms { Some(ms) => (duration_words(l, ms)), None => "–" } }
                span { (tr(l, "median time to completion (30 days, ", "durée médiane de traitement (30 jours, ")) (d.completed_30d) (tr(l, " completed)", " terminées)")) }
            }
        }
        h2 { (tr(l, "Open requests by state", "Demandes en cours par état")) }
        (bars(
            tr(l, "Open requests by state", "Demandes en cours par état"),
            &open.iter().map(|(st, n)| (words::state(l, *st).to_string(), *n as f64, n.to_string())).collect::<Vec<_>>(),
            None,
        ))
        h2 { (tr(l, "Systems: share of requests that failed (30 days)", "Systèmes : part des demandes en échec (30 jours)")) }
        (bars(
            tr(l, "Share of requests that failed, per system", "Part des demandes en échec, par système"),
            &d.systems.iter().map(|h| {
                let rate = h.failure_rate().unwrap_or(0.0);
                (h.system.clone(), rate, format!("{:.0} % ({}/{})", rate * 100.0, h.failed, h.requests))
            }).collect::<Vec<_>>(),
            Some(1.0),
        ))
    }
}

/// A horizontal bar chart as SVG (no script, no inline style): one bar per
/// item, its label and value written beside it, and the same figures in a
/// table for screen readers.
fn bars(title: &str, items: &[(String, f64, String)], max: Option<f64>) -> Markup {
    let top = max
        .unwrap_or_else(|| items.iter().map(|i| i.1).fold(0.0, f64::max))
        .max(1e-9);
    let row = 28;
    let height = (items.len().max(1) * row) as u32 + 8;
    html! {
        figure.chart {
            svg role="img" aria-label=(title) viewBox={"0 0 600 " (height)} width="600" height=(height) xmlns="http://www.w3.org/2000/svg" {
                @for (i, (label, v, shown)) in items.iter().enumerate() {
                    @let y = i * row + 4;
                    text x="0" y=(y + 17) class="label" { (label) }
                    rect x="200" y=(y) height="20" width=(format!("{:.1}", (v / top) * 300.0)) class="bar" {}
                    text x=(format!("{:.1}", 206.0 + (v / top) * 300.0)) y=(y + 15) class="value" { (shown) }
                }
                @if items.is_empty() { text x="0" y="20" class="label" { "–" } }
            }
            table.sr-only {
                caption { (title) }
                @for (label, _, shown) in items { tr { th scope="row" { (label) } td { (shown) } } }
            }
        }
    }
}

// ------------------------------------------------------------------ queue

#[derive(Deserialize, Default)]
pub(super) struct QueueQuery {
    state: Option<String>,
    kind: Option<String>,
    system: Option<String>,
    /// `overdue`, or a number of days.
    due: Option<String>,
    attention: Option<String>,
    all: Option<String>,
    cursor: Option<String>,
}

pub(super) async fn queue(
    State(c): State<Console>,
    s: Signed,
    Query(q): Query<QueueQuery>,
) -> Page {
    let l = s.lang();
    let now = c.app.engine.now();
    let bad = |what: &str| {
        refuse(
            &s,
            Problem::bad_request(format!(
                "{} {what}",
                tr(l, "not a filter:", "filtre inconnu :")
            )),
        )
    };
    let state = match q.state.as_deref().filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => Some(
            *RequestState::ALL
                .iter()
                .find(|x| x.as_str() == v)
                .ok_or_else(|| bad("state"))?,
        ),
    };
    let kind = match q.kind.as_deref().filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => Some(
            *RequestKind::ALL
                .iter()
                .find(|x| x.as_str() == v)
                .ok_or_else(|| bad("kind"))?,
        ),
    };
    let names = system_names(&c);
    let system = match q.system.as_deref().filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => Some(
            names
                .iter()
                .find(|n| *n == v)
                .cloned()
                .ok_or_else(|| bad("system"))?,
        ),
    };
    let due_before = match q.due.as_deref().filter(|v| !v.is_empty()) {
        None => None,
        Some("overdue") => Some(now),
        Some(n) => Some(
            n.parse::<i64>()
                .ok()
                .filter(|d| (0..=3650).contains(d))
                .map(|d| now + (d + 1) * 86_400_000)
                .ok_or_else(|| bad("due"))?,
        ),
    };
    let (after_due, after) = match q.cursor.as_deref().filter(|v| !v.is_empty()) {
        None => (None, None),
        Some(cur) => {
            let (d, id) = cur.split_once('_').ok_or_else(|| bad("cursor"))?;
            let d = d.parse::<i64>().map_err(|_| bad("cursor"))?;
            valid_id(id).map_err(|_| bad("cursor"))?;
            (Some(d), Some(id.to_string()))
        }
    };
    let all = q.all.is_some();
    let attention = q.attention.is_some();
    let mut items = engine(
        &s,
        c.app
            .engine
            .list(&Filter {
                state,
                due_before,
                needs_attention: attention,
                kind,
                system: system.clone(),
                open: !all && state.is_none(),
                by_due: true,
                after_due,
                after,
                limit: PAGE_SIZE + 1,
                ..Filter::default()
            })
            .await,
    )?;
    let next = if items.len() as i64 > PAGE_SIZE {
        items.truncate(PAGE_SIZE as usize);
        items.last().map(|r| format!("{}_{}", r.due_at, r.id))
    } else {
        None
    };
    let next_url = next.map(|cur| {
        let mut u = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("state", q.state.as_deref()),
            ("kind", q.kind.as_deref()),
            ("system", q.system.as_deref()),
            ("due", q.due.as_deref()),
            ("attention", q.attention.as_deref()),
            ("all", q.all.as_deref()),
        ] {
            if let Some(v) = v.filter(|v| !v.is_empty()) {
                u.append_pair(k, v);
            }
        }
        u.append_pair("cursor", &cur);
        format!("/requests?{}", u.finish())
    });
    let body = html! {
        form.filters method="get" action="/requests" role="search" {
            label { (tr(l, "State", "État")) " "
                select name="state" {
                    option value="" { (tr(l, "any open", "toutes en cours")) }
                    @for st in RequestState::ALL {
                        option value=(st.as_str()) selected[state == Some(*st)] { (words::state(l, *st)) }
                    }
                }
            }
            label { (tr(l, "Kind", "Type")) " "
                select name="kind" {
                    option value="" { (tr(l, "any", "tous")) }
                    @for k in RequestKind::ALL {
                        option value=(k.as_str()) selected[kind == Some(*k)] { (words::kind(l, *k)) }
                    }
                }
            }
            label { (tr(l, "System", "Système")) " "
                select name="system" {
                    option value="" { (tr(l, "any", "tous")) }
                    @for n in &names {
                        option value=(n) selected[system.as_deref() == Some(n.as_str())] { (n) }
                    }
                }
            }
            label { (tr(l, "Due", "Échéance")) " "
                select name="due" {
                    option value="" { (tr(l, "any time", "toutes")) }
                    option value="overdue" selected[q.due.as_deref() == Some("overdue")] { (tr(l, "overdue", "en retard")) }
                    @for d in ["7", "14", "30"] {
                        option value=(d) selected[q.due.as_deref() == Some(d)] { (tr(l, "within ", "sous ")) (d) (tr(l, " days", " jours")) }
                    }
                }
            }
            label.check { input type="checkbox" name="attention" value="1" checked[attention]; " " (tr(l, "needs attention", "à traiter")) }
            label.check { input type="checkbox" name="all" value="1" checked[all]; " " (tr(l, "include finished", "y compris terminées")) }
            button type="submit" { (tr(l, "Filter", "Filtrer")) }
        }
        (queue_table(l, now, &items))
        @if let Some(u) = next_url {
            p { a rel="next" href=(u) { (tr(l, "Next page", "Page suivante")) " →" } }
        }
    };
    ok(page(l, tr(l, "Requests", "Demandes"), Some(&s), body))
}

fn system_names(c: &Console) -> Vec<String> {
    c.app
        .engine
        .systems()
        .config()
        .systems
        .iter()
        .map(|s| s.name().to_string())
        .collect()
}

fn due_cell(l: Lang, now: i64, r: &RequestView) -> Markup {
    let d = days_left(now, r.due_at);
    html! {
        @if r.state.is_final() {
            span.muted { "–" }
        } @else if r.overdue {
            strong.overdue { (tr(l, "overdue by ", "en retard de ")) (-d) (tr(l, " d", " j")) }
        } @else {
            span { (d) (tr(l, " days left", " jours restants")) }
        }
        br; small.muted { (when(r.due_at)) }
    }
}

fn queue_table(l: Lang, now: i64, items: &[RequestView]) -> Markup {
    html! {
        @if items.is_empty() {
            p.muted { (tr(l, "No request matches.", "Aucune demande ne correspond.")) }
        } @else {
            div.scroll {
                table.queue {
                    thead { tr {
                        th scope="col" { (tr(l, "Request", "Demande")) }
                        th scope="col" { (tr(l, "Kind", "Type")) }
                        th scope="col" { (tr(l, "State", "État")) }
                        th scope="col" { (tr(l, "Deadline", "Échéance")) }
                        th scope="col" { (tr(l, "Received", "Reçue")) }
                        th scope="col" { (tr(l, "Filed by", "Déposée par")) }
                    } }
                    tbody {
                        @for r in items {
                            tr.overdue[r.overdue] {
                                td { a href={"/requests/" (r.id)} { code { (r.id) } } }
                                td { (words::kind(l, r.kind)) }
                                td { span class={"state " (r.state.as_str())} { (words::state(l, r.state)) } }
                                td { (due_cell(l, now, r)) }
                                td { (when(r.received_at)) }
                                td { (r.requested_by) }
                            }
                        }
                    }
                }
            }
        }
    }
}

// ------------------------------------------------------------ new request

pub(super) async fn new_request(State(c): State<Console>, s: Signed) -> Page {
    s.need(Role::Operator)?;
    let l = s.lang();
    let once = oubli_crypto::random_token(16).unwrap_or_default();
    let filing: Vec<RequestKind> = RequestKind::ALL
        .iter()
        .copied()
        .filter(|k| *k != RequestKind::Lift)
        .collect();
    let policy_attests = c.app.engine.policy().attest_identity;
    let body = html! {
        form.stack method="post" action="/requests" {
            (csrf_field(&s))
            input type="hidden" name="once" value=(once);
            label for="kind" { (tr(l, "What the person asks for", "Ce que la personne demande")) }
            select id="kind" name="kind" required {
                @for k in &filing { option value=(k.as_str()) { (words::kind(l, *k)) } }
            }
            fieldset {
                legend { (tr(l, "Who: one per line; at least one email, phone or external id", "Qui : un par ligne ; au moins un courriel, téléphone ou identifiant externe")) }
                label for="emails" { (tr(l, "Email addresses", "Adresses électroniques")) }
                textarea id="emails" name="emails" rows="2" autocomplete="off" spellcheck="false" {}
                label for="phones" { (tr(l, "Phone numbers", "Numéros de téléphone")) }
                textarea id="phones" name="phones" rows="2" autocomplete="off" spellcheck="false" {}
                label for="region" { (tr(l, "Country of national phone numbers (ISO code, e.g. FR)", "Pays des numéros nationaux (code ISO, ex. FR)")) }
                input id="region" name="region" maxlength="2" autocomplete="off";
                label for="external_ids" { (tr(l, "External ids (namespace:id)", "Identifiants externes (espace:id)")) }
                textarea id="external_ids" name="external_ids" rows="2" autocomplete="off" spellcheck="false" {}
                label for="names" { (tr(l, "Names (hints only)", "Noms (indices seulement)")) }
                textarea id="names" name="names" rows="1" autocomplete="off" {}
            }
            fieldset {
                legend { (tr(l, "For a rectification, restriction, objection or consent withdrawal", "Pour une rectification, une limitation, une opposition ou un retrait du consentement")) }
                label for="changes" { (tr(l, "Corrections, one per line: field = new value, or system.field = new value", "Corrections, une par ligne : champ = nouvelle valeur, ou système.champ = nouvelle valeur")) }
                textarea id="changes" name="changes" rows="2" autocomplete="off" {}
                label for="scope" { (tr(l, "Scope (comma-separated: all, a category, a purpose)", "Portée (séparée par des virgules : all, une catégorie, une finalité)")) }
                input id="scope" name="scope" autocomplete="off";
            }
            fieldset {
                legend { (tr(l, "Intake (a request made by phone, letter or email)", "Réception (une demande faite par téléphone, courrier ou courriel)")) }
                label for="channel" { (tr(l, "Channel", "Canal")) }
                select id="channel" name="channel" {
                    option value="" { (tr(l, "(not recorded)", "(non indiqué)")) }
                    @for ch in oubli_model::Channel::ALL { option value=(ch.as_str()) { (words::channel(l, *ch)) } }
                }
                label for="received_at" { (tr(l, "Received at, with its offset (2026-12-01T09:30:00+01:00): the deadline runs from then", "Reçue le, avec son décalage (2026-12-01T09:30:00+01:00) : le délai court à partir de là")) }
                input id="received_at" name="received_at" autocomplete="off" placeholder="2026-12-01T09:30:00+01:00";
            }
            label for="notes" { (tr(l, "Notes (kept sealed in the request's history; auditors do not see them)", "Notes (gardées scellées dans l’historique de la demande ; les auditeurs ne les voient pas)")) }
            textarea id="notes" name="notes" rows="2" autocomplete="off" {}
            fieldset {
                legend { (tr(l, "Identity check", "Vérification d’identité")) @if policy_attests { " " small { (tr(l, "(required before planning)", "(requise avant la préparation)")) } } }
                label for="method" { (tr(l, "How (id-document, call-back, email-link)", "Comment (pièce d’identité, rappel, lien par courriel)")) }
                input id="method" name="method" autocomplete="off";
                label for="evidence" { (tr(l, "Evidence (kept sealed)", "Preuve (gardée scellée)")) }
                textarea id="evidence" name="evidence" rows="2" autocomplete="off" {}
            }
            button type="submit" { (tr(l, "File the request", "Déposer la demande")) }
        }
    };
    ok(page(
        l,
        tr(l, "New request", "Nouvelle demande"),
        Some(&s),
        body,
    ))
}

#[derive(Deserialize)]
pub(super) struct FileForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    #[serde(default)]
    once: String,
    kind: String,
    #[serde(default)]
    emails: String,
    #[serde(default)]
    phones: String,
    #[serde(default)]
    region: String,
    #[serde(default)]
    external_ids: String,
    #[serde(default)]
    names: String,
    #[serde(default)]
    changes: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    method: String,
    #[serde(default)]
    evidence: String,
    #[serde(default)]
    notes: String,
    #[serde(default)]
    channel: String,
    #[serde(default)]
    received_at: String,
}

fn lines(s: &str) -> Vec<String> {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

fn identifiers(
    emails: &str,
    phones: &str,
    external_ids: &str,
    names: &str,
) -> Result<Identifiers, Problem> {
    SubjectInput {
        emails: lines(emails),
        phones: lines(phones),
        names: lines(names),
        external_ids: lines(external_ids),
    }
    .identifiers()
}

fn region_of(r: &str) -> Result<Option<oubli_core::identifiers::Region>, Problem> {
    region(Some(r.trim().to_string()).filter(|r| !r.is_empty()))
}

pub(super) async fn file(State(c): State<Console>, s: Signed, Form(f): Form<FileForm>) -> Page {
    s.need(Role::Operator)?;
    s.csrf(&f.csrf)?;
    let kind = RequestKind::ALL
        .iter()
        .copied()
        .find(|k| k.as_str() == f.kind && *k != RequestKind::Lift)
        .ok_or_else(|| refuse(&s, Problem::unprocessable("not a kind of request")))?;
    let mut changes = Vec::new();
    for line in lines(&f.changes) {
        let (left, value) = line
            .split_once('=')
            .ok_or_else(|| refuse(&s, Problem::unprocessable("a correction is field = value")))?;
        let left = left.trim();
        let (system, field) = match left.split_once('.') {
            Some((sys, field))
                if c.app
                    .engine
                    .systems()
                    .config()
                    .systems
                    .iter()
                    .any(|x| x.name() == sys) =>
            {
                (Some(sys.to_string()), field.to_string())
            }
            _ => (None, left.to_string()),
        };
        let value = value.trim();
        engine(&s, text("a field", &field))?;
        engine(&s, text("a value", value))?;
        changes.push(Correction {
            system,
            field,
            new_value: (!value.is_empty()).then(|| value.to_string()),
        });
    }
    let scope: Vec<String> = f
        .scope
        .split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect();
    for x in &scope {
        engine(&s, text("a scope", x))?;
    }
    let attestation = match (f.method.trim(), f.evidence.trim()) {
        ("", "") => None,
        (m, e) => {
            engine(&s, text("method", m))?;
            engine(&s, text("evidence", e))?;
            Some(Attestation {
                method: m.to_string(),
                evidence: e.to_string(),
            })
        }
    };
    let new = NewRequest {
        id: None,
        kind,
        identifiers: engine(
            &s,
            identifiers(&f.emails, &f.phones, &f.external_ids, &f.names),
        )?,
        region: engine(&s, region_of(&f.region))?,
        actor: s.name().to_string(),
        params: Params {
            changes,
            scope,
            lifts: None,
        },
        attestation,
        intake: engine(
            &s,
            crate::routes::intake(
                match f.channel.trim() {
                    "" => None,
                    c => Some(
                        oubli_model::Channel::parse(c)
                            .ok_or_else(|| refuse(&s, Problem::unprocessable("not a channel")))?,
                    ),
                },
                Some(f.received_at.trim()).filter(|t| !t.is_empty()),
            ),
        )?,
    };
    // A form sent twice (a double click, a reload) files one request.
    let notes = f.notes.trim();
    engine(&s, text("notes", notes))?;
    let (view, created) = if f.once.len() == 32 && f.once.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        let key = format!("{}\nconsole:{}", s.name(), f.once);
        engine(&s, c.app.engine.file_once(new, &key, &f.once).await)?
    } else {
        (engine(&s, c.app.engine.file(new).await)?, true)
    };
    if created && !notes.is_empty() {
        engine(&s, c.app.engine.note(&view.id, s.name(), notes).await)?;
    }
    Ok(see(&format!("/requests/{}", view.id)))
}

// ---------------------------------------------------------- request page

async fn detail(c: &Console, s: &Signed, id: &str) -> Result<RequestDetail, Refused> {
    engine(s, valid_id(id))?;
    let d = engine(s, c.app.engine.show(id).await)?;
    Ok(for_role(d, s.role()))
}

pub(super) async fn request(State(c): State<Console>, s: Signed, Path(id): Path<String>) -> Page {
    let d = detail(&c, &s, &id).await?;
    let l = s.lang();
    let now = c.app.engine.now();
    let title = format!("{} {}", tr(l, "Request", "Demande"), d.request.id);
    ok(page(l, &title, Some(&s), request_body(&c, &s, &d, now)))
}

#[derive(Deserialize)]
pub(super) struct LiveQuery {
    /// The request's state when the page was drawn.
    state: Option<String>,
    /// The fingerprint of what the page shows now.
    v: Option<String>,
}

/// The moving part of a request's page, for htmx: unchanged, nothing
/// (204, so a form being filled in is left alone); the request in another
/// state, a reload of the whole page (its actions change with the state);
/// otherwise the part anew.
pub(super) async fn live(
    State(c): State<Console>,
    s: Signed,
    Path(id): Path<String>,
    Query(q): Query<LiveQuery>,
) -> Page {
    let d = detail(&c, &s, &id).await?;
    if q.state
        .as_deref()
        .is_some_and(|st| st != d.request.state.as_str())
    {
        return Ok(([("hx-refresh", "true")], StatusCode::OK).into_response());
    }
    let (inner, v) = live_inner(&s, &d);
    if q.v.as_deref() == Some(v.as_str()) {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    ok(live_wrap(&d, inner, &v))
}

fn request_body(c: &Console, s: &Signed, d: &RequestDetail, now: i64) -> Markup {
    let l = s.lang();
    let r = &d.request;
    let restricting = matches!(
        r.kind,
        RequestKind::Restriction | RequestKind::Objection | RequestKind::ConsentWithdrawal
    );
    html! {
        dl.facts {
            dt { (tr(l, "Kind", "Type")) } dd { (words::kind(l, r.kind)) }
            dt { (tr(l, "Deadline", "Échéance")) } dd { (due_cell(l, now, r)) @if r.extended_months > 0 { " " small { (tr(l, "(extended by ", "(prolongée de ")) (r.extended_months) (tr(l, " months)", " mois)")) } } }
            dt { (tr(l, "Received", "Reçue")) } dd { (when(r.received_at)) @if let Some(ch) = r.channel { " · " (words::channel(l, ch)) } }
            dt { (tr(l, "Filed by", "Déposée par")) } dd { (r.requested_by) }
            @if let Some(a) = &r.attested_by { dt { (tr(l, "Identity attested by", "Identité attestée par")) } dd { (a) } }
            @if let Some(a) = &r.approved_by { dt { (tr(l, "Approved by", "Approuvée par")) } dd { (a) } }
            dt { (tr(l, "Subject (blind-index prefixes)", "Personne (préfixes d’index aveugle)")) } dd { @for p in &r.subject { code { (p) } " " } }
        }
        (live_section(s, d))
        section aria-labelledby="actions" {
            h2 id="actions" { (tr(l, "Actions", "Actions")) }
            div.actions {
                @if r.state == RequestState::Received && s.may(Role::Operator) {
                    form.stack method="post" action={"/requests/" (r.id) "/attest"} {
                        (csrf_field(s))
                        h3 { (tr(l, "Attest the person's identity", "Attester l’identité de la personne")) }
                        label for="a-method" { (tr(l, "How", "Comment")) } input id="a-method" name="method" required;
                        label for="a-evidence" { (tr(l, "Evidence", "Preuve")) } textarea id="a-evidence" name="evidence" required {}
                        button type="submit" { (tr(l, "Attest", "Attester")) }
                    }
                }
                @if r.state == RequestState::AwaitingApproval && s.may(Role::Approver) {
                    form method="post" action={"/requests/" (r.id) "/approve"} {
                        (csrf_field(s))
                        h3 { (tr(l, "Approve the plan", "Approuver le plan")) }
                        p.hint { (tr(l, "Four eyes: you may not approve a request you filed.", "Quatre yeux : vous ne pouvez pas approuver une demande que vous avez déposée.")) }
                        button.primary type="submit" { (tr(l, "Approve", "Approuver")) }
                    }
                    form.stack method="post" action={"/requests/" (r.id) "/reject"} {
                        (csrf_field(s))
                        h3 { (tr(l, "Reject the plan", "Rejeter le plan")) }
                        label for="rj-reason" { (tr(l, "Why", "Pourquoi")) } textarea id="rj-reason" name="reason" required {}
                        button.danger type="submit" { (tr(l, "Reject", "Rejeter")) }
                    }
                }
                @if !r.state.is_final() && s.may(Role::Operator) {
                    form.stack method="post" action={"/requests/" (r.id) "/extend"} {
                        (csrf_field(s))
                        h3 { (tr(l, "Extend the deadline (Art. 12(3))", "Prolonger le délai (art. 12(3))")) }
                        label for="x-months" { (tr(l, "By", "De")) }
                        select id="x-months" name="months" { option value="1" { "1 " (tr(l, "month", "mois")) } option value="2" { "2 " (tr(l, "months", "mois")) } }
                        label for="x-reason" { (tr(l, "Why (complexity, number of requests)", "Pourquoi (complexité, nombre de demandes)")) } textarea id="x-reason" name="reason" required {}
                        label for="x-told" { (tr(l, "How and when the person was told", "Comment et quand la personne a été informée")) } input id="x-told" name="told" required;
                        button type="submit" { (tr(l, "Extend", "Prolonger")) }
                    }
                    form.stack method="post" action={"/requests/" (r.id) "/cancel"} {
                        (csrf_field(s))
                        h3 { (tr(l, "Cancel the request", "Annuler la demande")) }
                        label for="c-reason" { (tr(l, "Why", "Pourquoi")) } textarea id="c-reason" name="reason" required {}
                        button.danger type="submit" { (tr(l, "Cancel", "Annuler")) }
                    }
                }
                @if restricting && matches!(r.state, RequestState::Completed | RequestState::PartiallyCompleted) && s.may(Role::Operator) {
                    form.stack method="post" action={"/requests/" (r.id) "/lift"} {
                        (csrf_field(s))
                        h3 { (tr(l, "Lift the restriction (Art. 18(3))", "Lever la limitation (art. 18(3))")) }
                        label for="l-reason" { (tr(l, "Why", "Pourquoi")) } textarea id="l-reason" name="reason" required {}
                        label for="l-told" { (tr(l, "How and when the person was told", "Comment et quand la personne a été informée")) } input id="l-told" name="told" required;
                        button type="submit" { (tr(l, "Lift", "Lever")) }
                    }
                }
                @if s.may(Role::Operator) {
                    form.stack method="post" action={"/requests/" (r.id) "/note"} {
                        (csrf_field(s))
                        h3 { (tr(l, "Add a note", "Ajouter une note")) }
                        label for="n-note" { (tr(l, "Note (sealed; auditors do not see it)", "Note (scellée ; les auditeurs ne la voient pas)")) }
                        textarea id="n-note" name="note" required {}
                        button type="submit" { (tr(l, "Add", "Ajouter")) }
                    }
                }
                @if d.answer.as_ref().is_some_and(|a| a.removed_at.is_none()) && s.may(Role::Operator) {
                    form.stack method="post" action={"/requests/" (r.id) "/bundle"} {
                        (csrf_field(s))
                        h3 { (tr(l, "Download the answer (encrypted)", "Télécharger la réponse (chiffrée)")) }
                        label for="b-recipient" { (tr(l, "Encrypted for", "Chiffrée pour")) }
                        select id="b-recipient" name="recipient" {
                            option value="" { (tr(l, "this host's key", "la clé de cet hôte")) }
                            @for name in c.app.engine.recipient_names() {
                                option value=(name) { (name) " " (tr(l, "(keyring recipient)", "(destinataire du trousseau)")) }
                            }
                        }
                        label.check { input type="checkbox" name="allow_incomplete" value="1"; " " (tr(l, "even if written while the register of processing had gaps (its page says so)", "même si elle a été écrite quand le registre des traitements avait des lacunes (sa page le dit)")) }
                        button type="submit" { (tr(l, "Download", "Télécharger")) }
                    }
                }
                @if r.state.is_final() && r.kind != RequestKind::Access && r.kind != RequestKind::Portability {
                    p { a.button href={"/requests/" (r.id) "/certificate"} { (tr(l, "Certificate", "Certificat")) } }
                }
            }
        }
        section aria-labelledby="history" {
            h2 id="history" { (tr(l, "History", "Historique")) }
            div.scroll {
                table {
                    thead { tr {
                        th scope="col" { (tr(l, "When", "Quand")) }
                        th scope="col" { (tr(l, "Who", "Qui")) }
                        th scope="col" { (tr(l, "What", "Quoi")) }
                        th scope="col" { (tr(l, "System", "Système")) }
                        th scope="col" { (tr(l, "Why", "Pourquoi")) }
                    } }
                    tbody {
                        @for e in &d.events {
                            tr {
                                td { (when(e.at)) }
                                td { (e.actor) }
                                td { (words::action(l, &e.action)) @if let (Some(f), Some(t)) = (&e.from, &e.to) { " " small.muted { (f) " → " (t) } } }
                                td { (e.system.as_deref().unwrap_or("")) }
                                td.wrap { (e.reason.as_deref().unwrap_or("")) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The part of a request's page that moves while it runs: its state, the
/// host's own task, and each system; with its fingerprint.
fn live_inner(s: &Signed, d: &RequestDetail) -> (Markup, String) {
    use sha2::{Digest, Sha256};
    let l = s.lang();
    let r = &d.request;
    let inner = html! {
        h2 id="state" { (tr(l, "State: ", "État : ")) span class={"state " (r.state.as_str())} data-state=(r.state.as_str()) { (words::state(l, r.state)) } }
        @if let Some(p) = &d.planning {
            p { (tr(l, "The host's own task: ", "Tâche de l’hôte : ")) (p.task.operation.as_str()) ", " (p.task.state.as_str())
                " (" (tr(l, "attempt ", "essai ")) (p.task.attempt) "/" (p.task.max_attempts) ")"
                @if let Some(e) = &p.error { " — " span.error { (e.kind) @if !e.message.is_empty() { ": " (e.message) } } }
            }
            @if p.task.state.as_str() == "needs-attention" && s.may(Role::Operator) {
                form method="post" action={"/requests/" (r.id) "/retry-planning"} {
                    (csrf_field(s)) button type="submit" { (tr(l, "Retry now", "Réessayer maintenant")) }
                }
            }
        }
        @if let Some(a) = &d.answer {
            p { (tr(l, "Answer kept: ", "Réponse gardée : ")) (a.bytes) (tr(l, " bytes, SHA-256 ", " octets, SHA-256 ")) code { (a.sha256) }
                @if a.removed_at.is_some() { " " strong { (tr(l, "(removed at the end of its keeping period)", "(supprimée à la fin de sa durée de conservation)")) } } }
        }
        @for sys in &d.systems {
            (system_block(s, d, sys))
        }
    };
    let v = hex::encode(&Sha256::digest(inner.0.as_bytes())[..12]);
    (inner, v)
}

/// The live part in its section: while the request is not over, htmx asks
/// for it again every two seconds, saying what it shows.
fn live_wrap(d: &RequestDetail, inner: Markup, v: &str) -> Markup {
    let r = &d.request;
    let moving = !r.state.is_final();
    html! {
        section #live aria-live="polite" aria-labelledby="state"
            hx-get=[moving.then(|| format!("/requests/{}/live?state={}&v={v}", r.id, r.state.as_str()))]
            hx-trigger=[moving.then_some("every 2s")]
            hx-swap=[moving.then_some("outerHTML")] {
            (inner)
        }
    }
}

fn live_section(s: &Signed, d: &RequestDetail) -> Markup {
    let (inner, v) = live_inner(s, d);
    live_wrap(d, inner, &v)
}

fn system_block(s: &Signed, d: &RequestDetail, sys: &SystemView) -> Markup {
    let l = s.lang();
    let r = &d.request;
    let plan = sys
        .result
        .as_ref()
        .and_then(|x| x.plan.as_ref())
        .or(sys.plan.as_ref());
    let attention = sys.state.as_str() == "needs-attention"
        || sys
            .task
            .as_ref()
            .is_some_and(|t| matches!(t.state.as_str(), "needs-attention" | "manual"));
    let manual = sys
        .task
        .as_ref()
        .is_some_and(|t| t.state.as_str() == "manual");
    let awaiting = r.state == RequestState::AwaitingApproval;
    html! {
        article.system aria-labelledby={"sys-" (sys.system)} {
            h3 id={"sys-" (sys.system)} {
                (sys.system) " "
                span class={"state " (sys.state.as_str())} { (words::system_state(l, sys.state)) }
                @if let Some(c) = &sys.connector { " " small.muted { (c) } }
            }
            @if let Some(p) = &sys.paused { p.warn { (tr(l, "System paused: ", "Système en pause : ")) (p) } }
            p.counts {
                (tr(l, "found ", "trouvés ")) (sys.counts.found) " · "
                (tr(l, "done ", "faits ")) (sys.counts.done) " · "
                (tr(l, "retained ", "conservés ")) (sys.counts.retained) " · "
                (tr(l, "not found ", "introuvables ")) (sys.counts.not_found) " · "
                (tr(l, "failed ", "échoués ")) (sys.counts.failed)
            }
            @if let Some(t) = &sys.task {
                p { (tr(l, "Task: ", "Tâche : ")) (t.operation.as_str()) ", " (t.stage.as_str()) ", " (t.state.as_str())
                    " (" (tr(l, "attempt ", "essai ")) (t.attempt) "/" (t.max_attempts) @if t.polls > 0 { ", " (t.polls) (tr(l, " polls", " relances")) } ")" }
            }
            @if let Some(e) = &sys.error {
                p.error { (tr(l, "Last error: ", "Dernière erreur : ")) (e.kind) @if !e.message.is_empty() { " — " (e.message) } }
            }
            @if let Some(p) = plan {
                @if let Some(e) = &p.error {
                    p.warn { (tr(l, "Could not be searched: ", "Recherche impossible : ")) (e) " " (tr(l, "(its task searches again; it is never reported as holding nothing)", "(sa tâche cherche à nouveau ; il n’est jamais déclaré vide)")) }
                }
                @for w in &p.warnings { p.warn { "⚠ " (w) } }
                @if !p.items.is_empty() {
                    div.scroll {
                        table.plan {
                            caption { (tr(l, "Plan: what is done to each record, and why", "Plan : ce qui est fait à chaque enregistrement, et pourquoi")) }
                            thead { tr {
                                th scope="col" { (tr(l, "Record", "Enregistrement")) }
                                th scope="col" { (tr(l, "The person's part", "Rôle de la personne")) }
                                th scope="col" { (tr(l, "Summary (from the connector)", "Résumé (du connecteur)")) }
                                th scope="col" { (tr(l, "Action", "Action")) }
                                @if awaiting && s.may(Role::Approver) { th scope="col" { (tr(l, "Keep out", "Exclure")) } }
                            } }
                            tbody {
                                @for it in &p.items {
                                    tr {
                                        td { code { (it.reference.kind) " " (it.reference.id) } }
                                        td { (role_word(l, it.role)) }
                                        td.wrap { (it.summary) }
                                        td { (action_words(l, &it.action)) }
                                        @if awaiting && s.may(Role::Approver) {
                                            td {
                                                form.inline method="post" action={"/requests/" (r.id) "/systems/" (sys.system) "/exclude"} {
                                                    (csrf_field(s))
                                                    input type="hidden" name="record_kind" value=(it.reference.kind);
                                                    input type="hidden" name="record_id" value=(it.reference.id);
                                                    label.sr-only for={"ex-" (sys.system) "-" (it.reference.id)} { (tr(l, "Why", "Pourquoi")) }
                                                    input id={"ex-" (sys.system) "-" (it.reference.id)} name="reason" required placeholder=(tr(l, "why", "pourquoi"));
                                                    button type="submit" { (tr(l, "Exclude", "Exclure")) }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if let Some(res) = &sys.result {
                @if let Some(m) = &res.manual {
                    div.manual {
                        h4 { (tr(l, "Manual task: do this in the system", "Tâche manuelle : à faire dans le système")) }
                        p { (m.summary) }
                        ol { @for step in &m.steps { li { pre { (step) } } } }
                    }
                } @else if let Some(i) = &res.instructions {
                    div.manual {
                        h4 { (tr(l, "Manual task: do this in the system", "Tâche manuelle : à faire dans le système")) }
                        pre { (i) }
                    }
                }
                @if !res.still_found.is_empty() {
                    p.error { (tr(l, "Still found after erasure: ", "Encore trouvés après effacement : ")) @for x in &res.still_found { code { (x.kind) " " (x.id) } " " } }
                }
                @for m in &res.mismatches { p.error { (m) } }
                @if let Some(v) = &res.verified { p.muted { (tr(l, "Verified: ", "Vérifié : ")) (v) } }
            }
            @if s.may(Role::Operator) && !r.state.is_final() && (attention || manual) {
                div.actions {
                    form method="post" action={"/requests/" (r.id) "/systems/" (sys.system) "/retry"} {
                        (csrf_field(s)) button type="submit" { (tr(l, "Retry now", "Réessayer maintenant")) }
                    }
                    form.stack method="post" action={"/requests/" (r.id) "/systems/" (sys.system) "/skip"} {
                        (csrf_field(s))
                        label for={"sk-" (sys.system)} { (tr(l, "Skip, because", "Ignorer, parce que")) }
                        input id={"sk-" (sys.system)} name="reason" required;
                        button type="submit" { (tr(l, "Skip", "Ignorer")) }
                    }
                    @if manual {
                        form.stack method="post" action={"/requests/" (r.id) "/systems/" (sys.system) "/done"} {
                            (csrf_field(s))
                            label for={"dn-" (sys.system)} { (tr(l, "Done: what was done", "Fait : ce qui a été fait")) }
                            input id={"dn-" (sys.system)} name="note" required;
                            button type="submit" { (tr(l, "Mark done", "Marquer fait")) }
                        }
                    }
                }
            }
        }
    }
}

fn role_word(l: Lang, r: oubli_model::Role) -> &'static str {
    use oubli_model::Role::*;
    match r {
        Owner => tr(l, "own record", "son propre enregistrement"),
        Participant => tr(l, "shared with others", "partagé avec d’autres"),
        Mentioned => tr(l, "mentioned only", "seulement mentionnée"),
        Unreported => tr(
            l,
            "not reported by the connector",
            "non indiqué par le connecteur",
        ),
    }
}

fn action_words(l: Lang, a: &Action) -> Markup {
    html! {
        @match a {
            Action::Retain(why) => { strong { (tr(l, "keep", "conserver")) } ": " (why) }
            other => { strong { (other.label()) } }
        }
    }
}

// ---------------------------------------------------------------- actions

#[derive(Deserialize)]
pub(super) struct ActionForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    told: String,
    #[serde(default)]
    months: Option<u32>,
    #[serde(default)]
    method: String,
    #[serde(default)]
    evidence: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    record_kind: String,
    #[serde(default)]
    record_id: String,
}

fn required(s: &Signed, what: &str, v: &str) -> Result<(), Refused> {
    if v.trim().is_empty() {
        return Err(refuse(
            s,
            Problem::unprocessable(format!("{what} is required")),
        ));
    }
    engine(s, text(what, v))
}

pub(super) async fn act(
    State(c): State<Console>,
    s: Signed,
    Path((id, action)): Path<(String, String)>,
    Form(f): Form<ActionForm>,
) -> Page {
    let needed = match action.as_str() {
        "approve" | "reject" => Role::Approver,
        "attest" | "cancel" | "extend" | "lift" | "note" | "retry-planning" => Role::Operator,
        _ => return Err(refuse(&s, Problem::not_found("no such action"))),
    };
    s.need(needed)?;
    s.csrf(&f.csrf)?;
    engine(&s, valid_id(&id))?;
    let e = &c.app.engine;
    let who = s.name().to_string();
    let mut goto = id.clone();
    match action.as_str() {
        "approve" => engine(&s, e.approve(&id, &who).await)?,
        "reject" => {
            required(&s, "reason", &f.reason)?;
            engine(&s, e.reject(&id, &who, &f.reason).await)?
        }
        "cancel" => {
            required(&s, "reason", &f.reason)?;
            engine(&s, e.cancel(&id, &who, &f.reason).await)?
        }
        "extend" => {
            required(&s, "reason", &f.reason)?;
            required(&s, "told", &f.told)?;
            engine(
                &s,
                e.extend(&id, &who, f.months.unwrap_or(1), &f.reason, &f.told)
                    .await
                    .map(|_| ()),
            )?
        }
        "lift" => {
            required(&s, "reason", &f.reason)?;
            required(&s, "told", &f.told)?;
            goto = engine(&s, e.lift(&id, &who, &f.reason, &f.told).await)?.id;
        }
        "note" => {
            required(&s, "note", &f.note)?;
            engine(&s, e.note(&id, &who, &f.note).await)?
        }
        "attest" => {
            required(&s, "method", &f.method)?;
            required(&s, "evidence", &f.evidence)?;
            let a = Attestation {
                method: f.method,
                evidence: f.evidence,
            };
            engine(&s, e.attest(&id, &who, &a).await)?
        }
        _ => engine(&s, e.retry_planning(&id, &who).await)?,
    }
    Ok(see(&format!("/requests/{goto}")))
}

pub(super) async fn act_on_system(
    State(c): State<Console>,
    s: Signed,
    Path((id, system, action)): Path<(String, String, String)>,
    Form(f): Form<ActionForm>,
) -> Page {
    let needed = match action.as_str() {
        "exclude" => Role::Approver,
        "retry" | "skip" | "done" => Role::Operator,
        _ => return Err(refuse(&s, Problem::not_found("no such action"))),
    };
    s.need(needed)?;
    s.csrf(&f.csrf)?;
    engine(&s, valid_id(&id))?;
    let e = &c.app.engine;
    let who = s.name().to_string();
    match action.as_str() {
        "retry" => engine(&s, e.retry(&id, &system, &who).await)?,
        "skip" => {
            required(&s, "reason", &f.reason)?;
            engine(&s, e.skip(&id, &system, &who, &f.reason).await)?
        }
        "done" => {
            required(&s, "note", &f.note)?;
            engine(&s, e.manual_done(&id, &system, &who, &f.note).await)?
        }
        _ => {
            required(&s, "reason", &f.reason)?;
            required(&s, "a record kind", &f.record_kind)?;
            required(&s, "a record id", &f.record_id)?;
            let record = oubli_model::RecordRef {
                kind: f.record_kind,
                id: f.record_id,
            };
            engine(&s, e.exclude(&id, &system, &record, &who, &f.reason).await)?
        }
    }
    Ok(see(&format!("/requests/{id}")))
}

#[derive(Deserialize)]
pub(super) struct BundleForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    #[serde(default)]
    recipient: String,
    #[serde(default)]
    allow_incomplete: Option<String>,
}

/// The kept answer, encrypted for the chosen recipient, streamed as the
/// API streams it.
pub(super) async fn bundle(
    State(c): State<Console>,
    s: Signed,
    Path(id): Path<String>,
    Form(f): Form<BundleForm>,
) -> Page {
    s.need(Role::Operator)?;
    s.csrf(&f.csrf)?;
    engine(&s, valid_id(&id))?;
    let names: Vec<String> = Some(f.recipient.trim().to_string())
        .filter(|r| !r.is_empty())
        .into_iter()
        .collect();
    let recipients = c.app.engine.recipients(&names).map_err(|_| {
        refuse(
            &s,
            Problem::not_found("no such recipient in the keyring (`oubli keys list` shows them)"),
        )
    })?;
    let allow_incomplete = f.allow_incomplete.is_some();
    engine(&s, c.app.engine.check_answer(&id, allow_incomplete).await)?;
    Ok(crate::routes::bundle_response(
        c.app.engine.clone(),
        id.clone(),
        recipients,
        allow_incomplete,
        &format!("{id}.oubli"),
    ))
}

pub(super) async fn certificate(
    State(c): State<Console>,
    s: Signed,
    Path(id): Path<String>,
) -> Page {
    engine(&s, valid_id(&id))?;
    let (signed, check) = engine(&s, c.app.engine.checked_certificate(&id).await)?;
    let l = s.lang();
    let pretty = serde_json::from_str::<serde_json::Value>(&signed.document)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| signed.document.clone());
    let body = html! {
        @match &check {
            Ok(cert) => {
                p.verified role="status" data-verified="true" {
                    "✔ " (tr(l, "Verified: the signature is valid under this host's key, and the audit chain holds the event it names (", "Vérifié : la signature est valide sous la clé de cet hôte, et la chaîne d’audit contient l’événement qu’il nomme ("))
                    (cert.audit_chain.seq) ")."
                }
                dl.facts {
                    dt { (tr(l, "Outcome", "Résultat")) } dd { (cert.outcome) }
                    dt { (tr(l, "Issued", "Émis")) } dd { (cert.issued_at) }
                    dt { (tr(l, "Systems", "Systèmes")) } dd { (cert.systems.len()) }
                }
            }
            Err(why) => {
                p.error role="alert" data-verified="false" { "✘ " (tr(l, "Does not verify: ", "Ne se vérifie pas : ")) (why) }
            }
        }
        (proof_status(l, &signed))
        h2 { (tr(l, "The signed document", "Le document signé")) }
        pre.doc { (pretty) }
        (proof_details(l, &signed))
        details {
            summary { (tr(l, "Signature and public key", "Signature et clé publique")) }
            pre.doc { (signed.signature) }
            pre.doc { (signed.public_key) }
        }
        p { a href={"/requests/" (id)} { "← " (tr(l, "Back to the request", "Retour à la demande")) } }
    };
    ok(page(
        l,
        &format!("{} {id}", tr(l, "Certificate of", "Certificat de")),
        Some(&s),
        body,
    ))
}

/// Whether a certificate's inclusion proof holds (checked here, with the
/// key's public half alone: docs/verify-proof.py does the same), and
/// where it places the certificate in the audit log.
fn proof_status(l: Lang, signed: &SignedCertificate) -> Markup {
    html! {
        @match &signed.proof {
            Some(proof) => {
                @match oubli_core::rights::audit::check_inclusion(proof, &signed.public_key, Some(signed.document.as_bytes())) {
                    Ok(()) => {
                        p.verified data-proof="true" {
                            "✔ " (tr(l, "In the audit log: event ", "Dans le journal d’audit : événement "))
                            (proof.leaf_index) (tr(l, " of a tree over ", " d’un arbre de "))
                            (proof.head.size) (tr(l, " events, under a tree head signed ", " événements, sous une tête d’arbre signée le "))
                            (when(proof.head.signed_at)) "."
                        }
                    }
                    Err(why) => {
                        p.error role="alert" data-proof="false" { "✘ " (tr(l, "Its inclusion proof does not hold: ", "Sa preuve d’inclusion ne tient pas : ")) (why) }
                    }
                }
            }
            None => {
                p.muted data-proof="none" { (tr(l, "Its event waits for the audit log's sequencer: no inclusion proof yet.", "Son événement attend le séquenceur du journal d’audit : pas encore de preuve d’inclusion.")) }
            }
        }
    }
}

/// A certificate's inclusion proof, to copy out.
fn proof_details(l: Lang, signed: &SignedCertificate) -> Markup {
    html! {
        @if let Some(proof) = &signed.proof {
            details {
                summary { (tr(l, "Inclusion proof (docs/verify-proof.py checks it)", "Preuve d’inclusion (docs/verify-proof.py la vérifie)")) }
                pre.doc { (serde_json::to_string_pretty(proof).unwrap_or_default()) }
            }
        }
    }
}

// -------------------------------------------------------------- audit log

/// How many signed heads the audit page lists.
const HEADS_SHOWN: i64 = 20;

/// `GET /audit`: the log at a glance (its size, what waits for the
/// sequencer, the latest signed tree heads, the latest to keep as a
/// witness's copy), and a button to check all of it.
pub(super) async fn audit_log(State(c): State<Console>, s: Signed) -> Page {
    audit_page(&c, &s, None).await
}

#[derive(Deserialize)]
pub(super) struct AuditForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    /// A witness's copies of the heads, JSON lines (optional).
    #[serde(default)]
    heads: String,
}

/// `POST /audit/verify`: check the whole log now (what `oubli audit
/// verify [--heads FILE]` does), against a witness's heads if some were
/// pasted, and show the verdict on the same page.
pub(super) async fn audit_verify(
    State(c): State<Console>,
    s: Signed,
    Form(f): Form<AuditForm>,
) -> Page {
    s.csrf(&f.csrf)?;
    let witness = oubli_core::rights::audit::parse_witness_heads(&f.heads).map_err(|e| {
        refuse(
            &s,
            Problem::unprocessable(format!("the witness's heads: {e}")),
        )
    })?;
    let report = engine(&s, c.app.engine.verify_audit_with(&witness).await)?;
    audit_page(&c, &s, Some(report)).await
}

async fn audit_page(
    c: &Console,
    s: &Signed,
    report: Option<oubli_core::rights::audit::AuditReport>,
) -> Page {
    let l = s.lang();
    let sum = engine(s, c.app.engine.audit_summary(HEADS_SHOWN).await)?;
    let latest = sum
        .heads
        .first()
        .map(|h| serde_json::to_string_pretty(h).unwrap_or_default());
    let body = html! {
        @if let Some(r) = &report {
            @if r.ok() {
                p.verified role="status" data-audit="ok" {
                    "✔ " (tr(l, "The log holds: ", "Le journal tient : "))
                    (r.chain.events) (tr(l, " events recomputed, ", " événements recalculés, "))
                    (r.tree_heads) (tr(l, " signed tree heads checked against them, each consistent with the one before; the consent log's ", " têtes d’arbre signées vérifiées, chacune cohérente avec la précédente ; les "))
                    (r.consent.events) (tr(l, " entries hold too.", " entrées du journal des consentements tiennent aussi."))
                    @if r.witness_heads > 0 {
                        " " (r.witness_heads) (tr(l, " heads a witness kept hold against the log.", " têtes gardées par un témoin tiennent face au journal."))
                    }
                }
            } @else {
                div.error role="alert" data-audit="broken" {
                    p { "✘ " (tr(l, "The log does not hold:", "Le journal ne tient pas :")) }
                    ul {
                        @for b in [&r.chain.broken, &r.broken_head, &r.broken_tree, &r.consent.broken].into_iter().flatten() {
                            li {
                                @if let Some(e) = b.event { (tr(l, "event ", "événement ")) (e) ": " }
                                (b.reason)
                            }
                        }
                    }
                }
            }
        }
        dl.facts {
            dt { (tr(l, "Events in the log", "Événements dans le journal")) } dd data-size=(sum.size) { (sum.size) }
            dt { (tr(l, "Waiting for the sequencer", "En attente du séquenceur")) } dd { (sum.waiting) }
            @if let Some(h) = sum.heads.first() {
                dt { (tr(l, "Latest signed tree head", "Dernière tête d’arbre signée")) }
                dd { (h.size) (tr(l, " events, signed ", " événements, signée le ")) (when(h.signed_at)) }
            }
        }
        form method="post" action="/audit/verify" {
            (csrf_field(s))
            details {
                summary { (tr(l, "Check against a witness's heads (optional)", "Vérifier face aux têtes d’un témoin (facultatif)")) }
                label for="heads" { (tr(l, "The heads a witness kept, as JSON lines (oubli audit heads prints them); a large file goes through oubli audit verify --heads", "Les têtes gardées par un témoin, en lignes JSON (comme oubli audit heads les écrit) ; un grand fichier passe par oubli audit verify --heads")) }
                textarea id="heads" name="heads" rows="4" spellcheck="false" {}
            }
            button type="submit" { (tr(l, "Check the whole log now", "Vérifier tout le journal maintenant")) }
            " "
            small.muted { (tr(l, "Recomputes every event's hash, the Merkle tree and every signed head, as oubli audit verify does.", "Recalcule l’empreinte de chaque événement, l’arbre de Merkle et chaque tête signée, comme oubli audit verify."))}
        }
        h2 { (tr(l, "Signed tree heads", "Têtes d’arbre signées")) }
        @if sum.heads.is_empty() {
            p.muted { (tr(l, "None yet: the first is signed once the log holds an event.", "Aucune encore : la première est signée dès que le journal contient un événement.")) }
        } @else {
            div.scroll {
                table {
                    caption.sr-only { (tr(l, "The latest signed tree heads, largest first", "Les dernières têtes d’arbre signées, la plus grande d’abord")) }
                    thead { tr {
                        th scope="col" { (tr(l, "Events", "Événements")) }
                        th scope="col" { (tr(l, "Signed", "Signée")) }
                        th scope="col" { (tr(l, "Root (SHA-256)", "Racine (SHA-256)")) }
                        th scope="col" { (tr(l, "Key", "Clé")) }
                    } }
                    tbody {
                        @for h in &sum.heads {
                            tr {
                                td { (h.size) }
                                td { (when(h.signed_at)) }
                                td { code.hash { (h.root) } }
                                td { code { (h.key_id) } }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(latest) = &latest {
            details {
                summary { (tr(l, "The latest head, to keep as a witness's copy", "La dernière tête, à garder comme copie de témoin")) }
                pre.doc { (latest) }
                p.muted { (tr(l, "A witness keeps heads elsewhere and checks each new one against the last it holds: oubli audit heads --since SIZE, or GET /v1/audit/heads, or the audit.tree-head webhook (docs/OPERATIONS.md).", "Un témoin garde les têtes ailleurs et vérifie chaque nouvelle contre la dernière qu’il détient : oubli audit heads --since TAILLE, GET /v1/audit/heads, ou le webhook audit.tree-head (docs/OPERATIONS.md).")) }
            }
        }
    };
    ok(page(
        l,
        tr(l, "Audit log", "Journal d’audit"),
        Some(s),
        body,
    ))
}

// ---------------------------------------------------------------- systems

pub(super) async fn systems(State(c): State<Console>, s: Signed) -> Page {
    let l = s.lang();
    let e = &c.app.engine;
    let paused = engine(&s, e.paused_systems().await)?;
    let health = engine(&s, e.system_health().await)?;
    let check = e.systems().check_systems();
    let rights = e.systems();
    let policies = engine(&s, e.retention_policies().await)?;
    let body = html! {
        @for w in &check.warnings { p.warn { "⚠ " (w) } }
        @for sc in &rights.config().systems {
            @let name = sc.name();
            @let info = rights.registry().get(name).map(|x| x.info().clone());
            @let checked = check.systems.iter().find(|x| x.system == name);
            @let h = health.iter().find(|x| x.system == name);
            @let pause = paused.iter().find(|p| p.system == name);
            article.system aria-labelledby={"s-" (name)} {
                h2 id={"s-" (name)} { (name)
                    @if !sc.enabled { " " span.state.skipped { (tr(l, "disabled", "désactivé")) } }
                    @if let Some(p) = pause { " " span.state.needs-attention { (tr(l, "paused", "en pause")) } " " small { (p.reason) } }
                }
                @if let Some(err) = checked.and_then(|x| x.error.as_ref()) { p.error { (err) } }
                @if let Some(i) = &info {
                    dl.facts {
                        dt { (tr(l, "Connector", "Connecteur")) } dd { (i.manifest.id) " " (i.manifest.version) " (" (i.manifest.name) ")" }
                        dt { (tr(l, "Contract", "Contrat")) } dd { (i.manifest.wit_version) }
                        dt { "SHA-256" } dd { code.hash { (i.sha256) } }
                        dt { (tr(l, "Operations", "Opérations")) } dd { @for op in &i.manifest.operations { code { (serde_json::to_value(op).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()) } " " } }
                        dt { (tr(l, "Categories", "Catégories")) } dd { @for cat in &i.manifest.categories { code { (cat.name) } " " } }
                        dt { (tr(l, "Granted hosts", "Hôtes autorisés")) } dd { @for o in &sc.spec.grants.hosts { code { (o.to_string()) } " " } @if sc.spec.grants.hosts.is_empty() { (tr(l, "none", "aucun")) } }
                    }
                }
                @if let Some(h) = h {
                    p.counts {
                        (tr(l, "30 days: ", "30 jours : ")) (h.requests) (tr(l, " requests, ", " demandes, ")) (h.failed) (tr(l, " failed", " en échec"))
                        @if let Some(r) = h.failure_rate() { " (" (format!("{:.0}", r * 100.0)) " %)" }
                        " · " (tr(l, "calls since start: ", "appels depuis le démarrage : ")) (h.calls) ", " (h.failed_calls) (tr(l, " failed", " en échec"))
                        @if let Some(m) = h.mean_call_ms { ", " (tr(l, "mean ", "moyenne ")) (format!("{m:.0}")) " ms" }
                        @if let Some(m) = h.max_call_ms { ", " (tr(l, "longest ", "plus long ")) (format!("{m:.0}")) " ms" }
                    }
                }
                @let mine: Vec<_> = policies.iter().filter(|p| p.policy.system == name).collect();
                @if !mine.is_empty() {
                    h3 { (tr(l, "Retention", "Conservation")) }
                    table.retention {
                        caption.sr-only { (tr(l, "Retention policies of ", "Règles de conservation de ")) (name) }
                        thead { tr {
                            th scope="col" { (tr(l, "Policy", "Règle")) }
                            th scope="col" { (tr(l, "Category", "Catégorie")) }
                            th scope="col" { (tr(l, "Kept", "Conservé")) }
                            th scope="col" { (tr(l, "Then", "Ensuite")) }
                            th scope="col" { (tr(l, "Next run", "Prochaine exécution")) }
                            th scope="col" { (tr(l, "Last runs", "Dernières exécutions")) }
                        } }
                        tbody {
                            @for p in &mine {
                                tr {
                                    th scope="row" { code { (p.policy.id) } }
                                    td { (p.policy.category) }
                                    td { (p.effective_period) " " (tr(l, "after ", "après ")) (p.trigger.as_deref().unwrap_or("—")) }
                                    td { (oubli_model::wire_name(&p.policy.action)) " (" (oubli_model::wire_name(&p.policy.mode)) ")" }
                                    td { (p.next_run.as_deref().unwrap_or("—")) }
                                    td {
                                        @if p.runs.is_empty() { "—" }
                                        ul.runs { @for r in &p.runs {
                                            li { a href={"/retention/" (r.id)} { (r.mode) " " (r.id) } " " span.state { (r.state) } " " (r.tally.due) (tr(l, " due", " dus"))
                                                @if r.mode == "enforce" { ", " (r.tally.erased) (tr(l, " erased", " effacés")) } }
                                        } }
                                    }
                                }
                            }
                        }
                    }
                }
                @if s.may(Role::Operator) {
                    @if pause.is_some() {
                        form method="post" action={"/systems/" (name) "/resume"} {
                            (csrf_field(&s)) button type="submit" { (tr(l, "Resume", "Reprendre")) }
                        }
                    } @else {
                        form.inline method="post" action={"/systems/" (name) "/pause"} {
                            (csrf_field(&s))
                            label for={"p-" (name)} { (tr(l, "Pause, because", "Mettre en pause, parce que")) }
                            input id={"p-" (name)} name="reason" required;
                            button type="submit" { (tr(l, "Pause", "Pause")) }
                        }
                    }
                }
            }
        }
    };
    ok(page(l, tr(l, "Systems", "Systèmes"), Some(&s), body))
}

pub(super) async fn pause_or_resume(
    State(c): State<Console>,
    s: Signed,
    Path((system, action)): Path<(String, String)>,
    Form(f): Form<ActionForm>,
) -> Page {
    s.need(Role::Operator)?;
    s.csrf(&f.csrf)?;
    let e = &c.app.engine;
    match action.as_str() {
        "pause" => {
            required(&s, "reason", &f.reason)?;
            engine(&s, e.pause_system(&system, s.name(), &f.reason).await)?;
        }
        "resume" => {
            engine(&s, e.resume_system(&system, s.name()).await)?;
        }
        _ => return Err(refuse(&s, Problem::not_found("no such action"))),
    }
    Ok(see("/systems"))
}

// -------------------------------------------------------------- retention

/// One retention run: what it found and did, its certificate checked, and
/// approval when it waits for it.
pub(super) async fn retention_run(
    State(c): State<Console>,
    s: Signed,
    Path(id): Path<String>,
) -> Page {
    engine(&s, valid_id(&id))?;
    let e = &c.app.engine;
    let v = engine(&s, e.retention_sweep(&id).await)?;
    let l = s.lang();
    let checked = if v.mode == "enforce" && matches!(v.state.as_str(), "done" | "failed" | "manual")
    {
        Some(engine(&s, e.retention_checked_certificate(&id).await)?)
    } else {
        None
    };
    let t = &v.tally;
    let body = html! {
        dl.facts {
            dt { (tr(l, "Policy", "Règle")) } dd { code { (v.policy) } " " small { "SHA-256 " code.hash { (v.policy_digest) } } }
            dt { (tr(l, "System", "Système")) } dd { (v.system) " / " (v.category) }
            dt { (tr(l, "Run", "Exécution")) } dd { (v.mode) " " span.state { (v.state) } }
            dt { (tr(l, "Due before", "Dus avant")) } dd { (v.cutoff) " (" (v.trigger) ")" }
            dt { (tr(l, "Started", "Commencée")) } dd { (v.started_at) " " (tr(l, "by ", "par ")) (v.started_by) }
            @if let Some(a) = &v.approved_by { dt { (tr(l, "Approved by", "Approuvée par")) } dd { (a) } }
            @if let Some(f) = &v.finished_at { dt { (tr(l, "Ended", "Terminée")) } dd { (f) } }
            @if let Some(c) = &v.connector { dt { (tr(l, "Connector", "Connecteur")) } dd { (c) " " code.hash { (v.component_sha256.as_deref().unwrap_or("")) } } }
            dt { (tr(l, "Due", "Dus")) } dd { (t.due) " (" (t.oldest.as_deref().unwrap_or("—")) " → " (t.newest.as_deref().unwrap_or("—")) ")" }
            @for (why, n) in &t.excluded { dt { (tr(l, "Excluded", "Exclus")) } dd { (n) ": " (why) } }
            @if v.mode == "enforce" {
                dt { (tr(l, "Erased", "Effacés")) } dd { (t.erased) }
                dt { (tr(l, "Already gone", "Déjà absents")) } dd { (t.not_found) }
                @for (why, n) in &t.retained { dt { (tr(l, "Kept by the system", "Gardés par le système")) } dd { (n) ": " (why) } }
                @if t.pending > 0 { dt { (tr(l, "Accepted for later, not verified", "Acceptés pour plus tard, non vérifiés")) } dd { (t.pending) } }
                @if t.failed > 0 { dt { (tr(l, "Failed", "En échec")) } dd { (t.failed) } }
                @if let Some(u) = &t.restorable_until { dt { (tr(l, "Restorable until", "Restaurables jusqu’au")) } dd { (u) } }
            }
        }
        @if let Some(note) = &v.note { p.warn { (note) } }
        @if t.manual > 0 {
            h2 { (tr(l, "Manual steps", "Étapes manuelles")) }
            ol { @for step in &t.manual_steps { li { code { (step) } } } }
        }
        @if !t.sample.is_empty() {
            h2 { (tr(l, "A sample of what is due", "Un échantillon de ce qui est dû")) }
            ul { @for r in &t.sample { li { code { (r.kind) " " (r.id) } } } }
        }
        @if v.state == "awaiting-approval" && s.may(Role::Approver) {
            form method="post" action={"/retention/" (v.id) "/approve"} {
                (csrf_field(&s))
                button type="submit" { (tr(l, "Approve this disposition", "Approuver cette élimination")) }
            }
        }
        @if let Some((signed, check)) = &checked {
            h2 { (tr(l, "Retention certificate", "Certificat de conservation")) }
            @match check {
                Ok(cert) => p.verified role="status" data-verified="true" {
                    "✔ " (tr(l, "Verified: the signature is valid under this host's key, and the audit chain holds the event it names (", "Vérifié : la signature est valide sous la clé de cet hôte, et la chaîne d’audit contient l’événement qu’il nomme ("))
                    (cert.audit_chain.seq) ")."
                },
                Err(why) => p.error role="alert" data-verified="false" { "✘ " (tr(l, "Does not verify: ", "Ne se vérifie pas : ")) (why) },
            }
            (proof_status(l, signed))
            pre.doc { (signed.document) }
            (proof_details(l, signed))
            details {
                summary { (tr(l, "Signature and public key", "Signature et clé publique")) }
                pre.doc { (signed.signature) }
                pre.doc { (signed.public_key) }
            }
        }
        p { a href="/systems" { "← " (tr(l, "Systems", "Systèmes")) } }
    };
    ok(page(
        l,
        &format!(
            "{} {id}",
            tr(l, "Retention run", "Exécution de conservation")
        ),
        Some(&s),
        body,
    ))
}

pub(super) async fn retention_approve(
    State(c): State<Console>,
    s: Signed,
    Path(id): Path<String>,
    Form(f): Form<ActionForm>,
) -> Page {
    s.need(Role::Approver)?;
    s.csrf(&f.csrf)?;
    engine(&s, valid_id(&id))?;
    engine(&s, c.app.engine.retention_approve(&id, s.name()).await)?;
    Ok(see(&format!("/retention/{id}")))
}

// --------------------------------------------------- subjects and consent

pub(super) async fn subject_form(s: Signed) -> Page {
    s.need(Role::Operator)?;
    let l = s.lang();
    ok(page(
        l,
        tr(
            l,
            "A person's requests, restrictions and consent",
            "Demandes, limitations et consentements d’une personne",
        ),
        Some(&s),
        lookup_form(&s, None),
    ))
}

fn lookup_form(s: &Signed, given: Option<&SubjectForm>) -> Markup {
    let l = s.lang();
    html! {
        form.stack method="post" action="/subjects" {
            (csrf_field(s))
            p.hint { (tr(l, "Identifiers are sent in the form's body, never in an address. One per line.", "Les identifiants partent dans le corps du formulaire, jamais dans une adresse. Un par ligne.")) }
            label for="l-emails" { (tr(l, "Email addresses", "Adresses électroniques")) }
            textarea id="l-emails" name="emails" rows="2" autocomplete="off" spellcheck="false" { (given.map(|g| g.emails.as_str()).unwrap_or("")) }
            label for="l-phones" { (tr(l, "Phone numbers", "Numéros de téléphone")) }
            textarea id="l-phones" name="phones" rows="2" autocomplete="off" spellcheck="false" { (given.map(|g| g.phones.as_str()).unwrap_or("")) }
            label for="l-external" { (tr(l, "External ids", "Identifiants externes")) }
            textarea id="l-external" name="external_ids" rows="1" autocomplete="off" spellcheck="false" { (given.map(|g| g.external_ids.as_str()).unwrap_or("")) }
            label for="l-region" { (tr(l, "Country of national phone numbers", "Pays des numéros nationaux")) }
            input id="l-region" name="region" maxlength="2" autocomplete="off" value=(given.map(|g| g.region.as_str()).unwrap_or(""));
            button type="submit" { (tr(l, "Look up", "Rechercher")) }
        }
    }
}

#[derive(Deserialize, Default)]
pub(super) struct SubjectForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    #[serde(default)]
    emails: String,
    #[serde(default)]
    phones: String,
    #[serde(default)]
    external_ids: String,
    #[serde(default)]
    region: String,
}

pub(super) async fn subject(
    State(c): State<Console>,
    s: Signed,
    Form(f): Form<SubjectForm>,
) -> Page {
    s.need(Role::Operator)?;
    s.csrf(&f.csrf)?;
    subject_page(&c, &s, &f, None).await
}

async fn subject_page(c: &Console, s: &Signed, f: &SubjectForm, said: Option<Markup>) -> Page {
    let l = s.lang();
    let ids = engine(s, identifiers(&f.emails, &f.phones, &f.external_ids, ""))?;
    let reg = engine(s, region_of(&f.region))?;
    let e = &c.app.engine;
    let request_ids = engine(s, e.requests_of(&ids, reg).await)?;
    let requests = if request_ids.is_empty() {
        Vec::new()
    } else {
        engine(
            s,
            e.list(&Filter {
                ids: Some(request_ids),
                limit: 500,
                ..Filter::default()
            })
            .await,
        )?
    };
    let restriction = engine(s, e.check_restriction(&ids, reg, "all"))?;
    let consents = engine(s, e.consents(&ids, reg).await)?;
    let now = e.now();
    let body = html! {
        @if let Some(m) = said { (m) }
        (lookup_form(s, Some(f)))
        h2 { (tr(l, "Requests", "Demandes")) }
        (queue_table(l, now, &requests))
        h2 { (tr(l, "Restrictions", "Limitations")) }
        @if restriction.restrictions.is_empty() {
            p { (tr(l, "No restriction, objection or consent withdrawal applies.", "Aucune limitation, opposition ni retrait du consentement ne s’applique.")) }
        } @else {
            ul { @for a in &restriction.restrictions {
                li { code { (a.scope) } " " (tr(l, "since ", "depuis le ")) (when(a.since)) ", " a href={"/requests/" (a.request_id)} { (a.request_id) } }
            } }
        }
        h2 { (tr(l, "Consent", "Consentement")) }
        @if consents.history.is_empty() {
            p { (tr(l, "Nothing recorded.", "Rien d’enregistré.")) }
        } @else {
            div.scroll { table {
                thead { tr {
                    th scope="col" { (tr(l, "When", "Quand")) }
                    th scope="col" { (tr(l, "Purpose", "Finalité")) }
                    th scope="col" { (tr(l, "Given or withdrawn", "Donné ou retiré")) }
                    th scope="col" { (tr(l, "Channel", "Canal")) }
                    th scope="col" { (tr(l, "Evidence", "Preuve")) }
                    th scope="col" { (tr(l, "Recorded by", "Enregistré par")) }
                } }
                tbody { @for h in &consents.history { tr {
                    td { (when(h.at)) }
                    td { (h.purpose) }
                    td { (h.action) @if let Some(r) = &h.request_id { " " a href={"/requests/" (r)} { (r) } } }
                    td { (h.channel) @if let Some(sys) = &h.source_system { " · " (sys) } }
                    td.wrap {
                        @if let Some(x) = &h.evidence.recording_id { (tr(l, "recording ", "enregistrement ")) (x) @if let Some(o) = h.evidence.offset_seconds { " @" (o) "s" } " " }
                        @if let Some(x) = &h.evidence.notice_version { (tr(l, "notice ", "notice ")) (x) " " }
                        @if let Some(x) = &h.evidence.agent_id { (tr(l, "agent ", "agent ")) (x) " " }
                        @if let Some(x) = &h.evidence.note { (x) }
                    }
                    td { (h.recorded_by) }
                } } }
            } }
        }
        h2 { (tr(l, "Record a consent or a withdrawal", "Enregistrer un consentement ou un retrait")) }
        form.stack method="post" action="/consent" {
            (csrf_field(s))
            input type="hidden" name="emails" value=(f.emails);
            input type="hidden" name="phones" value=(f.phones);
            input type="hidden" name="external_ids" value=(f.external_ids);
            input type="hidden" name="region" value=(f.region);
            label for="k-purpose" { (tr(l, "Purpose", "Finalité")) } input id="k-purpose" name="purpose" required maxlength="100";
            fieldset.row {
                legend { (tr(l, "The person", "La personne")) }
                label.check { input type="radio" name="given" value="true" required; " " (tr(l, "gave consent", "a consenti")) }
                label.check { input type="radio" name="given" value="false"; " " (tr(l, "withdrew consent (also files a withdrawal request)", "a retiré son consentement (dépose aussi une demande de retrait)")) }
            }
            label for="k-channel" { (tr(l, "Channel", "Canal")) }
            select id="k-channel" name="channel" { @for ch in ["call", "ivr", "email", "web"] { option value=(ch) { (ch) } } }
            label for="k-source" { (tr(l, "System it was captured in", "Système où il a été recueilli")) } input id="k-source" name="source_system" maxlength="100";
            label for="k-recording" { (tr(l, "Recording id", "Identifiant de l’enregistrement")) } input id="k-recording" name="recording_id";
            label for="k-offset" { (tr(l, "Offset in the recording (seconds)", "Position dans l’enregistrement (secondes)")) } input id="k-offset" name="offset_seconds" inputmode="numeric";
            label for="k-notice" { (tr(l, "Notice version read to the person", "Version de la notice lue à la personne")) } input id="k-notice" name="notice_version";
            label for="k-agent" { (tr(l, "Agent id", "Identifiant de l’agent")) } input id="k-agent" name="agent_id";
            label for="k-note" { (tr(l, "Note", "Note")) } textarea id="k-note" name="note" {}
            button type="submit" { (tr(l, "Record", "Enregistrer")) }
        }
    };
    ok(page(
        l,
        tr(
            l,
            "A person's requests, restrictions and consent",
            "Demandes, limitations et consentements d’une personne",
        ),
        Some(s),
        body,
    ))
}

#[derive(Deserialize)]
pub(super) struct ConsentForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    #[serde(default)]
    emails: String,
    #[serde(default)]
    phones: String,
    #[serde(default)]
    external_ids: String,
    #[serde(default)]
    region: String,
    purpose: String,
    given: String,
    channel: String,
    #[serde(default)]
    source_system: String,
    #[serde(default)]
    recording_id: String,
    #[serde(default)]
    offset_seconds: String,
    #[serde(default)]
    notice_version: String,
    #[serde(default)]
    agent_id: String,
    #[serde(default)]
    note: String,
}

fn some(s: &str) -> Option<String> {
    Some(s.trim().to_string()).filter(|s| !s.is_empty())
}

pub(super) async fn consent(
    State(c): State<Console>,
    s: Signed,
    Form(f): Form<ConsentForm>,
) -> Page {
    s.need(Role::Operator)?;
    s.csrf(&f.csrf)?;
    let l = s.lang();
    let given = match f.given.as_str() {
        "true" => true,
        "false" => false,
        _ => {
            return Err(refuse(
                &s,
                Problem::unprocessable("say whether consent was given or withdrawn"),
            ));
        }
    };
    for t in [&f.recording_id, &f.notice_version, &f.agent_id, &f.note] {
        engine(&s, text("evidence", t))?;
    }
    let offset_seconds = match some(&f.offset_seconds) {
        None => None,
        Some(o) => Some(o.parse::<u32>().map_err(|_| {
            refuse(
                &s,
                Problem::unprocessable("the offset is a number of seconds"),
            )
        })?),
    };
    let evidence = oubli_core::rights::consent::Evidence {
        recording_id: some(&f.recording_id),
        offset_seconds,
        notice_version: some(&f.notice_version),
        agent_id: some(&f.agent_id),
        note: some(&f.note),
        ..Default::default()
    };
    let entry = engine(
        &s,
        c.app
            .engine
            .record_consent(oubli_core::rights::consent::NewConsent {
                identifiers: engine(&s, identifiers(&f.emails, &f.phones, &f.external_ids, ""))?,
                region: engine(&s, region_of(&f.region))?,
                purpose: f.purpose.trim().to_string(),
                given,
                lawful_basis: "consent".into(),
                channel: f.channel.clone(),
                source_system: some(&f.source_system),
                evidence,
                actor: s.name().to_string(),
            })
            .await,
    )?;
    let said = html! {
        p.ok role="status" {
            (tr(l, "Recorded: ", "Enregistré : ")) (entry.purpose) ", " (entry.action)
            @if let Some(r) = &entry.request_id { " — " (tr(l, "withdrawal request ", "demande de retrait ")) a href={"/requests/" (r)} { (r) } }
        }
    };
    let back = SubjectForm {
        csrf: String::new(),
        emails: f.emails,
        phones: f.phones,
        external_ids: f.external_ids,
        region: f.region,
    };
    subject_page(&c, &s, &back, Some(said)).await
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn the_language_switch_goes_back_only_to_a_page_of_this_console() {
        assert_eq!(local_path("/requests/r-1"), Some("/requests/r-1"));
        assert_eq!(local_path("/"), Some("/"));
        for bad in [
            "//evil.example/x",
            "/\\evil.example",
            "https://evil.example/",
            "javascript:alert(1)",
            "",
            "/a b",
        ] {
            assert_eq!(local_path(bad), None, "{bad}");
        }
    }
}
