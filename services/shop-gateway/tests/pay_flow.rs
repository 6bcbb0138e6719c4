//! The payment path end to end, in one process, on SQLite and on
//! PostgreSQL: a name server and a broker (port 0, temporary store), the
//! pay service with its transactional producer, this gateway, a stub of the
//! order service's internal API, and a consumer standing for the fan-out
//! (the order, log and points services), which keeps what it receives on
//! PAY_SUCCESS and PAY_REFUND. A payment made through the gateway, then
//! notified again (the gateway's second click and a hand-replayed
//! callback), must put exactly one PAY_SUCCESS, signed by the pay service,
//! on the topic; a payment for a cancelled order exactly one PAY_REFUND and
//! no PAY_SUCCESS.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use std::sync::Mutex;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use mq_broker::{BrokerConfig, BrokerHandle};
use mq_client::{
    AdminClient, ClientConfig, ConsumeStatus, Listener, MessageExt, PushConsumer,
    PushConsumerConfig, TopicSpec,
};
use mq_namesrv::NamesrvConfig;
use mq_store::MessageStoreConfig;
use serde_json::{json, Value};
use shop_common::auth::{Keyring, ServiceCaller};
use shop_common::events::{self, PaymentSucceeded, ORDER_CANCEL, PAY_SUCCESS};
use shop_common::testing::TestDatabase;
use shop_common::{ApiError, Db};
use shop_pay::events::{PaymentRefunded, PAY_REFUND};
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

type Orders = Arc<Mutex<HashMap<Uuid, Value>>>;

