//! Master/slave replication (RocketMQ's HA service), between brokers of one
//! `brokerName`.
//!
//! Parts:
//! - [`frame`]: the wire format (a slave's 8-byte offset reports, the
//!   master's `[offset][size][body]` transfers); pure functions.
//! - [`master`]: the master's replication server (`haListenPort`). Per slave
//!   connection a writer streams commit log bytes from the offset the slave
//!   reported, and a reader takes the slave's acknowledgements.
//! - [`slave`]: the slave's client. It learns the master's replication
//!   address from its name server registration (or `haMasterAddress`),
//!   reports its commit log end, appends what it receives through
//!   [`MessageStore::append_raw`] (which validates each record and builds the
//!   consume queues and index) and acknowledges each append.
//!
//! The slave's periodic copy of the master's metadata is a background task
//! (`tasks::slave_sync`).
//!
//! SYNC_MASTER: a send waits in [`HaService::wait_replicated`] until the
//! highest offset any slave acknowledged reaches the end of the message.
//! Waiting sends are kept ordered by that end offset, and an
//! acknowledgement releases every one it covers at once (each is woken
//! exactly once): a slave appends and acknowledges whatever the master
//! streamed since its last acknowledgement, so concurrent sends share those
//! round trips (group commit). When the last slave connection goes, every
//! waiting send is answered at once with SLAVE_NOT_AVAILABLE (as a send
//! arriving with no slave is), instead of after `syncFlushTimeout`.
//!
//! A slave whose commit log is ahead of its master's (a master that lost its
//! tail, e.g. in a power cut, and came back) never truncates or overwrites
//! what it has: it writes `ha_diverged` in its store folder, stops
//! replicating, keeps serving reads of what it has, and says so in its
//! runtime info until an operator removes the file (after rebuilding one of
//! the two stores).

pub(crate) mod frame;
pub(crate) mod master;
pub(crate) mod slave;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mq_store::{MessageStore, PutStatus};
use tokio::sync::oneshot;

use crate::config::{BrokerConfig, BrokerRole};
use crate::util::lock;

/// Name of the file a slave writes in its store folder when it found its
/// master behind it; replication stays off while it exists.
pub(crate) const DIVERGED_FILE: &str = "ha_diverged";

/// Replication settings, fixed at start-up.
#[derive(Debug, Clone)]
pub(crate) struct HaSettings {
    pub role: BrokerRole,
    /// `syncFlushTimeout`: how long a SYNC_MASTER send waits for a slave.
    pub sync_timeout: Duration,
    /// `haSlaveFallbehindMax`: a slave further behind is not waited for.
    pub fall_behind_max: u64,
    /// `haSendHeartbeatInterval`.
    pub heartbeat: Duration,
    /// `haHousekeepingInterval`: a silent peer is dropped after this.
    pub housekeeping: Duration,
    /// `haTransferBatchSize`: bytes per transfer (whole records).
    pub batch: usize,
    /// Largest transfer body a slave accepts: a batch or one message.
    pub max_body: usize,
    /// `haMasterAddress` from the configuration, if set.
    pub fixed_master_ha: Option<String>,
    /// The store folder (for [`DIVERGED_FILE`]).
    pub store_root: PathBuf,
}

impl HaSettings {
    pub(crate) fn new(config: &BrokerConfig, store: &mq_store::MessageStoreConfig) -> Self {
        let batch = config.ha_transfer_batch_size.max(1024);
        HaSettings {
            role: config.broker_role,
            sync_timeout: Duration::from_millis(store.sync_flush_timeout.max(1)),
            fall_behind_max: config.ha_slave_fallbehind_max,
            heartbeat: Duration::from_millis(config.ha_send_heartbeat_interval.max(10)),
            housekeeping: Duration::from_millis(config.ha_housekeeping_interval.max(100)),
            batch,
            // A record is sent whole even when larger than a batch.
            max_body: batch.max(store.max_message_size) + 64 * 1024,
            fixed_master_ha: Some(config.ha_master_address.trim().to_owned())
                .filter(|a| !a.is_empty()),
            store_root: store.store_path_root_dir.clone(),
        }
    }
}

/// How a waiting SYNC_MASTER send is released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Release {
    /// A slave acknowledged the send's end offset.
    Replicated,
    /// The last slave connection went before that.
    NoSlave,
}

