//! API tokens and roles. A token is shown once, at creation
//! (`oubli_<id>_<secret>`); the store keeps only the SHA-256 of its secret
//! (the secret is 160 random bits, so a fast hash is enough). Checks compare
//! hashes in constant time and cache rows for a second, so a revocation
//! made by another process takes effect within a second.

use super::engine::Engine;
use super::request::{RequestError, event};
use oubli_crypto::random_token;
use oubli_model::evidence::TokenInfo;
use oubli_store::service;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a token may do. Each role may do what the ones before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Reads requests, plans, tasks, systems and the audit log; never
    /// personal data, never a change.
    Auditor,
    /// Files and carries out requests, checks restrictions, pauses systems.
    Operator,
    /// Also approves and rejects (never a request it filed, under four
    /// eyes: the engine checks the actor).
    Approver,
    /// Everything.
    Admin,
}

impl Role {
    /// Every role, weakest first.
    pub const ALL: [Role; 4] = [Role::Auditor, Role::Operator, Role::Approver, Role::Admin];

    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Auditor => "auditor",
            Role::Operator => "operator",
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }

    /// Read a role's name.
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Whether this role may do what `needed` may.
    pub fn allows(self, needed: Role) -> bool {
        self >= needed
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who is calling: what an accepted token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's id.
    pub token: String,
    /// The holder's name: the actor recorded for what it does.
    pub name: String,
    /// Its role.
    pub role: Role,
}

/// Why a token was refused (the API answers 401 for all of them alike).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Not a token of ours, or a wrong secret.
    #[error("unknown token")]
    Unknown,
    /// Expired.
    #[error("the token has expired")]
    Expired,
    /// Revoked.
    #[error("the token was revoked")]
    Revoked,
}

/// A token just created: the secret, shown once, and its row.
#[derive(Debug, Clone)]
pub struct NewToken {
    /// The whole token, to give to its holder. Not kept anywhere.
    pub token: zeroize::Zeroizing<String>,
    /// What is stored.
    pub row: TokenInfo,
}

fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Split `oubli_<id>_<secret>`.
fn split(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix("oubli_")?;
    let (id, secret) = rest.split_once('_')?;
    let ok = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_alphanumeric());
    (ok(id, 8) && ok(secret, 32)).then_some((id, secret))
}

impl Engine {
    /// Create a token for `name` with `role`, valid for `valid_for_ms`
    /// (forever if `None`). The token is in the result only.
    pub async fn create_token(
        &self,
        role: Role,
        name: &str,
        valid_for_ms: Option<i64>,
        actor: &str,
    ) -> Result<NewToken, RequestError> {
        super::engine::valid_actor(actor)?;
        // A token's name becomes the operator's identity in every decision
        // it makes: letters that only look alike (Cyrillic `о` for `o`)
        // would be another person to four eyes, so names are ASCII.
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.@:".contains(&b));
        if !ok {
            return Err(RequestError::Invalid(
                "a token's name is 1 to 64 ASCII letters, digits or - _ . @ :".into(),
            ));
        }
        let id = random_token(5)?;
        let secret = zeroize::Zeroizing::new(random_token(20)?);
        let now = self.store.now();
        let row = TokenInfo {
            id: id.clone(),
            hash: secret_hash(&secret),
            role: role.as_str().to_string(),
            name: name.to_string(),
            created_by: actor.to_string(),
            created_at: now,
            expires_at: valid_for_ms.map(|v| now.saturating_add(v)),
            revoked_at: None,
        };
        let mut tx = self.store.write_logged().await?;
        service::insert_token(&mut tx, &row).await?;
        let subject = format!("token:{id}");
        let action = format!("token-created:{role}");
        oubli_store::requests::event(
            &mut tx,
            &event(&subject, actor, &action, None),
            self.store.now(),
        )
        .await?;
        oubli_store::commit(tx).await?;
        tracing::info!(token = %id, %role, actor, "API token created");
        Ok(NewToken {
            token: zeroize::Zeroizing::new(format!("oubli_{id}_{}", secret.as_str())),
            row,
        })
    }

