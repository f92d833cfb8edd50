//! The privacy center: the pages where a data subject chooses a right,
//! proves control of their email address with a one-time code, follows the
//! request through a status link, and downloads the kept answer after a
//! fresh code. Served by `oubli serve` under `/privacy/`, beside the API
//! or on a listener of its own (`[api.privacy] listen`), because it faces
//! the internet.
//!
//! - Server-rendered (maud), no script at all, a strict CSP, English and
//!   French; every page works on a phone and without JavaScript.
//! - Identifiers travel only in POST bodies. The URLs carry random handles
//!   and tokens (capabilities, never identifiers), and the pages are sent
//!   with `Referrer-Policy: no-referrer` and `Cache-Control: no-store`.
//! - The page after "send me a code" is the same whatever the address:
//!   the mail goes out after the answer, and nothing is looked up first.
//! - A POST sent from another site (`Sec-Fetch-Site: cross-site`) is
//!   refused.

use crate::AppState;
use crate::auth::client_of;
use axum::Router;
use axum::extract::{FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, html};
use oubli_core::lang::Lang;
use oubli_core::mail::{Mailer, Texter};
use oubli_core::rights::engine::{Correction, Params};
use oubli_core::rights::privacy::{
    Ask, Mail, Outgoing, PrivacyError, PrivacyRules, Text, Verified, kind_words, rights_offered,
    state_words,
};
use oubli_model::{RequestKind, RequestState};
use serde::Deserialize;
use std::sync::Arc;

/// What the privacy center's handlers share.
#[derive(Clone)]
pub struct Privacy {
    /// The API's state: the engine, trusted proxies.
    pub app: AppState,
    /// Its rules (`[api.privacy]`).
    pub rules: Arc<PrivacyRules>,
    /// Where its mails go out.
    pub mailer: Arc<dyn Mailer>,
    /// Who answers: the controller's name and contact, for every page's
    /// foot.
    footer: Arc<String>,
    /// Where text messages go out, when a gateway is configured.
    texter: Option<Arc<dyn Texter>>,
    /// The CAPTCHA before a code is sent, when configured.
    captcha: Option<Arc<Captcha>>,
}

/// A CAPTCHA checked on the server through the `siteverify` protocol
/// (hCaptcha, Turnstile, reCAPTCHA share it).
pub struct Captcha {
    settings: oubli_core::config::CaptchaSettings,
    secret: zeroize::Zeroizing<String>,
    agent: ureq::Agent,
    csp: HeaderValue,
}

