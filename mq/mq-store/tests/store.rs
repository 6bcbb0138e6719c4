//! Behaviour of the store through its public API: round trips across
//! segment boundaries, pull statuses, locking, size limits, index queries,
//! consume queue rebuild, retention, group commit and replication.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{config, decode, msg, open, read_queue};
use mq_protocol::message::{sys_flag, BLANK_MAGIC_CODE};
use mq_protocol::name::TopicName;
use mq_store::{
    CleanOutcome, FlushDiskType, GetMessageStatus, MessageStore, PutStatus, StoreError,
    SCHEDULE_TOPIC,
};

#[tokio::test]
async fn write_reopen_read_back_byte_exact_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut written: HashMap<(String, i32), Vec<(u64, usize)>> = HashMap::new();
    let mut results = Vec::new();
    for n in 0..300 {
        let (topic, qid) = if n % 3 == 0 {
            ("TopicB", 1)
        } else {
            ("TopicA", n as i32 % 2)
        };
        let r = store
            .put_message(msg(topic, qid, n, 100 + (n * 37) % 1400))
            .await
            .unwrap();
        assert_eq!(r.status, PutStatus::PutOk);
        let q = written.entry((topic.to_owned(), qid)).or_default();
        assert_eq!(
            r.queue_offset,
            q.len() as u64,
            "queue offsets are consecutive per queue"
        );
        q.push((r.wrote_offset, r.wrote_bytes));
        results.push(r);
    }
    let segments = std::fs::read_dir(dir.path().join("commitlog"))
        .unwrap()
        .count();
    assert!(
        segments >= 3,
        "the test must cross segment boundaries, got {segments}"
    );
    // Raw bytes before the restart.
    let before: HashMap<_, _> = written
        .keys()
        .map(|(t, q)| ((t.clone(), *q), read_queue(&store, t, *q)))
        .collect();
    store.shutdown().unwrap();
    assert!(
        !dir.path().join("abort").exists(),
        "clean shutdown removes abort"
    );
    drop(store);

    // Every segment but the last ends with a blank record filling it.
    let seg_size = 64 * 1024u64;
    for w in results.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        let end = a.wrote_offset + a.wrote_bytes as u64;
        if b.wrote_offset != end {
            assert_eq!(
                b.wrote_offset % seg_size,
                0,
                "a message moved only to a new segment"
            );
            let file = dir
                .path()
                .join("commitlog")
                .join(format!("{:020}", end - end % seg_size));
            let data = std::fs::read(file).unwrap();
            let at = (end % seg_size) as usize;
            let total = i32::from_be_bytes(data[at..at + 4].try_into().unwrap());
            let magic = i32::from_be_bytes(data[at + 4..at + 8].try_into().unwrap());
            assert_eq!(magic, BLANK_MAGIC_CODE);
            assert_eq!(total as u64, seg_size - end % seg_size);
        }
    }

    let store = open(dir.path());
    for ((topic, qid), expected) in &written {
        let got = read_queue(&store, topic, *qid);
        assert_eq!(
            &got,
            &before[&(topic.clone(), *qid)],
            "byte-exact after reopen"
        );
        assert_eq!(got.len(), expected.len());
        for (i, (bytes, (phys, size))) in got.iter().zip(expected).enumerate() {
            let m = decode(bytes);
            assert_eq!(bytes.len(), *size);
            assert_eq!(m.commit_log_offset as u64, *phys);
            assert_eq!(m.queue_offset as usize, i);
            assert_eq!(&m.topic, topic);
            assert_eq!(store.look_message_by_offset(*phys).unwrap(), m);
        }
    }
    // Writing continues after the last message, with the next queue offset.
    let r = store.put_message(msg("TopicB", 1, 999, 10)).await.unwrap();
    assert_eq!(
        r.queue_offset,
        written[&("TopicB".to_owned(), 1)].len() as u64
    );
    assert_eq!(
        r.wrote_offset,
        results
            .last()
            .map(|l| l.wrote_offset + l.wrote_bytes as u64)
            .unwrap()
    );
    assert_eq!(store.topics_and_queues()["TopicA"], vec![0, 1]);
}

