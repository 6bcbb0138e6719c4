//! The broker's name server registration: REGISTER_BROKER with its topics
//! (periodically, and at once when topics change), and UNREGISTER_BROKER at
//! shutdown. On a slave, a registration's answer says where the master is.

use std::sync::Arc;
use std::time::Duration;

use mq_protocol::request_code;
use mq_protocol::route::{encode_json, RegisterBrokerBody};
use mq_protocol::RemotingCommand;
use tracing::{debug, warn};

use crate::broker::Broker;
use crate::config::BrokerConfig;

/// The longest a request that changed topics waits for the registration
/// it started; past it the registration goes on in the background (a dead
/// name server must not hold a send for `registerBrokerTimeoutMills` and
/// make its client time out and send again).
const REGISTRATION_WAIT: Duration = Duration::from_secs(1);

/// Registers with the name servers when topics changed since the last
/// registration (a topic auto-created by a send, a retry topic created by
/// a heartbeat, a topic created or deleted by an admin), and returns once
/// every name server answered, or after [`REGISTRATION_WAIT`]. The request
/// that made the change is answered after this, as RocketMQ's broker sends
/// its registration before it answers: a client told SEND_OK for an
/// auto-created topic, or an admin told a topic was created, finds its
/// route at the name server at once instead of racing the registration.
pub(crate) async fn register_if_topics_changed(broker: &Arc<Broker>) {
    if !broker.topics.claim_unregistered_change() {
        return;
    }
    if tokio::time::timeout(REGISTRATION_WAIT, register_soon(broker))
        .await
        .is_err()
    {
        debug!("the registration goes on in the background; answering without it");
    }
}

/// Registers in the background, now; the handle tells when it is done.
pub(crate) fn register_soon(broker: &Arc<Broker>) -> tokio::task::JoinHandle<()> {
    let broker = broker.clone();
    tokio::spawn(async move { register_all(&broker).await })
}

/// The REGISTER_BROKER request for this broker's current topics.
pub(crate) fn register_request(broker: &Broker) -> RemotingCommand {
    let config = broker.config();
    let wrapper = broker.topics.wrapper_to_register();
    let body = encode_json(&RegisterBrokerBody {
        topic_config_serialize_wrapper: wrapper,
        filter_server_list: Vec::new(),
    });
    let mut request = RemotingCommand::request(request_code::REGISTER_BROKER)
        .with_field("brokerAddr", broker.broker_addr())
        .with_field("brokerName", &config.broker_name)
        .with_field("brokerId", config.broker_id)
        .with_field("clusterName", &config.broker_cluster_name)
        .with_field("haServerAddr", broker.ha_addr.to_string())
        .with_field("compressed", false)
        .with_field("bodyCrc32", mq_protocol::message::body_crc(&body))
        .with_body(body);
    sign(&config, &mut request);
    request
}

/// Signs a request the broker sends (registrations, a slave's requests to
/// its master) with `accessKey`/`secretKey`, so a name server or master with
/// ACL on accepts it; unsigned when no key is configured.
pub(crate) fn sign(config: &BrokerConfig, request: &mut RemotingCommand) {
    if !config.access_key.is_empty() {
        mq_protocol::acl::sign_request(request, &config.access_key, &config.secret_key, None);
    }
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
                            .map(str::to_owned)
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
        let mut request = RemotingCommand::request(request_code::UNREGISTER_BROKER)
            .with_field("brokerAddr", broker.broker_addr())
            .with_field("brokerName", &config.broker_name)
            .with_field("brokerId", config.broker_id)
            .with_field("clusterName", &config.broker_cluster_name);
        sign(&config, &mut request);
        if let Err(e) = broker
            .namesrv_client
            .invoke(&addr, request, Duration::from_secs(3))
            .await
        {
            warn!(namesrv = %addr, error = %e, "unregistering from the name server failed");
        }
    }
}
