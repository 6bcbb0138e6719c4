//! The KV config: namespaced key/value pairs that tools put on the name
//! server (e.g. ORDER_TOPIC_CONFIG), persisted as RocketMQ's
//! `KVConfigSerializeWrapper` JSON (`{"configTable":{ns:{key:value}}}`).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use mq_protocol::route::{decode_json, encode_json, KvTable};
use serde::{Deserialize, Serialize};

use crate::error::NamesrvError;

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct KvConfigSerializeWrapper {
    config_table: BTreeMap<String, BTreeMap<String, String>>,
}

/// The KV table and the file it lives in. Every change is written through.
#[derive(Debug)]
pub struct KvConfigManager {
    path: PathBuf,
    table: BTreeMap<String, BTreeMap<String, String>>,
}

impl KvConfigManager {
    /// Loads `path`; a missing file is an empty table, a file that does not
    /// parse stops start-up rather than being overwritten.
    pub fn load(path: &Path) -> Result<Self, NamesrvError> {
        let table = match std::fs::read(path) {
            Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => BTreeMap::new(),
            Ok(bytes) => {
                decode_json::<KvConfigSerializeWrapper>(&bytes)
                    .map_err(|e| NamesrvError::KvConfig {
                        path: path.to_owned(),
                        reason: e.to_string(),
                    })?
                    .config_table
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => {
                return Err(NamesrvError::KvConfig {
                    path: path.to_owned(),
                    reason: e.to_string(),
                })
            }
        };
        Ok(KvConfigManager {
            path: path.to_owned(),
            table,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn put(&mut self, namespace: &str, key: &str, value: &str) -> std::io::Result<()> {
        self.table
            .entry(namespace.to_owned())
            .or_default()
            .insert(key.to_owned(), value.to_owned());
        self.persist()
    }

    pub fn get(&self, namespace: &str, key: &str) -> Option<&str> {
        self.table.get(namespace)?.get(key).map(String::as_str)
    }

    /// Removes `key`; a namespace that becomes empty stays listed (empty), as
    /// in RocketMQ.
    pub fn delete(&mut self, namespace: &str, key: &str) -> std::io::Result<()> {
        let removed = self
            .table
            .get_mut(namespace)
            .is_some_and(|entries| entries.remove(key).is_some());
        if removed {
            self.persist()
        } else {
            Ok(())
        }
    }

    /// The entries of `namespace`, if it exists.
    pub fn list(&self, namespace: &str) -> Option<KvTable> {
        self.table.get(namespace).map(|table| KvTable {
            table: table.clone(),
        })
    }

    /// Writes the table to a temporary file, syncs it and renames it over
    /// the old one, so a crash leaves either the old or the new file.
    fn persist(&self) -> std::io::Result<()> {
        let wrapper = KvConfigSerializeWrapper {
            config_table: self.table.clone(),
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        {
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(&encode_json(&wrapper))?;
            file.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            // Make the rename durable; not every platform can open a directory.
            if let Ok(dir) = std::fs::File::open(dir) {
                let _ = dir.sync_all();
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_delete_list_and_reload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("kvConfig.json");
        let mut kv = KvConfigManager::load(&path).unwrap();
        kv.put("ns", "a", "1").unwrap();
        kv.put("ns", "b", "2").unwrap();
        kv.put("other", "a", "x").unwrap();
        assert_eq!(kv.get("ns", "a"), Some("1"));
        kv.delete("ns", "a").unwrap();
        assert_eq!(kv.get("ns", "a"), None);
        assert_eq!(kv.list("ns").unwrap().table.len(), 1);
        assert!(kv.list("nope").is_none());

        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            r#"{"configTable":{"ns":{"b":"2"},"other":{"a":"x"}}}"#
        );
        let reloaded = KvConfigManager::load(&path).unwrap();
        assert_eq!(reloaded.get("ns", "b"), Some("2"));
        assert_eq!(reloaded.get("other", "a"), Some("x"));
    }

    #[test]
    fn a_corrupt_file_is_an_error_not_an_empty_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kvConfig.json");
        std::fs::write(&path, "{broken").unwrap();
        let error = KvConfigManager::load(&path).unwrap_err().to_string();
        assert!(error.contains("kvConfig.json"), "{error}");
    }
}