#[tokio::test]
async fn get_message_statuses_and_filters() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let none = store.get_message("T", 0, 0, 10, 1 << 20, &|_| true);
    assert_eq!(none.status, GetMessageStatus::NoMatchedLogicQueue);
    for n in 0..10 {
        store.put_message(msg("T", 0, n, 50)).await.unwrap();
    }
    let r = store.get_message("T", 0, 0, 4, 1 << 20, &|_| true);
    assert_eq!(r.status, GetMessageStatus::Found);
    assert_eq!(r.messages.len(), 4);
    assert_eq!(r.next_begin_offset, 4);
    assert_eq!((r.min_offset, r.max_offset), (0, 10));
    let r = store.get_message("T", 0, 10, 4, 1 << 20, &|_| true);
    assert_eq!(r.status, GetMessageStatus::OffsetOverflowOne);
    assert_eq!(r.next_begin_offset, 10);
    let r = store.get_message("T", 0, 50, 4, 1 << 20, &|_| true);
    assert_eq!(r.status, GetMessageStatus::OffsetOverflowBadly);
    // Only tag1 (n % 3 == 1: n = 1, 4, 7).
    let tag1 = mq_store::tags_code(Some("tag1"));
    let r = store.get_message("T", 0, 0, 32, 1 << 20, &|code| code == tag1);
    let offsets: Vec<i64> = r.messages.iter().map(|b| decode(b).queue_offset).collect();
    assert_eq!(offsets, vec![1, 4, 7]);
    assert_eq!(r.next_begin_offset, 10);
    let r = store.get_message("T", 0, 0, 32, 1 << 20, &|_| false);
    assert_eq!(r.status, GetMessageStatus::NoMatchedMessage);
    // max_bytes stops after the first message that fits.
    let r = store.get_message("T", 0, 0, 32, 1, &|_| true);
    assert_eq!(r.messages.len(), 1);
    assert_eq!(store.max_offset_in_queue("T", 0), 10);
    assert_eq!(store.min_offset_in_queue("T", 0), 0);
}

#[tokio::test]
async fn a_stored_filter_skips_messages_and_the_offset_moves_past_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for n in 0..10 {
        store.put_message(msg("T", 0, n, 50)).await.unwrap();
    }
    // Keep the stored records whose queue offset is odd (the filter sees
    // the stored bytes, as a property filter does).
    let odd = |record: &[u8]| decode(record).queue_offset % 2 == 1;
    let r = store.get_message_filtered("T", 0, 0, 32, 1 << 20, &|_| true, Some(&odd));
    let offsets: Vec<i64> = r.messages.iter().map(|b| decode(b).queue_offset).collect();
    assert_eq!(offsets, vec![1, 3, 5, 7, 9]);
    assert_eq!(r.status, GetMessageStatus::Found);
    assert_eq!(r.next_begin_offset, 10);
    // Both filters apply: tag1 is n = 1, 4, 7.
    let tag1 = mq_store::tags_code(Some("tag1"));
    let r = store.get_message_filtered("T", 0, 0, 32, 1 << 20, &|c| c == tag1, Some(&odd));
    let offsets: Vec<i64> = r.messages.iter().map(|b| decode(b).queue_offset).collect();
    assert_eq!(offsets, vec![1, 7]);
    // Nothing passes: no message, and still past the entries looked at.
    let r = store.get_message_filtered("T", 0, 2, 32, 1 << 20, &|_| true, Some(&|_| false));
    assert_eq!(r.status, GetMessageStatus::NoMatchedMessage);
    assert!(r.messages.is_empty());
    assert_eq!(r.next_begin_offset, 10);
    // The count limit counts delivered messages only.
    let r = store.get_message_filtered("T", 0, 0, 2, 1 << 20, &|_| true, Some(&odd));
    let offsets: Vec<i64> = r.messages.iter().map(|b| decode(b).queue_offset).collect();
    assert_eq!(offsets, vec![1, 3]);
    assert_eq!(r.next_begin_offset, 4);
}

