//! Bearer tokens: how they look, and how a service other than the user
//! service checks one (it asks the user service, which keeps the sessions).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::principal::Principal;
use super::service::hex;
use crate::client::{CallError, ServiceClient};

/// Every token starts with this, then 64 hex digits (256 random bits).
pub const TOKEN_PREFIX: &str = "shop_";

/// The user service's internal endpoint that says whose a token is.
pub const VERIFY_PATH: &str = "/internal/sessions/verify";

/// A new random token.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source works");
    format!("{TOKEN_PREFIX}{}", hex(&bytes))
}

/// What the user service stores of a token: the hex SHA-256 of it, so a
/// leaked sessions table holds no usable token.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// Whether `token` has the form of a token (checked before anything is
/// looked up).
pub fn looks_like_token(token: &str) -> bool {
    token.strip_prefix(TOKEN_PREFIX).is_some_and(|rest| {
        rest.len() == 64 && rest.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// `POST /internal/sessions/verify`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VerifyRequest {
    pub token: String,
}

/// The answer: whose the token is and until when (ms since the epoch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SessionView {
    pub principal: Principal,
    pub expires_at: i64,
}

/// Why a token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthenticatorError {
    /// Unknown, malformed, expired or revoked.
    #[error("invalid token")]
    Invalid,
    /// The sessions could not be asked.
    #[error("cannot check the token: {0}")]
    Unavailable(String),
}

/// Says whose a bearer token is.
#[mq_client::async_trait]
pub trait Authenticator: Send + Sync + 'static {
    async fn authenticate(&self, token: &str) -> Result<Principal, AuthenticatorError>;
}

/// Checks tokens with the user service, remembering each answer for at
/// most `cache_for` (and never past the session's expiry): a log-out takes
/// effect at once at the user service and within `cache_for` everywhere
/// else.
pub struct RemoteSessions {
    user: ServiceClient,
    cache_for: Duration,
    cache: Mutex<HashMap<String, (Principal, Instant)>>,
}

/// The most answers kept; beyond, the cache starts afresh.
const CACHE_CAPACITY: usize = 10_000;

impl RemoteSessions {
    /// `user` must be a client of the user service signed by this service's
    /// key.
    pub fn new(user: ServiceClient, cache_for: Duration) -> RemoteSessions {
        RemoteSessions {
            user,
            cache_for,
            cache: Mutex::new(HashMap::new()),
        }
    }
}

#[mq_client::async_trait]
impl Authenticator for RemoteSessions {
    async fn authenticate(&self, token: &str) -> Result<Principal, AuthenticatorError> {
        if !looks_like_token(token) {
            return Err(AuthenticatorError::Invalid);
        }
        let hash = token_hash(token);
        let now = Instant::now();
        {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((principal, until)) = cache.get(&hash) {
                if *until > now {
                    return Ok(principal.clone());
                }
            }
        }
        let request = VerifyRequest {
            token: token.to_owned(),
        };
        match self
            .user
            .post::<SessionView, _>(VERIFY_PATH, &request)
            .await
        {
            Ok(view) => {
                let left = u64::try_from(view.expires_at - crate::now_ms()).unwrap_or(0);
                let until = now + self.cache_for.min(Duration::from_millis(left));
                let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
                if cache.len() >= CACHE_CAPACITY {
                    cache.retain(|_, (_, until)| *until > now);
                    if cache.len() >= CACHE_CAPACITY {
                        cache.clear();
                    }
                }
                cache.insert(hash, (view.principal.clone(), until));
                Ok(view.principal)
            }
            Err(CallError::Refused { status, .. }) if status == 401 || status == 404 => {
                Err(AuthenticatorError::Invalid)
            }
            Err(other) => Err(AuthenticatorError::Unavailable(other.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_recognised_by_form() {
        let a = new_token();
        assert!(looks_like_token(&a), "{a}");
        assert_ne!(a, new_token());
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), a);
        for bad in [
            "",
            "shop_",
            "shop_zz",
            "Bearer x",
            &a.to_uppercase(),
            &a[..60],
        ] {
            assert!(!looks_like_token(bad), "{bad}");
        }
    }
}
