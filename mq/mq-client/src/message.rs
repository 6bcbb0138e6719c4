//! The message a producer sends.

use bytes::Bytes;
use mq_protocol::message::property;
use mq_protocol::Properties;

/// A message to send (RocketMQ's `Message`). Tags, keys, the delay level and
/// user properties all live in `properties`, as on the wire; the accessors
/// name them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub topic: String,
    pub flag: i32,
    pub body: Bytes,
    pub properties: Properties,
}

impl Message {
    /// A message for `topic` with `body`; waits for the store by default,
    /// as Java's client does.
    pub fn new(topic: impl Into<String>, body: impl Into<Bytes>) -> Self {
        let mut properties = Properties::new();
        properties.insert(property::WAIT_STORE_MSG_OK.into(), "true".into());
        Message {
            topic: topic.into(),
            flag: 0,
            body: body.into(),
            properties,
        }
    }

    /// Sets the tag (one word; consumers filter on it).
    pub fn with_tags(mut self, tags: impl Into<String>) -> Self {
        self.properties.insert(property::TAGS.into(), tags.into());
        self
    }

    /// Sets the keys (indexed by the broker for QUERY_MESSAGE).
    pub fn with_keys<I, S>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let joined = keys
            .into_iter()
            .map(|k| k.as_ref().to_owned())
            .collect::<Vec<_>>()
            .join(" ");
        self.properties.insert(property::KEYS.into(), joined);
        self
    }

    /// Sets the delay level (1 = 1 s ... 18 = 2 h with the default table; 0
    /// means no delay).
    pub fn with_delay_level(mut self, level: i32) -> Self {
        if level > 0 {
            self.properties
                .insert(property::DELAY_TIME_LEVEL.into(), level.to_string());
        } else {
            self.properties.remove(property::DELAY_TIME_LEVEL);
        }
        self
    }

    pub fn with_flag(mut self, flag: i32) -> Self {
        self.flag = flag;
        self
    }

    /// Sets a user property.
    pub fn with_property(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.insert(name.into(), value.into());
        self
    }

    pub fn tags(&self) -> Option<&str> {
        self.property(property::TAGS)
    }

    /// KEYS, split on spaces as RocketMQ does.
    pub fn keys(&self) -> Vec<&str> {
        mq_protocol::message::split_keys(self.property(property::KEYS))
    }

    pub fn delay_level(&self) -> i32 {
        self.property(property::DELAY_TIME_LEVEL)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties.get(name).map(String::as_str)
    }

    /// The client-side unique id, once the message was sent.
    pub fn unique_id(&self) -> Option<&str> {
        self.property(property::UNIQ_CLIENT_MESSAGE_ID_KEYIDX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_sets_wire_properties() {
        let msg = Message::new("T", "body")
            .with_tags("TagA")
            .with_keys(["k1", "k2"])
            .with_delay_level(3)
            .with_property("order", "42");
        assert_eq!(msg.tags(), Some("TagA"));
        assert_eq!(msg.keys(), vec!["k1", "k2"]);
        assert_eq!(msg.property("KEYS"), Some("k1 k2"));
        assert_eq!(msg.delay_level(), 3);
        assert_eq!(msg.property("DELAY"), Some("3"));
        assert_eq!(msg.property("WAIT"), Some("true"));
        assert_eq!(msg.property("order"), Some("42"));
        assert_eq!(msg.with_delay_level(0).delay_level(), 0);
    }
}
