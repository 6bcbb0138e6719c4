//! Finding messages: by key, by offset message id.

use mq_protocol::header::{QueryMessageRequestHeader, ViewMessageRequestHeader};
use mq_protocol::message::decode_message_id;
use mq_protocol::{request_code, MessageExt, RemotingCommand, ResponseCode};

use super::AdminClient;
use crate::compress::inflate;
use crate::error::{expect_success, Result};

impl AdminClient {
    /// QUERY_MESSAGE to every broker of the topic: up to `max` messages per
    /// broker whose key is `key`, stored between `begin` and `end` (Unix ms).
    pub async fn query_message_by_key(
        &self,
        topic: &str,
        key: &str,
        max: i32,
        begin: i64,
        end: i64,
    ) -> Result<Vec<MessageExt>> {
        self.query_index(topic, key, max, begin, end, false).await
    }

    /// The messages of `topic` whose client-side unique id (UNIQ_KEY) is
    /// `msg_id`: usually one, more if it was sent again (a retry).
    pub async fn query_message_by_unique_key(
        &self,
        topic: &str,
        msg_id: &str,
    ) -> Result<Vec<MessageExt>> {
        self.query_index(topic, msg_id, 32, 0, i64::MAX, true).await
    }

    async fn query_index(
        &self,
        topic: &str,
        key: &str,
        max: i32,
        begin: i64,
        end: i64,
        unique: bool,
    ) -> Result<Vec<MessageExt>> {
        let instance = self.instance()?;
        let route = instance.update_route(topic).await?;
        let mut found = Vec::new();
        for broker in &route.broker_datas {
            let Some(addr) = broker.select_broker_addr() else {
                continue;
            };
            let mut request = RemotingCommand::request(request_code::QUERY_MESSAGE).with_header(
                &QueryMessageRequestHeader {
                    topic: topic.to_owned(),
                    key: key.to_owned(),
                    max_num: max,
                    begin_timestamp: begin,
                    end_timestamp: end,
                },
            );
            if unique {
                request = request.with_field("_UNIQUE_KEY_QUERY", "true");
            }
            let response = instance.invoke(addr, request).await?;
            if response.code == i32::from(ResponseCode::QUERY_NOT_FOUND) {
                continue;
            }
            let response = expect_success(response)?;
            for mut msg in MessageExt::decode_all(&response.body)? {
                // The index matches key hashes; keep exact matches only.
                let matches = if unique {
                    msg.property("UNIQ_KEY") == Some(key)
                } else {
                    msg.keys().contains(&key)
                };
                if msg.topic == topic && matches {
                    inflate(&mut msg)?;
                    found.push(msg);
                }
            }
        }
        found.sort_by_key(|m| m.store_timestamp);
        Ok(found)
    }

    /// VIEW_MESSAGE_BY_ID: the message an offset message id points at.
    pub async fn view_message(&self, offset_msg_id: &str) -> Result<MessageExt> {
        let (host, offset) = decode_message_id(offset_msg_id)?;
        let request = RemotingCommand::request(request_code::VIEW_MESSAGE_BY_ID).with_header(
            &ViewMessageRequestHeader {
                topic: None,
                offset,
            },
        );
        let response = self.call_broker(&host.to_string(), request).await?;
        let (mut msg, _) = MessageExt::decode(&response.body, false)?;
        inflate(&mut msg)?;
        Ok(msg)
    }
}
