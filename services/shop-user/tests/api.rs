//! The user API against a fresh database per test, on SQLite and on
//! PostgreSQL (`shop_common::db_test!`), through `Router::oneshot` and, for
//! start-up and shutdown, through the real listener on port 0. Customers
//! and the operator `ops` get their tokens by logging in, as in production:
//! the user service checks its own sessions.

use std::sync::OnceLock;
use std::time::Duration;

use axum::http::StatusCode;
use mq_client::MessageExt;
use serde_json::{json, Value};
use shop_common::auth::{Authenticator, AuthenticatorError, Principal, RemoteSessions, ServiceKey};
use shop_common::client::ServiceClient;
use shop_common::events::{OrderCancelled, ORDER_CANCEL};
use shop_common::idempotency::record_consumption;
use shop_common::testing::{self, Answer, RouterClient, Served};
use shop_user::operators::hash_password;
use shop_user::repo::{MAX_BALANCE_CENTS, MAX_RESERVATION_CENTS};
use shop_user::{
    cancel_order, cancel_order_in, router, subscriptions, AppState, CancelOutcome, Operators,
    Refund, UserConfig, MIGRATIONS, SERVICE,
};
use uuid::Uuid;

const OPS_PASSWORD: &str = "operator-password";
const PASSWORD: &str = "password-123";

/// The configuration of these tests: one operator, `ops`.
fn config() -> UserConfig {
    static HASH: OnceLock<String> = OnceLock::new();
    let hash = HASH.get_or_init(|| hash_password(OPS_PASSWORD).unwrap());
    UserConfig {
        operators: Operators::from_entries([("ops", hash.as_str())]).unwrap(),
        ..UserConfig::default()
    }
}

shop_common::test_app!(MIGRATIONS, |db, auth| {
    let state = AppState::new(db, &config());
    router(state.clone(), state.local_auth(&auth))
});

