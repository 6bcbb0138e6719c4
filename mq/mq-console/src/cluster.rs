//! The console's clients of the cluster: one admin client per configured
//! name server (made on first use), the name server currently picked, and a
//! producer per name server for test messages.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

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
    current: AtomicUsize,
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
            current: AtomicUsize::new(0),
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

    /// The name server pages talk to now.
    pub fn current(&self) -> &str {
        &self.addrs[self
            .current
            .load(Ordering::Relaxed)
            .min(self.addrs.len() - 1)]
    }

    /// Picks one of the configured name servers; false for any other address.
    pub fn select(&self, addr: &str) -> bool {
        match self.addrs.iter().position(|a| a == addr) {
            Some(i) => {
                self.current.store(i, Ordering::Relaxed);
                true
            }
            None => false,
        }
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

    /// The admin client of the current name server.
    pub async fn admin(&self) -> mq_client::Result<AdminClient> {
        let addr = self.current().to_owned();
        let mut admins = self.admins.lock().await;
        if let Some(admin) = admins.get(&addr) {
            return Ok(admin.clone());
        }
        let admin = AdminClient::start(self.client_config(&addr, "admin")).await?;
        admins.insert(addr, admin.clone());
        Ok(admin)
    }

    /// The test-message producer of the current name server.
    pub async fn producer(&self) -> mq_client::Result<Producer> {
        let addr = self.current().to_owned();
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

    /// The reading consumer of the current name server.
    pub async fn puller(&self) -> mq_client::Result<PullConsumer> {
        let addr = self.current().to_owned();
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
