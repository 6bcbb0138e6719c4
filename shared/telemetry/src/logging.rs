//! Where the processes' `tracing` output goes.
//!
//! RocketMQ writes `namesrv.log` and `broker.log` under
//! `${user.home}/logs/rocketmqlogs`, overridable with the `rocketmq.log.root`
//! system property. Here the folder is, in order of precedence: the
//! [`LOG_ROOT_ENV`] environment variable, the configuration key
//! (`rocketmqLogRoot`), then `$HOME/logs/rocketmqlogs`.

use std::io::{self, IsTerminal};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tracing_subscriber::filter::{filter_fn, EnvFilter};
use tracing_subscriber::layer::{Layer, Layered, SubscriberExt};
use tracing_subscriber::registry::Registry;
use tracing_subscriber::util::SubscriberInitExt;

use crate::rolling::{RollingFile, RollingLimits};

/// Environment variable naming the log folder (RocketMQ's
/// `-Drocketmq.log.root`).
pub const LOG_ROOT_ENV: &str = "ROCKETMQ_LOG_ROOT";

/// `$HOME/logs/rocketmqlogs` (the current folder's `logs/rocketmqlogs`
/// when `HOME` is unset).
pub fn default_log_root() -> PathBuf {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    home.join("logs").join("rocketmqlogs")
}

/// The log folder: [`LOG_ROOT_ENV`] if set and not empty, else `configured`
/// if not empty, else [`default_log_root`].
pub fn log_root(configured: &str) -> PathBuf {
    match std::env::var(LOG_ROOT_ENV) {
        Ok(env) if !env.trim().is_empty() => PathBuf::from(env.trim()),
        _ if !configured.trim().is_empty() => PathBuf::from(configured.trim()),
        _ => default_log_root(),
    }
}

/// One log file and the `tracing` targets (module paths, e.g. `mq_store`)
/// whose lines it gets; no targets means every line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFile {
    /// File name without `.log`.
    pub name: String,
    /// Target prefixes (a target matches `t` itself and `t::...`).
    pub targets: Vec<String>,
}

impl LogFile {
    /// A file that gets every line.
    pub fn all(name: &str) -> LogFile {
        LogFile {
            name: name.to_owned(),
            targets: Vec::new(),
        }
    }

    /// A file that gets the lines of these targets only.
    pub fn of(name: &str, targets: &[&str]) -> LogFile {
        LogFile {
            name: name.to_owned(),
            targets: targets.iter().map(|t| (*t).to_owned()).collect(),
        }
    }

    fn wants(&self, target: &str) -> bool {
        self.targets.is_empty()
            || self.targets.iter().any(|t| {
                target
                    .strip_prefix(t.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
            })
    }
}

/// When lines also go to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stderr {
    /// Only when stderr is a terminal (someone is watching).
    WhenTerminal,
    /// Always (a supervisor or a test captures stderr).
    Always,
    /// Never.
    Never,
}

/// Everything [`init`] needs.
#[derive(Debug, Clone)]
pub struct Logging {
    /// The log folder (see [`log_root`]).
    pub dir: PathBuf,
    /// The files in it.
    pub files: Vec<LogFile>,
    /// When to roll and how many rolled files to keep.
    pub limits: RollingLimits,
    /// Filter when `RUST_LOG` is unset, e.g. `info`.
    pub default_filter: String,
    /// Whether lines also go to stderr.
    pub stderr: Stderr,
}

impl Logging {
    /// Every line to `<dir>/<name>.log` (and stderr when a terminal), at
    /// `info` unless `RUST_LOG` says otherwise.
    pub fn single(dir: &Path, name: &str) -> Logging {
        Logging {
            dir: dir.to_path_buf(),
            files: vec![LogFile::all(name)],
            limits: RollingLimits::default(),
            default_filter: "info".to_owned(),
            stderr: Stderr::WhenTerminal,
        }
    }

    /// The files, opened (the folder is created); what [`init`] installs.
    pub fn open(&self) -> io::Result<Vec<(LogFile, Arc<RollingFile>)>> {
        self.files
            .iter()
            .map(|spec| {
                RollingFile::open(&self.dir, &spec.name, self.limits)
                    .map_err(|e| {
                        io::Error::new(
                            e.kind(),
                            format!(
                                "cannot open log file {}: {e}",
                                self.dir.join(format!("{}.log", spec.name)).display()
                            ),
                        )
                    })
                    .map(|file| (spec.clone(), Arc::new(file)))
            })
            .collect()
    }
}

type Base = Layered<EnvFilter, Registry>;
type BoxedLayer = Box<dyn Layer<Base> + Send + Sync>;

/// Installs the process's subscriber: each file gets its targets' lines,
/// stderr everything (as [`Logging::stderr`] says), all under one filter
/// (`RUST_LOG`, else [`Logging::default_filter`]). A second call in one
/// process changes nothing. Fails only when a file cannot be opened.
pub fn init(logging: &Logging) -> io::Result<()> {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(&logging.default_filter));
    let mut layers: Vec<BoxedLayer> = Vec::new();
    for (spec, file) in logging.open()? {
        let layer = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(file)
            .with_filter(filter_fn(move |meta| spec.wants(meta.target())));
        layers.push(Box::new(layer));
    }
    let to_stderr = match logging.stderr {
        Stderr::WhenTerminal => io::stderr().is_terminal(),
        Stderr::Always => true,
        Stderr::Never => false,
    };
    if to_stderr {
        layers.push(Box::new(
            tracing_subscriber::fmt::layer().with_writer(io::stderr),
        ));
    }
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(layers)
        .try_init();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_match_whole_module_paths() {
        let store = LogFile::of("store", &["mq_store"]);
        assert!(store.wants("mq_store"));
        assert!(store.wants("mq_store::commit_log"));
        assert!(!store.wants("mq_store_extra"));
        assert!(!store.wants("mq_broker"));
        assert!(LogFile::all("broker").wants("anything::at_all"));
    }

    #[test]
    fn an_unwritable_folder_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "not a folder").unwrap();
        let error = Logging::single(&blocker.join("logs"), "broker")
            .open()
            .err()
            .expect("a file in the way");
        assert!(error.to_string().contains("broker.log"), "{error}");
    }
}
