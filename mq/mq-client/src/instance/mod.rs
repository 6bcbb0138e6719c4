//! The client instance shared by every producer, consumer and admin client
//! of one client id in a process (RocketMQ's `MQClientInstance`): the
//! connections, the route cache, heartbeats and the requests brokers send
//! back on those connections.
//!
//! Parts: `brokers` keeps the broker address table, `members` the
//! registered groups, `callback` answers the brokers' requests from those
//! members. This file ties them to the connections and the name servers.

mod brokers;
mod callback;
mod members;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use mq_protocol::acl::Signer;
use mq_protocol::body::MessageQueue;
use mq_protocol::header::{TopicHeader, UnregisterClientRequestHeader};
use mq_protocol::route::{decode_json, encode_json, TopicRouteData, MASTER_ID};
use mq_protocol::{request_code, RemotingCommand, ResponseCode};
use mq_remoting::{ClientConfig as RemotingConfig, RemotingClient};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use brokers::BrokerTable;
use callback::ClientHandler;
use members::Members;
pub(crate) use members::{basic_running_info, ConsumerRegistration, DirectConsume};

use crate::config::ClientConfig;
use crate::credentials::Credentials;
use crate::end_transaction::TransactionChecker;
use crate::error::{expect_success, is_network_error, ClientError, Result};
use crate::sync::lock;

/// One client id's connections, routes and registered groups.
pub(crate) struct ClientInstance {
    config: ClientConfig,
    /// `config.credentials` keyed once; signs every request that leaves.
    signer: Option<Signer>,
    client_id: String,
    namesrv_addrs: Vec<String>,
    namesrv_index: AtomicUsize,
    remoting: RemotingClient,
    routes: Mutex<HashMap<String, Arc<TopicRouteData>>>,
    /// Topics to refresh even while they have no route (auto-created on first send).
    watched: Mutex<BTreeSet<String>>,
    brokers: BrokerTable,
    members: Arc<Members>,
    users: Mutex<usize>,
    stop: watch::Sender<bool>,
}

type Registry = Mutex<HashMap<String, Weak<ClientInstance>>>;

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Registry::default)
}

impl ClientInstance {
    /// The running instance for `config`'s client id, started if needed.
    /// Pair each call with [`ClientInstance::release`].
    pub(crate) fn acquire(config: &ClientConfig) -> Result<Arc<ClientInstance>> {
        let client_id = config.client_id();
        let mut instances = lock(registry());
        if let Some(instance) = instances.get(&client_id).and_then(Weak::upgrade) {
            if !*instance.stop.borrow() {
                *lock(&instance.users) += 1;
                return Ok(instance);
            }
        }
        let namesrv_addrs = config.namesrv_addrs()?;
        let (stop, _) = watch::channel(false);
        let members = Arc::new(Members::new(client_id.clone()));
        let handler = Arc::new(ClientHandler {
            members: Arc::downgrade(&members),
            namesrv_addrs: namesrv_addrs.clone(),
            signer: config.credentials.as_ref().map(Credentials::signer),
        });
        let remoting_config = RemotingConfig {
            connect_timeout: config.request_timeout,
            ..RemotingConfig::default()
        };
        let instance = Arc::new(ClientInstance {
            config: config.clone(),
            signer: config.credentials.as_ref().map(Credentials::signer),
            client_id: client_id.clone(),
            namesrv_addrs,
            namesrv_index: AtomicUsize::new(0),
            remoting: RemotingClient::with_handler(remoting_config, handler),
            routes: Mutex::default(),
            watched: Mutex::default(),
            brokers: BrokerTable::default(),
            members,
            users: Mutex::new(1),
            stop,
        });
        instances.retain(|_, weak| weak.strong_count() > 0);
        instances.insert(client_id.clone(), Arc::downgrade(&instance));
        instance.spawn_background();
        info!(client_id, "client instance started");
        Ok(instance)
    }

