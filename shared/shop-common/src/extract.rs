//! Request extraction that answers bad input in the shop's error shape
//! (`{"error": {"code", "message"}}`) instead of axum's plain-text
//! rejections, and money that arrives as a JSON string or number.

use std::fmt;

use crate::ApiError;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use rust_decimal::Decimal;
use serde::de::{self, DeserializeOwned, Deserializer, Unexpected};

/// A JSON request body. Syntax errors answer 400 `invalid_json`; missing
/// fields and wrong types 400 `invalid_body`; a missing
/// `Content-Type: application/json` 415 `unsupported_media_type`.
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

fn json_rejection(rejection: &JsonRejection) -> ApiError {
    let (status, code) = match rejection {
        JsonRejection::JsonSyntaxError(_) => (StatusCode::BAD_REQUEST, "invalid_json"),
        JsonRejection::JsonDataError(_) => (StatusCode::BAD_REQUEST, "invalid_body"),
        JsonRejection::MissingJsonContentType(_) => {
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
        }
        _ if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large")
        }
        _ => (StatusCode::BAD_REQUEST, "invalid_body"),
    };
    ApiError::new(status, code, rejection.body_text())
}

/// A query string; a rejection answers 400 `invalid_query`.
pub struct Query<T>(pub T);

impl<S, T> FromRequestParts<S> for Query<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Query(value)),
            Err(rejection) => Err(query_rejection(&rejection)),
        }
    }
}

fn query_rejection(rejection: &QueryRejection) -> ApiError {
    ApiError::bad_request("invalid_query", rejection.body_text())
}

/// Path parameters (ids, order ids); a value that does not parse answers
/// 400 `invalid_path`.
pub struct Path<T>(pub T);

impl<S, T> FromRequestParts<S> for Path<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(rejection) => Err(path_rejection(&rejection)),
        }
    }
}

fn path_rejection(rejection: &PathRejection) -> ApiError {
    ApiError::bad_request("invalid_path", rejection.body_text())
}

/// Deserializes an amount given as a JSON string (`"12.34"`) or number
/// (`12.34`). Whether it has too many decimals is the handler's question, so
/// that it can answer with the field's own error code.
pub fn decimal<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
    deserializer.deserialize_any(DecimalVisitor)
}

struct DecimalVisitor;

impl de::Visitor<'_> for DecimalVisitor {
    type Value = Decimal;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an amount as a string or a number, like \"12.34\" or 12.34")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Decimal, E> {
        Ok(Decimal::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Decimal, E> {
        Ok(Decimal::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Decimal, E> {
        // serde_json parses a JSON number into the f64 nearest to it, and
        // `Display` prints the shortest text that reads back as that f64: for
        // any amount with up to 15 significant digits that is the text the
        // client sent, so 12.34 arrives as 12.34 and 0.001 stays 0.001.
        let text = v.to_string();
        Decimal::from_str_exact(&text).map_err(|_| E::invalid_value(Unexpected::Float(v), &self))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Decimal, E> {
        Decimal::from_str_exact(v.trim()).map_err(|_| E::invalid_value(Unexpected::Str(v), &self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(deserialize_with = "decimal")]
        amount: Decimal,
    }

    fn parse(json: &str) -> Result<Decimal, String> {
        serde_json::from_str::<Body>(json)
            .map(|b| b.amount)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn amounts_are_read_from_strings_and_numbers_exactly() {
        for (json, expected) in [
            (r#"{"amount": "12.34"}"#, "12.34"),
            (r#"{"amount": 12.34}"#, "12.34"),
            (r#"{"amount": 7}"#, "7"),
            (r#"{"amount": " 0.1 "}"#, "0.1"),
            (r#"{"amount": 0.001}"#, "0.001"),
            (r#"{"amount": -3.5}"#, "-3.5"),
        ] {
            assert_eq!(
                parse(json).unwrap(),
                expected.parse::<Decimal>().unwrap(),
                "{json}"
            );
        }
    }

    #[test]
    fn non_amounts_are_refused_with_a_clear_message() {
        for json in [
            r#"{"amount": "ten"}"#,
            r#"{"amount": true}"#,
            r#"{"amount": null}"#,
            r#"{"amount": 1e40}"#,
        ] {
            let err = parse(json).unwrap_err();
            assert!(
                err.contains("amount as a string or a number"),
                "{json}: {err}"
            );
        }
    }
}