impl Captcha {
    /// The check `settings` describe (its secret is read now).
    pub fn new(settings: &oubli_core::config::CaptchaSettings) -> Result<Captcha, String> {
        let secret = settings
            .secret
            .resolve()
            .map_err(|e| format!("api.privacy.captcha.secret: {e}"))?;
        let origins = settings.origins.join(" ");
        // The form's page lets the widget's script run and its frame show,
        // from the service's origins only; everything else stays shut.
        let csp = HeaderValue::from_str(&format!(
            "default-src 'none'; script-src 'self' {origins}; frame-src {origins}; connect-src {origins}; style-src 'self' {origins}; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        ))
        .map_err(|_| "api.privacy.captcha.origins: not usable in a header".to_string())?;
        Ok(Captcha {
            settings: settings.clone(),
            secret: zeroize::Zeroizing::new(secret.expose().to_string()),
            agent: ureq::Agent::config_builder()
                .timeout_global(Some(std::time::Duration::from_secs(10)))
                .max_redirects(0)
                .http_status_as_error(false)
                .build()
                .into(),
            csp,
        })
    }

    /// Whether the service vouches for `token` from `client`; `None` when
    /// it could not be asked (the form is then refused: fail closed).
    async fn passes(self: Arc<Self>, token: String, client: std::net::IpAddr) -> Option<bool> {
        if token.is_empty() || token.len() > 8192 {
            return Some(false);
        }
        tokio::task::spawn_blocking(move || {
            let form = [
                ("secret", self.secret.as_str()),
                ("response", token.as_str()),
                ("remoteip", &client.to_string()),
                ("sitekey", self.settings.site_key.as_str()),
            ];
            let mut r = self
                .agent
                .post(self.settings.verify_url.as_str())
                .send_form(form)
                .ok()?;
            if !r.status().is_success() {
                return None;
            }
            let body = r
                .body_mut()
                .with_config()
                .limit(64 * 1024)
                .read_to_vec()
                .ok()?;
            let v: serde_json::Value = serde_json::from_slice(&body).ok()?;
            Some(v["success"] == serde_json::Value::Bool(true))
        })
        .await
        .ok()
        .flatten()
    }
}

impl Privacy {
    /// The privacy center over `app`, with `rules`, sending through
    /// `mailer`.
    pub fn new(app: AppState, rules: PrivacyRules, mailer: Arc<dyn Mailer>) -> Privacy {
        let c = &app.engine.systems().config().controller;
        let footer = [c.name.as_deref(), c.contact.as_deref(), c.dpo.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" · ");
        Privacy {
            app,
            rules: Arc::new(rules),
            mailer,
            footer: Arc::new(footer),
            texter: None,
            captcha: None,
        }
    }

    /// The same, with a CAPTCHA before a code is sent.
    pub fn with_captcha(mut self, captcha: Captcha) -> Privacy {
        self.captcha = Some(Arc::new(captcha));
        self
    }

    /// The same, sending codes to phone numbers through `texter` (the
    /// rules must say `sms`).
    pub fn with_texter(mut self, texter: Arc<dyn Texter>) -> Privacy {
        self.texter = Some(texter);
        self
    }

    /// Send `out`, a mail or a text, after the answer.
    fn send_out(&self, out: Option<Outgoing>) {
        match out {
            None => {}
            Some(Outgoing::Mail(m)) => self.send(Some(m)),
            Some(Outgoing::Text(t)) => self.text(Some(t)),
        }
    }

    /// Send a text message after the answer, off the async runtime.
    fn text(&self, text: Option<Text>) {
        let (Some(text), Some(texter)) = (text, self.texter.clone()) else {
            return;
        };
        tokio::task::spawn_blocking(move || match texter.send(&text) {
            Ok(()) => tracing::info!("privacy center: text message sent"),
            Err(e) => tracing::warn!(error = %e, "privacy center: text message not sent"),
        });
    }

    /// Send `mail` after the answer (the page never waits for, nor tells
    /// of, the relay), off the async runtime.
    fn send(&self, mail: Option<Mail>) {
        let Some(mail) = mail else {
            return;
        };
        let mailer = self.mailer.clone();
        tokio::task::spawn_blocking(move || match mailer.send(&mail) {
            Ok(()) => tracing::info!("privacy center: mail sent"),
            Err(e) => tracing::warn!(error = %e, "privacy center: mail not sent"),
        });
    }
}

/// The privacy center's routes, under `/privacy`.
pub fn router(p: Privacy) -> Router {
    Router::new()
        .route("/privacy", get(|| async { Redirect::to("/privacy/") }))
        .route("/privacy/", get(home))
        .route("/privacy/ask/{kind}", get(ask_form).post(ask))
        .route("/privacy/verify/{handle}", get(verify_form).post(verify))
        .route("/privacy/verify/{handle}/again", post(again))
        .route("/privacy/status/{token}", get(status))
        .route("/privacy/status/{token}/answer", post(answer_start))
        .route("/privacy/download/{handle}", get(download_page))
        .route("/privacy/download/{handle}/answer.zip", get(download))
        .route("/privacy/download/{handle}/files/{*path}", get(answer_file))
        .route("/privacy/download/{handle}/mail", post(mail_answer))
        .route("/privacy/assets/privacy.css", get(css))
        .layer(axum::middleware::from_fn(headers))
        .with_state(p)
}

async fn headers(req: Request, next: Next) -> Response {
    // A form posted from another site is refused before anything runs.
    if req.method() == Method::POST
        && req
            .headers()
            .get("sec-fetch-site")
            .is_some_and(|v| v.as_bytes() == b"cross-site")
    {
        return StatusCode::FORBIDDEN.into_response();
    }
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    // The answer's own files come with a policy of their own.
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            ),
        );
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

const CSS: &[u8] = include_bytes!("console/assets/console.css");

async fn css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS).into_response()
}

fn tr(l: Lang, en: &'static str, fr: &'static str) -> &'static str {
    match l {
        Lang::En => en,
        Lang::Fr => fr,
    }
}

/// The language: `?lang=` when given, else the browser's.
#[derive(Deserialize, Default)]
struct LangQuery {
    #[serde(default)]
    lang: String,
}

fn lang_of(q: &LangQuery, headers: &HeaderMap) -> Lang {
    Lang::parse(&q.lang).unwrap_or_else(|| browser_lang(headers))
}

fn browser_lang(headers: &HeaderMap) -> Lang {
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(',').find_map(|part| {
                let tag = part.split(';').next().unwrap_or("").trim();
                Lang::parse(&tag.split('-').next().unwrap_or("").to_ascii_lowercase())
            })
        })
        .unwrap_or(Lang::En)
}

/// The language of challenge `handle`'s pages (the browser's when it is
/// gone), and whether it waits for the phone's code: one lookup.
async fn handle_page(p: &Privacy, handle: &str, h: &HeaderMap) -> (Lang, bool) {
    p.app
        .engine
        .privacy_handle(handle)
        .await
        .unwrap_or_else(|| (browser_lang(h), false))
}

/// The client's address, as the API counts it (behind trusted proxies).
struct Client(std::net::IpAddr);

impl FromRequestParts<Privacy> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, p: &Privacy) -> Result<Client, Self::Rejection> {
        Ok(Client(client_of(parts, &p.app.trusted_proxies)))
    }
}

fn page(l: Lang, title: &str, switch: Option<&str>, body: Markup) -> Markup {
    page_by(l, title, switch, body, "")
}