#[tokio::test]
async fn second_opener_gets_the_lock_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    match MessageStore::open(config(dir.path())) {
        Err(StoreError::Locked { path }) => assert_eq!(path, dir.path().join("lock")),
        Err(e) => panic!("expected Locked, got {e}"),
        Ok(_) => panic!("a second opener must be refused"),
    }
    drop(store);
    open(dir.path()).shutdown().unwrap();
}

#[tokio::test]
async fn oversized_message_is_refused_and_nothing_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.put_message(msg("T", 0, 0, 10)).await.unwrap();
    let max = store.commit_log_max_offset();
    let err = store
        .put_message(msg("T", 0, 1, 16 * 1024))
        .await
        .unwrap_err();
    match err {
        StoreError::MessageTooLarge { size, max } => assert!(size > max && max == 16 * 1024),
        e => panic!("expected MessageTooLarge, got {e}"),
    }
    // A batch with one oversized message writes none of them.
    let batch = vec![msg("T", 0, 2, 10), msg("T", 0, 3, 20_000)];
    assert!(matches!(
        store.put_messages(&batch).await,
        Err(StoreError::MessageTooLarge { .. })
    ));
    let mut bad = msg("T", 0, 4, 10);
    bad.properties.push('\0');
    assert!(matches!(
        store.put_message(bad).await,
        Err(StoreError::IllegalMessage { .. })
    ));
    assert_eq!(store.commit_log_max_offset(), max);
    assert_eq!(store.max_offset_in_queue("T", 0), 1);
    // A message of exactly maxMessageSize is accepted.
    let mut exact = msg("T", 0, 5, 0);
    let overhead = {
        let r = store.put_message(exact.clone()).await.unwrap();
        r.wrote_bytes
    };
    exact.body = bytes::Bytes::from(vec![7u8; 16 * 1024 - overhead]);
    assert_eq!(
        store.put_message(exact).await.unwrap().wrote_bytes,
        16 * 1024
    );
}

#[tokio::test]
async fn batch_gets_consecutive_queue_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.put_message(msg("T", 2, 0, 10)).await.unwrap();
    let batch: Vec<_> = (1..6).map(|n| msg("T", 2, n, 10)).collect();
    let rs = store.put_messages(&batch).await.unwrap();
    let offsets: Vec<u64> = rs.iter().map(|r| r.queue_offset).collect();
    assert_eq!(offsets, vec![1, 2, 3, 4, 5]);
    for w in rs.windows(2) {
        assert_eq!(
            w[0].wrote_offset + w[0].wrote_bytes as u64,
            w[1].wrote_offset
        );
    }
}

#[tokio::test]
async fn consume_queues_rebuilt_after_deleting_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for n in 0..200 {
        store
            .put_message(msg(&format!("T{}", n % 4), (n % 3) as i32, n, 300))
            .await
            .unwrap();
    }
    let queues = store.topics_and_queues();
    let before: Vec<_> = queues
        .iter()
        .flat_map(|(t, qs)| qs.iter().map(move |q| (t.clone(), *q)))
        .map(|(t, q)| read_queue(&store, &t, q))
        .collect();
    store.shutdown().unwrap();
    drop(store);
    std::fs::remove_dir_all(dir.path().join("consumequeue")).unwrap();

    let store = open(dir.path());
    assert_eq!(store.topics_and_queues(), queues);
    let after: Vec<_> = queues
        .iter()
        .flat_map(|(t, qs)| qs.iter().map(move |q| (t.clone(), *q)))
        .map(|(t, q)| read_queue(&store, &t, q))
        .collect();
    assert_eq!(before, after);
    assert_eq!(after.iter().map(Vec::len).sum::<usize>(), 200);
    // And the queue offsets continue.
    let r = store.put_message(msg("T0", 0, 1000, 10)).await.unwrap();
    assert_eq!(r.queue_offset, before[0].len() as u64);
}

