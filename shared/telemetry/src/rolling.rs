//! A log file that rolls over daily and by size, as RocketMQ's logback
//! appenders do: the live file is `<dir>/<name>.log`; a full one, or
//! yesterday's, moves to `<dir>/otherdays/<name>.<yyyy-mm-dd>.<n>.log`
//! (`n` counts from 0 within a day), and only the newest
//! [`RollingLimits::max_files`] of those are kept.
//!
//! Days are UTC days, like the time stamps `tracing-subscriber` writes.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// The folder under the log folder that holds rolled-over files
/// (RocketMQ's logback configuration uses the same name).
pub const ROLLED_DIR: &str = "otherdays";

/// When a file rolls over and how many rolled files stay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollingLimits {
    /// A file rolls over before a write would take it past this many bytes
    /// (a single larger line still goes into a fresh file whole).
    pub max_file_size: u64,
    /// Rolled files kept per log; older ones are deleted.
    pub max_files: usize,
}

impl Default for RollingLimits {
    /// 128 MiB and 10 files, RocketMQ 4.x's `broker.log` policy.
    fn default() -> Self {
        RollingLimits {
            max_file_size: 128 * 1024 * 1024,
            max_files: 10,
        }
    }
}

type Clock = Box<dyn Fn() -> i64 + Send + Sync>;

/// One rolling log file. `&RollingFile` is an [`io::Write`]; each `write`
/// call is appended whole (a formatted log line), under a lock.
pub struct RollingFile {
    dir: PathBuf,
    name: String,
    limits: RollingLimits,
    today: Clock,
    state: Mutex<State>,
}

struct State {
    file: File,
    size: u64,
    /// The UTC day (days since 1970-01-01) the live file's lines belong to.
    day: i64,
}

impl RollingFile {
    /// Opens (appending) or creates `<dir>/<name>.log`, creating `dir`.
    pub fn open(dir: &Path, name: &str, limits: RollingLimits) -> io::Result<RollingFile> {
        Self::with_clock(dir, name, limits, Box::new(utc_day_now))
    }

    /// As [`open`](Self::open), with the current day (days since the epoch)
    /// taken from `today`: tests move the calendar with it.
    pub fn with_clock(
        dir: &Path,
        name: &str,
        limits: RollingLimits,
        today: Clock,
    ) -> io::Result<RollingFile> {
        fs::create_dir_all(dir.join(ROLLED_DIR))?;
        let path = live_path(dir, name);
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let meta = file.metadata()?;
        // A file left from an earlier day rolls over on the first write; an
        // empty one (just created) has nothing to roll and belongs to today.
        let day = if meta.len() == 0 {
            today()
        } else {
            meta.modified().map(utc_day).unwrap_or_else(|_| today())
        };
        Ok(RollingFile {
            dir: dir.to_path_buf(),
            name: name.to_owned(),
            limits,
            today,
            state: Mutex::new(State {
                file,
                size: meta.len(),
                day,
            }),
        })
    }

    /// `<dir>/<name>.log`.
    pub fn path(&self) -> PathBuf {
        live_path(&self.dir, &self.name)
    }

    /// The rolled files of this log, oldest first.
    pub fn rolled(&self) -> io::Result<Vec<PathBuf>> {
        Ok(self
            .rolled_sorted()?
            .into_iter()
            .map(|(_, _, path)| path)
            .collect())
    }

    fn rolled_sorted(&self) -> io::Result<Vec<(i64, u64, PathBuf)>> {
        let mut found = Vec::new();
        let prefix = format!("{}.", self.name);
        for entry in fs::read_dir(self.dir.join(ROLLED_DIR))? {
            let entry = entry?;
            let file_name = entry.file_name();
            let Some(file_name) = file_name.to_str() else {
                continue;
            };
            let Some(rest) = file_name
                .strip_prefix(&prefix)
                .and_then(|rest| rest.strip_suffix(".log"))
            else {
                continue;
            };
            // rest = "yyyy-mm-dd.n"; anything else is not ours.
            let Some((date, index)) = rest.rsplit_once('.') else {
                continue;
            };
            let (Some(day), Ok(index)) = (parse_date(date), index.parse::<u64>()) else {
                continue;
            };
            found.push((day, index, entry.path()));
        }
        found.sort();
        Ok(found)
    }

    fn roll(&self, state: &mut State) -> io::Result<()> {
        state.file.flush()?;
        let date = format_date(state.day);
        let next = self
            .rolled_sorted()?
            .iter()
            .filter(|(day, _, _)| *day == state.day)
            .map(|(_, index, _)| index + 1)
            .max()
            .unwrap_or(0);
        let target = self
            .dir
            .join(ROLLED_DIR)
            .join(format!("{}.{date}.{next}.log", self.name));
        fs::rename(self.path(), &target)?;
        state.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path())?;
        state.size = 0;
        let rolled = self.rolled_sorted()?;
        let excess = rolled.len().saturating_sub(self.limits.max_files);
        for (_, _, path) in rolled.into_iter().take(excess) {
            fs::remove_file(path)?;
        }
        Ok(())
    }
}

impl Write for &RollingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let today = (self.today)();
        let full = state.size > 0 && state.size + buf.len() as u64 > self.limits.max_file_size;
        if full || today != state.day {
            self.roll(&mut state)?;
            state.day = today;
        }
        state.file.write_all(buf)?;
        state.size += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        state.file.flush()
    }
}

