//! The timer service's checkpoint (`config/timerCheckpoint.json`): how far
//! the timer topic's queue has been delivered.
//!
//! Timer messages arrive in `rmq_sys_wheel_timer` queue 0 in send order but
//! fall due in any order, so "delivered" is not a prefix of the queue. The
//! checkpoint keeps the lowest queue offset not yet delivered (everything
//! below it was) and the runs above it already delivered out of order; at
//! start the service reads the queue from that offset and skips those runs.
//! It is written after each delivery (at-least-once: a crash between a
//! delivery and the write delivers that message again).
//!
//! A slave copies its master's (GET_TIMER_CHECK_POINT, `tasks::slave_sync`)
//! so that, restarted as master on the same store, it does not deliver
//! again what its master delivered. The copy is a [`TimerCheckpoint::union`]
//! with the slave's own: a delivery stays a delivery, so a master that
//! lost or shortened its checkpoint cannot move the slave's back (that
//! would only cause duplicates), and progress is never refused.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::persist::{read_json, write_json};
use super::MetadataError;

/// Most delivered runs a checkpoint keeps; runs past it are delivered again
/// after a restart (duplicates, never a loss).
pub const MAX_DELIVERED_RUNS: usize = 4096;

/// Where the timer service stands in the timer topic's queue.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TimerCheckpoint {
    /// Lowest timer queue offset not yet delivered.
    pub offset: u64,
    /// Runs `[start, end)` above `offset` that were delivered, ascending and
    /// disjoint. Losing one only delivers its messages again.
    pub delivered: Vec<(u64, u64)>,
}

impl TimerCheckpoint {
    /// The file under a store's `config/` folder.
    pub fn path(config_dir: &Path) -> PathBuf {
        config_dir.join("timerCheckpoint.json")
    }

    /// The checkpoint at `path`; the start of the queue when there is none.
    pub fn load(path: &Path) -> Result<TimerCheckpoint, MetadataError> {
        let checkpoint: TimerCheckpoint = read_json(path)?.unwrap_or_default();
        checkpoint
            .check()
            .map_err(|reason| MetadataError::Corrupt {
                path: path.to_owned(),
                reason,
            })?;
        Ok(checkpoint)
    }

    /// Writes the checkpoint atomically (see [`write_json`]).
    pub fn save(&self, path: &Path) -> Result<(), MetadataError> {
        write_json(path, self)
    }

    /// A checkpoint that came over the network (GET_TIMER_CHECK_POINT's
    /// body), held to what [`TimerCheckpoint::load`] accepts from a file,
    /// and to at most [`MAX_DELIVERED_RUNS`] runs.
    pub fn decode(json: &[u8]) -> Result<TimerCheckpoint, String> {
        let checkpoint: TimerCheckpoint =
            mq_protocol::route::decode_json(json).map_err(|e| e.to_string())?;
        checkpoint.check()?;
        if checkpoint.delivered.len() > MAX_DELIVERED_RUNS {
            return Err(format!(
                "{} delivered runs, more than {MAX_DELIVERED_RUNS}",
                checkpoint.delivered.len()
            ));
        }
        Ok(checkpoint)
    }

    /// One past the highest queue offset the checkpoint says anything
    /// about: a queue shorter than this is not the one it describes.
    pub fn end(&self) -> u64 {
        self.delivered.last().map_or(self.offset, |&(_, end)| end)
    }

