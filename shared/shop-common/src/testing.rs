//! Fresh databases for tests, on SQLite and on PostgreSQL.
//!
//! PostgreSQL comes from `SHOP_TEST_POSTGRES_URL` (an admin URL such as
//! `postgres://postgres@127.0.0.1:5432/postgres`; `.ci/run` exports it). Each
//! test gets its own database, dropped when the test ends. When the variable is
//! unset, PostgreSQL tests are skipped with a message, except under CI
//! (`CI` set), where they fail: CI must run both halves.

use sqlx::{Connection, Executor, PgConnection};
use tempfile::TempDir;
use tower::ServiceExt;

use crate::db::DbKind;

/// The variable naming the PostgreSQL server tests use.
pub const POSTGRES_URL_VAR: &str = "SHOP_TEST_POSTGRES_URL";

/// A database that exists for one test.
pub struct TestDatabase {
    pub kind: DbKind,
    pub url: String,
    _dir: Option<TempDir>,
    postgres: Option<(String, String)>,
}

impl TestDatabase {
    /// A fresh, empty database, or `None` when PostgreSQL is not configured
    /// outside CI (the caller skips the test).
    pub async fn create(kind: DbKind) -> Option<TestDatabase> {
        match kind {
            DbKind::Sqlite => {
                let dir = tempfile::tempdir().expect("create a temporary directory");
                let url = format!("sqlite://{}", dir.path().join("test.db").display());
                Some(TestDatabase {
                    kind,
                    url,
                    _dir: Some(dir),
                    postgres: None,
                })
            }
            DbKind::Postgres => {
                let admin = match std::env::var(POSTGRES_URL_VAR) {
                    Ok(url) => url,
                    Err(_) if std::env::var_os("CI").is_some() => {
                        panic!("{POSTGRES_URL_VAR} is not set under CI: PostgreSQL tests must run")
                    }
                    Err(_) => {
                        eprintln!("skipping PostgreSQL half: set {POSTGRES_URL_VAR} to run it");
                        return None;
                    }
                };
                let name = format!("shoptest_{}", uuid::Uuid::new_v4().simple());
                let mut conn = PgConnection::connect(&admin).await.unwrap_or_else(|e| {
                    panic!("cannot reach PostgreSQL at {POSTGRES_URL_VAR}: {e}")
                });
                conn.execute(format!("CREATE DATABASE {name}").as_str())
                    .await
                    .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
                let _ = conn.close().await;
                let url = replace_database(&admin, &name);
                Some(TestDatabase {
                    kind,
                    url,
                    _dir: None,
                    postgres: Some((admin, name)),
                })
            }
        }
    }
}

/// `postgres://u@h:5432/postgres?x=y` with the database name replaced.
fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_end..].find('/') {
        Some(slash) => &base[..authority_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((admin, name)) = self.postgres.take() else {
            return;
        };
        // Drop runs inside the test's runtime; use a thread with its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut conn = PgConnection::connect(&admin).await.ok()?;
                conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                    .await
                    .ok()?;
                conn.close().await.ok()
            })
        })
        .join();
    }
}

/// Declares a database test twice, as `<name>::sqlite` and `<name>::postgres`,
/// each with its own fresh [`TestDatabase`] bound to the given name:
///
/// ```ignore
/// shop_common::db_test!(async fn stock_is_reserved(db) {
///     let app = spawn_app(&db.url).await;
///     // ...
/// });
/// ```
#[macro_export]
macro_rules! db_test {
    ($(#[$meta:meta])* async fn $name:ident($db:ident) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let $db = $crate::testing::TestDatabase::create($crate::db::DbKind::Sqlite)
                    .await
                    .expect("SQLite is always available");
                $body
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some($db) = $crate::testing::TestDatabase::create($crate::db::DbKind::Postgres).await else {
                    return;
                };
                $body
            }
        }
    };
}

/// A fresh database of `test_db` with `migrations` run: what a test's
/// router works on.
pub async fn migrated(test_db: &TestDatabase, migrations: crate::Migrations) -> crate::Db {
    crate::Db::connect_and_migrate(&test_db.url, 10, migrations)
        .await
        .expect("migrate the test database")
}

