//! Calls between services, signed by the caller.
//!
//! Each service has its own secret (`service_secret`); a callee knows the
//! secrets of the services it trusts (`trusted_services`, a [`Keyring`]).
//! A call carries four headers:
//!
//! ```text
//! x-shop-caller: order
//! x-shop-timestamp: 1764633600000          (ms since the epoch)
//! x-shop-nonce: 8f0c...                     (unique per call)
//! x-shop-signature: <hex HMAC-SHA256(secret, signed text)>
//! ```
//!
//! over this text, so that method, path and query, body, time and nonce are
//! all bound:
//!
//! ```text
//! shop-call-v1\n<METHOD>\n<path?query>\n<timestamp>\n<nonce>\n<hex SHA-256 of the body>
//! ```
//!
//! The callee refuses (401 `service_unauthenticated`) an unknown caller, a
//! wrong signature, a timestamp more than [`MAX_SKEW`] away from its clock,
//! or a nonce it has seen within that window (a replay).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::config::{ConfigError, Secret};
use crate::ApiError;

type HmacSha256 = Hmac<Sha256>;

pub const CALLER_HEADER: &str = "x-shop-caller";
pub const TIMESTAMP_HEADER: &str = "x-shop-timestamp";
pub const NONCE_HEADER: &str = "x-shop-nonce";
pub const SIGNATURE_HEADER: &str = "x-shop-signature";

/// How far a call's timestamp may be from the callee's clock, either way;
/// also how long its nonce is remembered.
pub const MAX_SKEW: std::time::Duration = std::time::Duration::from_secs(30);

/// The shortest secret accepted (in bytes).
pub const MIN_SECRET_LEN: usize = 16;

/// The largest internal request body read to check its signature; the
/// shop's internal requests are a few hundred bytes.
pub const MAX_INTERNAL_BODY: usize = 64 * 1024;

/// The names a service may have: lower-case letters, digits and `-`.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A service's own credential: its name and secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ServiceKey {
    name: String,
    secret: Secret,
}

impl fmt::Debug for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServiceKey({}, ***)", self.name)
    }
}

impl ServiceKey {
    /// `name`'s key; the secret must be at least [`MIN_SECRET_LEN`] bytes.
    pub fn new(name: &str, secret: &str) -> Result<ServiceKey, ConfigError> {
        if !valid_name(name) {
            return Err(ConfigError::invalid(
                "service name",
                name,
                "must be lower-case letters, digits and '-'",
            ));
        }
        if secret.len() < MIN_SECRET_LEN || secret.contains([',', ':', ' ']) {
            return Err(ConfigError::invalid(
                "service_secret",
                "",
                "must be at least 16 characters without ',', ':' or spaces \
                 (generate one, e.g. `openssl rand -hex 32`)",
            ));
        }
        Ok(ServiceKey {
            name: name.to_owned(),
            secret: Secret::new(secret),
        })
    }

    /// The key tests give `name`: `test-secret-of-<name>` (see
    /// [`Keyring::for_tests`]).
    pub fn for_tests(name: &str) -> ServiceKey {
        ServiceKey::new(name, &format!("test-secret-of-{name}")).expect("a valid test key")
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn secret(&self) -> &Secret {
        &self.secret
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(self.secret.expose()).expect("HMAC takes a key of any length")
    }

    /// Hex HMAC-SHA256 of `text` under this key.
    pub fn sign(&self, text: &[u8]) -> String {
        let mut mac = self.mac();
        mac.update(text);
        hex(&mac.finalize().into_bytes())
    }

    /// Whether `signature` (hex) is this key's HMAC of `text`, compared in
    /// constant time.
    pub fn verify(&self, text: &[u8], signature: &str) -> bool {
        let Some(bytes) = unhex(signature) else {
            return false;
        };
        let mut mac = self.mac();
        mac.update(text);
        mac.verify_slice(&bytes).is_ok()
    }

    /// The four headers of a call of `method` on `path_and_query` with
    /// `body`, made at `now_ms`.
    pub fn sign_call(
        &self,
        method: &str,
        path_and_query: &str,
        body: &[u8],
        now_ms: i64,
    ) -> Vec<(&'static str, String)> {
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let text = call_text(method, path_and_query, now_ms, &nonce, body);
        vec![
            (CALLER_HEADER, self.name.clone()),
            (TIMESTAMP_HEADER, now_ms.to_string()),
            (NONCE_HEADER, nonce),
            (SIGNATURE_HEADER, self.sign(text.as_bytes())),
        ]
    }
}

fn call_text(method: &str, path_and_query: &str, ts: i64, nonce: &str, body: &[u8]) -> String {
    format!(
        "shop-call-v1\n{method}\n{path_and_query}\n{ts}\n{nonce}\n{}",
        hex(&Sha256::digest(body))
    )
}

/// The services a service trusts, by name, with their secrets
/// (`trusted_services=order:<secret>,pay:<secret>`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Keyring {
    keys: BTreeMap<String, ServiceKey>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.keys.keys()).finish()
    }
}

