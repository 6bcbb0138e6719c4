//! The table of commands. Each command is a file: its flags and its `run`.

use std::future::Future;
use std::pin::Pin;

use anyhow::Result;
use mq_client::{AdminClient, ClientConfig};

use crate::args::{FlagSpec, Flags, NAMESRV};

mod cluster;
mod group;
mod message;
mod topic;

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

pub const COMMANDS: &[Command] = &[
    topic::UPDATE_TOPIC,
    topic::DELETE_TOPIC,
    topic::TOPIC_LIST,
    topic::TOPIC_ROUTE,
    cluster::CLUSTER_LIST,
    group::UPDATE_SUB_GROUP,
    group::DELETE_SUB_GROUP,
    message::SEND_MESSAGE,
    message::QUERY_MSG_BY_KEY,
    message::QUERY_MSG_BY_ID,
];

pub fn find(name: &str) -> Option<&'static Command> {
    COMMANDS.iter().find(|c| c.name.eq_ignore_ascii_case(name))
}

/// `mqadmin` with no command.
pub fn usage() -> String {
    let mut out = String::from(
        "usage: mqadmin <command> [args]\nThe most commonly used mqadmin commands are:\n",
    );
    for c in COMMANDS {
        out.push_str(&format!("   {:<20} {}\n", c.name, c.summary));
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

/// An admin client on the name servers of `-n` / NAMESRV_ADDR.
pub(crate) async fn admin(flags: &Flags) -> Result<AdminClient> {
    let namesrv = flags.namesrv()?;
    let client = ClientConfig::new(namesrv.clone())
        .with_instance_name(format!("mqadmin-{}", std::process::id()));
    Ok(AdminClient::start(client).await?)
}