#[tokio::test]
async fn index_finds_keys_and_unique_keys_within_time_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut stored = Vec::new();
    for n in 0..300 {
        stored.push(store.put_message(msg("IdxTopic", 0, n, 40)).await.unwrap());
    }
    let first_ts = stored[0].store_timestamp;
    let last_ts = stored.last().unwrap().store_timestamp;
    let found = store.query_message("IdxTopic", "key42", 10, 0, i64::MAX);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].commit_log_offset as u64, stored[42].wrote_offset);
    let by_uniq = store.query_message(
        "IdxTopic",
        "UNIQ00000137",
        10,
        first_ts - 1000,
        last_ts + 1000,
    );
    assert_eq!(by_uniq.len(), 1);
    assert_eq!(by_uniq[0].queue_offset, 137);
    // "all" is a key of every message: max caps the result, newest first.
    let all = store.query_message("IdxTopic", "all", 5, 0, i64::MAX);
    assert_eq!(all.len(), 5);
    assert_eq!(all[0].queue_offset, 299);
    assert_eq!(
        store
            .query_message("IdxTopic", "all", 1000, 0, i64::MAX)
            .len(),
        300,
        "across index files"
    );
    // Outside the time range, or another topic: nothing.
    assert!(store
        .query_message("IdxTopic", "key42", 10, 0, first_ts - 10_000)
        .is_empty());
    assert!(store
        .query_message("IdxTopic", "key42", 10, last_ts + 10_000, i64::MAX)
        .is_empty());
    assert!(store
        .query_message("Other", "key42", 10, 0, i64::MAX)
        .is_empty());
    store.shutdown().unwrap();
    drop(store);
    let store = open(dir.path());
    assert_eq!(
        store
            .query_message("IdxTopic", "key299", 10, 0, i64::MAX)
            .len(),
        1
    );
    assert_eq!(
        store
            .query_message("IdxTopic", "all", 1000, 0, i64::MAX)
            .len(),
        300,
        "no duplicates after reopen"
    );
}

#[tokio::test]
async fn transactions_and_delayed_messages_dispatch_like_rocketmq() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut prepared = msg("Tx", 0, 0, 10);
    prepared.sys_flag = sys_flag::TRANSACTION_PREPARED_TYPE;
    let r = store.put_message(prepared).await.unwrap();
    assert_eq!(r.queue_offset, 0);
    let mut rollback = msg("Tx", 0, 1, 10);
    rollback.sys_flag = sys_flag::TRANSACTION_ROLLBACK_TYPE;
    store.put_message(rollback).await.unwrap();
    assert_eq!(
        store.max_offset_in_queue("Tx", 0),
        0,
        "PREPARED and ROLLBACK are not dispatched"
    );
    let mut commit = msg("Tx", 0, 2, 10);
    commit.sys_flag = sys_flag::TRANSACTION_COMMIT_TYPE;
    store.put_message(commit).await.unwrap();
    store.put_message(msg("Tx", 0, 3, 10)).await.unwrap();
    assert_eq!(store.max_offset_in_queue("Tx", 0), 2);

    let mut delayed = msg(SCHEDULE_TOPIC, 2, 4, 10);
    delayed.properties.push_str("DELAY\u{1}3\u{2}");
    let r = store.put_message(delayed).await.unwrap();
    let codes = Mutex::new(Vec::new());
    store.get_message(SCHEDULE_TOPIC, 2, 0, 1, 1 << 20, &|code| {
        codes.lock().unwrap().push(code);
        true
    });
    assert_eq!(
        *codes.lock().unwrap(),
        vec![r.store_timestamp + 10_000],
        "level 3 is 10s"
    );
}

