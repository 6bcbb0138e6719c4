//! Subscription (consumer) groups.

use mq_protocol::client_body::{DeleteSubscriptionGroupRequestHeader, SubscriptionGroupConfig};
use mq_protocol::route::encode_json;
use mq_protocol::{request_code, RemotingCommand};

use super::AdminClient;
use crate::error::Result;

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
}