impl Keyring {
    /// Parses `name:secret` entries separated by commas (an empty value
    /// trusts nobody). The error names the entry, never a secret.
    pub fn parse(value: &str) -> Result<Keyring, ConfigError> {
        let mut keyring = Keyring::default();
        for (n, entry) in value
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .enumerate()
        {
            let Some((name, secret)) = entry.split_once(':') else {
                return Err(ConfigError::invalid(
                    "trusted_services",
                    &format!("entry {}", n + 1),
                    "must be name:secret",
                ));
            };
            let key = ServiceKey::new(name.trim(), secret.trim()).map_err(|_| {
                ConfigError::invalid(
                    "trusted_services",
                    &format!("entry {} ({})", n + 1, name.trim()),
                    "needs a service name and a secret of at least 16 characters",
                )
            })?;
            keyring.insert(key);
        }
        Ok(keyring)
    }

    /// Every shop service with its test key.
    pub fn for_tests() -> Keyring {
        let mut keyring = Keyring::default();
        for name in crate::service::SERVICE_NAMES {
            keyring.insert(ServiceKey::for_tests(name));
        }
        keyring
    }

    pub fn insert(&mut self, key: ServiceKey) {
        self.keys.insert(key.name.clone(), key);
    }

    pub fn get(&self, name: &str) -> Option<&ServiceKey> {
        self.keys.get(name)
    }

