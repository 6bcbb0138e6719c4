//! A slave's copy of its master's metadata, every [`SYNC_INTERVAL`] (as
//! RocketMQ's SlaveSynchronize): topics, subscription groups, consumer
//! offsets, delay offsets and the timer checkpoint, through the master's
//! admin requests.
//!
//! The timer checkpoint says which timer messages the master delivered to
//! their real topics; a slave restarted as master on its store starts its
//! timer service from it instead of delivering everything in
//! `rmq_sys_wheel_timer` again. It is taken only when it fits this store:
//! once the slave's commit log holds everything the master had when it
//! read the checkpoint (the delivered copies among it; until then it
//! waits, retried every [`SYNC_TICK`]), and only if it describes no timer
//! queue entry this slave does not have. It is merged into the slave's
//! own ([`TimerCheckpoint::union`]), so it never moves back.
//!
//! Delay offsets say the same of the delay levels' queues, and wait the
//! same way: a master that sends `commitLogMaxOffset` beside its table
//! (read after it) has its table taken once this slave's commit log holds
//! that much, so a slave made master never skips a delayed message whose
//! delivered copy it lacks. A table without the field (an older master) is
//! taken at once, as before.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mq_protocol::header::TimerCheckpointResponseHeader;
use mq_protocol::route::{decode_json, TopicConfigSerializeWrapper};
use mq_protocol::{request_code, topic, RemotingCommand, ResponseCode};
use mq_store::MessageStore;
use tracing::{debug, info, warn};

use super::Step;
use crate::broker::Broker;
use crate::metadata::timer::TimerCheckpoint;
use crate::util::lock;

/// How often a slave copies its master's metadata.
pub(crate) const SYNC_INTERVAL: Duration = Duration::from_secs(10);
/// How often the slave looks whether a copy is due (a new master is copied
/// from at once), or whether a waiting timer checkpoint fits now.
pub(crate) const SYNC_TICK: Duration = Duration::from_secs(1);
/// Longest one request to the master may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// The master's answer to `code`, whatever its response code.
async fn call(broker: &Broker, master: &str, code: i32) -> Result<RemotingCommand, String> {
    let mut request = RemotingCommand::request(code);
    crate::registration::sign(&broker.config(), &mut request);
    broker
        .namesrv_client
        .invoke(master, request, REQUEST_TIMEOUT)
        .await
        .map_err(|e| e.to_string())
}

fn refused(response: &RemotingCommand) -> String {
    format!(
        "code {}: {}",
        response.code,
        response.remark.as_deref().unwrap_or("")
    )
}

/// The body of the master's successful answer to `code`.
async fn fetch(broker: &Broker, master: &str, code: i32) -> Result<bytes::Bytes, String> {
    let response = call(broker, master, code).await?;
    if response.code != 0 {
        return Err(refused(&response));
    }
    Ok(response.body)
}

/// A master's timer checkpoint (GET_TIMER_CHECK_POINT), checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MasterTimerCheckpoint {
    pub checkpoint: TimerCheckpoint,
    /// The master's commit log end when it read the checkpoint: every
    /// delivered copy the checkpoint counts lies below it.
    pub commit_log_offset: u64,
}

impl MasterTimerCheckpoint {
    /// The checkpoint in a successful GET_TIMER_CHECK_POINT response: a
    /// body that [`TimerCheckpoint::decode`] accepts and a non-negative
    /// `commitLogMaxOffset`. Anything else is refused, saying why.
    pub(crate) fn parse(response: &RemotingCommand) -> Result<Self, String> {
        let header: TimerCheckpointResponseHeader = response.header().map_err(|e| e.to_string())?;
        let commit_log_offset = u64::try_from(header.commit_log_max_offset)
            .map_err(|_| format!("commitLogMaxOffset {}", header.commit_log_max_offset))?;
        let checkpoint = TimerCheckpoint::decode(&response.body)?;
        Ok(MasterTimerCheckpoint {
            checkpoint,
            commit_log_offset,
        })
    }
}

/// What became of a master's timer checkpoint or delay offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Applied {
    /// Taken: the slave's file was written.
    Saved,
    /// The slave's file already had all of it.
    Unchanged,
    /// This store does not have the master's commit log that far yet.
    Waiting,
}

