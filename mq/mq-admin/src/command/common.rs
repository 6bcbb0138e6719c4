//! What every command file shares: the [`Command`] type, flag shorthands,
//! flag values, the brokers a command targets, and the admin client and
//! producer the commands talk through.

use std::future::Future;
use std::pin::Pin;

use anyhow::{bail, Result};
use mq_client::{AdminClient, ClientConfig, Credentials, Producer, ProducerConfig};

use crate::args::{FlagSpec, Flags};

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

/// Client settings on the name servers of `-n` / NAMESRV_ADDR under
/// `instance`, signing with the tools' keys (environment, else
/// `$ROCKETMQ_HOME/conf/tools.yml`) when there are any.
pub(crate) fn client_config(f: &Flags, instance: String) -> Result<ClientConfig> {
    Ok(ClientConfig::new(f.namesrv()?)
        .with_instance_name(instance)
        .with_credentials(Credentials::for_tools()?))
}

/// A producer for the commands that send, in a group of its own.
pub(crate) async fn producer(f: &Flags, group: &str) -> Result<Producer> {
    let client = client_config(f, format!("mqadmin-{group}-{}", std::process::id()))?;
    Ok(Producer::start(ProducerConfig::new(group), client).await?)
}

/// A body of `size` bytes for the commands that measure sends.
pub(crate) fn body_of_size(size: usize) -> bytes::Bytes {
    bytes::Bytes::from("RocketMQ".bytes().cycle().take(size).collect::<Vec<u8>>())
}

/// An admin client on the name servers of `-n` / NAMESRV_ADDR.
pub(crate) async fn admin(flags: &Flags) -> Result<AdminClient> {
    let client = client_config(flags, format!("mqadmin-{}", std::process::id()))?;
    Ok(AdminClient::start(client).await?)
}
