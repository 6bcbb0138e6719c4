//! Where a consumer keeps its offsets: on the brokers (clustering) or in a
//! local JSON file (broadcasting, where every member has its own).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use mq_protocol::body::MessageQueue;
use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::error::{ClientError, Result};
use crate::instance::ClientInstance;
use crate::sync::lock;

/// The offsets of one consumer group: a memory table written through to
/// the brokers or a file by [`OffsetStore::persist`].
pub(crate) struct OffsetStore {
    table: Mutex<HashMap<MessageQueue, i64>>,
    backend: Backend,
}

enum Backend {
    Remote {
        instance: Arc<ClientInstance>,
        group: String,
    },
    Local {
        path: PathBuf,
    },
}

/// The local file: `{"offsetTable":[{"topic","brokerName","queueId","offset"}]}`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OffsetFile {
    offset_table: Vec<OffsetEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OffsetEntry {
    topic: String,
    broker_name: String,
    queue_id: i32,
    offset: i64,
}

impl OffsetStore {
    pub(crate) fn remote(instance: Arc<ClientInstance>, group: &str) -> Self {
        OffsetStore {
            table: Mutex::default(),
            backend: Backend::Remote {
                instance,
                group: group.to_owned(),
            },
        }
    }

    /// A store in `path`, loaded now if the file exists.
    pub(crate) fn local(path: PathBuf) -> Result<Self> {
        let io = |source| ClientError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut table = HashMap::new();
        match std::fs::read(&path) {
            Ok(bytes) => {
                let file: OffsetFile = serde_json::from_slice(&bytes)?;
                for e in file.offset_table {
                    table.insert(
                        MessageQueue {
                            topic: e.topic,
                            broker_name: e.broker_name,
                            queue_id: e.queue_id,
                        },
                        e.offset,
                    );
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(io(error)),
        }
        Ok(OffsetStore {
            table: Mutex::new(table),
            backend: Backend::Local { path },
        })
    }

    fn table(&self) -> MutexGuard<'_, HashMap<MessageQueue, i64>> {
        lock(&self.table)
    }

    /// Records `offset` in memory (never moving backwards).
    pub(crate) fn update(&self, mq: &MessageQueue, offset: i64) {
        let mut table = self.table();
        let entry = table.entry(mq.clone()).or_insert(offset);
        *entry = (*entry).max(offset);
    }

    /// Records `offset` in memory even if lower (a reset or a moved offset).
    pub(crate) fn set(&self, mq: &MessageQueue, offset: i64) {
        self.table().insert(mq.clone(), offset);
    }

    pub(crate) fn get(&self, mq: &MessageQueue) -> Option<i64> {
        self.table().get(mq).copied()
    }

    /// The stored offset: from the broker (remote) or the file (local).
    pub(crate) async fn read_stored(&self, mq: &MessageQueue) -> Result<Option<i64>> {
        match &self.backend {
            Backend::Remote { instance, group } => {
                let offset = instance.query_consumer_offset(group, mq).await?;
                if let Some(offset) = offset {
                    self.set(mq, offset);
                }
                Ok(offset)
            }
            Backend::Local { .. } => Ok(self.get(mq)),
        }
    }

    /// Writes the offsets of `queues` (remote) or the whole table (local).
    pub(crate) async fn persist(&self, queues: &[MessageQueue]) -> Result<()> {
        match &self.backend {
            Backend::Remote { instance, group } => {
                let mut first_error = None;
                for mq in queues {
                    let Some(offset) = self.get(mq) else { continue };
                    if let Err(error) = instance.update_consumer_offset(group, mq, offset).await {
                        warn!(?mq, offset, %error, "offset commit failed");
                        first_error.get_or_insert(error);
                    }
                }
                first_error.map_or(Ok(()), Err)
            }
            Backend::Local { path } => {
                let file = OffsetFile {
                    offset_table: self
                        .table()
                        .iter()
                        .map(|(mq, offset)| OffsetEntry {
                            topic: mq.topic.clone(),
                            broker_name: mq.broker_name.clone(),
                            queue_id: mq.queue_id,
                            offset: *offset,
                        })
                        .collect(),
                };
                write_atomically(path, &serde_json::to_vec_pretty(&file)?)
            }
        }
    }

    /// Forgets a queue this consumer no longer owns.
    pub(crate) fn remove(&self, mq: &MessageQueue) {
        if let Backend::Remote { .. } = self.backend {
            self.table().remove(mq);
        }
    }
}

fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    let io = |source| ClientError::Io {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mq(id: i32) -> MessageQueue {
        MessageQueue {
            topic: "T".into(),
            broker_name: "b".into(),
            queue_id: id,
        }
    }

    #[tokio::test]
    async fn local_offsets_survive_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g").join("offsets.json");
        let store = OffsetStore::local(path.clone()).unwrap();
        store.update(&mq(0), 5);
        store.update(&mq(0), 3);
        store.update(&mq(1), 9);
        assert_eq!(store.get(&mq(0)), Some(5), "offsets never move back");
        store.persist(&[]).await.unwrap();
        let again = OffsetStore::local(path).unwrap();
        assert_eq!(again.read_stored(&mq(0)).await.unwrap(), Some(5));
        assert_eq!(again.read_stored(&mq(1)).await.unwrap(), Some(9));
        assert_eq!(again.read_stored(&mq(2)).await.unwrap(), None);
    }
}
