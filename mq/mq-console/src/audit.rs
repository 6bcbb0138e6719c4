//! The audit log: who changed what, when, and what came of it.
//!
//! Every form that changes the cluster (or, through the console, the shop)
//! is recorded by the `audit_layer` of `web` after its handler ran: the
//! operator, the action (its path), the names it acted on (never a message
//! body, a password or a CSRF token), and the outcome the operator was
//! shown. Entries are JSON lines appended to `audit.log` under the
//! console's data folder and synced before the form's answer leaves, so
//! that an acknowledged change is on record after a crash; the newest
//! [`KEPT`] are kept in memory for the page, read back from the file at
//! start.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// The file's name under the data folder.
pub const AUDIT_FILE: &str = "audit.log";
/// Entries the page can show.
pub const KEPT: usize = 2000;
/// Longest value kept per field.
const MAX_VALUE: usize = 200;

/// One operator action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Milliseconds since the epoch.
    pub at: i64,
    pub who: String,
    /// The form's path, e.g. `/topic/delete`.
    pub action: String,
    /// The fields it acted on (`topic=T`, `group=G`, ...).
    pub target: Vec<(String, String)>,
    pub ok: bool,
    /// What the operator was told.
    pub outcome: String,
}

/// Form fields never recorded: secrets and bulk.
const SKIPPED: &[&str] = &["_csrf", "body", "confirm", "password"];

/// The fields of a form worth recording, each cut to [`MAX_VALUE`].
pub fn target_of(fields: &[(String, String)]) -> Vec<(String, String)> {
    fields
        .iter()
        .filter(|(k, v)| !SKIPPED.contains(&k.as_str()) && !v.trim().is_empty())
        .map(|(k, v)| {
            let mut v = v.trim().to_owned();
            if v.len() > MAX_VALUE {
                let mut end = MAX_VALUE;
                while !v.is_char_boundary(end) {
                    end -= 1;
                }
                v.truncate(end);
                v.push('…');
            }
            (k.clone(), v)
        })
        .collect()
}

pub struct AuditLog {
    path: Option<PathBuf>,
    inner: Mutex<Inner>,
}

struct Inner {
    file: Option<File>,
    recent: VecDeque<Entry>,
}

impl AuditLog {
    /// The log under `dir` (created when missing), its newest entries read
    /// back; without a folder the log is kept in memory only.
    pub fn open(dir: Option<&Path>) -> std::io::Result<AuditLog> {
        let mut recent = VecDeque::new();
        let (path, file) = match dir {
            Some(dir) => {
                std::fs::create_dir_all(dir)?;
                let path = dir.join(AUDIT_FILE);
                if let Ok(existing) = File::open(&path) {
                    for line in BufReader::new(existing).lines() {
                        let Ok(line) = line else { break };
                        // A torn last line (a crash mid-write) is skipped.
                        if let Ok(entry) = serde_json::from_str::<Entry>(&line) {
                            recent.push_back(entry);
                            if recent.len() > KEPT {
                                recent.pop_front();
                            }
                        }
                    }
                }
                let file = OpenOptions::new().create(true).append(true).open(&path)?;
                (Some(path), Some(file))
            }
            None => (None, None),
        };
        Ok(AuditLog {
            path,
            inner: Mutex::new(Inner { file, recent }),
        })
    }

    /// Where the log is written, if anywhere.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Records `entry`: appended and synced to the file, kept for the page.
    pub fn record(&self, entry: Entry) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(file) = inner.file.as_mut() {
            let mut line = serde_json::to_string(&entry).unwrap_or_default();
            line.push('\n');
            if let Err(error) = file
                .write_all(line.as_bytes())
                .and_then(|()| file.sync_data())
            {
                tracing::error!(%error, "writing the audit log failed");
            }
        }
        tracing::info!(who = %entry.who, action = %entry.action, ok = entry.ok, "operator action");
        inner.recent.push_back(entry);
        if inner.recent.len() > KEPT {
            inner.recent.pop_front();
        }
    }

    /// The newest entries first, at most `limit`.
    pub fn newest(&self, limit: usize) -> Vec<Entry> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.recent.iter().rev().take(limit).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: i64) -> Entry {
        Entry {
            at: n,
            who: "admin".into(),
            action: "/topic/delete".into(),
            target: vec![("topic".into(), format!("T{n}"))],
            ok: true,
            outcome: "deleted".into(),
        }
    }

    #[test]
    fn entries_survive_a_reopen_and_a_torn_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(Some(dir.path())).unwrap();
        log.record(entry(1));
        log.record(entry(2));
        drop(log);
        let mut file = OpenOptions::new()
            .append(true)
            .open(dir.path().join(AUDIT_FILE))
            .unwrap();
        file.write_all(b"{\"at\":3,\"who\":").unwrap();
        drop(file);
        let log = AuditLog::open(Some(dir.path())).unwrap();
        assert_eq!(log.newest(10), [entry(2), entry(1)]);
        log.record(entry(4));
        assert_eq!(log.newest(1), [entry(4)]);
    }

    #[test]
    fn secrets_and_bodies_are_not_recorded() {
        let fields = vec![
            ("_csrf".to_owned(), "x".to_owned()),
            ("topic".to_owned(), "T".to_owned()),
            ("body".to_owned(), "secret".to_owned()),
            ("key".to_owned(), "k".repeat(500)),
            ("tag".to_owned(), " ".to_owned()),
        ];
        let target = target_of(&fields);
        assert_eq!(target[0], ("topic".to_owned(), "T".to_owned()));
        assert_eq!(target.len(), 2);
        assert!(target[1].1.len() < 210);
    }
}
