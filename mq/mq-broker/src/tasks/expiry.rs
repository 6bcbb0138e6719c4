//! Expiry of silent clients (RocketMQ's `ClientHousekeepingService`): a
//! client without a heartbeat for `serverChannelMaxIdleTimeSeconds` is
//! forgotten and its consumer groups are told to rebalance.

use std::sync::Arc;
use std::time::Duration;

use tracing::info;

use super::Step;
use crate::broker::Broker;

/// How often silent clients are looked for.
pub(crate) const CLIENT_SCAN_INTERVAL: Duration = Duration::from_secs(10);

/// Forgets silent clients, one [`ClientExpiryService::step`] at a time.
pub(crate) struct ClientExpiryService {
    broker: Arc<Broker>,
}

impl ClientExpiryService {
    pub(crate) fn new(broker: Arc<Broker>) -> Self {
        ClientExpiryService { broker }
    }

    /// Forgets clients silent for longer than the idle limit at `now` (ms)
    /// and tells their consumer groups to rebalance.
    pub(crate) fn step(&self, now: i64) -> Step {
        let broker = &self.broker;
        let idle_ms = broker.config().server_channel_max_idle_time_seconds as i64 * 1000;
        let changed = broker.clients.expire(now - idle_ms);
        if changed.is_empty() {
            return Step::Idle;
        }
        for group in changed {
            info!(%group, "consumer group lost an idle member");
            broker.notify_consumer_ids_changed(&group);
        }
        Step::Worked
    }
}