    /// The `trusted_services` value of this keyring.
    pub fn render(&self) -> String {
        self.keys
            .values()
            .map(|k| format!("{}:{}", k.name, String::from_utf8_lossy(k.secret.expose())))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Why a signed call was refused; the caller learns only that it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallRefused {
    #[error("the call carries no service signature")]
    Unsigned,
    #[error("service {0:?} is not trusted here")]
    UnknownCaller(String),
    #[error("the call's timestamp is outside the replay window")]
    Stale,
    #[error("the call's nonce was seen before (a replay)")]
    Replayed,
    #[error("the signature does not match")]
    BadSignature,
}

/// Checks signed calls against a keyring, remembering recent nonces.
pub struct Verifier {
    trusted: Arc<Keyring>,
    seen: Mutex<Nonces>,
}

/// The nonces of the calls accepted within the replay window, with their
/// timestamps; those older than the window are dropped at most once a
/// second (not on every call: at a thousand calls a second the window holds
/// tens of thousands).
#[derive(Default)]
struct Nonces {
    at: HashMap<String, i64>,
    pruned_at: i64,
}

impl Verifier {
    pub fn new(trusted: Arc<Keyring>) -> Verifier {
        Verifier {
            trusted,
            seen: Mutex::new(Nonces::default()),
        }
    }

    /// The caller of a request with `headers`, if its signature holds at
    /// `now_ms`.
    pub fn verify(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &HeaderMap,
        body: &[u8],
        now_ms: i64,
    ) -> Result<String, CallRefused> {
        let header = |name| {
            headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
        };
        let (Some(caller), Some(ts), Some(nonce), Some(signature)) = (
            header(CALLER_HEADER),
            header(TIMESTAMP_HEADER),
            header(NONCE_HEADER),
            header(SIGNATURE_HEADER),
        ) else {
            return Err(CallRefused::Unsigned);
        };
        let key = self
            .trusted
            .get(caller)
            .ok_or_else(|| CallRefused::UnknownCaller(caller.to_owned()))?;
        let ts: i64 = ts.parse().map_err(|_| CallRefused::Stale)?;
        let window = i64::try_from(MAX_SKEW.as_millis()).unwrap_or(i64::MAX);
        if ts.abs_diff(now_ms) > window.unsigned_abs() {
            return Err(CallRefused::Stale);
        }
        if nonce.is_empty() || nonce.len() > 64 {
            return Err(CallRefused::BadSignature);
        }
        let text = call_text(method, path_and_query, ts, nonce, body);
        if !key.verify(text.as_bytes(), signature) {
            return Err(CallRefused::BadSignature);
        }
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if now_ms - seen.pruned_at >= 1_000 {
            // A nonce older than the window cannot come back: its call
            // would be refused as stale.
            seen.at
                .retain(|_, at| now_ms.abs_diff(*at) <= window.unsigned_abs());
            seen.pruned_at = now_ms;
        }
        let nonce_key = format!("{caller}/{nonce}");
        if seen.at.contains_key(&nonce_key) {
            return Err(CallRefused::Replayed);
        }
        seen.at.insert(nonce_key, ts);
        Ok(caller.to_owned())
    }
}

/// The service that made a verified internal call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceCaller(pub String);

impl ServiceCaller {
    /// Refuses (403 `service_forbidden`) a caller not among `allowed`.
    pub fn require(&self, allowed: &[&str]) -> Result<(), ApiError> {
        if allowed.contains(&self.0.as_str()) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "service_forbidden",
                format!("service {} may not call this endpoint", self.0),
            ))
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ServiceCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<ServiceCaller>()
            .cloned()
            .ok_or_else(|| refusal(&CallRefused::Unsigned))
    }
}

fn refusal(why: &CallRefused) -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "service_unauthenticated",
        "internal endpoint: a signed call of a trusted service is required",
    )
    .with_detail_logged(why)
}

/// Why a signed request was not let through.
#[derive(Debug)]
pub enum Unverified {
    /// Its body is over [`MAX_INTERNAL_BODY`] (or could not be read).
    TooLarge,
    /// Its signature does not hold.
    Refused(CallRefused),
}

/// Reads the body of `request` (at most [`MAX_INTERNAL_BODY`]) and checks
/// its signature with `verifier`: the caller, and the request with its
/// body put back for the handler.
pub async fn verified(
    verifier: &Verifier,
    request: Request,
) -> Result<(String, Request), Unverified> {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_INTERNAL_BODY)
        .await
        .map_err(|_| Unverified::TooLarge)?;
    let path = parts
        .uri
        .path_and_query()
        .map_or(parts.uri.path(), |p| p.as_str());
    let caller = verifier
        .verify(
            parts.method.as_str(),
            path,
            &parts.headers,
            &bytes,
            crate::now_ms(),
        )
        .map_err(Unverified::Refused)?;
    Ok((caller, Request::from_parts(parts, Body::from(bytes))))
}

