//! Where a producer's queues come from: a table of each topic's
//! [`TopicPublishInfo`], rebuilt when the instance's cached route changes,
//! and `TBW102`'s brokers for a topic without a route yet (the broker then
//! creates the topic on the first send).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use mq_protocol::topic::AUTO_CREATE_TOPIC_KEY_TOPIC;

use super::queue::TopicPublishInfo;
use crate::error::{ClientError, Result};
use crate::instance::ClientInstance;
use crate::sync::lock;

/// The publish info of every topic a producer sent to.
#[derive(Default)]
pub(super) struct PublishTable {
    topics: Mutex<HashMap<String, Arc<TopicPublishInfo>>>,
}

impl PublishTable {
    /// The topic's writable queues: from its route, else from `TBW102`'s
    /// route (each broker capped at `default_queue_nums` queues) so that
    /// the first send auto-creates the topic.
    pub(super) async fn get(
        &self,
        instance: &Arc<ClientInstance>,
        topic: &str,
        default_queue_nums: i32,
    ) -> Result<Arc<TopicPublishInfo>> {
        let cached = lock(&self.topics).get(topic).cloned();
        let route = match instance.cached_route(topic) {
            Some(route) => Some(route),
            None if cached.is_some() => None,
            None => match instance.update_route(topic).await {
                Ok(route) => Some(route),
                Err(ClientError::NoRoute { .. }) => None,
                Err(error) => return Err(error),
            },
        };
        if let Some(route) = route {
            if let Some(info) = &cached {
                if info.route.as_ref().is_some_and(|r| Arc::ptr_eq(r, &route)) {
                    return Ok(info.clone());
                }
            }
            let mut info = TopicPublishInfo::from_route(topic, &route, None);
            if !info.queues.is_empty() {
                info.route = Some(route);
                return Ok(self.remember(topic, info));
            }
        }
        if let Some(info) = cached {
            return Ok(info);
        }
        // No route yet: borrow TBW102's brokers; the broker creates the topic.
        instance.watch_topic(topic);
        let template = instance
            .fetch_route(AUTO_CREATE_TOPIC_KEY_TOPIC)
            .await
            .map_err(|error| match error {
                ClientError::NoRoute { .. } => ClientError::NoRoute {
                    topic: topic.to_owned(),
                },
                other => other,
            })?;
        instance.remember_brokers(&template);
        let info = TopicPublishInfo::from_route(topic, &template, Some(default_queue_nums));
        if info.queues.is_empty() {
            return Err(ClientError::NoRoute {
                topic: topic.to_owned(),
            });
        }
        Ok(self.remember(topic, info))
    }

    fn remember(&self, topic: &str, info: TopicPublishInfo) -> Arc<TopicPublishInfo> {
        let info = Arc::new(info);
        lock(&self.topics).insert(topic.to_owned(), info.clone());
        info
    }
}
