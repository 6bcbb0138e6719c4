//! What a consumer subscribes to in a topic (RocketMQ's `MessageSelector`):
//! a tag expression, or a SQL92 filter over the messages' properties that
//! the broker evaluates (it needs `enablePropertyFilter=true`).

use mq_protocol::body::SubscriptionData;
use mq_protocol::filter::ExpressionType;

use crate::error::{ClientError, Result};

/// A subscription's expression and how the broker reads it. A `&str`
/// converts to a tag expression, so `subscribe(topic, "TagA || TagB")`
/// reads as before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageSelector {
    expression_type: ExpressionType,
    expression: String,
}

impl MessageSelector {
    /// `*` (every message) or tags separated by `||`.
    pub fn by_tag(expression: impl Into<String>) -> Self {
        MessageSelector {
            expression_type: ExpressionType::Tag,
            expression: expression.into(),
        }
    }

    /// A SQL92 filter over message properties, such as
    /// `a > 5 AND region IN ('eu', 'us')` (RocketMQ's
    /// `MessageSelector.bySql`). The broker checks it: one that does not
    /// parse, or a broker whose property filter is off, fails the
    /// consumer's start (push) or the pull.
    pub fn by_sql(expression: impl Into<String>) -> Self {
        MessageSelector {
            expression_type: ExpressionType::Sql92,
            expression: expression.into(),
        }
    }

    /// Every message of the topic.
    pub fn all() -> Self {
        Self::by_tag("*")
    }

    pub fn expression_type(&self) -> ExpressionType {
        self.expression_type
    }

    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The subscription of `topic` this selector makes, as heartbeats and
    /// pulls carry it.
    pub(crate) fn subscription(&self, topic: &str, sub_version: i64) -> Result<SubscriptionData> {
        SubscriptionData::build(
            topic,
            &self.expression,
            Some(self.expression_type.as_str()),
            sub_version,
        )
        .map_err(ClientError::InvalidArgument)
    }
}

impl From<&str> for MessageSelector {
    fn from(expression: &str) -> Self {
        Self::by_tag(expression)
    }
}

impl From<&String> for MessageSelector {
    fn from(expression: &String) -> Self {
        Self::by_tag(expression.as_str())
    }
}

impl From<String> for MessageSelector {
    fn from(expression: String) -> Self {
        Self::by_tag(expression)
    }
}

impl From<&MessageSelector> for MessageSelector {
    fn from(selector: &MessageSelector) -> Self {
        selector.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_make_subscriptions_of_their_type() {
        let tags = MessageSelector::from("A || B")
            .subscription("T", 1)
            .unwrap();
        assert_eq!(tags, SubscriptionData::parse("T", "A || B", 1));
        let sql = MessageSelector::by_sql("a > 5")
            .subscription("T", 1)
            .unwrap();
        assert_eq!(sql.expression_type, "SQL92");
        assert_eq!(sql.sub_string, "a > 5");
        assert!(sql.tags_set.is_empty());
        assert!(matches!(
            MessageSelector::by_sql("  ").subscription("T", 1),
            Err(ClientError::InvalidArgument(_))
        ));
        assert_eq!(MessageSelector::all(), MessageSelector::by_tag("*"));
    }
}