impl TestApp {
    async fn signup(&self, login: &str, name: &str) -> i64 {
        let answer = self
            .post(
                "/auth/signup",
                json!({ "login": login, "password": PASSWORD, "name": name }),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        answer.body["id"].as_i64().unwrap()
    }

    async fn login(&self, login: &str, password: &str) -> Answer {
        self.post(
            "/auth/login",
            json!({ "login": login, "password": password }),
        )
        .await
    }

    /// The client of `login`, logged in.
    async fn as_user(&self, login: &str) -> RouterClient {
        let answer = self.login(login, PASSWORD).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        self.bearer(answer.body["token"].as_str().unwrap())
    }

    /// The operator, logged in.
    async fn ops(&self) -> RouterClient {
        let answer = self.login("ops", OPS_PASSWORD).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        self.bearer(answer.body["token"].as_str().unwrap())
    }

    /// A signed-up customer whom the operator topped up to `balance`.
    async fn create_user(&self, name: &str, balance: &str) -> i64 {
        let login = format!(
            "{}-{}",
            name.to_lowercase(),
            &Uuid::new_v4().simple().to_string()[..8]
        );
        let id = self.signup(&login, name).await;
        if balance.parse::<f64>().unwrap() > 0.0 {
            self.top_up(id, balance).await;
        }
        id
    }

    /// The operator adds `amount` to `user_id`'s balance.
    async fn top_up(&self, user_id: i64, amount: &str) {
        let answer = self
            .ops()
            .await
            .post(
                &format!("/users/{user_id}/balance/top-ups"),
                json!({ "amount": amount, "reference": Uuid::new_v4().to_string() }),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    }

    /// A reservation as the order service makes it: a signed internal call.
    async fn reserve(&self, user_id: i64, order_id: Uuid, amount: Value) -> Answer {
        self.service("order")
            .post(
                &format!("/internal/users/{user_id}/balance/reservations"),
                json!({ "order_id": order_id, "amount": amount }),
            )
            .await
    }

    async fn ledger(&self, user_id: i64, order_id: Uuid) -> Answer {
        self.service("order")
            .get(&format!(
                "/internal/users/{user_id}/balance/reservations/{order_id}"
            ))
            .await
    }

    /// The balance as the order service reads it.
    async fn balance(&self, user_id: i64) -> String {
        let answer = self
            .service("order")
            .get(&format!("/internal/users/{user_id}"))
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        answer.body["balance"].as_str().unwrap().to_owned()
    }

    async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(self.db.pool())
            .await
            .unwrap()
    }

    async fn ledger_rows(&self) -> i64 {
        self.count("money_ledger").await
    }
}

shop_common::db_test!(async fn customers_sign_up_with_nothing_log_in_and_read_themselves(db) {
    let app = spawn_app(&db).await;
    let answer = app
        .post("/auth/signup", json!({ "login": "ann", "password": PASSWORD, "name": " Ann " }))
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    assert_eq!(answer.body["name"], "Ann");
    assert_eq!(answer.body["login"], "ann");
    assert_eq!(answer.body["balance"], "0.00", "sign-up starts with nothing");
    assert!(answer.body.get("points").is_none(), "points belong to the points service");
    assert!(answer.body.get("password").is_none() && !answer.body.to_string().contains("argon2"));
    let ann = answer.body["id"].as_i64().unwrap();
    let bob = app.signup("bob", "Bob").await;
    assert_ne!(ann, bob);

    let login = app.login("ann", PASSWORD).await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    let token = login.body["token"].as_str().unwrap();
    assert!(token.starts_with("shop_") && token.len() == 69, "{token}");
    assert_eq!(login.body["principal"], json!({ "kind": "customer", "user_id": ann }));
    let ttl = login.body["expires_at"].as_i64().unwrap() - shop_common::now_ms();
    assert!((8 * 3600 * 1000 - 60_000..=8 * 3600 * 1000).contains(&ttl), "{ttl}");
    let stored: String = sqlx::query_scalar("SELECT token_hash FROM sessions").fetch_one(app.db.pool()).await.unwrap();
    assert_eq!(stored, shop_common::auth::token_hash(token), "the token itself is not stored");
    let password: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE login = 'ann'").fetch_one(app.db.pool()).await.unwrap();
    assert!(password.starts_with("$argon2id$") && !password.contains(PASSWORD));

    let ann_client = app.bearer(token);
    let me = ann_client.get("/users/me").await;
    assert_eq!((me.status, me.body["id"].as_i64()), (StatusCode::OK, Some(ann)));
    assert_eq!(ann_client.get(&format!("/users/{ann}")).await.body["login"], "ann");
    // Someone else's account answers as if it did not exist.
    let other = ann_client.get(&format!("/users/{bob}")).await;
    assert_eq!((other.status, other.code()), (StatusCode::NOT_FOUND, "user_not_found"));
    let missing = ann_client.get("/users/999999").await;
    assert_eq!((missing.status, missing.code()), (StatusCode::NOT_FOUND, "user_not_found"));

    let ops = app.ops().await;
    assert_eq!(ops.get(&format!("/users/{bob}")).await.body["login"], "bob", "an operator reads everyone");
    let ops_me = ops.get("/users/me").await;
    assert_eq!((ops_me.status, ops_me.code()), (StatusCode::FORBIDDEN, "customer_only"));
    for path in ["/users/me".to_owned(), format!("/users/{ann}")] {
        let anonymous = app.get(&path).await;
        assert_eq!((anonymous.status, anonymous.code()), (StatusCode::UNAUTHORIZED, "unauthenticated"), "{path}");
    }
});

shop_common::db_test!(async fn nobody_creates_a_user_with_a_balance(db) {
    // Finding: POST /users created a user with 1,000,000,000.00.
    let app = spawn_app(&db).await;
    let rich = json!({ "name": "Rich", "balance": "1000000000.00" });
    for client in [app.anonymous(), app.ops().await] {
        let answer = client.post("/users", rich.clone()).await;
        assert_eq!((answer.status, answer.code()), (StatusCode::NOT_FOUND, "not_found"));
    }
    let answer = app
        .post("/auth/signup", json!({ "login": "rich", "password": PASSWORD, "name": "Rich", "balance": "1000000000.00" }))
        .await;
    assert_eq!((answer.status, answer.code()), (StatusCode::BAD_REQUEST, "invalid_body"));
    assert_eq!(app.count("users").await, 0);
});

shop_common::db_test!(async fn sign_up_checks_login_password_and_name(db) {
    let app = spawn_app(&db).await;
    app.signup("ann", "Ann").await;
    let long = "p".repeat(129);
    for (body, status, code) in [
        (json!({ "login": "Ann", "password": PASSWORD, "name": "Ann" }), StatusCode::BAD_REQUEST, "invalid_login"),
        (json!({ "login": "an", "password": PASSWORD, "name": "Ann" }), StatusCode::BAD_REQUEST, "invalid_login"),
        (json!({ "login": "ann smith", "password": PASSWORD, "name": "Ann" }), StatusCode::BAD_REQUEST, "invalid_login"),
        (json!({ "login": "x".repeat(33), "password": PASSWORD, "name": "Ann" }), StatusCode::BAD_REQUEST, "invalid_login"),
        (json!({ "login": "cy", "password": "short", "name": "Cy" }), StatusCode::BAD_REQUEST, "invalid_login"),
        (json!({ "login": "cyd", "password": "1234567", "name": "Cy" }), StatusCode::BAD_REQUEST, "invalid_password"),
        (json!({ "login": "cyd", "password": long, "name": "Cy" }), StatusCode::BAD_REQUEST, "invalid_password"),
        (json!({ "login": "cyd", "password": PASSWORD, "name": "  " }), StatusCode::BAD_REQUEST, "invalid_name"),
        (json!({ "login": "cyd", "password": PASSWORD }), StatusCode::BAD_REQUEST, "invalid_body"),
        (json!({ "login": "ann", "password": PASSWORD, "name": "Another Ann" }), StatusCode::CONFLICT, "login_taken"),
        (json!({ "login": "ops", "password": PASSWORD, "name": "Not the operator" }), StatusCode::CONFLICT, "login_taken"),
    ] {
        let answer = app.post("/auth/signup", body.clone()).await;
        assert_eq!((answer.status, answer.code()), (status, code), "{body}: {}", answer.body);
    }
    assert_eq!(app.count("users").await, 1);
});

shop_common::db_test!(async fn a_failed_log_in_says_nothing_about_the_login_and_repeats_are_locked_out(db) {
    let app = spawn_app(&db).await;
    app.signup("ann", "Ann").await;
    let wrong = app.login("ann", "not-the-password").await;
    let unknown = app.login("nobody", "not-the-password").await;
    let malformed = app.login("No Body", "x").await;
    for answer in [&wrong, &unknown, &malformed] {
        assert_eq!((answer.status, answer.code()), (StatusCode::UNAUTHORIZED, "invalid_credentials"));
    }
    assert_eq!(wrong.body, unknown.body, "the same answer for a wrong password and an unknown login");
    assert_eq!(app.count("sessions").await, 0);

    // Five failures in a row (one above) lock the login for a minute, even
    // for the right password; other logins are not affected.
    for _ in 0..4 {
        assert_eq!(app.login("ann", "not-the-password").await.status, StatusCode::UNAUTHORIZED);
    }
    let locked = app.login("ann", PASSWORD).await;
    assert_eq!((locked.status, locked.code()), (StatusCode::TOO_MANY_REQUESTS, "too_many_attempts"));
    let retry: u64 = locked.body["error"]["message"].as_str().unwrap().split_whitespace().find_map(|w| w.parse().ok()).unwrap();
    assert!((50..=60).contains(&retry), "{}", locked.body);
    for _ in 0..5 {
        app.login("nobody", "not-the-password").await;
    }
    assert_eq!(app.login("nobody", "x-password").await.code(), "too_many_attempts", "unknown logins lock alike");
    app.signup("bob", "Bob").await;
    assert_eq!(app.login("bob", PASSWORD).await.status, StatusCode::OK);
    assert_eq!(app.count("sessions").await, 1);
});

shop_common::db_test!(async fn the_lockout_answers_retry_after(db) {
    let test_db = shop_common::testing::migrated(&db, MIGRATIONS).await;
    let config = UserConfig { login_max_failures: 2, login_lockout: Duration::from_millis(300), ..config() };
    let state = AppState::new(test_db, &config);
    let app = RouterClient::new(router(state.clone(), state.local_auth(&testing::auth("user"))));
    let body = json!({ "login": "ops", "password": "wrong-password" });
    assert_eq!(app.post("/auth/login", body.clone()).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.post("/auth/login", body.clone()).await.status, StatusCode::UNAUTHORIZED);
    let request = axum::http::Request::post("/auth/login")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(json!({ "login": "ops", "password": OPS_PASSWORD }).to_string()))
        .unwrap();
    let response = tower::ServiceExt::oneshot(router(state.clone(), state.local_auth(&testing::auth("user"))), request).await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "1");
    tokio::time::sleep(Duration::from_millis(350)).await;
    let answer = app.post("/auth/login", json!({ "login": "ops", "password": OPS_PASSWORD })).await;
    assert_eq!(answer.status, StatusCode::OK, "the lock ends: {}", answer.body);
    assert_eq!(answer.body["principal"], json!({ "kind": "operator", "login": "ops" }));
});

