//! The gateway's OpenAPI 3 document (`GET /openapi.json`), generated from
//! its handlers' `utoipa::path` annotations. The merchant's
//! `POST /api/payments` is signed with the merchant key in the same four
//! headers as the shop's calls between services (the `service_*` schemes).

use utoipa::OpenApi;

use crate::routes;

#[derive(OpenApi)]
#[openapi(paths(
    routes::register,
    routes::api_pay,
    routes::pay_page,
    routes::pay_form,
    routes::health
))]
struct ApiDoc;

/// The document, as `/openapi.json` serves it.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = shop_common::openapi::finish(ApiDoc::openapi(), "gateway");
    doc.info.description = Some(
        "The fake payment gateway: the merchant (the shop's pay service) registers \
         payments with signed requests (the four `service_*` headers, signed with the \
         merchant key); the payer pays on /pay/{payment_id} or through /api/pay; \
         errors are {\"error\": {\"code\", \"message\"}}."
            .to_owned(),
    );
    doc
}
