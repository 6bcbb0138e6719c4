//! Timer messages (RocketMQ 5's timer): delivery at any time up to
//! `timerMaxDelaySec` ahead, not only at the 4.x delay levels.
//!
//! - [`accept`], on the send path: a message that carries `TIMER_DELIVER_MS`
//!   (absolute ms), `TIMER_DELAY_SEC` or `TIMER_DELAY_MS` (relative to the
//!   send) is checked and, unless it is due within a tick, rewritten to
//!   `rmq_sys_wheel_timer` queue 0 with its real topic and queue in
//!   `REAL_TOPIC` / `REAL_QID` and its due time in `TIMER_OUT_MS`, which the
//!   store also makes the consume queue entry's tagsCode.
//! - [`TimerIndex`]: the timer queue's undelivered entries ordered by (due
//!   time, queue offset), loaded from the consume queue alone (no message is
//!   read until it is due), and the [`TimerCheckpoint`] it implies.
//! - [`TimerService`]: one step loads the entries that arrived, delivers
//!   the due ones to their real topics (properties, and so the message id,
//!   unchanged) and saves the checkpoint. At start the index is rebuilt from
//!   the checkpoint to the end of the queue, so a restart loses nothing; a
//!   crash between a delivery and the checkpoint write delivers that message
//!   again (at-least-once, as RocketMQ); the commit log is flushed before
//!   a checkpoint that counts a delivery is saved, so a power cut under
//!   ASYNC_FLUSH cannot lose a delivered copy either. Only a master runs it.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mq_protocol::message::{property, sys_flag, Properties, TIMER_MESSAGE_ILLEGAL};
use mq_protocol::{topic, MessageExt, ResponseCode};
use tracing::{error, warn};

use super::Step;
use crate::broker::{Broker, InboundMessage};
use crate::config::BrokerConfig;
use crate::metadata::timer::{TimerCheckpoint, MAX_DELIVERED_RUNS};

/// Longest the timer service sleeps when nothing is due sooner; a message
/// due within one tick of its send is stored in its real topic at once.
pub(crate) const TIMER_TICK: Duration = Duration::from_millis(100);
/// Most messages delivered in one step (the checkpoint is saved after each
/// step).
const DELIVER_BATCH: usize = 64;
/// Most consume queue entries loaded into the index in one step, so that
/// rebuilding a long queue at start does not hold up delivery.
const LOAD_PER_STEP: usize = 64 * 1024;
/// Entries read from the consume queue at a time.
const LOAD_BATCH: usize = 4096;

/// The properties that make a message a timer message.
const TIMER_PROPERTIES: [&str; 3] = [
    property::TIMER_DELIVER_MS,
    property::TIMER_DELAY_SEC,
    property::TIMER_DELAY_MS,
];

/// Why a send's timer properties were refused: the response code and remark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TimerRefusal {
    pub code: ResponseCode,
    pub reason: String,
}

fn illegal(reason: impl Into<String>) -> TimerRefusal {
    TimerRefusal {
        code: ResponseCode::MESSAGE_ILLEGAL,
        reason: reason.into(),
    }
}

fn has_timer(properties: &Properties) -> bool {
    TIMER_PROPERTIES
        .iter()
        .any(|name| properties.contains_key(*name))
}

/// A message of a batch may not be a timer message.
pub(crate) fn refuse_in_batch(properties: &Properties) -> Result<(), TimerRefusal> {
    if has_timer(properties) {
        return Err(illegal(format!(
            "{}: a batch message cannot be a timer message",
            TIMER_MESSAGE_ILLEGAL
        )));
    }
    Ok(())
}

/// Checks a single send's timer properties and, when it is due later than
/// one tick from now, rewrites it to the timer topic (see [`accept_at`]).
/// Without timer properties this is three map lookups and nothing else.
pub(crate) fn accept(broker: &Broker, msg: &mut InboundMessage) -> Result<(), TimerRefusal> {
    if !has_timer(&msg.properties) {
        return Ok(());
    }
    accept_at(&broker.config(), msg, crate::util::now_ms())
}