#[tokio::test]
async fn timer_entries_carry_their_due_time_and_read_without_the_messages() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let timer = mq_protocol::topic::TIMER_TOPIC;
    let mut sent = Vec::new();
    for (n, due) in [(0, 93_600_000i64), (1, 5_000)] {
        let mut timed = msg(timer, 0, n, 10);
        timed
            .properties
            .push_str(&format!("TIMER_OUT_MS\u{1}{due}\u{2}"));
        sent.push((store.put_message(timed).await.unwrap(), due));
    }
    let entries = store.queue_entries(timer, 0, 0, 10);
    assert_eq!(entries.len(), 2);
    for (entry, (put, due)) in entries.iter().zip(&sent) {
        assert_eq!(entry.tags_code, *due);
        assert_eq!(entry.commit_log_offset, put.wrote_offset);
        assert_eq!(entry.size as usize, put.wrote_bytes);
    }
    assert_eq!(store.queue_entries(timer, 0, 1, 10), entries[1..]);
    assert_eq!(store.queue_entries(timer, 0, 0, 1), entries[..1]);
    assert!(
        store.queue_entries(timer, 0, 2, 10).is_empty(),
        "past the end"
    );
    assert!(
        store.queue_entries(timer, 1, 0, 10).is_empty(),
        "no such queue"
    );
}

#[tokio::test]
async fn offset_by_timestamp_and_delete_topic() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut rs = Vec::new();
    for n in 0..20 {
        rs.push(store.put_message(msg("T", 0, n, 10)).await.unwrap());
    }
    assert_eq!(store.offset_by_timestamp("T", 0, 0), 0);
    assert_eq!(store.offset_by_timestamp("T", 0, i64::MAX), 20);
    let ts = rs[10].store_timestamp;
    let first_at_ts = rs.iter().position(|r| r.store_timestamp >= ts).unwrap() as u64;
    assert_eq!(store.offset_by_timestamp("T", 0, ts), first_at_ts);
    assert!(store.delete_topic(&TopicName::parse("T").unwrap()).unwrap());
    assert!(!dir.path().join("consumequeue/T").exists());
    assert!(store.topics_and_queues().is_empty());
    assert_eq!(store.max_offset_in_queue("T", 0), 0);
    assert!(!store.delete_topic(&TopicName::parse("T").unwrap()).unwrap());
}

#[tokio::test]
async fn retention_deletes_expired_files_and_never_the_current_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.delete_when = (0..24)
        .map(|h| format!("{h:02}"))
        .collect::<Vec<_>>()
        .join(";");
    c.file_reserved_time = 1;
    let store = MessageStore::open(c).unwrap();
    for n in 0..400 {
        store.put_message(msg("T", 0, n, 1000)).await.unwrap();
    }
    let segs = || written_segments(dir.path(), &store);
    let cq_files = || {
        std::fs::read_dir(dir.path().join("consumequeue/T/0"))
            .unwrap()
            .count()
    };
    let all = segs();
    assert!(all.len() >= 5);
    let cq_before = cq_files();
    let index_files = || std::fs::read_dir(dir.path().join("index")).unwrap().count();
    let index_before = index_files();
    assert!(
        index_before >= 3,
        "keys of 400 messages fill several 400-entry index files"
    );
    let now = index_now();
    // Not yet expired (written just now, kept 1 hour), disk fine: nothing.
    assert_eq!(store.clean_step(now, 0.10).unwrap(), CleanOutcome::Idle);
    assert_eq!(segs(), all);
    // Two hours later every file but the current one has expired.
    let later = now + 2 * 3_600_000;
    assert!(matches!(
        store.clean_step(later, 0.10).unwrap(),
        CleanOutcome::Worked { .. }
    ));
    assert_eq!(
        segs(),
        vec![all.last().unwrap().clone()],
        "only the segment being written stays"
    );
    assert!(
        cq_files() < cq_before,
        "consume queue files of deleted messages go too"
    );
    assert!(
        index_files() < index_before,
        "index files of deleted messages go too"
    );
    assert!(index_files() >= 1, "the index file being written stays");
    assert_eq!(store.clean_step(later, 0.10).unwrap(), CleanOutcome::Idle);
    let min = store.min_offset_in_queue("T", 0);
    assert!(min > 0);
    let r = store.get_message("T", 0, 0, 10, 1 << 20, &|_| true);
    assert_eq!(r.status, GetMessageStatus::OffsetTooSmall);
    assert_eq!(r.next_begin_offset, min);
    let r = store.get_message("T", 0, min, 10, 1 << 20, &|_| true);
    assert_eq!(r.status, GetMessageStatus::Found);
    assert!(decode(&r.messages[0]).commit_log_offset as u64 >= store.commit_log_min_offset());
    store.put_message(msg("T", 0, 1, 10)).await.unwrap();
}