/// Merges `master`'s checkpoint into the one at `path`, a store's whose
/// commit log copies the master's. `Err` (and nothing written) when it
/// describes timer queue entries `store` does not have though its commit
/// log is as long as the master's was: not this store's queue.
pub(crate) fn apply_timer_checkpoint(
    store: &MessageStore,
    path: &Path,
    master: &MasterTimerCheckpoint,
) -> Result<Applied, String> {
    if store.dispatched_offset() < master.commit_log_offset {
        return Ok(Applied::Waiting);
    }
    let queue_end = store.max_offset_in_queue(topic::TIMER_TOPIC, 0);
    if master.checkpoint.end() > queue_end {
        return Err(format!(
            "it describes timer queue offsets up to {}, this store's timer queue ends at {queue_end}",
            master.checkpoint.end()
        ));
    }
    let (own, repair) = match TimerCheckpoint::load(path) {
        Ok(own) => (own, false),
        Err(e) => {
            warn!(error = %e, "this slave's timer checkpoint is unreadable; the master's replaces it");
            (TimerCheckpoint::default(), true)
        }
    };
    let merged = own.union(&master.checkpoint);
    if merged == own && !repair {
        return Ok(Applied::Unchanged);
    }
    merged.save(path).map_err(|e| e.to_string())?;
    Ok(Applied::Saved)
}

/// Copies the master's metadata, one [`SlaveSynchronize::step`] at a time.
pub(crate) struct SlaveSynchronize {
    broker: Arc<Broker>,
    /// The master's timer checkpoint, until this slave's commit log holds
    /// everything it counts.
    waiting_timer: Mutex<Option<MasterTimerCheckpoint>>,
    /// The master was told once not to serve GET_TIMER_CHECK_POINT.
    timer_unsupported_noted: AtomicBool,
    /// The master's delay offsets, until this slave's commit log holds the
    /// delivered copies they count.
    waiting_delay: Mutex<Option<MasterDelayOffsets>>,
}

/// A master's delay offset table (GET_ALL_DELAY_OFFSET's body) and, from a
/// master that sends it, its commit log end read after the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MasterDelayOffsets {
    pub table: bytes::Bytes,
    pub commit_log_offset: Option<u64>,
}

impl MasterDelayOffsets {
    /// The table of a successful GET_ALL_DELAY_OFFSET response; a
    /// `commitLogMaxOffset` that is not a non-negative number is refused.
    pub(crate) fn parse(response: &RemotingCommand) -> Result<Self, String> {
        let commit_log_offset = response
            .field("commitLogMaxOffset")
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| format!("commitLogMaxOffset {v:?}"))
            })
            .transpose()?;
        Ok(MasterDelayOffsets {
            table: response.body.clone(),
            commit_log_offset,
        })
    }

    /// Whether `store` holds everything the master had when it read the table.
    fn fits(&self, store: &MessageStore) -> bool {
        self.commit_log_offset
            .is_none_or(|end| store.dispatched_offset() >= end)
    }
}

impl SlaveSynchronize {
    pub(crate) fn new(broker: Arc<Broker>) -> Self {
        SlaveSynchronize {
            broker,
            waiting_timer: Mutex::new(None),
            timer_unsupported_noted: AtomicBool::new(false),
            waiting_delay: Mutex::new(None),
        }
    }

    /// One copy from the master; `Idle` when this broker is not a slave or does
    /// not know its master yet. Each table is copied on its own: one failing
    /// does not keep the others stale. Between copies, a timer checkpoint
    /// that waits for replication is tried again.
    pub(crate) async fn step(&self, now: Instant) -> Step {
        let broker = &*self.broker;
        if !broker.ha.is_slave() {
            return Step::Idle;
        }
        let Some(master) = broker.ha.master_addr() else {
            return Step::Idle;
        };
        if !broker.ha.metadata_sync_due(&master, SYNC_INTERVAL, now) {
            let mut step = Step::Idle;
            for (what, applied) in [
                ("delay offsets", self.apply_waiting_delay()),
                ("timer checkpoint", self.apply_waiting_timer()),
            ] {
                match applied {
                    Ok(Applied::Saved) => step = Step::Worked,
                    Ok(_) => {}
                    Err(e) => warn!(%master, error = %e, "the master's {what} was refused"),
                }
            }
            return step;
        }
        let mut failures = Vec::new();
        match fetch(broker, &master, request_code::GET_ALL_TOPIC_CONFIG).await {
            Ok(body) => match decode_json::<TopicConfigSerializeWrapper>(&body) {
                Ok(wrapper) => {
                    if let Err(e) = broker.topics.replace_from_master(wrapper) {
                        failures.push(format!("topics: {e}"));
                    }
                }
                Err(e) => failures.push(format!("topics: {e}")),
            },
            Err(e) => failures.push(format!("topics: {e}")),
        }
        match fetch(
            broker,
            &master,
            request_code::GET_ALL_SUBSCRIPTIONGROUP_CONFIG,
        )
        .await
        {
            Ok(body) => {
                if let Err(e) = broker.groups.replace_from_master(&body) {
                    failures.push(format!("groups: {e}"));
                }
            }
            Err(e) => failures.push(format!("groups: {e}")),
        }
        match fetch(broker, &master, request_code::GET_ALL_CONSUMER_OFFSET).await {
            Ok(body) => {
                if let Err(e) = broker.offsets.merge_from_master(&body) {
                    failures.push(format!("consumer offsets: {e}"));
                }
            }
            Err(e) => failures.push(format!("consumer offsets: {e}")),
        }
        if let Err(e) = self.copy_delay_offsets(&master).await {
            failures.push(format!("delay offsets: {e}"));
        }
        if let Err(e) = self.copy_timer_checkpoint(&master).await {
            failures.push(format!("timer checkpoint: {e}"));
        }
        if failures.is_empty() {
            debug!(%master, "copied the master's metadata");
            Step::Worked
        } else {
            warn!(%master, failures = failures.join("; "), "copying the master's metadata failed");
            Step::Idle
        }
    }