fn page_by(l: Lang, title: &str, switch: Option<&str>, body: Markup, who: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(l.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="robots" content="noindex";
                title { (title) }
                link rel="stylesheet" href="/privacy/assets/privacy.css";
            }
            body {
                a.skip href="#main" { (tr(l, "Skip to the content", "Aller au contenu")) }
                header.top {
                    a.brand href={ "/privacy/?lang=" (l.code()) } { (tr(l, "Your data", "Vos données")) }
                    @if let Some(path) = switch {
                        div.who {
                            @match l {
                                Lang::En => a href={ (path) "?lang=fr" } lang="fr" { "Français" },
                                Lang::Fr => a href={ (path) "?lang=en" } lang="en" { "English" },
                            }
                        }
                    }
                }
                main id="main" tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
                @if !who.is_empty() {
                    footer.foot { small { (who) } }
                }
            }
        }
    }
}

fn html_response(status: StatusCode, m: Markup) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        m.into_string(),
    )
        .into_response()
}

fn problem_page(l: Lang, status: StatusCode, title: &str, detail: &str) -> Response {
    html_response(
        status,
        page(
            l,
            title,
            None,
            html! {
                p.error role="alert" { (detail) }
                p { a href={ "/privacy/?lang=" (l.code()) } { (tr(l, "Back to the start", "Retour au début")) } }
            },
        ),
    )
}

/// The page for a refusal of the privacy center, in `l`. Nothing of what
/// the subject typed is echoed.
fn refused(l: Lang, e: PrivacyError) -> Response {
    match e {
        PrivacyError::WrongCode { .. } => problem_page(
            l,
            StatusCode::UNPROCESSABLE_ENTITY,
            tr(l, "Wrong code", "Code erroné"),
            tr(
                l,
                "This is not the code we sent.",
                "Ce n’est pas le code que nous avons envoyé.",
            ),
        ),
        PrivacyError::Locked => problem_page(
            l,
            StatusCode::TOO_MANY_REQUESTS,
            tr(l, "Too many attempts", "Trop de tentatives"),
            tr(
                l,
                "Too many wrong codes were entered: this request is locked. Start again from the beginning.",
                "Trop de codes erronés ont été saisis\u{a0}: cette demande est bloquée. Recommencez depuis le début.",
            ),
        ),
        PrivacyError::Expired => problem_page(
            l,
            StatusCode::GONE,
            tr(l, "Link or code expired", "Lien ou code expiré"),
            tr(
                l,
                "This link or code no longer works: it expired, or was already used. Start again from the beginning, or use the link in our last message.",
                "Ce lien ou ce code ne fonctionne plus\u{a0}: il a expiré, ou a déjà servi. Recommencez depuis le début, ou utilisez le lien de notre dernier message.",
            ),
        ),
        PrivacyError::TooMany => problem_page(
            l,
            StatusCode::TOO_MANY_REQUESTS,
            tr(l, "Too many requests", "Trop de demandes"),
            tr(
                l,
                "Too many requests came from your connection this hour. Try again in an hour.",
                "Trop de demandes sont venues de votre connexion cette heure-ci. Réessayez dans une heure.",
            ),
        ),
        PrivacyError::NotReady(_) => problem_page(
            l,
            StatusCode::CONFLICT,
            tr(l, "Not ready", "Pas encore prête"),
            tr(
                l,
                "There is no answer to fetch yet. We will write to you when there is.",
                "Il n’y a pas encore de réponse à télécharger. Nous vous écrirons quand elle sera prête.",
            ),
        ),
        PrivacyError::Request(e) => {
            use oubli_core::rights::engine::ErrorKind;
            match e.kind() {
                // Bad input: say so without repeating it.
                ErrorKind::Invalid => problem_page(
                    l,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    tr(l, "Please check the form", "Vérifiez le formulaire"),
                    tr(
                        l,
                        "Something in the form is not usable: check the email address (and the phone number, with its country code, e.g. +33 6 12 34 56 78).",
                        "Un élément du formulaire n’est pas utilisable\u{a0}: vérifiez l’adresse électronique (et le numéro de téléphone, avec l’indicatif du pays, par ex. +33 6 12 34 56 78).",
                    ),
                ),
                _ => {
                    tracing::error!(error = %e, "privacy center: the engine failed");
                    problem_page(
                        l,
                        StatusCode::SERVICE_UNAVAILABLE,
                        tr(l, "Please try again later", "Réessayez plus tard"),
                        tr(
                            l,
                            "We could not take this now. Nothing was lost: try again in a few minutes.",
                            "Nous n’avons pas pu traiter cela maintenant. Rien n’est perdu\u{a0}: réessayez dans quelques minutes.",
                        ),
                    )
                }
            }
        }
    }
}

fn kind_of(s: &str) -> Option<RequestKind> {
    RequestKind::parse(s).filter(|k| *k != RequestKind::Lift)
}

// ------------------------------------------------------------------ pages