/// [`accept`] at `now` under `config`. As in RocketMQ, a delay level wins
/// over timer properties (they are dropped), and a message that already
/// carries `TIMER_OUT_MS` (a delivered timer message sent again) is left as
/// it is.
pub(crate) fn accept_at(
    config: &BrokerConfig,
    msg: &mut InboundMessage,
    now: i64,
) -> Result<(), TimerRefusal> {
    if !has_timer(&msg.properties) {
        return Ok(());
    }
    let level = msg
        .properties
        .get(property::DELAY_TIME_LEVEL)
        .and_then(|v| v.trim().parse::<i32>().ok())
        .unwrap_or(0);
    if level > 0 {
        for name in TIMER_PROPERTIES {
            msg.properties.remove(name);
        }
        return Ok(());
    }
    if msg.properties.contains_key(property::TIMER_OUT_MS) {
        return Ok(());
    }
    let transactional = msg
        .properties
        .get(property::TRANSACTION_PREPARED)
        .is_some_and(|t| t == "true")
        || sys_flag::transaction_type(msg.sys_flag) != sys_flag::TRANSACTION_NOT_TYPE;
    if transactional {
        return Err(illegal(format!(
            "{}: a transactional message cannot be a timer message",
            TIMER_MESSAGE_ILLEGAL
        )));
    }
    if !config.timer_wheel_enable {
        return Err(TimerRefusal {
            code: ResponseCode::SYSTEM_ERROR,
            reason: "accurate timer message is not enabled, timerWheelEnable is false".into(),
        });
    }
    let due = due_time(&msg.properties, now)?;
    let ahead = due.saturating_sub(now);
    let max_ms = i64::try_from(config.timer_max_delay_sec.saturating_mul(1000)).unwrap_or(i64::MAX);
    if ahead > max_ms {
        return Err(illegal(format!(
            "{}: it is due {ahead} ms from now, beyond timerMaxDelaySec ({} s)",
            TIMER_MESSAGE_ILLEGAL, config.timer_max_delay_sec
        )));
    }
    if ahead <= TIMER_TICK.as_millis() as i64 {
        // Due already (or within a tick): an ordinary message.
        return Ok(());
    }
    let props = &mut msg.properties;
    props.insert(property::TIMER_OUT_MS.into(), due.to_string());
    props.insert(property::REAL_TOPIC.into(), msg.topic.clone());
    props.insert(property::REAL_QUEUE_ID.into(), msg.queue_id.to_string());
    msg.topic = topic::TIMER_TOPIC.to_owned();
    msg.queue_id = 0;
    Ok(())
}

/// When a message with timer properties is due: `TIMER_DELAY_SEC`, else
/// `TIMER_DELAY_MS`, from `now`, else `TIMER_DELIVER_MS`. Every one present
/// must be a non-negative integer.
fn due_time(properties: &Properties, now: i64) -> Result<i64, TimerRefusal> {
    let mut values = [None; 3];
    for (value, name) in values.iter_mut().zip(TIMER_PROPERTIES) {
        if let Some(text) = properties.get(name) {
            let parsed = text.trim().parse::<i64>().ok().filter(|n| *n >= 0);
            *value = Some(parsed.ok_or_else(|| {
                illegal(format!(
                    "{}: {name} must be a non-negative integer, not {text:?}",
                    TIMER_MESSAGE_ILLEGAL
                ))
            })?);
        }
    }
    let [deliver_ms, delay_sec, delay_ms] = values;
    Ok(match (delay_sec, delay_ms, deliver_ms) {
        (Some(sec), _, _) => now.saturating_add(sec.saturating_mul(1000)),
        (None, Some(ms), _) => now.saturating_add(ms),
        (None, None, Some(at)) => at,
        (None, None, None) => now,
    })
}

/// An undelivered timer queue entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimerEntry {
    /// Offset in the timer topic's queue.
    pub offset: u64,
    pub due: i64,
    pub commit_log_offset: u64,
    pub size: u32,
}

/// The timer queue's undelivered entries, by due time and by offset.
///
/// Loading goes through the queue in order from the checkpoint's offset;
/// an entry in one of the checkpoint's delivered runs is passed over. What
/// lies below `loaded_to` and is not pending was delivered.
#[derive(Debug, Default)]
pub(crate) struct TimerIndex {
    by_due: BTreeMap<(i64, u64), (u64, u32)>,
    pending: BTreeMap<u64, i64>,
    loaded_to: u64,
    /// The checkpoint's delivered runs that loading has not passed yet.
    skip: VecDeque<(u64, u64)>,
}

impl TimerIndex {
    /// An empty index that loads from `checkpoint`.
    pub(crate) fn new(checkpoint: TimerCheckpoint) -> Self {
        TimerIndex {
            loaded_to: checkpoint.offset,
            skip: checkpoint.delivered.into(),
            ..TimerIndex::default()
        }
    }

