//! A slave's copy of its master's metadata, every [`SYNC_INTERVAL`] (as
//! RocketMQ's SlaveSynchronize): topics, subscription groups, consumer
//! offsets and delay offsets, through the master's admin requests.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mq_protocol::route::{decode_json, TopicConfigSerializeWrapper};
use mq_protocol::{request_code, RemotingCommand};
use tracing::{debug, warn};

use super::Step;
use crate::broker::Broker;

/// How often a slave copies its master's metadata.
pub(crate) const SYNC_INTERVAL: Duration = Duration::from_secs(10);
/// How often the slave looks whether a copy is due (a new master is copied
/// from at once).
pub(crate) const SYNC_TICK: Duration = Duration::from_secs(1);
/// Longest one request to the master may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

async fn fetch(broker: &Broker, master: &str, code: i32) -> Result<bytes::Bytes, String> {
    let mut request = RemotingCommand::request(code);
    crate::registration::sign(&broker.config(), &mut request);
    let response = broker
        .namesrv_client
        .invoke(master, request, REQUEST_TIMEOUT)
        .await
        .map_err(|e| e.to_string())?;
    if response.code != 0 {
        return Err(format!(
            "code {}: {}",
            response.code,
            response.remark.as_deref().unwrap_or("")
        ));
    }
    Ok(response.body)
}

/// Copies the master's metadata, one [`SlaveSynchronize::step`] at a time.
pub(crate) struct SlaveSynchronize {
    broker: Arc<Broker>,
}

impl SlaveSynchronize {
    pub(crate) fn new(broker: Arc<Broker>) -> Self {
        SlaveSynchronize { broker }
    }

    /// One copy from the master; `Idle` when this broker is not a slave or does
    /// not know its master yet. Each table is copied on its own: one failing
    /// does not keep the others stale.
    pub(crate) async fn step(&self, now: Instant) -> Step {
        let broker = &*self.broker;
        if !broker.ha.is_slave() {
            return Step::Idle;
        }
        let Some(master) = broker.ha.master_addr() else {
            return Step::Idle;
        };
        if !broker.ha.metadata_sync_due(&master, SYNC_INTERVAL, now) {
            return Step::Idle;
        }
        let mut failures = Vec::new();
        match fetch(broker, &master, request_code::GET_ALL_TOPIC_CONFIG).await {
            Ok(body) => match decode_json::<TopicConfigSerializeWrapper>(&body) {
                Ok(wrapper) => {
                    if let Err(e) = broker.topics.replace_from_master(wrapper) {
                        failures.push(format!("topics: {e}"));
                    }
                }
                Err(e) => failures.push(format!("topics: {e}")),
            },
            Err(e) => failures.push(format!("topics: {e}")),
        }
        match fetch(
            broker,
            &master,
            request_code::GET_ALL_SUBSCRIPTIONGROUP_CONFIG,
        )
        .await
        {
            Ok(body) => {
                if let Err(e) = broker.groups.replace_from_master(&body) {
                    failures.push(format!("groups: {e}"));
                }
            }
            Err(e) => failures.push(format!("groups: {e}")),
        }
        match fetch(broker, &master, request_code::GET_ALL_CONSUMER_OFFSET).await {
            Ok(body) => {
                if let Err(e) = broker.offsets.merge_from_master(&body) {
                    failures.push(format!("consumer offsets: {e}"));
                }
            }
            Err(e) => failures.push(format!("consumer offsets: {e}")),
        }
        match fetch(broker, &master, request_code::GET_ALL_DELAY_OFFSET).await {
            Ok(body) => {
                if let Err(e) = broker.delay_offsets.replace_from_master(&body) {
                    failures.push(format!("delay offsets: {e}"));
                }
            }
            Err(e) => failures.push(format!("delay offsets: {e}")),
        }
        if failures.is_empty() {
            debug!(%master, "copied the master's metadata");
            Step::Worked
        } else {
            warn!(%master, failures = failures.join("; "), "copying the master's metadata failed");
            Step::Idle
        }
    }
}
