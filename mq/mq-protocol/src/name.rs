//! Checked topic and group names: [`TopicName`] and [`GroupName`].
//!
//! A name that arrives over the network is only a string until it passes
//! RocketMQ's rules (characters `^[%|a-zA-Z0-9_-]+$`, a topic at most
//! [`TOPIC_MAX_LENGTH`] bytes, a group at most [`GROUP_MAX_LENGTH`]). The
//! types here can only be built by the parsers that check those rules, so
//! code that takes a `TopicName` (the store, which turns topics into folder
//! names) never sees `/`, `.`, or an empty name. Parse at the edge, then pass
//! the typed name inward.

use std::borrow::Borrow;
use std::fmt;

use crate::topic::{
    DLQ_GROUP_TOPIC_PREFIX, GROUP_MAX_LENGTH, RETRY_GROUP_TOPIC_PREFIX, TOPIC_MAX_LENGTH,
};

/// Why a string is not a topic or group name; its `Display` is the remark a
/// client is answered with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NameError(String);

/// So a refusal can become any error that takes a message (`map_err(X::new)`).
impl From<NameError> for String {
    fn from(error: NameError) -> String {
        error.0
    }
}

/// Checks `name` against RocketMQ's characters and `max` bytes; `kind`
/// ("topic" or "group") names it in the refusal.
fn check(kind: &str, name: &str, max: usize) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError(format!("the {kind} name is empty")));
    }
    if name.len() > max {
        return Err(NameError(format!(
            "the {kind} name is longer than {max} characters"
        )));
    }
    if let Some(bad) = name.chars().find(|c| !is_name_char(*c)) {
        return Err(NameError(format!(
            "the {kind} name {name:?} contains {bad:?}; allowed are letters, digits, %, |, _ and -"
        )));
    }
    Ok(())
}

/// `[%|a-zA-Z0-9_-]`: none of these can climb out of a folder.
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '%' | '|' | '_' | '-')
}

macro_rules! name_type {
    ($(#[$doc:meta])* $ty:ident, $kind:literal, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $ty(String);

        impl $ty {
            /// Checks `name` against RocketMQ's rules; the only way to get one.
            pub fn parse(name: &str) -> Result<Self, NameError> {
                Self::check(name)?;
                Ok($ty(name.to_owned()))
            }

            /// What [`Self::parse`] checks, without building a name: for a
            /// hot path that only has to refuse a bad one.
            pub fn check(name: &str) -> Result<(), NameError> {
                check($kind, name, $max)
            }

            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The name as an owned string.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        /// Lets maps keyed by `String` be searched with a checked name.
        impl Borrow<str> for $ty {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl std::str::FromStr for $ty {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, NameError> {
                $ty::parse(s)
            }
        }
    };
}

name_type!(
    /// A topic name that passed RocketMQ's rules, at most [`TOPIC_MAX_LENGTH`]
    /// bytes. Only these become consume queue folders.
    TopicName,
    "topic",
    TOPIC_MAX_LENGTH
);

name_type!(
    /// A producer or consumer group name that passed RocketMQ's rules, at
    /// most [`GROUP_MAX_LENGTH`] bytes.
    GroupName,
    "group",
    GROUP_MAX_LENGTH
);

impl TopicName {
    /// `%RETRY%<group>`. Built from a checked group, so it has only name
    /// characters; like RocketMQ it may be longer than a user topic may be.
    pub fn retry(group: &GroupName) -> TopicName {
        TopicName(format!("{RETRY_GROUP_TOPIC_PREFIX}{group}"))
    }

    /// `%DLQ%<group>`, the group's dead-letter topic.
    pub fn dlq(group: &GroupName) -> TopicName {
        TopicName(format!("{DLQ_GROUP_TOPIC_PREFIX}{group}"))
    }

    /// A name the broker already holds (a stored message's topic, a folder
    /// found in the store, an internal retry or DLQ topic): the characters
    /// are checked, the user-topic length limit is not, since `%RETRY%` and
    /// `%DLQ%` of a long group are longer than [`TOPIC_MAX_LENGTH`].
    pub fn parse_internal(name: &str) -> Result<TopicName, NameError> {
        Self::check_internal(name)?;
        Ok(TopicName(name.to_owned()))
    }

    /// What [`TopicName::parse_internal`] checks, without building a name:
    /// for the store's put path, which only has to refuse a bad topic.
    pub fn check_internal(name: &str) -> Result<(), NameError> {
        check(
            "topic",
            name,
            RETRY_GROUP_TOPIC_PREFIX.len() + GROUP_MAX_LENGTH,
        )
    }

    /// The group of a `%RETRY%` or `%DLQ%` topic.
    pub fn group_of_retry_or_dlq(&self) -> Option<GroupName> {
        let group = self
            .0
            .strip_prefix(RETRY_GROUP_TOPIC_PREFIX)
            .or_else(|| self.0.strip_prefix(DLQ_GROUP_TOPIC_PREFIX))?;
        GroupName::parse(group).ok()
    }
}

impl PartialEq<str> for TopicName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<str> for GroupName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_names_parse() {
        for name in ["TopicTest", "Order_Cancel-1", "%RETRY%g", "a|b", "9"] {
            let topic = TopicName::parse(name).unwrap();
            assert_eq!(topic.as_str(), name);
            assert_eq!(topic.to_string(), name);
        }
        assert!(TopicName::parse(&"t".repeat(127)).is_ok());
        assert!(GroupName::parse(&"g".repeat(255)).is_ok());
        assert_eq!("shop-order".parse::<GroupName>().unwrap(), *"shop-order");
    }

    #[test]
    fn traversal_and_junk_are_refused() {
        for name in [
            "",
            "..",
            ".",
            "a/b",
            "sec/../../x/trav_created",
            "../../../etc",
            "%DLQ%sec/../..",
            "a\\b",
            "a b",
            "a\nb",
            "a\0b",
            "naïve",
            "a.b",
        ] {
            assert!(TopicName::parse(name).is_err(), "{name:?}");
            assert!(GroupName::parse(name).is_err(), "{name:?}");
            assert!(TopicName::parse_internal(name).is_err(), "{name:?}");
        }
        let err = TopicName::parse(&"t".repeat(128)).unwrap_err();
        assert!(err.to_string().contains("127"), "{err}");
        assert!(GroupName::parse(&"g".repeat(256)).is_err());
        let err = GroupName::parse("a/b").unwrap_err();
        assert!(String::from(err).contains("'/'"));
    }

    #[test]
    fn retry_and_dlq_topics() {
        let group = GroupName::parse(&"g".repeat(255)).unwrap();
        let retry = TopicName::retry(&group);
        assert!(retry.as_str().starts_with("%RETRY%"));
        assert_eq!(TopicName::parse_internal(retry.as_str()).unwrap(), retry);
        assert!(TopicName::parse(retry.as_str()).is_err());
        assert_eq!(retry.group_of_retry_or_dlq(), Some(group.clone()));
        let dlq = TopicName::dlq(&GroupName::parse("cg").unwrap());
        assert_eq!(dlq.as_str(), "%DLQ%cg");
        assert_eq!(dlq.group_of_retry_or_dlq().unwrap().as_str(), "cg");
        assert_eq!(TopicName::parse("T").unwrap().group_of_retry_or_dlq(), None);
    }
}
