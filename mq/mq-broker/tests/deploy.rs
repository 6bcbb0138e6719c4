//! The `deploy/2m-noslave` files as an operator would use them: two name
//! servers and two `mqbroker -c <file>` processes (ports, addresses and
//! paths overridden for this machine), a topic created on the whole cluster,
//! and messages spread over both brokers.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;
use mq_client::{AdminClient, ClientConfig, Message, Producer, ProducerConfig, TopicSpec};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_master_cluster_from_the_deploy_files_spreads_messages() {
    let ns1 = NameServer::start().await;
    let ns2 = NameServer::start().await;
    let namesrv = format!("{};{}", ns1.addr, ns2.addr);
    let dir = tempfile::tempdir().unwrap();
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/2m-noslave");
    let a = BrokerProcess::spawn(&deploy_file(
        &deploy.join("broker-a.properties"),
        dir.path(),
        &namesrv,
        "",
    ));
    let b = BrokerProcess::spawn(&deploy_file(
        &deploy.join("broker-b.properties"),
        dir.path(),
        &namesrv,
        "",
    ));

    let client = ClientConfig::new(namesrv.clone());
    let admin = AdminClient::start(client.clone().with_instance_name("deploy-admin"))
        .await
        .unwrap();
    // autoCreateTopicEnable=false in the files: the operator creates topics.
    let mut masters = wait_for("both masters to register with the name servers", || async {
        let masters = admin
            .cluster_masters("DefaultCluster")
            .await
            .unwrap_or_default();
        (masters.len() == 2).then_some(masters)
    })
    .await;
    masters.sort();
    let mut expected = vec![a.addr.clone(), b.addr.clone()];
    expected.sort();
    assert_eq!(
        masters, expected,
        "both brokers registered with the name servers"
    );
    admin
        .create_topic_in_cluster(
            "DefaultCluster",
            &TopicSpec::new("Spread").with_queues(4, 4),
        )
        .await
        .unwrap();

    // Each broker registers the new topic with both name servers on its
    // own; the producer's first route must name both brokers.
    for ns in [&ns1.addr, &ns2.addr] {
        let one = AdminClient::start(
            ClientConfig::new(ns.clone()).with_instance_name(format!("route-probe-{ns}")),
        )
        .await
        .unwrap();
        wait_for(
            "each name server to route the topic to both brokers",
            || async {
                let route = one.topic_route("Spread").await.ok()?;
                (route.queue_datas.len() == 2).then_some(())
            },
        )
        .await;
        one.shutdown().await;
    }

    let producer = Producer::start(
        ProducerConfig::new("deploy-producer"),
        client.with_instance_name("deploy-producer"),
    )
    .await
    .unwrap();
    let mut per_broker: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..40 {
        let sent = producer
            .send(Message::new("Spread", format!("m{i}")))
            .await
            .unwrap();
        *per_broker
            .entry(sent.queue.broker_name.clone())
            .or_default() += 1;
    }
    assert_eq!(per_broker.len(), 2, "{per_broker:?}");
    assert!(per_broker.values().all(|n| *n >= 10), "{per_broker:?}");
    // Each name server alone knows the whole cluster.
    for ns in [&ns1.addr, &ns2.addr] {
        let one = AdminClient::start(
            ClientConfig::new(ns.clone()).with_instance_name(format!("probe-{ns}")),
        )
        .await
        .unwrap();
        assert_eq!(
            one.topic_route("Spread").await.unwrap().broker_datas.len(),
            2
        );
        one.shutdown().await;
    }
    producer.shutdown().await;
    admin.shutdown().await;
    drop((a, b));
}
