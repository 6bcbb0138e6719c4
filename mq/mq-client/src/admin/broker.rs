//! A broker's configuration, runtime figures and housekeeping.

use std::collections::BTreeMap;

use mq_protocol::route::{decode_json, KvTable, TopicConfigSerializeWrapper};
use mq_protocol::{request_code, RemotingCommand};

use super::AdminClient;
use crate::error::{ClientError, Result};

/// `key=value` lines as `.properties` text.
pub(crate) fn properties_text(entries: &[(String, String)]) -> Vec<u8> {
    entries
        .iter()
        .map(|(k, v)| format!("{k}={v}\n"))
        .collect::<String>()
        .into_bytes()
}

/// `.properties` text as sorted entries.
pub(crate) fn parse_properties(body: &[u8]) -> Result<BTreeMap<String, String>> {
    let text = String::from_utf8_lossy(body);
    let entries = mq_protocol::properties::parse(&text)
        .map_err(|e| ClientError::InvalidArgument(format!("bad properties body: {e}")))?;
    Ok(entries.into_iter().map(|e| (e.key, e.value)).collect())
}

impl AdminClient {
    /// UPDATE_BROKER_CONFIG: the broker applies the keys and writes them to
    /// its config file.
    pub async fn update_broker_config(
        &self,
        addr: &str,
        entries: &[(String, String)],
    ) -> Result<()> {
        let request = RemotingCommand::request(request_code::UPDATE_BROKER_CONFIG)
            .with_body(properties_text(entries));
        self.call_broker(addr, request).await?;
        Ok(())
    }

    /// GET_BROKER_CONFIG: every key of the broker and its store.
    pub async fn broker_config(&self, addr: &str) -> Result<BTreeMap<String, String>> {
        let response = self
            .call_broker(
                addr,
                RemotingCommand::request(request_code::GET_BROKER_CONFIG),
            )
            .await?;
        parse_properties(&response.body)
    }

    /// GET_BROKER_RUNTIME_INFO.
    pub async fn broker_runtime_info(&self, addr: &str) -> Result<BTreeMap<String, String>> {
        let response = self
            .call_broker(
                addr,
                RemotingCommand::request(request_code::GET_BROKER_RUNTIME_INFO),
            )
            .await?;
        let table: KvTable = decode_json(&response.body)
            .map_err(|e| ClientError::InvalidArgument(format!("bad runtime info body: {e}")))?;
        Ok(table.table)
    }

    /// GET_ALL_TOPIC_CONFIG: the broker's topic table.
    pub async fn broker_topic_configs(&self, addr: &str) -> Result<TopicConfigSerializeWrapper> {
        let response = self
            .call_broker(
                addr,
                RemotingCommand::request(request_code::GET_ALL_TOPIC_CONFIG),
            )
            .await?;
        decode_json(&response.body)
            .map_err(|e| ClientError::InvalidArgument(format!("bad topic config body: {e}")))
    }

    /// CLEAN_EXPIRED_CONSUMEQUEUE; returns the broker's remark.
    pub async fn clean_expired_consume_queue(&self, addr: &str) -> Result<String> {
        self.broker_remark(addr, request_code::CLEAN_EXPIRED_CONSUMEQUEUE)
            .await
    }

    /// CLEAN_UNUSED_TOPIC; returns the broker's remark.
    pub async fn clean_unused_topic(&self, addr: &str) -> Result<String> {
        self.broker_remark(addr, request_code::CLEAN_UNUSED_TOPIC)
            .await
    }

    /// A request of `code` with neither header nor body; the broker's remark.
    async fn broker_remark(&self, addr: &str, code: i32) -> Result<String> {
        let response = self
            .call_broker(addr, RemotingCommand::request(code))
            .await?;
        Ok(response.remark.unwrap_or_default())
    }
}
