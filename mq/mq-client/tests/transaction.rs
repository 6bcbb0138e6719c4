//! Transactional sends against the real broker: commit, rollback, an
//! unknown outcome settled by a check-back, and an explicit later end.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use common::*;
use mq_client::{
    async_trait, AdminClient, LocalTransactionState, Message, MessageExt, ProducerConfig,
    TopicSpec, TransactionChecker, TransactionProducer,
};

/// Commits messages whose body starts with "commit", rolls back the rest.
struct ByBody {
    asked: Mutex<Vec<String>>,
}

#[async_trait]
impl TransactionChecker for ByBody {
    async fn check(&self, msg: &MessageExt) -> LocalTransactionState {
        let body = String::from_utf8_lossy(&msg.body).into_owned();
        self.asked.lock().unwrap().push(body.clone());
        if body.starts_with("commit") {
            LocalTransactionState::Commit
        } else {
            LocalTransactionState::Rollback
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_rollback_check_back_and_later_end() {
    let ns = NameServer::start().await;
    let mut broker = start_broker("broker-a", &ns.addr).await;
    let admin = AdminClient::start(client_config(&ns.addr)).await.unwrap();
    admin
        .create_topic(&broker.addr, &TopicSpec::new("Tx").with_queues(2, 2))
        .await
        .unwrap();
    wait_until("the route of Tx", LIMIT, || async {
        admin.topic_route("Tx").await.is_ok()
    })
    .await;

    let checker = Arc::new(ByBody {
        asked: Mutex::default(),
    });
    let producer = TransactionProducer::start(
        ProducerConfig::new("pg-tx"),
        client_config(&ns.addr),
        checker.clone(),
    )
    .await
    .unwrap();

    let (consumer, seen) = collecting(client_config(&ns.addr), "cg-tx", "Tx").await;

    let committed = producer
        .send_in_transaction(Message::new("Tx", "commit-now"), |_| async {
            LocalTransactionState::Commit
        })
        .await
        .unwrap();
    assert_eq!(committed.state, LocalTransactionState::Commit);
    producer
        .send_in_transaction(Message::new("Tx", "rollback-now"), |_| async {
            LocalTransactionState::Rollback
        })
        .await
        .unwrap();
    // Unknown: the broker asks the checker, which commits one and rolls
    // back the other.
    for body in ["commit-checked", "rollback-checked"] {
        producer
            .send_in_transaction(Message::new("Tx", body), |_| async {
                LocalTransactionState::Unknown
            })
            .await
            .unwrap();
    }
    // Armed now, ended later with a handle that went through JSON.
    let (_, handle) = producer
        .send_half(Message::new("Tx", "commit-later"))
        .await
        .unwrap();
    let stored = serde_json::to_string(&handle).unwrap();
    let handle = serde_json::from_str(&stored).unwrap();
    producer
        .end_transaction(&handle, LocalTransactionState::Commit)
        .await
        .unwrap();

    let expected: BTreeSet<String> = ["commit-now", "commit-checked", "commit-later"]
        .map(String::from)
        .into();
    wait_until("the three committed messages", LIMIT, || async {
        let got: BTreeSet<String> = seen.lock().unwrap().iter().cloned().collect();
        got.is_superset(&expected)
    })
    .await;
    wait_until(
        "the checker asked about both unknown ones",
        LIMIT,
        || async {
            let asked: BTreeSet<String> = checker.asked.lock().unwrap().iter().cloned().collect();
            asked.contains("commit-checked") && asked.contains("rollback-checked")
        },
    )
    .await;
    consumer.shutdown().await;
    let got = seen.lock().unwrap().clone();
    assert!(
        got.iter().all(|b| b.starts_with("commit")),
        "a rolled back message was delivered: {got:?}"
    );
    assert_eq!(
        got.iter().filter(|b| *b == "commit-now").count(),
        1,
        "{got:?}"
    );
    producer.shutdown().await;
    admin.shutdown().await;
    broker.stop().await;
}