    /// The next queue offset to load.
    pub(crate) fn loaded_to(&self) -> u64 {
        self.loaded_to
    }

    /// How many entries wait.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.pending.len()
    }

    /// Moves loading on to `offset`, past entries that hold no message
    /// (fillers, or messages the retention removed).
    pub(crate) fn skip_to(&mut self, offset: u64) {
        self.loaded_to = self.loaded_to.max(offset);
    }

    /// Loads the entry at queue offset `offset` (at or after
    /// [`TimerIndex::loaded_to`]; an earlier one is ignored).
    pub(crate) fn load(&mut self, offset: u64, due: i64, commit_log_offset: u64, size: u32) {
        if offset < self.loaded_to {
            return;
        }
        self.loaded_to = offset + 1;
        while self.skip.front().is_some_and(|&(_, end)| end <= offset) {
            self.skip.pop_front();
        }
        if self.skip.front().is_some_and(|&(start, _)| start <= offset) {
            return;
        }
        self.pending.insert(offset, due);
        self.by_due.insert((due, offset), (commit_log_offset, size));
    }

    /// Up to `max` entries due at `now`, earliest first.
    pub(crate) fn due(&self, now: i64, max: usize) -> Vec<TimerEntry> {
        self.by_due
            .range(..=(now, u64::MAX))
            .take(max)
            .map(|(&(due, offset), &(commit_log_offset, size))| TimerEntry {
                offset,
                due,
                commit_log_offset,
                size,
            })
            .collect()
    }

    /// The earliest due time waiting.
    pub(crate) fn next_due(&self) -> Option<i64> {
        self.by_due.keys().next().map(|&(due, _)| due)
    }

    /// Forgets the entry at `offset`: it was delivered.
    pub(crate) fn delivered(&mut self, offset: u64) {
        if let Some(due) = self.pending.remove(&offset) {
            self.by_due.remove(&(due, offset));
        }
    }

    /// The checkpoint that describes this index: the lowest pending offset
    /// (or where loading stands), the gaps between pending entries up to
    /// `loaded_to`, and the checkpoint runs loading has not reached.
    pub(crate) fn checkpoint(&self) -> TimerCheckpoint {
        let mut runs: Vec<(u64, u64)> = Vec::new();
        let mut push = |start: u64, end: u64| {
            if end <= start {
                return;
            }
            match runs.last_mut() {
                Some(last) if last.1 >= start => last.1 = last.1.max(end),
                _ => runs.push((start, end)),
            }
        };
        let mut offsets = self.pending.keys().copied();
        let first = offsets.next();
        if let Some(first) = first {
            let mut previous = first;
            for offset in offsets {
                push(previous + 1, offset);
                previous = offset;
            }
            push(previous + 1, self.loaded_to);
        }
        for &(start, end) in &self.skip {
            push(start.max(self.loaded_to), end);
        }
        let mut offset = first.unwrap_or(self.loaded_to);
        if runs.first().is_some_and(|&(start, _)| start <= offset) {
            offset = offset.max(runs.remove(0).1);
        }
        runs.truncate(MAX_DELIVERED_RUNS);
        TimerCheckpoint {
            offset,
            delivered: runs,
        }
    }
}

/// `broker`'s `config/timerCheckpoint.json`: what its timer service loads
/// at start and saves, what it answers GET_TIMER_CHECK_POINT with, and
/// what a slave's copy of its master's goes to.
pub(crate) fn checkpoint_path(broker: &Broker) -> PathBuf {
    TimerCheckpoint::path(&broker.store_config.store_path_root_dir.join("config"))
}

/// Delivers due timer messages, one [`TimerService::step`] at a time.
pub(crate) struct TimerService {
    broker: Arc<Broker>,
    index: TimerIndex,
    path: PathBuf,
    saved: TimerCheckpoint,
    /// Commit log end of the last delivered copy.
    delivered_end: u64,
    /// The last save failed: the next step tries again.
    unsaved: bool,
}

