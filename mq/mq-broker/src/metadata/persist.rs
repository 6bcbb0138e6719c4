//! Durable JSON files under the store's `config/` folder, written the way
//! RocketMQ does: the new content goes to `<file>.tmp` and is fsynced, the
//! previous file is kept as `<file>.bak`, then the temporary file is renamed
//! into place and the folder fsynced. Loading falls back to the `.bak` copy
//! when the main file is missing or unreadable.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::MetadataError;

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Writes `value` as pretty JSON to `path`, atomically, keeping a `.bak`.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), MetadataError> {
    let io = |source| MetadataError::Io {
        path: path.to_owned(),
        source,
    };
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    fs::create_dir_all(dir).map_err(io)?;
    let bytes = serde_json::to_vec_pretty(value).expect("metadata serializes to JSON");
    let tmp = with_suffix(path, ".tmp");
    {
        let mut file = File::create(&tmp).map_err(io)?;
        file.write_all(&bytes).map_err(io)?;
        file.sync_all().map_err(io)?;
    }
    if path.exists() {
        fs::copy(path, with_suffix(path, ".bak")).map_err(io)?;
    }
    fs::rename(&tmp, path).map_err(io)?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    Ok(())
}

/// Flushes the commit log as far as it is written, before a file that
/// counts on records just written there (a delay level's delivered copies,
/// the committed messages behind the transaction frontier, the retry
/// copies behind consumer offsets) is written. Under ASYNC_FLUSH those
/// records may wait up to `flushIntervalCommitLog` for the flusher; a file
/// on disk before them would, after a power failure, count messages the
/// disk lost, which were durable before and would never be delivered.
pub fn flush_commit_log_first(store: &mq_store::MessageStore) -> Result<(), String> {
    store
        .flush()
        .map(|_| ())
        .map_err(|e| format!("flushing the commit log first: {e}"))
}

/// Reads JSON from `path`, or from `<path>.bak` when `path` is missing or
/// unreadable. `Ok(None)` when neither exists.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, MetadataError> {
    let main = read_one(path);
    match main {
        Ok(Some(value)) => Ok(Some(value)),
        Ok(None) | Err(_) => {
            let backup = with_suffix(path, ".bak");
            match read_one(&backup) {
                Ok(Some(value)) => {
                    tracing::warn!(path = %path.display(), "loaded the .bak copy of a config file");
                    Ok(Some(value))
                }
                Ok(None) => main,
                Err(e) => match main {
                    Ok(None) => Err(e),
                    other => other,
                },
            }
        }
    }
}

fn read_one<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, MetadataError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(MetadataError::Io {
                path: path.to_owned(),
                source,
            })
        }
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    decode(path, &bytes).map(Some)
}

/// Parses the JSON of the file at `path` (or a master's copy of it): a
/// parse failure is [`MetadataError::Corrupt`] naming the file.
pub fn decode<T: DeserializeOwned>(path: &Path, json: &[u8]) -> Result<T, MetadataError> {
    mq_protocol::route::decode_json(json).map_err(|e| MetadataError::Corrupt {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn write_then_read_keeps_a_backup_and_falls_back_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config").join("x.json");
        let mut v: BTreeMap<String, i64> = BTreeMap::new();
        assert_eq!(read_json::<BTreeMap<String, i64>>(&path).unwrap(), None);
        v.insert("a".into(), 1);
        write_json(&path, &v).unwrap();
        v.insert("b".into(), 2);
        write_json(&path, &v).unwrap();
        assert_eq!(
            read_json::<BTreeMap<String, i64>>(&path)
                .unwrap()
                .unwrap()
                .len(),
            2
        );
        // A torn main file: the backup (one write older) is used.
        fs::write(&path, b"{\"a\":").unwrap();
        assert_eq!(
            read_json::<BTreeMap<String, i64>>(&path)
                .unwrap()
                .unwrap()
                .len(),
            1
        );
        // Both gone bad: a clear error naming the file.
        fs::write(with_suffix(&path, ".bak"), b"garbage").unwrap();
        let err = read_json::<BTreeMap<String, i64>>(&path)
            .unwrap_err()
            .to_string();
        assert!(err.contains("x.json"), "{err}");
    }

    #[test]
    fn fastjson_numeric_keys_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("delayOffset.json");
        fs::write(&path, "{\"offsetTable\":{1:5,2:0}}").unwrap();
        #[derive(serde::Deserialize)]
        struct T {
            #[serde(rename = "offsetTable")]
            offset_table: BTreeMap<i32, i64>,
        }
        let t: T = read_json(&path).unwrap().unwrap();
        assert_eq!(t.offset_table[&1], 5);
    }
}
