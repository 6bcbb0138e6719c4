//! The broker's background tasks, each a step function driven by a thin
//! loop so that tests can run one step at a time with their own clock:
//! - registration with every name server every `registerNameServerPeriod`
//!   ([`crate::registration`]);
//! - [`expiry`], clients silent for `serverChannelMaxIdleTimeSeconds`;
//! - persistence of consumer offsets every `flushConsumerOffsetInterval`;
//! - [`schedule`], delivery of delayed messages from `SCHEDULE_TOPIC_XXXX`;
//! - [`timer`], delivery of timer messages from `rmq_sys_wheel_timer`;
//! - [`check_back`], transaction check-backs every
//!   `transactionCheckInterval`;
//! - [`slave_sync`], on a slave, instead of the last three, the copy of the
//!   master's metadata (topics, groups, consumer and delay offsets, the
//!   timer checkpoint), so that the slave restarted as master carries on
//!   where its master stood.
//!
//! Commit log retention is the store's own (`deleteWhen`,
//! `fileReservedTime`), not a broker task.

pub(crate) mod check_back;
pub(crate) mod expiry;
pub(crate) mod schedule;
pub(crate) mod slave_sync;
pub(crate) mod timer;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::broker::Broker;
use crate::util::{now_ms, stopped};
use check_back::TransactionCheckService;
use expiry::{ClientExpiryService, CLIENT_SCAN_INTERVAL};
use schedule::{ScheduleService, SCHEDULE_TICK};
use slave_sync::SlaveSynchronize;
use timer::TimerService;

/// Whether a step did something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Something was delivered, checked or forgotten; another step may
    /// find more at once.
    Worked,
    /// Nothing was due.
    Idle,
}

/// A message a system topic held (delay levels, timers) back on `topic`,
/// in the queue its `REAL_QID` property names (0 without one), with
/// `properties`.
fn on_real_queue(
    msg: mq_protocol::MessageExt,
    topic: String,
    properties: mq_protocol::message::Properties,
) -> crate::broker::InboundMessage {
    let queue_id = properties
        .get(mq_protocol::message::property::REAL_QUEUE_ID)
        .and_then(|q| q.parse().ok())
        .unwrap_or(0);
    crate::broker::InboundMessage {
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

/// Starts every background task of `broker` in `tasks`; each ends when
/// `stop` is set.
pub(crate) fn spawn_all(broker: &Arc<Broker>, stop: &watch::Sender<bool>, tasks: &mut JoinSet<()>) {
    let config = broker.config();
    every(
        tasks,
        stop,
        Duration::from_millis(config.register_name_server_period.max(1)),
        true,
        broker.clone(),
        |b| async move { crate::registration::register_all(&b).await },
    );
    let expiry = Arc::new(ClientExpiryService::new(broker.clone()));
    every(
        tasks,
        stop,
        CLIENT_SCAN_INTERVAL,
        false,
        expiry,
        |e| async move {
            e.step(now_ms());
        },
    );
    every(
        tasks,
        stop,
        Duration::from_millis(config.flush_consumer_offset_interval.max(1)),
        false,
        broker.clone(),
        |b| async move {
            off_worker("persisting offsets", move || {
                b.persist_offsets();
                Ok::<(), std::convert::Infallible>(())
            })
            .await;
        },
    );
    if broker.ha.is_slave() {
        // A slave copies its master's metadata, and writes nothing itself:
        // delayed and timer messages and transaction checks are the master's.
        let sync = Arc::new(SlaveSynchronize::new(broker.clone()));
        every(
            tasks,
            stop,
            slave_sync::SYNC_TICK,
            true,
            sync,
            |s| async move {
                s.step(std::time::Instant::now()).await;
            },
        );
        return;
    }
    let check = Arc::new(TransactionCheckService::new(broker.clone()));
    every(
        tasks,
        stop,
        Duration::from_millis(config.transaction_check_interval.max(1)),
        false,
        check,
        |c| async move {
            c.step(now_ms()).await;
        },
    );
    let schedule = ScheduleService::new(broker.clone());
    let notify = broker.store.new_message_notify();
    let mut stop_rx = stop.subscribe();
    tasks.spawn(async move {
        loop {
            let worked = schedule.step(now_ms()).await;
            if worked == Step::Worked {
                continue;
            }
            let notified = notify.notified();
            tokio::select! {
                _ = stopped(&mut stop_rx) => return,
                _ = notified => {}
                _ = tokio::time::sleep(SCHEDULE_TICK) => {}
            }
        }
    });
    let mut timer = TimerService::open(broker.clone());
    let notify = broker.store.new_message_notify();
    let mut stop_rx = stop.subscribe();
    tasks.spawn(async move {
        loop {
            let now = now_ms();
            if timer.step(now).await == Step::Worked {
                continue;
            }
            let notified = notify.notified();
            tokio::select! {
                _ = stopped(&mut stop_rx) => return,
                _ = notified => {}
                _ = tokio::time::sleep(timer.wait(now)) => {}
            }
        }
    });
}

/// Runs `f` (file writes and fsyncs) on the blocking pool and waits for
/// it, so that the runtime's worker, which serves every connection, goes
/// on meanwhile. A failure or panic is logged as `what` failing; returns
/// whether `f` succeeded.
pub(crate) async fn off_worker<E>(
    what: &'static str,
    f: impl FnOnce() -> Result<(), E> + Send + 'static,
) -> bool
where
    E: std::fmt::Display + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "{what} failed");
            false
        }
        Err(e) => {
            tracing::warn!(error = %e, "{what} panicked");
            false
        }
    }
}

/// Runs `f` every `period` until stop (first run at once when `now`).
fn every<S, F, Fut>(
    tasks: &mut JoinSet<()>,
    stop: &watch::Sender<bool>,
    period: Duration,
    now: bool,
    service: Arc<S>,
    f: F,
) where
    S: Send + Sync + 'static,
    F: Fn(Arc<S>) -> Fut + Send + 'static,
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
                _ = stopped(&mut stop_rx) => return,
                _ = ticker.tick() => f(service.clone()).await,
            }
        }
    });
}
