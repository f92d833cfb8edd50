//! Sign-in with the organisation's identity provider: OpenID Connect's
//! authorization code flow with PKCE (S256), a nonce and a state bound to a
//! short-lived cookie, through the `openidconnect` crate. The provider's
//! discovery document and keys are read at the first sign-in and again
//! whenever a sign-in fails on them. The user's role comes from one claim
//! of the verified ID token (`roles_claim`, a string or a list of strings)
//! through the configured mapping; the highest mapped role wins, and a user
//! with no mapped value is refused. A provider that keeps the claim out
//! of the ID token gives it at its userinfo endpoint, which is asked then.
//!
//! The provider's HTTP calls go through ureq with no redirects followed and
//! a 10 s limit, off the async runtime.

use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use oubli_core::config::OidcSettings;
use oubli_core::rights::tokens::Role;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// How long a sign-in may take at the provider.
const PENDING_MS: i64 = 10 * 60 * 1000;
/// Sign-ins under way at once, at most.
const MAX_PENDING: usize = 10_000;

/// Why a sign-in through the provider failed. Messages name no token,
/// code or claim value.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The provider could not be reached or answered nonsense.
    #[error("the identity provider could not be reached or its answer was not understood")]
    Provider,
    /// The browser came back with a state we did not send, too late, or
    /// without the cookie that started it.
    #[error("this sign-in was not started here, or took too long; start again")]
    State,
    /// The provider said no (the user cancelled, say).
    #[error("the identity provider refused the sign-in")]
    Refused,
    /// The ID token did not verify.
    #[error("the identity provider's answer did not verify")]
    Token,
    /// The user has no role here.
    #[error("your account has no role in oubli: ask an administrator to map one of your groups")]
    NoRole,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct HttpError(String);

/// openidconnect's HTTP client, over ureq.
struct Http(ureq::Agent);

impl openidconnect::SyncHttpClient for Http {
    type Error = HttpError;

    fn call(
        &self,
        request: openidconnect::HttpRequest,
    ) -> Result<openidconnect::HttpResponse, HttpError> {
        let mut response = self.0.run(request).map_err(|e| HttpError(e.to_string()))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_vec()
            .map_err(|e| HttpError(e.to_string()))?;
        let mut out = openidconnect::HttpResponse::new(body);
        *out.status_mut() = status;
        *out.headers_mut() = headers;
        Ok(out)
    }
}

struct Pending {
    verifier: String,
    nonce: String,
    at: i64,
}

/// A configured provider and the sign-ins under way.
pub struct Oidc {
    settings: OidcSettings,
    secret: Option<String>,
    http: std::sync::Arc<Http>,
    metadata: Mutex<Option<CoreProviderMetadata>>,
    pending: Mutex<HashMap<String, Pending>>,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc")
            .field("issuer", &self.settings.issuer.as_str())
            .finish_non_exhaustive()
    }
}

/// Who signed in.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The name recorded as the actor: `sso:` and the name claim.
    pub name: String,
    /// The role mapped from the roles claim.
    pub role: Role,
}

impl Oidc {
    /// A provider from its settings, its client secret read now (a
    /// missing secret is an error at start, not at the first sign-in).
    pub fn new(settings: OidcSettings) -> Result<Oidc, String> {
        let secret = match &settings.client_secret {
            None => None,
            Some(s) => Some(
                s.resolve()
                    .map_err(|e| format!("api.console.oidc.client_secret: {e}"))?
                    .expose()
                    .to_string(),
            ),
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .into();
        Ok(Oidc {
            settings,
            secret,
            http: std::sync::Arc::new(Http(agent)),
            metadata: Mutex::default(),
            pending: Mutex::default(),
        })
    }

    async fn metadata(&self) -> Result<CoreProviderMetadata, OidcError> {
        if let Some(m) = self
            .metadata
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            return Ok(m);
        }
        let issuer = IssuerUrl::new(
            self.settings
                .issuer
                .to_string()
                .trim_end_matches('/')
                .to_string(),
        )
        .map_err(|_| OidcError::Provider)?;
        let http = self.http.clone();
        let m = tokio::task::spawn_blocking(move || {
            CoreProviderMetadata::discover(&issuer, http.as_ref())
        })
        .await
        .map_err(|_| OidcError::Provider)?
        .map_err(|e| {
            tracing::warn!(error = %e, "OpenID provider discovery failed");
            OidcError::Provider
        })?;
        *self.metadata.lock().unwrap_or_else(|e| e.into_inner()) = Some(m.clone());
        Ok(m)
    }