shop_common::db_test!(async fn log_out_revokes_the_token_everywhere(db) {
    let app = spawn_app(&db).await;
    app.signup("ann", "Ann").await;
    let login = app.login("ann", PASSWORD).await;
    let token = login.body["token"].as_str().unwrap().to_owned();
    let ann = app.bearer(&token);
    assert_eq!(ann.get("/users/me").await.status, StatusCode::OK);
    let verify = app.service("order").post("/internal/sessions/verify", json!({ "token": token })).await;
    assert_eq!(verify.status, StatusCode::OK, "{}", verify.body);
    assert_eq!(verify.body["principal"], login.body["principal"]);
    assert_eq!(verify.body["expires_at"], login.body["expires_at"]);

    let second = app.as_user("ann").await;
    assert_eq!(ann.post("/auth/logout", json!({})).await.status, StatusCode::NO_CONTENT);
    let after = ann.get("/users/me").await;
    assert_eq!((after.status, after.code()), (StatusCode::UNAUTHORIZED, "invalid_token"));
    let verify = app.service("pay").post("/internal/sessions/verify", json!({ "token": token })).await;
    assert_eq!((verify.status, verify.code()), (StatusCode::UNAUTHORIZED, "invalid_token"));
    assert_eq!(second.get("/users/me").await.status, StatusCode::OK, "only that token is revoked");
    let anonymous = app.post("/auth/logout", json!({})).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
});

shop_common::db_test!(async fn sessions_are_verified_for_services_only_while_live(db) {
    let app = spawn_app(&db).await;
    let ann = app.signup("ann", "Ann").await;
    let token = app.login("ann", PASSWORD).await.body["token"].as_str().unwrap().to_owned();
    let body = json!({ "token": token });
    for (who, client) in [("unsigned", app.anonymous()), ("a customer", app.bearer(&token))] {
        let answer = client.post("/internal/sessions/verify", body.clone()).await;
        assert_eq!((answer.status, answer.code()), (StatusCode::UNAUTHORIZED, "service_unauthenticated"), "{who}");
    }
    // Every trusted service may ask.
    for service in ["order", "goods", "coupon", "pay", "log", "points"] {
        let answer = app.service(service).post("/internal/sessions/verify", body.clone()).await;
        assert_eq!(answer.body["principal"], json!({ "kind": "customer", "user_id": ann }), "{service}");
    }
    for bad in ["shop_0000".to_owned(), shop_common::auth::new_token(), "test-customer-1".to_owned()] {
        let answer = app.service("order").post("/internal/sessions/verify", json!({ "token": bad })).await;
        assert_eq!((answer.status, answer.code()), (StatusCode::UNAUTHORIZED, "invalid_token"), "{bad}");
        assert_eq!(app.bearer(&bad).get("/users/me").await.code(), "invalid_token");
    }
    // An expired session is not live.
    sqlx::query("UPDATE sessions SET expires_at = $1").bind(shop_common::now_ms() - 1).execute(app.db.pool()).await.unwrap();
    let answer = app.service("order").post("/internal/sessions/verify", body.clone()).await;
    assert_eq!(answer.code(), "invalid_token");
    assert_eq!(app.bearer(&token).get("/users/me").await.code(), "invalid_token");

    // An operator's session ends with the operator's account.
    let ops_token = app.login("ops", OPS_PASSWORD).await.body["token"].as_str().unwrap().to_owned();
    let state = AppState::new(app.db.clone(), &UserConfig::default());
    let without_ops = RouterClient::new(router(state.clone(), state.local_auth(&testing::auth("user"))));
    assert_eq!(app.bearer(&ops_token).get(&format!("/users/{ann}")).await.status, StatusCode::OK);
    assert_eq!(without_ops.bearer(&ops_token).get(&format!("/users/{ann}")).await.code(), "invalid_token");
});

