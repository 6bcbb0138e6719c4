//! A fault proxy in front of a service: GETs pass through, POSTs fail or
//! stall; the calling service's signature is forwarded.

use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

/// What a fault proxy does with reservation calls.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// Answer 500 without forwarding.
    Fail,
    /// Wait this long, then forward (a slow network or service).
    Delay(Duration),
}

/// Sits in front of a service: GETs pass through, POSTs meet `fault`.
pub struct FaultProxy {
    pub url: String,
}

#[derive(Clone)]
struct ProxyState {
    target: String,
    fault: Fault,
    http: reqwest::Client,
}

/// The headers a forwarded call keeps: its content type, the calling
/// service's signature and its trace context.
fn forwarded(mut request: reqwest::RequestBuilder, headers: &HeaderMap) -> reqwest::RequestBuilder {
    for (name, value) in headers {
        if name == "content-type"
            || name.as_str().starts_with("x-shop-")
            || name == "traceparent"
            || name == "baggage"
        {
            request = request.header(name.as_str(), value.as_bytes());
        }
    }
    request
}

async fn forward_get(
    State(s): State<ProxyState>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> impl IntoResponse {
    let request = forwarded(s.http.get(format!("{}{}", s.target, uri)), &headers);
    match request.send().await {
        Ok(r) => (
            StatusCode::from_u16(r.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY),
            r.bytes().await.unwrap_or_default(),
        )
            .into_response(),
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}

async fn faulty_post(
    State(s): State<ProxyState>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> impl IntoResponse {
    match s.fault {
        Fault::Fail => (StatusCode::INTERNAL_SERVER_ERROR, "injected failure").into_response(),
        Fault::Delay(d) => {
            tokio::time::sleep(d).await;
            let sent = forwarded(s.http.post(format!("{}{}", s.target, uri)), &headers)
                .body(body)
                .send()
                .await;
            match sent {
                Ok(r) => (
                    StatusCode::from_u16(r.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY),
                    r.bytes().await.unwrap_or_default(),
                )
                    .into_response(),
                Err(_) => StatusCode::BAD_GATEWAY.into_response(),
            }
        }
    }
}

impl FaultProxy {
    pub async fn start(target: &str, fault: Fault) -> FaultProxy {
        let state = ProxyState {
            target: target.to_owned(),
            fault,
            http: reqwest::Client::new(),
        };
        let app = Router::new()
            .route("/{*path}", get(forward_get).post(faulty_post))
            .with_state(state);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let url = format!("http://{}", listener.local_addr().expect("an address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        FaultProxy { url }
    }
}