async fn home(State(p): State<Privacy>, Query(q): Query<LangQuery>, h: HeaderMap) -> Response {
    let l = lang_of(&q, &h);
    let rights = rights_offered(p.app.engine.systems(), l);
    html_response(
        StatusCode::OK,
        page_by(
            l,
            tr(l, "Your data, your rights", "Vos données, vos droits"),
            Some("/privacy/"),
            html! {
                p { (tr(l, "Choose what you want us to do. We will send a code to your email address to make sure it is yours, then answer within one month.", "Choisissez ce que vous voulez que nous fassions. Nous enverrons un code à votre adresse électronique pour vérifier qu’elle est bien à vous, puis nous répondrons dans un délai d’un mois.")) }
                ul.rights {
                    @for (kind, explained) in &rights {
                        li {
                            a href={ "/privacy/ask/" (kind.as_str()) "?lang=" (l.code()) } { (capitalise(kind_words(*kind, l))) }
                            br;
                            small.muted { (explained) }
                        }
                    }
                }
            },
            &p.footer,
        ),
    )
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

async fn ask_form(
    State(p): State<Privacy>,
    Path(kind): Path<String>,
    Query(q): Query<LangQuery>,
    h: HeaderMap,
) -> Response {
    let l = lang_of(&q, &h);
    let Some(kind) = kind_of(&kind) else {
        return problem_page(
            l,
            StatusCode::NOT_FOUND,
            tr(l, "Not found", "Introuvable"),
            tr(l, "There is no such page.", "Cette page n’existe pas."),
        );
    };
    let mut r = html_response(StatusCode::OK, ask_page(l, kind, p.captcha.as_deref()));
    if let Some(c) = &p.captcha {
        r.headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, c.csp.clone());
    }
    r
}

fn ask_page(l: Lang, kind: RequestKind, captcha: Option<&Captcha>) -> Markup {
    let path = format!("/privacy/ask/{}", kind.as_str());
    page(
        l,
        &capitalise(kind_words(kind, l)),
        Some(&path),
        html! {
            form.stack method="post" action=(path) {
                input type="hidden" name="lang" value=(l.code());
                label for="email" { (tr(l, "Your email address (we send a code to it)", "Votre adresse électronique (nous y envoyons un code)")) }
                input id="email" name="email" type="email" required autocomplete="email" inputmode="email";
                label for="phone" { (tr(l, "Your phone number, if you also want us to search by it (optional; we will then call you back to check it is yours)", "Votre numéro de téléphone, si vous voulez aussi que nous cherchions avec (facultatif\u{a0}; nous vous rappellerons alors pour vérifier qu’il est à vous)")) }
                input id="phone" name="phone" type="tel" autocomplete="tel" inputmode="tel";
                label for="name" { (tr(l, "Your name (optional)", "Votre nom (facultatif)")) }
                input id="name" name="name" autocomplete="name";
                @match kind {
                    RequestKind::Rectification => {
                        label for="field" { (tr(l, "What is wrong", "Ce qui est inexact")) }
                        select id="field" name="field" {
                            option value="name" { (tr(l, "my name", "mon nom")) }
                            option value="email" { (tr(l, "my email address", "mon adresse électronique")) }
                            option value="phone" { (tr(l, "my phone number", "mon numéro de téléphone")) }
                            option value="address" { (tr(l, "my postal address", "mon adresse postale")) }
                        }
                        label for="value" { (tr(l, "What it should be", "Ce qu’il faut indiquer")) }
                        input id="value" name="value" required autocomplete="off";
                    }
                    RequestKind::Objection => {
                        label for="purpose" { (tr(l, "What you object to", "Ce à quoi vous vous opposez")) }
                        select id="purpose" name="purpose" {
                            option value="direct-marketing" { (tr(l, "direct marketing (calls, emails, texts)", "la prospection (appels, courriels, SMS)")) }
                            option value="profiling" { (tr(l, "profiling", "le profilage")) }
                        }
                    }
                    _ => {}
                }
                @if let Some(c) = captcha {
                    div class=(c.settings.widget_class) data-sitekey=(c.settings.site_key) {}
                    script src=(c.settings.script.as_str()) async defer {}
                }
                button.primary type="submit" { (tr(l, "Send me a code", "Envoyez-moi un code")) }
            }
        },
    )
}

/// What the form asked for, as sent.
struct AskForm {
    lang: String,
    email: String,
    phone: String,
    name: String,
    field: String,
    value: String,
    purpose: String,
}

fn short(s: &str, max: usize) -> Option<String> {
    let s = s.trim();
    (!s.is_empty() && s.len() <= max && !s.chars().any(char::is_control)).then(|| s.to_string())
}

