//! Topic, group and broker administration: UPDATE_AND_CREATE_TOPIC,
//! DELETE_TOPIC_IN_BROKER, GET_ALL_TOPIC_CONFIG,
//! UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, DELETE_SUBSCRIPTIONGROUP,
//! GET_ALL_SUBSCRIPTIONGROUP_CONFIG, GET_BROKER_CONFIG,
//! GET_BROKER_RUNTIME_INFO, GET_ALL_CONSUMER_OFFSET, GET_ALL_DELAY_OFFSET,
//! GET_TIMER_CHECK_POINT.

use std::collections::BTreeMap;
use std::sync::Arc;

use mq_protocol::header::{CreateTopicRequestHeader, TimerCheckpointResponseHeader, TopicHeader};
use mq_protocol::name::{GroupName, TopicName};
use mq_protocol::route::{decode_json, encode_json, perm, KvTable, TopicConfig, TopicFilterType};
use mq_protocol::{topic, RemotingCommand};
use serde::Serialize;
use tracing::warn;

use super::error::{ProcessError, Processed};
use super::success;
use crate::broker::Broker;
use crate::metadata::groups::SubscriptionGroupConfig;
use crate::metadata::timer::TimerCheckpoint;
use crate::util::now_ms;

/// UPDATE_AND_CREATE_TOPIC.
pub(crate) fn create_topic(broker: &Arc<Broker>, request: &RemotingCommand) -> Processed {
    let header: CreateTopicRequestHeader = request.header()?;
    TopicName::parse(&header.topic).map_err(ProcessError::system)?;
    if header.topic == broker.config().broker_cluster_name {
        return Err(ProcessError::system(format!(
            "the topic[{}] is conflict with system reserved words",
            header.topic
        )));
    }
    if !(1..=1024).contains(&header.read_queue_nums)
        || !(1..=1024).contains(&header.write_queue_nums)
    {
        return Err(ProcessError::system(
            "queue numbers must be within 1..=1024",
        ));
    }
    if header.perm & !(perm::READ | perm::WRITE | perm::INHERIT) != 0 {
        return Err(ProcessError::system(format!(
            "invalid perm {}",
            header.perm
        )));
    }
    let filter = if header.topic_filter_type == "MULTI_TAG" {
        TopicFilterType::MultiTag
    } else {
        TopicFilterType::SingleTag
    };
    let config = TopicConfig {
        topic_name: header.topic.clone(),
        read_queue_nums: header.read_queue_nums,
        write_queue_nums: header.write_queue_nums,
        perm: header.perm,
        topic_filter_type: filter,
        topic_sys_flag: header.topic_sys_flag.unwrap_or(0),
        order: header.order.unwrap_or(false),
    };
    broker.topics.upsert(config, now_ms())?;
    Ok(success(request))
}

/// DELETE_TOPIC_IN_BROKER.
pub(crate) fn delete_topic(broker: &Arc<Broker>, request: &RemotingCommand) -> Processed {
    let header: TopicHeader = request.header()?;
    // The store removes a folder named after the topic: only a name may
    // get that far (retry and DLQ topics of long groups included).
    let name = TopicName::parse_internal(&header.topic).map_err(ProcessError::system)?;
    if topic::is_system_topic(&header.topic) {
        return Err(ProcessError::system(format!(
            "the topic[{}] is a system topic and cannot be deleted",
            header.topic
        )));
    }
    broker.topics.delete(&header.topic, now_ms())?;
    broker.offsets.remove_topic(&header.topic);
    broker.stats.remove_topic(&header.topic);
    broker
        .store
        .delete_topic(&name)
        .map_err(|e| ProcessError::system(e.to_string()))?;
    Ok(success(request))
}

/// GET_ALL_TOPIC_CONFIG.
pub(crate) fn all_topic_config(broker: &Broker, request: &RemotingCommand) -> Processed {
    Ok(success(request).with_body(encode_json(&broker.topics.wrapper())))
}

