//! One file per area of pages, and what several of them need: the
//! masters of the cluster and of a topic, figures of the runtime info, and
//! running one admin call per item concurrently.

pub mod audit;
pub mod cluster;
pub mod consumers;
pub mod dashboard;
pub mod dlq;
pub mod invariants;
pub mod login;
pub mod messages;
pub mod orders;
pub mod producers;
pub mod topics;
pub mod transactions;

use std::collections::BTreeMap;
use std::future::Future;

use mq_client::consumer::PullStatus;
use mq_client::{AdminClient, MessageExt, MessageQueue, PullConsumer};
use mq_protocol::route::ClusterInfo;

use crate::web::ConsoleError;

/// A master broker: its name and address.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Master {
    pub name: String,
    pub addr: String,
}

/// Every master the name server lists, by broker name.
pub fn masters_of(info: &ClusterInfo) -> Vec<Master> {
    info.broker_addr_table
        .values()
        .filter_map(|b| {
            Some(Master {
                name: b.broker_name.clone(),
                addr: b.master_addr()?.to_owned(),
            })
        })
        .collect()
}

pub async fn all_masters(admin: &AdminClient) -> Result<Vec<Master>, ConsoleError> {
    Ok(masters_of(&admin.cluster_info().await?))
}

/// The masters in `topic`'s route.
pub async fn topic_masters(admin: &AdminClient, topic: &str) -> Result<Vec<Master>, ConsoleError> {
    let route = admin.topic_route(topic).await?;
    Ok(route
        .broker_datas
        .iter()
        .filter_map(|b| {
            Some(Master {
                name: b.broker_name.clone(),
                addr: b.master_addr()?.to_owned(),
            })
        })
        .collect())
}

/// The masters of the named brokers; an error naming a broker the name
/// server does not list (no address from a form is ever dialled).
pub fn chosen_masters(info: &ClusterInfo, names: &[&str]) -> Result<Vec<Master>, ConsoleError> {
    if names.is_empty() {
        return Err(ConsoleError::BadRequest(
            "choose at least one broker".into(),
        ));
    }
    let all = masters_of(info);
    names
        .iter()
        .map(|name| {
            all.iter()
                .find(|m| m.name == *name)
                .cloned()
                .ok_or_else(|| ConsoleError::BadRequest(format!("no master broker named {name:?}")))
        })
        .collect()
}

/// The message an offset message id names, read from its broker only when
/// the name server lists that broker: the id carries a host and port, and
/// a request must not make the console dial an address of its choosing.
pub async fn view_known_message(admin: &AdminClient, id: &str) -> Result<MessageExt, ConsoleError> {
    let (host, _) = mq_protocol::message::decode_message_id(id)
        .map_err(|_| ConsoleError::BadRequest(format!("{id:?} is not an offset message id")))?;
    let host = host.to_string();
    let info = admin.cluster_info().await?;
    let known = info
        .broker_addr_table
        .values()
        .any(|b| b.broker_addrs.values().any(|a| *a == host));
    if !known {
        return Err(ConsoleError::BadRequest(format!(
            "the message id names {host}, which is no broker of this cluster"
        )));
    }
    Ok(admin.view_message(id).await?)
}

/// The first of RocketMQ's space-separated TPS figures.
pub fn first_tps(info: &BTreeMap<String, String>, key: &str) -> f64 {
    info.get(key)
        .and_then(|v| v.split_whitespace().next())
        .and_then(|t| t.parse().ok())
        .unwrap_or(0.0)
}

/// A whole-number figure of the runtime info, 0 when missing.
pub fn figure(info: &BTreeMap<String, String>, key: &str) -> i64 {
    info.get(key)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Calls one page makes to the cluster at once: enough to hide round
/// trips, few enough not to flood a broker.
const CONCURRENT_CALLS: usize = 32;

/// Runs `call` for every item, [`CONCURRENT_CALLS`] at a time, and returns
/// the results in order.
pub async fn each<T, R, F, Fut>(items: Vec<T>, call: F) -> Vec<R>
where
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(T) -> Fut,
    Fut: Future<Output = R> + Send + 'static,
{
    let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(CONCURRENT_CALLS));
    let mut set = tokio::task::JoinSet::new();
    let n = items.len();
    for (i, item) in items.into_iter().enumerate() {
        let fut = call(item);
        let permits = permits.clone();
        set.spawn(async move {
            let _permit = permits.acquire_owned().await;
            (i, fut.await)
        });
    }
    let mut out: Vec<Option<R>> = (0..n).map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        if let Ok((i, r)) = joined {
            out[i] = Some(r);
        }
    }
    out.into_iter().flatten().collect()
}

/// Messages asked for per pull.
const PULL_BATCH: i32 = 32;

/// Reads `(queue, from, to)` ranges as one list: up to `limit` messages
/// after skipping `skip`, in queue order; and how many the ranges hold.
pub async fn read_queues(
    puller: &PullConsumer,
    ranges: &[(MessageQueue, i64, i64)],
    skip: usize,
    limit: usize,
) -> Result<(Vec<MessageExt>, usize), ConsoleError> {
    let total: usize = ranges
        .iter()
        .map(|(_, from, to)| (to - from).max(0) as usize)
        .sum();
    let mut out = Vec::new();
    let mut skip = skip;
    for (mq, from, to) in ranges {
        let count = (to - from).max(0) as usize;
        if skip >= count {
            skip -= count;
            continue;
        }
        let mut offset = from + skip as i64;
        skip = 0;
        while offset < *to && out.len() < limit {
            let want = PULL_BATCH.min((limit - out.len()) as i32);
            let pulled = puller.pull(mq, "*", offset, want).await?;
            if pulled.status != PullStatus::Found || pulled.messages.is_empty() {
                break;
            }
            offset = pulled.next_begin_offset;
            out.extend(pulled.messages.into_iter().filter(|m| m.queue_offset < *to));
        }
        if out.len() >= limit {
            out.truncate(limit);
            break;
        }
    }
    Ok((out, total))
}
