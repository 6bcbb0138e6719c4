//! The HTTP limits every service runs under, so that a slow or hostile
//! client cannot hold its connections, workers or memory: how long the
//! request headers may take, how long a whole request may take (a stalled
//! body included), how large a body may be, and how many requests may be in
//! flight. Their keys are base keys of every service (the gateway's too);
//! the frame applies them to each service's router ([`HttpLimits::apply`])
//! and server ([`super::serve`]).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tokio::sync::Semaphore;

use crate::config::{ConfigError, Settings};
use crate::ApiError;

/// The keys of the limits with their defaults.
pub const DEFAULTS: &[(&str, &str)] = &[
    // A client that has not sent its whole request head by then is cut off.
    ("http_header_read_timeout_ms", "10000"),
    // Longer than a service's calls to others take with their own timeouts,
    // so a healthy request never meets it.
    ("http_request_timeout_ms", "30000"),
    // The shop's requests are small JSON documents.
    ("http_max_body_bytes", "1048576"),
    ("http_max_in_flight", "256"),
];

/// The HTTP limits of a service (the `http_*` keys but `http_addr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// `http_header_read_timeout_ms`: a connection whose request head is not
    /// complete by then is closed.
    pub header_read_timeout: Duration,
    /// `http_request_timeout_ms`: a request not answered by then, because
    /// its body stalls or its handler hangs, is answered 408
    /// `request_timeout` and its connection closed.
    pub request_timeout: Duration,
    /// `http_max_body_bytes`: a larger body is answered 413
    /// `body_too_large`, at once from its `Content-Length`, or when a
    /// chunked body grows past it.
    pub max_body_bytes: usize,
    /// `http_max_in_flight`: a request beyond that many being answered is
    /// refused with 503 `overloaded` and `Retry-After: 1`, not queued.
    pub max_in_flight: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_body_bytes: 1 << 20,
            max_in_flight: 256,
        }
    }
}

impl HttpLimits {
    /// Reads the `http_*` limit keys.
    pub fn from_settings(settings: &Settings) -> Result<HttpLimits, ConfigError> {
        Ok(HttpLimits {
            header_read_timeout: settings.millis("http_header_read_timeout_ms")?,
            request_timeout: settings.millis("http_request_timeout_ms")?,
            max_body_bytes: at_least_one(settings, "http_max_body_bytes")?,
            max_in_flight: at_least_one(settings, "http_max_in_flight")?,
        })
    }

    /// `router` under the limits that apply per request (the header read
    /// timeout is the server's). Outermost first: the in-flight bound, so
    /// an overloaded service refuses before doing anything else, then the
    /// declared body size, then the request timeout over the handler and
    /// its reading of the body, which no extractor reads past the limit.
    pub fn apply(&self, router: Router) -> Router {
        router
            .layer(DefaultBodyLimit::max(self.max_body_bytes))
            .layer(middleware::from_fn_with_state(
                self.request_timeout,
                request_timeout,
            ))
            .layer(middleware::from_fn_with_state(
                self.max_body_bytes,
                declared_body_size,
            ))
            .layer(middleware::from_fn_with_state(
                Arc::new(Semaphore::new(self.max_in_flight)),
                in_flight,
            ))
    }
}

fn at_least_one(settings: &Settings, key: &str) -> Result<usize, ConfigError> {
    let value: usize = settings.require(key)?;
    if value == 0 {
        return Err(ConfigError::invalid(key, "0", "must be at least 1"));
    }
    Ok(value)
}

/// Refuses a request while `permits` are all taken by requests being
/// answered.
async fn in_flight(
    State(permits): State<Arc<Semaphore>>,
    request: Request,
    next: Next,
) -> Response {
    match permits.try_acquire() {
        Ok(_permit) => next.run(request).await,
        Err(_) => {
            let mut response = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "too many requests in flight, retry later",
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            response
        }
    }
}

/// Answers a body declared larger than `max` before any of it is read.
async fn declared_body_size(State(max): State<usize>, request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    match declared {
        Some(length) if length > max as u64 => closing(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the body may be at most {max} bytes"),
        )),
        _ => next.run(request).await,
    }
}

/// Answers a request not answered within `limit`.
async fn request_timeout(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => closing(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!(
                "the request was not complete within {} ms",
                limit.as_millis()
            ),
        )),
    }
}

/// `error` with `Connection: close`: the rest of its request (an unread
/// body) is not waited for.
fn closing(error: ApiError) -> Response {
    let mut response = error.into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_the_documented_ones_and_zero_is_refused() {
        let mut settings = Settings::with_defaults(DEFAULTS);
        assert_eq!(
            HttpLimits::from_settings(&settings).unwrap(),
            HttpLimits::default()
        );
        for (key, _) in DEFAULTS {
            settings.set(key, "0");
            let err = HttpLimits::from_settings(&settings).unwrap_err();
            assert!(err.to_string().contains(key), "{err}");
            settings.set(key, "7");
        }
    }
}
