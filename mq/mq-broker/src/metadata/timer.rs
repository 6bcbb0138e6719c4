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

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::persist::{read_json, write_json};
use super::MetadataError;

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
