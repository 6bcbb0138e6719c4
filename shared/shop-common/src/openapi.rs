//! The OpenAPI 3 document every service serves at `GET /openapi.json`,
//! generated with `utoipa` from its handlers' annotations and its types.
//!
//! Security schemes, as the routes need them (DESIGN §6):
//! - `bearer`: a customer's or an operator's token (`Authorization:
//!   Bearer <token>`), for the public routes that need a caller;
//! - `service_call`: the four headers of a signed call between services
//!   (`x-shop-caller`, `x-shop-timestamp`, `x-shop-nonce`,
//!   `x-shop-signature`), for the routes under `/internal/`. A
//!   requirement names all four ([`INTERNAL`]).
//!
//! Every error answer is an [`ErrorEnvelope`](crate::http::ErrorEnvelope).

use std::collections::BTreeMap;

use axum::routing::get;
use axum::Router;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi;
use utoipa::openapi::{Ref, RefOr};

/// The scheme name of customers' and operators' tokens.
pub const BEARER: &str = "bearer";
/// The scheme names of a signed service call's headers.
pub const INTERNAL: [(&str, &str); 4] = [
    ("service_caller", crate::auth::service::CALLER_HEADER),
    ("service_timestamp", "x-shop-timestamp"),
    ("service_nonce", "x-shop-nonce"),
    ("service_signature", "x-shop-signature"),
];

/// `doc` with the shop's security schemes and error schema added, titled
/// after the service.
pub fn finish(mut doc: OpenApi, service: &str) -> OpenApi {
    doc.info.title = format!("shop-{service}");
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc.info.description = Some(format!(
        "The shop's {service} service. Customers' and operators' routes take a bearer \
         token (scheme `bearer`); routes under /internal/ take a signed call of a \
         trusted service (the four `service_*` headers); errors are \
         {{\"error\": {{\"code\", \"message\"}}}}."
    ));
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "A customer's or an operator's token from POST /auth/login",
                ))
                .build(),
        ),
    );
    for (name, header) in INTERNAL {
        components.add_security_scheme(
            name,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                header,
                "A header of a call signed by a trusted service (HMAC-SHA256)",
            ))),
        );
    }
    use utoipa::{PartialSchema, ToSchema};
    let mut schemas = Vec::new();
    crate::http::ErrorEnvelope::schemas(&mut schemas);
    components
        .schemas
        .insert("ErrorEnvelope".into(), crate::http::ErrorEnvelope::schema());
    for (name, schema) in schemas {
        components.schemas.insert(name, schema);
    }
    doc
}

/// The error answers of a route that calls other services: 4XX (refused,
/// `error.code` says why) and 503 (overloaded, or a service it needs is
/// unavailable), each an [`ErrorEnvelope`](crate::http::ErrorEnvelope).
/// In a handler's `responses(...)` after its success answers.
pub struct Refusals;

impl utoipa::IntoResponses for Refusals {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        error_answers("Overloaded, or a service it needs is unavailable")
    }
}

/// [`Refusals`] of a route that needs no other service: its 503 only
/// means overloaded.
pub struct LocalRefusals;

impl utoipa::IntoResponses for LocalRefusals {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        error_answers("Overloaded")
    }
}

fn error_answers(unavailable: &str) -> BTreeMap<String, RefOr<Response>> {
    let envelope = |description: &str| {
        let content = ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("ErrorEnvelope")))
            .build();
        RefOr::T(
            ResponseBuilder::new()
                .description(description)
                .content("application/json", content)
                .build(),
        )
    };
    BTreeMap::from([
        ("4XX".to_owned(), envelope("Refused; `error.code` says why")),
        ("503".to_owned(), envelope(unavailable)),
    ])
}

/// `GET /openapi.json`: `doc` as JSON, built once.
pub fn route<S: Clone + Send + Sync + 'static>(doc: OpenApi) -> Router<S> {
    let json = doc.to_json().expect("an OpenAPI document serializes");
    Router::new().route(
        "/openapi.json",
        get(move || {
            let json = json.clone();
            async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    json,
                )
            }
        }),
    )
}