shop_common::db_test!(async fn only_operators_top_up_once_per_reference_within_bounds(db) {
    let app = spawn_app(&db).await;
    let ann = app.signup("ann", "Ann").await;
    let ops = app.ops().await;
    let path = format!("/users/{ann}/balance/top-ups");
    let body = json!({ "amount": "80.00", "reference": "bank-2026-001" });
    let anonymous = app.post(&path, body.clone()).await;
    assert_eq!((anonymous.status, anonymous.code()), (StatusCode::UNAUTHORIZED, "unauthenticated"));
    let herself = app.as_user("ann").await.post(&path, body.clone()).await;
    assert_eq!((herself.status, herself.code()), (StatusCode::FORBIDDEN, "operator_only"));
    assert_eq!(app.balance(ann).await, "0.00");

    let first = ops.post(&path, body.clone()).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert!(!first.replayed);
    assert_eq!((first.body["amount"].as_str(), first.body["balance"].as_str()), (Some("80.00"), Some("80.00")));
    assert_eq!(first.body["operator"], "ops");
    let again = ops.post(&path, json!({ "amount": 80, "reference": "bank-2026-001" })).await;
    assert_eq!(again.status, StatusCode::OK);
    assert!(again.replayed);
    assert_eq!(again.body, first.body, "a replay answers the first top-up");
    assert_eq!(app.balance(ann).await, "80.00", "and adds nothing");
    let changed = ops.post(&path, json!({ "amount": "81.00", "reference": "bank-2026-001" })).await;
    assert_eq!((changed.status, changed.code()), (StatusCode::CONFLICT, "reference_mismatch"));
    let bob = app.signup("bob", "Bob").await;
    let elsewhere = ops.post(&format!("/users/{bob}/balance/top-ups"), body.clone()).await;
    assert_eq!((elsewhere.status, elsewhere.code()), (StatusCode::CONFLICT, "reference_mismatch"));
    assert_eq!(app.balance(bob).await, "0.00");

    for (body, status, code) in [
        (json!({ "amount": "0", "reference": "r1" }), StatusCode::BAD_REQUEST, "invalid_amount"),
        (json!({ "amount": "-5.00", "reference": "r1" }), StatusCode::BAD_REQUEST, "invalid_amount"),
        (json!({ "amount": "100000.01", "reference": "r1" }), StatusCode::BAD_REQUEST, "invalid_amount"),
        (json!({ "amount": "1.001", "reference": "r1" }), StatusCode::BAD_REQUEST, "invalid_amount"),
        (json!({ "amount": "1.00", "reference": "" }), StatusCode::BAD_REQUEST, "invalid_reference"),
        (json!({ "amount": "1.00", "reference": "with space" }), StatusCode::BAD_REQUEST, "invalid_reference"),
        (json!({ "amount": "1.00", "reference": "r".repeat(65) }), StatusCode::BAD_REQUEST, "invalid_reference"),
        (json!({ "amount": "1.00" }), StatusCode::BAD_REQUEST, "invalid_body"),
        (json!({ "amount": "1.00", "reference": "r1", "user_id": bob }), StatusCode::BAD_REQUEST, "invalid_body"),
    ] {
        let answer = ops.post(&path, body.clone()).await;
        assert_eq!((answer.status, answer.code()), (status, code), "{body}: {}", answer.body);
    }
    let missing = ops.post("/users/424242/balance/top-ups", json!({ "amount": "1.00", "reference": "r2" })).await;
    assert_eq!((missing.status, missing.code()), (StatusCode::NOT_FOUND, "user_not_found"));
    // A balance stops at its bound.
    sqlx::query("UPDATE users SET balance_cents = $1 WHERE id = $2").bind(MAX_BALANCE_CENTS - 50).bind(bob).execute(app.db.pool()).await.unwrap();
    let over = ops.post(&format!("/users/{bob}/balance/top-ups"), json!({ "amount": "0.51", "reference": "r3" })).await;
    assert_eq!((over.status, over.code()), (StatusCode::CONFLICT, "balance_limit"));
    assert_eq!(ops.post(&format!("/users/{bob}/balance/top-ups"), json!({ "amount": "0.50", "reference": "r3" })).await.status, StatusCode::CREATED);
    assert_eq!(app.balance(ann).await, "80.00");
    assert_eq!(app.count("balance_top_ups").await, 2, "the ledger holds each top-up once");

    // The ledger is read by its owner and the operator.
    let listed = app.as_user("ann").await.get(&path).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    assert_eq!(listed.body, json!([first.body]));
    assert_eq!(ops.get(&path).await.body, listed.body);
    let bobs = app.as_user("bob").await.get(&path).await;
    assert_eq!((bobs.status, bobs.code()), (StatusCode::NOT_FOUND, "user_not_found"));
    assert_eq!(app.get(&path).await.status, StatusCode::UNAUTHORIZED);
    let after = first.body["created_at"].as_i64().unwrap();
    assert_eq!(ops.get(&format!("{path}?after={after}")).await.body, json!([]));
    assert_eq!(ops.get(&format!("{path}?limit=0")).await.code(), "invalid_limit");
});

