//! The `checkpoint` file: up to where each kind of file is known flushed.
//!
//! Layout (big-endian, at the start of a 4 KiB file, rewritten in place and
//! `fdatasync`ed; 60 bytes sit inside one disk sector):
//! ```text
//!  0 physicMsgTimestamp:8   store time of the last flushed commit log message (RocketMQ)
//!  8 logicsMsgTimestamp:8   store time of the last message in flushed consume queues (RocketMQ)
//! 16 indexMsgTimestamp:8    store time of the last message in flushed index files (RocketMQ)
//! 24 commitLogFlushed:8     commit log offset below which the commit log is flushed
//! 32 logicsFlushed:8        commit log offset below which every consume queue entry is flushed
//! 40 indexFlushed:8         commit log offset below which every index entry is flushed
//! 48 magic:4                0x4D515331 ("MQS1")
//! 52 crc32:4                CRC-32 (IEEE) of bytes 0..52
//! ```
//! The first three fields are RocketMQ's own (same positions); the rest
//! are ours. A torn or missing checkpoint reads as `None` and recovery then
//! scans from the first commit log segment.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, StoreError};
use crate::mmap::fsync_dir;

const MAGIC: u32 = 0x4D51_5331;
const LEN: usize = 56;
const FILE_LEN: u64 = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Checkpoint {
    pub physic_msg_timestamp: i64,
    pub logics_msg_timestamp: i64,
    pub index_msg_timestamp: i64,
    pub commit_log_flushed: u64,
    pub logics_flushed: u64,
    pub index_flushed: u64,
}

impl Checkpoint {
    pub(crate) fn encode(&self) -> [u8; LEN] {
        let mut b = [0u8; LEN];
        b[0..8].copy_from_slice(&self.physic_msg_timestamp.to_be_bytes());
        b[8..16].copy_from_slice(&self.logics_msg_timestamp.to_be_bytes());
        b[16..24].copy_from_slice(&self.index_msg_timestamp.to_be_bytes());
        b[24..32].copy_from_slice(&self.commit_log_flushed.to_be_bytes());
        b[32..40].copy_from_slice(&self.logics_flushed.to_be_bytes());
        b[40..48].copy_from_slice(&self.index_flushed.to_be_bytes());
        b[48..52].copy_from_slice(&MAGIC.to_be_bytes());
        let crc = crc32fast::hash(&b[..52]);
        b[52..56].copy_from_slice(&crc.to_be_bytes());
        b
    }

    pub(crate) fn decode(b: &[u8]) -> Option<Self> {
        let b = b.get(..LEN)?;
        let u64_at = |at: usize| u64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"));
        let u32_at = |at: usize| u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"));
        if u32_at(48) != MAGIC || u32_at(52) != crc32fast::hash(&b[..52]) {
            return None;
        }
        Some(Checkpoint {
            physic_msg_timestamp: u64_at(0) as i64,
            logics_msg_timestamp: u64_at(8) as i64,
            index_msg_timestamp: u64_at(16) as i64,
            commit_log_flushed: u64_at(24),
            logics_flushed: u64_at(32),
            index_flushed: u64_at(40),
        })
    }
}

pub(crate) struct CheckpointFile {
    path: PathBuf,
    file: File,
}

impl CheckpointFile {
    /// Opens (creating) the file and reads the checkpoint it holds, if valid.
    pub(crate) fn open(path: &Path) -> Result<(Self, Option<Checkpoint>), StoreError> {
        if let Some(dir) = path.parent() {
            crate::mmap::create_dir_durably(dir)?;
        }
        let existed = path.exists();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .at(path)?;
        if !existed {
            file.set_len(FILE_LEN).at(path)?;
            if let Some(dir) = path.parent() {
                fsync_dir(dir)?;
            }
        }
        let mut buf = [0u8; LEN];
        let current = match file.read_exact_at(&mut buf, 0) {
            Ok(()) => Checkpoint::decode(&buf),
            Err(_) => None,
        };
        Ok((
            CheckpointFile {
                path: path.to_owned(),
                file,
            },
            current,
        ))
    }

    /// Writes and `fdatasync`s the checkpoint.
    pub(crate) fn store(&self, cp: &Checkpoint) -> Result<(), StoreError> {
        self.file.write_all_at(&cp.encode(), 0).at(&self.path)?;
        self.file.sync_data().at(&self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_detects_tearing() {
        let cp = Checkpoint {
            physic_msg_timestamp: 1,
            logics_msg_timestamp: 2,
            index_msg_timestamp: 3,
            commit_log_flushed: 4,
            logics_flushed: 5,
            index_flushed: 6,
        };
        let b = cp.encode();
        assert_eq!(Checkpoint::decode(&b), Some(cp));
        assert_eq!(
            &b[0..8],
            &1i64.to_be_bytes(),
            "physicMsgTimestamp first, as RocketMQ"
        );
        for i in 0..LEN {
            let mut bad = b;
            bad[i] ^= 1;
            assert_eq!(Checkpoint::decode(&bad), None, "byte {i}");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint");
        let (f, none) = CheckpointFile::open(&path).unwrap();
        assert_eq!(none, None);
        f.store(&cp).unwrap();
        drop(f);
        assert_eq!(CheckpointFile::open(&path).unwrap().1, Some(cp));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 4096);
    }
}