/// The commit log segments that hold written bytes, by name: without the
/// empty next segment the store's background thread may have created
/// ahead of need (its start is past the log's end), whose making races
/// with these tests.
fn written_segments(root: &std::path::Path, store: &MessageStore) -> Vec<String> {
    let end = store.commit_log_max_offset();
    let mut names: Vec<String> = std::fs::read_dir(root.join("commitlog"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.parse::<u64>().is_ok_and(|start| start < end))
        .collect();
    names.sort();
    names
}

fn index_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test]
async fn disk_ratio_deletes_early_and_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.delete_when = "04".into();
    c.file_reserved_time = 72;
    let store = MessageStore::open(c).unwrap();
    for n in 0..250 {
        store.put_message(msg("T", 0, n, 1000)).await.unwrap();
    }
    let count = || written_segments(dir.path(), &store).len();
    let n = count();
    assert!(n >= 3);
    let now = index_now();
    assert_eq!(
        store.clean_step(now, 0.50).unwrap(),
        CleanOutcome::Idle,
        "nothing expired, disk fine"
    );
    assert_eq!(count(), n);
    // Above diskMaxUsedSpaceRatio (75%): the oldest file goes though not expired,
    // and writes are refused.
    assert!(
        matches!(store.clean_step(now, 0.80).unwrap(), CleanOutcome::Worked { deleted_files } if deleted_files >= 1)
    );
    assert_eq!(count(), n - 1);
    match store.put_message(msg("T", 0, 1, 10)).await {
        Err(StoreError::DiskFull {
            used_ratio, limit, ..
        }) => assert!(used_ratio > limit),
        other => panic!("expected DiskFull, got {other:?}"),
    }
    for _ in 0..n + 3 {
        store.clean_step(now, 0.99).unwrap();
    }
    assert_eq!(count(), 1, "the segment being written is never deleted");
    assert_eq!(store.clean_step(now, 0.50).unwrap(), CleanOutcome::Idle);
    store
        .put_message(msg("T", 0, 2, 10))
        .await
        .expect("writes accepted again below the ratio");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sync_flush_group_commit_shares_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.flush_disk_type = FlushDiskType::SyncFlush;
    c.maped_file_size_commit_log = 4 * 1024 * 1024;
    let store = Arc::new(MessageStore::open(c).unwrap());
    let writers = 64;
    let per_writer = 20;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut ends = Vec::new();
            for i in 0..per_writer {
                let r = store
                    .put_message(msg("G", w % 8, w as usize * 1000 + i, 512))
                    .await
                    .unwrap();
                assert_eq!(r.status, PutStatus::PutOk);
                let end = r.wrote_offset + r.wrote_bytes as u64;
                // Acknowledged means flushed.
                assert!(store.flushed_offset() >= end);
                ends.push(end);
            }
            ends
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let stats = store.stats();
    let total = (writers * per_writer as i32) as u64;
    assert_eq!(stats.messages_put, total);
    assert!(stats.commit_log_flushes >= 1);
    assert!(
        stats.commit_log_flushes < total,
        "{} flushes for {total} messages: no grouping",
        stats.commit_log_flushes
    );
}

