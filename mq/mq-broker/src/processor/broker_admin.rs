//! Operator requests about the broker itself: UPDATE_BROKER_CONFIG (applied
//! at once and written to the broker's config file, as RocketMQ does),
//! CLEAN_EXPIRED_CONSUMEQUEUE and CLEAN_UNUSED_TOPIC.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mq_protocol::name::TopicName;
use mq_protocol::{topic, RemotingCommand};
use tracing::{info, warn};

use super::error::{ProcessError, Processed};
use super::success;
use crate::broker::Broker;
use crate::config::{BrokerConfig, ConfigSection};

/// The keys UPDATE_BROKER_CONFIG may change while the broker runs, each
/// with the range (inclusive) its number must be in. Every one is a number
/// or a boolean, so no accepted value can carry a path or a second line.
/// Everything else (names, roles, sockets, paths, store keys, `namesrvAddr`
/// and `haMasterAddress`, which decide where the broker registers and
/// replicates from) is refused: edit the file and restart instead.
/// `brokerPermission` stays: RocketMQ re-registers on a change of it at run
/// time, and operators drain a broker with `brokerPermission=4`; who may
/// send it is the ACL's business.
const RUNTIME_KEYS: &[(&str, Option<(u64, u64)>)] = &[
    ("brokerPermission", None),
    ("defaultTopicQueueNums", Some((1, 1024))),
    ("autoCreateTopicEnable", None),
    ("clusterTopicEnable", None),
    ("brokerTopicEnable", None),
    ("autoCreateSubscriptionGroup", None),
    ("haSendHeartbeatInterval", Some((100, HOUR_MS))),
    ("haHousekeepingInterval", Some((1_000, HOUR_MS))),
    ("haTransferBatchSize", Some((1024, 16 << 20))),
    ("haSlaveFallbehindMax", None),
    // RocketMQ keeps the registration period within 10 s..=60 s.
    ("registerNameServerPeriod", Some((10_000, 60_000))),
    ("registerBrokerTimeoutMills", Some((1_000, 60_000))),
    ("transactionTimeOut", Some((1, DAY_MS))),
    ("transactionCheckMax", Some((1, 1_000))),
    ("transactionCheckInterval", Some((1_000, DAY_MS))),
    ("rejectTransactionMessage", None),
    ("timerWheelEnable", None),
    ("timerMaxDelaySec", Some((1, 365 * DAY_MS / 1000))),
    ("enablePropertyFilter", None),
    ("longPollingEnable", None),
    ("shortPollingTimeMills", Some((1, 60_000))),
    ("slaveReadEnable", None),
    ("accessMessageInMemoryMaxRatio", Some((0, 100))),
    ("notifyConsumerIdsChangedEnable", None),
    ("flushConsumerOffsetInterval", Some((100, DAY_MS))),
    // Read at the next start; a frame must still hold a 4 MiB message.
    ("serverFrameMaxLength", Some((4 << 20, 128 << 20))),
];

const HOUR_MS: u64 = 3_600_000;
const DAY_MS: u64 = 24 * HOUR_MS;

/// The broker permissions an update may set: write only, read only, both
/// (RocketMQ's PermName; INHERIT means nothing for a broker).
const BROKER_PERMISSIONS: [i32; 3] = [2, 4, 6];

/// A checked UPDATE_BROKER_CONFIG body: the configuration to switch to and
/// the lines to persist (allow-listed keys only, each value as the broker
/// prints it). Built only by [`ConfigChange::parse`], before anything is
/// written.
#[derive(Debug)]
pub(crate) struct ConfigChange {
    pub(crate) config: BrokerConfig,
    pub(crate) lines: Vec<(String, String)>,
}

impl ConfigChange {
    /// Parses `body` (`.properties` text) against `current`. Refuses a body
    /// that is not UTF-8 or has no key, any key or value with a control
    /// character (the escaped `\n` of a properties value becomes a real
    /// newline, which would be a new line in the `-c` file), a key off
    /// [`RUNTIME_KEYS`], and a value out of its range.
    pub(crate) fn parse(current: &BrokerConfig, body: &[u8]) -> Result<ConfigChange, String> {
        let text = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8".to_owned())?;
        let entries = mq_protocol::properties::parse(text)
            .map_err(|e| format!("bad properties body: {e}"))?;
        if entries.is_empty() {
            return Err("no key to update".into());
        }
        let mut config = current.clone();
        let mut lines: Vec<(String, String)> = Vec::new();
        for entry in &entries {
            let key = entry.key.as_str();
            if key.chars().chain(entry.value.chars()).any(char::is_control) {
                return Err(format!(
                    "the value of {key:?} contains a control character (a line break?); values are one line"
                ));
            }
            let Some((_, range)) = RUNTIME_KEYS.iter().find(|(k, _)| *k == key) else {
                return Err(refusal(key));
            };
            config
                .set(key, &entry.value)
                .map_err(|why| format!("invalid value {:?} for {key}: {why}", entry.value))?;
            let value = config
                .entries()
                .into_iter()
                .find_map(|(k, v)| (k == key).then_some(v))
                .unwrap_or_default();
            check_range(key, &value, *range, &config)?;
            lines.retain(|(k, _)| k != key);
            lines.push((key.to_owned(), value));
        }
        config.validate()?;
        Ok(ConfigChange { config, lines })
    }
}

/// Why a key off the allow-list is refused.
fn refusal(key: &str) -> String {
    let store_keys = crate::config::store_entries(&mq_store::MessageStoreConfig::default());
    if BrokerConfig::KEYS.contains(&key)
        || key.starts_with("storePath")
        || store_keys.iter().any(|(k, _)| *k == key)
    {
        format!("{key} cannot change while the broker runs; edit the config file and restart")
    } else {
        format!("{key} is not a broker key this broker can change at runtime")
    }
}