/// The order service's internal API (signed calls of the pay service
/// only): its orders by id, each settled as the real one does (CONFIRMED →
/// PAID; CANCELLED answers `cancelled`).
async fn order_stub(orders: Orders) -> String {
    async fn get_order(
        State(orders): State<Orders>,
        caller: ServiceCaller,
        axum::extract::Path(id): axum::extract::Path<Uuid>,
    ) -> Result<axum::Json<Value>, ApiError> {
        caller.require(&["pay"])?;
        let orders = orders.lock().unwrap();
        orders
            .get(&id)
            .cloned()
            .map(axum::Json)
            .ok_or_else(|| ApiError::not_found("order_not_found", "no"))
    }
    async fn settle(
        State(orders): State<Orders>,
        caller: ServiceCaller,
        axum::extract::Path(id): axum::extract::Path<Uuid>,
    ) -> Result<axum::Json<Value>, ApiError> {
        caller.require(&["pay"])?;
        let mut orders = orders.lock().unwrap();
        let order = orders
            .get_mut(&id)
            .ok_or_else(|| ApiError::not_found("order_not_found", "no"))?;
        let outcome = if order["status"] == "CANCELLED" {
            "cancelled"
        } else {
            order["status"] = json!("PAID");
            "paid"
        };
        Ok(axum::Json(json!({ "order_id": id, "outcome": outcome })))
    }
    let auth = shop_common::testing::auth("order");
    let internal = Router::new()
        .route("/internal/orders/{id}", get(get_order))
        .route("/internal/orders/{id}/payments", post(settle));
    let app = shop_common::http::service_router(auth.protect(Router::new(), internal), orders);
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
    for topic in [PAY_SUCCESS, PAY_REFUND, ORDER_CANCEL] {
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

/// Messages stored on `topic` (committed ones only: half messages live in
/// the broker's own topic until they are committed).
async fn stored(admin: &AdminClient, topic: &str) -> i64 {
    let mut stored = 0;
    for mq in admin.topic_queues(topic).await.unwrap() {
        stored += admin.max_offset(&mq).await.unwrap();
    }
    stored
}

/// A consumer of PAY_SUCCESS and PAY_REFUND standing for the fan-out: what
/// it received, once its queues are assigned.
struct FanOut {
    consumer: PushConsumer,
    received: Arc<Mutex<Vec<MessageExt>>>,
}

impl FanOut {
    async fn start(cluster: &Cluster) -> FanOut {
        let group = format!("pay-flow-fan-out-{}", Uuid::new_v4().simple());
        let consumer = PushConsumer::new(
            PushConsumerConfig::new(group.clone()),
            client(ClientConfig::new(cluster.namesrv.clone()).with_instance_name(group)),
        );
        consumer.subscribe(PAY_SUCCESS, "*").unwrap();
        consumer.subscribe(PAY_REFUND, "*").unwrap();
        let received: Arc<Mutex<Vec<MessageExt>>> = Arc::default();
        let sink = received.clone();
        consumer
            .start(Listener::concurrent(move |msgs: Vec<MessageExt>| {
                let sink = sink.clone();
                async move {
                    sink.lock().unwrap().extend(msgs);
                    ConsumeStatus::Success
                }
            }))
            .await
            .unwrap();
        wait_until("queues of both topics assigned to the fan-out", || async {
            let queues = consumer.assigned_queues();
            [PAY_SUCCESS, PAY_REFUND]
                .iter()
                .all(|topic| queues.iter().any(|q| q.topic == *topic))
        })
        .await;
        FanOut { consumer, received }
    }

    /// The messages received on `topic`, each checked to be the pay
    /// service's.
    fn on(&self, topic: &str) -> Vec<MessageExt> {
        let received = self.received.lock().unwrap();
        let on: Vec<MessageExt> = received
            .iter()
            .filter(|m| m.topic == topic)
            .cloned()
            .collect();
        for msg in &on {
            assert_eq!(
                events::verify(&Keyring::for_tests(), "pay", topic, msg),
                Ok(()),
                "{topic} is signed by the pay service"
            );
        }
        on
    }
}

/// The pay service, the gateway and the order stub around `cluster`, with
/// one order of user 11 for 42.99 in `status`.
struct PayShop {
    pay: String,
    gateway: String,
    pay_db: Db,
    order_id: Uuid,
    orders: Orders,
    stop_pay: oneshot::Sender<()>,
    pay_task: tokio::task::JoinHandle<std::io::Result<()>>,
    _gateway_dir: TempDir,
}

impl PayShop {
    async fn start(db: &TestDatabase, cluster: &Cluster, status: &str) -> PayShop {
        let order_id = Uuid::new_v4();
        let orders: Orders = Arc::new(Mutex::new(HashMap::from([(
            order_id,
            json!({ "id": order_id, "user_id": 11, "status": status, "amount_to_pay": "42.99" }),
        )])));
        let order_url = order_stub(orders.clone()).await;
        let pay_addr = free_addr();
        let gateway_dir = tempfile::tempdir().unwrap();
        let gateway_app = shop_gateway::SERVICE
            .start(shop_gateway::config_for_tests(
                &format!("http://{pay_addr}/payments/callback"),
                gateway_dir.path(),
            ))
            .await
            .unwrap();
        let gateway = format!("http://127.0.0.1:{}", gateway_app.port());
        tokio::spawn(gateway_app.run_until_stopped(std::future::pending()));
        let mut pay_config = shop_pay::config_for_tests(&db.url, &order_url);
        pay_config.sessions = shop_common::testing::test_sessions();
        pay_config.http_addr = pay_addr;
        pay_config.own.public_url = format!("http://{pay_addr}");
        pay_config.own.gateway_url = gateway.clone();
        pay_config.namesrv_addr = cluster.namesrv.clone();
        let pay_app = shop_pay::SERVICE
            .start_with(pay_config, client)
            .await
            .unwrap();
        let pay_db = pay_app.state().db.clone();
        let (stop_pay, pay_stopped) = oneshot::channel::<()>();
        let pay_task = tokio::spawn(pay_app.run_until_stopped(async move {
            let _ = pay_stopped.await;
        }));
        PayShop {
            pay: format!("http://{pay_addr}"),
            gateway,
            pay_db,
            order_id,
            orders,
            stop_pay,
            pay_task,
            _gateway_dir: gateway_dir,
        }
    }

    /// The order's payment, created by its owner.
    async fn payment(&self, http: &reqwest::Client) -> Value {
        http.post(format!("{}/payments", self.pay))
            .bearer_auth("test-customer-11")
            .json(&json!({ "order_id": self.order_id }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn stop(self) {
        let _ = self.stop_pay.send(());
        self.pay_task.await.unwrap().unwrap();
    }
}

shop_common::db_test!(async fn a_payment_publishes_exactly_one_signed_pay_success(db) {
    let mut cluster = Cluster::start().await;
    let admin = admin_with_topics(&cluster).await;
    let fan_out = FanOut::start(&cluster).await;
    let shop = PayShop::start(&db, &cluster, "CONFIRMED").await;

    let http = reqwest::Client::new();
    let payment = shop.payment(&http).await;
    let payment_id: Uuid = payment["payment_id"].as_str().unwrap().parse().unwrap();
    assert_eq!(payment["amount"], "42.99", "{payment}");

    // Pay, then pay again: the second notification is a replay.
    let mut trade_nos = Vec::new();
    for _ in 0..2 {
        let outcome: Value = http
            .post(format!("{}/api/pay", shop.gateway))
            .json(&json!({ "payment_id": payment_id }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(outcome["accepted"], true, "{outcome}");
        trade_nos.push(outcome["trade_no"].as_str().unwrap().to_owned());
    }
    assert_eq!(trade_nos[0], trade_nos[1]);
    // And a hand-made replay of the same signed notification.
    let replay = shop_common::api::pay::signature::sign(
        shop_pay::config::TEST_GATEWAY_SECRET.as_bytes(),
        &shop_common::api::pay::signature::canonical(payment_id, shop.order_id, 4299, &trade_nos[0]),
    );
    let answer = http
        .post(format!("{}/payments/callback", shop.pay))
        .json(&json!({
            "payment_id": payment_id, "order_id": shop.order_id, "amount": "42.99",
            "trade_no": trade_nos[0], "signature": replay,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);

    // The fan-out gets it...
    wait_until("the PAY_SUCCESS", || async { !fan_out.on(PAY_SUCCESS).is_empty() }).await;
    // ...and nothing more, however long we wait: one message on the topic,
    // the half messages of the replays rolled back.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(stored(&admin, PAY_SUCCESS).await, 1, "exactly one PAY_SUCCESS was committed");
    assert_eq!(stored(&admin, PAY_REFUND).await, 0);
    let received = fan_out.on(PAY_SUCCESS);
    assert_eq!(received.len(), 1);
    let event: PaymentSucceeded = events::body(&received[0]).unwrap();
    assert_eq!((event.payment_id, event.order_id, event.user_id), (payment_id, shop.order_id, 11));
    assert_eq!(event.amount.to_string(), "42.99");
    assert_eq!(event.trade_no, trade_nos[0]);
    assert_eq!(shop.orders.lock().unwrap()[&shop.order_id]["status"], "PAID");
    assert_eq!(count(&shop.pay_db, "SELECT COUNT(*) FROM payments WHERE status = 'PAID'").await, 1);

    shop.stop().await;
    fan_out.consumer.shutdown().await;
    admin.shutdown().await;
    cluster.stop().await;
});

shop_common::db_test!(async fn a_payment_for_a_cancelled_order_publishes_a_refund_and_no_pay_success(db) {
    // Issue 15 part 7: the payment is refunded, the order stays CANCELLED,
    // no PAY_SUCCESS (so no points), one PAY_REFUND for the log.
    let mut cluster = Cluster::start().await;
    let admin = admin_with_topics(&cluster).await;
    let fan_out = FanOut::start(&cluster).await;
    let shop = PayShop::start(&db, &cluster, "CONFIRMED").await;
    let http = reqwest::Client::new();
    let payment = shop.payment(&http).await;
    let payment_id: Uuid = payment["payment_id"].as_str().unwrap().parse().unwrap();
    // Cancelled after its payment was created, before the payer paid.
    shop.orders.lock().unwrap().get_mut(&shop.order_id).unwrap()["status"] = json!("CANCELLED");

    for _ in 0..2 {
        let outcome: Value = http
            .post(format!("{}/api/pay", shop.gateway))
            .json(&json!({ "payment_id": payment_id }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(outcome["accepted"], true, "{outcome}");
    }
    wait_until("the PAY_REFUND", || async { !fan_out.on(PAY_REFUND).is_empty() }).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(stored(&admin, PAY_REFUND).await, 1);
    assert_eq!(stored(&admin, PAY_SUCCESS).await, 0, "no PAY_SUCCESS for a cancelled order");
    let refunds = fan_out.on(PAY_REFUND);
    assert_eq!(refunds.len(), 1);
    let event: PaymentRefunded = events::body(&refunds[0]).unwrap();
    assert_eq!((event.payment_id, event.order_id, event.user_id), (payment_id, shop.order_id, 11));
    assert_eq!(event.amount.to_string(), "42.99");
    assert_eq!(event.reason, "order_cancelled");
    assert_eq!(shop.orders.lock().unwrap()[&shop.order_id]["status"], "CANCELLED");
    assert_eq!(count(&shop.pay_db, "SELECT COUNT(*) FROM payments WHERE status = 'REFUNDED'").await, 1);
    assert_eq!(count(&shop.pay_db, "SELECT COUNT(*) FROM payments WHERE status = 'PAID'").await, 0);

    shop.stop().await;
    fan_out.consumer.shutdown().await;
    admin.shutdown().await;
    cluster.stop().await;
});

shop_common::db_test!(async fn a_lost_end_transaction_is_settled_by_the_check_back(db) {
    let mut cluster = Cluster::start().await;
    let admin = admin_with_topics(&cluster).await;
    let fan_out = FanOut::start(&cluster).await;

    let mut pay_config = shop_pay::config_for_tests(&db.url, "http://127.0.0.1:1");
    pay_config.namesrv_addr = cluster.namesrv.clone();
    let pay = shop_pay::SERVICE.start_with(pay_config, client).await.unwrap();
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
            refunded_at: None,
        },
    )
    .await
    .unwrap();

    // The callback's half message and local transaction, then a "crash":
    // no END_TRANSACTION. A replay's half message, also never ended, finds
    // the payment paid. Only the broker's check-back can settle them.
    let message = shop_pay::payment::pay_success_message(&state.auth.key, &payment, "GW-LOST", now);
    let (sent, _) = producer.send_half(message.clone()).await.unwrap();
    assert!(shop_pay::repo::mark_paid_db(&state.db, payment.id, "GW-LOST", Some(&sent.msg_id), now)
        .await
        .unwrap());
    let (replayed, _) = producer.send_half(message).await.unwrap();
    assert!(!shop_pay::repo::mark_paid_db(&state.db, payment.id, "GW-LOST", Some(&replayed.msg_id), now)
        .await
        .unwrap());
    assert_eq!(stored(&admin, PAY_SUCCESS).await, 0, "half messages are invisible");

    // The check-back commits the first (it paid) and rolls back the
    // second; the committed message still carries the pay service's
    // signature.
    wait_until("the checked-back PAY_SUCCESS", || async { !fan_out.on(PAY_SUCCESS).is_empty() }).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(stored(&admin, PAY_SUCCESS).await, 1);
    let event: PaymentSucceeded = events::body(&fan_out.on(PAY_SUCCESS)[0]).unwrap();
    assert_eq!((event.payment_id, event.trade_no.as_str()), (payment.id, "GW-LOST"));

    producer.shutdown().await;
    drop(pay);
    fan_out.consumer.shutdown().await;
    admin.shutdown().await;
    cluster.stop().await;
});
