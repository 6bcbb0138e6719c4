//! The table of commands, grouped by area (one file per area): each
//! command is its flags and its `run`.

use crate::args::NAMESRV;

mod broker;
mod cluster;
mod common;
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

pub use common::Command;

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
    out.push_str(mq_client::credentials::TOOLS_HELP);
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
    out.push_str(mq_client::credentials::TOOLS_HELP);
    out
}