shop_common::db_test!(async fn concurrent_top_ups_with_one_reference_add_once(db) {
    let app = spawn_app(&db).await;
    let ann = app.signup("ann", "Ann").await;
    let ops = app.ops().await;
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let ops = ops.clone();
            tokio::spawn(async move {
                ops.post(&format!("/users/{ann}/balance/top-ups"), json!({ "amount": "10.00", "reference": "once" })).await
            })
        })
        .collect();
    let mut created = 0;
    for task in tasks {
        let answer = task.await.unwrap();
        match answer.status {
            StatusCode::CREATED => created += 1,
            StatusCode::OK => assert!(answer.replayed),
            other => panic!("unexpected {other}: {}", answer.body),
        }
    }
    assert_eq!(created, 1);
    assert_eq!(app.balance(ann).await, "10.00");
});

shop_common::db_test!(async fn only_the_order_service_reserves_balance_and_reads_users(db) {
    // Finding: POST /users/{id}/balance/reservations took 80.00 with an
    // invented order id.
    let app = spawn_app(&db).await;
    let ann = app.signup("ann", "Ann").await;
    app.top_up(ann, "100.00").await;
    let order = Uuid::new_v4();
    let body = json!({ "order_id": order, "amount": "80.00" });
    let path = format!("/internal/users/{ann}/balance/reservations");
    let ann_token = app.as_user("ann").await;
    for (who, client, status, code) in [
        ("unsigned", app.anonymous(), StatusCode::UNAUTHORIZED, "service_unauthenticated"),
        ("her own token", ann_token.clone(), StatusCode::UNAUTHORIZED, "service_unauthenticated"),
        ("an operator's token", app.ops().await, StatusCode::UNAUTHORIZED, "service_unauthenticated"),
        ("signed by pay", app.service("pay"), StatusCode::FORBIDDEN, "service_forbidden"),
        ("signed by goods", app.service("goods"), StatusCode::FORBIDDEN, "service_forbidden"),
    ] {
        let answer = client.post(&path, body.clone()).await;
        assert_eq!((answer.status, answer.code()), (status, code), "{who}: {}", answer.body);
        assert_eq!(client.get(&format!("{path}/{order}")).await.status, status, "{who}");
        assert_eq!(client.get(&format!("/internal/users/{ann}")).await.status, status, "{who}");
    }
    // The old public path is gone.
    let old = ann_token.post(&format!("/users/{ann}/balance/reservations"), body.clone()).await;
    assert_eq!((old.status, old.code()), (StatusCode::NOT_FOUND, "not_found"));
    assert_eq!(app.balance(ann).await, "100.00", "nothing was taken");
    assert_eq!(app.ledger_rows().await, 0);

    assert_eq!(app.reserve(ann, order, json!("80.00")).await.status, StatusCode::OK);
    assert_eq!(app.balance(ann).await, "20.00");
});

shop_common::db_test!(async fn other_services_check_tokens_with_the_running_user_service(db) {
    // How the frame's RemoteSessions in the other services asks this one.
    let mut config = SERVICE.config_for_tests(&db.url);
    config.own = self::config();
    let served = Served::start(SERVICE.start(config).await.unwrap());
    let (status, body) = served.http("POST", "/auth/signup", &json!({ "login": "ann", "password": PASSWORD, "name": "Ann" }).to_string()).await;
    assert_eq!(status, 201, "{body}");
    let ann = serde_json::from_str::<Value>(&body).unwrap()["id"].as_i64().unwrap();
    let (status, body) = served.http("POST", "/auth/login", &json!({ "login": "ann", "password": PASSWORD }).to_string()).await;
    assert_eq!(status, 200, "{body}");
    let token = serde_json::from_str::<Value>(&body).unwrap()["token"].as_str().unwrap().to_owned();

    let url = format!("http://127.0.0.1:{}", served.port);
    let client = |key: ServiceKey| ServiceClient::new("user", &url, Duration::from_secs(3)).signed_by(key);
    let order = RemoteSessions::new(client(ServiceKey::for_tests("order")), Duration::ZERO);
    assert_eq!(order.authenticate(&token).await, Ok(Principal::Customer { user_id: ann }));
    assert_eq!(order.authenticate(&shop_common::auth::new_token()).await, Err(AuthenticatorError::Invalid));
    // A service the user service does not trust learns nothing.
    let stranger = RemoteSessions::new(client(ServiceKey::new("order", "not-the-order-secret").unwrap()), Duration::ZERO);
    assert!(stranger.authenticate(&token).await.is_err());
    served.stop().await;
});

shop_common::db_test!(async fn a_reservation_takes_money_once_and_replays_the_same_answer(db) {
    let app = spawn_app(&db).await;
    let user = app.create_user("Ann", "100.00").await;
    let order = Uuid::new_v4();

    let first = app.reserve(user, order, json!("12.34")).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert!(!first.replayed);
    assert_eq!(first.body["amount"], "12.34");
    assert_eq!(first.body["order_id"], order.to_string());
    assert_eq!(app.balance(user).await, "87.66", "cents are kept exactly");

    // The same amount as a JSON number is the same reservation.
    let again = app.reserve(user, order, json!(12.34)).await;
    assert_eq!(again.status, StatusCode::OK);
    assert!(again.replayed);
    assert_eq!(again.body, first.body, "a replay answers the same success");
    assert_eq!(app.balance(user).await, "87.66", "a replay takes nothing");

    let changed = app.reserve(user, order, json!("12.35")).await;
    assert_eq!((changed.status, changed.code()), (StatusCode::CONFLICT, "reservation_mismatch"));
    let other_user = app.create_user("Bob", "50.00").await;
    let elsewhere = app.reserve(other_user, order, json!("12.34")).await;
    assert_eq!((elsewhere.status, elsewhere.code()), (StatusCode::CONFLICT, "reservation_mismatch"));
    assert_eq!(app.balance(user).await, "87.66");
    assert_eq!(app.balance(other_user).await, "50.00");

    let ledger = app.ledger(user, order).await;
    assert_eq!(ledger.status, StatusCode::OK);
    assert_eq!(ledger.body["status"], "reserved");
    assert_eq!(ledger.body["reserved_amount"], "12.34");
    assert_eq!(ledger.body["refunded_amount"], "0.00");
    let unknown = app.ledger(user, Uuid::new_v4()).await;
    assert_eq!((unknown.status, unknown.code()), (StatusCode::NOT_FOUND, "reservation_not_found"));
    assert_eq!(app.ledger_rows().await, 1);
});

