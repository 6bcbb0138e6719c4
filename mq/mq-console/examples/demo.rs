//! A console on a name server and broker of its own, with a few topics,
//! messages and a consumer group, to look at the pages:
//! `cargo run -p mq-console --example demo -- 127.0.0.1:8090 [login]`
//! (with `login`, log in as admin / admin-demo-password). Stops on Ctrl-C.

use std::sync::Arc;

use mq_client::consumer::PushConsumerConfig;
use mq_client::{
    ClientConfig, ConsumeStatus, Listener, LocalTransactionState, Message, MessageExt, Producer,
    ProducerConfig, PushConsumer, TransactionChecker, TransactionProducer,
};
use mq_console::{ConsoleConfig, User, Users};
use mq_testkit::Cluster;
use tokio::net::TcpListener;

/// Local transactions that are never decided.
struct Undecided;

#[mq_client::async_trait]
impl TransactionChecker for Undecided {
    async fn check(&self, _msg: &MessageExt) -> LocalTransactionState {
        LocalTransactionState::Unknown
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:8090".into());
    let login = args.next().as_deref() == Some("login");
    // Check-backs late enough that the demo's undecided half message stays
    // pending for a minute.
    let cluster = Cluster::start_with(|broker, _| {
        broker.transaction_time_out = 60_000;
    })
    .await;
    for (topic, queues) in [("Orders", 4), ("PAY_SUCCESS", 2), ("ORDER_CANCEL", 2)] {
        cluster.create_topic(topic, queues).await;
    }
    let client = ClientConfig::new(&cluster.namesrv.addr).with_instance_name("demo");
    let producer = Producer::start(ProducerConfig::new("shop-order"), client.clone()).await?;
    for i in 0..40 {
        let msg = Message::new(
            "Orders",
            format!("{{\"order\":{i},\"note\":\"<b>escaped</b>\"}}"),
        )
        .with_tags(if i % 2 == 0 { "created" } else { "paid" })
        .with_keys([format!("order-{i}")]);
        producer.send(msg).await?;
    }
    let consumer = PushConsumer::new(
        PushConsumerConfig::new("shop-log"),
        client.clone().with_instance_name("demo-consumer"),
    );
    consumer.subscribe("Orders", "*")?;
    consumer
        .start(Listener::concurrent(|_m: Vec<MessageExt>| async {
            ConsumeStatus::Success
        }))
        .await?;
    // A group that fails every message: after one retry they are dead letters.
    let mut failing = PushConsumerConfig::new("shop-points");
    failing.max_reconsume_times = 1;
    let failing = PushConsumer::new(failing, client.clone().with_instance_name("demo-failing"));
    failing.subscribe("ORDER_CANCEL", "*")?;
    failing
        .start(Listener::concurrent(|_m: Vec<MessageExt>| async {
            ConsumeStatus::ReconsumeLater
        }))
        .await?;
    for i in 0..5 {
        let msg = Message::new(
            "ORDER_CANCEL",
            format!("{{\"order\":{i},\"reason\":\"stock\"}}"),
        )
        .with_tags("cancel")
        .with_keys([format!("order-{i}")]);
        producer.send(msg).await?;
    }
    let tx = TransactionProducer::start(
        ProducerConfig::new("shop-order-tx"),
        client.clone().with_instance_name("demo-tx"),
        Arc::new(Undecided),
    )
    .await?;
    tx.send_half(Message::new("ORDER_CANCEL", "{\"order\":99}").with_keys(["order-99"]))
        .await?;
    let config = ConsoleConfig::new(vec![cluster.namesrv.addr.clone(), "127.0.0.1:9".into()])
        .with_login_required(login)
        .with_users(Users::Fixed(vec![User::new(
            "admin",
            "admin-demo-password",
            true,
        )]));
    let listener = TcpListener::bind(&listen).await?;
    println!("console on http://{}", listener.local_addr()?);
    println!("broker at {}", cluster.broker_addr);
    mq_console::serve(listener, config, mq_client::shutdown_signal()).await?;
    consumer.shutdown().await;
    failing.shutdown().await;
    producer.shutdown().await;
    Ok(())
}
