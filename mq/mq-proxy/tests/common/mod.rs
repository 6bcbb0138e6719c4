//! An in-process name server and broker (mq-testkit), the proxy in front of
//! them on a free port, and 4.x reads of what arrived.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use mq_client::{ClientConfig, InProcess, MessageExt, PullConsumer, PullStatus};
use mq_proxy::{Proxy, ProxyConfig};
use mq_testkit::{bounded, Cluster};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A proxy in this process on a free port, stopped by [`ProxyHandle::stop`].
pub struct ProxyHandle {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl ProxyHandle {
    /// The proxy in front of the name servers `namesrv` (Cluster mode),
    /// its settings adjusted by `tweak`.
    pub async fn start(namesrv: &str, tweak: impl FnOnce(&mut ProxyConfig)) -> ProxyHandle {
        Self::start_with(namesrv, None, tweak).await
    }

    /// The proxy as [`ProxyHandle::start`] makes it; with `local`, in that
    /// broker's process (Local mode).
    pub async fn start_with(
        namesrv: &str,
        local: Option<InProcess>,
        tweak: impl FnOnce(&mut ProxyConfig),
    ) -> ProxyHandle {
        let mut config = ProxyConfig {
            grpc_server_port: 0,
            namesrv_addr: namesrv.to_owned(),
            ..ProxyConfig::default()
        };
        tweak(&mut config);
        let proxy = match local {
            Some(local) => Proxy::start_local(config, local).await,
            None => Proxy::start(config).await,
        }
        .expect("proxy starts");
        let listener = proxy.bind().await.expect("bind");
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            proxy
                .serve(listener, async {
                    let _ = stopped.await;
                })
                .await
                .expect("serve");
        });
        ProxyHandle {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops it and waits until it has (idempotent).
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

pub struct Env {
    pub cluster: Cluster,
    pub proxy_addr: SocketAddr,
    proxy: ProxyHandle,
}

/// Where the proxy runs, as RocketMQ 5 deploys it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// In the broker's process (`mqbroker --enable-proxy`, the shop):
    /// its sends to that broker skip the connection.
    Local,
    /// On its own in front of the cluster (`mqproxy`): everything over
    /// the 4.x protocol.
    Cluster,
}

impl Env {
    /// A cluster and the proxy in its broker's process.
    pub async fn start() -> Env {
        Env::start_on(Cluster::start().await, Mode::Local, |_| {}).await
    }

    /// The proxy in `mode`, its settings adjusted by `tweak`, in front of
    /// `cluster`.
    pub async fn start_on(
        cluster: Cluster,
        mode: Mode,
        tweak: impl FnOnce(&mut ProxyConfig),
    ) -> Env {
        let local = (mode == Mode::Local).then(|| cluster.broker_handle().in_process());
        let proxy = ProxyHandle::start_with(&cluster.namesrv.addr, local, tweak).await;
        Env {
            proxy_addr: proxy.addr,
            cluster,
            proxy,
        }
    }

    /// `host:port` as the SDK's access URL.
    pub fn access_url(&self) -> String {
        self.proxy_addr.to_string()
    }

    pub async fn stop(&mut self) {
        self.proxy.stop().await;
        self.cluster.stop().await;
    }

    /// Pulls every queue of `topic` with a 4.x [`PullConsumer`] of `group`
    /// until `want` messages arrived.
    pub async fn pull_4x(&self, group: &str, topic: &str, want: usize) -> Vec<MessageExt> {
        let client = ClientConfig::new(self.cluster.namesrv.addr.clone())
            .with_instance_name(format!("pull-{group}-{}", self.proxy_addr.port()));
        let consumer = PullConsumer::start(group, client)
            .await
            .expect("pull consumer");
        let queues = consumer.fetch_queues(topic).await.expect("queues");
        let mut offsets = vec![0i64; queues.len()];
        let mut got: Vec<MessageExt> = Vec::new();
        bounded(&format!("{want} messages in {topic}"), async {
            while got.len() < want {
                for (i, q) in queues.iter().enumerate() {
                    let result = consumer
                        .pull_blocking(q, "*", offsets[i], 32, Duration::from_millis(100))
                        .await
                        .expect("pull");
                    if result.status == PullStatus::Found {
                        got.extend(result.messages);
                    }
                    offsets[i] = result.next_begin_offset;
                }
            }
        })
        .await;
        consumer.shutdown().await;
        got
    }
}

/// The 5.x code an SDK error carries (`context: { code: ... }`).
pub fn code_of(error: &rocketmq::error::ClientError) -> String {
    error
        .context()
        .iter()
        .find(|(k, _)| *k == "code")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| format!("no code in {error}"))
}

/// Keeps receiving `topic` with `invisible` (every receive must come back
/// empty: the message has had its attempts) until the group's DLQ on
/// `broker_addr` holds a message; returns what it holds.
pub async fn dead_letters_without_redelivery(
    consumer: &rocketmq::SimpleConsumer,
    topic: &str,
    invisible: Duration,
    broker_addr: &str,
    group: &str,
) -> Vec<MessageExt> {
    use rocketmq::model::common::{FilterExpression, FilterType};
    let client = mq_testkit::frames::client();
    let dlq = format!("%DLQ%{group}");
    let reader = format!("check-{group}-dlq");
    mq_testkit::frames::heartbeat_consumer(
        &client,
        broker_addr,
        "dlq-reader",
        &reader,
        &[(&dlq, "*")],
    )
    .await;
    let all = FilterExpression::new(FilterType::Tag, "*");
    tokio::select! {
        dead = mq_testkit::frames::pull_all(&client, broker_addr, &reader, &dlq, 1, 1, mq_testkit::WAIT) => dead,
        _ = async {
            loop {
                let got = consumer
                    .receive_with(topic, &all, 8, invisible)
                    .await
                    .unwrap_or_default();
                assert!(
                    got.is_empty(),
                    "delivered again: attempt {:?}",
                    got[0].delivery_attempt()
                );
            }
        } => unreachable!(),
    }
}
