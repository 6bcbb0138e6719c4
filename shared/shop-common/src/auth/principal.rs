//! The customer or operator a request acts for.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::sessions::{Authenticator, AuthenticatorError};
use crate::ApiError;

/// Who a bearer token belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Principal {
    /// A signed-up customer: acts only as user `user_id`.
    Customer { user_id: i64 },
    /// An operator (configured at start): catalogue, coupons, top-ups,
    /// reading everything.
    Operator { login: String },
}

/// The kind of a [`Principal`], for messages and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    Customer,
    Operator,
}

impl Principal {
    pub fn kind(&self) -> PrincipalKind {
        match self {
            Principal::Customer { .. } => PrincipalKind::Customer,
            Principal::Operator { .. } => PrincipalKind::Operator,
        }
    }

    /// The customer's user id; `None` for an operator.
    pub fn customer_id(&self) -> Option<i64> {
        match self {
            Principal::Customer { user_id } => Some(*user_id),
            Principal::Operator { .. } => None,
        }
    }

    pub fn is_operator(&self) -> bool {
        matches!(self, Principal::Operator { .. })
    }

    /// Refuses (403 `operator_only`) anyone but an operator.
    pub fn require_operator(&self) -> Result<&str, ApiError> {
        match self {
            Principal::Operator { login } => Ok(login),
            Principal::Customer { .. } => Err(ApiError::forbidden(
                "operator_only",
                "only an operator may do this",
            )),
        }
    }

    /// The customer's user id; refuses (403 `customer_only`) an operator,
    /// who has no balance, coupons or orders of their own.
    pub fn require_customer(&self) -> Result<i64, ApiError> {
        self.customer_id()
            .ok_or_else(|| ApiError::forbidden("customer_only", "only a customer may do this"))
    }

    /// The user a request acts for when it names `requested` (a `user_id`
    /// in its body or query): a customer acts as themself (no name, or
    /// their own) and is refused 403 `not_your_account` for anyone else;
    /// an operator acts for whoever is named, or for everyone (`None`).
    pub fn act_for(&self, requested: Option<i64>) -> Result<Option<i64>, ApiError> {
        match (self, requested) {
            (Principal::Customer { user_id }, None) => Ok(Some(*user_id)),
            (Principal::Customer { user_id }, Some(asked)) if asked == *user_id => Ok(Some(asked)),
            (Principal::Customer { .. }, Some(_)) => Err(ApiError::forbidden(
                "not_your_account",
                "a customer may act only for their own account",
            )),
            (Principal::Operator { .. }, requested) => Ok(requested),
        }
    }

    /// Whether the caller may see what belongs to user `owner`. What it may
    /// not see answers 404, as if it did not exist.
    pub fn may_see(&self, owner: i64) -> bool {
        match self {
            Principal::Customer { user_id } => *user_id == owner,
            Principal::Operator { .. } => true,
        }
    }
}

/// 401 `unauthenticated`, with the `WWW-Authenticate` challenge.
fn unauthenticated(code: &'static str, message: &str) -> Response {
    let mut response = ApiError::unauthorized(code, message).into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Principal>().cloned().ok_or_else(|| {
            unauthenticated(
                "unauthenticated",
                "log in first and send Authorization: Bearer <token>",
            )
        })
    }
}

/// The token of an `Authorization: Bearer <token>` header; `None` without
/// one, or with another scheme or an unreadable value.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
}

/// The middleware of public routes: a request with `Authorization` must
/// carry a live bearer token (else 401 `invalid_token`); its [`Principal`]
/// then rides along for the handler.
pub(super) async fn authenticate(
    State(sessions): State<Arc<dyn Authenticator>>,
    mut request: Request,
    next: Next,
) -> Response {
    if !request.headers().contains_key(header::AUTHORIZATION) {
        return next.run(request).await;
    }
    let Some(token) = bearer_token(request.headers()) else {
        return unauthenticated("invalid_token", "Authorization must be Bearer <token>");
    };
    match sessions.authenticate(token).await {
        Ok(principal) => {
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Err(AuthenticatorError::Invalid) => unauthenticated(
            "invalid_token",
            "the token is unknown, expired or revoked; log in again",
        ),
        Err(AuthenticatorError::Unavailable(reason)) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "auth_unavailable",
            "cannot check the token now; try again",
        )
        .with_detail_logged(reason)
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customers_act_only_for_themselves_and_operators_for_anyone() {
        let alice = Principal::Customer { user_id: 7 };
        let ops = Principal::Operator {
            login: "ops".into(),
        };
        assert_eq!(alice.act_for(None).unwrap(), Some(7));
        assert_eq!(alice.act_for(Some(7)).unwrap(), Some(7));
        assert_eq!(alice.act_for(Some(8)).unwrap_err().code, "not_your_account");
        assert_eq!(ops.act_for(Some(8)).unwrap(), Some(8));
        assert_eq!(ops.act_for(None).unwrap(), None);
        assert!(alice.may_see(7) && !alice.may_see(8) && ops.may_see(8));
        assert_eq!(alice.require_operator().unwrap_err().status, 403);
        assert_eq!(ops.require_customer().unwrap_err().code, "customer_only");
        assert_eq!(
            serde_json::to_value(&alice).unwrap(),
            serde_json::json!({"kind": "customer", "user_id": 7})
        );
    }
}