type Waiter = oneshot::Sender<Release>;

/// The master's acknowledged offset and the SYNC_MASTER sends waiting for
/// it, by the end offset each needs.
#[derive(Default)]
struct Acks {
    acked: u64,
    waiting: BTreeMap<u64, Vec<Waiter>>,
}

impl Acks {
    /// Every waiter, for when no slave is left to acknowledge them.
    fn take_all(&mut self) -> Vec<Waiter> {
        std::mem::take(&mut self.waiting)
            .into_values()
            .flatten()
            .collect()
    }

    /// Moves the acknowledged offset up to `offset`; returns the waiters it
    /// releases.
    fn advance(&mut self, offset: u64) -> Vec<Waiter> {
        if offset <= self.acked {
            return Vec::new();
        }
        self.acked = offset;
        let still_waiting = self.waiting.split_off(&(offset + 1));
        std::mem::replace(&mut self.waiting, still_waiting)
            .into_values()
            .flatten()
            .collect()
    }

    /// Drops the waiters for `end` that gave up (timed out).
    fn forget_abandoned(&mut self, end: u64) {
        if let Some(list) = self.waiting.get_mut(&end) {
            list.retain(|tx| !tx.is_closed());
            if list.is_empty() {
                self.waiting.remove(&end);
            }
        }
    }
}

/// One connected slave, as the master sees it.
#[derive(Debug, Clone)]
struct SlaveLink {
    peer: String,
    acked: u64,
}

/// The slave's view of its master and of its own replication.
#[derive(Debug, Clone, Default)]
struct SlaveView {
    /// The master's client-facing address (for the metadata copy).
    master_addr: Option<String>,
    /// The master's replication address.
    master_ha_addr: Option<String>,
    connected: bool,
    /// The last offset the master said it stands at.
    master_offset: u64,
}

/// Replication state shared by the broker's processors and the HA tasks.
pub(crate) struct HaService {
    pub(crate) settings: HaSettings,
    store: Arc<MessageStore>,
    /// Master: highest commit log offset a slave acknowledged, and the sends
    /// waiting for it (SYNC_MASTER).
    acks: Mutex<Acks>,
    slaves: Mutex<BTreeMap<u64, SlaveLink>>,
    next_link: AtomicU64,
    /// Slave: where the master is and how replication goes.
    view: Mutex<SlaveView>,
    /// Slave: when the master's metadata was last copied, and from whom.
    last_metadata_sync: Mutex<Option<(std::time::Instant, String)>>,
}

impl HaService {
    pub(crate) fn new(settings: HaSettings, store: Arc<MessageStore>) -> Self {
        let view = SlaveView {
            master_ha_addr: settings.fixed_master_ha.clone(),
            ..SlaveView::default()
        };
        HaService {
            settings,
            store,
            acks: Mutex::new(Acks::default()),
            slaves: Mutex::new(BTreeMap::new()),
            next_link: AtomicU64::new(1),
            view: Mutex::new(view),
            last_metadata_sync: Mutex::new(None),
        }
    }

    /// Whether the slave should copy `master`'s metadata now: `interval`
    /// passed since the last copy, or the master is new. Marks it done.
    pub(crate) fn metadata_sync_due(
        &self,
        master: &str,
        interval: Duration,
        now: std::time::Instant,
    ) -> bool {
        let mut last = lock(&self.last_metadata_sync);
        let due = match &*last {
            Some((at, from)) => from != master || now.saturating_duration_since(*at) >= interval,
            None => true,
        };
        if due {
            *last = Some((now, master.to_owned()));
        }
        due
    }

    pub(crate) fn is_slave(&self) -> bool {
        self.settings.role == BrokerRole::Slave
    }

    pub(crate) fn store(&self) -> &Arc<MessageStore> {
        &self.store
    }

    // ----- master side -----

    /// Highest offset any slave acknowledged (RocketMQ's push2SlaveMaxOffset).
    pub(crate) fn acked_offset(&self) -> u64 {
        lock(&self.acks).acked
    }

    fn add_slave(&self, peer: String, acked: u64) -> u64 {
        let id = self.next_link.fetch_add(1, Ordering::Relaxed);
        lock(&self.slaves).insert(id, SlaveLink { peer, acked });
        self.acknowledge(id, acked);
        id
    }