    /// Fetches the master's timer checkpoint and takes it, or keeps it
    /// waiting for replication (replacing an older one that waits). A
    /// master that does not know GET_TIMER_CHECK_POINT (an older build) is
    /// noted once and is no failure; nor is a slave whose log diverged from
    /// its master's (replication is off, the master's offsets describe
    /// another queue).
    async fn copy_timer_checkpoint(&self, master: &str) -> Result<(), String> {
        let broker = &*self.broker;
        if broker.ha.diverged().is_some() {
            *lock(&self.waiting_timer) = None;
            return Ok(());
        }
        let response = call(broker, master, request_code::GET_TIMER_CHECK_POINT).await?;
        if response.code == ResponseCode::REQUEST_CODE_NOT_SUPPORTED as i32 {
            if !self.timer_unsupported_noted.swap(true, Ordering::Relaxed) {
                info!(%master, "the master does not serve GET_TIMER_CHECK_POINT; its timer checkpoint is not copied");
            }
            return Ok(());
        }
        if response.code != 0 {
            return Err(refused(&response));
        }
        let checkpoint = MasterTimerCheckpoint::parse(&response)?;
        *lock(&self.waiting_timer) = Some(checkpoint);
        match self.apply_waiting_timer()? {
            Applied::Waiting => {
                debug!(%master, "the master's timer checkpoint waits for replication")
            }
            Applied::Saved => debug!(%master, "copied the master's timer checkpoint"),
            Applied::Unchanged => {}
        }
        Ok(())
    }

    /// Fetches the master's delay offsets and takes them, or keeps them
    /// waiting for replication (replacing an older table that waits).
    async fn copy_delay_offsets(&self, master: &str) -> Result<(), String> {
        let response = call(&self.broker, master, request_code::GET_ALL_DELAY_OFFSET).await?;
        if response.code != 0 {
            return Err(refused(&response));
        }
        *lock(&self.waiting_delay) = Some(MasterDelayOffsets::parse(&response)?);
        if self.apply_waiting_delay()? == Applied::Waiting {
            debug!(%master, "the master's delay offsets wait for replication");
        }
        Ok(())
    }

    /// Applies the waiting delay offsets, if any: they stay waiting while
    /// this store lacks commit log the master had when it read them.
    fn apply_waiting_delay(&self) -> Result<Applied, String> {
        let mut waiting = lock(&self.waiting_delay);
        let Some(offsets) = waiting.take() else {
            return Ok(Applied::Unchanged);
        };
        if !offsets.fits(&self.broker.store) {
            *waiting = Some(offsets);
            return Ok(Applied::Waiting);
        }
        self.broker
            .delay_offsets
            .replace_from_master(&offsets.table)
            .map_err(|e| e.to_string())?;
        Ok(Applied::Saved)
    }

