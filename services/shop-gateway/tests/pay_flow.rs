//! The payment path end to end, in one process, on SQLite and on
//! PostgreSQL: a name server and a broker (port 0, temporary store), the
//! pay service with its transactional producer, the log and points
//! services with their PAY_SUCCESS consumers, this gateway, and a stub of
//! the order service. A payment made through the gateway, then notified
//! again (the gateway's second click and a hand-replayed callback), must
//! put exactly one PAY_SUCCESS on the topic and reach the log and the
//! points exactly once.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Router;
use mq_broker::{BrokerConfig, BrokerHandle};
use mq_client::{AdminClient, ClientConfig, TopicSpec};
use mq_namesrv::NamesrvConfig;
use mq_store::MessageStoreConfig;
use serde_json::{json, Value};
use shop_common::events::{ORDER_CANCEL, PAY_SUCCESS};
use shop_common::service::{Application, ServiceConfig};
use shop_common::testing::TestDatabase;
use shop_common::Db;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use uuid::Uuid;

const LIMIT: Duration = Duration::from_secs(30);

/// A name server and one broker, stopped on drop (the broker by `stop`).
struct Cluster {
    namesrv: String,
    broker_addr: String,
    broker: Option<BrokerHandle>,
    stop_namesrv: Option<oneshot::Sender<()>>,
    _dirs: (TempDir, TempDir),
}

impl Cluster {
    async fn start() -> Cluster {
        let ns_dir = tempfile::tempdir().unwrap();
        let config = NamesrvConfig {
            kv_config_path: ns_dir.path().join("kvConfig.json"),
            ..NamesrvConfig::default()
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let namesrv = listener.local_addr().unwrap().to_string();
        let (stop_namesrv, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = mq_namesrv::run(listener, config, async move {
                let _ = stopped.await;
            })
            .await;
        });

        let store_dir = tempfile::tempdir().unwrap();
        let broker = BrokerConfig {
            broker_name: "broker-pay".to_owned(),
            namesrv_addr: namesrv.clone(),
            listen_port: 0,
            bind_address: "127.0.0.1".into(),
            broker_ip1: "127.0.0.1".into(),
            transaction_time_out: 300,
            transaction_check_interval: 200,
            ..BrokerConfig::default()
        };
        let mut store = MessageStoreConfig::with_root(store_dir.path());
        store.maped_file_size_commit_log = 8 * 1024 * 1024;
        store.maped_file_size_consume_queue = 20 * 1000;
        store.max_hash_slot_num = 1000;
        store.max_index_num = 4000;
        let handle = BrokerHandle::start(broker, store)
            .await
            .expect("broker starts");
        Cluster {
            namesrv,
            broker_addr: handle.addr().to_string(),
            broker: Some(handle),
            stop_namesrv: Some(stop_namesrv),
            _dirs: (ns_dir, store_dir),
        }
    }

    async fn stop(&mut self) {
        if let Some(broker) = self.broker.take() {
            broker.shutdown().await;
        }
        if let Some(stop) = self.stop_namesrv.take() {
            let _ = stop.send(());
        }
    }
}

/// Client settings for tests: loopback, short intervals.
fn client(mut config: ClientConfig) -> ClientConfig {
    config.client_ip = "127.0.0.1".into();
    config.poll_name_server_interval = Duration::from_millis(300);
    config.heartbeat_broker_interval = Duration::from_secs(1);
    config.persist_consumer_offset_interval = Duration::from_millis(200);
    config
}

