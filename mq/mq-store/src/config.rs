//! The store's configuration: RocketMQ's `MessageStoreConfig` keys, typed.
//!
//! [`MessageStoreConfig::set`] applies one key of a broker `.properties`
//! file, so the broker can layer its file over [`Default`].

use std::path::PathBuf;

/// How a put becomes durable.
///
/// What survives:
/// - a **process crash** (panic, SIGKILL, OOM kill): in both modes every
///   message whose put returned `Ok`, because the bytes are in the kernel's
///   page cache through the shared mapping as soon as the put returns;
///   recovery finds them on the next open.
/// - a **power cut or kernel crash**: under [`SyncFlush`](Self::SyncFlush)
///   every message whose put returned [`PutStatus::PutOk`](crate::PutStatus::PutOk)
///   (its byte range was `msync(MS_SYNC)`ed, which is `fdatasync` of the
///   range, before the put returned). Under [`AsyncFlush`](Self::AsyncFlush)
///   only what the background flusher had flushed: up to
///   `flushIntervalCommitLog` milliseconds of acknowledged messages (default
///   500 ms) can be lost. In both modes a torn tail is cut off by recovery,
///   and consume queues and index are rebuilt from the commit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FlushDiskType {
    /// `ASYNC_FLUSH`: a background thread flushes every `flushIntervalCommitLog` ms.
    #[default]
    AsyncFlush,
    /// `SYNC_FLUSH`: a put returns only once its bytes are on disk. Concurrent
    /// writers share flushes (group commit).
    SyncFlush,
}

/// A configuration key that could not be applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid value {value:?} for {key}: {reason}")]
    InvalidValue {
        key: String,
        value: String,
        reason: String,
    },
}

/// RocketMQ's default `messageDelayLevel`.
pub const DEFAULT_MESSAGE_DELAY_LEVEL: &str =
    "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h";

/// Size of one consume queue entry: `[commitLogOffset:8][size:4][tagsCode:8]`.
pub const CQ_ENTRY_SIZE: u64 = 20;

/// The store's settings. Each field's doc names the RocketMQ key it is read from.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageStoreConfig {
    /// `storePathRootDir` (default `~/store`).
    pub store_path_root_dir: PathBuf,
    /// `storePathCommitLog` (default `<root>/commitlog`).
    pub store_path_commit_log: Option<PathBuf>,
    /// `storePathConsumeQueue` (default `<root>/consumequeue`).
    pub store_path_consume_queue: Option<PathBuf>,
    /// `storePathIndex` (default `<root>/index`).
    pub store_path_index: Option<PathBuf>,
    /// `storeCheckpoint` (default `<root>/checkpoint`).
    pub store_checkpoint: Option<PathBuf>,
    /// `abortFile` (default `<root>/abort`).
    pub abort_file: Option<PathBuf>,
    /// `mapedFileSizeCommitLog` (also `mappedFileSizeCommitLog`): bytes per
    /// commit log segment, default 1 GiB.
    pub maped_file_size_commit_log: u64,
    /// `mapedFileSizeConsumeQueue` (also `mappedFileSizeConsumeQueue`): bytes
    /// per consume queue segment, default 300000 entries of 20 bytes. Rounded
    /// down to a multiple of 20.
    pub maped_file_size_consume_queue: u64,
    /// `flushDiskType`: `ASYNC_FLUSH` (default) or `SYNC_FLUSH`.
    pub flush_disk_type: FlushDiskType,
    /// `flushIntervalCommitLog`: ms between background commit log flushes
    /// under ASYNC_FLUSH (default 500).
    pub flush_interval_commit_log: u64,
    /// `flushIntervalConsumeQueue`: ms between flushes of consume queues,
    /// index and checkpoint (default 1000).
    pub flush_interval_consume_queue: u64,
    /// `syncFlushTimeout`: ms a SYNC_FLUSH put waits for its flush before it
    /// reports `FlushDiskTimeout` (default 5000).
    pub sync_flush_timeout: u64,
    /// `messageDelayLevel`: the delay of each DELAY level, used for the
    /// tagsCode (delivery time) of SCHEDULE_TOPIC_XXXX entries.
    pub message_delay_level: String,
    /// `maxMessageSize`: largest encoded message in bytes (default 4 MiB).
    pub max_message_size: usize,
    /// `maxHashSlotNum`: hash slots per index file (default 5,000,000).
    pub max_hash_slot_num: u32,
    /// `maxIndexNum`: entries per index file (default 20,000,000).
    pub max_index_num: u32,
    /// `messageIndexEnable`: build index files (default true).
    pub message_index_enable: bool,
    /// `deleteWhen`: hour(s) of the day, local time, at which expired files
    /// are deleted, `;`-separated (default `"04"`).
    pub delete_when: String,
    /// `fileReservedTime`: hours a commit log file is kept after its last
    /// write (default 72).
    pub file_reserved_time: u64,
    /// `diskMaxUsedSpaceRatio`: percent of the commit log's disk above which
    /// files are deleted early and writes refused (default 75).
    pub disk_max_used_space_ratio: u32,
    /// `diskSpaceWarningLevelRatio` (RocketMQ reads it as the system property
    /// `rocketmq.broker.diskSpaceWarningLevelRatio`): fraction of the disk
    /// above which writes are refused (default 0.90).
    pub disk_space_warning_level_ratio: f64,
    /// `cleanResourceInterval`: ms between cleaner steps (default 10000).
    pub clean_resource_interval: u64,
    /// `deleteFileBatchMax`: most commit log files deleted by one cleaner step (default 10).
    pub delete_file_batch_max: usize,
    /// `checkCRCOnRecover`: verify body CRCs while recovering (default true).
    pub check_crc_on_recover: bool,
    /// `warmMapedFileEnable` (also `warmMappedFileEnable`): a background
    /// thread keeps the pages just past the commit log's end prefaulted, so
    /// that appends take no page fault (default true here; RocketMQ's
    /// default is false and its warm-up writes each page of a new file).
    pub warm_maped_file_enable: bool,
}