impl TimerService {
    /// The service over `broker`'s timer queue, from its saved checkpoint.
    /// An unreadable checkpoint starts over from the start of the queue:
    /// every timer message still stored is delivered (again), none is lost.
    pub(crate) fn open(broker: Arc<Broker>) -> Self {
        let path = checkpoint_path(&broker);
        let max_delay = broker.config().timer_max_delay_sec;
        let reserved = broker.store_config.file_reserved_time.saturating_mul(3600);
        if max_delay > reserved {
            // Retention removes commit log files by age, timer messages in
            // them included.
            warn!(
                timer_max_delay_sec = max_delay,
                file_reserved_time_sec = reserved,
                "timerMaxDelaySec exceeds fileReservedTime: a timer message due later than that may be removed before it is delivered"
            );
        }
        let saved = TimerCheckpoint::load(&path).unwrap_or_else(|e| {
            error!(error = %e, "unreadable timer checkpoint; timer messages will be delivered again");
            TimerCheckpoint::default()
        });
        TimerService {
            broker,
            index: TimerIndex::new(saved.clone()),
            path,
            saved,
            delivered_end: 0,
            unsaved: false,
        }
    }

    /// How long to wait after an idle step at `now`: until the next due
    /// time, at most a tick; a tick when one already due was not delivered
    /// (its put failed), so that a failing put is retried at that pace.
    pub(crate) fn wait(&self, now: i64) -> Duration {
        match self.index.next_due() {
            Some(due) if due > now => {
                Duration::from_millis((due - now).min(TIMER_TICK.as_millis() as i64) as u64)
            }
            _ => TIMER_TICK,
        }
    }

    /// Loads what arrived in the timer queue, delivers what is due at `now`
    /// and saves the checkpoint if it moved.
    pub(crate) async fn step(&mut self, now: i64) -> Step {
        let loaded = self.load();
        let delivered = self.deliver(now).await;
        if loaded || delivered || self.unsaved {
            self.save().await;
        }
        if loaded || delivered {
            Step::Worked
        } else {
            Step::Idle
        }
    }

    fn load(&mut self) -> bool {
        let store = &self.broker.store;
        let start = self.index.loaded_to();
        let min = store.min_offset_in_queue(topic::TIMER_TOPIC, 0);
        let max = store.max_offset_in_queue(topic::TIMER_TOPIC, 0);
        if start < min {
            warn!(
                from = start,
                to = min,
                "timer messages were removed from the store before they were due"
            );
            self.index.skip_to(min);
        }
        let mut budget = LOAD_PER_STEP;
        while self.index.loaded_to() < max && budget > 0 {
            let from = self.index.loaded_to();
            let entries = store.queue_entries(topic::TIMER_TOPIC, 0, from, LOAD_BATCH.min(budget));
            if entries.is_empty() {
                break;
            }
            budget = budget.saturating_sub(entries.len());
            for (offset, entry) in (from..).zip(&entries) {
                if entry.is_blank() {
                    self.index.skip_to(offset + 1);
                } else {
                    self.index
                        .load(offset, entry.tags_code, entry.commit_log_offset, entry.size);
                }
            }
        }
        self.index.loaded_to() != start
    }

    async fn deliver(&mut self, now: i64) -> bool {
        let mut worked = false;
        for entry in self.index.due(now, DELIVER_BATCH) {
            let Some(msg) = self
                .broker
                .store
                .look_message_by_offset(entry.commit_log_offset)
            else {
                warn!(
                    offset = entry.offset,
                    "a due timer message is no longer stored; skipped"
                );
                self.index.delivered(entry.offset);
                worked = true;
                continue;
            };
            let Some(msg) = timed_out(msg) else {
                warn!(
                    offset = entry.offset,
                    "a timer message without REAL_TOPIC; skipped"
                );
                self.index.delivered(entry.offset);
                worked = true;
                continue;
            };
            match self.broker.put(msg).await {
                Ok(put) => {
                    let end = put.wrote_offset + put.wrote_bytes as u64;
                    self.delivered_end = self.delivered_end.max(end);
                }
                Err(e) => {
                    warn!(offset = entry.offset, error = %e, "delivering a timer message failed; will retry");
                    break;
                }
            }
            self.index.delivered(entry.offset);
            worked = true;
        }
        worked
    }