async fn ask(
    State(p): State<Privacy>,
    Path(kind): Path<String>,
    Client(client): Client,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> Response {
    let field = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let f = AskForm {
        lang: field("lang"),
        email: field("email"),
        phone: field("phone"),
        name: field("name"),
        field: field("field"),
        value: field("value"),
        purpose: field("purpose"),
    };
    let l = Lang::parse(&f.lang).unwrap_or_default();
    if let Some(c) = &p.captcha {
        match c.clone().passes(field(&c.settings.field), client).await {
            Some(true) => {}
            Some(false) => {
                return problem_page(
                    l,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    tr(
                        l,
                        "Please complete the check",
                        "Veuillez compléter la vérification",
                    ),
                    tr(
                        l,
                        "The check that you are a person did not pass. Go back and try again.",
                        "La vérification que vous êtes une personne n’a pas abouti. Revenez en arrière et recommencez.",
                    ),
                );
            }
            None => {
                tracing::warn!("privacy center: the CAPTCHA service could not be asked");
                return refused(
                    l,
                    PrivacyError::Request(oubli_core::rights::engine::RequestError::Unavailable(
                        String::new(),
                    )),
                );
            }
        }
    }
    let Some(kind) = kind_of(&kind) else {
        return problem_page(
            l,
            StatusCode::NOT_FOUND,
            tr(l, "Not found", "Introuvable"),
            tr(l, "There is no such page.", "Cette page n’existe pas."),
        );
    };
    let invalid = || {
        refused(
            l,
            PrivacyError::Request(oubli_core::rights::engine::RequestError::Invalid(
                String::new(),
            )),
        )
    };
    let Some(email) = short(&f.email, 254) else {
        return invalid();
    };
    let mut params = Params::default();
    match kind {
        RequestKind::Rectification => {
            let (Some(field), Some(value)) = (
                short(&f.field, 32)
                    .filter(|x| ["name", "email", "phone", "address"].contains(&x.as_str())),
                short(&f.value, 500),
            ) else {
                return invalid();
            };
            params.changes.push(Correction {
                system: None,
                field,
                new_value: Some(value),
            });
        }
        RequestKind::Objection => {
            let Some(purpose) = short(&f.purpose, 32)
                .filter(|x| ["direct-marketing", "profiling"].contains(&x.as_str()))
            else {
                return invalid();
            };
            params.scope.push(purpose);
        }
        RequestKind::Restriction | RequestKind::ConsentWithdrawal => {
            params.scope.push("all".into());
        }
        _ => {}
    }
    let a = Ask {
        kind,
        email,
        phone: short(&f.phone, 40),
        name: short(&f.name, 200),
        params,
        lang: l,
    };
    match p
        .app
        .engine
        .privacy_start(a, &client.to_string(), &p.rules)
        .await
    {
        Ok(started) => {
            p.send(started.mail);
            Redirect::to(&format!("/privacy/verify/{}", started.handle)).into_response()
        }
        Err(e) => refused(l, e),
    }
}

fn code_page(l: Lang, handle: &str, wrong: Option<i64>, phone: bool) -> Markup {
    page(
        l,
        tr(l, "Enter your code", "Saisissez votre code"),
        None,
        html! {
            @if phone {
                p { (tr(l, "Your email address is confirmed. We have just sent a 6-digit code by text message to the phone number you gave: enter it to confirm the number is yours too.", "Votre adresse électronique est confirmée. Nous venons d’envoyer un code à 6 chiffres par SMS au numéro que vous avez donné\u{a0}: saisissez-le pour confirmer que ce numéro est aussi à vous.")) }
            } @else {
                p { (tr(l, "If this address can receive mail, we have just sent it a 6-digit code. It works once, for a few minutes. Check your spam folder if it does not arrive.", "Si cette adresse peut recevoir du courrier, nous venons de lui envoyer un code à 6 chiffres. Il sert une fois, pendant quelques minutes. Regardez dans vos indésirables s’il n’arrive pas.")) }
            }
            @if let Some(left) = wrong {
                p.error role="alert" { (tr(l, "This is not the code we sent. Tries left:", "Ce n’est pas le code que nous avons envoyé. Essais restants\u{a0}:")) " " (left) }
            }
            form.stack method="post" action={ "/privacy/verify/" (handle) } {
                label for="code" { (tr(l, "Code", "Code")) }
                input id="code" name="code" required inputmode="numeric" pattern="[0-9]{6}" maxlength="6" autocomplete="one-time-code";
                button.primary type="submit" { (tr(l, "Confirm", "Confirmer")) }
            }
            form method="post" action={ "/privacy/verify/" (handle) "/again" } {
                button.link type="submit" { (tr(l, "Send a new code", "Envoyer un nouveau code")) }
            }
        },
    )
}

async fn verify_form(
    State(p): State<Privacy>,
    Path(handle): Path<String>,
    h: HeaderMap,
) -> Response {
    let (l, phone) = handle_page(&p, &handle, &h).await;
    html_response(StatusCode::OK, code_page(l, &handle, None, phone))
}

#[derive(Deserialize)]
struct CodeForm {
    #[serde(default)]
    code: String,
}

async fn verify(
    State(p): State<Privacy>,
    Path(handle): Path<String>,
    h: HeaderMap,
    axum::Form(f): axum::Form<CodeForm>,
) -> Response {
    let (l, phone) = handle_page(&p, &handle, &h).await;
    match p
        .app
        .engine
        .privacy_verify(&handle, &f.code, &p.rules)
        .await
    {
        Ok(Verified::Filed { token, mail }) => {
            p.send(Some(mail));
            Redirect::to(&format!("/privacy/status/{token}")).into_response()
        }
        Ok(Verified::Opened) => {
            Redirect::to(&format!("/privacy/download/{handle}")).into_response()
        }
        Ok(Verified::Phone(text)) => {
            p.text(text);
            Redirect::to(&format!("/privacy/verify/{handle}")).into_response()
        }
        Err(PrivacyError::WrongCode { left }) => html_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            code_page(l, &handle, Some(left), phone),
        ),
        Err(e) => refused(l, e),
    }
}

