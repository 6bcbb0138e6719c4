//! The console's clients of the cluster: per configured name server (made
//! on first use) an admin client, a producer for test messages and a
//! reading consumer. Which name server a page talks to is its session's
//! choice (the switch in the header), so one operator's switch does not
//! move another's pages.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use mq_client::{AdminClient, ClientConfig, Credentials, Producer, ProducerConfig, PullConsumer};
use tokio::sync::Mutex;

/// The producer group test messages are sent from (the dashboard's
/// `SELF_TEST_P_GROUP`).
pub const TEST_PRODUCER_GROUP: &str = "SELF_TEST_P_GROUP";

/// The group messages are read with (dead letters); it never commits an
/// offset. RocketMQ's tools use the same name.
pub const TOOLS_CONSUMER_GROUP: &str = "TOOLS_CONSUMER";

/// Numbers the consoles of this process: each has client instances of its
/// own (instances are shared by client id), even on the same name server.
static CONSOLES: AtomicU64 = AtomicU64::new(0);

pub struct ClusterClients {
    /// This console's number in the process.
    console: u64,
    addrs: Vec<String>,
    credentials: Option<Credentials>,
    admins: Mutex<HashMap<String, AdminClient>>,
    producers: Mutex<HashMap<String, Producer>>,
    pullers: Mutex<HashMap<String, PullConsumer>>,
}

impl ClusterClients {
    pub fn new(addrs: Vec<String>, credentials: Option<Credentials>) -> ClusterClients {
        ClusterClients {
            console: CONSOLES.fetch_add(1, Ordering::Relaxed),
            addrs,
            credentials,
            admins: Mutex::new(HashMap::new()),
            producers: Mutex::new(HashMap::new()),
            pullers: Mutex::new(HashMap::new()),
        }
    }

    /// The configured name servers.
    pub fn addrs(&self) -> &[String] {
        &self.addrs
    }

    /// The configured name server at `index` (the first when out of range).
    pub fn addr(&self, index: usize) -> &str {
        self.addrs.get(index).unwrap_or(&self.addrs[0])
    }

    /// The index of `addr` among the configured name servers; none for
    /// any other address.
    pub fn index_of(&self, addr: &str) -> Option<usize> {
        self.addrs.iter().position(|a| a == addr)
    }

    fn client_config(&self, addr: &str, role: &str) -> ClientConfig {
        // One instance per name server and role: clients of one client id
        // share one instance, and so its name server list.
        let slot = self.addrs.iter().position(|a| a == addr).unwrap_or(0);
        ClientConfig::new(addr)
            .with_instance_name(format!(
                "mq-console-{}-{}-{role}-{slot}",
                std::process::id(),
                self.console
            ))
            .with_credentials(self.credentials.clone())
    }

    /// The admin client of the name server at `index`.
    pub async fn admin(&self, index: usize) -> mq_client::Result<AdminClient> {
        let addr = self.addr(index).to_owned();
        let mut admins = self.admins.lock().await;
        if let Some(admin) = admins.get(&addr) {
            return Ok(admin.clone());
        }
        let admin = AdminClient::start(self.client_config(&addr, "admin")).await?;
        admins.insert(addr, admin.clone());
        Ok(admin)
    }

    /// The test-message producer of the name server at `index`.
    pub async fn producer(&self, index: usize) -> mq_client::Result<Producer> {
        let addr = self.addr(index).to_owned();
        let mut producers = self.producers.lock().await;
        if let Some(producer) = producers.get(&addr) {
            return Ok(producer.clone());
        }
        let producer = Producer::start(
            ProducerConfig::new(TEST_PRODUCER_GROUP),
            self.client_config(&addr, "producer"),
        )
        .await?;
        producers.insert(addr, producer.clone());
        Ok(producer)
    }

    /// The reading consumer of the name server at `index`.
    pub async fn puller(&self, index: usize) -> mq_client::Result<PullConsumer> {
        let addr = self.addr(index).to_owned();
        let mut pullers = self.pullers.lock().await;
        if let Some(puller) = pullers.get(&addr) {
            return Ok(puller.clone());
        }
        let puller =
            PullConsumer::start(TOOLS_CONSUMER_GROUP, self.client_config(&addr, "reader")).await?;
        pullers.insert(addr, puller.clone());
        Ok(puller)
    }

    pub async fn shutdown(&self) {
        for (_, puller) in self.pullers.lock().await.drain() {
            puller.shutdown().await;
        }
        for (_, producer) in self.producers.lock().await.drain() {
            producer.shutdown().await;
        }
        for (_, admin) in self.admins.lock().await.drain() {
            admin.shutdown().await;
        }
    }
}