shop_common::db_test!(async fn insufficient_balance_and_unknown_users_change_nothing(db) {
    let app = spawn_app(&db).await;
    let user = app.create_user("Ann", "10.00").await;
    let order = Uuid::new_v4();

    let short = app.reserve(user, order, json!("10.01")).await;
    assert_eq!((short.status, short.code()), (StatusCode::CONFLICT, "insufficient_balance"));
    assert!(short.body["error"]["message"].as_str().unwrap().contains("10.00 available"), "{}", short.body);
    assert_eq!(app.balance(user).await, "10.00");
    assert_eq!(app.ledger_rows().await, 0, "a refused reservation leaves no ledger row");

    let missing = app.reserve(424242, order, json!("1.00")).await;
    assert_eq!((missing.status, missing.code()), (StatusCode::NOT_FOUND, "user_not_found"));
    assert_eq!(app.ledger_rows().await, 0);

    // The refusal did not burn the order id: the whole balance can be reserved.
    let exact = app.reserve(user, order, json!("10")).await;
    assert_eq!(exact.status, StatusCode::OK, "{}", exact.body);
    assert_eq!(app.balance(user).await, "0.00");
});

shop_common::db_test!(async fn cancellation_refunds_exactly_once(db) {
    let app = spawn_app(&db).await;
    let user = app.create_user("Ann", "100.00").await;
    let order = Uuid::new_v4();
    assert_eq!(app.reserve(user, order, json!("40.05")).await.status, StatusCode::OK);
    assert_eq!(app.balance(user).await, "59.95");

    let first = cancel_order(&app.db, order).await.unwrap();
    assert_eq!(first, CancelOutcome::Restored(Refund { user_id: user, amount_cents: 4005 }));
    assert!(first.restored());
    assert_eq!(app.balance(user).await, "100.00");

    let second = cancel_order(&app.db, order).await.unwrap();
    assert_eq!(second, CancelOutcome::AlreadyCancelled);
    assert!(!second.restored());
    assert_eq!(app.balance(user).await, "100.00", "a second cancellation refunds nothing");

    let late = app.reserve(user, order, json!("40.05")).await;
    assert_eq!((late.status, late.code()), (StatusCode::CONFLICT, "order_cancelled"));
    assert_eq!(app.balance(user).await, "100.00");

    let ledger = app.ledger(user, order).await;
    assert_eq!(ledger.body["status"], "cancelled");
    assert_eq!(ledger.body["reserved_amount"], "40.05");
    assert_eq!(ledger.body["refunded_amount"], "40.05");
});

shop_common::db_test!(async fn a_cancellation_before_the_reservation_refuses_it(db) {
    let app = spawn_app(&db).await;
    let user = app.create_user("Ann", "100.00").await;
    let order = Uuid::new_v4();

    assert_eq!(cancel_order(&app.db, order).await.unwrap(), CancelOutcome::NothingReserved);
    let late = app.reserve(user, order, json!("1.00")).await;
    assert_eq!((late.status, late.code()), (StatusCode::CONFLICT, "order_cancelled"));
    assert_eq!(app.balance(user).await, "100.00");
    assert_eq!(app.ledger_rows().await, 1, "only the cancellation marker");
    assert_eq!(cancel_order(&app.db, order).await.unwrap(), CancelOutcome::AlreadyCancelled);

    let ledger = app.ledger(user, order).await;
    assert_eq!(ledger.body["status"], "cancelled");
    assert_eq!(ledger.body["reserved_amount"], "0.00");
});

shop_common::db_test!(async fn racing_orders_never_overspend(db) {
    let app = spawn_app(&db).await;
    let user = app.create_user("Ann", "5.00").await;
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move { app.reserve(user, Uuid::new_v4(), json!("1.00")).await })
        })
        .collect();
    let mut succeeded = 0;
    for task in tasks {
        let answer = task.await.unwrap();
        match answer.status {
            StatusCode::OK => succeeded += 1,
            StatusCode::CONFLICT => assert_eq!(answer.code(), "insufficient_balance"),
            other => panic!("unexpected {other}: {}", answer.body),
        }
    }
    assert_eq!(succeeded, 5);
    assert_eq!(app.balance(user).await, "0.00");
    assert_eq!(app.ledger_rows().await, 5);
});

