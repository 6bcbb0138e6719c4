//! The JSON error every service answers with:
//! `{"error": {"code": "insufficient_stock", "message": "..."}}`.
//!
//! Client errors carry a machine-readable code and a clear message; server
//! errors are logged in full and answered with a generic message, so no
//! internal detail leaks.

use std::borrow::Cow;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

/// Most rows one page of a list answers.
pub const MAX_PAGE: i64 = 1_000;

/// Rows a page of a list answers when the request names no `limit`.
pub const DEFAULT_PAGE: i64 = 100;

/// A list's `limit` parameter: [`DEFAULT_PAGE`] when absent, 400
/// `invalid_limit` outside `1..=`[`MAX_PAGE`].
pub fn page_limit(limit: Option<i64>) -> Result<i64, ApiError> {
    let limit = limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_limit",
            format!("limit must be between 1 and {MAX_PAGE}"),
        ));
    }
    Ok(limit)
}

/// An HTTP error response.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// Machine-readable: a fixed string of the service, or a code passed
    /// through from a service it called.
    pub code: Cow<'static, str>,
    pub message: String,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        ApiError {
            status,
            code: code.into(),
            message: message.into(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// Logs why a request was refused (at WARN, with the code) and keeps
    /// that reason out of the answer.
    pub fn with_detail_logged(self, detail: impl std::fmt::Display) -> Self {
        tracing::warn!(code = %self.code, %detail, "request refused");
        self
    }

    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    /// A server-side failure: `detail` goes to the log, not to the client.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal server error",
        )
    }
}

/// The header that marks an idempotent request answered from its first
/// run: `idempotent-replayed: true`.
pub const REPLAYED_HEADER: axum::http::HeaderName =
    axum::http::HeaderName::from_static("idempotent-replayed");

/// `value` as JSON, with [`REPLAYED_HEADER`] when `replayed`.
pub fn json_replayed(value: impl Serialize, replayed: bool) -> Response {
    let mut response = Json(value).into_response();
    if replayed {
        response.headers_mut().insert(
            REPLAYED_HEADER,
            axum::http::HeaderValue::from_static("true"),
        );
    }
    response
}

/// A service's router: `routes` with the fallbacks every service answers
/// with ([`not_found`], [`method_not_allowed`]) over `state`.
pub fn service_router<S: Clone + Send + Sync + 'static>(
    routes: axum::Router<S>,
    state: S,
) -> axum::Router {
    routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// The fallback of every service's router: 404 `not_found`.
pub async fn not_found() -> ApiError {
    ApiError::not_found("not_found", "no such endpoint")
}

/// The method fallback of every service's router: 405 `method_not_allowed`.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this endpoint",
    )
}

/// `GET /health` of a service with a database: 200 `{"status":"ok"}` when
/// the database answers too.
pub async fn health(db: &crate::Db) -> Result<Json<serde_json::Value>, ApiError> {
    sqlx::query("SELECT 1").execute(db.pool()).await?;
    Ok(Json(serde_json::json!({ "status": "ok" })))
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::internal(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorEnvelope {
            error: ErrorBody {
                code: self.code.into_owned(),
                message: self.message,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn client_errors_carry_code_and_message_and_internal_errors_leak_nothing() {
        let response =
            ApiError::bad_request("invalid_quantity", "quantity must be > 0").into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: ErrorEnvelope = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body.error.code, "invalid_quantity");
        assert_eq!(body.error.message, "quantity must be > 0");

        let response = ApiError::internal("password=hunter2 connection refused").into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains("hunter2"));
    }
}

#[cfg(test)]
mod page_limit_tests {
    use super::*;

    #[test]
    fn limits_default_and_stay_within_a_page() {
        assert_eq!(page_limit(None).unwrap(), DEFAULT_PAGE);
        assert_eq!(page_limit(Some(1)).unwrap(), 1);
        assert_eq!(page_limit(Some(MAX_PAGE)).unwrap(), MAX_PAGE);
        for bad in [0, -1, MAX_PAGE + 1] {
            let error = page_limit(Some(bad)).unwrap_err();
            assert_eq!(error.status, StatusCode::BAD_REQUEST);
            assert_eq!(error.code, "invalid_limit");
        }
    }
}