async fn again(State(p): State<Privacy>, Path(handle): Path<String>, h: HeaderMap) -> Response {
    let (l, _) = handle_page(&p, &handle, &h).await;
    match p.app.engine.privacy_resend(&handle, &p.rules).await {
        Ok(out) => {
            p.send_out(out);
            Redirect::to(&format!("/privacy/verify/{handle}")).into_response()
        }
        Err(e) => refused(l, e),
    }
}

fn date(ms: i64) -> String {
    oubli_core::rights::engine::date(ms)
}

async fn status(State(p): State<Privacy>, Path(token): Path<String>, h: HeaderMap) -> Response {
    let s = match p.app.engine.privacy_status(&token, &p.rules).await {
        Ok(s) => s,
        Err(e) => return refused(browser_lang(&h), e),
    };
    let l = s.lang;
    let over = s.state.is_final();
    html_response(
        StatusCode::OK,
        page_by(
            l,
            tr(l, "Your request", "Votre demande"),
            None,
            html! {
                dl.facts {
                    dt { (tr(l, "Reference", "Référence")) } dd { code { (s.reference) } }
                    dt { (tr(l, "You asked us to", "Vous nous avez demandé de")) } dd { (kind_words(s.kind, l)) }
                    dt { (tr(l, "Where it stands", "Où elle en est")) } dd.state { (capitalise(state_words(s.state, l))) }
                    dt { (tr(l, "Received on", "Reçue le")) } dd { (date(s.received_at)) }
                    @if !over {
                        dt { (tr(l, "We will answer by", "Nous répondrons au plus tard le")) } dd { (date(s.due_at)) }
                    }
                    @if let Some((months, reason)) = &s.extension {
                        dt { (tr(l, "Extended by (months)", "Prolongée de (mois)")) }
                        dd { (months) @if !reason.is_empty() { " — " (reason) } }
                    }
                }
                @if s.awaiting_identity {
                    p { (tr(l, "Before we go on, one of our team will check that you are who you say (for instance by calling you back on a number we already have).", "Avant d’aller plus loin, un membre de notre équipe vérifiera que vous êtes bien la personne concernée (par exemple en vous rappelant sur un numéro que nous avons déjà).")) }
                }
                @if s.answer_ready {
                    h2 { (tr(l, "Your answer", "Votre réponse")) }
                    p { (tr(l, "Your answer is ready. To download it, confirm it is you: we send a new code to your email address.", "Votre réponse est prête. Pour la télécharger, confirmez que c’est bien vous\u{a0}: nous envoyons un nouveau code à votre adresse électronique.")) }
                    @if s.downloads > 0 {
                        p.muted { (tr(l, "Downloaded so far:", "Téléchargée jusqu’ici\u{a0}:")) " " (s.downloads) }
                    }
                    form method="post" action={ "/privacy/status/" (token) "/answer" } {
                        button type="submit" { (tr(l, "Send me a code to download it", "Envoyez-moi un code pour la télécharger")) }
                    }
                } @else if let Some(at) = s.answer_removed_at {
                    p { (tr(l, "Your answer was removed on", "Votre réponse a été supprimée le")) " " (date(at)) (tr(l, ", at the end of its keeping period. You may ask again.", ", à la fin de sa durée de conservation. Vous pouvez la redemander.")) }
                }
                p.muted { (tr(l, "Keep this page's link to yourself: it shows where your request stands, never your data.", "Gardez le lien de cette page pour vous\u{a0}: il montre où en est votre demande, jamais vos données.")) }
            },
            &p.footer,
        ),
    )
}

async fn answer_start(
    State(p): State<Privacy>,
    Path(token): Path<String>,
    h: HeaderMap,
) -> Response {
    match p.app.engine.privacy_download_start(&token, &p.rules).await {
        Ok(started) => {
            p.send(started.mail);
            Redirect::to(&format!("/privacy/verify/{}", started.handle)).into_response()
        }
        Err(e) => refused(browser_lang(&h), e),
    }
}

