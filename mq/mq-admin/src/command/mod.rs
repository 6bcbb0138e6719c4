//! The table of commands, grouped by area (one file per area): each
//! command is its flags and its `run`.

use std::future::Future;
use std::pin::Pin;

use anyhow::{bail, Result};
use mq_client::{AdminClient, ClientConfig, Producer, ProducerConfig};

use crate::args::{FlagSpec, Flags, NAMESRV};

mod broker;
mod cluster;
mod connection;
mod consumer;
mod group;
mod message;
mod message_read;
mod monitor;
mod namesrv;
mod offset;
mod topic;
mod topic_conf;
mod topic_info;

pub type Run = fn(Flags) -> Pin<Box<dyn Future<Output = Result<()>>>>;

/// One `mqadmin` command.
pub struct Command {
    pub name: &'static str,
    pub summary: &'static str,
    pub flags: &'static [FlagSpec],
    pub run: Run,
}

/// Shorthand for a flag that takes a value.
pub(crate) const fn value(
    short: char,
    long: &'static str,
    help: &'static str,
    required: bool,
) -> FlagSpec {
    FlagSpec {
        short,
        long,
        help,
        takes_value: true,
        required,
    }
}

/// Shorthand for a flag that takes no value.
pub(crate) const fn switch(short: char, long: &'static str, help: &'static str) -> FlagSpec {
    FlagSpec {
        short,
        long,
        help,
        takes_value: false,
        required: false,
    }
}

pub const COMMANDS: &[Command] = &[
    topic::UPDATE_TOPIC,
    topic::DELETE_TOPIC,
    topic::TOPIC_LIST,
    topic::TOPIC_ROUTE,
    topic_info::TOPIC_STATUS,
    topic_info::TOPIC_CLUSTER_LIST,
    topic_conf::UPDATE_TOPIC_PERM,
    topic_conf::UPDATE_ORDER_CONF,
    topic_info::ALLOCATE_MQ,
    monitor::STATS_ALL,
    cluster::CLUSTER_LIST,
    cluster::CLUSTER_LIST_RT,
    broker::UPDATE_BROKER_CONFIG,
    broker::BROKER_STATUS,
    broker::BROKER_CONSUME_STATS,
    broker::GET_BROKER_CONFIG,
    broker::WIPE_WRITE_PERM,
    broker::CLEAN_EXPIRED_CQ,
    broker::CLEAN_UNUSED_TOPIC,
    broker::SEND_MSG_STATUS,
    message::QUERY_MSG_BY_ID,
    message::QUERY_MSG_BY_KEY,
    message::QUERY_MSG_BY_OFFSET,
    message::QUERY_MSG_BY_UNIQUE_KEY,
    message_read::CHECK_MSG_SEND_RT,
    message::SEND_MESSAGE,
    message_read::CONSUME_MESSAGE,
    message_read::PRINT_MSG,
    message_read::PRINT_MSG_BY_QUEUE,
    offset::RESET_OFFSET_BY_TIME,
    consumer::CONSUMER_PROGRESS,
    consumer::CONSUMER_STATUS,
    consumer::GET_CONSUMER_STATUS,
    group::UPDATE_SUB_GROUP,
    group::DELETE_SUB_GROUP,
    offset::CLONE_GROUP_OFFSET,
    connection::CONSUMER_CONNECTION,
    connection::PRODUCER_CONNECTION,
    namesrv::UPDATE_KV_CONFIG,
    namesrv::DELETE_KV_CONFIG,
    namesrv::GET_NAMESRV_CONFIG,
    namesrv::UPDATE_NAMESRV_CONFIG,
    monitor::START_MONITORING,
];

/// Other names a command answers to.
const ALIASES: &[(&str, &str)] = &[("clusterListRT", "clusterRT")];

pub fn find(name: &str) -> Option<&'static Command> {
    let name = ALIASES
        .iter()
        .find(|(alias, _)| alias.eq_ignore_ascii_case(name))
        .map_or(name, |(_, real)| real);
    COMMANDS.iter().find(|c| c.name.eq_ignore_ascii_case(name))
}

/// `mqadmin` with no command.
pub fn usage() -> String {
    let mut out = String::from(
        "usage: mqadmin <command> [args]\nThe most commonly used mqadmin commands are:\n",
    );
    for c in COMMANDS {
        out.push_str(&format!("   {:<24} {}\n", c.name, c.summary));
    }
    for (alias, real) in ALIASES {
        out.push_str(&format!("   {alias:<24} Same as {real}\n"));
    }
    out.push_str("See 'mqadmin help <command>' for more information on a specific command.\n");
    out
}

/// `mqadmin help <command>`.
pub fn help(cmd: &Command) -> String {
    let mut out = format!("usage: mqadmin {} [options]\n{}\n", cmd.name, cmd.summary);
    for f in cmd.flags.iter().chain(std::iter::once(&NAMESRV)) {
        let arg = if f.takes_value {
            format!(" <{}>", f.long)
        } else {
            String::new()
        };
        let required = if f.required { " (required)" } else { "" };
        out.push_str(&format!(
            " -{},--{}{arg}{:>4}{}{required}\n",
            f.short, f.long, "", f.help
        ));
    }
    out
}

/// A `true`/`false` flag value, `default` when absent.
pub(crate) fn boolean(f: &Flags, short: char, default: bool) -> Result<bool> {
    match f.get(short) {
        None => Ok(default),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
        Some(other) => bail!("option -{short} must be true or false, got {other:?}"),
    }
}

/// The brokers a command acts on: `-b` (one address) or `-c` (every
/// master of the cluster).
pub(crate) async fn target_brokers(admin: &AdminClient, f: &Flags) -> Result<Vec<String>> {
    match (f.get('b'), f.get('c')) {
        (Some(addr), _) => Ok(vec![addr.to_owned()]),
        (None, Some(cluster)) => {
            let masters = admin.cluster_masters(cluster).await?;
            if masters.is_empty() {
                bail!("cluster {cluster} has no master broker");
            }
            Ok(masters)
        }
        (None, None) => bail!("one of -b (broker address) or -c (cluster name) is required"),
    }
}

/// The master address of every broker group in `topic`'s route.
pub(crate) async fn topic_masters(
    admin: &AdminClient,
    topic: &str,
) -> Result<Vec<(String, String)>> {
    let route = admin.topic_route(topic).await?;
    Ok(route
        .broker_datas
        .iter()
        .filter_map(|b| Some((b.broker_name.clone(), b.master_addr()?.to_owned())))
        .collect())
}

/// A producer for the commands that send, in a group of its own.
pub(crate) async fn producer(f: &Flags, group: &str) -> Result<Producer> {
    let client = ClientConfig::new(f.namesrv()?)
        .with_instance_name(format!("mqadmin-{group}-{}", std::process::id()));
    Ok(Producer::start(ProducerConfig::new(group), client).await?)
}

/// A body of `size` bytes for the commands that measure sends.
pub(crate) fn body_of_size(size: usize) -> bytes::Bytes {
    bytes::Bytes::from("RocketMQ".bytes().cycle().take(size).collect::<Vec<u8>>())
}

/// An admin client on the name servers of `-n` / NAMESRV_ADDR.
pub(crate) async fn admin(flags: &Flags) -> Result<AdminClient> {
    let namesrv = flags.namesrv()?;
    let client = ClientConfig::new(namesrv.clone())
        .with_instance_name(format!("mqadmin-{}", std::process::id()));
    Ok(AdminClient::start(client).await?)
}