fn live_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.log"))
}

fn utc_day_now() -> i64 {
    utc_day(SystemTime::now())
}

fn utc_day(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(since) => (since.as_secs() / 86_400) as i64,
        Err(before) => -((before.duration().as_secs() / 86_400) as i64) - 1,
    }
}

/// The proleptic Gregorian (year, month, day) of a day counted from
/// 1970-01-01 (the civil-from-days conversion over 400-year eras).
pub fn civil_date(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Days from 1970-01-01 of a (year, month, day); the inverse of
/// [`civil_date`].
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let month = i64::from(month);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn format_date(days: i64) -> String {
    let (year, month, day) = civil_date(days);
    format!("{year:04}-{month:02}-{day:02}")
}

fn parse_date(text: &str) -> Option<i64> {
    let mut parts = text.split('-');
    let year = parts.next()?.parse().ok()?;
    let month = parts.next()?.parse().ok()?;
    let day = parts.next()?.parse().ok()?;
    if parts.next().is_some() || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    Some(days_from_civil(year, month, day))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::sync::Arc;

    #[test]
    fn dates_round_trip_and_match_known_days() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(11_016), (2000, 2, 29));
        assert_eq!(format_date(20_789), "2026-12-02");
        for days in (-700_000..800_000).step_by(997) {
            let (y, m, d) = civil_date(days);
            assert_eq!(days_from_civil(y, m, d), days);
            assert_eq!(parse_date(&format_date(days)), Some(days));
        }
        assert_eq!(parse_date("2026-13-01"), None);
        assert_eq!(parse_date("2026-12"), None);
        assert_eq!(parse_date("x-1-1"), None);
    }

    fn write_line(file: &RollingFile, line: &str) {
        let mut writer = file;
        writer.write_all(line.as_bytes()).unwrap();
    }

    #[test]
    fn rolls_by_size_and_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let limits = RollingLimits {
            max_file_size: 100,
            max_files: 3,
        };
        let file =
            RollingFile::with_clock(dir.path(), "broker", limits, Box::new(|| 20_789)).unwrap();
        for i in 0..30 {
            write_line(&file, &format!("line {i:02} {}\n", "x".repeat(30)));
        }
        let rolled = file.rolled().unwrap();
        let names: Vec<String> = rolled
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        // 30 lines of 40 bytes, two per file: 15 files, the last one live.
        assert_eq!(
            names,
            [
                "broker.2026-12-02.11.log",
                "broker.2026-12-02.12.log",
                "broker.2026-12-02.13.log"
            ]
        );
        let live = fs::read_to_string(file.path()).unwrap();
        assert!(live.starts_with("line 28 ") && live.contains("line 29 "));
        assert!(fs::read_to_string(&rolled[2])
            .unwrap()
            .starts_with("line 26 "));
        for path in &rolled {
            assert!(fs::metadata(path).unwrap().len() <= 100);
        }
    }

    #[test]
    fn rolls_when_the_day_changes_and_on_reopen_after_a_day() {
        let dir = tempfile::tempdir().unwrap();
        let day = Arc::new(AtomicI64::new(20_789));
        let clock = {
            let day = day.clone();
            Box::new(move || day.load(Ordering::SeqCst))
        };
        let file = RollingFile::with_clock(dir.path(), "namesrv", RollingLimits::default(), clock)
            .unwrap();
        // The file was just created today (by the real clock): pin it.
        file.state.lock().unwrap().day = 20_789;
        write_line(&file, "first day\n");
        day.store(20_790, Ordering::SeqCst);
        write_line(&file, "second day\n");
        let rolled = file.rolled().unwrap();
        assert_eq!(rolled.len(), 1);
        assert!(rolled[0].ends_with("otherdays/namesrv.2026-12-02.0.log"));
        assert_eq!(fs::read_to_string(&rolled[0]).unwrap(), "first day\n");
        assert_eq!(fs::read_to_string(file.path()).unwrap(), "second day\n");

        // Reopening appends to today's file.
        drop(file);
        let again = RollingFile::with_clock(
            dir.path(),
            "namesrv",
            RollingLimits::default(),
            Box::new(utc_day_now),
        )
        .unwrap();
        write_line(&again, "more\n");
        assert!(fs::read_to_string(again.path())
            .unwrap()
            .ends_with("second day\nmore\n"));
    }

    #[test]
    fn strangers_in_the_rolled_folder_are_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join(ROLLED_DIR)).unwrap();
        for stray in [
            "broker.notes.log",
            "broker.2026-12-02.x.log",
            "store.2026-12-02.0.log",
        ] {
            fs::write(dir.path().join(ROLLED_DIR).join(stray), "keep").unwrap();
        }
        let limits = RollingLimits {
            max_file_size: 10,
            max_files: 1,
        };
        let file =
            RollingFile::with_clock(dir.path(), "broker", limits, Box::new(|| 20_789)).unwrap();
        for _ in 0..5 {
            write_line(&file, "0123456789\n");
        }
        assert_eq!(file.rolled().unwrap().len(), 1);
        for stray in [
            "broker.notes.log",
            "broker.2026-12-02.x.log",
            "store.2026-12-02.0.log",
        ] {
            assert!(dir.path().join(ROLLED_DIR).join(stray).exists(), "{stray}");
        }
    }
}