shop_common::db_test!(async fn a_reservation_racing_its_cancellation_never_keeps_money(db) {
    let app = spawn_app(&db).await;
    let user = app.create_user("Ann", "1000.00").await;
    let orders: Vec<Uuid> = (0..30).map(|_| Uuid::new_v4()).collect();
    let mut tasks = Vec::new();
    for &order in &orders {
        let reserving = app.clone();
        tasks.push(tokio::spawn(async move {
            let answer = reserving.reserve(user, order, json!("2.50")).await;
            assert!(
                answer.status == StatusCode::OK || answer.code() == "order_cancelled",
                "{}: {}",
                answer.status,
                answer.body
            );
        }));
        let cancelling = app.db.clone();
        tasks.push(tokio::spawn(async move {
            cancel_order(&cancelling, order).await.unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(app.balance(user).await, "1000.00", "no cancelled order keeps money");
    for order in orders {
        let ledger = app.ledger(user, order).await;
        assert_eq!(ledger.body["status"], "cancelled");
        assert_eq!(ledger.body["reserved_amount"], ledger.body["refunded_amount"], "{}", ledger.body);
    }
});

shop_common::db_test!(async fn bad_input_is_a_clear_4xx_and_changes_nothing(db) {
    let app = spawn_app(&db).await;
    let user = app.create_user("Ann", "100.00").await;
    let path = format!("/internal/users/{user}/balance/reservations");
    let order = Uuid::new_v4().to_string();
    let too_much = format!("{}.01", MAX_RESERVATION_CENTS / 100);
    let cases: Vec<(Option<&str>, String, StatusCode, &str)> = vec![
        (Some("application/json"), "{\"order_id\": ".to_owned(), StatusCode::BAD_REQUEST, "invalid_json"),
        (Some("application/json"), "".to_owned(), StatusCode::BAD_REQUEST, "invalid_json"),
        (Some("application/json"), json!({ "amount": "1.00" }).to_string(), StatusCode::BAD_REQUEST, "invalid_body"),
        (Some("application/json"), json!({ "order_id": order }).to_string(), StatusCode::BAD_REQUEST, "invalid_body"),
        (Some("application/json"), json!({ "order_id": order, "amount": "one" }).to_string(), StatusCode::BAD_REQUEST, "invalid_body"),
        (Some("application/json"), json!({ "order_id": order, "amount": true }).to_string(), StatusCode::BAD_REQUEST, "invalid_body"),
        (Some("application/json"), json!({ "order_id": "x", "amount": "1.00" }).to_string(), StatusCode::BAD_REQUEST, "invalid_body"),
        (Some("application/json"), json!({ "order_id": order, "amount": "0.001" }).to_string(), StatusCode::BAD_REQUEST, "invalid_amount"),
        (Some("application/json"), json!({ "order_id": order, "amount": 1.005 }).to_string(), StatusCode::BAD_REQUEST, "invalid_amount"),
        (Some("application/json"), json!({ "order_id": order, "amount": 0 }).to_string(), StatusCode::BAD_REQUEST, "invalid_amount"),
        (Some("application/json"), json!({ "order_id": order, "amount": "-1.00" }).to_string(), StatusCode::BAD_REQUEST, "invalid_amount"),
        (Some("application/json"), json!({ "order_id": order, "amount": too_much }).to_string(), StatusCode::BAD_REQUEST, "invalid_amount"),
        (Some("application/json"), json!({ "order_id": order, "amount": "1e30" }).to_string(), StatusCode::BAD_REQUEST, "invalid_body"),
        (None, json!({ "order_id": order, "amount": "1.00" }).to_string(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
    ];
    for (content_type, body, status, code) in cases {
        let answer = app.service("order").send("POST", &path, content_type, body.clone()).await;
        assert_eq!((answer.status, answer.code()), (status, code), "{body}: {}", answer.body);
        assert!(!answer.body["error"]["message"].as_str().unwrap().is_empty());
    }

    for (path, code) in [("/internal/users/abc", "invalid_path"), ("/internal/users/1/balance/reservations/nope", "invalid_path")] {
        let answer = app.service("order").get(path).await;
        assert_eq!((answer.status, answer.code()), (StatusCode::BAD_REQUEST, code), "{path}");
    }
    let answer = app.ops().await.get("/users/abc").await;
    assert_eq!((answer.status, answer.code()), (StatusCode::BAD_REQUEST, "invalid_path"));
    let answer = app.send("GET", "/auth/login", None, String::new()).await;
    assert_eq!((answer.status, answer.code()), (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"));

    assert_eq!(app.balance(user).await, "100.00");
    assert_eq!(app.ledger_rows().await, 0);
    let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(app.db.pool()).await.unwrap();
    assert_eq!(users, 1, "no bad user was created");
    assert_eq!(app.count("balance_top_ups").await, 1);
});

shop_common::db_test!(async fn the_application_serves_on_a_free_port_and_stops_cleanly(db) {
    let served = Served::start(SERVICE.start(SERVICE.config_for_tests(&db.url)).await.unwrap());

    let (status, body) = served.http("POST", "/auth/signup", r#"{"login": "ann", "password": "password-123", "name": "Ann"}"#).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = served.http("GET", "/health", "").await;
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));
    let (status, body) = served.http("POST", "/auth/login", "{oops").await;
    assert_eq!(status, 400);
    assert!(body.contains("invalid_json"), "{body}");
    // The started service checks its callers.
    let (status, body) = served.http("GET", "/users/1", "").await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = served.http("POST", "/internal/users/1/balance/reservations", "{oops").await;
    assert_eq!(status, 401);
    assert!(body.contains("service_unauthenticated"), "{body}");

    served.stop().await;
});

shop_common::db_test!(async fn a_consumer_applies_the_cancellation_with_its_consumed_message(db) {
    // How the ORDER_CANCEL consumer will call it: the compensation and the
    // consumed-message row in one transaction. An attempt that fails before
    // its commit leaves nothing behind; the redelivery applies it once.
    let app = spawn_app(&db).await;
    let user = app.create_user("Ann", "100.00").await;
    let order = Uuid::new_v4();
    assert_eq!(app.reserve(user, order, json!("30.00")).await.status, StatusCode::OK);

    let mut tx = app.db.pool().begin().await.unwrap();
    assert!(record_consumption(&mut tx, "user-order-cancel", "msg-1", 1).await.unwrap());
    assert!(cancel_order_in(&mut tx, order).await.unwrap().restored());
    tx.rollback().await.unwrap();
    assert_eq!(app.balance(user).await, "70.00", "a rolled-back attempt refunds nothing");

    for delivery in 0..2 {
        let mut tx = app.db.pool().begin().await.unwrap();
        let first = record_consumption(&mut tx, "user-order-cancel", "msg-1", 2).await.unwrap();
        assert_eq!(first, delivery == 0);
        if first {
            let outcome = cancel_order_in(&mut tx, order).await.unwrap();
            assert_eq!(outcome, CancelOutcome::Restored(Refund { user_id: user, amount_cents: 3000 }));
        }
        tx.commit().await.unwrap();
    }
    assert_eq!(app.balance(user).await, "100.00");
});

/// Delivers `msg` as the service's ORDER_CANCEL consumer does: applied once
/// if its subscription's publisher signed it; `None` when it is refused.
async fn deliver(db: &shop_common::Db, msg: &MessageExt) -> Option<bool> {
    shop_common::testing::deliver(db, subscriptions(), ORDER_CANCEL, msg).await
}

fn cancel_message(order_id: Uuid, user_id: i64) -> MessageExt {
    let event = OrderCancelled {
        order_id,
        user_id,
        reason: "test".to_owned(),
    };
    testing::message(
        ORDER_CANCEL,
        &order_id.to_string(),
        serde_json::to_vec(&event).unwrap(),
    )
}

shop_common::db_test!(async fn only_an_order_cancel_the_order_service_signed_refunds(db) {
    // Finding: a plain send of ORDER_CANCEL gave back a confirmed order's balance.
    let app = spawn_app(&db).await;
    let user = app.create_user("Ann", "100.00").await;
    let order = Uuid::new_v4();
    assert_eq!(app.reserve(user, order, json!("30.00")).await.status, StatusCode::OK);

    let unsigned = cancel_message(order, user);
    let by_pay = testing::signed("pay", ORDER_CANCEL, cancel_message(order, user));
    let mut altered = testing::signed("order", ORDER_CANCEL, cancel_message(Uuid::new_v4(), user));
    altered.body = cancel_message(order, user).body;
    for (what, msg) in [("unsigned", &unsigned), ("signed by pay", &by_pay), ("altered", &altered)] {
        assert_eq!(deliver(&app.db, msg).await, None, "{what}");
    }
    assert_eq!(app.balance(user).await, "70.00", "no forged event was applied");
    assert_eq!(app.count("consumed_message").await, 0);

    let genuine = testing::signed("order", ORDER_CANCEL, cancel_message(order, user));
    assert_eq!(deliver(&app.db, &genuine).await, Some(true));
    assert_eq!(app.balance(user).await, "100.00");
});

shop_common::db_test!(async fn long_expired_sessions_are_purged_and_live_ones_kept(db) {
    let app = spawn_app(&db).await;
    app.signup("ann", "Ann").await;
    let live = app.login("ann", PASSWORD).await.body["token"].as_str().unwrap().to_owned();
    let old = app.login("ann", PASSWORD).await.body["token"].as_str().unwrap().to_owned();
    let now = shop_common::now_ms();
    sqlx::query("UPDATE sessions SET expires_at = $1 WHERE token_hash = $2")
        .bind(now - 10)
        .bind(shop_common::auth::token_hash(&old))
        .execute(app.db.pool())
        .await
        .unwrap();
    assert_eq!(app.bearer(&old).get("/users/me").await.code(), "invalid_token");
    let purge = |before| shop_user::sessions::purge_expired(&app.db, before);
    assert_eq!(purge(now - 1_000).await.unwrap(), 0, "expired, but not long enough");
    assert_eq!(purge(now).await.unwrap(), 1);
    assert_eq!(app.count("sessions").await, 1);
    assert_eq!(app.bearer(&live).get("/users/me").await.status, StatusCode::OK);
});

shop_common::db_test!(async fn operators_read_the_money_ledger_by_order_and_in_pages(db) {
    let app = spawn_app(&db).await;
    let user = app.create_user("Ann", "100.00").await;
    let mut orders: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    orders.sort();
    for order in &orders {
        assert_eq!(app.reserve(user, *order, json!("10.50")).await.status, StatusCode::OK);
    }
    cancel_order(&app.db, orders[1]).await.unwrap();
    let ops = app.ops().await;

    let one = ops.get(&format!("/operator/money-ledger?order_id={}", orders[1])).await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.body);
    let rows = one.body["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{}", one.body);
    assert_eq!((rows[0]["operation"].as_str(), rows[0]["amount"].as_str()), (Some("cancel"), Some("10.50")));
    assert_eq!((rows[1]["operation"].as_str(), rows[1]["user_id"].as_i64()), (Some("reserve"), Some(user)));
    assert!(rows[1]["created_at"].as_i64().unwrap() > 0);

    let first = ops.get("/operator/money-ledger?limit=2").await;
    assert_eq!(first.body["rows"].as_array().unwrap().len(), 3, "{}", first.body);
    assert_eq!(first.body["next"], orders[1].to_string());
    let second = ops.get(&format!("/operator/money-ledger?limit=2&after={}", orders[1])).await;
    assert_eq!(second.body["rows"].as_array().unwrap().len(), 1);
    assert!(second.body["next"].is_null());

    app.signup("cara-ledger", "Cara").await;
    let customer = app.as_user("cara-ledger").await;
    assert_eq!(customer.get("/operator/money-ledger").await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.anonymous().get("/operator/money-ledger").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(ops.get("/operator/money-ledger?limit=1001").await.status, StatusCode::BAD_REQUEST);
});