    /// Saves the checkpoint if it moved; on failure `unsaved` makes the
    /// next steps try again. The flush and the file write (fsyncs) run on
    /// the blocking pool, not on the runtime's worker, which would hold
    /// every connection's requests meanwhile.
    async fn save(&mut self) {
        let checkpoint = self.index.checkpoint();
        self.unsaved = checkpoint != self.saved;
        if !self.unsaved {
            return;
        }
        // The delivered copies must be on disk before the checkpoint says
        // they were delivered (under ASYNC_FLUSH a put returns before).
        let flush_first = self.delivered_end > self.broker.store.flushed_offset();
        let broker = self.broker.clone();
        let path = self.path.clone();
        let to_save = checkpoint.clone();
        let saved = super::off_worker("saving the timer checkpoint (will retry)", move || {
            if flush_first {
                broker
                    .store
                    .flush()
                    .map_err(|e| format!("flushing the delivered timer messages: {e}"))?;
            }
            to_save.save(&path).map_err(|e| e.to_string())
        })
        .await;
        if saved {
            self.saved = checkpoint;
            self.unsaved = false;
        }
    }
}

/// The message a timer message becomes when it is due: back on its real
/// topic and queue with every property kept (`TIMER_OUT_MS` among them, so
/// sending it again does not time it again). `None` without `REAL_TOPIC`.
fn timed_out(mut msg: MessageExt) -> Option<InboundMessage> {
    let properties = std::mem::take(&mut msg.properties);
    let topic = properties.get(property::REAL_TOPIC)?.clone();
    Some(super::on_real_queue(msg, topic, properties))
}

#[cfg(test)]
mod tests {
    use mq_protocol::message::property;
    use mq_protocol::topic;

    use super::*;
    use crate::broker::testing::{broker, dispatched, message};

    const NOW: i64 = 1_000_000_000;

    /// An index loaded with entries at offsets 0.. due at `dues`.
    fn index_of(dues: &[i64]) -> TimerIndex {
        let mut index = TimerIndex::default();
        for (offset, due) in (0..).zip(dues) {
            index.load(offset, *due, offset * 100, 100);
        }
        index
    }

    fn offsets(entries: &[TimerEntry]) -> Vec<u64> {
        entries.iter().map(|e| e.offset).collect()
    }

    #[test]
    fn entries_fall_due_in_due_time_order_not_arrival_order() {
        let index = index_of(&[50, 10, 30, 10]);
        assert_eq!(index.next_due(), Some(10));
        assert!(index.due(9, 10).is_empty());
        assert_eq!(offsets(&index.due(10, 10)), vec![1, 3]);
        assert_eq!(offsets(&index.due(30, 10)), vec![1, 3, 2]);
        assert_eq!(offsets(&index.due(30, 2)), vec![1, 3], "at most max");
        assert_eq!(index.due(99, 10)[3].commit_log_offset, 0);
    }

    #[test]
    fn the_checkpoint_is_the_lowest_pending_offset_and_the_runs_delivered_above_it() {
        let mut index = index_of(&[100, 10, 10, 100, 10, 10]);
        assert_eq!(
            index.checkpoint(),
            TimerCheckpoint {
                offset: 0,
                delivered: vec![]
            }
        );
        for entry in index.due(10, 10) {
            index.delivered(entry.offset);
        }
        assert_eq!(index.len(), 2);
        assert_eq!(
            index.checkpoint(),
            TimerCheckpoint {
                offset: 0,
                delivered: vec![(1, 3), (4, 6)]
            }
        );
        index.delivered(0);
        assert_eq!(
            index.checkpoint(),
            TimerCheckpoint {
                offset: 3,
                delivered: vec![(4, 6)]
            }
        );
        index.delivered(3);
        assert_eq!(
            index.checkpoint(),
            TimerCheckpoint {
                offset: 6,
                delivered: vec![]
            }
        );
        assert_eq!(index.next_due(), None);
    }

    #[test]
    fn a_rebuilt_index_holds_exactly_the_undelivered_entries() {
        let dues = [100, 10, 10, 100, 10, 10, 20];
        let mut index = index_of(&dues);
        for offset in [1, 2, 4, 5] {
            index.delivered(offset);
        }
        let checkpoint = index.checkpoint();

        // After a restart: load the whole queue again from the checkpoint.
        let mut rebuilt = TimerIndex::new(checkpoint.clone());
        for (offset, due) in (0..).zip(&dues) {
            rebuilt.load(offset, *due, 0, 1);
        }
        assert_eq!(rebuilt.len(), 3);
        assert_eq!(offsets(&rebuilt.due(i64::MAX, 10)), vec![6, 0, 3]);
        assert_eq!(rebuilt.checkpoint(), checkpoint);

        // Loading in pieces: runs not yet reached stay in the checkpoint.
        let mut partial = TimerIndex::new(checkpoint.clone());
        partial.load(0, 100, 0, 1);
        partial.load(1, 10, 0, 1);
        assert_eq!(partial.len(), 1);
        assert_eq!(partial.checkpoint(), checkpoint);
    }