    /// Every entry either checkpoint counts as delivered, in canonical form
    /// (runs merged, the one from 0 folded into `offset`), at most
    /// [`MAX_DELIVERED_RUNS`] runs (the highest dropped: delivered again,
    /// never lost).
    pub fn union(&self, other: &TimerCheckpoint) -> TimerCheckpoint {
        let mut runs: Vec<(u64, u64)> = [(0, self.offset), (0, other.offset)]
            .into_iter()
            .chain(self.delivered.iter().copied())
            .chain(other.delivered.iter().copied())
            .filter(|&(start, end)| end > start)
            .collect();
        runs.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(runs.len());
        for (start, end) in runs {
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        let offset = match merged.first() {
            Some(&(0, end)) => {
                merged.remove(0);
                end
            }
            _ => 0,
        };
        merged.truncate(MAX_DELIVERED_RUNS);
        TimerCheckpoint {
            offset,
            delivered: merged,
        }
    }

    /// Whether the runs are above `offset`, non-empty, ascending, disjoint.
    fn check(&self) -> Result<(), String> {
        let mut floor = self.offset;
        for &(start, end) in &self.delivered {
            if start < floor || end <= start {
                return Err(format!(
                    "delivered run [{start}, {end}) is empty, unordered or below {floor}"
                ));
            }
            floor = end;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_survives_a_reload_and_a_missing_file_is_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = TimerCheckpoint::path(dir.path());
        assert_eq!(
            TimerCheckpoint::load(&path).unwrap(),
            TimerCheckpoint::default()
        );
        let checkpoint = TimerCheckpoint {
            offset: 3,
            delivered: vec![(4, 6), (9, 10)],
        };
        checkpoint.save(&path).unwrap();
        assert_eq!(TimerCheckpoint::load(&path).unwrap(), checkpoint);
    }

    #[test]
    fn a_checkpoint_from_the_network_is_held_to_the_file_rules() {
        let good = TimerCheckpoint {
            offset: 3,
            delivered: vec![(4, 6), (9, 10)],
        };
        let json = serde_json::to_vec(&good).unwrap();
        assert_eq!(TimerCheckpoint::decode(&json).unwrap(), good);
        assert_eq!(good.end(), 10);
        assert_eq!(TimerCheckpoint::default().end(), 0);
        for bad in [
            &b""[..],
            b"not json",
            b"{\"offset\":-1}",
            b"{\"offset\":\"3\"}",
            b"{\"offset\":1,\"delivered\":[[0,2]]}",
            b"{\"offset\":1,\"delivered\":[[3,3]]}",
            b"{\"offset\":1,\"delivered\":[[5,9],[2,4]]}",
            b"{\"offset\":1,\"delivered\":[[2,6],[4,9]]}",
            b"{\"offset\":1,\"delivered\":[[2]]}",
            b"{\"offset\":1,\"delivered\":[[2,18446744073709551616]]}",
        ] {
            assert!(
                TimerCheckpoint::decode(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let too_many = TimerCheckpoint {
            offset: 0,
            delivered: (0..=MAX_DELIVERED_RUNS as u64)
                .map(|i| (2 * i + 1, 2 * i + 2))
                .collect(),
        };
        assert!(TimerCheckpoint::decode(&serde_json::to_vec(&too_many).unwrap()).is_err());
    }

    #[test]
    fn a_union_keeps_every_delivery_of_either() {
        let cp = |offset, delivered: &[(u64, u64)]| TimerCheckpoint {
            offset,
            delivered: delivered.to_vec(),
        };
        let slave = cp(3, &[(5, 7), (10, 12)]);
        // The master went further: it is taken.
        let master = cp(8, &[(10, 11), (13, 14)]);
        assert_eq!(slave.union(&master), cp(8, &[(10, 12), (13, 14)]));
        // The master knows less (it lost its file, or dropped runs): the
        // slave keeps what it had.
        assert_eq!(slave.union(&TimerCheckpoint::default()), slave);
        assert_eq!(slave.union(&cp(1, &[])), slave);
        // Runs that meet the offset fold into it; adjacent runs merge.
        assert_eq!(
            cp(0, &[(2, 3)]).union(&cp(0, &[(0, 2), (3, 4), (6, 7)])),
            cp(4, &[(6, 7)])
        );
        assert_eq!(cp(2, &[]).union(&cp(0, &[(2, 5)])), cp(5, &[]));
        // Either way round, and the result passes the file's check.
        for (a, b) in [(&slave, &master), (&master, &slave)] {
            let u = a.union(b);
            assert_eq!(u, b.union(a));
            u.check().unwrap();
        }
        // Too many runs: the highest go (delivered again, never lost).
        let many = TimerCheckpoint {
            offset: 0,
            delivered: (0..MAX_DELIVERED_RUNS as u64 + 5)
                .map(|i| (2 * i + 1, 2 * i + 2))
                .collect(),
        };
        let u = many.union(&TimerCheckpoint::default());
        assert_eq!(u.delivered.len(), MAX_DELIVERED_RUNS);
        assert_eq!(u.delivered[..], many.delivered[..MAX_DELIVERED_RUNS]);
    }

    #[test]
    fn overlapping_or_low_runs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = TimerCheckpoint::path(dir.path());
        for delivered in [vec![(2, 4)], vec![(4, 4)], vec![(4, 8), (6, 9)]] {
            let bad = TimerCheckpoint {
                offset: 3,
                delivered,
            };
            bad.save(&path).unwrap();
            assert!(
                matches!(
                    TimerCheckpoint::load(&path),
                    Err(MetadataError::Corrupt { .. })
                ),
                "{bad:?}"
            );
        }
    }
}
