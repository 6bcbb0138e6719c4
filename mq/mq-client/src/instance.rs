//! The client instance shared by every producer, consumer and admin client
//! of one client id in a process (RocketMQ's `MQClientInstance`): the
//! connections, the route cache, heartbeats and the requests brokers send
//! back on those connections.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

use mq_protocol::body::{ConsumerData, HeartbeatData, ProducerData};
use mq_protocol::header::{ConsumerGroupHeader, TopicHeader, UnregisterClientRequestHeader};
use mq_protocol::route::{decode_json, encode_json, TopicRouteData, MASTER_ID};
use mq_protocol::{request_code, RemotingCommand, ResponseCode};
use mq_remoting::{
    check_success, Channel, ClientConfig as RemotingConfig, HandlerError, RemotingClient,
    RemotingError, RequestHandler,
};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::config::ClientConfig;
use crate::transaction::{answer_check, TransactionChecker};
use crate::{ClientError, Result};

/// What the instance needs from a consumer registered with it.
pub(crate) trait ConsumerRegistration: Send + Sync {
    /// The consumer's part of the heartbeat.
    fn consumer_data(&self) -> ConsumerData;
    /// Asks for a rebalance soon (the group's members changed).
    fn trigger_rebalance(&self);
    /// What GET_CONSUMER_RUNNING_INFO reports (see `callback`).
    fn running_info(&self) -> mq_protocol::admin_body::ConsumerRunningInfo {
        crate::callback::basic_running_info(&self.consumer_data())
    }
    /// The consumer's offsets of `topic` (GET_CONSUMER_STATUS_FROM_CLIENT).
    fn topic_offsets(&self, _topic: &str) -> BTreeMap<mq_protocol::body::MessageQueue, i64> {
        BTreeMap::new()
    }
    /// The broker moved the group's offsets of `topic`
    /// (RESET_CONSUMER_CLIENT_OFFSET): read on from `offsets`.
    fn reset_offsets(
        &self,
        _topic: &str,
        _offsets: &BTreeMap<mq_protocol::body::MessageQueue, i64>,
    ) {
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) struct ClientInstance {
    config: ClientConfig,
    client_id: String,
    namesrv_addrs: Vec<String>,
    namesrv_index: AtomicUsize,
    remoting: RemotingClient,
    routes: Mutex<HashMap<String, Arc<TopicRouteData>>>,
    /// Topics to refresh even while they have no route (auto-created on first send).
    watched: Mutex<std::collections::BTreeSet<String>>,
    /// Broker addresses by broker name and broker id, from every route seen.
    brokers: Mutex<HashMap<String, BTreeMap<i64, String>>>,
    /// Broker addresses a request just failed to reach, and when: requests
    /// prefer another broker of the group for [`UNREACHABLE_FOR`].
    unreachable: Mutex<HashMap<String, Instant>>,
    /// The broker id each queue's broker suggested pulling from next
    /// (RocketMQ's pullFromWhichNodeTable).
    pull_from: Mutex<HashMap<mq_protocol::body::MessageQueue, i64>>,
    producers: Mutex<HashMap<String, Option<Arc<dyn TransactionChecker>>>>,
    consumers: Mutex<HashMap<String, Arc<dyn ConsumerRegistration>>>,
    users: Mutex<usize>,
    stop: watch::Sender<bool>,
}

type Registry = Mutex<HashMap<String, Weak<ClientInstance>>>;

/// How long a broker address that failed with a network error is passed
/// over in favour of another broker of its group (a slave while the master
/// is down); after that it is tried again.
const UNREACHABLE_FOR: Duration = Duration::from_secs(5);

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
        let instance = Arc::new_cyclic(|weak: &Weak<ClientInstance>| {
            let handler = Arc::new(ClientHandler {
                instance: weak.clone(),
            });
            let remoting_config = RemotingConfig {
                connect_timeout: config.request_timeout,
                ..RemotingConfig::default()
            };
            ClientInstance {
                config: config.clone(),
                client_id: client_id.clone(),
                namesrv_addrs,
                namesrv_index: AtomicUsize::new(0),
                remoting: RemotingClient::with_handler(remoting_config, handler),
                routes: Mutex::default(),
                watched: Mutex::default(),
                brokers: Mutex::default(),
                unreachable: Mutex::default(),
                pull_from: Mutex::default(),
                producers: Mutex::default(),
                consumers: Mutex::default(),
                users: Mutex::new(1),
                stop,
            }
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
            for addrs in lock(&self.brokers).values() {
                for addr in addrs.values() {
                    self.remoting.close(addr);
                }
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

    // ----- name server -----

    /// Sends `request` to the name servers in turn until one answers.
    pub(crate) async fn invoke_namesrv(&self, request: RemotingCommand) -> Result<RemotingCommand> {
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
        let response = check_success(response)?;
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
        let route = {
            let mut routes = lock(&self.routes);
            match routes.get(topic) {
                Some(old) if **old == route => old.clone(),
                _ => {
                    let route = Arc::new(route);
                    routes.insert(topic.to_owned(), route.clone());
                    route
                }
            }
        };
        Ok(route)
    }

    /// Adds the route's broker addresses to the table; brokers not known
    /// before get a heartbeat at once so they know this client's groups.
    pub(crate) fn remember_brokers(self: &Arc<Self>, route: &TopicRouteData) {
        let mut new_broker = false;
        {
            let mut brokers = lock(&self.brokers);
            for data in &route.broker_datas {
                let known = brokers.entry(data.broker_name.clone()).or_default();
                if *known != data.broker_addrs {
                    new_broker |= data
                        .broker_addrs
                        .values()
                        .any(|a| !known.values().any(|k| k == a));
                    known.clone_from(&data.broker_addrs);
                }
            }
        }
        if new_broker && self.has_members() {
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
        let mut topics: std::collections::BTreeSet<String> =
            lock(&self.routes).keys().cloned().collect();
        topics.extend(lock(&self.watched).iter().cloned());
        for topic in topics {
            if let Err(error) = self.update_route(&topic).await {
                debug!(topic, %error, "route refresh failed");
            }
        }
    }

    /// The master's address of a broker group.
    pub(crate) fn master_addr(&self, broker_name: &str) -> Option<String> {
        lock(&self.brokers)
            .get(broker_name)
            .and_then(|addrs| addrs.get(&MASTER_ID).cloned())
    }

    /// The master's address, else another broker of the group (a slave)
    /// when the master is gone from the route or just failed to answer.
    pub(crate) fn any_addr(&self, broker_name: &str) -> Option<String> {
        self.pick_addr(broker_name, MASTER_ID)
    }

    /// The address of broker `preferred` of the group if it is known and
    /// reachable, else the master, else the other brokers by id; addresses
    /// that just failed come last.
    pub(crate) fn pick_addr(&self, broker_name: &str, preferred: i64) -> Option<String> {
        let brokers = lock(&self.brokers);
        let addrs = brokers.get(broker_name)?;
        let unreachable = lock(&self.unreachable);
        let reachable = |addr: &String| {
            unreachable
                .get(addr)
                .is_none_or(|at| at.elapsed() >= UNREACHABLE_FOR)
        };
        let ordered = addrs
            .get(&preferred)
            .into_iter()
            .chain(addrs.get(&MASTER_ID))
            .chain(addrs.values());
        ordered
            .clone()
            .find(|a| reachable(a))
            .or_else(|| ordered.clone().next())
            .cloned()
    }

    /// Remembers the broker id a pull response suggested for `mq`.
    pub(crate) fn set_pull_from(&self, mq: &mq_protocol::body::MessageQueue, broker_id: i64) {
        let mut table = lock(&self.pull_from);
        if broker_id == MASTER_ID {
            table.remove(mq);
        } else {
            table.insert(mq.clone(), broker_id);
        }
    }

    /// The broker id to pull `mq` from (the master unless a broker said otherwise).
    pub(crate) fn pull_from(&self, mq: &mq_protocol::body::MessageQueue) -> i64 {
        lock(&self.pull_from).get(mq).copied().unwrap_or(MASTER_ID)
    }

    /// Notes how a request to `addr` went: a network failure makes the
    /// address second choice for a while, a success clears that.
    fn note_outcome<T>(&self, addr: &str, result: &Result<T>) {
        match result {
            Err(e) if is_network_error(e) => {
                lock(&self.unreachable).insert(addr.to_owned(), Instant::now());
            }
            Ok(_) => {
                let mut unreachable = lock(&self.unreachable);
                if !unreachable.is_empty() {
                    unreachable.remove(addr);
                }
            }
            Err(_) => {}
        }
    }

    /// The address for a broker group, refreshing the topic's route once if
    /// it is unknown.
    pub(crate) async fn broker_addr_for(
        self: &Arc<Self>,
        topic: &str,
        broker_name: &str,
    ) -> Result<String> {
        if let Some(addr) = self.any_addr(broker_name) {
            return Ok(addr);
        }
        self.update_route(topic).await?;
        self.any_addr(broker_name)
            .ok_or_else(|| ClientError::BrokerNotFound {
                broker_name: broker_name.to_owned(),
            })
    }

    /// Every broker address known from routes.
    pub(crate) fn all_broker_addrs(&self) -> Vec<String> {
        let mut addrs: Vec<String> = lock(&self.brokers)
            .values()
            .flat_map(|a| a.values().cloned())
            .collect();
        addrs.sort();
        addrs.dedup();
        addrs
    }

    // ----- brokers -----

    pub(crate) async fn invoke(
        &self,
        addr: &str,
        request: RemotingCommand,
    ) -> Result<RemotingCommand> {
        let result = self
            .remoting
            .invoke(addr, compact(request), self.timeout())
            .await
            .map_err(ClientError::from);
        self.note_outcome(addr, &result);
        result
    }

    pub(crate) async fn invoke_timeout(
        &self,
        addr: &str,
        request: RemotingCommand,
        timeout: Duration,
    ) -> Result<RemotingCommand> {
        let result = self
            .remoting
            .invoke(addr, compact(request), timeout)
            .await
            .map_err(ClientError::from);
        self.note_outcome(addr, &result);
        result
    }

    pub(crate) async fn invoke_oneway(&self, addr: &str, request: RemotingCommand) -> Result<()> {
        Ok(self.remoting.invoke_oneway(addr, compact(request)).await?)
    }

    // ----- members -----

    pub(crate) fn register_producer(
        &self,
        group: &str,
        checker: Option<Arc<dyn TransactionChecker>>,
    ) -> Result<()> {
        let mut producers = lock(&self.producers);
        if producers.contains_key(group) {
            return Err(ClientError::InvalidArgument(format!(
                "producer group {group} already registered on client {}; use another instance name",
                self.client_id
            )));
        }
        producers.insert(group.to_owned(), checker);
        Ok(())
    }

    pub(crate) fn register_consumer(
        &self,
        group: &str,
        consumer: Arc<dyn ConsumerRegistration>,
    ) -> Result<()> {
        let mut consumers = lock(&self.consumers);
        if consumers.contains_key(group) {
            return Err(ClientError::InvalidArgument(format!(
                "consumer group {group} already registered on client {}; use another instance name",
                self.client_id
            )));
        }
        consumers.insert(group.to_owned(), consumer);
        Ok(())
    }

    /// The consumer of `group` registered here, for broker callbacks.
    pub(crate) fn consumer(&self, group: &str) -> Option<Arc<dyn ConsumerRegistration>> {
        lock(&self.consumers).get(group).cloned()
    }

    pub(crate) fn checker(&self, group: &str) -> Option<Arc<dyn TransactionChecker>> {
        lock(&self.producers).get(group).cloned().flatten()
    }

    fn has_members(&self) -> bool {
        !lock(&self.producers).is_empty() || !lock(&self.consumers).is_empty()
    }

    fn heartbeat_data(&self) -> HeartbeatData {
        HeartbeatData {
            client_id: self.client_id.clone(),
            producer_data_set: lock(&self.producers)
                .keys()
                .map(|group| ProducerData {
                    group_name: group.clone(),
                })
                .collect(),
            consumer_data_set: lock(&self.consumers)
                .values()
                .map(|c| c.consumer_data())
                .collect(),
        }
    }

    /// Sends a heartbeat with every producer and consumer group to every
    /// known broker.
    pub(crate) async fn send_heartbeat_to_all(&self) {
        if !self.has_members() {
            return;
        }
        let body = encode_json(&self.heartbeat_data());
        for addr in self.all_broker_addrs() {
            let request =
                RemotingCommand::request(request_code::HEART_BEAT).with_body(body.clone());
            match self
                .invoke(&addr, request)
                .await
                .and_then(|r| Ok(check_success(r)?))
            {
                Ok(_) => debug!(addr, "heartbeat sent"),
                Err(error) => warn!(addr, %error, "heartbeat failed"),
            }
        }
    }

    /// Removes a producer group and tells every broker.
    pub(crate) async fn unregister_producer(&self, group: &str) {
        lock(&self.producers).remove(group);
        self.unregister_client(Some(group), None).await;
    }

    /// Removes a consumer group and tells every broker.
    pub(crate) async fn unregister_consumer(&self, group: &str) {
        lock(&self.consumers).remove(group);
        self.unregister_client(None, Some(group)).await;
    }

    async fn unregister_client(&self, producer_group: Option<&str>, consumer_group: Option<&str>) {
        let header = UnregisterClientRequestHeader {
            client_id: self.client_id.clone(),
            producer_group: producer_group.map(str::to_owned),
            consumer_group: consumer_group.map(str::to_owned),
        };
        for addr in self.all_broker_addrs() {
            let request =
                RemotingCommand::request(request_code::UNREGISTER_CLIENT).with_header(&header);
            if let Err(error) = self
                .invoke(&addr, request)
                .await
                .and_then(|r| Ok(check_success(r)?))
            {
                warn!(addr, %error, "unregister client failed");
            }
        }
    }
}

impl Drop for ClientInstance {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

/// Answers the requests brokers send to the client.
struct ClientHandler {
    instance: Weak<ClientInstance>,
}

#[mq_remoting::async_trait]
impl RequestHandler for ClientHandler {
    async fn handle(
        &self,
        channel: &Channel,
        request: RemotingCommand,
    ) -> std::result::Result<Option<RemotingCommand>, HandlerError> {
        let Some(instance) = self.instance.upgrade() else {
            return Ok(Some(mq_remoting::not_supported(&request)));
        };
        match request.code {
            request_code::CHECK_TRANSACTION_STATE => {
                answer_check(&instance, channel, &request).await?;
                Ok(None)
            }
            request_code::NOTIFY_CONSUMER_IDS_CHANGED => {
                let header: ConsumerGroupHeader = request.header()?;
                info!(group = header.consumer_group, broker = %channel.peer_addr(), "consumer ids changed");
                let consumer = lock(&instance.consumers)
                    .get(&header.consumer_group)
                    .cloned();
                if let Some(consumer) = consumer {
                    consumer.trigger_rebalance();
                }
                Ok(None)
            }
            _ => Ok(crate::callback::answer(&instance, &request)),
        }
    }
}

/// Turns a non-SUCCESS response into an error naming the broker.
pub(crate) fn expect_success(response: RemotingCommand) -> Result<RemotingCommand> {
    check_success(response).map_err(ClientError::from)
}

/// True when the error is a connection-level failure rather than a broker's answer.
pub(crate) fn is_network_error(error: &ClientError) -> bool {
    matches!(
        error,
        ClientError::Remoting(
            RemotingError::ConnectFailed { .. }
                | RemotingError::Timeout { .. }
                | RemotingError::ConnectionClosed { .. }
                | RemotingError::Io { .. }
        )
    )
}

/// Requests to brokers use RocketMQ's binary header (serialize type
/// ROCKETMQ, which every 4.x broker accepts and answers in kind): encoding
/// and decoding it costs a fraction of the JSON header on every send and
/// pull.
fn compact(mut request: RemotingCommand) -> RemotingCommand {
    request.serialize_type = mq_protocol::SerializeType::RocketMq;
    request
}
