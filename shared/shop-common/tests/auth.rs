//! The callers' checks of a service router: bearer tokens on public routes,
//! signed calls on internal ones, signed events.

use axum::routing::{get, post};
use axum::Router;
use shop_common::auth::{Principal, ServiceCaller};
use shop_common::events::{self, Forged};
use shop_common::testing::{self, RouterClient};
use shop_common::ApiError;

async fn me(principal: Principal) -> axum::Json<Principal> {
    axum::Json(principal)
}

async fn reserve(caller: ServiceCaller) -> Result<axum::Json<String>, ApiError> {
    caller.require(&["order"])?;
    Ok(axum::Json(caller.0))
}

fn client() -> RouterClient {
    let auth = testing::auth("goods");
    let public = Router::new()
        .route("/me", get(me))
        .route("/open", get(|| async { axum::Json("open") }));
    let internal = Router::new().route("/internal/reserve", post(reserve));
    RouterClient::new(shop_common::http::service_router(
        auth.protect(public, internal),
        (),
    ))
}

#[tokio::test]
async fn public_routes_know_their_caller_and_refuse_bad_tokens() {
    let api = client();
    assert_eq!(api.get("/open").await.status, 200);
    let anonymous = api.get("/me").await;
    assert_eq!(
        (anonymous.status.as_u16(), anonymous.code()),
        (401, "unauthenticated")
    );
    let forged = api.bearer("shop_0000").get("/open").await;
    assert_eq!(
        (forged.status.as_u16(), forged.code()),
        (401, "invalid_token")
    );
    let alice = api.customer(7).get("/me").await;
    assert_eq!(
        alice.body,
        serde_json::json!({"kind": "customer", "user_id": 7})
    );
    let ops = api.operator().get("/me").await;
    assert_eq!(ops.body["kind"], "operator");
}

#[tokio::test]
async fn internal_routes_take_only_signed_calls_of_the_named_service() {
    let api = client();
    let unsigned = api.post("/internal/reserve", serde_json::json!({})).await;
    assert_eq!(
        (unsigned.status.as_u16(), unsigned.code()),
        (401, "service_unauthenticated")
    );
    // A customer's token is no service credential.
    let customer = api
        .customer(7)
        .post("/internal/reserve", serde_json::json!({}))
        .await;
    assert_eq!(customer.status, 401);
    let goods = api
        .service("goods")
        .post("/internal/reserve", serde_json::json!({}))
        .await;
    assert_eq!(
        (goods.status.as_u16(), goods.code()),
        (403, "service_forbidden")
    );
    let order = api
        .service("order")
        .post("/internal/reserve", serde_json::json!({}))
        .await;
    assert_eq!(
        (order.status.as_u16(), order.body.clone()),
        (200, serde_json::json!("order"))
    );
}

#[test]
fn events_are_applied_only_as_their_owner_signed_them() {
    let trusted = shop_common::auth::Keyring::for_tests();
    let msg = testing::message("ORDER_CANCEL", "order-1", b"{\"a\":1}".to_vec());
    assert_eq!(
        events::verify(&trusted, "order", "ORDER_CANCEL", &msg),
        Err(Forged::Unsigned)
    );
    let signed = testing::signed("order", "ORDER_CANCEL", msg.clone());
    assert_eq!(
        events::verify(&trusted, "order", "ORDER_CANCEL", &signed),
        Ok(())
    );
    // Redelivered from the retry topic it is checked against its own topic.
    let mut retried = signed.clone();
    retried.topic = "%RETRY%user-cancel".into();
    assert_eq!(
        events::verify(&trusted, "order", "ORDER_CANCEL", &retried),
        Ok(())
    );

    let mut altered = signed.clone();
    altered.body = b"{\"a\":2}".to_vec().into();
    assert_eq!(
        events::verify(&trusted, "order", "ORDER_CANCEL", &altered),
        Err(Forged::BadSignature)
    );
    let mut rekeyed = signed.clone();
    rekeyed.properties.insert("KEYS".into(), "order-2".into());
    assert_eq!(
        events::verify(&trusted, "order", "ORDER_CANCEL", &rekeyed),
        Err(Forged::BadSignature)
    );
    let by_pay = testing::signed("pay", "ORDER_CANCEL", msg.clone());
    assert!(matches!(
        events::verify(&trusted, "order", "ORDER_CANCEL", &by_pay),
        Err(Forged::NotTheOwner(..))
    ));
    assert_eq!(
        events::verify(&trusted, "order", "PAY_SUCCESS", &signed),
        Err(Forged::BadSignature)
    );
}
