//! Delivery of delayed messages (RocketMQ's `ScheduleMessageService`):
//! each delay level is a queue of `SCHEDULE_TOPIC_XXXX`; a message whose
//! level's delay has passed since it was stored goes to its real topic and
//! queue, and the level's offset (`config/delayOffset.json`) moves on.

use std::sync::Arc;
use std::time::Duration;

use mq_protocol::message::{property, MessageExt};
use mq_protocol::topic;
use tracing::warn;

use super::Step;
use crate::broker::{Broker, InboundMessage};

/// Most delayed messages delivered per level in one step.
const SCHEDULE_BATCH: usize = 64;
/// How often the schedule service looks for due messages when idle.
pub(crate) const SCHEDULE_TICK: Duration = Duration::from_millis(100);

/// Delivers due delayed messages, one [`ScheduleService::step`] at a time.
pub(crate) struct ScheduleService {
    broker: Arc<Broker>,
}

impl ScheduleService {
    pub(crate) fn new(broker: Arc<Broker>) -> Self {
        ScheduleService { broker }
    }

    /// Delivers every due delayed message of every level to its real topic and
    /// advances that level's offset. At-least-once: the offset is persisted
    /// after the delivered copies are flushed.
    pub(crate) async fn step(&self, now: i64) -> Step {
        let broker = &*self.broker;
        let mut worked = Step::Idle;
        for (index, delay) in broker.delay_levels.iter().enumerate() {
            let level = index as i32 + 1;
            let queue_id = index as i32;
            let mut offset = broker.delay_offsets.get(level).max(0) as u64;
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
                let owner = self.broker.clone();
                // The offset counts on the delivered copies.
                super::off_worker("persisting delay offsets", move || {
                    crate::metadata::persist::flush_commit_log_first(&owner.store)?;
                    owner
                        .delay_offsets
                        .advance(level, offset as i64)
                        .map_err(|e| e.to_string())
                })
                .await;
            }
        }
        worked
    }
}

/// The message a delayed one becomes when its time is up: back on its real
/// topic and queue, without the delay level.
fn timed_up(mut msg: MessageExt) -> InboundMessage {
    let mut properties = std::mem::take(&mut msg.properties);
    properties.remove(property::DELAY_TIME_LEVEL);
    let topic = properties
        .get(property::REAL_TOPIC)
        .cloned()
        .unwrap_or_else(|| msg.topic.clone());
    super::on_real_queue(msg, topic, properties)
}

#[cfg(test)]
mod tests {
    use mq_protocol::message::property;
    use mq_protocol::topic;

    use super::*;
    use crate::broker::testing::{broker, broker_with_store, dispatched, message, no_timed_flush};
    use crate::config::BrokerConfig;

    #[tokio::test]
    async fn a_delayed_message_is_delivered_once_its_level_has_passed() {
        let dir = tempfile::tempdir().unwrap();
        let broker = broker(dir.path(), BrokerConfig::default());
        let stored = broker
            .put(message("T", &[(property::DELAY_TIME_LEVEL, "1")]))
            .await
            .unwrap();
        dispatched(&broker, topic::SCHEDULE_TOPIC, 0, 1).await;
        let stored_at = broker
            .store
            .look_message_by_offset(stored.wrote_offset)
            .unwrap()
            .store_timestamp;
        let service = ScheduleService::new(broker.clone());

        // Level 1 is 1 s: not due a millisecond before.
        assert_eq!(service.step(stored_at + 999).await, Step::Idle);
        assert_eq!(broker.store.max_offset_in_queue("T", 0), 0);

        assert_eq!(service.step(stored_at + 1000).await, Step::Worked);
        dispatched(&broker, "T", 0, 1).await;
        assert_eq!(broker.delay_offsets.get(1), 1);
        // Delivered once: the next step has nothing left.
        assert_eq!(service.step(stored_at + 5000).await, Step::Idle);
        assert_eq!(broker.store.max_offset_in_queue("T", 0), 1);
    }

    /// Under ASYNC_FLUSH the delivered copy is flushed before the level's
    /// offset is written: the file never counts a delivery the disk lacks.
    #[tokio::test]
    async fn a_levels_offset_is_written_after_the_delivered_copy_is_flushed() {
        let dir = tempfile::tempdir().unwrap();
        let broker = broker_with_store(dir.path(), BrokerConfig::default(), no_timed_flush);
        let stored = broker
            .put(message("T", &[(property::DELAY_TIME_LEVEL, "1")]))
            .await
            .unwrap();
        dispatched(&broker, topic::SCHEDULE_TOPIC, 0, 1).await;
        let service = ScheduleService::new(broker.clone());
        let due = stored.store_timestamp + 1000;
        assert_eq!(service.step(due).await, Step::Worked);
        dispatched(&broker, "T", 0, 1).await;
        assert_eq!(broker.delay_offsets.get(1), 1);
        assert_eq!(
            broker.store.flushed_offset(),
            broker.store.commit_log_max_offset(),
            "the delivered copy is on disk before its level's offset"
        );
    }
}