async fn download_page(
    State(p): State<Privacy>,
    Path(handle): Path<String>,
    h: HeaderMap,
) -> Response {
    let (l, _) = handle_page(&p, &handle, &h).await;
    let open = p.app.engine.privacy_download_open(&handle).await;
    let (bytes, sha256) = match open {
        Ok(o) => (o.bytes, o.sha256),
        Err(e) => return refused(l, e),
    };
    let index = p.app.engine.answer_page_name(l);
    html_response(
        StatusCode::OK,
        page(
            l,
            tr(l, "Download your answer", "Téléchargez votre réponse"),
            None,
            html! {
                p { (tr(l, "Your answer is a ZIP file. Open index.html in it to read it in your browser; the other files hold the same data in forms a computer can read.", "Votre réponse est un fichier ZIP. Ouvrez-y index.html pour la lire dans votre navigateur\u{a0}; les autres fichiers contiennent les mêmes données sous des formes lisibles par une machine.")) }
                p.actions-row {
                    a.button href={ "/privacy/download/" (handle) "/answer.zip" } download="answer.zip" { (tr(l, "Download (ZIP, ", "Télécharger (ZIP, ")) (size(bytes)) ")" }
                    " "
                    a href={ "/privacy/download/" (handle) "/files/" (index) } { (tr(l, "Read it online", "La lire en ligne")) }
                }
                p.muted { (tr(l, "This link works for a limited time. SHA-256 of the file:", "Ce lien fonctionne pendant un temps limité. SHA-256 du fichier\u{a0}:")) " " code { (sha256) } }
                h2 { (tr(l, "Or receive it by email, encrypted", "Ou la recevoir par courriel, chiffrée")) }
                p { (tr(l, "We send the answer to your email address, encrypted so that only you can open it: with a password you choose now (at least 12 characters; open the file with 7-Zip, WinZip or Keka), or for your own public key (RSA, PEM).", "Nous envoyons la réponse à votre adresse électronique, chiffrée pour que vous seul puissiez l’ouvrir\u{a0}: avec un mot de passe que vous choisissez maintenant (12 caractères au moins\u{a0}; ouvrez le fichier avec 7-Zip, WinZip ou Keka), ou pour votre propre clé publique (RSA, PEM).")) }
                form.stack method="post" action={ "/privacy/download/" (handle) "/mail" } {
                    label for="password" { (tr(l, "Password (at least 12 characters)", "Mot de passe (12 caractères au moins)")) }
                    input id="password" name="password" type="password" minlength="12" autocomplete="new-password";
                    label for="key" { (tr(l, "Or your public key (PEM)", "Ou votre clé publique (PEM)")) }
                    textarea id="key" name="key" rows="3" autocomplete="off" {}
                    button type="submit" { (tr(l, "Send it to me encrypted", "Me l’envoyer chiffrée")) }
                }
            },
        ),
    )
}

fn size(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
    } else {
        format!("{} KiB", bytes.div_ceil(1024))
    }
}

async fn download(State(p): State<Privacy>, Path(handle): Path<String>, h: HeaderMap) -> Response {
    let id = match p.app.engine.privacy_download(&handle).await {
        Ok(id) => id,
        Err(e) => return refused(browser_lang(&h), e),
    };
    let engine = p.app.engine.clone();
    let len = engine.answer_size(&id).await.map(|(n, _)| n).ok();
    let (writer, reader) = tokio::io::duplex(1 << 20);
    let (finished, outcome) = tokio::sync::oneshot::channel::<bool>();
    tokio::spawn(async move {
        let ok = match engine.write_answer(&id, writer).await {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(error = %e, "privacy center: answer stream failed");
                false
            }
        };
        let _ = finished.send(ok);
    });
    let mut r = (
        [
            (header::CONTENT_TYPE, "application/zip".to_string()),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"answer.zip\"".to_string(),
            ),
        ],
        crate::routes::streamed_body(reader, outcome),
    )
        .into_response();
    if let Some(n) = len
        && let Ok(v) = HeaderValue::from_str(&n.to_string())
    {
        r.headers_mut().insert(header::CONTENT_LENGTH, v);
    }
    r
}

/// Whether the subject is told of `state` by mail (the passing states of
/// the search are not worth a mail each).
fn worth_telling(state: &str) -> bool {
    !matches!(
        RequestState::parse(state),
        Some(RequestState::Verified | RequestState::Planning) | None
    )
}

/// Tell subjects of their requests' changes by mail, every few seconds,
/// until `stop`. A mail is recorded as told once the relay took it; every
/// `serve` process may run this: a state is told once.
pub async fn notify(p: Privacy, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(2)) => {}
            _ = stop.wait_for(|s| *s) => break,
        }
        let owed = match p.app.engine.privacy_untold(50, &p.rules).await {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(error = %e, "privacy center: could not read the changes to tell");
                continue;
            }
        };
        for (id, from, state, mail) in owed {
            if worth_telling(&state) {
                let mailer = p.mailer.clone();
                let sent = tokio::task::spawn_blocking(move || mailer.send(&mail)).await;
                match sent {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        tracing::warn!(request = %id, error = %e, "privacy center: state mail not sent; will retry");
                        continue;
                    }
                    Err(_) => continue,
                }
            }
            if let Err(e) = p.app.engine.privacy_told(&id, &from, &state).await {
                tracing::warn!(request = %id, error = %e, "privacy center: could not record a state told");
            }
        }
    }
}

/// Files of an answer larger than this are not read online (download the
/// ZIP): what one page view may hold in memory.
const ONLINE_MAX: u64 = 32 << 20;