    /// Gives back one [`ClientInstance::acquire`]; the last release stops
    /// the background tasks and closes the connections.
    pub(crate) fn release(self: &Arc<Self>) {
        let mut users = lock(&self.users);
        *users = users.saturating_sub(1);
        if *users == 0 {
            self.stop.send_replace(true);
            let mut instances = lock(registry());
            if instances
                .get(&self.client_id)
                .is_some_and(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(self)))
            {
                instances.remove(&self.client_id);
            }
            for addr in self.brokers.all_addrs() {
                self.remoting.close(&addr);
            }
            info!(client_id = self.client_id, "client instance stopped");
        }
    }

    pub(crate) fn client_id(&self) -> &str {
        &self.client_id
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.config.request_timeout
    }

    fn spawn_background(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let mut stop = self.stop.subscribe();
        let route_every = self.config.poll_name_server_interval;
        let heartbeat_every = self.config.heartbeat_broker_interval;
        tokio::spawn(async move {
            let mut routes = tokio::time::interval(route_every);
            let mut heartbeats = tokio::time::interval(heartbeat_every);
            routes.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            heartbeats.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // Both fire at once on the first tick; skip that one.
            routes.tick().await;
            heartbeats.tick().await;
            loop {
                tokio::select! {
                    () = async { let _ = stop.wait_for(|s| *s).await; } => break,
                    _ = routes.tick() => {
                        let Some(instance) = weak.upgrade() else { break };
                        instance.refresh_all_routes().await;
                    }
                    _ = heartbeats.tick() => {
                        let Some(instance) = weak.upgrade() else { break };
                        instance.send_heartbeat_to_all().await;
                    }
                }
            }
        });
    }

    // ----- name server and routes -----

    /// Sends `request` to the name servers in turn until one answers.
    pub(crate) async fn invoke_namesrv(&self, request: RemotingCommand) -> Result<RemotingCommand> {
        let request = self.signed(request);
        let n = self.namesrv_addrs.len();
        let start = self.namesrv_index.load(Ordering::Relaxed);
        let mut last = None;
        for i in 0..n {
            let index = (start + i) % n;
            let addr = &self.namesrv_addrs[index];
            match self
                .remoting
                .invoke(addr, request.clone(), self.timeout())
                .await
            {
                Ok(response) => {
                    self.namesrv_index.store(index, Ordering::Relaxed);
                    return Ok(response);
                }
                Err(error) => {
                    debug!(addr, %error, "name server request failed");
                    last = Some(error);
                }
            }
        }
        Err(last.map_or(ClientError::NoNameServer, ClientError::from))
    }

    /// Every name server address.
    pub(crate) fn namesrv_addrs(&self) -> &[String] {
        &self.namesrv_addrs
    }

    /// The topic's route from the name server, without touching the cache.
    pub(crate) async fn fetch_route(&self, topic: &str) -> Result<TopicRouteData> {
        let request = RemotingCommand::request(request_code::GET_ROUTEINFO_BY_TOPIC).with_header(
            &TopicHeader {
                topic: topic.to_owned(),
            },
        );
        let response = self.invoke_namesrv(request).await?;
        if response.code == i32::from(ResponseCode::TOPIC_NOT_EXIST) {
            return Err(ClientError::NoRoute {
                topic: topic.to_owned(),
            });
        }
        let response = expect_success(response)?;
        Ok(decode_json(&response.body)?)
    }

    /// Fetches the topic's route and caches it; a route with brokers this
    /// instance did not know yet triggers a heartbeat to them.
    pub(crate) async fn update_route(self: &Arc<Self>, topic: &str) -> Result<Arc<TopicRouteData>> {
        let route = match self.fetch_route(topic).await {
            Ok(route) => route,
            Err(error @ ClientError::NoRoute { .. }) => {
                lock(&self.routes).remove(topic);
                return Err(error);
            }
            Err(error) => return Err(error),
        };
        self.remember_brokers(&route);
        let mut routes = lock(&self.routes);
        let route = match routes.get(topic) {
            Some(old) if **old == route => old.clone(),
            _ => {
                let route = Arc::new(route);
                routes.insert(topic.to_owned(), route.clone());
                route
            }
        };
        Ok(route)
    }

    /// Adds the route's broker addresses to the table; brokers not known
    /// before get a heartbeat at once so they know this client's groups.
    pub(crate) fn remember_brokers(self: &Arc<Self>, route: &TopicRouteData) {
        if self.brokers.remember(route) && !self.members.is_empty() {
            let this = self.clone();
            tokio::spawn(async move { this.send_heartbeat_to_all().await });
        }
    }

    /// The cached route, fetched if the topic is not cached.
    pub(crate) async fn route(self: &Arc<Self>, topic: &str) -> Result<Arc<TopicRouteData>> {
        if let Some(route) = self.cached_route(topic) {
            return Ok(route);
        }
        self.update_route(topic).await
    }

    /// The cached route; the same `Arc` until the route changes.
    pub(crate) fn cached_route(&self, topic: &str) -> Option<Arc<TopicRouteData>> {
        lock(&self.routes).get(topic).cloned()
    }

    /// Keeps refreshing `topic` with the other routes even while it has none.
    pub(crate) fn watch_topic(&self, topic: &str) {
        lock(&self.watched).insert(topic.to_owned());
    }

    async fn refresh_all_routes(self: &Arc<Self>) {
        let mut topics: BTreeSet<String> = lock(&self.routes).keys().cloned().collect();
        topics.extend(lock(&self.watched).iter().cloned());
        for topic in topics {
            if let Err(error) = self.update_route(&topic).await {
                debug!(topic, %error, "route refresh failed");
            }
        }
    }

    // ----- broker addresses -----

    /// The master's address of a broker group.
    pub(crate) fn master_addr(&self, broker_name: &str) -> Option<String> {
        self.brokers.master_addr(broker_name)
    }

    /// The address of broker `preferred` of the group if it is known and
    /// reachable, else the master, else the other brokers by id; addresses
    /// that just failed come last.
    pub(crate) fn pick_addr(&self, broker_name: &str, preferred: i64) -> Option<String> {
        self.brokers.pick_addr(broker_name, preferred)
    }

    /// Remembers the broker id a pull response suggested for `mq`.
    pub(crate) fn set_pull_from(&self, mq: &MessageQueue, broker_id: i64) {
        self.brokers.set_pull_from(mq, broker_id);
    }

    /// The broker id to pull `mq` from (the master unless a broker said otherwise).
    pub(crate) fn pull_from(&self, mq: &MessageQueue) -> i64 {
        self.brokers.pull_from(mq)
    }

    /// The master's address, else another broker of the group (a slave)
    /// when the master is gone from the route or just failed to answer;
    /// refreshes the topic's route once if the group is unknown.
    pub(crate) async fn broker_addr_for(
        self: &Arc<Self>,
        topic: &str,
        broker_name: &str,
    ) -> Result<String> {
        if let Some(addr) = self.pick_addr(broker_name, MASTER_ID) {
            return Ok(addr);
        }
        self.update_route(topic).await?;
        self.pick_addr(broker_name, MASTER_ID)
            .ok_or_else(|| ClientError::BrokerNotFound {
                broker_name: broker_name.to_owned(),
            })
    }

    // ----- brokers -----

    /// `request` to the broker at `addr`, waiting the configured timeout.
    pub(crate) async fn invoke(
        &self,
        addr: &str,
        request: RemotingCommand,
    ) -> Result<RemotingCommand> {
        self.invoke_timeout(addr, request, self.timeout()).await
    }

    /// `request` to the broker at `addr`, waiting up to `timeout`. A
    /// network failure makes the address second choice for a while, an
    /// answer clears that.
    pub(crate) async fn invoke_timeout(
        &self,
        addr: &str,
        request: RemotingCommand,
        timeout: Duration,
    ) -> Result<RemotingCommand> {
        let request = match &self.config.in_process {
            Some(local) if local.addr == addr => {
                let code = request.code;
                match tokio::time::timeout(timeout, local.broker.serve(request)).await {
                    Ok(Ok(response)) => return Ok(response),
                    Ok(Err(request)) => request,
                    Err(_) => {
                        return Err(ClientError::Remoting(mq_remoting::RemotingError::Timeout {
                            addr: addr.to_owned(),
                            code,
                            timeout_ms: timeout.as_millis() as u64,
                        }))
                    }
                }
            }
            _ => request,
        };
        let result = self
            .remoting
            .invoke(addr, self.signed(compact(request)), timeout)
            .await
            .map_err(ClientError::from);
        match &result {
            Err(e) if is_network_error(e) => self.brokers.mark_unreachable(addr),
            Ok(_) => self.brokers.mark_reachable(addr),
            Err(_) => {}
        }
        result
    }

    /// `request` to the broker at `addr` without waiting for an answer.
    pub(crate) async fn invoke_oneway(&self, addr: &str, request: RemotingCommand) -> Result<()> {
        let request = self.signed(compact(request));
        Ok(self.remoting.invoke_oneway(addr, request).await?)
    }

    /// `request` signed with the configured credentials, if any. Every
    /// request leaving the instance passes here last, when its fields and
    /// body are final (the check-back's END_TRANSACTION signs in `callback`).
    fn signed(&self, mut request: RemotingCommand) -> RemotingCommand {
        if let Some(signer) = &self.signer {
            signer.sign(&mut request);
        }
        request
    }

    /// `request` to every known broker; failures are logged as `what`.
    async fn invoke_all_brokers(&self, request: &RemotingCommand, what: &str) {
        for addr in self.brokers.all_addrs() {
            match self
                .invoke(&addr, request.clone())
                .await
                .and_then(expect_success)
            {
                Ok(_) => debug!(addr, "{what} sent"),
                Err(error) => warn!(addr, %error, "{what} failed"),
            }
        }
    }

    // ----- members -----

    /// Registers a producer group (`checker` for transactional ones).
    pub(crate) fn register_producer(
        &self,
        group: &str,
        checker: Option<Arc<dyn TransactionChecker>>,
    ) -> Result<()> {
        self.members.register_producer(group, checker)
    }

    /// Registers a consumer group.
    pub(crate) fn register_consumer(
        &self,
        group: &str,
        consumer: Arc<dyn ConsumerRegistration>,
    ) -> Result<()> {
        self.members.register_consumer(group, consumer)
    }

    /// Sends a heartbeat with every producer and consumer group to every
    /// known broker.
    pub(crate) async fn send_heartbeat_to_all(&self) {
        if self.members.is_empty() {
            return;
        }
        let request = RemotingCommand::request(request_code::HEART_BEAT)
            .with_body(encode_json(&self.members.heartbeat_data()));
        self.invoke_all_brokers(&request, "heartbeat").await;
    }

    /// Removes a producer group and tells every broker.
    pub(crate) async fn unregister_producer(&self, group: &str) {
        self.members.remove_producer(group);
        self.unregister_client(Some(group), None).await;
    }

    /// Removes a consumer group and tells every broker.
    pub(crate) async fn unregister_consumer(&self, group: &str) {
        self.members.remove_consumer(group);
        self.unregister_client(None, Some(group)).await;
    }

    async fn unregister_client(&self, producer_group: Option<&str>, consumer_group: Option<&str>) {
        let header = UnregisterClientRequestHeader {
            client_id: self.client_id.clone(),
            producer_group: producer_group.map(str::to_owned),
            consumer_group: consumer_group.map(str::to_owned),
        };
        let request =
            RemotingCommand::request(request_code::UNREGISTER_CLIENT).with_header(&header);
        self.invoke_all_brokers(&request, "unregister client").await;
    }
}

impl Drop for ClientInstance {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

/// Requests to brokers use RocketMQ's binary header (serialize type
/// ROCKETMQ, which every 4.x broker accepts and answers in kind): encoding
/// and decoding it costs a fraction of the JSON header on every send and
/// pull.
fn compact(mut request: RemotingCommand) -> RemotingCommand {
    request.serialize_type = mq_protocol::SerializeType::RocketMq;
    request
}
