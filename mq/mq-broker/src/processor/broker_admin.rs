//! Operator requests about the broker itself: UPDATE_BROKER_CONFIG (applied
//! at once and written to the broker's config file, as RocketMQ does),
//! CLEAN_EXPIRED_CONSUMEQUEUE and CLEAN_UNUSED_TOPIC.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mq_protocol::{topic, RemotingCommand};
use tracing::{info, warn};

use super::error::{ProcessError, Processed};
use super::success;
use crate::broker::Broker;
use crate::config::{BrokerConfig, ConfigSection};

/// Keys that name the broker, its place in the cluster or its sockets:
/// changing them under a running broker would make it a different broker,
/// so they are refused (edit the file and restart instead).
const FIXED_AT_START: &[&str] = &[
    "brokerName",
    "brokerClusterName",
    "brokerId",
    "brokerRole",
    "listenPort",
    "bindAddress",
    "brokerIP1",
    "brokerIP2",
    "haListenPort",
    "brokerConfigPath",
    "rocketmqHome",
];

/// Where the broker's configuration is persisted: `brokerConfigPath` (the
/// `-c` file), else `<storePathRootDir>/config/broker.properties`.
pub(crate) fn config_file_path(broker: &Broker) -> PathBuf {
    let configured = broker.config().broker_config_path.clone();
    if configured.is_empty() {
        broker
            .store_config
            .store_path_root_dir
            .join("config")
            .join("broker.properties")
    } else {
        PathBuf::from(configured)
    }
}

/// Rewrites `key=value` lines of a `.properties` file: the first line of
/// each updated key gets the new value (later duplicates are dropped), keys
/// not in the file are appended; comments and other lines stay. Written to
/// a temporary file and renamed over the original.
pub(crate) fn persist_properties(path: &Path, updates: &[(String, String)]) -> std::io::Result<()> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    let key_of = |line: &str| -> Option<String> {
        let t = line.trim_start();
        if t.is_empty() || t.starts_with('#') || t.starts_with('!') {
            return None;
        }
        let end = t.find(['=', ':', ' ', '\t']).unwrap_or(t.len());
        Some(t[..end].to_owned())
    };
    let mut written = BTreeSet::new();
    let mut out = String::new();
    for line in text.lines() {
        match key_of(line).and_then(|k| updates.iter().find(|(u, _)| *u == k)) {
            Some((key, value)) => {
                if written.insert(key.clone()) {
                    out.push_str(&format!("{key}={value}\n"));
                }
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    for (key, value) in updates {
        if !written.contains(key) {
            out.push_str(&format!("{key}={value}\n"));
        }
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("properties.tmp");
    std::fs::write(&tmp, out)?;
    std::fs::rename(&tmp, path)
}

/// UPDATE_BROKER_CONFIG.
pub(crate) fn update_config(broker: &Arc<Broker>, request: &RemotingCommand) -> Processed {
    let text = String::from_utf8_lossy(&request.body);
    let entries = mq_protocol::properties::parse(&text)
        .map_err(|e| ProcessError::system(format!("bad properties body: {e}")))?;
    if entries.is_empty() {
        return Err(ProcessError::system("no key to update"));
    }
    let current = broker.config();
    let mut updated: BrokerConfig = (*current).clone();
    let mut updates = Vec::new();
    for entry in &entries {
        if FIXED_AT_START.contains(&entry.key.as_str()) {
            return Err(ProcessError::system(format!(
                "{} cannot change while the broker runs; edit the config file and restart",
                entry.key
            )));
        }
        match updated.set(&entry.key, &entry.value) {
            Ok(true) => updates.push((entry.key.clone(), entry.value.trim().to_owned())),
            Ok(false) => {
                return Err(ProcessError::system(format!(
                    "{} is not a broker key this broker can change at runtime",
                    entry.key
                )))
            }
            Err(why) => {
                return Err(ProcessError::system(format!(
                    "invalid value {:?} for {}: {why}",
                    entry.value, entry.key
                )))
            }
        }
    }
    updated.validate().map_err(ProcessError::system)?;
    let path = config_file_path(broker);
    persist_properties(&path, &updates)
        .map_err(|e| ProcessError::system(format!("cannot write {}: {e}", path.display())))?;
    let permission_changed = updated.broker_permission != current.broker_permission;
    broker.config.set(updated);
    info!(?updates, file = %path.display(), "broker config updated");
    if permission_changed {
        crate::registration::register_soon(broker);
    }
    Ok(success(request))
}

/// Topics with consume queues in the store that the topic table does not
/// know (system topics excepted).
fn unknown_topics(broker: &Broker) -> Vec<(String, Vec<i32>)> {
    let stored = broker
        .store
        .topics_and_queues()
        .into_iter()
        .filter(|(t, _)| !topic::is_system_topic(t));
    broker.topics.unknown(stored)
}

/// Removes the consume queues of each of `topics` that `expired` says may
/// go; answers with how many went.
fn remove_consume_queues(
    broker: &Broker,
    request: &RemotingCommand,
    topics: Vec<(String, Vec<i32>)>,
    expired: impl Fn(&str, &[i32]) -> bool,
    what: &str,
) -> Processed {
    let mut removed = 0;
    for (name, queues) in topics {
        if !expired(&name, &queues) {
            continue;
        }
        match broker.store.delete_topic(&name) {
            Ok(_) => removed += 1,
            Err(e) => {
                warn!(topic = name, error = %e, "removing {what} failed");
                return Err(ProcessError::system(e.to_string()));
            }
        }
    }
    info!(topics = removed, "{what} cleaned");
    Ok(success(request).with_remark(format!("removed the consume queues of {removed} topic(s)")))
}

/// CLEAN_EXPIRED_CONSUMEQUEUE: removes the consume queues of unknown topics
/// whose messages are all gone from the commit log.
pub(crate) fn clean_expired_cq(broker: &Broker, request: &RemotingCommand) -> Processed {
    let expired = |name: &str, queues: &[i32]| {
        queues.iter().all(|q| {
            broker.store.min_offset_in_queue(name, *q) >= broker.store.max_offset_in_queue(name, *q)
        })
    };
    remove_consume_queues(
        broker,
        request,
        unknown_topics(broker),
        expired,
        "expired consume queues",
    )
}

/// CLEAN_UNUSED_TOPIC: removes the consume queues of every topic the topic
/// table no longer has.
pub(crate) fn clean_unused_topic(broker: &Broker, request: &RemotingCommand) -> Processed {
    remove_consume_queues(
        broker,
        request,
        unknown_topics(broker),
        |_, _| true,
        "unused topics",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_are_rewritten_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broker-a.properties");
        std::fs::write(
            &path,
            "# the broker\nbrokerName=broker-a\nbrokerPermission=6\nflushDiskType=ASYNC_FLUSH\nbrokerPermission=2\n",
        )
        .unwrap();
        persist_properties(
            &path,
            &[
                ("brokerPermission".into(), "4".into()),
                ("slaveReadEnable".into(), "true".into()),
            ],
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "# the broker\nbrokerName=broker-a\nbrokerPermission=4\nflushDiskType=ASYNC_FLUSH\nslaveReadEnable=true\n"
        );
        let fresh = dir.path().join("config/new.properties");
        persist_properties(&fresh, &[("a".into(), "1".into())]).unwrap();
        assert_eq!(std::fs::read_to_string(&fresh).unwrap(), "a=1\n");
    }
}