#[tokio::test]
async fn new_message_notify_fires_on_put() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(dir.path()));
    let notify = store.new_message_notify();
    let notified = notify.notified();
    tokio::pin!(notified);
    notified.as_mut().enable();
    let s = store.clone();
    tokio::spawn(async move { s.put_message(msg("N", 0, 0, 10)).await.unwrap() });
    // A liveness guard, not a timing assertion.
    tokio::time::timeout(Duration::from_secs(30), notified)
        .await
        .expect("notified");
    assert_eq!(store.max_offset_in_queue("N", 0), 1);
}

#[tokio::test]
async fn slave_replicates_raw_bytes_and_dispatches_them() {
    let master_dir = tempfile::tempdir().unwrap();
    let slave_dir = tempfile::tempdir().unwrap();
    let master = open(master_dir.path());
    let slave = open(slave_dir.path());
    for n in 0..300 {
        master
            .put_message(msg(
                &format!("R{}", n % 2),
                (n % 3) as i32,
                n,
                200 + n % 500,
            ))
            .await
            .unwrap();
    }
    // Wrong starting point and garbage are refused.
    assert!(matches!(
        slave.append_raw(100, b"xx").await,
        Err(StoreError::OffsetMismatch { .. })
    ));
    let mut chunks = 0;
    loop {
        let from = slave.commit_log_max_offset();
        let Some(bytes) = master.read_commit_log(from, 8 * 1024) else {
            break;
        };
        let seg = 64 * 1024;
        assert!(
            from % seg + bytes.len() as u64 <= seg,
            "never across a segment end"
        );
        if chunks == 3 {
            let mut bad = bytes.to_vec();
            let last = bad.len() - 1;
            bad[last / 2] ^= 0xFF;
            assert!(slave.append_raw(from, &bad).await.is_err());
            // Whatever valid prefix went in, carry on from the slave's end.
            chunks += 1;
            continue;
        }
        slave.append_raw(from, &bytes).await.unwrap();
        chunks += 1;
    }
    assert_eq!(
        slave.commit_log_max_offset(),
        master.commit_log_max_offset()
    );
    assert_eq!(slave.topics_and_queues(), master.topics_and_queues());
    for (t, qs) in master.topics_and_queues() {
        for q in qs {
            assert_eq!(read_queue(&slave, &t, q), read_queue(&master, &t, q));
        }
    }
    assert_eq!(slave.query_message("R1", "key7", 5, 0, i64::MAX).len(), 1);
}

/// A new slave copies from the master's second segment on: its empty store
/// starts at that segment boundary, keeps consume queues that start past
/// queue offset 0, takes blank records and segment rolls in separate
/// appends, and reopens to the same state.
#[tokio::test]
async fn empty_slave_starts_at_a_later_segment_and_reopens() {
    let master_dir = tempfile::tempdir().unwrap();
    let slave_dir = tempfile::tempdir().unwrap();
    let master = open(master_dir.path());
    let seg = 64 * 1024u64;
    let mut n = 0;
    while master.commit_log_max_offset() < 3 * seg + 1000 {
        master
            .put_message(msg("S", (n % 2) as i32, n, 700))
            .await
            .unwrap();
        n += 1;
    }
    {
        let slave = open(slave_dir.path());
        // Not a segment boundary: an empty store cannot start there.
        assert!(matches!(
            slave.append_raw(seg + 8, b"12345678").await,
            Err(StoreError::OffsetMismatch { .. })
        ));
        let mut from = seg;
        // One record per append: blank records arrive on their own.
        while let Some(bytes) = master.read_commit_log(from, 1) {
            slave.append_raw(from, &bytes).await.unwrap();
            from += bytes.len() as u64;
        }
        assert_eq!(from, master.commit_log_max_offset());
        assert_eq!(slave.commit_log_min_offset(), seg);
        for q in 0..2 {
            assert_eq!(
                slave.max_offset_in_queue("S", q),
                master.max_offset_in_queue("S", q)
            );
            let min = slave.min_offset_in_queue("S", q);
            assert!(min > 0, "the first segment's messages are not on the slave");
            let got = slave.get_message("S", q, min, 32, usize::MAX, &|_| true);
            let want = master.get_message("S", q, min, 32, usize::MAX, &|_| true);
            assert_eq!(got.messages, want.messages);
        }
        slave.shutdown().unwrap();
    }
    let slave = open(slave_dir.path());
    assert_eq!(
        slave.commit_log_max_offset(),
        master.commit_log_max_offset()
    );
    for k in 1..4u64 {
        let name = format!("{:020}", k * seg);
        let a = std::fs::read(master_dir.path().join("commitlog").join(&name)).unwrap();
        let b = std::fs::read(slave_dir.path().join("commitlog").join(&name)).unwrap();
        assert!(a == b, "segment {name} differs");
    }
}