    /// Applies the waiting timer checkpoint, if any; it stays waiting while
    /// [`Applied::Waiting`], and goes otherwise (refused or taken, or this
    /// slave's log diverged from its master's meanwhile).
    fn apply_waiting_timer(&self) -> Result<Applied, String> {
        let mut waiting = lock(&self.waiting_timer);
        let Some(checkpoint) = waiting.take() else {
            return Ok(Applied::Unchanged);
        };
        if self.broker.ha.diverged().is_some() {
            return Ok(Applied::Unchanged);
        }
        let path = super::timer::checkpoint_path(&self.broker);
        let applied = apply_timer_checkpoint(&self.broker.store, &path, &checkpoint)?;
        if applied == Applied::Waiting {
            *waiting = Some(checkpoint);
        }
        Ok(applied)
    }
}

#[cfg(test)]
mod tests {
    use mq_protocol::header::CommandHeader;
    use mq_protocol::message::property;

    use super::*;
    use crate::broker::testing::{broker, dispatched, message};
    use crate::config::BrokerConfig;

    fn response(body: &[u8], commit_log_max_offset: Option<&str>) -> RemotingCommand {
        let mut response = RemotingCommand::response_to(
            &RemotingCommand::request(request_code::GET_TIMER_CHECK_POINT),
            ResponseCode::SUCCESS,
        )
        .with_body(body.to_vec());
        if let Some(offset) = commit_log_max_offset {
            response = response.with_field("commitLogMaxOffset", offset);
        }
        response
    }

    fn cp(offset: u64, delivered: &[(u64, u64)]) -> TimerCheckpoint {
        TimerCheckpoint {
            offset,
            delivered: delivered.to_vec(),
        }
    }