/// UPDATE_AND_CREATE_SUBSCRIPTIONGROUP.
pub(crate) fn create_group(broker: &Broker, request: &RemotingCommand) -> Processed {
    let config: SubscriptionGroupConfig = decode_json(&request.body)
        .map_err(|e| ProcessError::system(format!("bad subscription group body: {e}")))?;
    GroupName::parse(&config.group_name).map_err(ProcessError::system)?;
    if config.retry_max_times < 0 || config.retry_queue_nums < 0 {
        return Err(ProcessError::system(
            "retryMaxTimes and retryQueueNums must not be negative",
        ));
    }
    broker.groups.upsert(config, now_ms())?;
    Ok(success(request))
}

/// DELETE_SUBSCRIPTIONGROUP.
pub(crate) fn delete_group(broker: &Broker, request: &RemotingCommand) -> Processed {
    let group = request
        .field("groupName")
        .ok_or_else(|| ProcessError::system("missing header field groupName"))?;
    let group = GroupName::parse(group).map_err(ProcessError::system)?;
    broker.groups.delete(group.as_str(), now_ms())?;
    Ok(success(request))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GroupsBody<'a> {
    subscription_group_table: BTreeMap<&'a str, &'a SubscriptionGroupConfig>,
    data_version: mq_protocol::route::DataVersion,
}

/// GET_ALL_SUBSCRIPTIONGROUP_CONFIG.
pub(crate) fn all_group_config(broker: &Broker, request: &RemotingCommand) -> Processed {
    let (groups, data_version) = broker.groups.all();
    let body = GroupsBody {
        subscription_group_table: groups.iter().map(|g| (g.group_name.as_str(), g)).collect(),
        data_version,
    };
    Ok(success(request).with_body(encode_json(&body)))
}

/// The broker's and the store's keys as `.properties` text, as RocketMQ's
/// GET_BROKER_CONFIG answers.
pub(crate) fn config_properties(broker: &Broker) -> String {
    let mut out = String::new();
    for (key, value) in broker.config().entries() {
        out.push_str(&format!("{key}={value}\n"));
    }
    for (key, value) in crate::config::store_entries(&broker.store_config) {
        out.push_str(&format!("{key}={value}\n"));
    }
    out
}

/// GET_BROKER_CONFIG.
pub(crate) fn broker_config(broker: &Broker, request: &RemotingCommand) -> Processed {
    let version = broker.topics.data_version();
    Ok(success(request)
        .with_field("version", String::from_utf8_lossy(&encode_json(&version)))
        .with_body(config_properties(broker).into_bytes()))
}

/// GET_BROKER_RUNTIME_INFO.
pub(crate) fn runtime_info(broker: &Broker, request: &RemotingCommand) -> Processed {
    let stats = broker.store.stats();
    let now = now_ms();
    let mut table = BTreeMap::new();
    table.insert(
        "brokerVersionDesc".to_owned(),
        format!("V4_9_4 (rocketshop {})", env!("CARGO_PKG_VERSION")),
    );
    table.insert(
        "brokerVersion".to_owned(),
        mq_protocol::code::OUR_VERSION.to_string(),
    );
    table.insert("bootTimestamp".to_owned(), broker.started_ms.to_string());
    table.insert(
        "runtime".to_owned(),
        format!("{} s", (now - broker.started_ms) / 1000),
    );
    table.insert(
        "commitLogMinOffset".to_owned(),
        broker.store.commit_log_min_offset().to_string(),
    );
    table.insert(
        "commitLogMaxOffset".to_owned(),
        broker.store.commit_log_max_offset().to_string(),
    );
    table.insert(
        "commitLogFlushedOffset".to_owned(),
        broker.store.flushed_offset().to_string(),
    );
    table.insert("msgPutTotal".to_owned(), stats.messages_put.to_string());
    table.insert(
        "commitLogFlushes".to_owned(),
        stats.commit_log_flushes.to_string(),
    );
    table.insert(
        "brokerRole".to_owned(),
        broker.config().broker_role.to_string(),
    );
    stats_entries(broker, &mut table);
    // Replication figures (slaveFallBehindMuch, ...), from the ha module.
    table.extend(broker.ha.runtime_entries());
    Ok(success(request).with_body(encode_json(&KvTable { table })))
}

