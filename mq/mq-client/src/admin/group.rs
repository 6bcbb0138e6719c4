//! Subscription (consumer) groups.

use std::collections::BTreeMap;

use mq_protocol::client_body::{DeleteSubscriptionGroupRequestHeader, SubscriptionGroupConfig};
use mq_protocol::route::{decode_json, encode_json};
use mq_protocol::{request_code, RemotingCommand};
use serde::Deserialize;

use super::AdminClient;
use crate::error::{ClientError, Result};

/// GET_ALL_SUBSCRIPTIONGROUP_CONFIG's body (RocketMQ's
/// `SubscriptionGroupWrapper`; its data version is not needed here).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubscriptionGroupWrapper {
    #[serde(default)]
    subscription_group_table: BTreeMap<String, SubscriptionGroupConfig>,
}

impl AdminClient {
    /// UPDATE_AND_CREATE_SUBSCRIPTIONGROUP on the broker at `broker_addr`.
    pub async fn create_subscription_group(
        &self,
        broker_addr: &str,
        config: &SubscriptionGroupConfig,
    ) -> Result<()> {
        let request = RemotingCommand::request(request_code::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP)
            .with_body(encode_json(config));
        self.call_broker(broker_addr, request).await?;
        Ok(())
    }

    /// DELETE_SUBSCRIPTIONGROUP on the broker at `broker_addr`.
    pub async fn delete_subscription_group(&self, broker_addr: &str, group: &str) -> Result<()> {
        let request = RemotingCommand::request(request_code::DELETE_SUBSCRIPTIONGROUP).with_header(
            &DeleteSubscriptionGroupRequestHeader {
                group_name: group.to_owned(),
            },
        );
        self.call_broker(broker_addr, request).await?;
        Ok(())
    }

    /// GET_ALL_SUBSCRIPTIONGROUP_CONFIG: every group the broker at
    /// `broker_addr` holds, by name.
    pub async fn subscription_groups(
        &self,
        broker_addr: &str,
    ) -> Result<BTreeMap<String, SubscriptionGroupConfig>> {
        let request = RemotingCommand::request(request_code::GET_ALL_SUBSCRIPTIONGROUP_CONFIG);
        let response = self.call_broker(broker_addr, request).await?;
        let wrapper: SubscriptionGroupWrapper = decode_json(&response.body).map_err(|e| {
            ClientError::InvalidArgument(format!("bad subscription group body: {e}"))
        })?;
        Ok(wrapper.subscription_group_table)
    }
}