    #[test]
    fn skipped_fillers_count_as_delivered() {
        let mut index = TimerIndex::default();
        index.skip_to(2);
        index.load(2, 5, 0, 1);
        index.skip_to(4);
        assert_eq!(index.loaded_to(), 4);
        assert_eq!(
            index.checkpoint(),
            TimerCheckpoint {
                offset: 2,
                delivered: vec![(3, 4)]
            }
        );
        index.delivered(2);
        assert_eq!(
            index.checkpoint(),
            TimerCheckpoint {
                offset: 4,
                delivered: vec![]
            }
        );
    }

    #[test]
    fn a_checkpoint_keeps_a_bounded_number_of_runs() {
        // Every other entry delivered: as many runs as entries / 2.
        let dues: Vec<i64> = (0..2 * MAX_DELIVERED_RUNS as i64 + 10)
            .map(|i| if i % 2 == 0 { 100 } else { 1 })
            .collect();
        let mut index = index_of(&dues);
        for entry in index.due(1, usize::MAX) {
            index.delivered(entry.offset);
        }
        let checkpoint = index.checkpoint();
        assert_eq!(checkpoint.offset, 0);
        assert_eq!(checkpoint.delivered.len(), MAX_DELIVERED_RUNS);
        // Rebuilt from it, nothing undelivered is missing (some delivered
        // entries come back: duplicates, not losses).
        let mut rebuilt = TimerIndex::new(checkpoint);
        for (offset, due) in (0..).zip(&dues) {
            rebuilt.load(offset, *due, 0, 1);
        }
        let pending: Vec<u64> = (0..dues.len() as u64).filter(|o| o % 2 == 0).collect();
        let mut got = offsets(&rebuilt.due(i64::MAX, usize::MAX));
        got.sort_unstable();
        assert!(pending.iter().all(|o| got.contains(o)));
        assert!(got.len() > pending.len());
    }

    fn timer_message(props: &[(&str, &str)]) -> InboundMessage {
        message("T", props)
    }

    fn refused(config: &BrokerConfig, props: &[(&str, &str)]) -> TimerRefusal {
        let mut msg = timer_message(props);
        let before = msg.clone();
        let refusal = accept_at(config, &mut msg, NOW).unwrap_err();
        assert_eq!(msg.topic, before.topic, "nothing rewritten");
        assert_eq!(msg.properties, before.properties);
        refusal
    }

    #[test]
    fn a_future_timer_message_goes_to_the_timer_topic_with_its_real_place() {
        let config = BrokerConfig::default();
        let cases = [
            (
                property::TIMER_DELIVER_MS,
                (NOW + 3_500).to_string(),
                NOW + 3_500,
            ),
            (
                property::TIMER_DELAY_SEC,
                "93600".to_owned(),
                NOW + 93_600_000,
            ),
            (property::TIMER_DELAY_MS, "3500".to_owned(), NOW + 3_500),
        ];
        for (name, value, due) in cases {
            let mut msg = timer_message(&[(name, &value), (property::TAGS, "A")]);
            msg.queue_id = 3;
            accept_at(&config, &mut msg, NOW).unwrap();
            assert_eq!(msg.topic, topic::TIMER_TOPIC, "{name}");
            assert_eq!(msg.queue_id, 0);
            let props = &msg.properties;
            assert_eq!(props[property::TIMER_OUT_MS], due.to_string(), "{name}");
            assert_eq!(props[property::REAL_TOPIC], "T");
            assert_eq!(props[property::REAL_QUEUE_ID], "3");
            assert_eq!(props[name], value, "the original property is kept");
            assert_eq!(props[property::TAGS], "A");
        }
    }