async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + LIMIT;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {LIMIT:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn free_addr() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

async fn order_stub(orders: HashMap<Uuid, Value>) -> String {
    let orders = Arc::new(orders);
    let app = Router::new().route(
        "/orders/{id}",
        axum::routing::get(move |axum::extract::Path(id): axum::extract::Path<Uuid>| {
            let orders = orders.clone();
            async move {
                match orders.get(&id) {
                    Some(order) => axum::Json(order.clone()).into_response(),
                    None => StatusCode::NOT_FOUND.into_response(),
                }
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

async fn count(db: &Db, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(db.pool()).await.unwrap()
}

/// An admin client, once the shop's topics exist (before anyone
/// subscribes or sends). Clients of one instance name share one instance
/// (and its name servers), and the SQLite and PostgreSQL halves run side by
/// side: the name is unique.
async fn admin_with_topics(cluster: &Cluster) -> AdminClient {
    let admin = AdminClient::start(client(
        ClientConfig::new(cluster.namesrv.clone())
            .with_instance_name(format!("pay-flow-admin-{}", Uuid::new_v4().simple())),
    ))
    .await
    .unwrap();
    for topic in [PAY_SUCCESS, ORDER_CANCEL] {
        admin
            .create_topic(
                &cluster.broker_addr,
                &TopicSpec::new(topic).with_queues(4, 4),
            )
            .await
            .unwrap();
        wait_until("the topic's route", || async {
            admin.topic_route(topic).await.is_ok()
        })
        .await;
    }
    admin
}

/// Messages stored on PAY_SUCCESS (committed ones only: half messages live
/// in the broker's own topic until they are committed).
async fn pay_success_count(admin: &AdminClient) -> i64 {
    let mut stored = 0;
    for mq in admin.topic_queues(PAY_SUCCESS).await.unwrap() {
        stored += admin.max_offset(&mq).await.unwrap();
    }
    stored
}

/// The log service with its consumers owning their queues.
async fn start_log(cluster: &Cluster, url: &str) -> Application {
    let mut config = ServiceConfig::for_tests(url);
    config.namesrv_addr = cluster.namesrv.clone();
    let log = shop_log::SERVICE.start_with(config, client).await.unwrap();
    for consumer in log.consumers() {
        wait_until("queues assigned to the log's consumers", || async {
            !consumer.assigned_queues().is_empty()
        })
        .await;
    }
    log
}

shop_common::db_test!(async fn a_payment_reaches_the_log_and_the_points_exactly_once(db) {
    let log_db = TestDatabase::create(db.kind).await.unwrap();
    let points_db = TestDatabase::create(db.kind).await.unwrap();
    let mut cluster = Cluster::start().await;

    let admin = admin_with_topics(&cluster).await;

    // The consumers, ready when they own PAY_SUCCESS's queues.
    let log = start_log(&cluster, &log_db.url).await;
    let mut points_config = ServiceConfig::for_tests(&points_db.url);
    points_config.namesrv_addr = cluster.namesrv.clone();
    let points = shop_points::SERVICE.start_with(points_config, client).await.unwrap();
    for consumers in [log.consumers(), points.consumers()] {
        for consumer in consumers {
            wait_until("queues assigned to the consumers", || async {
                consumer.assigned_queues().iter().any(|q| q.topic == PAY_SUCCESS || q.topic == ORDER_CANCEL)
            })
            .await;
        }
    }
    let log_db_handle = log.db().clone();
    let points_db_handle = points.db().clone();
    let (stop_log, log_stopped) = oneshot::channel::<()>();
    let (stop_points, points_stopped) = oneshot::channel::<()>();
    let log_task = tokio::spawn(log.run_until_stopped(async move {
        let _ = log_stopped.await;
    }));
    let points_task = tokio::spawn(points.run_until_stopped(async move {
        let _ = points_stopped.await;
    }));

    // The order service, the gateway and the pay service.
    let order_id = Uuid::new_v4();
    let order_url = order_stub(HashMap::from([(
        order_id,
        json!({ "id": order_id, "user_id": 11, "status": "CONFIRMED", "amount_to_pay": "42.99" }),
    )]))
    .await;
    let gateway_app = shop_gateway::SERVICE
        .start(shop_gateway::config_for_tests())
        .await
        .unwrap();
    let gateway = format!("http://127.0.0.1:{}", gateway_app.port());
    tokio::spawn(gateway_app.run_until_stopped(std::future::pending()));
    let pay_addr = free_addr();
    let mut pay_config = ServiceConfig::for_tests_with(&db.url, shop_pay::Config::for_tests(&order_url));
    pay_config.http_addr = pay_addr;
    pay_config.own.public_url = format!("http://{pay_addr}");
    pay_config.own.gateway_url = gateway.clone();
    pay_config.namesrv_addr = cluster.namesrv.clone();
    let pay_app = shop_pay::SERVICE.start_with(pay_config, client).await.unwrap();
    let pay_db = pay_app.state().db.clone();
    let (stop_pay, pay_stopped) = oneshot::channel::<()>();
    let pay_task = tokio::spawn(pay_app.run_until_stopped(async move {
        let _ = pay_stopped.await;
    }));
    let pay = format!("http://{pay_addr}");

    let http = reqwest::Client::new();
    let payment: Value = http
        .post(format!("{pay}/payments"))
        .json(&json!({ "order_id": order_id }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let payment_id: Uuid = payment["payment_id"].as_str().unwrap().parse().unwrap();
    let pay_request = json!({
        "payment_id": payment_id, "order_id": order_id, "amount": payment["amount"],
        "notify_url": format!("{pay}/payments/callback"),
    });

    // Pay, then pay again: the second notification is a replay.
    let mut trade_nos = Vec::new();
    for _ in 0..2 {
        let outcome: Value = http
            .post(format!("{gateway}/api/pay"))
            .json(&pay_request)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(outcome["accepted"], true, "{outcome}");
        assert_eq!(outcome["callback_answer"], json!({ "result": "success" }));
        trade_nos.push(outcome["trade_no"].as_str().unwrap().to_owned());
    }
    assert_eq!(trade_nos[0], trade_nos[1]);
    // And a hand-made replay of the same signed notification.
    let replay = shop_common::api::pay::signature::sign(
        shop_pay::config::DEV_GATEWAY_SECRET.as_bytes(),
        &shop_common::api::pay::signature::canonical(payment_id, order_id, 4299, &trade_nos[0]),
    );
    let answer = http
        .post(format!("{pay}/payments/callback"))
        .json(&json!({
            "payment_id": payment_id, "order_id": order_id, "amount": "42.99",
            "trade_no": trade_nos[0], "signature": replay,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);

    // The fan-out arrives...
    wait_until("the payment in the log", || async {
        count(&log_db_handle, "SELECT COUNT(*) FROM payment_log").await == 1
    })
    .await;
    wait_until("the points credited", || async {
        count(&points_db_handle, "SELECT CAST(COALESCE(SUM(points), 0) AS BIGINT) FROM user_points").await == 42
    })
    .await;
    // ...and nothing more, however long we wait: one message on the topic,
    // one row each, the half messages of the replays rolled back.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        pay_success_count(&admin).await,
        1,
        "exactly one PAY_SUCCESS was committed"
    );
    assert_eq!(count(&log_db_handle, "SELECT COUNT(*) FROM payment_log").await, 1);
    assert_eq!(
        count(&log_db_handle, "SELECT COUNT(*) FROM consumed_message").await,
        1
    );
    assert_eq!(
        count(&log_db_handle, "SELECT amount_cents FROM payment_log").await,
        4299
    );
    assert_eq!(
        count(&log_db_handle, "SELECT user_id FROM payment_log").await,
        11
    );
    assert_eq!(
        count(&points_db_handle, "SELECT points FROM user_points WHERE user_id = 11").await,
        42
    );
    assert_eq!(count(&points_db_handle, "SELECT COUNT(*) FROM points_ledger").await, 1);
    assert_eq!(
        count(&pay_db, "SELECT COUNT(*) FROM payments WHERE status = 'PAID'").await,
        1
    );
    let logged: Value = http
        .get(format!("{pay}/payments/{payment_id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(logged["trade_no"], trade_nos[0].as_str());

    let _ = stop_pay.send(());
    pay_task.await.unwrap().unwrap();
    let _ = stop_log.send(());
    log_task.await.unwrap().unwrap();
    let _ = stop_points.send(());
    points_task.await.unwrap().unwrap();
    admin.shutdown().await;
    cluster.stop().await;
});

shop_common::db_test!(async fn a_lost_end_transaction_is_settled_by_the_check_back(db) {
    let log_db = TestDatabase::create(db.kind).await.unwrap();
    let mut cluster = Cluster::start().await;
    let admin = admin_with_topics(&cluster).await;
    let log = start_log(&cluster, &log_db.url).await;
    let log_db_handle = log.db().clone();
    let (stop_log, log_stopped) = oneshot::channel::<()>();
    let log_task = tokio::spawn(log.run_until_stopped(async move {
        let _ = log_stopped.await;
    }));

    let mut pay_config =
        ServiceConfig::for_tests_with(&db.url, shop_pay::Config::for_tests("http://127.0.0.1:1"));
    pay_config.namesrv_addr = cluster.namesrv.clone();
    let pay = shop_pay::SERVICE.start_with(pay_config, client)
        .await
        .unwrap();
    let state = pay.state().clone();
    let producer = state.producer.clone().expect("a broker is configured");
    let now = shop_common::now_ms();
    let (payment, _) = shop_pay::repo::insert_or_get(
        &state.db,
        &shop_pay::repo::Payment {
            id: Uuid::new_v4(),
            order_id: Uuid::new_v4(),
            user_id: 5,
            amount_cents: 1999,
            status: shop_pay::repo::PaymentStatus::Unpaid,
            trade_no: None,
            pay_msg_id: None,
            created_at: now,
            paid_at: None,
        },
    )
    .await
    .unwrap();

    // The callback's half message and local transaction, then a "crash":
    // no END_TRANSACTION. A replay's half message, also never ended, finds
    // the payment paid. Only the broker's check-back can settle them.
    let message = shop_pay::payment::pay_success_message(&payment, "GW-LOST", now);
    let (sent, _) = producer.send_half(message.clone()).await.unwrap();
    assert!(shop_pay::repo::mark_paid_db(&state.db, payment.id, "GW-LOST", Some(&sent.msg_id), now)
        .await
        .unwrap());
    let (replayed, _) = producer.send_half(message).await.unwrap();
    assert!(!shop_pay::repo::mark_paid_db(&state.db, payment.id, "GW-LOST", Some(&replayed.msg_id), now)
        .await
        .unwrap());
    assert_eq!(pay_success_count(&admin).await, 0, "half messages are invisible");

    // The check-back commits the first (it paid) and rolls back the second.
    wait_until("the checked-back PAY_SUCCESS in the log", || async {
        count(&log_db_handle, "SELECT COUNT(*) FROM payment_log").await == 1
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(pay_success_count(&admin).await, 1);
    assert_eq!(
        count(&log_db_handle, "SELECT amount_cents FROM payment_log").await,
        1999
    );

    producer.shutdown().await;
    drop(pay);
    let _ = stop_log.send(());
    log_task.await.unwrap().unwrap();
    admin.shutdown().await;
    cluster.stop().await;
});
