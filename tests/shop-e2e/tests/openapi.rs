//! Every shop service serves its OpenAPI 3 document at `/openapi.json`
//! (issue 18 part 5): each route of its router is there, customer and
//! operator routes under the `bearer` scheme, internal ones (and the
//! gateway's merchant route) under the four signed-call headers. schemathesis runs against these documents in
//! `.ci/schemathesis.sh`.

use serde_json::Value;
use shop_e2e::*;

const INTERNAL: [&str; 4] = [
    "service_caller",
    "service_timestamp",
    "service_nonce",
    "service_signature",
];

shop_common::db_test!(async fn every_service_documents_its_routes_and_their_security(db) {
    let Some(shop) = Shop::start(db.kind, Options::default()).await else { return };
    for (name, url, expected) in [
        ("order", &shop.order.url, 8),
        ("goods", &shop.goods.url, 8),
        ("coupon", &shop.coupon.url, 7),
        ("user", &shop.user.url, 13),
        ("pay", &shop.pay.url, 5),
        ("log", &shop.log.url, 3),
        ("points", &shop.points.url, 4),
        ("gateway", &shop.gateway_url, 5),
    ] {
        let doc: Value = shop.http.get(format!("{url}/openapi.json")).send().await.unwrap().json().await.unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{name}: {doc}");
        assert_eq!(doc["info"]["title"], format!("shop-{name}"));
        let schemes = &doc["components"]["securitySchemes"];
        assert_eq!(schemes["bearer"]["scheme"], "bearer", "{name}");
        assert_eq!(schemes["service_signature"]["name"], "x-shop-signature", "{name}");
        let mut operations = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                operations += 1;
                let security: Vec<Vec<String>> = op["security"]
                    .as_array()
                    .map(|all| all.iter().map(|r| r.as_object().unwrap().keys().cloned().collect()).collect())
                    .unwrap_or_default();
                if path.starts_with("/internal/") || (name == "gateway" && path == "/api/payments") {
                    let mut want: Vec<String> = INTERNAL.iter().map(|s| s.to_string()).collect();
                    want.sort();
                    assert_eq!(security, vec![want], "{name} {method} {path}");
                } else if path.starts_with("/operator/") {
                    assert_eq!(security, vec![vec!["bearer".to_owned()]], "{name} {method} {path}");
                }
                assert!(op["responses"]["4XX"].is_object(), "{name} {method} {path}");
                // Each documented route is served: no 404 `not_found` or 405.
                let concrete = path.replace("{id}", "1").replace("{user_id}", "1").replace("{order_id}", "00000000-0000-0000-0000-000000000001");
                let concrete = if path.starts_with("/orders/") || path.starts_with("/operator/orders/") || path.starts_with("/internal/orders/") || path.starts_with("/payments/{") {
                    concrete.replace("/1", "/00000000-0000-0000-0000-000000000001")
                } else {
                    concrete
                };
                let response = shop.http.request(method.to_uppercase().parse().unwrap(), format!("{url}{concrete}")).send().await.unwrap();
                let status = response.status().as_u16();
                let body: Value = response.json().await.unwrap_or(Value::Null);
                assert!(status != 405 && body["error"]["code"] != "not_found", "{name} {method} {concrete}: {status} {body}");
            }
        }
        assert_eq!(operations, expected, "{name}: {doc}");
    }
    shop.stop().await;
});