    #[test]
    fn a_due_or_plain_message_is_left_alone() {
        let config = BrokerConfig::default();
        for props in [
            vec![],
            vec![(property::TIMER_DELIVER_MS, "5")],
            vec![(property::TIMER_DELAY_SEC, "0")],
            vec![(property::TIMER_DELAY_MS, "100")],
            // A delivered timer message sent again.
            vec![
                (property::TIMER_DELAY_SEC, "60"),
                (property::TIMER_OUT_MS, "7"),
            ],
        ] {
            let mut msg = timer_message(&props);
            let before = msg.properties.clone();
            accept_at(&config, &mut msg, NOW).unwrap();
            assert_eq!(msg.topic, "T", "{props:?}");
            assert_eq!(msg.properties, before);
        }
        // A delay level wins, the timer properties go.
        let mut msg = timer_message(&[
            (property::TIMER_DELAY_SEC, "60"),
            (property::DELAY_TIME_LEVEL, "2"),
        ]);
        accept_at(&config, &mut msg, NOW).unwrap();
        assert_eq!(msg.topic, "T");
        assert!(!msg.properties.contains_key(property::TIMER_DELAY_SEC));
        assert_eq!(msg.properties[property::DELAY_TIME_LEVEL], "2");
    }

    #[test]
    fn bad_late_transactional_or_disabled_timer_messages_are_refused() {
        let config = BrokerConfig {
            timer_max_delay_sec: 3600,
            ..BrokerConfig::default()
        };
        let late = (NOW + 3_600_001).to_string();
        for props in [
            vec![(property::TIMER_DELIVER_MS, late.as_str())],
            vec![(property::TIMER_DELAY_SEC, "3601")],
            vec![(property::TIMER_DELAY_SEC, "9223372036854775807")],
            vec![(property::TIMER_DELAY_MS, "3600001")],
            vec![(property::TIMER_DELAY_SEC, "-1")],
            vec![(property::TIMER_DELIVER_MS, "-5")],
            vec![(property::TIMER_DELIVER_MS, "soon")],
            vec![(property::TIMER_DELAY_MS, "1.5")],
            vec![
                (property::TIMER_DELAY_SEC, "5"),
                (property::TIMER_DELIVER_MS, "x"),
            ],
            vec![
                (property::TIMER_DELAY_SEC, "5"),
                (property::TRANSACTION_PREPARED, "true"),
            ],
        ] {
            let refusal = refused(&config, &props);
            assert_eq!(refusal.code, ResponseCode::MESSAGE_ILLEGAL, "{props:?}");
        }
        assert!(refused(&config, &[(property::TIMER_DELAY_SEC, "3601")])
            .reason
            .contains("timerMaxDelaySec"));
        // Exactly the maximum is fine.
        let mut msg = timer_message(&[(property::TIMER_DELAY_SEC, "3600")]);
        accept_at(&config, &mut msg, NOW).unwrap();
        assert_eq!(msg.topic, topic::TIMER_TOPIC);

        let off = BrokerConfig {
            timer_wheel_enable: false,
            ..BrokerConfig::default()
        };
        assert_eq!(
            refused(&off, &[(property::TIMER_DELAY_SEC, "5")]).code,
            ResponseCode::SYSTEM_ERROR
        );
        assert!(
            refuse_in_batch(&timer_message(&[(property::TIMER_DELAY_MS, "5")]).properties).is_err()
        );
        assert!(refuse_in_batch(&timer_message(&[]).properties).is_ok());
    }

    /// Sends `props` through [`accept`] and the put path.
    async fn send_timer(broker: &Broker, props: &[(&str, &str)], now: i64) {
        let mut msg = message("T", props);
        accept_at(&broker.config(), &mut msg, now).unwrap();
        assert_eq!(msg.topic, topic::TIMER_TOPIC);
        broker.put(msg).await.unwrap();
    }

    #[tokio::test]
    async fn due_messages_are_delivered_once_and_the_rest_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let broker = broker(dir.path(), BrokerConfig::default());
        let now = crate::util::now_ms();
        let late = (now + 60_000).to_string();
        let soon = (now + 1_000).to_string();
        send_timer(
            &broker,
            &[
                (property::TIMER_DELIVER_MS, &late),
                (property::KEYS, "late"),
            ],
            now,
        )
        .await;
        send_timer(
            &broker,
            &[
                (property::TIMER_DELIVER_MS, &soon),
                (property::KEYS, "soon"),
                (property::UNIQ_CLIENT_MESSAGE_ID_KEYIDX, "ID-SOON"),
                ("color", "red"),
            ],
            now,
        )
        .await;
        dispatched(&broker, topic::TIMER_TOPIC, 0, 2).await;

        let mut service = TimerService::open(broker.clone());
        // Loaded, nothing due yet.
        assert_eq!(service.step(now).await, Step::Worked);
        assert_eq!(service.step(now + 999).await, Step::Idle);
        assert_eq!(broker.store.max_offset_in_queue("T", 0), 0);
        assert_eq!(service.wait(now), TIMER_TICK, "at most a tick");
        assert_eq!(service.wait(now + 970), Duration::from_millis(30));
        assert_eq!(
            service.wait(now + 1_000),
            TIMER_TICK,
            "due, not yet delivered"
        );

