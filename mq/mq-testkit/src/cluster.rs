//! A name server and one broker registered with it: what tests of the
//! client-facing crates (admin tools, services, end-to-end sagas) start.

use mq_broker::BrokerConfig;
use mq_store::MessageStoreConfig;

use crate::broker::TestBroker;
use crate::frames;
use crate::namesrv::NameServer;
use crate::wait::wait_for;

/// A name server and one broker, `broker-a` unless adjusted.
pub struct Cluster {
    /// The name server the broker registered with.
    pub namesrv: NameServer,
    /// `host:port` of the broker.
    pub broker_addr: String,
    /// `brokerName` of the broker.
    pub broker_name: String,
    broker: TestBroker,
}

impl Cluster {
    /// Starts with [`crate::broker_configs`].
    pub async fn start() -> Cluster {
        Self::start_with(|_, _| {}).await
    }

    /// Starts with settings adjusted by `tweak`; returns once the broker is
    /// registered and routable.
    pub async fn start_with(
        tweak: impl FnOnce(&mut BrokerConfig, &mut MessageStoreConfig),
    ) -> Cluster {
        let namesrv = NameServer::start().await;
        let broker = TestBroker::start_temp("broker-a", &namesrv.addr, tweak).await;
        Cluster {
            broker_addr: broker.addr.clone(),
            broker_name: broker.name.clone(),
            namesrv,
            broker,
        }
    }

    /// Creates `topic` with `queues` read and write queues on the broker and
    /// waits until the name server routes it.
    pub async fn create_topic(&self, topic: &str, queues: i32) {
        let client = frames::client();
        frames::create_topic(&client, &self.broker_addr, topic, queues).await;
        wait_for(&format!("the name server to route {topic}"), || {
            frames::route(&client, &self.namesrv.addr, topic)
        })
        .await;
    }

    /// The running broker (e.g. for a proxy in its process).
    pub fn broker_handle(&self) -> &mq_broker::BrokerHandle {
        self.broker.handle.as_ref().expect("the broker is running")
    }

    /// Stops the broker cleanly; the name server stops on drop.
    pub async fn stop(&mut self) {
        self.broker.stop().await;
    }
}