/// A message as a consumer receives it: `body` on `topic` with KEYS `key`
/// and a fresh unique id, for driving an event handler without a broker.
pub fn message(topic: &str, key: &str, body: Vec<u8>) -> mq_client::MessageExt {
    let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 10911));
    let mut properties = std::collections::BTreeMap::new();
    properties.insert("KEYS".to_owned(), key.to_owned());
    properties.insert(
        "UNIQ_KEY".to_owned(),
        uuid::Uuid::new_v4().simple().to_string(),
    );
    mq_client::MessageExt {
        topic: topic.to_owned(),
        queue_id: 0,
        flag: 0,
        queue_offset: 0,
        commit_log_offset: 0,
        sys_flag: 0,
        born_timestamp: crate::now_ms(),
        born_host: loopback,
        store_timestamp: crate::now_ms(),
        store_host: loopback,
        reconsume_times: 0,
        prepared_transaction_offset: 0,
        body_crc: 0,
        body: body.into(),
        properties,
        store_size: 0,
    }
}

/// Tokens for tests of one service, without a user service:
/// `test-customer-<id>` is customer `<id>`, `test-operator-<login>` an
/// operator; anything else is invalid.
pub struct TestTokens;

#[mq_client::async_trait]
impl crate::auth::Authenticator for TestTokens {
    async fn authenticate(
        &self,
        token: &str,
    ) -> Result<crate::auth::Principal, crate::auth::AuthenticatorError> {
        if let Some(id) = token.strip_prefix("test-customer-") {
            let user_id = id
                .parse()
                .map_err(|_| crate::auth::AuthenticatorError::Invalid)?;
            return Ok(crate::auth::Principal::Customer { user_id });
        }
        if let Some(login) = token.strip_prefix("test-operator-") {
            return Ok(crate::auth::Principal::Operator {
                login: login.to_owned(),
            });
        }
        Err(crate::auth::AuthenticatorError::Invalid)
    }
}

/// The [`crate::auth::Auth`] of a service under test: its test key, every
/// shop service trusted with its test key, [`TestTokens`].
pub fn auth(name: &str) -> crate::auth::Auth {
    crate::auth::Auth::new(
        crate::auth::ServiceKey::for_tests(name),
        crate::auth::Keyring::for_tests(),
        std::sync::Arc::new(TestTokens),
    )
}

/// [`crate::service::Sessions`] that accept [`TestTokens`].
pub fn test_sessions() -> crate::service::Sessions {
    crate::service::Sessions::Local(std::sync::Arc::new(TestTokens))
}

/// `msg` signed by `publisher`'s test key, as if published to `topic`.
pub fn signed(
    publisher: &str,
    topic: &str,
    mut msg: mq_client::MessageExt,
) -> mq_client::MessageExt {
    let key = crate::auth::ServiceKey::for_tests(publisher);
    let message = mq_client::Message::new(topic, msg.body.clone()).with_keys(msg.keys());
    let message = crate::events::sign(&key, message);
    let signature = message
        .properties
        .get(crate::events::SIGNATURE_PROPERTY)
        .expect("sign sets the property")
        .clone();
    msg.properties
        .insert(crate::events::SIGNATURE_PROPERTY.to_owned(), signature);
    msg
}

/// Gives `msg` to the consumer of `topic` among a service's
/// `subscriptions`, as the running service would (test keys trusted):
/// `Some(true)` applied, `Some(false)` a duplicate, `None` rejected as not
/// signed by the topic's publisher.
///
/// # Panics
/// When no subscription is for `topic`, or applying fails.
pub async fn deliver(
    db: &crate::Db,
    subscriptions: Vec<crate::service::Subscription>,
    topic: &str,
    msg: &mq_client::MessageExt,
) -> Option<bool> {
    let subscription = subscriptions
        .into_iter()
        .find(|s| s.topic == topic)
        .unwrap_or_else(|| panic!("no subscription for {topic}"));
    let keyring = crate::auth::Keyring::for_tests();
    match crate::events::deliver(db, &keyring, &subscription, msg)
        .await
        .expect("the event applies")
    {
        crate::events::Delivery::Applied => Some(true),
        crate::events::Delivery::Duplicate => Some(false),
        crate::events::Delivery::Rejected(_) => None,
    }
}

/// Declares, in a service's tests, `TestApp` (a [`RouterClient`] over the
/// service's router, and its database, reached through `Deref` and `db`)
/// and `spawn_app(&TestDatabase)`, which migrates a fresh database with
/// `$migrations` and builds the router with `$router` (a
/// `(Db, Auth) -> Router`, given [`auth`]).
/// The type is the test crate's own, so each test file adds its helpers in
/// an `impl TestApp`.
#[macro_export]
macro_rules! test_app {
    ($migrations:expr, $router:expr) => {
        #[derive(Clone)]
        struct TestApp {
            api: $crate::testing::RouterClient,
            db: $crate::Db,
        }

        async fn spawn_app(test_db: &$crate::testing::TestDatabase) -> TestApp {
            let db = $crate::testing::migrated(test_db, $migrations).await;
            TestApp {
                api: $crate::testing::RouterClient::new(($router)(
                    db.clone(),
                    $crate::testing::auth("test"),
                )),
                db,
            }
        }

        impl ::std::ops::Deref for TestApp {
            type Target = $crate::testing::RouterClient;

            fn deref(&self) -> &$crate::testing::RouterClient {
                &self.api
            }
        }
    };
}

