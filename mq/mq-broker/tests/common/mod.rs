//! What mq-broker's test binaries share beyond `mq-testkit`: the broker
//! settings these tests were written against, and `mqbroker` processes
//! started from a properties file.

// Each test binary uses part of this module.
#![allow(dead_code, unused_imports)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use mq_broker::BrokerConfig;
use mq_store::MessageStoreConfig;

pub use mq_testkit::frames::*;
pub use mq_testkit::wait::watch_for_absence;
pub use mq_testkit::{
    wait_explained, wait_for, wait_for_within, wait_until, NameServer, TestBroker, WAIT,
};

/// The timings these tests expect on top of [`mq_testkit::broker_configs`]:
/// check-backs of half messages older than 300 ms every 200 ms, and delay
/// levels of 1 s for the first three levels, 2 s after.
pub fn short_timings(broker: &mut BrokerConfig, store: &mut MessageStoreConfig) {
    broker.transaction_time_out = 300;
    broker.transaction_check_interval = 200;
    store.message_delay_level = "1s 1s 1s 2s 2s 2s 2s 2s 2s 2s 2s 2s 2s 2s 2s 2s 2s 2s".into();
}

/// Broker `name` with [`short_timings`], store under `root`.
pub async fn start_broker(name: &str, root: &Path, namesrv: &str) -> TestBroker {
    start_broker_with(name, root, namesrv, |_, _| {}).await
}

/// Broker `name` with [`short_timings`] and then `tweak`, store under `root`.
pub async fn start_broker_with(
    name: &str,
    root: &Path,
    namesrv: &str,
    tweak: impl FnOnce(&mut BrokerConfig, &mut MessageStoreConfig),
) -> TestBroker {
    TestBroker::start_with(name, root, namesrv, |broker, store| {
        short_timings(broker, store);
        tweak(broker, store);
    })
    .await
}

/// A `mqbroker` process with its addresses and its stderr log; killed on drop.
pub struct BrokerProcess {
    pub child: Child,
    /// `host:port` clients send to.
    pub addr: String,
    /// `host:port` slaves replicate from.
    pub ha_addr: String,
    log: PathBuf,
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl BrokerProcess {
    /// Starts `mqbroker -c config`, its stderr in `config` with the extension
    /// `log` and its log files in `config` with the extension `logs`, and
    /// waits for its boot and replication lines.
    pub fn spawn(config: &Path) -> BrokerProcess {
        let log = config.with_extension("log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_mqbroker"))
            .arg("-c")
            .arg(config)
            .env("ROCKETMQ_LOG_ROOT", config.with_extension("logs"))
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("the broker's log file"))
            .spawn()
            .expect("mqbroker starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let boot = lines.next().expect("a boot line").expect("utf-8 output");
        assert!(
            boot.contains("boot success"),
            "{boot}\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        let addr = boot
            .split(", ")
            .nth(1)
            .and_then(|rest| rest.split(']').next())
            .expect("the address in the boot line")
            .to_owned();
        let ha = lines
            .next()
            .expect("a replication line")
            .expect("utf-8 output");
        let ha_addr = ha
            .rsplit(' ')
            .next()
            .expect("the replication address")
            .to_owned();
        // Keep reading so the broker never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        BrokerProcess {
            child,
            addr,
            ha_addr,
            log,
        }
    }

    /// Sends signal `sig` (`TERM`, `KILL`, `STOP`, ...).
    pub fn signal(&self, sig: &str) {
        signal(&self.child, sig);
    }

    /// SIGKILL, and waits for the process to be gone.
    pub fn kill(mut self) {
        self.signal("KILL");
        let _ = self.child.wait();
    }

    /// SIGTERM (clean stop), and waits for it.
    pub fn stop(mut self) {
        self.signal("TERM");
        let _ = self.child.wait();
    }

    /// What the broker wrote to stderr and to its `broker.log` so far.
    pub fn log(&self) -> String {
        let stderr = std::fs::read_to_string(&self.log).unwrap_or_default();
        let file = std::fs::read_to_string(self.log.with_extension("logs").join("broker.log"))
            .unwrap_or_default();
        stderr + &file
    }
}

/// `broker-a.properties` in `dir`: a master registering with `namesrv`, on
/// port 0, with small files under `dir/store`, plus the `extra` lines.
pub fn write_config(dir: &Path, namesrv: &str, extra: &str) -> PathBuf {
    let path = dir.join("broker-a.properties");
    let text = format!(
        "brokerClusterName=DefaultCluster\nbrokerName=broker-a\nbrokerId=0\nbrokerRole=ASYNC_MASTER\n\
         namesrvAddr={namesrv}\nlistenPort=0\nbindAddress=127.0.0.1\nbrokerIP1=127.0.0.1\n\
         storePathRootDir={}\nmapedFileSizeCommitLog=8388608\nmapedFileSizeConsumeQueue=20000\n\
         maxHashSlotNum=1000\nmaxIndexNum=4000\n{extra}",
        dir.join("store").display()
    );
    std::fs::write(&path, text).expect("the config file is written");
    path
}

/// A file from `deploy/` as an operator would start it on this machine:
/// name server, addresses, ports and store paths replaced (the store under
/// `dir/<file stem>`), small files, then the `extra` lines. Written to
/// `dir/<file name>`.
pub fn deploy_file(file: &Path, dir: &Path, namesrv: &str, extra: &str) -> PathBuf {
    let text = std::fs::read_to_string(file).expect("the deploy file");
    let name = file
        .file_stem()
        .expect("a file name")
        .to_string_lossy()
        .into_owned();
    let store = dir.join(&name);
    let mut out = String::new();
    for line in text.lines() {
        let replaced = match line.split('=').next().unwrap_or("") {
            "namesrvAddr" => format!("namesrvAddr={namesrv}"),
            "brokerIP1" => "brokerIP1=127.0.0.1".to_owned(),
            "listenPort" => "listenPort=0\nbindAddress=127.0.0.1".to_owned(),
            "haListenPort" => "haListenPort=0".to_owned(),
            "storePathRootDir" => format!("storePathRootDir={}", store.display()),
            "storePathCommitLog" => {
                format!("storePathCommitLog={}", store.join("commitlog").display())
            }
            _ => line.to_owned(),
        };
        out.push_str(&replaced);
        out.push('\n');
    }
    // Small files for a test machine.
    out.push_str("mapedFileSizeCommitLog=8388608\nmaxHashSlotNum=1000\nmaxIndexNum=4000\n");
    out.push_str(extra);
    let path = dir.join(format!("{name}.properties"));
    std::fs::write(&path, out).expect("the config file is written");
    path
}

/// Sends signal `sig` to `child` with `kill(1)`.
pub fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{sig} {}", child.id());
}