        assert_eq!(service.step(now + 1_000).await, Step::Worked);
        dispatched(&broker, "T", 0, 1).await;
        assert!(
            broker.store.flushed_offset() >= broker.store.commit_log_max_offset(),
            "the delivered copy is flushed before the checkpoint is saved"
        );
        let got = broker
            .store
            .get_message("T", 0, 0, 10, usize::MAX, &|_| true);
        let (msg, _) = MessageExt::decode(&got.messages[0], false).unwrap();
        assert_eq!(msg.keys(), vec!["soon"]);
        assert_eq!(msg.property("color"), Some("red"));
        assert_eq!(msg.msg_id(), "ID-SOON", "the message id is kept");
        assert_eq!(
            msg.property(property::TIMER_DELIVER_MS),
            Some(soon.as_str())
        );
        assert_eq!(
            service.step(now + 5_000).await,
            Step::Idle,
            "delivered once"
        );
        assert_eq!(broker.store.max_offset_in_queue("T", 0), 1);
        let path = TimerCheckpoint::path(&dir.path().join("config"));
        assert_eq!(
            TimerCheckpoint::load(&path).unwrap(),
            TimerCheckpoint {
                offset: 0,
                delivered: vec![(1, 2)]
            }
        );

        // A restart rebuilds the index from the checkpoint: the late one
        // waits, the delivered one does not come back.
        drop(service);
        let mut service = TimerService::open(broker.clone());
        assert_eq!(service.step(now + 5_000).await, Step::Worked);
        assert_eq!(service.index.len(), 1);
        assert_eq!(service.step(now + 59_999).await, Step::Idle);
        assert_eq!(service.step(now + 60_000).await, Step::Worked);
        dispatched(&broker, "T", 0, 2).await;
        assert_eq!(
            TimerCheckpoint::load(&path).unwrap(),
            TimerCheckpoint {
                offset: 2,
                delivered: vec![]
            }
        );
    }

    #[tokio::test]
    async fn a_checkpoint_that_could_not_be_saved_is_saved_by_a_later_idle_step() {
        let dir = tempfile::tempdir().unwrap();
        let broker = broker(dir.path(), BrokerConfig::default());
        let now = crate::util::now_ms();
        let soon = (now + 1_000).to_string();
        send_timer(&broker, &[(property::TIMER_DELIVER_MS, &soon)], now).await;
        dispatched(&broker, topic::TIMER_TOPIC, 0, 1).await;
        let path = TimerCheckpoint::path(&dir.path().join("config"));
        // A folder where the temporary file goes makes the write fail.
        let blocker = dir.path().join("config/timerCheckpoint.json.tmp");
        std::fs::create_dir_all(&blocker).unwrap();
        let mut service = TimerService::open(broker.clone());
        assert_eq!(service.step(now + 1_000).await, Step::Worked);
        dispatched(&broker, "T", 0, 1).await;
        assert!(!path.exists(), "the write failed");
        std::fs::remove_dir(&blocker).unwrap();
        assert_eq!(service.step(now + 1_000).await, Step::Idle);
        assert_eq!(TimerCheckpoint::load(&path).unwrap().offset, 1);
    }

    #[tokio::test]
    async fn an_unreadable_checkpoint_delivers_again_rather_than_lose() {
        let dir = tempfile::tempdir().unwrap();
        let broker = broker(dir.path(), BrokerConfig::default());
        let now = crate::util::now_ms();
        let soon = (now + 1_000).to_string();
        send_timer(&broker, &[(property::TIMER_DELIVER_MS, &soon)], now).await;
        dispatched(&broker, topic::TIMER_TOPIC, 0, 1).await;
        let mut service = TimerService::open(broker.clone());
        service.step(now + 1_000).await;
        dispatched(&broker, "T", 0, 1).await;
        drop(service);
        let path = TimerCheckpoint::path(&dir.path().join("config"));
        std::fs::write(&path, "{ not json").unwrap();
        std::fs::remove_file(dir.path().join("config/timerCheckpoint.json.bak")).ok();
        let mut service = TimerService::open(broker.clone());
        service.step(now + 1_000).await;
        dispatched(&broker, "T", 0, 2).await;
    }
}