    /// A slave connection went. When it was the last, the waiting sends
    /// are answered SLAVE_NOT_AVAILABLE now: nobody is left to acknowledge
    /// them. (The slave count is read under the `acks` lock, as
    /// [`wait_replicated`](Self::wait_replicated) reads it before it
    /// registers a waiter, so a send either sees no slave or is released
    /// here.)
    fn remove_slave(&self, id: u64) {
        lock(&self.slaves).remove(&id);
        let released = {
            let mut acks = lock(&self.acks);
            if self.slave_count() > 0 {
                return;
            }
            acks.take_all()
        };
        if !released.is_empty() {
            tracing::warn!(
                sends = released.len(),
                "last slave connection closed; waiting sends answered SLAVE_NOT_AVAILABLE"
            );
        }
        for waiter in released {
            let _ = waiter.send(Release::NoSlave);
        }
    }

    /// A slave confirmed it has everything below `offset`.
    fn acknowledge(&self, id: u64, offset: u64) {
        if let Some(link) = lock(&self.slaves).get_mut(&id) {
            link.acked = link.acked.max(offset);
        }
        let released = lock(&self.acks).advance(offset);
        for waiter in released {
            let _ = waiter.send(Release::Replicated);
        }
    }

    pub(crate) fn slave_count(&self) -> usize {
        lock(&self.slaves).len()
    }

    /// Under SYNC_MASTER, waits until a slave has every byte below `end`
    /// (the end of a message just stored). The message is stored whatever
    /// this returns: [`PutStatus::SlaveNotAvailable`] when no slave is
    /// connected or the best one is more than `haSlaveFallbehindMax` behind,
    /// or when the last slave connection goes while it waits,
    /// [`PutStatus::FlushSlaveTimeout`] when none confirmed within
    /// `syncFlushTimeout`. Other roles return [`PutStatus::PutOk`] at once.
    pub(crate) async fn wait_replicated(&self, end: u64) -> PutStatus {
        if self.settings.role != BrokerRole::SyncMaster {
            return PutStatus::PutOk;
        }
        let acked = self.acked_offset();
        if acked >= end {
            return PutStatus::PutOk;
        }
        let master_end = self.store.commit_log_max_offset();
        if self.slave_count() == 0
            || master_end.saturating_sub(acked) > self.settings.fall_behind_max
        {
            return PutStatus::SlaveNotAvailable;
        }
        let rx = {
            let mut acks = lock(&self.acks);
            if acks.acked >= end {
                return PutStatus::PutOk;
            }
            if self.slave_count() == 0 {
                return PutStatus::SlaveNotAvailable;
            }
            let (tx, rx) = oneshot::channel();
            acks.waiting.entry(end).or_default().push(tx);
            rx
        };
        match tokio::time::timeout(self.settings.sync_timeout, rx).await {
            Ok(Ok(Release::Replicated)) => PutStatus::PutOk,
            Ok(Ok(Release::NoSlave)) => PutStatus::SlaveNotAvailable,
            _ => {
                lock(&self.acks).forget_abandoned(end);
                PutStatus::FlushSlaveTimeout
            }
        }
    }

    // ----- slave side -----

    /// What a name server answered to this slave's registration: its
    /// master's address and replication address. `haMasterAddress` in the
    /// configuration wins over the latter.
    pub(crate) fn set_master(&self, master_addr: Option<String>, ha_addr: Option<String>) {
        let mut view = lock(&self.view);
        if master_addr.is_some() {
            view.master_addr = master_addr;
        }
        if self.settings.fixed_master_ha.is_none() && ha_addr.is_some() {
            if view.master_ha_addr != ha_addr {
                tracing::info!(ha_addr = ?ha_addr, "master replication address");
            }
            view.master_ha_addr = ha_addr;
        }
    }

    pub(crate) fn master_addr(&self) -> Option<String> {
        lock(&self.view).master_addr.clone()
    }

    fn master_ha_addr(&self) -> Option<String> {
        lock(&self.view).master_ha_addr.clone()
    }

    fn set_connected(&self, connected: bool) {
        lock(&self.view).connected = connected;
    }

    fn set_master_offset(&self, offset: u64) {
        lock(&self.view).master_offset = offset;
    }