    fn forget_metadata(&self) {
        *self.metadata.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    fn client(
        &self,
        m: CoreProviderMetadata,
    ) -> Result<
        CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        OidcError,
    > {
        let redirect = RedirectUrl::new(self.settings.redirect_url.to_string())
            .map_err(|_| OidcError::Provider)?;
        Ok(CoreClient::from_provider_metadata(
            m,
            ClientId::new(self.settings.client_id.clone()),
            self.secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(redirect))
    }

    /// Start a sign-in at `now`: the provider's URL to send the browser
    /// to, and the state to keep in its cookie.
    pub async fn start(&self, now: i64) -> Result<(String, String), OidcError> {
        let client = self.client(self.metadata().await?)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for scope in ["profile", "email"] {
            request = request.add_scope(Scope::new(scope.into()));
        }
        if self.settings.roles_claim == "groups" {
            request = request.add_scope(Scope::new("groups".into()));
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.retain(|_, p| now - p.at < PENDING_MS);
        if pending.len() >= MAX_PENDING {
            return Err(OidcError::Provider);
        }
        pending.insert(
            state.secret().clone(),
            Pending {
                verifier: verifier.secret().clone(),
                nonce: nonce.secret().clone(),
                at: now,
            },
        );
        Ok((url.to_string(), state.secret().clone()))
    }

    /// Finish a sign-in: `state` as the provider sent it back must be the
    /// one in the browser's cookie and under way; the code is exchanged
    /// (with the PKCE verifier), the ID token verified (signature,
    /// issuer, audience, expiry, nonce), and the role mapped.
    pub async fn finish(
        &self,
        state: &str,
        cookie_state: Option<&str>,
        code: &str,
        now: i64,
    ) -> Result<Identity, OidcError> {
        use subtle::ConstantTimeEq;
        let same = cookie_state.is_some_and(|c| bool::from(c.as_bytes().ct_eq(state.as_bytes())));
        if !same {
            return Err(OidcError::State);
        }
        let pending = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(state)
            .filter(|p| now - p.at < PENDING_MS)
            .ok_or(OidcError::State)?;
        let result = self.exchange(pending, code).await;
        if matches!(result, Err(OidcError::Provider | OidcError::Token)) {
            // Keys may have rolled over: read them again next time.
            self.forget_metadata();
        }
        result
    }

    async fn exchange(&self, pending: Pending, code: &str) -> Result<Identity, OidcError> {
        let client = self.client(self.metadata().await?)?;
        let http = self.http.clone();
        let code = AuthorizationCode::new(code.to_string());
        let verifier = PkceCodeVerifier::new(pending.verifier);
        let (client, response) = tokio::task::spawn_blocking(move || {
            let response = client
                .exchange_code(code)
                .map_err(|_| OidcError::Provider)?
                .set_pkce_verifier(verifier)
                .request(http.as_ref())
                .map_err(|e| {
                    tracing::info!(error = %e, "OpenID code exchange refused");
                    OidcError::Refused
                })?;
            Ok::<_, OidcError>((client, response))
        })
        .await
        .map_err(|_| OidcError::Provider)??;
        let id_token = response.id_token().ok_or(OidcError::Token)?;
        let verifier = client.id_token_verifier();
        let claims = id_token
            .claims(&verifier, &Nonce::new(pending.nonce))
            .map_err(|e| {
                tracing::info!(error = %e, "ID token refused");
                OidcError::Token
            })?;
        // The token verified: read the claims it carries, as signed.
        let payload = id_token
            .to_string()
            .split('.')
            .nth(1)
            .and_then(|p| {
                use base64::Engine as _;
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(p.trim_end_matches('='))
                    .ok()
            })
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .ok_or(OidcError::Token)?;
        // Providers that keep groups out of the ID token give them at the
        // userinfo endpoint, for the access token just issued; its `sub`
        // must be the ID token's (OpenID Connect Core 5.3.2).
        let payload = if payload.get(&self.settings.roles_claim).is_some() {
            payload
        } else {
            let endpoint = client
                .user_info_url()
                .map(|u| u.url().to_string())
                .ok_or(OidcError::NoRole)?;
            let info = self
                .userinfo(endpoint, response.access_token().secret().clone())
                .await?;
            if info.get("sub").and_then(|v| v.as_str()) != Some(claims.subject().as_str()) {
                tracing::info!("userinfo answered for another subject");
                return Err(OidcError::Token);
            }
            info
        };
        let role = self.role(&payload).ok_or(OidcError::NoRole)?;
        let name = payload
            .get(&self.settings.name_claim)
            .and_then(|v| v.as_str())
            .or_else(|| claims.email().map(|e| e.as_str()))
            .unwrap_or(claims.subject().as_str());
        let name: String = name.chars().filter(|c| !c.is_control()).take(100).collect();
        if name.trim().is_empty() {
            return Err(OidcError::Token);
        }
        Ok(Identity {
            name: format!("sso:{name}"),
            role,
        })
    }

    /// The claims the userinfo endpoint gives for `access_token` (JSON; a
    /// signed or encrypted answer is not read).
    async fn userinfo(
        &self,
        endpoint: String,
        access_token: String,
    ) -> Result<serde_json::Value, OidcError> {
        let agent = self.http.0.clone();
        tokio::task::spawn_blocking(move || {
            let mut r = agent
                .get(&endpoint)
                .header("authorization", &format!("Bearer {access_token}"))
                .header("accept", "application/json")
                .call()
                .map_err(|_| OidcError::Provider)?;
            if !r.status().is_success() {
                return Err(OidcError::Refused);
            }
            let body = r
                .body_mut()
                .with_config()
                .limit(1 << 20)
                .read_to_vec()
                .map_err(|_| OidcError::Provider)?;
            serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .filter(serde_json::Value::is_object)
                .ok_or(OidcError::Provider)
        })
        .await
        .map_err(|_| OidcError::Provider)?
    }

    /// The highest role the roles claim maps to.
    fn role(&self, claims: &serde_json::Value) -> Option<Role> {
        let values: Vec<&str> = match claims.get(&self.settings.roles_claim)? {
            serde_json::Value::String(s) => vec![s.as_str()],
            serde_json::Value::Array(a) => a.iter().filter_map(|v| v.as_str()).collect(),
            _ => return None,
        };
        values
            .iter()
            .filter_map(|v| self.settings.roles.get(*v))
            .filter_map(|r| Role::parse(r))
            .max_by_key(|r| rank(*r))
    }
}

fn rank(r: Role) -> u8 {
    match r {
        Role::Auditor => 0,
        Role::Operator => 1,
        Role::Approver => 2,
        Role::Admin => 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oidc() -> Oidc {
        Oidc::new(OidcSettings {
            issuer: "http://127.0.0.1:1/".parse().unwrap(),
            client_id: "oubli".into(),
            client_secret: None,
            redirect_url: "http://127.0.0.1:2/signin/oidc/callback".parse().unwrap(),
            roles_claim: "groups".into(),
            roles: [
                ("privacy-team".to_string(), "operator".to_string()),
                ("dpo".to_string(), "approver".to_string()),
            ]
            .into(),
            name_claim: "preferred_username".into(),
        })
        .unwrap()
    }

    #[test]
    fn the_highest_mapped_role_wins_and_unmapped_users_get_none() {
        let o = oidc();
        let j = |v: serde_json::Value| o.role(&v);
        assert_eq!(
            j(serde_json::json!({"groups": ["privacy-team", "dpo", "canteen"]})),
            Some(Role::Approver)
        );
        assert_eq!(
            j(serde_json::json!({"groups": "privacy-team"})),
            Some(Role::Operator)
        );
        assert_eq!(j(serde_json::json!({"groups": ["canteen"]})), None);
        assert_eq!(j(serde_json::json!({"groups": 3})), None);
        assert_eq!(j(serde_json::json!({})), None);
    }

    #[tokio::test]
    async fn a_callback_without_the_starting_cookie_or_state_is_refused() {
        let o = oidc();
        let e = o.finish("s", None, "code", 0).await.unwrap_err();
        assert!(matches!(e, OidcError::State));
        let e = o.finish("s", Some("other"), "code", 0).await.unwrap_err();
        assert!(matches!(e, OidcError::State));
        // The right cookie but a state never issued here.
        let e = o.finish("s", Some("s"), "code", 0).await.unwrap_err();
        assert!(matches!(e, OidcError::State));
    }
}