    /// Every token (without secrets).
    pub async fn tokens(&self) -> Result<Vec<TokenInfo>, RequestError> {
        Ok(service::tokens(self.store.pool()).await?)
    }

    /// Revoke a token; false if it does not exist or was revoked already.
    pub async fn revoke_token(&self, id: &str, actor: &str) -> Result<bool, RequestError> {
        super::engine::valid_actor(actor)?;
        let mut tx = self.store.write_logged().await?;
        let done = service::revoke_token(&mut tx, id, self.store.now()).await?;
        if done {
            let subject = format!("token:{id}");
            oubli_store::requests::event(
                &mut tx,
                &event(&subject, actor, "token-revoked", None),
                self.store.now(),
            )
            .await?;
        }
        oubli_store::commit(tx).await?;
        self.tokens.forget(id);
        Ok(done)
    }

    /// Who holds `token`, if it is a live token of ours.
    pub async fn authenticate(
        &self,
        token: &str,
    ) -> Result<Result<Caller, AuthError>, RequestError> {
        let Some((id, secret)) = split(token) else {
            return Ok(Err(AuthError::Unknown));
        };
        let Some(row) = self.token_row(id).await? else {
            return Ok(Err(AuthError::Unknown));
        };
        let given = secret_hash(secret);
        if !bool::from(given.as_bytes().ct_eq(row.hash.as_bytes())) {
            return Ok(Err(AuthError::Unknown));
        }
        Ok(self.live(row))
    }

    /// Who holds the token with id `id`, while it is live (not revoked,
    /// not expired): what a session opened with it checks at every use.
    pub(crate) async fn token_holder(
        &self,
        id: &str,
    ) -> Result<Result<Caller, AuthError>, RequestError> {
        match self.token_row(id).await? {
            Some(row) => Ok(self.live(row)),
            None => Ok(Err(AuthError::Unknown)),
        }
    }

    /// A token's row by id, through the token cache.
    async fn token_row(&self, id: &str) -> Result<Option<TokenInfo>, RequestError> {
        if let Some(r) = self.tokens.get(id, self.store.now()) {
            return Ok(Some(r));
        }
        let row = service::token(self.store.pool(), id).await?;
        if let Some(r) = &row {
            self.tokens.put(r.clone(), self.store.now());
        }
        Ok(row)
    }

    /// The caller a token's row names, unless it was revoked or expired.
    fn live(&self, row: TokenInfo) -> Result<Caller, AuthError> {
        if row.revoked_at.is_some() {
            return Err(AuthError::Revoked);
        }
        if row.expires_at.is_some_and(|e| e <= self.store.now()) {
            return Err(AuthError::Expired);
        }
        let role = Role::parse(&row.role).ok_or(AuthError::Unknown)?;
        Ok(Caller {
            token: row.id,
            name: row.name,
            role,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_named() {
        assert!(Role::Admin.allows(Role::Auditor));
        assert!(Role::Approver.allows(Role::Operator));
        assert!(!Role::Operator.allows(Role::Approver));
        assert!(!Role::Auditor.allows(Role::Operator));
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn tokens_split_only_in_their_shape() {
        let t = format!("oubli_{}_{}", "abcd2345", "a".repeat(32));
        assert_eq!(split(&t), Some(("abcd2345", "a".repeat(32).as_str())));
        assert_eq!(split("oubli_abcd2345"), None);
        assert_eq!(split(&format!("oubli_abc_{}", "a".repeat(32))), None);
        assert_eq!(split(&format!("Bearer_abcd2345_{}", "a".repeat(32))), None);
        assert_eq!(split(&format!("oubli_abcd2345_{}!", "a".repeat(31))), None);
    }
}
