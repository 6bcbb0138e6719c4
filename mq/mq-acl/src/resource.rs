//! What a request needs, as RocketMQ's `PlainAccessValidator.parse` and
//! `Permission.ADMIN_CODE` say, plus the name server's rules (beyond 4.x).
//!
//! Resources are borrowed from the request, so the check allocates nothing
//! on the send path.

use mq_protocol::body::HeartbeatData;
use mq_protocol::request_code as code;
use mq_protocol::route::decode_json;
use mq_protocol::topic::{DLQ_GROUP_TOPIC_PREFIX, RETRY_GROUP_TOPIC_PREFIX};
use mq_protocol::RemotingCommand;

use crate::perm::Perm;

/// Which server's table applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rules {
    /// Every request is checked (signature and account); some codes need a
    /// permission on a topic or group, the admin codes an admin account.
    Broker,
    /// Only registrations and the admin codes are checked, both need an
    /// admin account; route and cluster reads stay open to unsigned clients.
    NameServer,
}

/// One thing a request touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource<'a> {
    Topic(&'a str),
    Group(&'a str),
}

impl<'a> Resource<'a> {
    /// A topic, or its group when it is a group's retry or dead-letter topic:
    /// those follow the group's permission.
    pub fn topic(name: &'a str) -> Resource<'a> {
        match name
            .strip_prefix(RETRY_GROUP_TOPIC_PREFIX)
            .or_else(|| name.strip_prefix(DLQ_GROUP_TOPIC_PREFIX))
        {
            Some(group) => Resource::Group(group),
            None => Resource::Topic(name),
        }
    }
}

impl std::fmt::Display for Resource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Resource::Topic(t) => write!(f, "topic {t}"),
            Resource::Group(g) => write!(f, "group {g}"),
        }
    }
}

/// Whether the request is checked at all under `rules`.
pub fn is_checked(rules: Rules, request_code: i32) -> bool {
    match rules {
        Rules::Broker => true,
        Rules::NameServer => needs_admin(rules, request_code),
    }
}

/// Whether `request_code` needs an admin account.
pub fn needs_admin(rules: Rules, request_code: i32) -> bool {
    match rules {
        Rules::Broker => matches!(
            request_code,
            // RocketMQ's Permission.ADMIN_CODE ...
            code::UPDATE_AND_CREATE_TOPIC
                | code::UPDATE_BROKER_CONFIG
                | code::DELETE_TOPIC_IN_BROKER
                | code::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP
                | code::DELETE_SUBSCRIPTIONGROUP
                // ... and ours: the config (it names the store's files) and
                // the requests that delete data or move offsets.
                | code::GET_BROKER_CONFIG
                | code::TRIGGER_DELETE_FILES
                | code::CLEAN_EXPIRED_CONSUMEQUEUE
                | code::CLEAN_UNUSED_TOPIC
                | code::INVOKE_BROKER_TO_RESET_OFFSET
                | code::CLONE_GROUP_OFFSET
        ),
        Rules::NameServer => matches!(
            request_code,
            code::REGISTER_BROKER
                | code::UNREGISTER_BROKER
                | code::REGISTER_TOPIC_IN_NAMESRV
                | code::WIPE_WRITE_PERM_OF_BROKER
                | code::ADD_WRITE_PERM_OF_BROKER
                | code::DELETE_TOPIC_IN_NAMESRV
                | code::PUT_KV_CONFIG
                | code::DELETE_KV_CONFIG
                | code::UPDATE_NAMESRV_CONFIG
                | code::GET_NAMESRV_CONFIG
        ),
    }
}

