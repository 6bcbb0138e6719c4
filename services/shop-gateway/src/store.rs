//! The gateway's trades, kept on disk: what a real gateway would not
//! forget across a restart.
//!
//! One file, `<data_dir>/trades.jsonl`, one JSON [`Trade`] per line, each
//! line the whole trade after a change (registered by the merchant, then
//! given its trade number), appended and fsync'd before the change is
//! acted on; the last line of a payment wins when the file is read back.
//! A line cut short by a crash (no final newline) is cut off on opening;
//! any other unreadable line stops the start with its line number.
//!
//! Wire: `{"payment_id":"<uuid>","order_id":"<uuid>","amount_cents":1230,"trade_no":null|"GW-..."}\n`

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A payment the merchant registered, and its trade number once paid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trade {
    pub payment_id: Uuid,
    pub order_id: Uuid,
    pub amount_cents: i64,
    pub trade_no: Option<String>,
}

/// Why the store could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} line {line}: not a trade: {reason}")]
    Corrupt {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

struct Inner {
    file: File,
    trades: HashMap<Uuid, Trade>,
}

/// The trades, in memory and in their file.
#[derive(Clone)]
pub struct TradeStore {
    path: Arc<PathBuf>,
    inner: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for TradeStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TradeStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl TradeStore {
    /// Opens (creating) `<dir>/trades.jsonl` and reads every trade in it.
    pub fn open(dir: &Path) -> Result<TradeStore, StoreError> {
        let path = dir.join("trades.jsonl");
        let io = |source| StoreError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let created = !path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(io)?;
        if created {
            // The new file's name is durable too.
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|source| StoreError::Io {
                    path: dir.to_owned(),
                    source,
                })?;
        }
        let mut trades = HashMap::new();
        let mut good_len: u64 = 0;
        let mut reader = BufReader::new(&file);
        let mut line = String::new();
        let mut number = 0;
        loop {
            line.clear();
            let read = reader.read_line(&mut line).map_err(io)?;
            if read == 0 {
                break;
            }
            number += 1;
            if !line.ends_with('\n') {
                // Torn by a crash mid-append: that change never happened.
                break;
            }
            let trade: Trade =
                serde_json::from_str(line.trim_end()).map_err(|e| StoreError::Corrupt {
                    path: path.clone(),
                    line: number,
                    reason: e.to_string(),
                })?;
            trades.insert(trade.payment_id, trade);
            good_len += read as u64;
        }
        drop(reader);
        if file.seek(SeekFrom::End(0)).map_err(io)? != good_len {
            file.set_len(good_len).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        Ok(TradeStore {
            path: Arc::new(path),
            inner: Arc::new(Mutex::new(Inner { file, trades })),
        })
    }

    /// The trade of `payment_id`, if it was registered.
    pub fn get(&self, payment_id: Uuid) -> Option<Trade> {
        self.lock().trades.get(&payment_id).cloned()
    }

    /// Applies `change` to the trade of `payment_id` (`None`: not
    /// registered) and, when it returns a new trade, writes that trade
    /// durably before keeping it. Returns what `change` returned.
    pub fn update<T>(
        &self,
        payment_id: Uuid,
        change: impl FnOnce(Option<&Trade>) -> (Option<Trade>, T),
    ) -> Result<T, StoreError> {
        let mut inner = self.lock();
        let (new, answer) = change(inner.trades.get(&payment_id));
        if let Some(trade) = new {
            let mut line = serde_json::to_vec(&trade).expect("a trade serializes");
            line.push(b'\n');
            let io = |source| StoreError::Io {
                path: self.path.as_ref().clone(),
                source,
            };
            inner.file.write_all(&line).map_err(io)?;
            inner.file.sync_data().map_err(io)?;
            inner.trades.insert(payment_id, trade);
        }
        Ok(answer)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trade(trade_no: Option<&str>) -> Trade {
        Trade {
            payment_id: "6f1c2a3b-0000-4000-8000-000000000001".parse().unwrap(),
            order_id: "6f1c2a3b-0000-4000-8000-000000000002".parse().unwrap(),
            amount_cents: 1230,
            trade_no: trade_no.map(str::to_owned),
        }
    }

    #[test]
    fn trades_survive_a_reopen_and_a_torn_last_line_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let store = TradeStore::open(dir.path()).unwrap();
        let id = trade(None).payment_id;
        store.update(id, |_| (Some(trade(None)), ())).unwrap();
        store
            .update(id, |_| (Some(trade(Some("GW-1"))), ()))
            .unwrap();
        drop(store);

        let path = dir.path().join("trades.jsonl");
        let good = std::fs::read(&path).unwrap();
        assert_eq!(good.iter().filter(|b| **b == b'\n').count(), 2);
        // Every cut inside the last line leaves the first change only.
        let first_len = good.iter().position(|b| *b == b'\n').unwrap() + 1;
        for cut in first_len..good.len() {
            std::fs::write(&path, &good[..cut]).unwrap();
            let store = TradeStore::open(dir.path()).unwrap();
            assert_eq!(store.get(id), Some(trade(None)), "cut at {cut}");
            assert_eq!(std::fs::metadata(&path).unwrap().len(), first_len as u64);
        }
        std::fs::write(&path, &good).unwrap();
        let store = TradeStore::open(dir.path()).unwrap();
        assert_eq!(store.get(id), Some(trade(Some("GW-1"))));
        // Appending after a reopen keeps the file readable.
        store
            .update(id, |_| (Some(trade(Some("GW-1"))), ()))
            .unwrap();
        drop(store);
        assert_eq!(
            TradeStore::open(dir.path()).unwrap().get(id),
            Some(trade(Some("GW-1")))
        );

        std::fs::write(&path, b"{\"nope\": 1}\n").unwrap();
        let err = TradeStore::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
    }
}