/// Traffic figures under RocketMQ's runtime-info keys (what `mqadmin
/// clusterList` prints): TPS over the last minute and hour, and message
/// totals now and at the start of today and yesterday (UTC).
fn stats_entries(broker: &Broker, table: &mut BTreeMap<String, String>) {
    use mq_protocol::admin_body::stats_name;
    let put = broker.stats.broker_wide(stats_name::BROKER_PUT_NUMS);
    let get = broker.stats.broker_wide(stats_name::BROKER_GET_NUMS);
    let tps = |d: &mq_protocol::admin_body::BrokerStatsData| {
        format!(
            "{:.2} {:.2} {:.2}",
            d.stats_minute.tps, d.stats_minute.tps, d.stats_hour.tps
        )
    };
    table.insert("putTps".to_owned(), tps(&put));
    table.insert("getTransferedTps".to_owned(), tps(&get));
    let (puts, gets) = broker.stats.daily_totals();
    for (key, value) in [
        ("msgPutTotalTodayNow", puts.now),
        ("msgPutTotalTodayMorning", puts.today_morning),
        ("msgPutTotalYesterdayMorning", puts.yesterday_morning),
        ("msgGetTotalTodayNow", gets.now),
        ("msgGetTotalTodayMorning", gets.today_morning),
        ("msgGetTotalYesterdayMorning", gets.yesterday_morning),
    ] {
        table.insert(key.to_owned(), value.to_string());
    }
    table.insert(
        "brokerActive".to_owned(),
        (!broker.is_shutting_down()).to_string(),
    );
    // Store time of the oldest message still stored (RocketMQ's
    // earliestMessageTimeStamp; `clusterList` prints its age in hours).
    let oldest = broker
        .store
        .look_message_by_offset(broker.store.commit_log_min_offset())
        .map_or(0, |m| m.store_timestamp);
    table.insert("earliestMessageTimeStamp".to_owned(), oldest.to_string());
}

/// GET_ALL_CONSUMER_OFFSET.
pub(crate) fn all_consumer_offsets(broker: &Broker, request: &RemotingCommand) -> Processed {
    Ok(success(request).with_body(broker.offsets.to_json()))
}

/// GET_ALL_DELAY_OFFSET.
///
/// Beside the table, `commitLogMaxOffset`: the commit log end read after
/// it, below which lie the delivered copies the offsets count (a slave
/// takes the table once it has that much; other clients ignore the field).
pub(crate) fn all_delay_offsets(broker: &Broker, request: &RemotingCommand) -> Processed {
    let table = broker.delay_offsets.to_json();
    let end = broker.store.commit_log_max_offset();
    Ok(success(request)
        .with_body(table)
        .with_field("commitLogMaxOffset", end))
}

/// GET_TIMER_CHECK_POINT: what a slave copies so that, restarted as
/// master, it does not deliver again the timer messages this broker
/// delivered. RocketMQ 5 answers with its binary `timercheck` file (last
/// read time, timer log position, queue offsets, data version); our timer
/// keeps no timer log, so the body is our own: the [`TimerCheckpoint`] as
/// the timer service last saved it (`config/timerCheckpoint.json`), as
/// JSON. The [`TimerCheckpointResponseHeader`] carries the commit log end
/// read after the file, so every delivered copy the checkpoint counts lies
/// below it: a slave takes the checkpoint only once it has that much.
pub(crate) fn timer_checkpoint(broker: &Broker, request: &RemotingCommand) -> Processed {
    let checkpoint =
        TimerCheckpoint::load(&crate::tasks::timer::checkpoint_path(broker)).map_err(|e| {
            warn!(error = %e, "GET_TIMER_CHECK_POINT: the timer checkpoint is unreadable");
            ProcessError::system("the timer checkpoint is unreadable")
        })?;
    let header = TimerCheckpointResponseHeader {
        commit_log_max_offset: i64::try_from(broker.store.commit_log_max_offset())
            .unwrap_or(i64::MAX),
    };
    Ok(success(request)
        .with_header(&header)
        .with_body(serde_json::to_vec(&checkpoint).expect("a checkpoint serializes")))
}