/// `value` (as the broker prints `key`) within `range`; a broker
/// permission one of [`BROKER_PERMISSIONS`].
fn check_range(
    key: &str,
    value: &str,
    range: Option<(u64, u64)>,
    config: &BrokerConfig,
) -> Result<(), String> {
    if key == "brokerPermission" && !BROKER_PERMISSIONS.contains(&config.broker_permission) {
        return Err(format!(
            "brokerPermission must be 2 (write), 4 (read) or 6 (read and write), got {}",
            config.broker_permission
        ));
    }
    let Some((low, high)) = range else {
        return Ok(());
    };
    match value.parse::<u64>() {
        Ok(n) if (low..=high).contains(&n) => Ok(()),
        _ => Err(format!("{key} must be within {low}..={high}, got {value}")),
    }
}

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
/// not in the file are appended; comments and other lines stay. Written
/// atomically: a temporary file beside it, fsynced, renamed over the
/// original, then the folder fsynced, so a crash leaves the old file or the
/// new one, never half of either.
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
    write_atomically(path, out.as_bytes())
}

/// Replaces `path` with `contents` through `.<name>.tmp` in its folder
/// (fsync, rename, fsync of the folder); keeps the file's permissions.
fn write_atomically(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().map_or_else(
        || "broker.properties".into(),
        |n| n.to_string_lossy().into_owned(),
    );
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut file = std::fs::File::create(&tmp)?;
    if let Ok(meta) = std::fs::metadata(path) {
        file.set_permissions(meta.permissions())?;
    }
    file.write_all(contents)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(&dir)?.sync_all()
}

/// UPDATE_BROKER_CONFIG: the body is parsed into a [`ConfigChange`]
/// before anything is written; then the file is rewritten and the change
/// applied.
pub(crate) fn update_config(broker: &Arc<Broker>, request: &RemotingCommand) -> Processed {
    let current = broker.config();
    let change = ConfigChange::parse(&current, &request.body).map_err(|why| {
        warn!(reason = %why, "broker config update refused");
        ProcessError::system(why)
    })?;
    let path = config_file_path(broker);
    persist_properties(&path, &change.lines)
        .map_err(|e| ProcessError::system(format!("cannot write {}: {e}", path.display())))?;
    let permission_changed = change.config.broker_permission != current.broker_permission;
    broker.config.set(change.config);
    info!(updates = ?change.lines, file = %path.display(), "broker config updated");
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
        // The store's own folders are names; anything else is not ours.
        let Ok(topic) = TopicName::parse_internal(&name) else {
            warn!(
                topic = name,
                "not a topic name; its consume queues are left alone"
            );
            continue;
        };
        match broker.store.delete_topic(&topic) {
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

    fn parse(body: &str) -> Result<ConfigChange, String> {
        ConfigChange::parse(&BrokerConfig::default(), body.as_bytes())
    }

    #[test]
    fn allowed_keys_parse_into_a_change() {
        let change =
            parse("slaveReadEnable=true\nbrokerPermission=4\nslaveReadEnable = false\n").unwrap();
        assert!(!change.config.slave_read_enable);
        assert_eq!(change.config.broker_permission, 4);
        assert_eq!(
            change.lines,
            [
                ("brokerPermission".to_owned(), "4".to_owned()),
                ("slaveReadEnable".to_owned(), "false".to_owned())
            ]
        );
        assert!(parse("serverFrameMaxLength=16777216").is_ok());
    }

    #[test]
    fn the_issue_14_bodies_are_refused() {
        // The escaped line break becomes a real one in the value.
        let err = parse("haMasterAddress=127.0.0.1:1\\nstorePathRootDir=X\\nbrokerConfigPath=Y")
            .unwrap_err();
        assert!(err.contains("control character"), "{err}");
        let err = parse("slaveReadEnable=true\\nbrokerConfigPath=/tmp/x").unwrap_err();
        assert!(err.contains("control character"), "{err}");
        for key in [
            "brokerConfigPath",
            "rocketmqHome",
            "listenPort",
            "brokerName",
            "haMasterAddress",
            "namesrvAddr",
        ] {
            let err = parse(&format!("{key}=x")).unwrap_err();
            assert!(err.contains("cannot change"), "{key}: {err}");
        }
        for key in [
            "storePathRootDir",
            "storePathCommitLog",
            "flushDiskType",
            "storePathWhatever",
        ] {
            let err = parse(&format!("{key}=/tmp/x")).unwrap_err();
            assert!(err.contains("cannot change"), "{key}: {err}");
        }
        assert!(parse("noSuchKey=1")
            .unwrap_err()
            .contains("not a broker key"));
        let err = parse("serverFrameMaxLength=2147483647").unwrap_err();
        assert!(err.contains("serverFrameMaxLength"), "{err}");
        for perm in ["0", "1", "3", "7", "-2", "banana"] {
            assert!(
                parse(&format!("brokerPermission={perm}")).is_err(),
                "{perm}"
            );
        }
        assert!(parse("registerNameServerPeriod=0").is_err());
        assert!(parse("defaultTopicQueueNums=0")
            .unwrap_err()
            .contains("defaultTopicQueueNums"));
        assert!(parse("").is_err());
        assert!(ConfigChange::parse(&BrokerConfig::default(), b"\xff=1").is_err());
        assert!(parse("slaveReadEnable=true\u{7}").is_err());
    }

    #[test]
    fn the_rewrite_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broker.conf");
        std::fs::write(&path, "brokerName=b\n").unwrap();
        persist_properties(&path, &[("slaveReadEnable".into(), "true".into())]).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "brokerName=b\nslaveReadEnable=true\n"
        );
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["broker.conf"]);
    }
}
