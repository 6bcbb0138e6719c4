//! The broker's background services, each a step function driven by a thin
//! loop so that tests can run one step at a time:
//! - registration with every name server every `registerNameServerPeriod`;
//! - expiry of clients silent for `serverChannelMaxIdleTimeSeconds`;
//! - persistence of consumer offsets every `flushConsumerOffsetInterval`;
//! - delivery of delayed messages from `SCHEDULE_TOPIC_XXXX` when due;
//! - transaction check-backs every `transactionCheckInterval`;
//! - on a slave, instead of the last two, the copy of the master's metadata.

use std::sync::Arc;
use std::time::Duration;

use mq_protocol::message::{property, MessageExt};
use mq_protocol::request_code;
use mq_protocol::route::{encode_json, RegisterBrokerBody};
use mq_protocol::{topic, RemotingCommand};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::broker::{lock, now_ms, Broker, InboundMessage, CLIENT_SCAN_INTERVAL};

/// Whether a step did something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Worked,
    Idle,
}

/// Most delayed messages delivered per level in one step.
const SCHEDULE_BATCH: usize = 64;
/// How often the schedule service looks for due messages when idle.
const SCHEDULE_TICK: Duration = Duration::from_millis(100);

pub(crate) fn spawn_all(broker: &Arc<Broker>, stop: &watch::Sender<bool>, tasks: &mut JoinSet<()>) {
    let config = broker.config();
    every(
        tasks,
        stop,
        Duration::from_millis(config.register_name_server_period.max(1)),
        true,
        broker.clone(),
        |b| async move { register_all(&b).await },
    );
    every(
        tasks,
        stop,
        CLIENT_SCAN_INTERVAL,
        false,
        broker.clone(),
        |b| async move {
            scan_idle_clients(&b, now_ms());
        },
    );
    every(
        tasks,
        stop,
        Duration::from_millis(config.flush_consumer_offset_interval.max(1)),
        false,
        broker.clone(),
        |b| async move { b.persist_offsets() },
    );
    if broker.ha.is_slave() {
        // A slave copies its master's metadata, and writes nothing itself:
        // delayed messages and transaction checks are the master's.
        every(
            tasks,
            stop,
            crate::ha::metadata::SYNC_TICK,
            true,
            broker.clone(),
            |b| async move {
                crate::ha::metadata::sync_step(&b).await;
            },
        );
        return;
    }
    every(
        tasks,
        stop,
        Duration::from_millis(config.transaction_check_interval.max(1)),
        false,
        broker.clone(),
        |b| async move {
            crate::transaction::check_step(&b, now_ms()).await;
        },
    );
    let b = broker.clone();
    let mut stop_rx = stop.subscribe();
    tasks.spawn(async move {
        let notify = b.store.new_message_notify();
        loop {
            let worked = schedule_step(&b, now_ms()).await;
            if worked == Step::Worked {
                continue;
            }
            let notified = notify.notified();
            tokio::select! {
                _ = crate::broker::stopped(&mut stop_rx) => return,
                _ = notified => {}
                _ = tokio::time::sleep(SCHEDULE_TICK) => {}
            }
        }
    });
}

/// Runs `f` every `period` until stop (first run at once when `now`).
fn every<F, Fut>(
    tasks: &mut JoinSet<()>,
    stop: &watch::Sender<bool>,
    period: Duration,
    now: bool,
    broker: Arc<Broker>,
    f: F,
) where
    F: Fn(Arc<Broker>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let mut stop_rx = stop.subscribe();
    tasks.spawn(async move {
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        if !now {
            ticker.tick().await;
        }
        loop {
            tokio::select! {
                _ = crate::broker::stopped(&mut stop_rx) => return,
                _ = ticker.tick() => f(broker.clone()).await,
            }
        }
    });
}

/// The REGISTER_BROKER request for this broker's current topics.
pub(crate) fn register_request(broker: &Broker) -> RemotingCommand {
    let config = broker.config();
    let wrapper = lock(&broker.topics).wrapper();
    broker.registered_version.store(
        wrapper.data_version.counter,
        std::sync::atomic::Ordering::Release,
    );
    let body = encode_json(&RegisterBrokerBody {
        topic_config_serialize_wrapper: wrapper,
        filter_server_list: Vec::new(),
    });
    RemotingCommand::request(request_code::REGISTER_BROKER)
        .with_field("brokerAddr", broker.broker_addr())
        .with_field("brokerName", &config.broker_name)
        .with_field("brokerId", config.broker_id)
        .with_field("clusterName", &config.broker_cluster_name)
        .with_field("haServerAddr", broker.ha_addr.to_string())
        .with_field("compressed", false)
        .with_field("bodyCrc32", mq_protocol::message::body_crc(&body))
        .with_body(body)
}