#[tokio::test]
async fn record_boundaries_are_recognised() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let a = store.put_message(msg("B", 0, 0, 100)).await.unwrap();
    let b = store.put_message(msg("B", 0, 1, 100)).await.unwrap();
    assert!(store.is_record_boundary(a.wrote_offset));
    assert!(store.is_record_boundary(b.wrote_offset));
    assert!(store.is_record_boundary(store.commit_log_max_offset()));
    assert!(!store.is_record_boundary(b.wrote_offset + 4));
    assert!(!store.is_record_boundary(a.wrote_offset + 1));
    assert!(!store.is_record_boundary(store.commit_log_max_offset() + 20));
    assert!(!store.is_record_boundary(u64::MAX));
}

/// A topic that is not a name (issue 14: `%DLQ%sec/../..`) is refused
/// before anything is written, so no consume queue folder is made from it;
/// a stray folder that is not a topic name is left alone by recovery.
#[tokio::test]
async fn topics_that_are_not_names_never_become_paths() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for bad in ["%DLQ%sec/../../trav_created", "../x", "a.b"] {
        let err = store.put_message(msg(bad, 0, 1, 10)).await.unwrap_err();
        assert!(matches!(err, StoreError::IllegalMessage { .. }), "{err}");
    }
    assert_eq!(store.commit_log_max_offset(), 0);
    assert!(!dir.path().join("trav_created").exists());
    assert!(!dir.path().join("x").exists());
    store.put_message(msg("T", 0, 1, 10)).await.unwrap();
    store.shutdown().unwrap();
    drop(store);
    let stray = dir.path().join("consumequeue/not.a.topic/0");
    std::fs::create_dir_all(&stray).unwrap();
    let store = open(dir.path());
    assert_eq!(store.max_offset_in_queue("T", 0), 1);
    assert!(!store.topics_and_queues().contains_key("not.a.topic"));
    assert!(stray.exists());
}

/// A long poll waits on its own queue's notification: an append to another
/// queue does not wake it, an append to its queue does; a queue that does
/// not exist yet has none (the poll waits on the store-wide one).
#[tokio::test]
async fn queue_notify_wakes_only_the_pulls_of_its_queue() {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    let dir = tempfile::tempdir().unwrap();
    let store = common::open(dir.path());
    assert!(store.queue_notify("W", 0).is_none());
    store.put_message(common::msg("W", 0, 0, 10)).await.unwrap();
    store.put_message(common::msg("W", 1, 1, 10)).await.unwrap();
    let q0 = store.queue_notify("W", 0).expect("queue 0 exists now");
    let mut cx = Context::from_waker(Waker::noop());
    let waiting = q0.notified();
    tokio::pin!(waiting);
    waiting.as_mut().enable();
    store.put_message(common::msg("W", 1, 2, 10)).await.unwrap();
    store
        .put_message(common::msg("Other", 0, 3, 10))
        .await
        .unwrap();
    assert!(
        waiting.as_mut().poll(&mut cx).is_pending(),
        "woken by another queue"
    );
    store.put_message(common::msg("W", 0, 4, 10)).await.unwrap();
    assert_eq!(waiting.as_mut().poll(&mut cx), Poll::Ready(()));
}
