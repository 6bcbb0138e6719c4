//! Topic and group names that mean something to the broker, and the rules
//! for names users choose.

/// The template topic that auto-created topics copy (RocketMQ's `TBW102`).
pub const AUTO_CREATE_TOPIC_KEY_TOPIC: &str = "TBW102";
pub const SELF_TEST_TOPIC: &str = "SELF_TEST_TOPIC";
pub const OFFSET_MOVED_EVENT: &str = "OFFSET_MOVED_EVENT";
/// Delayed messages wait here, one queue per delay level.
pub const SCHEDULE_TOPIC: &str = "SCHEDULE_TOPIC_XXXX";
/// Timer messages (RocketMQ 5's `TimerMessageStore.TIMER_TOPIC`) wait in
/// its queue 0 until their `TIMER_OUT_MS`.
pub const TIMER_TOPIC: &str = "rmq_sys_wheel_timer";
/// Half (prepared) transactional messages.
pub const TRANS_HALF_TOPIC: &str = "RMQ_SYS_TRANS_HALF_TOPIC";
/// Outcomes of half messages (commit or rollback markers).
pub const TRANS_OP_HALF_TOPIC: &str = "RMQ_SYS_TRANS_OP_HALF_TOPIC";
/// Half messages discarded after too many check-backs.
pub const TRANS_CHECK_MAX_TIME_TOPIC: &str = "TRANS_CHECK_MAX_TIME_TOPIC";
/// Prefix of a consumer group's retry topic.
pub const RETRY_GROUP_TOPIC_PREFIX: &str = "%RETRY%";
/// Prefix of a consumer group's dead-letter topic.
pub const DLQ_GROUP_TOPIC_PREFIX: &str = "%DLQ%";
/// The longest topic name RocketMQ 4.x accepts.
pub const TOPIC_MAX_LENGTH: usize = 127;
/// The longest group name.
pub const GROUP_MAX_LENGTH: usize = 255;

/// `%RETRY%<group>`.
pub fn retry_topic(group: &str) -> String {
    format!("{RETRY_GROUP_TOPIC_PREFIX}{group}")
}

/// `%DLQ%<group>`.
pub fn dlq_topic(group: &str) -> String {
    format!("{DLQ_GROUP_TOPIC_PREFIX}{group}")
}

/// Topics the broker keeps for itself; clients may not send to them directly.
pub fn is_system_topic(topic: &str) -> bool {
    matches!(
        topic,
        AUTO_CREATE_TOPIC_KEY_TOPIC
            | SELF_TEST_TOPIC
            | OFFSET_MOVED_EVENT
            | SCHEDULE_TOPIC
            | TRANS_HALF_TOPIC
            | TRANS_OP_HALF_TOPIC
            | TRANS_CHECK_MAX_TIME_TOPIC
    ) || topic.starts_with("rmq_sys_")
        || topic.starts_with("RMQ_SYS_")
}

/// Checks a topic name a user chose: `^[%|a-zA-Z0-9_-]+$`, at most
/// [`TOPIC_MAX_LENGTH`] bytes. Returns why it is refused. Code that keeps
/// the name should parse it into a [`TopicName`](crate::name::TopicName).
pub fn validate_topic(topic: &str) -> Result<(), String> {
    crate::name::TopicName::parse(topic)
        .map(drop)
        .map_err(String::from)
}

/// Checks a group name: the same characters as a topic, at most
/// [`GROUP_MAX_LENGTH`] bytes (see [`GroupName`](crate::name::GroupName)).
pub fn validate_group(group: &str) -> Result<(), String> {
    crate::name::GroupName::parse(group)
        .map(drop)
        .map_err(String::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(retry_topic("g1"), "%RETRY%g1");
        assert_eq!(dlq_topic("g1"), "%DLQ%g1");
        assert!(is_system_topic(SCHEDULE_TOPIC));
        assert!(is_system_topic(TIMER_TOPIC));
        assert!(is_system_topic("RMQ_SYS_TRACE_TOPIC"));
        assert!(!is_system_topic("TopicTest"));
    }

    #[test]
    fn validation() {
        assert!(validate_topic("Order_Cancel-1").is_ok());
        assert!(validate_topic("%RETRY%g").is_ok());
        assert!(validate_topic("").is_err());
        assert!(validate_topic("a b").is_err());
        assert!(validate_topic("naïve").is_err());
        assert!(validate_topic(&"t".repeat(128)).is_err());
        assert!(validate_topic(&"t".repeat(127)).is_ok());
        assert!(validate_group("shop-order").is_ok());
        assert!(validate_group("a/b").is_err());
    }
}