/// Registers with every name server; logs the ones that fail.
pub(crate) async fn register_all(broker: &Broker) {
    let config = broker.config();
    let timeout = Duration::from_millis(config.register_broker_timeout_mills.max(1));
    for addr in config.namesrv_addrs() {
        let request = register_request(broker);
        match broker.namesrv_client.invoke(&addr, request, timeout).await {
            Ok(response) if response.code == 0 => {
                debug!(namesrv = %addr, "registered");
                if broker.ha.is_slave() {
                    // The name server tells a slave where its master is.
                    let field = |k: &str| {
                        response
                            .ext_fields
                            .get(k)
                            .filter(|v| !v.is_empty())
                            .cloned()
                    };
                    broker
                        .ha
                        .set_master(field("masterAddr"), field("haServerAddr"));
                }
            }
            Ok(response) => warn!(
                namesrv = %addr,
                code = response.code,
                remark = response.remark.as_deref().unwrap_or(""),
                "name server refused the registration"
            ),
            Err(e) => warn!(namesrv = %addr, error = %e, "registering with the name server failed"),
        }
    }
}

/// Unregisters from every name server (clean shutdown).
pub(crate) async fn unregister(broker: &Broker) {
    let config = broker.config();
    for addr in config.namesrv_addrs() {
        let request = RemotingCommand::request(request_code::UNREGISTER_BROKER)
            .with_field("brokerAddr", broker.broker_addr())
            .with_field("brokerName", &config.broker_name)
            .with_field("brokerId", config.broker_id)
            .with_field("clusterName", &config.broker_cluster_name);
        if let Err(e) = broker
            .namesrv_client
            .invoke(&addr, request, Duration::from_secs(3))
            .await
        {
            warn!(namesrv = %addr, error = %e, "unregistering from the name server failed");
        }
    }
}

/// Forgets clients silent for longer than the idle limit and tells their
/// consumer groups to rebalance.
pub(crate) fn scan_idle_clients(broker: &Arc<Broker>, now: i64) -> Step {
    let idle_ms = broker.config().server_channel_max_idle_time_seconds as i64 * 1000;
    let changed = lock(&broker.clients).expire(now - idle_ms);
    if changed.is_empty() {
        return Step::Idle;
    }
    for group in changed {
        info!(%group, "consumer group lost an idle member");
        crate::processor::consumer::notify_ids_changed(broker, &group);
    }
    Step::Worked
}

/// Delivers every due delayed message of every level to its real topic and
/// advances that level's offset. At-least-once: the offset is persisted
/// after the delivery.
pub(crate) async fn schedule_step(broker: &Broker, now: i64) -> Step {
    let mut worked = Step::Idle;
    for (index, delay) in broker.delay_levels.iter().enumerate() {
        let level = index as i32 + 1;
        let queue_id = index as i32;
        let mut offset = lock(&broker.delay_offsets).get(level).max(0) as u64;
        let min = broker
            .store
            .min_offset_in_queue(topic::SCHEDULE_TOPIC, queue_id);
        if offset < min {
            offset = min;
        }
        let result = broker.store.get_message(
            topic::SCHEDULE_TOPIC,
            queue_id,
            offset,
            SCHEDULE_BATCH,
            usize::MAX,
            &|_| true,
        );
        let start = offset;
        for bytes in &result.messages {
            let msg = match MessageExt::decode(bytes, false) {
                Ok((msg, _)) => msg,
                Err(e) => {
                    warn!(level, offset, error = %e, "skipping an undecodable delayed message");
                    offset += 1;
                    continue;
                }
            };
            if msg.store_timestamp + delay > now {
                break;
            }
            if let Err(e) = broker.put(timed_up(msg)).await {
                warn!(level, offset, error = %e, "delivering a delayed message failed; will retry");
                break;
            }
            offset += 1;
        }
        if offset != start {
            worked = Step::Worked;
            let mut delays = lock(&broker.delay_offsets);
            delays.set(level, offset as i64);
            if let Err(e) = delays.persist() {
                warn!(error = %e, "persisting delay offsets failed");
            }
        }
    }
    worked
}

/// The message a delayed one becomes when its time is up: back on its real
/// topic and queue, without the delay level.
fn timed_up(msg: MessageExt) -> InboundMessage {
    let mut properties = msg.properties;
    properties.remove(property::DELAY_TIME_LEVEL);
    let topic = properties
        .get(property::REAL_TOPIC)
        .cloned()
        .unwrap_or_else(|| msg.topic.clone());
    let queue_id = properties
        .get(property::REAL_QUEUE_ID)
        .and_then(|q| q.parse().ok())
        .unwrap_or(0);
    InboundMessage {
        topic,
        queue_id,
        flag: msg.flag,
        sys_flag: msg.sys_flag,
        born_timestamp: msg.born_timestamp,
        born_host: msg.born_host,
        reconsume_times: msg.reconsume_times,
        prepared_transaction_offset: msg.prepared_transaction_offset,
        body: msg.body,
        properties,
    }
}
