//! Topics: create, delete, route, list.

use mq_protocol::header::{CreateTopicRequestHeader, TopicHeader};
use mq_protocol::route::{decode_json, perm, TopicList, TopicRouteData};
use mq_protocol::topic::{validate_topic, AUTO_CREATE_TOPIC_KEY_TOPIC};
use mq_protocol::{request_code, RemotingCommand};

use super::AdminClient;
use crate::error::{ClientError, Result};

/// A topic to create or update (RocketMQ's `TopicConfig` as `mqadmin
/// updateTopic` sends it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    pub topic: String,
    pub read_queue_nums: i32,
    pub write_queue_nums: i32,
    pub perm: i32,
    pub order: bool,
}

impl TopicSpec {
    /// 8 read and write queues, read-write, as `mqadmin updateTopic` defaults.
    pub fn new(topic: impl Into<String>) -> Self {
        TopicSpec {
            topic: topic.into(),
            read_queue_nums: 8,
            write_queue_nums: 8,
            perm: perm::READ | perm::WRITE,
            order: false,
        }
    }

    pub fn with_queues(mut self, read: i32, write: i32) -> Self {
        self.read_queue_nums = read;
        self.write_queue_nums = write;
        self
    }
}

impl AdminClient {
    /// UPDATE_AND_CREATE_TOPIC on the broker at `broker_addr`.
    pub async fn create_topic(&self, broker_addr: &str, spec: &TopicSpec) -> Result<()> {
        validate_topic(&spec.topic).map_err(ClientError::InvalidArgument)?;
        let header = CreateTopicRequestHeader {
            topic: spec.topic.clone(),
            default_topic: AUTO_CREATE_TOPIC_KEY_TOPIC.into(),
            read_queue_nums: spec.read_queue_nums,
            write_queue_nums: spec.write_queue_nums,
            perm: spec.perm,
            topic_filter_type: "SINGLE_TAG".into(),
            topic_sys_flag: Some(0),
            order: Some(spec.order),
        };
        let request =
            RemotingCommand::request(request_code::UPDATE_AND_CREATE_TOPIC).with_header(&header);
        self.call_broker(broker_addr, request).await?;
        Ok(())
    }

    /// Creates or updates the topic on every master of `cluster`; returns
    /// their addresses.
    pub async fn create_topic_in_cluster(
        &self,
        cluster: &str,
        spec: &TopicSpec,
    ) -> Result<Vec<String>> {
        let masters = self.cluster_masters(cluster).await?;
        for addr in &masters {
            self.create_topic(addr, spec).await?;
        }
        Ok(masters)
    }

    /// Deletes the topic from the given brokers, then from every name server.
    pub async fn delete_topic(&self, topic: &str, broker_addrs: &[String]) -> Result<()> {
        let header = TopicHeader {
            topic: topic.to_owned(),
        };
        for addr in broker_addrs {
            let request =
                RemotingCommand::request(request_code::DELETE_TOPIC_IN_BROKER).with_header(&header);
            self.call_broker(addr, request).await?;
        }
        let instance = self.instance()?;
        for addr in instance.namesrv_addrs() {
            let request = RemotingCommand::request(request_code::DELETE_TOPIC_IN_NAMESRV)
                .with_header(&header);
            crate::error::expect_success(instance.invoke(addr, request).await?)?;
        }
        Ok(())
    }

    /// Deletes the topic from every master of `cluster` and the name servers.
    pub async fn delete_topic_in_cluster(&self, cluster: &str, topic: &str) -> Result<()> {
        let masters = self.cluster_masters(cluster).await?;
        self.delete_topic(topic, &masters).await
    }

    /// GET_ROUTEINFO_BY_TOPIC, fresh from the name server.
    pub async fn topic_route(&self, topic: &str) -> Result<TopicRouteData> {
        self.instance()?.fetch_route(topic).await
    }

    /// GET_ALL_TOPIC_LIST_FROM_NAMESERVER.
    pub async fn topic_list(&self) -> Result<TopicList> {
        let response = self
            .call_namesrv(RemotingCommand::request(
                request_code::GET_ALL_TOPIC_LIST_FROM_NAMESERVER,
            ))
            .await?;
        Ok(decode_json(&response.body)?)
    }
}
