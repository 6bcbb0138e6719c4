//! Who may call a service, and as whom.
//!
//! The shop has three kinds of caller (DESIGN §6):
//!
//! - **Customers** and **operators** send `Authorization: Bearer <token>`.
//!   The user service issues tokens at log-in and keeps the sessions;
//!   every other service asks it whether a token is live
//!   ([`RemoteSessions`], over the internal API, cached for a moment). The
//!   public routes of a service run behind [`Auth::protect`], and a handler
//!   that needs a caller takes a [`Principal`] (401 without one).
//! - **Services** call each other's internal routes (`/internal/...`), each
//!   request signed with the calling service's own secret
//!   ([`ServiceKey`]): HMAC-SHA256 over method, path, body hash, time and a
//!   nonce, checked against the callee's [`Keyring`] of trusted services
//!   within a replay window ([`service`]). A handler that only one service
//!   may call takes a [`ServiceCaller`] and names it.
//! - **Events** carry their publisher's signature over topic, keys and body
//!   (`crate::events`), checked with the same keyring.
//!
//! A secret never has a usable default: a service without `service_secret`
//! refuses to start.

mod principal;
pub mod service;
mod sessions;

pub use principal::{bearer_token, Principal, PrincipalKind};
pub use service::{Keyring, ServiceCaller, ServiceKey};
pub use sessions::{
    looks_like_token, new_token, token_hash, Authenticator, AuthenticatorError, RemoteSessions,
    SessionView, VerifyRequest, TOKEN_PREFIX, VERIFY_PATH,
};

use std::sync::Arc;

use axum::Router;

/// What a running service knows to check its callers and to sign its own
/// calls: its key, the services it trusts, and who checks tokens.
#[derive(Clone)]
pub struct Auth {
    /// The service's own credential, which its calls and events carry.
    pub key: ServiceKey,
    /// The services it accepts internal calls and events from.
    pub trusted: Arc<Keyring>,
    /// Checks bearer tokens.
    pub sessions: Arc<dyn Authenticator>,
    verifier: Arc<service::Verifier>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("key", &self.key)
            .field("trusted", &self.trusted)
            .finish_non_exhaustive()
    }
}

impl Auth {
    pub fn new(key: ServiceKey, trusted: Keyring, sessions: Arc<dyn Authenticator>) -> Auth {
        let trusted = Arc::new(trusted);
        Auth {
            key,
            verifier: Arc::new(service::Verifier::new(trusted.clone())),
            trusted,
            sessions,
        }
    }

    /// A service's router: `public` with bearer tokens checked (a request
    /// with a bad token is refused 401 before any handler runs; one with no
    /// token reaches handlers that need no [`Principal`]), `internal` (its
    /// routes under `/internal/`) reachable only by a signed call of a
    /// trusted service.
    pub fn protect<S: Clone + Send + Sync + 'static>(
        &self,
        public: Router<S>,
        internal: Router<S>,
    ) -> Router<S> {
        let sessions = self.sessions.clone();
        let verifier = self.verifier.clone();
        public
            .layer(axum::middleware::from_fn_with_state(
                sessions,
                principal::authenticate,
            ))
            .merge(internal.layer(axum::middleware::from_fn_with_state(
                verifier,
                service::guard,
            )))
    }
}
