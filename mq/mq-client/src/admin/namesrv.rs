//! Name server administration: KV configuration, the name servers' own
//! configuration, and a broker's write permission. Writes go to every name
//! server, as RocketMQ's tools do.

use std::collections::BTreeMap;

use mq_protocol::header::{BrokerNameHeader, KvConfigHeader, NamespaceHeader};
use mq_protocol::route::{decode_json, KvTable};
use mq_protocol::{request_code, RemotingCommand, ResponseCode};

use super::broker::{parse_properties, properties_text};
use super::AdminClient;
use crate::error::expect_success;
use crate::error::{ClientError, Result};

impl AdminClient {
    /// The name server addresses this client was given.
    pub fn namesrv_addrs(&self) -> Result<Vec<String>> {
        Ok(self.instance()?.namesrv_addrs().to_vec())
    }

    /// Sends `request` to the name server at `addr`; anything but SUCCESS is
    /// an error.
    pub async fn call_namesrv_at(
        &self,
        addr: &str,
        request: RemotingCommand,
    ) -> Result<RemotingCommand> {
        expect_success(self.instance()?.invoke(addr, request).await?)
    }

    /// PUT_KV_CONFIG on every name server.
    pub async fn put_kv_config(&self, namespace: &str, key: &str, value: &str) -> Result<()> {
        for addr in self.namesrv_addrs()? {
            let request = RemotingCommand::request(request_code::PUT_KV_CONFIG).with_header(
                &KvConfigHeader {
                    namespace: namespace.to_owned(),
                    key: key.to_owned(),
                    value: Some(value.to_owned()),
                },
            );
            self.call_namesrv_at(&addr, request).await?;
        }
        Ok(())
    }

    /// GET_KV_CONFIG; `None` when the key is not set.
    pub async fn get_kv_config(&self, namespace: &str, key: &str) -> Result<Option<String>> {
        let request =
            RemotingCommand::request(request_code::GET_KV_CONFIG).with_header(&KvConfigHeader {
                namespace: namespace.to_owned(),
                key: key.to_owned(),
                value: None,
            });
        let response = self.instance()?.invoke_namesrv(request).await?;
        if response.code == i32::from(ResponseCode::QUERY_NOT_FOUND) {
            return Ok(None);
        }
        let response = expect_success(response)?;
        Ok(response.field("value").map(str::to_owned))
    }

    /// DELETE_KV_CONFIG on every name server.
    pub async fn delete_kv_config(&self, namespace: &str, key: &str) -> Result<()> {
        for addr in self.namesrv_addrs()? {
            let request = RemotingCommand::request(request_code::DELETE_KV_CONFIG).with_header(
                &KvConfigHeader {
                    namespace: namespace.to_owned(),
                    key: key.to_owned(),
                    value: None,
                },
            );
            self.call_namesrv_at(&addr, request).await?;
        }
        Ok(())
    }

    /// GET_KVLIST_BY_NAMESPACE; empty when the namespace has no key.
    pub async fn kv_list(&self, namespace: &str) -> Result<BTreeMap<String, String>> {
        let request = RemotingCommand::request(request_code::GET_KVLIST_BY_NAMESPACE).with_header(
            &NamespaceHeader {
                namespace: namespace.to_owned(),
            },
        );
        let response = self.instance()?.invoke_namesrv(request).await?;
        if response.code == i32::from(ResponseCode::QUERY_NOT_FOUND) {
            return Ok(BTreeMap::new());
        }
        let response = expect_success(response)?;
        let table: KvTable = decode_json(&response.body)
            .map_err(|e| ClientError::InvalidArgument(format!("bad KV table body: {e}")))?;
        Ok(table.table)
    }

    /// GET_NAMESRV_CONFIG of one name server.
    pub async fn namesrv_config(&self, addr: &str) -> Result<BTreeMap<String, String>> {
        let response = self
            .call_namesrv_at(
                addr,
                RemotingCommand::request(request_code::GET_NAMESRV_CONFIG),
            )
            .await?;
        parse_properties(&response.body)
    }

    /// UPDATE_NAMESRV_CONFIG on every name server.
    pub async fn update_namesrv_config(&self, entries: &[(String, String)]) -> Result<()> {
        for addr in self.namesrv_addrs()? {
            let request = RemotingCommand::request(request_code::UPDATE_NAMESRV_CONFIG)
                .with_body(properties_text(entries));
            self.call_namesrv_at(&addr, request).await?;
        }
        Ok(())
    }

    /// WIPE_WRITE_PERM_OF_BROKER on the name server at `addr`: returns how
    /// many topics lost their write permission there.
    pub async fn wipe_write_perm(&self, addr: &str, broker_name: &str) -> Result<i32> {
        let request = RemotingCommand::request(request_code::WIPE_WRITE_PERM_OF_BROKER)
            .with_header(&BrokerNameHeader {
                broker_name: broker_name.to_owned(),
            });
        let response = self.call_namesrv_at(addr, request).await?;
        Ok(response
            .field("wipeTopicCount")
            .and_then(|c| c.trim().parse().ok())
            .unwrap_or(0))
    }
}