/// What a service answered to a [`RouterClient`] request.
#[derive(Debug)]
pub struct Answer {
    pub status: axum::http::StatusCode,
    /// The `idempotent-replayed: true` header was present.
    pub replayed: bool,
    /// The JSON body (`Null` when empty).
    pub body: serde_json::Value,
}

impl Answer {
    /// The machine-readable error code of an error answer.
    pub fn code(&self) -> &str {
        self.body["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no error code in {}", self.body))
    }
}

/// Calls a service's router in-process (`Router::oneshot`), no socket:
/// anonymously, or as a [`TestTokens`] customer or operator, or as a
/// service signing with its test key.
#[derive(Clone)]
pub struct RouterClient {
    router: axum::Router,
    bearer: Option<String>,
    service: Option<crate::auth::ServiceKey>,
}

impl RouterClient {
    pub fn new(router: axum::Router) -> Self {
        RouterClient {
            router,
            bearer: None,
            service: None,
        }
    }

    /// The same router, called with no credentials.
    pub fn anonymous(&self) -> RouterClient {
        RouterClient::new(self.router.clone())
    }

    /// The same router, called with `Authorization: Bearer <token>`.
    pub fn bearer(&self, token: &str) -> RouterClient {
        RouterClient {
            bearer: Some(token.to_owned()),
            ..self.anonymous()
        }
    }

    /// Called as customer `user_id` (a [`TestTokens`] token).
    pub fn customer(&self, user_id: i64) -> RouterClient {
        self.bearer(&format!("test-customer-{user_id}"))
    }

    /// Called as operator `ops` (a [`TestTokens`] token).
    pub fn operator(&self) -> RouterClient {
        self.bearer("test-operator-ops")
    }

    /// Called as service `name`, each request signed with its test key.
    pub fn service(&self, name: &str) -> RouterClient {
        RouterClient {
            service: Some(crate::auth::ServiceKey::for_tests(name)),
            ..self.anonymous()
        }
    }

    /// Sends a request with `body` and reads the JSON answer.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: String,
    ) -> Answer {
        let mut request = axum::http::Request::builder().method(method).uri(path);
        if let Some(token) = &self.bearer {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        if let Some(key) = &self.service {
            for (name, value) in key.sign_call(method, path, body.as_bytes(), crate::now_ms()) {
                request = request.header(name, value);
            }
        }
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let response = self
            .router
            .clone()
            .oneshot(request.body(axum::body::Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let replayed = response
            .headers()
            .get("idempotent-replayed")
            .is_some_and(|v| v == "true");
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let body = if bytes.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!(
                    "{method} {path}: answer is not JSON ({e}): {}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        };
        Answer {
            status,
            replayed,
            body,
        }
    }

    /// `POST` a JSON body.
    pub async fn post(&self, path: &str, body: serde_json::Value) -> Answer {
        self.send("POST", path, Some("application/json"), body.to_string())
            .await
    }

    /// `GET` a path.
    pub async fn get(&self, path: &str) -> Answer {
        self.send("GET", path, None, String::new()).await
    }
}

/// A service [`Application`](crate::service::Application) serving on its
/// port in a task until [`Served::stop`]: for tests that go through a real
/// socket.
pub struct Served {
    pub port: u16,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Served {
    pub fn start<S: Send + 'static>(app: crate::service::Application<S>) -> Served {
        let port = app.port();
        assert_ne!(port, 0, "the application is bound");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until_stopped(async {
            let _ = stopped.await;
        }));
        Served { port, stop, task }
    }

    /// One HTTP/1.1 exchange over a fresh connection: (status, body).
    pub async fn http(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .unwrap();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        let status = answer
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = answer
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }

    /// Stops the application, waits for it and checks its listener is
    /// closed.
    pub async fn stop(self) {
        let port = self.port;
        self.stop.send(()).unwrap();
        self.task.await.unwrap().unwrap();
        assert!(
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_err(),
            "the listener is closed"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_name_is_replaced() {
        assert_eq!(
            replace_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            replace_database("postgres://u:p@h/db?sslmode=disable", "t2"),
            "postgres://u:p@h/t2?sslmode=disable"
        );
        assert_eq!(
            replace_database("postgres://h:5432", "t3"),
            "postgres://h:5432/t3"
        );
    }
}