/// Calls `need` with every resource the request touches and the permission
/// it needs there, stopping at the first error. `Err` from here (a body that
/// cannot be read) is a refusal remark.
pub fn each_need<E>(
    request: &RemotingCommand,
    need: &mut dyn FnMut(Resource<'_>, Perm) -> Result<(), E>,
    unreadable: impl FnOnce(String) -> E,
) -> Result<(), E> {
    let field = |key: &str| request.field(key).filter(|v| !v.is_empty());
    let group = |key: &str| field(key).map(Resource::Group);
    let mut send = |topic: Option<&str>| match topic.map(Resource::topic) {
        // A send to a retry topic is a consumer's: the group must SUB.
        Some(r @ Resource::Group(_)) => need(r, Perm::SUB),
        Some(r) => need(r, Perm::PUB),
        None => Ok(()),
    };
    match request.code {
        code::SEND_MESSAGE => send(field("topic")),
        code::SEND_MESSAGE_V2 | code::SEND_BATCH_MESSAGE => send(field("b")),
        code::END_TRANSACTION => send(field("topic")),
        code::CONSUMER_SEND_MSG_BACK => each(need, [group("group")], Perm::SUB),
        code::PULL_MESSAGE | code::UPDATE_CONSUMER_OFFSET | code::QUERY_CONSUMER_OFFSET => {
            let topic = field("topic").map(Resource::topic);
            each(need, [topic, group("consumerGroup")], Perm::SUB)
        }
        code::QUERY_MESSAGE => each(need, [field("topic").map(Resource::topic)], Perm::SUB),
        code::UNREGISTER_CLIENT | code::GET_CONSUMER_LIST_BY_GROUP => {
            each(need, [group("consumerGroup")], Perm::SUB)
        }
        code::HEART_BEAT => {
            let data: HeartbeatData = decode_json(&request.body)
                .map_err(|e| unreadable(format!("heartbeat body is not readable: {e}")))?;
            for consumer in &data.consumer_data_set {
                need(Resource::Group(&consumer.group_name), Perm::SUB)?;
                for sub in &consumer.subscription_data_set {
                    need(Resource::topic(&sub.topic), Perm::SUB)?;
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn each<E, const N: usize>(
    need: &mut dyn FnMut(Resource<'_>, Perm) -> Result<(), E>,
    resources: [Option<Resource<'_>>; N],
    perm: Perm,
) -> Result<(), E> {
    resources
        .into_iter()
        .flatten()
        .try_for_each(|r| need(r, perm))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn needs(request: &RemotingCommand) -> Vec<String> {
        let mut out = Vec::new();
        each_need::<String>(
            request,
            &mut |r, p| {
                out.push(format!("{r} {p}"));
                Ok(())
            },
            |e| e,
        )
        .unwrap();
        out
    }

    #[test]
    fn table_as_plain_access_validator() {
        let send = RemotingCommand::request(code::SEND_MESSAGE_V2)
            .with_field("a", "pg")
            .with_field("b", "T");
        assert_eq!(needs(&send), ["topic T PUB"]);
        let retry = RemotingCommand::request(code::SEND_MESSAGE).with_field("topic", "%RETRY%g");
        assert_eq!(needs(&retry), ["group g SUB"]);
        let pull = RemotingCommand::request(code::PULL_MESSAGE)
            .with_field("topic", "T")
            .with_field("consumerGroup", "g");
        assert_eq!(needs(&pull), ["topic T SUB", "group g SUB"]);
        let back = RemotingCommand::request(code::CONSUMER_SEND_MSG_BACK).with_field("group", "g");
        assert_eq!(needs(&back), ["group g SUB"]);
        let hb = RemotingCommand::request(code::HEART_BEAT).with_body(
            r#"{"clientID":"c","producerDataSet":[{"groupName":"pg"}],
               "consumerDataSet":[{"groupName":"g","subscriptionDataSet":[{"topic":"T"},{"topic":"%RETRY%g"}]}]}"#,
        );
        assert_eq!(needs(&hb), ["group g SUB", "topic T SUB", "group g SUB"]);
        assert!(needs_admin(Rules::Broker, code::DELETE_TOPIC_IN_BROKER));
        assert!(!needs_admin(Rules::Broker, code::SEND_MESSAGE));
        assert!(is_checked(Rules::NameServer, code::REGISTER_BROKER));
        assert!(!is_checked(Rules::NameServer, code::GET_ROUTEINFO_BY_TOPIC));
    }
}