    pub(crate) fn diverged_path(&self) -> PathBuf {
        self.settings.store_root.join(DIVERGED_FILE)
    }

    /// Why replication is off for good, if it is.
    pub(crate) fn diverged(&self) -> Option<String> {
        std::fs::read_to_string(self.diverged_path())
            .ok()
            .map(|s| s.trim().to_owned())
    }

    // ----- monitoring -----

    /// The replication entries of GET_BROKER_RUNTIME_INFO. A master reports
    /// `slaveFallBehindMuch` (its commit log end minus the highest offset a
    /// slave acknowledged, RocketMQ's figure), the number of slaves and each
    /// slave's acknowledged offset; a slave reports its master, whether it is
    /// connected, how far behind the master's last known offset it is, and
    /// whether it stopped because it found itself ahead of its master.
    pub(crate) fn runtime_entries(&self) -> Vec<(String, String)> {
        let end = self.store.commit_log_max_offset();
        let mut out = Vec::new();
        if self.is_slave() {
            let view = lock(&self.view).clone();
            out.push((
                "haMasterAddress".into(),
                view.master_ha_addr.unwrap_or_default(),
            ));
            out.push(("haMasterConnected".into(), view.connected.to_string()));
            out.push((
                "haSlaveFallBehind".into(),
                view.master_offset.saturating_sub(end).to_string(),
            ));
            out.push((
                "haSlaveDiverged".into(),
                self.diverged().unwrap_or_else(|| "false".into()),
            ));
        } else {
            let acked = self.acked_offset();
            out.push((
                "slaveFallBehindMuch".into(),
                end.saturating_sub(acked).to_string(),
            ));
            out.push(("haPush2SlaveMaxOffset".into(), acked.to_string()));
            let slaves = lock(&self.slaves).clone();
            out.push(("haConnectionCount".into(), slaves.len().to_string()));
            for link in slaves.values() {
                out.push((
                    format!("haSlave_{}", link.peer),
                    format!(
                        "ackOffset={} fallBehind={}",
                        link.acked,
                        end.saturating_sub(link.acked)
                    ),
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(role: BrokerRole, dir: &std::path::Path) -> (Arc<HaService>, Arc<MessageStore>) {
        let mut store_config = mq_store::MessageStoreConfig::with_root(dir);
        store_config.maped_file_size_commit_log = 1 << 20;
        store_config.max_message_size = 64 * 1024;
        store_config.sync_flush_timeout = 200;
        let store = Arc::new(MessageStore::open(store_config.clone()).unwrap());
        let config = BrokerConfig {
            broker_role: role,
            ..BrokerConfig::default()
        };
        let ha = HaService::new(HaSettings::new(&config, &store_config), store.clone());
        (Arc::new(ha), store)
    }

    async fn put(store: &MessageStore) -> u64 {
        let r = store
            .put_message(mq_store::PutMessage {
                topic: "T".into(),
                queue_id: 0,
                flag: 0,
                sys_flag: 0,
                born_timestamp: 0,
                born_host: "127.0.0.1:1".parse().unwrap(),
                store_host: "127.0.0.1:2".parse().unwrap(),
                reconsume_times: 0,
                prepared_transaction_offset: 0,
                body: bytes::Bytes::from_static(b"body"),
                properties: String::new(),
            })
            .await
            .unwrap();
        r.wrote_offset + r.wrote_bytes as u64
    }

    #[tokio::test]
    async fn sync_waiter_without_slave_answers_slave_not_available() {
        let dir = tempfile::tempdir().unwrap();
        let (ha, store) = service(BrokerRole::SyncMaster, dir.path());
        let end = put(&store).await;
        assert_eq!(ha.wait_replicated(end).await, PutStatus::SlaveNotAvailable);
    }

    #[tokio::test]
    async fn sync_waiter_times_out_when_the_slave_does_not_confirm() {
        let dir = tempfile::tempdir().unwrap();
        let (ha, store) = service(BrokerRole::SyncMaster, dir.path());
        let id = ha.add_slave("s".into(), 0);
        let end = put(&store).await;
        assert_eq!(ha.wait_replicated(end).await, PutStatus::FlushSlaveTimeout);
        // A partial acknowledgement is not enough either.
        ha.acknowledge(id, end - 1);
        assert_eq!(ha.wait_replicated(end).await, PutStatus::FlushSlaveTimeout);
    }

    /// Many waiters, one acknowledgement: all are released by it.
    #[tokio::test]
    async fn one_acknowledgement_releases_every_waiter_it_covers() {
        let dir = tempfile::tempdir().unwrap();
        let (mut ha, store) = service(BrokerRole::SyncMaster, dir.path());
        Arc::get_mut(&mut ha).unwrap().settings.sync_timeout = Duration::from_secs(60);
        let id = ha.add_slave("s".into(), 0);
        let mut ends = Vec::new();
        for _ in 0..16 {
            ends.push(put(&store).await);
        }
        let waiters: Vec<_> = ends
            .iter()
            .map(|&end| {
                let ha = ha.clone();
                tokio::spawn(async move { ha.wait_replicated(end).await })
            })
            .collect();
        ha.acknowledge(id, *ends.last().unwrap());
        for w in waiters {
            assert_eq!(w.await.unwrap(), PutStatus::PutOk);
        }
        assert_eq!(
            ha.runtime_entries()[0],
            ("slaveFallBehindMuch".into(), "0".into())
        );
    }

    /// Sends waiting for the only slave are answered SLAVE_NOT_AVAILABLE
    /// when its connection goes, not after `syncFlushTimeout` (an hour
    /// here, so a timeout would hang the test rather than pass it).
    #[tokio::test]
    async fn waiters_are_released_when_the_last_slave_goes() {
        let dir = tempfile::tempdir().unwrap();
        let (mut ha, store) = service(BrokerRole::SyncMaster, dir.path());
        Arc::get_mut(&mut ha).unwrap().settings.sync_timeout = Duration::from_secs(3600);
        let first = ha.add_slave("s1".into(), 0);
        let second = ha.add_slave("s2".into(), 0);
        let mut ends = Vec::new();
        for _ in 0..4 {
            ends.push(put(&store).await);
        }
        let mut waiters: Vec<_> = ends
            .iter()
            .map(|&end| {
                let ha = ha.clone();
                tokio::spawn(async move { ha.wait_replicated(end).await })
            })
            .collect();
        // Wait until all four are registered.
        while lock(&ha.acks).waiting.values().map(Vec::len).sum::<usize>() < ends.len() {
            tokio::task::yield_now().await;
        }
        // One slave of two goes: nobody is released, the other may still ack.
        ha.remove_slave(first);
        assert_eq!(
            lock(&ha.acks).waiting.values().map(Vec::len).sum::<usize>(),
            ends.len()
        );
        ha.acknowledge(second, ends[0]);
        assert_eq!(waiters.remove(0).await.unwrap(), PutStatus::PutOk);
        // The last one goes: everyone still waiting is answered.
        ha.remove_slave(second);
        for w in waiters {
            assert_eq!(w.await.unwrap(), PutStatus::SlaveNotAvailable);
        }
        assert!(lock(&ha.acks).waiting.is_empty());
        // And a send after that is refused at once.
        let end = put(&store).await;
        assert_eq!(ha.wait_replicated(end).await, PutStatus::SlaveNotAvailable);
    }

    #[test]
    fn an_acknowledgement_releases_exactly_the_waiters_it_covers() {
        let mut acks = Acks::default();
        let mut rxs = Vec::new();
        for end in [10u64, 20, 20, 30] {
            let (tx, rx) = oneshot::channel();
            acks.waiting.entry(end).or_default().push(tx);
            rxs.push(rx);
        }
        assert_eq!(acks.advance(20).len(), 3);
        assert!(acks.advance(15).is_empty(), "never backwards");
        assert_eq!(acks.acked, 20);
        drop(rxs.pop());
        acks.forget_abandoned(30);
        assert!(acks.waiting.is_empty());
    }

    #[tokio::test]
    async fn async_master_never_waits() {
        let dir = tempfile::tempdir().unwrap();
        let (ha, store) = service(BrokerRole::AsyncMaster, dir.path());
        let end = put(&store).await;
        assert_eq!(ha.wait_replicated(end).await, PutStatus::PutOk);
        let entries: BTreeMap<_, _> = ha.runtime_entries().into_iter().collect();
        assert_eq!(entries["slaveFallBehindMuch"], end.to_string());
        assert_eq!(entries["haConnectionCount"], "0");
    }
}
