//! The merchant's server-to-server requests, signed with its key as the
//! shop's services sign their calls (`shop_common::auth::service`:
//! HMAC-SHA256 over method, path, body hash, time and a nonce, a short
//! replay window), the merchant id as the caller.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use shop_common::auth::service::{verified, Unverified, Verifier};
use shop_common::auth::Keyring;
use shop_common::ApiError;

use crate::config::Config;

/// The checker of the merchant's signatures.
pub fn verifier(config: &Config) -> Arc<Verifier> {
    let mut keyring = Keyring::default();
    keyring.insert(config.merchant.clone());
    Arc::new(Verifier::new(Arc::new(keyring)))
}

/// The middleware of the merchant's routes: 401 `merchant_unauthenticated`
/// for a request the merchant did not sign.
pub async fn merchant_only(
    State(verifier): State<Arc<Verifier>>,
    request: Request,
    next: Next,
) -> Response {
    match verified(&verifier, request).await {
        Ok((_, request)) => next.run(request).await,
        Err(Unverified::TooLarge) => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "merchant requests are limited to 64 KiB",
        )
        .into_response(),
        Err(Unverified::Refused(why)) => ApiError::unauthorized(
            "merchant_unauthenticated",
            "a request signed with the merchant's key is required",
        )
        .with_detail_logged(why)
        .into_response(),
    }
}