impl Default for MessageStoreConfig {
    fn default() -> Self {
        let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
        MessageStoreConfig {
            store_path_root_dir: home.join("store"),
            store_path_commit_log: None,
            store_path_consume_queue: None,
            store_path_index: None,
            store_checkpoint: None,
            abort_file: None,
            maped_file_size_commit_log: 1024 * 1024 * 1024,
            maped_file_size_consume_queue: 300_000 * CQ_ENTRY_SIZE,
            flush_disk_type: FlushDiskType::AsyncFlush,
            flush_interval_commit_log: 500,
            flush_interval_consume_queue: 1000,
            sync_flush_timeout: 5000,
            message_delay_level: DEFAULT_MESSAGE_DELAY_LEVEL.to_owned(),
            max_message_size: 4 * 1024 * 1024,
            max_hash_slot_num: 5_000_000,
            max_index_num: 20_000_000,
            message_index_enable: true,
            delete_when: "04".to_owned(),
            file_reserved_time: 72,
            disk_max_used_space_ratio: 75,
            disk_space_warning_level_ratio: 0.90,
            clean_resource_interval: 10_000,
            delete_file_batch_max: 10,
            check_crc_on_recover: true,
            warm_maped_file_enable: true,
        }
    }
}

fn invalid(key: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.to_owned(),
        value: value.to_owned(),
        reason: reason.into(),
    }
}

fn parse<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    value
        .trim()
        .parse()
        .map_err(|e: T::Err| invalid(key, value, e.to_string()))
}

impl MessageStoreConfig {
    /// A configuration rooted at `root` with every other key at its default.
    pub fn with_root(root: impl Into<PathBuf>) -> Self {
        MessageStoreConfig {
            store_path_root_dir: root.into(),
            ..Default::default()
        }
    }