/// One file of the answer, to read online: the answer's page (its links
/// lead here too), its records, its attachments up to [`ONLINE_MAX`].
/// Sandboxed: no script runs, nothing leaves for elsewhere.
async fn answer_file(
    State(p): State<Privacy>,
    Path((handle, path)): Path<(String, String)>,
    h: HeaderMap,
) -> Response {
    use oubli_core::rights::bundle::AnswerFile;
    let (l, _) = handle_page(&p, &handle, &h).await;
    let opened = match p.app.engine.privacy_download_open(&handle).await {
        Ok(o) => o,
        Err(e) => return refused(l, e),
    };
    let not_found = || {
        problem_page(
            l,
            StatusCode::NOT_FOUND,
            tr(l, "Not found", "Introuvable"),
            tr(
                l,
                "Your answer has no such file.",
                "Votre réponse ne contient pas ce fichier.",
            ),
        )
    };
    if path.is_empty() || path.len() > 512 || path.contains("..") || path.starts_with('/') {
        return not_found();
    }
    let file = match p
        .app
        .engine
        .answer_file(&opened.request_id, &path, ONLINE_MAX)
        .await
    {
        Ok(f) => f,
        Err(e) => return refused(l, PrivacyError::Request(e)),
    };
    let bytes = match file {
        AnswerFile::Found(b) => b,
        AnswerFile::Missing => return not_found(),
        AnswerFile::TooLarge(_) => {
            return problem_page(
                l,
                StatusCode::PAYLOAD_TOO_LARGE,
                tr(
                    l,
                    "Too large to read online",
                    "Trop volumineux pour une lecture en ligne",
                ),
                tr(
                    l,
                    "This file is too large to read online: download the ZIP instead.",
                    "Ce fichier est trop volumineux pour être lu en ligne\u{a0}: téléchargez plutôt le ZIP.",
                ),
            );
        }
    };
    let page = path.starts_with("index") && path.ends_with(".html");
    if page && let Err(e) = p.app.engine.privacy_viewed(&opened.request_id).await {
        return refused(l, e);
    }
    let kind = match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "json" => "application/json",
        "csv" => "text/csv; charset=utf-8",
        "txt" => "text/plain; charset=utf-8",
        "eml" => "message/rfc822",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "wav" => "audio/wav",
        "mp3" => "audio/mpeg",
        "ogg" | "opus" => "audio/ogg",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "pdf" => "application/pdf",
        _ => "application/octet-stream",
    };
    let mut r = ([(header::CONTENT_TYPE, kind)], bytes).into_response();
    let h = r.headers_mut();
    // The page's own style is inline; nothing else runs or loads, and the
    // page may not reach anywhere (sandbox: no script, no form, no top
    // navigation).
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; media-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'; sandbox allow-downloads allow-same-origin",
        ),
    );
    if !matches!(kind, k if k.starts_with("text/html") || k.starts_with("audio/") || k.starts_with("image/"))
    {
        let name = path
            .rsplit('/')
            .next()
            .unwrap_or("file")
            .replace(['"', '\\'], "_");
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
    }
    r
}

#[derive(Deserialize)]
struct MailForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    key: String,
}

/// Send the answer by email, encrypted with the subject's password or for
/// their public key. The password lives in this request only.
async fn mail_answer(
    State(p): State<Privacy>,
    Path(handle): Path<String>,
    h: HeaderMap,
    axum::Form(f): axum::Form<MailForm>,
) -> Response {
    use oubli_core::rights::privacy::Sealing;
    let (l, _) = handle_page(&p, &handle, &h).await;
    let password = zeroize::Zeroizing::new(f.password);
    let how = match (password.is_empty(), f.key.trim().is_empty()) {
        (false, true) => Sealing::Password(password),
        (true, false) => Sealing::PublicKey(f.key.trim().to_string()),
        _ => {
            return problem_page(
                l,
                StatusCode::UNPROCESSABLE_ENTITY,
                tr(l, "Please check the form", "Vérifiez le formulaire"),
                tr(
                    l,
                    "Give either a password or a public key.",
                    "Donnez soit un mot de passe, soit une clé publique.",
                ),
            );
        }
    };
    match p
        .app
        .engine
        .privacy_mail_answer(&handle, how, &p.rules)
        .await
    {
        Ok(mail) => {
            p.send(Some(mail));
            html_response(
                StatusCode::OK,
                page(
                    l,
                    tr(l, "Sent", "Envoyée"),
                    None,
                    html! {
                        p role="status" { (tr(l, "Your answer is on its way to your email address, encrypted as you asked.", "Votre réponse part vers votre adresse électronique, chiffrée comme vous l’avez demandé.")) }
                        p { a href={ "/privacy/download/" (handle) } { (tr(l, "Back", "Retour")) } }
                    },
                ),
            )
        }
        Err(PrivacyError::Request(e))
            if e.kind() == oubli_core::rights::engine::ErrorKind::Invalid =>
        {
            problem_page(
                l,
                StatusCode::UNPROCESSABLE_ENTITY,
                tr(l, "Please check the form", "Vérifiez le formulaire"),
                tr(
                    l,
                    "The password must have at least 12 characters, and a public key must be an RSA public key in PEM (-----BEGIN PUBLIC KEY-----).",
                    "Le mot de passe doit avoir 12 caractères au moins, et une clé publique doit être une clé publique RSA en PEM (-----BEGIN PUBLIC KEY-----).",
                ),
            )
        }
        Err(PrivacyError::Request(e))
            if e.kind() == oubli_core::rights::engine::ErrorKind::Conflict =>
        {
            problem_page(
                l,
                StatusCode::CONFLICT,
                tr(
                    l,
                    "Too large for email",
                    "Trop volumineuse pour un courriel",
                ),
                tr(
                    l,
                    "Your answer is too large to send by email: download it instead.",
                    "Votre réponse est trop volumineuse pour un courriel\u{a0}: téléchargez-la plutôt.",
                ),
            )
        }
        Err(e) => refused(l, e),
    }
}
