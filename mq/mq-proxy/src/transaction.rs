//! 5.x transactions over 4.x half messages: the transaction id handed to
//! the SDK names the half message (broker, commit log offset, queue
//! offset), so EndTransaction needs no state in the proxy and survives a
//! proxy restart; the broker's check-backs (to the proxy's transaction
//! producer group) go to a producer of the topic as
//! RecoverOrphanedTransactionCommand, whose EndTransaction then ends it.

use std::sync::Arc;

use mq_client::{LocalTransactionState, TransactionChecker, TransactionHandle};
use mq_protocol::message::property;
use mq_protocol::MessageExt;
use tracing::{debug, warn};

use crate::convert;
use crate::pb::{
    telemetry_command::Command, Code, RecoverOrphanedTransactionCommand, TelemetryCommand,
};
use crate::sessions::Sessions;
use crate::status::ProxyError;
use crate::TRANSACTION_PRODUCER_GROUP;

/// Where a half message is: what a transaction id encodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HalfRef {
    pub broker_addr: String,
    pub commit_log_offset: i64,
    pub queue_offset: i64,
}

impl HalfRef {
    /// `<broker addr>/<commit log offset>/<queue offset>`.
    pub fn encode(&self) -> String {
        format!(
            "{}/{}/{}",
            self.broker_addr, self.commit_log_offset, self.queue_offset
        )
    }

    pub fn decode(id: &str) -> Result<HalfRef, ProxyError> {
        let invalid = || {
            ProxyError::new(
                Code::InvalidTransactionId,
                format!("{id:?} is not a transaction id of this proxy"),
            )
        };
        let mut parts = id.rsplitn(3, '/');
        let queue_offset = parts
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or_else(invalid)?;
        let commit_log_offset = parts
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or_else(invalid)?;
        let broker_addr = parts.next().filter(|a| !a.is_empty()).ok_or_else(invalid)?;
        if broker_addr.parse::<std::net::SocketAddr>().is_err() {
            return Err(invalid());
        }
        Ok(HalfRef {
            broker_addr: broker_addr.to_owned(),
            commit_log_offset,
            queue_offset,
        })
    }

    /// What END_TRANSACTION of this half message needs.
    pub fn handle(&self, topic: &str, message_id: &str) -> TransactionHandle {
        TransactionHandle {
            broker_addr: self.broker_addr.clone(),
            topic: topic.to_owned(),
            producer_group: TRANSACTION_PRODUCER_GROUP.to_owned(),
            commit_log_offset: self.commit_log_offset,
            queue_offset: self.queue_offset,
            msg_id: message_id.to_owned(),
            transaction_id: Some(message_id.to_owned()),
        }
    }
}

/// Answers the broker's CHECK_TRANSACTION_STATE by asking a 5.x producer
/// of the topic; the state it reports comes back as EndTransaction (the
/// broker hears `Unknown` now and the outcome from that).
pub(crate) struct CheckForwarder {
    sessions: Arc<Sessions>,
}

impl CheckForwarder {
    pub fn new(sessions: Arc<Sessions>) -> Self {
        CheckForwarder { sessions }
    }
}

#[mq_client::async_trait]
impl TransactionChecker for CheckForwarder {
    async fn check(&self, msg: &MessageExt) -> LocalTransactionState {
        let topic = msg
            .property(property::REAL_TOPIC)
            .unwrap_or(&msg.topic)
            .to_owned();
        let half = HalfRef {
            broker_addr: msg.store_host.to_string(),
            commit_log_offset: msg.commit_log_offset,
            queue_offset: msg.queue_offset,
        };
        let command = TelemetryCommand {
            status: None,
            command: Some(Command::RecoverOrphanedTransactionCommand(
                RecoverOrphanedTransactionCommand {
                    message: Some(convert::inbound(msg, &topic)),
                    transaction_id: half.encode(),
                },
            )),
        };
        for outbox in self.sessions.producers_of(&topic) {
            if outbox.try_send(Ok(command.clone())).is_ok() {
                debug!(
                    topic,
                    id = half.encode(),
                    "check-back forwarded to a producer"
                );
                return LocalTransactionState::Unknown;
            }
        }
        warn!(
            topic,
            "check-back for a topic with no 5.x producer connected here"
        );
        LocalTransactionState::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transaction_ids_round_trip_and_junk_is_refused() {
        let half = HalfRef {
            broker_addr: "127.0.0.1:10911".into(),
            commit_log_offset: 4096,
            queue_offset: 3,
        };
        assert_eq!(half.encode(), "127.0.0.1:10911/4096/3");
        assert_eq!(HalfRef::decode(&half.encode()).unwrap(), half);
        for junk in [
            "",
            "x",
            "1/2",
            "a/1/2",
            "127.0.0.1:1/x/2",
            "/1/2",
            "127.0.0.1:1/1/",
        ] {
            assert_eq!(
                HalfRef::decode(junk).unwrap_err().code,
                Code::InvalidTransactionId,
                "{junk:?}"
            );
        }
        let handle = half.handle("T", "ID");
        assert_eq!(handle.producer_group, TRANSACTION_PRODUCER_GROUP);
        assert_eq!((handle.commit_log_offset, handle.queue_offset), (4096, 3));
    }
}
