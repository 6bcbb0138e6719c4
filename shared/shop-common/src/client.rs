//! Calls between the shop's services over HTTP: one client, one error.
//!
//! Each call has a timeout; an answer is either a success, a refusal with
//! the called service's error code (4xx: the caller cannot go on as
//! asked), or unavailability (timeout, connection error, 5xx, an unreadable
//! body: the service could not be asked).

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::auth::ServiceKey;
use crate::http::ErrorEnvelope;

/// Why a call did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The service answered with a 4xx: `code` is its machine-readable reason.
    #[error("{service} refused: {message} ({code})")]
    Refused {
        service: &'static str,
        status: u16,
        code: String,
        message: String,
    },
    /// No usable answer (timeout, connection refused, 5xx, garbage).
    #[error("{service} unavailable: {reason}")]
    Unavailable {
        service: &'static str,
        reason: String,
    },
}

impl CallError {
    /// The refusal's code, or `service_unavailable`.
    pub fn code(&self) -> &str {
        match self {
            CallError::Refused { code, .. } => code,
            CallError::Unavailable { .. } => "service_unavailable",
        }
    }
}

/// Whatever a service answered: its status and, when it was JSON, its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: reqwest::StatusCode,
    pub json: Option<serde_json::Value>,
}

/// A client of one service at `base_url`.
#[derive(Debug, Clone)]
pub struct ServiceClient {
    service: &'static str,
    http: reqwest::Client,
    base_url: String,
    /// Signs every call as this service (internal endpoints need it).
    key: Option<ServiceKey>,
}

impl ServiceClient {
    /// Calls to `service` (its name in errors) at `base_url`, each given at
    /// most `timeout` to connect and as long again to answer.
    pub fn new(service: &'static str, base_url: &str, timeout: Duration) -> ServiceClient {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .expect("an HTTP client without TLS builds");
        ServiceClient {
            service,
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            key: None,
        }
    }

    /// The same client, signing every call with `key` ([`crate::auth::service`]).
    pub fn signed_by(mut self, key: ServiceKey) -> ServiceClient {
        self.key = Some(key);
        self
    }

    /// `GET {base_url}{path}`, the answer read as `T`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, CallError> {
        let sent = self.send(reqwest::Method::GET, path, None).await;
        self.answer(sent).await
    }

    /// `POST {base_url}{path}` with `body` as JSON, the answer read as `T`.
    pub async fn post<T: DeserializeOwned, B: Serialize>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, CallError> {
        let body = serde_json::to_vec(body).map_err(|e| self.unavailable(e.to_string()))?;
        let sent = self.send(reqwest::Method::POST, path, Some(body)).await;
        self.answer(sent).await
    }

    /// Sends `method` on `{base_url}{path}`, signed when the client has a
    /// key (over the path the server sees, the base URL's own path included).
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        json: Option<Vec<u8>>,
    ) -> Result<reqwest::Response, reqwest::Error> {
        let url = format!("{}{path}", self.base_url);
        let mut request = self.http.request(method.clone(), &url);
        for (name, value) in crate::trace::outgoing_headers() {
            request = request.header(name, value);
        }
        if let Some(key) = &self.key {
            let target = reqwest::Url::parse(&url).map_or_else(
                |_| path.to_owned(),
                |u| match u.query() {
                    Some(q) => format!("{}?{q}", u.path()),
                    None => u.path().to_owned(),
                },
            );
            let body = json.as_deref().unwrap_or_default();
            for (name, value) in key.sign_call(method.as_str(), &target, body, crate::now_ms()) {
                request = request.header(name, value);
            }
        }
        if let Some(json) = json {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(json);
        }
        request.send().await
    }

    /// `POST url` with `body` as JSON, whatever the status: only no answer
    /// at all is an error ([`CallError::Unavailable`]).
    pub async fn post_for_answer<B: Serialize>(
        &self,
        url: reqwest::Url,
        body: &B,
    ) -> Result<Answer, CallError> {
        let response = self
            .http
            .post(url)
            .json(body)
            .send()
            .await
            .map_err(|e| self.unavailable(e.to_string()))?;
        Ok(Answer {
            status: response.status(),
            json: response.json().await.ok(),
        })
    }

    fn unavailable(&self, reason: String) -> CallError {
        CallError::Unavailable {
            service: self.service,
            reason,
        }
    }

    async fn answer<T: DeserializeOwned>(
        &self,
        sent: Result<reqwest::Response, reqwest::Error>,
    ) -> Result<T, CallError> {
        let response = sent.map_err(|e| self.unavailable(e.to_string()))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.unavailable(e.to_string()))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes)
                .map_err(|e| self.unavailable(format!("unreadable answer: {e}")));
        }
        if status.is_client_error() {
            let (code, message) = match serde_json::from_slice::<ErrorEnvelope>(&bytes) {
                Ok(envelope) => (envelope.error.code, envelope.error.message),
                Err(_) => (
                    "refused".to_owned(),
                    String::from_utf8_lossy(&bytes).into_owned(),
                ),
            };
            return Err(CallError::Refused {
                service: self.service,
                status: status.as_u16(),
                code,
                message,
            });
        }
        Err(self.unavailable(format!("answered {status}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use axum::routing::{get, post};

    /// A service that answers each path with a fixed status and body.
    async fn serve() -> String {
        let app = axum::Router::new()
            .route(
                "/ok",
                get(|| async { axum::Json(serde_json::json!({ "n": 1 })) }),
            )
            .route(
                "/refused",
                post(|| async { crate::ApiError::conflict("sold_out", "no more") }),
            )
            .route(
                "/plain-refusal",
                get(|| async { (StatusCode::NOT_FOUND, "gone") }),
            )
            .route("/broken", get(|| async { StatusCode::BAD_GATEWAY }))
            .route("/garbage", get(|| async { "not json" }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    #[tokio::test]
    async fn answers_are_a_success_a_refusal_or_unavailability() {
        let client = ServiceClient::new(
            "stub",
            &format!("{}/", serve().await),
            Duration::from_secs(3),
        );
        let ok: serde_json::Value = client.get("/ok").await.unwrap();
        assert_eq!(ok["n"], 1);

        let refused = client
            .post::<serde_json::Value, _>("/refused", &serde_json::json!({}))
            .await
            .unwrap_err();
        assert_eq!(
            refused,
            CallError::Refused {
                service: "stub",
                status: 409,
                code: "sold_out".into(),
                message: "no more".into(),
            }
        );
        assert_eq!(refused.code(), "sold_out");
        let plain = client
            .get::<serde_json::Value>("/plain-refusal")
            .await
            .unwrap_err();
        assert!(
            matches!(&plain, CallError::Refused { status: 404, code, message, .. } if code == "refused" && message == "gone"),
            "{plain:?}"
        );

        for path in ["/broken", "/garbage"] {
            let error = client.get::<serde_json::Value>(path).await.unwrap_err();
            assert!(
                matches!(
                    error,
                    CallError::Unavailable {
                        service: "stub",
                        ..
                    }
                ),
                "{path}: {error:?}"
            );
            assert_eq!(error.code(), "service_unavailable");
        }
        let nobody = ServiceClient::new("nobody", "http://127.0.0.1:1", Duration::from_secs(1));
        assert!(matches!(
            nobody.get::<serde_json::Value>("/x").await,
            Err(CallError::Unavailable {
                service: "nobody",
                ..
            })
        ));
    }
}