    #[test]
    fn a_masters_answer_is_taken_only_when_well_formed() {
        let good = serde_json::to_vec(&cp(2, &[(4, 5)])).unwrap();
        assert_eq!(
            MasterTimerCheckpoint::parse(&response(&good, Some("4096"))).unwrap(),
            MasterTimerCheckpoint {
                checkpoint: cp(2, &[(4, 5)]),
                commit_log_offset: 4096,
            }
        );
        // What the master's processor writes is what the slave reads.
        let header = TimerCheckpointResponseHeader {
            commit_log_max_offset: 7,
        };
        let written = response(&good, None).with_header(&header);
        assert_eq!(written.field("commitLogMaxOffset"), Some("7"));
        assert_eq!(
            TimerCheckpointResponseHeader::from_fields(&written.ext_fields).unwrap(),
            header
        );
        for (body, offset) in [
            (&good[..], None),
            (&good[..], Some("-1")),
            (&good[..], Some("ten")),
            (&b""[..], Some("1")),
            (b"{\"offset\":", Some("1")),
            (b"{\"offset\":3,\"delivered\":[[1,2]]}", Some("1")),
            (b"{\"offset\":3,\"delivered\":[[5,9],[6,7]]}", Some("1")),
        ] {
            assert!(
                MasterTimerCheckpoint::parse(&response(body, offset)).is_err(),
                "{} {offset:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    fn delay_response(table: &[u8], commit_log_max_offset: Option<&str>) -> RemotingCommand {
        let mut response = RemotingCommand::response_to(
            &RemotingCommand::request(request_code::GET_ALL_DELAY_OFFSET),
            ResponseCode::SUCCESS,
        )
        .with_body(table.to_vec());
        if let Some(offset) = commit_log_max_offset {
            response = response.with_field("commitLogMaxOffset", offset);
        }
        response
    }

    #[tokio::test]
    async fn a_masters_delay_offsets_wait_until_this_log_holds_what_they_count() {
        let dir = tempfile::tempdir().unwrap();
        let slave = broker(dir.path(), BrokerConfig::default());
        timer_messages(&slave, 2).await;
        let end = slave.store.commit_log_max_offset();
        let sync = SlaveSynchronize::new(slave.clone());
        let table = br#"{"offsetTable":{"1":5,"3":2}}"#;

        // What the master's processor answers carries its commit log end.
        let answered = crate::processor::admin::all_delay_offsets(
            &slave,
            &RemotingCommand::request(request_code::GET_ALL_DELAY_OFFSET),
        )
        .unwrap();
        assert_eq!(
            answered.field("commitLogMaxOffset"),
            Some(end.to_string().as_str())
        );

        // The master had more commit log than we do: the table waits.
        let longer = (end + 1).to_string();
        *lock(&sync.waiting_delay) =
            Some(MasterDelayOffsets::parse(&delay_response(table, Some(&longer))).unwrap());
        assert_eq!(sync.apply_waiting_delay(), Ok(Applied::Waiting));
        assert_eq!(slave.delay_offsets.get(1), 0, "not taken yet");
        assert_eq!(
            sync.apply_waiting_delay(),
            Ok(Applied::Waiting),
            "still waiting"
        );

        // As much as the master had: taken, and no longer waiting.
        let same = end.to_string();
        *lock(&sync.waiting_delay) =
            Some(MasterDelayOffsets::parse(&delay_response(table, Some(&same))).unwrap());
        assert_eq!(sync.apply_waiting_delay(), Ok(Applied::Saved));
        assert_eq!(slave.delay_offsets.get(1), 5);
        assert_eq!(slave.delay_offsets.get(3), 2);
        assert_eq!(sync.apply_waiting_delay(), Ok(Applied::Unchanged));

        // An older master sends no end: taken at once, as before.
        let older = MasterDelayOffsets::parse(&delay_response(br#"{"offsetTable":{"1":9}}"#, None))
            .unwrap();
        assert_eq!(older.commit_log_offset, None);
        *lock(&sync.waiting_delay) = Some(older);
        assert_eq!(sync.apply_waiting_delay(), Ok(Applied::Saved));
        assert_eq!(slave.delay_offsets.get(1), 9);

        // A malformed end is refused; a malformed table changes nothing.
        for bad in ["-1", "ten", ""] {
            assert!(MasterDelayOffsets::parse(&delay_response(table, Some(bad))).is_err());
        }
        *lock(&sync.waiting_delay) = Some(
            MasterDelayOffsets::parse(&delay_response(b"{\"offsetTable\":", Some(&same))).unwrap(),
        );
        assert!(sync.apply_waiting_delay().is_err());
        assert_eq!(slave.delay_offsets.get(1), 9);
    }

    /// Puts `n` timer messages (due in an hour) in `broker`'s timer queue.
    async fn timer_messages(broker: &Broker, n: u64) {
        let now = crate::util::now_ms();
        for _ in 0..n {
            let mut msg = message("T", &[(property::TIMER_DELAY_SEC, "3600")]);
            crate::tasks::timer::accept_at(&broker.config(), &mut msg, now).unwrap();
            broker.put(msg).await.unwrap();
        }
        dispatched(broker, topic::TIMER_TOPIC, 0, n).await;
    }

    #[tokio::test]
    async fn a_masters_checkpoint_waits_for_replication_and_never_moves_back() {
        let dir = tempfile::tempdir().unwrap();
        let slave = broker(dir.path(), BrokerConfig::default());
        timer_messages(&slave, 4).await;
        let path = super::super::timer::checkpoint_path(&slave);
        let end = slave.store.commit_log_max_offset();
        let at = |checkpoint, commit_log_offset| MasterTimerCheckpoint {
            checkpoint,
            commit_log_offset,
        };

        // The master's log is longer than ours: not yet, nothing written.
        assert_eq!(
            apply_timer_checkpoint(&slave.store, &path, &at(cp(2, &[]), end + 1)),
            Ok(Applied::Waiting)
        );
        assert!(!path.exists());
        // Entries we do not have though our log is as long: refused.
        assert!(apply_timer_checkpoint(&slave.store, &path, &at(cp(5, &[]), end)).is_err());
        assert!(apply_timer_checkpoint(&slave.store, &path, &at(cp(0, &[(3, 6)]), end)).is_err());
        assert!(!path.exists());

        assert_eq!(
            apply_timer_checkpoint(&slave.store, &path, &at(cp(1, &[(2, 3)]), end)),
            Ok(Applied::Saved)
        );
        assert_eq!(TimerCheckpoint::load(&path).unwrap(), cp(1, &[(2, 3)]));
        // A master that knows less (it lost its file): ours stays.
        assert_eq!(
            apply_timer_checkpoint(&slave.store, &path, &at(cp(0, &[]), end)),
            Ok(Applied::Unchanged)
        );
        assert_eq!(
            apply_timer_checkpoint(&slave.store, &path, &at(cp(4, &[]), end)),
            Ok(Applied::Saved)
        );
        assert_eq!(TimerCheckpoint::load(&path).unwrap(), cp(4, &[]));
        // An unreadable file of ours is replaced.
        std::fs::write(&path, "{ torn").unwrap();
        std::fs::remove_file(path.with_extension("json.bak")).unwrap();
        assert_eq!(
            apply_timer_checkpoint(&slave.store, &path, &at(cp(3, &[]), end)),
            Ok(Applied::Saved)
        );
        assert_eq!(TimerCheckpoint::load(&path).unwrap(), cp(3, &[]));
    }
}