/// The middleware of internal routes: lets a [`verified`] request through
/// with its [`ServiceCaller`].
pub(super) async fn guard(
    State(verifier): State<Arc<Verifier>>,
    request: Request,
    next: Next,
) -> Response {
    match verified(&verifier, request).await {
        Ok((caller, mut request)) => {
            request.extensions_mut().insert(ServiceCaller(caller));
            next.run(request).await
        }
        Err(Unverified::TooLarge) => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "internal request bodies are limited to 64 KiB",
        )
        .into_response(),
        Err(Unverified::Refused(why)) => refusal(&why).into_response(),
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.len() > 128 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(signed: Vec<(&'static str, String)>) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in signed {
            map.insert(name, value.parse().unwrap());
        }
        map
    }

    fn verifier() -> Verifier {
        let mut keyring = Keyring::default();
        keyring.insert(ServiceKey::for_tests("order"));
        Verifier::new(Arc::new(keyring))
    }

    #[test]
    fn a_signed_call_passes_once_and_binds_method_path_body_and_time() {
        let order = ServiceKey::for_tests("order");
        let now = 1_764_633_600_000;
        let verifier = verifier();
        let signed = headers(order.sign_call("POST", "/internal/x?a=1", b"{}", now));
        assert_eq!(
            verifier.verify("POST", "/internal/x?a=1", &signed, b"{}", now + 10),
            Ok("order".to_owned())
        );
        assert_eq!(
            verifier.verify("POST", "/internal/x?a=1", &signed, b"{}", now + 20),
            Err(CallRefused::Replayed)
        );
        for (method, path, body) in [
            ("GET", "/internal/x?a=1", &b"{}"[..]),
            ("POST", "/internal/x?a=2", b"{}"),
            ("POST", "/internal/x?a=1", b"{\"amount\":1}"),
        ] {
            let fresh = headers(order.sign_call("POST", "/internal/x?a=1", b"{}", now));
            assert_eq!(
                verifier.verify(method, path, &fresh, body, now),
                Err(CallRefused::BadSignature),
                "{method} {path}"
            );
        }
        // A nonce is forgotten once its call would be stale anyway.
        let later = headers(order.sign_call("POST", "/internal/y", b"", now + 5_000));
        assert!(verifier
            .verify("POST", "/internal/y", &later, b"", now + 5_000)
            .is_ok());
        assert!(verifier
            .verify(
                "GET",
                "/internal/z",
                &headers(order.sign_call("GET", "/internal/z", b"", now + 32_000)),
                b"",
                now + 32_000
            )
            .is_ok());
        assert_eq!(
            verifier.seen.lock().unwrap().at.len(),
            2,
            "the first call's nonce is gone"
        );
        let old = headers(order.sign_call("POST", "/internal/x", b"", now - 31_000));
        assert_eq!(
            verifier.verify("POST", "/internal/x", &old, b"", now),
            Err(CallRefused::Stale)
        );
    }

    #[test]
    fn unknown_callers_wrong_keys_and_unsigned_calls_are_refused() {
        let now = 1_764_633_600_000;
        let verifier = verifier();
        let goods = ServiceKey::for_tests("goods");
        let signed = headers(goods.sign_call("GET", "/internal/x", b"", now));
        assert_eq!(
            verifier.verify("GET", "/internal/x", &signed, b"", now),
            Err(CallRefused::UnknownCaller("goods".into()))
        );
        let impostor = ServiceKey::new("order", "not-the-order-secret").unwrap();
        let signed = headers(impostor.sign_call("GET", "/internal/x", b"", now));
        assert_eq!(
            verifier.verify("GET", "/internal/x", &signed, b"", now),
            Err(CallRefused::BadSignature)
        );
        assert_eq!(
            verifier.verify("GET", "/internal/x", &HeaderMap::new(), b"", now),
            Err(CallRefused::Unsigned)
        );
    }

    #[test]
    fn keyrings_parse_and_never_show_secrets() {
        let keyring =
            Keyring::parse(" order:0123456789abcdef0123 , pay:fedcba9876543210fedc").unwrap();
        assert!(keyring.get("order").is_some() && keyring.get("pay").is_some());
        assert_eq!(Keyring::parse(&keyring.render()).unwrap(), keyring);
        assert!(!format!("{keyring:?}").contains("0123456789"));
        assert_eq!(Keyring::parse("").unwrap(), Keyring::default());
        for bad in ["order", "order:short", "Order!:0123456789abcdef0123"] {
            let err = Keyring::parse(bad).unwrap_err().to_string();
            assert!(err.contains("trusted_services"), "{bad}: {err}");
            assert!(!err.contains("0123456789abcdef"), "{err}");
        }
        assert!(ServiceKey::new("order", "").is_err());
        assert!(!format!("{:?}", ServiceKey::for_tests("order")).contains("test-secret"));
    }
}