    /// Applies one RocketMQ properties key. Returns `Ok(false)` for a key the
    /// store does not know (the broker's own keys), `Ok(true)` once applied.
    pub fn set(&mut self, key: &str, value: &str) -> Result<bool, ConfigError> {
        let v = value.trim();
        match key {
            "storePathRootDir" => self.store_path_root_dir = PathBuf::from(v),
            "storePathCommitLog" => self.store_path_commit_log = Some(PathBuf::from(v)),
            "storePathConsumeQueue" => self.store_path_consume_queue = Some(PathBuf::from(v)),
            "storePathIndex" => self.store_path_index = Some(PathBuf::from(v)),
            "storeCheckpoint" => self.store_checkpoint = Some(PathBuf::from(v)),
            "abortFile" => self.abort_file = Some(PathBuf::from(v)),
            "mapedFileSizeCommitLog" | "mappedFileSizeCommitLog" => {
                self.maped_file_size_commit_log = parse(key, v)?
            }
            "mapedFileSizeConsumeQueue" | "mappedFileSizeConsumeQueue" => {
                self.maped_file_size_consume_queue = parse(key, v)?
            }
            "flushDiskType" => {
                self.flush_disk_type = match v {
                    "ASYNC_FLUSH" => FlushDiskType::AsyncFlush,
                    "SYNC_FLUSH" => FlushDiskType::SyncFlush,
                    _ => return Err(invalid(key, value, "expected ASYNC_FLUSH or SYNC_FLUSH")),
                }
            }
            "flushIntervalCommitLog" => self.flush_interval_commit_log = parse(key, v)?,
            "flushIntervalConsumeQueue" => self.flush_interval_consume_queue = parse(key, v)?,
            "syncFlushTimeout" => self.sync_flush_timeout = parse(key, v)?,
            "messageDelayLevel" => {
                parse_delay_levels(v).map_err(|reason| invalid(key, value, reason))?;
                self.message_delay_level = v.to_owned();
            }
            "maxMessageSize" => self.max_message_size = parse(key, v)?,
            "maxHashSlotNum" => self.max_hash_slot_num = parse(key, v)?,
            "maxIndexNum" => self.max_index_num = parse(key, v)?,
            "messageIndexEnable" => self.message_index_enable = parse(key, v)?,
            "deleteWhen" => {
                parse_delete_when(v).map_err(|reason| invalid(key, value, reason))?;
                self.delete_when = v.to_owned();
            }
            "fileReservedTime" => self.file_reserved_time = parse(key, v)?,
            "diskMaxUsedSpaceRatio" => self.disk_max_used_space_ratio = parse(key, v)?,
            "diskSpaceWarningLevelRatio" | "rocketmq.broker.diskSpaceWarningLevelRatio" => {
                self.disk_space_warning_level_ratio = parse(key, v)?
            }
            "cleanResourceInterval" => self.clean_resource_interval = parse(key, v)?,
            "deleteFileBatchMax" => self.delete_file_batch_max = parse(key, v)?,
            "checkCRCOnRecover" => self.check_crc_on_recover = parse(key, v)?,
            "warmMapedFileEnable" | "warmMappedFileEnable" => {
                self.warm_maped_file_enable = parse(key, v)?
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// `set`, or `name` under `storePathRootDir` when the key is not set.
    fn path_or_under_root(&self, set: &Option<PathBuf>, name: &str) -> PathBuf {
        set.clone()
            .unwrap_or_else(|| self.store_path_root_dir.join(name))
    }

    /// The commit log folder (`storePathCommitLog`, default `<root>/commitlog`).
    pub fn commit_log_dir(&self) -> PathBuf {
        self.path_or_under_root(&self.store_path_commit_log, "commitlog")
    }

    /// The consume queue folder (`storePathConsumeQueue`, default
    /// `<root>/consumequeue`).
    pub fn consume_queue_dir(&self) -> PathBuf {
        self.path_or_under_root(&self.store_path_consume_queue, "consumequeue")
    }

    /// The index folder (`storePathIndex`, default `<root>/index`).
    pub fn index_dir(&self) -> PathBuf {
        self.path_or_under_root(&self.store_path_index, "index")
    }

    /// The checkpoint file (`storeCheckpoint`, default `<root>/checkpoint`).
    pub fn checkpoint_path(&self) -> PathBuf {
        self.path_or_under_root(&self.store_checkpoint, "checkpoint")
    }

    /// The abort file (`abortFile`, default `<root>/abort`).
    pub fn abort_path(&self) -> PathBuf {
        self.path_or_under_root(&self.abort_file, "abort")
    }

    /// The `lock` file (RocketMQ keeps it at `<root>/lock`).
    pub fn lock_path(&self) -> PathBuf {
        self.store_path_root_dir.join("lock")
    }

    /// Bytes per consume queue segment, a whole number of entries.
    pub fn consume_queue_segment_bytes(&self) -> u64 {
        (self.maped_file_size_consume_queue / CQ_ENTRY_SIZE).max(1) * CQ_ENTRY_SIZE
    }

    /// Delay of each level in milliseconds; level `n` is `levels[n - 1]`.
    pub fn delay_levels(&self) -> Result<Vec<i64>, ConfigError> {
        parse_delay_levels(&self.message_delay_level)
            .map_err(|reason| invalid("messageDelayLevel", &self.message_delay_level, reason))
    }

    /// Hours of the day of `deleteWhen`.
    pub fn delete_hours(&self) -> Result<Vec<u32>, ConfigError> {
        parse_delete_when(&self.delete_when)
            .map_err(|reason| invalid("deleteWhen", &self.delete_when, reason))
    }

    /// Cross-field checks done by `MessageStore::open`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.delay_levels()?;
        self.delete_hours()?;
        let size = self.maped_file_size_commit_log;
        // A segment must hold at least one largest message plus the blank header.
        if size < 1024 || size > i64::MAX as u64 {
            return Err(invalid(
                "mapedFileSizeCommitLog",
                &size.to_string(),
                "must be at least 1024",
            ));
        }
        if self.max_message_size as u64 + 8 > size {
            return Err(invalid(
                "maxMessageSize",
                &self.max_message_size.to_string(),
                "must be at least 8 bytes smaller than mapedFileSizeCommitLog",
            ));
        }
        if self.max_hash_slot_num == 0 || self.max_index_num < 2 {
            return Err(invalid(
                "maxIndexNum",
                &self.max_index_num.to_string(),
                "maxHashSlotNum must be positive and maxIndexNum at least 2",
            ));
        }
        Ok(())
    }
}

/// Parses `"1s 5s 1m 2h"` into milliseconds (units s, m, h, d as RocketMQ).
pub fn parse_delay_levels(s: &str) -> Result<Vec<i64>, String> {
    s.split_whitespace()
        .map(|level| {
            let split = level.len().checked_sub(1).ok_or("empty level")?;
            let (num, unit) = level.split_at(split);
            let unit_ms: i64 = match unit {
                "s" => 1000,
                "m" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                _ => return Err(format!("unknown unit in {level:?}")),
            };
            let n: i64 = num
                .parse()
                .map_err(|_| format!("bad number in {level:?}"))?;
            n.checked_mul(unit_ms)
                .ok_or_else(|| format!("{level:?} overflows"))
        })
        .collect()
}

/// Parses `"04"` or `"04;10"` into hours of the day.
pub fn parse_delete_when(s: &str) -> Result<Vec<u32>, String> {
    s.split(';')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(|h| match h.parse::<u32>() {
            Ok(hour) if hour < 24 => Ok(hour),
            _ => Err(format!("{h:?} is not an hour 0-23")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_applies_known_keys_and_ignores_unknown_ones() {
        let mut c = MessageStoreConfig::with_root("/r");
        assert!(c.set("flushDiskType", "SYNC_FLUSH").unwrap());
        assert_eq!(c.flush_disk_type, FlushDiskType::SyncFlush);
        assert!(c.set("mapedFileSizeCommitLog", "65536").unwrap());
        assert_eq!(c.maped_file_size_commit_log, 65536);
        assert!(c.set("deleteWhen", "04;10").unwrap());
        assert_eq!(c.delete_hours().unwrap(), vec![4, 10]);
        assert!(!c.set("brokerName", "broker-a").unwrap());
        assert!(c.set("flushDiskType", "SOMETIMES").is_err());
        assert!(c.set("maxMessageSize", "lots").is_err());
        assert!(c.set("deleteWhen", "25").is_err());
        assert_eq!(c.commit_log_dir(), PathBuf::from("/r/commitlog"));
        assert!(c.set("storePathRootDir", "/other").unwrap());
        assert_eq!(c.consume_queue_dir(), PathBuf::from("/other/consumequeue"));
        assert!(c.set("storePathCommitLog", "/fast/cl").unwrap());
        assert_eq!(c.commit_log_dir(), PathBuf::from("/fast/cl"));
    }

    #[test]
    fn delay_levels_parse_rocketmq_default() {
        let levels = parse_delay_levels(DEFAULT_MESSAGE_DELAY_LEVEL).unwrap();
        assert_eq!(levels.len(), 18);
        assert_eq!(levels[0], 1000);
        assert_eq!(levels[4], 60_000);
        assert_eq!(levels[17], 7_200_000);
        assert!(parse_delay_levels("1x").is_err());
    }

    #[test]
    fn defaults_match_rocketmq() {
        let c = MessageStoreConfig::default();
        assert_eq!(c.maped_file_size_commit_log, 1 << 30);
        assert_eq!(c.consume_queue_segment_bytes(), 6_000_000);
        assert_eq!(c.max_message_size, 4_194_304);
        assert_eq!(c.flush_interval_commit_log, 500);
        assert_eq!(c.sync_flush_timeout, 5000);
        assert_eq!(c.file_reserved_time, 72);
        assert_eq!(c.disk_max_used_space_ratio, 75);
        assert!(c.validate().is_ok());
    }
}
