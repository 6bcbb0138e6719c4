//! The service's OpenAPI 3 document (`GET /openapi.json`), generated
//! from its handlers' `utoipa::path` annotations and its types; the
//! security schemes and error schema are the shop's
//! ([`shop_common::openapi`]).

use utoipa::OpenApi;

use crate::routes;

#[derive(OpenApi)]
#[openapi(paths(
    routes::signup,
    routes::login,
    routes::logout,
    routes::me,
    routes::get_user,
    routes::top_up,
    routes::list_top_ups,
    routes::operator_ledger,
    routes::health,
    routes::verify,
    routes::internal_user,
    routes::reserve,
    routes::order_ledger
))]
struct ApiDoc;

/// The document, as `/openapi.json` serves it.
pub fn document() -> utoipa::openapi::OpenApi {
    shop_common::openapi::finish(ApiDoc::openapi(), "user")
}
